"""The union head's dashboard (`/console/dashboard`), on SQLite and PostgreSQL: who may see it (lawyers
may not; a union admin its own region and below), the JSON's counts over consultations, tickets and
shifts seeded directly, refused periods and regions; and the page in Debian's headless Chromium — a
union admin signs in, the charts render, the period changes, and a screenshot is kept."""

from __future__ import annotations

import io
import re
from datetime import date, datetime, timedelta

import pytest
from openpyxl import load_workbook
from playwright.sync_api import expect

import handlers.console_dashboard  # noqa: F401  (adds the dashboard's routes to the console blueprint)
from app import create_app
from bot.roster import CHINA
from bot.staff import create_user
from models import Consultation, Ticket, Worker, utcnow
from models.org import Lawyer, LawyerRegion, Region, Shift
from tests.browser import ANDROID_UA, PHONE, artifacts_dir, chromium, serve

PASSWORD = "correct-horse-1"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
JANUARY = {"start": "2025-01-01", "end": "2025-01-31"}


@pytest.fixture
def app(bare_app):
    return bare_app


def seed_org(app) -> dict[str, int]:
    """江城市 → 东湖区 (花山街道, 左岭街道) and 西山区; a lawyer serving 花山街道; a union admin of each
    district, a lawyer's account and an admin. Returns the ids by name."""
    with app.extensions["workerlaw.sessions"]() as s:
        city = Region(code="c0", name="江城市", level="city")
        s.add(city)
        s.flush()
        east = Region(code="d1", name="东湖区", level="district", parent_id=city.id)
        west = Region(code="d2", name="西山区", level="district", parent_id=city.id)
        s.add_all([east, west])
        s.flush()
        town_a = Region(code="t1", name="花山街道", level="township", parent_id=east.id)
        town_b = Region(code="t2", name="左岭街道", level="township", parent_id=east.id)
        s.add_all([town_a, town_b])
        s.flush()
        wang, chen = Lawyer(name="王律师"), Lawyer(name="陈律师")
        s.add_all([wang, chen])
        s.flush()
        s.add(LawyerRegion(lawyer_id=wang.id, region_id=town_a.id))
        create_user(s, username="wang", password=PASSWORD, role="lawyer", lawyer_id=wang.id)
        create_user(
            s,
            username="east",
            password=PASSWORD,
            role="union_admin",
            display_name="东湖区工会",
            region_id=east.id,
        )
        create_user(s, username="west", password=PASSWORD, role="union_admin", region_id=west.id)
        create_user(s, username="root", password=PASSWORD, role="admin", display_name="系统管理员")
        s.commit()
        return {
            "city": city.id,
            "east": east.id,
            "west": west.id,
            "town_a": town_a.id,
            "town_b": town_b.id,
            "wang": wang.id,
            "chen": chen.id,
        }


def consult(
    s,
    worker: Worker,
    day: date,
    region_id: int | None,
    *,
    worker_type: str | None = None,
    category: str | None = None,
    resolution: str | None = "answered",
    rating: int | None = None,
) -> Consultation:
    """A closed consultation opened on `day` (China time) for `region_id`."""
    opened = datetime.combine(day, datetime.min.time(), CHINA) + timedelta(hours=10)
    row = Consultation(
        worker_id=worker.id,
        channel=worker.channel,
        worker_type=worker_type,
        region_id=region_id,
        opened_on=day,
        category=category,
        resolution=resolution,
        rating=rating,
        opened_at=opened,
        last_activity_at=opened,
        closed_at=opened + timedelta(minutes=20),
    )
    s.add(row)
    s.flush()
    return row


def worker(s, channel: str, openid: str) -> Worker:
    w = Worker(channel=channel, openid=openid)
    s.add(w)
    s.flush()
    return w


