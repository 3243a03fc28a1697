"""Performance evaluation (综合评价): indicators, composite scores and grades per period — pure, no database.

Subjects (standards notes §5): regions (区域: unit grid, tier-3/2/1 grid = 网格/社区/街道, district), departments
(专业部门) and posts (岗位: 监督员 supervisor — also used for 网格员 grid_worker —, 受理员 intake, 值班长 shift_lead,
派遣员 dispatcher). Inputs are DataFrames shaped like the tables ``cases`` and ``case_transitions``
(:mod:`gisgrid.cases`), a :class:`~gisgrid.calendar.WorkingCalendar` and the node time limits.

Which cases, which transitions
    A case belongs to a period by its **report time** (``created_at``): a case never moves between periods, so a
    published month stays comparable; later actions only complete it. Facts are taken **as of** ``as_of``
    (default: now — :func:`default_as_of`, the CLI's and the API's default too): only what was known at
    ``as_of`` counts — cases reported before it, transitions strictly before it; the state at ``as_of`` is the
    ``to_state`` of the last of them. ``as_of`` must lie after the period start (before it nothing was reported).
    Final monthly figures are usually computed with a later ``as_of`` (e.g. a few working days after the period)
    so that cases reported on the last day can finish. An ``as_of`` before the period end (a running month "as
    of now", a past month "as of the 15th") gives **provisional** figures (:attr:`Facts.provisional`): the cases
    reported so far, judged as they stood then. The service (:mod:`gisgrid.evaluation_service`) also refuses an
    ``as_of`` later than now: open nodes would be judged late at a moment that has not come. What has not yet
    fallen due at ``as_of`` is in no denominator: an open node that could still close on time, an open case
    whose open nodes all could (out of 应结案数), a report still waiting for 受理/核实/立案 in time (out of
    有效上报率's) — so a cut-off at the period end does not mark down the cases of its last days (review49 #2).

Nodes and "on time" (按时/按期)
    A node instance opens at the transition that started it and closes at the one that ended it (table below,
    :data:`NODES`). When several openers come before the closer, the last one counts (a re-issued task restarts
    the node); a cancelling action (作废, 不予立案, 回退 …) ends the node without counting it — but for a 处置
    node returned (回退) after its allowed time, which counts as late (to the 回退). Elapsed time is the
    working time (``WorkingCalendar``: holidays and off-hours do not count; a node spanning a holiday is on time
    when its working time is within the limit) between open and close **minus the time the case was suspended
    (挂账/缓办) in between** (挂账 stops the clock, as in :mod:`gisgrid.cases`). On time ⇔ elapsed ≤ limit,
    compared in whole microseconds. A node still open at ``as_of`` counts in a denominator only when already
    overdue — its elapsed time at ``as_of`` exceeds its allowed time, so closing it then would be late; one that
    could still close on time is neither on time nor late. A case suspended at ``as_of`` has its clock stopped:
    its open node is overdue only when it had run past its allowed time before the 挂账 — suspending a late case
    does not erase its lateness, as returning it does not (review49 #1). Such a node has no actor, so it counts
    for regions and departments, not for posts (posts are credited with the nodes they closed). A case's detail (``GET
    /cases/{id}``, the console) shows its nodes judged by this same code (:func:`judge_case`).

    ===========  ===============================  ==================  =====================  =================
    node         opened by                        closed by           cancelled by           limit
    ===========  ===============================  ==================  =====================  =================
    accept       report                           request_verify      reject, void, verify   ``accept`` (受理)
    verify       report, request_verify           verify              reject, void           ``verify``
    file         verify                           file                reject, void           ``file``
    dispatch     file, return                     dispatch            void                   ``dispatch``
    disposal     dispatch, rework                 handle              return (in time)       case column
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
    approval (the resumed clock had already moved the deadline by that much). The approvals inside the node count,
    one stamped with the 处置's own instant too (history imports are per minute), and an extension never shortens:
    the allowed time is the longest of the limit and the approved deadlines. The service refuses an approval that
    does not move the deadline later (``deadline_not_later``), so there the last one is the latest; an imported
    record may carry a ``new_due_at`` before the limit's end or an earlier approval's, which changes nothing.

挂账 and 缓办
    Both are the workflow state ``suspended``; a suspension whose details carry ``kind = "deferred"`` (or whose
    reason mentions 缓办) is 缓办, any other is 挂账. A case suspended **at** ``as_of`` in time leaves 应结案数 (and,
    through it, 结案率, 按期结案率 and 返工率) and its open nodes leave every on-time denominator (Jinhua subtracts
    缓办数 from 应结案数, notes §4). One suspended when a node of it was already overdue (the clock net of earlier
    suspensions) stays: that node counts late (超期处置 for a 处置 node) and the case in 应结案数 — 挂账 before the
    cut-off cannot clean a late case from the figures (review49 #1). Counts: 挂账数 ``suspended``, 缓办数
    ``deferred`` (a late one is both 挂账 and 应结案).

Indicators (column — label — formula; rates are 0–1, ``*_score`` columns 0–100; an empty denominator gives NaN)

    ==========================  ==========  ==================================================================
    column                      label       formula
    ==========================  ==========  ==================================================================
    reports                     上报数      cases reported in the period (posts: reported by the actor)
    valid_reports               有效上报数  reported, filed (立案) and not voided (作废) as of ``as_of``
    pending_reports             待定上报数  reports still waiting in time at ``as_of``: not filed, not decided
                                            (不予立案, 作废), and no open node of it overdue (review49 #2)
    valid_report_rate           有效上报率  valid_reports / (reports − pending_reports)
    filed                       立案数      reported cases with a ``file`` transition
    filing_rate                 立案率      filed / (reports − pending_reports)
    public_filed                监督举报核实数  filed cases from the public (source hotline, public_app)
    public_report_rate          监督举报率  public_filed / filed (lower is better: the public found it first)
    to_verify                   应核实数    counted ``verify`` nodes (closed, or open and overdue at as_of)
    on_time_verified            按时核实数  of them on time
    on_time_verify_rate         按时核实率  on_time_verified / to_verify
    to_check                    应核查数    counted ``check`` nodes
    on_time_checked             按时核查数  of them on time
    on_time_check_rate          按时核查率  on_time_checked / to_check
    to_dispatch                 应派遣数    counted ``dispatch`` nodes
    on_time_dispatched          按时派遣数  of them on time
    on_time_dispatch_rate       按时派遣率  on_time_dispatched / to_dispatch (the node counts: regions only;
                                            a post's rate is over the nodes the actor closed)
    dispatched                  派遣案件数  cases dispatched at least once
    accurate_dispatch_rate      准确派遣率  dispatched cases never returned (回退) nor re-dispatched to another
                                            department (``record_misdispatch``) / dispatched
    to_dispose                  应处置数    counted ``disposal`` nodes (one per 交办单: dispatch or rework)
    handled                     处置数      ``disposal`` nodes closed by ``handle``
    on_time_disposal_rate       按期处置率  on-time ``disposal`` nodes / to_dispose
    overdue_disposals           超期处置数  counted ``disposal`` nodes that were late: closed late, open and
                                            overdue at ``as_of`` (suspended or not: one 挂账 after its deadline
                                            too), or returned (回退) after their allowed time — a department cannot
                                            erase a late node by returning or suspending it (= to_dispose −
                                            on-time ones, as 按期处置率 counts)
    to_close                    应结案数    filed − voided after filing − cases not yet due at as_of: open
                                            with every open node within its allowed time (as the node out of
                                            应处置数, review49 #2), or 挂账/缓办 then with none overdue (a case
                                            suspended with an overdue open node stays). A case whose open node
                                            has no limit stays
    closed                      结案数      to_close cases in state ``closed``
    closure_rate                结案率      closed / to_close
    on_time_closure_rate        按期结案率  closed cases whose every disposal node was on time / to_close
    reworked                    返工数      to_close cases with at least one ``rework``
    rework_rate                 返工率      reworked / to_close (Chengdu Jinniu)
    extended                    延期数      cases with an approved extension (延期批准)
    supervised                  督办数      督办 steps (``supervise``, each issuing a 督办单) on the cases, taken
                                            before ``as_of`` (as every step counts: the period's cases, their record
                                            up to as_of); a count beside the rates, not weighted by default
    suspended / deferred        挂账数/缓办数  cases in ``suspended`` at as_of, 挂账 / 缓办
    ==========================  ==========  ==================================================================

Subject-specific rows
    * Regions (``level``: unit_grid, tier3, tier2 = community, tier1 = street, district) — cases by location.
      filed_per_grid_month = filed / unit grids of the region / months → filed_score (立案数分值, ours). The unit
      grids are the stored ones (``cells``); a region no stored grid carries any more (deleted by a regroup) uses
      the distinct unit grids of its cases, and ``unit_grids_from`` (stored / cases) says which.
    * Departments — a case is the department's when it was last dispatched to it (``department_code`` of the last
      ``dispatch``) and not returned since: a case returned (回退) and not dispatched again by as_of is with the
      dispatcher, no department's (not in its 立案数, 应结案数, 挂账数); disposal nodes belong to the department
      they were dispatched to. dispatched = cases
      dispatched to it at least once, returned (回退数) = cases it returned; filed_per_month → filed_score, by
      the table of the department's group (``score_group`` of the departments catalogue, ``department:GROUP``
      score rows) or the default department table — ``score_group`` says which ('' for the default);
      reworked / extended count reworks and extensions while the case was with the department; supervised
      counts the 督办单 addressed to it (a 督办 is logged with the department the case was dispatched to then),
      like extended: by the step's department, whoever has the case now.
    * supervisor / grid_worker — reports by the report's actor (role supervisor/grid_worker), on-time
      verify/check nodes closed by the actor. 漏报数 missed_reports = filed public reports (hotline, public_app)
      in the actor's area, missed_report_rate = missed_reports / filed cases in the area. The area comes from
      ``areas`` (actor, tier3_code); without it, each actor's area is the tier-3 grid of most of its reports (a
      tie: the smaller code).
    * intake — accepted (受理数) = distinct cases the actor issued 发核实 to or rejected; on_time_issue_verify_rate
      (核实按时派发率) = ``accept`` nodes, on_time_issue_check_rate (核查按时派发率) = ``issue_check`` nodes.
    * shift_lead — filed = the cases the actor filed (立案数 counts cases: a case counts once, for the lead who
      filed it first — one filed again after its merge was undone, 重新受理, is not filed twice), voided = of
      those voided at as_of, accurate_filing_rate (准确立案率) = (filed − voided) / filed; on_time_filing_rate
      (按时立案率) = ``file`` nodes, on_time_closing_rate (按时结案率) = ``close`` nodes.
    * dispatcher — dispatches (派遣数, dispatch actions), on_time_dispatch_rate, accurate_dispatch_rate over the
      cases whose FIRST dispatch was the actor's (the decision that proved right or wrong).

Count scores (受理数分值, 派遣数分值, 立案数分值) read thresholds from ``data/rules/evaluation.csv`` on counts per
month (``months_between``: each whole calendar month counts 1, a part of a month its share of that month's days —
2026-Q4, 2026-10..2026-12 and 2026-10-01..2027-01-01 are all 3 months, 2026-10-16..2026-11-01 is 16/31), so weekly
and yearly figures use the monthly table and one interval scores alike however it is written.

Composite (综合指标值) = Σ weight × value / Σ weight over the indicators that have a value, where a rate enters as
100 × rate (or 100 × (1 − rate) for a ``1-`` weight) and a ``*_score`` as it is, rounded to 6 decimals; weights
are in the rules file (``data/rules/EVALUATION.md``). Grade: A ≥ 90, B 75–90, C 60–75, D 40–60, E < 40. A subject
whose indicators with a value carry less than the rules' ``min_weight`` (50 %) of its weight is not graded: no
score, grade 不参评, no rank (``weight_present``, ``ungraded_reason`` say why).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gisgrid import cityfiles
from gisgrid.calendar import YELLOW_AT_PERCENT, WorkingCalendar
from gisgrid.constants import LOCAL_TZ_NAME
from gisgrid.errors import InvalidInput, ProblemList, Reason
from gisgrid.settings import Settings
from gisgrid.workflow import TERMINAL_STATES, UNNAMED_ACTOR

RULES_NAME = "evaluation.csv"
#: The package's rules: :func:`default_rules` (the library without settings). A deployment reads the file under
#: its ``GISGRID_CATALOGUE_DIR`` (:func:`rules_path`), loaded at start with the other catalogues (``CaseServices``).
RULES_FILE = Path(__file__).resolve().parent.parent / "data" / "rules" / RULES_NAME

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
#: What can be evaluated (``--subject``, ``GET /evaluation?subject=``): regions, departments and each post role.
EVALUATED: tuple[str, ...] = ("region", "department", *POST_ROLES)
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
#: Region levels → Chinese name (maps' titles, the sheet names of the exports).
LEVEL_LABELS: dict[str, str] = {
    "unit_grid": "单元网格",
    "tier3": "三级网格",
    "tier2": "二级网格(社区)",
    "community": "二级网格(社区)",
    "tier1": "一级网格(街道)",
    "street": "一级网格(街道)",
    "district": "区",
}
#: Where a region's unit grid count (``unit_grids_from``) comes from → Chinese name (the XLSX export's values).
GRID_COUNT_SOURCES: dict[str, str] = {"stored": "已登记网格", "cases": "案件所在网格"}
#: Sources that are the public (监督举报): a filed one counts against the region and as 漏报 of its supervisor.
PUBLIC_SOURCES: tuple[str, ...] = ("hotline", "public_app")
PATROL_ROLES: tuple[str, ...] = ("supervisor", "grid_worker")

INDICATORS: dict[str, str] = {
    "reports": "上报数",
    "valid_reports": "有效上报数",
    "valid_report_rate": "有效上报率",
    "pending_reports": "待定上报数",
    "filed": "立案数",
    "filing_rate": "立案率",
    "public_filed": "监督举报核实数",
    "public_report_rate": "监督举报率",
    "on_time_verify_rate": "按时核实率",
    "on_time_check_rate": "按时核查率",
    "on_time_dispatch_rate": "按时派遣率",
    "to_verify": "应核实数",
    "on_time_verified": "按时核实数",
    "to_check": "应核查数",
    "on_time_checked": "按时核查数",
    "to_dispatch": "应派遣数",
    "on_time_dispatched": "按时派遣数",
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
    "overdue_disposals": "超期处置数",
    "supervised": "督办数",
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
#: What the main indicators count, in the words of the module docstring's table, for the reader of a 考核表 (its
#: 字段说明 sheet): an officer reading 按期结案率 expects end-to-end timeliness, which it is not (review49 #8).
INDICATOR_DEFINITIONS: dict[str, str] = {
    "valid_report_rate": "有效上报数 ÷ (上报数 − 待定上报数);有效 = 已立案且未作废",
    "pending_reports": "评价时点仍在时限内、尚未立案或不予立案/作废的上报(不计入有效上报率分母)",
    "filing_rate": "立案数 ÷ (上报数 − 待定上报数)",
    "public_report_rate": "公众来源(12345 热线、公众APP)立案数 ÷ 立案数;越低越好",
    "on_time_verify_rate": "按时完成的核实环节 ÷ 计入的核实环节(已完成的,及评价时点已超时未完成的)",
    "on_time_check_rate": "按时完成的核查环节 ÷ 计入的核查环节",
    "on_time_dispatch_rate": "按时完成的派遣环节 ÷ 计入的派遣环节",
    "to_verify": "计入的核实环节数:已完成的,及评价时点已超时未完成的;仍在时限内未完成的不计(按时核实率的分母)",
    "on_time_verified": "按时完成的核实环节数(按时核实率的分子)",
    "to_check": "计入的核查环节数:已完成的,及评价时点已超时未完成的(按时核查率的分母)",
    "on_time_checked": "按时完成的核查环节数(按时核查率的分子)",
    "to_dispatch": "计入的派遣环节数:已完成的,及评价时点已超时未完成的(按时派遣率的分母)",
    "on_time_dispatched": "按时完成的派遣环节数(按时派遣率的分子)",
    "accurate_dispatch_rate": "未被回退、未改派其他部门的派遣案件 ÷ 派遣案件数",
    "to_dispose": "计入的处置环节数(每张交办单一个:派遣或返工);评价时点仍在时限内未完成的不计",
    "on_time_disposal_rate": "按时完成的处置环节 ÷ 应处置数;用时按工作时间计,扣除挂账/缓办时间,含批准的延期",
    "overdue_disposals": "超时的处置环节:超时完成、评价时点已超时未完成(含超时后挂账)、超时后回退",
    "to_close": "立案数 − 立案后作废 − 评价时点尚未到期的在办案件(含时限内挂账/缓办)",
    "closure_rate": "结案数 ÷ 应结案数",
    "on_time_closure_rate": (
        "已结案且每个处置环节均按时的案件 ÷ 应结案数;只看处置环节,不含核查、结案环节的用时;"
        "返工前按时的处置也算按时(返工另计入返工率)"
    ),
    "rework_rate": "有返工的应结案案件 ÷ 应结案数",
    "missed_report_rate": "责任区域内公众来源立案数 ÷ 责任区域立案数",
    "score": "各指标按规则文件(data/rules/evaluation.csv)加权;有值指标权重不足时不参评",
}
#: Chinese names of every column of the tables (the exports' zh headers, the maps' legends): the indicators and
#: the other columns. ``subject`` is named per table (:func:`column_label`).
COLUMN_LABELS: dict[str, str] = {
    **INDICATORS,
    "name": "名称",
    "level": "层级",
    "role": "岗位",
    "area": "责任区域",
    "area_filed": "责任区域立案数",
    "unit_grids": "单元网格数",
    "unit_grids_from": "网格数来源",
    "filed_per_grid_month": "每网格月均立案数",
    "filed_per_month": "月均立案数",
    "score_group": "立案数分值分组",
    "accepted_per_month": "月均受理数",
    "dispatches_per_month": "月均派遣数",
    "first_dispatches": "首次派遣数",
    "previous_rank": "上期排名",
    "weight_present": "有值指标权重",
    "ungraded_reason": "不参评原因",
}
_SUBJECT_LABELS: dict[str, str] = {"region": "区域编码", "department": "部门编码"}


def column_label(column: str, subject: str = "region") -> str:
    """The Chinese header of ``column`` in the table of ``subject`` (region, department or a post role: its
    ``subject`` is the actor, 人员); the column itself when it has none."""
    if column == "subject":
        return _SUBJECT_LABELS.get(subject, "人员")
    return COLUMN_LABELS.get(column, column)


#: node → (opened by, closed by, cancelled by, node_limits key or None for the per-case disposal limit).
#: A merged duplicate reopened (重新受理, its kept case voided or rejected) starts intake again as a new report.
NODES: dict[str, tuple[frozenset[str], frozenset[str], frozenset[str], str | None]] = {
    "accept": (
        frozenset({"report", "reopen"}),
        frozenset({"request_verify"}),
        frozenset({"reject", "void", "verify"}),
        "accept",
    ),
    "verify": (
        frozenset({"report", "reopen", "request_verify"}),
        frozenset({"verify"}),
        frozenset({"reject", "void"}),
        "verify",
    ),
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
        # Each day's working periods: one schedule, or one per season (seasonal hours) with each day's index in
        # ``schedules``; every schedule's working day is as long (SeasonalHours refuses otherwise).
        index: dict[tuple[tuple[int, int], ...], int] = {}
        self.schedule = np.fromiter(
            (index.setdefault(calendar.spans_us_on(first + timedelta(days=d)), len(index)) for d in range(n)),
            np.int64,
            n,
        )
        #: Per schedule: (period starts, period ends, working µs before each period).
        self.schedules: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for spans_us in index:
            spans = np.array(spans_us, dtype=np.int64).reshape(-1, 2)
            starts, ends = spans[:, 0], spans[:, 1]
            self.schedules.append((starts, ends, np.concatenate([[0], np.cumsum(ends - starts)])))
        self.day_us = int(self.schedules[0][2][-1])
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
        for k, (starts, ends, _) in enumerate(self.schedules):
            part = np.zeros(us.shape, dtype=np.float64)
            for s, e in zip(starts, ends, strict=True):
                part += np.clip(tod - s, 0, e - s)
            inside = part if len(self.schedules) == 1 else np.where(self.schedule[day] == k, part, inside)
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
        tod = np.zeros(r.shape, dtype=np.float64)
        day_schedule = self.schedule[self._working_days[k]]
        for m, (starts, _, span_cum) in enumerate(self.schedules):
            j = np.minimum(np.searchsorted(span_cum[1:], r, side="left"), len(starts) - 1)
            part = starts[j] + (r - span_cum[j])
            tod = part if len(self.schedules) == 1 else np.where(day_schedule == m, part, tod)
        local_us = (self._working_days[k] + self._epoch_day).astype(np.float64) * _US_DAY + tod
        values = np.where(ok, local_us, 0).astype(np.int64)
        idx = pd.DatetimeIndex(values.astype("datetime64[us]")).tz_localize(self.tz)
        return idx.where(ok, pd.NaT)


def traffic_lights(
    started: Any, due: Any, now: datetime, calendar: WorkingCalendar, *, calendar_time: Any = None
) -> np.ndarray:
    """:func:`gisgrid.calendar.traffic_light` for whole columns: "green" / "yellow" / "red" per row, the same
    answer row by row (past due → red; no time in the limit → yellow; else green below 80 % used); rows where
    ``calendar_time`` is true are measured in clock time, the others in working time."""
    clock = WorkClock.covering(calendar, started, due, now)
    s = clock.position(started).astype(np.int64)
    d = clock.position(due).astype(np.int64)
    n = int(clock.position(pd.DatetimeIndex([now]))[0])
    total, elapsed = d - s, n - s
    if calendar_time is not None and np.any(calendar_time):
        wall = np.asarray(calendar_time, dtype=bool)
        s_us = _as_index(started, calendar.tz).as_unit("us").asi8
        d_us = _as_index(due, calendar.tz).as_unit("us").asi8
        n_us = pd.Timestamp(now).as_unit("us").value
        total = np.where(wall, d_us - s_us, total)
        elapsed = np.where(wall, n_us - s_us, elapsed)
    out = np.where(elapsed * 100 < total * YELLOW_AT_PERCENT, "green", "yellow").astype(object)
    out[total <= 0] = "yellow"
    out[np.asarray(_as_index(due, calendar.tz) < pd.Timestamp(now))] = "red"
    return out


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


#: The years a period given by a user may cover (first, last): the one place they are stated. The evaluation also
#: reads the period before (:meth:`Period.previous`, as long again), which must stay a date pandas can hold (from
#: 1677-09-22): a period of up to 201 years starting in 1900 does. Year 1 made ``previous()`` reach year 0 (a 500).
PERIOD_YEARS = (1900, 2100)


@dataclass(frozen=True)
class Period:
    """A half-open interval [start, end) of local time; ``kind`` tells how to step to the previous one. ``given``:
    the text a user wrote it as (``2026-10``), for messages; None for a period made in code."""

    start: pd.Timestamp
    end: pd.Timestamp
    kind: str = "range"
    given: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        start, end = _stamp(self.start), _stamp(self.end)
        if end <= start:
            raise InvalidInput(
                "period: end must be after start",
                detail=[{"field": "period", "start": str(start), "end": str(end)}],
                reason=Reason.PERIOD_END_NOT_AFTER_START,
            )
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)

    @classmethod
    def week(cls, year: int, week: int, tz: str = LOCAL_TZ_NAME) -> Period:
        """ISO week (Monday first)."""
        if 1 <= year <= 9999:  # else date() refuses the year itself
            weeks = date(year, 12, 28).isocalendar()[1]  # 28 December is always in the year's last ISO week
            if not 1 <= week <= weeks:
                raise InvalidInput(
                    f"周次须在 {year}-W01…{year}-W{weeks} 之间({year} 年只有 {weeks} 个 ISO 周) / period: {year} has "
                    f"{weeks} ISO weeks ({year}-W01…{year}-W{weeks}), got week {week}",
                    detail=[{"field": "period", "limit": {"ge": 1, "le": weeks}}],
                    reason=Reason.PERIOD_UNREADABLE,
                )
        start = pd.Timestamp(date.fromisocalendar(year, week, 1), tz=tz)
        return cls(start, start + pd.Timedelta(days=7), "week")

    @classmethod
    def month(cls, year: int, month: int, tz: str = LOCAL_TZ_NAME) -> Period:
        if not 1 <= month <= 12:
            raise InvalidInput(
                f"月份须为 1–12 / period: month must be 1–12, got {month}",
                detail=[{"field": "period", "limit": {"ge": 1, "le": 12}}],
                reason=Reason.PERIOD_UNREADABLE,
            )
        start = pd.Timestamp(year=year, month=month, day=1, tz=tz)
        return cls(start, start + pd.DateOffset(months=1), "month")

    @classmethod
    def quarter(cls, year: int, quarter: int, tz: str = LOCAL_TZ_NAME) -> Period:
        if quarter not in (1, 2, 3, 4):
            raise InvalidInput(
                f"季度须为 1–4 / period: quarter must be 1–4, got {quarter}",
                detail=[{"field": "period", "limit": {"ge": 1, "le": 4}}],
                reason=Reason.PERIOD_UNREADABLE,
            )
        start = pd.Timestamp(year=year, month=3 * quarter - 2, day=1, tz=tz)
        return cls(start, start + pd.DateOffset(months=3), "quarter")

    @classmethod
    def year(cls, year: int, tz: str = LOCAL_TZ_NAME) -> Period:
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

    def check_years(self) -> Period:
        """This period if it lies within :data:`PERIOD_YEARS`, else refused (422 ``out_of_range`` naming
        ``period`` and the years)."""
        first, last = PERIOD_YEARS
        tz = str(self.start.tz)
        if self.start < pd.Timestamp(year=first, month=1, day=1, tz=tz) or self.end > pd.Timestamp(
            year=last + 1, month=1, day=1, tz=tz
        ):
            shown = self.given if self.given is not None else self.label
            raise InvalidInput(
                f"period: {shown!r} is outside the years {first}–{last} a period may cover",
                detail=[{"field": "period", "reason": f"years {first}–{last}", "limit": {"ge": first, "le": last}}],
                reason=Reason.OUT_OF_RANGE,
            )
        return self

    @property
    def shown(self) -> str:
        """The period as its user wrote it, else its label."""
        return self.given if self.given is not None else self.label

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
        """Length in months for the per-month count scores: :func:`months_between` its start and end, however it
        was written (2026-Q4, 2026-10..2026-12 and 2026-10-01..2027-01-01 are all 3.0)."""
        return months_between(self.start, self.end)

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
        return f"{instant_text(s)}/{instant_text(self.end)}"


def months_between(start: pd.Timestamp, end: pd.Timestamp) -> float:
    """The months in [``start``, ``end``) — the one count of a period's months for every per-month figure: each
    whole calendar month (in ``start``'s zone) counts 1, a part of a month the share of that month's own length
    (2026-10-16..2026-11-01 is 16/31, 2026-02-01..2026-03-01 is 1.0). So one interval has one month count however it
    is written, where days / 30 made 2026-10-01..2027-01-01 3.0667 beside 2026-Q4's 3.0. 0.0 when ``end`` is not
    after ``start``."""
    start = pd.Timestamp(start)
    end = pd.Timestamp(end)
    if start.tzinfo is not None and end.tzinfo is not None:
        end = end.tz_convert(start.tz)
    if end <= start:
        return 0.0
    first = start.normalize().replace(day=1)
    last = end.normalize().replace(day=1)

    def share(a: pd.Timestamp, b: pd.Timestamp, month: pd.Timestamp) -> float:
        return (b - a) / ((month + pd.DateOffset(months=1)) - month)

    if first == last:
        return share(start, end, first)
    whole = (last.year - first.year) * 12 + last.month - first.month - 1  # the months strictly between the ends'
    return share(start, first + pd.DateOffset(months=1), first) + whole + share(last, end, last)


def _mean_time(ts: pd.Timestamp) -> timezone | None:
    """The zone's standard offset when ``ts`` falls in its local mean time (LMT: Asia/Shanghai's +08:05:43 before
    1901, an offset in seconds no one keeps); None otherwise."""
    offset = ts.utcoffset()
    if offset is None or not offset % timedelta(minutes=1):
        return None
    standard = pd.Timestamp(year=1970, month=1, day=1, tz=ts.tz).utcoffset()
    return timezone(standard) if standard is not None else None


def instant_text(ts: pd.Timestamp) -> str:
    """ISO 8601 of a period end: in the zone's LMT years its local time with the zone's standard offset, as every
    other instant is printed (1900-01-01T00:00:00+08:00, not +08:05:43 — review54 F9). The period still starts at
    the zone database's local midnight; the 5 min 43 s between the two, before 1900-01-01 00:00 +08:00, hold no
    case."""
    standard = _mean_time(ts)
    return (ts if standard is None else ts.tz_localize(None).tz_localize(standard)).isoformat()


def _stamp(value: Any, tz: str = LOCAL_TZ_NAME) -> pd.Timestamp:
    try:  # text as ISO 8601 only: pandas would read "march" as 0001-03-01
        ts = pd.Timestamp(datetime.fromisoformat(value.strip()) if isinstance(value, str) else value)
    except (TypeError, ValueError):
        ts = pd.NaT
    if pd.isna(ts):  # an empty or open end ("..2026-11-26") is not a period
        raise InvalidInput(
            f"period: {value!r} is not a date or time", detail={"value": str(value)}, reason=Reason.PERIOD_UNREADABLE
        )
    if ts.tzinfo is None:
        return ts.tz_localize(tz)
    # Text with an offset is the same instant in the city's zone: PostgreSQL refuses offsets beyond ±15:59, which
    # Python reads up to ±23:59 (review54 F6: +20:00 was a 500)
    return ts.tz_convert(tz) if isinstance(value, str) else ts


def default_as_of(period: Period, now: Any = None) -> pd.Timestamp:
    """The evaluation time when none is given: now (``now`` for a fixed clock) in the period's zone — the city's —
    to the second. Now, not the period end, because a case reported late on the last day cannot have closed by the
    period end: judged then it counts as unclosed and late for ever (review11 D3); and never a later moment than
    now, for a period still running: an open node would count late before its deadline has come (review26 D2).
    Pass ``as_of=period.end`` for the figures as they stood when the period ended."""
    tz = str(period.start.tz)
    current = _stamp(now, tz) if now is not None else pd.Timestamp.now(tz=tz)
    return current.tz_convert(tz).floor("s")


def check_as_of_after_start(period: Period, as_of: pd.Timestamp) -> pd.Timestamp:
    """``as_of`` when it lies after the period start, else refused (``as_of_before_period_start``): nothing of
    the period had been reported yet."""
    if as_of <= period.start:
        raise InvalidInput(
            f"评价时点须晚于评价期开始({period.start:%Y-%m-%d %H:%M}),此前尚无上报 / "
            f"as_of: {as_of.isoformat()} is not after the start of {period.shown} ({period.start.isoformat()}); "
            "nothing had been reported yet",
            detail=[{"field": "as_of", "value": as_of.isoformat()}],
            reason=Reason.AS_OF_BEFORE_PERIOD_START,
        )
    return as_of


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
    min_weight: float  # share of a subject's weight its valued indicators must carry to be graded
    ungraded: str  # the grade of a subject below it (不参评)
    source: Path | None = None
    #: Count-score tables of department groups (score,department:GROUP,… rows), by group.
    group_scores: Mapping[str, tuple[ScoreTable, ...]] = field(default_factory=dict)
    #: Department code → its score_group (the catalogue's), for the groups with a table of their own.
    department_groups: Mapping[str, str] = field(default_factory=dict)

    def score_groups(self, codes: pd.Series) -> pd.Series:
        """Per department code: the group whose table scores it, '' for the default department table."""
        got = codes.astype(str).map(self.department_groups).astype(object)
        return got.where(got.notna(), "")

    def grade(self, score: pd.Series) -> pd.Series:
        v = score.to_numpy(dtype=np.float64)
        out = np.full(v.shape, None, dtype=object)
        for letter, lo, hi in self.grades:
            out[(v >= lo) & (v < hi)] = letter
        return pd.Series(out, index=score.index, dtype=object)


class _Problems(ProblemList):
    label = "evaluation rules"


def rules_path(source: Settings | Path | str | None = None) -> Path:
    """The evaluation rules file: ``rules/evaluation.csv`` under ``Settings.catalogue_dir``
    (``GISGRID_CATALOGUE_DIR``, as the routing rules), a file path as given, or the package's copy (None)."""
    if source is None:
        return RULES_FILE
    if isinstance(source, Settings):
        return Path(source.catalogue_dir) / "rules" / RULES_NAME
    return Path(source)


