"""SQLAlchemy models, one module per aggregate; importing this package registers every table."""

from __future__ import annotations

from models.consultation import Consultation
from models.db import Model, as_utc, make_engine, make_sessionmaker, utcnow
from models.message import INBOUND, OUTBOUND, Message
from models.wechat import AccessToken, OutboxMessage, OutboxStatus
from models.worker import MINI_PROGRAM, OFFICIAL_ACCOUNT, Worker

__all__ = [
    "INBOUND",
    "MINI_PROGRAM",
    "OFFICIAL_ACCOUNT",
    "OUTBOUND",
    "AccessToken",
    "OutboxMessage",
    "OutboxStatus",
    "Consultation",
    "Message",
    "Model",
    "Worker",
    "as_utc",
    "make_engine",
    "make_sessionmaker",
    "utcnow",
]
