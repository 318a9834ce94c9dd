"""Slack as it really is: rate tiers, server errors, stalls, streams that end on their own,
ephemeral visibility, other bots. The bot runs against the strict fake Slack (its method
reference), and an answer must reach the asker exactly once, in one message."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.queue.tables import Question
from bot.slack import blocks as kit
from bot.slack import text as words
from bot.slack.budget import SlackBudget
from bot.slack.gate import SlackGate
from bot.slack.reply import Reply
from tests.conftest import wait_until
from tests.fakes.slack_server import TEAM, FakeSlack, action_ids, block_text, mention, message
from tests.fakes.slack_workspace import Message
from tests.slack_harness import CHAT, WINDOWS, Bot

Fault = dict[str, object]


def answer_messages(slack: FakeSlack, channel: str) -> list[Message]:
    """The bot's messages in a channel, as Slack holds them now, that carry 👍/👎."""
    return [m for m in slack.posted(channel) if kit.FEEDBACK_UP in action_ids(m.blocks)]


def everything_said(slack: FakeSlack, channel: str) -> str:
    return "\n".join(m.text + block_text(m.blocks) for m in slack.posted(channel))


def test_ten_questions_at_once_stream_and_land_within_slacks_limits(
    make_bot: Callable[..., Bot],
) -> None:
    bot = make_bot(workers=4)
    bot.openai.chunk_delay_s = 0.05  # a model that writes for a while: progress to show
    for n in range(5):
        bot.send.event(mention(WINDOWS, channel=f"C{n}", user="U1", ts=f"{100 + n}.1"))
        bot.send.event(
            message(
                WINDOWS,
                channel=f"D{n}",
                user="U2",
                ts=f"{200 + n}.2",
                thread_ts=f"{200 + n}.1",
                channel_type="im",
            )
        )
    bot.wait_status("answered", count=10, timeout=180)
    assert {r.status for r in bot.rows()} == {"answered"}
    for n in range(5):
        for channel in (f"C{n}", f"D{n}"):
            assert len(answer_messages(bot.slack, channel)) == 1, channel
            assert words.APOLOGY not in everything_said(bot.slack, channel)
    assert bot.slack.calls_to("chat.startStream")  # the assistant threads were streamed
    assert bot.slack.most_in_a_minute("chat.update") <= 50  # Tier 3
    assert bot.slack.refusals(status=429) == []  # the budget kept every method in its tier


