"""Authentication: client keys, JWTs, and the local demo mode."""

from __future__ import annotations

from core.auth.keys import Client, ClientRegistry, digest, new_key
from core.auth.principal import Principal
from core.auth.service import Authenticator

__all__ = ["Authenticator", "Client", "ClientRegistry", "Principal", "digest", "new_key"]