def _columns_of(subject: str) -> tuple[str, ...]:
    """The columns the evaluation of ``subject`` (a weights subject) computes."""
    return {"region": REGION_COLUMNS, "department": DEPARTMENT_COLUMNS, **POST_COLUMNS}[subject]


def _n(value: float) -> str:
    return f"{value:g}"


def _rows(lines: Iterable[int]) -> str:
    """``row 5`` or ``rows 5, 6, 7``."""
    got = [str(n) for n in lines]
    return f"row {got[0]}" if len(got) == 1 else f"rows {', '.join(got)}"


def _read_rules_table(path: Path, problems: _Problems) -> cityfiles.CsvTable | None:
    """The file read as every city file is (:func:`gisgrid.cityfiles.read_csv`: its rows numbered by their line,
    blank rows dropped, cells stripped, a short row's missing cells empty); None after adding the problem when it
    cannot be read."""
    try:
        return cityfiles.read_csv(path, "evaluation rules file (GISGRID_CATALOGUE_DIR/rules/evaluation.csv)")
    except InvalidInput as exc:
        problems.add(path, None, None, "", exc.message.removeprefix(f"{path}: "))
        return None


def load_evaluation_rules(  # noqa: C901, PLR0915
    source: Settings | Path | str | None = None, *, groups: Mapping[str, str] | None = None
) -> EvaluationRules:
    """Read weights, count-score tables and grade bands: the file of :func:`rules_path` (with settings, the city's
    ``GISGRID_CATALOGUE_DIR/rules/evaluation.csv``; without, the package's ``data/rules/evaluation.csv``).

    Checked: known kinds, subjects and each subject's indicators, numbers, every subject having weights that sum to
    1 (an indicator weighted once), a score table for each count score and no overlapping bins, grade bands that
    cover 0–100 without a gap or an overlap, one ``min_weight``. Every problem is reported at once in one
    InvalidInput naming the file (full path), the row (the header is row 1), the field and the reason.

    ``groups`` (department code → ``score_group`` of the departments catalogue) lets ``score`` rows of subject
    ``department:GROUP`` give a group its own count-score table: GROUP must be a group of ``groups`` (None: any
    name, no catalogue to check against), and a group's bins must cover 0 upward without a gap.
    """
    path = rules_path(source).absolute()
    problems = _Problems()
    table = _read_rules_table(path, problems)
    if table is None:
        problems.raise_if_any()
    assert table is not None
    expected = ",".join(cityfiles.EVALUATION_COLUMNS)
    # No named column on line 1 leaves no rows either: only the text tells an empty file from one whose first line
    # is blank (that one: every column missing).
    if not table.header and not cityfiles.read_text(path)[0].strip():
        problems.add(path, None, None, "", f"the file is empty; expected the header {expected}")
        problems.raise_if_any()
    missing = [c for c in cityfiles.EVALUATION_COLUMNS if c not in table.header]
    if missing:
        problems.add(path, None, None, "", f"missing column(s) {', '.join(missing)}; expected {expected}")
        problems.raise_if_any()
    weights: dict[str, list[tuple[int, Weight]]] = {}
    bins: dict[tuple[str, str, str, str], list[tuple[float, float, float, int]]] = {}
    known_groups = set(groups.values()) if groups is not None else None
    grades: list[tuple[int, str, float, float]] = []
    minimum: list[tuple[int, str, float]] = []

    def number(line: int, fld: str, text: str, default: float | None = None) -> float | None:
        if not text:
            return default
        try:
            value = float(text)
        except ValueError:
            problems.add(path, line, fld, text, f"not a number: {text!r}")
            return None
        if not math.isfinite(value):
            problems.add(path, line, fld, text, f"not a finite number: {text!r}")
            return None
        return value

    for line, row in table.rows:  # line: the record's last physical line, its row for a one-line record
        kind, subject, key = row["kind"], row["subject"], row["key"]
        group = ""
        if kind == "score" and subject.startswith("department:"):
            subject, group = "department", subject.removeprefix("department:").strip()
            if not group:
                problems.add(path, line, "subject", row["subject"], "the group is needed after department:")
                continue
            if known_groups is not None and group not in known_groups:
                listed = ", ".join(sorted(known_groups)) or "none"
                problems.add(
                    path, line, "subject", row["subject"],
                    f"unknown score group {group!r}: no department has score_group {group} (groups: {listed})",
                )  # fmt: skip
                continue
        if kind in ("weight", "score") and subject not in SUBJECTS:
            problems.add(path, line, "subject", subject, f"unknown subject {subject!r}: one of {', '.join(SUBJECTS)}")
            continue
        if kind == "weight":
            w = number(line, "value", row["value"])
            if w is None:
                if not row["value"]:
                    problems.add(path, line, "value", "", "a weight ≥ 0 is needed")
                continue
            if w < 0:
                problems.add(path, line, "value", row["value"], "a weight ≥ 0 is needed")
                continue
            indicator = key[2:] if key.startswith("1-") else key
            if indicator not in INDICATORS:
                problems.add(path, line, "key", key, f"unknown indicator {key!r}")
                continue
            if indicator not in _columns_of(subject):
                problems.add(path, line, "key", key, f"{indicator} is not an indicator of {subject}")
                continue
            same = [n for n, other in weights.get(subject, []) if other.indicator == indicator]
            if same:
                problems.add(path, line, "key", key, f"{indicator} of {subject} is weighted already in row {same[0]}")
                continue
            weights.setdefault(subject, []).append((line, Weight(indicator, key.startswith("1-"), w)))
        elif kind == "score":
            columns = _columns_of(subject)
            if not (key.endswith("_score") and key in columns):
                scored = ", ".join(c for c in columns if c.endswith("_score")) or "none"
                problems.add(path, line, "key", key, f"not a count score of {subject} (its count scores: {scored})")
                continue
            source_col = row["source"]
            if source_col not in columns or source_col in ("subject", "role", "level", "area"):
                problems.add(path, line, "source", source_col, f"not a count of {subject}")
                continue
            lo = number(line, "lower", row["lower"], -math.inf)
            hi = number(line, "upper", row["upper"], math.inf)
            sc = number(line, "value", row["value"])
            if lo is None or hi is None or sc is None:
                if not row["value"]:
                    problems.add(path, line, "value", "", "the score of the bin is needed")
                continue
            if lo >= hi:
                problems.add(path, line, "upper", row["upper"], "upper must be above lower")
                continue
            bins.setdefault((subject, group, key, source_col), []).append((lo, hi, sc, line))
        elif kind == "grade":
            lo = number(line, "lower", row["lower"], -math.inf)
            hi = number(line, "upper", row["upper"], math.inf)
            if not key:
                problems.add(path, line, "key", "", "the grade's letter is needed")
            elif lo is not None and hi is not None:
                if lo >= hi:
                    problems.add(path, line, "upper", row["upper"], "upper must be above lower")
                    continue
                twice = [n for n, letter, _, _ in grades if letter == key]
                if twice:
                    problems.add(path, line, "key", key, f"grade {key} is given already in row {twice[0]}")
                    continue
                grades.append((line, key, lo, hi))
        elif kind == "min_weight":
            share = number(line, "value", row["value"])
            if share is None or not 0 < share <= 1:
                problems.add(path, line, "value", row["value"], "a share of the weight above 0 and at most 1 is needed")
            elif not key:
                problems.add(path, line, "key", key, "the grade given below the share (不参评) is needed")
            else:
                minimum.append((line, key, share))
        else:
            problems.add(path, line, "kind", kind, f"unknown kind {kind!r}: one of weight, score, grade, min_weight")
    for subject in SUBJECTS:
        ws = weights.get(subject)
        if not ws:
            problems.add(path, None, "subject", subject, f"no weight rows for {subject} (weight,{subject},…)")
            continue
        total = sum(w.weight for _, w in ws)
        if abs(total - 1.0) > 1e-9:
            where = _rows(n for n, _ in ws)
            problems.add(path, None, "value", _n(total), f"{subject}: weights sum to {_n(total)}, not 1 ({where})")
        for output in (c for c in _columns_of(subject) if c.endswith("_score")):
            if not any(s == subject and not g and o == output for s, g, o, _ in bins):
                problems.add(
                    path, None, "key", output, f"no score rows for {output} of {subject} (score,{subject},{output},…)"
                )
    tables: dict[str, list[ScoreTable]] = {}
    group_tables: dict[str, list[ScoreTable]] = {}
    for (subject, group, output, source_col), rows in bins.items():
        rows.sort()
        name = f"{subject}:{group}" if group else subject
        if group:
            _check_group_bins(path, name, output, rows, problems)
        for a, b in pairwise(rows):
            if a[1] > b[0]:
                problems.add(
                    path, b[3], "lower", _n(b[0]),
                    f"the {output} bins of {name} in rows {a[3]} and {b[3]} overlap from {_n(b[0])} to "
                    f"{_n(min(a[1], b[1]))}",
                )  # fmt: skip
        los, his, scs, _ = zip(*rows, strict=True)
        table_of = ScoreTable(output, source_col, los, his, scs)
        (group_tables.setdefault(group, []) if group else tables.setdefault(subject, [])).append(table_of)
    for group, got in group_tables.items():  # a group's table replaces the default one: every count score needed
        for output in (c for c in DEPARTMENT_COLUMNS if c.endswith("_score")):
            if not any(t.output == output for t in got):
                problems.add(
                    path, None, "key", output,
                    f"no score rows for {output} of department:{group} (score,department:{group},{output},…)",
                )  # fmt: skip
    _check_grade_bands(path, grades, problems)
    if len(minimum) != 1:
        where = f" ({_rows(n for n, _, _ in minimum)})" if minimum else ""
        problems.add(path, None, "kind", "min_weight", f"one min_weight row is needed, found {len(minimum)}{where}")
    elif minimum[0][1] in {letter for _, letter, _, _ in grades}:
        line, key, _ = minimum[0]
        problems.add(path, line, "key", key, f"{key} is a grade letter too: the grade below the share must differ")
    problems.raise_if_any()
    [(_, ungraded, min_weight)] = minimum
    return EvaluationRules(
        weights={k: tuple(w for _, w in v) for k, v in weights.items()},
        scores={k: tuple(v) for k, v in tables.items()},
        grades=tuple((letter, lo, hi) for _, letter, lo, hi in grades),
        min_weight=min_weight,
        ungraded=ungraded,
        source=path,
        group_scores={g: tuple(v) for g, v in group_tables.items()},
        department_groups={c: g for c, g in (groups or {}).items() if g in group_tables},
    )


