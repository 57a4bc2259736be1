"""What "the model decides" costs: model calls per question with a chat model configured.

    .venv/bin/python bench/model_decides.py [--embedder e5|hash]

Runs the real hub in-process on the sample knowledge base with the fake OpenAI upstream (which
answers every call with the "no answer" signal, as a model would for an off-topic question), asks
every question of data/eval/offtopic*.jsonl and of the answerable sets (questions.jsonl,
crosslang) once through ``POST /ask`` (answer cache off, so duplicates count), and counts the
fake's recorded calls per question: the answer's call (its prompt holds the numbered passages)
and the question rewrite's, by upstream model (gpt-4o-mini is the cheap ``small`` model, gpt-4o
the ``large`` one the ``long``/``reasoning`` routes try first). Prints numbers; asserts nothing.
Run it from an older checkout to compare (the script only needs ``tests/`` and ``core/``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import HubServer, make_settings, write_yaml  # noqa: E402
from tests.fakes.openai_upstream import FakeOpenAI, content_text  # noqa: E402

SETS = {
    "off-topic": ["offtopic.jsonl", "offtopic-more.jsonl", "offtopic-third.jsonl"],
    "answerable": ["questions.jsonl", "crosslang/questions.jsonl"],
}


def questions(names: list[str]) -> list[str]:
    rows = []
    for name in names:
        lines = (ROOT / "data" / "eval" / name).read_text(encoding="utf-8").splitlines()
        rows += [json.loads(line)["question"] for line in lines if line.strip()]
    return rows


def main(embedder: str) -> None:
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAI() as fake:
        fake.set_behavior(None, reply="NO_ANSWER")
        config = write_yaml(Path(tmp) / "hub.yaml", {"cache": {"enabled": False}})
        settings = make_settings(Path(tmp), EMBEDDINGS=embedder, HUB_CONFIG=str(config), OPENAI_API_KEY="sk-bench",
                                 OPENAI_BASE_URL=fake.base_url, RATE_LIMIT_MAX_PER_USER="100000")  # fmt: skip
        with HubServer(settings) as hub, httpx.Client(base_url=hub.url, timeout=60) as client:
            for label, names in SETS.items():
                asked = Counter[str]()
                for question in questions(names):
                    fake.reset()
                    fake.set_behavior(None, reply="NO_ANSWER")
                    body = client.post("/ask", json={"question": question}).json()
                    answer = rewrite = 0
                    for call in fake.calls:
                        messages = (call.json or {}).get("messages") or [{}]
                        if content_text(messages[-1].get("content")).startswith("Context:"):
                            answer += 1
                            asked[f"answer by {call.model}"] += 1
                        else:
                            rewrite += 1
                            asked[f"rewrite by {call.model}"] += 1
                    asked["questions"] += 1
                    asked["reached the model"] += answer > 0
                    asked["declined without a call"] += body.get("model") == "none"
                    asked["model calls"] += answer + rewrite
                print(f"{label} ({embedder}): " + ", ".join(f"{k} {v}" for k, v in asked.items()))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--embedder", default="e5", choices=["e5", "hash"])
    main(parser.parse_args().embedder)
