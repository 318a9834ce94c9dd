"""Between Slack's text and ours: Markdown → Slack mrkdwn, escaping, splitting under limits,
and Slack's markup → the plain text a question is searched with.

Everything user- or document-derived passes through `escape`: `<`, `>` and `&` are the only
characters Slack parses for mentions (`<!channel>`) and masked links (`<url|text>`), so once
they are entities nothing can ping a channel or hide a link's destination.

`to_mrkdwn` renders markdown-it-py's syntax tree (parser and layout helpers in
`mrkdwn_tokens`), so what is code, a link or emphasis is decided by a CommonMark parser and
not by regular expressions.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from markdown_it.tree import SyntaxTreeNode

from bot.slack.mrkdwn_tokens import Piece, entities, finish, normalize_link, parse, table_lines

SECTION_LIMIT = 3000  # characters in one section block's text
# Only a broadcast where one can start: not inside an e-mail address (me@here.com).
BROADCAST = re.compile(r"(?<![A-Za-z0-9._%+-])@(channel|here|everyone)\b", re.IGNORECASE)
STYLE = {"strong": "*", "em": "_", "s": "~"}
ORDER = "*_~"  # outermost first: ***x*** is bold around italic, *_x_*


def escape(text: str) -> str:
    """Make any text safe to place in mrkdwn: no mentions, no links, no broadcasts."""
    # A word joiner after the @ keeps "@channel" readable but inert even where a client
    # would link names.
    return BROADCAST.sub("@\u2060\\1", entities(text))


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


# -- Markdown → mrkdwn -----------------------------------------------------------------------

Line = tuple[str, bool]  # a line of output, and whether it is code (never prefixed or altered)


@dataclass(frozen=True)
class _Context:
    links: Mapping[int, str]
    known: frozenset[str]  # the citation URLs, as written and as markdown-it normalises them
    source: list[str]
    active: str = ""  # the formatting characters open around this point, outermost first
    in_link: bool = False


def _has_text(pieces: list[Piece]) -> bool:
    return any(kind in ("lit", "raw") and text.strip() for kind, text in pieces)


def _inline(node: SyntaxTreeNode, ctx: _Context) -> list[Piece]:
    out: list[Piece] = []
    for child in node.children:
        kind = child.type
        if kind == "text":
            out.append(("lit", escape(child.content)))
        elif kind == "code_inline":
            out.append(("raw", f"`{entities(child.content)}`"))
        elif kind in ("softbreak", "hardbreak"):
            # Slack formats within a line: close what is open and reopen it on the next.
            out += [("close", m) for m in reversed(ctx.active)]
            out += [("lit", "\n"), *(("open", m) for m in ctx.active)]
        elif kind in STYLE:
            out += _styled(child, ctx)
        elif kind in ("link", "image"):
            out += _link(child, ctx)
        elif kind == "citation":
            url = ctx.links.get(int(child.content))
            safe = safe_url(url) if url and not ctx.in_link else None
            n = child.content
            out.append(("raw", f"<{safe}|[{n}]>") if safe else ("lit", f"[{n}]"))
        else:
            out.append(("lit", escape(child.content)))
    return out


def _styled(node: SyntaxTreeNode, ctx: _Context) -> list[Piece]:
    # Styles wrapping nothing but another style (***x***) are emitted together, in ORDER, so
    # the markers nest; one already open (bold inside a heading) is not opened twice.
    marks = {STYLE[node.type]}
    while True:
        kids = [c for c in node.children if c.type != "text" or c.content]
        if len(kids) != 1 or kids[0].type not in STYLE:
            break
        node = kids[0]
        marks.add(STYLE[node.type])
    new = "".join(m for m in ORDER if m in marks and m not in ctx.active)
    body = _inline(node, replace(ctx, active=ctx.active + new))
    if not _has_text(body):
        return body
    return [*(("open", m) for m in new), *body, *(("close", m) for m in reversed(new))]


def _link(node: SyntaxTreeNode, ctx: _Context) -> list[Piece]:
    href = str(node.attrs.get("href") or node.attrs.get("src") or "")
    label = [
        (kind, text.replace("|", "¦") if kind in ("lit", "raw") else text)
        for kind, text in _inline(node, replace(ctx, in_link=True))
    ]
    url = safe_url(href)
    if url is None or ctx.in_link:
        return label  # only http(s) is made clickable: file:// cannot open, javascript: never
    plain = "".join(text for kind, text in label if kind in ("lit", "raw"))
    if node.markup in ("autolink", "linkify") or not plain.strip() or plain == escape(href):
        return [("raw", f"<{url}>")]  # the reader sees the address itself
    if re.fullmatch(r"[0-9]{1,3}", plain):  # [1](url) or [1] with a `[1]: url` definition
        label = [("lit", f"[{plain}]")]
    if href in ctx.known:
        return [("raw", f"<{url}|"), *label, ("raw", ">")]
    # A link the documents did not vouch for shows where it goes: no masked destinations.
    return [*label, ("raw", f" (<{url}>)")]


def _plain(node: SyntaxTreeNode) -> str:
    """A table cell's text: it is shown in a code block, where no formatting applies."""
    parts: list[str] = []
    for child in node.children:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "citation":
            parts.append(f"[{child.content}]")
        elif child.type in ("link", "image"):
            label, href = _plain(child), str(child.attrs.get("href") or child.attrs.get("src"))
            show = safe_url(href) and href != label
            parts.append(f"{label} ({href})" if show else label)
        else:
            parts.append(_plain(child))
    return "".join(parts)


