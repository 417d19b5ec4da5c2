"""`flask --app app org ...`: set up the organisation — the first admin, regions, service stations,
lawyers and console users — from the command line and from CSV files (UTF-8, Excel's BOM accepted).

The commands are thin: `bot.org_import` reads, checks and upserts; a refused file names its line and
nothing is written (each command is one transaction).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy.orm import Session

from bot import org_import
from models.org import ROLES


@click.group("org")
def org() -> None:
    """Regions, service stations, lawyers and console users (组织机构、律师与账号)."""


def _password(given: str | None) -> str:
    if given is not None:
        return given
    return click.prompt("Password / 密码", hide_input=True, confirmation_prompt=True)


def _in_transaction(work: Callable[[Session], object]) -> object:
    """Run `work` in one transaction; a refusal becomes a clear error (and nothing is written)."""
    try:
        with current_app.extensions["workerlaw.sessions"]() as session, session.begin():
            return work(session)
    except org_import.OrgImportError as exc:
        raise click.ClickException(f"{exc} — nothing was imported / 未导入任何数据") from None


@org.command("create-admin")
@with_appcontext
@click.argument("username")
@click.option("--password", default=None, help="the password (prompted, hidden, when omitted)")
def create_admin(username: str, password: str | None) -> None:
    """Create an admin account (sees everything)."""
    secret = _password(password)
    user = _in_transaction(lambda s: org_import.add_user(s, username=username, password=secret, role="admin"))
    click.echo(f"created admin {user.username} / 已创建管理员账号 {user.username}")


@org.command("add-user")
@with_appcontext
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True, help="lawyer, union_admin or admin")
@click.option("--region", "region_code", default=None, help="a union admin's region code")
@click.option("--lawyer-id", type=int, default=None, help="a lawyer account's lawyer (id)")
@click.option("--display-name", default=None, help="the name shown in the console")
@click.option("--password", default=None, help="the password (prompted, hidden, when omitted)")
def add_user(
    username: str,
    role: str,
    region_code: str | None,
    lawyer_id: int | None,
    display_name: str | None,
    password: str | None,
) -> None:
    """Create a console account."""
    secret = _password(password)
    user = _in_transaction(
        lambda s: org_import.add_user(
            s,
            username=username,
            password=secret,
            role=role,
            region_code=region_code,
            lawyer_id=lawyer_id,
            display_name=display_name,
        )
    )
    click.echo(f"created {user.role} {user.username} / 已创建账号 {user.username}")


def _import(path: Path, columns: tuple[str, ...], run) -> org_import.Summary:
    def work(session: Session) -> org_import.Summary:
        return run(session, org_import.read_csv(path, columns))

    return _in_transaction(work)


FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@org.command("import-regions")
@with_appcontext
@click.argument("file", type=FILE)
def import_regions(file: Path) -> None:
    """Regions from CSV: code,name,level,parent_code (level: city, district, township or park)."""
    done = _import(file, org_import.REGION_COLUMNS, org_import.import_regions)
    click.echo(
        f"imported {done.total} regions ({done.created} new, {done.updated} updated) / 已导入地区 {done.total} 个"
    )


@org.command("import-stations")
@with_appcontext
@click.argument("file", type=FILE)
def import_stations(file: Path) -> None:
    """Service stations from CSV: code,name,region_code."""
    done = _import(file, org_import.STATION_COLUMNS, org_import.import_stations)
    click.echo(
        f"imported {done.total} stations ({done.created} new, {done.updated} updated) / 已导入服务站点 {done.total} 个"
    )


@org.command("import-lawyers")
@with_appcontext
@click.argument("file", type=FILE)
def import_lawyers(file: Path) -> None:
    """Lawyers from CSV: name,firm,phone,openid,regions,username,password (regions: codes split by ; or |)."""
    done = _import(file, org_import.LAWYER_COLUMNS, org_import.import_lawyers)
    click.echo(
        f"imported {done.total} lawyers ({done.created} new, {done.updated} updated, {done.users} accounts)"
        f" / 已导入律师 {done.total} 名，新建账号 {done.users} 个"
    )


def init_app(app: Flask) -> None:
    """Register the `org` command group."""
    app.cli.add_command(org)
