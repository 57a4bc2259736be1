"""The Responses API as chat completions, and back: pure translations, no I/O.

Why a translation: most upstreams (vLLM, Ollama, providers' compatible endpoints, the offline
answerer) speak chat completions only, while openai-agents, the Vercel AI SDK and others call
``POST /v1/responses`` by default. A request becomes one chat-completions body (instructions,
earlier turns, function calls and their outputs as messages; ``text.format`` as
``response_format``); a chat completion — or its stream of chunks — becomes a Response object
or its typed events, in the order the official SDKs' stream helpers accumulate them.

What cannot be translated faithfully is refused with a 400 naming the parameter, never
silently dropped: hosted tools (web or file search, code interpreter), files, stored prompts,
``conversation`` and ``background``.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from core.errors import BadRequest
from core.schema import json_object

# Every parameter of POST /v1/responses (openai-python's ResponseCreateParams); others are a 400.
KNOWN = frozenset(
    {
        "background",
        "context_management",
        "conversation",
        "include",
        "input",
        "instructions",
        "max_output_tokens",
        "max_tool_calls",
        "metadata",
        "model",
        "parallel_tool_calls",
        "previous_response_id",
        "prompt",
        "prompt_cache_key",
        "prompt_cache_retention",
        "reasoning",
        "safety_identifier",
        "service_tier",
        "store",
        "stream",
        "stream_options",
        "temperature",
        "text",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "truncation",
        "user",
    }
)
# Known but not translatable when set (a null or false value is as if absent).
UNSUPPORTED = {
    "background": "background responses are not supported; send the request without it",
    "conversation": "conversations are not supported; use previous_response_id",
    "prompt": "stored prompt templates are not supported; send instructions and input",
}
# Passed to the chat-completions body under the same name.
SAME_NAME = ("temperature", "top_p", "metadata", "user", "parallel_tool_calls")
MESSAGE_ROLES = frozenset({"user", "system", "developer", "assistant"})
TEXT_PARTS = frozenset({"input_text", "output_text", "text"})
_MARKER = re.compile(r"\[(\d{1,3})\]")


class InvalidParam(BadRequest):
    """A 400 that names the parameter, as OpenAI's errors do (``error.param``)."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.param = param
        self.code = code


@dataclass(frozen=True, slots=True)
class ResponsesRequest:
    body: dict[str, Any]  # the client's request
    model: str
    stream: bool
    items: list[dict[str, Any]]  # this turn's input items, normalised (every item has a "type")
    previous_id: str | None
    store: bool


def parse(raw: bytes) -> ResponsesRequest:
    body = json_object(raw)
    unknown = sorted(set(body) - KNOWN)
    if unknown:
        raise InvalidParam(f"Unrecognized request argument supplied: {', '.join(unknown)}", unknown[0])
    for name, why in UNSUPPORTED.items():
        if body.get(name) not in (None, False):
            raise InvalidParam(why, name)
    model = body.get("model", "auto")
    if not isinstance(model, str) or not model:
        raise InvalidParam("model: must be a string", "model")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise InvalidParam("stream: must be a boolean", "stream")
    previous = body.get("previous_response_id")
    if previous is not None and (not isinstance(previous, str) or not previous):
        raise InvalidParam("previous_response_id: must be a string", "previous_response_id")
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise InvalidParam("instructions: must be a string", "instructions")
    items = input_items(body.get("input"))
    if not items and previous is None:
        raise InvalidParam("input: must be a non-empty string or list of input items", "input")
    store = body.get("store")
    return ResponsesRequest(body, model, stream, items, previous, store is not False)


def input_items(value: Any) -> list[dict[str, Any]]:
    """``input`` as a list of typed items: a string is one user message."""
    if value is None:
        return []
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}] if value else []
    if not isinstance(value, list):
        raise InvalidParam("input: must be a string or a list of input items", "input")
    items = []
    for n, item in enumerate(value):
        if not isinstance(item, dict):
            raise InvalidParam(f"input[{n}]: must be an object", f"input[{n}]")
        kind = item.get("type", "message")
        if kind == "message":
            if item.get("role") not in MESSAGE_ROLES:
                raise InvalidParam(
                    f"input[{n}].role: must be one of {', '.join(sorted(MESSAGE_ROLES))}", f"input[{n}].role"
                )
            _content(item.get("content"), f"input[{n}].content")  # validated here, translated later
        elif kind == "function_call":
            for key in ("call_id", "name", "arguments"):
                if not isinstance(item.get(key), str):
                    raise InvalidParam(f"input[{n}].{key}: must be a string", f"input[{n}].{key}")
        elif kind == "function_call_output":
            if not isinstance(item.get("call_id"), str):
                raise InvalidParam(f"input[{n}].call_id: must be a string", f"input[{n}].call_id")
            if _output_text(item.get("output")) is None:
                raise InvalidParam(f"input[{n}].output: must be a string or a list of text parts", f"input[{n}].output")
        elif kind == "reasoning":
            continue  # a reasoning model's own notes: nothing a chat-completions upstream can take
        else:
            raise InvalidParam(
                f"input[{n}]: items of type '{kind}' are not supported (message, function_call "
                "and function_call_output are)",
                f"input[{n}].type",
            )
        items.append({**item, "type": kind})
    return items


