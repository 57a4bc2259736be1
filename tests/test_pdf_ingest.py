"""PDF documents in the knowledge base: text rejoined into paragraphs, running headers and
page numbers dropped, unchanged PDFs not parsed again, unreadable ones skipped with a reason."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter

from core.kb import ingest as ingest_module
from core.kb import store
from core.kb.embedders import HashEmbedder
from core.kb.pdf import PdfTextError, pdf_to_markdown
from core.kb.retriever import Retriever
from tests.pdf_writer import make_pdf
from tests.test_kb import DOCS, build, write_kb

HEADER = "Lumen Tech — Internal use only"
HANDBOOK = make_pdf(
    [
        [HEADER, "Travel expenses are claimed within 30 days of the trip, with re-", "ceipts attached to",
         "every claim.", "", "加班需事先經主管核准，每月加班時數上限", "為四十六小時。", "",
         "Claims above NT$20,000 need the", "1"],
        [HEADER, "approval of a director before payment.", "Page 2 of 3"],
        [HEADER, "員工停車位須向總務處申請，", "每年抽籤一次。", "第 3 頁"],
    ],
    title="Employee handbook 員工手冊",
)  # fmt: skip


def test_lines_rejoin_into_paragraphs_and_running_lines_go() -> None:
    text = pdf_to_markdown(HANDBOOK, "handbook")
    assert text.splitlines()[0] == "# Employee handbook 員工手冊"
    paragraphs = text.split("\n\n")[1:]
    assert paragraphs == [
        "Travel expenses are claimed within 30 days of the trip, with receipts attached to every claim.",
        "加班需事先經主管核准，每月加班時數上限為四十六小時。",
        # a paragraph that runs on over a page break stays one paragraph
        "Claims above NT$20,000 need the approval of a director before payment.",
        "員工停車位須向總務處申請，每年抽籤一次。\n",
    ]
    assert HEADER not in text and "Page 2" not in text and "第 3 頁" not in text


def test_title_falls_back_to_a_short_first_line_then_the_file_name() -> None:
    assert pdf_to_markdown(make_pdf([["Expense policy", "", "Claims go through the portal."]]), "x") == (
        "# Expense policy\n\nClaims go through the portal.\n"
    )
    assert pdf_to_markdown(make_pdf([["Claims go through the portal."]]), "expenses").startswith("# expenses\n")


def _encrypted(raw: bytes) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(raw)))
    writer.encrypt(user_password="secret", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (make_pdf([[], []]), "no text to extract"),
        (b"%PDF-1.7\nthis is not really a PDF", "not a readable PDF"),
        (_encrypted(HANDBOOK), "encrypted with a password"),
    ],
    ids=["scanned", "broken", "encrypted"],
)
def test_pdfs_without_text_say_why(raw: bytes, reason: str) -> None:
    with pytest.raises(PdfTextError, match=reason):
        pdf_to_markdown(raw, "x")


async def test_pdfs_are_indexed_retrieved_and_not_parsed_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kb = write_kb(tmp_path / "kb", DOCS)
    (kb / "handbook.pdf").write_bytes(HANDBOOK)
    (kb / "scan.pdf").write_bytes(make_pdf([[]]))
    index_dir = tmp_path / "index"
    report = await build(kb, index_dir)
    assert report.documents == 4 and report.skipped == (
        "scan.pdf: no text to extract (a scanned image? run OCR on it first)",
    )
    assert "skipped scan.pdf: no text to extract" in report.summary()
    index = store.load(index_dir)
    assert index is not None
    assert next(d for d in index.documents if d.id == "handbook.pdf").title == "Employee handbook 員工手冊"
    retriever = Retriever(HashEmbedder(), lexical_weight=0.8)
    for question in ("每個月最多可以加班幾小時?", "Who must approve a claim above NT$20,000?", "停車位怎麼申請?"):
        hits = await retriever.search(index, question, 3)
        assert hits and hits[0].chunk.doc_id == "handbook.pdf", question

    def parse_all_but_the_handbook(raw: bytes, fallback: str) -> str:
        assert fallback != "handbook", "an unchanged, indexed PDF was parsed again"
        return pdf_to_markdown(raw, fallback)

    monkeypatch.setattr(ingest_module, "pdf_to_markdown", parse_all_but_the_handbook)
    (kb / "travel.md").write_text("# Travel claims\n\nSubmit claims within 30 days.\n", encoding="utf-8")
    again = await build(kb, index_dir)
    assert again.version == 2 and again.embedded == 1
    index = store.load(index_dir)
    assert index is not None
    assert next(d for d in index.documents if d.id == "handbook.pdf").title == "Employee handbook 員工手冊"
