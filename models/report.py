"""Reports kept by the scheduler: precomputed daily and monthly counts (`ReportCount`), a frozen copy of
each month's summary per region (what was reported, even if records are corrected later), and a ledger
of the scheduled notices already sent (the daily summary, deadline reminders), so each goes out once
however many scheduler processes try."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.db import Model, utcnow
from models.wechat import UTCDateTime


class ReportSnapshot(Model):
    """The summary of `region_id` (None: everywhere) for [`start`, `end`], as computed at `created_at`."""

    __tablename__ = "report_snapshots"
    __table_args__ = (UniqueConstraint("region_key", "start", "end"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"))
    # region_id or 0: NULLs are never equal in a unique constraint, 0 is.
    region_key: Mapped[int] = mapped_column()
    start: Mapped[date] = mapped_column(Date)
    end: Mapped[date] = mapped_column(Date)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReportDispatch(Model):
    """A scheduled notice already sent: `key` names it (daily:2026-11-21, deadline:2026-12-10:7)."""

    __tablename__ = "report_dispatches"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReportCount(Model):
    """One number of `bot.report_rollup`'s precomputed counts: the consultations opened on `day` (span
    "d"), or in the month starting on `day` (span "m"), for `region_id` (None: no region), whose
    `measure` (channel, worker_type, category, resolution, rating) had `value` ("" for none)."""

    __tablename__ = "report_counts"
    __table_args__ = (Index("ix_report_counts_span_day", "span", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    span: Mapped[str] = mapped_column(String(1))
    day: Mapped[date] = mapped_column(Date)
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"))
    measure: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(64))
    n: Mapped[int] = mapped_column()
