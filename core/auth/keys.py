"""Client API keys: stored and compared as SHA-256 digests, never as the keys themselves.

A key is looked up by its digest (the digest of a random 256-bit key reveals nothing useful
by timing), then compared with ``hmac.compare_digest`` so the check itself is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from core.config import ClientSettings, Settings

KEY_PREFIX = "ah_"
RECENT_KEYS = 1024


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Client:
    name: str
    tenant: str
    scopes: frozenset[str]
    settings: ClientSettings


class ClientRegistry:
    """Every configured client, by key digest and by name; rebuilt when the config changes."""

    def __init__(self, settings: Settings) -> None:
        self._by_digest: dict[str, tuple[str, Client]] = {}
        self._by_name: dict[str, Client] = {}
        self._recent: dict[str, Client] = {}  # valid keys only, so it cannot be filled by guessing
        for entry in settings.hub_api_keys:
            name, tenant, key = (part.strip() for part in entry.split(":"))
            self._add(ClientSettings(name=name, tenant=tenant, key_sha256=[digest(key)]))
        for client in settings.clients:
            self._add(client)

    def _add(self, cfg: ClientSettings) -> None:
        existing = self._by_name.get(cfg.name)
        if existing is not None:  # the same client in HUB_API_KEYS and YAML: merge its keys
            cfg = existing.settings.model_copy(update={"key_sha256": [*existing.settings.key_sha256, *cfg.key_sha256]})
        client = Client(cfg.name, cfg.tenant, frozenset(cfg.scopes), cfg)
        self._by_name[cfg.name] = client
        for d in cfg.key_sha256:
            self._by_digest[d] = (d, client)

    def __len__(self) -> int:
        return len(self._by_name)

    def by_key(self, key: str) -> Client | None:
        known = self._recent.get(key)
        if known is not None:  # a key seen moments ago: no need to hash it again
            return known
        d = digest(key)
        found = self._by_digest.get(d)
        if found is None or not hmac.compare_digest(found[0], d):
            return None
        if len(self._recent) >= RECENT_KEYS:
            self._recent.clear()
        self._recent[key] = found[1]
        return found[1]

    def by_name(self, name: str) -> Client | None:
        return self._by_name.get(name)
