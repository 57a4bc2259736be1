"""Logs: JSON lines (or text) to stdout and to LOG_FILE (rotated), written by one thread.

Request handlers only put a dict on a queue; a writer thread formats and writes in batches,
so neither a slow disk nor formatting stalls the event loop. The per-request query line
skips the logging module entirely (it costs a few microseconds instead of tens); ordinary
``logging`` records of the ``askhub`` loggers go through the same writer. Of an exception
only its type is written: tracebacks quote request data, which must not reach a log.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

import orjson

from core.config import Settings
from core.metrics import LOG_WRITE_FAILURES

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
MAX_BYTES = 20 * 1024 * 1024
BACKUPS = 5
BATCH_WAIT_SEC = 0.05
THIRD_PARTY = ("slack_bolt", "slack_sdk", "discord", "linebot", "telegram", "aiohttp", "openai", "httpx", "redis",
               "faiss", "opentelemetry")  # fmt: skip


def _timestamp(created: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(created * 1000) % 1000:03d}Z"


class _Writer(threading.Thread):
    def __init__(self, fmt: str, path: str | None, stream: TextIO) -> None:
        super().__init__(name="log-writer", daemon=True)
        self.queue: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self._fmt = fmt
        self._path = Path(path) if path else None
        self._stream = stream
        self._file: Any = None
        self._idle = threading.Event()
        self._idle.set()

    def put(self, line: dict[str, Any]) -> None:
        self._idle.clear()
        self.queue.put(line)

    def run(self) -> None:
        while True:
            item = self.queue.get()
            if item is not None:
                # Let lines gather: one wake-up (and one GIL hand-off) per batch, not per line.
                time.sleep(BATCH_WAIT_SEC)
            batch = [item]
            while len(batch) < 5000:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            stop = None in batch
            text = "".join(self._format(line) for line in batch if line is not None)
            if text:
                self._write(text)
            if self.queue.empty():
                self._idle.set()
            if stop:
                return

    def _format(self, line: dict[str, Any]) -> str:
        if self._fmt == "json":
            return orjson.dumps(line, default=str).decode() + "\n"
        stamp, level = line.get("ts", "")[11:19], line.get("level", "info")
        head = f"{stamp} {level:<7} {line.get('logger', '')}: {line.get('msg', '')}"
        rest = " ".join(f"{k}={v}" for k, v in line.items() if k not in ("ts", "level", "logger", "msg"))
        return f"{head}  {rest}\n" if rest else head + "\n"

    def _write(self, text: str) -> None:
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError):  # a closed or full stdout: counted, since it cannot be logged
            LOG_WRITE_FAILURES.labels("stream").inc()
        if self._path is None:
            return
        try:
            if self._file is None:
                self._file = open(self._path, "a", encoding="utf-8")  # noqa: SIM115 - kept open by design
            self._file.write(text)
            self._file.flush()
            if self._file.tell() > MAX_BYTES:
                self._rotate()
        except OSError:  # a full disk, a removed folder: counted; the file is reopened next time
            LOG_WRITE_FAILURES.labels("file").inc()
            self._file = None

    def _rotate(self) -> None:
        assert self._path is not None
        self._file.close()
        for n in range(BACKUPS - 1, 0, -1):
            older = self._path.with_name(f"{self._path.name}.{n}")
            if older.exists():
                os.replace(older, self._path.with_name(f"{self._path.name}.{n + 1}"))
        os.replace(self._path, self._path.with_name(f"{self._path.name}.1"))
        self._file = open(self._path, "a", encoding="utf-8")  # noqa: SIM115

    def flush(self, timeout: float = 5.0) -> None:
        self._idle.wait(timeout)

    def stop(self) -> None:
        self.queue.put(None)
        self.join(5)
        if self._file is not None:
            self._file.close()


class _Handler(logging.Handler):
    """``logging`` records of the askhub loggers, as dicts for the writer."""

    def emit(self, record: logging.LogRecord) -> None:
        line: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info and record.exc_info[0] is not None:
            line["exc"] = record.exc_info[0].__name__
        _emit(line)


_writer: _Writer | None = None


def _emit(line: dict[str, Any]) -> None:
    if _writer is not None:
        _writer.put(line)


def query(fields: dict[str, Any]) -> None:
    """The one line per answered request (fields documented in docs/operations.md)."""
    _emit({"ts": _timestamp(time.time()), "level": "info", "logger": "askhub.query", "msg": "ask", **fields})


def setup(settings: Settings) -> None:
    """Start the writer and route the ``askhub`` loggers to it; safe to call again (tests)."""
    global _writer
    if _writer is not None:
        _writer.stop()
    else:
        atexit.register(_stop)
    _writer = _Writer(settings.log_format, settings.log_file, sys.stdout)
    _writer.start()
    root = logging.getLogger("askhub")
    root.handlers[:] = [_Handler()]
    root.setLevel(logging.INFO)
    root.propagate = False
    # The SDKs' own loggers go the same way (warnings and up): one pipeline, one format,
    # an exception's type but never its traceback, nothing on bare stderr.
    for name in THIRD_PARTY:
        logger = logging.getLogger(name)
        logger.handlers[:] = [_Handler()]
        logger.setLevel(logging.WARNING)
        logger.propagate = False


def flush() -> None:
    """Wait until every queued line is written (tests read the file right after)."""
    if _writer is not None:
        _writer.flush()


def _stop() -> None:
    global _writer
    if _writer is not None:
        _writer.stop()
        _writer = None
