"""A person's reply to a worker (a lawyer's, later): kept in the history first, then sent if WeChat allows.

WeChat lets the service write to a user by customer-service message only within 48 hours of the
user's last message. Beyond that, a mini-program user can be reached only by a one-time subscription
message (`message/subscribe/send`) they granted earlier with `wx.requestSubscribeMessage`: each grant
allows exactly one message of that template. So a reply is delivered:

1. inside the window: by customer-service message (the outbox, channel of the worker);
2. else, to a mini-program worker holding an unused grant of the reply template: by subscription
   message, which says a reply is waiting and opens the mini-program's history page;
3. else not pushed at all: the reply waits in the history, where the worker reads it on their next
   visit (the mobile page and the mini-program show it; a worker of the official account who writes
   again sees it offered there).

In every case the reply is a message row of the consultation before anything is queued, in the
caller's transaction: nothing accepted is lost, and the outbox's dedup key makes it one send.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot import outbox
from models import (
    LAWYER,
    MINI_PROGRAM,
    OFFICIAL_ACCOUNT,
    OUTBOUND,
    Consultation,
    Message,
    Subscription,
    Worker,
)
from models.db import as_utc

CS_WINDOW = timedelta(hours=48)
CHINA = timezone(timedelta(hours=8), "CST")
# A subscription template's "thing" fields take at most 20 characters.
THING_LIMIT = 20
CUSTOMER_SERVICE, SUBSCRIPTION, HISTORY = "customer_service", "subscription", "history"
PUSH_CHANNELS = (OFFICIAL_ACCOUNT, MINI_PROGRAM)
# What a template field can be filled with (the field names themselves are the template's own).
SOURCES = ("title", "excerpt", "time", "hint", "category")
TITLE = "律师已回复您的咨询"
HINT = "点击查看答复，可继续留言"


@dataclass(frozen=True)
class ReplyTemplate:
    """The subscription template used to tell a worker that a reply waits (configured per deployment)."""

    template_id: str
    fields: dict[str, str] = field(default_factory=dict)  # template field -> one of SOURCES
    page: str | None = None

    @classmethod
    def parse(cls, template_id: str, fields: str, page: str | None) -> ReplyTemplate | None:
        """From configuration: `fields` like "thing1=title,time2=time,thing3=hint"; None without an id."""
        if not template_id:
            return None
        mapping: dict[str, str] = {}
        for pair in filter(None, (p.strip() for p in fields.split(","))):
            name, _, source = pair.partition("=")
            if not name.strip() or source.strip() not in SOURCES:
                raise ValueError(
                    f"template field {pair!r}: write name=source, source one of {', '.join(SOURCES)}"
                )
            mapping[name.strip()] = source.strip()
        if not mapping:
            raise ValueError("the reply template needs at least one field")
        return cls(template_id, mapping, page or None)

    def data(self, text: str, category: str | None, now: datetime) -> dict[str, str]:
        """The template's field values for a reply."""
        local = now.astimezone(CHINA)
        values = {
            "title": TITLE,
            "excerpt": text if len(text) <= THING_LIMIT else text[: THING_LIMIT - 1] + "…",
            "time": f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}",
            "hint": HINT,
            "category": category or "劳动法律咨询",
        }
        return {name: values[source] for name, source in self.fields.items()}


@dataclass(frozen=True)
class Delivery:
    """A reply stored, and how it will reach the worker (one of CUSTOMER_SERVICE, SUBSCRIPTION, HISTORY)."""

    message: Message
    via: str


def grant(session: Session, worker: Worker, template_ids: list[str], *, now: datetime) -> int:
    """Record one-time subscriptions the worker accepted (one row each; each allows one message)."""
    for template_id in template_ids:
        session.add(Subscription(worker_id=worker.id, template_id=template_id, granted_at=now))
    session.flush()
    return len(template_ids)


