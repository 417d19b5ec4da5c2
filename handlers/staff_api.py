"""`/api`: the staff JSON API behind the lawyers' console (and a lawyers' mini-program) — sign-in, the
ticket queue, a ticket with its transcript, and every action on it (claim, reply, transfer, note, close,
refer for legal aid).

Errors are `{"error", "message"}` with a 4xx: 401 without a valid token, 403 when the role may not do
it, 404 for a ticket that does not exist or is not the user's to see, 409 when the ticket's state does
not allow it, 400 for invalid input (unknown fields included). Views validate input and call `bot`:
authorisation is `Desk.get`'s (a lawyer sees the tickets of the regions they serve, and those they hold;
a union admin its region and below; an admin everything). The worker API lives under `/api/mp`.
"""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, current_app, jsonify, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select

from bot.staff import LoginRefused, authenticate
from bot.tickets import Desk, TicketError
from handlers.db import get_session
from handlers.json_api import ApiError, body, json_errors, only, text_field
from handlers.staff_openapi import SPEC
from models import Message, Worker, as_utc, utcnow
from models.org import Lawyer, Region, StaffUser
from models.ticket import OUTCOMES, Ticket, TicketEvent

bp = Blueprint("staff_api", __name__, url_prefix="/api")
TOKEN_MAX_AGE = 12 * 3600
TOKEN_SALT = "workerlaw-staff"
MAX_REPLY_CHARS = 2000
MAX_NOTE_CHARS = 2000
MAX_REASON_CHARS = 500
MAX_ID = 2**31 - 1  # larger ids exist nowhere (and would overflow the database's integer)
STATUSES = ("open", "closed", "any")
VIEWS = ("all", "mine", "regions", "unassigned")
ERROR_OF_STATUS = {400: "invalid_request", 403: "forbidden", 404: "not_found", 409: "conflict"}


json_errors(bp)


@bp.errorhandler(TicketError)
def _ticket_error(exc: TicketError):
    return jsonify(error=ERROR_OF_STATUS.get(exc.status, "conflict"), message=str(exc)), exc.status


# --- input -----------------------------------------------------------------------------------------


def _choice(name: str, choices: tuple[str, ...], default: str) -> str:
    value = request.args.get(name, default)
    if value not in choices:
        raise ApiError(400, "invalid_parameter", f"{name} must be one of {', '.join(choices)}")
    return value


def _optional_text(data: dict, name: str, limit: int) -> str | None:
    return None if data.get(name) is None else text_field(data, name, limit)


def _id(data: dict, name: str) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_ID:
        raise ApiError(400, "invalid_field", f"{name} must be a positive whole number")
    return value


# --- sign-in ---------------------------------------------------------------------------------------


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=TOKEN_SALT)


def issue_token(user: StaffUser) -> str:
    """A signed, expiring bearer token; it names the password's `token_version`, so changing the
    password signs out every token issued before."""
    return _serializer().dumps({"u": user.id, "v": user.token_version})


