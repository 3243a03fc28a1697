"""Risk analytics (gisgrid.risks): detection of planted anomalies in simulated histories (precision and recall
over several seeds), no alarms on clean histories, and each measure on small hand-made data (pure)."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest

from gisgrid import risks
from gisgrid.calendar import WorkingCalendar
from gisgrid.events import load_event_catalogue
from gisgrid.settings import Settings
from gisgrid.simulate import Simulation, classes_from_catalogue, node_hours_from_catalogue, simulate, synthetic_cells

CAL = WorkingCalendar()
EVENTS = load_event_catalogue(Settings())
HARD = EVENTS.hard_classes
SEEDS = (1, 2, 3)
TZ = "Asia/Shanghai"


@cache
def cells() -> pd.DataFrame:
    return synthetic_cells(streets=8, communities=3, tier3=4)  # 96 tier-3 grids, 1920 unit grids


@cache
def history(seed: int, planted: bool = True) -> Simulation:
    classes = classes_from_catalogue(EVENTS)
    c = cells()
    rng = np.random.default_rng(1000 + seed)
    tier3 = rng.permutation(sorted(c["tier3_code"].unique()))
    plant = {
        "selective": list(tier3[:8]),
        "overload": list(tier3[8:14]),
        "escalation": list(rng.choice(sorted(c["street_code"].unique()), 2, replace=False)),
        "paper_closure": list(rng.choice(c["code"].to_numpy(), 30, replace=False)),
    }
    deps = sorted(set(classes["department"]))
    return simulate(c, deps, classes, days=365, seed=seed, start="2025-01-01", plant=plant if planted else None,
                    rate=0.08, node_hours=node_hours_from_catalogue(EVENTS, 7.5))  # fmt: skip


def run(kind: str, sim: Simulation) -> pd.DataFrame:
    if kind == "selective":
        return risks.selective_reporting(
            sim.cases, hard_classes=HARD, components=sim.components, adjacency=risks.adjacency(cells(), "tier3")
        )
    if kind == "overload":
        return risks.grid_overload(sim.cases, sim.transitions, sim.staff)
    if kind == "escalation":
        return risks.escalation_pileup(sim.cases, sim.transitions, CAL)
    return risks.paper_closure(sim.cases)


@pytest.mark.parametrize("kind", ["selective", "overload", "escalation", "paper_closure"])
def test_planted_anomalies_are_found(kind: str) -> None:
    lines = []
    for seed in SEEDS:
        sim = history(seed)
        result = run(kind, sim)
        precision, recall = risks.precision_recall(result, sim.truth[kind])
        lines.append(f"{kind} seed {seed}: precision {precision:.2f} recall {recall:.2f} "
                     f"({int(result['flagged'].sum())} flagged, {len(sim.truth[kind])} planted)")  # fmt: skip
        assert precision >= 0.9 and recall >= 0.9, lines[-1]
    print("\n" + "\n".join(lines))


def test_clean_history_raises_no_alarm() -> None:
    sim = history(4, planted=False)
    for kind in ("selective", "overload", "escalation", "paper_closure"):
        result = run(kind, sim)
        assert not result["flagged"].any(), (kind, result[result["flagged"]].head())


def test_output_shape_and_chinese_first_explanations() -> None:
    sim = history(1)
    for kind in ("selective", "overload", "escalation", "paper_closure"):
        result = run(kind, sim)
        assert list(result.columns[:5]) == ["subject", "level", "score", "flagged", "explanation"]
        assert result["score"].between(0, 1).all() and result["subject"].is_unique
        assert result["score"].is_monotonic_decreasing
        top = result.iloc[0]
        assert "\u4e00" <= top["explanation"][0] <= "\u9fff" and " | " in top["explanation"]
    top = run("selective", sim).iloc[0]
    assert top["explanation"].startswith("选择性上报嫌疑") and "难点类别" in top["explanation"]


# --------------------------------------------------------------------------------------- hand-made data


def case_frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    df.insert(0, "id", np.arange(1, len(df) + 1))
    for col in ("created_at", "closed_at"):
        if col in df:
            df[col] = pd.to_datetime(df[col]).dt.tz_localize(TZ)
    return df


def test_paper_closure_radius_window_and_class() -> None:
    lon0, lat0 = 113.70, 34.75
    m = 1 / 110_540  # one metre of latitude

    def c(grid: str, cls: str, created: str, closed: str | None, north_m: float = 0.0) -> dict:
        return {"unit_grid_code": grid, "class_code": cls, "state": "closed" if closed else "dispatched",
                "created_at": created, "closed_at": closed, "lon": lon0, "lat": lat0 + north_m * m}  # fmt: skip

    rows = [
        # grid A: 5 closed cases at one spot, each re-reported 2 days after closure, 20 m away, same class
        *[c("A", "06010", f"2025-03-{d:02d} 09:00", f"2025-03-{d + 1:02d} 09:00") for d in range(1, 11, 2)],
        *[c("A", "06010", f"2025-03-{d + 3:02d} 09:00", None, north_m=20) for d in range(1, 11, 2)],
        # grid B: re-reports that do not count — another class, 80 m away, or 20 days later
        c("B", "06010", "2025-03-01 09:00", "2025-03-02 09:00", north_m=1000),
        c("B", "06012", "2025-03-04 09:00", None, north_m=1000),
        c("B", "06010", "2025-03-04 09:00", None, north_m=1080),
        c("B", "06010", "2025-03-22 09:00", None, north_m=1000),
    ]
    grids = [c(f"N{i:03d}", "06010", "2025-03-01 09:00", "2025-03-02 09:00", north_m=3000 + 200 * i)
             for i in range(200)]  # fmt: skip
    result = risks.paper_closure(case_frame(rows + grids)).set_index("subject")
    a, b = result.loc["A"], result.loc["B"]
    assert (a["closed"], a["rereported"], b["closed"], b["rereported"]) == (5, 5, 1, 0)
    assert a["flagged"] and a["score"] == 1.0 and not b["flagged"]
    assert "纸面结案嫌疑" in a["explanation"] and "5件" in a["explanation"]
    assert result["flagged"].sum() == 1
    by_department = risks.paper_closure(case_frame(rows + grids).assign(department_code="D1"), level="department_code")
    assert by_department.iloc[0]["rereported"] == 5


def test_selective_reporting_on_hand_counts() -> None:
    rows = []
    for area in range(12):
        code = f"41990100100{area + 1:03d}"
        patrol = 40 if area == 0 else 200  # area 0: the patrol reports a fifth of what others do, no hard class
        hard = 0 if area == 0 else 30
        rows += [{"tier3_code": code, "source": "patrol", "class_code": "06001"}] * hard
        rows += [{"tier3_code": code, "source": "patrol", "class_code": "06010"}] * (patrol - hard)
        rows += [{"tier3_code": code, "source": "hotline", "class_code": "06010"}] * 160
    result = risks.selective_reporting(pd.DataFrame(rows).assign(scheme="gbt47678"), hard_classes=HARD)
    result = result.set_index("subject")
    bad = result.loc["41990100100001"]
    assert bad["flagged"] and bad["rel_public"] == pytest.approx(0.2, abs=0.005) and bad["rel_hard"] == 0.0
    assert bad["signal_public"] == pytest.approx(1.0, abs=1e-3) and bad["signal_hard"] == 1.0
    assert result["flagged"].sum() == 1


def test_hard_classes_count_in_either_scheme() -> None:
    """review42 D2: the same mix coded in CJ/T 214 (私搭乱建 0101) gives the same hard signal as in GB/T 47678 (06001);
    the hard classes are the catalogue's (its ``hard`` column), matched on scheme and code."""
    rows = []
    for scheme, hard_code, soft_code in (("gbt47678", "06001", "06010"), ("cjt214", "0101", "0102")):
        t3 = f"{scheme}-t3"
        for i in range(40):
            code = hard_code if i % 4 == 0 else soft_code
            rows.append({"source": "patrol", "scheme": scheme, "class_code": code, "tier3_code": t3})
        rows += [{"source": "hotline", "scheme": scheme, "class_code": soft_code, "tier3_code": t3}] * 20
    out = risks.selective_reporting(pd.DataFrame(rows).assign(district_code="419901"), hard_classes=HARD)
    out = out.set_index("subject")
    gb, cj = out.loc["gbt47678-t3"], out.loc["cjt214-t3"]
    assert (gb["hard_patrol"], cj["hard_patrol"]) == (10.0, 10.0)
    assert (gb["signal_hard"], cj["signal_hard"]) == (0.0, 0.0)
    assert (gb["rel_hard"], cj["rel_hard"]) == (1.0, 1.0)
    assert gb.drop("explanation").equals(cj.drop("explanation"))
    assert "难点类别（私搭乱建、非法占绿毁绿、无证掘路等）" in gb["explanation"]
    # Matched on (scheme, code): a CJ/T row coded 06001 (a GB code) is not a hard report.
    odd = pd.DataFrame(rows).assign(district_code="419901")
    odd.loc[(odd["scheme"] == "cjt214") & (odd["class_code"] == "0101"), "class_code"] = "06001"
    again = risks.selective_reporting(odd, hard_classes=HARD).set_index("subject")
    assert again.loc["cjt214-t3", "hard_patrol"] == 0.0


