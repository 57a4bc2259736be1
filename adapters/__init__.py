"""Platform adapters: Slack, LINE and Discord front doors on the one Ask Hub core."""
