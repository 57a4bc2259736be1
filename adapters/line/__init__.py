"""LINE front door (line-bot-sdk v3, async): the webhook ``POST /line/webhook`` served by the hub app.

On when LINE_CHANNEL_SECRET and LINE_CHANNEL_ACCESS_TOKEN are set. LINE has no socket mode, so
there is no client to run: the webhook is served by the app (``python -m core serve`` or uvicorn).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the SDK loads only when LINE is configured: it takes seconds to import
    from core.adapters import Loaded
    from core.inbox.door import Door


def load(door: Door, *, clients: bool) -> Loaded | None:
    secret, token = door.settings.line_channel_secret, door.settings.line_channel_access_token
    if secret is None or token is None or not secret.get_secret_value() or not token.get_secret_value():
        return None
    from adapters.line.transport import JOB, LineBot
    from core.adapters import Loaded

    bot = LineBot(door, secret.get_secret_value(), token.get_secret_value())
    door.inbox.declare(JOB, bot.handle)
    if door.handoff.enabled:  # agents' replies and the end notice reach LINE users by push
        from adapters.line.handoff import LineCustomer

        door.handoff.register_customer("line", LineCustomer(bot.api.push))
    door.on_close(bot.api.close)  # after the job queue has drained
    return Loaded("line", routes={"/line/webhook": bot.webhook})