def test_adjacency_of_tier3_grids() -> None:
    pairs = risks.adjacency(synthetic_cells(streets=2, communities=1, tier3=2), "tier3")
    got = {tuple(p) for p in pairs[["a", "b"]].to_numpy()}
    # Two streets stacked, each a row of two tier-3 blocks: all four touch (the diagonal ones at a corner).
    assert got == {
        ("41990100100101", "41990100100102"),
        ("41990100200101", "41990100200102"),
        ("41990100100101", "41990100200101"),
        ("41990100100102", "41990100200102"),
        ("41990100100101", "41990100200102"),
        ("41990100100102", "41990100200101"),
    }


def test_overload_counts_its_window_in_the_evaluations_months() -> None:
    """review42 D3: one month count everywhere — February is one month, a quarter three (was days / 30.4375:
    0.92 and 2.96), and a window under a day counts a day's share of its month."""
    cases = case_frame([{"tier3_code": "T1", "created_at": "2025-02-03 09:00"}])
    t = pd.DataFrame(
        {"case_id": cases["id"], "action": ["report"], "role": ["supervisor"],
         "at": [pd.Timestamp("2025-02-03 10:00", tz=TZ)], "department_code": [None]}
    )  # fmt: skip
    staff = pd.DataFrame({"tier3_code": ["T1"], "staff": [1]})

    def months(start: str, end: str) -> float:
        return float(
            risks.grid_overload(cases, t, staff, start=start, end=end).set_index("subject").loc["T1", "months"]
        )

    assert months("2025-02-01", "2025-03-01") == 1.0
    assert months("2025-01-01", "2025-04-01") == 3.0
    assert months("2025-02-03 10:00", "2025-02-03 10:00:01") == 1 / 28


