"""Rate limits: a worker who floods the bot is asked to slow down (every message still stored), and a
client address past its requests a minute gets a polite 429 with Retry-After; health checks never."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from app import create_app
from bot.conversation import Responder
from bot.inbox import Inbound, Inbox
from bot.ratelimit import SlidingWindow
from models import Message, make_engine, make_sessionmaker
from models.schema import upgrade

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def test_a_flood_from_one_worker_is_asked_to_slow_down_and_nothing_is_lost(database_url, engine):
    db = make_engine(database_url)
    upgrade(db)
    sessions = make_sessionmaker(db)
    inbox = Inbox(Responder(engine), per_minute=5)
    replies = []
    for i in range(7):
        at = T0 + timedelta(seconds=i)
        msg = Inbound(
            channel="oa", openid="oF", msg_type="text", dedup_key=f"f{i}", created_at=at, content="工资"
        )
        with sessions() as s:
            replies.append(inbox.handle(s, msg, now=at).reply)
            s.commit()
    slow = engine.kb.replies["slow_down"]
    assert [r == slow for r in replies] == [False] * 5 + [True] * 2
    # Another worker is not affected, and a minute later the first one is answered again.
    other = Inbound(channel="oa", openid="oG", msg_type="text", dedup_key="g", created_at=T0, content="工资")
    later_at = T0 + timedelta(seconds=70)
    later = Inbound(
        channel="oa", openid="oF", msg_type="text", dedup_key="f9", created_at=later_at, content="工资"
    )
    with sessions() as s:
        assert inbox.handle(s, other, now=T0 + timedelta(seconds=7)).reply != slow
        assert inbox.handle(s, later, now=later_at).reply != slow
        s.commit()
        assert s.scalar(select(func.count()).select_from(Message).where(Message.direction == "in")) == 9
    db.dispose()


def test_the_sliding_window_counts_per_key_and_stays_bounded():
    window = SlidingWindow(3, window=60, max_keys=10)
    assert [window.hit("a", t) for t in (0, 1, 2)] == [None, None, None]
    assert window.hit("a", 3) == 57
    assert window.hit("b", 3) is None
    assert window.hit("a", 60.5) is None  # the first hit left the window
    for i in range(50):
        window.hit(f"k{i}", 100 + i)
    assert len(window._hits) <= 10
    assert SlidingWindow(0).hit("a", 0) is None  # 0: no limit


def test_an_address_past_its_limit_gets_a_polite_429(database_url):
    app = create_app(
        {"TESTING": True, "SECRET_KEY": "t", "DATABASE_URL": database_url, "IP_REQUESTS_PER_MINUTE": 3}
    )
    client = app.test_client()
    codes = [client.get("/api/mp/worker-types").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    refused = client.get("/api/mp/topics")
    assert refused.status_code == 429 and refused.get_json()["error"] == "rate_limited"
    assert "稍等" in refused.get_json()["message"] and int(refused.headers["Retry-After"]) >= 1
    assert client.get("/healthz").status_code == 200  # never limited
    other = client.get("/api/mp/worker-types", environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 200
    app.extensions["workerlaw.db"].dispose()
