"""Tracing: OTLP/HTTP spans to a fake collector, one span tree per question, nothing personal in them.

The hub under test gets the OpenTelemetry SDK's own variables through its settings (each Hub
owns its TracerProvider), so hubs of other tests stay untraced.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core import logs
from core.tracing import Tracing
from tests.conftest import ROOT, HubServer, make_settings
from tests.fakes.line_api import FakeLineAPI
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.otlp_collector import ExportedSpan, FakeCollector
from tests.test_line_adapter import SECRET, TOKEN, deliver, new_user, source, text_event

# Words that must never reach a span: the questions asked, the answer given, keys, user ids.
QUESTION = "How do I claim travel expenses for my trip to Osaka?"
STREAM_QUESTION = "How many days of annual leave do I get in Nagoya?"
V1_QUESTION = "Which form do I need for parental leave in Taipei?"
LINE_QUESTION = "How do I connect to the VPN with FortiClient from Kyoto?"
REPLY = "Claims go through the expense portal within 30 days, receipts attached [1]."
UPSTREAM_KEY = "sk-upstream-secret-for-tracing"
SERVER = 2  # SpanKind numbers in OTLP
PRODUCER, CONSUMER = 4, 5


@pytest.fixture(scope="module")
def collector() -> Iterator[FakeCollector]:
    with FakeCollector() as fake:
        yield fake


@pytest.fixture(scope="module")
def openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        fake.set_behavior(None, reply=REPLY)
        yield fake


def otel_env(collector: FakeCollector) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
        "OTEL_SERVICE_NAME": "askhub-under-test",
        "OTEL_BSP_SCHEDULE_DELAY": "50",  # export within 50 ms (tests also flush)
    }


@pytest.fixture(scope="module")
def traced_hub(
    tmp_path_factory: pytest.TempPathFactory, sample_index: Path, collector: FakeCollector, openai: FakeOpenAI
) -> Iterator[HubServer]:
    tmp = tmp_path_factory.mktemp("traced")
    settings = make_settings(tmp, INDEX_DIR=str(sample_index), OPENAI_API_KEY=UPSTREAM_KEY,
                             OPENAI_BASE_URL=openai.base_url, **otel_env(collector))  # fmt: skip
    with HubServer(settings) as server:
        yield server


def trace_of(response: httpx.Response) -> str:
    """The trace id in the response's ``traceparent`` (00-<trace>-<span>-<flags>)."""
    version, trace_id, span_id, flags = response.headers["traceparent"].split("-")
    assert version == "00" and len(trace_id) == 32 and len(span_id) == 16 and int(flags, 16) & 1  # sampled
    return trace_id


def wait_for_trace(hub: HubServer, collector: FakeCollector, trace_id: str, *names: str) -> list[ExportedSpan]:
    """The trace's spans once every one of ``names`` has arrived."""

    def complete(spans: list[ExportedSpan]) -> bool:
        return set(names) <= {s.name for s in spans if s.trace_id == trace_id}

    collector.wait_for(complete, flush=hub.hub.tracing.flush)
    return collector.trace(trace_id)


def by_name(spans: list[ExportedSpan]) -> dict[str, ExportedSpan]:
    return {s.name: s for s in spans}


def all_values(spans: list[ExportedSpan]) -> str:
    """Every attribute value of every span (and its resource), as one string to search."""
    return json.dumps([[s.name, s.attributes, s.resource, s.events] for s in spans], ensure_ascii=False)


def assert_nothing_personal(spans: list[ExportedSpan], *secrets: str) -> None:
    text = all_values(spans)
    for secret in secrets:
        assert secret not in text, f"{secret!r} reached a span"
        # Nor any distinctive word of it (a question cut short, a redacted copy).
        for word in (w.strip("?.,[]") for w in secret.split()):
            if len(word) >= 6:
                assert word not in text, f"{word!r} of {secret!r} reached a span"


