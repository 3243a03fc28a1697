"""``gisgrid cases`` covers what the API offers — report with role/address/disposal type/photos, the list filters and
formats of GET /cases, actions with after-photos, merging duplicates, the printable orders (HTML or PDF) — and refuses
bad input
with one ``error: …`` line, a non-zero exit and nothing written.

Commands run through ``gisgrid.cli.main`` (the installed entry point: its error handling is what users see) on the
small district in a real PostGIS."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from pyproj import Transformer
from sqlalchemy import Engine, text

from gisgrid import case_actions, case_documents, case_intake, case_queries
from gisgrid import cases as svc
from gisgrid.cli import main
from gisgrid.settings import Settings
from tests.fixtures import CJK_FONTS, METRIC, X0, Y0, read_pdf, real_deadlock

TZ = ZoneInfo("Asia/Shanghai")
GARBAGE, MANHOLE = "06010", "01001"  # 暴露垃圾; 供水井盖异常 (disposal types 默认 and 紧急)
TO_LONLAT = Transformer.from_crs(METRIC, "EPSG:4490", always_xy=True)

#: The zh-CN text of finite_number (messages_zh.csv): the CLI prints it before the English.
FINITE = "须为有限的数(不能是 NaN 或无穷大)"


def lonlat(east_m: float, north_m: float) -> tuple[float, float]:
    """A point of the small district given in metres from its south-west corner (street 1 west of 700 m)."""
    lon, lat = TO_LONLAT.transform(X0 + east_m, Y0 + north_m)
    return float(lon), float(lat)


def at(text_: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text_).replace(tzinfo=TZ)


@dataclass
class Run:
    code: int
    out: str
    err: str


Gisgrid = Callable[..., Run]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"  # the ``services`` fixture's photo store lives here too


@pytest.fixture
def gisgrid(
    settings: Settings, data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Gisgrid:
    """``gisgrid ARGS…`` as typed in a shell: exit code, stdout, stderr."""
    monkeypatch.setenv("GISGRID_DATABASE_URL", settings.database_url or "")
    monkeypatch.setenv("GISGRID_DATA_DIR", str(data_dir))

    def run(*args: str) -> Run:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["gisgrid", *args])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return Run(code, out, err)

    return run


def assert_refused(r: Run, message: str) -> None:
    """Exit 1 with exactly one line ``error: …`` on stderr containing ``message``, and no traceback."""
    assert r.code == 1, (r.out, r.err)
    assert r.err.startswith("error: ") and r.err.count("\n") == 1, r.err
    assert message in r.err, r.err
    assert "Traceback" not in r.err + r.out


def picture(fmt: str = "JPEG", color: tuple[int, int, int] = (200, 120, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(buf, fmt)
    return buf.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one())
            for t in ("cases", "case_transitions", "case_photos", "case_documents")
        }


def stored_files(data_dir: Path) -> list[Path]:
    photos = data_dir / "photos"
    return sorted(p for p in photos.rglob("*") if p.is_file()) if photos.exists() else []


def case_row(engine: Engine, case_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(text("SELECT * FROM cases WHERE id = :i"), {"i": case_id}).mappings().one()


def report(
    engine: Engine, services: svc.CaseServices, point: tuple[float, float], now: str, **kw: Any
) -> tuple[int, str]:
    """A case filed through the domain at a given time: (id, case number); by the intake desk (受理员), which
    registers reports of every channel, unless ``reporter_role`` says who."""
    kw.setdefault("reporter_role", "intake")
    item = case_intake.Intake(
        class_code=kw.pop("class_code", GARBAGE), lon=point[0], lat=point[1], datum="cgcs2000", **kw
    )
    case_id, created = case_intake.intake(engine, services, item, now=at(now))
    assert created
    return case_id, case_row(engine, case_id)["case_no"]


def act(
    engine: Engine, services: svc.CaseServices, case_id: int, action: str, role: str, version: int, now: str, **p: Any
) -> None:
    req = case_actions.ActionRequest(action=action, role=role, actor="测试员", version=version, payload=p)
    case_actions.act(engine, services, case_id, req, now=at(now))


def dispatched(engine: Engine, services: svc.CaseServices, point: tuple[float, float], now: str, **kw: Any) -> int:
    """A case reported (``kw``: more of the report), verified, filed and dispatched (version 4; a 交办单 issued)."""
    case_id, _ = report(engine, services, point, now, **kw)
    act(engine, services, case_id, "verify", "supervisor", 1, now)
    act(engine, services, case_id, "file", "shift_lead", 2, now)
    act(engine, services, case_id, "dispatch", "dispatcher", 3, now)
    return case_id


# -- report -----------------------------------------------------------------------------------------------------


def test_report_takes_role_address_disposal_type_and_photos(
    gisgrid: Gisgrid, loaded: Engine, data_dir: Path, tmp_path: Path
) -> None:
    lon, lat = lonlat(300, 400)
    jpeg, png = picture("JPEG"), picture("PNG", (10, 90, 200))
    r = gisgrid(
        "cases", "report", "--class", MANHOLE, "--lon", str(lon), "--lat", str(lat), "--datum", "cgcs2000",
        "--role", "intake", "--reporter", "张伟", "--address", "中原路12号", "--disposal-type", "紧急",
        "--source", "hotline", "--description", "井盖缺失",
        "--photo", str(write(tmp_path / "IMG_1.jpg", jpeg)), "--photo", str(write(tmp_path / "IMG_2.png", png)),
    )  # fmt: skip
    assert r.code == 0, r.err
    assert r.out.startswith("created: case ")
    shown = json.loads(r.out.split("\n", 1)[1])
    assert shown["state"] == "reported" and shown["disposal_type"] == "紧急" and shown["photos"] == 2
    row = case_row(loaded, shown["id"])
    assert (row["reporter"], row["reporter_role"], row["address"], row["source"]) == (
        "张伟", "intake", "中原路12号", "hotline"
    )  # fmt: skip
    assert row["disposal_type"] == "紧急" and row["urgent"] is True and row["description"] == "井盖缺失"
    with loaded.connect() as conn:
        photos = conn.execute(
            text("SELECT sha256, kind, content_type FROM case_photos WHERE case_id = :c ORDER BY id"), {"c": row["id"]}
        ).all()
        first = conn.execute(
            text("SELECT action, actor, role FROM case_transitions WHERE case_id = :c"), {"c": row["id"]}
        ).one()
    assert photos == [
        (hashlib.sha256(jpeg).hexdigest(), "before", "image/jpeg"),
        (hashlib.sha256(png).hexdigest(), "before", "image/png"),
    ]
    assert tuple(first) == ("report", "张伟", "intake")
    assert sorted(p.read_bytes() for p in stored_files(data_dir)) == sorted([jpeg, png])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "boss"], "--role: unknown role 'boss'"),
        (["--disposal-type", "特急"], "disposal_type: '特急' is not a disposal type of 暴露垃圾"),
        (["--source", "fax"], "source: must be one of patrol"),
        (["--address", "路" * 257], "--address: at most 256 characters, got 257"),
        (["--key", "k" * 101], "--key: at most 100 characters"),
        (["--key", ""], "--key: empty; send a key of 1–100 characters (a new UUID per report), or none"),
        (["--key", "  "], "--key: empty; send a key of 1–100 characters (a new UUID per report), or none"),
        (["--description", "x" * 2001], "--description: at most 2000 characters"),
        (["--lon", "500"], "error: 超出允许范围 / --lon: 500.0 is outside ±180°\n"),
        # NaN and infinity are no number of degrees: said as the API's finite_number, not "outside ±180°"
        (["--lon", "nan"], f"error: {FINITE} / --lon: nan is not a finite number\n"),
        (["--lat", "inf"], f"error: {FINITE} / --lat: inf is not a finite number\n"),
        (["--lon", "-inf"], f"error: {FINITE} / --lon: -inf is not a finite number\n"),
        (["--photo", "MISSING.jpg"], "--photo: MISSING.jpg is not a file"),
        (["--photo", "NOT_A_PICTURE"], "photos[0]: "),
        (["--class", "99999"], "class_code: unknown gbt47678 event class '99999'"),
    ],
)
def test_report_refusals_are_one_line_and_write_nothing(
    gisgrid: Gisgrid,
    loaded: Engine,
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    message: str,
) -> None:
    write(tmp_path / "NOT_A_PICTURE", b"<html>not a picture</html>")
    monkeypatch.chdir(tmp_path)
    lon, lat = lonlat(300, 400)
    base = ["cases", "report", "--class", GARBAGE, "--lon", str(lon), "--lat", str(lat), "--datum", "cgcs2000"]
    assert_refused(gisgrid(*base, *args), message)
    assert counts(loaded) == {"cases": 0, "case_transitions": 0, "case_photos": 0, "case_documents": 0}
    assert stored_files(data_dir) == []


def test_a_class_only_in_the_component_catalogue_is_refused_saying_an_event_class_row_is_needed(
    gisgrid: Gisgrid, loaded: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # review55 F9: a city's extension component class 21001 was refused as any unknown class, not saying why.
    from gisgrid.settings import PROJECT_ROOT

    city = tmp_path / "部件类别.csv"
    city.write_text(
        "scheme,code,big_code,big_name,name,default_dept,evidence\n"
        "gbt47678,21001,21,扩展部件,共享单车停放点,990000000000000001,L\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("GISGRID_CATALOGUE_EXTRA", json.dumps([str(city)]))
    lon, lat = lonlat(300, 400)
    r = gisgrid("cases", "report", "--class", "21001", "--lon", str(lon), "--lat", str(lat), "--datum", "cgcs2000")
    events = PROJECT_ROOT / "data" / "catalogue" / "event_classes.csv"
    assert (r.code, r.out, r.err) == (
        1,
        "",
        "error: 不在类别目录中:请重新选择类别 / class_code: unknown gbt47678 event class '21001'; component class "
        "21001 (共享单车停放点) exists but has no event class, which a report needs: add a row for it (code 21001, "
        f"component_class 21001) to an event classes file, a GISGRID_CATALOGUE_EXTRA file with the header of "
        f"{events}, and its 默认 time limit (data/catalogue/EVENTS.md) / 部件类别 21001 存在,但无对应事项类别:请在"
        "事项类别文件中加一行\n",
    )
    assert counts(loaded) == {"cases": 0, "case_transitions": 0, "case_photos": 0, "case_documents": 0}
    # Any other unknown class is refused as before.
    r = gisgrid("cases", "report", "--class", "21002", "--lon", str(lon), "--lat", str(lat), "--datum", "cgcs2000")
    assert r.err == "error: 不在类别目录中:请重新选择类别 / class_code: unknown gbt47678 event class '21002'\n"


# -- list -------------------------------------------------------------------------------------------------------


@pytest.fixture
def three_cases(loaded: Engine, services: svc.CaseServices) -> dict[str, int]:
    """West (street 1) in September by patrol, east (street 2) and west in October by the 12345 hotline."""
    a, _ = report(loaded, services, lonlat(150, 300), "2025-09-26T10:00:00", source="patrol")
    b, _ = report(loaded, services, lonlat(1000, 400), "2025-10-10T10:00:00", source="hotline")
    c, _ = report(loaded, services, lonlat(250, 600), "2025-10-20T10:00:00", source="hotline")
    return {"sept_west_patrol": a, "oct_east_hotline": b, "oct_west_hotline": c}


def listed(gisgrid: Gisgrid, *args: str) -> list[int]:
    r = gisgrid("cases", "list", "--format", "json", *args)
    assert r.code == 0, r.err
    body = json.loads(r.out)
    assert body["count"] == len(body["data"]) or "--limit" in args
    return [c["id"] for c in body["data"]]


def test_show_prints_the_case_with_its_nodes_judged_as_the_evaluation_judges_them(
    gisgrid: Gisgrid, loaded: Engine, services: svc.CaseServices
) -> None:
    case_id = dispatched(loaded, services, lonlat(150, 300), "2025-10-13T09:00:00")  # 处置 due 14:30 that day
    r = gisgrid("cases", "show", str(case_id))
    assert r.code == 0, r.err
    shown = json.loads(r.out)
    assert shown["closed_on_time"] is None  # open
    (disposal,) = [n for n in shown["nodes"] if n["node"] == "disposal"]
    assert (disposal["opened_at"], disposal["closed_at"]) == ("2025-10-13T09:00:00+08:00", None)
    assert (disposal["limit_h"], disposal["on_time"]) == (4.0, False)  # still open now, long overdue
    assert shown["timeline"][disposal["opened_step"]]["action"] == "dispatch"


def _box(center: tuple[float, float], d: float = 0.0005) -> str:
    return f"{center[0] - d},{center[1] - d},{center[0] + d},{center[1] + d}"


def test_list_filters_by_source_period_and_bbox_as_the_api_does(gisgrid: Gisgrid, three_cases: dict[str, int]) -> None:
    a, b, c = three_cases["sept_west_patrol"], three_cases["oct_east_hotline"], three_cases["oct_west_hotline"]
    assert listed(gisgrid) == [c, b, a]  # newest first
    assert listed(gisgrid, "--source", "hotline") == [c, b]
    assert listed(gisgrid, "--source", "patrol") == [a]
    assert listed(gisgrid, "--since", "2025-10-01", "--until", "2025-10-15") == [b]
    assert listed(gisgrid, "--since", "2025-10-10T10:00:00+08:00") == [c, b]  # since is inclusive
    assert listed(gisgrid, "--until", "2025-10-10T10:00") == [a]  # until is exclusive; Beijing time without a zone
    assert listed(gisgrid, "--period", "2025-10") == [c, b]
    assert listed(gisgrid, "--period", "2025-09") == [a]
    assert listed(gisgrid, "--period", "2025-10-15..2025-11-01") == [c]
    assert listed(gisgrid, "--bbox", _box(lonlat(1000, 400))) == [b]
    west = ",".join(map(str, (*lonlat(0, 0), *lonlat(600, 800))))
    assert listed(gisgrid, "--bbox", west) == [c, a]
    assert listed(gisgrid, "--bbox", west, "--source", "hotline", "--period", "2025-10") == [c]
    assert listed(gisgrid, "--source", "sensor") == []
    assert listed(gisgrid, "--escalation-level", "3") == [c, b, a] and listed(gisgrid, "--escalation-level", "1") == []
    assert listed(gisgrid, "--queue", "routed") == [c, b, a] and listed(gisgrid, "--queue", "manual") == []
    r = gisgrid("cases", "list", "--format", "json", "--limit", "1", "--offset", "1")
    assert json.loads(r.out)["count"] == 3 and [x["id"] for x in json.loads(r.out)["data"]] == [b]


def test_list_follows_changes_as_the_api_does(gisgrid: Gisgrid, loaded: Engine, services: svc.CaseServices) -> None:
    """--changed-since / --sort updated: the change feed of GET /cases (reported, or any step, at or after)."""
    early = dispatched(loaded, services, lonlat(150, 300), "2025-10-13T09:00:00")
    late = dispatched(loaded, services, lonlat(250, 600), "2025-10-14T09:00:00")
    # a step a day after its deadline (14:30 on 10-14): 督办 of the overdue case
    act(loaded, services, late, "supervise", "leader", 4, "2025-10-15T10:00:00", reason="催办")
    assert listed(gisgrid, "--changed-since", "2025-10-13") == [late, early]  # newest report first
    assert listed(gisgrid, "--changed-since", "2025-10-13", "--sort", "updated") == [early, late]
    assert listed(gisgrid, "--changed-since", "2025-10-14") == [late]
    assert listed(gisgrid, "--changed-since", "2025-10-15T10:00") == [late]  # Beijing time, inclusive
    assert listed(gisgrid, "--changed-since", "2025-10-15T10:00:01+08:00") == []


def test_list_filters_by_case_number_and_pending_extension_as_the_api_does(
    gisgrid: Gisgrid, loaded: Engine, services: svc.CaseServices
) -> None:
    waiting = dispatched(loaded, services, lonlat(150, 300), "2025-10-13T09:00:00")
    act(loaded, services, waiting, "request_extension", "department", 4, "2025-10-13T10:00:00", reason="等材料")
    other = dispatched(loaded, services, lonlat(250, 600), "2025-10-13T09:00:00")
    assert listed(gisgrid, "--pending-extension") == [waiting]
    assert listed(gisgrid, "--no-pending-extension") == [other]
    assert listed(gisgrid) == [other, waiting]
    number = case_row(loaded, other)["case_no"]
    assert listed(gisgrid, "--case-no", number) == [other]
    assert listed(gisgrid, "--case-no", number, "--pending-extension") == []
    assert listed(gisgrid, "--case-no", "1999000001") == []


def test_show_act_and_document_take_a_case_number_and_refuse_one_that_is_also_another_cases_id(
    gisgrid: Gisgrid, loaded: Engine, services: svc.CaseServices, tmp_path: Path
) -> None:
    a = dispatched(loaded, services, lonlat(150, 300), "2025-10-13T09:00:00")
    b, b_no = report(loaded, services, lonlat(250, 600), "2025-10-13T09:30:00")
    a_no = case_row(loaded, a)["case_no"]
    shown = gisgrid("cases", "show", a_no)  # the number the CLI prints
    assert shown.code == 0 and json.loads(shown.out)["id"] == a
    assert json.loads(gisgrid("cases", "show", str(a)).out)["id"] == a  # the id still works
    acted = gisgrid("cases", "act", b_no, "verify", "--role", "supervisor", "--actor", "王", "--version", "1")
    assert acted.code == 0 and acted.out.startswith(f"case {b_no}: "), acted.err
    assert case_row(loaded, b)["version"] == 2
    out = tmp_path / "jb.html"
    assert gisgrid("cases", "document", a_no, "--out", str(out)).code == 0 and a_no in out.read_text("utf-8")
    # An imported city's number that reads as an id: case A numbered as B's id. The bare value names two cases:
    # refused, nothing guessed; id: and no: say which.
    with loaded.begin() as conn:
        conn.execute(text("UPDATE cases SET case_no = :n WHERE id = :i"), {"n": str(b), "i": a})
    assert_refused(
        gisgrid("cases", "show", str(b)),
        f"case: '{b}' is ambiguous: case number {b} is the case with id {a}, and id {b} is case {b_no}; "
        f"write no:{b} or id:{b}",
    )
    ambiguous = gisgrid("cases", "act", str(b), "check", "--role", "supervisor", "--actor", "王", "--version", "2")
    assert_refused(ambiguous, "is ambiguous")
    assert case_row(loaded, b)["version"] == 2  # nothing done
    assert json.loads(gisgrid("cases", "show", f"id:{b}").out)["id"] == b
    assert json.loads(gisgrid("cases", "show", f"no:{b}").out)["id"] == a
    assert_refused(gisgrid("cases", "show", f"no:{a_no}"), f"no case with case number {a_no}")  # renumbered
    assert_refused(gisgrid("cases", "show", "id:x1"), "case: 'id:x1': an id is a whole number")


def test_list_as_geojson_is_a_feature_collection(gisgrid: Gisgrid, three_cases: dict[str, int], loaded: Engine) -> None:
    r = gisgrid("cases", "list", "--format", "geojson", "--limit", "2")
    assert r.code == 0, r.err
    fc = json.loads(r.out)
    assert fc["type"] == "FeatureCollection" and fc["numberMatched"] == 3 and fc["numberReturned"] == 2
    newest = three_cases["oct_west_hotline"]
    assert [f["id"] for f in fc["features"]] == [newest, three_cases["oct_east_hotline"]]
    f = fc["features"][0]
    with loaded.connect() as conn:
        x, y = conn.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM cases WHERE id = :i"), {"i": newest}).one()
    assert f["type"] == "Feature" and f["geometry"] == {"type": "Point", "coordinates": [round(x, 7), round(y, 7)]}
    assert f["properties"]["source"] == "hotline" and "lon" not in f["properties"]


def test_list_pages_by_the_cursor_it_prints(gisgrid: Gisgrid, three_cases: dict[str, int]) -> None:
    a, b, c = three_cases["sept_west_patrol"], three_cases["oct_east_hotline"], three_cases["oct_west_hotline"]
    r = gisgrid("cases", "list", "--limit", "2")
    assert r.code == 0, r.err
    assert r.out.splitlines()[0] == "3 case(s)" and r.out.splitlines()[-1] == f"next page: --after {b}"
    last = gisgrid("cases", "list", "--limit", "2", "--after", str(b))
    assert [line.split()[0] for line in last.out.splitlines()] == ["3", str(a)]  # the count, the one left, no next
    page = json.loads(gisgrid("cases", "list", "--format", "json", "--limit", "1").out)
    assert ([x["id"] for x in page["data"]], page["count"], page["next_after"]) == ([c], 3, str(c))
    assert json.loads(gisgrid("cases", "list", "--format", "geojson", "--after", str(c)).out)["next_after"] is None


def test_list_as_text_is_one_line_per_case(gisgrid: Gisgrid, three_cases: dict[str, int]) -> None:
    r = gisgrid("cases", "list", "--source", "hotline")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0] == "2 case(s)" and len(lines) == 3
    assert lines[1].split()[0] == str(three_cases["oct_west_hotline"]) and "暴露垃圾" in lines[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--limit", "-5"], "--limit: must be between 1 and 5000, got -5"),
        (["--limit", "0"], "--limit: must be between 1 and 5000"),
        (["--limit", "5001"], "--limit: must be between 1 and 5000"),
        (["--offset", "-5"], "--offset: must be between 0 and 10000000, got -5"),
        (
            ["--offset", "99999999999999999999999"],
            "--offset: must be between 0 and 10000000, got 99999999999999999999999",
        ),
        (["--period", "0001-01"], "period: '0001-01' is outside the years 1900–2100"),
        (["--bbox", "113,34,114"], "--bbox: expected 4 numbers, got 3"),
        (["--bbox", "a,b,c,d"], "--bbox: 'a,b,c,d' is not four comma-separated numbers"),
        (["--bbox", "114,35,113,34"], "--bbox: need minLon < maxLon"),
        (["--bbox", "113.6,34.7,113.6,34.8"], "--bbox: need minLon < maxLon within ±180 and minLat < maxLat"),
        (["--since", "yesterday"], "--since: 'yesterday' is not a date or date-time"),
        (["--since", "2025-10-02", "--until", "2025-10-01"], "until: must be after since"),
        (["--period", "2025-13"], "月份须为 1–12 / period: month must be 1–12, got 13"),
        (["--period", "2025-W53"], "period: 2025 has 52 ISO weeks (2025-W01…2025-W52), got week 53"),
        (["--period", "someday"], "period: 'someday' is not a month"),
        (["--period", "2025-10", "--since", "2025-10-01"], "--period: give either --period or --since/--until"),
        (["--source", "fax"], "source: must be one of patrol"),
        (["--grid", "123"], "grid: a grid code has 15 (unit), 9, 12 or 14"),
        (["--state", "lost"], "state: unknown state(s) lost"),
        (["--light", "blue"], "light: must be green, yellow or red"),
        (["--class", "abc"], "class_code: an event class code has 4 or 5 digits, got 'abc'"),  # as the API's 422
        (["--department", "nope"], "department: unknown department 'nope'"),
        (["--queue", "auto"], "queue: must be one of manual, routed, got 'auto'"),
        (["--case-no", " 2025000001"], "case_no: a case number is 1 to 20 characters"),
        (["--changed-since", "yesterday"], "--changed-since: 'yesterday' is not a date or date-time"),
        (["--sort", "oldest"], "sort: must be one of newest, updated, due, got 'oldest'"),
        (["--after", "7.5"], "after: not a page cursor of sort=newest (take it from the list's next link), got '7.5'"),
        (["--after", "7", "--offset", "1"], "after: give a page cursor or an offset, not both"),
    ],
)
def test_list_refusals_are_one_line(gisgrid: Gisgrid, clean_db: Engine, args: list[str], message: str) -> None:
    assert_refused(gisgrid("cases", "list", *args), message)


def test_a_deadlock_is_one_line_saying_nothing_was_written_not_a_traceback(
    gisgrid: Gisgrid, clean_db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    deadlock = real_deadlock(clean_db)

    def case_page(*_a: Any, **_kw: Any) -> Any:
        raise deadlock

    monkeypatch.setattr(case_queries, "case_page", case_page)
    r = gisgrid("cases", "list")
    assert_refused(
        r,
        "error: 与其他操作冲突 / conflicted with a concurrent change: the step it was in was rolled back (steps "
        "committed before it stay); run the command again (DeadlockDetected 40P01: deadlock detected)\n",
    )


# -- act --------------------------------------------------------------------------------------------------------


def test_handle_with_after_photos_stores_them(
    gisgrid: Gisgrid, loaded: Engine, services: svc.CaseServices, data_dir: Path, tmp_path: Path
) -> None:
    case_id = dispatched(loaded, services, lonlat(300, 400), "2025-10-13T09:00:00")
    one, two = picture("JPEG", (1, 2, 3)), picture("PNG", (4, 5, 6))
    r = gisgrid(
        "cases", "act", str(case_id), "handle", "--role", "department", "--actor", "李师傅", "--version", "4",
        "--result", "已清理", "--photo", str(write(tmp_path / "after1.jpg", one)),
        "--photo", str(write(tmp_path / "after2.png", two)),
    )  # fmt: skip
    assert r.code == 0, r.err
    assert "处置 (handled), version 5" in r.out
    with loaded.connect() as conn:
        photos = conn.execute(
            text("SELECT sha256, kind FROM case_photos WHERE case_id = :c ORDER BY id"), {"c": case_id}
        ).all()
        step = conn.execute(
            text(
                "SELECT actor, role, attachments, details FROM case_transitions "
                "WHERE case_id = :c AND action = 'handle'"
            ),
            {"c": case_id},
        ).one()
    assert photos == [(hashlib.sha256(one).hexdigest(), "after"), (hashlib.sha256(two).hexdigest(), "after")]
    assert services.photos.open(photos[0][0]).read_bytes() == one
    assert step.actor == "李师傅" and step.role == "department" and step.attachments == ["after1.jpg", "after2.png"]
    assert "已清理" in json.dumps(step.details, ensure_ascii=False)
    assert case_row(loaded, case_id)["state"] == "handled"


def test_photos_with_another_action_are_stored_as_evidence(
    gisgrid: Gisgrid, loaded: Engine, services: svc.CaseServices, tmp_path: Path
) -> None:
    case_id = dispatched(loaded, services, lonlat(300, 400), "2025-10-13T09:00:00")
    shot = picture("JPEG", (9, 9, 9))
    r = gisgrid(
        "cases", "act", str(case_id), "return", "--role", "department", "--actor", "李师傅", "--version", "4",
        "--reason", "非本部门职责", "--photo", str(write(tmp_path / "site.jpg", shot)),
    )  # fmt: skip
    assert r.code == 0, r.err
    assert "回退 (returned), version 5" in r.out
    with loaded.connect() as conn:
        photos = conn.execute(text("SELECT sha256, kind FROM case_photos WHERE case_id = :c"), {"c": case_id}).all()
        details = conn.execute(
            text("SELECT details FROM case_transitions WHERE case_id = :c AND action = 'return'"), {"c": case_id}
        ).scalar_one()
    assert photos == [(hashlib.sha256(shot).hexdigest(), "evidence")]
    assert "非本部门职责" in json.dumps(details, ensure_ascii=False)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["file", "--role", "shift_lead", "--payload", "[1]"], "error: --payload must be a JSON object"),
        (["file", "--role", "shift_lead", "--payload", '"x"'], "error: --payload must be a JSON object"),
        (["file", "--role", "shift_lead", "--payload", "null"], "error: --payload must be a JSON object"),
        (["file", "--role", "shift_lead", "--payload", "{bad"], "error: --payload is not JSON"),
        (["handle", "--role", "department", "--result", "ok", "--photo", "NOT_A_PICTURE"], "photos[0]: "),
        (["handle", "--role", "department", "--result", "ok", "--photo", "MISSING.jpg"], "--photo: MISSING.jpg"),
        (["handle", "--role", "department", "--photo", "ok.jpg"], "'result'"),  # no --result
        (["handle", "--role", "dispatcher", "--result", "ok", "--photo", "ok.jpg"], "not allowed for role"),
        (["fly", "--role", "department"], "unknown action 'fly'"),
        (["handle", "--role", "department", "--result", "ok"], "after_photo"),  # 处置 needs its after-photo
        (["return", "--role", "department"], "'reason'"),
        (["return", "--role", "department", "--reason", "r" * 2001], "--reason: at most 2000 characters"),
        (["handle", "--role", "department", "--note", "n" * 2001], "--note: at most 2000 characters"),
    ],
)
def test_act_refusals_are_one_line_and_write_nothing(
    gisgrid: Gisgrid,
    loaded: Engine,
    services: svc.CaseServices,
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    message: str,
) -> None:
    case_id = dispatched(loaded, services, lonlat(300, 400), "2025-10-13T09:00:00")
    write(tmp_path / "NOT_A_PICTURE", b"GIF89a but not really")
    write(tmp_path / "ok.jpg", picture())
    monkeypatch.chdir(tmp_path)
    before = counts(loaded)
    action, *rest = args
    r = gisgrid("cases", "act", str(case_id), action, "--actor", "张", "--version", "4", *rest)
    assert_refused(r, message)
    assert counts(loaded) == before
    assert case_row(loaded, case_id)["version"] == 4 and case_row(loaded, case_id)["state"] == "dispatched"
    assert stored_files(data_dir) == []


def test_a_stale_version_or_an_unknown_case_is_one_line(
    gisgrid: Gisgrid, loaded: Engine, services: svc.CaseServices
) -> None:
    case_id, _ = report(loaded, services, lonlat(300, 400), "2025-10-13T09:00:00")
    stale = gisgrid("cases", "act", str(case_id), "verify", "--role", "supervisor", "--actor", "王", "--version", "3")
    assert_refused(stale, "verify")
    missing = gisgrid("cases", "act", "987654", "verify", "--role", "supervisor", "--actor", "王", "--version", "1")
    assert_refused(missing, "no case with id or case number 987654")
    assert case_row(loaded, case_id)["version"] == 1


def test_the_reviewers_commands_print_one_line_not_a_traceback(tmp_path: Path) -> None:
    """As typed in a shell (D9): refused before any database is needed."""
    env = {
        **os.environ,
        "GISGRID_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "GISGRID_DATA_DIR": str(tmp_path),
    }
    commands = [
        (["act", "8647", "file", "--role", "shift_lead", "--actor", "张", "--version", "2", "--payload", "[1]"],
         "error: --payload must be a JSON object\n"),
        (["list", "--limit", "-5"], "error: --limit: must be between 1 and 5000, got -5\n"),
        (["list", "--offset", "-5"], "error: --offset: must be between 0 and 10000000, got -5\n"),
        (["list", "--offset", "10000001"], "error: --offset: must be between 0 and 10000000, got 10000001\n"),
    ]  # fmt: skip
    for args, stderr in commands:
        r = subprocess.run([sys.executable, "-m", "gisgrid", "cases", *args], capture_output=True, text=True, env=env)
        assert (r.returncode, r.stderr, r.stdout) == (1, stderr, "")


# -- merge ------------------------------------------------------------------------------------------------------


@pytest.fixture
def duplicate_pair(loaded: Engine, services: svc.CaseServices) -> tuple[int, str, int]:
    """The same 暴露垃圾 reported twice at one spot: (kept id, kept number, duplicate id)."""
    kept, kept_no = report(loaded, services, lonlat(300, 400), "2025-10-13T09:00:00")
    dup, _ = report(loaded, services, lonlat(300, 400), "2025-10-13T09:10:00")
    return kept, kept_no, dup


def test_merge_voids_the_duplicate_and_points_it_at_the_kept_case(
    gisgrid: Gisgrid, loaded: Engine, duplicate_pair: tuple[int, str, int]
) -> None:
    kept, kept_no, dup = duplicate_pair
    r = gisgrid(
        "cases", "merge", str(dup), "--into", str(kept), "--version", "1", "--actor", "赵", "--role", "shift_lead"
    )
    assert r.code == 0, r.err
    assert "作废 (voided), version 2" in r.out and f"duplicate of case {kept_no} (id {kept})" in r.out
    row = case_row(loaded, dup)
    assert (row["state"], row["duplicate_of"], row["version"], row["due_at"]) == ("voided", kept, 2, None)
    with loaded.connect() as conn:
        step = conn.execute(
            text("SELECT actor, role, details FROM case_transitions WHERE case_id = :c AND action = 'void'"), {"c": dup}
        ).one()
    assert step.actor == "赵" and step.role == "shift_lead" and step.details["duplicate_of"] == kept
    assert case_row(loaded, kept)["state"] == "reported" and case_row(loaded, kept)["version"] == 1


def test_merge_takes_case_numbers_as_show_and_act_do(
    gisgrid: Gisgrid, loaded: Engine, duplicate_pair: tuple[int, str, int]
) -> None:
    kept, kept_no, dup = duplicate_pair
    dup_no = case_row(loaded, dup)["case_no"]
    r = gisgrid(
        "cases", "merge", f"no:{dup_no}", "--into", kept_no, "--version", "1", "--actor", "赵", "--role", "shift_lead"
    )
    assert r.code == 0, r.err
    assert f"duplicate of case {kept_no} (id {kept})" in r.out
    assert (case_row(loaded, dup)["state"], case_row(loaded, dup)["duplicate_of"]) == ("voided", kept)


@pytest.mark.parametrize(
    ("into", "version", "role", "message"),
    [
        ("self", "1", "shift_lead", "into: a case cannot be a duplicate of itself"),
        ("987654", "1", "shift_lead", "no case with id or case number 987654"),
        ("kept", "1", "dispatcher", "void is not allowed for role 'dispatcher'"),
        ("kept", "5", "shift_lead", "version"),
        ("kept", "1", "chief", "unknown role 'chief'"),
    ],
)
def test_merge_refusals_are_one_line_and_change_nothing(
    gisgrid: Gisgrid,
    loaded: Engine,
    duplicate_pair: tuple[int, str, int],
    into: str,
    version: str,
    role: str,
    message: str,
) -> None:
    kept, _, dup = duplicate_pair
    target = {"self": str(dup), "kept": str(kept)}.get(into, into)
    before = counts(loaded)
    r = gisgrid("cases", "merge", str(dup), "--into", target, "--version", version, "--actor", "赵", "--role", role)
    assert_refused(r, message)
    assert counts(loaded) == before
    row = case_row(loaded, dup)
    assert (row["state"], row["duplicate_of"], row["version"]) == ("reported", None, 1)


# -- documents --------------------------------------------------------------------------------------------------


PHOTOS = [("a.jpg", picture("JPEG")), ("b.png", picture("PNG", (10, 90, 200)))]


@pytest.fixture
def supervised(loaded: Engine, services: svc.CaseServices) -> int:
    """Reported with a JPEG and a PNG, dispatched on Monday (交办单 JB…-01), supervised as overdue the next day
    (督办单 DB…-01)."""
    case_id = dispatched(loaded, services, lonlat(300, 400), "2025-10-13T09:00:00", photos=PHOTOS)
    act(loaded, services, case_id, "supervise", "leader", 4, "2025-10-14T09:00:00", reason="超期未处置")
    return case_id


def _documents(engine: Engine, services: svc.CaseServices, case_id: int) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        return {d["kind"]: d for d in svc.get_case(conn, services, case_id)["documents"]}


def test_document_names_the_city_s_center_as_the_issuer(
    gisgrid: Gisgrid, supervised: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """review55 F4: `cases document` prints GISGRID_CENTER_NAME as the order's issuer, in the page and the PDF."""
    monkeypatch.setenv("GISGRID_CENTER_NAME", " 新密市数字化城市管理监督指挥中心 ")  # the spaces round it dropped
    out = tmp_path / "order.html"
    assert gisgrid("cases", "document", str(supervised), "--kind", "supervision", "--out", str(out)).code == 0
    page = out.read_text(encoding="utf-8")
    assert page.count("监督指挥中心") == 1 and '<div class="body">新密市数字化城市管理监督指挥中心</div>' in page
    pdf = tmp_path / "order.pdf"
    assert gisgrid("cases", "document", str(supervised), "--kind", "supervision", "--out", str(pdf)).code == 0
    assert read_pdf(pdf.read_bytes()).text.startswith("新密市数字化城市管理监督指挥中心 督 办 单 Supervision order")


