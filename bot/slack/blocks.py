"""Block Kit builders: pure functions from answers to the JSON Slack renders. No I/O here."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from bot.answer.types import Answer, Citation
from bot.slack import text as words
from bot.slack.mrkdwn import escape, link_label, safe_url, split_mrkdwn, to_mrkdwn

Block = dict[str, Any]
IMPLICIT_SET = "docs"  # config.docsets.IMPLICIT (Block Kit stays free of config imports)
MAX_BLOCKS = 50
TEXT_FALLBACK = 3000  # the notification / screen-reader text, not what is shown
FEEDBACK_UP = "feedback_up"
FEEDBACK_DOWN = "feedback_down"
REASON_VIEW = "feedback_reason"
REASON_BLOCK = "reason"
REASON_ACTION = "reason_input"


def mrkdwn(text: str) -> Block:
    """A text object of docsbot's own mrkdwn. `verbatim`: Slack must not link or mention
    anything on its own in text that came from people, documents or the model; what should be
    a link is already one."""
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def section(text: str) -> Block:
    return {"type": "section", "text": mrkdwn(text)}


def context(text: str) -> Block:
    return {"type": "context", "elements": [mrkdwn(text)]}


def citation_links(citations: Sequence[Citation]) -> dict[int, str]:
    return {c.n: c.url for c in citations if c.url}


def sources_block(citations: Sequence[Citation]) -> Block | None:
    if not citations:
        return None
    lines = []
    for c in citations:
        where = link_label(c.place or c.source)
        # Named doc sets say where a source is from; an install without them shows none.
        from_set = f" · _{escape(c.doc_set)}_" if c.doc_set != IMPLICIT_SET else ""
        if url := safe_url(c.url):
            lines.append(f"<{url}|[{c.n}] {where}>{from_set}")
        else:
            # A folder indexed without a base URL: Slack cannot open file:// links, so the
            # section is named by its path and anchor instead.
            anchor = c.url.partition("#")[2]
            place = escape(c.source + (f"#{anchor}" if anchor else ""))
            lines.append(f"[{c.n}] {where} (`{place}`){from_set}")
    shown: list[str] = []
    for i, line in enumerate(lines):  # whole lines only: a cut link would show as markup
        if sum(len(x) + 1 for x in shown) + len(line) > TEXT_FALLBACK - 40:
            shown.append(f"…and {len(lines) - i} more")
            break
        shown.append(line)
    return context("*Sources*\n" + "\n".join(shown))


def feedback_block(question_id: int) -> Block:
    value = str(question_id)
    return {
        "type": "actions",
        # New for every message version, as Slack asks: a reused block_id can keep a client
        # showing the old block's state.
        "block_id": f"feedback-{question_id}-{uuid.uuid4().hex[:8]}",
        "elements": [
            {
                "type": "button",
                "action_id": FEEDBACK_UP,
                "text": {"type": "plain_text", "text": "👍 Helpful", "emoji": True},
                "value": value,
            },
            {
                "type": "button",
                "action_id": FEEDBACK_DOWN,
                "text": {"type": "plain_text", "text": "👎 Not helpful", "emoji": True},
                "value": value,
            },
        ],
    }


def answer_mrkdwn(answer: Answer) -> str:
    return to_mrkdwn(answer.text, citation_links(answer.citations))


def partial_mrkdwn(markdown_so_far: str) -> str:
    """A half-written answer shown while the model streams; trimmed to one section."""
    text = to_mrkdwn(markdown_so_far)
    return (text[: TEXT_FALLBACK - 10] + " …") if len(text) > TEXT_FALLBACK - 10 else text


def answer_messages(
    answer: Answer, question_id: int, *, asked_by: str | None = None
) -> list[list[Block]]:
    """The answer as one or more messages' blocks; sources and 👍/👎 close the last one."""
    pieces = split_mrkdwn(answer_mrkdwn(answer))
    head: list[Block] = []
    if asked_by:
        head.append(context(asked_by))
    tail = [b for b in (sources_block(answer.citations), feedback_block(question_id)) if b]
    messages: list[list[Block]] = []
    current = head
    for piece in pieces:
        if len(current) >= MAX_BLOCKS - len(tail):
            messages.append(current)
            current = []
        current.append(section(piece))
    messages.append(current + tail)
    return messages


def fallback_text(blocks: Sequence[Block]) -> str:
    """The message's `text`: what notifications and screen readers get."""
    for block in blocks:
        if block.get("type") == "section":
            text = str(block["text"]["text"])
            return text[:TEXT_FALLBACK]
    return "docsbot answer"


def asked_by_line(user_id: str, question: str) -> str:
    shown = question if len(question) <= 300 else question[:300] + "…"
    return f"<@{user_id}> asked: {escape(shown)}"


def reason_modal(question_id: int, channel_id: str, thread_ts: str) -> dict[str, Any]:
    """`thread_ts`: the thread the answer sits in ("" for a top-level one), where the thanks
    for the reason can be shown."""
    return {
        "type": "modal",
        "callback_id": REASON_VIEW,
        "private_metadata": f"{question_id}:{channel_id}:{thread_ts}",
        "title": {"type": "plain_text", "text": "What was wrong?"},
        "submit": {"type": "plain_text", "text": "Send"},
        "close": {"type": "plain_text", "text": "Skip"},
        "blocks": [
            section(words.REASON_INTRO),
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "optional": True,
                "label": {"type": "plain_text", "text": "Reason (optional)"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_ACTION,
                    "multiline": True,
                    "max_length": 2000,
                },
            },
        ],
    }


def suggested_prompts() -> list[dict[str, str]]:
    return [{"title": title, "message": message} for title, message in words.SUGGESTED_PROMPTS]


def thread_title(question: str) -> str:
    one_line = " ".join(question.split())
    return one_line if len(one_line) <= 60 else one_line[:59] + "…"
