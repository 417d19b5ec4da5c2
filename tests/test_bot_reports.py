"""The union's counts on known data, on SQLite and PostgreSQL: consultations and workers by region (rolled
up), channel, worker type, category and resolution; lawyers' response times and breaches; ratings; the
entered records with their validation and history; and the 附件3 form filled from them (.xlsx and CSV)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from bot import activities
from bot.activities import RecordError
from bot.report_form import TABLES, cells, to_csv, to_xlsx
from bot.reports import ReportError, Reports, Scope
from bot.staff import create_user
from knowledge.worker_types import load
from models import Consultation, Region, Ticket, Worker, make_engine, make_sessionmaker
from models.activity import ActivityChange, ActivityRecord
from models.org import Lawyer
from models.schema import upgrade

NOW = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)
NOV = Scope(date(2026, 11, 1), date(2026, 11, 30))


@pytest.fixture
def world(database_url):
    """City → districts D1 (townships A, B) and D2 (township C); staff: D1's union admin and an admin."""
    db = make_engine(database_url)
    upgrade(db)
    sessions = make_sessionmaker(db)
    with sessions() as s:
        ids = {}

        def region(code, name, level, parent=None):
            row = Region(code=code, name=name, level=level, parent_id=ids.get(parent))
            s.add(row)
            s.flush()
            ids[code] = row.id

        region("city", "市总工会", "city")
        region("d1", "一区总工会", "district", "city")
        region("d2", "二区总工会", "district", "city")
        region("ta", "甲街道工会", "township", "d1")
        region("tb", "乙镇工会", "township", "d1")
        region("tc", "丙镇工会", "township", "d2")
        lawyers = [Lawyer(name=n) for n in ("王律师", "李律师")]
        s.add_all(lawyers)
        s.flush()
        ids["wang"], ids["li"] = lawyers[0].id, lawyers[1].id
        ids["admin_d1"] = create_user(
            s, username="admin_d1", password="admin-password", role="union_admin", region_id=ids["d1"]
        ).id
        ids["admin"] = create_user(s, username="admin", password="admin-password", role="admin").id
        ids["lawyer"] = create_user(
            s, username="wang", password="wang-password", role="lawyer", lawyer_id=ids["wang"]
        ).id
        s.commit()
    yield sessions, ids
    db.dispose()


def add_consultations(sessions, ids, rows):
    """rows: (openid, channel, day, region code or None, worker_type, category, resolution, rating)."""
    with sessions() as s:
        workers: dict[tuple[str, str], int] = {}
        out = []
        for openid, channel, day, region, kind, category, resolution, rating in rows:
            key = (channel, openid)
            if key not in workers:
                w = Worker(channel=channel, openid=openid)
                s.add(w)
                s.flush()
                workers[key] = w.id
            opened = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=2)
            c = Consultation(
                worker_id=workers[key],
                channel=channel,
                worker_type=kind,
                region_id=ids[region] if region else None,
                opened_on=day,
                opened_at=opened,
                last_activity_at=opened,
                closed_at=opened + timedelta(hours=1),
                category=category,
                resolution=resolution,
                rating=rating,
            )
            s.add(c)
            s.flush()
            out.append(c.id)
        s.commit()
        return out


D = date(2026, 11, 5)
KNOWN = [
    # Township A (district 1): a rider twice, a courier on the mini-program, a builder.
    ("w1", "oa", D, "ta", "rider", "wage_arrears", "answered", 5),
    ("w1", "oa", D + timedelta(days=1), "ta", "rider", "platform_work", "lawyer", 3),
    ("w2", "mp", D, "ta", "courier", "work_injury", "clarified", None),
    ("w3", "oa", D + timedelta(days=2), "ta", "construction", "wage_arrears", "escalated", None),
    # Township B (district 1): a driver, and a worker who never said their job.
    ("w4", "web", D, "tb", "ride_hailing", "labor_contract", "referred", 4),
    ("w5", "oa", D, "tb", None, "wage_arrears", "answered", None),
    # District 2, no region, and a consultation in October (outside the period).
    ("w6", "oa", D, "tc", "rider", "wage_arrears", "answered", 1),
    ("w7", "oa", D, None, "factory", "social_insurance", "answered", None),
    ("w8", "oa", date(2026, 10, 31), "ta", "rider", "wage_arrears", "answered", None),
]


