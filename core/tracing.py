"""Traces over OTLP/HTTP when the OpenTelemetry SDK's own variables ask for them; nothing otherwise.

``Tracing`` is owned by the Hub: with ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``)
set it builds its own TracerProvider (never the global one) with a batch processor and the
OTLP/HTTP exporter, both configured by the SDK from the standard ``OTEL_*`` variables
(service name, sampler, headers, timeout, batch sizes). Unset: no SDK import, no provider,
no exporter, and every hook below is one context-variable read.

Root spans (an HTTP request, a queued job, an accepted platform event) put their hub's
tracer in a context variable; ``span()`` anywhere below them opens a child span with it,
and is a shared no-op outside a traced request. Spans carry routing facts only (tenant,
route, model, status, cached, collection names, token counts) — never a question, an
answer, a key or a user id: callers pass attributes explicitly and nothing is captured
automatically.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
# The standard variables the hub documents (the SDK reads every other OTEL_* variable too).
VARIABLES = (
    *ENDPOINT_VARIABLES,
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_SDK_DISABLED",
)
SERVICE_NAME = "askhub"

_tracer: ContextVar[Tracer | None] = ContextVar("askhub_tracer", default=None)
_environ_lock = threading.Lock()


class _NoSpan:
    """What ``span()`` yields when tracing is off: accepts attributes, keeps nothing."""

    __slots__ = ()

    def __enter__(self) -> _NoSpan:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def set_attribute(self, key: str, value: Any) -> None:
        return None

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        return None

    def add_event(self, name: str, attributes: Mapping[str, Any] | None = None) -> None:
        return None


NO_SPAN = _NoSpan()


def wanted(env: Mapping[str, str]) -> bool:
    """An OTLP endpoint is set and the SDK is not disabled."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(env.get(name, "").strip() for name in ENDPOINT_VARIABLES)


