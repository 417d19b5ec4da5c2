"""A database session per request, closed when the request ends; views commit before they return."""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.orm import Session


def get_session() -> Session:
    """The request's session (created on first use)."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["workerlaw.sessions"]()
    return g.db_session


def init_app(app: Flask) -> None:
    """Close the request's session at teardown (rolling back anything not committed)."""

    @app.teardown_appcontext
    def _close(_exc: BaseException | None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            session.close()
