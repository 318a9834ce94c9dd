"""Schema migrations and index state on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import inspect

from bot.wiring import make_indexer, open_backends
from config.db import current_revision, head_revision, make_engine, upgrade
from config.settings import Settings
from indexer.embedding import LocalEmbedder


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'nested' / 'dir' / 'docsbot.db'}"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_upgrade_creates_the_schema_once(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = sqlite_url(tmp_path) if backend == "sqlite" else request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    assert current_revision(engine) is None

    upgrade(engine)
    upgrade(engine)  # the second call is a no-op, not an error

    assert current_revision(engine) == head_revision(engine)
    tables = set(inspect(engine).get_table_names())
    assert {"indexed_documents", "indexed_chunks", "alembic_version"} <= tables
    assert {"conversations", "questions", "feedback"} <= tables
    engine.dispose()


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    engine = make_engine(sqlite_url(tmp_path))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


def test_incremental_index_state_on_postgresql(
    postgres_url: str,
    make_settings: Callable[..., Settings],
    docs_copy: Path,
    minilm: LocalEmbedder,
) -> None:
    backends = open_backends(
        make_settings(database_url=postgres_url, sources=[str(docs_copy)]), embedder=minilm
    )
    try:
        indexer = make_indexer(backends)
        first = indexer.run()
        page = docs_copy / "reference" / "bitset.md"
        page.write_text(page.read_text() + "\n\nA closing remark about bitsets.\n")
        second = indexer.run()
    finally:
        backends.close()
    assert first.docs_added == 7
    assert (second.docs_changed, second.chunks_embedded, second.chunks_deleted) == (1, 1, 1)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_migrations_build_exactly_the_orm_tables(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A column added to a table class without a migration (or the other way round) shows
    here, not on a user's database."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    import bot.queue.tables
    import indexer.tables
    from config.db import Base

    assert bot.queue.tables.Question.__table__.metadata is indexer.tables.Lease.__table__.metadata
    url = sqlite_url(tmp_path) if backend == "sqlite" else request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []
