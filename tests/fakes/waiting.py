"""Waiting for what a fake records (never a sleep that proves nothing happened)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["wait_until"]


def wait_until(condition: Callable[[], Any], timeout: float = 20) -> Any:
    """The first truthy ``condition()``; an AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(0.05)
    raise AssertionError("the answer did not arrive")
