"""LINE front door (line-bot-sdk v3, async): the webhook ``POST /line/webhook`` mounted in the hub app.

On when LINE_CHANNEL_SECRET and LINE_CHANNEL_ACCESS_TOKEN are set. LINE has no socket mode, so
there is no runner: the webhook is served by the app (``python -m core serve`` or uvicorn).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the SDK loads only when LINE is configured: it takes seconds to import
    from fastapi import FastAPI

    from core.hub import Hub


def _credentials(hub: Hub) -> tuple[str, str] | None:
    secret, token = hub.settings.line_channel_secret, hub.settings.line_channel_access_token
    if secret is None or token is None or not secret.get_secret_value() or not token.get_secret_value():
        return None
    return secret.get_secret_value(), token.get_secret_value()


def mount(app: FastAPI, hub: Hub) -> bool:
    credentials = _credentials(hub)
    if credentials is None:
        return False
    from adapters.line.transport import JOB, LineBot

    bot = LineBot(hub, *credentials)
    app.add_api_route("/line/webhook", bot.webhook, methods=["POST"], include_in_schema=False)
    hub.jobs.register(JOB, bot.handle)
    hub.on_close(bot.api.close)  # after the job queue has drained
    return True


def runners(hub: Hub) -> list[Callable[[], Awaitable[None]]]:
    return []
