"""`/api`: the staff API behind the lawyers' console — sign-in with lock-out and token versions, the
queue, claim, reply, transfer, note, close, refer; who may see what (a lawyer their regions, a union
admin its region and below); errors as JSON. Tickets are made the real way, through the Inbox."""

from __future__ import annotations

import re
import uuid

import pytest
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select

from bot.inbox import Inbound
from bot.staff import create_user, set_password
from models import Consultation, Message, OutboxMessage, Worker, utcnow
from models.org import Lawyer, LawyerRegion, Region, StaffUser
from models.ticket import Referral, Ticket, TicketEvent

PASSWORD = "correct-horse-1"


@pytest.fixture
def app(bare_app):
    return bare_app


@pytest.fixture
def org(app):
    """city > d1 > t1, and city > d2; lawyers 1 and 2 serve t1, lawyer 3 serves d2; union admins of d1
    and d2; an admin. Returns the ids by name."""
    ids: dict[str, int] = {}
    with app.extensions["workerlaw.sessions"]() as s:
        city = Region(code="city", name="市总工会", level="city")
        s.add(city)
        s.flush()
        d1 = Region(code="d1", name="一区", level="district", parent_id=city.id)
        d2 = Region(code="d2", name="二区", level="district", parent_id=city.id)
        s.add_all([d1, d2])
        s.flush()
        t1 = Region(code="t1", name="一镇", level="township", parent_id=d1.id)
        s.add(t1)
        s.flush()
        ids.update(city=city.id, d1=d1.id, d2=d2.id, t1=t1.id)
        for name, region in (("lawyer1", t1), ("lawyer2", t1), ("lawyer3", d2)):
            lawyer = Lawyer(name=f"{name}律师", firm="某律所", active=True)
            s.add(lawyer)
            s.flush()
            s.add(LawyerRegion(lawyer_id=lawyer.id, region_id=region.id))
            create_user(s, username=name, password=PASSWORD, role="lawyer", lawyer_id=lawyer.id)
            ids[name] = lawyer.id
        create_user(s, username="ua1", password=PASSWORD, role="union_admin", region_id=d1.id)
        create_user(s, username="ua2", password=PASSWORD, role="union_admin", region_id=d2.id)
        create_user(s, username="admin", password=PASSWORD, role="admin")
        s.commit()
    return ids


def open_ticket(app, region_code: str, openid: str, text: str = "我想找律师") -> int:
    """A worker of `region_code` asks for a lawyer through the Inbox; returns the ticket's id."""
    with app.extensions["workerlaw.sessions"]() as s:
        s.add(Worker(channel="oa", openid=openid, region_code=region_code, first_contact_at=utcnow()))
        s.flush()
        now = utcnow()
        msg = Inbound(
            channel="oa",
            openid=openid,
            msg_type="text",
            dedup_key=f"msg|{uuid.uuid4().hex}",
            created_at=now,
            content=text,
        )
        handled = app.extensions["workerlaw.inbox"].handle(s, msg, now=now)
        assert handled.needs_lawyer
        s.commit()
        return s.scalars(select(Ticket.id).where(Ticket.consultation_id == handled.consultation_id)).one()


def login(client, username: str, password: str = PASSWORD) -> dict[str, str]:
    res = client.post("/api/login", json={"username": username, "password": password})
    assert res.status_code == 200, res.get_json()
    return {"Authorization": f"Bearer {res.get_json()['token']}"}


@pytest.fixture
def client(app):
    return app.test_client()


# --- sign-in ---------------------------------------------------------------------------------------


def test_login_returns_a_token_and_the_user(client, org):
    res = client.post("/api/login", json={"username": "lawyer1", "password": PASSWORD})
    body = res.get_json()
    assert res.status_code == 200 and body["token"] and body["expires_in"] == 12 * 3600
    assert body["user"]["username"] == "lawyer1" and body["user"]["role"] == "lawyer"
    assert set(body["user"]) >= {"id", "username", "role", "display_name"}
    headers = {"Authorization": f"Bearer {body['token']}"}
    assert client.get("/api/me", headers=headers).get_json()["username"] == "lawyer1"


