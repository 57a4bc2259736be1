"""Webhooks as the WhatsApp Cloud API sends them, signed as Meta signs them, for the tests of the
WhatsApp door (shared here so no test module imports another).

``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body with the app secret>``; ``post``
sends a payload to the hub's ``/whatsapp/webhook``; ``whatsapp_env`` points the hub at a
``FakeWhatsApp``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import TYPE_CHECKING, Any

import httpx

from .whatsapp_api import ACCESS_TOKEN, PHONE_NUMBER_ID, FakeWhatsApp

if TYPE_CHECKING:
    from tests.conftest import HubServer

__all__ = ["APP_SECRET", "VERIFY_TOKEN", "button", "message", "new_user", "payload", "post", "sign", "whatsapp_env"]

APP_SECRET = "whatsapp-app-secret-for-tests"
VERIFY_TOKEN = "whatsapp-verify-token-for-tests"


def whatsapp_env(fake: FakeWhatsApp) -> dict[str, str]:
    return {"WHATSAPP_ACCESS_TOKEN": ACCESS_TOKEN, "WHATSAPP_APP_SECRET": APP_SECRET,
            "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN, "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
            "WHATSAPP_API_URL": fake.url}  # fmt: skip


def new_user() -> str:
    return "1555" + str(uuid.uuid4().int)[:8]


def message(
    user: str, text: str | None = None, *, kind: str = "text", age_sec: float = 0, **fields: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"from": user, "id": f"wamid.{uuid.uuid4().hex}", "timestamp": str(int(time.time() - age_sec)),
                            "type": kind, **fields}  # fmt: skip
    if kind == "text":
        body["text"] = {"body": text}
    return body


def button(user: str, reply_id: str, title: str) -> dict[str, Any]:
    return message(user, kind="interactive", interactive={"type": "button_reply",
                                                           "button_reply": {"id": reply_id, "title": title}})  # fmt: skip


def payload(*messages: dict[str, Any], statuses: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000000", "phone_number_id": PHONE_NUMBER_ID},
        "contacts": [{"profile": {"name": "Customer"}, "wa_id": m["from"]} for m in messages],
        "messages": list(messages),
    }
    if statuses:
        value["statuses"] = statuses
    return {"object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}]}  # fmt: skip


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post(server: HubServer, data: dict[str, Any], *, signature: str | None = "valid") -> httpx.Response:
    body = json.dumps(data).encode()
    headers = {"Content-Type": "application/json"}
    if signature == "valid":
        headers["X-Hub-Signature-256"] = sign(body)
    elif signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return httpx.post(f"{server.url}/whatsapp/webhook", content=body, headers=headers, timeout=10)
