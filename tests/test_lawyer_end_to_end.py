"""From a worker's out-of-scope question on the official account to a lawyer's reply in WeChat: the real
webhook (signed like WeChat), the staff API over HTTP, the outbox job, and WeChat's API stood in for by
a local HTTP server; then closing, which asks the worker for a rating."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app import create_app
from bot.outbox import deliver_due
from bot.staff import create_user
from models import Consultation, Worker, utcnow
from models.org import Lawyer, LawyerRegion, Region
from tests import wechat_helpers as wx

QUESTION = "我和老公离婚孩子归谁"
REPLY = "您好，离婚后孩子的抚养权先由双方协商，协商不成可以向法院起诉。"


@pytest.fixture
def service(database_url, clock, standin):
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "t",
            "DATABASE_URL": database_url,
            "CLOCK": clock,
            "WECHAT_TOKEN": wx.TOKEN,
            "WECHAT_APPID": standin.appid,
            "WECHAT_APPSECRET": standin.secret,
            "WECHAT_API_BASE_URL": standin.base_url,
        }
    )
    with app.extensions["workerlaw.sessions"]() as s:
        city = Region(code="city", name="市总工会", level="city")
        lawyer = Lawyer(name="王律师", firm="某律所", active=True)
        s.add_all([city, lawyer])
        s.flush()
        s.add(LawyerRegion(lawyer_id=lawyer.id, region_id=city.id))
        create_user(s, username="wang", password="wang-password-1", role="lawyer", lawyer_id=lawyer.id)
        s.commit()
    yield app
    app.extensions["workerlaw.db"].dispose()


def push(client, text: str, msg_id: int) -> str:
    res = client.post(
        "/wechat",
        query_string=wx.signed_query(),
        data=wx.text_xml(text, openid="oWorker9", msg_id=msg_id),
        content_type="text/xml",
    )
    assert res.status_code == 200
    return wx.reply_content(res.get_data(as_text=True))


def send_outbox(app) -> int:
    return deliver_due(
        app.extensions["workerlaw.sessions"],
        app.extensions["workerlaw.wechat"],
        now=utcnow() + timedelta(minutes=1),
        worker_id="t",
    )


def test_an_out_of_scope_question_reaches_a_lawyer_and_the_reply_reaches_the_worker(service, standin):
    client = service.test_client()
    handover = push(client, QUESTION, 1)
    assert "律师" in handover  # told a lawyer will answer, and asked the first intake question
    assert "单位" in handover

    headers = {
        "Authorization": "Bearer "
        + client.post("/api/login", json={"username": "wang", "password": "wang-password-1"}).get_json()[
            "token"
        ]
    }
    items = client.get("/api/tickets", headers=headers).get_json()["items"]
    assert [i["question"] for i in items] == [QUESTION]
    tid = items[0]["id"]
    assert items[0]["status"] == "open" and items[0]["region"] == "市总工会"

    push(client, "某某餐馆", 2)  # the first intake answer goes on the case card
    detail = client.get(f"/api/tickets/{tid}", headers=headers).get_json()
    assert detail["case_card"]["employer"] == "某某餐馆"

    claimed = client.post(f"/api/tickets/{tid}/claim", headers=headers)
    assert claimed.status_code == 200 and claimed.get_json()["status"] == "claimed"
    replied = client.post(f"/api/tickets/{tid}/reply", json={"text": REPLY}, headers=headers)
    assert replied.status_code == 200 and replied.get_json()["delivery"]["via"] == "customer_service"

    assert standin.delivered == []  # held a few seconds so the lawyer's next lines can join it
    assert send_outbox(service) == 1
    assert [(d.openid, d.text) for d in standin.delivered] == [("oWorker9", REPLY)]

    closed = client.post(
        f"/api/tickets/{tid}/close", json={"outcome": "answered", "category": None}, headers=headers
    )
    assert closed.status_code == 200 and closed.get_json()["status"] == "closed"
    assert send_outbox(service) == 1
    rating_request = service.extensions["workerlaw.engine"].kb.replies["lawyer_closed"]
    assert [d.text for d in standin.delivered] == [REPLY, rating_request]
    with service.extensions["workerlaw.sessions"]() as s:
        worker = s.scalars(select(Worker).where(Worker.openid == "oWorker9")).one()
        consultation_id = worker.conversation["rate"]
        assert s.get(Consultation, consultation_id).close_reason == "lawyer"

    thanks = push(client, "5", 3)  # the worker rates the help
    assert thanks == service.extensions["workerlaw.engine"].kb.replies["rate_thanks"]
    with service.extensions["workerlaw.sessions"]() as s:
        assert s.get(Consultation, consultation_id).rating == 5
