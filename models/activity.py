"""What union staff enter by hand for the reports, which the bot cannot see: lectures, leaflets, offline
consultations, 法治体检 of enterprises, disputes mediated, legal-aid cases, money recovered, funds spent,
teams and lawyers taking part — one row per activity, per region and day — and the history of every
change to a row (who, when, the values before and after)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.db import Model, utcnow
from models.wechat import UTCDateTime

# The figures a record may carry; which of them a kind needs is `bot.activities.KINDS`'s to say.
COUNT_FIELDS = (
    "sessions",
    "people",
    "copies",
    "person_times",
    "cases",
    "enterprises",
    "consultations",
    "assessments",
    "mechanisms",
    "teams",
    "lawyers",
    "associations",
    "outstanding_lawyers",
)


class ActivityRecord(Model):
    """One activity of a union (a lecture, a batch of leaflets, a legal-aid case...) in `region_id` on
    `day`. `online`: held online (a livestreamed lecture, a dispute mediated by video). `new_form`: for
    新就业形态劳动者 (the form counts only those). `amount` is in 万元. A deleted record keeps its row
    (`deleted_at`) so the history still explains the figures of earlier exports."""

    __tablename__ = "activity_records"
    __table_args__ = (Index("ix_activity_records_report", "day", "region_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"))
    day: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(24))
    # For a legal-aid case: wage (工资拖欠), injury (工伤赔偿) or other; the form counts each apart.
    topic: Mapped[str | None] = mapped_column(String(16))
    online: Mapped[bool] = mapped_column(default=False)
    new_form: Mapped[bool] = mapped_column(default=True)
    sessions: Mapped[int | None] = mapped_column(Integer)
    people: Mapped[int | None] = mapped_column(Integer)
    copies: Mapped[int | None] = mapped_column(Integer)
    person_times: Mapped[int | None] = mapped_column(Integer)
    cases: Mapped[int | None] = mapped_column(Integer)
    enterprises: Mapped[int | None] = mapped_column(Integer)
    consultations: Mapped[int | None] = mapped_column(Integer)
    assessments: Mapped[int | None] = mapped_column(Integer)
    mechanisms: Mapped[int | None] = mapped_column(Integer)
    teams: Mapped[int | None] = mapped_column(Integer)
    lawyers: Mapped[int | None] = mapped_column(Integer)
    associations: Mapped[int | None] = mapped_column(Integer)
    outstanding_lawyers: Mapped[int | None] = mapped_column(Integer)
    amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    issuer: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ActivityChange(Model):
    """One change to a record: `action` create / update / delete, by `staff_id`, with the values before
    (None for a create) and after (None for a delete)."""

    __tablename__ = "activity_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("activity_records.id"), index=True)
    action: Mapped[str] = mapped_column(String(8))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
