"""Limit decision latency (memory and Redis) and /ask throughput on cache hits with every
policy on (auth, per-user limit, tenant quota, cache, usage, metrics), one worker.

    .venv/bin/python bench/governance.py [--redis redis://127.0.0.1:6379/14] [--seconds 10] [--collections]

``--collections`` splits the knowledge base into two collections and limits the bench tenant
to one of them (the cost of the wall between doors).

Needs `wrk` (Debian package) for the HTTP load. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.walled import walled_kb  # noqa: E402
from core.auth import digest  # noqa: E402
from core.state import MemoryBackend, StateBackend  # noqa: E402
from core.state.base import AdmitPlan  # noqa: E402
from core.state.redis_backend import RedisBackend  # noqa: E402

KEY = "ah_bench-key-0000000000000000"
LUA = f"""
wrk.method = "POST"
wrk.body = '{{"question": "How do I claim travel expenses?"}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {KEY}"
"""


async def limit_latency(backend: StateBackend, n: int = 5000) -> tuple[float, float]:
    latencies = []
    for i in range(n):
        t = time.perf_counter()
        await backend.admit(AdmitPlan(window_key=f"bench:user{i % 500}", limit=1_000_000, window_sec=60))
        latencies.append((time.perf_counter() - t) * 1e6)
    latencies.sort()
    await backend.close()
    return latencies[n // 2], latencies[int(n * 0.99)]


def run_hub(env: dict[str, str], port: int, cwd: Path = ROOT) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-m", "core", "serve"], cwd=cwd, env={**os.environ, **env, "PORT": str(port)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("hub did not start")


def wrk(port: int, seconds: int, connections: int, script: Path) -> tuple[float, str, str]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), f"http://127.0.0.1:{port}/ask"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"^\s+50%\s+([\d.]+\w+)", out, re.M).group(1)  # type: ignore[union-attr]
    p99 = re.search(r"^\s+99%\s+([\d.]+\w+)", out, re.M).group(1)  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"wrk saw {errors.group(1)} error responses:\n{out}")
    return rps, p50, p99


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--collections", action="store_true", help="two collections, the tenant reads one")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("install wrk (apt-get install wrk)")

    print("limit decision latency (sliding window, one user of 500 per call):")
    for name, backend in (("memory", MemoryBackend()), ("redis", RedisBackend(args.redis))):
        p50, p99 = asyncio.run(limit_latency(backend))
        print(f"  {name:<7} p50 {p50:7.1f} µs   p99 {p99:7.1f} µs")

    with tempfile.TemporaryDirectory(prefix="askhub-bench-") as tmp:
        config = Path(tmp) / "hub.yaml"
        kb_dir, walls = walled_kb(Path(tmp)) if args.collections else (ROOT / "data" / "kb", {})
        tenant = {"requests_per_day": 100_000_000, **({"collections": ["public"]} if walls else {})}
        config.write_text(yaml.safe_dump({
            "clients": [{"name": "bench", "tenant": "hr", "key_sha256": [digest(KEY)]}],
            "tenants": {"hr": tenant}, **walls,
        }), encoding="utf-8")  # fmt: skip
        script = Path(tmp) / "ask.lua"
        script.write_text(LUA, encoding="utf-8")
        print(
            f"\n/ask cache hits, auth + limit + quota + cache + usage + metrics, 1 worker, {args.connections} connections:"
        )
        for name, redis_url in (("memory", ""), ("redis", args.redis)):
            env = {"HUB_CONFIG": str(config), "INDEX_DIR": f"{tmp}/index", "LOG_FILE": "", "KB_DIR": str(kb_dir),
                   "RATE_LIMIT_MAX_PER_USER": "100000000", "REDIS_URL": redis_url}  # fmt: skip
            port = 18300 + (1 if redis_url else 0)
            proc = run_hub(env, port)
            try:
                httpx.post(f"http://127.0.0.1:{port}/ask", json={"question": "How do I claim travel expenses?"},
                           headers={"Authorization": f"Bearer {KEY}"})  # fmt: skip
                wrk(port, 2, args.connections, script)  # warm up
                cpu0 = cpu_seconds(proc.pid)
                rps, p50, p99 = wrk(port, args.seconds, args.connections, script)
                cpu_ms = (cpu_seconds(proc.pid) - cpu0) * 1000 / (rps * args.seconds)
                print(f"  {name:<7} {rps:8.0f} req/s   p50 {p50:>8}   p99 {p99:>8}   hub CPU {cpu_ms:.2f} ms/request")
            finally:
                proc.terminate()
                proc.wait(10)


if __name__ == "__main__":
    main()