def test_a_wrong_password_is_refused_and_counted(app, client, org):
    res = client.post("/api/login", json={"username": "lawyer1", "password": "wrong-password"})
    assert res.status_code == 401 and res.get_json()["error"] == "login_refused"
    unknown = client.post("/api/login", json={"username": "nobody", "password": "wrong-password"})
    assert unknown.status_code == 401 and unknown.get_json()["error"] == "login_refused"
    with app.extensions["workerlaw.sessions"]() as s:
        assert s.scalars(select(StaffUser).where(StaffUser.username == "lawyer1")).one().failed_logins == 1


def test_five_failures_lock_the_account_even_for_the_right_password(app, client, org):
    codes = [
        client.post("/api/login", json={"username": "lawyer2", "password": f"wrong-{i}"}).get_json()["error"]
        for i in range(5)
    ]
    assert codes == ["login_refused"] * 4 + ["account_locked"]
    right = client.post("/api/login", json={"username": "lawyer2", "password": PASSWORD})
    assert right.status_code == 401 and right.get_json()["error"] == "account_locked"
    with app.extensions["workerlaw.sessions"]() as s:
        assert s.scalars(select(StaffUser).where(StaffUser.username == "lawyer2")).one().locked_until


def test_a_password_change_signs_out_earlier_tokens(app, client, org):
    old = login(client, "lawyer1")
    assert client.get("/api/tickets", headers=old).status_code == 200
    with app.extensions["workerlaw.sessions"]() as s:
        set_password(
            s.scalars(select(StaffUser).where(StaffUser.username == "lawyer1")).one(), "another-pass-2"
        )
        s.commit()
    res = client.get("/api/tickets", headers=old)
    assert res.status_code == 401 and res.get_json()["error"] == "unauthorized"
    assert client.get("/api/tickets", headers=login(client, "lawyer1", "another-pass-2")).status_code == 200


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer forged.token.value"}, {"Authorization": "Basic abc"}]
)
def test_without_a_valid_token_401(client, org, headers):
    res = client.get("/api/tickets", headers=headers)
    assert res.status_code == 401 and res.get_json()["error"] == "unauthorized"


def test_a_token_of_the_worker_api_is_not_a_staff_token(app, client, org):
    other = URLSafeTimedSerializer("t", salt="workerlaw-mp-login").dumps({"u": 1, "v": 0})
    assert client.get("/api/tickets", headers={"Authorization": f"Bearer {other}"}).status_code == 401


# --- the queue and a ticket ------------------------------------------------------------------------


def test_the_queue_lists_the_ticket_for_its_regions_lawyer(app, client, org):
    tid = open_ticket(app, "t1", "oW1")
    items = client.get("/api/tickets", headers=login(client, "lawyer1")).get_json()["items"]
    assert [i["id"] for i in items] == [tid]
    item = items[0]
    assert item["status"] == "open" and item["region_id"] == org["t1"] and item["region"] == "一镇"
    assert item["lawyer_id"] is None and item["question"] == "我想找律师" and item["urgent"] is False
    assert item["created_at"] and item["claimed_at"] is None and item["waiting_minutes"] == 0
    headers = login(client, "lawyer1")
    assert client.get("/api/tickets?view=mine", headers=headers).get_json()["items"] == []
    assert len(client.get("/api/tickets?view=unassigned", headers=headers).get_json()["items"]) == 1
    assert client.get("/api/tickets?status=closed", headers=headers).get_json()["items"] == []
    assert client.get("/api/tickets?status=bogus", headers=headers).status_code == 400
    assert client.get("/api/tickets?page=2", headers=headers).get_json()["error"] == "unknown_parameter"


