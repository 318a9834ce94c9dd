"""The rules a fake Slack must keep, from Slack's own method reference (slack_reference/, a copy
of slack-ruby/slack-api-ref, MIT): which methods exist, what arguments they need and of which
type, which errors they may return, their rate tiers, and Block Kit's limits as slack_sdk's own
block models check them."""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

REFERENCE = Path(__file__).parent / "slack_reference"
# Socket Mode's handshake is an app-level method the reference does not list.
EXTRA_METHODS = {"apps.connections.open": {"args": {"required": [], "properties": {}}}}
# Errors every method may return (Slack's "common errors").
COMMON_ERRORS = {
    "not_authed",
    "invalid_auth",
    "invalid_arguments",
    "unknown_method",
    "ratelimited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
    "missing_scope",
    "account_inactive",
}
PER_MINUTE = {"t1": 1, "t2": 20, "t3": 50, "t4": 100}
POST_BURST = 4  # chat.postMessage: 1 a second per channel, "short bursts allowed"
JSON_ARGUMENTS = {"blocks", "attachments", "metadata", "view", "prompts", "chunks"}
MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100
MARKDOWN_BLOCK_CHARS = 12_000


@cache
def reference(method: str) -> dict[str, Any] | None:
    if method in EXTRA_METHODS:
        return EXTRA_METHODS[method]
    path = REFERENCE / f"{method}.json"
    if not path.is_file():
        return None
    return dict(json.loads(path.read_text()))


def documented_errors(method: str) -> set[str]:
    spec = reference(method) or {}
    return set(spec.get("errors") or {}) | COMMON_ERRORS


def _types(schema: dict[str, Any]) -> set[str]:
    if "type" in schema:
        kind = schema["type"]
        return set(kind) if isinstance(kind, list) else {kind}
    options = schema.get("anyOf") or schema.get("oneOf") or []
    return {t for option in options for t in _types(option)} if options else set()


def _fits(value: Any, types: set[str], name: str) -> bool:
    """Does a value as it arrived (JSON body or form field) fit the documented types?"""
    if not types:
        return True  # the reference leaves it open
    if value is None:
        return "null" in types
    if name in JSON_ARGUMENTS and isinstance(value, (list, dict)):
        return True  # a JSON body carries blocks as arrays, the form as JSON strings
    checks: dict[str, Callable[[Any], bool]] = {
        "string": lambda v: isinstance(v, str),
        "boolean": lambda v: isinstance(v, bool) or v in ("true", "false", "1", "0"),
        "integer": lambda v: (
            (isinstance(v, int) and not isinstance(v, bool))
            or (isinstance(v, str) and v.lstrip("-").isdigit())
        ),
        "number": lambda v: (
            (isinstance(v, (int, float)) and not isinstance(v, bool))
            or (isinstance(v, str) and _is_number(v))
        ),
        "array": lambda v: isinstance(v, list) or (isinstance(v, str) and v.startswith("[")),
        "object": lambda v: isinstance(v, dict) or (isinstance(v, str) and v.startswith("{")),
    }
    return any(checks.get(t, lambda _v: True)(value) for t in types)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def check_arguments(method: str, params: dict[str, Any]) -> str | None:
    """`unknown_method`, `invalid_arguments` or None, as Slack decides before doing anything."""
    spec = reference(method)
    if spec is None:
        return "unknown_method"
    args = spec.get("args") or {}
    for name in args.get("required") or []:
        if name != "token" and params.get(name) in (None, ""):
            return "invalid_arguments"
    properties = args.get("properties") or {}
    for name, value in params.items():
        schema = properties.get(name)
        if schema is not None and not _fits(value, _types(schema), name):
            return "invalid_arguments"
    return None


def _decoded(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        return json.loads(value)
    return value


def check_blocks(blocks: Any, *, limit: int = MESSAGE_BLOCKS) -> str | None:
    """Why Slack would refuse these blocks (`invalid_blocks`), checked with slack_sdk's own
    models and the documented limits; None when it would take them."""
    from slack_sdk.errors import SlackObjectFormationError
    from slack_sdk.models.blocks import Block

    blocks = _decoded(blocks)
    if blocks is None:
        return None
    if not isinstance(blocks, list) or len(blocks) > limit:
        return "invalid_blocks"
    block_ids = [b.get("block_id") for b in blocks if isinstance(b, dict) and b.get("block_id")]
    if len(block_ids) != len(set(block_ids)):
        return "invalid_blocks"
    markdown = 0
    for raw in blocks:
        if not isinstance(raw, dict):
            return "invalid_blocks"
        if raw.get("type") == "markdown":
            markdown += len(str(raw.get("text") or ""))
            continue
        try:
            block = Block.parse(raw)
            if block is None:
                return "invalid_blocks"
            block.validate_json()
        except (SlackObjectFormationError, KeyError, TypeError, ValueError):
            return "invalid_blocks"
    return "invalid_blocks" if markdown > MARKDOWN_BLOCK_CHARS else None


@dataclass
class RateLimits:
    """Per method per workspace (token), as Slack counts: Tier 2/3/4 allowances in any sliding
    minute; chat.postMessage about one a second per channel. Over the limit: 429 with the
    Retry-After that would make the next call fit."""

    clock: Callable[[], float] = time.monotonic
    enabled: bool = True
    _calls: dict[tuple[str, str], deque[float]] = field(default_factory=dict)
    _posts: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def admit(self, method: str, workspace: str, channel: str) -> float | None:
        """None when the call may go through (and it is counted), else seconds to wait."""
        if not self.enabled:
            return None
        spec = reference(method) or {}
        tier = spec.get("rate_limits")
        now = self.clock()
        with self._lock:
            if method == "chat.postMessage":
                return self._admit_post(workspace, channel, now)
            if tier not in PER_MINUTE:
                return None
            window = self._calls.setdefault((workspace, method), deque())
            while window and window[0] <= now - 60:
                window.popleft()
            if len(window) >= PER_MINUTE[tier]:
                return max(1.0, math.ceil(window[0] + 60 - now))
            window.append(now)
            return None

    def _admit_post(self, workspace: str, channel: str, now: float) -> float | None:
        tokens, updated = self._posts.get((workspace, channel), [float(POST_BURST), now])
        tokens = min(float(POST_BURST), tokens + (now - updated))
        if tokens < 1.0:
            self._posts[(workspace, channel)] = [tokens, now]
            return 1.0
        self._posts[(workspace, channel)] = [tokens - 1.0, now]
        return None
