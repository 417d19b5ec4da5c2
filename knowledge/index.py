"""Retrieval: a BM25 inverted index over entries' titles, paraphrases and keywords, reranked by rapidfuzz.

The index is built once at load. A question touches only the posting lists of its own terms; each list
is kept in impact order and cut at `max_postings`, so the cost of a question stays bounded however large
the knowledge base grows (static index pruning). The best `rerank_depth` entries by BM25 are then
compared with the question by rapidfuzz over their segmented titles and paraphrases.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import math
import os
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz

from knowledge.loader import Entry
from knowledge.segment import Segmenter, prune_cache
from knowledge.text import normalize

# Field weights: keywords are curated to be distinctive, titles and paraphrases are plain questions.
FIELD_WEIGHTS = {"title": 1.0, "paraphrases": 1.0, "keywords": 2.0}
FUZZY_CANDIDATES = 2


@dataclass(frozen=True)
class Match:
    """One retrieved entry with the evidence behind its rank (scores in [0, 1] except `bm25`)."""

    entry: Entry
    score: float
    bm25: float
    coverage: float
    fuzzy: float


@dataclass(frozen=True)
class Query:
    """A question prepared once: normalised text and its index terms."""

    text: str
    normalized: str
    terms: tuple[str, ...]


@dataclass(frozen=True)
class PreparedText:
    """One curated text of an entry, normalised and segmented once for every model built on it."""

    field: str
    normalized: str
    terms: tuple[str, ...]


def prepare_entries(entries: Sequence[Entry], segmenter: Segmenter) -> list[list[PreparedText]]:
    """Normalise and segment every title, paraphrase and keyword (the slow part of loading), once.

    The result is kept as JSON in the segmenter's cache directory, keyed by the texts and by the
    segmenter's fingerprint, so a restart with an unchanged knowledge base skips segmentation.
    """
    texts = [[(field, t) for field in FIELD_WEIGHTS for t in _field_texts(e, field)] for e in entries]
    key = hashlib.sha256(json.dumps([segmenter.fingerprint, texts], ensure_ascii=False).encode()).hexdigest()[
        :20
    ]
    path = segmenter.cache_dir / f"prepared-{key}.json"
    cached = _read_prepared(path)
    if cached is not None:
        return cached
    prepared = []
    for doc in texts:
        rows = []
        for field, text in doc:
            normalized = normalize(text)
            rows.append(PreparedText(field, normalized, tuple(segmenter.terms(normalized))))
        prepared.append(rows)
    try:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(
            json.dumps(
                [[[p.field, p.normalized, p.terms] for p in doc] for doc in prepared], ensure_ascii=False
            ),
            encoding="utf-8",
        )
        os.replace(tmp, path)
        prune_cache(segmenter.cache_dir, "prepared-*.json")
    except OSError:
        pass  # a read-only cache only costs the next start-up its speed
    return prepared


def _read_prepared(path) -> list[list[PreparedText]] | None:
    """The cached segmentation, or None when it is missing, unreadable or malformed (then redone)."""
    try:
        with open(path, encoding="utf-8") as f:
            return [[PreparedText(fl, n, tuple(ts)) for fl, n, ts in doc] for doc in json.load(f)]
    except (OSError, ValueError, TypeError):
        return None


def _field_texts(entry: Entry, field: str) -> Sequence[str]:
    return [entry.title] if field == "title" else getattr(entry, field)


class Index:
    """BM25 over entries plus a fuzzy rerank; `search` is all that callers need."""

    def __init__(
        self,
        entries: Sequence[Entry],
        segmenter: Segmenter,
        *,
        prepared: list[list[PreparedText]] | None = None,
        k1: float = 1.2,
        b: float = 0.75,
        max_postings: int = 1000,
        rerank_depth: int = 8,
        fuzzy_weight: float = 0.35,
    ) -> None:
        self.entries = list(entries)
        self.segmenter = segmenter
        self.k1, self.b = k1, b
        self.rerank_depth = rerank_depth
        self.fuzzy_weight = fuzzy_weight
        self._build(prepared or prepare_entries(self.entries, segmenter), max_postings)

    def _build(self, prepared: list[list[PreparedText]], max_postings: int) -> None:
        doc_tfs: list[Counter[str]] = []
        self._choices: list[list[str]] = []
        df: Counter[str] = Counter()
        for texts in prepared:
            tf: Counter[str] = Counter()
            for text in texts:
                weight = FIELD_WEIGHTS[text.field]
                for term in text.terms:
                    tf[term] += weight
            doc_tfs.append(tf)
            self._choices.append([" ".join(t.terms) for t in texts if t.field != "keywords" and t.terms])
            df.update(tf.keys())
        n = max(len(doc_tfs), 1)
        self._idf = {t: math.log(1 + (n - d + 0.5) / (d + 0.5)) for t, d in df.items()}
        # Unknown words weigh as much as the rarest known word: they are what the FAQ cannot speak to.
        self._unknown_idf = math.log(1 + (n - 0.5) / 1.5)
        lengths = [sum(tf.values()) for tf in doc_tfs]
        avg = (sum(lengths) / n) or 1.0
        lists: dict[str, list[tuple[float, int]]] = {}
        for doc, tf in enumerate(doc_tfs):
            norm = self.k1 * (1 - self.b + self.b * lengths[doc] / avg)
            for term, freq in tf.items():
                impact = self._idf[term] * freq * (self.k1 + 1) / (freq + norm)
                lists.setdefault(term, []).append((impact, doc))
        self._postings: dict[str, tuple[array, array]] = {}
        for term, plist in lists.items():
            kept = heapq.nlargest(max_postings, plist) if len(plist) > max_postings else plist
            self._postings[term] = (array("i", [d for _, d in kept]), array("d", [s for s, _ in kept]))

    @staticmethod
    def _fuzzy(joined: str, wanted: frozenset[str], choices: list[str]) -> float:
        """rapidfuzz similarity of the question to the entry's closest texts. Only the few texts sharing
        the most words with the question are compared: the fuzzy scorer is the costly part of a search.
        (Word sets are made here rather than stored: at 100,000 entries they would cost gigabytes.)"""
        if not choices:
            return 0.0
        overlap = [(len(wanted.intersection(text.split())) / (1 + text.count(" ")), text) for text in choices]
        closest = heapq.nlargest(FUZZY_CANDIDATES, overlap)
        return max(fuzz.token_set_ratio(joined, text) for _, text in closest) / 100

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
        scores: dict[int, float] = {}
        get = scores.get
        for term in unique:
            posting = self._postings.get(term)
            if posting:
                for doc, impact in zip(*posting, strict=True):
                    scores[doc] = get(doc, 0.0) + impact
        if not scores:
            return []
        # The most a single entry could score: every query term matched at saturation.
        ceiling = sum(self.idf(t) for t in unique) * (self.k1 + 1)
        top = heapq.nlargest(max(self.rerank_depth, limit), scores.items(), key=lambda kv: kv[1])
        best_bm25 = top[0][1]
        joined = " ".join(query.terms)
        wanted = frozenset(query.terms)
        results = []
        for rank, (doc, bm25) in enumerate(top):
            coverage = min(bm25 / ceiling, 1.0)
            lexical = 0.5 * coverage + 0.5 * bm25 / best_bm25
            if rank < self.rerank_depth:
                fuzzy = self._fuzzy(joined, wanted, self._choices[doc])
                score = (1 - self.fuzzy_weight) * lexical + self.fuzzy_weight * fuzzy
            else:
                # Below the rerank depth the BM25 order stands; these only fill a longer result list.
                fuzzy, score = 0.0, (1 - self.fuzzy_weight) * lexical
            results.append(Match(self.entries[doc], score, bm25, coverage, fuzzy))
        results.sort(key=lambda m: m.score, reverse=True)
        return results[:limit]
