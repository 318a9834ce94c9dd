"""Reading documents out of their sources: local folders, http(s) pages or sitemaps, and git
repositories (a checkout read like a folder).

A bad file never stops a run: it is skipped with one log line and counted. A file or page that
exists but cannot be read right now is also noted as unreachable, and a source that cannot be
read at all raises SourceUnavailable: either way its indexed chunks stay.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import NoReturn
from urllib.parse import urljoin, urlparse

import httpx

from config.docsets import IMPLICIT
from config.logger import get_logger
from config.settings import SourceSpec
from indexer import parsing, sitemaps

log = get_logger(__name__)
SKIP_DIRS = {".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", "_build"}
MAX_SITEMAP_PAGES = 5000


class SourceUnavailable(RuntimeError):
    """The whole source could not be read (folder missing, site down): keep its index as is."""


@dataclass(frozen=True)
class Document:
    source_key: str
    path: str  # relative to the source root, POSIX separators; for URLs the page URL
    title: str
    markdown: str
    url: str  # public page, without a section anchor
    doc_set: str = IMPLICIT  # the doc set its source belongs to


def doc_set_of(spec: SourceSpec) -> str:
    return spec.doc_set or IMPLICIT


@dataclass
class LoadStats:
    skipped: list[tuple[str, str]] = field(default_factory=list)
    # Documents that exist but could not be read this time (a 503, a timeout): their chunks
    # must stay, unlike those of a page that is gone (404).
    unreachable: list[tuple[str, str]] = field(default_factory=list)

    def skip(self, path: str, reason: str) -> None:
        log.warning("skipping %s: %s", path, reason)
        self.skipped.append((path, reason))


def page_url(
    spec: SourceSpec, rel_path: str, root: Path, parsed: parsing.Parsed | None = None
) -> str:
    if spec.base_url:
        noext = str(PurePosixPath(rel_path).with_suffix(""))
        if "{" in spec.base_url:
            return spec.base_url.format(
                path=rel_path,
                path_noext=noext,
                stem=PurePosixPath(rel_path).stem,
                slug=parsing.slug_path(rel_path, parsed),
            )
        return spec.base_url.rstrip("/") + "/" + rel_path
    if web_url := spec.git_web_url(rel_path):
        return web_url
    return (root / rel_path).resolve().as_uri()


def _read_text(path: Path, rel: str, max_bytes: int, stats: LoadStats) -> str | None:
    """The file's text, or None for a real skip; OSError when it is there but unreadable."""
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):  # a FIFO named x.md would block the read forever
        stats.skip(rel, "not a regular file")
        return None
    if info.st_size > max_bytes:
        stats.skip(rel, f"too large ({info.st_size} bytes > DOCSBOT_MAX_FILE_BYTES={max_bytes})")
        return None
    raw = path.read_bytes()
    if b"\x00" in raw[:8192]:
        stats.skip(rel, "binary content")
        return None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        stats.skip(rel, f"not UTF-8 (byte {error.start})")
        return None
    if not text.strip():
        stats.skip(rel, "empty")
        return None
    return text


def _may_be_file(path: Path) -> bool:
    """A file, or something there that cannot be checked: reading it will say which."""
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return path.is_symlink()  # a dangling link is there, only unreadable
    except OSError:
        return True


def _walk_error(error: OSError) -> NoReturn:
    # A folder that cannot be listed would look like deleted pages: fail the whole source.
    raise SourceUnavailable(
        f"folder {error.filename} cannot be read ({error.strerror or error})"
    ) from error


def _list_files(root: Path) -> list[str]:
    try:
        if not root.is_dir():
            raise SourceUnavailable(f"folder {root} does not exist or is not a directory")
    except OSError as error:
        _walk_error(error)
    files: list[str] = []
    root_is_empty = False
    for dirpath, dirnames, filenames in os.walk(root, onerror=_walk_error):
        if dirpath == str(root):
            root_is_empty = not (dirnames or filenames)
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if Path(name).suffix.lower() in parsing.SUPPORTED_SUFFIXES:
                files.append(Path(dirpath, name).relative_to(root).as_posix())
    if root_is_empty:
        raise SourceUnavailable(f"folder {root} is empty")
    return files


