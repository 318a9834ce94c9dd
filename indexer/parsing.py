"""Turning source files (Markdown, reStructuredText, HTML, text) into clean Markdown.

Everything downstream (chunking, citations) speaks Markdown, so each format is converted once
here. The goal is text a person would read on the rendered page: front matter, template
includes and inline HTML are resolved or removed rather than indexed as noise.
"""

from __future__ import annotations

import html
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass

import yaml
from bs4 import BeautifulSoup, Tag

FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*(?:\n|\Z)", re.DOTALL)
INCLUDE = re.compile(r"\{\{\s*(fragments/[^\s{}]+?)\s*\}\}")
TEMPLATE_NOISE = re.compile(r"\{\{\s*tab\s*\}\}")
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})(.*)$")
INLINE_CODE = re.compile(r"(`+)[^`\n]+?\1")
IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
TAG = re.compile(r"</?([A-Za-z][A-Za-z0-9-]*)(?:\s[^<>]*)?/?>")
ATX = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")

MARKDOWN_SUFFIXES = {".md", ".markdown", ".mdx"}
RST_SUFFIXES = {".rst"}
HTML_SUFFIXES = {".html", ".htm"}
TEXT_SUFFIXES = {".txt", ".text"}
SUPPORTED_SUFFIXES = MARKDOWN_SUFFIXES | RST_SUFFIXES | HTML_SUFFIXES | TEXT_SUFFIXES


class Fences:
    """Where fenced code starts and ends, as CommonMark has it: a fence closes only on the same
    character, at least as long, with nothing after it, so a ```` block can show ``` inside."""

    def __init__(self) -> None:
        self.opening: str | None = None

    def feed(self, line: str) -> str:
        """'open', 'close', 'code' (a line inside a fence) or 'text'."""
        match = FENCE.match(line)
        if self.opening is None:
            if match and not (match.group(2)[0] == "`" and "`" in match.group(3)):
                self.opening = match.group(2)
                return "open"
            return "text"
        closes = match and match.group(2)[0] == self.opening[0] and not match.group(3).strip()
        if closes and match and len(match.group(2)) >= len(self.opening):
            self.opening = None
            return "close"
        return "code"


@dataclass(frozen=True)
class Parsed:
    title: str
    markdown: str


def split_front_matter(text: str) -> tuple[dict[str, object], str]:
    match = FRONT_MATTER.match(text)
    if not match:
        return {}, text
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        # Broken front matter is still front matter: drop it rather than index YAML.
        meta = None
    return (meta if isinstance(meta, dict) else {}), text[match.end() :]


def find_includes(text: str) -> list[str]:
    return INCLUDE.findall(text)


def resolve_includes(
    text: str, load: Callable[[str], str | None], depth: int = 0, max_depth: int = 4
) -> str:
    """Inline `{{fragments/x.md}}` with the fragment's body (its own front matter dropped)."""

    def replace(match: re.Match[str]) -> str:
        if depth >= max_depth:
            return ""
        body = load(match.group(1))
        if body is None:
            return ""
        _, body = split_front_matter(body)
        return resolve_includes(body, load, depth + 1, max_depth)

    return INCLUDE.sub(replace, text)


def _clean_inline_html(segment: str) -> str:
    """Markdown files carry HTML (tab widgets, tables, notes); keep the words, lose the tags.

    Inline code is set aside first: `connect -h <host>` is text to keep, not a tag."""
    if "<" not in segment and "&" not in segment:
        return segment
    spans: list[str] = []

    def shield(match: re.Match[str]) -> str:
        spans.append(match.group(0))
        return f"\x00{len(spans) - 1}\x00"

    segment = INLINE_CODE.sub(shield, HTML_COMMENT.sub("", segment))

    def replace(match: re.Match[str]) -> str:
        name = match.group(1).lower()
        closing = match.group(0).startswith("</")
        if name in {"br", "p", "div", "tr", "table", "ul", "ol", "pre"}:
            return "\n"
        if name in {"td", "th"}:
            return "" if closing else " | "
        if name == "li":
            return "" if closing else "\n- "
        if re.fullmatch(r"h[1-6]", name):
            return "\n\n" if closing else "\n\n" + "#" * int(name[1]) + " "
        return ""

    segment = html.unescape(TAG.sub(replace, segment))
    return re.sub(r"\x00(\d+)\x00", lambda m: spans[int(m.group(1))], segment)


def clean_markdown(text: str) -> str:
    """Strip images, inline HTML and template noise outside code fences; keep code untouched."""
    out: list[str] = []
    prose: list[str] = []

    def flush() -> None:
        if prose:
            chunk = "\n".join(prose)
            chunk = IMAGE.sub("", chunk)
            chunk = TEMPLATE_NOISE.sub("", chunk)
            out.append(_clean_inline_html(chunk))
            prose.clear()

    fences = Fences()
    for line in text.splitlines():
        state = fences.feed(line)
        if state == "text":
            prose.append(line)
            continue
        if state == "open":
            flush()
        out.append(line)
    flush()
    result = "\n".join(out)
    return re.sub(r"\n{3,}", "\n\n", result).strip() + "\n"


def first_heading(markdown: str) -> str | None:
    fences = Fences()
    for line in markdown.splitlines():
        if fences.feed(line) == "text" and (match := ATX.match(line)):
            return match.group(2).strip()
    return None


def parse_markdown(text: str, fallback_title: str) -> Parsed:
    meta, body = split_front_matter(text)
    body = clean_markdown(body)
    title = str(meta.get("title") or first_heading(body) or fallback_title).strip()
    return Parsed(title=title, markdown=body)


RST_ADORNMENT = re.compile(r"^([=\-~^\"'`#*+:.])\1{2,}\s*$")
RST_DIRECTIVE = re.compile(r"^\.\.\s+(code-block|code|sourcecode)::\s*(\S*)")
RST_OPTION = re.compile(r"^\s+:[\w-]+:")
RST_ADMONITION = re.compile(
    r"^\.\.\s+(note|warning|tip|important|caution|danger|attention|hint|seealso)::\s*(.*)$"
)
RST_ROLE = re.compile(r":[a-z:]+:`([^`<]*?)(?:\s*<[^>]*>)?`")


def parse_rst(text: str, fallback_title: str) -> Parsed:
    """Enough reStructuredText for retrieval: section titles become headings, code stays code."""
    lines = text.splitlines()
    levels: list[str] = []
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        over = (
            RST_ADORNMENT.match(line) and i + 2 < len(lines) and RST_ADORNMENT.match(lines[i + 2])
        )
        if over and lines[i + 1].strip():
            char = "^" + line.strip()[0]  # overlined styles are distinct from underlined ones
            title_line, i = lines[i + 1].strip(), i + 3
        elif line.strip() and RST_ADORNMENT.match(nxt) and len(nxt.strip()) >= len(line.strip()):
            char, title_line, i = nxt.strip()[0], line.strip(), i + 2
        else:
            directive = RST_DIRECTIVE.match(line)
            if directive:
                block, i = [], i + 1
                while i < len(lines) and (not lines[i].strip() or lines[i].startswith((" ", "\t"))):
                    block.append(lines[i])
                    i += 1
                while block and RST_OPTION.match(block[0]):  # :linenos:, :caption: ...
                    block.pop(0)
                code = textwrap.dedent("\n".join(block)).strip("\n")
                out.append(f"```{directive.group(2)}\n{code}\n```")
                continue
            admonition = RST_ADMONITION.match(line)
            if admonition:
                out.append(f"**{admonition.group(1).capitalize()}:** {admonition.group(2)}")
            elif line.strip().endswith("::") and not line.strip().startswith(".."):
                out.append(line.rstrip()[:-1])
            elif not line.startswith(".. "):
                out.append(RST_ROLE.sub(r"`\1`", line).replace("``", "`"))
            i += 1
            continue
        if char not in levels:
            levels.append(char)
        out.append(f"\n{'#' * min(levels.index(char) + 1, 6)} {title_line}\n")
    markdown = re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip() + "\n"
    return Parsed(title=first_heading(markdown) or fallback_title, markdown=markdown)


def html_to_markdown(text: str, fallback_title: str) -> Parsed:
    soup = BeautifulSoup(text, "html.parser")
    title_tag = soup.find("title")
    for junk in soup(["script", "style", "nav", "header", "footer", "aside", "noscript", "form"]):
        junk.decompose()
    root = soup.find("main") or soup.find("article") or soup.body or soup
    assert isinstance(root, Tag)
    for pre in root.find_all("pre"):
        pre.replace_with(f"\n\n```\n{pre.get_text().strip(chr(10))}\n```\n\n")
    for table in root.find_all("table"):
        rows = []
        for tr in table.find_all("tr"):
            cells = [c.get_text(" ", strip=True) for c in tr.find_all(["td", "th"])]
            rows.append("| " + " | ".join(cells) + " |")
        table.replace_with("\n\n" + "\n".join(rows) + "\n\n")
    for level in range(1, 7):
        for heading in root.find_all(f"h{level}"):
            heading.replace_with(f"\n\n{'#' * level} {heading.get_text(' ', strip=True)}\n\n")
    for li in root.find_all("li"):
        li.replace_with(f"\n- {li.get_text(' ', strip=True)}")
    for br in root.find_all("br"):
        br.replace_with("\n")
    for block in root.find_all(["p", "div", "section", "blockquote"]):
        block.insert_before("\n\n")
        block.insert_after("\n\n")
    markdown = re.sub(r"[ \t]+\n", "\n", root.get_text())
    markdown = re.sub(r"\n{3,}", "\n\n", markdown).strip() + "\n"
    title = title_tag.get_text(strip=True) if title_tag else ""
    return Parsed(title=title or first_heading(markdown) or fallback_title, markdown=markdown)


def parse_text(text: str, fallback_title: str) -> Parsed:
    return Parsed(title=fallback_title, markdown=text.strip() + "\n")


def parse_by_suffix(suffix: str, text: str, fallback_title: str) -> Parsed:
    suffix = suffix.lower()
    if suffix in MARKDOWN_SUFFIXES:
        return parse_markdown(text, fallback_title)
    if suffix in RST_SUFFIXES:
        return parse_rst(text, fallback_title)
    if suffix in HTML_SUFFIXES:
        return html_to_markdown(text, fallback_title)
    return parse_text(text, fallback_title)
