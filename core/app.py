"""``uvicorn core.app:app``: the app built from the environment (and HUB_CONFIG)."""

from __future__ import annotations

import sys

from core.config import ConfigError, load_settings
from core.http.app import create_app

try:
    app = create_app(load_settings())
except ConfigError as _exc:
    print(f"config error: {_exc}", file=sys.stderr)
    raise SystemExit(2) from None
