"""The mini-program's signed-in worker: sign-in by `wx.login` code, my consultations, transcripts, ratings.

A worker who also uses the official account is one person when WeChat gives the same unionid on both
channels: their history covers every worker row sharing that unionid.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from bot.sql import add_or_get
from bot.wechat import WeChatGateway
from models import MINI_PROGRAM, Consultation, Message, OutboxMessage, Worker


def sign_in(session: Session, gateway: WeChatGateway, code: str, *, now: datetime) -> Worker:
    """The worker behind a `wx.login` code (created on first sign-in). The session_key is not kept."""
    identity = gateway.code_to_session(code)
    query = select(Worker).where(Worker.channel == MINI_PROGRAM, Worker.openid == identity["openid"][:64])
    worker = session.scalars(query).one_or_none()
    if worker is None:
        worker = add_or_get(
            session, Worker(channel=MINI_PROGRAM, openid=identity["openid"][:64], first_contact_at=now), query
        )
    if identity.get("unionid"):
        worker.unionid = identity["unionid"][:64]
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
    messages lose text and media ids; replies not yet sent are dropped. Consultation rows stay, so the
    anonymous counts (人次, by channel, type, region) in the union's reports do not change.
    """
    rows = [worker]
    if worker.unionid:
        rows = list(session.scalars(select(Worker).where(Worker.unionid == worker.unionid)))
    openids = [(w.channel, w.openid) for w in rows]
    blanked = 0
    for row in rows:
        for message in session.scalars(select(Message).where(Message.worker_id == row.id)):
            message.content = message.reply = message.media_id = None
            blanked += 1
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
