"""Settings: environment variables (the contract) over an optional YAML file.

Everything is validated once at start-up; a bad value stops the process with a single
line naming the setting, so an operator never has to read a traceback to fix a typo.
"""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from core.errors import ConfigError  # a leaf, shared with core.secrets (no import cycle); re-exported here


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RewriteSettings(_Section):
    """The question rewrite, with a model configured: one short call that makes a follow-up
    standalone and puts the question into the knowledge base's other language(s)."""

    enabled: bool = True
    # The plain search is trusted, and no call made, when a retrieved chunk holds at least
    # this share of the question's words (BM25's share, the same scale for every embedder); a
    # follow-up is always rewritten. bench/rewrite.py measures the trade-off.
    skip_above: float = Field(0.4, ge=0.0, le=1.0)
    timeout_sec: float = Field(3.0, gt=0, le=30)
    model: str | None = None  # a logical model; default: the first model of the question's route
    max_tokens: int = Field(200, ge=16, le=2000)


class RetrievalSettings(_Section):
    top_k: int = Field(4, ge=1, le=20)
    # A chunk below this fused score is not evidence: the hub says it does not know.
    min_score: float = Field(0.06, ge=0.0, le=1.0)
    # Weight of the lexical (BM25) score in a fixed fused score; the rest is the dense score.
    # Unset: hash 0.8; a semantic model uses the learned ranker (core/kb/learned.json).
    lexical_weight: float | None = Field(None, ge=0.0, le=1.0)
    # A semantic model's "I don't know" floor: a question whose best cosine similarity (plus a
    # tenth of its BM25 share) is below it matches nothing. Unset: the learned abstention model.
    min_similarity: float | None = Field(None, ge=0.0, le=1.0)
    # Above this many chunks the dense index is approximate (IVF, 8-bit codes) instead of exact.
    exact_max_chunks: int = Field(5000, ge=1)
    chunk_chars: int = Field(600, ge=100, le=8000)
    # How often the server looks for a newer index version (seconds).
    reload_interval_sec: float = Field(2.0, gt=0)
    rewrite: RewriteSettings = RewriteSettings()


class RequestLimits(_Section):
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    # /v1 chat bodies (/v1/chat/completions, /v1/responses) carry whole conversations: a larger cap.
    chat_max_body_bytes: int = Field(1024 * 1024, ge=1024)
    # /v1/embeddings takes what OpenAI takes: 2,048 inputs, bodies up to 8 MB.
    embeddings_max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    # Platform webhooks carry batches of events (LINE) and rich payloads: a larger cap.
    webhook_max_body_bytes: int = Field(1024 * 1024, ge=1024)
    max_question_chars: int = Field(2000, ge=10)
    # Open GET /conversations/{id}/events streams per asker (a key; a JWT's user) and process: then 429.
    max_streams_per_asker: int = Field(10, ge=1)


class LLMSettings(_Section):
    timeout_sec: float = Field(30.0, gt=0)
    max_tokens: int = Field(700, ge=16)
    temperature: float = Field(0.2, ge=0.0, le=2.0)


Scope = Literal["ask", "chat", "admin"]


class RateLimitOverride(_Section):
    max_per_user: int = Field(ge=1)
    window_sec: float = Field(gt=0)


class ClientRateLimit(_Section):
    """Every request of one client together, whichever end users it names."""

    max_requests: int = Field(ge=1)
    window_sec: float = Field(gt=0)


class BurstSettings(_Section):
    """A token bucket on top of the sliding window: short bursts, then a steady rate."""

    capacity: int = Field(ge=1)
    refill_per_sec: float = Field(gt=0)


class KeyDigest(_Section):
    """One client key, as its SHA-256 digest; ``expires`` (a UTC date) is its last valid day."""

    sha256: str = Field(validation_alias=AliasChoices("sha256", "digest"))
    expires: date | None = None

    @field_validator("sha256")
    @classmethod
    def _hex(cls, value: str) -> str:
        if len(value) != 64 or any(c not in "0123456789abcdef" for c in value.lower()):
            raise ValueError("each entry must be a SHA-256 hex digest (64 hex characters)")
        return value.lower()


