"""Performance evaluation (综合评价): indicators, composite scores and grades per period — pure, no database.

Subjects (standards notes §5): regions (区域: unit grid, tier-3/2/1 grid = 网格/社区/街道, district), departments
(专业部门) and posts (岗位: 监督员 supervisor — also used for 网格员 grid_worker —, 受理员 intake, 值班长 shift_lead,
派遣员 dispatcher). Inputs are DataFrames shaped like the tables ``cases`` and ``case_transitions``
(:mod:`gisgrid.cases`), a :class:`~gisgrid.calendar.WorkingCalendar` and the node time limits.

Which cases, which transitions
    A case belongs to a period by its **report time** (``created_at``): a case never moves between periods, so a
    published month stays comparable; later actions only complete it. Facts are taken **as of** ``as_of``
    (default: the period end): only transitions strictly before ``as_of`` count and the state at ``as_of`` is the
    ``to_state`` of the last of them. Final monthly figures are usually computed with a later ``as_of`` (e.g. a few
    working days after the period) so that cases reported on the last day can finish; ``as_of`` ≥ period end.

Nodes and "on time" (按时/按期)
    A node instance opens at the transition that started it and closes at the one that ended it (table below,
    :data:`NODES`). When several openers come before the closer, the last one counts (a re-issued task restarts
    the node); a cancelling action (作废, 不予立案, 回退 …) ends the node without counting it. Elapsed time is the
    working time (``WorkingCalendar``: holidays and off-hours do not count; a node spanning a holiday is on time
    when its working time is within the limit) between open and close **minus the time the case was suspended
    (挂账/缓办) in between** (挂账 stops the clock, as in :mod:`gisgrid.cases`). On time ⇔ elapsed ≤ limit,
    compared in whole microseconds. A node still open at ``as_of`` counts in a denominator only when already
    overdue and the case is not suspended then; such a node has no actor, so it counts for regions and
    departments, not for posts (posts are credited with the nodes they closed).

    ===========  ===============================  ==================  =====================  =================
    node         opened by                        closed by           cancelled by           limit
    ===========  ===============================  ==================  =====================  =================
    accept       report                           request_verify      reject, void, verify   ``accept`` (受理)
    verify       report, request_verify           verify              reject, void           ``verify``
    file         verify                           file                reject, void           ``file``
    dispatch     file, return                     dispatch            void                   ``dispatch``
    disposal     dispatch, rework                 handle              return                 case column
    issue_check  handle                           request_check       check, rework          ``accept``
    check        handle, request_check            check, rework       —                      ``check``
    close        check                            close               —                      ``close``
    ===========  ===============================  ==================  =====================  =================

    ``node_limits``: node → hours (a float, working hours) or ``(limit, unit)`` as in
    ``EventCatalogue.node_limits`` (``working_hours``, ``working_days`` = limit × the calendar's hours per day,
    ``calendar_hours`` = plain elapsed time). ``issue_check`` (受理员发核查) defaults to the ``accept`` limit.
    The disposal limit (处置时限) is per case: column ``disposal_limit_h`` in **working hours** (the caller looks
    it up in the event catalogue for the case's class and disposal type); an optional column
    ``disposal_limit_unit`` = ``calendar_hours`` marks 紧急 limits counted in plain hours. A case without a limit
    is left out of 按期处置. An approved extension (延期批准, details ``new_due_at``) moves the allowed time to the
    new deadline: allowed = working time from the dispatch to ``new_due_at`` minus the suspended time before the
    approval (the resumed clock had already moved the deadline by that much).

挂账 and 缓办
    Both are the workflow state ``suspended``; a suspension whose details carry ``kind = "deferred"`` (or whose
    reason mentions 缓办) is 缓办, any other is 挂账. A case suspended **at** ``as_of`` leaves 应结案数 (and, through
    it, 结案率, 按期结案率 and 返工率) and its open nodes leave every on-time denominator (Jinhua subtracts 缓办数 from
    应结案数, notes §4). Counts: 挂账数 ``suspended``, 缓办数 ``deferred``.

Indicators (column — label — formula; rates are 0–1, ``*_score`` columns 0–100; an empty denominator gives NaN)

    ==========================  ==========  ==================================================================
    column                      label       formula
    ==========================  ==========  ==================================================================
    reports                     上报数      cases reported in the period (posts: reported by the actor)
    valid_reports               有效上报数  reported, filed (立案) and not voided (作废) as of ``as_of``
    valid_report_rate           有效上报率  valid_reports / reports
    filed                       立案数      reported cases with a ``file`` transition
    filing_rate                 立案率      filed / reports
    public_filed                监督举报核实数  filed cases from the public (source hotline, public_app)
    public_report_rate          监督举报率  public_filed / filed (lower is better: the public found it first)
    on_time_verify_rate         按时核实率  on-time ``verify`` nodes / counted ``verify`` nodes
    on_time_check_rate          按时核查率  on-time ``check`` nodes / counted ``check`` nodes
    on_time_dispatch_rate       按时派遣率  on-time ``dispatch`` nodes / counted ``dispatch`` nodes
    dispatched                  派遣案件数  cases dispatched at least once
    accurate_dispatch_rate      准确派遣率  dispatched cases never returned (回退) nor re-dispatched to another
                                            department (``record_misdispatch``) / dispatched
    to_dispose                  应处置数    counted ``disposal`` nodes (one per 交办单: dispatch or rework)
    handled                     处置数      ``disposal`` nodes closed by ``handle``
    on_time_disposal_rate       按期处置率  on-time ``disposal`` nodes / to_dispose
    to_close                    应结案数    filed − voided after filing − 挂账 at as_of − 缓办 at as_of
    closed                      结案数      to_close cases in state ``closed``
    closure_rate                结案率      closed / to_close
    on_time_closure_rate        按期结案率  closed cases whose every disposal node was on time / to_close
    reworked                    返工数      to_close cases with at least one ``rework``
    rework_rate                 返工率      reworked / to_close (Chengdu Jinniu)
    extended                    延期数      cases with an approved extension (延期批准)
    suspended / deferred        挂账数/缓办数  cases in ``suspended`` at as_of, 挂账 / 缓办
    ==========================  ==========  ==================================================================

Subject-specific rows
    * Regions (``level``: unit_grid, tier3, tier2 = community, tier1 = street, district) — cases by location.
      filed_per_grid_month = filed / unit grids of the region / months → filed_score (立案数分值, ours).
    * Departments — a case is the department's when it was last dispatched to it (``department_code`` of the last
      ``dispatch``); disposal nodes belong to the department they were dispatched to. dispatched = cases
      dispatched to it at least once, returned (回退数) = cases it returned; filed_per_month → filed_score;
      reworked / extended count reworks and extensions while the case was with the department.
    * supervisor / grid_worker — reports by the report's actor (role supervisor/grid_worker), on-time
      verify/check nodes closed by the actor. 漏报数 missed_reports = filed public reports (hotline, public_app)
      in the actor's area, missed_report_rate = missed_reports / filed cases in the area. The area comes from
      ``areas`` (actor, tier3_code); without it, each actor's area is the tier-3 grid of most of its reports.
    * intake — accepted (受理数) = distinct cases the actor issued 发核实 to or rejected; on_time_issue_verify_rate
      (核实按时派发率) = ``accept`` nodes, on_time_issue_check_rate (核查按时派发率) = ``issue_check`` nodes.
    * shift_lead — filed by the actor, voided = of those voided later, accurate_filing_rate (准确立案率) =
      (filed − voided) / filed; on_time_filing_rate (按时立案率) = ``file`` nodes, on_time_closing_rate (按时结案率)
      = ``close`` nodes.
    * dispatcher — dispatches (派遣数, dispatch actions), on_time_dispatch_rate, accurate_dispatch_rate over the
      cases whose FIRST dispatch was the actor's (the decision that proved right or wrong).

Count scores (受理数分值, 派遣数分值, 立案数分值) read thresholds from ``data/rules/evaluation.csv`` on counts per
month (a calendar month, quarter or year is 1, 3 or 12 months; a week or range is days / 30), so weekly and yearly
figures use the monthly table.

Composite (综合指标值) = Σ weight × value / Σ weight over the indicators that have a value, where a rate enters as
100 × rate (or 100 × (1 − rate) for a ``1-`` weight) and a ``*_score`` as it is, rounded to 6 decimals; weights
are in the rules file (``data/rules/EVALUATION.md``). Grade: A ≥ 90, B 75–90, C 60–75, D 40–60, E < 40.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gisgrid.calendar import WorkingCalendar
from gisgrid.errors import InvalidInput

RULES_FILE = Path(__file__).resolve().parent.parent / "data" / "rules" / "evaluation.csv"
DEFAULT_TZ = "Asia/Shanghai"

SUBJECTS: dict[str, str] = {
    "region": "区域",
    "department": "专业部门",
    "supervisor": "监督员",
    "intake": "受理员",
    "shift_lead": "值班长",
    "dispatcher": "派遣员",
}
#: Post roles evaluated, and the weights subject each uses (网格员 are scored like 监督员).
POST_ROLES: dict[str, str] = {
    "supervisor": "supervisor",
    "grid_worker": "supervisor",
    "intake": "intake",
    "shift_lead": "shift_lead",
    "dispatcher": "dispatcher",
}
#: Region levels → the cases column holding the region code.
LEVELS: dict[str, str] = {
    "unit_grid": "unit_grid_code",
    "tier3": "tier3_code",
    "tier2": "community_code",
    "community": "community_code",
    "tier1": "street_code",
    "street": "street_code",
    "district": "district_code",
}
#: Sources that are the public (监督举报): a filed one counts against the region and as 漏报 of its supervisor.
PUBLIC_SOURCES: tuple[str, ...] = ("hotline", "public_app")
PATROL_ROLES: tuple[str, ...] = ("supervisor", "grid_worker")

INDICATORS: dict[str, str] = {
    "reports": "上报数",
    "valid_reports": "有效上报数",
    "valid_report_rate": "有效上报率",
    "filed": "立案数",
    "filing_rate": "立案率",
    "public_filed": "监督举报核实数",
    "public_report_rate": "监督举报率",
    "on_time_verify_rate": "按时核实率",
    "on_time_check_rate": "按时核查率",
    "on_time_dispatch_rate": "按时派遣率",
    "dispatched": "派遣案件数",
    "accurate_dispatch_rate": "准确派遣率",
    "to_dispose": "应处置数",
    "handled": "处置数",
    "on_time_disposal_rate": "按期处置率",
    "to_close": "应结案数",
    "closed": "结案数",
    "closure_rate": "结案率",
    "on_time_closure_rate": "按期结案率",
    "reworked": "返工数",
    "rework_rate": "返工率",
    "extended": "延期数",
    "suspended": "挂账数",
    "deferred": "缓办数",
    "returned": "回退数",
    "missed_reports": "漏报数",
    "missed_report_rate": "漏报率",
    "accepted": "受理数",
    "on_time_issue_verify_rate": "核实按时派发率",
    "on_time_issue_check_rate": "核查按时派发率",
    "voided": "作废数",
    "accurate_filing_rate": "准确立案率",
    "on_time_filing_rate": "按时立案率",
    "on_time_closing_rate": "按时结案率",
    "dispatches": "派遣数",
    "filed_score": "立案数分值",
    "accepted_score": "受理数分值",
    "dispatch_score": "派遣数分值",
    "score": "综合指标值",
    "grade": "等级",
    "rank": "排名",
    "rank_change": "排名变化",
}

#: node → (opened by, closed by, cancelled by, node_limits key or None for the per-case disposal limit).
NODES: dict[str, tuple[frozenset[str], frozenset[str], frozenset[str], str | None]] = {
    "accept": (frozenset({"report"}), frozenset({"request_verify"}), frozenset({"reject", "void", "verify"}), "accept"),
    "verify": (frozenset({"report", "request_verify"}), frozenset({"verify"}), frozenset({"reject", "void"}), "verify"),
    "file": (frozenset({"verify"}), frozenset({"file"}), frozenset({"reject", "void"}), "file"),
    "dispatch": (frozenset({"file", "return"}), frozenset({"dispatch"}), frozenset({"void"}), "dispatch"),
    "disposal": (frozenset({"dispatch", "rework"}), frozenset({"handle"}), frozenset({"return"}), None),
    "issue_check": (frozenset({"handle"}), frozenset({"request_check"}), frozenset({"check", "rework"}), "accept"),
    "check": (frozenset({"handle", "request_check"}), frozenset({"check", "rework"}), frozenset(), "check"),
    "close": (frozenset({"check"}), frozenset({"close"}), frozenset(), "close"),
}
NODE_LIMIT_KEYS: tuple[str, ...] = ("accept", "verify", "file", "dispatch", "check", "close")

_US_HOUR = 3_600_000_000
_US_DAY = 24 * _US_HOUR
_EPOCH = date(1970, 1, 1)


# --------------------------------------------------------------------------------------- working time, vectorised


class WorkClock:
    """Vectorised working time of a :class:`WorkingCalendar` over a fixed range of days.

    ``position(t)`` is the working microseconds from the first day's midnight to ``t`` (constant outside working
    time), so the working time between two instants is a difference of positions — the same value as
    ``WorkingCalendar.working_us_between`` but for whole columns at once. ``instant(p)`` is the inverse: the
    earliest instant whose position is ``p`` (a position that fills a period exactly is that period's END, as in
    ``WorkingCalendar.add_working_time``). Positions are float64 microseconds (exact below 2**53) with NaN for NaT.
    """

    def __init__(self, calendar: WorkingCalendar, first: date, last: date) -> None:
        if last < first:
            raise InvalidInput("WorkClock: last day before first day", detail={"first": str(first), "last": str(last)})
        self.calendar = calendar
        self.tz = calendar.tz
        self.first = first
        self.last = last
        self._epoch_day = (first - _EPOCH).days
        n = (last - first).days + 1
        self.working = np.fromiter((calendar.is_working_day(first + timedelta(days=d)) for d in range(n)), bool, n)
        spans = np.array(calendar.hours.spans_us, dtype=np.int64).reshape(-1, 2)
        self._starts, self._ends = spans[:, 0], spans[:, 1]
        self._span_cum = np.concatenate([[0], np.cumsum(self._ends - self._starts)])
        self.day_us = int(self._span_cum[-1])
        self._cum = np.concatenate([[0], np.cumsum(self.working.astype(np.int64) * self.day_us)])
        self._working_days = np.flatnonzero(self.working)

    @classmethod
    def covering(cls, calendar: WorkingCalendar, *times: Any, margin_days: int = 2) -> WorkClock:
        """A clock whose range holds every non-missing instant of ``times`` (Series, arrays or scalars)."""
        lo, hi = None, None
        for t in times:
            idx = _as_index(t, calendar.tz)
            if idx.notna().any():
                local = idx.tz_convert(calendar.tz)
                a, b = local.min().date(), local.max().date()
                lo = a if lo is None or a < lo else lo
                hi = b if hi is None or b > hi else hi
        if lo is None or hi is None:
            today = datetime.now(calendar.tz).date()
            lo = hi = today
        return cls(calendar, lo - timedelta(days=margin_days), hi + timedelta(days=margin_days))

    def _local_us(self, times: Any) -> np.ndarray:
        idx = _as_index(times, self.tz).tz_convert(self.tz).tz_localize(None).as_unit("us")
        out = idx.asi8.astype(np.float64)
        out[np.asarray(idx.isna())] = np.nan
        return out

    def position(self, times: Any) -> np.ndarray:
        """Working microseconds since the clock's first midnight (float64, NaN for NaT)."""
        us = self._local_us(times)
        ok = ~np.isnan(us)
        day = np.zeros(us.shape, dtype=np.int64)
        day[ok] = np.floor(us[ok] / _US_DAY).astype(np.int64) - self._epoch_day
        if ok.any() and (day[ok].min() < 0 or day[ok].max() >= len(self.working)):
            raise InvalidInput(
                f"WorkClock: an instant lies outside {self.first}–{self.last}; build the clock with covering()",
                detail={"first": str(self.first), "last": str(self.last)},
            )
        tod = np.where(ok, us - (day + self._epoch_day).astype(np.float64) * _US_DAY, 0.0)
        inside = np.zeros(us.shape, dtype=np.float64)
        for s, e in zip(self._starts, self._ends, strict=True):
            inside += np.clip(tod - s, 0, e - s)
        pos = self._cum[day].astype(np.float64) + np.where(self.working[day], inside, 0.0)
        pos[~ok] = np.nan
        return pos

    def between(self, a: Any, b: Any) -> np.ndarray:
        """Working microseconds from ``a`` to ``b`` (negative when ``b`` is earlier)."""
        return self.position(b) - self.position(a)

    def instant(self, positions: Any) -> pd.DatetimeIndex:
        """The earliest instant at each working position (tz-aware, NaT for NaN)."""
        pos = np.asarray(positions, dtype=np.float64)
        ok = ~np.isnan(pos)
        p = np.where(ok, pos, 0.0)
        starts = self._cum[self._working_days].astype(np.float64)
        k = np.clip(np.searchsorted(starts, p, side="left") - 1, 0, len(starts) - 1)
        r = p - starts[k]
        if ok.any() and (r[ok].max() > self.day_us or r[ok].min() < 0):
            raise InvalidInput("WorkClock: a position lies outside the clock's range", detail={})
        j = np.minimum(np.searchsorted(self._span_cum[1:], r, side="left"), len(self._starts) - 1)
        tod = self._starts[j] + (r - self._span_cum[j])
        local_us = (self._working_days[k] + self._epoch_day).astype(np.float64) * _US_DAY + tod
        values = np.where(ok, local_us, 0).astype(np.int64)
        idx = pd.DatetimeIndex(values.astype("datetime64[us]")).tz_localize(self.tz)
        return idx.where(ok, pd.NaT)


