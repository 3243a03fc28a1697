"""Components (部件) in PostGIS: bulk import that loses nothing, CRUD with history, spatial queries.

The rules (identifiers, row checks) are in ``gisgrid.components``; this module does the database side:
duplicates against stored components, never-reused serials, unit-grid assignment, upsert and history, each
import in one transaction so a refused or failed file leaves the database as it was.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Geod
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import IntegrityError

from gisgrid import export_fields, geodesy
from gisgrid.catalogue import CODE_DIGITS, Catalogue, load_catalogue
from gisgrid.components import (
    ERROR_COLUMNS,
    POSITION_TOLERANCE_DEG,
    RETIRED,
    SERIAL_DIGITS,
    STANDARD_NAMES,
    STATUSES,
    ValidationResult,
    custom_columns_note,
    file_fields,
    identifier_length,
    read_component_file,
    same_positions,
    validate_components,
)
from gisgrid.constants import LOCAL_TZ, STORAGE_SRID
from gisgrid.errors import Conflict, InvalidInput, NotFound, Reason
from gisgrid.geodesy import check_datum, is_datum, to_storage
from gisgrid.grids import store as grid_store
from gisgrid.photos import PhotoStore, check_pixel_budget, inspect_photo, one_request, refused_photo
from gisgrid.runfiles import RunFiles
from gisgrid.settings import Settings
from gisgrid.storage.bulk import CopyPart, copy_batches, copy_frame, point_ewkb_hex
from gisgrid.texts import bilingual, refuse_bad_text
from gisgrid.vectorio import WITHIN_LENGTHS, check_within, write_layer
from gisgrid.workflow import StaleVersion, refusal_item

log = logging.getLogger(__name__)

SERIAL_MAX = 999_999
#: Two components of the same class closer than this are the same thing surveyed twice.
SAME_PLACE_M = 0.5
CHUNK = 50_000  # rows per COPY batch: small enough that filling and draining the pipeline is short
#: Loads of at least this many new rows (and at least the registry's size) rebuild the indexes once.
BULK_REBUILD_MIN = 50_000

Progress = Callable[[str, int, int], None]


def _no_progress(_stage: str, _done: int, _total: int) -> None:
    return None


# -- coverage and departments ---------------------------------------------------------------------


@dataclass(frozen=True)
class Coverage:
    district_code: str
    geometry: shapely.Geometry  # lon/lat, EPSG:4490

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        minx, miny, maxx, maxy = shapely.bounds(self.geometry).tolist()
        return minx, miny, maxx, maxy


def load_coverage(conn: Connection, district: str | None = None) -> Coverage:
    rows = conn.execute(
        text(
            "SELECT code, ST_AsBinary(geom) FROM admin_units WHERE level = 'district' "
            "AND (CAST(:d AS text) IS NULL OR code = :d) ORDER BY code"
        ),
        {"d": district},
    ).all()
    if not rows:
        which = f"district {district} is" if district else "no district is"
        raise InvalidInput(f"{which} not loaded: run gisgrid boundaries import FILE first", reason=Reason.NO_BOUNDARIES)
    if len(rows) > 1:
        codes = ", ".join(r[0] for r in rows)
        raise InvalidInput(
            f"several districts are loaded ({codes}): say which with --district CODE", reason=Reason.SEVERAL_DISTRICTS
        )
    geom = shapely.from_wkb(bytes(rows[0][1]))
    shapely.prepare(geom)
    return Coverage(rows[0][0], geom)


def sync_departments(conn: Connection, catalogue: Catalogue) -> None:
    """The catalogue is the source of department codes; keep the table (FK target) in step with it: its
    departments are added or renamed, and one it no longer lists is removed when no case or component names it
    (a code replaced by ``gisgrid departments recode``, a department dropped before it had records). One that
    records still name stays, with its last name: their FK target, and the only name known for them."""
    rows = [
        {"c": code, "n": name, "k": catalogue.department_kinds.get(code)}
        for code, name in sorted(catalogue.departments.items())
    ]
    conn.execute(
        text(
            "INSERT INTO departments (code, name, kind) VALUES (:c, :n, :k) "
            "ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind"
        ),
        rows,
    )
    try:
        with conn.begin_nested():  # a record written meanwhile by a process on an older catalogue keeps its row
            conn.execute(
                text(
                    """
                    DELETE FROM departments d
                    WHERE NOT (d.code = ANY(:codes))
                      AND NOT EXISTS (SELECT 1 FROM cases WHERE department_code = d.code)
                      AND NOT EXISTS (SELECT 1 FROM components
                                      WHERE d.code IN (main_dept_code, owner_dept_code, maint_dept_code))
                    """
                ),
                {"codes": sorted(catalogue.departments)},
            )
    except IntegrityError:
        log.info("departments no longer in the catalogue kept: a record named one meanwhile")


# -- import -------------------------------------------------------------------------------------


@dataclass
class ImportOptions:
    scheme: str = "gbt47678"
    layer: str | None = None
    lon_field: str | None = None
    lat_field: str | None = None
    x_field: str | None = None
    y_field: str | None = None
    src_crs: str | None = None
    src_datum: str | None = None
    src_encoding: str | None = None  # text encoding of a CSV/Shapefile (default: guessed, see read_component_file)
    class_field: str | None = None
    district: str | None = None
    errors_path: Path | None = None
    dry_run: bool = False
    all_or_nothing: bool = False
    actor: str = "import"


WARNINGS_SHOWN = 20  # the summary lists this many warnings and counts the rest


@dataclass
class ImportSummary:
    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    refused: int = 0
    refused_rows: list[int] = field(default_factory=list)
    errors: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["row", "field", "value", "reason"]))
    errors_path: Path | None = None
    written: bool = False
    generated_ids: int = 0
    dry_run: bool = False  # inserted/updated/unchanged/generated_ids are what the import would do
    #: What refuses nothing but the user should see (row, field, value, reason), e.g. a department name that
    #: is not the one registered for the row's code.
    warnings: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["row", "field", "value", "reason"]))
    warnings_path: Path | None = None  # all of them, beside the refusals' file (--errors)
    notes: list[str] = field(default_factory=list)  # about the file as a whole, e.g. the encoding it was read in
    cleared: list[str] = field(default_factory=list)  # the previous run's refusals/warnings files removed

    def to_text(self) -> str:
        insert, update = ("would insert", "would update") if self.dry_run else ("inserted", "updated")
        lines = [
            f"read {self.read}, {insert} {self.inserted}, {update} {self.updated}, unchanged {self.unchanged}, "
            f"refused {self.refused}"
        ]
        lines += [f"note: {n}" for n in self.notes]
        if self.generated_ids:
            lines.append(f"{'would generate' if self.dry_run else 'generated'} {self.generated_ids} identifiers")
        shown = self.warnings.head(WARNINGS_SHOWN)
        lines += [f"warning: row {w['row']} field {w['field']}: {w['reason']}" for _, w in shown.iterrows()]
        if len(self.warnings) > len(shown):
            where = f"all in {self.warnings_path}" if self.warnings_path else "all with --errors FILE"
            lines.append(f"… and {len(self.warnings) - len(shown)} more warning(s) ({where})")
        elif self.warnings_path:
            lines.append(f"warnings written to {self.warnings_path}")
        if len(self.errors):
            first = self.errors.iloc[0]
            lines.append(f"first refusal: row {first['row']} field {first['field']}: {first['reason']}")
        if self.errors_path:
            lines.append(f"refusals written to {self.errors_path}")
        lines += self.cleared
        if not self.written:
            lines.append("dry run: nothing written" if self.dry_run else "nothing written")
        return "\n".join(lines)


STAGE_COLUMNS = (
    "row",
    "id",
    "class_code",
    "name",
    "main_dept",
    "owner_dept",
    "maint_dept",
    "status",
    "initial_date",
    "change_date",
    "data_source",
    "note",
    "attrs",
    "lon",
    "lat",
    "wkb",
    "unit_grid_code",
    "street_code",
    "community_code",
)
STAGE_DDL = """
CREATE TEMP TABLE _stage (row int PRIMARY KEY, id text NOT NULL, class_code text, name text, main_dept text,
    owner_dept text, maint_dept text, status text, initial_date date, change_date date, data_source text,
    note text, attrs jsonb, lon float8, lat float8, wkb text, unit_grid_code text, street_code text,
    community_code text) ON COMMIT DROP
"""
# Points travel as lon/lat numbers (cheap to build in SQL); only lines and polygons travel as EWKB.
STAGE_GEOM = (
    f"CASE WHEN s.wkb IS NULL THEN ST_SetSRID(ST_MakePoint(s.lon, s.lat), {STORAGE_SRID}) "
    "ELSE ST_GeomFromEWKB(decode(s.wkb, 'hex')) END"
)
_GEOD = Geod(ellps="GRS80")  # CGCS2000's ellipsoid differs from GRS80 by 0.1 mm in the semi-minor axis


def anchor_points(accepted: pd.DataFrame) -> np.ndarray:
    """The point that locates each row: the point itself, or a point on the surface of a line/polygon."""
    points = shapely.points(accepted["lon"].to_numpy(dtype=float), accepted["lat"].to_numpy(dtype=float))
    wkb = accepted["geom_wkb"].to_numpy(dtype=object)
    has_wkb = pd.notna(wkb) if len(wkb) else np.zeros(0, dtype=bool)
    if has_wkb.any():
        points[has_wkb] = shapely.point_on_surface(shapely.from_wkb(wkb[has_wkb]))
    return points


def anchor_xy(accepted: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """:func:`anchor_points` as lon/lat arrays, without making a point of every point row (a million rows' check
    needs none)."""
    lon, lat = accepted["lon"].to_numpy(dtype=float, copy=True), accepted["lat"].to_numpy(dtype=float, copy=True)
    wkb = accepted["geom_wkb"].to_numpy(dtype=object)
    has_wkb = pd.notna(wkb) if len(wkb) else np.zeros(0, dtype=bool)
    if has_wkb.any():
        inside = shapely.point_on_surface(shapely.from_wkb(wkb[has_wkb]))
        lon[has_wkb], lat[has_wkb] = shapely.get_x(inside), shapely.get_y(inside)
    return lon, lat


def keep_stored_positions(conn: Connection, rows: pd.DataFrame) -> pd.DataFrame:
    """Rows of stored components with the stored geometry where the file's is the same position
    (:func:`gisgrid.components.same_positions`): an export rounds (GeoJSON) or reprojects, and neither the
    geometry nor the unit grid, street and community located from it may change by that noise — a point on a
    grid edge rounded into the next cell stays in its cell. A real move keeps the file's geometry."""
    if not len(rows):
        return rows
    stored, same = _stored_positions(conn, rows)
    if not same.any():
        return rows
    lon, lat = rows["lon"].to_numpy(dtype=float, copy=True), rows["lat"].to_numpy(dtype=float, copy=True)
    wkb = rows["geom_wkb"].to_numpy(dtype=object, copy=True)
    rows = rows.copy()
    stored_point = same & (shapely.get_type_id(stored) == 0)
    other = same & ~stored_point
    lon[stored_point], lat[stored_point] = shapely.get_x(stored[stored_point]), shapely.get_y(stored[stored_point])
    wkb[stored_point] = None
    wkb[other] = shapely.to_wkb(stored[other])
    rows["lon"], rows["lat"], rows["geom_wkb"] = lon, lat, wkb
    return rows


