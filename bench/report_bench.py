"""Benchmark of the union reports (`bot.reports`) on a generated year of consultations.

    python bench/report_bench.py [--consultations 1000000] [--databases sqlite,postgresql]
                                 [--postgres postgresql://postgres@127.0.0.1:5432/test] [--runs 5] [--keep]

For each database: creates a fresh one through the migrations (a SQLite file in a temporary directory;
in PostgreSQL a schema of its own, dropped at the end) and fills it with a realistic year (2025-12-01 to
2026-11-30) of --consultations consultations: a city union with 6 districts and 40 townships, ~0.3
workers per consultation on the three channels (some come back often), weekday, seasonal and holiday
variation, ~15% escalated as tickets to ~50 lawyers, and a few thousand records entered by staff. Rows
are bulk-loaded in batches (Core executemany on SQLite, COPY on PostgreSQL) without foreign-key checks,
and the big tables' secondary indexes are built afterwards from their own DDL; then ANALYZE (VACUUM
ANALYZE on PostgreSQL, so index-only scans are possible).

Then times, best of --runs, `Reports.summary` (with the service's engine settings) for a month and the
year, for the city union and for one district (and the year with no region, as an admin sees it):
first with every day counted from the consultations (a new deployment before the scheduler's first
"report-rollup" run), then the rollup's first run (`bot.report_rollup.refresh`, timed, and a usual run
with one day changed), then the same summaries from the rollup, which must be identical (the one
assertion). Last the export of the month's form (the records behind it, `to_xlsx` and `to_csv`).
Target: a summary in at most 1 s. Prints the figures, the ratio to the target and a few of each
summary's numbers. --keep leaves the databases in place (to EXPLAIN the queries) and prints where.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import math
import os
import random
import shutil
import string
import sys
import tempfile
import time
import unicodedata
import uuid
from abc import ABC, abstractmethod
from array import array
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import Connection, Table, bindparam, event, text, update  # noqa: E402
from sqlalchemy.engine import Engine, make_url  # noqa: E402

from bot import report_rollup  # noqa: E402
from bot.activities import KINDS  # noqa: E402
from bot.report_form import to_csv, to_xlsx  # noqa: E402
from bot.reports import Reports, Scope  # noqa: E402
from knowledge.loader import DATA_DIR  # noqa: E402
from knowledge.worker_types import load  # noqa: E402
from models import ActivityRecord, Consultation, Lawyer, Region, Ticket, Worker  # noqa: E402
from models.db import make_engine, make_sessionmaker  # noqa: E402
from models.schema import upgrade  # noqa: E402

CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")
FIRST_DAY, LAST_DAY = date(2025, 12, 1), date(2026, 11, 30)
MONTH = (date(2026, 3, 1), date(2026, 3, 31))
NOW = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 09:00 the day after the year, China time
TARGET_S = 1.0
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"

# --- the shape of the data -------------------------------------------------------------------------------

DISTRICTS = ("城东区", "城西区", "南湖区", "北山区", "高新区", "滨海区")
TOWNSHIPS_PER_DISTRICT = (8, 7, 7, 6, 6, 6)  # 40 townships and parks
CHANNELS = (("oa", 0.55), ("mp", 0.35), ("web", 0.10))
WORKER_TYPES = (
    ("rider", 0.24),
    ("courier", 0.14),
    ("ride_hailing", 0.08),
    ("other_platform", 0.05),
    ("construction", 0.15),
    ("factory", 0.12),
    ("other", 0.08),
    (None, 0.14),
)
# Weights of the taxonomy's categories for platform workers and for the others.
CATEGORY_WEIGHTS = {
    "wage_arrears": (0.20, 0.34),
    "overtime_leave": (0.08, 0.11),
    "labor_contract": (0.14, 0.18),
    "work_injury": (0.09, 0.11),
    "social_insurance": (0.08, 0.10),
    "platform_work": (0.28, 0.02),
    "dispute_process": (0.08, 0.09),
    "out_of_scope": (0.04, 0.04),
    "urgent": (0.01, 0.01),
}
RESOLUTIONS = (
    ("answered", 0.700),
    ("clarified", 0.150),
    ("lawyer", 0.100),
    ("referred", 0.035),
    ("escalated", 0.012),
    ("urgent", 0.003),
)
WEEKDAY = (1.15, 1.10, 1.05, 1.00, 0.95, 0.72, 0.68)
MONTHLY = {
    12: 1.15,
    1: 1.35,
    2: 0.80,
    3: 1.05,
    4: 1.00,
    5: 0.95,
    6: 1.00,
    7: 1.05,
    8: 1.05,
    9: 1.00,
    10: 0.85,
    11: 1.0,
}
HOLIDAYS = (
    (date(2026, 1, 1), date(2026, 1, 3), 0.6),
    (date(2026, 2, 15), date(2026, 2, 23), 0.35),  # Spring Festival
    (date(2026, 4, 4), date(2026, 4, 6), 0.6),
    (date(2026, 5, 1), date(2026, 5, 5), 0.6),
    (date(2026, 6, 19), date(2026, 6, 21), 0.7),
    (date(2026, 10, 1), date(2026, 10, 7), 0.5),  # National Day
)
HOURS = (0.6, 0.35, 0.2, 0.15, 0.15, 0.25, 0.6, 1.5, 2.8, 4.2, 5.0, 5.2)
HOURS += (4.0, 3.8, 4.6, 4.8, 4.6, 4.2, 3.6, 4.0, 4.6, 4.4, 3.2, 1.6)
RATINGS = ((5, 0.55), (4, 0.25), (3, 0.09), (2, 0.04), (1, 0.07))
QUESTIONS = {
    "wage_arrears": "老板拖欠我三个月工资一直不给，怎么办？",
    "overtime_leave": "每天干十二个小时，加班费应该怎么算？",
    "labor_contract": "干了一年没签合同，现在被辞退了能要赔偿吗？",
    "work_injury": "送货路上摔伤了，公司说不算工伤。",
    "social_insurance": "公司一直没给我交社保，可以补缴吗？",
    "platform_work": "站点扣了我两千块罚款，合理吗？",
    "dispute_process": "劳动仲裁要准备哪些材料？",
    "out_of_scope": "借给朋友的钱不还怎么办？",
    "urgent": "工地上几十个人讨薪，老板跑了！",
}
LAWYERS = 50
RECORD_KINDS = (
    ("notice", 0.02),
    ("team", 0.04),
    ("lecture", 0.20),
    ("leaflets", 0.14),
    ("consultation", 0.14),
    ("outreach", 0.10),
    ("checkup", 0.10),
    ("mediation", 0.12),
    ("legal_aid", 0.11),
    ("funds", 0.03),
)
FIELD_RANGES = {
    "sessions": (1, 3),
    "people": (20, 300),
    "copies": (100, 3000),
    "person_times": (1, 200),
    "cases": (1, 8),
    "enterprises": (1, 20),
    "consultations": (1, 30),
    "assessments": (1, 10),
    "mechanisms": (0, 3),
    "teams": (1, 3),
    "lawyers": (2, 20),
    "associations": (0, 1),
    "outstanding_lawyers": (0, 2),
}

CONSULTATION_COLUMNS = (
    "id",
    "worker_id",
    "channel",
    "worker_type",
    "region_code",
    "region_id",
    "opened_on",
    "category",
    "resolution",
    "opened_at",
    "last_activity_at",
    "closed_at",
    "close_reason",
    "rating",
    "rated_at",
)
TICKET_COLUMNS = (
    "id",
    "consultation_id",
    "worker_id",
    "region_id",
    "status",
    "urgent",
    "lawyer_id",
    "question",
    "created_at",
    "claimed_at",
    "first_response_at",
    "last_worker_message_at",
    "closed_at",
    "outcome",
    "category",
    "backup_notified_at",
    "admin_notified_at",
    "interim_sent_at",
    "opened_on",
    "report_region_id",
)
WORKER_COLUMNS = (
    "id",
    "channel",
    "openid",
    "worker_type",
    "worker_type_source",
    "region_code",
    "subscribed",
    "first_contact_at",
    "last_message_at",
    "privacy_version",
    "privacy_accepted_at",
)


def cumulative(weights: Iterable[float]) -> list[float]:
    return list(itertools.accumulate(weights))


def china(day: date, seconds: float) -> datetime:
    """The UTC moment `seconds` after midnight of `day` in China time."""
    return datetime(day.year, day.month, day.day, tzinfo=CHINA).astimezone(UTC) + timedelta(seconds=seconds)


def taxonomy_codes() -> list[str]:
    import yaml

    return list(yaml.safe_load((DATA_DIR / "taxonomy.yaml").read_text(encoding="utf-8"))["categories"])


# --- loading ----------------------------------------------------------------------------------------------


class Loader:
    """Writes batches of rows (tuples in `columns` order) into one table: Core executemany, or COPY."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.copy = engine.dialect.name == "postgresql"

    def write(self, conn: Connection, table: Table, columns: Sequence[str], rows: list[tuple]) -> None:
        if not rows:
            return
        if self.copy:
            cursor = conn.connection.dbapi_connection.cursor()
            try:
                with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            finally:
                cursor.close()
        else:
            conn.execute(table.insert(), [dict(zip(columns, row, strict=True)) for row in rows])


