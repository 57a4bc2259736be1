"""Client API keys: stored and compared as SHA-256 digests, never as the keys themselves.

A key is looked up by its digest (the digest of a random 256-bit key reveals nothing useful
by timing), then compared with ``hmac.compare_digest`` so the check itself is constant-time.
A digest may carry ``expires`` (its last valid UTC day): rotation gives the old key an
overlap period, and a key that has run out is refused like an unknown one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime

from core.config import ClientSettings, KeyDigest, Settings

KEY_PREFIX = "ah_"
RECENT_KEYS = 1024
EXPIRY_WARNING_DAYS = 14  # a key used this close to its end is audited, so its owner can be told


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def today() -> date:
    """The current UTC day, the unit of key expiry (one function, so tests can move the clock)."""
    return datetime.now(UTC).date()


@dataclass(frozen=True, slots=True)
class Client:
    name: str
    tenant: str
    scopes: frozenset[str]
    settings: ClientSettings


@dataclass(frozen=True, slots=True)
class KeyMatch:
    """A known key: its client and its digest entry (which says when it ends)."""

    client: Client
    key: KeyDigest

    def days_left(self, on: date) -> int | None:
        """Days until the key's last valid day (0: today is the last), negative once expired."""
        return None if self.key.expires is None else (self.key.expires - on).days


@dataclass(frozen=True, slots=True)
class KeyExpiry:
    """One row of the admin's keys-by-expiry list: who and when, never key material."""

    client: str
    tenant: str
    fingerprint: str  # the digest's first 12 hex characters: tells two keys of a client apart
    expires: date | None
    days_left: int | None
    state: str  # "expired", "expiring" (within EXPIRY_WARNING_DAYS), "valid" or "no_expiry"


class ClientRegistry:
    """Every configured client, by key digest and by name; rebuilt when the config changes."""

    def __init__(self, settings: Settings) -> None:
        self._by_digest: dict[str, KeyMatch] = {}
        self._by_name: dict[str, Client] = {}
        self._recent: dict[str, KeyMatch] = {}  # known keys only, so it cannot be filled by guessing
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
        for key in cfg.key_sha256:
            self._by_digest[key.sha256] = KeyMatch(client, key)

    def __len__(self) -> int:
        return len(self._by_name)

    def by_key(self, key: str) -> KeyMatch | None:
        """The key's client and entry, expired or not (the caller decides and audits)."""
        known = self._recent.get(key)
        if known is not None:  # a key seen moments ago: no need to hash it again
            return known
        d = digest(key)
        found = self._by_digest.get(d)
        if found is None or not hmac.compare_digest(found.key.sha256, d):
            return None
        if len(self._recent) >= RECENT_KEYS:
            self._recent.clear()
        self._recent[key] = found
        return found

    def by_name(self, name: str) -> Client | None:
        return self._by_name.get(name)

    def expiries(self, on: date) -> list[KeyExpiry]:
        """Every key, soonest end first (keys without an end last)."""
        rows = []
        for match in self._by_digest.values():
            left = match.days_left(on)
            state = (
                "no_expiry"
                if left is None
                else "expired"
                if left < 0
                else "expiring"
                if left <= EXPIRY_WARNING_DAYS
                else "valid"
            )
            rows.append(KeyExpiry(match.client.name, match.client.tenant, match.key.sha256[:12], match.key.expires,
                                  left, state))  # fmt: skip
        return sorted(rows, key=lambda r: (r.expires is None, r.expires or date.max, r.client))
