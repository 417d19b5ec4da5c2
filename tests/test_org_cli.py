"""`flask org ...`: the first admin, and regions, stations and lawyers from CSV files as Excel writes them
(UTF-8 with a BOM); a bad line is named and nothing is written; imports upsert."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.roster import Tree, served_regions
from bot.staff import check_password
from models.org import Lawyer, LawyerRegion, Region, StaffUser, Station

BOM = "\ufeff"
REGIONS = (
    "code,name,level,parent_code\n"
    "t1,一镇,township,d1\n"  # its parent comes later in the file
    "d1,一区,district,city\n"
    "city,市总工会,city,\n"
    "\n"
    "p1,工业园,park,d1\n"
)


@pytest.fixture
def app(bare_app):
    return bare_app


@pytest.fixture
def run(app):
    runner = app.test_cli_runner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(args=["org", *args], input=input)

    return invoke


def write(tmp_path, name: str, text: str, *, bom: bool = False):
    path = tmp_path / name
    path.write_bytes(((BOM if bom else "") + text).encode("utf-8"))
    return str(path)


def count(app, model) -> int:
    with app.extensions["workerlaw.sessions"]() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_regions_with_a_bom_and_parents_defined_later(app, run, tmp_path):
    res = run("import-regions", write(tmp_path, "regions.csv", REGIONS, bom=True))
    assert res.exit_code == 0, res.output
    assert "imported 4 regions" in res.output and "已导入地区 4 个" in res.output
    with app.extensions["workerlaw.sessions"]() as s:
        tree = Tree(s)
        t1, d1, city = tree.by_code["t1"], tree.by_code["d1"], tree.by_code["city"]
        assert tree.chain(t1) == [t1, d1, city] and tree.root() == city
        assert tree.level[tree.by_code["p1"]] == "park" and tree.name[t1] == "一镇"


def test_importing_again_updates_instead_of_duplicating(app, run, tmp_path):
    assert run("import-regions", write(tmp_path, "a.csv", REGIONS)).exit_code == 0
    renamed = REGIONS.replace("一镇", "第一镇").replace("p1,工业园,park,d1", "p1,工业园,park,city")
    res = run("import-regions", write(tmp_path, "b.csv", renamed))
    assert res.exit_code == 0 and "0 new, 4 updated" in res.output
    with app.extensions["workerlaw.sessions"]() as s:
        tree = Tree(s)
        assert tree.name[tree.by_code["t1"]] == "第一镇"
        assert tree.parent[tree.by_code["p1"]] == tree.by_code["city"]
    assert count(app, Region) == 4


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("code,name,level,parent_code\ncity,市,city,\nd1,一区,county,city\n", 3, "level"),
        ("code,name,level,parent_code\ncity,市,city,\nd1,一区,district,nowhere\n", 3, "nowhere"),
        (
            "code,name,level,parent_code\ncity,市,city,\nd1,一区,district,city\nd1,二区,district,city\n",
            4,
            "again",
        ),
        ("code,name,level,parent_code\na,甲,district,b\nb,乙,district,a\n", 2, "cycle"),
        ("code,name,level,parent_code\ncity,市,city,\n,无名,district,city\n", 3, "code is empty"),
        ("code,name,level\ncity,市,city\n", 1, "parent_code"),
        ("code,name,level,parent_code\ncity,市,city,\nd1,一区,district\n", 3, "columns"),
    ],
)
def test_a_bad_line_is_named_and_nothing_is_written(app, run, tmp_path, text, line, words):
    res = run("import-regions", write(tmp_path, "bad.csv", text))
    assert res.exit_code != 0
    assert f"line {line}:" in res.output and words in res.output, res.output
    assert "nothing was imported" in res.output
    assert count(app, Region) == 0


def test_a_file_that_is_not_utf8_is_refused_with_its_line(app, run, tmp_path):
    path = tmp_path / "gbk.csv"
    path.write_bytes("code,name,level,parent_code\ncity,市总工会,city,\n".encode("gbk"))
    res = run("import-regions", str(path))
    assert res.exit_code != 0 and "line 2:" in res.output and "UTF-8" in res.output
    assert count(app, Region) == 0


def test_stations_and_lawyers_with_accounts(app, run, tmp_path):
    assert run("import-regions", write(tmp_path, "r.csv", REGIONS)).exit_code == 0
    stations = "code,name,region_code\nst-01,一镇服务站,t1\nst-02,园区驿站,p1\n"
    res = run("import-stations", write(tmp_path, "s.csv", stations, bom=True))
    assert res.exit_code == 0 and "imported 2 stations" in res.output, res.output
    lawyers = (
        "name,firm,phone,openid,regions,username,password\n"
        "张律师,某某律师事务所,13800000001,oLawyer1,t1;p1,zhang,zhang-password-1\n"
        "李律师,另一律所,,,d1|city,,\n"
    )
    res = run("import-lawyers", write(tmp_path, "l.csv", lawyers, bom=True))
    assert res.exit_code == 0 and "imported 2 lawyers" in res.output and "1 accounts" in res.output, (
        res.output
    )
    with app.extensions["workerlaw.sessions"]() as s:
        tree = Tree(s)
        assert s.scalars(select(Station.region_id).where(Station.code == "st-02")).one() == tree.by_code["p1"]
        zhang = s.scalars(select(Lawyer).where(Lawyer.phone == "13800000001")).one()
        assert zhang.openid == "oLawyer1" and zhang.firm == "某某律师事务所"
        assert served_regions(s, zhang.id) == {tree.by_code["t1"], tree.by_code["p1"]}
        user = s.scalars(select(StaffUser).where(StaffUser.username == "zhang")).one()
        assert (
            user.role == "lawyer"
            and user.lawyer_id == zhang.id
            and check_password(user.password_hash, "zhang-password-1")
        )
        li = s.scalars(select(Lawyer).where(Lawyer.name == "李律师")).one()
        assert served_regions(s, li.id) == set(tree.subtree(tree.by_code["city"]))
    # again, with Zhang now serving only t1: upserted by phone, the account kept, regions replaced
    again = lawyers.replace("t1;p1", "t1")
    res = run("import-lawyers", write(tmp_path, "l2.csv", again))
    assert res.exit_code == 0 and "0 new, 2 updated, 0 accounts" in res.output, res.output
    assert count(app, Lawyer) == 2 and count(app, StaffUser) == 1 and count(app, LawyerRegion) == 3


@pytest.mark.parametrize(
    ("row", "words"),
    [
        ("王律师,律所,139,,t1;nowhere,,", "nowhere"),
        ("王律师,律所,139,,t1,wang,short", "at least"),
        ("王律师,律所,139,,t1,wang,", "needs a password"),
        ("王律师,律所,139,,t1,,some-password-1", "without a username"),
    ],
)
def test_a_bad_lawyer_line_writes_nothing(app, run, tmp_path, row, words):
    assert run("import-regions", write(tmp_path, "r.csv", REGIONS)).exit_code == 0
    text = "name,firm,phone,openid,regions,username,password\n张律师,某所,138,,t1,,\n" + row + "\n"
    res = run("import-lawyers", write(tmp_path, "l.csv", text))
    assert res.exit_code != 0 and "line 3:" in res.output and words in res.output, res.output
    assert count(app, Lawyer) == 0 and count(app, LawyerRegion) == 0


def test_a_station_of_an_unknown_region_is_refused(app, run, tmp_path):
    res = run("import-stations", write(tmp_path, "s.csv", "code,name,region_code\nst-01,站,t9\n"))
    assert res.exit_code != 0 and "line 2:" in res.output and "t9" in res.output
    assert count(app, Station) == 0


def test_create_admin_then_sign_in_through_the_api(app, run):
    res = run("create-admin", "root", input="admin-password-1\nadmin-password-1\n")
    assert res.exit_code == 0 and "created admin root" in res.output, res.output
    assert "admin-password-1" not in res.output  # prompted with the input hidden
    again = run("create-admin", "root", "--password", "other-password-1")
    assert again.exit_code != 0 and "already exists" in again.output
    short = run("create-admin", "shorty", "--password", "short")
    assert short.exit_code != 0 and "at least" in short.output
    client = app.test_client()
    login = client.post("/api/login", json={"username": "root", "password": "admin-password-1"})
    assert login.status_code == 200 and login.get_json()["user"]["role"] == "admin"


def test_add_a_union_admin_of_a_region(app, run, tmp_path):
    assert run("import-regions", write(tmp_path, "r.csv", REGIONS)).exit_code == 0
    res = run(
        "add-user", "clerk", "--role", "union_admin", "--region", "d1", "--password", "clerk-password-1"
    )
    assert res.exit_code == 0, res.output
    missing = run(
        "add-user", "clerk2", "--role", "union_admin", "--region", "d9", "--password", "clerk-password-1"
    )
    assert missing.exit_code != 0 and "d9" in missing.output
    no_region = run("add-user", "clerk3", "--role", "union_admin", "--password", "clerk-password-1")
    assert no_region.exit_code != 0 and "region" in no_region.output
    with app.extensions["workerlaw.sessions"]() as s:
        user = s.scalars(select(StaffUser).where(StaffUser.username == "clerk")).one()
        assert user.role == "union_admin" and user.region_id == Tree(s).by_code["d1"]
        assert s.scalar(select(func.count()).select_from(StaffUser)) == 1
    client = app.test_client()
    assert (
        client.post("/api/login", json={"username": "clerk", "password": "clerk-password-1"}).status_code
        == 200
    )
