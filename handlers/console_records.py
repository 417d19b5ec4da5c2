"""`/console/records`: the console pages where union admins and admins enter, edit and delete the records
the statistics form needs and the bot cannot see (lectures, leaflets, mediated disputes, legal-aid cases,
funds spent...), and read each record's history.

It owns these pages and their forms only: the list of a period's records (this month in China time by
default), the form of one kind of record (a two-step form: pick the kind, then fill exactly that kind's
figures, so no script is needed), and the edit page with the record's change history. What a record
needs, who may enter it for which region, and the history are `bot.activities`'s to decide; a refusal is
shown above the form with everything the clerk typed kept. The routes are registered on the console's
blueprint (`handlers.console.bp`), so this module must be imported before the blueprint is registered.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import activities
from bot.activities import EDITABLE, KINDS, MAX_COUNT, MAX_ISSUER, MAX_NOTE, TOPICS, Kind, RecordError
from bot.roster import CHINA, Tree
from bot.staff import visible_regions
from handlers.console import FormError, _error, _int, _user, admins_only, bp
from handlers.db import get_session
from models import utcnow
from models.activity import COUNT_FIELDS, ActivityRecord
from models.org import StaffUser

ACTIONS = {"create": "新增", "update": "修改", "delete": "删除"}
BASE_LABELS = {
    "region_id": "地区",
    "day": "日期",
    "online": "形式",
    "new_form": "面向新就业形态劳动者",
    "topic": "案件类型",
    "issuer": "发文单位",
    "note": "备注",
}
MAX_RANGE_DAYS = 3 * 366  # a list covers at most about three years
LIST_LIMIT = 500
# Full-width digits and point, as a Chinese input method types them, made plain.
FULL_WIDTH = str.maketrans("０１２３４５６７８９．", "0123456789.")


def _today() -> date:
    return utcnow().astimezone(CHINA).date()


def _month(day: date) -> tuple[date, date]:
    """The first and last day of `day`'s month."""
    return day.replace(day=1), day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _regions(db: Session, user: StaffUser, tree: Tree) -> list[dict[str, Any]]:
    """The regions the user may enter records for, each after its parent, indented by depth."""
    allowed = visible_regions(db, user, tree)
    out: list[dict[str, Any]] = []

    def walk(parent: int | None, depth: int) -> None:
        for rid in sorted(tree.children.get(parent, [])):
            shown = allowed is None or rid in allowed
            if shown:
                out.append({"id": rid, "name": tree.name[rid], "depth": depth})
            walk(rid, depth + 1 if shown else depth)

    walk(None, 0)
    return out


def _names(db: Session, ids: set[int | None]) -> dict[int, str]:
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    query = select(StaffUser.id, StaffUser.display_name).where(StaffUser.id.in_(ids))
    return {i: name for i, name in db.execute(query)}


def _label(kind: Kind, name: str) -> str:
    if name in BASE_LABELS:
        return BASE_LABELS[name]
    if name == "amount":
        return f"{kind.amount or '金额'}（万元）"
    return next((label for field, label, _ in kind.fields if field == name), name)


def _show(kind: Kind, name: str, value: Any, region_names: dict[int, str]) -> str:
    """A stored value (a record's column or a history snapshot's) as the clerk reads it."""
    if value is None or value == "":
        return "（空）"
    if name == "region_id":
        return region_names.get(value, f"地区 {value}")
    if name == "online":
        return "线上" if value else "线下"
    if name == "new_form":
        return "是" if value else "否"
    if name == "topic":
        return TOPICS.get(value, str(value))
    if name == "amount":
        return f"{value} 万元"
    if name in COUNT_FIELDS:
        unit = next((u for field, _, u in kind.fields if field == name), "")
        return f"{value} {unit}".strip()
    return str(value)


def _figures(kind: Kind, record: ActivityRecord) -> list[tuple[str, str]]:
    """The record's figures (label, value with unit) in the kind's order, then the amount."""
    out = [(label, f"{getattr(record, name)} {unit}") for name, label, unit in kind.fields]
    if kind.amount and record.amount is not None:
        out.append((kind.amount, f"{record.amount} 万元"))
    return out


def _changes(db: Session, record: ActivityRecord, region_names: dict[int, str]) -> list[dict[str, Any]]:
    """The record's history, oldest first: who, when, what, and each value before → after."""
    kind = KINDS[record.kind]
    rows = activities.history(db, record.id)
    names = _names(db, {c.staff_id for c in rows})
    out = []
    for change in rows:
        before, after = change.before or {}, change.after or {}
        lines = []
        for name in EDITABLE:
            old, new = before.get(name), after.get(name)
            if change.action == "create" and new not in (None, ""):
                lines.append((_label(kind, name), None, _show(kind, name, new, region_names)))
            elif change.action == "update" and old != new:
                lines.append(
                    (
                        _label(kind, name),
                        _show(kind, name, old, region_names),
                        _show(kind, name, new, region_names),
                    )
                )
        out.append(
            {
                "who": names.get(change.staff_id, "（未知）"),
                "at": change.at,
                "action": ACTIONS.get(change.action, change.action),
                "lines": lines,
            }
        )
    return out


