"""Knowledge base: chunking, incremental and atomic ingest, embedder checks, retrieval."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.config import load_settings
from core.kb import dense, store
from core.kb.chunker import chunk_document, document_title
from core.kb.embedders import HashEmbedder
from core.kb.ingest import IngestError, ingest
from core.kb.retriever import Retriever
from core.kb.text import lexical_terms
from tests.conftest import ROOT, SAMPLE_KB


async def build(kb: Path, index: Path, embedder: HashEmbedder | None = None, **kw: object):
    return await ingest(kb, index, embedder or HashEmbedder(), chunk_chars=300, exact_max=1000, **kw)  # type: ignore[arg-type]


def write_kb(folder: Path, docs: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in docs.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


DOCS = {
    "leave.md": "# 請假規定\n\n## 特休\n\n到職滿半年給三天特休。滿一年給七天特休。\n\n"
    "## 病假\n\n病假一年三十天，半薪。\n",
    "travel.md": "# Travel claims\n\n## Receipts\n\nKeep every receipt. Claims without receipts are rejected.\n",
    "wifi.txt": "Guest Wi-Fi\n\nThe guest network is LumenGuest. Ask reception for the daily password.\n",
}


def test_chinese_text_without_spaces_is_cut_at_sentence_ends() -> None:
    body = "這是一個沒有空格的句子，用來測試切分。" * 40
    chunks = chunk_document(f"# 標題\n\n## 小節\n\n{body}\n", "標題", 120)
    assert len(chunks) > 3
    for chunk in chunks:
        assert len(chunk.text) <= 120
        assert chunk.text.endswith("。")
        assert chunk.section == "小節"
    assert "".join(c.text for c in chunks) == body


def test_chunks_follow_headings_and_paragraphs() -> None:
    text = (
        "# Guide\n\nIntro paragraph.\n\n## Setup\n\nFirst step. Second step.\n\n"
        "Another paragraph.\n\n### Details\n\nDeep detail.\n\n```\n# not a heading\n```\n\n## Other\n\nElse."
    )
    chunks = chunk_document(text, "Guide", 500)
    assert [c.section for c in chunks] == ["", "Setup", "Setup > Details", "Other"]
    assert chunks[1].text == "First step. Second step.\n\nAnother paragraph."
    assert "# not a heading" in chunks[2].text
    assert document_title(text, "fallback") == "Guide"
    assert document_title("no heading here", "fallback") == "fallback"


def test_an_overlong_sentence_is_hard_cut() -> None:
    chunks = chunk_document("x" * 250, "t", 100)
    assert [len(c.text) for c in chunks] == [100, 100, 50]


def test_cjk_terms_are_bigrams_and_words_are_folded() -> None:
    terms = lexical_terms("請假規定 Claims")
    assert {"請假", "假規", "規定", "請", "claim"} <= set(terms)
    assert "the" not in lexical_terms("the claims")


def test_hash_embedder_is_deterministic_and_normalised() -> None:
    a = HashEmbedder().embed_sync(["出差費用怎麼報", "How to claim travel"])
    b = HashEmbedder().embed_sync(["出差費用怎麼報", "How to claim travel"])
    assert np.array_equal(a, b)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert a.shape == (2, 512)


async def test_ingest_writes_manifest_and_reingest_only_embeds_changes(tmp_path: Path) -> None:
    kb = write_kb(tmp_path / "kb", DOCS)
    index_dir = tmp_path / "index"
    first = await build(kb, index_dir)
    assert first.version == 1 and first.documents == 3 and first.embedded == first.chunks
    manifest = store.read_manifest(index_dir)
    assert manifest is not None
    assert manifest["embedder"] == {"name": "hash-v1-512", "dim": 512}
    assert manifest["index_version"] == 1
    doc = next(d for d in manifest["documents"] if d["id"] == "leave.md")
    assert doc["title"] == "請假規定" and len(doc["content_hash"]) == 64 and doc["path"].endswith("leave.md")

    unchanged = await build(kb, index_dir)
    assert not unchanged.changed and unchanged.embedded == 0

    (kb / "travel.md").write_text("# Travel claims\n\nSubmit claims within 30 days.\n", encoding="utf-8")
    second = await build(kb, index_dir)
    assert second.version == 2
    assert second.embedded == 1  # only the edited document
    assert second.reused == second.chunks - 1
    loaded = store.load(index_dir)
    assert loaded is not None and loaded.version == 2
    assert any("30 days" in c.text for c in loaded.chunks())

    (kb / "wifi.txt").unlink()
    third = await build(kb, index_dir)
    assert third.removed == 1 and third.embedded == 0
    loaded = store.load(index_dir)
    assert loaded is not None and {d.id for d in loaded.documents} == {"leave.md", "travel.md"}


async def test_reused_vectors_equal_fresh_ones(tmp_path: Path) -> None:
    kb = write_kb(tmp_path / "kb", DOCS)
    await build(kb, tmp_path / "a")
    (kb / "travel.md").write_text("# Travel claims\n\nChanged.\n", encoding="utf-8")
    await build(kb, tmp_path / "a")
    await build(kb, tmp_path / "b")  # from scratch
    a = store.load_ingest_state(tmp_path / "a")
    b = store.load_ingest_state(tmp_path / "b")
    assert a is not None and b is not None
    assert np.array_equal(np.asarray(a.vectors), np.asarray(b.vectors))
    assert np.array_equal(a.rows.hashes, b.rows.hashes)
    assert [a.texts[i] for i in range(len(a.texts))] == [b.texts[i] for i in range(len(b.texts))]


async def test_index_from_another_embedder_is_refused(tmp_path: Path) -> None:
    kb = write_kb(tmp_path / "kb", DOCS)
    await build(kb, tmp_path / "index", HashEmbedder(512))
    with pytest.raises(IngestError, match=r"hash-v1-512.*hash-v1-256.*--rebuild"):
        await build(kb, tmp_path / "index", HashEmbedder(256))
    rebuilt = await build(kb, tmp_path / "index", HashEmbedder(256), rebuild=True)
    assert rebuilt.version == 2 and rebuilt.embedded == rebuilt.chunks


async def test_a_crash_mid_ingest_leaves_the_old_index_live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kb = write_kb(tmp_path / "kb", DOCS)
    index_dir = tmp_path / "index"
    await build(kb, index_dir)
    (kb / "new.md").write_text("# New\n\nBrand new document.\n", encoding="utf-8")

    def crash(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(dense, "save", crash)
    with pytest.raises(OSError):
        await build(kb, index_dir)
    assert store.current_name(index_dir) == "v000001"
    loaded = store.load(index_dir)
    assert loaded is not None and loaded.version == 1
    assert not list(index_dir.glob(".tmp-*")), "the half-written version is cleaned up"
    monkeypatch.undo()
    assert (await build(kb, index_dir)).version == 2


async def test_large_index_switches_to_approximate_search(tmp_path: Path) -> None:
    docs = {f"d{i}.md": f"# Doc {i}\n\nTopic number {i} about item{i} and thing{i * 7}.\n" for i in range(60)}
    kb = write_kb(tmp_path / "kb", docs)
    await ingest(kb, tmp_path / "index", HashEmbedder(), chunk_chars=300, exact_max=20)
    index = store.load(tmp_path / "index")
    assert index is not None
    assert type(index.dense).__name__ == "IndexIVFScalarQuantizer"
    hits = await Retriever(HashEmbedder(), lexical_weight=0.8).search(index, "item42 thing294", 3)
    assert hits[0].chunk.doc_id == "d42.md"


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("加班費怎麼算?", "overtime-policy-zh.md"),
        ("我想請特休要怎麼申請", "leave-policy-zh.md"),
        ("how late can I submit my trip expense claim?", "travel-expenses.md"),
        ("how do i connect to the vpn from home", "vpn-setup.md"),
        ("printer is jammed what do I do", "printer-help.md"),
    ],
)
async def test_retrieval_finds_the_document(sample_index: Path, question: str, expected: str) -> None:
    index = store.load(sample_index)
    assert index is not None
    hits = await Retriever(HashEmbedder(), lexical_weight=0.8).search(index, question, 3)
    assert hits[0].chunk.doc_id == expected
    assert hits[0].score > load_settings({}).retrieval.min_score
    assert hits == sorted(hits, key=lambda h: -h.score)


def test_eval_command_meets_the_recall_bar() -> None:
    """The issue's bar: recall@3 >= 0.9 on the honest sample question set, offline."""
    out = subprocess.run(
        [sys.executable, "-m", "core", "eval"],
        cwd=ROOT,
        env={**os.environ, "EMBEDDINGS": "hash"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if "recall@3" in x)
    recall3 = float(line.split("recall@3")[1].split()[0])
    assert recall3 >= 0.9, line


def test_ingest_command_reports_and_refuses_mismatch(tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    shutil.copytree(SAMPLE_KB, kb)
    env = {"PATH": "/usr/bin:/bin", "INDEX_DIR": str(tmp_path / "index"), "LOG_FILE": "", "EMBEDDINGS": "hash"}
    run = subprocess.run(
        [sys.executable, "-m", "core", "ingest", str(kb)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert "index version 1" in run.stdout
    again = subprocess.run(
        [sys.executable, "-m", "core", "ingest", str(kb)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "up to date" in again.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "core", "ingest", str(kb)],
        cwd=ROOT,
        env={**env, "EMBEDDINGS": "openai:text-embedding-3-small", "OPENAI_API_KEY": "sk-test"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1
    assert "hash-v1-512" in bad.stderr and "Traceback" not in bad.stderr


def test_the_server_builds_on_first_start_and_picks_up_new_versions(tmp_path: Path) -> None:
    import time

    import httpx

    from tests.conftest import HubServer, make_settings

    kb = tmp_path / "kb"
    shutil.copytree(SAMPLE_KB, kb)
    config = tmp_path / "hub.yaml"
    config.write_text("retrieval:\n  reload_interval_sec: 0.1\n", encoding="utf-8")
    settings = make_settings(tmp_path, KB_DIR=str(kb), INDEX_DIR=str(tmp_path / "fresh-index"), HUB_CONFIG=str(config))
    with HubServer(settings) as hub:
        assert httpx.get(f"{hub.url}/readyz").json()["ready"] is True  # built on the first start
        question = {"question": "Where is the espresso machine and who refills the beans?"}
        assert httpx.post(f"{hub.url}/ask", json=question).json()["model"] == "none"
        (kb / "coffee.md").write_text(
            "# Coffee corner\n\nThe espresso machine is on 13F next to the pantry. Facilities refills the beans "
            "every Monday and Thursday morning.\n",
            encoding="utf-8",
        )
        asyncio.run(ingest(kb, settings.index_dir, HashEmbedder(), chunk_chars=600, exact_max=5000))
        deadline, body = time.monotonic() + 10, {}
        while time.monotonic() < deadline:
            body = httpx.post(f"{hub.url}/ask", json=question).json()
            if body["sources"]:
                break
            time.sleep(0.1)
        assert body["sources"][0]["id"].startswith("coffee.md"), "answered from the new version, no restart"