def test_the_ticket_detail_has_transcript_case_card_events_and_budget(app, client, org):
    tid = open_ticket(app, "t1", "oW1")
    body = client.get(f"/api/tickets/{tid}", headers=login(client, "lawyer1")).get_json()
    assert body["id"] == tid and body["case_card"]["home_region_id"] == org["t1"]
    assert [m["from"] for m in body["transcript"]] == ["worker", "bot"]
    assert body["transcript"][0]["text"] == "我想找律师" and body["transcript"][0]["at"]
    assert [e["kind"] for e in body["events"]] == ["created"]
    assert body["budget"]["in_window"] is True and body["budget"]["remaining"] == 5
    assert body["budget"]["window_ends_at"]


def test_claim_is_exclusive(app, client, org):
    tid = open_ticket(app, "t1", "oW1")
    first = client.post(f"/api/tickets/{tid}/claim", headers=login(client, "lawyer1"))
    assert first.status_code == 200 and first.get_json()["status"] == "claimed"
    assert first.get_json()["lawyer_id"] == org["lawyer1"] and first.get_json()["claimed_at"]
    second = client.post(f"/api/tickets/{tid}/claim", headers=login(client, "lawyer2"))
    assert second.status_code == 409 and second.get_json()["error"] == "conflict"
    again = client.post(f"/api/tickets/{tid}/claim", json={}, headers=login(client, "lawyer1"))
    assert again.status_code == 200
    mine = client.get("/api/tickets?view=mine", headers=login(client, "lawyer1")).get_json()["items"]
    assert [i["id"] for i in mine] == [tid]


def test_only_lawyers_claim(app, client, org):
    tid = open_ticket(app, "t1", "oW1")
    res = client.post(f"/api/tickets/{tid}/claim", headers=login(client, "ua1"))
    assert res.status_code == 403 and res.get_json()["error"] == "forbidden"


def test_reply_queues_a_customer_service_message(app, client, org):
    tid = open_ticket(app, "t1", "oW1")
    headers = login(client, "lawyer1")
    early = client.post(f"/api/tickets/{tid}/reply", json={"text": "您好"}, headers=headers)
    assert early.status_code == 409  # claim first
    client.post(f"/api/tickets/{tid}/claim", headers=headers)
    res = client.post(f"/api/tickets/{tid}/reply", json={"text": "请把工资条拍照发来"}, headers=headers)
    body = res.get_json()
    assert res.status_code == 200 and body["delivery"]["via"] == "customer_service"
    assert body["ticket"]["first_response_at"]
    with app.extensions["workerlaw.sessions"]() as s:
        queued = s.scalars(select(OutboxMessage).where(OutboxMessage.dedup_key.like("cs|lawyer|%"))).all()
        assert [(m.openid, m.content) for m in queued] == [("oW1", "请把工资条拍照发来")]
        assert (
            s.scalars(select(Message).where(Message.author == "lawyer")).one().delivery == "customer_service"
        )
    other = client.post(
        f"/api/tickets/{tid}/reply", json={"text": "我来答"}, headers=login(client, "lawyer2")
    )
    assert other.status_code == 409
    too_long = client.post(f"/api/tickets/{tid}/reply", json={"text": "字" * 2001}, headers=headers)
    assert too_long.status_code == 400 and too_long.get_json()["error"] == "field_too_long"


