"""The reports' scheduled work and command line, on SQLite and PostgreSQL: last month's snapshot made once
per region, the daily summary to union admins once a day after 08:00, reminders before the deadlines,
and `flask report form` writing the .xlsx and CSV files."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from bot import report_jobs
from bot.report_jobs import Deadline
from knowledge.worker_types import load
from models import Notice
from models.report import ReportSnapshot
from scheduler.jobs import JOBS
from tests.test_bot_reports import KNOWN, add_consultations, world  # noqa: F401 - fixture

# 2026-12-02 09:00 China time: November is over.
DEC_2 = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)


def _reports():
    from bot.reports import Reports

    return Reports(load())


def _desk(engine):
    from bot.tickets import Desk

    return Desk(engine.kb.replies)


def test_the_monthly_snapshot_is_made_once_per_region(world):  # noqa: F811
    sessions, ids = world
    add_consultations(sessions, ids, KNOWN)
    with sessions() as s:
        made = report_jobs.snapshot_month(s, _reports(), now=DEC_2)
        s.commit()
    assert made == 7  # everywhere + six regions
    with sessions() as s:
        again = report_jobs.snapshot_month(s, _reports(), now=DEC_2 + timedelta(hours=1))
        s.commit()
        assert again == 0
        d1 = s.scalars(select(ReportSnapshot).where(ReportSnapshot.region_id == ids["d1"])).one()
        assert (d1.start, d1.end) == (date(2026, 11, 1), date(2026, 11, 30))
        assert d1.data["consultations"]["total"] == 6


def test_the_daily_summary_goes_once_after_eight_to_each_union_admin(world, engine):  # noqa: F811
    sessions, ids = world
    add_consultations(
        sessions, ids, [("w1", "oa", date(2026, 12, 1), "ta", "rider", "wage_arrears", "answered", None)]
    )
    early = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)  # 07:30 on 12-02 in China
    with sessions() as s:
        assert report_jobs.daily_summary(s, _reports(), _desk(engine), now=early) == 0
        assert report_jobs.daily_summary(s, _reports(), _desk(engine), now=DEC_2) == 1
        assert report_jobs.daily_summary(s, _reports(), _desk(engine), now=DEC_2 + timedelta(minutes=10)) == 0
        s.commit()
        notice = s.scalars(select(Notice)).one()
    assert notice.staff_id == ids["admin_d1"] and notice.kind == "daily_summary"
    assert notice.text.startswith("【每日统计】12月1日一区总工会：咨询 1 人次（新就业形态劳动者 1 人次）")


def test_deadline_reminders_on_the_chosen_days_only_once(world, engine):  # noqa: F811
    sessions, _ = world
    deadlines = Deadline.parse_list("12-09, 02-29")
    with sessions() as s:
        sent = report_jobs.deadline_reminders(s, _desk(engine), deadlines, (7, 1), now=DEC_2)  # 7 days before
        again = report_jobs.deadline_reminders(
            s, _desk(engine), deadlines, (7, 1), now=DEC_2 + timedelta(hours=3)
        )
        quiet = report_jobs.deadline_reminders(
            s, _desk(engine), deadlines, (7, 1), now=DEC_2 + timedelta(days=1)
        )
        s.commit()
        texts = s.scalars(select(Notice.text)).all()
    assert (sent, again, quiet) == (2, 0, 0)  # the district's union admin and the admin
    assert texts[0].startswith("【报送提醒】12月9日是统计报送截止日期，还有 7 天")
    with pytest.raises(ValueError):
        Deadline.parse_list("13-01")
    assert Deadline(2, 29).next_on_or_after(date(2026, 12, 2)) == date(2028, 2, 29)


def test_the_report_jobs_are_scheduled():
    assert {"report-snapshots", "report-daily", "report-deadlines"} <= set(JOBS)


def test_flask_report_form_writes_the_files(app, tmp_path):
    from models import Region

    with app.extensions["workerlaw.sessions"]() as s:
        s.add(Region(code="city", name="市总工会", level="city"))
        s.commit()
    runner = app.test_cli_runner()
    out = tmp_path / "forms"
    result = runner.invoke(
        args=[
            "report",
            "form",
            "--start",
            "2026-11-01",
            "--end",
            "2026-11-30",
            "--region",
            "city",
            "--out",
            str(out),
        ]
    )
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in out.iterdir())
    assert files == [
        "情况统计表_市总工会_2026-11-01_2026-11-30.csv",
        "情况统计表_市总工会_2026-11-01_2026-11-30.xlsx",
    ]
    book = load_workbook(io.BytesIO((out / files[1]).read_bytes()))
    assert book["情况统计表"].cell(2, 1).value == "填报单位：市总工会"
    refused = runner.invoke(args=["report", "form", "--region", "nowhere", "--out", str(out)])
    assert refused.exit_code != 0 and "nowhere" in refused.output
    bad = runner.invoke(args=["report", "form", "--start", "2026-11-31", "--out", str(out)])
    assert bad.exit_code != 0 and "YYYY-MM-DD" in bad.output
    snap = runner.invoke(args=["report", "snapshot"])
    assert snap.exit_code == 0 and "snapshot" in snap.output
    with app.extensions["workerlaw.sessions"]() as s:
        assert s.scalar(select(func.count()).select_from(ReportSnapshot)) == 2
