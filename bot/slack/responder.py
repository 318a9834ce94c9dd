"""Answering one queued question, start to finish: the worker pool's job."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from pymilvus.exceptions import MilvusException
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from bot.answer.condense import standalone_question
from bot.answer.llm import LLMError
from bot.answer.pipeline import Answerer
from bot.answer.rerankers.http import RerankerUnavailable
from bot.answer.types import Answer, Turn
from bot.ops.logs import answering
from bot.ops.metrics import Metrics
from bot.queue.store import QuestionStore
from bot.queue.tables import Question, as_utc, utcnow
from bot.slack import blocks as kit
from bot.slack import text as words
from bot.slack.budget import Priority
from bot.slack.gate import SlackBusy, SlackGate, error_code
from bot.slack.mrkdwn import from_slack
from bot.slack.private import offer_private_answer
from bot.slack.reply import Reply
from bot.slack.scope import BETTER_BY, Scopes
from config.logger import get_logger
from config.settings import Settings
from indexer.errors import EmbedderUnavailable

log = get_logger(__name__)
THREAD_CONTEXT_MESSAGES = 10
THREAD_PAGES = 5


class Responder:
    def __init__(
        self,
        settings: Settings,
        store: QuestionStore,
        answerer: Answerer,
        gate: SlackGate,
        models: dict[str, str],
        metrics: Metrics | None = None,
        scopes: Scopes | None = None,
    ) -> None:
        self.scopes = scopes or Scopes(settings, gate)
        self.metrics = metrics
        self.settings = settings
        self.store = store
        self.answerer = answerer
        self.gate = gate
        self.client = gate.client
        self.models = models

    def __call__(self, question_id: int) -> None:
        with answering(question_id):  # every log line below names the question
            self._answer(question_id)

    def _answer(self, question_id: int) -> None:
        question = self.store.get(question_id)
        reply = Reply(
            self.gate,
            question,
            streaming=self.settings.slack_streaming == "auto",
            on_thread=lambda channel, ts: self.store.attach_thread(question_id, channel, ts),
        )
        age = utcnow() - as_utc(question.created_at)
        if age > timedelta(seconds=self.settings.question_max_age_s):
            log.warning(
                "question %s: %.0f s old after a restart; apologising",
                question_id,
                age.total_seconds(),
            )
            reply.fail(words.EXPIRED)
            self.store.fail(question_id, "expired")
            if self.metrics:
                self.metrics.failed("expired")
            return
        started = time.perf_counter()
        answer: Answer | None = None
        query = question.text
        sets: list[str] = []
        try:
            if ts := reply.start():
                self.store.set_answer_ts(question_id, ts)
            question = self.store.get(question_id)  # /ask has a thread now
            # Only the doc sets searchable where it was asked: nothing from another set
            # reaches the search, the prompt, the answer or its sources.
            sets = self.scopes.sets_for(question)
            if question.pending_answer is not None:  # written before Slack slowed us down
                query = str(question.pending_answer.get("search_query") or question.text)
                answer = Answer.from_json(question.text, question.pending_answer)
            else:
                answer, query = self._write(question, reply, sets)
            ts = reply.finish(answer)
            if ts:
                self.store.set_answer_ts(question_id, ts)
            answer.timings["total"] = answer.timings.get("total", 0.0) + (
                time.perf_counter() - started
            )
            self.store.finish(
                question_id, answer, search_query=query, models=self.models, doc_sets=sets
            )
            self._offer_private(question, query, sets)
            if self.metrics:
                self.metrics.answered(answer)
            log.info(
                "question %s answered (%s, %.1f s)",
                question_id,
                answer.mode,
                answer.timings["total"],
            )
        except SlackBusy as busy:
            # Not a failure: the answer (or the question, if none was written yet) waits in
            # the queue and goes out once Slack accepts calls again.
            log.warning("question %s: %s; delivering later", question_id, busy)
            if answer is not None:
                answer.timings["total"] = time.perf_counter() - started
                reply.notice(words.SLACK_SLOW)
            self.store.defer(question_id, busy.retry_after_s, answer, search_query=query)
        except LLMError as error:
            log.error("question %s: the LLM failed: %s", question_id, error)
            self._fail(reply, question_id, error.reason)
        except EmbedderUnavailable as error:
            log.error("question %s: the embedder failed: %s", question_id, error)
            self._fail(reply, question_id, "embedder_unavailable")
        except RerankerUnavailable as error:
            log.error("question %s: the reranker failed: %s", question_id, error)
            self._fail(reply, question_id, "reranker_unavailable")
        except MilvusException as error:
            log.error("question %s: the index failed: %s", question_id, error)
            self._fail(reply, question_id, "index_unavailable")
        except SlackApiError as error:
            log.error("question %s: Slack refused: %s", question_id, error_code(error))
            self._fail(reply, question_id, "slack_error")
        except Exception:
            log.exception("question %s: could not be answered", question_id)
            self._fail(reply, question_id, "internal_error")

    def _write(self, question: Question, reply: Reply, sets: list[str]) -> tuple[Answer, str]:
        """The answer and the search query it came from."""
        history = self.store.history(question, self.settings.history_turns)
        if not history:
            history = self.thread_context(question)
        if question.kind == "assistant" and not history:
            reply.set_title(kit.thread_title(question.text))
        deadline = time.monotonic() + self.settings.answer_deadline_s
        condense_started = time.perf_counter()
        query = standalone_question(self.answerer.llm, history, question.text, deadline=deadline)
        condense_s = time.perf_counter() - condense_started
        answer = self.answerer.answer(
            question.text,
            history,
            on_delta=reply.delta if self.answerer.llm else None,
            search_query=query,
            deadline=deadline,
            sets=sets,
        )
        answer.timings = {"condense": condense_s, **answer.timings}
        return answer, query

    def _offer_private(self, question: Question, query: str, searched: list[str]) -> None:
        """Sets the asker may read in a DM (but this place may not) hold a clearly better
        match: tell the asker alone, with a button for that answer in a DM. Nothing of those
        docs is shown here, not even a title."""
        extra = self.scopes.extra_private_sets(question, searched)
        if not extra or self.scopes.place(question).private:
            return
        try:
            retriever = self.answerer.retriever
            vector = retriever.embedder.embed_query(query)
            here = retriever.store.search_dense(vector, 1, searched)
            there = retriever.store.search_dense(vector, 1, extra)
        except Exception as error:  # a courtesy: the answer is already there
            log.warning("question %s: could not compare with private docs: %s", question.id, error)
            return
        best_here = here[0].score if here else 0.0
        if not there or there[0].score < best_here + BETTER_BY:
            return
        log.info(
            "question %s: offering %s an answer from private docs", question.id, question.user_id
        )
        offer_private_answer(self.gate, question)

    def thread_context(self, question: Question) -> list[Turn]:
        """A mention in a thread people were already having: what they said before it is
        what "this" and "that error" refer to."""
        if question.kind != "mention" or question.thread_ts in (None, question.message_ts):
            return []
        before = float(question.message_ts or "inf")
        messages: list[dict[str, Any]] = []
        cursor = None
        try:
            for _ in range(THREAD_PAGES):  # replies come oldest first: page up to the mention

                def read(cursor: str | None = cursor) -> SlackResponse:
                    return self.client.conversations_replies(
                        channel=question.channel_id,
                        ts=question.thread_ts or "",
                        latest=question.message_ts,
                        limit=200,
                        cursor=cursor,
                    )

                page = self.gate.call(
                    "conversations.replies", read, priority=Priority.NOTICE, team=question.team_id
                )
                assert page is not None
                messages += page.get("messages") or []
                cursor = (page.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    break
        except (SlackApiError, SlackBusy) as error:
            code = error_code(error)
            log.warning("question %s: could not read the thread: %s", question.id, code)
            return []
        earlier = [
            f"{m.get('user', 'someone')}: {from_slack(m['text'])}"
            for m in messages
            if m.get("text") and not m.get("bot_id") and float(m.get("ts", "inf")) < before
        ][-THREAD_CONTEXT_MESSAGES:]
        if not earlier:
            return []
        return [Turn("user", "Earlier in this Slack thread:\n" + "\n".join(earlier))]

    def _fail(self, reply: Reply, question_id: int, error: str) -> None:
        if reply.delivered:  # the person has the answer; only recording it failed (logged)
            log.error("question %s: answered, but recording it failed (%s)", question_id, error)
            return
        reply.fail(words.APOLOGY)  # never raises: the row below is what must not be lost
        self.store.fail(question_id, error)
        if self.metrics:
            self.metrics.failed(error)