def test_transfer_to_a_lawyer_and_to_a_region(app, client, org):
    tid = open_ticket(app, "t1", "oW1")
    headers = login(client, "lawyer1")
    client.post(f"/api/tickets/{tid}/claim", headers=headers)
    both = client.post(
        f"/api/tickets/{tid}/transfer",
        json={"lawyer_id": org["lawyer2"], "region_id": org["d2"]},
        headers=headers,
    )
    assert both.status_code == 400
    assert client.post(f"/api/tickets/{tid}/transfer", json={}, headers=headers).status_code == 400
    bad = client.post(f"/api/tickets/{tid}/transfer", json={"lawyer_id": True}, headers=headers)
    assert bad.status_code == 400
    unknown = client.post(f"/api/tickets/{tid}/transfer", json={"lawyer_id": 9999}, headers=headers)
    assert unknown.status_code == 400
    res = client.post(
        f"/api/tickets/{tid}/transfer",
        json={"lawyer_id": org["lawyer2"], "reason": "他更熟悉"},
        headers=headers,
    )
    assert res.status_code == 200 and res.get_json()["lawyer_id"] == org["lawyer2"]
    # lawyer1 still serves t1 and sees it, but no longer holds it
    assert client.post(f"/api/tickets/{tid}/reply", json={"text": "x"}, headers=headers).status_code == 409
    lawyer2 = login(client, "lawyer2")
    moved = client.post(f"/api/tickets/{tid}/transfer", json={"region_id": org["d2"]}, headers=lawyer2)
    assert moved.status_code == 200
    assert moved.get_json()["region_id"] == org["d2"] and moved.get_json()["status"] == "open"
    assert client.get(f"/api/tickets/{tid}", headers=headers).status_code == 404
    assert client.get(f"/api/tickets/{tid}", headers=login(client, "lawyer3")).status_code == 200
    with app.extensions["workerlaw.sessions"]() as s:
        texts = s.scalars(select(TicketEvent.text).where(TicketEvent.kind == "transfer")).all()
        assert texts == ["转给律师 lawyer2律师：他更熟悉", "转给二区"]


def test_note_close_and_the_worker_is_asked_to_rate(app, client, org):
    tid = open_ticket(app, "t1", "oW1")
    headers = login(client, "lawyer1")
    client.post(f"/api/tickets/{tid}/claim", headers=headers)
    noted = client.post(f"/api/tickets/{tid}/note", json={"text": "需要查工资条"}, headers=headers)
    assert noted.status_code == 200 and noted.get_json()["kind"] == "note"
    assert (
        client.post(f"/api/tickets/{tid}/close", json={"outcome": "won"}, headers=headers).get_json()["error"]
        == "invalid_field"
    )
    assert (
        client.post(
            f"/api/tickets/{tid}/close",
            json={"outcome": "answered", "category": "astrology"},
            headers=headers,
        ).status_code
        == 400
    )
    res = client.post(
        f"/api/tickets/{tid}/close", json={"outcome": "answered", "category": "wage_arrears"}, headers=headers
    )
    assert res.status_code == 200, res.get_json()
    assert res.get_json()["status"] == "closed" and res.get_json()["category"] == "wage_arrears"
    again = client.post(f"/api/tickets/{tid}/close", json={"outcome": "answered"}, headers=headers)
    assert again.status_code == 409
    with app.extensions["workerlaw.sessions"]() as s:
        ticket = s.get(Ticket, tid)
        worker = s.get(Worker, ticket.worker_id)
        assert worker.conversation == {"rate": ticket.consultation_id}
        assert s.get(Consultation, ticket.consultation_id).resolution == "lawyer"
    closed = client.get("/api/tickets?status=closed", headers=headers).get_json()["items"]
    assert [i["id"] for i in closed] == [tid]
    assert client.get("/api/tickets", headers=headers).get_json()["items"] == []


def test_refer_goes_to_the_district_union(app, client, org):
    tid = open_ticket(app, "t1", "oW1")
    headers = login(client, "lawyer1")
    client.post(f"/api/tickets/{tid}/claim", headers=headers)
    res = client.post(f"/api/tickets/{tid}/refer", json={"reason": "需要代理仲裁"}, headers=headers)
    assert res.status_code == 200 and res.get_json()["district_id"] == org["d1"]
    assert res.get_json()["status"] == "pending"
    with app.extensions["workerlaw.sessions"]() as s:
        assert s.scalars(select(Referral.ticket_id)).all() == [tid]


# --- who sees what ---------------------------------------------------------------------------------


