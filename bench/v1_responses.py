"""Latency of ``POST /v1/responses`` (translated to chat completions) beside ``POST
/v1/chat/completions`` on the same hub, over the local fake upstream, one request at a time.

    .venv/bin/python bench/v1_responses.py [--requests 300]

The difference is what the translation costs (parsing the Responses body, building the chat
body, turning the completion or its chunks into a Response or its typed events). Prints
median and p95 per route; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from core.config import load_settings
from core.kb.embedders import HashEmbedder
from core.kb.ingest import ingest
from tests.conftest import SAMPLE_KB, HubServer, make_settings
from tests.fakes.openai_upstream import FakeOpenAI

QUESTION = "How do I reset my MFA?"
CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("chat", "/v1/chat/completions", {"model": "small", "messages": [{"role": "user", "content": QUESTION}]}),
    ("responses", "/v1/responses", {"model": "small", "input": QUESTION}),
    ("chat stream", "/v1/chat/completions",
     {"model": "small", "stream": True, "messages": [{"role": "user", "content": QUESTION}]}),
    ("responses stream", "/v1/responses", {"model": "small", "input": QUESTION, "stream": True}),
]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    defaults = load_settings({})
    asyncio.run(ingest(SAMPLE_KB, tmp / "index", HashEmbedder(), chunk_chars=defaults.retrieval.chunk_chars,
                       exact_max=defaults.retrieval.exact_max_chunks))  # fmt: skip
    with FakeOpenAI() as fake:
        settings = make_settings(tmp, INDEX_DIR=str(tmp / "index"), OPENAI_API_KEY="sk",
                                 OPENAI_BASE_URL=fake.base_url, RATE_LIMIT_MAX_PER_USER="1000000")  # fmt: skip
        with HubServer(settings) as hub, httpx.Client(base_url=hub.url, timeout=10) as client:
            for name, path, body in CASES:
                for _ in range(30):  # warm-up
                    client.post(path, json=body)
                took = []
                for _ in range(args.requests):
                    started = time.perf_counter()
                    client.post(path, json=body).raise_for_status()
                    took.append((time.perf_counter() - started) * 1000)
                p95 = statistics.quantiles(took, n=20)[18]
                print(f"{name:18s} median {statistics.median(took):.2f} ms  p95 {p95:.2f} ms")


if __name__ == "__main__":
    main()
