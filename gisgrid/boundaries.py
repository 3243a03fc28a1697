"""Reading and checking administrative boundaries: districts (区/县), streets (街道/乡镇), communities (社区/村).

``read_boundaries(path, opts)`` reads any vector file GDAL reads (GeoJSON, Shapefile, GeoPackage, the CSV with
WKT of ``gisgrid.vectorio`` …) and returns a ``BoundarySet``: ``units``, one row per unit in EPSG:4490 sorted by
code, with the columns ``UNIT_COLUMNS`` (code, name, level, parent_code, district/street/community code and
name), ``synthesised`` (True for a district made from its streets), ``code_assigned`` (True for a unit numbered
by ``assign_codes``) and a MultiPolygon geometry; and ``report``,
a ``BoundaryReport`` of what was assigned, repaired, synthesised and found wrong. Rows in messages are counted
from 1 in file order.

Codes
-----
Full codes follow the unit-grid code layout: district 6 digits (GB/T 2260), street 9 = district + 3,
community 12 = street + 3. The code field may hold the full code or the 3-digit local code, which is then
appended to the parent's code. The parent comes, in this order, from the parent field, the prefix of a full
code, ``district_code`` (streets, or a 3-digit street part of a community's parent), or — when the parents are
in the same file — the parent whose polygon contains the unit's representative point.

``assign_codes`` numbers the units without a code 001, 002 … per parent, skipping local codes already in use,
in a stable order: by representative point (``shapely.point_on_surface``, always inside the polygon) from north
to south, then west to east for equal latitudes (rounded to 1e-7°, ~1 cm), then file order. The same file —
even with its rows reordered — therefore always gets the same codes. District codes are never invented.
Numbered codes are provisional (临时编码), not official ones: the unit's ``code_assigned`` is True, the report lists
them, and ``provisional`` tells which unit or grid codes contain such a part. ``check_recode`` checks an official
code that is to replace a stored one (``gisgrid boundaries recode``: same level, same parent).

If streets reference a district that is not in the file, the district is synthesised as the union of its
streets (named by ``district_name`` or the most common value of ``parent_name_field``) and the report says so.

CRS
---
``src_crs`` overrides the file's CRS. ``src_datum`` gcj02/bd09 declares lon/lat in a Chinese web-map datum and
converts it with ``gisgrid.geodesy``; wgs84/cgcs2000 are taken as they are. Without CRS or option, lon/lat
coordinates are taken as CGCS2000 and anything else (|x| > 180 or |y| > 90) is refused.

Geometry
--------
Only Polygon/MultiPolygon are accepted (Z dropped); empty geometries, points and lines are refused naming the
rows. Invalid polygons are repaired with ``shapely.make_valid`` keeping the polygonal parts, and listed in the
report with ``shapely.is_valid_reason``. Every unit comes out as a MultiPolygon.

A numeric code field (e.g. GeoJSON numbers) has lost leading zeros, so its values 1–999 are read as local
codes 001–999 (noted in the report).

Topology report
---------------
Areas are computed in the CGCS2000 3° Gauss–Krüger zone of the set's centre, by the cut's own rule
(``cutting.choose_metric_crs``: EPSG 4534 + floor((lon − 75)/3 + 0.5), i.e. EPSG:4548 for Beijing; UTM outside
China). Reported, not fixed: the part of a unit outside its parent (when the parent is in the file and not
synthesised), overlaps between units of the same level (siblings, and also cousins under different parents,
which would otherwise go unnoticed), and gaps: the parent minus the union of its children. Pieces below
``NOISE_AREA_M2`` (1 m²) are numerical noise and ignored.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from gisgrid import geodesy, vectorio
from gisgrid.constants import STORAGE_CRS
from gisgrid.errors import InvalidInput, Reason
from gisgrid.geodesy import SWAP_IN_FILE
from gisgrid.grids.cutting import choose_metric_crs

Level = Literal["district", "street", "community"]
LEVELS: tuple[Level, ...] = get_args(Level)
CODE_LENGTH: dict[str, int] = {"district": 6, "street": 9, "community": 12}
PARENT_LEVEL: dict[str, Level] = {"street": "district", "community": "street"}
#: Each level's zh-CN name, for messages naming a unit ("街道 110101001 东华门街道 …").
LEVEL_ZH: dict[str, str] = {"district": "区", "street": "街道", "community": "社区"}
LOCAL_CODE_LENGTH = 3
NOISE_AREA_M2 = 1.0
LARGEST_GAP_PIECES = 3
_MAX_ROWS_IN_MESSAGE = 8

#: Level-field values understood besides the English names.
LEVEL_ALIASES: dict[str, Level] = {
    "district": "district",
    "county": "district",
    "区": "district",
    "县": "district",
    "区县": "district",
    "县区": "district",
    "市辖区": "district",
    "县级市": "district",
    "旗": "district",
    "street": "street",
    "subdistrict": "street",
    "town": "street",
    "township": "street",
    "街道": "street",
    "乡镇": "street",
    "街镇": "street",
    "镇": "street",
    "乡": "street",
    "苏木": "street",
    "community": "community",
    "village": "community",
    "社区": "community",
    "村": "community",
    "居委会": "community",
    "村委会": "community",
    "社区居委会": "community",
    "嘎查": "community",
}

UNIT_COLUMNS = [
    "code",
    "name",
    "level",
    "parent_code",
    "district_code",
    "street_code",
    "community_code",
    "district_name",
    "street_name",
    "community_name",
]


#: The code fields looked for when none is named (``--code-field`` left at its default, the first): ``adcode`` is the
#: field of DataV / AMap boundary files (阿里云 DataV.GeoAtlas, 高德), matched without regard to case as a Shapefile's
#: ADCODE is.
DEFAULT_CODE_FIELDS = ("code", "adcode")


@dataclass
class BoundaryOptions:
    layer: str | None = None
    level: Level | None = None  # all features at this level
    code_field: str = "code"
    name_field: str = "name"
    level_field: str = "level"
    parent_field: str = "parent_code"
    parent_name_field: str = "parent_name"  # names a synthesised parent district
    assign_codes: bool = False
    src_crs: str | None = None  # e.g. "EPSG:4547"
    src_datum: geodesy.Datum | None = None  # wgs84|cgcs2000|gcj02|bd09 (lon/lat inputs)
    district_code: str | None = None  # parent district for street files without a parent field (e.g. 110101)
    district_name: str | None = None
    src_encoding: str | None = None  # text encoding of a Shapefile/CSV (default: .cpg, language driver, UTF-8/GB18030)


# ---------------------------------------------------------------- report


@dataclass
class RepairedGeometry:
    code: str
    name: str
    reason: str


@dataclass
class SynthesisedUnit:
    code: str
    name: str | None
    level: str
    children: int


@dataclass
class AssignedCode:
    code: str
    name: str
    level: str


@dataclass
class OutsideParent:
    code: str
    name: str
    parent_code: str
    parent_name: str
    area_m2: float
    share: float  # of the unit's own area


@dataclass
class Overlap:
    code_a: str
    name_a: str
    code_b: str
    name_b: str
    area_m2: float


@dataclass
class GapPiece:
    area_m2: float
    lon: float  # a point inside the piece, to find it on a map
    lat: float


@dataclass
class Gap:
    parent_code: str
    parent_name: str
    area_m2: float
    pieces: int
    largest: list[GapPiece] = field(default_factory=list)


@dataclass
class BoundaryReport:
    source: str
    layer: str | None = None
    source_crs: str = ""
    datum: str | None = None
    metric_crs: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    repaired: list[RepairedGeometry] = field(default_factory=list)
    synthesised: list[SynthesisedUnit] = field(default_factory=list)
    assigned: list[AssignedCode] = field(default_factory=list)
    outside: list[OutsideParent] = field(default_factory=list)
    overlaps: list[Overlap] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def topology_ok(self) -> bool:
        return not (self.outside or self.overlaps or self.gaps)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_text(self) -> str:
        shown_layer = self.layer and self.layer != Path(self.source).stem
        lines = [f"source {self.source}" + (f" layer {self.layer}" if shown_layer else "")]
        lines.append(
            f"CRS {self.source_crs}"
            + (f", datum {self.datum}" if self.datum else "")
            + f" → {STORAGE_CRS}; areas in {self.metric_crs}"
        )
        lines.append("units: " + ", ".join(f"{level} {n}" for level, n in self.counts.items()))
        lines += [f"warning: {w}" for w in self.warnings]
        lines += [f"note: {note}" for note in self.notes]
        if self.assigned:
            lines.append(
                f"assigned {len(self.assigned)} codes (north→south, then west→east, per parent): "
                "临时编码 provisional, not official codes — replace them when the official ones are known "
                "(gisgrid boundaries recode OLD NEW)"
            )
            lines += [f"临时编码 provisional {a.code} {a.name} ({a.level})" for a in self.assigned]
        for s in self.synthesised:
            lines.append(
                f"synthesised {s.level} {s.code} {s.name or '(no name)'} as the union of {s.children} children"
            )
        for r in self.repaired:
            lines.append(f"repaired {r.code} {r.name}: {r.reason}")
        for o in self.outside:
            lines.append(
                f"outside {o.code} {o.name} → parent {o.parent_code} {o.parent_name}: "
                f"{o.area_m2:.1f} m² ({o.share:.1%} of the unit)"
            )
        for v in self.overlaps:
            lines.append(f"overlap {v.code_a} {v.name_a} × {v.code_b} {v.name_b}: {v.area_m2:.1f} m²")
        for g in self.gaps:
            largest = "; ".join(f"{p.area_m2:.1f} m² at ({p.lon:.6f}, {p.lat:.6f})" for p in g.largest)
            lines.append(
                f"gap in {g.parent_code} {g.parent_name}: {g.area_m2:.1f} m² in {g.pieces} piece(s); largest {largest}"
            )
        if self.topology_ok:
            lines.append(f"topology: no overlaps, gaps or parts outside parents above {NOISE_AREA_M2:g} m²")
        return "\n".join(lines)


@dataclass
class BoundarySet:
    units: gpd.GeoDataFrame
    report: BoundaryReport


def provisional(codes: pd.Series, assigned: set[str]) -> pd.Series:
    """Whether each unit or grid code contains a part numbered by ``assign_codes`` (``assigned``: the units'
    codes with ``code_assigned``): its street (first 9 digits) or community (first 12) part. District codes are
    never numbered. The stored grids are answered the same way in SQL (``gisgrid.grids.store.PROVISIONAL``)."""
    text = codes.astype(str)
    return text.str[: CODE_LENGTH["street"]].isin(assigned) | text.str[: CODE_LENGTH["community"]].isin(assigned)


def check_recode(old: str, level: str, new: str) -> None:
    """Refuse a replacement code ``new`` for the stored ``level`` unit ``old`` (``gisgrid boundaries recode``) that
    is not a code of the same level under the same parent: digits only, as long as ``old``, its parent part (the
    first 6 digits of a street, 9 of a community) equal to ``old``'s and a local part other than 000. A recode
    renames a unit in place; moving it under another parent is a boundary change, not a code correction."""
    n = CODE_LENGTH[level]
    if not (new.isascii() and new.isdigit()):
        raise InvalidInput(f"new code {new!r}: codes are digits only", reason=Reason.CODE_MALFORMED)
    if len(new) != n:
        raise InvalidInput(
            f"new code {new} has {len(new)} digits but {old} is a {level} ({n} digits): a recode keeps the level",
            reason=Reason.CODE_OTHER_LEVEL,
        )
    plen = n - LOCAL_CODE_LENGTH
    if new[:plen] != old[:plen]:
        parent = PARENT_LEVEL[level]
        raise InvalidInput(
            f"new code {new} is under {parent} {new[:plen]} but {old} is under {parent} {old[:plen]}: a recode "
            f"keeps the parent (recode the {parent} first if its code is the provisional part)",
            reason=Reason.CODE_OTHER_PARENT,
        )
    if new[plen:] == "0" * LOCAL_CODE_LENGTH:
        raise InvalidInput(f"new code {new}: local code 000 is not allowed", reason=Reason.CODE_MALFORMED)


# ---------------------------------------------------------------- helpers


class _Rows:
    """Names rows in messages as 'row 3 (东华门街道)' (rows counted from 1 in file order)."""

    def __init__(self, where: str, names: pd.Series) -> None:
        self.where = where
        self.names = names

    def label(self, i: int) -> str:
        name = self.names.iloc[i]
        return f"row {i + 1}" + (f" ({name})" if isinstance(name, str) and name else "")

    def refuse(
        self,
        mask: np.ndarray | pd.Series,
        problem: str,
        hint: str = "",
        values: pd.Series | None = None,
        **detail: Any,
    ) -> None:
        """Raise InvalidInput naming the rows in ``mask`` (with their ``values`` if given); no-op if none."""
        positions = np.flatnonzero(np.asarray(mask, dtype=bool))
        if positions.size == 0:
            return
        labels = [self.label(int(i)) for i in positions[:_MAX_ROWS_IN_MESSAGE]]
        if values is not None:
            shown_values = [values.iloc[int(i)] for i in positions[: len(labels)]]
            labels = [lab if v is None else f"{lab} {v!r}" for lab, v in zip(labels, shown_values, strict=True)]
            detail["values"] = [values.iloc[int(i)] for i in positions]
        shown = ", ".join(labels)
        more = f" and {positions.size - _MAX_ROWS_IN_MESSAGE} more" if positions.size > _MAX_ROWS_IN_MESSAGE else ""
        raise InvalidInput(
            f"{self.where}: {shown}{more}: {problem}" + (f"; {hint}" if hint else ""),
            detail={"rows": (positions + 1).tolist(), **detail},
        )


def _normalise_codes(series: pd.Series) -> pd.Series:
    """Codes as digit strings (None when missing). Numeric fields lose leading zeros, so 1–999 → 001–999."""
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        values = pd.to_numeric(series, errors="coerce")
        integral = values.notna() & (values == np.floor(values))
        out = pd.Series(None, index=series.index, dtype=object)
        ints = values[integral].astype(np.int64)
        out[integral] = ints.astype(str).where(ints >= 1000, ints.astype(str).str.zfill(LOCAL_CODE_LENGTH))
        out[values.notna() & ~integral] = values[values.notna() & ~integral].astype(str)
        return out
    return _clean_text(series)


def _clean_text(series: pd.Series) -> pd.Series:
    """Stripped strings, None for missing or blank values."""
    text = series.astype(object).where(series.notna(), None)
    text = text.map(lambda v: v if v is None else str(v).strip())
    return text.where(text.astype(bool), None)


def _metric_crs(bounds: np.ndarray) -> CRS:
    """The zone the cut picks (``choose_metric_crs``, one rule for both) for the centre of ``bounds``."""
    return choose_metric_crs(float(bounds[0] + bounds[2]) / 2, float(bounds[1] + bounds[3]) / 2)


def _polygonal(geoms: np.ndarray) -> np.ndarray:
    """MultiPolygon of the polygonal parts of each geometry (empty MultiPolygon when there are none)."""
    parts, idx = shapely.get_parts(geoms, return_index=True)
    sub, sub_idx = shapely.get_parts(parts, return_index=True)  # make_valid may nest multi-parts
    keep = shapely.get_type_id(sub) == 3
    sub, owner = sub[keep], idx[sub_idx][keep]
    out = np.array([shapely.MultiPolygon()] * len(geoms), dtype=object)
    if sub.size:
        present, dense = np.unique(owner, return_inverse=True)
        out[present] = shapely.multipolygons(sub, indices=dense)
    return out


def _lon_lat_bounds_ok(geoms: np.ndarray) -> tuple[bool, np.ndarray]:
    bounds = shapely.total_bounds(geoms)
    return bool(np.all(np.abs(bounds[[0, 2]]) <= 180) and np.all(np.abs(bounds[[1, 3]]) <= 90)), bounds


# ---------------------------------------------------------------- reading


def read_boundaries(path: Path, opts: BoundaryOptions) -> BoundarySet:
    """Read, code, repair and check an administrative boundary file (see the module docstring)."""
    path = Path(path)
    is_csv = path.suffix.lower() == ".csv"
    layer = None if is_csv else vectorio.resolve_layer(path, opts.layer)
    where = path.name + (f" layer {layer!r}" if opts.layer else "")
    read_notes: list[str] = []
    raw = vectorio.read_layer_any(path, layer, csv_crs=None, encoding=opts.src_encoding, notes=read_notes)
    if raw.empty:
        raise InvalidInput(f"{where}: no features: the file is empty", detail={"path": str(path)})
    report = BoundaryReport(source=path.name, layer=layer, datum=opts.src_datum)
    report.warnings += read_notes

    columns = [c for c in raw.columns if c != raw.geometry.name]
    if opts.name_field not in columns:
        raise InvalidInput(
            f"{where}: no name field {opts.name_field!r} (fields: {', '.join(columns)}); pass --name-field FIELD",
            detail={"fields": columns},
        )
    default_field = opts.code_field == DEFAULT_CODE_FIELDS[0]
    if default_field and opts.code_field not in columns:
        alias = next((c for c in columns if str(c).lower() in DEFAULT_CODE_FIELDS[1:]), None)
        if alias is not None:
            opts = dataclasses.replace(opts, code_field=alias)
            report.notes.append(f"codes read from field {alias!r} (no field 'code'; --code-field names another)")
    has_code = opts.code_field in columns
    if not has_code and not opts.assign_codes:
        tried = " or ".join(repr(f) for f in DEFAULT_CODE_FIELDS) if default_field else repr(opts.code_field)
        raise InvalidInput(
            f"{where}: no code field {tried} (fields: {', '.join(columns)}); pass --code-field FIELD "
            "if the codes are in another field, or --assign-codes to number the units",
            detail={"fields": columns},
        )
    names = _clean_text(raw[opts.name_field])
    rows = _Rows(where, names)
    rows.refuse(names.isna().to_numpy(), f"empty name in field {opts.name_field!r}", "every unit needs a name")

    geoms = _check_geometry_types(raw, rows)
    geoms, report.source_crs = _to_storage(geoms, raw.crs, opts, where, report.warnings)
    geoms, repaired = _repair(geoms, rows)

    t = pd.DataFrame({"name": names.astype(object), "row": np.arange(len(raw))})
    t["raw_code"] = _normalise_codes(raw[opts.code_field]) if has_code else None
    if has_code and pd.api.types.is_numeric_dtype(raw[opts.code_field]) and (t["raw_code"].str.len() == 3).any():
        report.notes.append(f"code field {opts.code_field!r} is numeric: values 1–999 read as local codes 001–999")
    t["raw_parent"] = _normalise_codes(raw[opts.parent_field]) if opts.parent_field in columns else None
    t["level"] = _levels(raw, t, opts, rows)
    reps = shapely.point_on_surface(geoms)
    t["lon"], t["lat"] = shapely.get_x(reps), shapely.get_y(reps)
    t["geometry"] = geoms

    _validate_codes(t, opts, rows)
    t["code"] = None
    t["parent"] = None
    t["code_assigned"] = False
    _code_districts(t, opts, rows)
    for level in ("street", "community"):
        _code_level(t, level, opts, rows, report)
    _refuse_duplicates(t, rows)

    parent_names = raw[opts.parent_name_field] if opts.parent_name_field in columns else None
    units = _assemble(t, opts, parent_names, report)
    report.repaired = [
        RepairedGeometry(str(t["code"].iloc[i]), str(t["name"].iloc[i]), reason) for i, reason in repaired
    ]
    report.counts = {lvl: int((units["level"] == lvl).sum()) for lvl in LEVELS if (units["level"] == lvl).any()}
    _topology(units, report)
    return BoundarySet(units=units, report=report)


def _check_geometry_types(raw: gpd.GeoDataFrame, rows: _Rows) -> np.ndarray:
    geoms = shapely.force_2d(np.asarray(raw.geometry.values, dtype=object))
    rows.refuse(shapely.is_missing(geoms) | shapely.is_empty(geoms), "empty geometry", "every unit needs a polygon")
    polygonal = np.isin(shapely.get_type_id(geoms), (3, 6))
    if not polygonal.all():
        kinds = sorted(set(raw.geometry[~polygonal].geom_type))
        rows.refuse(
            ~polygonal,
            f"not a polygon ({', '.join(kinds)})",
            "boundaries must be Polygon or MultiPolygon",
            geometry_types=kinds,
        )
    return geoms


def not_lon_lat_hint(bounds: np.ndarray) -> str:
    """What to do about a file whose coordinates (``bounds`` as given: xmin, ymin, xmax, ymax) are not lon/lat
    while it has no CRS, or a lon/lat one: the CRS the eastings' zone number names, or that X and Y look swapped,
    as the component import says it (:func:`gisgrid.geodesy.projected_crs_hint`)."""
    return geodesy.projected_crs_hint(bounds[[0, 2]], bounds[[1, 3]], swap=SWAP_IN_FILE)


def _to_storage(
    geoms: np.ndarray, file_crs: Any, opts: BoundaryOptions, where: str, warnings: list[str]
) -> tuple[np.ndarray, str]:
    """Geometries in EPSG:4490 and a description of the source CRS; a datum shift PROJ can only guess at (Beijing
    1954, Xian 1980) is added to ``warnings``."""
    try:
        crs = CRS.from_user_input(opts.src_crs or file_crs) if (opts.src_crs or file_crs) else None
    except CRSError as exc:
        raise InvalidInput(f"{where}: unknown CRS {opts.src_crs!r} ({exc})", detail={"crs": opts.src_crs}) from exc
    described = crs.to_string() if crs is not None else "none (lon/lat taken as CGCS2000)"
    given_bounds = shapely.total_bounds(geoms)
    datum = opts.src_datum
    if datum is not None:
        if datum not in geodesy.DATUMS:
            raise InvalidInput(f"{where}: unknown datum {datum!r}: expected one of {', '.join(geodesy.DATUMS)}")
        if crs is not None and not crs.is_geographic:
            raise InvalidInput(
                f"{where}: --src-datum {datum} means lon/lat coordinates, but the CRS {described} is projected"
            )
        ok, bounds = _lon_lat_bounds_ok(geoms)
        if not ok:
            raise InvalidInput(f"{where}: --src-datum {datum} given but coordinates are not lon/lat {bounds}")
        if datum in ("gcj02", "bd09"):
            # Densified first: an edge straight in GCJ-02/BD-09 is curved in CGCS2000, by metres over a few km
            # (a T-junction on a neighbour's long edge would part or overlap); see geodesy.DENSIFY_DEG.
            geoms = geodesy.transform_geometries(geodesy.densify_lonlat(geoms), datum)
    elif crs is not None:
        if crs.is_projected:
            _check_declared_crs(geoms, crs, where, described)
            # Densified first, so a long edge follows its true course in lon/lat (see geodesy.DENSIFY_DEG).
            geoms = geodesy.densify_projected(geoms, crs)
        ballpark = geodesy.ballpark_datum_warning(crs, where)
        if ballpark:
            warnings.append(ballpark)
        geoms = gpd.GeoSeries(geoms, crs=crs).to_crs(STORAGE_CRS).values
    else:
        ok, bounds = _lon_lat_bounds_ok(geoms)
        if not ok:
            raise InvalidInput(
                f"{where}: the file has no CRS and its coordinates are not lon/lat "
                f"(bounds {np.round(bounds, 1).tolist()}); {not_lon_lat_hint(bounds)}",
                detail={"bounds": bounds.tolist()},
            )
    geoms = np.asarray(geoms, dtype=object)
    ok, bounds = _lon_lat_bounds_ok(geoms)
    if not ok:
        raise InvalidInput(
            f"{where}: coordinates are not lon/lat in the declared CRS {described} "
            f"(bounds {np.round(bounds, 1).tolist()}): the CRS is probably wrong; {not_lon_lat_hint(given_bounds)}"
        )
    return geoms, described


def _check_declared_crs(geoms: np.ndarray, crs: CRS, where: str, described: str) -> None:
    """Refuse coordinates that cannot be in the declared projected CRS: outside its area of use, in its own units
    (the usual case: lon/lat numbers in a file labelled EPSG:4547 would land at the equator, 0 m² each). Said with
    the likely cause: X and Y swapped when swapped they lie in its area of use (survey tables write X = north), or
    the zone the eastings' number names (:func:`gisgrid.geodesy.projected_crs_hint`)."""
    area = geodesy.projected_area_of_use(crs)
    if area is None:
        return
    x0, y0, x1, y1 = area
    xmin, ymin, xmax, ymax = (float(v) for v in shapely.total_bounds(geoms))
    if x0 <= xmin and xmax <= x1 and y0 <= ymin and ymax <= y1:
        return
    degrees = abs(xmin) <= 180 and abs(xmax) <= 180 and abs(ymin) <= 90 and abs(ymax) <= 90
    looks = "look like lon/lat degrees, and " if degrees else ""
    if x0 <= ymin and ymax <= x1 and y0 <= xmin and xmax <= y1:
        cause = (
            f"X and Y look swapped (swapped, they lie in its area of use; survey tables write X = northing): swap "
            f"them ({SWAP_IN_FILE})"
        )
    else:
        hint = geodesy.projected_crs_hint([xmin, xmax], [ymin, ymax], swap=SWAP_IN_FILE)
        cause = (
            "the CRS is probably wrong: pass --src-crs with the real one (EPSG:4490 for CGCS2000 lon/lat)"
            if hint == geodesy.GENERIC_CRS_HINT
            else f"the CRS is probably wrong: {hint}"
        )
    raise InvalidInput(
        f"{where}: coordinates (x {xmin:.6g}..{xmax:.6g}, y {ymin:.6g}..{ymax:.6g}) {looks}lie outside the area of "
        f"use of the declared CRS {described} ({crs.name}: x {x0:.0f}..{x1:.0f}, y {y0:.0f}..{y1:.0f}); {cause}",
        detail={"bounds": [xmin, ymin, xmax, ymax], "crs": described},
    )


