"""`GET /healthz`: liveness plus what the loaded knowledge base holds (for deploy checks)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """200 with the knowledge base's size; the app would not have started without a valid one."""
    engine = current_app.extensions["workerlaw.engine"]
    return jsonify(status="ok", faq_entries=len(engine.kb.faq), statute_articles=len(engine.kb.statutes))
