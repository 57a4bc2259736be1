"""Any OpenAI-compatible upstream (OpenAI, vLLM, Ollama, LiteLLM …) through the openai SDK.

The SDK's own retries are off: retry, backoff and failover are the core's policy, applied
the same way to every provider, and they must see each failure as it happens.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import openai

from core.llm.base import Completion, Prompt, ProviderError
from core.llm.forwarder import upstream_error
from core.llm.tokens import count_tokens

PING_TTL = 5.0
PING_TIMEOUT = 2.0


class OpenAIProvider:
    def __init__(self, *, model: str, api_key: str | None, base_url: str | None, timeout: float) -> None:
        self._model = model
        self._pinged_at = -PING_TTL
        self._ping_result: str | None = None
        self._client = openai.AsyncOpenAI(
            api_key=api_key or "not-needed",  # local servers (vLLM, Ollama) accept any key
            base_url=base_url,
            timeout=timeout,
            max_retries=0,
        )

    @property
    def model(self) -> str:
        return self._model

    async def complete(self, prompt: Prompt, *, temperature: float, max_tokens: int) -> Completion:
        try:
            response = await self._client.chat.completions.create(
                model=self._model,
                messages=[m.as_dict() for m in prompt.messages],  # type: ignore[misc]
                temperature=temperature,
                max_tokens=max_tokens,
            )
        except Exception as exc:
            raise _failure(exc) from exc
        choices = getattr(response, "choices", None)
        content = choices[0].message.content if choices else None
        if not isinstance(content, str) or not content.strip():
            raise ProviderError("bad_response", f"{self._model}: reply without an answer")
        usage = response.usage
        return Completion(
            text=content.strip(),
            model=response.model or self._model,
            prompt_tokens=usage.prompt_tokens if usage else await count_tokens(_prompt_text(prompt)),
            completion_tokens=usage.completion_tokens if usage else await count_tokens(content),
            finish_reason=choices[0].finish_reason,
        )

    async def stream(self, prompt: Prompt, *, temperature: float, max_tokens: int) -> AsyncIterator[str | Completion]:
        parts: list[str] = []
        usage: Any = None
        model = self._model
        finish_reason: str | None = None
        try:
            stream = await self._client.chat.completions.create(
                model=self._model,
                messages=[m.as_dict() for m in prompt.messages],  # type: ignore[misc]
                temperature=temperature,
                max_tokens=max_tokens,
                stream=True,
                stream_options={"include_usage": True},
            )
            async for chunk in stream:
                model = chunk.model or model
                if chunk.usage is not None:
                    usage = chunk.usage
                for choice in chunk.choices or ():
                    finish_reason = choice.finish_reason or finish_reason
                    delta = choice.delta.content if choice.delta else None
                    if delta:
                        parts.append(delta)
                        yield delta
        except ProviderError:
            raise
        except Exception as exc:
            raise _failure(exc) from exc
        text = "".join(parts)
        if not text.strip():
            raise ProviderError("bad_response", f"{self._model}: stream without an answer")
        yield Completion(
            text=text,
            model=model,
            prompt_tokens=usage.prompt_tokens if usage else await count_tokens(_prompt_text(prompt)),
            completion_tokens=usage.completion_tokens if usage else await count_tokens(text),
            finish_reason=finish_reason,
        )

    async def ping(self) -> str | None:
        """Lists models with a short timeout; the verdict is kept a few seconds so that a
        load balancer polling /readyz does not turn into load on the upstream."""
        now = time.monotonic()
        if now - self._pinged_at < PING_TTL:
            return self._ping_result
        try:
            await self._client.with_options(timeout=PING_TIMEOUT).models.list()
            result = None
        except Exception as exc:
            result = str(_failure(exc))
        self._pinged_at, self._ping_result = now, result
        return result

    async def aclose(self) -> None:
        await self._client.close()


def _prompt_text(prompt: Prompt) -> str:
    return "\n".join(m.content for m in prompt.messages)


def _failure(exc: Exception) -> ProviderError:
    """Sort an SDK exception into the failure kinds the retry policy understands."""
    if isinstance(exc, openai.APITimeoutError):
        return ProviderError("timeout", "upstream timed out")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        retry_after = _retry_after(exc.response.headers.get("retry-after"))
        body = exc.body if isinstance(exc.body, dict) and "error" in exc.body else {"error": exc.body}
        detail = upstream_error(body)
        if status == 429:
            return ProviderError("rate_limited", "upstream rate limit", status=status, retry_after=retry_after,
                                 upstream=detail)  # fmt: skip
        kind = "server" if status >= 500 else "client"
        return ProviderError(kind, f"upstream answered {status}", status=status, retry_after=retry_after,
                             upstream=detail)  # fmt: skip
    if isinstance(exc, openai.APIConnectionError):
        return ProviderError("connection", "upstream unreachable")
    if isinstance(exc, ValueError | TypeError | AttributeError | KeyError | IndexError):
        # The SDK lets a truncated or wrongly shaped body through as a decoding error.
        return ProviderError("bad_response", "upstream reply could not be read")
    return ProviderError("connection", f"upstream call failed ({type(exc).__name__})")


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
