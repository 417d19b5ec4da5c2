"""The ticket timers: what happens when nobody claims an escalated consultation.

An open ticket nobody claimed for `TicketPolicy.backup_after` alerts the backup lawyers on duty for
its region (the primary ones again when no backup is on duty) and tells the worker, once, that the
question has not been forgotten; unclaimed for `admin_after`, it alerts the union admins of its region
and of every union above it. Urgent tickets use half the delays. While nobody at all is on duty the
backup timer waits (the worker was told when the next shift starts); the admin timer does not.

Each timer fires once per ticket, even when two scheduler processes run at the same moment: the ticket
is marked with a conditional UPDATE ... WHERE <timer column> IS NULL before anything is sent, and only
the transaction whose UPDATE changed the row sends. `run_ticket_timers` takes the write lock first
(`bot.sql.begin_write`), so give it a session that has not written yet; the caller commits.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from bot.roster import on_duty
from bot.sql import begin_write
from bot.tickets import Desk
from models import Consultation
from models.ticket import OPEN, Ticket

log = logging.getLogger("workerlaw.timers")


def run_ticket_timers(session: Session, desk: Desk, *, now: datetime) -> int:
    """Fire every timer that is due at `now`; returns how many fired (backup and admin alerts)."""
    begin_write(session)
    policy = desk.policy
    fired = 0
    for ticket in _due(session, Ticket.backup_notified_at, policy.backup_after, now):
        fired += _guarded(session, ticket, _backup, desk, now)
    for ticket in _due(session, Ticket.admin_notified_at, policy.admin_after, now):
        fired += _guarded(session, ticket, _admins, desk, now)
    return fired


def _due(
    session: Session, column: InstrumentedAttribute[datetime | None], after: timedelta, now: datetime
) -> list[Ticket]:
    """Open, unclaimed tickets whose timer `column` has not fired and is due (urgent: half the delay)."""
    return list(
        session.scalars(
            select(Ticket)
            .where(
                Ticket.status == OPEN,
                Ticket.lawyer_id.is_(None),
                column.is_(None),
                or_(
                    Ticket.created_at <= now - after,
                    and_(Ticket.urgent.is_(True), Ticket.created_at <= now - after / 2),
                ),
            )
            .order_by(Ticket.id)  # one order in every process: concurrent runs lock rows alike
        )
    )


def _guarded(session: Session, ticket: Ticket, timer, desk: Desk, now: datetime) -> int:
    """Run one ticket's timer in a savepoint: a ticket that fails is logged and retried next run."""
    try:
        with session.begin_nested():
            return timer(session, ticket, desk, now)
    except Exception:  # one broken ticket must not hold up every other ticket's alerts
        log.exception("timer of ticket %s failed", ticket.id)
        return 0


def _mark(session: Session, ticket: Ticket, now: datetime, **columns: datetime) -> bool:
    """Set the timer columns if they are still NULL and the ticket still waits; True for the one
    transaction that did it (a concurrent run waits for this one's row lock, then changes nothing)."""
    unset = [getattr(Ticket, name).is_(None) for name in columns]
    marked = session.execute(
        update(Ticket)
        .where(Ticket.id == ticket.id, Ticket.status == OPEN, Ticket.lawyer_id.is_(None), *unset)
        .values(**columns)
        .execution_options(synchronize_session=False)
    )
    if marked.rowcount != 1:
        return False
    for name, value in columns.items():
        setattr(ticket, name, value)
    return True


def _waited(ticket: Ticket, now: datetime) -> str:
    minutes = int((now - ticket.created_at).total_seconds() // 60)
    return f"{'【紧急】' if ticket.urgent else ''}咨询已等待{minutes}分钟无人接单：{(ticket.question or '')[:40]}"


def _backup(session: Session, ticket: Ticket, desk: Desk, now: datetime) -> int:
    """The backup lawyers on duty (else the primary ones again), and one interim message to the worker."""
    duty = on_duty(session, ticket.region_id, now) if ticket.region_id is not None else []
    lawyers = [d.lawyer_id for d in duty if d.role == "backup"] or [d.lawyer_id for d in duty]
    if not lawyers:
        return 0  # nobody on duty: wait for the next shift rather than alert nobody
    if not _mark(session, ticket, now, backup_notified_at=now, interim_sent_at=now):
        return 0
    desk.notify_staff(
        session, ticket, kind="unclaimed_backup", text=_waited(ticket, now), lawyer_ids=lawyers, now=now
    )
    consultation = session.get(Consultation, ticket.consultation_id)
    if consultation is not None:
        desk.tell_worker(
            session, consultation, desk.templates["interim"], key=f"interim-{ticket.id}", now=now
        )
    desk.record(session, ticket, "timer", None, "已提醒备班律师", now)
    return 1


def _admins(session: Session, ticket: Ticket, desk: Desk, now: datetime) -> int:
    """The union admins of the ticket's region and of every union above it."""
    if not _mark(session, ticket, now, admin_notified_at=now):
        return 0
    admins = desk.union_admins(session, ticket.region_id)
    desk.notify_staff(
        session, ticket, kind="unclaimed_admin", text=_waited(ticket, now), staff_ids=list(admins), now=now
    )
    desk.record(session, ticket, "timer", None, "已提醒工会管理员", now)
    return 1
