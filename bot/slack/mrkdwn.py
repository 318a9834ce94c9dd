"""Between Slack's text and ours: Markdown → Slack mrkdwn, escaping, splitting under limits,
and Slack's markup → the plain text a question is searched with.

Everything user- or document-derived passes through `escape`: `<`, `>` and `&` are the only
characters Slack parses for mentions (`<!channel>`) and masked links (`<url|text>`), so once
they are entities nothing can ping a channel or hide a link's destination.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping

SECTION_LIMIT = 3000  # characters in one section block's text
BROADCAST = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)
FENCE = re.compile(r"^\s*(```|~~~)")
LINK = re.compile(r"\[([^\]\n]+)\]\((\S+?)(?:\s+\"[^\"]*\")?\)")
INLINE_CODE = re.compile(r"`([^`\n]+)`")
CITATION = re.compile(r"\[(\d{1,3})\]")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
BULLET = re.compile(r"^(\s*)[-*+]\s+")
BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
ITALIC = re.compile(r"(?<![*\w])\*(?=[^\s*])([^*\n]+?)(?<=[^\s*])\*(?![*\w])")
STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")


def escape(text: str) -> str:
    """Make any text safe to place in mrkdwn: no mentions, no links, no broadcasts."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    # A word joiner after the @ keeps "@channel" readable but inert even where a client
    # would link names.
    return BROADCAST.sub("@\u2060\\1", escaped)


STREAM_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", "[": "\\[", "]": "\\]", "@": "@\u2060"}
)


def escape_stream(piece: str) -> str:
    """Escaping for Markdown streamed in pieces: character by character, so it is the same
    whether a piece ends mid-word or not. No `[label](url)` can form (brackets are escaped),
    no mention (`<`, `>`), no broadcast (every @ gets a word joiner). The streamed text is
    replaced by the mrkdwn rendering once the answer is complete."""
    return piece.translate(STREAM_ESCAPES)


def safe_url(url: str) -> str | None:
    """An http(s) URL that cannot break out of `<url|label>`; None for other schemes."""
    if not url.startswith(("http://", "https://")):
        return None
    return url.replace("<", "%3C").replace(">", "%3E").replace("|", "%7C").replace(" ", "%20")


def link_label(text: str) -> str:
    """Text safe as the label of a `<url|label>` link."""
    return escape(text).replace("|", "¦")


class _Shield:
    """Pieces already in final mrkdwn (code, links) hidden from the inline rewrites."""

    def __init__(self) -> None:
        self.pieces: list[str] = []

    def hide(self, piece: str) -> str:
        self.pieces.append(piece)
        return f"\x00{len(self.pieces) - 1}\x00"

    def restore(self, text: str) -> str:
        # A hidden piece may hold another (inline code inside a link's label).
        while "\x00" in text:
            text = re.sub(r"\x00(\d+)\x00", lambda m: self.pieces[int(m.group(1))], text)
        return text


def _inline(line: str, links: Mapping[int, str], known_urls: set[str]) -> str:
    shield = _Shield()
    line = INLINE_CODE.sub(lambda m: shield.hide(f"`{escape(m.group(1))}`"), line)

    def link(match: re.Match[str]) -> str:
        label, url = match.group(1), safe_url(match.group(2))
        if url is None:
            return shield.hide(link_label(label))
        if match.group(2) in known_urls:
            return shield.hide(f"<{url}|{link_label(label)}>")
        # A link the documents did not vouch for shows where it goes: no masked destinations.
        return shield.hide(f"{link_label(label)} (<{url}>)")

    line = LINK.sub(link, line)

    def citation(match: re.Match[str]) -> str:
        url = links.get(int(match.group(1)))
        safe = safe_url(url) if url else None
        return shield.hide(f"<{safe}|[{match.group(1)}]>" if safe else match.group(0))

    line = CITATION.sub(citation, line)
    line = escape(line)
    line = BOLD.sub(lambda m: f"\x01{m.group(2)}\x01", line)
    line = ITALIC.sub(r"_\1_", line)
    line = STRIKE.sub(r"~\1~", line)
    return shield.restore(line.replace("\x01", "*"))


