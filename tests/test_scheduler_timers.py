"""The ticket timers (backup lawyers, interim message, union admins), the scheduler lease, and the
persistent job store — on SQLite, and PostgreSQL when TEST_DATABASE_URL is set."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import func, inspect, select

from bot import lease
from bot.inbox import Inbound
from bot.staff import create_user
from bot.timers import run_ticket_timers
from models import BOT, Message, Model, OutboxMessage, SchedulerLease, Worker
from models.org import Lawyer, Region, Shift
from models.schema import include_name
from models.ticket import Notice, Ticket, TicketEvent
from scheduler import runner
from scheduler.jobs import JOBS, worker_id

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 China time, a Monday
PASSWORD = "correct-horse-1"


@pytest.fixture
def app(bare_app):
    return bare_app


@pytest.fixture
def sessions(app):
    return app.extensions["workerlaw.sessions"]


@pytest.fixture
def org(sessions):
    """City → district → township (with a primary and a backup lawyer on duty), a sibling district,
    and a union admin at each of the four."""
    with sessions() as s:
        city = Region(code="C", name="市总工会", level="city")
        s.add(city)
        s.flush()
        district = Region(code="D1", name="一区工会", level="district", parent_id=city.id)
        sibling = Region(code="D2", name="二区工会", level="district", parent_id=city.id)
        s.add_all([district, sibling])
        s.flush()
        township = Region(code="TS1", name="一镇工会", level="township", parent_id=district.id)
        primary, backup = Lawyer(name="主班律师"), Lawyer(name="备班律师")
        s.add_all([township, primary, backup])
        s.flush()
        for lawyer, role in ((primary, "primary"), (backup, "backup")):
            s.add(
                Shift(
                    region_id=township.id,
                    lawyer_id=lawyer.id,
                    role=role,
                    starts_at=T0 - timedelta(hours=1),
                    ends_at=T0 + timedelta(hours=8),
                )
            )
        admins = {
            code: create_user(
                s, username=f"admin-{code}", password=PASSWORD, role="union_admin", region_id=region.id
            ).id
            for code, region in (("TS1", township), ("D1", district), ("D2", sibling), ("C", city))
        }
        s.commit()
        return {
            "township": township.id,
            "primary": primary.id,
            "backup": backup.id,
            "admins": admins,
        }


def escalate(app, sessions, openid: str, text: str = "我想找律师", msg_id: int = 1) -> Ticket:
    """A worker of the township asks for a lawyer, through the inbox as WeChat's push would."""
    with sessions() as s:
        s.add(Worker(channel="oa", openid=openid, region_code="TS1", first_contact_at=T0))
        s.commit()
    with sessions() as s:
        handled = app.extensions["workerlaw.inbox"].handle(
            s,
            Inbound(
                channel="oa",
                openid=openid,
                msg_type="text",
                dedup_key=f"msg|{msg_id}",
                created_at=T0,
                content=text,
            ),
            now=T0,
        )
        s.commit()
    assert handled.needs_lawyer
    with sessions() as s:
        return s.scalars(select(Ticket).where(Ticket.consultation_id == handled.consultation_id)).one()


def timers(app, sessions, at: datetime) -> int:
    with sessions() as s:
        fired = run_ticket_timers(s, app.extensions["workerlaw.desk"], now=at)
        s.commit()
    return fired


def notices(sessions, kind: str) -> list[tuple[int | None, int | None]]:
    with sessions() as s:
        rows = s.scalars(select(Notice).where(Notice.kind == kind).order_by(Notice.id))
        return [(n.lawyer_id, n.staff_id) for n in rows]


def interims(app, sessions) -> int:
    interim = app.extensions["workerlaw.desk"].templates["interim"]
    with sessions() as s:
        return s.scalar(
            select(func.count(Message.id)).where(Message.author == BOT, Message.content == interim)
        )


