"""CPU per ``POST /ask`` on a cache miss: the whole offline answer (retrieval with the question's
embedding, the extractive answerer, accounting), measured on the hub process itself.

    .venv/bin/python bench/ask_miss.py [--embedder hash|e5] [--rounds 2]

Starts ``python -m core serve`` on the sample knowledge base (in-memory state, no model key),
asks every question of data/eval/questions.jsonl and offtopic.jsonl once per round, each
with a new suffix so that none is a cache hit, one at a time, and reads the hub's CPU time
(user + system, /proc/<pid>/stat) before and after. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
KEY = "ah_bench-miss-key-000000000000"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def questions() -> list[str]:
    out = []
    for name in ("questions.jsonl", "offtopic.jsonl"):
        for line in (ROOT / "data" / "eval" / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                out.append(json.loads(line)["question"])
    return out


def main(embedder: str, rounds: int) -> None:
    port = 18500 + os.getpid() % 400
    with tempfile.TemporaryDirectory(prefix="askhub-miss-") as tmp:
        env = {**os.environ, "EMBEDDINGS": embedder, "INDEX_DIR": f"{tmp}/index", "PORT": str(port), "LOG_FILE": "",
               "HUB_API_KEYS": f"bench:bench:{KEY}", "RATE_LIMIT_MAX_PER_USER": "1000000"}  # fmt: skip
        env.pop("REDIS_URL", None)
        env.pop("OPENAI_API_KEY", None)
        proc = subprocess.Popen([sys.executable, "-m", "core", "serve"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(1200):
                try:
                    if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            asked = questions()
            headers = {"Authorization": f"Bearer {KEY}"}
            with httpx.Client(timeout=30, headers=headers) as client:
                client.post(f"{url}/ask", json={"question": "warm-up: how do I claim travel expenses?"})
                latencies: list[float] = []
                before = cpu_seconds(proc.pid)
                for r in range(rounds):
                    for n, q in enumerate(asked):
                        started = time.perf_counter()
                        response = client.post(f"{url}/ask", json={"question": f"{q} ({r}-{n})"})
                        latencies.append((time.perf_counter() - started) * 1000)
                        assert response.status_code == 200 and not response.json()["cached"], response.text
                spent = cpu_seconds(proc.pid) - before
            latencies.sort()
            n = len(latencies)
            print(
                f"{embedder}: {n} cache-miss /ask, hub CPU {spent / n * 1000:.1f} ms per request; "
                f"latency p50 {statistics.median(latencies):.1f} ms, p99 {latencies[int(n * 0.99) - 1]:.1f} ms"
            )
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", default="hash")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    main(args.embedder, args.rounds)
