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
            topic = engine.model.assess(query.terms, query.normalized)
            found = engine.index.search(query, limit=DEPTH)
            cache[g["id"]] = (pre, topic, found, len(set(query.terms)))
        pre, topic, matches, terms = cache[g["id"]]
        out.append((pre or engine.route(topic, matches, terms=terms)).as_record(g["id"]))
    return out


TARGETS = {"answer_precision": 0.95, "auto_resolution": 0.75, "self_service": 0.85, "oos_escalation": 0.95}


def target_margin(result: dict) -> float:
    """The smallest distance above its target of any figure (negative when a target is missed):
    the policy to keep is the one that clears every target by the widest margin."""
    return min((result[k] or 0.0) - v for k, v in TARGETS.items())


def threshold_baseline(gold, ranked, score_fn, *, floor: float = 0.95):
    """Answer the top entry when its score passes a threshold: the one giving the most correct answers
    at precision >= floor, or, when no threshold reaches the floor, the most precise one that still
    answers a tenth of the in-scope questions. Returns (threshold, result, reached_floor)."""
    reached, fallback = None, None
    for t in sorted({round(s, 3) for _, s in ranked.values()}):
        decisions = []
        for g in gold:
            entry, s = ranked[g["id"]]
            if entry is not None and entry.answerable and s >= t:
                decisions.append(Decision(ANSWER, entry.category, entry.id, score=s).as_record(g["id"]))
            else:
                decisions.append(Decision(ESCALATE, score=s).as_record(g["id"]))
        r = score_fn(gold, decisions)
        precision = r["answer_precision"] or 0.0
        if precision >= floor and (reached is None or r["auto_resolution"] > reached[1]["auto_resolution"]):
            reached = (t, r)
        if r["auto_resolution"] >= 0.1 and (
            fallback is None or precision > (fallback[1]["answer_precision"] or 0)
        ):
            fallback = (t, r)
    return (*reached, True) if reached else (*fallback, False)


def print_baseline(name: str, label: str, found) -> None:
    threshold, result, reached = found
    note = "" if reached else ", precision 0.95 not reachable"
    print(f"{name:<8} {headline(result)}  ({label} >= {threshold}{note})")


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
    print_baseline("bm25", "coverage", threshold_baseline(gold, bm25, score))

    choices, owners = [], []
    for e in engine.kb.entries:
        for text in (e.title, *e.paraphrases):
            choices.append(normalize(text))
            owners.append(e)
    fuzzy = {}
    for g in gold:
        hit = process.extractOne(normalize(g["text"]), choices, scorer=fuzz.WRatio)
        fuzzy[g["id"]] = (owners[hit[2]], hit[1] / 100) if hit else (None, 0.0)
    print_baseline("fuzzy", "WRatio", threshold_baseline(gold, fuzzy, score))

    if args.grid:
        rows = []
        grid = itertools.product(
            [0.5, 0.55, 0.6, 0.65, 0.7, 0.75],
            [0.0, 2.0, 4.0, 6.0],
            [-0.4, -0.3, -0.2, -0.1, 0.0, 0.1, 0.2],
            [-0.6, -0.4, -0.2],
            [-0.8, -0.6, -0.4, -0.2, 0.0],
            [False, True],
        )
        for a, c, o, w, oc, agree in grid:
            if c > a or w > o or oc > o:
                continue
            policy = replace(
                current,
                answer_posterior=a,
                clarify_posterior=c,
                oos_ratio=o,
                oos_when_retrieved=w,
                oos_clarify=oc,
                require_agreement=agree,
            )
            r = score(gold, engine_decisions(engine, gold, policy, cache))
            rows.append((target_margin(r), policy, r))
        rows.sort(key=lambda row: row[0], reverse=True)
        for _, policy, r in rows[:10]:
            print(
                f"{policy.answer_posterior} {policy.retrieval_weight} {policy.oos_ratio} "
                f"{policy.oos_when_retrieved} {policy.oos_clarify} {policy.require_agreement}  {headline(r)}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
