"""Files pulled into a page at build time, inlined before the page is parsed.

Four syntaxes: `{{fragments/x.md}}` (Milvus docs), pymdownx snippets `--8<-- "file"`,
FastAPI's `{* ../../docs_src/x.py hl[3] *}` and mdx_include's `{! ../docs_src/x.py !}`.
Without them a tutorial page indexes the path of its example instead of the example.

Paths are tried against the including file's folder and each folder above it up to the source
root (generators resolve them against a configured base folder this code cannot know); `load`
is only ever asked for normalised paths inside the root, and refuses what is not there. What
cannot be loaded is dropped by the dialect pass, never indexed as a path.
"""

from __future__ import annotations

import posixpath
import re
import textwrap
from collections.abc import Callable

from config.logger import get_logger
from indexer.markup import split_front_matter

log = get_logger(__name__)

FRAGMENT = re.compile(r"\{\{\s*(fragments/[^\s{}]+?)\s*\}\}")
SNIPPET = re.compile(
    r"""^(?P<space>[ \t]*)(?P<escape>;*)-+8<-+[ \t]+(?P<q>["'])(?P<path>.+?)(?P=q)[ \t]*$"""
)
SNIPPET_BLOCK = re.compile(r"^(?P<space>[ \t]*)(?P<escape>;*)-+8<-+[ \t]*$")
SNIPPET_SECTION = re.compile(r"-+8<-+[ \t]+\[[ \t]*(start|end)[ \t]*:[ \t]*([\w-]+)[ \t]*\]")
SNIPPET_FILE = re.compile(r"^(.*?)(?::(\d*)(?::(\d*))?|:([A-Za-z][\w-]*))?$")
CODE_INCLUDE = re.compile(r"^(?P<space>[ \t]*)\{\*\s*(?P<path>\S+)(?P<opts>.*?)\*\}[ \t]*$")
LINE_RANGES = re.compile(r"\bln\[([\d,:\s]+)\]")
MDX_INCLUDE = re.compile(r"\{!>?\s*(?P<path>[^\s!{}]+)\s*!\}")
MARKDOWN = (".md", ".markdown", ".mdx")
LANGUAGES = {
    ".py": "python",
    ".js": "javascript",
    ".ts": "typescript",
    ".json": "json",
    ".toml": "toml",
    ".yml": "yaml",
    ".yaml": "yaml",
    ".sh": "bash",
    ".html": "html",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
}

Loader = Callable[[str], str | None]


def candidates(at: str, path: str) -> list[str]:
    """Root-relative paths `path` may name, nearest folder first; none outside the root."""
    if "://" in path:  # a URL snippet: never fetched while indexing
        return []
    if path.startswith("/"):
        bases, path = [""], path.lstrip("/")
    else:
        folder = posixpath.dirname(at)
        bases = [folder]
        while folder:
            folder = posixpath.dirname(folder)
            bases.append(folder)
    found: list[str] = []
    for base in bases:
        target = posixpath.normpath(posixpath.join(base, path))
        if target not in found and target not in (".", "..") and not target.startswith("../"):
            found.append(target)
    return found


def _first(load: Loader, at: str, path: str) -> tuple[str, str] | None:
    for target in candidates(at, path):
        text = load(target)
        if text is not None:
            return target, text
    return None


def _snippet_lines(text: str, spec: str) -> list[str]:
    """`file:3:8` takes lines 3 to 8, `file:name` the `[start:name]` section; markers go."""
    match = SNIPPET_FILE.match(spec)
    lines = text.splitlines()
    if match and match.group(4):
        name, inside, picked = match.group(4), False, []
        for line in lines:
            marker = SNIPPET_SECTION.search(line)
            if marker and marker.group(2) == name:
                if marker.group(1) == "end" and inside:
                    break
                inside = marker.group(1) == "start"
            elif inside and not marker:
                picked.append(line)
        return textwrap.dedent("\n".join(picked)).splitlines()
    if match and (match.group(2) or match.group(3)):
        start = max(int(match.group(2) or 1) - 1, 0)
        end = int(match.group(3)) if match.group(3) else None
        lines = lines[start:end]
    return [line for line in lines if not SNIPPET_SECTION.search(line)]


