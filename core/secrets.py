"""Secrets from the environment or from files, the way Docker and Kubernetes mount them.

Every secret variable ``NAME`` may instead be given as ``NAME_FILE``: the path of a file
holding the value (trailing newlines dropped). A file that cannot be read stops the start
with one line naming the variable and the path, never the file's content; setting both
``NAME`` and ``NAME_FILE`` is refused, so nobody wonders which one won.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

from core.errors import ConfigError

# The settings that hold credentials (REDIS_URL may carry a password). Names chosen in the
# YAML file — a JWT key's ``secret_env``, a model's ``api_key_env`` — are read through
# ``secret`` and take a ``_FILE`` variant the same way.
SECRET_VARIABLES = (
    "OPENAI_API_KEY",
    "HUB_API_KEYS",
    "REDIS_URL",
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "LINE_CHANNEL_SECRET",
    "LINE_CHANNEL_ACCESS_TOKEN",
    "DISCORD_BOT_TOKEN",
    "DISCORD_PUBLIC_KEY",
    "TEAMS_APP_PASSWORD",
)
FILE_SUFFIX = "_FILE"


def read_secret_file(variable: str, path: str) -> str:
    """The content of ``path`` named by ``variable`` (for the error line), trailing newlines dropped.

    Only a regular file (or a link to one) is read: a FIFO or a device would block start-up
    forever without a word, so it is refused with one line instead."""
    try:
        mode = os.stat(path).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):  # a directory fails below, as IsADirectoryError
            raise ConfigError(f"{variable}: {path} is not a regular file")
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{variable}: file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{variable}: cannot read {path}: {type(exc).__name__}") from None
    value = text.rstrip("\r\n")
    if not value.strip():
        raise ConfigError(f"{variable}: {path} is empty")
    return value


def secret(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """``name``'s value from the environment, else from the file ``name_FILE`` points at."""
    env = os.environ if environ is None else environ
    value = env.get(name) or None
    path = env.get(name + FILE_SUFFIX) or None
    if value is not None and path is not None:
        raise ConfigError(f"{name}: set either {name} or {name}{FILE_SUFFIX}, not both")
    if path is not None:
        return read_secret_file(name + FILE_SUFFIX, path)
    return value


def with_file_secrets(environ: Mapping[str, str], names: Iterable[str] = SECRET_VARIABLES) -> dict[str, str]:
    """A copy of ``environ`` in which each ``NAME_FILE`` of ``names`` became ``NAME``."""
    env = dict(environ)
    for name in names:
        if env.get(name + FILE_SUFFIX):
            value = secret(name, env)
            if value is not None:
                env[name] = value
    return env