class ClientSettings(_Section):
    """A front end (portal, Slack, an internal service) and the tenant it belongs to."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    tenant: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    scopes: list[Scope] = ["ask", "chat"]
    # Each entry is a digest, or {sha256: <digest>, expires: YYYY-MM-DD} for a key that ends.
    key_sha256: list[KeyDigest] = []
    models: list[str] | None = None  # logical models it may name on /v1 (None: all)
    collections: list[str] | None = None  # narrows its tenant's collections (None: the tenant's)
    rate_limit: RateLimitOverride | None = None  # per user: on /v1, per end user the request's `user` names
    client_rate_limit: ClientRateLimit | None = None  # the whole client, all its users together
    burst: BurstSettings | None = None
    # Allowed through when the shared backend is down and limits fail closed.
    exempt_when_backend_down: bool = False

    @field_validator("key_sha256", mode="before")
    @classmethod
    def _plain_digests(cls, value: Any) -> Any:
        return [{"sha256": d} if isinstance(d, str) else d for d in value] if isinstance(value, list) else value


_NAME = r"^[A-Za-z0-9_.-]+$"
DEFAULT_COLLECTION = "default"


class CollectionSettings(_Section):
    """A named part of the knowledge base: a folder, relative to KB_DIR or absolute."""

    path: Path


class TenantSettings(_Section):
    """A department: its daily quotas (off unless set), limit overrides and readable collections."""

    requests_per_day: int | None = Field(None, ge=1)
    tokens_per_day: int | None = Field(None, ge=1)
    rate_limit: RateLimitOverride | None = None
    burst: BurstSettings | None = None
    collections: list[str] | None = None  # None: every collection


class JWTKey(_Section):
    kid: str = Field(min_length=1)
    algorithm: Literal["RS256", "RS384", "RS512", "ES256", "ES384", "EdDSA", "HS256", "HS384", "HS512"]
    public_key: str | None = None  # PEM, for asymmetric algorithms
    secret_env: str | None = None  # name of the environment variable holding an HMAC secret

    @field_validator("public_key")
    @classmethod
    def _pem(cls, value: str | None) -> str | None:
        if value is not None and "BEGIN" not in value:
            raise ValueError("must be a PEM public key")
        return value


class JWTSettings(_Section):
    issuer: str
    audience: str
    keys: list[JWTKey] = Field(min_length=1)
    leeway_sec: float = Field(30.0, ge=0, le=300)
    tenant_claim: str = "tenant"
    default_tenant: str = "default"
    client: str = "jwt"  # the client name that JWT users count under
    # A claim (a list of names) that narrows the tenant's collections further for this token.
    collections_claim: str | None = None


class LimitSettings(_Section):
    # What limits do when the shared backend (Redis) is unreachable: "closed" rejects with
    # 503 (exempt clients excepted), "open" lets requests through unlimited. Never a
    # silent switch to per-process counting, which would multiply limits by replicas.
    backend_down: Literal["closed", "open"] = "closed"
    quota_timezone: str = "UTC"


class SemanticCacheSettings(_Section):
    enabled: bool = False
    threshold: float = Field(0.97, gt=0.5, le=1.0)
    max_entries: int = Field(500, ge=1, le=10000)


class CacheSettings(_Section):
    enabled: bool = True
    ttl_sec: float = Field(3600.0, gt=0)
    semantic: SemanticCacheSettings = SemanticCacheSettings()


class VerifiedSettings(_Section):
    # How similar (cosine) a question must be to a verified one to get its answer; unset: what
    # was measured for the embedder (core/verified/matcher.py). Exact matches always count.
    threshold: float | None = Field(None, gt=0.5, le=1.0)
    # Without Redis, verified answers are kept in this file (default: INDEX_DIR-verified.json).
    file: Path | None = None


class Price(_Section):
    input_per_1m: float = Field(ge=0)  # US dollars per million prompt tokens
    output_per_1m: float = Field(ge=0)


class ModelSettings(_Section):
    """A logical model: what front ends and routes name, mapped to a real upstream."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    provider: Literal["openai", "extractive"] = "openai"
    model: str | None = None  # the upstream's model name (default: the logical name)
    base_url: str | None = None  # default OPENAI_BASE_URL
    api_key_env: str | None = "OPENAI_API_KEY"  # the variable holding the key (keys never sit in YAML)
    timeout_sec: float = Field(30.0, gt=0)
    local: bool = False  # runs inside the company: may see personal data
    max_concurrency: int = Field(64, ge=1)  # requests in flight to this model from one process
    # POST /v1/responses: "translate" to this upstream's chat completions, or "native" to pass the
    # request to its own /responses (OpenAI itself, or a server that has the Responses API).
    responses: Literal["translate", "native"] = "translate"

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value


