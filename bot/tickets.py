"""Tickets: what the bot hands to the on-duty lawyer, and everything lawyers and union admins do with it.

`Desk` works inside the caller's transaction. The bot escalates a consultation (`escalate`): a ticket
routed by the roster (the worker's region, else the unions above, else the city pool), the duty
lawyers notified, urgent ones also the region's union admins at once (三及时). Before the lawyer takes
over, the bot asks the worker a few intake questions (the case card); afterwards, while the ticket is
open, the worker's messages go to the lawyer, not the bot.

Claiming is one UPDATE ... WHERE lawyer_id IS NULL AND status = 'open': two lawyers never hold one
ticket. Replies go through `notify.deliver_reply` (customer-service message inside WeChat's 48 hours,
at most 5 there; a lawyer's lines sent within `join_delay` leave as one message; beyond the budget or
the window a reply waits, and goes out with the worker's next message).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from bot import notify, outbox
from bot.roster import Routing, Tree, home_region, local, route, served_regions
from bot.staff import visible_regions
from models import BOT, LAWYER, Consultation, Message, OutboxMessage, OutboxStatus, Worker, as_utc
from models.org import Lawyer, Region, StaffUser
from models.ticket import CLAIMED, CLOSED, OPEN, OUTCOMES, Notice, Referral, Ticket, TicketEvent

CS_BUDGET = 5  # customer-service messages WeChat allows after a user's message, within 48 hours
SKIP_WORDS = frozenset({"跳过", "不知道", "不清楚", "不想说", "略"})
RESOLUTION_OF_OUTCOME = {
    "answered": "lawyer",
    "other": "lawyer",
    "legal_aid": "referred",
    "arbitration": "referred",
}


class TicketError(Exception):
    """An operation the ticket's state or the user's rights do not allow; `status` is the HTTP status."""

    def __init__(self, message: str, status: int = 409):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Budget:
    """Where a worker stands in WeChat's customer-service rules right now."""

    in_window: bool
    remaining: int
    window_ends_at: datetime | None


@dataclass(frozen=True)
class TicketPolicy:
    """Timers and delays, from configuration."""

    backup_after: timedelta = timedelta(minutes=15)
    admin_after: timedelta = timedelta(minutes=60)
    join_delay: timedelta = timedelta(seconds=20)
    response_minutes: int = 30  # what the worker is told to expect when a lawyer is on duty