def _repair(geoms: np.ndarray, rows: _Rows) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """make_valid on invalid polygons, keeping polygonal parts; all results as MultiPolygon."""
    invalid = ~shapely.is_valid(geoms)
    repaired: list[tuple[int, str]] = []
    if invalid.any():
        reasons = shapely.is_valid_reason(geoms[invalid])
        fixed = _polygonal(shapely.make_valid(geoms[invalid]))
        collapsed = np.zeros(len(geoms), dtype=bool)
        collapsed[invalid] = shapely.is_empty(fixed)
        rows.refuse(collapsed, "invalid polygon with no area left after repair", "redraw it")
        geoms = geoms.copy()
        geoms[invalid] = fixed
        repaired = [(int(i), str(r)) for i, r in zip(np.flatnonzero(invalid), reasons, strict=True)]
    return _polygonal(geoms), repaired


def _levels(raw: gpd.GeoDataFrame, t: pd.DataFrame, opts: BoundaryOptions, rows: _Rows) -> pd.Series:
    if opts.level is not None:
        if opts.level not in LEVELS:
            raise InvalidInput(f"{rows.where}: unknown level {opts.level!r}: expected {', '.join(LEVELS)}")
        return pd.Series(opts.level, index=t.index, dtype=object)
    by_length = {v: k for k, v in CODE_LENGTH.items()}
    from_code = t["raw_code"].str.len().map(by_length)
    if opts.level_field in raw.columns:
        values = _clean_text(raw[opts.level_field])
        levels = values.str.lower().map(LEVEL_ALIASES)
        rows.refuse(
            (values.notna() & levels.isna()).to_numpy(),
            f"level field {opts.level_field!r} holds an unknown value",
            f"use {', '.join(LEVELS)} (or 区/街道/社区)",
            values=values,
        )
        levels = levels.where(values.notna(), from_code)  # a blank level falls back to the code length
    else:
        levels = from_code
    rows.refuse(
        levels.isna().to_numpy(),
        "cannot tell the level: no level value and the code is missing or not 6/9/12 digits long",
        f"pass --level or fill the level field {opts.level_field!r}",
        values=t["raw_code"],
    )
    return levels.astype(object)


