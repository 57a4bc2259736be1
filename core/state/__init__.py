"""Shared state backends: process memory by default, Redis when REDIS_URL is set."""

from __future__ import annotations

from core.state.base import BackendUnavailable, Decision, StateBackend
from core.state.memory import MemoryBackend

__all__ = ["BackendUnavailable", "Decision", "MemoryBackend", "StateBackend", "make_backend"]


def make_backend(redis_url: str | None) -> StateBackend:
    if not redis_url:
        return MemoryBackend()
    from core.state.redis_backend import RedisBackend

    return RedisBackend(redis_url)
