"""Topic model: how likely a question belongs to each category, learnt from the curated entries only.

A multinomial naive Bayes over two kinds of features of every title, paraphrase and keyword: the
segmenter's terms (synonyms applied) and character bigrams (robust to segmentation errors and typos).
The out-of-scope routes are a category like the others, so a question about divorce or a loan is pulled
towards them. Log-likelihoods are divided by the square root of the feature count before the softmax:
naive Bayes multiplies correlated evidence, and without tempering every long question looks certain.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence

from knowledge.index import PreparedText
from knowledge.loader import Entry


def bigrams(normalized: str) -> list[str]:
    """Character bigrams of the text without spaces, marked so they never collide with words."""
    compact = normalized.replace(" ", "")
    return ["#" + compact[i : i + 2] for i in range(len(compact) - 1)]


class CategoryModel:
    """`posterior(terms, normalized)` -> {category: probability}; built once from the entries."""

    def __init__(
        self, entries: Sequence[Entry], prepared: Sequence[Sequence[PreparedText]], *, alpha: float = 0.5
    ):
        """`prepared` holds each entry's texts as `knowledge.index.prepare_entries` made them."""
        self.alpha = alpha
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        for entry, texts in zip(entries, prepared, strict=True):
            for text in texts:
                counts[entry.category].update(text.terms)
                counts[entry.category].update(bigrams(text.normalized))
        self.categories = sorted(counts)
        vocabulary = set().union(*counts.values()) if counts else set()
        size = len(vocabulary)
        self._log_unseen = {}
        self._log_prob: dict[str, dict[str, float]] = {}
        for category, counter in counts.items():
            denominator = sum(counter.values()) + alpha * size
            self._log_unseen[category] = math.log(alpha / denominator)
            self._log_prob[category] = {f: math.log((n + alpha) / denominator) for f, n in counter.items()}
        self._vocabulary = vocabulary

    def features(self, terms: Sequence[str], normalized: str) -> list[str]:
        """The known features of a prepared question (unknown ones carry no evidence either way)."""
        return [f for f in (*terms, *bigrams(normalized)) if f in self._vocabulary]

    def posterior(self, terms: Sequence[str], normalized: str) -> dict[str, float]:
        """Probability of each category; empty when the question shares nothing with the entries."""
        feats = self.features(terms, normalized)
        if not feats:
            return {}
        scale = 1 / math.sqrt(len(feats))
        logs = {}
        for category in self.categories:
            table, unseen = self._log_prob[category], self._log_unseen[category]
            logs[category] = scale * sum(table.get(f, unseen) for f in feats)
        top = max(logs.values())
        weights = {c: math.exp(v - top) for c, v in logs.items()}
        total = sum(weights.values())
        return {c: w / total for c, w in weights.items()}
