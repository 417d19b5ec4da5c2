"""Precomputed consultation counts, so a year's summary does not re-read a year of consultations.

For each day, and each region (None: no region), `report_counts` holds how many consultations opened
that day had each value of each counted column (`MEASURES`: channel, worker type, category,
resolution, rating); each month has the same, summed from its days. These counts are additive, so any
period adds them up: whole months from the monthly rows, the days around them from the daily rows.
What is not additive (distinct workers, percentiles) is not kept here.

Freshness is exact, not a matter of time. A consultation's `counted` flag says the counts include it as
it is now: it starts false, and `models.consultation` sets it false again in the same UPDATE whenever a
counted column changes (a rating weeks later, a lawyer closing a ticket, a worker type learnt). A day
with any uncounted consultation is *stale*: `counts` ignores its rows and counts that day from the
consultations themselves, so a summary is always what the consultations say, whether or not the
scheduler has run. `refresh` (the scheduler's "report-rollup" job, and `flask report rollup`) makes
stale days fresh again: for each, it marks the day's consultations counted, then recounts the day, in
one transaction, so a change committed meanwhile leaves its row uncounted and the day stale.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import groupby
from typing import Any

from sqlalchemy import and_, delete, func, insert, literal, or_, select, text, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from bot.sql import exclusive
from models import Consultation
from models.report import ReportCount

DAY, MONTH = "d", "m"
MEASURES = ("channel", "worker_type", "category", "resolution", "rating")
UNCOUNTED = text("NOT counted")  # as the partial index ix_consultations_uncounted says it
ROLLUP_LOCK = 0x776C_7263  # the key that serialises refreshes ("wlrc")


@dataclass
class Counts:
    """A period's consultations: per measure, per value (None: not set), and per day and region (with
    monthly rows, the day is the month's first)."""

    by_measure: dict[str, Counter[str | None]] = field(
        default_factory=lambda: {m: Counter() for m in MEASURES}
    )
    by_day_region: list[tuple[date, int | None, int]] = field(default_factory=list)


def in_regions(column: Any, regions: set[int] | None, unplaced: bool) -> ColumnElement[bool] | None:
    """`column` among `regions` (None: no condition), or NULL too when `unplaced`."""
    if regions is None:
        return None
    inside = column.in_(sorted(regions))
    return or_(inside, column.is_(None)) if unplaced else inside


def counts(
    session: Session, start: date, end: date, regions: set[int] | None, unplaced: bool, *, monthly: bool
) -> Counts:
    """The consultations opened in [start, end] in `regions`: fresh days from the rollup (whole months
    from the monthly rows when `monthly`), stale days from the consultations."""
    stale = set(
        session.scalars(
            select(Consultation.opened_on)
            .where(UNCOUNTED, Consultation.opened_on >= start, Consultation.opened_on <= end)
            .distinct()
        )
    )
    months = _whole_months(start, end, stale) if monthly else []
    in_months = {day for first in months for day in _days(first, _month_end(first))}
    fresh = [day for day in _days(start, end) if day not in stale and day not in in_months]
    out = Counts()
    rollup = []
    if months:
        rollup.append(and_(ReportCount.span == MONTH, ReportCount.day.in_(months)))
    if fresh:
        rollup.append(and_(ReportCount.span == DAY, _within(ReportCount.day, fresh)))
    if rollup:
        _add_rollup(session, out, [or_(*rollup), in_regions(ReportCount.region_id, regions, unplaced)])
    if stale:
        where = [_within(Consultation.opened_on, sorted(stale))]
        _add_live(session, out, [*where, in_regions(Consultation.region_id, regions, unplaced)])
    return out


def refresh(session: Session) -> int:
    """Recount every stale day and its month; one transaction (committed) per month. Returns the days
    recounted. Refreshes are serialised (`exclusive`), so two runners never write the same day twice.
    Give it a session that has not written yet."""
    days = sorted(
        session.scalars(
            select(Consultation.opened_on).where(UNCOUNTED, Consultation.opened_on.is_not(None)).distinct()
        )
    )
    for first, month_days in groupby(days, key=lambda d: d.replace(day=1)):
        exclusive(session, ROLLUP_LOCK)
        for day in month_days:
            _recount_day(session, day)
        _recount_month(session, first)
        session.commit()
    return len(days)


# --- reading ---------------------------------------------------------------------------------------------


