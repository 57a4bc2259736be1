"""A synced source's copy on disk: one Markdown file a document, and what the sync knows of it.

The copy lives under ``INDEX_DIR-sources/<name>/`` (the index's volume, so every process
reads the same). ``.addresses.json`` maps each file to its URL and last-modified time (ingest
reads it into the index, so citations point home); ``.state.json`` keeps what the next sync
needs — each page's ETag and Last-Modified — and the last sync's status. Every file is
written to a temporary name and renamed, so a crash leaves either the old or the new file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.kb.ingest import ADDRESSES

STATE = ".state.json"


@dataclass(frozen=True)
class Page:
    """One document as its source has it now."""

    url: str
    title: str
    markdown: str
    modified: str | None = None  # ISO 8601, from the source (Last-Modified, a sitemap's lastmod)
    etag: str | None = None
    last_modified: str | None = None  # the HTTP header as sent, for the next conditional GET


@dataclass
class Known:
    """What the previous sync kept of one document."""

    file: str
    etag: str | None = None
    last_modified: str | None = None
    modified: str | None = None


@dataclass
class SourceState:
    documents: dict[str, Known] = field(default_factory=dict)  # by URL
    last_sync: float | None = None  # time of the last sync that finished, good or not
    last_success: float | None = None
    outcome: str | None = None  # ok | failed | busy
    error: str | None = None


def file_name(url: str) -> str:
    """A stable, readable file name for a URL (its path's words, and a hash that keeps it unique)."""
    words = re.sub(r"[^A-Za-z0-9]+", "-", url.split("://", 1)[-1].split("/", 1)[-1]).strip("-").lower()[:60]
    digest = hashlib.sha256(url.encode()).hexdigest()[:10]
    return f"{words or 'index'}-{digest}.md"


class Mirror:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def state(self) -> SourceState:
        path = self.folder / STATE
        if not path.is_file():
            return SourceState()
        try:
            raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            docs = {url: Known(**entry) for url, entry in raw.pop("documents", {}).items()}
            return SourceState(documents=docs, **raw)
        except (OSError, ValueError, TypeError):
            return SourceState()  # unreadable: the next sync reads every page again, losing nothing

    def save_state(self, state: SourceState) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        raw = asdict(state)
        _write(self.folder / STATE, json.dumps(raw, ensure_ascii=False, indent=1))

    def write_page(self, page: Page, known: Known | None) -> Known:
        """Write (or rewrite) one document; its address is recorded by ``publish``."""
        self.folder.mkdir(parents=True, exist_ok=True)
        name = known.file if known else file_name(page.url)
        title = page.title.strip().replace("\n", " ") or page.url
        body = page.markdown if page.markdown.lstrip().startswith("# ") else f"# {title}\n\n{page.markdown}"
        _write(self.folder / name, body.rstrip() + "\n")
        return Known(name, page.etag, page.last_modified, page.modified)

    def remove(self, known: Known) -> None:
        (self.folder / known.file).unlink(missing_ok=True)

    def publish(self, documents: dict[str, Known]) -> None:
        """Each file's address, for ingest (written after the files it names)."""
        addresses = {k.file: {"url": url, "modified": k.modified} for url, k in sorted(documents.items())}
        _write(self.folder / ADDRESSES, json.dumps(addresses, ensure_ascii=False, indent=1))


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
