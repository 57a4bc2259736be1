"""Who reads what: the knowledge-base collections an asker may be answered from.

A tenant names its collections; a client narrows its tenant's list, and a JWT may narrow
further through a claim. The result is an intersection, so nothing below the tenant can ever
widen what the tenant may read. The wall fails closed: once ``collections`` is configured, a
tenant that names none (one met only in a key, a JWT or a platform map, ``default`` included)
reads none. Without the section there is one collection, ``default``, read by every tenant.
"""

from __future__ import annotations

from core.config import Settings


class CollectionPolicy:
    def __init__(self, settings: Settings) -> None:
        self.all = frozenset(settings.collection_dirs())
        self.walled = bool(settings.collections)  # collections configured: a tenant reads only what it names
        self._tenants = {name: frozenset(t.collections) for name, t in settings.tenants.items() if t.collections}
        self._clients = {c.name: frozenset(c.collections) for c in settings.clients if c.collections is not None}

    def of_tenant(self, tenant: str) -> frozenset[str]:
        """What the tenant itself may read (before a client or a token narrows it)."""
        named = self._tenants.get(tenant)
        if named is not None:
            return named
        return frozenset() if self.walled else self.all

    def readable(self, tenant: str, client: str | None = None, claim: frozenset[str] | None = None) -> frozenset[str]:
        allowed = self.of_tenant(tenant)
        if client is not None and client in self._clients:
            allowed &= self._clients[client]
        if claim is not None:
            allowed &= claim
        return allowed
