"""What each Web API method does in the fake workspace, once its arguments, the rate limit and
any injected fault have been checked (slack_server.FakeSlack.handle)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from tests.fakes.slack_events import BOT_ID, BOT_USER, TEAM
from tests.fakes.slack_rules import VIEW_BLOCKS, check_blocks
from tests.fakes.slack_workspace import Message

if TYPE_CHECKING:
    from tests.fakes.slack_server import FakeSlack

Body = dict[str, Any]
PAGE = 200


def _error(code: str) -> Body:
    return {"ok": False, "error": code}


def perform(fake: FakeSlack, method: str, params: dict[str, Any]) -> Body:
    handler = HANDLERS.get(method)
    return handler(fake, params) if handler else {"ok": True}


def _message_checks(fake: FakeSlack, params: dict[str, Any], *, posting: bool) -> str | None:
    channel = str(params.get("channel") or "")
    if posting and channel in fake.not_member:
        return "not_in_channel"
    if params.get("markdown_text") and (params.get("text") or params.get("blocks")):
        return "markdown_text_conflict"
    if not (params.get("text") or params.get("blocks") or params.get("markdown_text")):
        return "no_text"
    return check_blocks(params.get("blocks"))


def _post(fake: FakeSlack, params: dict[str, Any]) -> Body:
    problem = _message_checks(fake, params, posting=True)
    if problem:
        return _error(problem)
    channel = str(params["channel"])
    if channel.startswith(("U", "W")):  # posting to a person opens the app's DM with them
        channel = "D" + channel[1:]
    posted = fake.workspace.add(
        Message(
            channel,
            fake.next_ts(),
            params.get("thread_ts") or None,
            str(params.get("text") or params.get("markdown_text") or ""),
            user=BOT_USER,
            bot_id=BOT_ID,
            blocks=list(params.get("blocks") or []),
            metadata=params.get("metadata"),
        )
    )
    _echo(fake, posted)
    return {"ok": True, "channel": channel, "ts": posted.ts, "message": posted.as_slack(True)}


def _echo(fake: FakeSlack, posted: Message) -> None:
    """Slack sends the app its own posts as `message` events (with its bot_id)."""
    if fake.echo_to is None:
        return
    event = {**posted.as_slack(False), "channel": posted.channel, "team": TEAM}
    sender = fake.echo_to
    threading.Thread(target=lambda: sender.event(event), daemon=True).start()


def _update(fake: FakeSlack, params: dict[str, Any]) -> Body:
    problem = _message_checks(fake, params, posting=False)
    if problem:
        return _error(problem)
    found = fake.workspace.get(str(params["channel"]), str(params["ts"]))
    if found is None or not found.bot_id:
        return _error("message_not_found" if found is None else "cant_update_message")
    if fake.workspace.stream_open(found):
        return _error("streaming_state_conflict")
    fake.workspace.update(found, params)
    return {"ok": True, "channel": found.channel, "ts": found.ts}


def _delete(fake: FakeSlack, params: dict[str, Any]) -> Body:
    channel, ts = str(params["channel"]), str(params["ts"])
    found = fake.workspace.get(channel, ts)
    if found is None:
        return _error("message_not_found")
    if not found.bot_id:
        return _error("cant_delete_message")
    with fake.workspace._lock:
        del fake.workspace.messages[channel][ts]
    return {"ok": True, "channel": channel, "ts": ts}


def _start_stream(fake: FakeSlack, params: dict[str, Any]) -> Body:
    channel = str(params["channel"])
    if channel in fake.not_member:
        return _error("not_in_channel")
    started = fake.workspace.add(
        Message(
            channel,
            fake.next_ts(),
            params.get("thread_ts") or None,
            str(params.get("markdown_text") or ""),
            user=BOT_USER,
            bot_id=BOT_ID,
            streaming_since=fake.workspace.clock(),
        )
    )
    return {"ok": True, "channel": channel, "ts": started.ts}


def _streaming(fake: FakeSlack, params: dict[str, Any]) -> Message | Body:
    found = fake.workspace.get(str(params["channel"]), str(params["ts"]))
    if found is None:
        return _error("message_not_found")
    if not fake.workspace.stream_open(found):
        return _error("message_not_in_streaming_state")
    return found


def _append_stream(fake: FakeSlack, params: dict[str, Any]) -> Body:
    found = _streaming(fake, params)
    if isinstance(found, dict):
        return found
    found.text += str(params.get("markdown_text") or "")
    return {"ok": True, "channel": found.channel, "ts": found.ts}


def _stop_stream(fake: FakeSlack, params: dict[str, Any]) -> Body:
    found = _streaming(fake, params)
    if isinstance(found, dict):
        return found
    if problem := check_blocks(params.get("blocks")):
        return _error(problem)
    found.text += str(params.get("markdown_text") or "")
    found.streaming_since = None
    return {"ok": True, "channel": found.channel, "ts": found.ts}


def _ephemeral(fake: FakeSlack, params: dict[str, Any]) -> Body:
    problem = _message_checks(fake, params, posting=True)
    if problem:
        return _error(problem)
    fake.workspace.ephemeral(params)
    return {"ok": True, "message_ts": fake.next_ts()}


def _replies(fake: FakeSlack, params: dict[str, Any]) -> Body:
    channel, ts = str(params["channel"]), str(params["ts"])
    with_metadata = str(params.get("include_all_metadata")).lower() in ("true", "1")
    seeded = list(fake.threads.get((channel, ts), []))
    known = [m.as_slack(with_metadata) for m in fake.workspace.replies(channel, ts)]
    seen = {m.get("ts") for m in seeded}
    messages = seeded + [m for m in known if m["ts"] not in seen]
    messages.sort(key=lambda m: float(m.get("ts") or 0))
    latest = params.get("latest")
    if latest:
        inclusive = str(params.get("inclusive")).lower() in ("true", "1")
        messages = [
            m
            for m in messages
            if float(m["ts"]) < float(latest) or (inclusive and m["ts"] == latest)
        ]
    return _page(messages, params)


def _history(fake: FakeSlack, params: dict[str, Any]) -> Body:
    channel = str(params["channel"])
    if channel in fake.not_member:
        return _error("not_in_channel")
    with_metadata = str(params.get("include_all_metadata")).lower() in ("true", "1")
    return _page([m.as_slack(with_metadata) for m in fake.workspace.history(channel)], params)


def _page(messages: list[dict[str, Any]], params: dict[str, Any]) -> Body:
    """Slack pages long answers: `limit` per page, `response_metadata.next_cursor` for more."""
    try:
        start = int(str(params.get("cursor") or "0").removeprefix("page:"))
    except ValueError:
        return _error("invalid_cursor")
    limit = min(int(params.get("limit") or PAGE), 1000)
    page = messages[start : start + limit]
    more = start + limit < len(messages)
    body: Body = {"ok": True, "messages": page, "has_more": more}
    body["response_metadata"] = {"next_cursor": f"page:{start + limit}" if more else ""}
    return body


def _conversation_info(fake: FakeSlack, params: dict[str, Any]) -> Body:
    channel = str(params["channel"])
    if channel in fake.unknown_channels:
        return _error("channel_not_found")
    shared = channel in fake.shared_channels
    return {
        "ok": True,
        "channel": {
            "id": channel,
            "is_channel": channel.startswith("C"),
            "is_im": channel.startswith("D"),
            "is_shared": shared,
            "is_ext_shared": shared,
        },
    }


def _views_open(fake: FakeSlack, params: dict[str, Any]) -> Body:
    if fake.workspace.trigger_expired(str(params.get("trigger_id") or "")):
        return _error("expired_trigger_id")
    return _view(params, "V1")


def _views_publish(fake: FakeSlack, params: dict[str, Any]) -> Body:
    return _view(params, "VHOME")


def _view(params: dict[str, Any], view_id: str) -> Body:
    view = params.get("view") or {}
    if isinstance(view, str):
        import json

        view = json.loads(view)
    if check_blocks(view.get("blocks"), limit=VIEW_BLOCKS):
        return _error("invalid_arguments")
    return {"ok": True, "view": {"id": view_id, **view}}


def _auth_test(fake: FakeSlack, params: dict[str, Any]) -> Body:
    return {
        "ok": True,
        "user_id": BOT_USER,
        "bot_id": BOT_ID,
        "team_id": TEAM,
        "user": "docsbot",
        "team": "Test",
        "url": "https://test.slack.com/",
    }


def _connections_open(fake: FakeSlack, params: dict[str, Any]) -> Body:
    if fake.socket_url is None:
        return _error("not_allowed_token_type")
    return {"ok": True, "url": fake.socket_url}


HANDLERS = {
    "auth.test": _auth_test,
    "apps.connections.open": _connections_open,
    "chat.postMessage": _post,
    "chat.update": _update,
    "chat.delete": _delete,
    "chat.startStream": _start_stream,
    "chat.appendStream": _append_stream,
    "chat.stopStream": _stop_stream,
    "chat.postEphemeral": _ephemeral,
    "conversations.replies": _replies,
    "conversations.history": _history,
    "conversations.info": _conversation_info,
    "views.open": _views_open,
    "views.publish": _views_publish,
}
