"""A circuit breaker per model, over a rolling window of its calls.

It opens when the model is slow (p95 latency over the threshold) or failing (error rate over
the threshold) once the window holds enough calls, or after a run of consecutive failures.
While open, the model is skipped (the route's next model answers). After ``open_sec`` one
probe call is let through: success closes the breaker, failure opens it again, and a client
error (the upstream refused that request as invalid, so it is up) closes it too — client
errors never count against a model. A probe nobody reports back on (its caller was
cancelled) is given up after another ``open_sec`` and a new one let through, so no state
can stay half-open. Opening writes one alert line, for on-call.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable

from core.config import BreakerSettings
from core.metrics import BREAKER_STATE

log = logging.getLogger("askhub.alert")
STATES = {"closed": 0, "half_open": 1, "open": 2}
MAX_CALLS = 20_000  # the window's memory is bounded whatever the traffic
EVALUATE_SEC = 0.5


class Breaker:
    def __init__(self, model: str, settings: BreakerSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.model = model
        self._s = settings
        self._clock = clock
        self.state = "closed"
        self.reason = ""
        self._calls: deque[tuple[float, bool, float]] = deque(maxlen=MAX_CALLS)  # (when, ok, latency)
        self._evaluated = 0.0
        self._consecutive = 0
        self._opened_at = 0.0
        self._probe_at: float | None = None  # when the outstanding probe was let through
        BREAKER_STATE.labels(model).set(0)

    def configure(self, settings: BreakerSettings) -> None:
        self._s = settings

    def allow(self) -> bool:
        """May a call go to this model now? (In half-open state: one probe at a time; a probe
        outstanding for ``open_sec`` is given up and another one let through.)"""
        if self.state == "closed":
            return True
        now = self._clock()
        if self.state == "open":
            if now - self._opened_at < self._s.open_sec:
                return False
            self._set("half_open")
        elif self._probe_at is not None and now - self._probe_at < self._s.open_sec:
            return False
        self._probe_at = now
        return True

    def settle(self) -> None:
        """The call got an answer that says nothing against the model (the upstream refused the
        request itself: 400, 404, 413, 422): a probe that gets one closes the breaker; in any
        other state it changes nothing and is not counted."""
        if self.state == "half_open":
            self._close()

    def release(self) -> None:
        """The call was abandoned before any outcome (its caller went away): in half-open
        state the next caller may probe at once."""
        if self.state == "half_open":
            self._probe_at = None

    def _close(self) -> None:
        self._probe_at = None
        self._calls.clear()
        self._consecutive = 0
        self._set("closed")
        log.warning("circuit breaker closed", extra={"event": "breaker_closed", "model": self.model})

    def record(self, ok: bool, latency: float) -> None:
        now = self._clock()
        if self.state == "half_open":
            if ok:
                self._close()
            else:
                self._open("the recovery probe failed")
            return
        self._calls.append((now, ok, latency))
        while self._calls and self._calls[0][0] < now - self._s.window_sec:
            self._calls.popleft()
        self._consecutive = 0 if ok else self._consecutive + 1
        if self.state != "closed":
            return
        if self._consecutive >= self._s.consecutive_failures:
            self._open(f"{self._consecutive} consecutive failures")
            return
        # The window rules cost O(calls in the window): judged at most every EVALUATE_SEC,
        # so the breaker stays cheap on the hot path (a failure is judged at once).
        if len(self._calls) < self._s.min_calls or (ok and now - self._evaluated < EVALUATE_SEC):
            return
        self._evaluated = now
        errors = sum(1 for _, good, _ in self._calls if not good) / len(self._calls)
        latencies = sorted(lat for _, _, lat in self._calls)
        p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
        if errors > self._s.error_rate:
            self._open(f"error rate {errors:.1%} over {self._s.error_rate:.1%}")
        elif p95 > self._s.p95_latency_sec:
            self._open(f"p95 latency {p95:.2f}s over {self._s.p95_latency_sec:.2f}s")

    def _open(self, reason: str) -> None:
        self._opened_at = self._clock()
        self._probe_at = None
        self.reason = reason
        self._set("open")
        log.error("circuit breaker opened", extra={"event": "breaker_open", "model": self.model, "reason": reason})

    def _set(self, state: str) -> None:
        self.state = state
        BREAKER_STATE.labels(self.model).set(STATES[state])

    def describe(self) -> dict[str, str]:
        return {"state": self.state, "reason": self.reason} if self.state != "closed" else {"state": "closed"}