def _as_index(times: Any, tz: Any) -> pd.DatetimeIndex:
    if isinstance(times, pd.DatetimeIndex):
        return times if times.tz is not None else times.tz_localize(tz)
    if not isinstance(times, pd.Series):
        times = pd.Series(list(times) if isinstance(times, list | tuple | np.ndarray | pd.Index) else [times])
    return pd.DatetimeIndex(local_times(times, tz))


def local_times(s: pd.Series, tz: Any) -> pd.Series:
    """A tz-aware datetime Series in ``tz`` (index kept). Naive values are local wall-clock time in ``tz``; text
    is ISO 8601 (mixed offsets are fine)."""
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.dt.tz_convert(tz)
    if pd.api.types.is_datetime64_dtype(s.dtype):
        return s.dt.tz_localize(tz)
    try:
        parsed = pd.to_datetime(s, format="ISO8601")
    except (ValueError, TypeError):  # mixed offsets
        parsed = pd.to_datetime(s, format="ISO8601", utc=True)
    if not isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_localize(tz)
    return parsed.dt.tz_convert(tz)


# --------------------------------------------------------------------------------------- periods


@dataclass(frozen=True)
class Period:
    """A half-open interval [start, end) of local time; ``kind`` tells how to step to the previous one."""

    start: pd.Timestamp
    end: pd.Timestamp
    kind: str = "range"

    def __post_init__(self) -> None:
        start, end = _stamp(self.start), _stamp(self.end)
        if end <= start:
            raise InvalidInput("period: end must be after start", detail={"start": str(start), "end": str(end)})
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)

    @classmethod
    def week(cls, year: int, week: int, tz: str = DEFAULT_TZ) -> Period:
        """ISO week (Monday first)."""
        start = pd.Timestamp(date.fromisocalendar(year, week, 1), tz=tz)
        return cls(start, start + pd.Timedelta(days=7), "week")

    @classmethod
    def month(cls, year: int, month: int, tz: str = DEFAULT_TZ) -> Period:
        start = pd.Timestamp(year=year, month=month, day=1, tz=tz)
        return cls(start, start + pd.DateOffset(months=1), "month")

    @classmethod
    def quarter(cls, year: int, quarter: int, tz: str = DEFAULT_TZ) -> Period:
        if quarter not in (1, 2, 3, 4):
            raise InvalidInput("period: quarter must be 1–4", detail={"quarter": quarter})
        start = pd.Timestamp(year=year, month=3 * quarter - 2, day=1, tz=tz)
        return cls(start, start + pd.DateOffset(months=3), "quarter")

    @classmethod
    def year(cls, year: int, tz: str = DEFAULT_TZ) -> Period:
        start = pd.Timestamp(year=year, month=1, day=1, tz=tz)
        return cls(start, start + pd.DateOffset(years=1), "year")

    @classmethod
    def between(cls, start: Any, end: Any) -> Period:
        """Any range [start, end); dates mean local midnight."""
        return cls(_stamp(start), _stamp(end), "range")

    @classmethod
    def containing(cls, at: Any, kind: str = "month") -> Period:
        ts = _stamp(at)
        if kind == "week":
            iso = ts.isocalendar()
            return cls.week(iso[0], iso[1], str(ts.tz))
        if kind == "month":
            return cls.month(ts.year, ts.month, str(ts.tz))
        if kind == "quarter":
            return cls.quarter(ts.year, (ts.month - 1) // 3 + 1, str(ts.tz))
        if kind == "year":
            return cls.year(ts.year, str(ts.tz))
        raise InvalidInput("period: kind must be week, month, quarter or year", detail={"kind": kind})

    def previous(self) -> Period:
        """The period before this one, of the same kind (a range: of the same length)."""
        if self.kind == "range":
            return Period(self.start - (self.end - self.start), self.start, "range")
        return Period.containing(self.start - pd.Timedelta(microseconds=1), self.kind)

    @property
    def days(self) -> float:
        return (self.end - self.start) / pd.Timedelta(days=1)

    @property
    def months(self) -> float:
        """Length in months for the per-month count scores (calendar months count as 1)."""
        return {"month": 1.0, "quarter": 3.0, "year": 12.0}.get(self.kind, self.days / 30.0)

    @property
    def label(self) -> str:
        s = self.start
        match self.kind:
            case "week":
                iso = s.isocalendar()
                return f"{iso[0]}-W{iso[1]:02d}"
            case "month":
                return f"{s.year}-{s.month:02d}"
            case "quarter":
                return f"{s.year}-Q{(s.month - 1) // 3 + 1}"
            case "year":
                return str(s.year)
        return f"{s.isoformat()}/{self.end.isoformat()}"


def _stamp(value: Any, tz: str = DEFAULT_TZ) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize(tz) if ts.tzinfo is None else ts


# --------------------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class Weight:
    indicator: str
    complement: bool  # "1-rate": the weight applies to 1 − rate
    weight: float


@dataclass(frozen=True)
class ScoreTable:
    """Bins [lower, upper) of ``source`` → score."""

    output: str
    source: str
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    scores: tuple[float, ...]

    def apply(self, values: pd.Series) -> pd.Series:
        v = values.to_numpy(dtype=np.float64)
        out = np.full(v.shape, np.nan)
        for lo, hi, sc in zip(self.lower, self.upper, self.scores, strict=True):
            out[(v >= lo) & (v < hi)] = sc
        return pd.Series(out, index=values.index)


@dataclass(frozen=True)
class EvaluationRules:
    weights: Mapping[str, tuple[Weight, ...]]
    scores: Mapping[str, tuple[ScoreTable, ...]]
    grades: tuple[tuple[str, float, float], ...]  # (letter, lower inclusive, upper exclusive)
    source: Path | None = None

    def grade(self, score: pd.Series) -> pd.Series:
        v = score.to_numpy(dtype=np.float64)
        out = np.full(v.shape, None, dtype=object)
        for letter, lo, hi in self.grades:
            out[(v >= lo) & (v < hi)] = letter
        return pd.Series(out, index=score.index, dtype=object)


def load_evaluation_rules(path: Path | str | None = None) -> EvaluationRules:
    """Read weights, count-score tables and grade bands (``data/rules/evaluation.csv`` by default).

    Checked: known kinds and subjects, numbers, weights of each subject summing to 1, bins not overlapping.
    Every problem is reported at once in one InvalidInput (line numbers; the header is line 1).
    """
    path = Path(path) if path is not None else RULES_FILE
    problems: list[dict[str, Any]] = []
    weights: dict[str, list[Weight]] = {}
    bins: dict[tuple[str, str, str], list[tuple[float, float, float]]] = {}
    grades: list[tuple[str, float, float]] = []

    def bad(line: int, fld: str, value: Any, reason: str) -> None:
        problems.append({"file": str(path), "row": line, "field": fld, "value": value, "reason": reason})

    def number(line: int, fld: str, text: str, default: float | None = None) -> float | None:
        if not text.strip():
            return default
        try:
            value = float(text)
        except ValueError:
            bad(line, fld, text, "not a number")
            return None
        if not math.isfinite(value):
            bad(line, fld, text, "not finite")
            return None
        return value

    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"kind", "subject", "key", "source", "lower", "upper", "value"} - set(reader.fieldnames or ())
        if missing:
            raise InvalidInput(f"{path.name}: missing columns {', '.join(sorted(missing))}", detail=[])
        for line, row in enumerate(reader, start=2):
            kind, subject, key = row["kind"].strip(), row["subject"].strip(), row["key"].strip()
            if kind in ("weight", "score") and subject not in SUBJECTS:
                bad(line, "subject", subject, f"one of {', '.join(SUBJECTS)}")
                continue
            if kind == "weight":
                w = number(line, "value", row["value"])
                if w is None or w < 0:
                    bad(line, "value", row["value"], "a weight ≥ 0 is needed")
                    continue
                indicator = key[2:] if key.startswith("1-") else key
                if indicator not in INDICATORS:
                    bad(line, "key", key, "unknown indicator")
                    continue
                weights.setdefault(subject, []).append(Weight(indicator, key.startswith("1-"), w))
            elif kind == "score":
                lo = number(line, "lower", row["lower"], -math.inf)
                hi = number(line, "upper", row["upper"], math.inf)
                sc = number(line, "value", row["value"])
                if lo is None or hi is None or sc is None:
                    continue
                if lo >= hi:
                    bad(line, "upper", row["upper"], "upper must be above lower")
                    continue
                bins.setdefault((subject, key, row["source"].strip()), []).append((lo, hi, sc))
            elif kind == "grade":
                lo = number(line, "lower", row["lower"], -math.inf)
                hi = number(line, "upper", row["upper"], math.inf)
                if lo is not None and hi is not None:
                    grades.append((key, lo, hi))
            else:
                bad(line, "kind", kind, "one of weight, score, grade")
    for subject, ws in weights.items():
        total = sum(w.weight for w in ws)
        if abs(total - 1.0) > 1e-9:
            problems.append({"file": str(path), "subject": subject, "reason": f"weights sum to {total}, not 1"})
    tables: dict[str, list[ScoreTable]] = {}
    for (subject, output, source), rows in bins.items():
        rows.sort()
        if any(a[1] > b[0] for a, b in pairwise(rows)):
            problems.append({"file": str(path), "subject": subject, "field": output, "reason": "bins overlap"})
        los, his, scs = zip(*rows, strict=True)
        tables.setdefault(subject, []).append(ScoreTable(output, source, los, his, scs))
    if problems:
        raise InvalidInput(f"{path.name}: {len(problems)} problem(s) in the evaluation rules", detail=problems)
    return EvaluationRules(
        weights={k: tuple(v) for k, v in weights.items()},
        scores={k: tuple(v) for k, v in tables.items()},
        grades=tuple(grades),
        source=path,
    )


