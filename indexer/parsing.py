"""Turning source files (Markdown, reStructuredText, HTML, text) into clean Markdown.

Everything downstream (chunking, citations) speaks Markdown, so each format is converted once
here. The goal is text a person would read on the rendered page: front matter, template
includes and inline HTML are resolved or removed rather than indexed as noise. The pieces
live beside it: `includes` (files pulled into a page), `dialects` and `hugo` (MkDocs Material,
Docusaurus and Hugo syntax), `html` (rendered pages) and `markup` (what they all share).
"""

from __future__ import annotations

import html
import posixpath
import re
import textwrap

from indexer import dialects
from indexer.html import html_to_markdown
from indexer.includes import find_includes, resolve_includes
from indexer.markup import ATX, FENCE, Fences, Parsed, first_heading, split_front_matter

__all__ = [
    "ATX",
    "FENCE",
    "Fences",
    "Parsed",
    "clean_markdown",
    "find_includes",
    "first_heading",
    "html_to_markdown",
    "parse_by_suffix",
    "parse_markdown",
    "parse_rst",
    "parse_text",
    "resolve_includes",
    "slug_path",
    "split_front_matter",
]

TEMPLATE_NOISE = re.compile(r"\{\{\s*tab\s*\}\}")
INLINE_CODE = re.compile(r"(`+)[^`\n]+?\1")
IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
TAG = re.compile(r"</?([A-Za-z][A-Za-z0-9-]*)(?:\s[^<>]*)?/?>")

MARKDOWN_SUFFIXES = {".md", ".markdown", ".mdx"}
RST_SUFFIXES = {".rst"}
HTML_SUFFIXES = {".html", ".htm"}
TEXT_SUFFIXES = {".txt", ".text"}
SUPPORTED_SUFFIXES = MARKDOWN_SUFFIXES | RST_SUFFIXES | HTML_SUFFIXES | TEXT_SUFFIXES


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

    def blank() -> None:
        if out and out[-1]:
            out.append("")

    def flush() -> None:
        if prose:
            chunk = "\n".join(prose)
            chunk = IMAGE.sub("", chunk)
            chunk = TEMPLATE_NOISE.sub("", chunk)
            chunk = _clean_inline_html(dialects.reduce_inline(chunk))
            # Tags removed from indented lines leave blanks that would split paragraphs.
            chunk = re.sub(r"[ \t]+$", "", chunk, flags=re.MULTILINE)
            chunk = re.sub(r"\n{3,}", "\n\n", chunk).strip("\n")
            if chunk:
                blank()
                out.append(chunk)
            prose.clear()

    fences = Fences()
    for line in text.splitlines():
        state = fences.feed(line)
        if state == "text":
            prose.append(line)
            continue
        if state == "open":
            flush()
            blank()
        out.append(line)
        if state == "close":
            out.append("")
    flush()
    return "\n".join(out).strip() + "\n"


def parse_markdown(text: str, fallback_title: str) -> Parsed:
    meta, body = split_front_matter(text)
    body = clean_markdown(dialects.reduce(body))
    title = str(meta.get("title") or first_heading(body) or fallback_title).strip()
    slug, doc_id = meta.get("slug"), meta.get("id")
    return Parsed(
        title=title,
        markdown=body,
        slug=str(slug) if isinstance(slug, str | int) else None,
        doc_id=str(doc_id) if isinstance(doc_id, str | int) else None,
    )


def slug_path(rel_path: str, parsed: Parsed | None) -> str:
    """The page's path on its site: front matter `slug` (absolute, or relative to the file's
    folder), else its `id` in that folder, else the file's path without extension."""
    folder = posixpath.dirname(rel_path)
    if parsed is not None and parsed.slug and parsed.slug.strip("/ "):
        slug = parsed.slug.strip()
        return slug.strip("/") if slug.startswith("/") else posixpath.join(folder, slug.strip("/"))
    if parsed is not None and parsed.slug:  # `slug: /`: the site's home
        return ""
    if parsed is not None and parsed.doc_id:
        return posixpath.join(folder, parsed.doc_id.strip("/"))
    return posixpath.splitext(rel_path)[0]


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
