"""What tracing costs: cached /ask (auth, limits, quota, cache, usage, metrics on) under wrk,
one worker, with tracing off and on, optionally against another source tree (the code
before tracing existed) for an off-vs-before comparison. Also the no-op hooks alone.

    .venv/bin/python bench/tracing_overhead.py [--seconds 10] [--rounds 3] [--before /path/to/old/tree]

The configurations take turns, ``--rounds`` times, so a busy machine's drift hits all alike;
hub CPU per request (the process's own user+system time) is the figure to compare.

"on" exports to a local OTLP/HTTP collector fake (tests/fakes/otlp_collector.py): every
trace, and one in ten (OTEL_TRACES_SAMPLER=parentbased_traceidratio, ARG 0.1).
Prints numbers; asserts nothing. Needs `wrk`.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import timeit
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.governance import KEY, LUA, cpu_seconds, run_hub, wrk  # noqa: E402
from core.auth import digest  # noqa: E402


def hooks() -> None:
    """The per-request hooks as an untraced request runs them (ns per call)."""
    from core import tracing

    for name, stmt in (
        ("span('retrieval', **attrs)", "with span('retrieval', **{'askhub.top_k': 4}): pass"),
        ("model_call(...)", "with model_call('chat', 'openai', 'gpt', 'chat', 0): pass"),
        ("trace_id()", "trace_id()"),
        ("carrier()", "carrier()"),
    ):
        n = 200_000
        seconds = timeit.timeit(stmt, globals=vars(tracing), number=n)
        print(f"  {name:<28} {seconds / n * 1e9:6.0f} ns")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", type=Path, help="another source tree (e.g. main before tracing) to compare")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("install wrk (apt-get install wrk)")
    print("no-op hooks with tracing off:")
    hooks()

    from core.config import load_settings
    from core.kb.embedders import HashEmbedder
    from core.kb.ingest import ingest
    from tests.fakes.otlp_collector import FakeCollector

    with tempfile.TemporaryDirectory(prefix="askhub-tracing-bench-") as tmp, FakeCollector() as collector:
        retrieval = load_settings({}).retrieval
        asyncio.run(ingest(ROOT / "data" / "kb", Path(tmp) / "index", HashEmbedder(),
                           chunk_chars=retrieval.chunk_chars, exact_max=retrieval.exact_max_chunks))  # fmt: skip
        config = Path(tmp) / "hub.yaml"
        config.write_text(yaml.safe_dump({
            "clients": [{"name": "bench", "tenant": "hr", "key_sha256": [digest(KEY)]}],
            "tenants": {"hr": {"requests_per_day": 100_000_000}},
        }), encoding="utf-8")  # fmt: skip
        script = Path(tmp) / "ask.lua"
        script.write_text(LUA, encoding="utf-8")
        base = {"HUB_CONFIG": str(config), "INDEX_DIR": f"{tmp}/index", "LOG_FILE": "", "EMBEDDINGS": "hash",
                "RATE_LIMIT_MAX_PER_USER": "100000000", "REDIS_URL": ""}  # fmt: skip
        on = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_SERVICE_NAME": "askhub-bench"}
        sampled = {**on, "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"}
        runs = [("off", ROOT, {}), ("on, 10 % of traces", ROOT, sampled), ("on, every trace", ROOT, on)]
        if args.before:
            runs.insert(0, ("before tracing", args.before.resolve(), {}))
        print(f"\n/ask cache hits, 1 worker, {args.connections} connections, {args.seconds} s a run:")
        cpu: dict[str, list[float]] = {name: [] for name, _, _ in runs}
        for round_ in range(args.rounds):
            for port, (name, tree, extra) in enumerate(runs, start=18350):
                proc = run_hub({**base, **extra}, port, cwd=tree)
                try:
                    wrk(port, 2, args.connections, script)  # warm up (and fill the cache)
                    cpu0 = cpu_seconds(proc.pid)
                    rps, p50, p99 = wrk(port, args.seconds, args.connections, script)
                    cpu[name].append((cpu_seconds(proc.pid) - cpu0) * 1e6 / (rps * args.seconds))
                    print(f"  {round_ + 1}  {name:<26} {rps:8.0f} req/s   p50 {p50:>8}   p99 {p99:>8}"
                          f"   hub CPU {cpu[name][-1]:5.0f} µs/request")  # fmt: skip
                finally:
                    proc.terminate()
                    proc.wait(10)
        print("\nhub CPU per request, median of the rounds:")
        for name, values in cpu.items():
            print(f"  {name:<26} {statistics.median(values):5.0f} µs   (runs: {', '.join(f'{v:.0f}' for v in values)})")
        if collector.spans:
            print(f"  (collector received {len(collector.spans)} spans in {collector.requests} exports)")


if __name__ == "__main__":
    main()
