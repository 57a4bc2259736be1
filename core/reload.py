"""Config changes without a restart: clients, tenants, JWT keys, limits, prices, cache,
models, routes and resilience.

The HUB_CONFIG file is watched (and SIGHUP re-reads it). A file that fails validation is
reported and ignored — the running configuration stays. Settings that shape the process
itself (port, Redis, the index folder, platform credentials) need a restart, and the log says which.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path

from core.config import ConfigError, Settings, load_settings
from core.llm.routing import Router
from core.metrics import CONFIG_RELOADS

log = logging.getLogger("askhub.config")
RELOADABLE = {"clients", "tenants", "jwt", "limits", "prices", "cache", "hub_api_keys", "models", "routes",
              "resilience", "rate_limit_max_per_user", "rate_limit_window_sec"}  # fmt: skip
POLL_SEC = 2.0


class ConfigWatcher:
    def __init__(self, current: Settings, apply: Callable[[Settings], None]) -> None:
        self._current = current
        self._apply = apply
        self._path = Path(os.environ["HUB_CONFIG"]) if os.environ.get("HUB_CONFIG") else None
        self._task: asyncio.Task[None] | None = None
        self._stamp = self._read_stamp()
        self._wake = asyncio.Event()

    def _read_stamp(self) -> tuple[float, int] | None:
        try:
            stat = self._path.stat() if self._path else None
        except OSError:
            return None
        return (stat.st_mtime, stat.st_size) if stat else None

    def start(self) -> None:
        if self._path is None:
            return
        self._task = asyncio.create_task(self._watch(), name="config-watch")
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            # Only the main thread may handle signals; in tests the loop runs elsewhere.
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._wake.set)

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _watch(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_SEC)
            forced = self._wake.is_set()
            self._wake.clear()
            stamp = await asyncio.to_thread(self._read_stamp)
            if forced or stamp != self._stamp:
                self._stamp = stamp
                await asyncio.to_thread(self.reload_now)

    def reload_now(self) -> bool:
        applied = self._reload()
        CONFIG_RELOADS.labels("applied" if applied else "refused").inc()
        return applied

    def _reload(self) -> bool:
        try:
            fresh = load_settings()
        except ConfigError as exc:
            log.error("config change ignored: %s", exc)
            return False
        if self._current.auth_enabled and not fresh.auth_enabled:
            log.error("config change ignored: it removes every client, which would switch authentication off")
            return False
        needs_restart = sorted(
            name
            for name in Settings.model_fields
            if name not in RELOADABLE and getattr(fresh, name) != getattr(self._current, name)
        )
        if needs_restart:
            log.warning("config change needs a restart to apply: %s", ", ".join(needs_restart))
        merged = self._current.model_copy(update={name: getattr(fresh, name) for name in RELOADABLE})
        try:
            Router(merged)  # routes must name existing models before anything is swapped
        except ConfigError as exc:
            log.error("config change ignored: %s", exc)
            return False
        self._current = merged
        self._apply(merged)
        log.info("config reloaded", extra={"clients": len(merged.clients), "tenants": len(merged.tenants)})
        return True