def _number(raw: str, name: str, label: str) -> str | None:
    """A figure as typed, for `activities.validate` to judge: full-width digits and points (a Chinese
    input method's) made plain, empty → None. Digit strings `int()` cannot read (superscripts, thousands
    of digits) are refused here, since `validate` would let them through to `int()`."""
    value = raw.translate(FULL_WIDTH).strip()
    if not value:
        return None
    if name != "amount" and value.isdigit() and (not value.isascii() or len(value) > 9):
        raise RecordError(f"{label}须为 0 到 {MAX_COUNT} 之间的整数", field=name)
    return value


def _typed(kind: Kind) -> dict[str, Any]:
    """What the clerk typed, as the form shows it again: strings, and booleans for the yes/no fields."""
    form = request.form
    typed: dict[str, Any] = {
        "region_id": (form.get("region_id") or "").strip(),
        "day": (form.get("day") or "").strip(),
        "online": form.get("online") in ("1", "on"),
        "new_form": form.get("new_form") in ("1", "on"),
        "topic": (form.get("topic") or "").strip(),
        "issuer": form.get("issuer") or "",
        "note": form.get("note") or "",
        "amount": (form.get("amount") or "").strip(),
    }
    for name in COUNT_FIELDS:
        typed[name] = (form.get(name) or "").strip()
    return typed


def _values(kind: Kind) -> dict[str, Any]:
    """The form as `activities.create` / `update` take it: strings as typed, yes/no as booleans, empty
    → None. Raises RecordError."""
    form = request.form
    try:
        region_id = _int("region_id", "地区")
    except FormError as exc:
        raise RecordError(str(exc), field="region_id") from None
    values: dict[str, Any] = {
        "region_id": region_id,
        "day": (form.get("day") or "").strip() or None,
        "online": form.get("online") in ("1", "on"),
        "new_form": form.get("new_form") in ("1", "on"),
        "topic": (form.get("topic") or "").strip() or None,
        "issuer": (form.get("issuer") or "").strip() or None,
        "note": (form.get("note") or "").strip() or None,
    }
    for name in (*COUNT_FIELDS, "amount"):
        values[name] = _number(form.get(name) or "", name, _label(kind, name))
    return values


def _form_page(
    db: Session,
    user: StaffUser,
    kind_code: str,
    typed: dict[str, Any],
    *,
    record: ActivityRecord | None = None,
    error: str | None = None,
    error_field: str | None = None,
    status: int = 200,
):
    tree = Tree(db)
    kind = KINDS[kind_code]
    history, names = [], {}
    if record is not None:
        history = _changes(db, record, tree.name)
        names = _names(db, {record.created_by, record.updated_by})
    return render_template(
        "console/record_form.html",
        kind_code=kind_code,
        kind=kind,
        record=record,
        form=typed,
        error=error,
        error_field=error_field,
        regions=_regions(db, user, tree),
        region_names=tree.name,
        topics=TOPICS,
        history=history,
        staff_names=names,
        today=_today().isoformat(),
        amount_label=_label(kind, "amount"),
        max_issuer=MAX_ISSUER,
        max_note=MAX_NOTE,
    ), status


def _back_to_list(day: date):
    """The list of the month the record belongs to (which may not be this month)."""
    start, end = _month(day)
    return redirect(url_for(".records", start=start.isoformat(), end=end.isoformat()))


@bp.context_processor
def _records_nav():
    """Tells the layout the records pages exist (it shows the 填报 link to union admins and admins)."""
    return {"records_nav": True}


@bp.get("/records")
@admins_only
def records():
    """The records of [start, end] (this month by default), optionally in one region's subtree."""
    db, user = get_session(), _user()
    default_start, default_end = _month(_today())
    try:
        start = date.fromisoformat(request.args.get("start") or default_start.isoformat())
        end = date.fromisoformat(request.args.get("end") or default_end.isoformat())
    except ValueError:
        return _error(400, "日期的格式不对，请按 2026-10-01 的样子填写。")
    if start > end:
        return _error(400, "开始日期不能晚于结束日期。")
    if end - start > timedelta(days=MAX_RANGE_DAYS):
        return _error(400, "查询的时间段太长，请不要超过三年。")
    raw_region = (request.args.get("region") or "").strip()
    if raw_region and not (raw_region.isascii() and raw_region.isdigit() and len(raw_region) <= 9):
        return _error(400, "地区不对，请重新选择。")
    region_id = int(raw_region) if raw_region else None
    try:
        found = activities.listing(db, user, start=start, end=end, region_id=region_id, limit=LIST_LIMIT)
    except RecordError as exc:
        return _error(exc.status, str(exc))
    tree = Tree(db)
    names = _names(db, {r.created_by for r in found} | {r.updated_by for r in found})
    rows = []
    for r in found:
        kind = KINDS.get(r.kind)
        if kind is None:  # a kind no longer offered: listed by its code, not editable here
            kind = Kind(r.kind)
        rows.append(
            {
                "record": r,
                "kind": kind,
                "region": tree.name.get(r.region_id, f"地区 {r.region_id}"),
                "figures": _figures(kind, r),
                "topic": TOPICS.get(r.topic) if r.topic else None,
                "created_by": names.get(r.created_by, "（未知）"),
                "updated_by": names.get(r.updated_by, "（未知）") if r.updated_at else None,
            }
        )
    return render_template(
        "console/records.html",
        rows=rows,
        truncated=len(found) >= LIST_LIMIT,
        start=start.isoformat(),
        end=end.isoformat(),
        region=region_id,
        regions=_regions(db, user, tree),
        kinds=KINDS,
    )


