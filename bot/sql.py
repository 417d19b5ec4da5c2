"""Dialect-aware statements the domain needs on SQLite and PostgreSQL alike.

What the ORM does not say portably: take the write lock at the start of a transaction (SQLite otherwise
starts deferred and fails with "database is locked" when a reader later tries to write), serialise one
kind of job across processes, and insert a row unless one with the same unique key exists (so
uniqueness is the database's job).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.db import Model

# What no text column takes: NUL (PostgreSQL refuses it) and lone surrogates (no driver can encode them).
UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")


def dialect_name(session: Session) -> str:
    """The name of the database behind `session` ("sqlite", "postgresql")."""
    return session.get_bind().dialect.name


def begin_write(session: Session) -> None:
    """Take the database's write lock now, as the first statement of the session's transaction.

    SQLite: `BEGIN IMMEDIATE`, so concurrent writers queue here (up to the busy timeout) instead of
    failing half-way; the reads that follow then see the last committed state. PostgreSQL needs
    nothing here: rows are locked where they are read (`SELECT ... FOR UPDATE`).
    """
    if dialect_name(session) == "sqlite":
        connection = session.connection()
        # pysqlite opens transactions lazily and only before DML; an explicit BEGIN is left alone.
        # A transaction already under way (the session wrote before) keeps its own lock.
        if not connection.connection.dbapi_connection.in_transaction:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def exclusive(session: Session, key: int) -> None:
    """Serialise the rest of the session's transaction with every other one that calls this with `key`:
    PostgreSQL an advisory transaction lock, SQLite its write lock (`begin_write`; one writer at a time
    there anyway). Call it before the transaction writes."""
    if dialect_name(session) == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    else:
        begin_write(session)


def insert_or_ignore(session: Session, model: type[Model], *, key: str, values: dict[str, Any]) -> None:
    """`INSERT ... ON CONFLICT (key) DO NOTHING`: a no-op when a row with the same unique `key` exists.

    On PostgreSQL a concurrent uncommitted insert of the same key makes this wait for its outcome, so
    after it returns the row is there (committed by someone, or inserted by us).
    """
    name = dialect_name(session)
    if name == "postgresql":
        stmt = postgresql.insert(model).values(**values).on_conflict_do_nothing(index_elements=[key])
    elif name == "sqlite":
        stmt = sqlite.insert(model).values(**values).on_conflict_do_nothing(index_elements=[key])
    else:
        raise ValueError(f"insert_or_ignore supports SQLite and PostgreSQL, not {name}")
    session.execute(stmt)


def add_or_get(session: Session, row: Model, existing: Select[tuple[Any]]) -> Any:
    """Add `row` in a savepoint; if a unique constraint says another transaction already has it, return
    the row `existing` selects instead (the constraint, not a Python check, decides who was first)."""
    try:
        with session.begin_nested():
            session.add(row)
        return row
    except IntegrityError:
        return session.scalars(existing).one()