def _check_group_bins(
    path: Path, name: str, output: str, rows: list[tuple[float, float, float, int]], problems: _Problems
) -> None:
    """A group's bins (sorted) cover every count from 0 up: the first starts at 0 or below (lower empty), each
    ends where the next starts, the last has no upper — else a department of the group would get no score."""
    first, last = rows[0], rows[-1]
    if first[0] > 0:
        problems.add(
            path, first[3], "lower", _n(first[0]),
            f"the {output} bins of {name} leave counts from 0 to {_n(first[0])} without a score (leave the first "
            "lower empty)",
        )  # fmt: skip
    if math.isfinite(last[1]):
        problems.add(
            path, last[3], "upper", _n(last[1]),
            f"the {output} bins of {name} leave counts of {_n(last[1])} or more without a score (leave the last "
            "upper empty)",
        )  # fmt: skip
    for a, b in pairwise(rows):
        if a[1] < b[0]:
            problems.add(
                path, b[3], "lower", _n(b[0]),
                f"the {output} bins of {name} leave a gap from {_n(a[1])} to {_n(b[0])} (rows {a[3]} and {b[3]})",
            )  # fmt: skip


def _check_grade_bands(path: Path, grades: list[tuple[int, str, float, float]], problems: _Problems) -> None:
    """Every score from 0 to 100 gets exactly one grade: the bands, sorted, meet end to start (a gap would leave a
    score without a grade, an overlap give it the later row's letter silently)."""
    if not grades:
        problems.add(path, None, "kind", "grade", "no grade rows (grade,,LETTER,,lower,upper): no score can be graded")
        return
    bands = sorted(grades, key=lambda g: (g[2], g[3]))
    first, last = bands[0], bands[-1]
    if first[2] > 0:
        problems.add(
            path, first[0], "lower", _n(first[2]),
            f"scores from 0 to {_n(first[2])} get no grade: the lowest band ({first[1]}) starts at {_n(first[2])} "
            "(leave its lower empty)",
        )  # fmt: skip
    if last[3] <= 100:
        problems.add(
            path, last[0], "upper", _n(last[3]),
            f"{'a score of 100 gets' if last[3] == 100 else f'scores from {_n(last[3])} to 100 get'} no grade: the "
            f"highest band ({last[1]}) ends at {_n(last[3])}, its upper bound excluded (leave its upper empty)",
        )  # fmt: skip
    for (la, a, _, a_hi), (lb, b, b_lo, b_hi) in pairwise(bands):
        if a_hi < b_lo:
            problems.add(
                path, lb, "lower", _n(b_lo),
                f"grade bands leave a gap: scores from {_n(a_hi)} to {_n(b_lo)} get no grade ({a} in row {la} ends "
                f"at {_n(a_hi)}, {b} in row {lb} starts at {_n(b_lo)})",
            )  # fmt: skip
        elif a_hi > b_lo:
            problems.add(
                path, lb, "lower", _n(b_lo),
                f"grade bands overlap: scores from {_n(b_lo)} to {_n(min(a_hi, b_hi))} fall in {a} (row {la}) and "
                f"in {b} (row {lb})",
            )  # fmt: skip


