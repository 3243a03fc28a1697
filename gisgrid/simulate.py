"""Synthetic case histories (案件历史) for tests, demos and benchmarks — deterministic per seed, pure (no database).

:func:`simulate` returns DataFrames shaped like the tables ``cases`` and ``case_transitions`` (see
:mod:`gisgrid.cases`; ``details`` are dicts and ``effects`` lists, as read back from JSONB), plus the side tables a
risk analysis needs (supervisors per tier-3 grid, components per unit grid) and the ground truth of what was planted.

How the history is made (all draws from one ``numpy`` generator, vectorised over cases):

* **Problems** arise per unit grid and day as Poisson(``rate`` × cell factor × day factor); the cell factor is
  Gamma(mean 1, CV 0.5) and also drives the component count (Poisson(25 × factor)), non-working days carry 80 %.
* **Source**: patrol (监督员巡查) or the public (12345 hotline 70 %, app 30 %); the patrol share is about 60 % and
  varies per tier-3 grid (patrol diligence and citizen propensity, log-normal), lower on non-working days.
  Patrol reports fall in working hours, public ones between 07:00 and 22:00.
* **Workflow** (the main path of :mod:`gisgrid.workflow`, with its side flows): 受理员发核实 → 监督员核实 → 值班长
  立案 (2.5 % rejected at intake, 2 % after verification, 2 % voided as duplicates) → [提级] → 派遣员派遣 (a
  department-specific share is first sent to a wrong department — the dispatcher's 改派, with a written reason —
  which returns it: 回退 and re-dispatch) →
  [延期申请/批准] → [挂账/缓办, half resumed] → 处置 → 发核查 → 核查 or 返工 (department-specific) → 结案.
  Every node duration is drawn in **working time** against its limit with the acting person's or department's
  on-time propensity, then turned into instants with the :class:`~gisgrid.calendar.WorkingCalendar`, so
  holidays and nights are skipped exactly as the evaluation counts them. Anything after ``start + days`` is cut:
  the last cases stay open.
* **Recurrence**: 2 % of closed cases are reported again at the same place within 1–45 days (natural).
* **Routing** (``route``, optional): the caller's routing of each report as intake would decide it (rules, the
  component owner; :func:`gisgrid.history.intake_routing`). Its department is where the case belongs (the
  class's default department without it); each case keeps the decision (``routing``) and the component it is
  linked to. Each 派遣 of a routed case is recorded as the live one is (:func:`gisgrid.routing.dispatch_choice`):
  a dispatch against the decision is a dispatcher's 改派 (or 人工派遣 of a case left to a person) kept in it, so
  the 交办单 prints that dispatch's own 派遣依据.

``plant`` (all optional lists of codes):

* ``selective`` (tier-3 codes) — 选择性上报: patrol reports only 35 % of what it finds and 3 % of the hard classes;
  40 % of what it drops reaches the public (reported 0–3 days later).
* ``overload`` (tier-3 codes) — 网格泛化: departments push extra tasks into the grid, ``overload_cases`` cases per
  supervisor per month over every department (staffing is planned on the normal load).
* ``escalation`` (street codes) — 提级堆积: 35 % of filed cases go up to tier 1 and wait 20–90 working hours there.
* ``paper_closure`` (unit grid codes) — 纸面结案: 60 % of closed cases are reported again at the same place and
  class 0.3–6 days after closure, and so are 60 % of those once closed again (up to three generations).

``truth`` holds the planted codes per risk. A code that is not in ``cells`` at the kind's level (a tier-3 grid
code given to ``escalation``, a code not loaded) is refused, naming the kind, the code and the level expected.
"""

from __future__ import annotations

import functools
import gc
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ParamSpec, TypeVar

import numpy as np
import pandas as pd

from gisgrid.calendar import DEFAULT_HOURS_PER_DAY, WorkingCalendar
from gisgrid.constants import LOCAL_TZ, LOCAL_TZ_NAME
from gisgrid.errors import InvalidInput
from gisgrid.evaluation import WorkClock
from gisgrid.events import NODES
from gisgrid.node_clock import EXTENDED_BY_DATE
from gisgrid.workflow import PREVIOUS, TRANSITIONS, UNCHANGED

#: Reasons a dispatcher writes for a 改派 to another department than the routing's (the one that then returns it).
OVERRIDE_REASONS = np.array(
    [
        "据上报描述判断属该单位职责",
        "现场照片显示为该单位管养设施",
        "同类问题以往由该单位处置",
        "该路段近期由该单位负责整治",
    ],
    dtype=object,
)
#: Share of reports per 大类 (GB/T 47678.5 codes) for :func:`classes_from_catalogue`; ours, plausible.
BIG_CLASS_MIX: dict[str, float] = {
    "01": 0.06,
    "02": 0.03,
    "03": 0.04,
    "04": 0.02,
    "05": 0.01,
    "06": 0.42,
    "07": 0.10,
    "08": 0.06,
    "09": 0.24,
    "10": 0.02,
}
P = ParamSpec("P")
R = TypeVar("R")
PLANTS: tuple[str, ...] = ("selective", "overload", "escalation", "paper_closure")
#: Which codes each planted kind takes: the ``cells`` column and the level's name (messages).
PLANT_LEVELS: dict[str, tuple[str, str]] = {
    "selective": ("tier3_code", "tier-3 grid"),
    "overload": ("tier3_code", "tier-3 grid"),
    "escalation": ("street_code", "street"),
    "paper_closure": ("code", "unit grid"),
}
#: Routes reports as intake does: given a frame of reports (unit_grid_code, district_code, street_code,
#: community_code, tier3_code, class_code, created_at, lon, lat), returns on the same index ``department`` (a code,
#: None for 人工派遣), ``routing`` (the ``cases.routing`` document, its decision as intake stores it) and
#: optionally ``component_id`` and ``component_distance_m``.
Router = Callable[[pd.DataFrame], pd.DataFrame]
#: Planning load of a supervisor: tier-3 staffing = ceil(expected tasks per month / this).
STAFF_TARGET_TASKS = 70.0

_US_HOUR = 3_600_000_000.0
_US_DAY = 86_400_000_000
# Workflow to-states of state-changing actions (the others keep the state): the state machine's, and the two it
# cannot say alone — intake's report, and 挂账恢复 back to its previous state, which is 派遣 in a simulated case.
_TO_STATE: dict[str, str] = {
    "report": "reported",
    **{a: r.to_state for a, r in TRANSITIONS.items() if r.to_state not in (UNCHANGED, PREVIOUS)},
    "resume": "dispatched",  # only suspended from 派遣 here
}


