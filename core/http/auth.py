"""Credentials from an HTTP request, checked by the hub's Authenticator."""

from __future__ import annotations

from starlette.requests import Request

from core.auth.principal import Principal


def credential(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return request.headers.get("x-api-key") or None


def principal(request: Request, scope: str) -> Principal:
    matched = request.scope.get("route")
    route = matched.path if matched is not None else request.url.path
    peer = request.client.host if request.client else "unknown"
    return request.app.state.hub.auth.authenticate(credential(request), scope=scope, route=route, peer=peer)
