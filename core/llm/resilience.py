"""Calling a route's models: timeouts, bounded retries, fallbacks, breakers, backpressure.

For each model of the route in order (skipping those whose breaker is open): try, and on
a retryable failure (429, 5xx, timeout, connection, unreadable reply) retry with
exponential backoff and full jitter — or after the upstream's Retry-After when it sends
one no longer than the longest backoff — while the request's time budget lasts. Then the
next model. When every model has failed: 503 with Retry-After (504 when all of them only timed out, 502 when all of them
only gave unusable replies). Never a 500, never an invented answer.

An upstream's client error (the request itself refused: 400, 404, 413, 422) is never retried
and never counted against the model's breaker (a probe that gets one closes it). For a body
the hub relays as it is (``/v1``: ``relay=True``) it ends the call at once and reaches the
caller as it is — status, message, code — and an upstream 429 that outlasts every retry and
fallback is a 429 with Retry-After there; elsewhere the next model is tried, as before.

Each model also has a bound on calls in flight from this process; a call that cannot get
a slot within the budget fails over like an unavailable model, so a slow upstream makes
callers wait a bounded time instead of piling up without limit.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from core.config import ResilienceSettings
from core.errors import BadGateway, HubError, RateLimited, Unavailable, UpstreamRefused, UpstreamTimeout
from core.llm.base import ProviderError
from core.llm.breaker import Breaker
from core.llm.routing import ModelSpec, Route
from core.metrics import LLM_CALLS, LLM_FALLBACKS, LLM_RETRIES, LLM_SECONDS
from core.tracing import model_call

T = TypeVar("T")
PATIENT_PAUSE_MAX = 5.0
RETRYABLE = {"rate_limited", "server", "timeout", "connection", "bad_response"}
SATURATED = "saturated"
RELAYED_STATUSES = frozenset({400, 404, 413, 422})  # the request's own fault: the caller hears it as it is


class Resilience:
    def __init__(self, settings: ResilienceSettings) -> None:
        self._s = settings
        self._breakers: dict[str, Breaker] = {}
        self._slots: dict[str, asyncio.Semaphore] = {}

    def configure(self, settings: ResilienceSettings) -> None:
        self._s = settings
        for breaker in self._breakers.values():
            breaker.configure(settings.breaker)

    def breaker(self, model: str) -> Breaker:
        breaker = self._breakers.get(model)
        if breaker is None:
            breaker = self._breakers[model] = Breaker(model, self._s.breaker)
        return breaker

    def breakers(self) -> dict[str, Breaker]:
        return dict(self._breakers)

    def _slot(self, spec: ModelSpec) -> asyncio.Semaphore:
        slot = self._slots.get(spec.name)
        if slot is None:
            slot = self._slots[spec.name] = asyncio.Semaphore(spec.max_concurrency)
        return slot

    def busy(self, spec: ModelSpec) -> bool:
        """Every in-flight slot of the model is taken (a side call then stays away)."""
        return self._slot(spec).locked()

    async def call(
        self,
        route: Route,
        attempt: Callable[[ModelSpec], Awaitable[T]],
        *,
        patient: bool = False,
        retries: int | None = None,
        operation: str = "chat",
        relay: bool = False,
    ) -> tuple[T, ModelSpec]:
        """The first successful attempt over the route's models, with its model.

        A caller on the line (/ask, /v1) gets ``budget_sec`` and waits at most ``max_wait_sec``
        for a busy model. A ``patient`` caller — an acknowledged chat event, whose answer may
        come later — waits for a busy model as long as the budget lasts and, when every model
        is down, tries the route again (every few seconds, breakers probing) for up to
        ``patient_sec``: the event is answered after the outage instead of with an apology.
        ``retries`` overrides the configured retries per model (0 for a one-shot side call).
        ``operation`` (chat, embeddings) names each attempt's span. ``relay``: the caller relays
        an OpenAI body (``/v1``), so upstream client errors and 429s reach it as they are.
        """
        started = time.monotonic()
        until = started + (self._s.patient_sec if patient else self._s.budget_sec)
        pause = 1.0
        while True:
            try:
                deadline = min(until, time.monotonic() + self._s.budget_sec)
                return await self._one_round(route, attempt, deadline, patient, retries, operation, relay)
            except UpstreamRefused:
                raise  # the same request would be refused again
            except HubError:
                if not patient or time.monotonic() + pause >= until:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, PATIENT_PAUSE_MAX)

    async def _one_round(
        self,
        route: Route,
        attempt: Callable[[ModelSpec], Awaitable[T]],
        deadline: float,
        patient: bool,
        retries: int | None,
        operation: str,
        relay: bool,
    ) -> tuple[T, ModelSpec]:
        wait_until = deadline if patient else time.monotonic() + self._s.max_wait_sec
        failures: list[ProviderError] = []
        allowed = self._s.retries if retries is None else retries
        for position, spec in enumerate(route.models):
            breaker = self.breaker(spec.name)
            for retry in range(allowed + 1):
                if not breaker.allow():
                    failures.append(ProviderError("connection", f"{spec.name}: circuit open"))
                    break
                started = time.monotonic()
                try:
                    # One span per attempt; the attempt adds the reply's attributes (tokens, finish reason).
                    with model_call(operation, spec.provider, spec.upstream, spec.name, retry):
                        async with self._bounded(spec, min(deadline, wait_until)):
                            result = await attempt(spec)
                except ProviderError as exc:
                    elapsed = time.monotonic() - started
                    self._failed(spec, breaker, exc, elapsed)
                    if relay and exc.kind == "client" and exc.status in RELAYED_STATUSES:
                        raise _refused(exc) from None  # one attempt: no retry, no fallback
                    failures.append(exc)
                    delay = self._delay(exc, retry) if retry < allowed else None
                    if delay is None or time.monotonic() + delay >= deadline:
                        break
                    LLM_RETRIES.labels(spec.upstream, exc.kind).inc()
                    await asyncio.sleep(delay)
                    continue
                except BaseException:
                    breaker.release()  # cancelled or broken before any outcome: a probe is not held
                    raise
                self._succeeded(spec, breaker, time.monotonic() - started)
                if position:
                    LLM_FALLBACKS.labels(route.name).inc()
                return result, spec
            if time.monotonic() >= deadline:
                break
        raise self._all_failed(failures, relay)

    async def stream(
        self,
        route: Route,
        open_stream: Callable[[ModelSpec], AsyncIterator[T]],
        *,
        patient: bool = False,
        relay: bool = False,
    ) -> AsyncIterator[tuple[T, ModelSpec]]:
        """Like ``call`` until the first piece arrives; after that the stream is committed
        to its model, and a failure ends it with the error (a half-sent answer cannot be
        taken back and restarted elsewhere)."""

        async def first(spec: ModelSpec) -> tuple[T, AsyncIterator[T]]:
            parts = open_stream(spec)
            try:
                return await anext(parts), parts
            except StopAsyncIteration:
                raise ProviderError("bad_response", f"{spec.name}: empty stream") from None

        (head, parts), spec = await self.call(route, first, patient=patient, relay=relay)
        yield head, spec
        try:
            async for part in parts:
                yield part, spec
        except ProviderError as exc:
            self.breaker(spec.name).record(False, 0.0)
            LLM_CALLS.labels(spec.upstream, exc.kind).inc()
            raise _single_error(exc) from None

    def _bounded(self, spec: ModelSpec, deadline: float) -> _Slot:
        return _Slot(self._slot(spec), max(0.0, deadline - time.monotonic()))

    def _delay(self, exc: ProviderError, retry: int) -> float | None:
        if exc.kind not in RETRYABLE or retry >= self._s.retries or exc.kind == SATURATED:
            return None
        if exc.retry_after is not None:
            # Honoured when short; a longer wait is better spent on the next model.
            return exc.retry_after if exc.retry_after <= self._s.backoff_max_sec else None
        ceiling = min(self._s.backoff_max_sec, self._s.backoff_base_sec * 2**retry)
        return random.uniform(0, ceiling)  # full jitter: retries of many callers spread out

    @staticmethod
    def _failed(spec: ModelSpec, breaker: Breaker, exc: ProviderError, elapsed: float) -> None:
        LLM_CALLS.labels(spec.upstream, exc.kind).inc()
        if exc.kind == "client":  # a request the upstream refused as invalid says nothing of its health
            breaker.settle()
        else:
            breaker.record(False, elapsed)

    @staticmethod
    def _succeeded(spec: ModelSpec, breaker: Breaker, elapsed: float) -> None:
        LLM_CALLS.labels(spec.upstream, "ok").inc()
        LLM_SECONDS.labels(spec.upstream).observe(elapsed)
        breaker.record(True, elapsed)

    def _all_failed(self, failures: list[ProviderError], relay: bool = False) -> HubError:
        kinds = {f.kind for f in failures}
        if relay and "rate_limited" in kinds and kinds <= {"rate_limited", SATURATED}:
            waits = [f.retry_after for f in failures if f.retry_after]
            return RateLimited("the model's provider is rate limiting the hub; try again later",
                               retry_after=max(waits, default=5.0))  # fmt: skip
        if kinds == {"timeout"}:
            return UpstreamTimeout("the model did not answer in time")
        if kinds and kinds <= {"bad_response", "client"}:
            return BadGateway("the model gave an unusable reply")
        waits = [f.retry_after for f in failures if f.retry_after]
        open_for = [b.describe() for b in self._breakers.values() if b.state == "open"]
        wait = max(waits, default=self._s.breaker.open_sec if open_for else 5.0)
        return Unavailable("every model that may answer this question is unavailable right now", retry_after=wait)


def _refused(exc: ProviderError) -> UpstreamRefused:
    detail = exc.upstream or {}
    return UpstreamRefused(
        exc.status or 400,
        detail.get("message") or f"the model's provider refused the request ({exc.status})",
        code=detail.get("code"),
        param=detail.get("param"),
        kind=detail.get("type"),
    )


def _single_error(exc: ProviderError) -> HubError:
    if exc.kind == "timeout":
        return UpstreamTimeout("the model stopped answering in time")
    if exc.kind in ("bad_response", "client"):
        return BadGateway("the model's answer broke off")
    return Unavailable("the model failed while answering", retry_after=exc.retry_after or 5)


class _Slot:
    """One of a model's in-flight slots, waited for at most until the request's deadline."""

    def __init__(self, semaphore: asyncio.Semaphore, wait: float) -> None:
        self._semaphore = semaphore
        self._wait = wait

    async def __aenter__(self) -> None:
        try:
            await asyncio.wait_for(self._semaphore.acquire(), self._wait)
        except TimeoutError:
            raise ProviderError(SATURATED, "too many calls in flight to this model") from None  # type: ignore[arg-type]

    async def __aexit__(self, *exc: object) -> None:
        self._semaphore.release()
