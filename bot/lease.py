"""Leases in the database: of several processes that could do a piece of work, only one does.

`acquire` is atomic on SQLite and PostgreSQL alike: the lease row is inserted if missing (the primary
key decides who was first), then taken with one UPDATE ... WHERE holder = me OR expires_at < now, so
two processes never both hold an unexpired lease. The holder renews it by acquiring again before it
expires; a holder that died is replaced once its lease ran out.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, or_, update
from sqlalchemy.orm import Session, sessionmaker

from bot.sql import begin_write, insert_or_ignore
from models.scheduler import SchedulerLease


def acquire(
    session_factory: sessionmaker[Session], name: str, holder: str, now: datetime, ttl: timedelta
) -> bool:
    """Take or renew the lease `name` for `holder` until `now + ttl`; False while another holds it."""
    with session_factory() as session:
        begin_write(session)
        insert_or_ignore(
            session,
            SchedulerLease,
            key="name",
            values={"name": name, "holder": holder, "expires_at": now + ttl},
        )
        taken = session.execute(
            update(SchedulerLease)
            .where(
                SchedulerLease.name == name,
                or_(SchedulerLease.holder == holder, SchedulerLease.expires_at < now),
            )
            .values(holder=holder, expires_at=now + ttl)
            .execution_options(synchronize_session=False)
        )
        session.commit()
        return taken.rowcount == 1


def release(session_factory: sessionmaker[Session], name: str, holder: str) -> bool:
    """Give the lease up (when `holder` stops), so another process need not wait for it to expire."""
    with session_factory() as session:
        gone = session.execute(
            delete(SchedulerLease)
            .where(SchedulerLease.name == name, SchedulerLease.holder == holder)
            .execution_options(synchronize_session=False)
        )
        session.commit()
        return gone.rowcount == 1
