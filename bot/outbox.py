"""The outbox: replies queued in the database and delivered to WeChat by whichever process runs the job.

`enqueue` records a message once per `dedup_key` (a unique constraint, so a webhook retried by WeChat
or two workers handling the same event queue one reply). `deliver_due` claims due rows in one short
transaction (`SELECT ... FOR UPDATE SKIP LOCKED`, then `UPDATE ... WHERE status = 'pending' AND
next_attempt_at <= now`; on SQLite under the write lock), so two senders never hold the same row; it
sends each and records the outcome at once, in its own transaction.

Guarantees: a claimed row is sent by its claimant only; a failure is retried with exponential backoff
and marked failed after `max_attempts`; a claim left by a process that died is taken over after
`claim_timeout` (attempts count claims, so a message that kills its sender cannot loop for ever).
Delivery is at least once: two cases can repeat a message — a sender dying between WeChat's "ok" and
the commit after it, and a request that timed out although WeChat carried it out. WeChat's
customer-service API has no idempotency key, so no sender can rule either out; a duplicate is chosen
over a lost reply (`tests/test_faults.py` pins both).
Messages to one user leave in the order they were queued: a row waits while an earlier one to the
same recipient is pending or being sent.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, exists, or_, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from bot.errors import WeChatError, WeChatRejected
from bot.sql import begin_write, insert_or_ignore
from bot.wechat import WeChatGateway
from models.db import utcnow
from models.wechat import OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8  # 30 s, 1, 2, 4, 8, 16, 30 min between them: about an hour, inside WeChat's 48 hours
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(minutes=30)
# Longer than a batch normally takes (each send is bounded by the gateway's HTTP timeout). A sender
# slower than this loses its remaining rows to another; it checks its claim before each send.
CLAIM_TIMEOUT = timedelta(minutes=10)


def enqueue(
    session: Session,
    *,
    channel: str,
    openid: str,
    text: str,
    dedup_key: str,
    now: datetime | None = None,
    kind: str = "text",
    not_before: datetime | None = None,
) -> OutboxMessage:
    """Queue a message, or return the one already queued under `dedup_key` (left unchanged).

    `kind` "text" sends `text` as a customer-service message; "subscribe" sends a one-time
    subscription message, `text` then being its JSON {"template_id", "data", "page"}; "template" an
    official-account template message (notices to staff), the same JSON with "url" instead of "page".
    `not_before`: the message is not sent before then (default: at once).

    Flushes but does not commit: the message is sent only if the caller's transaction commits.
    """
    now = now or utcnow()
    values = {
        "channel": channel,
        "openid": openid,
        "kind": kind,
        "content": text,
        "dedup_key": dedup_key,
        "status": OutboxStatus.PENDING,
        "attempts": 0,
        "next_attempt_at": not_before or now,
        "created_at": now,
    }
    insert_or_ignore(session, OutboxMessage, key="dedup_key", values=values)
    return session.scalars(select(OutboxMessage).where(OutboxMessage.dedup_key == dedup_key)).one()


def backoff(attempts: int, *, base: timedelta = BACKOFF_BASE, cap: timedelta = BACKOFF_CAP) -> timedelta:
    """The wait after the `attempts`-th failed attempt: base, 2 x base, 4 x base ... at most `cap`."""
    return min(base * 2 ** max(attempts - 1, 0), cap)


def deliver_due(
    session_factory: sessionmaker[Session],
    gateway: WeChatGateway | Mapping[str, WeChatGateway],
    *,
    now: datetime,
    worker_id: str,
    batch: int = 50,
    max_attempts: int = MAX_ATTEMPTS,
    claim_timeout: timedelta = CLAIM_TIMEOUT,
    backoff_base: timedelta = BACKOFF_BASE,
    backoff_cap: timedelta = BACKOFF_CAP,
) -> int:
    """Send up to `batch` due messages; returns how many were delivered.

    `gateway` is one gateway for every channel, or a mapping channel -> gateway (rows of other
    channels are left alone). `worker_id` must be unique per running process (host and pid).
    """
    gateways = gateway if isinstance(gateway, Mapping) else None
    channels = list(gateways) if gateways is not None else None
    delivered = handled = 0
    while handled < batch:
        claimed = _claim(
            session_factory,
            now=now,
            worker_id=worker_id,
            limit=batch - handled,
            channels=channels,
            max_attempts=max_attempts,
            stale_before=now - claim_timeout,
        )
        if not claimed:
            break
        handled += len(claimed)
        for message in claimed:
            target = gateways[message.channel] if gateways is not None else gateway
            delivered += _deliver(
                session_factory,
                target,
                message,
                now=now,
                worker_id=worker_id,
                max_attempts=max_attempts,
                wait=backoff(message.attempts, base=backoff_base, cap=backoff_cap),
            )
    return delivered


def _claim(
    session_factory: sessionmaker[Session],
    *,
    now: datetime,
    worker_id: str,
    limit: int,
    channels: list[str] | None,
    max_attempts: int,
    stale_before: datetime,
) -> list[OutboxMessage]:
    """Atomically mark up to `limit` due rows as ours; give up stale claims with no attempt left."""
    m = OutboxMessage
    due = or_(
        and_(m.status == OutboxStatus.PENDING, m.next_attempt_at <= now),
        and_(m.status == OutboxStatus.SENDING, m.claimed_at <= stale_before),
    )
    with session_factory() as session, session.begin():
        begin_write(session)
        session.execute(
            update(m)
            .where(m.status == OutboxStatus.SENDING, m.claimed_at <= stale_before, m.attempts >= max_attempts)
            .values(
                status=OutboxStatus.FAILED,
                last_error=f"claim expired after {max_attempts} attempts (sender died?)",
            )
            .execution_options(synchronize_session=False)
        )
        earlier = aliased(m)
        blocked = exists().where(
            earlier.channel == m.channel,
            earlier.openid == m.openid,
            earlier.id < m.id,
            earlier.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING]),
        )
        candidates = select(m.id).where(due, ~blocked)
        if channels is not None:
            candidates = candidates.where(m.channel.in_(channels))
        # Two statements, one transaction: the rows read here stay locked until the claim commits
        # (PostgreSQL: FOR UPDATE, and SKIP LOCKED so concurrent senders take disjoint rows; SQLite:
        # the write lock taken above). A LIMIT subquery inside the UPDATE is no substitute: PostgreSQL
        # may rescan it and claim more than `limit` rows.
        ids = session.scalars(
            candidates.order_by(m.next_attempt_at, m.id).limit(limit).with_for_update(skip_locked=True, of=m)
        ).all()
        if not ids:
            return []
        claimed = session.scalars(
            update(m)
            .where(m.id.in_(ids), due)  # `due` again: the claim never takes a row that stopped being due
            .values(
                status=OutboxStatus.SENDING, claimed_by=worker_id, claimed_at=now, attempts=m.attempts + 1
            )
            .returning(m)
            .execution_options(synchronize_session=False)
        ).all()
    return sorted(claimed, key=lambda message: message.id)


def _deliver(
    session_factory: sessionmaker[Session],
    gateway: WeChatGateway,
    message: OutboxMessage,
    *,
    now: datetime,
    worker_id: str,
    max_attempts: int,
    wait: timedelta,
) -> int:
    """Send one claimed message and record the outcome; 1 if WeChat accepted it."""
    if not _still_ours(session_factory, message, worker_id=worker_id, now=now):
        log.warning("outbox %s: claim taken over before sending; skipped", message.id)
        return 0
    status, error, retry_at = OutboxStatus.SENT, None, None
    if message.kind not in SENDERS:
        status, error = OutboxStatus.FAILED, f"unknown message kind {message.kind!r}"
    else:
        try:
            SENDERS[message.kind](gateway, message)
        except WeChatRejected as exc:
            log.warning("outbox %s: rejected by WeChat for good: %s", message.id, exc)
            status, error = OutboxStatus.FAILED, str(exc)
        except WeChatError as exc:
            error = str(exc)
            if message.attempts >= max_attempts:
                log.warning("outbox %s: giving up after %s attempts: %s", message.id, message.attempts, exc)
                status = OutboxStatus.FAILED
            else:
                status, retry_at = OutboxStatus.PENDING, now + wait
    _finish(
        session_factory, message, worker_id=worker_id, now=now, status=status, error=error, retry_at=retry_at
    )
    return 1 if status is OutboxStatus.SENT else 0


def _send_subscribe(gateway: WeChatGateway, message: OutboxMessage) -> None:
    body = json.loads(message.content)
    gateway.send_subscribe(message.openid, body["template_id"], body["data"], body.get("page"))


def _send_template(gateway: WeChatGateway, message: OutboxMessage) -> None:
    body = json.loads(message.content)
    gateway.send_template(message.openid, body["template_id"], body["data"], body.get("url"))


SENDERS: dict[str, Callable[[WeChatGateway, OutboxMessage], None]] = {
    "text": lambda gateway, message: gateway.send_text(message.openid, message.content),
    "subscribe": _send_subscribe,
    "template": _send_template,
}


def _owned(message: OutboxMessage, worker_id: str, now: datetime) -> ColumnElement[bool]:
    """The WHERE clause matching `message` only while this sender's claim on it stands."""
    m = OutboxMessage
    return and_(
        m.id == message.id, m.status == OutboxStatus.SENDING, m.claimed_by == worker_id, m.claimed_at == now
    )


def _still_ours(
    session_factory: sessionmaker[Session], message: OutboxMessage, *, worker_id: str, now: datetime
) -> bool:
    """Whether the claim still stands (a slow sender's rows may have been taken over as stale)."""
    with session_factory() as session:
        return session.scalar(select(OutboxMessage.id).where(_owned(message, worker_id, now))) is not None


def _finish(
    session_factory: sessionmaker[Session],
    message: OutboxMessage,
    *,
    worker_id: str,
    now: datetime,
    status: OutboxStatus,
    error: str | None = None,
    retry_at: datetime | None = None,
) -> None:
    """Record an outcome, only while the claim is still ours; committed at once."""
    values: dict[str, object] = {"status": status}
    if error is not None:
        values["last_error"] = error  # kept after a later success: the history of the delivery
    if status is OutboxStatus.SENT:
        values["sent_at"] = now
    if status is OutboxStatus.PENDING:
        values.update(next_attempt_at=retry_at, claimed_by=None, claimed_at=None)
    with session_factory() as session, session.begin():
        begin_write(session)
        result = session.execute(
            update(OutboxMessage)
            .where(_owned(message, worker_id, now))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            log.error("outbox %s: claim lost before recording %s", message.id, status)
