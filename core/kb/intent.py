"""What kind of answer a question asks for, read from its wording, and whether a passage is
shaped like one: retrieval picks a document's procedure for a how-to question, the offline
answerer prefers its steps."""

from __future__ import annotations

import re

HOW_TO_QUESTION = re.compile(
    r"\bhow (?:do|can|should|would|to|does|did)\b|\bsteps?\b|\bprocess\b|\bprocedure\b|\bwhat (?:do|should) i do\b"
    r"|\bwhat now\b|\bwhere (?:do|can|should) i\b|怎麼|怎樣|如何|步驟|流程|程序|辦理|該怎",
    re.I,
)
# Two numbered items, at the start of a line: "1. Open SpendWise …\n2. Link the claim …".
_PROCEDURE = re.compile(r"^\s*1[.)]\s+\S.*\n(?:.*\n)*?\s*2[.)]\s+\S", re.M)
# The same list after a chunker or converter joined it into one line: "… 1. Open … 2. Link …".
_INLINE_PROCEDURE = re.compile(r"(?:^|[\s:：])1[.)]\s+\S[^\n]*?[.。;；]\s+2[.)]\s+\S")


def asks_how_to(question: str) -> bool:
    return bool(HOW_TO_QUESTION.search(question))


def is_procedure(text: str) -> bool:
    """A passage that holds numbered steps (1., 2., …): the answer to "how do I …?"."""
    return bool(_PROCEDURE.search(text) or _INLINE_PROCEDURE.search(text))
