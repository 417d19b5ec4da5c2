"""The signed-in worker of the mini-program and the mobile page: sign-in (a `wx.login` code, the official
account's web OAuth, or a one-time code staff issue for testing), my consultations, transcripts, ratings.

A worker who also uses the official account is one person when WeChat gives the same unionid on both
channels: their history covers every worker row sharing that unionid.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from bot.retention import blank_messages
from bot.sql import add_or_get
from bot.wechat import WeChatGateway
from models import (
    MINI_PROGRAM,
    OFFICIAL_ACCOUNT,
    WEB,
    Consultation,
    LoginCode,
    Message,
    OutboxMessage,
    Worker,
)
from models.db import as_utc

# One-time codes: 8 characters from an alphabet without look-alikes (0/O, 1/I/L), easy to type on a phone.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8


def sign_in(session: Session, gateway: WeChatGateway, code: str, *, now: datetime) -> Worker:
    """The worker behind a `wx.login` code (created on first sign-in). The session_key is not kept."""
    return identified(session, MINI_PROGRAM, gateway.code_to_session(code), now=now)


def identified(session: Session, channel: str, identity: dict[str, str], *, now: datetime) -> Worker:
    """The worker row of (channel, openid), created on first sight; the unionid kept when WeChat gave one.

    The official account's web OAuth gives the same openid as its messages: a worker who signs in on
    the mobile page inside WeChat is the worker who wrote to the account.
    """
    openid = identity["openid"][:64]
    query = select(Worker).where(Worker.channel == channel, Worker.openid == openid)
    worker = session.scalars(query).one_or_none()
    if worker is None:
        worker = add_or_get(session, Worker(channel=channel, openid=openid, first_contact_at=now), query)
    if identity.get("unionid"):
        worker.unionid = identity["unionid"][:64]
    return worker


def sign_in_oauth(session: Session, identity: dict[str, str], *, now: datetime) -> Worker:
    """The official account's worker behind a web OAuth identity ({"openid", "unionid"?})."""
    return identified(session, OFFICIAL_ACCOUNT, identity, now=now)


def _digest(code: str) -> str:
    return hashlib.sha256(code.strip().upper().encode()).hexdigest()


def issue_code(session: Session, *, now: datetime, ttl: timedelta, label: str | None = None) -> str:
    """A new one-time sign-in code for the mobile page (only its hash is stored)."""
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    session.add(LoginCode(code_hash=_digest(code), label=label, created_at=now, expires_at=now + ttl))
    session.flush()
    return code


def redeem_code(session: Session, code: str, *, now: datetime) -> Worker | None:
    """Spend a one-time code: a new web worker, or None when the code is unknown, used or expired.

    The UPDATE ... WHERE used_at IS NULL decides who spends it, so two sign-ins racing on one code
    get one worker between them.
    """
    row = session.scalars(select(LoginCode).where(LoginCode.code_hash == _digest(code))).one_or_none()
    if row is None or row.used_at is not None or as_utc(row.expires_at) <= now:
        return None
    spent = session.execute(
        update(LoginCode)
        .where(LoginCode.id == row.id, LoginCode.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if spent.rowcount != 1:
        return None
    worker = Worker(channel=WEB, openid=f"web-{secrets.token_hex(12)}", first_contact_at=now)
    session.add(worker)
    session.flush()
    row.worker_id = worker.id
    return worker


def _mine(worker: Worker):
    """Consultations of this person on every channel (same unionid), or of this worker row alone."""
    if worker.unionid:
        ids = select(Worker.id).where(Worker.unionid == worker.unionid)
        return or_(Consultation.worker_id == worker.id, Consultation.worker_id.in_(ids))
    return Consultation.worker_id == worker.id


def history(session: Session, worker: Worker) -> list[Consultation]:
    """My consultations, newest first."""
    return list(
        session.scalars(
            select(Consultation)
            .where(_mine(worker))
            .order_by(Consultation.opened_at.desc(), Consultation.id.desc())
        )
    )


def consultation(session: Session, worker: Worker, consultation_id: int) -> Consultation | None:
    """One of my consultations, or None (someone else's is as good as missing)."""
    if not 1 <= consultation_id <= 2**31 - 1:  # no such id: and PostgreSQL's integer would overflow
        return None
    return session.scalars(
        select(Consultation).where(Consultation.id == consultation_id, _mine(worker))
    ).one_or_none()


def transcript(session: Session, item: Consultation) -> list[Message]:
    """Every message of a consultation, both sides, in order."""
    return list(
        session.scalars(
            select(Message).where(Message.consultation_id == item.id).order_by(Message.created_at, Message.id)
        )
    )


def rate(item: Consultation, stars: int, *, now: datetime) -> None:
    """Record the worker's 1–5 rating of the help (a later rating replaces an earlier one)."""
    item.rating = stars
    item.rated_at = now


def accept_privacy(worker: Worker, version: str, *, now: datetime) -> None:
    """Record that the worker accepted the privacy notice of `version`."""
    worker.privacy_version = version
    worker.privacy_accepted_at = now


def erase(session: Session, worker: Worker, *, now: datetime) -> int:
    """Erase a person's personal data and message texts (PIPL); returns how many messages were blanked.

    Every worker row of the person (same unionid) loses its openid, unionid and conversation; their
    messages lose text and media ids (`bot.retention.blank_messages`, as the retention purge blanks
    them); replies not yet sent are dropped. Consultation rows stay, so the anonymous counts (人次, by
    channel, type, region) in the union's reports do not change.
    """
    rows = [worker]
    if worker.unionid:
        rows = list(session.scalars(select(Worker).where(Worker.unionid == worker.unionid)))
    openids = [(w.channel, w.openid) for w in rows]
    blanked = blank_messages(session, Message.worker_id.in_([row.id for row in rows]))
    for row in rows:
        row.openid = f"erased:{row.id}"
        row.unionid = row.conversation = row.privacy_version = row.privacy_accepted_at = None
        row.station_code = None
        row.erased_at = now
    for channel, openid in openids:
        for queued in session.scalars(
            select(OutboxMessage).where(OutboxMessage.channel == channel, OutboxMessage.openid == openid)
        ):
            session.delete(queued)
    session.flush()
    return blanked
