"""Loading the organisation from CSV files a union clerk keeps in Excel: regions, service stations, lawyers
(with the regions they serve and, optionally, their console accounts), and single console users.

Every import reads the whole file and checks every line against the file and the database before it
writes anything: an error names its line and nothing is written. Files are UTF-8, with or without the
byte-order mark Excel puts first ("CSV UTF-8"). Rows are upserted (by region or station code, by a
lawyer's phone, else name and firm), so importing the same file twice changes nothing.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from bot.staff import create_user, validate_password
from models.org import REGION_LEVELS, ROLES, Lawyer, LawyerRegion, Region, StaffUser, Station

REGION_COLUMNS = ("code", "name", "level", "parent_code")
STATION_COLUMNS = ("code", "name", "region_code")
LAWYER_COLUMNS = ("name", "firm", "phone", "openid", "regions", "username", "password")
REGION_SEPARATORS = re.compile(r"[;|；]")


class OrgImportError(ValueError):
    """A file (or command) the import refuses; `line` is the file's line number, when there is one."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.line = line
        self.reason = message


@dataclass
class Summary:
    """What an import did."""

    created: int = 0
    updated: int = 0
    users: int = 0

    @property
    def total(self) -> int:
        return self.created + self.updated


@dataclass(frozen=True)
class Row:
    """One data line: its line number in the file and its stripped values by column."""

    line: int
    values: dict[str, str]

    def __getitem__(self, column: str) -> str:
        return self.values[column]


def read_csv(source: Path | str | bytes, columns: tuple[str, ...]) -> list[Row]:
    """The data rows of a UTF-8 CSV file (a leading BOM is accepted) whose header names `columns`
    (in any order, no others). Blank lines are skipped; line numbers count the header as line 1."""
    raw = source if isinstance(source, bytes) else Path(source).read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise OrgImportError("the file is not UTF-8 (in Excel: save as “CSV UTF-8”)", line) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        raise OrgImportError("the file is empty; the first line must name the columns", 1)
    names = [h.strip().lower() for h in header]
    missing = [c for c in columns if c not in names]
    unknown = [n for n in names if n not in columns]
    if missing or unknown or len(set(names)) != len(names):
        raise OrgImportError(
            f"the header must name the columns {','.join(columns)}"
            + (f"; missing {','.join(missing)}" if missing else "")
            + (f"; unknown {','.join(unknown)}" if unknown else ""),
            1,
        )
    rows: list[Row] = []
    start = reader.line_num + 1
    for cells in reader:
        line, start = start, reader.line_num + 1
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(names):
            raise OrgImportError(f"expected {len(names)} columns, found {len(cells)}", line)
        rows.append(Row(line, {n: c.strip() for n, c in zip(names, cells, strict=True)}))
    return rows


def _need(row: Row, column: str, limit: int) -> str:
    value = row[column]
    if not value:
        raise OrgImportError(f"{column} is empty", row.line)
    return _fits(row, column, limit)


def _fits(row: Row, column: str, limit: int) -> str:
    value = row[column]
    if len(value) > limit:
        raise OrgImportError(f"{column} is longer than {limit} characters", row.line)
    return value


def _unique(rows: list[Row], key, what: str) -> None:
    seen: dict = {}
    for row in rows:
        k = key(row)
        if k in seen:
            raise OrgImportError(f"{what} {k!r} appears again (first on line {seen[k]})", row.line)
        seen[k] = row.line


# --- regions ---------------------------------------------------------------------------------------


def import_regions(session: Session, rows: list[Row]) -> Summary:
    """Upsert regions by code. A parent may be defined later in the file or be in the database already;
    parents are resolved in passes, and a parent that never resolves (unknown, or a cycle) is an error."""
    for row in rows:
        _need(row, "code", 32)
        _need(row, "name", 100)
        if row["level"] not in REGION_LEVELS:
            raise OrgImportError(f"level must be one of {', '.join(REGION_LEVELS)}", row.line)
        _fits(row, "parent_code", 32)
        if row["parent_code"] == row["code"]:
            raise OrgImportError("a region cannot be its own parent", row.line)
    _unique(rows, lambda r: r["code"], "code")
    existing = {r.code: r for r in session.scalars(select(Region))}
    by_id = {r.id: r.code for r in existing.values()}
    parent_of = {code: by_id.get(r.parent_id) for code, r in existing.items()}

    # Resolve in passes: a row is ready once its parent is known (in the database or already placed).
    order: list[Row] = []
    placed: set[str] = set()
    in_file = {r["code"] for r in rows}
    pending = list(rows)
    while pending:
        ready = [
            r
            for r in pending
            if not r["parent_code"]
            or r["parent_code"] in placed
            or (r["parent_code"] in existing and r["parent_code"] not in in_file)
        ]
        if not ready:
            first = pending[0]
            parent = first["parent_code"]
            if parent not in in_file and parent not in existing:
                raise OrgImportError(
                    f"parent_code {parent!r} is not a region (in the file or already)", first.line
                )
            raise OrgImportError(f"parent_code {parent!r} makes a cycle", first.line)
        for r in ready:
            order.append(r)
            placed.add(r["code"])
            parent_of[r["code"]] = r["parent_code"] or None
        pending = [r for r in pending if r["code"] not in placed]

    # A file row may move a region already stored under one of its own descendants.
    line_of = {r["code"]: r.line for r in rows}
    for row in rows:
        seen, code = set(), row["code"]
        while code is not None:
            if code in seen:
                raise OrgImportError(
                    f"parent_code {row['parent_code']!r} makes a cycle", line_of[row["code"]]
                )
            seen.add(code)
            code = parent_of.get(code)

    summary = Summary()
    for row in order:
        region = existing.get(row["code"])
        parent_id = existing[row["parent_code"]].id if row["parent_code"] else None
        if region is None:
            region = Region(code=row["code"])
            session.add(region)
            existing[row["code"]] = region
            summary.created += 1
        else:
            summary.updated += 1
        region.name, region.level, region.parent_id = row["name"], row["level"], parent_id
        session.flush()
    return summary


