"""Who is asking: the result of authentication, the input of limits and usage."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    client: str  # the front end (portal, slack, an internal service) or "jwt"
    tenant: str  # the department that is limited and billed
    user: str  # the person: JWT sub, platform user, else the client itself
    scopes: frozenset[str]
    exempt_when_backend_down: bool = False
    # The knowledge-base collections this asker may be answered from (core/auth/collections.py);
    # None only for a principal an adapter's request stands for, resolved by AskService.
    collections: frozenset[str] | None = None

    def allows(self, scope: str) -> bool:
        return scope in self.scopes
