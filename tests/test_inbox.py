"""The core inbox on both backends: accept (claim, queue, release on failure), answer (done or
released), a redelivery is a no-op, a reclaimed job finds what the dead attempt opened; thread
markers are walled per platform and tenant."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from core.dedupe import EventLedger
from core.errors import Unavailable
from core.inbox import Inbox
from core.inbox.threads import ThreadMarkers
from core.jobs import MemoryQueue, RedisQueue
from core.state import MemoryBackend, StateBackend
from core.state.redis_backend import RedisBackend
from tests.conftest import free_port


@dataclass
class Env:
    backend: StateBackend
    inbox: Inbox
    runs: list[dict[str, Any]] = field(default_factory=list)
    make_queue: Any = None


@pytest.fixture(params=["memory", "redis"])
async def env(request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    if request.param == "memory":
        backend: StateBackend = MemoryBackend()

        def make_queue(ledger: EventLedger, url: str | None = None) -> Any:
            return MemoryQueue(ledger, workers=2, max_waiting=1 if url == "full" else 100)
    else:
        redis_url = request.getfixturevalue("redis_db")
        backend = RedisBackend(redis_url)

        def make_queue(ledger: EventLedger, url: str | None = None) -> Any:
            dead = f"redis://127.0.0.1:{free_port()}/0"
            return RedisQueue(dead if url == "full" else redis_url, ledger, workers=2, reclaim_after_sec=30)

    ledger = EventLedger(backend)
    env = Env(backend, Inbox(ledger, make_queue(ledger), backend), make_queue=make_queue)

    async def handler(payload: dict[str, Any]) -> None:
        async with env.inbox.answer("test", payload["id"]) as answer:
            env.runs.append({"payload": payload, "opened": dict(answer.opened)})
            await answer.note(placeholder=f"ts-{payload['id']}")
            if payload.get("give_back"):
                answer.give_back()
            elif payload.get("fail"):
                raise RuntimeError("the platform failed")
            else:
                answer.shown()

    env.inbox.declare("test.job", handler)
    env.inbox.jobs.start()
    yield env
    await env.inbox.jobs.close(1)
    await backend.close()


async def until(env: Env, condition: Any, *event_ids: str) -> None:
    """Until the events' ledger states meet the condition (a test that fails times out)."""

    async def wait() -> None:
        while not condition([await state(env, e) for e in event_ids]):  # noqa: ASYNC110 - no change notification
            await asyncio.sleep(0.01)

    await asyncio.wait_for(wait(), 10)


async def state(env: Env, event_id: str) -> str | None:
    return await env.inbox.ledger.state("test", event_id)


async def test_an_accepted_event_is_answered_and_marked_done(env: Env) -> None:
    assert await env.inbox.accept("test", "e1", "test.job", {"id": "e1"})
    await env.inbox.idle()
    assert [r["payload"]["id"] for r in env.runs] == ["e1"]
    assert await state(env, "e1") == "done"


async def test_a_second_delivery_while_claimed_or_after_done_is_a_duplicate(env: Env) -> None:
    assert await env.inbox.accept("test", "e2", "test.job", {"id": "e2"})
    assert not await env.inbox.accept("test", "e2", "test.job", {"id": "e2"})  # claimed (processing or done)
    await env.inbox.idle()
    assert not await env.inbox.accept("test", "e2", "test.job", {"id": "e2"})
    assert len(env.runs) == 1


async def test_a_queue_redelivery_of_an_answered_event_is_a_no_op(env: Env) -> None:
    assert await env.inbox.accept("test", "e3", "test.job", {"id": "e3"})
    await env.inbox.idle()
    await env.inbox.jobs.submit("test.job", {"id": "e3"}, event=("test", "e3"))  # at-least-once delivery
    await env.inbox.idle()
    assert len(env.runs) == 1


