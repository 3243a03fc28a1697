"""Case histories in and out of PostGIS: write a simulated (or imported) history, read one for evaluation.

The evaluation and risk modules are pure (DataFrames shaped like ``cases`` and ``case_transitions``); this
module moves those frames to and from the tables, in one transaction per write.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, Engine, text

from gisgrid.errors import InvalidInput
from gisgrid.evaluation import Period
from gisgrid.settings import STORAGE_SRID
from gisgrid.storage.bulk import copy_frame

CASE_COLUMNS = (
    "id",
    "case_no",
    "scheme",
    "class_code",
    "matter_code",
    "disposal_type",
    "urgent",
    "state",
    "source",
    "reporter",
    "reporter_role",
    "unit_grid_code",
    "district_code",
    "street_code",
    "community_code",
    "tier3_code",
    "department_code",
    "previous_state",
    "rework_count",
    "escalation_level",
    "duplicate_of",
    "created_at",
    "updated_at",
    "closed_at",
    "version",
    "geom",
)
TRANSITION_COLUMNS = (
    "case_id",
    "action",
    "from_state",
    "to_state",
    "actor",
    "role",
    "at",
    "department_code",
    "details",
    "effects",
    "version",
    "note",
)


@dataclass
class WrittenHistory:
    cases: int
    transitions: int
    first_id: int
    last_id: int


def cells_for_simulation(conn: Connection, district: str | None = None) -> pd.DataFrame:
    """Unit grids with their tiers and an interior point, as the simulator takes them."""
    rows = pd.read_sql(
        text(
            """
            SELECT code, coalesce(tier3_code, community_code, street_code, district_code) AS tier3_code,
                   community_code, street_code, district_code,
                   ST_X(ST_PointOnSurface(geom)) AS lon, ST_Y(ST_PointOnSurface(geom)) AS lat
            FROM unit_grids WHERE CAST(:d AS text) IS NULL OR district_code = :d ORDER BY code
            """
        ),
        conn,
        params={"d": district},
    )
    if rows.empty:
        raise InvalidInput("no unit grids are stored: load boundaries and run gisgrid grids generate first")
    return rows


def write_history(
    engine: Engine, cases: pd.DataFrame, transitions: pd.DataFrame, services: Any | None = None
) -> WrittenHistory:
    """Append a history: case ids and numbers are moved past the stored ones (numbers stay unique per year);
    everything is written in one transaction or not at all. With ``services`` (gisgrid.cases.CaseServices) the
    open cases get their running node and deadline, so the console shows their traffic lights."""
    if cases.empty:
        raise InvalidInput("the history has no cases")
    with engine.connect() as conn, conn.begin():
        conn.execute(text("LOCK TABLE cases IN EXCLUSIVE MODE"))  # ids and numbers are taken in one block
        base = int(conn.execute(text("SELECT coalesce(max(id), 0) FROM cases")).scalar_one())
        c = cases.copy()
        c["id"] = c["id"].astype(np.int64) + base
        t = transitions.copy()
        t["case_id"] = t["case_id"].astype(np.int64) + base
        if "duplicate_of" in c.columns:
            c["duplicate_of"] = (c["duplicate_of"].astype("Float64") + base).astype("Int64")
        c["case_no"] = _renumber(conn, c)
        c["matter_code"] = c["district_code"] + c["class_code"]
        c["updated_at"] = t.groupby("case_id")["at"].max().reindex(c["id"]).to_numpy()
        c["version"] = t.groupby("case_id")["version"].max().reindex(c["id"]).fillna(1).astype(int).to_numpy()
        points = shapely.points(c["lon"].to_numpy(dtype=float), c["lat"].to_numpy(dtype=float))
        c["geom"] = shapely.to_wkb(shapely.set_srid(points, STORAGE_SRID), hex=True, include_srid=True)
        for col in CASE_COLUMNS:
            if col not in c.columns:
                c[col] = None
        copy_frame(conn, "cases", c[list(CASE_COLUMNS)].astype(object).where(c[list(CASE_COLUMNS)].notna(), None))
        t["details"] = [json.dumps(d or {}, ensure_ascii=False, default=str) for d in t["details"]]
        t["effects"] = [json.dumps(list(e) if e is not None else []) for e in t["effects"]]
        if "note" not in t.columns:
            t["note"] = None
        copy_frame(
            conn,
            "case_transitions",
            t[list(TRANSITION_COLUMNS)].astype(object).where(t[list(TRANSITION_COLUMNS)].notna(), None),
        )
        last = int(c["id"].max())
        conn.execute(text("SELECT setval('cases_id_seq', :v)"), {"v": last})
        if services is not None:
            _open_clocks(conn, services, c, t)
    return WrittenHistory(len(c), len(t), base + 1, last)


def _renumber(conn: Connection, c: pd.DataFrame) -> pd.Series:
    """New numbers continue each year's sequence (案件编号 = year + 6 digits)."""
    year = pd.DatetimeIndex(c["created_at"]).year
    out = pd.Series(index=c.index, dtype=object)
    for y in sorted(set(year)):
        mask = year == y
        n = int(mask.sum())
        last = conn.execute(
            text(
                "INSERT INTO case_numbers (year, last) VALUES (:y, :n) "
                "ON CONFLICT (year) DO UPDATE SET last = case_numbers.last + :n RETURNING last"
            ),
            {"y": int(y), "n": n},
        ).scalar_one()
        order = np.argsort(c.loc[mask, "created_at"].to_numpy(), kind="stable")
        seq = np.empty(n, dtype=np.int64)
        seq[order] = np.arange(int(last) - n + 1, int(last) + 1)
        out[mask] = [f"{int(y)}{s:06d}" for s in seq]
    return out


