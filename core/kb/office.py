"""Text out of Office files and saved web pages (DOCX, PPTX, XLSX, HTML), as Markdown.

markitdown (Microsoft's converter made for feeding documents to language models) does the
reading: headings stay headings, tables become Markdown tables, each sheet of a workbook a
``##`` section. What it leaves that is not text is dropped here: the ``<!-- Slide number -->``
comments of slides, and the empty header row a Word table without one gets.
"""

from __future__ import annotations

import io
import logging
import re
import threading
from typing import Any

SUFFIXES = (".docx", ".pptx", ".xlsx", ".html", ".htm")
_ZIPPED = (".docx", ".pptx", ".xlsx")  # markitdown would read a broken one as plain text
_COMMENT = re.compile(r"<!--.*?-->\n?", re.S)
_EMPTY_ROW = re.compile(r"^\|(?:\s*\|)+\s*$")
_SEPARATOR = re.compile(r"^\|(?:\s*:?-+:?\s*\|)+\s*$")
_converter: Any = None
_lock = threading.Lock()

logging.getLogger("pdfminer").setLevel(logging.ERROR)


class OfficeTextError(Exception):
    """The file gave no text to index; the message says why."""


def _markitdown() -> Any:
    """One converter per process, made on the first Office file (it loads a file-type model)."""
    global _converter
    with _lock:
        if _converter is None:
            from markitdown import MarkItDown

            _converter = MarkItDown(enable_plugins=False)
        return _converter


def office_to_markdown(raw: bytes, suffix: str, fallback_title: str) -> str:
    """The document as Markdown, with ``# title`` first when the file does not start with one."""
    if suffix.lower() in _ZIPPED and not raw.startswith(b"PK\x03\x04"):
        raise OfficeTextError("not a valid Office file (a DOCX, PPTX or XLSX is a zip archive)")
    try:
        result = _markitdown().convert_stream(io.BytesIO(raw), file_extension=suffix.lower())
    except Exception as exc:  # markitdown raises its own and its readers' errors alike
        raise OfficeTextError(f"cannot read it ({type(exc).__name__})") from None
    text = _first_row_as_header(_COMMENT.sub("", result.text_content or "")).strip()
    if not text:
        raise OfficeTextError("no text in it")
    if not text.startswith("# "):
        text = f"# {result.title or fallback_title}\n\n{text}"
    return text + "\n"


def _first_row_as_header(text: str) -> str:
    """A table whose header row is empty (Word's, without a marked header) takes its first row as header."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        if _EMPTY_ROW.match(lines[i]) and i + 2 < len(lines) and _SEPARATOR.match(lines[i + 1]):
            out += [lines[i + 2], lines[i + 1]]  # the first row, then the separator
            i += 3
            continue
        out.append(lines[i])
        i += 1
    return "\n".join(out)
