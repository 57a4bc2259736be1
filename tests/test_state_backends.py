"""The shared-state backends behave the same in memory and in Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.dedupe import EventLedger
from core.jobs import KindError, MemoryQueue, RedisQueue
from core.state import BackendUnavailable, Decision, MemoryBackend, StateBackend
from core.state.base import AdmitPlan
from core.state.redis_backend import RedisBackend
from tests.conftest import RedisServer


async def window_hit(backend: StateBackend, key: str, limit: int, window_sec: float) -> Decision:
    return (await backend.admit(AdmitPlan(window_key=key, limit=limit, window_sec=window_sec))).window


async def bucket_take(backend: StateBackend, key: str, capacity: int, rate: float) -> Decision:
    plan = AdmitPlan(window_key=f"{key}:w", limit=10**6, window_sec=60, bucket_key=key, bucket_capacity=capacity,
                     bucket_rate=rate)  # fmt: skip
    outcome = await backend.admit(plan)
    if outcome.refused_by is None:
        return Decision(True, capacity, 0, 0.0)
    assert outcome.refused_by == "burst" and outcome.refusal is not None
    return outcome.refusal


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[StateBackend]:
    if request.param == "memory":
        store: StateBackend = MemoryBackend()
    else:
        store = RedisBackend(request.getfixturevalue("redis_db"))
    yield store
    await store.close()


async def test_window_admits_exactly_the_limit(backend: StateBackend) -> None:
    decisions = [await window_hit(backend, "w:u1", 3, 60) for _ in range(5)]
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert [d.remaining for d in decisions[:3]] == [2, 1, 0]
    assert decisions[0].reset_after == 0  # slots are still free
    assert 59 < decisions[3].reset_after <= 60  # the oldest hit leaves the window in ~60 s
    other = await window_hit(backend, "w:u2", 3, 60)
    assert other.allowed and other.remaining == 2


async def test_window_frees_a_slot_when_the_oldest_hit_leaves(backend: StateBackend) -> None:
    assert (await window_hit(backend, "w:short", 1, 0.3)).allowed
    refused = await window_hit(backend, "w:short", 1, 0.3)
    assert not refused.allowed and 0 < refused.reset_after <= 0.3
    await asyncio.sleep(refused.reset_after + 0.05)
    assert (await window_hit(backend, "w:short", 1, 0.3)).allowed


async def test_window_is_exact_under_concurrency(backend: StateBackend) -> None:
    results = await asyncio.gather(*(window_hit(backend, "w:crowd", 50, 60) for _ in range(200)))
    assert sum(d.allowed for d in results) == 50


async def test_bucket_allows_bursts_then_the_refill_rate(backend: StateBackend) -> None:
    taken = [await bucket_take(backend, "b:u", 3, 2.0) for _ in range(4)]
    assert [d.allowed for d in taken] == [True, True, True, False]
    assert 0 < taken[3].reset_after <= 0.5  # one token comes back every 0.5 s
    await asyncio.sleep(taken[3].reset_after + 0.05)
    assert (await bucket_take(backend, "b:u", 3, 2.0)).allowed


async def test_counter_take_respects_the_limit(backend: StateBackend) -> None:
    assert await backend.counter_take("c:q", 1, 2, 60) == (True, 1)
    assert await backend.counter_take("c:q", 1, 2, 60) == (True, 2)
    assert await backend.counter_take("c:q", 1, 2, 60) == (False, 2)
    assert await backend.counter_take("c:t", 150.5, None, 60) == (True, 150.5)
    assert await backend.counter_get("c:t") == 150.5
    assert await backend.counter_get("c:missing") == 0


async def test_set_only_if_absent_is_a_claim(backend: StateBackend) -> None:
    claims = await asyncio.gather(*(backend.set("k:event", b"mine", 60, only_if_absent=True) for _ in range(10)))
    assert sum(claims) == 1
    assert await backend.get("k:event") == b"mine"
    await backend.delete("k:event")
    assert await backend.get("k:event") is None


async def test_values_expire(backend: StateBackend) -> None:
    await backend.set("k:short", b"v", 0.2)
    assert await backend.get("k:short") == b"v"
    await asyncio.sleep(0.3)
    assert await backend.get("k:short") is None


async def test_hash_increments_and_lists(backend: StateBackend) -> None:
    await backend.hash_incr("h:usage", {"a": 1, "b": 2.5}, 60)
    await backend.hash_incr("h:usage", {"a": 1}, 60)
    assert await backend.hash_get_all("h:usage") == {"a": 2, "b": 2.5}
    for i in range(5):
        await backend.list_push("l:conv", f"turn{i}".encode(), 3, 60)
    assert await backend.list_range("l:conv", 10) == [b"turn2", b"turn3", b"turn4"]
    assert await backend.list_range("l:conv", 2) == [b"turn3", b"turn4"]
    assert await backend.list_range("l:none", 2) == []


async def test_admit_checks_every_limit_in_one_step(backend: StateBackend) -> None:
    from core.state.base import AdmitPlan

    plan = AdmitPlan(window_key="a:w", limit=5, window_sec=60, bucket_key="a:b", bucket_capacity=3, bucket_rate=0.01,
                     requests_key="a:r", requests_limit=2, tokens_key="a:t", tokens_budget=100)  # fmt: skip
    first, second, third = [await backend.admit(plan) for _ in range(3)]
    assert first.refused_by is None and first.window.remaining == 4
    assert second.refused_by is None
    assert third.refused_by == "tenant_requests" and third.refusal is not None and third.refusal.limit == 2
    fourth = await backend.admit(plan)
    assert fourth.refused_by == "burst" and fourth.refusal is not None and fourth.refusal.reset_after > 50
    await backend.counter_take("a:t", 100, None, 60)
    wide = AdmitPlan(window_key="a:w2", limit=5, window_sec=60, tokens_key="a:t", tokens_budget=100)
    assert (await backend.admit(wide)).refused_by == "tenant_tokens"
    narrow = AdmitPlan(window_key="a:w3", limit=1, window_sec=60)
    assert (await backend.admit(narrow)).refused_by is None
    refused = await backend.admit(narrow)
    assert refused.refused_by == "user_window" and refused.window.remaining == 0


async def test_an_answered_event_is_recorded_through_a_redis_restart(tmp_path: Path) -> None:
    """The answer is already posted when ``done`` runs: losing that record to a Redis blip
    would let the queue's redelivery answer a second time, so ``done`` waits the blip out."""
    redis = RedisServer(tmp_path).start(durable=True)
    backend = RedisBackend(redis.url)
    ledger = EventLedger(backend)
    try:
        assert await ledger.claim("line", "ev-1")
        redis.stop()
        recording = asyncio.create_task(ledger.done("line", "ev-1"))
        await asyncio.sleep(0.5)
        assert not recording.done(), "still trying while Redis is away"
        await asyncio.to_thread(redis.start, durable=True)
        await asyncio.wait_for(recording, 10)
        assert await ledger.state("line", "ev-1") == "done"
        assert not await ledger.claim("line", "ev-1"), "a redelivery is skipped"
        redis.stop()
        with pytest.raises(BackendUnavailable):
            await ledger.done("line", "ev-2", retry_sec=0.3)  # bounded: an outage that lasts is reported
    finally:
        await backend.close()
        redis.stop()


