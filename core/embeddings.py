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
from dataclasses import dataclass
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
from core.llm.tokens import count_tokens
from core.pii import scan_json
from core.schema import RelayedReply, json_object

HASH_MODEL = "hash"  # the offline embedder: local, deterministic, 512 dimensions
MAX_INPUTS = 2048  # OpenAI's own limit per request
FORMATS = ("float", "base64")


@dataclass(frozen=True, slots=True)
class EmbeddingRequest:
    body: dict[str, Any]
    model: str
    inputs: list[str]
    encoding_format: str


def parse(raw: bytes) -> EmbeddingRequest:
    body = json_object(raw)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("model: name the embedding model")
    value = body.get("input")
    inputs = [value] if isinstance(value, str) else value
    if not isinstance(inputs, list) or not inputs:
        raise BadRequest("input: a string or a non-empty list of strings")
    if not all(isinstance(text, str) for text in inputs):
        # Token arrays cannot be checked for personal data: the hub takes text only.
        raise InvalidType("input: send text (strings); token arrays are not accepted by this hub")
    if len(inputs) > MAX_INPUTS or not all(text.strip() for text in inputs):
        raise BadRequest(f"input: 1 to {MAX_INPUTS} non-empty strings")
    encoding = body.get("encoding_format", "float")
    if encoding not in FORMATS:
        raise BadRequest("encoding_format: 'float' or 'base64'")
    return EmbeddingRequest(body, model, inputs, encoding)


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

    async def create(self, request: EmbeddingRequest, principal: Principal) -> RelayedReply:
        admission = await self._accounting.admit(principal, "/v1/embeddings")
        spec = self._model(request.model, principal)
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