_DEFAULT_RULES: EvaluationRules | None = None


def default_rules() -> EvaluationRules:
    global _DEFAULT_RULES
    if _DEFAULT_RULES is None:
        _DEFAULT_RULES = load_evaluation_rules()
    return _DEFAULT_RULES


def composite(df: pd.DataFrame, subject: str, rules: EvaluationRules | None = None) -> pd.Series:
    """综合指标值: Σ w·value / Σ w over indicators with a value (rates ×100, ``1-`` weights use 1 − rate)."""
    rules = rules or default_rules()
    num = pd.Series(0.0, index=df.index)
    den = pd.Series(0.0, index=df.index)
    for w in rules.weights[subject]:
        x = df[w.indicator].astype(np.float64)
        if not w.indicator.endswith("_score"):
            x = 100.0 * (1.0 - x) if w.complement else 100.0 * x
        elif w.complement:
            x = 100.0 - x
        has = x.notna()
        num += np.where(has, w.weight * x.fillna(0.0), 0.0)
        den += np.where(has, w.weight, 0.0)
    return (num / den.where(den > 0)).round(6)


def _finish(df: pd.DataFrame, subject: str, rules: EvaluationRules | None) -> pd.DataFrame:
    rules = rules or default_rules()
    for table in rules.scores.get(subject, ()):
        df[table.output] = table.apply(df[table.source])
    df["score"] = composite(df, subject, rules)
    df["grade"] = rules.grade(df["score"])
    return df