def _stored_positions(conn: Connection, rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The stored geometry of each row's component (None: no identifier, or none stored under it), and whether the
    row gives that same position (:func:`gisgrid.components.same_positions`)."""
    ids = [i for i in rows["id"].tolist() if isinstance(i, str)]
    stored_wkb: dict[str, bytes | memoryview] = (
        dict(
            conn.execute(text("SELECT id, ST_AsBinary(geom) FROM components WHERE id = ANY(:ids)"), {"ids": ids}).all()
        )
        if ids
        else {}
    )
    stored = shapely.from_wkb([bytes(stored_wkb[i]) if i in stored_wkb else None for i in rows["id"]])
    given = shapely.points(rows["lon"].to_numpy(dtype=float), rows["lat"].to_numpy(dtype=float))
    wkb = rows["geom_wkb"].to_numpy(dtype=object)
    has_wkb = pd.notna(wkb) if len(wkb) else np.zeros(0, dtype=bool)
    if has_wkb.any():
        given[has_wkb] = shapely.from_wkb(wkb[has_wkb])
    return stored, same_positions(stored, given)


#: The refusal of a component whose place no unit grid covers, while its district has unit grids.
NO_UNIT_GRID_REASON = bilingual(
    "不在任何单元网格内(街道/社区边界之间的缺口,或边界修改后未重新划分网格:gisgrid grids generate)",
    "covered by no unit grid (a gap between the street/community boundaries, or grids not re-cut since a boundary "
    "changed: gisgrid grids generate)",
)


def district_has_grids(conn: Connection, district: str) -> bool:
    """Whether any unit grid of ``district`` is stored (a probe of one row)."""
    return bool(
        conn.execute(
            text("SELECT EXISTS (SELECT 1 FROM unit_grids WHERE district_code = :d)"), {"d": district}
        ).scalar_one()
    )


def ungridded_rows(conn: Connection, district: str, accepted: pd.DataFrame) -> pd.DataFrame:
    """Refusals (row, field, value, reason, code) of the rows whose place (:func:`anchor_points`) no unit grid
    covers, while ``district`` has unit grids: stored there, a component would have no unit grid, street or
    community, no case could be reported at it, and no grid or street would list it (review50 F3: a hole a
    ``boundaries replace`` opened inside the district). With no unit grid in the district nothing is refused: the
    components are stored unlocated, and ``gisgrid grids generate`` locates them. A stored component kept at its
    stored position (an update of its other fields, a re-import of an export) is not refused either: the row
    stores no new place. Run where :func:`write_components` runs, after its components lock (the grids read are
    the ones it locates by)."""
    if not len(accepted) or not district_has_grids(conn, district):
        return pd.DataFrame(columns=[*_NO_PROBLEMS, "code"])
    located = UnitGrids.around(conn, anchor_bounds(accepted)).locate(anchor_points(accepted))
    none = pd.isna(located["unit_grid_code"]).to_numpy(dtype=bool, copy=True)
    if none.any() and accepted["id"].notna().any():
        _, same = _stored_positions(conn, accepted)
        none &= ~same
    idx = np.flatnonzero(none)
    if not len(idx):
        return pd.DataFrame(columns=[*_NO_PROBLEMS, "code"])
    rows = accepted.iloc[idx]
    lon, lat = anchor_xy(rows)
    has_wkb = pd.notna(rows["geom_wkb"]).to_numpy(dtype=bool)
    return pd.DataFrame(
        {
            "row": rows["_row"].to_numpy(dtype=np.int64),
            "field": np.where(has_wkb, "geometry", "coordinates"),
            "value": [f"{x:.7f},{y:.7f}" for x, y in zip(lon, lat, strict=True)],
            "reason": NO_UNIT_GRID_REASON,
            "code": str(Reason.OUTSIDE_COVERAGE),
        }
    )


def anchor_bounds(accepted: pd.DataFrame) -> tuple[float, float, float, float] | None:
    """A box holding every row's anchor point, without making the points: lon/lat, and the bounds of the
    lines and polygons (their point on the surface lies inside them). None for no rows."""
    if not len(accepted):
        return None
    lon, lat = accepted["lon"].to_numpy(dtype=float), accepted["lat"].to_numpy(dtype=float)
    x0, y0, x1, y1 = np.nanmin(lon), np.nanmin(lat), np.nanmax(lon), np.nanmax(lat)
    wkb = accepted["geom_wkb"].to_numpy(dtype=object)
    has_wkb = pd.notna(wkb)
    if has_wkb.any():
        gx0, gy0, gx1, gy1 = shapely.total_bounds(shapely.from_wkb(wkb[has_wkb]))
        x0, y0, x1, y1 = np.nanmin([x0, gx0]), np.nanmin([y0, gy0]), np.nanmax([x1, gx1]), np.nanmax([y1, gy1])
    return float(x0), float(y0), float(x1), float(y1)


def warnings_path(errors_path: Path) -> Path:
    """Where an import writes its warnings: beside the refusals' file, ``refused.csv`` → ``refused.warnings.csv``."""
    return errors_path.with_name(f"{errors_path.stem}.warnings{errors_path.suffix or '.csv'}")


@dataclass(frozen=True)
class UnitGrids:
    """The unit grids around some points, in an STRtree: locating points needs no database round trip, so the
    import can locate chunk after chunk in its preparation thread."""

    tree: shapely.STRtree | None
    meta: np.ndarray  # (code, street_code, community_code) per grid, in code order

    @classmethod
    def around(cls, conn: Connection, bounds: tuple[float, float, float, float] | None) -> UnitGrids:
        """The grids meeting the box ``bounds`` (x0, y0, x1, y1; None: no grids)."""
        if bounds is None:
            return cls(None, np.empty((0, 3), dtype=object))
        x0, y0, x1, y1 = bounds
        tol = POSITION_TOLERANCE_DEG  # the cells a point on the boundary within the tolerance goes to (locate)
        x0, y0, x1, y1 = x0 - tol, y0 - tol, x1 + tol, y1 + tol
        rows = conn.execute(
            text(
                "SELECT code, street_code, community_code, ST_AsBinary(geom) FROM unit_grids "
                f"WHERE geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, {STORAGE_SRID}) ORDER BY code"
            ),
            {"x0": x0, "y0": y0, "x1": x1, "y1": y1},
        ).all()
        meta = np.array([r[:3] for r in rows], dtype=object).reshape(len(rows), 3)
        tree = shapely.STRtree(shapely.from_wkb([bytes(r[3]) for r in rows])) if rows else None
        return cls(tree, meta)

    def locate(self, points: np.ndarray) -> pd.DataFrame:
        """Unit grid, street and community of each point (None outside every grid).

        A point on the shared edge of two cells goes to the smaller code, as ``ORDER BY code LIMIT 1`` would; a point
        outside every cell by no more than :data:`POSITION_TOLERANCE_DEG` (the district check accepts it as on the
        boundary) goes to the nearest cell within it the same way."""
        out = np.full((len(points), 3), None, dtype=object)
        if self.tree is not None and len(points):
            self._first_by_code(out, points, np.arange(len(points)), predicate="intersects")
            outside = np.flatnonzero(pd.isna(out[:, 0]))
            if len(outside):
                self._first_by_code(out, points[outside], outside, predicate="dwithin", distance=POSITION_TOLERANCE_DEG)
        return pd.DataFrame(out, columns=["unit_grid_code", "street_code", "community_code"], dtype=object)

    def _first_by_code(self, out: np.ndarray, points: np.ndarray, rows: np.ndarray, **query: Any) -> None:
        assert self.tree is not None
        point_idx, grid_idx = self.tree.query(points, **query)
        order = np.lexsort((grid_idx, point_idx))  # grids are in code order: the smallest index, smallest code
        point_idx, grid_idx = point_idx[order], grid_idx[order]
        first = np.r_[True, point_idx[1:] != point_idx[:-1]] if len(point_idx) else np.zeros(0, dtype=bool)
        out[rows[point_idx[first]]] = self.meta[grid_idx[first]]


def lock_new_places(conn: Connection, scheme: str, classes: Iterable[str]) -> None:
    """Take, until the transaction ends, the lock on adding components of these classes (a transaction advisory
    lock per scheme + class), before :func:`same_place_duplicates`: that check reads only committed rows, so two
    writers checking at once would both find the place free and both insert (review43 D1: two imports of one file
    stored every component twice). Held, the second checks after the first commits and refuses its rows. Classes
    in sorted order, so two writers of several classes queue instead of deadlocking; a writer takes it after its
    ``sync_departments`` (the department rows), as every writer of components does."""
    for class_code in sorted(set(classes)):
        conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
            {"k": f"gisgrid.components.new_place:{scheme}:{class_code}"},
        )


#: Degrees that cover ``SAME_PLACE_M`` in both axes anywhere in China: the prefilter of the same-place checks, whose
#: exact test is in metres.
SAME_PLACE_DEG = 1e-5
_NO_PROBLEMS = ["row", "field", "value", "reason"]


def same_place_duplicates(conn: Connection, scheme: str, accepted: pd.DataFrame) -> pd.DataFrame:
    """New rows (no identifier, or one no component has) of a class already stored at the same place are
    duplicates, not new things: a made-up or mistyped identifier does not make a second component of one thing.
    So is a new row at the place of an earlier new row of its class in the same file (:func:`repeated_places`):
    one file's two copies of a thing are refused as two files' would be (review47 F3)."""
    ids = accepted["id"]
    new = (ids.isna() | ~ids.isin(existing_ids(conn, ids.dropna().tolist()))).to_numpy()
    if not new.any():
        return pd.DataFrame(columns=_NO_PROBLEMS)
    x, y = np.full(len(accepted), np.nan), np.full(len(accepted), np.nan)
    x[new], y[new] = anchor_xy(accepted[new])
    stored = _stored_places(conn, scheme, accepted, new, x, y)
    rest = new & ~accepted["_row"].isin(stored["row"]).to_numpy()  # a stored one's copy makes no later one a copy
    repeated = repeated_places(accepted, rest, x, y)
    return pd.concat([stored, repeated], ignore_index=True) if len(repeated) else stored


