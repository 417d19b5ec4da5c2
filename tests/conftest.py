"""Shared fixtures: the real engine (loaded once), databases (SQLite, and PostgreSQL when
TEST_DATABASE_URL is set), the Flask app on a temporary instance, and WeChat signing helpers."""

from __future__ import annotations

import time

import pytest

from app import create_app
from bot.conversation import Responder
from bot.engine import Engine
from models import make_sessionmaker
from models.wechat import AccessToken, OutboxMessage
from tests.scratch_db import database_kinds, empty_database_url, scratch_database
from tests.wechat_standin import RecordingGateway, WeChatStandIn

WECHAT_TABLES = [AccessToken.__table__, OutboxMessage.__table__]

WECHAT = {
    "WECHAT_TOKEN": "testtoken",
    "WECHAT_APPID": "wx0123456789abcdef",
    "WECHAT_ENCODING_AES_KEY": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
}


@pytest.fixture(scope="session")
def engine() -> Engine:
    return Engine.load()


@pytest.fixture(scope="session")
def responder(engine) -> Responder:
    return Responder(engine)


@pytest.fixture(params=database_kinds())
def database_url(request, tmp_path):
    """An empty database: a SQLite file, or a schema of its own in the PostgreSQL test database."""
    with empty_database_url(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def clock():
    """A settable clock for the webhook's timestamp window (seconds since the epoch)."""

    class Clock:
        now = time.time()

        def __call__(self) -> float:
            return self.now

    return Clock()


@pytest.fixture
def app(tmp_path, database_url, clock):
    config = {"TESTING": True, "SECRET_KEY": "test", "DATABASE_URL": database_url, "CLOCK": clock, **WECHAT}
    application = create_app(config, wechat=None)
    yield application
    application.extensions["workerlaw.db"].dispose()


@pytest.fixture
def bare_app(database_url):
    """The service with no WeChat settings at all (console, staff API, timers, imports)."""
    application = create_app({"TESTING": True, "SECRET_KEY": "t", "DATABASE_URL": database_url})
    yield application
    application.extensions["workerlaw.db"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def sessions(app):
    """A sessionmaker on the app's database, for checking what the service stored."""
    return make_sessionmaker(app.extensions["workerlaw.db"])


@pytest.fixture(params=database_kinds())
def db(request, tmp_path):
    """A scratch database holding only the WeChat tables (token, outbox), on each available kind."""
    with scratch_database(request.param, tmp_path, WECHAT_TABLES) as database:
        yield database


@pytest.fixture
def standin():
    """A real HTTP server on 127.0.0.1 standing in for WeChat's API."""
    with WeChatStandIn() as server:
        yield server


@pytest.fixture
def fake_wechat():
    """A recording fake of the WeChat gateway."""
    return RecordingGateway()
