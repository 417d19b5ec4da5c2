"""One consultation = one 人次: opened by a worker's first question, closed by idle time, 结束 or a lawyer."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import CheckConstraint, Date, DateTime, ForeignKey, Index, String, event, false, inspect, text
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.orm.attributes import flag_modified

from models.db import Model, utcnow

OPEN_ONLY = text("closed_at IS NULL")
UNPURGED = text("purged_at IS NULL")
UNCOUNTED = text("NOT counted")
# The columns the reports count by: a change to any of them puts the consultation's day back in
# `bot.report_rollup`'s queue (`counted` false), in the same UPDATE.
REPORT_COLUMNS = ("opened_on", "region_id", "channel", "worker_type", "category", "resolution", "rating")


class Consultation(Model):
    """`worker_type` is the worker's type when it opened (or learnt during it).

    A worker has at most one open consultation: a partial unique index, on SQLite and PostgreSQL
    alike, so concurrent duplicate deliveries can never count one 人次 twice."""

    __tablename__ = "consultations"
    __table_args__ = (
        Index(
            "uq_consultations_open_worker",
            "worker_id",
            unique=True,
            sqlite_where=OPEN_ONLY,
            postgresql_where=OPEN_ONLY,
        ),
        # The reports read consultations by day and region and group them by these columns: an index that
        # holds them all answers a month's or a year's counts without touching the table.
        Index(
            "ix_consultations_report",
            "opened_on",
            "region_id",
            "channel",
            "worker_type",
            "category",
            "resolution",
            "rating",
            "worker_id",
        ),
        # What the retention job (`bot.retention`) looks for: closed consultations whose texts are still
        # there. Only those are in the index, so a run that finds nothing new reads next to nothing.
        Index("ix_consultations_unpurged", "closed_at", sqlite_where=UNPURGED, postgresql_where=UNPURGED),
        # The days whose counts `bot.report_rollup` has yet to (re)compute: only those rows are in it.
        Index("ix_consultations_uncounted", "opened_on", sqlite_where=UNCOUNTED, postgresql_where=UNCOUNTED),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    worker_id: Mapped[int] = mapped_column(ForeignKey("workers.id"), index=True)
    channel: Mapped[str] = mapped_column(String(8))
    worker_type: Mapped[str | None] = mapped_column(String(32))
    region_code: Mapped[str | None] = mapped_column(String(32))
    # The union region the consultation counts for (the station's, else the worker's region code), and
    # the day it opened in China time: both fixed when it opens, as the reports read them.
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"))
    opened_on: Mapped[date | None] = mapped_column(Date)
    station_code: Mapped[str | None] = mapped_column(String(64))
    category: Mapped[str | None] = mapped_column(String(32))
    resolution: Mapped[str | None] = mapped_column(String(16))
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    last_activity_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    close_reason: Mapped[str | None] = mapped_column(String(16))
    rating: Mapped[int | None] = mapped_column(CheckConstraint("rating BETWEEN 1 AND 5", name="rating"))
    rated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When `bot.retention` blanked the texts of this (closed) consultation; the row and its counts stay.
    purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Whether `bot.report_rollup`'s daily counts include this row as it is now. New rows start false;
    # `_uncount` sets it false again whenever a counted column changes.
    counted: Mapped[bool] = mapped_column(default=False, server_default=false())


@event.listens_for(Consultation, "before_update")
def _uncount(_mapper: Any, _connection: Any, target: Consultation) -> None:
    state = inspect(target)
    if any(state.attrs[name].history.has_changes() for name in REPORT_COLUMNS):
        # Written even when the loaded value is already false: the rollup may have marked the row
        # counted since this session read it.
        target.counted = False
        flag_modified(target, "counted")
