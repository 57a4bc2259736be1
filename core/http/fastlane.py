"""A short path for the hot routes, in front of FastAPI's routing.

FastAPI's per-request machinery (dependency solving, its own middleware layers) cost about
half of the CPU of a cached /ask on this machine kind. The hot routes are ordinary
``Request -> Response`` functions registered with FastAPI as usual — for /openapi.json
and for every other method — and this lane calls them directly for their own method.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class LaneRoute:
    path: str  # also the metrics' route label, like a FastAPI route's path
    method: str
    handler: Handler


class FastLane:
    def __init__(self, app: ASGIApp, routes: list[LaneRoute]) -> None:
        self.app = app
        self._routes = {(r.method, r.path): r for r in routes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            route = self._routes.get((scope["method"], scope["path"]))
            if route is not None:
                scope["route"] = route
                response = await route.handler(Request(scope, receive))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
