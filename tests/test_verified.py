"""Verified answers: saved by a person, served before retrieval within the asker's collections.

One walled knowledge base (``internal`` read by the employees' tenant ``hr``, ``public`` read by
the customer desk ``cs`` too), a fake cloud model that records every call — so "no model call"
is counted, not assumed — and an admin client for the /admin/verified routes. Each test runs
on the memory and the Redis backend.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from core import logs
from core.auth import digest
from core.kb.embedders import HashEmbedder
from core.kb.ingest import ingest
from tests.conftest import HubServer, RedisServer, make_settings, metric, write_yaml
from tests.fakes.openai_upstream import FakeOpenAI

HR, CS, ADMIN = "ah_verified-hr-key-0000000000", "ah_verified-cs-key-0000000000", "ah_verified-admin-key-00000"
BONUS_Q = "How is the year-end bonus calculated?"
RETURNS_Q = "How do I return an order?"
VERIFIED_BONUS = "VERIFIED-BONUS: HR confirms the bonus is two months of base salary for a B rating."
VERIFIED_RETURNS = "VERIFIED-RETURNS: open the order page, choose Return, and the courier collects it."
PHONE = "0912-345-678"


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("verified-kb")
    for folder, name, text in (
        ("internal", "bonus.md", "# Year-end bonus\n\nThe year-end bonus is calculated from the rating.\n"),
        ("public", "returns.md", "# Returns\n\nTo return an order, open the order page and choose Return.\n"),
    ):
        (root / "kb" / folder).mkdir(parents=True)
        (root / "kb" / folder / name).write_text(text, encoding="utf-8")
    folders = {"internal": root / "kb" / "internal", "public": root / "kb" / "public"}
    asyncio.run(ingest(folders, root / "index", HashEmbedder(), chunk_chars=600, exact_max=5000))
    return root / "kb", root / "index"


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def hub_config(tmp_path: Path) -> Path:
    return write_yaml(
        tmp_path / "hub.yaml",
        {
            "collections": {"internal": {"path": "internal"}, "public": {"path": "public"}},
            "tenants": {"cs": {"collections": ["public"]}, "hr": {"collections": ["internal", "public"]}},
            "clients": [
                {"name": "hr-portal", "tenant": "hr", "key_sha256": [digest(HR)]},
                {"name": "cs-desk", "tenant": "cs", "key_sha256": [digest(CS)]},
                {"name": "ops", "tenant": "it", "scopes": ["ask", "admin"], "key_sha256": [digest(ADMIN)]},
            ],
            "resilience": {"retries": 0},
            "verified": {"file": str(tmp_path / "verified.json")},
        },
    )


def settings_for(tmp_path: Path, kb: tuple[Path, Path], upstream: FakeOpenAI, redis: str | None) -> Any:
    env = {"REDIS_URL": redis} if redis else {}
    return make_settings(
        tmp_path, KB_DIR=str(kb[0]), INDEX_DIR=str(kb[1]), HUB_CONFIG=str(hub_config(tmp_path)),
        OPENAI_API_KEY="sk-up", OPENAI_BASE_URL=upstream.base_url, RATE_LIMIT_MAX_PER_USER="1000", **env,
    )  # fmt: skip


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> str | None:
    return request.getfixturevalue("redis_db") if request.param == "redis" else None


@pytest.fixture
def hub(tmp_path: Path, kb: tuple[Path, Path], upstream: FakeOpenAI, backend: str | None) -> Iterator[HubServer]:
    upstream.reset()
    with HubServer(settings_for(tmp_path, kb, upstream, backend)) as server:
        yield server


def ask(hub: HubServer, key: str, question: str) -> dict[str, Any]:
    response = httpx.post(f"{hub.url}/ask", json={"question": question}, headers={"X-API-Key": key}, timeout=20)
    assert response.status_code == 200, response.text
    return response.json()


def admin(hub: HubServer, method: str, path: str = "", body: Any = None, key: str = ADMIN) -> httpx.Response:
    headers = {"X-API-Key": key} if key else {}
    return httpx.request(method, f"{hub.url}/admin/verified{path}", json=body, headers=headers, timeout=10)


def save(hub: HubServer, question: str, answer: str, collection: str, by: str = "Alice Chen") -> dict[str, Any]:
    response = admin(hub, "POST", "", {"question": question, "answer": answer, "collection": collection,
                                       "verified_by": by})  # fmt: skip
    assert response.status_code == 201, response.text
    return response.json()


def model_calls(upstream: FakeOpenAI) -> int:
    return len([c for c in upstream.calls if c.path.endswith("/chat/completions")])


# --- serving ---------------------------------------------------------------------------------------------


def test_served_with_its_mark_and_no_model_call_only_within_the_collection(
    hub: HubServer, upstream: FakeOpenAI
) -> None:
    saved = save(hub, BONUS_Q, VERIFIED_BONUS, "internal")
    save(hub, RETURNS_Q, VERIFIED_RETURNS, "public")  # the customers' collection has one of its own
    upstream.reset()
    before = metric(hub.url, "hub_verified_answers_served_total", collection="internal")

    employee = ask(hub, HR, BONUS_Q)
    assert employee["answer"] == VERIFIED_BONUS
    assert employee["model"] == "verified" and employee["sources"] == []
    assert employee["verified"] == {"id": saved["id"], "by": "Alice Chen", "at": saved["updated_at"],
                                    "collection": "internal"}  # fmt: skip
    assert model_calls(upstream) == 0, "a verified answer is served without asking the model"
    assert metric(hub.url, "hub_verified_answers_served_total", collection="internal") == before + 1

    customer = ask(hub, CS, BONUS_Q)  # the customer desk reads `public` only: the wall holds
    assert "VERIFIED" not in str(customer) and "verified" not in customer
    assert customer["model"] != "verified"


def test_the_stream_carries_the_mark(hub: HubServer, upstream: FakeOpenAI) -> None:
    save(hub, RETURNS_Q, VERIFIED_RETURNS, "public")
    upstream.reset()
    with httpx.stream("POST", f"{hub.url}/ask", json={"question": RETURNS_Q, "stream": True},
                      headers={"X-API-Key": CS}, timeout=20) as response:  # fmt: skip
        text = "".join(response.iter_text())
    done = orjson.loads(text.split("event: done\ndata: ", 1)[1].split("\n", 1)[0])
    deltas = [orjson.loads(part.split("data: ", 1)[1].split("\n", 1)[0])["text"]
              for part in text.split("event: delta\n")[1:]]  # fmt: skip
    assert "".join(deltas) == VERIFIED_RETURNS, "the text streams like any answer"
    assert done["answer"] == VERIFIED_RETURNS and done["verified"]["by"] == "Alice Chen"
    assert model_calls(upstream) == 0


def test_a_paraphrase_matches_an_unrelated_question_does_not(hub: HubServer, upstream: FakeOpenAI) -> None:
    save(hub, RETURNS_Q, VERIFIED_RETURNS, "public")
    assert ask(hub, CS, "How do I return the order I got?")["answer"] == VERIFIED_RETURNS  # hash cosine 0.92
    upstream.reset()
    other = ask(hub, CS, "How do I return 2 orders?")  # as close in words, but another number
    assert other["answer"] != VERIFIED_RETURNS and "verified" not in other
    assert model_calls(upstream) >= 1, "the question went on to retrieval and the model"
    unrelated = ask(hub, HR, BONUS_Q)
    assert "verified" not in unrelated


def test_retire_stops_serving_and_edit_serves_the_new_text(hub: HubServer, upstream: FakeOpenAI) -> None:
    saved = save(hub, RETURNS_Q, VERIFIED_RETURNS, "public")
    assert ask(hub, CS, RETURNS_Q)["answer"] == VERIFIED_RETURNS  # now cached, with its mark
    edited = admin(hub, "PATCH", f"/{saved['id']}", {"answer": "VERIFIED-EDITED: use the returns page."})
    assert edited.status_code == 200, edited.text
    assert ask(hub, CS, RETURNS_Q)["answer"] == "VERIFIED-EDITED: use the returns page."

    retired = admin(hub, "POST", f"/{saved['id']}/retire")
    assert retired.status_code == 200 and retired.json()["retired"] is True
    upstream.reset()
    after = ask(hub, CS, RETURNS_Q)
    assert "VERIFIED" not in after["answer"] and "verified" not in after and after["cached"] is False
    assert model_calls(upstream) >= 1
    listed = admin(hub, "GET").json()["verified"]
    assert listed == [], "a retired answer is listed only when asked for"
    assert [r["id"] for r in admin(hub, "GET", "?retired=true").json()["verified"]] == [saved["id"]]


def test_a_save_invalidates_the_cached_answer_of_its_collection(hub: HubServer, upstream: FakeOpenAI) -> None:
    assert ask(hub, CS, RETURNS_Q)["cached"] is False
    employee_before = ask(hub, HR, BONUS_Q)
    assert ask(hub, CS, RETURNS_Q)["cached"] is True
    save(hub, RETURNS_Q, VERIFIED_RETURNS, "public")
    first = ask(hub, CS, RETURNS_Q)
    assert first["answer"] == VERIFIED_RETURNS and first["cached"] is False
    again = ask(hub, CS, RETURNS_Q)
    assert again["cached"] is True and again["verified"]["by"] == "Alice Chen", "the cache keeps the mark"
    assert ask(hub, HR, BONUS_Q)["answer"] == employee_before["answer"]


def test_the_door_api_saves_for_an_adapter_and_redacts_the_question(hub: HubServer) -> None:
    """What the handoff's Slack desk calls when an agent resolves a handoff."""
    question = f"My phone is {PHONE}. How do I return an order?"
    saved = hub.run(hub.hub.verified.save(question, VERIFIED_RETURNS, "public", "Agent Lin", actor="slack"))
    assert PHONE not in saved.question and "[PHONE]" in saved.question
    assert ask(hub, CS, "My phone is 0987-654-321. How do I return an order?")["answer"] == VERIFIED_RETURNS
    logs.flush()
    log = (Path(hub.settings.log_file)).read_text(encoding="utf-8")
    audit = [orjson.loads(line) for line in log.splitlines() if '"askhub.audit"' in line]
    assert any(r.get("event") == "verified_save" and r.get("id") == saved.id and r.get("actor") == "slack"
               for r in audit)  # fmt: skip
    assert PHONE not in log and "Agent Lin" not in log and "VERIFIED-RETURNS" not in log