def _stored_places(
    conn: Connection, scheme: str, accepted: pd.DataFrame, new: np.ndarray, x: np.ndarray, y: np.ndarray
) -> pd.DataFrame:
    """The new rows of a class stored within ``SAME_PLACE_M`` of them (``x``/``y``: their anchors), each refused
    naming that component."""
    empty = pd.DataFrame(columns=_NO_PROBLEMS)
    new_idx = np.flatnonzero(new)
    stored = conn.execute(
        text(
            f"""
            SELECT id, class_code, ST_X(p), ST_Y(p) FROM (
                SELECT id, class_code, ST_PointOnSurface(geom) AS p FROM components
                WHERE scheme = :scheme AND status <> '移除' AND class_code = ANY(:classes)
                  AND geom && ST_Expand(ST_MakeEnvelope(:x0, :y0, :x1, :y1, {STORAGE_SRID}), :pad)) c
            """
        ),
        {
            "scheme": scheme,
            "classes": sorted(set(accepted.loc[new, "class_code"])),
            "x0": float(x[new_idx].min()),
            "y0": float(y[new_idx].min()),
            "x1": float(x[new_idx].max()),
            "y1": float(y[new_idx].max()),
            "pad": SAME_PLACE_DEG,
        },
    ).all()
    if not stored:
        return empty
    stored_ids = np.array([r[0] for r in stored], dtype=object)
    classes = np.array([r[1] for r in stored], dtype=object)
    xy = np.array([(r[2], r[3]) for r in stored], dtype=float)
    points = shapely.points(x[new_idx], y[new_idx])  # made only when something is stored nearby
    q, t = shapely.STRtree(shapely.points(xy)).query(points, predicate="dwithin", distance=SAME_PLACE_DEG)
    same_class = classes[t] == accepted["class_code"].to_numpy(dtype=object)[new_idx[q]]
    q, t = q[same_class], t[same_class]
    if not len(q):
        return empty
    _, _, metres = _GEOD.inv(x[new_idx[q]], y[new_idx[q]], xy[t, 0], xy[t, 1])
    close = metres <= SAME_PLACE_M
    hits = pd.DataFrame({"pos": new_idx[q[close]], "id": stored_ids[t[close]]}).drop_duplicates("pos")
    return pd.DataFrame(
        {
            "row": accepted["_row"].to_numpy()[hits["pos"].to_numpy()],
            "field": "coordinates",
            "value": hits["id"].to_numpy(),
            "reason": [
                bilingual(
                    f"与已存部件 {cid} 重复(同一小类,相距 {SAME_PLACE_M} 米以内);如需更新请填写其标识码",
                    f"duplicate of stored component {cid} (same class within {SAME_PLACE_M} m); "
                    "give its identifier to update it",
                )
                for cid in hits["id"]
            ],
        }
    )