def test_an_unclaimed_ticket_alerts_the_backup_lawyer_once_then_the_union_admins_up_the_chain(
    app, sessions, org
):
    ticket = escalate(app, sessions, "oWorkerA")
    assert ticket.region_id == org["township"] and not ticket.urgent
    assert notices(sessions, "new_ticket") == [(org["primary"], None)]

    assert runner.run_job(app, "ticket-timers", now=T0 + timedelta(minutes=14)) == 0
    assert notices(sessions, "unclaimed_backup") == [] and interims(app, sessions) == 0

    # Through the scheduler's job: the desk reaches the job through its options.
    assert runner.run_job(app, "ticket-timers", now=T0 + timedelta(minutes=16)) == 1
    assert notices(sessions, "unclaimed_backup") == [(org["backup"], None)]
    assert interims(app, sessions) == 1
    interim = app.extensions["workerlaw.desk"].templates["interim"]
    with sessions() as s:
        stored = s.get(Ticket, ticket.id)
        assert stored.backup_notified_at == stored.interim_sent_at == T0 + timedelta(minutes=16)
        assert stored.admin_notified_at is None
        # The worker wrote 16 minutes ago: inside WeChat's window, so the interim message is queued.
        assert s.scalar(select(func.count()).where(OutboxMessage.content == interim)) == 1

    assert timers(app, sessions, T0 + timedelta(minutes=17)) == 0
    assert notices(sessions, "unclaimed_backup") == [(org["backup"], None)]
    assert interims(app, sessions) == 1
    assert notices(sessions, "unclaimed_admin") == []

    assert timers(app, sessions, T0 + timedelta(minutes=61)) == 1
    admins = org["admins"]
    assert sorted(staff for _, staff in notices(sessions, "unclaimed_admin")) == sorted(
        [admins["TS1"], admins["D1"], admins["C"]]
    )
    with sessions() as s:
        assert s.get(Ticket, ticket.id).admin_notified_at == T0 + timedelta(minutes=61)
        assert s.scalar(select(func.count()).where(TicketEvent.kind == "timer")) == 2

    assert timers(app, sessions, T0 + timedelta(hours=3)) == 0
    assert len(notices(sessions, "unclaimed_admin")) == 3 and interims(app, sessions) == 1


def test_without_a_backup_on_duty_the_primary_lawyer_is_reminded(app, sessions, org):
    with sessions() as s:
        s.execute(Shift.__table__.delete().where(Shift.lawyer_id == org["backup"]))
        s.commit()
    escalate(app, sessions, "oWorkerB")

    assert timers(app, sessions, T0 + timedelta(minutes=16)) == 1
    assert notices(sessions, "unclaimed_backup") == [(org["primary"], None)]


def test_while_nobody_is_on_duty_the_backup_timer_waits_but_the_admins_are_told(app, sessions, org):
    ticket = escalate(app, sessions, "oWorkerC")
    after_hours = T0 + timedelta(hours=9)  # every shift has ended

    assert timers(app, sessions, after_hours) == 1  # the admin timer only
    assert notices(sessions, "unclaimed_backup") == [] and interims(app, sessions) == 0
    assert len(notices(sessions, "unclaimed_admin")) == 3
    with sessions() as s:
        assert s.get(Ticket, ticket.id).backup_notified_at is None


def test_urgent_tickets_use_half_the_delays(app, sessions, org):
    ticket = escalate(app, sessions, "oWorkerU", text="工地老板不给钱我不想活了")
    assert ticket.urgent
    urgent_admin_alerts = len(notices(sessions, "urgent"))
    assert urgent_admin_alerts == 3  # at once, by the desk

    assert timers(app, sessions, T0 + timedelta(minutes=7)) == 0
    assert timers(app, sessions, T0 + timedelta(minutes=8)) == 1
    assert notices(sessions, "unclaimed_backup") == [(org["backup"], None)]
    assert timers(app, sessions, T0 + timedelta(minutes=29)) == 0
    assert timers(app, sessions, T0 + timedelta(minutes=31)) == 1
    assert len(notices(sessions, "unclaimed_admin")) == 3


