"""The Flask application factory: defaults, then environment variables, then `test_config`.

Nothing is built at import time. `create_app()` loads the answering engine once (validating the whole
knowledge base, so a broken FAQ file stops start-up with the file and entry named), opens the database
and brings its schema up to date, and registers the blueprints. Every key is in the README's table.
"""

from __future__ import annotations

import functools
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask

import handlers
import handlers.logs
import scheduler.runner
from bot.conversation import Responder
from bot.engine import Engine
from bot.inbox import Inbox
from bot.notify import ReplyTemplate
from bot.report_jobs import Deadline, reminder_days
from bot.reports import Reports
from bot.tickets import Desk, TicketPolicy
from bot.wechat import WeChatApi
from bot.wechat_push import MAX_BODY_BYTES, Keys
from models import make_engine, make_sessionmaker
from models.schema import upgrade

DEFAULTS: dict[str, Any] = {
    "SECRET_KEY": "dev",
    "DATABASE_URL": None,  # None: SQLite in the instance folder
    "KNOWLEDGE_DIR": None,  # None: the knowledge base shipped in knowledge/data
    "WECHAT_TOKEN": "",
    "WECHAT_APPID": "",
    "WECHAT_APPSECRET": "",
    "WECHAT_ENCODING_AES_KEY": "",
    "WECHAT_ENCODING_AES_KEY_PREVIOUS": "",
    "WECHAT_API_BASE_URL": "https://api.weixin.qq.com/cgi-bin/",
    "WECHAT_MP_ORIGINAL_ID": "",  # the mini-program's gh_ id: its pushes are answered through the API
    "WECHAT_MAX_CLOCK_SKEW": 300,  # seconds a push's timestamp may differ from our clock
    "WECHAT_REPLY_TEMPLATE_ID": "",  # the mini-program's subscription template telling a reply waits
    "WECHAT_REPLY_TEMPLATE_FIELDS": "thing1=title,time2=time,thing3=hint",
    "WECHAT_REPLY_TEMPLATE_PAGE": "pages/history/index",
    "WECHAT_OAUTH_APPID": "",  # the official account whose web OAuth signs workers in on the mobile page
    "WECHAT_OAUTH_APPSECRET": "",
    "WECHAT_OAUTH_AUTHORIZE_URL": "https://open.weixin.qq.com/connect/oauth2/authorize",
    "PUBLIC_BASE_URL": "",  # e.g. https://law.example.org (behind a proxy); empty: from the request
    "WECHAT_NOTICE_TEMPLATE_ID": "",  # the official account's template message for notices to staff
    "TICKET_BACKUP_MINUTES": 15,  # an unclaimed ticket alerts the backup lawyer after this long
    "TICKET_ADMIN_MINUTES": 60,  # ... and the region's union admins after this long
    "TICKET_RESPONSE_MINUTES": 30,  # what a worker is told to expect while a lawyer is on duty
    "CONSULTATION_IDLE_MINUTES": 30,
    "PASSIVE_REPLY_LIMIT": 2048,  # bytes: WeChat's limit for a passive text reply
    "REPORT_DEADLINES": "",  # reporting deadlines each year, MM-DD separated by commas, e.g. "11-10,06-30"
    "REPORT_REMINDER_DAYS": "7,3,1",  # union admins are reminded this many days before each deadline
    "WORKER_MESSAGES_PER_MINUTE": 20,  # beyond this a worker is asked to slow down (0: no limit)
    "IP_REQUESTS_PER_MINUTE": 240,  # per client address on /api, sign-in pages (0: no limit)
    "PROXY_COUNT": 0,  # reverse proxies in front (X-Forwarded-For is trusted this many hops)
    "LOG_FORMAT": "json",  # one JSON object a line; "text" for a terminal
    "RETENTION_DAYS": 365,  # message texts of consultations closed this many days ago are blanked; 0: never
}
INT_KEYS = {
    "WECHAT_MAX_CLOCK_SKEW",
    "CONSULTATION_IDLE_MINUTES",
    "PASSIVE_REPLY_LIMIT",
    "TICKET_BACKUP_MINUTES",
    "TICKET_ADMIN_MINUTES",
    "TICKET_RESPONSE_MINUTES",
    "RETENTION_DAYS",
    "WORKER_MESSAGES_PER_MINUTE",
    "IP_REQUESTS_PER_MINUTE",
    "PROXY_COUNT",
}


class ConfigurationError(RuntimeError):
    """The service refuses to start with this configuration."""


