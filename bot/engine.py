"""The answering engine: decides, for one question, to answer, offer choices, escalate, or raise an alarm.

Order of checks, and why:
1. urgent signals first: a threat of self-harm or a confrontation under way needs a human whatever the
   topic (the "三及时" rule), so no retrieval score can override it;
2. an explicit request for a person (人工 / 律师) is honoured;
3. the topic model (`knowledge.classifier`) and retrieval (`knowledge.index`), both over the FAQ and
   the out-of-scope routes: a question that is likely enough to be about a non-labour topic is
   escalated, never answered or clarified;
4. a confident topic whose best retrieved entry agrees is answered; a plausible one gets up to three
   numbered choices; anything weaker goes to the lawyer. When in doubt, escalate: a wrong answer
   misinforms a worker.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from bot.errors import KnowledgeUnavailable
from knowledge import loader
from knowledge.classifier import Assessment, CategoryModel
from knowledge.index import Index, Match, prepare_entries
from knowledge.loader import OUT_OF_SCOPE, KnowledgeBase, KnowledgeError
from knowledge.segment import Segmenter

ANSWER, CLARIFY, ESCALATE, URGENT = "answer", "clarify", "escalate", "urgent"
MAX_OPTIONS = 3
# A request for a person is taken literally only in a short message; in a long one, 律师 is usually
# part of the question ("找律师要多少钱"), which the FAQ can answer.
HUMAN_REQUEST_MAX_CHARS = 14
MIN_TERMS_TO_ANSWER = 2


@dataclass(frozen=True)
class Policy:
    """Decision thresholds, calibrated on the labelled dev questions (see `bench/calibrate.py`).

    `oos_*` are bounds on the topic model's out-of-scope ratio (mean log-likelihood ratio per feature
    of the non-labour routes against labour law): at or above `oos_ratio` the question goes to the
    lawyer as not labour law; `oos_when_retrieved` is the lower bound that suffices when the best
    retrieved entry is itself a non-labour route; choices are offered only below `oos_clarify`.
    `answer_posterior` and `clarify_posterior` bound the likeliest labour category's probability,
    after the topic posterior is blended with retrieval: each category's log-probability gains
    `retrieval_weight` times the score of its best retrieved entry, so a question that closely matches
    one FAQ entry's wording pulls towards that entry's category.
    """

    answer_posterior: float = 0.6
    clarify_posterior: float = 0.2
    option_posterior: float = 0.05
    retrieval_weight: float = 4.0
    oos_ratio: float = -0.15
    oos_when_retrieved: float = -0.2
    oos_clarify: float = -0.4
    require_agreement: bool = False
    search_depth: int = 30


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

    def __init__(
        self, kb: KnowledgeBase, *, segmenter: Segmenter | None = None, policy: Policy | None = None
    ):
        self.kb = kb
        self.policy = policy or Policy()
        keywords = [k for e in kb.entries for k in e.keywords]
        self.segmenter = segmenter or Segmenter(extra_words=keywords)
        prepared = prepare_entries(kb.entries, self.segmenter)
        self.index = Index(kb.entries, self.segmenter, prepared=prepared)
        self.model = CategoryModel(kb.entries, prepared)

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
        if not query.terms:  # only greetings and filler words ("你好", "在吗"): not yet a question
            return Decision(ESCALATE, reason="empty")
        topic = self.model.assess(query.terms, query.normalized)
        found = self.index.search(query, limit=self.policy.search_depth)
        return self.route(topic, found, terms=len(set(query.terms)))

    def route(self, topic: Assessment, found: list[Match], *, terms: int = 2) -> Decision:
        """Decide from the topic model and the retrieved entries (separate so it can be calibrated)."""
        p = self.policy
        matches = tuple(found)
        posterior, oos = topic.posterior, topic.out_of_scope
        if not posterior or not matches:
            return Decision(ESCALATE, reason="no_match", matches=matches)
        retrieved_oos = not matches[0].entry.answerable
        if oos >= p.oos_ratio or (retrieved_oos and oos >= p.oos_when_retrieved):
            return Decision(ESCALATE, category=OUT_OF_SCOPE, reason="out_of_scope", matches=matches)
        best: dict[str, Match] = {}
        for m in matches:
            if m.entry.answerable:
                best.setdefault(m.entry.category, m)
        if not best:
            return Decision(ESCALATE, reason="no_match", matches=matches)
        posterior = self._blend(posterior, best)
        ranked = sorted(posterior, key=posterior.__getitem__, reverse=True)
        top, confidence = ranked[0], posterior[ranked[0]]
        first_labour = next(m for m in matches if m.entry.answerable)
        agree = first_labour.entry.category == top or not p.require_agreement
        # A one-word message ("加班费") names a topic, not a question: offer its entries instead.
        if confidence >= p.answer_posterior and agree and top in best and terms >= MIN_TERMS_TO_ANSWER:
            return Decision(
                ANSWER,
                category=top,
                faq_id=best[top].entry.id,
                score=confidence,
                reason="confident",
                matches=matches,
            )
        # Choices are offered only when the question is clearly about work: a non-labour question shown
        # labour choices is as much a miss as a wrong answer.
        if confidence >= p.clarify_posterior and oos < p.oos_clarify:
            options = self._options(posterior, ranked, best, matches)
            # No entry to offer (the likely categories retrieved nothing): a person reads it instead.
            if options:
                return Decision(
                    CLARIFY,
                    category=options[0].category,
                    options=options,
                    score=confidence,
                    reason="ambiguous",
                    matches=matches,
                )
        return Decision(ESCALATE, score=confidence, reason="low_confidence", matches=matches)

    def _blend(self, posterior: dict[str, float], best: dict[str, Match]) -> dict[str, float]:
        """The topic posterior reweighted by each category's best retrieval score (see `Policy`)."""
        weight = self.policy.retrieval_weight
        logs = {
            c: math.log(p + 1e-12) + weight * (best[c].score if c in best else 0.0)
            for c, p in posterior.items()
        }
        top = max(logs.values())
        weights = {c: math.exp(v - top) for c, v in logs.items()}
        total = sum(weights.values())
        return {c: w / total for c, w in weights.items()}

    def _options(
        self,
        posterior: dict[str, float],
        ranked: list[str],
        best: dict[str, Match],
        matches: tuple[Match, ...],
    ) -> tuple[Option, ...]:
        """Up to three choices: the best entry of each category that is still plausible, so that a wrong
        guess leaves a right option; then further entries of the likeliest category. A category with
        little probability is never offered: an unrelated choice only confuses the worker."""
        floor = self.policy.option_posterior
        picked = [best[c] for c in ranked if c in best and (c == ranked[0] or posterior[c] >= floor)]
        picked = picked[:MAX_OPTIONS]
        for m in matches:
            if len(picked) >= MAX_OPTIONS:
                break
            if m.entry.category == ranked[0] and m not in picked:
                picked.append(m)
        return tuple(Option(m.entry.id, m.entry.category, m.entry.title) for m in picked)
