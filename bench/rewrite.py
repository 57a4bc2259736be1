"""What the question rewrite can add to retrieval, with a rewrite as good as a hand translation.

    .venv/bin/python bench/rewrite.py [--questions bench/data/cross-language-rewrites.jsonl] [--top-k 3]

Each line holds a question, the rewrite a good model would return (written by hand, in the
knowledge base's other language) and the expected document. For every question: the plain
search, whether the rewrite's call would be made (``core.llm.rewrite.skip_reason``), and the
merged search (``core.llm.rewrite.fuse``); then
recall@3 by document for both, and how many calls the sample's question sets would cost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.config import load_settings  # noqa: E402
from core.kb import store  # noqa: E402
from core.kb.embedders import make_embedder  # noqa: E402
from core.kb.ingest import ingest  # noqa: E402
from core.kb.retriever import Hit, Retriever  # noqa: E402
from core.llm.rewrite import fuse, skip_reason  # noqa: E402


def read_lines(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


async def main(questions: Path, top_k: int) -> None:
    settings = load_settings()
    rows = read_lines(questions)
    sample = {name: read_lines(ROOT / "data" / "eval" / name) for name in ("questions.jsonl", "offtopic.jsonl")}
    low, high = settings.retrieval.min_score, settings.retrieval.rewrite.skip_above
    embedder = make_embedder(settings.embeddings)
    retriever = Retriever.from_settings(embedder, settings.retrieval)
    with tempfile.TemporaryDirectory() as tmp:
        await ingest(settings.kb_dir, Path(tmp), embedder, chunk_chars=settings.retrieval.chunk_chars,
                     exact_max=settings.retrieval.exact_max_chunks)  # fmt: skip
        index = store.load(Path(tmp))
        assert index is not None

        def found(hits: list[Hit], expected: str) -> bool:
            return expected in [h.chunk.doc_id for h in hits if h.score >= low]

        plain_ok = merged_ok = calls = 0
        for row in rows:
            plain = await retriever.search(index, row["question"], top_k)
            call = skip_reason(plain, skip_above=high, min_score=low) is None
            merged = fuse([plain, await retriever.search(index, row["rewrite"], top_k)], top_k) if call else plain
            calls += call
            plain_ok += found(plain, row["expected"])
            merged_ok += found(merged, row["expected"])
        n = len(rows)
        print(f"{questions.name}: {n} questions, embedder {embedder.name}, top_k {top_k}, skip_above {high}")
        print(f"  recall@{top_k} plain {plain_ok / n:.3f}, with the rewrite {merged_ok / n:.3f}; calls {calls} of {n}")
        for name, items in sample.items():
            texts = [item["question"] for item in items]
            searched = [await retriever.search(index, q, top_k) for q in texts]
            made = sum(skip_reason(hits, skip_above=high, min_score=low) is None for hits in searched)
            print(f"  data/eval/{name}: the rewrite call is made for {made} of {len(texts)} (single questions)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=Path, default=ROOT / "bench" / "data" / "cross-language-rewrites.jsonl")
    parser.add_argument("--top-k", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.questions, args.top_k))
