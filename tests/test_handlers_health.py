"""The application factory loads the engine once and serves the health check."""

from __future__ import annotations

import re
import shutil

import pytest

from app import create_app
from bot.errors import KnowledgeUnavailable
from knowledge.loader import DATA_DIR


def test_healthz_reports_the_loaded_knowledge_base(client):
    res = client.get("/healthz")
    assert res.status_code == 200
    body = res.get_json()
    assert body["status"] == "ok" and body["faq_entries"] >= 150 and body["statute_articles"] == 779


def test_an_invalid_knowledge_base_stops_start_up_with_the_file_and_entry_named(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    path = data / "faq" / "overtime_leave.yaml"
    text = path.read_text(encoding="utf-8")
    first_id = re.search(r"- id: (\S+)", text).group(1)
    path.write_text(re.sub(r"article: \d+", "article: 9999", text, count=1), encoding="utf-8")
    with pytest.raises(KnowledgeUnavailable, match=rf"overtime_leave.yaml: {first_id}: .*不在法规库中"):
        create_app({"TESTING": True, "KNOWLEDGE_DIR": str(data)})
