"""ChatService: the OpenAI-compatible API, with the hub's auth, limits, routing and usage.

Any OpenAI SDK client can use the hub with a hub key instead of a provider key. ``model``
names a logical model the client may use, ``auto`` lets the routing rules decide, and
``kb`` adds the knowledge base: the last user message is looked up and the passages are
given to the model as numbered context; with a chat model there is no similarity floor, and the
model's "no answer" signal reaches the client as the polite "I don't know". Personal data
anywhere in the body — every value, numbers too (core.pii.json_strings), in every message part,
names, tool calls and their arguments, tools, ``user``, ``metadata``, unknown fields — routes to a
local model whatever was asked for, and the ``kb`` model's retrieval obeys the same decision
(core/privacy.py). What the hub cannot read for personal data (image, audio or file bytes) it
does not forward: such a request is refused with a 400.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from core import privacy
from core.accounting import Accounting
from core.auth.principal import Principal
from core.config import Settings
from core.errors import BadRequest, Forbidden, InvalidType, NotFound
from core.kb.holder import IndexHolder
from core.kb.retriever import Hit, Retriever
from core.llm.forwarder import Forwarded, Forwarder
from core.llm.gateway import ModelGateway
from core.llm.prompt import SYSTEM, build_prompt, context_block, is_no_answer, language_of, may_be_no_answer
from core.llm.routing import ModelSpec, Route, model_decides
from core.llm.tokens import count_tokens
from core.messages import NO_KNOWLEDGE
from core.metrics import PII_ROUTED
from core.openai.sources import sources_of
from core.pii import VALUE_BREAK, contains_pii, json_strings
from core.schema import Admission, RelayedReply, json_object

ROLES = {"system", "developer", "user", "assistant", "tool"}
_NO_TOOLS_PII = (
    "this request holds personal data, so it may only go to a local model, and no local model that "
    "can call tools is configured (LOCAL_LLM_BASE_URL); remove the personal data, or send it without "
    "tools (tool_choice 'none') for a knowledge-base answer"
)
_NO_TOOLS = "the model for this request is the offline extractive answerer, which cannot call tools; name another model"
VIRTUAL = ("auto", "kb")
TEXT_PARTS = frozenset({"text", "input_text"})
BINARY_KEYS = frozenset({"input_audio", "file_data"})  # base64 bytes: nothing to read for personal data
_DATA_URL = re.compile(r"data:[\w.+-]+/[\w.+-]+(?:;[\w.+-]+=[\w.+-]+)*(?:;base64)?,", re.I)


@dataclass(frozen=True, slots=True)
class ChatRequest:
    body: dict[str, Any]  # the client's request, forwarded as is but for ``model``
    model: str
    question: str  # the last user message: what routing and retrieval look at
    text: str  # every value in the body (strings, keys, numbers): what the PII check looks at
    stream: bool


@dataclass(frozen=True, slots=True)
class Native:
    """How a request goes to a model whose upstream takes it in another API (``responses:
    native``): a planned chat body in, the upstream's reply (or ``data:`` lines) out."""

    complete: Callable[[ModelSpec, dict[str, Any]], Awaitable[Forwarded]]
    stream: Callable[[ModelSpec, dict[str, Any]], AsyncIterator[bytes]]


def parse(raw: bytes) -> ChatRequest:
    body = json_object(raw)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty list")
    question = ""
    for n, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise InvalidType(f"messages.{n}: needs a role of {', '.join(sorted(ROLES))}")
        content = _text(message.get("content"))
        if content is None:
            raise InvalidType(f"messages.{n}.content: must be a string or a list of content parts")
        if message["role"] == "user":
            question = content
    model = body.get("model", "auto")
    if not isinstance(model, str) or not model:
        raise InvalidType("model: must be a string")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise InvalidType("stream: must be a boolean")
    _check_counts(body)
    strings: list[str] = []
    _strings(body, strings)
    return ChatRequest(body, model, question, VALUE_BREAK.join(strings), stream)


def _check_counts(body: dict[str, Any]) -> None:
    """``n`` and the token caps the hub can honour, checked here rather than sent upstream."""
    n = body.get("n")
    if n is not None:
        if not _is_int(n):
            raise InvalidType("n: must be an integer")
        if n != 1:
            raise BadRequest("n: the hub returns one choice per request (n=1); send the request again for another")
    for name in ("max_tokens", "max_completion_tokens"):
        value = body.get(name)
        if value is None:
            continue
        if not _is_int(value):
            raise InvalidType(f"{name}: must be an integer")
        if value < 1:
            raise BadRequest(f"{name}: must be at least 1 (got {value})")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def needs_tool_call(body: dict[str, Any]) -> bool:
    """Tools are offered and the model may not answer without them being available (any
    ``tool_choice`` but "none")."""
    tools = body.get("tools") or body.get("functions")
    choice = body.get("tool_choice", body.get("function_call"))
    return bool(tools) and choice != "none"


