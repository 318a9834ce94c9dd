"""Every Slack call the bot makes after an ack passes through here: the shared budget first,
then the call, then what a 429 means for everyone else.

The WebClient itself retries what is safe to retry (5xx and dropped connections on methods
that change nothing twice: `retry_handlers`). A post (`chat.postMessage`) is never retried
blindly, since a post whose response was lost may have landed: `post_once` tags each post
with the question and the part it carries (message metadata) and looks for it in the channel
before posting again, so one question gives one answer message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web import SlackResponse

from bot.slack.budget import Priority, SlackBudget
from config.logger import get_logger

log = get_logger(__name__)
POSTS = ("chat.postMessage", "chat.startStream")  # not idempotent: see post_once
SERVER_ERRORS = (500, 502, 503, 504)
EVENT_TYPE = "docsbot_reply"
POST_ATTEMPTS = 3
LOOKUP_LIMIT = 50


class SlackBusy(RuntimeError):
    """Slack kept answering 429 for longer than the call could wait."""

    def __init__(self, method: str, retry_after_s: float) -> None:
        super().__init__(f"{method} rate-limited; retry after {retry_after_s:.0f} s")
        self.method = method
        self.retry_after_s = retry_after_s


def _method(request: HttpRequest) -> str:
    return request.url.rsplit("/", 1)[-1].split("?", 1)[0]


class _Idempotent(RetryHandler):
    """Retries only methods for which a second call changes nothing more than the first."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return _method(request) not in POSTS and super()._can_retry(
            state=state, request=request, response=response, error=error
        )


class IdempotentServerErrors(_Idempotent, ServerErrorRetryHandler):
    def _can_retry(self, **kwargs: Any) -> bool:
        response = kwargs.get("response")
        if response is not None and response.status_code in SERVER_ERRORS:
            return _method(kwargs["request"]) not in POSTS
        return False


class IdempotentConnectionErrors(_Idempotent, ConnectionErrorRetryHandler):
    pass


def retry_handlers() -> list[RetryHandler]:
    """What the WebClient retries by itself, with backoff: 5xx and dropped or timed-out
    connections, on idempotent methods. 429s are the gate's (the budget must hear of them)."""
    errors: list[type[Exception]] = [ConnectionResetError, TimeoutError, ConnectionError]
    from urllib.error import URLError

    return [
        IdempotentServerErrors(max_retry_count=2),
        IdempotentConnectionErrors(max_retry_count=2, error_types=[URLError, *errors]),
    ]


def retry_after(error: SlackApiError) -> float | None:
    """Seconds Slack asked to wait, for a 429; None for anything else."""
    response = error.response
    if getattr(response, "status_code", None) != 429:
        return None
    headers = {k.lower(): v for k, v in (response.headers or {}).items()}
    value = headers.get("retry-after")
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        return max(1.0, float(value)) if value is not None else 1.0
    except ValueError:
        return 1.0


def error_code(error: Exception) -> str:
    if isinstance(error, SlackApiError):
        data = error.response.data if isinstance(error.response.data, dict) else {}
        return str(data.get("error") or f"http_{error.response.status_code}")
    return type(error).__name__


def transient(error: Exception) -> bool:
    """A failure that says nothing about the request itself: try again, or differently."""
    if isinstance(error, SlackApiError):
        return error.response.status_code in SERVER_ERRORS or error_code(error) in (
            "internal_error",
            "fatal_error",
            "service_unavailable",
            "request_timeout",
        )
    return isinstance(error, (TimeoutError, ConnectionError, OSError))


