"""The Bot Connector as the hub uses it (httpx, async): a bot token, then send / reply / update.

The token comes from ``TEAMS_TOKEN_URL`` (Azure AD's client-credentials grant for the scope
``https://api.botframework.com/.default``) and is reused until five minutes before it expires.
Every call goes to the ``serviceUrl`` the activity brought (verified against its JWT), or, for a
first post in the agents' channel, to ``teams.service_url``. A 5xx or a lost answer is tried
again; a 401 fetches a new token once. A streamed answer's progress update (``once``) is not
tried again on a 429: it is skipped, and the next update or the final message shows the text.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any
from urllib.parse import quote

import httpx

from core.retry import retrying

log = logging.getLogger("askhub.teams")

SCOPE = "https://api.botframework.com/.default"
ATTEMPTS = 3


class ConnectorError(Exception):
    """The connector refused the call, or could not be reached (``status`` None)."""

    def __init__(self, status: int | None, what: str) -> None:
        super().__init__(f"{what}: {status}")
        self.status = status


class _Retry(Exception):
    pass


class Connector:
    def __init__(self, app_id: str, password: str, token_url: str, client: httpx.AsyncClient) -> None:
        self._app_id, self._password, self._token_url = app_id, password, token_url
        self._http = client
        self._token: tuple[str, float] | None = None
        self._lock = asyncio.Lock()

    async def _bearer(self, *, renew: bool = False) -> str:
        async with self._lock:
            if self._token is not None and not renew and time.monotonic() < self._token[1]:
                return self._token[0]
            form = {"grant_type": "client_credentials", "client_id": self._app_id,
                    "client_secret": self._password, "scope": SCOPE}  # fmt: skip
            try:
                response = await self._http.post(self._token_url, data=form)
            except httpx.HTTPError as exc:
                raise ConnectorError(None, "token") from exc
            if response.status_code != 200:
                log.warning("bot token refused", extra={"status": response.status_code})
                raise ConnectorError(response.status_code, "token")
            body = response.json()
            expires = float(body.get("expires_in") or 3600)
            self._token = (str(body["access_token"]), time.monotonic() + max(60.0, expires - 300))
            return self._token[0]

    async def _call(self, method: str, url: str, activity: dict[str, Any], *, once: bool = False) -> dict[str, Any]:
        renewed = False
        try:
            async for attempt in retrying(_Retry, attempts=ATTEMPTS, first_wait_sec=0.5):
                with attempt:
                    token = await self._bearer()
                    try:
                        response = await self._http.request(
                            method, url, json=activity, headers={"Authorization": f"Bearer {token}"}
                        )
                    except httpx.HTTPError as exc:
                        raise _Retry(type(exc).__name__) from exc
                    if response.status_code == 401 and not renewed:
                        renewed = True
                        await self._bearer(renew=True)
                        raise _Retry("401")
                    if response.status_code == 429 and once:
                        raise ConnectorError(429, method)
                    if response.status_code >= 500 or response.status_code == 429:
                        raise _Retry(str(response.status_code))
                    if response.status_code >= 400:
                        log.warning("connector refused", extra={"status": response.status_code})
                        raise ConnectorError(response.status_code, method)
                    return dict(response.json() or {}) if response.content else {}
        except _Retry as exc:
            raise ConnectorError(None, f"{method} ({exc})") from exc
        raise ConnectorError(None, method)  # not reached: retrying raises when attempts run out

    @staticmethod
    def _activities(service_url: str, conversation: str) -> str:
        return f"{service_url.rstrip('/')}/v3/conversations/{quote(conversation, safe='')}/activities"

    async def send(self, service_url: str, conversation: str, activity: dict[str, Any]) -> str:
        """A new message in the conversation (in a channel: a new post); its activity id."""
        got = await self._call("POST", self._activities(service_url, conversation), activity)
        return str(got.get("id") or "")

    async def reply(
        self, service_url: str, conversation: str, reply_to: str, activity: dict[str, Any], *, once: bool = False
    ) -> str:
        """A message in the reply chain of ``reply_to``; its activity id. ``once``: a 429 is not retried."""
        url = f"{self._activities(service_url, conversation)}/{quote(reply_to, safe='')}"
        got = await self._call("POST", url, {**activity, "replyToId": reply_to}, once=once)
        return str(got.get("id") or "")

    async def update(self, service_url: str, conversation: str, activity_id: str, activity: dict[str, Any]) -> None:
        url = f"{self._activities(service_url, conversation)}/{quote(activity_id, safe='')}"
        await self._call("PUT", url, {**activity, "id": activity_id})
