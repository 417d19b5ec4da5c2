"""Command line: `python -m bot classify IN.jsonl`, `python -m bot ask "问题"`, `python -m bot check`.

classify reads JSON lines with `id` and `text` and writes one decision line per input (the batch
interface the engine is judged by); ask prints the reply a worker would see; check validates the
knowledge base and prints what it holds.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

from bot.conversation import Responder
from bot.engine import Engine
from bot.errors import KnowledgeUnavailable


def _classify(engine: Engine, source, out) -> int:
    bad = 0
    for number, line in enumerate(source, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            qid, text = row["id"], row["text"]
            if not isinstance(text, str):
                raise TypeError("text must be a string")
        except (ValueError, KeyError, TypeError) as exc:
            print(f"line {number}: skipped, not a {{id, text}} JSON object ({exc})", file=sys.stderr)
            bad += 1
            continue
        out.write(json.dumps(engine.decide(text).as_record(qid), ensure_ascii=False) + "\n")
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description="workerlaw answering engine")
    sub = parser.add_subparsers(dest="command", required=True)
    p_classify = sub.add_parser("classify", help="decide every question of a JSONL file")
    p_classify.add_argument("input", help="JSONL with id and text per line ('-' for stdin)")
    p_ask = sub.add_parser("ask", help="print the reply a worker would see")
    p_ask.add_argument("question", nargs="+")
    sub.add_parser("check", help="validate the knowledge base")
    args = parser.parse_args(argv)
    try:
        engine = Engine.load()
    except KnowledgeUnavailable as exc:
        print(f"知识库校验失败: {exc}", file=sys.stderr)
        return 2
    if args.command == "classify":
        if args.input == "-":
            return _classify(engine, sys.stdin, sys.stdout)
        with open(args.input, encoding="utf-8") as f:
            return _classify(engine, f, sys.stdout)
    if args.command == "ask":
        print(Responder(engine).respond(" ".join(args.question)).text)
        return 0
    counts = Counter(e.category for e in engine.kb.entries)
    print(
        f"知识库校验通过: {len(engine.kb.faq)} 条 FAQ，{counts.get('out_of_scope', 0)} 个非劳动法话题，"
        f"{len(engine.kb.statutes)} 条法条"
    )
    for category, n in sorted(counts.items()):
        print(f"  {category}: {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
