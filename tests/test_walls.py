"""Walls between doors: collections per tenant, conversations that belong to their asker,
feedback only from the asker who got the answer — on both state backends.

One hub, two collections: ``internal`` holds an HR memo with a marker that must never reach a
customer, ``public`` a returns FAQ. Tenant ``cs`` (the customer desk) reads ``public`` only;
tenant ``hr`` reads both. The fake upstream records every prompt, so "never sees" covers what
the model was told, not only what came back.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from core.auth import digest
from core.kb.embedders import HashEmbedder
from core.kb.ingest import ingest
from core.schema import AskRequest
from tests.conftest import HubServer, make_settings, metric, write_yaml
from tests.fakes.openai_upstream import FakeOpenAI

HR_KEY, CS_KEY = "ah_walls-hr-key-000000000000", "ah_walls-cs-key-000000000000"
SALES_KEY = "ah_walls-sales-key-00000000000"  # tenant "sales" is met only in its key: it reads nothing
SECRET = "BONUS-MEMO-7731"
BONUS_Q = "How is the year-end bonus calculated?"
RETURNS_Q = "How do I return an order?"

INTERNAL_DOC = f"""# Year-end bonus (internal)

The year-end bonus is calculated from the performance rating and base salary. Memo {SECRET}:
a rating of A pays 3 months of base salary, B pays 2 months, C pays 1 month.
The bonus is paid with the January salary.
"""
PUBLIC_DOC = """# Returns and refunds

To return an order, open the order page and choose Return within 30 days of delivery.
Pack the item in its original box; the courier collects it within two working days.
Refunds are paid to the original card within 7 days after the item arrives.
"""


def kb_config(**extra: Any) -> dict[str, Any]:
    return {
        "collections": {"internal": {"path": "internal"}, "public": {"path": "public"}},
        "tenants": {"cs": {"collections": ["public"]}, "hr": {"collections": ["internal", "public"]}},
        "clients": [
            {"name": "hr-portal", "tenant": "hr", "key_sha256": [digest(HR_KEY)]},
            {"name": "cs-desk", "tenant": "cs", "key_sha256": [digest(CS_KEY)]},
            {"name": "sales-tool", "tenant": "sales", "key_sha256": [digest(SALES_KEY)]},
        ],
        "resilience": {"retries": 0},
        **extra,
    }


@pytest.fixture(scope="module")
def walled_kb(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The two-collection knowledge base and its index, built once for the module."""
    root = tmp_path_factory.mktemp("walled-kb")
    (root / "kb" / "internal").mkdir(parents=True)
    (root / "kb" / "public").mkdir(parents=True)
    (root / "kb" / "internal" / "year-end-bonus.md").write_text(INTERNAL_DOC, encoding="utf-8")
    (root / "kb" / "public" / "returns.md").write_text(PUBLIC_DOC, encoding="utf-8")
    folders = {"internal": root / "kb" / "internal", "public": root / "kb" / "public"}
    asyncio.run(ingest(folders, root / "index", HashEmbedder(), chunk_chars=600, exact_max=5000))
    return root / "kb", root / "index"


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(params=["memory", "redis"])
def walled(
    request: pytest.FixtureRequest, tmp_path: Path, walled_kb: tuple[Path, Path], upstream: FakeOpenAI
) -> Iterator[HubServer]:
    """The walled hub with a cloud model (the fake), on each state backend."""
    kb_dir, index_dir = walled_kb
    env = {"REDIS_URL": request.getfixturevalue("redis_db")} if request.param == "redis" else {}
    config = write_yaml(tmp_path / "hub.yaml", kb_config())
    settings = make_settings(
        tmp_path, KB_DIR=str(kb_dir), INDEX_DIR=str(index_dir), HUB_CONFIG=str(config), OPENAI_API_KEY="sk-up",
        OPENAI_BASE_URL=upstream.base_url, RATE_LIMIT_MAX_PER_USER="1000", EMBEDDINGS="hash", **env,
    )  # fmt: skip
    upstream.reset()
    with HubServer(settings) as hub:
        yield hub


def ask(hub: HubServer, key: str, question: str, **extra: Any) -> dict[str, Any]:
    response = httpx.post(
        f"{hub.url}/ask", json={"question": question, **extra}, headers={"X-API-Key": key}, timeout=20
    )
    assert response.status_code == 200, response.text
    return response.json()


