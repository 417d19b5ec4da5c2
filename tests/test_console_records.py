"""The console's records pages (`handlers.console_records`) through Flask's test client, on SQLite and
PostgreSQL: a district union admin enters a lecture for a township below it, edits it and deletes it,
with the history of each change; a sibling district's region is refused; bad input comes back with the
message and everything typed; lawyers get 403 and other regions' records 404."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

import handlers.console_records  # noqa: F401  (registers the pages on the console blueprint before create_app)
from bot import activities
from bot.roster import CHINA
from bot.staff import create_user
from models import utcnow
from models.activity import ActivityChange, ActivityRecord
from models.org import Lawyer, LawyerRegion, Region, StaffUser

PASSWORD = "correct-horse-1"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def app(bare_app):
    return bare_app


@pytest.fixture
def org(app):
    """A city; district 东湖区 with townships 花山街道 and 左岭街道; sibling district 西湖区 with 龙湾街道.
    Accounts: admin1 (东湖区's union admin), admin2 (西湖区's), wang (a lawyer of 花山街道)."""
    with app.extensions["workerlaw.sessions"]() as s:
        city = Region(code="c0", name="江城市", level="city")
        s.add(city)
        s.flush()
        east = Region(code="d1", name="东湖区", level="district", parent_id=city.id)
        west = Region(code="d2", name="西湖区", level="district", parent_id=city.id)
        s.add_all([east, west])
        s.flush()
        town_a = Region(code="t1", name="花山街道", level="township", parent_id=east.id)
        town_b = Region(code="t2", name="左岭街道", level="township", parent_id=east.id)
        town_w = Region(code="t3", name="龙湾街道", level="township", parent_id=west.id)
        s.add_all([town_a, town_b, town_w])
        s.flush()
        lawyer = Lawyer(name="王律师", firm="江城律师事务所")
        s.add(lawyer)
        s.flush()
        s.add(LawyerRegion(lawyer_id=lawyer.id, region_id=town_a.id))
        create_user(
            s, username="wang", password=PASSWORD, role="lawyer", display_name="王律师", lawyer_id=lawyer.id
        )
        admin1 = create_user(
            s,
            username="admin1",
            password=PASSWORD,
            role="union_admin",
            display_name="东湖区工会",
            region_id=east.id,
        )
        admin2 = create_user(
            s,
            username="admin2",
            password=PASSWORD,
            role="union_admin",
            display_name="西湖区工会",
            region_id=west.id,
        )
        s.commit()
        return {
            "east": east.id,
            "west": west.id,
            "town_a": town_a.id,
            "town_b": town_b.id,
            "town_w": town_w.id,
            "admin1": admin1.id,
            "admin2": admin2.id,
        }


def token(client, path: str = "/console/login") -> str:
    found = CSRF.search(client.get(path).get_data(as_text=True))
    assert found, f"no CSRF field on {path}"
    return found.group(1)


def login(app, username: str):
    client = app.test_client()
    res = client.post(
        "/console/login", data={"username": username, "password": PASSWORD, "csrf_token": token(client)}
    )
    assert res.status_code == 302, res.get_data(as_text=True)
    return client


def post(client, path: str, data: dict | None = None, *, follow: bool = True):
    form = {"csrf_token": token(client, "/console/notices"), **(data or {})}
    return client.post(path, data=form, follow_redirects=follow)


def page(client, path: str) -> str:
    res = client.get(path)
    assert res.status_code == 200, (path, res.status_code)
    return res.get_data(as_text=True)


def today() -> str:
    return utcnow().astimezone(CHINA).date().isoformat()


def records(app) -> list[ActivityRecord]:
    with app.extensions["workerlaw.sessions"]() as s:
        rows = list(s.scalars(select(ActivityRecord).order_by(ActivityRecord.id)))
        s.expunge_all()
        return rows


def changes(app, record_id: int) -> list[ActivityChange]:
    with app.extensions["workerlaw.sessions"]() as s:
        rows = activities.history(s, record_id)
        s.expunge_all()
        return rows


def lecture(org, **overrides) -> dict:
    form = {
        "kind": "lecture",
        "region_id": str(org["town_a"]),
        "day": today(),
        "online": "1",
        "new_form": "1",
        "sessions": "3",
        "people": "120",
        "note": "外卖骑手专场",
    }
    return {**form, **overrides}


def test_a_union_admin_enters_edits_and_deletes_a_lecture(app, org):
    admin = login(app, "admin1")
    body = page(admin, "/console/records")
    assert "新增记录" in body and "这段时间还没有记录" in body
    assert 'href="/console/records"' in body  # the 填报 link in the layout
    form = page(admin, "/console/records/new?kind=lecture")
    assert "普法宣讲" in form and "场次（场）" in form and "人数（人）" in form
    assert "花山街道" in form and "左岭街道" in form and "龙湾街道" not in form
    assert 'name="copies"' not in form  # only the kind's own figures

    res = post(admin, "/console/records", lecture(org), follow=False)
    assert res.status_code == 302
    body = post(
        admin, "/console/records", lecture(org, sessions="1", people="40", online="0", note="")
    ).get_data(as_text=True)
    assert "已保存" in body
    first, second = records(app)
    assert (first.region_id, first.kind, first.sessions, first.people, first.online, first.new_form) == (
        org["town_a"],
        "lecture",
        3,
        120,
        True,
        True,
    )
    assert first.created_by == org["admin1"] and first.note == "外卖骑手专场"
    assert not second.online
    for part in (
        "花山街道",
        "普法宣讲",
        "场次：<b>3 场</b>",
        "人数：<b>120 人</b>",
        "线上",
        "外卖骑手专场",
        "东湖区工会",
    ):
        assert part in body, part
    assert f'href="/console/records/{first.id}"' in body
    history = changes(app, first.id)
    assert [(c.action, c.staff_id) for c in history] == [("create", org["admin1"])]
    assert history[0].after["people"] == 120 and history[0].before is None

    form = page(admin, f"/console/records/{first.id}")
    assert 'value="120"' in form and "外卖骑手专场" in form and "新增" in form
    res = post(admin, f"/console/records/{first.id}", lecture(org, people="150", online="0"), follow=False)
    assert res.status_code == 302
    assert "人数：<b>150 人</b>" in page(admin, res.headers["Location"])
    stored = records(app)[0]
    assert stored.people == 150 and not stored.online and stored.updated_by == org["admin1"]
    history = changes(app, first.id)
    assert [c.action for c in history] == ["create", "update"]
    assert (history[1].before["people"], history[1].after["people"]) == (120, 150)
    form = page(admin, f"/console/records/{first.id}")
    assert "修改" in form and "人数：120 人 → 150 人" in form and "形式：线上 → 线下" in form

    body = post(admin, f"/console/records/{first.id}/delete").get_data(as_text=True)
    assert "已删除" in body
    assert f'id="record-{first.id}"' not in body and f'id="record-{second.id}"' in body
    gone = records(app)[0]
    assert gone.deleted_at is not None and gone.people == 150  # the row stays
    assert [c.action for c in changes(app, first.id)] == ["create", "update", "delete"]
    assert admin.get(f"/console/records/{first.id}").status_code == 404
    assert post(admin, f"/console/records/{first.id}", lecture(org)).status_code == 404


def test_every_kind_has_its_form_and_amounts_and_topics_are_kept(app, org):
    admin = login(app, "admin1")
    for kind, record_kind in activities.KINDS.items():
        form = page(admin, f"/console/records/new?kind={kind}")
        assert record_kind.label in form
        for _, label, unit in record_kind.fields:
            assert f"{label}（{unit}）" in form
        assert ('name="amount"' in form) == bool(record_kind.amount)
        assert ('name="online"' in form) == record_kind.online
    assert admin.get("/console/records/new?kind=party").status_code == 400
    assert admin.get("/console/records/new").status_code == 400
    aid = {
        "kind": "legal_aid",
        "region_id": str(org["east"]),
        "day": today(),
        "new_form": "1",
        "topic": "wage",
        "cases": "２",  # full-width digits, as a Chinese input method types them
        "person_times": "5",
        "amount": "3.5",
    }
    body = post(admin, "/console/records", aid).get_data(as_text=True)
    assert "已保存" in body and "工资拖欠" in body and "挽回经济损失（追回金额）：<b>3.50 万元</b>" in body
    notice = {
        "kind": "notice",
        "region_id": str(org["east"]),
        "day": today(),
        "new_form": "1",
        "issuer": "东湖区总工会",
    }
    assert "发文单位：东湖区总工会" in post(admin, "/console/records", notice).get_data(as_text=True)
    rows = records(app)
    assert (rows[0].cases, str(rows[0].amount), rows[0].topic) == (2, "3.50", "wage")
    assert rows[1].issuer == "东湖区总工会"


def test_a_sibling_districts_region_is_refused(app, org):
    admin = login(app, "admin1")
    res = post(admin, "/console/records", lecture(org, region_id=str(org["town_w"])))
    body = res.get_data(as_text=True)
    assert res.status_code == 403
    assert "只能填报本级及下级地区的记录" in body and 'value="120"' in body and "外卖骑手专场" in body
    res = post(admin, "/console/records", lecture(org, region_id=str(org["west"])))
    assert res.status_code == 403
    assert records(app) == []


@pytest.mark.parametrize(
    ("change", "message", "kept"),
    [
        ({"people": "-5"}, "人数须为 0 到 10000000 之间的整数", 'value="-5"'),
        ({"people": ""}, "请填写人数", 'value="3"'),
        ({"day": "2999-01-01"}, "日期须在 2000-01-01 到今天之间", 'value="2999-01-01"'),
        ({"day": "tomorrow"}, "日期格式应为 YYYY-MM-DD", 'value="tomorrow"'),
        ({"sessions": "三场"}, "场次须为 0 到 10000000 之间的整数", 'value="三场"'),
        ({"sessions": "²"}, "场次须为 0 到 10000000 之间的整数", 'value="²"'),
        ({"sessions": "9" * 5000}, "场次须为 0 到 10000000 之间的整数", 'value="999'),
        ({"people": "12.5"}, "人数须为 0 到 10000000 之间的整数", 'value="12.5"'),
        ({"region_id": ""}, "请选择地区", 'value="120"'),
        ({"copies": "10"}, "“普法宣讲”不填写此项", 'value="120"'),
    ],
)
def test_bad_input_comes_back_with_the_message_and_what_was_typed(app, org, change, message, kept):
    admin = login(app, "admin1")
    res = post(admin, "/console/records", lecture(org, **change))
    body = res.get_data(as_text=True)
    assert res.status_code == 400, body
    assert message in body and kept in body
    assert "外卖骑手专场" in body  # the note typed is kept too
    assert 'name="kind" value="lecture"' in body
    assert records(app) == []


def test_a_bad_edit_keeps_the_record_and_the_typed_values(app, org):
    admin = login(app, "admin1")
    post(admin, "/console/records", lecture(org))
    (record,) = records(app)
    future = (utcnow().astimezone(CHINA).date() + timedelta(days=1)).isoformat()
    res = post(
        admin, f"/console/records/{record.id}", lecture(org, day=future, people="999", note="改过的备注")
    )
    body = res.get_data(as_text=True)
    assert res.status_code == 400
    assert "日期须在 2000-01-01 到今天之间" in body and 'value="999"' in body and "改过的备注" in body
    assert f'value="{future}"' in body and "新增" in body  # the history is still shown
    res = post(admin, f"/console/records/{record.id}", lecture(org, region_id=str(org["town_w"])))
    assert res.status_code == 403 and "只能填报本级及下级地区的记录" in res.get_data(as_text=True)
    (after,) = records(app)
    assert (after.people, after.region_id, after.updated_at) == (120, org["town_a"], None)
    assert [c.action for c in changes(app, record.id)] == ["create"]


def test_lawyers_get_403_on_every_records_page(app, org):
    admin = login(app, "admin1")
    post(admin, "/console/records", lecture(org))
    (record,) = records(app)
    wang = login(app, "wang")
    assert 'href="/console/records"' not in page(wang, "/console/")
    for path in ("/console/records", "/console/records/new?kind=lecture", f"/console/records/{record.id}"):
        res = wang.get(path)
        assert res.status_code == 403 and "只有工会管理员" in res.get_data(as_text=True), path
    for path in ("/console/records", f"/console/records/{record.id}", f"/console/records/{record.id}/delete"):
        assert post(wang, path, lecture(org), follow=False).status_code == 403, path
    (after,) = records(app)
    assert after.deleted_at is None and after.updated_at is None and len(records(app)) == 1
    # Without the CSRF token nothing is even looked at.
    assert admin.post(f"/console/records/{record.id}/delete").status_code == 400


def test_other_regions_records_are_not_found(app, org):
    with app.extensions["workerlaw.sessions"]() as s:
        west_admin = s.get(StaffUser, org["admin2"])
        record = activities.create(
            s,
            west_admin,
            region_id=org["town_w"],
            kind="leaflets",
            values={"day": today(), "copies": 500},
            now=utcnow(),
        )
        s.commit()
        record_id = record.id
    admin = login(app, "admin1")
    assert admin.get(f"/console/records/{record_id}").status_code == 404
    assert post(admin, f"/console/records/{record_id}", {"region_id": str(org["town_a"])}).status_code == 404
    assert post(admin, f"/console/records/{record_id}/delete").status_code == 404
    assert admin.get("/console/records/999999").status_code == 404
    assert f'id="record-{record_id}"' not in page(admin, "/console/records")
    # Its own union sees it (and the filter by region keeps it).
    west = login(app, "admin2")
    assert f'id="record-{record_id}"' in page(west, f"/console/records?region={org['town_w']}")
    assert f'id="record-{record_id}"' not in page(west, f"/console/records?region={org['town_a']}")
    with app.extensions["workerlaw.sessions"]() as s:
        assert s.scalar(select(func.count()).select_from(ActivityChange)) == 1
        assert s.get(ActivityRecord, record_id).deleted_at is None


def test_the_list_filters_by_period_and_refuses_bad_parameters(app, org):
    with app.extensions["workerlaw.sessions"]() as s:
        user = s.get(StaffUser, org["admin1"])
        for day in ("2024-03-05", "2024-04-10"):
            activities.create(
                s,
                user,
                region_id=org["town_b"],
                kind="outreach",
                values={"day": day, "person_times": "8"},
                now=utcnow(),
            )
        s.commit()
    admin = login(app, "admin1")
    assert "这段时间还没有记录" in page(admin, "/console/records")  # this month by default
    body = page(admin, "/console/records?start=2024-03-01&end=2024-03-31")
    assert "2024-03-05" in body and "2024-04-10" not in body and "共 1 条" in body
    body = page(admin, "/console/records?start=2024-01-01&end=2024-12-31")
    assert "2024-03-05" in body and "2024-04-10" in body and "左岭街道" in body
    for query in (
        "start=2024-13-01",
        "start=2024-05-01&end=2024-04-01",
        "region=abc",
        "start=2000-01-01&end=2024-01-01",
    ):
        assert admin.get(f"/console/records?{query}").status_code == 400, query
