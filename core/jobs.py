"""The queue of accepted chat events: adapters acknowledge after ``submit``, workers answer.

A platform wants its webhook acknowledged within seconds whatever the model does. Adapters
verify and record an event, ``submit`` it, and acknowledge; workers run the handler the
adapter registered for that kind of job.

* ``MemoryQueue`` (one process): a bounded in-process queue. When it is full, ``submit``
  refuses (the webhook answers 503 and the platform retries) instead of piling up. A job that
  fails (a relay while Slack is down) runs again after a growing wait (1, 2, 4, 8 s), at most
  ``MAX_DELIVERIES`` times in all, as the Redis queue redelivers it; the wait holds no worker.
* ``RedisQueue`` (REDIS_URL): one Redis Stream per kind with a consumer group. ``submit``
  returns once the event is in Redis, so any process may answer it and a dead process loses
  nothing: events its workers held are reclaimed by the others after ``reclaim_after_sec``
  (a live worker keeps the events it is still answering fresh, so a slow answer is not
  reclaimed and answered a second time beside it).
  Delivery is at least once; the event ledger's "done" marker (``submit(..., event=...)``)
  makes a repeated delivery a no-op, so every accepted event is answered once.

On shutdown, intake stops, in-flight jobs get ``drain_sec`` to finish, and whatever is left
stays in the stream for another worker (Redis) — handed back, not dropped.

A job travels with the W3C trace context of its submitter (when tracing is on), so the
answer continues the trace of the webhook that accepted it, in whatever process runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson

from core.dedupe import EventLedger
from core.errors import Unavailable
from core.metrics import QUEUE_AGE, QUEUE_DEPTH
from core.retry import backoff_sec, retrying
from core.tracing import Tracing, carrier

log = logging.getLogger("askhub.jobs")
Handler = Callable[[dict[str, Any]], Awaitable[None]]
Event = tuple[str, str]  # (platform, event id) in the event ledger
MAX_DELIVERIES = 5  # a job that failed this often is dropped, with a log line (a poison message)


class JobQueue(Protocol):
    def register(self, kind: str, handler: Handler) -> None: ...

    async def submit(self, kind: str, payload: dict[str, Any], *, event: Event | None = None) -> None: ...

    def seal(self) -> None: ...

    def start(self) -> None: ...

    async def close(self, drain_sec: float = 10.0) -> None: ...

    async def idle(self) -> None: ...


async def _run(
    handler: Handler,
    kind: str,
    payload: dict[str, Any],
    event: Event | None,
    ledger: EventLedger,
    tracing: Tracing,
    trace: dict[str, str],
) -> bool:
    """Run one job unless its event was already answered; False when the handler failed.
    ``trace`` is the submitter's trace context: the job's span continues that trace."""
    with tracing.root(f"job {kind}", kind="consumer", carrier=trace, **{"askhub.job.kind": kind}) as current:
        if event is not None and await ledger.state(*event) == "done":
            current.set_attribute("askhub.job.outcome", "already_done")
            return True  # a redelivery of an answered event: nothing to do
        try:
            await handler(payload)
        except Exception as exc:  # one bad job must not stop a worker
            log.error("job failed", extra={"kind": kind, "exc": type(exc).__name__})
            current.set_attribute("askhub.job.outcome", "failed")
            return False
        return True


class KindError(RuntimeError):
    """A job kind declared after the queue started (it would have no reader), or never declared."""


class _Kinds:
    """Job kinds are declared before the queue starts, so every kind a process submits has readers."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}
        self._started = False

    def register(self, kind: str, handler: Handler) -> None:
        if self._started:
            raise KindError(f"job kind {kind!r} declared after the queue started: declare it when the adapter loads")
        self._handlers[kind] = handler

    def seal(self) -> None:
        """No more kinds from now on (the hub starts: readers start for what is declared)."""
        self._started = True

    def _check(self, kind: str) -> None:
        if kind not in self._handlers:
            raise KindError(f"job kind {kind!r} was never declared")


