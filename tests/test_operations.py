"""What operators and doc owners see: App Home, /metrics, JSON logs, `report gaps`,
`feedback export`, `db upgrade`, `runs`, and a busy or locked index. Real parts: the bot on
loopback with fake Slack/OpenAI, Milvus Lite, SQLite, all-MiniLM-L6-v2; the CLI in-process
through Typer's runner, or as a real process where a second process is the point."""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from bot.answer.types import Answer, Citation
from bot.cli.app import app
from bot.ops.logs import KnownNotices, setup_logging
from bot.ops.reindex import IndexControl
from bot.queue.store import Incoming, QuestionStore
from bot.slack import blocks as kit
from bot.slack.home import REINDEX_ACTION
from bot.slack.server import BotServer, build_server, slack_client
from bot.wiring import Backends, make_answerer, open_backends
from config.settings import Settings
from indexer.embedding import LocalEmbedder
from indexer.jobs import IndexBusy, recent_runs
from indexer.lease import SqlLease
from indexer.tables import Lease, utcnow
from tests.conftest import MILVUS_DOCS, MINILM, milvus_docs_source, wait_until
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import FakeSlack, SlackSender, mention
from tests.test_cli import run

SECRET = "ops-secret"
ADMIN = "UADMIN"
WINDOWS = "How do I install Milvus on Windows?"


@dataclass
class Ops:
    backends: Backends
    server: BotServer
    slack: FakeSlack
    send: SlackSender
    store: QuestionStore

    def ask(self, ts: str) -> None:
        """A mention, waited for until its answer is recorded."""
        self.send.event(mention(WINDOWS, channel="C1", user="U1", ts=ts))
        wait_until(
            lambda: (q := self.store.find(1)) is not None and q.status == "answered",
            60,
            "the question to be answered",
        )

    def metrics(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.server.port}/metrics", timeout=5).text

    def home_opened(self, user: str) -> dict[str, Any]:
        before = len(self.slack.calls_to("views.publish"))
        event = {"type": "app_home_opened", "user": user, "channel": "D1", "tab": "home"}
        assert self.send.event(event).status_code == 200
        return self.published(before)

    def published(self, before: int) -> dict[str, Any]:
        wait_until(
            lambda: len(self.slack.calls_to("views.publish")) > before, 30, "App Home to publish"
        )
        return self.slack.calls_to("views.publish")[-1].params

    def click_reindex(self, user: str) -> dict[str, Any]:
        before = len(self.slack.calls_to("views.publish"))
        payload = {
            "type": "block_actions",
            "user": {"id": user, "team_id": "T1"},
            "trigger_id": "trigger.1",
            "container": {"type": "view", "view_id": "VHOME"},
            "view": {"id": "VHOME", "type": "home"},
            "actions": [{"type": "button", "action_id": REINDEX_ACTION, "action_ts": "1"}],
        }
        assert self.send.interactive(payload).status_code == 200
        return self.published(before)


def view_text(view: dict[str, Any]) -> str:
    return json.dumps(view, ensure_ascii=False)


@pytest.fixture
def ops(
    indexed_data: Path,
    make_settings: Callable[..., Settings],
    docs_copy: Path,
    minilm: LocalEmbedder,
    fake_openai: FakeOpenAI,
) -> Iterator[Ops]:
    fake_openai.chat_reply = "Run Milvus on Windows with Docker Desktop [1]."
    with FakeSlack() as slack:
        settings = make_settings(
            sources=[milvus_docs_source(docs_copy)],
            slack_bot_token="xoxb-ops",
            slack_signing_secret=SECRET,
            slack_api_url=slack.api_url,
            openai_base_url=f"{fake_openai.url}/v1",
            openai_api_key="test",
            admin_users=[ADMIN],
            workers=1,
        )
        backends = open_backends(settings, embedder=minilm)
        control = IndexControl(backends, schedule=False)
        assert control.jobs.run("manual") is not None
        store = QuestionStore(backends.sessions)
        answerer = make_answerer(backends, None, load=False)
        server = build_server(settings, answerer, store, slack_client(settings), control)
        server.start(host="127.0.0.1", port=0)
        send = SlackSender(f"http://127.0.0.1:{server.port}/slack/events", SECRET)
        try:
            yield Ops(backends, server, slack, send, store)
        finally:
            server.stop()
            backends.close()


