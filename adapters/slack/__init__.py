"""Slack front door: mentions, DMs, thread follow-ups and ``/ask``, answered in threads.

On when SLACK_BOT_TOKEN is set with SLACK_SIGNING_SECRET (HTTP: ``POST /slack/events``) and/or
SLACK_APP_TOKEN (Socket Mode: ``python -m adapters.slack``, or ``python -m core serve``).

    transport.py   slack-bolt AsyncApp: verify, decide, dedupe, queue, ack (HTTP and Socket Mode)
    translate.py   Slack payloads -> AskRequest (tenant from the workspace, thread = conversation)
    render.py      AskResult -> mrkdwn and Block Kit (split sections, sources, 👍 / 👎)
    reply.py       the queued job: ask the core, stream (or update "Thinking…"), post, apologise
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from core.config import Settings

if TYPE_CHECKING:  # the SDKs load only when Slack is configured (and `python -m adapters.slack` starts fast)
    from fastapi import FastAPI

    from adapters.slack.transport import SlackTransport
    from core.hub import Hub

__all__ = ["mount", "runners", "transport_for"]

_transports: weakref.WeakKeyDictionary[Hub, SlackTransport] = weakref.WeakKeyDictionary()


def http_configured(settings: Settings) -> bool:
    return bool(settings.slack_bot_token and settings.slack_signing_secret)


def socket_configured(settings: Settings) -> bool:
    return bool(settings.slack_bot_token and settings.slack_app_token)


def transport_for(hub: Hub) -> SlackTransport:
    """The one Bolt app (and job handlers) of a hub, shared by the HTTP route and Socket Mode."""
    from adapters.slack.transport import SlackTransport

    transport = _transports.get(hub)
    if transport is None:
        transport = _transports[hub] = SlackTransport(hub)
    transport.register_jobs()
    return transport


def mount(app: FastAPI, hub: Hub) -> bool:
    settings = hub.settings
    if not (http_configured(settings) or socket_configured(settings)):
        return False
    transport = transport_for(hub)  # job handlers: Socket Mode events are answered by them too
    if http_configured(settings):
        app.add_api_route("/slack/events", transport.http_endpoint, methods=["POST"], include_in_schema=False)
    return True


def runners(hub: Hub) -> list[Callable[[], Awaitable[None]]]:
    if not socket_configured(hub.settings):
        return []
    return [transport_for(hub).run_socket_mode]