# --------------------------------------------------------------------------------------- facts


@dataclass
class Facts:
    """Everything the indicator tables are computed from, built once by :func:`prepare`."""

    period: Period
    as_of: pd.Timestamp
    cases: pd.DataFrame  # one row per case reported in the period, with per-case facts
    transitions: pd.DataFrame  # their transitions before as_of, sorted
    nodes: pd.DataFrame  # node instances (see NODES)
    all_cases: pd.DataFrame = field(repr=False)  # the whole input (for region sizes)

    @property
    def months(self) -> float:
        return self.period.months


def _node_limits_us(node_limits: Mapping[str, Any], calendar: WorkingCalendar) -> dict[str, tuple[float, bool]]:
    """node → (limit in µs, counted in calendar time)."""
    out: dict[str, tuple[float, bool]] = {}
    hours_per_day = calendar.hours.hours_per_day
    limits = dict(node_limits)
    limits.setdefault("issue_check", limits.get("accept"))
    for key in (*NODE_LIMIT_KEYS, "issue_check"):
        value = limits.get(key)
        if value is None:
            raise InvalidInput(f"node_limits: no limit for node {key!r}", detail={"node": key})
        amount, unit = (float(value), "working_hours") if isinstance(value, int | float) else value
        if unit not in ("working_hours", "working_days", "calendar_hours"):
            raise InvalidInput(f"node_limits: unknown unit {unit!r} for {key!r}", detail={"node": key})
        hours = float(amount) * hours_per_day if unit == "working_days" else float(amount)
        out[key] = (round(hours * _US_HOUR), unit == "calendar_hours")
    return out