class Generator:
    """A year of the service's data for `consultations` consultations, written in batches of `batch`."""

    def __init__(self, consultations: int, *, seed: int, batch: int):
        self.n = consultations
        self.batch = batch
        self.rng = random.Random(seed)
        self.types = load()
        self.categories = taxonomy_codes()
        self.counts: dict[str, int] = {}

    # regions, lawyers, workers ------------------------------------------------------------------------

    def regions(self) -> list[dict[str, Any]]:
        rows = [{"id": 1, "code": "C01", "name": "市总工会", "level": "city", "parent_id": None}]
        self.districts: list[int] = []
        self.townships: list[int] = []
        self.code = {1: "C01"}
        for d, (name, towns) in enumerate(zip(DISTRICTS, TOWNSHIPS_PER_DISTRICT, strict=True), 1):
            district_id = len(rows) + 1
            code = f"C01-D{d}"
            rows.append(
                {
                    "id": district_id,
                    "code": code,
                    "name": f"{name}总工会",
                    "level": "district",
                    "parent_id": 1,
                }
            )
            self.districts.append(district_id)
            self.code[district_id] = code
            for t in range(1, towns + 1):
                town_id = len(rows) + 1
                level = "park" if t == towns and d % 2 == 0 else "township"
                label = f"{name[:-1]}{'产业园' if level == 'park' else f'第{t}街道'}工会"
                rows.append(
                    {
                        "id": town_id,
                        "code": f"{code}-T{t:02d}",
                        "name": label,
                        "level": level,
                        "parent_id": district_id,
                    }
                )
                self.townships.append(town_id)
                self.code[town_id] = f"{code}-T{t:02d}"
        return rows

    def lawyers(self) -> list[dict[str, Any]]:
        firms = ("明法律师事务所", "正平律师事务所", "德衡律师事务所", "公信律师事务所", "同心律师事务所")
        surnames = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
        return [
            {
                "id": i,
                "name": f"{surnames[i % len(surnames)]}律师{i}",
                "firm": firms[i % len(firms)],
                "phone": f"139{i:08d}",
                "openid": f"oLawyer{i:021d}",
                "active": i % 17 != 0,
            }
            for i in range(1, LAWYERS + 1)
        ]

    def plan_workers(self) -> None:
        """Each worker's channel, type and region, and which worker opens each consultation (in time order):
        every worker at least once, some of them many times (a heavy tail)."""
        rng = self.rng
        w = max(10, round(self.n * 0.3))
        self.workers = w
        self.w_channel = rng.choices([c for c, _ in CHANNELS], [p for _, p in CHANNELS], k=w + 1)
        self.w_type = rng.choices([t for t, _ in WORKER_TYPES], [p for _, p in WORKER_TYPES], k=w + 1)
        # Townships differ in size (a Zipf-like weight); a few workers belong to a district's own union,
        # some never named a region.
        town_weights = [1 / (1 + i) ** 0.7 for i in range(len(self.townships))]
        rng.shuffle(town_weights)
        places: list[int | None] = [*self.townships, *self.districts, None]
        weights = [0.85 * x / sum(town_weights) for x in town_weights]
        weights += [0.03 / len(self.districts)] * len(self.districts) + [0.12]
        self.w_region = rng.choices(places, weights, k=w + 1)
        extra = rng.choices(range(1, w + 1), [rng.paretovariate(1.6) for _ in range(w)], k=max(self.n - w, 0))
        per_worker = [0] * (w + 1)
        for worker in extra:
            per_worker[worker] += 1
        assignment = array("l", range(1, min(w, self.n) + 1))
        for worker, count in enumerate(per_worker):
            if count:
                assignment.extend([worker] * count)
        rng.shuffle(assignment)
        self.assignment = assignment

    def plan_days(self) -> None:
        """Consultations per day: weekday, month, holidays, a year's growth and noise; summing to n."""
        rng = self.rng
        days = [FIRST_DAY + timedelta(days=i) for i in range((LAST_DAY - FIRST_DAY).days + 1)]
        weights = []
        for i, day in enumerate(days):
            weight = WEEKDAY[day.weekday()] * MONTHLY[day.month] * (0.85 + 0.3 * i / len(days))
            for start, end, factor in HOLIDAYS:
                if start <= day <= end:
                    weight *= factor
            weights.append(max(weight * rng.gauss(1.0, 0.08), 0.05))
        total = sum(weights)
        exact = [self.n * x / total for x in weights]
        counts = [math.floor(x) for x in exact]
        short = self.n - sum(counts)
        for i in sorted(range(len(days)), key=lambda i: exact[i] - counts[i], reverse=True)[:short]:
            counts[i] += 1
        self.days = list(zip(days, counts, strict=True))
        # The first consultation of each worker, so a worker's first contact precedes it.
        starts = list(itertools.accumulate(counts))
        first = array("l", [-1]) * (self.workers + 1)
        for i, worker in enumerate(self.assignment):
            if first[worker] < 0:
                first[worker] = i
        self.first_day = {
            worker: days[bisect.bisect_right(starts, i)] for worker, i in enumerate(first) if i >= 0
        }

    def worker_rows(self) -> Iterable[list[tuple]]:
        rng = self.rng
        letters = string.ascii_letters + string.digits + "-_"
        rows: list[tuple] = []
        for worker in range(1, self.workers + 1):
            channel = self.w_channel[worker]
            token = "".join(rng.choices(letters, k=18))
            openid = f"web-{token}{worker:08d}" if channel == "web" else f"o{token}{worker:09d}"
            first = china(self.first_day.get(worker, FIRST_DAY), rng.uniform(0, 6 * 3600))
            region = self.w_region[worker]
            kind = self.w_type[worker]
            rows.append(
                (
                    worker,
                    channel,
                    openid,
                    kind,
                    None if kind is None else ("chosen" if rng.random() < 0.7 else "inferred"),
                    self.code[region] if region is not None else None,
                    channel == "web" or rng.random() < 0.9,
                    first,
                    first + timedelta(days=rng.uniform(0, 200)),
                    "2025-06",
                    first,
                )
            )
            if len(rows) >= self.batch:
                yield rows
                rows = []
        if rows:
            yield rows

    # consultations and tickets ------------------------------------------------------------------------

    def consultation_rows(self) -> Iterable[tuple[list[tuple], list[tuple]]]:
        """Batches of (consultations, their tickets), in the order they opened."""
        rng = self.rng
        rand, uniform, lognorm, choices = rng.random, rng.uniform, rng.lognormvariate, rng.choices
        new_codes = set(self.types.new_form_codes)
        categories = self.categories
        weight_new = cumulative(CATEGORY_WEIGHTS.get(c, (0.01, 0.01))[0] for c in categories)
        weight_old = cumulative(CATEGORY_WEIGHTS.get(c, (0.01, 0.01))[1] for c in categories)
        resolutions = [r for r, _ in RESOLUTIONS]
        resolution_weights = cumulative(p for _, p in RESOLUTIONS)
        hour_weights = cumulative(HOURS)
        ratings = [r for r, _ in RATINGS]
        rating_weights = cumulative(p for _, p in RATINGS)
        lawyer_weights = cumulative(1 / (1 + i) ** 0.8 for i in range(LAWYERS))
        lawyer_ids = list(range(1, LAWYERS + 1))
        minute = timedelta(minutes=1)
        consultations: list[tuple] = []
        tickets: list[tuple] = []
        cid = tid = 0
        for day, count in self.days:
            midnight = china(day, 0)
            seconds = sorted(
                h * 3600 + rand() * 3600 for h in choices(range(24), cum_weights=hour_weights, k=count)
            )
            resolution_of = choices(resolutions, cum_weights=resolution_weights, k=count)
            for second, resolution in zip(seconds, resolution_of, strict=True):
                worker = self.assignment[cid]
                cid += 1
                opened = midnight + timedelta(seconds=second)
                kind = self.w_type[worker]
                if kind is not None and rand() < 0.04:
                    kind = None  # the worker's type was learnt after this consultation
                elif kind is None and rand() < 0.1:
                    kind = "other"
                region = self.w_region[worker]
                category = choices(categories, cum_weights=weight_new if kind in new_codes else weight_old)[0]
                if category == "urgent" and resolution in ("answered", "clarified"):
                    resolution = "urgent" if rand() < 0.3 else "lawyer"
                if resolution == "clarified" and rand() < 0.25:
                    category = None  # the worker left before saying more
                last = opened + minute * lognorm(1.1, 0.8)
                rating = rated = None
                if resolution in ("answered", "clarified"):
                    reason = "idle" if rand() < 0.85 else "worker"
                    closed = last + timedelta(minutes=30) if reason == "idle" else last
                    if rand() < 0.22:
                        rating = choices(ratings, cum_weights=rating_weights)[0]
                        rated = last + minute * uniform(0.2, 5)
                else:
                    tid += 1
                    ticket, last, closed = self._ticket(
                        tid,
                        cid,
                        worker,
                        region,
                        day,
                        opened,
                        resolution,
                        category,
                        lawyer_ids,
                        lawyer_weights,
                    )
                    tickets.append(ticket)
                    reason = "lawyer" if ticket[4] == "closed" else "worker"
                    if ticket[4] == "closed" and rand() < 0.4:
                        rating = choices(ratings, cum_weights=rating_weights)[0]
                        rated = closed + minute * uniform(1, 600)
                consultations.append(
                    (
                        cid,
                        worker,
                        self.w_channel[worker],
                        kind,
                        self.code[region] if region is not None else None,
                        region,
                        day,
                        category,
                        resolution,
                        opened,
                        last,
                        closed,
                        reason,
                        rating,
                        rated,
                    )
                )
                if len(consultations) >= self.batch:
                    yield consultations, tickets
                    consultations, tickets = [], []
        if consultations:
            yield consultations, tickets
        self.counts.update(consultations=cid, tickets=tid)

    def _ticket(
        self,
        tid: int,
        cid: int,
        worker: int,
        region: int | None,
        day: date,
        opened: datetime,
        resolution: str,
        category: str | None,
        lawyer_ids: list[int],
        lawyer_weights: list[float],
    ) -> tuple[tuple, datetime, datetime]:
        """The ticket of an escalated consultation, and the consultation's last activity and close."""
        rng = self.rng
        created = opened + timedelta(minutes=rng.uniform(0.5, 6))
        local_hour = (created.hour + 8) % 24
        # Lawyers answer within minutes by day; at night the wait is longer.
        wait = rng.lognormvariate(math.log(7), 0.9) * (3.0 if local_hour >= 22 or local_hour < 8 else 1.0)
        urgent = resolution == "urgent" or category == "urgent"
        if resolution in ("lawyer", "referred"):
            status, responded = "closed", True
        elif resolution == "urgent":
            status, responded = ("claimed", True) if rng.random() < 0.9 else ("open", False)
        else:  # escalated: still waiting, or claimed and not closed yet
            status, responded = ("claimed", True) if rng.random() < 0.6 else ("open", False)
        lawyer = rng.choices(lawyer_ids, cum_weights=lawyer_weights)[0] if responded else None
        first = created + timedelta(minutes=wait) if responded else None
        claimed = created + timedelta(minutes=wait * 0.6) if responded else None
        closed = outcome = None
        if status == "closed":
            assert first is not None
            closed = first + timedelta(hours=rng.lognormvariate(math.log(2), 1.0))
            if resolution == "lawyer":
                outcome = "answered" if rng.random() < 0.85 else "other"
            else:
                outcome = "legal_aid" if rng.random() < 0.55 else "arbitration"
        waited = wait if responded else 10_000
        backup = created + timedelta(minutes=15) if waited > 15 else None
        admin = created + timedelta(minutes=45) if waited > 45 else None
        interim = created + timedelta(minutes=10) if waited > 10 else None
        row = (
            tid,
            cid,
            worker,
            region,
            status,
            urgent,
            lawyer,
            QUESTIONS.get(category or "", "想咨询一下。"),
            created,
            claimed,
            first,
            created + timedelta(minutes=1),
            closed,
            outcome,
            category,
            backup,
            admin,
            interim,
            day,
            region,
        )
        last = closed or first or created
        consultation_closed = closed or (last + timedelta(hours=rng.uniform(1, 48)))
        return row, last, consultation_closed

    # records entered by staff -------------------------------------------------------------------------

    def record_rows(self) -> list[dict[str, Any]]:
        rng = self.rng
        n = max(300, self.n // 300)
        kinds = rng.choices([k for k, _ in RECORD_KINDS], [p for _, p in RECORD_KINDS], k=n)
        places = [1, *self.districts, *self.townships]
        place_weights = [0.05] + [0.35 / len(self.districts)] * len(self.districts)
        place_weights += [0.60 / len(self.townships)] * len(self.townships)
        span = (LAST_DAY - FIRST_DAY).days
        rows = []
        for i, code in enumerate(kinds, 1):
            kind = KINDS[code]
            day = FIRST_DAY + timedelta(days=rng.randint(0, span))
            row: dict[str, Any] = {name: None for name in FIELD_RANGES}
            for name, _, _ in kind.fields:
                low, high = FIELD_RANGES[name]
                row[name] = rng.randint(low, high)
            amount = None
            if code == "funds":
                amount = Decimal(str(round(rng.uniform(1, 50), 2)))
            elif kind.amount and rng.random() < 0.7:
                amount = Decimal(str(round(rng.uniform(0.3, 30), 2)))
            created = china(day, rng.uniform(9 * 3600, 20 * 3600))
            row.update(
                id=i,
                region_id=1
                if code == "notice" and rng.random() < 0.5
                else rng.choices(places, place_weights)[0],
                day=day,
                kind=code,
                topic=rng.choice(("wage", "wage", "injury", "other")) if kind.topic else None,
                online=kind.online and rng.random() < 0.3,
                new_form=rng.random() < 0.8,
                amount=amount,
                issuer="市总工会" if kind.issuer else None,
                note=None,
                created_by=None,
                created_at=created,
                updated_by=None,
                updated_at=None,
                deleted_at=created + timedelta(days=1) if rng.random() < 0.02 else None,
            )
            rows.append(row)
        self.counts["records"] = n
        return rows

    def fill(self, engine: Engine) -> None:
        loader = Loader(engine)
        with engine.begin() as conn:
            conn.execute(Region.__table__.insert(), self.regions())
            conn.execute(Lawyer.__table__.insert(), self.lawyers())
        self.plan_workers()
        self.plan_days()
        for rows in self.worker_rows():
            with engine.begin() as conn:
                loader.write(conn, Worker.__table__, WORKER_COLUMNS, rows)
        self.counts["workers"] = self.workers
        del self.first_day
        for consultations, tickets in self.consultation_rows():
            with engine.begin() as conn:
                loader.write(conn, Consultation.__table__, CONSULTATION_COLUMNS, consultations)
                loader.write(conn, Ticket.__table__, TICKET_COLUMNS, tickets)
        with engine.begin() as conn:
            conn.execute(ActivityRecord.__table__.insert(), self.record_rows())


# --- databases ----------------------------------------------------------------------------------------------


BULK_TABLES = ("workers", "consultations", "tickets")


class Database(ABC):
    """A fresh, empty database with the schema: `url` for engines, `size()`, `analyze()`, `drop()`."""

    name: str
    url: str

    @abstractmethod
    def load_engine(self) -> Engine: ...

    @abstractmethod
    def secondary_indexes(self, conn: Connection) -> list[tuple[str, str]]:
        """(name, CREATE statement) of the indexes on BULK_TABLES that back no constraint."""
        ...

    @abstractmethod
    def analyze(self) -> None: ...

    @abstractmethod
    def size(self) -> int: ...

    @abstractmethod
    def drop(self) -> None: ...


class SqliteDatabase(Database):
    name = "sqlite"

    def __init__(self, directory: str | None):
        self.path = Path(tempfile.mkdtemp(prefix="report_bench_", dir=directory)) / "reports.db"
        self.url = f"sqlite:///{self.path}"

    def load_engine(self) -> Engine:
        """An engine for the bulk load only: a large page cache, and no foreign-key checks (the generated
        rows are consistent); the timed engines have the service's settings."""
        engine = make_engine(self.url)

        @event.listens_for(engine, "connect")
        def _fast(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA cache_size=-65536")
            cursor.execute("PRAGMA foreign_keys=OFF")
            cursor.close()

        return engine

    def secondary_indexes(self, conn: Connection) -> list[tuple[str, str]]:
        tables = ", ".join(f"'{t}'" for t in BULK_TABLES)
        query = f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ({tables})"
        return [(name, sql) for name, sql in conn.exec_driver_sql(query)]

    def analyze(self) -> None:
        engine = make_engine(self.url)
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.path.parent.iterdir() if p.name.startswith(self.path.name))

    def drop(self) -> None:
        shutil.rmtree(self.path.parent)


class PostgresDatabase(Database):
    name = "postgresql"
    TABLES = ("regions", "lawyers", "workers", "consultations", "tickets", "activity_records")

    def __init__(self, url: str):
        self.admin_url = url
        self.schema = f"bench_reports_{uuid.uuid4().hex[:10]}"
        self._admin(f'CREATE SCHEMA "{self.schema}"')
        base = make_url(make_engine(url).url.render_as_string(hide_password=False))
        self.url = base.update_query_dict({"options": f"-csearch_path={self.schema}"}).render_as_string(
            hide_password=False
        )

    def load_engine(self) -> Engine:
        """An engine for the bulk load only: without the foreign-key triggers (the generated rows are
        consistent) when the role may say so (a superuser); with them otherwise."""
        engine = make_engine(self.url)

        @event.listens_for(engine, "connect")
        def _fast(dbapi_connection, _record):
            try:
                dbapi_connection.execute("SET session_replication_role = replica")
                dbapi_connection.commit()
            except Exception:  # not a superuser: load with the checks
                dbapi_connection.rollback()

        return engine

    def secondary_indexes(self, conn: Connection) -> list[tuple[str, str]]:
        rows = conn.execute(
            text(
                "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
                "JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
                "JOIN pg_namespace n ON n.oid = t.relnamespace "
                "WHERE n.nspname = :schema AND t.relname IN :tables "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)"
            ).bindparams(bindparam("tables", expanding=True)),
            {"schema": self.schema, "tables": list(BULK_TABLES)},
        )
        return [(name, ddl) for name, ddl in rows]

    def _admin(self, statement: str) -> None:
        engine = make_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(statement)
        finally:
            engine.dispose()

    def analyze(self) -> None:
        engine = make_engine(self.url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            for table in self.TABLES:
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
                )
                conn.exec_driver_sql(f"VACUUM ANALYZE {table}")
        engine.dispose()

    def size(self) -> int:
        engine = make_engine(self.url)
        with engine.connect() as conn:
            size = conn.execute(
                text(
                    "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :s AND c.relkind = 'r'"
                ),
                {"s": self.schema},
            ).scalar_one()
        engine.dispose()
        return int(size)

    def drop(self) -> None:
        self._admin(f'DROP SCHEMA "{self.schema}" CASCADE')


