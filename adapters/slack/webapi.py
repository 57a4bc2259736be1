"""The Slack Web API as the answer path uses it: the streaming methods, response_url, errors.

Kept apart from the answer logic so that the views (stream, placeholder) and the reply share
one client and one memory of which teams cannot stream.
"""

from __future__ import annotations

import time
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

STREAM_RECHECK_SEC = 3600.0  # a team that cannot stream is asked again after an hour
# chat.startStream errors that say "this workspace / app cannot stream" rather than "not now".
NO_STREAMING = {
    "unknown_method",
    "not_allowed",
    "not_allowed_token_type",
    "missing_scope",
    "feature_not_enabled",
    "not_enabled",
    "access_denied",
    "method_deprecated",
    "team_not_allowed",
}


class SlackWeb:
    """slack_sdk's client, plus what it lacks: the chat.*Stream methods on older releases, and
    a per-team memory of "cannot stream" (so a team without streaming is not asked every time)."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self._no_stream_until: dict[str, float] = {}  # team -> monotonic time to try streaming again

    def may_stream(self, team: str) -> bool:
        return self._no_stream_until.get(team, 0.0) <= time.monotonic()

    def cannot_stream(self, team: str) -> None:
        self._no_stream_until[team] = time.monotonic() + STREAM_RECHECK_SEC

    async def call(self, method: str, **body: Any) -> Any:
        """chat.startStream / appendStream / stopStream through slack_sdk's method when it has
        one, else as a plain JSON API call (the same request)."""
        fn = getattr(self.client, method.replace(".", "_"), None)
        if fn is not None:
            return await fn(**body)
        return await self.client.api_call(method, json={k: v for k, v in body.items() if v is not None})


async def respond(url: str, *, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
    """An ephemeral message to the asker through a command's or a click's response_url."""
    response = await AsyncWebhookClient(url).send(
        text=text, blocks=blocks, response_type="ephemeral", replace_original=False
    )
    if response.status_code != 200:
        raise RuntimeError(f"response_url answered {response.status_code}")


def slack_error(exc: BaseException) -> str | None:
    """Slack's error code (``not_in_channel``, ...) for a log line; never the message text."""
    if isinstance(exc, SlackApiError):
        try:
            return str(exc.response.get("error"))
        except Exception:
            return "unknown"
    return None