def _validate_codes(t: pd.DataFrame, opts: BoundaryOptions, rows: _Rows) -> None:
    code = t["raw_code"]
    present = code.notna()
    rows.refuse(
        (present & ~code.str.fullmatch(r"\d+").fillna(False)).to_numpy(dtype=bool),
        f"code in field {opts.code_field!r} is not numeric",
        "codes are digits only",
        values=code,
    )
    full_len = t["level"].map(CODE_LENGTH)
    length = code.str.len()
    local_ok = (t["level"] != "district") & (length == LOCAL_CODE_LENGTH)
    for level, n in CODE_LENGTH.items():
        bad = present & (t["level"] == level) & (length != n) & ~local_ok
        allowed = f"{n} digits" + ("" if level == "district" else f" (full) or {LOCAL_CODE_LENGTH} (local)")
        rows.refuse(
            bad.to_numpy(dtype=bool), f"wrong code length for a {level}: a {level} code has {allowed}", values=code
        )
    rows.refuse(
        (present & (length == LOCAL_CODE_LENGTH) & (code == "000")).to_numpy(dtype=bool),
        "local code 000 is not allowed",
        "local codes start at 001",
    )
    t["is_full"] = present & (length == full_len)

    if opts.district_code is not None and not (
        opts.district_code.isdigit() and len(opts.district_code) == CODE_LENGTH["district"]
    ):
        raise InvalidInput(f"--district-code {opts.district_code!r} is not a 6-digit district code (GB/T 2260)")
    parent = t["raw_parent"]
    has_parent = parent.notna() & (t["level"] != "district")
    rows.refuse(
        (has_parent & ~parent.str.fullmatch(r"\d+").fillna(False)).to_numpy(dtype=bool),
        f"parent code in field {opts.parent_field!r} is not numeric",
        values=parent,
    )
    plen = parent.str.len()
    street_bad = has_parent & (t["level"] == "street") & (plen != CODE_LENGTH["district"])
    rows.refuse(
        street_bad.to_numpy(dtype=bool), "a street's parent code must be its 6-digit district code", values=parent
    )
    community_local = has_parent & (t["level"] == "community") & (plen == LOCAL_CODE_LENGTH)
    if community_local.any() and opts.district_code is None:
        rows.refuse(
            community_local.to_numpy(dtype=bool),
            "the parent code is a 3-digit local street code",
            "pass --district-code to complete it, or put the 9-digit street code in the parent field",
        )
    community_bad = (
        has_parent & (t["level"] == "community") & (plen != CODE_LENGTH["street"]) & (plen != LOCAL_CODE_LENGTH)
    )
    rows.refuse(
        community_bad.to_numpy(dtype=bool), "a community's parent code must be its 9-digit street code", values=parent
    )
    declared = parent.where(has_parent, None)
    declared = declared.where(~community_local, (opts.district_code or "") + parent.fillna(""))
    if opts.district_code is not None:
        declared = declared.where(declared.notna() | (t["level"] != "street"), opts.district_code)
    t["declared_parent"] = declared

    # A full code must agree with its declared parent and with --district-code.
    prefix = code.str[: CODE_LENGTH["district"]].where(t["level"] == "street", code.str[: CODE_LENGTH["street"]])
    mismatch = t["is_full"] & declared.notna() & (prefix != declared)
    rows.refuse(
        mismatch.to_numpy(dtype=bool),
        "the code does not start with its parent's code",
        f"check the field {opts.parent_field!r}" + (" and --district-code" if opts.district_code else ""),
        values=code + " under " + declared.fillna(""),
    )
    if opts.district_code is not None:
        off = t["is_full"] & (t["level"] != "district") & (code.str[:6] != opts.district_code)
        rows.refuse(
            off.to_numpy(dtype=bool),
            f"the code is not in district {opts.district_code} (--district-code)",
            values=code,
        )


