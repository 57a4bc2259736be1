"""``python -m adapters.slack``: the Slack Socket Mode bot as its own process.

For workspaces without a public URL, or to run the bot apart from the HTTP app (the Procfile's
``slack`` process). Needs SLACK_BOT_TOKEN and SLACK_APP_TOKEN; stops cleanly on SIGTERM/SIGINT,
finishing the answers in flight.
"""

from __future__ import annotations

import sys

from adapters.slack import socket_configured
from core.adapters import run_alone


def main() -> int:
    return run_alone("adapters.slack", "slack socket mode", lambda settings: None if socket_configured(settings)
                     else "Slack Socket Mode needs SLACK_BOT_TOKEN and SLACK_APP_TOKEN")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