# --- timing -------------------------------------------------------------------------------------------------


def best_of(runs: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return min(times), result


def run(db: Database, args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"database": db.name, "consultations": args.consultations}
    started = time.perf_counter()
    engine = db.load_engine()
    upgrade(engine)
    # The big tables' secondary indexes are built after the load (from their own DDL, so unchanged):
    # one sort per index instead of a million scattered inserts.
    with engine.begin() as conn:
        deferred = db.secondary_indexes(conn)
        for name, _ in deferred:
            conn.exec_driver_sql(f'DROP INDEX "{name}"')
    generator = Generator(args.consultations, seed=args.seed, batch=args.batch)
    generator.fill(engine)
    result["generate_load_s"] = time.perf_counter() - started
    started = time.perf_counter()
    with engine.begin() as conn:
        for _, ddl in deferred:
            conn.exec_driver_sql(ddl)
    engine.dispose()
    result["index_s"] = time.perf_counter() - started
    started = time.perf_counter()
    db.analyze()
    result["analyze_s"] = time.perf_counter() - started
    result["size_mb"] = db.size() / 2**20
    result.update(generator.counts)

    engine = make_engine(db.url)  # the service's own settings from here on
    sessions = make_sessionmaker(engine)
    reports = Reports(load())
    city, district = 1, generator.districts[0]
    with sessions() as session:
        city_name = session.get(Region, city).name
        district_name = session.get(Region, district).name
    scopes = [
        (f"month {MONTH[0]:%Y-%m}, city ({city_name})", Scope(*MONTH, region_id=city)),
        (f"month {MONTH[0]:%Y-%m}, district ({district_name})", Scope(*MONTH, region_id=district)),
        (f"year, city ({city_name})", Scope(FIRST_DAY, LAST_DAY, region_id=city)),
        (f"year, district ({district_name})", Scope(FIRST_DAY, LAST_DAY, region_id=district)),
        ("year, every region (admin)", Scope(FIRST_DAY, LAST_DAY)),
    ]

    def summary(scope: Scope) -> dict[str, Any]:
        with sessions() as session:
            return reports.summary(session, scope, now=NOW)

    def time_all() -> tuple[list[tuple[str, float]], dict[str, Any]]:
        timings, summaries = [], {}
        for label, scope in scopes:
            seconds, data = best_of(args.runs, lambda scope=scope: summary(scope))
            timings.append((label, seconds))
            summaries[label] = data
        return timings, summaries

    result["load_average"] = [os.getloadavg()[0]]
    # First as a fresh deployment answers before the scheduler's first "report-rollup" run: every day
    # counted from the consultations. Then the rollup's first run, and the summaries from it.
    live, live_summaries = time_all()
    result["summaries_live"] = dict(live)
    started = time.perf_counter()
    with sessions() as session:
        result["rollup_days"] = report_rollup.refresh(session)
    result["rollup_s"] = time.perf_counter() - started
    db.analyze()  # as autovacuum does after the first run's million updates (index-only scans again)
    timings, summaries = time_all()
    result["summaries"] = dict(timings)
    assert summaries == live_summaries, "the rollup changed a figure"  # a benchmark that lies is worse
    started = time.perf_counter()
    with sessions() as session:  # the job's usual run: today's consultations (here: the last day)
        session.execute(update(Consultation).where(Consultation.opened_on == LAST_DAY).values(counted=False))
        session.commit()
        report_rollup.refresh(session)
    result["rollup_one_day_s"] = time.perf_counter() - started

    # The export of the month's form, as `report_form.export` makes it from a summary: the records behind
    # the figures, the workbook and the CSV.
    label, scope = scopes[0]

    def export() -> tuple[bytes, str]:
        with sessions() as session:
            records = reports.records_behind(session, scope)
        return to_xlsx(summaries[label], records=records, made_on=NOW.date()), to_csv(summaries[label])

    seconds, (xlsx, csv) = best_of(args.runs, export)
    result["export_s"] = seconds
    result["export_bytes"] = {"xlsx": len(xlsx), "csv": len(csv.encode())}
    result["load_average"].append(os.getloadavg()[0])
    engine.dispose()

    print_result(result, timings, live, summaries, scopes)
    return result


def width(text: str) -> int:
    """Columns `text` takes in a terminal (CJK characters take two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def pad(text: str, columns: int) -> str:
    return text + " " * max(columns - width(text), 0)


def print_result(result: dict[str, Any], timings: list, live: list, summaries: dict, scopes: list) -> None:
    print(
        f"\n[{result['database']}] {result['consultations']:,} consultations, {result['workers']:,} workers, "
        f"{result['tickets']:,} tickets, {result['records']:,} records"
    )
    print(
        f"  generated and loaded in {result['generate_load_s']:.1f} s, secondary indexes built in "
        f"{result['index_s']:.1f} s, analyzed in {result['analyze_s']:.1f} s; database {result['size_mb']:.0f} MB"
    )
    print(
        f"  report-rollup job: first run {result['rollup_s']:.1f} s ({result['rollup_days']} days), "
        f"a usual run (one day changed) {result['rollup_one_day_s']:.2f} s"
    )
    export_label = f"export of {scopes[0][0]} (records + xlsx + csv)"
    columns = max(width(label) for label in [*(label for label, _ in timings), export_label]) + 2
    before, after = result["load_average"]
    print(
        f"  {pad('summary scope', columns)}seconds, best of runs: with the rollup (no rollup yet); "
        f"load average {before:.1f} before, {after:.1f} after, {os.cpu_count()} CPUs"
    )
    for (label, seconds), (_, unrolled) in zip(timings, live, strict=True):
        print(
            f"  {pad(label, columns)}{seconds:6.2f} s  ({seconds / TARGET_S:.2f} of the {TARGET_S:g} s target)"
            f"  ({unrolled:.2f} s)"
        )
    sizes = result["export_bytes"]
    print(
        f"  {pad(export_label, columns)}{result['export_s']:6.2f} s  "
        f"(xlsx {sizes['xlsx'] / 1024:.0f} KB, csv {sizes['csv'] / 1024:.0f} KB)"
    )
    for label, _ in scopes[:4]:
        s = summaries[label]
        c, lawyers = s["consultations"], s["lawyers"]
        response = lawyers["first_response_minutes"]
        print(
            f"  {label}: {c['total']:,} consultations (新就业形态 {c['new_form']:,}), "
            f"{c['workers']['total']:,} workers, {lawyers['tickets']:,} tickets, first response "
            f"p50 {response['median']} min / p90 {response['p90']} min, "
            f"{lawyers['breaches']['late_first_response']:,} late, rating {c['ratings']['average']}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--consultations", type=int, default=1_000_000)
    parser.add_argument(
        "--databases", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql"
    )
    parser.add_argument(
        "--postgres", default=DEFAULT_POSTGRES, help="server URL (a schema of its own is made)"
    )
    parser.add_argument("--runs", type=int, default=5, help="timed runs per scope (the best counts)")
    parser.add_argument("--batch", type=int, default=20_000, help="rows per insert batch")
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument(
        "--tmpdir", default=None, help="where the SQLite database goes (default: system temp)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the databases (to EXPLAIN queries) and say where"
    )
    args = parser.parse_args()
    wanted = [name.strip() for name in args.databases.split(",") if name.strip()]
    unknown = set(wanted) - {"sqlite", "postgresql"}
    if unknown:
        parser.error(f"unknown database(s): {', '.join(sorted(unknown))}")
    results = []
    for name in wanted:
        db: Database = SqliteDatabase(args.tmpdir) if name == "sqlite" else PostgresDatabase(args.postgres)
        try:
            results.append(run(db, args))
        finally:
            if args.keep:
                where = db.path if isinstance(db, SqliteDatabase) else db.url
                print(f"  kept: {where}")
            else:
                db.drop()
    print(json.dumps(results, default=str, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
