"""``python -m adapters.line``: LINE needs no process of its own (it has no socket mode)."""

import sys

print(
    "LINE talks to the hub through its webhook, POST /line/webhook, which the hub app serves "
    "(python -m core serve) when LINE_CHANNEL_SECRET and LINE_CHANNEL_ACCESS_TOKEN are set.",
    file=sys.stderr,
)
sys.exit(0)
