"""Calibrate the engine's thresholds on the labelled dev questions, and compare with two baselines.

    python bench/calibrate.py [--eval-dir ../shared/eval] [--grid]

Prints the dev figures of the engine with its current `Policy`, of BM25 alone and of rapidfuzz alone
over the paraphrases (each baseline with its own threshold tuned the same way), and with --grid the
best policies found. Only thresholds are tuned here: the dev questions are never copied into the
knowledge base, so these figures measure how well the curated FAQ generalises.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from dataclasses import replace
from pathlib import Path

from rapidfuzz import fuzz, process

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.devset import DEFAULT_EVAL_DIR, headline, load_jsonl, scorer  # noqa: E402
from bot.engine import ANSWER, ESCALATE, Decision, Engine, Policy  # noqa: E402
from knowledge.text import normalize  # noqa: E402

DEPTH = 30


def engine_decisions(engine: Engine, gold: list[dict], policy: Policy, cache: dict) -> list[dict]:
    """Decisions of the full engine under `policy`; retrieval is computed once per question."""
    engine.policy = policy
    out = []
    for g in gold:
        if g["id"] not in cache:
            query = engine.index.prepare(g["text"])
            pre = None
            if not query.normalized:
                pre = Decision(ESCALATE, reason="empty")
            elif kind := engine.urgent_kind(query.normalized):
                pre = Decision("urgent", category="urgent", reason="urgent", urgent_kind=kind)
            elif engine.asks_for_human(query.normalized):
                pre = Decision(ESCALATE, reason="asked_for_human")
            posterior = engine.model.posterior(query.terms, query.normalized)
            cache[g["id"]] = (pre, posterior, engine.index.search(query, limit=DEPTH))
        pre, posterior, matches = cache[g["id"]]
        out.append((pre or engine.route(posterior, matches)).as_record(g["id"]))
    return out


def threshold_baseline(gold, ranked, score_fn, *, floor: float = 0.95):
    """Answer the top entry when its score passes a threshold tuned for precision >= floor."""
    best = None
    values = sorted({round(s, 3) for _, s in ranked.values()})
    for t in values:
        decisions = []
        for g in gold:
            entry, s = ranked[g["id"]]
            if entry is not None and entry.answerable and s >= t:
                decisions.append(Decision(ANSWER, entry.category, entry.id, score=s).as_record(g["id"]))
            else:
                decisions.append(Decision(ESCALATE, score=s).as_record(g["id"]))
        result = score_fn(gold, decisions)
        ok = (result["answer_precision"] or 0) >= floor
        if ok and (best is None or result["auto_resolution"] > best[1]["auto_resolution"]):
            best = (t, result)
    return best


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--eval-dir", type=Path, default=DEFAULT_EVAL_DIR)
    parser.add_argument("--grid", action="store_true", help="search the policy grid")
    parser.add_argument("--data-dir", type=Path, default=None, help="another knowledge-base directory")
    args = parser.parse_args()
    gold = load_jsonl(args.eval_dir / "dev.jsonl")
    score = scorer(args.eval_dir)
    engine = Engine.load(args.data_dir)
    cache: dict = {}
    current = engine.policy
    t0 = time.perf_counter()
    result = score(gold, engine_decisions(engine, gold, current, cache))
    print(f"engine   {headline(result)}  ({len(gold)} questions, {time.perf_counter() - t0:.2f}s)")
    print(f"         counts={result['counts']}")
    print(f"         per_category={result['per_category_auto_resolution']}")

    bm25 = {}
    for g in gold:
        ms = sorted(cache[g["id"]][2], key=lambda m: m.bm25, reverse=True)
        bm25[g["id"]] = (ms[0].entry, ms[0].coverage) if ms else (None, 0.0)
    found = threshold_baseline(gold, bm25, score)
    print(
        f"bm25     {headline(found[1])}  (coverage >= {found[0]})"
        if found
        else "bm25     no threshold reaches precision 0.95"
    )

    choices, owners = [], []
    for e in engine.kb.entries:
        for text in (e.title, *e.paraphrases):
            choices.append(normalize(text))
            owners.append(e)
    fuzzy = {}
    for g in gold:
        hit = process.extractOne(normalize(g["text"]), choices, scorer=fuzz.WRatio)
        fuzzy[g["id"]] = (owners[hit[2]], hit[1] / 100) if hit else (None, 0.0)
    found = threshold_baseline(gold, fuzzy, score)
    print(
        f"fuzzy    {headline(found[1])}  (WRatio >= {found[0]})"
        if found
        else "fuzzy    no threshold reaches precision 0.95"
    )

    if args.grid:
        rows = []
        grid = itertools.product(
            [0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
            [0.1, 0.2, 0.3],
            [0.1, 0.15, 0.2, 0.25, 0.3, 0.4],
            [0.03, 0.05, 0.08, 0.1, 0.15],
            [False, True],
        )
        for a, c, o, w, agree in grid:
            if c > a or w > o:
                continue
            policy = replace(
                current,
                answer_posterior=a,
                clarify_posterior=c,
                oos_posterior=o,
                oos_when_retrieved=w,
                require_agreement=agree,
            )
            r = score(gold, engine_decisions(engine, gold, policy, cache))
            # Rank by the targets: precision and out-of-scope escalation first, then coverage.
            value = min(r["answer_precision"] or 0, 0.97) + min(r["oos_escalation"], 0.97)
            rows.append((value + r["auto_resolution"] + 0.5 * r["self_service"], policy, r))
        rows.sort(key=lambda row: row[0], reverse=True)
        for _, policy, r in rows[:10]:
            print(
                f"{policy.answer_posterior} {policy.clarify_posterior} {policy.oos_posterior} "
                f"{policy.oos_when_retrieved} {policy.require_agreement}  {headline(r)}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
