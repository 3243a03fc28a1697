"""The case list (案件列表) over PostGIS: its filter (:class:`CaseFilter`) as SQL, its orders and keyset paging
(page cursors), the open cases per traffic light, the heat map and the GeoJSON of a listed case.

A filter's bad field is refused by name (an unknown state, source, department or class; a grid code of the wrong
length …), never answered with an empty list. A case of the list is shown as its detail shows it
(:func:`gisgrid.cases.case_summary`'s fields, from the same columns).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from gisgrid import geodesy, workflow
from gisgrid.cases import (
    CASE_COLUMNS,
    CASE_NO_MAX,
    CASE_NO_PATTERN,
    SOURCES,
    CaseServices,
    actions_in_time,
    case_json,
    check_acting_department,
    check_texts,
    light_of,
    local_now,
    snapshot_from_mapping,
)
from gisgrid.errors import InvalidInput, Reason
from gisgrid.evaluation import traffic_lights
from gisgrid.node_clock import LOCAL_TZ
from gisgrid.settings import STORAGE_SRID

#: The columns :func:`~gisgrid.cases.snapshot_from_mapping` reads but the version (which no action's availability
#: depends on).
_SNAPSHOT_COLUMNS = ("state", "previous_state", "department_code", "rework_count", "escalation_level",
                     "pending_extension")  # fmt: skip


#: The ``queue`` filter by the name a dispatcher asks for: ``manual`` (人工派遣) — the routing found no department,
#: none has been chosen since and the case may still be dispatched (``MANUAL_QUEUE_STATES``); ``routed`` — a
#: department is decided (by the routing, an override or a dispatcher's choice), whatever the state since. A case
#: the routing left to a person that ended undispatched (不予立案, 作废, merged) is in neither.
CASE_QUEUES: dict[str, str] = {
    "manual": "c.routing -> 'decision' ->> 'queue' = 'manual' AND c.department_code IS NULL "
    "AND c.state = ANY(:queue_states)",
    # A manual case dispatched before the choice was written into the decision (older data) has its department.
    "routed": "(c.routing -> 'decision' ->> 'queue' = 'auto' OR (c.routing -> 'decision' ->> 'queue' = 'manual' "
    "AND c.department_code IS NOT NULL))",
}
#: The states a 派遣 is still ahead in: before it (上报, 核实, 立案), 回退, and 挂账 — with no department set, a
#: suspended case was parked before any 派遣 and comes back to 立案 on 挂账恢复. Not the ends (不予立案, 作废, 结案).
MANUAL_QUEUE_STATES: tuple[str, ...] = ("reported", "verified", "filed", "suspended")  # 回退 keeps its department

#: The grid filter: a code's length → the case column it names (tier 1 街道 9, tier 2 社区 12, tier 3 14 digits, unit
#: grid 15). Codes only: a name would be ambiguous across streets.
GRID_FILTER_COLUMNS: dict[int, str] = {9: "street_code", 12: "community_code", 14: "tier3_code", 15: "unit_grid_code"}
GRID_FILTER_PATTERN = re.compile("|".join(rf"\d{{{n}}}" for n in GRID_FILTER_COLUMNS))


@dataclass
class CaseFilter:
    state: list[str] | None = None
    class_code: str | None = None
    department: str | None = None
    grid: str | None = None  # unit grid (15) or tier code (9/12/14)
    source: str | None = None
    light: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    bbox: tuple[float, float, float, float] | None = None
    escalation_level: int | None = None  # 提级: 2 二级网格, 1 一级网格 (3: not escalated)
    case_no: str | None = None  # exact: the number a caller gives
    pending_extension: bool | None = None  # 延期待批: an extension request waits for its approval
    queue: str | None = None  # manual: 人工派遣, still waiting for a dispatcher's choice; routed: decided (CASE_QUEUES)
    changed_since: dt.datetime | None = None  # the record changed (reported, any step) at or after
    external_ref: str | None = None  # exact: the sending system's own number
    sort: str = "newest"  # CASE_SORTS
    limit: int = 100
    offset: int = 0
    after: str | None = None  # a page cursor (page_cursor): the page starts after that case, in the sort's order


#: Orders of a case list: ``newest`` — last reported first; ``updated`` — least recently changed first, the order a
#: system following the cases pages through (``changed_since`` its last poll's latest ``updated_at``); ``due`` —
#: the running deadline first (most overdue first, a department's or the console's most urgent cases on the
#: first page), then the 挂账 cases — their clock is stopped (no light), the deadline they keep is not running, so
#: they are not the most overdue — among themselves by that deadline, then the cases without a deadline (finished).
#: ``due``'s three groups, in order: 0 a running deadline, 1 挂账 (suspended), 2 no deadline.
_DUE_RANK_SQL = "(CASE WHEN c.state = 'suspended' THEN 1 WHEN c.due_at IS NULL THEN 2 ELSE 0 END)"
CASE_SORTS: dict[str, str] = {
    "newest": "c.id DESC",
    "updated": "c.updated_at, c.id",
    "due": f"{_DUE_RANK_SQL}, c.due_at NULLS LAST, c.id",
}
#: The time column of a keyset order (its cursor carries that time before the id).
_CURSOR_TIMES = {"updated": "updated_at", "due": "due_at"}

#: Page cursors (keyset paging): ``newest`` — the last case's id; ``updated``/``due`` — its updated_at/due_at in
#: microseconds since the epoch (``n`` for a case without a due_at), a dot, its id; a ``due`` cursor at a 挂账 case
#: has an ``s`` before the time (``s…`` or ``sn``), the group it is in. The next page is what comes after that case
#: in the order, so reports arriving and cases changing between two pages neither repeat nor skip a case, as an
#: offset would.
_CURSOR_PATTERNS = {
    "newest": re.compile(r"[1-9]\d{0,17}"),
    "updated": re.compile(r"()(-?\d{1,18})\.([1-9]\d{0,17})"),
    "due": re.compile(r"(s?)(-?\d{1,18}|n)\.([1-9]\d{0,17})"),
}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class _Mark(NamedTuple):
    """Where a cursor points: its case id, time (None: ``newest``, or a ``due`` case without a deadline) and, for
    ``due``, whether that case is 挂账."""

    id: int
    at: dt.datetime | None
    suspended: bool = False


def _due_rank(suspended: bool, at: dt.datetime | None) -> int:
    """The group of ``due`` a case is in (:data:`_DUE_RANK_SQL`)."""
    return 1 if suspended else 2 if at is None else 0


def page_cursor(sort: str, case: Mapping[str, Any]) -> str:
    """The cursor of the page that follows ``case`` (a row of the list's query) in ``sort``."""
    column = _CURSOR_TIMES.get(sort)
    if column is None:
        return str(case["id"])
    at = case[column]
    group = "s" if sort == "due" and case["state"] == "suspended" else ""
    return f"{group}{'n' if at is None else (at - _EPOCH) // dt.timedelta(microseconds=1)}.{case['id']}"


def _keyset_after(sort: str, mark: _Mark) -> tuple[str, dict[str, Any]]:
    """The condition (over ``c``) and parameters of the cases after a cursor in ``sort``."""
    params: dict[str, Any] = {"after_id": mark.id, "after_at": mark.at}
    if sort == "newest":
        return "c.id < :after_id", params
    if sort == "updated":
        return "(c.updated_at, c.id) > (:after_at, :after_id)", params
    # due: a later group, or the same group and later in it (by due_at, those without one last, then id)
    if mark.at is None:
        within = "(c.due_at IS NULL AND c.id > :after_id)"
    else:
        within = "((c.due_at, c.id) > (:after_at, :after_id) OR c.due_at IS NULL)"
    rank = _due_rank(mark.suspended, mark.at)
    return f"({_DUE_RANK_SQL} > :after_rank OR ({_DUE_RANK_SQL} = :after_rank AND {within}))", {
        **params,
        "after_rank": rank,
    }


def _keyset_key(sort: str, mark: _Mark) -> tuple[Any, ...]:
    """A case's place in ``sort`` as a comparable key (larger: later in the list)."""
    if sort == "newest":
        return (-mark.id,)
    rank = _due_rank(mark.suspended, mark.at) if sort == "due" else 0
    return (rank, mark.at is None, mark.at or _EPOCH, mark.id)


def _row_mark(sort: str, row: Any) -> _Mark:
    """A result row's place, as a cursor names it."""
    column = _CURSOR_TIMES.get(sort)
    return _Mark(row["id"], None if column is None else row[column], sort == "due" and row["state"] == "suspended")


def _after(sort: str, cursor: str) -> _Mark:
    """Where a cursor points; a cursor of another order or not made here is refused."""
    m = _CURSOR_PATTERNS[sort].fullmatch(cursor)
    if m is None:
        raise InvalidInput(
            f"after: not a page cursor of sort={sort} (take it from the list's next link), got {cursor[:40]!r}",
            detail=[{"field": "after"}],
            reason=Reason.AFTER_UNREADABLE,
        )
    if sort == "newest":
        return _Mark(int(cursor), None)
    suspended = m[1] == "s"
    if m[2] == "n":
        return _Mark(int(m[3]), None, suspended)
    try:
        at = _EPOCH + dt.timedelta(microseconds=int(m[2]))
    except OverflowError:
        raise InvalidInput(
            f"after: the cursor's time is out of range, got {cursor[:40]!r}",
            detail=[{"field": "after"}],
            reason=Reason.AFTER_UNREADABLE,
        ) from None
    return _Mark(int(m[3]), at, suspended)


#: An event class code as a filter takes it: 4 or 5 digits (GB/T 47678 and the city's own).
CLASS_CODE_PATTERN = re.compile(r"\d{4,5}")


def _filter_sql(  # noqa: C901, PLR0915
    f: CaseFilter, departments: Mapping[str, str], events: Any
) -> tuple[str, dict[str, Any]]:
    """The WHERE condition (over alias ``c``) and parameters of a case filter; refuses a bad field by name — a
    class code of the wrong form, a department the catalogue does not have (``departments``: code → name), as an
    unknown state or source is, rather than an empty answer."""
    where: list[str] = ["TRUE"]
    params: dict[str, Any] = {}
    check_texts(
        {
            "class_code": f.class_code,
            "department": f.department,
            "grid": f.grid,
            "source": f.source,
            "external_ref": f.external_ref,
        }
    )
    if f.class_code is not None and not CLASS_CODE_PATTERN.fullmatch(f.class_code):
        raise InvalidInput(
            f"class_code: an event class code has 4 or 5 digits, got {f.class_code[:40]!r}",
            detail=[{"field": "class_code"}],
            reason=Reason.STRING_PATTERN_MISMATCH,
        )
    if f.class_code is not None and not any(
        f.class_code in events.classes(scheme) for scheme in ("gbt47678", "cjt214")
    ):
        # a code in neither catalogue finds nothing: said, as an unknown department is (review48 F4)
        raise InvalidInput(
            f"class_code: unknown event class {f.class_code!r} (in neither the GB/T 47678 nor the CJ/T 214 catalogue)",
            detail=[{"field": "class_code", "value": f.class_code}],
            reason=Reason.UNKNOWN_CLASS,
        )
    if f.department and f.department not in departments:
        raise InvalidInput(
            f"department: unknown department {f.department[:40]!r}",
            detail=[{"field": "department", "value": f.department[:40]}],
            reason=Reason.UNKNOWN_DEPARTMENT,
        )
    if f.case_no is not None:
        if not CASE_NO_PATTERN.fullmatch(f.case_no):
            raise InvalidInput(
                f"case_no: a case number is 1 to {CASE_NO_MAX} characters, no space first or last, "
                f"got {f.case_no[:40]!r}",
                detail=[{"field": "case_no"}],
                reason=Reason.STRING_PATTERN_MISMATCH,
            )
        where.append("c.case_no = :case_no")
        params["case_no"] = f.case_no
    if f.external_ref is not None:
        if not f.external_ref.strip():  # a blank number names no case: refused as at intake, not "every case"
            raise InvalidInput(
                "external_ref: empty; give the sending system's number to look up",
                detail=[{"field": "external_ref", "reason": "empty"}],
                reason=Reason.STRING_TOO_SHORT,
            )
        where.append("c.external_ref = :xref")
        params["xref"] = f.external_ref
    if f.pending_extension is not None:
        where.append("c.pending_extension = :pext")
        params["pext"] = f.pending_extension
    if f.queue is not None:
        if f.queue not in CASE_QUEUES:
            raise InvalidInput(
                f"queue: must be one of {', '.join(CASE_QUEUES)}, got {f.queue[:40]!r}",
                detail=[{"field": "queue"}],
                reason=Reason.LITERAL_ERROR,
            )
        where.append(CASE_QUEUES[f.queue])
        if f.queue == "manual":
            params["queue_states"] = list(MANUAL_QUEUE_STATES)
    if f.state:
        unknown = [s for s in f.state if s not in workflow.STATES]
        if unknown:
            raise InvalidInput(
                f"state: unknown state(s) {', '.join(unknown)}",
                detail=[{"field": "state"}],
                reason=Reason.LITERAL_ERROR,
            )
        where.append("c.state = ANY(:states)")
        params["states"] = f.state
    if f.class_code:
        where.append("c.class_code = :cls")
        params["cls"] = f.class_code
    if f.escalation_level is not None:
        where.append("c.escalation_level = :esc")
        params["esc"] = f.escalation_level
    if f.department:
        where.append("c.department_code = :dep")
        params["dep"] = f.department
        if not f.state or "returned" not in f.state:
            # A returned case (回退) sits in the dispatcher's queue, not with the department that returned it; it
            # is listed under that department only when returned cases are asked for by state.
            where.append("c.state <> 'returned'")
    if f.source:
        if f.source not in SOURCES:
            raise InvalidInput(
                f"source: must be one of {', '.join(SOURCES)}",
                detail=[{"field": "source"}],
                reason=Reason.LITERAL_ERROR,
            )
        where.append("c.source = :src")
        params["src"] = f.source
    if f.grid:
        column = GRID_FILTER_COLUMNS.get(len(f.grid))
        if column is None or not f.grid.isdigit():
            raise InvalidInput(
                "grid: a grid code has 15 (unit), 9, 12 or 14 (tiers 1–3) digits",
                detail=[{"field": "grid"}],
                reason=Reason.STRING_PATTERN_MISMATCH,
            )
        where.append(f"c.{column} = :grid")
        params["grid"] = f.grid
    # A period without an offset is China time, as every time the service answers with (not the server's zone).
    since, until = (t.replace(tzinfo=LOCAL_TZ) if t and t.tzinfo is None else t for t in (f.since, f.until))
    if since and until and until <= since:
        raise InvalidInput(
            "until: must be after since", detail=[{"field": "until"}], reason=Reason.UNTIL_NOT_AFTER_SINCE
        )
    if since:
        where.append("c.created_at >= :since")
        params["since"] = since
    if f.changed_since is not None:
        where.append("c.updated_at >= :changed_since")
        cs = f.changed_since
        params["changed_since"] = cs.replace(tzinfo=LOCAL_TZ) if cs.tzinfo is None else cs
    if until:
        where.append("c.created_at < :until")
        params["until"] = until
    if f.bbox:
        where.append(f"c.geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, {STORAGE_SRID})")
        params.update(dict(zip(("x0", "y0", "x1", "y1"), f.bbox, strict=True)))
    if f.light and f.light not in ("green", "yellow", "red"):
        raise InvalidInput(
            "light: must be green, yellow or red", detail=[{"field": "light"}], reason=Reason.LITERAL_ERROR
        )
    return " AND ".join(where), params


def _actions_for(
    role: str, department: str | None = None, now: dt.datetime | None = None
) -> Callable[[Any], list[str]]:
    """``workflow.allowed_actions`` of ``role`` for many rows of CASE_COLUMNS: worked out once per distinct
    snapshot (a page of 1000 cases has a few dozen), from the columns the list reads anyway. An unknown role is
    refused at once, also when no case matches."""
    workflow.allowed_actions(workflow.CaseState(), role)
    seen: dict[tuple[Any, ...], list[str]] = {}
    when = local_now(now)

    def of(row: Any) -> list[str]:
        key = tuple(row[k] for k in _SNAPSHOT_COLUMNS)
        actions = seen.get(key)
        if actions is None:
            actions = seen[key] = workflow.allowed_actions(snapshot_from_mapping(row), role, department)
        return actions_in_time(list(actions), row, when)

    return of


class CasePage(NamedTuple):
    items: list[dict[str, Any]]
    matched: int  # the filter's cases, whatever the page
    next_after: str | None  # the cursor of the next page, None on the last


def list_cases(
    conn: Connection,
    services: CaseServices,
    f: CaseFilter,
    *,
    role: str | None = None,
    department: str | None = None,
    now: dt.datetime | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """A page of the filtered cases in the filter's order (:data:`CASE_SORTS`: newest first unless asked), and how
    many match; with ``role``, each case's ``allowed_actions`` as its detail gives them."""
    page = case_page(conn, services, f, role=role, department=department, now=now)
    return page.items, page.matched


def case_page(
    conn: Connection,
    services: CaseServices,
    f: CaseFilter,
    *,
    role: str | None = None,
    department: str | None = None,
    now: dt.datetime | None = None,
) -> CasePage:
    """:func:`list_cases` with the cursor of the next page: ``f.after`` (a cursor) or ``f.offset`` says where the
    page starts, not both."""
    now = local_now(now)
    if role == workflow.DEPARTMENT_ROLE:
        check_acting_department(services, department)
    actions = _actions_for(role, department, now) if role is not None else None
    cond, params = _filter_sql(f, services.departments, services.events)
    if f.sort not in CASE_SORTS:
        raise InvalidInput(
            f"sort: must be one of {', '.join(CASE_SORTS)}, got {f.sort[:40]!r}",
            detail=[{"field": "sort"}],
            reason=Reason.LITERAL_ERROR,
        )
    after = None
    if f.after is not None:
        if f.offset:
            raise InvalidInput(
                "after: give a page cursor or an offset, not both",
                detail=[{"field": "after"}],
                reason=Reason.AFTER_WITH_OFFSET,
            )
        after = _after(f.sort, f.after)
    order = CASE_SORTS[f.sort]
    base = f"SELECT {CASE_COLUMNS} FROM cases c LEFT JOIN departments d ON d.code = c.department_code WHERE {cond}"

    def shown(row: Any) -> dict[str, Any]:
        data = case_json(services, row, now)
        if actions is not None:
            data["allowed_actions"] = actions(row)
        return data

    def paged(rows: list[Any], matched: int) -> CasePage:
        more = len(rows) > f.limit
        rows = rows[: f.limit]
        return CasePage([shown(r) for r in rows], matched, page_cursor(f.sort, rows[-1]) if more and rows else None)

    if f.light:
        # The light depends on working time, computed here for the filtered cases, then paged.
        rows = conn.execute(text(base + f" AND c.due_at IS NOT NULL ORDER BY {order}"), params).mappings().all()
        lit = [r for r in rows if light_of(services, r, now) == f.light]
        if after is None:
            return paged(lit[f.offset : f.offset + f.limit + 1], len(lit))
        mark = _keyset_key(f.sort, after)
        rest = [r for r in lit if _keyset_key(f.sort, _row_mark(f.sort, r)) > mark]
        return paged(rest[: f.limit + 1], len(lit))
    matched = int(conn.execute(text(f"SELECT count(*) FROM cases c WHERE {cond}"), params).scalar_one())
    if after is not None:
        later, later_params = _keyset_after(f.sort, after)
        base += f" AND {later}"
        params = {**params, **later_params}
    rows = (
        conn.execute(
            text(base + f" ORDER BY {order} LIMIT :limit OFFSET :offset"),
            {**params, "limit": f.limit + 1, "offset": f.offset},
        )
        .mappings()
        .all()
    )
    return paged(list(rows), matched)


#: Heat-map cells: cases are counted per square of this many degrees (about 50 m).
HEAT_CELL_DEG = 0.0005


def case_heat(conn: Connection, services: CaseServices, f: CaseFilter) -> list[tuple[float, float, int]]:
    """(lat, lon, cases) per small square for a heat map of the filtered cases: a period of 100,000 cases
    becomes a few thousand weighted points. The traffic-light filter needs working time and is not offered."""
    if f.light:
        raise InvalidInput(
            "light: the heat map counts cases of any light", detail=[{"field": "light"}], reason=Reason.EXTRA_FORBIDDEN
        )
    cond, params = _filter_sql(f, services.departments, services.events)
    rows = conn.execute(
        text(
            f"""
            SELECT avg(ST_Y(c.geom)), avg(ST_X(c.geom)), count(*)
            FROM cases c WHERE {cond} AND c.duplicate_of IS NULL
            GROUP BY round(ST_X(c.geom) / :cell), round(ST_Y(c.geom) / :cell)
            """
        ),
        {**params, "cell": HEAT_CELL_DEG},
    ).all()
    return [(round(float(lat), 6), round(float(lon), 6), int(n)) for lat, lon, n in rows]


def light_counts(
    conn: Connection, services: CaseServices, f: CaseFilter | None = None, *, now: dt.datetime | None = None
) -> dict[str, int]:
    """Open cases (of the filter) per traffic light, computed for all of them at once (the console asks every
    10 s); the filter's light and paging do not apply. ``suspended``: the filter's 挂账 cases, whose clock is
    stopped and which have no light (so that the four add up to the open cases the list counts)."""
    now = local_now(now)
    cond, params = _filter_sql(replace(f, light=None) if f else CaseFilter(), services.departments, services.events)
    # One query a poll: the 挂账 cases ride along flagged, their (stopped) clocks unread.
    rows = pd.read_sql(
        text(
            f"SELECT c.state = 'suspended' AS suspended, c.node_started_at, c.due_at, c.node_calendar_time "
            f"FROM cases c WHERE {cond} AND c.state <> ALL(:t) AND (c.state = 'suspended' OR "
            "(c.due_at IS NOT NULL AND c.node_started_at IS NOT NULL))"
        ),
        conn,
        params={**params, "t": list(workflow.TERMINAL_STATES)},
    )
    suspended = rows["suspended"].to_numpy(dtype=bool)
    running = rows[~suspended].reset_index(drop=True)
    counts = {"green": 0, "yellow": 0, "red": 0}
    if len(running):
        started = pd.to_datetime(running["node_started_at"], utc=True)
        due = pd.to_datetime(running["due_at"], utc=True)
        lights = traffic_lights(
            started, due, now, services.calendar, calendar_time=running["node_calendar_time"].to_numpy(dtype=bool)
        )
        for light, n in zip(*np.unique(lights.astype(str), return_counts=True), strict=True):
            counts[str(light)] = int(n)
    counts["suspended"] = int(suspended.sum())
    return counts


def heat_in_datum(points: list[tuple[float, float, int]], datum: str) -> list[tuple[float, float, int]]:
    """Heat-map points (lat, lon, cases) with lat/lon in ``datum``, as :func:`~gisgrid.cases.in_datum` for cases."""
    to = geodesy.check_datum(datum)
    if to in ("cgcs2000", "wgs84") or not points:
        return points
    lon, lat = geodesy.from_storage([p[1] for p in points], [p[0] for p in points], to)
    return [(round(float(y), 6), round(float(x), 6), p[2]) for p, x, y in zip(points, lon, lat, strict=True)]


def as_feature(case: dict[str, Any]) -> dict[str, Any]:
    props = {k: v for k, v in case.items() if k not in ("lon", "lat")}
    return {
        "type": "Feature",
        "id": case["id"],
        "geometry": {"type": "Point", "coordinates": [case["lon"], case["lat"]]},
        "properties": props,
    }
