"""The retention purge on SQLite and PostgreSQL: consultations made through the real Inbox and Desk, the
texts of those closed long ago blanked, recent and open ones, undelivered replies and every count and
report figure left as they were; a second run finds nothing; the job, its setting and the command."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import select

from app import ConfigurationError, create_app
from bot import notify
from bot.conversation import Responder
from bot.inbox import Inbound, Inbox
from bot.outbox import deliver_due
from bot.reports import Reports, Scope
from bot.retention import CARD_PURGED, QUOTING_NOTICES, purge
from bot.staff import create_user
from bot.tickets import Desk
from handlers import retention_cli
from knowledge.worker_types import load
from models import (
    Consultation,
    Lawyer,
    LawyerRegion,
    Message,
    Notice,
    OutboxMessage,
    OutboxStatus,
    Referral,
    Region,
    StaffUser,
    Ticket,
    TicketEvent,
    WeeklyShift,
    Worker,
    make_engine,
    make_sessionmaker,
)
from models.schema import upgrade
from scheduler.jobs import JOBS
from tests.wechat_standin import RecordingGateway

# Monday 2026-11-23, 10:00 in China: the lawyer of township A is on duty.
OLD = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
NOW = OLD + timedelta(days=400)
KEEP = 365
EVERYTHING = Scope(date(2026, 11, 1), date(2027, 12, 31))


@pytest.fixture
def world(database_url, engine):
    """A city union, a district and a township with a weekday lawyer (Wang); the Inbox and Desk."""
    db = make_engine(database_url)
    upgrade(db)
    sessions = make_sessionmaker(db)
    desk = Desk(engine.kb.replies)
    inbox = Inbox(Responder(engine), desk=desk)
    with sessions() as s:
        city = Region(code="city", name="市总工会", level="city")
        s.add(city)
        s.flush()
        district = Region(code="d1", name="一区总工会", level="district", parent_id=city.id)
        s.add(district)
        s.flush()
        town = Region(code="ta", name="甲街道工会", level="township", parent_id=district.id)
        s.add(town)
        wang = Lawyer(name="王律师")
        s.add(wang)
        s.flush()
        s.add(LawyerRegion(lawyer_id=wang.id, region_id=town.id))
        for weekday in range(5):
            s.add(
                WeeklyShift(
                    region_id=town.id,
                    lawyer_id=wang.id,
                    weekday=weekday,
                    start_time=time(9),
                    end_time=time(17),
                )
            )
        create_user(s, username="wang", password="wang-password", role="lawyer", lawyer_id=wang.id)
        create_user(
            s, username="admin_d1", password="admin-password", role="union_admin", region_id=district.id
        )
        s.commit()
    counter = itertools.count(1)

    def say(openid: str, content: str | None, at: datetime, **extra):
        with sessions() as s:
            if s.scalars(select(Worker).where(Worker.openid == openid)).one_or_none() is None:
                s.add(Worker(channel="oa", openid=openid, region_code="ta", first_contact_at=at))
                s.flush()
            msg = Inbound(
                channel="oa",
                openid=openid,
                msg_type=extra.pop("msg_type", "text"),
                dedup_key=f"m{next(counter)}",
                created_at=at,
                content=content,
                **extra,
            )
            handled = inbox.handle(s, msg, now=at)
            s.commit()
            return handled

    yield {"sessions": sessions, "desk": desk, "say": say, "url": database_url}
    db.dispose()


def staff(s, username: str) -> StaffUser:
    return s.scalars(select(StaffUser).where(StaffUser.username == username)).one()


def ticket_of(s, openid: str) -> Ticket:
    return s.scalars(
        select(Ticket).join(Worker, Worker.id == Ticket.worker_id).where(Worker.openid == openid)
    ).one()


def messages_of(s, openid: str) -> list[Message]:
    query = select(Message).join(Worker, Worker.id == Message.worker_id).where(Worker.openid == openid)
    return list(s.scalars(query.order_by(Message.id)))


def outbox_to(s, openid: str) -> list[OutboxMessage]:
    return list(
        s.scalars(select(OutboxMessage).where(OutboxMessage.openid == openid).order_by(OutboxMessage.id))
    )


def build(world) -> None:
    """Six workers (see each block); everything through the Inbox and the Desk, as the service does it."""
    say, desk, sessions = world["say"], world["desk"], world["sessions"]
    # A, long ago: to a lawyer, intake answered, a note, a legal-aid referral, closed and rated; every
    # reply delivered.
    say("oA", "我想找律师，老板欠我三个月工资", OLD)
    for i, answer in enumerate(["城东花园工地", "木工", "两万三", "跳过", "有工友作证"]):
        say("oA", answer, OLD + timedelta(minutes=1 + i))
    with sessions() as s:
        wang, ticket = staff(s, "wang"), ticket_of(s, "oA")
        desk.claim(s, wang, ticket, now=OLD + timedelta(minutes=6))
        s.commit()
    say("oA", "老板今天又说下个月再给", OLD + timedelta(minutes=10))
    with sessions() as s:
        wang, ticket = staff(s, "wang"), ticket_of(s, "oA")
        desk.reply(s, wang, ticket, "您好，我是王律师，请保留工资条。", now=OLD + timedelta(minutes=12))
        desk.note(s, wang, ticket, "咨询人张三，电话13800138000", now=OLD + timedelta(minutes=13))
        desk.refer(s, wang, ticket, reason="欠薪两万三，申请法律援助", now=OLD + timedelta(minutes=14))
        desk.close(
            s, wang, ticket, outcome="legal_aid", category="wage_arrears", now=OLD + timedelta(minutes=20)
        )
        s.commit()
    say("oA", "5", OLD + timedelta(minutes=21))
    assert deliver_due(sessions, RecordingGateway(), now=OLD + timedelta(hours=1), worker_id="test") >= 2
    # B, long ago: followed the account, asked the bot, sent a photo, ended it.
    say("oB", None, OLD - timedelta(minutes=1), msg_type="event", event="subscribe")
    say("oB", "工伤认定要多久", OLD)
    say("oB", None, OLD + timedelta(minutes=1), msg_type="image", media_id="MEDIA-B-1")
    say("oB", "结束", OLD + timedelta(minutes=2))
    # C, long ago: the lawyer's reply and the closing message still wait in the outbox (never sent).
    at = OLD + timedelta(hours=2)
    say("oC", "我想找律师，被公司辞退了", at)
    with sessions() as s:
        wang, ticket = staff(s, "wang"), ticket_of(s, "oC")
        desk.claim(s, wang, ticket, now=at)
        desk.reply(s, wang, ticket, "请把辞退通知拍给我", now=at + timedelta(minutes=1))
        desk.close(
            s, wang, ticket, outcome="answered", category="labor_contract", now=at + timedelta(minutes=5)
        )
        s.commit()
    # F, long ago: the lawyer answered after WeChat's 48 hours, so the reply is held for F's next message.
    say("oF", "我想找律师，工地受伤了", OLD)
    later = OLD + timedelta(days=3)
    with sessions() as s:
        wang, ticket = staff(s, "wang"), ticket_of(s, "oF")
        desk.claim(s, wang, ticket, now=later)
        assert desk.reply(s, wang, ticket, "请先去医院并保留病历", now=later).via == notify.HISTORY
        desk.close(s, wang, ticket, outcome="answered", category="work_injury", now=later)
        s.commit()
    # E, long ago and still open: the ticket nobody closed.
    say("oE", "我想找律师，社保断缴了", OLD + timedelta(hours=3))
    # D, recently: a bot answer, ended two days ago.
    say("oD", "加班费怎么算", NOW - timedelta(days=2))
    say("oD", "结束", NOW - timedelta(days=2) + timedelta(minutes=1))


def figures(world) -> dict:
    """The report of the whole period, and every column the counts could read."""
    with world["sessions"]() as s:
        report = Reports(load()).summary(s, EVERYTHING, now=NOW)
        consultations = [
            tuple(getattr(c, col.key) for col in Consultation.__table__.columns if col.key != "purged_at")
            for c in s.scalars(select(Consultation).order_by(Consultation.id))
        ]
        tickets = [
            tuple(
                getattr(t, col.key)
                for col in Ticket.__table__.columns
                if col.key not in ("question", "case_card")
            )
            for t in s.scalars(select(Ticket).order_by(Ticket.id))
        ]
        rows = {
            m.__tablename__: len(s.scalars(select(m)).all()) for m in (Message, TicketEvent, Notice, Referral)
        }
        rows["outbox"] = len(s.scalars(select(OutboxMessage)).all())
        home = {t.id: t.case_card.get("home_region_id") for t in s.scalars(select(Ticket))}
    return {"report": report, "consultations": consultations, "tickets": tickets, "rows": rows, "home": home}


def test_old_texts_are_blanked_and_every_count_and_figure_stays(world):
    build(world)
    before = figures(world)
    with world["sessions"]() as s:
        pending_c = [(o.status, o.content) for o in outbox_to(s, "oC")]
        kept = {who: [(m.content, m.reply) for m in messages_of(s, who)] for who in ("oD", "oE", "oF")}
    assert [status for status, _ in pending_c] == [OutboxStatus.PENDING] * 2
    assert any("请把辞退通知拍给我" in text for _, text in pending_c)

    with world["sessions"]() as s:
        result = purge(s, now=NOW, keep_days=KEEP)

    assert result.consultations == 3  # A, B and C
    assert result.waiting == 1  # F: its lawyer's reply has not left yet
    assert result.messages > 0 and result.tickets == 2 and result.referrals == 1 and result.outbox >= 2
    assert figures(world) == before  # the same report, columns, rows and home regions
    with world["sessions"]() as s:
        for who in ("oA", "oB", "oC"):
            assert all((m.content, m.reply, m.media_id) == (None, None, None) for m in messages_of(s, who)), (
                who
            )
        # The pending outbox rows of C are exactly as they were: the reply will still be delivered.
        assert [(o.status, o.content) for o in outbox_to(s, "oC")] == pending_c
        # A's delivered replies lost their text in the outbox too.
        assert outbox_to(s, "oA") and all(o.content == "" for o in outbox_to(s, "oA"))
        ticket = ticket_of(s, "oA")
        assert ticket.question is None
        assert ticket.case_card == {
            "home_region_id": before["home"][ticket.id],
            "employer": CARD_PURGED,
            "role": CARD_PURGED,
            "amount": CARD_PURGED,
            "since": None,  # skipped by the worker: still shown as skipped
            "evidence": CARD_PURGED,
        }
        events = {
            e.kind: e.text for e in s.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id))
        }
        assert events == {
            "created": None,
            "claim": None,
            "reply": None,
            "note": None,
            "referral": None,
            "close": "legal_aid",
        }
        assert s.scalars(select(Referral)).one().reason is None
        notices = {n.kind: n.text for n in s.scalars(select(Notice).where(Notice.ticket_id == ticket.id))}
        assert notices["new_ticket"] == QUOTING_NOTICES["new_ticket"]
        assert notices["worker_wrote"] == QUOTING_NOTICES["worker_wrote"]
        assert notices["referral"] == "有法律援助转介待审核"  # fixed text, not the worker's
        consultation = s.get(Consultation, ticket.consultation_id)
        assert consultation.purged_at is not None and consultation.rating == 5
        # Recent, open and waiting ones keep every text.
        assert {who: [(m.content, m.reply) for m in messages_of(s, who)] for who in kept} == kept
        assert all(text for text, _ in kept["oE"][:1]) and ticket_of(s, "oE").question
        assert ticket_of(s, "oF").question and ticket_of(s, "oF").case_card

    with world["sessions"]() as s:
        again = purge(s, now=NOW, keep_days=KEEP)
    assert again.total == 0 and again.waiting == 1


def test_a_held_reply_is_purged_once_it_has_left(world):
    build(world)
    with world["sessions"]() as s:
        purge(s, now=NOW, keep_days=KEEP)
    world["say"]("oF", "谢谢律师", NOW)  # F writes again: the held reply leaves through the outbox
    with world["sessions"]() as s:
        released = outbox_to(s, "oF")
        assert [o.content for o in released] == ["请先去医院并保留病历"]
    with world["sessions"]() as s:
        result = purge(s, now=NOW, keep_days=KEEP)
    assert (result.consultations, result.waiting) == (1, 0)
    with world["sessions"]() as s:
        old, new = s.scalars(
            select(Consultation).join(Worker).where(Worker.openid == "oF").order_by(Consultation.id)
        ).all()
        texts = [(m.consultation_id, m.content) for m in messages_of(s, "oF")]
        assert all(text is None for cid, text in texts if cid == old.id)
        assert any(text == "谢谢律师" for cid, text in texts if cid == new.id)
        assert [(o.status, o.content) for o in outbox_to(s, "oF")] == [
            (OutboxStatus.PENDING, "请先去医院并保留病历")
        ]


def test_small_batches_purge_the_same(world):
    build(world)
    with world["sessions"]() as s:
        result = purge(s, now=NOW, keep_days=KEEP, batch_size=1)
    assert (result.consultations, result.waiting) == (3, 1)
    with world["sessions"]() as s:
        assert all(m.content is None for who in ("oA", "oB", "oC") for m in messages_of(s, who))


def test_a_longer_retention_keeps_everything(world):
    build(world)
    with world["sessions"]() as s:
        result = purge(s, now=NOW, keep_days=500)
    assert result.total == 0
    with pytest.raises(ValueError):
        purge(world["sessions"](), now=NOW, keep_days=0)


def test_the_job_follows_retention_days_and_zero_turns_it_off(world):
    build(world)
    before = figures(world)
    job = JOBS["purge-message-text"]
    assert job.interval <= timedelta(hours=1)
    off = create_app({"TESTING": True, "SECRET_KEY": "t", "DATABASE_URL": world["url"], "RETENTION_DAYS": 0})
    try:
        assert job.func(off.extensions["workerlaw.sessions"], wechat=None, now=NOW, **job.options(off)) == 0
    finally:
        off.extensions["workerlaw.db"].dispose()
    with world["sessions"]() as s:
        assert ticket_of(s, "oA").question and all(
            c.purged_at is None for c in s.scalars(select(Consultation))
        )
    on = create_app({"TESTING": True, "SECRET_KEY": "t", "DATABASE_URL": world["url"]})
    try:
        assert on.config["RETENTION_DAYS"] == 365
        assert job.func(on.extensions["workerlaw.sessions"], wechat=None, now=NOW, **job.options(on)) > 0
        assert job.func(on.extensions["workerlaw.sessions"], wechat=None, now=NOW, **job.options(on)) == 0
    finally:
        on.extensions["workerlaw.db"].dispose()
    assert figures(world) == before


def test_the_command_purges_and_refuses_zero(world):
    then = datetime.now(UTC) - timedelta(days=40)  # the command purges as of now
    world["say"]("oB", "工伤认定要多久", then)
    world["say"]("oB", "结束", then + timedelta(minutes=1))
    app = create_app({"TESTING": True, "SECRET_KEY": "t", "DATABASE_URL": world["url"], "RETENTION_DAYS": 0})
    retention_cli.init_app(app)
    try:
        refused = app.test_cli_runner().invoke(args=["retention", "purge"])
        assert refused.exit_code != 0 and "0 days" in refused.output
        done = app.test_cli_runner().invoke(args=["retention", "purge", "--days", "30"])
        assert done.exit_code == 0 and "consultations=1" in done.output, done.output
    finally:
        app.extensions["workerlaw.db"].dispose()
    with world["sessions"]() as s:
        assert all(m.content is None for m in messages_of(s, "oB"))


def test_a_negative_retention_refuses_to_start(tmp_path, monkeypatch):
    with pytest.raises(ConfigurationError, match="RETENTION_DAYS"):
        create_app(
            {
                "TESTING": True,
                "SECRET_KEY": "t",
                "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
                "RETENTION_DAYS": -1,
            }
        )
    monkeypatch.setenv("RETENTION_DAYS", "-5")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'y.db'}")
    with pytest.raises(ConfigurationError, match="RETENTION_DAYS"):
        create_app()


def test_erasure_and_purge_blank_messages_the_same_way(world):
    """`bot.workers.erase` and the purge share `retention.blank_messages`: NULL content, reply, media id."""
    from bot import workers

    world["say"]("oB", "工伤认定要多久", OLD)
    world["say"]("oB", None, OLD + timedelta(minutes=1), msg_type="image", media_id="MEDIA-B-1")
    with world["sessions"]() as s:
        worker = s.scalars(select(Worker).where(Worker.openid == "oB")).one()
        loaded = messages_of(s, "oB")
        assert workers.erase(s, worker, now=NOW) == len(loaded) == 4
        assert all(
            (m.content, m.reply, m.media_id) == (None, None, None) for m in loaded
        )  # in the session too
        s.commit()