def _strings(body: Any, into: list[str]) -> None:
    """Every string in the body for the personal-data check; bytes the hub cannot read (a data:
    URL, base64 audio or files) are refused rather than sent on unread."""
    for where, value in json_strings(body):
        if value in BINARY_KEYS and where.rsplit(".", 1)[-1] == value:
            raise BadRequest(f"{where}: audio and file bytes cannot be checked for personal data")
        if _DATA_URL.match(value):
            raise BadRequest(f"{where}: inline data (a data: URL) cannot be checked for personal data; link it")
        into.append(value)


def _text(content: Any) -> str | None:
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list) and all(isinstance(p, dict) for p in content):
        parts = [p.get("text", "") for p in content if p.get("type") in TEXT_PARTS]
        if all(isinstance(p, str) for p in parts):
            return "\n".join(parts)
    return None


class ChatService:
    """What is specific to the OpenAI shape: the body relayed as is, virtual models, SSE lines.
    Admission and accounting are the core's (core/accounting.py), as for /ask."""

    def __init__(
        self, *, index: IndexHolder, retriever: Retriever, models: ModelGateway, accounting: Accounting
    ) -> None:
        self._index = index
        self._retriever = retriever
        self._models = models
        self._accounting = accounting
        self.forwarder = self._forwarder = Forwarder()

    def use(self, settings: Settings) -> None:
        self._settings = settings
        self._allowed = {c.name: c.models for c in settings.clients if c.models is not None}

    def model_ids(self, principal: Principal) -> list[str]:
        allowed = self._allowed.get(principal.client)
        ids = [*VIRTUAL, *self._models.names]
        return [m for m in ids if allowed is None or m in allowed]

    async def _plan(
        self, chat: ChatRequest, principal: Principal
    ) -> tuple[Route, dict[str, Any], list[dict[str, Any]]]:
        """The route, the body to send (``kb``: with the passages) and the passages' sources."""
        if chat.model not in self.model_ids(principal):
            if chat.model in VIRTUAL or self._models.spec(chat.model) is not None:
                raise Forbidden(f"this client may not use the model '{chat.model}'")
            raise NotFound(f"the model '{chat.model}' does not exist; GET /v1/models lists them")
        pii = await contains_pii(chat.text)  # the request's one personal-data decision
        if pii:
            PII_ROUTED.labels(self._accounting.tenant_label(principal.tenant)).inc()
            self._accounting.stats.pii()
        spec = self._models.spec(chat.model)
        if spec is not None and (spec.local or not pii):
            route = Route(chat.model, (spec,), pii)
        else:
            route = self._models.rules(chat.question, pii=pii, tenant=principal.tenant, platform="v1")
        if needs_tool_call(chat.body) and all(m.provider == "extractive" for m in route.models):
            raise BadRequest(_NO_TOOLS_PII if pii else _NO_TOOLS)
        body, sources = chat.body, []
        if chat.model == "kb":
            # A chat model gets the best passages unless there is no evidence, and decides (as on /ask);
            # the retrieval's embeddings obey the request's personal-data decision too.
            with privacy.decided(pii):
                context, sources = await self._context(chat.question, principal, abstain=not model_decides(route))
            body = {**body, "messages": [context, *body["messages"]]}
        return route, body, sources

    async def _relevant(self, question: str, principal: Principal, *, abstain: bool = True) -> list[Hit]:
        """Passages for the question from the collections this caller may read, and no other.
        ``abstain`` False: a chat model decides, so no floor (see AskService)."""
        index = self._index.current
        if index is None:
            return []
        top_k = self._settings.retrieval.top_k
        collections = principal.collections or frozenset()
        hits = await self._retriever.search(index, question, top_k, collections=collections, abstain=abstain)
        return hits if not abstain else [h for h in hits if h.score >= self._settings.retrieval.min_score]

    async def _context(
        self, question: str, principal: Principal, *, abstain: bool = True
    ) -> tuple[dict[str, str], list[dict[str, Any]]]:
        relevant = await self._relevant(question, principal, abstain=abstain)
        block = context_block(relevant) if relevant else "(nothing relevant in the knowledge base)"
        return {"role": "system", "content": f"{SYSTEM}\n\nContext:\n{block}"}, sources_of(relevant)

    async def complete(
        self,
        chat: ChatRequest,
        principal: Principal,
        *,
        path: str = "/v1/chat/completions",
        native: Native | None = None,
    ) -> RelayedReply:
        """The upstream's reply as it came (``kb``: with top-level ``sources``, the passages its
        ``[n]`` markers cite); ``native`` answers for models marked ``responses: native``."""
        started = time.perf_counter()
        admission = await self._accounting.admit(principal, path)
        route, body, sources = await self._plan(chat, principal)

        async def attempt(spec: ModelSpec) -> Forwarded:
            if spec.provider == "extractive":
                with privacy.decided(route.pii):  # the offline answerer's retrieval obeys the decision
                    return await self._extractive(chat, spec, principal)
            if native is not None and spec.responses == "native":
                return await native.complete(spec, body)
            return await self._forwarder.complete(spec, {**body, "model": spec.upstream, "stream": False})

        reply = await self._models.call(route, attempt)
        usage = reply.data.get("usage")
        model = str(reply.data.get("model") or route.models[0].upstream)
        if isinstance(usage, dict):
            prompt, completion = usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0
        else:  # the upstream did not say: count what went up and what came back
            prompt, completion = await count_tokens(_prompt_text(body)), await count_tokens(_reply_text(reply.data))
        await self._accounting.forwarded(principal, model, prompt, completion, _ms_since(started))
        if chat.model == "kb" and is_no_answer(_reply_text(reply.data)):  # the polite "I don't know" cites nothing
            polite = _polite_reply(reply.data, NO_KNOWLEDGE[language_of(chat.question)])
            return RelayedReply(orjson.dumps(polite), admission)
        if sources:
            return RelayedReply(orjson.dumps({**reply.data, "sources": sources}), admission)
        return RelayedReply(reply.body, admission)

    async def stream(
        self,
        chat: ChatRequest,
        principal: Principal,
        *,
        path: str = "/v1/chat/completions",
        native: Native | None = None,
    ) -> tuple[Admission, AsyncIterator[bytes]]:
        """Upstream ``data:`` lines for the client. Failures before the first line raise;
        after it, the stream ends with an error line (the SDKs raise on it), not [DONE].
        ``kb``: the first chunk carries top-level ``sources``."""
        started = time.perf_counter()
        admission = await self._accounting.admit(principal, path)
        route, body, sources = await self._plan(chat, principal)
        wants_usage = bool((chat.body.get("stream_options") or {}).get("include_usage"))
        upstream_body = {**body, "stream": True, "stream_options": {"include_usage": True}}

        def open_stream(spec: ModelSpec) -> AsyncIterator[bytes]:
            if spec.provider == "extractive":
                return self._extractive_stream(chat, spec, principal, route.pii)
            if native is not None and spec.responses == "native":
                return native.stream(spec, body)
            return self._forwarder.stream(spec, {**upstream_body, "model": spec.upstream})

        lines = self._models.relay(route, open_stream)
        first = await anext(lines)
        if sources and first[0].startswith(b"data: {"):
            first = (b"data: " + orjson.dumps({**orjson.loads(first[0][6:]), "sources": sources}), first[1])
        frames = self._relay(first, lines, principal, body, wants_usage, started)
        if chat.model == "kb":
            frames = _polite_frames(frames, NO_KNOWLEDGE[language_of(chat.question)])
        return admission, frames

    async def _relay(
        self,
        first: tuple[bytes, ModelSpec],
        lines: AsyncIterator[tuple[bytes, ModelSpec]],
        principal: Principal,
        body: dict[str, Any],
        wants_usage: bool,
        started: float,
    ) -> AsyncIterator[bytes]:
        usage: dict[str, Any] | None = None
        model = first[1].upstream
        sent: list[bytes] = []  # parsed only if the upstream never reports usage
        item: tuple[bytes, ModelSpec] | None = first
        while item is not None:
            line = item[0]
            sent.append(line)
            if _has_usage(line):  # only the usage chunk is parsed: accounting needs nothing else
                data = orjson.loads(line[5:])
                usage = data.get("usage") or usage
                model = data.get("model") or model
                if not data.get("choices") and not wants_usage:
                    item = await anext(lines, None)
                    continue
            yield line + b"\n\n"
            item = await anext(lines, None)
        if usage is not None:
            prompt, completion = usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0
        else:
            prompt, completion = await count_tokens(_prompt_text(body)), await count_tokens(_streamed_text(sent))
        await self._accounting.forwarded(principal, model, prompt, completion, _ms_since(started))

    async def _extractive(self, chat: ChatRequest, spec: ModelSpec, principal: Principal) -> Forwarded:
        text = await self._extractive_text(chat.question, principal, spec)
        data = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": spec.upstream,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        }
        return Forwarded(orjson.dumps(data), data)

    async def _extractive_stream(
        self, chat: ChatRequest, spec: ModelSpec, principal: Principal, pii: bool
    ) -> AsyncIterator[bytes]:
        with privacy.decided(pii):  # no yield inside: the decision is reset in the step that set it
            text = await self._extractive_text(chat.question, principal, spec)
        base = {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": spec.upstream}  # fmt: skip
        pieces = [
            {"role": "assistant", "content": ""},
            *({"content": line} for line in text.splitlines(True)),
        ]
        for delta in pieces:
            yield b"data: " + orjson.dumps({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        yield b"data: " + orjson.dumps({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        yield b"data: " + orjson.dumps({**base, "choices": [], "usage": usage})
        yield b"data: [DONE]"

    async def _extractive_text(self, question: str, principal: Principal, spec: ModelSpec) -> str:
        relevant = await self._relevant(question, principal)
        if not relevant:
            return NO_KNOWLEDGE[language_of(question)]
        completion = await self._models.provide(spec, build_prompt(question, relevant), 0.0, 0)
        return completion.text or NO_KNOWLEDGE[language_of(question)]

    async def aclose(self) -> None:
        await self._forwarder.aclose()


def _polite_reply(data: dict[str, Any], polite: str) -> dict[str, Any]:
    """The upstream's completion with its "no answer" signal replaced by the polite words (the
    model and its usage stay: that model answered, and its tokens were spent)."""
    choices = [dict(c) for c in data["choices"]]
    choices[0]["message"] = {**choices[0]["message"], "content": polite}
    return {**data, "choices": choices}


def _delta(frame: bytes) -> tuple[dict[str, Any], str] | None:
    """A streamed chunk that carries answer text: its JSON and the text (None: any other frame)."""
    line = frame.strip()
    if not line.startswith(b"data:") or line[5:].strip() == b"[DONE]":
        return None
    try:
        data = orjson.loads(line[5:])
    except orjson.JSONDecodeError:
        return None
    choices = data.get("choices") if isinstance(data, dict) else None
    delta = choices[0].get("delta") if isinstance(choices, list) and choices and isinstance(choices[0], dict) else None
    content = delta.get("content") if isinstance(delta, dict) else None
    return (data, content) if isinstance(content, str) else None


async def _polite_frames(frames: AsyncIterator[bytes], polite: str) -> AsyncIterator[bytes]:
    """Model ``kb``'s stream with the "no answer" signal turned into the polite words: its first
    frames are held while their text may still be the signal, which never reaches the client."""
    held: list[bytes] = []
    text = ""
    deciding, declined = True, False
    async for frame in frames:
        found = _delta(frame)
        if not deciding:
            if not (declined and found is not None):
                yield frame
            continue
        held.append(frame)
        text += found[1] if found is not None else ""
        if found is not None and not may_be_no_answer(text):
            deciding = False
            declined = is_no_answer(text)
            for out in _released(held, polite if declined else None):
                yield out
    if deciding:  # the stream ended undecided: a short reply, or the bare signal
        for out in _released(held, polite if is_no_answer(text) else None):
            yield out


def _released(held: list[bytes], polite: str | None) -> list[bytes]:
    """The held frames as they were, or (``polite``) with the text frames replaced by one of it."""
    if polite is None:
        return held
    out: list[bytes] = []
    for frame in held:
        found = _delta(frame)
        if found is None:
            out.append(frame)
        elif not any(_delta(f) for f in out):
            data, _ = found
            choice = {**data["choices"][0], "delta": {**data["choices"][0]["delta"], "content": polite}}
            out.append(b"data: " + orjson.dumps({**data, "choices": [choice]}) + b"\n\n")
    return out


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _has_usage(line: bytes) -> bool:
    return b'"usage"' in line and b'"usage":null' not in line and b'"usage": null' not in line


def _prompt_text(body: dict[str, Any]) -> str:
    return "\n".join(_text(m.get("content")) or "" for m in body["messages"] if isinstance(m, dict))


def _reply_text(data: dict[str, Any]) -> str:
    choices = data.get("choices")
    message = (
        choices[0].get("message") if isinstance(choices, list) and choices and isinstance(choices[0], dict) else None
    )
    content = message.get("content") if isinstance(message, dict) else None
    return content if isinstance(content, str) else ""


def _streamed_text(lines: list[bytes]) -> str:
    parts: list[str] = []
    for line in lines:
        try:
            data = orjson.loads(line[5:]) if line.startswith(b"data:") else None
        except orjson.JSONDecodeError:
            continue  # [DONE], or an error line
        for choice in data.get("choices") or () if isinstance(data, dict) else ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            content = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(content, str):
                parts.append(content)
    return "".join(parts)
