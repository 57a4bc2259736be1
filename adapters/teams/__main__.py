"""``python -m adapters.teams``: Teams needs no process of its own (it has no socket mode)."""

import sys

print(
    "Teams talks to the hub through its messaging endpoint, POST /teams/messages, which the hub app "
    "serves (python -m core serve) when TEAMS_APP_ID and TEAMS_APP_PASSWORD are set.",
    file=sys.stderr,
)
sys.exit(0)