class Desk:
    """Ticket operations; one per process, stateless between calls."""

    def __init__(
        self,
        templates: dict[str, Any],
        *,
        policy: TicketPolicy | None = None,
        reply_template: notify.ReplyTemplate | None = None,
        notice_template: str | None = None,
    ):
        self.templates = templates
        self.policy = policy or TicketPolicy()
        self.reply_template = reply_template
        self.notice_template = notice_template

    # --- the worker's side -------------------------------------------------------------------------

    def open_ticket_of(self, session: Session, worker: Worker) -> Ticket | None:
        """The worker's ticket that is not closed, if any."""
        return session.scalars(
            select(Ticket)
            .where(Ticket.worker_id == worker.id, Ticket.status != CLOSED)
            .order_by(Ticket.id.desc())
        ).first()

    def escalate(
        self,
        session: Session,
        worker: Worker,
        consultation: Consultation,
        *,
        question: str,
        urgent: bool,
        now: datetime,
    ) -> tuple[Ticket, str]:
        """Open (or return) the consultation's ticket; returns it with what to tell the worker next."""
        existing = session.scalars(
            select(Ticket).where(Ticket.consultation_id == consultation.id)
        ).one_or_none()
        if existing is not None and existing.status != CLOSED:
            if urgent and not existing.urgent:
                existing.urgent = True
                self._alert_admins(session, existing, now=now)
            return existing, self.templates["intake_done"]
        tree = Tree(session)
        home = home_region(session, worker.station_code, worker.region_code, tree)
        routing = route(session, home, now, tree)
        ticket = Ticket(
            consultation_id=consultation.id,
            worker_id=worker.id,
            region_id=routing.region_id,
            status=OPEN,
            urgent=urgent,
            question=question[:2000],
            case_card={"home_region_id": home},
            created_at=now,
            last_worker_message_at=now,
            opened_on=consultation.opened_on,
            report_region_id=consultation.region_id,
        )
        session.add(ticket)
        session.flush()
        self.record(session, ticket, "created", None, question[:200], now)
        text = f"{'【紧急】' if urgent else ''}新咨询待接单：{question[:40]}"
        lawyers = [d.lawyer_id for d in routing.on_duty if d.role == "primary"] or [
            d.lawyer_id for d in routing.on_duty
        ]
        self.notify_staff(session, ticket, kind="new_ticket", text=text, lawyer_ids=lawyers, now=now)
        if urgent:
            self._alert_admins(session, ticket, now=now)
        handover = self.handover_text(routing)
        if urgent:
            return ticket, handover
        worker.conversation = {"intake": 0, "ticket": ticket.id}
        first = self.templates["intake_questions"][0]["ask"]
        return ticket, f"{handover}\n{self.templates['intake_intro']}\n{first}"

    def handover_text(self, routing: Routing) -> str:
        """What the worker is honestly told about when a lawyer will answer, with the hotlines."""
        if routing.on_duty:
            when = self.templates["handover_now"].format(minutes=self.policy.response_minutes)
        elif routing.next_start is not None:
            when = self.templates["handover_later"].format(when=local(routing.next_start))
        else:
            when = self.templates["handover_unknown"]
        return f"{when}\n{self.templates['hotlines']}"

    def answer_intake(
        self, session: Session, worker: Worker, ticket: Ticket, text: str, *, now: datetime
    ) -> str:
        """Store the worker's answer to the current intake question; return the next question or the end."""
        questions = self.templates["intake_questions"]
        step = int((worker.conversation or {}).get("intake", 0))
        if step < len(questions):
            card = dict(ticket.case_card or {})
            card[questions[step]["key"]] = None if text.strip() in SKIP_WORDS else text.strip()[:500]
            ticket.case_card = card
        step += 1
        ticket.last_worker_message_at = now
        if step < len(questions):
            worker.conversation = {"intake": step, "ticket": ticket.id}
            return questions[step]["ask"]
        worker.conversation = None
        return self.templates["intake_done"]

    def worker_wrote(self, session: Session, ticket: Ticket, text: str, *, now: datetime) -> None:
        """A message for the lawyer: the ticket shows it, and its holder gets a notice."""
        ticket.last_worker_message_at = now
        if ticket.lawyer_id is not None:
            self.notify_staff(
                session,
                ticket,
                kind="worker_wrote",
                text=f"咨询人补充：{text[:40]}",
                lawyer_ids=[ticket.lawyer_id],
                now=now,
            )

    def release_held(self, session: Session, worker: Worker, *, now: datetime) -> int:
        """The worker wrote: the window is open again, so replies that waited go out now, as one message."""
        if worker.channel not in notify.PUSH_CHANNELS:
            return 0
        held = list(
            session.scalars(
                select(Message)
                .where(
                    Message.worker_id == worker.id,
                    Message.delivery == notify.HISTORY,
                    Message.author == LAWYER,
                )
                .order_by(Message.id)
            )
        )
        if not held:
            return 0
        text = "\n".join(m.content or "" for m in held if m.content)
        outbox.enqueue(
            session,
            channel=worker.channel,
            openid=worker.openid,
            text=text,
            dedup_key=f"held|{held[0].id}|{held[-1].id}",
            now=now,
        )
        for m in held:
            m.delivery = notify.CUSTOMER_SERVICE
        return len(held)

    # --- the lawyer's side -------------------------------------------------------------------------

    def visible(self, session: Session, user: StaffUser, ticket: Ticket) -> bool:
        """Whether `user` may see the ticket: its region is theirs, or they hold it."""
        if user.lawyer_id is not None and ticket.lawyer_id == user.lawyer_id:
            return True
        regions = visible_regions(session, user)
        return regions is None or ticket.region_id in regions

    def get(self, session: Session, user: StaffUser, ticket_id: int) -> Ticket:
        """The ticket, or TicketError 404 when it does not exist or is not the user's to see."""
        ticket = session.get(Ticket, ticket_id)
        if ticket is None or not self.visible(session, user, ticket):
            raise TicketError("没有这个咨询单", 404)
        return ticket

    def queue(
        self, session: Session, user: StaffUser, *, view: str = "all", status: str = "open"
    ) -> list[Ticket]:
        """Tickets for the console: urgent first, then longest waiting. `view`: mine, regions, unassigned,
        all (everything the user may see); `status`: open (not closed), closed, or any."""
        query = select(Ticket)
        if status == "open":
            query = query.where(Ticket.status != CLOSED)
        elif status == "closed":
            query = query.where(Ticket.status == CLOSED)
        regions = visible_regions(session, user)
        mine = Ticket.lawyer_id == user.lawyer_id if user.lawyer_id is not None else None
        if view == "mine":
            if mine is None:
                return []
            query = query.where(mine)
        else:
            scope = Ticket.region_id.in_(regions) if regions is not None else None
            if scope is not None:
                query = query.where(or_(scope, mine) if mine is not None else scope)
            if view == "unassigned":
                query = query.where(Ticket.lawyer_id.is_(None))
            elif view == "regions" and regions is not None:
                query = query.where(Ticket.region_id.in_(regions))
        return list(
            session.scalars(query.order_by(Ticket.urgent.desc(), Ticket.created_at, Ticket.id).limit(500))
        )

    def claim(self, session: Session, user: StaffUser, ticket: Ticket, *, now: datetime) -> None:
        """Take the ticket; TicketError when someone else holds it (decided by the database, atomically)."""
        if user.lawyer_id is None:
            raise TicketError("只有律师可以接单", 403)
        taken = session.execute(
            update(Ticket)
            .where(Ticket.id == ticket.id, Ticket.status == OPEN, Ticket.lawyer_id.is_(None))
            .values(status=CLAIMED, lawyer_id=user.lawyer_id, claimed_at=now)
            .execution_options(synchronize_session=False)
        )
        session.refresh(ticket)
        if taken.rowcount != 1:
            if ticket.lawyer_id == user.lawyer_id and ticket.status == CLAIMED:
                return
            raise TicketError("这个咨询已经被其他律师接了" if ticket.status != CLOSED else "这个咨询已经结束")
        self.record(session, ticket, "claim", user, None, now)

    def budget(self, session: Session, worker: Worker, *, now: datetime) -> Budget:
        """WeChat's window and how many customer-service messages are left in it."""
        if worker.last_message_at is None or worker.channel not in notify.PUSH_CHANNELS:
            return Budget(False, 0, None)
        last = as_utc(worker.last_message_at)
        ends = last + notify.CS_WINDOW
        if now >= ends:
            return Budget(False, 0, ends)
        used = session.scalar(
            select(func.count(OutboxMessage.id)).where(
                OutboxMessage.channel == worker.channel,
                OutboxMessage.openid == worker.openid,
                OutboxMessage.kind == "text",
                OutboxMessage.created_at >= last,
                OutboxMessage.status != OutboxStatus.FAILED,
            )
        )
        return Budget(True, max(CS_BUDGET - used, 0), ends)

    def reply(
        self, session: Session, user: StaffUser, ticket: Ticket, text: str, *, now: datetime
    ) -> notify.Delivery:
        """A lawyer's reply: stored in the transcript, then sent the way WeChat allows (module docstring)."""
        self._holder(user, ticket)
        worker = session.get(Worker, ticket.worker_id)
        consultation = session.get(Consultation, ticket.consultation_id)
        budget = self.budget(session, worker, now=now)
        event = self.record(session, ticket, "reply", user, text, now)
        joined = self._join_pending(session, worker, text, now) if budget.in_window else False
        if joined:
            delivery = notify.deliver_reply(
                session, consultation, text, key=f"reply-{event.id}", now=now, template=None, push=False
            )
            delivery.message.delivery = notify.CUSTOMER_SERVICE
            delivery = notify.Delivery(delivery.message, notify.CUSTOMER_SERVICE)
        else:
            held = budget.in_window and budget.remaining == 0
            suffix = f"\n{self.templates['budget_low']}" if budget.in_window and budget.remaining == 2 else ""
            delivery = notify.deliver_reply(
                session,
                consultation,
                text,
                key=f"reply-{event.id}",
                now=now,
                template=self.reply_template,
                push=not held,
                send_after=self.policy.join_delay,
                suffix=suffix,
            )
        if ticket.first_response_at is None:
            ticket.first_response_at = now
        consultation.last_activity_at = now
        return delivery

    def _join_pending(self, session: Session, worker: Worker, text: str, now: datetime) -> bool:
        """Append to this worker's lawyer message still waiting to leave (one message, not several)."""
        pending = session.scalars(
            select(OutboxMessage)
            .where(
                OutboxMessage.channel == worker.channel,
                OutboxMessage.openid == worker.openid,
                OutboxMessage.status == OutboxStatus.PENDING,
                OutboxMessage.kind == "text",
                OutboxMessage.dedup_key.like("cs|lawyer|%"),
                OutboxMessage.next_attempt_at > now,
                OutboxMessage.attempts == 0,
            )
            .order_by(OutboxMessage.id.desc())
            .limit(1)
            .with_for_update()
        ).first()
        if pending is None:
            return False
        joined = session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == pending.id, OutboxMessage.status == OutboxStatus.PENDING)
            .values(content=pending.content + "\n" + text)
            .execution_options(synchronize_session=False)
        )
        return joined.rowcount == 1

    def note(
        self, session: Session, user: StaffUser, ticket: Ticket, text: str, *, now: datetime
    ) -> TicketEvent:
        """An internal note (never shown to the worker)."""
        return self.record(session, ticket, "note", user, text, now)

    def transfer(
        self,
        session: Session,
        user: StaffUser,
        ticket: Ticket,
        *,
        now: datetime,
        lawyer_id: int | None = None,
        region_id: int | None = None,
        reason: str | None = None,
    ) -> None:
        """Hand the ticket to another lawyer (who then holds it) or another region's queue."""
        if ticket.status == CLOSED:
            raise TicketError("这个咨询已经结束")
        if user.role == "lawyer" and ticket.lawyer_id not in (None, user.lawyer_id):
            raise TicketError("只有接单的律师可以转交", 403)
        if (lawyer_id is None) == (region_id is None):
            raise TicketError("请选择转给哪位律师或哪个地区", 400)
        if lawyer_id is not None:
            lawyer = session.get(Lawyer, lawyer_id)
            if lawyer is None or not lawyer.active:
                raise TicketError("没有这位律师", 400)
            ticket.lawyer_id, ticket.status, ticket.claimed_at = lawyer_id, CLAIMED, now
            target = f"律师 {lawyer.name}"
            self.notify_staff(
                session, ticket, kind="transfer", text="有咨询转给您处理", lawyer_ids=[lawyer_id], now=now
            )
        else:
            region = session.get(Region, region_id)
            if region is None:
                raise TicketError("没有这个地区", 400)
            ticket.region_id, ticket.lawyer_id, ticket.status, ticket.claimed_at = region_id, None, OPEN, None
            target = region.name
        self.record(
            session, ticket, "transfer", user, f"转给{target}" + (f"：{reason}" if reason else ""), now
        )

    def close(
        self,
        session: Session,
        user: StaffUser,
        ticket: Ticket,
        *,
        outcome: str,
        category: str | None,
        now: datetime,
    ) -> None:
        """Close with an outcome; the consultation closes too and the worker is asked for a rating."""
        self._holder(user, ticket)
        if outcome not in OUTCOMES:
            raise TicketError(f"结果须为 {', '.join(OUTCOMES)} 之一", 400)
        ticket.status, ticket.outcome, ticket.closed_at = CLOSED, outcome, now
        if category:
            ticket.category = category
        consultation = session.get(Consultation, ticket.consultation_id)
        if consultation.closed_at is None:
            consultation.closed_at, consultation.close_reason = now, "lawyer"
        consultation.resolution = RESOLUTION_OF_OUTCOME[outcome]
        if category:
            consultation.category = category
        self.record(session, ticket, "close", user, outcome, now)
        self.tell_worker(
            session, consultation, self.templates["lawyer_closed"], key=f"close-{ticket.id}", now=now
        )
        session.get(Worker, ticket.worker_id).conversation = {"rate": consultation.id}

    @staticmethod
    def tell_worker(
        session: Session, consultation: Consultation, text: str, *, key: str, now: datetime
    ) -> None:
        """A message of the service (not a lawyer's) to the worker, once per `key`, the way WeChat allows."""
        notify.deliver_reply(session, consultation, text, key=key, now=now, template=None, author=BOT)

    def refer(
        self, session: Session, user: StaffUser, ticket: Ticket, *, reason: str, now: datetime
    ) -> Referral:
        """Refer the case for legal aid: to the district union above the worker's region, for review."""
        self._holder(user, ticket)
        existing = session.scalars(select(Referral).where(Referral.ticket_id == ticket.id)).one_or_none()
        if existing is not None:
            return existing
        tree = Tree(session)
        home = (ticket.case_card or {}).get("home_region_id") or ticket.region_id
        district = tree.ancestor_at(home, "district") or tree.root()
        referral = Referral(
            ticket_id=ticket.id, district_id=district, reason=reason, referred_by=user.id, created_at=now
        )
        session.add(referral)
        session.flush()
        self.record(session, ticket, "referral", user, reason, now)
        admins = session.scalars(
            select(StaffUser.id).where(StaffUser.role == "union_admin", StaffUser.region_id == district)
        ).all()
        self.notify_staff(
            session, ticket, kind="referral", text="有法律援助转介待审核", staff_ids=list(admins), now=now
        )
        return referral

    def review_referral(
        self,
        session: Session,
        user: StaffUser,
        referral: Referral,
        *,
        approve: bool,
        lawyer_id: int | None,
        now: datetime,
    ) -> None:
        """The district union decides; an approved aid case goes to a lawyer who does not serve the
        applicant's own township (a conflict-of-interest rule)."""
        regions = visible_regions(session, user)
        if user.role == "lawyer" or (regions is not None and referral.district_id not in regions):
            raise TicketError("只有区县工会可以审核", 403)
        if referral.status != "pending":
            raise TicketError("这个转介已经审核过了")
        if approve:
            if lawyer_id is None:
                raise TicketError("请指定承办律师", 400)
            lawyer = session.get(Lawyer, lawyer_id)
            if lawyer is None or not lawyer.active:
                raise TicketError("没有这位律师", 400)
            ticket = session.get(Ticket, referral.ticket_id)
            home = (ticket.case_card or {}).get("home_region_id") or ticket.region_id
            if home is not None and home in served_regions(session, lawyer_id):
                raise TicketError("这位律师服务申请人所在的乡镇（街道），不能承办", 400)
            referral.assigned_lawyer_id = lawyer_id
            self.notify_staff(
                session,
                ticket,
                kind="aid_assigned",
                text="有法律援助案件指派给您",
                lawyer_ids=[lawyer_id],
                now=now,
            )
        referral.status = "approved" if approve else "rejected"
        referral.reviewed_by, referral.reviewed_at = user.id, now

    # --- notices -----------------------------------------------------------------------------------

    def notify_staff(
        self,
        session: Session,
        ticket: Ticket | None,
        *,
        kind: str,
        text: str,
        now: datetime,
        lawyer_ids: list[int] | tuple[int, ...] = (),
        staff_ids: list[int] | tuple[int, ...] = (),
    ) -> int:
        """Notices shown in the console, and a WeChat template message to whoever follows the account."""
        count = 0
        recipients = [(Lawyer, "lawyer_id", i) for i in dict.fromkeys(lawyer_ids)]
        recipients += [(StaffUser, "staff_id", i) for i in dict.fromkeys(staff_ids)]
        for model, column, recipient_id in recipients:
            session.add(
                Notice(
                    **{column: recipient_id},
                    ticket_id=ticket.id if ticket else None,
                    kind=kind,
                    text=text,
                    created_at=now,
                )
            )
            person = session.get(model, recipient_id)
            self._template(session, person.openid if person else None, ticket, kind, text, now)
            count += 1
        session.flush()
        return count

    @staticmethod
    def _own_notices(user: StaffUser):
        mine = Notice.staff_id == user.id
        return or_(mine, Notice.lawyer_id == user.lawyer_id) if user.lawyer_id is not None else mine

    def notices(self, session: Session, user: StaffUser, *, limit: int = 50) -> list[Notice]:
        """The user's notices, newest first (their own, and their lawyer's)."""
        query = select(Notice).where(self._own_notices(user)).order_by(Notice.id.desc()).limit(limit)
        return list(session.scalars(query))

    def mark_read(
        self, session: Session, user: StaffUser, *, now: datetime, notice_id: int | None = None
    ) -> int:
        """Mark one of the user's notices, or all of them, read; returns how many changed."""
        query = select(Notice).where(self._own_notices(user), Notice.read_at.is_(None))
        if notice_id is not None:
            query = query.where(Notice.id == notice_id)
        unread = list(session.scalars(query))
        for notice in unread:
            notice.read_at = now
        return len(unread)

    def _template(
        self, session: Session, openid: str | None, ticket: Ticket | None, kind: str, text: str, now: datetime
    ) -> None:
        if not openid or not self.notice_template:
            return
        body = {
            "template_id": self.notice_template,
            "data": {
                "first": text[:100],
                "keyword1": f"#{ticket.id}" if ticket else "-",
                "keyword2": local(now),
            },
        }
        outbox.enqueue(
            session,
            channel="oa",
            openid=openid,
            text=json.dumps(body, ensure_ascii=False),
            dedup_key=f"notice|{kind}|{ticket.id if ticket else 0}|{openid}|{now.isoformat()}",
            now=now,
            kind="template",
        )

    @staticmethod
    def union_admins(session: Session, region_id: int | None, *, with_admins: bool = False) -> list[int]:
        """Active union admins of `region_id` and every union above it (the city union when the region
        is unknown); `with_admins` adds the system admins."""
        tree = Tree(session)
        chain = tree.chain(region_id) or ([tree.root()] if tree.root() is not None else [])
        roles = ("union_admin", "admin") if with_admins else ("union_admin",)
        in_chain = StaffUser.region_id.in_(chain)
        return list(
            session.scalars(
                select(StaffUser.id)
                .where(StaffUser.role.in_(roles), StaffUser.active.is_(True))
                .where(or_(in_chain, StaffUser.role == "admin") if with_admins else in_chain)
                .order_by(StaffUser.id)
            )
        )

    def _alert_admins(self, session: Session, ticket: Ticket, *, now: datetime) -> None:
        """Urgent: the union admins of the region and every union above it (and the admins), at once."""
        home = (ticket.case_card or {}).get("home_region_id") or ticket.region_id
        self.notify_staff(
            session,
            ticket,
            kind="urgent",
            text=f"【紧急】{(ticket.question or '')[:40]}",
            staff_ids=self.union_admins(session, home, with_admins=True),
            now=now,
        )

    # --- helpers -----------------------------------------------------------------------------------

    @staticmethod
    def _holder(user: StaffUser, ticket: Ticket) -> None:
        if ticket.status == CLOSED:
            raise TicketError("这个咨询已经结束")
        if user.role == "lawyer" and ticket.lawyer_id != user.lawyer_id:
            raise TicketError("请先接单" if ticket.lawyer_id is None else "这个咨询由其他律师处理", 409)

    @staticmethod
    def record(
        session: Session, ticket: Ticket, kind: str, user: StaffUser | None, text: str | None, now: datetime
    ) -> TicketEvent:
        """Add an event to the ticket's history."""
        event = TicketEvent(
            ticket_id=ticket.id, kind=kind, staff_id=user.id if user else None, text=text, created_at=now
        )
        session.add(event)
        session.flush()
        return event

    def events(self, session: Session, ticket: Ticket) -> list[TicketEvent]:
        """The ticket's history, oldest first."""
        return list(
            session.scalars(
                select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id)
            )
        )

    def transcript(self, session: Session, ticket: Ticket) -> list[Message]:
        """The whole conversation of the ticket's consultation, the bot's part included."""
        return list(
            session.scalars(
                select(Message)
                .where(Message.consultation_id == ticket.consultation_id)
                .order_by(Message.created_at, Message.id)
            )
        )
