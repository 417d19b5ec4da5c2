"""Shared fixtures: the real engine (loaded once per session) and a Flask app on a temporary instance."""

from __future__ import annotations

import pytest

from app import create_app
from bot.conversation import Responder
from bot.engine import Engine


@pytest.fixture(scope="session")
def engine() -> Engine:
    return Engine.load()


@pytest.fixture(scope="session")
def responder(engine) -> Responder:
    return Responder(engine)


@pytest.fixture
def app(tmp_path):
    return create_app({"TESTING": True, "SECRET_KEY": "test"}, wechat=None)


@pytest.fixture
def client(app):
    return app.test_client()
