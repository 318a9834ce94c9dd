"""The question queue and conversation memory in SQL: what listeners write before they ack,
what workers claim, and the votes people cast. Safe with several processes on one database."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
from enum import Enum
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.answer.types import Answer, Turn
from bot.queue.tables import Conversation, Feedback, Question, utcnow
from config.db import insert_if_absent
from config.logger import get_logger

log = get_logger(__name__)
REQUEUED: dict[str, Any] = {"status": "queued", "worker_id": None, "lease_until": None}


@dataclass(frozen=True)
class Incoming:
    """A question as a listener sees it, before anything is decided about it."""

    event_id: str
    kind: str
    team_id: str
    channel_id: str
    user_id: str
    text: str
    thread_ts: str | None  # the conversation's thread; None for /ask until the answer exists
    message_ts: str | None = None
    response_url: str | None = None


class Outcome(Enum):
    QUEUED = "queued"
    DUPLICATE = "duplicate"  # a Slack retry, or the same message seen through another event
    BUSY = "busy"


class QuestionStore:
    def __init__(self, sessions: sessionmaker[Session], *, max_queued: int = 100) -> None:
        self.sessions = sessions
        self.max_queued = max_queued

    # -- listeners ---------------------------------------------------------------------------

    def record(self, incoming: Incoming) -> tuple[Outcome, int | None]:
        """Write the question before the ack; the unique event id makes retries no-ops."""
        with self.sessions() as session:
            try:
                with session.begin():
                    conversation_id = None
                    if incoming.thread_ts is not None:
                        conversation_id = self._conversation(
                            session,
                            incoming.team_id,
                            incoming.channel_id,
                            incoming.thread_ts,
                            incoming.kind,
                        )
                    queued = session.scalar(select(func.count()).where(Question.status == "queued"))
                    busy = (queued or 0) >= self.max_queued
                    row = Question(
                        **{k: v for k, v in asdict(incoming).items()},
                        conversation_id=conversation_id,
                        status="failed" if busy else "queued",
                        error="busy" if busy else None,
                        finished_at=utcnow() if busy else None,
                        attempts=0,
                    )
                    session.add(row)
                    session.flush()
                    question_id = row.id
            except IntegrityError:
                return Outcome.DUPLICATE, None
        return (Outcome.BUSY if busy else Outcome.QUEUED), question_id

    def _conversation(
        self, session: Session, team_id: str, channel_id: str, thread_ts: str, kind: str
    ) -> int:
        key = (
            Conversation.team_id == team_id,
            Conversation.channel_id == channel_id,
            Conversation.thread_ts == thread_ts,
        )
        found = session.scalar(select(Conversation.id).where(*key))
        if found is not None:
            return found
        # Another listener may be creating the same thread at this moment.
        session.execute(
            insert_if_absent(
                session,
                Conversation,
                ["team_id", "channel_id", "thread_ts"],
                team_id=team_id,
                channel_id=channel_id,
                thread_ts=thread_ts,
                kind=kind,
                created_at=utcnow(),
            )
        )
        found = session.scalar(select(Conversation.id).where(*key))
        assert found is not None
        return found

    def thread_kind(self, team_id: str, channel_id: str, thread_ts: str) -> str | None:
        """How the bot came into this thread (mention, dm, …), or None if it never answered
        there."""
        with self.sessions() as session:
            return session.scalar(
                select(Conversation.kind).where(
                    Conversation.team_id == team_id,
                    Conversation.channel_id == channel_id,
                    Conversation.thread_ts == thread_ts,
                )
            )

    # -- workers -----------------------------------------------------------------------------

    def claim(self, worker_id: str, limit: int, lease_s: float) -> list[int]:
        """Take up to `limit` questions: queued ones, or running ones whose worker stopped
        renewing its lease (a crash). The conditional UPDATE makes a claim exclusive."""
        now = utcnow()
        claimable = or_(
            and_(
                Question.status == "queued",
                or_(Question.not_before.is_(None), Question.not_before <= now),
            ),
            and_(Question.status == "running", Question.lease_until < now),
        )
        claimed: list[int] = []
        with self.sessions.begin() as session:
            query = select(Question.id).where(claimable).order_by(Question.id).limit(limit)
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            for question_id in session.scalars(query).all():
                result = session.execute(
                    update(Question)
                    .where(Question.id == question_id, claimable)
                    .values(
                        status="running",
                        worker_id=worker_id,
                        lease_until=now + timedelta(seconds=lease_s),
                        started_at=now,
                        attempts=Question.attempts + 1,
                    )
                )
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    claimed.append(question_id)
        return claimed

    def renew(self, worker_id: str, question_ids: list[int], lease_s: float) -> None:
        if not question_ids:
            return
        self._set(
            Question.id.in_(question_ids),
            Question.worker_id == worker_id,
            Question.status == "running",
            lease_until=utcnow() + timedelta(seconds=lease_s),
        )

    def release(self, worker_id: str) -> int:
        """Put back what a stopping worker holds but did not finish, for the next one."""
        return self._set(Question.worker_id == worker_id, Question.status == "running", **REQUEUED)

    def release_dead(self, host: str, gone: Callable[[str], bool]) -> int:
        """Questions claimed by processes on this host that no longer run (a crash, or the
        container restarted): put them back now rather than when their leases run out.
        `gone(worker_id)` decides (indexer.lease.holder_gone)."""
        with self.sessions() as session:
            rows = session.execute(
                select(Question.id, Question.worker_id).where(
                    Question.status == "running", Question.worker_id.like(f"{host}:%")
                )
            ).all()
        dead = [question_id for question_id, worker_id in rows if gone(str(worker_id))]
        if dead:
            self._set(Question.id.in_(dead), Question.status == "running", **REQUEUED)
        return len(dead)

    def get(self, question_id: int) -> Question:
        with self.sessions() as session:
            row = session.get(Question, question_id)
            if row is None:
                raise LookupError(f"question {question_id} does not exist")
            return row

    def history(self, question: Question, turns: int) -> list[Turn]:
        """The conversation so far, oldest first: earlier questions and the answers given."""
        if question.conversation_id is None or turns <= 0:
            return []
        with self.sessions() as session:
            earlier = session.scalars(
                select(Question)
                .where(
                    Question.conversation_id == question.conversation_id,
                    Question.id < question.id,
                    Question.status == "answered",
                )
                .order_by(Question.id.desc())
                .limit((turns + 1) // 2)
            ).all()
        history: list[Turn] = []
        for row in reversed(earlier):
            history.append(Turn("user", row.text))
            history.append(Turn("assistant", row.answer_text or ""))
        return history[-turns:]

    def attach_thread(self, question_id: int, channel_id: str, thread_ts: str) -> None:
        """/ask: the answer's message starts the conversation, so follow-ups in its thread
        have the question as history."""
        with self.sessions.begin() as session:
            question = session.get(Question, question_id)
            assert question is not None
            conversation_id = self._conversation(
                session, question.team_id, channel_id, thread_ts, question.kind
            )
            question.conversation_id = conversation_id
            question.thread_ts = thread_ts

    def set_answer_ts(self, question_id: int, answer_ts: str) -> None:
        self._set(Question.id == question_id, answer_ts=answer_ts)

    def finish(
        self,
        question_id: int,
        answer: Answer,
        *,
        search_query: str,
        models: dict[str, str],
        doc_sets: list[str] | None = None,
    ) -> None:
        data = answer.as_json()
        self._set(
            Question.id == question_id,
            doc_sets=doc_sets,
            status="answered",
            answer_text=answer.text,
            answer_mode=answer.mode,
            best_score=answer.best_score,
            citations=data["citations"],
            timings=data["timings"],
            models=models,
            search_query=search_query,
            finished_at=utcnow(),
            lease_until=None,
            not_before=None,
            pending_answer=None,
        )

    def defer(
        self, question_id: int, delay_s: float, answer: Answer | None, *, search_query: str
    ) -> None:
        """Slack rate-limited the delivery: back to the queue until `delay_s` from now, with the
        answer (when there is one) kept to be delivered as it is."""
        pending = {**answer.as_json(), "search_query": search_query} if answer else None
        self._set(
            Question.id == question_id,
            status="queued",
            worker_id=None,
            lease_until=None,
            not_before=utcnow() + timedelta(seconds=delay_s),
            pending_answer=pending,
        )

    def fail(self, question_id: int, error: str, timings: dict[str, float] | None = None) -> None:
        self._set(
            Question.id == question_id,
            status="failed",
            error=error,
            timings=timings,
            finished_at=utcnow(),
            lease_until=None,
        )

    def _set(self, *where: ColumnElement[bool], **values: Any) -> int:
        """One UPDATE of the matching questions in its own transaction; returns the count."""
        with self.sessions.begin() as session:
            result = session.execute(update(Question).where(*where).values(**values))
            return int(result.rowcount)  # type: ignore[attr-defined]

    # -- feedback ----------------------------------------------------------------------------

    def vote(self, question_id: int, user_id: str, rating: str) -> str | None:
        """Record a 👍/👎; returns the voter's previous rating (None for a first vote)."""
        for _ in range(2):  # a double click can race its own insert
            try:
                with self.sessions.begin() as session:
                    row = session.scalar(
                        select(Feedback).where(
                            Feedback.question_id == question_id, Feedback.user_id == user_id
                        )
                    )
                    if row is None:
                        session.add(
                            Feedback(question_id=question_id, user_id=user_id, rating=rating)
                        )
                        return None
                    previous = row.rating
                    if previous != rating:
                        row.rating, row.reason, row.updated_at = rating, None, utcnow()
                    return previous
            except IntegrityError:
                continue
        raise RuntimeError("could not record the vote")

    def set_reason(self, question_id: int, user_id: str, reason: str) -> bool:
        with self.sessions.begin() as session:
            result = session.execute(
                update(Feedback)
                .where(Feedback.question_id == question_id, Feedback.user_id == user_id)
                .values(reason=reason[:2000], updated_at=utcnow())
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def find(self, question_id: int) -> Question | None:
        with self.sessions() as session:
            return session.get(Question, question_id)

    def queued(self) -> int:
        with self.sessions() as session:
            return int(session.scalar(select(func.count()).where(Question.status == "queued")) or 0)
