"""Duplicate deliveries handled at the same moment by separate operating-system processes."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime

from sqlalchemy import func, select

from models import Consultation, Message, make_engine, make_sessionmaker
from models.schema import upgrade


def _deliver(url: str, start, results) -> None:
    from bot.conversation import Responder
    from bot.engine import Engine
    from bot.inbox import Inbound, Inbox

    inbox = Inbox(Responder(Engine.load()))
    sessions = make_sessionmaker(make_engine(url))
    msg = Inbound(
        channel="oa",
        openid="oProc",
        msg_type="text",
        dedup_key="msg|424242",
        created_at=datetime(2026, 11, 22, tzinfo=UTC),
        content="包工头跑路了工资找谁要",
    )
    start.wait()
    for attempt in range(3):
        try:
            with sessions() as session:
                handled = inbox.handle(session, msg, now=datetime.now(UTC))
                session.commit()
            results.put(handled.reply)
            return
        except Exception:
            if attempt == 2:
                results.put("ERROR")


def test_four_processes_with_the_same_message_store_and_count_it_once(database_url):
    upgrade(make_engine(database_url))
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_deliver, args=(database_url, start, results)) for _ in range(4)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(timeout=120)
    replies = [results.get(timeout=5) for _ in procs]
    assert "ERROR" not in replies
    assert len({r for r in replies if r}) == 1
    with make_sessionmaker(make_engine(database_url))() as s:
        assert s.scalar(select(func.count()).select_from(Message).where(Message.direction == "in")) == 1
        assert s.scalar(select(func.count()).select_from(Consultation)) == 1