def test_verified_answers_survive_a_restart(
    tmp_path: Path, kb: tuple[Path, Path], upstream: FakeOpenAI, backend: str | None
) -> None:
    """Redis keeps them without expiry; a one-process memory hub keeps them in its file."""
    settings = settings_for(tmp_path, kb, upstream, backend)
    with HubServer(settings) as first:
        saved = save(first, RETURNS_Q, VERIFIED_RETURNS, "public")
    with HubServer(settings) as second:
        assert [r["id"] for r in admin(second, "GET").json()["verified"]] == [saved["id"]]
        assert ask(second, CS, RETURNS_Q)["verified"]["id"] == saved["id"]


def test_they_survive_a_restart_of_redis_itself(tmp_path: Path, kb: tuple[Path, Path], upstream: FakeOpenAI) -> None:
    """Redis with its append-only file, as the README says to run it: stopped and started again."""
    redis = RedisServer(tmp_path).start(durable=True)
    try:
        with HubServer(settings_for(tmp_path, kb, upstream, redis.url)) as first:
            saved = save(first, RETURNS_Q, VERIFIED_RETURNS, "public")
        redis.stop()
        redis.start(durable=True)
        with HubServer(settings_for(tmp_path, kb, upstream, redis.url)) as second:
            assert ask(second, CS, RETURNS_Q)["verified"]["id"] == saved["id"]
    finally:
        redis.stop()