def test_overload_per_staff_member() -> None:
    cases = case_frame(
        [{"tier3_code": "T1", "created_at": "2025-03-03 09:00"}] * 10
        + [{"tier3_code": "T2", "created_at": "2025-03-03 09:00"}] * 10
    )
    t = pd.DataFrame(
        {
            "case_id": np.repeat(cases["id"].to_numpy(), 3),
            "action": ["report", "verify", "dispatch"] * 20,
            "role": ["supervisor", "supervisor", "dispatcher"] * 20,
            "at": pd.Timestamp("2025-03-03 10:00", tz=TZ),
            "department_code": [None, None, "D1"] * 20,
        }
    )
    staff = pd.DataFrame({"tier3_code": ["T1", "T2"], "staff": [1, 4]})
    result = risks.grid_overload(cases, t, staff, start="2025-03-01", end="2025-03-31", capacity=10,
                                 department_capacity=5).set_index("subject")  # fmt: skip
    months = 30 / 31  # 30 of March's 31 days, as the evaluation counts a period's months (review42 D3)
    assert result.loc["T1", "months"] == months
    assert result.loc["T1", "tasks_per_staff_month"] == pytest.approx(20 / months)
    assert result.loc["T2", "tasks_per_staff_month"] == pytest.approx(5 / months)
    assert result.loc["T1", "flagged"] and not result.loc["T2", "flagged"]
    assert result.loc["T1", "score"] == 1.0 and result.loc["T2", "score"] == 0.0


def test_escalation_wait_in_working_hours() -> None:
    cases = case_frame([{"street_code": s} for s in ["S1"] * 20 + ["S2"] * 20 + ["S3"] * 20])
    rows = []
    for cid, street in zip(cases["id"], cases["street_code"], strict=True):
        rows.append((cid, "file", "verified", "filed", "2025-03-03 09:00", {}))
        escalated = street == "S1" or cid in (21, 41)
        if escalated:
            rows.append((cid, "escalate", "filed", "filed", "2025-03-03 09:30", {"from_level": 3, "to_level": 2}))
            rows.append((cid, "escalate", "filed", "filed", "2025-03-03 10:00", {"from_level": 2, "to_level": 1}))
        # S1 waits until Tuesday 10:00 (7.5 working hours); the others one hour.
        leave = "2025-03-04 10:00" if street == "S1" else "2025-03-03 11:00"
        rows.append((cid, "dispatch", "filed", "dispatched", leave, {"department": "D1"}))
    t = pd.DataFrame(rows, columns=["case_id", "action", "from_state", "to_state", "at", "details"])
    t["at"] = pd.to_datetime(t["at"]).dt.tz_localize(TZ)
    result = risks.escalation_pileup(cases, t, CAL, min_escalated=1).set_index("subject")
    s1 = result.loc["S1"]
    assert (s1["filed"], s1["escalated_to_tier1"], s1["share"]) == (20, 20, 1.0)
    assert s1["median_wait_h"] == pytest.approx(7.5) and s1["flagged"]
    assert result.loc["S2", "median_wait_h"] == pytest.approx(1.0) and not result.loc["S2", "flagged"]
    without_details = risks.escalation_pileup(cases, t.drop(columns="details"), CAL, min_escalated=1)
    assert without_details.set_index("subject").loc["S1", "escalated_to_tier1"] == 20


def test_poisson_tail_is_exact() -> None:
    from math import exp, factorial

    k, lam = np.array([0, 1, 3, 5]), np.array([0.5, 0.5, 0.8, 2.0])
    want = [1 - sum(exp(-m) * m**i / factorial(i) for i in range(n)) for n, m in zip(k, lam, strict=True)]
    assert np.allclose(risks._poisson_upper(k, lam), want, rtol=1e-12, atol=1e-15)
