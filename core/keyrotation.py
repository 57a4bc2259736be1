"""``python -m core keys rotate``: a new key for a client, with an overlap for the old one.

The hub stores only digests, so rotation is a config change the operator pastes: the
client's entry with the new digest added and every current key given an ``expires`` at the
end of the overlap. Both keys work until then; after it the old one is refused like any
unknown key, and while it is still used in its last 14 days the audit log says who uses it.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Any

import yaml

from core.auth import ClientRegistry, digest, new_key
from core.auth.keys import today
from core.config import Settings


def rotate(settings: Settings, client_name: str, *, overlap_days: int, valid_days: int) -> int:
    if overlap_days < 0 or valid_days < 0:
        print("--overlap-days and --valid-days must be 0 or more", file=sys.stderr)
        return 2
    client = ClientRegistry(settings).by_name(client_name)
    if client is None:
        print(f"no client named {client_name!r} in HUB_CONFIG or HUB_API_KEYS", file=sys.stderr)
        return 2
    now = today()
    old_end = now + timedelta(days=overlap_days)
    keys: list[dict[str, Any]] = []
    for entry in client.settings.key_sha256:
        if overlap_days == 0 or (entry.expires is not None and entry.expires < now):
            # 0 days of overlap means now: the old keys leave the entry (an ``expires`` of today
            # would keep them valid to the end of the UTC day). Already refused ones go too.
            continue
        end = old_end if entry.expires is None else min(entry.expires, old_end)
        keys.append({"sha256": entry.sha256, "expires": end})
    key = new_key()
    keys.append({"sha256": digest(key), **({"expires": now + timedelta(days=valid_days)} if valid_days else {})})
    entry_yaml = client.settings.model_dump(mode="python", exclude_defaults=True, exclude={"key_sha256"})
    entry_yaml = {"name": client.name, "tenant": client.tenant, "scopes": sorted(client.scopes), **entry_yaml,
                  "key_sha256": keys}  # fmt: skip
    print(f"New key for client '{client.name}' (tenant '{client.tenant}'). It is shown only now:\n\n    {key}\n")
    overlap = (
        "The old key stops working as soon as the file is saved (no overlap)"
        if overlap_days == 0
        else f"The old key keeps working through {old_end.isoformat()} ({overlap_days} days of overlap)"
    )
    print(
        f"Replace the '{client.name}' entry of the clients list in the HUB_CONFIG file with the lines below"
        f" (only hashes are stored).\n{overlap}; the new one works as soon as the file is saved.\n"
    )
    print(yaml.safe_dump({"clients": [entry_yaml]}, sort_keys=False, allow_unicode=True), end="")
    if any(e.split(":")[0].strip() == client.name for e in settings.hub_api_keys):
        print(f"\nThe old key is also in HUB_API_KEYS: remove '{client.name}' from it once the new key is deployed.")
    return 0
