"""Create or upgrade the database schema with Alembic (the service does it at start-up by itself)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine

from models.db import lock_writes

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
# Tables in the database that are not ours: APScheduler creates and owns its job store's table.
UNMANAGED_TABLES = frozenset({"apscheduler_jobs"})
SCHEMA_LOCK = 0x776C_7363  # PostgreSQL advisory lock key of schema upgrades ("wlsc")


def include_name(name: str | None, type_: str, _parent_names: Mapping[str, str | None]) -> bool:
    """Alembic's filter for autogenerate and `compare_metadata`: leave the unmanaged tables alone."""
    return not (type_ == "table" and name in UNMANAGED_TABLES)


def alembic_config(url: str) -> Config:
    """Alembic configuration for `url`, without an ini file."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine) -> None:
    """Bring the database behind `engine` to the newest revision (a no-op when it is current).

    Several processes start at once in production (gunicorn's workers): each takes the database's
    schema lock first, so one migrates and the others then find the schema current.
    """
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if sqlite:
            # SQLite alters a table by copying it and dropping the old one, which foreign keys refuse
            # while other rows point at it: they are off during the migration (the pragma only works
            # outside a transaction) and checked before it commits.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()  # ends SQLAlchemy's autobegun transaction; pysqlite opened none
        try:
            with connection.begin():
                lock_writes(connection, SCHEMA_LOCK)
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(
                            f"the migration left rows whose foreign keys point nowhere: {broken[:5]}"
                        )
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()
