"""Exactly one visible answer after a crash: a worker killed (-9) mid-answer, its job reclaimed.

Real processes on a private Redis: a web process accepts (it does not consume), a worker answers
and is killed while its answer is open on the platform (a Slack stream, a LINE reply window), a
second worker reclaims the job. The fakes record what a user would see; every thread or chat
must end with one complete answer, never two.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as redis_sync

from tests.conftest import HubProcess, RedisServer, write_yaml
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.slack_api import FakeSlack
from tests.test_slack_adapter import SECRET, mention, signed_headers


@pytest.fixture
def model() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def wait(condition: Any, what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)
    return result


def processes(tmp_path: Path, redis: RedisServer, env: dict[str, str]) -> tuple[HubProcess, dict[str, str]]:
    """A started web process that only accepts, and the environment of the workers that answer."""
    base = {"queue": {"reclaim_after_sec": 1}}
    web = {
        **env,
        "REDIS_URL": redis.url,
        "HUB_CONFIG": str(write_yaml(tmp_path / "web.yaml", {**base, "queue": {"consume": False}})),
    }
    worker = {**env, "REDIS_URL": redis.url, "HUB_CONFIG": str(write_yaml(tmp_path / "worker.yaml", base))}
    return HubProcess(web, tmp_path).wait_ready(), worker


def notes(redis: RedisServer, platform: str) -> list[dict[str, Any]]:
    client = redis_sync.Redis.from_url(redis.url)
    return [json.loads(client.get(k) or b"{}") for k in client.scan_iter(f"askhub:event:{platform}:*:opened")]


def queue_empty(redis: RedisServer, kind: str) -> bool:
    return redis_sync.Redis.from_url(redis.url).xlen(f"askhub:jobs:{kind}") == 0


def test_a_slack_answer_cut_by_a_crash_is_finished_in_its_stream_not_posted_twice(
    tmp_path: Path, sample_index: Path, model: FakeOpenAI
) -> None:
    redis = RedisServer(tmp_path).start()
    model.set_behavior(None, delay=60)  # the worker opens its stream, then waits for the model: killed there
    with FakeSlack() as slack:
        env = {"INDEX_DIR": str(sample_index), "SLACK_BOT_TOKEN": slack.bot_token, "SLACK_SIGNING_SECRET": SECRET,
               "SLACK_API_URL": slack.api_url, "OPENAI_API_KEY": "sk", "OPENAI_BASE_URL": model.base_url}  # fmt: skip
        web, worker_env = processes(tmp_path, redis, env)
        first = HubProcess(worker_env, tmp_path, ("worker",)).wait_output("worker ready")
        second = None
        try:
            threads = [f"1700000{n}00.000100" for n in range(3)]
            for ts in threads:
                body = json.dumps(mention(ts)).encode()
                headers = {"Content-Type": "application/json", **signed_headers(body)}
                assert httpx.post(f"{web.url}/slack/events", content=body, headers=headers).status_code == 200
            wait(lambda: len([n for n in notes(redis, "slack") if n.get("view_ts")]) == 3, "three streams opened")
            first.proc.kill()  # kill -9 with three streams open
            first.proc.wait(5)
            model.set_behavior(None, delay=0)
            second = HubProcess(worker_env, tmp_path, ("worker",)).wait_output("worker ready")
            wait(lambda: queue_empty(redis, "slack.answer"), "every job answered and acknowledged")
        finally:
            for proc in (web, first, second):
                if proc is not None:
                    proc.stop()
            redis.stop()
        for ts in threads:
            visible = [m for m in slack.messages.values() if m.get("thread_ts") == ts]
            assert len(visible) == 1, visible  # one message in the thread: the dead worker's stream
            (answer,) = visible
            assert not answer.get("streaming") and answer["blocks"], answer  # stopped, and finished with the answer
            assert "[gpt-4o" in json.dumps(answer["blocks"])


def test_a_slack_stream_or_ask_post_made_but_not_yet_noted_is_found_and_finished_not_doubled(
    tmp_path: Path, sample_index: Path, model: FakeOpenAI
) -> None:
    """The worker dies after Slack started its streams (two mentions) and posted /ask's "asked:"
    message, and before any ts was noted (Slack's answers never came back): the worker that
    reclaims the jobs finds them in the channel and finishes them."""
    from urllib.parse import urlencode

    from tests.test_slack_adapter import slash

    redis = RedisServer(tmp_path).start()
    model.set_behavior(None, delay=60)
    with FakeSlack() as slack:
        env = {"INDEX_DIR": str(sample_index), "SLACK_BOT_TOKEN": slack.bot_token, "SLACK_SIGNING_SECRET": SECRET,
               "SLACK_API_URL": slack.api_url, "OPENAI_API_KEY": "sk", "OPENAI_BASE_URL": model.base_url}  # fmt: skip
        web, worker_env = processes(tmp_path, redis, env)
        first = HubProcess(worker_env, tmp_path, ("worker",)).wait_output("worker ready")
        second = None
        try:
            slack.hold("chat.startStream")
            slack.hold("chat.postMessage")
            threads = [f"1700000{n}00.000100" for n in range(2)]
            requests = [(json.dumps(mention(ts)).encode(), "application/json") for ts in threads]
            requests.append(
                (urlencode(slash("How do I set up the VPN?")).encode(), "application/x-www-form-urlencoded")
            )
            for body, ctype in requests:
                headers = {"Content-Type": ctype, **signed_headers(body)}
                assert httpx.post(f"{web.url}/slack/events", content=body, headers=headers).status_code == 200
            wait(lambda: len(slack.messages) == 3, "two streams started, one /ask question posted")
            opened = notes(redis, "slack")
            assert sorted(str(n.get("opening") or n.get("posting_parent")) for n in opened) == ["True", *["stream"] * 2]
            assert not any(n.get("view_ts") or n.get("parent_ts") for n in opened)
            first.proc.kill()  # kill -9 with all three made at Slack and none noted
            first.proc.wait(5)
            slack.reset_holds()
            model.set_behavior(None, delay=0)
            second = HubProcess(worker_env, tmp_path, ("worker",)).wait_output("worker ready")
            wait(lambda: queue_empty(redis, "slack.answer"), "every job answered and acknowledged")
        finally:
            for proc in (web, first, second):
                if proc is not None:
                    proc.stop()
            redis.stop()
        (asked,) = [m for m in slack.messages.values() if "asked:" in m["text"]]  # posted once
        assert len(slack.calls_to("chat.postMessage")) == 1
        for ts in [*threads, asked["ts"]]:
            visible = [m for m in slack.messages.values() if m.get("thread_ts") == ts and m["ts"] != ts]
            assert len(visible) == 1, visible
            (answer,) = visible
            assert not answer.get("streaming") and answer["blocks"], answer  # finished, sources and buttons
            assert "[gpt-4o" in answer["text"] + json.dumps(answer["blocks"]), answer  # streamed or updated


@pytest.mark.filterwarnings("ignore:'audioop' is deprecated:DeprecationWarning")
def test_a_discord_answer_cut_by_a_crash_is_finished_in_the_thread_it_started(
    tmp_path: Path, sample_index: Path, model: FakeOpenAI
) -> None:
    from tests.fakes.discord_api import FakeDiscord

    redis = RedisServer(tmp_path).start()
    model.set_behavior(None, delay=60)  # the bot starts the thread, then waits for the model: killed there
    config = write_yaml(tmp_path / "bot.yaml", {"queue": {"reclaim_after_sec": 1}})
    with FakeDiscord() as discord:
        env = {"INDEX_DIR": str(sample_index), "REDIS_URL": redis.url, "HUB_CONFIG": str(config),
               "DISCORD_BOT_TOKEN": discord.token, "DISCORD_API_URL": discord.api_url,
               "DISCORD_GATEWAY_URL": discord.gateway_url, "OPENAI_API_KEY": "sk",
               "OPENAI_BASE_URL": model.base_url}  # fmt: skip
        first = HubProcess(env, tmp_path, ("adapters.discord",), module=True)
        second = None
        try:
            discord.wait_ready(timeout=30)
            question = discord.send_message(f"<@{discord.bot_id}> How do I set up the VPN?", mention_bot=True)
            wait(lambda: any(n.get("thread") for n in notes(redis, "discord")), "the thread started and noted")
            first.proc.kill()
            first.proc.wait(5)
            model.set_behavior(None, delay=0)
            second = HubProcess(env, tmp_path, ("adapters.discord",), module=True)
            discord.wait_until(lambda: [m for m in discord.channel_messages(question["id"]) if m["components"]],
                               timeout=30)  # fmt: skip
            wait(lambda: queue_empty(redis, "discord.message"), "the job answered and acknowledged")
        finally:
            for proc in (first, second):
                if proc is not None:
                    proc.stop()
            redis.stop()
        assert len(discord.find("POST", rf"/channels/\d+/messages/{question['id']}/threads")) == 1
        answers = discord.channel_messages(question["id"])
        assert len(answers) == 1 and answers[0]["content"].startswith("[gpt-4o"), answers
        assert not [m for m in discord.channel_messages(discord.channel_id) if m["author"]["id"] == str(discord.bot_id)]


def test_a_line_reply_cut_by_a_crash_is_not_pushed_a_second_time(
    tmp_path: Path, sample_index: Path, model: FakeOpenAI
) -> None:
    """The worker dies while its reply is in flight (LINE took it; the answer never came back):
    the worker that reclaims the job must not push the answer again."""
    from tests.fakes.line_api import FakeLineAPI
    from tests.test_line_adapter import SECRET as LINE_SECRET
    from tests.test_line_adapter import TOKEN, new_user, source, text_event
    from tests.test_scale import answers, webhook

    redis = RedisServer(tmp_path).start()
    with FakeLineAPI(access_token=TOKEN) as line:
        env = {"INDEX_DIR": str(sample_index), "LINE_CHANNEL_SECRET": LINE_SECRET, "LINE_CHANNEL_ACCESS_TOKEN": TOKEN,
               "LINE_API_URL": line.url, "OPENAI_API_KEY": "sk", "OPENAI_BASE_URL": model.base_url}  # fmt: skip
        web, worker_env = processes(tmp_path, redis, env)
        first = HubProcess(worker_env, tmp_path, ("worker",)).wait_output("worker ready")
        second = None
        try:
            line.hold("/v2/bot/message/reply")
            events = [text_event(line, f"How do I set up the VPN? ({n})", source(new_user())) for n in range(3)]
            for event in events:
                assert webhook(web.url, [event]).status_code == 200
            wait(lambda: len(line.deliveries()) == len(events), "every reply taken by LINE, none answered")
            first.proc.kill()  # kill -9 with three replies in flight
            first.proc.wait(5)
            line.reset_holds()
            second = HubProcess(worker_env, tmp_path, ("worker",)).wait_output("worker ready")
            wait(lambda: queue_empty(redis, "line.event"), "every job reclaimed, finished and acknowledged")
        finally:
            for proc in (web, first, second):
                if proc is not None:
                    proc.stop()
            redis.stop()
        assert [len(answers(line, e)) for e in events] == [1] * len(events)
        assert not line.pushes()


def test_a_line_reply_lost_at_a_crash_is_pushed_once_when_its_token_is_stale(
    tmp_path: Path, sample_index: Path, model: FakeOpenAI
) -> None:
    """The worker dies while its reply is lost on the way (LINE never acted on it); the worker
    that reclaims the job finds the reply token stale and pushes the answer, once, with the
    event's retry key, instead of sending nothing."""
    from adapters.line.api import retry_key
    from tests.fakes.line_api import FakeLineAPI
    from tests.test_line_adapter import SECRET as LINE_SECRET
    from tests.test_line_adapter import TOKEN, new_user, source, text_event
    from tests.test_scale import answers, webhook

    redis = RedisServer(tmp_path).start()
    with FakeLineAPI(access_token=TOKEN) as line:
        env = {"INDEX_DIR": str(sample_index), "LINE_CHANNEL_SECRET": LINE_SECRET, "LINE_CHANNEL_ACCESS_TOKEN": TOKEN,
               "LINE_API_URL": line.url, "OPENAI_API_KEY": "sk", "OPENAI_BASE_URL": model.base_url}  # fmt: skip
        web, worker_env = processes(tmp_path, redis, env)
        late = {"queue": {"reclaim_after_sec": 1}, "line": {"reply_within_sec": 0.001}}  # every token stale by now
        late_env = {**worker_env, "HUB_CONFIG": str(write_yaml(tmp_path / "late.yaml", late))}
        first = HubProcess(worker_env, tmp_path, ("worker",)).wait_output("worker ready")
        second = None
        try:
            line.stall("/v2/bot/message/reply")
            events = [text_event(line, f"How do I set up the VPN? ({n})", source(new_user())) for n in range(3)]
            for event in events:
                assert webhook(web.url, [event]).status_code == 200
            line.wait_for(lambda fake: len(fake.stalled_calls) == len(events), timeout=30)
            first.proc.kill()  # kill -9 with three replies lost on the way
            first.proc.wait(5)
            line.reset_holds()
            second = HubProcess(late_env, tmp_path, ("worker",)).wait_output("worker ready")
            wait(lambda: queue_empty(redis, "line.event"), "every job reclaimed, finished and acknowledged")
        finally:
            for proc in (web, first, second):
                if proc is not None:
                    proc.stop()
            redis.stop()
        assert [len(answers(line, e)) for e in events] == [1] * len(events)
        pushed = {p.headers["x-line-retry-key"] for p in line.pushes() if p.status == 200}
        assert pushed == {retry_key(e["webhookEventId"]) for e in events}
        assert not line.replies()  # the reclaiming worker did not try the stale tokens


def test_a_deferred_discord_interaction_cut_by_a_crash_gets_one_answer(
    tmp_path: Path, sample_index: Path, model: FakeOpenAI
) -> None:
    """The worker dies while the model thinks about a deferred /ask: the worker that reclaims
    the job edits the deferred response; it posts no second message."""
    from nacl.signing import SigningKey

    from tests.fakes.discord_api import FakeDiscord

    redis = RedisServer(tmp_path).start()
    key = SigningKey.generate()
    model.set_behavior(None, delay=60)
    with FakeDiscord() as discord:
        env = {"INDEX_DIR": str(sample_index), "DISCORD_PUBLIC_KEY": key.verify_key.encode().hex(),
               "DISCORD_APPLICATION_ID": str(discord.application_id), "DISCORD_API_URL": discord.api_url,
               "OPENAI_API_KEY": "sk", "OPENAI_BASE_URL": model.base_url}  # fmt: skip
        web, worker_env = processes(tmp_path, redis, env)
        first = HubProcess(worker_env, tmp_path, ("worker",)).wait_output("worker ready")
        second = None
        try:
            data = {"id": "1", "name": "ask", "type": 1,
                    "options": [{"name": "question", "type": 3, "value": "How do I set up the VPN?"}]}  # fmt: skip
            interaction = discord.interaction(2, data)
            body = json.dumps(interaction).encode()
            stamp = str(int(time.time()))
            headers = {"Content-Type": "application/json", "X-Signature-Timestamp": stamp,
                       "X-Signature-Ed25519": key.sign(stamp.encode() + body).signature.hex()}  # fmt: skip
            deferred = httpx.post(f"{web.url}/discord/interactions", content=body, headers=headers, timeout=10)
            assert deferred.json() == {"type": 5}
            wait(lambda: model.calls, "the worker took the job to the model")
            first.proc.kill()
            first.proc.wait(5)
            model.set_behavior(None, delay=0)
            second = HubProcess(worker_env, tmp_path, ("worker",)).wait_output("worker ready")
            wait(lambda: queue_empty(redis, "discord.interaction"), "the job answered and acknowledged")
        finally:
            for proc in (web, first, second):
                if proc is not None:
                    proc.stop()
            redis.stop()
        token = interaction["token"]
        (answer,) = discord.webhook_messages(token)  # the deferred response, and nothing else
        assert answer["content"].startswith("[gpt-4o"), answer
        assert not discord.find("POST", rf"/webhooks/\d+/{token}$")


def test_a_discord_follow_up_in_flight_at_a_crash_is_not_sent_again(
    tmp_path: Path, sample_index: Path, model: FakeOpenAI
) -> None:
    """A long answer: @original edited, the first follow-up taken by Discord but its answer lost
    when the worker dies. The reclaiming worker edits @original again (idempotent), sends the
    second follow-up, and never the first one again."""
    from nacl.signing import SigningKey

    from tests.fakes.discord_api import FakeDiscord

    redis = RedisServer(tmp_path).start()
    key = SigningKey.generate()
    reply = " ".join(f"step{n}" for n in range(900))  # about 7,000 characters: 4 parts
    model.set_behavior(None, reply=reply)
    with FakeDiscord() as discord:
        env = {"INDEX_DIR": str(sample_index), "DISCORD_PUBLIC_KEY": key.verify_key.encode().hex(),
               "DISCORD_APPLICATION_ID": str(discord.application_id), "DISCORD_API_URL": discord.api_url,
               "OPENAI_API_KEY": "sk", "OPENAI_BASE_URL": model.base_url}  # fmt: skip
        web, worker_env = processes(tmp_path, redis, env)
        first = HubProcess(worker_env, tmp_path, ("worker",)).wait_output("worker ready")
        second = None
        try:
            interaction = discord.interaction(2, {"id": "1", "name": "ask", "type": 1, "options": [
                {"name": "question", "type": 3, "value": "How do I set up the VPN?"}]})  # fmt: skip
            token = interaction["token"]
            discord.hold("POST", rf"/webhooks/\d+/{token}")
            body = json.dumps(interaction).encode()
            stamp = str(int(time.time()))
            headers = {"Content-Type": "application/json", "X-Signature-Timestamp": stamp,
                       "X-Signature-Ed25519": key.sign(stamp.encode() + body).signature.hex()}  # fmt: skip
            assert httpx.post(f"{web.url}/discord/interactions", content=body, headers=headers).json() == {"type": 5}
            discord.wait_until(lambda: len(discord.webhook_messages(token)) == 2, timeout=30)  # @original + part 2
            first.proc.kill()  # kill -9 with the first follow-up in flight
            first.proc.wait(5)
            discord.reset_holds()
            second = HubProcess(worker_env, tmp_path, ("worker",)).wait_output("worker ready")
            wait(lambda: queue_empty(redis, "discord.interaction"), "the job answered and acknowledged")
        finally:
            for proc in (web, first, second):
                if proc is not None:
                    proc.stop()
            redis.stop()
        messages = discord.webhook_messages(token)
        contents = [m["content"] for m in messages]
        assert " ".join(contents).split() == reply.split(), contents  # every part, once, in order
        assert len(discord.find("POST", rf"/webhooks/\d+/{token}")) == len(messages) - 1 >= 2
        assert len(discord.find("PATCH", rf"/webhooks/\d+/{token}/messages/@original")) == 2
        assert messages[-1]["components"], messages[-1]  # the last part, with the buttons


@pytest.mark.filterwarnings("ignore:'audioop' is deprecated:DeprecationWarning")
@pytest.mark.parametrize("window", ["thread", "message"])
def test_a_discord_thread_or_message_created_but_not_yet_noted_is_reused_not_doubled(
    window: str, tmp_path: Path, sample_index: Path, model: FakeOpenAI
) -> None:
    """The bot dies after Discord created its thread (or its first answer message) and before
    noting it (Discord's answer never came back): the bot that reclaims the job answers in that
    thread, in that message."""
    from tests.fakes.discord_api import FakeDiscord

    redis = RedisServer(tmp_path).start()
    config = write_yaml(tmp_path / "bot.yaml", {"queue": {"reclaim_after_sec": 1}})
    with FakeDiscord() as discord:
        env = {"INDEX_DIR": str(sample_index), "REDIS_URL": redis.url, "HUB_CONFIG": str(config),
               "DISCORD_BOT_TOKEN": discord.token, "DISCORD_API_URL": discord.api_url,
               "DISCORD_GATEWAY_URL": discord.gateway_url, "OPENAI_API_KEY": "sk",
               "OPENAI_BASE_URL": model.base_url}  # fmt: skip
        first = HubProcess(env, tmp_path, ("adapters.discord",), module=True)
        second = None
        try:
            discord.wait_ready(timeout=30)
            discord.hold(
                "POST", r"/channels/\d+/messages/\d+/threads" if window == "thread" else r"/channels/\d+/messages"
            )
            question = discord.send_message(f"<@{discord.bot_id}> How do I set up the VPN?", mention_bot=True)
            if window == "thread":
                discord.wait_until(lambda: question["id"] in discord.channels, timeout=30)
            else:
                discord.wait_until(lambda: discord.channel_messages(question["id"]), timeout=30)
            assert not any(n.get("thread" if window == "thread" else "progress") for n in notes(redis, "discord"))
            first.proc.kill()
            first.proc.wait(5)
            discord.reset_holds()
            second = HubProcess(env, tmp_path, ("adapters.discord",), module=True)
            discord.wait_until(lambda: [m for m in discord.channel_messages(question["id"]) if m["components"]],
                               timeout=30)  # fmt: skip
            wait(lambda: queue_empty(redis, "discord.message"), "the job answered and acknowledged")
        finally:
            for proc in (first, second):
                if proc is not None:
                    proc.stop()
            redis.stop()
        answers = discord.channel_messages(question["id"])
        assert len(answers) == 1 and answers[0]["content"].startswith("[gpt-4o"), answers
        assert not [m for m in discord.channel_messages(discord.channel_id) if m["author"]["id"] == str(discord.bot_id)]
