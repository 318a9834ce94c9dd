"""What the bot has done, from SQL: the numbers `docsbot stats` prints."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.queue.tables import Feedback, Question, utcnow
from config.docsets import IMPLICIT
from config.specs import parse_duration

TOP_CITED = 10


def parse_since(text: str) -> datetime:
    """`7d`, `12h`, `30m`, `2w` → the moment that long ago."""
    seconds = parse_duration(text)
    if seconds is None:
        raise ValueError(f"--since takes a number and a unit (m, h, d, w), like 7d; got {text!r}")
    return utcnow() - timedelta(seconds=seconds)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    low, high = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def questions_searching(session: Session, doc_set: str, since: datetime | None = None) -> list[int]:
    """Ids of the questions whose search included `doc_set` (rows from before doc sets
    searched the implicit one)."""
    query = select(Question.id, Question.doc_sets)
    if since is not None:
        query = query.where(Question.created_at >= since)
    return [
        qid
        for qid, sets in session.execute(query).all()
        if (doc_set in sets if sets is not None else doc_set == IMPLICIT)
    ]


def collect(
    sessions: sessionmaker[Session],
    since: datetime | None = None,
    *,
    doc_set: str | None = None,
    visible: Collection[str] | None = None,
) -> dict[str, Any]:
    """The figures; `doc_set`: only questions that searched it; `visible`: only docs of
    these sets among the most cited (App Home shows each person only what they may read)."""
    with sessions() as session:
        where: list[ColumnElement[bool]] = [Question.created_at >= since] if since else []
        if doc_set is not None:
            where.append(Question.id.in_(questions_searching(session, doc_set, since)))
        counts = dict(
            session.execute(
                select(Question.status, func.count()).where(*where).group_by(Question.status)
            ).all()
        )
        abstained = session.scalar(
            select(func.count()).where(
                *where, Question.status == "answered", Question.answer_mode == "abstained"
            )
        )
        busy = session.scalar(select(func.count()).where(*where, Question.error == "busy"))
        votes = dict(
            session.execute(
                select(Feedback.rating, func.count())
                .join(Question, Question.id == Feedback.question_id)
                .where(*where)
                .group_by(Feedback.rating)
            ).all()
        )
        answered = session.execute(
            select(Question.timings, Question.citations, Question.answer_mode).where(
                *where, Question.status == "answered"
            )
        ).all()
    timings = [row.timings for row in answered]
    cited: dict[str, dict[str, Any]] = {}
    for row in answered:
        if row.answer_mode == "abstained":
            continue  # the closest sections of an abstention were not good enough to cite
        for citation in row.citations or []:
            if visible is not None and citation.get("doc_set", IMPLICIT) not in visible:
                continue
            key = citation.get("url") or citation.get("source") or "?"
            entry = cited.setdefault(key, {"title": citation.get("title", ""), "url": key, "n": 0})
            entry["n"] += 1
    stages: dict[str, list[float]] = {}
    for row in timings:
        for stage, seconds in (row or {}).items():
            stages.setdefault(stage, []).append(float(seconds))
    up, down = int(votes.get("up", 0)), int(votes.get("down", 0))
    return {
        "questions": sum(int(n) for n in counts.values()),
        # questions = answered + abstained + failed + waiting: an abstention ("the docs don't
        # cover this") is counted apart from answers, since it is what doc owners act on.
        "answered": int(counts.get("answered", 0)) - int(abstained or 0),
        "abstained": int(abstained or 0),
        "failed": int(counts.get("failed", 0)),
        "busy": int(busy or 0),
        "waiting": int(counts.get("queued", 0)) + int(counts.get("running", 0)),
        "feedback_up": up,
        "feedback_down": down,
        "helpful_rate": round(up / (up + down), 3) if up + down else None,
        "latency_s": {
            stage: {
                "p50": round(percentile(values, 0.5) or 0.0, 3),
                "p95": round(percentile(values, 0.95) or 0.0, 3),
            }
            for stage, values in stages.items()
        },
        "top_cited": sorted(cited.values(), key=lambda e: (-e["n"], e["url"]))[:TOP_CITED],
    }


def describe(figures: dict[str, Any], since: str | None = None) -> list[str]:
    """The figures as lines for a terminal (rich markup)."""
    window = f" in the last {since}" if since else ""
    lines = [f"[bold]{figures['questions']}[/] questions{window}"]
    for key in ("answered", "abstained", "failed", "busy", "waiting"):
        lines.append(f"  {key:10} {figures[key]}")
    rate = figures["helpful_rate"]
    shown = f"{rate:.0%} helpful" if rate is not None else "no votes yet"
    lines.append(
        f"  feedback   👍 {figures['feedback_up']}  👎 {figures['feedback_down']}  ({shown})"
    )
    if figures["latency_s"]:
        lines.append("[bold]latency per stage[/]")
    for stage, q in figures["latency_s"].items():
        lines.append(f"  {stage:10} p50 {q['p50']:.2f}s  p95 {q['p95']:.2f}s")
    if figures["top_cited"]:
        lines.append("[bold]most cited docs[/]")
    for entry in figures["top_cited"]:
        lines.append(f"  {entry['n']:4}×  {entry['title'] or entry['url']}  [dim]{entry['url']}[/]")
    return lines
