"""The answering engine: decides, for one question, to answer, offer choices, escalate, or raise an alarm.

Order of checks, and why:
1. urgent signals first: a threat of self-harm or a confrontation under way needs a human whatever the
   topic (the "三及时" rule), so no retrieval score can override it;
2. an explicit request for a person (人工 / 律师) is honoured;
3. retrieval over the FAQ and the out-of-scope routes: a question that looks more like a non-labour
   topic than like any FAQ entry is escalated, never answered or clarified;
4. a confident, unambiguous FAQ match is answered; a plausible one gets up to three numbered choices;
   anything weaker goes to the lawyer. When in doubt, escalate: a wrong answer misinforms a worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bot.errors import KnowledgeUnavailable
from knowledge import loader
from knowledge.index import Index, Match
from knowledge.loader import OUT_OF_SCOPE, KnowledgeBase, KnowledgeError
from knowledge.segment import Segmenter

ANSWER, CLARIFY, ESCALATE, URGENT = "answer", "clarify", "escalate", "urgent"
MAX_OPTIONS = 3
# A request for a person is taken literally only in a short message; in a long one, 律师 is usually
# part of the question ("找律师要多少钱"), which the FAQ can answer.
HUMAN_REQUEST_MAX_CHARS = 14


@dataclass(frozen=True)
class Policy:
    """Decision thresholds, calibrated on the labelled dev questions (see `bench/calibrate.py`)."""

    answer_score: float = 0.55
    answer_margin: float = 0.06
    clarify_score: float = 0.40
    oos_margin: float = 0.02
    search_depth: int = 12


@dataclass(frozen=True)
class Option:
    """One numbered choice offered to the worker."""

    faq_id: str
    category: str
    title: str


@dataclass(frozen=True)
class Decision:
    """What the engine decided for one question, with the evidence for logs and the lawyer's console."""

    action: str
    category: str | None = None
    faq_id: str | None = None
    options: tuple[Option, ...] = ()
    score: float = 0.0
    reason: str = ""
    urgent_kind: str | None = None
    matches: tuple[Match, ...] = field(default=(), repr=False, compare=False)

    def as_record(self, qid: str) -> dict:
        """The batch-interface line for this decision."""
        return {
            "id": qid,
            "action": self.action,
            "category": self.category,
            "faq_id": self.faq_id,
            "options": [{"faq_id": o.faq_id, "category": o.category} for o in self.options],
            "score": round(self.score, 4),
        }


class Engine:
    """Loaded once per process; `decide` is cheap and thread-safe (read-only state)."""

    def __init__(self, kb: KnowledgeBase, *, segmenter: Segmenter | None = None, policy: Policy | None = None):
        self.kb = kb
        self.policy = policy or Policy()
        keywords = [k for e in kb.entries for k in e.keywords]
        self.segmenter = segmenter or Segmenter(extra_words=keywords)
        self.index = Index(kb.entries, self.segmenter)

    @classmethod
    def load(cls, data_dir: Path | None = None, *, policy: Policy | None = None) -> Engine:
        """Load and validate the knowledge base and build the index."""
        try:
            kb = loader.load(data_dir) if data_dir else loader.load()
        except KnowledgeError as exc:
            raise KnowledgeUnavailable(str(exc)) from exc
        return cls(kb, policy=policy)

    def urgent_kind(self, normalized: str) -> str | None:
        """The kind of emergency the message signals, if any."""
        for signal in self.kb.urgent_signals:
            if signal.pattern.search(normalized) and not (signal.unless and signal.unless.search(normalized)):
                return signal.kind
        return None

    def asks_for_human(self, normalized: str) -> bool:
        """True when the worker asks for a person rather than asking a question."""
        pattern = self.kb.human_request
        if pattern is None or not pattern.search(normalized):
            return False
        compact = normalized.replace(" ", "")
        return len(compact) <= HUMAN_REQUEST_MAX_CHARS or "人工" in compact

    def decide(self, text: str) -> Decision:
        """Route one question (see the module docstring for the order of checks)."""
        query = self.index.prepare(text or "")
        if not query.normalized:
            return Decision(ESCALATE, reason="empty")
        kind = self.urgent_kind(query.normalized)
        if kind:
            return Decision(URGENT, category="urgent", score=1.0, reason="urgent", urgent_kind=kind)
        if self.asks_for_human(query.normalized):
            return Decision(ESCALATE, reason="asked_for_human")
        return self.route(self.index.search(query, limit=self.policy.search_depth))

    def route(self, found: list[Match]) -> Decision:
        """Decide from retrieval results alone (the policy's part; separate so it can be calibrated)."""
        p = self.policy
        matches = tuple(found)
        labour = [m for m in matches if m.entry.answerable]
        best_oos = next((m for m in matches if not m.entry.answerable), None)
        if not labour:
            return Decision(ESCALATE, reason="out_of_scope" if best_oos else "no_match", matches=matches)
        best = labour[0]
        if best_oos and best_oos.score + p.oos_margin >= best.score:
            return Decision(ESCALATE, category=OUT_OF_SCOPE, score=best_oos.score, reason="out_of_scope",
                            matches=matches)
        rival = next((m for m in labour[1:] if m.entry.category != best.entry.category), None)
        margin = best.score - (rival.score if rival else 0.0)
        if best.score >= p.answer_score and margin >= p.answer_margin:
            return Decision(ANSWER, category=best.entry.category, faq_id=best.entry.id, score=best.score,
                            reason="confident", matches=matches)
        if best.score >= p.clarify_score:
            options = self._options(labour)
            return Decision(CLARIFY, category=best.entry.category, options=options, score=best.score,
                            reason="ambiguous", matches=matches)
        return Decision(ESCALATE, score=best.score, reason="low_confidence", matches=matches)

    def _options(self, labour: list[Match]) -> tuple[Option, ...]:
        """Up to three choices, preferring one per category so a wrong guess leaves a right option."""
        floor = self.policy.clarify_score
        picked: list[Match] = []
        for m in labour:
            if m.score >= floor and all(m.entry.category != q.entry.category for q in picked):
                picked.append(m)
        for m in labour:
            if len(picked) >= MAX_OPTIONS:
                break
            if m.score >= floor and m not in picked:
                picked.append(m)
        picked = picked[:MAX_OPTIONS]
        return tuple(Option(m.entry.id, m.entry.category, m.entry.title) for m in picked)
