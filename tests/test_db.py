"""Schema migrations and index state on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import inspect

from bot.services import make_indexer, open_core
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
    core = open_core(
        make_settings(database_url=postgres_url, sources=[str(docs_copy)]), embedder=minilm
    )
    try:
        indexer = make_indexer(core)
        first = indexer.run()
        page = docs_copy / "reference" / "bitset.md"
        page.write_text(page.read_text() + "\n\nA closing remark about bitsets.\n")
        second = indexer.run()
    finally:
        core.close()
    assert first.docs_added == 7
    assert (second.docs_changed, second.chunks_embedded, second.chunks_deleted) == (1, 1, 1)