def test_a_memory_hub_keeps_its_file_beside_the_index_unless_told(tmp_path: Path) -> None:
    from core.config import load_settings
    from core.verified.store import snapshot_path

    assert snapshot_path(load_settings({"INDEX_DIR": str(tmp_path / "idx")})) == tmp_path / "idx-verified.json"
    assert snapshot_path(make_settings(tmp_path)) == tmp_path / "verified.json"  # the tests' own


def test_another_hub_stops_serving_its_cached_answer(
    tmp_path: Path, kb: tuple[Path, Path], upstream: FakeOpenAI, redis_db: str
) -> None:
    """Two hubs on one Redis (each its own Hub, as two processes): a save in one reaches the
    other's cached answers (within about a second: it compares generations in the background)."""
    (tmp_path / "two").mkdir()
    with HubServer(settings_for(tmp_path, kb, upstream, redis_db)) as one:
        ask(one, CS, RETURNS_Q)
        assert ask(one, CS, RETURNS_Q)["cached"] is True
        with HubServer(settings_for(tmp_path / "two", kb, upstream, redis_db)) as two:
            save(two, RETURNS_Q, VERIFIED_RETURNS, "public")
        deadline = time.monotonic() + 10
        while (body := ask(one, CS, RETURNS_Q))["answer"] != VERIFIED_RETURNS:
            assert time.monotonic() < deadline, "the other process kept serving its stale cached answer"
            time.sleep(0.05)
        assert body["verified"]["by"] == "Alice Chen"


