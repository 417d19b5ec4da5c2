"""`/m/`: the mobile page is served, signs in with WeChat's web OAuth when configured (a real local
stand-in plays WeChat's consent page and API) and otherwise with one-time codes staff issue."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from app import create_app
from bot import workers
from models import utcnow
from tests import wechat_helpers as wx


def _app(database_url, **config):
    return create_app({"TESTING": True, "SECRET_KEY": "t", "DATABASE_URL": database_url, **config})


@pytest.fixture
def coded(database_url):
    application = _app(database_url)
    yield application
    application.extensions["workerlaw.db"].dispose()


@pytest.fixture
def oauth(database_url, standin):
    application = _app(
        database_url,
        WECHAT_TOKEN=wx.TOKEN,
        WECHAT_OAUTH_APPID=standin.appid,
        WECHAT_OAUTH_APPSECRET=standin.secret,
        WECHAT_API_BASE_URL=standin.base_url,
        WECHAT_OAUTH_AUTHORIZE_URL=standin.authorize_url,
    )
    yield application
    application.extensions["workerlaw.db"].dispose()


def test_the_page_and_its_assets_are_served_with_a_strict_policy(coded):
    client = coded.test_client()
    page = client.get("/m/")
    assert page.status_code == 200 and "职工法律咨询" in page.get_data(as_text=True)
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    for asset in ("/m/static/app.js", "/m/static/app.css"):
        assert client.get(asset).status_code == 200


def test_a_one_time_code_signs_in_once(coded):
    client = coded.test_client()
    assert client.get("/api/mp/login/methods").get_json() == {"oauth_url": None, "code": True}
    result = coded.test_cli_runner().invoke(args=["web-code", "--count", "2", "--label", "tester"])
    assert result.exit_code == 0, result.output
    first, second = result.output.split()
    res = client.post("/api/mp/login/code", json={"code": first.lower()})  # typed in lower case
    assert res.status_code == 200
    headers = {"Authorization": f"Bearer {res.get_json()['token']}"}
    assert client.get("/api/mp/consultations", headers=headers).status_code == 200
    again = client.post("/api/mp/login/code", json={"code": first})
    assert again.status_code == 401 and again.get_json()["error"] == "invalid_code"
    assert client.post("/api/mp/login/code", json={"code": second}).status_code == 200
    assert client.post("/api/mp/login/code", json={"code": "NOPE2345"}).status_code == 401


def test_an_expired_code_is_refused(coded):
    with coded.extensions["workerlaw.sessions"]() as s:
        code = workers.issue_code(s, now=utcnow() - timedelta(hours=2), ttl=timedelta(hours=1))
        s.commit()
    res = coded.test_client().post("/api/mp/login/code", json={"code": code})
    assert res.status_code == 401


def _follow_oauth(client, standin):
    start = client.get("/m/oauth/start")
    assert start.status_code == 302 and start.location.startswith(standin.authorize_url)
    query = parse_qs(urlsplit(start.location).query)
    assert query["scope"] == ["snsapi_base"] and start.location.endswith("#wechat_redirect")
    consent = requests.get(start.location.split("#")[0], allow_redirects=False, timeout=5)
    back = urlsplit(consent.headers["Location"])
    assert back.path == "/m/oauth/callback"
    return client.get(f"{back.path}?{back.query}")


def test_web_oauth_signs_in_the_official_account_worker(oauth, standin):
    client = oauth.test_client()
    assert client.get("/api/mp/login/methods").get_json() == {"oauth_url": "/m/oauth/start", "code": False}
    # The worker wrote to the official account before: the page must show that history too.
    res = client.post(
        "/wechat", query_string=wx.signed_query(), data=wx.text_xml("老板欠了我三个月工资", openid="oa-web1")
    )
    assert res.status_code == 200
    done = _follow_oauth(client, standin)
    assert done.status_code == 302
    fragment = parse_qs(done.location.split("#", 1)[1])
    headers = {"Authorization": f"Bearer {fragment['token'][0]}"}
    items = client.get("/api/mp/consultations", headers=headers).get_json()["items"]
    assert len(items) == 1 and items[0]["channel"] == "oa"
    # With OAuth on, one-time codes are off.
    assert client.post("/api/mp/login/code", json={"code": "ABCDEFGH"}).status_code == 403


def test_a_forged_or_replayed_oauth_return_does_not_sign_in(oauth, standin):
    client = oauth.test_client()
    forged = client.get("/m/oauth/callback?code=web1&state=forged")
    assert forged.status_code == 302 and "login_error" in forged.location and "token" not in forged.location
    _follow_oauth(client, standin)
    state = client.get("/m/oauth/start").location
    state = parse_qs(urlsplit(state).query)["state"][0]
    replay = client.get(f"/m/oauth/callback?code=web1&state={state}")  # web1 was already spent
    assert replay.status_code == 302 and "login_error" in replay.location and "token=" not in replay.location


def test_oauth_without_configuration_sends_back_to_codes(coded):
    res = coded.test_client().get("/m/oauth/start")
    assert res.status_code == 302 and "login_error" in res.location