def summary(sessions, scope, ids=None):
    with sessions() as s:
        return Reports(load()).summary(s, scope, now=NOW)


def test_counts_by_region_channel_type_category_and_resolution(world):
    sessions, ids = world
    add_consultations(sessions, ids, KNOWN)
    d1 = summary(sessions, Scope(NOV.start, NOV.end, ids["d1"]))
    c = d1["consultations"]
    assert (c["total"], c["workers"]["total"]) == (6, 5)  # w1 twice: 6 人次, 5 人数
    assert (c["new_form"], c["workers"]["new_form"]) == (4, 3)  # rider ×2, courier, driver
    assert {k: v["consultations"] for k, v in c["by_channel"].items()} == {
        "oa": 4,
        "mp": 1,
        "web": 1,
        "offline": 0,
    }
    assert c["workers"]["by_channel"] == {"oa": 3, "mp": 1, "web": 1}
    types = {k: v["consultations"] for k, v in c["by_worker_type"].items() if v["consultations"]}
    assert types == {"rider": 2, "courier": 1, "ride_hailing": 1, "construction": 1, "unknown": 1}
    assert c["workers"]["by_worker_type"]["rider"] == 1
    assert c["by_category"] == {"wage_arrears": 3, "platform_work": 1, "work_injury": 1, "labor_contract": 1}
    assert c["by_resolution"] == {"bot": 3, "lawyer": 1, "referred": 1, "pending": 1}
    assert c["ratings"] == {
        "count": 3,
        "average": 4.0,
        "distribution": {"1": 0, "2": 0, "3": 1, "4": 1, "5": 1},
    }
    assert [(r["name"], r["consultations"]) for r in d1["regions"]] == [("乙镇工会", 2), ("甲街道工会", 4)]
    trend = {t["period"]: t["consultations"] for t in d1["trend"] if t["consultations"]}
    assert trend == {"2026-11-05": 4, "2026-11-06": 1, "2026-11-07": 1}
    assert len(d1["trend"]) == 30
    # The city sees every region and the consultation nobody placed; a township only itself.
    city = summary(sessions, Scope(NOV.start, NOV.end, ids["city"]))
    assert city["consultations"]["total"] == 8
    assert [(r["name"], r["consultations"]) for r in city["regions"]] == [
        ("一区总工会", 6),
        ("二区总工会", 1),
        ("未归属地区", 1),
    ]
    assert summary(sessions, Scope(NOV.start, NOV.end, ids["tb"]))["consultations"]["total"] == 2
    assert summary(sessions, Scope(date(2026, 10, 1), date(2026, 11, 30)))["consultations"]["total"] == 9
    year = summary(sessions, Scope(date(2026, 1, 1), date(2026, 12, 31)))
    assert [t["period"] for t in year["trend"]][:2] == ["2026-01", "2026-02"] and len(year["trend"]) == 12
    assert {t["period"]: t["consultations"] for t in year["trend"]}["2026-11"] == 8


def test_lawyers_first_response_median_p90_and_breaches(world):
    sessions, ids = world
    consultations = add_consultations(
        sessions, ids, [(f"t{i}", "oa", D, "ta", "rider", "wage_arrears", "lawyer", None) for i in range(5)]
    )
    created = datetime(2026, 11, 5, 2, 0, tzinfo=UTC)
    with sessions() as s:
        waits = [10, 20, 40, None, None]  # minutes to the first reply; two never answered
        for i, (cid, wait) in enumerate(zip(consultations, waits, strict=True)):
            s.add(
                Ticket(
                    consultation_id=cid,
                    worker_id=s.get(Consultation, cid).worker_id,
                    region_id=ids["ta"],
                    status="closed" if i < 3 else "open",
                    lawyer_id=ids["wang"] if i != 1 else ids["li"],
                    created_at=created,
                    first_response_at=created + timedelta(minutes=wait) if wait else None,
                    closed_at=created + timedelta(hours=2) if i < 3 else None,
                    outcome="answered" if i < 3 else None,
                    backup_notified_at=created + timedelta(minutes=15) if i >= 2 else None,
                    admin_notified_at=created + timedelta(minutes=60) if i == 4 else None,
                    urgent=i == 4,
                )
            )
        s.commit()
    lawyers = summary(sessions, Scope(NOV.start, NOV.end, ids["d1"]))["lawyers"]
    assert lawyers["first_response_minutes"] == {"median": 20.0, "p90": 40.0, "target": 30}
    assert (lawyers["tickets"], lawyers["responded"], lawyers["urgent"]) == (5, 3, 1)
    assert lawyers["lawyers_responding"] == 2
    # Late: one answered after 40 minutes, two still waiting far beyond 30 minutes.
    assert lawyers["breaches"] == {"backup_notified": 3, "admins_notified": 1, "late_first_response": 3}
    assert lawyers["by_outcome"] == {"answered": 3, "open": 2}
    assert summary(sessions, Scope(NOV.start, NOV.end, ids["d2"]))["lawyers"]["tickets"] == 0


