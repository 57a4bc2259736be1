"""``python -m adapters.discord``: the Discord gateway bot as a process of its own.

It shares the hub's state (limits, cache, dedupe, usage) with the other processes through
REDIS_URL; the HTTP interactions endpoint is served by the app (``python -m core serve``).
Stops cleanly on SIGTERM / SIGINT.
"""

from __future__ import annotations

import sys

from core.adapters import run_alone
from core.config import Settings


def _token_missing(settings: Settings) -> str | None:
    token = settings.discord_bot_token
    return None if token is not None and token.get_secret_value() else "the gateway bot needs DISCORD_BOT_TOKEN"


if __name__ == "__main__":
    sys.exit(run_alone("adapters.discord", "discord gateway bot", _token_missing))