def _near_another(classes: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Which points have another of their class in their ``SAME_PLACE_DEG`` cell or a neighbouring one: every
    point within ``SAME_PLACE_DEG`` of another of its class is among them (a hash of the cells, no geometry).
    A prefilter, kept on measurement: an STRtree dwithin query of every new row alone finds the same pairs but took
    6.7 s against 1.9 s for this hash and the query of the few it keeps, on a million rows (session 26)."""
    cx, cy = np.floor(x / SAME_PLACE_DEG).astype(np.int64), np.floor(y / SAME_PLACE_DEG).astype(np.int64)
    cx, cy = cx - cx.min() + 1, cy - cy.min() + 1  # a neighbour's cell is never negative
    width, height = int(cx.max()) + 2, int(cy.max()) + 2
    key = (pd.factorize(classes)[0].astype(np.int64) * width + cx) * height + cy
    order = np.argsort(key, kind="stable")
    keys = key[order]  # sorted: each neighbour's key is looked up with sorted needles
    near = np.zeros(len(keys), dtype=bool)
    near[1:] = keys[1:] == keys[:-1]  # another in the same cell
    near[:-1] |= near[1:]
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            if dx or dy:
                wanted = keys + (dx * height + dy)
                at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
                near |= keys[at] == wanted
    found = np.empty_like(near)
    found[order] = near
    return found


def repeated_places(accepted: pd.DataFrame, new: np.ndarray, x: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    """The ``new`` rows at the place of an earlier new row of the file (same class within ``SAME_PLACE_M``;
    ``x``/``y``: their anchors), each refused naming that row (``与第 N 行重复``), as a repeated identifier is refused
    naming the row that first used it. In the file's order: a row repeats the first earlier row that close that is
    kept itself, so that three rows 0.4 m apart in a line keep the first and the third — what importing them one by
    one keeps."""
    empty = pd.DataFrame(columns=_NO_PROBLEMS)
    idx = np.flatnonzero(new)
    if len(idx) < 2:
        return empty
    idx = idx[_near_another(accepted["class_code"].to_numpy(dtype=object)[idx], x[idx], y[idx])]
    if len(idx) < 2:
        return empty
    rows = accepted["_row"].to_numpy()[idx]
    classes = accepted["class_code"].to_numpy(dtype=object)[idx]
    points = shapely.points(x[idx], y[idx])
    q, t = shapely.STRtree(points).query(points, predicate="dwithin", distance=SAME_PLACE_DEG)
    pair = (rows[t] < rows[q]) & (classes[t] == classes[q])  # t: an earlier row of q's class
    q, t = q[pair], t[pair]
    _, _, metres = _GEOD.inv(x[idx[q]], y[idx[q]], x[idx[t]], y[idx[t]])
    close = metres <= SAME_PLACE_M
    copy_of: dict[int, int] = {}  # a refused row's position → the row it repeats
    for later, earlier in sorted(
        zip(q[close].tolist(), t[close].tolist(), strict=True), key=lambda p: (rows[p[0]], rows[p[1]])
    ):
        if later not in copy_of and earlier not in copy_of:
            copy_of[later] = int(rows[earlier])
    if not copy_of:
        return empty
    first = list(copy_of.values())
    return pd.DataFrame(
        {
            "row": rows[list(copy_of)],
            "field": "coordinates",
            "value": [str(r) for r in first],
            "reason": [
                bilingual(
                    f"与第 {r} 行重复(同一小类,相距 {SAME_PLACE_M} 米以内):同一部件只填一行",
                    f"duplicate of row {r} (same class within {SAME_PLACE_M} m): one row per component",
                )
                for r in first
            ],
        }
    )


#: Free serials of one class, as ranges [a, b] in ascending order, just enough of them to hold ``:n``: the gaps
#: between the serials in use (stored components of any status, retired ones included, and the file's given
#: identifiers) are found from the sorted used serials in one pass over the primary key range of the class.
FREE_SERIALS_SQL = """
WITH used AS (
    SELECT substr(id, :off)::int AS s FROM components
    WHERE id BETWEEN :lo AND :hi AND length(id) = :len AND scheme = :scheme
    UNION SELECT unnest(CAST(:given AS int[]))
    UNION SELECT 0
    UNION SELECT :top + 1
),
gaps AS (SELECT s + 1 AS a, lead(s) OVER (ORDER BY s) - 1 AS b FROM used),
sized AS (
    SELECT a, b, sum(b - a + 1) OVER (ORDER BY a) AS through FROM gaps WHERE b >= a
)
SELECT a, b FROM sized WHERE through - (b - a + 1) < :n ORDER BY a
"""


def free_serials(conn: Connection, district: str, scheme: str, class_code: str, n: int, given: list[int]) -> np.ndarray:
    """The ``n`` lowest serials of a class that no component has and no row of the file gives.

    Components are never deleted (retiring keeps the row), so a serial not in the table was never issued: taking
    the lowest free ones never reuses an identifier, and one legacy serial 999999 no longer blocks the class
    (review11 D8; the counter used to continue above the highest serial ever seen)."""
    prefix = district + class_code
    length = identifier_length(scheme)
    ranges = conn.execute(
        text(FREE_SERIALS_SQL),
        {
            "off": len(prefix) + 1,
            "lo": prefix + "0" * SERIAL_DIGITS,
            "hi": prefix + "9" * SERIAL_DIGITS,
            "len": length,
            "scheme": scheme,
            "given": given,
            "top": SERIAL_MAX,
            "n": n,
        },
    ).all()
    serials = np.concatenate([np.arange(a, b + 1, dtype=np.int64) for a, b in ranges] or [np.empty(0, np.int64)])
    if len(serials) < n:
        raise InvalidInput(
            f"no free serial numbers left in class {class_code} of district {district}: {len(serials)} free, "
            f"{n} needed (all {SERIAL_MAX:,} are in use); use a local extension class",
            detail={"class_code": class_code, "free": len(serials), "needed": n},
            reason=Reason.SERIALS_EXHAUSTED,
        )
    return serials[:n]


def reserve_serials(
    conn: Connection, district: str, scheme: str, counts: dict[str, int], given: dict[str, list[int]] | None = None
) -> dict[str, np.ndarray]:
    """The serials for ``n`` new identifiers per class (:func:`free_serials`). Each class's row in
    ``component_serials`` is locked first (upsert), so concurrent imports of a class wait for each other and
    the second sees what the first wrote: their serials never overlap. ``last_serial`` keeps the highest
    serial generated."""
    given = given or {}
    out: dict[str, np.ndarray] = {}
    for class_code in sorted(counts):  # fixed order: two imports lock rows in the same order, no deadlock
        conn.execute(
            text(
                """
                INSERT INTO component_serials (district_code, scheme, class_code, last_serial)
                VALUES (:d, :s, :c, 0)
                ON CONFLICT (district_code, scheme, class_code)
                DO UPDATE SET last_serial = component_serials.last_serial
                """
            ),
            {"d": district, "s": scheme, "c": class_code},
        )
        serials = free_serials(conn, district, scheme, class_code, counts[class_code], given.get(class_code, []))
        conn.execute(
            text(
                "UPDATE component_serials SET last_serial = GREATEST(last_serial, :m) "
                "WHERE district_code = :d AND scheme = :s AND class_code = :c"
            ),
            {"d": district, "s": scheme, "c": class_code, "m": int(serials.max())},
        )
        out[class_code] = serials
    return out


class SerialBlocks:
    """Identifiers for rows without one, from the serials reserved for the whole file, handed out chunk by chunk:
    numbered in file order within each class, as if the file were numbered at once."""

    def __init__(self, district: str, serials: dict[str, np.ndarray]) -> None:
        self.district = district
        self.serials = serials
        self.next = dict.fromkeys(serials, 0)  # position in each class's serials

    def take(self, classes: np.ndarray) -> np.ndarray:
        """Identifiers for rows of these classes (in file order), continuing where the last chunk stopped."""
        codes, uniques = pd.factorize(classes)
        if not len(codes):
            return np.empty(0, dtype=object)
        rank = pd.Series(codes).groupby(codes).cumcount().to_numpy()
        serials = np.empty(len(codes), dtype=np.int64)
        for i, c in enumerate(uniques):
            mine = codes == i
            serials[mine] = self.serials[c][self.next[c] + rank[mine]]
            self.next[c] += int(mine.sum())
        d = self.district
        return np.array([f"{d}{c}{s:06d}" for c, s in zip(classes, serials.tolist(), strict=True)], dtype=object)


def reserve_identifiers(
    conn: Connection, district: str, scheme: str, ids: pd.Series, classes: pd.Series
) -> SerialBlocks:
    """Serials for the rows without an identifier (``ids`` None), per class the lowest free ones: not held by any
    stored component nor given by another row of the file."""
    k = CODE_DIGITS[scheme]
    given = ids.dropna()
    taken: dict[str, list[int]] = {}
    if len(given):
        serial = given.str[6 + k :].astype(int)
        taken = {str(c): s.tolist() for c, s in serial.groupby(given.str[6 : 6 + k].to_numpy())}
    wanted = classes[ids.isna().to_numpy()].value_counts()
    counts = {str(c): int(n) for c, n in wanted.items()}
    return SerialBlocks(district, reserve_serials(conn, district, scheme, counts, taken) if counts else {})


def assign_identifiers(conn: Connection, district: str, scheme: str, stage: pd.DataFrame) -> int:
    """Identifiers for a whole frame at once (see ``reserve_identifiers``); returns how many were generated."""
    blocks = reserve_identifiers(conn, district, scheme, stage["id"], stage["class_code"])
    missing = stage["id"].isna().to_numpy()
    if missing.any():
        stage.loc[missing, "id"] = blocks.take(stage["class_code"].to_numpy(dtype=object)[missing])
    return int(missing.sum())


def _is_empty(value: object) -> bool:
    return value is None or value == ""


def without_empty_attrs(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` (new components) with no empty custom attribute: an empty cell adds no attribute (review50 F9)."""
    attrs = rows["attrs"].to_numpy(dtype=object)
    if not any(a and any(_is_empty(v) for v in a.values()) for a in attrs):
        return rows
    kept = rows.copy()
    kept["attrs"] = [{k: v for k, v in (a or {}).items() if not _is_empty(v)} for a in attrs]
    return kept


def keep_stored_attrs(conn: Connection, rows: pd.DataFrame) -> pd.DataFrame:
    """The file's custom attributes as the update applies them, read against the stored ones so that an export
    imports back unchanged: an empty cell (or null) of a column the component has no such attribute of adds none
    (an export writes every custom column on every row), an empty one of an attribute it has removes that attribute
    (JSON null: :func:`_update_existing` drops the key — no attribute holds an empty value, review50 F9), and a
    number, true/false, list or object the export wrote as its text (:func:`_attr_text`) is the stored value, not
    that text."""
    ids = [cid for cid, given in zip(rows["id"], rows["attrs"], strict=True) if given]
    if not ids:
        return rows
    found = conn.execute(text("SELECT id, attrs FROM components WHERE id = ANY(:ids)"), {"ids": ids})
    stored: dict[str, dict[str, Any]] = {str(cid): attrs for cid, attrs in found}

    def read(cid: str, given: dict[str, Any]) -> dict[str, Any]:
        old = stored.get(cid) or {}
        out: dict[str, Any] = {}
        for key, value in (given or {}).items():
            if _is_empty(value):
                if key in old:
                    out[key] = None  # removed
                continue
            if (
                key in old
                and not isinstance(old[key], str)
                and isinstance(value, str)
                and _attr_text(old[key]) == value
            ):
                value = old[key]
            out[key] = value
        return out

    kept = rows.copy()
    kept["attrs"] = [read(cid, given) for cid, given in zip(rows["id"], rows["attrs"], strict=True)]
    return kept


def stage_frame(accepted: pd.DataFrame, grids: pd.DataFrame) -> pd.DataFrame:
    """The rows as the ``_stage`` table takes them."""
    wkb = accepted["geom_wkb"].to_numpy(dtype=object)
    has_wkb = pd.notna(wkb) if len(wkb) else np.zeros(0, dtype=bool)
    hexed = np.full(len(accepted), None, dtype=object)
    if has_wkb.any():
        geoms = shapely.set_srid(shapely.from_wkb(wkb[has_wkb]), STORAGE_SRID)
        hexed[has_wkb] = shapely.to_wkb(geoms, hex=True, include_srid=True)
    values = {c: accepted[c].to_numpy(dtype=object) for c in STAGE_COLUMNS if c in accepted.columns and c != "attrs"}
    values["row"] = accepted["_row"].to_numpy()
    values["attrs"] = [json.dumps(a, ensure_ascii=False) if a else "{}" for a in accepted["attrs"]]
    values["lon"] = np.where(has_wkb, np.nan, accepted["lon"].to_numpy(dtype=float))
    values["lat"] = np.where(has_wkb, np.nan, accepted["lat"].to_numpy(dtype=float))
    values["wkb"] = hexed
    for c in ("unit_grid_code", "street_code", "community_code"):
        values[c] = grids[c].to_numpy(dtype=object)
    return pd.DataFrame(values, columns=list(STAGE_COLUMNS))


_COMPARED = (
    "class_code",
    "name",
    "main_dept_code",
    "owner_dept_code",
    "maint_dept_code",
    "status",
    "initial_date",
    "change_date",
    "data_source",
    "note",
    "attrs",
    "unit_grid_code",
)


def _changes_sql(old: str, new: str) -> str:
    """SQL jsonb of changed fields {field: [old, new]} between two component rows (geometry as WKT)."""
    pairs = [f"'{c}', jsonb_build_array(to_jsonb({old}.{c}), to_jsonb({new}.{c}))" for c in _COMPARED]
    conds = [f"{old}.{c} IS DISTINCT FROM {new}.{c}" for c in _COMPARED]
    parts = [
        f"CASE WHEN {cond} THEN jsonb_build_object({pair}) ELSE '{{}}'::jsonb END"
        for cond, pair in zip(conds, pairs, strict=True)
    ]
    parts.append(
        f"CASE WHEN NOT ST_Equals({old}.geom, {new}.geom) THEN jsonb_build_object('geom', "
        f"jsonb_build_array(ST_AsText({old}.geom), ST_AsText({new}.geom))) ELSE '{{}}'::jsonb END"
    )
    return " || ".join(parts)


NEW_COLUMNS = (
    "id",
    "scheme",
    "district_code",
    "class_code",
    "name",
    "unit_grid_code",
    "street_code",
    "community_code",
    "main_dept_code",
    "owner_dept_code",
    "maint_dept_code",
    "status",
    "initial_date",
    "change_date",
    "data_source",
    "note",
    "attrs",
    "geom",
)


def existing_ids(conn: Connection, ids: list[str]) -> set[str]:
    if not ids:
        return set()
    return set(conn.execute(text("SELECT id FROM components WHERE id = ANY(:ids)"), {"ids": ids}).scalars())


def _table_frame(stage: pd.DataFrame, scheme: str, district: str) -> pd.DataFrame:
    """Staged new rows as the ``components`` table takes them (geometry as hex EWKB)."""
    geom = point_ewkb_hex(stage["lon"].to_numpy(dtype=float), stage["lat"].to_numpy(dtype=float), STORAGE_SRID)
    has_wkb = stage["wkb"].notna().to_numpy()
    geom[has_wkb] = stage["wkb"].to_numpy(dtype=object)[has_wkb]
    frame = stage.rename(
        columns={"main_dept": "main_dept_code", "owner_dept": "owner_dept_code", "maint_dept": "maint_dept_code"}
    ).assign(scheme=scheme, district_code=district, geom=geom)
    return frame[list(NEW_COLUMNS)]


def _insert_new(
    conn: Connection,
    rows: pd.DataFrame,
    grids: UnitGrids,
    blocks: SerialBlocks,
    *,
    scheme: str,
    district: str,
    actor: str,
    source: str,
    progress: Progress,
) -> None:
    """New components and their 'create' history rows go straight in with COPY (no staging), chunk by chunk:
    a thread assigns the grids and identifiers of the next chunk and encodes it while PostgreSQL loads this
    one, so the Python work and the database work of a big file run on two cores at once."""

    def batches() -> Iterator[list[CopyPart]]:
        for start in range(0, len(rows), CHUNK):
            chunk = rows.iloc[start : start + CHUNK]
            stage = stage_frame(chunk, grids.locate(anchor_points(chunk)))
            missing = stage["id"].isna().to_numpy()
            if missing.any():
                stage.loc[missing, "id"] = blocks.take(stage["class_code"].to_numpy(dtype=object)[missing])
            frame = _table_frame(stage, scheme, district)
            history = pd.DataFrame({"component_id": frame["id"], "actor": actor, "action": "create", "source": source})
            yield [
                CopyPart("components", frame),
                CopyPart("component_history", history, not_null=("actor", "action", "source")),
            ]

    done = 0

    def copied(table: str, n: int) -> None:
        nonlocal done
        if table == "components":
            done += n
            progress("write", done, len(rows))

    with _bulk_load(conn, len(rows)):
        copy_batches(conn, batches(), on_part=copied)


#: The statement trigger that keeps ``component_cells`` on INSERT (migrations 0004, 0008); off during a bulk load,
#: which recounts the cells at its end with ``component_cells_recount()`` (0008), made from the same rule.
CELLS_INSERT_TRIGGER = "component_cells_insert"


@contextmanager
def _bulk_load(conn: Connection, new_rows: int) -> Iterator[None]:
    """For a load at least as big as the registry, drop the indexes, primary key and foreign keys
    and make them again afterwards (as pg_restore does): one sorted build is several times cheaper than
    maintaining them row by row. The cells trigger is off meanwhile (per COPY statement it would upsert every
    grid the chunk touches) and the cells are recounted once at the end. The table is locked until the import
    commits, so no other writer misses the trigger; a failure rolls it all back."""
    stored = conn.execute(
        text("SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = 'components'::regclass")
    ).scalar_one()
    if new_rows < max(BULK_REBUILD_MIN, int(stored)):
        yield
        return
    indexes = conn.execute(
        text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "AND tablename = 'components' AND indexname <> 'components_pkey' ORDER BY indexname"
        )
    ).all()
    constraints = conn.execute(  # the primary key first: it is made again before the other indexes
        text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'components'::regclass AND contype IN ('p', 'f') ORDER BY contype = 'f', conname"
        )
    ).all()
    for name, _ in indexes:
        conn.execute(text(f'DROP INDEX "{name}"'))
    for name, _ in constraints:  # re-adding a foreign key checks every row in one join, not one query per row
        conn.execute(text(f'ALTER TABLE components DROP CONSTRAINT "{name}"'))
    conn.execute(text(f"ALTER TABLE components DISABLE TRIGGER {CELLS_INSERT_TRIGGER}"))
    yield
    conn.execute(text("SELECT component_cells_recount()"))
    conn.execute(text(f"ALTER TABLE components ENABLE TRIGGER {CELLS_INSERT_TRIGGER}"))
    # Index builds sort in memory; btree builds already use the parallel maintenance workers, and the GiST
    # build is the sorted one (PostgreSQL ≥ 14, PostGIS ≥ 3.1).
    conn.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
    primary = [c for c in constraints if c[1].startswith("PRIMARY KEY")]
    for name, definition in primary:
        conn.execute(text(f'ALTER TABLE components ADD CONSTRAINT "{name}" {definition}'))
    for _, definition in indexes:
        conn.execute(text(definition))
    for name, definition in constraints:
        if (name, definition) not in primary:
            conn.execute(text(f'ALTER TABLE components ADD CONSTRAINT "{name}" {definition}'))
    # Statistics now, with the load (they commit with it): until autovacuum gets round to it the planner would
    # take a common class for a rare one — a nearest-component probe then read 166,000 index entries, not 3.
    conn.execute(text("ANALYZE components"))