def _admin(s, ids, name="admin_d1"):
    from models import StaffUser

    return s.get(StaffUser, ids[name])


def test_records_are_validated_scoped_and_every_change_is_kept(world):
    sessions, ids = world
    with sessions() as s:
        clerk = _admin(s, ids)
        record = activities.create(
            s,
            clerk,
            region_id=ids["ta"],
            kind="lecture",
            values={"day": "2026-11-03", "sessions": "2", "people": 80, "online": True},
            now=NOW,
        )
        record_id = record.id
        bad = [
            ({"day": "2026-11-03", "sessions": -1, "people": 3}, "sessions"),
            ({"day": "2026-11-03", "sessions": 1}, "people"),
            ({"day": "2026-11-23", "sessions": 1, "people": 3}, "day"),  # tomorrow in China
            ({"day": "2026-11-03", "sessions": "两场", "people": 3}, "sessions"),
            ({"day": "2026-11-03", "sessions": 1, "people": 3, "copies": 5}, "copies"),
            ({"day": "2026-11-03", "sessions": 1, "people": 3, "amount": "1"}, "amount"),
        ]
        for values, field in bad:
            with pytest.raises(RecordError) as refused:
                activities.create(s, clerk, region_id=ids["ta"], kind="lecture", values=values, now=NOW)
            assert refused.value.field == field and refused.value.status == 400
        with pytest.raises(RecordError) as refused:
            activities.create(
                s,
                clerk,
                region_id=ids["ta"],
                kind="leaflets",
                values={"day": "2026-11-03", "copies": 9, "online": True},
                now=NOW,
            )
        assert "线下" in str(refused.value)
        with pytest.raises(RecordError) as refused:
            activities.create(
                s,
                clerk,
                region_id=ids["tc"],
                kind="leaflets",
                values={"day": "2026-11-03", "copies": 9},
                now=NOW,
            )
        assert refused.value.status == 403  # district 1's clerk cannot write for district 2
        with pytest.raises(RecordError) as refused:
            activities.create(
                s,
                _admin(s, ids, "lawyer"),
                region_id=ids["ta"],
                kind="leaflets",
                values={"day": "2026-11-03", "copies": 9},
                now=NOW,
            )
        assert refused.value.status == 403
        s.commit()
    with sessions() as s:
        clerk = _admin(s, ids)
        activities.update(
            s,
            clerk,
            record_id,
            values={"day": "2026-11-03", "sessions": 3, "people": 120, "online": True},
            now=NOW + timedelta(hours=1),
        )
        s.commit()
    with sessions() as s:
        changes = activities.history(s, record_id)
        assert [c.action for c in changes] == ["create", "update"]
        assert changes[1].before["people"] == 80 and changes[1].after["people"] == 120
        assert changes[1].staff_id == ids["admin_d1"]
        with pytest.raises(RecordError) as hidden:
            activities.get(s, _admin(s, ids, "admin"), 999999)
        assert hidden.value.status == 404
        activities.delete(s, _admin(s, ids, "admin"), record_id, now=NOW + timedelta(hours=2))
        s.commit()
    with sessions() as s:
        row = s.get(ActivityRecord, record_id)
        assert row.deleted_at is not None
        assert s.scalar(select(ActivityChange.action).order_by(ActivityChange.id.desc()).limit(1)) == "delete"
        assert activities.listing(s, _admin(s, ids), start=NOV.start, end=NOV.end) == []


