"""Retrieval quality without the dev set: hold out each FAQ entry's last paraphrases, index the rest,
and count how often the held-out paraphrase finds its own entry first (top-1) or among three (top-3).

    python bench/retrieval_holdout.py [--held 3]

The held-out paraphrases are the long, worker-written stories added last to every entry, so this
measures how retrieval generalises to unseen wording; it also compares BM25 alone with the rerank.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from knowledge.index import Index, prepare_entries  # noqa: E402
from knowledge.loader import load  # noqa: E402
from knowledge.segment import Segmenter  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--held", type=int, default=3, help="paraphrases held out per entry")
    args = parser.parse_args()
    kb = load()
    segmenter = Segmenter(extra_words=[k for e in kb.entries for k in e.keywords])
    train = [replace(e, paraphrases=e.paraphrases[: -args.held]) if e.answerable else e for e in kb.entries]
    tests = [(e.id, e.category, p) for e in kb.entries if e.answerable for p in e.paraphrases[-args.held :]]
    prepared = prepare_entries(train, segmenter)
    for label, weight in (
        ("bm25 only", 0.0),
        ("bm25 + rapidfuzz rerank", Index.__init__.__kwdefaults__["fuzzy_weight"]),
    ):
        index = Index(train, segmenter, prepared=prepared, fuzzy_weight=weight)
        top1 = top3 = category1 = 0
        for eid, category, text in tests:
            found = index.search(text, limit=3)
            ids = [m.entry.id for m in found]
            top1 += bool(ids) and ids[0] == eid
            top3 += eid in ids
            category1 += bool(found) and found[0].entry.category == category
        n = len(tests)
        print(
            f"{label:<26} questions={n}  entry_top1={top1 / n:.3f}  entry_top3={top3 / n:.3f}  "
            f"category_top1={category1 / n:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