def _pair(t: pd.DataFrame, openers: Iterable[str], closers: Iterable[str], cancels: Iterable[str]) -> pd.DataFrame:
    """Opener rows of ``t`` (sorted by case and time) not superseded by a later opener, each with the next closing
    row (``close_*`` columns, NaN/NaT while the node is open at as_of); cancelled nodes are dropped."""
    openers, closers, cancels = set(openers), set(closers), set(cancels)
    sub = t[t["action"].isin(openers | closers | cancels)].reset_index(drop=True)
    kind = np.select([sub["action"].isin(openers), sub["action"].isin(closers)], [0, 1], 2)
    case = sub["case_id"].to_numpy()
    same = np.r_[case[1:] == case[:-1], False]
    next_kind = np.where(same, np.r_[kind[1:], -1], -1)  # -1: nothing follows in this case
    # An opener followed by another opener is superseded; one followed by a cancel never counts.
    rows = np.flatnonzero((kind == 0) & (next_kind != 0) & (next_kind != 2))
    closed = next_kind[rows] == 1
    nxt = np.where(closed, rows + 1, rows)

    def take(col: str, at: np.ndarray) -> pd.Series:
        return sub[col].iloc[at].reset_index(drop=True)

    out = pd.DataFrame(
        {
            "case_id": take("case_id", rows),
            "open_action": take("action", rows),
            "open_at": take("at", rows),
            "open_actor": take("actor", rows),
            "open_department": take("department_code", rows),
            "closed": closed,
        }
    )
    for col in ("action", "at", "actor", "role"):
        out[f"close_{col}"] = take(col, nxt).where(closed)
    return out


def _overlap(
    spans: pd.DataFrame, start_col: str, end_col: str, susp: pd.DataFrame, clock: WorkClock
) -> tuple[np.ndarray, np.ndarray]:
    """Working and calendar µs of suspension (``susp``: case_id, s0, s1) inside each [start, end) of ``spans``."""
    work = np.zeros(len(spans))
    cal = np.zeros(len(spans))
    if susp.empty or spans.empty:
        return work, cal
    left = spans[["case_id", start_col, end_col]].reset_index(drop=True)
    left["row"] = np.arange(len(left))
    m = left.merge(susp, on="case_id")
    if m.empty:
        return work, cal
    lo = m[[start_col, "s0"]].max(axis=1)
    hi = m[[end_col, "s1"]].min(axis=1)
    pos = hi > lo
    m, lo, hi = m[pos], lo[pos], hi[pos]
    if m.empty:
        return work, cal
    w = clock.between(lo, hi)
    c = (hi - lo).dt.total_seconds().to_numpy() * 1e6
    rows = m["row"].to_numpy()
    np.add.at(work, rows, w)
    np.add.at(cal, rows, c)
    return work, cal


def _details_get(t: pd.DataFrame, key: str) -> pd.Series:
    if "details" not in t.columns:
        return pd.Series(None, index=t.index, dtype=object)
    return t["details"].map(lambda d: d.get(key) if isinstance(d, dict) else None)


def prepare(
    cases: pd.DataFrame,
    transitions: pd.DataFrame,
    calendar: WorkingCalendar,
    node_limits: Mapping[str, Any],
    period: Period,
    *,
    as_of: Any = None,
) -> Facts:
    """Per-case facts and node instances for the cases reported in ``period``, as of ``as_of`` (default period end)."""
    for col in ("id", "source", "created_at"):
        if col not in cases.columns:
            raise InvalidInput(f"cases: missing column {col!r}", detail={"column": col})
    for col in ("case_id", "action", "to_state", "actor", "role", "at"):
        if col not in transitions.columns:
            raise InvalidInput(f"transitions: missing column {col!r}", detail={"column": col})
    tz = calendar.tz
    as_of_ts = _stamp(as_of) if as_of is not None else period.end
    if as_of_ts < period.end:
        raise InvalidInput("as_of must not be before the period end", detail={"as_of": str(as_of_ts)})
    limits = _node_limits_us(node_limits, calendar)

    all_cases = cases
    created = local_times(cases["created_at"], tz)
    in_period = (created >= period.start) & (created < period.end)
    c = cases.loc[in_period].copy()
    c["created_at"] = created[in_period]
    c = c.set_index("id", drop=False).rename_axis(None)

    t = transitions[transitions["case_id"].isin(c.index)].copy()
    t["at"] = local_times(t["at"], tz)
    t = t[t["at"] < as_of_ts]
    if "department_code" not in t.columns:
        t["department_code"] = None
    order = t["id"] if "id" in t.columns else pd.Series(np.arange(len(t)), index=t.index)
    t = t.assign(_order=order.to_numpy()).sort_values(["case_id", "at", "_order"], kind="mergesort")
    t = t.reset_index(drop=True)
    for col in ("action", "role", "to_state"):
        t[col] = t[col].astype("category")  # compared many times below: codes beat strings tenfold

    a = t["action"]
    cid = t["case_id"]
    last = t.groupby("case_id").tail(1).set_index("case_id")
    c["state_at"] = last["to_state"].astype(object).reindex(c.index).fillna("reported")

    def any_of(mask: pd.Series) -> pd.Series:
        return mask.groupby(cid).any().reindex(c.index, fill_value=False).astype(bool)

    c["filed"] = any_of(a == "file")
    c["reworked_any"] = any_of(a == "rework")
    c["extended"] = any_of(a == "approve_extension")
    c["returned_any"] = any_of(a == "return")
    is_dispatch = a == "dispatch"
    misd = pd.Series(False, index=t.index)
    if "effects" in t.columns and is_dispatch.any():
        eff = t.loc[is_dispatch, "effects"]
        misd.loc[is_dispatch] = [isinstance(e, list | tuple) and "record_misdispatch" in e for e in eff]
    c["misdispatched"] = any_of(misd)
    c["dispatched"] = any_of(is_dispatch)
    disp = t[is_dispatch].groupby("case_id")
    c["first_dispatcher"] = disp["actor"].first().reindex(c.index)
    c["final_department"] = disp["department_code"].last().reindex(c.index)
    rep = t[a == "report"].groupby("case_id")
    c["reporter_actor"] = rep["actor"].first().reindex(c.index)
    c["reporter_role"] = rep["role"].first().reindex(c.index)
    c["filer"] = t[a == "file"].groupby("case_id")["actor"].first().reindex(c.index)

    susp_rows = t[a == "suspend"]
    kind = _details_get(susp_rows, "kind").fillna("")
    reason = _details_get(susp_rows, "reason").fillna("").astype(str)
    deferred_flag = (kind == "deferred") | reason.str.contains("缓办", regex=False)
    last_kind = deferred_flag.groupby(susp_rows["case_id"]).last().reindex(c.index, fill_value=False).astype(bool)
    is_susp = c["state_at"] == "suspended"
    c["suspended_now"] = is_susp & ~last_kind
    c["deferred_now"] = is_susp & last_kind
    c["voided_after_filing"] = c["filed"] & (c["state_at"] == "voided")
    c["valid"] = c["filed"] & (c["state_at"] != "voided")
    c["to_close"] = c["filed"] & ~c["voided_after_filing"] & ~is_susp
    c["closed_now"] = c["to_close"] & (c["state_at"] == "closed")
    c["accurate_dispatch"] = c["dispatched"] & ~c["returned_any"] & ~c["misdispatched"]
    c["public"] = c["source"].isin(PUBLIC_SOURCES)

    # Suspension intervals (挂账/缓办 stop every clock).
    sp = _pair(t, ("suspend",), ("resume",), ())
    susp = pd.DataFrame(
        {"case_id": sp["case_id"], "s0": sp["open_at"], "s1": sp["close_at"].where(sp["closed"], as_of_ts)}
    )
    new_due = pd.Series(dtype=object)
    appr = t[a == "approve_extension"]
    if len(appr):
        new_due = local_times(_details_get(appr, "new_due_at"), tz)
    clock = WorkClock.covering(calendar, t["at"], c["created_at"], as_of_ts, new_due)

    nodes = _nodes(t, c, clock, limits, susp, appr.assign(new_due_at=new_due), as_of_ts)
    disp_nodes = nodes[nodes["node"] == "disposal"]
    all_on_time = disp_nodes.groupby("case_id")["on_time"].all()
    c["disposal_on_time"] = all_on_time.reindex(c.index, fill_value=False).astype(bool)
    c["on_time_closed"] = c["closed_now"] & c["disposal_on_time"]
    return Facts(period=period, as_of=as_of_ts, cases=c, transitions=t, nodes=nodes, all_cases=all_cases)


