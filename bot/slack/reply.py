"""Putting one answer in front of the person who asked: a placeholder updated in place, a
stream into an assistant thread, or an ephemeral reply through a /ask response_url."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from bot.answer.types import Answer
from bot.queue.tables import Question
from bot.slack import blocks as kit
from bot.slack import text as words
from bot.slack.mrkdwn import escape_stream
from config.logger import get_logger

log = get_logger(__name__)
PROGRESS_INTERVAL_S = 1.2  # Slack allows about one update per second per message
ThreadCallback = Callable[[str, str], None]
NOT_A_MEMBER = {"not_in_channel", "channel_not_found", "is_archived", "restricted_action"}


class Reply:
    """The life of one answer message. Each method is safe to call in any state, so the
    worker can always reach `fail` whatever went wrong before."""

    def __init__(
        self,
        client: WebClient,
        question: Question,
        *,
        streaming: bool,
        on_thread: ThreadCallback | None = None,
    ) -> None:
        self.client = client
        self.q = question
        self.streaming = streaming and question.kind == "assistant"
        self.on_thread = on_thread
        self.channel = question.channel_id
        self.thread_ts = question.thread_ts
        self.ts: str | None = question.answer_ts  # a retried question updates its old message
        self.stream_ts: str | None = None
        self.ephemeral = False
        self.asked_by = (
            kit.asked_by_line(question.user_id, question.text)
            if question.kind == "command"
            else None
        )
        self._streamed: list[str] = []
        self._last_push = 0.0
        self._sent = 0
        self._lock = threading.Lock()

    # -- start -------------------------------------------------------------------------------

    def start(self) -> str | None:
        """Show that work has begun; returns the message ts to remember, if one was posted."""
        if self.q.kind == "assistant":
            self._status(words.THINKING.removeprefix(":mag: "))
            return None
        if self.ts is not None:
            return None
        if self.q.kind == "command":
            return self._start_command()
        response = self.client.chat_postMessage(
            channel=self.channel, thread_ts=self.thread_ts, text=words.THINKING
        )
        self.ts = str(response["ts"])
        return self.ts

    def _start_command(self) -> str | None:
        head = [kit.context(self.asked_by or ""), kit.section(words.THINKING)]
        try:
            response = self.client.chat_postMessage(
                channel=self.channel, text=words.THINKING, blocks=head
            )
        except SlackApiError as error:
            if error.response.get("error") not in NOT_A_MEMBER or not self.q.response_url:
                raise
            # Not a member of this channel (or a DM between two people): only the asker can
            # be answered, through the command's response_url.
            self.ephemeral = True
            self._respond({"response_type": "ephemeral", "text": words.THINKING})
            return None
        self.ts = self.thread_ts = str(response["ts"])
        if self.on_thread:
            self.on_thread(self.channel, self.ts)
        return self.ts

    # -- progress ----------------------------------------------------------------------------

    def delta(self, piece: str) -> None:
        """A piece of the answer as the model writes it; pushed to Slack at most every
        PROGRESS_INTERVAL_S so a fast model cannot run into rate limits."""
        with self._lock:
            self._streamed.append(piece)
            now = time.monotonic()
            if now - self._last_push < PROGRESS_INTERVAL_S:
                return
            self._last_push = now
            so_far = "".join(self._streamed)
        try:
            if self.streaming:
                self._stream(so_far)
            elif self.ts is not None and not self.ephemeral:
                self.client.chat_update(
                    channel=self.channel,
                    ts=self.ts,
                    text=kit.partial_mrkdwn(so_far),
                    blocks=[*self._head(), kit.section(kit.partial_mrkdwn(so_far) or "…")],
                )
        except SlackApiError as error:  # progress is a courtesy: the final answer still lands
            log.warning("question %s: progress update failed: %s", self.q.id, _code(error))

    def _stream(self, so_far: str) -> None:
        sent = self._sent
        if self.stream_ts is None:
            try:
                response = self.client.chat_startStream(
                    channel=self.channel,
                    thread_ts=self.thread_ts or "",
                    recipient_team_id=self.q.team_id or None,
                    recipient_user_id=self.q.user_id,
                    markdown_text=escape_stream(so_far),
                )
            except SlackApiError as error:
                log.info("question %s: streaming unavailable (%s)", self.q.id, _code(error))
                self.streaming = False
                return
            self.stream_ts = str(response["ts"])
        elif len(so_far) > sent:
            self.client.chat_appendStream(
                channel=self.channel, ts=self.stream_ts, markdown_text=escape_stream(so_far[sent:])
            )
        self._sent = len(so_far)

    # -- end ---------------------------------------------------------------------------------

    def finish(self, answer: Answer) -> str | None:
        """Show the final answer; returns the ts of the message carrying the 👍/👎."""
        messages = kit.answer_messages(answer, self.q.id, asked_by=self.asked_by)
        if self.ephemeral:
            self._respond(
                {
                    "replace_original": True,
                    "response_type": "ephemeral",
                    "text": kit.fallback_text(messages[0]),
                    "blocks": [b for m in messages for b in m][: kit.MAX_BLOCKS],
                }
            )
            return None
        self._stop_stream()  # the streamed text is then replaced by the final rendering
        return self._put(messages)

    def _stop_stream(self) -> None:
        if self.stream_ts is not None:
            ts, self.stream_ts = self.stream_ts, None
            self.ts = ts
            self.client.chat_stopStream(channel=self.channel, ts=ts)

    def fail(self, text: str) -> None:
        """Tell the person, briefly; what went wrong is in the logs, never in Slack."""
        try:
            if self.ephemeral:
                self._respond(
                    {"replace_original": True, "response_type": "ephemeral", "text": text}
                )
                return
            self._stop_stream()
            self._put([[*self._head(), kit.section(text)]], final=False)
        except SlackApiError as error:
            log.error("question %s: could not post the apology: %s", self.q.id, _code(error))
        except Exception as error:  # Slack unreachable: the row is still marked failed
            log.error("question %s: could not post the apology: %s", self.q.id, error)

    def _put(self, messages: Sequence[list[kit.Block]], *, final: bool = True) -> str | None:
        last_ts: str | None = None
        for i, message in enumerate(messages):
            text = kit.fallback_text(message)
            if i == 0 and self.ts is not None:
                self.client.chat_update(channel=self.channel, ts=self.ts, text=text, blocks=message)
                last_ts = self.ts
            else:
                response = self.client.chat_postMessage(
                    channel=self.channel, thread_ts=self.thread_ts, text=text, blocks=message
                )
                last_ts = str(response["ts"])
                self.ts = self.ts or last_ts
        return last_ts if final else None

    def _head(self) -> list[kit.Block]:
        return [kit.context(self.asked_by)] if self.asked_by else []

    def _status(self, status: str) -> None:
        self._assistant("set status", self.client.assistant_threads_setStatus, status=status)

    def set_title(self, title: str) -> None:
        self._assistant("set title", self.client.assistant_threads_setTitle, title=title)

    def _assistant(self, what: str, method: Callable[..., object], **kwargs: str) -> None:
        """The assistant pane's status and title are courtesies: a refusal is only logged."""
        try:
            method(channel_id=self.channel, thread_ts=self.thread_ts or "", **kwargs)
        except SlackApiError as error:
            log.warning("question %s: could not %s: %s", self.q.id, what, _code(error))

    def _respond(self, body: dict[str, object]) -> None:
        assert self.q.response_url is not None
        response = WebhookClient(self.q.response_url, timeout=10).send_dict(body)
        if response.status_code >= 400:
            log.error("question %s: response_url answered %s", self.q.id, response.status_code)


def _code(error: SlackApiError) -> str:
    return str(error.response.get("error", "unknown error"))
