"""One Slack rate budget per workspace, shared by every worker of the process.

Slack limits each Web API method per workspace per app (Tier 2: 20 calls a minute, Tier 3: 50,
Tier 4: 100) and `chat.postMessage` to about one message a second per channel. Four workers
streaming answers would ask for far more `chat.update` calls than Tier 3 allows, so every call
the bot makes takes a token from a bucket first:

- a bucket per method (per channel for `chat.postMessage`) refills at the tier's rate, scaled
  by this replica's share (DOCSBOT_SLACK_RATE_SHARE) and by a margin, and holds a small burst:
  burst + a minute's refill never exceeds the tier, so no 60-second window does either;
- final answers and apologies (`FINAL`) wait for a token; notices (`NOTICE`) wait briefly;
  progress updates (`PROGRESS`) never wait, and only take a token while a reserve is left for
  final answers, so progress is what gets slowed or dropped first;
- a 429 pauses the whole bucket for its `Retry-After`, for every worker.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

PER_MINUTE = {"t1": 1, "t2": 20, "t3": 50, "t4": 100}
TIERS = {
    "chat.startStream": "t2",
    "chat.stopStream": "t2",
    "chat.update": "t3",
    "chat.delete": "t3",
    "conversations.replies": "t3",
    "conversations.history": "t3",
    "conversations.info": "t3",
    "chat.appendStream": "t4",
    "chat.postEphemeral": "t4",
    "assistant.threads.setTitle": "t4",
    "assistant.threads.setSuggestedPrompts": "t4",
    "views.open": "t4",
    "views.publish": "t4",
    "views.update": "t4",
    "users.info": "t4",
}
POST_PER_SECOND = 1.0  # chat.postMessage, per channel ("short bursts allowed")
MARGIN = 0.8  # of each allowance: clocks, other apps' retries and rounding are not ours
BURST_SHARE = 0.2  # of a minute's allowance that may go at once
PROGRESS_RESERVE = 0.5  # of the burst kept for final answers: progress may not dip below it


class Priority(IntEnum):
    PROGRESS = 0  # a half-written answer: skipped when there is no token to spare
    NOTICE = 1  # a thank-you, a greeting, a busy notice: waits a little
    FINAL = 2  # the answer, or the apology in its place: waits for its turn


@dataclass
class Bucket:
    capacity: float
    rate: float  # tokens per second
    tokens: float
    updated: float
    paused_until: float = 0.0

    def refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def wait_s(self, now: float, need: float) -> float:
        """Seconds until `need` tokens are there (0 if they are), counting a 429 pause."""
        paused = max(0.0, self.paused_until - now)
        missing = max(0.0, need - self.tokens)
        return max(paused, missing / self.rate if self.rate > 0 else math.inf)


class SlackBudget:
    def __init__(
        self,
        share: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.share = share
        self.clock = clock
        self.sleep = sleep
        self._buckets: dict[tuple[str, str, str], Bucket] = {}
        self._lock = threading.Lock()

    def _bucket(self, team: str, method: str, channel: str) -> Bucket | None:
        if method == "chat.postMessage":
            key = (team, method, channel)
            per_second = POST_PER_SECOND * self.share * MARGIN
            capacity, rate = max(1.0, 3 * per_second), per_second
        elif method in TIERS:
            key = (team, method, "")
            per_minute = PER_MINUTE[TIERS[method]] * self.share * MARGIN
            capacity = max(1.0, per_minute * BURST_SHARE)
            rate = (per_minute - capacity) / 60 if per_minute > capacity else per_minute / 60
        else:
            return None  # Slack's "special" tier (setStatus, auth.test): generous, unbudgeted
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = Bucket(capacity, rate, capacity, self.clock())
            self._buckets[key] = bucket
        return bucket

    def take(
        self,
        method: str,
        *,
        team: str = "",
        channel: str = "",
        priority: Priority = Priority.FINAL,
        wait_s: float = 0.0,
    ) -> bool:
        """Take a token for one call; False when none came within `wait_s` (never waits for
        PROGRESS, which also leaves a reserve for final answers)."""
        deadline = self.clock() + (0.0 if priority is Priority.PROGRESS else wait_s)
        while True:
            with self._lock:
                bucket = self._bucket(team, method, channel)
                if bucket is None:
                    return True
                now = self.clock()
                bucket.refill(now)
                reserve = bucket.capacity * PROGRESS_RESERVE if priority is Priority.PROGRESS else 0
                need = 1.0 + reserve
                delay = bucket.wait_s(now, need)
                if delay <= 0:
                    bucket.tokens -= 1.0
                    return True
            if now + delay > deadline:
                return False
            self.sleep(min(delay, max(0.0, deadline - now)) + 0.01)

    def rate_limited(
        self, method: str, retry_after_s: float, *, team: str = "", channel: str = ""
    ) -> None:
        """Slack said 429: nobody in this process calls `method` there until it has waited."""
        with self._lock:
            bucket = self._bucket(team, method, channel)
            if bucket is None:
                return
            bucket.paused_until = max(bucket.paused_until, self.clock() + retry_after_s)
            bucket.tokens = min(bucket.tokens, 0.0)