class RouteMatch(_Section):
    """All given conditions must hold; an empty match always holds."""

    pii: bool | None = None
    min_chars: int | None = Field(None, ge=1)
    max_chars: int | None = Field(None, ge=1)
    keywords: list[str] = []  # any of them, case-insensitive
    pattern: str | None = None  # a regular expression searched in the question
    tenants: list[str] = []
    platforms: list[str] = []

    @field_validator("pattern")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            import re

            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression ({exc})") from None
        return value


class RouteSettings(_Section):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    when: RouteMatch = RouteMatch()
    models: list[str] = Field(min_length=1)  # the fallback chain, in order


class BreakerSettings(_Section):
    window_sec: float = Field(60.0, gt=0)
    min_calls: int = Field(20, ge=1)  # rate and latency rules need this many calls in the window
    p95_latency_sec: float = Field(3.0, gt=0)
    error_rate: float = Field(0.02, gt=0, le=1)
    consecutive_failures: int = Field(5, ge=1)
    open_sec: float = Field(30.0, gt=0)  # then half-open: one probe decides


class ResilienceSettings(_Section):
    retries: int = Field(2, ge=0, le=10)  # per model, after the first attempt
    backoff_base_sec: float = Field(0.2, ge=0)
    backoff_max_sec: float = Field(2.0, ge=0)
    budget_sec: float = Field(20.0, gt=0)  # all attempts of a request, every model included
    # How long an HTTP caller (/ask, /v1) waits for a busy model before a 503; answers to
    # already-acknowledged chat events wait up to the whole budget instead.
    max_wait_sec: float = Field(5.0, gt=0)
    # How long an acknowledged chat event may wait for a model to come back (the user sees
    # "thinking" meanwhile), then: a polite apology.
    patient_sec: float = Field(120.0, gt=0)
    breaker: BreakerSettings = BreakerSettings()


class ConversationSettings(_Section):
    turns: int = Field(6, ge=0, le=50)  # earlier questions and answers kept per conversation
    ttl_sec: float = Field(3600.0, gt=0)


class ResponsesSettings(_Section):
    """POST /v1/responses: how long a response stays usable as ``previous_response_id``."""

    ttl_sec: float = Field(86400.0, gt=0)
    max_items: int = Field(200, ge=2, le=10000)  # the newest input and output items a conversation keeps


class QueueSettings(_Section):
    workers: int = Field(16, ge=1, le=512)  # jobs one process answers at a time
    reclaim_after_sec: float = Field(30.0, gt=0)  # a crashed worker's events go to another after this
    drain_sec: float = Field(10.0, ge=0)  # at shutdown, in-flight jobs get this long; the rest is handed back
    consume: bool = True  # False: with Redis, this process only accepts events (workers answer them)


class SlackSettings(_Section):
    tenants: dict[str, str] = {}  # workspace team_id -> tenant
    # Without a map: every workspace ("default" unless set). With one: unmapped workspaces, only if set.
    default_tenant: str | None = None


class LineSettings(_Section):
    tenant: str = "default"  # the official account's department (customer service, say)
    # In groups and rooms the bot answers only when mentioned or addressed with a prefix.
    group_prefixes: list[str] = ["@bot", "/ask"]
    reply_within_sec: float = Field(20.0, gt=0, le=55)  # after this, answer by push instead of reply


class DiscordSettings(_Section):
    tenants: dict[str, str] = {}  # guild id -> tenant
    # Without a map: every guild and DM ("default" unless set). With one: unmapped guilds, only if set.
    default_tenant: str | None = None
    dm_tenant: str | None = None  # direct messages (no guild); with a map they are answered only if set
    dev_guild_id: str | None = None  # register /ask in this guild only (instant, for development)
    # Request the privileged message-content intent (switch it on in the Developer Portal too): the
    # bot then reads messages that do not mention it, so a handed-off thread relays them all.
    message_content: bool = False


