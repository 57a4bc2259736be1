"""The question rewrite: search with the question as asked and, when a model is configured, with
one short LLM call's rewrites of it — standalone (a follow-up's references resolved from the
conversation) and in each of the knowledge base's languages — then merge the hits.

The rewrite can only add: offline there is no call; a question that already matches well is not
rewritten, nor one that matches nothing at all (an off-topic question is declined without a
model call; a follow-up is rewritten either way); any failure or a timeout of the call leaves
the plain search's hits, counted in ``hub_query_rewrites_total``. The call's tokens are the
asker's, charged like any model call (core/accounting.py: usage, cost, budget). Personal data never reaches
a cloud model for rewriting: a question routed as PII is rewritten by a local model of its
route, or not at all.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from typing import Any

from core.accounting import Accounting
from core.auth.principal import Principal
from core.config import ConfigError, RetrievalSettings
from core.conversation import Turn
from core.kb.retriever import Hit, Retriever
from core.kb.store import KnowledgeIndex
from core.llm.base import Message, Prompt
from core.llm.gateway import ModelGateway
from core.llm.prompt import language_of
from core.llm.routing import ModelSpec, Route
from core.metrics import QUERY_REWRITES

log = logging.getLogger("askhub.rewrite")

RRF_K = 60  # reciprocal rank's usual constant, for ties
EARLIER_TURNS = 3  # the last turns of the conversation the rewrite sees
ANSWER_CHARS = 300  # of each earlier answer
MAX_REWRITE_CHARS = 500
LANGUAGE_NAMES = {"en": "English", "zh-TW": "Traditional Chinese (zh-TW)"}
SYSTEM = (
    "You rewrite questions for searching a company knowledge base; you never answer them. "
    "Write the user's latest question as one standalone question: replace words that refer to the "
    "earlier conversation with what they refer to, keep names, numbers and product terms as they are. "
    "Reply with exactly these lines and nothing else:\n"
)
_LINE = re.compile(r"^\s*[-*]?\s*(en|english|zh-tw|zh|chinese)\s*[:：]\s*(.+?)\s*$", re.I)


class RewritingSearch:
    """``Retriever.search`` plus the rewrite; every keyword argument reaches the retriever as given."""

    def __init__(
        self,
        retriever: Retriever,
        models: ModelGateway,
        settings: RetrievalSettings,
        accounting: Accounting | None = None,
    ) -> None:
        if settings.rewrite.model is not None and models.router.by_name(settings.rewrite.model) is None:
            raise ConfigError(f"retrieval.rewrite.model: unknown model {settings.rewrite.model}")
        self._retriever = retriever
        self._models = models
        self._accounting = accounting
        self._s = settings.rewrite
        self._min_score = settings.min_score
        self._languages: tuple[tuple[str, int], tuple[str, ...]] | None = None

    async def search(
        self,
        index: KnowledgeIndex,
        question: str,
        top_k: int,
        *,
        route: Route | None = None,
        history: Sequence[Turn] = (),
        asker: Principal | None = None,
        **kwargs: Any,
    ) -> list[Hit]:
        """``asker``: whose request it is, charged for the rewrite's tokens."""
        hits = await self._retriever.search(index, question, top_k, **kwargs)
        if not self._s.enabled or route is None:
            return hits
        skip = None if history else skip_reason(hits, skip_above=self._s.skip_above, min_score=self._min_score)
        if skip is not None:
            QUERY_REWRITES.labels(skip).inc()
            return hits
        spec = self._model(route)
        if spec is None:
            QUERY_REWRITES.labels("no_model").inc()
            return hits
        resilience = self._models.resilience
        if resilience.breaker(spec.name).state == "open" or resilience.busy(spec):
            QUERY_REWRITES.labels("unavailable").inc()
            return hits
        rewrites = await self._rewrite(spec, question, history, self._kb_languages(index), asker)
        rewrites = [r for r in rewrites if _same(r) != _same(question)]
        if not rewrites:
            return hits
        kwargs["context"] = ""  # a rewrite stands alone: the earlier question would only blur it
        more = await asyncio.gather(*(self._retriever.search(index, r, top_k, **kwargs) for r in rewrites))
        return fuse([hits, *more], top_k)

    def _model(self, route: Route) -> ModelSpec | None:
        """The configured rewrite model, else the route's first; only a local one for PII. The
        offline answerer cannot rewrite, so without an upstream model there is no call."""
        chosen = self._models.router.by_name(self._s.model) if self._s.model else None
        candidates = [chosen] if chosen is not None else []
        if chosen is None or (route.pii and not chosen.local):
            candidates += list(route.models)
        return next((m for m in candidates if m.provider == "openai" and (m.local or not route.pii)), None)

    async def _rewrite(
        self,
        spec: ModelSpec,
        question: str,
        history: Sequence[Turn],
        languages: tuple[str, ...],
        asker: Principal | None,
    ) -> list[str]:
        wanted = sorted({*languages, language_of(question)})
        prompt = rewrite_prompt(question, history, wanted)
        try:
            completion = await asyncio.wait_for(
                self._models.complete_once(spec, prompt, 0.0, self._s.max_tokens), self._s.timeout_sec
            )
        except TimeoutError:
            QUERY_REWRITES.labels("timeout").inc()
            log.warning("question rewrite timed out; plain search", extra={"model": spec.name})
            return []
        except Exception as exc:  # the rewrite may never break an answer
            QUERY_REWRITES.labels("failed").inc()
            log.warning("question rewrite failed; plain search", extra={"model": spec.name, "exc": type(exc).__name__})
            return []
        QUERY_REWRITES.labels("rewritten").inc()
        if self._accounting is not None and asker is not None:
            await self._accounting.side_call(
                asker, completion.model, completion.prompt_tokens, completion.completion_tokens
            )
        return parse_rewrites(completion.text)

    def _kb_languages(self, index: KnowledgeIndex) -> tuple[str, ...]:
        """The languages of the documents' titles, worked out once per index version."""
        key = (index.name, index.version)
        if self._languages is None or self._languages[0] != key:
            self._languages = (key, tuple(sorted({language_of(d.title) for d in index.documents})))
        return self._languages[1]


