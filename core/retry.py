"""One retry policy (tenacity) for the few calls that must be retried rather than failed:
recording that an event was answered through a Redis blip, a LINE push after a 5xx, a
Discord interaction reply the platform has not registered yet or rate-limited; and the wait
before the in-memory queue runs a failed job again (``backoff_sec``).

Exponential back-off from ``first_wait_sec`` to ``max_wait_sec``, bounded by attempts or by
time; a server that names its wait (``RetryAfter``) is believed, up to ``max_wait_sec``. The
last failure is re-raised, so callers handle it as they would without retries.
"""

from __future__ import annotations

from collections.abc import Callable

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    stop_never,
    wait_exponential,
)


class RetryAfter(Exception):
    """Raise to retry after the wait a server named (429 Retry-After)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry after {seconds:g} s")
        self.seconds = seconds


def retrying(
    on: type[BaseException] | tuple[type[BaseException], ...],
    *,
    attempts: int | None = None,
    within_sec: float | None = None,
    first_wait_sec: float = 0.1,
    max_wait_sec: float = 2.0,
    on_retry: Callable[[BaseException], None] | None = None,
) -> AsyncRetrying:
    """``async for attempt in retrying(...): with attempt: ...`` — retried on ``on`` (and RetryAfter);
    ``on_retry`` hears of each failure that will be retried (to log it)."""
    backoff = wait_exponential(multiplier=first_wait_sec, max=max_wait_sec)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RetryAfter):
            return min(max(exc.seconds, 0.0), max_wait_sec)
        return float(backoff(state))

    stop = stop_never
    if attempts is not None:
        stop = stop_after_attempt(attempts)
    if within_sec is not None:
        stop = stop | stop_after_delay(within_sec) if attempts is not None else stop_after_delay(within_sec)
    kinds = on if isinstance(on, tuple) else (on,)

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if on_retry is not None and exc is not None:
            on_retry(exc)

    return AsyncRetrying(retry=retry_if_exception_type((*kinds, RetryAfter)), stop=stop, wait=wait, reraise=True,
                         before_sleep=before_sleep)  # fmt: skip


def backoff_sec(attempt: int, *, first_wait_sec: float, max_wait_sec: float) -> float:
    """The wait before retry ``attempt`` (1, 2, …) of the same exponential policy, for a retry that
    is scheduled rather than awaited in place (the in-memory queue's failed jobs)."""
    return float(min(max_wait_sec, first_wait_sec * 2 ** max(0, attempt - 1)))
