"""Faults against the real parts: no accepted message, consultation or lawyer reply is lost or sent twice.

Every test breaks something real and watches what WeChat, the lawyer and the database see: the service
runs behind a real HTTP server (in this process, or a `flask run` subprocess that gets killed), the
database is reached through a TCP proxy the test cuts or stalls (`tests.tcp_proxy`, PostgreSQL), or
held locked by another connection (SQLite), and WeChat's API is the local stand-in
(`tests.wechat_standin`), told to fail, to be slow, or to hang after accepting a message.

What the product guarantees, as these tests pin it down:

* The webhook answers 200 only after the message, its reply and its 人次 are committed. While the
  database is away it answers a 5xx (or nothing, when the database hangs): WeChat keeps retrying the
  same MsgId, and once the database is back exactly one copy is processed and every retry gets the
  reply stored with it. A commit whose acknowledgement was lost is recognised by the webhook's own
  retry (the unique (channel, dedup_key)). On SQLite too: the Inbox takes the write lock first, so the
  savepoint around the message row cannot commit it alone (`test_a_failure_after_the_message_row_...`).
* A lawyer's reply is stored and queued in one transaction: while the database is away the lawyer
  gets an error and nothing is queued; the retry queues exactly one outbox row. The staff API has no
  idempotency key: when only the commit's acknowledgement was lost, the lawyer gets an error although
  the reply was queued, and a blind resend sends it twice (the transcript shows it was stored).
* The outbox delivers at least once, exactly once whenever WeChat's answer was definite: an errcode,
  an HTTP error status, a refused connection, or a timeout on a request WeChat did not carry out are
  retried with backoff and the message reaches WeChat once. A request WeChat carried out but whose
  answer never came back (a client timeout, or the sender killed before recording "sent") is sent
  again — after the backoff, or after `CLAIM_TIMEOUT` when the sender died: WeChat's
  customer-service API has no idempotency key, so the product chooses a duplicate over a lost reply.
  Two sender processes never send the same row.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from werkzeug.serving import make_server

from app import create_app
from bot.outbox import CLAIM_TIMEOUT, enqueue
from bot.staff import create_user
from bot.wechat import WeChatApi
from models import INBOUND, Consultation, Message, Worker, make_engine, make_sessionmaker, utcnow
from models.db import Model, normalize_url
from models.org import Lawyer, LawyerRegion, Region
from models.schema import upgrade
from models.wechat import AccessToken, OutboxMessage, OutboxStatus
from scheduler.jobs import send_outbox
from tests import wechat_helpers as wx
from tests.tcp_proxy import TcpProxy
from tests.wechat_standin import Fault, WeChatStandIn

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "老板拖欠工资三个月不给怎么办"  # the FAQ answers it
OUT_OF_SCOPE = "我和老公离婚孩子归谁"  # handed to the lawyer on duty
LAWYER_REPLY = "您好，离婚后孩子的抚养权先由双方协商，协商不成可以向法院起诉。"
WECHAT_WAIT = 5.0  # seconds WeChat waits for the webhook before giving up and retrying
SQLITE_BUSY = 5.0  # models.db: every SQLite connection waits this long for the write lock


# --- the database, and what can go wrong with it -----------------------------------------------------


@dataclass(frozen=True)
class Stored:
    """What the database holds for one worker."""

    workers: int
    messages: int  # inbound
    consultations: int
    replies: tuple[str | None, ...]  # the reply stored with each inbound message


class Database:
    """The test's own view of the database (never through the proxy) and the faults it can cause.

    `app_url` is what the service is given: on PostgreSQL the proxy in front of the server."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.kind = "sqlite" if url.startswith("sqlite") else "postgresql"
        self.proxy: TcpProxy | None = None
        self.app_url = url
        if self.kind == "postgresql":
            parsed = make_url(normalize_url(url))
            self.proxy = TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432)
            self.app_url = parsed.set(host="127.0.0.1", port=self.proxy.port).render_as_string(
                hide_password=False
            )
        self.engine = make_engine(url)
        self.sessions = make_sessionmaker(self.engine)

    @property
    def path(self) -> str:
        return self.url.removeprefix("sqlite:///")

    def close(self) -> None:
        if self.proxy is not None:
            self.proxy.close()
        self.engine.dispose()

    @contextmanager
    def write_lock(self) -> Iterator[None]:
        """SQLite: another connection holds the database's write lock (BEGIN IMMEDIATE) meanwhile."""
        holder = sqlite3.connect(self.path, isolation_level=None, timeout=0)
        try:
            holder.execute("BEGIN IMMEDIATE")
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()

    @contextmanager
    def outage(self) -> Iterator[None]:
        """The database is unusable: PostgreSQL's connections are reset and new ones refused; SQLite's
        write lock is held by another connection for longer than any request waits for it."""
        if self.proxy is None:
            with self.write_lock():
                yield
            return
        self.proxy.cut()
        try:
            yield
        finally:
            self.proxy.restore()

    @contextmanager
    def stall(self) -> Iterator[None]:
        """The database hangs: PostgreSQL's bytes stop flowing (connections stay open); SQLite's write
        lock is held by another connection (the test releases it within the busy timeout)."""
        if self.proxy is None:
            with self.write_lock():
                yield
            return
        self.proxy.stall()
        try:
            yield
        finally:
            self.proxy.restore()

    @contextmanager
    def failing_worker_updates(self) -> Iterator[None]:
        """Every UPDATE of a worker row fails in the database (a trigger raising "disk full"): the
        first statement an inbound message's transaction runs after inserting the message row."""
        with self.engine.begin() as conn:
            if self.kind == "sqlite":
                conn.exec_driver_sql(
                    "CREATE TRIGGER fault_injected BEFORE UPDATE ON workers "
                    "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
                )
            else:
                conn.exec_driver_sql(
                    "CREATE FUNCTION fault_injected() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    "RAISE EXCEPTION 'could not extend file: No space left on device' "
                    "USING ERRCODE = 'disk_full'; END $$"
                )
                conn.exec_driver_sql(
                    "CREATE TRIGGER fault_injected BEFORE UPDATE ON workers "
                    "FOR EACH ROW EXECUTE FUNCTION fault_injected()"
                )
        try:
            yield
        finally:
            with self.engine.begin() as conn:
                if self.kind == "sqlite":
                    conn.exec_driver_sql("DROP TRIGGER fault_injected")
                else:
                    conn.exec_driver_sql("DROP TRIGGER fault_injected ON workers")
                    conn.exec_driver_sql("DROP FUNCTION fault_injected()")

    def stored(self, openid: str) -> Stored:
        with self.sessions() as s:
            worker = s.scalars(select(Worker).where(Worker.openid == openid)).one_or_none()
            if worker is None:
                return Stored(0, 0, 0, ())
            messages = s.scalars(
                select(Message)
                .where(Message.worker_id == worker.id, Message.direction == INBOUND)
                .order_by(Message.id)
            ).all()
            consultations = s.scalar(
                select(func.count()).select_from(Consultation).where(Consultation.worker_id == worker.id)
            )
            return Stored(1, len(messages), consultations, tuple(m.reply for m in messages))

    def outbox(self, content: str | None = None) -> list[OutboxMessage]:
        with self.sessions() as s:
            query = select(OutboxMessage).order_by(OutboxMessage.id)
            if content is not None:
                query = query.where(OutboxMessage.content.contains(content))
            return list(s.scalars(query))


