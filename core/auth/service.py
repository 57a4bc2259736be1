"""From request credentials to a Principal, or a 401/403 the caller can act on."""

from __future__ import annotations

import hashlib
import logging
from datetime import date

from core.auth import keys
from core.auth.collections import CollectionPolicy
from core.auth.keys import ClientRegistry, KeyMatch
from core.auth.principal import Principal
from core.auth.tokens import TokenError, TokenVerifier, looks_like_jwt
from core.config import Settings
from core.errors import Forbidden, Unauthorized
from core.metrics import KEYS_EXPIRING

AUDIT = logging.getLogger("askhub.audit")
ALL_SCOPES = frozenset({"ask", "chat", "admin"})


def fingerprint(value: str) -> str:
    """A short stable hash: lets operators correlate log lines without holding the value."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:16]


class Authenticator:
    def __init__(self, settings: Settings) -> None:
        self.demo = not settings.auth_enabled
        self.clients = ClientRegistry(settings)
        self.collections = CollectionPolicy(settings)
        self.tokens = TokenVerifier(settings.jwt) if settings.jwt else None
        self._jwt_client = settings.jwt.client if settings.jwt else "jwt"
        self._warned: set[tuple[str, date]] = set()  # (key digest, day) already audited as expiring

    def authenticate(self, credential: str | None, *, scope: str, route: str, peer: str) -> Principal:
        """``credential`` is the bearer value or X-API-Key; ``peer`` the client address."""
        if self.demo:
            # Local demo mode: loopback only (enforced at start-up), everyone is the local user.
            return Principal("local", "default", f"local:{peer}", ALL_SCOPES,
                             collections=self.collections.readable("default"))  # fmt: skip
        if not credential:
            self._fail("missing_credentials", route, peer)
            raise Unauthorized("send a client key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
        principal = self._principal(credential, route, peer)
        if not principal.allows(scope):
            AUDIT.warning(
                "forbidden",
                extra={"event": "forbidden", "client": principal.client, "route": route, "scope": scope},
            )
            raise Forbidden(f"this credential does not allow the '{scope}' scope")
        return principal

    def _principal(self, credential: str, route: str, peer: str) -> Principal:
        if self.tokens is not None and looks_like_jwt(credential):
            try:
                claims = self.tokens.verify(credential)
            except TokenError as exc:
                self._fail(f"jwt: {exc}", route, peer)
                raise Unauthorized(str(exc)) from None
            readable = self.collections.readable(claims.tenant, self._jwt_client, claims.collections)
            return Principal(self._jwt_client, claims.tenant, claims.subject, claims.scopes, collections=readable)
        match = self.clients.by_key(credential)
        left = match.days_left(keys.today()) if match is not None else None
        if match is None or (left is not None and left < 0):
            self._fail("unknown_key" if match is None else "expired_key", route, peer)
            raise Unauthorized("invalid credentials")  # an expired key is refused like a wrong one
        client = match.client
        if left is not None and left <= keys.EXPIRY_WARNING_DAYS:
            self._expiring(match, left, route)
        return Principal(
            client.name,
            client.tenant,
            client.name,
            client.scopes,
            client.settings.exempt_when_backend_down,
            collections=self.collections.readable(client.tenant, client.name),
        )

    def _expiring(self, match: KeyMatch, days_left: int, route: str) -> None:
        """Count every use of a key near its end; audit it once a day per key and process."""
        KEYS_EXPIRING.labels(match.client.name).inc()
        mark = (match.key.sha256, keys.today())
        if mark in self._warned:
            return
        if len(self._warned) > 10_000:
            self._warned.clear()
        self._warned.add(mark)
        AUDIT.warning(
            "key expiring",
            extra={"event": "key_expiring", "client": match.client.name, "tenant": match.client.tenant,
                   "key": match.key.sha256[:12], "expires": str(match.key.expires), "days_left": days_left,
                   "route": route},
        )  # fmt: skip

    @staticmethod
    def _fail(reason: str, route: str, peer: str) -> None:
        AUDIT.warning(
            "auth failed",
            extra={"event": "auth_failed", "reason": reason, "route": route, "peer": fingerprint(peer)},
        )
