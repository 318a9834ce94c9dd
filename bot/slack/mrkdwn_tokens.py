"""The mechanics under `bot.slack.mrkdwn.to_mrkdwn`: the Markdown parser (markdown-it-py,
CommonMark plus tables and strikethrough, with two inline rules of docsbot's: bare URLs and
`[n]` citations), Slack's pairing of formatting characters, and monospaced tables.

Nothing here knows about links or citations' targets: the renderer in `mrkdwn.py` does.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from markdown_it import MarkdownIt
from markdown_it.rules_inline import StateInline
from markdown_it.tree import SyntaxTreeNode

# A rendered inline run is a list of pieces, (kind, text):
#   "lit"   prose, already escaped; its * _ ~ ` are literal characters
#   "open"  / "close": a formatting character of ours (* _ ~) that Slack must pair
#   "raw"   final mrkdwn Slack must see unchanged (inline code, links, citations)
Piece = tuple[str, str]

MARKERS = "*_~`"
# Slack mrkdwn has no escape character. A literal marker that Slack could pair is swapped for
# a look-alike that it never formats; one that cannot pair (2 * 3, snake_case) stays as is.
LOOKALIKE = str.maketrans({"*": "∗", "_": "ˍ", "~": "∼", "`": "ˋ"})
# Slack only formats at word boundaries; a zero-width space is the usual way to give a marker
# inside a word (foo**bar**baz, CJK text without spaces) the boundary it needs.
ZWSP = "\u200b"


def entities(text: str) -> str:
    """`&`, `<`, `>` as entities: the only characters Slack parses for mentions and links."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# -- parsing ---------------------------------------------------------------------------------

SCHEME = re.compile(r"(?:^|[^\w.+-])(https?)$", re.IGNORECASE)
URL = re.compile(r"https?://[^\s/?#<>]+[^\s<>]*", re.IGNORECASE)
CITATION = re.compile(r"\[(\d{1,3})\]")
URL_TRAILING = "?!.,:;*_~'\""


def _trim_url(url: str) -> str:
    """GFM's extended autolink rule: trailing punctuation and unbalanced `)` are prose, so
    "(see https://x/Foo_(bar))." keeps `Foo_(bar)` and leaves `).` outside."""
    while url and (url[-1] in URL_TRAILING or (url[-1] == ")" and url.count(")") > url.count("("))):
        url = url[:-1]
    return url


def _bare_url(state: StateInline, silent: bool) -> bool:
    """A bare http(s) URL becomes a link token, so nothing inside it (`*x*`, `_`) is read as
    emphasis. Like markdown-it's linkify rule it fires at the `:` and looks back for the
    scheme already taken as text; unlike it, it needs no linkify-it-py and no fuzzy matching
    (Slack links bare domains itself)."""
    pos = state.pos
    if state.linkLevel > 0 or not state.src.startswith("://", pos):
        return False
    scheme = SCHEME.search(state.pending)
    if scheme is None:
        return False
    start = pos - len(scheme.group(1))
    match = URL.match(state.src, start)
    if match is None:
        return False
    url = _trim_url(match.group(0))
    if len(url) <= len(scheme.group(1)) + 3:
        return False
    if not silent:
        state.pending = state.pending[: -len(scheme.group(1))]
        token = state.push("link_open", "a", 1)
        token.attrs = {"href": url}
        token.markup = "linkify"
        token = state.push("text", "", 0)
        token.content = url
        state.push("link_close", "a", -1).markup = "linkify"
    state.pos = start + len(url)
    return True


def _citation(state: StateInline, silent: bool) -> bool:
    """`[n]` that is not a link: a citation token, linked later when the answer cites n."""
    # Silent runs only measure link labels, where a `[` taken by a rule would read as a nested
    # link and undo `[see [1]](url)`: there the `[n]` is left as text.
    match = None if silent else CITATION.match(state.src, state.pos)
    if match is None:
        return False
    state.push("citation", "", 0).content = match.group(1)
    state.pos = match.end()
    return True


def _parser() -> MarkdownIt:
    # No raw HTML: `<!channel>` or `<b>` in an answer stays text, to be escaped.
    md = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
    md.inline.ruler.before("linkify", "bare_url", _bare_url)
    md.inline.ruler.after("link", "citation", _citation)  # `[1](url)` stays a link
    # Every scheme parses as a link (markdown-it would leave `[f](file:///x)` as text): the
    # renderer makes only http(s) clickable and shows the label alone for the rest.
    md.validateLink = lambda url: True  # type: ignore[method-assign]
    return md