class TeamsSettings(_Section):
    """Microsoft Teams (adapters/teams): which hub tenant each Azure AD tenant asks as."""

    tenants: dict[str, str] = {}  # Azure AD tenant id (channelData.tenant.id) -> hub tenant
    default_tenant: str | None = None  # unmapped Azure AD tenants; None: refused (and logged), never "default"
    # Where the bot posts first in a channel (the agents' desk): Teams' global service URL. Replies
    # go to the service URL each activity brings.
    service_url: str = Field("https://smba.trafficmanager.net/teams/", pattern=r"^https?://")
    # A streamed answer (personal chats) is updated at most this often; Teams throttles faster streams.
    progress_interval_sec: float = Field(1.5, ge=1.0, le=10.0)


class WhatsAppSettings(_Section):
    tenant: str = "default"  # the business number's department (customer service, say)
    # Outside WhatsApp's 24-hour customer-service window only an approved template may be sent:
    # its name (approved in WhatsApp Manager) and language. Unset: the answer is not sent and logged.
    window_template: str | None = None
    template_language: str = "en_US"


class TelegramSettings(_Section):
    tenant: str = "default"
    progress_interval_sec: float = Field(1.5, ge=1.0, le=10.0)  # edits of a growing answer, per chat


DEFAULT_TRIGGERS = ["真人", "客服人員", "轉人工", "human", "agent", "talk to a person", "real person"]
# the customer doors that can hand a customer to a person
HANDOFF_DOORS = ("line", "discord", "portal", "whatsapp", "telegram", "teams")


class HandoffSettings(_Section):
    """Handing a customer to the company's agents in Slack (core/handoff). Needs SLACK_BOT_TOKEN
    (with ``desk: teams``: TEAMS_APP_ID and TEAMS_APP_PASSWORD)."""

    desk: Literal["slack", "teams"] = "slack"  # where the agents work
    slack_channel: str | None = Field(None, min_length=1)  # the agents' channel id (C0AGENTS), desk: slack
    teams_channel: str | None = Field(None, min_length=1)  # the agents' Teams channel id (19:…@thread.tacv2)
    triggers: list[str] = DEFAULT_TRIGGERS  # words in a customer's message that ask for a person
    idle_close_sec: float = Field(1800.0, gt=0)  # no message from either side this long: resolved
    on_second_no_answer: bool = False  # the bot's second "I don't know" in a row also hands off
    on_feedback: bool = False  # a 👎 whose comment asks for a person hands off
    personal_data: Literal["redacted", "raw"] = "redacted"  # what the agents' channel sees
    summary_max_tokens: int = Field(200, ge=16, le=2000)  # the LLM summary (with a model configured)
    turns_shown: int = Field(6, ge=1, le=50)  # the conversation so far, in the opening message
    doors: list[str] = list(HANDOFF_DOORS)  # the doors whose customers are handed off; the others: the bot
    tenants: list[str] | None = Field(None, min_length=1)  # only these tenants' customers (None: every tenant)
    # Who may Take, Resolve and "Save as verified answer": Slack user ids (U…/W…) and user groups (S…).
    # None: anyone in slack_channel.
    agents: list[Annotated[str, Field(pattern=r"^[UWS][A-Z0-9]{2,}$")]] | None = Field(None, min_length=1)

    @field_validator("doors")
    @classmethod
    def _known_doors(cls, doors: list[str]) -> list[str]:
        unknown = [door for door in doors if door not in HANDOFF_DOORS]
        if unknown:
            raise ValueError(f"unknown door {unknown[0]!r} (doors: {', '.join(HANDOFF_DOORS)})")
        return doors

    @model_validator(mode="after")
    def _desk_channel(self) -> HandoffSettings:
        if self.desk == "slack" and not self.slack_channel:
            raise ValueError("slack_channel is required (the agents' Slack channel id)")
        if self.desk == "teams" and not self.teams_channel:
            raise ValueError("teams_channel is required with desk: teams (the agents' Teams channel id)")
        return self

    @property
    def channel(self) -> str:
        """The desk's channel: the Slack channel or the Teams channel, as ``desk`` says."""
        channel = self.teams_channel if self.desk == "teams" else self.slack_channel
        assert channel is not None
        return channel