async def test_a_submit_that_fails_releases_the_claim(env: Env) -> None:
    broken = Inbox(env.inbox.ledger, env.make_queue(env.inbox.ledger, "full"), env.backend)
    broken.declare("test.job", lambda payload: asyncio.sleep(0))
    with contextlib.suppress(Unavailable):  # memory: fill its one slot (nothing reads it); Redis: unreachable
        await broken.jobs.submit("test.job", {"id": "filler"})
    with pytest.raises(Unavailable):
        await broken.accept("test", "e4", "test.job", {"id": "e4"})
    assert await state(env, "e4") is None  # released: the platform's retry is answered
    assert await env.inbox.accept("test", "e4", "test.job", {"id": "e4"})
    await env.inbox.idle()
    assert await state(env, "e4") == "done"
    await broken.jobs.close(0.1)


async def test_given_back_or_failed_before_anything_was_shown_is_released(env: Env) -> None:
    assert await env.inbox.accept("test", "e5", "test.job", {"id": "e5", "give_back": True})
    assert await env.inbox.accept("test", "e6", "test.job", {"id": "e6", "fail": True})
    # Not idle(): a failed job stays in a Redis stream, for a later redelivery. Released, both:
    await until(env, lambda states: states == [None, None], "e5", "e6")


async def test_a_reentered_answer_sees_what_the_earlier_attempt_opened(env: Env) -> None:
    await env.inbox.ledger.claim("test", "e7")
    async with env.inbox.answer("test", "e7") as first:
        assert first.opened == {}
        await first.note(stream="1700000001.000001")
        first.give_back()
    async with env.inbox.answer("test", "e7") as again:  # the worker that reclaims the job
        assert again.opened == {"stream": "1700000001.000001"}
        again.shown()
    assert await state(env, "e7") == "done"


async def test_an_exception_after_something_was_shown_still_marks_done(env: Env) -> None:
    await env.inbox.ledger.claim("test", "e8")
    with pytest.raises(RuntimeError):
        async with env.inbox.answer("test", "e8") as answer:
            answer.shown()
            raise RuntimeError("the final edit failed")
    assert await state(env, "e8") == "done"  # a redelivery would repeat what the user already sees


async def test_thread_markers_are_walled_per_platform_and_tenant(env: Env) -> None:
    threads = ThreadMarkers(env.backend)
    assert await threads.mark("slack", "hr", "T1:C1:1.0")
    assert await threads.marked("slack", "hr", "T1:C1:1.0")
    assert not await threads.marked("slack", "cs", "T1:C1:1.0")  # another tenant never sees it
    assert not await threads.marked("discord", "hr", "T1:C1:1.0")  # nor another platform
    assert not await threads.marked("slack", "hr", "T1:C1:2.0")


async def test_the_memory_queue_runs_a_failed_job_again_a_bounded_number_of_times(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failed job (a relay while Slack is down) runs again after a growing wait, at most
    MAX_DELIVERIES times in all; one that recovers is done once. (Redis: its reclaim redelivers.)"""
    from core.jobs import MAX_DELIVERIES

    backend = MemoryBackend()
    ledger = EventLedger(backend)
    inbox = Inbox(ledger, MemoryQueue(ledger, workers=2, retry_first_sec=0.01, retry_max_sec=0.05), backend)
    runs: dict[str, int] = {}

    async def handler(payload: dict[str, Any]) -> None:
        runs[payload["id"]] = runs.get(payload["id"], 0) + 1
        async with inbox.answer("test", payload["id"]) as answer:
            if runs[payload["id"]] <= payload["failures"]:
                raise RuntimeError("slack is down")
            answer.shown()

    inbox.declare("test.job", handler)
    inbox.jobs.start()
    try:
        assert await inbox.accept("test", "r1", "test.job", {"id": "r1", "failures": 2})
        assert await inbox.accept("test", "r2", "test.job", {"id": "r2", "failures": 99})
        await inbox.idle()  # retries included
        assert runs == {"r1": 3, "r2": MAX_DELIVERIES}
        assert await ledger.state("test", "r1") == "done"
        assert await ledger.state("test", "r2") is None  # released: a platform's redelivery may answer it
        assert "job dropped after repeated failures" in caplog.text
    finally:
        await inbox.jobs.close(1)
