"""``python -m adapters.whatsapp``: WhatsApp needs no process of its own (it calls a webhook)."""

import sys

print(
    "WhatsApp talks to the hub through its webhook, GET and POST /whatsapp/webhook, which the hub app "
    "serves (python -m core serve) when WHATSAPP_ACCESS_TOKEN, WHATSAPP_APP_SECRET, WHATSAPP_VERIFY_TOKEN "
    "and WHATSAPP_PHONE_NUMBER_ID are set.",
    file=sys.stderr,
)
sys.exit(0)
