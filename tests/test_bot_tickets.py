"""The lawyers' domain on SQLite and PostgreSQL: the duty roster, routing up the union chain, escalation
with the intake questions, the worker's messages going to the lawyer, claiming once, replies inside
WeChat's 48 hours and 5-message budget (joined, held, released), closing with a rating, legal aid."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import func, select

from bot import notify, roster
from bot.conversation import Responder
from bot.inbox import Inbound, Inbox
from bot.staff import LoginRefused, authenticate, create_user
from bot.tickets import Desk, TicketError
from models import (
    Consultation,
    Holiday,
    Lawyer,
    LawyerRegion,
    Message,
    Notice,
    OutboxMessage,
    Region,
    Shift,
    Ticket,
    WeeklyShift,
    Worker,
    make_engine,
    make_sessionmaker,
)
from models.schema import upgrade

# Monday 2026-11-23, 10:00 in China (02:00 UTC).
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


@pytest.fixture
def world(database_url, engine):
    """A city union, a district, two townships; lawyers: Wang (township A, weekdays 9-17 China time),
    Li (the district, backup), Zhao (township B); users for each and for the district's union admin."""
    db = make_engine(database_url)
    upgrade(db)
    sessions = make_sessionmaker(db)
    responder = Responder(engine)
    desk = Desk(engine.kb.replies)
    inbox = Inbox(responder, desk=desk)
    with sessions() as s:
        city = Region(code="city", name="市总工会", level="city")
        s.add(city)
        s.flush()
        district = Region(code="d1", name="一区总工会", level="district", parent_id=city.id)
        s.add(district)
        s.flush()
        town_a = Region(code="ta", name="甲街道工会", level="township", parent_id=district.id)
        town_b = Region(code="tb", name="乙镇工会", level="township", parent_id=district.id)
        s.add_all([town_a, town_b])
        s.flush()
        wang, li, zhao = Lawyer(name="王律师"), Lawyer(name="李律师"), Lawyer(name="赵律师")
        s.add_all([wang, li, zhao])
        s.flush()
        s.add_all(
            [
                LawyerRegion(lawyer_id=wang.id, region_id=town_a.id),
                LawyerRegion(lawyer_id=li.id, region_id=district.id),
                LawyerRegion(lawyer_id=zhao.id, region_id=town_b.id),
            ]
        )
        for weekday in range(5):
            s.add(
                WeeklyShift(
                    region_id=town_a.id,
                    lawyer_id=wang.id,
                    weekday=weekday,
                    start_time=time(9),
                    end_time=time(17),
                )
            )
        users = {
            "wang": create_user(
                s, username="wang", password="wang-password", role="lawyer", lawyer_id=wang.id
            ),
            "li": create_user(s, username="li", password="li-password-1", role="lawyer", lawyer_id=li.id),
            "zhao": create_user(
                s, username="zhao", password="zhao-password", role="lawyer", lawyer_id=zhao.id
            ),
            "admin_d1": create_user(
                s, username="admin_d1", password="admin-password", role="union_admin", region_id=district.id
            ),
        }
        s.commit()
        ids = {
            "city": city.id,
            "d1": district.id,
            "ta": town_a.id,
            "tb": town_b.id,
            "wang": wang.id,
            "li": li.id,
            "zhao": zhao.id,
        }
        user_ids = {k: u.id for k, u in users.items()}
    yield {"sessions": sessions, "inbox": inbox, "desk": desk, "ids": ids, "users": user_ids}
    db.dispose()


def say(world, text, *, openid="oW", at=T0, n=[0], region="ta"):  # noqa: B006 - a message counter
    n[0] += 1
    with world["sessions"]() as s:
        worker = s.scalars(select(Worker).where(Worker.openid == openid)).one_or_none()
        if worker is None:
            s.add(Worker(channel="oa", openid=openid, region_code=region, first_contact_at=at))
            s.flush()
        msg = Inbound(
            channel="oa", openid=openid, msg_type="text", dedup_key=f"m{n[0]}", created_at=at, content=text
        )
        handled = world["inbox"].handle(s, msg, now=at)
        s.commit()
        return handled


def user(world, s, name):
    from models import StaffUser

    return s.get(StaffUser, world["users"][name])


def the_ticket(s):
    return s.scalars(select(Ticket)).one()


def test_weekly_patterns_holidays_and_the_next_shift(world):
    ids = world["ids"]
    with world["sessions"]() as s:
        assert [d.lawyer_id for d in roster.on_duty(s, ids["ta"], T0)] == [ids["wang"]]
        evening = T0 + timedelta(hours=10)  # 20:00 China time
        assert roster.on_duty(s, ids["ta"], evening) == []
        assert roster.next_start(s, ids["ta"], evening) == datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
        s.add(Holiday(day=date(2026, 11, 24), name="调休"))
        s.flush()
        # Tuesday is off: the next shift is Wednesday 09:00 China time.
        assert roster.next_start(s, ids["ta"], evening) == datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
        # A dated shift applies on a holiday.
        s.add(
            Shift(
                region_id=ids["ta"],
                lawyer_id=ids["li"],
                role="primary",
                starts_at=evening,
                ends_at=evening + timedelta(hours=2),
            )
        )
        s.flush()
        assert [d.lawyer_id for d in roster.on_duty(s, ids["ta"], evening + timedelta(minutes=5))] == [
            ids["li"]
        ]


