"""SQLAlchemy models, one module per aggregate; importing this package registers every table."""

from __future__ import annotations

from models.activity import ActivityChange, ActivityRecord
from models.consultation import Consultation
from models.db import Model, as_utc, make_engine, make_sessionmaker, utcnow
from models.message import BOT, INBOUND, LAWYER, OUTBOUND, Message
from models.org import Holiday, Lawyer, LawyerRegion, Region, Shift, StaffUser, Station, WeeklyShift
from models.report import ReportCount, ReportDispatch, ReportSnapshot
from models.scheduler import SchedulerLease
from models.ticket import Notice, Referral, Ticket, TicketEvent
from models.wechat import AccessToken, OutboxMessage, OutboxStatus, Subscription
from models.worker import MINI_PROGRAM, OFFICIAL_ACCOUNT, WEB, LoginCode, Worker

__all__ = [
    "ActivityChange",
    "ActivityRecord",
    "ReportCount",
    "ReportDispatch",
    "ReportSnapshot",
    "Holiday",
    "Lawyer",
    "LawyerRegion",
    "Notice",
    "Referral",
    "Region",
    "SchedulerLease",
    "Shift",
    "StaffUser",
    "Station",
    "Ticket",
    "TicketEvent",
    "WeeklyShift",
    "BOT",
    "LAWYER",
    "INBOUND",
    "MINI_PROGRAM",
    "OFFICIAL_ACCOUNT",
    "OUTBOUND",
    "WEB",
    "AccessToken",
    "OutboxMessage",
    "OutboxStatus",
    "Consultation",
    "LoginCode",
    "Message",
    "Model",
    "Subscription",
    "Worker",
    "as_utc",
    "make_engine",
    "make_sessionmaker",
    "utcnow",
]
