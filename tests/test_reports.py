"""Gap reports and the feedback export, on a database filled the way the bot fills it
(record → claim → finish → vote/reason) and grouped with the real all-MiniLM-L6-v2."""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import update

from bot.answer.types import Answer, Citation, Mode
from bot.ops.exports import FEEDBACK_COLUMNS, GAP_COLUMNS, export_feedback_csv, gaps_csv
from bot.ops.reports import (
    DEFAULT_SIMILARITY,
    ClosestDoc,
    Embed,
    GapQuestion,
    describe_gaps,
    embed_all,
    gap_questions,
    group_similar,
)
from bot.queue.store import Incoming, QuestionStore
from bot.queue.tables import Feedback, Question, utcnow
from config.db import make_engine, make_session_factory, upgrade
from indexer.embedding import LocalEmbedder

LOW = 0.3
KEYS = Citation(1, "Security", "API keys", "security.md", "https://docs/security#api-keys", 0.21)
TOKENS = Citation(2, "Security", "Tokens", "security.md", "https://docs/security#tokens", 0.25)
INDEX = Citation(1, "Index", "Index types", "index.md", "https://docs/index#types", 0.95)


@contextmanager
def opened(url: str) -> Iterator[QuestionStore]:
    engine = make_engine(url)
    upgrade(engine)
    try:
        yield QuestionStore(make_session_factory(engine), max_queued=1000)
    finally:
        engine.dispose()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[QuestionStore]:
    with opened(f"sqlite:///{tmp_path / 'q.db'}") as store:
        yield store


def with_model(embedder: LocalEmbedder) -> Embed:
    """As the CLI passes the bot's embedder."""
    return lambda texts: embed_all(embedder, texts)


MESSAGES = itertools.count(1)


class Asker:
    """Questions through the store's own path, each its own message in one thread."""

    def __init__(self, store: QuestionStore) -> None:
        self.store = store

    def record(self, text: str, user: str = "U1") -> int:
        n = next(MESSAGES)
        incoming = Incoming(f"Ev{n}", "mention", "T1", "C1", user, text, "1.0", f"2.{n}")
        question_id = self.store.record(incoming)[1]
        assert question_id is not None
        return question_id

    def ask(
        self,
        text: str,
        *,
        mode: Mode = "llm",
        score: float | None = 0.9,
        cited: tuple[Citation, ...] = (INDEX,),
        query: str | None = None,
        user: str = "U1",
    ) -> int:
        question_id = self.record(text, user)
        # Claims take the oldest first: questions left waiting by `fill` are claimed too.
        assert question_id in self.store.claim("w1", 100, lease_s=60)
        answer = Answer(text, f"answer to {text}", mode, list(cited), {"embed": 0.1}, score)
        self.store.finish(question_id, answer, search_query=query or text, models={})
        return question_id

    def age(self, question_id: int, days: int) -> None:
        with self.store.sessions.begin() as session:
            session.execute(
                update(Question)
                .where(Question.id == question_id)
                .values(created_at=utcnow() - timedelta(days=days))
            )


def fill(store: QuestionStore) -> dict[str, int]:
    """One of each: what must and must not show up in a gap report."""
    asker = Asker(store)
    ids = {
        "good": asker.ask("Which index types does Milvus support?"),
        "downvoted": asker.ask("How do I rotate the API key?", score=0.8, cited=(KEYS,)),
        "abstained": asker.ask(
            "how can I rotate my api keys", mode="abstained", score=0.05, cited=(KEYS, TOKENS)
        ),
        "low": asker.ask("what's the procedure for rotating API keys", score=0.2, cited=(KEYS,)),
        "failed": asker.record("How do I rotate the API key in staging?"),
        "running": asker.record("Where is the API key rotation runbook?"),
    }
    assert store.claim("w1", 2, lease_s=60) == [ids["failed"], ids["running"]]
    store.fail(ids["failed"], "llm_unavailable")
    ids["queued"] = asker.record("Who owns the API key service?")
    store.vote(ids["good"], "U2", "up")
    store.vote(ids["downvoted"], "U2", "down")
    store.set_reason(ids["downvoted"], "U2", "=the page is about tokens")
    store.vote(ids["downvoted"], "U3", "down")
    store.set_reason(ids["downvoted"], "U3", "no rotation steps")
    # The reason form opens on a 👎; submitted after the vote became a 👍, it lands on the 👍.
    store.vote(ids["downvoted"], "U4", "down")
    store.vote(ids["downvoted"], "U4", "up")
    store.set_reason(ids["downvoted"], "U4", "never mind, it worked")
    store.vote(ids["failed"], "U2", "down")  # a vote on an outage is not a docs gap
    return ids