def _update_existing(conn: Connection, rows: pd.DataFrame, actor: str, source: str) -> int:
    """Existing identifiers: update only what changed, and record each change (old → new)."""
    conn.execute(text(STAGE_DDL))
    copy_frame(conn, "_stage", rows)
    conn.execute(
        text(
            """
            CREATE TEMP TABLE _old ON COMMIT DROP AS SELECT c.* FROM components c JOIN _stage s ON s.id = c.id;
            ALTER TABLE _old ADD PRIMARY KEY (id);
            """
        )
    )
    # The new attrs are the stored ones overwritten by the file's (a file without a custom column keeps it: an
    # export does not carry attrs), less those the file empties (null: keep_stored_attrs); the rows already hold
    # the stored geometry where theirs is the same position.
    conn.execute(
        text(
            f"""
            WITH g AS (SELECT s.*, {STAGE_GEOM} AS geom FROM _stage s),
            n AS (
                SELECT s.id, s.class_code, s.name, s.unit_grid_code, s.street_code, s.community_code,
                       s.main_dept AS main_dept_code, s.owner_dept AS owner_dept_code,
                       s.maint_dept AS maint_dept_code, s.status, s.initial_date, s.change_date, s.data_source,
                       s.note,
                       (coalesce(o.attrs, '{{}}'::jsonb) || coalesce(s.attrs, '{{}}'::jsonb)) - ARRAY(
                           SELECT e.key FROM jsonb_each(coalesce(s.attrs, '{{}}'::jsonb)) e
                           WHERE e.value = 'null'::jsonb) AS attrs,
                       s.geom
                FROM g s JOIN _old o ON o.id = s.id)
            UPDATE components c SET
                class_code = n.class_code, name = n.name, unit_grid_code = n.unit_grid_code,
                street_code = n.street_code, community_code = n.community_code,
                main_dept_code = n.main_dept_code, owner_dept_code = n.owner_dept_code,
                maint_dept_code = n.maint_dept_code, status = n.status, initial_date = n.initial_date,
                change_date = n.change_date, data_source = n.data_source, note = n.note, attrs = n.attrs,
                geom = n.geom, version = c.version + 1, updated_at = now()
            FROM n WHERE n.id = c.id AND ({_changes_sql("c", "n")}) <> '{{}}'::jsonb
            """
        )
    )
    updated = conn.execute(
        text(
            f"""
            INSERT INTO component_history (component_id, actor, action, changes, source)
            SELECT n.id, :actor, 'update', {_changes_sql("o", "n")}, :src || '#' || s.row
            FROM _old o JOIN components n ON n.id = o.id JOIN _stage s ON s.id = o.id
            WHERE n.version > o.version
            """
        ),
        {"actor": actor, "src": source},
    ).rowcount
    return int(updated or 0)


def write_components(
    conn: Connection,
    accepted: pd.DataFrame,
    *,
    scheme: str,
    district: str,
    actor: str,
    source: str,
    progress: Progress = _no_progress,
    dry_run: bool = False,
) -> tuple[int, int, int, int]:
    """Insert new and update existing components (accepted rows), with history; identifiers are generated for
    rows without one. Returns (inserted, updated, unchanged, generated). ``dry_run``: the counts without the
    inserts (serials are still reserved and the updates made, so the caller must roll back)."""
    ids = accepted["id"]
    existing = existing_ids(conn, ids.dropna().tolist())
    blocks = reserve_identifiers(conn, district, scheme, ids, accepted["class_code"])
    # The table before the grids: a grid regeneration committing meanwhile waits for this write and then moves
    # what it wrote, or this write waits for it and reads the new cells (grids.store.follow_new_grids).
    conn.execute(text("LOCK TABLE components IN ROW EXCLUSIVE MODE"))
    grids = UnitGrids.around(conn, anchor_bounds(accepted))
    is_existing = ids.isin(existing).to_numpy()
    new, old = np.flatnonzero(~is_existing), np.flatnonzero(is_existing)
    if len(new) and not dry_run:
        # Class by class, file order within each (so the numbering is unchanged): the generated identifiers then
        # arrive sorted, and the primary key and class index builds find their input already in order.
        class_order, _ = pd.factorize(accepted["class_code"].to_numpy(dtype=object)[new], sort=True)
        new = new[np.argsort(class_order, kind="stable")]
        _insert_new(
            conn,
            without_empty_attrs(accepted.iloc[new]),
            grids,
            blocks,
            scheme=scheme,
            district=district,
            actor=actor,
            source=source,
            progress=progress,
        )
    updated = 0
    if len(old):
        rows = keep_stored_attrs(conn, keep_stored_positions(conn, accepted.iloc[old]))
        updated = _update_existing(conn, stage_frame(rows, grids.locate(anchor_points(rows))), actor, source)
    return len(new), updated, len(old) - updated, int(ids.isna().sum())


def import_components(
    engine: Engine,
    path: Path,
    catalogue: Catalogue,
    opts: ImportOptions,
    *,
    progress: Progress = _no_progress,
    today: dt.date | None = None,
) -> ImportSummary:
    """``gisgrid components import``: read, check every row, write the accepted ones in one transaction."""
    progress("read", 0, 1)
    raw = read_component_file(
        path,
        layer=opts.layer,
        lon_field=opts.lon_field,
        lat_field=opts.lat_field,
        x_field=opts.x_field,
        y_field=opts.y_field,
        src_crs=opts.src_crs,
        src_datum=opts.src_datum,
        class_field=opts.class_field,
        encoding=opts.src_encoding,
    )
    progress("read", 1, 1)
    custom_note = custom_columns_note(raw.attrs["gisgrid"])
    summary = ImportSummary(read=len(raw), notes=[*raw.attrs["gisgrid"]["notes"], *filter(None, [custom_note])])
    with engine.connect() as conn:
        coverage = load_coverage(conn, opts.district)
        # Only the identifiers with serial 000000: refused when new, while a component stored so stays updatable.
        zero_serial = raw["id"][raw["id"].str.endswith("0" * SERIAL_DIGITS)] if len(raw) else raw["id"]
        stored_zero = existing_ids(conn, zero_serial.tolist())
    progress("check", 0, 1)
    result: ValidationResult = validate_components(
        raw,
        scheme=opts.scheme,
        catalogue=catalogue,
        district_code=coverage.district_code,
        coverage=coverage.geometry,
        coverage_bbox=coverage.bbox,
        existing_ids=stored_zero,
        today=today,
    )
    progress("check", 1, 1)
    accepted = result.accepted
    summary.warnings = result.warnings
    # The refusals and warnings files are staged while the transaction runs and put in place once its outcome is
    # known (gisgrid.runfiles): a failed or killed import leaves no file describing refusals it never made.
    with RunFiles() as files, engine.connect() as conn, conn.begin() as trans:
        sync_departments(conn, catalogue)  # the department rows first, then the class locks: as save_component
        lock_new_places(conn, opts.scheme, accepted["class_code"])
        duplicates = same_place_duplicates(conn, opts.scheme, accepted)
        if len(duplicates):
            accepted = accepted[~accepted["_row"].isin(duplicates["row"]).to_numpy()].reset_index(drop=True)
        conn.execute(text("LOCK TABLE components IN ROW EXCLUSIVE MODE"))  # write_components' lock, taken early
        ungridded = ungridded_rows(conn, coverage.district_code, accepted)
        if len(ungridded):
            accepted = accepted[~accepted["_row"].isin(ungridded["row"]).to_numpy()].reset_index(drop=True)
        found = (result.errors, duplicates, ungridded)
        errors = pd.concat([e for e in found if len(e)] or [result.errors], ignore_index=True)
        # Sorted by the canonical field (the order of a row's refusals stays whatever the file calls its columns),
        # then named by the file's columns: the user looks for GLBJBSM, CSRQ, wkt in the file, not id, initial_date.
        errors = errors.sort_values(["row", "field"], kind="stable").reset_index(drop=True)
        summary.errors = file_fields(errors, raw.attrs["gisgrid"])
        summary.refused_rows = sorted({int(r) for r in summary.errors["row"]})
        summary.refused = len(summary.refused_rows)
        # A refused row's warnings would only distract from its refusal.
        summary.warnings = summary.warnings[~summary.warnings["row"].isin(summary.refused_rows)].reset_index(drop=True)
        if opts.errors_path is not None:
            files.stage(opts.errors_path, summary.errors, ERROR_COLUMNS)
            files.stage(warnings_path(opts.errors_path), summary.warnings, ERROR_COLUMNS, "warnings")
        if opts.all_or_nothing and summary.refused:
            trans.rollback()
            return _published(summary, files, opts)
        # A dry run does what the import would (but the inserts) and rolls back, so that it can say how many rows
        # it would insert, update and leave unchanged, and whether the class serials suffice.
        summary.inserted, summary.updated, summary.unchanged, summary.generated_ids = write_components(
            conn,
            accepted,
            scheme=opts.scheme,
            district=coverage.district_code,
            actor=opts.actor,
            source=path.name,
            progress=progress,
            dry_run=opts.dry_run,
        )
        if opts.dry_run:
            summary.dry_run = True
            trans.rollback()
            return _published(summary, files, opts)
        trans.commit()
        summary.written = True
        return _published(summary, files, opts)


