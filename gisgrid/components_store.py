"""Components (部件) in PostGIS: bulk import that loses nothing, CRUD with history, spatial queries.

The rules (identifiers, row checks) are in ``gisgrid.components``; this module does the database side:
duplicates against stored components, never-reused serials, unit-grid assignment, upsert and history, each
import in one transaction so a refused or failed file leaves the database as it was.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, Engine, text

from gisgrid.catalogue import Catalogue, load_catalogue
from gisgrid.components import (
    STATUSES,
    ValidationResult,
    read_component_file,
    validate_components,
    write_errors,
)
from gisgrid.errors import Conflict, InvalidInput, NotFound
from gisgrid.settings import STORAGE_SRID, Settings
from gisgrid.storage.bulk import copy_rows
from gisgrid.vectorio import write_layer

SERIAL_MAX = 999_999
#: Two components of the same class closer than this are the same thing surveyed twice.
SAME_PLACE_M = 0.5
CHUNK = 100_000

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
        return tuple(shapely.bounds(self.geometry).tolist())  # type: ignore[return-value]


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
        raise InvalidInput(f"{which} not loaded: run gisgrid boundaries import FILE first")
    if len(rows) > 1:
        codes = ", ".join(r[0] for r in rows)
        raise InvalidInput(f"several districts are loaded ({codes}): say which with --district CODE")
    geom = shapely.from_wkb(bytes(rows[0][1]))
    shapely.prepare(geom)
    return Coverage(rows[0][0], geom)


def sync_departments(conn: Connection, catalogue: Catalogue) -> None:
    """The catalogue is the source of department codes; keep the table (FK target) in step with it."""
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
    class_field: str | None = None
    district: str | None = None
    errors_path: Path | None = None
    dry_run: bool = False
    all_or_nothing: bool = False
    actor: str = "import"


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

    def to_text(self) -> str:
        lines = [
            f"read {self.read}, inserted {self.inserted}, updated {self.updated}, unchanged {self.unchanged}, "
            f"refused {self.refused}"
        ]
        if self.generated_ids:
            lines.append(f"generated {self.generated_ids} identifiers")
        if len(self.errors):
            first = self.errors.iloc[0]
            lines.append(f"first refusal: row {first['row']} field {first['field']}: {first['reason']}")
        if self.errors_path:
            lines.append(f"refusals written to {self.errors_path}")
        if not self.written:
            lines.append("nothing written")
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
    "geom",
)


def _geometries(accepted: pd.DataFrame) -> np.ndarray:
    """Hex EWKB (SRID 4490) for each accepted row: points from lon/lat, lines/polygons from their WKB."""
    points = shapely.points(accepted["lon"].to_numpy(), accepted["lat"].to_numpy())
    wkb = accepted["geom_wkb"].to_numpy(dtype=object)
    has_wkb = pd.notna(wkb) if len(wkb) else np.zeros(0, dtype=bool)
    geoms = points.astype(object)
    if has_wkb.any():
        geoms[has_wkb] = shapely.from_wkb(wkb[has_wkb])
    return shapely.to_wkb(shapely.set_srid(geoms, STORAGE_SRID), hex=True, include_srid=True)


def _stage_rows(accepted: pd.DataFrame, geoms: np.ndarray, start: int, stop: int) -> Iterator[tuple[Any, ...]]:
    part = accepted.iloc[start:stop]
    attrs = [json.dumps(a, ensure_ascii=False) if a else "{}" for a in part["attrs"]]
    yield from zip(
        part["_row"],
        part["id"],
        part["class_code"],
        part["name"],
        part["main_dept"],
        part["owner_dept"],
        part["maint_dept"],
        part["status"],
        part["initial_date"],
        part["change_date"],
        part["data_source"],
        part["note"],
        attrs,
        geoms[start:stop],
        strict=True,
    )


def _refuse_same_place(conn: Connection, scheme: str) -> pd.DataFrame:
    """New rows (no identifier) of a class already stored at the same place are duplicates, not new things."""
    found = conn.execute(
        text(
            f"""
            WITH dup AS (
                SELECT s.row, c.id FROM _stage s CROSS JOIN LATERAL (
                    SELECT c.id FROM components c
                    WHERE c.scheme = :scheme AND c.class_code = s.class_code AND c.status <> '移除'
                      AND c.geom && ST_Expand(s.geom, 1e-5)
                      AND ST_DWithin(c.geom::geography, s.geom::geography, {SAME_PLACE_M})
                    LIMIT 1) c
                WHERE s.id IS NULL)
            DELETE FROM _stage s USING dup WHERE s.row = dup.row
            RETURNING s.row, dup.id
            """
        ),
        {"scheme": scheme},
    ).all()
    return pd.DataFrame(
        [
            {
                "row": r,
                "field": "coordinates",
                "value": cid,
                "reason": f"duplicate of stored component {cid} (same class within {SAME_PLACE_M} m); "
                "give its identifier to update it",
            }
            for r, cid in found
        ],
        columns=["row", "field", "value", "reason"],
    )


def reserve_serials(conn: Connection, district: str, scheme: str, counts: dict[str, int]) -> dict[str, int]:
    """Reserve ``n`` serials per class; returns the first serial of each block. Row locks on
    ``component_serials`` make concurrent imports wait for each other, so blocks never overlap."""
    first: dict[str, int] = {}
    for class_code in sorted(counts):  # fixed order: two imports lock rows in the same order, no deadlock
        n = counts[class_code]
        last = conn.execute(
            text(
                """
                INSERT INTO component_serials (district_code, scheme, class_code, last_serial)
                VALUES (:d, :s, :c, :n)
                ON CONFLICT (district_code, scheme, class_code)
                DO UPDATE SET last_serial = component_serials.last_serial + EXCLUDED.last_serial
                RETURNING last_serial
                """
            ),
            {"d": district, "s": scheme, "c": class_code, "n": n},
        ).scalar_one()
        if last > SERIAL_MAX:
            raise InvalidInput(
                f"serial numbers of class {class_code} in district {district} are exhausted "
                f"({last} > {SERIAL_MAX}); retire and renumber, or use a local extension class"
            )
        first[class_code] = int(last) - n + 1
    return first


def _note_given_serials(conn: Connection, district: str, scheme: str) -> None:
    """Identifiers given in the file raise the serial counter, so generated ones never collide with them."""
    k = 5 if scheme == "gbt47678" else 4
    conn.execute(
        text(
            f"""
            INSERT INTO component_serials (district_code, scheme, class_code, last_serial)
            SELECT :d, :s, class_code, max(substr(id, {7 + k}, 6)::int) FROM _stage
            WHERE id IS NOT NULL GROUP BY class_code ORDER BY class_code
            ON CONFLICT (district_code, scheme, class_code)
            DO UPDATE SET last_serial = GREATEST(component_serials.last_serial, EXCLUDED.last_serial)
            """
        ),
        {"d": district, "s": scheme},
    )


def _generate_ids(conn: Connection, district: str, scheme: str) -> int:
    counts = dict(conn.execute(text("SELECT class_code, count(*) FROM _stage WHERE id IS NULL GROUP BY 1")).all())
    if not counts:
        return 0
    first = reserve_serials(conn, district, scheme, {c: int(n) for c, n in counts.items()})
    conn.execute(text("CREATE TEMP TABLE _first (class_code text PRIMARY KEY, first int) ON COMMIT DROP"))
    copy_rows(conn, "_first", ("class_code", "first"), first.items())
    conn.execute(
        text(
            """
            UPDATE _stage s SET id = :d || s.class_code || lpad((f.first + n.k - 1)::text, 6, '0')
            FROM (SELECT row, row_number() OVER (PARTITION BY class_code ORDER BY row) AS k
                  FROM _stage WHERE id IS NULL) n
            JOIN _first f ON TRUE
            WHERE s.row = n.row AND f.class_code = s.class_code
            """
        ),
        {"d": district},
    )
    return int(sum(counts.values()))


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


def _write_stage(conn: Connection, scheme: str, district: str, actor: str, source: str) -> tuple[int, int, int]:
    """Upsert the staged rows into ``components`` and write history; returns (inserted, updated, unchanged)."""
    conn.execute(
        text(
            """
            CREATE TEMP TABLE _old ON COMMIT DROP AS
            SELECT c.* FROM components c JOIN _stage s ON s.id = c.id;
            ALTER TABLE _old ADD PRIMARY KEY (id);
            """
        )
    )
    conn.execute(
        text(
            f"""
            INSERT INTO components (id, scheme, district_code, class_code, name, unit_grid_code, street_code,
                community_code, main_dept_code, owner_dept_code, maint_dept_code, status, initial_date, change_date,
                data_source, note, attrs, geom)
            SELECT s.id, :scheme, :d, s.class_code, s.name, g.code, g.street_code, g.community_code,
                   s.main_dept, s.owner_dept, s.maint_dept, s.status, s.initial_date, s.change_date,
                   s.data_source, s.note, s.attrs, s.geom
            FROM _stage s
            LEFT JOIN LATERAL (
                SELECT code, street_code, community_code FROM unit_grids g
                WHERE ST_Intersects(g.geom, CASE WHEN GeometryType(s.geom) = 'POINT' THEN s.geom
                                                 ELSE ST_PointOnSurface(s.geom) END)
                ORDER BY code LIMIT 1) g ON TRUE
            ON CONFLICT (id) DO UPDATE SET
                class_code = EXCLUDED.class_code, name = EXCLUDED.name, unit_grid_code = EXCLUDED.unit_grid_code,
                street_code = EXCLUDED.street_code, community_code = EXCLUDED.community_code,
                main_dept_code = EXCLUDED.main_dept_code, owner_dept_code = EXCLUDED.owner_dept_code,
                maint_dept_code = EXCLUDED.maint_dept_code, status = EXCLUDED.status,
                initial_date = EXCLUDED.initial_date, change_date = EXCLUDED.change_date,
                data_source = EXCLUDED.data_source, note = EXCLUDED.note, attrs = EXCLUDED.attrs,
                geom = EXCLUDED.geom, version = components.version + 1, updated_at = now()
            WHERE ({_changes_sql("components", "EXCLUDED")}) <> '{{}}'::jsonb
            """
        ),
        {"scheme": scheme, "d": district},
    )
    inserted = conn.execute(
        text(
            """
            INSERT INTO component_history (component_id, actor, action, source)
            SELECT s.id, :actor, 'create', :src || '#' || s.row FROM _stage s
            WHERE NOT EXISTS (SELECT 1 FROM _old o WHERE o.id = s.id)
            """
        ),
        {"actor": actor, "src": source},
    ).rowcount
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
    total = conn.execute(text("SELECT count(*) FROM _stage")).scalar_one()
    return int(inserted or 0), int(updated or 0), int(total) - int(inserted or 0) - int(updated or 0)


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
    )
    progress("read", 1, 1)
    summary = ImportSummary(read=len(raw))
    with engine.connect() as conn:
        coverage = load_coverage(conn, opts.district)
    progress("check", 0, 1)
    result: ValidationResult = validate_components(
        raw,
        scheme=opts.scheme,
        catalogue=catalogue,
        district_code=coverage.district_code,
        coverage=coverage.geometry,
        coverage_bbox=coverage.bbox,
        today=today,
    )
    progress("check", 1, 1)
    accepted = result.accepted
    errors = [result.errors]
    geoms = _geometries(accepted)
    with engine.connect() as conn, conn.begin() as trans:
        sync_departments(conn, catalogue)
        conn.execute(
            text(
                """
                CREATE TEMP TABLE _stage (row int PRIMARY KEY, id text, class_code text, name text, main_dept text,
                    owner_dept text, maint_dept text, status text, initial_date date, change_date date,
                    data_source text, note text, attrs jsonb, geom geometry(Geometry, 4490)) ON COMMIT DROP
                """
            )
        )
        for start in range(0, len(accepted), CHUNK):
            stop = min(start + CHUNK, len(accepted))
            copy_rows(conn, "_stage", STAGE_COLUMNS, _stage_rows(accepted, geoms, start, stop))
            progress("stage", stop, len(accepted))
        conn.execute(text("CREATE INDEX ON _stage USING gist (geom); ANALYZE _stage"))
        errors.append(_refuse_same_place(conn, opts.scheme))
        all_errors = (
            pd.concat([e for e in errors if len(e)], ignore_index=True)
            if any(len(e) for e in errors)
            else (result.errors)
        )
        summary.errors = all_errors.sort_values(["row", "field"], kind="stable").reset_index(drop=True)
        summary.refused_rows = sorted(set(summary.errors["row"].astype(int)))
        summary.refused = len(summary.refused_rows)
        if opts.errors_path is not None and summary.refused:
            summary.errors_path = write_errors(summary.errors, opts.errors_path)
        if opts.dry_run or (opts.all_or_nothing and summary.refused):
            trans.rollback()
            return summary
        _note_given_serials(conn, coverage.district_code, opts.scheme)
        summary.generated_ids = _generate_ids(conn, coverage.district_code, opts.scheme)
        progress("write", 0, 1)
        summary.inserted, summary.updated, summary.unchanged = _write_stage(
            conn, opts.scheme, coverage.district_code, opts.actor, path.name
        )
        progress("write", 1, 1)
        trans.commit()
    summary.written = True
    return summary


# -- single-record operations (API) ---------------------------------------------------------------


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
     'updated_at', c.updated_at{extra}))
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
        raise NotFound(f"no component with identifier {component_id}")
    return dict(row)


def component_history(conn: Connection, component_id: str) -> list[dict[str, Any]]:
    exists = conn.execute(
        text("SELECT 1 FROM component_history WHERE component_id = :id LIMIT 1"), {"id": component_id}
    ).scalar()
    if not exists:
        raise NotFound(f"no component with identifier {component_id}")
    rows = conn.execute(
        text(
            "SELECT id, at, actor, action, changes, source FROM component_history "
            "WHERE component_id = :id ORDER BY at, id"
        ),
        {"id": component_id},
    ).mappings()
    return [{**r, "at": r["at"].isoformat()} for r in rows]


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
    x, y = to_storage(lon, lat, item.datum)  # type: ignore[arg-type]
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
    if len(result.errors):
        items = result.errors.drop(columns=["row"]).to_dict("records")
        first = items[0]
        raise InvalidInput(f"{first['field']}: {first['reason']}", detail=items)


def save_component(
    engine: Engine,
    catalogue: Catalogue,
    item: ComponentInput,
    *,
    scheme: str = "gbt47678",
    actor: str,
    expected_version: int | None = None,
    action: str = "create",
) -> dict[str, Any]:
    """Create (no id, or a new id) or update (existing id) one component; history written in the same transaction."""
    with engine.connect() as conn, conn.begin():
        coverage = load_coverage(conn)
        sync_departments(conn, catalogue)
        if item.id:
            current = conn.execute(
                text("SELECT version FROM components WHERE id = :id FOR UPDATE"), {"id": item.id}
            ).scalar()
            if action != "create" and current is None:
                raise NotFound(f"no component with identifier {item.id}")
            if expected_version is not None and current is not None and current != expected_version:
                raise Conflict(
                    f"component {item.id} was changed by someone else (version {current}, you sent "
                    f"{expected_version}); reload it and try again"
                )
            if action == "create" and current is not None:
                raise Conflict(f"component {item.id} already exists; update it with PATCH /components/{item.id}")
        result = validate_components(
            _raw_frame(item),
            scheme=scheme,
            catalogue=catalogue,
            district_code=coverage.district_code,
            coverage=coverage.geometry,
            coverage_bbox=coverage.bbox,
        )
        _refuse(result)
        accepted = result.accepted
        conn.execute(
            text(
                "CREATE TEMP TABLE _stage (row int PRIMARY KEY, id text, class_code text, name text, main_dept text,"
                " owner_dept text, maint_dept text, status text, initial_date date, change_date date,"
                " data_source text, note text, attrs jsonb, geom geometry(Geometry, 4490)) ON COMMIT DROP"
            )
        )
        copy_rows(conn, "_stage", STAGE_COLUMNS, _stage_rows(accepted, _geometries(accepted), 0, 1))
        if not item.id:
            dup = _refuse_same_place(conn, scheme)
            if len(dup):
                raise InvalidInput(dup["reason"].iloc[0], detail=dup.drop(columns=["row"]).to_dict("records"))
        _note_given_serials(conn, coverage.district_code, scheme)
        _generate_ids(conn, coverage.district_code, scheme)
        new_id = conn.execute(text("SELECT id FROM _stage")).scalar_one()
        _write_stage(conn, scheme, coverage.district_code, actor, "api")
        return get_component(conn, new_id)


def update_component(
    engine: Engine,
    catalogue: Catalogue,
    component_id: str,
    changes: dict[str, Any],
    *,
    actor: str,
    expected_version: int | None,
) -> dict[str, Any]:
    """PATCH: merge the changes onto the stored record, re-check it whole, write it with its history."""
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
    unknown = set(changes) - set(ComponentInput.__dataclass_fields__) - {"datum"}
    if unknown:
        raise InvalidInput(f"unknown field(s): {', '.join(sorted(unknown))}")
    if "class_code" in changes and changes["class_code"] != props["class_code"]:
        raise InvalidInput("class_code: a component's class is part of its identifier; retire it and create a new one")
    if ("lon" in changes) != ("lat" in changes):
        raise InvalidInput("lon/lat: a move needs both lon and lat")
    for key, value in changes.items():
        setattr(merged, key, value)
    if lon is None and "lon" not in changes:
        raise InvalidInput("geometry: only point components can be edited through this endpoint")
    return save_component(
        engine,
        catalogue,
        merged,
        scheme=props["scheme"],
        actor=actor,
        expected_version=expected_version,
        action="update",
    )


def retire_component(
    engine: Engine, component_id: str, *, actor: str, reason: str, expected_version: int | None = None
) -> dict[str, Any]:
    """Retire (移除): the record and its history stay; it leaves the active registry."""
    if not reason or not reason.strip():
        raise InvalidInput("reason: say why the component is retired")
    with engine.connect() as conn, conn.begin():
        row = conn.execute(
            text("SELECT version, status FROM components WHERE id = :id FOR UPDATE"), {"id": component_id}
        ).one_or_none()
        if row is None:
            raise NotFound(f"no component with identifier {component_id}")
        if expected_version is not None and row.version != expected_version:
            raise Conflict(f"component {component_id} was changed by someone else (version {row.version})")
        if row.status == "移除":
            raise Conflict(f"component {component_id} is already retired")
        conn.execute(
            text(
                "UPDATE components SET status = '移除', change_date = current_date, version = version + 1, "
                "updated_at = now() WHERE id = :id"
            ),
            {"id": component_id},
        )
        conn.execute(
            text(
                "INSERT INTO component_history (component_id, actor, action, changes, source) "
                "VALUES (:id, :actor, 'retire', jsonb_build_object('status', jsonb_build_array(:old, '移除')), :why)"
            ),
            {"id": component_id, "actor": actor, "old": row.status, "why": reason.strip()},
        )
        return get_component(conn, component_id)


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


def query_components(conn: Connection, q: ComponentQuery) -> tuple[list[dict[str, Any]], int]:
    """Filter components; with ``nearest`` the k closest (by metres, with ``distance_m``), else paged by id."""
    where, params = ["TRUE"], {}
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
            raise InvalidInput("tier_grid: a tier grid code has 9 (tier 1), 12 (tier 2) or 14 (tier 3) digits")
        params["tg"] = q.tier_grid
    if q.class_code:
        where.append("c.class_code = :cls")
        params["cls"] = q.class_code
    if q.department:
        where.append("(c.main_dept_code = :dep OR c.owner_dept_code = :dep OR c.maint_dept_code = :dep)")
        params["dep"] = q.department
    if q.status:
        if q.status not in STATUSES:
            raise InvalidInput(f"status: must be one of {'/'.join(STATUSES)}")
        where.append("c.status = :st")
        params["st"] = q.status
    point = None
    if q.near is not None:
        point = f"ST_SetSRID(ST_MakePoint({float(q.near[0])!r}, {float(q.near[1])!r}), {STORAGE_SRID})::geography"
    if q.radius_m is not None:
        if point is None:
            raise InvalidInput("radius_m: a radius needs lon and lat")
        where.append(f"ST_DWithin(c.geom::geography, {point}, :r)")
        params["r"] = float(q.radius_m)
    cond = " AND ".join(where)
    if q.nearest is not None:
        if point is None:
            raise InvalidInput("nearest: nearest-k needs lon and lat")
        # The geography KNN operator walks the functional GiST index: no table scan, exact metres after.
        sql = f"""
            SELECT {_feature_sql(f", 'distance_m', round(ST_Distance(c.geom::geography, {point})::numeric, 2)")}
            {_FROM} WHERE {cond} ORDER BY c.geom::geography <-> {point} LIMIT :limit
        """
        rows = conn.execute(text(sql), {**params, "limit": q.nearest}).scalars().all()
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
    """The component catalogue with the city's extra files (those not about events or routing)."""
    extra = [p for p in settings.catalogue_extra if not any(k in p.name.lower() for k in ("event", "limit", "rout"))]
    return load_catalogue(settings, extra)


def export_components(conn: Connection, out: Path, *, fmt: str | None, encoding: str, crs: str | None) -> list[Path]:
    """Components to GPKG / Shapefile / GeoJSON / CSV, like the grid exports."""
    gdf = gpd.read_postgis(
        text(
            """
            SELECT c.id, c.scheme, c.class_code, c.name, c.status, c.unit_grid_code, c.street_code,
                   c.community_code, c.main_dept_code, c.owner_dept_code, c.maint_dept_code,
                   c.initial_date, c.change_date, c.data_source, c.note, c.geom
            FROM components c ORDER BY c.id
            """
        ),
        conn,
        geom_col="geom",
    ).rename_geometry("geometry")
    if gdf.empty:
        raise InvalidInput("no components are stored; nothing to export")
    for col in ("initial_date", "change_date"):
        gdf[col] = gdf[col].astype(str).replace({"None": None, "NaT": None})
    return write_layer(gdf, out, fmt=fmt, layer="components", crs=crs, encoding=encoding)  # type: ignore[arg-type]
