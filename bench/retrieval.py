"""Ingest throughput, search latency and hub memory at 1k, 10k and 100k synthetic chunks.

    .venv/bin/python bench/retrieval.py [--sizes 1000 10000 100000] [--embedder hash|e5]

With e5 it first times a question's embedding alone (200 questions; ``--sizes`` with no value
stops there).

With e5 the model really embeds the first --embed-max chunks (that is the ingest rate
reported; 100k chunks would take hours on 2 cores); the rest of a big index reuses those
vectors with a little noise, which is all search latency and memory depend on. Searches
embed every question with the real model, so their latency includes it.

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
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.config import load_settings  # noqa: E402
from core.kb import store  # noqa: E402
from core.kb.embedders import Embedder, HashEmbedder, embed_query, make_embedder  # noqa: E402
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


class Replay:
    """The real model for the first ``real`` texts, then its vectors again with noise."""

    def __init__(self, model: Embedder, real: int) -> None:
        self.model, self.real, self.seconds, self.embedded = model, real, 0.0, 0
        self.seen: list[np.ndarray] = []
        self.rng = np.random.default_rng(0)
        for attr in ("name", "dim", "semantic", "embed_query"):
            if hasattr(model, attr):
                setattr(self, attr, getattr(model, attr))

    async def embed(self, texts: list[str]) -> np.ndarray:
        if self.embedded < self.real:
            started = time.perf_counter()
            vectors = await self.model.embed(texts)
            self.seconds += time.perf_counter() - started
            self.embedded += len(texts)
            self.seen.append(vectors)
            return vectors
        pool = np.concatenate(self.seen)
        rows = pool[self.rng.integers(0, len(pool), len(texts))] + self.rng.normal(0, 0.02, (len(texts), pool.shape[1]))
        return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


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
        "EMBEDDINGS": os.environ.get("BENCH_EMBEDDINGS", "hash"),
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


async def query_latency(model: Embedder, queries: list[str]) -> None:
    """A question's embedding alone (a semantic model's share of every search)."""
    await embed_query(model, queries[0])  # warm-up
    latencies = []
    for q in queries:
        started = time.perf_counter()
        await embed_query(model, q)
        latencies.append((time.perf_counter() - started) * 1000)
    latencies.sort()
    print(f"question embedding, {len(latencies)} questions: p50 {statistics.median(latencies):.1f} ms, "
          f"p99 {latencies[int(len(latencies) * 0.99) - 1]:.1f} ms")  # fmt: skip


async def run(sizes: list[int], embedder_name: str, embed_max: int) -> None:
    settings = load_settings({"EMBEDDINGS": embedder_name})
    model = make_embedder(embedder_name)
    pool = sentences()
    rng = random.Random(7)
    queries = [rng.choice(pool)[:40] for _ in range(300)]
    print(f"sentence pool: {len(pool)}; exact search up to {settings.retrieval.exact_max_chunks} chunks; {model.name}")
    if not isinstance(model, HashEmbedder):
        await query_latency(model, queries[:200])
    if not sizes:
        return
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
            embedder = model if isinstance(model, HashEmbedder) else Replay(model, embed_max)
            report = await ingest(
                kb,
                index_dir,
                embedder,  # type: ignore[arg-type]
                chunk_chars=CHUNK_CHARS,
                exact_max=settings.retrieval.exact_max_chunks,
            )
            seconds = time.perf_counter() - started
            rate = report.chunks / seconds
            if isinstance(embedder, Replay):  # the model's own rate on the chunks it really embedded
                rate = embedder.embedded / embedder.seconds
            index = store.load(index_dir)
            assert index is not None
            retriever = Retriever.from_settings(model, settings.retrieval)
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
                f"{rate:.1f}",
                f"{p50:.2f}",
                f"{p99:.2f}",
                f"{loaded:.0f}",
                f"{used:.0f}",
                f"{anon:.0f}",
            )
            print("".join(f"{v:>14}" for v in row))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--sizes", type=int, nargs="*", default=[1000, 10000, 100000], help="none: question latency only"
    )
    parser.add_argument("--embedder", default="hash", help="hash or e5")
    parser.add_argument("--embed-max", type=int, default=1000, help="chunks the model really embeds (e5)")
    args = parser.parse_args()
    os.environ["BENCH_EMBEDDINGS"] = args.embedder
    asyncio.run(run(args.sizes, args.embedder, args.embed_max))
