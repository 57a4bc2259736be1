"""The ``web`` source: a help center or site, from its sitemap.xml or a crawl within its host.

What a sync reads: ``robots.txt`` (a page it disallows is not read, and leaves the index);
the sitemap (a sitemap index too) or, from a start page, every page linked within the same
host, breadth first; at most ``max_pages``. Each page is asked for with the ETag and
Last-Modified the previous sync saw, so an unchanged page costs a 304 and nothing else. The
main text comes out as Markdown — headings and tables kept, navigation and footers left —
through trafilatura, a library made for exactly this (its precision mode: on a short page
its default keeps the menu). The host ``url`` names is the only one
read: a link or a redirect to another host is never followed. 404 and 410 mean the page is
gone; 429 and 503 are waited out as ``Retry-After`` says (a few times); anything else fails
the sync, which then changes nothing.
"""

from __future__ import annotations

import asyncio
import email.utils
import fnmatch
import gzip
import logging
import time
import xml.etree.ElementTree as ElementTree
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urldefrag, urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import httpx

from core.config import SourceSettings
from core.sources.mirror import Page, SourceState

log = logging.getLogger("askhub.sources")
AGENT = "AskHub-sources/1.0"
REDIRECTS = 5
PATIENCE = 6  # answers of 429/503 one page may get before the sync gives up
MAX_WAIT_SEC = 60.0  # the longest Retry-After honoured; a longer one fails the sync (it is retried next time)
IN_FLIGHT = 4  # pages of a sitemap read at once (polite to the host, enough to hide its latency)
SITEMAP_DEPTH = 2  # a sitemap index of sitemaps, no deeper


class SyncFailed(Exception):
    """The source could not be read whole; the message says why (no secret, no page text)."""


@dataclass
class Listing:
    """What the source has now, against what the previous sync kept."""

    pages: dict[str, Page] = field(default_factory=dict)  # new or changed, by URL
    unchanged: set[str] = field(default_factory=set)
    gone: set[str] = field(default_factory=set)  # known before, removed at the source


@dataclass
class _Answer:
    status: int
    url: str
    headers: httpx.Headers
    body: bytes


