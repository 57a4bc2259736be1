"""The one personal-data decision per question, obeyed by every path that sends its text out.

A question's verdict is made once — by ``ModelGateway.route`` for /ask and the chat platforms (the
question and the earlier turns of its conversation), by ChatService for /v1 (every value of the
body) — and carried on the Route (``route.pii``) to the chat models and the question rewrite. Code
that sends text out without seeing the route — the embeddings provider, called deep inside
retrieval for the question, its rewrites and the conversation's earlier question — reads the same
verdict here: ``decided(route.pii)`` holds it for the retrieval the question runs (a context
variable, so it follows the question into asyncio tasks and worker threads, and only that
question). A cloud embedder then does not embed (core/kb/embedders.py): the search runs without
its dense side, on BM25 alone.

Every ``decided`` block must contain no ``yield``: a generator's steps may run in different
contexts, and the verdict must be reset in the one it was set in.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_PERSONAL: ContextVar[bool] = ContextVar("askhub_personal_data", default=False)


@contextmanager
def decided(personal: bool) -> Iterator[None]:
    """Within the block, the question at hand holds personal data (or not)."""
    token = _PERSONAL.set(personal)
    try:
        yield
    finally:
        _PERSONAL.reset(token)


def personal() -> bool:
    """True while the question being answered holds personal data (see ``decided``)."""
    return _PERSONAL.get()
