"""Sources: local folders (kinds, skips, page URLs) and http(s) pages / sitemaps on loopback."""

from __future__ import annotations

import contextlib
import gzip
import logging
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from config.settings import SourceSpec
from indexer import sitemaps
from indexer.sources import (
    Document,
    LoadStats,
    SourceUnavailable,
    load_folder,
    load_source,
    load_url,
    page_url,
)
from tests.conftest import Site, html_page

MAX_BYTES = 10_000

# --- local folders --------------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    files: dict[str, str | bytes] = {
        "index.md": "---\ntitle: Home\n---\nWelcome.\n\n{{fragments/note.md}}\n",
        "fragments/note.md": "---\ntitle: Note\n---\nShared note words.\n",
        "guide/setup.rst": "Setup Guide\n===========\n\nInstall it.\n",
        "release_notes.txt": "Version 2 is out.\n",
        "page.html": "<html><head><title>HTML Page</title></head><body><p>Hi</p></body></html>",
        "logo.png": b"\x89PNG\r\n\x1a\n\x00\x00",
        "data.json": '{"not": "a doc"}',
        ".hidden/secret.md": "# Secret\n\nhidden words\n",
        "node_modules/pkg/README.md": "# Package\n\nvendored words\n",
        "_build/html/index.html": "<title>Built</title><p>generated</p>",
        "bad/binary.md": b"# Bin\x00\x01\x02",
        "bad/latin1.md": "# Café\n".encode("latin-1"),
        "bad/blank.md": "  \n\n",
        "bad/huge.md": "# Huge\n\n" + "word " * (MAX_BYTES // 5),
        "bad/only-front-matter.md": "---\ntitle: Empty\n---\n",
    }
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def load(spec: SourceSpec, stats: LoadStats | None = None) -> list[Document]:
    return list(load_folder(spec, MAX_BYTES, stats or LoadStats()))


def test_folder_loads_supported_kinds_and_skips_the_rest(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stats = LoadStats()
    caplog.set_level(logging.WARNING, logger="docsbot.indexer.sources")

    docs = load(SourceSpec(location=str(folder)), stats)

    assert [(d.path, d.title) for d in docs] == [
        ("index.md", "Home"),
        ("page.html", "HTML Page"),
        ("release_notes.txt", "release notes"),  # file name as title, "_" as space
        ("guide/setup.rst", "Setup Guide"),
    ]
    assert {d.source_key for d in docs} == {str(folder.resolve())}
    by_path = {d.path: d for d in docs}
    # The fragment's words live in the page that includes it, not in a page of their own.
    assert "Shared note words." in by_path["index.md"].markdown
    assert "{{" not in by_path["index.md"].markdown
    assert by_path["guide/setup.rst"].markdown.startswith("# Setup Guide\n")
    assert by_path["release_notes.txt"].markdown == "Version 2 is out.\n"


def test_bad_files_are_skipped_with_one_log_line_each(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stats = LoadStats()
    caplog.set_level(logging.WARNING, logger="docsbot.indexer.sources")

    load(SourceSpec(location=str(folder)), stats)

    reasons = dict(stats.skipped)
    assert sorted(reasons) == [
        "bad/binary.md",
        "bad/blank.md",
        "bad/huge.md",
        "bad/latin1.md",
        "bad/only-front-matter.md",
    ]
    assert reasons["bad/binary.md"] == "binary content"
    assert reasons["bad/blank.md"] == "empty"
    assert reasons["bad/huge.md"].startswith("too large (")
    assert "DOCSBOT_MAX_FILE_BYTES=10000" in reasons["bad/huge.md"]
    assert reasons["bad/latin1.md"] == "not UTF-8 (byte 5)"
    assert reasons["bad/only-front-matter.md"] == "no text after cleaning"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 5
    for path, reason in stats.skipped:
        assert f"skipping {path}: {reason}" in warnings
    # Unsupported kinds and skipped folders are not "bad": they are silently not documents.
    assert not any(w for w in warnings if "png" in w or "json" in w or "secret" in w)


def test_page_url_appends_the_relative_path_to_base_url(folder: Path) -> None:
    spec = SourceSpec(location=str(folder), base_url="https://docs.example.com/v2/")

    urls = {d.path: d.url for d in load(spec)}

    assert urls["guide/setup.rst"] == "https://docs.example.com/v2/guide/setup.rst"
    assert urls["index.md"] == "https://docs.example.com/v2/index.md"


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("https://docs.example.com/{stem}.html", "https://docs.example.com/setup.html"),
        ("https://docs.example.com/{path_noext}/", "https://docs.example.com/guide/setup/"),
        (
            "https://git.example.com/blob/main/{path}",
            "https://git.example.com/blob/main/guide/setup.rst",
        ),
        ("https://docs.example.com", "https://docs.example.com/guide/setup.rst"),
    ],
)
def test_page_url_templates(folder: Path, base_url: str, expected: str) -> None:
    spec = SourceSpec(location=str(folder), base_url=base_url)

    assert page_url(spec, "guide/setup.rst", folder) == expected


