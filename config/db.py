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
from sqlalchemy.exc import ArgumentError, DatabaseError
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


class DatabaseUnavailable(UserError, RuntimeError):
    """The database could not be opened; the message says which and what to do."""


def make_engine(url: str, pool_size: int = 10, connect_timeout_s: int = 10) -> Engine:
    """`connect_timeout_s`: a PostgreSQL port that accepts but never answers must not hang a
    start for minutes."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as error:
        raise DatabaseUnavailable(
            f"DOCSBOT_DATABASE_URL is not a database URL ({error}); use e.g. "
            "sqlite:///./data/docsbot.db or postgresql+psycopg://user:pass@host:5432/docsbot"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            folder = Path(parsed.database).expanduser().parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                raise DatabaseUnavailable(
                    f"DOCSBOT_DATABASE_URL: a part of {folder} is a file, not a folder; choose "
                    "another path for the SQLite database"
                ) from None
            except PermissionError:
                raise DatabaseUnavailable(
                    f"DOCSBOT_DATABASE_URL: no permission to create {folder}"
                ) from None
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
        connect_args={"connect_timeout": connect_timeout_s},
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
    """What every entry point runs before touching tables; a database that cannot be reached
    or read is a DatabaseUnavailable naming the setting, not a driver traceback."""
    with explained(engine):
        _prepare(engine, auto_upgrade=auto_upgrade)


@contextmanager
def explained(engine: Engine) -> Iterator[None]:
    """Driver errors on opening the database, as one message naming the setting."""
    try:
        yield
    except DatabaseError as error:  # OperationalError included; sqlite3's "not a database"
        raise DatabaseUnavailable(_explain(engine, error)) from None


def _explain(engine: Engine, error: Exception) -> str:
    url = engine.url.render_as_string(hide_password=True)
    cause = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
    if engine.dialect.name == "sqlite":
        return (
            f"The SQLite database at {engine.url.database} could not be used ({cause}). Check "
            "that DOCSBOT_DATABASE_URL names a SQLite file this user can read and write."
        )
    return (
        f"The database at {url} did not answer ({cause}). Is PostgreSQL running and reachable "
        "from here, and are the host, port, user and password in DOCSBOT_DATABASE_URL right?"
    )


def _prepare(engine: Engine, *, auto_upgrade: bool) -> None:
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
