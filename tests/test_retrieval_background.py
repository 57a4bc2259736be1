"""The floor's null class (background.py): just under the similarity floor, a question nearer
the knowledge base than general questions is answered and chit-chat is still declined. Both
indexes are full-size ones the floor was calibrated on: the sample and the handbook set."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from core.config import load_settings
from core.kb import background, e5, store
from core.kb.ingest import ingest
from core.kb.retriever import FLOOR_BAND, LEXICAL_EVIDENCE, Retriever
from tests.conftest import HubServer, make_settings

ROOT = Path(__file__).resolve().parents[1]


def _index(kb: Path, where: Path) -> store.KnowledgeIndex:
    settings = load_settings({}).retrieval  # the chunking /ask's index is built with
    asyncio.run(ingest(kb, where, e5.shared(), chunk_chars=settings.chunk_chars,
                       exact_max=settings.exact_max_chunks, cache=where / "vectors.sqlite"))  # fmt: skip
    index = store.load(where)
    assert index is not None
    return index


@pytest.fixture(scope="module")
def indexes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, store.KnowledgeIndex]:
    return {
        name: _index(kb, tmp_path_factory.mktemp(name))
        for name, kb in (("sample", ROOT / "data" / "kb"), ("handbook", ROOT / "data" / "eval" / "handbook" / "kb"))
    }


async def _best(index: store.KnowledgeIndex, question: str) -> float:
    found = await Retriever(e5.shared()).signals(index, question)
    assert found is not None
    return float(found.dense.max() + LEXICAL_EVIDENCE * found.lexical.max())


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("How many extra screens can someone at the Taiwan office request?", "laptop-tw.md"),
        # 0.017 nearer the knowledge base than a general question: under the margin, but its best
        # match is the Chinese document itself, which no off-topic question's ever is
        ("What happens if a Taipei newcomer fails their trial period?", "probation-tw.md"),
    ],
)
async def test_a_question_just_under_the_floor_that_fits_the_knowledge_base_is_answered(
    indexes: dict[str, store.KnowledgeIndex], question: str, expected: str
) -> None:
    """English questions about Chinese-only documents: a language gap, not a topic gap."""
    index = indexes["handbook"]
    assert e5.SIMILARITY_FLOOR - FLOOR_BAND <= await _best(index, question) < e5.SIMILARITY_FLOOR
    hits = await Retriever(e5.shared()).search(index, question, 3)
    assert expected in [hit.chunk.doc_id for hit in hits]


@pytest.mark.parametrize(
    "question", ["how to fix my car's brakes", "what is the meaning of life", "thanks!", "端午節為什麼要吃粽子？"]
)
async def test_chit_chat_just_under_the_floor_is_still_declined(
    indexes: dict[str, store.KnowledgeIndex], question: str
) -> None:
    index = indexes["sample"]
    assert e5.SIMILARITY_FLOOR - FLOOR_BAND <= await _best(index, question) < e5.SIMILARITY_FLOOR
    assert await Retriever(e5.shared()).search(index, question, 3) == []


async def test_a_configured_floor_is_used_as_is(indexes: dict[str, store.KnowledgeIndex]) -> None:
    """retrieval.min_similarity is the operator's decision point: no background on top of it."""
    question = "How many extra screens can someone at the Taiwan office request?"
    assert (
        await Retriever(e5.shared(), min_similarity=e5.SIMILARITY_FLOOR).search(indexes["handbook"], question, 3) == []
    )


def test_the_background_questions_are_general_and_in_both_languages() -> None:
    assert len(background.QUESTIONS) >= 60
    assert any("\u4e00" <= ch <= "\u9fff" for q in background.QUESTIONS for ch in q)
    assert sum(q.isascii() for q in background.QUESTIONS) >= 30


def test_the_hub_embeds_the_background_at_start_and_declines_chit_chat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through /ask with the default embedder: the background is ready before the first
    question (start-up pays for their embeddings), and chit-chat just under the floor is declined."""
    monkeypatch.setattr(background, "_vectors", {})
    with HubServer(make_settings(tmp_path, EMBEDDINGS="e5")) as hub:
        assert e5.shared().name in background._vectors  # no question asked yet
        response = httpx.post(f"{hub.url}/ask", json={"question": "how to fix my car's brakes"}, timeout=20)
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "none" and response.json()["sources"] == []