def test_without_base_url_pages_link_to_the_file(folder: Path) -> None:
    docs = load(SourceSpec(location=str(folder)))

    urls = {d.path: d.url for d in docs}
    assert urls["guide/setup.rst"] == (folder / "guide" / "setup.rst").resolve().as_uri()
    assert urls["guide/setup.rst"].startswith("file:///")


def test_relative_folder_is_resolved_from_cwd(folder: Path, tmp_path: Path) -> None:
    # The autouse fixture chdirs into tmp_path, where `docs` lives.
    docs = load(SourceSpec(location="docs"))

    assert len(docs) == 4
    assert {d.source_key for d in docs} == {str(folder.resolve())}


def test_missing_folder_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailable, match="does not exist"):
        load(SourceSpec(location=str(tmp_path / "nowhere")))
    (tmp_path / "file.md").write_text("# not a folder\n")
    with pytest.raises(SourceUnavailable, match="not a directory"):
        load(SourceSpec(location=str(tmp_path / "file.md")))


def test_empty_folder_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()

    with pytest.raises(SourceUnavailable, match="is empty"):
        load(SourceSpec(location=str(tmp_path / "empty")))


# --- a failed read never deletes: unreadable files and folders -----------------------------


def test_file_there_but_unreadable_keeps_its_chunks(folder: Path) -> None:
    # Even root cannot read these: a link to itself (ELOOP) and a link to nothing (ENOENT).
    (folder / "guide" / "loop.md").symlink_to(folder / "guide" / "loop.md")
    (folder / "fragments" / "note.md").unlink()
    (folder / "fragments" / "note.md").symlink_to(folder / "moved-away.md")
    stats = LoadStats()
    spec = SourceSpec(location=str(folder))

    docs = load(spec, stats)

    # index.md indexed without its fragment would lose words: it keeps its chunks too.
    assert [d.path for d in docs] == ["page.html", "release_notes.txt", "guide/setup.rst"]
    assert {key for key, _ in stats.unreachable} == {spec.key}
    assert {p for _, p in stats.unreachable} == {"fragments/note.md", "guide/loop.md", "index.md"}
    reasons = dict(stats.skipped)
    assert reasons["guide/loop.md"] == "unreadable (Too many levels of symbolic links)"
    assert reasons["fragments/note.md"] == "unreadable (No such file or directory)"
    assert reasons["index.md"] == "includes unreadable fragments/note.md"
    assert reasons["bad/binary.md"] == "binary content"  # real skips stay skips: they go


def test_fifo_is_skipped_without_blocking(folder: Path) -> None:
    fifo = folder / "pipe.md"
    os.mkfifo(fifo)
    done = threading.Event()

    def unblock() -> None:  # a loader that did read the FIFO fails this test, not hangs it
        while not done.wait(0.5):
            with contextlib.suppress(OSError):
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))

    threading.Thread(target=unblock, daemon=True).start()
    try:
        assert len(load(SourceSpec(location=str(folder)), stats := LoadStats())) == 4
    finally:
        done.set()
    assert ("pipe.md", "not a regular file") in stats.skipped and not stats.unreachable


