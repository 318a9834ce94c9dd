"""Incremental indexing on real parts: Milvus Lite, SQLite, all-MiniLM-L6-v2, real docs."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.wiring import Backends, make_indexer, open_backends
from config.settings import Settings, SourceSpec
from indexer.embedding import LocalEmbedder
from indexer.store import IndexMismatch
from indexer.tables import IndexedChunk, IndexedDocument
from tests.conftest import Site, html_page, milvus_docs_source


@pytest.fixture
def backends(
    make_settings: Callable[..., Settings], docs_copy: Path, minilm: LocalEmbedder
) -> Iterator[Backends]:
    """Nothing indexed yet: for the tests of a first run."""
    opened = open_backends(make_settings(sources=[milvus_docs_source(docs_copy)]), embedder=minilm)
    yield opened
    opened.close()


@pytest.fixture
def indexed(
    indexed_data: Path,
    make_settings: Callable[..., Settings],
    docs_copy: Path,
    minilm: LocalEmbedder,
) -> Iterator[Backends]:
    """The docs already indexed once (a copy of the session's pristine index)."""
    opened = open_backends(make_settings(sources=[milvus_docs_source(docs_copy)]), embedder=minilm)
    opened.store.check_model()
    yield opened
    opened.close()


def milvus_ids(backends: Backends, path: str | None = None) -> set[str]:
    where = f'path == "{path}"' if path else 'id != ""'
    rows = backends.store.client.query(
        backends.store.collection, filter=where, output_fields=["id"]
    )
    return {row["id"] for row in rows}


def test_first_run_indexes_every_page_with_links_and_state(backends: Backends) -> None:
    report = make_indexer(backends).run()

    # 7 pages in the fixture; fragments/cpu_support.md is included by operational_faq.md and
    # so is not a page of its own.
    assert report.docs_seen == 7
    assert report.docs_added == 7
    assert report.chunks_embedded == backends.store.count() > 8
    rows = backends.store.client.query(
        backends.store.collection,
        filter='path == "faq/operational_faq.md"',
        output_fields=["title", "heading", "url", "text"],
    )
    assert {r["title"] for r in rows} == {"Operational FAQ"}
    windows = [r for r in rows if r["heading"] == "Can I install Milvus on Windows?"]
    assert windows and windows[0]["url"] == (
        "https://milvus.io/docs/operational_faq.md#can-i-install-milvus-on-windows"
    )
    # The fragment's words are indexed inside the page that includes it.
    assert any("SSE4.2" in r["text"] for r in rows)
    assert not milvus_ids(backends, "fragments/cpu_support.md")
    with backends.sessions() as session:
        assert session.scalar(select(func.count()).select_from(IndexedDocument)) == 7
        stored = session.scalar(select(func.count()).select_from(IndexedChunk))
    assert stored == backends.store.count()


def test_second_run_embeds_nothing(indexed: Backends) -> None:
    before = milvus_ids(indexed)

    report = make_indexer(indexed).run()

    assert (report.docs_seen, report.docs_added, report.docs_changed) == (7, 0, 0)
    assert (report.chunks_embedded, report.chunks_deleted) == (0, 0)
    assert milvus_ids(indexed) == before


def test_editing_one_section_reembeds_only_that_chunk(indexed: Backends, docs_copy: Path) -> None:
    backends = indexed
    indexer = make_indexer(backends)
    page = docs_copy / "faq" / "operational_faq.md"
    before = milvus_ids(backends, "faq/operational_faq.md")
    text = page.read_text()
    page.write_text(
        text.replace(
            "#### Can I install Milvus on Windows?",
            "#### Can I install Milvus on Windows?\n\nWindows users: see WSL2 notes below.",
        )
    )

    report = indexer.run()

    after = milvus_ids(backends, "faq/operational_faq.md")
    assert (report.docs_changed, report.docs_added) == (1, 0)
    assert report.chunks_embedded == 1 == report.chunks_deleted
    assert len(after - before) == 1 and len(before - after) == 1
    new_id = (after - before).pop()
    row = backends.store.client.get(
        backends.store.collection, ids=[new_id], output_fields=["text"]
    )[0]
    assert "WSL2" in row["text"]


def test_deleting_a_file_removes_its_chunks(indexed: Backends, docs_copy: Path) -> None:
    backends = indexed
    indexer = make_indexer(backends)
    assert milvus_ids(backends, "reference/bitset.md")
    (docs_copy / "reference" / "bitset.md").unlink()

    report = indexer.run()

    assert report.docs_removed == 1
    assert not milvus_ids(backends, "reference/bitset.md")
    assert report.chunks_deleted > 0
    with backends.sessions() as session:
        paths = set(session.scalars(select(IndexedDocument.path)))
    assert "reference/bitset.md" not in paths


def test_missing_source_keeps_its_chunks(indexed: Backends, docs_copy: Path) -> None:
    backends = indexed
    indexer = make_indexer(backends)
    before = milvus_ids(backends)
    moved = docs_copy.rename(docs_copy.with_name("elsewhere"))

    report = indexer.run()

    assert report.failed_sources and str(docs_copy) in report.failed_sources[0]
    assert report.docs_removed == 0 and report.chunks_deleted == 0
    assert milvus_ids(backends) == before
    moved.rename(docs_copy)


def test_bad_files_are_skipped_with_one_log_line_each(
    indexed: Backends, docs_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backends = indexed
    (docs_copy / "empty.md").write_text("   \n")
    (docs_copy / "latin1.md").write_bytes("# Caf\xe9\n".encode("latin-1"))
    (docs_copy / "binary.md").write_bytes(b"\x89PNG\x00\x00binary")
    (docs_copy / "huge.txt").write_text("x" * 3_000_000)
    (docs_copy / "image.png").write_bytes(b"\x89PNG")  # unsupported type: silently ignored

    with caplog.at_level(logging.WARNING, logger="docsbot.indexer.sources"):
        report = make_indexer(backends).run()

    assert report.files_skipped == 4
    assert report.docs_seen == 7
    skipped = [r.getMessage() for r in caplog.records]
    for name, reason in [
        ("empty.md", "empty"),
        ("latin1.md", "not UTF-8"),
        ("binary.md", "binary"),
        ("huge.txt", "too large"),
    ]:
        assert sum(name in m and reason in m for m in skipped) == 1, skipped


def test_index_built_with_another_model_is_refused(
    indexed: Backends, make_settings: Callable[..., Settings], tiny_models: dict[str, Path]
) -> None:
    indexed.close()
    other = make_settings(embedding_model=str(tiny_models["embedder"]))

    with pytest.raises(IndexMismatch, match=r"re-index|--rebuild") as raised:
        open_backends(other).store.check_model()
    assert "all-MiniLM-L6-v2" in str(raised.value)


def test_rebuild_starts_over(indexed: Backends) -> None:
    before = indexed.store.count()
    report = make_indexer(indexed).run(rebuild=True)
    assert report.docs_added == 7
    assert report.chunks_embedded == before == indexed.store.count()


def test_sources_can_be_narrowed_and_removed_sources_vanish(
    indexed: Backends, docs_copy: Path
) -> None:
    backends = indexed
    indexer = make_indexer(backends)
    only_faq = SourceSpec(location=str(docs_copy / "faq"))

    report = indexer.run([only_faq], confirm_deletions=True)  # all 7: over the guard

    # The old source is no longer configured: its pages go; the faq pages come back under
    # their new source with paths relative to it.
    assert report.docs_removed == 7
    assert {r for r in milvus_ids(backends, "product_faq.md")}
    assert not milvus_ids(backends, "faq/product_faq.md")


def test_web_pages_that_fail_for_now_keep_their_chunks_and_gone_ones_go(
    make_settings: Callable[..., Settings], minilm: LocalEmbedder, site: Site
) -> None:
    pages = {
        "/a": html_page("Alpha", "Install", "Alpha pages explain installing the server."),
        "/b": html_page("Beta", "Backup", "Beta pages explain taking backups nightly."),
        "/c": html_page("Gamma", "Upgrade", "Gamma pages explain rolling upgrades."),
    }
    for path, body in pages.items():
        site.pages[path] = (200, "text/html", body)
    urls = "".join(f"<url><loc>{site.url(p)}</loc></url>" for p in pages)
    site.pages["/sitemap.xml"] = (200, "application/xml", f"<urlset>{urls}</urlset>")
    settings = make_settings(sources=[site.url("/sitemap.xml")], index_delete_guard=0.5)
    backends = open_backends(settings, embedder=minilm)
    try:
        indexer = make_indexer(backends)
        assert indexer.run().docs_added == 3
        site.pages["/b"] = (503, "text/plain", "maintenance")  # down for now
        del site.pages["/c"]  # gone: 404

        report = indexer.run()

        assert report.docs_removed == 1
        assert milvus_ids(backends, site.url("/b")), "a page that is down for now keeps its chunks"
        assert not milvus_ids(backends, site.url("/c"))
    finally:
        backends.close()


# --- what a run may delete ----------------------------------------------------------------------


def test_a_misspelled_source_path_leaves_the_index_as_it_was(
    indexed: Backends, docs_copy: Path
) -> None:
    before = indexed.store.count()
    typo = SourceSpec(location=str(docs_copy.with_name("dcos")))  # no such folder

    report = make_indexer(indexed).run([typo])

    assert report.failed_sources and report.deletions_kept == 7
    assert report.docs_removed == 0 and report.chunks_deleted == 0
    assert indexed.store.count() == before


def another_folder(tmp_path: Path) -> SourceSpec:
    """A valid folder, but not the docs: what pointing DOCSBOT_SOURCES elsewhere looks like."""
    other = tmp_path / "other-docs"
    other.mkdir()
    (other / "page.md").write_text("# Another page\n\nSomething else entirely.\n")
    return SourceSpec(location=str(other))


def test_a_run_that_would_delete_most_documents_holds_until_confirmed(
    indexed: Backends, tmp_path: Path
) -> None:
    elsewhere = another_folder(tmp_path)
    before = indexed.store.count()
    indexer = make_indexer(indexed)

    report = indexer.run([elsewhere])

    assert report.deletions_held == 7 and report.docs_removed == 0
    assert indexed.store.count() == before + 1  # the new page added, nothing deleted
    confirmed = indexer.run([elsewhere], confirm_deletions=True)
    assert confirmed.docs_removed == 7
    assert milvus_ids(indexed, "faq/operational_faq.md") == set()


def test_a_held_run_is_recorded_as_held_with_the_command_that_confirms_it(
    indexed: Backends, tmp_path: Path
) -> None:
    from dataclasses import replace

    from indexer.jobs import IndexJobs, recent_runs

    settings = indexed.settings.model_copy(update={"sources": [another_folder(tmp_path)]})
    moved = replace(indexed, settings=settings)
    outcome = IndexJobs(make_indexer(moved), moved.sessions, lease_s=30).run("scheduled")
    assert outcome is not None and outcome.status == "held"
    [run] = recent_runs(moved.sessions, 1)
    assert run.status == "held" and "docsbot index --confirm-deletions" in run.errors[-1]
