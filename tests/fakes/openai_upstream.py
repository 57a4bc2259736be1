"""A real-HTTP fake of the OpenAI API so gateway tests exercise actual sockets.

It serves from its own thread (``LoopbackServer``). Failure behaviours
(errors, 429s, stalls, malformed bodies, cut streams) are scriptable per
model so retry, fallback and timeout logic can be tested deterministically.

Example::

    with FakeOpenAI(api_key="sk-test") as fake:
        fake.set_behavior("gpt-4o", mode="error", status=503, times=2)
        ...  # point the hub at fake.base_url
        assert len(fake.calls_for("gpt-4o")) == 3
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import random
import re
import struct
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from aiohttp import web

from .server import LoopbackServer

__all__ = ["MODES", "Behavior", "Call", "FakeOpenAI", "MalformedKind"]

Mode = Literal["ok", "error", "rate_limit", "stall", "malformed", "cut_stream"]
MalformedKind = Literal["shape", "truncated"]
MODES: frozenset[str] = frozenset({"ok", "error", "rate_limit", "stall", "malformed", "cut_stream"})

DEFAULT_MODELS: tuple[str, ...] = ("gpt-4o-mini", "gpt-4o", "local-llm")
DEFAULT_EMBEDDING_DIM = 64
REPLY_PREFIX_CHARS = 200
_CITATION_RE = re.compile(r"\[(\d{1,4})\]")
_ERROR_TYPES: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", None),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", None),
    409: ("invalid_request_error", None),
    422: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
}


@dataclass(frozen=True)
class Call:
    """One request as the fake saw it; headers keys are lower-cased."""

    method: str
    path: str
    headers: dict[str, str]
    json: dict[str, Any] | None
    model: str | None
    time: float  # time.monotonic() at arrival, so intervals (backoff) are exact


@dataclass(frozen=True)
class Behavior:
    """How the fake answers one model; ``times=None`` means forever."""

    mode: Mode = "ok"
    status: int = 500
    delay: float = 0.0
    retry_after: float | None = None
    times: int | None = None
    reply: str | None = None
    cut_after: int = 3
    malformed: MalformedKind = "shape"
    usage: bool = True  # False: no usage in replies, as some OpenAI-compatible servers do
    message: str | None = None  # an error's own message (mode "error" or "rate_limit")
    code: str | None = None  # and its code
    param: str | None = None
    tool_call: bool = False  # True: a request with tools gets a call of its first tool (until a tool result)


def openai_error(
    status: int,
    message: str,
    *,
    type_: str | None = None,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """Build an error response in OpenAI's exact ``{"error": {...}}`` shape."""
    default_type, default_code = _ERROR_TYPES.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None)
    )
    body = {
        "error": {
            "message": message,
            "type": type_ or default_type,
            "param": param,
            "code": code if code is not None else default_code,
        }
    }
    return web.json_response(body, status=status, headers=headers)


def estimate_tokens(text: str) -> int:
    """Cheap, deterministic token count: ceil(chars / 4), at least 1."""
    return max(1, math.ceil(len(text) / 4))


def content_text(content: Any) -> str:
    """Flatten a message ``content`` (string or list of parts) into text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, str):
                parts.append(part)
        return "".join(parts)
    return ""


def build_reply(model: str, messages: list[Any]) -> str:
    """Deterministic answer echoing the question so tests can assert on routing.

    ``"[<model>] <first 200 chars of last user message>"`` plus `` [n]`` when
    a system/user message holds numbered context, the first marker found.
    """
    last_user = ""
    citation: str | None = None
    for msg in messages:
        if not isinstance(msg, dict) or msg.get("role") not in ("system", "user"):
            continue
        text = content_text(msg.get("content"))
        if msg.get("role") == "user":
            last_user = text
        if citation is None and (m := _CITATION_RE.search(text)):
            citation = m.group(1)
    reply = f"[{model}] {last_user[:REPLY_PREFIX_CHARS]}"
    if citation is not None:
        reply += f" [{citation}]"
    return reply


def tool_call_for(body: dict[str, Any]) -> dict[str, Any] | None:
    """The call a model makes when ``tools`` are offered (tool_choice not "none") and the last
    message is not a tool's result: the named or first function, each string parameter "fake"."""
    tools = [t for t in body.get("tools") or () if isinstance(t, dict) and isinstance(t.get("function"), dict)]
    choice = body.get("tool_choice")
    messages = body.get("messages") or [{}]
    if not tools or choice == "none" or (isinstance(messages[-1], dict) and messages[-1].get("role") == "tool"):
        return None
    function = tools[0]["function"]
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        function = next((t["function"] for t in tools if t["function"].get("name") == choice["function"].get("name")),
                        function)  # fmt: skip
    return {"id": f"call_{uuid.uuid4().hex[:12]}", "type": "function",
            "function": {"name": function.get("name", "tool"), "arguments": json.dumps(sample_of(function.get("parameters")))}}  # fmt: skip


def sample_of(schema: Any) -> Any:
    """A value that fits a (simple) JSON schema: what structured output and tool arguments need."""
    if not isinstance(schema, dict):
        return {}
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {k: sample_of(v) for k, v in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [sample_of(schema.get("items"))]
    if kind in ("integer", "number"):
        return 1
    if kind == "boolean":
        return True
    if schema.get("enum"):
        return schema["enum"][0]
    return "fake"


def structured_reply(body: dict[str, Any]) -> str | None:
    """``response_format`` json_schema: a JSON text that fits the schema."""
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema" and isinstance(fmt.get("json_schema"), dict):
        return json.dumps(sample_of(fmt["json_schema"].get("schema")))
    if isinstance(fmt, dict) and fmt.get("type") == "json_object":
        return json.dumps({"answer": "fake"})
    return None


def split_chunks(text: str, size: int = 6) -> list[str]:
    """Split into word-ish pieces of <= ``size`` code points (never mid-UTF-8)."""
    pieces: list[str] = []
    for word in re.findall(r"\S+\s*|\s+", text):
        pieces.extend(word[i : i + size] for i in range(0, len(word), size))
    return pieces


def fake_embedding(text: str, dim: int) -> list[float]:
    """Unit vector seeded by SHA-256 of the text: same text, same vector."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    rng = random.Random(seed)
    vec = [rng.gauss(0.0, 1.0) for _ in range(dim)]
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return [v / norm for v in vec]


def _format_retry_after(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def _sse(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return f"data: {data}\n\n".encode()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FakeOpenAI(LoopbackServer):
    """Fake OpenAI-compatible upstream on 127.0.0.1:<random port>, own thread."""

    #: How long ``stall`` sleeps; far beyond any sane client timeout.
    stall_seconds: float = 30.0
    #: The pause between a stream's content chunks (0: as fast as it can): a model that types.
    chunk_delay: float = 0.0
    # A client that hangs up mid-stall frees the task.
    handler_cancellation = True

    def __init__(self, *, api_key: str | None = None) -> None:
        super().__init__()
        self.api_key = api_key
        self.calls: list[Call] = []
        self._behaviors: dict[str | None, Behavior] = {}
        self._lock = threading.Lock()
        self._inflight: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ life
    @property
    def base_url(self) -> str:
        """What to pass as ``base_url`` to an OpenAI client."""
        return f"{self.url}/v1"

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._track_middleware], client_max_size=64 * 1024**2)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    async def before_shutdown(self) -> None:
        """Abort in-flight requests, stalls included, so stop() is quick."""
        for task in list(self._inflight):
            task.cancel()
        if self._inflight:
            await asyncio.wait(list(self._inflight), timeout=2)

    @web.middleware
    async def _track_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        task = asyncio.current_task()
        assert task is not None
        self._inflight.add(task)
        try:
            return await handler(request)
        finally:
            self._inflight.discard(task)

    # ------------------------------------------------------------- scripting
    def set_behavior(
        self,
        model: str | None = None,
        *,
        mode: str = "ok",
        status: int = 500,
        delay: float = 0.0,
        retry_after: float | None = None,
        times: int | None = None,
        reply: str | None = None,
        cut_after: int = 3,
        malformed: MalformedKind = "shape",
        usage: bool = True,
        message: str | None = None,
        code: str | None = None,
        param: str | None = None,
        tool_call: bool = False,
    ) -> None:
        """Script how requests for ``model`` (None = every other model) are answered.

        ``delay`` is applied before any mode's answer. ``times=N`` limits the
        behaviour to the next N matching requests, then that model is ``ok``.
        ``malformed`` picks the ``malformed`` body: ``"shape"`` sends valid
        JSON of the wrong shape (``{"nope": true}``), ``"truncated"`` sends a
        real completion cut off mid-JSON. ``usage=False`` leaves usage out of
        replies and streams, as some OpenAI-compatible servers do. ``message``,
        ``code`` and ``param`` script an error's own fields (``mode="error"`` with a 400:
        "context too long"; ``mode="rate_limit"``). A request with ``tools`` gets a call of
        its first (or chosen) tool until the last message is a tool result; with ``tool_call``
        that result is then echoed: ``"[<model>] tool said: <result>"``.
        """
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {sorted(MODES)}")
        if malformed not in ("shape", "truncated"):
            raise ValueError(f"unknown malformed kind {malformed!r}")
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 or None")
        behavior = Behavior(
            mode=mode,  # type: ignore[arg-type]
            status=status,
            delay=delay,
            retry_after=retry_after,
            times=times,
            reply=reply,
            cut_after=cut_after,
            malformed=malformed,
            usage=usage,
            message=message,
            code=code,
            param=param,
            tool_call=tool_call,
        )
        with self._lock:
            self._behaviors[model] = behavior

    def reset(self) -> None:
        """Forget recorded calls and scripted behaviours (between tests)."""
        with self._lock:
            self.calls.clear()
            self._behaviors.clear()

    def calls_for(self, model: str) -> list[Call]:
        """Recorded calls whose body named ``model``, oldest first."""
        with self._lock:
            return [c for c in self.calls if c.model == model]

    def _take_behavior(self, model: str) -> Behavior:
        """Pick the behaviour for one request and consume one of its ``times``."""
        with self._lock:
            key: str | None = model if model in self._behaviors else None
            behavior = self._behaviors.get(key)
            if behavior is None:
                return Behavior()
            if behavior.times is not None:
                left = behavior.times - 1
                if left <= 0:
                    # Back to ok for this model (a plain default entry just goes away).
                    if key is None:
                        del self._behaviors[key]
                    else:
                        self._behaviors[key] = Behavior()
                else:
                    self._behaviors[key] = replace(behavior, times=left)
            return behavior

    # -------------------------------------------------------------- handlers
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body: dict[str, Any] | None = None
        if raw:
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = None
            body = parsed if isinstance(parsed, dict) else None
        model = body.get("model") if body else None
        call = Call(
            method=request.method,
            path=request.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            json=body,
            model=model if isinstance(model, str) else None,
            time=time.monotonic(),
        )
        with self._lock:
            self.calls.append(call)

        if self.api_key is not None:
            auth = request.headers.get("Authorization", "")
            if not auth:
                return openai_error(
                    401,
                    "You didn't provide an API key. You need to provide your API key "
                    "in an Authorization header using Bearer auth "
                    "(i.e. Authorization: Bearer YOUR_KEY).",
                )
            if auth != f"Bearer {self.api_key}":
                shown = auth.removeprefix("Bearer ")
                return openai_error(
                    401,
                    f"Incorrect API key provided: {shown[:3]}***{shown[-4:]}. "
                    "You can find your API key at "
                    "https://platform.openai.com/account/api-keys.",
                    code="invalid_api_key",
                )

        route = (request.method, request.path.rstrip("/"))
        if route == ("POST", "/v1/chat/completions"):
            return await self._chat(request, body)
        if route == ("POST", "/v1/responses"):
            return await self._responses(request, body)
        if route == ("POST", "/v1/embeddings"):
            return await self._embeddings(body)
        if route == ("GET", "/v1/models"):
            return self._models()
        return openai_error(404, f"Invalid URL ({request.method} {request.path})")

    async def _apply_failure(self, behavior: Behavior, *, stream: bool) -> web.Response | None:
        """Shared pre-answer part of every mode; returns a response to short-cut."""
        if behavior.delay > 0:
            await asyncio.sleep(behavior.delay)
        mode = behavior.mode
        if mode == "error" or (mode == "cut_stream" and not stream):
            default = (
                "The server had an error while processing your request. Sorry about that!"
                if behavior.status >= 500
                else f"Fake upstream error (status {behavior.status})."
            )
            return openai_error(behavior.status, behavior.message or default, code=behavior.code, param=behavior.param)
        if mode == "rate_limit":
            headers = (
                {"Retry-After": _format_retry_after(behavior.retry_after)} if behavior.retry_after is not None else None
            )
            return openai_error(
                429,
                behavior.message or "Rate limit reached for requests. Please try again later.",
                code=behavior.code,
                headers=headers,
            )
        if mode == "stall":
            await asyncio.sleep(self.stall_seconds)
        return None

    async def _chat(self, request: web.Request, body: dict[str, Any] | None) -> web.StreamResponse:
        if body is None:
            return openai_error(
                400,
                "We could not parse the JSON body of your request. (HINT: This "
                "likely means you aren't using your HTTP library correctly.)",
            )
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return openai_error(400, "you must provide a model parameter", param="model")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return openai_error(
                400,
                f"{json.dumps(messages)} is too short - 'messages'",
                param="messages",
                code="empty_array",
            )
        stream = body.get("stream") is True
        behavior = self._take_behavior(model)
        failure = await self._apply_failure(behavior, stream=stream)
        if failure is not None:
            return failure

        content = behavior.reply if behavior.reply is not None else build_reply(model, messages)
        last = messages[-1] if isinstance(messages[-1], dict) else {}
        if behavior.tool_call and last.get("role") == "tool":
            content = f"[{model}] tool said: {content_text(last.get('content'))[:REPLY_PREFIX_CHARS]}"
        content = structured_reply(body) or content
        tool_call = tool_call_for(body)
        prompt_text = "".join(content_text(m.get("content")) for m in messages if isinstance(m, dict))
        usage = {
            "prompt_tokens": estimate_tokens(prompt_text),
            "completion_tokens": estimate_tokens(content),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())

        if behavior.mode == "malformed":
            return await self._malformed(request, behavior, stream=stream, model=model)
        if stream:
            opts = body.get("stream_options")
            include_usage = isinstance(opts, dict) and opts.get("include_usage") is True
            return await self._stream_chat(
                request,
                completion_id=completion_id,
                created=created,
                model=model,
                content=content,
                usage=usage if include_usage and behavior.usage else None,
                cut_after=behavior.cut_after if behavior.mode == "cut_stream" else None,
                tool_call=tool_call,
            )
        return web.json_response(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": None if tool_call else content,
                            "refusal": None,
                            **({"tool_calls": [tool_call]} if tool_call else {}),
                        },
                        "logprobs": None,
                        "finish_reason": "tool_calls" if tool_call else "stop",
                    }
                ],
                **({"usage": usage} if behavior.usage else {}),
                "system_fingerprint": "fp_fake",
            }
        )

    async def _stream_chat(
        self,
        request: web.Request,
        *,
        completion_id: str,
        created: int,
        model: str,
        content: str,
        usage: dict[str, int] | None,
        cut_after: int | None,
        tool_call: dict[str, Any] | None = None,
    ) -> web.StreamResponse:
        """Write OpenAI-style SSE; with ``cut_after`` drop the socket mid-stream; a tool
        ``call`` streams as its name, then its arguments in pieces."""
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)

        def chunk(delta: dict[str, Any], finish: str | None = None, choices: bool = True) -> dict[str, Any]:
            out: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [
                    {
                        "index": 0,
                        "delta": delta,
                        "logprobs": None,
                        "finish_reason": finish,
                    }
                ]
                if choices
                else [],
            }
            if usage is not None:
                out["usage"] = None
            return out

        await resp.write(_sse(chunk({"role": "assistant", "content": "", "refusal": None})))
        if tool_call is not None:  # the call's head, then its arguments in pieces, as OpenAI streams them
            head = {**tool_call, "function": {"name": tool_call["function"]["name"], "arguments": ""}}
            await resp.write(_sse(chunk({"tool_calls": [{"index": 0, **head}]})))
            for piece in split_chunks(tool_call["function"]["arguments"]):
                await resp.write(_sse(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})))
            content = ""
        for n, piece in enumerate(split_chunks(content)):
            if cut_after is not None and n >= cut_after:
                break
            await resp.write(_sse(chunk({"content": piece})))
            if self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
        if cut_after is not None:
            # Flush what we wrote, then hang up without the terminating chunk.
            transport = request.transport
            if transport is not None:
                transport.close()
            raise asyncio.CancelledError  # nothing more can be sent on this socket
        await resp.write(_sse(chunk({}, finish="tool_calls" if tool_call else "stop")))
        if usage is not None:
            final = chunk({}, choices=False)
            final["usage"] = usage
            await resp.write(_sse(final))
        await resp.write(_sse("[DONE]"))
        await resp.write_eof()
        return resp

    async def _responses(self, request: web.Request, body: dict[str, Any] | None) -> web.StreamResponse:
        """The Responses API itself (as OpenAI has it): text in, one output message out, the
        reply built as for chat; ``instructions`` and ``input`` read as messages."""
        if body is None or not isinstance(body.get("model"), str):
            return openai_error(400, "you must provide a model parameter", param="model")
        model = body["model"]
        stream = body.get("stream") is True
        behavior = self._take_behavior(model)
        failure = await self._apply_failure(behavior, stream=stream)
        if failure is not None:
            return failure
        raw = body.get("input")
        items = [{"role": "user", "content": raw}] if isinstance(raw, str) else raw if isinstance(raw, list) else []
        messages = [{"role": "system", "content": body.get("instructions") or ""}, *items]
        content = behavior.reply if behavior.reply is not None else build_reply(model, messages)
        prompt_text = "".join(content_text(m.get("content")) for m in messages if isinstance(m, dict))
        usage = {"input_tokens": estimate_tokens(prompt_text), "output_tokens": estimate_tokens(content)}
        usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
        message = {"type": "message", "id": f"msg_{uuid.uuid4().hex}", "status": "completed", "role": "assistant",
                   "content": [{"type": "output_text", "text": content, "annotations": [], "logprobs": []}]}  # fmt: skip
        response = {"id": f"resp_{uuid.uuid4().hex}", "object": "response", "created_at": int(time.time()),
                    "status": "completed", "model": model, "output": [message], "usage": usage,
                    "error": None, "incomplete_details": None, "tools": [], "parallel_tool_calls": True}  # fmt: skip
        if not stream:
            return web.json_response(response)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        seq = iter(range(1_000_000))

        async def event(kind: str, **data: Any) -> None:
            payload = json.dumps({"type": kind, "sequence_number": next(seq), **data})
            await resp.write(f"event: {kind}\ndata: {payload}\n\n".encode())

        opening = {**response, "status": "in_progress", "output": [], "usage": None}
        await event("response.created", response=opening)
        await event("response.in_progress", response=opening)
        item = {**message, "status": "in_progress", "content": []}
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        where = {"item_id": message["id"], "output_index": 0, "content_index": 0}
        await event("response.output_item.added", output_index=0, item=item)
        await event("response.content_part.added", part=part, **where)
        for piece in split_chunks(content):
            await event("response.output_text.delta", delta=piece, logprobs=[], **where)
        await event("response.output_text.done", text=content, logprobs=[], **where)
        await event("response.content_part.done", part=message["content"][0], **where)
        await event("response.output_item.done", output_index=0, item=message)
        await event("response.completed", response=response)
        await resp.write_eof()
        return resp

    async def _malformed(
        self, request: web.Request, behavior: Behavior, *, stream: bool, model: str
    ) -> web.StreamResponse:
        """200 that no client can use: wrong shape or truncated JSON."""
        if behavior.malformed == "shape":
            text = '{"nope": true}'
        else:
            text = json.dumps({"id": "chatcmpl-trunc", "object": "chat.completion", "model": model})
            text = text[: len(text) // 2]
        if not stream:
            return web.Response(text=text, content_type="application/json")
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(_sse(text) + _sse("[DONE]"))
        await resp.write_eof()
        return resp

    async def _embeddings(self, body: dict[str, Any] | None) -> web.StreamResponse:
        if body is None:
            return openai_error(400, "We could not parse the JSON body of your request.")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return openai_error(400, "you must provide a model parameter", param="model")
        raw_input = body.get("input")
        if isinstance(raw_input, str):
            inputs = [raw_input]
        elif isinstance(raw_input, list) and raw_input:
            inputs = [x if isinstance(x, str) else json.dumps(x) for x in raw_input]
        else:
            return openai_error(400, "'input' is a required property", param="input")
        dim = body.get("dimensions")
        dim = dim if isinstance(dim, int) and dim > 0 else DEFAULT_EMBEDDING_DIM
        use_b64 = body.get("encoding_format") == "base64"  # the SDK's default

        behavior = self._take_behavior(model)
        failure = await self._apply_failure(behavior, stream=False)
        if failure is not None:
            return failure
        if behavior.mode == "malformed":
            text = '{"nope": true}' if behavior.malformed == "shape" else '{"object": "list", "da'
            return web.Response(text=text, content_type="application/json")

        data = []
        for i, text in enumerate(inputs):
            vec = fake_embedding(text, dim)
            embedding: list[float] | str = base64.b64encode(struct.pack(f"<{dim}f", *vec)).decode() if use_b64 else vec
            data.append({"object": "embedding", "index": i, "embedding": embedding})
        tokens = sum(estimate_tokens(t) for t in inputs)
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    def _models(self) -> web.Response:
        with self._lock:
            scripted = [m for m in self._behaviors if m is not None]
        ids = list(dict.fromkeys([*DEFAULT_MODELS, *scripted]))
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {
                        "id": m,
                        "object": "model",
                        "created": 1_700_000_000,
                        "owned_by": "fake",
                    }
                    for m in ids
                ],
            }
        )
