"""Shared helpers for the dev-set scripts: load labelled questions and score decisions with the
official scorer (`../shared/eval/score.py`, a development-time file, never needed at run time)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_EVAL_DIR = ROOT.parent / "shared" / "eval"


def load_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def scorer(eval_dir: Path = DEFAULT_EVAL_DIR):
    """The `score(gold, decisions)` function of the official scoring script."""
    spec = importlib.util.spec_from_file_location("eval_score", eval_dir / "score.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.score


def headline(result: dict) -> str:
    keys = (
        "answer_precision",
        "auto_resolution",
        "self_service",
        "oos_escalation",
        "urgent_recall",
        "false_urgent_rate",
    )
    return "  ".join(f"{k}={result[k]}" for k in keys)
