"""Who may do what: every route of the app (`app.url_map`), for every kind of user, table-driven.

`ROUTES` maps each (rule, method) the app serves to its access policy and to a valid-looking request; a
route missing from it (or listed but gone) fails `test_every_route_has_a_policy`. Each route that acts
on something of a region is tried on region A's object and on the sibling district D2's object.

The organisation: 市总工会 (city) > 东区 (D1) > 甲街道 (A), and 市总工会 > 西区 (D2). Lawyer A serves A,
lawyer B serves D2; a union admin of D1 and one of D2; an admin; and a worker of the mini-program, signed
in. Everything is made the real way: a ticket in A and one in D2 by workers asking the Inbox for a person,
each claimed by its region's lawyer and referred for legal aid (so each district has a referral and its
union admin a notice), a record in each district, a shift, a weekly pattern and a holiday in each.

For each (route, object, principal) the test checks the status class (anonymous: 401 on the API, a
redirect to the sign-in page on the console; 403 for a role that may not; 404 for another region's
object), that no response carries another region's data (marker strings in the tickets, referrals,
records and holidays of each side, and links to objects the principal may not see), and that a refused
request changed nothing in the database (a fingerprint of every table). Console POSTs carry the CSRF
token read from a page, as a browser's would.
"""

from __future__ import annotations

import re
import time as clock
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import time, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from app import create_app
from bot import activities, workers
from bot.inbox import Inbound
from bot.roster import CHINA
from bot.staff import hash_password
from handlers.api import issue_token as worker_token
from handlers.staff_api import issue_token as staff_token
from models import Ticket, Worker, utcnow
from models.db import Model
from models.org import Holiday, Lawyer, LawyerRegion, Region, Shift, StaffUser, WeeklyShift
from models.ticket import Notice
from tests.scratch_db import database_kinds, empty_database_url
from tests.wechat_standin import RecordingGateway

PASSWORD = "correct-horse-1"
TEMPLATE_ID = "tmpl-reply"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

STAFF = ("lawyer_a", "lawyer_b", "union_d1", "union_d2", "admin")
PRINCIPALS = ("anonymous", *STAFF, "worker")
MIRROR = {"lawyer_a": "lawyer_b", "lawyer_b": "lawyer_a", "union_d1": "union_d2", "union_d2": "union_d1"}

# Strings that exist only in one side's data: its ticket's question, its referral's reason, its record's
# note and its holiday's name. A response to a principal must never hold the other side's.
MARKERS = {"A": ("QXTA", "QXFA", "QXRA", "QXHA"), "B": ("QXTB", "QXFB", "QXRB", "QXHB")}
TICKET_MARKERS = {"QXTA", "QXFA", "QXTB", "QXFB"}  # what a lawyer of the side may read
SIDE_OF = {"lawyer_a": "A", "union_d1": "A", "lawyer_b": "B", "union_d2": "B"}


def allowed_markers(principal: str) -> set[str]:
    if principal == "admin":
        return set(MARKERS["A"] + MARKERS["B"])
    side = SIDE_OF.get(principal)
    if side is None:
        return set()
    mine = set(MARKERS[side])
    return mine & TICKET_MARKERS if principal.startswith("lawyer") else mine


# --- outcomes ----------------------------------------------------------------------------------------

OK = "ok"  # allowed: 2xx (a console form: a redirect, and no error shown)
LOGIN = "login"  # not signed in: 401 JSON on the API, a redirect to the sign-in page on the console
FORBIDDEN = "forbidden"  # 403: the role may not
HIDDEN = "hidden"  # 404: not the principal's to see (or nothing there)
REFUSED = "refused"  # console: back to the page with the refusal shown, nothing changed
NOOP = "noop"  # accepted, but it touches nothing of anyone else's: nothing changed
BAD_LOGIN = "bad_login"  # wrong credentials: 401
CHANGING = {OK}  # the only outcome allowed to change the database


def everyone(outcome: str) -> dict[str, str]:
    return dict.fromkeys(PRINCIPALS, outcome)


def staff(**overrides: str) -> dict[str, str]:
    """Anonymous and worker sent to sign in; staff OK unless overridden."""
    return {"anonymous": LOGIN, "worker": LOGIN, **dict.fromkeys(STAFF, OK), **overrides}


