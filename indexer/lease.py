"""A lease in SQL: one holder at a time across processes and hosts, with expiry and renewal.

The holder renews every third of the lease; a holder that crashes stops renewing, and once
its lease has expired anyone may take it. A holder that notices it lost the lease (it could
not renew in time: a database outage, a paused VM) stops its work at the next check.
Clocks: expiry is written and compared by each process's own UTC clock, so hosts need NTP
(seconds of skew are harmless next to a lease of a minute).
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, update
from sqlalchemy.orm import Session, sessionmaker

from config.db import insert_if_absent
from config.logger import get_logger
from indexer.tables import Lease, as_utc, utcnow

log = get_logger(__name__)


class LeaseLost(RuntimeError):
    """Another process holds the lease now: whatever this one was doing must stop."""


# This run of this process: tells it from an earlier process that had the same pid (a
# restarted container is pid 1 again). Identity, not configuration: fixed for the process.
_INCARNATION = uuid.uuid4().hex[:8]
_serial = itertools.count(1)


def _pid_namespace() -> str:
    """Containers sharing the host's network share its hostname but not its pids."""
    try:
        return format(os.stat("/proc/self/ns/pid").st_ino, "x")
    except OSError:
        return "-"


def process_id() -> str:
    """A new holder id: host:pid:incarnation.pidns.serial, unique even within a process (two
    holders in one process must not share a lease)."""
    return f"{socket.gethostname()}:{os.getpid()}:{_INCARNATION}.{_pid_namespace()}.{next(_serial)}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def holder_gone(holder: str) -> bool:
    """True only when the holder's process surely stopped: it ran on this host, in this pid
    namespace, and its pid is gone or now belongs to this process's new incarnation. Anything
    else (another host, another container, this very process) waits for expiry."""
    host, _, rest = holder.partition(":")
    pid_text, _, token = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    incarnation, _, tail = token.partition(".")
    namespace = tail.partition(".")[0] if tail else None
    if namespace is not None and namespace != _pid_namespace():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return incarnation != _INCARNATION
    return not pid_alive(pid)


@dataclass(frozen=True)
class LeaseInfo:
    holder: str
    acquired_at: datetime
    expires_at: datetime
    run_id: int | None

    def describe(self) -> str:
        run = f"run #{self.run_id}, " if self.run_id else ""
        return (
            f"{run}held by {self.holder} since {self.acquired_at:%Y-%m-%d %H:%M:%S} UTC, "
            f"lease until {self.expires_at:%H:%M:%S} UTC"
        )


class SqlLease:
    def __init__(
        self, sessions: sessionmaker[Session], name: str, ttl_s: float, holder: str | None = None
    ) -> None:
        self.sessions = sessions
        self.name = name
        self.ttl = timedelta(seconds=ttl_s)
        self.holder = holder or process_id()
        self.lost = threading.Event()
        self.stop = threading.Event()  # set by the owner to end the work early (shutdown)
        self._held = False

    def current(self) -> LeaseInfo | None:
        with self.sessions() as session:
            row = session.get(Lease, self.name)
            if row is None:
                return None
            return LeaseInfo(
                row.holder, as_utc(row.acquired_at), as_utc(row.expires_at), row.run_id
            )

    def try_acquire(self) -> bool:
        now = utcnow()
        values = {
            "holder": self.holder,
            "acquired_at": now,
            "expires_at": now + self.ttl,
            "run_id": None,
        }
        held = self.current()
        takeover = held is not None and holder_gone(held.holder)
        with self.sessions.begin() as session:
            # Conditional writes, so two processes racing for an expired lease cannot both
            # win: PostgreSQL re-checks the WHERE after the first commit; SQLite serialises.
            conditions = [Lease.expires_at < now, Lease.holder == self.holder]
            if takeover and held is not None:
                conditions.append(Lease.holder == held.holder)
            result = session.execute(
                update(Lease).where(Lease.name == self.name, or_(*conditions)).values(**values)
            )
            won = result.rowcount == 1  # type: ignore[attr-defined]
            if not won:
                inserted = session.execute(
                    insert_if_absent(session, Lease, ["name"], name=self.name, **values).returning(
                        Lease.name
                    )
                )
                won = inserted.first() is not None
        if won:
            if takeover and held is not None:
                log.warning("took over the %s lease from %s (process gone)", self.name, held.holder)
            elif held is not None and held.holder != self.holder:
                log.warning("took over the %s lease from %s (expired)", self.name, held.holder)
            self._held = True
            self.lost.clear()
        return won

    def renew(self) -> bool:
        now = utcnow()
        with self.sessions.begin() as session:
            result = session.execute(
                update(Lease)
                .where(Lease.name == self.name, Lease.holder == self.holder)
                .values(expires_at=now + self.ttl)
            )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            log.error("lost the %s lease: another process holds it now", self.name)
            self.lost.set()
            return False
        return True

    def set_run(self, run_id: int) -> None:
        with self.sessions.begin() as session:
            session.execute(
                update(Lease)
                .where(Lease.name == self.name, Lease.holder == self.holder)
                .values(run_id=run_id)
            )

    def release(self) -> None:
        self._held = False
        with self.sessions.begin() as session:
            session.execute(
                delete(Lease).where(Lease.name == self.name, Lease.holder == self.holder)
            )

    def check(self) -> None:
        """Called between units of work: stop if the lease is gone or shutdown was asked."""
        if self.lost.is_set():
            raise LeaseLost(f"the {self.name} lease was taken over by another process")
        if self.stop.is_set():
            raise LeaseLost("stopping: docsbot is shutting down")

    @contextmanager
    def renewing(self) -> Iterator[None]:
        """Keep the lease alive while the body runs; release it afterwards."""
        done = threading.Event()

        def loop() -> None:
            deadline = utcnow() + self.ttl
            while not done.wait(self.ttl.total_seconds() / 3):
                try:
                    if not self.renew():
                        return
                    deadline = utcnow() + self.ttl
                except Exception:  # a database blip: retry until the lease would have expired
                    log.exception("could not renew the %s lease", self.name)
                    if utcnow() >= deadline:
                        self.lost.set()
                        return

        thread = threading.Thread(target=loop, name=f"{self.name}-lease", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()
            try:
                self.release()
            except Exception:  # it expires on its own
                log.exception("could not release the %s lease", self.name)
