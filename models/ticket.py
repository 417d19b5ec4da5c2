"""Escalated consultations as tickets for the on-duty lawyer: the ticket, its history of events (claims,
replies, transfers, notes, timers), notices to staff, and legal-aid referrals."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Date, ForeignKey, Index, String, Text, event, select, update
from sqlalchemy.orm import Mapped, mapped_column, object_session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from models.consultation import Consultation
from models.db import Model, utcnow
from models.wechat import UTCDateTime
from models.worker import Worker

OPEN, CLAIMED, CLOSED = "open", "claimed", "closed"
OUTCOMES = ("answered", "legal_aid", "arbitration", "other")


class Ticket(Model):
    """One escalated consultation waiting for, held by, or closed by a lawyer.

    `region_id` is the region it is routed to; `lawyer_id` the lawyer holding it (set by an atomic
    claim: UPDATE ... WHERE lawyer_id IS NULL). `case_card` holds the worker's answers to the bot's
    intake questions. The timer columns record, once each, the notices the scheduler sent.
    `opened_on` and `report_region_id` are its consultation's day and region (fixed when the
    consultation opened), copied here so the reports count tickets without reading consultations.
    """

    __tablename__ = "tickets"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'claimed', 'closed')", name="status"),
        Index("ix_tickets_queue", "status", "urgent", "created_at"),
        # Everything the reports' lawyer figures read, so a year of tickets is one index range.
        Index(
            "ix_tickets_report",
            "opened_on",
            "report_region_id",
            "outcome",
            "lawyer_id",
            "created_at",
            "first_response_at",
            "closed_at",
            "backup_notified_at",
            "admin_notified_at",
            "urgent",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultations.id"), unique=True)
    worker_id: Mapped[int] = mapped_column(ForeignKey("workers.id"), index=True)
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=OPEN)
    urgent: Mapped[bool] = mapped_column(default=False)
    lawyer_id: Mapped[int | None] = mapped_column(ForeignKey("lawyers.id"), index=True)
    question: Mapped[str | None] = mapped_column(Text)
    case_card: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_worker_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(16))
    category: Mapped[str | None] = mapped_column(String(32))
    backup_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    admin_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    interim_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    opened_on: Mapped[date | None] = mapped_column(Date)
    report_region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"))


@event.listens_for(Ticket, "before_insert")
def _copy_consultation(_mapper: Any, connection: Any, target: Ticket) -> None:
    """Whoever makes the ticket, it counts where and when its consultation does, and its worker is
    marked as having tickets (in the database, and in the session's copy without making it dirty)."""
    connection.execute(
        update(Worker)
        .where(Worker.id == target.worker_id, Worker.has_tickets.is_(False))
        .values(has_tickets=True)
    )
    session = object_session(target)
    worker = session.identity_map.get(identity_key(Worker, target.worker_id)) if session else None
    if worker is not None:
        set_committed_value(worker, "has_tickets", True)
    if target.opened_on is None:
        row = connection.execute(
            select(Consultation.opened_on, Consultation.region_id).where(
                Consultation.id == target.consultation_id
            )
        ).one_or_none()
        if row is not None:
            target.opened_on, target.report_region_id = row


class TicketEvent(Model):
    """Something that happened to a ticket, by whom: created, claim, reply, transfer, note, close, timer."""

    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    text: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Notice(Model):
    """A notice to a lawyer or union admin, shown in the console (and sent by WeChat template message
    when they follow the official account)."""

    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"), index=True)
    lawyer_id: Mapped[int | None] = mapped_column(ForeignKey("lawyers.id"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    kind: Mapped[str] = mapped_column(String(24))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Referral(Model):
    """A legal-aid referral: reviewed by the district union of the case, and never given to a lawyer who
    serves the applicant's own township (`assigned_lawyer_id` is checked against that on assignment)."""

    __tablename__ = "referrals"
    __table_args__ = (CheckConstraint("status IN ('pending', 'approved', 'rejected')", name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), unique=True)
    district_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    reason: Mapped[str | None] = mapped_column(Text)
    referred_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    assigned_lawyer_id: Mapped[int | None] = mapped_column(ForeignKey("lawyers.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
