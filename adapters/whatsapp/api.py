"""The WhatsApp Cloud API as the hub uses it, on plain httpx: send a message, mark one read.

Plain httpx rather than pywa: pywa builds its Graph API URL from a fixed host
(``https://graph.facebook.com/v{version}``), so WHATSAPP_API_URL could not point it at a test
fake or a proxy, and it wants to own the webhook routes; the hub needs two calls and a JSON shape.

A send has no idempotency key on WhatsApp: it is retried only when it surely did not arrive (the
connection failed, or WhatsApp answered 429 / "too many messages"); a 5xx or a lost answer may
have delivered it and is not repeated here (``SendFailed.maybe_sent``).
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from core.retry import retrying

log = logging.getLogger("askhub.whatsapp")

API_TIMEOUT_SEC = 10.0
SEND_ATTEMPTS = 3
OUTSIDE_WINDOW = 131047  # "Re-engagement message": more than 24 hours since the customer wrote


class SendFailed(Exception):
    def __init__(self, status: int | None, code: int | None, *, maybe_sent: bool) -> None:
        super().__init__(f"status {status} code {code}")
        self.status, self.code, self.maybe_sent = status, code, maybe_sent

    @property
    def outside_window(self) -> bool:
        return self.code == OUTSIDE_WINDOW


class _Retry(Exception):
    """The message surely did not arrive: try again."""


class WhatsAppApi:
    def __init__(self, base_url: str, access_token: str, phone_number_id: str) -> None:
        self._url = f"{base_url.rstrip('/')}/{phone_number_id}/messages"
        self._headers = {"Authorization": f"Bearer {access_token}"}
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:  # made on first use, on the loop that uses it
            self._client = httpx.AsyncClient(timeout=API_TIMEOUT_SEC, headers=self._headers)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def send(self, to: str, message: dict[str, Any], *, reply_to: str | None = None) -> str:
        """The sent message's id. Raises ``SendFailed``."""
        body: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, **message}
        if reply_to:
            body["context"] = {"message_id": reply_to}
        last: SendFailed | None = None
        try:
            async for attempt in retrying(_Retry, attempts=SEND_ATTEMPTS, first_wait_sec=0.5):
                with attempt:
                    try:
                        response = await self.client.post(self._url, json=body)
                    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                        last = SendFailed(None, None, maybe_sent=False)
                        raise _Retry(type(exc).__name__) from exc
                    except httpx.HTTPError as exc:
                        raise SendFailed(None, None, maybe_sent=True) from exc
                    if response.status_code == 200:
                        return str(response.json()["messages"][0]["id"])
                    code = _error_code(response)
                    last = SendFailed(response.status_code, code, maybe_sent=response.status_code >= 500)
                    if response.status_code == 429 or code in (130429, 131056):  # throughput / pair rate limit
                        raise _Retry(f"status {response.status_code}")
                    log.warning("whatsapp send refused", extra={"status": response.status_code, "code": code})
                    raise last
        except _Retry:
            pass
        assert last is not None
        raise last

    async def mark_read(self, message_id: str) -> None:
        """Blue ticks and the typing indicator while the answer is prepared (best effort)."""
        body = {"messaging_product": "whatsapp", "status": "read", "message_id": message_id,
                "typing_indicator": {"type": "text"}}  # fmt: skip
        try:
            response = await self.client.post(self._url, json=body, timeout=3.0)
            if response.status_code != 200:
                log.info("not marked read", extra={"status": response.status_code})
        except httpx.HTTPError as exc:
            log.info("not marked read", extra={"exc": type(exc).__name__})


def _error_code(response: httpx.Response) -> int | None:
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None
    return code if isinstance(code, int) else None
