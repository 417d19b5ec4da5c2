"""The union's counts for a period and a region: consultations (人次) and distinct workers (人数) from the
logs, by day, region (sub-regions rolled up), channel, worker type, category and resolution; the
lawyers' first-response times, timer breaches and outcomes; ratings; and the sums of the records staff
entered by hand (`bot.activities`).

Every figure is an aggregate computed by the database (GROUP BY, COUNT DISTINCT, SUM, ROW_NUMBER for
percentiles) over indexed columns; Python only folds the small grouped results into the
breakdowns. A consultation counts in the period of the day it opened (China time, `opened_on`) and in
the region it was opened for (`region_id`, fixed at opening). A region's figures include every region
below it; the city union at the top also sees consultations whose worker never named a region.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Float, String, and_, case, cast, distinct, func, literal, or_, select, union_all
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from bot import activities, report_rollup
from bot.report_rollup import in_regions
from bot.roster import Tree
from bot.sql import dialect_name
from knowledge.worker_types import UNKNOWN, WorkerTypes
from models import Consultation, Ticket
from models.activity import COUNT_FIELDS, ActivityRecord
from models.org import StaffUser

CHANNELS = ("oa", "mp", "web")
OFFLINE = "offline"
RESOLUTIONS = ("bot", "lawyer", "referred", "pending")
_RESOLUTION_GROUP = {
    "answered": "bot",
    "clarified": "bot",
    "lawyer": "lawyer",
    "referred": "referred",
    "escalated": "pending",
    "urgent": "pending",
}
DAILY_TREND_MAX_DAYS = 62  # longer periods are shown month by month
MAX_PERIOD_DAYS = 3 * 366
SORT_MEMORY = "64MB"  # PostgreSQL's work_mem while a summary runs


class ReportError(ValueError):
    """A period or region the report cannot be made for (the message is for the user); `status` is the
    HTTP status an API answers with (400 bad input, 403 not the user's to see)."""

    def __init__(self, message: str, *, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Scope:
    """What a report covers: days [start, end] in China time, and a region (None: everywhere)."""

    start: date
    end: date
    region_id: int | None = None

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ReportError("结束日期不能早于开始日期")
        if (self.end - self.start).days >= MAX_PERIOD_DAYS:
            raise ReportError("统计区间最长三年")


def _day(raw: str | None, name: str) -> date | None:
    if raw is None or raw == "":
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ReportError(f"{name}格式应为 YYYY-MM-DD") from None


def parse_scope(start: str | None, end: str | None, region: str | int | None, *, today: date) -> Scope:
    """A scope from query-string values; missing dates mean this month so far (China time)."""
    first = _day(start, "开始日期") or today.replace(day=1)
    last = _day(end, "结束日期") or today
    if region in (None, ""):
        return Scope(first, last)
    if isinstance(region, str) and not (region.isascii() and region.isdigit() and len(region) <= 10):
        raise ReportError("地区编号应为数字")
    region_id = int(region)
    if not 1 <= region_id <= 2**31 - 1:
        raise ReportError("地区不存在")
    return Scope(first, last, region_id)


def authorize(session: Session, user: StaffUser, scope: Scope) -> Scope:
    """The scope as `user` may see it: union admins their region and below (theirs by default), admins
    anything; lawyers no reports. ReportError(403) otherwise."""
    if user.role == "admin":
        return scope
    if user.role != "union_admin" or user.region_id is None:
        raise ReportError("只有工会管理员可以查看统计", status=403)
    if scope.region_id is None:
        return Scope(scope.start, scope.end, user.region_id)
    if scope.region_id not in Tree(session).subtree(user.region_id):
        raise ReportError("只能查看本级及下级地区的统计", status=403)
    return scope


def _regions(tree: Tree, scope: Scope) -> tuple[set[int] | None, bool]:
    """The region ids the scope covers (None: all) and whether consultations without a region count."""
    if scope.region_id is None:
        return None, True
    if scope.region_id not in tree.parent:
        raise ReportError("地区不存在")
    below, top = tree.subtree(scope.region_id), tree.parent[scope.region_id] is None
    if top and len(below) == len(tree.parent):
        # The only top region: every region is below it (and region ids are foreign keys), so a filter
        # would only cost time on every row.
        return None, True
    return below, top


def _consultation_filter(scope: Scope, regions: set[int] | None, unplaced: bool) -> list[ColumnElement[bool]]:
    where = [Consultation.opened_on >= scope.start, Consultation.opened_on <= scope.end]
    region = in_regions(Consultation.region_id, regions, unplaced)
    return [*where, region] if region is not None else where


def _ticket_filter(scope: Scope, regions: set[int] | None, unplaced: bool) -> list[ColumnElement[bool]]:
    """The tickets of the scope's consultations (a ticket carries its consultation's day and region)."""
    where = [Ticket.opened_on >= scope.start, Ticket.opened_on <= scope.end]
    region = in_regions(Ticket.report_region_id, regions, unplaced)
    return [*where, region] if region is not None else where


def _seconds(session: Session, later: Any, earlier: Any) -> ColumnElement[float]:
    """`later - earlier` in seconds, in the database's own date arithmetic."""
    if dialect_name(session) == "sqlite":
        return (func.julianday(later) - func.julianday(earlier)) * 86400.0
    return cast(func.extract("epoch", later - earlier), Float)


@contextmanager
def _sort_memory(session: Session) -> Iterator[None]:
    """On PostgreSQL, a larger work_mem for the summary's queries (SET LOCAL, put back afterwards): with
    the default 4 MB the sorts and hashes of a year's rows spill to disk. After an error the transaction
    is rolled back, which ends the setting too."""
    if dialect_name(session) != "postgresql":
        yield
        return
    before = session.scalar(select(func.current_setting("work_mem")))
    session.execute(select(func.set_config("work_mem", SORT_MEMORY, True)))
    yield
    session.execute(select(func.set_config("work_mem", before, True)))


def _percentiles(
    session: Session, value: ColumnElement[float], where: list, n: int, ps: tuple[float, ...]
) -> list[float | None]:
    """Nearest-rank percentiles `ps` of `value` over the `n` tickets matching `where`, found by the
    database in one sort: the values ranked `ceil(p * n)`."""
    if n == 0:
        return [None] * len(ps)
    ranks = [max(math.ceil(p * n) - 1, 0) + 1 for p in ps]
    ranked = (
        select(value.label("value"), func.row_number().over(order_by=value).label("rank"))
        .select_from(Ticket)
        .where(*where)
        .subquery()
    )
    found = dict(session.execute(select(ranked.c.rank, ranked.c.value).where(ranked.c.rank.in_(ranks))).all())
    return [found.get(rank) for rank in ranks]


class Reports:
    """Computes summaries; `types` is the curated list of worker types (`knowledge.worker_types`)."""

    def __init__(self, types: WorkerTypes, *, response_minutes: int = 30):
        self.types = types
        self.response_minutes = response_minutes

    def summary(
        self, session: Session, scope: Scope, *, now: datetime, tree: Tree | None = None
    ) -> dict[str, Any]:
        """Every count of the scope, as plain JSON-ready data."""
        tree = tree or Tree(session)
        regions, unplaced = _regions(tree, scope)
        where = _consultation_filter(scope, regions, unplaced)
        monthly = (scope.end - scope.start).days >= DAILY_TREND_MAX_DAYS  # the trend goes by month
        with _sort_memory(session):
            counted = report_rollup.counts(
                session, scope.start, scope.end, regions, unplaced, monthly=monthly
            )
            consultations = self._consultations(counted)
            consultations["workers"] = self._workers(session, where)
            by_day_region = counted.by_day_region
            offline = self._records(session, scope, regions)
            lawyers = self._lawyers(session, _ticket_filter(scope, regions, unplaced), now=now)
        consultations["by_channel"][OFFLINE] = {
            "consultations": offline["consultation"]["offline"]["all"]["person_times"],
            "workers": None,
        }
        region = None
        if scope.region_id is not None:
            region = {
                "id": scope.region_id,
                "name": tree.name[scope.region_id],
                "level": tree.level[scope.region_id],
            }
        return {
            "period": {"start": scope.start.isoformat(), "end": scope.end.isoformat()},
            "region": region,
            "consultations": consultations,
            "trend": _trend(scope, by_day_region),
            "regions": _regions_breakdown(tree, scope, by_day_region, unplaced),
            "active_regions": _active_levels(tree, by_day_region, offline["regions"]),
            "lawyers": lawyers,
            "records": offline["sums"],
        }

    def records_behind(
        self, session: Session, scope: Scope, *, tree: Tree | None = None
    ) -> list[dict[str, Any]]:
        """The entered records the scope's figures add up, one readable line each (`activities.describe`)."""
        tree = tree or Tree(session)
        regions, _ = _regions(tree, scope)
        query = (
            select(ActivityRecord, StaffUser.display_name, StaffUser.username)
            .outerjoin(StaffUser, StaffUser.id == ActivityRecord.created_by)
            .where(
                ActivityRecord.deleted_at.is_(None),
                ActivityRecord.day >= scope.start,
                ActivityRecord.day <= scope.end,
            )
            .order_by(ActivityRecord.day, ActivityRecord.id)
        )
        if regions is not None:
            query = query.where(ActivityRecord.region_id.in_(sorted(regions)))
        return [
            activities.describe(record, region=tree.name[record.region_id], entered_by=display or username)
            for record, display, username in session.execute(query)
        ]

    # --- consultations -------------------------------------------------------------------------------

    def _consultations(self, counted: report_rollup.Counts) -> dict[str, Any]:
        measures = counted.by_measure
        total = sum(measures["channel"].values())
        new_codes = set(self.types.new_form_codes)
        by_type: Counter[str] = Counter()
        for worker_type, n in measures["worker_type"].items():
            by_type[worker_type if worker_type in self.types.by_code else UNKNOWN] += n
        new_form = sum(n for code, n in by_type.items() if code in new_codes)
        by_channel = measures["channel"]
        by_category: Counter[str] = Counter()
        for category, n in measures["category"].items():
            by_category[category or "none"] += n
        by_resolution: Counter[str] = Counter({r: 0 for r in RESOLUTIONS})
        for resolution, n in measures["resolution"].items():
            by_resolution[_RESOLUTION_GROUP.get(resolution or "", "pending")] += n
        ratings = Counter({int(rating): n for rating, n in measures["rating"].items() if rating is not None})
        rated = sum(ratings.values())
        return {
            "total": total,
            "new_form": new_form,
            "by_channel": {c: {"consultations": by_channel.get(c, 0)} for c in CHANNELS},
            "by_worker_type": {
                code: {
                    "label": self.types.label(code),
                    "new_form": code in new_codes,
                    "consultations": by_type.get(code, 0),
                }
                for code in (*self.types.codes, UNKNOWN)
            },
            "by_category": dict(by_category.most_common()),
            "by_resolution": dict(by_resolution),
            "ratings": {
                "count": rated,
                "average": round(sum(k * v for k, v in ratings.items()) / rated, 2) if rated else None,
                "distribution": {str(k): ratings.get(k, 0) for k in range(1, 6)},
            },
        }

    def _workers(self, session: Session, where: list) -> dict[str, Any]:
        """Distinct workers (人数): overall, 新就业形态, per channel and per worker type. The scope's
        (worker, channel, type) combinations are found once (one pass over the rows, a common table
        expression the database keeps), then each figure counts distinct workers among them, all in one
        statement. Not additive, so never precomputed."""
        known = list(self.types.codes)
        combos = (
            select(Consultation.worker_id, Consultation.channel, Consultation.worker_type)
            .where(*where)
            .group_by(Consultation.worker_id, Consultation.channel, Consultation.worker_type)
            .cte("combos")
        )
        workers = func.count(distinct(combos.c.worker_id))

        def figure(name: str, key: Any = None) -> Any:
            return select(literal(name).label("figure"), cast(key, String).label("key"), workers)

        unknown = or_(combos.c.worker_type.is_(None), combos.c.worker_type.not_in(known))
        rows = session.execute(
            union_all(
                figure("total"),
                figure("new_form").where(combos.c.worker_type.in_(list(self.types.new_form_codes))),
                figure("unknown").where(unknown),
                figure("channel", combos.c.channel).group_by(combos.c.channel),
                figure("type", combos.c.worker_type).where(~unknown).group_by(combos.c.worker_type),
            )
        ).all()
        found = {(name, key): int(n) for name, key, n in rows}
        by_type = {code: found.get(("type", code), 0) for code in known}
        by_type[UNKNOWN] = found.get(("unknown", None), 0)
        return {
            "total": found.get(("total", None), 0),
            "new_form": found.get(("new_form", None), 0),
            "by_channel": {c: found.get(("channel", c), 0) for c in CHANNELS},
            "by_worker_type": by_type,
        }

    # --- lawyers -------------------------------------------------------------------------------------

    def _lawyers(self, session: Session, where: list, *, now: datetime) -> dict[str, Any]:
        waited = _seconds(session, Ticket.first_response_at, Ticket.created_at)
        late = now - timedelta(minutes=self.response_minutes)
        target = self.response_minutes * 60
        # One pass over the scope's tickets, grouped by outcome and lawyer (a few hundred rows at most):
        # the counts are their sums, the lawyers who responded the groups with a response.
        rows = session.execute(
            select(
                Ticket.outcome,
                Ticket.lawyer_id,
                func.count(),
                func.count(Ticket.first_response_at),
                func.count(Ticket.backup_notified_at),
                func.count(Ticket.admin_notified_at),
                func.sum(
                    case(
                        (and_(Ticket.first_response_at.is_not(None), waited > target), 1),
                        (
                            and_(
                                Ticket.first_response_at.is_(None),
                                Ticket.closed_at.is_(None),
                                Ticket.created_at < late,
                            ),
                            1,
                        ),
                        else_=0,
                    )
                ),
                func.sum(case((Ticket.urgent.is_(True), 1), else_=0)),
            )
            .select_from(Ticket)
            .where(*where)
            .group_by(Ticket.outcome, Ticket.lawyer_id)
        ).all()
        tickets = responded = backup = admin = slow = urgent = 0
        outcomes: Counter[str | None] = Counter()
        lawyers: set[int] = set()
        for outcome, lawyer, *counts in rows:
            n, answered, backups, admins, slows, urgents = (int(v or 0) for v in counts)
            tickets, responded, backup = tickets + n, responded + answered, backup + backups
            admin, slow, urgent = admin + admins, slow + slows, urgent + urgents
            outcomes[outcome] += n
            if answered and lawyer is not None:
                lawyers.add(lawyer)
        answered_where = [*where, Ticket.first_response_at.is_not(None)]
        median, p90 = _percentiles(session, waited, answered_where, responded, (0.5, 0.9))
        return {
            "tickets": tickets,
            "urgent": urgent,
            "responded": responded,
            "lawyers_responding": len(lawyers),
            "first_response_minutes": {
                "median": None if median is None else round(median / 60, 1),
                "p90": None if p90 is None else round(p90 / 60, 1),
                "target": self.response_minutes,
            },
            "breaches": {"backup_notified": backup, "admins_notified": admin, "late_first_response": slow},
            "by_outcome": {
                (k or "open"): outcomes[k] for k in sorted(outcomes, key=lambda k: (k is not None, k or ""))
            },
        }

    # --- records entered by staff ----------------------------------------------------------------------

    @staticmethod
    def _records(session: Session, scope: Scope, regions: set[int] | None) -> dict[str, Any]:
        where = [
            ActivityRecord.deleted_at.is_(None),
            ActivityRecord.day >= scope.start,
            ActivityRecord.day <= scope.end,
        ]
        if regions is not None:
            where.append(ActivityRecord.region_id.in_(sorted(regions)))
        fields = [*COUNT_FIELDS, "amount"]
        rows = session.execute(
            select(
                ActivityRecord.kind,
                ActivityRecord.online,
                ActivityRecord.new_form,
                ActivityRecord.topic,
                func.count(),
                *(func.sum(getattr(ActivityRecord, f)) for f in fields),
            )
            .where(*where)
            .group_by(
                ActivityRecord.kind, ActivityRecord.online, ActivityRecord.new_form, ActivityRecord.topic
            )
        ).all()
        # sums[kind][online|offline][new_form|all][field]; legal aid also per topic
        sums: dict[str, Any] = defaultdict(
            lambda: {
                mode: {group: _zero(fields) for group in ("new_form", "all")}
                for mode in ("online", "offline")
            }
        )
        for kind, online, new_form, topic, count, *values in rows:
            mode = "online" if online else "offline"
            targets = [sums[kind][mode]["all"]]
            if new_form:
                targets.append(sums[kind][mode]["new_form"])
            if topic:
                topical = sums[f"{kind}:{topic}"][mode]
                targets.append(topical["all"])
                if new_form:
                    targets.append(topical["new_form"])
            for target in targets:
                target["records"] += count
                for name, value in zip(fields, values, strict=True):
                    target[name] += Decimal(value or 0) if name == "amount" else int(value or 0)
        notices = session.execute(
            select(ActivityRecord.day, ActivityRecord.issuer)
            .where(*where, ActivityRecord.kind == "notice")
            .order_by(ActivityRecord.day)
        ).all()
        record_regions = set(session.scalars(select(ActivityRecord.region_id).where(*where).distinct()))
        plain = {kind: _plain(value) for kind, value in sums.items()}
        plain["notices"] = [{"day": d.isoformat(), "issuer": issuer} for d, issuer in notices]
        return {"sums": plain, "consultation": sums["consultation"], "regions": record_regions}


def _zero(fields: list[str]) -> dict[str, Any]:
    return {"records": 0, **{f: (Decimal(0) if f == "amount" else 0) for f in fields}}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Decimal):
        return float(value)
    return value


def _trend(scope: Scope, by_day_region: list) -> list[dict[str, Any]]:
    per_day: Counter[date] = Counter()
    for day, _region, n in by_day_region:
        per_day[day if isinstance(day, date) else date.fromisoformat(str(day))] += n
    if (scope.end - scope.start).days < DAILY_TREND_MAX_DAYS:
        days = (scope.start + timedelta(days=i) for i in range((scope.end - scope.start).days + 1))
        return [{"period": d.isoformat(), "consultations": per_day.get(d, 0)} for d in days]
    months: Counter[str] = Counter({m: 0 for m in _months(scope.start, scope.end)})
    for day, n in per_day.items():
        months[day.strftime("%Y-%m")] += n
    return [{"period": m, "consultations": n} for m, n in sorted(months.items())]


def _months(start: date, end: date) -> list[str]:
    out, current = [], start.replace(day=1)
    while current <= end:
        out.append(current.strftime("%Y-%m"))
        current = (current + timedelta(days=32)).replace(day=1)
    return out


def _regions_breakdown(tree: Tree, scope: Scope, by_day_region: list, unplaced: bool) -> list[dict[str, Any]]:
    """Consultations per region one level below the scope's (each with everything beneath it)."""
    children = (
        tree.children.get(scope.region_id, []) if scope.region_id is not None else tree.children.get(None, [])
    )
    owner: dict[int, int] = {}
    for child in children:
        for region in tree.subtree(child):
            owner[region] = child
    counts: Counter[int | None] = Counter()
    for _day, region, n in by_day_region:
        if region is not None and region in owner:
            counts[owner[region]] += n
        elif region is not None and region == scope.region_id:
            counts[region] += n
        elif region is None and unplaced:
            counts[None] += n
    out = [
        {"id": child, "name": tree.name[child], "consultations": counts.get(child, 0)}
        for child in sorted(children, key=lambda c: tree.name[c])
    ]
    if scope.region_id is not None and counts.get(scope.region_id):
        out.append(
            {
                "id": scope.region_id,
                "name": f"{tree.name[scope.region_id]}（本级）",
                "consultations": counts[scope.region_id],
            }
        )
    if counts.get(None):
        out.append({"id": None, "name": "未归属地区", "consultations": counts[None]})
    return out


def _active_levels(tree: Tree, by_day_region: list, record_regions: set[int]) -> dict[str, int]:
    """How many cities and districts had any consultation or entered record (the form's 参与地区数量)."""
    active = {region for _day, region, n in by_day_region if region is not None and n} | record_regions
    cities = {tree.ancestor_at(r, "city") for r in active} - {None}
    districts = {tree.ancestor_at(r, "district") for r in active} - {None}
    return {"cities": len(cities), "districts": len(districts)}
