"""A worker's turns: numbered choices, 0 for a lawyer, 详细 for the full explanation."""

from __future__ import annotations

from bot.conversation import State
from bot.engine import ANSWER, CLARIFY, ESCALATE, URGENT, Decision, Option


def _options(engine, n=3):
    entries = engine.kb.faq[:n]
    return tuple(Option(e.id, e.category, e.title) for e in entries)


def test_clarify_reply_lists_numbered_titles_and_zero(responder, engine):
    options = _options(engine)
    text = responder.render(Decision(CLARIFY, options=options))
    for i, option in enumerate(options, 1):
        assert f"{i}. {option.title}" in text
    assert "0. 都不是，转值班律师" in text


def test_a_digit_picks_the_offered_entry(responder, engine):
    options = _options(engine)
    reply = responder.respond("２", State(options=options))  # full-width digit from a phone keyboard
    assert reply.decision.action == ANSWER and reply.decision.faq_id == options[1].faq_id
    assert engine.kb.by_id[options[1].faq_id].answer in reply.text
    assert reply.state.last_faq_id == options[1].faq_id and not reply.state.options


def test_zero_hands_over_to_the_lawyer(responder, engine):
    reply = responder.respond("0", State(options=_options(engine)))
    assert reply.needs_lawyer and reply.decision.reason == "asked_for_human"
    assert "律师" in reply.text and reply.state == State()


def test_a_digit_out_of_range_asks_again_and_keeps_the_choices(responder, engine):
    options = _options(engine)
    reply = responder.respond("7", State(options=options))
    assert reply.decision.action == CLARIFY and reply.state.options == options
    assert "1、2、3" in reply.text


def test_detail_after_an_answer_shows_the_long_explanation(responder, engine):
    entry = engine.kb.faq[0]
    reply = responder.respond("详细", State(last_faq_id=entry.id))
    assert entry.detail in reply.text and "依据" in reply.text


def test_detail_without_an_answer_asks_for_the_question(responder):
    reply = responder.respond("详细", State())
    assert reply.decision.action == ESCALATE and "问题" in reply.text


def test_answer_reply_cites_the_law_and_says_how_to_reach_a_lawyer(responder, engine):
    entry = next(e for e in engine.kb.faq if e.regional)
    text = responder.render(Decision(ANSWER, category=entry.category, faq_id=entry.id))
    assert entry.answer in text
    assert "依据：《" in text and "各地" in text and "回复“0”" in text


def test_urgent_reply_gives_emergency_numbers(responder):
    text = responder.render(Decision(URGENT, category="urgent"))
    assert "110" in text and "工会" in text


def test_empty_message_gets_a_kind_prompt(responder):
    reply = responder.respond("😀😀")
    assert reply.decision.reason == "empty" and "请用文字" in reply.text
