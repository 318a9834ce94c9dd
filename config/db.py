"""The SQL side: declarative base, engine creation and schema upgrades (Alembic)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, Insert, create_engine, event, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from config.errors import UserError
from config.logger import get_logger

log = get_logger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"
UPGRADE_LOCK_KEY = 0x646F6373  # "docs": any constant other applications on the server don't use


class Base(DeclarativeBase):
    pass


class SchemaBehind(UserError, RuntimeError):
    """The database needs migrations and automatic upgrades are off."""


def make_engine(url: str, pool_size: int = 10) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets readers (a CLI `ask`) run while the indexer writes.
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    # pre_ping: a PostgreSQL restart or failover costs one retried checkout, not an error per
    # pooled connection; recycle: below the idle timeouts of the usual proxies (PgBouncer, RDS).
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=30,
        pool_recycle=1800,
    )


def insert_if_absent(session: Session, table: type[Base], key: list[str], **values: Any) -> Insert:
    """INSERT … ON CONFLICT (key) DO NOTHING, in the session's dialect: for rows several
    processes may create at once, where a savepoint would commit on its own under pysqlite's
    transaction handling."""
    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else pg_insert
    return insert(table).values(**values).on_conflict_do_nothing(index_elements=key)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def _alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection_engine"] = engine
    return cfg


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(_alembic_config(engine)).get_current_head()


def upgrade(engine: Engine) -> bool:
    """Bring the schema to the newest migration; False when it was already there.

    On PostgreSQL an advisory lock serialises processes that start together (two replicas
    after a deploy), so the second waits and then finds nothing left to do.
    """
    head = head_revision(engine)
    if current_revision(engine) == head:
        return False
    with _upgrade_lock(engine):
        if current_revision(engine) == head:
            return False
        log.info("upgrading database schema to %s", head)
        command.upgrade(_alembic_config(engine), "head")
        return True


@contextmanager
def _upgrade_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as lock:
        lock.execute(text("SELECT pg_advisory_lock(:key)"), {"key": UPGRADE_LOCK_KEY})
        try:
            yield
        finally:
            lock.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": UPGRADE_LOCK_KEY})
            lock.commit()


def prepare(engine: Engine, *, auto_upgrade: bool) -> None:
    """What every entry point runs before touching tables."""
    if auto_upgrade:
        upgrade(engine)
        return
    current, head = current_revision(engine), head_revision(engine)
    if current != head:
        raise SchemaBehind(
            f"The database schema is at revision {current or 'none'}, this docsbot needs "
            f"{head}. Run `docsbot db upgrade` (back the database up first), or set "
            "DOCSBOT_DB_AUTO_UPGRADE=true to upgrade on start."
        )
