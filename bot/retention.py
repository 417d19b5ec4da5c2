"""Retention of personal free text (PIPL): what is blanked, when, and what is never touched.

This module owns the blanking of message texts — the worker's own erasure (`bot.workers.erase`) and the
scheduled purge (`purge`, run by the scheduler's "purge-message-text" job every hour and by `flask
retention purge`) share `blank_messages` — and the `RETENTION_DAYS` rule: the free text of a
consultation closed more than that many days ago is blanked.

What the purge blanks, for each such consultation:

- its messages' `content`, `reply` and `media_id` (set to NULL, as an erasure does), and those of the
  same worker's messages that joined no consultation (events, menu browsing) from before the cutoff;
- its ticket's `question` (NULL); in the `case_card` the worker's answers become `CARD_PURGED` — the
  keys stay, so the console still shows which intake questions were answered (and a NULL answer still
  means skipped), and `home_region_id`, which routing and legal-aid review read, stays as it is;
- the text of the ticket's events that carry free text (`FREE_TEXT_EVENTS`: the question excerpt,
  replies, notes, transfer and referral reasons; NULL), the referral's `reason` (NULL), and the staff
  notices that quote the worker (`QUOTING_NOTICES`, reset to a fixed text: the column is NOT NULL).

Separately, the outbox rows that are finished — sent, or given up as failed — whose last attempt is
older than the cutoff lose their `content` ("": NOT NULL). A row still pending or being sent is never
touched: a reply not yet delivered must not be lost.

What it never changes: rows are not deleted; consultations keep every column the reports read (channel,
worker type, region, day, category, resolution, rating, times), tickets their timestamps, status,
outcome, category and lawyer; activity records, snapshots and workers are not touched. The reports'
figures are the same before and after a purge.

Waiting: a consultation is left alone (and looked at again next run) while its ticket is still open or
one of its lawyer's replies is held for the worker's next message (`bot.notify`: the reply's text leaves
only then). Such consultations are counted in `PurgeResult.waiting`.

It works in batches of `BATCH_SIZE` consultations, each one transaction of set-based UPDATEs, and stamps
`Consultation.purged_at`; the partial index on unpurged consultations makes a run that finds nothing
new cheap. `purge` commits after each batch: give it a session that has not written yet.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, bindparam, case, func, or_, select, text, update
from sqlalchemy.orm import Session

from bot.notify import HISTORY, PUSH_CHANNELS
from bot.sql import begin_write, dialect_name
from models import LAWYER, Consultation, Message, OutboxMessage, OutboxStatus
from models.ticket import CLOSED, Notice, Referral, Ticket, TicketEvent

BATCH_SIZE = 1000
# What a purged answer of the case card reads; the card's keys stay.
CARD_PURGED = "（已按保存期限清除）"
# Keys of the case card that are not the worker's words and are read by the service (routing, review).
CARD_KEPT_KEYS = ("home_region_id",)
# Ticket events whose text is free text (by the worker or a lawyer); the others hold codes or fixed text.
FREE_TEXT_EVENTS = ("created", "reply", "note", "transfer", "referral")
# Notices that quote the worker, and the fixed text they keep.
QUOTING_NOTICES = {
    "new_ticket": "新咨询待接单",
    "urgent": "【紧急】新咨询",
    "worker_wrote": "咨询人补充了消息",
}
# Outbox rows that are finished: their text has left (or never will); pending and sending rows stay.
FINISHED_OUTBOX = (OutboxStatus.SENT, OutboxStatus.FAILED)

_HAS_TEXT = or_(Message.content.is_not(None), Message.reply.is_not(None), Message.media_id.is_not(None))


@dataclass(frozen=True)
class PurgeResult:
    """How many rows one purge changed, and how many old consultations still wait (see the module)."""

    consultations: int = 0
    messages: int = 0
    tickets: int = 0
    ticket_events: int = 0
    notices: int = 0
    referrals: int = 0
    outbox: int = 0
    waiting: int = 0

    @property
    def total(self) -> int:
        """Every row changed (the waiting consultations are not changed, so not counted)."""
        return sum(getattr(self, f.name) for f in fields(self) if f.name != "waiting")

    def as_dict(self) -> dict[str, int]:
        """The counts by name."""
        return asdict(self)


def blank_messages(session: Session, *criteria: ColumnElement[bool], synchronize: bool = True) -> int:
    """Blank the text of the messages matching `criteria` — content, reply and media id become NULL —
    in one UPDATE; the rows stay (they are the transcript's shape and the counts). Returns how many
    rows matched. `synchronize`: also blank the matching messages already loaded in the session."""
    stmt = update(Message).where(*criteria).values(content=None, reply=None, media_id=None)
    stmt = stmt.execution_options(synchronize_session="auto" if synchronize else False)
    return session.execute(stmt).rowcount


def _waiting() -> list[ColumnElement[bool]]:
    """Conditions under which an old closed consultation is not purged yet (module docstring)."""
    open_ticket = select(Ticket.id).where(Ticket.consultation_id == Consultation.id, Ticket.status != CLOSED)
    held_reply = select(Message.id).where(
        Message.consultation_id == Consultation.id,
        Message.author == LAWYER,
        Message.delivery == HISTORY,
    )
    return [
        open_ticket.exists(),
        Consultation.channel.in_(PUSH_CHANNELS) & held_reply.exists(),
    ]


def purge(session: Session, *, now: datetime, keep_days: int, batch_size: int = BATCH_SIZE) -> PurgeResult:
    """Blank the personal free text of consultations closed more than `keep_days` days before `now`,
    and of finished outbox rows as old (module docstring); commits after each batch."""
    if keep_days < 1:
        raise ValueError("keep_days must be at least 1 (0 means: do not purge; do not call purge)")
    cutoff = now - timedelta(days=keep_days)
    due = [Consultation.purged_at.is_(None), Consultation.closed_at < cutoff]
    waiting = _waiting()
    totals = dict.fromkeys(
        ("consultations", "messages", "tickets", "ticket_events", "notices", "referrals"), 0
    )
    while True:
        begin_write(session)
        ids = list(
            session.scalars(
                select(Consultation.id)
                .where(*due, ~or_(*waiting))
                .order_by(Consultation.closed_at, Consultation.id)
                .limit(batch_size)
            )
        )
        if not ids:
            session.rollback()
            break
        done = _purge_batch(session, ids, now=now, cutoff=cutoff)
        session.commit()
        for name, n in done.items():
            totals[name] += n
        if done["consultations"] == 0:  # nothing could be stamped (a concurrent purge): stop, not spin
            break
    outbox = _purge_outbox(session, cutoff=cutoff, batch_size=batch_size)
    still = session.scalar(select(func.count()).select_from(Consultation).where(*due, or_(*waiting)))
    session.rollback()
    return PurgeResult(**totals, outbox=outbox, waiting=int(still or 0))


def _purge_batch(session: Session, ids: list[int], *, now: datetime, cutoff: datetime) -> dict[str, int]:
    """One batch of consultations, in the caller's transaction: set-based UPDATEs keyed on their ids."""
    in_batch = Consultation.id.in_(ids)
    tickets = list(session.scalars(select(Ticket.id).where(Ticket.consultation_id.in_(ids))))
    workers = select(Consultation.worker_id).where(in_batch).distinct().scalar_subquery()
    messages = blank_messages(session, Message.consultation_id.in_(ids), _HAS_TEXT, synchronize=False)
    # The same workers' messages that joined no consultation (events, the topic menu) and are as old.
    messages += blank_messages(
        session,
        Message.worker_id.in_(workers),
        Message.consultation_id.is_(None),
        Message.created_at < cutoff,
        _HAS_TEXT,
        synchronize=False,
    )
    events = notices = referrals = 0
    if tickets:
        _blank(session, Ticket, [Ticket.id.in_(tickets), Ticket.question.is_not(None)], question=None)
        _scrub_case_cards(session, tickets)
        events = _blank(
            session,
            TicketEvent,
            [
                TicketEvent.ticket_id.in_(tickets),
                TicketEvent.kind.in_(FREE_TEXT_EVENTS),
                TicketEvent.text.is_not(None),
            ],
            text=None,
        )
        notices = _blank(
            session,
            Notice,
            [Notice.ticket_id.in_(tickets), Notice.kind.in_(list(QUOTING_NOTICES))],
            text=case(QUOTING_NOTICES, value=Notice.kind, else_=Notice.text),
        )
        referrals = _blank(
            session, Referral, [Referral.ticket_id.in_(tickets), Referral.reason.is_not(None)], reason=None
        )
    stamped = _blank(session, Consultation, [in_batch, Consultation.purged_at.is_(None)], purged_at=now)
    return {
        "consultations": stamped,
        "messages": messages,
        "tickets": len(tickets),
        "ticket_events": events,
        "notices": notices,
        "referrals": referrals,
    }


def _blank(session: Session, model: type, where: list[ColumnElement[bool]], **values: Any) -> int:
    """UPDATE model SET values WHERE where, without loading rows; returns the rows changed."""
    stmt = update(model).where(*where).values(**values).execution_options(synchronize_session=False)
    return session.execute(stmt).rowcount


# The case card's answers replaced in the database itself: the keys kept, NULL answers (skipped) kept,
# the keys of CARD_KEPT_KEYS kept with their values. JSON functions differ between the two databases.
_CARD_SQL = {
    "sqlite": """
        UPDATE tickets SET case_card = (
            SELECT json_group_object(
                e.key, CASE WHEN e.key IN :kept OR e.type = 'null' THEN e.value ELSE :marker END
            )
            FROM json_each(tickets.case_card) AS e
        )
        WHERE id IN :ids AND json_type(case_card) = 'object'
    """,
    "postgresql": """
        UPDATE tickets SET case_card = COALESCE(
            (
                SELECT json_object_agg(
                    e.key,
                    CASE WHEN e.key IN :kept OR json_typeof(e.value) = 'null' THEN e.value
                    ELSE to_json(CAST(:marker AS text)) END
                )
                FROM json_each(tickets.case_card) AS e
            ),
            CAST('{}' AS json)
        )
        WHERE id IN :ids AND json_typeof(case_card) = 'object'
    """,
}


def _scrub_case_cards(session: Session, tickets: list[int]) -> None:
    name = dialect_name(session)
    if name not in _CARD_SQL:
        raise ValueError(f"the retention purge supports SQLite and PostgreSQL, not {name}")
    stmt = text(_CARD_SQL[name]).bindparams(
        bindparam("ids", expanding=True), bindparam("kept", expanding=True)
    )
    session.execute(stmt, {"ids": tickets, "kept": list(CARD_KEPT_KEYS), "marker": CARD_PURGED})


def _purge_outbox(session: Session, *, cutoff: datetime, batch_size: int) -> int:
    """Finished outbox rows whose last attempt is older than `cutoff` lose their text, a batch per
    transaction; pending and sending rows are never selected."""
    old = [
        OutboxMessage.status.in_([str(s) for s in FINISHED_OUTBOX]),
        OutboxMessage.next_attempt_at < cutoff,
        OutboxMessage.content != "",
    ]
    blanked = 0
    while True:
        begin_write(session)
        ids = list(session.scalars(select(OutboxMessage.id).where(*old).limit(batch_size)))
        if not ids:
            session.rollback()
            return blanked
        # The status is checked again in the UPDATE itself: only rows still finished are touched.
        done = _blank(session, OutboxMessage, [OutboxMessage.id.in_(ids), *old], content="")
        session.commit()
        blanked += done
        if done == 0:
            return blanked
