"""Logging for people at a terminal (rich, short) and for log shippers (one JSON object per
line), both carrying the id of the question being answered, so one question's lines can be
pulled out of a busy replica's output."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

question_id: ContextVar[int | None] = ContextVar("question_id", default=None)

NOISY_LOGGERS = (
    "httpx",
    "httpcore",
    "sentence_transformers",
    "transformers",
    "urllib3",
    "faiss",
    "alembic",
    "grpc",
    "waitress.queue",  # "Task queue depth is N" on every request of a burst
    "apscheduler.executors.default",  # "Running job ..." every slot; misses stay (WARNING)
)


@contextmanager
def answering(qid: int) -> Iterator[None]:
    """Every log line written while answering `qid` (in this thread) names it."""
    token = question_id.set(qid)
    try:
        yield
    finally:
        question_id.reset(token)


class QuestionIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.question_id = question_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """Fields a log pipeline indexes: time (UTC, ISO 8601), level, logger, message, thread,
    question_id when answering, the exception's traceback as one string."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "thread": record.threadName,
        }
        qid = getattr(record, "question_id", None)
        if qid is not None:
            entry["question_id"] = qid
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        qid = getattr(record, "question_id", None)
        return f"[q{qid}] {text}" if qid is not None else text


class Throttle:
    """At most one line per key per `every_s`, for warnings a flood would repeat: `admit`
    says how many were held back since the last one that passed, or None to hold this one."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, every_s: float = 60.0) -> None:
        self.clock = clock
        self.every_s = every_s
        self._lock = threading.Lock()  # the HTTP threads log at once
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def admit(self, key: str) -> int | None:
        with self._lock:
            now = self.clock()
            last = self._last.get(key)
            if last is not None and now - last < self.every_s:
                self._held[key] = self._held.get(key, 0) + 1
                return None
            self._last[key] = now
            return self._held.pop(key, 0)


def held_back(count: int) -> str:
    return f"; {count} more like it since the last such line" if count else ""


class KnownNotices(logging.Filter):
    """Third-party lines that say nothing to the person on call, or say it too often. Bolt
    reads SLACK_BOT_TOKEN itself and warns on every start that the client's token (the same
    one) wins over it: dropped. waitress warns "Task queue depth is N" for every request that
    waits for a thread, 20 lines in one second of a burst: one a minute."""

    DROPPED = ("`token` will be unused",)
    THROTTLED = ("Task queue depth",)

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.throttle = Throttle(clock)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(text in message for text in self.DROPPED):
            return False
        for text in self.THROTTLED:
            if text in message:
                held = self.throttle.admit(text)
                if held is None:
                    return False
                if held:
                    record.msg, record.args = message + held_back(held), None
        return True


def quiet_progress_bars() -> None:
    """No "Loading weights" bars on every model load. transformers reads the switch when it is
    imported, which commands that load no model (`--help`, `stats`) never do: set it for then,
    and flip it now if it is already loaded."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


def setup_logging(level: str, fmt: str = "text", stream: TextIO | None = None) -> None:
    handler: logging.Handler
    if fmt == "json":
        handler = logging.StreamHandler(stream)
        handler.setFormatter(JsonFormatter())
    else:
        from rich.console import Console
        from rich.logging import RichHandler

        handler = RichHandler(
            console=Console(stderr=True, file=stream),
            show_path=False,
            rich_tracebacks=False,
        )
        handler.setFormatter(TextFormatter("%(message)s"))
    handler.addFilter(QuestionIdFilter())
    handler.addFilter(KnownNotices())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    if level != "DEBUG":
        quiet_progress_bars()
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    # pymilvus logs every failed RPC with a traceback, including ones Milvus Lite answers with
    # "not implemented" and pymilvus then works around; docsbot reports real failures itself.
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
    # "Failed to start MilvusLite server" when another process holds the file: docsbot says
    # what to do about it instead (indexer.store.connect).
    logging.getLogger("milvus_lite").setLevel(logging.CRITICAL)
    # "Added job", and a WARNING for every slot skipped while a long run goes on: docsbot says
    # both in its own words (the scheduler's start line, "skipping a slot").
    if level != "DEBUG":
        logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
    # Milvus Lite's in-process gRPC server logs those same "not implemented" calls as errors.
    logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
