"""Shared state in Redis: every process of a deployment sees the same limits and data.

Limit decisions are Lua scripts that read the clock of the Redis server (TIME), so they
are exact across any number of processes and immune to clock skew between hosts. Any
connection failure surfaces as BackendUnavailable within the socket timeout; callers then
apply their documented policy — nothing silently falls back to per-process memory.
"""

from __future__ import annotations

import logging
import os
import time

import redis.asyncio as redis
from redis.exceptions import RedisError

from core.metrics import BACKEND_UP
from core.state.base import Admit, AdmitPlan, BackendUnavailable, Decision

PREFIX = "askhub:"
LOG_EVERY_SEC = 5.0
log = logging.getLogger("askhub.state")

# KEYS[1]: the counter. ARGV: amount, limit ('' for none), ttl in ms.
COUNTER = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local amount = tonumber(ARGV[1])
if ARGV[2] ~= '' and current + amount > tonumber(ARGV[2]) then
  return {0, tostring(current)}
end
local value = redis.call('INCRBYFLOAT', KEYS[1], amount)
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return {1, value}
"""


# The whole admission in one script (one round trip): the user's window, then the burst
# bucket, the tenant's token budget and request quota, stopping at the first refusal.
# The client-wide window (KEYS[5]) is checked first and counted last, only for an admitted request.
# KEYS: window, bucket, tokens, requests, client window ('' when unused).
# ARGV: limit, window ms, member, capacity, rate, budget, request limit, day ttl ms, client limit,
# client window ms.
ADMIT = """
local t = redis.call('TIME')
local now_ms = t[1] * 1000 + math.floor(t[2] / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
if KEYS[5] ~= '' then
  local cwindow = tonumber(ARGV[10])
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now_ms - cwindow)
  if redis.call('ZCARD', KEYS[5]) >= tonumber(ARGV[9]) then
    local oldest = redis.call('ZRANGE', KEYS[5], 0, 0, 'WITHSCORES')
    local wait = (tonumber(oldest[2]) + cwindow - now_ms) / 1000
    return {{1, limit, 0}, 'client_window', tonumber(ARGV[9]), tostring(wait)}
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms - window)
local count = redis.call('ZCARD', KEYS[1])
local allowed = 0
if count < limit then
  redis.call('ZADD', KEYS[1], now_ms, now_ms .. '-' .. ARGV[3])
  count = count + 1
  allowed = 1
end
redis.call('PEXPIRE', KEYS[1], window)
local reset = 0
if count >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  reset = tonumber(oldest[2]) + window - now_ms
end
local w = {allowed, limit - count, reset}
if allowed == 0 then return {w, 'user_window', 0, '0'} end
if KEYS[2] ~= '' then
  local capacity = tonumber(ARGV[4])
  local rate = tonumber(ARGV[5])
  local now = t[1] + t[2] / 1000000
  local state = redis.call('HMGET', KEYS[2], 'tokens', 'stamp')
  local tokens = tonumber(state[1]) or capacity
  local stamp = tonumber(state[2]) or now
  tokens = math.min(capacity, tokens + (now - stamp) * rate)
  local ok = tokens >= 1
  if ok then tokens = tokens - 1 end
  redis.call('HSET', KEYS[2], 'tokens', tostring(tokens), 'stamp', tostring(now))
  redis.call('PEXPIRE', KEYS[2], math.ceil((capacity / rate + 1) * 1000))
  if not ok then return {w, 'burst', capacity, tostring((1 - tokens) / rate)} end
end
if KEYS[3] ~= '' then
  local used = tonumber(redis.call('GET', KEYS[3]) or '0')
  if used >= tonumber(ARGV[6]) then return {w, 'tenant_tokens', tonumber(ARGV[6]), '0'} end
end
if KEYS[4] ~= '' then
  local n = tonumber(redis.call('GET', KEYS[4]) or '0')
  if n + 1 > tonumber(ARGV[7]) then return {w, 'tenant_requests', tonumber(ARGV[7]), '0'} end
  redis.call('INCRBYFLOAT', KEYS[4], 1)
  if redis.call('PTTL', KEYS[4]) < 0 then redis.call('PEXPIRE', KEYS[4], ARGV[8]) end
end
if KEYS[5] ~= '' then
  redis.call('ZADD', KEYS[5], now_ms, now_ms .. '-' .. ARGV[3])
  redis.call('PEXPIRE', KEYS[5], tonumber(ARGV[10]))
