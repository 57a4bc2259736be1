"""Server-sent events: the frames, and a comment keep-alive while the model is silent.

A proxy or a browser drops an idle connection (nginx after 60 s by default); a model that
thinks for long before its first word, or pauses mid-answer, must not cost the answer. A
comment line (``: keep-alive``) is ignored by every SSE client.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

import orjson
from starlette.responses import StreamingResponse

from core.schema import Admission

T = TypeVar("T")

KEEPALIVE_SEC = 15.0
KEEPALIVE = b": keep-alive\n\n"


def frame(event: str, data: object, *, event_id: str | None = None) -> bytes:
    """A named event; with ``event_id`` the client's Last-Event-ID resumes after it."""
    head = b"id: " + event_id.encode() + b"\n" if event_id else b""
    return head + b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def data_frame(data: object) -> bytes:
    """An unnamed event, as the OpenAI API streams them."""
    return b"data: " + orjson.dumps(data) + b"\n\n"


async def with_keepalive(chunks: AsyncIterator[bytes], every: float | None = None) -> AsyncIterator[bytes]:
    """``chunks`` as they come, and a keep-alive comment after every ``every`` seconds of silence."""
    every = KEEPALIVE_SEC if every is None else every
    source = aiter(chunks)
    pending: asyncio.Future[bytes] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(source))
            done, _ = await asyncio.wait({pending}, timeout=every)
            if not done:
                yield KEEPALIVE
                continue
            chunk, pending = pending, None
            try:
                yield chunk.result()
            except StopAsyncIteration:
                return
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pending
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            await aclose()


async def opened_stream(
    opening: Coroutine[Any, Any, tuple[Admission, T]],
    frames: Callable[[asyncio.Future[tuple[Admission, T]]], AsyncIterator[bytes]],
) -> StreamingResponse:
    """A refusal (limits, the model down) within the keep-alive period raises here, so the caller
    answers it as a JSON error; a model still silent then gets the stream opened (with the
    limits' headers when they are known), kept alive while it thinks."""
    opened = asyncio.ensure_future(opening)
    await asyncio.wait({opened}, timeout=KEEPALIVE_SEC)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    if opened.done():
        admission, _ = opened.result()
        headers.update(admission.headers())
    return StreamingResponse(with_keepalive(frames(opened)), media_type="text/event-stream", headers=headers)
