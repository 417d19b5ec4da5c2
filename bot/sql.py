"""Dialect-aware statements the domain needs on SQLite and PostgreSQL alike.

What the ORM does not say portably: take the write lock at the start of a transaction (SQLite otherwise
starts deferred and fails with "database is locked" when a reader later tries to write), serialise one
kind of job across processes, and insert a row unless one with the same unique key exists (so
uniqueness is the database's job).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.db import Model, lock_writes

# What no text column takes: NUL (PostgreSQL refuses it) and lone surrogates (no driver can encode them).
UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")


def dialect_name(session: Session) -> str:
    """The name of the database behind `session` ("sqlite", "postgresql")."""
    return session.get_bind().dialect.name


def begin_write(session: Session) -> None:
    """Take the database's write lock now, as the first statement of the session's transaction
    (`models.db.lock_writes`): on SQLite concurrent writers queue here instead of failing half-way, and
    the reads that follow see the last committed state. PostgreSQL needs nothing here: rows are locked
    where they are written (or read `FOR UPDATE`)."""
    lock_writes(session.connection())


def exclusive(session: Session, key: int) -> None:
    """Serialise the rest of the session's transaction with every other one that calls this with `key`
    (`models.db.lock_writes`: a PostgreSQL advisory lock; SQLite's single writer lock). Call it before
    the transaction writes."""
    lock_writes(session.connection(), key)


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
