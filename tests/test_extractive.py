"""The offline answerer: quoted lines only, cited, chosen with the passage's title and heading
in mind, and a numbered procedure kept whole."""

from __future__ import annotations

import re

from core.kb.retriever import Hit
from core.kb.store import Chunk
from core.llm.extractive import answer
from core.llm.prompt import build_prompt


def hit(doc: str, title: str, section: str, text: str, score: float = 0.8) -> Hit:
    chunk = Chunk(f"{doc}#0", doc, title, section, text, f"data/kb/{doc}")
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


def quoted(text: str) -> list[tuple[str, int]]:
    return [(m.group(1), int(m.group(2))) for m in re.finditer(r"^- (.+) \[(\d+)\]$", text, re.M)]


def test_every_line_is_quoted_from_the_passage_it_cites() -> None:
    hits = [CLAIMS, BOOKING, PASSWORD]
    for question in ("What is the deadline for travel expense claims?", "How do I reset my password?"):
        lines = quoted(answer(build_prompt(question, hits)))
        assert lines
        for text, n in lines:
            assert text in hits[n - 1].chunk.text


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