@pytest.fixture
def database(database_url) -> Iterator[Database]:
    db = Database(database_url)
    yield db
    db.close()


def wait_for(condition: Callable[[], Any], *, timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# --- WeChat's side: pushes and retries -----------------------------------------------------------------


@dataclass(frozen=True)
class Push:
    """One message as WeChat delivers it; WeChat's retries resend exactly this request (same MsgId)."""

    openid: str
    msg_id: int
    query: dict[str, str]
    body: bytes


def push_of(openid: str, msg_id: int, content: str = QUESTION) -> Push:
    xml = wx.text_xml(content, openid=openid, msg_id=msg_id)
    return Push(openid, msg_id, wx.signed_query(), xml.encode())


def deliver(base_url: str, push: Push, *, timeout: float = WECHAT_WAIT) -> requests.Response | None:
    """POST the push as WeChat does; None when no answer came within `timeout` (WeChat then retries)."""
    try:
        return requests.post(
            f"{base_url}/wechat",
            params=push.query,
            data=push.body,
            headers={"Content-Type": "text/xml"},
            timeout=timeout,
        )
    except (requests.Timeout, requests.ConnectionError):
        return None


def reply_of(res: requests.Response | None) -> str:
    """The passive reply WeChat shows the worker (the answer must be a 200 with XML)."""
    assert res is not None and res.status_code == 200, res and (res.status_code, res.text[:200])
    return wx.reply_content(res.text)


def refused(res: requests.Response | None) -> bool:
    """WeChat retries: no answer, or an error status — never a 200 that would make it stop."""
    return res is None or res.status_code >= 500


# --- the service on a real HTTP server, with a lawyer on duty --------------------------------------------


class Service:
    """The app behind a real threaded HTTP server (werkzeug) on 127.0.0.1."""

    def __init__(self, app) -> None:
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
        self.app.extensions["workerlaw.db"].dispose()


@pytest.fixture
def service(database, standin) -> Iterator[Service]:
    """The service (not in testing mode: errors are answered as in production) on `database.app_url`,
    WeChat's API stood in for, one lawyer for the city."""
    app = create_app(
        {
            "SECRET_KEY": "fault-tests",
            "DATABASE_URL": database.app_url,
            "WECHAT_TOKEN": wx.TOKEN,
            "WECHAT_APPID": standin.appid,
            "WECHAT_APPSECRET": standin.secret,
            "WECHAT_API_BASE_URL": standin.base_url,
        }
    )
    with app.extensions["workerlaw.sessions"]() as s:
        city = Region(code="city", name="市总工会", level="city")
        lawyer = Lawyer(name="王律师", firm="某律所", active=True)
        s.add_all([city, lawyer])
        s.flush()
        s.add(LawyerRegion(lawyer_id=lawyer.id, region_id=city.id))
        create_user(s, username="wang", password="wang-password-1", role="lawyer", lawyer_id=lawyer.id)
        s.commit()
    served = Service(app)
    yield served
    served.close()


@dataclass
class OnDuty:
    """The lawyer, signed in, holding the ticket of one worker's out-of-scope question."""

    url: str
    headers: dict[str, str]
    ticket_id: int

    def reply(self, content: str, *, timeout: float = 30.0, **headers: str) -> requests.Response:
        return requests.post(
            f"{self.url}/api/tickets/{self.ticket_id}/reply",
            json={"text": content},
            headers={**self.headers, **headers},
            timeout=timeout,
        )

    def transcript(self) -> list[dict]:
        res = requests.get(f"{self.url}/api/tickets/{self.ticket_id}", headers=self.headers, timeout=10)
        assert res.status_code == 200, res.text
        return res.json()["transcript"]


def lawyer_with_ticket(service: Service, openid: str, msg_id: int) -> OnDuty:
    assert "律师" in reply_of(deliver(service.url, push_of(openid, msg_id, OUT_OF_SCOPE)))
    login = requests.post(
        f"{service.url}/api/login", json={"username": "wang", "password": "wang-password-1"}, timeout=10
    )
    headers = {"Authorization": f"Bearer {login.json()['token']}"}
    items = requests.get(f"{service.url}/api/tickets", headers=headers, timeout=10).json()["items"]
    (ticket,) = [i for i in items if i["question"] == OUT_OF_SCOPE]
    claimed = requests.post(f"{service.url}/api/tickets/{ticket['id']}/claim", headers=headers, timeout=10)
    assert claimed.status_code == 200, claimed.text
    return OnDuty(service.url, headers, ticket["id"])


def run_send_outbox(service: Service, *, later: timedelta = timedelta(minutes=1)) -> int:
    """The scheduler's `send-outbox` job with the app's gateway, `later` from now (past the lawyer's
    join delay, so a fresh reply is due)."""
    app = service.app
    return send_outbox(
        app.extensions["workerlaw.sessions"], wechat=app.extensions["workerlaw.wechat"], now=utcnow() + later
    )


# --- 1. the database unavailable for a while -------------------------------------------------------------


def test_while_the_database_is_away_wechat_is_never_told_success_and_its_retries_are_processed_once(
    database, service, standin
):
    """Database outage (PostgreSQL: the proxy resets every connection and refuses new ones; SQLite: the
    write lock held by another connection beyond the 5 s busy timeout, through the webhook's two
    attempts). A worker's push and a lawyer's reply arrive meanwhile: both get an error and nothing is
    stored. Then WeChat's retries of the same MsgId are processed once, with the normal reply, and the
    lawyer's resend queues exactly one outbox row, delivered once."""
    lawyer = lawyer_with_ticket(service, "oWorkerA", 1)
    push = push_of("oWorkerB", 2)
    during = 1 if database.kind == "sqlite" else 3  # on SQLite each attempt waits out the busy timeout

    with database.outage():
        with ThreadPoolExecutor(2) as pool:
            pushed = pool.submit(lambda: [deliver(service.url, push, timeout=30) for _ in range(during)])
            replied = pool.submit(lawyer.reply, LAWYER_REPLY)
            answers, lawyer_answer = pushed.result(), replied.result()
        assert all(refused(a) for a in answers), [(a.status_code, a.text[:80]) for a in answers if a]
        assert lawyer_answer.status_code >= 500  # the lawyer sees it failed: not silently lost
        assert database.stored("oWorkerB") == Stored(0, 0, 0, ())
        assert database.outbox(LAWYER_REPLY) == []

    # The database is back: WeChat's next retry is processed, the one after gets the stored reply.
    first, again = deliver(service.url, push), deliver(service.url, push)
    control = reply_of(deliver(service.url, push_of("oWorkerC", 3)))  # the same question, no fault
    assert reply_of(first) == reply_of(again) == control
    assert "工资" in control
    assert database.stored("oWorkerB") == Stored(1, 1, 1, (control,))

    resent = lawyer.reply(LAWYER_REPLY)
    assert resent.status_code == 200 and resent.json()["delivery"]["via"] == "customer_service"
    (row,) = database.outbox(LAWYER_REPLY)
    assert row.content == LAWYER_REPLY and row.openid == "oWorkerA"
    assert [m["text"] for m in lawyer.transcript()].count(LAWYER_REPLY) == 1

    assert run_send_outbox(service) == 1
    assert run_send_outbox(service, later=timedelta(days=1)) == 0
    assert [(d.openid, d.text) for d in standin.delivered] == [("oWorkerA", LAWYER_REPLY)]


def test_a_database_slower_than_wechats_wait_gets_the_push_processed_once(database, service):
    """The database hangs (PostgreSQL: bytes stop flowing; SQLite: the write lock held for a while, less
    than the busy timeout). WeChat gives up on the first delivery and on its retry (1 s here, 5 s in
    reality: no answer either way); both requests finish once the database is back, and WeChat's last
    retry gets the one stored reply: one message, one consultation."""
    push = push_of("oSlow", 10)
    started = time.monotonic()
    with database.stall():
        assert deliver(service.url, push, timeout=1.0) is None
        assert deliver(service.url, push, timeout=1.0) is None
    assert time.monotonic() - started < SQLITE_BUSY - 1  # SQLite: released before the busy timeout

    stored = wait_for(lambda: (s := database.stored("oSlow")).replies and s.replies[0] and s, what="reply")
    assert stored.messages == 1 and stored.consultations == 1
    assert reply_of(deliver(service.url, push)) == stored.replies[0]
    assert "工资" in stored.replies[0]
    assert database.stored("oSlow") == stored


def test_a_failure_after_the_message_row_leaves_nothing_that_would_swallow_the_retry(
    request, database, service
):
    """A statement of the push's transaction fails after the message row was inserted (a trigger
    raising "disk full" on the worker update that follows it; a write lock lost to another process, an
    I/O error or a crash at that point would do the same). WeChat must not be answered "success" while
    the message has no reply, and its retry after the fault must be processed: one message with its
    reply, one consultation."""
    push = push_of("oFull", 20)
    with database.failing_worker_updates():
        during = deliver(service.url, push, timeout=30)
        assert refused(during), (during.status_code, during.text[:80]) if during else None
        assert database.stored("oFull").replies in ((), (None,))
    answer = reply_of(deliver(service.url, push))
    assert "工资" in answer
    assert database.stored("oFull") == Stored(1, 1, 1, (answer,))


@pytest.fixture
def over_a_network(database_url) -> None:
    """Skips on SQLite (before the service is built): only a network can lose a commit's answer."""
    if database_url.startswith("sqlite"):
        pytest.skip("a commit acknowledgement can only be lost over a network (PostgreSQL)")


def test_a_lost_commit_acknowledgement_in_the_webhook_is_answered_from_the_stored_row(
    over_a_network, database, service
):
    """PostgreSQL: the proxy delivers the webhook's COMMIT, PostgreSQL commits, and the connection is
    reset before the answer reaches the service. The webhook's second attempt finds the stored message
    (unique dedup key) and answers with its reply: WeChat gets the normal reply, once, counted once."""
    control = reply_of(deliver(service.url, push_of("oControl", 30)))
    trap = database.proxy.drop_answer_to_next(b"COMMIT")
    answer = reply_of(deliver(service.url, push_of("oAckLost", 31)))
    assert trap.is_set()
    assert answer == control
    assert database.stored("oAckLost") == Stored(1, 1, 1, (control,))


def test_a_lost_commit_acknowledgement_of_a_lawyer_reply_is_an_error_though_the_reply_was_queued(
    over_a_network, database, service, standin
):
    """PostgreSQL: the lawyer's reply commits but the acknowledgement is lost (connection reset). The
    lawyer gets an error although the reply is stored and queued; the ticket's transcript shows it
    once, so a console that re-reads the ticket before resending never doubles it. The staff API has
    no idempotency key: a blind resend (even with an Idempotency-Key header) is a second reply, joined
    to the first while it still waits, and the worker reads the text twice."""
    lawyer = lawyer_with_ticket(service, "oWorkerA", 40)
    trap = database.proxy.drop_answer_to_next(b"COMMIT")
    first = lawyer.reply(LAWYER_REPLY, **{"Idempotency-Key": "reply-1"})
    assert trap.is_set()
    assert first.status_code >= 500
    assert [m["text"] for m in lawyer.transcript()].count(LAWYER_REPLY) == 1
    assert [r.content for r in database.outbox(LAWYER_REPLY)] == [LAWYER_REPLY]

    blind = lawyer.reply(LAWYER_REPLY, **{"Idempotency-Key": "reply-1"})
    assert blind.status_code == 200
    assert [m["text"] for m in lawyer.transcript()].count(LAWYER_REPLY) == 2
    assert run_send_outbox(service) == 1
    assert [d.text for d in standin.delivered] == [f"{LAWYER_REPLY}\n{LAWYER_REPLY}"]


# --- 2. WeChat's API failing or slow ----------------------------------------------------------------------


def gateway(sessions, standin: WeChatStandIn, base_url: str | None = None) -> WeChatApi:
    """The real gateway with a 1 s HTTP timeout (the service's is 5 s)."""
    return WeChatApi(
        standin.appid,
        standin.secret,
        session_factory=sessions,
        base_url=base_url or standin.base_url,
        timeout=1.0,
    )


def test_a_lawyer_reply_survives_wechat_errors_refusals_and_timeouts_and_arrives_once(
    database, service, standin
):
    """WeChat's API fails in every definite way while `send-outbox` delivers a lawyer's reply: errcode
    -1 (system busy), HTTP 500, the connection refused (a proxy in front of the stand-in, cut), and a
    request that times out and that WeChat did not carry out. Each time the reply stays queued with its
    backoff (a run before it is due sends nothing); when WeChat recovers it arrives exactly once."""
    lawyer = lawyer_with_ticket(service, "oWorkerA", 50)
    assert lawyer.reply(LAWYER_REPLY).status_code == 200
    sessions = service.app.extensions["workerlaw.sessions"]
    host, port = standin.base_url.removeprefix("http://").split("/")[0].split(":")

    def row() -> OutboxMessage:
        (only,) = database.outbox(LAWYER_REPLY)
        return only

    with TcpProxy(host, int(port)) as network:
        api = gateway(sessions, standin, f"http://127.0.0.1:{network.port}/cgi-bin/")
        t0 = utcnow() + timedelta(minutes=1)

        def run(after: float) -> int:
            return send_outbox(sessions, wechat=api, now=t0 + timedelta(seconds=after))

        standin.fail_next_sends(Fault(errcode=-1))
        assert run(0) == 0
        assert (row().status, row().attempts) == (OutboxStatus.PENDING, 1) and "-1" in row().last_error
        assert run(29) == 0 and standin.hits["message/custom/send"] == 1  # not due before its backoff

        standin.fail_next_sends(Fault(status=500))
        assert run(30) == 0
        assert (row().status, row().attempts) == (OutboxStatus.PENDING, 2) and "500" in row().last_error

        network.cut()  # WeChat unreachable
        assert run(90) == 0
        assert (row().status, row().attempts) == (OutboxStatus.PENDING, 3)
        assert standin.hits["message/custom/send"] == 2  # that attempt never reached WeChat
        network.restore()

        standin.fail_next_sends(Fault(delay=1.5, errcode=-1))  # slower than the client waits, then busy
        assert run(210) == 0
        assert (row().status, row().attempts) == (OutboxStatus.PENDING, 4)
        assert "timed out" in row().last_error.lower()

        assert run(450) == 1
        assert run(86400) == 0
    assert (row().status, row().attempts) == (OutboxStatus.SENT, 5)
    assert [(d.openid, d.text) for d in standin.delivered] == [("oWorkerA", LAWYER_REPLY)]
    assert standin.hits["message/custom/send"] == 4


@pytest.fixture
def outbox_db(database) -> Database:
    """The outbox's tables only (what `send-outbox` touches)."""
    Model.metadata.create_all(database.engine, tables=[AccessToken.__table__, OutboxMessage.__table__])
    return database


def queue_replies(database: Database, *replies: tuple[str, str, str]) -> None:
    """Lawyers' replies (openid, text, dedup key) as `Desk.reply` queues them, due now."""
    when = utcnow() - timedelta(minutes=1)
    with database.sessions() as s, s.begin():
        for openid, content, key in replies:
            enqueue(s, channel="oa", openid=openid, text=content, dedup_key=key, now=when)


def test_a_send_that_timed_out_after_wechat_accepted_it_is_sent_again(outbox_db, standin):
    """The guarantee is at-least-once, not exactly-once: WeChat accepts the message but its answer
    comes after the client's timeout. The outbox cannot know WeChat carried it out (no idempotency key
    for customer-service messages), keeps it queued and sends it again after the backoff: the worker
    gets it twice, and never a third time. (The outbox's module docstring names only a sender dying
    between WeChat's "ok" and the commit as a source of repeats; this is a second one.)"""
    queue_replies(outbox_db, ("oWorkerT", LAWYER_REPLY, "cs|lawyer|reply-1"))
    api = gateway(outbox_db.sessions, standin)
    t0 = utcnow()
    standin.fail_next_sends(Fault(delay=1.5))  # accepted, but answered after 1.5 s

    assert send_outbox(outbox_db.sessions, wechat=api, now=t0) == 0
    (row,) = outbox_db.outbox()
    assert (row.status, row.attempts) == (OutboxStatus.PENDING, 1) and "timed out" in row.last_error.lower()
    wait_for(lambda: standin.delivered, what="WeChat carrying out the timed-out request")

    assert send_outbox(outbox_db.sessions, wechat=api, now=t0 + timedelta(seconds=30)) == 1
    assert send_outbox(outbox_db.sessions, wechat=api, now=t0 + timedelta(days=1)) == 0
    (row,) = outbox_db.outbox()
    assert (row.status, row.attempts) == (OutboxStatus.SENT, 2)
    assert [(d.openid, d.text) for d in standin.delivered] == [("oWorkerT", LAWYER_REPLY)] * 2


# --- 3. a web process killed mid-request ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def subprocess_env(**settings: str) -> dict[str, str]:
    """The environment of a service process: ours without the service's own settings, plus these."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECHAT_", "FLASK_", "DATABASE_"))}
    return {**env, "PYTHONUNBUFFERED": "1", "SECRET_KEY": "fault-tests", **settings}


class ServerProcess:
    """`flask --app app run` in a process of its own on 127.0.0.1 (what a web worker is)."""

    def __init__(self, database_url: str, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log.open("ab")
        env = subprocess_env(DATABASE_URL=database_url, WECHAT_TOKEN=wx.TOKEN)
        command = ["-m", "flask", "--app", "app", "run", "--host", "127.0.0.1", "--port", str(self.port)]
        self.proc = subprocess.Popen(
            [sys.executable, *command, "--no-reload", "--no-debugger"],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"the server exited: {self.log.name}"
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise AssertionError("the server did not start")

    def kill(self) -> None:
        """SIGKILL: no cleanup, no rollback, no answer."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.stop()


@contextmanager
def messages_locked(database: Database) -> Iterator[Callable[[], bool | None]]:
    """Block writers of the messages table: SQLite, the whole database's write lock; PostgreSQL, `LOCK
    TABLE messages IN EXCLUSIVE MODE` (reads go on). Yields whether a writer of the service is waiting
    (on PostgreSQL, as pg_locks says; on SQLite, nothing says so: None)."""
    if database.kind == "sqlite":
        with database.write_lock():
            yield lambda: None
        return
    with database.engine.connect() as conn:
        holder = conn.begin()
        conn.exec_driver_sql("LOCK TABLE messages IN EXCLUSIVE MODE")
        with database.engine.connect() as watcher:

            def waiting() -> bool:
                return bool(
                    watcher.execute(
                        text(
                            "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'messages'::regclass"
                        )
                    ).scalar()
                )

            yield waiting
            holder.rollback()


def locks_held_by_others(database: Database, *tables: str, mode: str | None = None) -> int:
    """PostgreSQL: granted locks other backends hold on these tables of this schema (of `mode`)."""
    with database.engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT count(*) FROM pg_locks WHERE granted AND pid <> pg_backend_pid() "
                "AND relation = ANY(CAST(:tables AS regclass[])) AND (CAST(:mode AS text) IS NULL OR mode = :mode)"
            ),
            {"tables": list(tables), "mode": mode},
        ).scalar()