def load_config(app: Flask, test_config: dict[str, Any] | None) -> None:
    """Defaults, then named environment variables, then the test's own values."""
    app.config.from_mapping(DEFAULTS)
    if test_config is None:
        for key in DEFAULTS:
            value = os.environ.get(key)
            if value:
                app.config[key] = int(value) if key in INT_KEYS else value
    else:
        app.config.update(test_config)
    if not app.config["DATABASE_URL"]:
        app.config["DATABASE_URL"] = f"sqlite:///{Path(app.instance_path) / 'workerlaw.db'}"
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    secrets_set = app.config["WECHAT_APPSECRET"] or app.config["WECHAT_OAUTH_APPSECRET"]
    if secrets_set and app.config["SECRET_KEY"] == "dev" and not app.config.get("TESTING"):
        raise ConfigurationError("WeChat credentials are set but SECRET_KEY is still the development default")
    try:
        Deadline.parse_list(app.config["REPORT_DEADLINES"])
        reminder_days(app.config["REPORT_REMINDER_DAYS"])
    except ValueError as exc:
        raise ConfigurationError(f"REPORT_DEADLINES / REPORT_REMINDER_DAYS: {exc}") from exc
    if int(app.config["RETENTION_DAYS"]) < 0:
        raise ConfigurationError("RETENTION_DAYS must be a number of days, or 0 to keep message texts")


@functools.lru_cache(maxsize=4)
def _engine(data_dir: str | None) -> Engine:
    """The engine of a knowledge directory, loaded once per process (about 2 s): it is read-only, so
    every app of the process (tests build many) can share it."""
    return Engine.load(Path(data_dir) if data_dir else None)


def init_engine(app: Flask) -> None:
    """Load the knowledge base and index once per process; views find them in `app.extensions`."""
    data_dir = app.config.get("KNOWLEDGE_DIR")
    engine = _engine(str(Path(data_dir).resolve()) if data_dir else None)
    responder = Responder(engine)
    app.extensions["workerlaw.engine"] = engine
    try:
        reply_template = ReplyTemplate.parse(
            app.config["WECHAT_REPLY_TEMPLATE_ID"],
            app.config["WECHAT_REPLY_TEMPLATE_FIELDS"],
            app.config["WECHAT_REPLY_TEMPLATE_PAGE"],
        )
    except ValueError as exc:
        raise ConfigurationError(f"WECHAT_REPLY_TEMPLATE_FIELDS: {exc}") from exc
    app.extensions["workerlaw.reply_template"] = reply_template
    policy = TicketPolicy(
        backup_after=timedelta(minutes=int(app.config["TICKET_BACKUP_MINUTES"])),
        admin_after=timedelta(minutes=int(app.config["TICKET_ADMIN_MINUTES"])),
        response_minutes=int(app.config["TICKET_RESPONSE_MINUTES"]),
    )
    desk = Desk(
        engine.kb.replies,
        policy=policy,
        reply_template=reply_template,
        notice_template=app.config["WECHAT_NOTICE_TEMPLATE_ID"] or None,
    )
    app.extensions["workerlaw.desk"] = desk
    app.extensions["workerlaw.inbox"] = Inbox(
        responder,
        idle_timeout=timedelta(minutes=int(app.config["CONSULTATION_IDLE_MINUTES"])),
        passive_limit=int(app.config["PASSIVE_REPLY_LIMIT"]),
        desk=desk,
        per_minute=int(app.config["WORKER_MESSAGES_PER_MINUTE"]),
    )
    app.extensions["workerlaw.reports"] = Reports(
        engine.kb.worker_types, response_minutes=int(app.config["TICKET_RESPONSE_MINUTES"])
    )
    app.extensions["workerlaw.keys"] = Keys(
        token=app.config["WECHAT_TOKEN"],
        appid=app.config["WECHAT_APPID"],
        aes_key=app.config["WECHAT_ENCODING_AES_KEY"] or None,
        previous_aes_key=app.config["WECHAT_ENCODING_AES_KEY_PREVIOUS"] or None,
    )


def init_db(app: Flask) -> None:
    """Open the database and create or upgrade its schema (Alembic), so the run command needs no step."""
    engine = make_engine(app.config["DATABASE_URL"])
    upgrade(engine)
    app.extensions["workerlaw.db"] = engine
    app.extensions["workerlaw.sessions"] = make_sessionmaker(engine)


def init_wechat(app: Flask, gateway: Any) -> None:
    """The WeChat API gateway: the one passed in (tests), else the real one when credentials are set.
    Without one, replies for the mini-program wait in the outbox until WeChat is configured."""
    if gateway is None and app.config["WECHAT_APPID"] and app.config["WECHAT_APPSECRET"]:
        gateway = WeChatApi(
            app.config["WECHAT_APPID"],
            app.config["WECHAT_APPSECRET"],
            session_factory=app.extensions["workerlaw.sessions"],
            base_url=app.config["WECHAT_API_BASE_URL"],
        )
    app.extensions["workerlaw.wechat"] = gateway


def create_app(test_config: dict[str, Any] | None = None, *, wechat: Any = None) -> Flask:
    """Build the service. `wechat` is the WeChat API gateway to use (tests pass a fake)."""
    app = Flask(__name__, instance_relative_config=True)
    os.makedirs(app.instance_path, exist_ok=True)
    load_config(app, test_config)
    handlers.logs.init_app(app)
    init_engine(app)
    init_db(app)
    init_wechat(app, wechat)
    handlers.register_blueprints(app)
    scheduler.runner.register_commands(app)
    return app