PUBLIC = everyone(OK)
STAFF_ONLY = staff()
ADMINS = staff(lawyer_a=FORBIDDEN, lawyer_b=FORBIDDEN)
# Side A's object (side B's is the mirror image: lawyer A <-> lawyer B, union D1 <-> union D2).
TICKET = staff(lawyer_b=HIDDEN, union_d2=HIDDEN)
CLAIM_API = staff(lawyer_b=HIDDEN, union_d2=HIDDEN, union_d1=FORBIDDEN, admin=FORBIDDEN)
CLAIM_CONSOLE = staff(lawyer_b=HIDDEN, union_d2=HIDDEN, union_d1=REFUSED, admin=REFUSED)
REGION = staff(lawyer_a=FORBIDDEN, lawyer_b=FORBIDDEN, union_d2=FORBIDDEN)
RECORD = staff(lawyer_a=FORBIDDEN, lawyer_b=FORBIDDEN, union_d2=HIDDEN)
REVIEW = staff(lawyer_a=FORBIDDEN, lawyer_b=FORBIDDEN, union_d2=HIDDEN)
ROSTER_CHANGE = staff(lawyer_a=FORBIDDEN, lawyer_b=FORBIDDEN, union_d2=REFUSED)
NOTICE_READ = staff(lawyer_a=NOOP, lawyer_b=NOOP, union_d2=NOOP, admin=NOOP)
WORKER_ONLY = {**everyone(LOGIN), "worker": OK}
STAFF_LOGIN = {**dict.fromkeys(STAFF, OK), "anonymous": BAD_LOGIN, "worker": BAD_LOGIN}


def mirrored(policy: dict[str, str]) -> dict[str, str]:
    return {MIRROR.get(p, p): outcome for p, outcome in policy.items()}


# --- the world the requests act on -------------------------------------------------------------------


@dataclass
class World:
    """The app, its seeded objects (ids by side), and a fingerprint of the whole database."""

    app: Any
    ids: dict[str, Any] = field(default_factory=dict)
    baseline: Any = None
    dirty: bool = True
    password_hash: str = field(default_factory=lambda: hash_password(PASSWORD))

    @property
    def sessions(self):
        return self.app.extensions["workerlaw.sessions"]

    def ready(self) -> None:
        """Seeded, and as seeded (a request that changed anything leaves the world to be rebuilt)."""
        if self.dirty:
            self.reset()
            self.seed()
            self.baseline = self.fingerprint()
            self.dirty = False

    def reset(self) -> None:
        with self.sessions() as s:
            for table in reversed(Model.metadata.sorted_tables):
                s.execute(table.delete())
            s.commit()

    def fingerprint(self) -> dict[str, list]:
        with self.sessions() as s:
            return {
                t.name: [tuple(r) for r in s.execute(select(t).order_by(*t.primary_key.columns))]
                for t in Model.metadata.sorted_tables
            }

    def seed(self) -> None:
        app, now = self.app, utcnow()
        inbox, desk = app.extensions["workerlaw.inbox"], app.extensions["workerlaw.desk"]
        today = now.astimezone(CHINA).date()
        ids: dict[str, Any] = {}
        with self.sessions() as s:
            city = Region(code="city", name="市总工会", level="city")
            s.add(city)
            s.flush()
            d1 = Region(code="d1", name="东区", level="district", parent_id=city.id)
            d2 = Region(code="d2", name="西区", level="district", parent_id=city.id)
            s.add_all([d1, d2])
            s.flush()
            town = Region(code="ta", name="甲街道", level="township", parent_id=d1.id)
            s.add(town)
            s.flush()
            lawyers = {"A": Lawyer(name="甲律师", firm="甲所"), "B": Lawyer(name="乙律师", firm="乙所")}
            s.add_all(lawyers.values())
            s.flush()
            s.add_all(
                [
                    LawyerRegion(lawyer_id=lawyers["A"].id, region_id=town.id),
                    LawyerRegion(lawyer_id=lawyers["B"].id, region_id=d2.id),
                ]
            )
            users = {
                "lawyer_a": StaffUser(role="lawyer", lawyer_id=lawyers["A"].id),
                "lawyer_b": StaffUser(role="lawyer", lawyer_id=lawyers["B"].id),
                "union_d1": StaffUser(role="union_admin", region_id=d1.id),
                "union_d2": StaffUser(role="union_admin", region_id=d2.id),
                "admin": StaffUser(role="admin"),
            }
            for name, user in users.items():
                user.username, user.display_name, user.password_hash = name, name, self.password_hash
            s.add_all(users.values())
            s.flush()
            ids.update(
                city=city.id,
                district={"A": d1.id, "B": d2.id},
                region={"A": town.id, "B": d2.id},  # where each side's ticket, record and roster live
                lawyer={"A": lawyers["A"].id, "B": lawyers["B"].id},
                users={name: (u.id, u.token_version) for name, u in users.items()},
                ticket={},
                consultation={},
                referral={},
                record={},
                notice={},
                shift={},
                weekly={},
                holiday={},
            )
            for side, code, holder in (("A", "ta", "lawyer_a"), ("B", "d2", "lawyer_b")):
                openid = f"oWorker{side}"
                s.add(Worker(channel="oa", openid=openid, region_code=code, first_contact_at=now))
                s.flush()
                handled = inbox.handle(s, _text(openid, f"转人工 QXT{side}"), now=now)
                assert handled.needs_lawyer
                ticket = s.scalars(
                    select(Ticket).where(Ticket.consultation_id == handled.consultation_id)
                ).one()
                desk.claim(s, users[holder], ticket, now=now)
                referral = desk.refer(s, users[holder], ticket, reason=f"申请法律援助 QXF{side}", now=now)
                record = activities.create(
                    s,
                    users["admin"],
                    region_id=ids["region"][side],
                    kind="leaflets",
                    values={"day": today.isoformat(), "copies": 10, "note": f"QXR{side}"},
                    now=now,
                )
                union = users["union_d1" if side == "A" else "union_d2"]
                notice = s.scalars(select(Notice.id).where(Notice.staff_id == union.id)).one()
                start = now + timedelta(days=2)
                shift = Shift(
                    region_id=ids["region"][side],
                    lawyer_id=lawyers[side].id,
                    role="primary",
                    starts_at=start,
                    ends_at=start + timedelta(hours=8),
                )
                weekly = WeeklyShift(
                    region_id=ids["region"][side],
                    lawyer_id=lawyers[side].id,
                    role="backup",
                    weekday=6,
                    start_time=time(3, 0),
                    end_time=time(3, 30),
                )
                holiday = Holiday(
                    day=today + timedelta(days=100), region_id=ids["region"][side], name=f"QXH{side}"
                )
                s.add_all([shift, weekly, holiday])
                s.flush()
                ids["ticket"][side], ids["consultation"][side] = ticket.id, ticket.consultation_id
                ids["referral"][side], ids["record"][side], ids["notice"][side] = (
                    referral.id,
                    record.id,
                    notice,
                )
                ids["shift"][side], ids["weekly"][side], ids["holiday"][side] = (
                    shift.id,
                    weekly.id,
                    holiday.id,
                )
            worker = Worker(channel="mp", openid="oMiniOwn", first_contact_at=now)
            s.add(worker)
            s.flush()
            workers.accept_privacy(worker, str(inbox.templates["privacy_version"]), now=now)
            asked = inbox.handle(
                s, _text("oMiniOwn", "工伤认定要多长时间", channel="mp"), now=now, passive=False
            )
            assert not asked.needs_lawyer  # a ticket of no region would show up in the admin's queue
            ids["own_consultation"], ids["worker"] = asked.consultation_id, worker.id
            ids["web_code"] = workers.issue_code(s, now=now, ttl=timedelta(hours=1))
            ids["faq"] = app.extensions["workerlaw.engine"].kb.faq[0].id
            s.commit()
        with app.test_request_context():
            with self.sessions() as s:
                ids["tokens"] = {
                    name: staff_token(s.get(StaffUser, uid)) for name, (uid, _) in ids["users"].items()
                }
                ids["tokens"]["worker"] = worker_token(s.get(Worker, ids["worker"]))
        self.ids = ids

    def client(self, principal: str):
        """A test client for `principal`: the staff's console cookie and API token, the worker's token."""
        client = self.app.test_client()
        token = self.ids["tokens"].get(principal)
        if token:
            client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        if principal in STAFF:
            uid, version = self.ids["users"][principal]
            with client.session_transaction() as cookie:
                cookie["staff_id"], cookie["staff_tv"], cookie["staff_at"] = uid, version, int(clock.time())
        return client


def _text(openid: str, content: str, *, channel: str = "oa") -> Inbound:
    now = utcnow()
    return Inbound(
        channel=channel,
        openid=openid,
        msg_type="text",
        dedup_key=f"msg|{uuid.uuid4().hex}",
        created_at=now,
        content=content,
    )


def csrf(client, signed_in: bool) -> str:
    """The CSRF token of the client's session, read from a console page as a browser would."""
    page = client.get("/console/notices" if signed_in else "/console/login").get_data(as_text=True)
    found = CSRF.search(page)
    assert found, "no CSRF field on the page"
    return found.group(1)


# --- the table ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """A route's policy for side A's object (side B's is its mirror), the sides to try, and the request:
    `build(world, side, principal)` -> (path, keyword arguments for the test client)."""

    policy: dict[str, str]
    build: Callable[[World, str | None, str], tuple[str, dict]]
    sides: tuple[str | None, ...] = (None,)
    policy_b: dict[str, str] | None = None  # when side B is not the mirror image of side A


def path(template: str, **query: Any) -> Callable[[World, str | None, str], tuple[str, dict]]:
    """A request to `template` formatted with the side's ids ({ticket}, {record}, ...), and `query`."""

    def build(world: World, side: str | None, principal: str) -> tuple[str, dict]:
        values = {k: (v.get(side, v) if isinstance(v, dict) and side else v) for k, v in world.ids.items()}
        args = {k: (v(world, side) if callable(v) else v) for k, v in query.items()}
        return template.format(**values), {"query_string": args} if args else {}

    return build


def body(template: str, make: Callable[[World, str | None, str], dict], *, form: bool = False):
    """A request with a JSON body (or, for the console, a form) made by `make(world, side, principal)`."""

    def build(world: World, side: str | None, principal: str) -> tuple[str, dict]:
        target, _ = path(template)(world, side, principal)
        data = make(world, side, principal)
        return target, {"data": data} if form else {"json": data}

    return build


def today(*_: Any) -> str:
    return utcnow().astimezone(CHINA).date().isoformat()


