"""One plain ASGI middleware for what every request needs: request id, who may be answered
(demo mode, Host), body limit, metrics, and the contract's JSON error (never a traceback, never
text/plain) if something breaks — rendered by ``core.http.errors``, like every route's errors.

One layer instead of four keeps the per-request cost low: each extra middleware layer is
measurable on the hot path (``make bench``). With tracing on (core.tracing) the same layer
opens the request's root span and answers its ``traceparent``; off, it costs one attribute read.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import TYPE_BY_STATUS, HubError, PayloadTooLarge, RequestTimeout
from core.http.errors import CLIENT_CLOSED, as_hub_error, expected, json_body
from core.http.hosts import HostGuard
from core.http.slow_clients import BODY_TIMEOUT_SEC
from core.metrics import ERRORS, REQUEST_SECONDS, REQUESTS
from core.tracing import Tracing, traceparent

log = logging.getLogger("askhub.http")

_REQUEST_ID_RE = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
_UNTRACKED = {"/metrics"}
_TRACE_HEADERS = (b"traceparent", b"tracestate")
WEBHOOK_PREFIXES = ("/slack/", "/line/", "/discord/", "/whatsapp/", "/telegram/")
CHAT_PATHS = ("/v1/chat/completions", "/v1/responses")
EMBEDDINGS_PATH = "/v1/embeddings"
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})  # anything else: "other"


def request_id_from(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id" and _REQUEST_ID_RE.match(value):
            return value.decode()
    return uuid.uuid4().hex


class HubMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        guard: HostGuard,
        max_body_bytes: int,
        webhook_max_body_bytes: int,
        chat_max_body_bytes: int | None = None,
        embeddings_max_body_bytes: int | None = None,
        body_timeout_sec: float = BODY_TIMEOUT_SEC,
        tracing: Tracing | None = None,
    ) -> None:
        self.app = app
        self.tracing = tracing if tracing is not None and tracing.on else None
        self.guard = guard
        self.max_body = max_body_bytes
        self.webhook_max_body = webhook_max_body_bytes
        # Paths with their own cap, and the setting that raises it (named in the 413).
        self._path_limits: dict[str, tuple[int, str]] = {}
        if chat_max_body_bytes is not None:
            self._path_limits |= {p: (chat_max_body_bytes, "requests.chat_max_body_bytes") for p in CHAT_PATHS}
        if embeddings_max_body_bytes is not None:
            self._path_limits[EMBEDDINGS_PATH] = (embeddings_max_body_bytes, "requests.embeddings_max_body_bytes")
        self.body_timeout = body_timeout_sec

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
        elif self.tracing is None:
            await self._handle(scope, receive, send)
        else:
            await self._traced(self.tracing, scope, receive, send)

    async def _traced(self, tracing: Tracing, scope: Scope, receive: Receive, send: Send) -> None:
        """The request as its trace's root span (a child of the caller's ``traceparent``, if any);
        the response carries the span's own ``traceparent`` so a caller can find the trace."""
        method = scope["method"] if scope["method"] in METHODS else "other"
        incoming = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k in _TRACE_HEADERS}
        with tracing.root(method, kind="server", carrier=incoming, **{"http.request.method": method}) as current:
            header = (traceparent(current) or "").encode()

            async def send_traced(message: Message) -> None:
                if message["type"] == "http.response.start" and header:
                    message["headers"] = [*message.get("headers", ()), (b"traceparent", header)]
                await send(message)

            await self._handle(scope, receive, send_traced)
            state = scope["state"]
            template = getattr(scope.get("route"), "path", None) or "unmatched"
            current.update_name(f"{method} {template}")
            current.set_attributes({"http.route": template, "http.response.status_code": state["status"],
                                    "askhub.request_id": state["request_id"]})  # fmt: skip
            if state["status"] >= 500:
                current.set_attribute("error.type", str(state["status"]))

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request_id = request_id_from(scope)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500
        response_started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", request_id.encode())]
            await send(message)

        limit, setting = self._limit(scope["path"])
        try:
            refusal = self.guard.refusal(scope)
            if refusal is not None:
                raise refusal
            declared = _content_length(scope)
            if declared is not None and declared > limit:
                raise _too_large(scope["path"], limit, setting)
            limited = self._limited(receive, limit, self.body_timeout, scope["path"], setting)
            await self.app(scope, limited, send_wrapper)
        except Exception as exc:
            # Routes inside FastAPI were answered by its handlers (the same renderer), which
            # re-raise the unexpected ones here: logged once, here; rendered unless already sent.
            err = as_hub_error(exc)
            if err is None:  # the client hung up: not a server error, nothing to send
                status = CLIENT_CLOSED
                log.info("client disconnected on %s", scope["path"])
            else:
                if not expected(exc):
                    log.error(
                        "unhandled error on %s: %s", scope["path"], type(exc).__name__, extra={"request_id": request_id}
                    )  # the id the caller is told to quote
                if not response_started:
                    state["error_type"] = err.type
                    await _send_json(send_wrapper, err)
        finally:
            state["status"] = status
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            if template not in _UNTRACKED:
                method = scope["method"] if scope["method"] in METHODS else "other"
                REQUESTS.labels(template, method, str(status)).inc()
                REQUEST_SECONDS.labels(template, method).observe(time.perf_counter() - started)
                if status >= 400:
                    ERRORS.labels(template, state.get("error_type") or TYPE_BY_STATUS.get(status, "error")).inc()

    def _limit(self, path: str) -> tuple[int, str]:
        """The body cap for ``path`` and the setting that raises it."""
        own = self._path_limits.get(path)
        if own is not None:
            return own
        if path.startswith(WEBHOOK_PREFIXES):
            return self.webhook_max_body, "requests.webhook_max_body_bytes"
        return self.max_body, "requests.max_body_bytes"

    @staticmethod
    def _limited(receive: Receive, limit: int, timeout_sec: float, path: str = "", setting: str = "") -> Receive:
        """Counts the body as it arrives: a missing or lying Content-Length cannot get past, and
        a body that takes longer than ``timeout_sec`` to arrive is a 408 (a slow-body client
        holds no connection forever). Once the body is in, receive() waits freely (it is how a
        streaming response hears of a disconnect)."""
        seen = 0
        deadline: float | None = None
        complete = False

        async def wrapped() -> Message:
            nonlocal seen, deadline, complete
            if complete:
                return await receive()
            deadline = deadline or asyncio.get_running_loop().time() + timeout_sec
            try:
                async with asyncio.timeout_at(deadline):  # a timer, not a task per read (wait_for's cost)
                    message = await receive()
            except TimeoutError:
                log.info("request body did not arrive in time")
                raise RequestTimeout(f"the request body did not arrive within {timeout_sec:g} s") from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _too_large(path, limit, setting)
                complete = not message.get("more_body", False)
            else:
                complete = True
            return message

        return wrapped


def _too_large(path: str, limit: int, setting: str) -> PayloadTooLarge:
    """Which limit, and how to raise it: the client's operator can act on the message."""
    setting = setting or "requests.max_body_bytes"
    return PayloadTooLarge(
        f"request body is larger than {limit} bytes, the limit for {path or 'this route'}; "
        f"the hub's operator can raise it with the setting {setting} (YAML section 'requests')"
    )


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_json(send: Send, err: HubError) -> None:
    body = json_body(err)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in err.headers.items()]
    await send({"type": "http.response.start", "status": err.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