# --- stations --------------------------------------------------------------------------------------


def import_stations(session: Session, rows: list[Row]) -> Summary:
    """Upsert service stations by code; `region_code` must name a region already stored."""
    regions = dict(session.execute(select(Region.code, Region.id)).all())
    for row in rows:
        _need(row, "code", 64)
        _need(row, "name", 100)
        if _need(row, "region_code", 32) not in regions:
            raise OrgImportError(
                f"region_code {row['region_code']!r} is not a region (import regions first)", row.line
            )
    _unique(rows, lambda r: r["code"], "code")
    existing = {s.code: s for s in session.scalars(select(Station))}
    summary = Summary()
    for row in rows:
        station = existing.get(row["code"])
        if station is None:
            station = Station(code=row["code"])
            session.add(station)
            summary.created += 1
        else:
            summary.updated += 1
        station.name, station.region_id = row["name"], regions[row["region_code"]]
    session.flush()
    return summary


# --- lawyers ---------------------------------------------------------------------------------------


def _lawyer_key(row: Row) -> tuple[str, ...]:
    return ("phone", row["phone"]) if row["phone"] else ("name", row["name"], row["firm"])


def import_lawyers(session: Session, rows: list[Row]) -> Summary:
    """Upsert lawyers (by phone when given, else by name and firm); each lawyer then serves exactly the
    regions listed (codes separated by ; or |). A row with a username gets a lawyer's console account
    (password required) unless that account exists for the same lawyer; a username held by anyone else
    is an error."""
    regions = dict(session.execute(select(Region.code, Region.id)).all())
    lawyers = list(session.scalars(select(Lawyer)))
    by_phone = {lw.phone: lw for lw in lawyers if lw.phone}
    by_name = {(lw.name, lw.firm or ""): lw for lw in lawyers}
    users = {u.username: u for u in session.scalars(select(StaffUser))}
    plan: list[tuple[Row, Lawyer | None, list[int]]] = []
    for row in rows:
        _need(row, "name", 64)
        _fits(row, "firm", 100)
        _fits(row, "phone", 32)
        _fits(row, "openid", 64)
        _fits(row, "username", 64)
        codes = [c.strip() for c in REGION_SEPARATORS.split(row["regions"]) if c.strip()]
        unknown = [c for c in codes if c not in regions]
        if unknown:
            raise OrgImportError(f"unknown region code(s): {', '.join(unknown)}", row.line)
        current = by_phone.get(row["phone"]) if row["phone"] else by_name.get((row["name"], row["firm"]))
        if row["username"]:
            user = users.get(row["username"])
            if user is not None and (current is None or user.lawyer_id != current.id):
                raise OrgImportError(
                    f"the user name {row['username']!r} is taken by another account", row.line
                )
            if user is None:
                if not row["password"]:
                    raise OrgImportError("a new username needs a password", row.line)
                try:
                    validate_password(row["password"])
                except ValueError as exc:
                    raise OrgImportError(str(exc), row.line) from None
        elif row["password"]:
            raise OrgImportError("a password without a username", row.line)
        plan.append((row, current, list(dict.fromkeys(regions[c] for c in codes))))
    _unique(rows, _lawyer_key, "lawyer")
    _unique([r for r in rows if r["username"]], lambda r: r["username"], "username")

    summary = Summary()
    for row, lawyer, region_ids in plan:
        if lawyer is None:
            lawyer = Lawyer(name=row["name"], active=True)
            session.add(lawyer)
            summary.created += 1
        else:
            summary.updated += 1
        lawyer.name, lawyer.firm = row["name"], row["firm"] or None
        lawyer.phone, lawyer.openid = row["phone"] or None, row["openid"] or None
        session.flush()
        session.execute(delete(LawyerRegion).where(LawyerRegion.lawyer_id == lawyer.id))
        session.add_all(LawyerRegion(lawyer_id=lawyer.id, region_id=r) for r in region_ids)
        if row["username"] and row["username"] not in users:
            users[row["username"]] = create_user(
                session,
                username=row["username"],
                password=row["password"],
                role="lawyer",
                display_name=row["name"],
                lawyer_id=lawyer.id,
                openid=row["openid"] or None,
            )
            summary.users += 1
        session.flush()
    return summary


# --- single users ----------------------------------------------------------------------------------


def add_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: str,
    region_code: str | None = None,
    lawyer_id: int | None = None,
    display_name: str | None = None,
) -> StaffUser:
    """A console user; `region_code` names a union admin's region. OrgImportError on any refusal."""
    if role not in ROLES:
        raise OrgImportError(f"role must be one of {', '.join(ROLES)}")
    if not username.strip() or len(username) > 64:
        raise OrgImportError("the user name must be 1 to 64 characters")
    if session.scalar(select(StaffUser.id).where(StaffUser.username == username)) is not None:
        raise OrgImportError(f"the user name {username!r} already exists")
    region_id = None
    if region_code:
        region_id = session.scalar(select(Region.id).where(Region.code == region_code))
        if region_id is None:
            raise OrgImportError(f"no region with code {region_code!r}")
    if lawyer_id is not None and session.get(Lawyer, lawyer_id) is None:
        raise OrgImportError(f"no lawyer with id {lawyer_id}")
    try:
        return create_user(
            session,
            username=username,
            password=password,
            role=role,
            display_name=display_name,
            lawyer_id=lawyer_id,
            region_id=region_id,
        )
    except ValueError as exc:
        raise OrgImportError(str(exc)) from None
