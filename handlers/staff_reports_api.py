"""`/api/reports` and `/api/records` on the staff API: the union's counts for a period and region as JSON,
the 附件3 statistics form as .xlsx or CSV, and the records staff enter by hand (list, create, read with
their history, replace, delete).

Union admins see and write their region and below (their own region by default); admins everything;
lawyers get 403. Errors are the staff API's `{"error", "message"}` (plus `field` for a refused record).
Views only parse and call `bot.reports`, `bot.report_form` and `bot.activities`, which decide.
"""

from __future__ import annotations

from datetime import date

from flask import Response, current_app, jsonify, request
from sqlalchemy import select

from bot import activities
from bot.activities import KINDS, TOPICS, RecordError
from bot.report_form import FORMATS, Export, export
from bot.reports import ReportError, Reports, Scope, authorize, parse_scope
from bot.roster import CHINA
from handlers.db import get_session
from handlers.json_api import ApiError, body, only
from handlers.staff_api import MAX_ID, _user, bp
from models import utcnow
from models.activity import COUNT_FIELDS
from models.org import StaffUser

RECORD_FIELDS = (
    "region_id",
    "kind",
    "day",
    "online",
    "new_form",
    "topic",
    *COUNT_FIELDS,
    "amount",
    "issuer",
    "note",
)


@bp.errorhandler(ReportError)
def _report_error(exc: ReportError):
    return jsonify(
        error="forbidden" if exc.status == 403 else "invalid_parameter", message=str(exc)
    ), exc.status


@bp.errorhandler(RecordError)
def _record_error(exc: RecordError):
    error = {403: "forbidden", 404: "not_found"}.get(exc.status, "invalid_field")
    return jsonify(error=error, message=str(exc), field=exc.field), exc.status


def _reports() -> Reports:
    return current_app.extensions["workerlaw.reports"]


def _today() -> date:
    return utcnow().astimezone(CHINA).date()


def _scope() -> tuple[StaffUser, Scope]:
    only("start", "end", "region")
    user = _user()
    args = request.args
    scope = parse_scope(args.get("start"), args.get("end"), args.get("region"), today=_today())
    return user, authorize(get_session(), user, scope)


@bp.get("/reports/summary")
def report_summary():
    """Counts for ?start=YYYY-MM-DD&end=YYYY-MM-DD&region=<id> (default: this month, the user's region)."""
    _, scope = _scope()
    return jsonify(_reports().summary(get_session(), scope, now=utcnow()))


@bp.get("/reports/form.<fmt>")
def report_form(fmt: str):
    """The 附件3 情况统计表 of the same scope, as .xlsx or CSV."""
    if fmt not in FORMATS:
        raise ApiError(404, "not_found", "the form is available as form.xlsx or form.csv")
    _, scope = _scope()
    return attachment(export(_reports(), get_session(), scope, fmt, now=utcnow()))


def attachment(made: Export) -> Response:
    """A finished file (`bot.report_form.Export`) as a download with its name."""
    response = Response(made.content, mimetype=made.mimetype)
    response.headers.set("Content-Disposition", "attachment", filename=made.filename)
    return response


# --- records entered by staff --------------------------------------------------------------------------


@bp.get("/records/kinds")
def record_kinds():
    """The kinds of record and the figures each needs (for a client's entry form)."""
    only()
    _user()
    return jsonify(
        kinds=[
            {
                "kind": code,
                "label": kind.label,
                "fields": [{"name": n, "label": label, "unit": unit} for n, label, unit in kind.fields],
                "amount": kind.amount,
                "online_allowed": kind.online,
                "issuer": kind.issuer,
                "topics": TOPICS if kind.topic else None,
            }
            for code, kind in KINDS.items()
        ]
    )


def _record_id(record_id: int) -> int:
    if not 1 <= record_id <= MAX_ID:
        raise ApiError(404, "not_found", "no such record")
    return record_id


@bp.get("/records")
def record_list():
    """My region's records with `day` in ?start&end (default: this month), in ?region's subtree if given."""
    user, scope = _scope()
    rows = activities.listing(
        get_session(), user, start=scope.start, end=scope.end, region_id=scope.region_id
    )
    return jsonify(items=[activities.as_dict(r) for r in rows])


@bp.post("/records")
def record_create():
    """A new record: region_id, kind, day and the figures its kind needs."""
    data = body(("region_id", "kind", "day"), RECORD_FIELDS)
    session = get_session()
    record = activities.create(
        session, _user(), region_id=data["region_id"], kind=data["kind"], values=data, now=utcnow()
    )
    session.commit()
    return jsonify(activities.as_dict(record)), 201


@bp.get("/records/<int:record_id>")
def record_detail(record_id: int):
    """One record with every change made to it (who, when, before, after)."""
    only()
    session = get_session()
    record = activities.get(session, _user(), _record_id(record_id))
    changes = activities.history(session, record.id)
    names = dict(session.execute(select(StaffUser.id, StaffUser.display_name)).all()) if changes else {}
    return jsonify(
        {
            **activities.as_dict(record),
            "history": [
                {
                    "action": c.action,
                    "by": c.staff_id,
                    "by_name": names.get(c.staff_id),
                    "at": c.at.isoformat(),
                    "before": c.before,
                    "after": c.after,
                }
                for c in changes
            ],
        }
    )


@bp.put("/records/<int:record_id>")
def record_update(record_id: int):
    """Replace a record's values (the kind stays as it is)."""
    data = body(("day",), tuple(f for f in RECORD_FIELDS if f != "kind"))
    session = get_session()
    record = activities.update(session, _user(), _record_id(record_id), values=data, now=utcnow())
    session.commit()
    return jsonify(activities.as_dict(record))


@bp.delete("/records/<int:record_id>")
def record_delete(record_id: int):
    """Delete a record (its history stays)."""
    only()
    session = get_session()
    activities.delete(session, _user(), _record_id(record_id), now=utcnow())
    session.commit()
    return jsonify(deleted=record_id)
