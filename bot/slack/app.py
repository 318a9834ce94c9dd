"""The Bolt app: thin listeners that check, record and acknowledge, nothing more.

Each listener is Bolt's ack/lazy pair. The ack function returns within milliseconds: it
writes the question to SQL (so nothing is lost if the process dies right after), wakes the
worker pool, and notes in the request context what must be said back (a busy notice, a vote's
thank-you, the reason form). `process_before_response` holds the HTTP response until the ack
function ends; the lazy function `talk_back` then makes those Slack calls on Bolt's listener
executor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App, Assistant, BoltContext, BoltResponse
from sqlalchemy.exc import OperationalError

from bot.queue.store import Incoming, Outcome, QuestionStore
from bot.slack import blocks as kit
from bot.slack import text as words
from bot.slack.gate import SlackGate
from bot.slack.home import HomeTab
from bot.slack.home import register as register_home
from bot.slack.mrkdwn import from_slack
from bot.slack.private import ANSWER_PRIVATELY, PrivateAnswers
from bot.slack.talk import RESPOND, TalkBack, say_later
from config.logger import get_logger
from config.settings import Settings

log = get_logger(__name__)
# A question with a screenshot is a file_share; a reply also sent to the channel is a
# thread_broadcast. Every other subtype (edits, deletions, joins, bot posts) is not a question.
QUESTION_SUBTYPES = (None, "file_share", "thread_broadcast")


@dataclass
class BotDeps:
    settings: Settings
    store: QuestionStore
    gate: SlackGate
    wake: Callable[[], None]
    home: HomeTab | None = None


def _allowed(settings: Settings, channel_id: str, user_id: str) -> bool:
    if settings.allowed_users and user_id not in settings.allowed_users:
        return False
    is_dm = channel_id.startswith("D")
    return is_dm or not settings.allowed_channels or channel_id in settings.allowed_channels


def _question_id(value: object) -> int | None:
    """A question id as the buttons carry it; anything else (a forged 10**30) is None."""
    text = str(value or "")
    if not text.isdigit() or len(text) > 12:
        return None
    return int(text)


def _team(context: BoltContext, event: dict[str, Any]) -> str:
    return str(context.team_id or event.get("team") or "")


class Listeners:
    """The ack functions. Each records what it must and notes what to say; none talks to
    Slack itself."""

    def __init__(self, deps: BotDeps) -> None:
        self.deps = deps
        self.store = deps.store

    # -- questions ---------------------------------------------------------------------------

    @staticmethod
    def _tell_privately(context: BoltContext, incoming: Incoming, text: str) -> None:
        # Slack shows an ephemeral message in a thread only when given the parent's ts of a
        # thread that exists; a top-level message's own ts hides it. So: the thread the
        # message was a reply in, else the channel.
        parent = incoming.thread_ts if incoming.thread_ts != incoming.message_ts else None
        say_later(
            context,
            "post an ephemeral notice",
            "chat.postEphemeral",
            channel=incoming.channel_id,
            user=incoming.user_id,
            text=text,
            thread_ts=parent,
        )

    def _accept(self, context: BoltContext, incoming: Incoming) -> Outcome | None:
        if not _allowed(self.deps.settings, incoming.channel_id, incoming.user_id):
            log.info("not enabled for %s in %s", incoming.user_id, incoming.channel_id)
            # A reply in a thread the bot answered was not necessarily meant for it: only
            # people who addressed the bot hear that it is not enabled for them.
            if incoming.kind not in ("command", "thread"):
                self._tell_privately(context, incoming, words.NOT_ENABLED)
            return None
        outcome, question_id = self.store.record(incoming)
        if outcome is Outcome.QUEUED:
            log.info(
                "question %s queued (%s in %s)", question_id, incoming.kind, incoming.channel_id
            )
            self.deps.wake()
        elif outcome is Outcome.BUSY:
            log.warning(
                "question %s refused: %d already waiting", question_id, self.store.max_queued
            )
            if incoming.kind != "command":
                say_later(
                    context,
                    "post a notice",
                    "chat.postMessage",
                    channel=incoming.channel_id,
                    thread_ts=incoming.thread_ts or incoming.message_ts,
                    text=words.BUSY,
                )
        else:
            log.info("event %s already recorded; not answering twice", incoming.event_id)
        return outcome

    def _message_incoming(
        self, body: dict[str, Any], event: dict[str, Any], context: BoltContext, kind: str
    ) -> Incoming | None:
        text = from_slack(event.get("text") or "", context.bot_user_id)
        user = event.get("user")
        if not user:
            return None
        return Incoming(
            event_id=str(body.get("event_id") or f"{event['channel']}:{event['ts']}"),
            kind=kind,
            team_id=_team(context, event),
            channel_id=event["channel"],
            user_id=user,
            text=text,
            thread_ts=event.get("thread_ts") or event["ts"],
            message_ts=event["ts"],
        )

    def on_mention(self, body: dict[str, Any], event: dict[str, Any], context: BoltContext) -> None:
        if event.get("bot_id") and not self.deps.settings.answer_bots:
            return  # another app mentioning us (a relay, a reminder): not a person's question
        incoming = self._message_incoming(body, event, context, "mention")
        if incoming is None:
            return
        if not incoming.text:
            self._tell_privately(context, incoming, words.MENTION_HINT)
            return
        self._accept(context, incoming)

    def on_message(self, body: dict[str, Any], event: dict[str, Any], context: BoltContext) -> None:
        if event.get("bot_id") or event.get("user") == context.bot_user_id:
            return
        mentioned = context.bot_user_id and f"<@{context.bot_user_id}" in (event.get("text") or "")
        if event.get("channel_type") == "im":
            kind = "dm"
        elif event.get("thread_ts") and not mentioned:  # a mention arrives as app_mention
            known = self.store.thread_kind(
                _team(context, event), event["channel"], event["thread_ts"]
            )
            if known is None:
                return
            kind = "thread"
        else:
            return
        incoming = self._message_incoming(body, event, context, kind)
        if incoming is not None and incoming.text:
            self._accept(context, incoming)

    def on_command(
        self, ack: Ack, command: dict[str, Any], body: dict[str, Any], context: BoltContext
    ) -> None:
        text = from_slack(command.get("text") or "")
        if not text:
            ack(words.ASK_USAGE)
            return
        if not _allowed(self.deps.settings, command["channel_id"], command["user_id"]):
            ack(words.NOT_ENABLED)
            return
        incoming = Incoming(
            event_id=f"command:{body.get('trigger_id') or command.get('trigger_id')}",
            kind="command",
            team_id=str(command.get("team_id") or ""),
            channel_id=command["channel_id"],
            user_id=command["user_id"],
            text=text,
            thread_ts=None,
            response_url=command.get("response_url"),
        )
        outcome = self._accept(context, incoming)
        if outcome is Outcome.BUSY:
            ack(words.BUSY)
        else:
            ack()

    # -- assistant pane ----------------------------------------------------------------------

    def on_thread_started(self, event: dict[str, Any], context: BoltContext) -> None:
        thread = event["assistant_thread"]
        channel, thread_ts = thread["channel_id"], thread["thread_ts"]
        allowed = _allowed(self.deps.settings, channel, str(thread.get("user_id") or ""))
        say_later(
            context,
            "greet an assistant thread",
            "chat.postMessage",
            channel=channel,
            thread_ts=thread_ts,
            text=words.GREETING if allowed else words.NOT_ENABLED,
        )
        if not allowed:
            return
        say_later(
            context,
            "suggest prompts",
            "assistant.threads.setSuggestedPrompts",
            channel_id=channel,
            thread_ts=thread_ts,
            title=words.SUGGESTED_TITLE,
            prompts=kit.suggested_prompts(),
        )

    def on_assistant_message(
        self, body: dict[str, Any], event: dict[str, Any], context: BoltContext
    ) -> None:
        # Bolt routes every DM thread reply here; a thread under a plain DM stays a DM.
        known = self.store.thread_kind(
            _team(context, event), event["channel"], event.get("thread_ts") or ""
        )
        incoming = self._message_incoming(
            body, event, context, "dm" if known == "dm" else "assistant"
        )
        if incoming is not None and incoming.text and event.get("subtype") in QUESTION_SUBTYPES:
            self._accept(context, incoming)

    # -- feedback ----------------------------------------------------------------------------

    def on_vote(
        self, ack: Ack, body: dict[str, Any], action: dict[str, Any], context: BoltContext
    ) -> None:
        ack()
        question_id = _question_id(action.get("value"))
        user = str((body.get("user") or {}).get("id") or "")
        container = body.get("container") or {}
        channel = str((body.get("channel") or {}).get("id") or container.get("channel_id") or "")
        message = body.get("message") or {}
        message_ts = str(message.get("ts") or container.get("message_ts") or "")
        if question_id is None or not user:
            log.warning("vote without a question or a voter ignored")
            return
        if not _allowed(self.deps.settings, channel, user):
            log.info("vote by %s in %s ignored: not enabled there", user, channel)
            return
        question = self.store.find(question_id)
        # The buttons name their question: a forged click could name another person's DM
        # question. It counts only where that question's answer is, on the message clicked.
        on_its_answer = (
            question is not None
            and question.channel_id == channel
            and (
                question.answer_ts == message_ts
                if not container.get("is_ephemeral")
                else question.user_id == user  # a private answer: only its asker sees the buttons
            )
        )
        if not on_its_answer:
            log.warning("vote for question %s ignored: not clicked on its answer", question_id)
            return
        rating = "up" if action.get("action_id") == kit.FEEDBACK_UP else "down"
        previous = self.store.vote(question_id, user, rating)
        log.info("question %s: %s voted %s", question_id, user, rating)
        if rating == "down" and previous != "down" and body.get("trigger_id"):
            view = kit.reason_modal(question_id, channel, message.get("thread_ts") or "")
            say_later(
                context,
                "open the reason form",
                "views.open",
                trigger_id=body["trigger_id"],
                view=view,
            )
            return
        text = words.vote_thanks(rating, previous)
        if container.get("is_ephemeral") and body.get("response_url"):
            say_later(
                context,
                "thank the voter",
                RESPOND,
                url=body["response_url"],
                text=text,
                response_type="ephemeral",
                replace_original=False,
            )
            return
        say_later(
            context,
            "thank the voter",
            "chat.postEphemeral",
            channel=channel,
            user=user,
            text=text,
            thread_ts=message.get("thread_ts"),  # the answer's thread; none for a top-level one
        )

    def on_reason(
        self, ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext
    ) -> None:
        ack()
        raw_id, channel, thread_ts = (
            str(view.get("private_metadata") or "").split(":", 2) + [""] * 3
        )[:3]
        question_id = _question_id(raw_id)
        user = str((body.get("user") or {}).get("id") or "")
        if question_id is None or not user or not _allowed(self.deps.settings, channel, user):
            log.warning("reason form without its question, or from outside the allow-list")
            return
        values = (view.get("state") or {}).get("values") or {}
        reason = (values.get(kit.REASON_BLOCK, {}).get(kit.REASON_ACTION, {}) or {}).get("value")
        if isinstance(reason, str) and reason.strip():
            self.store.set_reason(question_id, user, reason.strip())
        if channel:
            say_later(
                context,
                "thank the voter",
                "chat.postEphemeral",
                channel=channel,
                user=user,
                text=words.vote_thanks("down", None),
                thread_ts=thread_ts or None,
            )


def ignore() -> None:
    """Edits, deletions, joins and bot posts: acknowledged, and nothing else."""


def build_app(deps: BotDeps) -> App:
    """The Bolt app. Requests are verified before Bolt sees them (bot/slack/edge.py checks
    size and signature before any parsing, and never logs a forged body); Socket Mode needs
    no signing at all."""
    from concurrent.futures import ThreadPoolExecutor

    settings = deps.settings
    secret = settings.slack_signing_secret
    app = App(
        client=deps.gate.client,
        signing_secret=secret.get_secret_value() if secret else None,
        request_verification_enabled=False,
        # No auth.test at construction: the first request asks it (and Bolt keeps the answer),
        # so building the app needs no network and a port in use is said before Slack is.
        token_verification_enabled=False,
        process_before_response=True,
        logger=get_logger("bot.slack.bolt"),
        listener_executor=ThreadPoolExecutor(4, thread_name_prefix="slack-lazy"),
    )
    on = Listeners(deps)
    lazy: list[Callable[..., None]] = [TalkBack(deps.gate)]
    assistant = Assistant()
    assistant.thread_started(lazy=lazy)(on.on_thread_started)
    assistant.thread_context_changed(ignore)  # docsbot answers from the docs, not the page
    assistant.user_message(lazy=lazy)(on.on_assistant_message)
    app.use(assistant)
    app.event({"type": "app_mention", "subtype": QUESTION_SUBTYPES})(ack=on.on_mention, lazy=lazy)
    app.event({"type": "message", "subtype": QUESTION_SUBTYPES})(ack=on.on_message, lazy=lazy)
    app.event("message")(ignore)
    app.event("app_mention")(ignore)
    app.command(settings.slack_command)(ack=on.on_command, lazy=lazy)
    app.action(kit.FEEDBACK_UP)(ack=on.on_vote, lazy=lazy)
    app.action(kit.FEEDBACK_DOWN)(ack=on.on_vote, lazy=lazy)
    app.view(kit.REASON_VIEW)(ack=on.on_reason, lazy=lazy)
    private = PrivateAnswers(deps.store, deps.gate, deps.wake)
    app.action(ANSWER_PRIVATELY)(ack=private.on_click, lazy=[private.answer_in_dm])
    if deps.home is not None:
        register_home(app, deps.home)

    @app.error
    def on_error(error: Exception, body: dict[str, Any]) -> BoltResponse | None:
        """The catch-all. The database being down is worth Slack's retry (500: nothing was
        written); anything else is a request no retry will fix (a signed payload missing its
        fields): one warning, and 200 so Slack does not send the poison again."""
        kind = body.get("type") or body.get("command") or "request"
        event = (
            (body.get("event") or {}).get("type") if isinstance(body.get("event"), dict) else None
        )
        what = f"{kind} ({event})" if event else str(kind)
        if isinstance(error, OperationalError):
            log.error("Slack %s not recorded, the database failed: %s", what, error)
            return None
        log.warning(
            "Slack %s could not be handled (%s: %s); dropped", what, type(error).__name__, error
        )
        return BoltResponse(status=200, body="")

    return app