FAULTS: dict[str, tuple[str, Fault, Callable[[FakeSlack], bool]]] = {
    "5xx on the placeholder": (
        "chat.postMessage",
        {"status": 500},
        lambda slack: bool(slack.refusals("chat.postMessage", status=500)),
    ),
    "placeholder stalls past the timeout": (
        "chat.postMessage",
        {"stall_s": 2.5},
        lambda slack: bool(slack.calls_to("conversations.replies")),  # looked before reposting
    ),
    "5xx on every try of the final update": (
        "chat.update",
        {"status": 503, "times": 6},
        lambda slack: len(slack.refusals("chat.update", status=503)) >= 3,
    ),
    "final update stalls past the timeout": (
        "chat.update",
        {"stall_s": 2.5, "times": 1},
        lambda slack: len(slack.calls_to("chat.update")) >= 2,
    ),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_one_fault_and_the_answer_still_lands_once_in_one_message(
    make_bot: Callable[..., Bot], fault: str
) -> None:
    bot = make_bot(slack_timeout_s=1)
    method, how, happened = FAULTS[fault]
    bot.slack.fail(method, **how)  # type: ignore[arg-type]
    bot.send.event(mention(WINDOWS, channel="C1", user="U1", ts="100.1"))
    [row] = bot.wait_status("answered", timeout=90)
    [answer] = answer_messages(bot.slack, "C1")
    assert row.answer_ts == answer.ts and "Docker Desktop" in block_text(answer.blocks)
    said = [m for m in bot.slack.posted("C1")]
    assert len(said) == 1, [m.text for m in said]  # no stuck placeholder, no second copy
    assert words.APOLOGY not in everything_said(bot.slack, "C1")
    assert happened(bot.slack)  # the fault was really met on the way


def test_a_stream_slack_ended_on_its_own_still_gets_the_final_answer(
    make_bot: Callable[..., Bot],
) -> None:
    bot = make_bot(slack_options={"stream_ttl_s": 1.0})
    bot.openai.chunk_delay_s = 0.25  # the model writes for longer than Slack keeps a stream
    bot.send.event(
        message(WINDOWS, channel="D1", user="U1", ts="301.1", thread_ts="300.1", channel_type="im")
    )
    bot.wait_status("answered", timeout=90)
    assert bot.slack.refusals("chat.appendStream") or bot.slack.refusals("chat.stopStream")
    [answer] = answer_messages(bot.slack, "D1")
    assert "Docker Desktop" in block_text(answer.blocks)
    assert words.APOLOGY not in everything_said(bot.slack, "D1")


def test_a_run_of_429s_longer_than_patience_sends_the_question_back_not_to_failure(
    make_bot: Callable[..., Bot],
) -> None:
    bot = make_bot(slack_patience_s=1)
    # Every chat.update is rate-limited for 6 s: longer than a worker waits, so the finished
    # answer goes back to the queue and is delivered once Slack accepts calls again.
    bot.slack.fail("chat.update", status=429, retry_after=1, for_s=6)
    bot.send.event(mention(WINDOWS, channel="C1", user="U1", ts="100.1"))
    wait_until(lambda: any(r.not_before is not None for r in bot.rows()), 60, "the answer deferred")
    [row] = bot.wait_status("answered", timeout=90)
    assert row.attempts >= 2 and row.pending_answer is None
    [answer] = answer_messages(bot.slack, "C1")
    assert row.answer_ts == answer.ts
    assert len(bot.openai.requests_to(CHAT)) == 1  # delivered as written, not written again
    assert words.APOLOGY not in everything_said(bot.slack, "C1")


def test_ephemerals_go_where_slack_shows_them_or_to_a_dm(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot(allowed_channels=["C1"])
    # Outside the allow-list, top-level: in the channel, not under the message's own ts.
    bot.send.event(mention(WINDOWS, channel="C2", user="U1", ts="10.1"))
    # A bare mention as a reply in a thread: in that thread (its parent's ts).
    bot.send.event(message("a people thread", channel="C1", user="U2", ts="20.1"))
    bot.send.event(mention("", channel="C1", user="U1", ts="20.2", thread_ts="20.1"))
    # /ask answered top-level, then a vote on it: the thanks in the channel.
    bot.send.command(WINDOWS, channel="C1", user="U1", response_url=bot.slack.response_url("a"))
    [row] = bot.wait_status("answered")
    [answer] = answer_messages(bot.slack, "C1")
    bot.send.click(kit.FEEDBACK_UP, str(row.id), user="U3", channel="C1", message_ts=answer.ts)
    wait_until(lambda: len(bot.slack.ephemerals) >= 3, 30, "three ephemerals")
    shown = sorted((str(e.params.get("thread_ts")), e.seen) for e in bot.slack.ephemerals)
    assert shown == [("20.1", True), ("None", True), ("None", True)]
    # Not a member of the channel: the notice comes as a DM instead of not at all.
    bot.slack.not_member.add("C9")
    bot.send.event(mention(WINDOWS, channel="C9", user="U4", ts="30.1"))
    bot.slack.wait_for("chat.postMessage", lambda p: p.get("channel") == "U4")


def test_a_reason_thanks_the_voter_in_the_answers_thread(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot()
    bot.send.event(mention(WINDOWS, channel="C1", user="U1", ts="40.1"))
    [row] = bot.wait_status("answered")
    [answer] = answer_messages(bot.slack, "C1")
    assert answer.thread_ts == "40.1"
    bot.send.click(kit.FEEDBACK_DOWN, str(row.id), user="U2", channel="C1", message_ts=answer.ts)
    [modal] = bot.slack.wait_for("views.open")
    view = modal.params["view"]
    bot.send.interactive(
        {
            "type": "view_submission",
            "user": {"id": "U2", "team_id": TEAM},
            "view": {
                **view,
                "state": {"values": {kit.REASON_BLOCK: {kit.REASON_ACTION: {"value": "old"}}}},
            },
        }
    )
    bot.slack.wait_for("chat.postEphemeral")
    [thanks] = bot.slack.ephemerals
    assert thanks.params["thread_ts"] == "40.1" and thanks.seen


def test_other_apps_mentions_are_not_answered_unless_allowed(
    make_bot: Callable[..., Bot],
) -> None:
    bot = make_bot()
    bot.send.event(mention(WINDOWS, channel="C1", user="U1", ts="50.1", bot_id="B0RELAY"))
    bot.send.event(mention(WINDOWS, channel="C1", user="U1", ts="50.2"))
    [row] = bot.wait_status("answered")  # the person's; the relay's was not even recorded
    assert row.message_ts == "50.2" and len(bot.rows()) == 1
    relaying = make_bot(answer_bots=True)
    relaying.send.event(mention(WINDOWS, channel="C1", user="U1", ts="60.1", bot_id="B0RELAY"))
    relaying.wait_status("answered")


def test_each_message_version_gets_new_block_ids(make_bot: Callable[..., Bot]) -> None:
    bot = make_bot()
    bot.openai.chunk_delay_s = 0.05
    for n in range(2):
        bot.send.event(mention(WINDOWS, channel="C1", user="U1", ts=f"7{n}.1"))
    bot.wait_status("answered", count=2)
    ids = [b.get("block_id") for m in answer_messages(bot.slack, "C1") for b in m.blocks]
    feedback = [i for i in ids if i and i.startswith("feedback")]
    assert len(feedback) == len(set(feedback)) == 2
    assert bot.slack.workspace.block_id_reuse == []
    assert all(
        b["text"].get("verbatim") is True
        for m in answer_messages(bot.slack, "C1")
        for b in m.blocks
        if b.get("type") == "section"
    )


def test_the_assistant_status_reads_after_the_app_name_and_is_refreshed() -> None:
    with FakeSlack() as slack:
        from slack_sdk import WebClient

        client = WebClient(token="xoxb-test", base_url=slack.api_url)
        question = Question(
            id=1, kind="assistant", team_id=TEAM, channel_id="D1", user_id="U1", text="q"
        )
        question.thread_ts, question.answer_ts = "1.1", None
        reply = Reply(
            SlackGate(client, SlackBudget()), question, streaming=False, status_refresh_s=0.2
        )
        reply.start()
        slack.wait_for("assistant.threads.setStatus", count=3, timeout=10)  # kept alive
        reply.fail("sorry")
    statuses = {c.params["status"] for c in slack.calls_to("assistant.threads.setStatus")}
    assert statuses == {"is searching the docs…"}
