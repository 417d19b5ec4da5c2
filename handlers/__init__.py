"""HTTP boundary: one blueprint per feature; views stay thin and call into `bot`."""

from __future__ import annotations

from flask import Flask

from handlers import health


def register_blueprints(app: Flask) -> None:
    """Attach every blueprint to `app`."""
    app.register_blueprint(health.bp)