def skip_reason(hits: Sequence[Hit], *, skip_above: float, min_score: float) -> str | None:
    """Why a single question needs no rewrite: ``off_topic`` when nothing reaches ``min_score``
    (the semantic retriever returns nothing at all for such a question), ``not_needed`` when a
    chunk holds ``skip_above`` of the question's words (its lexical share: the same scale for
    every embedder, and low exactly where a rewrite helps — another language, other words)."""
    if not hits or hits[0].score < min_score:
        return "off_topic"
    return "not_needed" if max(hit.lexical for hit in hits) >= skip_above else None


def rewrite_prompt(question: str, history: Sequence[Turn], languages: Sequence[str]) -> Prompt:
    lines = "\n".join(f"{code}: <the question in {LANGUAGE_NAMES.get(code, code)}>" for code in languages)
    earlier = [
        f"Earlier question: {turn.question}\nEarlier answer: {turn.answer[:ANSWER_CHARS]}"
        for turn in history[-EARLIER_TURNS:]
    ]
    user = "\n\n".join([*earlier, f"Latest question: {question}"])
    messages = [Message("system", SYSTEM + lines), Message("user", user)]
    return Prompt(question=question, hits=[], messages=messages, language=language_of(question))


def parse_rewrites(text: str) -> list[str]:
    """The ``en: …`` / ``zh-TW: …`` lines of the reply; a reply of one untagged line is itself one."""
    tagged = [m.group(2) for m in map(_LINE.match, text.splitlines()) if m]
    if not tagged:
        rows = [row.strip() for row in text.splitlines() if row.strip()]
        tagged = rows if len(rows) == 1 else []
    unique = dict.fromkeys(r.strip().strip("\"'「」") for r in tagged if r.strip())
    return [r[:MAX_REWRITE_CHARS] for r in unique if r]


def fuse(lists: Sequence[Sequence[Hit]], top_k: int) -> list[Hit]:
    """Each chunk once, with its best score over the searches, best first; ties go to the chunk
    more searches ranked higher (reciprocal rank). Every search runs on the same retriever,
    whose fused score says how well a chunk matches on one scale: the standalone rewrite's
    strong match must not be outvoted by a bare follow-up's weak ones, as plain rank fusion would."""
    rrf: dict[str, float] = {}
    best: dict[str, Hit] = {}
    for hits in lists:
        for rank, hit in enumerate(hits, 1):
            key = hit.chunk.id
            rrf[key] = rrf.get(key, 0.0) + 1.0 / (RRF_K + rank)
            if key not in best or hit.score > best[key].score:
                best[key] = hit
    order = sorted(rrf, key=lambda key: (-best[key].score, -rrf[key]))
    return [best[key] for key in order[:top_k]]


def _same(text: str) -> str:
    return " ".join(text.casefold().split())
