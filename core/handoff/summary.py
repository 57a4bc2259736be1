"""The agents' first look at a handoff: the conversation so far and a short summary of it.

With a model configured, the summary is one short model call through the model gateway (its
routing: personal data in the conversation keeps it on a local model), charged to the
customer's tenant. Without one — offline, the extractive answerer, a failure or a timeout —
the last turns, verbatim, are the summary. When the agents' channel sees personal data
redacted, everything here is redacted before it leaves (the model's input included: it is
the redacted text that is summarised, so no placeholder can come back filled in).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

from core.accounting import Accounting
from core.llm.base import Message, Prompt
from core.llm.gateway import ModelGateway
from core.pii import redact

log = logging.getLogger("askhub.handoff")

SUMMARY_TIMEOUT_SEC = 10.0
SYSTEM = (
    "You summarise a customer's conversation with a support bot for the human agent who takes "
    "over. In 2-3 short sentences, in the customer's language: what the customer wants, what the "
    "bot already answered, and what is still open. No greeting, no advice to the agent."
)
Transcript = list[tuple[str, str]]  # (who: "customer" | "bot", text)


def shown(text: str, redacted: bool) -> str:
    return redact(text) if redacted else text


def verbatim(transcript: Transcript, turns: int = 3) -> str:
    lines = [f"{'Customer' if who == 'customer' else 'Bot'}: {text}" for who, text in transcript[-turns:]]
    return "\n".join(lines)


async def summarise(
    transcript: Transcript,
    *,
    models: ModelGateway,
    accounting: Accounting,
    tenant: str,
    platform: str,
    language: str,
    max_tokens: int,
) -> tuple[str, Literal["llm", "verbatim"]]:
    """(summary, how it was made). The transcript is already as the agents may see it."""
    text = verbatim(transcript, len(transcript))
    route = models.route(text, tenant=tenant, platform=platform, tenant_label=accounting.tenant_label(tenant))
    if not route.models or route.models[0].provider == "extractive":
        return verbatim(transcript), "verbatim"
    prompt = Prompt(
        question=text,
        hits=[],
        messages=[Message("system", SYSTEM), Message("user", text)],
        language=language,
    )
    try:
        async with asyncio.timeout(SUMMARY_TIMEOUT_SEC):
            completion = await models.complete(route, prompt, 0.0, max_tokens)
    except Exception as exc:  # a summary is a nicety: the agents get the turns instead
        log.info("handoff summary unavailable", extra={"exc": type(exc).__name__})
        return verbatim(transcript), "verbatim"
    if completion.model == "extractive" or not completion.text.strip():
        return verbatim(transcript), "verbatim"
    cost = accounting.record(tenant=tenant, client="handoff", model=completion.model,
                             prompt=completion.prompt_tokens, completion=completion.completion_tokens,
                             cached=False, forwarded=False)  # fmt: skip
    del cost
    await accounting.charge_tokens(tenant, completion.prompt_tokens + completion.completion_tokens)
    return completion.text.strip(), "llm"
