"""`flask --app app report ...`: the statistics form from the command line — the same .xlsx and CSV files
as the console and the staff API, for a period and a region (by code), written into a folder; the
monthly snapshot and the recount of the precomputed daily counts on demand."""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from bot import report_jobs, report_rollup
from bot.report_form import FORMATS, export
from bot.reports import ReportError, parse_scope
from bot.roster import CHINA
from models import utcnow
from models.org import Region


@click.group("report")
def report() -> None:
    """The union's statistics (统计报表)."""


@report.command("form")
@with_appcontext
@click.option("--start", default=None, help="first day, YYYY-MM-DD (default: the 1st of this month)")
@click.option("--end", default=None, help="last day, YYYY-MM-DD (default: today)")
@click.option("--region", "region_code", default=None, help="a region code (default: everywhere)")
@click.option(
    "--format", "formats", default="xlsx,csv", show_default=True, help="xlsx, csv or both, comma-separated"
)
@click.option("--out", "folder", type=click.Path(file_okay=False, path_type=Path), default=Path("."))
def form(start: str | None, end: str | None, region_code: str | None, formats: str, folder: Path) -> None:
    """Write the 附件3 情况统计表 for a period and region into FOLDER."""
    wanted = [f.strip() for f in formats.split(",") if f.strip()]
    if not wanted or any(f not in FORMATS for f in wanted):
        raise click.BadParameter("use xlsx, csv or xlsx,csv", param_hint="--format")
    now = utcnow()
    with current_app.extensions["workerlaw.sessions"]() as session:
        region_id = None
        if region_code:
            region_id = session.scalar(select(Region.id).where(Region.code == region_code))
            if region_id is None:
                raise click.ClickException(f"no region with code {region_code!r} / 地区代码不存在")
        try:
            scope = parse_scope(start, end, region_id, today=now.astimezone(CHINA).date())
        except ReportError as exc:
            raise click.ClickException(str(exc)) from None
        folder.mkdir(parents=True, exist_ok=True)
        for fmt in wanted:
            made = export(current_app.extensions["workerlaw.reports"], session, scope, fmt, now=now)
            path = folder / made.filename
            path.write_bytes(made.content)
            click.echo(f"wrote {path} / 已生成")


@report.command("snapshot")
@with_appcontext
def snapshot() -> None:
    """Freeze last month's summary of every region now (the scheduler does it on its own)."""
    with current_app.extensions["workerlaw.sessions"]() as session:
        made = report_jobs.snapshot_month(session, current_app.extensions["workerlaw.reports"], now=utcnow())
        session.commit()
    click.echo(f"{made} snapshot(s) made / 已生成 {made} 份月度快照")


@report.command("rollup")
@with_appcontext
def rollup() -> None:
    """Recount the days whose consultations changed (the scheduler does it every few minutes)."""
    with current_app.extensions["workerlaw.sessions"]() as session:
        days = report_rollup.refresh(session)
    click.echo(f"{days} day(s) recounted / 已重新统计 {days} 天")


def init_app(app: Flask) -> None:
    """Register the `report` command group."""
    app.cli.add_command(report)
