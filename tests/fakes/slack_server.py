"""A fake Slack Web API that keeps Slack's rules, on a loopback socket the real `slack_sdk`
client talks to.

Driven by Slack's own method reference (slack_rules.py, slack_reference/): unknown methods get
`unknown_method`, missing or mistyped arguments `invalid_arguments`, bad Block Kit
`invalid_blocks`; each method has its rate tier per workspace (429 with Retry-After); streams
end on Slack's schedule; ephemerals are recorded with whether Slack would have shown them;
trigger ids expire after 3 s, response_urls after 5 uses; conversations.replies pages with a
cursor. Tests inject documented errors, 5xx, stalls and 429 runs (`fail`), and the bot's own
posts can be echoed back to it as events, as Slack does.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fakes.slack_events import (
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
from tests.fakes.slack_rules import JSON_ARGUMENTS, RateLimits, check_arguments, documented_errors
from tests.fakes.slack_workspace import Message, Workspace

__all__ = [
    "BOT_USER",
    "TEAM",
    "Call",
    "FakeSlack",
    "FakeSocketMode",
    "SlackSender",
    "action_ids",
    "block_text",
    "event_body",
    "mention",
    "message",
]
TOKEN_TEAMS = {"xoxb-": TEAM}  # every bot token the tests use belongs to the one workspace


@dataclass(frozen=True)
class Call:
    method: str  # "chat.postMessage", or "response_url" for /response/<id>
    params: dict[str, Any]
    token: str | None
    at: float = 0.0
    error: str | None = None  # what Slack answered instead of ok
    status: int = 200


@dataclass
class Fault:
    method: str
    error: str | None = None
    status: int | None = None
    stall_s: float = 0.0
    retry_after: int = 1
    times: int | None = 1
    until: float | None = None


@dataclass
class _Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    stall_s: float = 0.0


class FakeSlack:
    def __init__(
        self,
        *,
        stream_ttl_s: float = 300.0,
        rate_limits: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.calls: list[Call] = []  # calls Slack accepted
        self.refused: list[Call] = []  # calls answered with an error or a non-200 status
        self.errors: dict[str, str] = {}  # method -> a documented error, every time
        self.not_member: set[str] = set()  # channels the bot is not in
        self.shared_channels: set[str] = set()  # Slack Connect: shared with another org
        self.unknown_channels: set[str] = set()  # conversations.info: channel_not_found
        self.socket_url: str | None = None  # what apps.connections.open hands out
        # (channel, thread_ts) -> messages Slack has in a thread the tests made up
        self.threads: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.workspace = Workspace(clock=clock, stream_ttl_s=stream_ttl_s)
        self.limits = RateLimits(enabled=rate_limits)
        self.echo_to: SlackSender | None = None  # the bot's own posts come back as events
        self._faults: list[Fault] = []
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

    @property
    def ephemerals(self) -> list[Any]:
        return list(self.workspace.ephemerals)

    def response_url(self, key: str) -> str:
        return f"{self.url}/response/{key}"

    def __enter__(self) -> FakeSlack:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def next_ts(self) -> str:
        return self.workspace.next_ts()

    # -- what tests set up --------------------------------------------------------------------

    def fail(
        self,
        method: str,
        *,
        error: str | None = None,
        status: int | None = None,
        stall_s: float = 0.0,
        retry_after: int = 1,
        times: int | None = 1,
        for_s: float | None = None,
    ) -> None:
        """The next `times` calls of `method` (or every call for `for_s` seconds) fail: with a
        documented Slack error, an HTTP status (5xx; 429 with `retry_after`), or a stall after
        the call took effect (its response is lost to a client that gives up first)."""
        if error is not None and error not in documented_errors(method):
            raise ValueError(f"{method} never answers {error!r} (Slack's method reference)")
        until = time.monotonic() + for_s if for_s is not None else None
        with self._lock:
            self._faults.append(
                Fault(method, error, status, stall_s, retry_after, None if until else times, until)
            )

    def saw(self, event: dict[str, Any]) -> None:
        """A person's message the tests sent to the bot exists in the workspace too."""
        if event.get("type") in ("message", "app_mention") and event.get("ts"):
            self.workspace.add(
                Message(
                    str(event.get("channel")),
                    str(event["ts"]),
                    event.get("thread_ts"),
                    str(event.get("text") or ""),
                    user=event.get("user"),
                    bot_id=event.get("bot_id"),
                )
            )

    # -- what tests read ----------------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def refusals(self, method: str | None = None, status: int | None = None) -> list[Call]:
        with self._lock:
            return [
                c
                for c in self.refused
                if (method is None or c.method == method) and (status is None or c.status == status)
            ]

    def most_in_a_minute(self, method: str) -> int:
        """The most accepted calls of `method` in any 60-second window."""
        times = sorted(c.at for c in self.calls_to(method))
        most, start = 0, 0
        for end, moment in enumerate(times):
            while moment - times[start] >= 60:
                start += 1
            most = max(most, end - start + 1)
        return most

    def wait_for(
        self,
        method: str,
        where: Callable[[dict[str, Any]], bool] = lambda p: True,
        *,
        count: int = 1,
        timeout: float = 60.0,
    ) -> list[Call]:
        """Block until `count` accepted calls of `method` match `where`."""
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

    def posted(self, channel: str) -> list[Message]:
        """The bot's messages in a channel, as Slack holds them now (top-level and replies)."""
        with self._lock:
            found = [m for m in self.workspace.messages.get(channel, {}).values() if m.bot_id]
        return sorted(found, key=lambda m: float(m.ts))

    # -- Slack -------------------------------------------------------------------------------

    def _record(self, call: Call) -> None:
        with self._lock:
            (self.calls if call.error is None and call.status == 200 else self.refused).append(call)
            self._lock.notify_all()

    def _fault(self, method: str) -> Fault | None:
        now = time.monotonic()
        with self._lock:
            for fault in list(self._faults):
                if fault.method != method:
                    continue
                if fault.until is not None:
                    if now < fault.until:
                        return fault
                    self._faults.remove(fault)
                    continue
                assert fault.times is not None
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def handle(self, method: str, params: dict[str, Any], token: str | None) -> _Reply:
        now = time.monotonic()
        reply = self._answer(method, params, token)
        error = None if reply.body.get("ok") else str(reply.body.get("error"))
        self._record(Call(method, params, token, now, error, reply.status))
        return reply

    def _answer(self, method: str, params: dict[str, Any], token: str | None) -> _Reply:
        problem = check_arguments(method, params)
        if problem is not None:
            return _Reply(200, {"ok": False, "error": problem})
        team = next(
            (t for prefix, t in TOKEN_TEAMS.items() if (token or "").startswith(prefix)), ""
        )
        if not token:
            return _Reply(200, {"ok": False, "error": "not_authed"})
        if not team and not token.startswith("xapp-"):
            return _Reply(200, {"ok": False, "error": "invalid_auth"})
        fault = self._fault(method)
        if fault is not None and fault.status == 429:
            headers = {"Retry-After": str(fault.retry_after)}
            return _Reply(429, {"ok": False, "error": "ratelimited"}, headers)
        channel = str(params.get("channel") or params.get("channel_id") or "")
        wait = self.limits.admit(method, team, channel)
        if wait is not None:
            return _Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(wait)})
        if fault is not None and fault.status is not None:
            return _Reply(fault.status, {"ok": False, "error": "upstream_failure"})
        if fault is not None and fault.error is not None:
            return _Reply(200, {"ok": False, "error": fault.error})
        if method in self.errors:
            return _Reply(200, {"ok": False, "error": self.errors[method]})
        from tests.fakes.slack_methods import perform

        body = perform(self, method, params)
        return _Reply(200, body, stall_s=fault.stall_s if fault is not None else 0.0)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode()
        if "json" in (self.headers.get("Content-Type") or ""):
            params: dict[str, Any] = json.loads(raw or "{}")
        else:
            params = {k: v[0] for k, v in urllib.parse.parse_qs(raw).items()}
            for key in JSON_ARGUMENTS:
                if isinstance(params.get(key), str) and params[key][:1] in "[{":
                    params[key] = json.loads(params[key])
        auth = self.headers.get("Authorization") or ""
        token = auth.removeprefix("Bearer ") or params.pop("token", None)
        fake = self.server.fake
        if self.path.startswith("/response/"):
            refused = fake.workspace.use_response_url(self.path.removeprefix("/response/"))
            fake._record(Call("response_url", params, None, time.monotonic(), refused))
            self._send(404 if refused else 200, (refused or "ok").encode(), "text/plain")
            return
        method = self.path.removeprefix("/api/").split("?")[0]
        reply = fake.handle(method, params, token)
        if reply.stall_s:
            time.sleep(reply.stall_s)  # it took effect; the response is what is late
        # A client that gave up waiting has closed the socket: exactly what a stall is for.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._send(reply.status, json.dumps(reply.body).encode(), "application/json", reply)

    def _send(
        self, status: int, body: bytes, content_type: str, reply: _Reply | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (reply.headers if reply else {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeSlack) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake
