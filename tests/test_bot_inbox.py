"""Exactly-once processing and 人次 rules, on SQLite and PostgreSQL, with concurrent duplicate deliveries."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from bot.conversation import Responder
from bot.inbox import Inbound, Inbox
from models import Consultation, Message, Worker, make_engine, make_sessionmaker
from models.schema import upgrade

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def text(content: str, msg_id: int, *, openid: str = "oA", at: datetime = T0) -> Inbound:
    return Inbound(
        channel="oa",
        openid=openid,
        msg_type="text",
        dedup_key=f"msg|{msg_id}",
        created_at=at,
        content=content,
    )


def setup(database_url, engine):
    db = make_engine(database_url)
    upgrade(db)
    return db, make_sessionmaker(db), Inbox(Responder(engine))


def handle(sessions, inbox, msg, now=T0):
    with sessions() as session:
        result = inbox.handle(session, msg, now=now)
        session.commit()
        return result


def count(sessions, model, *where):
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def test_concurrent_copies_of_a_first_question_make_one_message_and_one_consultation(database_url, engine):
    """Eight copies of the same new worker's first message, at once, each in its own connection."""
    db, sessions, inbox = setup(database_url, engine)
    msg = text("老板拖欠工资三个月怎么办", 1)
    replies, errors = [], []
    barrier = threading.Barrier(8)

    def deliver():
        try:
            barrier.wait()
            for attempt in range(3):  # the webhook retries once on a lost race; allow the same here
                try:
                    replies.append(handle(sessions, inbox, msg).reply)
                    return
                except Exception:
                    if attempt == 2:
                        raise
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert (
        count(sessions, Message, Message.direction == "in") == 1
        and count(sessions, Consultation) == 1
        and count(sessions, Worker) == 1
    )
    answered = [r for r in replies if r]
    assert answered and len(set(answered)) == 1
    db.dispose()


def test_two_different_questions_at_once_still_open_one_consultation(database_url, engine):
    db, sessions, inbox = setup(database_url, engine)
    handle(sessions, inbox, text("你好", 100, openid="oB"))  # the worker exists; no consultation yet
    barrier = threading.Barrier(2)

    def deliver(msg):
        barrier.wait()
        for attempt in range(3):
            try:
                return handle(sessions, inbox, msg)
            except Exception:
                if attempt == 2:
                    raise

    threads = [
        threading.Thread(target=deliver, args=(text(q, i, openid="oB"),))
        for i, q in ((101, "工伤怎么认定"), (102, "加班费怎么算"))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert count(sessions, Consultation, Consultation.closed_at.is_(None)) == 1
    assert count(sessions, Message, Message.direction == "in") == 3
    db.dispose()


def test_idle_timeout_closes_a_consultation_and_the_next_question_opens_another(database_url, engine):
    db, sessions, inbox = setup(database_url, engine)
    handle(sessions, inbox, text("工伤怎么认定", 1), now=T0)
    handle(sessions, inbox, text("详细", 2), now=T0 + timedelta(minutes=20))  # joins
    assert count(sessions, Consultation) == 1
    handle(sessions, inbox, text("被辞退有补偿吗", 3), now=T0 + timedelta(minutes=55))  # 35 min idle
    with sessions() as s:
        first, second = s.scalars(select(Consultation).order_by(Consultation.id)).all()
        assert first.close_reason == "idle" and second.closed_at is None
    db.dispose()


def test_the_scheduler_closes_idle_consultations(database_url, engine):
    db, sessions, inbox = setup(database_url, engine)
    handle(sessions, inbox, text("工伤怎么认定", 1), now=T0)
    with sessions() as s:
        assert inbox.consultations.close_idle(s, now=T0 + timedelta(minutes=10)) == 0
        assert inbox.consultations.close_idle(s, now=T0 + timedelta(minutes=31)) == 1
        s.commit()
    assert count(sessions, Consultation, Consultation.closed_at.is_(None)) == 0
    db.dispose()


def test_a_consultation_keeps_the_workers_type_region_and_station_of_that_time(database_url, engine):
    db, sessions, inbox = setup(database_url, engine)
    handle(sessions, inbox, text("你好", 1))
    with sessions() as s:
        worker = s.scalars(select(Worker)).one()
        worker.worker_type, worker.region_code, worker.station_code = "rider", "440300", "st-1"
        s.commit()
    handle(sessions, inbox, text("外卖骑手被罚款合法吗", 2))
    with sessions() as s:
        c = s.scalars(select(Consultation)).one()
        assert (c.channel, c.worker_type, c.region_code, c.station_code) == ("oa", "rider", "440300", "st-1")
        assert c.resolution in ("answered", "clarified", "escalated") and c.category
    db.dispose()


def test_urgent_messages_mark_the_consultation_urgent(database_url, engine):
    db, sessions, inbox = setup(database_url, engine)
    result = handle(sessions, inbox, text("再不给工钱我就从楼顶跳下去", 1))
    assert result.needs_lawyer
    with sessions() as s:
        c = s.scalars(select(Consultation)).one()
        assert c.resolution == "urgent" and c.category == "urgent"
    db.dispose()
