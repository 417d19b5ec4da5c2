"""The mini-program path end to end: push -> `success` -> outbox -> customer-service API (a real local
stand-in for WeChat), plus the idle-consultation job and the migrations matching the models."""

from __future__ import annotations

from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

from app import create_app
from models import Consultation, Model, OutboxMessage, utcnow
from scheduler.runner import run_job
from tests import wechat_helpers as wx
from tests.wechat_standin import APPID, SECRET, Fault, WeChatStandIn


@pytest.fixture
def wechat():
    with WeChatStandIn() as standin:
        yield standin


@pytest.fixture
def live_app(database_url, clock, wechat):
    """The app with the real WeChat gateway pointed at the local stand-in."""
    config = {
        "TESTING": True,
        "SECRET_KEY": "t",
        "DATABASE_URL": database_url,
        "CLOCK": clock,
        "WECHAT_TOKEN": wx.TOKEN,
        "WECHAT_APPID": APPID,
        "WECHAT_APPSECRET": SECRET,
        "WECHAT_API_BASE_URL": wechat.base_url,
    }
    app = create_app(config)
    yield app
    app.extensions["workerlaw.db"].dispose()


def push_mini_program(app, text: str, msg_id: int, openid: str = "oMiniWorker") -> str:
    body = wx.mp_text_json(text, openid=openid, msg_id=msg_id)
    res = app.test_client().post(
        "/wechat", query_string=wx.signed_query(), data=body, content_type="application/json"
    )
    return res.get_data(as_text=True)


def test_a_mini_program_question_is_answered_through_the_customer_service_api(live_app, wechat):
    for _ in range(2):  # WeChat's retry of the same push queues nothing more
        assert push_mini_program(live_app, "工伤认定要多长时间", 77) == "success"
    assert run_job(live_app, "send-outbox") == 1
    assert run_job(live_app, "send-outbox") == 0
    (sent,) = wechat.delivered
    assert sent.openid == "oMiniWorker" and "工伤" in sent.text
    with live_app.extensions["workerlaw.sessions"]() as s:
        assert s.scalars(select(OutboxMessage)).one().status == "sent"


def test_a_reply_waits_in_the_outbox_while_wechat_fails_and_is_sent_once_it_recovers(live_app, wechat):
    wechat.send_fault = Fault(status=503)
    push_mini_program(live_app, "加班费怎么算", 8)
    assert run_job(live_app, "send-outbox") == 0
    wechat.send_fault = None
    assert run_job(live_app, "send-outbox", now=utcnow() + timedelta(minutes=5)) == 1
    assert len(wechat.delivered) == 1


def test_the_idle_job_closes_consultations(app, client):
    client.post(
        "/wechat",
        query_string=wx.signed_query(),
        data=wx.text_xml("工伤怎么认定", msg_id=1),
        content_type="text/xml",
    )
    assert run_job(app, "close-idle-consultations", now=utcnow() + timedelta(minutes=10)) == 0
    assert run_job(app, "close-idle-consultations", now=utcnow() + timedelta(minutes=31)) == 1
    with app.extensions["workerlaw.sessions"]() as s:
        assert s.scalars(select(Consultation)).one().close_reason == "idle"


def test_the_migrations_create_exactly_the_models_tables(app):
    with app.extensions["workerlaw.db"].connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Model.metadata) == []