@pytest.mark.parametrize(("kind", "label", "prefix"), [("dispatch", "交办单", "JB"), ("supervision", "督办单", "DB")])
def test_document_writes_the_page_the_api_serves(
    gisgrid: Gisgrid,
    loaded: Engine,
    services: svc.CaseServices,
    supervised: int,
    tmp_path: Path,
    kind: str,
    label: str,
    prefix: str,
) -> None:
    case_no = case_row(loaded, supervised)["case_no"]
    out = tmp_path / "order.html"
    r = gisgrid("cases", "document", str(supervised), "--kind", kind, "--out", str(out))
    assert r.code == 0, r.err
    assert r.out == f"wrote {out} ({label} {prefix}{case_no}-01)\n"
    page = out.read_text(encoding="utf-8")
    doc = _documents(loaded, services, supervised)[kind]
    with loaded.connect() as conn:
        # GET /cases/{id}/documents/{doc}
        served = case_documents.render_document(conn, services, supervised, doc["id"])
        assert page == case_documents.render_document(conn, services, supervised, doc["id"], embed_photos=True)
    assert case_no in page and label in page and "<svg" in page
    # The file shows its photos wherever it is opened or printed: each one inline as its print copy (the PDF's
    # JPEG, at most 1,200 px; never the original), in report order; the served page is the same page with the
    # service's photo URLs.
    shas = [hashlib.sha256(b).hexdigest() for _, b in PHOTOS]
    copies = [services.photos.print_copy(h).read_bytes() for h in shas]
    inline = [f"data:image/jpeg;base64,{base64.b64encode(c).decode()}" for c in copies]
    assert re.findall(r'<img src="([^"]*)"', page) == inline
    assert re.findall(r'<img src="([^"]*)"', served) == [f"/cases/{supervised}/photos/{h}" for h in shas]
    # ... and the served page's link to its PDF, which a file has no use for.
    link = f'<nav class="tools"><a href="/cases/{supervised}/documents/{doc["id"]}.pdf" download>下载 PDF</a></nav>\n'
    assert served.count(link) == 1
    assert (
        served.replace(f"/cases/{supervised}/photos/{shas[0]}", inline[0])
        .replace(f"/cases/{supervised}/photos/{shas[1]}", inline[1])
        .replace(link, "")
        == page
    )
    assert "/cases/" not in page and '<link rel="icon" href="data:,">' in page
    by_number = tmp_path / "by-number.html"
    again = gisgrid(
        "cases", "document", str(supervised), "--kind", kind, "--number", doc["number"], "--out", str(by_number)
    )
    assert again.code == 0, again.err
    assert by_number.read_text(encoding="utf-8") == page