_ACTIONS: list[str] = ["report", *TRANSITIONS]
_ACTION_NAMES = np.array(_ACTIONS, dtype=object)
_TO_STATES = np.array([_TO_STATE.get(a) for a in _ACTIONS], dtype=object)


def _dicts(fields: dict[str, np.ndarray], m: int) -> list[dict[str, Any]]:
    """One dict per row from equal-length columns (literal dicts: the fastest way to build many)."""
    names, cols = list(fields), list(fields.values())
    match len(names):
        case 0:
            return [{} for _ in range(m)]
        case 1:
            (a,) = names
            return [{a: x} for x in cols[0]]
        case 2:
            a, b = names
            return [{a: x, b: y} for x, y in zip(*cols, strict=True)]
        case 3:
            a, b, c = names
            return [{a: x, b: y, c: z} for x, y, z in zip(*cols, strict=True)]
    return [dict(zip(names, vals, strict=True)) for vals in zip(*cols, strict=True)]


@dataclass
class Simulation:
    """Unpacks as ``cases, transitions``; the side tables and the planted truth are attributes."""

    cases: pd.DataFrame
    transitions: pd.DataFrame
    truth: dict[str, list[str]]
    staff: pd.DataFrame  # tier3_code, staff (supervisors)
    components: pd.DataFrame  # unit_grid_code, components
    departments: pd.DataFrame  # code and the behaviour drawn for it
    params: dict[str, Any] = field(default_factory=dict)

    def __iter__(self) -> Iterator[pd.DataFrame]:
        return iter((self.cases, self.transitions))


# --------------------------------------------------------------------------------------- inputs


def synthetic_cells(
    streets: int = 6,
    communities: int = 3,
    tier3: int = 4,
    cells_per_tier3: tuple[int, int] = (5, 4),
    *,
    district: str = "419901",
    origin: tuple[float, float] = (113.60, 34.70),
    size_m: float = 100.0,
) -> pd.DataFrame:
    """A regular lattice of unit grids coded like the real ones (15-digit unit grid, 14-digit tier-3 grid):
    each street is a horizontal band of communities, each community a row of tier-3 blocks of ``cols × rows``
    cells of ``size_m``. Columns: code, tier3_code, community_code, street_code, district_code, lon, lat, x, y."""
    cols, rows = cells_per_tier3
    s, m, t, r, q = np.meshgrid(
        np.arange(streets), np.arange(communities), np.arange(tier3), np.arange(rows), np.arange(cols), indexing="ij"
    )
    s, m, t, r, q = (a.ravel() for a in (s, m, t, r, q))
    street = np.char.add(district, np.char.zfill((s + 1).astype(str), 3))
    community = np.char.add(street, np.char.zfill((m + 1).astype(str), 3))
    tier3_code = np.char.add(community, np.char.zfill((t + 1).astype(str), 2))
    seq = t * rows * cols + r * cols + q + 1
    code = np.char.add(community, np.char.zfill(seq.astype(str), 3))
    x = ((m * tier3 + t) * cols + q) * size_m + size_m / 2
    y = (s * rows + r) * size_m + size_m / 2
    lon0, lat0 = origin
    return pd.DataFrame(
        {
            "code": code.astype(object),
            "tier3_code": tier3_code.astype(object),
            "community_code": community.astype(object),
            "street_code": street.astype(object),
            "district_code": district,
            "lon": lon0 + x / (111_320.0 * math.cos(math.radians(lat0))),
            "lat": lat0 + y / 110_540.0,
            "x": x,
            "y": y,
        }
    )


def classes_from_catalogue(
    events: Any, scheme: str = "gbt47678", hours_per_day: float = DEFAULT_HOURS_PER_DAY
) -> pd.DataFrame:
    """Classes for :func:`simulate` from an ``EventCatalogue``: code, name, department (default), weight (by
    :data:`BIG_CLASS_MIX`, shared equally inside a 大类), disposal_limit_h (default disposal type in working hours;
    a calendar-hours limit is kept as hours) and its disposal_type, hard (the catalogue's ``hard`` column: what a
    selective patrol leaves out), component (a component-class event). Classes whose default type is urgent are
    left out: the simulated cases are not urgent (see :func:`node_hours_from_catalogue`)."""
    rows = []
    for code, cls in events.classes(scheme).items():
        lim = events.limit(scheme, code)
        if lim.urgent:  # its default type is urgent (占用消防通道: round the clock), which the simulation does not
            continue  # time: its cases would be judged by the urgent limits and all come out late (review48 F1)
        hours = lim.limit * hours_per_day if lim.unit == "working_days" else lim.limit
        rows.append(
            {
                "code": code,
                "name": cls.name,
                "department": cls.default_dept,
                "big": cls.big_code,
                "disposal_type": lim.disposal_type,
                "disposal_limit_h": float(hours),
                "hard": cls.hard,
                "component": cls.component_class is not None,
            }
        )
    df = pd.DataFrame(rows)
    share = df["big"].map(BIG_CLASS_MIX).fillna(0.01)
    df["weight"] = share / df.groupby("big")["code"].transform("size")
    return df.drop(columns="big")


def node_hours_from_catalogue(events: Any, hours_per_day: float) -> dict[str, float]:
    """The workflow nodes' limits for :func:`simulate` from an ``EventCatalogue`` (a city's node file as loaded):
    node → hours of working time (``working_days`` × ``hours_per_day``, the calendar's working day; a
    ``calendar_hours`` limit is kept as hours, as :func:`classes_from_catalogue` keeps a disposal limit). The
    limits before any dated change; the simulated cases are not urgent, so the urgent limits do not apply."""
    return {
        node: float(amount * hours_per_day if unit == "working_days" else amount)
        for node, (amount, unit) in events.node_limits.items()
    }


def _classes_frame(classes: pd.DataFrame | Sequence[str], departments: list[str]) -> pd.DataFrame:
    df = pd.DataFrame({"code": list(classes)}) if not isinstance(classes, pd.DataFrame) else classes.copy()
    if "department" not in df.columns:
        df["department"] = df["default_dept"] if "default_dept" in df.columns else None
    missing = df["department"].isna() | ~df["department"].isin(departments)
    df.loc[missing, "department"] = [departments[i % len(departments)] for i in range(int(missing.sum()))]
    if "weight" not in df.columns:
        df["weight"] = 1.0
    if "disposal_limit_h" not in df.columns:
        df["disposal_limit_h"] = 5 * 7.5
    if "disposal_type" not in df.columns:
        df["disposal_type"] = None  # the class's default limit
    if "hard" not in df.columns:  # plain codes: none is a 难点 class (classes_from_catalogue marks them)
        df["hard"] = False
    df["weight"] = df["weight"].astype(float) / df["weight"].sum()
    return df.reset_index(drop=True)