def seed_january(app, ids: dict[str, int]) -> None:
    """January 2025: four consultations in 东湖区 (three workers), two in 西山区, one with no region,
    and one in 东湖区 on 1 February (outside). Tickets open now: two in 花山街道 (one urgent, waiting
    45 minutes) and one claimed, one in 西山区. 王律师 is on duty in 花山街道 now, 陈律师 in 西山区."""
    now = utcnow()
    with app.extensions["workerlaw.sessions"]() as s:
        w1, w2, w3 = worker(s, "oa", "o1"), worker(s, "mp", "o2"), worker(s, "web", "o3")
        w4, w5 = worker(s, "oa", "o4"), worker(s, "oa", "o5")
        jan = date(2025, 1, 1)
        c1 = consult(s, w1, jan, ids["town_a"], worker_type="rider", category="wage_arrears", rating=5)
        c2 = consult(
            s, w1, jan + timedelta(days=9), ids["town_a"], worker_type="rider", category="wage_arrears"
        )
        c3 = consult(
            s,
            w2,
            jan + timedelta(days=9),
            ids["town_a"],
            worker_type="factory",
            category="work_injury",
            resolution="lawyer",
            rating=4,
        )
        consult(s, w3, jan + timedelta(days=30), ids["east"], worker_type="courier", resolution="escalated")
        c5 = consult(
            s, w4, jan + timedelta(days=3), ids["west"], worker_type="rider", category="wage_arrears"
        )
        consult(s, w4, jan + timedelta(days=4), ids["west"], worker_type="other")
        consult(s, w5, jan + timedelta(days=5), None)
        consult(s, w5, date(2025, 2, 1), ids["town_a"], worker_type="rider")
        s.add_all(
            [
                Ticket(
                    consultation_id=c1.id,
                    worker_id=w1.id,
                    region_id=ids["town_a"],
                    status="open",
                    urgent=True,
                    created_at=now - timedelta(minutes=45),
                ),
                Ticket(
                    consultation_id=c2.id,
                    worker_id=w1.id,
                    region_id=ids["town_a"],
                    status="open",
                    created_at=now - timedelta(minutes=5),
                ),
                Ticket(
                    consultation_id=c3.id,
                    worker_id=w2.id,
                    region_id=ids["town_a"],
                    status="claimed",
                    lawyer_id=ids["wang"],
                    created_at=now - timedelta(hours=3),
                    claimed_at=now - timedelta(hours=3),
                    first_response_at=now - timedelta(hours=2),
                ),
                Ticket(
                    consultation_id=c5.id,
                    worker_id=w4.id,
                    region_id=ids["west"],
                    status="open",
                    created_at=now - timedelta(hours=5),
                ),
            ]
        )
        s.add_all(
            [
                Shift(
                    region_id=ids["town_a"],
                    lawyer_id=ids["wang"],
                    role="primary",
                    starts_at=now - timedelta(hours=1),
                    ends_at=now + timedelta(hours=2),
                ),
                Shift(
                    region_id=ids["west"],
                    lawyer_id=ids["chen"],
                    role="primary",
                    starts_at=now - timedelta(hours=1),
                    ends_at=now + timedelta(hours=2),
                ),
            ]
        )
        s.commit()


def login(app, username: str):
    client = app.test_client()
    found = CSRF.search(client.get("/console/login").get_data(as_text=True))
    assert found
    res = client.post(
        "/console/login", data={"username": username, "password": PASSWORD, "csrf_token": found.group(1)}
    )
    assert res.status_code == 302, res.get_data(as_text=True)
    return client


def data(client, **query):
    res = client.get("/console/dashboard/data", query_string=query)
    return res.status_code, res.get_json()


# --- the test client --------------------------------------------------------------------------------


def test_lawyers_may_not_see_the_dashboard(app):
    seed_org(app)
    client = login(app, "wang")
    page = client.get("/console/dashboard")
    assert page.status_code == 403 and "只有工会管理员" in page.get_data(as_text=True)
    status, body = data(client, **JANUARY)
    assert status == 403 and "工会管理员" in body["error"]
    assert "统计</a>" not in client.get("/console/").get_data(as_text=True)


def test_signed_out_the_data_sends_to_sign_in(app):
    res = app.test_client().get("/console/dashboard/data")
    assert res.status_code == 302 and "/console/login" in res.headers["Location"]


