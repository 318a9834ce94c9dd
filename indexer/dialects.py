"""The Markdown dialects of documentation generators, reduced to the Markdown a reader sees.

MkDocs Material / pymdownx, Docusaurus MDX and Hugo wrap text in boxes and tabs whose markers
(`!!! note`, `//// tab | Python`, `:::tip`, `{{< note >}}`) would otherwise be indexed as
words, and split a tip into a chunk apart from the example it explains. Each container becomes
one paragraph led by its title (`**Tip:** ...`), a form the chunker recognises and keeps next
to its neighbours. Heading attribute lists become a plain `{#id}` the chunker turns into the
section anchor.
"""

from __future__ import annotations

import html
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass

from indexer import hugo
from indexer.markup import ATTR, ATTR_LIST, ATX, FENCE, Fences, split_heading_id

ADMONITION = re.compile(
    r"""^(?P<indent>[ \t]*)(?:!!!|\?\?\?\+?)[ \t]*(?P<kind>[\w-]+)(?:[ \t]+[\w-]+)*"""
    r"""(?:[ \t]+(?P<q>["'])(?P<title>.*?)(?P=q))?[ \t]*$"""
)
CONTENT_TAB = re.compile(
    r"""^(?P<indent>[ \t]*)===[!+]?[ \t]+(?P<q>["'])(?P<title>.*?)(?P=q)\s*$"""
)
MKDOCSTRINGS = re.compile(r"^(?P<indent>[ \t]*):::[ \t]+[\w.:-]+[ \t]*$")
BLOCK = re.compile(
    r"^(?P<indent>[ \t]*)(?P<mark>/{3,})[ \t]*(?P<kind>[\w-]+)(?:[ \t]*\|[ \t]*(?P<title>.*?))?\s*$"
)
DOCUSAURUS = re.compile(
    r"^(?P<indent>[ \t]*)(?P<mark>:{3,})(?P<kind>[A-Za-z][\w-]*)(?:\[(?P<btitle>[^\]\n]*)\])?"
    r"(?:\{(?P<attrs>[^}\n]*)\})?[ \t]*(?P<title>.*?)\s*$"
)
BLOCK_OPTION = re.compile(r"^[ \t]+[\w-]+:")
CLOSER = re.compile(r"^[ \t]*(/{3,}|:{3,})[ \t]*$")
ATTR_TITLE = re.compile(r"""title=(?:"([^"]*)"|'([^']*)')""")
PLAIN_BLOCKS = {"html", "caption", "define", "figure-caption", "table-caption"}
ESM = re.compile(
    r"^(?:import\s+(?:[\"']|\{|\*\s+as\b|type\s|[\w$]+\s*(?:,|\s+from\b))"
    r"|export\s+(?:default|const|let|var|function|class|async)\b|export\s*[{*])"
)
# An include still there after includes were resolved: its file is not in the source.
UNRESOLVED = re.compile(r"^[ \t]*(?:\{\*.*\*\}|-+8<-+(?:[ \t]+([\"']).*\1)?)[ \t]*$")
ESCAPED_SNIPPET = re.compile(r"^([ \t]*);(;*-+8<-+)")
MDX_INCLUDE = re.compile(r"\{!>?\s*[^\s!{}]+\s*!\}")
# After a link, image or code span only: `x_{i=1}` in math is not an attribute list.
INLINE_ATTRS = re.compile(r"(?<=[)\]`])\{:?[ \t]*([^{}\n]*?)[ \t]*\}")
# `[label]: url "title"` defines a reference link: never shown, only its URL's tokens.
LINK_DEFINITION = re.compile(
    r"""^ {0,3}\[(?!\^)[^\]]+\]:[ \t]+\S+(?:[ \t]+(?:"[^"]*"|'[^']*'|\([^)]*\)))?[ \t]*$"""
)
ICON = re.compile(r":(?:material|octicons|fontawesome|simple)-[\w-]+:")
TERMINAL_TAG = re.compile(r"</?(?:span|font)\b[^<>]*>")
MARKUP_LANGUAGES = {"html", "htm", "xhtml", "xml", "svg", "jsx", "tsx", "vue", "svelte"}
MARKUP_LANGUAGES |= {"markdown", "md", "mdx", "php", "erb", "jinja", "jinja2", "django", "astro"}


