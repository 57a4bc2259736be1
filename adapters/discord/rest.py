"""One HTTP client for the Discord REST calls a process makes outside discord.py (interaction
webhooks, handoff messages), made on first use (it needs the running loop) and closed with the hub."""

from __future__ import annotations

import httpx

TIMEOUT_SEC = 10.0


class Rest:
    def __init__(self) -> None:
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=TIMEOUT_SEC)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