@pytest.mark.parametrize("kind", ["memory", "redis"])
async def test_a_job_kind_declared_late_or_never_is_refused_loudly(kind: str, request: pytest.FixtureRequest) -> None:
    ledger = EventLedger(MemoryBackend())
    queue = MemoryQueue(ledger) if kind == "memory" else RedisQueue(request.getfixturevalue("redis_db"), ledger)

    async def handler(payload: dict[str, object]) -> None: ...

    queue.register("early", handler)
    queue.start()
    try:
        with pytest.raises(KindError, match="'late' declared after the queue started"):
            queue.register("late", handler)
        with pytest.raises(KindError, match="'never' was never declared"):
            await queue.submit("never", {})
    finally:
        await queue.close(0.1)


async def test_an_answer_slower_than_reclaim_after_is_not_reclaimed_beside_itself(redis_db: str) -> None:
    """A live worker keeps its in-flight events fresh: a job that runs for many reclaim periods
    runs once, with a second worker on the same stream (reclaiming it, by either, would answer
    the user a second time, concurrently)."""
    ledger = EventLedger(MemoryBackend())
    one, other = (RedisQueue(redis_db, ledger, reclaim_after_sec=0.2) for _ in range(2))
    other._consumer += "-other"  # another process
    runs: list[int] = []
    release = asyncio.Event()
    changed = asyncio.Condition()
    passes = 0

    def counted(queue: RedisQueue) -> None:  # the reclaim loops' passes, to wait for them
        reclaim_kind = queue._reclaim_kind

        async def counting(kind: str) -> None:
            nonlocal passes
            await reclaim_kind(kind)
            async with changed:
                passes += 1
                changed.notify_all()

        queue._reclaim_kind = counting  # type: ignore[method-assign]

    async def slow(payload: dict[str, object]) -> None:
        async with changed:
            runs.append(1)
            changed.notify_all()
        await release.wait()

    for queue in (one, other):
        counted(queue)
        queue.register("slow", slow)
    one.start()
    try:
        await one.submit("slow", {})
        async with asyncio.timeout(20), changed:
            await changed.wait_for(lambda: bool(runs))
            other.start()
            seen = passes
            await changed.wait_for(lambda: passes >= seen + 20)  # passes over an event idle past 0.2 s
        assert len(runs) == 1
        release.set()
        async with asyncio.timeout(10):
            await one.idle()
    finally:
        release.set()
        await one.close(0.5)
        await other.close(0.5)


async def test_the_client_window_counts_only_admitted_requests(backend: StateBackend) -> None:
    """Every user of one client together: refused by the client window once it is full, and a
    request another limit refused does not use up a client slot."""

    def plan(user: str) -> AdmitPlan:
        return AdmitPlan(window_key=f"cw:{user}", limit=2, window_sec=60, client_key="cw:client", client_limit=3,
                         client_window_sec=60)  # fmt: skip

    outcomes = [await backend.admit(plan(u)) for u in ("a", "a", "a", "b", "c", "d")]
    assert [o.refused_by for o in outcomes] == [None, None, "user_window", None, "client_window", "client_window"]
    refusal = outcomes[4].refusal
    assert refusal is not None and refusal.limit == 3 and 59 < refusal.reset_after <= 60
    assert (await backend.admit(AdmitPlan(window_key="cw:e", limit=2, window_sec=60))).refused_by is None, (
        "a plan without the client window is not limited by it"
    )
