"""Ingest throughput, search latency and hub memory at 1k, 10k and 100k synthetic chunks.

    .venv/bin/python bench/retrieval.py [--sizes 1000 10000 100000]

Synthetic documents are built from real sentences (the sample knowledge base plus the
DRCD and MedQuAD passages in ../shared when present), shuffled into new documents, so the
term statistics look like a real mixed zh-TW/English knowledge base.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.config import load_settings  # noqa: E402
from core.kb import store  # noqa: E402
from core.kb.embedders import HashEmbedder  # noqa: E402
from core.kb.ingest import ingest  # noqa: E402
from core.kb.retriever import Retriever  # noqa: E402
from core.kb.text import split_sentences  # noqa: E402

SOURCES = [
    ROOT / "data" / "kb",
    ROOT.parent / "shared" / "datasets" / "drcd-retrieval" / "kb",
    ROOT.parent / "shared" / "datasets" / "medquad-retrieval" / "kb",
]
CHUNK_CHARS = 600


def sentences() -> list[str]:
    out: list[str] = []
    for folder in SOURCES:
        for path in sorted(folder.glob("*.md")) if folder.is_dir() else []:
            text = re.sub(r"^#.*$", "", path.read_text(encoding="utf-8"), flags=re.M)
            out.extend(s for s in split_sentences(text) if 10 <= len(s) <= 400)
    return out


def write_corpus(folder: Path, n_chunks: int, pool: list[str], rng: random.Random) -> None:
    """Documents of five sections with one ~550-character paragraph each: five chunks a doc."""
    folder.mkdir(parents=True)
    for d in range(max(1, n_chunks // 5)):
        parts = [f"# Synthetic document {d}\n"]
        for s in range(5):
            para, size = [], 0
            while size < 500:
                sentence = rng.choice(pool)
                para.append(sentence)
                size += len(sentence)
            parts.append(f"## Section {s}\n\n{' '.join(para)[: CHUNK_CHARS - 20]}\n")
        (folder / f"doc{d:06d}.md").write_text("\n".join(parts), encoding="utf-8")


def _rss(pid: int) -> tuple[float, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    total = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]
    anon = int(re.search(r"RssAnon:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]
    return total, anon


def rss_of_hub(index_dir: Path, kb_dir: Path, queries: list[str]) -> tuple[float, float, float]:
    """Start the real hub on this index; its resident memory once loaded, then after the
    questions, and how much of that is its own (anonymous) memory. The rest are pages of
    the memory-mapped index files: shared by every worker, evictable by the kernel."""
    port = 18000 + os.getpid() % 1000
    env = {
        **os.environ,
        "INDEX_DIR": str(index_dir),
        "KB_DIR": str(kb_dir),
        "PORT": str(port),
        "LOG_FILE": "",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "core", "serve"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        loaded, _ = _rss(proc.pid)
        with httpx.Client(timeout=10) as client:
            for q in queries:
                client.post(f"{url}/ask", json={"question": q})
        used, anon = _rss(proc.pid)
        return loaded, used, anon
    finally:
        proc.terminate()
        proc.wait(10)


async def run(sizes: list[int]) -> None:
    settings = load_settings({})
    pool = sentences()
    rng = random.Random(7)
    queries = [rng.choice(pool)[:40] for _ in range(300)]
    print(f"sentence pool: {len(pool)}; exact search up to {settings.retrieval.exact_max_chunks} chunks")
    header = (
        "chunks",
        "ingest s",
        "chunks/s",
        "search p50 ms",
        "p99 ms",
        "RSS loaded MB",
        "after 300 q",
        "of it anon",
    )
    print("".join(f"{h:>14}" for h in header))
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="askhub-bench-") as tmp:
            kb, index_dir = Path(tmp) / "kb", Path(tmp) / "index"
            write_corpus(kb, size, pool, rng)
            started = time.perf_counter()
            report = await ingest(
                kb,
                index_dir,
                HashEmbedder(),
                chunk_chars=CHUNK_CHARS,
                exact_max=settings.retrieval.exact_max_chunks,
            )
            seconds = time.perf_counter() - started
            index = store.load(index_dir)
            assert index is not None
            retriever = Retriever(HashEmbedder(), lexical_weight=settings.retrieval.lexical_weight)
            for q in queries[:20]:
                await retriever.search(index, q, 5)
            latencies = []
            for q in queries:
                t = time.perf_counter()
                await retriever.search(index, q, 5)
                latencies.append((time.perf_counter() - t) * 1000)
            latencies.sort()
            p50 = statistics.median(latencies)
            p99 = latencies[int(len(latencies) * 0.99) - 1]
            loaded, used, anon = rss_of_hub(index_dir, kb, queries)
            row = (
                report.chunks,
                f"{seconds:.1f}",
                f"{report.chunks / seconds:.0f}",
                f"{p50:.2f}",
                f"{p99:.2f}",
                f"{loaded:.0f}",
                f"{used:.0f}",
                f"{anon:.0f}",
            )
            print("".join(f"{v:>14}" for v in row))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    asyncio.run(run(parser.parse_args().sizes))
