"""Inbound WeChat messages, processed exactly once: the worker, the message row, the 人次 and the reply.

`Inbox.handle` runs inside the caller's transaction. It looks for an earlier copy of the delivery
(same channel and dedup_key, a unique pair) and answers a repeat with the reply stored with the first
copy; otherwise the message row is inserted first of all. A copy arriving at the same moment in another
process waits on the unique index until the first transaction commits, then fails to insert: the
caller rolls back and calls `handle` again (the webhook does, once), which finds the first copy. A
first transaction that died leaves nothing, so the retry is processed afresh: nothing accepted is lost
and nothing is counted twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import outbox
from bot.consultations import Consultations
from bot.conversation import Reply, Responder, State
from bot.engine import ANSWER, CLARIFY, ESCALATE, URGENT, Decision, Option
from bot.occupation import Occupation
from bot.passive import fit
from bot.ratelimit import worker_over_limit
from bot.sql import add_or_get, begin_write
from bot.tickets import Desk
from models import BOT, INBOUND, OUTBOUND, Consultation, Message, Ticket, Worker

STATION_SCENE_PREFIX = "qrscene_"
END_WORDS = frozenset({"结束", "结束咨询", "再见", "拜拜"})
MORE_WORDS = frozenset({"继续", "后面", "下一页", "更多内容"})
# Message types that carry no question the bot can read; they get a polite reply saying what it can do.
UNREADABLE = frozenset(
    {"image", "location", "link", "video", "shortvideo", "file", "music", "news", "miniprogrampage"}
)
# Bytes kept free in a reply for the one-time question about the worker's job (its links included).
ASK_BUDGET = 900
RESOLUTION = {ANSWER: "answered", CLARIFY: "clarified", ESCALATE: "escalated", URGENT: "urgent"}
# The welcome message's topic menu: digit -> category (the same order as in `welcome` of replies.yaml).
MENU_TOPICS = (
    "wage_arrears",
    "work_injury",
    "labor_contract",
    "social_insurance",
    "overtime_leave",
    "platform_work",
    "dispute_process",
)


@dataclass(frozen=True)
class Inbound:
    """One delivery from WeChat, parsed; `dedup_key` is MsgId, or FromUserName+CreateTime+Event."""

    channel: str
    openid: str
    msg_type: str
    dedup_key: str
    created_at: datetime
    content: str | None = None
    media_id: str | None = None
    event: str | None = None
    event_key: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Handled:
    """The outcome: the reply text (None: answer `success`) and whether this was a repeated delivery."""

    reply: str | None
    duplicate: bool = False
    needs_lawyer: bool = False
    consultation_id: int | None = None
    ask_worker_type: bool = False  # the reply carries the one-time question about the worker's job


class Inbox:
    """Turns deliveries into replies; one per process, stateless between calls."""

    def __init__(
        self,
        responder: Responder,
        *,
        idle_timeout: timedelta = timedelta(minutes=30),
        passive_limit: int = 2048,
        desk: Desk | None = None,
        per_minute: int = 20,
    ):
        self.responder = responder
        self.desk = desk or Desk(responder.templates)
        self.templates = responder.templates
        self.occupation = Occupation(responder.engine.kb.worker_types, responder.templates)
        self.consultations = Consultations(idle_timeout=idle_timeout)
        self.passive_limit = passive_limit
        self.per_minute = per_minute  # messages a worker may have the bot answer per minute (0: no limit)

    def handle(
        self,
        session: Session,
        msg: Inbound,
        *,
        now: datetime,
        passive: bool = True,
        choices_inline: bool = True,
    ) -> Handled:
        """Process `msg` once (see the module docstring); the caller commits.

        `passive`: the reply goes back in the HTTP response (official account). Otherwise (the
        mini-program's push, which only takes `success`) it is queued in the outbox, in the same
        transaction, and sent through the customer-service API by the scheduler's job.
        `choices_inline`: the one-time question about the worker's job is written into the reply; an
        app that shows its own buttons (the JSON API) passes False and reads `Handled.ask_worker_type`.
        """
        text = (msg.content or "").strip() if msg.msg_type in ("text", "voice") else ""
        # The engine's decision depends on the text alone: made before SQLite's write lock, so several
        # processes run the engine at once and only the database work queues.
        decided = self.responder.decide(text) if text else None
        # SQLite: writers queue here, so the lookup below sees any earlier copy and nothing can commit
        # one meanwhile. PostgreSQL: a copy being processed concurrently holds the unique index; our
        # insert (flushed by the next statement) waits for it, then fails, and the caller retries.
        begin_write(session)
        worker = self._worker(session, msg, now=now)
        first = session.execute(
            select(Message.reply, Message.consultation_id).where(
                Message.channel == msg.channel, Message.dedup_key == msg.dedup_key
            )
        ).first()
        if first is not None:
            return Handled(first.reply, duplicate=True, consultation_id=first.consultation_id)
        row = Message(
            channel=msg.channel,
            dedup_key=msg.dedup_key,
            direction=INBOUND,
            worker_id=worker.id,
            msg_type=msg.msg_type,
            event=msg.event,
            content=msg.content,
            media_id=msg.media_id,
            created_at=now,
        )
        session.add(row)
        worker.last_message_at = now
        if msg.msg_type != "event" and worker.has_tickets:
            # WeChat's window is open again: lawyer replies that waited for it leave now.
            self.desk.release_held(session, worker, now=now)
        learnt = bool(text) and self.occupation.learn(worker, text)
        handled = self._dispatch(session, worker, msg, row, text, decided, now=now)
        if learnt:
            self.occupation.stamp(session, worker, handled.consultation_id)
        if handled.ask_worker_type:
            question = self.occupation.question(worker, now=now)
            if choices_inline:
                handled = replace(handled, reply=f"{handled.reply}\n\n{question}")
        row.reply = handled.reply
        row.consultation_id = handled.consultation_id
        if handled.reply:
            # The transcript a lawyer reads holds both sides: the reply is a message of its own.
            session.add(
                Message(
                    channel=msg.channel,
                    dedup_key=f"reply|{msg.dedup_key}",
                    direction=OUTBOUND,
                    author=BOT,
                    worker_id=worker.id,
                    consultation_id=handled.consultation_id,
                    msg_type="text",
                    content=handled.reply,
                    created_at=now,
                )
            )
        if handled.reply and not passive:
            outbox.enqueue(
                session,
                channel=msg.channel,
                openid=msg.openid,
                text=handled.reply,
                dedup_key=f"reply|{msg.channel}|{msg.dedup_key}",
                now=now,
            )
        return handled

    def _worker(self, session: Session, msg: Inbound, *, now: datetime) -> Worker:
        query = select(Worker).where(Worker.channel == msg.channel, Worker.openid == msg.openid)
        worker = session.scalars(query).one_or_none()
        if worker is None:  # the same new worker's other message may win the race: then use its row
            worker = add_or_get(
                session, Worker(channel=msg.channel, openid=msg.openid, first_contact_at=now), query
            )
        return worker

    def _dispatch(
        self,
        session: Session,
        worker: Worker,
        msg: Inbound,
        row: Message,
        text: str,
        decided: Decision | None,
        *,
        now: datetime,
    ) -> Handled:
        if msg.msg_type == "event":
            return self._event(worker, msg)
        if msg.msg_type == "voice" and not text:
            # WeChat is retiring voice recognition: keep the recording for a lawyer, ask the worker to type.
            consultation = self.consultations.current(session, worker, now=now, open_new=True)
            self.consultations.record(consultation, resolution="escalated", now=now)
            return Handled(
                self.templates["voice_unrecognised"], needs_lawyer=True, consultation_id=consultation.id
            )
        if msg.msg_type in UNREADABLE:
            consultation = self.consultations.current(session, worker, now=now, open_new=False)
            return Handled(
                self.templates["unsupported"], consultation_id=consultation.id if consultation else None
            )
        if msg.msg_type not in ("text", "voice"):
            return Handled(self.templates["unsupported"])
        return self._question(session, worker, text, row, decided, now=now)

    def _question(
        self,
        session: Session,
        worker: Worker,
        text: str,
        row: Message,
        decided: Decision | None,
        *,
        now: datetime,
    ) -> Handled:
        compact = text.replace(" ", "")
        ticket = self.desk.open_ticket_of(session, worker) if worker.has_tickets else None
        if ticket is not None:
            return self._to_lawyer(session, worker, ticket, text, now=now)
        # The lookups of the usual path do not flush what is pending (the message row, the worker's
        # changes): everything then goes in one flush at the end, with the reply already on the row.
        unsaved = 1 if row in session.new else 0
        if worker_over_limit(session, worker, now=now, per_minute=self.per_minute, unsaved=unsaved):
            # The message is kept (a lawyer can read it); the bot just does not answer a flood.
            return Handled(self.templates["slow_down"])
        rated = self._rating(session, worker, compact, now=now)
        if rated is not None:
            return rated
        picked = self.occupation.choice(worker, text)
        if picked is not None:
            consultation = self.consultations.open_one(session, worker)
            consultation_id = consultation.id if consultation else None
            thanks = self.occupation.choose(session, worker, picked, consultation_id)
            return Handled(thanks, consultation_id=consultation_id)
        state = _load_state(worker.conversation)
        if compact in END_WORDS:
            closed = self.consultations.close_open(session, worker, now=now, reason="worker")
            worker.conversation = None
            return Handled(self.templates["goodbye"], consultation_id=closed.id if closed else None)
        if compact in MORE_WORDS and (worker.conversation or {}).get("more"):
            rest = worker.conversation["more"]
            shown, remainder = fit(rest, self.passive_limit, self.templates["more"])
            worker.conversation = {**worker.conversation, "more": remainder}
            consultation = self.consultations.current(session, worker, now=now, open_new=False)
            return Handled(shown, consultation_id=consultation.id if consultation else None)
        in_menu = (worker.conversation or {}).get("menu") and compact.isdigit()
        if in_menu and 1 <= int(compact) <= len(MENU_TOPICS):
            reply = self.responder.topic(MENU_TOPICS[int(compact) - 1])
        else:
            reply = self.responder.respond(text, state, decided=decided)
        if reply.decision.reason in ("empty", "menu"):
            # Neither an empty message nor browsing the topic menu is a consultation yet.
            worker.conversation = _dump_state(reply.state, more=None)
            return Handled(reply.text)
        with session.no_autoflush:
            consultation = self.consultations.current(session, worker, now=now, open_new=True)
        self.consultations.record(
            consultation, resolution=RESOLUTION[reply.decision.action], category=_category(reply), now=now
        )
        shown, remainder = fit(reply.text, self.passive_limit, self.templates["more"])
        worker.conversation = _dump_state(reply.state, more=remainder)
        if reply.needs_lawyer:
            _, handover = self.desk.escalate(
                session, worker, consultation, question=text, urgent=reply.decision.action == URGENT, now=now
            )
            shown = f"{shown}\n{handover}"
        ask = (
            reply.decision.action in (ANSWER, CLARIFY)
            and self.occupation.should_ask(worker)
            and len(shown.encode()) + ASK_BUDGET <= self.passive_limit
        )
        return Handled(
            shown, needs_lawyer=reply.needs_lawyer, consultation_id=consultation.id, ask_worker_type=ask
        )

    def _to_lawyer(
        self, session: Session, worker: Worker, ticket: Ticket, text: str, *, now: datetime
    ) -> Handled:
        """While a ticket is open the worker talks to the lawyer: intake answers first, then messages."""
        consultation = session.get(Consultation, ticket.consultation_id)
        if consultation is not None:
            consultation.last_activity_at = now
        if (worker.conversation or {}).get("intake") is not None:
            reply = self.desk.answer_intake(session, worker, ticket, text, now=now)
            return Handled(reply, needs_lawyer=True, consultation_id=ticket.consultation_id)
        self.desk.worker_wrote(session, ticket, text, now=now)
        return Handled(None, needs_lawyer=True, consultation_id=ticket.consultation_id)

    def _rating(self, session: Session, worker: Worker, compact: str, *, now: datetime) -> Handled | None:
        """After a lawyer closed the case the worker was asked for 1-5; a digit in reply is the rating."""
        asked = (worker.conversation or {}).get("rate")
        if asked is None:
            return None
        worker.conversation = None
        if compact not in ("1", "2", "3", "4", "5"):
            return None
        consultation = session.get(Consultation, asked)
        if consultation is None or consultation.worker_id != worker.id:
            return None
        consultation.rating, consultation.rated_at = int(compact), now
        return Handled(self.templates["rate_thanks"], consultation_id=consultation.id)

    def _event(self, worker: Worker, msg: Inbound) -> Handled:
        event = (msg.event or "").lower()
        key = msg.event_key or ""
        if event in ("subscribe", "scan"):
            station = key[len(STATION_SCENE_PREFIX) :] if key.startswith(STATION_SCENE_PREFIX) else key
            if station:
                worker.station_code = station[:64]
            worker.subscribed = True
            worker.conversation = {"menu": True}
            return Handled(
                self.templates["welcome"] if event == "subscribe" else self.templates["welcome_back"]
            )
        if event == "unsubscribe":
            worker.subscribed = False
            return Handled(None)
        if event == "user_enter_tempsession":
            worker.conversation = {"menu": True}
            return Handled(self.templates["welcome"])
        if event == "click":
            topic = self.templates.get("menu", {}).get(key)
            return Handled(topic or self.templates["welcome"])
        return Handled(None)  # VIEW and other events need no reply


def _category(reply: Reply) -> str | None:
    if reply.decision.action == URGENT:
        return "urgent"
    return reply.decision.category


def _load_state(raw: dict | None) -> State:
    raw = raw or {}
    options = tuple(Option(**o) for o in raw.get("options", []) if isinstance(o, dict))
    return State(options=options, last_faq_id=raw.get("last_faq_id"))


def _dump_state(state: State, *, more: str | None) -> dict:
    data: dict = {
        "options": [{"faq_id": o.faq_id, "category": o.category, "title": o.title} for o in state.options],
        "last_faq_id": state.last_faq_id,
    }
    if more:
        data["more"] = more
    return data
