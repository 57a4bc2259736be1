"""The learned ranker and abstention model (core/kb/learned.py): the shipped coefficients load, a
missing or corrupt file falls back loudly (a warning, /readyz) to answering rather than declining,
and a Chinese knowledge base answers short English questions offline, which the similarity floor
this replaced declined (issue #25). Small knowledge bases, the real e5 model."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import httpx
import pytest

from core.kb import e5, learned, store
from core.kb.ingest import ingest
from core.kb.retriever import Retriever
from tests.conftest import HubServer, make_settings

# A company's HR pages, all in Chinese (written for this test; not an evaluation set).
HR = {
    "parking.md": "# 員工停車辦法\n\n本公司總部大樓地下二樓至地下三樓為員工停車場，共有汽車位 120 格、機車位 300 格。\n\n"
    "## 申請\n\n汽車月租車位每季抽籤一次，請於每季最後一個月的 10 日前在員工入口網登記；機車位不必抽籤，"
    "向總務櫃檯領取識別貼紙即可。\n\n## 收費標準\n\n- 汽車月租：每月新臺幣 1,800 元，由薪資扣款。\n"
    "- 臨時停車：每小時 30 元，單日上限 240 元。\n- 機車：每月 100 元。\n\n## 注意事項\n\n"
    "車位不得轉讓，違者取消資格。訪客請停一樓訪客車位。問題請洽總務課分機 2301。\n",
    "payroll.md": "# 薪資發放\n\n## 發薪日\n\n每月 5 日將當月薪資匯入員工的薪轉帳戶；遇例假日或國定假日，提前於前一個工作日發放。\n\n"
    "## 薪資單\n\n電子薪資單於發薪日前一天寄到公司信箱，也可在員工入口網「我的薪資」頁面下載。\n\n"
    "## 更改帳戶\n\n要更換薪轉帳戶，請於當月 20 日前把新帳戶存摺影本交給人資部，次月起生效。\n",
    "travel.md": "# 國內出差住宿與交通\n\n## 事前申請\n\n出差須於出發前三個工作日在差旅系統送出申請，經直屬主管核准。\n\n"
    "## 住宿費上限\n\n住宿費依城市訂有每晚上限：臺北市 3,000 元，新北市與桃園市 2,500 元，其他縣市 2,200 元。"
    "超過上限的部分需自付，除非事先經部門主管書面同意。\n\n## 交通\n\n高鐵與火車以標準車廂實支實付；計程車需附收據。\n",
    "ev.md": "# 電動車充電樁使用規定\n\n## 設備\n\n地下三樓設有 12 座電動車充電樁，其中 2 座為快充。\n\n"
    "## 預約\n\n使用前請在員工入口網預約時段，每次最多充電四小時，充滿後請於 30 分鐘內移車。\n\n"
    "## 費用\n\n電費依實際度數每度 6 元計算，次月由薪資扣款。\n",
    "expenses.md": "# 費用報銷辦法\n\n## 期限\n\n費用報銷單須於支出發生後 30 天內在系統送出，逾期不予受理；"
    "年底最後兩週的支出須於 12 月 31 日前送出。\n\n## 單據\n\n發票或收據請拍照上傳，正本於月底前交財務部。\n\n"
    "## 核銷\n\n核准後的款項於次月 5 日隨薪資一併撥付。\n",
    "leave.md": "# 請假規定\n\n## 特別休假\n\n到職滿半年享三天特休，滿一年七天，滿兩年十天。\n\n"
    "## 病假\n\n病假一年三十天內薪資折半發給，連續三天以上須附醫療證明。\n\n## 申請\n\n請在人資系統提出假單並經主管核准。\n",
    "wifi.md": "# 辦公室無線網路\n\n## 員工網路\n\n員工請連 STAR-Corp，以公司帳號與密碼登入，筆電需安裝公司憑證。\n\n"
    "## 訪客網路\n\n訪客請連 STAR-Guest，密碼每週一更新，張貼於一樓櫃檯。\n\n## 問題回報\n\n連線問題請洽資訊部分機 2200。\n",
    "badge.md": "# 門禁卡\n\n## 遺失\n\n門禁卡遺失請於當天通報總務課，補發費用 200 元，舊卡立即停用。\n\n"
    "## 訪客\n\n訪客請在一樓櫃檯登記並換取臨時通行證，離開時歸還。\n\n## 使用時間\n\n門禁系統每日 06:00 至 23:00 開放。\n",
}
SHORT_ENGLISH = [
    ("What is the parking fee?", "parking.md"),
    ("When is payday?", "payroll.md"),
    ("Deadline for expense reports?", "expenses.md"),
]
# Still declined: the dictionary's words for them (飯店 hotel, 充電器 charger, 車庫 garage) are not
# the pages' (住宿, 充電樁, 地下三樓), and e5's similarity alone sits where chit-chat's does.
# strict: when one starts passing, this list is out of date.
STILL_DECLINED = [
    ("What's the hotel cap in Taipei?", "travel.md"),
    ("How many EV chargers are there in the garage?", "ev.md"),
]


@pytest.fixture(scope="module")
def hr_index(tmp_path_factory: pytest.TempPathFactory) -> store.KnowledgeIndex:
    root = tmp_path_factory.mktemp("hr")
    (root / "kb").mkdir()
    for name, text in HR.items():
        (root / "kb" / name).write_text(text, encoding="utf-8")
    asyncio.run(ingest(root / "kb", root / "index", e5.shared(), chunk_chars=600, exact_max=5000))
    index = store.load(root / "index")
    assert index is not None
    return index


def test_the_shipped_coefficients_load() -> None:
    models = learned.load()
    assert models.fallback_reason is None
    assert models.abstention is not None and models.embedder and e5.NAME.startswith(models.embedder)
    assert len(models.ranker) == len(learned.CANDIDATE_FEATURES)
    assert 0 < models.abstention.threshold < 0.5, "declining an answerable question costs more"
    assert Retriever(e5.shared()).fallback_reason is None


@pytest.mark.parametrize(("question", "expected"), SHORT_ENGLISH)
async def test_a_chinese_knowledge_base_answers_short_english_questions_offline(
    hr_index: store.KnowledgeIndex, question: str, expected: str
) -> None:
    """The similarity floor declined these: an English question's best cosine to a Chinese
    document sits under it (a language gap, not a topic gap). Offline, the abstention model
    answers them, with the answer among the top 3."""
    hits = await Retriever(e5.shared()).search(hr_index, question, 3)
    assert expected in [h.chunk.doc_id for h in hits]


@pytest.mark.xfail(strict=True, reason="known miss: no dictionary word of the question is on the page")
@pytest.mark.parametrize(("question", "expected"), STILL_DECLINED)
async def test_short_english_questions_the_dictionary_cannot_reach_are_still_declined(
    hr_index: store.KnowledgeIndex, question: str, expected: str
) -> None:
    hits = await Retriever(e5.shared()).search(hr_index, question, 3)
    assert expected in [h.chunk.doc_id for h in hits]


@pytest.mark.parametrize(("question", "expected"), SHORT_ENGLISH + STILL_DECLINED)
async def test_with_a_model_to_decide_every_answerable_question_gets_its_candidates(
    hr_index: store.KnowledgeIndex, question: str, expected: str
) -> None:
    """abstain=False (a chat model reads the candidates and says whether they answer): even the
    questions the offline model declines reach it, with their document among the candidates."""
    hits = await Retriever(e5.shared()).search(hr_index, question, 3, abstain=False)
    assert expected in [h.chunk.doc_id for h in hits]


@pytest.mark.parametrize("question", ["Who won the football world cup in 2022?", "怎麼做好吃的紅燒牛肉麵？"])
async def test_chit_chat_is_declined_offline_and_handed_to_a_model_otherwise(
    hr_index: store.KnowledgeIndex, question: str
) -> None:
    retriever = Retriever(e5.shared())
    assert await retriever.search(hr_index, question, 3) == []
    found = await retriever.signals(hr_index, question)
    assert found is not None
    with_model = await retriever.search(hr_index, question, 3, abstain=False)
    assert (with_model == []) == retriever.no_evidence(found), "with a model, only no evidence at all is declined"


@pytest.mark.parametrize(
    "content",
    [
        None,  # missing
        "{not json",
        json.dumps({"version": learned.VERSION, "ranker": {"features": ["lexical"], "weights": [1.0]}}),
    ],
)
async def test_missing_or_corrupt_coefficients_fall_back_loudly_to_answering(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, hr_index: store.KnowledgeIndex, content: str | None
) -> None:
    path = tmp_path / "learned.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="askhub.index"):
        models = learned.load(path)
    assert models.fallback_reason and "retrieval coefficients" in models.fallback_reason
    assert any("retrieval coefficients" in r.getMessage() for r in caplog.records)
    retriever = Retriever(e5.shared(), models=models)
    assert retriever.fallback_reason == models.fallback_reason
    # The safe default answers rather than declines: a question the model would decline gets candidates.
    assert await retriever.search(hr_index, "Who won the football world cup in 2022?", 3)
    hits = await retriever.search(hr_index, "When is payday?", 3)
    assert "payroll.md" in [h.chunk.doc_id for h in hits]


def test_readyz_says_the_coefficients_are_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hr_index: store.KnowledgeIndex
) -> None:
    monkeypatch.setattr(learned, "PATH", tmp_path / "nowhere.json")
    monkeypatch.setattr(learned, "_shared", None)
    (tmp_path / "kb").mkdir()
    for name, text in HR.items():
        (tmp_path / "kb" / name).write_text(text, encoding="utf-8")
    settings = make_settings(tmp_path, EMBEDDINGS="e5", KB_DIR=str(tmp_path / "kb"))
    with HubServer(settings) as hub:
        body = httpx.get(f"{hub.url}/readyz", timeout=30).json()
    assert body["ready"] is True, "serving: retrieval still answers"
    assert any("retrieval coefficients missing" in w for w in body.get("warnings", []))
    monkeypatch.setattr(learned, "_shared", None)  # the next test reads the shipped file again


async def test_a_page_quoting_another_pages_title_does_not_outrank_it(tmp_path: Path) -> None:
    """The README's first question on the sample knowledge base: the Chinese expense policy quotes
    〈Travel Expense Claims〉, so it matches the English question by its own words and again by the
    dictionary's translations; counted once, the English page itself comes first."""
    from tests.conftest import SAMPLE_KB

    await ingest(SAMPLE_KB, tmp_path / "index", e5.shared(), chunk_chars=600, exact_max=5000)  # the shipped vectors
    index = store.load(tmp_path / "index")
    assert index is not None
    hits = await Retriever(e5.shared()).search(index, "How do I claim travel expenses?", 3)
    assert hits[0].chunk.doc_id == "travel-expenses.md"
