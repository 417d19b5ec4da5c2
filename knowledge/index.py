"""Retrieval: a BM25 inverted index over the entries' titles, paraphrases and keywords, reranked with rapidfuzz.

The index is built once at load. A question touches only the posting lists of its own terms; each list
is kept in impact order and cut at `max_postings`, so the cost of a question is bounded however large
the knowledge base grows (static index pruning). The best `rerank_depth` entries by BM25 are then
compared with the question by rapidfuzz over their segmented paraphrases.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from knowledge.loader import Entry
from knowledge.segment import Segmenter
from knowledge.text import normalize

# Field weights: keywords are curated to be distinctive, titles and paraphrases are plain questions.
FIELD_WEIGHTS = {"title": 1.0, "paraphrases": 1.0, "keywords": 2.0}


@dataclass(frozen=True)
class Match:
    """One retrieved entry with the evidence behind its rank (all scores in [0, 1] except bm25)."""

    entry: Entry
    score: float
    bm25: float
    coverage: float
    fuzzy: float


@dataclass(frozen=True)
class Query:
    """A question prepared once for the index: normalised text and its terms."""

    text: str
    normalized: str
    terms: tuple[str, ...]


class Index:
    """BM25 over entries plus a fuzzy rerank; `search` is the only thing callers need."""

    def __init__(
        self,
        entries: Sequence[Entry],
        segmenter: Segmenter,
        *,
        k1: float = 1.2,
        b: float = 0.75,
        max_postings: int = 2000,
        rerank_depth: int = 30,
        fuzzy_weight: float = 0.35,
    ) -> None:
        self.entries = list(entries)
        self.segmenter = segmenter
        self.k1, self.b = k1, b
        self.rerank_depth = rerank_depth
        self.fuzzy_weight = fuzzy_weight
        self._build(max_postings)

    def _build(self, max_postings: int) -> None:
        doc_tfs: list[Counter[str]] = []
        self._choices: list[list[str]] = []
        df: Counter[str] = Counter()
        for entry in self.entries:
            tf: Counter[str] = Counter()
            choices = []
            for field, weight in FIELD_WEIGHTS.items():
                texts = [entry.title] if field == "title" else getattr(entry, field)
                for text in texts:
                    terms = self.segmenter.terms(normalize(text))
                    for term in terms:
                        tf[term] += weight
                    if field != "keywords":
                        choices.append(" ".join(terms))
            doc_tfs.append(tf)
            self._choices.append(choices)
            df.update(tf.keys())
        n = max(len(self.entries), 1)
        self._idf = {t: math.log(1 + (n - d + 0.5) / (d + 0.5)) for t, d in df.items()}
        # Unknown words weigh as much as the rarest known word: they are what the FAQ cannot speak to.
        self._unknown_idf = math.log(1 + (n - 0.5) / 1.5)
        lengths = [sum(tf.values()) for tf in doc_tfs]
        avg = sum(lengths) / n if lengths else 1.0
        postings: dict[str, list[tuple[float, int]]] = defaultdict(list)
        for doc, tf in enumerate(doc_tfs):
            norm = self.k1 * (1 - self.b + self.b * lengths[doc] / avg)
            for term, freq in tf.items():
                impact = self._idf[term] * freq * (self.k1 + 1) / (freq + norm)
                postings[term].append((impact, doc))
        self._postings = {
            t: [(d, s) for s, d in heapq.nlargest(max_postings, plist)] for t, plist in postings.items()
        }

    def prepare(self, question: str) -> Query:
        """Normalise and segment a question once; reuse the result for several searches."""
        normalized = normalize(question)
        return Query(question, normalized, tuple(self.segmenter.terms(normalized)))

    def idf(self, term: str) -> float:
        """Inverse document frequency of `term` (unknown terms get the highest weight)."""
        return self._idf.get(term, self._unknown_idf)

    def search(self, question: str | Query, *, limit: int = 3) -> list[Match]:
        """The best `limit` entries for `question`, best first; empty when nothing matches."""
        query = question if isinstance(question, Query) else self.prepare(question)
        unique = list(dict.fromkeys(query.terms))
        if not unique:
            return []
        scores: dict[int, float] = defaultdict(float)
        matched: dict[int, float] = defaultdict(float)
        for term in unique:
            for doc, impact in self._postings.get(term, ()):
                scores[doc] += impact
                matched[doc] += self._idf[term]
        if not scores:
            return []
        total_idf = sum(self.idf(t) for t in unique)
        top = heapq.nlargest(self.rerank_depth, scores.items(), key=lambda kv: kv[1])
        best_bm25 = top[0][1]
        joined = " ".join(query.terms)
        results = []
        for doc, bm25 in top:
            fuzzy = process.extractOne(joined, self._choices[doc], scorer=fuzz.token_set_ratio)
            fuzzy_score = fuzzy[1] / 100 if fuzzy else 0.0
            coverage = matched[doc] / total_idf
            relative = bm25 / best_bm25
            score = (1 - self.fuzzy_weight) * (
                0.5 * coverage + 0.5 * relative
            ) + self.fuzzy_weight * fuzzy_score
            results.append(Match(self.entries[doc], score, bm25, coverage, fuzzy_score))
        results.sort(key=lambda m: m.score, reverse=True)
        return results[:limit]