PARSER = _parser()


def parse(markdown: str) -> tuple[SyntaxTreeNode, list[str]]:
    """The syntax tree and the source lines (where blank lines were is read from them)."""
    # Split as markdown-it counts lines (str.splitlines also splits at \f, \u2028…).
    return SyntaxTreeNode(PARSER.parse(markdown)), re.split(r"\r\n?|\n", markdown)


def normalize_link(url: str) -> str:
    """The URL as markdown-it stores a link's href (percent-encoded), to compare with one."""
    return PARSER.normalizeLink(url)


# -- Slack's pairing of formatting characters ------------------------------------------------


def _boundary(ch: str | None) -> bool:
    return ch is None or not ch.isalnum()


def finish(pieces: Iterable[Piece]) -> str:
    """Join pieces into mrkdwn: literal markers that Slack could pair are neutralised, and our
    own markers that touch a word get a zero-width space. Slack pairs within a line only."""
    chars: list[str] = []
    kinds: list[str] = []
    for kind, text in pieces:
        chars.extend(text)
        kinds.extend([kind] * len(text))
    out: list[str] = []
    start = 0
    for end in [*(i for i, c in enumerate(chars) if c == "\n"), len(chars)]:
        out.append(_finish_line(chars[start:end], kinds[start:end]))
        start = end + 1
    return "\n".join(out)


def _finish_line(chars: list[str], kinds: list[str]) -> str:
    n = len(chars)
    openers: dict[str, list[int]] = {m: [] for m in MARKERS}
    closers: dict[str, list[int]] = {m: [] for m in MARKERS}
    for i, (ch, kind) in enumerate(zip(chars, kinds, strict=True)):
        if ch not in MARKERS or kind == "raw":
            continue
        prev = chars[i - 1] if i else None
        nxt = chars[i + 1] if i + 1 < n else None
        if kind == "open" or (
            kind == "lit" and _boundary(prev) and nxt is not None and not nxt.isspace()
        ):
            openers[ch].append(i)
        if kind == "close" or (
            kind == "lit" and _boundary(nxt) and prev is not None and not prev.isspace()
        ):
            closers[ch].append(i)
    swap: set[int] = set()
    for m in MARKERS:  # a literal swaps if a partner could follow it, or precede it
        last_closer, first_opener = max(closers[m], default=-1), min(openers[m], default=n)
        swap.update(i for i in openers[m] if kinds[i] == "lit" and last_closer > i)
        swap.update(i for i in closers[m] if kinds[i] == "lit" and first_opener < i)
    out: list[str] = []
    for i, ch in enumerate(chars):
        if i in swap:
            ch = ch.translate(LOOKALIKE)
        if kinds[i] == "open" and i and chars[i - 1].isalnum():
            ch = ZWSP + ch
        elif kinds[i] == "close" and i + 1 < n and chars[i + 1].isalnum():
            ch += ZWSP
        out.append(ch)
    return "".join(out)


# -- tables ----------------------------------------------------------------------------------


def _width(text: str) -> int:
    # Wide (CJK) characters take two cells of a monospaced font; combining marks none.
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


def table_lines(rows: list[list[str]], aligns: list[str]) -> list[str]:
    """A table as aligned monospaced lines (Slack has no table syntax). Cells are plain text;
    widths are measured before escaping, since `&lt;` shows as one character."""
    columns = max(len(r) for r in rows)
    rows = [r + [""] * (columns - len(r)) for r in rows]
    aligns = aligns + ["left"] * (columns - len(aligns))
    widths = [max(1, *(_width(r[c]) for r in rows)) for c in range(columns)]

    def line(row: list[str]) -> str:
        cells = []
        for text, width, align in zip(row, widths, aligns, strict=True):
            pad = width - _width(text)
            if align == "right":
                text = " " * pad + text
            elif align == "center":
                text = " " * (pad // 2) + text + " " * (pad - pad // 2)
            else:
                text += " " * pad
            cells.append(entities(text))
        return "| " + " | ".join(cells) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return [line(rows[0]), rule, *(line(r) for r in rows[1:])]