def load_folder(
    spec: SourceSpec, max_bytes: int, stats: LoadStats, *, root: Path | None = None
) -> Iterator[Document]:
    """The documents under `root`, by default the folder `spec` names (a git source passes its
    checkout)."""
    root = root if root is not None else Path(spec.location).expanduser()
    files = _list_files(root)
    # Only files other pages include are kept in memory (read once, used by many pages); every
    # other file is read when its turn comes and dropped after: a large folder's text is never
    # all in memory at once. A skip is decided, and said, once.
    texts: dict[str, str] = {}
    failed: set[str] = set()
    unreadable: set[str] = set()

    def text_of(rel: str, *, keep: bool = False) -> str | None:
        if rel in texts:
            return texts[rel]
        if rel in failed:
            return None
        try:
            text = _read_text(root / rel, rel, max_bytes, stats)
        except OSError as error:
            # There but not readable now (permissions, a dangling link, I/O): unlike a
            # deleted file, its chunks stay.
            failed.add(rel)
            unreadable.add(rel)
            stats.unreachable.append((spec.key, rel))
            stats.skip(rel, f"unreadable ({error.strerror or error})")
            return None
        if text is None:
            failed.add(rel)
        elif keep:
            texts[rel] = text
        return text

    # Fragments pulled into other pages by `{{fragments/x.md}}` are partials, not pages:
    # their words are indexed where they appear, with the including page's link.
    included: set[str] = set()
    listed = set(files).__contains__
    for rel in files:
        if Path(rel).suffix.lower() in parsing.MARKDOWN_SUFFIXES:
            text = text_of(rel)
            if text:
                found = parsing.find_includes(text, at=rel, exists=listed)
                included.update(posixpath.normpath(inc) for inc in found)

    missing_parts: list[str] = []

    def load_include(name: str) -> str | None:
        target = posixpath.normpath(name)
        if target.startswith("..") or not _may_be_file(root / target):
            return None
        try:
            inside = (root / target).resolve().is_relative_to(root.resolve())
        except (OSError, RuntimeError):  # a symlink loop
            inside = False
        if not inside:
            return None  # a link out of the source: never read outside it
        text = text_of(target, keep=True)
        if target in unreadable:
            missing_parts.append(target)
        return text

    for rel in files:
        if rel in included:
            continue
        text = text_of(rel)
        if text is None:
            continue
        suffix = Path(rel).suffix
        if suffix.lower() in parsing.MARKDOWN_SUFFIXES:
            missing_parts.clear()
            text = parsing.resolve_includes(text, load_include, at=rel)
            if missing_parts:  # indexed without its fragment, the page would lose words
                stats.unreachable.append((spec.key, rel))
                stats.skip(rel, f"includes unreadable {missing_parts[0]}")
                continue
        try:
            parsed = parsing.parse_by_suffix(suffix, text, Path(rel).stem.replace("_", " "))
        except Exception as error:  # a parser bug on one file must not stop the run
            stats.skip(rel, f"could not be parsed ({type(error).__name__}: {error})")
            continue
        if not parsed.markdown.strip():
            stats.skip(rel, "no text after cleaning")
            continue
        url = page_url(spec, rel, root, parsed)
        yield Document(spec.key, rel, parsed.title, parsed.markdown, url, doc_set_of(spec))


def _fetch(client: httpx.Client, url: str) -> httpx.Response:
    response = client.get(url, follow_redirects=True)
    response.raise_for_status()
    return response


def _is_robots(url: str) -> bool:
    return urlparse(url).path.lower().endswith("/robots.txt")


def _is_site_root(url: str) -> bool:
    parts = urlparse(url)
    return parts.path in ("", "/") and not parts.query


def _sitemap_pages(client: httpx.Client, url: str, data: bytes, depth: int) -> list[str]:
    """The pages of a sitemap, following a sitemap index one level."""
    try:
        sitemap = sitemaps.parse(sitemaps.gunzip(data), url)
    except sitemaps.NotASitemap as error:
        raise SourceUnavailable(f"{url} is not a readable sitemap ({error})") from error
    if not sitemap.is_index:
        return sitemap.locations
    if depth >= 1:
        log.warning("sitemap index %s inside a sitemap index: not followed", url)
        return []
    pages: list[str] = []
    for child in sitemap.locations:
        if len(pages) >= MAX_SITEMAP_PAGES:
            break
        pages += _fetch_sitemap(client, child, depth + 1)
    return pages


def _fetch_sitemap(client: httpx.Client, url: str, depth: int = 0) -> list[str]:
    try:
        response = _fetch(client, url)
    except httpx.HTTPError as error:
        # A sitemap that cannot be read would look like deleted pages: fail the source.
        raise SourceUnavailable(f"sitemap {url}: {error}") from error
    return _sitemap_pages(client, url, response.content, depth)


