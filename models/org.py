"""The organisations and people behind the service: regions (city union → district union → township or
park union), service stations (the QR scene codes), lawyers and the regions they serve, console users,
and the duty roster (dated shifts, weekly patterns, holiday exceptions)."""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.db import Model, utcnow
from models.wechat import UTCDateTime

REGION_LEVELS = ("city", "district", "township", "park")
ROLES = ("lawyer", "union_admin", "admin")
SHIFT_ROLES = ("primary", "backup")


class Region(Model):
    """A union's area; `parent_id` is the union above (None for the city union at the top)."""

    __tablename__ = "regions"
    __table_args__ = (CheckConstraint("level IN ('city', 'district', 'township', 'park')", name="level"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"), index=True)


class Station(Model):
    """A service station (职工服务站点) with its QR scene code; workers who scan it belong to its region."""

    __tablename__ = "stations"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)


class Lawyer(Model):
    """A volunteer lawyer; `openid` (of the official account they follow) receives duty notices."""

    __tablename__ = "lawyers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    firm: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(32))
    openid: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(default=True)


class LawyerRegion(Model):
    """A region a lawyer serves (one lawyer may serve several: the grid model)."""

    __tablename__ = "lawyer_regions"

    lawyer_id: Mapped[int] = mapped_column(ForeignKey("lawyers.id"), primary_key=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), primary_key=True)


class StaffUser(Model):
    """A console user: a lawyer (linked to `lawyer_id`), a union admin of `region_id` and below, or an admin.

    `password_hash` is scrypt with a salt; `failed_logins` and `locked_until` carry the lock-out;
    `token_version` changes on password change, which signs out every token issued before.
    """

    __tablename__ = "staff_users"
    __table_args__ = (CheckConstraint("role IN ('lawyer', 'union_admin', 'admin')", name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    lawyer_id: Mapped[int | None] = mapped_column(ForeignKey("lawyers.id"))
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"))
    openid: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(default=True)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    token_version: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Shift(Model):
    """A dated duty shift of a lawyer for a region (an exception to, or on top of, the weekly pattern)."""

    __tablename__ = "shifts"
    __table_args__ = (
        CheckConstraint("role IN ('primary', 'backup')", name="role"),
        CheckConstraint("ends_at > starts_at", name="span"),
        Index("ix_shifts_region_time", "region_id", "starts_at", "ends_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"))
    lawyer_id: Mapped[int] = mapped_column(ForeignKey("lawyers.id"))
    role: Mapped[str] = mapped_column(String(16), default="primary")
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WeeklyShift(Model):
    """A weekly duty pattern: every `weekday` (0 = Monday) from `start` to `end`, China time."""

    __tablename__ = "weekly_shifts"
    __table_args__ = (
        CheckConstraint("role IN ('primary', 'backup')", name="role"),
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday"),
        CheckConstraint("end_time > start_time", name="span"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True)
    lawyer_id: Mapped[int] = mapped_column(ForeignKey("lawyers.id"))
    role: Mapped[str] = mapped_column(String(16), default="primary")
    weekday: Mapped[int] = mapped_column(SmallInteger)
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)


class Holiday(Model):
    """A day the weekly patterns do not apply (statutory holidays); dated shifts still do.
    `region_id` None: every region."""

    __tablename__ = "holidays"
    __table_args__ = (UniqueConstraint("day", "region_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"))
    name: Mapped[str] = mapped_column(String(64))
