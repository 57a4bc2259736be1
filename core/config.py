"""Settings: environment variables (the contract) over an optional YAML file.

Everything is validated once at start-up; a bad value stops the process with a single
line naming the setting, so an operator never has to read a traceback to fix a typo.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)


class ConfigError(Exception):
    """A setting is missing, unknown or invalid; the message is one line for the operator."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetrievalSettings(_Section):
    top_k: int = Field(4, ge=1, le=20)
    # A chunk below this fused score is not evidence: the hub says it does not know.
    min_score: float = Field(0.06, ge=0.0, le=1.0)
    # Weight of the lexical (BM25) score in the fused score; the rest is the dense score.
    lexical_weight: float = Field(0.8, ge=0.0, le=1.0)
    # Above this many chunks the dense index is approximate (IVF, 8-bit codes) instead of exact.
    exact_max_chunks: int = Field(5000, ge=1)
    chunk_chars: int = Field(600, ge=100, le=8000)
    # How often the server looks for a newer index version (seconds).
    reload_interval_sec: float = Field(2.0, gt=0)


class RequestLimits(_Section):
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    max_question_chars: int = Field(2000, ge=10)


class LLMSettings(_Section):
    timeout_sec: float = Field(30.0, gt=0)
    max_tokens: int = Field(700, ge=16)
    temperature: float = Field(0.2, ge=0.0, le=2.0)


class Settings(_Section):
    port: int = Field(8000, ge=1, le=65535)
    host: str = "127.0.0.1"
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    chat_model: str = "gpt-4o-mini"
    large_model: str = "gpt-4o"
    local_llm_base_url: str | None = None
    local_llm_model: str | None = None
    embeddings: str = "hash"
    kb_dir: Path = Path("data/kb")
    index_dir: Path = Path("var/index")
    hub_api_keys: list[str] = []
    rate_limit_max_per_user: int = Field(10, ge=1)
    rate_limit_window_sec: float = Field(60.0, gt=0)
    redis_url: str | None = None
    hub_allowed_origins: list[str] = []
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

    retrieval: RetrievalSettings = RetrievalSettings()
    requests: RequestLimits = RequestLimits()
    llm: LLMSettings = LLMSettings()

    @field_validator("embeddings")
    @classmethod
    def _embeddings(cls, value: str) -> str:
        if value == "hash" or (value.startswith("openai:") and len(value) > len("openai:")):
            return value
        raise ValueError("must be 'hash' or 'openai:<model>'")

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
    )
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value


def _env_names() -> dict[str, str]:
    """Every scalar Settings field is an environment variable of the same name, upper-cased."""
    names: dict[str, str] = {}
    for field, info in Settings.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, _Section):
            continue
        names[field.upper()] = field
    return names


_LIST_FIELDS = {"hub_api_keys", "hub_allowed_origins"}


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read YAML (when HUB_CONFIG is set) and let the environment override it."""
    env = dict(os.environ if environ is None else environ)
    data: dict[str, Any] = {}
    sources: dict[str, str] = {}
    config_path = env.get("HUB_CONFIG")
    if config_path:
        data = _read_yaml(Path(config_path))
        sources = {key: f"{config_path}: {key}" for key in data}
    for env_name, field in _env_names().items():
        raw = env.get(env_name)
        if raw is None or raw == "":
            continue
        data[field] = [p.strip() for p in raw.split(",") if p.strip()] if field in _LIST_FIELDS else raw
        sources[field] = env_name
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
        else f" (got {value!r})"
    )
    return f"{where}: {err['msg'].removeprefix('Value error, ')}{shown}"
