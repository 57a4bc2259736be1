"""A verified answer: a person's answer to a question, served instead of the model's."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class VerifiedAnswer:
    """``question`` is stored redacted (core.pii): it is shown on the dashboard and matched
    against askers' redacted questions. ``answer`` is the agent's text, served as written."""

    id: str
    question: str
    answer: str
    collection: str
    verified_by: str
    created_at: float
    updated_at: float
    retired: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def dumps(self) -> bytes:
        return orjson.dumps(self.as_dict())

    @classmethod
    def loads(cls, raw: bytes) -> VerifiedAnswer:
        return cls(**orjson.loads(raw))

    def mark(self) -> dict[str, Any]:
        """What an answer served from it carries: who verified it and when (AskResult.verified)."""
        return {"id": self.id, "by": self.verified_by, "at": self.updated_at, "collection": self.collection}