def test_a_claimed_ticket_gets_no_timers(app, sessions, org):
    ticket = escalate(app, sessions, "oWorkerD")
    desk = app.extensions["workerlaw.desk"]
    with sessions() as s:
        lawyer = create_user(
            s, username="lawyer1", password=PASSWORD, role="lawyer", lawyer_id=org["primary"]
        )
        desk.claim(s, lawyer, s.get(Ticket, ticket.id), now=T0 + timedelta(minutes=5))
        s.commit()

    assert timers(app, sessions, T0 + timedelta(minutes=16)) == 0
    assert timers(app, sessions, T0 + timedelta(minutes=61)) == 0
    assert notices(sessions, "unclaimed_backup") == notices(sessions, "unclaimed_admin") == []
    assert interims(app, sessions) == 0


def test_two_scheduler_processes_running_the_timers_at_once_alert_each_person_once(app, sessions, org):
    escalate(app, sessions, "oWorkerE")
    barrier = threading.Barrier(2)
    fired, errors = [], []

    def run():
        try:
            barrier.wait()
            fired.append(timers(app, sessions, T0 + timedelta(minutes=61)))  # a session per thread
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert not errors
    assert sum(fired) == 2  # the backup and the admin timer, each fired by one of the two
    assert notices(sessions, "unclaimed_backup") == [(org["backup"], None)]
    assert len(notices(sessions, "unclaimed_admin")) == 3
    assert interims(app, sessions) == 1


# --- the lease -------------------------------------------------------------------------------------

TTL = timedelta(minutes=3)


def test_only_one_holder_acquires_the_lease_until_it_expires(sessions):
    assert lease.acquire(sessions, "scheduler", "host-a:1", T0, TTL)
    assert not lease.acquire(sessions, "scheduler", "host-b:2", T0 + timedelta(seconds=5), TTL)
    assert lease.acquire(sessions, "scheduler", "host-a:1", T0 + timedelta(minutes=2), TTL)  # renewed
    assert not lease.acquire(sessions, "scheduler", "host-b:2", T0 + timedelta(minutes=4), TTL)

    late = T0 + timedelta(minutes=5, seconds=1)  # a's renewal ran out at T0 + 5 min
    assert lease.acquire(sessions, "scheduler", "host-b:2", late, TTL)
    assert not lease.acquire(sessions, "scheduler", "host-a:1", late, TTL)
    assert lease.acquire(sessions, "other-lease", "host-a:1", late, TTL)  # leases are independent

    assert not lease.release(sessions, "scheduler", "host-a:1")  # not a's to give up
    assert lease.release(sessions, "scheduler", "host-b:2")
    assert lease.acquire(sessions, "scheduler", "host-a:1", late, TTL)


def test_of_many_processes_racing_for_a_free_lease_exactly_one_wins(sessions):
    barrier = threading.Barrier(6)
    won, errors = [], []

    def race(n: int):
        try:
            barrier.wait()
            if lease.acquire(sessions, "scheduler", f"host:{n}", T0, TTL):
                won.append(n)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=race, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(won) == 1
    with sessions() as s:
        assert s.scalars(select(SchedulerLease)).one().holder == f"host:{won[0]}"


def test_jobs_do_not_run_while_another_process_holds_the_lease(app, sessions, org):
    escalate(app, sessions, "oWorkerF")
    assert lease.acquire(sessions, runner.LEASE, "elsewhere:1", datetime.now(UTC), TTL)

    assert runner.run_job(app, "ticket-timers", now=T0 + timedelta(minutes=16)) == 0
    assert notices(sessions, "unclaimed_backup") == []
    result = app.test_cli_runner().invoke(args=["scheduler", "run", "--once"])
    assert result.exit_code == 1 and "another scheduler process holds the lease" in result.output

    assert lease.release(sessions, runner.LEASE, "elsewhere:1")
    assert runner.run_job(app, "ticket-timers", now=T0 + timedelta(minutes=16)) == 1
    with sessions() as s:
        assert s.scalars(select(SchedulerLease)).one().holder == worker_id()