end
return {w, '', 0, '0'}
"""


class RedisBackend:
    name = "redis"

    def __init__(self, url: str, *, timeout: float = 2.0, connections: int = 64) -> None:
        # A bounded pool that waits for a free connection: a burst of requests shares a few
        # dozen connections instead of opening (and timing out on) one each. A Redis that is
        # down refuses connections at once; the timeouts only bound a Redis that hangs.
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=connections,
            timeout=2 * timeout,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=15,
        )
        self._client = redis.Redis(connection_pool=pool)
        self._logged_at = -LOG_EVERY_SEC
        self._admit = self._client.register_script(ADMIT)
        self._counter = self._client.register_script(COUNTER)

    async def _run(self, coro):  # type: ignore[no-untyped-def]
        try:
            result = await coro
        except (RedisError, OSError) as exc:
            BACKEND_UP.set(0)
            now = time.monotonic()
            if now - self._logged_at > LOG_EVERY_SEC:  # one line, not one per request, while it is down
                self._logged_at = now
                log.warning("redis unavailable: %s", type(exc).__name__, extra={"detail": str(exc)[:200]})
            raise BackendUnavailable(f"redis: {type(exc).__name__}") from None
        BACKEND_UP.set(1)
        return result

    async def ping(self) -> None:
        await self._run(self._client.ping())

    async def admit(self, plan: AdmitPlan) -> Admit:
        optional = (plan.bucket_key, plan.tokens_key, plan.requests_key, plan.client_key)
        keys = [PREFIX + plan.window_key] + [PREFIX + k if k else "" for k in optional]
        args = [
            plan.limit,
            int(plan.window_sec * 1000),
            os.urandom(6).hex(),
            plan.bucket_capacity,
            plan.bucket_rate,
            plan.tokens_budget,
            plan.requests_limit,
            int(plan.day_ttl_sec * 1000),
            plan.client_limit,
            int(plan.client_window_sec * 1000),
        ]
        (allowed, remaining, reset), refused_by, refusal_limit, wait = await self._run(
            self._admit(keys=keys, args=args)
        )
        window = Decision(bool(allowed), plan.limit, max(0, int(remaining)), max(0.0, int(reset) / 1000))
        if not refused_by:
            return Admit(window)
        name = refused_by.decode() if isinstance(refused_by, bytes) else str(refused_by)
        if name == "user_window":
            return Admit(window, name, window)
        return Admit(window, name, Decision(False, int(refusal_limit), 0, max(0.0, float(wait))))

    async def counter_take(self, key: str, amount: float, limit: float | None, ttl_sec: float) -> tuple[bool, float]:
        args = [amount, "" if limit is None else limit, int(ttl_sec * 1000)]
        added, value = await self._run(self._counter(keys=[PREFIX + key], args=args))
        return bool(added), float(value)

    async def counter_get(self, key: str) -> float:
        value = await self._run(self._client.get(PREFIX + key))
        return float(value) if value is not None else 0.0

    async def get(self, key: str) -> bytes | None:
        return await self._run(self._client.get(PREFIX + key))

    async def set(self, key: str, value: bytes, ttl_sec: float, *, only_if_absent: bool = False) -> bool:
        done = await self._run(self._client.set(PREFIX + key, value, px=int(ttl_sec * 1000), nx=only_if_absent))
        return bool(done)

    async def set_many(self, values: dict[str, bytes], ttl_sec: float) -> None:
        pipe = self._client.pipeline(transaction=False)
        for key, value in values.items():
            pipe.set(PREFIX + key, value, px=int(ttl_sec * 1000))
        await self._run(pipe.execute())

    async def delete(self, key: str) -> None:
        await self._run(self._client.delete(PREFIX + key))

    async def hash_incr(self, key: str, fields: dict[str, float], ttl_sec: float) -> None:
        pipe = self._client.pipeline(transaction=True)
        for field, amount in fields.items():
            pipe.hincrbyfloat(PREFIX + key, field, amount)
        pipe.pexpire(PREFIX + key, int(ttl_sec * 1000))
        await self._run(pipe.execute())

    async def hash_get_all(self, key: str) -> dict[str, float]:
        table = await self._run(self._client.hgetall(PREFIX + key))
        return {k.decode(): float(v) for k, v in table.items()}

    async def hash_get_many(self, keys: list[str]) -> list[dict[str, float]]:
        pipe = self._client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(PREFIX + key)
        tables = await self._run(pipe.execute())
        return [{k.decode(): float(v) for k, v in table.items()} for table in tables]

    async def hash_drop(self, key: str, fields: list[str]) -> None:
        if fields:
            await self._run(self._client.hdel(PREFIX + key, *fields))

    async def list_push(self, key: str, value: bytes, max_len: int, ttl_sec: float) -> None:
        await self.list_extend(key, [value], max_len, ttl_sec)

    async def list_extend(self, key: str, values: list[bytes], max_len: int, ttl_sec: float) -> None:
        pipe = self._client.pipeline(transaction=True)
        pipe.rpush(PREFIX + key, *values)
        pipe.ltrim(PREFIX + key, -max_len, -1)
        pipe.pexpire(PREFIX + key, int(ttl_sec * 1000))
        await self._run(pipe.execute())

    async def list_range(self, key: str, count: int) -> list[bytes]:
        if count <= 0:
            return []
        return list(await self._run(self._client.lrange(PREFIX + key, -count, -1)))

    async def table_set(self, key: str, field: str, value: bytes) -> None:
        await self._run(self._client.hset(PREFIX + key, field, value))

    async def table_all(self, key: str) -> dict[str, bytes]:
        table = await self._run(self._client.hgetall(PREFIX + key))
        return {k.decode(): v for k, v in table.items()}

    async def table_incr(self, key: str, field: str) -> int:
        return int(await self._run(self._client.hincrby(PREFIX + key, field, 1)))

    async def close(self) -> None:
        await self._client.aclose(close_connection_pool=True)
