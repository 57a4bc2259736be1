"""The passages a ``kb`` answer was given, as data a client can show: its ``[n]`` markers'
titles, collections and links (the prompt's numbering), without the passages' text."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from core.kb.retriever import Hit


def sources_of(hits: list[Hit]) -> list[dict[str, Any]]:
    """``index`` is the ``n`` of ``[n]``; ``url`` only for a document that has an address."""
    out = []
    for n, hit in enumerate(hits, 1):
        chunk = hit.chunk
        source: dict[str, Any] = {
            "index": n,
            "id": chunk.id,
            "document": chunk.doc_id,
            "title": chunk.title,
            "section": chunk.section,
            "collection": chunk.collection,
            "filename": PurePosixPath(chunk.source).name,
            "score": round(hit.score, 4),
        }
        url = chunk.url or (chunk.source if chunk.source.startswith(("http://", "https://")) else None)
        if url:  # a document synced from a source (core/sources/) has its address there
            source["url"] = url
        out.append(source)
    return out
