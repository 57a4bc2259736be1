"""``python -m core sources list | sync NAME | status``, for operators."""

from __future__ import annotations

import asyncio
import json
import sys

from core.config import Settings
from core.kb.embedders import make_embedder
from core.sources.sync import SourceSync, status_lines
from core.state import make_backend


def run(settings: Settings, command: str, name: str | None) -> int:
    if command == "list":
        for source in settings.sources:
            every = f"every {source.every:g}s" if source.every else "by command"
            print(f"{source.name}\t{source.type}\t{source.collection}\t{every}\t{source.url or source.path}")
        return 0
    if command == "status":
        for line in status_lines(settings):
            print(json.dumps(line, ensure_ascii=False))
        return 0
    assert name is not None
    if name not in {s.name for s in settings.sources}:
        known = ", ".join(s.name for s in settings.sources) or "none configured"
        print(f"sources: unknown source {name!r} (sources: {known})", file=sys.stderr)
        return 2
    return asyncio.run(_sync(settings, name))


async def _sync(settings: Settings, name: str) -> int:
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    embedder = make_embedder(settings.embeddings, api_key=key, base_url=settings.openai_base_url)
    backend = make_backend(settings.redis_url)
    try:
        report = await SourceSync(settings, embedder, backend=backend).run(name)
    finally:
        await backend.close()
    print(json.dumps({"name": report.source, "outcome": report.outcome, "documents": report.documents,
                      "added": report.added, "changed": report.changed, "removed": report.removed,
                      "error": report.error}, ensure_ascii=False))  # fmt: skip
    return 0 if report.outcome == "ok" else 1
