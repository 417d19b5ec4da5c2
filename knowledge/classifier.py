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


class _Multinomial:
    """Smoothed log-probabilities of features under one class."""

    def __init__(self, counts: Counter[str], vocabulary_size: int, alpha: float):
        denominator = sum(counts.values()) + alpha * vocabulary_size
        self.unseen = math.log(alpha / denominator)
        self.table = {f: math.log((n + alpha) / denominator) for f, n in counts.items()}

    def log_prob(self, feature: str) -> float:
        return self.table.get(feature, self.unseen)


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
        self._vocabulary = set().union(*counts.values()) if counts else set()
        size = len(self._vocabulary)
        labour = {c: n for c, n in counts.items() if c != OUT_OF_SCOPE}
        self.categories = sorted(labour)
        self._classes = {c: _Multinomial(n, size, alpha) for c, n in labour.items()}
        pooled: Counter[str] = Counter()
        for n in labour.values():
            pooled.update(n)
        labour_model = _Multinomial(pooled, size, alpha)
        outside_model = _Multinomial(counts.get(OUT_OF_SCOPE, Counter()), size, alpha)
        # One row per feature: its out-of-scope log-likelihood ratio, then its log-probability under each
        # category. A question's scores are then column sums over its features' rows (no per-class loop).
        classes = [self._classes[c] for c in self.categories]
        self._rows = {
            f: (outside_model.log_prob(f) - labour_model.log_prob(f), *(m.log_prob(f) for m in classes))
            for f in self._vocabulary
        }

    def features(self, terms: Sequence[str], normalized: str) -> list[str]:
        """The known features of a prepared question (unknown ones carry no evidence either way)."""
        return [f for f in (*terms, *bigrams(normalized)) if f in self._vocabulary]

    def assess(self, terms: Sequence[str], normalized: str) -> Assessment:
        """Score a prepared question (see the module docstring)."""
        rows = [self._rows[f] for f in (*terms, *bigrams(normalized)) if f in self._rows]
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
