"""Several processes starting at once (gunicorn's workers) on an empty database: one migrates, the
others wait for it and find the schema current; none fails. On SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing

from sqlalchemy import inspect, text

from models import make_engine
from models.schema import upgrade


def _start(url: str, barrier) -> None:
    engine = make_engine(url)
    barrier.wait()
    upgrade(engine)
    engine.dispose()


def test_concurrent_start_ups_migrate_once(database_url):
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(4)
    processes = [context.Process(target=_start, args=(database_url, barrier)) for _ in range(4)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(120)
    assert [p.exitcode for p in processes] == [0, 0, 0, 0]
    engine = make_engine(database_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    assert "consultations" in inspect(engine).get_table_names()
    engine.dispose()
