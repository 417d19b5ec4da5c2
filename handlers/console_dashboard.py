"""`/console/dashboard`: the union head's statistics page, for union admins and admins.

It owns two routes on the console blueprint: the page (`GET /console/dashboard`: the filter form, the
headline numbers, the charts, the queue and the on-duty list, and the links to the statistics form) and
its data (`GET /console/dashboard/data?start=YYYY-MM-DD&end=YYYY-MM-DD&region=<id>`: JSON). The data
is `bot.reports.Reports.summary` for the period and region, with the region's current ticket queue, the
lawyers on duty in it now, and the display names the page shows. A union admin sees its own region and
the regions below it; an admin every region. The page draws its charts with the Chart.js the app
serves itself (`static/console/chart.umd.min.js`) from `static/console/dashboard.js`: no inline script or
style, as the console's CSP requires.

The routes are added to `handlers.console.bp` when this module is imported, which must happen before
the blueprint is registered on an app (`handlers.console.init_app` imports it).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from flask import current_app, jsonify, render_template, request, url_for
from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from bot.report_form import FORMATS, export
from bot.reports import CHANNELS as REPORT_CHANNELS
from bot.reports import OFFLINE, RESOLUTIONS, ReportError, Reports, Scope
from bot.roster import CHINA, Tree, on_duty
from bot.staff import visible_regions
from handlers.console import CHANNELS, LEVELS, OUTCOME_NAMES, SHIFT_ROLE_NAMES, _user, admins_only, bp
from handlers.db import get_session
from handlers.staff_reports_api import attachment
from knowledge.worker_types import UNKNOWN
from models import Ticket, as_utc, utcnow
from models.org import Lawyer, Shift, StaffUser, WeeklyShift
from models.ticket import CLAIMED, OPEN

ADMIN_ROLES = ("union_admin", "admin")
FORM_PATH = "/reports/form"  # the statistics form's downloads: <prefix>/reports/form.xlsx and .csv
RESOLUTION_NAMES = {
    "bot": "智能问答解答",
    "lawyer": "律师解答",
    "referred": "转介办理",
    "pending": "转人工待处理",
}
CHANNEL_NAMES = {**CHANNELS, OFFLINE: "线下"}


class BadRequest(Exception):
    """A query the data route refuses: `status` and a message for the user."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


# --- the period and the region ----------------------------------------------------------------------


def _today() -> date:
    return utcnow().astimezone(CHINA).date()


def quick_periods(today: date) -> dict[str, tuple[date, date]]:
    """本月 (so far), 上月 and 今年 (so far), in China time."""
    month = today.replace(day=1)
    last_month_end = month - timedelta(days=1)
    return {
        "本月": (month, today),
        "上月": (last_month_end.replace(day=1), last_month_end),
        "今年": (today.replace(month=1, day=1), today),
    }


def _date(raw: str | None, label: str, default: date) -> date:
    raw = (raw or "").strip()
    if not raw:
        return default
    try:
        if len(raw) != 10:
            raise ValueError(raw)
        day = date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(400, f"{label}的格式不对，请按 2026-01-31 的样子填写。") from None
    if not 2000 <= day.year <= 2100:
        raise BadRequest(400, f"{label}的年份不对。")
    return day


def period(args: Any, today: date) -> tuple[date, date]:
    """`start` and `end` from the query; by default this month so far."""
    start = _date(args.get("start"), "开始日期", today.replace(day=1))
    end = _date(args.get("end"), "结束日期", today)
    return start, end


def default_region(user: StaffUser, tree: Tree) -> int | None:
    """A union admin's own region; the city union at the top for an admin."""
    return user.region_id if user.role == "union_admin" else tree.root()


def region(args: Any, db: Session, user: StaffUser, tree: Tree) -> int | None:
    """The region asked for (`region`), checked against what the user may see."""
    raw = (args.get("region") or "").strip()
    allowed = visible_regions(db, user, tree)
    if not raw:
        chosen = default_region(user, tree)
        if user.role == "union_admin" and (chosen is None or chosen not in (allowed or set())):
            raise BadRequest(403, "您的账号没有关联地区，请联系系统管理员。")
        return chosen
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        raise BadRequest(400, "地区不对，请重新选择。")
    chosen = int(raw)
    if allowed is not None and chosen not in allowed:
        raise BadRequest(403, "您只能查看本工会及下级地区的统计。")
    if chosen not in tree.parent:
        raise BadRequest(400, "没有这个地区，请重新选择。")
    return chosen