def china(days: float) -> str:
    return (utcnow() + timedelta(days=days)).astimezone(CHINA).strftime("%Y-%m-%dT%H:%M")


def district(world: World, side: str | None) -> int:
    return world.ids["district"][side]


def credentials(world: World, side: str | None, principal: str) -> dict:
    if principal in STAFF:
        return {"username": principal, "password": PASSWORD}
    return {"username": "nobody", "password": "wrong-password-1"}


def holder(world: World, side: str | None, principal: str) -> dict:
    return {"lawyer_id": world.ids["lawyer"][side]}


def record_values(world: World, side: str | None, principal: str) -> dict:
    return {"region_id": world.ids["region"][side], "kind": "leaflets", "day": today(), "copies": 3}


def record_form(world: World, side: str | None, principal: str) -> dict:
    return {"kind": "leaflets", "region_id": world.ids["region"][side], "day": today(), "copies": "7"}


def shift_form(world: World, side: str | None, principal: str) -> dict:
    ids = world.ids
    return {
        "region_id": ids["region"][side],
        "lawyer_id": ids["lawyer"][side],
        "role": "primary",
        "start": china(5),
        "end": china(5.2),
    }


def weekly_form(world: World, side: str | None, principal: str) -> dict:
    ids = world.ids
    return {
        "region_id": ids["region"][side],
        "lawyer_id": ids["lawyer"][side],
        "role": "primary",
        "weekday": "2",
        "start": "09:00",
        "end": "12:00",
    }


def holiday_form(world: World, side: str | None, principal: str) -> dict:
    day = (utcnow() + timedelta(days=200)).astimezone(CHINA).date().isoformat()
    return {"region_id": world.ids["region"][side], "day": day, "name": "调休"}


def fixed(data: dict) -> Callable[..., dict]:
    return lambda *_: dict(data)


def privacy_version(world: World, side: str | None, principal: str) -> dict:
    return {"version": str(world.app.extensions["workerlaw.inbox"].templates["privacy_version"])}


SIDES = ("A", "B")
OWN_OTHER = ("own", "other")


def worker_consultation(template: str, make: Callable[..., dict] | None = None):
    """A request on the worker's own consultation (side `own`) or another worker's (side `other`)."""

    def build(world: World, side: str | None, principal: str) -> tuple[str, dict]:
        cid = world.ids["own_consultation"] if side == "own" else world.ids["consultation"]["A"]
        target = template.format(consultation=cid)
        return (target, {"json": make(world, side, principal)}) if make else (target, {})

    return build


