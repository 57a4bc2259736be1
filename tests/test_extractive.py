"""The offline answerer: quoted lines only, cited, chosen for what the question asks (steps for a
how-to, not the guide's introduction), a numbered procedure kept whole, the sources named and
the document to read for the rest."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import numpy as np

from core.kb.embedders import HashEmbedder
from core.kb.retriever import Hit
from core.kb.store import Chunk
from core.llm.extractive import ExtractiveProvider, answer
from core.llm.prompt import build_prompt
from tests.conftest import HubServer, make_settings


def hit(doc: str, title: str, section: str, text: str, score: float = 0.8, n: int = 0) -> Hit:
    chunk = Chunk(f"{doc}#{n}", doc, title, section, text, f"data/kb/{doc}")
    return Hit(chunk, score, score, score)


CLAIMS = hit(
    "travel-expenses.md",
    "Travel Expense Claims",
    "Deadlines",
    "Submit within 30 calendar days of returning. After 60 days the CFO must approve it.",
)
BOOKING = hit(
    "business-travel-booking.md",
    "Booking Business Travel",
    "After the trip",
    "Claim travel expenses in SpendWise as the other guide describes.",
    0.79,
)
PASSWORD = hit(
    "accounts.md",
    "IT account help",
    "Locked out",
    "Forgot your password? Reset it yourself.\n\n1. Open reset.lumen.example on any device.\n"
    "2. Enter your work e-mail.\n3. Approve the prompt in Microsoft Authenticator.\n"
    "4. Choose a new one of 14 characters or more.\n\nThe IT desk on 12F helps when self-service fails.",
)
# A guide's introduction holds every word of a how-to question; its procedure holds few of them.
SCOPE = hit(
    "travel-expenses.md",
    "Travel Expense Claims",
    "Scope",
    "This guide explains how to claim travel expenses you paid yourself. It applies to all employees and "
    "contractors who travel on company business. Booking travel is covered in the separate guide.",
    0.9,
)
STEPS = hit(
    "travel-expenses.md",
    "Travel Expense Claims",
    "Submitting a claim in SpendWise",
    "1. Open SpendWise and choose New Claim → Travel.\n2. Link the claim to your approved TA number.\n"
    "3. Add each cost as a line item and attach the receipt image.\n4. Check the cost center and submit.",
    0.85,
    n=7,
)
ZH_SCOPE = hit(
    "expense-zh.md",
    "一般費用報銷辦法",
    "適用範圍",
    "本辦法適用於同仁因公務先行墊付的一般性支出，報銷方式依本辦法辦理。",
    0.9,
)
ZH_STEPS = hit(
    "expense-zh.md",
    "一般費用報銷辦法",
    "報銷流程",
    "1. 登入 SpendWise，選擇「新增報銷」。\n2. 選擇費用類別與成本中心。\n3. 上傳單據照片。\n4. 送出後由主管簽核。",
    0.85,
    n=4,
)
# A list that reached the chunk on one line ("- A. - B."), as a long list's sentences do.
TROUBLESHOOTING = hit(
    "vpn.md",
    "VPN Setup",
    "Troubleshooting",
    '- "Permission denied": your account is not in the VPN-Users group. - Stuck at 98%: a hotel login page is '
    "interfering. Open a browser first and accept the Wi-Fi terms. - Very slow: some hotel networks block UDP.",
)


def quoted(text: str) -> list[tuple[str, int]]:
    return [(m.group(1), int(m.group(2))) for m in re.finditer(r"^- (.+) \[(\d+)\]$", text, re.M)]


def test_every_line_is_quoted_verbatim_from_the_passage_it_cites() -> None:
    hits = [CLAIMS, BOOKING, PASSWORD, TROUBLESHOOTING]
    questions = (
        "What is the deadline for travel expense claims?",
        "How do I reset my password?",
        "VPN is stuck at 98% in the hotel",
        "How do I claim travel expenses?",
    )
    for question in questions:
        lines = quoted(answer(build_prompt(question, hits)))
        assert lines, question
        for text, n in lines:
            assert text in hits[n - 1].chunk.text, (question, text)
    for question, hits in (("How do I claim travel expenses?", [SCOPE, STEPS]), ("怎麼報帳？", [ZH_SCOPE, ZH_STEPS])):
        for text, n in quoted(answer(build_prompt(question, hits))):
            assert text in hits[n - 1].chunk.text, (question, text)


def test_the_passage_whose_title_names_the_subject_answers() -> None:
    # The booking guide's line holds every word of the question, but only in passing; the
    # claims guide is about them (its title) and has the deadline.
    lines = quoted(answer(build_prompt("What is the deadline for travel expense claims?", [CLAIMS, BOOKING])))
    assert lines[0] == ("Submit within 30 calendar days of returning.", 1)


def test_a_numbered_procedure_is_answered_whole() -> None:
    # Only the first step says "reset"; the others come with it, in order.
    text = answer(build_prompt("How do I reset my password?", [PASSWORD]))
    lines = [line for line, _ in quoted(text)]
    first = lines.index("Open reset.lumen.example on any device.")
    assert lines[first : first + 4] == [
        "Open reset.lumen.example on any device.",
        "Enter your work e-mail.",
        "Approve the prompt in Microsoft Authenticator.",
        "Choose a new one of 14 characters or more.",
    ]


LIST_MARK = re.compile(r"^\d+\.\s+")
# A rule that holds every word of the question but does not say how.
PAYMENT = hit(
    "travel-expenses.md",
    "Travel Expense Claims",
    "When the money arrives",
    "Travel expenses you claim are paid with the salary on the 10th and the 25th.",
    0.85,
    n=9,
)


def test_a_how_to_question_gets_the_steps_not_the_introduction() -> None:
    for question, hits in (("How do I claim travel expenses?", [SCOPE, STEPS]), ("怎麼報帳？", [ZH_SCOPE, ZH_STEPS])):
        lines = quoted(answer(build_prompt(question, hits)))
        assert lines[0][1] == 2, f"{question}: the procedure leads, not the introduction"
        assert [text for text, _ in lines if _ == 2] == [
            LIST_MARK.sub("", step) for step in hits[1].chunk.text.splitlines()
        ], question
        assert all(n == 2 for _, n in lines), f"{question}: the introduction is not quoted at all"
    lines = quoted(answer(build_prompt("How do I claim travel expenses?", [SCOPE, PAYMENT, STEPS])))
    assert lines[0] == ("Open SpendWise and choose New Claim → Travel.", 3), "the steps answer how, before the rule"


def test_the_sources_and_the_document_to_read_are_named() -> None:
    text = answer(build_prompt("How do I claim travel expenses?", [SCOPE, STEPS]))
    assert "Sources: [2] Travel Expense Claims — Submitting a claim in SpendWise" in text
    assert text.splitlines()[-1] == "For the rest, read “Travel Expense Claims” (travel-expenses.md)."
    zh = answer(build_prompt("怎麼報帳？", [ZH_SCOPE, ZH_STEPS]))
    assert "引用來源：[2] 一般費用報銷辦法 — 報銷流程" in zh
    assert zh.splitlines()[-1] == "其餘內容請見〈一般費用報銷辦法〉（expense-zh.md）。"


def test_a_line_that_sends_the_reader_elsewhere_names_that_document() -> None:
    pointer = hit(
        "booking.md",
        "Booking Business Travel",
        "After the trip",
        "Claim out-of-pocket costs in SpendWise as described in the “Travel Expense Claims” guide.",
        0.9,
    )
    other = hit("travel-expenses.md", "Travel Expense Claims", "Per diem", "Per diem is paid per day away.", 0.5)
    text = answer(build_prompt("How do I claim out-of-pocket costs?", [pointer, other]))
    assert quoted(text)[0][1] == 1
    assert text.splitlines()[-1] == "For the rest, read “Travel Expense Claims” (travel-expenses.md)."


def test_a_list_flattened_onto_one_line_is_quoted_item_by_item() -> None:
    lines = quoted(answer(build_prompt("VPN is stuck at 98% in the hotel", [TROUBLESHOOTING])))
    assert lines[0] == (
        "Stuck at 98%: a hotel login page is interfering. Open a browser first and accept the Wi-Fi terms.",
        1,
    )
    assert all(" - " not in text for text, _ in lines)


class MeaningEmbedder:
    """A stand-in semantic model: texts it knows get their vector, anything else a far one."""

    name = "test-semantic"
    dim = 3

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors = vectors
        self.calls = 0

    async def embed(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        rows = np.array([self.vectors.get(t, [0.0, 0.0, 1.0]) for t in texts], dtype=np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


PATERNITY = hit(
    "leave-zh.md",
    "請假規定",
    "陪產假",
    "請假須事先在 LumenHR 申請。配偶分娩時，可請陪產檢及陪產假 7 日，薪資照給。",
)


async def test_a_semantic_embedder_ranks_lines_by_meaning_across_languages() -> None:
    question = "How many days off do I get when my wife gives birth?"
    embedder = MeaningEmbedder(
        {question: [1.0, 0.0, 0.0], "配偶分娩時，可請陪產檢及陪產假 7 日，薪資照給。": [0.9, 0.1, 0.0]}
    )
    completion = await ExtractiveProvider(embedder).complete(build_prompt(question, [PATERNITY]))
    assert embedder.calls == 2, "the passage's lines, then the question"
    assert quoted(completion.text)[0] == ("配偶分娩時，可請陪產檢及陪產假 7 日，薪資照給。", 1)
    assert completion.text.startswith("From the knowledge base (quoted in its original language):")
    # Words alone cannot rank Chinese lines for an English question: the passage is quoted in order.
    assert quoted(answer(build_prompt(question, [PATERNITY])))[0] == ("請假須事先在 LumenHR 申請。", 1)


async def test_the_embedder_is_asked_only_where_words_cannot_rank() -> None:
    prompt = build_prompt("How do I claim travel expenses?", [SCOPE, STEPS])
    embedder = MeaningEmbedder({})
    completion = await ExtractiveProvider(embedder).complete(prompt)
    assert embedder.calls == 0, "a question in its passages' language: words rank, no model pass"
    assert completion.text == answer(prompt) and completion.model == "extractive"
    assert (await ExtractiveProvider(HashEmbedder()).complete(prompt)).text == answer(prompt)


class BrokenEmbedder(MeaningEmbedder):
    async def embed(self, texts: list[str]) -> np.ndarray:
        raise RuntimeError("model not loaded")


async def test_an_embedder_failure_leaves_the_answer_by_words() -> None:
    prompt = build_prompt("How many days off do I get when my wife gives birth?", [PATERNITY])
    completion = await ExtractiveProvider(BrokenEmbedder({})).complete(prompt)
    assert completion.text == answer(prompt)


def test_passages_that_share_no_word_with_the_question_are_still_quoted() -> None:
    # Retrieval found them (synonyms, meaning); words cannot rank their lines: the best one is
    # quoted in its own order rather than answering "I don't know".
    contact = hit(
        "parking-zh.md", "停車與通勤補助辦法", "聯絡窗口", "總務課：facilities@lumentech.example，分機 1200。"
    )
    lines = quoted(answer(build_prompt("Is there a subsidy if I commute by MRT?", [contact, PATERNITY])))
    assert lines == [("總務課：facilities@lumentech.example，分機 1200。", 1)]


CLAIM_STEPS = (
    "Open SpendWise (spend.lumen.internal) and choose New Claim → Travel.",
    "Link the claim to your approved TA number (format TA-2024-xxxxx). Claims without a TA are returned automatically.",
    "Add each cost as a separate line item, pick the category and attach the receipt image.",
    "Add per diem with the Per-Diem Calculator; it fills in the days and rates from the itinerary on your TA.",
    "Check the cost center (normally pre-filled from your profile) and submit.",
)


def test_the_first_answer_a_newcomer_sees_quotes_how_to_claim(tmp_path: Path, sample_index: Path) -> None:
    """The README's first question, offline through /ask: the claim procedure, every step verbatim
    and cited, not the guide's scope (which matches the question's words as well)."""
    hub = HubServer(make_settings(tmp_path, INDEX_DIR=str(sample_index))).start()
    try:
        response = httpx.post(f"{hub.url}/ask", json={"question": "How do I claim travel expenses?"}, timeout=20)
    finally:
        hub.stop()
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "extractive"
    assert body["sources"][0]["id"] == "travel-expenses.md#7"
    lines = quoted(body["answer"])
    cited = {n for _, n in lines}
    for step in CLAIM_STEPS:
        assert (step, 1) in lines, f"step quoted verbatim with its citation: {step}"
        assert step in body["sources"][0]["text"]
    assert "[1] Travel Expense Claims — Submitting a claim in SpendWise" in body["answer"]
    assert not any("This guide explains" in text for text, _ in lines)
    assert cited <= {i + 1 for i in range(len(body["sources"]))}
