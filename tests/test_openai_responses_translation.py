"""The Responses ⇄ chat-completions translation on its own, and /v1/responses on the offline answerer."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from openai import OpenAI

from core.openai.responses import (
    InvalidParam,
    StreamTranslator,
    annotations,
    from_chat,
    parse,
    to_chat,
    to_messages,
)
from tests.conftest import HubServer


def request(**body: Any) -> Any:
    return parse(orjson.dumps({"model": "small", "input": "hi", **body}))


def test_a_source_with_an_address_is_a_url_citation_over_its_marker() -> None:
    sources = [{"index": 1, "title": "Help", "url": "https://help.example.com/vpn", "document": "vpn"},
               {"index": 2, "title": "Leave", "document": "leave.md", "filename": "leave.md"}]  # fmt: skip
    text = "Use the VPN [1]. Ask HR [2]; see [9]."
    url, file = annotations(text, sources)
    assert url == {"type": "url_citation", "url": "https://help.example.com/vpn", "title": "Help",
                   "start_index": text.index("[1]"), "end_index": text.index("[1]") + 3}  # fmt: skip
    assert file == {"type": "file_citation", "file_id": "leave.md", "filename": "leave.md", "index": text.index("[2]")}


def test_function_calls_in_a_row_are_one_assistant_message() -> None:
    items = [
        {"type": "message", "role": "user", "content": "weather and time?"},
        {"type": "function_call", "call_id": "c1", "name": "weather", "arguments": "{}"},
        {"type": "function_call", "call_id": "c2", "name": "time", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
        {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "noon"}]},
    ]
    messages = to_messages(items)
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool"]
    assert [c["id"] for c in messages[1]["tool_calls"]] == ["c1", "c2"]
    assert messages[3] == {"role": "tool", "tool_call_id": "c2", "content": "noon"}


def test_an_image_by_address_is_an_image_part() -> None:
    req = request(input=[{"role": "user", "content": [{"type": "input_text", "text": "what is this?"},
                                                      {"type": "input_image", "image_url": "https://x/a.png"}]}])  # fmt: skip
    (message,) = to_chat(req, [])["messages"]
    assert message["content"][1] == {"type": "image_url", "image_url": {"url": "https://x/a.png", "detail": "auto"}}


def test_tool_choice_and_text_format_translate() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    chat = to_chat(request(tool_choice={"type": "function", "name": "f"},
                           text={"format": {"type": "json_schema", "name": "A", "schema": schema, "strict": True}}),
                   [])  # fmt: skip
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert chat["response_format"] == {"type": "json_schema",
                                       "json_schema": {"name": "A", "schema": schema, "strict": True}}  # fmt: skip


@pytest.mark.parametrize(
    "body",
    [{"input": ""}, {"input": 3}, {"instructions": 1}, {"tool_choice": "maybe"}, {"stream": "yes"},
     {"input": [{"role": "robot", "content": "x"}]}, {"conversation": "conv_1"}, {"prompt": {"id": "p"}}],
)  # fmt: skip
def test_bad_requests_are_400s(body: dict[str, Any]) -> None:
    with pytest.raises(InvalidParam):
        to_chat(request(**body), [])


def test_a_cut_off_answer_is_incomplete() -> None:
    completion = {"model": "m", "choices": [{"message": {"content": "half"}, "finish_reason": "length"}]}
    response = from_chat(request(), completion, "resp_1")
    assert response["status"] == "incomplete" and response["incomplete_details"] == {"reason": "max_output_tokens"}


def test_a_streamed_tool_call_becomes_function_call_events() -> None:
    translator = StreamTranslator(request(), "resp_1")
    events = translator.feed({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
    head = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}
    events += translator.feed({"choices": [{"index": 0, "delta": {"tool_calls": [head]}}]})
    events += translator.feed({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function":
                                                                                  {"arguments": '{"a"'}}]}}]})  # fmt: skip
    events += translator.feed({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function":
                                                                                  {"arguments": ": 1}"}}]}}]})  # fmt: skip
    events += translator.feed({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}],
                               "usage": None})  # fmt: skip
    events += translator.finish()
    assert [e["type"] for e in events] == [
        "response.created", "response.in_progress", "response.output_item.added",
        "response.function_call_arguments.delta", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done", "response.completed",
    ]  # fmt: skip
    done = events[-2]
    assert done["item"]["call_id"] == "call_1" and done["item"]["arguments"] == '{"a": 1}'
    assert events[-1]["response"]["output"] == [done["item"]]


def test_the_offline_answerer_answers_kb_with_citations(hub: HubServer) -> None:
    """Demo mode, no upstream: the extractive answerer quotes the knowledge base, cited as data."""
    client = OpenAI(base_url=f"{hub.url}/v1", api_key="unused", max_retries=0, timeout=20)
    reply = client.responses.create(model="kb", input="How do I claim travel expenses?")
    text = reply.output[0].content[0]
    assert text.annotations and all(a.type == "file_citation" for a in text.annotations)
    assert {a.filename for a in text.annotations} <= {s["filename"] for s in reply.model_extra["sources"]}
    assert text.text[text.annotations[0].index : text.annotations[0].index + 1] == "["
    streamed = list(client.responses.create(model="kb", input="How do I claim travel expenses?", stream=True))
    assert streamed[-1].type == "response.completed"
    assert streamed[-1].response.output[0].content[0].annotations