ROUTES: dict[tuple[str, str], Route] = {
    # Outside the console and the APIs: public, or WeChat's (signed) push URL.
    ("/healthz", "GET"): Route(PUBLIC, path("/healthz")),
    ("/wechat", "GET"): Route(everyone(FORBIDDEN), path("/wechat")),
    ("/wechat", "POST"): Route(everyone(FORBIDDEN), path("/wechat")),
    ("/m/", "GET"): Route(PUBLIC, path("/m/")),
    ("/m/oauth/start", "GET"): Route(PUBLIC, path("/m/oauth/start")),
    ("/m/oauth/callback", "GET"): Route(PUBLIC, path("/m/oauth/callback", code="x", state="y")),
    ("/m/static/<path:filename>", "GET"): Route(PUBLIC, path("/m/static/app.css")),
    ("/static/<path:filename>", "GET"): Route(everyone(HIDDEN), path("/static/app.css")),
    # The worker's API.
    ("/api/mp/topics", "GET"): Route(PUBLIC, path("/api/mp/topics")),
    ("/api/mp/faq", "GET"): Route(PUBLIC, path("/api/mp/faq", q="工资")),
    ("/api/mp/faq/<faq_id>", "GET"): Route(PUBLIC, lambda w, *_: (f"/api/mp/faq/{w.ids['faq']}", {})),
    ("/api/mp/login", "POST"): Route(PUBLIC, body("/api/mp/login", fixed({"code": "abc"}))),
    ("/api/mp/login/methods", "GET"): Route(PUBLIC, path("/api/mp/login/methods")),
    ("/api/mp/login/code", "POST"): Route(
        PUBLIC, body("/api/mp/login/code", lambda w, *_: {"code": w.ids["web_code"]})
    ),
    ("/api/mp/privacy", "GET"): Route(PUBLIC, path("/api/mp/privacy")),
    ("/api/mp/privacy", "POST"): Route(WORKER_ONLY, body("/api/mp/privacy", privacy_version)),
    ("/api/mp/worker-types", "GET"): Route(PUBLIC, path("/api/mp/worker-types")),
    ("/api/mp/openapi.json", "GET"): Route(PUBLIC, path("/api/mp/openapi.json")),
    ("/api/mp/ask", "POST"): Route(WORKER_ONLY, body("/api/mp/ask", fixed({"text": "加班费怎么算"}))),
    ("/api/mp/me/worker-type", "PUT"): Route(
        WORKER_ONLY, body("/api/mp/me/worker-type", fixed({"type": "rider"}))
    ),
    ("/api/mp/me", "DELETE"): Route(WORKER_ONLY, path("/api/mp/me")),
    ("/api/mp/subscriptions", "GET"): Route(WORKER_ONLY, path("/api/mp/subscriptions")),
    ("/api/mp/subscriptions", "POST"): Route(
        WORKER_ONLY, body("/api/mp/subscriptions", fixed({"template_ids": [TEMPLATE_ID]}))
    ),
    ("/api/mp/consultations", "GET"): Route(WORKER_ONLY, path("/api/mp/consultations")),
    ("/api/mp/consultations/<int:consultation_id>", "GET"): Route(
        WORKER_ONLY,
        worker_consultation("/api/mp/consultations/{consultation}"),
        OWN_OTHER,
        {**everyone(LOGIN), "worker": HIDDEN},
    ),
    ("/api/mp/consultations/<int:consultation_id>/rating", "POST"): Route(
        WORKER_ONLY,
        worker_consultation("/api/mp/consultations/{consultation}/rating", fixed({"stars": 5})),
        OWN_OTHER,
        {**everyone(LOGIN), "worker": HIDDEN},
    ),
    ("/api/mp/consultations/<int:consultation_id>/messages", "POST"): Route(
        WORKER_ONLY,
        worker_consultation("/api/mp/consultations/{consultation}/messages", fixed({"text": "还有一个问题"})),
        OWN_OTHER,
        {**everyone(LOGIN), "worker": HIDDEN},
    ),
    # The staff API.
    ("/api/login", "POST"): Route(STAFF_LOGIN, body("/api/login", credentials)),
    ("/api/me", "GET"): Route(STAFF_ONLY, path("/api/me")),
    ("/api/openapi.json", "GET"): Route(PUBLIC, path("/api/openapi.json")),
    ("/api/tickets", "GET"): Route(STAFF_ONLY, path("/api/tickets", status="any")),
    ("/api/tickets/<int:ticket_id>", "GET"): Route(TICKET, path("/api/tickets/{ticket}"), SIDES),
    ("/api/tickets/<int:ticket_id>/claim", "POST"): Route(
        CLAIM_API, path("/api/tickets/{ticket}/claim"), SIDES
    ),
    ("/api/tickets/<int:ticket_id>/reply", "POST"): Route(
        TICKET, body("/api/tickets/{ticket}/reply", fixed({"text": "您好，请提供劳动合同。"})), SIDES
    ),
    ("/api/tickets/<int:ticket_id>/transfer", "POST"): Route(
        TICKET, body("/api/tickets/{ticket}/transfer", holder), SIDES
    ),
    ("/api/tickets/<int:ticket_id>/note", "POST"): Route(
        TICKET, body("/api/tickets/{ticket}/note", fixed({"text": "内部备注"})), SIDES
    ),
    ("/api/tickets/<int:ticket_id>/close", "POST"): Route(
        TICKET, body("/api/tickets/{ticket}/close", fixed({"outcome": "answered"})), SIDES
    ),
    ("/api/tickets/<int:ticket_id>/refer", "POST"): Route(
        TICKET, body("/api/tickets/{ticket}/refer", fixed({"reason": "需要法律援助"})), SIDES
    ),
    ("/api/reports/summary", "GET"): Route(REGION, path("/api/reports/summary", region=district), SIDES),
    ("/api/reports/form.<fmt>", "GET"): Route(REGION, path("/api/reports/form.csv", region=district), SIDES),
    ("/api/records/kinds", "GET"): Route(STAFF_ONLY, path("/api/records/kinds")),
    ("/api/records", "GET"): Route(REGION, path("/api/records", region=district), SIDES),
    ("/api/records", "POST"): Route(REGION, body("/api/records", record_values), SIDES),
    ("/api/records/<int:record_id>", "GET"): Route(RECORD, path("/api/records/{record}"), SIDES),
    ("/api/records/<int:record_id>", "PUT"): Route(
        RECORD, body("/api/records/{record}", lambda *_: {"day": today(), "copies": 7}), SIDES
    ),
    ("/api/records/<int:record_id>", "DELETE"): Route(RECORD, path("/api/records/{record}"), SIDES),
    # The console.
    ("/console/login", "GET"): Route(PUBLIC, path("/console/login")),
    ("/console/login", "POST"): Route(STAFF_LOGIN, body("/console/login", credentials, form=True)),
    ("/console/logout", "POST"): Route(everyone(LOGIN), path("/console/logout")),
    ("/console/static/<path:filename>", "GET"): Route(PUBLIC, path("/console/static/console.css")),
    ("/console/", "GET"): Route(STAFF_ONLY, path("/console/", view="all", status="open")),
    ("/console/notices", "GET"): Route(STAFF_ONLY, path("/console/notices")),
    ("/console/notices/read", "POST"): Route(
        NOTICE_READ,
        body("/console/notices/read", lambda w, s, _: {"notice_id": w.ids["notice"][s]}, form=True),
        SIDES,
    ),
    ("/console/tickets/<int:ticket_id>", "GET"): Route(TICKET, path("/console/tickets/{ticket}"), SIDES),
    ("/console/tickets/<int:ticket_id>/claim", "POST"): Route(
        CLAIM_CONSOLE, path("/console/tickets/{ticket}/claim"), SIDES
    ),
    ("/console/tickets/<int:ticket_id>/reply", "POST"): Route(
        TICKET, body("/console/tickets/{ticket}/reply", fixed({"text": "您好"}), form=True), SIDES
    ),
    ("/console/tickets/<int:ticket_id>/transfer", "POST"): Route(
        TICKET, body("/console/tickets/{ticket}/transfer", holder, form=True), SIDES
    ),
    ("/console/tickets/<int:ticket_id>/note", "POST"): Route(
        TICKET, body("/console/tickets/{ticket}/note", fixed({"text": "备注"}), form=True), SIDES
    ),
    ("/console/tickets/<int:ticket_id>/close", "POST"): Route(
        TICKET, body("/console/tickets/{ticket}/close", fixed({"outcome": "answered"}), form=True), SIDES
    ),
    ("/console/tickets/<int:ticket_id>/refer", "POST"): Route(
        TICKET, body("/console/tickets/{ticket}/refer", fixed({"reason": "需要法律援助"}), form=True), SIDES
    ),
    ("/console/referrals", "GET"): Route(ADMINS, path("/console/referrals")),
    ("/console/referrals/<int:referral_id>/review", "POST"): Route(
        REVIEW, body("/console/referrals/{referral}/review", fixed({"decision": "reject"}), form=True), SIDES
    ),
    ("/console/roster", "GET"): Route(ADMINS, path("/console/roster")),
    ("/console/roster/shifts", "POST"): Route(
        ROSTER_CHANGE, body("/console/roster/shifts", shift_form, form=True), SIDES
    ),
    ("/console/roster/weekly", "POST"): Route(
        ROSTER_CHANGE, body("/console/roster/weekly", weekly_form, form=True), SIDES
    ),
    ("/console/roster/holidays", "POST"): Route(
        ROSTER_CHANGE, body("/console/roster/holidays", holiday_form, form=True), SIDES
    ),
    ("/console/roster/shifts/<int:row_id>/delete", "POST"): Route(
        ROSTER_CHANGE, path("/console/roster/shifts/{shift}/delete"), SIDES
    ),
    ("/console/roster/weekly/<int:row_id>/delete", "POST"): Route(
        ROSTER_CHANGE, path("/console/roster/weekly/{weekly}/delete"), SIDES
    ),
    ("/console/roster/holidays/<int:row_id>/delete", "POST"): Route(
        ROSTER_CHANGE, path("/console/roster/holidays/{holiday}/delete"), SIDES
    ),
    # A union admin asking for a sibling's region gets its own (the page shows no figures itself).
    ("/console/dashboard", "GET"): Route(ADMINS, path("/console/dashboard", region=district), SIDES),
    ("/console/dashboard/data", "GET"): Route(
        REGION, path("/console/dashboard/data", region=district), SIDES
    ),
    ("/console/reports/form.<fmt>", "GET"): Route(
        REGION, path("/console/reports/form.csv", region=district), SIDES
    ),
    # The list filtered to a sibling's region is empty for a union admin (not an error).
    ("/console/records", "GET"): Route(ADMINS, path("/console/records", region=district), SIDES),
    ("/console/records", "POST"): Route(REGION, body("/console/records", record_form, form=True), SIDES),
    ("/console/records/new", "GET"): Route(ADMINS, path("/console/records/new", kind="leaflets")),
    ("/console/records/<int:record_id>", "GET"): Route(RECORD, path("/console/records/{record}"), SIDES),
    ("/console/records/<int:record_id>", "POST"): Route(
        RECORD,
        body("/console/records/{record}", lambda w, s, _: {**record_form(w, s, _), "copies": "8"}, form=True),
        SIDES,
    ),
    ("/console/records/<int:record_id>/delete", "POST"): Route(
        RECORD, path("/console/records/{record}/delete"), SIDES
    ),
}


