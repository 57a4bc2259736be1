"""The question rewrite with a model configured, through /ask against the fake upstream (the real
openai SDK): one call, skipped when not needed, its failure falls back to the plain search, a
follow-up is rewritten standalone, the rewrite's hits are merged, PII stays local."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.kb.retriever import Hit
from core.kb.store import Chunk
from core.llm.rewrite import SYSTEM, fuse, parse_rewrites, skip_reason
from tests.conftest import HubServer, make_settings, metric, write_yaml
from tests.fakes.openai_upstream import Call, FakeOpenAI

KEY = "ah_rewrite-test-key-0000000000"
REWRITER = {"models": [{"name": "rewriter", "model": "rewrite-llm"}], "retrieval": {"rewrite": {"model": "rewriter"}}}
# An English question whose answer sits in a Chinese document the plain search does not reach.
PATERNITY = "How many days off do I get when my wife gives birth?"
PATERNITY_REWRITE = "en: How many days of paternity leave do I get?\nzh-TW: 配偶分娩可以請幾天陪產假？"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key="sk-up") as server:
        yield server


@pytest.fixture(scope="module")
def local() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(autouse=True)
def _reset(fake: FakeOpenAI, local: FakeOpenAI) -> None:
    fake.reset()
    local.reset()


def start(tmp_path: Path, sample_index: Path, fake: FakeOpenAI | None, config: dict[str, Any], **env: str) -> HubServer:
    path = write_yaml(tmp_path / "hub.yaml", {"resilience": {"retries": 2, "backoff_base_sec": 0.01}, **config})
    upstream = {"OPENAI_API_KEY": "sk-up", "OPENAI_BASE_URL": fake.base_url} if fake else {}
    settings = make_settings(tmp_path, INDEX_DIR=str(sample_index), HUB_CONFIG=str(path),
                             HUB_API_KEYS=f"tester:hr:{KEY}", RATE_LIMIT_MAX_PER_USER="1000", **upstream, **env)  # fmt: skip
    return HubServer(settings).start()


def ask(hub: HubServer, question: str, **extra: object) -> dict[str, Any]:
    response = httpx.post(
        f"{hub.url}/ask", json={"question": question, **extra}, headers={"X-API-Key": KEY}, timeout=20
    )
    assert response.status_code == 200, response.text
    return response.json()


def rewrites(hub: HubServer) -> dict[str, float]:
    outcomes = ("rewritten", "not_needed", "off_topic", "no_model", "unavailable", "failed", "timeout")
    return {o: metric(hub.url, "hub_query_rewrites_total", outcome=o) for o in outcomes}


def counted(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {o: after[o] - before[o] for o in after if after[o] != before[o]}


def rewrite_calls(server: FakeOpenAI, model: str) -> list[Call]:
    return [c for c in server.calls_for(model) if c.json and c.json["messages"][0]["content"].startswith(SYSTEM)]


def plain(hub: HubServer, question: str, context: str = "") -> list[Hit]:
    index = hub.hub.index.current
    return hub.run(hub.hub.retriever.search(index, question, hub.settings.retrieval.top_k, context=context))


def source_ids(body: dict[str, Any]) -> list[str]:
    return [s["id"] for s in body["sources"]]


def test_one_call_rewrites_across_languages_and_its_hits_are_merged(
    tmp_path: Path, sample_index: Path, fake: FakeOpenAI
) -> None:
    hub = start(tmp_path, sample_index, fake, REWRITER)
    try:
        fake.set_behavior("rewrite-llm", reply=PATERNITY_REWRITE)
        before = rewrites(hub)
        body = ask(hub, PATERNITY)
        assert counted(before, rewrites(hub)) == {"rewritten": 1}
        calls = rewrite_calls(fake, "rewrite-llm")
        assert len(calls) == 1 and len(fake.calls_for("rewrite-llm")) == 1
        messages = calls[0].json["messages"]  # type: ignore[index]
        assert "en: <the question in English>" in messages[0]["content"]
        assert "zh-TW: <the question in Traditional Chinese (zh-TW)>" in messages[0]["content"]
        assert messages[-1]["content"] == f"Latest question: {PATERNITY}"
        # The sources are the plain search and both rewrites' searches, fused rank by rank.
        top_k = hub.settings.retrieval.top_k
        searched = [plain(hub, q) for q in (PATERNITY, *parse_rewrites(PATERNITY_REWRITE))]
        assert source_ids(body) == [h.chunk.id for h in fuse(searched, top_k) if h.score >= 0.06]
        assert "leave-policy-zh.md#6" in source_ids(body), "the paternity-leave section, found by the Chinese rewrite"
        assert "leave-policy-zh.md#6" not in [h.chunk.id for h in searched[0]]
        assert len(fake.calls_for("gpt-4o-mini")) == 1, "the answer: one call, on the route's model"
    finally:
        hub.stop()


def test_the_rewrite_is_charged_to_the_asker_like_any_model_call(
    tmp_path: Path, sample_index: Path, fake: FakeOpenAI
) -> None:
    hub = start(tmp_path, sample_index, fake, {**REWRITER, "tenants": {"hr": {"tokens_per_day": 1_000_000}}})
    try:
        fake.set_behavior("rewrite-llm", reply=PATERNITY_REWRITE)
        ask(hub, PATERNITY)
        assert len(rewrite_calls(fake, "rewrite-llm")) == 1
        rows = {row["model"]: row for row in hub.run(hub.hub.usage.report(1, tenant="hr"))}
        assert set(rows) == {"rewrite-llm", "gpt-4o-mini"}, "the rewrite is a row of the asker's usage"
        rewrite = rows["rewrite-llm"]
        assert rewrite["client"] == "tester" and rewrite["prompt_tokens"] > 0 and rewrite["completion_tokens"] > 0
        cost = hub.hub.accounting.cost("rewrite-llm", rewrite["prompt_tokens"], rewrite["completion_tokens"])
        assert rewrite["cost_usd"] == pytest.approx(cost)
        day = hub.hub.governor._day()[0]
        spent = hub.run(hub.hub.backend.counter_get(f"quota:tok:hr:{day}"))
        tokens = sum(row["prompt_tokens"] + row["completion_tokens"] for row in rows.values())
        assert spent == tokens, "the tenant's budget pays for the rewrite and the answer"
    finally:
        hub.stop()


def test_no_call_when_the_question_matches_well_or_not_at_all_or_offline(
    tmp_path: Path, sample_index: Path, fake: FakeOpenAI
) -> None:
    hub = start(tmp_path, sample_index, fake, REWRITER)
    try:
        before = rewrites(hub)
        rewrite = hub.settings.retrieval.rewrite
        clear = plain(hub, "How do I claim travel expenses?")
        assert skip_reason(clear, skip_above=rewrite.skip_above, min_score=0.06) == "not_needed"
        ask(hub, "How do I claim travel expenses?")
        ask(hub, "What is the airspeed velocity of an unladen swallow?")
        assert counted(before, rewrites(hub)) == {"not_needed": 1, "off_topic": 1}
        assert not fake.calls_for("rewrite-llm")
    finally:
        hub.stop()
    offline = start(tmp_path, sample_index, None, {})
    try:
        before, calls = rewrites(offline), len(fake.calls)
        body = ask(offline, PATERNITY)
        assert body["model"] == "extractive"
        assert counted(before, rewrites(offline)) == {"no_model": 1}
        assert len(fake.calls) == calls
    finally:
        offline.stop()


@pytest.mark.parametrize(
    ("behavior", "outcome"),
    [({"mode": "error", "status": 500}, "failed"), ({"mode": "malformed"}, "failed"), ({"mode": "stall"}, "timeout")],
)
def test_a_failed_or_slow_rewrite_falls_back_to_the_plain_search(
    tmp_path: Path, sample_index: Path, fake: FakeOpenAI, behavior: dict[str, Any], outcome: str
) -> None:
    config = {**REWRITER, "retrieval": {"rewrite": {"model": "rewriter", "timeout_sec": 0.5}}}
    hub = start(tmp_path, sample_index, fake, config)
    try:
        fake.set_behavior("rewrite-llm", **behavior)
        before = rewrites(hub)
        body = ask(hub, PATERNITY)
        assert counted(before, rewrites(hub)) == {outcome: 1}
        assert len(fake.calls_for("rewrite-llm")) == 1, "one attempt: a side call is never retried"
        assert body["model"] == "gpt-4o-mini"
        assert source_ids(body) == [h.chunk.id for h in plain(hub, PATERNITY) if h.score >= 0.06]
    finally:
        hub.stop()


def test_a_follow_up_is_rewritten_standalone(tmp_path: Path, sample_index: Path, fake: FakeOpenAI) -> None:
    hub = start(tmp_path, sample_index, fake, REWRITER)
    try:
        standalone = "What is the deadline for travel expense claims?"
        fake.set_behavior("rewrite-llm", reply=f"en: {standalone}\nzh-TW: 差旅費用報銷的期限是什麼時候？")
        first = "How do I claim travel expenses?"
        ask(hub, first, conversation_id="c-follow")
        assert not fake.calls_for("rewrite-llm"), "the first question matched well"
        before = rewrites(hub)
        body = ask(hub, "and by when?", conversation_id="c-follow")
        assert counted(before, rewrites(hub)) == {"rewritten": 1}
        (call,) = rewrite_calls(fake, "rewrite-llm")
        user = call.json["messages"][-1]["content"]  # type: ignore[index]
        assert user.startswith(f"Earlier question: {first}\nEarlier answer: [gpt-4o-mini]")
        assert user.endswith("Latest question: and by when?")
        searched = [
            plain(hub, "and by when?", context=first),
            plain(hub, standalone),
            plain(hub, "差旅費用報銷的期限是什麼時候？"),
        ]
        assert source_ids(body) == [h.chunk.id for h in fuse(searched, hub.settings.retrieval.top_k) if h.score >= 0.06]
        assert source_ids(body)[0] == "travel-expenses.md#8", "the Deadlines section leads"
    finally:
        hub.stop()


def test_personal_data_is_rewritten_by_the_local_model_or_not_at_all(
    tmp_path: Path, sample_index: Path, fake: FakeOpenAI, local: FakeOpenAI
) -> None:
    question = "我的手機 0912-345-678 換了，出差報帳怎麼辦"
    hub = start(tmp_path, sample_index, fake, REWRITER, LOCAL_LLM_BASE_URL=local.base_url, LOCAL_LLM_MODEL="local-llm")
    try:
        local.set_behavior("local-llm", reply="zh-TW: 出差報帳怎麼辦\nen: How do I claim travel expenses?")
        before = rewrites(hub)
        body = ask(hub, question)
        assert body["model"] == "local-llm"
        assert counted(before, rewrites(hub)) == {"rewritten": 1}
        assert len(rewrite_calls(local, "local-llm")) == 1
        assert not fake.calls, "neither the rewrite nor the answer reached the cloud"
    finally:
        hub.stop()
    no_local = start(tmp_path, sample_index, fake, REWRITER)
    try:
        before = rewrites(no_local)
        assert ask(no_local, question)["model"] == "extractive"
        assert counted(before, rewrites(no_local)) == {"no_model": 1}
        assert not fake.calls
    finally:
        no_local.stop()


def _hit(chunk_id: str, score: float) -> Hit:
    return Hit(Chunk(chunk_id, chunk_id.split("#")[0], "t", "s", "x", "p"), score, score, score)


def test_fusion_keeps_each_chunk_once_with_its_best_score() -> None:
    plain_hits = [_hit("a#0", 0.30), _hit("b#0", 0.20), _hit("c#0", 0.10)]
    rewritten = [_hit("d#0", 0.70), _hit("a#0", 0.50), _hit("e#0", 0.20)]
    fused = fuse([plain_hits, rewritten], 4)
    assert [h.chunk.id for h in fused] == ["d#0", "a#0", "b#0", "e#0"], "by best score; a tie to the higher rank"
    assert fused[1].score == 0.50


def test_the_reply_is_read_line_by_line() -> None:
    assert parse_rewrites("en: How do I claim?\nzh-TW：怎麼報帳？\n") == ["How do I claim?", "怎麼報帳？"]
    assert parse_rewrites("How do I claim travel expenses?") == ["How do I claim travel expenses?"]
    assert parse_rewrites("Sure! Here you go:\nsomething\nelse") == []
