"""Self-test of the fake upstream against the real ``openai`` SDK.

If the SDK can't talk to the fake exactly as to OpenAI, every gateway test
built on it would be testing the wrong thing.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from .openai_upstream import FakeOpenAI, build_reply, split_chunks

MSGS: list[dict[str, Any]] = [
    {"role": "system", "content": "Answer from context.\n[1] Paris is in France."},
    {"role": "user", "content": "Where is Paris? 巴黎在哪里？"},
]


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def client(fake: FakeOpenAI, timeout: float = 5.0, key: str = "sk-x") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=fake.base_url, api_key=key, max_retries=0, timeout=timeout)


async def wait_for_calls(fake: FakeOpenAI, n: int, timeout: float = 2.0) -> None:
    """Poll until the fake has seen ``n`` requests (no event to await across threads)."""
    deadline = time.monotonic() + timeout
    while len(fake.calls) < n:
        assert time.monotonic() < deadline, "fake never received the request"
        await asyncio.sleep(0.005)


def test_reply_and_chunk_helpers() -> None:
    assert build_reply("m", MSGS) == "[m] Where is Paris? 巴黎在哪里？ [1]"
    assert build_reply("m", [{"role": "user", "content": "x" * 500}]) == "[m] " + "x" * 200
    for text in [
        "",
        "a",
        "  lead and trail  ",
        "supercalifragilistic word",
        "中文没有空格的句子",
    ]:
        assert "".join(split_chunks(text)) == text


@pytest.mark.asyncio
async def test_completion_with_usage(fake: FakeOpenAI) -> None:
    async with client(fake) as c:
        r = await c.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    assert r.id.startswith("chatcmpl-")
    assert r.object == "chat.completion"
    assert r.model == "gpt-4o-mini"
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content == "[gpt-4o-mini] Where is Paris? 巴黎在哪里？ [1]"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage is not None
    prompt_chars = sum(len(m["content"]) for m in MSGS)
    assert r.usage.prompt_tokens == math.ceil(prompt_chars / 4)
    assert r.usage.completion_tokens == math.ceil(len(r.choices[0].message.content) / 4)
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


@pytest.mark.asyncio
async def test_stream_matches_non_stream(fake: FakeOpenAI) -> None:
    async with client(fake) as c:
        full = await c.chat.completions.create(model="gpt-4o", messages=MSGS)
        stream = await c.chat.completions.create(
            model="gpt-4o",
            messages=MSGS,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    assert all(ch.object == "chat.completion.chunk" for ch in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    pieces = [ch.choices[0].delta.content or "" for ch in chunks if ch.choices]
    assert len([p for p in pieces if p]) > 3
    assert "".join(pieces) == full.choices[0].message.content
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == full.usage.total_tokens  # type: ignore[union-attr]


@pytest.mark.asyncio
async def test_error_and_rate_limit(fake: FakeOpenAI) -> None:
    fake.set_behavior("gpt-4o", mode="error")
    fake.set_behavior("gpt-4o-mini", mode="rate_limit", retry_after=2)
    fake.set_behavior("local-llm", mode="error", status=503)
    async with client(fake) as c:
        with pytest.raises(openai.InternalServerError) as err:
            await c.chat.completions.create(model="gpt-4o", messages=MSGS)
        assert err.value.status_code == 500
        assert err.value.body["type"] == "server_error"  # type: ignore[index]
        with pytest.raises(openai.RateLimitError) as rl:
            await c.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
        assert rl.value.response.headers["retry-after"] == "2"
        assert rl.value.code == "rate_limit_exceeded"
        with pytest.raises(openai.InternalServerError) as unavailable:
            await c.chat.completions.create(model="local-llm", messages=MSGS)
        assert unavailable.value.status_code == 503


@pytest.mark.asyncio
async def test_stall_times_out_and_server_stays_usable(fake: FakeOpenAI) -> None:
    fake.set_behavior("slow", mode="stall")
    async with client(fake, timeout=0.3) as c:
        start = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            await c.chat.completions.create(model="slow", messages=MSGS)
        assert time.monotonic() - start < 1.5
        r = await c.chat.completions.create(model="fast", messages=MSGS)
        assert r.choices[0].message.content.startswith("[fast] ")


@pytest.mark.asyncio
async def test_stop_aborts_inflight_stall() -> None:
    fake = FakeOpenAI().start()
    fake.set_behavior(mode="stall")  # default for every model
    async with client(fake, timeout=10) as c:
        pending = asyncio.create_task(c.chat.completions.create(model="m", messages=MSGS))
        await wait_for_calls(fake, 1)
        start = time.monotonic()
        await asyncio.to_thread(fake.stop)
        assert time.monotonic() - start < 1.5
        with pytest.raises(openai.APIConnectionError):
            await pending


@pytest.mark.asyncio
async def test_delay_does_not_block_the_loop(fake: FakeOpenAI) -> None:
    fake.set_behavior(mode="ok", delay=0.2)
    async with client(fake) as c:
        start = time.monotonic()
        await asyncio.gather(*(c.chat.completions.create(model=f"m{i}", messages=MSGS) for i in range(3)))
        elapsed = time.monotonic() - start
    assert 0.2 <= elapsed < 0.55  # concurrent, not 3 x 0.2


@pytest.mark.asyncio
async def test_malformed(fake: FakeOpenAI) -> None:
    async with client(fake) as c:
        # "shape": valid JSON, wrong shape -> the SDK does NOT validate; fields are None.
        fake.set_behavior("m", mode="malformed")
        r = await c.chat.completions.create(model="m", messages=MSGS)
        assert r.choices is None
        assert r.model_extra == {"nope": True}
        # "truncated": the SDK lets json.JSONDecodeError (a ValueError) escape raw.
        fake.set_behavior("m", mode="malformed", malformed="truncated")
        with pytest.raises(json.JSONDecodeError):
            await c.chat.completions.create(model="m", messages=MSGS)
        stream = await c.chat.completions.create(model="m", messages=MSGS, stream=True)
        with pytest.raises(json.JSONDecodeError):
            async for _ in stream:
                pass


@pytest.mark.asyncio
async def test_cut_stream(fake: FakeOpenAI) -> None:
    fake.set_behavior("m", mode="cut_stream", cut_after=2, reply="one two three four five")
    received: list[str] = []
    async with client(fake) as c:
        stream = await c.chat.completions.create(model="m", messages=MSGS, stream=True)
        with pytest.raises(openai.APIConnectionError):
            async for chunk in stream:
                received.append(chunk.choices[0].delta.content or "")
        assert "".join(received) == "one two "
        with pytest.raises(openai.InternalServerError):  # non-stream: plain error
            await c.chat.completions.create(model="m", messages=MSGS)


@pytest.mark.asyncio
async def test_times_then_ok_and_default(fake: FakeOpenAI) -> None:
    fake.set_behavior("gpt-4o", mode="error", status=502, times=2)
    fake.set_behavior(mode="rate_limit")  # every other model
    async with client(fake) as c:
        for _ in range(2):
            with pytest.raises(openai.InternalServerError):
                await c.chat.completions.create(model="gpt-4o", messages=MSGS)
        ok = await c.chat.completions.create(model="gpt-4o", messages=MSGS)
        assert ok.choices[0].message.content.startswith("[gpt-4o] ")
        with pytest.raises(openai.RateLimitError):
            await c.chat.completions.create(model="other", messages=MSGS)
    assert len(fake.calls_for("gpt-4o")) == 3


@pytest.mark.asyncio
async def test_calls_recorded_and_reset(fake: FakeOpenAI) -> None:
    fake.set_behavior("gpt-4o", reply="fixed")
    async with client(fake, key="sk-abc") as c:
        r = await c.chat.completions.create(model="gpt-4o", messages=MSGS, temperature=0)
    assert r.choices[0].message.content == "fixed"
    (call,) = fake.calls
    assert (call.method, call.path, call.model) == (
        "POST",
        "/v1/chat/completions",
        "gpt-4o",
    )
    assert call.json is not None and call.json["messages"] == MSGS
    assert call.json["temperature"] == 0
    assert call.headers["authorization"] == "Bearer sk-abc"
    assert fake.calls_for("gpt-4o") == [call] and fake.calls_for("nope") == []
    fake.reset()
    assert fake.calls == []
    async with client(fake) as c:
        r = await c.chat.completions.create(model="gpt-4o", messages=MSGS)
    assert r.choices[0].message.content != "fixed"


@pytest.mark.asyncio
async def test_api_key_enforced() -> None:
    with FakeOpenAI(api_key="sk-right") as fake:
        async with client(fake, key="sk-wrong") as c:
            with pytest.raises(openai.AuthenticationError) as err:
                await c.models.list()
            assert err.value.code == "invalid_api_key"
        async with client(fake, key="sk-right") as c:
            models = await c.models.list()
    assert {"gpt-4o-mini", "gpt-4o", "local-llm"} <= {m.id for m in models.data}


@pytest.mark.asyncio
async def test_embeddings(fake: FakeOpenAI) -> None:
    async with client(fake) as c:
        # The SDK asks for base64 by default and decodes it; the fake must honour it.
        a = await c.embeddings.create(model="emb", input=["hello", "world", "hello"])
        b = await c.embeddings.create(model="emb", input="hello", dimensions=16, encoding_format="float")
    vecs = [d.embedding for d in a.data]
    assert [d.index for d in a.data] == [0, 1, 2]
    assert all(len(v) == 64 for v in vecs)
    assert vecs[0] == pytest.approx(vecs[2]) and vecs[0] != pytest.approx(vecs[1])
    assert math.fsum(x * x for x in vecs[1]) == pytest.approx(1.0, abs=1e-5)
    assert len(b.data[0].embedding) == 16
    assert a.usage.prompt_tokens == a.usage.total_tokens == 6  # ceil(5/4) * 3


def test_sync_raw_http_models_404_and_validation(fake: FakeOpenAI) -> None:
    fake.set_behavior("custom-model", mode="error")

    def request(path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(fake.base_url.removesuffix("/v1") + path, data=data)
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    status, models = request("/v1/models")
    assert status == 200 and models["object"] == "list"
    assert "custom-model" in {m["id"] for m in models["data"]}
    status, err = request("/v1/nope", {})
    assert status == 404 and set(err["error"]) == {"message", "type", "param", "code"}
    status, err = request("/v1/chat/completions", {"model": "m", "messages": []})
    assert status == 400 and err["error"]["param"] == "messages"
    status, err = request("/v1/chat/completions", {"messages": [{"role": "user"}]})
    assert status == 400 and err["error"]["param"] == "model"


@pytest.mark.asyncio
async def test_tool_calls_and_structured_replies(fake: FakeOpenAI) -> None:
    fake.set_behavior("gpt-4o-mini", tool_call=True)
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object",
                                                                         "properties": {"n": {"type": "integer"}}}}}  # fmt: skip
    async with client(fake) as c:
        called = await c.chat.completions.create(model="gpt-4o-mini", messages=MSGS, tools=[tool])
        (call,) = called.choices[0].message.tool_calls or []
        assert called.choices[0].finish_reason == "tool_calls" and call.function.arguments == '{"n": 1}'
        chunks = [ch async for ch in await c.chat.completions.create(model="gpt-4o-mini", messages=MSGS,
                                                                     tools=[tool], stream=True)]  # fmt: skip
        pieces = [d.function.arguments for ch in chunks for d in (ch.choices[0].delta.tool_calls or [])
                  if ch.choices and d.function and d.function.arguments]  # fmt: skip
        assert "".join(pieces) == '{"n": 1}'
        result = [*MSGS, called.choices[0].message.model_dump(exclude_none=True),
                  {"role": "tool", "tool_call_id": call.id, "content": "42"}]  # fmt: skip
        answered = await c.chat.completions.create(model="gpt-4o-mini", messages=result, tools=[tool])
        assert answered.choices[0].message.content == "[gpt-4o-mini] tool said: 42"
        fmt = {"type": "json_schema", "json_schema": {"name": "A", "schema": tool["function"]["parameters"]}}
        structured = await c.chat.completions.create(model="gpt-4o", messages=MSGS, response_format=fmt)  # type: ignore[arg-type]
        assert json.loads(structured.choices[0].message.content or "") == {"n": 1}


@pytest.mark.asyncio
async def test_the_responses_api_as_the_sdk_reads_it(fake: FakeOpenAI) -> None:
    async with client(fake) as c:
        reply = await c.responses.create(model="gpt-4o", input="Where is Paris?", instructions="[1] Paris.")
        assert reply.output_text == "[gpt-4o] Where is Paris? [1]" and reply.usage and reply.usage.input_tokens > 0
        async with c.responses.stream(model="gpt-4o", input="Where is Paris?") as stream:
            deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
            final = await stream.get_final_response()
    assert "".join(deltas) == final.output_text == "[gpt-4o] Where is Paris?"
    assert [c.path for c in fake.calls] == ["/v1/responses", "/v1/responses"]