def test_document_html_embeds_the_print_copy_of_a_big_photo(
    gisgrid: Gisgrid, loaded: Engine, services: svc.CaseServices, tmp_path: Path
) -> None:
    """A phone-sized photo (4000×3000) is embedded as its 1,200 px print copy: the file stays small."""
    buf = io.BytesIO()
    Image.effect_noise((4000, 3000), 64).convert("RGB").save(buf, "JPEG", quality=95)
    big = buf.getvalue()
    case_id = dispatched(loaded, services, lonlat(300, 400), "2025-10-13T09:00:00", photos=[("big.jpg", big)])
    out = tmp_path / "order.html"
    assert gisgrid("cases", "document", str(case_id), "--out", str(out)).code == 0
    page = out.read_text(encoding="utf-8")
    (uri,) = re.findall(r'<img src="data:image/jpeg;base64,([^"]*)"', page)
    with Image.open(io.BytesIO(base64.b64decode(uri))) as im:
        assert im.size == (1200, 900)
    assert len(big) > 2_000_000 and len(page) < len(big) // 2, (len(big), len(page))


def test_document_writes_the_pdf_with_its_photos(
    gisgrid: Gisgrid, loaded: Engine, supervised: int, tmp_path: Path
) -> None:
    case_no = case_row(loaded, supervised)["case_no"]
    out = tmp_path / "order.pdf"  # the name picks the PDF
    r = gisgrid("cases", "document", str(supervised), "--out", str(out))
    assert r.code == 0, r.err
    assert r.out == f"wrote {out} (交办单 JB{case_no}-01, PDF)\n"
    data = out.read_bytes()
    assert data.startswith(b"%PDF-")
    pdf = read_pdf(data)
    assert pdf.pages == 1
    assert f"单号 Order No.：JB{case_no}-01" in pdf.text and f"案件编号 Case No. {case_no}" in pdf.text
    assert "案件类别 Class 06010 暴露垃圾" in pdf.text
    assert "承办部门 Department 990000000000000003 区环境卫生服务中心" in pdf.text
    assert pdf.images == ((64, 48), (64, 48))  # the report's JPEG and PNG, read from the photo store
    assert any(f.startswith(CJK_FONTS) for f in pdf.fonts), pdf.fonts
    # --pdf whatever the name (the 督办单 here); not under an HTML name.
    named = tmp_path / "order"
    r = gisgrid("cases", "document", str(supervised), "--kind", "supervision", "--pdf", "--out", str(named))
    assert r.code == 0, r.err
    assert r.out == f"wrote {named} (督办单 DB{case_no}-01, PDF)\n"
    supervision = read_pdf(named.read_bytes())
    assert f"单号 Order No.：DB{case_no}-01" in supervision.text and "督办事由 Reason 超期未处置" in supervision.text
    assert supervision.images == pdf.images
    html = tmp_path / "order.html"
    assert_refused(
        gisgrid("cases", "document", str(supervised), "--pdf", "--out", str(html)),
        f"--out: {html} names an HTML file; with --pdf name it .pdf",
    )
    assert not html.exists()


