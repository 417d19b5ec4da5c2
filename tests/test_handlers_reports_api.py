"""`/api/reports` and `/api/records`: consultations made the real way (through the Inbox) counted in the
summary for the union admin's region, the 附件3 form as .xlsx and CSV, the records staff enter (with
history), and who may see what (a union admin its region and below, lawyers nothing)."""

from __future__ import annotations

import io
import uuid
from urllib.parse import unquote

from openpyxl import load_workbook

from bot.inbox import Inbound
from bot.roster import CHINA
from models import Worker, utcnow
from tests.test_handlers_staff_api import app, login, open_ticket, org  # noqa: F401 - fixtures

TODAY = utcnow().astimezone(CHINA).date()  # the default period is this month so far, in China time


def ask(app, region_code, openid, text):  # noqa: F811 - app is the fixture's value here
    with app.extensions["workerlaw.sessions"]() as s:
        s.add(Worker(channel="mp", openid=openid, region_code=region_code, first_contact_at=utcnow()))
        s.flush()
        now = utcnow()
        msg = Inbound(
            channel="mp",
            openid=openid,
            msg_type="text",
            dedup_key=uuid.uuid4().hex,
            created_at=now,
            content=text,
        )
        app.extensions["workerlaw.inbox"].handle(s, msg, now=now, passive=False)
        s.commit()


def test_the_summary_counts_real_consultations_for_my_region_only(app, client, org):  # noqa: F811
    open_ticket(app, "t1", "oT1", "我想找律师")
    ask(app, "t1", "oR1", "我送外卖的，站长扣我工资怎么办")
    ask(app, "d2", "oD2", "老板拖欠工资三个月怎么办")
    ua1 = login(client, "ua1")
    res = client.get("/api/reports/summary", headers=ua1)
    assert res.status_code == 200, res.get_json()
    data = res.get_json()
    assert data["region"]["id"] == org["d1"]
    c = data["consultations"]
    assert (c["total"], c["workers"]["total"], c["new_form"]) == (2, 2, 1)
    assert c["by_channel"]["oa"]["consultations"] == 1 and c["by_channel"]["mp"]["consultations"] == 1
    assert c["by_worker_type"]["rider"]["consultations"] == 1
    assert data["lawyers"]["tickets"] == 1
    everything = client.get("/api/reports/summary", headers=login(client, "admin")).get_json()
    assert everything["consultations"]["total"] == 3 and everything["region"] is None
    # Not mine, not a lawyer's, not a date, not a parameter, not signed in.
    assert client.get(f"/api/reports/summary?region={org['d2']}", headers=ua1).status_code == 403
    assert client.get("/api/reports/summary", headers=login(client, "lawyer1")).status_code == 403
    bad = client.get("/api/reports/summary?start=2026-13-01", headers=ua1)
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.get_json()["message"]
    assert client.get("/api/reports/summary?start=2026-11-02&end=2026-11-01", headers=ua1).status_code == 400
    assert client.get("/api/reports/summary?region=abc", headers=ua1).status_code == 400
    assert client.get("/api/reports/summary?colour=red", headers=ua1).status_code == 400
    assert client.get("/api/reports/summary").status_code == 401


def test_records_entered_through_the_api_fill_the_form(app, client, org):  # noqa: F811
    ua1 = login(client, "ua1")
    day = TODAY.isoformat()
    created = client.post(
        "/api/records",
        json={"region_id": org["t1"], "kind": "lecture", "day": day, "sessions": 2, "people": 60},
        headers=ua1,
    )
    assert created.status_code == 201, created.get_json()
    record_id = created.get_json()["id"]
    refused = client.post(
        "/api/records",
        json={"region_id": org["t1"], "kind": "lecture", "day": day, "sessions": 2},
        headers=ua1,
    )
    assert refused.status_code == 400 and refused.get_json()["field"] == "people"
    sibling = client.post(
        "/api/records",
        json={"region_id": org["d2"], "kind": "leaflets", "day": day, "copies": 5},
        headers=ua1,
    )
    assert sibling.status_code == 403
    changed = client.put(
        f"/api/records/{record_id}", json={"day": day, "sessions": 3, "people": 90}, headers=ua1
    )
    assert changed.status_code == 200 and changed.get_json()["people"] == 90
    detail = client.get(f"/api/records/{record_id}", headers=ua1).get_json()
    assert [h["action"] for h in detail["history"]] == ["create", "update"]
    assert detail["history"][1]["before"]["people"] == 60
    assert client.get(f"/api/records/{record_id}", headers=login(client, "ua2")).status_code == 404
    assert client.get("/api/records", headers=login(client, "lawyer1")).status_code == 403
    listed = client.get("/api/records", headers=ua1).get_json()["items"]
    assert [r["id"] for r in listed] == [record_id]
    kinds = client.get("/api/records/kinds", headers=ua1).get_json()["kinds"]
    assert {k["kind"] for k in kinds} >= {"lecture", "legal_aid", "checkup", "funds"}

    xlsx = client.get("/api/reports/form.xlsx", headers=ua1)
    assert xlsx.status_code == 200 and xlsx.mimetype.endswith("spreadsheetml.sheet")
    assert "情况统计表_一区" in unquote(xlsx.headers["Content-Disposition"])
    sheet = load_workbook(io.BytesIO(xlsx.data))["情况统计表"]
    assert sheet.cell(5, 13).value == "面向新就业形态劳动者普法宣讲（场次/人数）"
    assert sheet.cell(6, 13).value == "3/90"  # the offline lecture, as edited
    assert load_workbook(io.BytesIO(xlsx.data))["填报记录"].cell(2, 1).value == record_id
    csv_text = client.get("/api/reports/form.csv", headers=ua1).get_data(as_text=True)
    assert "线下法治宣传情况,面向新就业形态劳动者普法宣讲（场次/人数）,3/90" in csv_text
    assert client.get("/api/reports/form.pdf", headers=ua1).status_code == 404
    assert client.delete(f"/api/records/{record_id}", headers=ua1).status_code == 200
    assert client.get(f"/api/records/{record_id}", headers=ua1).status_code == 404
