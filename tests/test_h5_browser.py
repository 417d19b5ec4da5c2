"""The mobile page in a real browser: Debian's headless Chromium at a phone's viewport, driven by
Playwright, against the service served over HTTP on 127.0.0.1 — the whole worker's path: topics, an
answer with its articles, sign-in, privacy notice, a question, the lawyer's reply in the history,
rating, erasing my data; and WeChat's web OAuth through a local stand-in of WeChat's consent page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app import create_app
from bot import notify, workers
from models import Consultation, Worker, utcnow
from tests.browser import ANDROID_UA, PHONE, WECHAT_UA, artifacts_dir, chromium, serve


@pytest.fixture
def service(database_url):
    app = create_app({"TESTING": True, "SECRET_KEY": "t", "DATABASE_URL": database_url})
    with serve(app) as url:
        yield app, url
    app.extensions["workerlaw.db"].dispose()


def test_a_worker_does_everything_from_the_phone(service, database_url):
    app, url = service
    kind = database_url.split(":", 1)[0]
    with app.extensions["workerlaw.sessions"]() as s:
        code = workers.issue_code(s, now=utcnow(), ttl=timedelta(hours=1))
        s.commit()
    with chromium() as browser:
        page = browser.new_context(**PHONE, user_agent=ANDROID_UA).new_page()
        page.set_default_timeout(10_000)
        page.on("dialog", lambda dialog: dialog.accept())
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))

        # Browse without signing in: a topic, an entry, its articles.
        page.goto(f"{url}/m/")
        page.get_by_role("link", name="工资拖欠与支付").first.click()
        page.locator(".list a").first.click()
        answer = page.locator("#answer")
        answer.get_by_text("法律依据").wait_for()
        assert answer.locator(".article").count() >= 1
        assert "第" in answer.locator(".article b").first.inner_text()
        page.screenshot(path=artifacts_dir() / f"h5-answer-{kind}.png", full_page=True)

        # Asking needs a sign-in (a one-time code), then the privacy notice.
        page.goto(f"{url}/m/#/ask")
        page.fill("#code", code)
        page.click("#code-submit")
        page.fill("#question", "老板拖欠我三个月工资不给怎么办")
        page.click("#send")
        page.locator("#privacy-text").wait_for()
        page.click("#privacy-accept")
        page.locator("#reply .bubble.bot").wait_for()
        assert page.locator("#reply .bubble.bot").inner_text().strip()
        page.click("#open-consultation")
        page.locator("#transcript .bubble.worker").wait_for()

        # A lawyer answers (issue 5's console will call the same function); the page shows it.
        with app.extensions["workerlaw.sessions"]() as s:
            consultation = s.scalars(select(Consultation)).one()
            notify.deliver_reply(
                s, consultation, "律师：请保留考勤和工资条。", key="l1", now=utcnow(), template=None
            )
            s.commit()
            cid = consultation.id
        page.reload()
        page.locator("#transcript .bubble.lawyer").wait_for()
        assert "请保留考勤和工资条" in page.locator("#transcript .bubble.lawyer").inner_text()
        page.click("#stars button[data-stars='4']")
        page.locator("#toast").get_by_text("谢谢您的评价").wait_for()
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=artifacts_dir() / f"h5-consultation-{kind}.png", full_page=True)
        with app.extensions["workerlaw.sessions"]() as s:
            assert s.get(Consultation, cid).rating == 4

        # History, then erasing my data.
        page.goto(f"{url}/m/#/history")
        page.locator("#history a").first.wait_for()
        assert page.locator("#history a").count() == 1
        page.click("#erase")
        page.locator("#toast").get_by_text("已删除").wait_for()
        with app.extensions["workerlaw.sessions"]() as s:
            assert s.scalars(select(Worker)).one().erased_at is not None
        assert errors == []


def test_inside_wechat_the_page_signs_in_with_web_oauth(database_url, standin):
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "t",
            "DATABASE_URL": database_url,
            "WECHAT_OAUTH_APPID": standin.appid,
            "WECHAT_OAUTH_APPSECRET": standin.secret,
            "WECHAT_API_BASE_URL": standin.base_url,
            "WECHAT_OAUTH_AUTHORIZE_URL": standin.authorize_url,
        }
    )
    with serve(app) as url, chromium() as browser:
        page = browser.new_context(**PHONE, user_agent=WECHAT_UA).new_page()
        page.goto(f"{url}/m/#/history")
        # Inside WeChat the page leaves for the consent page at once and comes back signed in.
        page.locator("#history").wait_for()
        assert page.url.endswith("#/history")
        assert page.get_by_text("还没有咨询记录").is_visible()
    with app.extensions["workerlaw.sessions"]() as s:
        assert s.scalars(select(Worker.openid)).all() == ["oa-web1"]
    app.extensions["workerlaw.db"].dispose()