_Job = tuple[float, str, dict[str, Any], Event | None, dict[str, str], int]  # ..., deliveries so far


class MemoryQueue(_Kinds):
    def __init__(
        self,
        ledger: EventLedger,
        *,
        workers: int = 16,
        max_waiting: int = 10_000,
        tracing: Tracing | None = None,
        retry_first_sec: float = 1.0,
        retry_max_sec: float = 8.0,
    ) -> None:
        super().__init__()
        self._ledger = ledger
        self._tracing = tracing or Tracing({})
        self._queue: asyncio.Queue[_Job] = asyncio.Queue(max_waiting)
        self._workers = workers
        self._tasks: list[asyncio.Task[None]] = []
        self._later: set[asyncio.Task[None]] = set()  # failed jobs waiting to run again
        self._retry_first_sec, self._retry_max_sec = retry_first_sec, retry_max_sec

    async def submit(self, kind: str, payload: dict[str, Any], *, event: Event | None = None) -> None:
        self._check(kind)
        try:
            self._queue.put_nowait((time.monotonic(), kind, payload, event, carrier(), 0))
        except asyncio.QueueFull:
            raise Unavailable("too many questions waiting; try again shortly", retry_after=5) from None
        QUEUE_DEPTH.set(self._queue.qsize())

    def start(self) -> None:
        self.seal()
        self._tasks = [asyncio.create_task(self._work(), name=f"job-worker-{n}") for n in range(self._workers)]

    async def close(self, drain_sec: float = 10.0) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.idle(), drain_sec)
        for task in [*self._tasks, *self._later]:
            task.cancel()
        for task in [*self._tasks, *self._later]:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def idle(self) -> None:
        """Wait until everything submitted so far is handled, retries included (tests)."""
        while True:
            await self._queue.join()
            if not self._later:
                return
            await asyncio.wait(set(self._later))  # each puts its job back before it ends

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            queued_at, kind, payload, event, trace, _ = job
            QUEUE_DEPTH.set(self._queue.qsize())
            QUEUE_AGE.set(time.monotonic() - queued_at)
            try:
                if not await _run(self._handlers[kind], kind, payload, event, self._ledger, self._tracing, trace):
                    self._again(job)  # before task_done: idle() never sees a gap
            finally:
                self._queue.task_done()

    def _again(self, job: _Job) -> None:
        """A failed job runs again after a growing wait (a relay once Slack is back), or is dropped."""
        _, kind, payload, event, trace, deliveries = job
        deliveries += 1
        if deliveries >= MAX_DELIVERIES:
            log.error("job dropped after repeated failures", extra={"kind": kind, "deliveries": deliveries})
            return
        wait = backoff_sec(deliveries, first_wait_sec=self._retry_first_sec, max_wait_sec=self._retry_max_sec)

        async def later() -> None:
            await asyncio.sleep(wait)
            try:
                self._queue.put_nowait((time.monotonic(), kind, payload, event, trace, deliveries))
            except asyncio.QueueFull:
                log.error("job dropped: the queue is full", extra={"kind": kind, "deliveries": deliveries})

        task = asyncio.create_task(later(), name=f"job-retry-{kind}")
        self._later.add(task)
        task.add_done_callback(self._later.discard)


