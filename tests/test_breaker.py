"""The circuit breaker is never stuck half-open: a probe's outcome (a client error included)
settles it, a lost probe is given up, and after ``open_sec`` a probe is always let through."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.config import BreakerSettings, ResilienceSettings
from core.errors import UpstreamRefused
from core.llm.base import ProviderError
from core.llm.breaker import Breaker
from core.llm.resilience import Resilience
from core.llm.routing import ModelSpec, Route

OPEN_SEC = 30.0
OUTCOMES = ("success", "5xx", "timeout", "400", "429")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock) -> Breaker:
    rules = BreakerSettings(consecutive_failures=2, min_calls=3, open_sec=OPEN_SEC, p95_latency_sec=3.0)
    return Breaker("m", rules, clock=clock)


def report(b: Breaker, outcome: str) -> None:
    """What Resilience tells the breaker for each kind of outcome."""
    if outcome == "success":
        b.record(True, 0.1)
    elif outcome == "timeout":
        b.record(False, 30.0)
    elif outcome in ("5xx", "429"):
        b.record(False, 0.2)
    else:  # an upstream client error says nothing of the model's health
        b.settle()


step = st.one_of(
    st.tuples(st.just("call"), st.sampled_from(OUTCOMES)),
    st.tuples(st.just("lost"), st.none()),  # let through, never reported (its caller vanished)
    st.tuples(st.just("abandoned"), st.none()),  # let through, then cancelled before an outcome
    st.tuples(st.just("clock"), st.floats(0.0, 2 * OPEN_SEC)),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(step, max_size=60))
def test_the_breaker_is_never_stuck_half_open(steps: list[tuple[str, object]]) -> None:
    clock = Clock()
    b = breaker(clock)
    lost_probe = False  # a probe let through in half-open state whose outcome never came
    for action, arg in steps:
        if action == "clock":
            clock.now += float(arg)  # type: ignore[arg-type]
            continue
        probing = b.state != "closed"
        if not b.allow():
            assert b.state in ("open", "half_open")
            continue
        if action == "call":
            report(b, str(arg))
            assert b.state != "half_open", f"a probe that got {arg} left the breaker half-open"
            lost_probe = False
        elif action == "abandoned":
            b.release()
        else:
            lost_probe = lost_probe or probing
        assert b.state != "half_open" or lost_probe or action == "abandoned"
    # Whatever happened, open_sec later a call is let through (and its outcome settles it).
    clock.now += OPEN_SEC + 1e-6  # (the clock's float sums)
    assert b.allow(), f"stuck: {b.describe()}"
    report(b, "400")
    assert b.state in ("open", "closed") and b.state != "half_open"


def test_a_probe_that_gets_a_client_error_closes_the_breaker() -> None:
    clock = Clock()
    b = breaker(clock)
    report(b, "5xx")
    report(b, "5xx")
    assert b.state == "open" and not b.allow()
    clock.now += OPEN_SEC
    assert b.allow() and b.state == "half_open"
    assert not b.allow(), "one probe at a time"
    b.settle()
    assert b.state == "closed" and b.allow()


def test_a_lost_probe_is_given_up_after_open_sec() -> None:
    clock = Clock()
    b = breaker(clock)
    report(b, "timeout")
    report(b, "timeout")
    clock.now += OPEN_SEC
    assert b.allow()  # the probe, never reported
    clock.now += OPEN_SEC - 1
    assert not b.allow()
    clock.now += 1
    assert b.allow(), "a second probe once the first is overdue"


def test_client_errors_never_count_against_the_model() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(50):
        report(b, "400")
    assert b.state == "closed"


@pytest.mark.parametrize("status", [400, 404, 413, 422])
def test_resilience_relays_a_client_error_after_one_attempt_and_settles_a_probe(status: int) -> None:
    """Through Resilience itself: the half-open probe gets an upstream 400 — the breaker closes,
    the caller gets the upstream's own error, the route's next model is never tried."""
    clock = Clock()
    resilience = Resilience(ResilienceSettings(retries=2, backoff_base_sec=0.0))
    b = resilience._breakers["small"] = breaker(clock)
    report(b, "5xx")
    report(b, "5xx")
    clock.now += OPEN_SEC
    small = ModelSpec("small", "openai", "gpt-4o-mini", None, None, 5.0, False, 8)
    large = ModelSpec("large", "openai", "gpt-4o", None, None, 5.0, False, 8)
    tried: list[str] = []

    async def attempt(spec: ModelSpec) -> str:
        tried.append(spec.name)
        raise ProviderError("client", "upstream answered", status=status,
                            upstream={"message": "context too long", "code": "context_length_exceeded"})  # fmt: skip

    with pytest.raises(UpstreamRefused) as refused:
        asyncio.run(resilience.call(Route("small", (small, large)), attempt, relay=True))
    assert tried == ["small"], "one attempt: no retry, no fallback"
    assert (refused.value.status, refused.value.message, refused.value.code) == (
        status,
        "context too long",
        "context_length_exceeded",
    )
    assert b.state == "closed"


def test_resilience_turns_an_exhausted_429_into_a_429_on_v1() -> None:
    resilience = Resilience(ResilienceSettings(retries=1, backoff_base_sec=0.0, backoff_max_sec=0.01))
    small = ModelSpec("small", "openai", "gpt-4o-mini", None, None, 5.0, False, 8)
    calls: list[str] = []

    async def attempt(spec: ModelSpec) -> str:
        calls.append(spec.name)
        raise ProviderError("rate_limited", "upstream rate limit", status=429, retry_after=0.0)

    with pytest.raises(Exception) as limited:
        asyncio.run(resilience.call(Route("small", (small,)), attempt, relay=True))
    assert getattr(limited.value, "status", None) == 429 and "Retry-After" in limited.value.headers  # type: ignore[attr-defined]
    assert calls == ["small", "small"], "the hub's own retry happened first"
