"""The `/wechat` webhook as WeChat talks to it: verification, modes, message types, retries, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from models import Consultation, Message, Worker
from tests import wechat_helpers as wx

VECTORS = (
    json.loads((Path(__file__).resolve().parents[2] / "shared" / "wechat" / "test-vectors.json").read_text())
    if (Path(__file__).resolve().parents[2] / "shared" / "wechat" / "test-vectors.json").exists()
    else None
)


def post(client, body: str | bytes, query: dict[str, str], content_type: str = "text/xml"):
    return client.post("/wechat", query_string=query, data=body, content_type=content_type)


def count(sessions, model, *where) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def test_url_verification_echoes_echostr(client):
    query = wx.signed_query(echostr="hello123")
    res = client.get("/wechat", query_string=query)
    assert res.status_code == 200 and res.get_data(as_text=True) == "hello123"


@pytest.mark.parametrize("tamper", ["signature", "timestamp", "missing"])
def test_bad_or_stale_signatures_are_refused(client, clock, tamper):
    query = wx.signed_query(echostr="x")
    if tamper == "signature":
        query["signature"] = "0" * 40
    elif tamper == "timestamp":
        clock.now += 3600  # our clock is an hour past the signed timestamp
    else:
        del query["nonce"]
    assert client.get("/wechat", query_string=query).status_code == 403


def test_docs_vector_verifies(app, client, clock):
    """WeChat's documented URL-verification example, with its own token."""
    app.config["WECHAT_TOKEN"] = "AAAAA"
    clock.now = 1714036504
    query = {
        "signature": "f464b24fc39322e44b38aa78f5edd27bd1441696",
        "timestamp": "1714036504",
        "nonce": "1514711492",
        "echostr": "4375120948345356249",
    }
    assert client.get("/wechat", query_string=query).get_data(as_text=True) == "4375120948345356249"


def test_text_question_gets_a_passive_answer_and_opens_one_consultation(client, sessions):
    res = post(client, wx.text_xml("没签劳动合同能要二倍工资吗", msg_id=1001), wx.signed_query())
    assert res.status_code == 200
    content = wx.reply_content(res.get_data(as_text=True))
    assert "律师" in content and len(content.encode()) <= 2048
    assert count(sessions, Consultation) == 1 and count(sessions, Message, Message.direction == "in") == 1
    with sessions() as s:
        out = s.scalars(select(Message).where(Message.direction == "out")).one()
        assert out.content == content and out.consultation_id is not None  # the transcript has both sides


def test_a_retried_delivery_gets_the_same_reply_and_is_counted_once(client, sessions):
    body = wx.text_xml("工伤认定要多久", msg_id=2002)
    first = wx.reply_content(post(client, body, wx.signed_query()).get_data(as_text=True))
    for _ in range(3):
        again = wx.reply_content(post(client, body, wx.signed_query()).get_data(as_text=True))
        assert again == first
    assert count(sessions, Message, Message.direction == "in") == 1 and count(sessions, Consultation) == 1


def test_follow_up_messages_join_the_open_consultation_and_end_closes_it(client, sessions):
    post(client, wx.text_xml("老板拖欠工资三个月怎么办", msg_id=1), wx.signed_query())
    post(client, wx.text_xml("详细", msg_id=2), wx.signed_query())
    res = post(client, wx.text_xml("结束", msg_id=3), wx.signed_query())
    assert "结束" in wx.reply_content(res.get_data(as_text=True))
    with sessions() as s:
        (consultation,) = s.scalars(select(Consultation)).all()
        assert consultation.closed_at is not None and consultation.close_reason == "worker"
        assert consultation.resolution in ("answered", "clarified", "escalated")
    post(client, wx.text_xml("被辞退了有没有补偿", msg_id=4), wx.signed_query())
    assert count(sessions, Consultation) == 2


def test_safe_mode_push_is_decrypted_and_the_reply_encrypted(client, sessions):
    body, query = wx.encrypted(wx.text_xml("加班费怎么算", msg_id=3003))
    res = post(client, body, query)
    assert res.status_code == 200
    xml = res.get_data(as_text=True)
    assert "<Encrypt>" in xml and "加班" not in xml
    assert "加班" in wx.reply_content(xml)


def test_compatible_mode_push_is_accepted(client):
    body, query = wx.encrypted(wx.text_xml("社保断缴怎么办", msg_id=3004), compatible=True)
    assert "保险" in wx.reply_content(post(client, body, query).get_data(as_text=True))


