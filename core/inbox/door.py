"""What an adapter may use of the hub: a narrow interface, so no adapter reaches into core's state.

``Hub`` satisfies it; adapters are typed against ``Door`` and never see the state backend, the
ledger or the queue — only the inbox, thread markers, the answer service, feedback, verified
answers, handoff and close hooks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from core.ask import AskService
    from core.config import Settings
    from core.feedback import FeedbackStore
    from core.handoff import HandoffService
    from core.inbox import Inbox
    from core.inbox.threads import ThreadMarkers
    from core.verified import VerifiedAnswers


class Door(Protocol):
    @property
    def settings(self) -> Settings: ...

    @property
    def asker(self) -> AskService: ...

    @property
    def inbox(self) -> Inbox: ...

    @property
    def threads(self) -> ThreadMarkers: ...

    @property
    def feedback(self) -> FeedbackStore: ...

    @property
    def handoff(self) -> HandoffService:
        """Handing customers to agents: the desk (Slack) and customer channels register here."""
        ...

    @property
    def verified(self) -> VerifiedAnswers:
        """An agent's answer to save (edit, retire): ``door.verified.save(question, answer,
        collection, verified_by, as_written=...)`` is served before retrieval from then on (the
        answer stored redacted unless ``as_written``: the agent changed the offered text)."""
        ...

    def on_close(self, hook: Callable[[], Awaitable[None]]) -> None: ...
