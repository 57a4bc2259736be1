"""The /v1 compatibility matrix: each client library × feature, run through a real hub in front
of the fake upstream (tests/fakes/openai_upstream.py), rendered as the Markdown table in
docs/openai-compatibility.md. tests/test_compat_matrix.py runs it and fails on any changed cell;
``UPDATE_COMPAT_MATRIX=1`` makes that test write the new table instead (then review the diff).

A cell is "yes", "no (<exception>)" — the client's own exception type, so a cell is stable —
or "—" where a client has no such call. Clients that are not installed get no column.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
from pydantic import BaseModel

from tests.fakes.openai_upstream import FakeOpenAI

DOC = Path(__file__).resolve().parents[1] / "docs" / "openai-compatibility.md"
BEGIN, END = "<!-- compat-matrix:begin -->", "<!-- compat-matrix:end -->"
CHAT_UPSTREAM = "gpt-4o-mini"
EMBED_MODEL = "text-embedding-3-small"  # the upstream name of the hub's logical model `embed`
QUESTION = "How do I reset my MFA?"
CONTEXT_TOO_LONG = "This model's maximum context length is 128000 tokens."
TOOL = {"type": "function", "function": {"name": "lookup_order", "description": "Find an order by its id",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}}}  # fmt: skip
FEATURES = [
    "chat",
    "stream",
    "tools (call and result)",
    "streamed tools",
    "structured output (JSON schema)",
    "embeddings: strings",
    "embeddings: token arrays",
    "embeddings: 1,000 inputs in one request",
    "upstream 400 as BadRequestError, one upstream call",
    "upstream 429 as RateLimitError",
    "models.list",
    "models.retrieve",
    "responses",
]
NOT_APPLICABLE = "—"


class Answer(BaseModel):
    answer: str


def lookup_order(order_id: str) -> str:
    """Find an order by its id."""
    return order_id


def thousand_texts() -> list[str]:
    return [f"chunk {i}: " + "The travel policy covers trains, planes and hotels. " * 20 for i in range(1000)]


class Matrix:
    """Runs every check of every installed client against one hub and one fake upstream."""

    def __init__(self, hub_url: str, key: str, fake: FakeOpenAI) -> None:
        self.base_url = f"{hub_url}/v1"
        self.key = key
        self.fake = fake

    def cell(self, check: Callable[[], Any] | None) -> str:
        if check is None:
            return NOT_APPLICABLE
        self.fake.reset()
        try:
            check()
        except AssertionError as exc:
            return f"no ({exc})" if str(exc) else "no"
        except Exception as exc:
            if isinstance(exc, openai.NotFoundError):
                return "not yet (404)"
            return f"no ({type(exc).__name__})"
        return "yes"

    def columns(self) -> dict[str, dict[str, Callable[[], Any] | None]]:
        columns = {"openai (Python)": self.openai_checks()}
        langchain = self.langchain_checks()
        if langchain is not None:
            columns["langchain-openai"] = langchain
        return columns

    def render(self) -> str:
        columns = {name: {f: self.cell(checks.get(f)) for f in FEATURES} for name, checks in self.columns().items()}
        lines = ["| feature | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
        lines += [f"| {f} | " + " | ".join(columns[c][f] for c in columns) + " |" for f in FEATURES]
        return "\n".join(lines)

    # --- the official openai SDK ---------------------------------------------------------

    def openai_checks(self) -> dict[str, Callable[[], Any] | None]:
        sdk = openai.OpenAI(base_url=self.base_url, api_key=self.key, max_retries=0, timeout=60)
        user = [{"role": "user", "content": QUESTION}]

        def chat() -> None:
            assert sdk.chat.completions.create(model="small", messages=user).choices[0].message.content  # type: ignore[arg-type]

        def stream() -> None:
            parts = sdk.chat.completions.create(model="small", messages=user, stream=True)  # type: ignore[arg-type]
            assert "".join(c.choices[0].delta.content or "" for c in parts if c.choices)

        def tools() -> None:
            reply = sdk.chat.completions.create(model="small", messages=user, tools=[TOOL])  # type: ignore[arg-type, list-item]
            call = (reply.choices[0].message.tool_calls or [None])[0]
            assert call is not None and call.function.name == "lookup_order", "no tool call"  # type: ignore[union-attr]
            follow = [*user, reply.choices[0].message.model_dump(exclude_none=True),
                      {"role": "tool", "tool_call_id": call.id, "content": "order 42: shipped"}]  # fmt: skip
            done = sdk.chat.completions.create(model="small", messages=follow, tools=[TOOL])  # type: ignore[arg-type, list-item]
            assert done.choices[0].message.content, "no answer after the tool's result"

        def streamed_tools() -> None:
            name, arguments = "", ""
            for chunk in sdk.chat.completions.create(model="small", messages=user, tools=[TOOL], stream=True):  # type: ignore[arg-type, list-item]
                for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                    name += (delta.function.name or "") if delta.function else ""
                    arguments += (delta.function.arguments or "") if delta.function else ""
            assert name == "lookup_order" and "order_id" in json.loads(arguments), "no streamed tool call"

        def structured() -> None:
            parse = getattr(sdk.chat.completions, "parse", None) or sdk.beta.chat.completions.parse
            parsed = parse(model="small", messages=user, response_format=Answer).choices[0].message.parsed
            assert isinstance(parsed, Answer) and parsed.answer

        def embed_strings() -> None:
            assert len(sdk.embeddings.create(model="embed", input=["VPN", "MFA"]).data) == 2

        def embed_tokens() -> None:
            assert len(sdk.embeddings.create(model="embed", input=[[53, 47, 45], [44, 3791]]).data) == 2

        def embed_thousand() -> None:
            assert len(sdk.embeddings.create(model="embed", input=thousand_texts()).data) == 1000
            assert len(self.fake.calls_for(EMBED_MODEL)) == 1, "more than one upstream call"

        def upstream_400() -> None:
            self.fake.set_behavior(CHAT_UPSTREAM, mode="error", status=400, message=CONTEXT_TOO_LONG,
                                   code="context_length_exceeded")  # fmt: skip
            try:
                sdk.with_options(max_retries=2).chat.completions.create(model="small", messages=user)  # type: ignore[arg-type]
            except openai.BadRequestError as exc:
                assert CONTEXT_TOO_LONG in str(exc) and exc.code == "context_length_exceeded", "message or code lost"
                assert len(self.fake.calls_for(CHAT_UPSTREAM)) == 1, "more than one upstream call"
                return
            raise AssertionError("no error")

        def upstream_429() -> None:
            self.fake.set_behavior(CHAT_UPSTREAM, mode="rate_limit", retry_after=0.01)
            try:
                sdk.chat.completions.create(model="small", messages=user)  # type: ignore[arg-type]
            except openai.RateLimitError as exc:
                assert exc.response.headers.get("retry-after"), "no Retry-After"
                return
            raise AssertionError("no error")

        def models_list() -> None:
            assert "small" in [m.id for m in sdk.models.list()]

        def models_retrieve() -> None:
            assert sdk.models.retrieve("small").id == "small"

        def responses() -> None:
            assert sdk.responses.create(model="small", input=QUESTION).output_text

        return dict(zip(FEATURES, [chat, stream, tools, streamed_tools, structured, embed_strings, embed_tokens,
                                   embed_thousand, upstream_400, upstream_429, models_list, models_retrieve,
                                   responses], strict=True))  # fmt: skip

    # --- LangChain (langchain-openai), when installed ------------------------------------

    def langchain_checks(self) -> dict[str, Callable[[], Any] | None] | None:
        try:
            from langchain_openai import ChatOpenAI, OpenAIEmbeddings
        except ImportError:
            return None
        options: dict[str, Any] = {"base_url": self.base_url, "api_key": self.key, "max_retries": 0, "timeout": 60}
        llm = ChatOpenAI(model="small", **options)

        def chat() -> None:
            assert llm.invoke(QUESTION).content

        def stream() -> None:
            assert "".join(str(c.content) for c in llm.stream(QUESTION))

        def tools() -> None:
            from langchain_core.messages import HumanMessage, ToolMessage

            bound = llm.bind_tools([lookup_order])
            reply = bound.invoke(QUESTION)
            assert reply.tool_calls and reply.tool_calls[0]["name"] == "lookup_order", "no tool call"
            call = reply.tool_calls[0]
            done = bound.invoke(
                [HumanMessage(QUESTION), reply, ToolMessage("order 42: shipped", tool_call_id=call["id"])]
            )
            assert done.content, "no answer after the tool's result"

        def streamed_tools() -> None:
            merged: Any = None
            for chunk in llm.bind_tools([lookup_order]).stream(QUESTION):
                merged = chunk if merged is None else merged + chunk
            assert merged is not None and merged.tool_calls and merged.tool_calls[0]["name"] == "lookup_order"

        def structured() -> None:
            parsed = llm.with_structured_output(Answer).invoke(QUESTION)
            assert isinstance(parsed, Answer) and parsed.answer

        def embed_strings() -> None:
            plain = OpenAIEmbeddings(model=EMBED_MODEL, check_embedding_ctx_length=False, **options)
            assert len(plain.embed_documents(["VPN", "MFA"])) == 2

        def embed_tokens() -> None:  # LangChain's default: token arrays
            assert len(OpenAIEmbeddings(model=EMBED_MODEL, **options).embed_documents(["VPN", "MFA"])) == 2
            sent = self.fake.calls_for(EMBED_MODEL)[0].json or {}
            assert sent.get("input") == ["VPN", "MFA"], "the upstream got something else"

        def embed_thousand() -> None:  # the default batch: 1,000 texts
            assert len(OpenAIEmbeddings(model=EMBED_MODEL, **options).embed_documents(thousand_texts())) == 1000
            assert len(self.fake.calls_for(EMBED_MODEL)) == 1, "more than one upstream call"

        def upstream_400() -> None:
            self.fake.set_behavior(CHAT_UPSTREAM, mode="error", status=400, message=CONTEXT_TOO_LONG,
                                   code="context_length_exceeded")  # fmt: skip
            try:
                ChatOpenAI(model="small", **{**options, "max_retries": 2}).invoke(QUESTION)
            except openai.BadRequestError as exc:
                assert CONTEXT_TOO_LONG in str(exc), "message lost"
                assert len(self.fake.calls_for(CHAT_UPSTREAM)) == 1, "more than one upstream call"
                return
            raise AssertionError("no error")

        def upstream_429() -> None:
            self.fake.set_behavior(CHAT_UPSTREAM, mode="rate_limit", retry_after=0.01)
            try:
                llm.invoke(QUESTION)
            except openai.RateLimitError:
                return
            raise AssertionError("no error")

        def responses() -> None:
            assert ChatOpenAI(model="small", use_responses_api=True, **options).invoke(QUESTION).content

        return dict(zip(FEATURES, [chat, stream, tools, streamed_tools, structured, embed_strings, embed_tokens,
                                   embed_thousand, upstream_400, upstream_429, None, None, responses], strict=True))  # fmt: skip


def committed() -> str:
    """The table as committed in the doc (between the markers)."""
    text = DOC.read_text(encoding="utf-8")
    found = re.search(re.escape(BEGIN) + r"\n(.*?)\n" + re.escape(END), text, re.S)
    return found.group(1) if found else ""


def write(table: str) -> None:
    text = DOC.read_text(encoding="utf-8")
    text = re.sub(
        re.escape(BEGIN) + r"\n.*?\n" + re.escape(END), lambda _: f"{BEGIN}\n{table}\n{END}", text, flags=re.S
    )
    DOC.write_text(text, encoding="utf-8")