def _robots_sitemaps(client: httpx.Client, site: str) -> list[str]:
    """The sitemaps a site's robots.txt names; none when it has no robots.txt."""
    robots = urljoin(site, "/robots.txt")
    try:
        text = _fetch(client, robots).text
    except httpx.HTTPError as error:
        log.info("%s: no sitemap from robots.txt (%s); indexing the page alone", site, error)
        return []
    return sitemaps.robots_sitemaps(text, robots)


def _page_urls(client: httpx.Client, url: str, first: httpx.Response) -> list[str]:
    """The pages a URL source names: a sitemap's, the sitemaps' of a robots.txt, or the page
    itself. A site root is read as its robots.txt when that names sitemaps."""
    maps: list[str] = []
    if _is_robots(url):
        maps = sitemaps.robots_sitemaps(first.text, url)
        if not maps:
            raise SourceUnavailable(f"{url} names no sitemap (no `Sitemap:` line)")
    elif sitemaps.looks_like_sitemap(url, first.content):
        pages = _sitemap_pages(client, url, first.content, 0)
        return list(dict.fromkeys(pages))[:MAX_SITEMAP_PAGES]
    elif _is_site_root(url):
        maps = _robots_sitemaps(client, url)
    if not maps:
        return [url]
    log.info("%s: reading the sitemaps %s", url, ", ".join(maps))
    pages = [page for sitemap in maps for page in _fetch_sitemap(client, sitemap)]
    return list(dict.fromkeys(pages))[:MAX_SITEMAP_PAGES]


def load_url(
    spec: SourceSpec, client: httpx.Client, max_bytes: int, stats: LoadStats
) -> Iterator[Document]:
    try:
        first = _fetch(client, spec.location)
    except httpx.HTTPError as error:
        raise SourceUnavailable(f"{spec.location}: {error}") from error
    for url in _page_urls(client, spec.location, first):
        try:
            response = first if url == spec.location else _fetch(client, url)
        except httpx.HTTPStatusError as error:
            if error.response.status_code not in (404, 410):
                stats.unreachable.append((spec.key, url))
            stats.skip(url, f"fetch failed ({error.response.status_code})")
            continue
        except httpx.HTTPError as error:
            stats.unreachable.append((spec.key, url))
            stats.skip(url, f"fetch failed ({type(error).__name__}: {error})")
            continue
        if len(response.content) > max_bytes:
            stats.skip(url, f"too large ({len(response.content)} bytes)")
            continue
        kind = response.headers.get("content-type", "")
        suffix = Path(urlparse(url).path).suffix.lower()
        if "html" in kind or suffix in parsing.HTML_SUFFIXES:
            suffix = ".html"
        elif "markdown" in kind:
            suffix = ".md"
        elif suffix not in parsing.SUPPORTED_SUFFIXES:
            suffix = ".txt" if kind.startswith("text/") else ""
        if not suffix or not response.text.strip():
            stats.skip(url, f"unsupported or empty content ({kind or 'no content type'})")
            continue
        try:
            parsed = parsing.parse_by_suffix(suffix, response.text, urlparse(url).path or url)
        except Exception as error:  # a parser bug on one page must not stop the run
            stats.skip(url, f"could not be parsed ({type(error).__name__}: {error})")
            continue
        yield Document(spec.key, url, parsed.title, parsed.markdown, url, doc_set_of(spec))


def load_source(
    spec: SourceSpec,
    max_bytes: int,
    stats: LoadStats,
    client: httpx.Client | None = None,
    *,
    git_cache_dir: Path | None = None,
) -> Iterator[Document]:
    """`git_cache_dir` (DOCSBOT_GIT_CACHE_DIR) is where a git source is cloned and pulled."""
    if spec.is_git:
        from indexer import gitsource  # it raises our SourceUnavailable: no import cycle

        if git_cache_dir is None:
            raise ValueError("a git source needs a cache folder (DOCSBOT_GIT_CACHE_DIR)")

        root = gitsource.checkout(spec, git_cache_dir)
        yield from load_folder(spec, max_bytes, stats, root=root)
    elif spec.is_url:
        own = client is None
        http = client or httpx.Client(timeout=30.0, headers={"User-Agent": "docsbot-indexer"})
        try:
            yield from load_url(spec, http, max_bytes, stats)
        finally:
            if own:
                http.close()
    else:
        yield from load_folder(spec, max_bytes, stats)
