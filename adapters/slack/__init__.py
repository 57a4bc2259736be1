"""Slack front door: mentions, DMs, thread follow-ups and ``/ask``, answered in threads.

On when SLACK_BOT_TOKEN is set with SLACK_SIGNING_SECRET (HTTP: ``POST /slack/events``) and/or
SLACK_APP_TOKEN (Socket Mode: ``python -m adapters.slack``, or ``python -m core serve``).

    transport.py   slack-bolt AsyncApp: verify, decide, dedupe, queue, ack (HTTP and Socket Mode)
    translate.py   Slack payloads -> AskRequest (tenant from the workspace, thread = conversation)
    render.py      AskResult -> mrkdwn and Block Kit (split sections, sources, 👍 / 👎)
    reply.py       the queued job: ask the core, open a view, finish it or apologise
    stream.py      the stream writer (chat.startStream / appendStream / stopStream)
    placeholder.py "Thinking…" edited into the answer, or the asker's response_url
    opening.py     which view: the dead worker's (after a crash), a new stream, or a placeholder
    view.py        what the views share; webapi.py: the Web API calls they make
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.config import Settings

if TYPE_CHECKING:  # the SDKs load only when Slack is configured (and `python -m adapters.slack` starts fast)
    from core.adapters import Loaded
    from core.inbox.door import Door

__all__ = ["load"]


def http_configured(settings: Settings) -> bool:
    return bool(settings.slack_bot_token and settings.slack_signing_secret)


def socket_configured(settings: Settings) -> bool:
    return bool(settings.slack_bot_token and settings.slack_app_token)


def load(door: Door, *, clients: bool) -> Loaded | None:
    """One Bolt app (and its job kinds) for the HTTP route and Socket Mode alike."""
    settings = door.settings
    if not (http_configured(settings) or socket_configured(settings)):
        return None
    from adapters.slack.transport import SlackTransport
    from core.adapters import Loaded

    transport = SlackTransport(door)  # declares the job kinds: Socket Mode events are answered by them too
    loaded = Loaded("slack")
    if http_configured(settings):
        loaded.routes["/slack/events"] = transport.http_endpoint
    if clients and socket_configured(settings):
        loaded.runners.append(transport.run_socket_mode)
    return loaded
