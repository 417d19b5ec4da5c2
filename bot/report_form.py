"""The 附件3 情况统计表 (the campaign's statistics form, as the city union's notice of 2023 gives it:
东工〔2023〕12号) filled from a summary (`bot.reports`), written as .xlsx or CSV.

The form has two tables; each has column groups and, under them, the columns in the seed's words and
order. Online consultations (人次) come from the logged consultations of 新就业形态 workers; every other
cell from the records staff entered (`bot.activities`), also 新就业形态 only except the enterprises' 法治体检
and the funds. A cell for two figures (场次/人数, 件/人次, 件/追回金额) shows them as the form asks:
"a/b". The workbook adds a sheet of the breakdowns and one listing each record behind the figures.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from bot.roster import CHINA, Tree

TITLE = "{year}年“尊法守法·携手筑梦”服务农民工公益法律服务行动情况统计表"
SOURCE_NOTE = (
    "说明：线上“为新就业形态劳动者提供法律咨询（人次）”= 本系统记录的外卖骑手、快递员、网约车司机及其他平台劳动者的"
    "咨询人次 + 工会填报的其他线上咨询；其余各项为工会填报记录之和（见“填报记录”表）。金额单位：万元。"
)


def _sum(summary: dict, kind: str, field: str, *, mode: str | None = None, group: str = "new_form") -> Any:
    kinds = summary["records"].get(kind)
    if kinds is None:
        return 0
    modes = (mode,) if mode else ("online", "offline")
    total = sum(kinds[m][group][field] for m in modes)
    return round(total, 2) if field == "amount" else total


def _figure(
    kind: str, field: str, *, mode: str | None = None, group: str = "new_form"
) -> Callable[[dict], Any]:
    """A cell holding one sum of the entered records (amounts in 万元 with two decimals)."""

    def value(summary: dict) -> Any:
        total = _sum(summary, kind, field, mode=mode, group=group)
        return f"{float(total):.2f}" if field == "amount" else total

    return value


def _figures(kind: str, first: str, second: str, *, mode: str | None = None) -> Callable[[dict], str]:
    """A cell holding two sums as the form writes them: 场次/人数, 件/人次, 件/追回金额."""
    a, b = _figure(kind, first, mode=mode), _figure(kind, second, mode=mode)
    return lambda summary: f"{a(summary)}/{b(summary)}"


@dataclass(frozen=True)
class Column:
    header: str
    value: Callable[[dict], Any]


@dataclass(frozen=True)
class Group:
    title: str
    columns: tuple[Column, ...]


def _online_consultations(s: dict) -> int:
    return s["consultations"]["new_form"] + _sum(s, "consultation", "person_times", mode="online")


def _lawyers(s: dict) -> int:
    return _sum(s, "team", "lawyers", group="all") + s["lawyers"]["lawyers_responding"]


TABLES: tuple[tuple[Group, ...], ...] = (
    (
        Group(
            "下发通知（方案）",
            (
                Column("发文时间", lambda s: "、".join(n["day"] for n in s["records"]["notices"])),
                Column("发文单位", lambda s: "、".join(n["issuer"] for n in s["records"]["notices"])),
            ),
        ),
        Group(
            "参与地区数量",
            (
                Column("市（地）", lambda s: s["active_regions"]["cities"]),
                Column("县（区）", lambda s: s["active_regions"]["districts"]),
            ),
        ),
        Group(
            "人员组织情况",
            (
                Column("参与律协（个）", _figure("team", "associations", group="all")),
                Column("组建队伍（个）", _figure("team", "teams", group="all")),
                Column("参与律师（人）", _lawyers),
                Column(
                    "参与“全国维护职工权益杰出律师”（人）",
                    _figure("team", "outstanding_lawyers", group="all"),
                ),
            ),
        ),
        Group(
            "线上法律服务情况",
            (
                Column(
                    "面向新就业形态劳动者普法宣讲（场次/人数）",
                    _figures("lecture", "sessions", "people", mode="online"),
                ),
                Column("为新就业形态劳动者提供法律咨询（人次）", _online_consultations),
                Column(
                    "为新就业形态劳动者调处劳动争议（件/人次）",
                    _figures("mediation", "cases", "person_times", mode="online"),
                ),
            ),
        ),
        Group(
            "线下法治宣传情况",
            (
                Column("向新就业形态劳动者发放宣传资料（份）", _figure("leaflets", "copies")),
                Column(
                    "面向新就业形态劳动者普法宣讲（场次/人数）",
                    _figures("lecture", "sessions", "people", mode="offline"),
                ),
                Column(
                    "为新就业形态劳动者提供法律咨询（人次）",
                    _figure("consultation", "person_times", mode="offline"),
                ),
                Column("惠及新就业形态劳动者（人次）", _figure("outreach", "person_times")),
            ),
        ),
    ),
    (
        Group(
            "线下劳动用工“法治体检”情况",
            (
                Column(
                    "覆盖平台企业及其合作用工企业数量（个）", _figure("checkup", "enterprises", group="all")
                ),
                Column("为企业提供劳动用工法律咨询（件）", _figure("checkup", "consultations", group="all")),
                Column(
                    "为企业提供劳动用工法律风险评估（件）", _figure("checkup", "assessments", group="all")
                ),
                Column(
                    "帮助企业建立健全劳动关系矛盾预防化解机制（项）",
                    _figure("checkup", "mechanisms", group="all"),
                ),
            ),
        ),
        Group(
            "线下劳动争议调处和法律援助情况",
            (
                Column(
                    "为新就业形态劳动者调处劳动争议（件/人次）",
                    _figures("mediation", "cases", "person_times", mode="offline"),
                ),
                Column(
                    "办理新就业形态劳动者法律援助案件（件/人次）",
                    _figures("legal_aid", "cases", "person_times"),
                ),
                Column("挽回新就业形态劳动者经济损失（万元）", _figure("legal_aid", "amount")),
                Column(
                    "办理新就业形态劳动者工资拖欠法律援助案件（件/追回金额）",
                    _figures("legal_aid:wage", "cases", "amount"),
                ),
                Column(
                    "办理新就业形态劳动者工伤赔偿法律援助案件（件）", _figure("legal_aid:injury", "cases")
                ),
                Column("金额（万元）", _figure("legal_aid:injury", "amount")),
            ),
        ),
        Group("投入资金", (Column("投入资金（万元）", _figure("funds", "amount", group="all")),)),
    ),
)


def cells(summary: dict) -> list[list[tuple[str, str, Any]]]:
    """Each table's cells in order: (group title, column header, value)."""
    return [[(g.title, c.header, c.value(summary)) for g in table for c in g.columns] for table in TABLES]


