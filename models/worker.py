"""A worker who wrote to the service through one WeChat channel (official account or mini-program)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from models.db import Model, utcnow

OFFICIAL_ACCOUNT, MINI_PROGRAM = "oa", "mp"


class Worker(Model):
    """One openid on one channel; `conversation` holds the bot's memory between messages."""

    __tablename__ = "workers"
    __table_args__ = (UniqueConstraint("channel", "openid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(8))
    openid: Mapped[str] = mapped_column(String(64))
    unionid: Mapped[str | None] = mapped_column(String(64), index=True)
    worker_type: Mapped[str | None] = mapped_column(String(32))
    # "chosen" (the worker tapped or typed it) or "inferred" (from their words); a choice is not overridden.
    worker_type_source: Mapped[str | None] = mapped_column(String(8))
    worker_type_asked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    region_code: Mapped[str | None] = mapped_column(String(32))
    station_code: Mapped[str | None] = mapped_column(String(64))
    subscribed: Mapped[bool] = mapped_column(default=True)
    first_contact_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_message_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    conversation: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    privacy_version: Mapped[str | None] = mapped_column(String(16))
    privacy_accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    erased_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Whether a ticket was ever opened for this worker (set by `models.ticket` when one is inserted):
    # only then can a ticket be open or a lawyer's reply be held, so most messages skip those lookups.
    has_tickets: Mapped[bool] = mapped_column(default=False, server_default=false())


WEB = "web"  # the mobile web page, signed in with a one-time code (no WeChat identity)


class LoginCode(Model):
    """A one-time sign-in code for the mobile web page, issued by staff for testing without WeChat.

    Only a SHA-256 of the code is stored; `used_at` is set once, by the first sign-in that presents it.
    """

    __tablename__ = "web_login_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    worker_id: Mapped[int | None] = mapped_column(ForeignKey("workers.id"))
