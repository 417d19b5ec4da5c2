"""`/api/mp`: the mini-program's own JSON API — browse the FAQ, sign in, ask, history, rating.

Errors are `{"error", "message"}` with a 4xx (503 when WeChat itself is unreachable). Views validate
input and call into `bot`; the ask door goes through the same `Inbox` as the webhook.
"""

from __future__ import annotations

import uuid

from flask import Blueprint, Flask, current_app, jsonify, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from werkzeug.exceptions import HTTPException

from bot import notify, workers
from bot.catalog import Catalog
from bot.errors import WeChatError, WeChatRejected
from bot.inbox import Inbound
from handlers.db import get_session
from handlers.json_api import ApiError, body, http_error, json_errors, only, text_field
from handlers.openapi import SPEC
from models import Worker, as_utc, utcnow

bp = Blueprint("api", __name__, url_prefix="/api/mp")
MAX_QUERY_CHARS = 200
MAX_PER_PAGE = 50


json_errors(bp)


def init_app(app: Flask) -> None:
    """Answer in the API's error shape also for URLs under /api/ (this API's and the staff API's) that
    match no route (no blueprint sees those), and let the rest of the site keep Flask's HTML errors."""

    @app.errorhandler(404)
    @app.errorhandler(405)
    def _unrouted(exc: HTTPException):
        if request.path.startswith("/api/"):
            return http_error(exc)
        return exc


def _catalog() -> Catalog:
    return Catalog(current_app.extensions["workerlaw.engine"])


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9) or not low <= int(raw) <= high:
        raise ApiError(400, "invalid_parameter", f"{name} must be a whole number from {low} to {high}")
    return int(raw)


@bp.get("/topics")
def topics():
    """The topics (labour categories) with short descriptions."""
    only()
    return jsonify(topics=_catalog().topics())


@bp.get("/faq")
def faq_list():
    """FAQ entries of a topic, or matching `q` through the engine's index; paginated."""
    only("category", "q", "page", "per_page")
    catalog = _catalog()
    category = request.args.get("category") or None
    if category and category not in catalog.kb.labour_categories:
        raise ApiError(400, "unknown_category", f"no topic called {category!r}")
    query = (request.args.get("q") or "").strip() or None
    if query and len(query) > MAX_QUERY_CHARS:
        raise ApiError(400, "query_too_long", f"q is limited to {MAX_QUERY_CHARS} characters")
    page = catalog.search(
        category=category,
        query=query,
        page=_int_arg("page", 1, 1, 10_000),
        per_page=_int_arg("per_page", 20, 1, MAX_PER_PAGE),
    )
    items = [{"id": e.id, "category": e.category, "title": e.title, "answer": e.answer} for e in page.entries]
    return jsonify(items=items, total=page.total, page=page.page, per_page=page.per_page)


@bp.get("/faq/<faq_id>")
def faq_detail(faq_id: str):
    """One entry in full, with the text of every article it cites."""
    only()
    catalog = _catalog()
    entry = catalog.entry(faq_id)
    if entry is None:
        raise ApiError(404, "not_found", f"no FAQ entry {faq_id!r}")
    return jsonify(
        id=entry.id,
        category=entry.category,
        title=entry.title,
        answer=entry.answer,
        detail=entry.detail,
        regional=entry.regional,
        citations=catalog.citations(entry),
    )


TOKEN_MAX_AGE = 7 * 24 * 3600
MAX_TEXT_CHARS = 500


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="workerlaw-mp-login")


def _worker() -> Worker:
    """The signed-in worker (Authorization: Bearer <token from /login>)."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        raise ApiError(401, "unauthorized", "sign in first: POST /api/mp/login")
    try:
        worker_id = _serializer().loads(header[7:], max_age=TOKEN_MAX_AGE)["w"]
    except SignatureExpired:
        raise ApiError(401, "token_expired", "the sign-in has expired: sign in again") from None
    except (BadSignature, KeyError, TypeError):
        raise ApiError(401, "unauthorized", "the token is not valid") from None
    worker = get_session().get(Worker, worker_id)
    if worker is None or worker.erased_at is not None:
        raise ApiError(401, "unauthorized", "the token is not valid")
    return worker


@bp.post("/login")
def login():
    """Exchange a `wx.login` code for a signed token (the session_key never leaves the server)."""
    code = text_field(body(("code",)), "code", 128)
    gateway = current_app.extensions["workerlaw.wechat"]
    if gateway is None:
        raise ApiError(503, "wechat_not_configured", "WeChat sign-in is not configured on this server")
    session = get_session()
    try:
        worker = workers.sign_in(session, gateway, code, now=utcnow())
    except WeChatRejected:
        raise ApiError(401, "invalid_code", "the wx.login code is invalid or already used") from None
    except WeChatError:
        raise ApiError(503, "wechat_unavailable", "WeChat did not answer; try again shortly") from None
    session.commit()
    return jsonify(token=issue_token(worker), expires_in=TOKEN_MAX_AGE)


def issue_token(worker: Worker) -> str:
    """A signed, expiring bearer token for `worker` (the API's and the mobile page's sign-in)."""
    return _serializer().dumps({"w": worker.id})


def oauth_configured() -> bool:
    """Whether the official account's web OAuth signs workers in on the mobile page."""
    return bool(current_app.config["WECHAT_OAUTH_APPID"] and current_app.config["WECHAT_OAUTH_APPSECRET"])


