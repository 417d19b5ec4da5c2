"""`flask scheduler run`: the process that runs the jobs of `scheduler.jobs.JOBS`.

The web processes never run jobs (a scheduler inside gunicorn would run once per worker). The schedule
is kept in the database (APScheduler's SQLAlchemy job store, table `apscheduler_jobs`), so it survives
restarts; each stored job is `run_scheduled(job_id)` — an importable function and a string, never the
app — which runs the job in the app this process registered, with the current time. APScheduler
coalesces missed runs and never overlaps a job with itself.

Several scheduler processes may run (one per host, say): only the holder of the database lease
"scheduler" (`bot.lease`, table `scheduler_leases`) runs jobs. The others stand by, their schedulers
paused so they leave the shared job store alone, and take over within `LEASE_TTL` when the holder
stops. `run_job` checks (and renews) the lease before every run, so a job never runs in two processes
at once. `--once` runs every job one time under the lease and gives it up (for cron, or to drain the
outbox by hand).
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC, datetime, timedelta

import click
from apscheduler.events import EVENT_SCHEDULER_STARTED
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_PAUSED, STATE_RUNNING, STATE_STOPPED, BaseScheduler
from flask import Flask, current_app
from flask.cli import with_appcontext

from bot import lease
from scheduler.jobs import JOBS, worker_id

log = logging.getLogger("workerlaw.scheduler")

LEASE = "scheduler"
LEASE_TTL = timedelta(minutes=3)
RENEW_EVERY = timedelta(seconds=30)  # how often the run loop renews the lease (or tries to take it)
JOB_TABLE = "apscheduler_jobs"

# The app of this scheduler process, for the stored jobs (which cannot hold it: they are pickled).
_registered: dict[str, Flask] = {}


def holds_lease(app: Flask) -> bool:
    """Take or renew the scheduler lease for this process; False while another process holds it."""
    return lease.acquire(
        app.extensions["workerlaw.sessions"], LEASE, worker_id(), datetime.now(UTC), LEASE_TTL
    )


def run_job(app: Flask, job_id: str, *, now: datetime | None = None) -> int:
    """Run one job now in `app`'s context if this process holds the lease; errors are logged, never
    raised into the scheduler."""
    job = JOBS[job_id]
    with app.app_context():
        try:
            if not holds_lease(app):
                log.info("job %s skipped: another scheduler process holds the lease", job_id)
                return 0
            done = job.func(
                app.extensions["workerlaw.sessions"],
                wechat=app.extensions["workerlaw.wechat"],
                now=now or datetime.now(UTC),
                **job.options(app),
            )
        except Exception:  # the runner is a boundary: one failing run must not stop the others
            log.exception("job %s failed", job_id)
            return 0
    if done:
        log.info("job %s: %s done", job_id, done)
    return done


def run_scheduled(job_id: str) -> int:
    """What the job store schedules: run `job_id` in the app registered by `build_scheduler`."""
    app = _registered.get("app")
    if app is None or job_id not in JOBS:
        log.warning("stored job %s not run: %s", job_id, "no app" if app is None else "no such job")
        return 0
    return run_job(app, job_id)


def build_scheduler(app: Flask, scheduler_class: type[BaseScheduler] = BackgroundScheduler) -> BaseScheduler:
    """A scheduler (not started) on the persistent job store in `app`'s database, holding every job of
    `JOBS` (stored on start, replacing the stored ones, each due at once); stored jobs that are no
    longer in `JOBS` are removed when it starts."""
    _registered["app"] = app
    scheduler = scheduler_class(
        jobstores={"default": SQLAlchemyJobStore(engine=app.extensions["workerlaw.db"], tablename=JOB_TABLE)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        timezone=UTC,
    )
    for job_id, job in JOBS.items():
        scheduler.add_job(
            run_scheduled,
            "interval",
            args=[job_id],
            id=job_id,
            name=job_id,
            seconds=job.interval.total_seconds(),
            next_run_time=datetime.now(UTC),
            replace_existing=True,
        )

    def drop_orphans(_event: object) -> None:
        for stored in scheduler.get_jobs():
            if stored.id not in JOBS:
                log.info("removing stored job %s: no longer a job", stored.id)
                scheduler.remove_job(stored.id)

    scheduler.add_listener(drop_orphans, EVENT_SCHEDULER_STARTED)
    return scheduler


def serve(app: Flask, stop: threading.Event, *, renew_every: timedelta = RENEW_EVERY) -> None:
    """Run the jobs while this process holds the lease, stand by while another does, until `stop`."""
    sessions = app.extensions["workerlaw.sessions"]
    scheduler = build_scheduler(app)
    try:
        while not stop.is_set():
            try:
                leader = holds_lease(app)
            except Exception:  # the database is away: run nothing until it is back
                log.exception("could not renew the scheduler lease")
                leader = False
            if leader and scheduler.state == STATE_STOPPED:
                log.info("holding the scheduler lease: running %s", ", ".join(JOBS))
                scheduler.start()
            elif leader and scheduler.state == STATE_PAUSED:
                log.info("holding the scheduler lease again: resuming")
                scheduler.resume()
            elif not leader and scheduler.state == STATE_RUNNING:
                log.warning("lost the scheduler lease: standing by")
                scheduler.pause()
            stop.wait(renew_every.total_seconds())
    finally:
        if scheduler.state != STATE_STOPPED:
            scheduler.shutdown(wait=True)
        lease.release(sessions, LEASE, worker_id())


@click.group("scheduler")
def scheduler_cli() -> None:
    """Scheduled jobs (the outbox, idle consultations, ticket timers), run by one process at a time."""


@scheduler_cli.command("run")
@click.option("--once", is_flag=True, help="run every job once and exit")
@with_appcontext
def run(once: bool) -> None:
    """Run the jobs on their intervals until stopped (Ctrl-C, SIGTERM); stand by while another
    scheduler process holds the lease."""
    app = current_app._get_current_object()
    if once:
        if not holds_lease(app):
            raise click.ClickException("another scheduler process holds the lease: nothing was run")
        try:
            for job_id in JOBS:
                click.echo(f"{job_id}: {run_job(app, job_id)}")
        finally:
            lease.release(app.extensions["workerlaw.sessions"], LEASE, worker_id())
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    click.echo(f"scheduler started ({worker_id()}): {', '.join(JOBS)}")
    try:
        serve(app, stop)
    except KeyboardInterrupt:
        stop.set()


def register_commands(app: Flask) -> None:
    """Attach `flask scheduler …` to `app`."""
    app.cli.add_command(scheduler_cli)
