"""Which requests the app answers, by where they come from and which host they name.

Demo mode (no client configured) has no authentication, so the app itself — however it was
started, ``python -m core serve`` or a bare ``uvicorn core.app:app --host 0.0.0.0`` — answers
only a loopback peer that names a loopback host. The Host check also defeats DNS rebinding: a
web page on another origin that resolves its own name to 127.0.0.1 still sends its own name.

With authentication on, ``PUBLIC_URL`` and ``HUB_ALLOWED_HOSTS`` name the hosts the app may be
reached by; any other Host is refused (probes and scrapes by pod address excepted), so nothing
the app builds from Host — a redirect, a link — can point elsewhere.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from urllib.parse import urlsplit

from starlette.types import Scope

from core.errors import BadRequest, Forbidden, HubError

log = logging.getLogger("askhub.http")

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
# Kubernetes probes and Prometheus reach a pod by its address, whatever the public name is.
ANY_HOST_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def is_loopback(host: str) -> bool:
    """A loopback name or address (``localhost``, 127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(value: str) -> str:
    """The name in a Host header, without port or IPv6 brackets, lower-cased."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


class HostGuard:
    def __init__(self, demo: Callable[[], bool], public_url: str | None, allowed_hosts: list[str]) -> None:
        self._demo = demo  # read per request: a config reload can turn authentication on
        hosts = {host_name(h) for h in allowed_hosts}
        if public_url:
            hosts.add(host_name(urlsplit(public_url).netloc))
        self._allowed = frozenset(hosts | LOOPBACK_NAMES) if hosts else None
        self._told = False

    def refusal(self, scope: Scope) -> HubError | None:
        """Why this request is not answered, or None."""
        host = host_name(_header(scope, b"host") or "")
        if self._demo():
            peer = (scope.get("client") or ("", 0))[0]
            if is_loopback(peer) and host in LOOPBACK_NAMES:
                return None
            if not self._told:
                self._told = True
                log.warning(
                    "local demo mode: refusing a request that is not from loopback to a loopback host; "
                    "configure a client key (HUB_API_KEYS) to serve other machines"
                )
            return Forbidden("local demo mode answers only http://localhost or http://127.0.0.1 on this machine")
        if self._allowed is not None and host not in self._allowed and scope["path"] not in ANY_HOST_PATHS:
            return BadRequest("unknown Host: this hub is reached by the names in PUBLIC_URL and HUB_ALLOWED_HOSTS")
        return None