def test_the_previous_aes_key_still_decrypts_during_rotation(app, client):
    app.extensions["workerlaw.keys"] = app.extensions["workerlaw.keys"].__class__(
        token=wx.TOKEN, appid=wx.APPID, aes_key=wx.AES_KEY, previous_aes_key=wx.OLD_AES_KEY
    )
    body, query = wx.encrypted(wx.text_xml("工伤赔偿", msg_id=3005), aes_key=wx.OLD_AES_KEY)
    assert post(client, body, query).status_code == 200


def test_a_push_encrypted_with_an_unknown_key_is_refused(client):
    body, query = wx.encrypted(wx.text_xml("工伤赔偿", msg_id=3006), aes_key=wx.OLD_AES_KEY)
    assert post(client, body, query).status_code == 400


@pytest.mark.skipif(VECTORS is None, reason="needs ../shared/wechat/test-vectors.json beside the repository")
def test_tencent_sample_push_decrypts(app, client, clock, sessions):
    v = VECTORS["tencent_sample"]
    app.config["WECHAT_TOKEN"] = v["token"]
    app.extensions["workerlaw.keys"] = app.extensions["workerlaw.keys"].__class__(
        token=v["token"], appid=v["appid"], aes_key=v["aes_key"]
    )
    clock.now = int(v["timestamp"])
    query = {
        "signature": wx.signature(v["token"], v["timestamp"], v["nonce"]),
        "timestamp": v["timestamp"],
        "nonce": v["nonce"],
        "encrypt_type": "aes",
        "msg_signature": v["msg_signature"],
    }
    res = post(client, v["body"], query)
    assert res.status_code == 200
    with sessions() as s:
        msg = s.scalars(select(Message).where(Message.direction == "in")).one()
        assert msg.content == v["content"] and msg.dedup_key == f"msg|{v['msg_id']}"
        assert s.scalars(select(Worker)).one().openid == v["from_user"]


def test_voice_with_recognition_is_answered_like_text(client):
    res = post(client, wx.voice_xml("公司不给交社保怎么办", msg_id=41), wx.signed_query())
    assert "社保" in wx.reply_content(res.get_data(as_text=True))


def test_voice_without_recognition_asks_to_type_and_keeps_the_recording(client, sessions):
    res = post(client, wx.voice_xml("", msg_id=42), wx.signed_query())
    assert "文字" in wx.reply_content(res.get_data(as_text=True))
    with sessions() as s:
        msg = s.scalars(select(Message).where(Message.direction == "in")).one()
        assert msg.media_id == "media-42" and msg.consultation_id is not None


@pytest.mark.parametrize("msg_type", ["image", "location", "link", "video", "shortvideo", "file"])
def test_other_message_types_get_a_polite_reply(client, msg_type):
    res = post(client, wx.media_xml(msg_type), wx.signed_query())
    assert res.status_code == 200 and "文字" in wx.reply_content(res.get_data(as_text=True))


def test_subscribe_with_a_station_scene_welcomes_and_ties_the_worker(client, sessions):
    res = post(client, wx.event_xml("subscribe", key="qrscene_station-42"), wx.signed_query())
    text = wx.reply_content(res.get_data(as_text=True))
    assert "隐私" in text and "1." in text
    with sessions() as s:
        assert s.scalars(select(Worker)).one().station_code == "station-42"
    assert count(sessions, Consultation) == 0  # an event alone is not a consultation


def test_the_welcome_menu_offers_a_topics_entries(client):
    post(client, wx.event_xml("subscribe"), wx.signed_query())
    text = wx.reply_content(
        post(client, wx.text_xml("2", msg_id=77), wx.signed_query()).get_data(as_text=True)
    )
    assert "请回复数字" in text and "工伤" in text


def test_duplicate_events_are_processed_once(client, sessions):
    body = wx.event_xml("subscribe", create_time=1700000000)
    post(client, body, wx.signed_query())
    post(client, body, wx.signed_query())
    assert count(sessions, Message, Message.direction == "in") == 1


def test_unsubscribe_and_view_answer_success(client, sessions):
    assert post(client, wx.event_xml("unsubscribe"), wx.signed_query()).get_data(as_text=True) == "success"
    assert (
        post(client, wx.event_xml("VIEW", key="https://x", create_time=1), wx.signed_query()).get_data(
            as_text=True
        )
        == "success"
    )
    with sessions() as s:
        assert s.scalars(select(Worker)).one().subscribed is False


