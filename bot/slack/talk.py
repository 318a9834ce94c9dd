"""Talking back after the ack: a listener's ack function notes the Slack calls to make
(`say_later`), and Bolt's lazy half (`TalkBack`) makes them on its listener executor, within
the shared Slack budget."""

from __future__ import annotations

from typing import Any

from slack_bolt import BoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from bot.slack.budget import Priority
from bot.slack.gate import SlackGate, error_code
from config.logger import get_logger

log = get_logger(__name__)
SAY = "docsbot_say"  # request-context key: the Slack calls decided during the ack
RESPOND = "response_url"  # a SAY entry answered through a response_url, not the Web API
NOT_A_MEMBER = {"not_in_channel", "channel_not_found"}


def say_later(context: BoltContext, what: str, method: str, **arguments: Any) -> None:
    """Note a Slack call for `talk_back`, which makes it after the ack."""
    context.setdefault(SAY, []).append({"what": what, "method": method, "arguments": arguments})


class TalkBack:
    """The lazy half of every listener: what its ack function asked to say, said within the
    shared Slack budget. An ephemeral notice in a channel the bot is not in goes to the
    person's DM with the bot instead, so nobody is left without an answer."""

    def __init__(self, gate: SlackGate) -> None:
        self.gate = gate

    def __call__(self, context: BoltContext) -> None:
        for call in context.get(SAY) or []:
            try:
                self._say(call["method"], dict(call["arguments"]), str(context.team_id or ""))
            except Exception as error:  # Slack unreachable or refusing: say so, nothing more
                log.warning("could not %s: %s", call["what"], error_code(error))

    def _say(self, method: str, arguments: dict[str, Any], team: str) -> None:
        if method == RESPOND:
            WebhookClient(arguments.pop("url")).send(**arguments)
            return
        client = self.gate.client
        try:
            self.gate.call(
                method,
                lambda: getattr(client, method.replace(".", "_"))(**arguments),
                priority=Priority.NOTICE,
                team=team,
                channel=str(arguments.get("channel") or ""),
            )
        except SlackApiError as error:
            if method != "chat.postEphemeral" or error_code(error) not in NOT_A_MEMBER:
                raise
            user = str(arguments["user"])
            log.info("not a member of %s: telling %s in a DM", arguments.get("channel"), user)
            self.gate.call(
                "chat.postMessage",
                lambda: client.chat_postMessage(channel=user, text=str(arguments["text"])),
                priority=Priority.NOTICE,
                team=team,
                channel=user,
            )