def expected(route: Route, side: str | None, principal: str) -> str:
    if side in ("B", "other"):
        return (route.policy_b or mirrored(route.policy))[principal]
    return route.policy[principal]


CASES = [(rule, method, side) for (rule, method), route in ROUTES.items() for side in route.sides]


# --- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=database_kinds())
def auth_database_url(request, tmp_path_factory):
    """Like conftest's `database_url`, one per module: the table runs hundreds of requests on one app."""
    with empty_database_url(request.param, tmp_path_factory.mktemp("authz")) as url:
        yield url


@pytest.fixture(scope="module")
def world(auth_database_url):
    config = {
        "TESTING": True,
        "SECRET_KEY": "test",
        "DATABASE_URL": auth_database_url,
        "WECHAT_REPLY_TEMPLATE_ID": TEMPLATE_ID,
        "IP_REQUESTS_PER_MINUTE": 0,  # hundreds of requests from one test address
    }
    application = create_app(config, wechat=RecordingGateway())
    yield World(application)
    application.extensions["workerlaw.db"].dispose()


# --- checks ------------------------------------------------------------------------------------------


def is_api(target: str) -> bool:
    return target.startswith("/api/")


def redirect_path(res) -> str:
    return urlsplit(res.headers.get("Location", "")).path


def check_status(world: World, client, target: str, method: str, res, outcome: str) -> None:
    status, text_ = res.status_code, res.get_data().decode("utf-8", "replace")
    where = f"{method} {target} -> {status} {text_[:300]!r}"
    assert status < 500, where
    if is_api(target) and status >= 400:
        body_ = res.get_json(silent=True)
        assert isinstance(body_, dict) and {"error", "message"} <= set(body_), where
    console = target.startswith("/console/")
    if outcome == OK:
        if console and method == "POST":
            assert status == 302 and redirect_path(res) != "/console/login", where
            assert 'class="flash error"' not in client.get(res.headers["Location"]).get_data(as_text=True), (
                where
            )
        elif target == "/console/login" or target.startswith("/m/oauth/"):
            assert status in (200, 302), where
        else:
            assert 200 <= status < 300, where
    elif outcome == LOGIN:
        if is_api(target):
            assert status == 401, where
        else:
            assert status == 302 and redirect_path(res) == "/console/login", where
    elif outcome == FORBIDDEN:
        assert status == 403, where
    elif outcome == HIDDEN:
        assert status == 404, where
    elif outcome == REFUSED:
        assert status == 302 and redirect_path(res) != "/console/login", where
        assert 'class="flash error"' in client.get(res.headers["Location"]).get_data(as_text=True), where
    elif outcome == NOOP:
        assert status in (200, 302) and redirect_path(res) != "/console/login", where
    elif outcome == BAD_LOGIN:
        assert status == 401, where
    else:  # pragma: no cover - a typo in the table
        raise AssertionError(f"unknown outcome {outcome}")