@contextlib.contextmanager
def unprivileged() -> Iterator[Path]:
    """A folder, and `nobody`'s permissions inside the block: the tests may run as root, whom
    mode 000 does not stop."""
    base = Path(tempfile.mkdtemp())
    base.chmod(0o755)
    as_root = os.geteuid() == 0
    if as_root:
        os.chown(base, 65534, 65534)
        os.setegid(65534)
        os.seteuid(65534)
    try:
        yield base
    finally:
        if as_root:
            os.seteuid(0)
            os.setegid(0)
        base.chmod(0o755)
        for dirpath, dirnames, filenames in os.walk(base):  # top-down: opened before entered
            for name in dirnames + filenames:
                Path(dirpath, name).chmod(0o755)
        shutil.rmtree(base)


def test_unreadable_folder_fails_the_source_and_unreadable_file_is_kept() -> None:
    with unprivileged() as base:
        root = base / "docs"
        for rel in ("index.md", "private/plan.md", "locked.md"):
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(f"# {rel}\n\nWords.\n")
        spec = SourceSpec(location=str(root))
        (root / "locked.md").chmod(0)
        for path, mode, where in [
            (root / "private", 0, "private"),  # a subfolder
            (root, 0o311, "docs"),  # the root, entered but not listed
            (base, 0, "docs"),  # not even known to be there
        ]:
            path.chmod(mode)
            with pytest.raises(SourceUnavailable, match=f"folder .*{where} cannot be read"):
                load(spec)
            path.chmod(0o755)
        stats = LoadStats()

        assert [d.path for d in load(spec, stats)] == ["index.md", "private/plan.md"]
        assert stats.unreachable == [(spec.key, "locked.md")]
        assert stats.skipped == [("locked.md", "unreadable (Permission denied)")]


# --- http(s) sources on a real loopback server ----------------------------------------------


def load_site(spec: SourceSpec, stats: LoadStats) -> list[Document]:
    with httpx.Client(timeout=5.0) as client:
        return list(load_url(spec, client, MAX_BYTES, stats))


def test_single_html_page(site: Site) -> None:
    site.pages["/docs/intro"] = (
        200,
        "text/html; charset=utf-8",
        html_page("Intro | Docs", "Getting started", "Install with pip."),
    )
    spec = SourceSpec(location=site.url("/docs/intro"))

    docs = list(load_source(spec, MAX_BYTES, LoadStats()))

    assert len(docs) == 1
    (page,) = docs
    assert (page.source_key, page.path, page.url) == (spec.location,) * 3
    assert page.title == "Intro | Docs"
    assert page.markdown == "## Getting started\n\nInstall with pip.\n"
    assert site.requests == ["/docs/intro"]


def test_sitemap_loads_its_pages_and_skips_a_missing_one(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    site.pages["/sitemap.xml"] = (
        200,
        "application/xml",
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
        f"  <url><loc>{site.url('/docs/a.html')}</loc></url>\n"
        f"  <url><loc>{site.url('/docs/gone.html')}</loc></url>\n"
        "  <url><loc> /docs/b/ </loc><lastmod>2024-01-01</lastmod></url>\n"
        "</urlset>\n",
    )
    site.pages["/docs/a.html"] = (200, "text/html", html_page("Page A", "Alpha", "First."))
    site.pages["/docs/b/"] = (200, "text/html", html_page("Page B", "Beta", "Second."))
    stats = LoadStats()
    caplog.set_level(logging.WARNING, logger="docsbot.indexer.sources")

    docs = load_site(SourceSpec(location=site.url("/sitemap.xml")), stats)

    assert [(d.url, d.title) for d in docs] == [
        (site.url("/docs/a.html"), "Page A"),
        (site.url("/docs/b/"), "Page B"),  # relative <loc> resolved against the sitemap
    ]
    assert docs[1].markdown == "## Beta\n\nSecond.\n"
    assert {d.source_key for d in docs} == {site.url("/sitemap.xml")}
    assert [path for path, _ in stats.skipped] == [site.url("/docs/gone.html")]
    assert "404" in stats.skipped[0][1]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"skipping {site.url('/docs/gone.html')}: fetch failed")
    assert site.requests == ["/sitemap.xml", "/docs/a.html", "/docs/gone.html", "/docs/b/"]


