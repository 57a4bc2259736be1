"""Fusion variants side by side on every question set, as ``POST /ask`` with top_k 3 would see them.

    .venv/bin/python bench/fusion.py [--embedder e5] [--top-k 3] [--variants current rrf ...]

The first column is ``Retriever.search`` itself, as /ask calls it (the similarity floor
included); the others rank the candidates with one signal or one fusion and no floor.
Each set is ingested once (the content-hash vector cache makes a re-run cheap), each question's
vector is computed once (kept in var/fusion-queries-<embedder>.pickle), and every variant then
ranks the same candidates: lexical alone, dense alone, the retriever's fusion and alternatives.
A question counts as found when its document is among the documents of the top_k chunks a
search returns (at most retriever.PER_DOCUMENT from one document), the way /ask's sources are.
This is how the fusion's weights were chosen: on every set at once, never on one.
"""

from __future__ import annotations

import argparse
import asyncio
import pickle
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.config import load_settings  # noqa: E402
from core.kb import retriever as r  # noqa: E402
from core.kb import store  # noqa: E402
from core.kb.embedders import HashEmbedder, embed_query, make_embedder  # noqa: E402
from core.kb.evaluate import read_questions  # noqa: E402
from core.kb.ingest import ingest, vector_cache_path  # noqa: E402

SHARED = ROOT.parent / "shared" / "datasets"
SETS = {
    "sample": (ROOT / "data" / "kb", ROOT / "data" / "eval" / "questions.jsonl"),
    "crosslang": (ROOT / "data" / "kb", ROOT / "data" / "eval" / "crosslang" / "questions.jsonl"),
    "policies": (ROOT / "data" / "eval" / "policies" / "kb", ROOT / "data" / "eval" / "policies" / "questions.jsonl"),
    "handbook": (ROOT / "data" / "eval" / "handbook" / "kb", ROOT / "data" / "eval" / "handbook" / "questions.jsonl"),
    "office": (ROOT / "data" / "eval" / "office" / "kb", ROOT / "data" / "eval" / "office" / "questions.jsonl"),
    "offtopic": (ROOT / "data" / "kb", ROOT / "data" / "eval" / "offtopic.jsonl"),
    "offtopic-more": (ROOT / "data" / "kb", ROOT / "data" / "eval" / "offtopic-more.jsonl"),
    "drcd": (SHARED / "drcd-retrieval" / "kb", SHARED / "drcd-retrieval" / "questions.jsonl"),
    "medquad": (SHARED / "medquad-retrieval" / "kb", SHARED / "medquad-retrieval" / "questions.jsonl"),
}


@dataclass
class Candidates:
    """One question's signals (retriever.Signals), the documents of its candidates, the answer."""

    signals: r.Signals
    docs: list[str]
    expected: str
    question: str
    searched: list[str]  # the documents Retriever.search returns (seats and the floor included)

    def __getattr__(self, name: str) -> np.ndarray:
        if name == "signals":  # while unpickling
            raise AttributeError(name)
        return getattr(self.signals, name)


def found(c: Candidates, scores: np.ndarray, top_k: int, per_document: int) -> bool:
    per_doc: Counter[str] = Counter()
    shown: list[str] = []
    for j in np.argsort(-scores, kind="stable"):
        doc = c.docs[j]
        if per_doc[doc] >= per_document:
            continue
        per_doc[doc] += 1
        shown.append(doc)
        if len(shown) == top_k:
            break
    return c.expected in shown


def _ranks(scores: np.ndarray) -> np.ndarray:
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    return ranks


