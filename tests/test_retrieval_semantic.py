"""The semantic embedder (e5) in retrieval: paraphrases, other languages, fusion, "I don't know",
the vector cache and the loud fallback. One small knowledge base, one loaded model per session."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import numpy as np
import pytest

from core.kb import e5, store
from core.kb.embedders import FallbackHashEmbedder, HashEmbedder, make_embedder
from core.kb.ingest import ingest
from core.kb.retriever import Retriever
from core.kb.vectorcache import seed_name
from core.metrics import EMBEDDER_FALLBACK
from tests.conftest import HubServer, make_settings

DOCS = {
    "leave-zh.md": "# 請假規定\n\n## 特別休假\n\n到職滿一年的同仁享有七天特別休假，須在人資系統提出申請並經主管核准。\n",
    "parking-zh.md": "# 停車辦法\n\n## 汽車位\n\n地下室汽車位每半年抽籤一次，中籤者每月自付一千元。\n",
    "bonus-zh.md": "# 年終獎金\n\n## 發放\n\n年終獎金於農曆年前發放，金額依年度績效考核等級決定。\n",
    "printer.md": "# Printing\n\n## Paper jams\n\nIf the printer jams, open the front tray, remove the stuck sheet and "
    "call the service desk if it happens again.\n",
    "vpn.md": "# VPN\n\n## Connecting from home\n\nInstall the GlobalProtect client and sign in with your company "
    "account to reach internal systems from outside the office.\n",
    "errors.md": "# Error codes\n\n## Badge reader\n\nCode ZX-4471 on the badge reader means the badge has expired; "
    "bring it to reception.\n",
}


@pytest.fixture(scope="session")
def model() -> e5.E5Embedder:
    return e5.shared()  # loaded once for the whole session


@pytest.fixture(scope="session")
def kb_index(model: e5.E5Embedder, tmp_path_factory: pytest.TempPathFactory) -> store.KnowledgeIndex:
    root = tmp_path_factory.mktemp("semantic")
    for name, text in DOCS.items():
        (root / "kb").mkdir(exist_ok=True)
        (root / "kb" / name).write_text(text, encoding="utf-8")
    asyncio.run(ingest(root / "kb", root / "index", model, chunk_chars=600, exact_max=5000))
    index = store.load(root / "index")
    assert index is not None
    return index


# This knowledge base is tiny: its questions' similarities sit lower than in a real one, so
# the tests set the floor for it (the default is calibrated on full-size sets, see README).
FLOOR = 0.81


async def top_doc(index: store.KnowledgeIndex, retriever: Retriever, question: str) -> str | None:
    hits = await retriever.search(index, question, 3)
    return hits[0].chunk.doc_id if hits else None


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("我想休年假，要怎麼申請？", "leave-zh.md"),  # paraphrased zh-TW
        ("公司的車位怎麼分配？", "parking-zh.md"),
        ("The copier keeps eating my pages, what do I do?", "printer.md"),  # paraphrased English
        ("How do I get on the company network when working remotely?", "vpn.md"),
        ("When is the year-end bonus paid?", "bonus-zh.md"),  # English question, Chinese document
        ("How do I apply for time off?", "leave-zh.md"),
        ("在家要怎麼連到公司內部系統？", "vpn.md"),  # Chinese question, English document
    ],
)
async def test_paraphrased_and_cross_language_questions_find_their_document(
    kb_index: store.KnowledgeIndex, model: e5.E5Embedder, question: str, expected: str
) -> None:
    assert await top_doc(kb_index, Retriever(model, min_similarity=FLOOR), question) == expected


class Topics:
    """A stand-in semantic model whose vectors say only which topic a text is about (in either
    language), so the fixture decides exactly which side of the fusion is right."""

    semantic = True
    similarity_floor = None
    name = "topics"
    dim = 3
    TOPICS = (("bonus", "獎金"), ("party", "尾牙"), ("leave", "休假"))

    async def embed(self, texts: list[str]) -> np.ndarray:
        rows = np.array([[float(any(w in t.lower() for w in words)) for words in self.TOPICS] for t in texts])
        rows[rows.sum(axis=1) == 0] = 1.0  # no topic: equally (un)like everything
        return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


async def test_fusion_ranks_first_what_the_right_side_ranks_first(tmp_path: Path) -> None:
    """BM25 right and the model blind (an exact code), then the model right and BM25 misled
    by shared words (an English question about a Chinese document): fused, the right
    document is first both times, as with the better side alone."""
    docs = {
        "bonus-zh.md": "# 年終獎金\n\n年終獎金於農曆年前發放，金額依績效決定。\n",
        "party.md": "# Year-end party\n\nThe year-end party is in January; the company has paid for the venue.\n",
        "leave.md": "# Leave\n\nAnnual leave is requested in the HR system.\n",
        "errors.md": "# Error codes\n\nCode ZX-4471 on the badge reader means the badge has expired.\n",
    }
    (tmp_path / "kb").mkdir()
    for name, text in docs.items():
        (tmp_path / "kb" / name).write_text(text, encoding="utf-8")
    model = Topics()
    await ingest(tmp_path / "kb", tmp_path / "index", model, chunk_chars=600, exact_max=5000)  # type: ignore[arg-type]
    index = store.load(tmp_path / "index")
    assert index is not None
    fused, lexical_only, dense_only = (Retriever(model, lexical_weight=w) for w in (None, 1.0, 0.0))  # type: ignore[arg-type]
    assert await top_doc(index, lexical_only, "ZX-4471") == "errors.md"
    assert await top_doc(index, fused, "ZX-4471") == "errors.md"
    crossing = "When is the year-end bonus paid?"
    assert await top_doc(index, lexical_only, crossing) == "party.md"  # shares "year-end" and "paid"
    assert await top_doc(index, dense_only, crossing) == "bonus-zh.md"
    assert await top_doc(index, fused, crossing) == "bonus-zh.md"


class Languages:
    """A stand-in semantic model that, like a real one, finds every text in the question's own
    language closer than the right text in another: a language direction outweighs the topic."""

    semantic = True
    similarity_floor = None
    name = "languages"
    TOPICS = (("bonus", "獎金"), ("printer", "印表機"), ("parking", "停車"), ("badge", "門禁"), ("wifi", "無線"))
    dim = 2 + len(TOPICS)

    async def embed(self, texts: list[str]) -> np.ndarray:
        rows = []
        for text in texts:
            chinese = any("\u4e00" <= ch <= "\u9fff" for ch in text)
            topics = [0.6 * any(w in text.lower() for w in words) for words in self.TOPICS]
            rows.append([0.0 if chinese else 1.0, 1.0 if chinese else 0.0, *topics])
        matrix = np.array(rows)
        return (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)


async def test_the_right_document_in_another_language_is_a_candidate(tmp_path: Path) -> None:
    """30 English notes sit nearer an English question than the one Chinese document that answers
    it; each script group's own nearest chunks are candidates too, so the calibrated score can
    put it first."""
    (tmp_path / "kb").mkdir()
    for n in range(30):
        topic = ("printer", "parking", "badge", "wifi")[n % 4]
        (tmp_path / "kb" / f"note-{n:02d}.md").write_text(f"# Note {n}\n\nAbout the {topic}, part {n}.\n")
    zh = {"bonus-zh.md": "年終獎金於農曆年前發放。", "printer-zh.md": "印表機卡紙請聯絡總務。",
          "parking-zh.md": "停車位每半年抽籤。", "badge-zh.md": "門禁卡遺失請補辦。", "wifi-zh.md": "無線網路密碼每月更換。"}  # fmt: skip
    for name, text in zh.items():
        (tmp_path / "kb" / name).write_text(f"# {name[:-3]}\n\n{text}\n", encoding="utf-8")
    model = Languages()
    await ingest(tmp_path / "kb", tmp_path / "index", model, chunk_chars=600, exact_max=5000)  # type: ignore[arg-type]
    index = store.load(tmp_path / "index")
    assert index is not None
    question = "When is the bonus paid out?"
    q, answer, note = await model.embed([question, "年終獎金於農曆年前發放。", "About the printer, part 1."])
    assert q @ note > q @ answer, "every English note is nearer the question than its answer"
    assert await top_doc(index, Retriever(model), question) == "bonus-zh.md"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "question", ["Who won the football world cup in 2022?", "怎麼做好吃的紅燒牛肉麵？", "What is the capital of Peru?"]
)
async def test_off_topic_questions_match_nothing(
    kb_index: store.KnowledgeIndex, model: e5.E5Embedder, question: str
) -> None:
    assert await Retriever(model, min_similarity=FLOOR).search(kb_index, question, 3) == []
    assert await Retriever(model, min_similarity=0.0).search(kb_index, question, 3)  # the floor declined it


class Counting:
    """The real model, counting how many texts it was asked to embed."""

    def __init__(self, inner: e5.E5Embedder) -> None:
        self.inner = inner
        self.embedded = 0

    name = property(lambda self: self.inner.name)
    dim = property(lambda self: self.inner.dim)

    async def embed(self, texts: list[str]) -> np.ndarray:
        self.embedded += len(texts)
        return await self.inner.embed(texts)


async def test_ingest_embeds_only_new_or_changed_chunks(model: e5.E5Embedder, tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    for name in ("printer.md", "vpn.md"):
        (kb / name).write_text(DOCS[name], encoding="utf-8")
    counting = Counting(model)
    cache = tmp_path / "vectors.sqlite"
    first = await ingest(kb, tmp_path / "index", counting, chunk_chars=600, exact_max=5000, cache=cache)  # type: ignore[arg-type]
    assert counting.embedded == first.chunks == 2
    # A rebuild (or an evaluation, or another index) takes the vectors from the cache.
    rebuilt = await ingest(kb, tmp_path / "other", counting, chunk_chars=600, exact_max=5000, cache=cache)  # type: ignore[arg-type]
    assert counting.embedded == 2 and rebuilt.chunks == 2
    a, b = (np.load(p / str(store.current_name(p)) / "vectors.npy") for p in (tmp_path / "index", tmp_path / "other"))
    assert np.array_equal(a, b)
    (kb / "vpn.md").write_text(DOCS["vpn.md"].replace("GlobalProtect", "FortiClient"), encoding="utf-8")
    await ingest(kb, tmp_path / "index", counting, chunk_chars=600, exact_max=5000, cache=cache)  # type: ignore[arg-type]
    assert counting.embedded == 3  # only the edited chunk


async def test_a_fresh_clone_embeds_nothing_its_folder_ships_vectors_for(model: e5.E5Embedder, tmp_path: Path) -> None:
    """``ingest --save-vectors`` writes the folder's vectors beside its documents; another machine's
    first ingest (empty cache) takes them and embeds only what changed since."""
    kb = tmp_path / "kb"
    kb.mkdir()
    for name in ("printer.md", "vpn.md", "leave-zh.md"):
        (kb / name).write_text(DOCS[name], encoding="utf-8")
    counting = Counting(model)
    saved = await ingest(kb, tmp_path / "index", counting, chunk_chars=600, exact_max=5000,  # type: ignore[arg-type]
                         cache=tmp_path / "here.sqlite", save_vectors=True)  # fmt: skip
    assert counting.embedded == saved.chunks == 3
    assert (kb / seed_name(model.name)).is_file()
    (kb / "vpn.md").write_text(DOCS["vpn.md"].replace("GlobalProtect", "FortiClient"), encoding="utf-8")
    clone = await ingest(kb, tmp_path / "clone", counting, chunk_chars=600, exact_max=5000,  # type: ignore[arg-type]
                         cache=tmp_path / "there.sqlite")  # fmt: skip
    assert counting.embedded == 4, "only the edited chunk"
    assert clone.embedded == 3 and clone.cached == 2
    shipped, fresh = (
        np.load(p / str(store.current_name(p)) / "vectors.npy") for p in (tmp_path / "index", tmp_path / "clone")
    )
    assert np.array_equal(shipped[[0, 1]], fresh[[0, 1]])  # leave-zh.md and printer.md: the very same vectors


def test_an_engine_that_cannot_load_falls_back_to_hash_loudly(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path, sample_index: Path
) -> None:
    monkeypatch.setattr(e5, "_shared", None)
    monkeypatch.setattr(e5, "WEIGHTS_SHA256", "0" * 64)  # as if the weight file were damaged or another one
    EMBEDDER_FALLBACK.set(0)
    with caplog.at_level(logging.WARNING, logger="askhub.index"):
        embedder = make_embedder("e5")
    assert isinstance(embedder, FallbackHashEmbedder) and embedder.name == HashEmbedder().name
    assert any("cannot load" in r.getMessage() and "hash" in r.getMessage() for r in caplog.records)
    assert EMBEDDER_FALLBACK._value.get() == 1  # type: ignore[attr-defined]
    # A hub started so serves from the hash index, and /readyz says why retrieval is weaker.
    with HubServer(make_settings(tmp_path, EMBEDDINGS="e5", INDEX_DIR=str(sample_index))) as hub:
        body = httpx.get(f"{hub.url}/readyz").json()
        assert body["ready"] is True
        assert "e5" in body["warnings"][0] and "hash" in body["warnings"][0]
        assert "hub_embedder_fallback 1.0" in httpx.get(f"{hub.url}/metrics").text
    EMBEDDER_FALLBACK.set(0)


async def test_an_index_built_by_hash_is_rebuilt_for_the_semantic_model(tmp_path: Path) -> None:
    """The default moved from hash to e5: an existing hash index is replaced, not refused."""
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "leave.md").write_text("# Leave\n\nAnnual leave is requested in the HR system.\n")
    await ingest(tmp_path / "kb", tmp_path / "index", HashEmbedder(), chunk_chars=600, exact_max=5000)
    report = await ingest(tmp_path / "kb", tmp_path / "index", Topics(), chunk_chars=600, exact_max=5000)  # type: ignore[arg-type]
    assert report.version == 2 and report.embedded == report.chunks == 1
    index = store.load(tmp_path / "index")
    assert index is not None and index.embedder == "topics"