def test_routing_climbs_to_the_union_above_when_nobody_is_on_duty(world):
    ids = world["ids"]
    with world["sessions"]() as s:
        routed = roster.route(s, ids["tb"], T0)  # township B has no roster
        assert routed.region_id == ids["tb"] and routed.on_duty == () and routed.next_start is None
        s.add(
            Shift(
                region_id=ids["d1"],
                lawyer_id=ids["li"],
                starts_at=T0 - timedelta(hours=1),
                ends_at=T0 + timedelta(hours=1),
            )
        )
        s.flush()
        routed = roster.route(s, ids["tb"], T0)
        assert routed.region_id == ids["d1"] and [d.lawyer_id for d in routed.on_duty] == [ids["li"]]


def test_escalation_asks_the_intake_questions_then_messages_go_to_the_lawyer(world, engine):
    first = say(world, "我想找律师")
    assert (
        first.needs_lawyer
        and "分钟内回复" in first.reply
        and "12348" in first.reply
        and "12333" in first.reply
    )
    questions = engine.kb.replies["intake_questions"]
    assert questions[0]["ask"] in first.reply
    answers = ["城东花园工地", "木工", "两万三", "跳过", "有工友作证和微信聊天记录"]
    replies = [say(world, a, at=T0 + timedelta(minutes=i + 1)).reply for i, a in enumerate(answers)]
    assert replies[:-1] == [q["ask"] for q in questions[1:]]
    assert replies[-1] == engine.kb.replies["intake_done"]
    later = say(world, "老板今天又说下个月再给", at=T0 + timedelta(minutes=10))
    assert later.reply is None  # for the lawyer, not the bot
    with world["sessions"]() as s:
        ticket = the_ticket(s)
        assert ticket.region_id == world["ids"]["ta"] and ticket.status == "open"
        assert ticket.case_card["employer"] == "城东花园工地" and ticket.case_card["since"] is None
        assert (
            s.scalar(select(func.count()).select_from(Notice).where(Notice.lawyer_id == world["ids"]["wang"]))
            == 1
        )
        # The consultation waits for its lawyer: an hour of silence does not close it.
        world["inbox"].consultations.close_idle(s, now=T0 + timedelta(hours=2))
        assert s.scalars(select(Consultation)).one().closed_at is None
        assert s.scalar(select(func.count()).select_from(Consultation)) == 1


def test_off_duty_the_worker_is_told_when_the_next_shift_starts(world):
    night = T0 + timedelta(hours=12)  # 22:00 China time
    handled = say(world, "我想找律师", at=night)
    assert "11月24日 09:00" in handled.reply


def test_two_lawyers_claim_at_once_and_one_wins(world):
    say(world, "我想找律师")
    with world["sessions"]() as s:
        s.add(LawyerRegion(lawyer_id=world["ids"]["zhao"], region_id=world["ids"]["ta"]))
        s.commit()
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def claim(name):
        with world["sessions"]() as s:
            barrier.wait()
            try:
                world["desk"].claim(s, user(world, s, name), the_ticket(s), now=T0)
                s.commit()
                outcomes.append("won")
            except TicketError:
                s.rollback()
                outcomes.append("lost")

    threads = [threading.Thread(target=claim, args=(n,)) for n in ("wang", "zhao")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["lost", "won"]


def test_a_lawyer_of_another_region_cannot_see_the_ticket_but_the_district_admin_can(world):
    say(world, "我想找律师")
    desk = world["desk"]
    with world["sessions"]() as s:
        ticket = the_ticket(s)
        with pytest.raises(TicketError) as err:
            desk.get(s, user(world, s, "zhao"), ticket.id)
        assert err.value.status == 404
        assert desk.queue(s, user(world, s, "zhao")) == []
        assert [t.id for t in desk.queue(s, user(world, s, "admin_d1"))] == [ticket.id]
        assert [t.id for t in desk.queue(s, user(world, s, "li"))] == [
            ticket.id
        ]  # district covers its townships


def test_replies_join_keep_to_the_budget_and_wait_outside_the_window(world, engine):
    say(world, "我想找律师")
    desk = world["desk"]
    with world["sessions"]() as s:
        wang, ticket = user(world, s, "wang"), the_ticket(s)
        desk.claim(s, wang, ticket, now=T0)
        first = desk.reply(s, wang, ticket, "您好，我是王律师。", now=T0 + timedelta(seconds=1))
        second = desk.reply(s, wang, ticket, "请问老板是谁？", now=T0 + timedelta(seconds=5))
        s.commit()
        assert first.via == second.via == notify.CUSTOMER_SERVICE
        [row] = s.scalars(select(OutboxMessage)).all()
        assert row.content == "您好，我是王律师。\n请问老板是谁？"  # two lines, one message
        worker = s.get(Worker, ticket.worker_id)
        assert desk.budget(s, worker, now=T0 + timedelta(minutes=1)).remaining == 4
        # Spend the budget: each reply a minute apart leaves as its own message.
        for i in range(4):
            desk.reply(s, wang, ticket, f"第{i + 2}条", now=T0 + timedelta(minutes=2 + i))
        s.commit()
        contents = s.scalars(select(OutboxMessage.content).order_by(OutboxMessage.id)).all()
        assert len(contents) == 5 and engine.kb.replies["budget_low"] in contents[3]
        assert desk.budget(s, worker, now=T0 + timedelta(minutes=10)).remaining == 0
        held = desk.reply(s, wang, ticket, "这一条要等您回复后才能发出", now=T0 + timedelta(minutes=10))
        s.commit()
        assert held.via == notify.HISTORY
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 5
    # The worker writes again: the window reopens and the held reply leaves.
    say(world, "好的我在", at=T0 + timedelta(minutes=30))
    with world["sessions"]() as s:
        last = s.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc())).first()
        assert last.content == "这一条要等您回复后才能发出"
        assert (
            s.scalars(select(Message).where(Message.content == last.content)).one().delivery
            == notify.CUSTOMER_SERVICE
        )