def _user() -> StaffUser:
    """The signed-in staff user (Authorization: Bearer <token from POST /api/login>)."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        raise ApiError(401, "unauthorized", "sign in first: POST /api/login")
    try:
        payload = _serializer().loads(header[7:], max_age=TOKEN_MAX_AGE)
        user_id, version = payload["u"], payload["v"]
    except SignatureExpired:
        raise ApiError(401, "token_expired", "the sign-in has expired: sign in again") from None
    except (BadSignature, KeyError, TypeError):
        raise ApiError(401, "unauthorized", "the token is not valid") from None
    if not isinstance(user_id, int) or isinstance(user_id, bool) or not 1 <= user_id <= MAX_ID:
        raise ApiError(401, "unauthorized", "the token is not valid")
    user = get_session().get(StaffUser, user_id)
    if user is None or not user.active or user.token_version != version:
        raise ApiError(401, "unauthorized", "the token is no longer valid: sign in again")
    return user


def _user_json(user: StaffUser) -> dict:
    return {
        "id": user.id,
        "username": user.username,
        "role": user.role,
        "display_name": user.display_name,
        "lawyer_id": user.lawyer_id,
        "region_id": user.region_id,
    }


@bp.post("/login")
def login():
    """Username and password for a token; five wrong passwords in a row lock the account for a while."""
    data = body(("username", "password"))
    username, password = text_field(data, "username", 64), data["password"]
    if not isinstance(password, str) or not password or len(password) > 256:
        raise ApiError(400, "invalid_field", "password must be text of at most 256 characters")
    session = get_session()
    try:
        user = authenticate(session, username, password, now=utcnow())
    except LoginRefused as exc:
        session.commit()  # the failure count (and a lock) must be stored
        raise ApiError(401, "account_locked" if exc.locked else "login_refused", str(exc)) from None
    session.commit()
    return jsonify(token=issue_token(user), expires_in=TOKEN_MAX_AGE, user=_user_json(user))


@bp.get("/me")
def me():
    """The signed-in user."""
    only()
    return jsonify(_user_json(_user()))


# --- tickets ---------------------------------------------------------------------------------------


def _desk() -> Desk:
    return current_app.extensions["workerlaw.desk"]


def _iso(moment: datetime | None) -> str | None:
    return as_utc(moment).isoformat() if moment is not None else None


def _waiting_minutes(ticket: Ticket, now: datetime) -> int:
    """How long the worker waited, or has been waiting, for a lawyer's first reply."""
    end = ticket.first_response_at or ticket.closed_at or now
    return max(int((as_utc(end) - as_utc(ticket.created_at)).total_seconds() // 60), 0)


def _region_names(session, ids: set[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict(session.execute(select(Region.id, Region.name).where(Region.id.in_(wanted))).all())


def _ticket_json(ticket: Ticket, names: dict[int, str], now: datetime) -> dict:
    return {
        "id": ticket.id,
        "status": ticket.status,
        "urgent": ticket.urgent,
        "region_id": ticket.region_id,
        "region": names.get(ticket.region_id) if ticket.region_id is not None else None,
        "lawyer_id": ticket.lawyer_id,
        "question": ticket.question,
        "created_at": _iso(ticket.created_at),
        "claimed_at": _iso(ticket.claimed_at),
        "first_response_at": _iso(ticket.first_response_at),
        "closed_at": _iso(ticket.closed_at),
        "outcome": ticket.outcome,
        "category": ticket.category,
        "waiting_minutes": _waiting_minutes(ticket, now),
    }


def _one(session, ticket: Ticket, now: datetime) -> dict:
    return _ticket_json(ticket, _region_names(session, {ticket.region_id}), now)


def _ticket(ticket_id: int) -> tuple[StaffUser, Ticket]:
    """The signed-in user and the ticket, which must be theirs to see (404 otherwise)."""
    user = _user()
    if ticket_id > MAX_ID:
        raise TicketError("没有这个咨询单", 404)
    return user, _desk().get(get_session(), user, ticket_id)


@bp.get("/tickets")
def tickets():
    """The queue: urgent first, then longest waiting (what the user may see, narrowed by `view`)."""
    only("status", "view")
    status = _choice("status", STATUSES, "open")
    view = _choice("view", VIEWS, "all")
    user = _user()
    session = get_session()
    found = _desk().queue(session, user, view=view, status=status)
    names = _region_names(session, {t.region_id for t in found})
    now = utcnow()
    return jsonify(items=[_ticket_json(t, names, now) for t in found])


def _transcript_json(messages: list[Message]) -> list[dict]:
    return [
        {
            "from": "worker" if m.direction == "in" else (m.author or "bot"),
            "type": m.msg_type,
            "text": m.content,
            "at": _iso(m.created_at),
            "delivery": m.delivery,
        }
        for m in messages
    ]


def _events_json(session, events: list[TicketEvent]) -> list[dict]:
    staff = {e.staff_id for e in events if e.staff_id is not None}
    names = (
        dict(
            session.execute(select(StaffUser.id, StaffUser.display_name).where(StaffUser.id.in_(staff))).all()
        )
        if staff
        else {}
    )
    return [
        {
            "kind": e.kind,
            "staff_id": e.staff_id,
            "by": names.get(e.staff_id),
            "text": e.text,
            "at": _iso(e.created_at),
        }
        for e in events
    ]


@bp.get("/tickets/<int:ticket_id>")
def ticket_detail(ticket_id: int):
    """One ticket with the case card, the whole transcript, its history and WeChat's sending budget."""
    only()
    _, ticket = _ticket(ticket_id)
    session, desk, now = get_session(), _desk(), utcnow()
    worker = session.get(Worker, ticket.worker_id)
    budget = desk.budget(session, worker, now=now)
    lawyer = session.get(Lawyer, ticket.lawyer_id) if ticket.lawyer_id is not None else None
    return jsonify(
        **_one(session, ticket, now),
        lawyer=lawyer.name if lawyer else None,
        channel=worker.channel,
        case_card=ticket.case_card or {},
        transcript=_transcript_json(desk.transcript(session, ticket)),
        events=_events_json(session, desk.events(session, ticket)),
        budget={
            "in_window": budget.in_window,
            "remaining": budget.remaining,
            "window_ends_at": _iso(budget.window_ends_at),
        },
    )


def _empty_body() -> None:
    """Action routes without parameters accept no body, or an empty JSON object."""
    if request.get_data(cache=True):
        body()


@bp.post("/tickets/<int:ticket_id>/claim")
def claim(ticket_id: int):
    """Take the ticket (lawyers only); 409 when another lawyer holds it."""
    _empty_body()
    user, ticket = _ticket(ticket_id)
    session, now = get_session(), utcnow()
    _desk().claim(session, user, ticket, now=now)
    session.commit()
    return jsonify(_one(session, ticket, now))


@bp.post("/tickets/<int:ticket_id>/reply")
def reply(ticket_id: int):
    """A reply to the worker: stored in the transcript, and sent the way WeChat allows (`delivery.via`:
    customer_service, subscription, or history — held until the worker writes again)."""
    text = text_field(body(("text",)), "text", MAX_REPLY_CHARS)
    user, ticket = _ticket(ticket_id)
    session, now = get_session(), utcnow()
    delivery = _desk().reply(session, user, ticket, text, now=now)
    session.commit()
    return jsonify(
        ticket=_one(session, ticket, now),
        message={"id": delivery.message.id, "text": delivery.message.content, "at": _iso(now)},
        delivery={"via": delivery.via},
    )


@bp.post("/tickets/<int:ticket_id>/transfer")
def transfer(ticket_id: int):
    """Hand the ticket to another lawyer (`lawyer_id`) or another region's queue (`region_id`)."""
    data = body(optional=("lawyer_id", "region_id", "reason"))
    lawyer_id, region_id = _id(data, "lawyer_id"), _id(data, "region_id")
    if (lawyer_id is None) == (region_id is None):
        raise ApiError(400, "invalid_field", "give exactly one of lawyer_id and region_id")
    reason = _optional_text(data, "reason", MAX_REASON_CHARS)
    user, ticket = _ticket(ticket_id)
    session, now = get_session(), utcnow()
    _desk().transfer(session, user, ticket, now=now, lawyer_id=lawyer_id, region_id=region_id, reason=reason)
    session.commit()
    return jsonify(_one(session, ticket, now))


@bp.post("/tickets/<int:ticket_id>/note")
def note(ticket_id: int):
    """An internal note on the ticket (never shown to the worker)."""
    text = text_field(body(("text",)), "text", MAX_NOTE_CHARS)
    user, ticket = _ticket(ticket_id)
    session, now = get_session(), utcnow()
    event = _desk().note(session, user, ticket, text, now=now)
    session.commit()
    return jsonify(id=event.id, kind=event.kind, text=event.text, at=_iso(event.created_at))


@bp.post("/tickets/<int:ticket_id>/close")
def close(ticket_id: int):
    """Close with an outcome (and the labour category, or null); the worker is asked to rate the help."""
    data = body(("outcome",), ("category",))
    outcome = data["outcome"]
    if outcome not in OUTCOMES:
        raise ApiError(400, "invalid_field", f"outcome must be one of {', '.join(OUTCOMES)}")
    category = data.get("category")
    categories = current_app.extensions["workerlaw.engine"].kb.labour_categories
    if category is not None and category not in categories:
        raise ApiError(400, "invalid_field", f"category must be null or one of {', '.join(categories)}")
    user, ticket = _ticket(ticket_id)
    session, now = get_session(), utcnow()
    _desk().close(session, user, ticket, outcome=outcome, category=category, now=now)
    session.commit()
    return jsonify(_one(session, ticket, now))


@bp.post("/tickets/<int:ticket_id>/refer")
def refer(ticket_id: int):
    """Refer the case for legal aid, to the district union above the worker's region (for review)."""
    reason = text_field(body(("reason",)), "reason", MAX_REASON_CHARS)
    user, ticket = _ticket(ticket_id)
    session, now = get_session(), utcnow()
    referral = _desk().refer(session, user, ticket, reason=reason, now=now)
    session.commit()
    return jsonify(
        id=referral.id,
        ticket_id=referral.ticket_id,
        district_id=referral.district_id,
        status=referral.status,
        reason=referral.reason,
        created_at=_iso(referral.created_at),
    )


@bp.get("/openapi.json")
def openapi():
    """The staff API's OpenAPI document."""
    return jsonify(SPEC)
