"""The Bolt app: thin listeners that check, record and acknowledge, nothing more.

Every listener returns within milliseconds: it writes the question to SQL (so nothing is lost
if the process dies right after) and wakes the worker pool. Anything that talks back to Slack
beyond the ack (a busy notice, a vote's thank-you, the reason modal) goes to `notify`, a small
executor, because `process_before_response` holds the HTTP response until the listener ends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App, Assistant, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from bot import blocks as kit
from bot.home import HomeTab
from bot.home import register as register_home
from bot.mrkdwn import from_slack
from bot.questions import Incoming, Outcome, QuestionStore
from config.settings import Settings

log = logging.getLogger(__name__)
# A question with a screenshot is a file_share; a reply also sent to the channel is a
# thread_broadcast. Every other subtype (edits, deletions, joins, bot posts) is not a question.
QUESTION_SUBTYPES = {None, "file_share", "thread_broadcast"}


@dataclass
class BotDeps:
    settings: Settings
    store: QuestionStore
    client: WebClient
    wake: Callable[[], None]
    notify: Executor
    home: HomeTab | None = None


def _allowed(settings: Settings, channel_id: str, user_id: str) -> bool:
    if settings.allowed_users and user_id not in settings.allowed_users:
        return False
    is_dm = channel_id.startswith("D")
    return is_dm or not settings.allowed_channels or channel_id in settings.allowed_channels


def _team(context: BoltContext, event: dict[str, Any]) -> str:
    return str(context.team_id or event.get("team") or "")


class Listeners:
    def __init__(self, deps: BotDeps) -> None:
        self.deps = deps
        self.store = deps.store
        self.client = deps.client

    # -- talking back after the ack ----------------------------------------------------------

    def _later(self, what: str, call: Callable[[], Any]) -> None:
        def run() -> None:
            try:
                call()
            except SlackApiError as error:
                log.warning("could not %s: %s", what, error.response.get("error"))
            except Exception as error:  # Slack unreachable: nothing more to do than say so
                log.warning("could not %s: %s", what, error)

        self.deps.notify.submit(run)

    def _tell_in_thread(self, incoming: Incoming, text: str) -> None:
        self._later(
            "post a notice",
            lambda: self.client.chat_postMessage(
                channel=incoming.channel_id,
                thread_ts=incoming.thread_ts or incoming.message_ts,
                text=text,
            ),
        )

    def _tell_privately(self, channel: str, user: str, text: str, thread_ts: str | None) -> None:
        self._later(
            "post an ephemeral notice",
            lambda: self.client.chat_postEphemeral(
                channel=channel, user=user, text=text, thread_ts=thread_ts
            ),
        )

    # -- questions ---------------------------------------------------------------------------

    def _accept(self, incoming: Incoming) -> Outcome | None:
        if not _allowed(self.deps.settings, incoming.channel_id, incoming.user_id):
            log.info("not enabled for %s in %s", incoming.user_id, incoming.channel_id)
            # A reply in a thread the bot answered was not necessarily meant for it: only
            # people who addressed the bot hear that it is not enabled for them.
            if incoming.kind not in ("command", "thread"):
                self._tell_privately(
                    incoming.channel_id, incoming.user_id, kit.NOT_ENABLED, incoming.thread_ts
                )
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
                self._tell_in_thread(incoming, kit.BUSY)
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
        incoming = self._message_incoming(body, event, context, "mention")
        if incoming is None or event.get("subtype") not in QUESTION_SUBTYPES:
            return
        if not incoming.text:
            self._tell_privately(
                incoming.channel_id,
                incoming.user_id,
                "Ask me something after the mention, e.g. “@docsbot how do I get started?”",
                incoming.thread_ts,
            )
            return
        self._accept(incoming)

    def on_message(self, body: dict[str, Any], event: dict[str, Any], context: BoltContext) -> None:
        if (
            event.get("subtype") not in QUESTION_SUBTYPES
            or event.get("bot_id")
            or event.get("user") == context.bot_user_id
        ):
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
            self._accept(incoming)

    def on_command(self, ack: Ack, command: dict[str, Any], body: dict[str, Any]) -> None:
        text = from_slack(command.get("text") or "")
        if not text:
            ack(kit.ASK_USAGE)
            return
        if not _allowed(self.deps.settings, command["channel_id"], command["user_id"]):
            ack(kit.NOT_ENABLED)
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
        outcome = self._accept(incoming)
        if outcome is Outcome.BUSY:
            ack(kit.BUSY)
        else:
            ack()

    # -- assistant pane ----------------------------------------------------------------------

    def on_thread_started(self, event: dict[str, Any]) -> None:
        thread = event["assistant_thread"]
        channel, thread_ts = thread["channel_id"], thread["thread_ts"]

        def greet() -> None:
            self.client.chat_postMessage(
                channel=channel,
                thread_ts=thread_ts,
                text="Hi! Ask me anything about the docs; I answer with links to the sections "
                "I used.",
            )
            self.client.assistant_threads_setSuggestedPrompts(
                channel_id=channel,
                thread_ts=thread_ts,
                title="Try one of these",
                prompts=kit.suggested_prompts(),
            )

        self._later("greet an assistant thread", greet)

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
            self._accept(incoming)

    # -- feedback ----------------------------------------------------------------------------

    def on_vote(self, ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        try:
            question_id = int(action.get("value") or "")
        except ValueError:
            return
        if not self.store.exists(question_id):
            log.warning("vote for unknown question %r ignored", action.get("value"))
            return
        user = body["user"]["id"]
        rating = "up" if action["action_id"] == kit.FEEDBACK_UP else "down"
        previous = self.store.vote(question_id, user, rating)
        log.info("question %s: %s voted %s", question_id, user, rating)
        container = body.get("container") or {}
        channel = (body.get("channel") or {}).get("id") or container.get("channel_id", "")
        message = body.get("message") or {}
        message_ts = message.get("ts") or container.get("message_ts", "")
        if rating == "down" and previous != "down" and body.get("trigger_id"):
            view = kit.reason_modal(question_id, channel, message_ts)
            self._later(
                "open the reason form",
                lambda: self.client.views_open(trigger_id=body["trigger_id"], view=view),
            )
            return
        text = kit.vote_ack(rating, previous)
        if container.get("is_ephemeral") and body.get("response_url"):
            hook = WebhookClient(body["response_url"])
            self._later(
                "thank the voter",
                lambda: hook.send(text=text, response_type="ephemeral", replace_original=False),
            )
            return
        thread = message.get("thread_ts") or message_ts or None
        self._tell_privately(channel, user, text, thread)

    def on_reason(self, ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        ack()
        try:
            raw_id, channel, message_ts = view["private_metadata"].split(":", 2)
            question_id = int(raw_id)
        except ValueError:
            return
        values = view.get("state", {}).get("values", {})
        reason = (values.get(kit.REASON_BLOCK, {}).get(kit.REASON_ACTION, {}) or {}).get("value")
        user = body["user"]["id"]
        if reason and reason.strip():
            self.store.set_reason(question_id, user, reason.strip())
        if channel:
            self._tell_privately(channel, user, kit.vote_ack("down", None), message_ts or None)


def build_app(deps: BotDeps, *, socket_mode: bool = False) -> App:
    """The Bolt app; `socket_mode` drops request signing, which Socket Mode does not use."""
    settings = deps.settings
    secret = settings.slack_signing_secret
    app = App(
        client=deps.client,
        signing_secret=secret.get_secret_value() if secret else None,
        request_verification_enabled=not socket_mode,
        process_before_response=True,
        logger=logging.getLogger("docsbot.slack"),
    )
    on = Listeners(deps)
    assistant = Assistant()
    assistant.thread_started(on.on_thread_started)
    assistant.thread_context_changed(lambda: None)  # docsbot answers from the docs, not the page
    assistant.user_message(on.on_assistant_message)
    app.use(assistant)
    app.event("app_mention")(on.on_mention)
    app.event("message")(on.on_message)
    app.command(settings.slack_command)(on.on_command)
    app.action(kit.FEEDBACK_UP)(on.on_vote)
    app.action(kit.FEEDBACK_DOWN)(on.on_vote)
    app.view(kit.REASON_VIEW)(on.on_reason)
    if deps.home is not None:
        register_home(app, deps.home)
    return app
