"""A real-HTTP fake of a help center: pages, sitemap.xml, robots.txt, ETags, and scripted trouble.

Pages are set with ``page(path, title, body)`` and can be edited or removed between syncs. It
answers conditional GETs like a real server (``If-None-Match`` → 304), lists every page in
``/sitemap.xml`` (with ``lastmod``), serves ``robots.txt`` when one is set, and can script
trouble: ``storm(n, retry_after)`` answers the next n page requests 429, ``fail(path)`` answers
500, ``hold(path)`` keeps a request open until ``release()`` (to kill a sync mid-read).
``redirect(path, to)`` answers a 302. Every request is recorded as ``(method, path, status)``.

    with FakeSite() as site:
        site.page("/help/returns", "Returns", "<p>Return within 30 days.</p>")
        ...  # sources: [{name: help, type: web, url: site.url + "/sitemap.xml"}]
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from dataclasses import dataclass

from aiohttp import web

from .server import LoopbackServer

__all__ = ["FakeSite"]

PAGE = """<!doctype html><html lang="en"><head><title>{title} | Help Center</title></head>
<body><nav><a href="/">Home</a> <a href="/help/contact">Contact</a></nav>
<main><article><h1>{title}</h1>{body}{links}</article></main>
<footer>Copyright 2026 Example Shop. All rights reserved.</footer></body></html>"""


@dataclass
class _Page:
    title: str
    body: str
    links: tuple[str, ...] = ()
    lastmod: str = "2026-12-01"

    def html(self) -> str:
        links = "".join(f'<p><a href="{href}">more</a></p>' for href in self.links)
        return PAGE.format(title=self.title, body=self.body, links=links)

    def etag(self) -> str:
        return '"' + hashlib.sha256(self.html().encode()).hexdigest()[:16] + '"'


class FakeSite(LoopbackServer):
    handler_cancellation = True

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._pages: dict[str, _Page] = {}
        self._robots: str | None = None
        self._storm = 0
        self._retry_after = "0"
        self._failing: set[str] = set()
        self._held: set[str] = set()
        self._redirects: dict[str, str] = {}
        self._release: asyncio.Event | None = None
        self.waiting = threading.Event()  # set when a held request has arrived
        self.requests: list[tuple[str, str, int]] = []
        self.in_sitemap: set[str] | None = None  # None: every page

    # -- what the site holds ---------------------------------------------------------------------

    def page(
        self, path: str, title: str, body: str, *, links: tuple[str, ...] = (), lastmod: str = "2026-12-01"
    ) -> None:
        with self._lock:
            self._pages[path] = _Page(title, body, links, lastmod)

    def remove(self, path: str) -> None:
        with self._lock:
            self._pages.pop(path, None)

    def robots(self, text: str) -> None:
        self._robots = text

    def storm(self, count: int, retry_after: str = "0") -> None:
        with self._lock:
            self._storm, self._retry_after = count, retry_after

    def fail(self, path: str) -> None:
        self._failing.add(path)

    def heal(self) -> None:
        self._failing.clear()

    def hold(self, path: str) -> None:
        self._held.add(path)

    def redirect(self, path: str, to: str) -> None:
        self._redirects[path] = to

    def served(self, status: int) -> list[str]:
        """Paths of page requests (not sitemap or robots) answered with ``status``."""
        with self._lock:
            return [p for m, p, s in self.requests if s == status and p not in ("/sitemap.xml", "/robots.txt")]

    # -- the server ------------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        self._release = asyncio.Event()
        app = web.Application()
        app.router.add_get("/robots.txt", self._robots_txt)
        app.router.add_get("/sitemap.xml", self._sitemap)
        app.router.add_get("/{path:.*}", self._page)
        return app

    def release(self) -> None:
        self._held.clear()
        if self._release is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._release.set)

    async def before_shutdown(self) -> None:
        if self._release is not None:
            self._release.set()

    def _record(self, request: web.Request, status: int) -> None:
        with self._lock:
            self.requests.append((request.method, request.path, status))

    async def _robots_txt(self, request: web.Request) -> web.Response:
        if self._robots is None:
            self._record(request, 404)
            return web.Response(status=404, text="not found")
        self._record(request, 200)
        return web.Response(text=self._robots, content_type="text/plain")

    async def _sitemap(self, request: web.Request) -> web.Response:
        with self._lock:
            pages = {p: pg for p, pg in self._pages.items() if self.in_sitemap is None or p in self.in_sitemap}
        urls = "".join(
            f"<url><loc>{self.url}{path}</loc><lastmod>{page.lastmod}</lastmod></url>" for path, page in pages.items()
        )
        self._record(request, 200)
        body = f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'
        return web.Response(text=body, content_type="application/xml")

    async def _page(self, request: web.Request) -> web.Response:
        path = request.path
        with self._lock:
            storm = self._storm > 0 and path in self._pages
            if storm:
                self._storm -= 1
        if storm:
            self._record(request, 429)
            return web.Response(status=429, headers={"Retry-After": self._retry_after}, text="slow down")
        if path in self._failing:
            self._record(request, 500)
            return web.Response(status=500, text="boom")
        if path in self._redirects:
            self._record(request, 302)
            return web.Response(status=302, headers={"Location": self._redirects[path]})
        if path in self._held:
            self.waiting.set()
            assert self._release is not None
            await self._release.wait()
        with self._lock:
            page = self._pages.get(path)
        if page is None:
            self._record(request, 404)
            return web.Response(status=404, text="not found")
        etag = page.etag()
        if request.headers.get("If-None-Match") == etag:
            self._record(request, 304)
            return web.Response(status=304, headers={"ETag": etag})
        self._record(request, 200)
        return web.Response(text=page.html(), content_type="text/html", headers={"ETag": etag})