#: Characters of the fictitious people's names (demo staff, simulated 监督员).
SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶"
    "阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段雷钱汤尹黎易常武乔贺赖龚文"
)
GIVEN_NAME_CHARS = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红娥玲芬燕彬斌宇浩凯健俊帆帅旭宁亮晨辉鹏飞峰海波"
)


def person_names(n: int) -> np.ndarray:
    """``n`` distinct fictitious names (surname + two given characters), the i-th always the same: the
    evaluation tells 监督员 apart by name, so no two may share one (up to 100 × 50² of them)."""
    s, g = len(SURNAMES), len(GIVEN_NAME_CHARS)
    if n > s * g * g:
        raise InvalidInput(f"simulate: at most {s * g * g} distinct names", detail={"names": n})
    total = s * g * g
    # i → i × 104729 mod total is a bijection (104729 is a prime, coprime with 100 × 50²): names stay distinct,
    # and neighbours (one grid's crew) differ in every character.
    i = (np.arange(n, dtype=np.int64) + 1) * 104_729 % total
    a, b, c = i % s, (i // s) % g, (i // (s * g)) % g
    sur, given = np.array(list(SURNAMES), dtype=object), np.array(list(GIVEN_NAME_CHARS), dtype=object)
    return sur[a] + given[b] + given[c]


def _departments_frame(departments: pd.DataFrame | Sequence[str], rng: np.random.Generator) -> pd.DataFrame:
    df = departments.copy() if isinstance(departments, pd.DataFrame) else pd.DataFrame({"code": list(departments)})
    n = len(df)
    if n < 2:
        raise InvalidInput("simulate: at least two departments are needed", detail={"departments": n})
    drawn = {
        "on_time_rate": rng.uniform(0.72, 0.97, n),
        "return_rate": rng.uniform(0.01, 0.08, n),
        "rework_rate": rng.uniform(0.02, 0.10, n),
        "extension_rate": rng.uniform(0.02, 0.08, n),
        "suspend_rate": rng.uniform(0.005, 0.02, n),
    }
    for col, values in drawn.items():
        if col not in df.columns:
            df[col] = values
    return df.reset_index(drop=True)


# --------------------------------------------------------------------------------------- simulation


@contextmanager
def _no_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _without_gc(fn: Callable[P, R]) -> Callable[P, R]:
    """Run ``fn`` with the cyclic GC off: building a million dicts and lists would make it rescan them all, again
    and again (about a third of the run time); nothing here makes reference cycles."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with _no_gc():
            return fn(*args, **kwargs)

    return wrapper


@_without_gc
def simulate(  # noqa: PLR0915
    cells: pd.DataFrame,
    departments: pd.DataFrame | Sequence[str],
    classes: pd.DataFrame | Sequence[str],
    *,
    days: int,
    seed: int,
    start: Any,
    plant: Mapping[str, Sequence[str]] | None = None,
    rate: float = 0.05,
    node_hours: Mapping[str, float],
    calendar: WorkingCalendar | None = None,
    overload_cases: float = 60.0,
    route: Router | None = None,
) -> Simulation:
    """A history of ``days`` days from ``start`` (a date: local midnight) over ``cells`` (code, tier3_code,
    community_code, street_code, lon, lat). ``rate``: problems per unit grid per working day. ``node_hours``: each
    workflow node's limit in working hours (:func:`node_hours_from_catalogue` of the city's loaded catalogue), against
    which every node's duration is drawn. See the module docstring for the model, ``plant`` and ``route``."""
    for col in ("code", "tier3_code", "community_code", "street_code", "lon", "lat"):
        if col not in cells.columns:
            raise InvalidInput(f"cells: missing column {col!r}", detail={"column": col})
    if days <= 0:
        raise InvalidInput("simulate: days must be positive", detail={"days": days})
    plant = {k: list(v) for k, v in (plant or {}).items()}
    unknown = set(plant) - set(PLANTS)
    if unknown:
        raise InvalidInput(f"plant: unknown kinds {', '.join(sorted(unknown))}", detail={"known": list(PLANTS)})
    _check_plant(plant, cells)
    rng = np.random.default_rng(seed)
    calendar = calendar or WorkingCalendar()
    missing_nodes = [n for n in NODES if n not in node_hours]
    if missing_nodes:
        raise InvalidInput(
            f"simulate: node_hours lacks node(s) {', '.join(missing_nodes)}", detail={"missing": missing_nodes}
        )
    limits = {n: float(node_hours[n]) for n in NODES}
    start_ts = pd.Timestamp(start)
    start_ts = (start_ts.tz_localize(LOCAL_TZ_NAME) if start_ts.tzinfo is None else start_ts).normalize()
    end_ts = start_ts + pd.Timedelta(days=days)

    cells = cells.reset_index(drop=True)
    n_cells = len(cells)
    district = cells["district_code"] if "district_code" in cells.columns else cells["code"].str[:6]
    tier3_codes, tier3_idx = np.unique(cells["tier3_code"].to_numpy(dtype=str), return_inverse=True)
    street_codes, street_idx = np.unique(cells["street_code"].to_numpy(dtype=str), return_inverse=True)
    n_t3 = len(tier3_codes)

    deps = _departments_frame(departments, rng)
    dep_codes = deps["code"].astype(str).tolist()
    cls = _classes_frame(classes, dep_codes)
    cls_dep = cls["department"].map({c: i for i, c in enumerate(dep_codes)}).to_numpy(dtype=np.int64)
    cls_hard = cls["hard"].to_numpy(dtype=bool)

    # Places and people.
    factor = rng.gamma(4.0, 0.25, n_cells)
    components = rng.poisson(25.0 * factor)
    diligence = rng.lognormal(0.0, 0.15, n_t3)  # patrol
    civic = rng.lognormal(0.0, 0.20, n_t3)  # citizens
    first_day = start_ts.date()
    day_dates = [first_day + timedelta(days=d) for d in range(days)]
    working = np.array([calendar.is_working_day(d) for d in day_dates])
    day_factor = np.where(working, 1.0, 0.8)
    # Staffing on the normal load: ~2.7 grid-staff tasks per case (patrol report, 核实, 核查).
    t3_rate = np.bincount(tier3_idx, weights=factor * rate, minlength=n_t3) * day_factor.mean() * 30.4
    staff = np.clip(np.ceil(t3_rate * 2.7 / STAFF_TARGET_TASKS), 1, 12).astype(np.int64)
    staff_rate = rng.uniform(0.80, 0.98, n_t3 * 12).reshape(n_t3, 12)  # on-time propensity per member
    pools = {"intake": 8, "shift_lead": 6, "dispatcher": 6}
    pool_rate = {role: rng.uniform(0.85, 0.99, n) for role, n in pools.items()}

    planted = {k: list(dict.fromkeys(v)) for k, v in plant.items()}  # each code checked at its kind's level
    sel_t3 = np.isin(tier3_codes, planted.get("selective", []))
    over_t3 = np.isin(tier3_codes, planted.get("overload", []))
    esc_street = np.isin(street_codes, planted.get("escalation", []))
    paper_cell = cells["code"].isin(planted.get("paper_closure", [])).to_numpy()

    # Problems per (cell, day).
    lam = rate * factor[:, None] * day_factor[None, :]
    counts = rng.poisson(lam)
    cell_i, day_i = np.nonzero(counts)
    reps = counts[cell_i, day_i]
    cell_i, day_i = np.repeat(cell_i, reps), np.repeat(day_i, reps)
    cls_i = rng.choice(len(cls), size=len(cell_i), p=cls["weight"].to_numpy())
    extra = np.zeros(len(cell_i), dtype=bool)
    if over_t3.any():
        # 网格泛化: departments' own tasks, spread over every department's classes.
        per_cell_day = overload_cases * staff[tier3_idx] / np.bincount(tier3_idx, minlength=n_t3)[tier3_idx] / 30.4
        lam_x = np.where(over_t3[tier3_idx], per_cell_day, 0.0)[:, None] * np.ones(days)[None, :]
        cx = rng.poisson(lam_x)
        xi, xd = np.nonzero(cx)
        xr = cx[xi, xd]
        xi, xd = np.repeat(xi, xr), np.repeat(xd, xr)
        # A department first (uniform over those with classes), then one of its classes.
        by_dep = np.argsort(cls_dep, kind="stable")
        deps_with, first_cls, n_cls = np.unique(cls_dep[by_dep], return_index=True, return_counts=True)
        d = rng.integers(0, len(deps_with), len(xi))
        xc = by_dep[first_cls[d] + (rng.random(len(xi)) * n_cls[d]).astype(np.int64)]
        cell_i = np.r_[cell_i, xi]
        day_i = np.r_[day_i, xd]
        cls_i = np.r_[cls_i, xc]
        extra = np.r_[extra, np.ones(len(xi), dtype=bool)]
    n = len(cell_i)
    t3 = tier3_idx[cell_i]
    wk = working[day_i]
    p_patrol = 0.6 * diligence[t3] * np.where(wk, 1.0, 0.6)
    p_patrol = p_patrol / (p_patrol + 0.4 * civic[t3])
    patrol = rng.random(n) < p_patrol
    public_kind = np.where(rng.random(n) < 0.7, "hotline", "public_app")
    source = np.where(patrol, "patrol", public_kind).astype(object)
    delay_days = np.zeros(n)
    keep = np.ones(n, dtype=bool)
    if sel_t3.any():
        sel = patrol & sel_t3[t3]
        keep_p = np.where(cls_hard[cls_i], 0.03, 0.35)
        dropped = sel & (rng.random(n) >= keep_p)
        to_public = dropped & (rng.random(n) < 0.4)
        source[to_public] = public_kind[to_public]
        delay_days[to_public] = rng.uniform(0, 3, int(to_public.sum()))
        keep &= ~(dropped & ~to_public)
    cell_i, day_i, cls_i = cell_i[keep], day_i[keep], cls_i[keep]
    source, delay_days, extra = source[keep], delay_days[keep], extra[keep]
    n = len(cell_i)
    is_patrol = source == "patrol"
    hour = np.where(is_patrol, rng.uniform(8.5, 17.5, n), rng.uniform(7.0, 22.0, n))
    local = (
        start_ts.tz_localize(None)
        + pd.to_timedelta(day_i, unit="D")
        + pd.to_timedelta(np.round((hour + 24 * delay_days) * 3600e6).astype(np.int64), unit="us")
    )
    reported = pd.DatetimeIndex(local).tz_localize(calendar.tz)
    base = pd.DataFrame(
        {
            "cell": cell_i,
            "cls": cls_i,
            "source": source,
            "created_at": reported,
            "lon": cells["lon"].to_numpy()[cell_i] + rng.uniform(-4.5e-4, 4.5e-4, n),
            "lat": cells["lat"].to_numpy()[cell_i] + rng.uniform(-4.5e-4, 4.5e-4, n),
        }
    )
    base = base[base["created_at"] < end_ts].reset_index(drop=True)

    clock = WorkClock(calendar, first_day - timedelta(days=3), (end_ts + pd.Timedelta(days=60)).date())
    ctx = _Context(
        rng=rng,
        clock=clock,
        end_pos=float(clock.position(pd.DatetimeIndex([end_ts]))[0]),
        limits=limits,
        deps=deps,
        dep_codes=dep_codes,
        dep_names=deps["name"].astype(str).tolist() if "name" in deps.columns else dep_codes,
        cls=cls,
        cls_dep=cls_dep,
        staff=staff,
        staff_rate=staff_rate,
        pool_rate=pool_rate,
        pool_names={
            role: np.array([f"{label}{k + 1:02d}" for k in range(pools[role])], dtype=object)
            for role, label in (("intake", "受理员"), ("shift_lead", "值班长"), ("dispatcher", "派遣员"))
        },
        staff_names=person_names(n_t3 * 12).reshape(n_t3, 12),
        tier3_idx=tier3_idx,
        tier3_codes=tier3_codes,
        esc_street=esc_street[street_idx],
    )
    base = _routed(base, cells, district, ctx, route)
    ev1, close1 = _workflow(base, ctx)
    base = _record_dispatches(base, ev1, ctx)

    # Recurrence: the same problem reported again at the same place after closure. A paper-closed problem keeps
    # coming back (up to three generations); a natural recurrence happens once.
    passes, pass_events = [base], [ev1]
    prev, prev_close = base, close1
    for generation in range(3):
        closed = np.flatnonzero(~np.isnan(prev_close))
        paper = paper_cell[prev["cell"].to_numpy()[closed]]
        p_again = np.where(paper, 0.60, 0.02 if generation == 0 else 0.0)
        again = closed[rng.random(len(closed)) < p_again]
        paper = paper_cell[prev["cell"].to_numpy()[again]]
        lag_days = np.where(paper, rng.uniform(0.3, 6.0, len(again)), rng.uniform(1.0, 45.0, len(again)))
        closed_at = clock.instant(prev_close[again])
        nxt = pd.DataFrame(
            {
                "cell": prev["cell"].to_numpy()[again],
                "cls": prev["cls"].to_numpy()[again],
                "source": np.where(rng.random(len(again)) < 0.5, "patrol", "hotline").astype(object),
                "created_at": closed_at + pd.to_timedelta(np.round(lag_days * 86400e6).astype(np.int64), unit="us"),
                "lon": prev["lon"].to_numpy()[again] + rng.normal(0, 5e-5, len(again)),
                "lat": prev["lat"].to_numpy()[again] + rng.normal(0, 5e-5, len(again)),
            }
        )
        nxt = nxt[nxt["created_at"] < end_ts].reset_index(drop=True)
        if nxt.empty:
            break
        nxt = _routed(nxt, cells, district, ctx, route)
        ev_n, close_n = _workflow(nxt, ctx)
        nxt = _record_dispatches(nxt, ev_n, ctx)
        passes.append(nxt)
        pass_events.append(ev_n)
        prev, prev_close = nxt, close_n

    cases, transitions = _assemble(cells, district, passes, pass_events, ctx)
    truth = {k: sorted(planted.get(k, [])) for k in PLANTS}
    return Simulation(
        cases=cases,
        transitions=transitions,
        truth=truth,
        staff=pd.DataFrame({"tier3_code": tier3_codes.astype(object), "staff": staff}),
        components=pd.DataFrame({"unit_grid_code": cells["code"].to_numpy(), "components": components}),
        departments=deps,
        params={"days": days, "seed": seed, "start": start_ts, "end": end_ts, "rate": rate},
    )


