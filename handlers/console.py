"""`/console/`: the web console of the volunteer lawyers and the union admins.

It owns the console's pages and forms only: sign-in and sign-out (the lock-out is `bot.staff`'s), the
ticket queue, a ticket (case card, whole transcript, events and internal notes, WeChat's 48-hour budget,
and claim / reply / transfer / note / close / legal-aid referral), the duty roster (union admins and
admins: who is on duty, dated shifts, weekly patterns, holidays), the review of legal-aid referrals, and
notices. Pages are rendered on the server (`templates/console/`), work on a phone, and carry no inline
script or style (CSP `default-src 'self'`); every form carries a CSRF token kept in the signed session
cookie. Views check the form and call into `bot` (`Desk`, `staff`, `roster`), which decides.
"""

from __future__ import annotations

import hmac
import secrets
import time as clock
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from functools import wraps
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask import session as cookie
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot import notify, roster_edit
from bot.roster import CHINA, Tree, next_start, on_duty
from bot.roster_edit import WEEKDAYS, RosterError
from bot.staff import LoginRefused, authenticate, visible_regions
from bot.tickets import Desk, TicketError
from handlers.db import get_session
from models import Consultation, Worker, as_utc, utcnow
from models.org import SHIFT_ROLES, Holiday, Lawyer, Region, Shift, StaffUser, WeeklyShift
from models.ticket import CLOSED, OUTCOMES, Referral, Ticket

bp = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder="templates",
    static_folder="static/console",
    static_url_path="/static",
)

SIGN_IN_MAX_AGE = 12 * 3600  # seconds a console sign-in lasts
CSP = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
MAX_REPLY = 600  # characters: a customer-service text message stays under WeChat's 2048 bytes
MAX_NOTE = 2000
MAX_REASON = 500
MAX_HOLIDAY_NAME = 64
MAX_ID = 2**31 - 1  # ids are 32-bit integers in PostgreSQL

VIEWS = {"mine": "我的", "regions": "我的地区", "unassigned": "待接单", "all": "全部"}
STATUSES = {"open": "未结束", "closed": "已结束"}
TICKET_STATUS = {"open": "待接单", "claimed": "处理中", "closed": "已结束"}
OUTCOME_NAMES = {"answered": "已解答", "legal_aid": "转法律援助", "arbitration": "转仲裁", "other": "其他"}
CARD_FIELDS = (
    ("employer", "单位或项目"),
    ("role", "工种"),
    ("amount", "涉及金额"),
    ("since", "开始时间"),
    ("evidence", "证据"),
)
EVENT_NAMES = {
    "created": "转人工",
    "claim": "接单",
    "reply": "答复",
    "transfer": "转交",
    "note": "内部备注",
    "close": "结案",
    "referral": "法律援助转介",
}
ROLE_NAMES = {"lawyer": "律师", "union_admin": "工会管理员", "admin": "系统管理员"}
SHIFT_ROLE_NAMES = {"primary": "主班", "backup": "备班"}
CHANNELS = {"oa": "公众号", "mp": "小程序", "web": "网页"}
DELIVERY_NAMES = {
    notify.CUSTOMER_SERVICE: "已排队通过客服消息发送",
    notify.SUBSCRIPTION: "已发订阅消息提醒",
    notify.HISTORY: "待咨询人下次发消息时送达",
}
REFERRAL_STATUS = {"pending": "待审核", "approved": "已批准", "rejected": "未批准"}
LEVELS = {"city": "市总工会", "district": "区县工会", "township": "乡镇（街道）", "park": "园区"}


class FormError(Exception):
    """Input the console refuses before calling into `bot`: shown to the user as it is."""


# --- plumbing: desk, user, CSRF, security headers --------------------------------------------------


def _desk() -> Desk:
    return current_app.extensions["workerlaw.desk"]