def _table(node: SyntaxTreeNode) -> list[Line]:
    rows = [tr for section in node.children for tr in section.children]
    cells = [
        [_plain(cell.children[0]) if cell.children else "" for cell in tr.children] for tr in rows
    ]
    aligns = [str(th.attrs.get("style", "")).removeprefix("text-align:") for th in rows[0].children]
    return [("```", True), *((line, True) for line in table_lines(cells, aligns)), ("```", True)]


def _blank_before(node: SyntaxTreeNode, ctx: _Context) -> bool:
    # Blocks keep the source's spacing: a blank line between them only where it had one
    # (`>` counts as blank inside a quote). Lists' maps include trailing blank lines, so the
    # line just before the block is what tells.
    first = node.map[0] if node.map else 0
    return 0 < first <= len(ctx.source) and not ctx.source[first - 1].strip(" \t>")


def _blocks(node: SyntaxTreeNode, ctx: _Context) -> list[Line]:
    out: list[Line] = []
    for child in node.children:
        lines = _block(child, ctx)
        if lines and out and _blank_before(child, ctx):
            out.append(("", False))
        out += lines
    return out


def _prefixed(lines: list[Line], first: str, rest: str) -> list[Line]:
    """Lines behind a list marker or quote sign; code lines are left as they are, since a
    prefix inside a code block would change the code."""
    if not lines or lines[0][1]:
        lines = [("", False), *lines]
    out: list[Line] = []
    for i, (text, code) in enumerate(lines):
        if code:
            out.append((text, code))
        else:
            out.append(((first if i == 0 else rest) + text if text or i == 0 else "", False))
    return [(text.rstrip() if not code else text, code) for text, code in out]


def _block(node: SyntaxTreeNode, ctx: _Context) -> list[Line]:
    kind = node.type
    if kind == "paragraph":
        return [(line, False) for line in finish(_inline(node.children[0], ctx)).split("\n")]
    if kind == "heading":  # Slack has no headings: a bold line
        body = _inline(node.children[0], replace(ctx, active="*"))
        if not _has_text(body):
            return []
        text = finish([("open", "*"), *body, ("close", "*")])
        return [(line, False) for line in text.split("\n")]
    if kind in ("bullet_list", "ordered_list"):
        out: list[Line] = []
        start = int(node.attrs.get("start", 1))
        for i, item in enumerate(node.children):
            marker = "• " if kind == "bullet_list" else f"{item.info or start + i}{item.markup} "
            if out and _blank_before(item, ctx):
                out.append(("", False))
            out += _prefixed(_blocks(item, ctx), marker, " " * len(marker))
        return out
    if kind == "blockquote":  # Slack quotes one level: nested quotes join the outer one
        return [
            (text if code or text.startswith(">") else f"> {text}".rstrip(), code)
            for text, code in _blocks(node, ctx)
        ]
    if kind in ("fence", "code_block"):  # Slack shows no language tag: it is dropped
        code = entities(node.content.removesuffix("\n")).split("\n")
        return [("```", True), *((line, True) for line in code), ("```", True)]
    if kind == "table":
        return _table(node)
    if kind == "hr":
        return [("───", False)]
    return [(line, False) for line in escape(node.content).splitlines()]


def to_mrkdwn(markdown: str, links: Mapping[int, str] | None = None) -> str:
    """Convert an LLM's Markdown to Slack mrkdwn; `links` maps citation numbers to URLs,
    which makes each `[n]` a link to its section."""
    links = links or {}
    known = frozenset([*links.values(), *(normalize_link(u) for u in links.values())])
    tree, source = parse(markdown)
    lines = _blocks(tree, _Context(links, known, source))
    return "\n".join(text for text, _ in lines).strip()


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
SPECIAL = re.compile(r"<!([a-z]+)((?:\^[^|>]*)?)(?:\|([^>]*))?>")
SLACK_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]*))?>")


def _special(match: re.Match[str]) -> str:
    """`<!…>`: a broadcast, a user group or a date, as the reader sees it."""
    name, args, label = match.group(1), match.group(2).lstrip("^"), match.group(3)
    if name in ("here", "channel", "everyone"):
        return "@" + name
    if name == "subteam":  # the label is the group's handle, "@team"
        return "@" + (label or args).lstrip("@")
    if label:  # a date's label is its fallback text, "Feb 18"
        return label
    if name == "date" and (seconds := args.partition("^")[0]).isdigit():
        return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%d")
    return "@" + name


def from_slack(text: str, bot_user_id: str | None = None) -> str:
    """A Slack message as plain text: the bot's own mention removed, other mentions and links
    turned into what a reader sees, entities decoded."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", " ", text)
    text = USER.sub(lambda m: "@" + (m.group(2) or m.group(1)), text)
    text = CHANNEL.sub(lambda m: "#" + (m.group(2) or m.group(1)), text)
    text = SPECIAL.sub(_special, text)
    text = SLACK_LINK.sub(
        lambda m: m.group(1) if not m.group(2) else f"{m.group(2)} ({m.group(1)})", text
    )
    return re.sub(r"[ \t]+", " ", html.unescape(text)).strip()