def prompts(fake: FakeOpenAI) -> str:
    """Everything the model was ever told in this test."""
    return "\n".join(str(call.json) for call in fake.calls if call.json)


def assert_walled(body: dict[str, Any]) -> None:
    """Nothing of the internal collection in an answer shown to a customer."""
    assert SECRET not in str(body)
    assert all(source["collection"] == "public" for source in body.get("sources", []))


# --- /ask, its stream, /v1 kb ----------------------------------------------------------------------------


def test_each_asker_is_answered_only_from_its_collections(walled: HubServer, upstream: FakeOpenAI) -> None:
    employee = ask(walled, HR_KEY, BONUS_Q)
    assert {s["collection"] for s in employee["sources"]} >= {"internal"}
    assert SECRET in prompts(upstream), "the employee's prompt holds the memo: the fixture can tell"
    upstream.reset()
    internal_before = metric(walled.url, "hub_sources_total", collection="internal")

    customer = ask(walled, CS_KEY, BONUS_Q)
    assert_walled(customer)
    assert SECRET not in prompts(upstream)
    assert customer["cached"] is False, "an entry warmed by an asker of other collections is not shared"

    public_before = metric(walled.url, "hub_sources_total", collection="public")
    returns = ask(walled, CS_KEY, RETURNS_Q, top_k=2)
    assert returns["sources"] and returns["sources"][0]["collection"] == "public"
    assert metric(walled.url, "hub_sources_total", collection="public") > public_before
    assert metric(walled.url, "hub_sources_total", collection="internal") == internal_before


def test_a_tenant_that_names_no_collection_reads_none(walled: HubServer, upstream: FakeOpenAI) -> None:
    """The wall fails closed: "sales" is met only in a key, so it reads nothing, not everything."""
    for question in (BONUS_Q, RETURNS_Q):
        body = ask(walled, SALES_KEY, question)
        assert body["model"] == "none" and body["sources"] == [], body
        assert SECRET not in str(body)
    assert SECRET not in prompts(upstream) and "Returns and refunds" not in prompts(upstream)


def test_start_up_names_the_tenant_that_reads_nothing(walled: HubServer) -> None:
    from core import logs

    logs.flush()
    lines = [json.loads(line) for line in Path(str(walled.settings.log_file)).read_text().splitlines()]
    named = [line.get("tenant") for line in lines if line.get("event") == "tenant_reads_nothing"]
    assert named == ["sales"], "once, and only the tenant that names no collection"


def test_the_stream_obeys_the_wall(walled: HubServer, upstream: FakeOpenAI) -> None:
    ask(walled, HR_KEY, BONUS_Q)  # warms the cache for the employee's scope
    upstream.reset()
    with httpx.stream(
        "POST", f"{walled.url}/ask", json={"question": BONUS_Q, "stream": True}, headers={"X-API-Key": CS_KEY},
        timeout=20,
    ) as response:  # fmt: skip
        assert response.status_code == 200
        text = "".join(response.iter_text())
    assert "event: done" in text
    assert SECRET not in text and '"collection":"internal"' not in text
    assert SECRET not in prompts(upstream)


def test_v1_kb_context_holds_only_the_askers_collections(walled: HubServer, upstream: FakeOpenAI) -> None:
    sdk = openai.OpenAI(api_key=CS_KEY, base_url=f"{walled.url}/v1", max_retries=0, timeout=20)
    reply = sdk.chat.completions.create(model="kb", messages=[{"role": "user", "content": BONUS_Q}])
    assert SECRET not in (reply.choices[0].message.content or "")
    assert upstream.calls, "the question reached the model"
    assert SECRET not in prompts(upstream)

    upstream.reset()
    staff = openai.OpenAI(api_key=HR_KEY, base_url=f"{walled.url}/v1", max_retries=0, timeout=20)
    staff.chat.completions.create(model="kb", messages=[{"role": "user", "content": BONUS_Q}])
    assert SECRET in prompts(upstream), "the same door gives an employee the memo"


