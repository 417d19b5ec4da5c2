"""The duty roster (律师值班): who is on duty for a region at a moment, when the next shift starts, and
where an escalated question goes — the worker's region, else the union above it, up to the city pool.

Weekly patterns are in China time (the roster a union publishes); a holiday suspends the patterns for
that day (in its region, or everywhere), and dated shifts apply on top — a holiday shift is a dated
shift. Regions are few (hundreds), so the tree is read whole once per call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from models.org import Holiday, Lawyer, LawyerRegion, Region, Shift, Station, WeeklyShift

CHINA = timezone(timedelta(hours=8), "CST")
LOOKAHEAD_DAYS = 14


@dataclass(frozen=True)
class Duty:
    """A lawyer on duty for a region, from `start` to `end` (UTC), as primary or backup."""

    lawyer_id: int
    region_id: int
    role: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Routing:
    """Where an escalated question goes: the region whose duty lawyers get it, who is on duty there
    now (primary first), and — when nobody is — when the next shift starts (None: none in two weeks)."""

    region_id: int | None
    home_region_id: int | None
    on_duty: tuple[Duty, ...]
    next_start: datetime | None


class Tree:
    """The region hierarchy, read once: parents, children, names, levels."""

    def __init__(self, session: Session):
        rows = session.execute(
            select(Region.id, Region.parent_id, Region.code, Region.name, Region.level)
        ).all()
        self.parent = {r.id: r.parent_id for r in rows}
        self.name = {r.id: r.name for r in rows}
        self.level = {r.id: r.level for r in rows}
        self.by_code = {r.code: r.id for r in rows}
        self.children: dict[int | None, list[int]] = {}
        for r in rows:
            self.children.setdefault(r.parent_id, []).append(r.id)

    def chain(self, region_id: int | None) -> list[int]:
        """The region and every union above it, nearest first."""
        out: list[int] = []
        while region_id is not None and region_id not in out:
            out.append(region_id)
            region_id = self.parent.get(region_id)
        return out

    def subtree(self, region_id: int) -> set[int]:
        """The region and every region below it."""
        out, todo = set(), [region_id]
        while todo:
            current = todo.pop()
            if current not in out:
                out.add(current)
                todo.extend(self.children.get(current, []))
        return out

    def ancestor_at(self, region_id: int | None, level: str) -> int | None:
        """The nearest region of `level` in the chain (the district union of a township, say)."""
        return next((r for r in self.chain(region_id) if self.level[r] == level), None)

    def root(self) -> int | None:
        """The city union at the top (the first root when several were imported)."""
        roots = self.children.get(None, [])
        return min(roots) if roots else None


def _holidays(session: Session, region_id: int, start: date, end: date) -> set[date]:
    return set(
        session.scalars(
            select(Holiday.day).where(
                Holiday.day >= start,
                Holiday.day <= end,
                or_(Holiday.region_id.is_(None), Holiday.region_id == region_id),
            )
        )
    )


def duties(session: Session, region_id: int, start: datetime, end: datetime) -> list[Duty]:
    """Every duty of the region overlapping [start, end): dated shifts and weekly patterns."""
    found = [
        Duty(s.lawyer_id, region_id, s.role, s.starts_at, s.ends_at)
        for s in session.scalars(
            select(Shift).where(Shift.region_id == region_id, Shift.starts_at < end, Shift.ends_at > start)
        )
    ]
    patterns = list(session.scalars(select(WeeklyShift).where(WeeklyShift.region_id == region_id)))
    if patterns:
        first, last = start.astimezone(CHINA).date() - timedelta(days=1), end.astimezone(CHINA).date()
        off = _holidays(session, region_id, first, last)
        day = first
        while day <= last:
            if day not in off:
                for p in patterns:
                    if p.weekday == day.weekday():
                        s = datetime.combine(day, p.start_time, CHINA).astimezone(start.tzinfo)
                        e = datetime.combine(day, p.end_time, CHINA).astimezone(start.tzinfo)
                        if s < end and e > start:
                            found.append(Duty(p.lawyer_id, region_id, p.role, s, e))
            day += timedelta(days=1)
    active = set(session.scalars(select(Lawyer.id).where(Lawyer.active.is_(True))))
    return sorted((d for d in found if d.lawyer_id in active), key=lambda d: (d.start, d.role != "primary"))


def on_duty(session: Session, region_id: int, at: datetime) -> list[Duty]:
    """Who is on duty for the region at `at`, primary before backup, one entry per lawyer."""
    now_duties = [
        d for d in duties(session, region_id, at, at + timedelta(seconds=1)) if d.start <= at < d.end
    ]
    now_duties.sort(key=lambda d: d.role != "primary")
    seen: set[int] = set()
    out = []
    for d in now_duties:
        if d.lawyer_id not in seen:
            seen.add(d.lawyer_id)
            out.append(d)
    return out


def next_start(session: Session, region_id: int, after: datetime) -> datetime | None:
    """When the region's next duty starts after `after` (within two weeks)."""
    upcoming = [d.start for d in duties(session, region_id, after, after + timedelta(days=LOOKAHEAD_DAYS))]
    later = [s for s in upcoming if s > after]
    return min(later) if later else None


def home_region(
    session: Session, station_code: str | None, region_code: str | None, tree: Tree | None = None
) -> int | None:
    """The worker's region: their station's, else the region code they were given."""
    if station_code:
        region = session.scalar(select(Station.region_id).where(Station.code == station_code))
        if region is not None:
            return region
    if not region_code:
        return None
    if tree is not None:
        return tree.by_code.get(region_code)
    return session.scalar(select(Region.id).where(Region.code == region_code))


def route(session: Session, home: int | None, at: datetime, tree: Tree | None = None) -> Routing:
    """The nearest region (the worker's, then each union above, the city pool last) with a lawyer on
    duty now; if none, the worker's own region (or the city) and when its chain's next shift starts."""
    tree = tree or Tree(session)
    chain = tree.chain(home) if home is not None else []
    root = tree.root()
    if root is not None and root not in chain:
        chain.append(root)
    for region_id in chain:
        duty = on_duty(session, region_id, at)
        if duty:
            return Routing(region_id, home, tuple(duty), None)
    starts = [s for s in (next_start(session, r, at) for r in chain) if s is not None]
    target = chain[0] if chain else None
    return Routing(target, home, (), min(starts) if starts else None)


def served_regions(session: Session, lawyer_id: int, tree: Tree | None = None) -> set[int]:
    """The regions a lawyer serves, with every region below them."""
    tree = tree or Tree(session)
    out: set[int] = set()
    for region_id in session.scalars(
        select(LawyerRegion.region_id).where(LawyerRegion.lawyer_id == lawyer_id)
    ):
        out |= tree.subtree(region_id)
    return out


def local(moment: datetime) -> str:
    """A moment as a worker reads it: 11月23日 09:00 (China time)."""
    t = moment.astimezone(CHINA)
    return f"{t.month}月{t.day}日 {t:%H:%M}"
