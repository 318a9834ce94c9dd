"""The Slack bot end to end: the real Bolt app behind the real HTTP server, signed requests
posted to it, a fake Slack Web API and a fake OpenAI on loopback, Milvus Lite and SQLite."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from bot.queue.store import Incoming, QuestionStore
from bot.queue.tables import Question, utcnow
from bot.slack import blocks as kit
from bot.slack import text as words
from bot.wiring import make_indexer, open_backends
from config.settings import Settings
from indexer.embedding import LocalEmbedder
from tests.conftest import MINILM
from tests.fakes.slack_server import (
    BOT_USER,
    TEAM,
    FakeSocketMode,
    SlackSender,
    action_ids,
    block_text,
    event_body,
    mention,
    message,
)
from tests.slack_harness import CHAT, WINDOWS, WINDOWS_PAGE, Bot


def test_mention_is_answered_in_its_thread_with_sources_and_feedback_buttons(
    make_bot: Callable[..., Bot],
) -> None:
    bot = make_bot()
    response = bot.send.event(mention(WINDOWS, channel="C1", user="U1", ts="100.000001"))
    assert response.status_code == 200
    # The ack came after the question was written (ack latency is bench/slack_load.py's).
    assert [r.status for r in bot.rows()] in (["queued"], ["running"], ["answered"])

    [placeholder] = bot.slack.wait_for("chat.postMessage", lambda p: p.get("channel") == "C1")
    assert placeholder.params["thread_ts"] == "100.000001"
    assert placeholder.params["text"] == words.THINKING
    bot.wait_status("answered")
    [final] = bot.answers("C1")
    assert final["ts"] == bot.slack.calls_to("chat.update")[-1].params["ts"]
    text = block_text(final["blocks"])
    assert "*Docker Desktop*" in text  # Markdown bold became mrkdwn bold
    assert f"<{WINDOWS_PAGE}#" in text  # the citation links to the exact section
    assert "[9]" not in text  # a citation of no source is dropped
    [row] = bot.rows()
    assert row.status == "answered" and row.kind == "mention"
    assert row.channel_id == "C1" and row.thread_ts == "100.000001" and row.user_id == "U1"
    assert row.event_id and row.answer_mode == "llm"
    assert row.citations and row.citations[0]["url"].startswith(WINDOWS_PAGE)
    assert row.timings and {"embed", "search", "generate", "total"} <= set(row.timings)
    assert row.models == {"embedding": MINILM, "reranker": "none", "llm": "gpt-4o"}
    assert final["blocks"][-1]["elements"][0]["value"] == str(row.id)


def test_follow_up_in_the_thread_is_rewritten_and_answered_with_history(
    make_bot: Callable[..., Bot],
) -> None:
    bot = make_bot()
    bot.send.event(mention(WINDOWS, channel="C1", user="U1", ts="200.000001"))
    bot.wait_status("answered")
    # A reply in someone else's thread is none of the bot's business.
    bot.send.event(message("unrelated", channel="C1", user="U2", ts="201.1", thread_ts="150.1"))
    bot.send.event(
        message(
            "and how do I remove it?",
            channel="C1",
            user="U2",
            ts="210.000001",
            thread_ts="200.000001",
        )
    )
    bot.wait_status("answered", count=2)
    rows = bot.rows()
    assert len(rows) == 2
    follow_up = rows[1]
    assert follow_up.kind == "thread" and follow_up.conversation_id == rows[0].conversation_id
    assert follow_up.search_query == "How do I uninstall Milvus on Windows?"
    last = bot.openai.requests_to(CHAT)[-1].json["messages"]
    assert [m["role"] for m in last] == ["system", "user", "assistant", "user"]
    assert last[1]["content"] == WINDOWS
    assert "Docker Desktop" in last[2]["content"]
    assert last[3]["content"].endswith("Question: and how do I remove it?")
    assert len(bot.answers("C1")) == 2
    posted = bot.slack.calls_to("chat.postMessage")
    assert all(p.params.get("thread_ts") == "200.000001" for p in posted)


def test_dm_is_answered_even_with_a_screenshot(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot()
    bot.send.event(message(WINDOWS, channel="D1", user="U1", ts="300.1", channel_type="im"))
    bot.send.event(
        {
            **message(WINDOWS, channel="D1", user="U1", ts="301.1", channel_type="im"),
            "subtype": "file_share",
            "files": [{"id": "F1"}],
        }
    )
    bot.send.event(
        {
            **message("edited", channel="D1", user="U1", ts="302.1", channel_type="im"),
            "subtype": "message_changed",
        }
    )
    bot.wait_status("answered", count=2)
    answers = bot.answers("D1")
    assert len(answers) == 2 and "Docker Desktop" in block_text(answers[0]["blocks"])
    assert [r.kind for r in bot.rows()] == ["dm", "dm"]


def test_ask_command_answers_in_the_channel_or_privately_when_not_a_member(
    make_bot: Callable[..., Bot],
) -> None:
    bot = make_bot()
    response = bot.send.command(
        WINDOWS, channel="C2", user="U1", response_url=bot.slack.response_url("a")
    )
    assert response.status_code == 200 and response.text == ""
    bot.wait_status("answered")
    top = bot.slack.calls_to("chat.postMessage")[0].params
    assert top["channel"] == "C2" and "thread_ts" not in top  # a new message in the channel
    [answer] = bot.answers("C2")
    assert answer["ts"] and "<@U1> asked:" in block_text(answer["blocks"])
    assert bot.rows()[0].thread_ts == answer["ts"]  # follow-ups in its thread have history

    bot.slack.not_member.add("C3")
    bot.send.command(WINDOWS, channel="C3", user="U1", response_url=bot.slack.response_url("b"))
    bot.wait_status("answered", count=2)
    private = bot.slack.calls_to("response_url")
    assert private[0].params == {"response_type": "ephemeral", "text": words.THINKING}
    assert private[-1].params["replace_original"] is True
    assert kit.FEEDBACK_UP in action_ids(private[-1].params["blocks"])

    usage = bot.send.command("", channel="C2", user="U1", response_url=bot.slack.response_url("c"))
    assert "/ask How do I" in usage.text
    assert len(bot.rows()) == 2


def test_assistant_thread_gets_prompts_status_title_and_a_streamed_answer(
    make_bot: Callable[..., Bot],
) -> None:
    bot = make_bot()
    bot.openai.chunk_delay_s = 0.2  # a model that writes for a few seconds: worth streaming
    bot.send.event(
        {
            "type": "assistant_thread_started",
            "assistant_thread": {
                "user_id": "U1",
                "channel_id": "D9",
                "thread_ts": "400.1",
                "context": {},
            },
            "event_ts": "400.2",
        }
    )
    [prompts] = bot.slack.wait_for("assistant.threads.setSuggestedPrompts")
    assert prompts.params["thread_ts"] == "400.1" and len(prompts.params["prompts"]) == 3
    bot.send.event(
        message(WINDOWS, channel="D9", user="U1", ts="401.1", thread_ts="400.1", channel_type="im")
    )
    bot.wait_status("answered")
    status = bot.slack.calls_to("assistant.threads.setStatus")[0].params
    assert status["status"] == "is searching the docs…"  # Slack shows "docsbot is searching…"
    assert bot.slack.calls_to("assistant.threads.setTitle")[0].params["title"] == WINDOWS
    [stream] = bot.slack.calls_to("chat.startStream")
    assert stream.params["recipient_user_id"] == "U1" and stream.params["thread_ts"] == "400.1"
    assert bot.slack.calls_to("chat.stopStream")
    [final] = bot.answers("D9")
    assert final["ts"] == bot.slack.calls_to("chat.stopStream")[0].params["ts"]
    assert bot.rows()[0].kind == "assistant"


def test_assistant_falls_back_to_a_posted_answer_when_streaming_is_refused(
    make_bot: Callable[..., Bot],
) -> None:
    bot = make_bot()
    bot.slack.errors["chat.startStream"] = "channel_type_not_supported"
    bot.send.event(
        message(WINDOWS, channel="D9", user="U1", ts="501.1", thread_ts="500.1", channel_type="im")
    )
    bot.wait_status("answered")
    [final] = bot.answers("D9")
    assert final["thread_ts"] == "500.1" and "Docker Desktop" in block_text(final["blocks"])


def test_votes_one_per_person_the_latest_counts_and_a_reason_is_kept(
    make_bot: Callable[..., Bot],
) -> None:
    bot = make_bot()
    bot.send.event(mention(WINDOWS, channel="C1", user="U1", ts="600.1"))
    [row] = bot.wait_status("answered")
    [answer] = bot.answers("C1")
    click = {"user": "U2", "channel": "C1", "message_ts": answer["ts"]}
    assert bot.send.click(kit.FEEDBACK_UP, str(row.id), **click).status_code == 200
    [thanks] = bot.slack.wait_for("chat.postEphemeral")
    assert thanks.params["user"] == "U2" and "👍" in thanks.params["text"]
    assert bot.send.click(kit.FEEDBACK_DOWN, str(row.id), **click).status_code == 200
    [modal] = bot.slack.wait_for("views.open")
    view = modal.params["view"]
    assert view["callback_id"] == kit.REASON_VIEW
    [vote] = bot.votes()
    assert (vote.user_id, vote.rating, vote.reason) == ("U2", "down", None)

    bot.send.interactive(
        {
            "type": "view_submission",
            "user": {"id": "U2"},
            "view": {
                **view,
                "state": {
                    "values": {
                        kit.REASON_BLOCK: {
                            kit.REASON_ACTION: {
                                "type": "plain_text_input",
                                "value": "It is about Linux, not Windows",
                            }
                        }
                    }
                },
            },
        }
    )
    [vote] = bot.votes()
    assert vote.reason == "It is about Linux, not Windows"
    bot.send.click(kit.FEEDBACK_UP, "999999", **click)  # a forged question id stores nothing
    assert len(bot.votes()) == 1


def test_forged_or_stale_requests_get_401_and_store_nothing(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot()
    event = mention(WINDOWS, channel="C1", user="U1", ts="700.1")
    forged = bot.send.event(event, signature="v0=" + "0" * 64)
    assert forged.status_code == 401
    stale = bot.send.event(event, timestamp=int(time.time()) - 600)
    assert stale.status_code == 401
    wrong_secret = SlackSender(bot.send.url, "not-the-secret").event(event)
    assert wrong_secret.status_code == 401
    assert bot.rows() == []  # a question is written before the ack, so none was
    # A genuine question after them: once it is answered, anything the forgeries had started
    # would have shown too.
    assert bot.send.event(mention(WINDOWS, channel="C2", user="U1", ts="700.2")).status_code == 200
    bot.wait_status("answered")
    assert [r.channel_id for r in bot.rows()] == ["C2"]
    assert {c.params.get("channel") for c in bot.slack.calls_to("chat.postMessage")} == {"C2"}


def test_a_retried_event_is_answered_once(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot()
    event = mention(WINDOWS, channel="C1", user="U1", ts="800.1")
    assert bot.send.event(event, event_id="EvSAME").status_code == 200
    assert bot.send.event(event, event_id="EvSAME", retry=1).status_code == 200
    # The same message seen through the `message` event is the same question too.
    bot.send.event(
        {**message(f"<@{BOT_USER}> {WINDOWS}", channel="C1", user="U1", ts="800.1")},
        event_id="EvOTHER",
    )
    assert len(bot.rows()) == 1  # the retries were refused at the ack, before any answer
    bot.wait_status("answered")
    assert len(bot.rows()) == 1
    assert len(bot.answers("C1")) == 1
    assert len(bot.openai.requests_to(CHAT)) == 1


def test_llm_down_posts_an_apology_and_marks_the_question_failed(
    make_bot: Callable[..., Bot],
) -> None:
    bot = make_bot()
    bot.openai.fail_with = 500
    bot.send.event(mention(WINDOWS, channel="C1", user="U1", ts="900.1"))
    [row] = bot.wait_status("failed")
    assert row.error == "llm_unavailable"
    apology = bot.slack.wait_for("chat.update", lambda p: p.get("text") == words.APOLOGY)
    assert apology[0].params["ts"] == row.answer_ts
    everything = json.dumps([c.params for c in bot.slack.calls])
    assert "500" not in everything and "Error" not in everything


def test_questions_left_by_a_crash_are_answered_or_apologised_for_after_start(
    make_bot: Callable[..., Bot],
) -> None:
    exited = subprocess.Popen(["true"])
    exited.wait()  # its pid now names no process: a bot process on this host that crashed

    def crashed(store: QuestionStore) -> None:
        for n, channel in enumerate(("C1", "C2", "C3", "C4")):
            store.record(
                Incoming(
                    f"Ev{n}",
                    "mention",
                    TEAM,
                    channel,
                    "U1",
                    WINDOWS,
                    thread_ts=f"10.{n}",
                    message_ts=f"10.{n}",
                )
            )
        with store.sessions.begin() as session:
            # C2: its worker, on another host, stopped renewing: the lease ran out.
            session.execute(
                update(Question)
                .where(Question.channel_id == "C2")
                .values(
                    status="running",
                    worker_id="elsewhere:1:x",
                    lease_until=utcnow() - timedelta(seconds=1),
                )
            )
            # C3 waited far too long to be worth answering.
            session.execute(
                update(Question)
                .where(Question.channel_id == "C3")
                .values(created_at=utcnow() - timedelta(hours=2))
            )
            # C4: claimed by a process on this host that is gone, lease still running.
            session.execute(
                update(Question)
                .where(Question.channel_id == "C4")
                .values(
                    status="running",
                    worker_id=f"{socket.gethostname()}:{exited.pid}:x",
                    lease_until=utcnow() + timedelta(minutes=10),
                )
            )

    bot = make_bot(prepare=crashed)
    bot.wait_status("answered", count=3, timeout=30)
    [expired] = bot.wait_status("failed")
    assert expired.channel_id == "C3" and expired.error == "expired"
    assert bot.answers("C1") and bot.answers("C2") and bot.answers("C4")
    bot.slack.wait_for("chat.postMessage", lambda p: p.get("text") == words.EXPIRED)


def test_a_full_queue_tells_people_the_bot_is_busy(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot(workers=1, max_queued=1)
    bot.openai.delay_s = 3.0
    bot.send.event(mention(WINDOWS, channel="C1", user="U1", ts="1.1"))
    bot.wait_status("running")
    bot.send.event(mention(WINDOWS, channel="C1", user="U1", ts="1.2"))  # waits its turn
    bot.send.event(mention(WINDOWS, channel="C1", user="U1", ts="1.3"))  # one too many
    [busy] = bot.slack.wait_for("chat.postMessage", lambda p: p.get("text") == words.BUSY)
    assert busy.params["thread_ts"] == "1.3"
    bot.wait_status("answered", count=2)
    assert [r.error for r in bot.rows()] == [None, None, "busy"]


def test_outside_the_allow_list_the_bot_says_it_is_not_enabled(
    make_bot: Callable[..., Bot],
) -> None:
    bot = make_bot(allowed_channels=["C1"])
    bot.send.event(mention(WINDOWS, channel="C7", user="U1", ts="2.1"))
    [notice] = bot.slack.wait_for("chat.postEphemeral")
    assert notice.params["text"] == words.NOT_ENABLED and notice.params["user"] == "U1"
    refused = bot.send.command(
        WINDOWS, channel="C7", user="U1", response_url=bot.slack.response_url("x")
    )
    assert refused.text == words.NOT_ENABLED
    assert bot.rows() == []


def test_healthz_reports_the_queue(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot()
    health = bot.send.http.get(bot.send.url.replace("/slack/events", "/healthz"))
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "mode": "http", "queued": 0, "answering": 0}


def test_stop_closes_keep_alive_connections_and_ends_the_http_thread(
    make_bot: Callable[..., Bot],
) -> None:
    import http.client

    bot = make_bot()
    client = http.client.HTTPConnection("127.0.0.1", bot.server.port, timeout=30)
    client.request("GET", "/healthz")  # HTTP/1.1: the connection stays open afterwards
    response = client.getresponse()
    assert response.status == 200 and response.getheader("Connection") != "close"
    response.read()
    [http_thread] = [t for t in bot.server._threads if t.name == "http"]

    bot.server.stop()

    assert not http_thread.is_alive()  # the select loop ended with the idle connection closed
    client.request("GET", "/healthz")
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        client.getresponse()
    client.close()


def test_a_mention_inside_a_people_thread_reads_the_thread_first(
    make_bot: Callable[..., Bot],
) -> None:
    bot = make_bot()
    bot.slack.threads[("C5", "50.1")] = [
        {
            "ts": "50.1",
            "user": "U7",
            "text": "Installing fails with &lt;error 42&gt; on Windows 11",
        },
        {"ts": "50.2", "user": "U8", "text": "same here", "bot_id": None},
        {"ts": "50.3", "bot_id": "B1", "text": "some other bot"},
        {"ts": "50.4", "user": "U7", "text": f"<@{BOT_USER}> what should I do?"},
    ]
    bot.send.event(
        mention("what should I do?", channel="C5", user="U7", ts="50.4", thread_ts="50.1")
    )
    bot.wait_status("answered")
    messages = bot.openai.requests_to(CHAT)[-1].json["messages"]
    context = messages[1]["content"]
    assert context.startswith("Earlier in this Slack thread:")
    assert "U7: Installing fails with <error 42> on Windows 11" in context
    assert "same here" in context and "other bot" not in context
    assert "what should I do?" not in context
    [answer] = bot.answers("C5")
    assert answer["ts"] and bot.slack.calls_to("chat.postMessage")[0].params["thread_ts"] == "50.1"


def test_socket_mode_answers_without_any_public_url(make_bot: Callable[..., Bot]) -> None:
    with FakeSocketMode() as socket_mode:
        bot = make_bot(
            slack_app_token="xapp-test", slack_signing_secret=None, socket_url=socket_mode.url
        )
        assert socket_mode.connected.wait(15)
        envelope = socket_mode.push(
            event_body(mention(WINDOWS, channel="C1", user="U1", ts="60.1"), "EvSocket1")
        )
        socket_mode.wait_ack(envelope)
        bot.wait_status("answered")
        [answer] = bot.answers("C1")
        assert "Docker Desktop" in block_text(answer["blocks"])
        assert bot.rows()[0].event_id == "EvSocket1"
        # Nothing listens for Slack over HTTP in Socket Mode; the probe still answers.
        assert bot.send.event(mention("x", channel="C1", user="U1", ts="61.1")).status_code == 404
        health = bot.send.http.get(bot.send.url.replace("/slack/events", "/healthz")).json()
        assert health["mode"] == "socket"


def test_model_text_cannot_ping_the_channel_streamed_or_final(
    make_bot: Callable[..., Bot],
) -> None:
    bot = make_bot()
    bot.openai.chat_reply = "Tell <!channel> and @here: see <https://evil.example|docs> [1]."
    bot.openai.chunk_delay_s = 0.2  # long enough to be streamed
    bot.send.event(
        message(WINDOWS, channel="D9", user="U1", ts="71.1", thread_ts="70.1", channel_type="im")
    )
    bot.wait_status("answered")
    [stream] = bot.slack.calls_to("chat.startStream")
    pieces = [c.params["markdown_text"] for c in bot.slack.calls_to("chat.appendStream")]
    streamed = stream.params["markdown_text"] + "".join(pieces)
    [final] = bot.answers("D9")
    for text in (streamed, block_text(final["blocks"])):
        assert "<!channel>" not in text and "&lt;!channel&gt;" in text
        assert "@here" not in text and "<https://evil.example|" not in text


def test_an_index_failure_posts_an_apology_and_marks_the_question_failed(
    make_bot: Callable[..., Bot], tmp_path: Path, minilm: LocalEmbedder
) -> None:
    docs = tmp_path / "small-docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Windows\n\nMilvus runs on Windows with Docker Desktop.\n")
    own = open_backends(
        Settings(
            milvus_uri=str(tmp_path / "own.db"),
            database_url=f"sqlite:///{tmp_path / 'i.db'}",
            sources=[str(docs)],
            embedding_model=MINILM,
            reranker_model=None,
        ),
        embedder=minilm,
    )
    try:
        make_indexer(own).run()
        bot = make_bot(backends=own, milvus_uri=str(tmp_path / "own.db"))
        own.store.client.drop_collection(own.store.collection)  # Milvus loses the index
        bot.send.event(mention(WINDOWS, channel="C1", user="U1", ts="80.1"))
        [row] = bot.wait_status("failed")
        assert row.error == "index_unavailable"
        bot.slack.wait_for("chat.update", lambda p: p.get("text") == words.APOLOGY)
        assert "collection" not in json.dumps([c.params for c in bot.slack.calls]).lower()
    finally:
        own.close()
