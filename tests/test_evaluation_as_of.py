"""The evaluation time (``as_of``): the cases reported in a period are judged by their record up to it.

One 暴露垃圾 case (limit 4 working hours) reported late on 2025-09-30 and handled after the National Day holiday
in 2.5 working hours (review11 D3, case R1): judged as of the period end it is open (结案率 0, grade D); judged
now, as the CLI and API do by default, it is closed on time (grade A)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from api.main import create_app
from gisgrid import cases as svc
from gisgrid import history
from gisgrid.cli import _register_optional, app
from gisgrid.errors import InvalidInput
from gisgrid.evaluation_service import indicators, parse_period, resolve_as_of
from gisgrid.settings import Settings

_register_optional()
runner = CliRunner()

HEADER = "case_no,scheme,class_code,lon,lat,datum,source,state,action,role,actor,department_code,at,note"
R1 = """R1,gbt47678,06010,113.674566,34.745434,wgs84,patrol,reported,,supervisor,,,2025-09-30T15:00:00,r
R1,,,,,,,reported,request_verify,intake,,,2025-09-30T15:05:00,
R1,,,,,,,verified,,supervisor,,,2025-09-30T15:30:00,
R1,,,,,,,filed,,shift_lead,,,2025-09-30T15:45:00,
R1,,,,,,,dispatched,,dispatcher,,990000000000000003,2025-09-30T16:00:00,
R1,,,,,,,handled,,department,,,2025-10-09T09:30:00,done
R1,,,,,,,handled,request_check,intake,,,2025-10-09T09:40:00,
R1,,,,,,,checked,,supervisor,,,2025-10-09T10:00:00,
R1,,,,,,,closed,,shift_lead,,,2025-10-09T10:30:00,
"""
GRID_COLUMNS = ["to_close", "closed", "closure_rate", "on_time_closure_rate", "score", "grade"]
CLOSED_ON_TIME = [1, 1, 1.0, 1.0, 97.5, "A"]
OPEN_AT_PERIOD_END = [1, 0, 0.0, 0.0, 42.5, "D"]


@pytest.fixture
def late_case(loaded: Engine, services: svc.CaseServices, tmp_path: Path) -> Engine:
    src = tmp_path / "r1.csv"
    src.write_text(HEADER + "\n" + R1, encoding="utf-8")
    summary = history.import_history(
        loaded, src, services, history.HistoryImportOptions(errors_path=tmp_path / "r1.errors.csv")
    )
    assert (summary.imported_cases, summary.refused_rows) == (1, 0), summary.to_text()
    return loaded


def grid_row(table: pd.DataFrame) -> list[object]:
    [row] = table[GRID_COLUMNS].to_dict("records")
    return [row[c] for c in GRID_COLUMNS]


def test_default_as_of_is_now_and_an_as_of_is_never_later_than_now() -> None:
    """review26 D2: a running period is judged now, not at its future end; an as_of inside the period is allowed,
    one later than now or not after the period start is refused with its reason."""
    october = parse_period("2025-10")
    now = pd.Timestamp("2026-11-27T10:15:30.7+08:00")
    assert resolve_as_of(october, now=now) == pd.Timestamp("2026-11-27T10:15:30+08:00")
    running = parse_period("2026-11")  # a period still running is judged now
    assert resolve_as_of(running, now=now) == pd.Timestamp("2026-11-27T10:15:30+08:00")
    assert resolve_as_of(running, "2026-11-27T10:15:30.7", now=now) == now  # "as of now" exactly
    assert resolve_as_of(october, "2025-11-15") == pd.Timestamp("2025-11-15T00:00:00+08:00")
    assert resolve_as_of(october, "2025-11-15T01:00:00Z") == pd.Timestamp("2025-11-15T09:00:00+08:00")
    assert resolve_as_of(october, "2025-11-01") == october.end
    assert resolve_as_of(october, "2025-10-15") == pd.Timestamp("2025-10-15T00:00:00+08:00")  # inside: allowed
    refusals = (
        ("2026-11-27T10:16", r"as_of: 2026-11-27T10:16:00\+08:00 is later than now \(2026-11-27T10:15:30\+08:00\); "
         "the figures would count as late what has not happened yet", "as_of_in_future"),
        ("2025-10-01", r"as_of: 2025-10-01T00:00:00\+08:00 is not after the start of 2025-10 "
         r"\(2025-10-01T00:00:00\+08:00\); nothing had been reported yet", "as_of_before_period_start"),
        ("2025-09-20", "is not after the start of 2025-10", "as_of_before_period_start"),
    )  # fmt: skip
    for given, message, reason in refusals:
        with pytest.raises(InvalidInput, match=message) as refused:
            resolve_as_of(october, given, now=now)
        assert (refused.value.reason, refused.value.detail[0]["field"]) == (reason, "as_of")
    with pytest.raises(InvalidInput, match=r"no cases were reported in 2026-12: it begins 2026-12-01") as refused:
        resolve_as_of(parse_period("2026-12"), now=now)  # a period that has not begun
    assert refused.value.reason == "no_cases_in_period"
    with pytest.raises(InvalidInput, match="as_of: 'soon' is not an ISO 8601 date or time"):
        resolve_as_of(october, "soon")


def test_a_case_reported_on_the_last_day_counts_closed_when_judged_now(
    late_case: Engine, services: svc.CaseServices
) -> None:
    september = parse_period("2025-09")
    now = indicators(late_case, services, september, "region", "unit_grid")
    assert grid_row(now) == CLOSED_ON_TIME
    assert now.attrs["as_of"] >= pd.Timestamp.now(tz="Asia/Shanghai").floor("s") - pd.Timedelta(minutes=5)
    at_end = indicators(late_case, services, september, "region", "unit_grid", as_of=september.end)
    assert grid_row(at_end) == OPEN_AT_PERIOD_END
    assert at_end.attrs["as_of"] == pd.Timestamp("2025-10-01T00:00:00+08:00")
    # Before it was handled (9 October, 09:30) it is still open.
    before = indicators(late_case, services, september, "region", "unit_grid", as_of="2025-10-09T09:00")
    assert grid_row(before) == OPEN_AT_PERIOD_END


def test_evaluate_command_takes_as_of_and_says_which_it_used(
    late_case: Engine, settings: Settings, tmp_path: Path
) -> None:
    env = {"GISGRID_DATABASE_URL": settings.database_url or "", "GISGRID_DATA_DIR": str(tmp_path / "data")}
    base = ["evaluate", "--period", "2025-09", "--level", "unit_grid"]
    out = tmp_path / "now.csv"
    r = runner.invoke(app, [*base, "--out", str(out)], env=env)
    assert r.exit_code == 0, r.output
    assert "2025-09: cases reported in the period, judged as of 20" in r.output
    assert grid_row(pd.read_csv(out, encoding="utf-8-sig")) == CLOSED_ON_TIME

    out = tmp_path / "end.csv"
    r = runner.invoke(app, [*base, "--as-of", "2025-10-01", "--out", str(out)], env=env)
    assert r.exit_code == 0, r.output
    assert "judged as of 2025-10-01T00:00:00+08:00" in r.output
    assert grid_row(pd.read_csv(out, encoding="utf-8-sig")) == OPEN_AT_PERIOD_END

    assert "provisional" not in r.output
    r = runner.invoke(app, [*base, "--as-of", "2025-09-01"], env=env)
    assert isinstance(r.exception, InvalidInput) and r.exception.message.startswith("as_of: 2025-09-01T00:00:00")
    assert r.exception.reason == "as_of_before_period_start"
    r = runner.invoke(app, [*base, "--as-of", "2100-01-01"], env=env)
    assert isinstance(r.exception, InvalidInput) and r.exception.reason == "as_of_in_future"
    # Inside the period: R1 (reported 09-30 15:00) is known at 16:30, dispatched at 16:00 and not yet late.
    out = tmp_path / "provisional.csv"
    r = runner.invoke(app, [*base, "--as-of", "2025-09-30T16:30", "--out", str(out)], env=env)
    assert r.exit_code == 0, r.output
    assert (
        "2025-09: cases reported in the period, judged as of 2025-09-30T16:30:00+08:00 — provisional (暂定): the "
        "period had not ended then" in r.output
    )
    row = pd.read_csv(out, encoding="utf-8-sig").iloc[0]
    assert (row["reports"], row["to_dispose"], row["to_close"], row["closed"]) == (1, 0, 1, 0)


@pytest.fixture
def client(late_case: Engine, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def test_evaluation_api_takes_as_of_and_states_it(client: TestClient) -> None:
    q = {"period": "2025-09", "level": "unit_grid"}
    now = client.get("/evaluation", params=q).json()
    assert now["period"] == "2025-09" and now["as_of"] > "2026"
    assert grid_row(pd.DataFrame(now["data"])) == CLOSED_ON_TIME

    at_end = client.get("/evaluation", params={**q, "as_of": "2025-10-01T00:00:00+08:00"}).json()
    assert at_end["as_of"] == "2025-10-01T00:00:00+08:00"
    assert grid_row(pd.DataFrame(at_end["data"])) == OPEN_AT_PERIOD_END

    csv = client.get("/evaluation", params={**q, "as_of": "2025-10-01", "format": "csv"})
    assert csv.headers["x-evaluation-as-of"] == "2025-10-01T00:00:00+08:00"
    assert csv.headers["x-evaluation-period"] == "2025-09"

    early = client.get("/evaluation", params={**q, "as_of": "2025-09-01"})
    assert early.status_code == 422, early.text
    assert early.json()["detail"]["items"][0]["field"] == "as_of"
    assert early.json()["reason"] == "as_of_before_period_start"
    future = client.get("/evaluation", params={**q, "as_of": "2100-01-01"})
    assert future.status_code == 422 and future.json()["reason"] == "as_of_in_future", future.text
    assert future.json()["detail"]["items"][0]["field"] == "as_of"
    # Inside the period, before R1 was reported (09-30 15:00): nothing reported yet.
    none_yet = client.get("/evaluation", params={**q, "as_of": "2025-09-20"})
    assert none_yet.status_code == 422 and none_yet.json()["reason"] == "no_cases_in_period", none_yet.text
    assert "no cases were reported in 2025-09 before 2025-09-20T00:00:00+08:00" in none_yet.text
    unreadable = client.get("/evaluation", params={**q, "as_of": "soon"})
    assert unreadable.status_code == 422 and unreadable.json()["reason"] == "as_of_unreadable", unreadable.text

    m = client.get("/evaluation/map", params={**q, "indicator": "closure_rate", "as_of": "2025-10-01"}).json()
    assert m["as_of"] == "2025-10-01T00:00:00+08:00"
    assert [f["properties"]["value"] for f in m["features"]["features"] if f["properties"]["value"] is not None] == [
        0.0
    ]
    m = client.get("/evaluation/map", params={**q, "indicator": "closure_rate"}).json()
    assert m["as_of"] > "2026"
    assert [f["properties"]["value"] for f in m["features"]["features"] if f["properties"]["value"] is not None] == [
        1.0
    ]


def test_a_region_is_sized_by_all_its_stored_unit_grids_not_those_with_cases(
    late_case: Engine, services: svc.CaseServices
) -> None:
    """立案数分值 divides by every unit grid of the region (review17 item 2): the one case's tier-3 grid, street
    and district hold many grids that had no case, so 1 立案 in a month is far below 0.5 per grid → 100."""
    september = parse_period("2025-09")
    with late_case.connect() as conn:
        grid = conn.execute(text("SELECT unit_grid_code, tier3_code, street_code FROM cases")).one()
        sizes = {
            level: conn.execute(text(f"SELECT count(*) FROM unit_grids WHERE {col} = :c"), {"c": code}).scalar_one()
            for level, col, code in (
                ("unit_grid", "code", grid.unit_grid_code),
                ("tier3", "tier3_code", grid.tier3_code),
                ("tier1", "street_code", grid.street_code),
            )
        }
        sizes["district"] = conn.execute(text("SELECT count(*) FROM unit_grids")).scalar_one()
    assert sizes["unit_grid"] == 1 and 2 < sizes["tier3"] < sizes["tier1"] <= sizes["district"]
    for level, n in sizes.items():
        row = indicators(late_case, services, september, "region", level).iloc[0]
        assert (row["filed"], row["unit_grids"]) == (1, n), level
        assert row["filed_per_grid_month"] == pytest.approx(1 / n), level
        # One grid: 1 per grid → 75, score 97.5; a larger region: < 0.5 per grid → 100, every indicator 100.
        expected = (75.0, 97.5) if n == 1 else (100.0, 100.0)
        assert (row["filed_score"], row["score"], row["grade"]) == (*expected, "A"), level


def test_exports_name_the_subjects_and_the_xlsx_has_zh_headers(
    late_case: Engine, settings: Settings, tmp_path: Path
) -> None:
    """review17 item 5: CSV keeps the English keys (machine-readable) and gains ``name``; the XLSX sheet is named
    after the period and subject, with zh-CN headers and a 字段说明 sheet mapping them to the keys."""
    env = {"GISGRID_DATABASE_URL": settings.database_url or "", "GISGRID_DATA_DIR": str(tmp_path / "data")}
    with late_case.connect() as conn:
        street, street_name = conn.execute(
            text("SELECT c.street_code, g.name FROM cases c JOIN management_grids g ON g.code = c.street_code")
        ).one()
    base = ["evaluate", "--period", "2025-09", "--level", "tier1"]
    csv_out, xlsx_out = tmp_path / "t1.csv", tmp_path / "t1.xlsx"
    for out in (csv_out, xlsx_out):
        r = runner.invoke(app, [*base, "--out", str(out)], env=env)
        assert r.exit_code == 0, r.output
    table = pd.read_csv(csv_out, encoding="utf-8-sig", dtype={"subject": str})
    assert table.columns[:4].tolist() == ["subject", "name", "level", "reports"]
    assert table[["subject", "name", "grade", "rank"]].values.tolist() == [[street, street_name, "A", 1]]
    sheets = pd.read_excel(xlsx_out, sheet_name=None, dtype={"区域编码": str})
    assert list(sheets) == ["2025-09 一级网格(街道)", "字段说明"]
    sheet = sheets["2025-09 一级网格(街道)"]
    assert sheet.columns[:5].tolist() == ["区域编码", "名称", "层级", "上报数", "有效上报数"]
    assert {"有效上报率", "按期结案率", "综合指标值", "等级", "排名", "有值指标权重", "不参评原因"} <= set(
        sheet.columns
    )
    assert sheet[["区域编码", "名称", "等级"]].values.tolist() == [[street, street_name, "A"]]
    keys = sheets["字段说明"]
    assert keys.columns.tolist() == ["列名", "字段 key"] and keys["字段 key"].tolist() == table.columns.tolist()
    assert keys["列名"].tolist() == sheet.columns.tolist()

    dep_out = tmp_path / "dep.xlsx"
    r = runner.invoke(
        app, ["evaluate", "--period", "2025-09", "--subject", "department", "--out", str(dep_out)], env=env
    )
    assert r.exit_code == 0, r.output
    dep = pd.read_excel(dep_out, sheet_name="2025-09 专业部门", dtype={"部门编码": str})
    # The one case went to 990000000000000003 (the catalogue names it).
    assert dep[["部门编码", "名称"]].values.tolist() == [["990000000000000003", "区环境卫生服务中心"]]


def test_evaluate_with_an_unknown_subject_lists_every_subject(settings: Settings, tmp_path: Path) -> None:
    env = {"GISGRID_DATABASE_URL": settings.database_url or "", "GISGRID_DATA_DIR": str(tmp_path / "data")}
    r = runner.invoke(app, ["evaluate", "--period", "2025-09", "--subject", "foo"], env=env)
    assert isinstance(r.exception, InvalidInput)
    assert r.exception.message == (
        "subject: 'foo' is not one of region, department, supervisor, grid_worker, intake, shift_lead, dispatcher"
    )
