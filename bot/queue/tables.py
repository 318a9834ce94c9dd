"""What the bot remembers: conversations (Slack threads), the questions asked in them with
their answers, and the 👍/👎 people gave. A question row is also the worker's unit of work."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from config.db import Base
from indexer.tables import as_utc, utcnow

__all__ = ["Conversation", "Feedback", "Question", "as_utc", "utcnow"]


class Conversation(Base):
    """A Slack thread (or a DM without threads: thread_ts "") the bot has answered in."""

    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("team_id", "channel_id", "thread_ts", name="uq_conversation_thread"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32), default="")
    channel_id: Mapped[str] = mapped_column(String(32))
    thread_ts: Mapped[str] = mapped_column(String(32), default="")
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    questions: Mapped[list[Question]] = relationship(
        back_populates="conversation", order_by="Question.id"
    )


class Question(Base):
    """One message exchange: what was asked, and the answer given (or why none was)."""

    __tablename__ = "questions"
    __table_args__ = (
        # Slack sends a mention as both `app_mention` and `message`: one answer per message.
        UniqueConstraint("channel_id", "message_ts", name="uq_question_message"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Slack retries an event with the same id when an ack is slow: one row, one answer.
    event_id: Mapped[str] = mapped_column(String(128), unique=True)
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    team_id: Mapped[str] = mapped_column(String(32), default="")
    channel_id: Mapped[str] = mapped_column(String(32))
    thread_ts: Mapped[str | None] = mapped_column(String(32))
    message_ts: Mapped[str | None] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(32))
    response_url: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    search_query: Mapped[str | None] = mapped_column(Text)

    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    error: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker_id: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Slack rate-limited the delivery: the question waits until then, its answer kept here
    # (Answer.as_json() plus the search query) so it is delivered, not written again.
    not_before: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    pending_answer: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The doc sets searched for it: the scope of where it was asked (config/docsets.py).
    doc_sets: Mapped[list[str] | None] = mapped_column(JSON)

    answer_text: Mapped[str | None] = mapped_column(Text)
    answer_mode: Mapped[str | None] = mapped_column(String(16))
    answer_ts: Mapped[str | None] = mapped_column(String(32))
    best_score: Mapped[float | None] = mapped_column(Float)
    citations: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    timings: Mapped[dict[str, float] | None] = mapped_column(JSON)
    models: Mapped[dict[str, str] | None] = mapped_column(JSON)

    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    conversation: Mapped[Conversation | None] = relationship(back_populates="questions")
    feedback: Mapped[list[Feedback]] = relationship(
        back_populates="question", cascade="all, delete-orphan"
    )


class Feedback(Base):
    """One vote per person per answer; voting again changes it."""

    __tablename__ = "feedback"
    __table_args__ = (UniqueConstraint("question_id", "user_id", name="uq_feedback_voter"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    question_id: Mapped[int] = mapped_column(
        ForeignKey("questions.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[str] = mapped_column(String(32))
    rating: Mapped[str] = mapped_column(String(8))  # "up" or "down"
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    question: Mapped[Question] = relationship(back_populates="feedback")