def _add_rollup(session: Session, out: Counts, where: list) -> None:
    where = [w for w in where if w is not None]
    for measure, value, n in session.execute(
        select(ReportCount.measure, ReportCount.value, func.sum(ReportCount.n))
        .where(*where)
        .group_by(ReportCount.measure, ReportCount.value)
    ):
        out.by_measure[measure][value or None] += int(n)
    # Every consultation has exactly one channel: its rows add up to the consultations.
    out.by_day_region.extend(
        (day, region, int(n))
        for day, region, n in session.execute(
            select(ReportCount.day, ReportCount.region_id, func.sum(ReportCount.n))
            .where(*where, ReportCount.measure == "channel")
            .group_by(ReportCount.day, ReportCount.region_id)
        )
    )


def _add_live(session: Session, out: Counts, where: list) -> None:
    where = [w for w in where if w is not None]
    columns = [getattr(Consultation, m) for m in MEASURES]
    for *values, n in session.execute(select(*columns, func.count()).where(*where).group_by(*columns)):
        for measure, value in zip(MEASURES, values, strict=True):
            out.by_measure[measure][_stored(value) or None] += n
    out.by_day_region.extend(
        (day, region, n)
        for day, region, n in session.execute(
            select(Consultation.opened_on, Consultation.region_id, func.count())
            .where(*where)
            .group_by(Consultation.opened_on, Consultation.region_id)
        )
    )


# --- writing ---------------------------------------------------------------------------------------------


def _recount_day(session: Session, day: date) -> None:
    # Marked first: a consultation changed after this statement is uncounted again when it commits.
    session.execute(
        update(Consultation)
        .where(Consultation.opened_on == day, UNCOUNTED)
        .values(counted=True)
        .execution_options(synchronize_session=False)
    )
    columns = [getattr(Consultation, m) for m in MEASURES]
    totals: Counter[tuple[int | None, str, str]] = Counter()
    for region, *values, n in session.execute(
        select(Consultation.region_id, *columns, func.count())
        .where(Consultation.opened_on == day)
        .group_by(Consultation.region_id, *columns)
    ):
        for measure, value in zip(MEASURES, values, strict=True):
            totals[(region, measure, _stored(value))] += n
    session.execute(delete(ReportCount).where(ReportCount.span == DAY, ReportCount.day == day))
    if totals:
        session.execute(
            insert(ReportCount),
            [
                {"span": DAY, "day": day, "region_id": region, "measure": measure, "value": value, "n": n}
                for (region, measure, value), n in totals.items()
            ],
        )


def _recount_month(session: Session, first: date) -> None:
    session.execute(delete(ReportCount).where(ReportCount.span == MONTH, ReportCount.day == first))
    daily = (
        select(
            literal(MONTH),
            literal(first),
            ReportCount.region_id,
            ReportCount.measure,
            ReportCount.value,
            func.sum(ReportCount.n),
        )
        .where(ReportCount.span == DAY, ReportCount.day >= first, ReportCount.day <= _month_end(first))
        .group_by(ReportCount.region_id, ReportCount.measure, ReportCount.value)
    )
    session.execute(
        insert(ReportCount).from_select(["span", "day", "region_id", "measure", "value", "n"], daily)
    )


# --- days ------------------------------------------------------------------------------------------------


def _stored(value: Any) -> str:
    return "" if value is None else str(value)


def _days(start: date, end: date) -> Iterator[date]:
    for offset in range((end - start).days + 1):
        yield start + timedelta(days=offset)


def _month_end(first: date) -> date:
    return (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)


def _whole_months(start: date, end: date, stale: set[date]) -> list[date]:
    """First days of the months wholly inside [start, end] with no stale day."""
    out = []
    first = start if start.day == 1 else _month_end(start) + timedelta(days=1)
    while _month_end(first) <= end:
        if not any(day in stale for day in _days(first, _month_end(first))):
            out.append(first)
        first = _month_end(first) + timedelta(days=1)
    return out


def _ranges(days: Iterable[date]) -> list[tuple[date, date]]:
    """Sorted days as runs of consecutive days."""
    runs: list[list[date]] = []
    for day in sorted(days):
        if runs and day - runs[-1][1] == timedelta(days=1):
            runs[-1][1] = day
        else:
            runs.append([day, day])
    return [(a, b) for a, b in runs]


def _within(column: Any, days: Iterable[date]) -> ColumnElement[bool]:
    return or_(*(column.between(a, b) if a != b else column == a for a, b in _ranges(days)))
