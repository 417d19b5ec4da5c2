"""The job table and the outbox job, called as the scheduler process calls them (with `now`)."""

from __future__ import annotations

import inspect
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.outbox import enqueue
from models.wechat import OutboxMessage, OutboxStatus
from scheduler.jobs import JOBS, send_outbox, worker_id
from tests.wechat_standin import RecordingGateway

NOW = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def sessions(db):
    return db.sessionmaker()


def queue_one(sessions) -> None:
    with sessions() as session, session.begin():
        enqueue(
            session, channel="oa", openid="oWorker001", text="律师已回复", dedup_key="lawyer-reply:1", now=NOW
        )


def test_send_outbox_delivers_due_messages_and_names_this_process(sessions):
    queue_one(sessions)
    wechat = RecordingGateway()

    assert send_outbox(sessions, wechat=wechat, now=NOW) == 1

    assert wechat.sent == [("oWorker001", "律师已回复")]
    with sessions() as session:
        row = session.scalars(select(OutboxMessage)).one()
    assert row.status == OutboxStatus.SENT and row.claimed_by == worker_id()


def test_send_outbox_without_a_gateway_leaves_messages_queued(sessions):
    queue_one(sessions)

    assert send_outbox(sessions, wechat=None, now=NOW) == 0

    with sessions() as session:
        row = session.scalars(select(OutboxMessage)).one()
    assert (row.status, row.attempts) == (OutboxStatus.PENDING, 0)


def test_jobs_have_stable_kebab_case_ids_and_the_job_signature():
    assert "send-outbox" in JOBS
    for job_id, job in JOBS.items():
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", job_id)
        assert job.interval > timedelta(0)
        params = inspect.signature(job.func).parameters
        assert list(params)[0] == "session_factory"
        assert {"wechat", "now"} <= {n for n, p in params.items() if p.kind is p.KEYWORD_ONLY}