class WebSource:
    def __init__(self, source: SourceSettings, *, client: httpx.AsyncClient | None = None) -> None:
        assert source.url is not None
        self._source = source
        self._start = source.url
        parts = urlsplit(source.url)
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._client = client
        self._robots: RobotFileParser | None = None

    async def read(self, state: SourceState) -> Listing:
        async with self._session() as client:
            self._robots = await self._read_robots(client)
            listing = Listing()
            if self._is_sitemap(self._start):
                urls, modified = await self._sitemap(client, self._start, 0)
                await self._fetch_all(client, [u for u in urls if self._wanted(u)], modified, state, listing)
                listing.gone |= {url for url in state.documents if url not in urls}
            else:
                await self._crawl(client, state, listing)
            listing.gone |= {url for url in state.documents if not self._wanted(url)}
            listing.gone -= set(listing.pages) | listing.unchanged
            return listing

    def _session(self) -> httpx.AsyncClient:
        if self._client is not None:
            return _Borrowed(self._client)  # type: ignore[return-value]
        return httpx.AsyncClient(timeout=20.0, follow_redirects=False, headers={"User-Agent": AGENT})

    def _is_sitemap(self, url: str) -> bool:
        path = urlsplit(url).path.lower()
        return path.endswith((".xml", ".xml.gz")) or "sitemap" in path.rsplit("/", 1)[-1]

    def _wanted(self, url: str) -> bool:
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" != self._origin:
            return False
        if self._robots is not None and not self._robots.can_fetch(AGENT, url):
            return False
        path = parts.path or "/"
        if self._source.include and not any(fnmatch.fnmatch(path, p) for p in self._source.include):
            return False
        return not any(fnmatch.fnmatch(path, p) for p in self._source.exclude)

    async def _read_robots(self, client: httpx.AsyncClient) -> RobotFileParser | None:
        answer = await self._get(client, f"{self._origin}/robots.txt", {})
        if answer.status != 200:
            return None  # no robots.txt (or none readable): everything may be read
        robots = RobotFileParser()
        robots.parse(answer.body.decode("utf-8", "replace").splitlines())
        return robots

    async def _sitemap(self, client: httpx.AsyncClient, url: str, depth: int) -> tuple[list[str], dict[str, str]]:
        answer = await self._get(client, url, {})
        if answer.status != 200:
            raise SyncFailed(f"sitemap {url} answered {answer.status}")
        body = gzip.decompress(answer.body) if answer.body[:2] == b"\x1f\x8b" else answer.body
        try:
            root = ElementTree.fromstring(body)
        except ElementTree.ParseError as exc:
            raise SyncFailed(f"sitemap {url} is not XML ({exc})") from None
        urls: list[str] = []
        modified: dict[str, str] = {}
        for node in root:
            loc = _child(node, "loc")
            if not loc:
                continue
            loc = urldefrag(loc.strip())[0]
            if _tag(root) == "sitemapindex":
                if depth + 1 >= SITEMAP_DEPTH or not loc.startswith(self._origin):
                    continue
                more, more_modified = await self._sitemap(client, loc, depth + 1)
                urls += more
                modified |= more_modified
            elif loc.startswith(self._origin + "/") or loc == self._origin:
                urls.append(loc)
                lastmod = _child(node, "lastmod")
                if lastmod:
                    modified[loc] = lastmod.strip()
        return list(dict.fromkeys(urls)), modified

    async def _fetch_all(
        self, client: httpx.AsyncClient, urls: list[str], modified: dict[str, str], state: SourceState, listing: Listing
    ) -> None:
        # A few pages in flight at once: a real host's latency, not our CPU, bounds a big sitemap.
        gate = asyncio.Semaphore(IN_FLIGHT)

        async def one(url: str) -> None:
            async with gate:
                await self._fetch_page(client, url, state, listing, modified.get(url))

        try:
            async with asyncio.TaskGroup() as group:
                for url in urls[: self._source.max_pages]:
                    group.create_task(one(url))
        except* SyncFailed as failed:  # the first page that failed says why; the others were cancelled
            raise failed.exceptions[0] from None
        # Pages past the limit are neither read nor removed: they stay as the last sync left them.
        listing.unchanged |= {u for u in urls[self._source.max_pages :] if u in state.documents}

    async def _crawl(self, client: httpx.AsyncClient, state: SourceState, listing: Listing) -> None:
        queue: deque[str] = deque([urldefrag(self._start)[0], *sorted(state.documents)])
        seen: set[str] = set()
        fetched = 0
        while queue and fetched < self._source.max_pages:
            url = queue.popleft()
            if url in seen or not (self._wanted(url) or url == self._start):
                continue
            seen.add(url)
            fetched += 1
            html = await self._fetch_page(client, url, state, listing, None)
            for link in _links(html, url) if html else ():
                if link not in seen and self._wanted(link):
                    queue.append(link)
        listing.unchanged |= {u for u in state.documents if u not in seen}

    async def _fetch_page(
        self, client: httpx.AsyncClient, url: str, state: SourceState, listing: Listing, lastmod: str | None
    ) -> bytes | None:
        """Read one page into the listing; its HTML (for a crawl's links) when it was read."""
        known = state.documents.get(url)
        conditional = {}
        if known and known.etag:
            conditional["If-None-Match"] = known.etag
        if known and known.last_modified:
            conditional["If-Modified-Since"] = known.last_modified
        answer = await self._get(client, url, conditional)
        if answer.status == 304 and known:
            listing.unchanged.add(url)
            return None
        if answer.status in (404, 410) or answer.status in (301, 302, 303, 307, 308):
            if known:
                listing.gone.add(url)  # removed, or moved to another host: not ours to follow
            return None
        if answer.status != 200:
            raise SyncFailed(f"{url} answered {answer.status}")
        kind = answer.headers.get("content-type", "text/html").split(";")[0].strip().lower()
        if kind not in ("text/html", "application/xhtml+xml"):
            return None  # not a page (an image, a download): nothing to index
        title, markdown = await asyncio.to_thread(_extract, answer.body, url)
        if not markdown.strip():
            if known:
                listing.unchanged.add(url)  # no main text this time: keep what we had, never a blank document
            return answer.body
        header_modified = answer.headers.get("last-modified")
        listing.pages[url] = Page(
            url,
            title,
            markdown,
            modified=lastmod or _iso(header_modified),
            etag=answer.headers.get("etag"),
            last_modified=header_modified,
        )
        return answer.body

    async def _get(self, client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> _Answer:
        """GET with same-host redirects followed and 429/503 waited out."""
        waits = 0
        for _ in range(REDIRECTS + 1):
            try:
                response = await client.get(url, headers=headers)
            except httpx.HTTPError as exc:
                raise SyncFailed(f"{url}: {type(exc).__name__}") from None
            if response.status_code in (429, 503):
                waits += 1
                delay = _retry_after(response.headers.get("retry-after"), waits)
                if waits > PATIENCE or delay > MAX_WAIT_SEC:
                    raise SyncFailed(f"{url} kept answering {response.status_code}")
                log.info(
                    "source %s: %s answered %s, waiting %.1fs", self._source.name, url, response.status_code, delay
                )
                await asyncio.sleep(delay)
                continue
            if response.status_code in (301, 302, 303, 307, 308):
                target = urljoin(url, response.headers.get("location", ""))
                if not target.startswith(self._origin + "/"):
                    return _Answer(response.status_code, url, response.headers, b"")
                url = target
                continue
            return _Answer(response.status_code, url, response.headers, response.content)
        raise SyncFailed(f"{url}: too many redirects")


class _Borrowed:
    """A client the caller owns (tests): used, not closed."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def __aenter__(self) -> httpx.AsyncClient:
        return self._client

    async def __aexit__(self, *exc: object) -> None:
        return None


def _retry_after(value: str | None, attempt: int) -> float:
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            if when is not None:
                return max(0.0, when.timestamp() - time.time())
    return min(2.0**attempt, MAX_WAIT_SEC)


def _tag(node: ElementTree.Element) -> str:
    return node.tag.rsplit("}", 1)[-1]


def _child(node: ElementTree.Element, name: str) -> str | None:
    for child in node:
        if _tag(child) == name:
            return child.text
    return None


def _iso(http_date: str | None) -> str | None:
    if not http_date:
        return None
    try:
        return email.utils.parsedate_to_datetime(http_date).astimezone(UTC).isoformat()
    except (TypeError, ValueError):
        return None


def _extract(body: bytes, url: str) -> tuple[str, str]:
    """The page's title and main text as Markdown (CPU work: run in a thread)."""
    import trafilatura  # loaded by the first web sync only: lxml and its friends weigh ~30 MB

    html = body.decode("utf-8", "replace")
    markdown = trafilatura.extract(
        html, url=url, output_format="markdown", include_tables=True, include_links=False, favor_precision=True
    )
    meta = trafilatura.extract_metadata(html)
    title = (meta.title if meta is not None and meta.title else "") or url
    return title, markdown or ""


def _links(body: bytes, base: str) -> list[str]:
    import lxml.html

    try:
        tree = lxml.html.fromstring(body)
    except (ValueError, lxml.etree.ParserError):
        return []
    links = []
    for element, attribute, link, _ in tree.iterlinks():
        if element.tag == "a" and attribute == "href":
            absolute = urldefrag(urljoin(base, link))[0]
            if absolute.startswith(("http://", "https://")):
                links.append(absolute)
    return list(dict.fromkeys(links))


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