def test_markdown_and_unsupported_pages(site: Site) -> None:
    site.pages["/sitemap.xml"] = (
        200,
        "text/xml",
        "<urlset>"
        + "".join(f"<url><loc>{site.url(p)}</loc></url>" for p in ("/raw.md", "/img", "/t"))
        + "</urlset>",
    )
    site.pages["/raw.md"] = (200, "text/plain", "---\ntitle: Raw\n---\n# Raw page\n\nBody.\n")
    site.pages["/img"] = (200, "image/png", "\x89PNG")
    site.pages["/t"] = (200, "text/markdown", "# Served as markdown\n\n<b>bold</b>\n")
    stats = LoadStats()

    docs = load_site(SourceSpec(location=site.url("/sitemap.xml")), stats)

    assert [(d.title, d.markdown) for d in docs] == [
        ("Raw", "# Raw page\n\nBody.\n"),
        ("Served as markdown", "# Served as markdown\n\nbold\n"),
    ]
    assert stats.skipped == [(site.url("/img"), "unsupported or empty content (image/png)")]


def test_page_over_the_size_limit_is_skipped(site: Site) -> None:
    site.pages["/sitemap.xml"] = (
        200,
        "application/xml",
        f"<urlset><url><loc>{site.url('/big')}</loc></url></urlset>",
    )
    site.pages["/big"] = (200, "text/html", "<p>" + "x" * MAX_BYTES + "</p>")
    stats = LoadStats()

    assert load_site(SourceSpec(location=site.url("/sitemap.xml")), stats) == []
    assert stats.skipped == [(site.url("/big"), f"too large ({MAX_BYTES + 7} bytes)")]


def test_missing_start_page_is_unavailable(site: Site) -> None:
    with pytest.raises(SourceUnavailable, match="404"):
        load_site(SourceSpec(location=site.url("/sitemap.xml")), LoadStats())


def test_server_down_is_unavailable() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago and now has no one
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    spec = SourceSpec(location=f"http://127.0.0.1:{port}/sitemap.xml")

    with pytest.raises(SourceUnavailable, match=f"127.0.0.1:{port}"):
        list(load_source(spec, MAX_BYTES, LoadStats()))


def test_sitemap_that_is_not_xml_is_unavailable(site: Site) -> None:
    site.pages["/sitemap.xml"] = (200, "text/html", "<html><body>Please log in<br></body>")

    with pytest.raises(SourceUnavailable):
        load_site(SourceSpec(location=site.url("/sitemap.xml")), LoadStats())


def test_sitemap_index_is_followed(site: Site) -> None:
    site.pages["/sitemap.xml"] = (
        200,
        "application/xml",
        '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<sitemap><loc>{site.url('/sitemap-docs.xml')}</loc></sitemap></sitemapindex>",
    )
    site.pages["/sitemap-docs.xml"] = (
        200,
        "text/xml",
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<url><loc>{site.url('/docs/a.html')}</loc></url></urlset>",
    )
    site.pages["/docs/a.html"] = (200, "text/html", html_page("Page A", "Alpha", "First."))

    docs = load_site(SourceSpec(location=site.url("/sitemap.xml")), LoadStats())

    assert [(d.url, d.title) for d in docs] == [(site.url("/docs/a.html"), "Page A")]


# --- front matter slugs ----------------------------------------------------------------------