def test_a_lawyer_of_another_region_gets_404(app, client, org):
    tid = open_ticket(app, "t1", "oW1")
    headers = login(client, "lawyer3")
    assert client.get("/api/tickets", headers=headers).get_json()["items"] == []
    for method, url, payload in (
        ("get", f"/api/tickets/{tid}", None),
        ("post", f"/api/tickets/{tid}/claim", None),
        ("post", f"/api/tickets/{tid}/reply", {"text": "您好"}),
        ("post", f"/api/tickets/{tid}/note", {"text": "看看"}),
        ("post", f"/api/tickets/{tid}/close", {"outcome": "answered"}),
    ):
        res = getattr(client, method)(url, json=payload, headers=headers)
        assert res.status_code == 404 and res.get_json()["error"] == "not_found", url
    with app.extensions["workerlaw.sessions"]() as s:
        ticket = s.get(Ticket, tid)
        assert ticket.lawyer_id is None and ticket.status == "open"


def test_a_union_admin_sees_its_region_and_below_but_not_a_sibling(app, client, org):
    mine = open_ticket(app, "t1", "oW1")
    sibling = open_ticket(app, "d2", "oW2")
    ua1 = login(client, "ua1")
    assert [i["id"] for i in client.get("/api/tickets", headers=ua1).get_json()["items"]] == [mine]
    assert client.get(f"/api/tickets/{mine}", headers=ua1).status_code == 200
    assert client.get(f"/api/tickets/{sibling}", headers=ua1).status_code == 404
    ua2 = login(client, "ua2")
    assert [i["id"] for i in client.get("/api/tickets", headers=ua2).get_json()["items"]] == [sibling]
    admin = login(client, "admin")
    assert {i["id"] for i in client.get("/api/tickets", headers=admin).get_json()["items"]} == {mine, sibling}


# --- bad requests ----------------------------------------------------------------------------------


def test_unknown_fields_and_bad_bodies_are_400(app, client, org):
    tid = open_ticket(app, "t1", "oW1")
    headers = login(client, "lawyer1")
    client.post(f"/api/tickets/{tid}/claim", headers=headers)
    for url, payload, code in (
        ("/api/login", {"username": "lawyer1", "password": PASSWORD, "remember": True}, "unknown_field"),
        ("/api/login", {"username": "lawyer1"}, "missing_field"),
        ("/api/login", [1], "invalid_body"),
        (f"/api/tickets/{tid}/reply", {"text": "好", "urgent": True}, "unknown_field"),
        (f"/api/tickets/{tid}/reply", {"text": 5}, "invalid_field"),
        (f"/api/tickets/{tid}/note", {"note": "x"}, "unknown_field"),
        (f"/api/tickets/{tid}/claim", {"force": True}, "unknown_field"),
        (f"/api/tickets/{tid}/close", {"outcome": "answered", "why": "x"}, "unknown_field"),
        (f"/api/tickets/{tid}/transfer", {"lawyer_id": org["lawyer2"], "to": 1}, "unknown_field"),
        (f"/api/tickets/{tid}/refer", {"reason": ""}, "invalid_field"),
    ):
        res = client.post(url, json=payload, headers=headers)
        assert res.status_code == 400 and res.get_json()["error"] == code, (url, res.get_json())


def test_unknown_tickets_and_routes_answer_json(client, org):
    headers = login(client, "admin")
    for url in ("/api/tickets/999", f"/api/tickets/{10**20}", "/api/tickets/abc", "/api/nothing"):
        res = client.get(url, headers=headers)
        assert res.status_code == 404 and res.get_json()["error"] == "not_found", url
    res = client.get("/api/login")
    assert res.status_code == 405 and set(res.get_json()) == {"error", "message"}
    assert client.get("/api/mp/nothing").get_json()["error"] == "not_found"
    assert "<" in client.get("/nothing").get_data(as_text=True)  # the site keeps HTML errors


# --- the OpenAPI document --------------------------------------------------------------------------


def test_every_staff_route_is_documented_and_nothing_else(app, client):
    spec = client.get("/api/openapi.json").get_json()
    documented = {(path, method.upper()) for path, ops in spec["paths"].items() for method in ops}
    routed = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/") and not rule.rule.startswith("/api/mp/"):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            routed |= {(path, m) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert ("/api/tickets/{ticket_id}/claim", "POST") in routed
    assert routed == documented
    assert spec["components"]["schemas"]["Error"]["required"] == ["error", "message"]
