"""What a fake Slack workspace remembers between calls: messages (the bot's and the people's
the tests sent as events), threads, streams that end on Slack's own schedule, ephemeral
messages and whether Slack would have shown them, trigger ids and response_urls with their
expiry. The rules are Slack's, from the method reference's README and pages."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

TRIGGER_TTL_S = 3.0
RESPONSE_URL_USES = 5
RESPONSE_URL_TTL_S = 30 * 60.0


@dataclass
class Message:
    channel: str
    ts: str
    thread_ts: str | None
    text: str = ""
    user: str | None = None
    bot_id: str | None = None
    blocks: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] | None = None
    streaming_since: float | None = None  # set while chat.startStream's stream is open
    versions: int = 1

    @property
    def is_parent(self) -> bool:
        return self.thread_ts in (None, self.ts)

    def as_slack(self, with_metadata: bool) -> dict[str, Any]:
        shown: dict[str, Any] = {"type": "message", "ts": self.ts, "text": self.text}
        if self.thread_ts:
            shown["thread_ts"] = self.thread_ts
        if self.user:
            shown["user"] = self.user
        if self.bot_id:
            shown["bot_id"] = self.bot_id
        if self.blocks:
            shown["blocks"] = self.blocks
        if with_metadata and self.metadata:
            shown["metadata"] = self.metadata
        return shown


@dataclass(frozen=True)
class Ephemeral:
    params: dict[str, Any]
    seen: bool  # would the person have seen it? Slack drops the hidden ones silently
    why: str


class Workspace:
    def __init__(self, clock: Callable[[], float] = time.time, stream_ttl_s: float = 300.0):
        self.clock = clock
        self.stream_ttl_s = stream_ttl_s
        self.messages: dict[str, dict[str, Message]] = {}
        self.ephemerals: list[Ephemeral] = []
        self.block_id_reuse: list[tuple[str, str, str]] = []  # (channel, ts, block_id)
        self.response_urls: dict[str, list[float]] = {}  # key -> times used
        self._ts = itertools.count(1)
        self._lock = threading.RLock()

    def next_ts(self) -> str:
        return f"{int(self.clock())}.{next(self._ts):06d}"

    # -- messages -----------------------------------------------------------------------------

    def add(self, message: Message) -> Message:
        with self._lock:
            self.messages.setdefault(message.channel, {})[message.ts] = message
            return message

    def get(self, channel: str, ts: str) -> Message | None:
        with self._lock:
            return self.messages.get(channel, {}).get(ts)

    def replies(self, channel: str, ts: str) -> list[Message]:
        with self._lock:
            found = [
                m
                for m in self.messages.get(channel, {}).values()
                if m.ts == ts or m.thread_ts == ts
            ]
        return sorted(found, key=lambda m: float(m.ts))

    def history(self, channel: str) -> list[Message]:
        with self._lock:
            found = [m for m in self.messages.get(channel, {}).values() if m.is_parent]
        return sorted(found, key=lambda m: float(m.ts), reverse=True)

    def update(self, message: Message, params: dict[str, Any]) -> None:
        new_blocks = params.get("blocks")
        if isinstance(new_blocks, list):
            old = {b.get("block_id") for b in message.blocks if b.get("block_id")}
            for block in new_blocks:
                if block.get("block_id") in old:
                    self.block_id_reuse.append((message.channel, message.ts, block["block_id"]))
            message.blocks = new_blocks
        if params.get("text") is not None:
            message.text = str(params["text"])
        message.versions += 1

    # -- streams -----------------------------------------------------------------------------

    def stream_open(self, message: Message) -> bool:
        """Slack ends a stream on its own after a while: it is then no longer streaming."""
        if message.streaming_since is None:
            return False
        if self.clock() - message.streaming_since > self.stream_ttl_s:
            message.streaming_since = None
            return False
        return True

    # -- ephemeral visibility ------------------------------------------------------------------

    def ephemeral(self, params: dict[str, Any]) -> Ephemeral:
        """Slack shows an ephemeral message in a thread only when `thread_ts` is the parent's
        ts of a thread that exists (it has replies); otherwise it is not shown at all."""
        channel, thread_ts = str(params.get("channel")), params.get("thread_ts")
        if not thread_ts:
            seen, why = True, "in the channel"
        else:
            parent = self.get(channel, str(thread_ts))
            if parent is None:
                seen, why = False, "thread_ts names no message Slack knows"
            elif not parent.is_parent:
                seen, why = False, "thread_ts is a reply's ts, not the parent's"
            elif len(self.replies(channel, parent.ts)) < 2:
                seen, why = False, "thread_ts is a message without a thread"
            else:
                seen, why = True, "in an existing thread"
        shown = Ephemeral(dict(params), seen, why)
        with self._lock:
            self.ephemerals.append(shown)
        return shown

    # -- triggers and response_urls ------------------------------------------------------------

    def trigger_expired(self, trigger_id: str) -> bool:
        """Trigger ids the test sender makes carry their time: `trigger.<ms>.<n>`."""
        parts = trigger_id.split(".")
        if len(parts) != 3 or not parts[1].isdigit():
            return False
        return self.clock() - int(parts[1]) / 1000 > TRIGGER_TTL_S

    def use_response_url(self, key: str) -> str | None:
        """None when the use is allowed; else why Slack refuses it."""
        now = self.clock()
        with self._lock:
            uses = self.response_urls.setdefault(key, [])
            if uses and now - uses[0] > RESPONSE_URL_TTL_S:
                return "expired_url"
            if len(uses) >= RESPONSE_URL_USES:
                return "used_url"
            uses.append(now)
            return None
