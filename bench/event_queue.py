"""The durable queue under load: events accepted and answered per second, end-to-end answer
latency with a model of fixed 500 ms latency, and a soak with resident memory sampled.

    .venv/bin/python bench/event_queue.py [--events 500] [--soak-minutes 10 --rate 5]

One web process (accepting only) and one worker process share a private Redis (append-only
file on); the LINE adapter and a fake LINE API are the witness of every answer.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import HubProcess, RedisServer  # noqa: E402
from tests.fakes.line_api import BOT_USER_ID, FakeLineAPI  # noqa: E402
from tests.fakes.openai_upstream import FakeOpenAI  # noqa: E402
from tests.test_line_adapter import TOKEN, new_user, sign, source, text_event  # noqa: E402
from tests.test_scale import environment  # noqa: E402


def requests_for(line: FakeLineAPI, url: str, count: int) -> tuple[list[dict], list[dict]]:  # type: ignore[type-arg]
    events, requests = [], []
    for n in range(count):
        event = text_event(line, f"How do I claim travel expenses? #{n}", source(new_user()))
        body = json.dumps({"destination": BOT_USER_ID, "events": [event]}, ensure_ascii=False)
        headers = {"Content-Type": "application/json", "X-Line-Signature": sign(body.encode())}
        events.append(event)
        requests.append({"url": f"{url}/line/webhook", "body": body, "headers": headers})
    return events, requests


def send(requests: list[dict]) -> list[list[float]]:  # type: ignore[type-arg]
    out = subprocess.run([sys.executable, "-m", "tests.fakes.burst"], input=json.dumps(requests), cwd=ROOT,
                         capture_output=True, text=True, timeout=600, check=True)  # fmt: skip
    return json.loads(out.stdout)


def answered_at(line: FakeLineAPI, events: list[dict], timeout: float) -> dict[str, float]:  # type: ignore[type-arg]
    """When each event's answer reached LINE (monotonic clock), waiting for all of them."""
    wanted = {e["source"]["userId"]: e["replyToken"] for e in events}
    tokens = {token: user for user, token in wanted.items()}
    deadline = time.monotonic() + timeout
    found: dict[str, float] = {}
    while True:
        for call in line.calls:
            if call.status == 200 and call.path.endswith(("/reply", "/push")) and isinstance(call.json, dict):
                user = tokens.get(call.json.get("replyToken")) or (
                    call.json.get("to") if call.json.get("to") in wanted else None
                )
                if user and user not in found:
                    found[user] = call.time
        if len(found) >= len(events) or time.monotonic() >= deadline:
            return found
        time.sleep(0.05)


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--soak-minutes", type=float, default=0)
    parser.add_argument("--rate", type=float, default=5.0, help="events per second during the soak")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="askhub-queue-"))
    redis = RedisServer(tmp).start(durable=True)
    with FakeLineAPI(access_token=TOKEN) as line, FakeOpenAI() as model:
        model.set_behavior(None, delay=0.5)
        index = tmp / "index"
        subprocess.run([sys.executable, "-m", "core", "ingest"], cwd=ROOT, env={**os.environ, "INDEX_DIR": str(index)},
                       capture_output=True, check=True)  # fmt: skip
        common = {"line": {"reply_within_sec": 25}, "queue": {"workers": 128}}
        extra = {"OPENAI_API_KEY": "sk", "OPENAI_BASE_URL": model.base_url, "LOG_FILE": ""}
        web_env = environment(tmp, index, line, redis.url, "web", {**common, "queue": {"consume": False}}, **extra)
        worker_env = environment(tmp, index, line, redis.url, "worker", {**common, "models": [
            {"name": "small", "model": "gpt-4o-mini", "max_concurrency": 128}]}, **extra)  # fmt: skip
        web = HubProcess(web_env, tmp).wait_ready()
        worker = HubProcess(worker_env, tmp, ("worker",)).wait_output("worker ready")
        try:
            events, requests = requests_for(line, web.url, args.events)
            started = time.monotonic()
            results = send(requests)
            accepted = time.monotonic() - started
            assert all(status == 200 for status, _, _ in results), "every event accepted"
            done = answered_at(line, events, timeout=600)
            finished = max(done.values()) - started
            latencies = [done[e["source"]["userId"]] - sent for e, (_, _, sent) in zip(events, results, strict=True)
                         if e["source"]["userId"] in done]  # fmt: skip
            acks = [seconds for _, seconds, _ in results]
            print(f"{args.events} events, model latency 500 ms, 1 web + 1 worker process (128 concurrent answers)")
            print(f"  accepted: {args.events / accepted:8.0f} events/s   ack p50 {statistics.median(acks) * 1000:6.1f} ms"
                  f"   p99 {percentile(acks, 0.99) * 1000:6.1f} ms   max {max(acks) * 1000:6.1f} ms")  # fmt: skip
            print(f"  answered: {len(done) / finished:8.1f} events/s   ({len(done)} of {args.events})")
            print(
                f"  end-to-end answer latency p50 {statistics.median(latencies):.2f} s   p99 {percentile(latencies, 0.99):.2f} s"
            )
            if args.soak_minutes:
                soak(line, web, worker, args.soak_minutes, args.rate)
        finally:
            web.stop()
            worker.stop()
            redis.stop()


def soak(line: FakeLineAPI, web: HubProcess, worker: HubProcess, minutes: float, rate: float) -> None:
    print(f"\nsoak: {rate} events/s for {minutes} min; resident memory (MB) every minute")
    print(f"  {'min':>4} {'web RSS':>8} {'worker RSS':>11} {'answered':>9}")
    total = 0
    end = time.monotonic() + minutes * 60
    next_sample = time.monotonic()
    sent_events: list[dict] = []  # type: ignore[type-arg]
    while time.monotonic() < end:
        if time.monotonic() >= next_sample:
            answered = len(answered_at(line, sent_events, timeout=0)) if sent_events else 0
            print(f"  {int((time.monotonic() - end) / 60 + minutes):>4} {rss_mb(web.proc.pid):8.0f} "
                  f"{rss_mb(worker.proc.pid):11.0f} {answered:>9}", flush=True)  # fmt: skip
            next_sample += 60
        events, requests = requests_for(line, web.url, int(rate))
        send(requests)
        sent_events += events
        total += len(events)
        time.sleep(1.0)
    print(f"  {minutes:>4.0f} {rss_mb(web.proc.pid):8.0f} {rss_mb(worker.proc.pid):11.0f}   ({total} events sent)")


if __name__ == "__main__":
    main()