def _user() -> StaffUser | None:
    """The signed-in user: the cookie's id and token version must still match an active account."""
    if "console_user" in g:
        return g.console_user
    user = None
    uid, version, since = cookie.get("staff_id"), cookie.get("staff_tv"), cookie.get("staff_at")
    if (
        isinstance(uid, int)
        and isinstance(since, int | float)
        and 0 <= clock.time() - since < SIGN_IN_MAX_AGE
    ):
        found = get_session().get(StaffUser, uid)
        if found is not None and found.active and found.token_version == version:
            user = found
    g.console_user = user
    return user


def csrf_token() -> str:
    """The session's CSRF token (made on first use)."""
    token = cookie.get("csrf")
    if not isinstance(token, str) or len(token) < 32:
        token = cookie["csrf"] = secrets.token_urlsafe(32)
    return token


def _error(status: int, message: str):
    return render_template("console/error.html", status=status, message=message), status


@bp.before_request
def _guard():
    """Every POST carries the session's CSRF token; every page but sign-in needs a signed-in user."""
    if request.method == "POST":
        expected = cookie.get("csrf")
        given = request.form.get("csrf_token", "")
        if not isinstance(expected, str) or not given or not hmac.compare_digest(expected, given):
            return _error(400, "页面已过期或安全校验失败，请刷新页面后重试。")
    if any(isinstance(v, int) and v > MAX_ID for v in (request.view_args or {}).values()):
        return _error(404, "没有这条记录。")
    if request.endpoint in ("console.login", "console.static"):
        return None
    if _user() is None:
        if request.method == "GET":
            return redirect(url_for(".login", next=request.full_path.rstrip("?")))
        flash("登录已过期，请重新登录。", "error")
        return redirect(url_for(".login"))
    return None


@bp.after_request
def _headers(response):
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    if request.endpoint != "console.static":
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.app_template_filter("cn_time")
def _cn_time(moment: datetime | None) -> str:
    """A moment in China time: 11月23日 09:00."""
    if moment is None:
        return ""
    t = as_utc(moment).astimezone(CHINA)
    return f"{t.month}月{t.day}日 {t:%H:%M}"


