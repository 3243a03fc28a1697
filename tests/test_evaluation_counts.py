"""超期处置数 (overdue_disposals) and 督办数 (supervised) per department and region, on cases taken through the
live service (review26): late disposal nodes are the counted ones not on time, so they agree with 按期处置率; a
督办 counts for the department its 督办单 went to and the region of its case, on the period's cases, up to as_of.

Five 暴露垃圾 cases (4 working hours to handle; working hours 08:30–12:00, 13:30–17:30), west street W = 419902001,
east street E = 419902002, departments D1 = 990000000000000003, D2 = 990000000000000004:

    case  reported    street  dept  disposal                                       督办
    A     Mon 11-03   W       D1    10:00 → handled 15:00, on time (due 15:30)      —
    B     Tue 11-04   E       D1    10:00 → handled Wed 10:00, late                 Tue 16:00, Wed 09:30 (overdue)
    C     Thu 11-06   W       D2    10:00 → open, overdue since 15:30              Thu 11:00, flagged (not yet due)
    N     Fri 11-28   E       D2    16:00 → open, due Mon 12-01 11:00               Mon 12-01 14:00 (overdue)
    F     Thu 10-30   W       D1    10:00 → open, overdue (an October case)         Mon 11-03 09:30 (overdue)
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import openpyxl
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from api.main import create_app
from gisgrid import case_actions, case_intake
from gisgrid import cases as svc
from gisgrid.cli import app
from gisgrid.evaluation_service import indicators, parse_period
from gisgrid.settings import Settings
from tests.fixtures import COMMUNITIES, STREETS, small_district
from tests.test_evaluation_as_of import import_rows

runner = CliRunner()

TZ = ZoneInfo("Asia/Shanghai")
GARBAGE = "06010"
D1, D2 = "990000000000000003", "990000000000000004"
WEST, EAST = STREETS
NOW = "2026-01-05"  # the evaluations' wall clock: every as_of below is before it
COUNTS = ["to_dispose", "overdue_disposals", "on_time_disposal_rate", "supervised"]


def at(text_: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text_).replace(tzinfo=TZ)


def point(community: str) -> tuple[float, float]:
    geom = small_district().set_index("code").geometry[community].representative_point()
    return geom.x, geom.y


def jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (90, 90, 60)).save(buf, "JPEG")
    return buf.getvalue()


def step(engine: Engine, services: svc.CaseServices, cid: int, action: str, role: str, when: str, **kw: object) -> None:
    photos = kw.pop("photos", [])
    with engine.connect() as conn:
        version = conn.execute(text("SELECT version FROM cases WHERE id = :id"), {"id": cid}).scalar_one()
    req = case_actions.ActionRequest(
        action=action, role=role, actor="测试员", version=version, payload=dict(kw), photos=photos
    )
    case_actions.act(engine, services, cid, req, now=at(when))


def dispatched(
    engine: Engine, services: svc.CaseServices, where: str, day: str, department: str, dispatch_at: str = "10:00"
) -> int:
    """A case reported at ``where`` (a community) on ``day`` 09:00, verified, filed and dispatched to ``department``
    at ``dispatch_at``."""
    x, y = point(where)
    item = case_intake.Intake(
        class_code=GARBAGE, lon=x, lat=y, datum="cgcs2000", source="patrol", reporter_role="supervisor"
    )
    cid, created = case_intake.intake(engine, services, item, now=at(f"{day}T09:00:00"))
    assert created
    step(engine, services, cid, "verify", "supervisor", f"{day}T09:20:00")
    step(engine, services, cid, "file", "shift_lead", f"{day}T09:40:00")
    step(engine, services, cid, "dispatch", "dispatcher", f"{day}T{dispatch_at}:00", department=department)
    return cid


def handle(engine: Engine, services: svc.CaseServices, cid: int, when: str) -> None:
    step(engine, services, cid, "handle", "department", when, result="已清理", photos=[("after.jpg", jpeg())])


@pytest.fixture
def november(loaded: Engine, services: svc.CaseServices) -> Engine:
    west, east = COMMUNITIES[0], COMMUNITIES[2]
    f = dispatched(loaded, services, west, "2025-10-30", D1)
    a = dispatched(loaded, services, west, "2025-11-03", D1)
    step(loaded, services, f, "supervise", "leader", "2025-11-03T09:30:00", reason="超期未处置")
    handle(loaded, services, a, "2025-11-03T15:00:00")
    b = dispatched(loaded, services, east, "2025-11-04", D1)
    step(loaded, services, b, "supervise", "leader", "2025-11-04T16:00:00", reason="超期未处置")
    step(loaded, services, b, "supervise", "shift_lead", "2025-11-05T09:30:00", reason="再次督办")
    handle(loaded, services, b, "2025-11-05T10:00:00")
    c = dispatched(loaded, services, west, "2025-11-06", D2)
    step(loaded, services, c, "supervise", "leader", "2025-11-06T11:00:00", reason="群众反映", flagged=True)
    n = dispatched(loaded, services, east, "2025-11-28", D2, dispatch_at="16:00")
    step(loaded, services, n, "supervise", "leader", "2025-12-01T14:00:00", reason="超期未处置")
    with loaded.connect() as conn:
        logged = conn.execute(
            text(
                "SELECT c.street_code, t.department_code, t.details->>'overdue', t.details->>'flagged' "
                "FROM case_transitions t JOIN cases c ON c.id = t.case_id WHERE t.action = 'supervise' ORDER BY t.at"
            )
        ).all()
    # The service judged each 督办 overdue from the deadline (C's was flagged instead) and logged its department.
    assert [tuple(r) for r in logged] == [
        (WEST, D1, "true", "false"),
        (EAST, D1, "true", "false"),
        (EAST, D1, "true", "false"),
        (WEST, D2, "false", "true"),
        (EAST, D2, "true", "false"),
    ]
    return loaded


def counts(table: pd.DataFrame) -> dict[str, list[object]]:
    """The figures of the units with a case (the table lists the others too: 不参评, 本期无案件)."""
    return {
        str(r["subject"]): [r[c] for c in COUNTS]
        for r in table.to_dict("records")
        if r["ungraded_reason"] != "本期无案件"
    }


def assert_agrees_with_the_rate(table: pd.DataFrame) -> None:
    """超期处置数 = 应处置数 − the on-time disposal nodes behind 按期处置率, on every row."""
    rate = table["on_time_disposal_rate"].to_numpy(dtype=float)
    to_dispose = table["to_dispose"].to_numpy(dtype=np.int64)
    on_time = np.rint(np.nan_to_num(rate) * to_dispose).astype(np.int64)
    assert np.isnan(rate[to_dispose == 0]).all()
    assert table["overdue_disposals"].tolist() == (to_dispose - on_time).tolist()


def test_overdue_disposals_and_supervised_per_department_and_region(
    november: Engine, services: svc.CaseServices
) -> None:
    nov = parse_period("2025-11")
    end = {"as_of": nov.end, "now": NOW}  # Mon 12-01 00:00: N is not due yet, its 督办 has not happened
    dep = indicators(november, services, nov, "department", "tier3", **end)
    # D1: A on time, B late (2 督办单); F is October's. D2: C open and overdue (a flagged 督办), N not yet due.
    assert counts(dep) == {D1: [2, 1, 0.5, 2], D2: [1, 1, 0.0, 1]}
    streets = indicators(november, services, nov, "region", "tier1", **end)
    # W: A on time, C overdue (its 督办); E: B late (2 督办), N neither.
    assert counts(streets) == {WEST: [2, 1, 0.5, 1], EAST: [1, 1, 0.0, 2]}
    district = indicators(november, services, nov, "region", "district", **end)
    assert counts(district) == {"419902": [3, 2, pytest.approx(1 / 3), 3]}
    for level in ("unit_grid", "tier3", "tier2"):
        table = indicators(november, services, nov, "region", level, **end)
        assert (table["overdue_disposals"].sum(), table["supervised"].sum()) == (2, 3), level
        assert_agrees_with_the_rate(table)
    for table in (dep, streets, district):
        assert_agrees_with_the_rate(table)

    # Judged at Mon 12-01 15:00: N is overdue now and its 督办 (14:00) has happened.
    later = {"as_of": "2025-12-01T15:00:00", "now": NOW}
    dep = indicators(november, services, nov, "department", "tier3", **later)
    assert counts(dep) == {D1: [2, 1, 0.5, 2], D2: [2, 2, 0.0, 2]}
    streets = indicators(november, services, nov, "region", "tier1", **later)
    assert counts(streets) == {WEST: [2, 1, 0.5, 1], EAST: [2, 2, 0.0, 3]}
    assert_agrees_with_the_rate(dep)
    assert_agrees_with_the_rate(streets)

    # F belongs to October (reported then): its November 督办 counts there once it has happened, not in November.
    october = parse_period("2025-10")
    at_end = indicators(november, services, october, "department", "tier3", as_of=october.end, now=NOW)
    assert counts(at_end) == {D1: [1, 1, 0.0, 0]}
    judged_later = indicators(november, services, october, "department", "tier3", as_of=nov.end, now=NOW)
    assert counts(judged_later) == {D1: [1, 1, 0.0, 1]}


def test_the_api_the_map_and_the_files_carry_both_counts(november: Engine, settings: Settings, tmp_path: Path) -> None:
    q = {"period": "2025-11", "as_of": "2025-12-01"}
    with TestClient(create_app(settings)) as client:
        body = client.get("/evaluation", params={**q, "subject": "department"}).json()
        assert counts(pd.DataFrame(body["data"])) == {D1: [2, 1, 0.5, 2], D2: [1, 1, 0.0, 1]}
        csv = client.get("/evaluation", params={**q, "subject": "region", "level": "tier1", "format": "csv"})
        table = pd.read_csv(io.StringIO(csv.text.lstrip("\ufeff")), dtype={"subject": str})
        assert counts(table) == {WEST: [2, 1, 0.5, 1], EAST: [1, 1, 0.0, 2]}
        for indicator, label, values in (
            ("overdue_disposals", "超期处置数", {WEST: 1, EAST: 1}),
            ("supervised", "督办数", {WEST: 1, EAST: 2}),
        ):
            m = client.get("/evaluation/map", params={**q, "level": "tier1", "indicator": indicator}).json()
            assert (m["indicator_label"], m["better"]) == (label, None)  # a count: no better or worse
            assert {f["id"]: f["properties"]["value"] for f in m["features"]["features"]} == values

    env = {"GISGRID_DATABASE_URL": settings.database_url or "", "GISGRID_DATA_DIR": str(tmp_path / "data")}
    base = ["evaluate", "--period", "2025-11", "--as-of", "2025-12-01", "--subject", "department"]
    csv_out, xlsx_out = tmp_path / "dep.csv", tmp_path / "dep.xlsx"
    for out in (csv_out, xlsx_out):
        r = runner.invoke(app, [*base, "--out", str(out)], env=env)
        assert r.exit_code == 0, r.output
    table = pd.read_csv(csv_out, encoding="utf-8-sig", dtype={"subject": str})
    assert table.set_index("subject").loc[[D1, D2], ["overdue_disposals", "supervised"]].to_dict("index") == {
        D1: {"overdue_disposals": 1, "supervised": 2},
        D2: {"overdue_disposals": 1, "supervised": 1},
    }
    book = openpyxl.load_workbook(xlsx_out)
    rows = list(book["2025-11 专业部门"].iter_rows(values_only=True))
    header = list(rows[1])  # below the title row
    got = {r[header.index("部门编码")]: (r[header.index("超期处置数")], r[header.index("督办数")]) for r in rows[2:]}
    assert {k: got[k] for k in (D1, D2)} == {D1: (1, 2), D2: (1, 1)}
    assert got[None] == (2, 3) and rows[-1][header.index("名称")] == "全区合计"  # the sums, last
    # Beside the rate they agree with, as the one column list orders them.
    assert header.index("超期处置数") == header.index("按期处置率") + 1
    keys = {r[0]: r[1] for r in book["字段说明"].iter_rows(min_row=2, values_only=True)}
    assert (keys["超期处置数"], keys["督办数"]) == ("overdue_disposals", "supervised")


def test_an_imported_supervision_counts_for_the_department_the_case_was_with(
    loaded: Engine, services: svc.CaseServices, tmp_path: Path
) -> None:
    """A city's past record: a 督办 row without a department is logged with the case's (the import takes the one
    it was dispatched to), so it counts there, and for the case's region, as a live one does."""
    x, y = point(COMMUNITIES[2])
    rows = f"""H1,gbt47678,{GARBAGE},{x},{y},cgcs2000,patrol,reported,,supervisor,,,2025-11-03T09:00:00,r
H1,,,,,,,verified,,supervisor,,,2025-11-03T09:20:00,
H1,,,,,,,filed,,shift_lead,,,2025-11-03T09:40:00,
H1,,,,,,,dispatched,,dispatcher,,{D2},2025-11-03T10:00:00,
H1,,,,,,,dispatched,supervise,leader,,,2025-11-04T09:00:00,超期未处置
"""
    import_rows(loaded, services, tmp_path, rows)
    nov = parse_period("2025-11")
    end = {"as_of": nov.end, "now": NOW}
    assert counts(indicators(loaded, services, nov, "department", "tier3", **end)) == {D2: [1, 1, 0.0, 1]}
    assert counts(indicators(loaded, services, nov, "region", "tier1", **end)) == {EAST: [1, 1, 0.0, 1]}