#: Case columns a router adds (besides the department, which the workflow takes).
ROUTED_COLUMNS = ("routing", "component_id", "component_distance_m")


def _routed(p: pd.DataFrame, cells: pd.DataFrame, district: Any, ctx: _Context, route: Router | None) -> pd.DataFrame:
    """The pass's reports with the router's department (``route_dep``: index into the departments, -1 for none
    or one not simulated) and its case columns."""
    if route is None or p.empty:
        return p
    cell = p["cell"].to_numpy()
    asked = pd.DataFrame(
        {
            "unit_grid_code": cells["code"].to_numpy()[cell],
            "district_code": np.asarray(district)[cell],
            "street_code": cells["street_code"].to_numpy()[cell],
            "community_code": cells["community_code"].to_numpy()[cell],
            "tier3_code": cells["tier3_code"].to_numpy()[cell],
            "class_code": ctx.cls["code"].to_numpy()[p["cls"].to_numpy()],
            "created_at": p["created_at"].array,
            "lon": p["lon"].to_numpy(),
            "lat": p["lat"].to_numpy(),
        },
        index=p.index,
    )
    routed = route(asked)
    out = p.copy()
    index = {code: i for i, code in enumerate(ctx.dep_codes)}
    out["route_dep"] = np.fromiter((index.get(d, -1) for d in routed["department"]), np.int64, len(p))
    for col in ROUTED_COLUMNS:
        if col in routed.columns:
            out[col] = routed[col].to_numpy()
    return out