class Tracing:
    """The hub's tracer provider, when ``env`` (the OTEL_* variables) asks for one."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.provider: TracerProvider | None = None
        self.tracer: Tracer | None = None
        if wanted(env):
            self.provider = _provider(env)
            self.tracer = self.provider.get_tracer("askhub")

    @property
    def on(self) -> bool:
        return self.tracer is not None

    @contextlib.contextmanager
    def root(
        self, name: str, *, kind: str = "internal", carrier: Mapping[str, str] | None = None, **attrs: Any
    ) -> Iterator[Span | _NoSpan]:
        """A span that starts this hub's part of a trace: a child of the W3C context in
        ``carrier`` (request headers, a job's), else of the current span, else a new trace."""
        if self.tracer is None:
            yield NO_SPAN
            return
        from opentelemetry import propagate, trace

        parent = propagate.extract(carrier) if carrier else None
        token = _tracer.set(self.tracer)
        try:
            with _opened(
                self.tracer, name, attrs, context=parent, kind=getattr(trace.SpanKind, kind.upper())
            ) as current:
                yield current
        finally:
            _tracer.reset(token)

    def flush(self, timeout_sec: float = 5.0) -> bool:
        """Export what has ended so far (tests, shutdown)."""
        return self.provider is None or self.provider.force_flush(int(timeout_sec * 1000))

    def shutdown(self) -> None:
        """Export what is left and stop the exporter's thread (blocking: run it off the loop)."""
        if self.provider is not None:
            self.provider.shutdown()
            self.provider = None
            self.tracer = None


def span(name: str, **attrs: Any) -> Any:
    """A child span of the current traced request; a shared no-op when there is none."""
    tracer = _tracer.get()
    if tracer is None:
        return NO_SPAN
    return _opened(tracer, name, attrs)


def active() -> bool:
    """This request is traced (callers skip building attributes otherwise)."""
    return _tracer.get() is not None


def model_call(operation: str, system: str, model: str, logical: str, retry: int) -> Any:
    """The span of one model call, named and attributed as OpenTelemetry's GenAI conventions say."""
    if _tracer.get() is None:
        return NO_SPAN
    attrs = {"gen_ai.operation.name": operation, "gen_ai.system": system, "gen_ai.request.model": model,
             "askhub.model": logical, "askhub.retry": retry}  # fmt: skip
    return span(f"{operation} {model}", **attrs)


def model_reply(model: str | None, input_tokens: int | None, output_tokens: int | None, finish: list[str]) -> None:
    """A model's reply on the current span (the call's): response model, token usage, finish reasons."""
    reply = {"gen_ai.response.model": model or None, "gen_ai.usage.input_tokens": input_tokens,
             "gen_ai.usage.output_tokens": output_tokens, "gen_ai.response.finish_reasons": finish or None}  # fmt: skip
    annotate(**reply)


def annotate(**attrs: Any) -> None:
    """Attributes on the current span (a no-op when not tracing)."""
    if _tracer.get() is None:
        return
    from opentelemetry import trace

    trace.get_current_span().set_attributes(_clean(attrs))


def carrier() -> dict[str, str]:
    """The current W3C trace context, to travel with a queued job (empty when not tracing)."""
    if _tracer.get() is None:
        return {}
    from opentelemetry import propagate

    out: dict[str, str] = {}
    propagate.inject(out)
    return out


def trace_id() -> str | None:
    """The current trace's id (32 hex digits), for the query log line; None when not traced or not sampled."""
    if _tracer.get() is None:
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid and context.trace_flags.sampled else None


def traceparent(current: Span | _NoSpan) -> str | None:
    """The W3C ``traceparent`` of a recording span (a response header leads to its trace)."""
    if current is NO_SPAN:
        return None
    context = current.get_span_context()  # type: ignore[union-attr]
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


@contextlib.contextmanager
def _opened(tracer: Tracer, name: str, attrs: Mapping[str, Any], **options: Any) -> Iterator[Span]:
    """A current span whose failure is recorded by its type only: an exception's message or
    traceback may quote the request, so neither reaches a span (the SDK would record both)."""
    from opentelemetry.trace import StatusCode

    with tracer.start_as_current_span(
        name, attributes=_clean(attrs), record_exception=False, set_status_on_exception=False, **options
    ) as current:
        try:
            yield current
        except BaseException as exc:
            # A failure's kind or type name (fixed words, never its message).
            kind = getattr(exc, "kind", None) or getattr(exc, "type", None)
            current.set_attribute("error.type", kind if isinstance(kind, str) else type(exc).__name__)
            if isinstance(exc, Exception):
                current.set_status(StatusCode.ERROR)
            raise


def _clean(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Attributes as OpenTelemetry takes them: unset ones left out, sets as sorted lists."""
    return {k: sorted(v) if isinstance(v, (set, frozenset)) else v for k, v in attrs.items() if v is not None}


def _provider(env: Mapping[str, str]) -> TracerProvider:
    """A provider and exporter configured by the SDK itself from ``env``'s OTEL_* variables."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    with _otel_environ(env):
        named = env.get("OTEL_SERVICE_NAME") or "service.name=" in env.get("OTEL_RESOURCE_ATTRIBUTES", "")
        resource = Resource.create({} if named else {"service.name": SERVICE_NAME})
        provider = TracerProvider(resource=resource, shutdown_on_exit=False)  # the sampler from OTEL_TRACES_SAMPLER
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


@contextlib.contextmanager
def _otel_environ(env: Mapping[str, str]) -> Iterator[None]:
    """The SDK reads os.environ as it builds its parts: show it this hub's OTEL_* variables
    (the same ones in a deployment; a test's hub has its own), and put the others back."""
    with _environ_lock:
        saved = {k: v for k, v in os.environ.items() if k.startswith("OTEL_")}
        for name in saved:
            del os.environ[name]
        os.environ.update({k: v for k, v in env.items() if k.startswith("OTEL_")})
        try:
            yield
        finally:
            for name in [k for k in os.environ if k.startswith("OTEL_")]:
                del os.environ[name]
            os.environ.update(saved)
