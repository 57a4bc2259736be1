"""POST /v1/responses through the official openai SDK, over the chat pipeline, and kb citations as data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import OpenAI
from pydantic import BaseModel

from core.auth import digest
from tests.conftest import ROOT, HubServer, make_settings, metric, write_yaml
from tests.fakes.openai_upstream import FakeOpenAI

KEY = "ah_responses-key-000000000000000"
OTHER = "ah_responses-other-client-00000"
SLOW = "ah_responses-one-a-minute-00000"
PHONE = "0912-345-678"
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def _config(fake: FakeOpenAI) -> dict[str, Any]:
    return {
        "resilience": {"retries": 0},
        "models": [
            {"name": "native", "model": "gpt-4o", "responses": "native"},
            {"name": "tools", "model": "tool-model"},
            {"name": "flaky", "model": "flaky-model"},  # its failures open no other model's breaker
            {"name": "local", "model": "local-llm", "base_url": fake.base_url, "local": True},
        ],
        "routes": [  # the defaults, and a badge question to the native model
            {"name": "pii", "when": {"pii": True}, "models": ["local"]},
            {"name": "badges", "when": {"keywords": ["badge"]}, "models": ["native"]},
            {"name": "default", "models": ["small", "large"]},
        ],
        "clients": [
            {"name": "app", "tenant": "hr", "key_sha256": [digest(KEY)]},
            {"name": "other", "tenant": "hr", "key_sha256": [digest(OTHER)]},
            {"name": "slow", "tenant": "cs", "rate_limit": {"max_per_user": 1, "window_sec": 60},
             "key_sha256": [digest(SLOW)]},
        ],
    }  # fmt: skip


def _settings(tmp_path: Path, sample_index: Path, fake: FakeOpenAI, **env: str) -> Any:
    return make_settings(
        tmp_path, INDEX_DIR=str(sample_index), HUB_CONFIG=str(write_yaml(tmp_path / "hub.yaml", _config(fake))),
        OPENAI_API_KEY="sk-up", OPENAI_BASE_URL=fake.base_url, CHAT_MODEL="gpt-4o-mini", LARGE_MODEL="gpt-4o",
        RATE_LIMIT_MAX_PER_USER="1000", **env,
    )  # fmt: skip


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key="sk-up") as server:
        yield server


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, sample_index: Path, fake: FakeOpenAI) -> Iterator[HubServer]:
    with HubServer(_settings(tmp_path_factory.mktemp("responses"), sample_index, fake)) as server:
        yield server


@pytest.fixture(autouse=True)
def _reset(fake: FakeOpenAI) -> None:
    fake.reset()


def client(hub: HubServer, key: str = KEY) -> OpenAI:
    return OpenAI(base_url=f"{hub.url}/v1", api_key=key, max_retries=0, timeout=20)


def chat_calls(fake: FakeOpenAI) -> list[dict[str, Any]]:
    return [c.json for c in fake.calls if c.path == "/v1/chat/completions" and c.json is not None]


def test_text_in_text_out_with_usage(hub: HubServer, fake: FakeOpenAI) -> None:
    before = metric(hub.url, "gateway_requests_total", route="/v1/responses", method="POST", status="200")
    reply = client(hub).responses.create(
        model="gpt-4o-mini", input="How do I reset my MFA?", instructions="Be brief.", max_output_tokens=50,
        temperature=0.2, metadata={"caller": "tests"}, user="u-1",
    )  # fmt: skip
    assert reply.object == "response" and reply.status == "completed" and reply.id.startswith("resp_")
    assert reply.output_text == "[gpt-4o-mini] How do I reset my MFA?"
    assert reply.usage is not None and reply.usage.input_tokens > 0 and reply.usage.output_tokens > 0
    assert reply.usage.total_tokens == reply.usage.input_tokens + reply.usage.output_tokens
    (sent,) = chat_calls(fake)
    assert sent["messages"] == [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "How do I reset my MFA?"}]  # fmt: skip
    assert sent["max_tokens"] == 50 and sent["temperature"] == 0.2 and sent["user"] == "u-1"
    assert sent["metadata"] == {"caller": "tests"}
    after = metric(hub.url, "gateway_requests_total", route="/v1/responses", method="POST", status="200")
    assert after == before + 1
    assert metric(hub.url, "hub_llm_tokens_total", model="gpt-4o-mini", kind="completion") > 0


def test_message_input_items(hub: HubServer, fake: FakeOpenAI) -> None:
    reply = client(hub).responses.create(
        model="small",
        input=[
            {"role": "developer", "content": "Answer in English."},
            {"role": "user", "content": [{"type": "input_text", "text": "What is the VPN address?"}]},
        ],
    )
    assert reply.output_text == "[gpt-4o-mini] What is the VPN address?"
    assert chat_calls(fake)[0]["messages"][0] == {"role": "developer", "content": "Answer in English."}


def test_streamed_events_as_the_sdk_parses_them(hub: HubServer) -> None:
    events = list(client(hub).responses.create(model="small", input="How do I claim travel expenses?", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:5] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added", "response.output_text.delta"]  # fmt: skip
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]  # fmt: skip
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == "[gpt-4o-mini] How do I claim travel expenses?"
    completed = events[-1].response
    assert completed.output_text == deltas and completed.usage is not None and completed.usage.output_tokens > 0
    assert completed.id == events[0].response.id


def test_the_stream_helper_accumulates_the_final_response(hub: HubServer) -> None:
    with client(hub).responses.stream(model="small", input="Where is the office?") as stream:
        texts = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(texts) == final.output_text == "[gpt-4o-mini] Where is the office?"


@pytest.mark.parametrize("streamed", [False, True])
def test_a_function_tool_round_trip(hub: HubServer, fake: FakeOpenAI, streamed: bool) -> None:
    fake.set_behavior("gpt-4o-mini", tool_call=True)
    hub_client = client(hub)
    if streamed:
        with hub_client.responses.stream(model="small", input="Weather in Taipei?", tools=[WEATHER]) as stream:
            arguments = "".join(e.delta for e in stream if e.type == "response.function_call_arguments.delta")
            first = stream.get_final_response()
        assert arguments == '{"city": "fake"}'
    else:
        first = hub_client.responses.create(model="small", input="Weather in Taipei?", tools=[WEATHER],
                                            tool_choice="auto")  # fmt: skip
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "fake"}
    sent = chat_calls(fake)[0]
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    second = hub_client.responses.create(
        model="small", tools=[WEATHER],
        input=[{"role": "user", "content": "Weather in Taipei?"}, call.model_dump(exclude_none=True),
               {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 25°C"}],
    )  # fmt: skip
    assert second.output_text == "[gpt-4o-mini] tool said: sunny, 25°C"
    messages = chat_calls(fake)[1]["messages"]
    assert messages[1]["tool_calls"][0]["id"] == call.call_id
    assert messages[2] == {"role": "tool", "tool_call_id": call.call_id, "content": "sunny, 25°C"}


def test_json_schema_text_format(hub: HubServer, fake: FakeOpenAI) -> None:
    class Holiday(BaseModel):
        name: str
        days: int

    parsed = client(hub).responses.parse(model="small", input="How many days of leave?", text_format=Holiday)
    assert parsed.output_parsed == Holiday(name="fake", days=1)
    response_format = chat_calls(fake)[0]["response_format"]
    assert response_format["type"] == "json_schema" and response_format["json_schema"]["name"] == "Holiday"
    assert response_format["json_schema"]["schema"]["properties"]["days"] == {"title": "Days", "type": "integer"}


def test_previous_response_id_keeps_the_conversation(hub: HubServer, fake: FakeOpenAI) -> None:
    _conversation(hub, fake)
    unstored = client(hub).responses.create(model="small", input="Forget this.", store=False)
    with pytest.raises(openai.BadRequestError):
        client(hub).responses.create(model="small", input="What did I say?", previous_response_id=unstored.id)


def test_previous_response_id_on_redis(tmp_path: Path, sample_index: Path, fake: FakeOpenAI, redis_db: str) -> None:
    with HubServer(_settings(tmp_path, sample_index, fake, REDIS_URL=redis_db)) as server:
        assert server.hub.backend.name == "redis"
        _conversation(server, fake)
        import redis as redis_sync

        redis = redis_sync.Redis.from_url(redis_db)
        keys = redis.keys("*resp:*")
        assert len(keys) == 2, "each response's conversation is in Redis"
        assert all(0 < redis.pttl(k) <= 86_400_000 for k in keys), "with the responses.ttl_sec expiry"


def _conversation(hub: HubServer, fake: FakeOpenAI) -> None:
    hub_client = client(hub)
    first = hub_client.responses.create(model="small", input="My name is Mei.")
    second = hub_client.responses.create(model="small", input="What is my name?", previous_response_id=first.id)
    assert second.previous_response_id == first.id
    assert chat_calls(fake)[1]["messages"] == [
        {"role": "user", "content": "My name is Mei."},
        {"role": "assistant", "content": first.output_text},
        {"role": "user", "content": "What is my name?"},
    ]
    with pytest.raises(openai.BadRequestError) as refused:
        hub_client.responses.create(model="small", input="again", previous_response_id="resp_unknown")
    assert refused.value.code == "previous_response_not_found" and "resp_unknown" in refused.value.message
    with pytest.raises(openai.BadRequestError):  # another asker does not see it
        client(hub, OTHER).responses.create(model="small", input="hi", previous_response_id=first.id)


def test_kb_citations_as_data_on_the_responses_api(hub: HubServer) -> None:
    reply = client(hub).responses.create(model="kb", input="How do I claim travel expenses?")
    text = reply.output[0].content[0]
    assert "[1]" in text.text
    (citation,) = text.annotations
    assert citation.type == "file_citation" and citation.index == text.text.index("[1]")
    assert citation.filename.endswith(".md") and citation.file_id
    sources = reply.model_extra["sources"]
    assert sources[0]["index"] == 1 and sources[0]["document"] == citation.file_id and sources[0]["title"]


def test_kb_citations_as_data_on_chat_completions(hub: HubServer) -> None:
    question = [{"role": "user", "content": "How do I claim travel expenses?"}]
    reply = client(hub).chat.completions.create(model="kb", messages=question)
    assert "[1]" in reply.choices[0].message.content
    sources = reply.sources  # type: ignore[attr-defined]
    assert [s["index"] for s in sources] == list(range(1, len(sources) + 1))
    assert {"id", "title", "collection", "document", "filename"} <= set(sources[0])
    assert "text" not in sources[0], "the passages' text stays out of the reply"
    chunks = list(client(hub).chat.completions.create(model="kb", messages=question, stream=True))
    assert chunks[0].model_extra["sources"] == sources
    streamed = list(client(hub).responses.create(model="kb", input=question[0]["content"], stream=True))
    done = next(e for e in streamed if e.type == "response.output_text.done")
    assert "[1]" in done.text
    added = [e.annotation.to_dict() for e in streamed if e.type == "response.output_text.annotation.added"]
    assert added and added == [a.to_dict() for a in streamed[-1].response.output[0].content[0].annotations]
    assert streamed[-1].response.output[0].content[0].annotations[0].type == "file_citation"


def test_personal_data_in_earlier_turns_routes_to_the_local_model(hub: HubServer, fake: FakeOpenAI) -> None:
    hub_client = client(hub)
    first = hub_client.responses.create(model="small", input=f"My phone is {PHONE}", store=True)
    assert first.model == "local-llm"
    second = hub_client.responses.create(model="small", input="Thanks", previous_response_id=first.id)
    assert second.model == "local-llm", "the earlier turn with a phone number goes upstream again"
    assert [c.model for c in fake.calls] == ["local-llm", "local-llm"]


def test_native_pass_through(hub: HubServer, fake: FakeOpenAI) -> None:
    hub_client = client(hub)
    reply = hub_client.responses.create(model="native", input="Where is the office?", instructions="Be brief.")
    assert reply.output_text == "[gpt-4o] Where is the office?"
    (call,) = fake.calls
    assert call.path == "/v1/responses" and call.json is not None
    assert call.json["store"] is False and call.json["instructions"] == "Be brief."
    assert reply.usage is not None and reply.usage.input_tokens > 0
    follow = hub_client.responses.create(model="native", input="And parking?", previous_response_id=reply.id,
                                         stream=True)  # fmt: skip
    kinds = [e.type for e in follow]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    native_input = fake.calls[1].json["input"]  # type: ignore[index]
    assert [i.get("content") for i in native_input] == ["Where is the office?", reply.output_text, "And parking?"]
    assert metric(hub.url, "hub_llm_tokens_total", model="gpt-4o", kind="prompt") > 0


def test_errors_are_the_sdks_typed_exceptions(hub: HubServer) -> None:
    with pytest.raises(openai.AuthenticationError):
        client(hub, "ah_wrong-key-00000000000000000").responses.create(model="small", input="hi")
    slow = client(hub, SLOW)
    slow.responses.create(model="small", input="hi")
    with pytest.raises(openai.RateLimitError) as limited:
        slow.responses.create(model="small", input="hi again")
    assert limited.value.response.headers.get("Retry-After")
    with pytest.raises(openai.RateLimitError):
        slow.responses.create(model="small", input="hi again", stream=True)
    with pytest.raises(openai.NotFoundError):
        client(hub).responses.create(model="gpt-9", input="hi")


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"background": True}, "background"),
        ({"input": [{"type": "item_reference", "id": "x"}]}, "input[0].type"),
        ({"bogus": 1}, "bogus"),
        ({"text": {"format": {"type": "json_schema"}}}, "text.format"),
    ],
)
def test_what_cannot_be_translated_is_a_400_naming_it(hub: HubServer, extra: dict[str, Any], param: str) -> None:
    body = {"model": "small", "input": "hi", **extra}
    with pytest.raises(openai.BadRequestError) as refused:
        client(hub).post("/responses", body=body, cast_to=dict)
    assert refused.value.body["param"] == param  # type: ignore[index]


def test_a_stream_cut_after_it_started_ends_with_an_error_event(hub: HubServer, fake: FakeOpenAI) -> None:
    fake.set_behavior("flaky-model", mode="cut_stream", cut_after=2)
    events = list(client(hub).responses.create(model="flaky", input="Where is the office right now?", stream=True))
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "error", kinds
    assert "response.completed" not in kinds and events[-1].sequence_number == len(events) - 1


def test_inline_image_bytes_are_refused_as_on_chat_completions(hub: HubServer, fake: FakeOpenAI) -> None:
    image = {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="}
    with pytest.raises(openai.BadRequestError) as refused:
        client(hub).responses.create(model="small", input=[{"role": "user", "content": [image]}])
    assert "personal data" in refused.value.message and not fake.calls


NODE_DIR = ROOT / "tests" / "node"


def test_the_openai_npm_package(hub: HubServer, fake: FakeOpenAI) -> None:
    """openai-node (tests/node, installed by `make test` where Node is) against the same hub."""
    node = shutil.which("node")
    if node is None or not (NODE_DIR / "node_modules" / "openai").is_dir():
        if os.environ.get("CI") == "true" and node is not None:
            pytest.fail("Node is here but tests/node/node_modules is not: make test runs npm ci there")
        pytest.skip("no Node.js, or the openai npm package is not installed (npm ci --prefix tests/node)")
    fake.set_behavior("tool-model", tool_call=True)
    env = {**os.environ, "HUB_URL": hub.url, "HUB_KEY": KEY}
    done = subprocess.run([node, "responses.mjs"], cwd=NODE_DIR, env=env, capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["text"] == "[gpt-4o-mini] How do I reset my MFA?" and seen["inputTokens"] > 0
    assert seen["kinds"][0] == "response.created" and seen["kinds"][-1] == "response.completed"
    assert seen["streamed"] == "[gpt-4o-mini] Where is the office?"
    assert seen["call"] == {"name": "get_weather", "arguments": '{"city": "fake"}'}
    assert seen["toolAnswer"] == "[tool-model] tool said: sunny"
    assert seen["annotations"] and set(seen["annotations"]) == {"file_citation"}
    assert seen["authError"] == "AuthenticationError"


def test_the_limits_headers_come_with_the_response(hub: HubServer) -> None:
    raw = client(hub).responses.with_raw_response.create(model="small", input="hi")
    assert raw.headers["X-RateLimit-Limit"] == "1000" and int(raw.headers["X-RateLimit-Remaining"]) < 1000
    assert raw.parse().output_text == "[gpt-4o-mini] hi"


@pytest.mark.parametrize("streamed", [False, True])
def test_kb_over_a_native_upstream_is_cited_too(hub: HubServer, fake: FakeOpenAI, streamed: bool) -> None:
    question = "How do I get a replacement office badge?"
    if streamed:
        events = list(client(hub).responses.create(model="kb", input=question, stream=True))
        assert events[-1].type == "response.completed"
        reply = events[-1].response
    else:
        reply = client(hub).responses.create(model="kb", input=question)
    (call,) = fake.calls
    assert call.path == "/v1/responses" and call.json is not None
    context = call.json["input"][0]
    assert context["role"] == "system" and "Context:" in context["content"], "the passages go first"
    text = reply.output[0].content[0]
    assert text.text.startswith("[gpt-4o]") and "[1]" in text.text
    assert [a.type for a in text.annotations] == ["file_citation"]
    assert reply.model_extra["sources"][0]["index"] == 1
