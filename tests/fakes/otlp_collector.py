"""A fake OpenTelemetry collector: OTLP/HTTP on loopback, as Jaeger, Tempo or Langfuse take it.

``POST /v1/traces`` bodies are decoded as the protobuf ``ExportTraceServiceRequest`` (the
``opentelemetry-proto`` package, the same definitions collectors use) and kept as plain
``ExportedSpan`` records; tests wait for the spans they expect with a bounded poll.
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from .server import LoopbackServer

__all__ = ["ExportedSpan", "FakeCollector"]

PROTOBUF = "application/x-protobuf"


@dataclass(frozen=True)
class ExportedSpan:
    name: str
    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_id: str  # "" for a root
    kind: int  # the protobuf's SpanKind number (2 server, 3 client, 4 producer, 5 consumer)
    attributes: dict[str, Any]
    resource: dict[str, Any]
    events: list[str] = field(default_factory=list)
    status: int = 0  # 0 unset, 1 ok, 2 error


def _value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which == "array_value":
        return [_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, which) if which else None


class FakeCollector(LoopbackServer):
    """``with FakeCollector() as otlp:`` then set ``OTEL_EXPORTER_OTLP_ENDPOINT=otlp.url``."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._spans: list[ExportedSpan] = []
        self.requests = 0
        self.content_types: set[str] = set()

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/traces", self._traces)
        return app

    async def _traces(self, request: web.Request) -> web.Response:
        body = await request.read()
        encoding = request.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        if request.content_type != PROTOBUF:
            return web.Response(status=415, text="OTLP/HTTP protobuf only")
        export = ExportTraceServiceRequest()
        export.ParseFromString(body)
        spans = []
        for resource_spans in export.resource_spans:
            resource = {kv.key: _value(kv.value) for kv in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans.append(
                        ExportedSpan(
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            kind=span.kind,
                            attributes={kv.key: _value(kv.value) for kv in span.attributes},
                            resource=resource,
                            events=[event.name for event in span.events],
                            status=span.status.code,
                        )
                    )
        with self._lock:
            self.requests += 1
            self.content_types.add(request.content_type)
            self._spans.extend(spans)
        return web.Response(body=ExportTraceServiceResponse().SerializeToString(), content_type=PROTOBUF)

    @property
    def spans(self) -> list[ExportedSpan]:
        with self._lock:
            return list(self._spans)

    def reset(self) -> None:
        with self._lock:
            self._spans.clear()
            self.requests = 0

    def trace(self, trace_id: str) -> list[ExportedSpan]:
        return [s for s in self.spans if s.trace_id == trace_id]

    def wait_for(
        self, found: Callable[[list[ExportedSpan]], bool], timeout: float = 15.0, flush: Callable[[], Any] | None = None
    ) -> list[ExportedSpan]:
        """The spans received, once ``found(spans)`` holds (polled; ``flush`` asks the exporter to
        send what it holds). Fails after ``timeout`` seconds with what did arrive."""
        deadline = time.monotonic() + timeout
        while True:
            if flush is not None:
                flush()
            spans = self.spans
            if found(spans):
                return spans
            if time.monotonic() >= deadline:
                names = sorted({s.name for s in spans})
                raise AssertionError(f"expected spans did not arrive in {timeout} s; got {len(spans)}: {names}")
            time.sleep(0.05)
