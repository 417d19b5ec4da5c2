"""Rate limits: how many messages one worker may have the bot process per minute, and a sliding-window
counter of requests per client address for the HTTP APIs.

The per-worker limit reads the messages table (the worker's inbound messages of the last minute), so it
holds across every process of a deployment. The per-address window lives in the process's memory: with
several processes each allows the limit, which bounds abuse without a shared store (the database is
not worth a write per request for it).
"""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import INBOUND, Message, Worker

WINDOW = timedelta(minutes=1)


def worker_over_limit(
    session: Session, worker: Worker, *, now: datetime, per_minute: int, unsaved: int = 0
) -> bool:
    """True when the worker sent more than `per_minute` messages (this one included) within a minute;
    `unsaved`: how many of them are not in the table yet (this one, when the caller has not flushed it,
    which this lookup does not do either)."""
    if per_minute <= 0:
        return False
    with session.no_autoflush:
        recent = session.scalar(
            select(func.count())
            .select_from(Message)
            .where(
                Message.worker_id == worker.id,
                Message.direction == INBOUND,
                Message.msg_type != "event",
                Message.created_at > now - WINDOW,
                Message.created_at <= now,
            )
        )
    return int(recent or 0) + unsaved > per_minute


class SlidingWindow:
    """At most `limit` hits per key within `window` seconds, in this process; thread-safe."""

    def __init__(self, limit: int, window: float = 60.0, max_keys: int = 100_000):
        self.limit, self.window, self.max_keys = limit, window, max_keys
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, now: float) -> float | None:
        """Count a hit; None when allowed, else the seconds until the key may try again."""
        if self.limit <= 0:
            return None
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                if len(self._hits) >= self.max_keys:
                    self._forget(now)
                hits = self._hits[key] = deque()
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(hits[0] + self.window - now, 0.0)
            hits.append(now)
            return None

    def _forget(self, now: float) -> None:
        """Drop idle keys (and, if every key is busy, the oldest half) so memory stays bounded."""
        for key in [k for k, h in self._hits.items() if not h or h[-1] <= now - self.window]:
            del self._hits[key]
        if len(self._hits) >= self.max_keys:
            for key in sorted(self._hits, key=lambda k: self._hits[k][-1])[: self.max_keys // 2]:
                del self._hits[key]
