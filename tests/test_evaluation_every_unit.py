"""Every assessed unit in the 考核表 (review49 F5, F10): the department catalogue and the stored regions of a level
are listed whether or not they had a case (不参评, 本期无案件), an empty month is a table, not a refusal, counts are
whole numbers, and the refusals of a period or an evaluation time say it in zh-CN first.

The record: one 暴露垃圾 case (R1 of ``test_evaluation_as_of``) reported 2025-09-30 in the small district,
dispatched to 990000000000000003 and closed on 2025-10-09; August 2025 has no case."""

from __future__ import annotations

import io
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
from gisgrid.cli import app
from gisgrid.evaluation_service import (
    DEPARTMENT_TOTAL_NOTE,
    indicators,
    parse_period,
    period_words,
    totals_row,
    write_table,
)
from gisgrid.settings import Settings
from tests.test_evaluation_as_of import late_case  # noqa: F401  (a fixture)

runner = CliRunner()
R1_DEPARTMENT = "990000000000000003"
QUIET_DEPARTMENT = "990000000000000001"  # 区城市管理委员会: no case in the record


@pytest.fixture
def record(late_case: Engine) -> Engine:  # noqa: F811  (the fixture imported above)
    """R1 imported (``test_evaluation_as_of``'s fixture)."""
    return late_case


