"""JWT verification for web and mobile users (PyJWT).

The algorithm comes from the configured key chosen by ``kid``, never from the token: that
closes both ``alg: none`` and algorithm confusion (an HS256 token "signed" with a public
RSA key). Several keys may be live at once, so keys rotate with an overlap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt

from core.config import ConfigError, JWTSettings
from core.secrets import secret as secret_value


class TokenError(Exception):
    """The token is not acceptable; the message is safe to show the caller."""


@dataclass(frozen=True, slots=True)
class Claims:
    subject: str
    tenant: str
    scopes: frozenset[str]
    collections: frozenset[str] | None = None  # the collections claim, when configured and present


def looks_like_jwt(value: str) -> bool:
    return value.count(".") == 2 and value.startswith("eyJ")


class TokenVerifier:
    def __init__(self, settings: JWTSettings) -> None:
        self._settings = settings
        self._keys: dict[str, tuple[str, Any]] = {}
        for key in settings.keys:
            if key.algorithm.startswith("HS"):
                secret = (secret_value(key.secret_env) if key.secret_env else None) or ""
                if not secret:
                    raise ConfigError(f"jwt.keys.{key.kid}: the variable {key.secret_env} (secret_env) is not set")
                material: Any = secret.encode()
            else:
                if not key.public_key:
                    raise ConfigError(f"jwt.keys.{key.kid}: an {key.algorithm} key needs public_key (PEM)")
                material = jwt.algorithms.get_default_algorithms()[key.algorithm].prepare_key(key.public_key)
            self._keys[key.kid] = (key.algorithm, material)

    def verify(self, token: str) -> Claims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenError("malformed token") from None
        kid = header.get("kid")
        if not isinstance(kid, str) or kid not in self._keys:
            raise TokenError("unknown signing key")
        algorithm, material = self._keys[kid]
        if header.get("alg") != algorithm:
            raise TokenError("token algorithm does not match its key")
        s = self._settings
        try:
            claims = jwt.decode(
                token,
                material,
                algorithms=[algorithm],
                audience=s.audience,
                issuer=s.issuer,
                leeway=s.leeway_sec,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("token expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenError("token not valid yet") from None
        except jwt.PyJWTError as exc:
            raise TokenError(f"invalid token ({type(exc).__name__})") from None
        scope = claims.get("scope", claims.get("scp", ""))
        scopes = frozenset(scope.split()) if isinstance(scope, str) else _names(scope, "scope")
        tenant = claims.get(s.tenant_claim)
        collections = None
        if s.collections_claim is not None and s.collections_claim in claims:
            collections = _names(claims[s.collections_claim], s.collections_claim)
        return Claims(
            subject=str(claims["sub"]),
            tenant=tenant if isinstance(tenant, str) and tenant else s.default_tenant,
            scopes=scopes,
            collections=collections,
        )


def _names(value: Any, claim: str) -> frozenset[str]:
    """A claim that must be a list of strings; anything else is a bad token, not a server error."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TokenError(f"claim '{claim}' must be a list of strings")
    return frozenset(value)
