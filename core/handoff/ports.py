"""The two sides a handoff connects, as small Protocols: the agents' desk and each customer door.

Core never imports an adapter. The Slack adapter implements ``Desk`` and registers it with
``door.handoff.register_desk``; every customer-side adapter (LINE now; Discord and the portal
next) implements ``CustomerChannel`` and registers it with
``door.handoff.register_customer(platform, channel)`` when it loads. See ``core.handoff`` for
the whole recipe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from core.handoff.record import Customer, Handoff


@dataclass(frozen=True, slots=True)
class DeskRef:
    """Where a handoff lives on the desk: the opening message (its ``ts`` is the thread)."""

    channel: str
    ts: str


@dataclass(frozen=True, slots=True)
class Opening:
    """What the opening message shows. Texts are already redacted when the setting says so."""

    platform: str
    tenant: str
    language: str
    summary: str
    summary_kind: Literal["llm", "verbatim"]
    transcript: list[tuple[str, str]] = field(default_factory=list)  # (who: "customer" | "bot", text)


@dataclass(frozen=True, slots=True)
class Status:
    """The opening message's state line after a Take or the end."""

    state: Literal["open", "taken", "resolved"]
    taken_by: str | None = None  # the desk's user id of the agent who took it
    resolved_by: str | None = None  # the agent, or None when it closed by itself (idle)
    outcome: str | None = None  # "resolved" | "idle"
    duration_sec: float | None = None


class Desk(Protocol):
    """The agents' side (the Slack adapter's ``adapters/slack/desk.py``).

    Every method may be called again for the same ``key`` after a crash (a reclaimed job, a
    second sweeper): ``maybe_done`` then says an earlier attempt may have got through, and the
    desk must not show the message twice (Slack: it looks for the key in the messages' metadata)."""

    async def open(self, handoff: Handoff, opening: Opening, *, key: str, maybe_done: bool) -> DeskRef:
        """Post the opening message (platform, tenant, summary, conversation, Take / Resolve)."""
        ...

    async def post(self, ref: DeskRef, text: str, *, key: str, maybe_done: bool, author: str = "customer") -> None:
        """Post ``text`` (a customer's message, or a line from the hub) into the handoff's thread.
        ``author`` is "member" for someone else writing in the customer's shared thread (passed
        only then, so a desk written before it still works)."""
        ...

    async def update(self, ref: DeskRef, handoff: Handoff, status: Status) -> None:
        """Show who took it, or who resolved it and after how long (idempotent: a plain edit)."""
        ...


class CustomerChannel(Protocol):
    """Delivers text to a customer on one platform (LINE: push; Discord: a message; portal: its stream).

    ``deliver`` must show ``text`` at most once per ``key`` even when called again with the same
    key (after a crash, by another process): LINE derives ``X-Line-Retry-Key`` from it, Discord
    can send it as an enforced nonce, the portal as the stream event's id. Return True when it
    was delivered (or had been), False when it could not be (the caller retries later)."""

    async def deliver(self, customer: Customer, text: str, *, key: str) -> bool: ...