def _minmax(x: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi - lo > 1e-9 else np.ones_like(x)


def _z(x: np.ndarray) -> np.ndarray:
    sd = float(x.std())
    return (x - x.mean()) / sd if sd > 1e-9 else np.zeros_like(x)


def _title(c: Candidates, fused: np.ndarray, w: float = r.TITLE_WEIGHT) -> np.ndarray:
    return (1 - w) * fused + w * c.title


VARIANTS = {
    "retriever": lambda c: c.dense,  # not a fusion: Retriever.search itself, seats and floor included
    "lexical": lambda c: c.lexical,
    "dense": lambda c: c.dense,
    "calibrated": lambda c: c.calibrated,
    "shipped": lambda c: r.semantic_fusion(c.signals, r.question_weight(c.terms)),
    "fixed0.5": lambda c: _title(c, 0.5 * c.lexical + 0.5 * _minmax(c.calibrated)),
    "fixed0.3": lambda c: _title(c, 0.3 * c.lexical + 0.7 * _minmax(c.calibrated)),
    "rrf": lambda c: 1 / (60 + _ranks(c.lexical)) + 1 / (60 + _ranks(c.calibrated)),
    "rrf_title": lambda c: _title(c, 30 * (1 / (60 + _ranks(c.lexical)) + 1 / (60 + _ranks(c.calibrated)))),
    "minmax2": lambda c: _title(c, 0.5 * _minmax(c.lexical) + 0.5 * _minmax(c.calibrated)),
    "z": lambda c: _title(c, 0.1 * (_z(c.lexical) + _z(c.calibrated)), 0.0) + r.TITLE_WEIGHT * c.title,
}


class Remembered:
    """The embedder, with the questions' vectors kept from an earlier run (the index's are cached by ingest)."""

    def __init__(self, model: object) -> None:
        self.model = model
        self.known: dict[str, np.ndarray] = {}

    def __getattr__(self, name: str) -> object:
        return getattr(self.model, name)

    async def embed_query(self, text: str) -> np.ndarray:
        if text not in self.known:
            self.known[text] = await embed_query(self.model, text)  # type: ignore[arg-type]
        return self.known[text]


async def main(
    names: list[str], embedder_name: str, top_k: int, variants: list[str], per_document: int, dump: Path | None
) -> None:
    settings = load_settings({"EMBEDDINGS": embedder_name})
    model = make_embedder(embedder_name)
    embedder = model if isinstance(model, HashEmbedder) else Remembered(model)
    qcache_path = ROOT / "var" / f"fusion-queries-{embedder.name}.pickle"
    qcache: dict[str, np.ndarray] = pickle.loads(qcache_path.read_bytes()) if qcache_path.is_file() else {}
    if isinstance(embedder, Remembered):
        embedder.known = qcache
    retriever = r.Retriever.from_settings(embedder, settings.retrieval)
    print(f"{embedder.name}, top_k {top_k}, per document {per_document}")
    dumped: dict[str, list[Candidates]] = {}
    print(f"{'set':>10} {'n':>4} " + " ".join(f"{v:>10}" for v in variants))
    for name in names:
        kb, questions_path = SETS[name]
        if not kb.is_dir():
            continue
        with tempfile.TemporaryDirectory() as tmp:
            await ingest(kb, Path(tmp), embedder, chunk_chars=settings.retrieval.chunk_chars,
                         exact_max=settings.retrieval.exact_max_chunks, cache=vector_cache_path(settings))  # fmt: skip
            index = store.load(Path(tmp))
            assert index is not None
            rows = []
            for q in read_questions(questions_path):
                signals = await retriever.signals(index, q.question)
                assert signals is not None
                docs = [index.chunk(int(i)).doc_id.rsplit("/", 1)[-1] for i in signals.ids]
                searched = [h.chunk.doc_id.rsplit("/", 1)[-1] for h in await retriever.search(index, q.question, top_k)]
                rows.append(Candidates(signals, docs, q.expected.rsplit("/", 1)[-1], q.question, searched))
        dumped[name] = rows
        hits = [
            sum(
                c.expected in c.searched if v == "retriever" else found(c, VARIANTS[v](c), top_k, per_document)
                for c in rows
            )
            / len(rows)
            for v in variants
        ]
        print(f"{name:>10} {len(rows):>4} " + " ".join(f"{h:>10.3f}" for h in hits))
    qcache_path.parent.mkdir(exist_ok=True)
    qcache_path.write_bytes(pickle.dumps(qcache))
    if dump is not None:
        await asyncio.to_thread(dump.write_bytes, pickle.dumps(dumped))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS))
    parser.add_argument("--embedder", default="e5")
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--per-document", type=int, default=r.PER_DOCUMENT)
    parser.add_argument("--dump", type=Path, help="write every set's candidates here (pickle), for experiments")
    args = parser.parse_args()
    asyncio.run(main(args.sets, args.embedder, args.top_k, args.variants, args.per_document, args.dump))
