"""The worker's type of work, on SQLite and PostgreSQL: inferred from their words, asked once with a
one-tap choice, a choice never overridden by a guess, and each consultation keeping the type of its time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.conversation import Responder
from bot.inbox import Inbound, Inbox
from knowledge.worker_types import load
from models import Consultation, Worker, make_engine, make_sessionmaker
from models.schema import upgrade

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我在美团送外卖，站长扣我钱", "rider"),
        ("饿了么骑手被罚款合法吗", "rider"),
        ("我是顺丰快递员，网点不发工资", "courier"),
        ("滴滴司机被平台封号了怎么办", "ride_hailing"),
        ("跑货拉拉的算不算劳动关系", "other_platform"),
        ("工地包工头跑了，工资找谁要", "construction"),
        ("在电子厂流水线上班不给加班费", "factory"),
        ("美团众包骑手受伤了", "rider"),
        ("老板拖欠工资三个月怎么办", None),
        ("", None),
    ],
)
def test_the_type_is_inferred_from_what_the_worker_writes(text, expected):
    assert load().infer(text) == expected


def test_a_tap_sends_the_label_and_the_label_is_the_choice():
    types = load()
    assert types.chosen("快递员") == "courier"
    assert types.chosen(" 外卖骑手 ") == "rider"
    assert types.chosen("我是快递员") is None  # a sentence is not a tap: inference handles it
    assert set(types.new_form_codes) == {"rider", "courier", "ride_hailing", "other_platform"}


@pytest.fixture
def chat(database_url, engine):
    db = make_engine(database_url)
    upgrade(db)
    sessions = make_sessionmaker(db)
    inbox = Inbox(Responder(engine))
    counter = iter(range(1, 1000))

    def say(content, *, openid="oA", at=T0, channel="oa"):
        msg = Inbound(
            channel=channel,
            openid=openid,
            msg_type="text",
            dedup_key=f"m{next(counter)}",
            created_at=at,
            content=content,
        )
        with sessions() as s:
            handled = inbox.handle(s, msg, now=at)
            s.commit()
            return handled

    yield say, sessions
    db.dispose()


def _worker(sessions, openid="oA"):
    with sessions() as s:
        return s.scalars(select(Worker).where(Worker.openid == openid)).one()


def _consultations(sessions):
    with sessions() as s:
        return [(c.id, c.worker_type) for c in s.scalars(select(Consultation).order_by(Consultation.id))]


def test_asked_once_with_one_tap_links_and_the_tap_is_recorded(chat):
    say, sessions = chat
    first = say("老板拖欠工资三个月怎么办")
    assert "您做的是哪一行" in first.reply
    # In the official account each choice is a link that sends its label when tapped.
    assert 'href="weixin://bizmsgmenu?msgmenucontent=' in first.reply and ">快递员</a>" in first.reply
    second = say("没签劳动合同能要双倍工资吗", at=T0 + timedelta(minutes=1))
    assert "您做的是哪一行" not in second.reply  # asked once only
    thanks = say("快递员", at=T0 + timedelta(minutes=2))
    assert "快递员" in thanks.reply and "已记下" in thanks.reply
    worker = _worker(sessions)
    assert (worker.worker_type, worker.worker_type_source) == ("courier", "chosen")
    assert _consultations(sessions) == [(first.consultation_id, "courier")]


def test_a_worker_who_says_their_job_is_not_asked_and_a_guess_never_overrides_a_choice(chat):
    say, sessions = chat
    first = say("我是送外卖的，平台扣我工资怎么办")
    assert "您做的是哪一行" not in first.reply
    assert _worker(sessions).worker_type == "rider"
    assert _consultations(sessions) == [(first.consultation_id, "rider")]


def test_each_consultation_keeps_the_type_of_its_time(chat):
    say, sessions = chat
    first = say("在工地干活，包工头不给工资怎么办")
    assert _worker(sessions).worker_type == "construction"
    say("结束", at=T0 + timedelta(minutes=1))
    # Months later the worker rides for a platform: the new consultation counts as a rider's.
    later = T0 + timedelta(days=90)
    second = say("现在跑外卖了，被站长罚款合法吗", at=later)
    assert second.consultation_id != first.consultation_id
    assert _consultations(sessions) == [
        (first.consultation_id, "construction"),
        (second.consultation_id, "rider"),
    ]
    # A choice stands against later guesses.
    with sessions() as s:
        worker = s.scalars(select(Worker)).one()
        worker.worker_type, worker.worker_type_source = "courier", "chosen"
        s.commit()
    say("之前在工地上干过", at=later + timedelta(minutes=1))
    assert _worker(sessions).worker_type == "courier"


def test_the_mini_program_gets_the_question_as_words_not_links(chat):
    say, _ = chat
    first = say("老板拖欠工资三个月怎么办", channel="mp", openid="oM")
    assert "外卖骑手、快递员" in first.reply and "bizmsgmenu" not in first.reply