def test_gaps_are_downvoted_abstained_and_low_score_answers_only(store: QuestionStore) -> None:
    ids = fill(store)
    gaps = gap_questions(store.sessions, None, LOW)
    assert [(q.id, q.why) for q in gaps] == [
        (ids["downvoted"], ["downvoted"]),
        (ids["abstained"], ["abstained"]),  # its 0.05 is not counted a second time
        (ids["low"], ["low_score"]),
    ]
    downvoted, abstained, low = gaps
    assert downvoted.reasons == ["=the page is about tokens", "no rotation steps"]
    assert (downvoted.channel_id, downvoted.user_id, downvoted.best_score) == ("C1", "U1", 0.8)
    assert abstained.closest == [
        ClosestDoc("Security", "API keys", "https://docs/security#api-keys", 0.21),
        ClosestDoc("Security", "Tokens", "https://docs/security#tokens", 0.25),
    ]
    assert abstained.reasons == [] and low.best_score == 0.2
    assert downvoted.created_at.tzinfo is not None
    # Raising the bar makes the upvoted answer (0.9) a weak one too.
    assert ids["good"] in [q.id for q in gap_questions(store.sessions, None, 0.95)]


def test_since_leaves_out_older_questions(store: QuestionStore) -> None:
    ids = fill(store)
    Asker(store).age(ids["downvoted"], days=10)
    recent = gap_questions(store.sessions, utcnow() - timedelta(days=7), LOW)
    assert [q.id for q in recent] == [ids["abstained"], ids["low"]]
    assert gap_questions(store.sessions, utcnow() + timedelta(minutes=1), LOW) == []


def test_a_follow_up_groups_by_its_standalone_rewrite(store: QuestionStore) -> None:
    asker = Asker(store)
    asker.ask("and in staging?", mode="abstained", score=0.01, query="How to rotate API keys?")
    (gap,) = gap_questions(store.sessions, None, LOW)
    assert (gap.text, gap.search_query) == ("and in staging?", "How to rotate API keys?")
    assert gap.grouping_text == "How to rotate API keys?"


def test_paraphrases_group_together_and_other_topics_stay_apart(
    store: QuestionStore, minilm: LocalEmbedder
) -> None:
    ids = fill(store)
    asker = Asker(store)
    milvus = asker.ask("Which index types does Milvus support?", score=0.1, cited=(INDEX,))
    groups = group_similar(
        gap_questions(store.sessions, None, LOW), with_model(minilm), DEFAULT_SIMILARITY
    )
    assert [[q.id for q in g.questions] for g in groups] == [
        [ids["downvoted"], ids["abstained"], ids["low"]],
        [milvus],
    ]
    keys, index = groups
    assert keys.counts == {"downvoted": 1, "abstained": 1, "low_score": 1}
    assert keys.reasons == ["=the page is about tokens", "no rotation steps"]
    assert keys.representative.id in {ids["downvoted"], ids["abstained"], ids["low"]}
    # The API-keys section came close for all three: it ranks above the better-scoring
    # tokens section, which only one question reached.
    assert [(d.url, d.questions, d.best_score) for d in keys.closest_docs] == [
        ("https://docs/security#api-keys", 3, 0.21),
        ("https://docs/security#tokens", 1, 0.25),
    ]
    assert index.counts == {"downvoted": 0, "abstained": 0, "low_score": 1}
    assert index.representative.id == milvus


def vectors(table: dict[str, list[float]]) -> Embed:
    return lambda texts: np.array([table[t] for t in texts])


def gap(n: int, text: str, why: list[str], minutes: int = 0) -> GapQuestion:
    return GapQuestion(
        n, utcnow() + timedelta(minutes=minutes), text, None, why, [], 0.1, [], "C", "U"
    )


def test_groups_are_ordered_by_size_then_downvotes_and_need_the_threshold() -> None:
    table = {
        "a1": [1.0, 0.0, 0.0],
        "a2": [0.8, 0.6, 0.0],  # cos 0.8 with a1
        "b1": [0.0, 0.0, 1.0],
        "c1": [0.0, 1.0, 0.0],  # cos 0.6 with a2, but 0.3 on average with a1 and a2
    }
    items = [
        gap(1, "a1", ["abstained"]),
        gap(2, "b1", ["abstained"], 1),
        gap(3, "a2", ["low_score"], 2),
        gap(4, "c1", ["downvoted"], 3),
    ]
    embed = vectors(table)
    # Given newest first, still clustered oldest first; c1 would join under single link.
    groups = group_similar(reversed(items), embed, threshold=0.55)
    assert [[q.text for q in g.questions] for g in groups] == [["a1", "a2"], ["c1"], ["b1"]]
    assert [g.representative.text for g in groups] == ["a1", "c1", "b1"]
    loose = group_similar(items, embed, threshold=0.0)
    assert [len(g.questions) for g in loose] == [4]
    assert group_similar([], embed, 0.5) == []


def test_describe_gaps_names_counts_phrasings_reasons_and_docs(
    store: QuestionStore, minilm: LocalEmbedder
) -> None:
    fill(store)
    groups = group_similar(gap_questions(store.sessions, None, LOW), with_model(minilm))
    lines = describe_gaps(groups)
    text = "\n".join(lines)
    assert lines[0] == "[bold]1. 3 questions[/] (👎 1, abstained 1, low score 1)"
    phrasings = [
        "How do I rotate the API key?",
        "how can I rotate my api keys",
        "what's the procedure for rotating API keys",
    ]
    assert all(f"“{p}”" in text for p in phrasings)
    assert "reason:[/] “=the page is about tokens”" in text
    assert "closest docs:" in text
    assert "Security › API keys  https://docs/security#api-keys" in text
    assert describe_gaps([])[0].startswith("No gaps in this window: ")