def read_history(
    conn: Connection, period: Period, disposal_limit_h: dict[tuple[str, str], float]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cases reported in ``period`` and all their transitions, shaped for :mod:`gisgrid.evaluation`."""
    cases = pd.read_sql(
        text(
            """
            SELECT id, case_no, scheme, class_code, disposal_type, state, source, reporter, reporter_role,
                   unit_grid_code, district_code, street_code, community_code, tier3_code, department_code,
                   previous_state, rework_count, escalation_level, duplicate_of, created_at, closed_at,
                   ST_X(geom) AS lon, ST_Y(geom) AS lat
            FROM cases WHERE created_at >= :a AND created_at < :b ORDER BY id
            """
        ),
        conn,
        params={"a": period.start.to_pydatetime(), "b": period.end.to_pydatetime()},
    )
    for col in ("created_at", "closed_at"):
        cases[col] = pd.to_datetime(cases[col], utc=True).dt.tz_convert(period.start.tz)
    keys = list(zip(cases["scheme"], cases["class_code"], strict=True))
    cases["disposal_limit_h"] = [disposal_limit_h.get(k, np.nan) for k in keys]
    transitions = pd.read_sql(
        text(
            """
            SELECT t.id, t.case_id, t.action, t.from_state, t.to_state, t.actor, t.role, t.at, t.department_code,
                   t.details, t.effects, t.version
            FROM case_transitions t JOIN cases c ON c.id = t.case_id
            WHERE c.created_at >= :a AND c.created_at < :b ORDER BY t.case_id, t.at, t.id
            """
        ),
        conn,
        params={"a": period.start.to_pydatetime(), "b": period.end.to_pydatetime()},
    )
    transitions["at"] = pd.to_datetime(transitions["at"], utc=True).dt.tz_convert(period.start.tz)
    return cases, transitions


def disposal_limits_h(events: Any, hours_per_day: float = 7.5) -> dict[tuple[str, str], float]:
    """The default disposal limit of every event class in working hours (days × hours per day)."""
    out: dict[tuple[str, str], float] = {}
    for scheme in ("gbt47678", "cjt214"):
        for code in events.classes(scheme):
            lim = events.limit(scheme, code)
            out[(scheme, code)] = lim.limit * hours_per_day if lim.unit == "working_days" else float(lim.limit)
    return out


def _open_clocks(conn: Connection, services: Any, c: pd.DataFrame, t: pd.DataFrame) -> None:
    """Running node, its start and deadline for each open case, from its last step (few cases: a loop is fine)."""
    from gisgrid.cases import NODE_OF_STATE, _disposal_limit, _event_class, _node_due

    last = t.sort_values(["case_id", "at", "version"]).groupby("case_id").tail(1).set_index("case_id")
    rows = []
    for case in c.itertuples():
        node = NODE_OF_STATE.get(case.state)
        if node is None:
            continue
        started = last.loc[case.id, "at"].to_pydatetime()
        if node == "disposal":
            lim = _disposal_limit(services, _event_class(services, case.scheme, case.class_code), None)
            due = services.calendar.add_working_time(started, lim.limit, lim.unit)
        else:
            due = _node_due(services, node, started)
        rows.append({"id": int(case.id), "node": node, "s": started, "due": due})
    if rows:
        conn.execute(text("UPDATE cases SET node = :node, node_started_at = :s, due_at = :due WHERE id = :id"), rows)