@dataclass(frozen=True)
class Opening:
    """A container's first line: how its body ends and how it is shown."""

    style: str  # 'note', 'tab', 'plain', 'code' or 'drop'
    title: str | None
    indent: str
    closer: str | None = None  # the line that ends it; None: it ends where indentation does
    hugo: str | None = None  # a Hugo shortcode's name: only a matching close ends it
    lang: str = ""


def _opening(line: str) -> Opening | None:
    if match := ADMONITION.match(line):
        title = match.group("title")
        title = match.group("kind").capitalize() if title is None else title
        return Opening("note", title, match.group("indent"))
    if match := CONTENT_TAB.match(line):
        return Opening("tab", match.group("title"), match.group("indent"))
    if match := MKDOCSTRINGS.match(line):
        return Opening("drop", None, match.group("indent"))
    if match := BLOCK.match(line):
        kind, title = match.group("kind").lower(), match.group("title")
        mark, indent = match.group("mark"), match.group("indent")
        if kind == "tab":
            return Opening("tab", title, indent, mark)
        if kind in PLAIN_BLOCKS or (kind == "admonition" and not title):
            return Opening("plain", None, indent, mark)
        return Opening("note", title or kind.capitalize(), indent, mark)
    if match := DOCUSAURUS.match(line):
        attrs = ATTR_TITLE.search(match.group("attrs") or "")
        title = match.group("btitle") or (attrs and (attrs.group(1) or attrs.group(2)))
        title = title or match.group("title") or match.group("kind").capitalize()
        return Opening("note", title, match.group("indent"), match.group("mark"))
    if shortcode := hugo.opening(line):
        style, name, title, lang = shortcode
        indent = line[: len(line) - len(line.lstrip())]
        return Opening(style, title, indent, hugo=name, lang=lang)
    return None


def _closes(opening: Opening, line: str) -> bool:
    if opening.hugo:
        return hugo.closes(opening.hugo, line)
    return line.strip() == opening.closer


def _delimited_body(lines: list[str], start: int, opening: Opening) -> tuple[list[str], int]:
    """The lines up to the matching closer (same marker, nesting counted), and where it ends."""
    key = (opening.closer, opening.hugo)
    fences = Fences()
    depth = 0
    for j in range(start, len(lines)):
        if fences.feed(lines[j]) != "text":
            continue
        if _closes(opening, lines[j]):
            if depth == 0:
                return lines[start:j], j + 1
            depth -= 1
        elif lines[j].lstrip().startswith(opening.closer or "{{") and (
            (inner := _opening(lines[j])) and (inner.closer, inner.hugo) == key
        ):
            depth += 1
    # No closer: an inline shortcode, or a stray marker. (pymdownx would run an unclosed
    # block to the end of the page; a page that forgot one is better left as it is.)
    return [], -1


def _indented_body(lines: list[str], start: int, indent: str) -> tuple[list[str], int]:
    """The lines indented four columns past the opening line, de-indented."""
    width = len(indent.expandtabs(4)) + 4
    body: list[str] = []
    j = start
    while j < len(lines):
        line = lines[j]
        lead = line[: len(line) - len(line.lstrip())]
        if line.strip() and len(lead.expandtabs(4)) < width:
            break
        body.append(lead.expandtabs(4)[width:] + line.lstrip() if line.strip() else "")
        j += 1
    while body and not body[-1]:
        body.pop()
        j -= 1
    return body, j


def _paragraphs(lines: list[str]) -> list[tuple[str, list[str]]]:
    """Blocks as (kind, lines): 'code' fences, 'table' rows and 'text' paragraphs."""
    blocks: list[tuple[str, list[str]]] = []
    fences = Fences()
    for line in lines:
        state = fences.feed(line)
        if state in ("code", "close"):
            blocks[-1][1].append(line)
            continue
        kind = "code" if state == "open" else "table" if line.lstrip().startswith("|") else "text"
        if not line.strip():
            blocks.append(("gap", []))
        elif blocks and blocks[-1][0] == kind and kind != "code":
            blocks[-1][1].append(line)
        else:
            blocks.append((kind, [line]))
    return [(kind, rows) for kind, rows in blocks if rows]


