"""The scheduler's lease: which `flask scheduler run` process may run the jobs right now.

Several scheduler processes may run (one per host, for availability); only the holder of an unexpired
lease runs jobs. The holder renews it on every run; when it dies, another takes over once it expires.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from models.db import Model
from models.wechat import UTCDateTime


class SchedulerLease(Model):
    """A named lease (`name`, e.g. "scheduler"), held by `holder` (host:pid) until `expires_at`."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
