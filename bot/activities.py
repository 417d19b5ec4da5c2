"""The records union staff enter by hand for the reports (`models.activity`): which kinds there are and
which figures each needs, validation, who may enter for which region, and create / edit / delete with
the history of every change.

A union admin enters and edits records of their region and the regions below it; an admin anywhere;
lawyers none. Every change writes an `ActivityChange` with the values before and after, so each figure
of an exported form can be traced to the records and the people behind it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.privacy import mask
from bot.roster import CHINA, Tree
from bot.staff import visible_regions
from models import as_utc
from models.activity import COUNT_FIELDS, ActivityChange, ActivityRecord
from models.org import Region, StaffUser

MAX_COUNT = 10_000_000
MAX_ID = 2**31 - 1  # ids are 32-bit integers in PostgreSQL
MAX_AMOUNT = Decimal("100000000")  # 万元
EARLIEST = date(2000, 1, 1)
MAX_NOTE = 500
MAX_ISSUER = 100
TOPICS = {"wage": "工资拖欠", "injury": "工伤赔偿", "other": "其他"}


@dataclass(frozen=True)
class Kind:
    """A kind of record: its name, the figures it needs (field, label, unit), whether it carries an
    amount in 万元 (and what the amount means), and whether it may be held online."""

    label: str
    fields: tuple[tuple[str, str, str], ...] = ()
    amount: str | None = None
    online: bool = False
    issuer: bool = False
    topic: bool = False


KINDS: dict[str, Kind] = {
    "notice": Kind("下发通知（方案）", issuer=True),
    "team": Kind(
        "人员组织",
        (
            ("associations", "参与律协", "个"),
            ("teams", "组建队伍", "个"),
            ("lawyers", "参与律师", "人"),
            ("outstanding_lawyers", "参与“全国维护职工权益杰出律师”", "人"),
        ),
    ),
    "lecture": Kind("普法宣讲", (("sessions", "场次", "场"), ("people", "人数", "人")), online=True),
    "leaflets": Kind("发放宣传资料", (("copies", "份数", "份"),)),
    "consultation": Kind("法律咨询（本系统以外）", (("person_times", "人次", "人次"),), online=True),
    "outreach": Kind("惠及劳动者", (("person_times", "人次", "人次"),)),
    "checkup": Kind(
        "劳动用工“法治体检”",
        (
            ("enterprises", "覆盖平台企业及其合作用工企业", "个"),
            ("consultations", "为企业提供劳动用工法律咨询", "件"),
            ("assessments", "为企业提供劳动用工法律风险评估", "件"),
            ("mechanisms", "帮助企业建立健全劳动关系矛盾预防化解机制", "项"),
        ),
    ),
    "mediation": Kind(
        "调处劳动争议", (("cases", "件数", "件"), ("person_times", "人次", "人次")), online=True
    ),
    "legal_aid": Kind(
        "法律援助案件",
        (("cases", "件数", "件"), ("person_times", "人次", "人次")),
        amount="挽回经济损失（追回金额）",
        topic=True,
    ),
    "funds": Kind("投入资金", amount="投入资金"),
}
EDITABLE = ("region_id", "day", "online", "new_form", "topic", *COUNT_FIELDS, "amount", "issuer", "note")


class RecordError(ValueError):
    """A record refused; the message (Chinese, for the clerk) names the field. `status` for the API."""

    def __init__(self, message: str, *, field: str | None = None, status: int = 400):
        super().__init__(message)
        self.field, self.status = field, status


def _count(value: Any, label: str) -> int:
    if (
        isinstance(value, str)
        and value.strip().isascii()
        and value.strip().isdigit()
        and len(value.strip()) <= 9
    ):
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_COUNT:
        raise RecordError(f"{label}须为 0 到 {MAX_COUNT} 之间的整数")
    return value


def _amount(value: Any, label: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise RecordError(f"{label}须为金额（万元）")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise RecordError(f"{label}须为金额（万元），例如 3.5") from None
    if (
        not amount.is_finite()
        or amount < 0
        or amount > MAX_AMOUNT
        or amount != amount.quantize(Decimal("0.01"))
    ):
        raise RecordError(f"{label}须为 0 以上、最多两位小数的金额（万元）")
    return abs(amount.quantize(Decimal("0.01")))  # abs: "-0" is zero, never shown as -0.00


def _text(value: Any, label: str, limit: int) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str) or len(value.strip()) > limit:
        raise RecordError(f"{label}须为不超过 {limit} 字的文字")
    return value.strip()


def validate(kind_code: str, values: dict[str, Any], *, today: date) -> dict[str, Any]:
    """The record's columns from `values` (figures as numbers or digit strings): every figure the kind
    needs present and in range, none it does not, the day not in the future. RecordError otherwise."""
    kind = KINDS.get(kind_code) if isinstance(kind_code, str) else None
    if kind is None:
        raise RecordError("记录类型不正确", field="kind")
    out: dict[str, Any] = {"kind": kind_code}
    day = values.get("day")
    if isinstance(day, str):
        try:
            day = date.fromisoformat(day)
        except ValueError:
            raise RecordError("日期格式应为 YYYY-MM-DD", field="day") from None
    if not isinstance(day, date) or not EARLIEST <= day <= today:
        raise RecordError("日期须在 2000-01-01 到今天之间", field="day")
    out["day"] = day
    wanted = {name for name, _, _ in kind.fields}
    for name in COUNT_FIELDS:
        given = values.get(name)
        if name in wanted:
            label = next(lbl for n, lbl, _ in kind.fields if n == name)
            if given is None or given == "":
                raise RecordError(f"请填写{label}", field=name)
            try:
                out[name] = _count(given, label)
            except RecordError as exc:
                raise RecordError(str(exc), field=name) from None
        elif given not in (None, ""):
            raise RecordError(f"“{kind.label}”不填写此项", field=name)
        else:
            out[name] = None
    given = values.get("amount")
    if kind.amount:
        if given in (None, "") and kind_code == "funds":
            raise RecordError(f"请填写{kind.amount}（万元）", field="amount")
        try:
            out["amount"] = None if given in (None, "") else _amount(given, kind.amount)
        except RecordError as exc:
            raise RecordError(str(exc), field="amount") from None
    elif given not in (None, ""):
        raise RecordError(f"“{kind.label}”不填写金额", field="amount")
    else:
        out["amount"] = None
    online = values.get("online", False)
    if not isinstance(online, bool):
        raise RecordError("“线上”须为是或否", field="online")
    if online and not kind.online:
        raise RecordError(f"“{kind.label}”只能是线下活动", field="online")
    out["online"] = online
    new_form = values.get("new_form", True)
    if not isinstance(new_form, bool):
        raise RecordError("“面向新就业形态劳动者”须为是或否", field="new_form")
    out["new_form"] = new_form
    topic = values.get("topic") or None
    if kind.topic:
        if topic is None:
            topic = "other"
        if not isinstance(topic, str) or topic not in TOPICS:
            raise RecordError("案件类型须为工资拖欠、工伤赔偿或其他", field="topic")
    elif topic is not None:  # any value, even a malformed one, is refused for kinds without a topic
        raise RecordError(f"“{kind.label}”不填写案件类型", field="topic")
    out["topic"] = topic
    issuer = _text(values.get("issuer"), "发文单位", MAX_ISSUER)
    if kind.issuer and issuer is None:
        raise RecordError("请填写发文单位", field="issuer")
    if not kind.issuer and issuer is not None:
        raise RecordError(f"“{kind.label}”不填写发文单位", field="issuer")
    out["issuer"] = issuer
    out["note"] = _text(values.get("note"), "备注", MAX_NOTE)
    return out


def _snapshot(record: ActivityRecord) -> dict[str, Any]:
    data: dict[str, Any] = {"kind": record.kind}
    for name in EDITABLE:
        value = getattr(record, name)
        if isinstance(value, date):
            value = value.isoformat()
        elif isinstance(value, Decimal):
            value = str(value)
        data[name] = value
    return data


def _writable_regions(session: Session, user: StaffUser) -> set[int] | None:
    if user.role not in ("union_admin", "admin"):
        raise RecordError("只有工会管理员可以填报统计记录", status=403)
    return visible_regions(session, user)


def _check_region(session: Session, user: StaffUser, region_id: Any) -> int:
    if (
        not isinstance(region_id, int)
        or isinstance(region_id, bool)
        or not 1 <= region_id <= MAX_ID
        or session.get(Region, region_id) is None
    ):
        raise RecordError("地区不存在", field="region_id")
    allowed = _writable_regions(session, user)
    if allowed is not None and region_id not in allowed:
        raise RecordError("只能填报本级及下级地区的记录", field="region_id", status=403)
    return region_id


def _today(now: datetime) -> date:
    return as_utc(now).astimezone(CHINA).date()


def create(
    session: Session, user: StaffUser, *, region_id: Any, kind: str, values: dict[str, Any], now: datetime
) -> ActivityRecord:
    """A new record (flushed, with its history line)."""
    region = _check_region(session, user, region_id)
    columns = validate(kind, values, today=_today(now))
    record = ActivityRecord(region_id=region, created_by=user.id, created_at=now, **columns)
    session.add(record)
    session.flush()
    session.add(
        ActivityChange(
            record_id=record.id, action="create", staff_id=user.id, after=_snapshot(record), at=now
        )
    )
    return record


def get(session: Session, user: StaffUser, record_id: int) -> ActivityRecord:
    """A record the user may see (404 otherwise: records of other regions are not disclosed)."""
    allowed = _writable_regions(session, user)
    record = session.get(ActivityRecord, record_id)
    if (
        record is None
        or record.deleted_at is not None
        or (allowed is not None and record.region_id not in allowed)
    ):
        raise RecordError("记录不存在", status=404)
    return record


def update(
    session: Session, user: StaffUser, record_id: int, *, values: dict[str, Any], now: datetime
) -> ActivityRecord:
    """Replace the record's values (the kind stays); the history keeps both versions."""
    record = get(session, user, record_id)
    before = _snapshot(record)
    region = _check_region(session, user, values.get("region_id", record.region_id))
    columns = validate(record.kind, values, today=_today(now))
    for name, value in columns.items():
        setattr(record, name, value)
    record.region_id, record.updated_by, record.updated_at = region, user.id, now
    after = _snapshot(record)
    if after != before:
        session.add(
            ActivityChange(
                record_id=record.id, action="update", staff_id=user.id, before=before, after=after, at=now
            )
        )
    session.flush()
    return record