def _label(title: str | None) -> str | None:
    title = ICON.sub("", (title or "").replace("**", ""))
    title = re.sub(r"\s+", " ", title).strip().strip('"')
    if not title:
        return None
    return f"**{title}**" if title[-1] in ".:?!" else f"**{title}:**"


def _titled(opening: Opening, body: list[str]) -> list[str]:
    """A box's paragraphs as one block, led by its title: `**Tip:** text` for a note, the
    title on a line of its own for a tab or before code."""
    merged: list[tuple[str, list[str]]] = []
    for kind, rows in _paragraphs(body):
        if kind == "text" and merged and merged[-1][0] == "text":
            merged[-1][1].extend(rows)  # one paragraph: it stays one block
        else:
            merged.append((kind, list(rows)))
    rendered: list[str] = []
    for _, rows in merged:
        rendered += ["", *rows] if rendered else rows
    label = _label(opening.title)
    if not label or not rendered:
        return rendered
    if merged[0][0] != "text":
        return [label, "", *rendered]
    if opening.style == "note" and _runs_on(rendered[0]):
        return [f"{label} {rendered[0].lstrip()}", *rendered[1:]]
    return [label, *rendered]


def _render(opening: Opening, body: list[str]) -> list[str]:
    if opening.style == "drop":
        return []
    body = textwrap.dedent("\n".join(body)).strip("\n").splitlines()
    if body and (opening.style == "code" or opening.lang):  # `highlight`, a Docsy code tab
        body = [f"```{opening.lang}", *body, "```"]
    if opening.style == "code":
        rendered = body
    elif opening.style == "plain":
        rendered = expand(body)
    else:
        rendered = _titled(opening, expand(body))
    if not any(row.strip() for row in rendered):
        return []
    return ["", *(opening.indent + row if row else row for row in rendered), ""]


def _runs_on(line: str) -> bool:
    """Whether a title can lead this line: not a list item, heading, quote or inner title."""
    return not re.match(r"\s*(?:[-*+]\s|\d+[.)]\s|#|>|\*\*[^*\n]+[.:?!]\*\*)", line)


def expand(lines: list[str]) -> list[str]:
    """Admonitions, tabs, blocks and shortcodes replaced by their titled text, nested ones too."""
    out: list[str] = []
    fences = Fences()
    closed: set[str] | None = None  # the Hugo shortcodes closed somewhere, found once
    i = 0
    while i < len(lines):
        line = lines[i]
        opening = _opening(line) if fences.feed(line) == "text" else None
        if opening is not None and opening.hugo:
            closed = hugo.closed_names("\n".join(lines)) if closed is None else closed
            opening = opening if opening.hugo in closed else None
        if opening is None:
            out.append(line)
            i += 1
            continue
        if opening.closer is None and opening.hugo is None:
            body, end = _indented_body(lines, i + 1, opening.indent)
        else:
            body, end = _delimited_body(lines, i + 1, opening)
            while (
                opening.closer and opening.closer[0] == "/" and body and BLOCK_OPTION.match(body[0])
            ):
                body = body[1:]  # pymdownx block options (`    type: warning`), not text
        if end < 0:
            out.append(line)
            i += 1
            continue
        out += _render(opening, body)
        i = end
    return out


def _drop_esm(lines: list[str]) -> list[str]:
    """MDX `import` / `export` statements run to the next blank line; they are code, not text.
    A ```` ```mdx-code-block ```` fence is MDX Docusaurus renders, not code: it is unwrapped."""
    out: list[str] = []
    fences = Fences()
    skipping = False
    unwrapping: str | None = None  # the fence that opened an mdx-code-block
    for line in lines:
        if skipping:
            skipping = bool(line.strip())
            continue
        fence = FENCE.match(line)
        marker = fence.group(2) if fence and not fence.group(3).strip() else ""
        closes = marker[:1] == (unwrapping or "?")[0] and len(marker) >= len(unwrapping or "")
        if unwrapping and fences.opening is None and closes:
            unwrapping = None
            continue
        state = fences.feed(line)
        if state == "open" and fence and fence.group(3).strip() == "mdx-code-block":
            unwrapping, fences = fence.group(2), Fences()
            continue
        if state == "text" and ESM.match(line):
            skipping = True
            continue
        out.append(line)
    return out


