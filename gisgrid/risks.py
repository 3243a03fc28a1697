"""Risk analytics (风险研判) on case histories — pure, no database.

Each function scores subjects (a grid, a tier grid, a department …) from 0 to 1, flags the suspicious ones and
explains why in plain language, Chinese first, with the numbers behind it. Inputs are DataFrames shaped like the
tables ``cases`` and ``case_transitions`` (:mod:`gisgrid.cases`); every threshold is a parameter whose default is
documented on the function. Output: one row per subject, sorted by score (highest first), with columns
``subject, level, score, flagged, explanation`` and then the numbers.

The baselines are robust on purpose: a district where a fifth of the grids misbehave still has a sound "normal"
(medians across subjects, or a pooled rate re-estimated without the subjects already found anomalous), so
anomalies do not hide themselves by moving the average. Counts are compared with the variance-stabilised
Poisson deviate ``z = 2(√(observed + 3/8) − √(expected + 3/8))`` (≈ N(0, 1) when nothing is wrong): a signal
only counts when its ``|z|`` reaches ``z_min``, so small grids are not flagged on noise. The default flag
thresholds were calibrated on simulated histories (:mod:`gisgrid.simulate`, tests/test_risks.py): planted
anomalies score ≥ 0.8 there, the most extreme normal subjects about 0.5.

=====================  =================  ==========================================================================
function               subject            signals
=====================  =================  ==========================================================================
selective_reporting    tier-3 grid (any   patrol reports (source patrol) against: public reports (hotline, app) in
                       level)             the same area; component count; neighbouring areas; hard classes
                                          (私搭乱建, 占道经营 …) against the district's patrol mix
grid_overload          tier-3 grid        grid-staff tasks and distinct departments per supervisor per month
                                          against a capacity
escalation_pileup      street (tier 1)    share of filed cases escalated to tier 1 and how long they wait there
paper_closure          unit grid (or a    closed cases re-reported at the same place (radius) and class within N
                       department)        days of closure
=====================  =================  ==========================================================================
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pyproj import Transformer

from gisgrid.calendar import WorkingCalendar
from gisgrid.constants import LOCAL_TZ_NAME, STORAGE_CRS
from gisgrid.errors import InvalidInput
from gisgrid.evaluation import LEVELS, PATROL_ROLES, PUBLIC_SOURCES, WorkClock, local_times, months_between

#: Signal weights of selective_reporting (renormalised over the signals that have their input).
SELECTIVE_WEIGHTS: dict[str, float] = {"public": 0.35, "hard": 0.30, "components": 0.20, "neighbours": 0.15}
#: Grid-staff actions counted as tasks for grid_overload.
STAFF_ACTIONS: tuple[str, ...] = ("report", "verify", "check", "rework")

OUTPUT_HEAD = ("subject", "level", "score", "flagged", "explanation")


def _z(observed: Any, expected: Any) -> np.ndarray:
    """Variance-stabilised Poisson deviate (negative: fewer than expected)."""
    o = np.asarray(observed, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    return 2.0 * (np.sqrt(np.clip(o, 0, None) + 0.375) - np.sqrt(np.clip(e, 0, None) + 0.375))


def _poisson_upper(k: Any, lam: Any) -> np.ndarray:
    """P(X ≥ k) for X ~ Poisson(lam), exact (log-space sum of the pmf below k; k is a small count here)."""
    k = np.asarray(k, dtype=np.int64)
    lam = np.clip(np.asarray(lam, dtype=np.float64), 1e-12, None)
    below = np.zeros(k.shape)
    log_pmf = -lam  # log P(X = 0)
    for i in range(int(k.max(initial=0))):
        below += np.where(i < k, np.exp(log_pmf), 0.0)
        log_pmf = log_pmf + np.log(lam) - math.log(i + 1)
    return np.clip(1.0 - below, 0.0, 1.0)


def _level_column(level: str) -> str:
    if level in LEVELS:
        return LEVELS[level]
    if level.endswith("_code"):
        return level
    raise InvalidInput(f"level must be one of {', '.join(LEVELS)} or a column name", detail={"level": level})


def _need(df: pd.DataFrame, name: str, cols: Sequence[str]) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise InvalidInput(f"{name}: missing columns {', '.join(missing)}", detail={"missing": missing})


def _districts(cases: pd.DataFrame, col: str, subjects: pd.Index) -> np.ndarray:
    """The district of each subject (baselines are per district): the cases' district_code, else the first six
    digits of a longer numeric code (unit grid 15, tier-3 14, community 12, street 9), else one group."""
    if col != "district_code" and "district_code" in cases.columns:
        by = cases.dropna(subset=[col]).drop_duplicates(col).set_index(col)["district_code"]
        return np.asarray(subjects.map(by).astype(str), dtype=object)
    codes = pd.Series(subjects.astype(str))
    if col != "district_code" and len(codes) and codes.str.fullmatch(r"[0-9]{7,}").all():
        return codes.str[:6].to_numpy(dtype=object)
    return np.full(len(subjects), "all", dtype=object)


def _pct(x: float) -> str:
    return "—" if x is None or not np.isfinite(x) else f"{100 * x:.0f}%"


def _num(x: float, digits: int = 2) -> str:
    return "—" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def _finish(out: pd.DataFrame, level: str) -> pd.DataFrame:
    out.insert(1, "level", level)
    head = [c for c in OUTPUT_HEAD if c in out.columns]
    rest = [c for c in out.columns if c not in head]
    out = out[head + rest]
    return out.sort_values(["score", "subject"], ascending=[False, True], kind="mergesort").reset_index(drop=True)


# --------------------------------------------------------------------------------------- geometry helpers


def local_metres(lon: Any, lat: Any, lat0: float) -> tuple[np.ndarray, np.ndarray]:
    """Metres in a transverse Mercator on the GRS80 ellipsoid centred on the points (``lat0``, their mean
    longitude): distances agree with the geodesic to < 0.001 % within 20 km of the centre. The spherical
    equirectangular factors used before (110,540 / 111,320·cos φ m per degree) were 0.2–0.45 % off at 35–40°N,
    against a documented < 0.1 % (review11 D16)."""
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    lon0 = float(np.nanmean(lon)) if lon.size and np.isfinite(lon).any() else 0.0
    local = Transformer.from_crs(
        STORAGE_CRS, f"+proj=tmerc +lat_0={lat0} +lon_0={lon0} +k=1 +ellps=GRS80 +units=m", always_xy=True
    )
    x, y = local.transform(lon, lat)
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


def _near_pairs(left: pd.DataFrame, right: pd.DataFrame, radius: float, on: Sequence[str] = ()) -> pd.DataFrame:
    """Row pairs (``li``, ``ri``, distance ``d``) within ``radius`` metres, equal on ``on``: a bucket join (buckets
    of ``radius``, each left point meets the 3×3 buckets around it), so the cost follows the pairs, not n²."""
    on = list(on)
    lb = left[["x", "y", *on]].assign(li=np.arange(len(left)))
    rb = right[["x", "y", *on]].assign(ri=np.arange(len(right)))
    for df in (lb, rb):
        df["bx"] = np.floor(df["x"] / radius).astype(np.int64)
        df["by"] = np.floor(df["y"] / radius).astype(np.int64)
    parts = []
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            shifted = lb.assign(bx=lb["bx"] + dx, by=lb["by"] + dy)
            parts.append(shifted.merge(rb, on=["bx", "by", *on], suffixes=("", "_r")))
    m = pd.concat(parts, ignore_index=True)
    m["d"] = np.hypot(m["x"] - m["x_r"], m["y"] - m["y_r"])
    return m.loc[m["d"] <= radius, ["li", "ri", "d"]].reset_index(drop=True)


def adjacency(cells: pd.DataFrame, level: str = "tier3", *, radius_m: float = 150.0) -> pd.DataFrame:
    """Neighbouring areas (``a``, ``b`` with a < b) of ``level``: two areas are neighbours when one of their unit
    grids' centres lies within ``radius_m`` of the other's (default 150 m = 1.5 × a 100 m unit grid, so grids
    sharing an edge or a corner qualify). ``cells`` needs lon, lat and the level column."""
    col = _level_column(level)
    _need(cells, "cells", ("lon", "lat", col))
    x, y = local_metres(cells["lon"], cells["lat"], float(cells["lat"].mean()))
    pts = pd.DataFrame({"x": x, "y": y})
    pairs = _near_pairs(pts, pts, radius_m)
    codes = cells[col].to_numpy()
    a, b = codes[pairs["li"].to_numpy()], codes[pairs["ri"].to_numpy()]
    keep = a < b
    return pd.DataFrame({"a": a[keep], "b": b[keep]}).drop_duplicates().reset_index(drop=True)


# --------------------------------------------------------------------------------------- 选择性上报


def selective_reporting(
    cases: pd.DataFrame,
    *,
    level: str = "tier3",
    components: pd.DataFrame | None = None,
    adjacency: pd.DataFrame | None = None,
    hard_classes: Mapping[tuple[str, str], str],
    weights: Mapping[str, float] = SELECTIVE_WEIGHTS,
    min_reports: int = 30,
    full_at: float = 0.2,
    z_min: float = 2.5,
    threshold: float = 0.6,
) -> pd.DataFrame:
    """选择性上报: the patrol reports little of what is there, or leaves the hard problems out.

    Per subject (``level``, default tier-3 grid) with P patrol reports (source ``patrol``), C public reports
    (hotline, public_app) and H patrol reports of ``hard_classes`` ((scheme, code) → name: the event catalogue's
    classes marked ``hard``, :attr:`gisgrid.events.EventCatalogue.hard_classes`; a case is matched on its
    ``scheme`` and ``class_code``, so a CJ/T 214 district's 私搭乱建 0101 counts as a GB/T 47678 one's 06001), four
    signals compare P (or H) with what is expected; each gives rel = observed / expected:

    * public — expected P = C × the district's median P/C ratio;
    * components — expected P = components × the district's median P per component (``components``: a frame
      ``unit_grid_code, components`` or ``<level column>, components``);
    * neighbours — expected P = C × the pooled P/C of the neighbouring areas (``adjacency``: pairs ``a, b``);
    * hard — expected H = P × the district's median hard share of patrol reports.

    A signal scores ``clip((1 − rel) / (1 − full_at), 0, 1)`` (rel ≤ ``full_at`` = 0.2 scores 1) when its z ≤
    −``z_min`` (default 2.5), else 0. score = Σ weight × signal / Σ weight over the signals with input (weights
    :data:`SELECTIVE_WEIGHTS`: public 0.35, hard 0.30, components 0.20, neighbours 0.15). Flagged when score ≥
    ``threshold`` (0.6) and P + C ≥ ``min_reports`` (30).
    """
    col = _level_column(level)
    _need(cases, "cases", ("source", "scheme", "class_code", col))
    c = cases[cases[col].notna()]
    patrol = c["source"].eq("patrol")
    public = c["source"].isin(PUBLIC_SOURCES)
    hard_index = pd.MultiIndex.from_tuples(list(hard_classes), names=["scheme", "class_code"])
    hard = patrol & pd.MultiIndex.from_frame(c[["scheme", "class_code"]]).isin(hard_index)
    g = pd.DataFrame({"patrol": patrol, "public": public, "hard": hard, col: c[col]}).groupby(col)
    out = g[["patrol", "public", "hard"]].sum().astype(np.float64)
    out.columns = ["patrol", "public", "hard_patrol"]
    out["district"] = _districts(c, col, out.index)
    enough = (out["patrol"] + out["public"]) >= min_reports

    def district_median(values: pd.Series, mask: pd.Series) -> pd.Series:
        med = values[mask].groupby(out.loc[mask, "district"]).median()
        return out["district"].map(med).astype(np.float64)

    signals: dict[str, pd.Series] = {}
    # Public: how much the patrol reports for each public report, against the district's median area.
    ratio = (out["patrol"] + 0.5) / (out["public"] + 0.5)
    out["patrol_per_public"] = out["patrol"] / out["public"].where(out["public"] > 0)
    out["district_patrol_per_public"] = district_median(ratio, enough & (out["public"] > 0))
    out["expected_patrol"] = out["public"] * out["district_patrol_per_public"]
    signals["public"] = _signal(out["patrol"], out["expected_patrol"], full_at, z_min)
    out["rel_public"] = out["patrol"] / out["expected_patrol"].where(out["expected_patrol"] > 0)

    if components is not None:
        comp = _components_by(components, cases, col).reindex(out.index)
        out["components"] = comp
        per = out["patrol"] / comp.where(comp > 0)
        out["patrol_per_100_components"] = 100 * per
        out["district_per_100_components"] = 100 * district_median(per, enough & (comp > 0))
        expected = comp * out["district_per_100_components"] / 100
        out["rel_components"] = out["patrol"] / expected.where(expected > 0)
        signals["components"] = _signal(out["patrol"], expected, full_at, z_min)

    if adjacency is not None:
        pairs = pd.concat(
            [adjacency[["a", "b"]], adjacency[["b", "a"]].set_axis(["a", "b"], axis=1)], ignore_index=True
        )
        nb = pairs.merge(out[["patrol", "public"]], left_on="b", right_index=True).groupby("a")[["patrol", "public"]]
        sums = nb.sum().reindex(out.index)
        out["neighbours"] = pairs.groupby("a").size().reindex(out.index).fillna(0).astype(int)
        out["neighbour_patrol_per_public"] = sums["patrol"] / sums["public"].where(sums["public"] > 0)
        expected = out["public"] * out["neighbour_patrol_per_public"]
        out["rel_neighbours"] = out["patrol"] / expected.where(expected > 0)
        signals["neighbours"] = _signal(out["patrol"], expected, full_at, z_min)

    share = out["hard_patrol"] / out["patrol"].where(out["patrol"] > 0)
    out["hard_share"] = share
    out["district_hard_share"] = district_median(share, enough & (out["patrol"] > 0))
    out["expected_hard"] = out["patrol"] * out["district_hard_share"]
    out["rel_hard"] = out["hard_patrol"] / out["expected_hard"].where(out["expected_hard"] > 0)
    signals["hard"] = _signal(out["hard_patrol"], out["expected_hard"], full_at, z_min)

    num = sum(weights[k] * s.fillna(0.0) for k, s in signals.items())
    den = sum(weights[k] for k in signals)
    out["score"] = (num / den).round(4)
    out.loc[~enough, "score"] = 0.0
    out["flagged"] = (out["score"] >= threshold) & enough
    for k, s in signals.items():
        out[f"signal_{k}"] = s.round(4)
    out["explanation"] = _explain_selective(out, hard_classes, enough, min_reports)
    out = out.drop(columns="district").rename_axis("subject").reset_index()
    return _finish(out, level)


def _signal(observed: pd.Series, expected: pd.Series, full_at: float, z_min: float) -> pd.Series:
    """Deficit score 0..1 of observed against expected; 0 unless the deficit is significant."""
    rel = observed / expected.where(expected > 0)
    s = ((1.0 - rel) / (1.0 - full_at)).clip(0.0, 1.0)
    significant = _z(observed, expected) <= -z_min
    return s.where(significant, 0.0).where(expected.notna() & (expected > 0), np.nan)


def _components_by(components: pd.DataFrame, cases: pd.DataFrame, col: str) -> pd.Series:
    if col in components.columns:
        return components.groupby(col)["components"].sum().astype(np.float64)
    _need(components, "components", ("unit_grid_code", "components"))
    # Map unit grids to the level through the cases (a grid without any case adds nothing).
    grid_to_area = cases[["unit_grid_code", col]].dropna().drop_duplicates("unit_grid_code")
    m = components.merge(grid_to_area, on="unit_grid_code")
    return m.groupby(col)["components"].sum().astype(np.float64)


def _explain_selective(
    out: pd.DataFrame, hard_classes: Mapping[tuple[str, str], str], enough: pd.Series, min_reports: int
) -> list:
    texts = []
    names = list(dict.fromkeys(hard_classes.values()))  # one name for the same class in both schemes
    hard_names = ("、".join(names[:3]) + ("等" if len(names) > 3 else "")) or "未标记"
    for code, r in out.iterrows():  # one sentence per subject: a handful of rows, not cases
        if not enough[code]:
            texts.append(
                f"上报量不足（巡查{r.patrol:.0f}件、公众举报{r.public:.0f}件，少于{min_reports}件），不作判断。"
                f" | Too few reports to judge."
            )
            continue
        head = "选择性上报嫌疑" if r.flagged else "未见明显选择性上报"
        parts = [
            f"巡查上报{r.patrol:.0f}件、公众举报{r.public:.0f}件，巡查/举报比{_num(r.patrol_per_public)}，"
            f"为全区中位数{_num(r.district_patrol_per_public)}的{_pct(r.rel_public)}"
        ]
        if "rel_components" in out.columns and np.isfinite(r.get("components", np.nan)):
            parts.append(
                f"每百部件巡查上报{_num(r.patrol_per_100_components, 1)}件（全区中位"
                f"{_num(r.district_per_100_components, 1)}件，为其{_pct(r.rel_components)}）"
            )
        if "rel_neighbours" in out.columns and np.isfinite(r.get("neighbour_patrol_per_public", np.nan)):
            parts.append(
                f"相邻{r.neighbours:.0f}个网格巡查/举报比{_num(r.neighbour_patrol_per_public)}（本网格为其"
                f"{_pct(r.rel_neighbours)}）"
            )
        parts.append(
            f"难点类别（{hard_names}）巡查上报{r.hard_patrol:.0f}件，按全区构成应约{_num(r.expected_hard, 1)}件"
        )
        en = (
            f"Selective reporting {'suspected' if r.flagged else 'not evident'}: patrol at {_pct(r.rel_public)} of "
            f"what public reports imply; hard classes at {_pct(r.rel_hard)} of the district mix."
        )
        texts.append(f"{head}（得分{r.score:.2f}）：" + "；".join(parts) + "。 | " + en)
    return texts


# --------------------------------------------------------------------------------------- 网格泛化


def grid_overload(
    cases: pd.DataFrame,
    transitions: pd.DataFrame,
    staff: pd.DataFrame,
    *,
    start: Any = None,
    end: Any = None,
    capacity: float = 120.0,
    department_capacity: float = 15.0,
    warn_at: float = 0.8,
    full_at: float = 1.5,
) -> pd.DataFrame:
    """网格泛化: more work per supervisor than a grid can carry, from too many departments.

    Per tier-3 grid over the window [``start``, ``end``) (default: the span of the transitions), with ``staff``
    (``tier3_code, staff``: supervisors/grid workers) and months = the window's calendar months
    (:func:`~gisgrid.evaluation.months_between`, as the evaluation counts a period's; at least a day's share):

    * tasks_per_staff_month = grid-staff actions (report, verify, check, rework by a supervisor or grid worker) on
      the grid's cases / staff / months; load = that / ``capacity`` (default 120 tasks a month);
    * departments_per_staff_month = distinct departments dispatched the grid's cases in a calendar month (averaged
      over months) / staff; department_load = that / ``department_capacity`` (default 15);
    * cases_per_staff_month for context.

    pressure = max(load, department_load); score = clip((pressure − ``warn_at``) / (``full_at`` − ``warn_at``), 0,
    1) (0 up to 80 % of capacity, 1 from 150 %); flagged when pressure > 1. A grid without staff is not scored.
    """
    _need(cases, "cases", ("id", "tier3_code", "created_at"))
    _need(transitions, "transitions", ("case_id", "action", "role", "at", "department_code"))
    _need(staff, "staff", ("tier3_code", "staff"))
    tz = LOCAL_TZ_NAME
    at = local_times(transitions["at"], tz)
    lo = pd.Timestamp(start, tz=tz) if start is not None and pd.Timestamp(start).tzinfo is None else start
    hi = pd.Timestamp(end, tz=tz) if end is not None and pd.Timestamp(end).tzinfo is None else end
    lo = at.min() if lo is None else pd.Timestamp(lo)
    hi = at.max() if hi is None else pd.Timestamp(hi)
    # the evaluation's month count of the window (a window under a day counts as one day)
    months = (
        months_between(lo.tz_convert(tz), max(hi, lo + pd.Timedelta(days=1)))
        if pd.notna(lo) and pd.notna(hi)
        else float("nan")  # no transitions and no window: nothing to count over
    )
    area = cases.set_index("id")["tier3_code"]
    t = transitions.assign(at=at, tier3_code=transitions["case_id"].map(area))
    t = t[(t["at"] >= lo) & (t["at"] < hi) & t["tier3_code"].notna()]

    tasks = t[t["role"].isin(PATROL_ROLES) & t["action"].isin(STAFF_ACTIONS)].groupby("tier3_code").size()
    disp = t[t["action"].eq("dispatch") & t["department_code"].notna()]
    month = disp["at"].dt.tz_localize(None).dt.to_period("M")
    per_month = disp.assign(month=month).drop_duplicates(["tier3_code", "month", "department_code"])
    n_months = max(1, month.nunique()) if len(month) else 1
    depts = per_month.groupby("tier3_code").size() / n_months
    created = local_times(cases["created_at"], tz)
    in_window = cases[(created >= lo).to_numpy() & (created < hi).to_numpy()]
    n_cases = in_window.groupby("tier3_code").size()

    index = pd.Index(sorted(set(cases["tier3_code"].dropna()) | set(staff["tier3_code"])), name="tier3_code")
    out = pd.DataFrame(index=index)
    out["staff"] = staff.groupby("tier3_code")["staff"].sum().reindex(index)
    s = out["staff"].where(out["staff"] > 0)
    out["cases"] = n_cases.reindex(index, fill_value=0)
    out["tasks"] = tasks.reindex(index, fill_value=0)
    out["departments_per_month"] = depts.reindex(index, fill_value=0.0)
    out["months"] = months
    out["cases_per_staff_month"] = out["cases"] / s / months
    out["tasks_per_staff_month"] = out["tasks"] / s / months
    out["departments_per_staff_month"] = out["departments_per_month"] / s
    out["load"] = out["tasks_per_staff_month"] / capacity
    out["department_load"] = out["departments_per_staff_month"] / department_capacity
    pressure = out[["load", "department_load"]].max(axis=1, skipna=False)
    out["pressure"] = pressure
    out["score"] = ((pressure - warn_at) / (full_at - warn_at)).clip(0.0, 1.0).fillna(0.0).round(4)
    out["flagged"] = (pressure > 1.0).fillna(False).astype(bool)
    texts = []
    for r in out.itertuples():  # one sentence per grid
        if not np.isfinite(r.staff) or r.staff <= 0:
            texts.append("缺少网格人员数，无法评估负荷。 | No staff count for this grid.")
            continue
        head = "网格泛化（超负荷）" if r.flagged else ("负荷偏高" if r.score > 0 else "负荷正常")
        texts.append(
            f"{head}（得分{r.score:.2f}）：{r.staff:.0f}名网格人员，月均每人承担任务{r.tasks_per_staff_month:.0f}项"
            f"（容量{capacity:.0f}项，为其{_pct(r.load)}）、案件{r.cases_per_staff_month:.0f}件；每月平均有"
            f"{r.departments_per_month:.1f}个部门派单进网格，每人{r.departments_per_staff_month:.1f}个（上限"
            f"{department_capacity:.0f}个，为其{_pct(r.department_load)}）。 | Load {_pct(r.load)} of capacity "
            f"({r.tasks_per_staff_month:.0f} tasks per person-month), departments {_pct(r.department_load)}."
        )
    out["explanation"] = texts
    out = out.rename_axis("subject").reset_index()
    return _finish(out, "tier3")


# --------------------------------------------------------------------------------------- 提级堆积


def escalation_pileup(  # noqa: PLR0915
    cases: pd.DataFrame,
    transitions: pd.DataFrame,
    calendar: WorkingCalendar | None = None,
    *,
    level: str = "street",
    as_of: Any = None,
    min_share: float = 0.05,
    share_full: float = 5.0,
    wait_full: float = 3.0,
    min_escalated: int = 5,
    z_min: float = 3.0,
    threshold: float = 0.5,
) -> pd.DataFrame:
    """提级堆积: too many cases pushed up to tier 1 (一级网格, the street) where they then wait.

    Per subject (``level``, default street = tier 1): filed = cases with a ``file`` transition; escalated = cases
    with an ``escalate`` whose details say ``to_level`` 1 (the first such); share = escalated / filed. The wait of
    an escalated case runs from that escalation to its next state change (派遣, 挂账, 结案 …) or to ``as_of`` (default:
    the last transition) while none came — working hours with ``calendar``, plain hours without.

    share signal = clip((share / base − 1) / (``share_full`` − 1), 0, 1) with base = the district's median share
    (floor 0.5 %), when share ≥ ``min_share`` (5 %) and z ≥ ``z_min`` (3); wait signal = clip((median wait /
    district wait − 1) / (``wait_full`` − 1), 0, 1) when at least ``min_escalated`` (5) cases waited, the district
    wait being the median over its subjects (with ≥ ``min_escalated`` waits) of their median waits.
    score = 0.6 × share signal + 0.4 × wait signal; flagged when score ≥ ``threshold`` (0.5).
    """
    col = _level_column(level)
    _need(cases, "cases", ("id", col))
    _need(transitions, "transitions", ("case_id", "action", "from_state", "to_state", "at"))
    tz = calendar.tz if calendar is not None else LOCAL_TZ_NAME
    cols = ["case_id", "action", "from_state", "to_state", "at"] + (["details"] if "details" in transitions else [])
    t = transitions[cols].reset_index(drop=True)
    t["at"] = local_times(t["at"], tz)
    as_of_ts = t["at"].max() if as_of is None else pd.Timestamp(as_of)
    if as_of_ts.tzinfo is None:
        as_of_ts = as_of_ts.tz_localize(tz)
    t = t[t["at"] <= as_of_ts].sort_values(["at", "case_id"], kind="mergesort")
    area = cases.set_index("id")[col]
    filed = t.loc[t["action"].eq("file"), "case_id"].drop_duplicates()

    esc = t[t["action"].eq("escalate")]
    if "details" in esc.columns:
        to_level = pd.to_numeric(esc["details"].map(lambda d: d.get("to_level") if isinstance(d, dict) else None))
    else:  # without details: every case starts at tier 3, so its second 提级 reaches tier 1
        to_level = 3 - (esc.groupby("case_id").cumcount() + 1)
    top = esc[to_level.eq(1)]
    top = top.drop_duplicates("case_id")[["case_id", "at"]]
    moves = t[t["from_state"].ne(t["to_state"]) & t["from_state"].notna()][["case_id", "at"]]
    moves = moves.rename(columns={"at": "left_at"})
    waits = pd.merge_asof(
        top.sort_values("at"),
        moves.sort_values("left_at"),
        left_on="at",
        right_on="left_at",
        by="case_id",
        direction="forward",
        allow_exact_matches=False,
    )
    waits["open"] = waits["left_at"].isna()
    end = waits["left_at"].where(~waits["open"], as_of_ts)
    if calendar is not None and len(waits):
        clock = WorkClock.covering(calendar, waits["at"], end)
        waits["wait_h"] = clock.between(waits["at"], end) / 3_600_000_000
    else:
        waits["wait_h"] = (end - waits["at"]).dt.total_seconds() / 3600 if len(waits) else []
    waits[col] = waits["case_id"].map(area)

    out = pd.DataFrame(index=pd.Index(sorted(cases[col].dropna().unique()), name=col))
    out["filed"] = filed.map(area).value_counts().reindex(out.index, fill_value=0)
    wg = waits.groupby(col)
    out["escalated_to_tier1"] = wg.size().reindex(out.index, fill_value=0)
    out["still_waiting"] = wg["open"].sum().reindex(out.index, fill_value=0)
    out["median_wait_h"] = wg["wait_h"].median().reindex(out.index)
    out["share"] = out["escalated_to_tier1"] / out["filed"].where(out["filed"] > 0)
    district = _districts(cases, col, out.index)
    base = out["share"].groupby(district).transform("median").clip(lower=0.005)
    out["district_share"] = base
    # The district's normal wait: the median over subjects of their median wait (robust to piled-up streets).
    has_wait = out["escalated_to_tier1"] >= min_escalated
    wait_base = out.loc[has_wait, "median_wait_h"].groupby(district[has_wait.to_numpy()]).median()
    out["district_median_wait_h"] = pd.Series(district, index=out.index).map(wait_base).astype(np.float64)
    expected = out["filed"] * base
    z = _z(out["escalated_to_tier1"], expected)
    s_share = ((out["share"] / base - 1) / (share_full - 1)).clip(0, 1)
    s_share = s_share.where((out["share"] >= min_share) & (z >= z_min), 0.0).fillna(0.0)
    ratio = out["median_wait_h"] / out["district_median_wait_h"]
    s_wait = ((ratio - 1) / (wait_full - 1)).clip(0, 1).where(out["escalated_to_tier1"] >= min_escalated, 0.0)
    out["signal_share"] = s_share.round(4)
    out["signal_wait"] = s_wait.fillna(0.0).round(4)
    out["score"] = (0.6 * out["signal_share"] + 0.4 * out["signal_wait"]).round(4)
    out["flagged"] = out["score"] >= threshold
    unit = "工作小时" if calendar is not None else "小时"
    texts = []
    for _, r in out.iterrows():  # one sentence per subject
        head = "提级堆积" if r.flagged else "提级正常"
        texts.append(
            f"{head}（得分{r.score:.2f}）：立案{r.filed:.0f}件中{r.escalated_to_tier1:.0f}件提级至一级网格（街道），占"
            f"{_pct(r.share)}，全区中位{_pct(r.district_share)}；在一级网格停留时间中位数"
            f"{_num(r.median_wait_h, 1)}{unit}（全区中位{_num(r.district_median_wait_h, 1)}），"
            f"{r.still_waiting:.0f}件仍在等待。 | "
            f"{_pct(r.share)} of filed cases escalated to tier 1 (district {_pct(r.district_share)}), median wait "
            f"{_num(r.median_wait_h, 1)} h."
        )
    out["explanation"] = texts
    out = out.rename_axis("subject").reset_index()
    return _finish(out, level)


# --------------------------------------------------------------------------------------- 纸面结案


def paper_closure(
    cases: pd.DataFrame,
    *,
    level: str = "unit_grid",
    radius_m: float = 50.0,
    window_days: float = 14.0,
    full_share: float = 0.4,
    min_rereports: int = 3,
    alpha: float = 1e-3,
    threshold: float = 0.6,
) -> pd.DataFrame:
    """纸面结案: cases closed on paper come back — the same class reported again at the same place soon after.

    A closed case (state ``closed``) is re-reported when another case of the same ``class_code`` is reported
    within ``radius_m`` metres (default 50; needs ``lon``/``lat``) and within ``window_days`` (default 14) after its
    ``closed_at``. Per subject (``level``: unit_grid by default, or e.g. ``department_code`` for the department
    that closed it): closed, rereported, share = rereported / closed. The normal share p0 is the district's pooled
    share, re-estimated without the subjects already significant (so the anomalies do not raise it).

    Significant: P(X ≥ rereported) ≤ ``alpha`` (default 0.001) for X ~ Poisson(closed × p0) — the exact tail,
    since a unit grid has few cases — and rereported ≥ ``min_rereports`` (3). score = clip((share − p0) /
    (``full_share`` − p0), 0, 1) when significant, else 0 (``full_share`` 0.4); flagged when score ≥ ``threshold``
    (0.5).
    """
    col = _level_column(level)
    _need(cases, "cases", ("id", "class_code", "state", "created_at", "closed_at", "lon", "lat", col))
    tz = LOCAL_TZ_NAME
    c = cases[cases["lon"].notna() & cases["lat"].notna() & cases[col].notna()].reset_index(drop=True)
    created = local_times(c["created_at"], tz)
    closed_at = local_times(c["closed_at"], tz)
    x, y = local_metres(c["lon"], c["lat"], float(c["lat"].mean()) if len(c) else 0.0)
    pts = pd.DataFrame({"x": x, "y": y, "class_code": c["class_code"].to_numpy()})
    is_closed = (c["state"].eq("closed") & closed_at.notna()).to_numpy()
    closed_rows = np.flatnonzero(is_closed)
    pairs = _near_pairs(pts.iloc[closed_rows].reset_index(drop=True), pts, radius_m, on=("class_code",))
    li = closed_rows[pairs["li"].to_numpy()]
    ri = pairs["ri"].to_numpy()
    lag = (created.iloc[ri].to_numpy() - closed_at.iloc[li].to_numpy()) / np.timedelta64(1, "D")
    hit = (li != ri) & (lag > 0) & (lag <= window_days)
    again = np.zeros(len(c), dtype=bool)
    again[li[hit]] = True

    sub = pd.DataFrame({col: c[col].to_numpy()[closed_rows], "again": again[closed_rows]})
    g = sub.groupby(col)["again"]
    out = pd.DataFrame({"closed": g.size(), "rereported": g.sum()}).astype(np.float64)
    out["share"] = out["rereported"] / out["closed"]
    district = _districts(c, col, out.index)
    anomalous = np.zeros(len(out), dtype=bool)
    for _ in range(3):  # p0 without the subjects already found anomalous
        normal = out[~anomalous]
        pooled = (
            normal["rereported"].groupby(district[~anomalous]).sum()
            / normal["closed"].groupby(district[~anomalous]).sum()
        )
        p0 = pd.Series(district, index=out.index).map(pooled).astype(np.float64)
        p_value = _poisson_upper(out["rereported"], out["closed"] * p0)
        anomalous = (p_value <= alpha) & (out["rereported"] >= min_rereports).to_numpy()
    out["district_share"] = p0
    out["expected"] = out["closed"] * p0
    out["p_value"] = p_value
    s = ((out["share"] - p0) / (full_share - p0)).clip(0, 1)
    out["score"] = s.where(anomalous, 0.0).fillna(0.0).round(4)
    out["flagged"] = out["score"] >= threshold
    texts = []
    for r in out.itertuples():  # one sentence per subject
        head = "纸面结案嫌疑" if r.flagged else "未见纸面结案迹象"
        texts.append(
            f"{head}（得分{r.score:.2f}）：结案{r.closed:.0f}件中{r.rereported:.0f}件在结案后{window_days:g}天内于"
            f"{radius_m:g}米内被同类问题再次上报，占{_pct(r.share)}（全区正常水平{_pct(r.district_share)}，应约"
            f"{_num(r.expected, 1)}件）。 | {_pct(r.share)} of closed cases re-reported at the same place within "
            f"{window_days:g} days (normal {_pct(r.district_share)})."
        )
    out["explanation"] = texts
    out = out.rename_axis("subject").reset_index()
    return _finish(out, level)


def precision_recall(result: pd.DataFrame, truth: Sequence[str]) -> tuple[float, float]:
    """Precision and recall of ``result.flagged`` against the planted ``truth`` (1.0 when both are empty)."""
    flagged = set(result.loc[result["flagged"], "subject"])
    truth_set = set(truth)
    hits = len(flagged & truth_set)
    precision = hits / len(flagged) if flagged else (1.0 if not truth_set else 0.0)
    recall = hits / len(truth_set) if truth_set else 1.0
    return precision, recall