@bp.get("/login/methods")
def login_methods():
    """How the mobile page signs in: WeChat's web OAuth when configured, else a one-time code."""
    only()
    oauth = oauth_configured()
    return jsonify(oauth_url="/m/oauth/start" if oauth else None, code=not oauth)


@bp.post("/login/code")
def login_code():
    """Sign in on the mobile page with a one-time code staff issued (`flask --app app web-code`)."""
    code = text_field(body(("code",)), "code", 32)
    if oauth_configured():
        raise ApiError(403, "code_login_disabled", "sign in with WeChat: one-time codes are off here")
    session = get_session()
    worker = workers.redeem_code(session, code, now=utcnow())
    if worker is None:
        raise ApiError(401, "invalid_code", "the code is wrong, expired or already used")
    session.commit()
    return jsonify(token=issue_token(worker), expires_in=TOKEN_MAX_AGE)


@bp.post("/ask")
def ask():
    """A question through the same engine, conversation and 人次 rules as the webhook."""
    text = text_field(body(("text",)), "text", MAX_TEXT_CHARS)
    return _ask(_worker(), text)


def _ask(worker: Worker, text: str):
    if worker.privacy_version != _privacy()[0]:
        raise ApiError(403, "privacy_not_accepted", "please read and accept the privacy notice first")
    session = get_session()
    now = utcnow()
    msg = Inbound(
        channel=worker.channel,
        openid=worker.openid,
        msg_type="text",
        dedup_key=f"api|{uuid.uuid4().hex}",
        created_at=now,
        content=text,
    )
    inbox = current_app.extensions["workerlaw.inbox"]
    handled = inbox.handle(session, msg, now=now, choices_inline=False)
    session.commit()
    options = (worker.conversation or {}).get("options", [])
    return jsonify(
        reply=handled.reply,
        consultation_id=handled.consultation_id,
        needs_lawyer=handled.needs_lawyer,
        options=[{"number": i, "faq_id": o["faq_id"], "title": o["title"]} for i, o in enumerate(options, 1)],
        worker_type_choices=_worker_types() if handled.ask_worker_type else None,
    )


def _worker_types() -> list[dict]:
    types = current_app.extensions["workerlaw.engine"].kb.worker_types
    return [{"code": t.code, "label": t.label} for t in types.types]


@bp.get("/worker-types")
def worker_types():
    """The kinds of work a worker can pick (one tap), for the union's counts."""
    only()
    return jsonify(items=_worker_types())


@bp.put("/me/worker-type")
def set_worker_type():
    """My kind of work, as I picked it; my open consultation counts with it too."""
    data = body(("type",))
    inbox = current_app.extensions["workerlaw.inbox"]
    if not isinstance(data["type"], str) or data["type"] not in inbox.occupation.types.by_code:
        raise ApiError(400, "invalid_field", "type must be one of GET /api/mp/worker-types")
    worker = _worker()
    session = get_session()
    open_one = inbox.consultations.open_one(session, worker)
    inbox.occupation.choose(session, worker, data["type"], open_one.id if open_one else None)
    session.commit()
    return jsonify(type=worker.worker_type)


def _consultation_json(item) -> dict:
    return {
        "id": item.id,
        "channel": item.channel,
        "category": item.category,
        "resolution": item.resolution,
        "opened_at": as_utc(item.opened_at).isoformat(),
        "closed_at": as_utc(item.closed_at).isoformat() if item.closed_at else None,
        "rating": item.rating,
    }


@bp.get("/consultations")
def my_consultations():
    """My consultations on every channel, newest first."""
    only()
    worker = _worker()
    return jsonify(items=[_consultation_json(c) for c in workers.history(get_session(), worker)])