def _published(summary: ImportSummary, files: RunFiles, opts: ImportOptions) -> ImportSummary:
    """``summary`` once the import's outcome is known and its refusals/warnings files are put in place."""
    files.publish()
    if opts.errors_path is not None:
        summary.errors_path = opts.errors_path if opts.errors_path in files.written else None
        kept = warnings_path(opts.errors_path)
        summary.warnings_path = kept if kept in files.written else None
    summary.cleared = files.removed
    return summary


# -- single-record operations (API) ---------------------------------------------------------------


#: The zone the API's times are given in, as the cases' (``node_clock.LOCAL_TZ``): +08:00, not the session's UTC.


def _local_time(column: str) -> str:
    """SQL writing a timestamptz as ISO 8601 in ``LOCAL_TZ``. Asia/Shanghai keeps +08:00 all year (no DST since
    1991), so the offset is written as a constant; the session's TimeZone (UTC) is left alone for the rest."""
    return f"""to_char({column} AT TIME ZONE '{LOCAL_TZ.key}', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+08:00'"""


_UPDATED_AT = _local_time("c.updated_at")


def _feature_sql(extra: str = "") -> str:
    """SQL building one GeoJSON Feature of alias ``c``; ``extra`` adds ``'key', value`` properties."""
    return f"""
json_build_object(
  'type', 'Feature', 'id', c.id,
  'geometry', ST_AsGeoJSON(c.geom, 7, 0)::json,
  'properties', json_build_object(
     'id', c.id, 'scheme', c.scheme, 'class_code', c.class_code, 'name', c.name, 'status', c.status,
     'unit_grid_code', c.unit_grid_code, 'street_code', c.street_code, 'community_code', c.community_code,
     'main_dept_code', c.main_dept_code, 'main_dept_name', d1.name,
     'owner_dept_code', c.owner_dept_code, 'owner_dept_name', d2.name,
     'maint_dept_code', c.maint_dept_code, 'maint_dept_name', d3.name,
     'initial_date', c.initial_date, 'change_date', c.change_date, 'data_source', c.data_source,
     'note', c.note, 'attrs', c.attrs, 'photos', c.photos, 'version', c.version,
     'updated_at', {_UPDATED_AT}{extra}))
"""


_FEATURE = _feature_sql()
_FROM = """
FROM components c
LEFT JOIN departments d1 ON d1.code = c.main_dept_code
LEFT JOIN departments d2 ON d2.code = c.owner_dept_code
LEFT JOIN departments d3 ON d3.code = c.maint_dept_code
"""


def get_component(conn: Connection, component_id: str) -> dict[str, Any]:
    row = conn.execute(text(f"SELECT {_FEATURE} {_FROM} WHERE c.id = :id"), {"id": component_id}).scalar()
    if row is None:
        raise NotFound(
            f"no component with identifier {component_id}", message_zh=f"未找到标识码为 {component_id} 的部件"
        )
    return dict(row)


def component_history(conn: Connection, component_id: str) -> list[dict[str, Any]]:
    exists = conn.execute(
        text("SELECT 1 FROM component_history WHERE component_id = :id LIMIT 1"), {"id": component_id}
    ).scalar()
    if not exists:
        raise NotFound(
            f"no component with identifier {component_id}", message_zh=f"未找到标识码为 {component_id} 的部件"
        )
    rows = conn.execute(
        text(
            "SELECT id, at, actor, action, changes, source, reason FROM component_history "
            "WHERE component_id = :id ORDER BY at, id"
        ),
        {"id": component_id},
    ).mappings()
    return [{**r, "at": r["at"].astimezone(LOCAL_TZ).isoformat()} for r in rows]


@dataclass
class ComponentInput:
    """One component as an API client gives it (validated by the same rules as a file row)."""

    class_code: str | None = None
    lon: float | None = None
    lat: float | None = None
    datum: str = "wgs84"
    id: str | None = None
    name: str | None = None
    main_dept: str | None = None
    owner_dept: str | None = None
    maint_dept: str | None = None
    status: str | None = None
    initial_date: str | None = None
    change_date: str | None = None
    data_source: str | None = None
    note: str | None = None
    attrs: dict[str, Any] = field(default_factory=dict)


def _raw_frame(item: ComponentInput) -> pd.DataFrame:
    from gisgrid.geodesy import to_storage

    lon = np.array([np.nan if item.lon is None else float(item.lon)])
    lat = np.array([np.nan if item.lat is None else float(item.lat)])
    x, y = to_storage(lon, lat, check_datum(item.datum))
    values = {
        "_row": [1],
        "id": [item.id or ""],
        "class_code": [item.class_code or ""],
        "name": [item.name or ""],
        "main_dept": [item.main_dept or ""],
        "owner_dept": [item.owner_dept or ""],
        "maint_dept": [item.maint_dept or ""],
        "status": [item.status or ""],
        "initial_date": [item.initial_date or ""],
        "change_date": [item.change_date or ""],
        "data_source": [item.data_source or ""],
        "note": [item.note or ""],
        "lon": x,
        "lat": y,
        "lon_text": ["" if item.lon is None else str(item.lon)],
        "lat_text": ["" if item.lat is None else str(item.lat)],
        "geom_wkb": [None],
        "attrs": [item.attrs or {}],
    }
    return pd.DataFrame(values)


def _refuse(result: ValidationResult) -> None:
    """Refuse a single record's write by its validation errors: each item with its reason code where the check has
    one (``json_too_deep`` for attrs stored too deep before the limit, ``control_characters`` …), and the error
    with that reason when every item has it (an item without a code would otherwise be given it)."""
    if len(result.errors):
        items = [
            {k: v for k, v in item.items() if k != "code" or not pd.isna(v)}
            for item in result.errors.drop(columns=["row"]).to_dict("records")
        ]
        first = items[0]
        codes = {item.get("code") for item in items}
        code = codes.pop() if len(codes) == 1 else None
        reason = Reason(code) if code is not None else None
        raise InvalidInput(f"{first['field']}: {first['reason']}", detail=items, reason=reason)


def _district_of(conn: Connection, item: ComponentInput) -> str | None:
    """The district one API component belongs to when several are loaded: a stored component's own, else the one
    covering its point; None with one district (or a point in none: the coverage check then refuses it)."""
    codes = conn.execute(text("SELECT code FROM admin_units WHERE level = 'district' ORDER BY code")).scalars().all()
    if len(codes) <= 1:
        return None
    if item.id:
        stored = conn.execute(text("SELECT district_code FROM components WHERE id = :id"), {"id": item.id}).scalar()
        if stored:
            return str(stored)
    if item.lon is None or item.lat is None or not is_datum(item.datum):
        return codes[0]  # the row's own checks refuse it
    (x,), (y,) = to_storage([item.lon], [item.lat], item.datum)
    covering = conn.execute(
        text(
            "SELECT code FROM admin_units WHERE level = 'district' "
            f"AND ST_Covers(geom, ST_SetSRID(ST_MakePoint(:x, :y), {STORAGE_SRID})) ORDER BY code LIMIT 1"
        ),
        {"x": float(x), "y": float(y)},
    ).scalar()
    return str(covering) if covering else codes[0]


A = TypeVar("A")


def _as_is(feature: dict[str, Any]) -> Any:
    return feature


#: What a single-record write answers: the stored component as a GeoJSON Feature, made into the caller's answer
#: (``answer``, e.g. the API's rendered JSON response) *before* the transaction commits, so that an answer that
#: cannot be made rolls the write back instead of reporting a failure for a change that was saved.
Answer = Callable[[dict[str, Any]], A]


def save_component(
    engine: Engine,
    catalogue: Catalogue,
    item: ComponentInput,
    *,
    scheme: str = "gbt47678",
    actor: str,
    expected_version: int | None = None,
    action: str = "create",
    source: str = "api",
    reason: str | None = None,
    answer: Answer[A] = _as_is,
) -> A:
    """Create (no id, or a new id) or update (existing id) one component; history written in the same transaction
    (``source`` names where the change came from in it, ``reason`` why — a status out of 移除); returns ``answer``
    of the stored feature, made before the commit."""
    with engine.connect() as conn, conn.begin():
        grid_store.read_grids_first(conn)  # before the component's row: a recode rewrites both (see there)
        coverage = load_coverage(conn, _district_of(conn, item))
        sync_departments(conn, catalogue)
        if item.id:
            current = conn.execute(
                text("SELECT version FROM components WHERE id = :id FOR UPDATE"), {"id": item.id}
            ).scalar()
            if action != "create" and current is None:
                raise NotFound(f"no component with identifier {item.id}", message_zh=f"未找到标识码为 {item.id} 的部件")
            if expected_version is not None and current is not None and current != expected_version:
                raise _stale_version(item.id, current, expected_version)
            if action == "create" and current is not None:
                raise Conflict(
                    f"部件 {item.id} 已存在:请用 PATCH /components/{item.id} 修改 / component {item.id} already "
                    f"exists; update it with PATCH /components/{item.id}",
                    detail=[
                        refusal_item(
                            "id",
                            f"component {item.id} already exists (version {current})",
                            Reason.COMPONENT_EXISTS,
                            value=item.id,
                            version=current,
                        )
                    ],
                    reason=Reason.COMPONENT_EXISTS,
                )
        result = validate_components(
            _raw_frame(item),
            scheme=scheme,
            catalogue=catalogue,
            district_code=coverage.district_code,
            coverage=coverage.geometry,
            coverage_bbox=coverage.bbox,
            existing_ids={item.id} if item.id and current is not None else set(),
        )
        _refuse(result)
        accepted = result.accepted
        if not item.id:
            lock_new_places(conn, scheme, accepted["class_code"])
            dup = same_place_duplicates(conn, scheme, accepted)
            if len(dup):
                raise InvalidInput(
                    dup["reason"].iloc[0],
                    detail=dup.drop(columns=["row"]).to_dict("records"),
                    reason=Reason.DUPLICATE_COMPONENT,
                )
        conn.execute(text("LOCK TABLE components IN ROW EXCLUSIVE MODE"))  # write_components' lock, taken early
        ungridded = ungridded_rows(conn, coverage.district_code, accepted)
        if len(ungridded):
            first = ungridded.iloc[0]
            raise InvalidInput(
                f"{first['field']}: {first['reason']}",
                detail=[
                    refusal_item(
                        str(first["field"]), str(first["reason"]), Reason.OUTSIDE_COVERAGE, value=first["value"]
                    )
                ],
                reason=Reason.OUTSIDE_COVERAGE,
            )
        accepted = accepted.copy()
        assign_identifiers(conn, coverage.district_code, scheme, accepted)  # the API answers with the new id
        write_components(conn, accepted, scheme=scheme, district=coverage.district_code, actor=actor, source=source)
        new_id = str(accepted["id"].iloc[0])
        if reason:  # on the entry just written (an unchanged record writes none)
            conn.execute(
                text(
                    "UPDATE component_history SET reason = :why WHERE id = (SELECT max(id) FROM component_history "
                    "WHERE component_id = :id AND at = now())"
                ),
                {"why": reason, "id": new_id},
            )
        return answer(get_component(conn, new_id))


