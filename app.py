"""The Flask application factory: defaults, then environment variables, then `test_config`.

Nothing is built at import time. `create_app()` loads the answering engine once (validating the whole
knowledge base, so a broken FAQ file stops start-up with the file and entry named) and registers the
blueprints. Configuration keys are listed in the README.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask

import handlers
from bot.engine import Engine

DEFAULTS: dict[str, Any] = {
    "SECRET_KEY": "dev",
    "KNOWLEDGE_DIR": None,  # None: the knowledge base shipped in knowledge/data
}
ENV_KEYS = ("SECRET_KEY", "KNOWLEDGE_DIR")


def load_config(app: Flask, test_config: dict[str, Any] | None) -> None:
    """Defaults, then named environment variables, then the test's own values."""
    app.config.from_mapping(DEFAULTS)
    if test_config is None:
        app.config.update({k: os.environ[k] for k in ENV_KEYS if os.environ.get(k)})
    else:
        app.config.update(test_config)


def init_engine(app: Flask) -> None:
    """Load the knowledge base and index once per process; views find it in `app.extensions`."""
    from pathlib import Path

    data_dir = app.config.get("KNOWLEDGE_DIR")
    app.extensions["workerlaw.engine"] = Engine.load(Path(data_dir) if data_dir else None)


def create_app(test_config: dict[str, Any] | None = None, *, wechat: Any = None) -> Flask:
    """Build the service. `wechat` is the WeChat gateway to use (tests pass a fake)."""
    app = Flask(__name__, instance_relative_config=True)
    load_config(app, test_config)
    os.makedirs(app.instance_path, exist_ok=True)
    app.extensions["workerlaw.wechat"] = wechat
    init_engine(app)
    handlers.register_blueprints(app)
    return app
