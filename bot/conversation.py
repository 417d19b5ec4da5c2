"""A worker's turn in a conversation: numbered choices, "详细", "0" for a lawyer, or a new question.

The state is a small value the caller keeps between messages (the webhook stores it with the worker);
`respond` never mutates it and returns the next one. Reply texts come from `knowledge/data/replies.yaml`.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.engine import ANSWER, CLARIFY, ESCALATE, URGENT, Decision, Engine, Option
from knowledge.loader import Entry
from knowledge.text import normalize

MAX_TOPIC_OPTIONS = 3
DETAIL_WORDS = frozenset({"详细", "详情", "细说", "全文", "详细点", "详细解释", "展开", "更多"})


@dataclass(frozen=True)
class State:
    """What the bot remembers between a worker's messages."""

    options: tuple[Option, ...] = ()
    last_faq_id: str | None = None


@dataclass(frozen=True)
class Reply:
    """The text the worker sees, the decision behind it, and the state for the next message."""

    text: str
    decision: Decision
    state: State

    @property
    def needs_lawyer(self) -> bool:
        """True when the conversation must be handed to the on-duty lawyer."""
        return self.decision.action in (ESCALATE, URGENT) and self.decision.reason != "empty"


class Responder:
    """Renders decisions as replies and applies a worker's choices; one per engine."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.templates = engine.kb.replies

    def citations(self, entry: Entry) -> str:
        """The entry's citations as a worker reads them."""
        return self.engine.kb.statutes.labels(entry.citations)

    def render(self, decision: Decision) -> str:
        """The text a worker sees for `decision`."""
        t = self.templates
        if decision.action == ANSWER and decision.faq_id:
            entry = self.engine.kb.by_id[decision.faq_id]
            regional = t["regional_note"] if entry.regional else ""
            return t["answer"].format(answer=entry.answer, citations=self.citations(entry), regional=regional)
        if decision.action == CLARIFY:
            lines = [
                t["clarify_option"].format(number=i, title=o.title) for i, o in enumerate(decision.options, 1)
            ]
            return t["clarify"].format(options="\n".join(lines))
        if decision.action == URGENT:
            return t["urgent"]
        if decision.reason == "empty":
            return t["empty"]
        if decision.reason == "asked_for_human":
            return t["escalate_human"]
        if decision.reason == "out_of_scope":
            return t["escalate_out_of_scope"]
        return t["escalate"]

    def detail(self, entry: Entry) -> str:
        """The long explanation of an entry, for a worker who replied "详细"."""
        return self.templates["detail"].format(
            title=entry.title, detail=entry.detail, citations=self.citations(entry)
        )

    def decide(self, text: str) -> Decision | None:
        """What the engine decides about `text` when `respond` would ask it (None for a choice number or
        a request for details, which depend on the conversation). It depends on the text alone, so it
        can be made before the caller takes any lock."""
        compact = normalize(text).replace(" ", "")
        if (compact.isdigit() and len(compact) <= 2) or compact in DETAIL_WORDS:
            return None
        return self.engine.decide(text)

    def respond(self, text: str, state: State | None = None, *, decided: Decision | None = None) -> Reply:
        """Handle one message given the conversation `state`; `decided`: `decide(text)`, if made already."""
        state = state or State()
        compact = normalize(text).replace(" ", "")
        if compact.isdigit() and len(compact) <= 2:
            return self._choice(int(compact), state)
        if compact in DETAIL_WORDS:
            if state.last_faq_id and state.last_faq_id in self.engine.kb.by_id:
                entry = self.engine.kb.by_id[state.last_faq_id]
                decision = Decision(
                    ANSWER, category=entry.category, faq_id=entry.id, score=1.0, reason="detail"
                )
                return Reply(self.detail(entry), decision, state)
            return Reply(self.templates["no_detail"], Decision(ESCALATE, reason="empty"), state)
        decision = decided if decided is not None else self.engine.decide(text)
        return self._reply(decision)

    def topic(self, category: str) -> Reply:
        """The first entries of a category as numbered choices (the welcome message's topic menu)."""
        entries = [e for e in self.engine.kb.faq if e.category == category][:MAX_TOPIC_OPTIONS]
        options = tuple(Option(e.id, e.category, e.title) for e in entries)
        decision = Decision(CLARIFY, category=category, options=options, reason="menu")
        return self._reply(decision)

    def _choice(self, number: int, state: State) -> Reply:
        if number == 0:
            decision = Decision(ESCALATE, reason="asked_for_human")
            return Reply(self.render(decision), decision, State())
        if not state.options:
            # A bare number with no choices on the table is most likely a question cut short.
            return self._reply(self.engine.decide(str(number)))
        if number > len(state.options):
            numbers = "、".join(str(i) for i in range(1, len(state.options) + 1))
            decision = Decision(CLARIFY, options=state.options, reason="bad_choice")
            return Reply(self.templates["bad_choice"].format(numbers=numbers), decision, state)
        option = state.options[number - 1]
        decision = Decision(
            ANSWER, category=option.category, faq_id=option.faq_id, score=1.0, reason="chosen"
        )
        return self._reply(decision)

    def _reply(self, decision: Decision) -> Reply:
        if decision.action == CLARIFY:
            next_state = State(options=decision.options)
        elif decision.action == ANSWER:
            next_state = State(last_faq_id=decision.faq_id)
        else:
            next_state = State()
        return Reply(self.render(decision), decision, next_state)