def test_ask_is_one_span_tree_with_genai_attributes(traced_hub: HubServer, collector: FakeCollector) -> None:
    response = httpx.post(f"{traced_hub.url}/ask", json={"question": QUESTION}, timeout=10)
    assert response.status_code == 200, response.text
    trace_id = trace_of(response)
    assert response.headers["x-request-id"]  # still the request id, not the trace

    spans = wait_for_trace(traced_hub, collector, trace_id, "POST /ask", "admission", "cache.lookup", "retrieval",
                           "chat gpt-4o-mini", "cache.store")  # fmt: skip
    named = by_name(spans)
    root = named["POST /ask"]
    assert root.parent_id == "" and root.kind == SERVER
    assert root.attributes["http.route"] == "/ask" and root.attributes["http.response.status_code"] == 200
    assert root.attributes["askhub.request_id"] == response.headers["x-request-id"]
    assert root.attributes["askhub.outcome"] == "answered" and root.attributes["askhub.cached"] is False
    assert root.resource["service.name"] == "askhub-under-test"
    for name in ("admission", "cache.lookup", "retrieval", "chat gpt-4o-mini", "cache.store"):
        assert named[name].parent_id == root.span_id, name  # children of the request
    assert named["cache.lookup"].attributes["askhub.cache.hit"] is False
    assert named["retrieval"].attributes["askhub.hits"] >= 1

    model = named["chat gpt-4o-mini"].attributes
    answer = response.json()
    assert model["gen_ai.operation.name"] == "chat" and model["gen_ai.system"] == "openai"
    assert model["gen_ai.request.model"] == "gpt-4o-mini" and model["gen_ai.response.model"] == "gpt-4o-mini"
    assert model["gen_ai.usage.input_tokens"] == answer["usage"]["prompt_tokens"] > 0
    assert model["gen_ai.usage.output_tokens"] == answer["usage"]["completion_tokens"] > 0
    assert model["gen_ai.response.finish_reasons"] == ["stop"]
    assert_nothing_personal(spans, QUESTION, REPLY, UPSTREAM_KEY)

    # The query log line leads to the trace.
    logs.flush()
    lines = [json.loads(line) for line in Path(str(traced_hub.settings.log_file)).read_text().splitlines()]
    [line] = [ln for ln in lines if ln.get("logger") == "askhub.query" and ln["request_id"] == answer["request_id"]]
    assert line["trace_id"] == trace_id

    # The same question again: a cache hit, with no retrieval and no model call in its trace.
    again = httpx.post(f"{traced_hub.url}/ask", json={"question": QUESTION}, timeout=10)
    cached = wait_for_trace(traced_hub, collector, trace_of(again), "POST /ask", "cache.lookup")
    assert by_name(cached)["cache.lookup"].attributes["askhub.cache.hit"] is True
    assert by_name(cached)["POST /ask"].attributes["askhub.cached"] is True
    assert not {"retrieval", "chat gpt-4o-mini"} & {s.name for s in cached}


def test_a_streamed_answer_is_one_tree_too(traced_hub: HubServer, collector: FakeCollector) -> None:
    body = {"question": STREAM_QUESTION, "stream": True}
    with httpx.stream("POST", f"{traced_hub.url}/ask", json=body, timeout=10) as response:
        assert response.status_code == 200
        events = "".join(response.iter_text())
    assert "event: done" in events
    spans = wait_for_trace(traced_hub, collector, trace_of(response), "POST /ask", "retrieval", "chat gpt-4o-mini")
    named = by_name(spans)
    root = named["POST /ask"]
    assert {s.parent_id for s in spans if s is not root} == {root.span_id}
    assert named["chat gpt-4o-mini"].attributes["gen_ai.request.model"] == "gpt-4o-mini"
    # The call's span ends at the first piece; the usage, known at the end, goes on the question's span.
    assert root.attributes["gen_ai.usage.output_tokens"] > 0
    assert_nothing_personal(spans, STREAM_QUESTION, REPLY, UPSTREAM_KEY)