def test_describe_gaps_escapes_markup_people_typed() -> None:
    item = gap(1, "what does [bold]red[/bold] mean?", ["abstained"])
    lines = describe_gaps(group_similar([item], vectors({item.text: [1.0, 0.0]})))
    assert "“what does \\[bold]red\\[/bold] mean?”" in lines[1]


def test_gaps_csv_reads_back_one_row_per_question_with_formulas_defused(
    store: QuestionStore, minilm: LocalEmbedder
) -> None:
    ids = fill(store)
    Asker(store).ask('=HYPERLINK("http://evil")', mode="abstained", score=0.0, cited=())
    groups = group_similar(gap_questions(store.sessions, None, LOW), with_model(minilm))
    out = io.StringIO()
    assert gaps_csv(groups, out) == 4
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0] == GAP_COLUMNS
    by_id = {int(row[2]): dict(zip(GAP_COLUMNS, row, strict=True)) for row in rows[1:]}
    down = by_id[ids["downvoted"]]
    assert down["group"] == "1" and down["tags"] == "downvoted"
    assert down["reasons"] == "'=the page is about tokens | no rotation steps"
    assert down["closest_urls"] == "https://docs/security#api-keys"
    assert down["best_score"] == "0.8000" and (down["channel"], down["user"]) == ("C1", "U1")
    assert down["asked_at"].endswith("+00:00")
    assert by_id[ids["abstained"]]["closest_urls"] == (
        "https://docs/security#api-keys https://docs/security#tokens"
    )
    evil = next(row for row in by_id.values() if row["question"].endswith('"http://evil")'))
    assert evil["question"] == '\'=HYPERLINK("http://evil")'
    assert evil["group_representative"].startswith("'=")
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)


def test_feedback_export_has_every_vote_defused_and_windowed(store: QuestionStore) -> None:
    ids = fill(store)
    store.vote(ids["good"], "U9", "down")
    store.set_reason(ids["good"], "U9", "@SUM(1+1) -wrong version")
    out = io.StringIO()
    assert export_feedback_csv(store.sessions, out) == 6
    rows = [
        dict(zip(FEEDBACK_COLUMNS, r, strict=True)) for r in csv.reader(io.StringIO(out.getvalue()))
    ]
    assert list(rows[0].values()) == FEEDBACK_COLUMNS
    votes = rows[1:]
    assert [(r["question_id"], r["rated_by"], r["rating"]) for r in votes] == [
        (str(ids["good"]), "U2", "up"),
        (str(ids["downvoted"]), "U2", "down"),
        (str(ids["downvoted"]), "U3", "down"),
        (str(ids["downvoted"]), "U4", "up"),
        (str(ids["failed"]), "U2", "down"),
        (str(ids["good"]), "U9", "down"),
    ]
    up, down, _, flipped, outage, late = votes
    assert up["reason"] == "" and up["answer_mode"] == "llm" and up["best_score"] == "0.9000"
    assert down["reason"] == "'=the page is about tokens"
    assert flipped["reason"] == "never mind, it worked"  # exported as stored
    assert down["cited_urls"] == "https://docs/security#api-keys"
    assert (down["best_score"], down["channel"], down["thread_ts"]) == (
        "0.8000",
        "C1",
        "1.0",
    )
    assert (outage["answer_mode"], outage["best_score"], outage["cited_urls"]) == ("", "", "")
    assert late["reason"] == "'@SUM(1+1) -wrong version"
    assert late["question"] == "Which index types does Milvus support?"
    assert late["rated_at"].endswith("+00:00") and late["asked_at"].endswith("+00:00")

    with store.sessions.begin() as session:
        session.execute(
            update(Feedback)
            .where(Feedback.user_id != "U9")
            .values(updated_at=utcnow() - timedelta(days=30))
        )
    recent = io.StringIO()
    assert export_feedback_csv(store.sessions, recent, utcnow() - timedelta(days=7)) == 1
    assert "@SUM" in recent.getvalue()


def test_reports_on_postgresql(postgres_url: str, minilm: LocalEmbedder) -> None:
    with opened(postgres_url) as store:
        ids = fill(store)
        gaps = gap_questions(store.sessions, utcnow() - timedelta(days=1), LOW)
        assert [(q.id, q.why) for q in gaps] == [
            (ids["downvoted"], ["downvoted"]),
            (ids["abstained"], ["abstained"]),
            (ids["low"], ["low_score"]),
        ]
        groups = group_similar(gaps, with_model(minilm))
        assert [len(g.questions) for g in groups] == [3]
        out = io.StringIO()
        assert export_feedback_csv(store.sessions, out, utcnow() - timedelta(days=1)) == 5