SEED_HEADERS = [
    [
        ("下发通知（方案）", "发文时间"),
        ("下发通知（方案）", "发文单位"),
        ("参与地区数量", "市（地）"),
        ("参与地区数量", "县（区）"),
        ("人员组织情况", "参与律协（个）"),
        ("人员组织情况", "组建队伍（个）"),
        ("人员组织情况", "参与律师（人）"),
        ("人员组织情况", "参与“全国维护职工权益杰出律师”（人）"),
        ("线上法律服务情况", "面向新就业形态劳动者普法宣讲（场次/人数）"),
        ("线上法律服务情况", "为新就业形态劳动者提供法律咨询（人次）"),
        ("线上法律服务情况", "为新就业形态劳动者调处劳动争议（件/人次）"),
        ("线下法治宣传情况", "向新就业形态劳动者发放宣传资料（份）"),
        ("线下法治宣传情况", "面向新就业形态劳动者普法宣讲（场次/人数）"),
        ("线下法治宣传情况", "为新就业形态劳动者提供法律咨询（人次）"),
        ("线下法治宣传情况", "惠及新就业形态劳动者（人次）"),
    ],
    [
        ("线下劳动用工“法治体检”情况", "覆盖平台企业及其合作用工企业数量（个）"),
        ("线下劳动用工“法治体检”情况", "为企业提供劳动用工法律咨询（件）"),
        ("线下劳动用工“法治体检”情况", "为企业提供劳动用工法律风险评估（件）"),
        ("线下劳动用工“法治体检”情况", "帮助企业建立健全劳动关系矛盾预防化解机制（项）"),
        ("线下劳动争议调处和法律援助情况", "为新就业形态劳动者调处劳动争议（件/人次）"),
        ("线下劳动争议调处和法律援助情况", "办理新就业形态劳动者法律援助案件（件/人次）"),
        ("线下劳动争议调处和法律援助情况", "挽回新就业形态劳动者经济损失（万元）"),
        ("线下劳动争议调处和法律援助情况", "办理新就业形态劳动者工资拖欠法律援助案件（件/追回金额）"),
        ("线下劳动争议调处和法律援助情况", "办理新就业形态劳动者工伤赔偿法律援助案件（件）"),
        ("线下劳动争议调处和法律援助情况", "金额（万元）"),
        ("投入资金", "投入资金（万元）"),
    ],
]


def _enter(world, region, kind, **values):
    sessions, ids = world
    with sessions() as s:
        clerk = _admin(s, ids, "admin")
        record = activities.create(s, clerk, region_id=ids[region], kind=kind, values=values, now=NOW)
        s.commit()
        return record.id