def _code_districts(t: pd.DataFrame, opts: BoundaryOptions, rows: _Rows) -> None:
    districts = t["level"] == "district"
    t.loc[districts, "code"] = t.loc[districts, "raw_code"]
    missing = districts & t["code"].isna()
    if missing.any():
        if opts.assign_codes and opts.district_code is not None and missing.sum() == 1:
            t.loc[missing, "code"] = opts.district_code
            return
        rows.refuse(
            missing.to_numpy(),
            "district without a code",
            "district codes are GB/T 2260 administrative codes and cannot be invented: "
            "put them in the code field, or pass --district-code for a file with one district",
        )


def _code_level(t: pd.DataFrame, level: str, opts: BoundaryOptions, rows: _Rows, report: BoundaryReport) -> None:
    at = t["level"] == level
    if not at.any():
        return
    parent_level = PARENT_LEVEL[level]
    plen = CODE_LENGTH[parent_level]
    code = t["raw_code"]
    parent = t["declared_parent"].where(at, None)
    parent = parent.where(parent.notna() | ~t["is_full"], code.str[:plen])
    # Spatial fallback: the parent in the file whose polygon holds the representative point.
    orphans = at & parent.isna()
    parents_here = t["level"] == parent_level
    if orphans.any() and parents_here.any():
        tree = shapely.STRtree(t.loc[parents_here, "geometry"].to_numpy())
        points = shapely.points(t.loc[orphans, ["lon", "lat"]].to_numpy())
        child_i, parent_i = tree.query(points, predicate="within")
        first = np.unique(child_i, return_index=True)[1]  # first container per child, deterministic
        found = t.index[orphans][child_i[first]]
        parent.loc[found] = t.loc[parents_here, "code"].to_numpy()[parent_i[first]]
        n_found = len(found)
        if n_found:
            report.notes.append(f"{n_found} {level} unit(s) placed in their {parent_level} by location")
    hint = {
        "street": "add a parent_code field, use full 9-digit codes, or pass --district-code",
        "community": "add a parent_code field with the 9-digit street code, or use full 12-digit codes",
    }[level]
    rows.refuse((at & parent.isna()).to_numpy(dtype=bool), f"no parent {parent_level} found for this {level}", hint)
    t.loc[at, "parent"] = parent[at]

    local = at & code.notna() & ~t["is_full"]
    t.loc[at & t["is_full"], "code"] = code[at & t["is_full"]]
    t.loc[local, "code"] = parent[local] + code[local]
    missing = at & code.isna()
    if not missing.any():
        return
    if not opts.assign_codes:
        rows.refuse(missing.to_numpy(), f"empty code in field {opts.code_field!r}", "fill it or pass --assign-codes")
    _assign(t, missing, level, report)