def _content(content: Any, where: str) -> str | list[dict[str, Any]]:
    """A message's content for chat completions: text, or text and image parts."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidParam(f"{where}: must be a string or a list of content parts", where)
    parts: list[dict[str, Any]] = []
    for n, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in TEXT_PARTS and isinstance(part.get("text"), str):  # type: ignore[union-attr]
            parts.append({"type": "text", "text": part["text"]})  # type: ignore[index]
        elif kind == "input_image" and isinstance(part.get("image_url"), str):  # type: ignore[union-attr]
            image = {"url": part["image_url"], "detail": part.get("detail") or "auto"}  # type: ignore[index,union-attr]
            parts.append({"type": "image_url", "image_url": image})
        else:
            raise InvalidParam(
                f"{where}[{n}]: content parts of type '{kind}' are not supported (input_text, "
                "output_text and input_image with an image_url are)",
                f"{where}[{n}].type",
            )
    if all(p["type"] == "text" for p in parts):
        return "\n".join(p["text"] for p in parts)
    return parts


def _output_text(output: Any) -> str | None:
    if isinstance(output, str):
        return output
    if isinstance(output, list) and all(isinstance(p, dict) and p.get("type") in TEXT_PARTS for p in output):
        texts = [p.get("text") for p in output]
        if all(isinstance(t, str) for t in texts):
            return "\n".join(texts)  # type: ignore[arg-type]
    return None


def to_messages(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Input items as chat messages: a run of function calls is one assistant message."""
    messages: list[dict[str, Any]] = []
    for item in items:
        kind = item["type"]
        if kind == "message":
            messages.append({"role": item["role"], "content": _content(item.get("content"), "input")})
        elif kind == "function_call":
            call = {
                "id": item["call_id"],
                "type": "function",
                "function": {"name": item["name"], "arguments": item["arguments"]},
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and isinstance(last.get("content"), str | None):
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": _output_text(item["output"])})
    return messages


def to_chat(request: ResponsesRequest, history: list[dict[str, Any]]) -> dict[str, Any]:
    """The chat-completions body for this request after the conversation's earlier items."""
    body = request.body
    messages = to_messages([*history, *request.items])
    if body.get("instructions"):
        messages.insert(0, {"role": "system", "content": body["instructions"]})
    chat: dict[str, Any] = {"model": request.model, "messages": messages, "stream": request.stream}
    for name in SAME_NAME:
        if body.get(name) is not None:
            chat[name] = body[name]
    if body.get("max_output_tokens") is not None:
        chat["max_tokens"] = body["max_output_tokens"]
    if body.get("tools"):
        chat["tools"] = _tools(body["tools"])
    if body.get("tool_choice") is not None:
        chat["tool_choice"] = _tool_choice(body["tool_choice"])
    response_format = _response_format(
        (body.get("text") or {}).get("format") if isinstance(body.get("text"), dict) else None
    )
    if response_format is not None:
        chat["response_format"] = response_format
    if request.stream:
        chat["stream_options"] = {"include_usage": True}  # usage goes on response.completed
    return chat


def to_native(request: ResponsesRequest, history: list[dict[str, Any]], upstream: str) -> dict[str, Any]:
    """The body for an upstream that has the Responses API itself: the whole conversation as
    input (the hub keeps it), nothing stored upstream."""
    body = {k: v for k, v in request.body.items() if k not in ("previous_response_id", "store", "conversation")}
    return {**body, "model": upstream, "input": [*history, *request.items], "store": False}


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise InvalidParam("tools: must be a list", "tools")
    out = []
    for n, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(tool.get("name"), str):
            kind = tool.get("type") if isinstance(tool, dict) else None
            raise InvalidParam(
                f"tools[{n}]: tools of type '{kind}' are not supported; function tools (with a name) are",
                f"tools[{n}].type",
            )
        function = {k: tool[k] for k in ("name", "description", "parameters", "strict") if tool.get(k) is not None}
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(choice: Any) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise InvalidParam("tool_choice: must be auto, none, required or a function tool by name", "tool_choice")


def _response_format(fmt: Any) -> dict[str, Any] | None:
    if fmt is None or (isinstance(fmt, dict) and fmt.get("type") == "text"):
        return None
    if isinstance(fmt, dict) and fmt.get("type") == "json_object":
        return {"type": "json_object"}
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), dict):
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if fmt.get(k) is not None}
        schema.setdefault("name", "response")
        return {"type": "json_schema", "json_schema": schema}
    raise InvalidParam("text.format: must be text, json_object or json_schema with a schema", "text.format")


