"""A log line that cannot be written is counted, not silently lost."""

from __future__ import annotations

import io
from pathlib import Path

from core import logs
from core.metrics import LOG_WRITE_FAILURES


class _Broken(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError(28, "No space left on device")


def test_failed_log_writes_are_counted_per_target(tmp_path: Path) -> None:
    stream, file = LOG_WRITE_FAILURES.labels("stream"), LOG_WRITE_FAILURES.labels("file")
    before = (stream._value.get(), file._value.get())
    writer = logs._Writer("json", str(tmp_path / "missing-folder" / "gateway.log"), _Broken())
    writer._write('{"msg": "lost"}\n')
    assert (stream._value.get(), file._value.get()) == (before[0] + 1, before[1] + 1)
