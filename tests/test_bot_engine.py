"""Every decision kind of the engine, on the real knowledge base."""

from __future__ import annotations

import pytest

from bot.engine import ANSWER, CLARIFY, ESCALATE, URGENT, Decision, Engine
from knowledge.text import normalize


@pytest.mark.parametrize(
    ("question", "category"),
    [
        ("没签劳动合同，能不能要双倍工资", "labor_contract"),
        ("加班费到底怎么算的，周末加班给多少", "overtime_leave"),
        ("工伤认定要在多长时间内申请", "work_injury"),
        ("公司一直不给我们交社保怎么办", "social_insurance"),
        ("劳动仲裁要交钱吗 去哪里申请", "dispute_process"),
    ],
)
def test_a_clear_question_is_answered_from_its_category(engine, question, category):
    decision = engine.decide(question)
    assert decision.action in (ANSWER, CLARIFY)
    if decision.action == ANSWER:
        assert decision.category == category
        assert engine.kb.by_id[decision.faq_id].category == category
    else:
        assert category in [o.category for o in decision.options]


def test_most_faq_titles_are_answered_or_offered_by_the_engine(engine):
    """Self-consistency over the whole FAQ: a title finds its own category (answer or a choice)."""
    found = 0
    for entry in engine.kb.faq:
        d = engine.decide(entry.title)
        if (d.action == ANSWER and d.category == entry.category) or (
            d.action == CLARIFY and entry.category in [o.category for o in d.options]
        ):
            found += 1
    assert found / len(engine.kb.faq) >= 0.9


def test_answers_name_an_entry_and_clarify_offers_at_most_three_distinct_entries(engine):
    for entry in engine.kb.faq[::7]:
        d = engine.decide(entry.paraphrases[-1])
        if d.action == ANSWER:
            assert d.faq_id in engine.kb.by_id and engine.kb.by_id[d.faq_id].answerable
        if d.action == CLARIFY:
            ids = [o.faq_id for o in d.options]
            assert 1 <= len(ids) <= 3 and len(set(ids)) == len(ids)


@pytest.mark.parametrize(
    "question",
    [
        "我想跟老公离婚，两个孩子归谁养",
        "朋友借了我五万块钱不还，怎么起诉他",
        "喝了酒开车被交警抓了会不会坐牢",
        "父亲去世留下的房子兄弟几个怎么分",
        "网上买的手机是假货商家不给退款",
    ],
)
def test_questions_outside_labour_law_go_to_the_lawyer(engine, question):
    decision = engine.decide(question)
    assert decision.action == ESCALATE


@pytest.mark.parametrize("message", ["转人工", "人工客服", "我要找律师", "律师在吗"])
def test_asking_for_a_person_escalates(engine, message):
    assert engine.decide(message) == Decision(ESCALATE, reason="asked_for_human")


def test_a_question_about_lawyers_is_still_a_question(engine):
    assert (
        engine.decide("请律师打劳动仲裁官司一般要花多少钱，有没有免费的法律援助").reason != "asked_for_human"
    )


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("老板再拖着不给工钱，我就从楼顶跳下去", "self_harm"),
        ("活不下去了，不想活了", "self_harm"),
        ("我要跟这个包工头同归于尽", "extreme_act"),
        ("几十个工人堵在工地门口要工资，要打起来了", "collective"),
        ("我们三十多个农民工准备去堵开发商大门", "collective"),
        ("被老板关在厂里不让出去，手机也被收了", "danger"),
        ("老板找人来打我们，救命", "danger"),
    ],
)
def test_emergencies_are_urgent_whatever_the_topic(engine, message, kind):
    decision = engine.decide(message)
    assert decision.action == URGENT and decision.urgent_kind == kind


@pytest.mark.parametrize(
    "question",
    [
        "我们三十多个人都没拿到工钱，能一起申请仲裁吗",  # lawful group claim
        "醉酒或者自杀的不能认定工伤吗",  # the legal exclusion, in the abstract
        "这两年一直打电话找老板要工资，他总说再等等",
        "跳槽到新公司，年假怎么算",
        "在工地打工，班组十个人都没签合同",
    ],
)
def test_lookalikes_of_emergencies_are_not_urgent(engine, question):
    assert engine.decide(question).action != URGENT


def test_no_faq_title_and_almost_no_paraphrase_raises_an_alarm(engine):
    """The urgent signals must stay narrow: the FAQ's own questions are ordinary labour questions,
    except the few that describe a planned confrontation or a threat, which the union wants to hear of."""
    assert not [e.id for e in engine.kb.faq if engine.urgent_kind(normalize(e.title))]
    texts = [p for e in engine.kb.faq for p in e.paraphrases]
    flagged = [p for p in texts if engine.urgent_kind(normalize(p))]
    assert len(flagged) <= 0.01 * len(texts), flagged


def test_empty_or_emoji_only_message_is_not_sent_to_a_lawyer_as_a_question(engine):
    decision = engine.decide("👍👍")
    assert decision.action == ESCALATE and decision.reason == "empty"


def test_typos_and_dialect_still_find_the_topic(engine):
    decision = engine.decide("俺在工地干活受了公伤，老板不给陪偿咋整")
    categories = [decision.category] + [o.category for o in decision.options]
    assert "work_injury" in categories


def test_decision_record_has_the_batch_fields(engine):
    record = engine.decide("没签合同的二倍工资怎么要").as_record("q1")
    assert set(record) == {"id", "action", "category", "faq_id", "options", "score"}
    assert record["id"] == "q1" and 0.0 <= record["score"] <= 1.0


def test_engine_loads_from_another_directory_with_the_same_layout(tmp_path):
    import shutil

    from knowledge.loader import DATA_DIR

    shutil.copytree(DATA_DIR, tmp_path / "data")
    engine = Engine.load(tmp_path / "data")
    assert len(engine.kb.faq) >= 150


def test_a_greeting_alone_is_not_sent_to_a_lawyer(engine):
    """Regression: "你好" used to open a consultation and go to the on-duty lawyer."""
    for greeting in ("你好", "您好，在吗", "有人吗？"):
        assert engine.decide(greeting).reason == "empty"
