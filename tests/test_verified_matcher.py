"""The matcher's strict thresholds with the default semantic embedder (e5) and the hash one:
rewordings of a question match, questions about something else do not, nor other collections."""

from __future__ import annotations

import time

import pytest

from core.kb import e5
from core.kb.embedders import HashEmbedder
from core.verified.matcher import Matcher, default_threshold
from core.verified.model import VerifiedAnswer


def answer(question: str, collection: str = "public", n: int = 0) -> VerifiedAnswer:
    now = time.time()
    return VerifiedAnswer(f"id{n}", question, f"answer {n}", collection, "Alice", now, now)


SAVED = ["How do I reset my password?", "How many days of annual leave do I get?", "What is the return policy?"]


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("how can i reset my password", 0),  # measured cosine 0.982
        ("How many annual leave days do I have?", 1),  # 0.984
        ("what's your return policy", 2),  # 0.967
        ("How do I reset my VPN password?", None),  # 0.954: another password
        ("How many days of parental leave do I get?", None),  # 0.957: another leave
        ("What is the refund policy?", None),  # 0.952
        ("What is the shipping policy?", None),  # 0.881
    ],
)
async def test_e5_matches_rewordings_only(question: str, expected: int | None) -> None:
    model = e5.shared()
    matcher = Matcher(model, default_threshold(model))
    await matcher.rebuild([answer(q, n=i) for i, q in enumerate(SAVED)])
    found = await matcher.match(question, frozenset({"public"}))
    assert (found.id if found else None) == (None if expected is None else f"id{expected}")


async def test_only_the_askers_collections_and_live_answers_are_searched() -> None:
    matcher = Matcher(HashEmbedder(), default_threshold(HashEmbedder()))
    retired = VerifiedAnswer("old", "What is the return policy?", "old", "public", "Bo", 1.0, 1.0, retired=True)
    await matcher.rebuild([answer("How do I reset my password?", "internal"), retired])
    assert await matcher.match("How do I reset my password?", frozenset({"public"})) is None
    assert (await matcher.match("how do I reset my password", frozenset({"internal", "public"}))).id == "id0"
    assert await matcher.match("What is the return policy?", frozenset({"public"})) is None
    assert not matcher.has_any(frozenset({"public"}))
