"""Several docsbot processes on one box, as the docs tell operators to run them: one
PostgreSQL, one `milvus-lite server` (gRPC on loopback), real `docsbot` processes started
with only the environment, Slack and OpenAI faked on loopback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.queue.store import Incoming, QuestionStore
from bot.queue.tables import Question
from bot.slack import blocks as kit
from config.db import make_engine, make_session_factory, upgrade
from indexer.runner import FLUSH_CHUNKS
from indexer.tables import IndexedChunk, IndexedDocument, IndexRun
from tests.conftest import MILVUS_DOCS, stop_process, subprocess_environment, wait_until
from tests.fakes.openai_server import FakeOpenAI, hash_embedding
from tests.fakes.slack_server import FakeSlack, action_ids
from tests.test_cli import DOCSBOT
from tests.test_serve import free_port, wait_healthy

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
MILVUS_LITE = [sys.executable, "-c", "import sys; from milvus_lite.cmdline import main; main()"]


@pytest.fixture
def milvus_server(tmp_path: Path) -> Iterator[str]:
    """`milvus-lite server`: the shared index of several processes on one box."""
    port = free_port()
    log = (tmp_path / "milvus-lite.log").open("w")
    server = subprocess.Popen(
        [
            *MILVUS_LITE,
            "server",
            "--data-dir",
            str(tmp_path / "milvus"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def listening() -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_until(listening, 60, "milvus-lite server")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def start(args: list[str], cwd: Path, env: dict[str, str], name: str) -> subprocess.Popen[str]:
    # Logs go to files: a pipe nobody reads fills up and blocks a chatty process.
    log = (cwd / f"{name}.log").open("w")
    return subprocess.Popen([*DOCSBOT, *args], cwd=cwd, env=env, stdout=log, stderr=log, text=True)


def write_corpus(root: Path, pages: int) -> None:
    """Distinct pages with several sections each: enough chunks for a run of many seconds."""
    words = ["replica", "shard", "segment", "index", "vector", "query", "collection", "schema"]
    for n in range(pages):
        sections = []
        for s in range(4):
            body = " ".join(f"{words[(n + s + k) % len(words)]}{n}x{k}" for k in range(90))
            sections.append(f"## Section {s} of page {n}\n\n{body}.\n")
        (root / f"page{n:04d}.md").write_text(f"# Page {n}\n\n" + "\n".join(sections))


def shared_env(postgres_url: str, milvus: str, **extra: str) -> dict[str, str]:
    values = {
        "HF_HUB_OFFLINE": "1",
        "DOCSBOT_DATABASE_URL": postgres_url,
        "DOCSBOT_MILVUS_URI": milvus,
        "DOCSBOT_EMBEDDING_MODEL": MINILM,
        "DOCSBOT_RERANKER_MODEL": "none",
        "DOCSBOT_LOG_LEVEL": "INFO",
        "DOCSBOT_LOG_FORMAT": "json",
    }
    return subprocess_environment(**{**values, **extra})


class GatedEmbeddings:
    """The schedulers' embedding server (the remote-embedder path, hash vectors): once the
    first group of a run is embedded and written, the next request waits at a gate the test
    holds. The run's holder is then paused at a point the test chose, not at a moment it
    polled for."""

    def __init__(self, after_texts: int) -> None:
        self.after_texts = after_texts
        self.embedded = 0
        self.paused = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, text: str) -> list[float]:
        if text != "dimension probe":
            with self._lock:
                self.embedded += 1
                hold = self.embedded > self.after_texts and not self.release.is_set()
            if hold:
                self.paused.set()
                self.release.wait(120)
        return hash_embedding(text)


def test_two_schedulers_run_each_slot_once_and_take_over_from_a_killed_holder(
    tmp_path: Path, postgres_url: str, milvus_server: str
) -> None:
    pages = 160  # 4 sections each: 640 chunks, three groups of FLUSH_CHUNKS
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_corpus(corpus, pages)
    gate = GatedEmbeddings(after_texts=FLUSH_CHUNKS)
    embeddings = FakeOpenAI().start()
    embeddings.embedding_fn = gate
    env = shared_env(
        postgres_url,
        milvus_server,
        DOCSBOT_SOURCES=str(corpus),
        DOCSBOT_EMBEDDING_MODEL="hash-embedding",
        DOCSBOT_EMBEDDING_URL=f"{embeddings.url}/v1",
        DOCSBOT_EMBEDDING_BATCH_SIZE="64",
        DOCSBOT_INDEX_SCHEDULE="5s",
        DOCSBOT_INDEX_LEASE_S="4",
    )
    engine = make_engine(postgres_url)
    upgrade(engine)
    sessions = make_session_factory(engine)

    def runs() -> list[IndexRun]:
        with sessions() as session:
            return list(session.scalars(select(IndexRun).order_by(IndexRun.id)))

    def documents() -> int:
        with sessions() as session:
            return int(session.scalar(select(func.count()).select_from(IndexedDocument)) or 0)

    schedulers = {
        name: start(["scheduler"], tmp_path, env, name) for name in ("scheduler-a", "scheduler-b")
    }
    try:
        # Both fire at once on an empty index; one holds the lease, writes its first group,
        # and waits at the gate for the second.
        assert gate.paused.wait(240), "no run reached its second group"
        [first] = [r for r in runs() if r.status == "running"]
        assert 0 < documents() < pages  # part way: what a crash must not lose or duplicate
        holder_pid = int(first.holder.split(":")[1])
        holder = next(p for p in schedulers.values() if p.pid == holder_pid)
        holder.kill()  # killed mid-run
        holder.wait()
        gate.release.set()
        survivor = next(p for p in schedulers.values() if p.pid != holder_pid)

        def taken_over() -> bool:
            return any(r.status == "succeeded" and r.holder != first.holder for r in runs())

        wait_until(taken_over, 240, "the other scheduler to take over and finish")
        with sessions() as session:
            chunks = session.scalar(select(func.count()).select_from(IndexedChunk))
        assert documents() == pages
        from pymilvus import MilvusClient

        client = MilvusClient(uri=milvus_server)
        stats = client.query("docsbot_chunks", filter='id != ""', output_fields=["count(*)"])
        assert stats[0]["count(*)"] == chunks  # the index is complete and matches SQL
        client.close()

        # Two more slots with only the survivor, then restart the killed one beside it.
        restarted = start(["scheduler"], tmp_path, env, "scheduler-a2")
        schedulers["restarted"] = restarted
        slots_before = {r.scheduled_for for r in runs()}
        wait_until(
            lambda: len({r.scheduled_for for r in runs()} - slots_before) >= 2,
            90,
            "two more scheduled slots",
        )
        assert survivor.poll() is None and restarted.poll() is None
    finally:
        gate.release.set()
        for process in schedulers.values():
            stop_process(process)
        embeddings.stop()
        recorded = runs()
        engine.dispose()
    done = [r for r in recorded if r.status in ("succeeded", "failed")]
    per_slot = Counter(r.scheduled_for for r in done)
    assert per_slot and max(per_slot.values()) == 1, per_slot  # each slot exactly once
    # Abandoned: the killed holder's run, and any run the final SIGTERMs stopped mid-way.
    shutdown = ["stopping: docsbot is shutting down"]
    abandoned = [r for r in recorded if r.status == "abandoned" and r.errors != shutdown]
    assert [r.id for r in abandoned] == [first.id]
    assert abandoned[0].errors == ["its process stopped before finishing (lease expired)"]
    assert all(r.status != "running" for r in recorded)
    survivor_name = next(n for n, p in schedulers.items() if p is survivor)
    assert "took over the index lease" in (tmp_path / f"{survivor_name}.log").read_text()


QUEUED = 24


def test_two_bot_replicas_answer_twenty_four_queued_questions_once_each(
    tmp_path: Path, postgres_url: str, milvus_server: str
) -> None:
    env = shared_env(postgres_url, milvus_server, DOCSBOT_SOURCES=str(MILVUS_DOCS))
    indexed = subprocess.run(
        [*DOCSBOT, "index"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert indexed.returncode == 0, indexed.stderr

    engine = make_engine(postgres_url)
    upgrade(engine)
    store = QuestionStore(make_session_factory(engine), max_queued=100)
    for n in range(QUEUED):
        ts = f"1700000000.{n:06d}"
        # Over eight channels: Slack allows one message a second per channel, which the bot
        # keeps; in one channel the test would time Slack's limit, not the replicas. (The
        # workspace's chat.update tier still paces the answers: QUEUED stays small.)
        channel = f"C{n % 8}"
        store.record(
            Incoming(f"Ev{n}", "mention", "T1", channel, "U1", f"Question {n}: Windows?", ts, ts)
        )
    with FakeSlack() as slack, FakeOpenAI() as openai:
        openai.chat_reply = "Run Milvus on Windows with Docker Desktop [1]."
        openai.delay_s = 0.3
        replicas = []
        for name in ("bot-a", "bot-b"):
            port = free_port()
            replica_env = dict(
                env,
                SLACK_BOT_TOKEN="xoxb-replica",
                SLACK_SIGNING_SECRET="replica-secret",
                DOCSBOT_SLACK_API_URL=slack.api_url,
                OPENAI_BASE_URL=f"{openai.url}/v1",
                DOCSBOT_PORT=str(port),
                DOCSBOT_WORKERS="3",
            )
            process = start(["serve", "--no-scheduler"], tmp_path, replica_env, name)
            replicas.append((process, port))
        try:
            for process, port in replicas:
                wait_healthy(f"http://127.0.0.1:{port}/healthz", process)

            def answered() -> int:
                with store.sessions() as session:
                    return int(
                        session.scalar(select(func.count()).where(Question.status == "answered"))
                        or 0
                    )

            wait_until(lambda: answered() == QUEUED, 240, f"{QUEUED} answers")
        finally:
            for process, _ in replicas:
                stop_process(process)
        finals = [
            call.params
            for call in slack.calls_to("chat.update")
            if kit.FEEDBACK_UP in action_ids(call.params.get("blocks") or [])
        ]
    by_thread = Counter(params["ts"] for params in finals)
    posted = Counter(c.params.get("thread_ts") for c in slack.calls_to("chat.postMessage"))
    assert len(posted) == QUEUED and set(posted.values()) == {1}  # one placeholder per question
    assert len(by_thread) == QUEUED and set(by_thread.values()) == {1}  # one answer each
    with store.sessions() as session:
        workers = {w.split(":")[1] for w in session.scalars(select(Question.worker_id))}
        attempts = set(session.scalars(select(Question.attempts)))
    engine.dispose()
    assert len(workers) == 2, workers  # both replicas answered some
    assert attempts == {1}
    for process, _ in replicas:
        assert process.returncode == 0
    answered_lines = []
    for name in ("bot-a", "bot-b"):
        text = (tmp_path / f"{name}.log").read_text()
        assert "Traceback" not in text
        assert "will be unused" not in text  # Bolt's notice about SLACK_BOT_TOKEN, every start
        entries = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        answered_lines += [e for e in entries if e["message"].startswith("question ")]
    # JSON logs: every "question N answered" line carries N as question_id, for log search.
    ids = {e["question_id"] for e in answered_lines if " answered " in e["message"]}
    assert len(ids) == QUEUED


if os.name != "posix":  # signals and milvus-lite server are POSIX-only
    pytestmark = pytest.mark.skip("POSIX only")