SOURCE_TYPES = ("folder", "web", "confluence", "notion", "google_drive", "sharepoint", "zendesk")
SYNCED_TYPES = ("folder", "web")  # the types this version can sync; the others are refused at start-up
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")


class SourceSettings(_Section):
    """Where a collection's knowledge lives, and how often it is read again (core/sources/)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$")  # letters, digits, - and _
    type: Literal["folder", "web", "confluence", "notion", "google_drive", "sharepoint", "zendesk"] = "folder"
    url: str | None = None  # web: a sitemap.xml, or a start page to crawl within its host
    path: Path | None = None  # folder: relative to KB_DIR or absolute
    collection: str = DEFAULT_COLLECTION  # a collection of `collections` ("default" without that section)
    every: float | None = None  # the schedule (15m, 1h, 90s); unset: synced only by command
    include: list[str] = []  # shell patterns on a page's URL path or a file's path; empty: everything
    exclude: list[str] = []
    max_pages: int = Field(1000, ge=1)  # web: pages read at most per sync

    @field_validator("every", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        if isinstance(value, str):
            match = _DURATION.match(value)
            if not match:
                raise ValueError("must be a duration such as 90s, 15m, 1h or 1d")
            return float(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
        return value

    @model_validator(mode="after")
    def _complete(self) -> SourceSettings:
        if self.type not in SYNCED_TYPES:
            raise ValueError(
                f"source type {self.type!r} cannot be synced by this version (available: {', '.join(SYNCED_TYPES)})"
            )
        if self.type == "web" and not (self.url and self.url.startswith(("http://", "https://"))):
            raise ValueError("a web source needs url: an http(s) sitemap.xml or start page")
        if self.type == "folder" and self.path is None:
            raise ValueError("a folder source needs path")
        if self.every is not None and self.every < 10:
            raise ValueError("every: at least 10s")
        return self


class Settings(_Section):
    port: int = Field(8000, ge=1, le=65535)
    host: str = "127.0.0.1"
    worker_port: int | None = Field(None, ge=1, le=65535)  # `core worker` serves /healthz, /readyz, /metrics here
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    chat_model: str = "gpt-4o-mini"
    large_model: str = "gpt-4o"
    local_llm_base_url: str | None = None
    local_llm_model: str | None = None
    embeddings: str = "e5"
    kb_dir: Path = Path("data/kb")
    index_dir: Path = Path("var/index")
    hub_api_keys: list[str] = []
    rate_limit_max_per_user: int = Field(10, ge=1)
    rate_limit_window_sec: float = Field(60.0, gt=0)
    redis_url: str | None = None
    hub_allowed_origins: list[str] = []
    hub_allowed_hosts: list[str] = []  # Host names the app answers (with PUBLIC_URL's); empty: any
    log_file: str | None = "gateway.log"
    log_format: Literal["json", "text"] = "json"
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    line_channel_secret: SecretStr | None = None
    line_channel_access_token: SecretStr | None = None
    line_api_url: str = "https://api.line.me"
    discord_bot_token: SecretStr | None = None
    discord_public_key: str | None = None
    discord_application_id: str | None = None
    discord_api_url: str = "https://discord.com/api/v10"
    discord_gateway_url: str | None = None  # tests and proxies; unset: the URL Discord gives
    whatsapp_access_token: SecretStr | None = None
    whatsapp_app_secret: SecretStr | None = None
    whatsapp_verify_token: SecretStr | None = None
    whatsapp_phone_number_id: str | None = None
    whatsapp_api_url: str = "https://graph.facebook.com/v21.0"
    telegram_bot_token: SecretStr | None = None
    telegram_secret_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org"
    teams_app_id: str | None = None  # the bot's Microsoft App ID (Azure Bot resource)
    teams_app_password: SecretStr | None = None  # its client secret
    teams_openid_url: str = "https://login.botframework.com/v1/.well-known/openidconfiguration"
    teams_token_url: str = "https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token"
    public_url: str | None = None  # where users reach the portal, for links in chat answers

    collections: dict[str, CollectionSettings] = {}
    clients: list[ClientSettings] = []
    tenants: dict[str, TenantSettings] = {}
    jwt: JWTSettings | None = None
    limits: LimitSettings = LimitSettings()
    cache: CacheSettings = CacheSettings()
    verified: VerifiedSettings = VerifiedSettings()
    prices: dict[str, Price] = {}
    models: list[ModelSettings] = []
    routes: list[RouteSettings] = []
    resilience: ResilienceSettings = ResilienceSettings()
    conversation: ConversationSettings = ConversationSettings()
    responses: ResponsesSettings = ResponsesSettings()
    queue: QueueSettings = QueueSettings()
    slack: SlackSettings = SlackSettings()
    line: LineSettings = LineSettings()
    discord: DiscordSettings = DiscordSettings()
    whatsapp: WhatsAppSettings = WhatsAppSettings()
    telegram: TelegramSettings = TelegramSettings()
    teams: TeamsSettings = TeamsSettings()
    handoff: HandoffSettings | None = None
    retrieval: RetrievalSettings = RetrievalSettings()
    sources: list[SourceSettings] = []
    requests: RequestLimits = RequestLimits()
    llm: LLMSettings = LLMSettings()
    # The environment's OTEL_* variables, as read (core.tracing hands them to the OpenTelemetry SDK).
    otel_env: dict[str, str] = {}

    @property
    def auth_enabled(self) -> bool:
        """Any configured client turns authentication on everywhere (else: local demo mode)."""
        return bool(self.hub_api_keys or self.clients or self.jwt)

    def collection_dirs(self) -> dict[str, Path]:
        """Each collection's folder; without a ``collections`` section all of KB_DIR is ``default``."""
        if not self.collections:
            return {DEFAULT_COLLECTION: self.kb_dir}
        return {name: c.path if c.path.is_absolute() else self.kb_dir / c.path for name, c in self.collections.items()}

    @field_validator("collections")
    @classmethod
    def _collection_names(cls, value: dict[str, CollectionSettings]) -> dict[str, CollectionSettings]:
        for name in value:
            if not re.fullmatch(_NAME, name):
                raise ValueError(f"collection name {name!r} may hold only letters, digits, '_', '.' and '-'")
        return value

    def sources_dir(self) -> Path:
        """Where synced sources keep their documents: beside INDEX_DIR, like the vector cache."""
        return self.index_dir.parent / f"{self.index_dir.name}-sources"

    def source_folders(self) -> list[tuple[str, Path, str]]:
        """(collection, folder, document id prefix) of every source: a folder source's own path,
        another type's copy under sources_dir(); ingest reads them beside the collections."""
        folders = []
        for source in self.sources:
            if source.type == "folder" and source.path is not None:
                folder = source.path if source.path.is_absolute() else self.kb_dir / source.path
            else:
                folder = self.sources_dir() / source.name
            folders.append((source.collection, folder, f"{source.name}/"))
        return folders

    @model_validator(mode="after")
    def _known_collections(self) -> Settings:
        known = set(self.collection_dirs())
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError(f"sources: the name {next(n for n in names if names.count(n) > 1)!r} is used twice")
        named = [(f"tenants.{t}", s.collections) for t, s in self.tenants.items()]
        named += [(f"sources.{s.name}", [s.collection]) for s in self.sources]
        named += [(f"clients.{c.name}", c.collections) for c in self.clients]
        for where, names in named:
            unknown = sorted(set(names or ()) - known)
            if unknown:
                raise ValueError(f"{where}.collections: unknown collection {unknown[0]!r} (known: {sorted(known)})")
        return self

    @field_validator("embeddings")
    @classmethod
    def _embeddings(cls, value: str) -> str:
        if value in ("e5", "hash") or (value.startswith("openai:") and len(value) > len("openai:")):
            return value
        raise ValueError("must be 'e5', 'hash' or 'openai:<model>'")

    @field_validator("hub_api_keys")
    @classmethod
    def _api_keys(cls, value: list[str]) -> list[str]:
        for entry in value:
            parts = entry.split(":")
            if len(parts) != 3 or not all(p.strip() for p in parts):
                raise ValueError("each entry must be client:tenant:key")
        return value

    @field_validator(
        "openai_base_url",
        "local_llm_base_url",
        "slack_api_url",
        "line_api_url",
        "discord_api_url",
        "whatsapp_api_url",
        "telegram_api_url",
        "teams_openid_url",
        "teams_token_url",
    )
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value


