"""What every door and tenant may read, for operators: the start-up warnings and ``python -m core check``.

Built from the settings alone (no index, no state), so it runs before anything heavy loads and
says the same thing the request path will do: ``CollectionPolicy`` decides what a tenant reads,
``core.auth.platforms`` which tenant a platform's event is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from core.auth.collections import CollectionPolicy
from core.auth.platforms import DEFAULT_TENANT, discord_tenant, slack_tenant, unplaced, unplaced_gaps
from core.config import Settings

log = logging.getLogger("askhub.walls")


@dataclass
class Door:
    """One way in: who comes through it, as which tenant (None: not answered), reading what."""

    name: str
    tenant: str | None
    reads: frozenset[str] = field(default_factory=frozenset)


def _platforms(settings: Settings) -> tuple[bool, bool, bool]:
    slack = settings.slack_bot_token is not None or bool(settings.slack.tenants)
    line = settings.line_channel_secret is not None
    discord = bool(settings.discord_bot_token or settings.discord_public_key or settings.discord.tenants)
    return slack, line, discord


def doors(settings: Settings) -> list[Door]:
    """Every configured door with its tenant and collections (an unplaced door reads nothing)."""
    policy = CollectionPolicy(settings)
    found: list[Door] = []

    def add(name: str, tenant: str | None, client: str | None = None) -> None:
        reads = policy.readable(tenant, client) if tenant is not None else frozenset()
        found.append(Door(name, tenant, reads))

    if not settings.auth_enabled:
        add("local demo mode (the portal without a key)", DEFAULT_TENANT)
    for entry in settings.hub_api_keys:
        name, tenant, _ = (part.strip() for part in entry.split(":"))
        add(f"key of client {name} (HUB_API_KEYS)", tenant, name)
    for client in settings.clients:
        add(f"client {client.name}", client.tenant, client.name)
    if settings.jwt is not None:
        jwt = settings.jwt
        add(f"JWT without a '{jwt.tenant_claim}' claim (client {jwt.client})", jwt.default_tenant, jwt.client)
    slack, line, discord = _platforms(settings)
    if slack:
        for team, tenant in sorted(settings.slack.tenants.items()):
            add(f"slack workspace {team}", tenant, "slack")
        other = "any slack workspace" if not settings.slack.tenants else "any other slack workspace"
        add(other, slack_tenant(settings.slack, ""), "slack")  # "" is never a mapped id
    if discord:
        d = settings.discord
        for guild, tenant in sorted(d.tenants.items()):
            add(f"discord guild {guild}", tenant, "discord")
        other = "any discord guild" if not d.tenants else "any other discord guild"
        add(other, discord_tenant(d, "-"), "discord")  # "-" is never a guild id
        add("discord direct messages", discord_tenant(d, None), "discord")
    if line:
        add("line account", settings.line.tenant, "line")
    return found


def tenants(settings: Settings) -> dict[str, frozenset[str]]:
    """Every tenant the settings name or a door reaches, with what it reads."""
    policy = CollectionPolicy(settings)
    names = set(settings.tenants) | {d.tenant for d in doors(settings) if d.tenant is not None}
    return {name: policy.of_tenant(name) for name in sorted(names)}


def reading_nothing(settings: Settings) -> list[str]:
    """Tenants that read no collection (only when ``collections`` is configured: the wall is closed)."""
    if not settings.collections:
        return []
    return [name for name, reads in tenants(settings).items() if not reads]


def log_startup(settings: Settings) -> None:
    """Name each tenant that reads nothing and each platform whose events would be unplaced, once."""
    unplaced.forget()
    for tenant in reading_nothing(settings):
        log.warning(
            'tenant reads no collection: its askers get "I don\'t know" (name its collections under tenants:)',
            extra={"event": "tenant_reads_nothing", "tenant": tenant},
        )
    for gap in unplaced_gaps(settings):
        platform = gap.split(":", 1)[0]
        log.warning("platform events would be unplaced: %s", gap, extra={"event": "unplaced_platform",
                                                                        "platform": platform})  # fmt: skip


def report(settings: Settings) -> str:
    """The operator's view (``python -m core check``): collections, tenants, doors, gaps."""
    dirs = settings.collection_dirs()
    lines = ["Collections:"]
    lines += [f"  {name}: {path}" for name, path in sorted(dirs.items())]
    if not settings.collections:
        lines.append("  (no collections section: all of KB_DIR is 'default', read by every tenant)")
    lines += ["", "Tenants:"]
    for name, reads in tenants(settings).items():
        lines.append(f"  {name}: {_names(reads)}")
    lines += ["", "Doors:"]
    for door in doors(settings):
        if door.tenant is None:
            lines.append(f"  {door.name}: NOT ANSWERED (no tenant places it)")
        else:
            lines.append(f"  {door.name} -> tenant {door.tenant}: {_names(door.reads)}")
    warnings = [f"tenant {t} reads nothing" for t in reading_nothing(settings)] + unplaced_gaps(settings)
    lines += ["", "Warnings:" if warnings else "Warnings: none"]
    lines += [f"  {w}" for w in warnings]
    return "\n".join(lines)


def _names(reads: frozenset[str]) -> str:
    return ", ".join(sorted(reads)) if reads else "nothing"
