"""What operators see of handoffs: ``askhub.audit`` lines and the ``hub_handoffs_*`` metrics.

Audit lines carry the handoff id, platform, tenant, reason or outcome, the agent's desk id and a
hash of the customer — never the customer's id, name or words.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter, Gauge, Histogram

from core.auth.service import fingerprint
from core.handoff.record import Handoff
from core.metrics import REGISTRY

AUDIT = logging.getLogger("askhub.audit")

WAIT_BUCKETS = (10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400)

HANDOFFS = Counter(
    "hub_handoffs_total",
    "Handoffs to a person by customer platform and outcome (started, taken, resolved, idle)",
    ["platform", "outcome"],
    registry=REGISTRY,
)
FIRST_REPLY_SECONDS = Histogram(
    "hub_handoff_first_reply_seconds",
    "From a handoff's start to the first human reply the customer got",
    ["platform"],
    buckets=WAIT_BUCKETS,
    registry=REGISTRY,
)
RESOLVE_SECONDS = Histogram(
    "hub_handoff_resolve_seconds",
    "From a handoff's start to its end (resolved or idle)",
    ["platform", "outcome"],
    buckets=WAIT_BUCKETS,
    registry=REGISTRY,
)
WAITING_SECONDS = Gauge(
    "hub_handoff_oldest_waiting_seconds",
    "Age of the oldest open handoff that no person has answered yet (0: none waiting)",
    registry=REGISTRY,
    multiprocess_mode="livemax",
)
OPEN = Gauge("hub_handoffs_open", "Open handoffs", registry=REGISTRY, multiprocess_mode="livemax")
RELAYS = Counter(
    "hub_handoff_relays_total",
    "Messages relayed during handoffs by direction (to_agents, to_customer) and outcome",
    ["direction", "outcome"],
    registry=REGISTRY,
)


def audit(event: str, handoff: Handoff, **fields: object) -> None:
    AUDIT.info(
        f"handoff {event}",
        extra={
            "event": f"handoff_{event}",
            "handoff": handoff.id,
            "platform": handoff.platform,
            "tenant": handoff.tenant,
            "user_hash": fingerprint(f"{handoff.platform}:{handoff.customer.user or handoff.customer.conversation}"),
            **fields,
        },
    )