def test_v1_continues_the_callers_trace(traced_hub: HubServer, collector: FakeCollector) -> None:
    caller_trace, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    response = httpx.post(
        f"{traced_hub.url}/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": V1_QUESTION}]},
        headers={"traceparent": f"00-{caller_trace}-{caller_span}-01"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert trace_of(response) == caller_trace

    spans = wait_for_trace(traced_hub, collector, caller_trace, "POST /v1/chat/completions", "chat gpt-4o-mini")
    named = by_name(spans)
    assert named["POST /v1/chat/completions"].parent_id == caller_span
    model = named["chat gpt-4o-mini"]
    assert model.parent_id == named["POST /v1/chat/completions"].span_id
    usage = response.json()["usage"]
    assert model.attributes["gen_ai.usage.input_tokens"] == usage["prompt_tokens"]
    assert model.attributes["gen_ai.usage.output_tokens"] == usage["completion_tokens"]
    assert model.attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert_nothing_personal(spans, V1_QUESTION, REPLY, UPSTREAM_KEY)


def test_v1_responses_is_one_tree_with_genai_attributes(traced_hub: HubServer, collector: FakeCollector) -> None:
    response = httpx.post(f"{traced_hub.url}/v1/responses", json={"model": "gpt-4o-mini", "input": V1_QUESTION},
                          timeout=10)  # fmt: skip
    assert response.status_code == 200, response.text
    spans = wait_for_trace(traced_hub, collector, trace_of(response), "POST /v1/responses", "chat gpt-4o-mini")
    named = by_name(spans)
    model = named["chat gpt-4o-mini"]
    assert model.parent_id == named["POST /v1/responses"].span_id
    usage = response.json()["usage"]
    assert model.attributes["gen_ai.usage.input_tokens"] == usage["input_tokens"]
    assert model.attributes["gen_ai.usage.output_tokens"] == usage["output_tokens"]
    assert_nothing_personal(spans, V1_QUESTION, REPLY, UPSTREAM_KEY)


@pytest.mark.parametrize("queue", ["memory", "redis"])
def test_a_queued_line_event_keeps_its_trace(
    queue: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sample_index: Path,
    collector: FakeCollector,
) -> None:
    redis = request.getfixturevalue("redis_db") if queue == "redis" else ""
    with FakeLineAPI(access_token=TOKEN) as line:
        settings = make_settings(tmp_path, INDEX_DIR=str(sample_index), LINE_CHANNEL_SECRET=SECRET,
                                 LINE_CHANNEL_ACCESS_TOKEN=TOKEN, LINE_API_URL=line.url, REDIS_URL=redis,
                                 **otel_env(collector))  # fmt: skip
        with HubServer(settings) as hub:
            user = new_user()
            response = deliver(hub, [text_event(line, LINE_QUESTION, source(user))])
            [reply] = line.replies()
            assert reply.status == 200
            trace_id = trace_of(response)
            spans = wait_for_trace(hub, collector, trace_id, "POST /line/webhook", "accept line", "job line.event",
                                   "answer line", "retrieval")  # fmt: skip
    named = by_name(spans)
    webhook, accept, job, answer = (named[n] for n in ("POST /line/webhook", "accept line", "job line.event",
                                                       "answer line"))  # fmt: skip
    assert accept.parent_id == webhook.span_id and accept.kind == PRODUCER
    assert job.parent_id == accept.span_id and job.kind == CONSUMER  # across the queue
    assert answer.parent_id == job.span_id and "shown" in answer.events
    assert named["retrieval"].parent_id == answer.span_id
    assert answer.attributes["askhub.platform"] == "line" and answer.attributes["askhub.outcome"] == "answered"
    reply_text = reply.json["messages"][0]["text"]
    assert_nothing_personal(spans, LINE_QUESTION, user, reply_text[:80], SECRET, TOKEN)


def test_unset_endpoint_means_no_provider_and_no_header(tmp_path: Path, sample_index: Path) -> None:
    assert Tracing({}).provider is None
    assert Tracing({"OTEL_SERVICE_NAME": "x"}).provider is None  # a name alone exports nothing
    assert Tracing({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_SDK_DISABLED": "true"}).provider is None
    with HubServer(make_settings(tmp_path, INDEX_DIR=str(sample_index))) as hub:
        response = httpx.post(f"{hub.url}/ask", json={"question": QUESTION}, timeout=10)
        assert response.status_code == 200
        assert "traceparent" not in response.headers
        assert hub.hub.tracing.provider is None
    logs.flush()
    line = [json.loads(ln) for ln in Path(str(hub.settings.log_file)).read_text().splitlines() if "askhub.query" in ln]
    assert line and "trace_id" not in line[-1]


def test_untraced_hub_never_loads_the_sdk(tmp_path: Path, sample_index: Path) -> None:
    """With no endpoint, building and serving the app imports neither the SDK nor an exporter."""
    script = f"""
import sys
import httpx
from pathlib import Path
from tests.conftest import HubServer, make_settings
settings = make_settings(Path({str(tmp_path)!r}), INDEX_DIR={str(sample_index)!r})
with HubServer(settings) as hub:
    assert httpx.post(hub.url + "/ask", json={{"question": "How do I claim travel expenses?"}}).status_code == 200
loaded = sorted(m for m in sys.modules if m.startswith(("opentelemetry.sdk", "opentelemetry.exporter")))
print(loaded)
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def _spans_of(collector: FakeCollector, **attrs: Any) -> list[ExportedSpan]:
    return [s for s in collector.spans if all(s.attributes.get(k) == v for k, v in attrs.items())]


def test_no_question_text_in_any_exported_span(traced_hub: HubServer, collector: FakeCollector) -> None:
    """Whatever the earlier tests exported (asks, /v1, LINE events), and a refused question too."""
    refused = "Please tell me about " + "salary " * 2000
    response = httpx.post(f"{traced_hub.url}/ask", json={"question": refused}, timeout=10)
    assert response.status_code == 400
    wait_for_trace(traced_hub, collector, trace_of(response), "POST /ask")
    assert _spans_of(collector, **{"http.response.status_code": 400})
    secrets = (QUESTION, STREAM_QUESTION, V1_QUESTION, LINE_QUESTION, REPLY, UPSTREAM_KEY, "salary")
    assert_nothing_personal(collector.spans, *secrets)