def test_document_without_out_writes_the_order_number_in_the_current_folder(
    gisgrid: Gisgrid, loaded: Engine, supervised: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """review58: README says `--pdf` writes the PDF, but without --out it failed (Missing option '--out'). Now the
    file is the order's number in the current folder, .pdf with --pdf, .html without, and the line printed names
    it."""
    case_no = case_row(loaded, supervised)["case_no"]
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    r = gisgrid("cases", "document", str(supervised), "--pdf")
    assert (r.code, r.out) == (0, f"wrote JB{case_no}-01.pdf (交办单 JB{case_no}-01, PDF)\n"), r.err
    assert read_pdf((here / f"JB{case_no}-01.pdf").read_bytes()).text.count(f"JB{case_no}-01") == 1
    r = gisgrid("cases", "document", str(supervised), "--kind", "supervision")
    assert (r.code, r.out) == (0, f"wrote DB{case_no}-01.html (督办单 DB{case_no}-01)\n"), r.err
    assert f"DB{case_no}-01" in (here / f"DB{case_no}-01.html").read_text(encoding="utf-8")
    assert sorted(p.name for p in here.iterdir()) == [f"DB{case_no}-01.html", f"JB{case_no}-01.pdf"]


def test_document_pdf_without_weasyprint_is_one_line_saying_what_to_install(
    gisgrid: Gisgrid, supervised: int, tmp_path: Path, without_weasyprint: None
) -> None:
    out = tmp_path / "order.pdf"
    assert_refused(
        gisgrid("cases", "document", str(supervised), "--out", str(out)),
        "PDF orders need WeasyPrint and Pango: pip install 'weasyprint>=68.1,<71'",
    )
    assert not out.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    html = tmp_path / "order.html"
    assert gisgrid("cases", "document", str(supervised), "--out", str(html)).code == 0  # the HTML needs neither


def _rows(page: str) -> dict[str, str]:
    """Label → cell text of an order's table."""
    rows = re.findall(r"<tr[^>]*><th>([^<]*)<span[^>]*>[^<]*</span></th><td[^>]*>(.*?)</td></tr>", page, flags=re.S)
    return {label: re.sub(r"<[^>]+>", "", cell).strip() for label, cell in rows}


def test_orders_state_disposal_type_urgency_and_rework(
    gisgrid: Gisgrid, loaded: Engine, services: svc.CaseServices, tmp_path: Path
) -> None:
    """私搭乱建 to demolish (拆除), dispatched, handled, sent back (返工 "没修好"), handled and sent back again: the
    first 交办单 is a plain one, the second and third say 返工 with the count and the reason; every one says 拆除."""
    case_id = dispatched(
        loaded, services, lonlat(300, 400), "2025-10-13T09:00:00", class_code="06001", disposal_type="拆除"
    )
    case_no = case_row(loaded, case_id)["case_no"]
    version = 4
    for i, (reason, when) in enumerate([("没修好", "2025-10-14T09:00:00"), ("仍有残留", "2025-10-15T09:00:00")]):
        req = case_actions.ActionRequest(
            "handle", "department", "李师傅", version, payload={"result": "已拆除"},
            photos=[(f"after{i}.jpg", picture("JPEG", (i * 40, 200, 40)))],
        )  # fmt: skip
        case_actions.act(loaded, services, case_id, req, now=at(when))
        act(loaded, services, case_id, "rework", "supervisor", version + 1, when, reason=reason)
        version += 2
    pages = {}
    for n in ("01", "02", "03"):
        out = tmp_path / f"{n}.html"
        r = gisgrid("cases", "document", str(case_id), "--number", f"JB{case_no}-{n}", "--out", str(out))
        assert r.code == 0, r.err
        pages[n] = out.read_text(encoding="utf-8")
    assert "返工" not in pages["01"]
    for n, count, reason, stamp in (
        ("02", 1, "没修好", "2025年10月14日 09:00"),
        ("03", 2, "仍有残留", "2025年10月15日 09:00"),
    ):
        rows = _rows(pages[n])
        assert rows["返工"] == f"返工交办单（第 {count} 次返工）：核查未通过，请重新处置"
        assert rows["返工依据"] == f"核查未通过：核查人 测试员（监督员），核查时间 {stamp}，原因 {reason}"
        assert rows["签发人"] == "测试员"  # the dispatcher of the case's 派遣 (the test names every actor so)
        assert re.findall(r'<span class="flag">([^<]*)</span>', pages[n]) == ["返工"]
    assert all(_rows(p)["处置方式"] == "拆除" and "（时限 20 工作日）" in p for p in pages.values())

    urgent = dispatched(
        loaded, services, lonlat(500, 400), "2025-10-13T09:00:00", class_code=MANHOLE, disposal_type="紧急"
    )
    out = tmp_path / "urgent.html"
    assert gisgrid("cases", "document", str(urgent), "--out", str(out)).code == 0
    page = out.read_text(encoding="utf-8")
    assert re.findall(r'<span class="flag">([^<]*)</span>', page) == ["紧急"]
    assert _rows(page)["处置方式"] == "紧急，紧急案件（急件，按时限立即处置）"


def test_document_refusals_are_one_line_and_write_no_file(
    gisgrid: Gisgrid, loaded: Engine, services: svc.CaseServices, supervised: int, tmp_path: Path
) -> None:
    fresh, fresh_no = report(loaded, services, lonlat(1000, 400), "2025-10-13T09:00:00")
    case_no = case_row(loaded, supervised)["case_no"]
    out = tmp_path / "order.html"
    cases = [
        ([str(fresh)], f"case {fresh_no} has no 交办单 (dispatch order) yet"),
        ([str(fresh), "--kind", "supervision"], f"case {fresh_no} has no 督办单 (supervision order) yet"),
        ([str(supervised), "--number", "JB0-09"], f"has no 交办单 (dispatch order) JB0-09; it has JB{case_no}-01"),
        (["987654"], "no case with id or case number 987654"),
    ]
    for args, message in cases:
        assert_refused(gisgrid("cases", "document", *args, "--out", str(out)), message)
        assert not out.exists()
    nowhere = tmp_path / "missing" / "order.html"
    assert_refused(gisgrid("cases", "document", str(supervised), "--out", str(nowhere)), "--out: folder")
    assert not nowhere.parent.exists()
    assert_refused(gisgrid("cases", "document", str(supervised), "--out", str(tmp_path)), "is a folder")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary file left


def test_act_with_a_key_run_again_says_the_step_was_already_taken(
    gisgrid: Gisgrid, loaded: Engine, services: svc.CaseServices
) -> None:
    case_id, case_no = report(loaded, services, lonlat(300, 400), "2025-10-13T09:00:00")
    args = ("cases", "act", str(case_id), "verify", "--role", "supervisor", "--actor", "王", "--version", "1")
    first = gisgrid(*args, "--key", "cli-verify-1")
    assert first.code == 0 and first.out.startswith(f"case {case_no}: ") and "already taken" not in first.out
    again = gisgrid(*args, "--key", "cli-verify-1")
    assert again.code == 0, again.err
    assert again.out.rstrip().endswith("(already taken with this --key: nothing done again)")
    assert_refused(gisgrid(*args, "--key", " "), "--key: empty; send a key of 1–100 characters (a new UUID per action)")
    assert_refused(gisgrid(*args, "--key", "k" * 101), "--key: at most 100 characters, got 101")  # review34 D6
    assert_refused(gisgrid(*args), "verify")  # without the key: the stale version it always was
    assert case_row(loaded, case_id)["version"] == 2


def test_report_and_list_take_the_sending_systems_number(gisgrid: Gisgrid, loaded: Engine) -> None:
    """review33 S5: --external-ref is kept with the case and finds it again; blank, too long or holding a control
    character, it is refused in one line and nothing is written."""
    lon, lat = lonlat(300, 400)
    base = ("cases", "report", "--class", GARBAGE, "--lon", str(lon), "--lat", str(lat), "--datum", "cgcs2000")
    r = gisgrid(*base, "--source", "hotline", "--external-ref", "12345-20261128-0042")
    assert r.code == 0, r.err
    shown = json.loads(r.out.split("\n", 1)[1])
    assert shown["external_ref"] == "12345-20261128-0042"
    assert case_row(loaded, shown["id"])["external_ref"] == "12345-20261128-0042"
    assert gisgrid(*base).code == 0  # another case, without a number
    listed = gisgrid("cases", "list", "--external-ref", "12345-20261128-0042")
    assert listed.code == 0 and listed.out.startswith("1 case(s)\n") and shown["case_no"] in listed.out, listed.out
    for bad, message in (
        ("  ", "external_ref: empty"),
        ("x" * 65, "--external-ref: at most 64 characters, got 65"),
        ("a\u202eb", "--external-ref: contains the control or bidirectional character U+202E"),
    ):
        assert_refused(gisgrid(*base, "--external-ref", bad), message)
    for bad, message in (("  ", "external_ref: empty"), ("a\u202eb", "U+202E")):
        assert_refused(gisgrid("cases", "list", "--external-ref", bad), message)
    assert counts(loaded)["cases"] == 2