def test_mini_program_json_push_answers_success(client, sessions):
    res = post(client, wx.mp_text_json("工伤认定要多久"), wx.signed_query(), content_type="application/json")
    assert res.get_data(as_text=True) == "success"
    with sessions() as s:
        assert s.scalars(select(Worker)).one().channel == "mp"
        assert s.scalars(select(Message).where(Message.direction == "in")).one().reply


@pytest.mark.parametrize(
    "body",
    [
        b"<xml><Content>unclosed",
        b"\xff\xfe\x00garbage",
        b"{not json",
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><xml>&lol2;</xml>',
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><Content>&xxe;</Content></xml>',
        b"<xml><ToUserName>gh</ToUserName></xml>",
        b"[1, 2]",
        b"<other/>",
    ],
)
def test_bad_bodies_get_a_4xx_and_the_service_keeps_serving(client, body):
    res = post(client, body, wx.signed_query())
    assert 400 <= res.status_code < 500
    ok = post(client, wx.text_xml("加班费怎么算", msg_id=999), wx.signed_query())
    assert ok.status_code == 200


def test_a_body_over_one_mebibyte_gets_413(client):
    res = post(client, b"<xml>" + b"a" * (1024 * 1024 + 10) + b"</xml>", wx.signed_query())
    assert res.status_code == 413


def test_a_long_reply_is_cut_at_a_sentence_and_continued(app, client):
    app.extensions["workerlaw.inbox"].passive_limit = 300
    first = wx.reply_content(
        post(client, wx.text_xml("没签劳动合同能要二倍工资吗", msg_id=5), wx.signed_query()).get_data(
            as_text=True
        )
    )
    assert len(first.encode()) <= 300 and "继续" in first
    more = wx.reply_content(
        post(client, wx.text_xml("继续", msg_id=6), wx.signed_query()).get_data(as_text=True)
    )
    assert more and more != first


def test_mini_program_entering_the_chat_is_welcomed_through_the_api(client, sessions):
    body = json.dumps(
        {
            "ToUserName": "gh_mini",
            "FromUserName": "oMini9",
            "CreateTime": 1700000001,
            "MsgType": "event",
            "Event": "user_enter_tempsession",
            "SessionFrom": "menu",
        }
    )
    res = post(client, body, wx.signed_query(), content_type="application/json")
    assert res.get_data(as_text=True) == "success"
    with sessions() as s:
        from models import OutboxMessage

        queued = s.scalars(select(OutboxMessage)).one()
        assert queued.openid == "oMini9" and "隐私" in queued.content
    assert count(sessions, Consultation) == 0


def test_mini_program_json_push_in_safe_mode(client, sessions):
    from wechatpy.crypto import WeChatCrypto

    inner = wx.mp_text_json("社保断缴了怎么办", openid="oMini10", msg_id=12)
    query = wx.signed_query()
    crypto = WeChatCrypto(wx.TOKEN, wx.AES_KEY, wx.APPID)
    import xmltodict

    encrypt = xmltodict.parse(crypto.encrypt_message(inner, query["nonce"], query["timestamp"]))["xml"][
        "Encrypt"
    ]
    query.update(
        encrypt_type="aes", msg_signature=wx.signature(wx.TOKEN, query["timestamp"], query["nonce"], encrypt)
    )
    res = post(
        client,
        json.dumps({"ToUserName": "gh_mini", "Encrypt": encrypt}),
        query,
        content_type="application/json",
    )
    assert res.get_data(as_text=True) == "success"
    with sessions() as s:
        assert s.scalars(select(Message).where(Message.direction == "in")).one().content == "社保断缴了怎么办"


def test_a_configuration_with_wechat_secrets_and_the_dev_secret_key_is_refused(database_url):
    from app import ConfigurationError, create_app

    with pytest.raises(ConfigurationError):
        create_app({"DATABASE_URL": database_url, "WECHAT_APPSECRET": "s", "SECRET_KEY": "dev"})


def test_an_overlong_text_is_read_only_up_to_wechats_own_limit(client, sessions):
    res = post(client, wx.text_xml("工资" * 50_000, msg_id=31337), wx.signed_query())  # 300 kB, under 1 MiB
    assert res.status_code == 200
    with sessions() as s:
        assert len(s.scalars(select(Message).where(Message.direction == "in")).one().content) == 2000
