"""`flask scheduler run`: the one process that runs the jobs of `scheduler.jobs.JOBS`.

The web processes never run jobs (a scheduler inside gunicorn would run once per worker). Each job runs
in the app's context with the current time; APScheduler coalesces missed runs and never overlaps a job
with itself. `--once` runs every job one time and exits (for cron, or to drain the outbox by hand).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import click
from flask import Flask, current_app

from scheduler.jobs import JOBS

log = logging.getLogger("workerlaw.scheduler")


def run_job(app: Flask, job_id: str, *, now: datetime | None = None) -> int:
    """Run one job now in `app`'s context; errors are logged, never raised into the scheduler."""
    job = JOBS[job_id]
    with app.app_context():
        try:
            done = job.func(
                app.extensions["workerlaw.sessions"],
                wechat=app.extensions["workerlaw.wechat"],
                now=now or datetime.now(UTC),
                **job.options(app.config),
            )
        except Exception:  # the runner is a boundary: one failing run must not stop the others
            log.exception("job %s failed", job_id)
            return 0
    if done:
        log.info("job %s: %s done", job_id, done)
    return done


@click.group("scheduler")
def scheduler_cli() -> None:
    """Scheduled jobs: the outbox, idle consultations."""


@scheduler_cli.command("run")
@click.option("--once", is_flag=True, help="run every job once and exit")
def run(once: bool) -> None:
    """Run the jobs on their intervals until stopped (Ctrl-C)."""
    app = current_app._get_current_object()
    if once:
        for job_id in JOBS:
            click.echo(f"{job_id}: {run_job(app, job_id)}")
        return
    from apscheduler.schedulers.blocking import BlockingScheduler

    scheduler = BlockingScheduler(timezone=UTC)
    for job_id, job in JOBS.items():
        scheduler.add_job(
            run_job,
            "interval",
            args=[app, job_id],
            id=job_id,
            seconds=job.interval.total_seconds(),
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(UTC),
        )
    click.echo(f"scheduler running: {', '.join(JOBS)}")
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        scheduler.shutdown(wait=False)


def register_commands(app: Flask) -> None:
    """Attach `flask scheduler …` to `app`."""
    app.cli.add_command(scheduler_cli)