def unused_grants(session: Session, worker: Worker, template_id: str) -> int:
    """How many one-time subscriptions of `template_id` the worker holds unused."""
    return session.scalar(
        select(func.count(Subscription.id)).where(
            Subscription.worker_id == worker.id,
            Subscription.template_id == template_id,
            Subscription.used_at.is_(None),
        )
    )


def in_window(worker: Worker, now: datetime) -> bool:
    """Whether customer-service messages may reach the worker (within 48 hours of their last message)."""
    return worker.last_message_at is not None and now - as_utc(worker.last_message_at) < CS_WINDOW


def deliver_reply(
    session: Session,
    consultation: Consultation,
    text: str,
    *,
    key: str,
    now: datetime,
    template: ReplyTemplate | None,
    author: str = LAWYER,
    push: bool = True,
    send_after: timedelta = timedelta(0),
    suffix: str = "",
) -> Delivery:
    """Store `text` as a reply in `consultation` and queue it the way WeChat allows (module docstring).

    `key` identifies this reply (a lawyer's reply id, say): the same key is stored and sent once.
    `push` False only stores it (held: it goes out with the worker's next message). A customer-service
    message leaves `send_after` from now (so a lawyer's next lines can join it) with `suffix` appended.
    The message row's `delivery` records the way chosen.
    """
    worker = session.get(Worker, consultation.worker_id)
    assert worker is not None
    dedup = f"{author}|{key}"
    existing = session.scalars(
        select(Message).where(Message.channel == worker.channel, Message.dedup_key == dedup)
    ).one_or_none()
    if existing is not None:
        return Delivery(existing, existing.delivery or HISTORY)
    message = Message(
        channel=worker.channel,
        dedup_key=dedup,
        direction=OUTBOUND,
        author=author,
        worker_id=worker.id,
        consultation_id=consultation.id,
        msg_type="text",
        content=text,
        created_at=now,
    )
    session.add(message)
    message.delivery = via = _route(session, worker, template, push=push, now=now)
    session.flush()
    if via == CUSTOMER_SERVICE:
        outbox.enqueue(
            session,
            channel=worker.channel,
            openid=worker.openid,
            text=text + suffix,
            dedup_key=f"cs|{dedup}",
            now=now,
            not_before=now + send_after,
        )
        return Delivery(message, CUSTOMER_SERVICE)
    if via == SUBSCRIPTION:
        assert template is not None
        body = {"template_id": template.template_id, "data": template.data(text, consultation.category, now)}
        if template.page:
            body["page"] = template.page
        outbox.enqueue(
            session,
            channel=worker.channel,
            openid=worker.openid,
            text=json.dumps(body, ensure_ascii=False),
            dedup_key=f"sub|{dedup}",
            now=now,
            kind="subscribe",
        )
        return Delivery(message, SUBSCRIPTION)
    return Delivery(message, HISTORY)


def _route(
    session: Session, worker: Worker, template: ReplyTemplate | None, *, push: bool, now: datetime
) -> str:
    """How a new reply can reach the worker now (a subscription grant is spent when chosen)."""
    if not push or worker.erased_at is not None or worker.channel not in PUSH_CHANNELS:
        return HISTORY
    if in_window(worker, now):
        return CUSTOMER_SERVICE
    if (
        worker.channel == MINI_PROGRAM
        and template is not None
        and _spend_grant(session, worker, template, now)
    ):
        return SUBSCRIPTION
    return HISTORY


def _spend_grant(session: Session, worker: Worker, template: ReplyTemplate, now: datetime) -> bool:
    """Mark one unused grant used; False when the worker holds none. The row is locked on PostgreSQL
    (two replies at once must not spend one grant twice); SQLite serialises writers anyway."""
    grant_row = session.scalars(
        select(Subscription)
        .where(
            Subscription.worker_id == worker.id,
            Subscription.template_id == template.template_id,
            Subscription.used_at.is_(None),
        )
        .order_by(Subscription.granted_at, Subscription.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).first()
    if grant_row is None:
        return False
    grant_row.used_at = now
    return True
