"""Which office a question is about: place names in any language (core/kb/places.py), kept per
document at ingest, and near-identical per-office policies told apart by them in retrieval."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.kb import e5, places, store
from core.kb.ingest import ingest
from core.kb.retriever import Retriever


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("How much is the Taiwan office's meal subsidy?", {"TW"}),
        ("here in taipei, can I book a desk?", {"TW"}),  # a city, typed in lower case
        ("我們臺北這邊", {"TW"}),  # 臺 and 台 are one
        ("東京辦公室和新加坡辦公室", {"JP", "SG"}),
        ("the U.K. and US teams", {"GB", "US"}),
        ("Hong Kong office", {"HK"}),
        ("let us know by Friday", set()),  # "us" is a word, "US" a country
        ("Nigeria's office", {"NG"}),  # not also Niger
        ("please peruse the handbook", set()),  # an English name stands alone as a word: not Peru
        ("the Center for Learning, ask Jordan", set()),  # CLDR names that are everyday words
        ("reagents and Christmas gifts", set()),
    ],
)
def test_places_named_in_english_and_chinese(text: str, expected: set[str]) -> None:
    assert places.named(text) == expected


TW_MEALS = """# 台灣辦公室餐費補助

## 補助金額

台北辦公室同仁每月可領餐費補助新台幣二千四百元，隨薪資發放。

## 加班餐

晚上八點後仍在公司加班，可另外報支一餐，上限新台幣一百五十元。
"""
INTL_MEALS = """# International Office Meal Allowance

## Allowance

Singapore staff receive a meal allowance of SGD 180 a month with their salary; Tokyo staff receive JPY 15,000.

## Working late

If you work past 8 pm you may claim one dinner, up to USD 15, with the receipt.
"""
OTHER = {
    "parking-intl.md": "# Parking\n\nParking at the Singapore office is allocated by ballot every year.\n",
    "laptop-tw.md": "# 筆電申請\n\n台灣辦公室同仁的筆電每三年更換一次，請向資訊部申請。\n",
}


@pytest.fixture(scope="module")
def office_index(tmp_path_factory: pytest.TempPathFactory) -> store.KnowledgeIndex:
    import asyncio

    root = tmp_path_factory.mktemp("offices")
    (root / "kb").mkdir()
    for name, text in {"meals-tw.md": TW_MEALS, "meals-intl.md": INTL_MEALS, **OTHER}.items():
        (root / "kb" / name).write_text(text, encoding="utf-8")
    asyncio.run(ingest(root / "kb", root / "index", e5.shared(), chunk_chars=600, exact_max=5000))
    index = store.load(root / "index")
    assert index is not None
    return index


def test_ingest_keeps_the_countries_each_document_names(office_index: store.KnowledgeIndex) -> None:
    named = {d.id: set(d.places) for d in office_index.documents}
    assert named == {"meals-tw.md": {"TW"}, "meals-intl.md": {"SG", "JP"}, "parking-intl.md": {"SG"},
                     "laptop-tw.md": {"TW"}}  # fmt: skip


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        # Asked in the other office's language: BM25 and the model both lean to the sibling in
        # the question's language; the office named decides.
        ("How much is the monthly meal allowance at the Taiwan office?", "meals-tw.md"),
        ("新加坡辦公室每個月的餐費補助是多少？", "meals-intl.md"),
        # Asked in the document's own language: unchanged.
        ("台北辦公室每個月餐費補助多少？", "meals-tw.md"),
        ("What is the meal allowance for Tokyo staff?", "meals-intl.md"),
    ],
)
async def test_near_identical_office_policies_are_told_apart_by_the_office_named(
    office_index: store.KnowledgeIndex, question: str, expected: str
) -> None:
    hits = await Retriever(e5.shared(), min_similarity=0.0).search(office_index, question, 3)
    assert hits[0].chunk.doc_id == expected


async def test_an_index_written_before_places_still_loads_and_answers(tmp_path: Path) -> None:
    """A manifest without ``places`` (an older index) reads as no places: nothing is penalised."""
    import orjson

    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "meals-intl.md").write_text(INTL_MEALS, encoding="utf-8")
    await ingest(tmp_path / "kb", tmp_path / "index", e5.shared(), chunk_chars=600, exact_max=5000)
    version = next(p for p in (tmp_path / "index").iterdir() if p.is_dir() and p.name.startswith("v"))
    manifest = orjson.loads((version / "manifest.json").read_bytes())
    for doc in manifest["documents"]:
        del doc["places"]
    (version / "manifest.json").write_bytes(orjson.dumps(manifest))
    index = store.load(tmp_path / "index")
    assert index is not None and index.documents[0].places == ()
    hits = await Retriever(e5.shared(), min_similarity=0.0).search(index, "Taiwan office meal allowance", 3)
    assert hits[0].chunk.doc_id == "meals-intl.md"


SYNDROME = {
    # Several documents on one subject share its title: the subject's words match all of them,
    # and BM25 on the rest ("genetic", "related" in a list of resources) must not outvote meaning.
    "overview.md": "# Marlow-Tate syndrome\n\nMarlow-Tate syndrome is a rare condition that affects the face and "
    "the brain; children with it often have wide-set eyes and a small head.\n",
    "causes.md": "# Marlow-Tate syndrome\n\nMarlow-Tate syndrome results from mutations in the ACTB or ACTG1 gene, "
    "which carry the instructions for building actin proteins inside cells.\n",
    "resources.md": "# Marlow-Tate syndrome\n\nThese resources address the diagnosis or management of Marlow-Tate "
    "syndrome and related conditions: the Genetic Testing Registry, genetic counseling, and support groups.\n",
}
for n, topic in enumerate(["printer paper jams", "parking permits", "annual leave requests", "VPN access from home",
                           "expense claims for travel", "laptop replacement"]):  # fmt: skip
    SYNDROME[f"other-{n}.md"] = f"# {topic.title()}\n\nThis page explains {topic} for all staff, with the forms.\n"


@pytest.mark.xfail(
    strict=True,
    reason="the title discount for short questions (a MedQuAD rule) is gone; the learned ranker puts the "
    "resources page 0.2 ahead here, and held out on MedQuAD it ranks as well as dense alone (docs/retrieval.md)",
)
async def test_a_document_that_only_shares_the_subject_words_does_not_outrank_the_answer(tmp_path: Path) -> None:
    (tmp_path / "kb").mkdir()
    for name, text in SYNDROME.items():
        (tmp_path / "kb" / name).write_text(text, encoding="utf-8")
    await ingest(tmp_path / "kb", tmp_path / "index", e5.shared(), chunk_chars=600, exact_max=5000)
    index = store.load(tmp_path / "index")
    assert index is not None
    question = "What are the genetic changes related to Marlow-Tate syndrome?"
    hits = await Retriever(e5.shared(), min_similarity=0.0).search(index, question, 3)
    assert hits[0].chunk.doc_id == "causes.md"
