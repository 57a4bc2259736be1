"""``uvicorn core.app:app``: the app built from the environment (and HUB_CONFIG)."""

from __future__ import annotations

from core.config import ConfigError, load_settings
from core.http.app import create_app
from core.lifecycle import config_error

try:
    app = create_app(load_settings())
except ConfigError as _exc:
    raise SystemExit(config_error(_exc)) from None
