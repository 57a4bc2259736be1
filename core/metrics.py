"""Prometheus metrics. Label values come from bounded sets only (route templates, model
and tenant names from config, fixed outcome words) — never user ids, questions or keys."""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

REGISTRY = CollectorRegistry(auto_describe=True)
# With several worker processes (uvicorn --workers N), set PROMETHEUS_MULTIPROC_DIR to an
# empty folder: every process writes its values there and /metrics adds them up.
MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def exposition() -> bytes:
    """The text of /metrics: this process's registry, or every worker's values combined."""
    if not MULTIPROCESS:
        return generate_latest(REGISTRY)
    combined = CollectorRegistry()
    multiprocess.MultiProcessCollector(combined)
    return generate_latest(combined)


LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0)

# The original gateway's three metrics (contract names and labels).
REQUESTS = Counter(
    "gateway_requests_total",
    "HTTP requests by route template, method and status",
    ["route", "method", "status"],
    registry=REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "gateway_request_duration_seconds",
    "HTTP request duration",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
ERRORS = Counter(
    "gateway_errors_total",
    "HTTP error responses by route and error type",
    ["route", "type"],
    registry=REGISTRY,
)

# The core's own.
ASKS = Counter(
    "hub_asks_total",
    "Questions answered by the core, by platform and outcome",
    ["platform", "outcome"],
    registry=REGISTRY,
)
LLM_CALLS = Counter("hub_llm_calls_total", "Model calls by model and outcome", ["model", "outcome"], registry=REGISTRY)
LLM_SECONDS = Histogram(
    "hub_llm_latency_seconds", "Model call latency", ["model"], buckets=LATENCY_BUCKETS, registry=REGISTRY
)
LLM_TOKENS = Counter(
    "hub_llm_tokens_total",
    "Tokens by model and kind (prompt, completion)",
    ["model", "kind"],
    registry=REGISTRY,
)
COST = Counter(
    "hub_cost_usd_total",
    "Model cost in US dollars by tenant and model",
    ["tenant", "model"],
    registry=REGISTRY,
)
SOURCES = Counter(
    "hub_sources_total",
    "Passages an answer was grounded on, by knowledge-base collection (configured names only)",
    ["collection"],
    registry=REGISTRY,
)
RETRIEVAL_SECONDS = Histogram(
    "hub_retrieval_seconds",
    "Knowledge-base search latency",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1),
    registry=REGISTRY,
)
EMBEDDER_FALLBACK = Gauge(
    "hub_embedder_fallback", "1 when the configured semantic embedder could not load and hash stands in",
    registry=REGISTRY, multiprocess_mode="max",
)  # fmt: skip
EMBEDDINGS_WITHHELD = Counter(
    "hub_embeddings_withheld_total",
    "Question texts a cloud embedder was not sent: the question holds personal data (searched without the dense side)",
    registry=REGISTRY,
)
INDEX_CHUNKS = Gauge("hub_index_chunks", "Chunks in the loaded index", registry=REGISTRY, multiprocess_mode="max")
INDEX_VERSION = Gauge(
    "hub_index_version", "Version number of the loaded index", registry=REGISTRY, multiprocess_mode="max"
)
RATE_LIMITED = Counter(
    "hub_rate_limit_rejections_total",
    "Requests refused by a limit, by tenant and limit",
    ["tenant", "limit"],
    registry=REGISTRY,
)
BACKEND_ERRORS = Counter(
    "hub_backend_errors_total",
    "Shared-state backend failures by the part that saw them",
    ["part"],
    registry=REGISTRY,
)
BACKEND_UP = Gauge(
    "hub_backend_up", "1 while the shared-state backend answers, else 0", registry=REGISTRY, multiprocess_mode="livemin"
)
CACHE = Counter(
    "hub_cache_requests_total",
    "Answer cache lookups by kind and result",
    ["kind", "result"],
    registry=REGISTRY,
)
FEEDBACK = Counter(
    "hub_feedback_total", "Answer ratings by platform and rating", ["platform", "rating"], registry=REGISTRY
)
ADAPTER_EVENTS = Counter(
    "hub_adapter_events_total",
    "Platform events by platform and outcome (answered, duplicate, ignored, failed)",
    ["platform", "outcome"],
    registry=REGISTRY,
)
CONFIG_RELOADS = Counter(
    "hub_config_reloads_total",
    "Configuration file changes by outcome: applied, or refused (the running configuration stays)",
    ["outcome"],
    registry=REGISTRY,
)
LOG_WRITE_FAILURES = Counter(
    "hub_log_write_failures_total",
    "Log batches the writer could not write, by target (stream, file): lost lines, not silence",
    ["target"],
    registry=REGISTRY,
)
ADAPTER_ACK_SECONDS = Histogram(
    "hub_adapter_ack_seconds",
    "Time to acknowledge a platform event",
    ["platform"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0),
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "hub_queue_depth", "Accepted events waiting to be answered", registry=REGISTRY, multiprocess_mode="livesum"
)
QUEUE_AGE = Gauge(
    "hub_queue_oldest_age_seconds", "Age of the oldest waiting event", registry=REGISTRY, multiprocess_mode="livemax"
)
BREAKER_STATE = Gauge(
    "hub_breaker_state",
    "Circuit breaker per model: 0 closed, 1 half-open, 2 open",
    ["model"],
    registry=REGISTRY,
    multiprocess_mode="livemax",  # the worst state any live worker sees
)
PII_ROUTED = Counter(
    "hub_pii_routed_total",
    "Questions with personal data, routed to a local model, by tenant",
    ["tenant"],
    registry=REGISTRY,
)
LLM_RETRIES = Counter(
    "hub_llm_retries_total",
    "Retried model calls by model and failure kind",
    ["model", "kind"],
    registry=REGISTRY,
)
LLM_FALLBACKS = Counter(
    "hub_llm_fallbacks_total",
    "Answers that came from a later model of the route",
    ["route"],
    registry=REGISTRY,
)
TENANT_TOKENS = Counter(
    "hub_tenant_tokens_total", "Model tokens by tenant and model", ["tenant", "model"], registry=REGISTRY
)
KEYS_EXPIRING = Counter(
    "hub_key_expiring_uses_total",
    "Requests made with a client key within 14 days of its expiry, by client",
    ["client"],
    registry=REGISTRY,
)
QUERY_REWRITES = Counter(
    "hub_query_rewrites_total",
    "Question rewrites before retrieval by outcome: rewritten, not_needed, off_topic, no_model, unavailable, "
    "failed, timeout",
    ["outcome"],
    registry=REGISTRY,
)
VERIFIED_SERVED = Counter(
    "hub_verified_answers_served_total",
    "Answers served from a verified answer (cached ones too), by its collection",
    ["collection"],
    registry=REGISTRY,
)
SOURCE_SYNCS = Counter(
    "hub_source_sync_total",
    "Source syncs by source and outcome: ok, failed, busy",
    ["source", "outcome"],
    registry=REGISTRY,
)
SOURCE_DOCUMENTS = Gauge(
    "hub_source_documents", "Documents a source holds after its last good sync", ["source"], registry=REGISTRY,
    multiprocess_mode="max",
)  # fmt: skip
SOURCE_LAST_SUCCESS = Gauge(
    "hub_source_last_success_timestamp_seconds", "When a source last synced well (Unix time)", ["source"],
    registry=REGISTRY, multiprocess_mode="max",
)  # fmt: skip
SOURCE_INTERVAL = Gauge(
    "hub_source_interval_seconds", "A source's schedule (every), for the staleness alert", ["source"],
    registry=REGISTRY, multiprocess_mode="max",
)  # fmt: skip