def _mine(consultation_id: int, worker: Worker | None = None):
    item = workers.consultation(get_session(), worker or _worker(), consultation_id)
    if item is None:
        raise ApiError(404, "not_found", f"no consultation {consultation_id} of yours")
    return item


@bp.get("/consultations/<int:consultation_id>")
def consultation_detail(consultation_id: int):
    """One consultation with its transcript (the worker's messages and every reply)."""
    only()
    item = _mine(consultation_id)
    messages = [
        {
            "from": "worker" if m.direction == "in" else (m.author or "bot"),
            "type": m.msg_type,
            "text": m.content,
            "at": as_utc(m.created_at).isoformat(),
        }
        for m in workers.transcript(get_session(), item)
    ]
    return jsonify(**_consultation_json(item), messages=messages)


@bp.post("/consultations/<int:consultation_id>/rating")
def rate(consultation_id: int):
    """Rate the help received, 1 to 5 stars."""
    stars = body(("stars",))["stars"]
    if not isinstance(stars, int) or isinstance(stars, bool) or not 1 <= stars <= 5:
        raise ApiError(400, "invalid_field", "stars must be a whole number from 1 to 5")
    item = _mine(consultation_id)
    workers.rate(item, stars, now=utcnow())
    get_session().commit()
    return jsonify(_consultation_json(item))


def _privacy() -> tuple[str, str]:
    replies = current_app.extensions["workerlaw.engine"].kb.replies
    return str(replies["privacy_version"]), replies["privacy_notice"]


@bp.get("/privacy")
def privacy_notice():
    """The privacy notice a worker accepts before the first question."""
    only()
    version, text = _privacy()
    return jsonify(version=version, text=text)


@bp.post("/privacy")
def privacy_accept():
    """Accept the current privacy notice (stored with its version and time)."""
    version = text_field(body(("version",)), "version", 16)
    current, _ = _privacy()
    if version != current:
        raise ApiError(409, "privacy_outdated", f"the current notice is version {current}; read it again")
    worker = _worker()
    workers.accept_privacy(worker, version, now=utcnow())
    get_session().commit()
    return jsonify(version=version, accepted_at=as_utc(worker.privacy_accepted_at).isoformat())


@bp.delete("/me")
def erase_me():
    """Erase my personal data and message texts; the anonymous counts stay in the reports."""
    worker = _worker()
    session = get_session()
    blanked = workers.erase(session, worker, now=utcnow())
    session.commit()
    return jsonify(erased=True, messages_blanked=blanked)


@bp.post("/consultations/<int:consultation_id>/messages")
def add_message(consultation_id: int):
    """A follow-up in one of my open consultations (through the same Inbox as any question)."""
    text = text_field(body(("text",)), "text", MAX_TEXT_CHARS)
    worker = _worker()
    item = _mine(consultation_id, worker)
    if item.closed_at is not None:
        raise ApiError(409, "consultation_closed", "this consultation is closed; ask a new question instead")
    return _ask(worker, text)


MAX_TEMPLATE_IDS = 3  # wx.requestSubscribeMessage asks for at most 3 templates at once


def _reply_template():
    return current_app.extensions["workerlaw.reply_template"]


@bp.get("/subscriptions")
def subscriptions():
    """The template to request with wx.requestSubscribeMessage, and how many grants of it I hold."""
    only()
    worker = _worker()
    template = _reply_template()
    if template is None:
        return jsonify(template_id=None, unused=0)
    return jsonify(
        template_id=template.template_id,
        unused=notify.unused_grants(get_session(), worker, template.template_id),
    )


@bp.post("/subscriptions")
def subscribe():
    """Record the templates the worker accepted in wx.requestSubscribeMessage (one message each)."""
    ids = body(("template_ids",))["template_ids"]
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise ApiError(400, "invalid_field", "template_ids must be a non-empty list of template ids")
    if len(ids) > MAX_TEMPLATE_IDS:
        raise ApiError(400, "field_too_long", f"at most {MAX_TEMPLATE_IDS} template ids at once")
    template = _reply_template()
    known = {template.template_id} if template else set()
    if unknown := sorted(set(ids) - known):
        raise ApiError(400, "unknown_template", f"not a template of this service: {', '.join(unknown)}")
    worker = _worker()
    session = get_session()
    notify.grant(session, worker, ids, now=utcnow())
    session.commit()
    return jsonify(
        template_id=template.template_id, unused=notify.unused_grants(session, worker, template.template_id)
    )


@bp.get("/openapi.json")
def openapi():
    """The API's OpenAPI document."""
    return jsonify(SPEC)