def test_run_once_runs_every_job_and_gives_the_lease_up(app, sessions):
    result = app.test_cli_runner().invoke(args=["scheduler", "run", "--once"])
    assert result.exit_code == 0, result.output
    assert [line.split(":")[0] for line in result.output.splitlines()] == list(JOBS)
    with sessions() as s:
        assert s.scalars(select(SchedulerLease)).all() == []


# --- the persistent job store ----------------------------------------------------------------------


def stored_jobs(app) -> dict[str, tuple]:
    """The jobs a fresh scheduler finds in the database, without adding any itself."""
    store = SQLAlchemyJobStore(engine=app.extensions["workerlaw.db"], tablename=runner.JOB_TABLE)
    scheduler = BackgroundScheduler(jobstores={"default": store}, timezone=UTC)
    scheduler.start(paused=True)
    try:
        return {job.id: (job.func, job.args, job.trigger) for job in scheduler.get_jobs()}
    finally:
        scheduler.shutdown(wait=False)


def test_the_schedule_is_kept_in_the_database_across_restarts(app):
    scheduler = runner.build_scheduler(app)
    scheduler.start(paused=True)  # paused: the jobs are stored, none runs
    scheduler.shutdown(wait=False)

    loaded = stored_jobs(app)
    assert set(loaded) == set(JOBS)
    for job_id, (func_, args, trigger) in loaded.items():
        assert func_ is runner.run_scheduled and args == (job_id,)
        assert isinstance(trigger, IntervalTrigger) and trigger.interval == JOBS[job_id].interval

    # A job stored by an older version and no longer in JOBS is dropped on the next start.
    store = SQLAlchemyJobStore(engine=app.extensions["workerlaw.db"], tablename=runner.JOB_TABLE)
    old = BackgroundScheduler(jobstores={"default": store}, timezone=UTC)
    old.start(paused=True)
    old.add_job(runner.run_scheduled, "interval", args=["retired-job"], id="retired-job", minutes=5)
    old.shutdown(wait=False)
    assert "retired-job" in stored_jobs(app)

    again = runner.build_scheduler(app)
    again.start(paused=True)
    again.shutdown(wait=False)
    assert set(stored_jobs(app)) == set(JOBS)


def test_the_job_store_table_is_apschedulers_not_the_migrations(app):
    scheduler = runner.build_scheduler(app)
    scheduler.start(paused=True)
    scheduler.shutdown(wait=False)
    engine = app.extensions["workerlaw.db"]
    assert runner.JOB_TABLE in inspect(engine).get_table_names()
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Model.metadata) != []  # the extra table
        context = MigrationContext.configure(conn, opts={"include_name": include_name})
        assert compare_metadata(context, Model.metadata) == []


def test_serve_stands_by_while_another_holds_the_lease_then_takes_over(app, sessions):
    assert lease.acquire(sessions, runner.LEASE, "elsewhere:1", datetime.now(UTC), TTL)
    stop = threading.Event()
    thread = threading.Thread(
        target=runner.serve, args=(app, stop), kwargs={"renew_every": timedelta(milliseconds=50)}
    )
    thread.start()
    try:
        time.sleep(0.5)
        # Standing by: the scheduler was never started, so the job store was not even created.
        assert runner.JOB_TABLE not in inspect(app.extensions["workerlaw.db"]).get_table_names()

        lease.release(sessions, runner.LEASE, "elsewhere:1")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the table appears first, then the jobs are stored in it
            tables = inspect(app.extensions["workerlaw.db"]).get_table_names()
            if runner.JOB_TABLE in tables and set(stored_jobs(app)) == set(JOBS):
                break
            time.sleep(0.05)
        with sessions() as s:
            assert s.scalars(select(SchedulerLease)).one().holder == worker_id()
        assert set(stored_jobs(app)) == set(JOBS)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    with sessions() as s:
        assert s.scalars(select(SchedulerLease)).all() == []  # given up on the way out