_DEFAULT_RULES: EvaluationRules | None = None


def default_rules() -> EvaluationRules:
    global _DEFAULT_RULES
    if _DEFAULT_RULES is None:
        _DEFAULT_RULES = load_evaluation_rules()
    return _DEFAULT_RULES


def _composite(df: pd.DataFrame, subject: str, rules: EvaluationRules) -> tuple[np.ndarray, np.ndarray]:
    """(Σ w·value / Σ w, Σ w) over the indicators with a value, per row."""
    num = np.zeros(len(df))
    den = np.zeros(len(df))
    for w in rules.weights[subject]:
        x = df[w.indicator].astype(np.float64).to_numpy()
        if not w.indicator.endswith("_score"):
            x = 100.0 * (1.0 - x) if w.complement else 100.0 * x
        elif w.complement:
            x = 100.0 - x
        has = ~np.isnan(x)
        num += np.where(has, w.weight * np.where(has, x, 0.0), 0.0)
        den += np.where(has, w.weight, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.round(np.where(den > 0, num / den, np.nan), 6), np.round(den, 6)


def composite(df: pd.DataFrame, subject: str, rules: EvaluationRules | None = None) -> pd.Series:
    """综合指标值: Σ w·value / Σ w over indicators with a value (rates ×100, ``1-`` weights use 1 − rate), whatever
    share of the weight they carry (:func:`_finish` leaves a subject below ``rules.min_weight`` ungraded)."""
    return pd.Series(_composite(df, subject, rules or default_rules())[0], index=df.index)


def _finish(df: pd.DataFrame, subject: str, rules: EvaluationRules | None) -> pd.DataFrame:
    """Count scores, then the composite, grade and ``weight_present`` (Σ weight of the indicators with a value). A
    subject whose valued indicators carry less than ``rules.min_weight`` is not graded (its score would be one or
    two favourable leftovers, e.g. 0 立案 → 立案数分值 100): score NaN, grade ``rules.ungraded`` (不参评), no rank,
    and ``ungraded_reason`` says why; graded subjects have an empty reason."""
    rules = rules or default_rules()
    for table in rules.scores.get(subject, ()):
        df[table.output] = table.apply(df[table.source])
    if subject == "department":
        # A department of a group with a table of its own is scored by it (one mask per group, not per row).
        groups = rules.score_groups(df["subject"])
        for group, tables in rules.group_scores.items():
            mine = (groups == group).to_numpy()
            if mine.any():
                for table in tables:
                    df.loc[mine, table.output] = table.apply(df.loc[mine, table.source]).to_numpy()
        df["score_group"] = groups
    score, present = _composite(df, subject, rules)
    graded = (present > 0) & (present >= rules.min_weight - 1e-9)
    df["score"] = np.where(graded, score, np.nan)
    df["grade"] = rules.grade(df["score"]).where(graded, rules.ungraded)
    df["weight_present"] = present
    reason = np.full(len(df), "", dtype=object)
    empty = {w.indicator: df[w.indicator].isna().to_numpy() for w in rules.weights[subject]}
    for i in np.flatnonzero(~graded):  # few rows: the ones not graded
        missing = "、".join(INDICATORS[name] for name, nan in empty.items() if nan[i])
        reason[i] = f"有值指标权重 {present[i]:.0%},低于 {rules.min_weight:.0%};无值: {missing}"
    df["ungraded_reason"] = reason
    return df


# --------------------------------------------------------------------------------------- facts
#
# Built with integer arrays: transitions are sorted by case, time and id, so a case's rows are consecutive; a
# case's row in ``cases`` is looked up once (``case_row``); names (actions, roles, actors, departments, region
# codes) are categorical codes, and every count is an ``np.bincount`` over codes — no hashing of strings per row.


@dataclass
class Facts:
    """Everything the indicator tables are computed from, built once by :func:`prepare` (then shared by every
    subject and level: the tables only count)."""

    period: Period
    as_of: pd.Timestamp
    cases: pd.DataFrame  # one row per case reported in the period before as_of, with per-case facts
    transitions: pd.DataFrame  # their transitions before as_of, sorted (case, time, id); case_row = row in cases
    nodes: pd.DataFrame  # node instances (see NODES); case_row = the case's row in cases
    all_cases: pd.DataFrame = field(repr=False)  # the whole input (for region sizes)
    all_in_period: bool = field(default=False, repr=False)  # cases holds every row of all_cases, in order
    #: Years the holiday calendar does not know that the working time of a judged node ran through (its figures
    #: took Mon–Fri as working days there): only this evaluation's arithmetic, not every year the calendar met,
    #: and only nodes counted in a figure (closed, or overdue) — an open node not yet due is in none (review49 #9).
    unknown_years: tuple[int, ...] = ()
    _codes: dict[tuple[str, str], tuple[np.ndarray, pd.Index]] = field(default_factory=dict, repr=False)

    @property
    def months(self) -> float:
        return self.period.months

    @property
    def provisional(self) -> bool:
        """Judged before the period ended: the cases reported so far, as they stood then."""
        return bool(self.as_of < self.period.end)

    def codes(self, frame: str, column: str) -> tuple[np.ndarray, pd.Index]:
        """Codes of ``column`` of the frame ``frame`` (cases, transitions, nodes, all_cases) into its sorted distinct
        values (−1 = missing), computed once per column."""
        if frame == "all_cases" and self.all_in_period:
            frame = "cases"
        key = (frame, column)
        if key not in self._codes:
            self._codes[key] = _factorize(getattr(self, frame)[column])
        return self._codes[key]


def _factorize(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """(codes, keys): int64 codes (−1 for missing) into the sorted distinct non-missing values, as groupby keys."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        raw = values.cat.codes.to_numpy().astype(np.int64)
        cats = values.cat.categories
        present = np.flatnonzero(np.bincount(raw[raw >= 0], minlength=len(cats)))
        order = present[cats.take(present).argsort()]
        remap = np.full(len(cats) + 1, -1, dtype=np.int64)
        remap[order] = np.arange(len(order))
        return remap[raw], cats.take(order)  # raw −1 picks the last slot: −1
    codes, keys = pd.factorize(values, sort=True)
    return codes.astype(np.int64), pd.Index(keys)


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


def _limit_table(
    node_limits: Mapping[str, Any], urgent_node_limits: Mapping[str, Any] | None, calendar: WorkingCalendar
) -> dict[str, tuple[float, bool]]:
    """node → (limit in µs, calendar time), and ``urgent:``node → the same for urgent cases where it differs."""
    limits = _node_limits_us(node_limits, calendar)
    if urgent_node_limits:  # only the nodes given: the others keep their limit for urgent cases too
        urgent = dict(urgent_node_limits)
        if "accept" in urgent:
            urgent.setdefault("issue_check", urgent["accept"])
        full = _node_limits_us({**dict(node_limits), **urgent}, calendar)
        limits |= {"urgent:" + k: full[k] for k in urgent if k in full}
    return limits


def _first_in_group(groups: np.ndarray) -> np.ndarray:
    """True where a row starts a new run of equal ``groups`` values."""
    out = np.ones(len(groups), dtype=bool)
    if len(groups) > 1:
        out[1:] = groups[1:] != groups[:-1]
    return out


def _last_in_group(groups: np.ndarray) -> np.ndarray:
    out = np.ones(len(groups), dtype=bool)
    if len(groups) > 1:
        out[:-1] = groups[1:] != groups[:-1]
    return out


def _is_sorted(*keys: np.ndarray) -> bool:
    """Rows already in lexicographic order of ``keys`` (most significant first)?"""
    if len(keys[0]) < 2:
        return True
    ok = np.zeros(len(keys[0]) - 1, dtype=bool)
    tied = np.ones(len(keys[0]) - 1, dtype=bool)
    for k in keys:
        d = np.diff(k)
        ok |= tied & (d > 0)
        tied &= d == 0
    return bool((ok | tied).all())


def _pair(
    a1: np.ndarray, crow: np.ndarray, lookup: np.ndarray, *, cancelled: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Node instances from transitions sorted by case and time: ``lookup[a1]`` is each row's kind (0 opener,
    1 closer, 2 canceller, 3 other). An opener followed (in its case) by another opener is superseded, one followed
    by a canceller is not a node. Returns the opener rows, the closing rows (−1 while open at as_of) and closed;
    with ``cancelled``, the openers followed by a canceller instead, and the cancelling rows (closed all False)."""
    kind = lookup[a1]
    sub = np.flatnonzero(kind != 3)
    k = kind[sub]
    same = ~_last_in_group(crow[sub])
    next_kind = np.full(len(sub), -1, dtype=np.int64)  # −1: nothing follows in this case
    next_kind[:-1] = np.where(same[:-1], k[1:], -1)
    if cancelled:
        sel = np.flatnonzero((k == 0) & (next_kind == 2))
        return sub[sel], sub[sel + 1], np.zeros(len(sel), dtype=bool)
    sel = np.flatnonzero((k == 0) & (next_kind != 0) & (next_kind != 2))
    closed = next_kind[sel] == 1
    close_rows = np.where(closed, sub[np.minimum(sel + 1, len(sub) - 1)], -1) if len(sel) else sel
    return sub[sel], close_rows, closed


def _take_cat(col: pd.Series, rows: np.ndarray) -> pd.Categorical:
    """A categorical column's values at ``rows`` (−1 → missing)."""
    codes = col.cat.codes.to_numpy()
    picked = codes[rows] if len(codes) else np.zeros(len(rows), dtype=codes.dtype)
    return pd.Categorical.from_codes(np.where(rows >= 0, picked, -1), dtype=col.dtype)


def _take_at(at: pd.Series, rows: np.ndarray) -> pd.Series:
    """A datetime column's values at ``rows`` (−1 → NaT)."""
    return pd.Series(at.array.take(rows, allow_fill=True))


def _per_case(n_cases: int, crow: np.ndarray, rows: np.ndarray, *, last: bool = False) -> np.ndarray:
    """For each case, its first (or last) row among ``rows`` (sorted by case), −1 when none."""
    out = np.full(n_cases, -1, dtype=np.int64)
    if len(rows):
        pick = _last_in_group(crow[rows]) if last else _first_in_group(crow[rows])
        out[crow[rows[pick]]] = rows[pick]
    return out


def _details_get(details: np.ndarray, key: str) -> pd.Series:
    return pd.Series([d.get(key) if isinstance(d, dict) else None for d in details], dtype=object)


def _overlap(
    case: np.ndarray,
    start_us: np.ndarray,
    end_us: np.ndarray,
    start_pos: np.ndarray,
    end_pos: np.ndarray,
    susp: dict[str, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Working and calendar µs of suspension inside each [start, end) (``susp``: arrays case, s0/s1 in µs and
    working positions p0/p1, sorted by case)."""
    work = np.zeros(len(case))
    cal = np.zeros(len(case))
    if not len(susp["case"]) or not len(case):
        return work, cal
    lo = np.searchsorted(susp["case"], case, side="left")
    hi = np.searchsorted(susp["case"], case, side="right")
    n = hi - lo
    rows = np.repeat(np.arange(len(case)), n)
    if not len(rows):
        return work, cal
    k = np.repeat(lo - np.r_[0, np.cumsum(n)[:-1]], n) + np.arange(len(rows))
    t0 = np.maximum(start_us[rows], susp["s0"][k])
    t1 = np.minimum(end_us[rows], susp["s1"][k])
    inside = t1 > t0
    rows, k, t0, t1 = rows[inside], k[inside], t0[inside], t1[inside]
    w = np.minimum(end_pos[rows], susp["p1"][k]) - np.maximum(start_pos[rows], susp["p0"][k])
    np.add.at(work, rows, w)
    np.add.at(cal, rows, (t1 - t0).astype(np.float64))
    return work, cal


def _us(times: pd.Series) -> np.ndarray:
    """UTC microseconds since the epoch (int64; NaT is the int64 minimum) of a datetime Series."""
    return times.array.as_unit("us").asi8


_TRANSITION_COLUMNS = ("id", "case_id", "action", "to_state", "actor", "role", "at", "department_code")


def prepare(  # noqa: C901, PLR0915
    cases: pd.DataFrame,
    transitions: pd.DataFrame,
    calendar: WorkingCalendar,
    node_limits: Mapping[str, Any],
    period: Period,
    *,
    as_of: Any = None,
    urgent_node_limits: Mapping[str, Any] | None = None,
    limit_changes: Sequence[tuple[date | None, Mapping[str, Any], Mapping[str, Any]]] = (),
) -> Facts:
    """Per-case facts and node instances for the cases reported in ``period`` before ``as_of`` (default
    :func:`default_as_of`: now), as they stood then; ``as_of`` at or before the period start is refused.
    ``urgent_node_limits`` (node → limit, as ``node_limits``) apply to the nodes of cases whose ``urgent`` column
    is true. ``limit_changes``: (day, node limits, urgent node limits) in force from 00:00 of each day on
    (``EventCatalogue.limit_versions()[1:]``): a node is judged by the limits of the day it opened."""
    for col in ("id", "source", "created_at"):
        if col not in cases.columns:
            raise InvalidInput(f"cases: missing column {col!r}", detail={"column": col})
    for col in ("case_id", "action", "to_state", "actor", "role", "at"):
        if col not in transitions.columns:
            raise InvalidInput(f"transitions: missing column {col!r}", detail={"column": col})
    tz = calendar.tz
    as_of_ts = check_as_of_after_start(period, _stamp(as_of) if as_of is not None else default_as_of(period))
    limits = [(np.iinfo(np.int64).min, _limit_table(node_limits, urgent_node_limits, calendar))]
    for day, changed, changed_urgent in limit_changes:
        if day is None:
            raise InvalidInput("limit_changes: every change needs its day", detail={"field": "limit_changes"})
        from_us = int(_us(pd.Series([pd.Timestamp(day).tz_localize(tz)]))[0])
        limits.append((from_us, _limit_table(changed, changed_urgent, calendar)))
    limits.sort(key=lambda v: v[0])

    # Cases of the period reported before as_of (a later one was not known then), indexed by id.
    created = local_times(cases["created_at"], tz)
    in_period = ((created >= period.start) & (created < min(period.end, as_of_ts))).to_numpy()
    all_in = bool(in_period.all())
    c = cases.copy(deep=False) if all_in else cases.loc[in_period].copy()
    c["created_at"] = created.array if all_in else created[in_period].array
    c = c.set_index("id", drop=False).rename_axis(None)
    if not c.index.is_monotonic_increasing:
        c = c.sort_index(kind="stable")  # by id, as the transitions: a case's row grows with its id
    if not c.index.is_unique:
        dup = c.index[c.index.duplicated()].unique().tolist()[:10]
        raise InvalidInput("cases: ids must be unique", detail={"duplicated": [str(v) for v in dup]})
    ids = c.index.to_numpy()
    n_c = len(c)

    # Their transitions before as_of, sorted by case, time and id; crow = the case's row in c.
    tcase = transitions["case_id"].to_numpy()
    crow_all = np.full(len(tcase), -1, dtype=np.int64)
    if n_c and len(tcase):
        # Look each distinct run of case ids up once (the rows usually come grouped by case).
        start = np.flatnonzero(_first_in_group(tcase))
        found = np.minimum(np.searchsorted(ids, tcase[start]), n_c - 1)
        run = np.where(ids[found] == tcase[start], found, -1)
        crow_all = np.repeat(run, np.diff(np.r_[start, len(tcase)]))
    at_all = local_times(transitions["at"], tz)
    keep = (crow_all >= 0) & (at_all < as_of_ts).to_numpy()
    src = np.flatnonzero(keep)  # rows of the input (for details and effects)
    cols = [col for col in _TRANSITION_COLUMNS if col in transitions.columns]
    t = transitions[cols].iloc[src] if len(src) < len(transitions) else transitions[cols].copy(deep=False)
    t["at"] = at_all.array.take(src) if len(src) < len(transitions) else at_all.array
    if "department_code" not in t.columns:
        t["department_code"] = None
    crow = crow_all[src]
    at_us = _us(t["at"])
    order = t["id"].to_numpy() if "id" in t.columns else np.arange(len(t))
    if not _is_sorted(t["case_id"].to_numpy(), at_us, order):
        perm = np.lexsort((order, at_us, t["case_id"].to_numpy()))
        t, crow, src, at_us = t.iloc[perm], crow[perm], src[perm], at_us[perm]
    t = t.reset_index(drop=True)
    for col in ("action", "role", "to_state", "actor", "department_code"):
        if not isinstance(t[col].dtype, pd.CategoricalDtype):
            t[col] = t[col].astype("category")  # compared and grouped many times below: codes, not strings
    t["case_row"] = crow

    actions = t["action"].cat.categories
    a1 = t["action"].cat.codes.to_numpy().astype(np.int64) + 1  # 0 = missing

    def lookup(groups: Sequence[Iterable[str]], other: int) -> np.ndarray:
        """action code + 1 → the index of the first group holding it, else ``other``."""
        out = np.full(len(actions) + 1, other, dtype=np.int64)
        for g, names in reversed(list(enumerate(groups))):
            for name in names:
                if name in actions:
                    out[actions.get_loc(name) + 1] = g
        return out

    def is_action(*names: str) -> np.ndarray:
        return lookup([names], 1)[a1] == 0

    def any_of(mask: np.ndarray) -> np.ndarray:
        out = np.zeros(n_c, dtype=bool)
        out[crow[mask]] = True
        return out

    # The state at as_of: the to_state of the case's last transition (reported without one).
    last_row = _per_case(n_c, crow, np.arange(len(t)), last=True)
    states = t["to_state"]
    state_names = np.asarray([*states.cat.categories, "reported"], dtype=object)
    state_codes = states.cat.codes.to_numpy().astype(np.int64)
    code = np.where(last_row >= 0, state_codes[last_row] if len(t) else -1, -1)
    state_now = state_names[np.where(code >= 0, code, len(state_names) - 1)]
    c["state_at"] = state_now

    is_dispatch = is_action("dispatch")
    c["filed"] = filed = any_of(is_action("file"))
    c["reworked_any"] = any_of(is_action("rework"))
    c["extended"] = any_of(is_action("approve_extension"))
    c["returned_any"] = returned_any = any_of(is_action("return"))
    disp_rows = np.flatnonzero(is_dispatch)
    misd = np.zeros(len(t), dtype=bool)
    if "effects" in transitions.columns and len(disp_rows):
        eff = transitions["effects"].to_numpy()[src[disp_rows]]
        # Each distinct object once (rows read from the database share one list per distinct JSON text).
        _, first, inverse = np.unique(np.fromiter(map(id, eff), np.int64, len(eff)), True, True)
        flags = [isinstance(e, (list, tuple)) and "record_misdispatch" in e for e in eff[first]]
        misd[disp_rows] = np.asarray(flags, dtype=bool)[inverse]
    c["misdispatched"] = misdispatched = any_of(misd)
    c["dispatched"] = dispatched = any_of(is_dispatch)
    c["first_dispatcher"] = _take_cat(t["actor"], _per_case(n_c, crow, disp_rows))
    # The department the case is with: its last dispatch's, unless a 回退 came after it (back with the dispatcher).
    handover = _per_case(n_c, crow, np.flatnonzero(is_dispatch | is_action("return")), last=True)
    given_back = handover >= 0
    given_back[given_back] = ~is_dispatch[handover[given_back]]
    c["final_department"] = _take_cat(t["department_code"], np.where(given_back, -1, handover))
    first_report = _per_case(n_c, crow, np.flatnonzero(is_action("report")))
    c["reporter_actor"] = _take_cat(t["actor"], first_report)
    c["reporter_role"] = _take_cat(t["role"], first_report)
    c["filer"] = _take_cat(t["actor"], _per_case(n_c, crow, np.flatnonzero(is_action("file"))))

    susp_rows = np.flatnonzero(is_action("suspend"))
    deferred_of_last = np.zeros(n_c, dtype=bool)
    if len(susp_rows) and "details" in transitions.columns:
        det = transitions["details"].to_numpy()[src[susp_rows]]
        kind = _details_get(det, "kind")
        reason = _details_get(det, "reason").fillna("").astype(str)
        flag = ((kind == "deferred") | reason.str.contains("缓办", regex=False)).to_numpy(dtype=bool)
        last_susp = _last_in_group(crow[susp_rows])
        deferred_of_last[crow[susp_rows[last_susp]]] = flag[last_susp]
    is_susp = state_now == "suspended"
    is_voided = state_now == "voided"
    c["suspended_now"] = is_susp & ~deferred_of_last
    c["deferred_now"] = is_susp & deferred_of_last
    c["voided_after_filing"] = voided_after = filed & is_voided
    c["valid"] = filed & ~is_voided
    c["accurate_dispatch"] = dispatched & ~returned_any & ~misdispatched
    c["public"] = c["source"].isin(PUBLIC_SOURCES).to_numpy(dtype=bool)

    # Working positions of every transition, of as_of and of the approved new deadlines.
    appr_rows = np.flatnonzero(is_action("approve_extension"))
    new_due = pd.Series(pd.NaT, index=range(len(appr_rows)), dtype=pd.DatetimeTZDtype("us", tz))
    if len(appr_rows) and "details" in transitions.columns:
        due = _details_get(transitions["details"].to_numpy()[src[appr_rows]], "new_due_at")
        if due.notna().any():
            new_due = local_times(due, tz)
    clock = WorkClock.covering(calendar, t["at"], c["created_at"], as_of_ts, new_due)
    pos = clock.position(t["at"])
    as_of_us = int(_us(pd.Series([as_of_ts]))[0])
    as_of_pos = float(clock.position(pd.Series([as_of_ts]))[0])

    # Suspension intervals (挂账/缓办 stop every clock): suspend → resume, or as_of.
    s_open, s_close, s_closed = _pair(a1, crow, lookup([("suspend",), ("resume",)], 3))
    susp = {
        "case": crow[s_open],
        "s0": at_us[s_open],
        "s1": np.where(s_closed, at_us[s_close], as_of_us),
        "p0": pos[s_open],
        "p1": np.where(s_closed, pos[s_close], as_of_pos),
    }
    approvals = {"row": appr_rows, "due_us": _us(new_due), "due_pos": clock.position(new_due)}
    nodes = _nodes(t, c, crow, a1, lookup, at_us, pos, as_of_us, as_of_pos, limits, susp, approvals, tz)

    rows = nodes["case_row"].to_numpy()
    # A case 挂账/缓办 at as_of leaves 应结案数 (its clock stopped) — unless a node of it still open had run past its
    # allowed time before the suspension: 挂账 stops the clock from then on, it does not undo lateness incurred
    # (review49 #1), so the case stays 应结案 (and that node an overdue one, ``_nodes``).
    # An open case whose clock still runs in time — it has an open node and every open node has a limit and is
    # within it — is not yet due at as_of, like the open node that could still close on time (review49 #2): out of
    # 应结案数 while filed, out of 有效上报率's denominator while its report waits for 核实/立案.
    open_node = ~nodes["closed"].to_numpy() & ~nodes["returned_late"].to_numpy()
    overdue_now = _has(n_c, rows[open_node & nodes["overdue_open"].to_numpy()])
    no_limit = _has(n_c, rows[open_node & nodes["allowed_h"].isna().to_numpy()])
    running = _has(n_c, rows[open_node]) & ~overdue_now & ~no_limit & ~np.isin(state_now, list(TERMINAL_STATES))
    c["pending_report"] = running & ~c["valid"].to_numpy(dtype=bool) & ~is_susp
    c["to_close"] = to_close = filed & ~voided_after & ~((is_susp | running) & ~overdue_now)
    c["closed_now"] = closed_now = to_close & (state_now == "closed")
    disposal = nodes["node"].cat.codes.to_numpy() == list(NODES).index("disposal")
    late = np.zeros(n_c, dtype=bool)
    late[rows[disposal & ~nodes["on_time"].to_numpy()]] = True
    c["disposal_on_time"] = disposal_on_time = _has(n_c, rows[disposal]) & ~late
    c["on_time_closed"] = closed_now & disposal_on_time
    # The nodes whose working time decides a figure: counted (closed with a limit, or open/returned and overdue)
    # and in working time. An open node not yet due is in no figure, so a 延期 into a year the calendar does not
    # know warns only once that node counts (review49 #9).
    judged = nodes["counted"].to_numpy() & ~nodes["calendar"].to_numpy()
    nodes["judged"] = judged
    return Facts(
        period=period,
        as_of=as_of_ts,
        cases=c,
        transitions=t,
        nodes=nodes,
        all_cases=cases,
        all_in_period=all_in,
        unknown_years=unknown_node_years(nodes, calendar, judged),
    )


def unknown_node_years(nodes: pd.DataFrame, calendar: WorkingCalendar, mask: np.ndarray) -> tuple[int, ...]:
    """The years the calendar does not know that the working time of the ``mask`` rows of ``nodes`` ran through
    (``first_year`` … ``last_year`` of each: its span to the close, to ``as_of`` while open, or to an approved
    extension's later deadline), sorted. Exact per node: a year between two nodes' spans that none reaches is not
    named, nor one the clock only looked at around them."""
    first = nodes["first_year"].to_numpy(dtype=np.int64)[mask]
    last = nodes["last_year"].to_numpy(dtype=np.int64)[mask]
    spans = np.unique(first * 100_000 + last)  # one integer per (first, last): a 1-D unique, not a row sort
    years = {y for key in spans.tolist() for y in range(key // 100_000, key % 100_000 + 1)}
    return tuple(sorted(y for y in years if not calendar.knows_year(y)))


def judge_case(
    case: Mapping[str, Any],
    transitions: pd.DataFrame,
    calendar: WorkingCalendar,
    node_limits: Mapping[str, Any],
    *,
    as_of: Any,
    urgent_node_limits: Mapping[str, Any] | None = None,
    limit_changes: Sequence[tuple[date | None, Mapping[str, Any], Mapping[str, Any]]] = (),
) -> dict[str, Any]:
    """One case's nodes judged as the evaluation judges them (its detail: the same :func:`prepare`, so a case
    the console calls 按期 is one the indicators count on time).

    ``case``: the ``cases`` columns :func:`prepare` reads (id, source, created_at, disposal_limit_h,
    disposal_limit_unit, urgent); ``transitions``: its record (``id`` orders steps at the same time, and is each
    node's ``open_id``/``close_id``). Steps before ``as_of`` count (``as_of`` earlier than the report is read as
    the report's time). Returns ``nodes``, one dict per node instance in the order they opened — node,
    opened_at, closed_at (None while open), open_id, close_id, elapsed_h (working hours, or clock hours for a
    calendar-time limit, suspensions excluded), limit_h, allowed_h (the limit moved by an approved extension),
    calendar_time and on_time: True/False for a node the evaluation counts (closed with a limit, or open and
    overdue), else None — ``closed_on_time`` (按期结案: closed and every disposal node on time; None unless
    the case is closed) and ``unknown_years``: the years the calendar does not know that a node measured in
    working time ran through (its elapsed time took Mon–Fri as working days there)."""
    created = _stamp(case["created_at"], str(calendar.tz))
    period = Period(created, created + pd.Timedelta(microseconds=1))
    when = max(_stamp(as_of, str(calendar.tz)), period.end)
    cases = pd.DataFrame([dict(case)])
    facts = prepare(
        cases,
        transitions,
        calendar,
        node_limits,
        period,
        as_of=when,
        urgent_node_limits=urgent_node_limits,
        limit_changes=limit_changes,
    )
    n = facts.nodes.sort_values(["open_at", "open_id"], kind="stable")
    nodes = []
    for r in n.itertuples(index=False):
        limit = None if np.isnan(r.limit_us) else round(float(r.limit_us) / _US_HOUR, 4)
        nodes.append(
            {
                "node": r.node,
                "opened_at": r.open_at,
                # a node returned late (回退 after its allowed time) ends at the 回退, judged late
                "closed_at": r.close_at if r.closed or r.returned_late else None,
                "open_id": int(r.open_id),
                "close_id": int(r.close_id) if r.closed or r.returned_late else None,
                "elapsed_h": round(float(r.elapsed_h), 4),
                "limit_h": limit,
                "allowed_h": None if np.isnan(r.allowed_h) else round(float(r.allowed_h), 4),
                "calendar_time": bool(r.calendar),
                "on_time": bool(r.on_time) if r.counted else None,
            }
        )
    row = facts.cases.iloc[0]
    closed = row["state_at"] == "closed"
    unknown = unknown_node_years(facts.nodes, calendar, ~facts.nodes["calendar"].to_numpy())
    return {"nodes": nodes, "closed_on_time": bool(row["on_time_closed"]) if closed else None, "unknown_years": unknown}


def _has(n: int, rows: np.ndarray) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[rows] = True
    return out


def _nodes(  # noqa: PLR0915
    t: pd.DataFrame,
    c: pd.DataFrame,
    crow: np.ndarray,
    a1: np.ndarray,
    lookup: Callable[[Sequence[Iterable[str]], int], np.ndarray],
    at_us: np.ndarray,
    pos: np.ndarray,
    as_of_us: int,
    as_of_pos: float,
    limits: list[tuple[int, dict[str, tuple[float, bool]]]],
    susp: dict[str, np.ndarray],
    approvals: dict[str, np.ndarray],
    tz: Any,
) -> pd.DataFrame:
    """Every node instance (:data:`NODES`) with its elapsed and allowed time, on time, overdue, counted, and the
    local years its working-time arithmetic ran through (``first_year``, ``last_year``)."""
    opens, closes, closeds, kinds, limit_us, calendar, returns = [], [], [], [], [], [], []
    disposal_limit = np.full(len(c), np.nan)
    if "disposal_limit_h" in c.columns:
        disposal_limit = pd.to_numeric(c["disposal_limit_h"], errors="coerce").to_numpy(dtype=np.float64)
    disposal_calendar = np.zeros(len(c), dtype=bool)
    if "disposal_limit_unit" in c.columns:
        disposal_calendar = (c["disposal_limit_unit"] == "calendar_hours").to_numpy(dtype=bool)
    case_urgent = c["urgent"].to_numpy(dtype=bool) if "urgent" in c.columns else np.zeros(len(c), dtype=bool)
    starts = np.array([start for start, _ in limits], dtype=np.int64)
    for node_kind, (openers, closers, cancels, key) in enumerate(NODES.values()):
        kinds_of = lookup([openers, closers, cancels], 3)
        o, cl, closed = _pair(a1, crow, kinds_of)
        returned = np.zeros(len(o), dtype=bool)
        if key is None:
            # A 回退 ends the department's disposal node without counting it (a wrong assignment is the
            # dispatcher's), unless it came after the node's allowed time: that node is judged up to the 回退,
            # late, so returning an overdue case does not erase its lateness (review40 D1). Kept below if so.
            ro, rc, rclosed = _pair(a1, crow, kinds_of, cancelled=True)
            o, cl, closed = np.concatenate([o, ro]), np.concatenate([cl, rc]), np.concatenate([closed, rclosed])
            returned = np.concatenate([returned, np.ones(len(ro), dtype=bool)])
        opens.append(o)
        closes.append(cl)
        closeds.append(closed)
        returns.append(returned)
        kinds.append(np.full(len(o), node_kind, dtype=np.int8))
        if key is None:
            limit_us.append(np.round(disposal_limit[crow[o]] * _US_HOUR))
            calendar.append(disposal_calendar[crow[o]])
            continue
        # The limits in force when each node opened (one set unless the catalogue has dated changes).
        version = np.searchsorted(starts, at_us[o], side="right") - 1 if len(limits) > 1 else np.zeros(len(o), int)
        normal_us = np.array([float(lim[key][0]) for _, lim in limits])[version]
        normal_cal = np.array([lim[key][1] for _, lim in limits], dtype=bool)[version]
        if any("urgent:" + key in lim for _, lim in limits) and case_urgent.any():
            is_urgent = case_urgent[crow[o]]
            urgent = [lim.get("urgent:" + key, lim[key]) for _, lim in limits]
            urgent_us = np.array([float(u[0]) for u in urgent])[version]
            urgent_cal = np.array([u[1] for u in urgent], dtype=bool)[version]
            limit_us.append(np.where(is_urgent, urgent_us, normal_us))
            calendar.append(np.where(is_urgent, urgent_cal, normal_cal))
        else:
            limit_us.append(normal_us)
            calendar.append(normal_cal)
    o, cl, closed = np.concatenate(opens), np.concatenate(closes), np.concatenate(closeds)
    kind, lim, cal_flag = np.concatenate(kinds), np.concatenate(limit_us), np.concatenate(calendar)
    returned = np.concatenate(returns)
    rows = crow[o]
    ended = closed | returned  # a returned node is measured up to its 回退
    cl_safe = np.where(ended, cl, 0)
    start_us, start_pos = at_us[o], pos[o]
    end_us = np.where(ended, at_us[cl_safe] if len(at_us) else 0, as_of_us)
    end_pos = np.where(ended, pos[cl_safe] if len(pos) else 0.0, as_of_pos)
    susp_work, susp_cal = _overlap(rows, start_us, end_us, start_pos, end_pos, susp)
    work = end_pos - start_pos - susp_work
    cal = (end_us - start_us).astype(np.float64) - susp_cal
    elapsed = np.where(cal_flag, cal, work)
    elapsed_us = np.round(elapsed)
    allowed = lim.copy()
    span_end_us = end_us.copy()  # the latest instant the node's arithmetic reads: its end, or a later new deadline

    # 延期: the approved new deadlines inside a disposal node widen its allowed time.
    disposal = np.flatnonzero(kind == list(NODES).index("disposal"))
    arow = approvals["row"]
    ok = ~np.isnan(approvals["due_pos"])
    if len(disposal) and ok.any():
        arow, due_us, due_pos = arow[ok], approvals["due_us"][ok], approvals["due_pos"][ok]
        acase = crow[arow]  # sorted by case, then time
        lo = np.searchsorted(acase, rows[disposal], side="left")
        n = np.searchsorted(acase, rows[disposal], side="right") - lo
        node_i = np.repeat(disposal, n)
        k = np.repeat(lo - np.r_[0, np.cumsum(n)[:-1]], n) + np.arange(int(n.sum()))
        at_k = at_us[arow[k]]
        inside = (at_k >= start_us[node_i]) & (at_k <= end_us[node_i])
        node_i, k, at_k = node_i[inside], k[inside], at_k[inside]
        if len(node_i):
            before_w, before_c = _overlap(rows[node_i], start_us[node_i], at_k, start_pos[node_i],
                                          pos[arow[k]], susp)  # fmt: skip
            ext_w = due_pos[k] - start_pos[node_i] - before_w
            ext_c = (due_us[k] - start_us[node_i]).astype(np.float64) - before_c
            ext = np.round(np.where(cal_flag[node_i], ext_c, ext_w))
            # The latest deadline approved in the node (the service's approvals only ever move it later; an
            # imported record's may not): an extension never shortens the limit or an earlier extension.
            np.fmax.at(allowed, node_i, ext)
            np.maximum.at(span_end_us, node_i, due_us[k])

    has_limit = ~np.isnan(allowed)
    on_time = closed & has_limit & (elapsed_us <= np.nan_to_num(allowed, nan=-1))
    over = has_limit & (elapsed_us > np.nan_to_num(allowed, nan=np.inf))
    returned_late = returned & over
    # Late without a 处置: open and overdue at as_of, or returned after its allowed time. The elapsed time leaves
    # out the time suspended (挂账/缓办), so a node whose case is suspended at as_of is overdue only when it had run
    # past its allowed time before the suspension: 挂账 stops the clock, it cannot erase a late node (review49 #1),
    # as a 回退 cannot; one suspended in time is neither on time nor late.
    overdue_open = (~ended & over) | returned_late
    close_rows = np.where(ended, cl, -1)
    step_id = t["id"].to_numpy() if "id" in t.columns else np.arange(len(t))
    # [start, end) reads the days up to the one holding its last microsecond (an end at midnight: the day before).
    first_year = _local_years(start_us, tz)
    last_year = np.maximum(_local_years(span_end_us - 1, tz), first_year)
    frame = pd.DataFrame(
        {
            "node": pd.Categorical.from_codes(kind, categories=list(NODES)),
            "case_id": t["case_id"].to_numpy()[o],
            "open_id": step_id[o],
            "close_id": pd.arrays.IntegerArray(
                (step_id[cl_safe] if len(step_id) else np.zeros(len(o))).astype(np.int64), ~ended
            ),
            "open_action": _take_cat(t["action"], o),
            "open_at": _take_at(t["at"], o),
            "open_actor": _take_cat(t["actor"], o),
            "open_department": _take_cat(t["department_code"], o),
            "closed": closed,
            "close_action": _take_cat(t["action"], close_rows),
            "close_at": _take_at(t["at"], close_rows),
            "close_actor": _take_cat(t["actor"], close_rows),
            "close_role": _take_cat(t["role"], close_rows),
            "limit_us": lim,
            "calendar": cal_flag,
            "elapsed_h": elapsed / _US_HOUR,
            "allowed_h": allowed / _US_HOUR,
            "on_time": on_time,
            "overdue_open": overdue_open,
            "counted": (closed & has_limit) | overdue_open,
            "case_row": rows,
            "first_year": first_year,
            "last_year": last_year,
            "returned_late": returned_late,
        }
    )
    # A node returned in time is no node (as before): the case went back to the dispatcher.
    keep = ~returned | returned_late
    return frame if keep.all() else frame[keep].reset_index(drop=True)


def _local_years(us: np.ndarray, tz: Any) -> np.ndarray:
    """The local year of each UTC microsecond count."""
    if not len(us):
        return np.zeros(0, dtype=np.int64)
    idx = pd.DatetimeIndex(np.asarray(us, dtype=np.int64).astype("datetime64[us]")).tz_localize("UTC")
    return idx.tz_convert(tz).year.to_numpy().astype(np.int64)


# --------------------------------------------------------------------------------------- indicator tables


def _rate(num: pd.Series, den: pd.Series) -> pd.Series:
    """num / den where den > 0, else NaN (both on the same index, as every caller has them)."""
    if not (num.index is den.index or num.index.equals(den.index)):
        return num.astype(np.float64) / den.where(den > 0).astype(np.float64)
    n, d = num.astype(np.float64).to_numpy(), den.astype(np.float64).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        return pd.Series(np.where(d > 0, n / d, np.nan), index=num.index)


def _distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct integers (a sort: faster here than np.unique's hashing)."""
    s = np.sort(values)
    return s[_first_in_group(s)]


class _Groups:
    """Rows grouped by codes into sorted keys, like ``groupby`` (missing keys dropped, only keys present)."""

    def __init__(self, codes: np.ndarray, keys: pd.Index, mask: np.ndarray | None = None) -> None:
        self.codes = codes if mask is None else np.where(mask, codes, -1)
        self.n_keys = len(keys)
        counts = np.bincount(self.codes[self.codes >= 0], minlength=self.n_keys)
        self.present = np.flatnonzero(counts)
        self.index = keys.take(self.present)
        self._size = counts[self.present]

    def size(self) -> pd.Series:
        return pd.Series(self._size, index=self.index)

    def sum(self, mask: np.ndarray) -> pd.Series:
        """Number of rows with ``mask`` per key (the sum of a boolean column)."""
        ok = mask & (self.codes >= 0)
        return pd.Series(np.bincount(self.codes[ok], minlength=self.n_keys)[self.present], index=self.index)

    def distinct(self, other: np.ndarray) -> pd.Series:
        """Number of distinct ``other`` values (ints ≥ 0; negative = missing, not counted) per key."""
        ok = (self.codes >= 0) & (other >= 0)
        pairs = _distinct(self.codes[ok] * (int(other.max(initial=0)) + 1) + other[ok])
        keys = pairs // (int(other.max(initial=0)) + 1)
        return pd.Series(np.bincount(keys, minlength=self.n_keys)[self.present], index=self.index)


def _counted(facts: Facts, node: str, role: str | None = None) -> np.ndarray:
    """Rows of ``facts.nodes`` that count for ``node`` (closed by ``role`` when given)."""
    n = facts.nodes
    mask = (n["node"].cat.codes.to_numpy() == list(NODES).index(node)) & n["counted"].to_numpy()
    if role is not None:
        mask &= n["closed"].to_numpy() & (n["close_role"] == role).to_numpy(dtype=bool)
    return np.flatnonzero(mask)


def _late(facts: Facts, rows: np.ndarray) -> np.ndarray:
    """Which of the counted node ``rows`` were late: closed after their allowed time, or still open and overdue at
    as_of (the node's own flags; a counted node is one or the other unless on time)."""
    n = facts.nodes
    closed, on_time = n["closed"].to_numpy()[rows], n["on_time"].to_numpy()[rows]
    return (closed & ~on_time) | n["overdue_open"].to_numpy()[rows]


def _action_rows(facts: Facts, action: str) -> np.ndarray:
    """Rows of ``facts.transitions`` taking ``action``."""
    return np.flatnonzero((facts.transitions["action"] == action).to_numpy(dtype=bool))


def _node_counts(
    facts: Facts, node: str, case_codes: np.ndarray, keys: pd.Index, index: pd.Index
) -> tuple[pd.Series, pd.Series]:
    """(counted, on time) ``node`` instances grouped by their case's code: an on-time rate's denominator and
    numerator (应核实数/按时核实数 …), columns so that a 合计 line sums them."""
    rows = _counted(facts, node)
    codes = case_codes[facts.nodes["case_row"].to_numpy()[rows]]
    g = _Groups(codes, keys)
    on_time = facts.nodes["on_time"].to_numpy()[rows]
    return g.size().reindex(index, fill_value=0), g.sum(on_time).reindex(index, fill_value=0)


def _case_counts(c: pd.DataFrame, g: _Groups) -> pd.DataFrame:
    def col(name: str) -> np.ndarray:
        return c[name].to_numpy(dtype=bool)

    return pd.DataFrame(
        {
            "reports": g.size(),
            "valid_reports": g.sum(col("valid")),
            "pending_reports": g.sum(col("pending_report")),
            "filed": g.sum(col("filed")),
            "public_filed": g.sum(col("filed") & col("public")),
            "dispatched": g.sum(col("dispatched")),
            "accurate_dispatched": g.sum(col("accurate_dispatch")),
            "to_close": g.sum(col("to_close")),
            "closed": g.sum(col("closed_now")),
            "on_time_closed": g.sum(col("on_time_closed")),
            "reworked": g.sum(col("to_close") & col("reworked_any")),
            "extended": g.sum(col("extended")),
            "suspended": g.sum(col("suspended_now")),
            "deferred": g.sum(col("deferred_now")),
        },
        index=g.index,
    )


def _common_rates(out: pd.DataFrame) -> pd.DataFrame:
    decided = out["reports"] - out["pending_reports"]  # a report still waiting in time is neither valid nor not
    out["valid_report_rate"] = _rate(out["valid_reports"], decided)
    out["filing_rate"] = _rate(out["filed"], decided)
    out["public_report_rate"] = _rate(out["public_filed"], out["filed"])
    out["accurate_dispatch_rate"] = _rate(out["accurate_dispatched"], out["dispatched"])
    out["closure_rate"] = _rate(out["closed"], out["to_close"])
    out["on_time_closure_rate"] = _rate(out["on_time_closed"], out["to_close"])
    out["rework_rate"] = _rate(out["reworked"], out["to_close"])
    return out


#: (node, counted column, on-time column, rate column) of the regions' node rates: the counts beside each rate.
_NODE_COUNT_COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    ("verify", "to_verify", "on_time_verified", "on_time_verify_rate"),
    ("check", "to_check", "on_time_checked", "on_time_check_rate"),
    ("dispatch", "to_dispatch", "on_time_dispatched", "on_time_dispatch_rate"),
)
REGION_COLUMNS = (
    "subject", "level", "reports", "valid_reports", "pending_reports", "valid_report_rate", "filed", "filing_rate",
    "public_filed", "public_report_rate", "to_verify", "on_time_verified", "on_time_verify_rate", "to_check",
    "on_time_checked", "on_time_check_rate", "to_dispatch", "on_time_dispatched", "on_time_dispatch_rate",
    "dispatched", "accurate_dispatch_rate", "to_dispose", "handled", "on_time_disposal_rate", "overdue_disposals",
    "to_close", "closed", "closure_rate", "on_time_closure_rate", "reworked", "rework_rate", "extended",
    "supervised", "suspended", "deferred", "unit_grids", "unit_grids_from", "filed_per_grid_month", "filed_score",
    "score", "grade", "weight_present", "ungraded_reason",
)  # fmt: skip
DEPARTMENT_COLUMNS = (
    "subject", "dispatched", "returned", "filed", "filed_per_month", "filed_score", "score_group", "to_dispose",
    "handled",
    "on_time_disposal_rate", "overdue_disposals", "to_close", "closed", "closure_rate", "on_time_closure_rate",
    "reworked", "rework_rate", "extended", "supervised", "suspended", "deferred", "score", "grade", "weight_present",
    "ungraded_reason",
)  # fmt: skip
POST_COLUMNS: dict[str, tuple[str, ...]] = {
    "supervisor": (
        "subject", "role", "area", "reports", "valid_reports", "pending_reports", "valid_report_rate", "area_filed",
        "missed_reports", "missed_report_rate", "on_time_verify_rate", "on_time_check_rate", "score", "grade",
        "weight_present", "ungraded_reason",
    ),
    "intake": (
        "subject", "role", "accepted", "accepted_per_month", "accepted_score", "on_time_issue_verify_rate",
        "on_time_issue_check_rate", "score", "grade", "weight_present", "ungraded_reason",
    ),
    "shift_lead": (
        "subject", "role", "filed", "voided", "accurate_filing_rate", "on_time_filing_rate", "on_time_closing_rate",
        "score", "grade", "weight_present", "ungraded_reason",
    ),
    "dispatcher": (
        "subject", "role", "dispatches", "dispatches_per_month", "dispatch_score", "on_time_dispatch_rate",
        "first_dispatches", "accurate_dispatch_rate", "score", "grade", "weight_present", "ungraded_reason",
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

    ``cells``: the unit grids (``code`` or ``unit_grid_code`` + the level column) giving each region's size for
    立案数分值 — grids without cases count too (:func:`gisgrid.history.region_cells`; the service always passes
    them). Without it, or for a region absent from it (a tier-3 grid deleted by a regroup), the distinct unit
    grids seen in all input cases are used, which undercounts a region; ``unit_grids_from`` is ``stored`` or
    ``cases`` accordingly (empty when neither knows the region).
    """
    if level not in LEVELS:
        raise InvalidInput(f"level must be one of {', '.join(LEVELS)}", detail={"level": level})
    col = LEVELS[level]
    c = facts.cases
    if col not in c.columns:
        raise InvalidInput(f"cases: missing column {col!r} for level {level}", detail={"column": col})
    codes, keys = facts.codes("cases", col)
    g = _Groups(codes, keys)
    out = _case_counts(c, g)
    for node, counted, on_time_col, rate_col in _NODE_COUNT_COLUMNS:
        n, on = _node_counts(facts, node, codes, keys, out.index)
        out[counted], out[on_time_col], out[rate_col] = n, on, _rate(on, n)
    rows = _counted(facts, "disposal")
    dg = _Groups(codes[facts.nodes["case_row"].to_numpy()[rows]], keys)
    out["to_dispose"] = dg.size().reindex(out.index, fill_value=0)
    out["handled"] = dg.sum(facts.nodes["closed"].to_numpy()[rows]).reindex(out.index, fill_value=0)
    on_time = dg.sum(facts.nodes["on_time"].to_numpy()[rows]).reindex(out.index, fill_value=0)
    out["on_time_disposal_rate"] = _rate(on_time, out["to_dispose"])
    out["overdue_disposals"] = dg.sum(_late(facts, rows)).reindex(out.index, fill_value=0)
    sup = _action_rows(facts, "supervise")  # 督办 on the region's cases
    sg = _Groups(codes[facts.transitions["case_row"].to_numpy()[sup]], keys)
    out["supervised"] = sg.size().reindex(out.index, fill_value=0)
    out = _common_rates(out)

    def case_sizes() -> pd.Series:  # distinct unit grids seen in all input cases, per region
        if "unit_grid_code" not in facts.all_cases.columns or col not in facts.all_cases.columns:
            return pd.Series(dtype=np.float64)
        lc, lk = facts.codes("all_cases", col)
        uc, _ = facts.codes("all_cases", "unit_grid_code")
        return _Groups(lc, lk).distinct(uc)

    source = pd.Series(pd.NA, index=out.index, dtype=object)
    if cells is not None:
        code_col = "code" if "code" in cells.columns else "unit_grid_code"
        if col not in cells.columns:
            raise InvalidInput(f"cells: missing column {col!r} for level {level}", detail={"column": col})
        sizes = cells.drop_duplicates(code_col)[col].value_counts()  # unit grids per region (a grid's own: 1)
        source[out.index.isin(sizes.index)] = "stored"  # the keys of GRID_COUNT_SOURCES
        # A region no stored grid carries any more (a tier-3 grid deleted by a regroup; finished cases keep the
        # code they were handled under) falls back to its cases' grids rather than losing 立案数分值.
        gone = out.index.difference(sizes.index)
        if len(gone):
            fallback = case_sizes().reindex(gone).dropna()
            sizes = pd.concat([sizes, fallback])
            source[fallback.index] = "cases"
    else:
        sizes = case_sizes()
        source[out.index.isin(sizes.index)] = "cases"
    out["unit_grids"] = sizes.reindex(out.index)
    out["unit_grids_from"] = source
    out["filed_per_grid_month"] = out["filed"] / out["unit_grids"] / facts.months
    out = out.rename_axis("subject").reset_index()
    out.insert(1, "level", level)
    out = _finish(out, "region", rules)
    return out[list(REGION_COLUMNS)]


def _pairs_per_key(case_rows: np.ndarray, codes: np.ndarray, keys: pd.Index) -> pd.Series:
    """Distinct (case, key) pairs per key: rows of the same case and key count once."""
    ok = codes >= 0
    pairs = _distinct(case_rows[ok] * len(keys) + codes[ok])
    return _Groups(pairs % max(len(keys), 1), keys).size()


def evaluate_departments(facts: Facts, *, rules: EvaluationRules | None = None) -> pd.DataFrame:
    """One row per department (see the module docstring)."""
    c, t, nodes = facts.cases, facts.transitions, facts.nodes
    out = _case_counts(c, _Groups(*facts.codes("cases", "final_department")))
    dep, deps = facts.codes("transitions", "department_code")
    action = t["action"]
    crow = t["case_row"].to_numpy()

    def rows_of(name: str) -> np.ndarray:
        return (action == name).to_numpy(dtype=bool)

    dispatch, ret, rework = rows_of("dispatch"), rows_of("return"), rows_of("rework")
    dispatched = _pairs_per_key(crow[dispatch], dep[dispatch], deps)
    returned = _pairs_per_key(crow[ret], dep[ret], deps)
    rows = _counted(facts, "disposal")
    ndep, ndeps = facts.codes("nodes", "open_department")
    g = _Groups(ndep[rows], ndeps)
    # 督办单 (each 督办 step, not each case): to the department the case was with then, the step's department.
    supervised = _Groups(dep, deps, rows_of("supervise")).size()
    index = out.index.union(dispatched.index).union(g.index).union(supervised.index)
    out = out.reindex(index, fill_value=0)
    out["dispatched"] = dispatched.reindex(index, fill_value=0)
    out["returned"] = returned.reindex(index, fill_value=0)
    # 返工/延期 while the case was with the department (their rows carry the department).
    final = c["final_department"]
    final_codes = final.cat.codes.to_numpy() if isinstance(final.dtype, pd.CategoricalDtype) else None
    if final_codes is not None and final.dtype == t["department_code"].dtype:
        same = t["department_code"].cat.codes.to_numpy() == final_codes[crow]
    else:
        same = t["department_code"].astype(object).to_numpy() == final.astype(object).to_numpy()[crow]
    same &= dep >= 0
    mine = rework & same & c["to_close"].to_numpy(dtype=bool)[crow]
    out["reworked"] = _pairs_per_key(crow[mine], dep[mine], deps).reindex(index, fill_value=0)
    ext = rows_of("approve_extension")
    out["extended"] = _pairs_per_key(crow[ext], dep[ext], deps).reindex(index, fill_value=0)
    out["to_dispose"] = g.size().reindex(index, fill_value=0)
    out["handled"] = g.sum(nodes["closed"].to_numpy()[rows]).reindex(index, fill_value=0)
    on_time = g.sum(nodes["on_time"].to_numpy()[rows]).reindex(index, fill_value=0)
    out["on_time_disposal_rate"] = _rate(on_time, out["to_dispose"])
    out["overdue_disposals"] = g.sum(_late(facts, rows)).reindex(index, fill_value=0)
    out["supervised"] = supervised.reindex(index, fill_value=0)
    out = _common_rates(out)
    out["filed_per_month"] = out["filed"] / facts.months
    out = out.rename_axis("subject").reset_index()
    out = _finish(out, "department", rules)
    return out[list(DEPARTMENT_COLUMNS)]


def _closed_nodes_rate(facts: Facts, node: str, role: str) -> tuple[pd.Series, pd.Series]:
    rows = _counted(facts, node, role)
    codes, keys = facts.codes("nodes", "close_actor")
    g = _Groups(codes[rows], keys)
    return g.sum(facts.nodes["on_time"].to_numpy()[rows]), g.size()


def evaluate_posts(  # noqa: PLR0915
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
    c, t = facts.cases, facts.transitions
    crow = t["case_row"].to_numpy()
    actor, actors = facts.codes("transitions", "actor")
    t_role = (t["role"] == role).to_numpy(dtype=bool)

    def rate_pair(node: str) -> tuple[pd.Series, pd.Series]:
        return _closed_nodes_rate(facts, node, role)

    def rate(on: pd.Series, n: pd.Series, index: pd.Index) -> pd.Series:
        return _rate(on.reindex(index, fill_value=0), n.reindex(index, fill_value=0))

    if subject == "supervisor":
        mine = (c["reporter_role"] == role).to_numpy(dtype=bool)
        rep, reps = facts.codes("cases", "reporter_actor")
        g = _Groups(rep, reps, mine)
        v_on, v_n = rate_pair("verify")
        k_on, k_n = rate_pair("check")
        index = g.index.union(v_n.index).union(k_n.index)
        out = pd.DataFrame(index=index)
        out["reports"] = g.size().reindex(index, fill_value=0)
        out["valid_reports"] = g.sum(c["valid"].to_numpy(dtype=bool)).reindex(index, fill_value=0)
        out["pending_reports"] = g.sum(c["pending_report"].to_numpy(dtype=bool)).reindex(index, fill_value=0)
        out["valid_report_rate"] = _rate(out["valid_reports"], out["reports"] - out["pending_reports"])
        out["on_time_verify_rate"] = rate(v_on, v_n, index)
        out["on_time_check_rate"] = rate(k_on, k_n, index)
        if areas is None:
            # Each actor's area: the tier-3 grid of most of its own reports (ties: the smaller code).
            t3, t3s = facts.codes("cases", "tier3_code")
            ok = mine & (rep >= 0) & (t3 >= 0)
            pair, n = np.unique(rep[ok] * len(t3s) + t3[ok], return_counts=True)
            counts = pd.DataFrame({"a": pair // len(t3s), "t3": pair % len(t3s), "n": n})
            counts = counts.sort_values(["a", "n", "t3"], ascending=[True, False, True], kind="mergesort")
            best = counts.drop_duplicates("a")
            areas = pd.DataFrame(
                {"actor": reps.take(best["a"].to_numpy()), "tier3_code": t3s.take(best["t3"].to_numpy())}
            )
        area_col = next(col for col in areas.columns if col != "actor")
        filed = c["filed"].to_numpy(dtype=bool)
        ac, acs = facts.codes("cases", area_col)
        ag = _Groups(ac, acs, filed)
        missed = ag.sum(c["public"].to_numpy(dtype=bool))
        per_area = pd.DataFrame(
            {"area_filed": ag.size(), "missed_reports": missed.astype(np.float64) if (missed == 0).any() else missed}
        )
        a = (
            areas[["actor", area_col]]
            .merge(per_area, left_on=area_col, right_index=True, how="left")
            .fillna({"area_filed": 0, "missed_reports": 0})
        )
        a = a.assign(_area=a[area_col].astype(str)).sort_values(["actor", "_area"], kind="mergesort")
        several = a["actor"].duplicated(keep=False).to_numpy()
        text = pd.Series(a["_area"].to_numpy()[~several], index=a["actor"].to_numpy()[~several], dtype=str)
        if several.any():  # an actor with several areas: "a,b" (sorted as text)
            text = pd.concat([text, a[several].groupby("actor")["_area"].agg(",".join)])
        a = a.groupby("actor")[["area_filed", "missed_reports"]].sum()
        a.insert(0, "area", text.reindex(a.index))
        out = out.join(a, how="left")
        out["missed_report_rate"] = _rate(out["missed_reports"].fillna(0), out["area_filed"].fillna(0))
    elif subject == "intake":
        acts = t_role & t["action"].isin(("request_verify", "reject")).to_numpy(dtype=bool)
        accepted = _pairs_per_key(crow[acts], actor[acts], actors)
        v_on, v_n = rate_pair("accept")
        k_on, k_n = rate_pair("issue_check")
        index = accepted.index.union(v_n.index).union(k_n.index)
        out = pd.DataFrame(index=index)
        out["accepted"] = accepted.reindex(index, fill_value=0)
        out["accepted_per_month"] = out["accepted"] / facts.months
        out["on_time_issue_verify_rate"] = rate(v_on, v_n, index)
        out["on_time_issue_check_rate"] = rate(k_on, k_n, index)
    elif subject == "shift_lead":
        rows = np.flatnonzero(t_role & (t["action"] == "file").to_numpy(dtype=bool))
        rows = rows[_first_in_group(crow[rows])]  # a case's first filing by the role
        voided = c["voided_after_filing"].to_numpy(dtype=bool)[crow[rows]]
        g = _Groups(actor[rows], actors)
        f_on, f_n = rate_pair("file")
        c_on, c_n = rate_pair("close")
        index = g.index.union(f_n.index).union(c_n.index)
        out = pd.DataFrame(index=index)
        out["filed"] = g.size().reindex(index, fill_value=0)
        out["voided"] = g.sum(voided).reindex(index, fill_value=0)
        out["accurate_filing_rate"] = _rate(out["filed"] - out["voided"], out["filed"])
        out["on_time_filing_rate"] = rate(f_on, f_n, index)
        out["on_time_closing_rate"] = rate(c_on, c_n, index)
    else:  # dispatcher
        acts = t_role & (t["action"] == "dispatch").to_numpy(dtype=bool)
        g = _Groups(actor, actors, acts)
        d_on, d_n = rate_pair("dispatch")
        fd, fds = facts.codes("cases", "first_dispatcher")
        first = c["dispatched"].to_numpy(dtype=bool) & fds.isin(g.index)[np.maximum(fd, 0)] & (fd >= 0)
        fg = _Groups(fd, fds, first)
        index = g.index.union(d_n.index)
        out = pd.DataFrame(index=index)
        out["dispatches"] = g.size().reindex(index, fill_value=0)
        out["dispatches_per_month"] = out["dispatches"] / facts.months
        out["on_time_dispatch_rate"] = rate(d_on, d_n, index)
        out["first_dispatches"] = fg.size().reindex(index, fill_value=0)
        accurate = fg.sum(c["accurate_dispatch"].to_numpy(dtype=bool)).reindex(index, fill_value=0)
        out["accurate_dispatch_rate"] = _rate(accurate, out["first_dispatches"])
    # Posts without a named actor are no person: not ranked among the 监督员 (nor in other posts), review44 U4.
    out = out.drop(index=UNNAMED_ACTOR, errors="ignore")
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
    urgent_node_limits: Mapping[str, Any] | None = None,
    limit_changes: Sequence[tuple[date | None, Mapping[str, Any], Mapping[str, Any]]] = (),
) -> pd.DataFrame:
    """One call: ``subject`` is ``region`` (with ``level``), ``department`` or a post role. The table's ``attrs``
    state ``as_of``, ``provisional`` and ``unknown_years`` (:class:`Facts`)."""
    check_subject(subject)
    facts = prepare(
        cases,
        transitions,
        calendar,
        node_limits,
        period,
        as_of=as_of,
        urgent_node_limits=urgent_node_limits,
        limit_changes=limit_changes,
    )
    if subject == "region":
        out = evaluate_regions(facts, level, rules=rules, cells=cells)
    elif subject == "department":
        out = evaluate_departments(facts, rules=rules)
    else:
        out = evaluate_posts(facts, subject, rules=rules, areas=areas)
    # Only the years this table's own nodes ran through: a 延期 into next year warns the departments' table,
    # not the 受理员's, whose figures never read that node (review40 D4).
    node = facts.nodes["node"].cat.codes.to_numpy()
    mine = np.isin(node, [list(NODES).index(n) for n in SUBJECT_NODES[subject]])
    unknown = unknown_node_years(facts.nodes, calendar, facts.nodes["judged"].to_numpy() & mine)
    out.attrs.update(as_of=facts.as_of, provisional=facts.provisional, unknown_years=unknown)
    return out


#: The nodes whose time each table's figures read (the on-time rates; 按期结案 reads the 处置 nodes).
SUBJECT_NODES: dict[str, tuple[str, ...]] = {
    "region": ("verify", "check", "dispatch", "disposal"),
    "department": ("disposal",),
    "supervisor": ("verify", "check"),
    "grid_worker": ("verify", "check"),
    "intake": ("accept", "issue_check"),
    "shift_lead": ("file", "close"),
    "dispatcher": ("dispatch",),
}


def check_subject(subject: str) -> str:
    """``subject`` when it is one of :data:`EVALUATED` (region, department, the post roles), else refused naming
    every choice."""
    if subject in EVALUATED:
        return subject
    raise InvalidInput(
        f"subject: {subject!r} is not one of {', '.join(EVALUATED)}",
        detail=[{"field": "subject", "value": subject, "reason": "unknown subject", "choices": list(EVALUATED)}],
        reason=Reason.LITERAL_ERROR,
    )


#: Region levels of :func:`evaluate_all` (LEVELS without the aliases community and street).
REGION_LEVELS: tuple[str, ...] = ("unit_grid", "tier3", "tier2", "tier1", "district")


def evaluate_all(
    facts: Facts,
    *,
    levels: Sequence[str] = REGION_LEVELS,
    rules: EvaluationRules | None = None,
    cells: pd.DataFrame | None = None,
    areas: pd.DataFrame | None = None,
) -> dict[str, pd.DataFrame]:
    """Every table from one :func:`prepare`: ``region/<level>`` for each level, ``department`` and
    ``post/<role>`` for each post role (a period's whole evaluation; far cheaper than one :func:`evaluate` each)."""
    out = {f"region/{level}": evaluate_regions(facts, level, rules=rules, cells=cells) for level in levels}
    out["department"] = evaluate_departments(facts, rules=rules)
    for role in POST_ROLES:
        out[f"post/{role}"] = evaluate_posts(facts, role, rules=rules, areas=areas)
    return out


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


# --------------------------------------------------------------------------------------- every assessed unit

#: The 不参评 reason of a unit listed without a case in the period (:func:`with_every_unit`).
NO_CASES_REASON = "本期无案件"
#: The columns that count (cases, nodes, steps, grids): whole numbers in every table and export, never 0.0.
COUNT_COLUMNS: frozenset[str] = frozenset(
    {
        "reports", "valid_reports", "pending_reports", "filed", "public_filed", "dispatched", "returned",
        "to_dispose", "handled", "overdue_disposals", "to_close", "closed", "reworked", "extended", "supervised",
        "suspended", "deferred", "missed_reports", "area_filed", "accepted", "voided", "dispatches",
        "first_dispatches", "unit_grids", "to_verify", "on_time_verified", "to_check", "on_time_checked",
        "to_dispatch", "on_time_dispatched",
    }
)  # fmt: skip
#: Counts per month: 0 for a unit without a case (the facts are zero), as the counts.
_PER_MONTH = ("filed_per_grid_month", "filed_per_month", "accepted_per_month", "dispatches_per_month")


def table_columns(subject: str) -> tuple[str, ...]:
    """The columns of the table of ``subject`` (a region level's, the departments', a post's), in order."""
    check_subject(subject)
    if subject == "region":
        return REGION_COLUMNS
    if subject == "department":
        return DEPARTMENT_COLUMNS
    return POST_COLUMNS[POST_ROLES[subject]]


def empty_table(subject: str) -> pd.DataFrame:
    """The table of ``subject`` with no row (a period without a case), its columns as :func:`evaluate` gives."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in table_columns(subject)})


def region_sizes(cells: pd.DataFrame, level: str) -> pd.Series:
    """Stored unit grids per region of ``level`` (``cells`` as :func:`evaluate_regions` takes them)."""
    col = LEVELS[level]
    code_col = "code" if "code" in cells.columns else "unit_grid_code"
    return cells.drop_duplicates(code_col)[col].value_counts()


def with_every_unit(
    table: pd.DataFrame,
    subject: str,
    units: Iterable[str],
    *,
    level: str = "tier3",
    rules: EvaluationRules | None = None,
    sizes: pd.Series | None = None,
) -> pd.DataFrame:
    """``table`` with a row for each assessed unit of ``units`` it lacks — the department catalogue, the stored
    regions of ``level`` —, so that an officer's sheet lists every unit assessed: counts 0 (and counts per month
    0), no rate, no score, grade 不参评 (``rules.ungraded``) with ``ungraded_reason`` :data:`NO_CASES_REASON`,
    ``weight_present`` 0. A region's ``unit_grids`` comes from ``sizes`` (:func:`region_sizes`), ``stored``.
    Rows of ``table`` are kept as they are (a unit outside ``units`` too: an imported department code)."""
    rules = rules or default_rules()
    have = set(table["subject"].astype(str)) if len(table) else set()
    missing = [u for u in dict.fromkeys(str(u) for u in units) if u not in have]
    if not missing:
        return table
    add = pd.DataFrame({"subject": missing})
    for column in table.columns:
        if column == "subject":
            continue
        if column in COUNT_COLUMNS or column in _PER_MONTH:
            add[column] = 0 if column in COUNT_COLUMNS else 0.0
        elif column == "level":
            add[column] = level
        elif column == "role":
            add[column] = subject
        elif column == "grade":
            add[column] = rules.ungraded
        elif column == "weight_present":
            add[column] = 0.0
        elif column == "ungraded_reason":
            add[column] = NO_CASES_REASON
        elif column == "score_group":
            add[column] = rules.score_groups(add["subject"]).to_numpy()
        else:
            add[column] = np.nan
    if subject == "region" and "unit_grids" in add.columns:
        got = (sizes if sizes is not None else pd.Series(dtype=np.int64)).reindex(missing)
        add["unit_grids"] = got.to_numpy()
        add["unit_grids_from"] = pd.Series("stored", index=add.index, dtype=object).where(got.notna().to_numpy())
    out = add if table.empty else pd.concat([table, add.astype({"subject": table["subject"].dtype})], ignore_index=True)
    out.attrs = dict(table.attrs)
    return integer_counts(out)


def integer_counts(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with its :data:`COUNT_COLUMNS` as whole numbers (int64; nullable Int64 where one is missing, e.g.
    a 监督员 without an area), so JSON and CSV say 0, not 0.0."""
    out = table.copy()
    for column in COUNT_COLUMNS.intersection(out.columns):
        values = pd.to_numeric(out[column], errors="coerce")
        out[column] = values.astype(np.int64) if values.notna().all() else values.round().astype("Int64")
    out.attrs = dict(table.attrs)
    return out