def _nodes(
    t: pd.DataFrame,
    c: pd.DataFrame,
    clock: WorkClock,
    limits: dict[str, tuple[float, bool]],
    susp: pd.DataFrame,
    approvals: pd.DataFrame,
    as_of: pd.Timestamp,
) -> pd.DataFrame:
    frames = []
    for node, (openers, closers, cancels, key) in NODES.items():
        p = _pair(t, openers, closers, cancels)
        p.insert(0, "node", node)
        if key is None:
            lim = np.full(len(p), np.nan)
            if "disposal_limit_h" in c.columns:
                lim = pd.to_numeric(c["disposal_limit_h"], errors="coerce").reindex(p["case_id"]).to_numpy(float)
            p["limit_us"] = np.round(lim * _US_HOUR)
            p["calendar"] = False
            if "disposal_limit_unit" in c.columns:
                p["calendar"] = c["disposal_limit_unit"].reindex(p["case_id"]).to_numpy() == "calendar_hours"
        else:
            p["limit_us"] = float(limits[key][0])
            p["calendar"] = limits[key][1]
        frames.append(p)
    nodes = pd.concat(frames, ignore_index=True)
    nodes["end_at"] = nodes["close_at"].where(nodes["closed"], as_of)
    susp_work, susp_cal = _overlap(nodes, "open_at", "end_at", susp, clock)
    work = clock.between(nodes["open_at"], nodes["end_at"]) - susp_work
    cal = (nodes["end_at"] - nodes["open_at"]).dt.total_seconds().to_numpy() * 1e6 - susp_cal
    nodes["elapsed_h"] = np.where(nodes["calendar"], cal, work) / _US_HOUR
    elapsed_us = np.round(np.where(nodes["calendar"], cal, work))
    allowed = nodes["limit_us"].to_numpy(dtype=np.float64).copy()

    # 延期: the last approved new deadline inside a disposal node widens its allowed time.
    if len(approvals):
        dn = nodes[nodes["node"] == "disposal"][["case_id", "open_at", "end_at", "calendar"]]
        dn = dn.reset_index().rename(columns={"index": "node_row"})
        m = dn.merge(approvals[["case_id", "at", "new_due_at"]], on="case_id")
        m = m[(m["at"] >= m["open_at"]) & (m["at"] <= m["end_at"]) & m["new_due_at"].notna()]
        if len(m):
            m = m.sort_values("at").groupby("node_row").tail(1)
            before_w, before_c = _overlap(m, "open_at", "at", susp, clock)
            ext_w = clock.between(m["open_at"], m["new_due_at"]) - before_w
            ext_c = (m["new_due_at"] - m["open_at"]).dt.total_seconds().to_numpy() * 1e6 - before_c
            ext = np.round(np.where(m["calendar"], ext_c, ext_w))
            rows = m["node_row"].to_numpy()
            allowed[rows] = np.fmax(allowed[rows], ext)
    nodes["allowed_h"] = allowed / _US_HOUR
    has_limit = ~np.isnan(allowed)
    closed = nodes["closed"].to_numpy(dtype=bool)
    susp_now = c["state_at"].reindex(nodes["case_id"]).to_numpy() == "suspended"
    nodes["on_time"] = closed & has_limit & (elapsed_us <= np.nan_to_num(allowed, nan=-1))
    nodes["overdue_open"] = ~closed & has_limit & ~susp_now & (elapsed_us > np.nan_to_num(allowed, nan=np.inf))
    nodes["counted"] = (closed & has_limit) | nodes["overdue_open"]
    return nodes.drop(columns=["end_at"])


# --------------------------------------------------------------------------------------- indicator tables


def _rate(num: pd.Series, den: pd.Series) -> pd.Series:
    return num.astype(np.float64) / den.where(den > 0).astype(np.float64)


def _node_rate(nodes: pd.DataFrame, node: str, key: pd.Series | str, index: pd.Index) -> pd.Series:
    """On-time share of counted ``node`` instances grouped by ``key`` (a nodes column or a per-case Series)."""
    n = nodes[(nodes["node"] == node) & nodes["counted"]]
    k = n[key] if isinstance(key, str) else key.reindex(n["case_id"]).to_numpy()
    g = n["on_time"].groupby(k)
    return _rate(g.sum().reindex(index, fill_value=0), g.size().reindex(index, fill_value=0))


def _case_counts(c: pd.DataFrame, key: str) -> pd.DataFrame:
    g = c.groupby(key)
    out = pd.DataFrame(
        {
            "reports": g.size(),
            "valid_reports": g["valid"].sum(),
            "filed": g["filed"].sum(),
            "public_filed": (c["filed"] & c["public"]).groupby(c[key]).sum(),
            "dispatched": g["dispatched"].sum(),
            "accurate_dispatched": g["accurate_dispatch"].sum(),
            "to_close": g["to_close"].sum(),
            "closed": g["closed_now"].sum(),
            "on_time_closed": g["on_time_closed"].sum(),
            "reworked": (c["to_close"] & c["reworked_any"]).groupby(c[key]).sum(),
            "extended": g["extended"].sum(),
            "suspended": g["suspended_now"].sum(),
            "deferred": g["deferred_now"].sum(),
        }
    )
    return out


