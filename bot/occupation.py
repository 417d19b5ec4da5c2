"""A worker's type of work (外卖骑手, 快递员, ... 工厂, 其他), for the union's counts: learnt from what they
write, or asked once with a one-tap choice, and kept on each consultation as it was at that time.

A type the worker chose is never replaced by a guess; a guess is replaced by a later, different guess
("以前在工地，现在送外卖"). The open consultation takes the worker's type whenever it is learnt.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from sqlalchemy.orm import Session

from knowledge.worker_types import WorkerTypes
from models import OFFICIAL_ACCOUNT, Consultation, Worker

CHOSEN, INFERRED = "chosen", "inferred"


class Occupation:
    """Applies the curated list (`knowledge.worker_types`) to workers and their consultations."""

    def __init__(self, types: WorkerTypes, templates: dict):
        self.types = types
        self.templates = templates

    def learn(self, worker: Worker, text: str) -> bool:
        """Infer the type from a message; True when the worker's type changed."""
        if worker.worker_type_source == CHOSEN:
            return False
        found = self.types.infer(text)
        if found is None or found == worker.worker_type:
            return False
        worker.worker_type, worker.worker_type_source = found, INFERRED
        return True

    def choice(self, worker: Worker, text: str) -> str | None:
        """The type the message picks when the worker was offered the choice (a tap sends the label)."""
        if worker.worker_type_asked_at is None:
            return None
        return self.types.chosen(text)

    def choose(self, session: Session, worker: Worker, code: str, consultation_id: int | None) -> str:
        """Record the worker's own choice; returns the thank-you text."""
        if code not in self.types.by_code:
            raise ValueError(f"unknown worker type {code!r}")
        worker.worker_type, worker.worker_type_source = code, CHOSEN
        self.stamp(session, worker, consultation_id)
        return self.templates["worker_type_thanks"].format(label=self.types.label(code))

    @staticmethod
    def stamp(session: Session, worker: Worker, consultation_id: int | None) -> None:
        """The worker's current type onto the consultation this message belongs to, while it is open."""
        if consultation_id is None or worker.worker_type is None:
            return
        consultation = session.get(Consultation, consultation_id)
        if consultation is not None and consultation.closed_at is None:
            consultation.worker_type = worker.worker_type

    @staticmethod
    def should_ask(worker: Worker) -> bool:
        return worker.worker_type is None and worker.worker_type_asked_at is None

    def question(self, worker: Worker, *, now: datetime) -> str:
        """The one-time question. In the official account each choice is a link that sends its label
        when tapped (WeChat's `weixin://bizmsgmenu`); elsewhere the worker replies with the words."""
        worker.worker_type_asked_at = now
        if worker.channel == OFFICIAL_ACCOUNT:
            choices = "  ".join(
                f'<a href="weixin://bizmsgmenu?msgmenucontent={quote(t.label)}&msgmenuid={i}">{t.label}</a>'
                for i, t in enumerate(self.types.types, 1)
            )
        else:
            choices = "、".join(t.label for t in self.types.types)
        return self.templates["worker_type_ask"].format(choices=choices)
