"""The LINE Messaging API as the hub uses it (line-bot-sdk v3, async): loading, reply, push.

A push carries an ``X-Line-Retry-Key`` derived from the event id (``retry_key``): LINE accepts
one push per key, so a push retried after a lost response, or by a worker that reclaimed the
job, is delivered once.
"""

from __future__ import annotations

import logging
import uuid

import aiohttp
from linebot.v3.messaging import (
    ApiException,
    AsyncApiClient,
    AsyncMessagingApi,
    Configuration,
    Message,
    PushMessageRequest,
    ReplyMessageRequest,
    ShowLoadingAnimationRequest,
)

from core.retry import retrying

log = logging.getLogger("askhub.line")

# The loading animation ends by itself when the answer arrives; this only bounds it if nothing does.
LOADING_SECONDS = 60
API_TIMEOUT_SEC = 10.0
PUSH_ATTEMPTS = 3
_RETRY_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "askhub:line:push")


def retry_key(event_id: str) -> str:
    """The push's X-Line-Retry-Key: the same UUID for every attempt at one event."""
    return str(uuid.uuid5(_RETRY_NAMESPACE, event_id))


class LineApi:
    """The SDK's async Messaging API client, made on first use (it needs the running loop)."""

    def __init__(self, host: str, access_token: str) -> None:
        self._config = Configuration(host=host.rstrip("/"), access_token=access_token)
        self._client: AsyncApiClient | None = None
        self._api: AsyncMessagingApi | None = None

    @property
    def api(self) -> AsyncMessagingApi:
        if self._api is None:
            self._client = AsyncApiClient(self._config)
            self._api = AsyncMessagingApi(self._client)
        return self._api

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = self._api = None

    async def show_loading(self, chat_id: str) -> None:
        request = ShowLoadingAnimationRequest(chat_id=chat_id, loading_seconds=LOADING_SECONDS)
        # Short: the answer waits for it (so the animation never starts after the answer).
        await self.api.show_loading_animation(request, _request_timeout=3.0)

    async def reply(self, token: str, messages: list[Message]) -> None:
        request = ReplyMessageRequest(reply_token=token, messages=messages)
        await self.api.reply_message(request, _request_timeout=API_TIMEOUT_SEC)

    async def push(self, to: str, messages: list[Message], key: str) -> bool:
        """Push with a retry key; retried on a lost answer or a LINE 5xx. 409 means an earlier
        attempt with this key was accepted: delivered, once."""
        request = PushMessageRequest(to=to, messages=messages)
        try:
            async for attempt in retrying(_Retry, attempts=PUSH_ATTEMPTS, first_wait_sec=0.5):
                with attempt:
                    try:
                        await self.api.push_message(request, x_line_retry_key=key, _request_timeout=API_TIMEOUT_SEC)
                    except ApiException as exc:
                        if exc.status == 409:
                            return True
                        if exc.status is None or exc.status >= 500:
                            raise _Retry(f"status {exc.status}") from exc
                        log.warning("push refused", extra={"status": exc.status})
                        return False
                    except (aiohttp.ClientError, TimeoutError) as exc:
                        raise _Retry(type(exc).__name__) from exc
        except _Retry as exc:
            log.warning("push failed", extra={"exc": str(exc)})
            return False
        return True


class _Retry(Exception):
    """A push whose outcome is unknown (5xx, lost answer): retried with the same key."""