def test_a_district_union_sees_its_own_counts(app):
    ids = seed_org(app)
    seed_january(app, ids)
    client = login(app, "east")
    status, body = data(client, **JANUARY)
    assert status == 200, body
    assert body["region"]["id"] == ids["east"] and body["region"]["name"] == "东湖区"
    assert body["period"] == {"start": "2025-01-01", "end": "2025-01-31"}

    c = body["consultations"]
    assert c["total"] == 4
    assert c["workers"]["total"] == 3
    assert c["new_form"] == 3  # two rider consultations and a courier's
    assert {k: v["consultations"] for k, v in c["by_channel"].items()} == {
        "oa": 2,
        "mp": 1,
        "web": 1,
        "offline": 0,
    }
    types = {k: v["consultations"] for k, v in c["by_worker_type"].items() if v["consultations"]}
    assert types == {"rider": 2, "factory": 1, "courier": 1}
    assert c["by_worker_type"]["rider"]["new_form"] and not c["by_worker_type"]["factory"]["new_form"]
    assert c["by_category"] == {"wage_arrears": 2, "work_injury": 1, "none": 1}
    assert c["by_resolution"] == {"bot": 2, "lawyer": 1, "referred": 0, "pending": 1}
    assert c["ratings"]["average"] == 4.5 and c["ratings"]["count"] == 2

    trend = {t["period"]: t["consultations"] for t in body["trend"]}
    assert len(trend) == 31 and trend["2025-01-01"] == 1 and trend["2025-01-10"] == 2
    assert trend["2025-01-31"] == 1 and sum(trend.values()) == 4
    regions = {r["name"]: r["consultations"] for r in body["regions"]}
    assert regions == {"花山街道": 3, "左岭街道": 0, "东湖区（本级）": 1}
    assert body["lawyers"]["tickets"] == 3 and body["lawyers"]["responded"] == 1

    # The queue now: 西山区's ticket is not 东湖区's.
    assert body["queue"]["open"] == 2 and body["queue"]["claimed"] == 1 and body["queue"]["urgent"] == 1
    assert 44 <= body["queue"]["oldest_waiting_minutes"] <= 46
    # On duty now in 东湖区 and below: 王律师 in 花山街道 only.
    assert [(d["lawyer"], d["region"], d["role"]) for d in body["on_duty"]] == [
        ("王律师", "花山街道", "主班")
    ]
    until = datetime.fromisoformat(body["on_duty"][0]["until"])
    assert timedelta(hours=1, minutes=58) < until - utcnow() <= timedelta(hours=2)

    names = body["names"]
    assert names["categories"]["wage_arrears"] == "工资拖欠与支付" and names["categories"]["none"] == "未分类"
    assert names["channels"]["oa"] == "公众号" and names["channels"]["offline"] == "线下"
    assert (
        body["links"]["xlsx"]
        == f"/console/reports/form.xlsx?start=2025-01-01&end=2025-01-31&region={ids['east']}"
    )
    assert body["links"]["csv"].startswith("/console/reports/form.csv?start=2025-01-01")

    # A township below it, and the whole month of February (one consultation).
    status, body = data(client, region=ids["town_a"], start="2025-02-01", end="2025-02-28")
    assert status == 200 and body["consultations"]["total"] == 1 and body["region"]["name"] == "花山街道"


def test_a_district_union_may_not_see_other_regions(app):
    ids = seed_org(app)
    client = login(app, "east")
    for other in (ids["west"], ids["city"], 999_999):
        status, body = data(client, region=other, **JANUARY)
        assert status == 403, other
        assert body["error"] == "您只能查看本工会及下级地区的统计。"


def test_the_statistics_form_downloads_for_the_chosen_period_and_region(app):
    ids = seed_org(app)
    seed_january(app, ids)
    client = login(app, "east")
    sheet = client.get("/console/reports/form.xlsx", query_string=JANUARY)
    assert sheet.status_code == 200 and sheet.mimetype.endswith("spreadsheetml.sheet")
    book = load_workbook(io.BytesIO(sheet.data))
    assert book["情况统计表"].cell(2, 1).value == "填报单位：东湖区"
    csv_text = client.get("/console/reports/form.csv", query_string=JANUARY).get_data(as_text=True)
    assert "为新就业形态劳动者提供法律咨询（人次）" in csv_text
    assert client.get("/console/reports/form.csv", query_string={"region": ids["west"]}).status_code == 403
    assert client.get("/console/reports/form.pdf").status_code == 404
    assert login(app, "wang").get("/console/reports/form.xlsx").status_code == 403


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({"start": "2025-13-01", "end": "2025-01-31"}, "开始日期的格式不对"),
        ({"start": "2025-01-01", "end": "31/01/2025"}, "结束日期的格式不对"),
        ({"start": "1999-01-01", "end": "1999-01-31"}, "年份不对"),
        ({"start": "2025-02-01", "end": "2025-01-31"}, "结束日期不能早于开始日期"),
        ({"start": "2020-01-01", "end": "2025-01-31"}, "统计区间最长三年"),
        ({"region": "abc", **JANUARY}, "地区不对"),
    ],
)
def test_bad_periods_and_regions_are_refused_with_a_reason(app, query, reason):
    seed_org(app)
    status, body = data(login(app, "east"), **query)
    assert status == 400 and reason in body["error"], body


