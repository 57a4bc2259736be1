"""Slack Socket Mode: the bot dials out (apps.connections.open -> websocket) instead of receiving
HTTP, through slack-bolt's async handler on slack_sdk's aiohttp client, against the fake Slack."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import ROOT, SAMPLE_KB, HubServer, make_settings
from tests.fakes.slack_api import FakeSlack, events_envelope
from tests.test_slack_adapter import CHANNEL, USER, mention


def test_socket_mode_acks_the_envelope_and_answers_in_the_thread(tmp_path: Path, sample_index: Path) -> None:
    with FakeSlack() as slack:
        settings = make_settings(tmp_path, INDEX_DIR=str(sample_index), SLACK_BOT_TOKEN=slack.bot_token,
                                 SLACK_APP_TOKEN=slack.app_token, SLACK_API_URL=slack.api_url)  # fmt: skip
        with HubServer(settings, run_adapters=True) as server:
            slack.wait_connected()
            (opened,) = slack.calls_to("apps.connections.open")
            assert opened.token == slack.app_token  # the app-level token, not the bot token

            envelope = events_envelope(mention("1700002000.000100"))
            slack.send_envelope(envelope)
            frames = slack.wait_frames(1)
            assert frames[0] == {"envelope_id": envelope["envelope_id"]}  # the ack, before the answer

            (start,) = slack.wait_for("chat.startStream")
            assert (start["channel"], start["thread_ts"], start["recipient_user_id"]) == (
                CHANNEL, "1700002000.000100", USER
            )  # fmt: skip
            stop = slack.wait_for(lambda c: c.method == "chat.stopStream" and bool(c.get("blocks")))
            assert [b["type"] for b in stop[0]["blocks"]][-1] == "actions"

            # A redelivery (Slack retries an envelope it thinks was lost) is acked, not answered again.
            again = events_envelope(envelope["payload"], retry_attempt=1)
            slack.send_envelope(again)
            assert slack.wait_frames(2)[1] == {"envelope_id": again["envelope_id"]}
            server.run(server.hub.jobs.idle())
            assert len(slack.calls_to("chat.startStream")) == 1

            # Without a signing secret there is no HTTP route: Socket Mode only.
            assert httpx.post(f"{server.url}/slack/events", content=b"{}").status_code == 404


def test_python_m_adapters_slack_runs_the_socket_mode_bot(tmp_path: Path, sample_index: Path) -> None:
    with FakeSlack() as slack:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "KB_DIR": str(SAMPLE_KB),
            "INDEX_DIR": str(sample_index),
            "EMBEDDINGS": "hash",
            "LOG_FILE": str(tmp_path / "slack.log"),
            "SLACK_BOT_TOKEN": slack.bot_token,
            "SLACK_APP_TOKEN": slack.app_token,
            "SLACK_API_URL": slack.api_url,
            "NO_PROXY": "127.0.0.1",
        }
        out = open(tmp_path / "slack.out", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen([sys.executable, "-m", "adapters.slack"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)  # fmt: skip
        try:
            slack.wait_connected(timeout=20)
            envelope = events_envelope(mention("1700002100.000100"))
            slack.send_envelope(envelope)
            assert slack.wait_frames(1)[0] == {"envelope_id": envelope["envelope_id"]}
            stop = slack.wait_for(lambda c: c.method == "chat.stopStream" and bool(c.get("blocks")))
            assert stop[0]["channel"] == CHANNEL
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
            out.close()
        log = (tmp_path / "slack.out").read_text()
        assert "Traceback" not in log and slack.bot_token not in log and slack.app_token not in log

    missing = subprocess.run([sys.executable, "-m", "adapters.slack"], cwd=ROOT, capture_output=True, text=True,
                             env={"PATH": env["PATH"], "SLACK_BOT_TOKEN": "xoxb-only"}, timeout=30)  # fmt: skip
    assert missing.returncode == 2
    assert "SLACK_APP_TOKEN" in missing.stderr and "Traceback" not in missing.stderr
