"""Slack's side of the conversation with the bot: events, slash commands and clicks posted to
the bot's /slack/events, signed with the signing secret exactly as Slack's servers sign them,
and Slack's end of a Socket Mode connection."""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.parse
from typing import Any

import httpx
from slack_sdk.signature import SignatureVerifier

BOT_USER = "UDOCSBOT"
BOT_ID = "BDOCSBOT"
TEAM = "T0TEAM"


class FakeSocketMode:
    """Slack's end of Socket Mode: a websocket server the bot connects to (FakeSlack's
    apps.connections.open hands out its URL). Tests push envelopes; the bot's acks are kept."""

    def __init__(self) -> None:
        from websockets.sync.server import serve

        self.acks: list[str] = []
        self.connected = threading.Event()
        self._conn: Any = None
        self._acked = threading.Condition()
        self._server = serve(self._handle, "127.0.0.1", 0)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self._server.socket.getsockname()[1]}/link"

    def __enter__(self) -> FakeSocketMode:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()

    def _handle(self, connection: Any) -> None:
        self._conn = connection
        connection.send(
            json.dumps(
                {"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0DOCSBOT"}}
            )
        )
        self.connected.set()
        for raw in connection:
            envelope_id = json.loads(raw).get("envelope_id")
            if envelope_id:
                with self._acked:
                    self.acks.append(envelope_id)
                    self._acked.notify_all()

    def push(self, payload: dict[str, Any], kind: str = "events_api") -> str:
        envelope_id = f"env-{time.monotonic_ns()}"
        self._conn.send(
            json.dumps(
                {
                    "envelope_id": envelope_id,
                    "type": kind,
                    "accepts_response_payload": kind != "events_api",
                    "retry_attempt": 0,
                    "retry_reason": "",
                    "payload": payload,
                }
            )
        )
        return envelope_id

    def wait_ack(self, envelope_id: str, timeout: float = 10) -> None:
        with self._acked:
            if not self._acked.wait_for(lambda: envelope_id in self.acks, timeout):
                raise AssertionError(f"envelope {envelope_id} was never acknowledged")


def event_body(event: dict[str, Any], event_id: str) -> dict[str, Any]:
    return {
        "token": "legacy",
        "team_id": TEAM,
        "api_app_id": "A0DOCSBOT",
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "authorizations": [{"team_id": TEAM, "user_id": BOT_USER, "is_bot": True}],
        "event": event,
    }


def block_text(blocks: list[dict[str, Any]]) -> str:
    """All the text a person would read in a message's blocks."""
    parts: list[str] = []
    for block in blocks or []:
        if isinstance(block.get("text"), dict):
            parts.append(block["text"]["text"])
        for element in block.get("elements", []):
            text = element.get("text")
            parts.append(text["text"] if isinstance(text, dict) else str(text or ""))
    return "\n".join(parts)


def action_ids(blocks: list[dict[str, Any]]) -> list[str]:
    return [
        e.get("action_id", "")
        for b in blocks or []
        if b.get("type") == "actions"
        for e in b.get("elements", [])
    ]


class SlackSender:
    """Posts to the bot's /slack/events as Slack does: signed, form- or JSON-encoded. Given
    the fake Slack (`slack`), the messages it sends as events exist there too, as they would
    in a real workspace (a thread exists once it has a reply; ephemerals depend on that)."""

    def __init__(self, url: str, signing_secret: str, slack: Any = None) -> None:
        self.url = url
        self.verifier = SignatureVerifier(signing_secret)
        self.http = httpx.Client(timeout=30)
        self.slack = slack
        self._ids = itertools.count(1)

    def trigger_id(self, age_s: float = 0.0) -> str:
        """A trigger id as Slack makes them, here carrying its time (Slack's expire in 3 s)."""
        return f"trigger.{int((time.time() - age_s) * 1000)}.{next(self._ids)}"

    def post(
        self,
        body: str,
        content_type: str,
        *,
        headers: dict[str, str] | None = None,
        timestamp: int | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        stamp = str(timestamp if timestamp is not None else int(time.time()))
        signed = signature or self.verifier.generate_signature(timestamp=stamp, body=body)
        return self.http.post(
            self.url,
            content=body.encode(),
            headers={
                "Content-Type": content_type,
                "X-Slack-Request-Timestamp": stamp,
                "X-Slack-Signature": signed,
                **(headers or {}),
            },
        )

    def event(
        self,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        retry: int | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        if self.slack is not None:
            self.slack.saw(event)
        body = json.dumps(event_body(event, event_id or f"Ev{next(self._ids):08d}"))
        headers = (
            {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
            if retry
            else None
        )
        return self.post(body, "application/json", headers=headers, **kwargs)

    def command(
        self, text: str, *, channel: str, user: str, response_url: str, command: str = "/ask"
    ) -> httpx.Response:
        fields = {
            "token": "legacy",
            "team_id": TEAM,
            "channel_id": channel,
            "user_id": user,
            "command": command,
            "text": text,
            "response_url": response_url,
            "trigger_id": self.trigger_id(),
            "api_app_id": "A0DOCSBOT",
        }
        return self.post(urllib.parse.urlencode(fields), "application/x-www-form-urlencoded")

    def interactive(self, payload: dict[str, Any]) -> httpx.Response:
        payload = {"team": {"id": TEAM}, "api_app_id": "A0DOCSBOT", "token": "legacy", **payload}
        body = urllib.parse.urlencode({"payload": json.dumps(payload)})
        return self.post(body, "application/x-www-form-urlencoded")

    def click(
        self,
        action_id: str,
        value: str,
        *,
        user: str,
        channel: str,
        message_ts: str,
        thread_ts: str | None = None,
    ) -> httpx.Response:
        """A button click on a message; Slack sends the message as it is, with its thread."""
        message: dict[str, Any] = {"ts": message_ts, "type": "message"}
        known = self.slack.workspace.get(channel, message_ts) if self.slack else None
        thread_ts = thread_ts or (known.thread_ts if known else None)
        if thread_ts:
            message["thread_ts"] = thread_ts
        return self.interactive(
            {
                "type": "block_actions",
                "user": {"id": user, "team_id": TEAM},
                "trigger_id": self.trigger_id(),
                "channel": {"id": channel},
                "container": {"type": "message", "message_ts": message_ts, "channel_id": channel},
                "message": message,
                "response_url": "",
                "actions": [
                    {
                        "type": "button",
                        "action_id": action_id,
                        "block_id": "feedback",
                        "value": value,
                        "action_ts": str(time.time()),
                    }
                ],
            }
        )


def mention(
    text: str,
    *,
    channel: str,
    user: str,
    ts: str,
    thread_ts: str | None = None,
    bot_id: str | None = None,
) -> dict[str, Any]:
    """`bot_id`: the mention comes from another app (a relay, a reminder, a workflow)."""
    event = {
        "type": "app_mention",
        "user": user,
        "text": f"<@{BOT_USER}> {text}",
        "ts": ts,
        "channel": channel,
        "team": TEAM,
        "event_ts": ts,
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    if bot_id:
        event["bot_id"] = bot_id
    return event


def message(
    text: str,
    *,
    channel: str,
    user: str,
    ts: str,
    thread_ts: str | None = None,
    channel_type: str = "channel",
) -> dict[str, Any]:
    event = {
        "type": "message",
        "user": user,
        "text": text,
        "ts": ts,
        "channel": channel,
        "team": TEAM,
        "event_ts": ts,
        "channel_type": channel_type,
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event
