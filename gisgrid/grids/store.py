"""PostGIS persistence and queries for administrative units, unit grids and the three management tiers.

The cutting itself is pure (``gisgrid.grids.cutting``); this module only moves rows in and out, each
public writer working inside the caller's transaction so a refusal leaves nothing half-written.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, text

from gisgrid.components import POSITION_TOLERANCE_DEG
from gisgrid.constants import STORAGE_SRID
from gisgrid.errors import GisgridError, InvalidInput, NotFound, Reason
from gisgrid.geodesy import geodesic_areas
from gisgrid.storage.bulk import copy_rows
from gisgrid.storage.recode import recode_components
from gisgrid.workflow import TERMINAL_STATES

LEVEL_ORDER = {"district": 0, "street": 1, "community": 2}

#: Cases whose handling is over (结案, 不予立案, 作废 — merged duplicates are voided): their street, community and
#: tier-3 codes are the record of who answered for them, which the evaluation of past periods reads, so a
#: regrouping or boundary change leaves them as they were.
FINISHED_STATES = sorted(TERMINAL_STATES)


def _as_multipolygons(geoms: Any) -> np.ndarray:
    arr = np.asarray(geoms, dtype=object)
    out = arr.copy()
    single = shapely.get_type_id(arr) == 3
    if single.any():
        out[single] = shapely.multipolygons(arr[single].reshape(-1, 1))
    return out


def hex_ewkb(geoms: Any) -> np.ndarray:
    """Hex EWKB (SRID 4490) of polygonal geometries, promoted to MultiPolygon for the typed columns."""
    multi = shapely.set_srid(_as_multipolygons(shapely.force_2d(np.asarray(geoms, dtype=object))), STORAGE_SRID)
    return shapely.to_wkb(multi, hex=True, include_srid=True)


# -- administrative units -------------------------------------------------------------------------

#: SQL: the code in ``{code}`` contains a part gisgrid numbered (``admin_units.code_assigned``, --assign-codes) — its
#: street (first 9 digits) or community (first 12) part; the same rule as ``gisgrid.boundaries.provisional``. Unit
#: grids (15 digits) and tier grids (9, 12, 14) take the flag from their units this way; it is stored nowhere else.
PROVISIONAL = (
    "EXISTS (SELECT 1 FROM admin_units pa WHERE pa.code_assigned AND pa.code IN (left({code}, 9), left({code}, 12)))"
)


@dataclass
class SaveSummary:
    inserted: int = 0
    updated: int = 0
    codes: list[str] = field(default_factory=list)


def existing_codes(conn: Connection, codes: list[str]) -> set[str]:
    if not codes:
        return set()
    rows = conn.execute(text("SELECT code FROM admin_units WHERE code = ANY(:c)"), {"c": codes}).scalars()
    return set(rows)


def save_admin_units(conn: Connection, units: gpd.GeoDataFrame, metric_epsg: int) -> SaveSummary:
    """Upsert units by code (parents first). ``units`` is in EPSG:4490 with code/name/level/parent_code.

    A parent that is neither in the file nor in the database is refused, naming the rows."""
    units = units.assign(_order=units["level"].map(LEVEL_ORDER)).sort_values(["_order", "code"])
    codes = units["code"].tolist()
    have = existing_codes(conn, codes)
    parents = {p for p in units["parent_code"].dropna().tolist() if p not in set(codes)}
    missing = parents - existing_codes(conn, sorted(parents))
    if missing:
        rows = units[units["parent_code"].isin(missing)]
        items = [
            {"code": c, "field": "parent_code", "reason": f"parent {p} is neither in the file nor in the database"}
            for c, p in zip(rows["code"], rows["parent_code"], strict=True)
        ]
        raise InvalidInput(
            f"{len(items)} unit(s) name a parent that is not loaded: {', '.join(sorted(missing))}; "
            "import the parent level first or include it in the file",
            detail=items,
        )
    # The true (ellipsoidal) area, as the cells carry it: a unit's area is the sum of its cells'.
    areas = np.round(geodesic_areas(units.geometry.to_numpy(), units.crs), 2)
    wkb = hex_ewkb(units.geometry.to_numpy())
    stmt = text(
        """
        INSERT INTO admin_units (code, name, level, parent_code, area_m2, metric_srid, code_assigned, geom)
        VALUES (:code, :name, :level, :parent, :area, :srid, :assigned, ST_GeomFromEWKB(decode(:wkb, 'hex')))
        ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, level = EXCLUDED.level,
            parent_code = EXCLUDED.parent_code, area_m2 = EXCLUDED.area_m2,
            metric_srid = EXCLUDED.metric_srid, code_assigned = EXCLUDED.code_assigned, geom = EXCLUDED.geom
        """
    )
    params = [
        {
            "code": code,
            "name": name,
            "level": level,
            "parent": parent if isinstance(parent, str) else None,
            "area": float(area),
            "srid": metric_epsg,
            "assigned": bool(assigned),
            "wkb": w,
        }
        for code, name, level, parent, area, assigned, w in zip(
            units["code"],
            units["name"],
            units["level"],
            units["parent_code"],
            areas,
            units["code_assigned"],
            wkb,
            strict=True,
        )
    ]
    conn.execute(stmt, params)
    return SaveSummary(inserted=len(set(codes) - have), updated=len(have), codes=codes)


def list_admin_units(
    conn: Connection, *, level: str | None = None, provisional_only: bool = False
) -> list[dict[str, Any]]:
    """Stored units by code: code, name, level, parent_code, code_assigned (its own part numbered by gisgrid) and
    code_provisional (its code contains such a part, its own or its street's)."""
    sql = text(
        f"""
        SELECT * FROM (
            SELECT u.code, u.name, u.level, u.parent_code, u.code_assigned,
                   {PROVISIONAL.format(code="u.code")} AS code_provisional
            FROM admin_units u
            WHERE CAST(:level AS text) IS NULL OR u.level = :level
        ) x
        WHERE NOT :only OR x.code_provisional
        ORDER BY x.code
        """
    )
    return [dict(r) for r in conn.execute(sql, {"level": level, "only": provisional_only}).mappings()]


def count_provisional(conn: Connection) -> int:
    """Stored units whose code contains a part numbered by gisgrid (see ``PROVISIONAL``)."""
    sql = f"SELECT count(*) FROM admin_units u WHERE {PROVISIONAL.format(code='u.code')}"
    return int(conn.execute(text(sql)).scalar_one())


def read_grids_first(conn: Connection, *, hold: bool = False) -> None:
    """Take the grid tables' read lock at the start of a transaction that will lock case or component rows and
    then read the grids (an action's 提级 or 重新受理, a merge, a component moved, the history import), or write
    the tier grids (a tier-3 regroup). ``boundaries recode`` takes the grids exclusively — unit grids, then tier
    grids — and then rewrites those rows: a writer that locked a row or a tier grid first would wait for the recode
    while the recode waits for it — a deadlock. Taken first, in the recode's order, one waits for the other.

    ``hold``: the transaction will store codes it reads from the grids in rows nobody else locks (a kept case's
    作废/不予立案 reopens its merged duplicates, ``refresh_case_codes``; the history import): SHARE, so a
    regeneration or tier-3 regroup writing the grids meanwhile commits first and is read, or waits — it would not
    move rows it did not see, or saw finished. Taken before any row lock, it cannot deadlock with them either."""
    mode = "SHARE" if hold else "ACCESS SHARE"
    conn.execute(text(f"LOCK TABLE unit_grids, management_grids IN {mode} MODE"))


def unit_grid_at(point: str, alias: str = "g", *, prefer: str | None = None) -> str:
    """The clause (``WHERE`` body, ``ORDER BY``, ``LIMIT 1``) by which every query finds the unit grid of a point
    (SQL expression ``point``; ``alias`` the unit_grids alias): the cells covering it, else the cells within
    ``POSITION_TOLERANCE_DEG`` (≈ 1 cm) — cutting leaves slivers of square centimetres uncovered along a unit's
    boundary, and a point on that boundary (a street corner, a component's own position) is in the district —
    of these the lowest code (``prefer``: an ordering put before it). The component import locates by the same
    rule (``components_store.UnitGrids.locate``)."""
    g, then = alias, f"{prefer}, " if prefer else ""
    return (
        f"ST_DWithin({g}.geom, {point}, {POSITION_TOLERANCE_DEG!r}) "
        f"ORDER BY NOT ST_Covers({g}.geom, {point}), {then}{g}.code LIMIT 1"
    )


#: A stored unit counts as the same place as an imported one when their intersection covers at least this share of
#: the larger of the two (areas on the ellipsoid): redrawn or re-digitised boundaries of one 街道/社区 differ by a few
#: per cent at most, while neighbours overlap by slivers.
SAME_PLACE_SHARE = 0.95


@dataclass
class SamePlace:
    """An imported unit under a code that is not stored, covering the same place as a stored unit whose code has a
    provisional part: storing it would put two units on one area."""

    code: str
    name: str
    stored_code: str
    stored_name: str
    stored_assigned: bool  # the stored unit's own part was numbered (else only its street's)
    share: float


def provisional_same_place(conn: Connection, units: gpd.GeoDataFrame) -> list[SamePlace]:
    """The units of ``units`` (EPSG:4490) with a code not stored that cover the same place (``SAME_PLACE_SHARE``)
    as a stored unit of the same level whose code contains a part gisgrid numbered and is not in ``units``."""
    if units.empty or count_provisional(conn) == 0:  # the usual case: no overlay to compute
        return []
    sql = text(
        f"""
        SELECT n.code, n.name, o.code AS stored_code, o.name AS stored_name, o.code_assigned,
               ST_Area(ST_Intersection(o.geom, n.geom)::geography)
                   / greatest(ST_Area(o.geom::geography), ST_Area(n.geom::geography), 1e-9) AS share
        FROM (
            SELECT code, name, level, ST_GeomFromEWKB(decode(wkb, 'hex')) AS geom
            FROM unnest(CAST(:codes AS text[]), CAST(:names AS text[]), CAST(:levels AS text[]),
                        CAST(:wkb AS text[])) AS t(code, name, level, wkb)
        ) n
        JOIN admin_units o ON o.level = n.level AND o.geom && n.geom AND ST_Intersects(o.geom, n.geom)
        WHERE {PROVISIONAL.format(code="o.code")}
          AND o.code <> ALL(CAST(:codes AS text[]))
          AND NOT EXISTS (SELECT 1 FROM admin_units s WHERE s.code = n.code)
        """
    )
    rows = conn.execute(sql, _unit_arrays(units)).all()
    found = [SamePlace(r[0], r[1], r[2], r[3], bool(r[4]), float(r[5])) for r in rows if r[5] >= SAME_PLACE_SHARE]
    return sorted(found, key=lambda s: (s.stored_code, s.code))


def _unit_arrays(units: gpd.GeoDataFrame) -> dict[str, list[str]]:
    """Imported units as the parallel arrays the queries ``unnest`` (code, name, level, hex EWKB)."""
    return {
        "codes": units["code"].tolist(),
        "names": [n if isinstance(n, str) else "" for n in units["name"]],
        "levels": units["level"].tolist(),
        "wkb": hex_ewkb(units.geometry.to_numpy()).tolist(),
    }


@dataclass
class StoredOverlap:
    """An imported unit overlapping a stored unit of the same level under another code (``overlapping_stored``)."""

    code: str
    name: str
    stored_code: str
    stored_name: str
    area_m2: float  # of their intersection, on the ellipsoid


def overlapping_stored(conn: Connection, units: gpd.GeoDataFrame, noise_m2: float) -> list[StoredOverlap]:
    """Pairs of a unit of ``units`` (EPSG:4490) and a stored unit of the same level whose code is not in ``units``
    (stored units the import replaces are left out: their new shapes are checked against each other by the file's
    own topology report) whose intersection is larger than ``noise_m2`` m² on the ellipsoid — largest first. One
    query: the stored candidates come from the GiST index (``&&``); neighbours sharing only an edge or a corner
    have no area in common (``ST_Relate`` '2********' needs a 2-D intersection before it is measured)."""
    if units.empty:
        return []
    sql = text(
        """
        SELECT code, name, stored_code, stored_name, area FROM (
            SELECT n.code, n.name, o.code AS stored_code, o.name AS stored_name,
                   ST_Area(ST_Intersection(o.geom, n.geom)::geography) AS area
            FROM (
                SELECT code, name, level, ST_GeomFromEWKB(decode(wkb, 'hex')) AS geom
                FROM unnest(CAST(:codes AS text[]), CAST(:names AS text[]), CAST(:levels AS text[]),
                            CAST(:wkb AS text[])) AS t(code, name, level, wkb)
            ) n
            JOIN admin_units o ON o.level = n.level AND o.geom && n.geom AND ST_Relate(o.geom, n.geom, '2********')
            WHERE o.code <> ALL(CAST(:codes AS text[]))
        ) x
        WHERE area > :noise
        ORDER BY area DESC, code, stored_code
        """
    )
    rows = conn.execute(sql, {**_unit_arrays(units), "noise": noise_m2}).all()
    return [StoredOverlap(r[0], r[1], r[2], r[3], float(r[4])) for r in rows]


# -- replacing a provisional code (gisgrid boundaries recode) ---------------------------------------


@dataclass
class RecodeCounts:
    """Rows a recode rewrote, per table (``cases_finished`` of ``cases``; ``component_cells`` moved by the
    components' triggers; ``case_transitions``: 提级 records naming a grid; ``component_history``: entries written)."""

    admin_units: int = 0
    management_grids: dict[int, int] = field(default_factory=dict)  # per tier
    unit_grids: int = 0
    retired_unit_grids: int = 0
    cases: int = 0
    cases_finished: int = 0
    case_transitions: int = 0
    components: int = 0
    component_history: int = 0
    component_cells: int = 0

    def to_text(self) -> str:
        tiers = ", ".join(f"tier {t} {n}" for t, n in sorted(self.management_grids.items())) or "0"
        return "\n".join(
            [
                f"admin_units: {self.admin_units} (the unit and its children)",
                f"management_grids: {tiers} (网格长/网格员 kept)",
                f"unit_grids: {self.unit_grids}",
                f"retired_unit_grids: {self.retired_unit_grids} (retired codes, kept for their place)",
                f"cases: {self.cases} ({self.cases_finished} finished: 结案/不予立案/作废)",
                f"case_transitions: {self.case_transitions} (提级 records naming a grid)",
                f"components: {self.components} ({self.component_history} history entries written)",
                f"component_cells: {self.component_cells}",
            ]
        )


def stored_unit(conn: Connection, code: str) -> dict[str, Any] | None:
    row = conn.execute(
        text("SELECT code, name, level, parent_code, code_assigned FROM admin_units WHERE code = :c"), {"c": code}
    )
    found = row.mappings().first()
    return dict(found) if found else None


def code_prefix_in_use(conn: Connection, prefix: str) -> str | None:
    """What stored code starts with ``prefix`` — an administrative unit, a management grid or a unit grid — if any."""
    for table, what in (("admin_units", "unit"), ("management_grids", "management grid"), ("unit_grids", "unit grid")):
        code = conn.execute(
            text(f"SELECT code FROM {table} WHERE left(code, :n) = :p ORDER BY code LIMIT 1"),
            {"n": len(prefix), "p": prefix},
        ).scalar()
        if code is not None:
            return f"{what} {code}"
    return None


def recode_admin_code(conn: Connection, old: str, new: str, *, actor: str) -> RecodeCounts:
    """Replace the code prefix ``old`` by ``new`` (same length) everywhere it is stored, in the caller's
    transaction: the unit and its children (``admin_units``, official from now on: ``code_assigned`` false for
    ``old`` itself, the children keep theirs), their tier grids with their staff, unit grids, cases (finished ones
    too: the provisional code stood for the same place), the 提级 records of the case log, and components (a
    history entry each; ``component_cells`` follow by their triggers). Checks are the caller's
    (``workflows.recode_unit``)."""
    n = len(old)
    p = {"old": old, "new": new, "n": n}

    def re_(col: str) -> str:
        return f"CASE WHEN left({col}, :n) = :old THEN :new || substr({col}, :n + 1) ELSE {col} END"

    mine = "left({col}, :n) = :old"
    counts = RecodeCounts()
    # Primary keys others point at: the new rows first, then the references, then the old rows go.
    counts.admin_units = conn.execute(
        text(
            f"""
            INSERT INTO admin_units (code, name, level, parent_code, area_m2, metric_srid, geom, created_at,
                                     code_assigned, grid_seq_issued)
            SELECT {re_("code")}, name, level, {re_("parent_code")}, area_m2, metric_srid, geom, created_at,
                   code_assigned AND code <> :old, grid_seq_issued
            FROM admin_units WHERE {mine.format(col="code")}
            """
        ),
        p,
    ).rowcount
    tiers = conn.execute(
        text(
            f"""
            INSERT INTO management_grids (code, tier, name, parent_code, admin_code, leader_name, leader_phone,
                                          staff, geom)
            SELECT {re_("code")}, tier, name, {re_("parent_code")}, {re_("admin_code")}, leader_name, leader_phone,
                   staff, geom
            FROM management_grids WHERE {mine.format(col="code")}
            RETURNING tier
            """
        ),
        p,
    ).scalars()
    counts.management_grids = dict(sorted(Counter(int(t) for t in tiers).items()))
    counts.unit_grids = conn.execute(
        text(
            f"""
            UPDATE unit_grids SET code = {re_("code")}, unit_code = {re_("unit_code")},
                   street_code = {re_("street_code")}, community_code = {re_("community_code")},
                   tier3_code = {re_("tier3_code")}
            WHERE {mine.format(col="code")} OR {mine.format(col="unit_code")}
            """
        ),
        p,
    ).rowcount
    # Retired codes follow their unit: before its old row goes (they go with it, ON DELETE CASCADE).
    counts.retired_unit_grids = conn.execute(
        text(
            f"""
            UPDATE retired_unit_grids SET code = {re_("code")}, unit_code = {re_("unit_code")}
            WHERE {mine.format(col="code")} OR {mine.format(col="unit_code")}
            """
        ),
        p,
    ).rowcount
    conn.execute(text(f"DELETE FROM management_grids WHERE {mine.format(col='code')}"), p)
    for level in ("community", "street"):  # children before their parent (parent_code is RESTRICT)
        conn.execute(
            text(f"DELETE FROM admin_units WHERE {mine.format(col='code')} AND level = :level"), p | {"level": level}
        )

    case_where = " OR ".join(
        mine.format(col=c) for c in ("unit_grid_code", "street_code", "community_code", "tier3_code")
    )
    cases = conn.execute(
        text(
            f"""
            UPDATE cases SET unit_grid_code = {re_("unit_grid_code")}, street_code = {re_("street_code")},
                   community_code = {re_("community_code")}, tier3_code = {re_("tier3_code")}
            WHERE {case_where}
            RETURNING state = ANY(:finished)
            """
        ),
        p | {"finished": FINISHED_STATES},
    ).scalars()
    finished = list(cases)
    counts.cases, counts.cases_finished = len(finished), sum(finished)
    counts.case_transitions = conn.execute(
        text(
            f"""
            UPDATE case_transitions
            SET details = jsonb_set(details, '{{to_grid}}', to_jsonb({re_("details->>'to_grid'")}))
            WHERE {mine.format(col="details->>'to_grid'")}
            """
        ),
        p,
    ).rowcount
    counts.component_cells = int(
        conn.execute(
            text(f"SELECT count(*) FROM component_cells WHERE {mine.format(col='unit_grid_code')}"), p
        ).scalar_one()
    )
    columns = ("unit_grid_code", "street_code", "community_code")
    moved = recode_components(
        conn,
        {c: re_(f"o.{c}") for c in columns},
        " OR ".join(mine.format(col=f"o.{c}") for c in columns),
        p,
        actor=actor,
        source=f"boundaries recode {old} {new}",
    )
    counts.components = counts.component_history = moved
    return counts


# -- replacing or removing one unit (gisgrid boundaries replace / remove) ------------------------------

#: The column of a case or component that names a unit of each level.
LEVEL_COLUMN = {"district": "district_code", "street": "street_code", "community": "community_code"}
#: How many codes of each kind a refusal lists (the count is always whole).
LISTED_CODES = 5


@dataclass
class Referenced:
    """How many stored records of one kind name a unit, and the first ``LISTED_CODES`` of them by code."""

    count: int = 0
    first: list[str] = field(default_factory=list)

    def text(self, sep: str) -> str:
        more = "…" if self.count > len(self.first) else ""
        return sep.join(self.first) + (sep + more if more else "")


@dataclass
class UnitReferences:
    """What still names a stored unit: its child units, the unit grids cut inside it, tier-3 grids (with their
    网格长/网格员), cases (finished ones too: their codes are the record of who answered for them) and components."""

    children: Referenced = field(default_factory=Referenced)
    unit_grids: Referenced = field(default_factory=Referenced)
    tier3: Referenced = field(default_factory=Referenced)
    cases: Referenced = field(default_factory=Referenced)
    cases_finished: int = 0
    components: Referenced = field(default_factory=Referenced)

    def __bool__(self) -> bool:
        return any(r.count for r in (self.children, self.unit_grids, self.tier3, self.cases, self.components))

    def zh(self) -> str:
        parts = [
            (self.children, "下级单元", "个", ""),
            (self.unit_grids, "单元网格", "个", ""),
            (self.tier3, "三级网格", "个", ""),
            (self.cases, "案件", "件", f"其中已办结 {self.cases_finished} 件:" if self.cases_finished else ""),
            (self.components, "部件", "个", ""),
        ]
        return "、".join(f"{what} {r.count} {unit}({note}{r.text('、')})" for r, what, unit, note in parts if r.count)

    def en(self) -> str:
        parts = [
            (self.children, "child unit(s)", ""),
            (self.unit_grids, "unit grid(s)", ""),
            (self.tier3, "tier-3 grid(s)", ""),
            (self.cases, "case(s)", f"{self.cases_finished} finished: " if self.cases_finished else ""),
            (self.components, "component(s)", ""),
        ]
        return ", ".join(f"{r.count} {what} ({note}{r.text(', ')})" for r, what, note in parts if r.count)

    def items(self) -> list[dict[str, Any]]:
        """One detail item per kind that names the unit: its table, count and first codes."""
        kinds = {
            "admin_units": self.children,
            "unit_grids": self.unit_grids,
            "management_grids": self.tier3,
            "cases": self.cases,
            "components": self.components,
        }
        return [{"table": t, "count": r.count, "first": r.first} for t, r in kinds.items() if r.count]


def unit_references(conn: Connection, code: str, level: str) -> UnitReferences:
    """What names the stored unit ``code`` of ``level`` (see :class:`UnitReferences`): by its code column, or by a
    unit grid whose code starts with it (a case or component kept in a cell of the unit)."""
    p = {"c": code, "n": len(code), "k": LISTED_CODES, "finished": FINISHED_STATES}
    col = LEVEL_COLUMN[level]

    def referenced(sql: str) -> Referenced:
        count, first = conn.execute(text(sql), p).one()
        return Referenced(int(count), list(first or []))

    first = "SELECT count(*), (array_agg({key} ORDER BY {key}))[1:(:k)] FROM {table} WHERE {where}"
    cases_where = f"{col} = :c OR left(unit_grid_code, :n) = :c"
    return UnitReferences(
        children=referenced(first.format(key="code", table="admin_units", where="parent_code = :c")),
        unit_grids=referenced(
            first.format(key="code", table="unit_grids", where="unit_code = :c OR left(code, :n) = :c")
        ),
        tier3=referenced(first.format(key="code", table="management_grids", where="tier = 3 AND left(code, :n) = :c")),
        cases=referenced(first.format(key="case_no", table="cases", where=cases_where)),
        cases_finished=int(
            conn.execute(
                text(f"SELECT count(*) FROM cases WHERE ({cases_where}) AND state = ANY(:finished)"), p
            ).scalar_one()
        ),
        components=referenced(first.format(key="id", table="components", where=cases_where)),
    )


def replace_unit_geometry(conn: Connection, code: str, geom: Any, crs: Any) -> tuple[float, float]:
    """Store ``geom`` (in ``crs``) as the unit's boundary, with its ellipsoidal area, and its tier 1/2 grid's;
    name, level, parent and code flags stay. The area before and after, m²."""
    area = float(np.round(geodesic_areas(np.asarray([geom], dtype=object), crs), 2)[0])
    before = conn.execute(
        text(
            "UPDATE admin_units u SET geom = ST_GeomFromEWKB(decode(:wkb, 'hex')), area_m2 = :area "
            "FROM admin_units o WHERE u.code = :c AND o.code = u.code RETURNING o.area_m2"
        ),
        {"c": code, "wkb": hex_ewkb(np.asarray([geom], dtype=object))[0], "area": area},
    ).scalar_one()
    rebuild_tiers_1_2(conn)
    return float(before or 0.0), area


def nesting_gaps(conn: Connection, code: str, noise_m2: float) -> list[tuple[str, float]]:
    """The stored unit's area outside its parent, and each child's outside it, above ``noise_m2`` m² (on the
    ellipsoid): (the unit or child's code, m²), largest first."""
    sql = text(
        """
        SELECT code, area FROM (
            SELECT u.code, ST_Area(ST_Difference(u.geom, p.geom)::geography) AS area
            FROM admin_units u JOIN admin_units p ON p.code = u.parent_code WHERE u.code = :c
            UNION ALL
            SELECT k.code, ST_Area(ST_Difference(k.geom, u.geom)::geography)
            FROM admin_units k JOIN admin_units u ON u.code = k.parent_code WHERE u.code = :c
        ) x WHERE area > :noise ORDER BY area DESC, code
        """
    )
    return [(str(r[0]), float(r[1])) for r in conn.execute(sql, {"c": code, "noise": noise_m2})]


def unit_geometry_ewkb(conn: Connection, code: str) -> str:
    """The stored unit's boundary as hex EWKB (to compare with after a change: :func:`opened_gap`)."""
    return str(
        conn.execute(
            text("SELECT encode(ST_AsEWKB(geom), 'hex') FROM admin_units WHERE code = :c"), {"c": code}
        ).scalar_one()
    )


def is_union_of_children(conn: Connection, code: str, noise_m2: float) -> bool:
    """Whether the stored unit's boundary is the union of its children's (as a district an import synthesised
    from its streets is) within ``noise_m2`` m² of difference; False for a unit with no children."""
    area = conn.execute(
        text(
            "SELECT ST_Area(ST_SymDifference(p.geom, ST_Union(k.geom))::geography) FROM admin_units p "
            "JOIN admin_units k ON k.parent_code = p.code WHERE p.code = :c GROUP BY p.code, p.geom"
        ),
        {"c": code},
    ).scalar()
    return area is not None and float(area) <= noise_m2


@dataclass(frozen=True)
class OpenedGap:
    """Part of a parent that a child's new boundary left and no sibling covers: in the parent, in no child."""

    parent_code: str
    parent_level: str
    parent_name: str
    area_m2: float
    lon: float  # a point inside it (the largest piece's, on its surface)
    lat: float


def opened_gap(conn: Connection, code: str, old_ewkb: str, noise_m2: float) -> OpenedGap | None:
    """The part of the stored unit's parent that its old boundary (``old_ewkb``, hex EWKB) covered, its stored one
    does not, and none of its siblings does; None below ``noise_m2`` m² (or with no parent)."""
    row = conn.execute(
        text(
            """
            WITH u AS (SELECT code, parent_code, geom FROM admin_units WHERE code = :c),
            sib AS (SELECT ST_Union(k.geom) AS g FROM admin_units k JOIN u ON k.parent_code = u.parent_code
                    WHERE k.code <> u.code),
            gap AS (
                SELECT p.code, p.level, p.name, ST_CollectionExtract(ST_Difference(
                    ST_Intersection(ST_Difference(ST_GeomFromEWKB(decode(:old, 'hex')), u.geom), p.geom),
                    coalesce(sib.g, ST_SetSRID('GEOMETRYCOLLECTION EMPTY'::geometry, ST_SRID(u.geom)))), 3) AS g
                FROM u JOIN admin_units p ON p.code = u.parent_code CROSS JOIN sib
            ),
            piece AS (
                SELECT gap.*, (SELECT d.geom FROM ST_Dump(gap.g) d ORDER BY ST_Area(d.geom) DESC LIMIT 1) AS big
                FROM gap
            )
            SELECT code, level, name, ST_Area(g::geography), ST_X(ST_PointOnSurface(big)),
                   ST_Y(ST_PointOnSurface(big))
            FROM piece WHERE NOT ST_IsEmpty(g)
            """
        ),
        {"c": code, "old": old_ewkb},
    ).one_or_none()
    if row is None or float(row[3]) <= noise_m2:
        return None
    return OpenedGap(str(row[0]), str(row[1]), str(row[2]), round(float(row[3]), 1), float(row[4]), float(row[5]))


def union_of_children(conn: Connection, code: str) -> Any:
    """The union of the stored unit's children's boundaries (lon/lat, EPSG:4490), as an import synthesises a
    district from its streets."""
    wkb = conn.execute(
        text("SELECT ST_AsBinary(ST_Multi(ST_Union(geom))) FROM admin_units WHERE parent_code = :c"), {"c": code}
    ).scalar_one()
    return shapely.from_wkb(bytes(wkb))


def issued_grid_codes(conn: Connection, code: str) -> tuple[int, list[str]]:
    """The highest unit-grid sequence number the stored unit ``code`` has issued (``admin_units.grid_seq_issued``)
    and its retired codes (``retired_unit_grids``, sorted): what removing it would forget, as both go with its row
    (ON DELETE CASCADE)."""
    issued = conn.execute(
        text("SELECT grid_seq_issued FROM admin_units WHERE code = :c"), {"c": code}
    ).scalar_one_or_none()
    retired = conn.execute(
        text("SELECT code FROM retired_unit_grids WHERE unit_code = :c ORDER BY code"), {"c": code}
    ).scalars()
    return int(issued or 0), [str(r) for r in retired]


def remove_unit(conn: Connection, code: str) -> int:
    """Delete the stored unit and its own tier 1/2 grid (nothing may name it: the caller checks
    :func:`unit_references`). The management grids deleted."""
    grids = conn.execute(text("DELETE FROM management_grids WHERE code = :c AND tier IN (1, 2)"), {"c": code}).rowcount
    conn.execute(text("DELETE FROM admin_units WHERE code = :c"), {"c": code})
    return int(grids or 0)


LOWEST_UNITS_SQL = """
SELECT u.code, u.name, u.level,
       left(u.code, 6) AS district_code,
       CASE WHEN length(u.code) >= 9 THEN left(u.code, 9) END AS street_code,
       CASE WHEN length(u.code) = 12 THEN u.code END AS community_code,
       d.name AS district_name, s.name AS street_name,
       CASE WHEN length(u.code) = 12 THEN u.name END AS community_name,
       coalesce(d.metric_srid, u.metric_srid) AS metric_srid,
       u.geom
FROM admin_units u
LEFT JOIN admin_units d ON d.code = left(u.code, 6)
LEFT JOIN admin_units s ON s.code = left(u.code, 9) AND length(u.code) >= 9
WHERE NOT EXISTS (SELECT 1 FROM admin_units c WHERE c.parent_code = u.code)
  AND (CAST(:district AS text) IS NULL OR left(u.code, 6) = :district)
ORDER BY u.code
"""


#: What a report or a locate says on a database without boundaries (migrated, nothing imported), as the CLI says it.
NO_BOUNDARIES_TEXT = "no district is loaded (no boundaries, no unit grids): run gisgrid boundaries import FILE first"


def grids_loaded(conn: Connection) -> bool:
    """Whether any unit grid is stored (a probe of one row)."""
    return bool(conn.execute(text("SELECT EXISTS (SELECT 1 FROM unit_grids)")).scalar_one())


def no_boundaries_loaded(kind: type[GisgridError] = InvalidInput) -> GisgridError:
    """The refusal of a point on a database without boundaries: ``no_boundaries``, not ``outside_coverage`` with its
    datum and lon/lat hint — no point would be inside."""
    return kind(
        NO_BOUNDARIES_TEXT,
        detail=[{"field": None, "reason": "no boundaries loaded"}],
        reason=Reason.NO_BOUNDARIES,
    )


def load_lowest_units(conn: Connection, district: str | None = None) -> gpd.GeoDataFrame:
    """The units that get unit grids: every unit without children (community, else street, else district)."""
    gdf = gpd.read_postgis(text(LOWEST_UNITS_SQL), conn, geom_col="geom", params={"district": district})
    if gdf.empty:
        where = f" of district {district}" if district else ""
        raise InvalidInput(
            f"no boundaries{where} are loaded: run gisgrid boundaries import FILE first", reason=Reason.NO_BOUNDARIES
        )
    gdf = gdf.rename_geometry("geometry")
    gdf["street_name"] = gdf["street_name"].where(gdf["street_code"].notna(), None)
    return gdf


# -- unit grids -----------------------------------------------------------------------------------

UNIT_GRID_COLUMNS = (
    "code",
    "unit_code",
    "district_code",
    "street_code",
    "community_code",
    "seq",
    "row",
    "col",
    "area_m2",
    "geom",
)


def tier3_snapshot(conn: Connection, unit_codes: list[str]) -> pd.DataFrame:
    """The stored cells of ``unit_codes`` with a hash of their geometry and their tier-3 grid (code, unit_code,
    tier3_code, geom_hash): taken before a regeneration so the tier-3 layer can be carried over to the new cells."""
    rows = conn.execute(
        text(
            "SELECT code, unit_code, tier3_code, md5(ST_AsBinary(geom)) AS geom_hash "
            "FROM unit_grids WHERE unit_code = ANY(:u)"
        ),
        {"u": unit_codes},
    ).all()
    return pd.DataFrame(rows, columns=["code", "unit_code", "tier3_code", "geom_hash"])


def unit_grid_hashes(conn: Connection, unit_codes: list[str]) -> pd.Series:
    """Geometry hash of the stored cells of ``unit_codes``, indexed by cell code (same hash as tier3_snapshot)."""
    rows = conn.execute(
        text("SELECT code, md5(ST_AsBinary(geom)) FROM unit_grids WHERE unit_code = ANY(:u)"), {"u": unit_codes}
    ).all()
    return pd.Series(dict(rows), dtype=object)


def stored_cells_to_number(
    conn: Connection, unit_codes: list[str], district: str | None = None
) -> tuple[gpd.GeoDataFrame, pd.Series, gpd.GeoDataFrame]:
    """What a regeneration numbers the new cells of ``unit_codes`` against (``numbering.keep_codes``): their stored
    cells (code, unit_code, seq, row, col, geometry in EPSG:4490), the highest sequence number each unit has
    issued (``admin_units.grid_seq_issued``, indexed by unit code) and their retired cells (``retired_unit_grids``,
    the same columns). Units of the regenerated ``district`` (all when None) that are not among ``unit_codes`` yet
    have unit grids — a street cut before communities were imported under it, so no longer a lowest unit — are
    taken with them: no new cell is theirs, so every one of their stored cells retires as a changed cell does (the
    caller tells them by their ``unit_code``). The units' rows are locked (FOR NO KEY UPDATE)
    until the caller's transaction ends, so two regenerations of one unit number one after the other. The first
    statement of the transaction: it takes ``admin_units`` (ROW EXCLUSIVE, as the later ``record_issued_seq`` needs)
    before any grid table, the order a recode, replace or remove takes them in (``workflows._lock_for_unit_edit``),
    so the two wait for each other in turn instead of deadlocking."""
    conn.execute(text("LOCK TABLE admin_units IN ROW EXCLUSIVE MODE"))
    superseded = conn.execute(
        text(
            "SELECT DISTINCT unit_code FROM unit_grids WHERE unit_code <> ALL(:u) "
            "AND (CAST(:d AS text) IS NULL OR district_code = :d) ORDER BY unit_code"
        ),
        {"u": unit_codes, "d": district},
    ).scalars()
    unit_codes = [*unit_codes, *superseded]
    issued = conn.execute(
        text("SELECT code, grid_seq_issued FROM admin_units WHERE code = ANY(:u) ORDER BY code FOR NO KEY UPDATE"),
        {"u": unit_codes},
    ).all()
    cells, retired = (
        gpd.read_postgis(
            text(f"SELECT code, unit_code, seq, row, col, geom FROM {table} WHERE unit_code = ANY(:u) ORDER BY code"),
            conn,
            geom_col="geom",
            params={"u": unit_codes},
        ).rename_geometry("geometry")
        for table in ("unit_grids", "retired_unit_grids")
    )
    return cells, pd.Series(dict(issued), dtype="int64"), retired


def record_retired(conn: Connection, retired: list[str], restored: list[str]) -> None:
    """Remember the stored unit grids ``retired`` (codes) in ``retired_unit_grids`` — unit, seq, row, col and
    boundary as stored, with the time — and forget the ``restored`` codes, which name a unit grid again. Before
    :func:`replace_unit_grids` deletes the retired cells, in the caller's transaction (``numbering.keep_codes``)."""
    if restored:
        conn.execute(text("DELETE FROM retired_unit_grids WHERE code = ANY(:c)"), {"c": restored})
    if retired:
        conn.execute(
            text(
                """
                INSERT INTO retired_unit_grids AS r (code, unit_code, seq, row, col, geom)
                SELECT code, unit_code, seq, row, col, geom FROM unit_grids WHERE code = ANY(:c)
                ON CONFLICT (code) DO UPDATE SET unit_code = excluded.unit_code, seq = excluded.seq,
                    row = excluded.row, col = excluded.col, geom = excluded.geom, retired_at = now()
                """
            ),
            {"c": retired},
        )


def record_issued_seq(conn: Connection, issued: pd.Series) -> None:
    """Raise each unit's ``grid_seq_issued`` to the highest sequence number issued now (``issued``, indexed by unit
    code); it never goes down."""
    conn.execute(
        text(
            "UPDATE admin_units u SET grid_seq_issued = greatest(u.grid_seq_issued, v.seq) "
            "FROM unnest(CAST(:u AS text[]), CAST(:s AS int[])) AS v(code, seq) WHERE u.code = v.code"
        ),
        {"u": [str(c) for c in issued.index], "s": [int(v) for v in issued.to_numpy()]},
    )


def replace_unit_grids(conn: Connection, cells: gpd.GeoDataFrame, unit_codes: list[str]) -> int:
    """Replace the unit grids of ``unit_codes`` with ``cells`` (EPSG:4490), in the caller's transaction.

    Tier-3 grids (and their 网格长/网格员) are left in place: the new cells come in without a tier-3 grid and the
    caller carries the tier-3 layer over (``workflows.generate_grids`` → ``save_tier3``), which removes only the
    grids that no longer exist, and last moves components and cases to the new cells (``follow_new_grids``)."""
    conn.execute(text("DELETE FROM unit_grids WHERE unit_code = ANY(:u)"), {"u": unit_codes})
    unit_code = (
        cells["community_code"]
        .where(cells["community_code"].notna(), cells["street_code"])
        .where(lambda s: s.notna(), cells["district_code"])
    )
    rows = zip(
        cells["code"],
        unit_code,
        cells["district_code"],
        cells["street_code"],
        cells["community_code"],
        cells["seq"].astype(int),
        cells["row"].astype(int),
        cells["col"].astype(int),
        cells["area_m2"].astype(float),
        hex_ewkb(cells.geometry.to_numpy()),
        strict=True,
    )
    return copy_rows(conn, "unit_grids", UNIT_GRID_COLUMNS, rows)


def follow_new_grids(conn: Connection) -> tuple[int, int]:
    """After new unit grids (and their tier-3 layer) are stored, as the last thing their transaction does:
    components and cases take the cells they lie in now (``relocate_components``, ``relocate_cases``). Component
    writes are held first (SHARE on the table until the commit): a write in flight — it takes the table before
    it reads the grids (``components_store.write_components``) — ends first and is moved by the update here; the
    next one waits for the commit and reads the new cells. Reports wait on their unit grid's row instead
    (``case_intake._intake_write``). Returns (components moved, cases moved)."""
    conn.execute(text("LOCK TABLE components IN SHARE MODE"))
    return relocate_components(conn), relocate_cases(conn)


def relocate_cases(conn: Connection) -> int:
    """Cases whose recorded unit grid is gone or no longer covers their point (the boundary under them changed)
    take the grid that does now — the lowest code, as intake chooses — so each case can still be drawn and its
    orders printed. A case still in progress takes the grid's street, community and tier-3 codes too; a finished
    one (``FINISHED_STATES``) keeps the ones it was handled under. A case still inside its recorded cell keeps it,
    so a stable grid layer leaves past figures alone. Returns the number of cases moved."""
    result = conn.execute(
        text(
            f"""
            UPDATE cases c SET unit_grid_code = u.code,
                   street_code = CASE WHEN k.state = ANY(:finished) THEN k.street_code ELSE u.street_code END,
                   community_code = CASE WHEN k.state = ANY(:finished) THEN k.community_code
                                         ELSE u.community_code END,
                   tier3_code = CASE WHEN k.state = ANY(:finished) THEN k.tier3_code ELSE u.tier3_code END
            FROM cases k
            CROSS JOIN LATERAL (
                SELECT g.code, g.street_code, g.community_code, g.tier3_code FROM unit_grids g
                WHERE {unit_grid_at("k.geom")}
            ) u
            WHERE k.id = c.id AND k.geom IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM unit_grids r WHERE r.code = k.unit_grid_code
                AND ST_DWithin(r.geom, k.geom, {POSITION_TOLERANCE_DEG!r})
            )
            """
        ),
        {"finished": FINISHED_STATES},
    )
    return int(result.rowcount or 0)


def refresh_case_codes(conn: Connection, case_ids: list[int]) -> None:
    """Cases back in progress (a merged duplicate reopened) take the codes of the grids they lie in now, as a case
    in progress does on a regroup or a boundary change: their recorded cell while it still covers them, else the
    covering cell of the lowest code, with its street, community and tier-3 codes. (Finished, they kept the codes
    they were handled under.) A case no grid covers any more keeps its codes."""
    conn.execute(
        text(
            f"""
            UPDATE cases c SET unit_grid_code = u.code, street_code = u.street_code,
                   community_code = u.community_code, tier3_code = u.tier3_code
            FROM cases k
            CROSS JOIN LATERAL (
                SELECT g.code, g.street_code, g.community_code, g.tier3_code FROM unit_grids g
                WHERE {unit_grid_at("k.geom", prefer="g.code IS DISTINCT FROM k.unit_grid_code")}
            ) u
            WHERE k.id = c.id AND c.id = ANY(:ids) AND k.geom IS NOT NULL
            """
        ),
        {"ids": case_ids},
    )


def relocate_components(conn: Connection) -> int:
    """Keep each component's unit grid (and street/community) current after the grids changed: the lowest code
    of the grids covering it — the rule case intake and ``/grids/locate`` follow, so a component on a shared edge
    stays put instead of flipping between its grids at every regeneration — or none (NULL) when no grid covers it
    any more (a boundary that shrank). Returns the number of components whose grid changed."""
    result = conn.execute(
        text(
            f"""
            UPDATE components c SET unit_grid_code = b.code,
                   street_code = coalesce(b.street_code, c.street_code),
                   community_code = coalesce(b.community_code, c.community_code)
            FROM (
                SELECT k.id, u.code, u.street_code, u.community_code
                FROM components k
                CROSS JOIN LATERAL (SELECT ST_PointOnSurface(k.geom) AS at) a
                LEFT JOIN LATERAL (
                    SELECT g.code, g.street_code, g.community_code FROM unit_grids g WHERE {unit_grid_at("a.at")}
                ) u ON TRUE
            ) b
            WHERE b.id = c.id AND c.unit_grid_code IS DISTINCT FROM b.code
            """
        )
    )
    return int(result.rowcount or 0)


def load_unit_grids(conn: Connection, district: str | None = None) -> gpd.GeoDataFrame:
    sql = text(
        """
        SELECT g.code, g.district_code, g.street_code, g.community_code, g.seq, g.row, g.col, g.area_m2,
               g.tier3_code, d.name AS district_name, s.name AS street_name, c.name AS community_name,
               {provisional} AS code_provisional, g.geom
        FROM unit_grids g
        LEFT JOIN admin_units d ON d.code = g.district_code
        LEFT JOIN admin_units s ON s.code = g.street_code
        LEFT JOIN admin_units c ON c.code = g.community_code
        WHERE CAST(:district AS text) IS NULL OR g.district_code = :district
        ORDER BY g.code
        """.format(provisional=PROVISIONAL.format(code="g.code"))
    )
    gdf = gpd.read_postgis(sql, conn, geom_col="geom", params={"district": district})
    return gdf.rename_geometry("geometry")


# -- management grids (三级网格) -------------------------------------------------------------------


def rebuild_tiers_1_2(conn: Connection) -> tuple[int, int]:
    """Tier 1 = streets, tier 2 = communities, taken from the administrative units (staff kept)."""
    upsert = """
        INSERT INTO management_grids (code, tier, name, parent_code, admin_code, geom)
        SELECT u.code, :tier, u.name, {parent}, u.code, u.geom FROM admin_units u WHERE u.level = :level
        ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, parent_code = EXCLUDED.parent_code,
            admin_code = EXCLUDED.admin_code, geom = EXCLUDED.geom
    """
    t1 = conn.execute(text(upsert.format(parent="NULL")), {"tier": 1, "level": "street"}).rowcount
    t2 = conn.execute(
        text(upsert.format(parent="(SELECT p.code FROM management_grids p WHERE p.code = u.parent_code)")),
        {"tier": 2, "level": "community"},
    ).rowcount
    return int(t1 or 0), int(t2 or 0)


#: A tier-3 grid rebuilt under the same code counts as the same grid (keeping its 网格长/网格员) when the symmetric
#: difference between its old and new area is at most this share of its old area: regrouping identical unit grids
#: reproduces it to numerical noise, while moving even one of ~50 unit grids changes ~2 %.
SAME_GRID_TOLERANCE = 0.01


@dataclass
class Tier3Change:
    """What a tier-3 rebuild did, grid by grid (codes sorted)."""

    kept: list[str] = field(default_factory=list)  # same code and area: leader and staff kept
    rebuilt: list[str] = field(default_factory=list)  # same code, different area
    new: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # code no longer produced: grid removed
    staff_dropped: list[str] = field(default_factory=list)  # rebuilt or dropped grids that had a leader or staff
    cases_repointed: int = 0  # cases in progress moved to their unit grid's new tier-3 grid
    finished_cases_kept: int = 0  # finished cases whose unit grid moved to another tier-3 grid: code kept

    @property
    def stored(self) -> int:
        return len(self.kept) + len(self.rebuilt) + len(self.new)

    def to_text(self) -> str:
        text_ = (
            f"tier 3: kept {len(self.kept)} grids (code, area, 网格长/网格员 unchanged), rebuilt {len(self.rebuilt)}, "
            f"new {len(self.new)}, dropped {len(self.dropped)}; staff assignments dropped on "
            f"{len(self.staff_dropped)} grids"
        )
        if self.staff_dropped:
            text_ += f" ({_first_codes(self.staff_dropped)}): re-import them with gisgrid grids staff"
        if self.cases_repointed or self.finished_cases_kept:
            text_ += (
                f"; cases: {self.cases_repointed} in progress moved to their unit grid's new tier-3 grid, "
                f"{self.finished_cases_kept} finished (结案/不予立案/作废) kept the tier-3 grid they were handled in"
            )
        return text_


def _first_codes(codes: list[str], n: int = 5) -> str:
    return ", ".join(codes[:n]) + (f" and {len(codes) - n} more" if len(codes) > n else "")


def save_tier3(
    conn: Connection,
    cells: gpd.GeoDataFrame,
    groups: pd.Series,
    *,
    replace_staffed: bool = False,
    retiring: list[str] | None = None,
) -> Tier3Change:
    """Replace the tier-3 grids of the cells' units by the given grouping (``groups`` indexed like ``cells``).

    Each new grid is matched to the stored grid of the same code: if its area is the same (within
    ``SAME_GRID_TOLERANCE``) it is *kept* with its 网格长/网格员 (DB11/T 2157: grids are 相对稳定); otherwise it is
    *rebuilt* and its staff, who were assigned to a different area, are cleared. Grids whose code is no longer
    produced are dropped. Clearing or dropping a grid that has staff is refused (InvalidInput, nothing written by
    the caller's transaction) unless ``replace_staffed``. Cells are re-pointed only where their group changed, and
    cases still in progress follow their unit grid to its new tier-3 grid; finished ones keep theirs. The tier-3
    grids of the units ``retiring`` (no longer cut: child units came under them) are all dropped, as above."""
    units = cells["community_code"].fillna(cells["street_code"]).fillna(cells["district_code"])
    parents = sorted(set(units) | set(retiring or []))
    assign = pd.DataFrame({"code": cells["code"].to_numpy(), "tier3": groups.loc[cells.index].to_numpy()})
    conn.execute(text("CREATE TEMP TABLE _tier3_assign (code text PRIMARY KEY, tier3 text) ON COMMIT DROP"))
    copy_rows(conn, "_tier3_assign", ("code", "tier3"), assign.itertuples(index=False, name=None))
    conn.execute(
        text(
            """
            CREATE TEMP TABLE _tier3_new ON COMMIT DROP AS
            SELECT a.tier3 AS code, g.unit_code,
                   coalesce(u.name, '') || '第' || right(a.tier3, 2) || '网格' AS name,
                   ST_Multi(ST_CollectionExtract(ST_UnaryUnion(ST_Collect(g.geom)), 3)) AS geom
            FROM _tier3_assign a
            JOIN unit_grids g ON g.code = a.code
            LEFT JOIN admin_units u ON u.code = g.unit_code
            GROUP BY a.tier3, g.unit_code, u.name
            """
        )
    )
    # Areas on the ellipsoid (geography): the same measure whatever zone the district was cut in.
    rows = conn.execute(
        text(
            """
            SELECT coalesce(n.code, o.code) AS code,
                   CASE WHEN o.code IS NULL THEN 'new'
                        WHEN n.code IS NULL THEN 'dropped'
                        WHEN ST_Area(ST_SymDifference(n.geom, o.geom)::geography)
                             <= :tol * greatest(ST_Area(o.geom::geography), 1.0) THEN 'kept'
                        ELSE 'rebuilt' END AS change,
                   (o.leader_name IS NOT NULL OR coalesce(jsonb_array_length(o.staff), 0) > 0) AS staffed
            FROM _tier3_new n
            FULL JOIN (SELECT * FROM management_grids WHERE tier = 3 AND admin_code = ANY(:u)) o ON o.code = n.code
            ORDER BY 1
            """
        ),
        {"u": parents, "tol": SAME_GRID_TOLERANCE},
    ).all()
    change = Tier3Change()
    for code, kind, staffed in rows:
        getattr(change, kind).append(code)
        if staffed and kind in ("rebuilt", "dropped"):
            change.staff_dropped.append(code)
    if change.staff_dropped and not replace_staffed:
        raise InvalidInput(
            f"{len(change.staff_dropped)} tier-3 grid(s) with a 网格长/网格员 would be rebuilt with another area or "
            f"dropped ({_first_codes(change.staff_dropped)}), losing their staff assignments; nothing was changed. "
            "Pass --replace-tiers to do it anyway (then re-import staff with gisgrid grids staff)",
            detail=[{"code": c, "reason": "staffed tier-3 grid would change"} for c in change.staff_dropped],
        )
    conn.execute(
        text(
            """
            INSERT INTO management_grids (code, tier, name, parent_code, admin_code, geom)
            SELECT n.code, 3, n.name, (SELECT p.code FROM management_grids p WHERE p.code = n.unit_code),
                   n.unit_code, n.geom
            FROM _tier3_new n
            ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, parent_code = EXCLUDED.parent_code,
                admin_code = EXCLUDED.admin_code, geom = EXCLUDED.geom, tier = 3
            """
        )
    )
    # Staff were assigned to the old area: a rebuilt grid starts without them (the caller allowed it).
    conn.execute(
        text(
            "UPDATE management_grids SET leader_name = NULL, leader_phone = NULL, staff = '[]'::jsonb "
            "WHERE code = ANY(:c)"
        ),
        {"c": change.rebuilt},
    )
    regrouped = list(  # .all() is typed a Sequence; the second statement's codes are added to it
        conn.execute(
            text(
                "UPDATE unit_grids g SET tier3_code = a.tier3 FROM _tier3_assign a "
                "WHERE a.code = g.code AND g.tier3_code IS DISTINCT FROM a.tier3 RETURNING g.code"
            )
        )
        .scalars()
        .all()
    )
    regrouped += (
        conn.execute(
            text(
                "UPDATE unit_grids g SET tier3_code = NULL WHERE g.unit_code = ANY(:u) AND g.tier3_code IS NOT NULL "
                "AND NOT EXISTS (SELECT 1 FROM _tier3_assign a WHERE a.code = g.code) RETURNING g.code"
            ),
            {"u": parents},
        )
        .scalars()
        .all()
    )
    conn.execute(
        text(
            "DELETE FROM management_grids m WHERE m.tier = 3 AND m.admin_code = ANY(:u) "
            "AND NOT EXISTS (SELECT 1 FROM _tier3_assign a WHERE a.tier3 = m.code)"
        ),
        {"u": parents},
    )
    # A case in progress answers to the tier-3 grid of its unit grid (routing rules, escalation, the tier-3
    # evaluation): it follows. A finished case keeps the grid it was handled in — the record past periods are
    # evaluated on. Where the grid was kept nothing moves.
    moved = "g.code = c.unit_grid_code AND g.unit_code = ANY(:u) AND c.tier3_code IS DISTINCT FROM g.tier3_code"
    params = {"u": parents, "finished": FINISHED_STATES, "regrouped": regrouped}
    kept = conn.execute(  # those of the cells regrouped now (a case kept before is not counted again)
        text(
            f"SELECT count(*) FROM cases c, unit_grids g WHERE {moved} AND c.state = ANY(:finished) "
            "AND g.code = ANY(:regrouped)"
        ),
        params,
    )
    change.finished_cases_kept = int(kept.scalar_one())
    result = conn.execute(
        text(
            f"UPDATE cases c SET tier3_code = g.tier3_code FROM unit_grids g "
            f"WHERE {moved} AND c.state <> ALL(:finished)"
        ),
        params,
    )
    change.cases_repointed = int(result.rowcount or 0)
    return change


def save_staff(conn: Connection, staff: pd.DataFrame) -> int:
    """Set leader (the first 网格长) and staff list of each grid from validated rows (grid_code, role, name, phone).
    A missing phone (None or NaN, as a frame read by a caller holds it) is stored as null, not as JSON's NaN."""
    staff = staff.assign(phone=staff["phone"].astype(object).where(staff["phone"].notna(), None))
    members = (
        staff.assign(
            member=[
                json.dumps({"name": n, "phone": p, "role": r}, ensure_ascii=False)
                for n, p, r in zip(staff["name"], staff["phone"], staff["role"], strict=True)
            ]
        )
        .groupby("grid_code", sort=True)["member"]
        .agg(lambda m: "[" + ",".join(m) + "]")
    )
    leaders = staff[staff["role"] == "网格长"].drop_duplicates("grid_code").set_index("grid_code")
    rows = [
        (code, leaders["name"].get(code), leaders["phone"].get(code), members_json)
        for code, members_json in members.items()
    ]
    conn.execute(text("CREATE TEMP TABLE _staff (code text PRIMARY KEY, ln text, lp text, s jsonb) ON COMMIT DROP"))
    copy_rows(conn, "_staff", ("code", "ln", "lp", "s"), rows)
    result = conn.execute(
        text(
            "UPDATE management_grids m SET leader_name = t.ln, leader_phone = t.lp, staff = t.s "
            "FROM _staff t WHERE t.code = m.code"
        )
    )
    return int(result.rowcount or 0)


def staff_of(conn: Connection, codes: set[str], *, lock: bool = False) -> dict[str, list[dict[str, object]]]:
    """The stored staff list of each of ``codes`` (``lock``: FOR UPDATE, until the caller's transaction ends)."""
    sql = "SELECT code, staff FROM management_grids WHERE code = ANY(:codes)" + (" FOR UPDATE" if lock else "")
    return {r.code: list(r.staff or []) for r in conn.execute(text(sql), {"codes": sorted(codes)})}


def management_grid_codes(conn: Connection) -> set[str]:
    return set(conn.execute(text("SELECT code FROM management_grids")).scalars())


def load_management_grids(conn: Connection, tier: int) -> gpd.GeoDataFrame:
    sql = text(
        """
        SELECT m.code, m.tier, m.name, m.parent_code, m.admin_code, m.leader_name, m.leader_phone,
               jsonb_array_length(m.staff) AS staff_count,
               -- True area on the ellipsoid (geography), as unit grids carry it: analysts compare grids by it.
               round(ST_Area(m.geom::geography)::numeric, 2)::float8 AS area_m2,
               (SELECT count(*) FROM unit_grids g
                 WHERE g.tier3_code = m.code OR g.community_code = m.code OR g.street_code = m.code) AS unit_grids,
               {provisional} AS code_provisional, m.geom
        FROM management_grids m WHERE m.tier = :tier ORDER BY m.code
        """.format(provisional=PROVISIONAL.format(code="m.code"))
    )
    return gpd.read_postgis(sql, conn, geom_col="geom", params={"tier": tier}).rename_geometry("geometry")


# -- queries for the API --------------------------------------------------------------------------

#: A polygon as API GeoJSON: RFC 7946 §3.1.6 rings (exterior counter-clockwise, holes clockwise, whatever the stored
#: orientation), 7 decimals (≈1 cm). Snapped to that grid first, which drops the vertices the rounding would repeat
#: (and a ring it would collapse to a line): the coordinates are those ST_AsGeoJSON's rounding gives.
GEOJSON_DECIMALS = 7
_GEOJSON_GEOMETRY = (
    f"ST_AsGeoJSON(ST_ForcePolygonCCW(ST_SnapToGrid({{geom}}, 1e-{GEOJSON_DECIMALS})), {GEOJSON_DECIMALS}, 0)::json"
)

#: Grid feature properties, one type each: ``kind`` "unit" (万米单元网格) or "management" (三级网格), ``tier`` the
#: management tier 1–3 as an integer, null for a unit grid (it was the text "unit" there, an integer elsewhere).
_UNIT_FEATURE = """
json_build_object(
  'type', 'Feature', 'id', g.code,
  'geometry', {geometry},
  'properties', json_build_object(
     'code', g.code, 'kind', 'unit', 'tier', NULL::int, 'district_code', g.district_code, 'street_code', g.street_code,
     'community_code', g.community_code, 'seq', g.seq, 'area_m2', g.area_m2, 'tier3_code', g.tier3_code,
     'district_name', d.name, 'street_name', s.name, 'community_name', c.name,
     'code_provisional', {provisional}))
""".format(provisional=PROVISIONAL.format(code="g.code"), geometry=_GEOJSON_GEOMETRY.format(geom="g.geom"))
_UNIT_FROM = """
FROM unit_grids g
LEFT JOIN admin_units d ON d.code = g.district_code
LEFT JOIN admin_units s ON s.code = g.street_code
LEFT JOIN admin_units c ON c.code = g.community_code
"""
_MGMT_FEATURE = """
json_build_object(
  'type', 'Feature', 'id', m.code,
  'geometry', {geometry},
  'properties', json_build_object(
     'code', m.code, 'kind', 'management', 'tier', m.tier, 'name', m.name, 'parent_code', m.parent_code,
     'admin_code', m.admin_code, 'leader_name', m.leader_name, 'leader_phone', m.leader_phone,
     'staff', m.staff, 'code_provisional', {provisional}))
""".format(provisional=PROVISIONAL.format(code="m.code"), geometry=_GEOJSON_GEOMETRY.format(geom="m.geom"))


def _bbox_clause(alias: str, bbox: tuple[float, float, float, float] | None) -> tuple[str, dict[str, float]]:
    if bbox is None:
        return "TRUE", {}
    minx, miny, maxx, maxy = bbox
    box = f"ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, {STORAGE_SRID})"
    # Intersecting the box, as OGC API Features means bbox — not merely a bounding rectangle overlapping it.
    clause = f"{alias}.geom && {box} AND ST_Intersects({alias}.geom, {box})"
    return clause, {"minx": minx, "miny": miny, "maxx": maxx, "maxy": maxy}


def grid_features(
    conn: Connection,
    *,
    tier: str,
    bbox: tuple[float, float, float, float] | None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """A page of unit grids (tier='unit') or management grids (tier '1'/'2'/'3') as GeoJSON features."""
    if tier == "unit":
        where, params = _bbox_clause("g", bbox)
        count_sql = f"SELECT count(*) FROM unit_grids g WHERE {where}"
        page_sql = f"SELECT {_UNIT_FEATURE} {_UNIT_FROM} WHERE {where} ORDER BY g.code LIMIT :limit OFFSET :offset"
    else:
        where, params = _bbox_clause("m", bbox)
        where += " AND m.tier = :tier"
        params["tier"] = int(tier)
        count_sql = f"SELECT count(*) FROM management_grids m WHERE {where}"
        page_sql = (
            f"SELECT {_MGMT_FEATURE} FROM management_grids m WHERE {where} ORDER BY m.code LIMIT :limit OFFSET :offset"
        )
    matched = int(conn.execute(text(count_sql), params).scalar_one())
    rows = conn.execute(text(page_sql), {**params, "limit": limit, "offset": offset}).scalars().all()
    return list(rows), matched


def grid_feature(conn: Connection, code: str) -> dict[str, Any]:
    """One unit grid (15 digits) or management grid (9, 12 or 14 digits) by code."""
    if len(code) == 15:
        row = conn.execute(text(f"SELECT {_UNIT_FEATURE} {_UNIT_FROM} WHERE g.code = :c"), {"c": code}).scalar()
    else:
        row = conn.execute(
            text(f"SELECT {_MGMT_FEATURE} FROM management_grids m WHERE m.code = :c"), {"c": code}
        ).scalar()
    if row is None:
        raise NotFound(f"no grid with code {code}", message_zh=f"未找到编码为 {code} 的网格")
    return dict(row)


def locate(conn: Connection, lon: float, lat: float) -> dict[str, Any]:
    """The unit grid containing a storage-datum point, with its tier 1/2/3 grids; NotFound outside."""
    row = (
        conn.execute(
            text(
                f"""
                SELECT g.code, g.district_code, g.street_code, g.community_code, g.tier3_code,
                       d.name AS district_name, t1.name AS tier1_name, t2.name AS tier2_name,
                       t3.name AS tier3_name, t1.code AS tier1_code, t2.code AS tier2_code,
                       t3.leader_name AS tier3_leader_name, t3.leader_phone AS tier3_leader_phone,
                       coalesce(t3.staff, '[]'::jsonb) AS tier3_staff,
                       {PROVISIONAL.format(code="g.code")} AS code_provisional
                FROM unit_grids g
                LEFT JOIN admin_units d ON d.code = g.district_code
                LEFT JOIN management_grids t1 ON t1.code = g.street_code AND t1.tier = 1
                LEFT JOIN management_grids t2 ON t2.code = g.community_code AND t2.tier = 2
                LEFT JOIN management_grids t3 ON t3.code = g.tier3_code AND t3.tier = 3
                WHERE {unit_grid_at(f"ST_SetSRID(ST_MakePoint(:lon, :lat), {STORAGE_SRID})")}
                """
            ),
            {"lon": lon, "lat": lat},
        )
        .mappings()
        .first()
    )
    if row is None and not grids_loaded(conn):
        raise no_boundaries_loaded(NotFound)
    if row is None:
        raise NotFound(
            f"the point ({lon:.6f}, {lat:.6f}) is outside the gridded coverage: no unit grid contains it "
            "(check the datum parameter and the lon/lat order)",
            detail=[{"field": f, "reason": "outside coverage"} for f in ("lon", "lat")],  # as a report's refusal
            reason=Reason.OUTSIDE_COVERAGE,
        )
    return {
        "unit_grid": row["code"],
        # The codes embed a street/community part gisgrid numbered (--assign-codes): not official codes.
        "code_provisional": row["code_provisional"],
        "district": {"code": row["district_code"], "name": row["district_name"]},
        "tier1": {"code": row["tier1_code"], "name": row["tier1_name"]} if row["tier1_code"] else None,
        "tier2": {"code": row["tier2_code"], "name": row["tier2_name"]} if row["tier2_code"] else None,
        "tier3": {
            "code": row["tier3_code"],
            "name": row["tier3_name"],
            "leader_name": row["tier3_leader_name"],  # 网格长: the tier-3 grid is the one a person answers for
            "leader_phone": row["tier3_leader_phone"],
            # 网格长/网格员 names (no phones): the field page offers them for the reporter's name (review U5)
            "staff": [{"name": m["name"], "role": m["role"]} for m in row["tier3_staff"]],
        }
        if row["tier3_code"]
        else None,
    }
