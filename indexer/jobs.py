"""Indexing runs as operators see them: one at a time across processes (the SQL lease), each
recorded with its counts and errors, whoever started it (a person, the schedule, App Home)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from config.docsets import DocSet
from config.errors import UserError
from config.logger import get_logger
from indexer.lease import LeaseInfo, LeaseLost, SqlLease
from indexer.runner import Indexer, IndexProgress, IndexReport
from indexer.tables import IndexedChunk, IndexedDocument, IndexRun, as_utc, utcnow

log = get_logger(__name__)
LEASE_NAME = "index"
Trigger = Literal["manual", "scheduled", "home"]


# A held run finished too: its slot is served, and the next slot holds again until confirmed.
FINISHED = ("succeeded", "failed", "held")
CONFIRM = "docsbot index --confirm-deletions"


def held_message(documents: int) -> str:
    return (
        f"held: this run would delete {documents} document(s), more than "
        f"DOCSBOT_INDEX_DELETE_GUARD allows; check DOCSBOT_SOURCES, then run `{CONFIRM}` "
        "to confirm"
    )


class IndexBusy(UserError, RuntimeError):
    """Another run holds the lease and the caller chose not to wait."""


@dataclass(frozen=True)
class RunOutcome:
    run_id: int
    status: str  # succeeded, failed, held, abandoned
    report: IndexReport | None
    errors: list[str]


@dataclass(frozen=True)
class RunSummary:
    """A recorded run, for stats, App Home and /metrics."""

    id: int
    trigger: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    docs_seen: int
    chunks_embedded: int
    errors: list[str]


class IndexJobs:
    def __init__(
        self,
        indexer: Indexer,
        sessions: sessionmaker[Session],
        *,
        lease_s: float,
        poll_s: float | None = None,
        holder: str | None = None,
    ) -> None:
        self.indexer = indexer
        self.sessions = sessions
        self.lease_s = lease_s
        self.poll_s = poll_s if poll_s is not None else min(5.0, lease_s / 3)
        self.holder = holder
        self.stop = threading.Event()

    def shutdown(self) -> None:
        """Stop waiting for the lease, and stop runs in progress at their next check."""
        self.stop.set()

    def run(
        self,
        trigger: Trigger,
        *,
        scheduled_for: datetime | None = None,
        wait: bool = True,
        rebuild: bool = False,
        progress: IndexProgress | None = None,
        on_wait: Callable[[LeaseInfo | None], None] | None = None,
        confirm_deletions: bool = False,
        only_set: str | None = None,
    ) -> RunOutcome | None:
        """Run once under the lease. None: shut down while waiting, or (scheduled runs) the
        slot was already covered by a run another process made."""
        lease = SqlLease(self.sessions, LEASE_NAME, self.lease_s, self.holder)
        lease.stop = self.stop  # a shutdown asked for before or during the run stops it
        if self.stop.is_set():
            return None
        told = False
        while not lease.try_acquire():
            held = lease.current()
            if not wait:
                raise IndexBusy(
                    "Another indexing run is in progress ("
                    + (held.describe() if held else "just finishing")
                    + "). Try again when it is done, or leave out --no-wait to wait for it."
                )
            if on_wait is not None and not told:
                on_wait(held)
                told = True
            if self.stop.wait(self.poll_s):
                return None
        try:
            with lease.renewing():
                lease.check()
                self._abandon_orphans()
                if scheduled_for is not None and self.covered(scheduled_for):
                    log.info(
                        "the run for %s was made by another process", f"{scheduled_for:%H:%M:%S}"
                    )
                    return None
                run_id = self._start(trigger, scheduled_for, lease.holder)
                lease.set_run(run_id)
                return self._execute(run_id, lease, rebuild, progress, confirm_deletions, only_set)
        except LeaseLost:
            return None  # shut down right after taking the lease: nothing was started

    def _execute(
        self,
        run_id: int,
        lease: SqlLease,
        rebuild: bool,
        progress: IndexProgress | None,
        confirm_deletions: bool,
        only_set: str | None = None,
    ) -> RunOutcome:
        log.info("index run #%d started%s", run_id, f" (doc set {only_set})" if only_set else "")
        try:
            report = self.indexer.run(
                rebuild=rebuild,
                progress=progress,
                check=lease.check,
                confirm_deletions=confirm_deletions,
                only_set=only_set,
            )
        except LeaseLost as error:
            self._finish(run_id, "abandoned", None, [str(error)])
            log.error("index run #%d stopped: %s", run_id, error)
            return RunOutcome(run_id, "abandoned", None, [str(error)])
        except KeyboardInterrupt:
            self._finish(run_id, "abandoned", None, ["interrupted (Ctrl-C)"])
            raise
        except Exception as error:
            message = f"{type(error).__name__}: {error}"
            self._finish(run_id, "failed", None, [message])
            raise
        errors = list(report.failed_sources)
        if report.failed_sources:
            status = "failed"
        elif report.deletions_held:
            status = "held"
            errors.append(held_message(report.deletions_held))
        else:
            status = "succeeded"
        self._finish(run_id, status, report, errors)
        log.info("index run #%d %s: %s", run_id, status, report.summary())
        return RunOutcome(run_id, status, report, errors)

    def covered(self, slot: datetime) -> bool:
        """A slot is served by any run that started at or after it and finished."""
        with self.sessions() as session:
            return bool(
                session.scalar(
                    select(func.count()).where(
                        IndexRun.started_at >= slot,
                        IndexRun.status.in_(FINISHED),
                    )
                )
            )

    def _abandon_orphans(self) -> None:
        # Holding the lease, any run still marked running belongs to a holder that is gone.
        with self.sessions.begin() as session:
            result = session.execute(
                update(IndexRun)
                .where(IndexRun.status == "running")
                .values(
                    status="abandoned",
                    finished_at=utcnow(),
                    errors=["its process stopped before finishing (lease expired)"],
                )
            )
        if count := result.rowcount:  # type: ignore[attr-defined]
            log.warning("%d index run(s) left by a stopped process marked abandoned", count)

    def _start(self, trigger: Trigger, scheduled_for: datetime | None, holder: str) -> int:
        with self.sessions.begin() as session:
            row = IndexRun(
                trigger=trigger,
                scheduled_for=scheduled_for,
                holder=holder,
                status="running",
                started_at=utcnow(),
                errors=[],
            )
            session.add(row)
            session.flush()
            return row.id

    def _finish(
        self, run_id: int, status: str, report: IndexReport | None, errors: list[str]
    ) -> None:
        counts = {}
        if report is not None:
            counts = {
                "docs_seen": report.docs_seen,
                "docs_added": report.docs_added,
                "docs_changed": report.docs_changed,
                "docs_removed": report.docs_removed,
                "chunks_embedded": report.chunks_embedded,
                "chunks_deleted": report.chunks_deleted,
                "files_skipped": report.files_skipped,
            }
        with self.sessions.begin() as session:
            # Only a run still marked running: one another process declared abandoned (it
            # took the lease over) stays abandoned, whatever this late holder thinks.
            session.execute(
                update(IndexRun)
                .where(IndexRun.id == run_id, IndexRun.status == "running")
                .values(status=status, finished_at=utcnow(), errors=errors, **counts)
            )


def recent_runs(sessions: sessionmaker[Session], limit: int = 10) -> list[RunSummary]:
    with sessions() as session:
        rows = session.scalars(
            select(IndexRun).order_by(IndexRun.started_at.desc(), IndexRun.id.desc()).limit(limit)
        ).all()
        return [_summary(row) for row in rows]


def last_success(sessions: sessionmaker[Session]) -> RunSummary | None:
    with sessions() as session:
        row = session.scalars(
            select(IndexRun)
            .where(IndexRun.status == "succeeded")
            .order_by(IndexRun.finished_at.desc())
            .limit(1)
        ).first()
        return _summary(row) if row else None


def last_started(sessions: sessionmaker[Session]) -> datetime | None:
    """When the newest run that did not die began: the schedule's memory across restarts."""
    with sessions() as session:
        return session.scalar(
            select(func.max(IndexRun.started_at)).where(IndexRun.status != "abandoned")
        )