def region_choices(db: Session, user: StaffUser, tree: Tree) -> list[dict[str, Any]]:
    """The regions the user may pick, each after its parent (depth first), indented by depth."""
    allowed = visible_regions(db, user, tree)
    out: list[dict[str, Any]] = []

    def walk(parent: int | None, depth: int) -> None:
        for rid in sorted(tree.children.get(parent, []), key=lambda r: (tree.name[r], r)):
            inside = allowed is None or rid in allowed
            if inside:
                out.append({"id": rid, "name": tree.name[rid], "depth": depth, "level": tree.level[rid]})
            walk(rid, depth + 1 if inside else depth)

    walk(None, 0)
    return out


# --- the queue and the duty roster now --------------------------------------------------------------


def _ticket_scope(tree: Tree, region_id: int | None) -> list:
    """Tickets routed to the region or below; the city union at the top also has unrouted ones."""
    if region_id is None:
        return []
    inside = Ticket.region_id.in_(sorted(tree.subtree(region_id)))
    return [or_(inside, Ticket.region_id.is_(None)) if tree.parent.get(region_id) is None else inside]


def queue_now(db: Session, tree: Tree, region_id: int | None, now: datetime) -> dict[str, Any]:
    """Open (waiting for a lawyer) and claimed tickets, the urgent among them, the longest wait."""
    where = [Ticket.status.in_((OPEN, CLAIMED)), *_ticket_scope(tree, region_id)]
    waiting, claimed, urgent = db.execute(
        select(
            func.count(case((Ticket.status == OPEN, Ticket.id))),
            func.count(case((Ticket.status == CLAIMED, Ticket.id))),
            func.count(case((Ticket.urgent.is_(True), Ticket.id))),
        ).where(*where)
    ).one()
    oldest = db.scalar(select(func.min(Ticket.created_at)).where(Ticket.status == OPEN, *where[1:]))
    minutes = None
    if oldest is not None:
        minutes = max(int((now - as_utc(oldest)).total_seconds() // 60), 0)
    return {
        "open": int(waiting or 0),
        "claimed": int(claimed or 0),
        "urgent": int(urgent or 0),
        "oldest_waiting_minutes": minutes,
    }


def duty_now(db: Session, tree: Tree, region_id: int | None, now: datetime) -> list[dict[str, Any]]:
    """Who is on duty now in the region and below: lawyer, region, primary or backup, until when.

    Only regions with a dated shift now or a weekly pattern are asked (`on_duty` reads per region)."""
    ids = sorted(tree.subtree(region_id)) if region_id is not None else sorted(tree.parent)
    if not ids:
        return []
    rostered = set(
        db.scalars(
            select(Shift.region_id)
            .where(Shift.region_id.in_(ids), Shift.starts_at <= now, Shift.ends_at > now)
            .distinct()
        )
    ) | set(db.scalars(select(WeeklyShift.region_id).where(WeeklyShift.region_id.in_(ids)).distinct()))
    duties = [d for rid in sorted(rostered) for d in on_duty(db, rid, now)]
    if not duties:
        return []
    names = dict(
        db.execute(select(Lawyer.id, Lawyer.name).where(Lawyer.id.in_({d.lawyer_id for d in duties}))).all()
    )
    depth = {rid: len(tree.chain(rid)) for rid in rostered}
    duties.sort(key=lambda d: (depth[d.region_id], tree.name[d.region_id], d.role != "primary", d.end))
    out = []
    for d in duties:
        until = as_utc(d.end).astimezone(CHINA)
        out.append(
            {
                "lawyer": names.get(d.lawyer_id, "?"),
                "region_id": d.region_id,
                "region": tree.name[d.region_id],
                "role": SHIFT_ROLE_NAMES.get(d.role, d.role),
                "until": until.isoformat(),
                "until_text": f"{until.month}月{until.day}日 {until:%H:%M}",
            }
        )
    return out


def display_names(reports: Reports) -> dict[str, Any]:
    """What the page calls each code (categories, channels, resolutions, outcomes, region levels), and
    the order to show the breakdowns in (JSON objects come out with their keys sorted)."""
    kb = current_app.extensions["workerlaw.engine"].kb
    return {
        "categories": {code: entry["name"] for code, entry in kb.categories.items()} | {"none": "未分类"},
        "channels": CHANNEL_NAMES,
        "resolutions": RESOLUTION_NAMES,
        "outcomes": {**OUTCOME_NAMES, "open": "未结案"},
        "levels": LEVELS,
        "order": {
            "channels": [*REPORT_CHANNELS, OFFLINE],
            "worker_types": [*reports.types.codes, UNKNOWN],
            "resolutions": list(RESOLUTIONS),
        },
    }


def form_links(start: date, end: date, region_id: int | None) -> dict[str, str]:
    """The statistics form's downloads for the same period and region."""
    query = {"start": start.isoformat(), "end": end.isoformat()}
    if region_id is not None:
        query["region"] = str(region_id)
    base = bp.url_prefix + FORM_PATH
    return {"xlsx": f"{base}.xlsx?{urlencode(query)}", "csv": f"{base}.csv?{urlencode(query)}"}


# --- routes -----------------------------------------------------------------------------------------


@bp.context_processor
def _nav():
    """The layout's 统计 link (shown to union admins and admins only when this module is loaded)."""
    return {"dashboard_url": url_for("console.dashboard")}


@bp.get("/dashboard")
@admins_only
def dashboard():
    """The page: the form is filled from the query (or the defaults); dashboard.js fetches the data."""
    db, user = get_session(), _user()
    tree = Tree(db)
    today = _today()
    choices = region_choices(db, user, tree)
    try:
        start, end = period(request.args, today)
    except BadRequest:
        start, end = today.replace(day=1), today
    try:
        chosen = region(request.args, db, user, tree)
    except BadRequest:
        chosen = default_region(user, tree)
    return render_template(
        "console/dashboard.html",
        regions=choices,
        region_id=chosen,
        start=start,
        end=end,
        today=today,
        quick=quick_periods(today),
        links=form_links(start, end, chosen),
    )


@bp.get("/dashboard/data")
def dashboard_data():
    """The summary of the period and region, with the queue and duty now, as JSON."""
    user = _user()
    if user.role not in ADMIN_ROLES:
        return jsonify(error="只有工会管理员可以查看统计。"), 403
    db, reports = get_session(), current_app.extensions["workerlaw.reports"]
    tree = Tree(db)
    now = utcnow()
    try:
        region_id = region(request.args, db, user, tree)
        start, end = period(request.args, now.astimezone(CHINA).date())
        summary = reports.summary(db, Scope(start, end, region_id), now=now, tree=tree)
    except BadRequest as exc:
        return jsonify(error=str(exc)), exc.status
    except ReportError as exc:
        return jsonify(error=f"{exc}。"), 400
    summary["queue"] = queue_now(db, tree, region_id, now)
    summary["on_duty"] = duty_now(db, tree, region_id, now)
    summary["names"] = display_names(reports)
    summary["links"] = form_links(start, end, region_id)
    summary["generated_at"] = now.astimezone(CHINA).isoformat()
    return jsonify(summary)


@bp.get("/reports/form.<fmt>")
@admins_only
def form_download(fmt: str):
    """The 附件3 statistics form of the period and region, as .xlsx or CSV (the same file as the API's)."""
    if fmt not in FORMATS:
        return jsonify(error="统计表只提供 .xlsx 和 .csv 两种格式。"), 404
    db, user = get_session(), _user()
    tree = Tree(db)
    now = utcnow()
    try:
        region_id = region(request.args, db, user, tree)
        start, end = period(request.args, now.astimezone(CHINA).date())
        made = export(
            current_app.extensions["workerlaw.reports"], db, Scope(start, end, region_id), fmt, now=now
        )
    except BadRequest as exc:
        return jsonify(error=str(exc)), exc.status
    except ReportError as exc:
        return jsonify(error=f"{exc}。"), 400
    return attachment(made)
