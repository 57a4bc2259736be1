"""The Slack Web API as the answer path uses it: the streaming methods, response_url, errors.

Kept apart from the answer logic so that the views (stream, placeholder) and the reply share
one client and one memory of which teams cannot stream.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

log = logging.getLogger("askhub.slack")

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
        self._me: tuple[str, str] | None = None  # the bot's user id and bot id (auth.test)

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

    async def _identity(self) -> tuple[str, str]:
        if self._me is None:
            auth = await self.client.auth_test()
            self._me = (str(auth.get("user_id") or ""), str(auth.get("bot_id") or ""))
        return self._me

    def _mine(self, message: dict[str, Any]) -> bool:
        user_id, bot_id = self._me or ("", "")
        return bool((user_id and message.get("user") == user_id) or (bot_id and message.get("bot_id") == bot_id))

    async def own_post(self, channel: str, text: str) -> str | None:
        """The ts of the bot's latest channel message with exactly this text (/ask's "asked:"
        message a dead worker posted but never noted), or None. Needs the history scopes."""
        try:
            await self._identity()
            page = await self.client.conversations_history(channel=channel, limit=50)
        except SlackApiError as exc:
            log.warning("cannot read the channel to find an unnoted post", extra={"slack_error": slack_error(exc)})
            return None
        mine = [str(m["ts"]) for m in page.get("messages") or [] if self._mine(m) and m.get("text") == text]
        return max(mine, key=_ts) if mine else None

    async def own_reply(self, channel: str, thread_ts: str, *, after: str) -> str | None:
        """The ts of the bot's first message in the thread after ``after`` (the question), or None.

        How a reclaimed job finds the stream or placeholder a dead worker opened but never noted
        (it died between Slack's answer and the note). Needs the history scopes of the channel
        type (channels:history, groups:history, im:history, mpim:history); without them, None."""
        try:
            await self._identity()
            page = await self.client.conversations_replies(channel=channel, ts=thread_ts, oldest=after, limit=200)
        except SlackApiError as exc:
            log.warning("cannot read the thread to find an unnoted answer", extra={"slack_error": slack_error(exc)})
            return None
        mine = [str(m["ts"]) for m in page.get("messages") or []
                if _ts(str(m.get("ts", "0"))) > _ts(after) and self._mine(m)]  # fmt: skip
        return min(mine, key=_ts) if mine else None


def _ts(ts: str) -> tuple[int, int]:
    """A Slack ts in order (seconds, then the sequence part), exactly: a float would round it."""
    seconds, _, sequence = ts.partition(".")
    try:
        return int(seconds), int(sequence or 0)
    except ValueError:
        return 0, 0


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