def index_size(sessions: sessionmaker[Session]) -> tuple[int, int]:
    """(documents, chunks) as the SQL mirror of the index records them: cheap to ask often."""
    with sessions() as session:
        docs = session.scalar(select(func.count()).select_from(IndexedDocument)) or 0
        chunks = session.scalar(select(func.count()).select_from(IndexedChunk)) or 0
        return int(docs), int(chunks)


def size_by_set(
    sessions: sessionmaker[Session], sets: Sequence[DocSet]
) -> dict[str, tuple[int, int]]:
    """(documents, chunks) per doc set, from the SQL mirror of the index."""
    sizes = {}
    with sessions() as session:
        for doc_set in sets:
            docs = select(IndexedDocument.id)
            if not doc_set.implicit:
                docs = docs.where(IndexedDocument.source_key.startswith(f"{doc_set.name}:"))
            count_docs = session.scalar(select(func.count()).select_from(docs.subquery())) or 0
            count_chunks = session.scalar(
                select(func.count())
                .select_from(IndexedChunk)
                .where(IndexedChunk.document_id.in_(docs))
            )
            sizes[doc_set.name] = (int(count_docs), int(count_chunks or 0))
    return sizes


def _summary(row: IndexRun) -> RunSummary:
    return RunSummary(
        row.id,
        row.trigger,
        row.status,
        as_utc(row.started_at),
        as_utc(row.finished_at) if row.finished_at else None,
        row.docs_seen,
        row.chunks_embedded,
        list(row.errors or []),
    )
