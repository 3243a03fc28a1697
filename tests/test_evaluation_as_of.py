"""The evaluation time (``as_of``): the cases reported in a period are judged by their record up to it.

One 暴露垃圾 case (limit 4 working hours) reported late on 2025-09-30 and handled after the National Day holiday
in 2.5 working hours (review11 D3, case R1): judged as of the period end it is open but not yet due — 1.5 of its 4
hours used —, so out of 应结案数 like its 处置 node out of 应处置数 (review49 #2: no 结案率, 不参评, where it was
once 结案率 0, grade D); judged now, as the CLI and API do by default, it is closed on time (grade A)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from api.main import create_app
from gisgrid import cases as svc
from gisgrid import history
from gisgrid.cli import app
from gisgrid.errors import InvalidInput
from gisgrid.evaluation import INDICATOR_DEFINITIONS
from gisgrid.evaluation_service import indicators, parse_period, resolve_as_of, write_table
from gisgrid.settings import Settings

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
NOT_YET_DUE = [0, 0, None, None, None, "不参评"]


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
    """R1's unit grid's figures (the table lists every unit grid; the others had no case)."""
    [row] = table[table["reports"] > 0][GRID_COLUMNS].to_dict("records")
    return [None if pd.isna(row[c]) else row[c] for c in GRID_COLUMNS]


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
    with pytest.raises(
        InvalidInput,
        match=r"^该评价期内没有上报的案件:2026-12 尚未开始\(始于 2026-12-01 00:00\) / no cases were "
        "reported in 2026-12: it begins 2026-12-01",
    ) as refused:
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
    assert grid_row(at_end) == NOT_YET_DUE
    assert at_end.attrs["as_of"] == pd.Timestamp("2025-10-01T00:00:00+08:00")
    # Before it was handled (9 October, 09:30) it is still open, and still in time (2 of its 4 hours).
    before = indicators(late_case, services, september, "region", "unit_grid", as_of="2025-10-09T09:00")
    assert grid_row(before) == NOT_YET_DUE


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
    assert grid_row(pd.read_csv(out, encoding="utf-8-sig")) == NOT_YET_DUE

    assert "provisional" not in r.output
    r = runner.invoke(app, [*base, "--as-of", "2025-09-01"], env=env)
    assert isinstance(r.exception, InvalidInput) and r.exception.message.startswith(
        "评价时点须晚于评价期开始(2025-09-01 00:00),此前尚无上报 / as_of: 2025-09-01T00:00:00"
    )
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
    table = pd.read_csv(out, encoding="utf-8-sig")
    [row] = table[table["reports"] > 0].to_dict("records")  # R1's grid; every other unit grid is listed with 0
    assert (row["reports"], row["to_dispose"], row["to_close"], row["closed"]) == (1, 0, 0, 0)


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
    assert grid_row(pd.DataFrame(at_end["data"])) == NOT_YET_DUE

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
    # review49 F5: every unit grid listed, none graded (本期无案件), provisional — a table, not a refusal.
    none_yet = client.get("/evaluation", params={**q, "as_of": "2025-09-20"})
    assert (none_yet.status_code, none_yet.json()["provisional"]) == (200, True), none_yet.text
    assert {(r["reports"], r["grade"], r["ungraded_reason"]) for r in none_yet.json()["data"]} == {
        (0, "不参评", "本期无案件")
    }
    unreadable = client.get("/evaluation", params={**q, "as_of": "soon"})
    assert unreadable.status_code == 422 and unreadable.json()["reason"] == "as_of_unreadable", unreadable.text

    m = client.get("/evaluation/map", params={**q, "indicator": "closure_rate", "as_of": "2025-10-01"}).json()
    assert m["as_of"] == "2025-10-01T00:00:00+08:00"
    assert [f["properties"]["value"] for f in m["features"]["features"] if f["properties"]["value"] is not None] == []
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
    assert table[["subject", "name", "grade", "rank"]].iloc[:1].values.tolist() == [[street, street_name, "A", 1]]
    assert table[["grade", "ungraded_reason"]].iloc[1:].values.tolist() == [
        ["不参评", "本期无案件"]
    ]  # the other street
    book = openpyxl.load_workbook(xlsx_out)
    assert book.sheetnames == ["2025-09 一级网格(街道)", "字段说明", "说明"]
    assert book.worksheets[0]["A1"].value.startswith("测试区 一级网格(街道)考核表 · 2025年9月 · 评价时点 ")
    sheets = pd.read_excel(xlsx_out, sheet_name=["字段说明", "说明"])
    # the table below its title row
    sheets["2025-09 一级网格(街道)"] = pd.read_excel(xlsx_out, sheet_name=0, header=1, dtype={"区域编码": str})
    sheet = sheets["2025-09 一级网格(街道)"]
    assert sheet.columns[:5].tolist() == ["区域编码", "名称", "层级", "上报数", "有效上报数"]
    assert {"有效上报率", "按期结案率", "综合指标值", "等级", "排名", "有值指标权重", "不参评原因"} <= set(
        sheet.columns
    )
    assert sheet[["区域编码", "名称", "等级"]].iloc[0].tolist() == [street, street_name, "A"]
    assert sheet["名称"].tolist()[-1] == "全区合计" and len(sheet) == 3  # two streets, then the district's sums
    # The counts beside the rates (review26): R1's one disposal was on time and no one supervised it.
    assert sheet[["按期处置率", "超期处置数", "督办数"]].iloc[:1].values.tolist() == [[1.0, 0, 0]]
    assert table[["on_time_disposal_rate", "overdue_disposals", "supervised"]].iloc[:1].values.tolist() == [[1.0, 0, 0]]
    keys = sheets["字段说明"]
    assert keys.columns.tolist() == ["列名", "字段 key", "取值 values", "定义 definition"]
    assert keys["字段 key"].tolist() == table.columns[:-3].tolist()
    assert keys["列名"].tolist() == sheet.columns.tolist()
    # The enumerated columns' zh-CN values with the CSV's keys they stand for, as far as the file holds them.
    values = keys.set_index("字段 key")["取值 values"]
    assert values["level"] == "一级网格(街道) = tier1" and sheet["层级"].tolist() == ["一级网格(街道)"] * 3
    assert values["unit_grids_from"] == "已登记网格 = stored"
    assert values.drop(["level", "unit_grids_from"]).isna().all()  # "" reads back as empty
    # What the main rates count, for the officer reading them (review49 #8): 按期结案率 looks at 处置 nodes only.
    defined = keys.set_index("字段 key")["定义 definition"]
    assert defined["on_time_closure_rate"] == INDICATOR_DEFINITIONS["on_time_closure_rate"]
    assert defined["on_time_closure_rate"].startswith("已结案且每个处置环节均按时的案件 ÷ 应结案数;只看处置环节")
    assert defined["closure_rate"] == "结案数 ÷ 应结案数" and pd.isna(defined["name"])
    # Judged now, after the period: final, as the CSV's last columns say too.
    notes = sheets["说明"]
    assert notes.columns.tolist() == ["项目", "值", "字段 key"]
    assert notes[["项目", "字段 key"]].values.tolist() == [["评价时点", "as_of"], ["暂定", "provisional"]]
    xlsx_as_of, csv_as_of = (pd.Timestamp(v) for v in (notes["值"].iloc[0], table["as_of"].iloc[0]))
    assert notes["值"].iloc[1] == "否"  # two runs, each judged at its own now: the same moment give or take a minute
    assert xlsx_as_of.tzinfo is not None and abs(xlsx_as_of - csv_as_of) < pd.Timedelta(minutes=1)
    assert table.columns[-3:].tolist() == ["as_of", "provisional", "calendar_warning"]
    assert table["provisional"].tolist() == [False, False] and table["calendar_warning"].isna().all()

    dep_out = tmp_path / "dep.xlsx"
    r = runner.invoke(
        app, ["evaluate", "--period", "2025-09", "--subject", "department", "--out", str(dep_out)], env=env
    )
    assert r.exit_code == 0, r.output
    dep = pd.read_excel(dep_out, sheet_name="2025-09 专业部门", dtype={"部门编码": str}, header=1)
    # The one case went to 990000000000000003 (the catalogue names it); the other 18 listed, then the 合计.
    assert dep[["部门编码", "名称"]].iloc[:1].values.tolist() == [["990000000000000003", "区环境卫生服务中心"]]
    assert len(dep) == 20 and dep["名称"].tolist()[-1] == "全区合计"
    assert dep[["应处置数", "按期处置率", "超期处置数", "督办数"]].iloc[[0, -1]].values.tolist() == [[1, 1.0, 0, 0]] * 2


def test_the_xlsx_shows_rates_as_percentages_averages_with_two_decimals_and_values_in_zh(
    late_case: Engine, settings: Settings, tmp_path: Path
) -> None:
    """review38 U3: the XLSX is for people — 有效上报率 in a 0.0% format, 每网格月均立案数 in 0.00, each cell
    keeping its exact value; 层级 and 网格数来源 in zh-CN. The CSV, for scripts, keeps the keys and the numbers."""
    env = {"GISGRID_DATABASE_URL": settings.database_url or "", "GISGRID_DATA_DIR": str(tmp_path / "data")}
    csv_out, xlsx_out = tmp_path / "t3.csv", tmp_path / "t3.xlsx"
    for out in (csv_out, xlsx_out):
        r = runner.invoke(app, ["evaluate", "--period", "2025-09", "--level", "tier3", "--out", str(out)], env=env)
        assert r.exit_code == 0, r.output
    with late_case.connect() as conn:
        grids = conn.execute(
            text("SELECT count(*) FROM unit_grids WHERE tier3_code = (SELECT tier3_code FROM cases)")
        ).scalar_one()
    assert grids > 1  # R1's tier-3 grid: 1 case filed over its unit grids, in one month
    table = pd.read_csv(csv_out, encoding="utf-8-sig", dtype={"subject": str})
    columns = ["level", "unit_grids_from", "valid_report_rate", "filed_per_grid_month", "weight_present"]
    assert table[columns].iloc[:1].values.tolist() == [["tier3", "stored", 1.0, 1 / grids, 1.0]]
    sheet = openpyxl.load_workbook(xlsx_out)["2025-09 三级网格"]
    header = [c.value for c in sheet[2]]  # below the title row
    row = {h: c for h, c in zip(header, sheet[3], strict=True)}
    shown = ("层级", "网格数来源", "有效上报率", "每网格月均立案数", "有值指标权重", "上报数", "综合指标值")
    assert [(row[h].value, row[h].number_format) for h in shown] == [
        ("三级网格", "General"),
        ("已登记网格", "General"),
        (1, "0.0%"),
        (1 / grids, "0.00"),  # the exact value, shown rounded
        (1, "0.0%"),
        (1, "General"),
        (100, "0.00"),
    ]
    # Every rate is a percentage (on_time_disposal_rate … rework_rate), whatever its value.
    rates = [h for h, key in zip(header, table.columns, strict=False) if key.endswith("_rate")]
    assert len(rates) == 11 and {row[h].number_format for h in rates} == {"0.0%"}
    # Read back (as the tests and a reader with pandas do): the same numbers as the CSV.
    back = pd.read_excel(xlsx_out, sheet_name="2025-09 三级网格", dtype={"区域编码": str}, header=1)
    assert back[["有效上报率", "每网格月均立案数"]].iloc[:1].values.tolist() == [[1.0, 1 / grids]]


def test_the_xlsx_names_the_posts_roles_in_zh_and_the_csv_keeps_the_keys(tmp_path: Path) -> None:
    """review38 U3: 岗位 grid_worker is 网格员 in the XLSX (the workflow's role names), a 5/6 rate 83.3% there with
    its exact value, while the CSV keeps grid_worker and the number."""
    table = pd.DataFrame(
        {
            "subject": ["张三", "李四"],
            "role": ["grid_worker", "supervisor"],
            "area": ["41990100100101", "41990100100102"],
            "reports": [6, 4],
            "valid_report_rate": [5 / 6, float("nan")],
            "score": [83.333333, float("nan")],
            "grade": ["B", "不参评"],
            "weight_present": [1.0, 0.4],
        }
    )
    write_table(table, tmp_path / "p.csv", "2025-09 网格员", "grid_worker")
    write_table(table, tmp_path / "p.xlsx", "2025-09 网格员", "grid_worker")
    csv = pd.read_csv(tmp_path / "p.csv", encoding="utf-8-sig", dtype={"area": str})
    assert csv["role"].tolist() == ["grid_worker", "supervisor"]
    assert csv["valid_report_rate"].tolist()[0] == 5 / 6
    sheet = openpyxl.load_workbook(tmp_path / "p.xlsx")["2025-09 网格员"]
    assert [c.value for c in sheet[1]] == [
        "人员",
        "岗位",
        "责任区域",
        "上报数",
        "有效上报率",
        "综合指标值",
        "等级",
        "有值指标权重",
    ]
    assert [[(c.value, c.number_format) for c in row] for row in sheet.iter_rows(min_row=2)] == [
        [("张三", "General"), ("网格员", "General"), ("41990100100101", "General"), (6, "General"),
         (5 / 6, "0.0%"), (83.333333, "0.00"), ("B", "General"), (1, "0.0%")],
        [("李四", "General"), ("监督员", "General"), ("41990100100102", "General"), (4, "General"),
         (None, "0.0%"), (None, "0.00"), ("不参评", "General"), (0.4, "0.0%")],
    ]  # fmt: skip
    assert table["role"].tolist() == ["grid_worker", "supervisor"]  # the caller's table untouched


def test_evaluate_with_an_unknown_subject_lists_every_subject(settings: Settings, tmp_path: Path) -> None:
    env = {"GISGRID_DATABASE_URL": settings.database_url or "", "GISGRID_DATA_DIR": str(tmp_path / "data")}
    r = runner.invoke(app, ["evaluate", "--period", "2025-09", "--subject", "foo"], env=env)
    assert isinstance(r.exception, InvalidInput)
    assert r.exception.message == (
        "subject: 'foo' is not one of region, department, supervisor, grid_worker, intake, shift_lead, dispatcher"
    )


# --------------------------------------------------------------------------------------- review26 D2 and D3

# Four 暴露垃圾 cases in November 2025 (4 working hours to handle, dispatched at 10:00 → due 15:30 the same day):
# A handled on time on Monday 11-10; D dispatched Tuesday 11-11, handled late on 11-12 15:00; B dispatched
# Wednesday 11-12, handled late on 11-13 10:00; C reported on 11-20 and left at 上报.
NOVEMBER = (
    "".join(
        f"""{c},gbt47678,06010,113.674566,34.745434,wgs84,patrol,reported,,supervisor,,,{day}T09:00:00,r
{c},,,,,,,reported,request_verify,intake,,,{day}T09:05:00,
{c},,,,,,,verified,,supervisor,,,{day}T09:30:00,
{c},,,,,,,filed,,shift_lead,,,{day}T09:40:00,
{c},,,,,,,dispatched,,dispatcher,,990000000000000003,{day}T10:00:00,
{c},,,,,,,handled,,department,,,{handled},done
"""
        for c, day, handled in (
            ("A", "2025-11-10", "2025-11-10T15:00:00"),
            ("D", "2025-11-11", "2025-11-12T15:00:00"),
            ("B", "2025-11-12", "2025-11-13T10:00:00"),
        )
    )
    + "C,gbt47678,06010,113.674566,34.745434,wgs84,patrol,reported,,supervisor,,,2025-11-20T09:00:00,r\n"
)
DISPOSAL = ["reports", "to_dispose", "handled", "on_time_disposal_rate", "on_time_verify_rate"]


def import_rows(engine: Engine, services: svc.CaseServices, tmp_path: Path, rows: str, now: str | None = None) -> None:
    src = tmp_path / "rows.csv"
    src.write_text(HEADER + "\n" + rows, encoding="utf-8")
    opts = history.HistoryImportOptions(errors_path=tmp_path / "rows.errors.csv")
    if now is not None:
        opts.now = pd.Timestamp(now, tz="Asia/Shanghai").to_pydatetime()
    summary = history.import_history(engine, src, services, opts)
    assert summary.refused_rows == 0, summary.to_text()


@pytest.fixture
def november(loaded: Engine, services: svc.CaseServices, tmp_path: Path) -> Engine:
    import_rows(loaded, services, tmp_path, NOVEMBER)
    return loaded


def disposal_row(table: pd.DataFrame) -> list[object]:
    [row] = table[DISPOSAL].to_dict("records")
    return [row[c] for c in DISPOSAL]


def test_a_running_period_is_judged_now_and_a_node_not_yet_due_is_neither_on_time_nor_late(
    november: Engine, services: svc.CaseServices
) -> None:
    """review26 D2: on 11-12 at 14:00, while November runs, B's disposal (due 15:30) is not late, D's (due 11-11
    15:30, open) is; what happened later (D and B handled) is not seen. Judged at the period end: both late."""
    period = parse_period("2025-11")
    running = indicators(november, services, period, "region", "district", now="2025-11-12T14:00:00.4")
    assert running.attrs["as_of"] == pd.Timestamp("2025-11-12T14:00:00+08:00")
    assert (running.attrs["provisional"], running.attrs["unknown_years"]) == (True, ())
    assert disposal_row(running) == [3, 2, 1, 0.5, 1.0]  # A on time, D late, B neither; C not reported yet
    ended = indicators(november, services, period, "region", "district", as_of=period.end, now="2026-01-05")
    assert ended.attrs["provisional"] is False
    assert disposal_row(ended) == [4, 3, 3, pytest.approx(1 / 3), 0.75]  # C's 核实 overdue since 11-20 10:00


def test_an_as_of_inside_a_past_period_leaves_out_the_cases_reported_after_it(
    november: Engine, settings: Settings
) -> None:
    with TestClient(create_app(settings)) as client:
        q = {"period": "2025-11", "level": "district"}
        mid = client.get("/evaluation", params={**q, "as_of": "2025-11-15"}).json()
        assert (mid["as_of"], mid["provisional"], mid["calendar_warning"]) == ("2025-11-15T00:00:00+08:00", True, None)
        assert disposal_row(pd.DataFrame(mid["data"])) == [3, 3, 3, pytest.approx(1 / 3), 1.0]  # C: after 11-15
        csv = client.get("/evaluation", params={**q, "as_of": "2025-11-15", "format": "csv"})
        assert (csv.headers["x-evaluation-provisional"], csv.headers["x-evaluation-as-of"]) == (
            "true",
            "2025-11-15T00:00:00+08:00",
        )
        assert "x-evaluation-calendar-warning" not in csv.headers
        now = client.get("/evaluation", params=q).json()
        assert (now["provisional"], now["calendar_warning"]) == (False, None)
        assert disposal_row(pd.DataFrame(now["data"])) == [4, 3, 3, pytest.approx(1 / 3), 0.75]
        assert client.get("/evaluation", params={**q, "format": "csv"}).headers["x-evaluation-provisional"] == "false"
        m = client.get("/evaluation/map", params={**q, "indicator": "reports", "as_of": "2025-11-15"}).json()
        assert (m["provisional"], m["calendar_warning"]) == (True, None)
        assert [f["properties"]["value"] for f in m["features"]["features"]] == [3]


def test_a_provisional_evaluation_written_to_a_file_says_so(
    november: Engine, settings: Settings, tmp_path: Path
) -> None:
    """review28 D2: ``evaluate --out`` states the evaluation time and 暂定 in the file: the CSV in its last
    columns (the table and its English header line as before), the XLSX in a sheet 说明 and its first sheet's name."""
    env = {"GISGRID_DATABASE_URL": settings.database_url or "", "GISGRID_DATA_DIR": str(tmp_path / "data")}
    base = ["evaluate", "--period", "2025-11", "--level", "district", "--as-of", "2025-11-15"]
    csv_out, xlsx_out = tmp_path / "nov.csv", tmp_path / "nov.xlsx"
    for out in (csv_out, xlsx_out):
        r = runner.invoke(app, [*base, "--out", str(out)], env=env)
        assert r.exit_code == 0, r.output
    lines = csv_out.read_text(encoding="utf-8-sig").splitlines()
    assert lines[0].startswith("subject,name,level,reports,") and len(lines) == 2
    assert lines[0].endswith(",as_of,provisional,calendar_warning")
    assert lines[1].endswith(",2025-11-15T00:00:00+08:00,true,")
    table = pd.read_csv(csv_out, encoding="utf-8-sig", dtype={"subject": str})
    assert table[["reports", "as_of", "provisional"]].values.tolist() == [[3, "2025-11-15T00:00:00+08:00", True]]
    book = openpyxl.load_workbook(xlsx_out)
    assert book.sheetnames == ["2025-11 区 暂定", "字段说明", "说明"]
    assert [[c.value for c in row] for row in book["说明"].iter_rows()] == [
        ["项目", "值", "字段 key"],
        ["评价时点", "2025-11-15T00:00:00+08:00", "as_of"],
        ["暂定", "是: 暂定(评价期未结束)", "provisional"],
    ]
    first = book["2025-11 区 暂定"]
    assert first["A1"].value == "测试区 区考核表 · 2025年11月 · 评价时点 2025-11-15 00:00 · 暂定(评价期未结束)"
    assert [c.value for c in first[2]][:4] == ["区域编码", "名称", "层级", "上报数"] and first.max_row == 3
    assert first.freeze_panes == "A3"  # the title row and the header stay in view


def test_the_api_downloads_the_xlsx_people_read_named_provisional_when_it_is(
    november: Engine, settings: Settings
) -> None:
    """review40 U1: the 考核科 gets the zh-CN workbook from a browser (``format=xlsx``), the one ``evaluate --out``
    writes: sheets named after the period and subject (暂定 while provisional), 说明 with the evaluation time;
    the CSV's and the XLSX's file names say ``provisional`` too."""
    import io

    with TestClient(create_app(settings)) as client:
        q = {"period": "2025-11", "level": "district", "as_of": "2025-11-15"}
        r = client.get("/evaluation", params={**q, "format": "xlsx"})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        assert r.headers["content-disposition"] == 'attachment; filename="evaluation-district-2025-11-provisional.xlsx"'
        book = openpyxl.load_workbook(io.BytesIO(r.content))
        assert book.sheetnames == ["2025-11 区 暂定", "字段说明", "说明"]
        first = book["2025-11 区 暂定"]
        assert [c.value for c in first[2]][:4] == ["区域编码", "名称", "层级", "上报数"]  # below the title row
        assert [c.value for c in first[3]][2:4] == ["区", 3]
        assert [c.value for c in book["说明"][2]] == ["评价时点", "2025-11-15T00:00:00+08:00", "as_of"]
        csv = client.get("/evaluation", params={**q, "format": "csv"})
        disposition = csv.headers["content-disposition"]
        assert disposition == 'attachment; filename="evaluation-district-2025-11-provisional.csv"'
        final = client.get("/evaluation", params={"period": "2025-11", "subject": "department", "format": "xlsx"})
        assert final.headers["content-disposition"] == 'attachment; filename="evaluation-department-2025-11.xlsx"'
        assert openpyxl.load_workbook(io.BytesIO(final.content)).sheetnames[0] == "2025-11 专业部门"
        pdf = client.get("/evaluation", params={**q, "format": "pdf"})  # the printed 考核表, named as the others
        assert (
            pdf.headers["content-disposition"] == 'attachment; filename="evaluation-district-2025-11-provisional.pdf"'
        )
        docx = client.get("/evaluation", params={**q, "format": "docx"})  # refused by its field, the formats named
        assert docx.status_code == 422 and docx.json()["reason"] == "literal_error"
        choices = "Input should be 'json', 'csv', 'xlsx' or 'pdf'"
        assert docx.json()["detail"] == {
            "message": f"format: {choices}",
            "items": [{"field": "format", "reason": choices, "code": "literal_error"}],
        }


def closed_case_rows(case: str, reported: str, rest: str) -> str:
    """A 暴露垃圾 case reported at ``reported`` and taken to 结案 on the day ``rest`` (YYYY-MM-DD) from 09:00."""
    steps = (
        ("reported", "request_verify", "intake", "", reported[:11] + "10:05:00", ""),
        ("verified", "", "supervisor", "", f"{rest}T09:00:00", ""),
        ("filed", "", "shift_lead", "", f"{rest}T09:10:00", ""),
        ("dispatched", "", "dispatcher", "990000000000000003", f"{rest}T09:20:00", ""),
        ("handled", "", "department", "", f"{rest}T10:00:00", "done"),
        ("handled", "request_check", "intake", "", f"{rest}T10:05:00", ""),
        ("checked", "", "supervisor", "", f"{rest}T10:30:00", ""),
        ("closed", "", "shift_lead", "", f"{rest}T10:40:00", ""),
    )
    first = f"{case},gbt47678,06010,113.674566,34.745434,wgs84,patrol,reported,,supervisor,,,{reported},r\n"
    return first + "".join(f"{case},,,,,,,{s},{a},{r},,{d},{t},{n}\n" for s, a, r, d, t, n in steps)


@pytest.mark.filterwarnings("ignore::gisgrid.calendar.CalendarYearUnknown")
def test_figures_and_a_finished_case_that_ran_through_an_unknown_year_carry_the_calendar_warning(
    loaded: Engine, services: svc.CaseServices, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """review26 D3: a node judged into a year the calendar does not know (2027 with chinesecalendar 1.11) counted
    Mon–Fri there, 元旦 included: the evaluation's JSON, CSV and map and the finished case's detail say so, naming
    the year and the remedy; an answer whose arithmetic stayed in known years does not, though the calendar met
    the year (the clock looks around the cases)."""
    from gisgrid import evaluation_service
    from gisgrid.calendar import KNOWN_YEARS

    known = max(KNOWN_YEARS)
    unknown = known + 1
    # Y: reported on 12-31 of the last year the calendar knows, 核实 … 结案 on 01-05 of the next; Z: in December.
    rows = closed_case_rows("Y", f"{known}-12-31T10:00:00", f"{unknown}-01-05")
    rows += closed_case_rows("Z", f"{known}-12-01T08:00:00", f"{known}-12-02")
    import_rows(loaded, services, tmp_path, rows, now=f"{unknown}-02-01")
    with loaded.connect() as conn:
        y_id, z_id = conn.execute(text("SELECT id FROM cases ORDER BY created_at DESC")).scalars().all()
    monkeypatch.setattr(evaluation_service, "_clock", lambda tz: pd.Timestamp(f"{unknown}-01-10T12:00", tz=tz))
    zh = (
        f"{unknown} 年节假日安排未知(chinesecalendar 未收录): 评价中的环节用时按周一至周五计算, 可能有误;"
        "请升级 chinesecalendar,或在 GISGRID_CALENDAR_FILE 中列出该年的放假和调休上班日期"
        ",然后运行 gisgrid cases recompute-deadlines --year YYYY 重算已保存的时限。"
    )
    en = (
        f"Holidays of {unknown} are unknown: the working time behind these figures (on time, late, scores) counts "
        "Mon–Fri; upgrade chinesecalendar or list the year's days in GISGRID_CALENDAR_FILE"
        ", then run `gisgrid cases recompute-deadlines --year YYYY` to recompute the deadlines already stored."
    )
    q = {"period": f"{known}-12", "subject": "supervisor"}
    with TestClient(create_app(settings)) as client:
        body = client.get("/evaluation", params=q).json()
        assert (body["as_of"], body["provisional"]) == (f"{unknown}-01-10T12:00:00+08:00", False)
        assert body["calendar_warning"] == f"{zh} {en}"
        csv = client.get("/evaluation", params={**q, "format": "csv"})
        assert csv.status_code == 200 and csv.headers["x-evaluation-calendar-warning"] == en.replace("–", "-")
        region = {"period": f"{known}-12", "indicator": "score", "level": "district"}
        m = client.get("/evaluation/map", params=region).json()
        assert m["calendar_warning"] == f"{zh} {en}" and m["note"] == f"{zh} {en}"
        # Judged while the year ran, 5 minutes into Y's 核实: no node reached the unknown year.
        early = client.get("/evaluation", params={**q, "as_of": f"{known}-12-31T10:10"}).json()
        assert (early["provisional"], early["calendar_warning"]) == (True, None)
        assert (
            "x-evaluation-calendar-warning"
            not in client.get("/evaluation", params={**q, "as_of": f"{known}-12-31T10:10", "format": "csv"}).headers
        )
        assert unknown in client.app.state.cases.calendar.unknown_years  # met, but not by these figures
        y = client.get(f"/cases/{y_id}").json()
        assert y["state"] == "closed"
        assert y["calendar_warning"] == (
            f"{unknown} 年节假日安排未知(chinesecalendar 未收录): 环节用时按周一至周五计算, 可能有误;请升级 "
            "chinesecalendar,或在 GISGRID_CALENDAR_FILE 中列出该年的放假和调休上班日期,然后运行 gisgrid cases "
            "recompute-deadlines --year YYYY 重算已保存的时限。 Holidays of "
            f"{unknown} are unknown: the nodes' working time counts Mon–Fri; upgrade chinesecalendar or list the "
            "year's days in GISGRID_CALENDAR_FILE, then run "
            "`gisgrid cases recompute-deadlines --year YYYY` to recompute the deadlines already stored."
        )
        z = client.get(f"/cases/{z_id}").json()
        assert (z["state"], z["calendar_warning"]) == ("closed", None)
    env = {"GISGRID_DATABASE_URL": settings.database_url or "", "GISGRID_DATA_DIR": str(tmp_path / "data")}
    r = runner.invoke(app, ["evaluate", "--period", f"{known}-12", "--subject", "supervisor"], env=env)
    assert r.exit_code == 0, r.output
    assert f"warning: {zh} {en}\n" in r.stderr and "provisional" not in r.stdout
    r = runner.invoke(app, ["evaluate", "--period", f"{known}-12", "--as-of", f"{known}-12-31T10:10"], env=env)
    assert r.exit_code == 0 and "warning" not in r.stderr, r.output
    assert f"judged as of {known}-12-31T10:10:00+08:00 — provisional (暂定): the period had not ended" in r.stdout


@pytest.mark.filterwarnings("ignore::gisgrid.calendar.CalendarYearUnknown")  # the import's; the commands' shown
def test_evaluate_and_the_evaluation_map_print_only_the_answers_calendar_warning_and_the_file_carries_it(
    installed_assets: None,
    loaded: Engine,
    services: svc.CaseServices,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """review28 D3: ``map render --layer evaluation`` prints one ``warning:`` line, the evaluation's, as ``evaluate``
    does (not the calendar's generic one besides); review28 D2: ``evaluate --out`` writes that warning in the file."""
    import warnings

    from gisgrid import evaluation_service
    from gisgrid.calendar import KNOWN_YEARS
    from gisgrid.cli import _one_line_warning

    known = max(KNOWN_YEARS)
    unknown = known + 1
    y = closed_case_rows("Y", f"{known}-12-31T10:00:00", f"{unknown}-01-05")
    import_rows(loaded, services, tmp_path, y, now=f"{unknown}-02-01")
    monkeypatch.setattr(evaluation_service, "_clock", lambda tz: pd.Timestamp(f"{unknown}-01-10T12:00", tz=tz))
    warning = evaluation_service.calendar_warning((unknown,))
    assert warning is not None and warning.startswith(f"{unknown} 年节假日安排未知")
    env = {"GISGRID_DATABASE_URL": settings.database_url or "", "GISGRID_DATA_DIR": str(tmp_path / "data")}
    period = ["--period", f"{known}-12"]
    xlsx_out, csv_out, html_out = tmp_path / "dec.xlsx", tmp_path / "dec.csv", tmp_path / "dec.html"
    level = ["--level", "district"]
    commands = (
        ["evaluate", *period, *level, "--out", str(xlsx_out)],
        ["evaluate", *period, *level, "--out", str(csv_out)],
        ["map", "render", "--layer", "evaluation", *period, *level, "--indicator", "score", "--out", str(html_out)],
    )
    for command in commands:
        with warnings.catch_warnings():
            warnings.simplefilter("always")  # as a fresh process: every warning shown, as the CLI shows them
            warnings.showwarning = _one_line_warning
            r = runner.invoke(app, command, env=env)
        assert r.exit_code == 0, r.output
        assert r.stderr == f"warning: {warning}\n", command
    assert [[c.value for c in row] for row in openpyxl.load_workbook(xlsx_out)["说明"].iter_rows()] == [
        ["项目", "值", "字段 key"],
        ["评价时点", f"{unknown}-01-10T12:00:00+08:00", "as_of"],
        ["暂定", "否", "provisional"],
        ["日历提示", warning, "calendar_warning"],
    ]
    table = pd.read_csv(csv_out, encoding="utf-8-sig", dtype=str)
    assert table[["as_of", "provisional", "calendar_warning"]].values.tolist() == [
        [f"{unknown}-01-10T12:00:00+08:00", "false", warning]
    ]


def test_a_period_whose_previous_period_had_no_case_has_the_rank_change_columns_empty(
    client: TestClient, late_case: Engine, services: svc.CaseServices, settings: Settings, tmp_path: Path
) -> None:
    """review40 D3: R1's September follows an August without cases; its tables have previous_rank and rank_change
    like any month's (null, empty), so a script reading monthly tables does not break on the first one — JSON, the
    API's CSV, the CLI's CSV and XLSX."""
    september = parse_period("2025-09")
    table = indicators(late_case, services, september, "region", "unit_grid")
    assert table.columns[-3:].tolist() == ["rank", "previous_rank", "rank_change"]
    ranks = table[["rank", "previous_rank", "rank_change"]].astype(object).values.tolist()
    assert ranks[0] == [1, pd.NA, pd.NA] and ranks[1:] == [[pd.NA] * 3] * (len(table) - 1)  # the others: no case

    q = {"period": "2025-09", "level": "unit_grid"}
    row = client.get("/evaluation", params=q).json()["data"][0]
    assert (row["rank"], row["previous_rank"], row["rank_change"]) == (1, None, None)
    csv = client.get("/evaluation", params={**q, "format": "csv"}).text.splitlines()
    header = csv[0].lstrip("\ufeff").split(",")
    assert header[-3:] == ["rank", "previous_rank", "rank_change"]  # the API states as_of … in its headers
    assert csv[1].split(",")[-3:] == ["1", "", ""]

    env = {"GISGRID_DATABASE_URL": settings.database_url or "", "GISGRID_DATA_DIR": str(tmp_path / "data")}
    csv_out, xlsx_out = tmp_path / "sep.csv", tmp_path / "sep.xlsx"
    for out in (csv_out, xlsx_out):
        r = runner.invoke(app, ["evaluate", "--period", "2025-09", "--level", "unit_grid", "--out", str(out)], env=env)
        assert r.exit_code == 0, r.output
    written = pd.read_csv(csv_out, encoding="utf-8-sig")
    assert written.columns[-6:-3].tolist() == ["rank", "previous_rank", "rank_change"]
    assert written[["previous_rank", "rank_change"]].isna().all().all()
    sheet = pd.read_excel(xlsx_out, sheet_name="2025-09 单元网格", header=1)  # below the title row
    assert sheet.columns[-3:].tolist() == ["排名", "上期排名", "排名变化"]
    assert sheet[["上期排名", "排名变化"]].isna().all().all()


def test_evaluate_top_0_prints_no_rows_and_a_negative_top_is_refused(
    late_case: Engine, settings: Settings, tmp_path: Path
) -> None:
    """review40 U5: --top 0 (the file only) printed pandas' "Empty DataFrame / Columns: […]"."""
    env = {"GISGRID_DATABASE_URL": settings.database_url or "", "GISGRID_DATA_DIR": str(tmp_path / "data")}
    out = tmp_path / "sep.xlsx"
    base = ["evaluate", "--period", "2025-09", "--level", "unit_grid"]
    r = runner.invoke(app, [*base, "--out", str(out), "--top", "0"], env=env)
    assert r.exit_code == 0, r.output
    with late_case.connect() as conn:
        grids = conn.execute(text("SELECT count(*) FROM unit_grids")).scalar_one()
    assert r.output.splitlines()[1:] == [f"wrote {out}", f"{grids} rows; none printed (--top 0)"]
    assert out.exists() and "DataFrame" not in r.output
    r = runner.invoke(app, [*base, "--top", "-1"], env=env)
    assert r.exit_code == 2 and "-1 is not in the range x>=0" in r.output


def test_the_risks_take_as_of_and_state_it_as_the_evaluation_does(client: TestClient) -> None:
    """review44 U2: /risks answered {count, data} only, judged at no stated time, and refused as_of."""
    q = {"period": "2025-09"}
    now = client.get("/risks/paper_closure", params=q).json()
    assert (now["period"], now["as_of"] > "2026", now["provisional"]) == ("2025-09", True, False)
    assert [r["closed"] for r in now["data"]] == [1.0]  # R1, closed (10-09) by now

    at_end = client.get("/risks/paper_closure", params={**q, "as_of": "2025-10-01"}).json()
    assert {k: at_end[k] for k in ("period", "as_of", "provisional", "count")} == {
        "period": "2025-09",
        "as_of": "2025-10-01T00:00:00+08:00",
        "provisional": False,
        "count": 0,  # R1 closed on 10-09: no closed case then
    }
    inside = client.get("/risks/escalation", params={**q, "as_of": "2025-09-30T16:00", "format": "csv"})
    assert inside.status_code == 200, inside.text
    assert {k: v for k, v in inside.headers.items() if k.startswith("x-evaluation-")} == {
        "x-evaluation-period": "2025-09",
        "x-evaluation-as-of": "2025-09-30T16:00:00+08:00",
        "x-evaluation-provisional": "true",
    }
    assert inside.headers["content-disposition"] == 'attachment; filename="risk-escalation-2025-09-provisional.csv"'

    future = client.get("/risks/overload", params={**q, "as_of": "2100-01-01"})
    assert (future.status_code, future.json()["reason"]) == (422, "as_of_in_future"), future.text
    none_yet = client.get("/risks/selective", params={**q, "as_of": "2025-09-20"})
    assert (none_yet.status_code, none_yet.json()["reason"]) == (422, "no_cases_in_period"), none_yet.text
    assert none_yet.json()["detail"]["message"] == "period: no cases were reported in 2025-09"
