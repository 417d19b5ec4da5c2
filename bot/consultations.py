"""Consultations as 人次: which one a message joins, when one opens and closes, how it was resolved.

A worker's first question opens a consultation; later messages join it until it closes — after
`idle_timeout` without a message, when the worker sends 结束, or (later) when a lawyer closes it.
The database allows one open consultation per worker (a partial unique index), so two copies of the
same first question processed at once still open one.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from bot.roster import CHINA, home_region
from bot.sql import add_or_get
from models import Consultation, Ticket, Worker, as_utc
from models.ticket import CLOSED

# A consultation waiting for a lawyer does not close for idleness: the lawyer's answer belongs to it.
_NO_OPEN_TICKET = (
    ~select(Ticket.id).where(Ticket.consultation_id == Consultation.id, Ticket.status != CLOSED).exists()
)


def _waiting_for_lawyer(session: Session, consultation: Consultation) -> bool:
    ticket = select(Ticket.id).where(Ticket.consultation_id == consultation.id, Ticket.status != CLOSED)
    return session.scalar(ticket.limit(1)) is not None


def _open_of(worker: Worker) -> Select[tuple[Consultation]]:
    return select(Consultation).where(Consultation.worker_id == worker.id, Consultation.closed_at.is_(None))


# A consultation keeps the most telling outcome it reached: once a lawyer was needed it stays so.
_RANK = {"clarified": 0, "answered": 1, "escalated": 2, "urgent": 3}


class Consultations:
    """Finds, opens, updates and closes consultations inside the caller's transaction."""

    def __init__(self, *, idle_timeout: timedelta = timedelta(minutes=30)):
        self.idle_timeout = idle_timeout

    @staticmethod
    def open_one(session: Session, worker: Worker) -> Consultation | None:
        """The worker's open consultation, if any."""
        return session.scalars(_open_of(worker)).one_or_none()

    def current(
        self, session: Session, worker: Worker, *, now: datetime, open_new: bool
    ) -> Consultation | None:
        """The consultation a message at `now` belongs to; a new one when `open_new` and none is open."""
        consultation = self.open_one(session, worker)
        idle = consultation is not None and now - as_utc(consultation.last_activity_at) > self.idle_timeout
        if idle and _waiting_for_lawyer(session, consultation):
            idle = False
        if idle:
            self._close(
                session,
                consultation,
                at=as_utc(consultation.last_activity_at) + self.idle_timeout,
                reason="idle",
            )
            consultation = None
        if consultation is None and open_new:
            consultation = self._open(session, worker, now=now)
        if consultation is not None:
            consultation.last_activity_at = now
        return consultation

    def _open(self, session: Session, worker: Worker, *, now: datetime) -> Consultation:
        consultation = Consultation(
            worker_id=worker.id,
            channel=worker.channel,
            worker_type=worker.worker_type,
            region_code=worker.region_code,
            station_code=worker.station_code,
            region_id=home_region(session, worker.station_code, worker.region_code),
            opened_at=now,
            opened_on=as_utc(now).astimezone(CHINA).date(),
            last_activity_at=now,
        )
        # Another copy may have opened it first: then this message joins that one.
        return add_or_get(session, consultation, _open_of(worker))

    @staticmethod
    def record(
        consultation: Consultation, *, resolution: str, now: datetime, category: str | None = None
    ) -> None:
        """Note how the bot handled a message of this consultation."""
        if consultation.resolution is None or _RANK[resolution] >= _RANK.get(consultation.resolution, -1):
            consultation.resolution = resolution
        if category:
            consultation.category = category
        consultation.last_activity_at = now

    def close_open(
        self, session: Session, worker: Worker, *, now: datetime, reason: str
    ) -> Consultation | None:
        """Close the worker's open consultation (if any) at `now`."""
        consultation = self.open_one(session, worker)
        if consultation is not None:
            self._close(session, consultation, at=now, reason=reason)
        return consultation

    def close_idle(self, session: Session, *, now: datetime) -> int:
        """Close every consultation idle for longer than the timeout (the scheduler's job)."""
        cutoff = now - self.idle_timeout
        stale = session.scalars(
            select(Consultation).where(
                Consultation.closed_at.is_(None), Consultation.last_activity_at < cutoff, _NO_OPEN_TICKET
            )
        ).all()
        for consultation in stale:
            self._close(
                session,
                consultation,
                at=as_utc(consultation.last_activity_at) + self.idle_timeout,
                reason="idle",
            )
        return len(stale)

    @staticmethod
    def _close(session: Session, consultation: Consultation, *, at: datetime, reason: str) -> None:
        consultation.closed_at = at
        consultation.close_reason = reason
        session.flush()
