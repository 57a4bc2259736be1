"""Who may post to ``/teams/messages``: the Bot Framework, proven by the JWT on each activity.

The token must be RS256, signed by a key of the OpenID metadata's ``jwks_uri``
(``TEAMS_OPENID_URL``), issued by ``https://api.botframework.com``, for this bot
(audience = ``TEAMS_APP_ID``), current (five minutes of clock skew, as the SDKs allow), and its
``serviceurl`` claim must be the activity's ``serviceUrl``: the bot sends its bearer token only
where the Bot Framework said. Keys are cached for a day; a token signed with a key the cache
does not know refreshes them (keys roll), at most once a second, and a key id still unknown
after that is refused without a fetch for five minutes: a flood of forged tokens cannot make the
hub hammer the metadata endpoint.

PyJWT does the cryptography; the metadata and keys are fetched with httpx (async), because the
SDKs' validators fetch them synchronously (Teams SDK: on the event loop) and hard-code (Agents SDK) or derive
by string substitution (Teams SDK) the keys' URL — see docs/teams.md.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
import jwt

log = logging.getLogger("askhub.teams")

ISSUER = "https://api.botframework.com"
LEEWAY_SEC = 300
KEYS_TTL_SEC = 86400.0
MIN_REFRESH_SEC = 1.0  # unknown key ids refresh the keys at most this often
UNKNOWN_SEC = 300.0  # a key id still unknown after a refresh is refused without one for this long
MAX_UNKNOWN = 1000


class Unverified(Exception):
    """The request is not from the Bot Framework (a short reason, safe to log)."""


class BotFrameworkVerifier:
    def __init__(self, app_id: str, openid_url: str, client: httpx.AsyncClient) -> None:
        self._app_id, self._openid_url, self._http = app_id, openid_url, client
        self._keys: dict[str, tuple[jwt.PyJWK, list[str]]] = {}
        self._fetched_at: float | None = None
        self._rolled_at: float | None = None  # the last refresh an unknown key id caused
        self._unknown: dict[str, float] = {}
        self._lock = asyncio.Lock()

    async def verify(self, authorization: str, service_url: str, channel_id: str) -> dict[str, Any]:
        """The token's claims; raises ``Unverified``."""
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unverified("no bearer token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise Unverified("malformed token") from None
        if header.get("alg") != "RS256":
            raise Unverified("not RS256")
        found = await self._key(str(header.get("kid") or ""))
        if found is None:
            raise Unverified("unknown signing key")
        key, endorsements = found
        if endorsements and channel_id not in endorsements:
            raise Unverified("key not endorsed for the channel")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=self._app_id,
                issuer=ISSUER,
                leeway=LEEWAY_SEC,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.InvalidTokenError as exc:
            raise Unverified(type(exc).__name__) from None
        if str(claims.get("serviceurl") or "").rstrip("/") != service_url.rstrip("/"):
            raise Unverified("service URL does not match the token")
        return claims

    async def _key(self, kid: str) -> tuple[jwt.PyJWK, list[str]] | None:
        if not kid:
            return None
        if kid in self._keys and not self._older_than(KEYS_TTL_SEC):
            return self._keys[kid]
        async with self._lock:  # one fetch for every request waiting on it
            if kid in self._keys and not self._older_than(KEYS_TTL_SEC):
                return self._keys[kid]
            now = time.monotonic()
            if now - self._unknown.get(kid, -UNKNOWN_SEC) < UNKNOWN_SEC:
                return None  # looked for moments ago, after a refresh: not the Bot Framework's
            rolled = self._fetched_at is not None and kid not in self._keys and not self._older_than(KEYS_TTL_SEC)
            if rolled and self._rolled_at is not None and now - self._rolled_at < MIN_REFRESH_SEC:
                return None  # another unknown key refreshed them just now
            await self._refresh()
            if rolled:
                self._rolled_at = now
            if kid not in self._keys:
                self._unknown[kid] = now
                while len(self._unknown) > MAX_UNKNOWN:
                    self._unknown.pop(next(iter(self._unknown)))
        return self._keys.get(kid)

    def _older_than(self, seconds: float) -> bool:
        return self._fetched_at is None or time.monotonic() - self._fetched_at > seconds

    async def _refresh(self) -> None:
        try:
            metadata = (await self._http.get(self._openid_url)).raise_for_status().json()
            keys = (await self._http.get(str(metadata["jwks_uri"]))).raise_for_status().json()["keys"]
        except (httpx.HTTPError, KeyError, TypeError, ValueError) as exc:
            log.warning("Bot Framework signing keys not fetched", extra={"exc": type(exc).__name__})
            return  # the cached keys stay; an unknown key is refused
        fresh: dict[str, tuple[jwt.PyJWK, list[str]]] = {}
        for entry in keys:
            try:
                fresh[str(entry["kid"])] = (jwt.PyJWK(entry, algorithm="RS256"), list(entry.get("endorsements") or []))
            except (jwt.PyJWKError, KeyError, TypeError):
                continue
        self._keys, self._fetched_at = fresh, time.monotonic()
