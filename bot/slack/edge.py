"""The HTTP edge of /slack/events: what a request must be before anything reads it as Slack's.

In order, each step cheaper than the next and none trusting the body before the signature:
1. the size, from Content-Length, before the body is read (413 past the cap; waitress refuses
   bodies past the same cap while reading, chunked ones included);
2. the signature (HMAC of timestamp and body with the signing secret, and a timestamp within
   five minutes: replays get 401 too). A request missing its headers is malformed (400);
3. the shape: a JSON object, or a form whose `payload` is one. Slack signed it, so a body that
   does not parse is poison, not an attack: 200 and one warning, so Slack does not retry it.
A refused request is logged as one line (path, size, reason), never its body, and each kind of
refusal at most once a minute, with the count held back since: a forged 10 MB body must cost
its sender more than it costs the bot, and a flood must not bury the log.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from bot.ops.logs import Throttle, held_back
from config.logger import get_logger

log = get_logger(__name__)
Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
MAX_AGE_S = 5 * 60  # Slack's own rule for how old a signed request may be
VERIFIED = "docsbot.verified"  # environ key: the edge checked this request


class RefusalLog:
    """One warning per kind of refusal a minute; the ones held back are counted in the next
    line of their kind."""

    def __init__(self, clock: Callable[[], float], every_s: float = 60.0) -> None:
        self.throttle = Throttle(clock, every_s)

    def refused(self, path: str, size: int | None, reason: str) -> None:
        held = self.throttle.admit(reason)
        if held is not None:
            bytes_part = f" ({size} bytes)" if size is not None else ""
            log.warning("refused %s%s: %s%s", path, bytes_part, reason, held_back(held))


def _reply(start_response: Callable[..., Any], status: str, text: str) -> list[bytes]:
    body = text.encode()
    start_response(
        status,
        [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
    )
    return [body]


def well_formed(body: bytes, content_type: str) -> bool:
    """Is this what Slack sends: a JSON object (events), or a form with a command's fields or
    an interactive `payload` that is a JSON object?"""
    try:
        text = body.decode("utf-8")
        if "json" in content_type:
            return isinstance(json.loads(text), dict)
        form = parse_qs(text, keep_blank_values=True, strict_parsing=bool(text))
        if "payload" in form:
            return isinstance(json.loads(form["payload"][0]), dict)
        return bool(form)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False


class SlackEdge:
    def __init__(
        self,
        inner: Wsgi,
        signing_secret: str,
        *,
        max_bytes: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.inner = inner
        self.secret = signing_secret.encode()
        self.max_bytes = max_bytes
        self.clock = clock
        self.refusals = RefusalLog(time.monotonic)

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        length_text = str(environ.get("CONTENT_LENGTH") or "")
        if environ.get("REQUEST_METHOD") != "POST":
            return _reply(start_response, "405 Method Not Allowed", "Slack posts here.\n")
        if not length_text.isdigit():
            self.refusals.refused(path, None, "no Content-Length")
            return _reply(start_response, "411 Length Required", "Content-Length required.\n")
        size = int(length_text)
        if size > self.max_bytes:
            self.refusals.refused(path, size, f"over the {self.max_bytes}-byte cap")
            return _reply(start_response, "413 Content Too Large", "Too large.\n")
        body = environ["wsgi.input"].read(size)
        stamp = str(environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP") or "")
        signature = str(environ.get("HTTP_X_SLACK_SIGNATURE") or "")
        if not stamp or not signature or not stamp.isdigit():
            self.refusals.refused(path, size, "signature headers missing or malformed")
            return _reply(start_response, "400 Bad Request", "Malformed request.\n")
        if abs(self.clock() - int(stamp)) > MAX_AGE_S:
            self.refusals.refused(path, size, "timestamp too old or in the future")
            return _reply(start_response, "401 Unauthorized", "Invalid request.\n")
        expected = (
            "v0="
            + hmac.new(
                self.secret, b"v0:" + stamp.encode() + b":" + body, hashlib.sha256
            ).hexdigest()
        )
        if not hmac.compare_digest(expected, signature):
            self.refusals.refused(path, size, "bad signature")
            return _reply(start_response, "401 Unauthorized", "Invalid request.\n")
        if not well_formed(body, str(environ.get("CONTENT_TYPE") or "")):
            log.warning("signed request to %s (%d bytes) does not parse; dropped", path, size)
            return _reply(start_response, "200 OK", "")
        environ["wsgi.input"] = io.BytesIO(body)
        environ[VERIFIED] = True
        started: list[bool] = []

        def tracked(*args: Any) -> Any:
            started.append(True)
            return start_response(*args)

        try:
            return list(self.inner(environ, tracked))
        except Exception as error:
            if started:
                raise
            # Bolt itself tripped over a signed payload of an unexpected shape (a view without
            # its type, an action without a value): poison, not a reason for Slack to retry.
            log.warning(
                "signed request to %s (%d bytes) has an unexpected shape (%s); dropped",
                path,
                size,
                type(error).__name__,
            )
            return _reply(start_response, "200 OK", "")