def _code_lines(text: str, opts: str) -> list[str]:
    """The lines `ln[3:6,8]` names, or all of them."""
    lines = text.splitlines()
    ranges = LINE_RANGES.search(opts)
    if not ranges:
        return lines
    picked: list[str] = []
    for part in ranges.group(1).replace(" ", "").split(","):
        first, _, last = part.partition(":")
        if first.isdigit():
            stop = int(last) if last.isdigit() else int(first)
            picked += lines[int(first) - 1 : stop]
    return picked


def resolve_includes(
    text: str, load: Loader, depth: int = 0, max_depth: int = 4, *, at: str = ""
) -> str:
    """Inline every include of `text`, a file at root-relative path `at`; nested ones too."""

    def nested(body: str, target: str) -> str:
        if not target.lower().endswith(MARKDOWN):
            return body  # source code is shown as it is
        return resolve_includes(body, load, depth + 1, max_depth, at=target)

    def fragment(match: re.Match[str]) -> str:
        if depth >= max_depth:
            return ""
        body = load(match.group(1))
        if body is None:
            return ""
        _, body = split_front_matter(body)
        return resolve_includes(body, load, depth + 1, max_depth, at=at)

    text = FRAGMENT.sub(fragment, text)
    if depth >= max_depth or not ("8<" in text or "{*" in text or "{!" in text):
        return text
    out: list[str] = []
    in_block: str | None = None  # the indent of an open `--8<--` block
    for line in text.splitlines():
        block = SNIPPET_BLOCK.match(line)
        if block and not block.group("escape"):
            in_block = None if in_block is not None else block.group("space")
            continue
        if in_block is not None:
            if line.strip() and not line.strip().startswith(";"):
                out += _include_snippet(line.strip(), in_block, load, at, nested)
            continue
        if (snippet := SNIPPET.match(line)) and not snippet.group("escape"):
            out += _include_snippet(snippet.group("path"), snippet.group("space"), load, at, nested)
        elif snippet or block:  # `;--8<--`: the dialect pass shows it without its `;`
            out.append(line)
        elif code := CODE_INCLUDE.match(line):
            found = _first(load, at, code.group("path"))
            if found is not None:
                suffix = posixpath.splitext(found[0])[1].lower()
                body = [f"```{LANGUAGES.get(suffix, suffix.lstrip('.'))}"]
                body += [*_code_lines(found[1], code.group("opts")), "```"]
                out += [code.group("space") + row if row else row for row in body]
            else:
                out.append(line)  # left for the dialect pass to drop
        elif mdx := MDX_INCLUDE.search(line):
            found = _first(load, at, mdx.group("path"))
            if found is None:
                out.append(line)
            elif not MDX_INCLUDE.sub("", line).strip():  # alone on its line: keep its indent
                space = line[: len(line) - len(line.lstrip())]
                body = nested(found[1], found[0]).splitlines()
                out += [space + row if row else row for row in body]
            else:
                out.append(line[: mdx.start()] + nested(found[1], found[0]) + line[mdx.end() :])
        else:
            out.append(line)
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def _include_snippet(
    spec: str, space: str, load: Loader, at: str, nested: Callable[[str, str], str]
) -> list[str]:
    path = SNIPPET_FILE.match(spec)
    found = _first(load, at, path.group(1).strip() if path else spec)
    if found is None:
        log.debug("snippet %s in %s not found inside the source", spec, at)
        return []
    picked = "\n".join(_snippet_lines(found[1], spec))
    body = nested(picked, found[0]).splitlines()
    return [space + row if row else row for row in body]


def find_includes(
    text: str, at: str = "", exists: Callable[[str], bool] | None = None
) -> list[str]:
    """What `text` includes: fragment names, and with `exists` the snippet files it pulls in
    (root-relative), which are parts of pages rather than pages of their own."""
    found = FRAGMENT.findall(text)
    if exists is None or "8<" not in text:
        return found
    in_block = False
    for line in text.splitlines():
        block = SNIPPET_BLOCK.match(line)
        if block and not block.group("escape"):
            in_block = not in_block
            continue
        snippet = SNIPPET.match(line)
        spec = line.strip() if in_block else (snippet.group("path") if snippet else "")
        if not spec or spec.startswith(";") or (snippet and snippet.group("escape")):
            continue
        path = SNIPPET_FILE.match(spec)
        name = path.group(1).strip() if path else spec
        found += [target for target in candidates(at, name) if exists(target)][:1]
    return found
