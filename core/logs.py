"""Logging: JSON lines (or text) to stdout and to LOG_FILE, written off the event loop.

Handlers run in a QueueListener thread, so a slow disk never stalls a request.
"""

from __future__ import annotations

import atexit
import copy
import logging
import logging.handlers
import queue
import sys
import time
from typing import Any

import orjson

from core.config import Settings

QUERY = logging.getLogger("askhub.query")
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
_listener: logging.handlers.QueueListener | None = None


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extra = " ".join(f"{k}={v}" for k, v in vars(record).items() if k not in _STANDARD)
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        return f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}" + (
            f"  {extra}" if extra else ""
        )


class _QueueHandler(logging.handlers.QueueHandler):
    """Hands records to the writer thread. Of an exception only its type is kept:
    tracebacks quote local variables and request data, which must not reach a log."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record = copy.copy(record)
        record.msg = record.getMessage()
        record.args = None
        if record.exc_info:
            exc_type = record.exc_info[0]
            record.exc = exc_type.__name__ if exc_type else "exception"
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        return record


def setup(settings: Settings) -> None:
    """Route the ``askhub`` loggers through one queue; safe to call again (tests)."""
    global _listener
    if _listener is not None:
        _listener.stop()
    else:
        atexit.register(_stop)
    formatter: logging.Formatter = JsonFormatter() if settings.log_format == "json" else TextFormatter()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if settings.log_file:
        handlers.append(
            logging.handlers.RotatingFileHandler(
                settings.log_file, maxBytes=20 * 1024 * 1024, backupCount=5, encoding="utf-8"
            )
        )
    for handler in handlers:
        handler.setFormatter(formatter)
    q: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    root = logging.getLogger("askhub")
    root.handlers[:] = [_QueueHandler(q)]
    root.setLevel(logging.INFO)
    root.propagate = False
    _listener = logging.handlers.QueueListener(q, *handlers, respect_handler_level=False)
    _listener.start()


def _stop() -> None:
    global _listener
    if _listener is not None:
        _listener.stop()
        _listener = None
