"""Who reads what: the knowledge-base collections an asker may be answered from.

A tenant names its collections (none named: all of them); a client narrows its tenant's list,
and a JWT may narrow further through a claim. The result is an intersection, so nothing below
the tenant can ever widen what the tenant may read.
"""

from __future__ import annotations

from core.config import Settings


class CollectionPolicy:
    def __init__(self, settings: Settings) -> None:
        self.all = frozenset(settings.collection_dirs())
        self._tenants = {name: frozenset(t.collections) for name, t in settings.tenants.items() if t.collections}
        self._clients = {c.name: frozenset(c.collections) for c in settings.clients if c.collections is not None}

    def readable(self, tenant: str, client: str | None = None, claim: frozenset[str] | None = None) -> frozenset[str]:
        allowed = self._tenants.get(tenant, self.all)
        if client is not None and client in self._clients:
            allowed &= self._clients[client]
        if claim is not None:
            allowed &= claim
        return allowed
