"""The OpenAI-compatible passthrough: chat requests forwarded as bytes over aiohttp.

Measured on this machine kind (``make bench``), the openai SDK costs ~2 ms of CPU per
forwarded call and a raw aiohttp session ~0.3 ms: /v1/chat/completions is the gateway's hot
path, so it forwards the client's JSON, returns the upstream's bytes unchanged and reads
only what accounting needs (usage). Failures become the same ProviderError kinds the SDK
path produces, so retries, fallbacks and breakers treat both alike.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from core.llm.base import ProviderError
from core.llm.routing import ModelSpec
from core.tracing import active, model_reply


@dataclass(frozen=True, slots=True)
class Forwarded:
    body: bytes  # the upstream's response, as sent
    data: dict[str, Any]  # the same, parsed


class Forwarder:
    def __init__(self) -> None:
        self._sessions: dict[str, aiohttp.ClientSession] = {}

    def _session(self, base_url: str) -> aiohttp.ClientSession:
        session = self._sessions.get(base_url)
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=512, keepalive_timeout=30, ttl_dns_cache=300)
            session = aiohttp.ClientSession(connector=connector, json_serialize=lambda o: orjson.dumps(o).decode())
            self._sessions[base_url] = session
        return session

    @staticmethod
    def _target(spec: ModelSpec, path: str = "chat/completions") -> tuple[str, dict[str, str]]:
        base = (spec.base_url or "https://api.openai.com/v1").rstrip("/")
        headers = {"Content-Type": "application/json"}
        if spec.api_key:
            headers["Authorization"] = f"Bearer {spec.api_key}"
        return f"{base}/{path}", headers

    async def complete(self, spec: ModelSpec, body: dict[str, Any]) -> Forwarded:
        return await self._post(spec, "chat/completions", "choices", body)

    async def respond(self, spec: ModelSpec, body: dict[str, Any]) -> Forwarded:
        """POST /responses, for an upstream that has the Responses API (``responses: native``)."""
        return await self._post(spec, "responses", "output", body)

    async def embed(self, spec: ModelSpec, body: dict[str, Any]) -> Forwarded:
        """POST /embeddings, forwarded like a chat request (the reply's ``data`` must hold rows)."""
        return await self._post(spec, "embeddings", "data", body)

    async def _post(self, spec: ModelSpec, path: str, rows: str, body: dict[str, Any]) -> Forwarded:
        url, headers = self._target(spec, path)
        timeout = aiohttp.ClientTimeout(total=spec.timeout)
        try:
            async with self._session(url).post(url, data=orjson.dumps(body), headers=headers, timeout=timeout) as resp:
                raw = await resp.read()
                if resp.status >= 400:
                    raise _status_error(resp.status, resp.headers.get("Retry-After"), raw)
        except (TimeoutError, asyncio.TimeoutError):  # noqa: UP041 - aiohttp may raise either name
            raise ProviderError("timeout", f"{spec.name}: timed out") from None
        except aiohttp.ClientError as exc:
            raise ProviderError("connection", f"{spec.name}: {type(exc).__name__}") from None
        try:
            data = orjson.loads(raw)
            if not data[rows]:
                raise ValueError(f"no {rows}")
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise ProviderError("bad_response", f"{spec.name}: unreadable reply") from None
        if active():
            _traced(data)
        return Forwarded(raw, data)

    async def stream(
        self, spec: ModelSpec, body: dict[str, Any], path: str = "chat/completions"
    ) -> AsyncIterator[bytes]:
        """The upstream's server-sent-event lines (``data: ...``), as they arrive. Chat
        completions end with ``[DONE]``, a Responses stream (``path="responses"``) with its
        terminal event."""
        url, headers = self._target(spec, path)
        responses = path == "responses"
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=spec.timeout, sock_read=spec.timeout)
        try:
            async with self._session(url).post(url, data=orjson.dumps(body), headers=headers, timeout=timeout) as resp:
                if resp.status >= 400:
                    raise _status_error(resp.status, resp.headers.get("Retry-After"), await resp.read())
                done = False
                async for line in resp.content:
                    line = line.strip()
                    if not line.startswith(b"data:"):
                        continue
                    done = _RESPONSES_END.search(line) is not None if responses else line == b"data: [DONE]"
                    yield line
                if not done:
                    raise ProviderError("connection", f"{spec.name}: stream ended without [DONE]")
        except (TimeoutError, asyncio.TimeoutError):  # noqa: UP041
            raise ProviderError("timeout", f"{spec.name}: timed out") from None
        except aiohttp.ClientError as exc:
            raise ProviderError("connection", f"{spec.name}: {type(exc).__name__}") from None

    async def aclose(self) -> None:
        for session in self._sessions.values():
            await session.close()


_RESPONSES_END = re.compile(rb'"type":\s*"response\.(?:completed|incomplete|failed)"')


def _traced(data: dict[str, Any]) -> None:
    """The upstream's reply on the model call's span: model, usage (chat-completions or
    Responses names), finish reasons."""
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    choices = data.get("choices") if isinstance(data.get("choices"), list) else []
    finish = [str(c["finish_reason"]) for c in choices if isinstance(c, dict) and c.get("finish_reason")]
    model = data.get("model")
    names = ("prompt_tokens", "completion_tokens") if "prompt_tokens" in usage else ("input_tokens", "output_tokens")
    tokens = [usage.get(n) if isinstance(usage.get(n), int) else None for n in names]
    model_reply(model if isinstance(model, str) else None, tokens[0], tokens[1], finish)


def upstream_error(body: Any) -> dict[str, Any] | None:
    """The ``error`` object of an upstream's OpenAI-shaped error body (string fields only)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None
    return {k: error[k] for k in ("message", "type", "param", "code") if isinstance(error.get(k), str)}


def _status_error(status: int, retry_after: str | None, raw: bytes = b"") -> ProviderError:
    try:
        detail = upstream_error(orjson.loads(raw)) if raw else None
    except orjson.JSONDecodeError:
        detail = None
    wait = None
    if retry_after:
        try:
            wait = max(0.0, float(retry_after))
        except ValueError:
            wait = None
    if status == 429:
        return ProviderError("rate_limited", "upstream rate limit", status=status, retry_after=wait, upstream=detail)
    kind = "server" if status >= 500 else "client"
    return ProviderError(kind, f"upstream answered {status}", status=status, retry_after=wait, upstream=detail)