LINKS = {
    "ticket": re.compile(r"/console/tickets/(\d+)"),
    "record": re.compile(r"/console/records/(\d+)"),
    "referral": re.compile(r"/console/referrals/(\d+)/review"),
    "shift": re.compile(r"/console/roster/shifts/(\d+)/delete"),
    "weekly": re.compile(r"/console/roster/weekly/(\d+)/delete"),
    "holiday": re.compile(r"/console/roster/holidays/(\d+)/delete"),
}


def visible_ids(world: World, kind: str, principal: str) -> set[int]:
    """The ids of seeded objects of `kind` that `principal` may see."""
    sides = {"admin": ("A", "B")}.get(principal) or ((SIDE_OF[principal],) if principal in SIDE_OF else ())
    if kind in ("record", "referral", "shift", "weekly", "holiday") and principal.startswith("lawyer"):
        sides = ()
    return {world.ids[kind][s] for s in sides}


def check_no_leak(world: World, target: str, principal: str, res) -> None:
    """Nothing of a side the principal may not see: no marker, no link to one of its objects."""
    page = res.get_data().decode("utf-8", "replace")
    for marker in set(MARKERS["A"] + MARKERS["B"]) - allowed_markers(principal):
        assert marker not in page, f"{principal} got {marker} from {target}"
    if res.status_code in (301, 302, 303):
        return  # a redirect names only the address asked for (the sign-in page's `next`)
    seeded = {kind: set(world.ids[kind].values()) for kind in LINKS}
    for kind, pattern in LINKS.items():
        # A page of an object links to itself: that is judged by its status, not here.
        itself = {int(i) for i in pattern.findall(target)}
        linked = {int(i) for i in pattern.findall(page)} & seeded[kind] - itself
        assert linked <= visible_ids(world, kind, principal), (
            f"{principal} got links to {kind}s {linked} on {target}"
        )


# Pages and data that list regions: a union admin's never name the sibling district. (A ticket's page
# lists every region on purpose: a ticket may be transferred anywhere.)
REGION_NAMED = {
    "/console/roster",
    "/console/dashboard",
    "/console/dashboard/data",
    "/console/records",
    "/console/records/new",
    "/console/referrals",
    "/api/reports/summary",
}


