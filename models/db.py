"""The declarative base with a naming convention, engines and sessions; nothing here knows about Flask.

Time is stored in UTC. SQLite gets WAL, foreign keys and a busy timeout on every connection, so several
worker processes can share the embedded default.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime

from sqlalchemy import MetaData, create_engine, event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Model(DeclarativeBase):
    """Base of every table; Alembic's `target_metadata` is `Model.metadata`."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    """The current time in UTC, timezone-aware (the only clock models use by default)."""
    return datetime.now(UTC)


def normalize_url(url: str) -> str:
    """PostgreSQL URLs without a driver use psycopg 3 (the driver this project installs)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


SORT_THREADS = 2  # SQLite's helper threads for one large sort


def make_engine(url: str, **kwargs) -> Engine:
    """An engine for `url`; SQLite connections get WAL, foreign keys and a 5 s busy timeout."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": 5})
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # pragma: no cover - trivial
            cursor = dbapi_connection.cursor()
            _wal(cursor)
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=5000")
            # Large sorts (the reports' distinct counts and percentiles over a year) may use helper
            # threads; the small statements of a message never sort enough to start one.
            cursor.execute(f"PRAGMA threads={SORT_THREADS}")
            cursor.close()

    return engine


def _wal(cursor: sqlite3.Cursor, patience: float = 10.0) -> None:
    """Put the database in WAL mode, if it is not already. Switching needs the file to itself, and
    SQLite refuses at once ("database is locked", no busy wait) while another process is switching or
    migrating: several processes starting together on a new file (gunicorn's workers) try again."""
    deadline = time.monotonic() + patience
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def lock_writes(connection: Connection, key: int | None = None) -> None:
    """Serialise the rest of `connection`'s transaction with other writers; call it before it writes.

    SQLite: `BEGIN IMMEDIATE` (one writer at a time; the others queue up to the busy timeout), unless a
    transaction is already under way, which keeps its own lock (pysqlite begins lazily, before DML only,
    and leaves an explicit BEGIN alone). PostgreSQL locks rows where they are written; with `key` it also
    takes that advisory transaction lock, so transactions of one kind (migrations, a job) run one at a time.
    """
    if connection.dialect.name == "sqlite":
        if not connection.connection.dbapi_connection.in_transaction:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif connection.dialect.name == "postgresql" and key is not None:
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (views read them after committing)."""
    return sessionmaker(engine, expire_on_commit=False)


def as_utc(moment: datetime) -> datetime:
    """`moment` as an aware UTC datetime (SQLite hands stored values back without their zone)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