def test_the_default_is_this_month_in_the_users_region(app):
    ids = seed_org(app)
    today = utcnow().astimezone(CHINA).date()
    status, body = data(login(app, "east"))
    assert status == 200
    assert body["period"] == {"start": today.replace(day=1).isoformat(), "end": today.isoformat()}
    assert body["region"]["id"] == ids["east"]


def test_an_admin_sees_the_whole_city(app):
    ids = seed_org(app)
    seed_january(app, ids)
    client = login(app, "root")
    status, body = data(client, **JANUARY)
    assert status == 200 and body["region"]["id"] == ids["city"]
    assert body["consultations"]["total"] == 7  # with 西山区 and the one that never named a region
    assert {r["name"]: r["consultations"] for r in body["regions"]} == {
        "东湖区": 4,
        "西山区": 2,
        "未归属地区": 1,
    }
    assert body["queue"]["open"] == 3 and body["queue"]["oldest_waiting_minutes"] >= 299
    assert sorted(d["lawyer"] for d in body["on_duty"]) == ["王律师", "陈律师"]
    status, body = data(client, region=ids["west"], **JANUARY)
    assert status == 200 and body["consultations"]["total"] == 2
    status, body = data(client, region=999_999, **JANUARY)
    assert status == 400 and "没有这个地区" in body["error"]


def test_the_page_offers_only_the_users_regions(app):
    ids = seed_org(app)
    client = login(app, "east")
    res = client.get("/console/dashboard?start=2025-01-01&end=2025-01-31")
    html = res.get_data(as_text=True)
    assert res.status_code == 200
    assert "default-src 'self'" in res.headers["Content-Security-Policy"]
    options = dict(
        (int(v), n.strip("　 ")) for v, n in re.findall(r'<option value="(\d+)"[^>]*>([^<]+)<', html)
    )
    assert options == {ids["east"]: "东湖区", ids["town_a"]: "花山街道", ids["town_b"]: "左岭街道"}
    assert f'<option value="{ids["east"]}" selected>' in html
    assert 'value="2025-01-01"' in html and "咨询人次" in html and "本月" in html and "上月" in html
    assert f"/console/reports/form.xlsx?start=2025-01-01&amp;end=2025-01-31&amp;region={ids['east']}" in html
    assert "<script>" not in html and "style=" not in html
    assert '">统计</a>' in client.get("/console/").get_data(as_text=True)


# --- the browser ------------------------------------------------------------------------------------


@pytest.fixture
def service(database_url):
    application = create_app({"TESTING": True, "SECRET_KEY": "t", "DATABASE_URL": database_url})
    with serve(application) as url:
        yield application, url
    application.extensions["workerlaw.db"].dispose()


def seed_busy_march(app, ids: dict[str, int]) -> int:
    """March 2025 in 东湖区 as a real month looks: more on weekdays, a mix of channels, worker types,
    categories and outcomes, some workers coming back, lawyers answering in 5 to 40 minutes; and two
    consultations today. Returns March's count."""
    channels = ["oa", "oa", "mp", "oa", "web", "mp", "oa"]
    types = ["rider", "courier", "ride_hailing", "construction", "factory", "rider", "other", None,
             "other_platform", "rider", "construction"]  # fmt: skip
    categories = ["wage_arrears", "overtime_leave", "labor_contract", "work_injury", "social_insurance",
                  "platform_work", "dispute_process", "wage_arrears", "labor_contract", "wage_arrears"]  # fmt: skip
    resolutions = [
        "answered",
        "answered",
        "lawyer",
        "clarified",
        "answered",
        "referred",
        "escalated",
        "lawyer",
    ]
    regions = [ids["town_a"], ids["town_a"], ids["town_b"], ids["east"], ids["town_a"], ids["town_b"]]
    today = utcnow().astimezone(CHINA).date()
    count = 0
    with app.extensions["workerlaw.sessions"]() as s:
        pool = [worker(s, channels[i % len(channels)], f"m{i}") for i in range(90)]
        for offset in range(31):
            day = date(2025, 3, 1) + timedelta(days=offset)
            for _ in range((4 if day.weekday() < 5 else 1) + (offset * 7) % 4):
                i = count
                c = consult(
                    s, pool[(i * 7) % len(pool)], day, regions[i % len(regions)],
                    worker_type=types[i % len(types)], category=categories[(i * 3) % len(categories)],
                    resolution=resolutions[i % len(resolutions)], rating=(5, 4, 5, 3, None, 5, 4)[i % 7],
                )  # fmt: skip
                if c.resolution in ("lawyer", "referred"):
                    created = c.opened_at + timedelta(minutes=3)
                    s.add(
                        Ticket(
                            consultation_id=c.id, worker_id=c.worker_id, region_id=c.region_id,
                            status="closed", lawyer_id=ids["wang"], outcome="answered", created_at=created,
                            claimed_at=created + timedelta(minutes=2),
                            first_response_at=created + timedelta(minutes=5 + (i * 11) % 36),
                            closed_at=created + timedelta(hours=2),
                        )
                    )  # fmt: skip
                count += 1
        for i in range(2):
            consult(s, worker(s, "oa", f"today{i}"), today, ids["town_a"], worker_type="rider")
        s.commit()
    return count


