"""Prometheus metrics on /metrics: what this process did (counters, latency histograms) and
what the shared state is (index size, last good run, queue depth), read from SQL at scrape.

Counters are per process, as Prometheus expects from replicas (sum them in queries); the
gauges read shared state, so every replica reports the same value (use max, not sum).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker

from bot.answer.types import Answer
from config.logger import get_logger
from indexer.jobs import index_size, last_success

log = get_logger(__name__)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds: a CPU reranker takes several, an LLM answer ten or more; 60 s is a timeout.
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)


class SharedState(Collector):
    def __init__(
        self, sessions: sessionmaker[Session], queued: Callable[[], int] | None = None
    ) -> None:
        self.sessions = sessions
        self.queued = queued

    def collect(self) -> Iterator[Metric]:
        try:
            docs, chunks = index_size(self.sessions)
            good = last_success(self.sessions)
            queued = self.queued() if self.queued else None
        except Exception as error:  # a scrape must not fail because the database blinked
            log.warning("metrics: could not read the database: %s", error)
            return
        yield GaugeMetricFamily("docsbot_index_documents", "Documents in the index", value=docs)
        yield GaugeMetricFamily("docsbot_index_chunks", "Chunks in the index", value=chunks)
        finished = good.finished_at.timestamp() if good and good.finished_at else 0.0
        yield GaugeMetricFamily(
            "docsbot_index_last_success_timestamp_seconds",
            "When the last successful index run finished (0: never); alert on its age",
            value=finished,
        )
        if queued is not None:
            yield GaugeMetricFamily(
                "docsbot_questions_queued", "Questions waiting for a worker", value=queued
            )


class Metrics:
    def __init__(
        self, sessions: sessionmaker[Session], queued: Callable[[], int] | None = None
    ) -> None:
        self.registry = CollectorRegistry()
        self.questions = Counter(
            "docsbot_questions",
            "Questions handled by this process, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.stage_seconds = Histogram(
            "docsbot_stage_seconds",
            "Seconds spent per answering stage (condense, embed, search, rerank, generate, total)",
            ["stage"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.registry.register(SharedState(sessions, queued))

    def answered(self, answer: Answer) -> None:
        self.questions.labels("abstained" if answer.abstained else "answered").inc()
        for stage, seconds in answer.timings.items():
            self.stage_seconds.labels(stage).observe(seconds)

    def failed(self, reason: str) -> None:
        """reason: llm_unavailable, llm_empty, llm_deadline, embedder_unavailable,
        reranker_unavailable, index_unavailable, slack_error, internal_error, expired."""
        self.questions.labels(f"failed_{reason}").inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