def test_closing_asks_for_a_rating_and_the_digit_is_recorded(world, engine):
    say(world, "我想找律师")
    desk = world["desk"]
    with world["sessions"]() as s:
        wang, ticket = user(world, s, "wang"), the_ticket(s)
        with pytest.raises(TicketError):
            desk.close(s, wang, ticket, outcome="answered", category="wage_arrears", now=T0)  # claim first
        desk.claim(s, wang, ticket, now=T0)
        desk.close(
            s, wang, ticket, outcome="arbitration", category="wage_arrears", now=T0 + timedelta(minutes=5)
        )
        s.commit()
        consultation = s.scalars(select(Consultation)).one()
        assert consultation.closed_at is not None and consultation.resolution == "referred"
    thanks = say(world, "5", at=T0 + timedelta(minutes=6))
    assert thanks.reply == engine.kb.replies["rate_thanks"]
    with world["sessions"]() as s:
        assert s.scalars(select(Consultation)).one().rating == 5
    # The next question is the bot's again, in a new consultation.
    assert say(world, "工伤认定要多久", at=T0 + timedelta(minutes=8)).reply


def test_legal_aid_is_never_given_to_the_applicants_own_township_lawyer(world):
    say(world, "我想找律师")
    desk = world["desk"]
    with world["sessions"]() as s:
        wang, ticket = user(world, s, "wang"), the_ticket(s)
        desk.claim(s, wang, ticket, now=T0)
        referral = desk.refer(s, wang, ticket, reason="欠薪金额大，申请法律援助", now=T0)
        assert referral.district_id == world["ids"]["d1"]
        admin = user(world, s, "admin_d1")
        with pytest.raises(TicketError, match="不能承办"):
            desk.review_referral(s, admin, referral, approve=True, lawyer_id=world["ids"]["wang"], now=T0)
        with pytest.raises(TicketError):
            desk.review_referral(s, wang, referral, approve=True, lawyer_id=world["ids"]["zhao"], now=T0)
        desk.review_referral(s, admin, referral, approve=True, lawyer_id=world["ids"]["zhao"], now=T0)
        assert referral.status == "approved" and referral.assigned_lawyer_id == world["ids"]["zhao"]


def test_urgent_tickets_go_first_and_alert_the_union_admins(world):
    say(world, "我想找律师", openid="oCalm")
    say(
        world,
        "工友们说明天要去堵老板的门，还说要从楼上跳下去",
        openid="oUrgent",
        at=T0 + timedelta(minutes=1),
    )
    with world["sessions"]() as s:
        queue = world["desk"].queue(s, user(world, s, "admin_d1"))
        assert [t.urgent for t in queue] == [True, False]
        assert (
            s.scalar(
                select(func.count()).select_from(Notice).where(Notice.staff_id == world["users"]["admin_d1"])
            )
            == 1
        )


def test_staff_sign_in_locks_after_five_failures(world):
    with world["sessions"]() as s:
        for _ in range(4):
            with pytest.raises(LoginRefused) as err:
                authenticate(s, "wang", "wrong", now=T0)
            assert not err.value.locked
        with pytest.raises(LoginRefused) as err:
            authenticate(s, "wang", "wrong", now=T0)
        assert err.value.locked
        with pytest.raises(LoginRefused):
            authenticate(s, "wang", "wang-password", now=T0 + timedelta(minutes=5))  # locked even when right
        assert authenticate(s, "wang", "wang-password", now=T0 + timedelta(minutes=16)).username == "wang"
        with pytest.raises(ValueError):
            create_user(s, username="short", password="123", role="admin")
