"""`docsbot serve` as an operator runs it: a real process configured only through the
environment, Slack and OpenAI faked on loopback, then `docsbot stats --json`."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx

from bot.slack import blocks as kit
from tests.conftest import MILVUS_DOCS, stop_process, subprocess_environment, wait_until
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import FakeSlack, SlackSender, action_ids, block_text, mention
from tests.test_cli import DOCSBOT, run

SECRET = "black-box-secret"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_healthy(url: str, process: subprocess.Popen[str], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"serve exited early:\n{process.stderr.read() if process.stderr else ''}"
            )
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("serve never became healthy")


def test_index_serve_answer_vote_and_stats_with_only_the_environment(tmp_path: Path) -> None:
    shutil.copytree(MILVUS_DOCS, tmp_path / "docs", ignore=shutil.ignore_patterns("LICENSE"))
    offline = {"HF_HUB_OFFLINE": "1"}
    indexed = run(["index"], tmp_path, DOCSBOT_SOURCES="docs", **offline)
    assert indexed.returncode == 0, indexed.stderr

    port = free_port()
    with FakeSlack() as slack, FakeOpenAI() as openai:
        openai.chat_reply = "Use Docker Desktop to run Milvus on Windows [1]."
        env = subprocess_environment(
            **offline,
            SLACK_BOT_TOKEN="xoxb-black-box",
            SLACK_SIGNING_SECRET=SECRET,
            DOCSBOT_SLACK_API_URL=slack.api_url,
            OPENAI_BASE_URL=f"{openai.url}/v1",
            DOCSBOT_PORT=str(port),
        )
        serve = subprocess.Popen(
            [*DOCSBOT, "serve"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_healthy(f"http://127.0.0.1:{port}/healthz", serve)
            send = SlackSender(f"http://127.0.0.1:{port}/slack/events", SECRET)
            event = mention(
                "How do I install Milvus on Windows?",
                channel="C1",
                user="U1",
                ts="1700000000.000100",
            )
            assert send.event(event).status_code == 200
            [answer] = slack.wait_for(
                "chat.update", lambda p: kit.FEEDBACK_UP in action_ids(p.get("blocks") or [])
            )
            posted = slack.calls_to("chat.postMessage")[0].params
            assert posted["thread_ts"] == "1700000000.000100"
            text = block_text(answer.params["blocks"])
            assert "Docker Desktop" in text and "<https://" not in text  # no base URL: a path
            assert "`faq/operational_faq.md#can-i-install-milvus-on-windows`" in text
            question_id = answer.params["blocks"][-1]["elements"][0]["value"]
            assert (
                send.click(
                    kit.FEEDBACK_UP,
                    question_id,
                    user="U2",
                    channel="C1",
                    message_ts=answer.params["ts"],
                ).status_code
                == 200
            )
            slack.wait_for("chat.postEphemeral")

            stats = run(["stats", "--json"], tmp_path)
            assert stats.returncode == 0, stats.stderr
            figures = json.loads(stats.stdout)
            assert figures["questions"] == figures["answered"] == 1
            assert (figures["abstained"], figures["failed"]) == (0, 0)
            assert (figures["feedback_up"], figures["feedback_down"]) == (1, 0)
        finally:
            stop_process(serve, 30)
        logs = serve.stderr.read() if serve.stderr else ""
        assert serve.returncode == 0, logs
        assert "docsbot is up" in logs and "question 1 answered" in logs
        assert "Traceback" not in logs


def test_serve_on_a_fresh_install_indexes_by_itself_then_answers(tmp_path: Path) -> None:
    """The README's path with nothing indexed yet: `serve` comes up, its scheduler runs the
    first index at once, and the bot answers from it."""
    shutil.copytree(MILVUS_DOCS, tmp_path / "docs", ignore=shutil.ignore_patterns("LICENSE"))
    port = free_port()
    with FakeSlack() as slack, FakeOpenAI() as openai:
        openai.chat_reply = "Use Docker Desktop to run Milvus on Windows [1]."
        env = subprocess_environment(
            HF_HUB_OFFLINE="1",
            DOCSBOT_SOURCES="docs",
            SLACK_BOT_TOKEN="xoxb-fresh",
            SLACK_SIGNING_SECRET=SECRET,
            DOCSBOT_SLACK_API_URL=slack.api_url,
            OPENAI_BASE_URL=f"{openai.url}/v1",
            DOCSBOT_PORT=str(port),
        )
        log = (tmp_path / "serve.log").open("w")
        serve = subprocess.Popen(
            [*DOCSBOT, "serve"], cwd=tmp_path, env=env, stdout=log, stderr=log, text=True
        )
        try:
            wait_healthy(f"http://127.0.0.1:{port}/healthz", serve)
            runs: list[dict[str, object]] = []

            def indexed() -> bool:
                listed = run(["runs", "--json"], tmp_path)  # SQL only: works beside serve
                runs[:] = json.loads(listed.stdout) if listed.returncode == 0 else []
                return bool(runs) and runs[0]["status"] == "succeeded"

            wait_until(indexed, 120, "the first scheduled run")
            assert [(r["trigger"], r["docs_seen"]) for r in runs] == [("scheduled", 7)]
            send = SlackSender(f"http://127.0.0.1:{port}/slack/events", SECRET)
            send.event(
                mention(
                    "How do I install Milvus on Windows?", channel="C1", user="U1", ts="1.000001"
                )
            )
            [answer] = slack.wait_for(
                "chat.update", lambda p: kit.FEEDBACK_UP in action_ids(p.get("blocks") or [])
            )
            assert "Docker Desktop" in block_text(answer.params["blocks"])
        finally:
            stop_process(serve, 30)
            log.close()
    logs = (tmp_path / "serve.log").read_text()
    assert serve.returncode == 0, logs
    assert "nothing is indexed yet" in logs and "Traceback" not in logs
