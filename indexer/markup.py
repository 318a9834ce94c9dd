"""Markdown building blocks every parser and the chunker agree on: code fences, ATX headings,
heading ids, and what a parsed document is.

They live apart from `parsing` so that the dialect and HTML modules can use them without an
import cycle.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass

import yaml

# YAML between `---` lines, or TOML between `+++` lines (Hugo).
FRONT_MATTER = re.compile(r"\A(---|\+\+\+)\s*\n(.*?)\n\1\s*(?:\n|\Z)", re.DOTALL)
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})(.*)$")
ATX = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
# `{#id}`, `{ #id .class }`, `{: #id key=value }`: attribute lists (Python-Markdown attr_list,
# Pandoc, Hugo, Docusaurus). Only a brace group made wholly of attributes counts, so a heading
# like "Use {placeholders}" keeps its braces.
ATTR_LIST = re.compile(r"\s*\{:?[ \t]*([^{}\n]*?)[ \t]*\}\s*$")
ATTR = re.compile(r"""#[^\s{}]+|\.[^\s{}]+|[\w-]+=(?:"[^"]*"|'[^']*'|[^\s{}]*)""")


@dataclass(frozen=True)
class Parsed:
    title: str
    markdown: str
    # Front matter `slug` / `id` (Docusaurus, Hugo): they, not the file name, make the page URL.
    slug: str | None = None
    doc_id: str | None = None


def split_front_matter(text: str) -> tuple[dict[str, object], str]:
    match = FRONT_MATTER.match(text)
    if not match:
        return {}, text
    meta: object
    try:
        if match.group(1) == "---":
            meta = yaml.safe_load(match.group(2))
        else:
            meta = tomllib.loads(match.group(2))
    except (yaml.YAMLError, tomllib.TOMLDecodeError):
        # Broken front matter is still front matter: drop it rather than index it.
        meta = None
    return (meta if isinstance(meta, dict) else {}), text[match.end() :]


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


def split_heading_id(title: str) -> tuple[str, str | None]:
    """A heading's text without its trailing attribute list, and the `#id` that list gives."""
    match = ATTR_LIST.search(title)
    if not match or not match.group(1):
        return title.strip(), None
    inner = match.group(1)
    if ATTR.sub("", inner).strip():
        return title.strip(), None
    attrs = ATTR.findall(inner)
    ids = [a[1:] for a in attrs if a.startswith("#")]
    return title[: match.start()].strip(), (ids[-1] if ids else None)


def first_heading(markdown: str) -> str | None:
    fences = Fences()
    for line in markdown.splitlines():
        if fences.feed(line) == "text" and (match := ATX.match(line)):
            return split_heading_id(match.group(2))[0]
    return None