def test_a_union_head_reads_the_dashboard_on_a_phone(service, database_url):
    app, url = service
    kind = database_url.split(":", 1)[0].split("+", 1)[0]  # sqlite or postgresql
    ids = seed_org(app)
    seed_january(app, ids)  # the queue and the duty roster now
    march = seed_busy_march(app, ids)
    with chromium() as browser:
        page = browser.new_context(**PHONE, user_agent=ANDROID_UA).new_page()
        page.set_default_timeout(10_000)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        refused: list[str] = []  # what the page's Content-Security-Policy blocked
        page.on(
            "console", lambda msg: refused.append(msg.text) if "Content Security Policy" in msg.text else None
        )

        page.goto(f"{url}/console/dashboard")
        assert "/console/login" in page.url
        page.fill("#username", "east")
        page.fill("#password", PASSWORD)
        page.click("#login-submit")
        page.wait_for_url("**/console/dashboard**")

        # This month so far: the two consultations of today.
        page.locator("#dashboard[data-state=ready]").wait_for()
        assert page.locator("#kpi-total").inner_text() == "2"
        assert "东湖区" in page.locator("#dash-title").inner_text()
        assert page.locator("canvas").count() == 6
        drawn = page.evaluate(
            "Array.from(document.querySelectorAll('canvas')).filter(c => Chart.getChart(c)).length"
        )
        assert drawn == 6
        assert page.locator(".chip.active").inner_text() == "本月"
        assert (
            page.locator("#queue-open").inner_text() == "2"
            and page.locator("#queue-urgent").inner_text() == "1"
        )
        assert "王律师" in page.locator("#duty-list").inner_text()

        # Another period: March 2025.
        page.fill("#dash-start", "2025-03-01")
        page.fill("#dash-end", "2025-03-31")
        page.click("#dash-apply")
        expect(page.locator("#kpi-total")).to_have_text(str(march))
        page.locator("#dashboard[data-state=ready]").wait_for()
        assert "2025-03-01 至 2025-03-31" in page.locator("#dash-title").inner_text()
        assert "start=2025-03-01" in page.url  # the address keeps the filter
        href = page.get_attribute("#form-xlsx", "href")
        assert href == f"/console/reports/form.xlsx?start=2025-03-01&end=2025-03-31&region={ids['east']}"
        trend = page.evaluate("Chart.getChart('chart-trend').data.datasets[0].data")
        assert len(trend) == 31 and sum(trend) == march

        # A township, picked from the list, narrows the figures.
        page.select_option("#dash-region", str(ids["town_b"]))
        expect(page.locator("#dash-title")).to_contain_text("左岭街道")
        page.locator("#dashboard[data-state=ready]").wait_for()
        assert int(page.locator("#kpi-total").inner_text()) < march
        page.select_option("#dash-region", str(ids["east"]))
        expect(page.locator("#kpi-total")).to_have_text(str(march))
        page.locator("#dashboard[data-state=ready]").wait_for()

        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=artifacts_dir() / f"dashboard-{kind}.png", full_page=True)

        # A region the union does not manage is refused with a reason.
        refusal = page.evaluate(
            "region => fetch('/console/dashboard/data?region=' + region)"
            ".then(r => r.json().then(body => [r.status, body.error]))",
            ids["west"],
        )
        assert refusal == [403, "您只能查看本工会及下级地区的统计。"]

        # The desk's wider layout, for a look.
        desk = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
        desk.add_cookies(page.context.cookies())
        wide = desk.new_page()
        wide.goto(f"{url}/console/dashboard?start=2025-03-01&end=2025-03-31")
        wide.locator("#dashboard[data-state=ready]").wait_for()
        wide.screenshot(path=artifacts_dir() / f"dashboard-desk-{kind}.png", full_page=True)
        assert errors == [] and refused == []
