"""The scheduled jobs: plain functions of (session factory, gateway, time) and the table that names them.

Nothing is scheduled here: the `flask scheduler run` process reads `JOBS` and calls each function with
the current time, so tests call them with whatever `now` they need. What else a job needs (a setting,
the ticket desk) comes from its `options`, a function of the app.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from bot import report_jobs, report_rollup, retention
from bot.consultations import Consultations
from bot.outbox import deliver_due
from bot.reports import Reports
from bot.tickets import Desk
from bot.timers import run_ticket_timers
from bot.wechat import WeChatGateway

if TYPE_CHECKING:
    from flask import Flask


def worker_id() -> str:
    """This process's name in outbox claims: unique per host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def send_outbox(
    session_factory: sessionmaker[Session], *, wechat: WeChatGateway | None, now: datetime
) -> int:
    """Deliver the outbox's due replies; returns how many WeChat accepted (none without a gateway)."""
    if wechat is None:  # WeChat not configured: messages wait in the outbox, none is lost
        return 0
    return deliver_due(session_factory, wechat, now=now, worker_id=worker_id())


def close_idle_consultations(
    session_factory: sessionmaker[Session],
    *,
    wechat: WeChatGateway | None,
    now: datetime,
    idle_timeout: timedelta = timedelta(minutes=30),
) -> int:
    """Close consultations idle for longer than `idle_timeout`, so each 人次 ends when the worker left."""
    with session_factory() as session:
        closed = Consultations(idle_timeout=idle_timeout).close_idle(session, now=now)
        session.commit()
    return closed


def ticket_timers(
    session_factory: sessionmaker[Session], *, wechat: WeChatGateway | None, now: datetime, desk: Desk
) -> int:
    """Alert the backup lawyers, then the union admins, about tickets nobody claimed (`bot.timers`)."""
    with session_factory() as session:
        fired = run_ticket_timers(session, desk, now=now)
        session.commit()
    return fired


def report_snapshots(
    session_factory: sessionmaker[Session], *, wechat: WeChatGateway | None, now: datetime, reports: Reports
) -> int:
    """Freeze last month's summary of every region once the month is over (`bot.report_jobs`)."""
    with session_factory() as session:
        made = report_jobs.snapshot_month(session, reports, now=now)
        session.commit()
    return made


def recount_reports(
    session_factory: sessionmaker[Session], *, wechat: WeChatGateway | None, now: datetime
) -> int:
    """Recount the days whose consultations changed since they were last counted (`bot.report_rollup`),
    so long periods' summaries read precomputed counts."""
    with session_factory() as session:
        return report_rollup.refresh(session)


def report_daily(
    session_factory: sessionmaker[Session],
    *,
    wechat: WeChatGateway | None,
    now: datetime,
    reports: Reports,
    desk: Desk,
) -> int:
    """Yesterday's figures to each union admin, once a day after 08:00 China time."""
    with session_factory() as session:
        sent = report_jobs.daily_summary(session, reports, desk, now=now)
        session.commit()
    return sent


def report_deadlines(
    session_factory: sessionmaker[Session],
    *,
    wechat: WeChatGateway | None,
    now: datetime,
    desk: Desk,
    deadlines: tuple[report_jobs.Deadline, ...],
    days_before: tuple[int, ...],
) -> int:
    """Remind union admins of the reporting deadlines (`REPORT_DEADLINES`, `REPORT_REMINDER_DAYS`)."""
    if not deadlines:
        return 0
    with session_factory() as session:
        sent = report_jobs.deadline_reminders(session, desk, deadlines, days_before, now=now)
        session.commit()
    return sent


def purge_message_text(
    session_factory: sessionmaker[Session], *, wechat: WeChatGateway | None, now: datetime, keep_days: int
) -> int:
    """Blank the free text of consultations closed more than `keep_days` days ago (`RETENTION_DAYS`,
    PIPL; `bot.retention`); the counts and report figures stay. 0 days: nothing is purged."""
    if keep_days <= 0:
        return 0
    with session_factory() as session:
        return retention.purge(session, now=now, keep_days=keep_days).total


def _report_deadline_options(app: Flask) -> dict[str, Any]:
    return {
        "desk": app.extensions["workerlaw.desk"],
        "deadlines": report_jobs.Deadline.parse_list(app.config["REPORT_DEADLINES"]),
        "days_before": report_jobs.reminder_days(app.config["REPORT_REMINDER_DAYS"]),
    }


def _no_options(_app: Flask) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Job:
    """A job function, how often it runs, and the extra keyword arguments it takes from the app
    (`options(app)`: its configuration, or what `create_app` built, such as the ticket desk)."""

    func: Callable[..., int]
    interval: timedelta
    options: Callable[[Flask], Mapping[str, Any]] = _no_options


# Stable ids: the persistent job store keys on them, so renaming one orphans its stored schedule.
JOBS: dict[str, Job] = {
    "send-outbox": Job(send_outbox, timedelta(seconds=10)),
    "close-idle-consultations": Job(
        close_idle_consultations,
        timedelta(minutes=1),
        lambda app: {"idle_timeout": timedelta(minutes=int(app.config["CONSULTATION_IDLE_MINUTES"]))},
    ),
    "ticket-timers": Job(
        ticket_timers, timedelta(minutes=1), lambda app: {"desk": app.extensions["workerlaw.desk"]}
    ),
    "report-snapshots": Job(
        report_snapshots, timedelta(minutes=15), lambda app: {"reports": app.extensions["workerlaw.reports"]}
    ),
    "report-rollup": Job(recount_reports, timedelta(minutes=5)),
    "report-daily": Job(
        report_daily,
        timedelta(minutes=10),
        lambda app: {
            "reports": app.extensions["workerlaw.reports"],
            "desk": app.extensions["workerlaw.desk"],
        },
    ),
    "report-deadlines": Job(report_deadlines, timedelta(minutes=30), _report_deadline_options),
    "purge-message-text": Job(
        purge_message_text, timedelta(hours=1), lambda app: {"keep_days": int(app.config["RETENTION_DAYS"])}
    ),
}
