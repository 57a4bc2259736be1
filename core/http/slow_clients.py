"""Slow and abusive clients: how long the hub waits for a request's headers and body.

A client that opens a connection and dribbles its headers (slowloris), or announces a body
and sends it a byte a minute, holds a connection and its memory forever unless the server
bounds the wait. Headers are bounded here, in uvicorn's HTTP protocol (``python -m core
serve`` uses it); the body is bounded by the hub middleware under any ASGI server. Both
close or refuse with 408, counted and logged at INFO.

In front of the hub a reverse proxy should still add what one process cannot: per-IP
connection and request-rate limits, TLS, and its own header and body timeouts (nginx:
``client_header_timeout 10s; client_body_timeout 30s; limit_conn perip 50;`` and
``proxy_read_timeout`` longer than the SSE keep-alive, ``proxy_buffering off`` for SSE).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("askhub.http")

HEADER_TIMEOUT_SEC = 10.0  # from the connection (or the request's first byte) to its last header
BODY_TIMEOUT_SEC = 30.0  # from the headers to the last byte of the body


class BoundedHeaders(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing a connection whose headers do not arrive in time."""

    header_timeout_sec = HEADER_TIMEOUT_SEC

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout_sec, self._too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            log.info("closing a connection whose request headers did not arrive in time")
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)
