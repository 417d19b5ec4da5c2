"""`flask --app app retention purge [--days N]`: blank the message texts of consultations closed more
than N days ago now (default `RETENTION_DAYS`), as the scheduler's hourly job does (`bot.retention`)."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from bot import retention
from models import utcnow


@click.group("retention")
def group() -> None:
    """Retention of personal message texts (PIPL / 个人信息保存期限)."""


@group.command("purge")
@with_appcontext
@click.option(
    "--days",
    type=click.IntRange(min=0),
    default=None,
    help="keep the texts of consultations closed within this many days (default: RETENTION_DAYS)",
)
def purge(days: int | None) -> None:
    """Blank the texts of consultations closed more than DAYS days ago; the counts stay."""
    keep_days = int(current_app.config["RETENTION_DAYS"]) if days is None else days
    if keep_days == 0:
        raise click.ClickException("retention is off (0 days): nothing purged / 保存期限为 0，不清除")
    with current_app.extensions["workerlaw.sessions"]() as session:
        result = retention.purge(session, now=utcnow(), keep_days=keep_days)
    counts = ", ".join(f"{name}={n}" for name, n in result.as_dict().items())
    click.echo(f"purged texts older than {keep_days} days: {counts} / 已清除")


def init_app(app: Flask) -> None:
    """Register the `retention` command group."""
    app.cli.add_command(group)
