"""Sync throughput and memory of a ``web`` source: a first sync of N pages, then a sync where
nothing changed (conditional GETs only, nothing embedded), against the fake help center.

    .venv/bin/python bench/sources.py [--pages 10000] [--embedder hash|e5]

Pages are built from real sentences (the sample knowledge base), a few paragraphs and a table
each, listed in one sitemap. Each phase runs in a fresh process so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def sentences() -> list[str]:
    text = " ".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "data" / "kb").glob("*.md")))
    found = [s.strip() for s in re.split(r"(?<=[.。!?！？])\s*", re.sub(r"[#*|>-]+", " ", text)) if len(s.strip()) > 20]
    return found


def build_site(pages: int):  # type: ignore[no-untyped-def]
    from tests.fakes.web_site import FakeSite

    rng = random.Random(7)
    pool = sentences()
    site = FakeSite().start()
    for n in range(pages):
        paragraphs = "".join(f"<p>{' '.join(rng.sample(pool, 3))}</p>" for _ in range(3))
        table = (
            f"<table><tr><th>Item</th><th>Fee</th></tr><tr><td>Service {n}</td><td>NT${n % 900 + 100}</td></tr></table>"
        )
        site.page(f"/hc/articles/{n}", f"Article {n}: {rng.choice(pool)[:40]}", f"<h2>Details</h2>{paragraphs}{table}")
    return site


def phase(url: str, folder: Path, embedder: str) -> dict[str, float]:
    """One sync in this process: seconds, documents, peak RSS."""
    from core.config import load_settings
    from core.kb.embedders import make_embedder
    from core.sources.sync import SourceSync

    config = folder / "hub.yaml"
    config.write_text(json.dumps({"sources": [{"name": "hc", "type": "web", "url": url, "max_pages": 100000}]}))
    kb = folder / "kb"
    kb.mkdir(exist_ok=True)
    settings = load_settings({"HUB_CONFIG": str(config), "KB_DIR": str(kb), "INDEX_DIR": str(folder / "index"),
                              "EMBEDDINGS": embedder, "LOG_FILE": ""})  # fmt: skip
    started = time.perf_counter()
    report = asyncio.run(SourceSync(settings, make_embedder(embedder)).run("hc"))
    seconds = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "documents": report.documents, "added": report.added, "rss_mb": rss,
            "outcome": report.outcome}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=10000)
    parser.add_argument("--embedder", default="hash")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(phase(args.url, Path(args.folder), args.embedder)))
        return
    site = build_site(args.pages)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "LOG_FILE": "", "NO_PROXY": "127.0.0.1"}
            for name in ("first sync", "no-change sync"):
                cmd = [sys.executable, __file__, "--phase", name, "--url", f"{site.url}/sitemap.xml",
                       "--folder", tmp, "--embedder", args.embedder]  # fmt: skip
                out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
                result = json.loads(out.strip().splitlines()[-1])
                rate = result["documents"] / result["seconds"]
                print(f"{name}: {result['documents']} documents ({result['added']} new) in {result['seconds']:.1f} s "
                      f"= {rate:.0f} documents/s, peak RSS {result['rss_mb']:.0f} MB, {result['outcome']}")  # fmt: skip
            print(f"requests answered 200: {len(site.served(200))}, 304: {len(site.served(304))}")
    finally:
        site.stop()


if __name__ == "__main__":
    main()