def test_a_web_process_killed_mid_request_leaves_nothing_and_the_redelivery_is_processed_once(
    database, servers, tmp_path
):
    """A `flask run` process takes a new worker's push and is SIGKILLed while the push's transaction is
    blocked on the messages table (PostgreSQL: the worker row already inserted in it; SQLite: waiting for
    the write lock held by the test). WeChat gets no answer. Nothing of the push remains; a new process
    takes WeChat's retry of the same MsgId and answers it, and the retry after that gets the same reply:
    one worker, one message, one consultation."""
    first = ServerProcess(database.url, tmp_path / "server-1.log")
    servers.append(first)
    first.wait_ready()
    push = push_of("oKilled", 60)
    answers: list[requests.Response | None] = []

    with messages_locked(database) as waiting:
        sender = threading.Thread(target=lambda: answers.append(deliver(first.url, push, timeout=30)))
        sender.start()
        if database.kind == "postgresql":
            wait_for(waiting, what="the request to block on the messages table")
            # half-written: the blocked transaction has already inserted the new worker's row
            assert locks_held_by_others(database, "workers", mode="RowExclusiveLock") == 1
        else:
            sender.join(1.5)  # a push takes milliseconds; well inside the 5 s busy timeout
        assert sender.is_alive(), "the request was not blocked"
        first.kill()
        sender.join(10)
    assert answers == [None]  # the connection died with the process: WeChat will retry

    if database.kind == "postgresql":  # the orphaned backend noticed its client is gone and rolled back
        wait_for(
            lambda: locks_held_by_others(database, "workers", "messages") == 0,
            what="the killed transaction to end",
        )
    else:
        with sqlite3.connect(database.path) as check:
            assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert database.stored("oKilled") == Stored(0, 0, 0, ())

    second = ServerProcess(database.url, tmp_path / "server-2.log")
    servers.append(second)
    second.wait_ready()
    answer = reply_of(deliver(second.url, push))
    assert "工资" in answer
    assert reply_of(deliver(second.url, push)) == answer
    assert database.stored("oKilled") == Stored(1, 1, 1, (answer,))