def _record_dispatches(p: pd.DataFrame, events: dict[str, np.ndarray], ctx: _Context) -> pd.DataFrame:
    """Each 派遣 of a routed case recorded as the live 派遣 records it (:func:`gisgrid.routing.dispatch_choice`):
    the step names its basis (``routing_basis``, ``override_index``), and a dispatch to another department than the
    routing's — a 改派 with its written reason, 人工派遣 of a case left to a person, the re-dispatch after 回退 —
    is kept in the case's decision, so its 交办单 prints that dispatch's own 派遣依据. Returns ``p`` with each
    case's decision as of the history end (the step details are completed in place)."""
    if "routing" not in p.columns or not len(events["case"]):
        return p
    from gisgrid.cases import decision_from_json, decision_json  # the stored shape, as intake and 派遣 write it
    from gisgrid.routing import dispatch_choice

    rows = np.flatnonzero(events["action"] == _ACTIONS.index("dispatch"))
    rows = rows[np.lexsort((events["step"][rows], events["pos"][rows], events["case"][rows]))]
    docs = p["routing"].to_numpy()
    # A dispatch as suggested of a decision the routing made alone leaves the decision as it is (the fast path).
    plain = np.fromiter(
        (
            bool(doc)
            and (d := doc.get("decision") or {}).get("queue") == "auto"
            and d.get("source") not in ("override", "dispatcher")
            and not d.get("original")
            and not d.get("overrides")
            and d.get("department") == dept
            for doc, dept in zip(docs[events["case"][rows]], events["department"][rows], strict=True)
        ),
        bool,
        len(rows),
    )
    chosen = np.unique(events["case"][rows[~plain]])
    for row in rows[~np.isin(events["case"][rows], chosen)]:
        if docs[events["case"][row]]:
            events["details"][row]["routing_basis"] = "routing"
    rows = rows[np.isin(events["case"][rows], chosen)]
    if not len(rows):
        return p
    ats = ctx.clock.instant(events["pos"][rows]).as_unit("us").tz_convert(LOCAL_TZ).to_pydatetime()
    # Checked and named as the live 派遣 does (code → name; the codes alone when the departments have no names).
    names: Mapping[str, str] | list[str] = (
        dict(zip(ctx.dep_codes, ctx.dep_names, strict=True)) if "name" in ctx.deps.columns else ctx.dep_codes
    )
    decisions: dict[int, Any] = {}
    for row, at in zip(rows, ats, strict=True):
        case = int(events["case"][row])
        if not docs[case]:
            continue
        details = events["details"][row]
        decided = decisions.get(case) or decision_from_json(docs[case]["decision"])
        decisions[case], basis = dispatch_choice(
            decided, details["department"], events["actor"][row], at, details.get("reason"), departments=names
        )
        details.update(basis)
    out = p.copy()
    routed = out["routing"].to_numpy().copy()
    for case, decision in decisions.items():
        routed[case] = {**routed[case], "decision": decision_json(decision)}
    out["routing"] = routed
    return out


def _check_plant(plant: Mapping[str, Sequence[str]], cells: pd.DataFrame) -> None:
    """Refuse every planted code that is not a loaded code of its kind's level, all at once; a code of another
    level is named as such (``escalation=41990100100101`` is a tier-3 grid, not a street)."""
    known = {col: set(cells[col].dropna()) for col, _ in PLANT_LEVELS.values()}
    problems: list[dict[str, str]] = []
    for kind, codes in plant.items():
        col, level = PLANT_LEVELS[kind]
        for code in codes:
            if code in known[col]:
                continue
            other = next((lv for c, lv in PLANT_LEVELS.values() if c != col and code in known[c]), None)
            why = f"a {other} code, not a {level} code" if other else f"not a loaded {level} code"
            problems.append({"field": "plant", "kind": kind, "value": code, "reason": why})
    if problems:
        text_ = "; ".join(f"{p['kind']}={p['value']}: {p['reason']}" for p in problems)
        needs = ", ".join(f"{k} takes {lv} codes" for k, (_, lv) in PLANT_LEVELS.items())
        raise InvalidInput(f"plant: {text_} ({needs})", detail=problems)


