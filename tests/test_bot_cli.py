"""`python -m bot classify|ask|check`: the batch interface the engine is judged by."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ACTIONS = {"answer", "clarify", "escalate", "urgent"}


def run(*args, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_classify_writes_one_decision_per_input_line(tmp_path):
    questions = [
        {"id": "a", "text": "没签劳动合同能要二倍工资吗"},
        {"id": "b", "text": "我想和老公离婚，孩子归谁"},
        {"id": "c", "text": "再不给工钱我就从楼顶跳下去"},
        {"id": "d", "text": ""},
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps(q, ensure_ascii=False) for q in questions) + "\n", encoding="utf-8")
    res = run("classify", str(path))
    assert res.returncode == 0, res.stderr
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    assert [d["id"] for d in lines] == ["a", "b", "c", "d"]
    for d in lines:
        assert set(d) == {"id", "action", "category", "faq_id", "options", "score"}
        assert d["action"] in ACTIONS
    by_id = {d["id"]: d for d in lines}
    assert by_id["b"]["action"] == "escalate"
    assert by_id["c"]["action"] == "urgent"
    assert by_id["d"]["action"] == "escalate"


def test_classify_skips_malformed_lines_and_says_so():
    res = run("classify", "-", stdin='{"id": "x", "text": "工伤怎么认定"}\nnot json\n{"id": "y"}\n')
    assert res.returncode == 1
    assert len(res.stdout.splitlines()) == 1
    assert "line 2" in res.stderr and "line 3" in res.stderr


def test_ask_prints_the_workers_reply():
    res = run("ask", "没签劳动合同能要二倍工资吗")
    assert res.returncode == 0 and res.stdout.strip()
    assert "律师" in res.stdout


def test_check_validates_the_knowledge_base():
    res = run("check")
    assert res.returncode == 0 and "知识库校验通过" in res.stdout
