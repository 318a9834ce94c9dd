"""Re-indexing on a schedule (APScheduler), safe with several scheduler processes.

Every process computes the same slots: intervals are anchored at a fixed epoch and cron lines
read in UTC. A slot is served once: the first process to take the lease runs it; another that
fired for the same slot waits for the lease, then sees a run that started after the slot and
skips. If the holder dies mid-run, its lease expires and the waiting process runs the slot.

The schedule survives restarts: the first fire time is computed from the last run recorded in
SQL, so a slot missed while docsbot was down runs at start (within the misfire grace) instead
of the interval silently starting over at every deploy.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobEvent
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from config.logger import get_logger
from config.specs import Schedule
from indexer.jobs import IndexJobs, last_started
from indexer.tables import as_utc, utcnow

log = get_logger(__name__)
JOB_ID = "docsbot-reindex"
NOW_JOB_ID = "docsbot-reindex-now"
ANCHOR = datetime(2000, 1, 3, tzinfo=UTC)  # a Monday at midnight: daily/weekly grids look tidy
SLOT_LOOKBACK = timedelta(days=8)


def make_trigger(schedule: Schedule) -> BaseTrigger:
    if schedule.interval_s:
        return IntervalTrigger(seconds=schedule.interval_s, start_date=ANCHOR, timezone=UTC)
    assert schedule.cron is not None
    return CronTrigger.from_crontab(schedule.cron, timezone=UTC)


def latest_slot(trigger: BaseTrigger, now: datetime) -> datetime:
    """The newest fire time at or before `now`: the slot a firing serves, the same in every
    process whatever its timer's jitter."""
    if isinstance(trigger, IntervalTrigger):
        step = trigger.interval
        return ANCHOR + step * ((now - ANCHOR) // step)
    moment = trigger.get_next_fire_time(None, now - SLOT_LOOKBACK)
    slot = None
    while moment is not None and moment <= now:
        slot = moment
        moment = trigger.get_next_fire_time(moment, moment + timedelta(microseconds=1))
    return slot or now.replace(microsecond=0)


class IndexScheduler:
    def __init__(self, jobs: IndexJobs, schedule: Schedule, *, misfire_grace_s: int) -> None:
        self.jobs = jobs
        self.schedule = schedule
        self.misfire_grace_s = misfire_grace_s
        self.trigger = make_trigger(schedule)
        self.scheduler = BackgroundScheduler(timezone=UTC)
        self.scheduler.add_listener(self._busy, EVENT_JOB_MAX_INSTANCES)

    def first_run_time(self, now: datetime | None = None) -> datetime:
        """Due at once if never indexed or a slot was missed since the last run; otherwise the
        next slot. A missed slot older than the grace is skipped by APScheduler, with a log."""
        now = now or utcnow()
        last = last_started(self.jobs.sessions)
        if last is None:
            return now
        due = self.trigger.get_next_fire_time(None, as_utc(last) + timedelta(microseconds=1))
        return due or now

    def start(self) -> None:
        first = self.first_run_time()
        self.scheduler.add_job(
            self._fire,
            self.trigger,
            id=JOB_ID,
            name="re-index the sources",
            coalesce=True,  # after downtime: one catch-up run, not one per missed slot
            max_instances=1,
            misfire_grace_time=self.misfire_grace_s,
            next_run_time=first,
            replace_existing=True,
        )
        self.scheduler.start()
        late = utcnow() - first
        when = "now (a run is due)" if late.total_seconds() >= 0 else f"at {first:%H:%M:%S} UTC"
        log.info("re-indexing %s; next run %s", self.schedule.describe(), when)

    def run_now(self, trigger: str = "home") -> None:
        """A one-off run outside the schedule (App Home's button), on the scheduler's thread
        pool, so the caller returns at once; the lease still keeps runs one at a time."""
        self.scheduler.add_job(
            self._once,
            id=NOW_JOB_ID,
            name="re-index now",
            kwargs={"trigger": trigger},
            replace_existing=True,
            max_instances=1,
            misfire_grace_time=None,
        )

    def shutdown(self) -> None:
        self.jobs.shutdown()
        self.scheduler.shutdown(wait=True)

    def _fire(self) -> None:
        slot = latest_slot(self.trigger, utcnow())
        try:
            self.jobs.run(
                "scheduled",
                scheduled_for=slot,
                on_wait=lambda held: log.info(
                    "scheduled run for %s waits: another run is in progress (%s)",
                    f"{slot:%H:%M:%S}",
                    held.describe() if held else "finishing",
                ),
            )
        except Exception:  # recorded as a failed run; the next slot tries again
            log.exception("scheduled index run for %s failed", f"{slot:%H:%M:%S}")

    def _once(self, trigger: Any) -> None:
        try:
            self.jobs.run(trigger)
        except Exception:
            log.exception("index run (%s) failed", trigger)

    def _busy(self, event: JobEvent) -> None:
        if event.job_id == JOB_ID:
            log.info("skipping a slot: the previous index run is still going")
