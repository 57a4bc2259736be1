"""How many event streams one asker may hold open at once (per process).

Each open ``GET /conversations/{id}/events`` holds a connection and a follower for up to an
hour, so an asker (a key; a JWT's user) that opens them without end would exhaust the
process. Over the cap the next one is a 429 at once. Counted per process, not across processes:
a slot is a connection this process holds, and it frees itself when that connection ends —
also when the stream never started (``weakref.finalize`` on its body), so a slot never leaks.
"""

from __future__ import annotations

import weakref
from collections import Counter
from typing import Any

from core.errors import RateLimited


class StreamSlots:
    def __init__(self) -> None:
        self._open: Counter[str] = Counter()

    def open(self, asker: str) -> int:
        return self._open[asker]

    def take(self, asker: str, cap: int, body: Any) -> _Slot:
        """A slot for ``body`` (the stream's iterator), freed when it ends or is collected; a 429 over the cap."""
        if self._open[asker] >= cap:
            raise RateLimited(
                f"too many open event streams for this key ({cap}); close one before opening another",
                retry_after=1,
            )
        self._open[asker] += 1
        slot = _Slot(self, asker)
        weakref.finalize(body, slot.free)
        return slot

    def _free(self, asker: str) -> None:
        self._open[asker] -= 1
        if self._open[asker] <= 0:
            del self._open[asker]


class _Slot:
    def __init__(self, slots: StreamSlots, asker: str) -> None:
        self._slots, self._asker, self._freed = slots, asker, False

    def free(self) -> None:
        if not self._freed:
            self._freed = True
            self._slots._free(self._asker)