# --- 4. senders: a crash between sending and marking sent; two at once --------------------------------------


class HangingStandIn(WeChatStandIn):
    """The stand-in, able to accept one message and then hold its answer until `release` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.hang_after_accepting = False
        self.accepted = threading.Event()
        self.release = threading.Event()

    def send(self, query: dict[str, str], raw: bytes, endpoint: str = "message/custom/send"):
        status, payload = super().send(query, raw, endpoint)
        if self.hang_after_accepting and payload.get("errcode") == 0:
            self.hang_after_accepting = False
            self.accepted.set()
            self.release.wait(60)
        return status, payload


def test_a_scheduler_killed_after_wechat_accepted_a_reply_sends_it_again_after_the_claim_timeout(
    database, tmp_path
):
    """At-least-once, precisely: `flask scheduler run --once` claims the queued reply and sends it;
    WeChat accepts it, and the process is SIGKILLed before it records "sent". The row stays claimed
    ("sending", by the dead process): a sender running at once leaves it alone (the claim may be live);
    one running `CLAIM_TIMEOUT` later takes it over and sends it again. The worker gets it twice —
    never zero times, never three."""
    upgrade(database.engine)
    queue_replies(database, ("oWorkerK", LAWYER_REPLY, "cs|lawyer|reply-9"))
    with HangingStandIn() as standin:
        standin.hang_after_accepting = True
        env = subprocess_env(
            DATABASE_URL=database.url,
            WECHAT_TOKEN=wx.TOKEN,
            WECHAT_APPID=standin.appid,
            WECHAT_APPSECRET=standin.secret,
            WECHAT_API_BASE_URL=standin.base_url,
        )
        with (tmp_path / "scheduler.log").open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "app", "scheduler", "run", "--once"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                assert standin.accepted.wait(60), (tmp_path / "scheduler.log").read_text()
                (row,) = database.outbox()
                assert (row.status, row.attempts) == (OutboxStatus.SENDING, 1)
                assert row.claimed_by == f"{socket.gethostname()}:{proc.pid}"
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=10)
            finally:
                standin.release.set()
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=10)
        assert [d.text for d in standin.delivered] == [LAWYER_REPLY]
        (row,) = database.outbox()
        assert (row.status, row.sent_at) == (OutboxStatus.SENDING, None)

        api = gateway(database.sessions, standin)
        assert send_outbox(database.sessions, wechat=api, now=utcnow()) == 0
        assert len(standin.delivered) == 1
        later = utcnow() + CLAIM_TIMEOUT
        assert send_outbox(database.sessions, wechat=api, now=later) == 1
        assert send_outbox(database.sessions, wechat=api, now=later + timedelta(days=1)) == 0
        assert [(d.openid, d.text) for d in standin.delivered] == [("oWorkerK", LAWYER_REPLY)] * 2
    (row,) = database.outbox()
    assert (row.status, row.attempts) == (OutboxStatus.SENT, 2)


SENDER = """
import sys
from datetime import UTC, datetime
from bot.outbox import deliver_due
from bot.wechat import WeChatApi
from models import make_engine, make_sessionmaker

