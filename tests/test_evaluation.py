"""Evaluation (gisgrid.evaluation): every indicator on a small hand-computed history, 挂账/缓办, holidays, ranking.

Pure: the history is built through the real state machine (gisgrid.workflow), so states, effects and details are
the ones the cases service would log. Times are Asia/Shanghai; working hours 08:30–12:00, 13:30–17:30.
"""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pandas as pd
import pytest

from api.routers.evaluation import Subject
from gisgrid import workflow
from gisgrid.calendar import WorkingCalendar
from gisgrid.errors import InvalidInput
from gisgrid.evaluation import (
    EVALUATED,
    RULES_FILE,
    Period,
    WorkClock,
    evaluate,
    evaluate_departments,
    evaluate_posts,
    evaluate_regions,
    grade,
    judge_case,
    load_evaluation_rules,
    months_between,
    prepare,
    rank,
)
from gisgrid.evaluation_service import parse_period, table_title
from gisgrid.workflow import UNNAMED_ACTOR

TZ = "Asia/Shanghai"
CAL = WorkingCalendar()
LIMITS = {"accept": 0.25, "verify": 1.0, "file": 0.5, "dispatch": 0.5, "check": 2.0, "close": 1.0}
D1, D2, D3 = "990000000000000001", "990000000000000002", "990000000000000003"
MARCH = Period.month(2025, 3)


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=TZ)


class History:
    """Cases and their transition log, each action applied through workflow.apply."""

    def __init__(self) -> None:
        self.cases: list[dict[str, Any]] = []
        self.rows: list[dict[str, Any]] = []
        self.state: dict[int, workflow.CaseState] = {}

    def report(self, cid: int, at: str, *, source: str, actor: str, tier3: str, grid: str, limit_h: float) -> None:
        role = "supervisor" if source == "patrol" else source
        self.cases.append(
            {
                "id": cid,
                "case_no": f"2025{cid:06d}",
                "class_code": "06010",
                "source": source,
                "unit_grid_code": grid,
                "tier3_code": tier3,
                "community_code": tier3[:12],
                "street_code": tier3[:9],
                "district_code": tier3[:6],
                "created_at": ts(at),
                "disposal_limit_h": limit_h,
            }
        )
        self.state[cid] = workflow.CaseState()
        self.rows.append(
            {"case_id": cid, "action": "report", "from_state": None, "to_state": "reported", "actor": actor,
             "role": role, "at": ts(at), "department_code": None, "details": {"source": source}, "effects": []}
        )  # fmt: skip

    def act(self, cid: int, action: str, at: str, actor: str, role: str, **payload: Any) -> None:
        case = self.state[cid]
        payload = {"reason": "说明", "result": "已处置", "after_photo": ["a.jpg"], **payload}
        tr = workflow.apply(case, action, role, payload=payload, expected_version=case.version)
        self.state[cid] = tr.case
        self.rows.append(
            {"case_id": cid, "action": action, "from_state": tr.from_state, "to_state": tr.to_state, "actor": actor,
             "role": role, "at": ts(at), "department_code": tr.case.department, "details": dict(tr.details),
             "effects": list(tr.effects)}
        )  # fmt: skip

    def reopen(self, cid: int, at: str, actor: str, role: str, kept_state: str) -> None:
        """A merged duplicate back to 上报, logged as the cases service logs it: by whoever ended the kept case."""
        tr = workflow.reopen_duplicate(self.state[cid], kept_state)
        self.state[cid] = tr.case
        self.rows.append(
            {"case_id": cid, "action": "reopen", "from_state": tr.from_state, "to_state": tr.to_state, "actor": actor,
             "role": role, "at": ts(at), "department_code": None, "details": dict(tr.details), "effects": []}
        )  # fmt: skip

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        cases = pd.DataFrame(self.cases)
        cases["state"] = [self.state[i].state for i in cases["id"]]
        t = pd.DataFrame(self.rows)
        t.insert(0, "id", np.arange(1, len(t) + 1))
        return cases, t


