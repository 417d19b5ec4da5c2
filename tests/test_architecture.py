"""Imports flow one way (handlers | scheduler -> bot -> knowledge), and knowledge stays pure."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_hold():
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    res = subprocess.run([lint, "--config", "pyproject.toml"], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_code_passes_ruff():
    res = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_importing_the_packages_does_no_work():
    """Nothing is loaded at import time: importing app and every package stays fast and silent."""
    code = "import app, bot.engine, knowledge.index, handlers, scheduler; import sys; print('jieba.dt' in dir(sys.modules.get('jieba')) and sys.modules['jieba'].dt.initialized)"
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False"