def _assign(t: pd.DataFrame, missing: pd.Series, level: str, report: BoundaryReport) -> None:
    """Number ``missing`` rows 001… per parent: north→south, west→east, file order; skip used codes."""
    todo = t.loc[missing]
    order = np.lexsort((todo["row"], np.round(todo["lon"], 7), -np.round(todo["lat"], 7)))
    todo = todo.iloc[order]
    rank = todo.groupby("parent", sort=False).cumcount().to_numpy()
    used = t.loc[t["code"].notna() & (t["level"] == level)].groupby("parent")["code"].agg(lambda s: set(s.str[-3:]))
    codes = np.empty(len(todo), dtype=object)
    for parent, positions in todo.groupby("parent", sort=False).indices.items():  # loop over parents only
        taken = used.get(parent, set())
        free = [f"{n:03d}" for n in range(1, 1000) if f"{n:03d}" not in taken]
        if len(positions) > len(free):
            raise InvalidInput(f"{len(positions)} {level} units under {parent} but only {len(free)} codes left")
        codes[positions] = [parent + free[r] for r in rank[positions]]
    t.loc[todo.index, "code"] = codes
    t.loc[todo.index, "code_assigned"] = True
    report.assigned += [AssignedCode(str(c), str(n), level) for c, n in zip(codes, todo["name"], strict=True)]


