"""The outbox: queued once, claimed by one sender, retried with backoff, delivered exactly once.

Deliveries go through the real gateway to a local HTTP stand-in for WeChat's API; concurrent senders
are threads, each with its own engine and gateway (as separate processes would have), on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.outbox import BACKOFF_BASE, CLAIM_TIMEOUT, backoff, deliver_due, enqueue
from bot.wechat import WeChatApi
from models.wechat import OutboxMessage, OutboxStatus
from tests.scratch_db import ScratchDatabase
from tests.wechat_standin import Fault, RecordingGateway, WeChatStandIn

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def sessions(db):
    return db.sessionmaker()


def make_api(db: ScratchDatabase, standin: WeChatStandIn) -> WeChatApi:
    return WeChatApi(
        standin.appid,
        standin.secret,
        session_factory=db.sessionmaker(),
        base_url=standin.base_url,
        timeout=2.0,
    )


def queue(sessions, *messages: tuple[str, str], channel: str = "oa", now: datetime = T0) -> list[int]:
    """Enqueue (openid, text) pairs and commit, as the webhook would; their ids."""
    with sessions() as session, session.begin():
        rows = [
            enqueue(session, channel=channel, openid=o, text=t, dedup_key=f"{channel}:{o}:{t}", now=now)
            for o, t in messages
        ]
        return [row.id for row in rows]


def rows(sessions) -> list[OutboxMessage]:
    with sessions() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


class ProcessDied(Exception):
    """Stands for a sender killed mid-send (not a WeChat error, so the outbox does not handle it)."""


class DyingGateway:
    """A gateway whose process dies on the first send."""

    def send_text(self, openid: str, text: str) -> None:
        raise ProcessDied(openid)

    def access_token(self) -> str:
        return "unused"


def test_enqueue_is_idempotent_on_the_dedup_key(sessions):
    with sessions() as session, session.begin():
        first = enqueue(session, channel="oa", openid="oWorker001", text="已收到", dedup_key="reply:msg-1")
        again = enqueue(session, channel="oa", openid="oWorker001", text="另一条", dedup_key="reply:msg-1")
        assert again.id == first.id and again.content == "已收到"
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 1


def test_enqueue_from_two_processes_at_once_queues_one_row(db):
    """The unique constraint decides: the second insert waits for the first and then finds its row."""
    first_sessions, second_sessions = db.sessionmaker(), db.sessionmaker()
    inserted = threading.Event()
    results: list[int] = []

    def second_process() -> None:
        inserted.wait()
        with second_sessions() as session, session.begin():
            results.append(enqueue(session, channel="oa", openid="o1", text="B", dedup_key="k").id)

    other = threading.Thread(target=second_process)
    other.start()
    with first_sessions() as session, session.begin():
        first_id = enqueue(session, channel="oa", openid="o1", text="A", dedup_key="k").id
        inserted.set()
        other.join(timeout=0.3)  # it is blocked on our uncommitted row until we commit
        assert other.is_alive()
    other.join(timeout=10)

    assert results == [first_id]
    assert [(r.content, r.status) for r in rows(first_sessions)] == [("A", OutboxStatus.PENDING)]


def test_due_messages_are_delivered_once_and_recorded(db, sessions, standin):
    queue(sessions, ("oWorker001", "第一条"), ("oWorker002", "第二条"), ("oWorker003", "第三条"))
    api = make_api(db, standin)

    assert deliver_due(sessions, api, now=T0, worker_id="w1") == 3
    assert deliver_due(sessions, api, now=T0 + timedelta(hours=1), worker_id="w1") == 0

    assert sorted(d.text for d in standin.delivered) == ["第一条", "第三条", "第二条"]
    assert standin.hits["message/custom/send"] == 3
    assert [(r.status, r.attempts, r.sent_at, r.claimed_by) for r in rows(sessions)] == [
        (OutboxStatus.SENT, 1, T0, "w1")
    ] * 3


def test_messages_not_yet_due_wait(db, sessions, standin):
    queue(sessions, ("oWorker001", "later"), now=T0 + timedelta(minutes=1))

    assert deliver_due(sessions, make_api(db, standin), now=T0, worker_id="w1") == 0
    assert standin.hits["message/custom/send"] == 0


def test_failed_sends_are_retried_with_backoff_and_delivered_exactly_once(db, sessions, standin):
    queue(sessions, ("oWorker001", "工资的事有答复了"))
    api = make_api(db, standin)
    standin.fail_next_sends(Fault(status=500), Fault(status=503))

    assert deliver_due(sessions, api, now=T0, worker_id="w1") == 0
    (row,) = rows(sessions)
    assert (row.status, row.attempts, row.next_attempt_at) == (
        OutboxStatus.PENDING,
        1,
        T0 + timedelta(seconds=30),
    )
    assert "HTTP 500" in row.last_error and row.claimed_by is None

    assert deliver_due(sessions, api, now=T0 + timedelta(seconds=29), worker_id="w1") == 0  # not due yet
    assert standin.hits["message/custom/send"] == 1

    assert deliver_due(sessions, api, now=T0 + timedelta(seconds=30), worker_id="w1") == 0
    (row,) = rows(sessions)
    assert (row.attempts, row.next_attempt_at) == (2, T0 + timedelta(seconds=30 + 60))

    assert deliver_due(sessions, api, now=T0 + timedelta(seconds=90), worker_id="w1") == 1
    assert deliver_due(sessions, api, now=T0 + timedelta(days=1), worker_id="w1") == 0

    (row,) = rows(sessions)
    assert (row.status, row.attempts, row.sent_at) == (OutboxStatus.SENT, 3, T0 + timedelta(seconds=90))
    assert [d.text for d in standin.delivered] == ["工资的事有答复了"]
    assert standin.hits["message/custom/send"] == 3


def test_backoff_doubles_from_thirty_seconds_and_is_capped():
    assert BACKOFF_BASE == timedelta(seconds=30)
    assert [backoff(n).total_seconds() for n in range(1, 9)] == [30, 60, 120, 240, 480, 960, 1800, 1800]


def test_a_message_is_marked_failed_after_max_attempts(db, sessions, standin):
    queue(sessions, ("oWorker001", "WeChat is down"))
    api = make_api(db, standin)
    standin.send_fault = Fault(status=503)

    now = T0
    for _ in range(5):
        deliver_due(sessions, api, now=now, worker_id="w1", max_attempts=3)
        now += timedelta(hours=1)

    (row,) = rows(sessions)
    assert (row.status, row.attempts) == (OutboxStatus.FAILED, 3)
    assert "HTTP 503" in row.last_error
    assert standin.hits["message/custom/send"] == 3


def test_a_permanently_rejected_message_fails_at_once_and_others_still_go(db, sessions, standin):
    queue(sessions, ("oGone001", "窗口已过"), ("oWorker002", "正常送达"))
    standin.fail_next_sends(Fault(errcode=45015))

    assert deliver_due(sessions, make_api(db, standin), now=T0, worker_id="w1") == 1

    gone, ok = rows(sessions)
    assert (gone.status, gone.attempts) == (OutboxStatus.FAILED, 1) and "45015" in gone.last_error
    assert ok.status == OutboxStatus.SENT
    assert [d.text for d in standin.delivered] == ["正常送达"]


def test_messages_to_one_worker_keep_their_order_after_a_failure(db, sessions, standin):
    queue(sessions, ("oWorker001", "一"), ("oWorker001", "二"), ("oWorker001", "三"), ("oWorker002", "别人"))
    api = make_api(db, standin)
    standin.fail_next_sends(Fault(status=500))

    assert deliver_due(sessions, api, now=T0, worker_id="w1") == 1  # "一" failed; "二", "三" wait behind it
    assert deliver_due(sessions, api, now=T0 + timedelta(seconds=30), worker_id="w1") == 3

    assert [d.text for d in standin.delivered if d.openid == "oWorker001"] == ["一", "二", "三"]


def test_concurrent_senders_never_send_the_same_row(db, standin):
    """Four senders (own engine, own gateway) drain 60 messages in small batches, racing for claims."""
    sessions = db.sessionmaker()
    texts = [(f"oWorker{i % 12:03}", f"消息 {i}") for i in range(60)]
    queue(sessions, *texts)
    standin.send_fault = Fault(delay=0.01)  # a little latency, so claims and sends interleave
    senders = [(db.sessionmaker(), make_api(db, standin), f"sender-{n}") for n in range(4)]
    barrier = threading.Barrier(len(senders))

    def drain(session_factory, api, worker_id) -> int:
        barrier.wait()
        total = 0
        while sent := deliver_due(session_factory, api, now=T0, worker_id=worker_id, batch=3):
            total += sent
        return total

    with ThreadPoolExecutor(len(senders)) as pool:
        totals = list(pool.map(lambda args: drain(*args), senders))

    delivered = Counter((d.openid, d.text) for d in standin.delivered)
    assert delivered == Counter(texts)  # every message, each exactly once
    assert standin.hits["message/custom/send"] == 60
    assert sum(totals) == 60
    final = rows(sessions)
    assert {r.status for r in final} == {OutboxStatus.SENT}
    assert {r.attempts for r in final} == {1}  # no row was ever claimed twice
    assert len({r.claimed_by for r in final}) > 1  # the work really was shared
    for openid in {o for o, _ in texts}:  # and each worker's messages still arrived in order
        assert [d.text for d in standin.delivered if d.openid == openid] == [
            t for o, t in texts if o == openid
        ]


def test_a_stale_claim_is_recovered_by_another_sender(db, sessions, standin):
    queue(sessions, ("oWorker001", "没丢"))
    with pytest.raises(ProcessDied):
        deliver_due(sessions, DyingGateway(), now=T0, worker_id="dead-sender")
    (row,) = rows(sessions)
    assert (row.status, row.claimed_by, row.attempts) == (OutboxStatus.SENDING, "dead-sender", 1)

    api = make_api(db, standin)
    assert deliver_due(sessions, api, now=T0 + CLAIM_TIMEOUT - timedelta(seconds=1), worker_id="alive") == 0
    assert standin.hits["message/custom/send"] == 0  # the claim may still be live: hands off

    assert deliver_due(sessions, api, now=T0 + CLAIM_TIMEOUT, worker_id="alive") == 1
    (row,) = rows(sessions)
    assert (row.status, row.claimed_by, row.attempts) == (OutboxStatus.SENT, "alive", 2)
    assert [d.text for d in standin.delivered] == ["没丢"]


def test_a_stale_claim_with_no_attempts_left_is_failed_not_sent(sessions):
    queue(sessions, ("oWorker001", "kills every sender"))
    with pytest.raises(ProcessDied):
        deliver_due(sessions, DyingGateway(), now=T0, worker_id="dead-sender", max_attempts=1)

    gateway = RecordingGateway()
    assert deliver_due(sessions, gateway, now=T0 + CLAIM_TIMEOUT, worker_id="alive", max_attempts=1) == 0

    (row,) = rows(sessions)
    assert row.status == OutboxStatus.FAILED and "claim expired" in row.last_error
    assert gateway.sent == []


def test_a_mapping_of_gateways_routes_by_channel_and_leaves_other_channels(sessions):
    queue(sessions, ("oOfficial", "公众号"), channel="oa")
    queue(sessions, ("oMini", "小程序"), channel="mp")
    queue(sessions, ("oElse", "没有网关"), channel="xx")
    oa, mp = RecordingGateway(), RecordingGateway()

    assert deliver_due(sessions, {"oa": oa, "mp": mp}, now=T0, worker_id="w1") == 2

    assert (oa.sent, mp.sent) == ([("oOfficial", "公众号")], [("oMini", "小程序")])
    assert [r.status for r in rows(sessions)] == [OutboxStatus.SENT, OutboxStatus.SENT, OutboxStatus.PENDING]


def test_batch_limits_how_many_rows_one_call_takes(sessions):
    """Regression: an UPDATE with a LIMIT subquery claimed every due row on PostgreSQL."""
    queue(sessions, *[(f"o{i}", f"m{i}") for i in range(5)])
    gateway = RecordingGateway()

    assert deliver_due(sessions, gateway, now=T0, worker_id="w1", batch=2) == 2
    assert deliver_due(sessions, gateway, now=T0, worker_id="w1", batch=2) == 2
    assert deliver_due(sessions, gateway, now=T0, worker_id="w1", batch=2) == 1
    assert len(gateway.sent) == 5
