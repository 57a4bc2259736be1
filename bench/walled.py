"""The benches' "collections configured" case: the sample knowledge base split into two
collections, and the bench tenant limited to one of them, so every request pays the wall."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def walled_kb(tmp: Path) -> tuple[Path, dict[str, Any]]:
    """A copy of data/kb as collections ``internal`` (zh-TW files) and ``public`` (the rest),
    and the config section that names them."""
    kb = tmp / "kb"
    for name in ("internal", "public"):
        (kb / name).mkdir(parents=True)
    for doc in (ROOT / "data" / "kb").glob("*.md"):
        shutil.copy(doc, kb / ("internal" if doc.stem.endswith("-zh") else "public") / doc.name)
    shutil.copy(ROOT / "data" / "kb" / "synonyms.yaml", kb / "synonyms.yaml")
    return kb, {"collections": {"internal": {"path": "internal"}, "public": {"path": "public"}}}