def test_front_matter_slug_and_id_give_the_page_path(tmp_path: Path) -> None:
    root = tmp_path / "site"
    pages = {
        "docs/guides/tabs.mdx": "---\nid: tabs\nslug: /markdown-features/tabs\n---\nTabs.\n",
        "docs/guides/intro.md": "---\nslug: getting-started\n---\nIntro.\n",
        "docs/guides/01-setup.md": "---\nid: setup\n---\nSetup.\n",
        "docs/plain.md": "Plain.\n",
        "docs/rst.rst": "Text.\n",
    }
    for rel, text in pages.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    spec = SourceSpec(location=str(root / "docs"), base_url="https://d.example.com/{slug}")

    urls = {d.path: d.url for d in load(spec)}

    assert urls == {
        "guides/tabs.mdx": "https://d.example.com/markdown-features/tabs",
        "guides/intro.md": "https://d.example.com/guides/getting-started",
        "guides/01-setup.md": "https://d.example.com/guides/setup",
        "plain.md": "https://d.example.com/plain",
        "rst.rst": "https://d.example.com/rst",
    }


# --- sitemaps: only pages, gzip, robots.txt --------------------------------------------------

SITEMAP_NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'


def test_sitemap_media_and_alternate_entries_are_not_pages(site: Site) -> None:
    site.pages["/sitemap.xml"] = (
        200,
        "application/xml",
        f'<?xml version="1.0"?>\n<urlset {SITEMAP_NS}\n'
        ' xmlns:image="http://www.google.com/schemas/sitemap-image/1.1"\n'
        ' xmlns:video="http://www.google.com/schemas/sitemap-video/1.1"\n'
        ' xmlns:xhtml="http://www.w3.org/1999/xhtml">\n'
        f"<url><loc>{site.url('/a.html')}</loc>\n"
        f'  <xhtml:link rel="alternate" hreflang="de" href="{site.url("/de/a.html")}"/>\n'
        f"  <image:image><image:loc>{site.url('/img/a.png')}</image:loc></image:image>\n"
        "  <video:video><video:thumbnail_loc>/t.jpg</video:thumbnail_loc>\n"
        "    <video:content_loc>/v.mp4</video:content_loc>"
        "<video:player_loc>/p</video:player_loc></video:video>\n"
        "</url>\n</urlset>\n",
    )
    site.pages["/a.html"] = (200, "text/html", html_page("A", "Alpha", "First."))
    stats = LoadStats()

    docs = load_site(SourceSpec(location=site.url("/sitemap.xml")), stats)

    assert [d.url for d in docs] == [site.url("/a.html")]
    assert site.requests == ["/sitemap.xml", "/a.html"]  # nothing else downloaded or skipped
    assert stats.skipped == []


def test_a_sitemap_that_is_not_a_sitemap_is_unavailable(site: Site) -> None:
    site.pages["/feed.xml"] = (
        200,
        "application/xml",
        "<rss><channel><link>x</link></channel></rss>",
    )

    with pytest.raises(SourceUnavailable, match="not a readable sitemap"):
        load_site(SourceSpec(location=site.url("/feed.xml")), LoadStats())


def gzipped(text: str) -> bytes:
    return gzip.compress(text.encode())


def mock_site(pages: dict[str, tuple[str, bytes]], requests: list[str]) -> httpx.Client:
    """A site served from memory: what a real server sends for a `.gz` file (bytes as they
    are, no Content-Encoding), which the loopback fixture's text pages cannot."""

    def handle(request: httpx.Request) -> httpx.Response:
        requests.append(request.url.path)
        if request.url.path not in pages:
            return httpx.Response(404, text="not found")
        kind, body = pages[request.url.path]
        return httpx.Response(200, headers={"content-type": kind}, content=body)

    return httpx.Client(transport=httpx.MockTransport(handle), base_url="https://docs.example.com")


