"""EmbeddingService: POST /v1/embeddings with the hub's auth, limits, usage and privacy rules.

Clients that embed with the same hub key as they chat name a model the way they would at
OpenAI: a logical model (or its upstream name) that an OpenAI-compatible server embeds
with, the upstream name of ``EMBEDDINGS=openai:<model>``, or ``hash`` (the hub's own offline
embedder). Text with personal data is never sent to a cloud model: the request is refused
with a 400 naming the rule, rather than embedded elsewhere — vectors of another model live
in another space, and a client's index silently mixing two would be worse than an error.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import orjson

from core.accounting import Accounting
from core.auth.principal import Principal
from core.config import Settings
from core.errors import BadRequest, Forbidden, InvalidType, NotFound
from core.kb.embedders import HashEmbedder
from core.llm.forwarder import Forwarded, Forwarder
from core.llm.gateway import ModelGateway
from core.llm.routing import ModelSpec, Route
from core.llm.tokens import UnknownToken, count_tokens, decode_tokens
from core.pii import scan_json
from core.schema import RelayedReply, json_object

HASH_MODEL = "hash"  # the offline embedder: local, deterministic, 512 dimensions
MAX_INPUTS = 2048  # OpenAI's own limit per request
FORMATS = ("float", "base64")


@dataclass(frozen=True, slots=True)
class EmbeddingRequest:
    body: dict[str, Any]
    model: str
    inputs: list[str]  # the text of each input (token arrays decoded by ``EmbeddingService``)
    encoding_format: str
    tokens: list[list[int]] | None = None  # the inputs as sent, when they were token arrays


def parse(raw: bytes) -> EmbeddingRequest:
    """What OpenAI takes: a string, a list of strings, a token array (a list of integers) or a
    list of token arrays; 1 to 2,048 inputs."""
    body = json_object(raw)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("model: name the embedding model")
    value = body.get("input")
    if isinstance(value, str) or (isinstance(value, list) and value and _is_tokens(value)):
        value = [value]
    if not isinstance(value, list) or not value:
        raise BadRequest("input: a string, a list of strings, or token arrays (lists of integers)")
    if len(value) > MAX_INPUTS:
        raise BadRequest(f"input: at most {MAX_INPUTS} inputs per request (got {len(value)})")
    encoding = body.get("encoding_format", "float")
    if encoding not in FORMATS:
        raise BadRequest("encoding_format: 'float' or 'base64'")
    if all(isinstance(text, str) for text in value):
        if not all(text.strip() for text in value):
            raise BadRequest(f"input: 1 to {MAX_INPUTS} non-empty strings")
        return EmbeddingRequest(body, model, value, encoding)
    if all(isinstance(array, list) and array and _is_tokens(array) for array in value):
        return EmbeddingRequest(body, model, [], encoding, tokens=value)
    raise InvalidType("input: every input a non-empty string, or every input a non-empty list of integer token ids")


def _is_tokens(value: list[Any]) -> bool:
    return all(isinstance(t, int) and not isinstance(t, bool) for t in value)


class EmbeddingService:
    def __init__(self, *, models: ModelGateway, accounting: Accounting) -> None:
        self._models = models
        self._accounting = accounting
        self._forwarder = Forwarder()
        self._hash = HashEmbedder()

    def use(self, settings: Settings) -> None:
        self._settings = settings
        self._allowed = {c.name: c.models for c in settings.clients if c.models is not None}
        self._index_model: ModelSpec | None = None
        if settings.embeddings.startswith("openai:"):  # the index's own embedder, on OPENAI_BASE_URL
            upstream = settings.embeddings.removeprefix("openai:")
            key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
            self._index_model = ModelSpec(upstream, "openai", upstream, settings.openai_base_url, key,
                                          settings.llm.timeout_sec, False, 64)  # fmt: skip

    def _model(self, requested: str, principal: Principal) -> ModelSpec | None:
        """The model that embeds for ``requested`` (None: the offline hash embedder)."""
        name = self._models.resolve(requested)
        spec = self._models.spec(name)
        if spec is None and self._index_model is not None and name == self._index_model.name:
            spec = self._index_model
        if spec is None and name != HASH_MODEL:
            raise NotFound(f"the model '{requested}' does not exist; GET /v1/models lists the hub's models")
        allowed = self._allowed.get(principal.client)
        if allowed is not None and name not in allowed:
            raise Forbidden(f"this client may not use the model '{requested}'")
        if spec is not None and spec.provider != "openai":
            raise BadRequest(f"the model '{requested}' does not embed; use an embedding model or '{HASH_MODEL}'")
        return spec

    async def _as_text(self, request: EmbeddingRequest) -> EmbeddingRequest:
        """Token arrays decoded: the personal-data check reads the text, and every embedder gets
        it (an upstream that is not OpenAI's has another tokenizer; OpenAI's re-encodes the same)."""
        if request.tokens is None:
            return request
        try:
            texts = await decode_tokens(request.tokens)
        except UnknownToken as exc:
            raise BadRequest(f"input: {exc}") from None
        return replace(request, body={**request.body, "input": texts}, inputs=texts, tokens=None)

    async def create(self, request: EmbeddingRequest, principal: Principal) -> RelayedReply:
        admission = await self._accounting.admit(principal, "/v1/embeddings")
        spec = self._model(request.model, principal)
        request = await self._as_text(request)
        pii = await scan_json(request.body)
        if pii and spec is not None and not spec.local:
            raise BadRequest(
                f"input holds personal data, which never goes to the cloud model '{request.model}'; "
                f"embed it with a local model ('{HASH_MODEL}' or one marked local) or remove it"
            )
        if spec is None:
            body, model, prompt = await self._embed_offline(request)
        else:

            async def attempt(target: ModelSpec) -> Forwarded:
                return await self._forwarder.embed(target, {**request.body, "model": target.upstream})

            reply = await self._models.call(Route(spec.name, (spec,), pii), attempt, "embeddings")
            body, model = reply.body, str(reply.data.get("model") or spec.upstream)
            usage = reply.data.get("usage")
            prompt = usage.get("prompt_tokens") if isinstance(usage, dict) else None
            if not isinstance(prompt, int):
                prompt = await count_tokens("\n".join(request.inputs))
        self._accounting.record(tenant=principal.tenant, client=principal.client, model=model, prompt=prompt,
                                completion=0, cached=False, forwarded=True)  # fmt: skip
        await self._accounting.charge_tokens(principal.tenant, prompt)
        return RelayedReply(body, admission)

    async def _embed_offline(self, request: EmbeddingRequest) -> tuple[bytes, str, int]:
        vectors = await asyncio.to_thread(self._hash.embed_sync, request.inputs)
        rows = [
            {"object": "embedding", "index": i, "embedding": _encode(vector, request.encoding_format)}
            for i, vector in enumerate(vectors)
        ]
        prompt = await count_tokens("\n".join(request.inputs))
        body = {"object": "list", "data": rows, "model": self._hash.name,
                "usage": {"prompt_tokens": prompt, "total_tokens": prompt}}  # fmt: skip
        return orjson.dumps(body), self._hash.name, prompt

    async def aclose(self) -> None:
        await self._forwarder.aclose()


def _encode(vector: np.ndarray, encoding: str) -> list[float] | str:
    if encoding == "base64":  # what the openai SDK asks for by default: little-endian float32
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return [float(x) for x in vector]
