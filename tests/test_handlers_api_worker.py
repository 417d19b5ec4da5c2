"""`/api/mp` for a signed-in worker: sign-in through WeChat's jscode2session (a real local stand-in),
ask through the same engine and 人次 rules as the webhook, history, transcript, rating; errors as JSON."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app import create_app
from models import Consultation, Worker
from tests import wechat_helpers as wx


@pytest.fixture
def api(database_url, clock, standin):
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
    yield app
    app.extensions["workerlaw.db"].dispose()


def sign_in(client, code="abc", *, accept=True):
    res = client.post("/api/mp/login", json={"code": code})
    assert res.status_code == 200, res.get_json()
    headers = {"Authorization": f"Bearer {res.get_json()['token']}"}
    if accept:
        version = client.get("/api/mp/privacy").get_json()["version"]
        assert client.post("/api/mp/privacy", json={"version": version}, headers=headers).status_code == 200
    return headers


def test_sign_in_returns_a_token_and_never_the_session_key(api, standin):
    res = api.test_client().post("/api/mp/login", json={"code": "abc"})
    body = res.get_json()
    assert res.status_code == 200 and body["token"] and body["expires_in"] > 0
    assert "secret-session-key" not in res.get_data(as_text=True)
    assert standin.hits["/sns/jscode2session"] == 1


def test_ask_answers_and_counts_one_consultation_like_the_webhook(api):
    client = api.test_client()
    headers = sign_in(client)
    first = client.post(
        "/api/mp/ask", json={"text": "没签劳动合同能要二倍工资吗"}, headers=headers
    ).get_json()
    assert first["reply"] and first["consultation_id"]
    second = client.post("/api/mp/ask", json={"text": "详细"}, headers=headers).get_json()
    assert second["consultation_id"] == first["consultation_id"]
    with api.extensions["workerlaw.sessions"]() as s:
        assert s.scalar(select(func.count()).select_from(Consultation)) == 1


def test_history_transcript_and_rating(api):
    client = api.test_client()
    headers = sign_in(client)
    cid = client.post("/api/mp/ask", json={"text": "工伤认定要多长时间"}, headers=headers).get_json()[
        "consultation_id"
    ]
    items = client.get("/api/mp/consultations", headers=headers).get_json()["items"]
    assert [i["id"] for i in items] == [cid]
    detail = client.get(f"/api/mp/consultations/{cid}", headers=headers).get_json()
    assert [m["from"] for m in detail["messages"]] == ["worker", "bot"]
    assert detail["messages"][0]["text"] == "工伤认定要多长时间"
    rated = client.post(f"/api/mp/consultations/{cid}/rating", json={"stars": 5}, headers=headers).get_json()
    assert rated["rating"] == 5


def test_another_workers_consultation_is_not_found(api):
    client = api.test_client()
    mine = sign_in(client, "alice")
    cid = client.post("/api/mp/ask", json={"text": "加班费怎么算"}, headers=mine).get_json()[
        "consultation_id"
    ]
    other = sign_in(client, "bob")
    assert client.get(f"/api/mp/consultations/{cid}", headers=other).status_code == 404
    assert (
        client.post(f"/api/mp/consultations/{cid}/rating", json={"stars": 1}, headers=other).status_code
        == 404
    )


def test_the_same_unionid_on_the_official_account_is_the_same_person(api):
    client = api.test_client()
    client.post(
        "/wechat",
        query_string=wx.signed_query(),
        data=wx.text_xml("工伤怎么认定", openid="oOA", msg_id=9),
        content_type="text/xml",
    )
    with api.extensions["workerlaw.sessions"]() as s:
        s.scalars(select(Worker).where(Worker.openid == "oOA")).one().unionid = "u-carol"
        s.commit()
    items = client.get("/api/mp/consultations", headers=sign_in(client, "carol")).get_json()["items"]
    assert len(items) == 1 and items[0]["channel"] == "oa"


@pytest.mark.parametrize(
    ("method", "url", "payload", "status", "code"),
    [
        ("post", "/api/mp/login", {"code": "bad"}, 401, "invalid_code"),
        ("post", "/api/mp/login", {"code": ""}, 400, "invalid_field"),
        ("post", "/api/mp/login", {"code": "x", "extra": 1}, 400, "unknown_field"),
        ("post", "/api/mp/login", [1, 2], 400, "invalid_body"),
        ("post", "/api/mp/ask", {"text": "工伤"}, 401, "unauthorized"),
        ("get", "/api/mp/consultations", None, 401, "unauthorized"),
    ],
)
def test_bad_requests_get_json_errors(api, method, url, payload, status, code):
    client = api.test_client()
    res = getattr(client, method)(url, json=payload) if payload is not None else getattr(client, method)(url)
    assert res.status_code == status and res.get_json()["error"] == code


def test_signed_in_input_is_validated(api):
    client = api.test_client()
    headers = sign_in(client)
    assert (
        client.post("/api/mp/ask", json={"text": "工" * 501}, headers=headers).get_json()["error"]
        == "field_too_long"
    )
    assert (
        client.post("/api/mp/ask", json={"text": 5}, headers=headers).get_json()["error"] == "invalid_field"
    )
    assert (
        client.post("/api/mp/consultations/1/rating", json={"stars": 6}, headers=headers).status_code == 400
    )
    bad = {"Authorization": "Bearer forged.token.value"}
    assert client.get("/api/mp/consultations", headers=bad).get_json()["error"] == "unauthorized"


def test_the_privacy_notice_must_be_accepted_before_the_first_question(api):
    client = api.test_client()
    headers = sign_in(client, "dave", accept=False)
    notice = client.get("/api/mp/privacy").get_json()
    assert "隐私" in notice["text"] and notice["version"]
    assert (
        client.post("/api/mp/ask", json={"text": "工伤"}, headers=headers).get_json()["error"]
        == "privacy_not_accepted"
    )
    old = client.post("/api/mp/privacy", json={"version": "1999-01"}, headers=headers)
    assert old.status_code == 409 and old.get_json()["error"] == "privacy_outdated"
    client.post("/api/mp/privacy", json={"version": notice["version"]}, headers=headers)
    with api.extensions["workerlaw.sessions"]() as s:
        worker = s.scalars(select(Worker).where(Worker.openid == "o-dave")).one()
        assert worker.privacy_version == notice["version"] and worker.privacy_accepted_at is not None
    assert client.post("/api/mp/ask", json={"text": "工伤怎么认定"}, headers=headers).status_code == 200


def test_erasing_me_blanks_texts_and_identity_but_keeps_the_counts(api):
    from models import Message

    client = api.test_client()
    headers = sign_in(client, "erin")
    client.post("/api/mp/ask", json={"text": "我的手机号13800138000，老板欠薪怎么办"}, headers=headers)
    res = client.delete("/api/mp/me", headers=headers)
    assert res.status_code == 200 and res.get_json()["messages_blanked"] == 2
    with api.extensions["workerlaw.sessions"]() as s:
        assert s.scalar(select(func.count()).select_from(Consultation)) == 1  # the 人次 still counts
        assert all(m.content is None and m.reply is None for m in s.scalars(select(Message)))
        worker = s.scalars(select(Worker)).one()
        assert worker.openid.startswith("erased:") and worker.unionid is None and worker.erased_at
    assert client.get("/api/mp/consultations", headers=headers).status_code == 401


def test_a_follow_up_joins_an_open_consultation_and_a_closed_one_refuses(api):
    client = api.test_client()
    headers = sign_in(client, "fay")
    cid = client.post("/api/mp/ask", json={"text": "加班费怎么算"}, headers=headers).get_json()[
        "consultation_id"
    ]
    more = client.post(f"/api/mp/consultations/{cid}/messages", json={"text": "周末加班呢"}, headers=headers)
    assert more.status_code == 200 and more.get_json()["consultation_id"] == cid
    client.post("/api/mp/ask", json={"text": "结束"}, headers=headers)
    closed = client.post(f"/api/mp/consultations/{cid}/messages", json={"text": "还有问题"}, headers=headers)
    assert closed.status_code == 409 and closed.get_json()["error"] == "consultation_closed"


def test_the_first_answer_offers_the_kinds_of_work_and_one_tap_records_it(api):
    client = api.test_client()
    headers = sign_in(client)
    first = client.post(
        "/api/mp/ask", json={"text": "没签劳动合同能要二倍工资吗"}, headers=headers
    ).get_json()
    labels = [c["label"] for c in first["worker_type_choices"]]
    assert labels[:3] == ["外卖骑手", "快递员", "网约车司机"]
    assert "您做的是哪一行" not in first["reply"]  # the app shows buttons; the text stays clean
    assert client.get("/api/mp/worker-types").get_json()["items"][0] == {"code": "rider", "label": "外卖骑手"}
    refused = client.put("/api/mp/me/worker-type", json={"type": "pilot"}, headers=headers)
    assert refused.status_code == 400
    assert client.put("/api/mp/me/worker-type", json={"type": "courier"}).status_code == 401
    done = client.put("/api/mp/me/worker-type", json={"type": "courier"}, headers=headers)
    assert done.status_code == 200 and done.get_json() == {"type": "courier"}
    with api.extensions["workerlaw.sessions"]() as s:
        assert s.scalars(select(Worker.worker_type)).one() == "courier"
        assert s.scalars(select(Consultation.worker_type)).one() == "courier"
    second = client.post("/api/mp/ask", json={"text": "被辞退有补偿吗"}, headers=headers).get_json()
    assert second["worker_type_choices"] is None
