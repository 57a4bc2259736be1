"""Telegram front door (python-telegram-bot, async): the webhook ``POST /telegram/webhook``.

On when TELEGRAM_BOT_TOKEN and TELEGRAM_SECRET_TOKEN are set. Telegram calls the webhook (set it
with setWebhook and the same secret token, docs/doors.md), so there is no client to run: the app
serves it (``python -m core serve`` or uvicorn).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.adapters import Loaded
    from core.inbox.door import Door


def load(door: Door, *, clients: bool) -> Loaded | None:
    token, secret = door.settings.telegram_bot_token, door.settings.telegram_secret_token
    if token is None or secret is None or not token.get_secret_value() or not secret.get_secret_value():
        return None
    from adapters.telegram.transport import JOB, TelegramBot
    from core.adapters import Loaded

    bot = TelegramBot(door, token.get_secret_value(), secret.get_secret_value())
    door.inbox.declare(JOB, bot.handle)
    if door.handoff.enabled:  # agents' replies and the end notice reach the private chat
        from adapters.telegram.handoff import TelegramCustomer

        door.handoff.register_customer("telegram", TelegramCustomer(bot.api, door.inbox))
    door.on_close(bot.api.close)
    return Loaded("telegram", routes={"/telegram/webhook": bot.webhook})