def test_app_home_shows_the_numbers_and_lets_only_admins_reindex(ops: Ops) -> None:
    ops.ask("100.000001")
    view = ops.home_opened("U1")
    assert view["user_id"] == "U1" and view["view"]["type"] == "home"
    text = view_text(view["view"])
    assert "1 question · 1 answered" in text
    assert "7 documents" in text and "run #1 (manual) succeeded" in text
    assert REINDEX_ACTION not in text and f"<@{ADMIN}>" in text  # not an admin: no button
    # Pages of a folder without a base URL are file:// links: shown as names, not as links.
    assert "Most cited docs" in text and "<None|" not in text and "<file:" not in text
    # What answers are made with, and what runs the local models.
    assert "Answering with embedding: " in text and "(torch float32) · reranker: none" in text

    refused = ops.click_reindex("U1")
    assert "Only the admins" in view_text(refused["view"])
    assert len(recent_runs(ops.backends.sessions)) == 1

    admin_view = ops.home_opened(ADMIN)
    assert REINDEX_ACTION in view_text(admin_view["view"])
    started = ops.click_reindex(ADMIN)
    assert "Re-index started" in view_text(started["view"])

    def done() -> bool:
        runs = recent_runs(ops.backends.sessions)
        return len(runs) == 2 and runs[0].status != "running"

    wait_until(done, 60, "the App Home run to end")
    assert [(r.trigger, r.status) for r in recent_runs(ops.backends.sessions)] == [
        ("home", "succeeded"),
        ("manual", "succeeded"),
    ]

    holder = SqlLease(ops.backends.sessions, "index", ttl_s=60, holder="elsewhere:1:x")
    assert holder.try_acquire()
    busy = ops.click_reindex(ADMIN)
    assert "already running" in view_text(busy["view"]) and "elsewhere:1:x" in view_text(busy)

    # The holder crashed: its row stays behind, expired. That is no reason to refuse.
    with ops.backends.sessions.begin() as session:
        session.execute(update(Lease).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert "Re-index started" in view_text(ops.click_reindex(ADMIN)["view"])


def test_metrics_count_outcomes_stages_and_index_state(ops: Ops) -> None:
    before = ops.metrics()
    assert 'docsbot_questions_total{outcome="answered"}' not in before
    assert "docsbot_index_documents 7.0" in before
    assert "docsbot_index_last_success_timestamp_seconds 0.0" not in before

    ops.ask("100.000001")
    wait_until(lambda: 'outcome="answered"' in ops.metrics(), 10, "the answer to be counted")
    after = ops.metrics()
    assert 'docsbot_questions_total{outcome="answered"} 1.0' in after
    assert 'docsbot_stage_seconds_count{stage="total"} 1.0' in after
    assert 'docsbot_stage_seconds_count{stage="search"} 1.0' in after
    chunks = ops.backends.store.count()
    assert f"docsbot_index_chunks {float(chunks)}" in after
    assert "docsbot_questions_queued 0.0" in after


def test_json_logs_carry_the_question_id(ops: Ops) -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    setup_logging("INFO", "json", stream=stream)
    try:
        ops.send.event(mention(WINDOWS, channel="C1", user="U1", ts="100.000001"))
        ops.slack.wait_for("chat.update", lambda p: kit.FEEDBACK_UP in view_text(p))
        wait_until(lambda: "question 1 answered" in stream.getvalue(), 30, "the answered log line")
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    answered = [e for e in lines if e["message"].startswith("question 1 answered")]
    assert answered and answered[0]["question_id"] == 1 and answered[0]["level"] == "INFO"
    assert all({"time", "level", "logger", "message"} <= set(e) for e in lines)


def test_waitress_queue_warnings_are_one_line_a_minute() -> None:
    """waitress warns for every request that waits for a thread: a burst of 50 mentions gave
    20 lines in a second (bench/slack_load.py). The person on call gets one a minute."""
    now = [1000.0]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(KnownNotices(clock=lambda: now[0]))
    queue, bolt = logging.getLogger("waitress.queue"), logging.getLogger("slack_bolt.App")
    for logger in (queue, bolt):
        logger.addHandler(handler)
    try:
        for depth in range(1, 21):
            queue.warning("Task queue depth is %d", depth)
        now[0] += 61
        queue.warning("Task queue depth is %d", 3)
        bolt.warning("As `installation_store` or `authorize` has been used, `token` will be unused")
    finally:
        for logger in (queue, bolt):
            logger.removeHandler(handler)
    assert stream.getvalue().splitlines() == [
        "Task queue depth is 1",
        "Task queue depth is 3; 19 more like it since the last such line",
    ]


def point_cli_at(settings: Settings, monkeypatch: pytest.MonkeyPatch, **extra: str) -> None:
    """The in-process CLI reads the environment: give it the test's storage and model."""
    for name, value in {
        "DOCSBOT_DATABASE_URL": settings.database_url,
        "DOCSBOT_MILVUS_URI": settings.milvus_uri,
        "DOCSBOT_EMBEDDING_MODEL": MINILM,
        "DOCSBOT_RERANKER_MODEL": "none",
        **extra,
    }.items():
        monkeypatch.setenv(name, value)


def fill_feedback(store: QuestionStore) -> None:
    """Questions as the bot records them: two phrasings of a gap (👎 with a reason), an
    abstention, and a good answer (👍) that is no gap."""
    doc = Citation(1, "Operational FAQ", "Windows", "faq/operational_faq.md", "https://d/faq", 0.4)
    rows = [
        ("How do I rotate the API key?", "llm", "down", "It talks about tokens, not keys"),
        ("how can I rotate my api keys", "llm", "down", '=HYPERLINK("http://evil")'),
        ("Which GPU does the billing dashboard need?", "abstained", None, None),
        ("How do I install Milvus on Windows?", "llm", "up", None),
    ]
    for n, (text, mode, rating, reason) in enumerate(rows):
        ts = f"1700000000.{n:06d}"
        store.record(Incoming(f"Ev{n}", "mention", "T1", "C1", f"U{n}", text, ts, ts))
        [qid] = store.claim("test:1:x", 1, 60)
        answer = Answer(text, "An answer [1].", mode, [doc], {"total": 1.0}, 0.9)  # type: ignore[arg-type]
        store.finish(qid, answer, search_query=text, models={})
        if rating:
            store.vote(qid, "UVOTER", rating)
        if reason:
            store.set_reason(qid, "UVOTER", reason)


def test_report_gaps_groups_downvoted_and_abstained_questions(
    make_settings: Callable[..., Settings], minilm: LocalEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(sources=[str(MILVUS_DOCS)])
    backends = open_backends(settings, embedder=minilm)
    fill_feedback(QuestionStore(backends.sessions))
    backends.close()
    point_cli_at(settings, monkeypatch)
    runner = CliRunner()

    report = runner.invoke(app, ["report", "gaps", "--since", "30d"])
    assert report.exit_code == 0, report.output
    assert "2 questions" in report.output  # the two rotate-the-key phrasings, one group
    assert "It talks about tokens, not keys" in report.output
    assert "billing dashboard" in report.output and "abstained" in report.output
    assert "install Milvus on Windows" not in report.output  # 👍: no gap

    table = runner.invoke(app, ["report", "gaps", "--csv"])
    rows = list(csv.DictReader(io.StringIO(table.stdout)))
    assert len(rows) == 3
    groups = {r["question"]: r["group"] for r in rows}
    assert groups["How do I rotate the API key?"] == groups["how can I rotate my api keys"]
    assert (
        groups["Which GPU does the billing dashboard need?"]
        != groups["how can I rotate my api keys"]
    )

    exported = runner.invoke(app, ["feedback", "export", "--csv"])
    assert exported.exit_code == 0, exported.output
    votes = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert sorted(v["rating"] for v in votes) == ["down", "down", "up"]
    assert any(v["reason"].startswith("'=HYPERLINK") for v in votes)  # no formula injection

    stats = runner.invoke(app, ["stats", "--json"])
    figures = json.loads(stats.stdout)
    assert (figures["abstained"], figures["feedback_down"]) == (1, 2)
    assert figures["top_cited"][0]["url"] == "https://d/faq" and figures["top_cited"][0]["n"] == 3


def test_db_upgrade_current_and_refusing_to_start_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCSBOT_DATABASE_URL", f"sqlite:///{tmp_path / 'fresh.db'}")
    monkeypatch.setenv("DOCSBOT_DB_AUTO_UPGRADE", "false")
    runner = CliRunner()
    behind = runner.invoke(app, ["db", "current"])
    assert behind.exit_code == 1 and "database: empty" in behind.output
    refused = runner.invoke(app, ["stats"])
    assert isinstance(refused.exception, Exception)
    assert "docsbot db upgrade" in str(refused.exception)
    upgraded = runner.invoke(app, ["db", "upgrade"])
    assert upgraded.exit_code == 0 and "Upgraded the schema from empty to 0004" in upgraded.output
    again = runner.invoke(app, ["db", "upgrade"])
    assert "up to date (0004)" in again.output
    assert runner.invoke(app, ["db", "current"]).exit_code == 0
    assert runner.invoke(app, ["stats"]).exit_code == 0


def test_index_no_wait_exits_while_another_run_holds_the_lease_and_runs_lists_them(
    make_settings: Callable[..., Settings],
    minilm: LocalEmbedder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = make_settings(sources=[str(MILVUS_DOCS)])
    backends = open_backends(settings, embedder=minilm)
    assert IndexControl(backends, schedule=False).jobs.run("manual") is not None
    holder = SqlLease(backends.sessions, "index", ttl_s=600, holder="other:1:x")
    assert holder.try_acquire()
    backends.close()  # the CLI opens the index itself
    point_cli_at(settings, monkeypatch, DOCSBOT_SOURCES=str(MILVUS_DOCS))
    runner = CliRunner()

    busy = runner.invoke(app, ["index", "--no-wait"])
    assert isinstance(busy.exception, IndexBusy)  # main() turns it into exit status 2
    assert "Another indexing run is in progress" in str(busy.exception)
    assert "other:1:x" in str(busy.exception)
    holder.release()

    listed = runner.invoke(app, ["runs", "--json"])
    [only] = json.loads(listed.stdout)
    assert (only["trigger"], only["status"], only["docs_seen"]) == ("manual", "succeeded", 7)


def test_a_milvus_lite_file_held_by_another_process_gets_a_clear_message(
    tmp_path: Path,
) -> None:
    from pymilvus import MilvusClient

    (tmp_path / "data").mkdir()
    held = MilvusClient(str(tmp_path / "data" / "milvus.db"))  # as a running `serve` would
    try:
        result = run(
            ["index"],
            tmp_path,
            DOCSBOT_SOURCES=str(MILVUS_DOCS),
            DOCSBOT_EMBEDDING_MODEL=MINILM,
            DOCSBOT_RERANKER_MODEL="none",
        )
    finally:
        held.close()
    assert result.returncode == 2
    said = " ".join(result.stderr.split())  # rich wraps long lines at the terminal width
    assert "open in another process" in said and "`milvus-lite server`" in said
    assert "Traceback" not in said and "Failed to start" not in said


def test_the_compose_file_configures_docsbot_with_settings_it_accepts() -> None:
    """Docker is not available here; this checks what can be checked without it: every
    docsbot service's environment is valid Settings and points at services that exist."""
    import yaml

    root = Path(__file__).resolve().parents[1]
    compose = yaml.safe_load((root / "config" / "docker-compose.yml").read_text())
    services = compose["services"]
    example = dict(
        line.split("=", 1)
        for line in (root / "config" / "docsbot.env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    for name in ("docsbot-scheduler", "docsbot-bot"):
        service = services[name]
        settings = Settings(
            **{
                k.lower().removeprefix("docsbot_"): v
                for k, v in {**example, **service["environment"]}.items()
                if k.startswith("DOCSBOT_")
            }
        )
        assert not settings.milvus_is_lite and settings.database_url.startswith("postgresql")
        assert set(service["depends_on"]) <= set(services)
        assert settings.sources and settings.sources[0].is_git
    assert services["docsbot-bot"]["command"] == ["serve", "--no-scheduler"]
    assert services["docsbot-scheduler"]["command"][0] == "scheduler"
    build = services["docsbot-bot"]["build"]  # the context is relative to config/
    assert ((root / "config" / build["context"]).resolve() / build["dockerfile"]).exists()