def _common_rates(out: pd.DataFrame) -> pd.DataFrame:
    out["valid_report_rate"] = _rate(out["valid_reports"], out["reports"])
    out["filing_rate"] = _rate(out["filed"], out["reports"])
    out["public_report_rate"] = _rate(out["public_filed"], out["filed"])
    out["accurate_dispatch_rate"] = _rate(out["accurate_dispatched"], out["dispatched"])
    out["closure_rate"] = _rate(out["closed"], out["to_close"])
    out["on_time_closure_rate"] = _rate(out["on_time_closed"], out["to_close"])
    out["rework_rate"] = _rate(out["reworked"], out["to_close"])
    return out


REGION_COLUMNS = (
    "subject", "level", "reports", "valid_reports", "valid_report_rate", "filed", "filing_rate", "public_filed",
    "public_report_rate", "on_time_verify_rate", "on_time_check_rate", "on_time_dispatch_rate", "dispatched",
    "accurate_dispatch_rate", "to_dispose", "handled", "on_time_disposal_rate", "to_close", "closed", "closure_rate",
    "on_time_closure_rate", "reworked", "rework_rate", "extended", "suspended", "deferred", "unit_grids",
    "filed_per_grid_month", "filed_score", "score", "grade",
)  # fmt: skip
DEPARTMENT_COLUMNS = (
    "subject", "dispatched", "returned", "filed", "filed_per_month", "filed_score", "to_dispose", "handled",
    "on_time_disposal_rate", "to_close", "closed", "closure_rate", "on_time_closure_rate", "reworked", "rework_rate",
    "extended", "suspended", "deferred", "score", "grade",
)  # fmt: skip
POST_COLUMNS: dict[str, tuple[str, ...]] = {
    "supervisor": (
        "subject", "role", "area", "reports", "valid_reports", "valid_report_rate", "area_filed", "missed_reports",
        "missed_report_rate", "on_time_verify_rate", "on_time_check_rate", "score", "grade",
    ),
    "intake": (
        "subject", "role", "accepted", "accepted_per_month", "accepted_score", "on_time_issue_verify_rate",
        "on_time_issue_check_rate", "score", "grade",
    ),
    "shift_lead": (
        "subject", "role", "filed", "voided", "accurate_filing_rate", "on_time_filing_rate", "on_time_closing_rate",
        "score", "grade",
    ),
    "dispatcher": (
        "subject", "role", "dispatches", "dispatches_per_month", "dispatch_score", "on_time_dispatch_rate",
        "first_dispatches", "accurate_dispatch_rate", "score", "grade",
    ),
}  # fmt: skip


