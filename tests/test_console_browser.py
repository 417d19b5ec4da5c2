"""The lawyers' console in a real browser: Debian's headless Chromium at a phone's viewport, driven by
Playwright, against the service served over HTTP on 127.0.0.1 — a lawyer signs in, opens the queue and
the ticket a worker's request for a person opened, claims it, fills the reply from a canned FAQ answer
(the console's script, under its CSP), sends it, and closes the case."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app import create_app
from bot.inbox import Inbound
from bot.staff import create_user
from models import OutboxMessage, utcnow
from models.org import Lawyer, LawyerRegion, Region, Station
from models.ticket import Ticket
from tests.browser import ANDROID_UA, PHONE, artifacts_dir, chromium, serve

PASSWORD = "correct-horse-1"


@pytest.fixture
def service(database_url):
    app = create_app({"TESTING": True, "SECRET_KEY": "t", "DATABASE_URL": database_url})
    with serve(app) as url:
        yield app, url
    app.extensions["workerlaw.db"].dispose()


def seed(app) -> int:
    """A township with a station and its lawyer (with an account); a worker there asks for a person."""
    with app.extensions["workerlaw.sessions"]() as s:
        city = Region(code="c0", name="江城市", level="city")
        s.add(city)
        s.flush()
        town = Region(code="t1", name="花山街道", level="township", parent_id=city.id)
        s.add(town)
        s.flush()
        s.add(Station(code="st1", name="花山职工服务站", region_id=town.id))
        lawyer = Lawyer(name="王律师")
        s.add(lawyer)
        s.flush()
        s.add(LawyerRegion(lawyer_id=lawyer.id, region_id=town.id))
        create_user(
            s, username="wang", password=PASSWORD, role="lawyer", display_name="王律师", lawyer_id=lawyer.id
        )
        s.commit()
        inbox, now = app.extensions["workerlaw.inbox"], utcnow()
        inbox.handle(
            s,
            Inbound(
                channel="oa",
                openid="oW1",
                msg_type="event",
                dedup_key="oW1|scan",
                created_at=now,
                event="subscribe",
                event_key="qrscene_st1",
            ),
            now=now,
        )
        handled = inbox.handle(
            s,
            Inbound(
                channel="oa",
                openid="oW1",
                msg_type="text",
                dedup_key="oW1|1",
                created_at=now,
                content="我想找律师",
            ),
            now=now,
        )
        s.commit()
        return s.scalars(select(Ticket.id).where(Ticket.consultation_id == handled.consultation_id)).one()


def test_a_lawyer_answers_and_closes_a_ticket_from_the_phone(service, database_url):
    app, url = service
    kind = database_url.split(":", 1)[0].split("+", 1)[0]  # sqlite or postgresql
    ticket_id = seed(app)
    with chromium() as browser:
        page = browser.new_context(**PHONE, user_agent=ANDROID_UA).new_page()
        page.set_default_timeout(10_000)
        page.on("dialog", lambda dialog: dialog.accept())
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        refused: list[str] = []  # what the pages' Content-Security-Policy blocked (inline script or style)
        page.on(
            "console", lambda msg: refused.append(msg.text) if "Content Security Policy" in msg.text else None
        )

        page.goto(f"{url}/console/")
        assert "/console/login" in page.url
        page.fill("#username", "wang")
        page.fill("#password", "wrong-password")
        page.click("#login-submit")
        page.get_by_text("用户名或密码不对").wait_for()
        page.fill("#password", PASSWORD)
        page.click("#login-submit")

        # The queue: the unassigned ticket with its region and question.
        page.get_by_role("link", name="待接单").click()
        row = page.locator(".ticket-row").first
        row.wait_for()
        assert "花山街道" in row.inner_text() and "我想找律师" in row.inner_text()
        row.locator("a").click()

        page.locator("#case-card").wait_for()
        assert "48小时窗口内还可发送 5 条" in page.locator("#budget").inner_text()
        page.click("#claim")
        page.locator(".flash.ok").get_by_text("已接单").wait_for()
        assert page.locator("#ticket-status").inner_text() == "处理中"

        # A canned answer from the FAQ fills the reply box (console.js); the lawyer adds a line.
        canned = page.locator("#canned option").nth(1)
        answer = canned.get_attribute("data-text")
        assert answer
        page.select_option("#canned", index=1)
        assert page.input_value("#reply-text") == answer
        page.fill("#reply-text", answer + "\n请带上工资条来服务站。")
        page.click("#reply-send")
        page.locator(".flash.ok").get_by_text("答复已保存").wait_for()
        assert "请带上工资条来服务站。" in page.locator("#transcript .bubble.lawyer").last.inner_text()
        assert "48小时窗口内还可发送 4 条" in page.locator("#budget").inner_text()

        page.select_option("#outcome", "answered")
        page.select_option("#category", "dispute_process")
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=artifacts_dir() / f"console-ticket-{kind}.png", full_page=True)
        page.click("#close")
        page.locator(".flash.ok").get_by_text("已结案：已解答").wait_for()
        assert page.locator("#ticket-status").inner_text() == "已结束"
        assert errors == [] and refused == []

    with app.extensions["workerlaw.sessions"]() as s:
        ticket = s.get(Ticket, ticket_id)
        assert (
            ticket.status == "closed"
            and ticket.outcome == "answered"
            and ticket.category == "dispute_process"
        )
        sent = s.scalars(select(OutboxMessage.content).where(OutboxMessage.openid == "oW1")).all()
        assert any("请带上工资条来服务站。" in c for c in sent)