@dataclass
class _Context:
    rng: np.random.Generator
    clock: WorkClock
    end_pos: float
    limits: dict[str, float]
    deps: pd.DataFrame
    dep_names: list[str]
    dep_codes: list[str]
    cls: pd.DataFrame
    cls_dep: np.ndarray
    staff: np.ndarray
    staff_rate: np.ndarray
    pool_rate: dict[str, np.ndarray]
    pool_names: dict[str, np.ndarray]
    staff_names: np.ndarray
    tier3_idx: np.ndarray
    tier3_codes: np.ndarray
    esc_street: np.ndarray


class _Events:
    """Event rows of one pass, collected per workflow step (one action per part, so its details, effects and
    to-state are built in one go); events after the history end are dropped here, reports never."""

    def __init__(self, end_pos: float, clock: WorkClock) -> None:
        self.end_pos = end_pos
        self.clock = clock
        self.parts: list[dict[str, Any]] = []

    def add(
        self,
        case: np.ndarray,
        step: int,
        action: str,
        pos: np.ndarray,
        actor: Any,
        role: Any,
        *,
        dept: Any = None,
        **details: Any,
    ) -> None:
        keep = np.ones(len(case), dtype=bool) if action == "report" else np.asarray(pos) < self.end_pos
        m = int(keep.sum())
        if m == 0:
            return

        def column(v: Any) -> np.ndarray:
            if isinstance(v, np.ndarray):
                return v.astype(object)[keep]
            arr = np.empty(m, dtype=object)
            arr[:] = [list(v) for _ in range(m)] if isinstance(v, list) else [v] * m
            return arr

        fields = {k: column(v) for k, v in details.items()}
        if action == "approve_extension":
            due = self.clock.instant(fields.pop("new_due_pos").astype(np.float64))
            fields["new_due_at"] = np.array([ts.isoformat() for ts in due], dtype=object)
            fields["extended_by"] = np.full(m, EXTENDED_BY_DATE, dtype=object)  # granted to a date, as recorded
        det = np.empty(m, dtype=object)
        det[:] = _dicts(fields, m)
        effects = list(TRANSITIONS[action].effects) if action in TRANSITIONS else []
        if action == "dispatch" and "returned_by" in fields:
            effects.append("record_misdispatch")  # 错误派遣: a second department got the case
        eff = np.empty(m, dtype=object)
        eff[:] = [effects.copy() for _ in range(m)]
        self.parts.append(
            {
                "case": np.asarray(case)[keep],
                "step": np.full(m, step),
                "pos": np.asarray(pos, dtype=np.float64)[keep],
                "action": np.full(m, _ACTIONS.index(action)),
                "actor": column(actor),
                "role": column(role),
                "department": column(dept),
                "details": det,
                "effects": eff,
            }
        )

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate([part[k] for part in self.parts]) for k in self.parts[0]}