@pytest.fixture
def client(record: Engine, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def test_every_catalogue_department_is_listed_one_without_a_case_not_graded(
    record: Engine, services: svc.CaseServices
) -> None:
    table = indicators(record, services, parse_period("2025-09"), "department", "tier3", as_of="2025-10-15")
    assert len(services.departments) == 19
    assert len(table) == 19 and set(table["subject"]) == set(services.departments)
    graded = table.iloc[0]
    assert (graded["subject"], graded["grade"], graded["rank"], graded["ungraded_reason"]) == (
        R1_DEPARTMENT,
        "A",
        1,
        "",
    )
    quiet = table.set_index("subject").loc[QUIET_DEPARTMENT]
    assert quiet["name"] == "区城市管理委员会"
    assert [quiet[c] for c in ("dispatched", "filed", "to_dispose", "handled", "to_close", "closed")] == [0] * 6
    assert (quiet["grade"], quiet["ungraded_reason"], quiet["weight_present"]) == ("不参评", "本期无案件", 0.0)
    assert pd.isna(quiet["score"]) and pd.isna(quiet["rank"]) and pd.isna(quiet["closure_rate"])
    assert table["ungraded_reason"].tolist() == [""] + ["本期无案件"] * 18  # the graded first, then by code
    assert table["subject"].tolist()[1:] == sorted(set(services.departments) - {R1_DEPARTMENT})


def test_every_stored_region_of_the_level_is_listed(record: Engine, services: svc.CaseServices) -> None:
    with record.connect() as conn:
        tier3 = conn.execute(text("SELECT count(*) FROM management_grids WHERE tier = 3")).scalar_one()
        grids = dict(conn.execute(text("SELECT street_code, count(*) FROM unit_grids GROUP BY 1")).all())
    september = parse_period("2025-09")
    assert len(indicators(record, services, september, "region", "tier3", as_of="2025-10-15")) == tier3
    streets = indicators(record, services, september, "region", "tier1", as_of="2025-10-15")
    shown = streets[["subject", "name", "reports", "unit_grids", "unit_grids_from", "grade", "ungraded_reason"]]
    assert shown.to_dict("records") == [
        {"subject": "419902001", "name": "西城街道", "reports": 1, "unit_grids": grids["419902001"],
         "unit_grids_from": "stored", "grade": "A", "ungraded_reason": ""},
        {"subject": "419902002", "name": "东关街道", "reports": 0, "unit_grids": grids["419902002"],
         "unit_grids_from": "stored", "grade": "不参评", "ungraded_reason": "本期无案件"},
    ]  # fmt: skip


def test_an_empty_month_is_a_table_of_every_unit_not_graded(client: TestClient, settings: Settings) -> None:
    r = client.get("/evaluation", params={"period": "2025-08", "subject": "department"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["period"], body["provisional"], body["count"]) == ("2025-08", False, 19)
    assert {row["grade"] for row in body["data"]} == {"不参评"}
    assert {row["ungraded_reason"] for row in body["data"]} == {"本期无案件"}
    assert {row["score"] for row in body["data"]} == {None} and {row["rank"] for row in body["data"]} == {None}
    assert {row["to_close"] for row in body["data"]} == {0}
    streets = client.get("/evaluation", params={"period": "2025-08", "level": "tier1"}).json()
    assert [(row["name"], row["reports"], row["grade"]) for row in streets["data"]] == [
        ("西城街道", 0, "不参评"),
        ("东关街道", 0, "不参评"),
    ]
    # Posts list the people who acted: none in an empty month (the workflow's actors have no roster).
    posts = client.get("/evaluation", params={"period": "2025-08", "subject": "supervisor"}).json()
    assert (posts["count"], posts["data"]) == (0, [])
    xlsx = client.get("/evaluation", params={"period": "2025-08", "subject": "department", "format": "xlsx"})
    assert xlsx.status_code == 200, xlsx.text
    # Inside September before R1 was reported (09-30 15:00): the departments, none graded yet (provisional).
    early = client.get("/evaluation", params={"period": "2025-09", "subject": "department", "as_of": "2025-09-20"})
    assert (early.status_code, early.json()["provisional"], early.json()["count"]) == (200, True, 19), early.text
    # The map of an empty month: every region without data, no class (the table lists them 不参评).
    m = client.get("/evaluation/map", params={"period": "2025-08", "indicator": "score", "level": "tier1"})
    assert m.status_code == 200, m.text
    assert [(c["label"], c["count"]) for c in m.json()["legend"]] == [("无数据", 2)]
    # The command writes it too, and says so (exit 0).
    env = {"GISGRID_DATABASE_URL": settings.database_url or ""}
    r2 = runner.invoke(app, ["evaluate", "--period", "2025-08", "--subject", "department", "--top", "0"], env=env)
    assert r2.exit_code == 0, r2.output
    assert "19 rows; none printed (--top 0)" in r2.output
    r3 = runner.invoke(app, ["evaluate", "--period", "2025-08", "--subject", "supervisor"], env=env)
    assert r3.exit_code == 0 and r3.output.splitlines()[-1] == "0 rows: no one of this post acted in the period"


def test_counts_are_whole_numbers_in_json_and_csv(client: TestClient) -> None:
    """review49 F10: 漏报数 was 0.0."""
    q = {"period": "2025-09", "subject": "supervisor", "as_of": "2025-10-15"}
    [row] = client.get("/evaluation", params=q).json()["data"]
    assert {k: row[k] for k in ("reports", "valid_reports", "area_filed", "missed_reports")} == {
        "reports": 1, "valid_reports": 1, "area_filed": 1, "missed_reports": 0,
    }  # fmt: skip
    assert all(type(row[k]) is int for k in ("reports", "area_filed", "missed_reports"))
    csv = client.get("/evaluation", params={**q, "format": "csv"}).text.lstrip("\ufeff")
    header, line = csv.splitlines()[:2]
    cells = dict(zip(header.split(","), line.split(","), strict=True))
    assert (cells["missed_reports"], cells["area_filed"], cells["reports"]) == ("0", "1", "1")
    d = client.get("/evaluation", params={"period": "2025-09", "subject": "department", "as_of": "2025-10-15"}).json()
    assert all(type(r[k]) is int for r in d["data"] for k in ("dispatched", "filed", "to_close", "suspended"))


def test_the_refusals_of_a_period_and_an_evaluation_time_say_it_in_zh_cn_first(client: TestClient) -> None:
    """The Chinese in message_zh, the English in message, as every refusal (review52 F3e)."""
    zh = {"Accept-Language": "zh"}
    future = client.get("/evaluation", params={"period": "2025-09", "as_of": "2100-01-01"}, headers=zh)
    assert (future.status_code, future.json()["reason"]) == (422, "as_of_in_future")
    message = future.json()["detail"]["message"]
    assert message.startswith("as_of: 2100-01-01T00:00:00+08:00 is later than now ("), message
    assert future.json()["message_zh"].startswith("评价时点不能晚于当前时间(2100-01-01 00:00 晚于 20")
    assert future.json()["message_zh"].endswith("):尚未到期的环节不能算作超时")
    early = client.get("/evaluation", params={"period": "2025-09", "as_of": "2025-08-31"}, headers=zh)
    assert early.json()["detail"]["message"] == (
        "as_of: 2025-08-31T00:00:00+08:00 is not after the start of 2025-09 (2025-09-01T00:00:00+08:00); nothing had "
        "been reported yet"
    )
    assert early.json()["message_zh"] == "评价时点须晚于评价期开始(2025-09-01 00:00),此前尚无上报"
    coming = client.get("/evaluation", params={"period": "2100-01"}, headers=zh)  # not begun: nothing to list yet
    assert (coming.status_code, coming.json()["reason"]) == (422, "no_cases_in_period")
    message = coming.json()["detail"]["message"]
    assert message.startswith(
        "period: no cases were reported in 2100-01: it begins 2100-01-01T00:00:00+08:00, after now ("
    ), message
    assert coming.json()["message_zh"] == "该评价期内没有上报的案件:2100-01 尚未开始(始于 2100-01-01 00:00)"
    [item] = coming.json()["detail"]["items"]
    assert (item["field"], item["value"], item["code"]) == ("period", "2100-01", "no_cases_in_period")
    risks = client.get("/risks/selective", params={"period": "2025-08"})
    assert risks.json()["detail"]["message"] == "period: no cases were reported in 2025-08"


def test_the_xlsx_has_a_title_row_and_a_district_total_recomputed_from_the_sums(client: TestClient) -> None:
    """review49 F10: for leadership, the district, the period and the evaluation time in words above the table, and
    a 全区合计 line below the departments (read back with openpyxl)."""
    q = {"period": "2025-09", "subject": "department", "as_of": "2025-10-15", "format": "xlsx"}
    r = client.get("/evaluation", params=q)
    assert r.status_code == 200, r.text
    book = openpyxl.load_workbook(io.BytesIO(r.content))
    sheet = book["2025-09 专业部门"]
    assert sheet["A1"].value == "测试区 专业部门考核表 · 2025年9月 · 评价时点 2025-10-15 00:00"
    assert sheet["A1"].font.bold and [str(m) for m in sheet.merged_cells.ranges] == ["A1:AC1"]
    header = [c.value for c in sheet[2]]
    assert header[:4] == ["部门编码", "名称", "派遣案件数", "回退数"] and len(header) == 29
    rows = [dict(zip(header, row, strict=True)) for row in sheet.iter_rows(min_row=3, values_only=True)]
    assert len(rows) == 20 and [r["名称"] for r in rows[:1]] == ["区环境卫生服务中心"]
    total = rows[-1]
    assert {k: total[k] for k in ("部门编码", "名称", "派遣案件数", "立案数", "应处置数", "应结案数", "结案数")} == {
        "部门编码": None, "名称": "全区合计", "派遣案件数": 1, "立案数": 1, "应处置数": 1, "应结案数": 1, "结案数": 1,
    }  # fmt: skip
    assert (total["结案率"], total["按期处置率"], total["月均立案数"]) == (1, 1, 1)
    # The package's catalogue groups no department: every one is scored by the default table (empty 分组).
    assert {r["立案数分值分组"] for r in rows[:-1]} == {None} and total["立案数分值分组"] is None
    assert (total["综合指标值"], total["等级"], total["排名"]) == (None, None, None)
    assert sheet.cell(22, 1).font.bold and sheet.freeze_panes == "A3"
    assert sheet.cell(22, header.index("结案率") + 1).number_format == "0.0%"
    notes = [[c.value for c in row] for row in book["说明"].iter_rows()]
    assert notes[-1] == ["合计", DEPARTMENT_TOTAL_NOTE, "totals"]
    # A region level's table: its regions, then the 合计 (按时核实率 from the summed 应核实数 and 按时核实数).
    r = client.get("/evaluation", params={**q, "subject": "region", "level": "tier1"})
    sheet = openpyxl.load_workbook(io.BytesIO(r.content)).worksheets[0]
    assert sheet["A1"].value == "测试区 一级网格(街道)考核表 · 2025年9月 · 评价时点 2025-10-15 00:00"
    header = [c.value for c in sheet[2]]
    rows = [dict(zip(header, row, strict=True)) for row in sheet.iter_rows(min_row=3, values_only=True)]
    assert [r["名称"] for r in rows] == ["西城街道", "东关街道", "全区合计"]
    assert rows[-1]["单元网格数"] == rows[0]["单元网格数"] + rows[1]["单元网格数"]
    assert (rows[-1]["上报数"], rows[-1]["有效上报率"], rows[-1]["按时核实率"]) == (1, 1, 1)
    counts = ("应核实数", "按时核实数", "应核查数", "按时核查数", "应派遣数", "按时派遣数")
    assert [rows[-1][k] for k in counts] == [1, 1, 1, 1, 1, 1]
    assert (rows[-1]["按时核查率"], rows[-1]["按时派遣率"]) == (1, 1)
    # The 字段说明 sheet names each new count's key and what it counts.
    keys = {row[1]: row for row in book_keys(r.content)}
    assert [keys[k][0] for k in ("to_verify", "on_time_verified", "to_check", "on_time_checked")] == list(counts[:4])
    assert [keys[k][0] for k in ("to_dispatch", "on_time_dispatched")] == list(counts[4:])
    assert keys["to_verify"][3].startswith("计入的核实环节数") and "按时核实率的分子" in keys["on_time_verified"][3]
    # JSON and CSV (for scripts) carry the node counts too, per unit.
    got = client.get("/evaluation", params={**q, "subject": "region", "level": "tier1", "format": "json"}).json()
    names = ("to_verify", "on_time_verified", "to_check", "on_time_checked", "to_dispatch", "on_time_dispatched")
    assert [[row[k] for k in names] for row in got["data"]] == [[1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0]]
    csv = client.get("/evaluation", params={**q, "subject": "region", "level": "tier1", "format": "csv"})
    header = csv.text.lstrip("\ufeff").splitlines()[0].split(",")
    assert header[header.index("public_report_rate") + 1 :][:9] == [
        "to_verify", "on_time_verified", "on_time_verify_rate", "to_check", "on_time_checked", "on_time_check_rate",
        "to_dispatch", "on_time_dispatched", "on_time_dispatch_rate",
    ]  # fmt: skip
    # The district itself and the posts: no 合计 line.
    for params in ({"subject": "region", "level": "district"}, {"subject": "supervisor"}):
        sheet = openpyxl.load_workbook(
            io.BytesIO(client.get("/evaluation", params={**q, **params}).content)
        ).worksheets[0]
        assert sheet.max_row == 3, params  # title, header, one row


def book_keys(content: bytes) -> list[tuple[object, ...]]:
    """The rows of an XLSX's 字段说明 sheet under its header: (列名, 字段 key, 取值 values, 定义 definition)."""
    sheet = openpyxl.load_workbook(io.BytesIO(content))["字段说明"]
    return list(sheet.iter_rows(min_row=2, values_only=True))


def test_the_total_rates_are_recomputed_from_the_sums_not_averaged(tmp_path: Path) -> None:
    """Two departments, 3/3 and 0/1 closed: 结案率 3/4 = 75 % in the 合计, not the mean 50 %; a quarter's title says
    it in words, 暂定 while it runs."""
    table = pd.DataFrame(
        {
            "subject": ["990000000000000001", "990000000000000002", "990000000000000003"],
            "name": ["甲", "乙", "丙"],
            "filed": [3, 1, 0],
            "filed_per_month": [1.0, 1 / 3, 0.0],
            "to_close": [3, 1, 0],
            "closed": [3, 0, 0],
            "closure_rate": [1.0, 0.0, float("nan")],
            "on_time_closure_rate": [2 / 3, 0.0, float("nan")],
            "score": [90.0, 40.0, float("nan")],
            "grade": ["A", "D", "不参评"],
        }
    )
    table.attrs.update(
        period=parse_period("2025-Q3"),
        as_of=pd.Timestamp("2025-09-15T09:30:00+08:00"),
        provisional=True,
        unknown_years=(),
        district="测试区",
        level="tier3",
    )
    assert totals_row(table, "department") == {
        "subject": None, "name": "全区合计", "filed": 4, "filed_per_month": 4 / 3, "to_close": 4, "closed": 3,
        "closure_rate": 0.75, "on_time_closure_rate": 0.5, "score": None, "grade": None,
    }  # fmt: skip
    write_table(table, tmp_path / "q.xlsx", "2025-Q3 专业部门", "department")
    sheet = openpyxl.load_workbook(tmp_path / "q.xlsx").worksheets[0]
    assert sheet["A1"].value == "测试区 专业部门考核表 · 2025年第3季度 · 评价时点 2025-09-15 09:30 · 暂定(评价期未结束)"
    assert [c.value for c in sheet[6]][:8] == [None, "全区合计", 4, pytest.approx(4 / 3), 4, 3, 0.75, 0.5]
    # The CSV (for scripts) has neither the title nor the 合计.
    write_table(table, tmp_path / "q.csv", "2025-Q3 专业部门", "department")
    assert len(pd.read_csv(tmp_path / "q.csv", encoding="utf-8-sig")) == 3


def test_a_period_in_words() -> None:
    said = {
        "2026-10": "2026年10月",
        "2026-Q4": "2026年第4季度",
        "2026": "2026年",
        "2026-W40": "2026年第40周",
        "2026-10..2026-12": "2026年10月至2026年12月",
        "2026-10-01..2026-11-01": "2026年10月",
        "2026-10-01..2026-10-16": "2026-10-01 至 2026-10-15",
    }
    assert {given: period_words(parse_period(given)) for given in said} == said


def test_the_total_line_takes_pending_reports_out_of_the_report_rates_denominator() -> None:
    """有效上报率 and 立案率 are over (上报数 − 待定上报数) (review49 #2): the 合计 line sums them so, not over 上报数.
    Street A: 4 reports, 1 pending, 2 valid (2/3); street B: 2 reports, none pending, 1 valid (1/2) → 3 / 5."""
    table = pd.DataFrame(
        {
            "subject": ["419902001", "419902002"],
            "name": ["西城街道", "东关街道"],
            "reports": [4, 2],
            "valid_reports": [2, 1],
            "pending_reports": [1, 0],
            "valid_report_rate": [2 / 3, 1 / 2],
            "filed": [2, 1],
            "filing_rate": [2 / 3, 1 / 2],
        }
    )
    total = totals_row(table, "region", "tier1")
    assert total is not None
    assert (total["reports"], total["pending_reports"], total["valid_reports"]) == (6, 1, 3)
    assert (total["valid_report_rate"], total["filing_rate"]) == (0.6, 0.6)  # not 4 / 6 over every report


def test_the_total_line_recomputes_the_node_rates_from_their_counts(tmp_path: Path) -> None:
    """按时核实率, 按时核查率, 按时派遣率 in the 合计 line: Σ on-time nodes / Σ counted nodes (应核实数 …).
    Street A: 3 of 4 verifications on time, 2 of 2 checks, 1 of 1 dispatch; street B: 1 of 2, 0 of 1, none
    counted → 4/6, 2/3, 1/1 (not the means 62.5 %, 50 %)."""
    table = pd.DataFrame(
        {
            "subject": ["419902001", "419902002"],
            "name": ["西城街道", "东关街道"],
            "to_verify": [4, 2],
            "on_time_verified": [3, 1],
            "on_time_verify_rate": [0.75, 0.5],
            "to_check": [2, 1],
            "on_time_checked": [2, 0],
            "on_time_check_rate": [1.0, 0.0],
            "to_dispatch": [1, 0],
            "on_time_dispatched": [1, 0],
            "on_time_dispatch_rate": [1.0, float("nan")],
        }
    )
    table.attrs.update(
        period=parse_period("2025-09"),
        as_of=pd.Timestamp("2025-10-15T00:00:00+08:00"),
        provisional=False,
        unknown_years=(),
        district="测试区",
        level="tier1",
    )
    total = totals_row(table, "region", "tier1")
    assert total == {
        "subject": None, "name": "全区合计", "to_verify": 6, "on_time_verified": 4, "on_time_verify_rate": 4 / 6,
        "to_check": 3, "on_time_checked": 2, "on_time_check_rate": 2 / 3, "to_dispatch": 1, "on_time_dispatched": 1,
        "on_time_dispatch_rate": 1.0,
    }  # fmt: skip
    write_table(table, tmp_path / "t.xlsx", "2025-09 一级网格(街道)", "region")
    sheet = openpyxl.load_workbook(tmp_path / "t.xlsx").worksheets[0]
    assert [c.value for c in sheet[2]][2:5] == ["应核实数", "按时核实数", "按时核实率"]
    assert [c.value for c in sheet[5]] == [
        None,
        "全区合计",
        6,
        4,
        pytest.approx(4 / 6),
        3,
        2,
        pytest.approx(2 / 3),
        1,
        1,
        1,
    ]
    assert sheet.cell(5, 5).number_format == "0.0%"  # 66.7 %
