"""Office files and saved web pages in the knowledge base: DOCX, PPTX, XLSX and HTML become
Markdown (markitdown) with their headings and tables, are retrieved, and are not parsed again
while unchanged; a broken one is skipped with its reason."""

from __future__ import annotations

from pathlib import Path

import pytest

import core.kb.ingest as ingest_module
from core.kb import store
from core.kb.embedders import HashEmbedder
from core.kb.ingest import ingest
from core.kb.office import office_to_markdown
from core.kb.retriever import Retriever
from tests.office_files import docx, pptx, xlsx

PARKING = docx([
    ("h1", "Parking rules"),
    ("p", "Employees pay a monthly parking fee of NT$1,500 for a reserved space."),
    ("table", [["Floor", "EV chargers"], ["B1", "12"], ["B2", "6"]]),
])  # fmt: skip
VPN = pptx("VPN setup", ["Install FortiClient", "Approve the MFA prompt on your phone"],
           [["Office", "Gateway"], ["Taipei", "vpn-tw.example.com"]])  # fmt: skip
FEES = xlsx({"Wire fees": [["Service", "Fee"], ["Domestic wire", "NT$30"], ["International wire", "NT$450"]]})
PAGE = b"<html><head><title>Returns</title></head><body><h1>Returns</h1><p>Return unworn shoes within 30 days.</p></body></html>"


def test_headings_and_tables_survive() -> None:
    parking = office_to_markdown(PARKING, ".docx", "parking")
    assert parking.startswith("# Parking rules")
    assert "| Floor | EV chargers |\n| --- | --- |\n| B1 | 12 |" in parking  # Word's empty header row is gone
    vpn = office_to_markdown(VPN, ".pptx", "vpn")
    assert vpn.startswith("# VPN setup") and "<!--" not in vpn
    assert "| Taipei | vpn-tw.example.com |" in vpn
    fees = office_to_markdown(FEES, ".xlsx", "fees")
    assert fees.startswith("# fees") and "## Wire fees" in fees and "| International wire | NT$450 |" in fees


async def _build(kb: Path, index_dir: Path) -> ingest_module.IngestReport:
    return await ingest(kb, index_dir, HashEmbedder(), chunk_chars=600, exact_max=5000)


async def test_office_files_are_indexed_retrieved_and_not_parsed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "parking.docx").write_bytes(PARKING)
    (kb / "vpn.pptx").write_bytes(VPN)
    (kb / "fees.xlsx").write_bytes(FEES)
    (kb / "returns.html").write_bytes(PAGE)
    (kb / "broken.docx").write_bytes(b"not a zip at all")
    index_dir = tmp_path / "index"
    report = await _build(kb, index_dir)
    assert report.documents == 4
    assert report.skipped == ("broken.docx: not a valid Office file (a DOCX, PPTX or XLSX is a zip archive)",)
    index = store.load(index_dir)
    assert index is not None
    retriever = Retriever(HashEmbedder(), lexical_weight=0.8)
    for question, expected in (
        ("How many EV chargers are on floor B1?", "parking.docx"),
        ("which gateway does the Taipei office use for FortiClient?", "vpn.pptx"),
        ("international wire fee", "fees.xlsx"),
        ("how long can I return shoes?", "returns.html"),
    ):
        hits = await retriever.search(index, question, 3)
        assert hits and hits[0].chunk.doc_id == expected, question

    def parse_only_new(raw: bytes, suffix: str, fallback: str) -> str:
        assert fallback != "parking", "an unchanged, indexed Office file was parsed again"
        return office_to_markdown(raw, suffix, fallback)

    monkeypatch.setattr(ingest_module, "office_to_markdown", parse_only_new)
    (kb / "fees.xlsx").write_bytes(xlsx({"Wire fees": [["Service", "Fee"], ["Domestic wire", "NT$35"]]}))
    again = await _build(kb, index_dir)
    assert again.version == 2
    index = store.load(index_dir)
    assert index is not None
    assert "NT$35" in " ".join(c.text for c in index.chunks())