def march_history(*, with_april: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:  # noqa: PLR0915
    """Seven March cases in two tier-3 grids (T1 = …01, T2 = …02) and one February case."""
    t1, t2 = "41990100100101", "41990100100102"
    h = History()
    # 1 — T1, patrol S1, D1: every node on time.
    h.report(1, "2025-03-03 09:00", source="patrol", actor="S1", tier3=t1, grid="G1", limit_h=4)
    h.act(1, "request_verify", "2025-03-03 09:10", "I1", "intake")
    h.act(1, "verify", "2025-03-03 09:40", "S1", "supervisor")
    h.act(1, "file", "2025-03-03 10:00", "L1", "shift_lead")
    h.act(1, "dispatch", "2025-03-03 10:20", "P1", "dispatcher", department=D1)
    h.act(1, "handle", "2025-03-03 14:00", D1, "department")  # 2h10 of working time ≤ 4 h
    h.act(1, "request_check", "2025-03-03 14:05", "I1", "intake")
    h.act(1, "check", "2025-03-03 15:00", "S1", "supervisor")
    h.act(1, "close", "2025-03-03 15:30", "L1", "shift_lead")
    # 2 — T1, hotline at night, D1: late 核实 and 派遣, 返工, second disposal late, late 发核查 and 结案.
    h.report(2, "2025-03-04 20:00", source="hotline", actor="12345", tier3=t1, grid="G1", limit_h=4)
    h.act(2, "request_verify", "2025-03-05 08:40", "I2", "intake")  # night does not count: 10 min
    h.act(2, "verify", "2025-03-05 10:40", "S1", "supervisor")  # 2 h > 1 h
    h.act(2, "file", "2025-03-05 10:50", "L1", "shift_lead")
    h.act(2, "dispatch", "2025-03-05 11:50", "P1", "dispatcher", department=D1)  # 1 h > 0.5 h
    h.act(2, "handle", "2025-03-05 15:00", D1, "department")  # 1h40 ≤ 4 h
    h.act(2, "request_check", "2025-03-05 15:10", "I1", "intake")
    h.act(2, "rework", "2025-03-05 16:00", "S2", "supervisor")  # closes the check node on time
    h.act(2, "handle", "2025-03-06 16:00", D1, "department")  # 7.5 h > 4 h
    h.act(2, "request_check", "2025-03-06 16:25", "I2", "intake")  # 25 min > 15 min
    h.act(2, "check", "2025-03-06 16:30", "S2", "supervisor")
    h.act(2, "close", "2025-03-07 09:00", "L2", "shift_lead")  # 1.5 h > 1 h
    # 3 — T1, patrol S2: first sent to D2 (回退), re-dispatched to D1, 延期 approved, on time within the extension.
    h.report(3, "2025-03-10 09:00", source="patrol", actor="S2", tier3=t1, grid="G2", limit_h=4)
    h.act(3, "request_verify", "2025-03-10 09:05", "I1", "intake")
    h.act(3, "verify", "2025-03-10 09:30", "S2", "supervisor")
    h.act(3, "file", "2025-03-10 09:40", "L1", "shift_lead")
    h.act(3, "dispatch", "2025-03-10 09:50", "P2", "dispatcher", department=D2)
    h.act(3, "return", "2025-03-10 10:30", D2, "department")
    h.act(3, "dispatch", "2025-03-10 10:40", "P1", "dispatcher", department=D1)
    h.act(3, "request_extension", "2025-03-10 11:00", D1, "department")
    h.act(3, "approve_extension", "2025-03-10 11:10", "P1", "dispatcher", new_due_at="2025-03-11T17:30:00+08:00")
    h.act(3, "handle", "2025-03-11 16:00", D1, "department")  # 11h20 > 4 h but ≤ 12h50 allowed
    h.act(3, "request_check", "2025-03-11 16:10", "I2", "intake")
    h.act(3, "check", "2025-03-11 16:30", "S2", "supervisor")
    h.act(3, "close", "2025-03-11 17:00", "L2", "shift_lead")
    # 4 — T2, hotline, D2: 挂账 on 03-13 (resumed in April only).
    h.report(4, "2025-03-12 10:00", source="hotline", actor="12345", tier3=t2, grid="G4", limit_h=8)
    h.act(4, "request_verify", "2025-03-12 10:10", "I1", "intake")
    h.act(4, "verify", "2025-03-12 10:40", "S3", "supervisor")
    h.act(4, "file", "2025-03-12 11:00", "L1", "shift_lead")
    h.act(4, "dispatch", "2025-03-12 11:10", "P2", "dispatcher", department=D2)
    h.act(4, "suspend", "2025-03-13 10:00", "P2", "dispatcher", reason="挂账：需专项资金")
    # 5 — T2, patrol S3: voided after filing (duplicate).
    h.report(5, "2025-03-14 09:00", source="patrol", actor="S3", tier3=t2, grid="G4", limit_h=4)
    h.act(5, "request_verify", "2025-03-14 09:10", "I2", "intake")
    h.act(5, "verify", "2025-03-14 09:20", "S3", "supervisor")
    h.act(5, "file", "2025-03-14 09:30", "L2", "shift_lead")
    h.act(5, "void", "2025-03-14 09:45", "L2", "shift_lead", reason="重复上报")
    # 6 — T2, patrol S3: rejected at intake.
    h.report(6, "2025-03-17 09:00", source="patrol", actor="S3", tier3=t2, grid="G5", limit_h=4)
    h.act(6, "reject", "2025-03-17 09:20", "I1", "intake", reason="不属于立案范围")
    # 7 — T2, patrol S3, D2: dispatched on the last day, overdue and open at the period end.
    h.report(7, "2025-03-31 09:00", source="patrol", actor="S3", tier3=t2, grid="G6", limit_h=4)
    h.act(7, "request_verify", "2025-03-31 09:05", "I2", "intake")
    h.act(7, "verify", "2025-03-31 09:30", "S3", "supervisor")
    h.act(7, "file", "2025-03-31 09:40", "L1", "shift_lead")
    h.act(7, "dispatch", "2025-03-31 09:50", "P1", "dispatcher", department=D2)
    h.act(7, "supervise", "2025-03-31 11:00", "K1", "leader", flagged=True)  # 重点督办 → a 督办单 to D2
    # 8 — February, T1: outside the period (it only adds unit grid G3 to T1's size).
    h.report(8, "2025-02-27 09:00", source="patrol", actor="S1", tier3=t1, grid="G3", limit_h=4)
    h.act(8, "request_verify", "2025-02-27 09:10", "I1", "intake")
    if with_april:
        h.act(4, "resume", "2025-04-02 10:00", "L1", "shift_lead")
        h.act(4, "handle", "2025-04-02 11:00", D2, "department")  # 7h20 net of the 挂账 ≤ 8 h
        h.act(4, "request_check", "2025-04-02 11:05", "I1", "intake")
        h.act(4, "check", "2025-04-02 11:30", "S3", "supervisor")
        h.act(4, "close", "2025-04-02 11:40", "L1", "shift_lead")
    return h.frames()


@pytest.fixture(scope="module")
def march() -> Any:
    cases, transitions = march_history()
    return prepare(cases, transitions, CAL, LIMITS, MARCH, as_of=MARCH.end)


def row(df: pd.DataFrame, subject: str) -> pd.Series:
    return df.set_index("subject").loc[subject]


def close(a: Any, b: float) -> bool:
    # Scores are rounded to 6 decimals; every other value is exact.
    return (isinstance(a, float) and math.isnan(a) and math.isnan(b)) or abs(float(a) - b) < 1e-6


# --------------------------------------------------------------------------------------- regions


def test_regions_every_indicator_by_hand(march: Any) -> None:
    df = evaluate_regions(march, "tier3")
    expected = {
        "41990100100101": {
            "reports": 3, "valid_reports": 3, "valid_report_rate": 1.0, "filed": 3, "filing_rate": 1.0,
            "public_filed": 1, "public_report_rate": 1 / 3, "on_time_verify_rate": 2 / 3, "on_time_check_rate": 1.0,
            "on_time_dispatch_rate": 0.75, "dispatched": 3, "accurate_dispatch_rate": 2 / 3, "to_dispose": 4,
            "handled": 4, "on_time_disposal_rate": 0.75, "overdue_disposals": 1, "to_close": 3, "closed": 3,
            "closure_rate": 1.0, "on_time_closure_rate": 2 / 3, "reworked": 1, "rework_rate": 1 / 3, "extended": 1,
            "supervised": 0, "suspended": 0, "deferred": 0, "unit_grids": 3, "filed_per_grid_month": 1.0,
            "filed_score": 75.0,
            # 75×.10 + (1−1/3)×100×.20 + 100×.30 + (2/3)×100×.25 + (1−1/3)×100×.15
            "score": 77.5,
        },
        "41990100100102": {
            "reports": 4, "valid_reports": 2, "valid_report_rate": 0.5, "filed": 3, "filing_rate": 0.75,
            "public_filed": 1, "public_report_rate": 1 / 3, "on_time_verify_rate": 1.0,
            "on_time_check_rate": float("nan"), "on_time_dispatch_rate": 1.0, "dispatched": 2,
            "accurate_dispatch_rate": 1.0, "to_dispose": 1, "handled": 0, "on_time_disposal_rate": 0.0,
            "overdue_disposals": 1, "to_close": 1, "closed": 0, "closure_rate": 0.0, "on_time_closure_rate": 0.0,
            "reworked": 0, "rework_rate": 0.0, "extended": 0, "supervised": 1, "suspended": 1, "deferred": 0,
            "unit_grids": 3, "filed_per_grid_month": 1.0, "filed_score": 75.0,
            "score": 7.5 + 200 / 15 + 15.0,  # 75×.10 + (1−1/3)×100×.20 + 0 + 0 + 100×.15
        },
    }  # fmt: skip
    for subject, values in expected.items():
        got = row(df, subject)
        for col, value in values.items():
            assert close(got[col], value), (subject, col, got[col], value)
    assert row(df, "41990100100101")["grade"] == "B"
    assert row(df, "41990100100102")["grade"] == "E"
    assert (df["level"] == "tier3").all()


def test_region_levels_aggregate_the_same_cases(march: Any) -> None:
    district = evaluate_regions(march, "district")
    assert district["subject"].tolist() == ["419901"]
    d = district.iloc[0]
    assert (d["reports"], d["filed"], d["to_close"], d["closed"], d["to_dispose"]) == (7, 6, 4, 3, 5)
    grids = evaluate_regions(march, "unit_grid")
    assert sorted(grids["subject"]) == ["G1", "G2", "G4", "G5", "G6"]
    assert grids["reports"].sum() == 7
    street = evaluate_regions(march, "street")
    assert street.iloc[0]["reports"] == 7 and street.iloc[0]["level"] == "street"
    with pytest.raises(InvalidInput):
        evaluate_regions(march, "province")


def test_a_region_no_stored_grid_carries_is_sized_by_its_cases(march: Any) -> None:
    """review21 #3: T2 was deleted by a tier regroup (its grids now carry another code) but its finished cases keep
    T2: it falls back to its cases' unit grids (G4, G5, G6) instead of losing 立案数分值 and the 10 % weight."""
    t1, t2 = "41990100100101", "41990100100102"
    cells = pd.DataFrame(
        {"code": ["G1", "G2", "G3", "G4", "G5", "G6", "G7"], "tier3_code": [t1] * 4 + ["41990100100103"] * 3}
    )
    df = evaluate_regions(march, "tier3", cells=cells)
    got = {s: tuple(row(df, s)[["unit_grids", "unit_grids_from", "filed_score", "weight_present"]]) for s in (t1, t2)}
    assert got == {t1: (4, "stored", 90.0, 1.0), t2: (3, "cases", 75.0, 1.0)}
    assert close(row(df, t2)["filed_per_grid_month"], 1.0)
    assert close(row(df, t2)["score"], 7.5 + 200 / 15 + 15.0)  # as graded by hand above, the full weight
    # Without stored grids every region is sized by its cases; a level the cells lack is still refused.
    bare = evaluate_regions(march, "tier3")
    assert bare["unit_grids_from"].tolist() == ["cases", "cases"]
    assert bare["unit_grids"].tolist() == [3, 3]
    with pytest.raises(InvalidInput, match="cells: missing column 'community_code'"):
        evaluate_regions(march, "community", cells=cells)


def test_suspended_case_leaves_the_denominators_until_resumed() -> None:
    """挂账 at as_of: out of 应结案数 and of 按期处置; resumed and closed later: back in, net of the paused time."""
    cases, transitions = march_history(with_april=True)
    at_end = evaluate_regions(prepare(cases, transitions, CAL, LIMITS, MARCH, as_of=MARCH.end), "tier3")
    t2 = row(at_end, "41990100100102")
    assert (t2["suspended"], t2["to_close"], t2["to_dispose"]) == (1, 1, 1)
    later = prepare(cases, transitions, CAL, LIMITS, MARCH, as_of="2025-04-10")
    t2 = row(evaluate_regions(later, "tier3"), "41990100100102")
    assert (t2["suspended"], t2["to_close"], t2["closed"]) == (0, 2, 1)
    assert (t2["to_dispose"], t2["handled"]) == (2, 1)
    assert close(t2["on_time_disposal_rate"], 0.5)  # case 4: 7h20 of working time without the 挂账 ≤ 8 h
    node = later.nodes[(later.nodes["case_id"] == 4) & (later.nodes["node"] == "disposal")].iloc[0]
    assert close(node["elapsed_h"], 7 + 1 / 3) and bool(node["on_time"])


def test_period_membership_is_by_report_time(march: Any) -> None:
    assert sorted(march.cases["id"]) == [1, 2, 3, 4, 5, 6, 7]
    cases, transitions = march_history()
    feb = prepare(cases, transitions, CAL, LIMITS, Period.month(2025, 2), as_of=MARCH.start)
    assert feb.cases["id"].tolist() == [8]


# --------------------------------------------------------------------------------------- departments and posts


def test_departments_by_hand(march: Any) -> None:
    df = evaluate_departments(march)
    d1, d2 = row(df, D1), row(df, D2)
    for col, value in {
        "dispatched": 3, "returned": 0, "filed": 3, "filed_score": 100.0, "to_dispose": 4, "handled": 4,
        "on_time_disposal_rate": 0.75, "overdue_disposals": 1, "to_close": 3, "closed": 3, "closure_rate": 1.0,
        "on_time_closure_rate": 2 / 3, "reworked": 1, "rework_rate": 1 / 3, "extended": 1, "supervised": 0,
        "suspended": 0,
        "score": 10 + 30 + 22.5 + 20,  # 100×.10 + 100×.30 + 75×.30 + (1−1/3)×100×.30
    }.items():  # fmt: skip
        assert close(d1[col], value), (col, d1[col], value)
    for col, value in {
        "dispatched": 3, "returned": 1, "filed": 2, "to_dispose": 1, "handled": 0, "on_time_disposal_rate": 0.0,
        "overdue_disposals": 1, "supervised": 1, "to_close": 1, "closed": 0, "closure_rate": 0.0, "reworked": 0,
        "rework_rate": 0.0, "suspended": 1,
        "score": 40.0,
    }.items():  # fmt: skip
        assert close(d2[col], value), (col, d2[col], value)
    assert (d1["grade"], d2["grade"]) == ("B", "D")


def test_supervisors_by_hand(march: Any) -> None:
    df = evaluate_posts(march, "supervisor")
    s1, s2, s3 = row(df, "S1"), row(df, "S2"), row(df, "S3")
    assert (s1["reports"], s1["valid_reports"], s1["area"]) == (1, 1, "41990100100101")
    assert close(s1["on_time_verify_rate"], 0.5) and close(s1["on_time_check_rate"], 1.0)
    assert (s1["area_filed"], s1["missed_reports"]) == (3, 1) and close(s1["missed_report_rate"], 1 / 3)
    # 有效上报率×40% + (1−漏报率)×20% + 按时核实率×20% + 按时核查率×20%
    assert close(s1["score"], 40 + 40 / 3 + 10 + 20)
    assert close(s2["score"], 40 + 40 / 3 + 20 + 20) and s2["grade"] == "A"
    assert (s3["reports"], s3["valid_reports"]) == (3, 1) and math.isnan(s3["on_time_check_rate"])
    # No 核查 node: the other weights are renormalised (÷ 0.8).
    assert close(s3["score"], (40 / 3 + 40 / 3 + 20) / 0.8) and s3["grade"] == "D"


def test_areas_can_be_given(march: Any) -> None:
    areas = pd.DataFrame({"actor": ["S1", "S1"], "tier3_code": ["41990100100101", "41990100100102"]})
    s1 = row(evaluate_posts(march, "supervisor", areas=areas), "S1")
    assert (s1["area_filed"], s1["missed_reports"]) == (6, 2)


def test_intake_shift_lead_dispatcher_by_hand(march: Any) -> None:
    intake = evaluate_posts(march, "intake")
    i1, i2 = row(intake, "I1"), row(intake, "I2")
    assert (i1["accepted"], i2["accepted"]) == (4, 3)  # I1 also rejected case 6
    assert i1["accepted_score"] == 0.0  # ≤ 100 a month
    assert close(i1["on_time_issue_verify_rate"], 1.0) and close(i1["on_time_issue_check_rate"], 1.0)
    assert close(i2["on_time_issue_check_rate"], 0.5)
    assert close(i1["score"], 75.0) and close(i2["score"], 57.5)

    leads = evaluate_posts(march, "shift_lead")
    l1, l2 = row(leads, "L1"), row(leads, "L2")
    assert (l1["filed"], l1["voided"], l2["filed"], l2["voided"]) == (5, 0, 1, 1)
    assert close(l1["accurate_filing_rate"], 1.0) and close(l2["accurate_filing_rate"], 0.0)
    assert close(l2["on_time_closing_rate"], 0.5)
    assert close(l1["score"], 100.0) and close(l2["score"], 42.5)

    disp = evaluate_posts(march, "dispatcher")
    p1, p2 = row(disp, "P1"), row(disp, "P2")
    assert (p1["dispatches"], p2["dispatches"], p1["first_dispatches"], p2["first_dispatches"]) == (4, 2, 3, 2)
    assert close(p1["on_time_dispatch_rate"], 0.75) and close(p2["on_time_dispatch_rate"], 1.0)
    assert close(p1["accurate_dispatch_rate"], 1.0) and close(p2["accurate_dispatch_rate"], 0.5)
    assert close(p1["score"], 70.0) and close(p2["score"], 60.0)
    assert (p1["grade"], p2["grade"]) == ("C", "C")
    with pytest.raises(InvalidInput):
        evaluate_posts(march, "leader")


def test_evaluate_one_call_matches_the_steps() -> None:
    cases, transitions = march_history()
    one = evaluate(cases, transitions, CAL, LIMITS, MARCH, "department", as_of=MARCH.end)
    steps = evaluate_departments(prepare(cases, transitions, CAL, LIMITS, MARCH, as_of=MARCH.end))
    pd.testing.assert_frame_equal(one, steps)


def returned_history() -> tuple[pd.DataFrame, pd.DataFrame]:
    """One hotline case: D3 returns it (回退), D1 handles it on time; S9 verifies and checks but reports nothing."""
    h = History()
    h.report(21, "2025-03-03 09:00", source="hotline", actor="12345", tier3="41990100100101", grid="G1", limit_h=4)
    h.act(21, "request_verify", "2025-03-03 09:05", "I1", "intake")
    h.act(21, "verify", "2025-03-03 09:30", "S9", "supervisor")
    h.act(21, "file", "2025-03-03 09:40", "L1", "shift_lead")
    h.act(21, "dispatch", "2025-03-03 09:50", "P1", "dispatcher", department=D3)
    h.act(21, "return", "2025-03-03 10:00", D3, "department")
    h.act(21, "dispatch", "2025-03-03 10:10", "P1", "dispatcher", department=D1)
    h.act(21, "handle", "2025-03-03 11:00", D1, "department")
    h.act(21, "request_check", "2025-03-03 11:05", "I1", "intake")
    h.act(21, "check", "2025-03-03 11:30", "S9", "supervisor")
    h.act(21, "close", "2025-03-03 11:40", "L1", "shift_lead")
    return h.frames()


def test_a_department_that_only_returned_cases_is_not_graded() -> None:
    """review17 item 1: with every rate empty only 立案数分值 is left (0 立案 → 100); 10 % of the weight is below
    the rules' 50 %, so D3 gets no score, grade 不参评 and no rank, listed after the ranked D1 with the reason."""
    facts = prepare(*returned_history(), CAL, LIMITS, MARCH, as_of=MARCH.end)
    out = rank(evaluate_departments(facts))
    assert out["subject"].tolist() == [D1, D3]
    d1, d3 = out.iloc[0], out.iloc[1]
    assert (d1["to_dispose"], d1["handled"], d1["closed"], d1["rank"], d1["grade"]) == (1, 1, 1, 1, "A")
    assert close(d1["score"], 100.0) and d1["weight_present"] == 1.0 and d1["ungraded_reason"] == ""
    assert (d3["dispatched"], d3["returned"], d3["filed"], d3["to_dispose"], d3["to_close"]) == (1, 1, 0, 0, 0)
    assert d3["filed_score"] == 100.0 and math.isnan(d3["score"]) and pd.isna(d3["rank"])
    assert (d3["grade"], d3["weight_present"]) == ("不参评", 0.1)
    assert d3["ungraded_reason"] == "有值指标权重 10%,低于 50%;无值: 结案率、按期处置率、返工率"


def test_a_supervisor_without_reports_is_not_graded() -> None:
    """S9 verified and checked on time but reported nothing: 按时核实率 and 按时核查率 carry 40 % of the weight."""
    facts = prepare(*returned_history(), CAL, LIMITS, MARCH, as_of=MARCH.end)
    s9 = row(rank(evaluate_posts(facts, "supervisor")), "S9")
    assert (s9["reports"], s9["on_time_verify_rate"], s9["on_time_check_rate"]) == (0, 1.0, 1.0)
    assert math.isnan(s9["score"]) and pd.isna(s9["rank"]) and s9["grade"] == "不参评"
    assert s9["weight_present"] == 0.4
    assert s9["ungraded_reason"] == "有值指标权重 40%,低于 50%;无值: 有效上报率、漏报率"


def test_the_share_of_weight_needed_comes_from_the_rules(tmp_path: Path) -> None:
    rules = load_evaluation_rules()
    assert (rules.min_weight, rules.ungraded) == (0.5, "不参评")
    text = RULES_FILE.read_text(encoding="utf-8").replace("min_weight,,不参评,,,,0.5,", "min_weight,,不参评,,,,0.1,")
    lenient = tmp_path / "lenient.csv"
    lenient.write_text(text, encoding="utf-8")
    facts = prepare(*returned_history(), CAL, LIMITS, MARCH, as_of=MARCH.end)
    d3 = row(evaluate_departments(facts, rules=load_evaluation_rules(lenient)), D3)
    assert (d3["score"], d3["grade"], d3["ungraded_reason"]) == (100.0, "A", "")  # the old behaviour
    last = text.rstrip("\n").rsplit("\n", 1)[1]
    assert last.startswith("min_weight,,不参评,,,,0.1,")
    for line, reason in (
        ("min_weight,,不参评,,,,0,", "a share of the weight above 0 and at most 1 is needed"),
        ("min_weight,,,,,,0.5,", "the grade given below the share (不参评) is needed"),
        ("min_weight", "one min_weight row is needed, found 0"),  # a short row is read, not a crash
        ("", "one min_weight row is needed, found 0"),
    ):
        bad = tmp_path / "bad.csv"
        bad.write_text(text.replace(last, line), encoding="utf-8")
        with pytest.raises(InvalidInput) as err:
            load_evaluation_rules(bad)
        assert reason in " ".join(str(p.get("reason")) for p in err.value.detail["problems"])


# --------------------------------------------------------------------------------------- holidays


def holiday_history() -> tuple[pd.DataFrame, pd.DataFrame]:
    """National Day 2025: 10-01..10-08 off. Tier-3 grid H."""
    h = History()
    grid, t3 = "G9", "41990100200101"

    def upto_dispatch(cid: int, day: str, limit_h: float) -> None:
        h.report(cid, f"{day} 15:00", source="hotline", actor="12345", tier3=t3, grid=grid, limit_h=limit_h)
        h.act(cid, "request_verify", f"{day} 15:05", "I1", "intake")
        h.act(cid, "verify", f"{day} 15:30", "S9", "supervisor")
        h.act(cid, "file", f"{day} 15:40", "L1", "shift_lead")
        h.act(cid, "dispatch", f"{day} 16:00", "P1", "dispatcher", department=D1)

    upto_dispatch(11, "2025-09-30", 7.5)
    h.act(11, "handle", "2025-10-09 12:00", D1, "department")  # 1.5 h + 3.5 h = 5 h: nine days, on time
    upto_dispatch(12, "2025-09-30", 7.5)
    h.act(12, "handle", "2025-10-10 12:00", D1, "department")  # 1.5 + 7.5 + 3.5 = 12.5 h: late
    # A 核实 node over the holiday: 17:00 → 10-09 08:50 is 30 + 20 minutes.
    h.report(13, "2025-09-30 16:55", source="hotline", actor="12345", tier3=t3, grid=grid, limit_h=7.5)
    h.act(13, "request_verify", "2025-09-30 17:00", "I1", "intake")
    h.act(13, "verify", "2025-10-09 08:50", "S9", "supervisor")
    # 挂账 inside a disposal node: exactly at the 3 h limit once the paused time is taken out.
    h.report(14, "2025-10-13 08:40", source="hotline", actor="12345", tier3=t3, grid=grid, limit_h=3)
    h.act(14, "request_verify", "2025-10-13 08:45", "I1", "intake")
    h.act(14, "verify", "2025-10-13 08:50", "S9", "supervisor")
    h.act(14, "file", "2025-10-13 08:55", "L1", "shift_lead")
    h.act(14, "dispatch", "2025-10-13 09:00", "P1", "dispatcher", department=D1)
    h.act(14, "suspend", "2025-10-13 10:00", "P1", "dispatcher", reason="挂账：待协调")
    h.act(14, "resume", "2025-10-15 10:00", "L1", "shift_lead")
    h.act(14, "handle", "2025-10-15 12:00", D1, "department")
    # 缓办 at the period end.
    h.report(15, "2025-10-14 08:40", source="hotline", actor="12345", tier3=t3, grid=grid, limit_h=3)
    h.act(15, "request_verify", "2025-10-14 08:45", "I1", "intake")
    h.act(15, "verify", "2025-10-14 08:50", "S9", "supervisor")
    h.act(15, "file", "2025-10-14 08:55", "L1", "shift_lead")
    h.act(15, "dispatch", "2025-10-14 09:00", "P1", "dispatcher", department=D1)
    h.act(15, "suspend", "2025-10-14 10:00", "P1", "dispatcher", reason="缓办：待冬季过后施工")
    return h.frames()


def test_nodes_spanning_a_holiday_count_working_time_only() -> None:
    cases, transitions = holiday_history()
    facts = prepare(cases, transitions, CAL, LIMITS, Period.between("2025-09-29", "2025-10-20"), as_of="2025-10-20")
    nodes = facts.nodes.set_index(["case_id", "node"])
    assert close(nodes.loc[(11, "disposal"), "elapsed_h"], 5.0) and nodes.loc[(11, "disposal"), "on_time"]
    assert close(nodes.loc[(12, "disposal"), "elapsed_h"], 12.5) and not nodes.loc[(12, "disposal"), "on_time"]
    assert close(nodes.loc[(13, "verify"), "elapsed_h"], 50 / 60) and nodes.loc[(13, "verify"), "on_time"]
    # Suspended Mon 10:00 → Wed 10:00 (15 working hours) is not counted: 18 h − 15 h = 3 h ≤ 3 h, exactly.
    assert close(nodes.loc[(14, "disposal"), "elapsed_h"], 3.0) and nodes.loc[(14, "disposal"), "on_time"]
    region = row(evaluate_regions(facts, "tier3"), "41990100200101")
    assert (region["deferred"], region["suspended"]) == (1, 0)
    assert region["to_close"] == 3  # cases 11, 12 and 14 are filed; 15 is 缓办
    assert close(region["on_time_disposal_rate"], 2 / 3)  # 15's open node is paused, not counted


# --------------------------------------------------------------------------------------- ranking, grades, rules


def test_rank_with_rank_change() -> None:
    now = pd.DataFrame({"subject": ["a", "b", "c", "d", "e"], "score": [90.0, 80.0, 80.0, np.nan, 70.0]})
    before = pd.DataFrame({"subject": ["a", "b", "c", "e"], "score": [70.0, 95.0, 60.0, 80.0]})
    out = rank(now, previous=before)
    assert out["subject"].tolist() == ["a", "b", "c", "e", "d"]
    assert out["rank"].tolist()[:4] == [1, 2, 2, 4] and pd.isna(out["rank"].iloc[4])
    change = dict(zip(out["subject"], out["rank_change"], strict=True))
    assert change["a"] == 2 and change["b"] == -1 and change["c"] == 2 and change["e"] == -2
    assert pd.isna(change["d"])
    assert "rank_change" not in rank(now).columns


def test_rank_of_regions_against_the_previous_month() -> None:
    cases, transitions = march_history()
    feb = evaluate_regions(prepare(cases, transitions, CAL, LIMITS, MARCH.previous(), as_of=MARCH.start), "tier3")
    mar = evaluate_regions(prepare(cases, transitions, CAL, LIMITS, MARCH, as_of=MARCH.end), "tier3")
    out = rank(mar, previous=feb)
    assert out["subject"].tolist() == ["41990100100101", "41990100100102"]
    assert out["rank"].tolist() == [1, 2]
    assert pd.isna(out["rank_change"].iloc[1])  # T2 had no case in February


def test_grade_bands() -> None:
    got = grade([100, 90, 89.99, 75, 74.9, 60, 59.9, 40, 39.9, 0, np.nan]).tolist()
    assert got == ["A", "A", "B", "B", "C", "C", "D", "D", "E", "E", None]


def test_rules_file_weights_sum_to_one_and_bad_files_are_refused(tmp_path: Path) -> None:
    rules = load_evaluation_rules()
    assert set(rules.weights) == {"region", "department", "supervisor", "intake", "shift_lead", "dispatcher"}
    for weights in rules.weights.values():
        assert abs(sum(w.weight for w in weights) - 1.0) < 1e-12
    intake = next(t for t in rules.scores["intake"] if t.output == "accepted_score")
    values = pd.Series([0, 100, 101, 300, 301, 500, 501, 1200, 1201, 2000, 2001, 9999], dtype=float)
    assert intake.apply(values).tolist() == [0, 0, 40, 40, 60, 60, 75, 75, 90, 90, 100, 100]
    bad = tmp_path / "evaluation.csv"
    bad.write_text(
        "kind,subject,key,source,lower,upper,value,note\n"
        "weight,region,closure_rate,,,,0.5,\n"
        "weight,region,no_such_rate,,,,0.5,\n"
        "weight,nobody,closure_rate,,,,1,\n",
        encoding="utf-8",
    )
    with pytest.raises(InvalidInput) as err:
        load_evaluation_rules(bad)
    reasons = " ".join(str(p.get("reason")) for p in err.value.detail["problems"])
    assert "unknown indicator" in reasons and "weights sum to 0.5" in reasons and "one of" in reasons


# --------------------------------------------------------------------------------------- periods and the clock


def test_periods() -> None:
    m = Period.month(2025, 2)
    assert (m.start, m.end, m.label, m.months) == (ts("2025-02-01"), ts("2025-03-01"), "2025-02", 1.0)
    assert Period.month(2025, 1).previous() == Period.month(2024, 12)
    q = Period.quarter(2025, 1)
    assert (q.end, q.label, q.months, q.previous().label) == (ts("2025-04-01"), "2025-Q1", 3.0, "2024-Q4")
    w = Period.week(2025, 1)
    assert (w.start, w.label, w.days) == (ts("2024-12-30"), "2025-W01", 7.0)
    assert w.previous().label == "2024-W52"
    y = Period.year(2025)
    assert (y.months, y.label, y.previous().label) == (12.0, "2025", "2024")
    r = Period.between("2025-03-01", "2025-03-16")
    assert (r.days, r.months, r.previous().start) == (15.0, 15 / 31, ts("2025-02-14"))  # 15 of March's 31 days
    assert Period.containing("2025-05-20 13:00", "quarter").label == "2025-Q2"
    with pytest.raises(InvalidInput):
        Period.between("2025-03-02", "2025-03-01")
    assert parse_period("2026-11..2026-12") == Period.between("2026-11-01", "2027-01-01")  # through December
    assert parse_period("2026-W48..2026-W49") == Period.between("2026-11-23", "2026-12-07")
    assert parse_period("2026-10-01..2026-11-01") == Period.between("2026-10-01", "2026-11-01")  # dates: B excluded
    with pytest.raises(InvalidInput, match="is not a date or time"):
        parse_period("..2026-11-26")
    for start, end in (("", "2025-03-01"), ("2025-03-01", ""), ("", ""), ("march", "2025-03-01")):
        with pytest.raises(InvalidInput, match="is not a date or time"):  # an open or unreadable end
            Period.between(start, end)


def test_months_between_counts_whole_months_and_each_part_by_its_own_month() -> None:
    """review42 D3: one month count for one interval — whole calendar months count 1, a part of a month its share
    of that month's own days (was days / 30 for any range, 1/3/12 for a named month/quarter/year)."""
    assert months_between(ts("2026-10-01"), ts("2027-01-01")) == 3.0
    assert months_between(ts("2026-02-01"), ts("2026-03-01")) == 1.0
    assert months_between(ts("2026-10-16"), ts("2026-11-01")) == 16 / 31
    assert months_between(ts("2026-10-16"), ts("2026-10-17")) == 1 / 31
    assert months_between(ts("2026-02-15"), ts("2026-03-16")) == 14 / 28 + 15 / 31
    assert months_between(ts("2024-01-01"), ts("2025-01-01")) == 12.0
    assert months_between(ts("2026-10-01 12:00"), ts("2026-10-02")) == 0.5 / 31  # time of day counts too
    assert months_between(ts("2026-10-01"), pd.Timestamp("2026-09-30T16:00:00Z")) == 0.0  # the same instant
    by_text = {
        text: parse_period(text).months
        for text in ("2026-Q4", "2026-10..2026-12", "2026-10-01..2027-01-01", "2026-02", "2026-02..2026-02",
                     "2026-02-01..2026-03-01", "2026-W40", "2026-10-16..2026-11-01", "2026")
    }  # fmt: skip
    assert by_text == {
        "2026-Q4": 3.0, "2026-10..2026-12": 3.0, "2026-10-01..2027-01-01": 3.0, "2026-02": 1.0,
        "2026-02..2026-02": 1.0, "2026-02-01..2026-03-01": 1.0, "2026-W40": 3 / 30 + 4 / 31,
        "2026-10-16..2026-11-01": 16 / 31, "2026": 12.0,
    }  # fmt: skip


@pytest.mark.filterwarnings("ignore::gisgrid.calendar.CalendarYearUnknown")  # judged to 2027-01-01
def test_one_interval_gets_one_per_month_score_however_it_is_written() -> None:
    """review42 D3's repro: 153 cases filed for one department in 2026-Q4 are 51 a month (立案数分值 51–100 → 90)
    whether the period is written 2026-Q4, 2026-10..2026-12 or 2026-10-01..2027-01-01 (the dates gave 3.0667
    months, 49.89 a month → 100)."""
    h = History()
    first = ts("2026-10-01 09:00")
    for cid in range(1, 154):
        at = first + pd.Timedelta(hours=14 * (cid - 1))
        assert at < ts("2027-01-01")

        def when(minutes: int, at: pd.Timestamp = at) -> str:
            return str((at + pd.Timedelta(minutes=minutes)).tz_localize(None))

        h.report(cid, when(0), source="patrol", actor="S1", tier3="41990100100101", grid="G1", limit_h=4)
        h.act(cid, "request_verify", when(5), "I1", "intake")
        h.act(cid, "verify", when(10), "S1", "supervisor")
        h.act(cid, "file", when(15), "L1", "shift_lead")
        h.act(cid, "dispatch", when(20), "P1", "dispatcher", department=D1)
    cases, transitions = h.frames()
    got = {}
    for text in ("2026-Q4", "2026-10..2026-12", "2026-10-01..2027-01-01"):
        period = parse_period(text)
        d1 = row(evaluate(cases, transitions, CAL, LIMITS, period, "department", as_of=period.end), D1)
        got[text] = (d1["filed"], d1["filed_per_month"], d1["filed_score"])
    assert got == {text: (153, 51.0, 90.0) for text in got}


def test_work_clock_agrees_with_the_calendar() -> None:
    clock = WorkClock(CAL, date(2025, 9, 20), date(2025, 11, 30))
    rng = np.random.default_rng(7)
    a = (ts("2025-09-21") + pd.to_timedelta(rng.uniform(0, 30 * 24, 300), unit="h")).floor("s")
    b = (a + pd.to_timedelta(rng.uniform(0, 200, 300), unit="h")).floor("s")
    ours = clock.between(a, b)
    theirs = [CAL.working_us_between(x.to_pydatetime(), y.to_pydatetime()) for x, y in zip(a, b, strict=True)]
    assert np.array_equal(ours, np.array(theirs, dtype=float))
    hours = rng.uniform(0.1, 40, 300)
    due = clock.instant(clock.position(a) + np.round(hours * 3.6e9))
    want = [CAL.add_working_time(x.to_pydatetime(), h) for x, h in zip(a, hours, strict=True)]
    assert all(abs((d - w).total_seconds()) < 1e-6 for d, w in zip(due, want, strict=True))


def test_without_as_of_the_library_judges_as_of_now_like_the_cli_and_the_api() -> None:
    """One rule for the default evaluation time (default_as_of): now in the city's zone, to the second — never a
    moment that has not come, even for a running period — for prepare/evaluate as for the CLI and the API
    (resolve_as_of)."""
    from gisgrid.evaluation import default_as_of
    from gisgrid.evaluation_service import resolve_as_of

    cases, transitions = march_history(with_april=True)
    before = pd.Timestamp.now(tz="Asia/Shanghai").floor("s")
    facts = prepare(cases, transitions, CAL, LIMITS, MARCH)
    after = pd.Timestamp.now(tz="Asia/Shanghai")
    assert before <= facts.as_of <= after and str(facts.as_of.tz) == "Asia/Shanghai"
    # Judged now, the case suspended at the end of March is resumed and closed (in April): back in 应结案数.
    t2 = row(evaluate_regions(facts, "tier3"), "41990100100102")
    assert (t2["suspended"], t2["to_close"], t2["closed"]) == (0, 2, 1)
    # An explicit as_of still rules.
    assert prepare(cases, transitions, CAL, LIMITS, MARCH, as_of=MARCH.end).as_of == MARCH.end
    t2 = row(evaluate(cases, transitions, CAL, LIMITS, MARCH, as_of=MARCH.end), "41990100100102")
    assert (t2["suspended"], t2["to_close"]) == (1, 1)

    now = pd.Timestamp("2025-04-10T02:15:30.7Z")
    assert default_as_of(MARCH, now) == pd.Timestamp("2025-04-10T10:15:30+08:00")
    # A running period: now, not its (future) end (review26 D2).
    assert default_as_of(MARCH, "2025-03-20T10:00:00.5") == pd.Timestamp("2025-03-20T10:00:00+08:00")
    assert resolve_as_of(MARCH, now=now) == default_as_of(MARCH, now)


def test_table_titles_name_the_period_and_subject() -> None:
    assert table_title(parse_period("2026-10"), "region", "tier3") == "2026-10 三级网格"
    assert table_title(parse_period("2026-Q3"), "department") == "2026-Q3 专业部门"
    assert table_title(parse_period("2026-10"), "grid_worker") == "2026-10 网格员"
    assert table_title(parse_period("2026-10"), "region", "street") == "2026-10 一级网格(街道)"
    # A range's label holds "/" and ":" (not allowed in a sheet name): its dates instead, within 31 characters.
    title = table_title(parse_period("2026-10-01..2026-11-01"), "region", "tier2")
    assert title == "2026-10-01..2026-11-01 二级网格(社区)"
    assert len(title) <= 31


def test_an_unknown_subject_is_refused_naming_every_choice() -> None:
    cases, transitions = march_history()
    with pytest.raises(InvalidInput) as err:
        evaluate(cases, transitions, CAL, LIMITS, MARCH, "foo", as_of=MARCH.end)
    assert err.value.message == (
        "subject: 'foo' is not one of region, department, supervisor, grid_worker, intake, shift_lead, dispatcher"
    )
    assert err.value.reason == "literal_error" and err.value.detail[0]["field"] == "subject"
    # The API's choices are the same list.
    assert get_args(Subject) == EVALUATED


# --------------------------------------------------------------------------------------- as_of inside the period


def test_an_as_of_inside_the_period_judges_only_what_was_known_then() -> None:
    """review26 D2: a running month "as of now", a past month "as of the 12th": the cases reported before as_of,
    their steps before it; an open node is late only once its time has run out at as_of, else neither."""
    cases, transitions = march_history()
    facts = prepare(cases, transitions, CAL, LIMITS, MARCH, as_of="2025-03-12T10:30")
    assert facts.provisional and sorted(facts.cases["id"]) == [1, 2, 3, 4]  # 5, 6, 7 reported later
    verify = facts.nodes[(facts.nodes["case_id"] == 4) & (facts.nodes["node"] == "verify")].iloc[0]
    # 发核实 at 10:10, 核实 at 10:40 not seen yet: open for 20 minutes of its hour — neither on time nor late.
    assert (bool(verify["closed"]), bool(verify["counted"]), close(verify["elapsed_h"], 1 / 3)) == (False, False, True)
    t2 = row(evaluate_regions(facts, "tier3"), "41990100100102")
    assert (t2["reports"], t2["filed"]) == (1, 0) and math.isnan(t2["on_time_verify_rate"])
    # Case 7, dispatched 03-31 09:50 with 4 working hours: at 15:00 3h40 have run (not late), at 16:00 4h40 (late).
    at_three = row(evaluate(cases, transitions, CAL, LIMITS, MARCH, as_of="2025-03-31T15:00"), "41990100100102")
    assert at_three["to_dispose"] == 0 and math.isnan(at_three["on_time_disposal_rate"])
    at_four = row(evaluate(cases, transitions, CAL, LIMITS, MARCH, as_of="2025-03-31T16:00"), "41990100100102")
    assert (at_four["to_dispose"], at_four["handled"], at_four["on_time_disposal_rate"]) == (1, 0, 0.0)
    table = evaluate(cases, transitions, CAL, LIMITS, MARCH, as_of="2025-03-31T16:00")
    assert (table.attrs["provisional"], table.attrs["as_of"]) == (True, ts("2025-03-31T16:00"))
    assert evaluate(cases, transitions, CAL, LIMITS, MARCH, as_of=MARCH.end).attrs["provisional"] is False
    for early in (MARCH.start, "2025-02-20"):
        with pytest.raises(InvalidInput, match=r"as_of: 2025-0.*is not after the start of 2025-03") as refused:
            prepare(cases, transitions, CAL, LIMITS, MARCH, as_of=early)
        assert refused.value.reason == "as_of_before_period_start"


@pytest.mark.filterwarnings("ignore::gisgrid.calendar.CalendarYearUnknown")
def test_unknown_years_are_those_the_judged_nodes_ran_through() -> None:
    """review26 D3: the years a judged node's working time ran through, not every year the calendar looked at
    (the clock looks two days around the cases; the calendar remembers every year it met for its lifetime)."""
    from gisgrid.calendar import KNOWN_YEARS

    unknown = max(KNOWN_YEARS) + 1
    known = unknown - 1
    cal = WorkingCalendar()
    t3 = "41990100100101"
    h = History()
    h.report(21, f"{known}-12-31 10:00", source="patrol", actor="S1", tier3=t3, grid="G1", limit_h=4)
    h.act(21, "request_verify", f"{known}-12-31 10:05", "I1", "intake")
    h.act(21, "verify", f"{unknown}-01-05 09:00", "S1", "supervisor")  # the node runs into the unknown year
    h.report(22, f"{known}-12-10 10:00", source="patrol", actor="S1", tier3=t3, grid="G1", limit_h=4)
    h.act(22, "request_verify", f"{known}-12-10 10:05", "I1", "intake")
    h.act(22, "verify", f"{known}-12-10 10:20", "S1", "supervisor")
    cases, transitions = h.frames()
    december = Period.month(known, 12)

    def years(as_of: str) -> tuple[int, ...]:
        return evaluate(cases, transitions, cal, LIMITS, december, "supervisor", as_of=as_of).attrs["unknown_years"]

    assert years(f"{unknown}-01-10") == (unknown,)
    assert years(f"{unknown}-01-02") == (unknown,)  # still open, judged into the new year
    assert years(f"{unknown}-01-01") == ()  # judged at the period end: the node ran to midnight, no further
    assert years(f"{known}-12-31T10:10") == ()  # provisional, 5 minutes into the node
    assert unknown in cal.unknown_years  # though the calendar has met the year (the clock's margin)


# --------------------------------------------------------------------------------------- edges (review25)


T1, T2 = "41990100100101", "41990100100102"


def dispatched_to_d1(h: History, cid: int, day: str = "2025-03-03") -> None:
    """A patrol case in T1 with a 4 h disposal limit, dispatched to D1 at 10:20 on ``day``."""
    h.report(cid, f"{day} 09:00", source="patrol", actor="S1", tier3=T1, grid="G1", limit_h=4)
    h.act(cid, "request_verify", f"{day} 09:10", "I1", "intake")
    h.act(cid, "verify", f"{day} 09:40", "S1", "supervisor")
    h.act(cid, "file", f"{day} 10:00", "L1", "shift_lead")
    h.act(cid, "dispatch", f"{day} 10:20", "P1", "dispatcher", department=D1)


def disposal_node(facts: Any, cid: int) -> pd.Series:
    [node] = facts.nodes[(facts.nodes["case_id"] == cid) & (facts.nodes["node"] == "disposal")].to_dict("records")
    return pd.Series(node)


def test_a_return_cancels_the_disposal_node_of_the_department_that_returned() -> None:
    """回退 ends the 处置 node without counting it: a case D1 gave back 10 minutes after its dispatch, still waiting
    for the dispatcher weeks later, is not an overdue 处置 of D1's (review25 E3). The 派遣 node the 回退 reopened is
    the dispatcher's, and late."""
    h = History()
    dispatched_to_d1(h, 1)
    h.act(1, "return", "2025-03-03 10:30", D1, "department", reason="不属于本部门职责")
    facts = prepare(*h.frames(), CAL, LIMITS, MARCH, as_of="2025-04-01")
    assert facts.nodes[facts.nodes["node"] == "disposal"].empty
    d1 = row(evaluate_departments(facts), D1)
    assert (d1["dispatched"], d1["returned"], d1["to_dispose"], d1["handled"]) == (1, 1, 0, 0)
    assert math.isnan(d1["on_time_disposal_rate"])
    t1 = row(evaluate_regions(facts, "tier3"), T1)
    assert (t1["to_dispose"], t1["handled"]) == (0, 0) and math.isnan(t1["on_time_disposal_rate"])
    assert close(t1["on_time_dispatch_rate"], 0.5)  # 20 min on time; open since the 回退 for weeks: late


def test_a_return_after_the_disposal_deadline_keeps_the_node_late_against_the_department() -> None:
    """review40 D1: a department returning (回退) a case it let run past its 处置 time cannot erase the lateness — the
    node is judged up to the 回退 (late, not handled) and counts against it; a 回退 within the time is no node, as
    before. The case's detail shows the node ended by the 回退, late."""
    from gisgrid.evaluation import judge_case

    h = History()
    dispatched_to_d1(h, 1)  # 4 h from 03-03 10:20: due 15:50 that day
    h.act(1, "return", "2025-03-04 09:30", D1, "department", reason="不属于本部门职责")  # 6 h 40 min in
    h.act(1, "dispatch", "2025-03-04 09:40", "P1", "dispatcher", department=D2)
    h.act(1, "handle", "2025-03-04 11:40", D2, "department", result="已清理")  # D2: 2 h, on time
    dispatched_to_d1(h, 2)
    h.act(2, "return", "2025-03-03 15:50", D1, "department", reason="不属于本部门职责")  # exactly at the limit
    cases, transitions = h.frames()
    facts = prepare(cases, transitions, CAL, LIMITS, MARCH, as_of="2025-04-01")
    disposal = facts.nodes[facts.nodes["node"] == "disposal"].sort_values("open_at")
    assert disposal["case_id"].tolist() == [1, 1]  # case 2's node, returned in time, is none
    late, d2_node = disposal.to_dict("records")
    assert (late["open_department"], late["close_action"], late["closed"]) == (D1, "return", False)
    assert (late["counted"], late["on_time"], late["overdue_open"], late["returned_late"]) == (True, False, True, True)
    assert close(late["elapsed_h"], 6 + 40 / 60) and close(late["allowed_h"], 4.0)
    assert (d2_node["open_department"], d2_node["on_time"]) == (D2, True)
    deps = evaluate_departments(facts)
    d1, d2 = row(deps, D1), row(deps, D2)
    cols = ["dispatched", "returned", "to_dispose", "handled", "overdue_disposals"]
    assert d1[cols].tolist() == [2, 2, 1, 0, 1] and d1["on_time_disposal_rate"] == 0.0
    assert d2[cols].tolist() == [1, 0, 1, 1, 0] and d2["on_time_disposal_rate"] == 1.0
    t1 = row(evaluate_regions(facts, "tier3"), T1)
    assert (t1["to_dispose"], t1["handled"], t1["overdue_disposals"]) == (2, 1, 1)

    case = cases[cases["id"] == 1].iloc[0].to_dict()
    nodes = judge_case(case, transitions[transitions["case_id"] == 1], CAL, LIMITS, as_of="2025-04-01")["nodes"]
    shown = [n for n in nodes if n["node"] == "disposal"]
    assert [(n["closed_at"], n["on_time"]) for n in shown] == [
        (ts("2025-03-04 09:30"), False),
        (ts("2025-03-04 11:40"), True),
    ]


@pytest.mark.filterwarnings("ignore::gisgrid.calendar.CalendarYearUnknown")
def test_a_table_warns_of_an_unknown_year_only_when_its_own_nodes_ran_through_it() -> None:
    """review40 D4: a 延期 into a year the calendar does not know stretches that case's 处置 node there; the
    departments' and regions' tables (which read it) say so, the 监督员's, 受理员's, 值班长's and 派遣员's do not —
    once the node counts in a figure (review49 #9): while it is open and not yet due it is in none, and no table
    warns."""
    from gisgrid.calendar import KNOWN_YEARS

    known = max(KNOWN_YEARS)
    unknown = known + 1
    h = History()
    dispatched_to_d1(h, 1, f"{known}-12-01")
    h.act(1, "request_extension", f"{known}-12-01 11:00", D1, "department")
    h.act(
        1, "approve_extension", f"{known}-12-01 11:10", "P1", "dispatcher", new_due_at=f"{unknown}-01-05T17:30:00+08:00"
    )
    december = Period.month(known, 12)
    subjects = ("region", "department", "supervisor", "intake", "shift_lead", "dispatcher")

    def warned(as_of: str) -> dict[str, tuple[int, ...]]:
        cases, transitions = h.frames()
        return {
            subject: evaluate(cases, transitions, CAL, LIMITS, december, subject, as_of=as_of).attrs["unknown_years"]
            for subject in subjects
        }

    assert warned(f"{known}-12-20") == dict.fromkeys(subjects, ())  # open, due in January: in no figure
    h.act(1, "handle", f"{known}-12-21 10:00", D1, "department")  # on time, judged against the January deadline
    assert warned(f"{known}-12-22") == {
        "region": (unknown,),
        "department": (unknown,),
        "supervisor": (),
        "intake": (),
        "shift_lead": (),
        "dispatcher": (),
    }


def test_a_case_returned_and_not_dispatched_again_is_no_departments() -> None:
    """A case D1 returned (回退) waits for the dispatcher: it is not in D1's 立案数, 应结案数 or 挂账数 (it was, with
    结案率 0: D1 graded D for cases it gave back); dispatched again, it is the new department's."""
    h = History()
    dispatched_to_d1(h, 1, "2025-03-03")  # returned, left with the dispatcher
    h.act(1, "return", "2025-03-03 10:30", D1, "department", reason="不属于本部门职责")
    dispatched_to_d1(h, 2, "2025-03-04")  # returned, then 挂账
    h.act(2, "return", "2025-03-04 10:30", D1, "department", reason="不属于本部门职责")
    h.act(2, "suspend", "2025-03-04 11:00", "P1", "dispatcher", reason="挂账：待确认权属")
    dispatched_to_d1(h, 3, "2025-03-05")  # returned, dispatched to D2
    h.act(3, "return", "2025-03-05 10:30", D1, "department", reason="不属于本部门职责")
    h.act(3, "dispatch", "2025-03-05 10:40", "P1", "dispatcher", department=D2)
    facts = prepare(*h.frames(), CAL, LIMITS, MARCH, as_of="2025-04-01")
    final = facts.cases["final_department"]
    assert final[[1, 2]].isna().all() and final[3] == D2
    out = rank(evaluate_departments(facts))
    assert out["subject"].tolist() == [D2, D1]
    d1, d2 = row(out, D1), row(out, D2)
    cols = ["dispatched", "returned", "filed", "to_dispose", "to_close", "closed", "suspended"]
    assert d1[cols].tolist() == [3, 3, 0, 0, 0, 0, 0]
    assert (d1["grade"], d1["weight_present"]) == ("不参评", 0.1) and math.isnan(d1["score"])
    assert d2[cols].tolist() == [1, 0, 1, 1, 1, 0, 0]  # open since 03-05 10:40: an overdue 处置
    assert (d2["closure_rate"], d2["on_time_disposal_rate"], d2["score"], d2["grade"]) == (0.0, 0.0, 40.0, "D")
    # Regions keep every case: 应结案 1 and 3 (2 is 挂账).
    t1 = row(evaluate_regions(facts, "tier3"), T1)
    assert (t1["filed"], t1["to_close"], t1["suspended"]) == (3, 2, 1)


def test_an_overdue_case_suspended_before_the_cut_off_stays_an_overdue_disposal_and_to_close() -> None:
    """挂账 stops the clock, it does not erase lateness (review49 #1, as a late 回退 cannot): case 1, 挂账 a week
    after its 4 h ran out and still suspended at as_of, is one 超期处置 of D1's and stays in 应结案数 (not closed);
    case 2, 挂账 40 minutes into its 4 h, has its clock stopped — neither on time nor late, out of 应结案数."""
    h = History()
    dispatched_to_d1(h, 1)
    h.act(1, "suspend", "2025-03-10 10:00", "L1", "shift_lead", reason="挂账：需专项资金")
    dispatched_to_d1(h, 2, "2025-03-04")
    h.act(2, "suspend", "2025-03-04 11:00", "P1", "dispatcher", reason="挂账：待协调")
    cases, transitions = h.frames()
    facts = prepare(cases, transitions, CAL, LIMITS, MARCH, as_of="2025-04-01")
    late, paused = disposal_node(facts, 1), disposal_node(facts, 2)
    assert (late["closed"], late["counted"], late["overdue_open"], late["on_time"]) == (False, True, True, False)
    # Mon 03-03 10:20 → Mon 03-10 10:00 (5h40 + 4 × 7.5 h + 1.5 h), the 挂账 since not counted: 37h10 > 4 h.
    assert close(late["elapsed_h"], 37 + 1 / 6)
    assert (paused["counted"], paused["overdue_open"]) == (False, False)
    assert close(paused["elapsed_h"], 2 / 3)
    d1 = row(evaluate_departments(facts), D1)
    for col, value in {
        "to_dispose": 1, "handled": 0, "on_time_disposal_rate": 0.0, "overdue_disposals": 1, "suspended": 2,
        "to_close": 1, "closed": 0, "closure_rate": 0.0, "on_time_closure_rate": 0.0,
    }.items():  # fmt: skip
        assert close(d1[col], value), (col, d1[col], value)
    t1 = row(evaluate_regions(facts, "tier3"), T1)
    assert (t1["to_dispose"], t1["overdue_disposals"], t1["suspended"], t1["to_close"], t1["closed"]) == (1, 1, 2, 1, 0)
    # The case detail judges the node the same way: late.
    detail = judge_case(cases.iloc[0], transitions[transitions["case_id"] == 1], CAL, LIMITS, as_of="2025-04-01")
    assert [n["on_time"] for n in detail["nodes"] if n["node"] == "disposal"] == [False]

    # Resumed and still open: the same overdue node, the case no longer 挂账.
    h.act(1, "resume", "2025-04-02 10:00", "L1", "shift_lead")
    cases, transitions = h.frames()
    d1 = row(evaluate(cases, transitions, CAL, LIMITS, MARCH, "department", as_of="2025-04-03"), D1)
    assert (d1["to_dispose"], d1["overdue_disposals"], d1["suspended"], d1["to_close"]) == (1, 1, 1, 1)


def cut_off_history() -> tuple[pd.DataFrame, pd.DataFrame]:
    """S1's four March reports in T1: 1 closed on time; 2 reported Mon 03-31 15:00 and dispatched to D1 at 16:00
    (4 h); 3 reported 03-31 17:20, not yet 受理 (发核实 due in 15 minutes, 核实 in 1 h); 4 不予立案."""
    h = History()
    dispatched_to_d1(h, 1)
    h.act(1, "handle", "2025-03-03 14:00", D1, "department")
    h.act(1, "request_check", "2025-03-03 14:05", "I1", "intake")
    h.act(1, "check", "2025-03-03 15:00", "S1", "supervisor")
    h.act(1, "close", "2025-03-03 15:30", "L1", "shift_lead")
    h.report(2, "2025-03-31 15:00", source="patrol", actor="S1", tier3=T1, grid="G1", limit_h=4)
    h.act(2, "request_verify", "2025-03-31 15:05", "I1", "intake")
    h.act(2, "verify", "2025-03-31 15:30", "S1", "supervisor")
    h.act(2, "file", "2025-03-31 15:45", "L1", "shift_lead")
    h.act(2, "dispatch", "2025-03-31 16:00", "P1", "dispatcher", department=D1)
    h.report(3, "2025-03-31 17:20", source="patrol", actor="S1", tier3=T1, grid="G1", limit_h=4)
    h.report(4, "2025-03-05 09:00", source="patrol", actor="S1", tier3=T1, grid="G1", limit_h=4)
    h.act(4, "reject", "2025-03-05 09:05", "I1", "intake", reason="不属于城管范围")
    return h.frames()


def test_a_case_not_yet_due_at_the_cut_off_is_out_of_to_close_and_a_pending_report_out_of_the_rate() -> None:
    """Judged at the period end (review49 #2): case 2, 1.5 of its 4 h used, could still close on time — out of
    应结案数 as its 处置 node is out of 应处置数 (结案率 1/1, where it was 1/2); case 3, still waiting for 发核实/核实
    in time, is out of 有效上报率's denominator (2/3, where it was 2/4). Half a day later both are overdue: in."""
    cases, transitions = cut_off_history()
    at_end = prepare(cases, transitions, CAL, LIMITS, MARCH, as_of=MARCH.end)
    t1 = row(evaluate_regions(at_end, "tier3"), T1)
    for col, value in {
        "reports": 4, "valid_reports": 2, "pending_reports": 1, "valid_report_rate": 2 / 3, "filed": 2,
        "filing_rate": 2 / 3, "to_dispose": 1, "to_close": 1, "closed": 1, "closure_rate": 1.0,
        "on_time_closure_rate": 1.0,
    }.items():  # fmt: skip
        assert close(t1[col], value), (col, t1[col], value)
    d1 = row(evaluate_departments(at_end), D1)
    assert (d1["filed"], d1["to_dispose"], d1["to_close"], d1["closed"], d1["closure_rate"]) == (2, 1, 1, 1, 1.0)
    s1 = row(evaluate_posts(at_end, "supervisor"), "S1")
    assert (s1["reports"], s1["valid_reports"], s1["pending_reports"]) == (4, 2, 1)
    assert close(s1["valid_report_rate"], 2 / 3)

    # 04-01 12:00: case 2 has used 5 h (> 4 h) and case 3's 发核实 is 3h40 in (> 15 min): both count.
    noon = prepare(cases, transitions, CAL, LIMITS, MARCH, as_of="2025-04-01 12:00")
    t1 = row(evaluate_regions(noon, "tier3"), T1)
    for col, value in {
        "pending_reports": 0, "valid_report_rate": 0.5, "filing_rate": 0.5, "to_dispose": 2, "overdue_disposals": 1,
        "to_close": 2, "closed": 1, "closure_rate": 0.5, "on_time_closure_rate": 0.5,
    }.items():  # fmt: skip
        assert close(t1[col], value), (col, t1[col], value)
    d1 = row(evaluate_departments(noon), D1)
    assert (d1["to_close"], d1["closed"], d1["closure_rate"], d1["overdue_disposals"]) == (2, 1, 0.5, 1)
    s1 = row(evaluate_posts(noon, "supervisor"), "S1")
    assert (s1["reports"], s1["valid_reports"], s1["pending_reports"], s1["valid_report_rate"]) == (4, 2, 0, 0.5)


def test_an_extension_approved_in_the_minute_of_the_disposal_counts() -> None:
    """History imports are per minute: a 延期批准 stamped with the 处置's own minute (logged before it) still moves
    the deadline of the node it closes (review25 E12)."""
    h = History()
    dispatched_to_d1(h, 1)
    h.act(1, "request_extension", "2025-03-04 09:00", D1, "department", amount=3, unit="working_days")
    h.act(1, "approve_extension", "2025-03-05 10:00", "P1", "dispatcher", new_due_at="2025-03-07T17:30:00+08:00")
    h.act(1, "handle", "2025-03-05 10:00", D1, "department")
    facts = prepare(*h.frames(), CAL, LIMITS, MARCH, as_of="2025-04-01")
    node = disposal_node(facts, 1)
    # 03-03 10:20 → 03-05 10:00: 5h40 + 7.5 h + 1.5 h; allowed to 03-07 17:30: 5h40 + 4 × 7.5 h.
    assert close(node["elapsed_h"], 14 + 2 / 3) and close(node["allowed_h"], 35 + 2 / 3)
    assert bool(node["on_time"])
    d1 = row(evaluate_departments(facts), D1)
    assert (d1["to_dispose"], d1["handled"], d1["on_time_disposal_rate"], d1["extended"]) == (1, 1, 1.0, 1)


def test_an_approved_deadline_before_the_limits_end_does_not_shorten_it() -> None:
    """An extension only extends: an approval naming a deadline earlier than the limit's end (the service refuses
    one, deadline_not_later; an imported record may carry it) leaves the 4 h limit (review25 E13)."""
    h = History()
    dispatched_to_d1(h, 1)
    h.act(1, "request_extension", "2025-03-03 10:40", D1, "department", amount=1, unit="working_hours")
    h.act(1, "approve_extension", "2025-03-03 10:50", "P1", "dispatcher", new_due_at="2025-03-03T11:20:00+08:00")
    h.act(1, "handle", "2025-03-03 14:00", D1, "department")  # 1h40 + 30 min ≤ 4 h, long after 11:20
    facts = prepare(*h.frames(), CAL, LIMITS, MARCH, as_of="2025-04-01")
    node = disposal_node(facts, 1)
    assert close(node["elapsed_h"], 2 + 1 / 6) and close(node["allowed_h"], 4.0) and bool(node["on_time"])
    d1 = row(evaluate_departments(facts), D1)
    assert (d1["to_dispose"], d1["handled"], d1["on_time_disposal_rate"]) == (1, 1, 1.0)

    # Nor an earlier extension: a second approval naming 03-04 17:30 leaves the first one's 03-05 17:30.
    h = History()
    dispatched_to_d1(h, 1)
    h.act(1, "request_extension", "2025-03-03 10:40", D1, "department", amount=2, unit="working_days")
    h.act(1, "approve_extension", "2025-03-03 10:50", "P1", "dispatcher", new_due_at="2025-03-05T17:30:00+08:00")
    h.act(1, "request_extension", "2025-03-04 09:00", D1, "department", amount=1, unit="working_days")
    h.act(1, "approve_extension", "2025-03-04 09:10", "P1", "dispatcher", new_due_at="2025-03-04T17:30:00+08:00")
    h.act(1, "handle", "2025-03-05 16:00", D1, "department")  # 5h40 + 7.5 h + 6 h ≤ 5h40 + 2 × 7.5 h
    node = disposal_node(prepare(*h.frames(), CAL, LIMITS, MARCH, as_of="2025-04-01"), 1)
    assert close(node["elapsed_h"], 19 + 1 / 6) and close(node["allowed_h"], 20 + 2 / 3) and bool(node["on_time"])


def test_a_supervisors_area_is_the_grid_of_most_reports_ties_to_the_smaller_code() -> None:
    """Without areas given, each supervisor's area is the tier-3 grid of most of its reports; one report in each of
    two grids is a tie, which goes to the smaller code whichever grid came first (review25 E14)."""
    h = History()
    h.report(1, "2025-03-03 09:00", source="patrol", actor="S1", tier3=T2, grid="G4", limit_h=4)
    h.report(2, "2025-03-04 09:00", source="patrol", actor="S1", tier3=T1, grid="G1", limit_h=4)
    h.report(3, "2025-03-03 09:00", source="patrol", actor="S2", tier3=T1, grid="G1", limit_h=4)
    h.report(4, "2025-03-04 09:00", source="patrol", actor="S2", tier3=T2, grid="G4", limit_h=4)
    h.report(5, "2025-03-05 09:00", source="patrol", actor="S2", tier3=T2, grid="G5", limit_h=4)
    facts = prepare(*h.frames(), CAL, LIMITS, MARCH, as_of="2025-04-01")
    df = evaluate_posts(facts, "supervisor")
    assert dict(zip(df["subject"], df["area"], strict=True)) == {"S1": T1, "S2": T2}


def test_a_case_filed_again_after_its_merge_was_undone_counts_once_for_the_shift_lead() -> None:
    """立案数 counts cases (regions: cases with a 立案; 值班长: the cases the lead filed first). Case 1, filed by L1,
    merged into case 2, reopened when case 2 was voided and filed again by L1, is one case filed and valid: L1 filed
    2 cases, 1 voided — not 3 filings (review25 E15)."""
    h = History()
    h.report(2, "2025-03-03 08:50", source="patrol", actor="S1", tier3=T1, grid="G1", limit_h=4)
    h.act(2, "request_verify", "2025-03-03 08:55", "I1", "intake")
    h.act(2, "verify", "2025-03-03 09:20", "S1", "supervisor")
    h.act(2, "file", "2025-03-03 09:30", "L1", "shift_lead")
    h.report(1, "2025-03-03 09:00", source="patrol", actor="S2", tier3=T1, grid="G1", limit_h=4)
    h.act(1, "request_verify", "2025-03-03 09:10", "I1", "intake")
    h.act(1, "verify", "2025-03-03 09:40", "S2", "supervisor")
    h.act(1, "file", "2025-03-03 10:00", "L1", "shift_lead")
    h.act(1, "void", "2025-03-03 10:10", "L1", "shift_lead", reason="合并至 2")  # merged into case 2
    h.act(2, "void", "2025-03-04 08:50", "L1", "shift_lead", reason="不属于立案范围")
    h.reopen(1, "2025-03-04 08:50", "L1", "shift_lead", "voided")
    h.act(1, "request_verify", "2025-03-04 09:00", "I1", "intake")
    h.act(1, "verify", "2025-03-04 09:30", "S2", "supervisor")
    h.act(1, "file", "2025-03-04 10:00", "L1", "shift_lead")
    facts = prepare(*h.frames(), CAL, LIMITS, MARCH, as_of="2025-04-01")
    l1 = row(evaluate_posts(facts, "shift_lead"), "L1")
    assert (l1["filed"], l1["voided"], l1["accurate_filing_rate"]) == (2, 1, 0.5)
    t1 = row(evaluate_regions(facts, "tier3"), T1)
    assert (t1["reports"], t1["filed"], t1["valid_reports"], t1["to_close"]) == (2, 2, 1, 1)


def test_a_step_or_report_at_the_evaluation_time_itself_is_not_yet_known() -> None:
    """Facts are those strictly before as_of (review25 E20): a 处置 stamped at as_of, and a case reported then, are
    not seen; one second later they are."""
    cases, transitions = march_history()

    def case_1(as_of: str) -> tuple[str, bool, int]:
        facts = prepare(cases, transitions, CAL, LIMITS, MARCH, as_of=as_of)
        t1 = row(evaluate_regions(facts, "tier3"), T1)
        return facts.cases.loc[1, "state_at"], bool(disposal_node(facts, 1)["closed"]), int(t1["handled"])

    assert case_1("2025-03-03T14:00") == ("dispatched", False, 0)  # case 1 is handled at 14:00
    assert case_1("2025-03-03T14:00:01") == ("handled", True, 1)
    reported = {a: sorted(prepare(cases, transitions, CAL, LIMITS, MARCH, as_of=a).cases["id"])
                for a in ("2025-03-10T09:00", "2025-03-10T09:00:01")}  # fmt: skip
    assert reported == {"2025-03-10T09:00": [1, 2], "2025-03-10T09:00:01": [1, 2, 3]}  # case 3 reported at 09:00

    # A handled case judged at the instant of its 处置, after the limit ran out: open and overdue, not handled.
    h = History()
    dispatched_to_d1(h, 1)
    h.act(1, "handle", "2025-04-01 10:00", D1, "department")
    cases, transitions = h.frames()
    at = row(evaluate(cases, transitions, CAL, LIMITS, MARCH, "department", as_of="2025-04-01T10:00"), D1)
    assert (at["to_dispose"], at["handled"], at["on_time_disposal_rate"]) == (1, 0, 0.0)
    after = row(evaluate(cases, transitions, CAL, LIMITS, MARCH, "department", as_of="2025-04-01T10:01"), D1)
    assert (after["to_dispose"], after["handled"], after["on_time_disposal_rate"]) == (1, 1, 0.0)


def test_posts_without_a_named_actor_are_not_ranked() -> None:
    """review44 U4: a report sent without X-Actor (logged 'anonymous') was ranked first among the real 监督员."""
    h = History()
    for cid, supervisor in ((41, UNNAMED_ACTOR), (42, "S1"), (43, UNNAMED_ACTOR)):
        h.report(
            cid, "2025-03-03 09:00", source="patrol", actor=supervisor, tier3="41990100100101", grid="G1", limit_h=4
        )
        h.act(cid, "request_verify", "2025-03-03 09:05", "I1" if cid == 42 else UNNAMED_ACTOR, "intake")
        h.act(cid, "verify", "2025-03-03 09:30" if cid != 42 else "2025-03-03 11:30", supervisor, "supervisor")
    cases, transitions = h.frames()
    table = rank(evaluate(cases, transitions, CAL, LIMITS, MARCH, "supervisor", as_of=MARCH.end))
    got = table[["subject", "reports", "valid_reports", "on_time_verify_rate", "rank"]].to_dict("records")
    assert got == [
        {"subject": "S1", "reports": 1, "valid_reports": 0, "on_time_verify_rate": 0.0, "rank": 1},
    ]
    intake = evaluate(cases, transitions, CAL, LIMITS, MARCH, "intake", as_of=MARCH.end)
    assert list(intake["subject"]) == ["I1"]
