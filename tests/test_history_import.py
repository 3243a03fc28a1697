"""History import (历史案件导入, issue #7): a city's past record, one CSV row per transition, checked row by row and
through the workflow; accepted cases are written whole with their own numbers, refused ones listed with
row/field/reason, never half a case; the imported history evaluates."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from gisgrid import case_actions, case_intake, history, workflow
from gisgrid import cases as svc
from gisgrid.cli import app
from gisgrid.errors import InvalidInput
from gisgrid.evaluation import Period, evaluate
from gisgrid.history_import import parse_history, read_history_csv
from gisgrid.settings import PROJECT_ROOT, Settings
from tests.fixtures import DISTRICT, case_number_years

runner = CliRunner()
TZ = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 1, 1, tzinfo=TZ)
SAMPLE = PROJECT_ROOT / "data" / "demo" / "history-sample.csv"
SAMPLE_NUMBERS = ["2025000101", "2025000102", "2025000103", "2025000104"]
# Lines of the sample file (the header is line 1): case 2025000103 (hotline, reworked) is lines 17–27.
REWORKED_LINES = list(range(17, 28))


@pytest.fixture(scope="module")
def catalogue_services() -> svc.CaseServices:
    """Catalogues only (the checks that need no database)."""
    return svc.load_services(Settings())


def sample_rows() -> list[dict[str, str]]:
    with SAMPLE.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def write_rows(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def changed(line: int, **values: str) -> list[dict[str, str]]:
    """The sample with the row on CSV ``line`` changed."""
    rows = sample_rows()
    rows[line - 2].update(values)
    return rows


def run(engine: Engine, services: svc.CaseServices, path: Path, **opts: object) -> history.HistoryImportSummary:
    options = history.HistoryImportOptions(errors_path=path.with_suffix(".errors.csv"), now=NOW, **opts)  # type: ignore[arg-type]
    return history.import_history(engine, path, services, options)


def read_errors(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False).astype({"row": int})


def stored(engine: Engine) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(
            text(
                "SELECT c.case_no, c.state, c.class_code, c.source, c.reporter, c.reporter_role, c.department_code, "
                "c.previous_state, c.rework_count, c.version, c.unit_grid_code, c.district_code, c.tier3_code, "
                "c.matter_code, c.input_datum, c.description, c.created_at, c.closed_at, c.suspended_at, c.node, "
                "(SELECT count(*) FROM case_transitions t WHERE t.case_id = c.id) AS steps "
                "FROM cases c ORDER BY c.case_no"
            ),
            conn,
        ).set_index("case_no")


def count(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


# --------------------------------------------------------------------------------------- a valid history


def test_the_sample_history_imports_whole_cases_with_their_own_numbers(
    loaded: Engine, services: svc.CaseServices, tmp_path: Path
) -> None:
    path = write_rows(tmp_path / "history.csv", sample_rows())
    summary = run(loaded, services, path)
    assert (summary.rows, summary.cases_read) == (28, 4)
    assert (summary.imported_cases, summary.imported_transitions) == (4, 28)
    assert (summary.refused_rows, summary.refused_cases, summary.written) == (0, 0, True)
    assert summary.to_text().splitlines()[0] == (
        "read 28 rows (4 cases): imported 4 cases (28 transitions), refused 0 rows (0 cases)"
    )
    assert not path.with_suffix(".errors.csv").exists()  # written only when something is refused

    cases = stored(loaded)
    assert cases.index.tolist() == SAMPLE_NUMBERS
    assert cases["state"].tolist() == ["closed", "suspended", "closed", "rejected"]
    assert cases["steps"].tolist() == [9, 6, 11, 2]
    assert cases["version"].tolist() == [9, 6, 11, 2]
    assert cases["source"].tolist() == ["patrol", "patrol", "hotline", "public_app"]
    assert cases["reporter"].tolist() == ["监督员张伟", "监督员李娜", "12345热线", "公众APP"]
    assert cases["description"].tolist() == [
        "路口垃圾堆放",
        "路灯不亮",
        "市民来电：小区门口垃圾堆积",
        "APP上报：草坪有纸屑",
    ]
    assert cases["reporter_role"].tolist() == ["supervisor", "supervisor", "hotline", "public_app"]
    assert cases["department_code"].tolist()[:3] == ["990000000000000003", "990000000000000012", "990000000000000003"]
    assert cases["rework_count"].tolist() == [0, 0, 1, 0]
    assert cases.loc["2025000102", "previous_state"] == "dispatched"
    assert cases.loc["2025000102", "suspended_at"] == pd.Timestamp("2025-09-04T09:00:00+08:00")
    assert cases["closed_at"].notna().tolist() == [True, False, True, True]
    assert cases.loc["2025000101", "closed_at"] == pd.Timestamp("2025-09-02T15:00:00+08:00")
    assert cases.loc["2025000103", "created_at"] == pd.Timestamp("2025-09-04T08:50:00+08:00")
    assert (cases["district_code"] == DISTRICT).all() and cases["unit_grid_code"].str.len().eq(15).all()
    assert cases["tier3_code"].notna().all() and (cases["input_datum"] == "wgs84").all()
    assert (cases["matter_code"] == DISTRICT + cases["class_code"]).all()
    assert cases["node"].isna().all()  # closed, suspended (挂账 stops the clock) and rejected: no running node

    with loaded.connect() as conn:
        steps = pd.read_sql(
            text(
                "SELECT t.action, t.from_state, t.to_state, t.role, t.department_code, t.version, t.effects, "
                "t.details FROM case_transitions t JOIN cases c ON c.id = t.case_id "
                "WHERE c.case_no = '2025000103' ORDER BY t.version"
            ),
            conn,
        )
    assert steps["action"].tolist() == [
        "report", "request_verify", "verify", "file", "dispatch", "handle", "rework", "handle", "request_check",
        "check", "close",
    ]  # fmt: skip
    assert steps["to_state"].tolist() == [
        "reported", "reported", "verified", "filed", "dispatched", "handled", "dispatched", "handled", "handled",
        "checked", "closed",
    ]  # fmt: skip
    assert steps["role"].tolist()[:3] == ["hotline", "intake", "supervisor"]
    assert steps["version"].tolist() == list(range(1, 12))
    assert steps["effects"][6] == ["record_rework", "issue_dispatch_order"]
    assert steps["details"][6] == {
        "reason": "核查未通过：仍有垃圾（返工）",
        "department": "990000000000000003",
        "rework_count": 1,
    }
    assert steps["details"][0] == {"source": "hotline", "datum": "wgs84", "input": [113.682211, 34.745454]}
    with loaded.connect() as conn:  # the 返工's 交办单 is signed by the 指挥中心's dispatcher, not the supervisor
        orders = conn.execute(
            text(
                "SELECT d.number, d.issued_by FROM case_documents d JOIN cases c ON c.id = d.case_id "
                "WHERE c.case_no = '2025000103' ORDER BY d.number"
            )
        ).all()
    assert [tuple(o) for o in orders] == [("JB2025000103-01", "派遣员01"), ("JB2025000103-02", "派遣员01")]

    # The year's counter moved past the kept numbers: the next live report does not reuse one.
    x, y = 113.674566, 34.745434
    case_id, _ = case_intake.intake(
        loaded,
        services,
        case_intake.Intake(class_code="06010", lon=x, lat=y),
        now=dt.datetime(2025, 12, 1, 10, tzinfo=TZ),
    )
    with loaded.connect() as conn:
        assert conn.execute(text("SELECT case_no FROM cases WHERE id = :i"), {"i": case_id}).scalar_one() == (
            "2025000105"
        )


def test_an_imported_history_evaluates(loaded: Engine, services: svc.CaseServices, tmp_path: Path) -> None:
    run(loaded, services, write_rows(tmp_path / "history.csv", sample_rows()))
    period = Period.month(2025, 9)
    with loaded.connect() as conn:
        cases, steps = history.read_history(conn, period, history.disposal_limits(services.events, 7.5))
    node_limits = services.events.node_limits
    judged = {"as_of": period.end}  # as the period ended, whatever day the test runs
    region = evaluate(cases, steps, services.calendar, node_limits, period, "region", level="district", **judged)
    row = region.set_index("subject").loc[DISTRICT]
    assert (row["reports"], row["filed"], row["public_filed"], row["dispatched"]) == (4, 3, 1, 3)
    assert (row["to_close"], row["closed"], row["suspended"], row["reworked"]) == (2, 2, 1, 1)
    assert row["closure_rate"] == 1.0
    # 处置: case 101 in 2 working hours (limit 4), case 103 once on time and, after 返工, in 5.75 working hours.
    assert (row["to_dispose"], row["handled"]) == (3, 3)
    assert row["on_time_disposal_rate"] == pytest.approx(2 / 3)
    assert row["on_time_closure_rate"] == 0.5 and row["rework_rate"] == 0.5
    assert row["valid_report_rate"] == 0.75 and row["on_time_verify_rate"] == 1.0

    departments = evaluate(cases, steps, services.calendar, node_limits, period, "department", **judged)
    departments = departments.set_index("subject")
    sanitation = departments.loc["990000000000000003"]
    assert (sanitation["dispatched"], sanitation["to_dispose"], sanitation["closed"]) == (2, 3, 2)
    assert departments.loc["990000000000000012", "suspended"] == 1


# --------------------------------------------------------------------------------------- refusals


REFUSALS = [
    pytest.param(17, {"class_code": "06999"}, 17, "class_code", "06999",
                 "事件类别在 gbt47678 编码标准中不存在 / unknown event class for scheme gbt47678", id="unknown-class"),
    pytest.param(21, {"department_code": "990000000000000999"}, 21, "department_code", "990000000000000999",
                 "部门代码不存在(不在部门名录中) / unknown department code (not in the department catalogue)",
                 id="unknown-department"),
    pytest.param(24, {"at": "2025-09-04T11:30:00"}, 24, "at", "2025-09-04T11:30:00",
                 "时间戳顺序颠倒:早于同一案件第 23 行的时间(2025-09-04T11:45:00+08:00) / timestamp out of order: "
                 "earlier than row 23 (2025-09-04T11:45:00+08:00) of the same case", id="timestamp-out-of-order"),
    pytest.param(26, {"state": "closed"}, 26, "state", "closed",
                 "流转顺序不可能:没有动作能使案件从「处置」(handled)流转到「结案」(closed);"
                 "可能的下一状态:「核查」(checked)、「派遣」(dispatched)、「处置」(handled) / "
                 "impossible transition order: no action takes a case from handled (处置) to closed (结案); "
                 "possible next states: checked (核查), dispatched (派遣), handled (处置)", id="impossible-order"),
    pytest.param(17, {"state": "verified"}, 17, "state", "verified",
                 "案件的第一行须为上报(状态 reported 上报);实为「核实」(verified) / "
                 "the first row of a case must be its report (state reported 上报); got verified (核实)",
                 id="first-row-not-a-report"),
    pytest.param(19, {"role": "department"}, 19, "role", "department",
                 "角色 department(部门处置人员)不能使案件从「上报」(reported)流转到「核实」(verified);可以的角色:"
                 "grid_worker, supervisor / role department (部门处置人员) may not take a case from reported (上报) to "
                 "verified (核实); roles that may: grid_worker, supervisor", id="role-not-allowed"),
    pytest.param(18, {"role": "shift_lead", "action": ""}, 18, "action", "",
                 "有多个动作可使案件从「上报」(reported)流转到「上报」(reported)(角色 shift_lead):"
                 "「发核实」(request_verify)、「提级」(escalate);请填写动作列 / "
                 "several actions take a case from reported (上报) to reported (上报) by shift_lead: "
                 "request_verify (发核实), escalate (提级); give the action column", id="ambiguous-action"),
    pytest.param(21, {"department_code": ""}, 21, "department_code", "",
                 "派遣须填写派往的部门 / a dispatch (派遣) needs the department it went to",
                 id="dispatch-without-department"),
    pytest.param(19, {"at": "09/04/2025 09:40"}, 19, "at", "09/04/2025 09:40",
                 "不是可识别的时间戳:请用 ISO 8601(如 2025-09-01T09:30:00 或 2025-09-01T09:30:00+08:00)或 Excel 的 "
                 "2025/9/1 9:30 / not a timestamp: use ISO 8601 (e.g. 2025-09-01T09:30:00 or "
                 "2025-09-01T09:30:00+08:00) or Excel's 2025/9/1 9:30", id="bad-timestamp"),
    pytest.param(19, {"at": "2025/9/31 9:40"}, 19, "at", "2025/9/31 9:40",
                 "时间不存在(没有这一天或这一时刻) / no such time (no such day or time of day)", id="no-such-day"),
    pytest.param(19, {"at": "2025/9/4"}, 19, "at", "2025/9/4",
                 "只有日期,没有时刻:请同时填写时刻(如 2025-09-01T09:30:00) / a date without a time of day: give the "
                 "time too (e.g. 2025-09-01T09:30:00)", id="excel-date-only"),
    pytest.param(19, {"at": "2025-09-04"}, 19, "at", "2025-09-04",
                 "只有日期,没有时刻:请同时填写时刻(如 2025-09-01T09:30:00) / a date without a time of day: give the "
                 "time too (e.g. 2025-09-01T09:30:00)", id="date-only"),
    pytest.param(19, {"at": "0001-01-01T00:00:00"}, 19, "at", "0001-01-01T00:00:00",
                 "年份 1 不可能出现在案件记录中(是占位值?) / year 1 is not plausible in a case record (a placeholder?)",
                 id="placeholder-timestamp"),
    pytest.param(19, {"role": "巡查员"}, 19, "role", "巡查员",
                 "角色不存在:请用 supervisor, grid_worker, intake, shift_lead, dispatcher, department, leader, "
                 "intake_system 之一(或其中文名称) / unknown role: use one of supervisor, grid_worker, intake, "
                 "shift_lead, dispatcher, department, leader, intake_system", id="unknown-role"),
    pytest.param(27, {"at": "2026-03-01T10:00:00"}, 27, "at", "2026-03-01T10:00:00",
                 "时间在未来(晚于 2026-01-01T00:00:00+08:00):历史记录只能是过去的时间 / in the future (after "
                 "2026-01-01T00:00:00+08:00): a history is past", id="future"),
    pytest.param(19, {"state": "办结"}, 19, "state", "办结",
                 "状态不存在:请用 reported, verified, rejected, voided, filed, dispatched, returned, handled, checked, "
                 "closed, suspended 之一(或其中文名称、缓办) / unknown state: use one of reported, verified, rejected, "
                 "voided, filed, dispatched, returned, handled, checked, closed, suspended "
                 "(or the Chinese labels, 缓办)", id="unknown-state"),
    pytest.param(19, {"action": "办结"}, 19, "action", "办结",
                 "动作不存在:请用 report 或 request_verify, verify, reject, void, file, dispatch, return, handle, "
                 "request_check, check, rework, close, request_extension, approve_extension, deny_extension, suspend, "
                 "resume, supervise, escalate 之一(或其中文名称) / "
                 "unknown action: use report or one of request_verify, verify, reject, void, file, dispatch, return, "
                 "handle, request_check, check, rework, close, "
                 "request_extension, approve_extension, deny_extension, suspend, resume, supervise, escalate",
                 id="unknown-action"),
    pytest.param(17, {"source": "wechat"}, 17, "source", "wechat",
                 "案件来源不存在:请用 patrol, hotline, public_app, sensor, leader / "
                 "unknown source: use patrol, hotline, public_app, sensor, leader", id="unknown-source"),
    pytest.param(17, {"datum": "wgs-1984"}, 17, "datum", "wgs-1984",
                 "坐标系不存在:请用 wgs84, cgcs2000, gcj02, bd09 / unknown datum: use wgs84, cgcs2000, gcj02, bd09",
                 id="unknown-datum"),
    pytest.param(17, {"lon": "113,68"}, 17, "lon", "113,68",
                 "经度无法解析(不是数字) / unparseable longitude (not a number)", id="unparseable-lon"),
    pytest.param(17, {"lon": "0", "lat": "0"}, 17, "coordinates", "0,0",
                 "坐标为 (0, 0):是占位值,不是位置 / coordinates are (0, 0): a placeholder, not a location",
                 id="zero-zero"),
    pytest.param(17, {"lon": "34.745454", "lat": "113.682211"}, 17, "coordinates", "34.745454,113.682211",
                 "经纬度疑似颠倒 / longitude and latitude look swapped", id="swapped"),
    pytest.param(17, {"lon": "116.397", "lat": "39.909"}, 17, "coordinates", "116.397,39.909",
                 "不在已划分网格的范围内(wgs84);请检查坐标系,以及经纬度是否颠倒 / "
                 "outside the gridded coverage (wgs84); check the datum and that lon/lat are not "
                 "swapped", id="outside-coverage"),
    pytest.param(20, {"class_code": "01037"}, 20, "class_code", "01037",
                 "与本案件前面给出的 '06010' 不一致 / conflicts with '06010' given earlier for this case",
                 id="conflicting-class"),
    pytest.param(22, {"lon": "113.69", "lat": "34.745454"}, 22, "coordinates", "113.69,34.745454",
                 "与本案件前面给出的 113.682211,34.745454 不一致 / conflicts with 113.682211,34.745454 given earlier "
                 "for this case", id="conflicting-location"),
    # Free text as refuse_bad_text takes it (review24 #8): the report row's note is the description, its actor the
    # reporter; a later row's note a reason or result.
    pytest.param(17, {"note": "市民来电：\u202e小区门口垃圾堆积"}, 17, "note", "市民来电：\u202e小区门口垃圾堆积",
                 "含有会改变文字显示的控制字符或双向字符 U+202E / "
                 "contains the control or bidirectional character U+202E, which changes how the text is "
                 "shown", id="bidi-in-description"),
    pytest.param(17, {"actor": "12345\u2066热线"}, 17, "actor", "12345\u2066热线",
                 "含有会改变文字显示的控制字符或双向字符 U+2066 / "
                 "contains the control or bidirectional character U+2066, which changes how the text is "
                 "shown", id="bidi-in-reporter"),
    pytest.param(22, {"note": "已清运\x1b[31m红"}, 22, "note", "已清运\x1b[31m红",
                 "含有会改变文字显示的控制字符或双向字符 U+001B / "
                 "contains the control or bidirectional character U+001B, which changes how the text is "
                 "shown", id="escape-in-result"),
    pytest.param(23, {"actor": "监督员\x00王强"}, 23, "actor", "监督员\x00王强",
                 "含有 NUL 字符 / contains a NUL character", id="nul-in-actor"),
]  # fmt: skip


@pytest.mark.parametrize(("line", "values", "row", "field", "value", "reason"), REFUSALS)
def test_a_refused_row_refuses_its_whole_case_and_the_others_import(
    loaded: Engine,
    services: svc.CaseServices,
    tmp_path: Path,
    line: int,
    values: dict[str, str],
    row: int,
    field: str,
    value: str,
    reason: str,
) -> None:
    path = write_rows(tmp_path / "history.csv", changed(line, **values))
    summary = run(loaded, services, path)
    assert (summary.imported_cases, summary.imported_transitions) == (3, 17)
    assert (summary.refused_rows, summary.refused_cases) == (11, 1)
    assert summary.errors_path == path.with_suffix(".errors.csv")
    errors = read_errors(summary.errors_path)
    assert list(errors.columns) == ["row", "case_no", "field", "value", "reason"]
    assert sorted(set(errors["row"])) == REWORKED_LINES and (errors["case_no"] == "2025000103").all()
    own = errors[errors["row"] == row]
    assert own[["field", "value", "reason"]].values.tolist() == [[field, value, reason]]
    others = errors[errors["row"] != row]
    assert len(others) == 10
    zh, en = reason.split(" / ", 1)  # each language's sentence holds the row's reason in that language
    assert (
        others["reason"] == f"整案拒收:第 {row} 行,字段 {field}:{zh} / case refused: row {row}, {field}: {en}"
    ).all()
    assert f"first refusal: row {row} field {field}: {reason}" in summary.to_text()
    # Never half a case: nothing of 2025000103 is stored; the other cases are whole.
    assert stored(loaded).index.tolist() == ["2025000101", "2025000102", "2025000104"]
    assert stored(loaded)["steps"].tolist() == [9, 6, 2]


def test_a_case_number_already_stored_is_refused(loaded: Engine, services: svc.CaseServices, tmp_path: Path) -> None:
    first = write_rows(tmp_path / "first.csv", [r for r in sample_rows() if r["case_no"] == "2025000103"])
    assert run(loaded, services, first).imported_cases == 1
    summary = run(loaded, services, write_rows(tmp_path / "all.csv", sample_rows()))
    assert (summary.imported_cases, summary.refused_rows, summary.refused_cases) == (3, 11, 1)
    errors = read_errors(summary.errors_path)
    assert errors.iloc[0][["row", "field", "value", "reason"]].tolist() == [
        17,
        "case_no",
        "2025000103",
        "案件编号已存在 / case number already stored",
    ]
    assert (
        errors["reason"].iloc[1:]
        == "整案拒收:第 17 行,字段 case_no:案件编号已存在 / case refused: row 17, case_no: case number already stored"
    ).all()
    assert count(loaded, "SELECT count(*) FROM cases") == 4
    assert count(loaded, "SELECT count(*) FROM case_transitions") == 28  # the stored case kept its 11 steps


def test_several_refusals_in_one_file_each_refuse_only_their_case(
    loaded: Engine, services: svc.CaseServices, tmp_path: Path
) -> None:
    rows = sample_rows()
    rows[4 - 2]["state"] = "filed"  # 2025000101: reported → filed skips 核实
    rows[29 - 2]["department_code"] = "NOPE"  # 2025000104: unknown department on its 不予立案 row
    # Rows without a usable case number are refused alone.
    rows.append({**rows[-1], "case_no": "", "state": "closed", "department_code": ""})
    rows.append({**rows[-1], "case_no": "9" * 21})
    summary = run(loaded, services, write_rows(tmp_path / "h.csv", rows))
    assert (summary.rows, summary.cases_read) == (30, 4)
    assert (summary.imported_cases, summary.refused_cases, summary.refused_rows) == (2, 4, 9 + 2 + 1 + 1)
    errors = read_errors(summary.errors_path).set_index("row")
    assert errors.loc[4, "reason"].startswith(
        "流转顺序不可能:没有动作能使案件从「上报」(reported)流转到「立案」(filed)"
    )
    assert " / impossible transition order: no action takes a case from reported" in errors.loc[4, "reason"]
    assert errors.loc[29, ["field", "reason"]].tolist() == [
        "department_code",
        "部门代码不存在(不在部门名录中) / unknown department code (not in the department catalogue)",
    ]
    assert errors.loc[30, ["case_no", "field", "reason"]].tolist() == [
        "",
        "case_no",
        "缺少案件编号 / missing case number",
    ]
    assert errors.loc[31, ["field", "reason"]].tolist() == [
        "case_no",
        "案件编号超过 20 个字符 / case number longer than 20 characters",
    ]
    assert errors.loc[28, "reason"].startswith("整案拒收:第 29 行,字段 department_code:部门代码不存在")
    assert " / case refused: row 29, department_code: unknown department code" in errors.loc[28, "reason"]
    assert stored(loaded).index.tolist() == ["2025000102", "2025000103"]


def test_all_or_nothing_leaves_the_database_unchanged(
    loaded: Engine, services: svc.CaseServices, tmp_path: Path
) -> None:
    path = write_rows(tmp_path / "history.csv", changed(21, department_code="990000000000000999"))
    summary = run(loaded, services, path, all_or_nothing=True)
    assert (summary.imported_cases, summary.written, summary.accepted_cases) == (0, False, 3)
    assert (summary.refused_rows, summary.refused_cases) == (11, 1)
    assert "--all-or-nothing: the file has refusals, nothing written" in summary.to_text()
    assert sorted(set(read_errors(summary.errors_path)["row"])) == REWORKED_LINES
    for table in ("cases", "case_transitions"):
        assert count(loaded, f"SELECT count(*) FROM {table}") == 0
    assert case_number_years(loaded) == []
    # Without refusals all-or-nothing writes everything.
    clean = run(loaded, services, write_rows(tmp_path / "ok.csv", sample_rows()), all_or_nothing=True)
    assert (clean.imported_cases, clean.written) == (4, True)


def test_dry_run_checks_everything_and_writes_nothing(
    loaded: Engine, services: svc.CaseServices, tmp_path: Path
) -> None:
    path = write_rows(tmp_path / "history.csv", changed(26, state="closed"))
    summary = run(loaded, services, path, dry_run=True)
    assert (summary.accepted_cases, summary.accepted_transitions, summary.imported_cases) == (3, 17, 0)
    assert (summary.refused_rows, summary.written) == (11, False)
    assert "dry run: 3 cases (17 transitions) passed every check; nothing written" in summary.to_text()
    assert summary.errors_path is not None and summary.errors_path.exists()  # the refusals are the point of it
    for table in ("cases", "case_transitions"):
        assert count(loaded, f"SELECT count(*) FROM {table}") == 0
    assert case_number_years(loaded) == []


def test_unreadable_files_are_refused_whole(loaded: Engine, services: svc.CaseServices, tmp_path: Path) -> None:
    missing_column = tmp_path / "no-state.csv"
    pd.DataFrame(sample_rows()).drop(columns=["state"]).to_csv(missing_column, index=False)
    with pytest.raises(InvalidInput, match=r"missing column\(s\) state"):
        run(loaded, services, missing_column)
    empty = tmp_path / "empty.csv"
    empty.write_text("case_no,class_code,lon,lat,source,state,at\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="no data rows"):
        run(loaded, services, empty)
    with pytest.raises(InvalidInput, match="file not found"):
        run(loaded, services, tmp_path / "absent.csv")
    assert count(loaded, "SELECT count(*) FROM cases") == 0


# --------------------------------------------------------------------------------------- checks without a database


def test_aliases_labels_extensions_and_deferral(catalogue_services: svc.CaseServices, tmp_path: Path) -> None:
    """Chinese headers and labels are read; 延期批准 needs and keeps the new deadline (which also tells it from
    延期驳回 and 提级 when no action is given); 缓办 is a deferred suspension; case-level fields may be repeated."""
    rows = [
        # 案件编号, 类别代码, 经度, 纬度, 来源, 状态, 角色, 操作人, 部门代码, 时间, 备注, 动作, 新处置时限
        ("C-1", "06010", "113.6746", "34.7454", "12345热线", "上报", "", "", "", "2025-09-02T09:00:00", "", "", ""),
        ("C-1", "06010", "113.6746", "34.7454", "", "核实", "监督员", "张伟", "", "2025-09-02T09:30:00", "", "", ""),
        ("C-1", "", "", "", "", "立案", "值班长", "李", "", "2025-09-02T09:45:00", "", "", ""),
        ("C-1", "", "", "", "", "派遣", "派遣员", "赵", "990000000000000003", "2025-09-02T10:00", "", "", ""),
        ("C-1", "", "", "", "", "派遣", "部门处置人员", "", "", "2025-09-02T10:30", "需协调", "延期申请", ""),
        ("C-1", "", "", "", "", "派遣", "派遣员", "赵", "", "2025-09-02T10:40", "", "", "2025-09-03T12:00:00"),
        ("C-1", "", "", "", "", "缓办", "派遣员", "赵", "", "2025-09-02T11:00", "待季节施工", "", ""),
        ("C-2", "06010", "113.6746", "34.7454", "patrol", "reported", "supervisor", "", "", "2025-09-02T09:00", "",
         "", ""),
        ("C-2", "", "", "", "", "verified", "supervisor", "", "", "2025-09-02T09:10", "", "", ""),
        ("C-2", "", "", "", "", "filed", "shift_lead", "", "", "2025-09-02T09:20", "", "", ""),
        ("C-2", "", "", "", "", "dispatched", "dispatcher", "", "990000000000000003", "2025-09-02T09:30", "", "", ""),
        ("C-2", "", "", "", "", "dispatched", "department", "", "", "2025-09-02T09:40", "", "request_extension", ""),
        ("C-2", "", "", "", "", "dispatched", "dispatcher", "", "", "2025-09-02T09:50", "", "approve_extension", ""),
    ]  # fmt: skip
    header = ["案件编号", "类别代码", "经度", "纬度", "来源", "状态", "角色", "操作人", "部门代码", "时间", "备注",
              "动作", "新处置时限"]  # fmt: skip
    path = tmp_path / "zh.csv"
    pd.DataFrame(rows, columns=header).to_csv(path, index=False, encoding="utf-8-sig")
    raw, notes = read_history_csv(path)
    assert notes == []
    parsed = parse_history(raw, catalogue_services, now=NOW)
    assert parsed.cases["case_no"].tolist() == ["C-1"]
    case = parsed.cases.iloc[0]
    assert (case["state"], case["previous_state"], case["source"]) == ("suspended", "dispatched", "hotline")
    steps = parsed.transitions
    assert steps["action"].tolist() == [
        "report", "verify", "file", "dispatch", "request_extension", "approve_extension", "suspend",
    ]  # fmt: skip
    assert steps["actor"].tolist()[:2] == ["12345热线", "张伟"]
    assert steps["actor"].tolist()[4] == "990000000000000003"  # a department's row without actor: the department
    assert steps["details"][5] == {"new_due_at": "2025-09-03T12:00:00+08:00", "extended_by": "date"}
    assert steps["details"][6] == {"reason": "待季节施工", "kind": "deferred"}
    assert steps["effects"][6] == ["pause_due_clock"]
    errors = parsed.errors.set_index("row")
    assert errors.loc[14, ["field", "reason"]].tolist() == [
        "new_due_at",
        "延期批准须填写新处置时限 / an approved extension (延期批准) needs the new deadline",
    ]
    assert (
        errors.loc[list(range(9, 14)), "reason"]
        == "整案拒收:第 14 行,字段 new_due_at:延期批准须填写新处置时限 / case refused: row 14, new_due_at: an "
        "approved extension (延期批准) needs the new deadline"
    ).all()


def test_excel_s_chinese_windows_times_are_local_times(catalogue_services: svc.CaseServices, tmp_path: Path) -> None:
    """review50 F8: Excel on Chinese Windows saves a time as 2025/9/2 9:00 (month, day and hour without leading
    zeros; seconds when the cell shows them); a hand-typed 2025-9-2 9:00 is the same. Read as local time, as an
    ISO time without an offset: the sample imports as it does with its ISO times."""
    rows = sample_rows()
    for i, row in enumerate(rows):
        t = dt.datetime.fromisoformat(row["at"])
        row["at"] = (
            f"{t.year}/{t.month}/{t.day} {t.hour}:{t.minute:02d}",
            f"{t.year}/{t.month}/{t.day} {t.hour}:{t.minute:02d}:{t.second:02d}",
            f"{t.year}-{t.month}-{t.day} {t.hour}:{t.minute:02d}",
        )[i % 3]
    assert [r["at"] for r in rows[:3]] == ["2025/9/2 9:00", "2025/9/2 9:05:00", "2025-9-2 9:30"]
    excel = parse_history(read_history_csv(write_rows(tmp_path / "excel.csv", rows))[0], catalogue_services, now=NOW)
    iso = parse_history(read_history_csv(SAMPLE)[0], catalogue_services, now=NOW)
    assert excel.errors.empty
    assert excel.transitions["at"].tolist() == iso.transitions["at"].tolist()
    assert excel.transitions["at"].iloc[0] == dt.datetime(2025, 9, 2, 9, 0, tzinfo=TZ)


def test_an_approved_extension_must_move_the_disposal_deadline_later(
    catalogue_services: svc.CaseServices, tmp_path: Path
) -> None:
    """As the live service refuses it: an approval (延期批准) to a time not after the running 处置 deadline —
    the class's 4 working hours from the dispatch, or an earlier approval's — or more than 366 days after it,
    refuses its case at its row; a later one is kept."""
    head = [
        ("06010", "113.6746", "34.7454", "patrol", "上报", "监督员", "2025-09-02T09:00", "", ""),
        ("", "", "", "", "核实", "监督员", "2025-09-02T09:10", "", ""),
        ("", "", "", "", "立案", "值班长", "2025-09-02T09:20", "", ""),
        ("", "", "", "", "派遣", "派遣员", "2025-09-02T10:00", "990000000000000003", ""),
    ]

    def ask(at: str) -> tuple[str, ...]:
        return ("", "", "", "", "派遣", "部门处置人员", at, "", "")

    def approve(at: str, new_due: str) -> tuple[str, ...]:
        return ("", "", "", "", "派遣", "派遣员", at, "", new_due)

    cases = {
        "E-1": [approve("2025-09-02T10:40", "2025-09-02T15:00")],  # due 15:30 (10:00 + 2 h + 2 h after lunch)
        "E-2": [
            approve("2025-09-02T10:40", "2025-09-03T12:00"),
            ask("2025-09-02T10:50"),
            approve("2025-09-02T11:00", "2025-09-03T10:00"),
        ],
        "E-3": [approve("2025-09-02T10:40", "2026-12-01T17:30")],
        "E-4": [
            approve("2025-09-02T10:40", "2025-09-02T15:31"),
            ask("2025-09-02T10:50"),
            approve("2025-09-02T11:00", "2025-09-04T09:00"),
        ],
        "E-5": [  # two refused approvals: the case is refused at the first (review33 S10)
            approve("2025-09-02T10:40", "2025-09-02T15:00"),
            ask("2025-09-02T10:50"),
            approve("2025-09-02T11:00", "2025-09-02T15:10"),
        ],
    }
    rows = [
        (no, *r[:6], r[7], r[6], r[8]) for no, steps in cases.items() for r in [*head, ask("2025-09-02T10:30"), *steps]
    ]
    header = ["案件编号", "类别代码", "经度", "纬度", "来源", "状态", "角色", "部门代码", "时间", "新处置时限"]
    path = tmp_path / "extensions.csv"
    pd.DataFrame(rows, columns=header).to_csv(path, index=False, encoding="utf-8")
    raw, _ = read_history_csv(path)
    parsed = parse_history(raw, catalogue_services, now=NOW)
    assert parsed.cases["case_no"].tolist() == ["E-4"]
    assert parsed.transitions["details"].tolist()[-1] == {
        "new_due_at": "2025-09-04T09:00:00+08:00",
        "extended_by": "date",
    }
    refused = parsed.errors[parsed.errors["field"] != ""].set_index("case_no")
    assert refused.loc["E-1", ["row", "field", "value", "reason"]].tolist() == [
        7,
        "new_due_at",
        "2025-09-02T15:00",
        "延期须使处置时限晚于 2025-09-02 15:30,不能改为 2025-09-02 15:00 / an extension must move the deadline later "
        "than 2025-09-02 15:30, not to 2025-09-02 15:00",
    ]
    assert refused.loc["E-2", ["row", "value", "reason"]].tolist() == [
        15,
        "2025-09-03T10:00",
        "延期须使处置时限晚于 2025-09-03 12:00,不能改为 2025-09-03 10:00 / an extension must move the deadline later "
        "than 2025-09-03 12:00, not to 2025-09-03 10:00",
    ]
    assert refused.loc["E-3", ["row", "value", "reason"]].tolist() == [
        21,
        "2026-12-01T17:30",
        "新处置时限 2026-12-01 超出延期最多可延长的 366 天(更长的等待请挂账) / to 2026-12-01 is more than the 366 "
        "days an extension may add (a longer wait is 挂账)",
    ]
    assert refused.loc["E-5", ["row", "value"]].tolist() == [35, "2025-09-02T15:00"]
    # every row of a refused case says why: the refused row's own reason
    e1 = parsed.errors[parsed.errors["case_no"] == "E-1"]
    assert e1["row"].tolist() == [2, 3, 4, 5, 6, 7]
    assert (
        e1["reason"].iloc[:-1]
        == "整案拒收:第 7 行,字段 new_due_at:延期须使处置时限晚于 2025-09-02 15:30,不能改为 2025-09-02 15:00 / case "
        "refused: row 7, new_due_at: an extension must move the deadline later than 2025-09-02 15:30, not to "
        "2025-09-02 15:00"
    ).all()


def test_a_reopened_duplicate_is_replayed_back_to_intake(catalogue_services: svc.CaseServices, tmp_path: Path) -> None:
    """重新受理 (a merged duplicate back to 上报 when its kept case was voided or rejected), as the service logs it:
    by its action name or label; the case goes on from intake. 作废 → 上报 without that action is refused (a case
    voided as a false report does not come back), and so is a reopen of a case that is not voided."""
    rows = [
        ("C-3", "06010", "113.6746", "34.7454", "patrol", "上报", "监督员", "", "2025-09-02T09:00", "", ""),
        ("C-3", "", "", "", "", "作废", "值班长", "李", "2025-09-02T09:05", "与案件 C-1 重复", ""),
        ("C-3", "", "", "", "", "上报", "值班长", "李", "2025-09-02T10:00", "主案作废，重新受理", "重新受理"),
        ("C-3", "", "", "", "", "核实", "监督员", "张伟", "2025-09-02T10:30", "", ""),
        ("C-4", "06010", "113.6746", "34.7454", "patrol", "reported", "supervisor", "", "2025-09-02T09:00", "", ""),
        ("C-4", "", "", "", "", "voided", "shift_lead", "", "2025-09-02T09:05", "", ""),
        ("C-4", "", "", "", "", "reported", "", "", "2025-09-02T10:00", "", "reopen"),
        ("C-6", "06010", "113.6746", "34.7454", "patrol", "reported", "supervisor", "", "2025-09-02T09:00", "", ""),
        ("C-6", "", "", "", "", "voided", "shift_lead", "", "2025-09-02T09:05", "虚假举报", ""),
        ("C-6", "", "", "", "", "reported", "", "", "2025-09-02T10:00", "", ""),
        ("C-5", "06010", "113.6746", "34.7454", "patrol", "reported", "supervisor", "", "2025-09-02T09:00", "", ""),
        ("C-5", "", "", "", "", "reported", "", "", "2025-09-02T10:00", "", "reopen"),
    ]  # fmt: skip
    header = ["案件编号", "类别代码", "经度", "纬度", "来源", "状态", "角色", "操作人", "时间", "备注", "动作"]
    path = tmp_path / "reopen.csv"
    pd.DataFrame(rows, columns=header).to_csv(path, index=False, encoding="utf-8-sig")
    raw, _ = read_history_csv(path)
    parsed = parse_history(raw, catalogue_services, now=NOW)
    cases = parsed.cases.set_index("case_no")
    assert cases.index.tolist() == ["C-3", "C-4"]
    assert cases.loc["C-3", "state"] == "verified" and cases.loc["C-4", "state"] == "reported"
    assert pd.isna(cases.loc["C-4", "closed_at"])  # reopened: no longer ended
    steps = parsed.transitions
    c3 = steps[steps["case_id"] == steps["case_id"].iloc[0]]
    assert c3["action"].tolist() == ["report", "void", "reopen", "verify"]
    assert c3["to_state"].tolist() == ["reported", "voided", "reported", "verified"]
    assert c3["version"].tolist() == [1, 2, 3, 4]
    reopen = c3.iloc[2]
    assert (reopen["role"], reopen["actor"], reopen["note"]) == ("shift_lead", "李", "主案作废，重新受理")
    assert reopen["details"] == {"kept_state": "voided"}
    assert steps[steps["to_state"] == "reported"]["action"].tolist() == ["report", "reopen", "report", "reopen"]
    c4 = steps[steps["case_id"] == steps["case_id"].iloc[-1]]
    assert c4["role"].tolist()[-1] == workflow.TRANSITIONS["void"].roles[0]  # no role given: who voids
    errors = parsed.errors.set_index("row")
    assert errors.loc[11, ["field", "reason"]].tolist() == [
        "state",
        "流转顺序不可能:案件已是终结状态「作废」(voided) / impossible transition order: the case was already voided "
        "(作废), a final state",
    ]
    assert errors.loc[13, ["field", "reason"]].tolist() == [
        "state",
        "流转顺序不可能:只有已合并(作废)的重复案件才能重新受理,本案件为「上报」(reported) / impossible transition "
        "order: reopen is not allowed in state 'reported' (上报): only a merged (voided) duplicate is reopened",
    ]


def test_workflow_refusals_are_zh_first_then_the_english(catalogue_services: svc.CaseServices, tmp_path: Path) -> None:
    """Review U1: the refusals the workflow makes (role, state, guard, department, an action's end state) say the
    row's reason in zh-CN first, then " / " and the English; the workflow's own "zh / en" state refusal is split,
    each part in its language; the other rows of the case say "整案拒收 … / case refused …" the same way."""
    dept = "990000000000000003"
    head = [("06010", "113.6746", "34.7454", "patrol", "reported", "supervisor", "", "09:00", ""),
            ("", "", "", "", "verified", "supervisor", "", "09:10", ""),
            ("", "", "", "", "filed", "shift_lead", "", "09:20", ""),
            ("", "", "", "", "dispatched", "dispatcher", dept, "09:30", "")]  # fmt: skip
    steps = {
        "W-1": [*head, ("", "", "", "", "dispatched", "supervisor", "", "10:00", "request_extension")],
        "W-2": [*head[:2], ("", "", "", "", "verified", "dispatcher", dept, "09:20", "dispatch")],
        "W-3": [*head, ("", "", "", "", "dispatched", "dispatcher", "", "10:00", "deny_extension")],
        "W-4": [*head, ("", "", "", "", "handled", "department", "", "10:00", "return")],
        "W-5": [*head, ("", "", "", "", "handled", "department", "", "10:00", ""),
                ("", "", "", "", "dispatched", "supervisor", "990000000000000012", "11:00", "rework")],
    }  # fmt: skip
    rows = [(no, *r[:7], f"2025-10-13T{r[7]}", r[8], "原因") for no, rs in steps.items() for r in rs]
    header = ["案件编号", "类别代码", "经度", "纬度", "来源", "状态", "角色", "部门代码", "时间", "动作", "备注"]
    path = tmp_path / "workflow.csv"
    pd.DataFrame(rows, columns=header).to_csv(path, index=False, encoding="utf-8")
    raw, _ = read_history_csv(path)
    parsed = parse_history(raw, catalogue_services, now=NOW)
    assert parsed.cases.empty
    own = parsed.errors[parsed.errors["field"] != ""]
    assert own[["row", "case_no", "field", "reason"]].values.tolist() == [
        [6, "W-1", "role",
         "角色 supervisor(监督员)不能办理「延期申请」(request_extension);可办理的角色:department(部门处置人员) / "
         "request_extension is not allowed for role 'supervisor' (监督员); allowed roles: department (部门处置人员)"],
        [9, "W-2", "state",
         "流转顺序不可能:案件当前为「已核实(待立案)」,不能办理「派遣」"
         "(可办理的状态:已立案(待派遣)、已回退(待重新派遣)) / impossible transition order: "
         "dispatch is not allowed in state 'verified' (核实); allowed from: filed, returned"],
        [14, "W-3", "state",
         "流转顺序不可能:「延期驳回」(deny_extension):没有待审批的延期申请 / impossible transition order: "
         "deny_extension is not allowed in state 'dispatched' (派遣): there is no pending extension request"],
        [19, "W-4", "state",
         "流转顺序不可能:「回退」(return)使案件从「派遣」(dispatched)流转到「回退」(returned),"
         "而不是「处置」(handled) / impossible transition order: return (回退) takes the case from dispatched (派遣) "
         "to returned (回退), not "
         "handled (处置)"],
        [25, "W-5", "department_code",
         "返工须派回原部门 990000000000000003,不能派给 990000000000000012 / rework (返工) goes back to the same "
         "department '990000000000000003', not '990000000000000012'"],
    ]  # fmt: skip
    assert parsed.errors.loc[parsed.errors["row"] == 7, "reason"].tolist() == [
        "整案拒收:第 9 行,字段 state:流转顺序不可能:案件当前为「已核实(待立案)」,不能办理「派遣」"
        "(可办理的状态:已立案(待派遣)、已回退(待重新派遣)) / "
        "case refused: row 9, state: impossible transition order: dispatch is not allowed in state 'verified' (核实); "
        "allowed from: filed, returned"
    ]


def test_checks_scale_to_a_simulated_history(catalogue_services: svc.CaseServices) -> None:
    """A simulated history written out as a CSV reads back through every check unchanged (same actions and states)."""
    from gisgrid.simulate import classes_from_catalogue, node_hours_from_catalogue, simulate, synthetic_cells

    cells = synthetic_cells(streets=2, communities=2, tier3=2)
    sim = simulate(
        cells, list(catalogue_services.departments), classes_from_catalogue(catalogue_services.events),
        days=20, seed=7, start="2025-09-01", rate=0.2,
        node_hours=node_hours_from_catalogue(catalogue_services.events, 7.5),
    )  # fmt: skip
    c = sim.cases.set_index("id")
    t = sim.transitions
    raw = pd.DataFrame(
        {
            "_row": np.arange(2, len(t) + 2),
            "case_no": c.loc[t["case_id"], "case_no"].to_numpy(),
            "class_code": c.loc[t["case_id"], "class_code"].to_numpy(),
            "lon": [f"{v:.7f}" for v in c.loc[t["case_id"], "lon"]],
            "lat": [f"{v:.7f}" for v in c.loc[t["case_id"], "lat"]],
            "source": c.loc[t["case_id"], "source"].to_numpy(),
            "state": t["to_state"].to_numpy(),
            "action": t["action"].to_numpy(),
            "role": t["role"].to_numpy(),
            "actor": t["actor"].to_numpy(),
            "department_code": [
                d if a == "dispatch" else "" for a, d in zip(t["action"], t["department_code"], strict=True)
            ],
            "at": [ts.isoformat() for ts in t["at"]],
            "new_due_at": [d.get("new_due_at", "") for d in t["details"]],
        }
    ).astype(str)
    for col in ("scheme", "datum", "note", "disposal_type", "external_ref"):
        raw[col] = ""
    parsed = parse_history(raw, catalogue_services, now=NOW)
    assert parsed.errors.empty, parsed.errors.head().to_dict("records")
    assert len(parsed.cases) == len(c) and len(parsed.transitions) == len(t)
    assert parsed.transitions["action"].tolist() == t["action"].tolist()
    assert parsed.cases["state"].tolist() == c["state"].tolist()
    assert parsed.cases["rework_count"].tolist() == c["rework_count"].tolist()


# --------------------------------------------------------------------------------------- the command


def test_import_history_from_the_command_line_then_evaluate(loaded: Engine, settings: Settings, tmp_path: Path) -> None:
    env = {"GISGRID_DATABASE_URL": settings.database_url or "", "GISGRID_DATA_DIR": str(tmp_path / "d")}
    bad = write_rows(tmp_path / "bad.csv", changed(24, at="2025-09-04T11:30:00"))
    dry = runner.invoke(app, ["cases", "import-history", str(bad), "--dry-run"], env=env)
    assert dry.exit_code == 3, dry.output  # some cases refused, the others would be imported
    assert "read 28 rows (4 cases): imported 0 cases (0 transitions), refused 11 rows (1 cases)" in dry.output
    assert f"refusals written to {tmp_path / 'bad.errors.csv'}" in dry.output
    assert count(loaded, "SELECT count(*) FROM cases") == 0

    strict = runner.invoke(app, ["cases", "import-history", str(bad), "--all-or-nothing"], env=env)
    assert strict.exit_code == 1 and "nothing written" in strict.output
    assert count(loaded, "SELECT count(*) FROM cases") == 0

    errors = tmp_path / "out" / "refused.csv"
    partial = runner.invoke(app, ["cases", "import-history", str(bad), "--errors", str(errors)], env=env)
    assert partial.exit_code == 3, partial.output  # some cases refused, the others imported
    assert "imported 3 cases (17 transitions), refused 11 rows (1 cases)" in partial.output
    assert len(read_errors(errors)) == 11

    # Everything refused (all four numbers are stored now but 2025000103): a non-zero exit.
    again = write_rows(tmp_path / "again.csv", [r for r in sample_rows() if r["case_no"] != "2025000103"])
    refused = runner.invoke(app, ["cases", "import-history", str(again)], env=env)
    assert refused.exit_code == 1
    assert "imported 0 cases (0 transitions), refused 17 rows (3 cases)" in refused.output

    unreadable = tmp_path / "notes.csv"
    unreadable.write_text("note\nhello\n", encoding="utf-8")
    r = runner.invoke(app, ["cases", "import-history", str(unreadable)], env=env)
    assert r.exit_code != 0 and "missing column(s) case_no" in str(r.exception)

    rest = write_rows(tmp_path / "rest.csv", [r for r in sample_rows() if r["case_no"] == "2025000103"])
    ok = runner.invoke(app, ["cases", "import-history", str(rest)], env=env)
    assert ok.exit_code == 0 and "imported 1 cases (11 transitions), refused 0 rows (0 cases)" in ok.output

    out = tmp_path / "district.csv"
    ev = runner.invoke(
        app, ["evaluate", "--period", "2025-09", "--subject", "region", "--level", "district", "--out", str(out)],
        env=env,
    )  # fmt: skip
    assert ev.exit_code == 0, ev.output
    table = pd.read_csv(out, encoding="utf-8-sig", dtype={"subject": str}).set_index("subject")
    assert table.loc[DISTRICT, ["reports", "filed", "to_close", "closed", "to_dispose"]].tolist() == [4, 3, 2, 2, 3]
    assert table.loc[DISTRICT, "on_time_disposal_rate"] == pytest.approx(2 / 3)
    assert table.loc[DISTRICT, "on_time_closure_rate"] == 0.5


def test_a_case_number_with_a_bidi_control_refuses_its_rows(
    catalogue_services: svc.CaseServices, tmp_path: Path
) -> None:
    """Review24 #8: a case number is kept as given, so it is free text too; each row of the case names it."""
    bad = "2025\u202e000104"
    rows = [{**r, "case_no": bad} if r["case_no"] == "2025000104" else r for r in sample_rows()]
    raw, _ = read_history_csv(write_rows(tmp_path / "h.csv", rows))
    parsed = parse_history(raw, catalogue_services, now=NOW)
    why = (
        "含有会改变文字显示的控制字符或双向字符 U+202E / contains the control or bidirectional character U+202E, which "
        "changes how the text is shown"
    )
    assert parsed.errors.values.tolist() == [[28, bad, "case_no", bad, why], [29, bad, "case_no", bad, why]]
    assert parsed.cases["case_no"].tolist() == SAMPLE_NUMBERS[:3]


def test_an_imported_open_case_runs_the_clock_its_steps_left_it(
    loaded: Engine, services: svc.CaseServices, tmp_path: Path
) -> None:
    """An open case's running node starts at the step that opened it, as the live service leaves it — not at its
    last step: a 督办 or 延期申请 opens nothing, 发核实 re-opens 核实, an approved 延期 is the 处置 deadline, and a
    挂账 … 恢复 carries the working time used and left over the suspension. 暴露垃圾 (06010): 处置 4 working
    hours; 核实 1; Monday 2025-10-13 is a working day."""
    dept = "990000000000000003"
    head = [("06010", "113.6746", "34.7454", "patrol", "reported", "supervisor", "", "", "09:00", "", "", ""),
            ("", "", "", "", "verified", "supervisor", "", "", "09:10", "", "", ""),
            ("", "", "", "", "filed", "shift_lead", "", "", "09:20", "", "", ""),
            ("", "", "", "", "dispatched", "dispatcher", "", dept, "09:30", "", "", "")]  # fmt: skip
    steps = {
        "H-1": [*head, ("", "", "", "", "dispatched", "leader", "王", "", "16:00", "超时未处置", "supervise", "")],
        "H-2": [*head, ("", "", "", "", "dispatched", "department", "", "", "10:00", "需协调", "request_extension", ""),
                ("", "", "", "", "dispatched", "dispatcher", "", "", "10:30", "", "approve_extension",
                 "2025-10-15T12:00:00")],
        "H-3": [("06010", "113.6746", "34.7454", "patrol", "reported", "supervisor", "", "", "11:00", "", "", ""),
                ("", "", "", "", "reported", "intake", "", "", "11:50", "", "request_verify", "")],
        "H-4": [*head, ("", "", "", "", "suspended", "dispatcher", "", "", "10:30", "待协调", "suspend", ""),
                ("", "", "", "", "dispatched", "shift_lead", "", "", "2025-10-14T09:30", "", "resume", "")],
        # Still 挂账: the clock as it stood then, resumed by the live service (review28 D1: it had none).
        "H-6": [*head, ("", "", "", "", "suspended", "dispatcher", "", "", "10:30", "待协调", "suspend", "")],
    }  # fmt: skip
    rows = [(no, *r[:8], r[8] if "T" in r[8] else f"2025-10-13T{r[8]}", *r[9:]) for no, rs in steps.items() for r in rs]
    header = ["案件编号", "类别代码", "经度", "纬度", "来源", "状态", "角色", "操作人", "部门代码", "时间", "备注",
              "动作", "新处置时限"]  # fmt: skip
    path = tmp_path / "open.csv"
    pd.DataFrame(rows, columns=header).to_csv(path, index=False, encoding="utf-8-sig")
    summary = run(loaded, services, path)
    assert summary.imported_cases == 5, summary
    with loaded.connect() as conn:
        clocks = {
            r.case_no: (r.node, r.started, r.due)
            for r in conn.execute(
                text(
                    "SELECT case_no, node, to_char(node_started_at AT TIME ZONE 'Asia/Shanghai', 'MM-DD HH24:MI') "
                    "AS started, to_char(due_at AT TIME ZONE 'Asia/Shanghai', 'MM-DD HH24:MI') AS due FROM cases"
                )
            )
        }
    with loaded.connect() as conn:
        disposal = {
            r.case_no: (r.started, r.due)
            for r in conn.execute(
                text(
                    "SELECT case_no, to_char(disposal_started_at AT TIME ZONE 'Asia/Shanghai', 'MM-DD HH24:MI') "
                    "AS started, to_char(disposal_due_at AT TIME ZONE 'Asia/Shanghai', 'MM-DD HH24:MI') AS due "
                    "FROM cases"
                )
            )
        }
    # The 处置 deadline and its 派遣 as a live dispatch stores them (review40 D5: null on every imported case).
    assert disposal == {
        "H-1": ("10-13 09:30", "10-13 15:00"),
        "H-2": ("10-13 09:30", "10-15 12:00"),
        "H-3": (None, None),
        "H-4": ("10-13 09:30", "10-14 14:00"),
        "H-6": ("10-13 09:30", "10-13 15:00"),
    }
    assert clocks == {
        "H-1": ("disposal", "10-13 09:30", "10-13 15:00"),  # 2.5 h before lunch, 1.5 after; not from the 督办
        "H-2": ("disposal", "10-13 09:30", "10-15 12:00"),  # the approved extension
        "H-3": ("verify", "10-13 11:50", "10-13 14:20"),  # from 发核实
        "H-4": ("disposal", "10-14 08:30", "10-14 14:00"),  # 1 h used before 挂账, 3 h left after 恢复
        "H-6": (None, "10-13 09:30", "10-13 15:00"),  # held: no running node, the 处置 clock of the 挂账
    }
    with loaded.connect() as conn:  # the hours each deadline was counted under, written with it (review59 F2)
        counted = dict(conn.execute(text("SELECT case_no, hours_counted FROM cases ORDER BY case_no")).all())
    assert counted == {no: "08:30-12:00,13:30-17:30" for no in ("H-1", "H-2", "H-3", "H-4", "H-6")}
    with loaded.connect() as conn:
        held = conn.execute(text("SELECT id, version, suspended_at FROM cases WHERE case_no = 'H-6'")).one()
    assert held.suspended_at == dt.datetime(2025, 10, 13, 10, 30, tzinfo=TZ)
    resume = case_actions.ActionRequest("resume", "shift_lead", "值班长", held.version)
    case_actions.act(loaded, services, held.id, resume, now=dt.datetime(2025, 10, 14, 9, 30, tzinfo=TZ))
    with loaded.connect() as conn:
        resumed = svc.get_case(
            conn, services, held.id, role="department", now=dt.datetime(2025, 10, 14, 9, 30, tzinfo=TZ)
        )
    assert (resumed["node"], resumed["due_at"], resumed["light"]) == ("disposal", "2025-10-14T14:00:00+08:00", "green")
    assert resumed["disposal_due_at"] == "2025-10-14T14:00:00+08:00"  # carried over the 挂账 like due_at


def test_a_case_keeps_the_sending_systems_number(
    loaded: Engine, services: svc.CaseServices, catalogue_services: svc.CaseServices, tmp_path: Path
) -> None:
    """工单号 (external_ref) is a case's field: kept and stored, refused when two rows disagree, over 64 characters
    or not clean text — the case refused at that row."""
    head = ("06010", "113.6746", "34.7454", "12345热线", "上报", "2025-09-02T09:00")
    rows = [
        ("K-1", *head, "12345-0001"),
        ("K-1", "", "", "", "", "核实", "2025-09-02T09:30", ""),
        ("K-2", *head, "12345-0002"),
        ("K-2", "", "", "", "", "核实", "2025-09-02T09:30", "12345-9999"),
        ("K-3", *head, "x" * 65),
        ("K-4", *head, "a\u202eb"),
        ("K-5", *head, ""),
        ("K-6", *head, "工" * 4 + "x" * 60),  # 64 characters: kept (review33 S9)
    ]
    header = ["案件编号", "类别代码", "经度", "纬度", "来源", "状态", "时间", "工单号"]
    path = tmp_path / "refs.csv"
    pd.DataFrame(rows, columns=header).to_csv(path, index=False, encoding="utf-8")
    raw, _ = read_history_csv(path)
    parsed = parse_history(raw, catalogue_services, now=NOW)
    refs = parsed.cases["external_ref"].astype(object)
    assert dict(zip(parsed.cases["case_no"], refs.where(refs.notna(), None), strict=True)) == {
        "K-1": "12345-0001",
        "K-5": None,
        "K-6": "工" * 4 + "x" * 60,
    }
    refused = parsed.errors[parsed.errors["field"] == "external_ref"].set_index("case_no")
    assert refused.loc["K-2", ["row", "reason"]].tolist() == [
        5,
        "与本案件前面给出的 '12345-0002' 不一致 / conflicts with '12345-0002' given earlier for this case",
    ]
    assert refused.loc["K-3", "reason"] == "超过 64 个字符 / longer than 64 characters"
    assert refused.loc["K-4", "reason"] == (
        "含有会改变文字显示的控制字符或双向字符 U+202E / contains the control or bidirectional character U+202E, which "
        "changes how the text is shown"
    )
    summary = run(loaded, services, path)
    assert summary.imported_cases == 3
    with loaded.connect() as conn:
        stored = dict(conn.execute(text("SELECT case_no, external_ref FROM cases")).all())
    assert stored == {"K-1": "12345-0001", "K-5": None, "K-6": "工" * 4 + "x" * 60}


def test_a_sending_system_s_number_names_one_case_in_an_import_as_at_intake(
    loaded: Engine, services: svc.CaseServices, tmp_path: Path
) -> None:
    """review52 F4: a case whose (source, external_ref) a stored case holds, or an earlier case of the file, is
    refused by its row naming the case holding it; the same number of another source is another number."""
    head = ("06010", "113.6746", "34.7454", "12345热线", "上报", "2025-09-02T09:00")
    header = ["案件编号", "类别代码", "经度", "纬度", "来源", "状态", "时间", "工单号"]
    first = tmp_path / "first.csv"
    pd.DataFrame([("R-1", *head, "12345-0001")], columns=header).to_csv(first, index=False, encoding="utf-8")
    assert run(loaded, services, first).imported_cases == 1
    rows = [
        ("R-2", *head, "12345-0001"),  # stored as R-1's
        ("R-3", *head, "12345-0003"),
        ("R-4", *head, "12345-0003"),  # R-3's, earlier in the file
        ("R-5", "06010", "113.6746", "34.7454", "sensor", "上报", "2025-09-02T09:00", "12345-0003"),  # another source
    ]
    path = tmp_path / "again.csv"
    pd.DataFrame(rows, columns=header).to_csv(path, index=False, encoding="utf-8")
    summary = run(loaded, services, path)
    assert (summary.imported_cases, summary.refused_cases) == (2, 2)
    errors = read_errors(summary.errors_path)
    assert errors[["case_no", "row", "field", "value", "reason"]].values.tolist() == [
        ["R-2", 2, "external_ref", "12345-0001", "来源单号已属案件 R-1 / external_ref is case R-1's already"],
        ["R-4", 4, "external_ref", "12345-0003", "来源单号已属案件 R-3 / external_ref is case R-3's already"],
    ]
    with loaded.connect() as conn:
        stored = conn.execute(text("SELECT case_no, source, external_ref FROM cases ORDER BY case_no")).all()
    assert [tuple(r) for r in stored] == [
        ("R-1", "hotline", "12345-0001"),
        ("R-3", "hotline", "12345-0003"),
        ("R-5", "sensor", "12345-0003"),
    ]


def test_an_imported_extension_granted_to_a_date_keeps_that_date_when_deadlines_are_counted_again(
    loaded: Engine, services: svc.CaseServices, tmp_path: Path
) -> None:
    """A past 延期批准 gave a new deadline (a date, not a length): its log entry says so (``extended_by`` date), so
    recompute-deadlines keeps that date instead of listing the case as not recomputable."""
    from gisgrid.deadlines import recompute_deadlines

    head = {k: "" for k in sample_rows()[0]}
    case = {"case_no": "2025000201", "scheme": "gbt47678", "class_code": "06010", "lon": "113.6746",
            "lat": "34.7454", "datum": "wgs84", "source": "patrol"}  # fmt: skip
    steps = [
        ("reported", "", "supervisor", "", "2025-09-02T09:00:00+08:00", ""),
        ("verified", "", "supervisor", "", "2025-09-02T09:30:00+08:00", ""),
        ("filed", "", "shift_lead", "", "2025-09-02T09:45:00+08:00", ""),
        ("dispatched", "", "dispatcher", "990000000000000003", "2025-09-02T10:00:00+08:00", ""),
        ("dispatched", "request_extension", "department", "", "2025-09-02T10:30:00+08:00", ""),
        ("dispatched", "approve_extension", "dispatcher", "", "2025-09-02T10:40:00+08:00", "2025-09-19T16:00:00"),
    ]
    rows = [
        head
        | (case if k == 0 else {"case_no": case["case_no"]})
        | {"state": state, "action": action, "role": role, "department_code": dept, "at": at, "new_due_at": due}
        for k, (state, action, role, dept, at, due) in enumerate(steps)
    ]
    summary = run(loaded, services, write_rows(tmp_path / "extended.csv", rows))
    assert (summary.refused_rows, summary.written) == (0, True)
    with loaded.connect() as conn:
        details, due = conn.execute(
            text(
                "SELECT t.details, c.due_at FROM case_transitions t JOIN cases c ON c.id = t.case_id "
                "WHERE c.case_no = '2025000201' AND t.action = 'approve_extension'"
            )
        ).one()
    assert details == {"new_due_at": "2025-09-19T16:00:00+08:00", "extended_by": "date"}
    assert due == dt.datetime(2025, 9, 19, 16, tzinfo=TZ)
    report = recompute_deadlines(loaded, services, year=2025, now=NOW)
    assert [o.case_no for o in report.not_recomputable] == []
    assert report.changed == []