# YAML-only settings: structured sections, not environment variables.
_YAML_ONLY = {
    "collections", "clients", "tenants", "jwt", "limits", "cache", "prices", "retrieval", "requests", "llm", "slack",
    "line", "discord", "whatsapp", "telegram", "teams", "handoff", "models", "routes", "resilience", "conversation",
    "queue", "sources",
}  # fmt: skip


_FROM_PREFIX = {"otel_env"}  # every OTEL_* variable, not one of its own name


def _env_names() -> dict[str, str]:
    """Every scalar Settings field is an environment variable of the same name, upper-cased."""
    return {field.upper(): field for field in Settings.model_fields if field not in _YAML_ONLY | _FROM_PREFIX}


_LIST_FIELDS = {"hub_api_keys", "hub_allowed_origins", "hub_allowed_hosts"}
_EMPTY_IS_OFF = {"log_file"}  # set but empty: switched off (other empty variables count as unset)
# Read outside Settings: the YAML file's path, and prometheus-client's multi-process folder.
OTHER_VARIABLES = ("HUB_CONFIG", "PROMETHEUS_MULTIPROC_DIR")


def environment_names() -> set[str]:
    """Every environment variable the hub reads (deployment manifests are checked against it)."""
    from core.secrets import FILE_SUFFIX, SECRET_VARIABLES
    from core.tracing import VARIABLES as OTEL_VARIABLES

    return {*_env_names(), *OTHER_VARIABLES, *OTEL_VARIABLES, *(name + FILE_SUFFIX for name in SECRET_VARIABLES)}


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read YAML (when HUB_CONFIG is set) and let the environment override it; every secret
    variable may come from the file its ``_FILE`` variant names (core.secrets)."""
    from core.secrets import with_file_secrets  # it raises this module's ConfigError

    env = with_file_secrets(os.environ if environ is None else environ)
    data: dict[str, Any] = {}
    sources: dict[str, str] = {}
    config_path = env.get("HUB_CONFIG")
    if config_path:
        data = _read_yaml(Path(config_path))
        sources = {key: f"{config_path}: {key}" for key in data}
    for env_name, field in _env_names().items():
        raw = env.get(env_name)
        if raw == "" and field in _EMPTY_IS_OFF:
            data[field] = None  # LOG_FILE= (as the image, compose and Kubernetes set it): stdout only
            sources[field] = env_name
            continue
        if raw is None or raw == "":
            continue
        # A list may also be one entry a line (HUB_API_KEYS from a file).
        data[field] = [p.strip() for p in re.split(r"[,\n]", raw) if p.strip()] if field in _LIST_FIELDS else raw
        sources[field] = env_name + "_FILE" if env.get(env_name + "_FILE") else env_name
    data["otel_env"] = {name: value for name, value in env.items() if name.startswith("OTEL_")}
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_first_error(exc, sources)) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"HUB_CONFIG: file not found: {path}") from None
    except (OSError, yaml.YAMLError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"HUB_CONFIG: cannot read {path}: {reason}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"HUB_CONFIG: {path} must hold a mapping of settings")
    return loaded


def _first_error(exc: ValidationError, sources: dict[str, str]) -> str:
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    if not loc:  # a rule across sections names its own place
        return str(err["msg"]).removeprefix("Value error, ")
    top = loc[0] if loc else "?"
    where = sources.get(top, top.upper())
    if len(loc) > 1:
        where = f"{where} ({'.'.join(loc[1:])})" if where.isupper() else f"{where}.{'.'.join(loc[1:])}"
    if err["type"] == "extra_forbidden":
        return f"{where}: unknown setting"
    value = err.get("input")
    shown = (
        ""
        if isinstance(value, dict | list) or "key" in top or "token" in top or "secret" in top
        else f" (got {mask_credentials(repr(value))})"
    )
    return f"{where}: {mask_credentials(err['msg'].removeprefix('Value error, '))}{shown}"


_URL_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s'\"]*)@")


def mask_credentials(text: str) -> str:
    """A URL's user and password (redis://user:pass@host) as ``***``: an error line may quote a URL."""
    return _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}***@", text)
