"""Case histories in and out of PostGIS: write a simulated (or imported) history, read one for evaluation.

The evaluation and risk modules are pure (DataFrames shaped like ``cases`` and ``case_transitions``); this
module moves those frames to and from the tables, in one transaction per write.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, Engine, text

from gisgrid.constants import STORAGE_SRID
from gisgrid.documents import document_number
from gisgrid.errors import InvalidInput
from gisgrid.evaluation import NODES, Period
from gisgrid.events import DISPOSAL_NODE, MATTER_SCHEME
from gisgrid.grids.store import read_grids_first, unit_grid_at
from gisgrid.node_clock import NODE_OF_STATE, node_due_at, replay_node_clock
from gisgrid.runfiles import RunFiles
from gisgrid.storage.bulk import copy_frame
from gisgrid.storage.database import psycopg2_connection
from gisgrid.texts import bilingual

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


#: Where each region level's code and zh name are read (the evaluation's exports and its maps name regions
#: alike): (FROM, WHERE, name expression), the table aliased ``g``.
REGION_SOURCES: dict[str, tuple[str, str, str]] = {
    "unit_grid": (
        "unit_grids g LEFT JOIN admin_units c ON c.code = g.community_code",
        "true",
        "coalesce(c.name || ' ', '') || '第' || g.seq || '号单元网格'",
    ),
    "tier3": ("management_grids g", "g.tier = 3", "g.name"),
    "tier2": ("management_grids g", "g.tier = 2", "g.name"),
    "tier1": ("management_grids g", "g.tier = 1", "g.name"),
    "district": ("admin_units g", "g.level = 'district'", "g.name"),
}
REGION_SOURCES["community"], REGION_SOURCES["street"] = REGION_SOURCES["tier2"], REGION_SOURCES["tier1"]


def region_sql(level: str, *, geom: bool = False) -> str:
    """``SELECT code, name[, geom]`` of every region of ``level`` (a key of :data:`REGION_SOURCES`), by code."""
    source, where, name = REGION_SOURCES[level]
    return f"SELECT g.code, {name} AS name{', g.geom' if geom else ''} FROM {source} WHERE {where} ORDER BY g.code"


def region_names(conn: Connection, level: str) -> pd.Series:
    """code → zh name of every region of ``level``."""
    rows = conn.execute(text(region_sql(level))).all()
    return pd.Series([r.name for r in rows], index=[r.code for r in rows], dtype=object)


def region_cells(conn: Connection) -> pd.DataFrame:
    """Every stored unit grid with the region codes a case carries (``unit_grid_code`` and the tier columns, as
    intake copies them onto the case): the region sizes of 立案数分值 (unit grids per region, with or without
    cases)."""
    return pd.read_sql(
        text("SELECT code AS unit_grid_code, tier3_code, community_code, street_code, district_code FROM unit_grids"),
        conn,
    )


def intake_routing(conn: Connection, services: Any) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """A router for :func:`gisgrid.simulate.simulate`: each report routed as intake routes it (``case_intake.intake``:
    the nearest component of the class's component class within ``COMPONENT_LINK_M``, the same rules, tiers, time
    and class default), with the decision stored as intake stores it (``{"decision": …, "duplicates": []}``).
    Reports are of the scheme gbt47678, as the simulator makes them."""
    from gisgrid import case_intake, geodesy
    from gisgrid import cases as case_svc

    nearest = case_intake.nearest_component_sql("q.cc", "q.dx", "q.dy")  # intake's own probe, per report of a batch
    query = text(
        f"""
        SELECT q.i, k.id, k.maint_dept_code, k.main_dept_code, k.owner_dept_code, k.d
        FROM unnest(CAST(:i AS int[]), CAST(:x AS float8[]), CAST(:y AS float8[]), CAST(:cc AS text[]),
                    CAST(:dx AS float8[]), CAST(:dy AS float8[])) AS q(i, x, y, cc, dx, dy)
        CROSS JOIN LATERAL (SELECT ST_SetSRID(ST_MakePoint(q.x, q.y), {STORAGE_SRID}) AS g) p
        CROSS JOIN LATERAL ({nearest}) k
        """
    )

    def route(asked: pd.DataFrame) -> pd.DataFrame:
        classes = {code: case_svc.event_class(services, "gbt47678", code) for code in asked["class_code"].unique()}
        cc = np.array([classes[c].component_class or None for c in asked["class_code"]], dtype=object)
        linked = np.flatnonzero(cc != None)  # noqa: E711
        lat = asked["lat"].to_numpy(dtype=float)
        boxes = [geodesy.degree_box(float(y), case_intake.COMPONENT_LINK_M) for y in lat[linked]]
        found: dict[int, Any] = {}
        if len(linked):
            rows = conn.execute(
                query,
                {
                    "i": linked.tolist(),
                    "x": asked["lon"].to_numpy(dtype=float)[linked].tolist(),
                    "y": lat[linked].tolist(),
                    "cc": cc[linked].tolist(),
                    "dx": [b[0] for b in boxes],
                    "dy": [b[1] for b in boxes],
                },
            ).all()
            found = {r[0]: r for r in rows}
        departments, documents, component_ids, distances = [], [], [], []
        columns = [asked[c].tolist() for c in ("class_code", "unit_grid_code", "street_code", "community_code")]
        ats = pd.DatetimeIndex(asked["created_at"]).to_pydatetime()
        for i, (code, grid, t1, t2, t3, at) in enumerate(zip(*columns, asked["tier3_code"].tolist(), ats, strict=True)):
            ev = classes[code]
            comp = found.get(i)
            where = {"code": grid, "street_code": t1, "community_code": t2, "tier3_code": t3}
            decision = case_intake.route_report(services, ev, where, comp._mapping if comp is not None else None, at)
            departments.append(decision.department)
            documents.append({"decision": case_svc.decision_json(decision), "duplicates": []})
            component_ids.append(comp[1] if comp is not None else None)
            distances.append(round(float(comp[5]), 2) if comp is not None else None)
        return pd.DataFrame(
            {
                "department": departments,
                "routing": documents,
                "component_id": pd.Series(component_ids, index=asked.index, dtype=object),
                "component_distance_m": distances,
            },
            index=asked.index,
        )

    return route


#: Optional case columns written when the frame has them (an import keeps the input point and the clock facts; a
#: simulation routed as intake routes keeps the decision and the linked component).
OPTIONAL_CASE_COLUMNS = (
    "external_ref",
    "input_lon",
    "input_lat",
    "input_datum",
    "description",
    "pending_extension",
    "suspended_at",
    "routing",
    "component_id",
    "component_distance_m",
)
#: Case numbers the live intake makes (year + 6 digits): kept numbers of this shape move the year's counter.
LIVE_NUMBER = r"([0-9]{4})([0-9]{6})"


def write_history(
    engine: Engine,
    cases: pd.DataFrame,
    transitions: pd.DataFrame,
    services: Any | None = None,
    *,
    keep_numbers: bool = False,
) -> WrittenHistory:
    """Append a history: case ids and numbers are moved past the stored ones (numbers stay unique per year);
    everything is written in one transaction or not at all. With ``services`` (gisgrid.cases.CaseServices) the
    open cases get their running node and deadline, so the console shows their traffic lights.

    ``keep_numbers``: keep ``case_no`` as given (an imported history keeps the city's own numbers); a number
    already stored (or repeated in ``cases``) refuses the whole write, and numbers shaped like the live ones
    (year + 6 digits) move that year's counter past them, so later intakes never reuse them."""
    with engine.connect() as conn, conn.begin():
        return write_history_in(conn, cases, transitions, services, keep_numbers=keep_numbers)


def write_history_in(
    conn: Connection,
    cases: pd.DataFrame,
    transitions: pd.DataFrame,
    services: Any | None = None,
    *,
    keep_numbers: bool = False,
) -> WrittenHistory:
    """:func:`write_history` inside the caller's transaction (which commits or rolls back)."""
    if cases.empty:
        raise InvalidInput("the history has no cases")
    read_grids_first(conn, hold=True)  # before the cases table; it stores codes read from the grids (see there)
    conn.execute(text("LOCK TABLE cases IN EXCLUSIVE MODE"))  # ids and numbers are taken in one block
    base = int(conn.execute(text("SELECT coalesce(max(id), 0) FROM cases")).scalar_one())
    c = cases.copy()
    c["id"] = c["id"].astype(np.int64) + base
    t = transitions.copy()
    t["case_id"] = t["case_id"].astype(np.int64) + base
    if "duplicate_of" in c.columns:
        c["duplicate_of"] = (c["duplicate_of"].astype("Float64") + base).astype("Int64")
    if keep_numbers:
        _check_kept_numbers(conn, c)
    else:
        c["case_no"] = _renumber(conn, c)
    c["matter_code"] = (c["district_code"] + c["class_code"]).where(c["scheme"] == MATTER_SCHEME)
    c["updated_at"] = t.groupby("case_id")["at"].max().reindex(c["id"]).to_numpy()
    c["version"] = t.groupby("case_id")["version"].max().reindex(c["id"]).fillna(1).astype(int).to_numpy()
    points = shapely.points(c["lon"].to_numpy(dtype=float), c["lat"].to_numpy(dtype=float))
    c["geom"] = shapely.to_wkb(shapely.set_srid(points, STORAGE_SRID), hex=True, include_srid=True)
    for col in CASE_COLUMNS:
        if col not in c.columns:
            c[col] = None
    columns = list(CASE_COLUMNS) + [col for col in OPTIONAL_CASE_COLUMNS if col in c.columns]
    if "routing" in c.columns:
        c["routing"] = [json.dumps(r, ensure_ascii=False) if isinstance(r, dict) else r for r in c["routing"]]
    copy_frame(conn, "cases", c[columns].astype(object).where(c[columns].notna(), None))
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
        _issue_documents(conn, services, c, t)
    return WrittenHistory(len(c), len(t), base + 1, last)


def _issue_documents(conn: Connection, services: Any, c: pd.DataFrame, t: pd.DataFrame) -> None:
    """The orders the log's steps issued, as the live service issues them (``case_actions._issue_document``): a
    交办单 for each 派遣 and 返工, a 督办单 for each 督办, numbered per case and kind in log order, by the acting
    person (a 返工's: the case's last 派遣's) at the step's time, with the step's department, reason and the deadline
    it set (a 督办单: the deadline then running)."""
    from gisgrid.cases import event_class

    kinds = np.array(
        [
            "dispatch" if "issue_dispatch_order" in e else "supervision" if "issue_supervision_order" in e else ""
            for e in t["effects"]
        ],
        dtype=object,
    )
    if not (kinds != "").any():
        return
    # The steps that issue an order, and the extensions that move the deadline a later 督办单 states.
    issued = np.flatnonzero((kinds != "") | (t["action"].to_numpy() == "approve_extension"))
    d = t.iloc[issued][["case_id", "at", "version", "actor", "department_code", "details", "action"]].copy()
    d["kind"] = kinds[issued]
    if "note" in t.columns:
        d["note"] = t["note"].to_numpy()[issued]
    else:
        d["note"] = None
    d["details"] = [json.loads(x) if isinstance(x, str) else x for x in d["details"]]  # as written, or as given
    d = d.sort_values(["case_id", "at", "version"], kind="stable")
    case = c.set_index("id")
    d["case_no"] = case["case_no"].reindex(d["case_id"]).to_numpy()
    d["n"] = d.groupby(["case_id", "kind"]).cumcount() + 1  # the extensions' own count (kind "") is not used
    d["number"] = [
        document_number(k, no, n) if k else None for k, no, n in zip(d["kind"], d["case_no"], d["n"], strict=True)
    ]
    d["reason"] = [
        (det or {}).get("reason") or (note if isinstance(note, str) and note else None)
        for det, note in zip(d["details"], d["note"], strict=True)
    ]
    # 交办单: the disposal deadline the step set (each class and disposal type's limit from the step's time).
    scheme = case["scheme"].reindex(d["case_id"]).to_numpy()
    cls = case["class_code"].reindex(d["case_id"]).to_numpy()
    dtype = (
        case["disposal_type"].reindex(d["case_id"]).to_numpy()
        if "disposal_type" in case.columns
        else np.full(len(d), None)
    )
    due: list[Any] = []
    running: dict[int, Any] = {}  # the case's deadline as of the step
    steps = zip(d["case_id"].tolist(), pd.DatetimeIndex(d["at"]).to_pydatetime(), d["kind"], d["details"], strict=True)
    for k, (cid, at, kind, det) in enumerate(steps):
        if kind == "dispatch":
            ev = event_class(services, scheme[k], cls[k])
            disposal = dtype[k] if isinstance(dtype[k], str) and dtype[k] else None
            running[cid] = node_due_at(services, DISPOSAL_NODE[0], ev, disposal, at)
        elif not kind and (det or {}).get("new_due_at"):
            running[cid] = dt.datetime.fromisoformat(str(det["new_due_at"]))
        due.append(running.get(cid))
    d["due_at"] = pd.Series(due, index=d.index, dtype=object)
    # A 返工's 交办单 is signed by the actor of the case's last 派遣, not by the supervisor: the rule of
    # case_actions.REWORK_ISSUER_SQL, applied here to the steps of the log in order (the last 派遣 before each 返工).
    dispatcher = d["actor"].where(d["action"] == "dispatch").groupby(d["case_id"]).ffill()
    d["issuer"] = d["actor"].mask((d["action"] == "rework") & dispatcher.notna(), dispatcher)
    d = d[d["kind"] != ""]
    rows = pd.DataFrame(
        {
            "case_id": d["case_id"].to_numpy(),
            "kind": d["kind"].to_numpy(),
            "number": d["number"].to_numpy(),
            "department_code": d["department_code"].to_numpy(),
            "due_at": d["due_at"].to_numpy(),
            "issued_at": d["at"].to_numpy(),
            "issued_by": d["issuer"].to_numpy(),
            "reason": d["reason"].to_numpy(),
        }
    )
    copy_frame(conn, "case_documents", rows.astype(object).where(rows.notna(), None))
    # Issued in log order (above): each order's step is the issuing step of its kind and rank (migration 0018).
    first, last = int(c["id"].min()), int(c["id"].max())
    conn.execute(text("SELECT link_case_documents(:f, :l)"), {"f": first, "l": last})


def stored_case_numbers(conn: Connection, numbers: list[str]) -> set[str]:
    """Which of ``numbers`` are already used by stored cases."""
    if not numbers:
        return set()
    rows = conn.execute(text("SELECT case_no FROM cases WHERE case_no = ANY(:n)"), {"n": numbers}).scalars()
    return set(rows)


def known_external_refs(conn: Connection, c: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """The cases of ``c`` (case_no → (external_ref, the case number holding it)) whose (source, external_ref) a
    stored case holds, or an earlier case of ``c`` (file order): a sending system's number names one case, as at
    intake (``ux_cases_source_external_ref``)."""
    has = (c["external_ref"].notna() & c["source"].notna()).to_numpy()  # no source: no pair (nor in the index)
    if not has.any():
        return {}
    sub = c.loc[has, ["case_no", "source", "external_ref"]].astype(object)
    rows = conn.execute(
        text(
            "SELECT s, r, (SELECT case_no FROM cases WHERE source = s AND external_ref = r ORDER BY id DESC LIMIT 1) "
            "FROM unnest(CAST(:s AS text[]), CAST(:r AS text[])) AS k(s, r)"
        ),
        {"s": [str(v) for v in sub["source"]], "r": [str(v) for v in sub["external_ref"]]},
    ).all()
    stored = {(s, r): no for s, r, no in rows if no is not None}
    found: dict[str, tuple[str, str]] = {}
    first: dict[tuple[str, str], str] = {}
    for case_no, source, ref in zip(sub["case_no"], sub["source"], sub["external_ref"], strict=True):
        pair = (str(source), str(ref))
        holder = stored.get(pair) or first.get(pair)
        if holder is not None:
            found[str(case_no)] = (str(ref), holder)
        else:
            first[pair] = str(case_no)
    return found


def _check_kept_numbers(conn: Connection, c: pd.DataFrame) -> None:
    numbers = c["case_no"].astype(str)
    repeated = sorted(set(numbers[numbers.duplicated()]))
    taken = sorted(stored_case_numbers(conn, numbers.tolist()))
    if repeated or taken:
        parts = []
        if taken:
            parts.append(f"already stored: {', '.join(taken[:10])}")
        if repeated:
            parts.append(f"repeated: {', '.join(repeated[:10])}")
        raise InvalidInput(
            "case numbers must be new and unique (" + "; ".join(parts) + ")",
            detail={"stored": taken, "repeated": repeated},
        )
    parts = numbers.str.extract(f"^{LIVE_NUMBER}$").dropna()
    if parts.empty:
        return
    highest = parts[1].astype(int).groupby(parts[0].astype(int)).max()
    for y, n in sorted(highest.items()):  # the year's later numbers start above the highest kept one
        conn.execute(text("SELECT case_no_at_least(:y, :n)"), {"y": int(y), "n": int(n)})


def _renumber(conn: Connection, c: pd.DataFrame) -> pd.Series:
    """New numbers from each year's sequence (案件编号 = year + 6 digits), in order of filing."""
    year = pd.DatetimeIndex(c["created_at"]).year
    out = pd.Series(index=c.index, dtype=object)
    for y in sorted(set(year)):
        mask = year == y
        n = int(mask.sum())
        numbers = conn.execute(
            text(
                "SELECT format_case_no(:y, v) FROM (SELECT nextval(case_no_sequence(:y)) AS v "
                "FROM generate_series(1, :n)) s ORDER BY v"
            ),
            {"y": int(y), "n": n},
        ).scalars()
        order = np.argsort(c.loc[mask, "created_at"].to_numpy(), kind="stable")
        taken = np.empty(n, dtype=object)
        taken[order] = list(numbers)
        out[mask] = taken
    return out


#: Transition columns read as categorical (few distinct values, compared and grouped many times).
HISTORY_STEP_CATEGORIES = ("action", "from_state", "to_state", "actor", "role", "department_code", "details", "effects")
_CASE_TEXT = (
    "case_no", "scheme", "class_code", "disposal_type", "state", "source", "reporter", "reporter_role",
    "unit_grid_code", "district_code", "street_code", "community_code", "tier3_code", "department_code",
    "previous_state",
)  # fmt: skip
#: Categorical columns whose values may look like numbers: selected as ``'~' || column`` (else pandas would turn
#: the categories into numbers, 09005 into 9005) and the "~" taken off the categories.
_PREFIXED = frozenset(("actor", "department_code"))
# Instants travel as integer UTC microseconds (exact: a float8 keeps 0.1 µs at today's epoch seconds).
_EPOCH_US = "round(date_part('epoch', {0}) * 1000000)::int8"


def _select(column: str, table: str = "", prefixed: frozenset[str] = frozenset()) -> str:
    name = table + column
    if column.endswith("_at") or column == "at":
        return _EPOCH_US.format(name)
    if column in ("details", "effects"):
        return f"{name}::text"
    return f"'~' || {name}::text" if column in prefixed else name


def _copy_csv(
    conn: Connection, query: str, params: dict[str, Any], names: list[str], dtypes: dict[str, Any]
) -> pd.DataFrame:
    """``COPY (query) TO STDOUT`` as CSV, parsed by pandas in C: a categorical column never makes one Python string
    per row; other columns' types are inferred unless given. NULL and the empty string both read as missing."""
    buf = io.BytesIO()
    with psycopg2_connection(conn).cursor() as cur:
        sql = cur.mogrify(query, params).decode()
        cur.copy_expert(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", buf)
    if not buf.tell():
        return pd.DataFrame({col: pd.Series(dtype=dtypes.get(col, np.int64)) for col in names})
    buf.seek(0)
    out = pd.read_csv(buf, header=None, names=names, dtype=dtypes, keep_default_na=False, na_values=[""])
    for col in _PREFIXED.intersection(c for c, d in dtypes.items() if d == "category"):
        out[col] = out[col].cat.rename_categories(out[col].cat.categories.astype(str).str.slice(1))
    return out


def _local_us(values: pd.Series, tz: Any) -> pd.Series:
    """Integer UTC microseconds (NaN for NULL) → tz-aware instants in ``tz``."""
    v = values.to_numpy()
    if v.dtype.kind == "f":
        v = np.where(np.isnan(v), np.iinfo(np.int64).min, v)
    idx = pd.DatetimeIndex(v.astype(np.int64).view("datetime64[us]")).tz_localize("UTC").tz_convert(tz)
    return pd.Series(idx, index=values.index)


def _json_objects(values: pd.Series) -> np.ndarray:
    """A categorical column of JSON texts → the decoded values, each distinct text decoded once: rows with the same
    text share one object (read-only)."""
    texts = values.cat.categories
    decoded = np.empty(len(texts) + 1, dtype=object)  # the last slot (None) for NULL
    for i, text_ in enumerate(texts):
        decoded[i] = json.loads(text_)
    return decoded[values.cat.codes.to_numpy()]


def read_history(
    conn: Connection, period: Period, limits: dict[tuple[str, str, str | None], DisposalHours]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cases reported in ``period`` and all their transitions, shaped for :mod:`gisgrid.evaluation`.

    Read with ``COPY … TO STDOUT`` and parsed by pandas (a month of a busy district is hundreds of thousands of
    transitions). Cases are sorted by id, transitions by case, time and id; times are tz-aware in the period's
    zone. Transition columns :data:`HISTORY_STEP_CATEGORIES` are categorical (``from_state`` and ``to_state``
    share their categories, so they compare); ``details`` are dicts and ``effects`` lists, one object per distinct
    JSON text — treat them as read-only. Each case's disposal limit (``disposal_limit_h``, ``disposal_limit_unit``)
    and ``urgent`` are looked up in ``limits`` (:func:`disposal_limits`) by its class and disposal type."""
    params = {"a": period.start.to_pydatetime(), "b": period.end.to_pydatetime()}
    tz = period.start.tz
    case_names = [
        "id", "case_no", "scheme", "class_code", "disposal_type", "state", "source", "reporter", "reporter_role",
        "unit_grid_code", "district_code", "street_code", "community_code", "tier3_code", "department_code",
        "previous_state", "rework_count", "escalation_level", "duplicate_of", "created_at", "closed_at", "lon", "lat",
    ]  # fmt: skip
    case_sql = ", ".join(_select(c) for c in case_names[:-2])
    cases = _copy_csv(
        conn,
        f"SELECT {case_sql}, ST_X(geom), ST_Y(geom) FROM cases WHERE created_at >= %(a)s AND created_at < %(b)s "
        "ORDER BY id",
        params,
        case_names,
        dict.fromkeys(_CASE_TEXT, str),
    )
    for col in ("created_at", "closed_at"):
        cases[col] = _local_us(cases[col], tz)
    # The disposal limit of each distinct (scheme, class, disposal type).
    s_code, schemes = pd.factorize(cases["scheme"])
    c_code, classes = pd.factorize(cases["class_code"])
    d_code, dtypes = pd.factorize(cases["disposal_type"])
    c_width, d_width = len(classes) + 1, len(dtypes) + 1
    key = ((s_code + 1) * c_width + c_code + 1) * d_width + d_code + 1
    distinct, inverse = np.unique(key, return_inverse=True)
    schemes, classes, dtypes = [None, *schemes], [None, *classes], [None, *dtypes]
    found = []
    for k in distinct:
        sc, rest = divmod(int(k), c_width * d_width)
        cc, dc = divmod(rest, d_width)
        triple = (schemes[sc], classes[cc], dtypes[dc])
        found.append(case_disposal_limit(limits, *triple))
    cases["disposal_limit_h"] = np.asarray([f[0] for f in found], dtype=np.float64)[inverse]
    cases["disposal_limit_unit"] = np.asarray([f[1] for f in found], dtype=object)[inverse]
    cases["urgent"] = np.asarray([f[2] for f in found], dtype=bool)[inverse]

    step_names = [
        "id", "case_id", "action", "from_state", "to_state", "actor", "role", "at", "department_code", "details",
        "effects", "version",
    ]  # fmt: skip
    step_sql = ", ".join(_select(c, "t.", _PREFIXED) for c in step_names)
    # The id range lets the planner read the period's transitions through the case_id index instead of scanning
    # the whole table (cases are numbered as they come, so a period's ids are about contiguous).
    ids = cases["id"].to_numpy()
    params |= {"lo": int(ids.min()) if len(ids) else 0, "hi": int(ids.max()) if len(ids) else -1}
    t = _copy_csv(
        conn,
        f"SELECT {step_sql} FROM case_transitions t JOIN cases c ON c.id = t.case_id "
        "WHERE c.created_at >= %(a)s AND c.created_at < %(b)s AND t.case_id BETWEEN %(lo)s AND %(hi)s",
        params,
        step_names,
        dict.fromkeys(HISTORY_STEP_CATEGORIES, "category"),
    )
    case_id, at, step_id = t["case_id"].to_numpy(), t["at"].to_numpy(), t["id"].to_numpy()
    if len(t) > 1:
        d_case, d_at, d_id = np.diff(case_id), np.diff(at), np.diff(step_id)
        if not ((d_case > 0) | ((d_case == 0) & ((d_at > 0) | ((d_at == 0) & (d_id >= 0))))).all():
            t = t.iloc[np.lexsort((step_id, at, case_id))].reset_index(drop=True)
    t["at"] = _local_us(t["at"], tz)
    states = t["from_state"].cat.categories.union(t["to_state"].cat.categories)
    for col in ("from_state", "to_state"):
        t[col] = t[col].cat.set_categories(states)
    for col in ("details", "effects"):
        t[col] = _json_objects(t[col])
    return cases, t


#: (hours, unit, urgent) of a disposal limit: working hours (working days × the calendar's hours per day), or
#: calendar hours when ``unit`` is ``calendar_hours``.
DisposalHours = tuple[float, str, bool]


NO_DISPOSAL_LIMIT: DisposalHours = (np.nan, "working_hours", False)


def case_disposal_limit(
    limits: Mapping[tuple[Any, Any, Any], DisposalHours],
    scheme: str | None,
    class_code: str | None,
    disposal_type: str | None,
) -> DisposalHours:
    """A case's disposal limit as the evaluation counts it: its class's limit for its disposal type, else the
    class's default, else none (NaN hours: a class the catalogue no longer has)."""
    return (
        limits.get((scheme, class_code, disposal_type)) or limits.get((scheme, class_code, None)) or NO_DISPOSAL_LIMIT
    )


def disposal_limits(events: Any, hours_per_day: float) -> dict[tuple[str, str, str | None], DisposalHours]:
    """Every disposal limit of every event class, keyed (scheme, code, disposal type); the class's default also
    under disposal type None (a case without one)."""
    out: dict[tuple[str, str, str | None], DisposalHours] = {}
    for scheme in ("gbt47678", "cjt214"):
        for code in events.classes(scheme):
            for lim in (*events.limits(scheme, code), None):
                chosen = lim or events.limit(scheme, code)
                hours = chosen.limit * hours_per_day if chosen.unit == "working_days" else float(chosen.limit)
                unit = "calendar_hours" if chosen.unit == "calendar_hours" else "working_hours"
                out[(scheme, code, lim.disposal_type if lim else None)] = (hours, unit, bool(chosen.urgent))
    return out


def _open_clocks(conn: Connection, services: Any, c: pd.DataFrame, t: pd.DataFrame) -> None:
    """Running node, its start and deadline for each open case, as the live service leaves them after the same
    steps (``node_clock.deadlines_after``): the node starts at the last step that opened it (``evaluation.NODES``:
    发核实 re-opens 核实; a 督办, 提级 or 延期申请 opens nothing), an approved 延期 after it is the 处置 deadline
    (never an earlier one), and each 挂账 … 挂账恢复 after it carries the time used and the time left over the
    suspension (few cases: a loop is fine). A case 挂账 now keeps the clock its node had when suspended, with the
    time of that 挂账, as a live one does: 挂账恢复 carries it over (without it the case came back with no deadline)."""
    from gisgrid.cases import event_class

    steps = t.sort_values(["case_id", "at", "version"], kind="stable").groupby("case_id")
    rows = []
    for case in c.itertuples():
        held = case.state == "suspended"
        state = getattr(case, "previous_state", None) if held else case.state
        node = NODE_OF_STATE.get(state) if isinstance(state, str) else None  # no state (None, NaN): no node
        if node is None:
            continue
        own = steps.get_group(case.id).reset_index(drop=True)
        held_at = None
        if held:  # the clock as it stood at the last 挂账: the steps before it
            suspensions = own.index[own["action"] == "suspend"]
            if not len(suspensions):
                continue
            held_at = own.at[int(suspensions[-1]), "at"].to_pydatetime()
            own = own.iloc[: int(suspensions[-1])]
        opened = own.index[own["action"].isin(NODES[node][0])]
        first = int(opened[-1]) if len(opened) else len(own) - 1
        ev = event_class(services, case.scheme, case.class_code)
        disposal = getattr(case, "disposal_type", None)
        walked = replay_node_clock(
            services,
            node,
            ev,
            disposal if isinstance(disposal, str) and disposal else None,
            [
                (
                    s.action,
                    s.at.to_pydatetime(),
                    s.details if isinstance(s.details, dict) else json.loads(s.details or "{}"),
                )
                for s in own.iloc[first:].itertuples()
            ],
        )
        in_disposal = node == "disposal"
        rows.append(
            {
                "id": int(case.id),
                "node": None if held else node,
                "s": walked.started,
                "node_calendar_time": walked.node_calendar_time,
                "due_at": walked.due_at,
                "hours": services.hours_in_force,  # what due_at was counted under (gisgrid.deadline_hours)
                "held": held_at,
                # the 处置 deadline and its 交办 (派遣/返工), as a live dispatch stores them (review40 D5)
                "disposal_s": own.at[first, "at"].to_pydatetime() if in_disposal and len(opened) else None,
                "disposal_due": walked.due_at if in_disposal else None,
            }
        )
    if rows:
        conn.execute(
            text(
                "UPDATE cases SET node = :node, node_started_at = :s, due_at = :due_at, hours_counted = :hours, "
                "node_calendar_time = :node_calendar_time, suspended_at = coalesce(suspended_at, :held), "
                "disposal_started_at = coalesce(CAST(:disposal_s AS timestamptz), disposal_started_at), "
                "disposal_due_at = coalesce(CAST(:disposal_due AS timestamptz), disposal_due_at) "
                "WHERE id = :id"
            ),
            rows,
        )


# -- import of a city's own history -----------------------------------------------------------------


@dataclass
class HistoryImportOptions:
    errors_path: Path | None = None  # refusals CSV, written only when there are refusals
    dry_run: bool = False
    all_or_nothing: bool = False
    now: dt.datetime | None = None  # "the future" starts here (tests)


@dataclass
class HistoryImportSummary:
    rows: int = 0
    cases_read: int = 0
    imported_cases: int = 0
    imported_transitions: int = 0
    accepted_cases: int = 0  # passed every check (imported unless dry run or all-or-nothing)
    accepted_transitions: int = 0
    refused_rows: int = 0
    refused_cases: int = 0
    errors: pd.DataFrame = field(default_factory=pd.DataFrame)
    errors_path: Path | None = None
    written: bool = False
    dry_run: bool = False
    all_or_nothing: bool = False
    notes: list[str] = field(default_factory=list)
    cleared: list[str] = field(default_factory=list)  # the previous run's refusals file removed

    @property
    def everything_refused(self) -> bool:
        return self.refused_rows > 0 and self.accepted_cases == 0

    def to_text(self) -> str:
        lines = [
            f"read {self.rows} rows ({self.cases_read} cases): imported {self.imported_cases} cases "
            f"({self.imported_transitions} transitions), refused {self.refused_rows} rows ({self.refused_cases} cases)"
        ]
        if self.dry_run:
            lines.append(
                f"dry run: {self.accepted_cases} cases ({self.accepted_transitions} transitions) passed every check; "
                "nothing written (试运行，未写入)"
            )
        elif self.all_or_nothing and self.refused_rows:
            lines.append("--all-or-nothing: the file has refusals, nothing written (全部拒收，未写入)")
        lines.extend(self.notes)
        if len(self.errors):
            own = self.errors[self.errors["field"] != ""]  # a cause, not "case refused: row N …"
            first = (own if len(own) else self.errors).iloc[0]
            where = f"row {first['row']}" + (f" field {first['field']}" if first["field"] else "")
            lines.append(f"first refusal: {where}: {first['reason']}")
        if self.errors_path:
            lines.append(f"refusals written to {self.errors_path} (拒收明细)")
        lines += self.cleared
        return "\n".join(lines)


def coverage_extent(conn: Connection) -> tuple[float, float, float, float]:
    """Bounds of the stored unit grids (storage lon/lat); InvalidInput when there are none."""
    row = conn.execute(
        text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) AS e FROM unit_grids) s"
        )
    ).one()
    if row[0] is None:
        raise InvalidInput("no unit grids are stored: load boundaries and run gisgrid grids generate first")
    return float(row[0]), float(row[1]), float(row[2]), float(row[3])


def locate_points(conn: Connection, lon: np.ndarray, lat: np.ndarray) -> pd.DataFrame:
    """Unit grid and tier codes of each storage lon/lat point in one query (None outside every grid; a point on a
    shared edge goes to the smaller code, as case intake does). Index: the point's position."""
    columns = ["unit_grid_code", "district_code", "street_code", "community_code", "tier3_code"]
    out = pd.DataFrame(None, index=range(len(lon)), columns=columns, dtype=object)
    if not len(lon):
        return out
    rows = conn.execute(
        text(
            f"""
            SELECT p.i, g.code, g.district_code, g.street_code, g.community_code, g.tier3_code
            FROM unnest(CAST(:i AS int[]), CAST(:x AS float8[]), CAST(:y AS float8[])) AS p(i, x, y)
            CROSS JOIN LATERAL (
                SELECT code, district_code, street_code, community_code, tier3_code FROM unit_grids g
                WHERE {unit_grid_at(f"ST_SetSRID(ST_MakePoint(p.x, p.y), {STORAGE_SRID})")}) g
            """
        ),
        {"i": list(range(len(lon))), "x": [float(v) for v in lon], "y": [float(v) for v in lat]},
    ).all()
    if rows:
        idx = [r[0] for r in rows]
        out.loc[idx, columns] = [list(r[1:]) for r in rows]
    return out


def import_history(
    engine: Engine,
    path: Path | str,
    services: Any,
    options: HistoryImportOptions | None = None,
    *,
    progress: Callable[[str, int, int], None] | None = None,
) -> HistoryImportSummary:
    """``gisgrid cases import-history``: read and check a city's past record (:mod:`gisgrid.history_import`),
    locate every case in the unit grids, refuse numbers already stored, and write the accepted cases whole — with
    their own case numbers — in one transaction (nothing when ``dry_run``, or ``all_or_nothing`` with a refusal).
    A file that cannot be read raises InvalidInput."""
    from gisgrid.components_store import sync_departments
    from gisgrid.history_import import ERROR_COLUMNS, parse_history, read_history_csv

    opts = options or HistoryImportOptions()
    report = progress or (lambda _stage, _done, _total: None)
    raw, notes = read_history_csv(path)
    summary = HistoryImportSummary(dry_run=opts.dry_run, all_or_nothing=opts.all_or_nothing, notes=notes)
    # The refusals file is staged while the transaction runs and put in place once its outcome is known
    # (gisgrid.runfiles): a failed or killed import leaves no file describing refusals it never made.
    with RunFiles() as files, engine.connect() as conn, conn.begin() as trans:
        bbox = coverage_extent(conn)
        parsed = parse_history(raw, services, now=opts.now, coverage_bbox=bbox, progress=report)
        report("locate", 0, 1)
        if len(parsed.cases):
            if not opts.dry_run:  # the numbers checked here stay free until the commit
                conn.execute(text("LOCK TABLE cases IN EXCLUSIVE MODE"))
            c = parsed.cases
            where = locate_points(conn, c["lon"].to_numpy(dtype=float), c["lat"].to_numpy(dtype=float))
            outside = where["unit_grid_code"].isna().to_numpy()
            refusals: dict[str, tuple[int, str, str, str]] = {}
            for k in np.flatnonzero(outside):
                case_no = str(c["case_no"].iloc[k])
                coords = f"{c['input_lon'].iloc[k]},{c['input_lat'].iloc[k]}"
                refusals[case_no] = (
                    parsed.case_rows[case_no][0],
                    "coordinates",
                    coords,
                    bilingual(
                        f"不在已划分网格的范围内({c['input_datum'].iloc[k]});请检查坐标系,以及经纬度是否颠倒",
                        f"outside the gridded coverage ({c['input_datum'].iloc[k]}); check the datum and that "
                        "lon/lat are not swapped",
                    ),
                )
            for case_no in sorted(stored_case_numbers(conn, c["case_no"].tolist())):
                refusals.setdefault(
                    case_no,
                    (
                        parsed.case_rows[case_no][0],
                        "case_no",
                        case_no,
                        bilingual("案件编号已存在", "case number already stored"),
                    ),
                )
            for case_no, (ref, holder) in sorted(known_external_refs(conn, c).items()):
                refusals.setdefault(
                    case_no,
                    (
                        parsed.case_rows[case_no][0],
                        "external_ref",
                        ref,
                        bilingual(f"来源单号已属案件 {holder}", f"external_ref is case {holder}'s already"),
                    ),
                )
            for col in where.columns:
                parsed.cases[col] = where[col].to_numpy(dtype=object)
            parsed = parsed.refuse(refusals)
        report("locate", 1, 1)
        summary.rows, summary.cases_read = parsed.rows, parsed.case_count
        summary.accepted_cases, summary.accepted_transitions = len(parsed.cases), len(parsed.transitions)
        summary.errors = parsed.errors
        summary.refused_rows, summary.refused_cases = parsed.refused_rows, parsed.refused_cases
        files.stage(opts.errors_path, parsed.errors, ERROR_COLUMNS)
        if opts.dry_run or parsed.cases.empty or (opts.all_or_nothing and len(parsed.errors)):
            trans.rollback()
            return _published(summary, files, opts)
        report("write", 0, 1)
        sync_departments(conn, services.components)
        written = write_history_in(conn, parsed.cases, parsed.transitions, services, keep_numbers=True)
        trans.commit()
        report("write", 1, 1)
        summary.imported_cases, summary.imported_transitions = written.cases, written.transitions
        summary.written = True
        return _published(summary, files, opts)


def _published(summary: HistoryImportSummary, files: RunFiles, opts: HistoryImportOptions) -> HistoryImportSummary:
    """``summary`` once the import's outcome is known and its refusals file is put in place
    (:class:`gisgrid.runfiles.RunFiles`)."""
    files.publish()
    summary.errors_path = opts.errors_path if opts.errors_path in files.written else None
    summary.cleared = files.removed
    return summary