def evaluate_regions(
    facts: Facts,
    level: str = "tier3",
    *,
    rules: EvaluationRules | None = None,
    cells: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per region of ``level`` (see the module docstring for every formula).

    ``cells``: the unit grids (``code`` + the level column) giving each region's size for 立案数分值; without it,
    the distinct unit grids seen in all input cases are used.
    """
    if level not in LEVELS:
        raise InvalidInput(f"level must be one of {', '.join(LEVELS)}", detail={"level": level})
    col = LEVELS[level]
    c = facts.cases
    if col not in c.columns:
        raise InvalidInput(f"cases: missing column {col!r} for level {level}", detail={"column": col})
    out = _case_counts(c, col)
    key = c[col]
    out["on_time_verify_rate"] = _node_rate(facts.nodes, "verify", key, out.index)
    out["on_time_check_rate"] = _node_rate(facts.nodes, "check", key, out.index)
    out["on_time_dispatch_rate"] = _node_rate(facts.nodes, "dispatch", key, out.index)
    dn = facts.nodes[(facts.nodes["node"] == "disposal") & facts.nodes["counted"]]
    dk = key.reindex(dn["case_id"]).to_numpy()
    out["to_dispose"] = dn.groupby(dk).size().reindex(out.index, fill_value=0)
    out["handled"] = dn["closed"].groupby(dk).sum().reindex(out.index, fill_value=0)
    out["on_time_disposal_rate"] = _rate(dn["on_time"].groupby(dk).sum().reindex(out.index, fill_value=0),
                                         out["to_dispose"])  # fmt: skip
    out = _common_rates(out)
    if cells is not None:
        code_col = "code" if "code" in cells.columns else "unit_grid_code"
        sizes = cells.groupby(col)[code_col].nunique()
    elif "unit_grid_code" in facts.all_cases.columns:
        sizes = facts.all_cases.groupby(col)["unit_grid_code"].nunique()
    else:
        sizes = pd.Series(dtype=np.float64)
    out["unit_grids"] = sizes.reindex(out.index)
    out["filed_per_grid_month"] = out["filed"] / out["unit_grids"] / facts.months
    out = out.rename_axis("subject").reset_index()
    out.insert(1, "level", level)
    out = _finish(out, "region", rules)
    return out[list(REGION_COLUMNS)]


def evaluate_departments(facts: Facts, *, rules: EvaluationRules | None = None) -> pd.DataFrame:
    """One row per department (see the module docstring)."""
    c, t, nodes = facts.cases, facts.transitions, facts.nodes
    fc = c[c["final_department"].notna()]
    out = _case_counts(fc, "final_department")
    disp = t[t["action"] == "dispatch"].drop_duplicates(["case_id", "department_code"])
    dispatched = disp.groupby("department_code").size()
    returned = t[t["action"] == "return"].drop_duplicates(["case_id", "department_code"]).groupby("department_code")
    dn = nodes[(nodes["node"] == "disposal") & nodes["counted"]]
    g = dn.groupby("open_department")
    index = out.index.union(dispatched.index).union(g.size().index)
    out = out.reindex(index, fill_value=0)
    out["dispatched"] = dispatched.reindex(index, fill_value=0)
    out["returned"] = returned.size().reindex(index, fill_value=0)
    # 返工/延期 while the case was with the department (their rows carry the department).
    rw = t[(t["action"] == "rework")].drop_duplicates(["case_id", "department_code"])
    rw = rw[rw["case_id"].map(c["to_close"]).astype(bool)]
    rw = rw[rw["department_code"].to_numpy() == c["final_department"].reindex(rw["case_id"]).to_numpy()]
    out["reworked"] = rw.groupby("department_code").size().reindex(index, fill_value=0)
    ext = t[t["action"] == "approve_extension"].drop_duplicates(["case_id", "department_code"])
    out["extended"] = ext.groupby("department_code").size().reindex(index, fill_value=0)
    out["to_dispose"] = g.size().reindex(index, fill_value=0)
    out["handled"] = g["closed"].sum().reindex(index, fill_value=0)
    out["on_time_disposal_rate"] = _rate(g["on_time"].sum().reindex(index, fill_value=0), out["to_dispose"])
    out = _common_rates(out)
    out["filed_per_month"] = out["filed"] / facts.months
    out = out.rename_axis("subject").reset_index()
    out = _finish(out, "department", rules)
    return out[list(DEPARTMENT_COLUMNS)]


def _closed_nodes_rate(nodes: pd.DataFrame, node: str, role: str) -> tuple[pd.Series, pd.Series]:
    n = nodes[(nodes["node"] == node) & nodes["closed"] & nodes["counted"] & (nodes["close_role"] == role)]
    g = n.groupby("close_actor")["on_time"]
    return g.sum(), g.size()


def evaluate_posts(
    facts: Facts,
    role: str,
    *,
    rules: EvaluationRules | None = None,
    areas: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per actor of ``role`` (supervisor, grid_worker, intake, shift_lead, dispatcher)."""
    if role not in POST_ROLES:
        raise InvalidInput(f"role must be one of {', '.join(POST_ROLES)}", detail={"role": role})
    subject = POST_ROLES[role]
    c, t, nodes = facts.cases, facts.transitions, facts.nodes

    def rate_pair(node: str) -> tuple[pd.Series, pd.Series]:
        return _closed_nodes_rate(nodes, node, role)

    if subject == "supervisor":
        mine = c[c["reporter_role"] == role]
        g = mine.groupby("reporter_actor")
        v_on, v_n = rate_pair("verify")
        k_on, k_n = rate_pair("check")
        index = g.size().index.union(v_n.index).union(k_n.index)
        out = pd.DataFrame(index=index)
        out["reports"] = g.size().reindex(index, fill_value=0)
        out["valid_reports"] = g["valid"].sum().reindex(index, fill_value=0)
        out["valid_report_rate"] = _rate(out["valid_reports"], out["reports"])
        out["on_time_verify_rate"] = _rate(v_on.reindex(index, fill_value=0), v_n.reindex(index, fill_value=0))
        out["on_time_check_rate"] = _rate(k_on.reindex(index, fill_value=0), k_n.reindex(index, fill_value=0))
        if areas is None:
            # Each actor's area: the tier-3 grid of most of its own reports (ties: the smaller code).
            counts = mine.groupby(["reporter_actor", "tier3_code"]).size().rename("n").reset_index()
            counts = counts.sort_values(["reporter_actor", "n", "tier3_code"], ascending=[True, False, True])
            areas = counts.drop_duplicates("reporter_actor").rename(columns={"reporter_actor": "actor"})
            areas = areas[["actor", "tier3_code"]]
        area_col = next(col for col in areas.columns if col != "actor")
        filed = c[c["filed"]]
        per_area = pd.DataFrame(
            {"area_filed": filed.groupby(area_col).size(),
             "missed_reports": filed[filed["public"]].groupby(area_col).size()}
        ).fillna(0)  # fmt: skip
        a = (
            areas[["actor", area_col]]
            .merge(per_area, left_on=area_col, right_index=True, how="left")
            .fillna({"area_filed": 0, "missed_reports": 0})
        )
        a = a.groupby("actor").agg(
            area=(area_col, lambda s: ",".join(sorted(map(str, s)))),
            area_filed=("area_filed", "sum"),
            missed_reports=("missed_reports", "sum"),
        )
        out = out.join(a, how="left")
        out["missed_report_rate"] = _rate(out["missed_reports"].fillna(0), out["area_filed"].fillna(0))
    elif subject == "intake":
        acts = t[(t["role"] == role) & t["action"].isin(("request_verify", "reject"))]
        accepted = acts.drop_duplicates(["case_id", "actor"]).groupby("actor").size()
        v_on, v_n = rate_pair("accept")
        k_on, k_n = rate_pair("issue_check")
        index = accepted.index.union(v_n.index).union(k_n.index)
        out = pd.DataFrame(index=index)
        out["accepted"] = accepted.reindex(index, fill_value=0)
        out["accepted_per_month"] = out["accepted"] / facts.months
        out["on_time_issue_verify_rate"] = _rate(v_on.reindex(index, fill_value=0), v_n.reindex(index, fill_value=0))
        out["on_time_issue_check_rate"] = _rate(k_on.reindex(index, fill_value=0), k_n.reindex(index, fill_value=0))
    elif subject == "shift_lead":
        files = t[(t["role"] == role) & (t["action"] == "file")].drop_duplicates("case_id")
        voided = files["case_id"].map(c["voided_after_filing"]).astype(bool)
        f_on, f_n = rate_pair("file")
        c_on, c_n = rate_pair("close")
        index = pd.Index(files["actor"].unique()).union(f_n.index).union(c_n.index)
        out = pd.DataFrame(index=index)
        out["filed"] = files.groupby("actor").size().reindex(index, fill_value=0)
        out["voided"] = voided.groupby(files["actor"]).sum().reindex(index, fill_value=0)
        out["accurate_filing_rate"] = _rate(out["filed"] - out["voided"], out["filed"])
        out["on_time_filing_rate"] = _rate(f_on.reindex(index, fill_value=0), f_n.reindex(index, fill_value=0))
        out["on_time_closing_rate"] = _rate(c_on.reindex(index, fill_value=0), c_n.reindex(index, fill_value=0))
    else:  # dispatcher
        acts = t[(t["role"] == role) & (t["action"] == "dispatch")]
        d_on, d_n = rate_pair("dispatch")
        first = c[c["dispatched"] & c["first_dispatcher"].isin(acts["actor"].unique())]
        index = pd.Index(acts["actor"].unique()).union(d_n.index)
        out = pd.DataFrame(index=index)
        out["dispatches"] = acts.groupby("actor").size().reindex(index, fill_value=0)
        out["dispatches_per_month"] = out["dispatches"] / facts.months
        out["on_time_dispatch_rate"] = _rate(d_on.reindex(index, fill_value=0), d_n.reindex(index, fill_value=0))
        fg = first.groupby("first_dispatcher")
        out["first_dispatches"] = fg.size().reindex(index, fill_value=0)
        out["accurate_dispatch_rate"] = _rate(fg["accurate_dispatch"].sum().reindex(index, fill_value=0),
                                              out["first_dispatches"])  # fmt: skip
    out = out.rename_axis("subject").reset_index()
    out.insert(1, "role", role)
    out = _finish(out, subject, rules)
    return out[list(POST_COLUMNS[subject])].sort_values("subject", kind="mergesort").reset_index(drop=True)


def evaluate(
    cases: pd.DataFrame,
    transitions: pd.DataFrame,
    calendar: WorkingCalendar,
    node_limits: Mapping[str, Any],
    period: Period,
    subject: str = "region",
    *,
    level: str = "tier3",
    as_of: Any = None,
    rules: EvaluationRules | None = None,
    cells: pd.DataFrame | None = None,
    areas: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One call: ``subject`` is ``region`` (with ``level``), ``department`` or a post role."""
    facts = prepare(cases, transitions, calendar, node_limits, period, as_of=as_of)
    if subject == "region":
        return evaluate_regions(facts, level, rules=rules, cells=cells)
    if subject == "department":
        return evaluate_departments(facts, rules=rules)
    return evaluate_posts(facts, subject, rules=rules, areas=areas)


def rank(
    df: pd.DataFrame,
    by: str = "score",
    *,
    previous: pd.DataFrame | None = None,
    key: str = "subject",
    ascending: bool = False,
) -> pd.DataFrame:
    """Add ``rank`` (1 = best; ties share the best rank; no value → no rank) and, with ``previous`` (the same
    table for an earlier period), ``previous_rank`` and ``rank_change`` = previous_rank − rank (positive = moved up;
    NA for a subject not ranked before). Sorted by rank."""
    out = df.copy()
    out["rank"] = out[by].rank(method="min", ascending=ascending).astype("Int64")
    if previous is not None:
        prev = previous[[key, by]].copy()
        prev["previous_rank"] = prev[by].rank(method="min", ascending=ascending).astype("Int64")
        out = out.merge(prev[[key, "previous_rank"]], on=key, how="left")
        out["rank_change"] = (out["previous_rank"] - out["rank"]).astype("Int64")
    return out.sort_values(["rank", key], na_position="last", kind="mergesort").reset_index(drop=True)


def grade(score: pd.Series | Sequence[float], rules: EvaluationRules | None = None) -> pd.Series:
    """Grade letters A–E for scores (None where the score is missing)."""
    return (rules or default_rules()).grade(pd.Series(score, dtype=np.float64))