# ----------------------------------------------------------------------------- back


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def annotations(text: str, sources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each ``[n]`` in the text that names a source, as OpenAI's citation annotations: a
    ``url_citation`` over the marker where the source has an address, else a ``file_citation``."""
    by_index = {s.get("index"): s for s in sources}
    out: list[dict[str, Any]] = []
    for match in _MARKER.finditer(text):
        source = by_index.get(int(match.group(1)))
        if source is None:
            continue
        if source.get("url"):
            out.append(
                {
                    "type": "url_citation",
                    "url": source["url"],
                    "title": source.get("title", ""),
                    "start_index": match.start(),
                    "end_index": match.end(),
                }
            )
        else:
            out.append(
                {
                    "type": "file_citation",
                    "file_id": source.get("document") or source.get("id", ""),
                    "filename": source.get("filename") or source.get("title", ""),
                    "index": match.start(),
                }
            )
    return out


def usage_of(chat_usage: Any) -> dict[str, Any]:
    usage = chat_usage if isinstance(chat_usage, dict) else {}
    prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": prompt + completion,
    }


def skeleton(request: ResponsesRequest, response_id: str, model: str) -> dict[str, Any]:
    """A Response object with no output yet: what response.created carries."""
    body = request.body
    text = body.get("text") if isinstance(body.get("text"), dict) else {}
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": "in_progress",
        "model": model,
        "output": [],
        "instructions": body.get("instructions"),
        "previous_response_id": request.previous_id,
        "tools": body.get("tools") or [],
        "tool_choice": body.get("tool_choice") or "auto",
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "temperature": body.get("temperature"),
        "top_p": body.get("top_p"),
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": body.get("metadata") or {},
        "text": {"format": text.get("format") or {"type": "text"}},
        "user": body.get("user"),
        "store": request.store,
        "error": None,
        "incomplete_details": None,
        "usage": None,
    }


def _message_item(text: str, sources: list[dict[str, Any]], status: str = "completed") -> dict[str, Any]:
    part = {"type": "output_text", "text": text, "annotations": annotations(text, sources), "logprobs": []}
    return {"type": "message", "id": new_id("msg"), "status": status, "role": "assistant", "content": [part]}


def _call_item(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    return {
        "type": "function_call",
        "id": new_id("fc"),
        "call_id": call.get("id") or new_id("call"),
        "name": function.get("name", ""),
        "arguments": function.get("arguments") or "",
        "status": "completed",
    }


def _finish(response: dict[str, Any], finish_reason: Any) -> None:
    if finish_reason == "length":
        response.update(status="incomplete", incomplete_details={"reason": "max_output_tokens"})
    elif finish_reason == "content_filter":
        response.update(status="incomplete", incomplete_details={"reason": "content_filter"})
    else:
        response["status"] = "completed"


def from_chat(request: ResponsesRequest, completion: dict[str, Any], response_id: str) -> dict[str, Any]:
    """A chat completion as a Response object (its ``sources``, if any, as citations)."""
    choices = completion.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    sources = completion.get("sources") or []
    response = skeleton(request, response_id, str(completion.get("model") or request.model))
    output: list[dict[str, Any]] = []
    text = message.get("content")
    if isinstance(text, str) and (text or not message.get("tool_calls")):
        output.append(_message_item(text, sources))
    output.extend(_call_item(call) for call in message.get("tool_calls") or () if isinstance(call, dict))
    response["output"] = output
    response["usage"] = usage_of(completion.get("usage"))
    if sources:
        response["sources"] = sources
    _finish(response, choice.get("finish_reason"))
    return response


def output_items(response: dict[str, Any]) -> list[dict[str, Any]]:
    """The output a later turn sends back as input: messages (as text) and function calls."""
    items: list[dict[str, Any]] = []
    for item in response.get("output") or ():
        if not isinstance(item, dict):
            continue
        if item.get("type") == "message":
            text = "".join(p.get("text", "") for p in item.get("content") or () if isinstance(p, dict))
            items.append({"type": "message", "role": "assistant", "content": text})
        elif item.get("type") == "function_call":
            items.append(
                {
                    "type": "function_call",
                    "call_id": item.get("call_id", ""),
                    "name": item.get("name", ""),
                    "arguments": item.get("arguments", ""),
                }
            )
    return items


@dataclass
class _Call:
    index: int  # output index
    item: dict[str, Any]


@dataclass
class StreamTranslator:
    """Chat-completion chunks in, Responses stream events out (dicts with ``type``), in the
    order OpenAI sends them: created, in_progress, then per output item added → deltas → done,
    then completed with the whole response."""

    request: ResponsesRequest
    response_id: str
    response: dict[str, Any] = field(init=False)
    _seq: int = 0
    _started: bool = False
    _output: list[dict[str, Any]] = field(default_factory=list)
    _text_index: int | None = None
    _text: list[str] = field(default_factory=list)
    _calls: dict[int, _Call] = field(default_factory=dict)
    _sources: list[dict[str, Any]] = field(default_factory=list)
    _finish_reason: Any = None
    _usage: Any = None

    def __post_init__(self) -> None:
        self.response = skeleton(self.request, self.response_id, self.request.model)

    def _event(self, kind: str, **data: Any) -> dict[str, Any]:
        event = {"type": kind, "sequence_number": self._seq, **data}
        self._seq += 1
        return event

    def start(self, model: str | None = None) -> list[dict[str, Any]]:
        if self._started:
            return []
        self._started = True
        if model:
            self.response["model"] = model
        return [
            self._event("response.created", response=dict(self.response)),
            self._event("response.in_progress", response=dict(self.response)),
        ]

    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        events = self.start(chunk.get("model"))
        if chunk.get("sources"):
            self._sources = chunk["sources"]
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if isinstance(content, str) and content:
                events += self._text_delta(content)
            for call in delta.get("tool_calls") or ():
                if isinstance(call, dict):
                    events += self._call_delta(call)
            if choice.get("finish_reason"):
                self._finish_reason = choice["finish_reason"]
        return events

    def _text_delta(self, content: str) -> list[dict[str, Any]]:
        events = []
        if self._text_index is None:
            self._text_index = len(self._output)
            item = {"type": "message", "id": new_id("msg"), "status": "in_progress", "role": "assistant", "content": []}
            self._output.append(item)
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            events.append(self._event("response.output_item.added", output_index=self._text_index, item=dict(item)))
            events.append(
                self._event(
                    "response.content_part.added",
                    item_id=item["id"],
                    output_index=self._text_index,
                    content_index=0,
                    part=part,
                )
            )
        self._text.append(content)
        item_id = self._output[self._text_index]["id"]
        events.append(
            self._event(
                "response.output_text.delta",
                item_id=item_id,
                output_index=self._text_index,
                content_index=0,
                delta=content,
                logprobs=[],
            )
        )
        return events

    def _call_delta(self, call: dict[str, Any]) -> list[dict[str, Any]]:
        events = []
        index = call.get("index", 0)
        function = call.get("function") or {}
        current = self._calls.get(index)
        if current is None:
            item = {
                "type": "function_call",
                "id": new_id("fc"),
                "call_id": call.get("id") or new_id("call"),
                "name": function.get("name") or "",
                "arguments": "",
                "status": "in_progress",
            }
            current = self._calls[index] = _Call(len(self._output), item)
            self._output.append(item)
            events.append(self._event("response.output_item.added", output_index=current.index, item=dict(item)))
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            current.item["arguments"] += arguments
            events.append(
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=current.item["id"],
                    output_index=current.index,
                    delta=arguments,
                )
            )
        return events

    def finish(self) -> list[dict[str, Any]]:
        """The done events of every open item, and response.completed."""
        events = self.start()
        for index, item in enumerate(self._output):
            if item["type"] == "message":
                text = "".join(self._text)
                part = {
                    "type": "output_text",
                    "text": text,
                    "annotations": annotations(text, self._sources),
                    "logprobs": [],
                }
                for n, note in enumerate(part["annotations"]):  # what the Vercel AI SDK reads sources from
                    events.append(
                        self._event(
                            "response.output_text.annotation.added",
                            item_id=item["id"],
                            output_index=index,
                            content_index=0,
                            annotation_index=n,
                            annotation=note,
                        )
                    )
                events.append(
                    self._event(
                        "response.output_text.done",
                        item_id=item["id"],
                        output_index=index,
                        content_index=0,
                        text=text,
                        logprobs=[],
                    )
                )
                events.append(
                    self._event(
                        "response.content_part.done", item_id=item["id"], output_index=index, content_index=0, part=part
                    )
                )
                item.update(status="completed", content=[part])
            else:
                events.append(
                    self._event(
                        "response.function_call_arguments.done",
                        item_id=item["id"],
                        output_index=index,
                        name=item["name"],
                        arguments=item["arguments"],
                    )
                )
                item["status"] = "completed"
            events.append(self._event("response.output_item.done", output_index=index, item=dict(item)))
        self.response["output"] = self._output
        self.response["usage"] = usage_of(self._usage)
        if self._sources:
            self.response["sources"] = self._sources
        _finish(self.response, self._finish_reason)
        kind = "response.completed" if self.response["status"] == "completed" else "response.incomplete"
        events.append(self._event(kind, response=self.response))
        return events
