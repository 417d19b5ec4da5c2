"""A lawyer's reply reaching a worker: customer-service message inside WeChat's 48 hours, a one-time
subscription message beyond it when the worker granted one, else waiting in the history; always stored
first, sent once. Delivery goes through the outbox to a real local stand-in for WeChat's API."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app import ConfigurationError, create_app
from bot import notify
from bot.outbox import deliver_due
from models import (
    LAWYER,
    MINI_PROGRAM,
    OFFICIAL_ACCOUNT,
    WEB,
    Consultation,
    Message,
    OutboxMessage,
    Worker,
    utcnow,
)
from tests.test_handlers_api_worker import sign_in

TEMPLATE = "tmpl-reply-ready"


@pytest.fixture
def app(database_url, standin):
    application = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "t",
            "DATABASE_URL": database_url,
            "WECHAT_APPID": standin.appid,
            "WECHAT_APPSECRET": standin.secret,
            "WECHAT_API_BASE_URL": standin.base_url,
            "WECHAT_REPLY_TEMPLATE_ID": TEMPLATE,
        }
    )
    yield application
    application.extensions["workerlaw.db"].dispose()


def _case(session, *, channel=MINI_PROGRAM, last_message_ago=timedelta(hours=1), openid="o-worker"):
    now = utcnow()
    worker = Worker(
        channel=channel, openid=openid, first_contact_at=now, last_message_at=now - last_message_ago
    )
    session.add(worker)
    session.flush()
    consultation = Consultation(
        worker_id=worker.id, channel=channel, category="wage_arrears", opened_at=now, last_activity_at=now
    )
    session.add(consultation)
    session.flush()
    return worker, consultation


def _reply(app, session, consultation, key="r1", text="您好，可以先向劳动监察大队投诉。"):
    template = app.extensions["workerlaw.reply_template"]
    return notify.deliver_reply(session, consultation, text, key=key, now=utcnow(), template=template)


def _send_all(app):
    return deliver_due(
        app.extensions["workerlaw.sessions"], app.extensions["workerlaw.wechat"], now=utcnow(), worker_id="t"
    )


def test_inside_48_hours_the_reply_goes_as_a_customer_service_message(app, standin):
    with app.extensions["workerlaw.sessions"]() as s:
        _, consultation = _case(s)
        delivery = _reply(app, s, consultation)
        s.commit()
        assert delivery.via == notify.CUSTOMER_SERVICE and delivery.message.author == LAWYER
    assert _send_all(app) == 1
    assert [(d.openid, d.text) for d in standin.delivered] == [
        ("o-worker", "您好，可以先向劳动监察大队投诉。")
    ]
    assert standin.subscribed == []


def test_beyond_48_hours_a_granted_subscription_carries_a_notice(app, standin):
    with app.extensions["workerlaw.sessions"]() as s:
        worker, consultation = _case(s, last_message_ago=timedelta(days=3))
        notify.grant(s, worker, [TEMPLATE], now=utcnow())
        first = _reply(app, s, consultation, key="r1")
        second = _reply(app, s, consultation, key="r2", text="补充一点：保留好考勤记录。")
        s.commit()
    # One grant allows one message: the first reply spends it, the second waits in the history.
    assert (first.via, second.via) == (notify.SUBSCRIPTION, notify.HISTORY)
    assert _send_all(app) == 1
    [sent] = standin.subscribed
    assert sent.openid == "o-worker" and sent.template_id == TEMPLATE and sent.page == "pages/history/index"
    assert sent.data["thing1"] == notify.TITLE and sent.data["thing3"] == notify.HINT
    assert sent.data["time2"].count("年") == 1 and all(
        len(v) <= notify.THING_LIMIT for v in sent.data.values()
    )
    assert standin.delivered == []
    with app.extensions["workerlaw.sessions"]() as s:
        texts = s.scalars(select(Message.content).where(Message.author == LAWYER).order_by(Message.id)).all()
        assert texts == ["您好，可以先向劳动监察大队投诉。", "补充一点：保留好考勤记录。"]


@pytest.mark.parametrize(
    ("channel", "ago"),
    [(MINI_PROGRAM, timedelta(days=3)), (OFFICIAL_ACCOUNT, timedelta(days=3)), (WEB, timedelta(minutes=1))],
)
def test_without_a_way_to_push_the_reply_waits_in_the_history(app, channel, ago):
    with app.extensions["workerlaw.sessions"]() as s:
        _, consultation = _case(s, channel=channel, last_message_ago=ago)
        delivery = _reply(app, s, consultation)
        s.commit()
        assert delivery.via == notify.HISTORY
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 0
        assert s.scalar(select(func.count()).select_from(Message)) == 1


def test_the_same_reply_is_stored_and_queued_once(app, standin):
    with app.extensions["workerlaw.sessions"]() as s:
        _, consultation = _case(s)
        first = _reply(app, s, consultation, key="same")
        again = _reply(app, s, consultation, key="same")
        s.commit()
        assert first.message.id == again.message.id and again.via == notify.CUSTOMER_SERVICE
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 1
    assert _send_all(app) == 1 and len(standin.delivered) == 1


def test_the_worker_grants_subscriptions_through_the_api_and_reads_the_reply(app, standin):
    client = app.test_client()
    headers = sign_in(client, "granting")
    assert client.get("/api/mp/subscriptions", headers=headers).get_json() == {
        "template_id": TEMPLATE,
        "unused": 0,
    }
    res = client.post("/api/mp/subscriptions", json={"template_ids": [TEMPLATE]}, headers=headers)
    assert res.status_code == 200 and res.get_json()["unused"] == 1
    bad = client.post("/api/mp/subscriptions", json={"template_ids": ["someone-elses"]}, headers=headers)
    assert bad.status_code == 400 and bad.get_json()["error"] == "unknown_template"
    assert client.post("/api/mp/subscriptions", json={"template_ids": []}, headers=headers).status_code == 400
    cid = client.post("/api/mp/ask", json={"text": "我想找律师"}, headers=headers).get_json()[
        "consultation_id"
    ]
    with app.extensions["workerlaw.sessions"]() as s:
        consultation = s.get(Consultation, cid)
        worker = s.get(Worker, consultation.worker_id)
        worker.last_message_at = utcnow() - timedelta(days=5)  # the worker went quiet for five days
        assert _reply(app, s, consultation, text="律师：请带上工资条来站点。").via == notify.SUBSCRIPTION
        s.commit()
    assert _send_all(app) == 1 and standin.subscribed[0].openid == "o-granting"
    assert client.get("/api/mp/subscriptions", headers=headers).get_json()["unused"] == 0
    messages = client.get(f"/api/mp/consultations/{cid}", headers=headers).get_json()["messages"]
    assert messages[-1] == {**messages[-1], "from": "lawyer", "text": "律师：请带上工资条来站点。"}


def test_a_bad_template_field_mapping_stops_start_up(database_url):
    with pytest.raises(ConfigurationError, match="WECHAT_REPLY_TEMPLATE_FIELDS"):
        create_app(
            {
                "TESTING": True,
                "DATABASE_URL": database_url,
                "WECHAT_REPLY_TEMPLATE_ID": TEMPLATE,
                "WECHAT_REPLY_TEMPLATE_FIELDS": "thing1=salary",
            }
        )


def test_the_outbox_row_of_a_subscription_holds_the_template_call(app):
    with app.extensions["workerlaw.sessions"]() as s:
        worker, consultation = _case(s, last_message_ago=timedelta(days=2, minutes=1))
        notify.grant(s, worker, [TEMPLATE], now=utcnow())
        _reply(app, s, consultation)
        s.commit()
        row = s.scalars(select(OutboxMessage)).one()
        assert row.kind == "subscribe" and json.loads(row.content)["template_id"] == TEMPLATE