def delete(session: Session, user: StaffUser, record_id: int, *, now: datetime) -> None:
    """Mark the record deleted (its row and history stay, so earlier exports can still be explained)."""
    record = get(session, user, record_id)
    record.deleted_at, record.updated_by, record.updated_at = now, user.id, now
    session.add(
        ActivityChange(
            record_id=record.id, action="delete", staff_id=user.id, before=_snapshot(record), at=now
        )
    )
    session.flush()


def history(session: Session, record_id: int) -> list[ActivityChange]:
    """Every change to the record, oldest first (callers check the record is the user's to see)."""
    query = select(ActivityChange).where(ActivityChange.record_id == record_id).order_by(ActivityChange.id)
    return list(session.scalars(query))


def listing(
    session: Session,
    user: StaffUser,
    *,
    start: date,
    end: date,
    region_id: int | None = None,
    limit: int = 500,
) -> list[ActivityRecord]:
    """The user's records with `day` in [start, end], in `region_id`'s subtree when given, newest first."""
    allowed = _writable_regions(session, user)
    if region_id is not None:
        tree = Tree(session)
        wanted = tree.subtree(region_id) if region_id in tree.parent else set()
        allowed = wanted if allowed is None else wanted & allowed
    query = select(ActivityRecord).where(
        ActivityRecord.deleted_at.is_(None), ActivityRecord.day >= start, ActivityRecord.day <= end
    )
    if allowed is not None:
        query = query.where(ActivityRecord.region_id.in_(allowed))
    return list(
        session.scalars(query.order_by(ActivityRecord.day.desc(), ActivityRecord.id.desc()).limit(limit))
    )