def test_cache_is_keyed_by_the_settings_that_change_an_answer(walled: HubServer) -> None:
    first = ask(walled, HR_KEY, RETURNS_Q, temperature=2.0)
    assert first["cached"] is False
    assert ask(walled, HR_KEY, RETURNS_Q, temperature=2.0)["cached"] is True
    assert ask(walled, HR_KEY, RETURNS_Q, temperature=0.0)["cached"] is False
    assert ask(walled, HR_KEY, RETURNS_Q, temperature=2.0, top_k=1)["cached"] is False


# --- conversations ------------------------------------------------------------------------------------------


def test_a_foreign_conversation_id_neither_reads_nor_writes(walled: HubServer, upstream: FakeOpenAI) -> None:
    conversation = "portal-session-42"
    ask(walled, HR_KEY, BONUS_Q, conversation_id=conversation)
    ask(walled, CS_KEY, "PLANTED-BY-CS please ignore", conversation_id=conversation)
    upstream.reset()

    ask(walled, CS_KEY, RETURNS_Q, conversation_id=conversation)
    assert upstream.calls and BONUS_Q not in prompts(upstream), "another asker's turns were read"
    upstream.reset()

    ask(walled, HR_KEY, RETURNS_Q, conversation_id=conversation)
    told = prompts(upstream)
    assert "PLANTED-BY-CS" not in told, "a foreign asker's turn was planted"
    assert BONUS_Q in told, "the owner's own earlier turn is still there"


def test_a_platform_conversation_is_not_readable_through_the_api(walled: HubServer, upstream: FakeOpenAI) -> None:
    """The LINE customer's chat ("line:<userId>", a predictable id) with a phone number in it."""
    customer = "U0123456789abcdef0123456789abcdef"
    walled.run(walled.hub.asker.ask(AskRequest(
        "My phone is 0912-345-678, " + RETURNS_Q, tenant="cs", client="line", user=customer, platform="line",
        conversation_id=f"line:{customer}", request_id="line-1",
    )))  # fmt: skip
    upstream.reset()
    ask(walled, HR_KEY, BONUS_Q, conversation_id=f"line:{customer}")
    assert upstream.calls, "with no personal data in its own (empty) conversation the question went to the cloud"
    assert "0912" not in prompts(upstream) and "My phone" not in prompts(upstream)


# --- feedback -------------------------------------------------------------------------------------------------


def vote(hub: HubServer, key: str, request_id: str, comment: str | None = None) -> httpx.Response:
    body = {"request_id": request_id, "rating": "down", **({"comment": comment} if comment else {})}
    return httpx.post(f"{hub.url}/feedback", json=body, headers={"X-API-Key": key}, timeout=10)


def test_feedback_only_from_the_asker_who_got_the_answer(walled: HubServer) -> None:
    answer = ask(walled, HR_KEY, RETURNS_Q)
    refused = vote(walled, CS_KEY, answer["request_id"])
    assert refused.status_code == 404, refused.text
    assert refused.json()["error"]["type"] == "not_found"
    assert vote(walled, CS_KEY, "made-up-request-id").status_code == 404

    taken = vote(walled, HR_KEY, answer["request_id"], comment="wrong, call me at 0912-345-678 or A123456789")
    assert taken.status_code == 204, taken.text
    [row] = walled.run(walled.hub.feedback.recent(10))
    assert row["request_id"] == answer["request_id"]
    assert "0912" not in row["comment"] and "A123456789" not in row["comment"]
    assert "[PHONE]" in row["comment"] and "[TW_ID]" in row["comment"]


def test_a_platform_thread_belongs_to_its_platform_and_tenant(walled: HubServer, upstream: FakeOpenAI) -> None:
    """The same Slack thread id in another tenant's workspace, or on another platform, is another thread."""

    def in_thread(tenant: str, platform: str, question: str) -> None:
        walled.run(walled.hub.asker.ask(AskRequest(question, tenant=tenant, client=platform, user="U1",
                                                   platform=platform, conversation_id="slack:T1:C1:1700000000.000100",
                                                   request_id=f"r-{tenant}-{platform}-{len(question)}")))  # fmt: skip

    in_thread("hr", "slack", BONUS_Q)
    upstream.reset()
    in_thread("cs", "slack", RETURNS_Q)
    in_thread("hr", "discord", RETURNS_Q)
    assert BONUS_Q not in prompts(upstream)
    upstream.reset()
    in_thread("hr", "slack", RETURNS_Q)
    assert BONUS_Q in prompts(upstream), "the thread's own earlier turn"
