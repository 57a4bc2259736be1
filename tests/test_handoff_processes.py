"""Handoffs across real processes on one Redis: two web processes accept, workers relay, and a
worker killed (-9) while its push to LINE is in flight leaves the relay to the next worker, which
delivers it once (the same X-Line-Retry-Key: LINE answers the repeat 409).

Redeliveries go to the other web process on purpose (a platform's retry may reach any replica).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import HubProcess, RedisServer, write_yaml
from tests.fakes.line_api import FakeLineAPI
from tests.fakes.slack_api import FakeSlack
from tests.test_crash_answers import queue_empty, wait
from tests.test_handoff_line import AGENTS, agent_reply
from tests.test_line_adapter import SECRET as LINE_SECRET
from tests.test_line_adapter import TOKEN, new_user, source, text_event
from tests.test_scale import webhook
from tests.test_slack_adapter import SECRET as SLACK_SECRET
from tests.test_slack_adapter import callback, signed_headers


def slack_post(url: str, payload: dict[str, Any], retry: int = 0) -> None:
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", **signed_headers(body)}
    if retry:
        headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
    assert httpx.post(f"{url}/slack/events", content=body, headers=headers, timeout=10).status_code == 200


def thread_texts(slack: FakeSlack, ts: str) -> list[str]:
    return [m["text"] for m in list(slack.messages.values()) if m.get("thread_ts") == ts]


def pushes_to(line: FakeLineAPI, user: str) -> list[str]:
    return [m["text"] for d in line.deliveries() if d.via == "push" and d.to == user for m in d.messages]


def test_relays_are_exactly_once_across_processes_and_a_killed_worker(tmp_path: Path, sample_index: Path) -> None:
    redis = RedisServer(tmp_path).start()
    procs: list[HubProcess] = []
    with FakeSlack() as slack, FakeLineAPI(access_token=TOKEN) as line:
        base = {"queue": {"reclaim_after_sec": 1}, "line": {"tenant": "cs"}, "handoff": {"slack_channel": AGENTS}}
        env = {"INDEX_DIR": str(sample_index), "REDIS_URL": redis.url, "SLACK_BOT_TOKEN": slack.bot_token,
               "SLACK_SIGNING_SECRET": SLACK_SECRET, "SLACK_API_URL": slack.api_url,
               "LINE_CHANNEL_SECRET": LINE_SECRET, "LINE_CHANNEL_ACCESS_TOKEN": TOKEN, "LINE_API_URL": line.url}  # fmt: skip
        web_env = {**env, "HUB_CONFIG": str(write_yaml(tmp_path / "web.yaml", {**base, "queue": {"consume": False}}))}
        worker_env = {**env, "HUB_CONFIG": str(write_yaml(tmp_path / "worker.yaml", base))}
        try:
            webs = [HubProcess(web_env, tmp_path).wait_ready() for _ in range(2)]
            procs += webs
            first = HubProcess(worker_env, tmp_path, ("worker",)).wait_output("worker ready")
            procs.append(first)
            user = new_user()

            trigger = text_event(line, "我要找真人客服", source(user))
            assert webhook(webs[0].url, [trigger]).status_code == 200
            assert webhook(webs[1].url, [trigger]).status_code == 200  # the same event at the other replica
            openings = wait(lambda: [ts for ts, m in list(slack.messages.items())
                                     if slack.channel_of.get(ts) == AGENTS and not m.get("thread_ts")], "opened")  # fmt: skip
            (ts,) = openings
            wait(lambda: [d for d in line.deliveries() if d.to == trigger["replyToken"]], "the customer told")

            said = [text_event(line, f"message {n}", source(user)) for n in range(3)]
            for n, sent in enumerate(said):
                assert webhook(webs[n % 2].url, [sent]).status_code == 200
                assert webhook(webs[(n + 1) % 2].url, [sent]).status_code == 200  # redelivered elsewhere
            wait(lambda: len(thread_texts(slack, ts)) == 3, "three messages in the thread")

            # The agent replies; the worker is killed while LINE holds its push (taken, unanswered).
            line.hold("/v2/bot/message/push")
            reply = agent_reply(ts, "您好，我來處理")
            slack_post(webs[0].url, reply)
            wait(lambda: pushes_to(line, user), "the push reached LINE")
            first.proc.kill()
            first.proc.wait(5)
            slack_post(webs[1].url, reply, retry=1)  # Slack retries meanwhile, at the other replica
            slack_post(webs[1].url, callback({**reply["event"], "type": "app_mention"}))  # and its twin event
            line.reset_holds()
            second = HubProcess(worker_env, tmp_path, ("worker",)).wait_output("worker ready")
            procs.append(second)
            wait(lambda: len([c for c in line.pushes() if c.json["to"] == user]) >= 2, "the reclaimed push")
            for kind in ("line.event", "slack.handoff_reply"):
                wait(lambda kind=kind: queue_empty(redis, kind), f"{kind} drained")
            keys = {c.headers["x-line-retry-key"] for c in line.pushes() if c.json["to"] == user}
            assert len(keys) == 1  # every attempt under one retry key ...
            assert pushes_to(line, user) == ["您好，我來處理"]  # ... so the customer got it once
            assert sorted(thread_texts(slack, ts)) == [f"*Customer:* message {n}" for n in range(3)]
        finally:
            for proc in procs:
                proc.stop()
            redis.stop()


def test_the_socket_mode_process_relays_an_agent_reply_to_line(tmp_path: Path, sample_index: Path) -> None:
    """``python -m adapters.slack`` (Socket Mode) takes the agent's reply and pushes it to LINE itself:
    with handoff on it declares the LINE side too. The web process only accepts."""
    from tests.fakes.slack_api import events_envelope

    redis = RedisServer(tmp_path).start()
    procs: list[HubProcess] = []
    with FakeSlack() as slack, FakeLineAPI(access_token=TOKEN) as line:
        base = {"line": {"tenant": "cs"}, "handoff": {"slack_channel": AGENTS}}
        env = {"INDEX_DIR": str(sample_index), "REDIS_URL": redis.url, "SLACK_BOT_TOKEN": slack.bot_token,
               "SLACK_SIGNING_SECRET": SLACK_SECRET, "SLACK_API_URL": slack.api_url, "NO_PROXY": "127.0.0.1",
               "LINE_CHANNEL_SECRET": LINE_SECRET, "LINE_CHANNEL_ACCESS_TOKEN": TOKEN, "LINE_API_URL": line.url}  # fmt: skip
        web_env = {**env, "HUB_CONFIG": str(write_yaml(tmp_path / "web.yaml", {**base, "queue": {"consume": False}}))}
        socket_env = {**env, "SLACK_APP_TOKEN": slack.app_token,
                      "HUB_CONFIG": str(write_yaml(tmp_path / "socket.yaml", base))}  # fmt: skip
        try:
            web = HubProcess(web_env, tmp_path).wait_ready()
            procs.append(web)
            procs.append(HubProcess(socket_env, tmp_path, ("adapters.slack",), module=True))
            slack.wait_connected(timeout=30)
            user = new_user()
            assert webhook(web.url, [text_event(line, "human please", source(user))]).status_code == 200
            (ts,) = wait(lambda: [ts for ts, m in list(slack.messages.items())
                                  if slack.channel_of.get(ts) == AGENTS and not m.get("thread_ts")], "opened")  # fmt: skip
            slack.send_envelope(events_envelope(agent_reply(ts, "Hello, this is Mei")))
            wait(lambda: pushes_to(line, user), "the reply pushed to LINE by the Socket Mode process")
            assert pushes_to(line, user) == ["Hello, this is Mei"]
        finally:
            for proc in procs:
                proc.stop()
            redis.stop()
