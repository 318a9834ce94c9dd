"""The gap report and the feedback as CSV, for a spreadsheet: every cell that a spreadsheet
would run as a formula is defused, since questions and reasons are typed by anyone."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import datetime
from typing import TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.ops.reports import GapGroup, closest
from bot.queue.tables import Feedback, Question, as_utc

# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets
# (tab and CR too, per OWASP): a question typed into Slack must not run in a spreadsheet.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"  # a number, never text: no formula to neutralise
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _iso(moment: datetime) -> str:
    return as_utc(moment).isoformat(timespec="seconds")


GAP_COLUMNS = [
    "group",
    "group_representative",
    "question_id",
    "asked_at",
    "question",
    "search_query",
    "tags",
    "reasons",
    "best_score",
    "closest_urls",
    "channel",
    "user",
]


def gaps_csv(groups: Sequence[GapGroup], out: TextIO) -> int:
    """One row per question, groups numbered as `describe_gaps` shows them; returns the rows
    written."""
    writer = csv.writer(out)
    writer.writerow(GAP_COLUMNS)
    rows = 0
    for n, group in enumerate(groups, start=1):
        for q in group.questions:
            urls = list(dict.fromkeys(doc.url for doc in q.closest if doc.url))
            writer.writerow(
                [
                    n,
                    safe_cell(group.representative.text),
                    q.id,
                    _iso(q.created_at),
                    safe_cell(q.text),
                    safe_cell(q.search_query if q.search_query != q.text else None),
                    " ".join(q.why),
                    safe_cell(" | ".join(q.reasons)),
                    safe_cell(q.best_score),
                    safe_cell(" ".join(urls)),
                    safe_cell(q.channel_id),
                    safe_cell(q.user_id),
                ]
            )
            rows += 1
    return rows


FEEDBACK_COLUMNS = [
    "rated_at",
    "rating",
    "reason",
    "rated_by",
    "question_id",
    "question",
    "answer_mode",
    "best_score",
    "cited_urls",
    "channel",
    "thread_ts",
    "asked_at",
]


def export_feedback_csv(
    sessions: sessionmaker[Session], out: TextIO, since: datetime | None = None
) -> int:
    """Every 👍/👎 with the question and answer it judged, oldest first; returns the rows
    written. `since` bounds when the vote was cast (or last changed), not when the question
    was asked: an export of last week's feedback should hold last week's votes."""
    query = (
        select(Feedback, Question)
        .join(Question, Question.id == Feedback.question_id)
        .order_by(Feedback.updated_at, Feedback.id)
    )
    if since is not None:
        query = query.where(Feedback.updated_at >= since)
    writer = csv.writer(out)
    writer.writerow(FEEDBACK_COLUMNS)
    rows = 0
    with sessions() as session:
        for vote, question in session.execute(query).tuples():
            urls = dict.fromkeys(doc.url for doc in closest(question.citations) if doc.url)
            writer.writerow(
                [
                    _iso(vote.updated_at),
                    safe_cell(vote.rating),
                    safe_cell(vote.reason),
                    safe_cell(vote.user_id),
                    question.id,
                    safe_cell(question.text),
                    safe_cell(question.answer_mode),
                    safe_cell(question.best_score),
                    safe_cell(" ".join(urls)),
                    safe_cell(question.channel_id),
                    safe_cell(question.thread_ts),
                    _iso(question.created_at),
                ]
            )
            rows += 1
    return rows
