"""The reply-vs-push decision of a reclaimed LINE job, against what the dead attempt noted.

In-process, with a recording stand-in for the Messaging API: which call goes out is the whole
question (the kill -9 tests in test_crash_answers.py cover the same paths with real processes).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from adapters.line.api import retry_key
from adapters.line.delivery import Delivery
from adapters.line.translate import Chat, Incoming
from tests.conftest import make_settings


class RecordingApi:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def reply(self, token: str, messages: list[Any]) -> None:
        self.calls.append(("reply", token))

    async def push(self, to: str, messages: list[Any], key: str) -> bool:
        self.calls.append(("push", key))
        return True


class Notes:
    """What ``core.inbox.Answer`` gives a job: the notes of earlier attempts, and ``note``."""

    def __init__(self, **opened: Any) -> None:
        self.opened = dict(opened)

    async def note(self, **opened: Any) -> None:
        self.opened.update(opened)


def incoming(age_sec: float) -> Incoming:
    stamp = int((time.time() - age_sec) * 1000)
    return Incoming("ask", "E1", stamp, Chat("user", "U1", "U1"), reply_token="tok", question="q")


@pytest.mark.parametrize(
    ("opened", "age_sec", "expected"),
    [
        ({}, 0, [("reply", "tok")]),  # fresh: by reply
        ({}, 60, [("push", retry_key("E1"))]),  # stale: by push
        ({"reply": True, "replied": True}, 60, []),  # LINE took the reply before the crash: nothing more
        ({"reply": True}, 60, [("push", retry_key("E1"))]),  # unconfirmed, stale: pushed (not nothing)
        ({"reply": True}, 0, [("reply", "tok")]),  # unconfirmed, fresh: the token again (used = it went)
    ],
)
async def test_what_a_reclaimed_line_job_sends(tmp_path: Path, opened: dict[str, Any], age_sec: float,
                                               expected: list[tuple[str, str]]) -> None:  # fmt: skip
    api = RecordingApi()
    delivery = Delivery(api, make_settings(tmp_path))  # type: ignore[arg-type]
    notes = Notes(**opened)
    assert await delivery.answer(incoming(age_sec), Chat("user", "U1", "U1"), [], notes) is True  # type: ignore[arg-type]
    assert api.calls == expected
    if not opened and age_sec == 0:
        assert notes.opened == {"reply": True, "replied": True}  # noted before and after