def as_dict(record: ActivityRecord) -> dict[str, Any]:
    """The record for the JSON API and the console."""
    return {
        "id": record.id,
        **_snapshot(record),
        "created_by": record.created_by,
        "created_at": as_utc(record.created_at).isoformat(),
        "updated_by": record.updated_by,
        "updated_at": as_utc(record.updated_at).isoformat() if record.updated_at else None,
    }


def describe(record: ActivityRecord, *, region: str, entered_by: str | None) -> dict[str, Any]:
    """The record as one readable line of the form's 填报记录 sheet."""
    kind = KINDS[record.kind]
    figures = "；".join(f"{label} {getattr(record, name)}{unit}" for name, label, unit in kind.fields)
    if record.topic:
        figures = f"{TOPICS[record.topic]}：{figures}"
    if record.issuer:
        figures = f"发文单位 {record.issuer}"
    entered_at = as_utc(record.created_at).astimezone(CHINA).strftime("%Y-%m-%d %H:%M")
    return {
        "id": record.id,
        "region": region,
        "day": record.day.isoformat(),
        "kind": kind.label,
        "online": "线上" if record.online else "线下",
        "new_form": "是" if record.new_form else "否",
        "figures": figures,
        "amount": float(record.amount) if record.amount is not None else None,
        "note": mask(record.note) if record.note else None,
        "entered": f"{entered_by or '-'} {entered_at}",
    }