def test_the_form_is_filled_from_logs_and_records_for_a_month_and_a_region(world):
    sessions, ids = world
    add_consultations(sessions, ids, KNOWN)
    day = "2026-11-10"
    _enter(world, "d1", "notice", day="2026-11-02", issuer="一区总工会")
    _enter(world, "d1", "team", day=day, associations=1, teams=2, lawyers=12, outstanding_lawyers=1)
    _enter(world, "ta", "lecture", day=day, sessions=2, people=80, online=True)
    _enter(world, "tb", "lecture", day=day, sessions=1, people=45)
    _enter(world, "tb", "lecture", day=day, sessions=5, people=500, new_form=False)  # not counted
    _enter(world, "ta", "leaflets", day=day, copies=300)
    _enter(world, "ta", "consultation", day=day, person_times=25)
    _enter(world, "ta", "consultation", day=day, person_times=7, online=True)
    _enter(world, "ta", "outreach", day=day, person_times=400)
    _enter(world, "ta", "checkup", day=day, enterprises=3, consultations=4, assessments=2, mechanisms=1)
    _enter(world, "ta", "mediation", day=day, cases=2, person_times=5)
    _enter(world, "ta", "mediation", day=day, cases=1, person_times=1, online=True)
    _enter(world, "ta", "legal_aid", day=day, cases=2, person_times=3, amount="1.5", topic="wage")
    _enter(world, "tb", "legal_aid", day=day, cases=1, person_times=1, amount="4.25", topic="injury")
    _enter(world, "tb", "legal_aid", day=day, cases=1, person_times=2, topic="other")
    _enter(world, "d1", "funds", day=day, amount="2")
    _enter(world, "tc", "leaflets", day=day, copies=999)  # district 2: not in district 1's form
    gone = _enter(world, "ta", "leaflets", day=day, copies=1000)
    with sessions() as s:
        activities.delete(s, _admin(s, ids, "admin"), gone, now=NOW)
        s.commit()
    data = summary(sessions, Scope(NOV.start, NOV.end, ids["d1"]))
    tables = cells(data)
    assert [[(g, h) for g, h, _ in t] for t in tables] == SEED_HEADERS
    values = [[v for _, _, v in t] for t in tables]
    assert values[0] == [
        "2026-11-02",
        "一区总工会",
        1,  # one city
        1,  # one district: district 1
        1,
        2,
        12,  # lawyers entered; none answered a ticket in the system this month
        1,
        "2/80",
        4 + 7,  # logged 新就业形态 consultations + entered online ones
        "1/1",
        300,
        "1/45",
        25,
        400,
    ]
    assert values[1] == [3, 4, 2, 1, "2/5", "4/6", "5.75", "2/1.50", 1, "4.25", "2.00"]
    # The workbook carries the same cells, headers merged as in the seed, and the records behind them.
    book = load_workbook(
        io.BytesIO(to_xlsx(data, records=[{"id": 1, "kind": "lecture"}], made_on=date(2026, 12, 1)))
    )
    sheet = book["情况统计表"]
    assert sheet.cell(1, 1).value.startswith("2026年“尊法守法·携手筑梦”")
    assert sheet.cell(2, 1).value == "填报单位：一区总工会"
    assert [sheet.cell(5, c).value for c in range(1, 16)] == [h for _, h in SEED_HEADERS[0]]
    assert [sheet.cell(6, c).value for c in range(1, 16)] == values[0]
    assert [sheet.cell(9, c).value for c in range(1, 12)] == [h for _, h in SEED_HEADERS[1]]
    assert [sheet.cell(10, c).value for c in range(1, 12)] == values[1]
    assert "A4:B4" in {str(r) for r in sheet.merged_cells.ranges}
    assert book["填报记录"].cell(2, 4).value == "lecture"
    lines = list(csv.reader(io.StringIO(to_csv(data).lstrip("\ufeff"))))
    assert lines[0] == ["表", "分组", "项目", "数值"]
    assert lines[10] == ["1", "线上法律服务情况", "为新就业形态劳动者提供法律咨询（人次）", "11"]
    assert len([row for row in lines if row and row[0] in ("1", "2")]) == sum(
        len(g.columns) for t in TABLES for g in t
    )


def test_a_bad_period_or_region_is_refused(world):
    sessions, ids = world
    with pytest.raises(ReportError):
        Scope(date(2026, 11, 2), date(2026, 11, 1))
    with pytest.raises(ReportError):
        Scope(date(2020, 1, 1), date(2026, 11, 1))
    with pytest.raises(ReportError):
        summary(sessions, Scope(NOV.start, NOV.end, 987654))


@pytest.mark.parametrize("bad", ["²", "①", "9" * 5000, ["wage"], {"a": 1}, 1.5, True])
def test_odd_figures_and_topics_are_refused_cleanly(world, bad):
    sessions, ids = world
    with sessions() as s, pytest.raises(RecordError):
        activities.create(
            s,
            _admin(s, ids, "admin"),
            region_id=ids["ta"],
            kind="legal_aid",
            values={"day": "2026-11-03", "cases": bad, "person_times": 1},
            now=NOW,
        )
    with sessions() as s, pytest.raises(RecordError):
        activities.create(
            s,
            _admin(s, ids, "admin"),
            region_id=ids["ta"],
            kind="legal_aid",
            values={"day": "2026-11-03", "cases": 1, "person_times": 1, "topic": bad},
            now=NOW,
        )
    assert (
        activities.validate("funds", {"day": "2026-11-03", "amount": "-0"}, today=date(2026, 11, 22))[
            "amount"
        ]
        == 0
    )