def update_component(
    engine: Engine,
    catalogue: Catalogue,
    component_id: str,
    changes: dict[str, Any],
    *,
    actor: str,
    expected_version: int | None,
    answer: Answer[A] = _as_is,
) -> A:
    """PATCH: merge the changes onto the stored record, re-check it whole, write it with its history; ``answer``
    as for :func:`save_component`."""
    with engine.connect() as conn:
        current = get_component(conn, component_id)
        # Exact stored coordinates (the GeoJSON is rounded): an unchanged location must compare equal.
        lon, lat = conn.execute(
            text(
                "SELECT CASE WHEN GeometryType(geom) = 'POINT' THEN ST_X(geom) END, "
                "CASE WHEN GeometryType(geom) = 'POINT' THEN ST_Y(geom) END FROM components WHERE id = :id"
            ),
            {"id": component_id},
        ).one()
    props = current["properties"]
    merged = ComponentInput(
        id=component_id,
        class_code=props["class_code"],
        lon=lon,
        lat=lat,
        datum="cgcs2000",
        name=props["name"],
        main_dept=props["main_dept_code"],
        owner_dept=props["owner_dept_code"],
        maint_dept=props["maint_dept_code"],
        status=props["status"],
        initial_date=props["initial_date"],
        change_date=props["change_date"],
        data_source=props["data_source"],
        note=props["note"],
        attrs=props["attrs"] or {},
    )
    changes = dict(changes)
    if "class_code" in changes and changes["class_code"] != props["class_code"]:
        # The class is in the identifier (district + class + serial): another class is another component.
        sent, kept = changes["class_code"], props["class_code"]
        raise InvalidInput(
            "部件类别不能更改:类别是部件标识码的一部分,请移除该部件后按新类别新建 / class_code: a component's "
            f"class is part of its identifier ({kept}, sent {str(sent)[:8]!r}); retire it and create a new one",
            detail=[
                refusal_item(
                    "class_code", f"the component's class is {kept}", Reason.CLASS_CHANGE, value=sent, class_code=kept
                )
            ],
            reason=Reason.CLASS_CHANGE,
        )
    changes.pop("class_code", None)  # the same class: no change
    why = (changes.pop("reason", None) or "").strip()
    status = changes.get("status", props["status"])
    if status != props["status"] and RETIRED in (status, props["status"]):
        # Into or out of the registry (移除) is said why, as POST /retire asks: the history keeps the reason.
        if not why:
            raise InvalidInput(
                f"reason: say why the status goes from {props['status']} to {status}",
                detail=[{"field": "reason"}],
                reason=Reason.MISSING,
            )
        if status == RETIRED:
            if set(changes) - {"status"}:
                raise InvalidInput(
                    "status: retiring (移除) takes no other change; retire alone, or change the rest first",
                    detail=[{"field": "status"}],
                    reason=Reason.EXTRA_FORBIDDEN,
                )
            return retire_component(
                engine, component_id, actor=actor, reason=why, expected_version=expected_version, answer=answer
            )
    elif why:
        raise InvalidInput(
            "reason: only a status change into or out of 移除 takes one",
            detail=[{"field": "reason"}],
            reason=Reason.EXTRA_FORBIDDEN,
        )
    unknown = set(changes) - set(ComponentInput.__dataclass_fields__) - {"datum"}
    if unknown:
        raise InvalidInput(f"unknown field(s): {', '.join(sorted(unknown))}", reason=Reason.EXTRA_FORBIDDEN)
    if ("lon" in changes) != ("lat" in changes):
        raise InvalidInput("lon/lat: a move needs both lon and lat", reason=Reason.MISSING)
    for key, value in changes.items():
        setattr(merged, key, value)
    if lon is None and "lon" not in changes:
        raise InvalidInput(
            "geometry: only point components can be edited through this endpoint", reason=Reason.NOT_A_POINT
        )
    return save_component(
        engine,
        catalogue,
        merged,
        scheme=props["scheme"],
        actor=actor,
        expected_version=expected_version,
        action="update",
        reason=why or None,  # its own column, not in source (review44 U5)
        answer=answer,
    )


def _stale_version(component_id: str, version: int, expected_version: int) -> StaleVersion:
    """The refusal of a stale ``version``, in the shape a case's is: error ``stale_version`` (409), one item
    naming the version stored and the one sent."""
    return StaleVersion(
        f"component {component_id} was changed by someone else (version {version}, you sent {expected_version}); "
        "reload it and try again",
        detail=[
            refusal_item(
                "version",
                f"the component is at version {version}",
                Reason.STALE_VERSION,
                version=version,
                expected_version=expected_version,
            )
        ],
    )


def retire_component(
    engine: Engine,
    component_id: str,
    *,
    actor: str,
    reason: str,
    expected_version: int | None = None,
    answer: Answer[A] = _as_is,
) -> A:
    """Retire (移除): the record and its history stay; it leaves the active registry (``answer`` as for
    :func:`save_component`)."""
    if not reason or not reason.strip():
        raise InvalidInput("reason: say why the component is retired", reason=Reason.MISSING)
    with engine.connect() as conn, conn.begin():
        row = conn.execute(
            text("SELECT version, status FROM components WHERE id = :id FOR UPDATE"), {"id": component_id}
        ).one_or_none()
        if row is None:
            raise NotFound(
                f"no component with identifier {component_id}", message_zh=f"未找到标识码为 {component_id} 的部件"
            )
        if expected_version is not None and row.version != expected_version:
            raise _stale_version(component_id, row.version, expected_version)
        if row.status == "移除":
            raise Conflict(
                f"部件 {component_id} 已移除,无需再次移除;如需恢复,请用 PATCH 改回状态并说明原因 / component "
                f"{component_id} is already retired (移除); to bring it back, PATCH its status with a reason",
                detail=[
                    refusal_item(
                        None,
                        f"component {component_id} is already retired",
                        Reason.COMPONENT_RETIRED,
                        id=component_id,
                        status=row.status,
                        version=row.version,
                    )
                ],
                reason=Reason.COMPONENT_RETIRED,
            )
        conn.execute(
            text(
                "UPDATE components SET status = '移除', change_date = current_date, version = version + 1, "
                "updated_at = now() WHERE id = :id"
            ),
            {"id": component_id},
        )
        conn.execute(
            text(
                "INSERT INTO component_history (component_id, actor, action, changes, source, reason) "
                "VALUES (:id, :actor, 'retire', jsonb_build_object('status', jsonb_build_array(:old, '移除')), "
                "'api', :why)"
            ),
            {"id": component_id, "actor": actor, "old": row.status, "why": reason.strip()},
        )
        return answer(get_component(conn, component_id))


# -- queries ------------------------------------------------------------------------------------


@dataclass
class ComponentQuery:
    bbox: tuple[float, float, float, float] | None = None
    unit_grid: str | None = None
    tier_grid: str | None = None
    near: tuple[float, float] | None = None  # storage lon/lat
    radius_m: float | None = None
    nearest: int | None = None
    class_code: str | None = None
    department: str | None = None
    status: str | None = None
    limit: int = 100
    offset: int = 0


def _within_sql(point: str, lat: float, param: str, metres: float) -> str:
    """Components within ``:param`` metres of ``point`` (SQL over alias ``c``): a degree box the geometry GiST
    index answers, then the exact ellipsoidal distance."""
    dx, dy = geodesy.degree_box(lat, metres)
    box = f"c.geom && ST_Expand({point}, {dx!r}, {dy!r})"
    return f"{box} AND ST_DWithin(c.geom::geography, {point}::geography, :{param})"


def query_components(conn: Connection, q: ComponentQuery) -> tuple[list[dict[str, Any]], int]:  # noqa: C901
    """Filter components; with ``nearest`` the k closest (by metres, with ``distance_m``), else paged by id."""
    where: list[str] = ["TRUE"]
    params: dict[str, Any] = {}
    if q.bbox:
        where.append(f"c.geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, {STORAGE_SRID})")
        params.update(dict(zip(("x0", "y0", "x1", "y1"), q.bbox, strict=True)))
    if q.unit_grid:
        where.append("c.unit_grid_code = :ug")
        params["ug"] = q.unit_grid
    if q.tier_grid:
        n = len(q.tier_grid)
        if n == 9:
            where.append("c.street_code = :tg")
        elif n == 12:
            where.append("c.community_code = :tg")
        elif n == 14:
            where.append("c.unit_grid_code IN (SELECT code FROM unit_grids WHERE tier3_code = :tg)")
        else:
            raise InvalidInput(
                "tier_grid: a tier grid code has 9 (tier 1), 12 (tier 2) or 14 (tier 3) digits",
                reason=Reason.STRING_PATTERN_MISMATCH,
            )
        params["tg"] = q.tier_grid
    if q.class_code:
        where.append("c.class_code = :cls")
        params["cls"] = q.class_code
    if q.department:
        # A code no department has is a mistake to name, not a filter that matches nothing.
        if conn.execute(text("SELECT 1 FROM departments WHERE code = :d"), {"d": q.department}).first() is None:
            raise InvalidInput(
                f"department: unknown department {q.department[:40]!r}",
                detail=[{"field": "department", "value": q.department[:40]}],
                reason=Reason.UNKNOWN_DEPARTMENT,
            )
        where.append("(c.main_dept_code = :dep OR c.owner_dept_code = :dep OR c.maint_dept_code = :dep)")
        params["dep"] = q.department
    if q.status:
        if q.status not in STATUSES:
            raise InvalidInput(
                f"status: must be one of {'/'.join(STATUSES)}",
                detail=[{"field": "status", "reason": f"must be one of {'/'.join(STATUSES)}"}],
                reason=Reason.LITERAL_ERROR,
            )
        where.append("c.status = :st")
        params["st"] = q.status
    geo_point: str | None = None  # the point's geometry, and point: its geography
    point: str | None = None
    if q.near is not None:
        x, y = float(q.near[0]), float(q.near[1])
        geo_point = f"ST_SetSRID(ST_MakePoint({x!r}, {y!r}), {STORAGE_SRID})"
        point = f"{geo_point}::geography"
    if q.radius_m is not None:
        if geo_point is None:
            raise InvalidInput(
                "radius_m: a radius needs lon and lat",
                detail=[{"field": f, "reason": "missing: a radius needs lon and lat"} for f in ("lon", "lat")],
                reason=Reason.NEEDS_LON_LAT,
            )
        where.append(_within_sql(geo_point, y, "r", q.radius_m))
        params["r"] = float(q.radius_m)
    cond = " AND ".join(where)
    if q.nearest is not None:
        if geo_point is None:
            raise InvalidInput(
                "nearest: nearest-k needs lon and lat",
                detail=[{"field": f, "reason": "missing: nearest-k needs lon and lat"} for f in ("lon", "lat")],
                reason=Reason.NEEDS_LON_LAT,
            )
        # Exact metres from the plain geometry index, in two index scans: the k nearest in degrees are k
        # components within M metres (M = the farthest of them), so the true k nearest are within M too.
        reach = conn.execute(
            text(
                f"SELECT max(ST_Distance(s.geom::geography, {point})) FROM (SELECT c.geom FROM components c "
                f"WHERE {cond} ORDER BY c.geom <-> {geo_point} LIMIT :limit) s"
            ),
            {**params, "limit": q.nearest},
        ).scalar()
        if reach is None:
            return [], 0
        sql = f"""
            SELECT {_feature_sql(f", 'distance_m', round(ST_Distance(c.geom::geography, {point})::numeric, 2)")}
            {_FROM} WHERE {cond} AND {_within_sql(geo_point, y, "reach", float(reach) + 0.001)}
            ORDER BY ST_Distance(c.geom::geography, {point}), c.id LIMIT :limit
        """
        rows = conn.execute(text(sql), {**params, "limit": q.nearest, "reach": float(reach) + 0.001}).scalars().all()
        return [dict(r) for r in rows], len(rows)
    matched = int(conn.execute(text(f"SELECT count(*) FROM components c WHERE {cond}"), params).scalar_one())
    rows = (
        conn.execute(
            text(f"SELECT {_FEATURE} {_FROM} WHERE {cond} ORDER BY c.id LIMIT :limit OFFSET :offset"),
            {**params, "limit": q.limit, "offset": q.offset},
        )
        .scalars()
        .all()
    )
    return [dict(r) for r in rows], matched


