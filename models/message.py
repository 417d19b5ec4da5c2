"""Every message in and out, once: (channel, dedup_key) is unique, so a retried delivery is one row."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.db import Model, utcnow

INBOUND, OUTBOUND = "in", "out"
# Who wrote an outbound message: the bot, or a person of the service (a lawyer). NULL on inbound rows.
BOT, LAWYER = "bot", "lawyer"


class Message(Model):
    """An inbound message or event (dedup_key: MsgId, or FromUserName+CreateTime+Event for events) or
    an outbound reply; `reply` keeps the passive reply given to an inbound one so a retry gets it again."""

    __tablename__ = "messages"
    __table_args__ = (UniqueConstraint("channel", "dedup_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(8))
    dedup_key: Mapped[str] = mapped_column(String(160))
    direction: Mapped[str] = mapped_column(String(3))
    worker_id: Mapped[int] = mapped_column(ForeignKey("workers.id"), index=True)
    consultation_id: Mapped[int | None] = mapped_column(ForeignKey("consultations.id"), index=True)
    author: Mapped[str | None] = mapped_column(String(16))
    msg_type: Mapped[str] = mapped_column(String(32))
    event: Mapped[str | None] = mapped_column(String(64))
    content: Mapped[str | None] = mapped_column(Text)
    media_id: Mapped[str | None] = mapped_column(String(256))
    reply: Mapped[str | None] = mapped_column(Text)
    # Outbound replies by a person: how it reaches the worker (customer_service, subscription, or
    # history: held until the worker writes again). NULL for the bot's replies.
    delivery: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
