"""The fake Slack keeps Slack's rules (its method reference), checked with the real slack_sdk
client: a fake that answered `ok` to anything would let every bug through."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from tests.fakes.slack_server import FakeSlack, SlackSender, message


class Clock:
    """Slack's time, moved on by the test instead of waited for."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def slack(clock: Clock) -> Iterator[FakeSlack]:
    with FakeSlack(stream_ttl_s=300, clock=clock) as fake:
        yield fake


def client(fake: FakeSlack, **kwargs: object) -> WebClient:
    return WebClient(token="xoxb-test", base_url=fake.api_url, **kwargs)  # type: ignore[arg-type]


def refused(call: object) -> str:
    with pytest.raises(SlackApiError) as raised:
        call()  # type: ignore[operator]
    return str(raised.value.response["error"])


def test_unknown_methods_missing_arguments_and_wrong_types_are_refused(slack: FakeSlack) -> None:
    web = client(slack)
    assert refused(lambda: web.api_call("chat.postMessagee", json={"channel": "C1"})) == (
        "unknown_method"
    )
    assert refused(lambda: web.api_call("chat.update", json={"channel": "C1"})) == (
        "invalid_arguments"  # no ts
    )
    assert refused(lambda: web.api_call("chat.postMessage", json={"channel": 5, "text": "x"})) == (
        "invalid_arguments"
    )
    assert refused(lambda: WebClient(base_url=slack.api_url).auth_test()) == "not_authed"


def test_block_kit_is_checked_with_slack_sdks_models_and_limits(slack: FakeSlack) -> None:
    web = client(slack)
    long = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
    assert refused(lambda: web.chat_postMessage(channel="C1", text="x", blocks=long)) == (
        "invalid_blocks"
    )
    many = [{"type": "divider"}] * 51
    assert refused(lambda: web.chat_postMessage(channel="C1", text="x", blocks=many)) == (
        "invalid_blocks"
    )
    twice = [{"type": "divider", "block_id": "a"}, {"type": "divider", "block_id": "a"}]
    assert refused(lambda: web.chat_postMessage(channel="C1", text="x", blocks=twice)) == (
        "invalid_blocks"
    )
    assert refused(lambda: web.chat_postMessage(channel="C1", text="x", markdown_text="**x**")) == (
        "markdown_text_conflict"
    )


def test_rate_tiers_answer_429_with_retry_after(slack: FakeSlack) -> None:
    web = client(slack)
    ts = web.chat_postMessage(channel="C1", text="x")["ts"]
    for _ in range(50):  # chat.update is Tier 3: 50 a minute per workspace
        web.chat_update(channel="C1", ts=ts, text="y")
    with pytest.raises(SlackApiError) as raised:
        web.chat_update(channel="C1", ts=ts, text="z")
    assert raised.value.response.status_code == 429
    assert int(raised.value.response.headers["Retry-After"]) >= 1
    assert slack.most_in_a_minute("chat.update") == 50
    # chat.postMessage: about one a second per channel, short bursts allowed
    statuses = []
    for _ in range(8):
        try:
            web.chat_postMessage(channel="C2", text="burst")
            statuses.append(200)
        except SlackApiError as error:
            statuses.append(error.response.status_code)
    assert 429 in statuses and statuses[:3] == [200, 200, 200]


def test_injected_faults_are_documented_errors_5xx_and_stalls(slack: FakeSlack) -> None:
    web = client(slack, timeout=1)
    with pytest.raises(ValueError, match="never answers"):
        slack.fail("chat.update", error="no_such_error")
    slack.fail("chat.postMessage", error="channel_not_found")
    assert refused(lambda: web.chat_postMessage(channel="C1", text="x")) == "channel_not_found"
    slack.fail("chat.postMessage", status=503)
    with pytest.raises(SlackApiError) as raised:
        web.chat_postMessage(channel="C1", text="x")
    assert raised.value.response.status_code == 503
    slack.fail("chat.postMessage", stall_s=2.0)
    with pytest.raises(TimeoutError):
        web.chat_postMessage(channel="C1", text="landed anyway")
    assert [m.text for m in slack.posted("C1")] == ["landed anyway"]  # applied, reply lost


def test_streams_end_on_slacks_schedule_and_block_updates_meanwhile(
    slack: FakeSlack, clock: Clock
) -> None:
    web = client(slack)
    ts = web.chat_startStream(channel="D1", thread_ts="1.1", markdown_text="a")["ts"]
    assert refused(lambda: web.chat_update(channel="D1", ts=ts, text="b")) == (
        "streaming_state_conflict"
    )
    web.chat_appendStream(channel="D1", ts=ts, markdown_text="b")
    clock.now += 301  # Slack ends a stream on its own after a few minutes
    assert refused(lambda: web.chat_appendStream(channel="D1", ts=ts, markdown_text="c")) == (
        "message_not_in_streaming_state"
    )
    assert refused(lambda: web.chat_stopStream(channel="D1", ts=ts)) == (
        "message_not_in_streaming_state"
    )
    web.chat_update(channel="D1", ts=ts, text="final")  # no longer streaming: updatable


def test_ephemerals_show_only_in_a_thread_that_exists_given_its_parent(slack: FakeSlack) -> None:
    web = client(slack)
    slack.saw(message("top-level, no replies", channel="C1", user="U1", ts="10.1"))
    slack.saw(message("a thread", channel="C1", user="U1", ts="20.1"))
    slack.saw(message("its reply", channel="C1", user="U2", ts="20.2", thread_ts="20.1"))
    for thread_ts in (None, "10.1", "20.1", "20.2", "99.9"):
        web.chat_postEphemeral(channel="C1", user="U1", text="psst", thread_ts=thread_ts)
    seen = [e.seen for e in slack.ephemerals]
    assert seen == [True, False, True, False, False]
    slack.not_member.add("C2")
    assert refused(lambda: web.chat_postEphemeral(channel="C2", user="U1", text="x")) == (
        "not_in_channel"
    )


def test_triggers_expire_replies_page_and_response_urls_wear_out(slack: FakeSlack) -> None:
    web = client(slack)
    sender = SlackSender("http://127.0.0.1:9/unused", "s", slack=slack)
    view = {"type": "modal", "title": {"type": "plain_text", "text": "x"}, "blocks": []}
    web.views_open(trigger_id=sender.trigger_id(), view=view)
    assert refused(lambda: web.views_open(trigger_id=sender.trigger_id(age_s=4), view=view)) == (
        "expired_trigger_id"
    )
    slack.limits.enabled = False  # six posts at once in one channel: not what this is about
    parent = web.chat_postMessage(channel="C1", text="parent")["ts"]
    for n in range(5):
        web.chat_postMessage(channel="C1", text=f"reply {n}", thread_ts=parent)
    first = web.conversations_replies(channel="C1", ts=parent, limit=4)
    rest = web.conversations_replies(
        channel="C1", ts=parent, limit=4, cursor=first["response_metadata"]["next_cursor"]
    )
    assert len(first["messages"]) == 4 and len(rest["messages"]) == 2
    assert rest["response_metadata"]["next_cursor"] == ""
    hook = WebhookClient(slack.response_url("r1"))
    assert [hook.send(text="x").status_code for _ in range(6)] == [200] * 5 + [404]
