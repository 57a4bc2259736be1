"""Gateway overhead, side by side in one run against the same very fast fake upstream:
direct, Ask Hub's /v1/chat/completions (auth, limits, routing with the PII check, usage and
metrics on), and LiteLLM Proxy (installed from PyPI into var/bench/litellm-venv by this
script — never a dependency of the hub). One worker each; wrk as the load.

    .venv/bin/python bench/gateway_overhead.py [--seconds 10] [--skip-litellm]
"""

from __future__ import annotations

import argparse
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

KEY = "ah_overhead-bench-key-00000000"
LITELLM_KEY = "sk-litellm-bench-0123456789abcdef0123456789abcdef"
LITELLM_VENV = ROOT / "var" / "bench" / "litellm-venv"
LITELLM_VERSION = "1.108.7"  # the version measured; 1.110 needs a proxy package not on PyPI
BODY = '{"model":"%s","messages":[{"role":"user","content":"Say hello to the team, please."}]}'


def script(path: Path, model: str, key: str) -> Path:
    path.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = [[{BODY % model}]]\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {key}"\n',
        encoding="utf-8",
    )
    return path


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url}: the process exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


def cpu_seconds(pid: int) -> float:
    total = 0.0
    for p in [pid, *_children(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError):
            pass
    return total


def _children(pid: int) -> list[int]:
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    found = [int(k) for k in kids]
    for k in list(found):
        found += _children(k)
    return found


def load(url: str, lua: Path, connections: int, seconds: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(lua), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    if "Non-2xx" in out:
        raise SystemExit(f"errors under load at {url}:\n{out}")

    def ms(label: str) -> float:
        value = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)", out, re.M)
        assert value, out
        number, unit = float(value.group(1)), value.group(2)
        return number / 1000 if unit == "us" else number * 1000 if unit == "s" else number

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return {"rps": rps, "p50": ms("50%"), "p99": ms("99%")}


def ensure_litellm() -> Path:
    binary = LITELLM_VENV / "bin" / "litellm"
    if not binary.exists():
        print(f"installing LiteLLM {LITELLM_VERSION} into {LITELLM_VENV} (one time)...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
        subprocess.run([str(LITELLM_VENV / "bin" / "pip"), "install", "-q", f"litellm[proxy]=={LITELLM_VERSION}"],
                       check=True)  # fmt: skip
    return binary


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--skip-litellm", action="store_true")
    parser.add_argument("--collections", action="store_true", help="two collections, the tenant reads one")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("install wrk (apt-get install wrk)")

    procs: list[subprocess.Popen[bytes]] = []
    tmp = Path(tempfile.mkdtemp(prefix="askhub-overhead-"))
    try:
        upstream_port, hub_port, litellm_port = 18510, 18511, 18512
        upstream = subprocess.Popen([sys.executable, str(ROOT / "bench" / "fast_upstream.py"), str(upstream_port)])
        procs.append(upstream)
        time.sleep(0.5)
        upstream_url = f"http://127.0.0.1:{upstream_port}/v1"

        config = tmp / "hub.yaml"
        kb_dir, walls = walled_kb(tmp) if args.collections else (ROOT / "data" / "kb", {})
        tenant = {"requests_per_day": 10**9, **({"collections": ["public"]} if walls else {})}
        config.write_text(yaml.safe_dump({"clients": [{"name": "bench", "tenant": "hr", "key_sha256": [digest(KEY)]}],
                                          "tenants": {"hr": tenant}, **walls}), encoding="utf-8")  # fmt: skip
        env = {**os.environ, "HUB_CONFIG": str(config), "INDEX_DIR": str(tmp / "index"), "LOG_FILE": "", "KB_DIR": str(kb_dir),
               "OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": upstream_url, "PORT": str(hub_port),
               "RATE_LIMIT_MAX_PER_USER": str(10**9)}  # fmt: skip
        hub = subprocess.Popen([sys.executable, "-m", "core", "serve"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        procs.append(hub)
        wait_http(f"http://127.0.0.1:{hub_port}/healthz", hub)

        targets = [
            ("direct", f"{upstream_url}/chat/completions", script(tmp / "direct.lua", "gpt-4o-mini", "sk"), None),
            ("ask-hub", f"http://127.0.0.1:{hub_port}/v1/chat/completions", script(tmp / "hub.lua", "small", KEY),
             hub.pid),
        ]  # fmt: skip
        if not args.skip_litellm:
            litellm_cfg = tmp / "litellm.yaml"
            # Authentication on, as in the hub: LiteLLM checks its master key.
            litellm_cfg.write_text(yaml.safe_dump({"general_settings": {"master_key": LITELLM_KEY}, "model_list": [
                {"model_name": "gpt-4o-mini", "litellm_params": {"model": "openai/gpt-4o-mini", "api_base": upstream_url,
                                                                 "api_key": "sk-bench"}}]}), encoding="utf-8")  # fmt: skip
            lite = subprocess.Popen([str(ensure_litellm()), "--config", str(litellm_cfg), "--port", str(litellm_port),
                                     "--num_workers", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    env={**os.environ, "LITELLM_LOG": "ERROR"})  # fmt: skip
            procs.append(lite)
            wait_http(f"http://127.0.0.1:{litellm_port}/health/liveliness", lite, timeout=300)
            targets.append(("litellm", f"http://127.0.0.1:{litellm_port}/v1/chat/completions",
                            script(tmp / "litellm.lua", "gpt-4o-mini", LITELLM_KEY), lite.pid))  # fmt: skip

        results: dict[tuple[str, int], dict[str, float]] = {}
        for name, url, lua, pid in targets:
            load(url, lua, 8, 2)  # warm up
            for c in args.concurrency:
                cpu0 = cpu_seconds(pid) if pid else 0.0
                row = load(url, lua, c, args.seconds)
                if pid:
                    row["cpu_ms"] = (cpu_seconds(pid) - cpu0) * 1000 / (row["rps"] * args.seconds)
                results[(name, c)] = row
        print(
            f"\n{'target':<9} {'conc':>4} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/req':>11} {'overhead p50':>13}"
        )
        for (name, c), row in results.items():
            direct = results[("direct", c)]["p50"]
            cpu = f"{row['cpu_ms']:.2f}" if "cpu_ms" in row else "-"
            over = f"{row['p50'] - direct:+.2f} ms" if name != "direct" else "-"
            print(f"{name:<9} {c:>4} {row['rps']:>9.0f} {row['p50']:>8.2f} {row['p99']:>8.2f} {cpu:>11} {over:>13}")
        if ("litellm", 64) in results and ("ask-hub", 64) in results:
            ratio = results[("ask-hub", 64)]["rps"] / results[("litellm", 64)]["rps"]
            print(f"\nAsk Hub / LiteLLM requests per second at concurrency 64: {ratio:.1f}x")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