def check_content(world: World, rule: str, method: str, side: str | None, principal: str, res) -> None:
    """What a list shows: exactly what the principal may see."""
    if res.status_code != 200:
        return
    ids = world.ids
    if (rule, method) == ("/api/tickets", "GET"):
        assert {i["id"] for i in res.get_json()["items"]} == visible_ids(world, "ticket", principal)
    elif (rule, method) == ("/console/", "GET"):
        found = {int(i) for i in LINKS["ticket"].findall(res.get_data(as_text=True))}
        assert found == visible_ids(world, "ticket", principal)
    elif (rule, method) == ("/api/records", "GET"):
        assert {i["id"] for i in res.get_json()["items"]} == {ids["record"][side]}
    elif (rule, method) == ("/console/records", "GET"):
        found = {int(i) for i in LINKS["record"].findall(res.get_data(as_text=True))}
        own = principal == "admin" or SIDE_OF.get(principal) == side
        assert found == ({ids["record"][side]} if own else set())
    elif (rule, method) == ("/console/referrals", "GET"):
        found = {int(i) for i in LINKS["referral"].findall(res.get_data(as_text=True))}
        assert found == visible_ids(world, "referral", principal)
    elif (rule, method) == ("/console/roster", "GET"):
        found = {int(i) for i in LINKS["shift"].findall(res.get_data(as_text=True))}
        assert found == visible_ids(world, "shift", principal)
    elif (rule, method) == ("/api/mp/consultations", "GET"):
        assert [i["id"] for i in res.get_json()["items"]] == [ids["own_consultation"]]
    elif rule in ("/api/reports/summary", "/console/dashboard/data"):
        assert res.get_json()["region"]["id"] == ids["district"][side], res.get_json()["region"]
    if rule in REGION_NAMED:
        other = {"union_d1": "西区", "union_d2": "东区"}.get(principal)
        assert other is None or other not in res.get_data(as_text=True), f"{principal} sees {other} on {rule}"


# --- the tests ---------------------------------------------------------------------------------------


def test_every_route_has_a_policy(world):
    """Every rule and method the app serves is in ROUTES, and ROUTES names nothing the app does not serve."""
    served = {
        (rule.rule, method)
        for rule in world.app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert served - set(ROUTES) == set(), "routes without an access policy in ROUTES"
    assert set(ROUTES) - served == set(), "ROUTES lists routes the app does not serve"


@pytest.mark.parametrize("principal", PRINCIPALS)
@pytest.mark.parametrize(
    ("rule", "method", "side"), CASES, ids=[f"{m} {r}" + (f" [{s}]" if s else "") for r, m, s in CASES]
)
def test_access(world, rule, method, side, principal):
    world.ready()
    route = ROUTES[(rule, method)]
    outcome = expected(route, side, principal)
    client = world.client(principal)
    target, kwargs = route.build(world, side, principal)
    if method != "GET" and target.startswith("/console/"):
        form = kwargs.pop("data", {})
        kwargs["data"] = {**form, "csrf_token": csrf(client, principal in STAFF)}
    before = world.baseline
    res = client.open(target, method=method, **kwargs)
    check_status(world, client, target, method, res, outcome)
    check_no_leak(world, target, principal, res)
    check_content(world, rule, method, side, principal, res)
    after = world.fingerprint()
    if after != before:
        world.dirty = True
        changed = sorted(name for name in after if after[name] != before[name])
        assert outcome in CHANGING and method != "GET", f"{method} {target} as {principal} changed {changed}"


CONSOLE_POSTS = sorted(
    r for r, m in ROUTES if m == "POST" and r.startswith("/console/") and r != "/console/login"
)


@pytest.mark.parametrize("rule", CONSOLE_POSTS)
def test_console_posts_without_the_csrf_token_are_refused(world, rule):
    """Even the admin's forms are refused without the session's CSRF token, and change nothing."""
    world.ready()
    route = ROUTES[(rule, "POST")]
    side = route.sides[0]
    target, kwargs = route.build(world, side, "admin")
    client = world.client("admin")
    for token in (None, "forged-token-" + "x" * 40):
        data = dict(kwargs.get("data", {}))
        if token:
            csrf(client, signed_in=True)  # the session has a token; the form carries another
            data["csrf_token"] = token
        res = client.post(target, data=data)
        assert res.status_code == 400, (target, res.status_code)
        assert world.fingerprint() == world.baseline


@pytest.mark.parametrize("principal", STAFF)
def test_signing_in_for_real_gives_the_same_identity(world, principal):
    """The table signs in by setting the session and issuing tokens; the real forms give the same."""
    world.ready()
    console = world.app.test_client()
    form = {"username": principal, "password": PASSWORD, "csrf_token": csrf(console, signed_in=False)}
    res = console.post("/console/login", data=form)
    assert res.status_code == 302 and redirect_path(res) == "/console/"
    assert console.get("/console/notices").status_code == 200
    api = world.app.test_client()
    token = api.post("/api/login", json={"username": principal, "password": PASSWORD}).get_json()["token"]
    me = api.get("/api/me", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert me["username"] == principal and me["id"] == world.ids["users"][principal][0]
    tickets = api.get("/api/tickets", headers={"Authorization": f"Bearer {token}"}).get_json()["items"]
    assert {t["id"] for t in tickets} == visible_ids(world, "ticket", principal)


def test_a_staff_token_is_not_a_worker_token_nor_the_reverse(world):
    world.ready()
    staff_client, worker_client = world.client("admin"), world.client("worker")
    assert staff_client.get("/api/mp/consultations").status_code == 401
    assert worker_client.get("/api/tickets").status_code == 401
    assert worker_client.get("/console/").status_code == 302
