"""Which doc sets a question may search, from where it was asked (config/docsets.py has the
rules), and whether docs the asker may read privately would answer it clearly better.

Whether a channel is shared with another organisation (Slack Connect) is Slack's to say
(`conversations.info`, `is_ext_shared`), asked once per channel and remembered for a while.
When Slack cannot say, the channel is treated as shared: only the sets marked `external` are
searched there, never more.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from slack_sdk.web import SlackResponse

from bot.queue.tables import Question
from bot.slack.budget import Priority
from bot.slack.gate import SlackGate, error_code
from config.docsets import Place, allowed_sets, private_sets
from config.logger import get_logger
from config.settings import Settings

log = get_logger(__name__)
SHARED_TTL_S = 600.0
BETTER_BY = 0.1  # cosine the private match must beat the channel's best by: "clearly better"


class Scopes:
    def __init__(self, settings: Settings, gate: SlackGate | None) -> None:
        self.settings = settings
        self.gate = gate
        self._shared: dict[str, tuple[bool, float]] = {}
        self._lock = threading.Lock()

    def place(self, question: Question) -> Place:
        channel, user = question.channel_id, question.user_id
        private = channel.startswith("D") and question.kind in ("dm", "assistant", "private")
        if private:
            return Place(channel, user, private=True)
        return Place(channel, user, private=False, external=self.is_shared(channel))

    def sets_for(self, question: Question) -> list[str]:
        return allowed_sets(self.settings.sets, self.place(question))

    def is_shared(self, channel: str) -> bool:
        if channel.startswith("D") or not any(not s.external for s in self.settings.sets):
            return False  # a DM, or every set may be searched in shared channels anyway
        now = time.monotonic()
        with self._lock:
            known = self._shared.get(channel)
            if known and now - known[1] < SHARED_TTL_S:
                return known[0]
        shared = self._ask_slack(channel)
        with self._lock:
            self._shared[channel] = (shared, now)
        return shared

    def _ask_slack(self, channel: str) -> bool:
        if self.gate is None:
            return False
        gate = self.gate
        try:
            response = gate.call(
                "conversations.info",
                lambda: gate.client.conversations_info(channel=channel),
                priority=Priority.NOTICE,
            )
        except Exception as error:
            log.warning(
                "could not learn whether %s is shared with another organisation (%s): "
                "searching only the doc sets marked external there",
                channel,
                error_code(error),
            )
            return True
        info: dict[str, Any] = {}
        if response is not None and isinstance(response.get("channel"), dict):
            info = response["channel"]
        # is_ext_shared: shared with another organisation (pending invitations included).
        return bool(info.get("is_ext_shared") or info.get("is_pending_ext_shared"))

    def extra_private_sets(self, question: Question, searched: Sequence[str]) -> list[str]:
        """Sets the asker may search in a DM but were not searched here."""
        if not self.settings.offer_private_answers:
            return []
        mine = private_sets(self.settings.sets, question.user_id)
        return [name for name in mine if name not in searched]


def check_channels(settings: Settings, gate: SlackGate) -> list[str]:
    """Channels named by doc sets that Slack does not know (a typo, a channel archived or
    never joined): reported at start, not fatal, since the set still works elsewhere."""
    unknown = []
    for doc_set in settings.sets:
        for channel in doc_set.channels:
            if channel == "*":
                continue

            def ask(channel: str = channel) -> SlackResponse:
                return gate.client.conversations_info(channel=channel)

            try:
                gate.call("conversations.info", ask, priority=Priority.NOTICE)
            except Exception as error:
                code = error_code(error)
                log.warning(
                    "doc set %s lists channel %s, which Slack could not find (%s): check "
                    "its channels, and that the bot was invited there",
                    doc_set.name,
                    channel,
                    code,
                )
                unknown.append(channel)
    return unknown