def test_gzipped_sitemaps_are_read() -> None:
    base = "https://docs.example.com"
    requests: list[str] = []
    pages = {
        "/sitemap.xml.gz": (
            "application/gzip",
            gzipped(
                f"<sitemapindex {SITEMAP_NS}><sitemap><loc>{base}/docs.xml.gz</loc></sitemap>"
                "</sitemapindex>"
            ),
        ),
        "/docs.xml.gz": (
            "application/x-gzip",
            gzipped(f"<urlset {SITEMAP_NS}><url><loc>{base}/a.html</loc></url></urlset>"),
        ),
        "/a.html": ("text/html", html_page("A", "Alpha", "First.").encode()),
    }

    with mock_site(pages, requests) as client:
        spec = SourceSpec(location=f"{base}/sitemap.xml.gz")
        docs = list(load_url(spec, client, MAX_BYTES, LoadStats()))

    assert [(d.url, d.title) for d in docs] == [(f"{base}/a.html", "A")]
    assert requests == ["/sitemap.xml.gz", "/docs.xml.gz", "/a.html"]


def test_a_gzip_bomb_is_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sitemaps, "MAX_SITEMAP_BYTES", 1000)
    requests: list[str] = []
    bomb = gzip.compress(b"<urlset>" + b" " * 100_000)  # 100 kB from a few hundred bytes
    with mock_site({"/sitemap.xml.gz": ("application/gzip", bomb)}, requests) as client:
        spec = SourceSpec(location="https://docs.example.com/sitemap.xml.gz")
        with pytest.raises(SourceUnavailable, match="uncompressed"):
            list(load_url(spec, client, MAX_BYTES * 1000, LoadStats()))


def robots_site(site: Site, robots: str | None) -> None:
    if robots is not None:
        site.pages["/robots.txt"] = (200, "text/plain", robots)
    site.pages["/"] = (200, "text/html", html_page("Home", "Welcome", "Hello."))
    site.pages["/sitemap-a.xml"] = (
        200,
        "application/xml",
        f"<urlset {SITEMAP_NS}><url><loc>/a.html</loc></url><url><loc>/</loc></url></urlset>",
    )
    site.pages["/sitemap-b.xml"] = (
        200,
        "application/xml",
        f"<urlset {SITEMAP_NS}><url><loc>/b.html</loc></url><url><loc>/a.html</loc></url></urlset>",
    )
    site.pages["/a.html"] = (200, "text/html", html_page("A", "Alpha", "First."))
    site.pages["/b.html"] = (200, "text/html", html_page("B", "Beta", "Second."))


ROBOTS = "User-agent: *\nDisallow: /private/\n\nSitemap: /sitemap-a.xml\nsitemap:/sitemap-b.xml\n"


def test_a_robots_txt_source_follows_its_sitemap_lines(site: Site) -> None:
    robots_site(site, ROBOTS)

    docs = load_site(SourceSpec(location=site.url("/robots.txt")), LoadStats())

    assert [d.title for d in docs] == ["A", "Home", "B"]  # each page once
    assert {d.source_key for d in docs} == {site.url("/robots.txt")}


def test_a_robots_txt_without_sitemaps_is_unavailable(site: Site) -> None:
    robots_site(site, "User-agent: *\nDisallow:\n")

    with pytest.raises(SourceUnavailable, match="names no sitemap"):
        load_site(SourceSpec(location=site.url("/robots.txt")), LoadStats())


def test_a_site_root_follows_its_robots_txt(site: Site) -> None:
    robots_site(site, ROBOTS)

    docs = load_site(SourceSpec(location=site.url("/")), LoadStats())

    assert [d.title for d in docs] == ["A", "Home", "B"]
    assert site.requests.count("/") == 1  # the root page fetched first is not fetched again


def test_a_site_root_without_robots_txt_is_one_page(site: Site) -> None:
    robots_site(site, None)

    docs = load_site(SourceSpec(location=site.url("/")), LoadStats())

    assert [d.title for d in docs] == ["Home"]
    assert site.requests == ["/", "/robots.txt"]