@bp.get("/records/new")
@admins_only
def record_new():
    """The form of one kind of record (`?kind=lecture`): exactly that kind's figures."""
    kind_code = request.args.get("kind") or ""
    if kind_code not in KINDS:
        return _error(400, "请先选择要填报的记录类型。")
    db, user = get_session(), _user()
    regions = _regions(db, user, Tree(db))
    typed: dict[str, Any] = {name: "" for name in (*EDITABLE, "amount")}
    typed.update(
        region_id=str(regions[0]["id"]) if len(regions) == 1 else "",
        day=_today().isoformat(),
        online=False,
        new_form=True,
    )
    return _form_page(db, user, kind_code, typed)


@bp.post("/records")
@admins_only
def record_create():
    kind_code = request.form.get("kind") or ""
    if kind_code not in KINDS:
        return _error(400, "记录类型不正确，请从填报页面重新进入。")
    db, user, kind = get_session(), _user(), KINDS[kind_code]
    try:
        values = _values(kind)
        record = activities.create(
            db, user, region_id=values.pop("region_id"), kind=kind_code, values=values, now=utcnow()
        )
        day = record.day
        db.commit()
    except RecordError as exc:
        db.rollback()
        return _form_page(
            db, user, kind_code, _typed(kind), error=str(exc), error_field=exc.field, status=exc.status
        )
    flash(f"已保存：{day.isoformat()} {kind.label}。", "ok")
    return _back_to_list(day)


def _editable(db, user, record_id: int):
    """The record if the user may edit it here, else the error page to answer with."""
    try:
        found = activities.get(db, user, record_id)
    except RecordError as exc:
        return _error(exc.status, str(exc))
    if found.kind not in KINDS:
        return _error(400, "这种记录已不能在这里修改。")
    return found


@bp.get("/records/<int:record_id>")
@admins_only
def record(record_id: int):
    """The record's form, filled in, and its history."""
    db, user = get_session(), _user()
    found = _editable(db, user, record_id)
    if not isinstance(found, ActivityRecord):
        return found
    typed: dict[str, Any] = {
        "region_id": str(found.region_id),
        "day": found.day.isoformat(),
        "online": found.online,
        "new_form": found.new_form,
        "topic": found.topic or "",
        "issuer": found.issuer or "",
        "note": found.note or "",
        "amount": "" if found.amount is None else str(found.amount),
    }
    for name in COUNT_FIELDS:
        value = getattr(found, name)
        typed[name] = "" if value is None else str(value)
    return _form_page(db, user, found.kind, typed, record=found)


@bp.post("/records/<int:record_id>")
@admins_only
def record_update(record_id: int):
    db, user = get_session(), _user()
    found = _editable(db, user, record_id)
    if not isinstance(found, ActivityRecord):
        return found
    kind = KINDS[found.kind]
    try:
        activities.update(db, user, record_id, values=_values(kind), now=utcnow())
        day = found.day
        db.commit()
    except RecordError as exc:
        db.rollback()
        if exc.status == 404:
            return _error(404, str(exc))
        found = activities.get(db, user, record_id)  # reloaded: the rollback expired it
        return _form_page(
            db,
            user,
            found.kind,
            _typed(kind),
            record=found,
            error=str(exc),
            error_field=exc.field,
            status=exc.status,
        )
    flash(f"已修改：{day.isoformat()} {kind.label}。", "ok")
    return _back_to_list(day)


@bp.post("/records/<int:record_id>/delete")
@admins_only
def record_delete(record_id: int):
    """Mark the record deleted; its row and history stay (earlier exports can still be explained)."""
    db, user = get_session(), _user()
    try:
        found = activities.get(db, user, record_id)
        day, label = found.day, KINDS[found.kind].label if found.kind in KINDS else found.kind
        activities.delete(db, user, record_id, now=utcnow())
        db.commit()
    except RecordError as exc:
        db.rollback()
        return _error(exc.status, str(exc))
    flash(f"已删除：{day.isoformat()} {label}。", "ok")
    return _back_to_list(day)
