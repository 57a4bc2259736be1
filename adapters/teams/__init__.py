"""Microsoft Teams front door: ``POST /teams/messages``, the Bot Framework's messaging endpoint.

On when TEAMS_APP_ID and TEAMS_APP_PASSWORD are set. Teams has no socket mode: the endpoint is
served by the hub app. With ``handoff.desk: teams`` the agents' side of a handoff is a Teams
channel (``handoff.teams_channel``) instead of Slack.

    auth.py        the Bot Framework JWT: OpenID metadata, signing keys (cached), claims
    connector.py   the Bot Connector: a bot token, then send / reply / update (httpx)
    translate.py   an activity -> question, button, or nothing (tenant from the Azure AD tenant)
    render.py      AskResult -> Teams messages (split to 28 KB, a card with sources, 👍 / 👎)
    transport.py   the endpoint (verify, decide, claim, queue, ack) and the answering job
    handoff.py     a personal chat as a customer door of a handoff (proactive messages)
    desk.py        the agents' desk in a Teams channel (core.handoff's Desk); desk_cards.py its cards
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.adapters import Loaded
    from core.inbox.door import Door

__all__ = ["load"]


def load(door: Door, *, clients: bool) -> Loaded | None:
    settings = door.settings
    password = settings.teams_app_password
    if not settings.teams_app_id or password is None or not password.get_secret_value():
        return None
    import httpx

    from adapters.teams.auth import BotFrameworkVerifier
    from adapters.teams.connector import Connector
    from adapters.teams.transport import JOB, TeamsBot
    from core.adapters import Loaded

    http = httpx.AsyncClient(timeout=httpx.Timeout(10.0), follow_redirects=False)
    verifier = BotFrameworkVerifier(settings.teams_app_id, settings.teams_openid_url, http)
    connector = Connector(settings.teams_app_id, password.get_secret_value(), settings.teams_token_url, http)
    bot = TeamsBot(door, verifier, connector)
    door.inbox.declare(JOB, bot.handle)
    if door.handoff.enabled:  # agents' replies and the end notice reach a Teams chat proactively
        from adapters.teams.handoff import TeamsCustomer

        door.handoff.register_customer("teams", TeamsCustomer(connector))
    if door.handoff.enabled and door.handoff.desk_platform == "teams":  # the agents work in a Teams channel
        from adapters.teams.desk import ACTION_JOB, REPLY_JOB, TeamsDesk

        bot.desk = TeamsDesk(door, connector)
        door.handoff.register_desk(bot.desk)
        door.inbox.declare(REPLY_JOB, bot.desk.relay_reply)
        door.inbox.declare(ACTION_JOB, bot.desk.act)
    door.on_close(http.aclose)  # after the job queue has drained
    return Loaded("teams", routes={"/teams/messages": bot.endpoint})
