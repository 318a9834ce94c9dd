"""Where restricted docs would help: the asker alone hears that docs they may read privately
answer the question better, with a button; the click answers it again in a DM with the bot,
searched with the asker's private scope. The channel never sees any of it."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, BoltContext

from bot.queue.store import Incoming, Outcome, QuestionStore
from bot.queue.tables import Question
from bot.slack import blocks as kit
from bot.slack import text as words
from bot.slack.budget import Priority
from bot.slack.gate import SlackGate, error_code
from config.logger import get_logger

log = get_logger(__name__)
ANSWER_PRIVATELY = "answer_privately"


def offer_blocks(question_id: int) -> list[kit.Block]:
    return [
        kit.section(words.PRIVATE_OFFER),
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": ANSWER_PRIVATELY,
                    "text": {"type": "plain_text", "text": words.PRIVATE_BUTTON},
                    "value": str(question_id),
                }
            ],
        },
    ]


def offer_private_answer(gate: SlackGate, question: Question) -> None:
    """An ephemeral offer to the asker, in the answer's thread."""
    try:
        gate.call(
            "chat.postEphemeral",
            lambda: gate.client.chat_postEphemeral(
                channel=question.channel_id,
                user=question.user_id,
                thread_ts=question.thread_ts,
                text=words.PRIVATE_OFFER,
                blocks=offer_blocks(question.id),
            ),
            priority=Priority.NOTICE,
            team=question.team_id,
        )
    except Exception as error:
        log.info(
            "question %s: could not offer a private answer: %s", question.id, error_code(error)
        )


class PrivateAnswers:
    def __init__(self, store: QuestionStore, gate: SlackGate, wake: Any) -> None:
        self.store = store
        self.gate = gate
        self.wake = wake

    def on_click(self, ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        """Ack at once; the DM is opened and the question queued by `answer_in_dm`."""
        ack()

    def answer_in_dm(
        self, body: dict[str, Any], action: dict[str, Any], context: BoltContext
    ) -> None:
        """The lazy half: only the asker may ask for it, and only once per question."""
        user = str((body.get("user") or {}).get("id") or "")
        value = str(action.get("value") or "")
        question = self.store.find(int(value)) if value.isdigit() and len(value) < 13 else None
        if question is None or question.user_id != user:
            log.warning("private answer for %r refused: not asked by %s", value, user)
            return
        gate = self.gate
        opened = gate.call(
            "chat.postMessage",
            lambda: gate.client.chat_postMessage(channel=user, text=words.PRIVATE_INTRO),
            priority=Priority.NOTICE,
            team=question.team_id,
            channel=user,
        )
        if opened is None:
            return
        incoming = Incoming(
            event_id=f"private:{question.id}",
            kind="dm",
            team_id=question.team_id,
            channel_id=str(opened["channel"]),  # the DM Slack opened for the post
            user_id=user,
            text=question.text,
            thread_ts=str(opened["ts"]),
        )
        outcome, new_id = self.store.record(incoming)
        if outcome is Outcome.QUEUED:
            log.info("question %s asked again privately as question %s", question.id, new_id)
            self.wake()
