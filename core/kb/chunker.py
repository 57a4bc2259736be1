"""Split documents into chunks that follow headings and paragraphs.

A chunk never spans two sections, so its heading path says what it is about; long
paragraphs are cut at sentence ends (。！？ as well as . ! ?), and only a sentence longer
than a whole chunk is cut mid-way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.kb.text import joiner, split_sentences

_HEADING_RE = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


@dataclass(frozen=True, slots=True)
class Section:
    path: tuple[str, ...]
    text: str


@dataclass(frozen=True, slots=True)
class ChunkText:
    section: str
    text: str


def document_title(text: str, fallback: str) -> str:
    for line in text.splitlines():
        match = _HEADING_RE.match(line.strip())
        if match and len(match.group(1)) == 1:
            return match.group(2).strip()
        if line.strip():
            break
    return fallback


def sections(text: str) -> list[Section]:
    """Markdown sections with their heading path; text before any heading has an empty path."""
    result: list[Section] = []
    path: list[tuple[int, str]] = []
    lines: list[str] = []
    in_code = False

    def flush() -> None:
        body = "\n".join(lines).strip()
        if body:
            result.append(Section(tuple(title for _, title in path), body))
        lines.clear()

    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
        match = None if in_code else _HEADING_RE.match(line)
        if match:
            flush()
            level = len(match.group(1))
            path = [(lvl, title) for lvl, title in path if lvl < level]
            path.append((level, match.group(2).strip()))
        else:
            lines.append(line)
    flush()
    return result


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


def _pieces(paragraph: str, limit: int) -> list[str]:
    """A paragraph small enough, or its sentences, or hard cuts of an over-long sentence."""
    if len(paragraph) <= limit:
        return [paragraph]
    pieces: list[str] = []
    for sentence in split_sentences(paragraph):
        while len(sentence) > limit:
            pieces.append(sentence[:limit])
            sentence = sentence[limit:]
        if sentence:
            pieces.append(sentence)
    return pieces


def chunk_document(text: str, title: str, max_chars: int) -> list[ChunkText]:
    """Pack paragraphs of each section into chunks of at most ``max_chars`` characters."""
    chunks: list[ChunkText] = []
    for section in sections(text):
        heading = " > ".join(p for p in section.path if p != title)
        current = ""
        for paragraph in _paragraphs(section.text):
            for piece in _pieces(paragraph, max_chars):
                if not current:
                    current = piece
                elif len(current) + 2 + len(piece) <= max_chars:
                    # Paragraphs stay on their own lines; sentences of one paragraph rejoin.
                    sep = "\n\n" if piece is paragraph else joiner(current, piece)
                    current = f"{current}{sep}{piece}"
                else:
                    chunks.append(ChunkText(heading, current))
                    current = piece
        if current:
            chunks.append(ChunkText(heading, current))
    return chunks
