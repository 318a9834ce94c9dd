"""A bounded pool that answers queued questions: claims rows from SQL, so a question survives
a crash (its lease runs out and it is claimed again) and no two workers take the same one."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from bot.queue.store import QuestionStore
from config.logger import get_logger
from indexer.lease import holder_gone, process_id

log = get_logger(__name__)
LEASE_S = 90.0  # a crashed worker's questions are claimed again this long after its last renewal
POLL_S = 2.0  # new questions normally wake the pool at once; polling finds other processes' work


class WorkerPool:
    def __init__(
        self,
        store: QuestionStore,
        handle: Callable[[int], None],
        *,
        workers: int,
        lease_s: float = LEASE_S,
        poll_s: float = POLL_S,
    ) -> None:
        self.store = store
        self.handle = handle
        self.workers = workers
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.worker_id = process_id()
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="answer")
        self._active: set[int] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._stop_renewing = threading.Event()  # only once answers in flight are done
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Begin answering, starting with anything a previous run left queued or running."""
        try:
            if taken := self.store.release_dead(socket.gethostname(), holder_gone):
                log.info("%d question(s) left running by a stopped process will be answered", taken)
        except Exception:  # their leases run out and they are claimed anyway
            log.exception("could not look for questions left by a stopped process")
        for target, name in ((self._dispatch, "dispatcher"), (self._heartbeat, "lease-renewal")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("worker pool %s started with %d workers", self.worker_id, self.workers)

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop claiming; let answers in flight finish (their rows stay claimable if not)."""
        self._stop.set()
        self._wake.set()
        for thread in self._threads[:1]:  # the dispatcher: no new claims after this
            thread.join(timeout)
        # Leases are renewed until every answer in flight is done: a slow answer outliving
        # its lease would be claimed, and answered twice, by another replica.
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._stop_renewing.set()
        for thread in self._threads[1:]:
            thread.join(timeout)
        try:
            if released := self.store.release(self.worker_id):
                log.info("put %d unstarted question(s) back in the queue", released)
        except Exception:  # their leases run out and another worker takes them anyway
            log.exception("could not put unstarted questions back in the queue")

    @property
    def active(self) -> int:
        with self._lock:
            return len(self._active)

    def _dispatch(self) -> None:
        while not self._stop.is_set():
            free = self.workers - self.active
            claimed: list[int] = []
            if free > 0:
                try:
                    claimed = self.store.claim(self.worker_id, free, self.lease_s)
                except Exception:  # the database may be restarting: keep trying
                    log.exception("could not claim questions; retrying in %.0f s", self.poll_s)
            for question_id in claimed:
                with self._lock:
                    self._active.add(question_id)
                future = self._executor.submit(self._run, question_id)
                future.add_done_callback(self._done(question_id))
            if claimed and len(claimed) == free:
                continue  # maybe more are waiting: look again once a worker frees up
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def _run(self, question_id: int) -> None:
        try:
            self.handle(question_id)
        except Exception:  # the handler reports its own failures; this is the last guard
            log.exception("question %s: unhandled error in the worker", question_id)

    def _done(self, question_id: int) -> Callable[[Future[None]], None]:
        def callback(_future: Future[None]) -> None:
            with self._lock:
                self._active.discard(question_id)
            self._wake.set()

        return callback

    def _heartbeat(self) -> None:
        while not self._stop_renewing.wait(self.lease_s / 3):
            with self._lock:
                active = sorted(self._active)
            try:
                self.store.renew(self.worker_id, active, self.lease_s)
            except Exception:
                log.exception("could not renew the lease on questions %s", active)
