"""WhatsApp Business front door (Cloud API, plain httpx): ``GET`` and ``POST /whatsapp/webhook``.

On when WHATSAPP_ACCESS_TOKEN, WHATSAPP_APP_SECRET, WHATSAPP_VERIFY_TOKEN and
WHATSAPP_PHONE_NUMBER_ID are set. WhatsApp calls the webhook, so there is no client to run: the
app serves it (``python -m core serve`` or uvicorn). See docs/doors.md for the set-up at Meta.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.adapters import Loaded
    from core.inbox.door import Door


def load(door: Door, *, clients: bool) -> Loaded | None:
    s = door.settings
    secrets = (s.whatsapp_access_token, s.whatsapp_app_secret, s.whatsapp_verify_token)
    if not s.whatsapp_phone_number_id or not all(x is not None and x.get_secret_value() for x in secrets):
        return None
    from adapters.whatsapp.transport import JOB, WhatsAppBot
    from core.adapters import Loaded

    token, secret, verify = (x.get_secret_value() for x in secrets)  # type: ignore[union-attr]
    bot = WhatsAppBot(door, access_token=token, app_secret=secret, verify_token=verify,
                      phone_number_id=s.whatsapp_phone_number_id)  # fmt: skip
    door.inbox.declare(JOB, bot.handle)
    if door.handoff.enabled:  # agents' replies and the end notice reach the customer's chat
        from adapters.whatsapp.handoff import WhatsAppCustomer

        door.handoff.register_customer("whatsapp", WhatsAppCustomer(bot.api, bot.delivery, door.inbox))
    door.on_close(bot.api.close)
    return Loaded("whatsapp", routes={"/whatsapp/webhook": bot.webhook}, get_routes={"/whatsapp/webhook": bot.verify})