def _refuse_duplicates(t: pd.DataFrame, rows: _Rows) -> None:
    dup = t["code"].duplicated(keep=False)
    if not dup.any():
        return
    groups = t[dup].groupby("code", sort=True)
    parts = [f"code {code} in " + " and ".join(rows.label(int(i)) for i in g.index) for code, g in groups]
    raise InvalidInput(
        f"{rows.where}: duplicate codes: {'; '.join(parts[:_MAX_ROWS_IN_MESSAGE])}",
        detail={"duplicates": {str(c): (g.index + 1).tolist() for c, g in groups}},
    )


def _assemble(
    t: pd.DataFrame, opts: BoundaryOptions, parent_names: pd.Series | None, report: BoundaryReport
) -> gpd.GeoDataFrame:
    units = pd.DataFrame(
        {
            "code": t["code"],
            "name": t["name"],
            "level": t["level"],
            "parent_code": t["parent"].where(t["level"] != "district", None),
            "geometry": t["geometry"],
            "synthesised": False,
            "code_assigned": t["code_assigned"].astype(bool),
        }
    )
    # Districts referenced by streets but absent from the file: union of their streets.
    streets = t[t["level"] == "street"]
    missing = sorted(set(streets["parent"]) - set(t.loc[t["level"] == "district", "code"]))
    if missing:
        children = streets[streets["parent"].isin(missing)]
        merged = gpd.GeoDataFrame(children[["parent"]], geometry=children["geometry"].to_list()).dissolve(by="parent")
        extra = []
        for code in missing:
            name = _district_name(code, children, opts, parent_names, len(missing))
            n = int((children["parent"] == code).sum())
            report.synthesised.append(SynthesisedUnit(code, name, "district", n))
            if name is None:
                report.notes.append(f"district {code} has no name: pass --district-name")
            extra.append(
                {
                    "code": code,
                    "name": name,
                    "level": "district",
                    "parent_code": None,
                    "geometry": _polygonal(np.array([merged.geometry.loc[code]], dtype=object))[0],
                    "synthesised": True,
                    "code_assigned": False,  # the streets' parent code, never invented
                }
            )
        units = pd.concat([units, pd.DataFrame(extra)], ignore_index=True)

    units = units.sort_values("code", kind="stable").reset_index(drop=True)
    code = units["code"]
    level = units["level"]
    units["district_code"] = code.str[:6]
    units["street_code"] = code.str[:9].where(level != "district", None)
    units["community_code"] = code.where(level == "community", None)
    name_of = dict(zip(code, units["name"], strict=True))
    units["district_name"] = units["district_code"].map(name_of)
    units["street_name"] = units["street_code"].map(name_of).where(level != "district", None)
    units["community_name"] = units["name"].where(level == "community", None)
    gdf = gpd.GeoDataFrame(
        units[[*UNIT_COLUMNS, "synthesised", "code_assigned"]], geometry=units["geometry"].to_list(), crs=STORAGE_CRS
    )
    for c in UNIT_COLUMNS:  # one missing-value marker (None) in every text column
        gdf[c] = gdf[c].astype(object).where(gdf[c].notna(), None)
    return gdf


