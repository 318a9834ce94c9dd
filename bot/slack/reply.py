"""Putting one answer in front of the person who asked: a placeholder updated in place, a
stream into an assistant thread, or an ephemeral reply through a /ask response_url.

The model's stream is never held up by Slack: pieces only land in a buffer, and a pusher
thread sends the latest text when the budget has a token to spare (progress is the first thing
dropped when Slack is busy). The final answer always lands: over a placeholder or a stream if
Slack lets it, else as a new message (found again, not doubled, after a lost response), and it
is never replaced by the apology.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from bot.answer.types import Answer
from bot.queue.tables import Question
from bot.slack import blocks as kit
from bot.slack import text as words
from bot.slack.budget import Priority
from bot.slack.gate import SlackBusy, SlackGate, error_code
from bot.slack.mrkdwn import escape_stream
from config.logger import get_logger

log = get_logger(__name__)
PROGRESS_INTERVAL_S = 1.2  # Slack renders about one update per second per message
STATUS_REFRESH_S = 90.0  # Slack clears an assistant status after two minutes without a message
ThreadCallback = Callable[[str, str], None]
NOT_A_MEMBER = {"not_in_channel", "channel_not_found", "is_archived", "restricted_action"}
STREAM_OVER = {"message_not_in_streaming_state", "streaming_state_conflict", "message_not_found"}


class Reply:
    """The life of one answer message. `fail` is safe to call in any state."""

    def __init__(
        self,
        gate: SlackGate,
        question: Question,
        *,
        streaming: bool,
        on_thread: ThreadCallback | None = None,
        status_refresh_s: float = STATUS_REFRESH_S,
    ) -> None:
        self.gate = gate
        self.client = gate.client
        self.q = question
        self.team = question.team_id or ""
        self.streaming = streaming and question.kind == "assistant"
        self.on_thread = on_thread
        self.channel = question.channel_id
        self.thread_ts = question.thread_ts
        self.ts: str | None = question.answer_ts  # a retried question updates its old message
        self.stream_ts: str | None = None
        self.ephemeral = False
        self.delivered = False
        self.status_refresh_s = status_refresh_s
        self.asked_by = (
            kit.asked_by_line(question.user_id, question.text)
            if question.kind == "command"
            else None
        )
        self._text = ""
        self._sent = 0  # characters of _text already in the stream
        self._changed = threading.Event()
        self._done = threading.Event()
        self._pusher: threading.Thread | None = None
        self._status: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- start -------------------------------------------------------------------------------

    def start(self) -> str | None:
        """Show that work has begun; returns the message ts to remember, if one was posted."""
        if self.q.kind == "assistant":
            self._start_status()
            return None
        if self.ts is not None:
            return None
        if self.q.kind == "command":
            return self._start_command()
        self.ts = self.gate.post_once(
            question_id=self.q.id,
            part="placeholder",
            channel=self.channel,
            thread_ts=self.thread_ts,
            team=self.team,
            text=words.THINKING,
        )
        return self.ts

    def _start_command(self) -> str | None:
        head = [kit.context(self.asked_by or ""), kit.section(words.THINKING)]
        try:
            ts = self.gate.post_once(
                question_id=self.q.id,
                part="placeholder",
                channel=self.channel,
                thread_ts=None,
                team=self.team,
                text=words.THINKING,
                blocks=head,
            )
        except SlackApiError as error:
            if error_code(error) not in NOT_A_MEMBER or not self.q.response_url:
                raise
            # Not a member of this channel (or a DM between two people): only the asker can
            # be answered, through the command's response_url.
            self.ephemeral = True
            self._respond({"response_type": "ephemeral", "text": words.THINKING})
            return None
        self.ts = self.thread_ts = ts
        if self.on_thread:
            self.on_thread(self.channel, ts)
        return ts

    def _start_status(self) -> None:
        self._set_status(words.STATUS)

        def refresh() -> None:
            while not self._done.wait(self.status_refresh_s):
                self._set_status(words.STATUS)

        self._status = threading.Thread(target=refresh, name=f"status-{self.q.id}", daemon=True)
        self._status.start()

    # -- progress ----------------------------------------------------------------------------

    def delta(self, piece: str) -> None:
        """A piece of the answer as the model writes it: buffered, never sent from here."""
        with self._lock:
            self._text += piece
            if self._pusher is None and not self._done.is_set():
                self._pusher = threading.Thread(
                    target=self._push_loop, name=f"progress-{self.q.id}", daemon=True
                )
                self._pusher.start()
        self._changed.set()

    def _push_loop(self) -> None:
        while not self._done.is_set():
            self._changed.wait()
            if self._done.is_set():
                return
            self._changed.clear()
            with self._lock:
                so_far = self._text
            try:
                self._push(so_far)
            except Exception as error:  # progress is a courtesy: the final answer still lands
                log.warning("question %s: progress update failed: %s", self.q.id, error_code(error))
            self._done.wait(PROGRESS_INTERVAL_S)

    def _push(self, so_far: str) -> None:
        if self.streaming:
            self._stream(so_far)
        elif self.ts is not None and not self.ephemeral:
            partial = kit.partial_mrkdwn(so_far)
            self.gate.call(
                "chat.update",
                lambda: self.client.chat_update(
                    channel=self.channel,
                    ts=self.ts or "",
                    text=partial,
                    blocks=[*self._head(), kit.section(partial or "…")],
                ),
                priority=Priority.PROGRESS,
                team=self.team,
            )

    def _stream(self, so_far: str) -> None:
        if self.stream_ts is None:
            try:
                response = self.gate.call(
                    "chat.startStream",
                    lambda: self.client.chat_startStream(
                        channel=self.channel,
                        thread_ts=self.thread_ts or "",
                        recipient_team_id=self.team or None,
                        recipient_user_id=self.q.user_id,
                        markdown_text=escape_stream(so_far),
                    ),
                    priority=Priority.PROGRESS,
                    team=self.team,
                )
            except SlackApiError as error:
                log.info("question %s: streaming unavailable (%s)", self.q.id, error_code(error))
                self.streaming = False
                return
            if response is not None:
                self.stream_ts = str(response["ts"])
                self._sent = len(so_far)
            return
        if len(so_far) <= self._sent:
            return
        piece = so_far[self._sent :]
        try:
            sent = self.gate.call(
                "chat.appendStream",
                lambda: self.client.chat_appendStream(
                    channel=self.channel,
                    ts=self.stream_ts or "",
                    markdown_text=escape_stream(piece),
                ),
                priority=Priority.PROGRESS,
                team=self.team,
            )
        except SlackApiError as error:
            if error_code(error) in STREAM_OVER:
                # Slack ended the stream on its own (it does after a few minutes): the final
                # answer replaces it.
                log.info("question %s: the stream ended early (%s)", self.q.id, error_code(error))
                self.streaming = False
                return
            raise
        if sent is not None:
            self._sent = len(so_far)

    def _stop_progress(self) -> None:
        self._done.set()
        self._changed.set()
        for thread in (self._pusher, self._status):
            if thread is not None and thread is not threading.current_thread():
                thread.join(30)

    # -- end ---------------------------------------------------------------------------------

    def finish(self, answer: Answer) -> str | None:
        """Show the final answer; returns the ts of the message carrying the 👍/👎. Raises
        SlackBusy when Slack rate-limits it for longer than the gate's patience."""
        self._stop_progress()
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
            self.delivered = True
            return None
        self._end_stream()
        last = self._put(messages, part="answer")
        self.delivered = True
        return last

    def _end_stream(self) -> None:
        """Close the stream; the final rendering then replaces the streamed text."""
        if self.stream_ts is None:
            return
        ts, self.stream_ts = self.stream_ts, None
        try:
            self.gate.call(
                "chat.stopStream",
                lambda: self.client.chat_stopStream(channel=self.channel, ts=ts),
                priority=Priority.FINAL,
                team=self.team,
            )
        except SlackBusy:
            raise
        except Exception as error:  # expired, or Slack failed: chat.update or a new post
            log.info("question %s: could not stop the stream (%s)", self.q.id, error_code(error))
        self.ts = ts

    def fail(self, text: str) -> None:
        """Tell the person, briefly, unless the answer already reached them; what went wrong
        is in the logs, never in Slack."""
        if self.delivered:
            return
        self._stop_progress()
        try:
            if self.ephemeral:
                self._respond(
                    {"replace_original": True, "response_type": "ephemeral", "text": text}
                )
                return
            self._end_stream()
            self._put([[*self._head(), kit.section(text)]], part="apology")
        except Exception as error:  # Slack unreachable: the row is still marked failed
            log.error("question %s: could not post the apology: %s", self.q.id, error_code(error))

    def notice(self, text: str) -> None:
        """A word on the placeholder while the answer waits (Slack rate-limiting us)."""
        if self.ts is None or self.ephemeral:
            return
        try:
            self.gate.call(
                "chat.update",
                lambda: self.client.chat_update(
                    channel=self.channel,
                    ts=self.ts or "",
                    text=text,
                    blocks=[*self._head(), kit.section(text)],
                ),
                priority=Priority.NOTICE,
                team=self.team,
            )
        except Exception as error:
            log.info("question %s: could not update the placeholder: %s", self.q.id, error)

    def _put(self, messages: Sequence[list[kit.Block]], *, part: str) -> str:
        """The first message over the placeholder (or stream) when Slack lets it, else posted
        anew; the rest posted after it. Each post is tagged, so a retry finds what landed."""
        last: str | None = None
        stale: str | None = None
        for i, message in enumerate(messages):
            text = kit.fallback_text(message)
            if i == 0 and self.ts is not None:
                if self._update(message, text):
                    last = self.ts
                    continue
                stale, self.ts = self.ts, None
            last = self.gate.post_once(
                question_id=self.q.id,
                part=f"{part}-{i}",
                channel=self.channel,
                thread_ts=self.thread_ts,
                team=self.team,
                text=text,
                blocks=message,
            )
            self.ts = self.ts or last
        if stale is not None:
            self._discard(stale)
        assert last is not None
        return last

    def _discard(self, ts: str) -> None:
        """The placeholder the answer could not replace: gone, or it would say "Searching…"
        above the answer forever."""
        try:
            self.gate.call(
                "chat.delete",
                lambda: self.client.chat_delete(channel=self.channel, ts=ts),
                priority=Priority.NOTICE,
                team=self.team,
            )
        except Exception as error:
            log.info(
                "question %s: could not remove message %s: %s", self.q.id, ts, error_code(error)
            )

    def _update(self, message: list[kit.Block], text: str) -> bool:
        try:
            self.gate.call(
                "chat.update",
                lambda: self.client.chat_update(
                    channel=self.channel, ts=self.ts or "", text=text, blocks=message
                ),
                priority=Priority.FINAL,
                team=self.team,
            )
            return True
        except SlackBusy:
            raise
        except Exception as error:
            # The message is gone, still streaming, or Slack failed after its retries: the
            # answer goes out as a new message rather than not at all.
            log.warning(
                "question %s: could not update message %s (%s); posting the answer anew",
                self.q.id,
                self.ts,
                error_code(error),
            )
            return False

    def _head(self) -> list[kit.Block]:
        return [kit.context(self.asked_by)] if self.asked_by else []

    def _set_status(self, status: str) -> None:
        self._assistant("set status", self.client.assistant_threads_setStatus, status=status)

    def set_title(self, title: str) -> None:
        self._assistant("set title", self.client.assistant_threads_setTitle, title=title)

    def _assistant(self, what: str, method: Callable[..., Any], **kwargs: str) -> None:
        """The assistant pane's status and title are courtesies: a refusal is only logged."""
        try:
            method(channel_id=self.channel, thread_ts=self.thread_ts or "", **kwargs)
        except Exception as error:
            log.warning("question %s: could not %s: %s", self.q.id, what, error_code(error))

    def _respond(self, body: dict[str, object]) -> None:
        assert self.q.response_url is not None
        response = WebhookClient(self.q.response_url, timeout=10).send_dict(body)
        if response.status_code >= 400:
            log.error("question %s: response_url answered %s", self.q.id, response.status_code)
