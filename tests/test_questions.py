"""The question queue on SQLite and on a real PostgreSQL: dedupe, exclusive claims under
contention, leases, history and votes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot.answer.types import Answer, Citation
from bot.queue.store import Incoming, Outcome, QuestionStore
from bot.queue.tables import Feedback, Question, utcnow
from config.db import make_engine, make_session_factory, upgrade


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[QuestionStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'q.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    upgrade(engine)
    yield QuestionStore(make_session_factory(engine), max_queued=1000)
    engine.dispose()


def incoming(
    n: int, *, thread: str = "1.0", channel: str = "C1", kind: str = "mention"
) -> Incoming:
    return Incoming(f"Ev{n}", kind, "T1", "C1", "U1", f"question {n}", thread, f"2.{n}")


def answer(text: str) -> Answer:
    citation = Citation(1, "Title", "Heading", "a.md", "https://x/a#h", 0.9)
    return Answer("q", text, "llm", [citation], {"embed": 0.1, "generate": 1.0}, 0.9)


def test_the_same_event_or_message_is_recorded_once(store: QuestionStore) -> None:
    assert store.record(incoming(1))[0] is Outcome.QUEUED
    assert store.record(incoming(1)) == (Outcome.DUPLICATE, None)
    same_message = Incoming("EvOther", "dm", "T1", "C1", "U1", "question 1", "1.0", "2.1")
    assert store.record(same_message) == (Outcome.DUPLICATE, None)
    assert store.queued() == 1


def test_concurrent_listeners_record_every_question(store: QuestionStore) -> None:
    """50 events at once, as in a burst of mentions: no lock errors, no loss, one thread row."""
    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(lambda n: store.record(incoming(n))[0], range(50)))
    assert outcomes == [Outcome.QUEUED] * 50
    assert store.queued() == 50
    assert store.thread_kind("T1", "C1", "1.0") == "mention"


def test_concurrent_claims_never_hand_out_a_question_twice(store: QuestionStore) -> None:
    for n in range(40):
        store.record(incoming(n))
    claimed: list[int] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while True:
            got = store.claim(name, 3, lease_s=60)
            if not got:
                return
            with lock:
                claimed.extend(got)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == sorted(set(claimed)) and len(claimed) == 40


def test_an_expired_lease_is_claimed_again_a_live_one_is_not(store: QuestionStore) -> None:
    _, question_id = store.record(incoming(1))
    assert store.claim("w1", 5, lease_s=60) == [question_id]
    assert store.claim("w2", 5, lease_s=60) == []
    with store.sessions.begin() as session:
        session.execute(update(Question).values(lease_until=utcnow() - timedelta(seconds=1)))
    assert store.claim("w2", 5, lease_s=60) == [question_id]
    store.renew("w1", [question_id], 60)  # the old holder's renewal must not steal it back
    assert store.get(question_id).worker_id == "w2"
    assert store.get(question_id).attempts == 2


def test_a_full_queue_records_the_question_as_refused(store: QuestionStore) -> None:
    store.max_queued = 2
    assert [store.record(incoming(n))[0] for n in range(3)] == [
        Outcome.QUEUED,
        Outcome.QUEUED,
        Outcome.BUSY,
    ]
    refused = store.get(3)
    assert (refused.status, refused.error) == ("failed", "busy")


def test_history_is_the_conversation_so_far_oldest_first(store: QuestionStore) -> None:
    ids = [store.record(incoming(n))[1] for n in range(4)]
    other = store.record(incoming(9, thread="5.0"))[1]
    for n, question_id in enumerate(ids[:3]):
        assert question_id is not None
        store.finish(question_id, answer(f"answer {n}"), search_query="q", models={})
    assert other is not None
    store.finish(other, answer("elsewhere"), search_query="q", models={})
    last = store.get(ids[3] or 0)
    turns = store.history(last, 4)
    assert [(t.role, t.text) for t in turns] == [
        ("user", "question 1"),
        ("assistant", "answer 1"),
        ("user", "question 2"),
        ("assistant", "answer 2"),
    ]
    row = store.get(ids[0] or 0)
    assert row.citations and row.citations[0]["url"] == "https://x/a#h"
    assert row.timings == {"embed": 0.1, "generate": 1.0}


def test_one_vote_per_person_changeable_with_a_reason(store: QuestionStore) -> None:
    _, question_id = store.record(incoming(1))
    assert question_id is not None
    assert store.vote(question_id, "U2", "down") is None
    assert store.set_reason(question_id, "U2", "wrong page")
    assert store.vote(question_id, "U2", "down") == "down"
    assert store.vote(question_id, "U2", "up") == "down"
    assert store.vote(question_id, "U3", "up") is None
    with store.sessions() as session:
        votes = sorted((f.user_id, f.rating, f.reason) for f in session.scalars(select(Feedback)))
    assert votes == [("U2", "up", None), ("U3", "up", None)]


def test_stats_partition_the_questions_and_count_votes(store: QuestionStore) -> None:
    from bot.ops.stats import collect, parse_since

    ids = [store.record(incoming(n))[1] or 0 for n in range(5)]
    store.finish(ids[0], answer("yes [1]"), search_query="q", models={})
    abstention = Answer("q", "not covered", "abstained", [], {"embed": 0.3}, 0.01)
    store.finish(ids[1], abstention, search_query="q", models={})
    store.fail(ids[2], "llm_unavailable")
    store.vote(ids[0], "U1", "up")
    store.vote(ids[0], "U2", "down")
    store.vote(ids[1], "U1", "down")
    figures = collect(store.sessions, parse_since("7d"))
    assert {k: figures[k] for k in ("questions", "answered", "abstained", "failed", "waiting")} == {
        "questions": 5,
        "answered": 1,
        "abstained": 1,
        "failed": 1,
        "waiting": 2,
    }
    assert (figures["feedback_up"], figures["feedback_down"]) == (1, 2)
    assert figures["latency_s"]["embed"] == {"p50": 0.2, "p95": 0.29}
    assert collect(store.sessions, parse_since("0m"))["questions"] == 0


def test_a_stopping_worker_puts_back_what_it_did_not_finish(store: QuestionStore) -> None:
    ids = [store.record(incoming(n))[1] for n in range(3)]
    assert store.claim("w1", 2, lease_s=60) == ids[:2]
    store.finish(ids[0] or 0, answer("done"), search_query="q", models={})
    assert store.release("w1") == 1
    assert store.get(ids[1] or 0).status == "queued"
    assert store.claim("w2", 5, lease_s=60) == ids[1:]


def test_a_duplicate_leaves_no_conversation_behind(store: QuestionStore) -> None:
    store.record(incoming(1))
    retry_elsewhere = Incoming("Ev1", "mention", "T1", "C1", "U1", "q", "9.9", "9.9")
    assert store.record(retry_elsewhere) == (Outcome.DUPLICATE, None)
    assert store.thread_kind("T1", "C1", "9.9") is None
