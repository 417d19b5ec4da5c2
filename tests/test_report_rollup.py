"""The precomputed counts (`bot.report_rollup`) on SQLite and PostgreSQL: a summary is the same whether a
day is counted from the rollup or from the consultations, for any period and region; the rollup is
what fresh days are read from; any later change to a counted column (a rating, a lawyer closing a
ticket, a worker type learnt) shows at once and is recounted on the next refresh; and the job and the
`flask report rollup` command run it."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select, update

from app import create_app
from bot import report_rollup
from bot.reports import Scope
from models import Consultation, ReportCount
from scheduler.jobs import JOBS
from tests import test_bot_reports as known

NOW, add_consultations, summary = known.NOW, known.add_consultations, known.summary
world = known.world  # the same fixture: a city, two districts, three townships

FIRST = date(2026, 7, 20)
DAYS = 110  # 2026-07-20 .. 2026-11-06: two partial months around three whole ones
REGIONS = ("ta", "tb", "tc", "d1", "d2", "city", None)
TYPES = ("rider", "courier", "ride_hailing", "other_platform", "construction", "factory", "other", None)
CATEGORIES = ("wage_arrears", "work_injury", "labor_contract", "platform_work", "out_of_scope", None)
RESOLUTIONS = ("answered", "clarified", "lawyer", "referred", "escalated", "urgent", None)
SCOPES = [
    (date(2026, 7, 20), date(2026, 11, 6)),  # everything, monthly
    (date(2026, 8, 1), date(2026, 10, 31)),  # whole months only
    (date(2026, 7, 25), date(2026, 10, 3)),  # partial months on both sides
    (date(2026, 9, 1), date(2026, 9, 30)),  # one month, daily
    (date(2026, 9, 10), date(2026, 9, 12)),
    (date(2026, 11, 6), date(2026, 11, 6)),
]


def random_rows(seed: int, n: int) -> list[tuple]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        rows.append(
            (
                f"w{rng.randrange(60)}",  # workers come back, some in another channel or region
                rng.choice(("oa", "oa", "mp", "web")),
                FIRST + timedelta(days=rng.randrange(DAYS)),
                rng.choice(REGIONS),
                rng.choice(TYPES),
                rng.choice(CATEGORIES),
                rng.choice(RESOLUTIONS),
                rng.choice((None, None, 1, 2, 3, 4, 5)),
            )
        )
    return rows


def all_summaries(sessions, ids) -> dict:
    out = {}
    for start, end in SCOPES:
        for region in ("city", "d1", "ta", "d2", None):
            scope = Scope(start, end, ids[region] if region else None)
            out[(start, end, region)] = summary(sessions, scope)
    return out


def refresh(sessions) -> int:
    with sessions() as s:
        return report_rollup.refresh(s)


def uncounted(sessions) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(Consultation).where(report_rollup.UNCOUNTED))


def test_summaries_from_the_rollup_equal_those_from_the_consultations(world):
    sessions, ids = world
    add_consultations(sessions, ids, random_rows(seed=7, n=400))
    live = all_summaries(sessions, ids)
    assert live[(*SCOPES[0], None)]["consultations"]["total"] == 400
    assert uncounted(sessions) == 400

    days = refresh(sessions)
    assert 90 <= days <= DAYS
    assert uncounted(sessions) == 0
    with sessions() as s:
        spans = dict(s.execute(select(ReportCount.span, func.count()).group_by(ReportCount.span)).all())
    assert spans["d"] > 0 and spans["m"] > 0
    assert all_summaries(sessions, ids) == live
    assert refresh(sessions) == 0  # nothing changed: nothing to do


def test_fresh_days_are_read_from_the_rollup(world):
    """After a refresh a fresh day's figures come from `report_counts`: a change made behind the ORM's
    back (no `counted` reset; nothing in the product does this) is not seen until the day is stale."""
    sessions, ids = world
    add_consultations(sessions, ids, random_rows(seed=8, n=120))
    refresh(sessions)
    scope = Scope(FIRST, FIRST + timedelta(days=DAYS - 1))
    before = summary(sessions, scope)["consultations"]["by_channel"]
    with sessions() as s:
        s.execute(update(Consultation).values(channel="web"))
        s.commit()
    assert summary(sessions, scope)["consultations"]["by_channel"] == before
    with sessions() as s:
        s.execute(update(Consultation).values(counted=False))
        s.commit()
    assert summary(sessions, scope)["consultations"]["by_channel"]["web"]["consultations"] == 120


@pytest.mark.parametrize(
    "change",
    [
        {"rating": 1},
        {"resolution": "referred", "category": "out_of_scope"},
        {"worker_type": "courier"},
    ],
)
def test_a_change_after_the_refresh_counts_at_once_and_is_recounted(world, change):
    sessions, ids = world
    ids_made = add_consultations(sessions, ids, random_rows(seed=9, n=200))
    refresh(sessions)
    with sessions() as s:
        for consultation_id in ids_made[::7]:
            consultation = s.get(Consultation, consultation_id)
            for name, value in change.items():
                setattr(consultation, name, value)
            consultation.last_activity_at = consultation.last_activity_at  # an unrelated write too
        s.commit()
    actual = all_summaries(sessions, ids)
    assert 0 < uncounted(sessions) <= len(ids_made[::7])
    with sessions() as s:  # the truth: every day counted from the consultations themselves
        s.execute(update(Consultation).values(counted=False))
        s.commit()
    assert all_summaries(sessions, ids) == actual
    refresh(sessions)
    assert uncounted(sessions) == 0
    assert all_summaries(sessions, ids) == actual


def test_an_unrelated_write_leaves_the_day_counted(world):
    sessions, ids = world
    made = add_consultations(sessions, ids, random_rows(seed=10, n=30))
    refresh(sessions)
    with sessions() as s:
        consultation = s.get(Consultation, made[0])
        consultation.close_reason = "idle"
        s.commit()
    assert uncounted(sessions) == 0


def test_the_job_and_the_command_refresh(world, database_url):
    sessions, ids = world
    add_consultations(sessions, ids, random_rows(seed=11, n=50))
    job = JOBS["report-rollup"]
    assert job.func(sessions, wechat=None, now=NOW) > 0
    assert uncounted(sessions) == 0
    add_consultations(sessions, ids, [("late", "oa", date(2026, 11, 20), "ta", "rider", None, "answered", 5)])

    app = create_app({"TESTING": True, "SECRET_KEY": "t", "DATABASE_URL": database_url})
    result = app.test_cli_runner().invoke(args=["report", "rollup"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("1 day(s) recounted")
    assert uncounted(sessions) == 0


def test_a_change_committed_during_a_refresh_is_not_lost(world, monkeypatch):
    """A worker rates a consultation while the refresh is recounting its day: the rating's transaction
    waits for the refresh (the day's rows are marked first), then leaves its row uncounted, so the day is
    stale and the summary shows the rating at once; the next refresh counts it."""
    import threading

    sessions, ids = world
    made = add_consultations(sessions, ids, random_rows(seed=12, n=60))
    with sessions() as s:
        target = s.get(Consultation, made[0])
        day, before = target.opened_on, target.rating
    new_rating = 1 if before != 1 else 2
    paused, go_on = threading.Event(), threading.Event()
    original = report_rollup._recount_month

    def slow_month(session, first):
        original(session, first)
        if first == day.replace(day=1):
            paused.set()
            assert go_on.wait(10)

    monkeypatch.setattr(report_rollup, "_recount_month", slow_month)
    refresher = threading.Thread(target=refresh, args=(sessions,))
    refresher.start()
    assert paused.wait(10)

    def rate():
        with sessions() as s:
            s.get(Consultation, made[0]).rating = new_rating
            s.commit()

    rater = threading.Thread(target=rate)
    rater.start()
    rater.join(0.5)  # it waits for the refresh's transaction
    go_on.set()
    refresher.join(10)
    rater.join(10)
    assert not refresher.is_alive() and not rater.is_alive()
    assert uncounted(sessions) == 1
    scope = Scope(day, day)
    shown = summary(sessions, scope)["consultations"]["ratings"]["distribution"]
    with sessions() as s:
        truth = dict(
            s.execute(
                select(Consultation.rating, func.count())
                .where(Consultation.opened_on == day, Consultation.rating.is_not(None))
                .group_by(Consultation.rating)
            ).all()
        )
    assert shown == {str(k): truth.get(k, 0) for k in range(1, 6)}
    monkeypatch.setattr(report_rollup, "_recount_month", original)
    refresh(sessions)
    assert uncounted(sessions) == 0
    assert summary(sessions, scope)["consultations"]["ratings"]["distribution"] == shown
