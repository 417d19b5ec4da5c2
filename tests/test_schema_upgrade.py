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


def test_an_older_database_is_backfilled_for_the_rollup_and_the_ticket_lookups(database_url):
    """A database at 0009 with a consultation and its ticket: after the upgrade the ticket carries the
    consultation's day and region, its worker is marked as having tickets (another is not), and every
    consultation waits for the rollup's first run."""
    from alembic import command

    from models.schema import alembic_config

    engine = make_engine(database_url)
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0009")
        for statement in (
            "INSERT INTO regions (id, code, name, level) VALUES (7, 'd1', '一区总工会', 'district')",
            "INSERT INTO workers (id, channel, openid, subscribed, first_contact_at)"
            " VALUES (1, 'oa', 'o1', true, '2026-03-01 02:00:00'), (2, 'oa', 'o2', true, '2026-03-01 02:00:00')",
            "INSERT INTO consultations (id, worker_id, channel, opened_on, region_id, opened_at, last_activity_at)"
            " VALUES (5, 1, 'oa', '2026-03-01', 7, '2026-03-01 02:00:00', '2026-03-01 02:00:00'),"
            " (6, 2, 'oa', '2026-03-02', NULL, '2026-03-02 02:00:00', '2026-03-02 02:00:00')",
            "INSERT INTO tickets (id, consultation_id, worker_id, status, urgent, created_at)"
            " VALUES (9, 5, 1, 'open', false, '2026-03-01 02:05:00')",
        ):
            connection.execute(text(statement))
    upgrade(engine)
    with engine.connect() as connection:
        ticket = connection.execute(
            text("SELECT opened_on, report_region_id FROM tickets WHERE id = 9")
        ).one()
        assert str(ticket.opened_on) == "2026-03-01" and ticket.report_region_id == 7
        flags = dict(connection.execute(text("SELECT id, has_tickets FROM workers ORDER BY id")).all())
        assert {k: bool(v) for k, v in flags.items()} == {1: True, 2: False}
        counted = connection.execute(text("SELECT DISTINCT counted FROM consultations")).scalars().all()
        assert [bool(v) for v in counted] == [False]
    engine.dispose()
