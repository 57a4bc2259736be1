"""Personal data wherever it hides: every field of a /v1 body, and the spellings that used to
slip past detection on /ask, reach only the local model and never a log line raw."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from core import logs
from core.pii import find_pii, has_pii, redact
from tests.conftest import HubServer, make_settings, write_yaml
from tests.fakes.openai_upstream import FakeOpenAI

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover
    given = None

KEY = "ah_pii-everywhere-key-0000000"
EMAIL, TW_ID, PHONE = "mary.chen@lumentech.com.tw", "A123456789", "0912-345-678"


@pytest.fixture(scope="module")
def cloud() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(scope="module")
def local() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(scope="module")
def hub(
    tmp_path_factory: pytest.TempPathFactory, sample_index: Path, cloud: FakeOpenAI, local: FakeOpenAI
) -> Iterator[HubServer]:
    tmp = tmp_path_factory.mktemp("pii-everywhere")
    config = write_yaml(tmp / "hub.yaml", {"resilience": {"retries": 0}})
    settings = make_settings(
        tmp, INDEX_DIR=str(sample_index), HUB_CONFIG=str(config), HUB_API_KEYS=f"svc:hr:{KEY}",
        OPENAI_API_KEY="sk-up", OPENAI_BASE_URL=cloud.base_url, LOCAL_LLM_BASE_URL=local.base_url,
        LOCAL_LLM_MODEL="local-llm", RATE_LIMIT_MAX_PER_USER="10000",
    )  # fmt: skip
    with HubServer(settings) as server:
        yield server


@pytest.fixture(autouse=True)
def _reset(cloud: FakeOpenAI, local: FakeOpenAI) -> None:
    cloud.reset()
    local.reset()


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}
# Each body hides one value where the hub used to look away (the seven cases and more).
HIDING_PLACES: dict[str, dict[str, Any]] = {
    "messages[].name": {"messages": [{"role": "user", "name": TW_ID, "content": "What is the leave policy?"}]},
    "tool_calls[].function.arguments": {
        "messages": [
            user("Find my record"),
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": json.dumps({"email": EMAIL})},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "found"},
        ]
    },
    "tools[].function.description": {
        "messages": [user("Which tool?")],
        "tools": [{**TOOL, "function": {**TOOL["function"], "description": f"Call {PHONE} for help"}}],
    },
    "image_url": {
        "messages": [
            user(
                [
                    {"type": "text", "text": "What is in this?"},
                    {"type": "image_url", "image_url": {"url": f"https://x.example/?id={TW_ID}"}},
                ]
            )
        ]
    },
    "user": {"messages": [user("What is the leave policy?")], "user": EMAIL},
    "metadata": {"messages": [user("What is the leave policy?")], "metadata": {"caller": PHONE}},
    "input_text part": {"messages": [user([{"type": "input_text", "text": f"My ID is {TW_ID}"}])]},
    "system message": {"messages": [{"role": "system", "content": f"The user is {EMAIL}"}, user("Hi")]},
    "a key of metadata": {"messages": [user("Hi")], "metadata": {EMAIL: "x"}},
    # JSON numbers are values too (issue #26): the same digits as a string always routed locally.
    "a card number in metadata": {
        "messages": [user("What is the leave policy?")],
        "metadata": {"card": 4111111111111111},
    },
    "a phone number as user": {"messages": [user("What is the leave policy?")], "user": 886912345678},
    "a number in an unknown field": {
        "messages": [user("What is the leave policy?")],
        "customer": {"phone": 886912345678},
    },
    "a tool parameter's default": {
        "messages": [user("Which tool?")],
        "tools": [
            {
                **TOOL,
                "function": {
                    **TOOL["function"],
                    "parameters": {
                        "type": "object",
                        "properties": {"card": {"type": "integer", "default": 4111111111111111}},
                    },
                },
            }
        ],
    },
    "a card number written as a float": {"messages": [user("Hi")], "metadata": {"card": 4.111111111111111e15}},
}


def post_v1(hub: HubServer, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{hub.url}/v1/chat/completions", json={"model": "large", **body},
                      headers={"Authorization": f"Bearer {KEY}"}, timeout=20)  # fmt: skip


@pytest.mark.parametrize("place", list(HIDING_PLACES))
def test_v1_personal_data_in_any_field_reaches_only_the_local_model(
    place: str, hub: HubServer, cloud: FakeOpenAI, local: FakeOpenAI
) -> None:
    response = post_v1(hub, HIDING_PLACES[place])
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "local-llm"
    assert cloud.calls == [], f"personal data in {place} reached the cloud model"
    assert local.calls


def test_v1_without_personal_data_still_goes_to_the_cloud(hub: HubServer, cloud: FakeOpenAI) -> None:
    """The control: the same shapes with nothing personal are not all sent to the local model."""
    body = {"messages": [{"role": "user", "name": "mary", "content": "What is the leave policy?"}],
            "user": "tester", "metadata": {"caller": "portal"}, "tools": [TOOL]}  # fmt: skip
    response = post_v1(hub, body)
    assert response.status_code == 200 and response.json()["model"] == "gpt-4o"
    assert cloud.calls


def test_v1_refuses_bytes_it_cannot_read(hub: HubServer, cloud: FakeOpenAI, local: FakeOpenAI) -> None:
    image = user([{"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}])
    audio = user([{"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}])
    for body in ({"messages": [image]}, {"messages": [audio]}):
        response = post_v1(hub, body)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["type"] == "invalid_request"
        assert "personal data" in response.json()["error"]["message"]
    assert cloud.calls == [] and local.calls == []


def test_v1_deeply_nested_body_is_a_clear_error_or_answer(hub: HubServer) -> None:
    nested: Any = PHONE
    for _ in range(200):
        nested = {"k": nested}
    response = post_v1(hub, {"messages": [user("Hi")], "metadata": nested})
    assert response.status_code in (200, 400), response.text
    if response.status_code == 200:
        assert response.json()["model"] == "local-llm"


def test_v1_sdk_with_a_phone_in_the_tool_arguments(hub: HubServer, cloud: FakeOpenAI) -> None:
    sdk = openai.OpenAI(api_key=KEY, base_url=f"{hub.url}/v1", max_retries=0, timeout=20)
    reply = sdk.chat.completions.create(
        model="small", messages=HIDING_PLACES["tool_calls[].function.arguments"]["messages"]
    )
    assert reply.model == "local-llm" and cloud.calls == []


# --- spellings that hide a value, on /ask -----------------------------------------------------------------

SPELLINGS = [
    ("zero-width space in an e-mail", "mail mary\u200b.chen@lumentech.com.tw about it", "email"),
    ("soft hyphen in an e-mail", "mail mary.chen@lumen\u00adtech.com.tw about it", "email"),
    ("zero-width space in an ID", "身分證 A12345\u200b6789 遺失", "tw_id"),
    ("word joiner in a phone", "call 0912\u2060345678", "phone"),
    ("country code without +", "call 886 912 345 678 please", "phone"),
    ("slashes in a phone", "手機 0912/345/678", "phone"),
    ("dots in a card", "卡號 4111.1111.1111.1111 被盜刷", "credit_card"),
    ("spaces in an ID", "ID A 123 456 789 lost", "tw_id"),
    ("dashes in an ID", "ID A123-456-789 lost", "tw_id"),
    ("full-width slashes", "手機 ０９１２／３４５／６７８", "phone"),
    # issue #26: spellings that still reached the cloud model
    ("Chinese numerals", "我的手機是零九一二三四五六七八", "phone"),
    ("Chinese numerals with 〇", "手機 〇九一二 三四五 六七八", "phone"),
    ("financial numerals", "手機 零玖壹貳參肆伍陸柒捌", "phone"),
    ("幺 read aloud for one", "手機 零九幺二三四五六七八", "phone"),
    ("Arabic-Indic digits", "call ٠٩١٢٣٤٥٦٧٨ please", "phone"),
    ("keycap digits", "call 0️⃣9️⃣1️⃣2️⃣3️⃣4️⃣5️⃣6️⃣7️⃣8️⃣ please", "phone"),
    ("a variation selector between digits", "call 09\ufe0f12345678 please", "phone"),
    ("line breaks between groups", "call 0912\n345\n678 please", "phone"),
    ("a narrow no-break space", "call 0912\u202f345\u202f678 please", "phone"),
    ("ideographic full stops", "手機 0912。345。678 謝謝", "phone"),
    ("an e-mail written (at)", "mail wang.xm(at)example.com about it", "email"),
    ("an e-mail written [at] [dot]", "mail wang.xm [at] example [dot] com about it", "email"),
    ("an e-mail with spaces around @", "mail wang.xm @ example.com about it", "email"),
    ("an e-mail with a Chinese local part", "寄到 王小明@example.com 謝謝", "email"),
    ("an e-mail with an IDN domain", "mail wang@例子.台灣 about it", "email"),
    ("an e-mail with a punycode domain", "mail wang@xn--fsqu00a.xn--kpry57d about it", "email"),
    ("an e-mail with 。 for the dot", "寄到 wang.xm@example。com 謝謝", "email"),
    ("a lower-case IBAN", "my iban gb82west12345698765432 thanks", "iban"),
    ("a lower-case IBAN in groups", "my iban gb82 west 1234 5698 7654 32 thanks", "iban"),
]


@pytest.mark.parametrize(("name", "text", "kind"), SPELLINGS, ids=[s[0] for s in SPELLINGS])
def test_spellings_that_hide_personal_data_are_found(name: str, text: str, kind: str) -> None:
    assert [m.kind for m in find_pii(text)] == [kind], name
    redacted = redact(text)
    assert not has_pii(redacted)
    assert not any(ch.isdigit() for ch in redacted.split()[-1]) or "@" not in redacted


def test_a_hidden_spelling_on_ask_goes_local_and_stays_out_of_the_log(
    hub: HubServer, cloud: FakeOpenAI, local: FakeOpenAI
) -> None:
    for _name, text, _kind in SPELLINGS:
        response = httpx.post(f"{hub.url}/ask", json={"question": text}, headers={"X-API-Key": KEY}, timeout=20)
        assert response.status_code == 200, response.text
    assert not any("gpt" in (c.model or "") for c in cloud.calls), "a hidden spelling reached the cloud model"
    logs.flush()
    log = Path(str(hub.settings.log_file)).read_text(encoding="utf-8")
    for raw in (
        "lumentech",
        "345678",
        "1111.1111",
        "456 789",
        "456-789",
        "３４５",
        "三四五",
        "wang",
        "王小明",
        "5698",
        "參肆伍",
        "٣٤٥",
    ):
        assert raw not in log, raw


def test_ordinary_chinese_numbers_are_not_personal_data() -> None:
    """The control for the numerals: counting, dates and ordinals in words stay ordinary."""
    for text in (
        "一二三四月的加班費怎麼算?",
        "二〇二四年十二月的年終獎金",
        "第一二三季的目標",
        "三八婦女節放假嗎",
        "Slack 裡 @channel 可以用嗎",
        "ping @here about 3.5 days",
        "1 at 2 dot 3",
    ):
        assert not has_pii(text), text


def test_numbers_in_a_json_body_are_scanned() -> None:
    from core.pii import json_has_pii, json_text

    assert json_has_pii({"metadata": {"card": 4111111111111111}})
    assert json_has_pii({"customer": {"phone": 886912345678}})
    assert json_has_pii([[[{"x": [0, 886912345678]}]]])
    assert not json_has_pii({"model": "gpt-4o", "temperature": 0.7, "max_tokens": 512, "stream": True, "n": None})
    # Two values never join into one number.
    assert not json_has_pii({"a": "0912", "b": 345678})
    assert "4111111111111111" in json_text({"c": 4.111111111111111e15})


def test_a_long_run_of_numbers_counts_as_personal_data() -> None:
    """Too long to take apart cheaply, and it could hide anything: treated as personal data."""
    run = " ".join(["0"] * 5000) + " 0912345678 " + " ".join(["1"] * 5000)
    assert has_pii(run)
    assert redact(run).strip() == "[NUMBERS]"
    assert not has_pii("2024 年第 3 季 12 個專案 45 人")


if given is not None:
    INVISIBLE = ["\u200b", "\u00ad", "\u2060", "\ufeff", "\u200e"]
    # Where people put visible separators: after the ID's letter and between digit groups.
    VALUES = {"A123456789": (1, 4, 7), "F131104093": (1, 4, 7), "0912345678": (4, 7), "886912345678": (3, 6, 9)}

    @settings(max_examples=300, deadline=None)
    @given(
        st.sampled_from(sorted(VALUES)),
        st.sampled_from(["", " ", "-", ".", "/"]),
        st.sets(st.integers(1, 11)),
        st.lists(st.sampled_from(INVISIBLE), min_size=11, max_size=11),
    )
    def test_invisible_characters_and_separators_do_not_hide_a_value(
        value: str, separator: str, hidden_at: set[int], invisible: list[str]
    ) -> None:
        spelled = ""
        for i, ch in enumerate(value):
            if i and i in VALUES[value]:
                spelled += separator
            if i and i in hidden_at:
                spelled += invisible[i - 1]
            spelled += ch
        text = f"我的資料 {spelled} 謝謝"
        assert has_pii(text), repr(text)
        assert not has_pii(redact(text))
        assert value[-4:] not in redact(text)

    # Each digit of a value in any of the ways people type it: ASCII, full-width, Chinese (both
    # forms), Arabic-Indic; the scan folds them all to the same digits.
    DIGIT_FORMS = ["0123456789", "０１２３４５６７８９", "零一二三四五六七八九", "〇壹貳參肆伍陸柒捌玖", "٠١٢٣٤٥٦٧٨٩"]

    @settings(max_examples=300, deadline=None)
    @given(st.sampled_from(sorted(VALUES)), st.lists(st.integers(0, len(DIGIT_FORMS) - 1), min_size=12, max_size=12))
    def test_digits_of_any_script_do_not_hide_a_value(value: str, forms: list[int]) -> None:
        spelled = "".join(DIGIT_FORMS[forms[i]][int(ch)] if ch.isdigit() else ch for i, ch in enumerate(value))
        text = f"我的資料 {spelled} 謝謝"
        assert has_pii(text), repr(text)
        assert not has_pii(redact(text))
        assert redact(text).startswith("我的資料 [") and redact(text).endswith("] 謝謝")

    JSON_LEAVES = st.one_of(st.text(max_size=8), st.integers(-(10**6), 10**6), st.booleans(), st.none())

    @settings(max_examples=200, deadline=None)
    @given(
        st.recursive(
            JSON_LEAVES,
            lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
            max_leaves=20,
        ),
        st.sampled_from([4111111111111111, 886912345678, 4.111111111111111e15]),
    )
    def test_a_number_anywhere_in_a_body_is_found(body: Any, number: int | float) -> None:
        from core.pii import json_has_pii

        assert json_has_pii({"messages": [body], "metadata": {"deep": [body, {"n": number}]}})

    LOCAL_CHARS = st.sampled_from(list("abcxyz019._-") + list("王小明陳"))
    LABEL_CHARS = st.sampled_from(list("examplelumen") + list("例子公司"))

    @settings(max_examples=300, deadline=None)
    @given(
        st.text(LOCAL_CHARS, min_size=1, max_size=20).filter(lambda s: s.strip("._-") != ""),
        st.lists(st.text(LABEL_CHARS, min_size=1, max_size=12), min_size=1, max_size=3),
        st.sampled_from(["@", " @ ", "(at)", " [at] ", "{at}", "＠"]),
        st.sampled_from([".", " [dot] ", "(dot)", "。", "[.]"]),
        st.sampled_from(["com", "tw", "台灣", "xn--kpry57d"]),
        st.sampled_from([("請寄到 ", " 謝謝"), ("mail ", " please"), ("", "")]),
    )
    def test_an_e_mail_in_any_of_its_spellings_is_found(
        local: str, labels: list[str], at: str, dot: str, tld: str, around: tuple[str, str]
    ) -> None:
        local = local.strip("._-")
        text = f"{around[0]}{local}{at}{dot.join([*labels, tld])}{around[1]}"
        assert [m.kind for m in find_pii(text)] == ["email"], repr(text)
        assert redact(text) == f"{around[0]}[EMAIL]{around[1]}", repr(text)