class RedisQueue(_Kinds):
    GROUP = "workers"
    MAX_DELIVERIES = MAX_DELIVERIES

    def __init__(
        self,
        url: str,
        ledger: EventLedger,
        *,
        workers: int = 16,
        reclaim_after_sec: float = 30.0,
        max_length: int = 100_000,
        tracing: Tracing | None = None,
    ) -> None:
        import redis.asyncio as redis

        super().__init__()
        # Blocking reads hold a connection each: a client of its own, with a socket timeout
        # longer than the block, and a bounded pool that makes a burst of submits wait their
        # turn for a connection instead of failing.
        pool = redis.BlockingConnectionPool.from_url(
            url, max_connections=64, timeout=5, socket_timeout=10, socket_connect_timeout=2, health_check_interval=15
        )
        self._redis = redis.Redis(connection_pool=pool)
        self._ledger = ledger
        self._tracing = tracing or Tracing({})
        self._slots = asyncio.Semaphore(workers)
        self._reclaim_after_ms = int(reclaim_after_sec * 1000)
        self._max_length = max_length
        self._consumer = f"{socket.gethostname()}-{os.getpid()}"
        self._running: set[asyncio.Task[None]] = set()
        self._in_flight: dict[bytes, str] = {}  # message id -> kind, while this process answers it
        self._loops: list[asyncio.Task[None]] = []
        self._stopping = False

    @staticmethod
    def _key(kind: str) -> str:
        return f"askhub:jobs:{kind}"

    async def submit(self, kind: str, payload: dict[str, Any], *, event: Event | None = None) -> None:
        self._check(kind)
        fields = {"p": orjson.dumps(payload), "e": orjson.dumps(event) if event else b""}
        trace = carrier()
        if trace:
            fields["t"] = orjson.dumps(trace)
        try:
            await self._redis.xadd(self._key(kind), fields, maxlen=self._max_length, approximate=True)
        except Exception as exc:
            log.warning("queue unavailable", extra={"kind": kind, "exc": type(exc).__name__})
            raise Unavailable("cannot accept the event right now; the platform will retry", retry_after=5) from None

    def start(self) -> None:
        self.seal()
        for kind in self._handlers:
            self._loops.append(asyncio.create_task(self._read(kind), name=f"queue-read-{kind}"))
        self._loops.append(asyncio.create_task(self._reclaim(), name="queue-reclaim"))

    async def _ensure_group(self, kind: str) -> None:
        try:
            await self._redis.xgroup_create(self._key(kind), self.GROUP, id="0", mkstream=True)
        except Exception as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _read(self, kind: str) -> None:
        """Read this kind's stream until the queue closes; Redis restarting is waited out, backing off."""

        def failed(exc: BaseException) -> None:
            log.warning("queue read failed", extra={"kind": kind, "exc": type(exc).__name__})

        while not self._stopping:
            async for attempt in retrying(Exception, first_wait_sec=0.5, max_wait_sec=5.0, on_retry=failed):
                with attempt:
                    await self._ensure_group(kind)
                    while not self._stopping:
                        await self._read_once(kind)

    async def _read_once(self, kind: str) -> None:
        await self._slots.acquire()
        try:
            reply = await self._redis.xreadgroup(
                self.GROUP, self._consumer, {self._key(kind): ">"}, count=1, block=1000
            )
        except BaseException:
            self._slots.release()
            raise
        messages = reply[0][1] if reply else []
        if not messages:
            self._slots.release()
        for message_id, fields in messages:
            self._spawn(kind, message_id, fields)

    def _spawn(self, kind: str, message_id: bytes, fields: dict[bytes, bytes]) -> None:
        task = asyncio.create_task(self._handle(kind, message_id, fields))
        self._running.add(task)
        self._in_flight[message_id] = kind

        def done(task: asyncio.Task[None]) -> None:
            self._running.discard(task)
            self._in_flight.pop(message_id, None)

        task.add_done_callback(done)

    async def _handle(self, kind: str, message_id: bytes, fields: dict[bytes, bytes]) -> None:
        try:
            payload = orjson.loads(fields[b"p"])
            event = tuple(orjson.loads(fields[b"e"])) if fields.get(b"e") else None
            trace = orjson.loads(fields[b"t"]) if fields.get(b"t") else {}
            handler = self._handlers[kind]
            if await _run(handler, kind, payload, event, self._ledger, self._tracing, trace):  # type: ignore[arg-type]
                await self._redis.xack(self._key(kind), self.GROUP, message_id)
                await self._redis.xdel(self._key(kind), message_id)
            # Not acknowledged: it stays pending and is delivered again after reclaim_after_sec.
        except Exception as exc:
            log.warning("queue ack failed", extra={"kind": kind, "exc": type(exc).__name__})
        finally:
            self._slots.release()

    async def _reclaim(self) -> None:
        """Take over events that another consumer (a crashed worker) held too long."""
        interval = max(0.2, self._reclaim_after_ms / 4000)
        while not self._stopping:
            await asyncio.sleep(interval)
            for kind in self._handlers:
                try:
                    await self._keep_alive(kind)
                    await self._reclaim_kind(kind)
                    await self._measure(kind)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if "NOGROUP" in str(exc):  # its reader has not created the group yet (or Redis restarted)
                        with contextlib.suppress(Exception):
                            await self._ensure_group(kind)
                        continue
                    log.warning("queue reclaim failed", extra={"kind": kind, "exc": type(exc).__name__})

    async def _keep_alive(self, kind: str) -> None:
        """Reset the idle time of the events this process is still answering (a claim to itself,
        which counts no delivery): only a dead consumer's events go idle long enough to be
        reclaimed, never an answer that is merely slow (a second, concurrent answer)."""
        mine = [message_id for message_id, of in self._in_flight.items() if of == kind]
        if mine:
            await self._redis.xclaim(self._key(kind), self.GROUP, self._consumer, 0, mine, justid=True)

    async def _reclaim_kind(self, kind: str) -> None:
        key = self._key(kind)
        stale = await self._redis.xpending_range(
            key, self.GROUP, min="-", max="+", count=20, idle=self._reclaim_after_ms
        )
        for entry in stale:
            message_id = entry["message_id"]
            if message_id in self._in_flight:
                continue  # this process is answering it
            if entry["times_delivered"] >= self.MAX_DELIVERIES:
                log.error(
                    "job dropped after repeated failures", extra={"kind": kind, "deliveries": entry["times_delivered"]}
                )
                await self._redis.xack(key, self.GROUP, message_id)
                await self._redis.xdel(key, message_id)
                continue
            claimed = await self._redis.xclaim(key, self.GROUP, self._consumer, self._reclaim_after_ms, [message_id])
            for claimed_id, fields in claimed:
                if fields:
                    await self._slots.acquire()
                    self._spawn(kind, claimed_id, fields)

    async def _measure(self, kind: str) -> None:
        """Depth (waiting + in flight) and the oldest event's age, for the queue metrics."""
        key = self._key(kind)
        depth = await self._redis.xlen(key)
        oldest = await self._redis.xrange(key, count=1)
        QUEUE_DEPTH.set(depth)
        if oldest:
            QUEUE_AGE.set(max(0.0, time.time() - int(oldest[0][0].split(b"-")[0]) / 1000))
        else:
            QUEUE_AGE.set(0)

    async def close(self, drain_sec: float = 10.0) -> None:
        """Stop taking events, give in-flight ones ``drain_sec``, hand back the rest."""
        self._stopping = True
        for task in self._loops:
            task.cancel()
        for task in self._loops:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._running:
            _, pending = await asyncio.wait(set(self._running), timeout=drain_sec)
            for task in pending:  # left unacknowledged: another worker reclaims them
                task.cancel()
        await self._redis.aclose(close_connection_pool=True)

    async def idle(self) -> None:
        """Wait until every stream of a registered kind is empty and nothing runs (tests)."""
        while True:
            lengths = [await self._redis.xlen(self._key(kind)) for kind in self._handlers]
            if not any(lengths) and not self._running:
                return
            await asyncio.sleep(0.02)


def make_queue(
    redis_url: str | None,
    ledger: EventLedger,
    *,
    workers: int,
    reclaim_after_sec: float,
    tracing: Tracing | None = None,
) -> JobQueue:
    if redis_url:
        return RedisQueue(redis_url, ledger, workers=workers, reclaim_after_sec=reclaim_after_sec, tracing=tracing)
    return MemoryQueue(ledger, workers=workers, tracing=tracing)
