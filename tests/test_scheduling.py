"""Scheduled re-indexing and the indexing lease, in one process, on real parts: APScheduler's
real scheduler, Milvus Lite, SQLite (and PostgreSQL for the lease), all-MiniLM-L6-v2."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select, update

from bot.wiring import Backends, make_indexer, make_retriever, open_backends
from config.db import make_engine, make_session_factory, upgrade
from config.settings import Settings
from config.specs import Schedule
from indexer.embedding import LocalEmbedder
from indexer.jobs import IndexBusy, IndexJobs, recent_runs
from indexer.lease import SqlLease
from indexer.scheduler import ANCHOR, IndexScheduler, latest_slot, make_trigger
from indexer.tables import IndexRun, Lease, utcnow
from tests.conftest import milvus_docs_source, wait_until


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    url = (
        f"sqlite:///{tmp_path / 'lease.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    engine = make_engine(url)
    upgrade(engine)
    yield make_session_factory(engine)
    engine.dispose()


def test_lease_is_exclusive_renewable_and_released(sessions: object) -> None:
    first = SqlLease(sessions, "index", ttl_s=30, holder="host-a:1:aaaa")  # type: ignore[arg-type]
    second = SqlLease(sessions, "index", ttl_s=30, holder="host-b:2:bbbb")  # type: ignore[arg-type]
    assert first.try_acquire()
    assert not second.try_acquire()
    held = second.current()
    assert held is not None and held.holder == "host-a:1:aaaa"
    assert first.try_acquire()  # re-entrant for its holder (a renewal by another name)
    assert first.renew()
    first.release()
    assert second.try_acquire()
    assert not first.renew() and first.lost.is_set()  # it is second's now
    with pytest.raises(Exception, match="taken over"):
        first.check()


def test_an_expired_lease_is_taken_over_and_its_holder_learns_it(sessions: object) -> None:
    crashed = SqlLease(sessions, "index", ttl_s=30, holder="elsewhere:1:dead")  # type: ignore[arg-type]
    assert crashed.try_acquire()
    waiting = SqlLease(sessions, "index", ttl_s=30, holder="host-b:2:bbbb")  # type: ignore[arg-type]
    assert not waiting.try_acquire()
    with sessions.begin() as session:  # type: ignore[attr-defined]
        session.execute(update(Lease).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert waiting.try_acquire()
    assert not crashed.renew()


def test_a_lease_held_by_a_dead_process_on_this_host_is_taken_at_once(sessions: object) -> None:
    import socket
    import subprocess

    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid that no longer runs
    dead = SqlLease(sessions, "index", ttl_s=600, holder=f"{socket.gethostname()}:{gone.pid}:x")  # type: ignore[arg-type]
    assert dead.try_acquire()
    assert SqlLease(sessions, "index", ttl_s=600).try_acquire()  # type: ignore[arg-type]


def test_two_holders_in_one_process_exclude_each_other(sessions: object) -> None:
    """A scheduled slot firing while an App Home run holds the lease in the same process must
    wait, not take the lease over as if its holder had died."""
    first = SqlLease(sessions, "index", ttl_s=600)  # type: ignore[arg-type]
    second = SqlLease(sessions, "index", ttl_s=600)  # type: ignore[arg-type]
    assert first.holder != second.holder
    assert first.try_acquire()
    assert not second.try_acquire()
    assert first.renew()


def test_times_read_back_from_any_database_are_utc() -> None:
    from datetime import timezone

    from indexer.tables import as_utc

    new_york = datetime(2026, 11, 23, 0, 31, tzinfo=timezone(timedelta(hours=-5)))
    assert as_utc(new_york) == datetime(2026, 11, 23, 5, 31, tzinfo=UTC)
    assert as_utc(new_york).tzinfo == UTC
    assert as_utc(datetime(2026, 11, 23, 5, 31)) == datetime(2026, 11, 23, 5, 31, tzinfo=UTC)


def test_renewal_keeps_a_short_lease_alive_through_a_long_body(sessions: object) -> None:
    lease = SqlLease(sessions, "index", ttl_s=1.5, holder="host-a:1:aaaa")  # type: ignore[arg-type]
    assert lease.try_acquire()
    held = lease.current()
    assert held is not None
    first_expiry = held.expires_at
    other = SqlLease(sessions, "index", ttl_s=1.5, holder="host-b:2:bbbb")  # type: ignore[arg-type]
    with lease.renewing():
        # A body outliving the lease it started with: only renewal keeps it held.
        wait_until(lambda: utcnow() > first_expiry, 30, "the first lease term to pass")
        assert not other.try_acquire()
        lease.check()
    assert other.try_acquire()  # released on the way out


@pytest.fixture
def fresh(
    make_settings: Callable[..., Settings], docs_copy: Path, minilm: LocalEmbedder
) -> Iterator[Backends]:
    """Nothing indexed yet."""
    settings = make_settings(sources=[milvus_docs_source(docs_copy)], index_lease_s=6)
    opened = open_backends(settings, embedder=minilm)
    yield opened
    opened.close()


@pytest.fixture
def backends(indexed_data: Path, fresh: Backends) -> Backends:
    """The docs indexed once already (a copy of the pristine index): runs cost a hash check."""
    return fresh


def jobs_of(backends: Backends, **kwargs: object) -> IndexJobs:
    return IndexJobs(make_indexer(backends), backends.sessions, lease_s=6, poll_s=0.2, **kwargs)  # type: ignore[arg-type]


def test_runs_are_recorded_and_a_busy_lease_makes_others_wait_or_refuse(fresh: Backends) -> None:
    backends = fresh
    jobs = jobs_of(backends)
    outcome = jobs.run("manual")
    assert outcome is not None and outcome.status == "succeeded"
    (run,) = recent_runs(backends.sessions)
    assert (run.trigger, run.status, run.docs_seen) == ("manual", "succeeded", 7)
    assert run.chunks_embedded == backends.store.count() and run.finished_at is not None

    other = SqlLease(backends.sessions, "index", ttl_s=60, holder="elsewhere:9:cafe")
    assert other.try_acquire()
    with pytest.raises(IndexBusy, match="elsewhere:9:cafe"):
        jobs.run("manual", wait=False)
    told: list[object] = []
    threading.Timer(1.0, other.release).start()
    waited = jobs.run("manual", on_wait=told.append)  # waits for the release, then runs
    assert waited is not None and waited.status == "succeeded" and len(told) == 1
    assert [r.trigger for r in recent_runs(backends.sessions)] == ["manual", "manual"]


def test_a_shutdown_before_the_lease_is_taken_starts_no_run(backends: Backends) -> None:
    jobs = jobs_of(backends)
    jobs.shutdown()
    assert jobs.run("scheduled", scheduled_for=utcnow()) is None
    assert recent_runs(backends.sessions) == []


def test_a_run_left_running_by_a_dead_holder_is_marked_abandoned(backends: Backends) -> None:
    with backends.sessions.begin() as session:
        session.add(IndexRun(trigger="scheduled", holder="gone:1:x", status="running", errors=[]))
    jobs_of(backends).run("manual")
    statuses = [r.status for r in recent_runs(backends.sessions)]
    assert sorted(statuses) == ["abandoned", "succeeded"]


def test_a_slot_already_served_by_another_process_is_skipped(backends: Backends) -> None:
    slot = utcnow() - timedelta(seconds=1)
    jobs = jobs_of(backends)
    assert jobs.run("scheduled", scheduled_for=slot) is not None
    assert jobs.run("scheduled", scheduled_for=slot) is None  # covered: nothing to do
    assert len(recent_runs(backends.sessions)) == 1
    assert jobs.run("scheduled", scheduled_for=utcnow() + timedelta(seconds=1)) is not None


def test_slots_are_the_same_in_every_process() -> None:
    trigger = make_trigger(Schedule(interval_s=900))
    now = datetime(2026, 11, 23, 10, 7, 31, tzinfo=UTC)
    assert latest_slot(trigger, now) == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert latest_slot(trigger, now + timedelta(minutes=8)) == datetime(
        2026, 11, 23, 10, 15, tzinfo=UTC
    )
    cron = CronTrigger.from_crontab("30 */2 * * *", timezone="UTC")
    assert latest_slot(cron, now) == datetime(2026, 11, 23, 8, 30, tzinfo=UTC)
    assert (now - ANCHOR).days > 0


def test_the_schedule_remembers_the_last_run_across_restarts(backends: Backends) -> None:
    scheduler = IndexScheduler(jobs_of(backends), Schedule(interval_s=3600), misfire_grace_s=600)
    now = utcnow()
    assert scheduler.first_run_time(now) == now  # never indexed: at once
    with backends.sessions.begin() as session:
        session.add(
            IndexRun(
                trigger="scheduled",
                holder="h:1:x",
                status="succeeded",
                started_at=latest_slot(scheduler.trigger, now),  # this slot's run was made
                errors=[],
            )
        )
    due = scheduler.first_run_time(now)
    # The next slot on the grid, not an hour from this start.
    assert due == latest_slot(scheduler.trigger, now) + timedelta(hours=1) > now
    with backends.sessions.begin() as session:
        session.execute(update(IndexRun).values(started_at=now - timedelta(hours=3)))
    assert scheduler.first_run_time(now) < now  # missed while down: due already


def test_the_scheduler_follows_edits_deletions_and_keeps_chunks_of_a_failed_source(
    backends: Backends, docs_copy: Path
) -> None:
    scheduler = IndexScheduler(jobs_of(backends), Schedule(interval_s=2), misfire_grace_s=60)
    retriever = make_retriever(backends, None, index_coming=True)

    def finished() -> int:
        with backends.sessions() as session:
            return len(
                session.scalars(select(IndexRun.id).where(IndexRun.status != "running")).all()
            )

    def texts(query: str) -> str:
        return " ".join(c.hit.text for c in retriever.retrieve(query, 3).candidates)

    scheduler.start()
    try:
        wait_until(lambda: finished() >= 1, 60, "the first scheduled run")
        before = backends.store.count()
        page = docs_copy / "faq" / "operational_faq.md"
        page.write_text(
            page.read_text() + "\n\n## Zebra backups\n\nThe quartermaster zebra keeps nightly "
            "backups of every collection in the striped bucket.\n"
        )
        done = finished()
        wait_until(lambda: finished() > done + 1, 60, "a run after the edit")
        assert "quartermaster zebra" in texts("Who keeps the nightly backups? zebra")

        removed = docs_copy / "about" / "limitations.md"
        assert removed.exists()
        removed.unlink()
        done = finished()
        wait_until(lambda: finished() > done + 1, 60, "a run after the deletion")
        rows = backends.store.client.query(
            backends.store.collection, filter='path == "about/limitations.md"', output_fields=["id"]
        )
        assert rows == []
        kept = backends.store.count()
        assert 0 < kept < before + 5

        moved = docs_copy.with_name("docs-away")
        shutil.move(docs_copy, moved)  # the folder is gone: unreadable as a whole
        done = finished()
        wait_until(lambda: finished() > done + 1, 60, "a run with the source gone")
        last = recent_runs(backends.sessions, 1)[0]
        assert last.status == "failed" and "does not exist" in last.errors[0]
        assert backends.store.count() == kept  # nothing deleted
        assert "quartermaster zebra" in texts("Who keeps the nightly backups? zebra")
    finally:
        scheduler.shutdown()
    runs = recent_runs(backends.sessions, 100)
    assert {r.trigger for r in runs} == {"scheduled"}
    assert all(r.status in ("succeeded", "failed") for r in runs)


def test_a_run_without_sources_refuses_instead_of_emptying_the_index(backends: Backends) -> None:
    from dataclasses import replace

    from indexer.runner import NoSources

    assert jobs_of(backends).run("manual") is not None
    chunks = backends.store.count()
    empty = replace(backends, settings=backends.settings.model_copy(update={"sources": []}))
    with pytest.raises(NoSources, match="no sources are configured"):
        jobs_of(empty).run("scheduled", scheduled_for=utcnow())
    assert backends.store.count() == chunks > 0
    assert [r.status for r in recent_runs(backends.sessions)] == ["failed", "succeeded"]