# --- the admin routes ------------------------------------------------------------------------------------


def test_admin_routes_want_an_admin_key(hub: HubServer) -> None:
    assert admin(hub, "GET", key="").status_code == 401
    assert admin(hub, "GET", key="ah_wrong-key-00000000000000000").status_code == 401
    refused = admin(hub, "POST", "", {"question": "q", "answer": "a", "collection": "public",
                                      "verified_by": "x"}, key=HR)  # fmt: skip
    assert refused.status_code == 403 and refused.json()["error"]["type"] == "forbidden"
    assert admin(hub, "POST", "/anything/retire", key=CS).status_code == 403
    assert admin(hub, "GET").json()["verified"] == [], "nothing was saved by the refused calls"


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"question": " ", "answer": "a", "collection": "public", "verified_by": "x"}, 400, "question must not"),
        ({"question": "q", "answer": "a", "collection": "secret", "verified_by": "x"}, 400, "unknown collection"),
        ({"question": "q", "answer": "a", "collection": "public"}, 400, "verified_by is required"),
        ({"question": 3, "answer": "a", "collection": "public", "verified_by": "x"}, 422, "question"),
        ({"question": "q", "answer": "a", "collection": "public", "verified_by": "x", "extra": 1}, 422, "extra"),
        ({"question": "q", "answer": "a" * 9000, "collection": "public", "verified_by": "x"}, 422, "answer"),
        ([1, 2], 422, "JSON object"),
    ],
)
def test_create_refuses_bad_bodies_clearly(hub: HubServer, body: Any, status: int, says: str) -> None:
    response = admin(hub, "POST", "", body)
    assert response.status_code == status, response.text
    assert says in response.json()["error"]["message"]


def test_the_list_says_which_collections_each_tenant_reads(hub: HubServer) -> None:
    body = admin(hub, "GET").json()
    assert body["collections"] == ["internal", "public"]
    assert body["tenants"] == {"cs": ["public"], "hr": ["internal", "public"]}
    assert hub.hub.verified.collections_for("it") == []  # names none: with collections, reads none


def test_edit_and_retire_errors(hub: HubServer) -> None:
    saved = save(hub, RETURNS_Q, VERIFIED_RETURNS, "public")
    assert admin(hub, "PATCH", "/nope", {"answer": "x"}).status_code == 404
    assert admin(hub, "POST", "/nope/retire").status_code == 404
    empty = admin(hub, "PATCH", f"/{saved['id']}", {})
    assert empty.status_code == 400 and "nothing to change" in empty.json()["error"]["message"]
    assert admin(hub, "PATCH", f"/{saved['id']}", {"collection": "secret"}).status_code == 400
    raw = httpx.post(f"{hub.url}/admin/verified", content=b"{not json", timeout=10,
                     headers={"X-API-Key": ADMIN, "Content-Type": "application/json"})  # fmt: skip
    assert raw.status_code == 400 and raw.json()["error"]["type"] == "invalid_request"
    moved = admin(hub, "PATCH", f"/{saved['id']}", {"collection": "internal"})
    assert moved.status_code == 200 and moved.json()["collection"] == "internal"
    assert "verified" not in ask(hub, CS, RETURNS_Q), "moved out of the customers' collection"