def _waited(since: datetime | None, now: datetime) -> str:
    """How long since `since`, as a person says it: 8分钟, 3小时20分, 2天."""
    if since is None:
        return ""
    minutes = max(int((now - as_utc(since)).total_seconds() // 60), 0)
    if minutes < 60:
        return f"{minutes}分钟"
    if minutes < 24 * 60:
        hours, rest = divmod(minutes, 60)
        return f"{hours}小时{rest}分" if rest else f"{hours}小时"
    return f"{minutes // (24 * 60)}天"


@bp.context_processor
def _globals():
    user = g.get("console_user")
    unread = 0
    if user is not None:
        unread = sum(1 for n in _desk().notices(get_session(), user) if n.read_at is None)
    return {
        "csrf_token": csrf_token,
        "me": user,
        "unread": unread,
        "role_names": ROLE_NAMES,
        "is_admin": user is not None and user.role in ("union_admin", "admin"),
    }


def admins_only(view: Callable):
    """Union admins and admins; lawyers get 403."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if _user().role not in ("union_admin", "admin"):
            return _error(403, "只有工会管理员可以使用这个页面。")
        return view(*args, **kwargs)

    return wrapper


# --- form parsing (the HTTP boundary) ---------------------------------------------------------------


def _text(name: str, label: str, limit: int, *, required: bool = True) -> str:
    value = (request.form.get(name) or "").strip()
    if required and not value:
        raise FormError(f"请填写{label}。")
    if len(value) > limit:
        raise FormError(f"{label}不能超过{limit}个字。")
    return value


def _int(name: str, label: str, *, required: bool = True) -> int | None:
    raw = (request.form.get(name) or "").strip()
    if not raw:
        if required:
            raise FormError(f"请选择{label}。")
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        raise FormError(f"{label}不对，请重新选择。")
    return int(raw)


def _choice(name: str, label: str, allowed) -> str:
    value = (request.form.get(name) or "").strip()
    if value not in allowed:
        raise FormError(f"请选择{label}。")
    return value


def _china_datetime(name: str, label: str) -> datetime:
    """A `datetime-local` field read as China time, returned in UTC."""
    raw = (request.form.get(name) or "").strip()
    if not raw:
        raise FormError(f"请填写{label}。")
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise FormError(f"{label}的格式不对，请按 2026-01-31 09:00 的样子填写。") from None
    if moment.tzinfo is not None:
        raise FormError(f"{label}的格式不对，请按 2026-01-31 09:00 的样子填写。")
    if not 2000 <= moment.year <= 2100:
        raise FormError(f"{label}的年份不对。")
    return moment.replace(tzinfo=CHINA).astimezone(utcnow().tzinfo)


def _clock_time(name: str, label: str) -> time:
    raw = (request.form.get(name) or "").strip()
    try:
        value = time.fromisoformat(raw)
    except ValueError:
        raise FormError(f"{label}的格式不对，请按 09:00 的样子填写。") from None
    if value.tzinfo is not None:
        raise FormError(f"{label}的格式不对，请按 09:00 的样子填写。")
    return value


def _day(name: str, label: str) -> date:
    raw = (request.form.get(name) or "").strip()
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise FormError(f"{label}的格式不对，请按 2026-10-01 的样子填写。") from None


def _safe_next(target: str | None) -> str:
    """Only a path inside the console (no open redirect)."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and parts.path.startswith(bp.url_prefix + "/"):
            return target
    return url_for(".queue")


# --- sign-in ----------------------------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
def login():
    """The username and password form; a refusal (and the lock-out) is `bot.staff.authenticate`'s."""
    target = request.values.get("next")
    if request.method == "GET":
        if _user() is not None:
            return redirect(_safe_next(target))
        return render_template("console/login.html", next=target or "", username="")
    username = (request.form.get("username") or "").strip()[:64]
    password = request.form.get("password") or ""
    if not username or not password:
        return render_template(
            "console/login.html", next=target or "", username=username, error="请输入用户名和密码。"
        ), 400
    db = get_session()
    try:
        user = authenticate(db, username, password[:256], now=utcnow())
    except LoginRefused as exc:
        db.commit()  # the failure count and the lock-out are kept
        return render_template(
            "console/login.html", next=target or "", username=username, error=str(exc)
        ), 401
    db.commit()
    cookie.clear()  # a fresh session: no fixation, a new CSRF token
    cookie["staff_id"], cookie["staff_tv"], cookie["staff_at"] = (
        user.id,
        user.token_version,
        int(clock.time()),
    )
    csrf_token()
    return redirect(_safe_next(target))


@bp.post("/logout")
def logout():
    cookie.clear()
    flash("已退出登录。", "ok")
    return redirect(url_for(".login"))


# --- queue and ticket -------------------------------------------------------------------------------


@bp.get("/")
def queue():
    """Tickets, urgent first then longest waiting (the order is `Desk.queue`'s)."""
    user = _user()
    view = request.args.get("view") or ("mine" if user.lawyer_id is not None else "all")
    status = request.args.get("status") or "open"
    if view not in VIEWS or status not in STATUSES:
        return _error(400, "没有这个列表，请从导航进入。")
    db = get_session()
    tickets = _desk().queue(db, user, view=view, status=status)
    tree = Tree(db)
    now = utcnow()
    lawyers = _lawyer_names(db, {t.lawyer_id for t in tickets if t.lawyer_id})
    rows = [
        {
            "ticket": t,
            "region": tree.name.get(t.region_id, "未分配地区"),
            "waited": _waited(t.created_at, now),
            "excerpt": _excerpt(t.question),
            "status": TICKET_STATUS.get(t.status, t.status),
            "lawyer": lawyers.get(t.lawyer_id),
        }
        for t in tickets
    ]
    return render_template(
        "console/queue.html",
        rows=rows,
        views=_visible_views(user),
        view=view,
        statuses=STATUSES,
        status=status,
    )


def _visible_views(user: StaffUser) -> dict[str, str]:
    return {k: v for k, v in VIEWS.items() if k != "mine" or user.lawyer_id is not None}


def _excerpt(text: str | None, limit: int = 60) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[:limit] + "…"


def _lawyer_names(db: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {i: n for i, n in db.execute(select(Lawyer.id, Lawyer.name).where(Lawyer.id.in_(ids)))}


@bp.get("/tickets/<int:ticket_id>")
def ticket(ticket_id: int):
    """The case card, the whole transcript, events and notes, the budget, and the forms."""
    db, user, desk = get_session(), _user(), _desk()
    try:
        t = desk.get(db, user, ticket_id)
    except TicketError as exc:
        return _error(exc.status, str(exc))
    now = utcnow()
    worker = db.get(Worker, t.worker_id)
    consultation = db.get(Consultation, t.consultation_id)
    budget = desk.budget(db, worker, now=now)
    if budget.in_window:
        budget_text = f"48小时窗口内还可发送 {budget.remaining} 条"
        if budget.remaining == 0:
            budget_text += "，之后的答复将在咨询人下次发消息时送达"
    elif worker.channel not in notify.PUSH_CHANNELS:
        budget_text = "咨询人通过网页咨询，答复显示在其咨询记录中"
    else:
        budget_text = "已超出48小时窗口，答复将在咨询人下次发消息时送达"
    events = desk.events(db, t)
    staff_ids = {e.staff_id for e in events if e.staff_id}
    staff = {
        i: n
        for i, n in db.execute(
            select(StaffUser.id, StaffUser.display_name).where(StaffUser.id.in_(staff_ids))
        )
    }
    card = t.case_card or {}
    case_card = [(label, key in card, card.get(key)) for key, label in CARD_FIELDS]
    tree = Tree(db)
    engine = current_app.extensions["workerlaw.engine"]
    canned = []
    if t.question:
        canned = [m.entry for m in engine.index.search(t.question, limit=5) if m.entry.answerable]
    referral = db.scalars(select(Referral).where(Referral.ticket_id == t.id)).one_or_none()
    lawyers = db.scalars(select(Lawyer).where(Lawyer.active.is_(True)).order_by(Lawyer.name)).all()
    regions = db.scalars(select(Region).order_by(Region.id)).all()
    holder = db.get(Lawyer, t.lawyer_id) if t.lawyer_id else None
    return render_template(
        "console/ticket.html",
        t=t,
        status=TICKET_STATUS.get(t.status, t.status),
        region=tree.name.get(t.region_id, "未分配地区"),
        holder=holder,
        waited=_waited(t.created_at, now),
        channel=CHANNELS.get(worker.channel, worker.channel),
        consultation=consultation,
        case_card=case_card,
        transcript=desk.transcript(db, t),
        deliveries=DELIVERY_NAMES,
        events=[e for e in events if e.kind != "note"],
        notes=[e for e in events if e.kind == "note"],
        event_names=EVENT_NAMES,
        outcome_names=OUTCOME_NAMES,
        staff=staff,
        budget=budget,
        budget_text=budget_text,
        canned=canned,
        categories=[(k, engine.kb.categories[k]["name"]) for k in engine.kb.labour_categories],
        category_names={k: v["name"] for k, v in engine.kb.categories.items()},
        lawyers=lawyers,
        regions=regions,
        referral=referral,
        referral_status=REFERRAL_STATUS,
        closed=t.status == CLOSED,
        can_claim=t.status == "open" and t.lawyer_id is None and user.lawyer_id is not None,
        max_reply=MAX_REPLY,
    )


def _act(ticket_id: int, action: Callable[[Session, StaffUser, Ticket], str]):
    """Run a Desk action on a ticket the user may see; flash its outcome and go back to the ticket."""
    db, user = get_session(), _user()
    try:
        t = _desk().get(db, user, ticket_id)
        message = action(db, user, t)
        db.commit()
        flash(message, "ok")
    except TicketError as exc:
        db.rollback()
        if exc.status == 404:
            return _error(404, str(exc))
        flash(str(exc), "error")
    except FormError as exc:
        db.rollback()
        flash(str(exc), "error")
    return redirect(url_for(".ticket", ticket_id=ticket_id))


@bp.post("/tickets/<int:ticket_id>/claim")
def claim(ticket_id: int):
    def run(db, user, t):
        _desk().claim(db, user, t, now=utcnow())
        return "已接单。"

    return _act(ticket_id, run)


@bp.post("/tickets/<int:ticket_id>/reply")
def reply(ticket_id: int):
    def run(db, user, t):
        text = _text("text", "答复内容", MAX_REPLY)
        delivery = _desk().reply(db, user, t, text, now=utcnow())
        via = delivery.message.delivery or delivery.via  # a reply joined to a pending one leaves with it
        return "答复已保存，" + DELIVERY_NAMES.get(via, "已记录") + "。"

    return _act(ticket_id, run)


@bp.post("/tickets/<int:ticket_id>/transfer")
def transfer(ticket_id: int):
    def run(db, user, t):
        lawyer_id = _int("lawyer_id", "律师", required=False)
        region_id = _int("region_id", "地区", required=False)
        if (lawyer_id is None) == (region_id is None):
            raise FormError("请选择转给哪位律师，或转到哪个地区（二选一）。")
        reason = _text("reason", "转交说明", MAX_REASON, required=False) or None
        _desk().transfer(db, user, t, now=utcnow(), lawyer_id=lawyer_id, region_id=region_id, reason=reason)
        return "已转交。"

    return _act(ticket_id, run)


@bp.post("/tickets/<int:ticket_id>/note")
def note(ticket_id: int):
    def run(db, user, t):
        _desk().note(db, user, t, _text("text", "备注内容", MAX_NOTE), now=utcnow())
        return "备注已保存（咨询人看不到）。"

    return _act(ticket_id, run)


@bp.post("/tickets/<int:ticket_id>/close")
def close(ticket_id: int):
    def run(db, user, t):
        outcome = _choice("outcome", "处理结果", OUTCOMES)
        kb = current_app.extensions["workerlaw.engine"].kb
        category = (request.form.get("category") or "").strip() or None
        if category is not None and category not in kb.labour_categories:
            raise FormError("请选择问题类别。")
        _desk().close(db, user, t, outcome=outcome, category=category, now=utcnow())
        return f"已结案：{OUTCOME_NAMES[outcome]}。"

    return _act(ticket_id, run)


@bp.post("/tickets/<int:ticket_id>/refer")
def refer(ticket_id: int):
    def run(db, user, t):
        reason = _text("reason", "转介理由", MAX_REASON)
        _desk().refer(db, user, t, reason=reason, now=utcnow())
        return "已提交法律援助转介，等待区县工会审核。"

    return _act(ticket_id, run)


# --- legal-aid referrals ----------------------------------------------------------------------------


@bp.get("/referrals")
@admins_only
def referrals():
    """Referrals of the user's districts: pending first, then the latest decided."""
    db, user = get_session(), _user()
    regions = visible_regions(db, user)
    query = select(Referral)
    if regions is not None:
        query = query.where(Referral.district_id.in_(regions))
    pending = db.scalars(query.where(Referral.status == "pending").order_by(Referral.id)).all()
    decided = db.scalars(
        query.where(Referral.status != "pending").order_by(Referral.id.desc()).limit(50)
    ).all()
    tickets = {r.ticket_id: db.get(Ticket, r.ticket_id) for r in (*pending, *decided)}
    tree = Tree(db)
    lawyers = db.scalars(select(Lawyer).where(Lawyer.active.is_(True)).order_by(Lawyer.name)).all()
    return render_template(
        "console/referrals.html",
        pending=pending,
        decided=decided,
        tickets=tickets,
        region_names=tree.name,
        lawyers=lawyers,
        lawyer_names={lw.id: lw.name for lw in lawyers}
        | _lawyer_names(db, {r.assigned_lawyer_id for r in decided if r.assigned_lawyer_id}),
        referral_status=REFERRAL_STATUS,
    )


@bp.post("/referrals/<int:referral_id>/review")
@admins_only
def review_referral(referral_id: int):
    db, user = get_session(), _user()
    referral = db.get(Referral, referral_id)
    regions = visible_regions(db, user)
    if referral is None or (regions is not None and referral.district_id not in regions):
        return _error(404, "没有这个转介。")
    try:
        decision = _choice("decision", "审核结果", ("approve", "reject"))
        lawyer_id = _int("lawyer_id", "承办律师", required=decision == "approve")
        _desk().review_referral(
            db, user, referral, approve=decision == "approve", lawyer_id=lawyer_id, now=utcnow()
        )
        db.commit()
        flash("已批准，已通知承办律师。" if decision == "approve" else "已驳回。", "ok")
    except (TicketError, FormError) as exc:
        db.rollback()
        flash(str(exc), "error")
    return redirect(url_for(".referrals"))


# --- notices ----------------------------------------------------------------------------------------


@bp.get("/notices")
def notices():
    return render_template("console/notices.html", notices=_desk().notices(get_session(), _user()))


@bp.post("/notices/read")
def notices_read():
    """Mark one notice (`notice_id`) or all of the user's notices read."""
    db, user = get_session(), _user()
    try:
        notice_id = _int("notice_id", "通知", required=False)
    except FormError as exc:
        flash(str(exc), "error")
        return redirect(url_for(".notices"))
    _desk().mark_read(db, user, now=utcnow(), notice_id=notice_id)
    db.commit()
    return redirect(url_for(".notices"))


# --- roster -----------------------------------------------------------------------------------------


def _roster_regions(db: Session, user: StaffUser, tree: Tree) -> list[int]:
    """The regions the user manages, each after its parent (depth first)."""
    allowed = visible_regions(db, user, tree)
    out: list[int] = []

    def walk(parent):
        for rid in sorted(tree.children.get(parent, [])):
            if allowed is None or rid in allowed:
                out.append(rid)
            walk(rid)

    walk(None)
    return out


@bp.get("/roster")
@admins_only
def roster():
    """Per region: who is on duty now, when the next shift starts, the shifts, patterns and holidays."""
    db, user = get_session(), _user()
    tree = Tree(db)
    region_ids = _roster_regions(db, user, tree)
    now = utcnow()
    lawyers = db.scalars(select(Lawyer).where(Lawyer.active.is_(True)).order_by(Lawyer.name)).all()
    names = {lw.id: lw.name for lw in db.scalars(select(Lawyer))}
    shifts = db.scalars(
        select(Shift)
        .where(Shift.region_id.in_(region_ids), Shift.ends_at > now - timedelta(days=1))
        .order_by(Shift.starts_at)
    ).all()
    weekly = db.scalars(
        select(WeeklyShift)
        .where(WeeklyShift.region_id.in_(region_ids))
        .order_by(WeeklyShift.weekday, WeeklyShift.start_time)
    ).all()
    holidays = db.scalars(
        select(Holiday)
        .where(or_(Holiday.region_id.is_(None), Holiday.region_id.in_(region_ids)))
        .where(Holiday.day >= now.astimezone(CHINA).date() - timedelta(days=7))
        .order_by(Holiday.day)
    ).all()
    regions = []
    for rid in region_ids:
        duty = on_duty(db, rid, now)
        regions.append(
            {
                "id": rid,
                "name": tree.name[rid],
                "level": LEVELS.get(tree.level[rid], tree.level[rid]),
                "depth": len(tree.chain(rid)) - 1,
                "on_duty": [(names.get(d.lawyer_id, "?"), SHIFT_ROLE_NAMES[d.role], d.end) for d in duty],
                "next_start": None if duty else next_start(db, rid, now),
                "shifts": [s for s in shifts if s.region_id == rid],
                "weekly": [w for w in weekly if w.region_id == rid],
                "holidays": [h for h in holidays if h.region_id == rid],
            }
        )
    return render_template(
        "console/roster.html",
        regions=regions,
        lawyers=lawyers,
        names=names,
        weekdays=WEEKDAYS,
        shift_roles=SHIFT_ROLE_NAMES,
        global_holidays=[h for h in holidays if h.region_id is None],
        can_global=user.role == "admin",
        now_local=now.astimezone(CHINA),
    )


def _roster_change(change: Callable[[Session, StaffUser], str]):
    db, user = get_session(), _user()
    try:
        message = change(db, user)
        db.commit()
        flash(message, "ok")
    except (FormError, RosterError) as exc:
        db.rollback()
        flash(str(exc), "error")
    except IntegrityError:
        db.rollback()
        flash("保存失败：与已有记录重复或不符合规则，请检查后重试。", "error")
    return redirect(url_for(".roster"))


def _duty_fields() -> dict:
    """Who is on duty where, as a shift and a weekly pattern both ask it."""
    return {
        "region_id": _int("region_id", "地区"),
        "lawyer_id": _int("lawyer_id", "律师"),
        "role": _choice("role", "主班或备班", SHIFT_ROLES),
    }


@bp.post("/roster/shifts")
@admins_only
def add_shift():
    def change(db, user):
        return roster_edit.add_shift(
            db,
            user,
            **_duty_fields(),
            start=_china_datetime("start", "开始时间"),
            end=_china_datetime("end", "结束时间"),
        )

    return _roster_change(change)


@bp.post("/roster/weekly")
@admins_only
def add_weekly():
    def change(db, user):
        return roster_edit.add_weekly(
            db,
            user,
            **_duty_fields(),
            weekday=_int("weekday", "星期几"),
            start=_clock_time("start", "开始时间"),
            end=_clock_time("end", "结束时间"),
        )

    return _roster_change(change)


@bp.post("/roster/holidays")
@admins_only
def add_holiday():
    def change(db, user):
        everywhere = request.form.get("region_id") == "all"
        return roster_edit.add_holiday(
            db,
            user,
            region_id=None if everywhere else _int("region_id", "地区"),
            day=_day("day", "日期"),
            name=_text("name", "节假日名称", MAX_HOLIDAY_NAME),
        )

    return _roster_change(change)


@bp.post("/roster/shifts/<int:row_id>/delete")
@admins_only
def delete_shift(row_id: int):
    return _roster_change(lambda db, user: roster_edit.delete(db, user, "shift", row_id))


@bp.post("/roster/weekly/<int:row_id>/delete")
@admins_only
def delete_weekly(row_id: int):
    return _roster_change(lambda db, user: roster_edit.delete(db, user, "weekly", row_id))


@bp.post("/roster/holidays/<int:row_id>/delete")
@admins_only
def delete_holiday(row_id: int):
    return _roster_change(lambda db, user: roster_edit.delete(db, user, "holiday", row_id))


def init_app(app: Flask) -> None:
    """Register the console; its session cookie is HttpOnly and SameSite=Lax."""
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    if str(app.config.get("PUBLIC_BASE_URL") or "").startswith("https://"):
        app.config["SESSION_COOKIE_SECURE"] = True
    app.register_blueprint(bp)
