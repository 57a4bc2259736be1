"""``python -m adapters.telegram``: Telegram needs no process of its own (it calls a webhook)."""

import sys

print(
    "Telegram talks to the hub through its webhook, POST /telegram/webhook, which the hub app serves "
    "(python -m core serve) when TELEGRAM_BOT_TOKEN and TELEGRAM_SECRET_TOKEN are set.",
    file=sys.stderr,
)
sys.exit(0)
