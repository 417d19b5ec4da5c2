"""Topic model: is a question about labour law at all, and if so, which category — learnt from the
curated entries only.

Two naive Bayes models over the same features of every title, paraphrase and keyword: the segmenter's
terms (synonyms applied) and character bigrams (robust to segmentation errors and typos).
- `out_of_scope`: the mean per-feature log-likelihood ratio of the out-of-scope routes against all
  labour entries pooled. Pooling matters: against seven separate labour categories, everyday words
  shared by all of them look more like "not labour" than they are.
- `posterior`: the probability of each labour category. Log-likelihoods are divided by the square
  root of the feature count before the softmax: naive Bayes multiplies correlated evidence, and without
  tempering every long question looks certain.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from knowledge.index import PreparedText
from knowledge.loader import OUT_OF_SCOPE, Entry


def bigrams(normalized: str) -> list[str]:
    """Character bigrams of the text without spaces, marked so they never collide with words."""
    compact = normalized.replace(" ", "")
    return ["#" + compact[i : i + 2] for i in range(len(compact) - 1)]


@dataclass(frozen=True)
class Assessment:
    """What the topic model makes of one question."""

    posterior: dict[str, float]  # labour categories only, summing to 1 (empty: nothing known)
    out_of_scope: float  # > 0 leans to a non-labour topic, < 0 to labour law
    features: int


class CategoryModel:
    """`assess(terms, normalized)` -> Assessment; built once from the entries."""

    def __init__(
        self, entries: Sequence[Entry], prepared: Sequence[Sequence[PreparedText]], *, alpha: float = 0.5
    ):
        """`prepared` holds each entry's texts as `knowledge.index.prepare_entries` made them."""
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        for entry, texts in zip(entries, prepared, strict=True):
            for text in texts:
                counts[entry.category].update(text.terms)
                counts[entry.category].update(bigrams(text.normalized))
        vocabulary = set().union(*counts.values()) if counts else set()
        labour = {c: n for c, n in counts.items() if c != OUT_OF_SCOPE}
        self.categories = sorted(labour)
        pooled: Counter[str] = Counter()
        for n in labour.values():
            pooled.update(n)
        outside = counts.get(OUT_OF_SCOPE, Counter())
        # Columns: non-labour, all labour pooled, then each category; log P(f|c) with additive smoothing
        # is log(n_c(f) + alpha) - log(N_c + alpha * |V|). Each feature's row (its out-of-scope ratio,
        # then its log-probability per category) is built on first use, so a question's scores are
        # column sums over its rows, with no loop per category.
        size = len(vocabulary)
        self._columns = []
        for column in (outside, pooled, *(labour[c] for c in self.categories)):
            z = math.log(sum(column.values()) + alpha * size)
            table = {f: math.log(n + alpha) - z for f, n in column.items()}
            self._columns.append((table, math.log(alpha) - z))
        self._vocabulary = vocabulary
        self._rows: dict[str, tuple[float, ...]] = {}  # filled on first use of each feature

    def _row(self, feature: str) -> tuple[float, ...]:
        row = self._rows.get(feature)
        if row is None:
            out_lp, pooled_lp, *class_lps = (table.get(feature, unseen) for table, unseen in self._columns)
            row = self._rows[feature] = (out_lp - pooled_lp, *class_lps)
        return row

    def features(self, terms: Sequence[str], normalized: str) -> list[str]:
        """The known features of a prepared question (unknown ones carry no evidence either way)."""
        return [f for f in (*terms, *bigrams(normalized)) if f in self._vocabulary]

    def assess(self, terms: Sequence[str], normalized: str) -> Assessment:
        """Score a prepared question (see the module docstring)."""
        rows = [self._row(f) for f in self.features(terms, normalized)]
        if not rows:
            return Assessment({}, 0.0, 0)
        ratio, *sums = map(sum, zip(*rows, strict=True))
        ratio /= len(rows)
        scale = 1 / math.sqrt(len(rows))
        logs = {c: scale * total for c, total in zip(self.categories, sums, strict=True)}
        top = max(logs.values())
        weights = {c: math.exp(v - top) for c, v in logs.items()}
        total = sum(weights.values())
        return Assessment({c: w / total for c, w in weights.items()}, ratio, len(rows))