def _code_block(block: list[str], final: bool) -> list[str]:
    """A fenced block without unresolved includes and terminal colour markup; [] if empty."""
    info = FENCE.match(block[0])
    lang = info.group(3).strip().lstrip("{.").split(" ")[0].lower() if info else ""
    body = []
    for row in block[1:-1] if len(block) > 1 else []:
        if UNRESOLVED.match(row):
            continue
        if final:  # `;--8<--` shows the marker itself (once: a second pass would drop it)
            row = ESCAPED_SNIPPET.sub(r"\1\2", row)
        if "{!" in row and MDX_INCLUDE.search(row):
            row = MDX_INCLUDE.sub("", row)
            if not row.strip():
                continue
        body.append(row)
    text = "\n".join(body)
    if lang not in MARKUP_LANGUAGES and re.search(r"<span\s[^<>]*style=|<font\b", text):
        text = html.unescape(TERMINAL_TAG.sub("", text))  # console output colours (Rich, termy)
    if not text.strip():
        return []
    return [block[0], *text.split("\n"), *block[-1:]]


def _drop_attrs(match: re.Match[str]) -> str:
    return match.group(0) if ATTR.sub("", match.group(1)).strip() else ""


def _text_line(line: str) -> str | None:
    """One line outside code, cleaned; None drops it."""
    if UNRESOLVED.match(line) or CLOSER.match(line) or LINK_DEFINITION.match(line):
        return None
    line = ESCAPED_SNIPPET.sub(r"\1\2", line)
    if heading := ATX.match(line):
        title, anchor = split_heading_id(heading.group(2))
        return f"{heading.group(1)} {title}" + (f" {{#{anchor}}}" if anchor else "")
    if "{" in line:
        line = MDX_INCLUDE.sub("", line)
        whole = ATTR_LIST.fullmatch(line)
        if whole and whole.group(1) and not ATTR.sub("", whole.group(1)).strip():
            return None  # `{: .class }` under a block styles it; no words
        line = INLINE_ATTRS.sub(_drop_attrs, line)
    return ICON.sub("", line) if ":" in line else line


def _clean(lines: list[str], text_line: Callable[[str], str | None], final: bool) -> list[str]:
    """Code blocks cleaned (see `_code_block`), every other line through `text_line`."""
    out: list[str] = []
    block: list[str] = []
    fences = Fences()
    for line in lines:
        state = fences.feed(line)
        if state != "text":
            block.append(line)
            if state == "close":
                out += _code_block(block, final)
                block = []
            continue
        cleaned = text_line(line)
        if cleaned is not None:
            out.append(cleaned)
    return out + block  # an unclosed fence runs to the end, as CommonMark has it


def _unresolved(line: str) -> str | None:
    return None if UNRESOLVED.match(line) else line


def reduce(markdown: str) -> str:
    """Dialect syntax out, plain Markdown in; inline syntax is left to `reduce_inline`."""
    # Includes that could not be resolved go before containers are rendered, so that a tab
    # whose only content was an include leaves no title behind.
    lines = _clean(_drop_esm(markdown.splitlines()), _unresolved, final=False)
    return "\n".join(_clean(expand(lines), _text_line, final=True)) + "\n"


MDX_COMMENT = re.compile(r"\{/\*.*?\*/\}", re.DOTALL)
TAB_ITEM = re.compile(r"<TabItem\b([^<>]*)>")
LABEL = re.compile(r"""\blabel=(?:"([^"]*)"|'([^']*)'|\{["']([^"']*)["']\})""")
TABS = re.compile(r"</TabItem\s*>|</?Tabs\b[^<>]*>")


def reduce_inline(prose: str) -> str:
    """Inline dialect syntax in prose (never in code): MDX comments and tabs, Hugo shortcodes."""
    if "{/*" in prose:
        prose = MDX_COMMENT.sub("", prose)
    if "<Tab" in prose or "</Tab" in prose:

        def tab(match: re.Match[str]) -> str:
            label = LABEL.search(match.group(1))
            text = label and next(g for g in label.groups() if g is not None)
            return f"\n\n{_label(text)}\n" if text else "\n\n"

        prose = TABS.sub("\n\n", TAB_ITEM.sub(tab, prose))
    return hugo.reduce_inline(prose) if "{{" in prose else prose
