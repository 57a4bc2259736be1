"""The core's boundary types: what every front door sends in and gets back."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import orjson

from core.errors import BadRequest, InvalidType


def json_object(raw: bytes) -> dict[str, Any]:
    """A request body that must be a JSON object: not JSON → 400, another JSON type → 422."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("body must be a JSON object") from None
    if not isinstance(body, dict):
        raise InvalidType("body must be a JSON object")
    return body


@dataclass(frozen=True, slots=True)
class AskRequest:
    """One question from any front door. ``user`` is the platform identity (Slack user,
    LINE user, Discord user, JWT sub) or, failing those, the client key's name."""

    question: str
    tenant: str = "default"
    client: str = "local"
    user: str = "anonymous"
    platform: str = "api"
    channel: str | None = None
    conversation_id: str | None = None
    temperature: float | None = None
    top_k: int | None = None
    request_id: str = ""


@dataclass(frozen=True, slots=True)
class Source:
    id: str
    title: str
    text: str
    score: float
    collection: str = "default"  # the knowledge-base collection it came from
    url: str | None = None  # a synced document's address at its source (core/sources/)

    def as_dict(self) -> dict[str, Any]:
        shown = {"id": self.id, "title": self.title, "text": self.text, "score": round(self.score, 4),
                 "collection": self.collection}  # fmt: skip
        if self.url:
            shown["url"] = self.url
        return shown


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": round(self.cost_usd, 8),
        }


@dataclass(frozen=True, slots=True)
class Admission:
    """What the limits said about an admitted request; becomes the X-RateLimit-* headers."""

    limit: int
    remaining: int | None  # None: not known (the backend is down and the policy is "open")
    reset_after: float

    def headers(self) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Reset": str(math.ceil(self.reset_after)),
        }
        if self.remaining is not None:
            headers["X-RateLimit-Remaining"] = str(self.remaining)
        return headers


@dataclass(frozen=True, slots=True)
class AskResult:
    question: str
    answer: str
    sources: list[Source]
    model: str
    cached: bool
    usage: Usage
    request_id: str
    # Why there is no grounded answer ("no_knowledge"), for adapters that word it their way.
    outcome: str = "answered"
    latency_ms: float = 0.0
    admission: Admission | None = None
    # Served from a verified answer: {"id", "by", "at", "collection"} (who verified it, when).
    verified: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        body = {
            "question": self.question,
            "answer": self.answer,
            "sources": [s.as_dict() for s in self.sources],
            "model": self.model,
            "cached": self.cached,
            "usage": self.usage.as_dict(),
            "request_id": self.request_id,
        }
        if self.verified is not None:  # additive: answers nobody verified keep the contract's shape
            body["verified"] = self.verified
        return body


@dataclass(frozen=True, slots=True)
class RelayedReply:
    """A /v1 answer as the upstream shaped it, and the limits' verdict for its headers."""

    body: bytes
    admission: Admission
