"""The reports' scheduled work: the monthly snapshot (each region's summary of the month just ended, kept
as it was), the daily summary to each union admin, and reminders before the reporting deadlines.

Each step is idempotent and catches up: it checks what is already done (a snapshot row, a dispatch key
in `report_dispatches`, inserted before the notices in the same transaction) and does only what is
missing, so running it every few minutes, after a restart, or from two processes at once sends
nothing twice and misses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.reports import Reports, Scope
from bot.roster import CHINA, Tree
from bot.tickets import Desk
from models import as_utc
from models.org import StaffUser
from models.report import ReportDispatch, ReportSnapshot
from models.ticket import CLOSED, Ticket

DAILY_AT = time(8, 0)  # China time: the daily summary goes out in the morning


@dataclass(frozen=True)
class Deadline:
    """A reporting deadline that recurs every year on `month`-`day` (e.g. 11-10 for the campaign's 总结)."""

    month: int
    day: int

    @classmethod
    def parse_list(cls, raw: str) -> tuple[Deadline, ...]:
        """ "11-10,06-30" → deadlines; ValueError naming a bad item."""
        out = []
        for item in (part.strip() for part in raw.split(",")):
            if not item:
                continue
            try:
                month, day = (int(x) for x in item.split("-"))
                date(2024, month, day)  # a leap year, so 02-29 is allowed
            except ValueError:
                raise ValueError(f"{item!r} is not a MM-DD date") from None
            out.append(cls(month, day))
        return tuple(out)

    def next_on_or_after(self, today: date) -> date:
        for year in (today.year, today.year + 1, today.year + 2):
            try:
                candidate = date(year, self.month, self.day)
            except ValueError:  # 02-29 in a common year
                continue
            if candidate >= today:
                return candidate
        raise AssertionError("unreachable")


def reminder_days(raw: str) -> tuple[int, ...]:
    """ "7,3,1" → (7, 3, 1); ValueError for anything but whole days from 1 to 90."""
    days = tuple(int(x) for x in raw.split(",") if x.strip())
    if any(not 1 <= d <= 90 for d in days):
        raise ValueError("reminder days must be whole numbers from 1 to 90")
    return days


def _claim(session: Session, key: str, now: datetime) -> bool:
    """Record that `key` is being sent; False when it already was (by this or another process)."""
    try:
        with session.begin_nested():
            session.add(ReportDispatch(key=key, sent_at=now))
    except IntegrityError:
        return False
    return True


def _previous_month(today: date) -> tuple[date, date]:
    end = today.replace(day=1) - timedelta(days=1)
    return end.replace(day=1), end


def snapshot_month(session: Session, reports: Reports, *, now: datetime) -> int:
    """Freeze last month's summary for every region and for everywhere, once; returns how many made."""
    today = as_utc(now).astimezone(CHINA).date()
    start, end = _previous_month(today)
    tree = Tree(session)
    done = set(
        session.scalars(
            select(ReportSnapshot.region_key).where(ReportSnapshot.start == start, ReportSnapshot.end == end)
        )
    )
    made = 0
    for region_id in [None, *sorted(tree.parent)]:
        key = region_id or 0
        if key in done:
            continue
        data = reports.summary(session, Scope(start, end, region_id), now=now, tree=tree)
        try:
            with session.begin_nested():
                session.add(
                    ReportSnapshot(
                        region_id=region_id, region_key=key, start=start, end=end, data=data, created_at=now
                    )
                )
        except IntegrityError:
            continue  # another process made it meanwhile
        made += 1
    return made


def _daily_text(summary: dict, day: date, queue: int) -> str:
    c, lawyers = summary["consultations"], summary["lawyers"]
    median = lawyers["first_response_minutes"]["median"]
    response = f"，律师首次回复中位数 {median} 分钟" if median is not None else ""
    return (
        f"【每日统计】{day.month}月{day.day}日{summary['region']['name'] if summary['region'] else ''}："
        f"咨询 {c['total']} 人次（新就业形态劳动者 {c['new_form']} 人次），{c['workers']['total']} 人；"
        f"转律师 {lawyers['tickets']} 件{response}，超时 {lawyers['breaches']['late_first_response']} 件；"
        f"当前待处理 {queue} 件。"
    )


def daily_summary(session: Session, reports: Reports, desk: Desk, *, now: datetime) -> int:
    """After 08:00 China time, yesterday's figures to each active union admin (for their region), once a
    day; returns how many notices were sent."""
    local = as_utc(now).astimezone(CHINA)
    if local.time() < DAILY_AT:
        return 0
    yesterday = local.date() - timedelta(days=1)
    if not _claim(session, f"daily:{yesterday.isoformat()}", now):
        return 0
    tree = Tree(session)
    admins = session.execute(
        select(StaffUser.id, StaffUser.region_id).where(
            StaffUser.role == "union_admin", StaffUser.active.is_(True), StaffUser.region_id.is_not(None)
        )
    ).all()
    texts: dict[int, str] = {}  # one summary per region, however many admins it has
    sent = 0
    for staff_id, region_id in admins:
        if region_id not in tree.parent:
            continue
        if region_id not in texts:
            summary = reports.summary(session, Scope(yesterday, yesterday, region_id), now=now, tree=tree)
            queue = session.scalar(
                select(func.count())
                .select_from(Ticket)
                .where(Ticket.status != CLOSED, Ticket.region_id.in_(sorted(tree.subtree(region_id))))
            )
            texts[region_id] = _daily_text(summary, yesterday, int(queue or 0))
        sent += desk.notify_staff(
            session, None, kind="daily_summary", text=texts[region_id], staff_ids=[staff_id], now=now
        )
    return sent


def deadline_reminders(
    session: Session,
    desk: Desk,
    deadlines: tuple[Deadline, ...],
    days_before: tuple[int, ...],
    *,
    now: datetime,
) -> int:
    """On each of `days_before` days before a deadline (and on the day), remind every active union admin
    and admin once; returns how many notices were sent."""
    today = as_utc(now).astimezone(CHINA).date()
    sent = 0
    for deadline in deadlines:
        due = deadline.next_on_or_after(today)
        left = (due - today).days
        if left not in days_before and left != 0:
            continue
        if not _claim(session, f"deadline:{due.isoformat()}:{left}", now):
            continue
        when = "今天" if left == 0 else f"还有 {left} 天"
        text = (
            f"【报送提醒】{due.month}月{due.day}日是统计报送截止日期，{when}。"
            "请在“填报”页核对线下活动记录，并在“统计”页导出情况统计表。"
        )
        staff = session.scalars(
            select(StaffUser.id).where(
                StaffUser.role.in_(("union_admin", "admin")), StaffUser.active.is_(True)
            )
        ).all()
        sent += desk.notify_staff(session, None, kind="deadline", text=text, staff_ids=list(staff), now=now)
    return sent
