"""Editing the duty roster: dated shifts, weekly patterns and holidays, with the rules a union admin
must keep — only regions they manage (their own and below; an admin everywhere), only active lawyers,
spans that make sense, one holiday per day and region, city-wide holidays by an admin only.

Every refusal is a `RosterError` whose message is shown to the admin as it is.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.staff import visible_regions
from models.org import Holiday, Lawyer, Region, Shift, StaffUser, WeeklyShift

MAX_SHIFT = timedelta(days=31)
WEEKDAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
KINDS = {"shift": (Shift, "值班"), "weekly": (WeeklyShift, "每周排班"), "holiday": (Holiday, "节假日")}


class RosterError(Exception):
    """A roster change refused, with the reason in the admin's words."""


def managed_region(session: Session, user: StaffUser, region_id: int) -> int:
    """`region_id`, if it exists and `user` manages it."""
    allowed = visible_regions(session, user)
    if session.get(Region, region_id) is None or (allowed is not None and region_id not in allowed):
        raise RosterError("没有这个地区，或您无权管理这个地区的值班表。")
    return region_id


def active_lawyer(session: Session, lawyer_id: int | None) -> Lawyer:
    """The lawyer, if they exist and are active."""
    lawyer = session.get(Lawyer, lawyer_id) if lawyer_id is not None else None
    if lawyer is None or not lawyer.active:
        raise RosterError("没有这位律师，请重新选择。")
    return lawyer


def add_shift(
    session: Session,
    user: StaffUser,
    *,
    region_id: int,
    lawyer_id: int,
    role: str,
    start: datetime,
    end: datetime,
) -> str:
    """A dated shift; returns what to tell the admin."""
    managed_region(session, user, region_id)
    lawyer = active_lawyer(session, lawyer_id)
    if end <= start:
        raise RosterError("结束时间必须晚于开始时间。")
    if end - start > MAX_SHIFT:
        raise RosterError("一个班次不能超过31天，长期值班请用每周排班。")
    session.add(Shift(region_id=region_id, lawyer_id=lawyer.id, role=role, starts_at=start, ends_at=end))
    session.flush()
    return f"已添加{lawyer.name}的值班。"


def add_weekly(
    session: Session,
    user: StaffUser,
    *,
    region_id: int,
    lawyer_id: int,
    role: str,
    weekday: int,
    start: time,
    end: time,
) -> str:
    """A weekly pattern (China time); returns what to tell the admin."""
    managed_region(session, user, region_id)
    lawyer = active_lawyer(session, lawyer_id)
    if not 0 <= weekday <= 6:
        raise RosterError("请选择星期几。")
    if end <= start:
        raise RosterError("结束时间必须晚于开始时间（跨夜的班请分成两段）。")
    session.add(
        WeeklyShift(
            region_id=region_id,
            lawyer_id=lawyer.id,
            role=role,
            weekday=weekday,
            start_time=start,
            end_time=end,
        )
    )
    session.flush()
    return f"已添加{lawyer.name}每{WEEKDAYS[weekday]}的值班。"


def add_holiday(session: Session, user: StaffUser, *, region_id: int | None, day: date, name: str) -> str:
    """A holiday in a region, or everywhere (`region_id` None, admins only)."""
    if region_id is None and user.role != "admin":
        raise RosterError("只有系统管理员可以设置全市的节假日。")
    if region_id is not None:
        managed_region(session, user, region_id)
    same = select(Holiday.id).where(
        Holiday.day == day,
        Holiday.region_id.is_(None) if region_id is None else Holiday.region_id == region_id,
    )
    if session.scalar(same) is not None:
        raise RosterError("这一天已经设为节假日了。")
    session.add(Holiday(day=day, region_id=region_id, name=name))
    session.flush()
    return f"已添加节假日：{day:%Y-%m-%d} {name}。"


def delete(session: Session, user: StaffUser, kind: str, row_id: int) -> str:
    """Delete a shift, weekly pattern or holiday (`kind`: shift, weekly, holiday) the user manages."""
    model, what = KINDS[kind]
    row = session.get(model, row_id)
    if row is None:
        raise RosterError(f"没有这个{what}，可能已经删除了。")
    allowed = visible_regions(session, user)
    if row.region_id is None and user.role != "admin":
        raise RosterError("只有系统管理员可以删除全市的节假日。")
    if row.region_id is not None and allowed is not None and row.region_id not in allowed:
        raise RosterError(f"您无权删除这个{what}。")
    session.delete(row)
    return f"已删除{what}。"
