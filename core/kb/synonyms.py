"""Query expansion from the knowledge base's own glossary (``KB_DIR/synonyms.yaml``).

An offline embedder cannot know that "overtime" and 加班 mean the same; the people who
own the knowledge base do. The glossary travels inside the index, so every replica
expands questions the same way for a given index version.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from core.kb.text import fold_word, has_cjk, normalize

FILENAME = "synonyms.yaml"


class SynonymsError(Exception):
    """The glossary file is not a list of lists of words."""


def read_groups(kb_dir: Path) -> list[list[str]]:
    path = kb_dir / FILENAME
    if not path.is_file():
        return []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    except yaml.YAMLError as exc:
        raise SynonymsError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, list) or not all(
        isinstance(g, list) and len(g) >= 2 and all(isinstance(w, str) and w.strip() for w in g) for g in data
    ):
        raise SynonymsError(f"{path}: must be a list of groups, each a list of two or more words")
    return [[w.strip() for w in group] for group in data]


def _folded(text: str) -> str:
    """Latin words folded and space-delimited, so members match whole words in any form."""
    words = "".join(ch if ch.isalnum() else " " for ch in normalize(text)).split()
    return " " + " ".join(fold_word(w) for w in words) + " "


class Synonyms:
    def __init__(self, groups: list[list[str]]) -> None:
        self._groups = groups
        self._cjk: list[tuple[str, int]] = []
        self._latin: list[tuple[str, int]] = []
        for gid, group in enumerate(groups):
            for member in group:
                if has_cjk(member):
                    self._cjk.append((normalize(member), gid))
                else:
                    self._latin.append((_folded(member), gid))

    def __bool__(self) -> bool:
        return bool(self._groups)

    def expand(self, question: str) -> list[str]:
        """The other members of every group the question mentions."""
        if not self._groups:
            return []
        text = normalize(question)
        folded = _folded(question)
        hit = {gid for member, gid in self._cjk if member in text}
        hit |= {gid for member, gid in self._latin if member in folded}
        extra: list[str] = []
        for gid in sorted(hit):
            extra.extend(m for m in self._groups[gid] if normalize(m) not in text and _folded(m) not in folded)
        return extra
