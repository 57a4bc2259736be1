"""Text out of PDF files, as Markdown the chunker already understands.

A PDF stores positioned lines, not paragraphs: this rejoins wrapped lines (without a space
between CJK characters, without the hyphen of a word broken at a line end), keeps the blank
gaps pypdf's layout mode reports as paragraph breaks, lets a paragraph run on across a page
break, and drops what repeats on every page (running headers and footers, page numbers) so it
neither pads every chunk nor wins every search.
"""

from __future__ import annotations

import io
import logging
import re
from collections import Counter

from pypdf import PdfReader
from pypdf.errors import PdfReadError

from core.kb.text import joiner

_PAGE_NUMBER_RE = re.compile(
    r"^(?:(?:page|p\.)\s*)?[-–—]?\s*\d+\s*[-–—]?(?:\s*(?:/|of)\s*\d+)?$|^第\s*\d+\s*頁(?:\s*[，,/]?\s*共\s*\d+\s*頁)?$",
    re.IGNORECASE,
)
_ENDS_SENTENCE = tuple("。！？!?.:：;；」』)）")
_LIGATURES = str.maketrans(
    {"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl", "\u00ad": ""}
)
_EDGE_LINES = 2  # header and footer lines looked at on each page

logging.getLogger("pypdf").setLevel(logging.ERROR)  # its warnings about odd files are ours to phrase


class PdfTextError(Exception):
    """The PDF gave no text to index; the message says why."""


def pdf_to_markdown(raw: bytes, fallback_title: str) -> str:
    """The document as ``# title`` and paragraphs separated by blank lines."""
    reader = _reader(raw)
    paragraphs = _paragraphs(_without_running_lines(_page_lines(reader)))
    if not paragraphs:
        raise PdfTextError("no text to extract (a scanned image? run OCR on it first)")
    title = _title(reader, paragraphs, fallback_title)
    if paragraphs[0] == title:
        paragraphs = paragraphs[1:]
    return f"# {title}\n\n" + "\n\n".join(paragraphs) + "\n"


def _reader(raw: bytes) -> PdfReader:
    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted and not reader.decrypt(""):
            raise PdfTextError("encrypted with a password; save an unprotected copy to index it")
        return reader
    except PdfTextError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise PdfTextError(f"not a readable PDF ({exc})") from None


def _page_lines(reader: PdfReader) -> list[list[str]]:
    """Each page's lines, spaces collapsed; an empty string marks a vertical gap (a paragraph break)."""
    pages: list[list[str]] = []
    for page in reader.pages:
        try:
            text = page.extract_text(extraction_mode="layout")
        except Exception:  # layout mode trips on some fonts; plain mode rarely does
            try:
                text = page.extract_text()
            except Exception:  # one unreadable page must not lose the others
                text = ""
        lines = [" ".join(line.translate(_LIGATURES).replace("\x00", "").split()) for line in text.splitlines()]
        pages.append(lines)
    return pages


def _edge_keys(lines: list[str]) -> set[str]:
    filled = [line for line in lines if line]
    return {re.sub(r"\d+", "#", line) for line in filled[:_EDGE_LINES] + filled[-_EDGE_LINES:]}


def _without_running_lines(pages: list[list[str]]) -> list[list[str]]:
    """Drop page numbers, and header or footer lines found on at least half the pages (two or more)."""
    counts = Counter(key for lines in pages for key in _edge_keys(lines))
    threshold = max(2, (len(pages) + 1) // 2)
    running = {key for key, n in counts.items() if n >= threshold}
    kept: list[list[str]] = []
    for lines in pages:
        drop = running & _edge_keys(lines)
        kept.append(
            [line for line in lines if not _PAGE_NUMBER_RE.match(line) and re.sub(r"\d+", "#", line) not in drop]
        )
    return kept


def _paragraphs(pages: list[list[str]]) -> list[str]:
    paragraphs: list[str] = []
    current = ""
    for lines in pages:
        for line in lines:
            if not line:
                if current:
                    paragraphs.append(current)
                current = ""
            elif not current:
                current = line
            elif current.endswith("-") and current[-2:-1].isalpha() and line[0].islower():
                current = current[:-1] + line  # a word hyphenated at the line end
            else:
                current += joiner(current, line) + line
        # A page break ends a paragraph only when its last sentence ended.
        if current.endswith(_ENDS_SENTENCE):
            paragraphs.append(current)
            current = ""
    if current:
        paragraphs.append(current)
    return paragraphs


def _title(reader: PdfReader, paragraphs: list[str], fallback: str) -> str:
    try:
        meta = reader.metadata
        title = " ".join(str(meta.title).split()) if meta and meta.title else ""
    except (PdfReadError, ValueError, KeyError, TypeError):
        title = ""
    if title and not title.lower().startswith(("microsoft word", "untitled")):
        return title
    first = paragraphs[0]
    return first if len(first) <= 80 and not first.endswith(_ENDS_SENTENCE) else fallback
