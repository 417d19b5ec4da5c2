"""The application factory loads the engine once and serves the health check."""

from __future__ import annotations

import pytest

from app import create_app
from bot.errors import KnowledgeUnavailable


def test_healthz_reports_the_loaded_knowledge_base(client):
    res = client.get("/healthz")
    assert res.status_code == 200
    body = res.get_json()
    assert body["status"] == "ok" and body["faq_entries"] >= 150 and body["statute_articles"] == 779


def test_an_invalid_knowledge_base_stops_start_up_with_the_file_named(tmp_path):
    (tmp_path / "faq").mkdir()
    with pytest.raises(KnowledgeUnavailable, match="faq"):
        create_app({"TESTING": True, "KNOWLEDGE_DIR": str(tmp_path)})