def to_mrkdwn(markdown: str, links: Mapping[int, str] | None = None) -> str:
    """Convert an LLM's Markdown to Slack mrkdwn; `links` maps citation numbers to URLs,
    which makes each `[n]` a link to its section."""
    links = links or {}
    known = set(links.values())
    markdown = markdown.replace("\x00", "").replace("\x01", "")  # reserved for placeholders
    out: list[str] = []
    fence: str | None = None
    table = False
    for line in markdown.splitlines():
        marker = FENCE.match(line)
        if fence is not None:
            if marker and marker.group(1) == fence and not line.strip()[3:].strip():
                out.append("```")
                fence = None
            else:
                out.append(escape(line))
            continue
        if marker:
            fence = marker.group(1)
            out.append("```")  # Slack shows no language tag: drop it
            continue
        is_table_row = line.lstrip().startswith("|")
        if is_table_row != table:
            out.append("```")  # tables read best monospaced: Slack has no table syntax
            table = is_table_row
        if table:
            out.append(escape(line))
            continue
        quote = ""
        if line.startswith(">"):
            quote, line = ">", line[1:].removeprefix(" ")
        if heading := HEADING.match(line):
            out.append(f"{quote}*{_inline(heading.group(1), links, known).strip('*')}*")
            continue
        if bullet := BULLET.match(line):
            line = f"{bullet.group(1)}• {line[bullet.end() :]}"
        out.append(quote + _inline(line, links, known))
    if fence is not None or table:
        out.append("```")
    return "\n".join(out).strip()


def split_mrkdwn(text: str, limit: int = SECTION_LIMIT) -> list[str]:
    """Pieces of at most `limit` characters, cut between paragraphs where possible; a code
    block cut in two is closed and reopened so both halves still render as code."""
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    in_code = False
    budget = limit - 8  # room for a closing and reopening fence

    def flush() -> None:
        nonlocal current, size
        if current:
            pieces.append("\n".join(current).strip("\n"))
        current, size = [], 0

    lines: list[str] = []
    for line in text.split("\n"):
        while len(line) > budget:  # an overlong line is cut at a space, hard if it has none
            cut = line.rfind(" ", budget // 2, budget)
            cut = cut if cut > 0 else budget
            lines.append(line[:cut])
            line = line[cut:].lstrip(" ")
        lines.append(line)
    for i, line in enumerate(lines):
        if size + len(line) + 1 > budget:
            if in_code:
                current.append("```")
            flush()
            if in_code:
                current, size = ["```"], 4
        elif not in_code and not line.strip() and size > budget * 0.75:
            # A paragraph break late in a piece: a natural place to cut.
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            if nxt.strip():
                flush()
                continue
        if line.strip() == "```" or line.startswith("```"):
            in_code = not in_code if line.count("```") % 2 == 1 else in_code
        current.append(line)
        size += len(line) + 1
    flush()
    return [p for p in pieces if p.strip()]


USER = re.compile(r"<@([UW][A-Z0-9]+)(?:\|([^>]*))?>")
CHANNEL = re.compile(r"<#(C[A-Z0-9]+)(?:\|([^>]*))?>")
SPECIAL = re.compile(r"<!([a-z]+)(?:\^[^|>]*)?(?:\|([^>]*))?>")
SLACK_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]*))?>")


def from_slack(text: str, bot_user_id: str | None = None) -> str:
    """A Slack message as plain text: the bot's own mention removed, other mentions and links
    turned into what a reader sees, entities decoded."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", " ", text)
    text = USER.sub(lambda m: "@" + (m.group(2) or m.group(1)), text)
    text = CHANNEL.sub(lambda m: "#" + (m.group(2) or m.group(1)), text)
    text = SPECIAL.sub(lambda m: "@" + (m.group(2) or m.group(1)), text)
    text = SLACK_LINK.sub(
        lambda m: m.group(1) if not m.group(2) else f"{m.group(2)} ({m.group(1)})", text
    )
    return re.sub(r"[ \t]+", " ", html.unescape(text)).strip()
