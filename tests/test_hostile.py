"""`docsbot serve` as an attacker and a flaky network meet it: one real process, configured
only through the environment, behind its real HTTP port; Slack, the LLM, the embedding server
and /rerank faked on loopback (the remote-model path, so the process starts in seconds).

What must hold throughout: no request gets a 500, no question is answered twice, none is lost
(every valid one ends answered or apologised for, and recorded), and no forged body reaches
the log."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.queue.tables import Feedback, Question
from bot.slack import blocks as kit
from bot.slack import text as words
from bot.slack.edge import RefusalLog
from config.db import make_engine, make_session_factory
from tests.conftest import MILVUS_DOCS, stop_process, subprocess_environment, wait_until
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import TEAM, FakeSlack, SlackSender, action_ids, mention
from tests.test_cli import DOCSBOT
from tests.test_serve import free_port, wait_healthy

SECRET = "hostile-secret"
MARKER = "FORGED-BODY-MARKER-7f3a"
WINDOWS = "How do I install Milvus on Windows?"


@dataclass
class Serve:
    url: str
    send: SlackSender
    slack: FakeSlack
    openai: FakeOpenAI
    log: Path
    database_url: str
    process: subprocess.Popen[str]

    def rows(self) -> list[Question]:
        engine = make_engine(self.database_url)
        try:
            with make_session_factory(engine)() as session:
                return list(session.scalars(select(Question).order_by(Question.id)))
        finally:
            engine.dispose()

    def votes(self) -> list[Feedback]:
        engine = make_engine(self.database_url)
        try:
            with make_session_factory(engine)() as session:
                return list(session.scalars(select(Feedback)))
        finally:
            engine.dispose()

    def settled(self, message_ts: str, timeout: float = 60) -> Question:
        """The question from message `message_ts`, once answered or failed."""
        found: list[Question] = []

        def done() -> bool:
            found[:] = [r for r in self.rows() if r.message_ts == message_ts]
            return bool(found) and found[0].status in ("answered", "failed")

        wait_until(done, timeout, f"question {message_ts} to settle")
        return found[0]

    def post(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return httpx.post(self.url, content=body, headers=headers, timeout=30)


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    root = tmp_path_factory.mktemp("hostile")
    shutil.copytree(MILVUS_DOCS, root / "docs", ignore=shutil.ignore_patterns("LICENSE"))
    database_url = f"sqlite:///{root / 'data' / 'docsbot.db'}"
    with FakeSlack() as slack, FakeOpenAI() as openai:
        openai.chat_reply = "Run Milvus on Windows with Docker Desktop [1]."
        port = free_port()
        env = subprocess_environment(
            HF_HUB_OFFLINE="1",
            DOCSBOT_SOURCES="docs=https://milvus.io/docs/{stem}.md",
            DOCSBOT_DATABASE_URL=database_url,
            DOCSBOT_EMBEDDING_MODEL="hash-embedding",
            DOCSBOT_EMBEDDING_URL=f"{openai.url}/v1",
            DOCSBOT_EMBEDDING_API_KEY="embedder-key",
            DOCSBOT_RERANKER_MODEL="fake-reranker",
            DOCSBOT_RERANKER_URL=openai.url,
            DOCSBOT_RERANKER_API_KEY="reranker-key",
            DOCSBOT_RERANK_THRESHOLD="0",
            OPENAI_BASE_URL=f"{openai.url}/v1",
            OPENAI_API_KEY="sk-llm-only",
            DOCSBOT_LLM_MAX_RETRIES="0",
            SLACK_BOT_TOKEN="xoxb-hostile",
            SLACK_SIGNING_SECRET=SECRET,
            DOCSBOT_SLACK_API_URL=slack.api_url,
            DOCSBOT_SLACK_TIMEOUT_S="2",
            DOCSBOT_PORT=str(port),
            DOCSBOT_INDEX_SCHEDULE="off",
            DOCSBOT_WORKERS="2",
            DOCSBOT_LOG_LEVEL="INFO",
        )
        indexed = subprocess.run(
            [*DOCSBOT, "index"], cwd=root, env=env, capture_output=True, text=True, timeout=300
        )
        assert indexed.returncode == 0, indexed.stderr
        log = root / "serve.log"
        with log.open("w") as handle:
            process = subprocess.Popen(
                [*DOCSBOT, "serve"], cwd=root, env=env, stdout=handle, stderr=handle, text=True
            )
            url = f"http://127.0.0.1:{port}/slack/events"
            try:
                wait_healthy(f"http://127.0.0.1:{port}/healthz", process)
                sender = SlackSender(url, SECRET, slack=slack)
                yield Serve(url, sender, slack, openai, log, database_url, process)
            finally:
                stop_process(process, 60)
    text = log.read_text()
    assert process.returncode == 0, text[-3000:]
    assert MARKER not in text  # no forged or poisoned body was ever logged
    assert "Traceback" not in text


def signed_headers(body: bytes, secret: str = SECRET, stamp: int | None = None) -> dict[str, str]:
    import hashlib
    import hmac

    ts = str(stamp if stamp is not None else int(time.time()))
    base = b"v0:" + ts.encode() + b":" + body
    signature = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
        "Content-Type": "application/json",
    }


def test_forged_oversized_malformed_and_replayed_requests_are_refused(serve: Serve) -> None:
    body = json.dumps({"type": "event_callback", "note": MARKER}).encode()
    cases = {
        "forged signature": (body, signed_headers(body, secret="not-the-secret"), 401),
        "replayed (ten minutes old)": (
            body,
            signed_headers(body, stamp=int(time.time()) - 600),
            401,
        ),
        "no signature headers": (body, {"Content-Type": "application/json"}, 400),
        "timestamp not a number": (
            body,
            {**signed_headers(body), "X-Slack-Request-Timestamp": "soon"},
            400,
        ),
        "2 MB forged body": (
            (MARKER * 150_000).encode()[:2_000_000],
            signed_headers(b"x", secret="nope"),
            413,
        ),
    }
    for what, (payload, headers, status) in cases.items():
        assert serve.post(payload, headers).status_code == status, what
    assert serve.rows() == []


POISON: dict[str, tuple[bytes, str]] = {
    "invalid JSON": (b'{"type": "event_callback", ' + MARKER.encode(), "application/json"),
    "not UTF-8": (b'{"type": "\xff\xfe' + MARKER.encode() + b'"}', "application/json"),
    "a JSON array": (json.dumps([MARKER]).encode(), "application/json"),
    "a JSON scalar": (json.dumps(MARKER).encode(), "application/json"),
    "deep nesting": (b"[" * 100_000 + b"]" * 100_000, "application/json"),
    "a form with a broken payload": (
        urllib.parse.urlencode({"payload": "{" + MARKER}).encode(),
        "application/x-www-form-urlencoded",
    ),
}


def event(inner: dict[str, Any], event_id: str) -> bytes:
    return json.dumps(
        {
            "type": "event_callback",
            "team_id": TEAM,
            "event_id": event_id,
            "event_time": int(time.time()),
            "event": inner,
        }
    ).encode()


def interactive(payload: dict[str, Any]) -> tuple[bytes, str]:
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    return body, "application/x-www-form-urlencoded"


def test_signed_poison_gets_200_so_slack_does_not_retry_it(serve: Serve) -> None:
    shaped = {
        "a mention without ts": (
            event({"type": "app_mention", "user": "U1", "channel": "C1", "text": MARKER}, "EvP1"),
            "application/json",
        ),
        "text as an object": (
            event(
                {"type": "app_mention", "user": "U1", "channel": "C1", "ts": "5.1", "text": {}},
                "EvP2",
            ),
            "application/json",
        ),
        "a vote for question 10**30": interactive(
            {
                "type": "block_actions",
                "user": {"id": "U1"},
                "channel": {"id": "C1"},
                "message": {"ts": "1.1"},
                "actions": [{"action_id": kit.FEEDBACK_UP, "value": str(10**30)}],
            }
        ),
        "a reason form without its metadata": interactive(
            {
                "type": "view_submission",
                "user": {"id": "U1"},
                "view": {"callback_id": kit.REASON_VIEW},
            }
        ),
    }
    for what, (body, content_type) in {**POISON, **shaped}.items():
        headers = {**signed_headers(body), "Content-Type": content_type}
        assert serve.post(body, headers).status_code == 200, what
    assert serve.rows() == [] and serve.votes() == []


def test_a_question_sent_twice_is_answered_once(serve: Serve) -> None:
    question = mention(WINDOWS, channel="C1", user="U1", ts="100.1")
    assert serve.send.event(question, event_id="EvTwice").status_code == 200
    assert serve.send.event(question, event_id="EvTwice", retry=1).status_code == 200
    assert serve.send.event(question, event_id="EvOther").status_code == 200  # same message
    row = serve.settled("100.1")
    assert row.status == "answered" and len(serve.rows()) == 1
    answers = [m for m in serve.slack.posted("C1") if kit.FEEDBACK_UP in action_ids(m.blocks)]
    assert len(answers) == 1


def test_credentials_go_only_to_their_own_endpoint(serve: Serve) -> None:
    serve.send.event(mention(WINDOWS, channel="C2", user="U1", ts="200.1"))
    assert serve.settled("200.1").status == "answered"
    sent = {r.path: r.headers.get("authorization") for r in serve.openai.requests}
    assert sent["/v1/chat/completions"] == "Bearer sk-llm-only"
    assert sent["/v1/embeddings"] == "Bearer embedder-key"
    assert sent["/rerank"] == "Bearer reranker-key"
    assert all(
        r.headers.get("authorization") != "Bearer sk-llm-only"
        for r in serve.openai.requests
        if r.path != "/v1/chat/completions"
    )


FAULTS: dict[str, tuple[str, str]] = {
    "the LLM answers 500": ("llm 500", "llm_unavailable"),
    "the LLM streams nothing": ("llm empty", "llm_empty"),
    "the LLM sends an HTML page": ("llm html", "llm_empty"),
    "/rerank answers 503": ("rerank 503", "reranker_unavailable"),
    "the embedder answers 503": ("embed 503", "embedder_unavailable"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_failing_neighbour_gets_the_asker_an_apology_not_silence(
    serve: Serve, fault: str
) -> None:
    how, error = FAULTS[fault]
    openai = serve.openai
    saved_reply = openai.chat_reply
    if how == "llm 500":
        openai.fail_routes["/v1/chat/completions"] = 500
    elif how == "llm empty":
        openai.chat_reply = ""
    elif how == "llm html":
        openai.html_routes.add("/v1/chat/completions")
    elif how == "rerank 503":
        openai.fail_routes["/rerank"] = 503
    else:
        openai.fail_routes["/v1/embeddings"] = 503
    ts = f"{300 + list(FAULTS).index(fault)}.1"
    try:
        serve.send.event(mention(WINDOWS, channel="C3", user="U1", ts=ts))
        row = serve.settled(ts, timeout=90)
    finally:
        openai.fail_routes.clear()
        openai.html_routes.clear()
        openai.chat_reply = saved_reply
    assert (row.status, row.error) == ("failed", error)
    thread = [m for m in serve.slack.posted("C3") if m.thread_ts == ts]
    assert len(thread) == 1 and words.APOLOGY in thread[0].text + json.dumps(thread[0].blocks)


def test_a_vote_counts_only_on_the_answer_it_was_clicked_on(serve: Serve) -> None:
    serve.send.event(mention(WINDOWS, channel="C4", user="U1", ts="400.1"))
    row = serve.settled("400.1")
    elsewhere = {"user": "U9", "channel": "D9", "message_ts": "999.1"}  # someone else's DM
    assert serve.send.click(kit.FEEDBACK_DOWN, str(row.id), **elsewhere).status_code == 200
    assert row.answer_ts is not None
    ok = {"user": "U2", "channel": "C4", "message_ts": row.answer_ts}
    assert serve.send.click(kit.FEEDBACK_UP, str(row.id), **ok).status_code == 200
    wait_until(lambda: len(serve.votes()) >= 1, 30, "the vote")
    assert [(v.user_id, v.rating) for v in serve.votes()] == [("U2", "up")]


def test_a_flood_of_refusals_is_one_line_a_minute_per_kind(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [1000.0]
    refusals = RefusalLog(lambda: now[0])
    with caplog.at_level("WARNING", logger="docsbot.slack.edge"):
        for _ in range(500):
            refusals.refused("/slack/events", 90_000, "bad signature")
        refusals.refused("/slack/events", 120, "timestamp too old or in the future")
        now[0] += 61
        refusals.refused("/slack/events", 90_000, "bad signature")
    assert [r.getMessage() for r in caplog.records] == [
        "refused /slack/events (90000 bytes): bad signature",
        "refused /slack/events (120 bytes): timestamp too old or in the future",
        "refused /slack/events (90000 bytes): bad signature; 499 more like it since the last "
        "such line",
    ]