def _workflow(p: pd.DataFrame, ctx: _Context) -> tuple[dict[str, np.ndarray], np.ndarray]:  # noqa: PLR0915
    """Events (working positions) of every case in ``p``; returns them and each case's close position (NaN)."""
    rng, lim = ctx.rng, ctx.limits
    n = len(p)
    ev = _Events(ctx.end_pos, ctx.clock)
    idx = np.arange(n)
    cell = p["cell"].to_numpy()
    t3 = ctx.tier3_idx[cell]
    hours = ctx.cls["disposal_limit_h"].to_numpy(dtype=float)[p["cls"].to_numpy()]
    good_dep = ctx.cls_dep[p["cls"].to_numpy()]
    if "route_dep" in p.columns:  # where intake's routing sends it (人工派遣: the class's department)
        routed = p["route_dep"].to_numpy()
        good_dep = np.where(routed >= 0, routed, good_dep)
    dep = ctx.deps

    def pick(role: str, m: int) -> tuple[np.ndarray, np.ndarray]:
        k = rng.integers(0, len(ctx.pool_rate[role]), m)
        return ctx.pool_names[role][k], ctx.pool_rate[role][k]

    def member(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = (rng.random(len(rows)) * ctx.staff[t3[rows]]).astype(np.int64)
        return ctx.staff_names[t3[rows], k], ctx.staff_rate[t3[rows], k]

    def duration(limit_h: np.ndarray | float, on_time_p: np.ndarray) -> np.ndarray:
        m = len(on_time_p)
        on = rng.random(m) < on_time_p
        frac = np.where(on, rng.uniform(0.05, 0.95, m), rng.uniform(1.05, 2.5, m))
        return np.round(np.asarray(limit_h) * frac * _US_HOUR)

    pos0 = ctx.clock.position(pd.DatetimeIndex(p["created_at"]))
    src = p["source"].to_numpy()
    patrol = src == "patrol"
    rep_actor = np.where(src == "hotline", "12345热线", "公众APP").astype(object)
    rep_role = src.copy()
    if patrol.any():
        rep_actor[patrol], _ = member(idx[patrol])
        rep_role[patrol] = "supervisor"
    ev.add(idx, 0, "report", pos0, rep_actor, rep_role, source=src)

    # 受理: reject at intake, or 发核实.
    actor, r = pick("intake", n)
    p1 = pos0 + duration(lim["accept"], r)
    rej1 = rng.random(n) < 0.025
    ev.add(idx[rej1], 1, "reject", p1[rej1], actor[rej1], "intake", reason="不属于立案范围")
    go = idx[~rej1]
    ev.add(go, 1, "request_verify", p1[go], actor[go], "intake")
    actor, r = member(go)
    p2 = p1.copy()
    p2[go] = p1[go] + duration(lim["verify"], r)
    ev.add(go, 2, "verify", p2[go], actor, "supervisor")

    # 立案 / 不予立案 / 作废 (duplicate).
    actor, r = pick("shift_lead", n)
    p3 = p2 + duration(lim["file"], r)
    u = rng.random(n)
    rej2 = ~rej1 & (u < 0.02)
    void = ~rej1 & (u >= 0.02) & (u < 0.04)
    filed = ~rej1 & ~rej2 & ~void
    ev.add(idx[rej2], 3, "reject", p3[rej2], actor[rej2], "shift_lead", reason="现场核实不符合立案条件")
    ev.add(idx[void], 3, "void", p3[void], actor[void], "shift_lead", reason="重复上报")
    ev.add(idx[filed], 3, "file", p3[filed], actor[filed], "shift_lead")
    f = idx[filed]
    # A duplicate noticed only after filing: 作废 from 立案 (it lowers the 值班长's 准确立案率).
    late = rng.random(len(f)) < 0.01
    actor, _ = pick("shift_lead", len(f))
    ev.add(f[late], 4, "void", (p3[f] + rng.uniform(0.1, 0.4, len(f)) * _US_HOUR)[late], actor[late], "shift_lead",
           reason="立案后发现重复")  # fmt: skip
    f = f[~late]

    # 提级 (escalation) after filing: base rare, planted streets often and long at tier 1.
    planted = ctx.esc_street[cell[f]]
    u = rng.random(len(f))
    to1 = np.where(planted, u < 0.35, u < 0.008)
    to2 = to1 | (~planted & (u < 0.038))
    actor, _ = pick("dispatcher", len(f))
    e1 = p3[f] + 0.2 * _US_HOUR
    ev.add(f[to2], 4, "escalate", e1[to2], actor[to2], "dispatcher", reason="需社区协调", from_level=3, to_level=2)
    e2 = e1 + rng.uniform(2, 16, len(f)) * _US_HOUR
    ev.add(f[to1], 5, "escalate", e2[to1], actor[to1], "dispatcher", reason="需街道协调", from_level=2, to_level=1)
    wait = np.where(to1, np.where(planted, rng.uniform(20, 90, len(f)), rng.uniform(2, 20, len(f))), 0.0)
    ready = np.where(to1, e2, np.where(to2, e1 + rng.uniform(1, 8, len(f)) * _US_HOUR, p3[f])) + wait * _US_HOUR

    # 派遣, possibly to a wrong department first (回退 and re-dispatch).
    actor, r = pick("dispatcher", len(f))
    p4 = ready + duration(lim["dispatch"], r)
    gd = good_dep[f]
    wrong = rng.random(len(f)) < dep["return_rate"].to_numpy()[gd]
    other = (gd + rng.integers(1, len(ctx.dep_codes), len(f))) % len(ctx.dep_codes)
    first = np.where(wrong, other, gd)
    codes = np.array(ctx.dep_codes, dtype=object)
    signers = np.array(ctx.dep_names, dtype=object)  # a department's steps are signed by its name
    w = wrong
    ev.add(f[~w], 6, "dispatch", p4[~w], actor[~w], "dispatcher", dept=codes[gd[~w]], department=codes[gd[~w]])
    # A dispatcher's 改派 against the routing, with the reason written (recorded as one: _record_dispatches).
    why = OVERRIDE_REASONS[f[w] % len(OVERRIDE_REASONS)]
    ev.add(f[w], 6, "dispatch", p4[w], actor[w], "dispatcher", dept=codes[other[w]], department=codes[other[w]],
           reason=why)  # fmt: skip
    p_ret = p4 + rng.uniform(0.5, 6.0, len(f)) * _US_HOUR
    ev.add(f[w], 7, "return", p_ret[w], signers[first[w]], "department", reason="非本单位职责")
    actor2, r2 = pick("dispatcher", len(f))
    p5 = np.where(w, p_ret + duration(lim["dispatch"], r2), p4)
    ev.add(f[w], 8, "dispatch", p5[w], actor2[w], "dispatcher", dept=codes[gd[w]], department=codes[gd[w]],
           returned_by=codes[first[w]])  # fmt: skip

    # 处置 with 延期 and 挂账/缓办.
    q = dep["on_time_rate"].to_numpy()[gd]
    L = hours[f] * _US_HOUR
    ext = rng.random(len(f)) < dep["extension_rate"].to_numpy()[gd]
    allowed = np.where(ext, 2 * L, L)
    on = rng.random(len(f)) < q
    dur = np.round(allowed * np.where(on, rng.uniform(0.05, 0.95, len(f)), rng.uniform(1.05, 2.5, len(f))))
    dep_actor = signers[gd]
    # The request comes 0.2 × dur < 0.2 × 2L × 2.5 = L working time after the 派遣: within the disposal limit, as the
    # live service requires (a 延期申请 after the deadline is refused: node_clock.refuse_late_extension_request).
    ev.add(f[ext], 9, "request_extension", (p5 + 0.2 * dur)[ext], dep_actor[ext], "department", reason="需协调施工")
    actor, _ = pick("dispatcher", len(f))
    ev.add(f[ext], 10, "approve_extension", (p5 + 0.25 * dur)[ext], actor[ext], "dispatcher",
           new_due_pos=(p5 + 2 * L)[ext])  # fmt: skip
    susp = rng.random(len(f)) < dep["suspend_rate"].to_numpy()[gd]
    deferred = susp & (rng.random(len(f)) < 0.3)
    resumed = susp & (rng.random(len(f)) < 0.5)
    s_len = np.where(susp, rng.uniform(20, 300, len(f)) * _US_HOUR, 0.0)
    ps = p5 + 0.3 * dur
    ev.add(f[susp], 11, "suspend", ps[susp], actor[susp], "dispatcher",
           reason=np.where(deferred[susp], "缓办：待季节施工", "挂账：需专项资金"),
           kind=np.where(deferred[susp], "deferred", "suspended"))  # fmt: skip
    lead, _ = pick("shift_lead", len(f))
    ev.add(f[resumed], 12, "resume", (ps + s_len)[resumed], lead[resumed], "shift_lead")
    live = ~susp | resumed
    p6 = p5 + dur + s_len
    ev.add(f[live], 13, "handle", p6[live], dep_actor[live], "department", result="已处置", after_photo=["after.jpg"])

    # 核查 / 返工 / 结案.
    actor, r = pick("intake", len(f))
    p7 = p6 + duration(lim["accept"], r)
    ev.add(f[live], 14, "request_check", p7[live], actor[live], "intake")
    sup, r = member(f)
    p8 = p7 + duration(lim["check"], r)
    rework = live & (rng.random(len(f)) < dep["rework_rate"].to_numpy()[gd])
    ev.add(f[rework], 15, "rework", p8[rework], sup[rework], "supervisor", dept=codes[gd[rework]],
           reason="核查未通过", department=codes[gd[rework]], rework_count=1)  # fmt: skip
    dur2 = duration(hours[f], q)
    p9 = p8 + dur2
    ev.add(f[rework], 16, "handle", p9[rework], dep_actor[rework], "department", result="返工已处置",
           after_photo=["after.jpg"])  # fmt: skip
    actor, r = pick("intake", len(f))
    p10 = p9 + duration(lim["accept"], r)
    ev.add(f[rework], 17, "request_check", p10[rework], actor[rework], "intake")
    sup2, r = member(f)
    p11 = p10 + duration(lim["check"], r)
    ev.add(f[rework], 18, "check", p11[rework], sup2[rework], "supervisor")
    ok = live & ~rework
    ev.add(f[ok], 15, "check", p8[ok], sup[ok], "supervisor")
    checked_at = np.where(rework, p11, p8)
    actor, r = pick("shift_lead", len(f))
    p12 = checked_at + duration(lim["close"], r)
    ev.add(f[live], 19, "close", p12[live], actor[live], "shift_lead")

    close_pos = np.full(n, np.nan)
    close_pos[f[live]] = p12[live]
    close_pos[close_pos >= ctx.end_pos] = np.nan
    return ev.arrays(), close_pos


def _assemble(
    cells: pd.DataFrame,
    district: pd.Series,
    problems: list[pd.DataFrame],
    events: list[dict[str, np.ndarray]],
    ctx: _Context,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    p = pd.concat(problems, ignore_index=True)
    offsets = np.cumsum([0] + [len(x) for x in problems[:-1]])
    e = {k: np.concatenate([ev[k] for ev in events]) for k in events[0]}
    e["case"] = np.concatenate([ev["case"] + off for ev, off in zip(events, offsets, strict=True)])

    # Case ids in report order; events sorted by case, time, step.
    created = pd.DatetimeIndex(p["created_at"])
    order = np.argsort(created.asi8, kind="stable")
    new_id = np.empty(len(p), dtype=np.int64)
    new_id[order] = np.arange(1, len(p) + 1)
    p = p.iloc[order].reset_index(drop=True)
    created = created[order]
    case_id = new_id[e["case"]]
    pos = e["pos"].astype(np.float64)
    perm = np.lexsort((e["step"].astype(np.int64), pos, case_id))
    e = {k: v[perm] for k, v in e.items()}
    case_id, pos = case_id[perm], pos[perm]
    n = len(case_id)
    start = np.r_[True, case_id[1:] != case_id[:-1]]
    first = np.maximum.accumulate(np.where(start, np.arange(n), 0))

    def ffill(values: np.ndarray) -> np.ndarray:
        """Forward fill within a case (a case's first row keeps its own value)."""
        valid = start | (pd.isna(values) == False)  # noqa: E712
        return values[np.maximum.accumulate(np.where(valid, np.arange(n), 0))]

    # Working positions → instants; a report keeps its own time (it may fall outside working hours).
    action = _ACTION_NAMES[e["action"]]
    is_report = e["action"] == _ACTIONS.index("report")
    at = ctx.clock.instant(pos).as_unit("us").asi8.copy()  # UTC µs
    at[is_report] = created.as_unit("us").asi8[case_id[is_report] - 1]
    at_idx = pd.DatetimeIndex(at.view("datetime64[us]")).tz_localize("UTC").tz_convert(ctx.clock.tz)
    to_state = ffill(_TO_STATES[e["action"]])
    from_state = np.where(start, None, np.r_[None, to_state[:-1]])
    department = ffill(e["department"])
    version = np.arange(n) - first + 1
    transitions = pd.DataFrame(
        {
            "id": np.arange(1, n + 1),
            "case_id": case_id,
            "action": action,
            "from_state": from_state,
            "to_state": to_state,
            "actor": e["actor"],
            "role": e["role"],
            "at": at_idx,
            "department_code": department,
            "details": e["details"],
            "effects": e["effects"],
            "version": version,
        }
    )

    # Cases: state and the counters as of the history end.
    last = np.r_[start[1:], True]
    state = np.full(len(p), "reported", dtype=object)
    state[case_id[last] - 1] = to_state[last]
    terminal = np.isin(state, ("closed", "rejected", "voided"))
    closed_us = np.full(len(p), np.iinfo(np.int64).min)
    closed_us[case_id[last] - 1] = at[last]
    closed_at = pd.DatetimeIndex(closed_us.view("datetime64[us]")).tz_localize("UTC").tz_convert(ctx.clock.tz)
    closed_at = closed_at.where(terminal, pd.NaT)
    dep_now = np.full(len(p), None, dtype=object)
    dep_now[case_id[last] - 1] = department[last]
    rework_count = np.bincount(case_id[e["action"] == _ACTIONS.index("rework")] - 1, minlength=len(p))
    escalations = np.bincount(case_id[e["action"] == _ACTIONS.index("escalate")] - 1, minlength=len(p))
    reporter = np.full(len(p), None, dtype=object)
    reporter_role = np.full(len(p), None, dtype=object)
    reporter[case_id[is_report] - 1] = e["actor"][is_report]
    reporter_role[case_id[is_report] - 1] = e["role"][is_report]
    cell = p["cell"].to_numpy()
    cls_rows = p["cls"].to_numpy()
    year = created.year.to_numpy()
    seq = pd.Series(year).groupby(year).cumcount().to_numpy() + 1
    cases = pd.DataFrame(
        {
            "id": np.arange(1, len(p) + 1),
            "case_no": (pd.Series(year).astype(str) + pd.Series(seq).astype(str).str.zfill(6)).to_numpy(),
            "scheme": "gbt47678",
            "class_code": ctx.cls["code"].to_numpy()[cls_rows],
            "disposal_type": ctx.cls["disposal_type"].to_numpy()[cls_rows],
            "urgent": False,
            "state": state,
            "source": p["source"].to_numpy(),
            "reporter": reporter,
            "reporter_role": reporter_role,
            "unit_grid_code": cells["code"].to_numpy()[cell],
            "district_code": np.asarray(district)[cell],
            "street_code": cells["street_code"].to_numpy()[cell],
            "community_code": cells["community_code"].to_numpy()[cell],
            "tier3_code": cells["tier3_code"].to_numpy()[cell],
            "department_code": dep_now,
            # numpy's stubs take no None scalar (np.where makes an object array of it)
            "previous_state": np.where(state == "suspended", "dispatched", None),  # type: ignore[call-overload]
            "rework_count": rework_count,
            "escalation_level": 3 - escalations,
            "disposal_limit_h": ctx.cls["disposal_limit_h"].to_numpy(dtype=float)[cls_rows],
            "created_at": created,
            "closed_at": closed_at,
            "lon": p["lon"].to_numpy(),
            "lat": p["lat"].to_numpy(),
        }
    )
    for col in ROUTED_COLUMNS:
        if col in p.columns:
            cases[col] = p[col].to_numpy()
    # Voided duplicates point at the previous case of the same class in the same unit grid.
    prev = cases.groupby(["unit_grid_code", "class_code"])["id"].shift(1)
    cases["duplicate_of"] = prev.where(cases["state"] == "voided").astype("Int64")
    return cases, transitions
