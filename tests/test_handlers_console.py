"""The lawyers' console through Flask's test client, on SQLite and PostgreSQL: sign-in and lock-out,
CSRF, the queue, a ticket's life (claim, a second claim refused, reply queued to WeChat, close),
regions a lawyer may not see, the roster (union admins only), referrals and notices.

Tickets are opened the real way: a worker scans a service station's QR code and asks for a person."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.inbox import Inbound
from bot.roster import CHINA
from bot.staff import create_user
from models import OutboxMessage, utcnow
from models.org import Holiday, Lawyer, LawyerRegion, Region, Shift, StaffUser, Station, WeeklyShift
from models.ticket import Notice, Referral, Ticket

PASSWORD = "correct-horse-1"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def app(bare_app):
    return bare_app


@pytest.fixture
def org(app):
    """A city, a district, two townships (a station in the first); lawyers 王 and 李 serve the first
    township, 赵 the second; a union admin of the district. Returns the ids by name."""
    with app.extensions["workerlaw.sessions"]() as s:
        city = Region(code="c0", name="江城市", level="city")
        s.add(city)
        s.flush()
        district = Region(code="d1", name="东湖区", level="district", parent_id=city.id)
        s.add(district)
        s.flush()
        town_a = Region(code="t1", name="花山街道", level="township", parent_id=district.id)
        town_b = Region(code="t2", name="左岭街道", level="township", parent_id=district.id)
        s.add_all([town_a, town_b])
        s.flush()
        s.add(Station(code="st1", name="花山职工服务站", region_id=town_a.id))
        ids = {"city": city.id, "district": district.id, "town_a": town_a.id, "town_b": town_b.id}
        for username, name, region in (
            ("wang", "王律师", town_a),
            ("li", "李律师", town_a),
            ("zhao", "赵律师", town_b),
        ):
            lawyer = Lawyer(name=name, firm="江城律师事务所")
            s.add(lawyer)
            s.flush()
            s.add(LawyerRegion(lawyer_id=lawyer.id, region_id=region.id))
            create_user(
                s, username=username, password=PASSWORD, role="lawyer", display_name=name, lawyer_id=lawyer.id
            )
            ids[username] = lawyer.id
        create_user(
            s,
            username="admin1",
            password=PASSWORD,
            role="union_admin",
            display_name="区工会",
            region_id=district.id,
        )
        s.commit()
    return ids


def ask(app, openid: str, text: str, *, station: str = "st1") -> Ticket:
    """A worker scans the station's code, then writes `text` (which the bot escalates to a ticket)."""
    inbox = app.extensions["workerlaw.inbox"]
    now = utcnow()
    with app.extensions["workerlaw.sessions"]() as s:
        scan = Inbound(
            channel="oa",
            openid=openid,
            msg_type="event",
            dedup_key=f"{openid}|scan",
            created_at=now,
            event="subscribe",
            event_key=f"qrscene_{station}",
        )
        inbox.handle(s, scan, now=now)
        message = Inbound(
            channel="oa",
            openid=openid,
            msg_type="text",
            dedup_key=f"{openid}|1",
            created_at=now,
            content=text,
        )
        handled = inbox.handle(s, message, now=now)
        s.commit()
        assert handled.needs_lawyer
        return s.scalars(select(Ticket).where(Ticket.consultation_id == handled.consultation_id)).one()


def token(client, path: str = "/console/login") -> str:
    found = CSRF.search(client.get(path).get_data(as_text=True))
    assert found, f"no CSRF field on {path}"
    return found.group(1)


