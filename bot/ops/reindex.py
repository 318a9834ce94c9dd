"""Indexing as the long-running processes see it: the schedule (when this process runs one)
and "re-index now" from App Home, both through the one lease that keeps runs one at a time."""

from __future__ import annotations

import threading

from bot.wiring import Backends, make_indexer
from config.logger import get_logger
from config.specs import parse_schedule
from indexer.jobs import IndexBusy, IndexJobs, RunSummary, recent_runs
from indexer.lease import SqlLease, holder_gone
from indexer.scheduler import IndexScheduler
from indexer.tables import utcnow

log = get_logger(__name__)


class IndexControl:
    def __init__(self, backends: Backends, *, schedule: bool) -> None:
        settings = backends.settings
        self.sessions = backends.sessions
        self.jobs = IndexJobs(
            make_indexer(backends), backends.sessions, lease_s=settings.index_lease_s
        )
        plan = parse_schedule(settings.index_schedule)
        if plan is None:
            self.schedule_text = "only when asked (DOCSBOT_INDEX_SCHEDULE=off)"
        elif not schedule:
            self.schedule_text = "by a separate scheduler process"
            plan = None
        elif not settings.index_sources:
            log.warning(
                "DOCSBOT_SOURCES is empty: not re-indexing on a schedule (set it, or start "
                "with DOCSBOT_INDEX_SCHEDULE=off to silence this)"
            )
            self.schedule_text = "not scheduled: no sources are configured"
            plan = None
        else:
            self.schedule_text = plan.describe()
        self.scheduler = (
            IndexScheduler(self.jobs, plan, misfire_grace_s=settings.index_misfire_grace_s)
            if plan is not None
            else None
        )
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        if self.scheduler is not None:
            self.scheduler.start()

    def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown()
        else:
            self.jobs.shutdown()
        for thread in self._threads:
            thread.join(30)

    def busy(self) -> str | None:
        """Who is indexing now; None when nobody is, or the holder's lease ran out or its
        process is gone (a crash leaves the row behind)."""
        held = SqlLease(self.sessions, "index", self.jobs.lease_s).current()
        if held is None or held.expires_at < utcnow() or holder_gone(held.holder):
            return None
        return held.describe()

    def reindex_now(self, requested_by: str) -> str:
        """Start a run in the background; the answer is what to tell the person who asked."""
        if not self.jobs.indexer.settings.index_sources:
            return "There is nothing to index: DOCSBOT_SOURCES is not set for this bot."
        if held := self.busy():
            return f"A re-index is already running ({held}). Its result will show here."
        log.info("re-index requested from App Home by %s", requested_by)
        if self.scheduler is not None:
            self.scheduler.run_now("home")
        else:
            thread = threading.Thread(target=self._run_once, name="reindex", daemon=True)
            thread.start()
            self._threads.append(thread)
        return "Re-index started. Reopen this tab to see its result."

    def _run_once(self) -> None:
        try:
            self.jobs.run("home", wait=False)
        except IndexBusy:
            log.info("re-index from App Home skipped: another run started first")
        except Exception:
            log.exception("re-index from App Home failed")

    def runs(self, limit: int = 5) -> list[RunSummary]:
        return recent_runs(self.sessions, limit)
