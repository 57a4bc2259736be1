"""Every question's retrieval signals on every domain we have, dumped once for fitting.

    .venv/bin/python bench/collect_signals.py [--domains hr-it shop ...]

For each domain (a knowledge base, its answerable questions and the off-topic questions
asked of it) the documents are ingested with e5 (the content-hash vector cache makes a re-run
cheap), and ``Retriever.signals`` of each question is kept with the documents of its
candidates and the expected document: ``var/fit-now/<domain>.pickle``. bench/fit_retrieval.py
fits and evaluates from these files without embedding anything again.

``searched`` (the "before" columns) comes from ``var/fit/<domain>.pickle`` when present: a
collection made by this script run from a checkout of the retriever before issue #25 (commit
a0a0e45: ``git archive a0a0e45 | tar -x -C /tmp/before``, copy this script and data/eval into it,
run it there, copy its var/fit/ here). Without it, ``searched`` is today's ``Retriever.search``.
"""

from __future__ import annotations

import argparse
import asyncio
import pickle
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.config import load_settings  # noqa: E402
from core.kb import bilingual, store  # noqa: E402
from core.kb import retriever as r  # noqa: E402
from core.kb.embedders import embed_query, make_embedder  # noqa: E402
from core.kb.evaluate import read_questions  # noqa: E402
from core.kb.ingest import ingest  # noqa: E402
from core.kb.text import script_group  # noqa: E402

EVAL = ROOT / "data" / "eval"
# ../shared from the main checkout (/work/main), ../../shared from a worktree (/work/wt/<name>): read, never copied
SHARED = next((p / "shared" / "datasets" for p in ROOT.parents if (p / "shared" / "datasets").is_dir()), ROOT)
GENERIC_OFFTOPIC = sorted(EVAL.glob("offtopic*.jsonl"))
BEFORE = ROOT / "var" / "fit"  # a collection made with the retriever before issue #25: its "searched" is kept
OUT = ROOT / "var" / "fit-now"


@dataclass(frozen=True)
class Domain:
    name: str
    kb: Path
    questions: list[Path]
    offtopic: list[Path] = field(default_factory=list)  # the domain's own off-topic questions
    generic: bool = True  # the generic off-topic sets are off-topic here (not for Wikipedia or medicine)


def domains() -> dict[str, Domain]:
    found = {
        "sample": Domain("sample", ROOT / "data" / "kb", [EVAL / "questions.jsonl", EVAL / "crosslang" / "questions.jsonl"]),
        "drcd": Domain("drcd", SHARED / "drcd-retrieval" / "kb", [SHARED / "drcd-retrieval" / "questions.jsonl"], generic=False),
        "medquad": Domain("medquad", SHARED / "medquad-retrieval" / "kb", [SHARED / "medquad-retrieval" / "questions.jsonl"], generic=False),
    }  # fmt: skip
    for folder in sorted(p for p in EVAL.iterdir() if (p / "kb").is_dir() and (p / "questions.jsonl").is_file()):
        own = sorted(folder.glob("offtopic*.jsonl"))
        found[folder.name] = Domain(folder.name, folder / "kb", [folder / "questions.jsonl"], own)
    return found


@dataclass
class Row:
    """One question asked of one knowledge base: its signals and what the answer is."""

    domain: str
    qid: str
    question: str
    lang: str
    kind: str  # same | other | short | mixed | noisy (derived for sets without the field); "offtopic"
    source: str  # the question file's stem
    expected: str  # "" for an off-topic question
    signals: r.Signals | None
    docs: list[str]  # each candidate's document name
    doc_groups: dict[str, int]  # every document's script group
    searched: list[str]  # the documents Retriever.search returned with top_k 3 before this change (floor included)


def _kind(item_kind: str, question: str, expected_group: int) -> str:
    if item_kind:
        return item_kind
    return "same" if script_group(question) == expected_group else "other"


class Remembered:
    """The embedder, with the questions' vectors kept between runs."""

    def __init__(self, model: object, known: dict[str, np.ndarray]) -> None:
        self.model = model
        self.known = known

    def __getattr__(self, name: str) -> object:
        return getattr(self.model, name)

    async def embed_query(self, text: str) -> np.ndarray:
        if text not in self.known:
            self.known[text] = await embed_query(self.model, text)  # type: ignore[arg-type]
        return self.known[text]


def _kinds(path: Path) -> dict[str, str]:
    import json

    out: dict[str, str] = {}
    for line in path.read_text("utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            out[item["id"]] = item.get("kind", "")
    return out


async def collect(domain: Domain, embedder: Remembered, settings: object) -> list[Row]:
    rows: list[Row] = []
    retriever = r.Retriever(embedder)  # type: ignore[arg-type]
    retriever._dictionary = bilingual.shared()  # whatever learned.json holds now
    before_path = BEFORE / f"{domain.name}.pickle"
    before = (
        {(x.qid, x.question): x.searched for x in pickle.loads(before_path.read_bytes())}
        if before_path.is_file()
        else {}
    )
    with tempfile.TemporaryDirectory() as tmp:
        await ingest(domain.kb, Path(tmp), embedder, chunk_chars=settings.retrieval.chunk_chars,  # type: ignore[attr-defined]
                     exact_max=settings.retrieval.exact_max_chunks, cache=ROOT / "var" / "fit-vectors.sqlite")  # type: ignore[attr-defined]  # fmt: skip
        index = store.load(Path(tmp))
        assert index is not None
        doc_groups: dict[str, int] = {}
        for i in range(index.size):
            doc_groups.setdefault(index.chunk(i).doc_id.rsplit("/", 1)[-1], int(index.groups[i]))
        search = retriever.search
        sets = [(p, False) for p in domain.questions] + [(p, True) for p in domain.offtopic]
        if domain.generic:
            sets += [(p, True) for p in GENERIC_OFFTOPIC]
        for path, off in sets:
            kinds = _kinds(path)
            for q in read_questions(path):
                signals = await retriever.signals(index, q.question)
                docs = [] if signals is None else [index.chunk(int(i)).doc_id.rsplit("/", 1)[-1] for i in signals.ids]
                expected = "" if off else q.expected.rsplit("/", 1)[-1]
                kind = "offtopic" if off else _kind(kinds.get(q.id, ""), q.question, doc_groups.get(expected, 0))
                source = path.stem if path.parent == EVAL else f"{path.parent.name}/{path.stem}"
                searched = before.get((q.id, q.question))
                if searched is None:
                    searched = [h.chunk.doc_id.rsplit("/", 1)[-1] for h in await search(index, q.question, 3)]
                rows.append(
                    Row(
                        domain.name,
                        q.id,
                        q.question,
                        q.lang,
                        kind,
                        source,
                        expected,
                        signals,
                        docs,
                        doc_groups,
                        searched,
                    )
                )
    return rows


async def main(names: list[str]) -> None:
    settings = load_settings({"EMBEDDINGS": "e5"})
    qcache_path = ROOT / "var" / "fit-queries.pickle"
    known = pickle.loads(qcache_path.read_bytes()) if qcache_path.is_file() else {}
    embedder = Remembered(make_embedder("e5"), known)
    OUT.mkdir(parents=True, exist_ok=True)
    for name in names:
        started = time.perf_counter()
        rows = await collect(domains()[name], embedder, settings)
        (OUT / f"{name}.pickle").write_bytes(pickle.dumps(rows))
        qcache_path.write_bytes(pickle.dumps(embedder.known))
        print(f"{name}: {len(rows)} questions, {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", nargs="+", default=None)
    args = parser.parse_args()
    asyncio.run(main(args.domains or list(domains())))