def title(summary: dict) -> str:
    return TITLE.format(year=summary["period"]["start"][:4])


def _unit(summary: dict) -> str:
    region = summary.get("region")
    return region["name"] if region else "全部地区"


def to_csv(summary: dict) -> str:
    """The form as CSV (UTF-8 with BOM, so Excel opens it right): one line per cell, then the period."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow(["表", "分组", "项目", "数值"])
    for number, table in enumerate(cells(summary), 1):
        for group, header, value in table:
            writer.writerow([number, group, header, value])
    period = summary["period"]
    writer.writerow([])
    writer.writerow(["填报单位", _unit(summary), "统计期间", f"{period['start']} 至 {period['end']}"])
    return out.getvalue()


RECORD_COLUMNS = (
    ("id", "编号"),
    ("region", "地区"),
    ("day", "日期"),
    ("kind", "类型"),
    ("online", "线上"),
    ("new_form", "面向新就业形态"),
    ("figures", "数字"),
    ("amount", "金额（万元）"),
    ("note", "备注"),
    ("entered", "填报人/时间"),
)


def to_xlsx(summary: dict, *, records: Iterable[dict[str, Any]] = (), made_on: date) -> bytes:
    """The form as an .xlsx workbook: sheet 情况统计表 (both tables, headers merged as in the seed), sheet
    分项统计 (the breakdowns) and sheet 填报记录 (`records`: the entered records behind the figures)."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Border, Font, Side
    from openpyxl.utils import get_column_letter

    book = Workbook()
    sheet = book.active
    sheet.title = "情况统计表"
    thin = Side(style="thin")
    box = Border(left=thin, right=thin, top=thin, bottom=thin)
    centre = Alignment(horizontal="center", vertical="center", wrap_text=True)
    width = max(sum(len(g.columns) for g in table) for table in TABLES)
    sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=width)
    sheet.cell(1, 1, title(summary)).font = Font(bold=True, size=14)
    sheet.cell(1, 1).alignment = centre
    period = summary["period"]
    sheet.cell(2, 1, f"填报单位：{_unit(summary)}")
    sheet.cell(2, 5, f"统计期间：{period['start']} 至 {period['end']}")
    sheet.cell(2, 10, f"{made_on.year}年{made_on.month}月{made_on.day}日")
    row = 4
    for table, values in zip(TABLES, cells(summary), strict=True):
        column = 1
        for group in table:
            span = len(group.columns)
            if span > 1:
                sheet.merge_cells(
                    start_row=row, start_column=column, end_row=row, end_column=column + span - 1
                )
            sheet.cell(row, column, group.title)
            for offset, col in enumerate(group.columns):
                sheet.cell(row + 1, column + offset, col.header)
            column += span
        for offset, (_, _, value) in enumerate(values):
            sheet.cell(row + 2, 1 + offset, value)
        for r in range(row, row + 3):
            for c in range(1, column):
                cell = sheet.cell(r, c)
                cell.border, cell.alignment = box, centre
                if r < row + 2:
                    cell.font = Font(bold=True)
        sheet.row_dimensions[row + 1].height = 75
        row += 4
    sheet.cell(row, 1, SOURCE_NOTE)
    for c in range(1, width + 1):
        sheet.column_dimensions[get_column_letter(c)].width = 14
    _breakdowns(book.create_sheet("分项统计"), summary)
    listing = book.create_sheet("填报记录")
    listing.append([label for _, label in RECORD_COLUMNS])
    for record in records:
        listing.append([record.get(key) for key, _ in RECORD_COLUMNS])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _breakdowns(sheet, summary: dict) -> None:
    c = summary["consultations"]
    w = c["workers"]
    sheet.append(["项目", "分项", "人次", "人数"])
    sheet.append(["线上咨询合计", "", c["total"], w["total"]])
    sheet.append(["其中新就业形态劳动者", "", c["new_form"], w["new_form"]])
    names = {"oa": "公众号", "mp": "小程序", "web": "网页", "offline": "线下（填报）"}
    for code, item in c["by_channel"].items():
        sheet.append(["渠道", names.get(code, code), item["consultations"], w["by_channel"].get(code)])
    for code, item in c["by_worker_type"].items():
        sheet.append(["劳动者类型", item["label"], item["consultations"], w["by_worker_type"].get(code)])
    for code, n in c["by_category"].items():
        sheet.append(["问题类别", code, n, None])
    resolution = {"bot": "机器人解答", "lawyer": "律师解答", "referred": "转介", "pending": "待律师处理"}
    for code, n in c["by_resolution"].items():
        sheet.append(["处理结果", resolution.get(code, code), n, None])
    for item in summary["regions"]:
        sheet.append(["地区", item["name"], item["consultations"], None])
    lawyers = summary["lawyers"]
    response = lawyers["first_response_minutes"]
    sheet.append(["律师", "转人工件数", lawyers["tickets"], None])
    sheet.append(["律师", "首次回复中位数（分钟）", response["median"], None])
    sheet.append(["律师", "首次回复90%分位（分钟）", response["p90"], None])
    sheet.append(["律师", "超时首次回复", lawyers["breaches"]["late_first_response"], None])
    ratings = c["ratings"]
    sheet.append(["评价", "平均分", ratings["average"], ratings["count"]])
    sheet.column_dimensions["A"].width = 22
    sheet.column_dimensions["B"].width = 28


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FORMATS = {"xlsx": XLSX, "csv": "text/csv; charset=utf-8"}


@dataclass(frozen=True)
class Export:
    """A finished file: its bytes, a download name and its media type."""

    content: bytes
    filename: str
    mimetype: str


def export(reports: Any, session: Any, scope: Any, fmt: str, *, now: Any) -> Export:
    """The form of `scope` (`bot.reports.Scope`) as `fmt` ("xlsx" or "csv"), with its download name."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    tree = Tree(session)
    summary = reports.summary(session, scope, now=now, tree=tree)
    if fmt == "csv":
        content = to_csv(summary).encode("utf-8")
    else:
        made_on = now.astimezone(CHINA).date()
        content = to_xlsx(summary, records=reports.records_behind(session, scope, tree=tree), made_on=made_on)
    name = f"情况统计表_{_unit(summary)}_{scope.start.isoformat()}_{scope.end.isoformat()}.{fmt}"
    return Export(content, name, FORMATS[fmt])
