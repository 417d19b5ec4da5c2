"""WeChat plumbing kept in the database: the shared access_token and the outbox of replies to send.

Both tables are shared by every process of the service: one access_token per appid (WeChat keeps only
the newest valid, so processes must not each fetch their own), and one outbox that the scheduler
drains, so a reply accepted once is sent once even when several senders run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from models.db import Model, utcnow

# The value of `AccessToken.expires_at` for a row that holds no token yet.
NEVER = datetime(1970, 1, 1, tzinfo=UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend; SQLite stores naive UTC text, read back as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes (their zone is a guess) and store UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware UTC time")
        value = value.astimezone(UTC)
        # SQLite compares these as text: keep one format without an offset so ordering holds.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Give back an aware UTC datetime whatever the driver returned."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class AccessToken(Model):
    """The access_token of one WeChat account, shared by all processes (refreshed under a row lock)."""

    __tablename__ = "wechat_access_token"

    appid: Mapped[str] = mapped_column(String(64), primary_key=True)
    # WeChat asks for at least 512 characters of storage; Text never truncates. "" = none fetched yet.
    token: Mapped[str] = mapped_column(Text, default="")
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, default=NEVER)
    refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OutboxStatus(StrEnum):
    """Where a queued message is: waiting, held by one sender, delivered, or given up."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class OutboxMessage(Model):
    """A message to one WeChat user, queued once (`dedup_key`) and claimed by one sender at a time."""

    __tablename__ = "wechat_outbox"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'sending', 'sent', 'failed')", name="status"),
        CheckConstraint("attempts >= 0", name="attempts"),
        # What `deliver_due` scans: due pending rows and stale claims.
        Index("ix_wechat_outbox_due", "status", "next_attempt_at"),
        # Per-recipient order: a message waits while an earlier one to the same user is unfinished.
        Index("ix_wechat_outbox_recipient", "channel", "openid", "status"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(8))  # "oa" official account, "mp" mini-program
    openid: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16), default="text")
    content: Mapped[str] = mapped_column(Text)
    dedup_key: Mapped[str] = mapped_column(String(191), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Subscription(Model):
    """One one-time subscription a worker granted in the mini-program (wx.requestSubscribeMessage):
    it allows exactly one `message/subscribe/send` of `template_id`; `used_at` marks it spent."""

    __tablename__ = "wechat_subscriptions"
    __table_args__ = (Index("ix_wechat_subscriptions_unused", "worker_id", "template_id", "used_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    worker_id: Mapped[int] = mapped_column(ForeignKey("workers.id"))
    template_id: Mapped[str] = mapped_column(String(128))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