url, base_url, appid, secret, name = sys.argv[1:]
sessions = make_sessionmaker(make_engine(url))
api = WeChatApi(appid, secret, session_factory=sessions, base_url=base_url, timeout=5.0)
print("ready", flush=True)
sys.stdin.readline()
now, total = datetime.now(UTC), 0
while sent := deliver_due(sessions, api, now=now, worker_id=name, batch=3):
    total += sent
print(total, flush=True)
"""


def test_two_sender_processes_never_send_the_same_message(outbox_db, standin):
    """Two operating-system processes drain the same outbox at once (as two schedulers would if one
    outlived its lease), each with its own engine and gateway, WeChat a little slow: every message
    reaches WeChat exactly once, each worker's in order, and both processes did part of the work."""
    texts = [(f"oWorker{i % 6:02}", f"律师答复 {i}") for i in range(24)]
    queue_replies(outbox_db, *[(o, c, f"cs|lawyer|reply-{n}") for n, (o, c) in enumerate(texts)])
    standin.send_fault = Fault(delay=0.05)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                SENDER,
                outbox_db.url,
                standin.base_url,
                standin.appid,
                standin.secret,
                name,
            ],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in ("sender-1", "sender-2")
    ]
    try:
        for proc in procs:
            assert proc.stdout.readline().strip() == "ready"
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        totals = [int(proc.communicate(timeout=60)[0].strip()) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)

    assert Counter((d.openid, d.text) for d in standin.delivered) == Counter(texts)
    assert standin.hits["message/custom/send"] == len(texts)
    assert sum(totals) == len(texts) and all(totals), totals
    rows = outbox_db.outbox()
    assert {r.status for r in rows} == {OutboxStatus.SENT} and {r.attempts for r in rows} == {1}
    assert {r.claimed_by for r in rows} == {"sender-1", "sender-2"}
    for openid in {o for o, _ in texts}:
        assert [d.text for d in standin.delivered if d.openid == openid] == [
            c for o, c in texts if o == openid
        ]
