"""Throwaway databases for tests: a SQLite file under tmp_path, or a schema of its own in PostgreSQL.

`database_kinds()` lists what this run can use: SQLite always, PostgreSQL when TEST_DATABASE_URL is
set. A `ScratchDatabase` hands out a new engine per `sessionmaker()` call, so a test can play several
processes sharing one database; it creates the given tables and drops everything when closed.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Table, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from models.db import Model, make_engine, make_sessionmaker, normalize_url


def database_kinds() -> list[str]:
    """The backends every database test runs on in this environment."""
    return ["sqlite", "postgresql"] if os.environ.get("TEST_DATABASE_URL") else ["sqlite"]


class ScratchDatabase:
    """One empty database with `tables` created; engines made from it are disposed on `close()`."""

    def __init__(self, kind: str, tmp_path: Path, tables: Sequence[Table]) -> None:
        self.kind = kind
        self.tables = list(tables)
        self._engines: list[Engine] = []
        self.schema: str | None = None
        if kind == "sqlite":
            self.url = f"sqlite:///{tmp_path / 'scratch.db'}"
            self._connect_args: dict[str, object] = {"timeout": 5}
        else:
            self.url = os.environ["TEST_DATABASE_URL"]
            self.schema = f"t_{uuid.uuid4().hex[:12]}"
            self._connect_args = {"options": f"-c search_path={self.schema}"}
            self._admin(f'CREATE SCHEMA "{self.schema}"')
        Model.metadata.create_all(self.engine(), tables=self.tables)

    def engine(self) -> Engine:
        """A new engine (its own connection pool: what one process of the service has)."""
        engine = make_engine(self.url, connect_args=dict(self._connect_args))
        self._engines.append(engine)
        return engine

    def sessionmaker(self) -> sessionmaker[Session]:
        """Sessions on a new engine, as a separate process would have."""
        return make_sessionmaker(self.engine())

    def close(self) -> None:
        """Drop what was created and let every connection go."""
        if self._engines:
            Model.metadata.drop_all(self._engines[0], tables=self.tables)
        for engine in self._engines:
            engine.dispose()
        if self.schema is not None:
            self._admin(f'DROP SCHEMA "{self.schema}" CASCADE')

    def _admin(self, statement: str) -> None:
        """Run one statement outside the scratch schema."""
        admin = make_engine(self.url)
        try:
            with admin.begin() as conn:
                conn.execute(text(statement))
        finally:
            admin.dispose()


@contextmanager
def scratch_database(kind: str, tmp_path: Path, tables: Sequence[Table]) -> Iterator[ScratchDatabase]:
    """A `ScratchDatabase` for the duration of a test."""
    db = ScratchDatabase(kind, tmp_path, tables)
    try:
        yield db
    finally:
        db.close()


@contextmanager
def empty_database_url(kind: str, folder: Path) -> Iterator[str]:
    """The URL of an empty database for the whole service (its migrations create the schema): a SQLite
    file in `folder`, or a PostgreSQL schema of its own, dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'test.db'}"
        return
    base = normalize_url(os.environ["TEST_DATABASE_URL"])
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
