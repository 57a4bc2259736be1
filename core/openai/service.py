"""ResponsesService: POST /v1/responses on the chat-completions pipeline.

Why on top of ChatService rather than beside it: keys, limits, personal-data routing, the
``kb`` passages, resilience, usage, metrics and tracing are the chat pipeline's, and a
Responses request is translated into exactly the chat body that pipeline takes — so the
personal-data check reads every string that goes upstream (earlier turns included), the same
way, in one place. A model marked ``responses: native`` gets the request in its own API
instead, inside the same attempt (fallbacks may cross between the two).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import orjson

from core.auth.principal import Principal
from core.chat import ChatRequest, ChatService, Native
from core.chat import parse as parse_chat
from core.llm.forwarder import Forwarded
from core.llm.gateway import ModelGateway
from core.llm.routing import ModelSpec
from core.openai.response_store import ResponseStore
from core.openai.responses import (
    InvalidParam,
    ResponsesRequest,
    StreamTranslator,
    annotations,
    from_chat,
    new_id,
    output_items,
    to_chat,
    to_native,
)
from core.schema import Admission

PATH = "/v1/responses"
TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
USAGE_LINE = "hub.usage"  # a line for the chat pipeline's accounting only, never sent to the client


class ResponsesService:
    def __init__(self, chat: ChatService, store: ResponseStore, models: ModelGateway) -> None:
        self._chat = chat
        self._store = store
        self._models = models

    async def _prepare(self, request: ResponsesRequest, principal: Principal) -> tuple[ChatRequest, list[Any]]:
        history: list[Any] = []
        if request.previous_id is not None:
            found = await self._store.load(principal, request.previous_id)
            if found is None:
                raise InvalidParam(
                    f"Previous response with id '{request.previous_id}' not found.",
                    "previous_response_id",
                    "previous_response_not_found",
                )
            history = found
        chat = parse_chat(orjson.dumps(to_chat(request, history)))
        # An upstream name ("gpt-4o-mini") means the logical model that uses it, as on chat completions.
        return replace(chat, model=self._models.resolve(chat.model)), history

    def _native(self, request: ResponsesRequest, history: list[Any], chat: ChatRequest) -> Native:
        """The request in the upstream's own Responses API; the hub's ``kb`` passages (messages
        the pipeline put before the client's) go first in its input."""

        def body(spec: ModelSpec, planned: dict[str, Any], stream: bool) -> dict[str, Any]:
            added = planned["messages"][: len(planned["messages"]) - len(chat.body["messages"])]
            native = to_native(request, history, spec.upstream)
            extra = [{"type": "message", "role": m["role"], "content": m["content"]} for m in added]
            return {**native, "input": [*extra, *native["input"]], "stream": stream}

        async def complete(spec: ModelSpec, planned: dict[str, Any]) -> Forwarded:
            reply = await self._chat.forwarder.respond(spec, body(spec, planned, False))
            usage = reply.data.get("usage")
            both = {**usage, **_chat_usage(usage)} if isinstance(usage, dict) else _chat_usage(None)
            return Forwarded(reply.body, {**reply.data, "usage": both})

        async def stream(spec: ModelSpec, planned: dict[str, Any]) -> AsyncIterator[bytes]:
            async for line in self._chat.forwarder.stream(spec, body(spec, planned, True), "responses"):
                yield line
                if b'"usage"' in line and line.startswith(b"data: {"):
                    response = orjson.loads(line[6:]).get("response") or {}
                    if response.get("usage"):
                        usage = {"object": USAGE_LINE, "choices": [], "model": response.get("model"),
                                 "usage": _chat_usage(response["usage"])}  # fmt: skip
                        yield b"data: " + orjson.dumps(usage)

        return Native(complete, stream)

    async def create(self, request: ResponsesRequest, principal: Principal) -> tuple[bytes, Admission]:
        chat, history = await self._prepare(request, principal)
        native = self._native(request, history, chat)
        reply = await self._chat.complete(chat, principal, path=PATH, native=native)
        data = orjson.loads(reply.body)
        if data.get("object") == "response":
            response = _from_native(request, data)
        else:
            response = from_chat(request, data, new_id("resp"))
        await self._remember(request, principal, history, response)
        return orjson.dumps(response), reply.admission

    async def stream(
        self, request: ResponsesRequest, principal: Principal
    ) -> tuple[Admission, AsyncIterator[dict[str, Any]]]:
        """Typed stream events (each with its ``type``); failures before the first raise."""
        chat, history = await self._prepare(request, principal)
        native = self._native(request, history, chat)
        admission, lines = await self._chat.stream(chat, principal, path=PATH, native=native)
        return admission, self._events(request, principal, history, lines)

    async def _events(
        self, request: ResponsesRequest, principal: Principal, history: list[Any], lines: AsyncIterator[bytes]
    ) -> AsyncIterator[dict[str, Any]]:
        translator = StreamTranslator(request, new_id("resp"))
        final: dict[str, Any] | None = None
        sources: list[dict[str, Any]] | None = None
        async for line in lines:
            payload = line.strip()
            if not payload.startswith(b"data: {"):
                continue  # [DONE]
            data = orjson.loads(payload[6:])
            kind = data.get("type")
            if isinstance(kind, str):  # an event of an upstream that has the Responses API: as it is,
                sources = data.pop("sources", None) or sources  # but kb's sources (on the first line) and
                if kind in TERMINAL:  # the conversation link go on the final response
                    response = data.get("response") or {}
                    final = _from_native(request, {**response, "sources": sources} if sources else response)
                    data = {**data, "response": final}
                yield data
            elif data.get("object") != USAGE_LINE:
                for event in translator.feed(data):
                    yield event
        if final is None:
            for event in translator.finish():
                yield event
            final = translator.response
        await self._remember(request, principal, history, final)

    async def _remember(
        self, request: ResponsesRequest, principal: Principal, history: list[Any], response: dict[str, Any]
    ) -> None:
        if request.store and response.get("id"):
            await self._store.save(principal, response["id"], [*history, *request.items, *output_items(response)])


def _chat_usage(usage: Any) -> dict[str, int]:
    """A Responses usage in chat-completions names, for the pipeline's accounting."""
    usage = usage if isinstance(usage, dict) else {}
    return {
        "prompt_tokens": int(usage.get("input_tokens") or 0),
        "completion_tokens": int(usage.get("output_tokens") or 0),
    }


def _from_native(request: ResponsesRequest, data: dict[str, Any]) -> dict[str, Any]:
    """An upstream's own Response, with the hub's conversation link and ``kb`` citations."""
    response = {**data, "previous_response_id": request.previous_id, "store": request.store}
    if isinstance(response.get("usage"), dict):
        response["usage"] = {
            k: v for k, v in response["usage"].items() if k not in ("prompt_tokens", "completion_tokens")
        }
    sources = response.get("sources") or []
    for item in response.get("output") or ():
        for part in item.get("content") or () if isinstance(item, dict) and item.get("type") == "message" else ():
            if sources and isinstance(part, dict) and part.get("type") == "output_text" and not part.get("annotations"):
                part["annotations"] = annotations(part.get("text") or "", sources)
    return response
