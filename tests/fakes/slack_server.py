"""A fake Slack for tests: the Web API on a loopback socket, and a client that posts signed
requests to the bot the way Slack does.

`FakeSlack` answers the Web API methods docsbot calls (`/api/<method>`) and the response_url
of slash commands (`/response/<id>`), recording every call with its decoded body, so tests
check what the real `slack_sdk` client sent. `SlackSender` signs events, commands and
interactive payloads with the signing secret, exactly as Slack's servers do.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from slack_sdk.signature import SignatureVerifier

BOT_USER = "UDOCSBOT"
TEAM = "T0TEAM"
JSON_FIELDS = ("blocks", "prompts", "view", "attachments", "metadata", "chunks")


@dataclass(frozen=True)
class Call:
    method: str  # "chat.postMessage", or "response_url" for /response/<id>
    params: dict[str, Any]
    token: str | None


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode()
        if "json" in (self.headers.get("Content-Type") or ""):
            params: dict[str, Any] = json.loads(raw or "{}")
        else:
            params = {k: v[0] for k, v in urllib.parse.parse_qs(raw).items()}
            for key in JSON_FIELDS:
                if isinstance(params.get(key), str) and params[key][:1] in "[{":
                    params[key] = json.loads(params[key])
        auth = self.headers.get("Authorization") or ""
        token = auth.removeprefix("Bearer ") or params.get("token")
        fake = self.server.fake
        if self.path.startswith("/response/"):
            fake._record(Call("response_url", params, None))
            self._send(200, b"ok", "text/plain")
            return
        method = self.path.removeprefix("/api/").split("?")[0]
        fake._record(Call(method, params, token))
        body = fake.reply(method, params)
        self._send(200, json.dumps(body).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeSlack) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


class FakeSlack:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        # method -> Slack error code, e.g. {"chat.startStream": "feature_not_enabled"}
        self.errors: dict[str, str] = {}
        # channels the bot is not a member of: chat.postMessage there fails
        self.not_member: set[str] = set()
        self.socket_url: str | None = None  # what apps.connections.open hands out
        # (channel, thread_ts) -> the thread's messages, for conversations.replies
        self.threads: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._ts = itertools.count(1)
        self._lock = threading.Condition()
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def response_url(self, key: str) -> str:
        return f"{self.url}/response/{key}"

    def __enter__(self) -> FakeSlack:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    def reply(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method in self.errors:
            return {"ok": False, "error": self.errors[method]}
        channel = params.get("channel") or params.get("channel_id")
        if method == "auth.test":
            return {
                "ok": True,
                "user_id": BOT_USER,
                "bot_id": "BDOCSBOT",
                "team_id": TEAM,
                "user": "docsbot",
                "team": "Test",
                "url": "https://test.slack.com/",
            }
        if method in ("chat.postMessage", "chat.startStream") and channel in self.not_member:
            return {"ok": False, "error": "not_in_channel"}
        if method in ("chat.postMessage", "chat.startStream"):
            return {"ok": True, "channel": channel, "ts": self.next_ts()}
        if method in ("chat.update", "chat.appendStream", "chat.stopStream"):
            return {"ok": True, "channel": channel, "ts": params.get("ts")}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": self.next_ts()}
        if method == "apps.connections.open":
            if self.socket_url is None:
                return {"ok": False, "error": "not_allowed_token_type"}
            return {"ok": True, "url": self.socket_url}
        if method == "conversations.replies":
            messages = self.threads.get((str(channel), str(params.get("ts"))), [])
            return {"ok": True, "messages": messages, "has_more": False}
        if method == "views.open":
            return {"ok": True, "view": {"id": "V1", **(params.get("view") or {})}}
        if method == "views.publish":
            if not params.get("user_id"):
                return {"ok": False, "error": "invalid_arguments"}
            return {"ok": True, "view": {"id": "VHOME", **(params.get("view") or {})}}
        return {"ok": True}

    def _record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)
            self._lock.notify_all()

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def wait_for(
        self,
        method: str,
        where: Callable[[dict[str, Any]], bool] = lambda p: True,
        *,
        count: int = 1,
        timeout: float = 60.0,
    ) -> list[Call]:
        """Block until `count` calls of `method` match `where`; the worker answers in the
        background, so tests wait for its effects instead of sleeping."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = [c for c in self.calls if c.method == method and where(c.params)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [c.method for c in self.calls]
                    raise AssertionError(
                        f"expected {count} {method} call(s) within {timeout} s; saw {seen}"
                    )
                self._lock.wait(left)

    def messages_in(self, channel: str) -> Iterator[Call]:
        for call in list(self.calls):
            if call.method in ("chat.postMessage", "chat.update") and (
                call.params.get("channel") == channel
            ):
                yield call


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
    """Posts to the bot's /slack/events as Slack does: signed, form- or JSON-encoded."""

    def __init__(self, url: str, signing_secret: str) -> None:
        self.url = url
        self.verifier = SignatureVerifier(signing_secret)
        self.http = httpx.Client(timeout=30)
        self._ids = itertools.count(1)

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
            "trigger_id": f"trigger.{next(self._ids)}",
            "api_app_id": "A0DOCSBOT",
        }
        return self.post(urllib.parse.urlencode(fields), "application/x-www-form-urlencoded")

    def interactive(self, payload: dict[str, Any]) -> httpx.Response:
        payload = {"team": {"id": TEAM}, "api_app_id": "A0DOCSBOT", "token": "legacy", **payload}
        body = urllib.parse.urlencode({"payload": json.dumps(payload)})
        return self.post(body, "application/x-www-form-urlencoded")

    def click(
        self, action_id: str, value: str, *, user: str, channel: str, message_ts: str
    ) -> httpx.Response:
        return self.interactive(
            {
                "type": "block_actions",
                "user": {"id": user, "team_id": TEAM},
                "trigger_id": f"trigger.{next(self._ids)}",
                "channel": {"id": channel},
                "container": {"type": "message", "message_ts": message_ts, "channel_id": channel},
                "message": {"ts": message_ts, "type": "message"},
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
    text: str, *, channel: str, user: str, ts: str, thread_ts: str | None = None
) -> dict[str, Any]:
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