def catalogue_for(settings: Settings) -> Catalogue:
    """The component catalogue with the city's extra files (those whose header makes them departments, component
    classes or class-map files; :func:`gisgrid.cityfiles.file_kind`)."""
    return load_catalogue(settings, settings.catalogue_extra)


#: The names an export writes beside their codes, joined (a component stores only the codes).
_EXPORT_NAMES: dict[str, str] = {
    "ZGBMMC": "dm.name",
    "QSDWMC": "dq.name",
    "YHDWMC": "dy.name",
    "SZJDMC": "st.name",
    "SZSQMC": "co.name",
}
#: Export columns: GB/T 47678.5 表2 attribute abbreviations (ASCII, ≤ 10 bytes, so a Shapefile keeps them as they
#: are), in the table's order (``data/catalogue/export_fields.csv``; each stored one from
#: :data:`gisgrid.export_fields.COMPONENT_COLUMNS`), then gisgrid's own ``class_code`` and ``scheme``. The import
#: reads every one back (:data:`gisgrid.components.FIELD_ALIASES` and ``DERIVED_COLUMNS``), so an unedited export
#: re-imports unchanged.
EXPORT_SQL = """
SELECT {columns},
       c.class_code, c.scheme, c.attrs, c.geom
FROM components c
LEFT JOIN departments dm ON dm.code = c.main_dept_code
LEFT JOIN departments dq ON dq.code = c.owner_dept_code
LEFT JOIN departments dy ON dy.code = c.maint_dept_code
LEFT JOIN admin_units st ON st.code = c.street_code
LEFT JOIN admin_units co ON co.code = c.community_code
WHERE {within}
ORDER BY c.id
"""


def _export_columns() -> str:
    """The SELECT list of the standard's fields: ``c.status AS "GLBJZT"``, ``dm.name AS "ZGBMMC"`` …"""
    stored = {name: f"c.{column}" for name, column in export_fields.COMPONENT_COLUMNS.items()}
    fields = [f.field for f in export_fields.load_export_fields() if f.layer == "components"]
    return ", ".join(f'{stored.get(name) or _EXPORT_NAMES[name]} AS "{name}"' for name in fields)


#: ``--within`` over the export's rows: a tier-3 grid by its unit grids, any other code as the unit grid's prefix.
_WITHIN_TIER3 = "c.unit_grid_code IN (SELECT code FROM unit_grids WHERE tier3_code = :within)"
_WITHIN_PREFIX = "starts_with(c.unit_grid_code, :within)"


def _custom_columns(gdf: gpd.GeoDataFrame, notes: list[str] | None) -> gpd.GeoDataFrame:
    """The city's own attributes (``attrs``: the custom columns of its imports) as columns after the standard's,
    in name order, each value as its text (a list or object as its JSON), so that an export re-imports with them; a
    name the standard's columns already use case-insensitively is left out, said in ``notes``."""
    attrs = gdf.pop("attrs")
    # A name an import reads as a standard field (部件名称 beside GLBJMC: kept in attrs before it was one) too: the
    # file would name one field twice, and an import refuses that.
    taken = {str(c).casefold() for c in gdf.columns} | STANDARD_NAMES
    names = sorted({str(k) for a in attrs if isinstance(a, dict) for k in a})
    clash = [n for n in names if n.casefold() in taken]
    if clash:
        message = f"custom attributes named as a standard column are not exported: {', '.join(clash)}"
        if notes is not None:
            notes.append(message)
        else:
            warnings.warn(message, UserWarning, stacklevel=3)
    geometry = gdf.pop("geometry")
    for name in (n for n in names if n.casefold() not in taken):
        gdf[name] = [_attr_text(a.get(name)) if isinstance(a, dict) else None for a in attrs]
    gdf["geometry"] = geometry
    return gpd.GeoDataFrame(gdf, geometry="geometry", crs=geometry.crs)


def _attr_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def export_components(
    conn: Connection,
    out: Path,
    *,
    fmt: str | None,
    encoding: str,
    crs: str | None,
    notes: list[str] | None = None,
    within: str | None = None,
) -> list[Path]:
    """Components to GPKG / Shapefile / GeoJSON / CSV, like the grid exports, in the standard's field names with
    the department, street and community names (:data:`EXPORT_SQL`); CSRQ and BGRQ as date fields (Shapefile
    'D', GeoPackage DATE; YYYY-MM-DD in GeoJSON and CSV, typed Date in the CSV's .csvt), also when every value is
    empty; in a Shapefile the text fields as wide as 表2 says (``data/catalogue/export_fields.csv``), a value longer
    than that warned about in ``notes`` by its GLBJBSM."""
    within = check_within(within)
    where = "TRUE" if within is None else _WITHIN_TIER3 if len(within) == 14 else _WITHIN_PREFIX
    sql = EXPORT_SQL.format(columns=_export_columns(), within=where)
    gdf = gpd.read_postgis(text(sql), conn, geom_col="geom", params={"within": within}).rename_geometry("geometry")
    if gdf.empty and within is not None:
        raise InvalidInput(
            f"within: no components in {WITHIN_LENGTHS[len(within)]} {within}; nothing to export",
            detail=[{"field": "within", "reason": "no components there"}],
        )
    gdf = _custom_columns(gdf, notes)
    for column in export_fields.date_fields("components"):  # datetime.date objects: the writer's date fields
        gdf[column] = pd.Series(
            [None if pd.isna(v) else pd.Timestamp(v).date() for v in gdf[column]], index=gdf.index, dtype=object
        )
    if gdf.empty:
        raise InvalidInput("no components are stored; nothing to export")
    return write_layer(  # dates declared: date fields also when no component has one (a fixed schema)
        gdf,
        out,
        fmt=fmt,
        layer="components",
        crs=crs,
        encoding=encoding,
        date_fields=export_fields.date_fields("components"),
        text_lengths=export_fields.text_lengths("components"),  # 表2 lengths: Shapefile field widths
        row_label="GLBJBSM",
        shapes_as_wkt=True,  # an .xlsx: lon/lat of the points, wkt of the other shapes, so that it imports back
        notes=notes,
    )


def add_photos(
    engine: Engine,
    store: PhotoStore,
    component_id: str,
    files: list[tuple[str, bytes]],
    *,
    actor: str,
    answer: Answer[A] = _as_is,
) -> A:
    """Attach photos to a component (checked, stored content-addressed); recorded in its history (``answer`` as
    for :func:`save_component`)."""
    if not files:
        raise InvalidInput("photos: attach at least one photo", detail=[{"field": "photos"}], reason=Reason.MISSING)
    files = one_request(files)  # at most 10 (a picture already attached is skipped below)
    for i, (name, _) in enumerate(files):
        refuse_bad_text({f"photos[{i}]": name})  # the API's edge checks them too; the store is the service
    check_pixel_budget(files)  # by the headers, before any photo is decoded
    infos = []
    for i, (name, data) in enumerate(files):
        try:
            infos.append(inspect_photo(data, filename=name))
        except InvalidInput as exc:
            raise refused_photo(i, exc) from None
    with engine.connect() as conn, conn.begin():
        current = conn.execute(
            text("SELECT photos FROM components WHERE id = :id FOR UPDATE"), {"id": component_id}
        ).one_or_none()
        if current is None:
            raise NotFound(
                f"no component with identifier {component_id}", message_zh=f"未找到标识码为 {component_id} 的部件"
            )
        photos = list(current[0] or [])
        added = []
        for info, (name, data) in zip(infos, files, strict=True):
            stored = store.save(data, info)
            if any(p.get("sha256") == stored.sha256 for p in photos):
                continue  # the same picture twice is one photo
            entry: dict[str, str | list[float]] = {
                "sha256": stored.sha256,
                "content_type": stored.content_type,
                "name": name,
            }
            if info.gps:
                entry["gps"] = list(info.gps)
            photos.append(entry)
            added.append(stored.sha256)
        conn.execute(
            text(
                "UPDATE components SET photos = CAST(:p AS jsonb), version = version + 1, updated_at = now() "
                "WHERE id = :id"
            ),
            {"p": json.dumps(photos, ensure_ascii=False), "id": component_id},
        )
        conn.execute(
            text(
                "INSERT INTO component_history (component_id, actor, action, changes, source) "
                "VALUES (:id, :actor, 'photo', jsonb_build_object('photos', CAST(:added AS jsonb)), 'api')"
            ),
            {"id": component_id, "actor": actor, "added": json.dumps(added)},
        )
        return answer(get_component(conn, component_id))