class SlackGate:
    def __init__(self, client: WebClient, budget: SlackBudget, *, patience_s: float = 60.0):
        """`patience_s`: how long a final answer waits out rate limits before it is handed
        back to the queue (the question is answered later, not failed)."""
        self.client = client
        self.budget = budget
        self.patience_s = patience_s

    def call(
        self,
        method: str,
        call: Callable[[], SlackResponse],
        *,
        priority: Priority,
        team: str = "",
        channel: str = "",
    ) -> SlackResponse | None:
        """Make one call within the budget. PROGRESS calls return None when there is no
        budget or Slack said 429; others wait (NOTICE briefly, FINAL up to `patience_s`) and
        raise SlackBusy once that is spent. Other errors propagate."""
        patience = {Priority.PROGRESS: 0.0, Priority.NOTICE: 5.0}.get(priority, self.patience_s)
        deadline = time.monotonic() + patience
        waited = 0.0
        while True:
            left = max(0.0, deadline - time.monotonic())
            if not self.budget.take(
                method, team=team, channel=channel, priority=priority, wait_s=left
            ):
                if priority is Priority.PROGRESS:
                    return None
                raise SlackBusy(method, max(waited, 1.0))
            try:
                return call()
            except SlackApiError as error:
                after = retry_after(error)
                if after is None:
                    raise
                waited = after
                self.budget.rate_limited(method, after, team=team, channel=channel)
                log.warning("Slack rate-limited %s: waiting %.0f s", method, after)
                if priority is Priority.PROGRESS:
                    return None

    def post_once(
        self,
        *,
        question_id: int,
        part: str,
        channel: str,
        thread_ts: str | None,
        team: str = "",
        priority: Priority = Priority.FINAL,
        **arguments: Any,
    ) -> str:
        """Post a message carrying `part` of question `question_id`'s reply and return its ts.
        After a timeout or a server error the channel is searched for the tagged message
        before posting again: a post Slack received but could not confirm is not doubled."""
        metadata = {
            "event_type": EVENT_TYPE,
            "event_payload": {"question_id": question_id, "part": part},
        }
        failure: Exception | None = None
        for attempt in range(POST_ATTEMPTS):
            if attempt:
                found = self.find(question_id, part, channel, thread_ts, team=team)
                if found:
                    log.info("question %s: the %s post had landed (%s)", question_id, part, found)
                    return found
                time.sleep(min(2.0**attempt, 8.0))
            try:
                response = self.call(
                    "chat.postMessage",
                    lambda: self.client.chat_postMessage(
                        channel=channel, thread_ts=thread_ts, metadata=metadata, **arguments
                    ),
                    priority=priority,
                    team=team,
                    channel=channel,
                )
            except SlackBusy:
                raise
            except Exception as error:
                if not transient(error):
                    raise
                failure = error
                log.warning(
                    "question %s: posting the %s failed (%s); checking whether it landed",
                    question_id,
                    part,
                    error_code(error),
                )
                continue
            assert response is not None  # only PROGRESS calls come back empty
            return str(response["ts"])
        assert failure is not None
        raise failure

    def find(
        self, question_id: int, part: str, channel: str, thread_ts: str | None, *, team: str = ""
    ) -> str | None:
        """The ts of the bot's post of `part` for the question, if Slack has it."""
        try:
            if thread_ts:
                response = self.call(
                    "conversations.replies",
                    lambda: self.client.conversations_replies(
                        channel=channel, ts=thread_ts, include_all_metadata=True, limit=200
                    ),
                    priority=Priority.FINAL,
                    team=team,
                )
            else:
                response = self.call(
                    "conversations.history",
                    lambda: self.client.conversations_history(
                        channel=channel, include_all_metadata=True, limit=LOOKUP_LIMIT
                    ),
                    priority=Priority.FINAL,
                    team=team,
                )
        except Exception as error:
            log.warning("question %s: could not look for its post: %s", question_id, error)
            return None
        messages = response.get("messages") if response is not None else None
        for message in messages or []:
            meta = message.get("metadata") or {}
            payload = meta.get("event_payload") or {}
            if (
                meta.get("event_type") == EVENT_TYPE
                and payload.get("question_id") == question_id
                and payload.get("part") == part
            ):
                return str(message["ts"])
        return None
