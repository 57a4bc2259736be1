"""Platform identities -> tenants: which tenant a Slack workspace, a Discord guild or DM, or the
LINE account stands for (DESIGN.md, "Platform identities").

Without a map a platform's events go to its ``default_tenant`` (``default`` unless set), as
before. Once a map is set, an id it does not name goes to ``default_tenant`` only if that is set
explicitly, and a Discord DM to ``discord.dm_tenant`` only if that is set. ``None`` means the
event is unplaced: the adapter acknowledges it, does not answer it, and calls ``unplaced``.
"""

from __future__ import annotations

import logging
import threading

from core.config import DiscordSettings, Settings, SlackSettings
from core.metrics import ADAPTER_EVENTS

log = logging.getLogger("askhub.walls")
DEFAULT_TENANT = "default"
DM = "dm"  # the id logged for an unplaced Discord direct message (the user's id is not logged)
_MAX_REMEMBERED = 10_000


def slack_tenant(section: SlackSettings, team: str) -> str | None:
    if team and team in section.tenants:
        return section.tenants[team]
    if not section.tenants:
        return section.default_tenant or DEFAULT_TENANT
    return section.default_tenant


def discord_tenant(section: DiscordSettings, guild_id: object | None) -> str | None:
    if guild_id is None or guild_id == "":
        if section.dm_tenant:
            return section.dm_tenant
        return None if section.tenants else (section.default_tenant or DEFAULT_TENANT)
    guild = str(guild_id)
    if guild in section.tenants:
        return section.tenants[guild]
    if not section.tenants:
        return section.default_tenant or DEFAULT_TENANT
    return section.default_tenant


def line_tenant(settings: Settings) -> str:
    return settings.line.tenant


def unplaced_gaps(settings: Settings) -> list[str]:
    """Each platform whose events some id would leave unplaced, said for an operator."""
    gaps = []
    if settings.slack.tenants and not settings.slack.default_tenant:
        gaps.append("slack: a workspace not in slack.tenants is not answered (slack.default_tenant is not set)")
    discord = settings.discord
    if discord.tenants and not discord.default_tenant:
        gaps.append("discord: a guild not in discord.tenants is not answered (discord.default_tenant is not set)")
    if discord.tenants and not discord.dm_tenant:
        gaps.append("discord: direct messages are not answered (discord.dm_tenant is not set)")
    return gaps


class _Unplaced:
    """Counts every unplaced event; logs each platform id once per process (with the id)."""

    def __init__(self) -> None:
        self._seen: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def __call__(self, platform: str, identity: str) -> None:
        ADAPTER_EVENTS.labels(platform, "unmapped").inc()
        mark = (platform, identity or "?")
        with self._lock:
            if mark in self._seen:
                return
            if len(self._seen) >= _MAX_REMEMBERED:
                self._seen.clear()
            self._seen.add(mark)
        log.warning(
            "event from an unmapped platform id: not answered (map it, or set the platform's default)",
            extra={"event": "unmapped", "platform": platform, "id": mark[1]},
        )

    def forget(self) -> None:
        """A hub starting (again, in tests): its ids are logged afresh."""
        with self._lock:
            self._seen.clear()


unplaced = _Unplaced()