def login(app, username: str, password: str = PASSWORD):
    client = app.test_client()
    res = client.post(
        "/console/login", data={"username": username, "password": password, "csrf_token": token(client)}
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


def stored(app, model, ident):
    with app.extensions["workerlaw.sessions"]() as s:
        row = s.get(model, ident)
        s.expunge_all()
        return row


def test_sign_in_refuses_a_wrong_password_and_locks_after_five(app, org):
    client = app.test_client()
    for attempt in range(1, 6):
        res = client.post(
            "/console/login",
            data={"username": "wang", "password": "wrong-password", "csrf_token": token(client)},
        )
        body = res.get_data(as_text=True)
        assert res.status_code == 401
        if attempt < 5:
            assert "用户名或密码不对" in body
        else:
            assert "账号已暂时锁定" in body
    # Locked: even the right password is refused now, and nothing behind the sign-in opens.
    res = client.post(
        "/console/login", data={"username": "wang", "password": PASSWORD, "csrf_token": token(client)}
    )
    assert res.status_code == 401 and "账号已暂时锁定" in res.get_data(as_text=True)
    assert client.get("/console/").status_code == 302
    with app.extensions["workerlaw.sessions"]() as s:
        assert s.scalars(select(StaffUser).where(StaffUser.username == "wang")).one().locked_until is not None
    # An unknown name gets the same message as a wrong password.
    res = client.post(
        "/console/login", data={"username": "nobody", "password": "x", "csrf_token": token(client)}
    )
    assert "用户名或密码不对" in res.get_data(as_text=True)
    # Another account signs in; the session cookie is HttpOnly and SameSite=Lax.
    other = app.test_client()
    res = other.post(
        "/console/login", data={"username": "li", "password": PASSWORD, "csrf_token": token(other)}
    )
    assert res.status_code == 302 and res.headers["Location"].endswith("/console/")
    cookie = res.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "李律师" in page(other, "/console/")


def test_a_password_change_signs_out_the_open_session(app, org):
    client = login(app, "wang")
    assert client.get("/console/").status_code == 200
    with app.extensions["workerlaw.sessions"]() as s:
        s.scalars(select(StaffUser).where(StaffUser.username == "wang")).one().token_version += 1
        s.commit()
    res = client.get("/console/")
    assert res.status_code == 302 and "/console/login" in res.headers["Location"]


def test_posts_without_the_csrf_token_are_refused(app, org):
    ticket = ask(app, "oW1", "我想找律师")
    client = login(app, "wang")
    for data in ({}, {"csrf_token": "forged"}):
        res = client.post(f"/console/tickets/{ticket.id}/claim", data=data)
        assert res.status_code == 400
        assert "安全校验失败" in res.get_data(as_text=True)
    assert stored(app, Ticket, ticket.id).lawyer_id is None
    # The sign-in form needs it too.
    res = app.test_client().post("/console/login", data={"username": "wang", "password": PASSWORD})
    assert res.status_code == 400
    # Logging out is a POST with the token as well.
    assert client.post("/console/logout").status_code == 400
    assert client.get("/console/").status_code == 200


def test_the_queue_shows_urgent_first_with_region_and_excerpt(app, org):
    calm = ask(app, "oW1", "我想找律师")
    urgent = ask(app, "oW2", "老板再不给工资我就从楼上跳下去")
    assert urgent.urgent and not calm.urgent
    client = login(app, "wang")
    body = page(client, "/console/?view=unassigned")
    assert body.index(f"#{urgent.id} ") < body.index(f"#{calm.id} ")
    assert "紧急" in body and "花山街道" in body and "我想找律师" in body and "已等" in body
    assert page(client, "/console/?view=mine").count("ticket-row") == 0
    assert page(client, "/console/?view=regions").count("ticket-row") == 2
    assert page(client, "/console/?view=all&status=closed").count("ticket-row") == 0
    res = client.get("/console/?view=everything")
    assert res.status_code == 400 and "没有这个列表" in res.get_data(as_text=True)
    # The lawyer of the other township sees none of them.
    assert login(app, "zhao").get("/console/?view=all").get_data(as_text=True).count("ticket-row") == 0
    assert "Content-Security-Policy" in client.get("/console/").headers


def test_claim_reply_and_close_a_ticket(app, org):
    ticket = ask(app, "oW1", "我想找律师")
    wang, li = login(app, "wang"), login(app, "li")
    body = page(wang, f"/console/tickets/{ticket.id}")
    for label in ("单位或项目", "工种", "涉及金额", "开始时间", "证据"):
        assert label in body
    assert "48小时窗口内还可发送 5 条" in body
    assert 'id="canned"' in body  # canned answers drawn from the FAQ
    assert "我想找律师" in body and "机器人" in body

    # The worker answers the first intake question, skips the second.
    inbox = app.extensions["workerlaw.inbox"]
    with app.extensions["workerlaw.sessions"]() as s:
        now = utcnow()
        for n, text in ((2, "江城建筑公司花山项目"), (3, "跳过")):
            inbox.handle(
                s,
                Inbound(
                    channel="oa",
                    openid="oW1",
                    msg_type="text",
                    dedup_key=f"oW1|{n}",
                    created_at=now,
                    content=text,
                ),
                now=now,
            )
        s.commit()
    body = page(wang, f"/console/tickets/{ticket.id}")
    assert "江城建筑公司花山项目" in body and "咨询人跳过了" in body

    # Reply before claiming: refused.
    res = post(wang, f"/console/tickets/{ticket.id}/reply", {"text": "您好"})
    assert "请先接单" in res.get_data(as_text=True)

    res = post(wang, f"/console/tickets/{ticket.id}/claim")
    assert "已接单" in res.get_data(as_text=True)
    assert stored(app, Ticket, ticket.id).lawyer_id == org["wang"]
    res = post(li, f"/console/tickets/{ticket.id}/claim")
    assert "这个咨询已经被其他律师接了" in res.get_data(as_text=True)
    assert stored(app, Ticket, ticket.id).lawyer_id == org["wang"]

    res = post(wang, f"/console/tickets/{ticket.id}/reply", {"text": "请保留考勤记录和工资条。"})
    body = res.get_data(as_text=True)
    assert "答复已保存" in body and "请保留考勤记录和工资条。" in body
    assert "48小时窗口内还可发送 4 条" in body
    with app.extensions["workerlaw.sessions"]() as s:
        queued = s.scalars(select(OutboxMessage).where(OutboxMessage.openid == "oW1")).all()
        assert [m.content for m in queued if "请保留考勤记录和工资条。" in m.content]
    res = post(wang, f"/console/tickets/{ticket.id}/reply", {"text": "   "})
    assert "请填写答复内容" in res.get_data(as_text=True)
    res = post(wang, f"/console/tickets/{ticket.id}/reply", {"text": "长" * 601})
    assert "答复内容不能超过600个字" in res.get_data(as_text=True)

    res = post(wang, f"/console/tickets/{ticket.id}/note", {"text": "需核实劳动关系"})
    assert "需核实劳动关系" in res.get_data(as_text=True)

    res = post(wang, f"/console/tickets/{ticket.id}/close", {"outcome": "won", "category": "wage_arrears"})
    assert "请选择处理结果" in res.get_data(as_text=True)
    res = post(wang, f"/console/tickets/{ticket.id}/close", {"outcome": "answered", "category": "gossip"})
    assert "请选择问题类别" in res.get_data(as_text=True)
    assert stored(app, Ticket, ticket.id).status == "claimed"
    res = post(
        wang, f"/console/tickets/{ticket.id}/close", {"outcome": "answered", "category": "wage_arrears"}
    )
    body = res.get_data(as_text=True)
    assert "已结案：已解答" in body
    closed = stored(app, Ticket, ticket.id)
    assert closed.status == "closed" and closed.outcome == "answered" and closed.category == "wage_arrears"
    assert f"#{ticket.id} " in page(wang, "/console/?view=all&status=closed")
    res = post(wang, f"/console/tickets/{ticket.id}/reply", {"text": "还有一件事"})
    assert "这个咨询已经结束" in res.get_data(as_text=True)


def test_a_lawyer_of_another_region_gets_404(app, org):
    ticket = ask(app, "oW1", "我想找律师")
    zhao = login(app, "zhao")
    res = zhao.get(f"/console/tickets/{ticket.id}")
    assert res.status_code == 404 and "没有这个咨询单" in res.get_data(as_text=True)
    res = post(zhao, f"/console/tickets/{ticket.id}/claim", follow=False)
    assert res.status_code == 404
    assert stored(app, Ticket, ticket.id).lawyer_id is None
    assert zhao.get("/console/tickets/99999").status_code == 404
    assert zhao.get("/console/tickets/99999999999999").status_code == 404  # beyond a 32-bit id
    # The district's union admin sees it.
    assert "我想找律师" in page(login(app, "admin1"), f"/console/tickets/{ticket.id}")


def test_only_union_admins_manage_the_roster(app, org):
    wang = login(app, "wang")
    res = wang.get("/console/roster")
    assert res.status_code == 403 and "只有工会管理员" in res.get_data(as_text=True)
    assert post(wang, "/console/roster/shifts", {"region_id": org["town_a"]}, follow=False).status_code == 403

    admin = login(app, "admin1")
    body = page(admin, "/console/roster")
    assert "花山街道" in body and "正在值班" not in body
    now = utcnow().astimezone(CHINA).replace(second=0, microsecond=0)
    fmt = "%Y-%m-%dT%H:%M"
    start, end = (now - timedelta(hours=1)).strftime(fmt), (now + timedelta(hours=2)).strftime(fmt)
    shift = {
        "region_id": org["town_a"],
        "lawyer_id": org["wang"],
        "role": "primary",
        "start": start,
        "end": end,
    }

    for bad, message in (
        ({"end": (now - timedelta(hours=2)).strftime(fmt)}, "结束时间必须晚于开始时间"),
        ({"lawyer_id": "99999"}, "没有这位律师"),
        ({"lawyer_id": "abc"}, "律师不对"),
        ({"start": "明天早上"}, "开始时间的格式不对"),
        ({"role": "chief"}, "请选择主班或备班"),
        ({"lawyer_id": "²"}, "律师不对"),
        ({"start": "0001-01-01T00:00"}, "开始时间的年份不对"),
        ({"region_id": "99999"}, "没有这个地区"),
    ):
        res = post(admin, "/console/roster/shifts", {**shift, **bad})
        assert res.status_code == 200 and message in res.get_data(as_text=True), bad
    with app.extensions["workerlaw.sessions"]() as s:
        assert s.scalars(select(Shift)).all() == []

    body = post(admin, "/console/roster/shifts", shift).get_data(as_text=True)
    assert "已添加王律师的值班" in body
    on_duty = re.search(rf'id="region-{org["town_a"]}".*?<p class="on-duty">(.*?)</p>', body, re.S)
    assert on_duty and "王律师" in on_duty.group(1)

    # A weekly pattern and a holiday, then deleting each.
    res = post(
        admin,
        "/console/roster/weekly",
        {
            "region_id": org["town_b"],
            "lawyer_id": org["zhao"],
            "role": "backup",
            "weekday": "2",
            "start": "18:00",
            "end": "09:00",
        },
    )
    assert "结束时间必须晚于开始时间" in res.get_data(as_text=True)
    res = post(
        admin,
        "/console/roster/weekly",
        {
            "region_id": org["town_b"],
            "lawyer_id": org["zhao"],
            "role": "backup",
            "weekday": "2",
            "start": "09:00",
            "end": "17:30",
        },
    )
    body = res.get_data(as_text=True)
    assert "已添加赵律师每周三的值班" in body and "周三 09:00 – 17:30" in body
    res = post(
        admin, "/console/roster/holidays", {"region_id": org["town_b"], "day": "2026-10-01", "name": "国庆节"}
    )
    assert "已添加节假日" in res.get_data(as_text=True)
    res = post(
        admin, "/console/roster/holidays", {"region_id": org["town_b"], "day": "2026-10-01", "name": "国庆节"}
    )
    assert "这一天已经设为节假日了" in res.get_data(as_text=True)
    res = post(admin, "/console/roster/holidays", {"region_id": "all", "day": "2026-10-02", "name": "国庆节"})
    assert "只有系统管理员" in res.get_data(as_text=True)
    res = post(admin, "/console/roster/holidays", {"region_id": org["town_b"], "day": "10/01", "name": "x"})
    assert "日期的格式不对" in res.get_data(as_text=True)
    with app.extensions["workerlaw.sessions"]() as s:
        ids = [s.scalars(select(m.id)).one() for m in (Shift, WeeklyShift, Holiday)]
    for kind, row_id in zip(("shifts", "weekly", "holidays"), ids, strict=True):
        assert "已删除" in post(admin, f"/console/roster/{kind}/{row_id}/delete").get_data(as_text=True)
    assert "可能已经删除了" in post(admin, f"/console/roster/shifts/{ids[0]}/delete").get_data(as_text=True)
    with app.extensions["workerlaw.sessions"]() as s:
        assert not s.scalars(select(Shift)).all() and not s.scalars(select(Holiday)).all()


def test_a_new_ticket_goes_to_the_lawyer_on_duty_and_they_read_the_notice(app, org):
    admin = login(app, "admin1")
    now = utcnow().astimezone(CHINA).replace(second=0, microsecond=0)
    fmt = "%Y-%m-%dT%H:%M"
    post(
        admin,
        "/console/roster/shifts",
        {
            "region_id": org["town_a"],
            "lawyer_id": org["li"],
            "role": "primary",
            "start": (now - timedelta(minutes=5)).strftime(fmt),
            "end": (now + timedelta(hours=1)).strftime(fmt),
        },
    )
    ticket = ask(app, "oW1", "我想找律师")
    li = login(app, "li")
    body = page(li, "/console/notices")
    assert "新咨询待接单" in body and f"/console/tickets/{ticket.id}" in body
    assert '<span class="count">1</span>' in body
    post(li, "/console/notices/read")
    with app.extensions["workerlaw.sessions"]() as s:
        assert all(
            n.read_at is not None for n in s.scalars(select(Notice).where(Notice.lawyer_id == org["li"]))
        )
    assert '<span class="count">' not in page(li, "/console/notices")


def test_transfer_refer_and_review_a_referral(app, org):
    ticket = ask(app, "oW1", "我想找律师")
    wang = login(app, "wang")
    post(wang, f"/console/tickets/{ticket.id}/claim")
    res = post(wang, f"/console/tickets/{ticket.id}/transfer", {})
    assert "二选一" in res.get_data(as_text=True)
    res = post(
        wang, f"/console/tickets/{ticket.id}/transfer", {"lawyer_id": org["li"], "reason": "李律师熟悉建筑业"}
    )
    assert "已转交" in res.get_data(as_text=True)
    assert stored(app, Ticket, ticket.id).lawyer_id == org["li"]
    li = login(app, "li")
    assert "有咨询转给您处理" in page(li, "/console/notices")

    res = post(li, f"/console/tickets/{ticket.id}/refer", {"reason": ""})
    assert "请填写转介理由" in res.get_data(as_text=True)
    res = post(li, f"/console/tickets/{ticket.id}/refer", {"reason": "欠薪金额大，需要代理仲裁"})
    assert "已提交法律援助转介" in res.get_data(as_text=True)

    assert login(app, "wang").get("/console/referrals").status_code == 403
    admin = login(app, "admin1")
    body = page(admin, "/console/referrals")
    assert "欠薪金额大，需要代理仲裁" in body
    with app.extensions["workerlaw.sessions"]() as s:
        referral_id = s.scalars(select(Referral.id)).one()
    path = f"/console/referrals/{referral_id}/review"
    res = post(admin, path, {"decision": "approve"})
    assert "请选择承办律师" in res.get_data(as_text=True)
    res = post(admin, path, {"decision": "approve", "lawyer_id": "99999"})
    assert "没有这位律师" in res.get_data(as_text=True)
    # 王律师 serves the applicant's own township: the conflict-of-interest rule refuses him.
    res = post(admin, path, {"decision": "approve", "lawyer_id": org["wang"]})
    assert "不能承办" in res.get_data(as_text=True)
    res = post(admin, path, {"decision": "approve", "lawyer_id": org["zhao"]})
    assert "已批准" in res.get_data(as_text=True)
    referral = stored(app, Referral, referral_id)
    assert referral.status == "approved" and referral.assigned_lawyer_id == org["zhao"]
    res = post(admin, path, {"decision": "reject"})
    assert "这个转介已经审核过了" in res.get_data(as_text=True)
    assert "有法律援助案件指派给您" in page(login(app, "zhao"), "/console/notices")
