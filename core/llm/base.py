"""What every model provider offers the core, and how it fails."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from core.kb.retriever import Hit

FailureKind = Literal["timeout", "rate_limited", "server", "connection", "bad_response", "client"]


@dataclass(frozen=True, slots=True)
class Message:
    role: Literal["system", "user", "assistant"]
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True, slots=True)
class Prompt:
    """A question with its numbered context; LLM providers read ``messages``, the
    extractive answerer reads ``hits`` directly."""

    question: str
    hits: list[Hit]
    messages: list[Message]
    language: str


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None = None  # as the upstream said ("stop", "length"), when it says


class ProviderError(Exception):
    """An upstream call failed; ``kind`` decides whether retrying or failing over can help."""

    def __init__(
        self,
        kind: FailureKind,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        upstream: dict[str, Any] | None = None,
    ):
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after = retry_after
        self.upstream = upstream  # the upstream's own {"message", "type", "param", "code"}, if it sent one


class Provider(Protocol):
    @property
    def model(self) -> str:
        """The model name reported in answers (the upstream's name, or ``extractive``)."""
        ...

    async def complete(self, prompt: Prompt, *, temperature: float, max_tokens: int) -> Completion: ...

    def stream(self, prompt: Prompt, *, temperature: float, max_tokens: int) -> AsyncIterator[str | Completion]:
        """Text deltas, then one final Completion with the usage."""
        ...

    async def ping(self) -> str | None:
        """None when the upstream answers, else a short reason (for /readyz)."""
        ...

    async def aclose(self) -> None: ...