def _district_name(
    code: str, children: pd.DataFrame, opts: BoundaryOptions, parent_names: pd.Series | None, n_missing: int
) -> str | None:
    if opts.district_name and (opts.district_code == code or (opts.district_code is None and n_missing == 1)):
        return opts.district_name
    if parent_names is not None:
        values = parent_names.iloc[children.loc[children["parent"] == code, "row"].to_numpy()].dropna()
        values = values.astype(str).str.strip()
        values = values[values != ""]
        if not values.empty:
            return str(values.value_counts().index[0])
    return None


# ---------------------------------------------------------------- topology


def _topology(units: gpd.GeoDataFrame, report: BoundaryReport) -> None:
    metric = _metric_crs(units.total_bounds)
    report.metric_crs = f"EPSG:{metric.to_epsg()} ({metric.name})"
    # Densified before projecting: long edges would otherwise become chords and report false gaps and slivers.
    geoms = np.asarray(geodesy.densify_lonlat(units.geometry).to_crs(metric).values)
    areas = shapely.area(geoms)
    codes = units["code"].to_numpy()
    names = units["name"].fillna("").to_numpy()
    levels = units["level"].to_numpy()
    position = pd.Series(np.arange(len(units)), index=codes)
    real_parent = ~units["synthesised"].to_numpy()

    # Children whose parent is in the set (and was not synthesised from them).
    parent_pos = units["parent_code"].map(position).to_numpy(dtype=float)
    has_parent = ~np.isnan(parent_pos)
    child_i = np.flatnonzero(has_parent)
    parent_i = parent_pos[has_parent].astype(np.int64)
    keep = real_parent[parent_i]
    child_i, parent_i = child_i[keep], parent_i[keep]

    outside = shapely.area(shapely.difference(geoms[child_i], geoms[parent_i]))
    for c, p, a in zip(child_i, parent_i, outside, strict=True):
        if a > NOISE_AREA_M2:
            report.outside.append(
                OutsideParent(codes[c], names[c], codes[p], names[p], round(float(a), 1), float(a / areas[c]))
            )

    # Overlaps: candidate pairs from the STRtree, then exact intersection areas, all vectorised.
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    pair = (left < right) & (levels[left] == levels[right])
    left, right = left[pair], right[pair]
    overlap = shapely.area(shapely.intersection(geoms[left], geoms[right]))
    for a_i, b_i, a in zip(left, right, overlap, strict=True):
        if a > NOISE_AREA_M2:
            report.overlaps.append(Overlap(codes[a_i], names[a_i], codes[b_i], names[b_i], round(float(a), 1)))

    # Gaps: parent minus the union of its children, exploded into pieces.
    if child_i.size == 0:
        return
    groups = pd.Series(geoms[child_i]).groupby(parent_i)
    parents = np.array(list(groups.groups.keys()), dtype=np.int64)
    unions = np.array([shapely.union_all(g.to_numpy()) for _, g in groups], dtype=object)
    pieces, owner = shapely.get_parts(shapely.difference(geoms[parents], unions), return_index=True)
    piece_area = shapely.area(pieces)
    big = piece_area > NOISE_AREA_M2
    pieces, owner, piece_area = pieces[big], owner[big], piece_area[big]
    if not pieces.size:
        return
    to_lon_lat = Transformer.from_crs(metric, STORAGE_CRS, always_xy=True)
    inside = shapely.point_on_surface(pieces)
    lon, lat = to_lon_lat.transform(shapely.get_x(inside), shapely.get_y(inside))
    for k in np.unique(owner):
        mine = np.flatnonzero(owner == k)
        mine = mine[np.argsort(-piece_area[mine], kind="stable")]
        p = parents[k]
        report.gaps.append(
            Gap(
                codes[p],
                names[p],
                round(float(piece_area[mine].sum()), 1),
                int(mine.size),
                [
                    GapPiece(round(float(piece_area[j]), 1), float(lon[j]), float(lat[j]))
                    for j in mine[:LARGEST_GAP_PIECES]
                ],
            )
        )
