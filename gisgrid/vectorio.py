"""Writing (and reading back) vector layers for analysts: GeoPackage, Shapefile, GeoJSON, CSV with WKT.

``write_layer`` picks the format from ``fmt`` or the file extension (``.gpkg``, ``.shp``, ``.geojson``/``.json``,
``.csv``; a path without extension gets ``.gpkg``) and returns the files it wrote.

* **GeoPackage** (recommended): column names and values as they are (Chinese is fine), CRS kept. Writing a
  layer into an existing GeoPackage replaces that layer and keeps the others. Layer name defaults to the stem.
* **GeoJSON**: RFC 7946, i.e. lon/lat WGS-84 (CGCS2000 is written as is: identical frames at epoch 2000.0; today's
  WGS-84 fixes differ from CGCS2000's frozen coordinates by ~0.7–0.9 m of plate motion, ignored — see geodesy),
  counter-clockwise outer rings, 7 decimals (≈1 cm). Always UTF-8.
* **CSV**: the attributes plus a ``wkt`` geometry column, UTF-8 **with BOM** so that Excel opens Chinese text
  correctly. Coordinates are rounded to millimetres in a projected CRS and to 1e-8° (≈1 mm) in lon/lat, trailing
  zeros trimmed (``wkt_decimals``): no float noise from a reprojection (471599.9999999994). A ``.csvt`` sidecar
  (GDAL/QGIS convention) records the column types, so codes such as ``001`` stay text when the file is opened in
  QGIS or read back with ``read_layer_any``. The CSV itself carries no CRS: a ``.prj`` sidecar (WKT1 with the EPSG
  code, which GDAL's CSV driver reads) records the layer's CRS (storage EPSG:4490, or the ``crs`` asked for);
  ``read_layer_any`` takes it, and assumes EPSG:4490 without one.
* **Shapefile** (compatibility export for older desktop GIS):

  - field names are at most 10 bytes in the file's encoding. Known names use the fixed table ``SHAPEFILE_FIELDS``
    (``district_code → DIST_CODE`` …); another name that is a word (letters, digits, ``_``, starting with a letter)
    of at most 10 bytes in the encoding keeps it (a Chinese name of up to 5 characters in GBK, 3 in UTF-8); any
    other name is ASCII-folded (accents removed, other characters → ``_``), prefixed ``F`` if it starts with a
    digit, named ``FIELD<n>`` (n = 1-based column position) if nothing ASCII is left (e.g. a long all-Chinese
    name), truncated to 10 bytes and de-duplicated case-insensitively with ``_1``, ``_2`` … suffixes.
    ``shapefile_field_map(columns, encoding)`` returns the mapping. The renamed columns are said in a warning and
    written to the field map ``<name>.fields.csv`` beside the Shapefile (``shapefile_field,name``), which
    ``read_layer_any`` reads to give the fields their names back;
  - values are written in UTF-8 (default), GBK (for old ArcGIS / Chinese Windows tools) or GB18030 (GBK's superset:
    rare place-name characters GBK lacks, e.g. 䶮; QGIS and GDAL read its ``.cpg``) and a ``.cpg``
    file names the encoding; a GBK file also carries the DBF language driver id 0x4D (code page 936, header
    byte 29) for programs that ignore the ``.cpg`` (ArcGIS 9/10, MapInfo), a UTF-8 or GB18030 file the id 0 (dBase
    has none for either). A value that GBK cannot encode, or any text longer than 254 bytes in the chosen
    encoding (the DBF limit; GDAL would silently truncate it), is refused naming the row and field;
  - dates with a time of day are written as ISO text (the DBF has no date-time type);
  - text fields whose length a standard gives (``text_lengths``, from ``data/catalogue/export_fields.csv`` for
    components, unit and tier grids: GLBJBSM C(17), GLBJMC C(30), SZDYWGBSM C(15), a tier-3 code C(14) …) are
    declared that wide, in bytes of the chosen encoding (at most 254, the DBF limit: BZ, 1000 in the standard, is
    C(254)). A value longer in bytes is not cut: the field is declared as wide as the longest value and a warning
    (``notes``, else a ``FieldLongerThanStandard`` warning) names the field, the rows (by ``row_label`` when given)
    and the lengths, since the file then does not meet the standard. Other text fields keep GDAL's widths (longest
    value, at least 80); reals keep GDAL's N(24,15) (pyogrio sets no precision);
  - one geometry type per file: Polygon and MultiPolygon (LineString/MultiLineString, Point/MultiPoint)
    are promoted to the multi type when mixed; a mix of families is refused;
  - the sizes of ``.shp`` and ``.dbf`` are estimated before writing (``estimate_shapefile_size``) and a
    file over 2 GiB is refused (many programs, ArcGIS included, cannot read it): use GeoPackage instead.

Calendar dates (columns of ``datetime.date``, see ``date_columns``, and the columns named in ``date_fields``,
even when all empty) are date fields: DBF type ``D`` in a Shapefile, ``DATE`` in a GeoPackage, ``YYYY-MM-DD`` in
GeoJSON and CSV (typed ``Date`` in the ``.csvt``).

``read_layer_any`` reads all of the above (and anything else GDAL reads) into a GeoDataFrame.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, get_args

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyogrio.errors
import shapely
from pyogrio.raw import DRIVERS_NO_MIXED_SINGLE_MULTI
from pyproj import CRS
from pyproj.exceptions import CRSError

from gisgrid import geodesy
from gisgrid.constants import STORAGE_CRS
from gisgrid.errors import InvalidInput
from gisgrid.grids.cutting import choose_metric_crs
from gisgrid.spreadsheet import CRS_SHEET, csv_unquote, excel_kind, to_csv, xlsx_text
from gisgrid.texts import bilingual

Format = Literal["gpkg", "shp", "geojson", "csv", "xlsx"]
Encoding = Literal["utf-8", "gbk", "gb18030"]

EXTENSIONS: dict[str, Format] = {
    ".gpkg": "gpkg",
    ".shp": "shp",
    ".geojson": "geojson",
    ".json": "geojson",
    ".csv": "csv",
    ".xlsx": "xlsx",
}
#: The formats and encodings by name: write_layer is given them as text (CLI options) and refuses others.
_FORMATS: dict[str, Format] = {f: f for f in get_args(Format)}
_ENCODINGS: dict[str, Encoding] = {e: e for e in get_args(Encoding)}
_DEFAULT_SUFFIX: dict[str, str] = {
    "gpkg": ".gpkg",
    "shp": ".shp",
    "geojson": ".geojson",
    "csv": ".csv",
    "xlsx": ".xlsx",
}
#: An Excel cell holds at most this many characters.
XLSX_MAX_CELL = 32_767

# Shapefile limits: 2 GiB per .shp/.dbf for most readers, 254 bytes per text value, 10-byte field names.
SHAPEFILE_MAX_BYTES = 2**31
SHAPEFILE_MAX_TEXT_BYTES = 254
SHAPEFILE_MAX_NAME_BYTES = 10
_SHP_ENCODINGS = {"utf-8": "UTF-8", "gbk": "GBK", "gb18030": "GB18030"}  # Python codec → .cpg
#: DBF header byte 29, the language driver id (LDID) that older desktop GIS read when there is no .cpg (ArcGIS
#: 9/10, MapInfo): 0x4D = code page 936 (GBK). dBase defines no id for UTF-8 or GB18030: 0, the .cpg alone says it.
SHAPEFILE_LDID = {"utf-8": 0x00, "gbk": 0x4D, "gb18030": 0x00}
# GDAL's Shapefile ENCODING option: "LDID/<n>" writes that id and recodes the values to its code page (77 → CP936)
# but writes no .cpg; any other value writes the .cpg and leaves the id 0.
_GDAL_ENCODINGS = {"utf-8": "UTF-8", "gbk": f"LDID/{SHAPEFILE_LDID['gbk']}", "gb18030": "GB18030"}
CSV_WKT_COLUMN = "wkt"

#: Fixed Shapefile field names for the columns gisgrid produces (all ASCII, ≤ 10 bytes, unique).
SHAPEFILE_FIELDS: dict[str, str] = {
    "code": "CODE",
    "name": "NAME",
    "level": "LEVEL",
    "parent_code": "PARENT",
    "synthesised": "SYNTH",
    "code_provisional": "CODE_PROV",
    "district_code": "DIST_CODE",
    "district_name": "DIST_NAME",
    "street_code": "STRT_CODE",
    "street_name": "STRT_NAME",
    "community_code": "COMM_CODE",
    "community_name": "COMM_NAME",
    "grid_code": "GRID_CODE",
    "grid_name": "GRID_NAME",
    "seq": "SEQ",
    "tier1_code": "T1_CODE",
    "tier1_name": "T1_NAME",
    "tier2_code": "T2_CODE",
    "tier2_name": "T2_NAME",
    "tier3_code": "T3_CODE",
    "tier3_name": "T3_NAME",
    "leader_name": "LEADER",
    "leader_phone": "LEADER_TEL",
    "area_m2": "AREA_M2",
    "area_km2": "AREA_KM2",
    "perimeter_m": "PERIM_M",
    "centroid_lon": "CEN_LON",
    "centroid_lat": "CEN_LAT",
    "category_code": "CAT_CODE",
    "category_name": "CAT_NAME",
    "component_code": "COMP_CODE",
    "component_name": "COMP_NAME",
    "land_use_code": "LANDUSE",
    "management_level": "MGMT_LEVEL",
    "responsible_unit": "RESP_UNIT",
    "status": "STATUS",
    "source": "SOURCE",
    "note": "NOTE",
    "created_at": "CREATED",
    "updated_at": "UPDATED",
    "valid_from": "VALID_FROM",
    "valid_to": "VALID_TO",
    "tier": "TIER",
    "admin_code": "ADMIN_CODE",
    "staff_count": "STAFF_N",
    "unit_grids": "N_UNITS",
    "row": "ROW",
    "col": "COL",
}

# DBF field widths GDAL uses (measured with GDAL 3.12): 32-bit integers 9, 64-bit 18, reals 24, logical 1,
# dates 8, text = longest value in bytes, at least 80, at most 254.
_DBF_WIDTH = {"f": 24, "b": 1, "M": 24}
_DBF_MIN_TEXT_WIDTH = 80
_DBF_DATE_WIDTH = 8  # YYYYMMDD


def _ascii_fold(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_]", "_", folded)).strip("_")


#: A column name a DBF field keeps as it is (in any script): letters, digits and ``_``, starting with a letter.
_DBF_NAME = re.compile(r"[^\W\d_]\w*")


def _fits_dbf(name: str, encoding: str) -> bool:
    """Does ``name`` fit a DBF field name as it is: a word (letters, digits, ``_``) starting with a letter, of at most
    10 bytes in the file's ``encoding`` (GBK: 2 per Chinese character, UTF-8: 3), so that ``部件名称`` (8 bytes in
    GBK) keeps its name in a GBK file and ``材质`` in either (gis-notes §4.1)."""
    if not _DBF_NAME.fullmatch(name):
        return False
    try:
        return len(name.encode(encoding)) <= SHAPEFILE_MAX_NAME_BYTES
    except UnicodeEncodeError:
        return False


def shapefile_field_map(columns: Iterable[object], encoding: str = "utf-8") -> dict[str, str]:
    """Map column names to Shapefile field names (≤ 10 bytes in ``encoding``, unique ignoring case).

    Names in ``SHAPEFILE_FIELDS`` take their fixed name; a name that fits a DBF field as it is (:func:`_fits_dbf`:
    a word of at most 10 bytes in the file's encoding, Chinese included) keeps it; others are folded as described in
    the module docstring. Deterministic: the same columns in the same order always give the same names."""
    names = [str(c) for c in columns]
    taken = {SHAPEFILE_FIELDS[n].upper() for n in names if n in SHAPEFILE_FIELDS}
    result: dict[str, str] = {}
    for position, name in enumerate(names, start=1):
        if name in SHAPEFILE_FIELDS:
            result[name] = SHAPEFILE_FIELDS[name]
            continue
        if not name.isascii() and _fits_dbf(name, encoding) and name.upper() not in taken:
            taken.add(name.upper())
            result[name] = name
            continue
        base = _ascii_fold(name) or f"FIELD{position}"
        if base[0].isdigit():
            base = "F" + base
        candidate = base[:SHAPEFILE_MAX_NAME_BYTES].rstrip("_")
        n = 0
        while candidate.upper() in taken:
            n += 1
            suffix = f"_{n}"
            candidate = base[: SHAPEFILE_MAX_NAME_BYTES - len(suffix)].rstrip("_") + suffix
        taken.add(candidate.upper())
        result[name] = candidate
    return result


#: The field map of a Shapefile export beside it (``<name>.fields.csv``): each field whose name is not its column's
#: (a custom name too long for a DBF field, ``备注说明 → FIELD23``) with the column's name, which
#: :func:`read_layer_any` gives back when it reads that Shapefile.
FIELD_MAP_SUFFIX = ".fields.csv"
FIELD_MAP_HEADER = ("shapefile_field", "name")


def field_map_path(path: Path) -> Path:
    """The field-map sidecar of the Shapefile ``path`` (``s.shp`` → ``s.fields.csv``)."""
    return Path(path).with_suffix(FIELD_MAP_SUFFIX)


def _write_field_map(path: Path, renamed: Mapping[str, str]) -> Path | None:
    """Write (or, without renames, remove an earlier export's) field map beside the Shapefile ``path``: UTF-8 with
    BOM (Excel opens it), one line per renamed field."""
    sidecar = field_map_path(path)
    if not renamed:
        if sidecar.exists() and _is_field_map(sidecar):  # an earlier export's: it would rename this file's fields
            sidecar.unlink()
        return None
    frame = pd.DataFrame({FIELD_MAP_HEADER[0]: list(renamed.values()), FIELD_MAP_HEADER[1]: list(renamed)})
    to_csv(frame, sidecar, index=False, encoding="utf-8-sig")
    return sidecar


def _is_field_map(sidecar: Path) -> bool:
    try:
        with sidecar.open(encoding="utf-8-sig") as fh:
            first = fh.readline().strip()
    except (OSError, UnicodeDecodeError):
        return False
    return first.replace('"', "") == ",".join(FIELD_MAP_HEADER)


def _apply_field_map(gdf: gpd.GeoDataFrame, path: Path, notes: list[str] | None) -> gpd.GeoDataFrame:
    """The Shapefile's fields renamed back to the names its field map (:func:`field_map_path`, written by the
    export) gives, said in ``notes``; ``gdf`` as it is without a field map. A field map that is not one, or that
    would give a name twice, is refused: which column is which is not ours to guess."""
    sidecar = field_map_path(path)
    if not sidecar.exists():
        return gdf
    try:
        table = pd.read_csv(sidecar, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InvalidInput(
            f"{path}: its field map {sidecar.name} is not readable ({exc}); remove it to read the fields as they are",
            detail={"path": str(sidecar)},
        ) from None
    if tuple(table.columns) != FIELD_MAP_HEADER:
        raise InvalidInput(
            f"{path}: its field map {sidecar.name} has the columns {', '.join(map(str, table.columns))}, not "
            f"{', '.join(FIELD_MAP_HEADER)}; remove it to read the fields as they are",
            detail={"path": str(sidecar)},
        )
    fields = {str(c).upper(): str(c) for c in gdf.columns if c != gdf.geometry.name}
    renames: dict[str, str] = {}
    for field, name in zip(table[FIELD_MAP_HEADER[0]], table[FIELD_MAP_HEADER[1]], strict=True):
        column = fields.get(field.strip().upper())
        if column is not None and name.strip():
            renames[column] = name.strip()
    result = [renames.get(str(c), str(c)) for c in gdf.columns if c != gdf.geometry.name]
    twice = next((n for n in result if result.count(n) > 1), None)
    if twice is not None:
        raise InvalidInput(
            f"{path}: its field map {sidecar.name} names a field {twice!r}, which the file already has; remove one "
            "of the two fields, or the field map to read the fields as they are",
            detail={"path": str(sidecar), "field": twice},
        )
    if renames:
        message = f"{path.name}: field names from {sidecar.name} (written by the export): " + ", ".join(
            f"{field} → {name}" for field, name in renames.items()
        )
        if notes is not None:
            notes.append(message)
        else:
            warnings.warn(message, FieldRenamed, stacklevel=3)
    return gdf.rename(columns=renames)


def estimate_shapefile_size(
    gdf: gpd.GeoDataFrame, encoding: Encoding = "utf-8", widths: Mapping[str, int] | None = None
) -> tuple[int, int]:
    """Estimated sizes in bytes of the ``.shp`` and ``.dbf`` that ``gdf`` would produce (``widths``: the text
    fields declared with a width of their own, see :func:`standard_widths`).

    Computed from the Shapefile record layout (vectorised over geometries and columns): per shape an
    8-byte record header plus type, bbox, part and point arrays; per DBF record the sum of the field
    widths GDAL chooses. Z adds 8 bytes per point plus a range."""
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    type_id = np.where(present, shapely.get_type_id(geoms), -1)
    n_points = np.where(present, shapely.get_num_coordinates(geoms), 0).astype(np.int64)
    has_z = present & np.asarray(shapely.has_z(geoms), dtype=bool)
    # Parts: rings of every polygon, or lines; exploded in one vectorised call.
    parts, idx = shapely.get_parts(geoms[present], return_index=True)
    is_poly = shapely.get_type_id(parts) == 3
    rings = np.where(is_poly, shapely.get_num_interior_rings(parts) + 1, 1)
    n_parts = np.zeros(len(geoms), dtype=np.int64)
    n_parts[present] = np.bincount(idx, weights=rings, minlength=int(present.sum())).astype(np.int64)

    point = type_id == 0
    multipoint = type_id == 4
    multipart = np.isin(type_id, (1, 2, 3, 5, 6))
    content = np.full(len(geoms), 4, dtype=np.int64)  # a null shape is just its type
    content[point] = 4 + 16
    content[multipoint] = 4 + 32 + 4 + 16 * n_points[multipoint]
    content[multipart] = 4 + 32 + 8 + 4 * n_parts[multipart] + 16 * n_points[multipart]
    content[has_z & ~point] += 16 + 8 * n_points[has_z & ~point]
    content[has_z & point] += 8
    shp = 100 + int((8 + content).sum())

    attrs = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    sizes = [(widths or {}).get(c) or _dbf_width(attrs[c], encoding) for c in attrs.columns]
    dbf = 32 + 32 * len(sizes) + 1 + len(attrs) * (1 + sum(sizes)) + 1
    return shp, dbf


def _narrow_integers(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """64-bit integer columns whose values fit 32 bits as 32-bit: GDAL declares a 64-bit one N(18,0) in a DBF,
    which ArcGIS reads as Double (width 10 or more), a 32-bit one N(9,0), read as Long Integer (review47 F7)."""
    lo, hi = np.iinfo(np.int32).min, np.iinfo(np.int32).max
    narrowed = {}
    for name in gdf.columns:
        col = gdf[name]
        if name == gdf.geometry.name or col.dtype.kind not in "iu" or col.dtype.itemsize <= 4:
            continue
        present = col.dropna()
        if present.empty or (present.min() >= lo and present.max() <= hi):
            narrowed[name] = "int32" if isinstance(col.dtype, np.dtype) and not col.hasnans else "Int32"
    return gdf.astype(narrowed) if narrowed else gdf


def _dbf_width(series: pd.Series, encoding: str) -> int:
    kind = series.dtype.kind
    if kind in "iu":
        return 9 if (kind == "i" and series.dtype.itemsize <= 4) or series.dtype.itemsize <= 2 else 18
    if kind in _DBF_WIDTH:
        return _DBF_WIDTH[kind]
    if kind == "O" and pd.api.types.infer_dtype(series, skipna=True) == "date":
        return _DBF_DATE_WIDTH
    values = series.dropna()
    longest = int(values.astype(str).str.encode(encoding, "replace").str.len().max()) if len(values) else 0
    return min(max(longest, _DBF_MIN_TEXT_WIDTH), SHAPEFILE_MAX_TEXT_BYTES)


def _resolve_target(path: Path, fmt: str | None) -> tuple[Path, Format]:
    suffix = path.suffix.lower()
    if fmt is None:
        if not suffix:
            return path.with_name(path.name + ".gpkg"), "gpkg"
        if suffix not in EXTENSIONS:
            raise InvalidInput(
                f"{path}: unknown output extension {path.suffix!r}; use .gpkg, .shp, .geojson, .csv or .xlsx "
                "(or pass the format explicitly)",
                detail={"path": str(path)},
            )
        return path, EXTENSIONS[suffix]
    known = _FORMATS.get(fmt)
    if known is None:
        raise InvalidInput(f"unknown output format {fmt!r}: expected one of {', '.join(get_args(Format))}")
    if not suffix:
        return path.with_name(path.name + _DEFAULT_SUFFIX[known]), known
    if EXTENSIONS.get(suffix) != known:
        raise InvalidInput(
            f"{path}: extension {path.suffix!r} does not match the requested format {fmt!r}",
            detail={"path": str(path), "format": fmt},
        )
    return path, known


#: What ``--within`` of an export takes: a district, street or community code (6, 9, 12 digits), a tier-3 grid's
#: code (14) or a unit grid's (15).
WITHIN_LENGTHS = {6: "district", 9: "street", 12: "community", 14: "tier-3 grid", 15: "unit grid"}
WITHIN_LENGTHS_ZH = {6: "区县", 9: "街道", 12: "社区", 14: "三级网格", 15: "单元网格"}


def check_within(within: str | None) -> str | None:
    """``--within`` checked: digits of a district, street, community, tier-3 or unit grid code."""
    if within is None:
        return None
    if not (within.isascii() and within.isdigit() and len(within) in WITHIN_LENGTHS):
        raise InvalidInput(
            f"within: {within!r} is not a district, street, community, tier-3 or unit grid code (6, 9, 12, 14 or 15 "
            "digits)",
            detail=[{"field": "within", "reason": "not an area code"}],
        )
    return within


def cannot_write(path: Path, exc: Exception) -> InvalidInput:
    """The refusal of an output path the system will not write (a file where a folder should be, no permission,
    a read-only or virtual file system), in one line."""
    why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    if isinstance(exc, FileExistsError | NotADirectoryError):  # a file where a folder of the path should be
        why = "not a folder"
    where = getattr(exc, "filename", None) or path
    return InvalidInput(f"{path}: cannot write it ({why}: {where})", detail={"path": str(path)})


def check_parent_folder(path: Path) -> None:
    """Refuse an output whose folder does not exist (review38 U13: it was created, so a mistyped ``--out`` ended up
    in a new folder, exit 0): the analyst creates the folder. A file where a folder of the path should be is the
    one-line :func:`cannot_write` refusal."""
    parent = path.parent
    if parent.is_dir():
        return
    existing = next((p for p in parent.parents if p.exists()), None)
    if parent.exists() or (existing is not None and not existing.is_dir()):
        blocker = parent if parent.exists() else existing
        raise InvalidInput(
            bilingual(f"无法写入 {path}:{blocker} 不是文件夹", f"{path}: cannot write it (not a folder: {blocker})"),
            detail={"path": str(path)},
        )
    raise InvalidInput(
        bilingual(
            f"文件夹 {parent} 不存在:请先创建(拼错的路径不会被自动创建)",
            f"{path}: the folder {parent} does not exist; create it first (a mistyped path is not created)",
        ),
        detail={"path": str(path), "reason": "no such folder"},
    )


def _check_shared_prj(path: Path, fmt: str) -> None:
    """A CSV's CRS goes to ``<name>.prj``, the file a Shapefile of the same name keeps its own in: refuse the export
    that would overwrite the other's, which would then be read in the wrong CRS (review32 D1)."""
    other = {"csv": ".shp", "shp": ".csv"}.get(fmt)
    if other is None or not path.with_suffix(".prj").exists():
        return
    sibling = path.with_suffix(other)
    if sibling.exists():
        raise InvalidInput(
            f"{path}: {sibling.name} beside it keeps its coordinate system in {path.with_suffix('.prj').name}, "
            f"which this {fmt.upper()} would overwrite; write it under another name or into another folder",
            detail={"path": str(path), "shares_prj_with": str(sibling)},
        )


def _other_layers(path: Path, layer: str) -> list[tuple[str, str]]:
    """The layers of an existing GeoPackage other than ``layer``, with their CRS (replacing ``layer`` keeps them)."""
    if not path.is_file():
        return []
    try:
        names = [str(n) for n, _ in pyogrio.list_layers(path)]
        out = []
        for name in names:
            if name == layer:
                continue
            crs = pyogrio.read_info(path, layer=name).get("crs")
            out.append((name, str(crs or "no CRS")))
        return out
    except pyogrio.errors.DataSourceError:
        return []  # not a GeoPackage GDAL reads: the write says so


def _looks_lon_lat(gdf: gpd.GeoDataFrame) -> bool:
    if gdf.geometry.is_empty.all() or gdf.geometry.isna().all():
        return True
    xmin, ymin, xmax, ymax = gdf.total_bounds
    return xmin >= -180 and xmax <= 180 and ymin >= -90 and ymax <= 90


def write_layer(  # noqa: C901
    gdf: gpd.GeoDataFrame,
    path: Path,
    *,
    fmt: str | None = None,
    layer: str | None = None,
    crs: str | None = None,
    encoding: str = "utf-8",
    max_shapefile_bytes: int = SHAPEFILE_MAX_BYTES,
    date_fields: Iterable[str] = (),
    text_lengths: Mapping[str, int] | None = None,
    row_label: str | None = None,
    shapes_as_wkt: bool = False,
    notes: list[str] | None = None,
) -> list[Path]:
    """Write ``gdf`` to ``path`` for analysts and return the files written (see the module docstring).

    ``crs`` reprojects before writing, checked by :func:`check_export_crs` (a warning it gives is appended to
    ``notes``, or issued as a ``geodesy.DatumApproximate`` warning without ``notes``); ``encoding`` applies to
    Shapefiles only (the other formats are always UTF-8); ``max_shapefile_bytes`` is the per-file Shapefile limit
    (2 GiB; lowered in tests). ``date_fields``
    are written as date fields even when every value is empty (the schema must not depend on the rows); other
    columns are when they hold ``datetime.date`` values (:func:`date_columns`). ``text_lengths`` gives the
    standard's lengths of text columns (Shapefile field widths, see the module docstring); ``row_label`` is the
    column that names a row in the warning about a value longer than that (the row's position otherwise).
    ``shapes_as_wkt`` (.xlsx only): the point rows' position in ``lon``/``lat`` and the other shapes' exact geometry
    in a ``wkt`` column (as a CSV's), so that the sheet imports back (components); without it a layer with any shape
    gets a label point of each row in ``label_lon``/``label_lat`` (grids)."""
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise InvalidInput(f"{path}: expected a GeoDataFrame, got {type(gdf).__name__}")
    path = Path(path)
    if path.is_dir():  # not a sibling <folder>.gpkg written beside it
        raise InvalidInput(
            f"{path}: is a folder; name the file to write in it (e.g. {path / 'grids.gpkg'})",
            detail={"path": str(path)},
        )
    path, fmt = _resolve_target(path, fmt)
    check_parent_folder(path)
    _check_shared_prj(path, fmt)
    encoding = encoding.lower()
    known_encoding = _ENCODINGS.get(encoding)
    if known_encoding is None:
        raise InvalidInput(f"{path}: unknown encoding {encoding!r}: expected utf-8, gbk or gb18030")
    if known_encoding != "utf-8" and fmt != "shp":
        raise InvalidInput(f"{path}: encoding {encoding!r} applies to Shapefiles only; {fmt} files are always UTF-8")
    gdf = gdf.rename(columns={c: str(c) for c in gdf.columns if not isinstance(c, str)})
    dates = tuple(dict.fromkeys(date_columns(gdf) + [c for c in date_fields if c in gdf.columns]))
    if crs is not None:
        target = _target_crs(crs, path)
        if fmt == "geojson" and not target.is_geographic:  # the format first: no CRS check can make it fit
            raise InvalidInput(
                f"{path}: GeoJSON (RFC 7946) is always lon/lat WGS-84, it cannot hold {crs}; "
                "write a GeoPackage for projected coordinates"
            )
        gdf, warning = _reproject(gdf, target, crs, path)
        if warning and notes is not None:
            notes.append(warning)
        elif warning:
            warnings.warn(warning, geodesy.DatumApproximate, stacklevel=2)
    try:
        if fmt == "gpkg":
            kept = _other_layers(path, layer or path.stem)
            written = _write_gpkg(gdf, path, layer, dates)
            if kept:
                message = (
                    f"{path.name}: wrote layer {layer or path.stem!r}; the GeoPackage also holds "
                    + ", ".join(f"{name!r} ({crs})" for name, crs in kept)
                    + " from earlier exports, kept (write to a new file for this layer alone)"
                )
                if notes is not None:
                    notes.append(message)
                else:
                    warnings.warn(message, LayersKept, stacklevel=2)
            return written
        if fmt == "geojson":
            return _write_geojson(gdf, path, dates)
        if fmt == "csv":
            return _write_csv(gdf, path, dates)
        if fmt == "xlsx":
            return _write_xlsx(gdf, path, layer or path.stem, shapes_as_wkt)
        lengths = {c: n for c, n in (text_lengths or {}).items() if c in gdf.columns}
        written, long_values, renamed = _write_shapefile(
            gdf, path, known_encoding, max_shapefile_bytes, dates, lengths, row_label
        )
    except (OSError, pyogrio.errors.DataSourceError) as exc:
        raise cannot_write(path, exc) from None
    for message, kind in [*((m, FieldLongerThanStandard) for m in long_values), *((m, FieldRenamed) for m in renamed)]:
        if notes is not None:
            notes.append(message)
        else:
            warnings.warn(message, kind, stacklevel=2)
    return written


def _target_crs(crs: str, path: Path) -> CRS:
    try:
        return CRS.from_user_input(crs)
    except CRSError as exc:
        raise InvalidInput(f"{path}: unknown CRS {crs!r} ({exc})", detail={"crs": crs}) from exc


def _reproject(gdf: gpd.GeoDataFrame, target: CRS, crs: str, path: Path) -> tuple[gpd.GeoDataFrame, str | None]:
    """The layer in ``target`` (``crs`` as given) and the warning :func:`check_export_crs` gives, if any."""
    if gdf.crs is None:
        raise InvalidInput(f"{path}: cannot reproject to {crs}: the layer has no CRS (storage is {STORAGE_CRS})")
    present = gdf.geometry[~(gdf.geometry.isna() | gdf.geometry.is_empty)]
    lon_lat = present if present.crs.is_geographic else present.to_crs(STORAGE_CRS)
    warning = check_export_crs(target, lon_lat.total_bounds, crs, path) if len(present) else None
    return gdf.to_crs(target), warning


def check_export_crs(crs: CRS, bounds: np.ndarray, spec: str, path: Path) -> str | None:
    """Refuse an export CRS that does not fit the layer's lon/lat ``bounds``, as cutting does
    (:mod:`gisgrid.grids.cutting`, the same facts from :mod:`gisgrid.geodesy`): outside the CRS's area of use, or —
    projected — distorting scale by more than ``geodesy.MAX_SCALE_ERROR`` there (a distant Gauss–Krüger zone, Web
    Mercator: lengths and areas measured in the file would be off). The warning line when PROJ reaches ``crs`` from
    CGCS2000 only by a ballpark operation (Beijing 1954, Xian 1980: no datum shift), else None."""
    xmin, ymin, xmax, ymax = (float(v) for v in bounds)
    fitting = choose_metric_crs((xmin + xmax) / 2, (ymin + ymax) / 2)
    hint = f"use the zone that covers the data (EPSG:{fitting.to_epsg()}, {fitting.name}) or EPSG:4490 (lon/lat)"
    outside = geodesy.outside_area_of_use(crs, bounds)
    if outside:
        raise InvalidInput(
            f"{path}: --crs {spec} ({crs.name}): the layer spans {outside}; {hint}",
            detail={"crs": spec, "bounds": [xmin, ymin, xmax, ymax]},
        )
    if crs.is_projected:
        error = geodesy.scale_error_over(crs, bounds)
        if not error <= geodesy.MAX_SCALE_ERROR:
            raise InvalidInput(
                bilingual(
                    f"坐标系 {spec} 在图层范围内长度变形最大 {error:.1%}(超过 {geodesy.MAX_SCALE_ERROR:.1%}),"
                    "文件中量得的长度和面积将有同样的误差",
                    f"{path}: --crs {spec} ({crs.name}) distorts scale by up to {error:.1%} over the layer (more "
                    f"than {geodesy.MAX_SCALE_ERROR:.1%}): lengths and areas measured in the file would be off by "
                    f"that much; {hint}",
                ),
                detail={"crs": spec, "scale_error": error},
            )
    said = []
    aou = crs.area_of_use
    edge = geodesy.outside_area_of_use(crs, bounds, tolerance=0.0) if crs.is_projected else None
    if edge and aou is not None and fitting.to_epsg() != crs.to_epsg():  # inside the tolerance, not the zone
        said.append(
            f"{path.name} --crs {spec}: the layer (lon {xmin:.3f}..{xmax:.3f}) reaches past the zone's own "
            f"longitudes ({aou.west:g}..{aou.east:g}°E); accepted, its scale error within "
            f"{geodesy.MAX_SCALE_ERROR:.1%}, but the zone that covers it is EPSG:{fitting.to_epsg()} ({fitting.name})"
        )
    ballpark = geodesy.ballpark_datum_warning(crs, f"{path.name} --crs {spec}", exporting=True)
    if ballpark:
        said.append(ballpark)
    return "; ".join(said) or None


def date_columns(frame: pd.DataFrame) -> list[str]:
    """Columns holding calendar dates (``datetime.date``, no time of day; missing values allowed)."""
    return [
        str(c)
        for c in frame.columns
        if frame[c].dtype == object and pd.api.types.infer_dtype(frame[c], skipna=True) == "date"
    ]


def _write_ogr(
    gdf: gpd.GeoDataFrame,
    path: Path,
    driver: str,
    dates: tuple[str, ...],
    *,
    widths: Mapping[str, int] | None = None,
    **options: object,
) -> None:
    """``gdf.to_file`` through pyogrio, with date columns (:func:`date_columns`) as date fields (DBF 'D',
    GeoPackage DATE, GeoJSON "YYYY-MM-DD") and the text columns in ``widths`` declared that wide. pandas holds no
    day-resolution dates (they would be written as date-times, or as text when kept as ``datetime.date``) and
    ``write_dataframe`` sets no text width, so such a layer goes to ``pyogrio.raw.write`` with dates as
    ``datetime64[D]`` arrays and those texts as fixed-width ``U<n>`` arrays (pyogrio declares a field of that
    width: C(n) in a DBF), the rest prepared as ``pyogrio.write_dataframe`` would. ``dates`` names the date
    columns (:func:`date_columns` and those declared, which may be all empty); each width must be at least the
    longest value in characters (a ``U<n>`` cast cuts longer ones: :func:`standard_widths` sees to it)."""
    widths = widths or {}
    if not dates and not widths:
        gdf.to_file(path, driver=driver, engine="pyogrio", **options)
        return
    geom = gdf.geometry
    fields = [str(c) for c in gdf.columns if c != geom.name]
    data: list[np.ndarray] = []
    masks: list[np.ndarray | None] = []
    tz_offsets: dict[str, np.ndarray] = {}
    for name in fields:
        col = gdf[name]
        mask = None
        if name in dates:
            values = np.array([np.datetime64("NaT") if pd.isna(v) else v for v in col], dtype="datetime64[D]")
        elif name in widths:
            mask = col.isna().to_numpy()
            values = np.array(["" if m else str(v) for v, m in zip(col, mask, strict=True)], dtype=f"U{widths[name]}")
        elif isinstance(col.dtype, pd.DatetimeTZDtype):
            values = col.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
            tz_offsets[name] = np.full(len(col), 100)  # GDAL's code for UTC
        elif not isinstance(col.dtype, np.dtype):  # pandas' own dtypes (str, Int64, boolean …): values and nulls
            mask = col.isna().to_numpy()
            numpy_dtype = getattr(col.dtype, "numpy_dtype", None)
            if numpy_dtype is not None and numpy_dtype.kind in "iufb":
                values = col.to_numpy(dtype=numpy_dtype, na_value=numpy_dtype.type(0))
            else:
                values = np.asarray(col.array, dtype=object)
        else:
            values = col.to_numpy()
        data.append(values)
        masks.append(mask)
    present = geom[~(geom.isna() | geom.is_empty)]
    kinds = sorted(set(present.geom_type), key=len)  # a single type before its multi type
    geometry_type = kinds[0] if len(kinds) == 1 else "Unknown"
    promote = len(kinds) == 2 and kinds[1] == f"Multi{kinds[0]}" and driver in DRIVERS_NO_MIXED_SINGLE_MULTI
    if promote:
        geometry_type = kinds[1]  # as pyogrio does: single and multi of one kind become multi where mixing is barred
    if geometry_type != "Unknown" and present.has_z.any():
        geometry_type += " Z"
    epsg = geom.crs.to_epsg() if geom.crs else None
    crs = f"EPSG:{epsg}" if epsg else geom.crs.to_wkt("WKT1_GDAL") if geom.crs else None
    pyogrio.raw.write(
        path,
        geometry=np.asarray(shapely.to_wkb(np.asarray(geom.values, dtype=object)), dtype=object),
        field_data=data,
        field_mask=masks,
        fields=fields,
        driver=driver,
        geometry_type=geometry_type,
        crs=crs,
        promote_to_multi=promote or None,
        gdal_tz_offsets=tz_offsets,
        **options,
    )


def _write_gpkg(gdf: gpd.GeoDataFrame, path: Path, layer: str | None, dates: tuple[str, ...]) -> list[Path]:
    _write_ogr(gdf, path, "GPKG", dates, layer=layer or path.stem)
    return [path]


def _write_geojson(gdf: gpd.GeoDataFrame, path: Path, dates: tuple[str, ...]) -> list[Path]:
    if gdf.crs is None:
        if not _looks_lon_lat(gdf):
            raise InvalidInput(f"{path}: the layer has no CRS and is not lon/lat; GeoJSON needs lon/lat")
        gdf = gdf.set_crs(STORAGE_CRS)
    elif not CRS.from_user_input(gdf.crs).equals(CRS.from_epsg(4326)):
        # RFC 7946 is WGS-84 lon/lat; CGCS2000 → WGS-84 is a no-op in PROJ ("ballpark").
        gdf = gdf.to_crs(4326)
    _write_ogr(gdf, path, "GeoJSON", dates, layer_options={"RFC7946": "YES"})
    return [path]


def _csvt_type(series: pd.Series, is_date: bool) -> str:
    if is_date:
        return "Date"  # written as YYYY-MM-DD
    kind = series.dtype.kind
    if kind == "b":
        return "Integer(Boolean)"
    if kind in "iu":
        return "Integer64"
    if kind == "f":
        return "Real"
    return "String"  # text, date-times, mixed objects: text keeps leading zeros of codes


def _write_xlsx(gdf: gpd.GeoDataFrame, path: Path, sheet: str, shapes_as_wkt: bool = False) -> list[Path]:
    """An Excel table: the attributes in text cells where they are text (codes keep their leading zeros and every
    digit, which a CSV opened in Excel loses), dates as dates, and the position — of a point, or of a point inside
    each polygon or line (a label point; the shapes need GeoPackage or Shapefile) — as ``lon``/``lat`` (or ``x``/``y``
    in a projected CRS) at 1 cm. With ``shapes_as_wkt`` the point rows have ``lon``/``lat`` and the other rows their
    exact geometry in a ``wkt`` column (as a CSV export's, :func:`wkt_decimals`), empty on the other kind of row: the
    sheet then imports back. The CRS is written on a second sheet."""
    from openpyxl import Workbook

    geom = gdf.geometry
    is_point = np.asarray(geom.geom_type == "Point", dtype=bool)
    present = ~np.asarray(geom.isna() | geom.is_empty, dtype=bool)
    shapes = present & ~is_point
    points = bool(len(geom)) and not shapes.any()
    projected = gdf.crs is not None and CRS.from_user_input(gdf.crs).is_projected
    names = ("x", "y") if projected else ("lon", "lat")
    exact = shapes_as_wkt and not points
    where = geom if points or exact else geom.representative_point()
    if not points and not exact:
        names = (f"label_{names[0]}", f"label_{names[1]}")
    taken = [n for n in (*names, *([CSV_WKT_COLUMN] if exact else [])) if n in gdf.columns]
    if taken:
        raise InvalidInput(f"{path}: the layer already has a column named {taken[0]!r}; rename it")
    attrs = pd.DataFrame(gdf.drop(columns=geom.name))
    for column in attrs.columns:  # Excel has no time zones: a zoned time as its ISO text, offset kept
        if isinstance(attrs[column].dtype, pd.DatetimeTZDtype):
            attrs[column] = [None if pd.isna(v) else v.isoformat() for v in attrs[column]]
    digits = 2 if projected else 7
    if exact:  # the points' lon/lat, the shapes' WKT
        geoms = np.asarray(geom.values, dtype=object)
        attrs[names[0]] = np.round(shapely.get_x(geoms), digits)  # NaN (an empty cell) for a shape
        attrs[names[1]] = np.round(shapely.get_y(geoms), digits)
        wkt = shapely.to_wkt(np.asarray(geom.values, dtype=object), rounding_precision=wkt_decimals(gdf), trim=True)
        attrs[CSV_WKT_COLUMN] = np.where(shapes, wkt, None)
    else:
        attrs[names[0]] = where.x.round(digits).where(~where.is_empty)
        attrs[names[1]] = where.y.round(digits).where(~where.is_empty)
    book = Workbook()
    table = book.active
    table.title = sheet[:31]  # Excel's limit on a sheet name
    table.append([str(c) for c in attrs.columns])
    for i, row in enumerate(attrs.itertuples(index=False, name=None), start=2):
        values = [None if v is None or (not isinstance(v, str | bytes) and pd.isna(v)) else v for v in row]
        long = next(
            (attrs.columns[k] for k, v in enumerate(values) if isinstance(v, str) and len(v) > XLSX_MAX_CELL), None
        )
        if long is not None:
            raise InvalidInput(
                f"{path}: row {i - 1}, field {long!r}: longer than an Excel cell holds ({XLSX_MAX_CELL:,} "
                "characters); use GeoPackage or CSV",
                detail={"row": i - 1, "field": str(long)},
            )
        table.append(values)
    table.freeze_panes = "A2"
    about = book.create_sheet(CRS_SHEET)
    crs = CRS.from_user_input(gdf.crs) if gdf.crs is not None else None
    about.append(["crs", f"EPSG:{crs.to_epsg()}" if crs is not None and crs.to_epsg() else "unknown"])
    about.append(["name", crs.name if crs is not None else ""])
    position = f"{names[0]}, {names[1]}: " + ("the point" if points or exact else "a point inside each shape")
    if exact:
        position += f"; {CSV_WKT_COLUMN}: the shape (lines, polygons, multipoints)"
    about.append(["position", position])
    xlsx_text(book)
    try:
        book.save(path)
    except OSError:
        path.unlink(missing_ok=True)
        raise
    return [path]


#: Decimals of a CSV export's WKT: millimetres in a projected CRS, 1e-8° (≈1 mm) in lon/lat.
WKT_DECIMALS_PROJECTED = 3
WKT_DECIMALS_DEGREES = 8


def wkt_decimals(gdf: gpd.GeoDataFrame) -> int:
    """Decimals a CSV export writes its coordinates with: by the CRS's units, by the coordinates without a CRS."""
    geographic = CRS.from_user_input(gdf.crs).is_geographic if gdf.crs is not None else _looks_lon_lat(gdf)
    return WKT_DECIMALS_DEGREES if geographic else WKT_DECIMALS_PROJECTED


def _write_csv(gdf: gpd.GeoDataFrame, path: Path, dates: tuple[str, ...]) -> list[Path]:
    geom_name = gdf.geometry.name
    if CSV_WKT_COLUMN in gdf.columns and geom_name != CSV_WKT_COLUMN:
        raise InvalidInput(f"{path}: the layer already has a column named {CSV_WKT_COLUMN!r}; rename it")
    attrs = pd.DataFrame(gdf.drop(columns=geom_name))
    # Millimetres (review38 U11: a reprojected 471600 came out as 471599.9999999994), or 1e-8° (≈1 mm) in lon/lat,
    # trailing zeros trimmed: within the 1e-7° an unedited export must re-import within
    # (gisgrid.components.POSITION_TOLERANCE_DEG), and no float noise from the reprojection.
    attrs[CSV_WKT_COLUMN] = shapely.to_wkt(
        np.asarray(gdf.geometry.values, dtype=object), rounding_precision=wkt_decimals(gdf), trim=True
    )
    to_csv(attrs, path, index=False, encoding="utf-8-sig")  # BOM: Excel then decodes UTF-8; =… text is no formula
    types = [_csvt_type(attrs[c], c in dates) for c in attrs.columns[:-1]] + ["WKT"]
    csvt = path.with_suffix(".csvt")
    csvt.write_text(",".join(f'"{t}"' for t in types) + "\n", encoding="ascii")
    if gdf.crs is None:
        return [path, csvt]
    # The CRS in a .prj beside it, which GDAL's CSV driver reads (QGIS, ogr2ogr, read_layer_any): WKT1 with its
    # EPSG code, so a reader gets EPSG:4547 back, not an unnamed CRS as from ESRI's WKT flavour.
    prj = path.with_suffix(".prj")
    prj.write_text(CRS.from_user_input(gdf.crs).to_wkt("WKT1_GDAL"), encoding="ascii")
    return [path, csvt, prj]


_FAMILIES = {0: "point", 4: "point", 1: "line", 2: "line", 5: "line", 3: "polygon", 6: "polygon"}
_MULTI_TYPE = {"point": 4, "line": 5, "polygon": 6}


def _single_geometry_type(gdf: gpd.GeoDataFrame, path: Path) -> gpd.GeoDataFrame:
    """One geometry type per Shapefile: promote single to multi when mixed, refuse mixed families."""
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    type_ids = shapely.get_type_id(geoms)
    present_ids = np.unique(type_ids[present])
    families = {_FAMILIES.get(int(t), "collection") for t in present_ids}
    if "collection" in families or len(families) > 1:
        counts = gdf.geometry[present].geom_type.value_counts().to_dict()
        raise InvalidInput(
            f"{path}: a Shapefile holds one geometry type, this layer mixes {counts}; "
            "split it by type or write a GeoPackage",
            detail={"geometry_types": counts},
        )
    if len(present_ids) <= 1:
        return gdf
    family = families.pop()
    multi = np.asarray(geoms.copy(), dtype=object)
    single = present & (type_ids != _MULTI_TYPE[family])
    parts, idx = shapely.get_parts(geoms[single], return_index=True)
    build = {"point": shapely.multipoints, "line": shapely.multilinestrings, "polygon": shapely.multipolygons}
    multi[single] = build[family](parts, indices=idx)
    out = gdf.copy()
    out[gdf.geometry.name] = gpd.GeoSeries(multi, index=gdf.index, crs=gdf.crs)
    return out


def _row_name(attrs: pd.DataFrame, row: Any, label: str | None) -> str:
    """How a refusal names a row: by its identifier column (a component's GLBJBSM, a grid's code), else its
    position from 1."""
    if label is not None and label in attrs.columns and pd.notna(attrs.at[row, label]):
        return f"{label} {attrs.at[row, label]}"
    return f"row {attrs.index.get_loc(row) + 1}"


def _check_shapefile_text(attrs: pd.DataFrame, codec: str, path: Path, row_label: str | None = None) -> None:
    """Refuse values the encoding cannot hold and values over 254 bytes, naming the row (by ``row_label``'s value
    when given) and the field."""
    for column in attrs.columns:
        series = attrs[column]
        if series.dtype.kind not in "OSUT" and not pd.api.types.is_string_dtype(series):
            continue
        values = series.dropna().astype(str)
        if values.empty:
            continue
        try:
            lengths = values.str.encode(codec).str.len()
        except UnicodeEncodeError:
            # Slow path only on failure: find the rows and characters to name them.
            for row, value in values.items():
                bad = [ch for ch in value if not _encodable(ch, codec)]
                if bad:
                    raise InvalidInput(
                        f"{path}: {_row_name(attrs, row, row_label)}, field {column!r}: value {value!r} contains "
                        f"{''.join(dict.fromkeys(bad))!r}, which {codec.upper()} cannot encode; "
                        f"write the Shapefile in {'GB18030 (--encoding gb18030) or ' if codec == 'gbk' else ''}"
                        "UTF-8 or use GeoPackage",
                        detail={
                            "row": int(attrs.index.get_loc(row)) + 1,
                            "field": column,
                            "value": value,
                            "encoding": codec,
                            **({"id": str(attrs.at[row, row_label])} if row_label in attrs.columns else {}),
                        },
                    ) from None
            raise
        too_long = lengths[lengths > SHAPEFILE_MAX_TEXT_BYTES]
        if not too_long.empty:
            row = too_long.index[0]
            raise InvalidInput(
                f"{path}: {_row_name(attrs, row, row_label)}, field {column!r}: text of "
                f"{int(too_long.iloc[0])} bytes in {codec.upper()} exceeds the Shapefile limit of "
                f"{SHAPEFILE_MAX_TEXT_BYTES} bytes ({len(too_long)} row(s) affected); shorten it or use GeoPackage",
                detail={"field": column, "rows": too_long.index.tolist(), "limit": SHAPEFILE_MAX_TEXT_BYTES},
            )


def _encodable(ch: str, codec: str) -> bool:
    try:
        ch.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


class FieldLongerThanStandard(UserWarning):
    """A Shapefile text field was declared wider than the standard's length: some value is longer."""


#: How many rows a warning about values longer than the standard names (then "… and n more").
_LONG_VALUES_SHOWN = 5


def standard_widths(
    attrs: pd.DataFrame, lengths: Mapping[str, int], encoding: str, path: Path, *, row_label: str | None = None
) -> tuple[dict[str, int], list[str]]:
    """The DBF width of each text column in ``lengths`` (the standard's length in bytes of ``encoding``) and the
    warnings about values longer than that. A width is the standard's length (at most 254, the DBF limit) or the
    longest value in bytes when longer: nothing is cut (GDAL would widen the field anyway, silently), and the
    warning names the field, each row (``row_label``'s value, else the row) with its length, and the standard's.
    Columns that hold no text (numbers) are left out. Values are already checked to be encodable and ≤ 254 bytes
    (:func:`_check_shapefile_text`)."""
    widths: dict[str, int] = {}
    messages: list[str] = []
    for field, standard in lengths.items():
        series = attrs[field]
        if series.dtype.kind not in "OSUT" and not pd.api.types.is_string_dtype(series):
            continue
        values = series.dropna().astype(str)
        nbytes = values.str.encode(encoding).str.len() if len(values) else pd.Series(dtype=int)
        longest = int(nbytes.max()) if len(nbytes) else 0
        widths[field] = max(min(standard, SHAPEFILE_MAX_TEXT_BYTES), longest)
        over = nbytes[nbytes > standard]
        if over.empty:
            continue
        if row_label is not None and row_label in attrs.columns:
            names = [f"{row_label} {attrs.at[i, row_label]}" for i in over.index[:_LONG_VALUES_SHOWN]]
        else:
            names = [f"row {i}" for i in over.index[:_LONG_VALUES_SHOWN]]
        rows = ", ".join(f"{name} ({int(n)} bytes)" for name, n in zip(names, over, strict=False))
        more = f" … and {len(over) - _LONG_VALUES_SHOWN} more" if len(over) > _LONG_VALUES_SHOWN else ""
        messages.append(
            f"超出标准长度 {path.name}: field {field}: {len(over)} value(s) longer than the standard's {standard} "
            f"bytes in {_SHP_ENCODINGS[encoding]}: {rows}{more}; the field is declared C({widths[field]}), so the "
            "file does not meet the standard's field definition (nothing was cut)"
        )
    return widths, messages


def _write_shapefile(
    gdf: gpd.GeoDataFrame,
    path: Path,
    encoding: Encoding,
    limit: int,
    dates: tuple[str, ...],
    lengths: Mapping[str, int],
    row_label: str | None,
) -> tuple[list[Path], list[str], list[str]]:
    """Write the Shapefile; the files written, the warnings of :func:`standard_widths` and the one naming the
    columns whose field names are not theirs."""
    geom_name = gdf.geometry.name
    field_map = shapefile_field_map((c for c in gdf.columns if c != geom_name), encoding)
    gdf = gdf.rename(columns=field_map)
    dates = tuple(field_map[c] for c in dates)
    lengths = {field_map[c]: n for c, n in lengths.items() if c not in dates}
    for column in gdf.columns:
        if column != geom_name and pd.api.types.is_datetime64_any_dtype(gdf[column]):
            # The DBF has only a date type; keep the time of day as ISO text.
            gdf[column] = gdf[column].dt.strftime("%Y-%m-%dT%H:%M:%S").astype(object)
    gdf = _single_geometry_type(gdf, path)
    gdf = _narrow_integers(gdf)
    attrs = pd.DataFrame(gdf.drop(columns=geom_name))
    label = field_map.get(row_label) if row_label else None
    _check_shapefile_text(attrs, encoding, path, label)
    widths, long_values = standard_widths(attrs, lengths, encoding, path, row_label=label)
    renamed = {
        name: field
        for name, field in field_map.items()
        if name not in SHAPEFILE_FIELDS and field.upper() != name.upper() and name != geom_name
    }
    said: list[str] = []
    sidecar = field_map_path(path)
    if renamed:  # a city's own column named in Chinese or longer than 10 bytes: said, not silently replaced
        said.append(
            f"{path.name}: Shapefile field names are at most 10 bytes ({_SHP_ENCODINGS[encoding]}: "
            f"{'3' if encoding == 'utf-8' else '2'} per Chinese character): "
            + ", ".join(f"{name} → {field}" for name, field in renamed.items())
            + f"; {sidecar.name} beside it keeps the names, and an import of the Shapefile reads them back from it "
            "(keep it with the .shp, .dbf, .prj and .cpg); GeoPackage, GeoJSON, CSV and .xlsx keep the names"
        )

    shp_bytes, dbf_bytes = estimate_shapefile_size(gdf, encoding, widths)
    if max(shp_bytes, dbf_bytes) > limit:
        raise InvalidInput(
            f"{path}: too large for a Shapefile: estimated .shp {shp_bytes / 2**30:.2f} GiB and "
            f".dbf {dbf_bytes / 2**30:.2f} GiB, over the {limit / 2**30:.2f} GiB per-file limit that most "
            "GIS programs enforce; write a GeoPackage (.gpkg) instead",
            detail={"shp_bytes": shp_bytes, "dbf_bytes": dbf_bytes, "limit": limit},
        )
    with warnings.catch_warnings():
        # Field names are already ≤ 10 bytes; silence GDAL's generic laundering notices.
        warnings.filterwarnings("ignore", message=".*(laundered|truncated).*")
        _write_ogr(gdf, path, "ESRI Shapefile", dates, widths=widths, encoding=_GDAL_ENCODINGS[encoding])
    cpg = path.with_suffix(".cpg")
    cpg_name = _SHP_ENCODINGS[encoding]
    if not cpg.exists() or cpg.read_text(encoding="ascii").strip() != cpg_name:
        cpg.write_text(cpg_name, encoding="ascii")
    files = [p for p in (path.with_suffix(s) for s in (".shp", ".shx", ".dbf", ".prj", ".cpg")) if p.exists()]
    written = _write_field_map(path, renamed)
    return files + ([written] if written else []), long_values, said


def list_layers(path: Path) -> list[str]:
    """Layer names GDAL sees in ``path`` (InvalidInput if it cannot open it)."""
    path = Path(path)
    if not path.exists():
        raise InvalidInput(f"{path}: file not found", detail={"path": str(path)})
    if excel_kind(path) is not None:  # GDAL reads a sheet of an .xlsx as a layer without geometry
        raise InvalidInput(
            f"{path}: an Excel workbook is a table without geometry; give a GeoPackage, Shapefile, GeoJSON or a CSV "
            f"with a {CSV_WKT_COLUMN!r} column",
            detail={"path": str(path)},
        )
    try:
        return [str(name) for name in pyogrio.list_layers(path)[:, 0]]
    except pyogrio.errors.DataSourceError as exc:
        raise InvalidInput(f"{path}: not a readable vector file ({exc})", detail={"path": str(path)}) from exc


def resolve_layer(path: Path, layer: str | None) -> str:
    """The layer to read: ``layer`` if it exists, the only layer otherwise; refuse listing the layers."""
    layers = list_layers(path)
    if layer is not None and layer not in layers:
        raise InvalidInput(
            f"{path}: no layer {layer!r}; available layers: {', '.join(layers) or '(none)'}",
            detail={"layer": layer, "available": layers},
        )
    if layer is None:
        if len(layers) != 1:
            raise InvalidInput(
                f"{path}: {len(layers)} layers, choose one with --layer: {', '.join(layers) or '(none)'}",
                detail={"available": layers},
            )
        layer = layers[0]
    return layer


#: The note when a Shapefile without ``.cpg`` or language driver id turns out not to be UTF-8.
GB18030_NOTE = "no .cpg and no language driver: read as GB18030 (not UTF-8)"
#: Language driver ids that do not say the encoding: none (0), and 0x57 "ANSI" — the code page of the Windows
#: that wrote the file (older ArcGIS on a Chinese Windows: GBK), which GDAL reads as ISO-8859-1.
_UNSAID_LDIDS = {0: "no language driver", 0x57: "language driver 0x57 (ANSI: the writer's code page)"}
_SHAPEFILE_SUFFIXES = (".shp", ".dbf")


def _sidecar(path: Path, suffix: str) -> Path | None:
    """``path`` with ``suffix`` in either case (``.cpg`` or ``.CPG``), if that file exists."""
    for candidate in (path.with_suffix(suffix), path.with_suffix(suffix.upper())):
        if candidate.exists():
            return candidate
    return None


def shapefile_ldid(path: Path) -> int | None:
    """The DBF language driver id (header byte 29) of the Shapefile/DBF ``path``; None without a readable DBF."""
    dbf = _sidecar(Path(path), ".dbf")
    if dbf is None:
        return None
    with dbf.open("rb") as fh:
        header = fh.read(32)
    return header[29] if len(header) == 32 else None


def _check_codec(encoding: str, path: Path) -> str:
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise InvalidInput(
            f"{path}: unknown text encoding {encoding!r} (e.g. utf-8, gbk, gb18030, big5, latin-1)",
            detail={"encoding": encoding},
        ) from None


def _read_ogr(path: Path, name: str, encoding: str | None) -> gpd.GeoDataFrame:
    try:
        gdf = gpd.read_file(path, layer=name, engine="pyogrio", encoding=encoding)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise InvalidInput(f"{path}: cannot read layer {name!r} ({exc})", detail={"layer": name}) from exc
    if not isinstance(gdf, gpd.GeoDataFrame):  # GDAL read it as a table (a .dbf alone, a spreadsheet …)
        raise InvalidInput(f"{path}: layer {name!r} has no geometry (a table)", detail={"layer": name})
    return gdf


def read_layer_any(
    path: Path,
    layer: str | None = None,
    *,
    csv_crs: str | None = STORAGE_CRS,
    encoding: str | None = None,
    notes: list[str] | None = None,
) -> gpd.GeoDataFrame:
    """Read any layer GDAL reads, including this module's CSV-with-``wkt`` files.

    A multi-layer file needs ``layer``. A CSV takes the CRS of its ``.prj`` sidecar (as written by
    :func:`write_layer`), else ``csv_crs`` (None leaves it unset); its ``.csvt`` sidecar, if present, gives the
    column types.

    ``encoding`` (Shapefile and CSV only) overrides how text is decoded. Without it a Shapefile is decoded as
    its ``.cpg`` or DBF language driver id says; with neither (id 0, no ``.cpg``: common in Chinese legacy data,
    which GDAL would read as ISO-8859-1) the text must be valid UTF-8, else it is read as GB18030 (the superset
    of GBK) and ``GB18030_NOTE`` is appended to ``notes`` (issued as an ``EncodingGuessed`` warning without
    ``notes``). Text that is neither is
    refused: the user names the encoding. A Shapefile with a field map beside it (``<name>.fields.csv``, written by
    :func:`write_layer`) gets its fields' own names back from it, said in ``notes`` (a ``FieldRenamed`` warning
    without ``notes``)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if encoding is not None:
        encoding = _check_codec(encoding, path)
        if suffix not in (".csv", *_SHAPEFILE_SUFFIXES) and encoding != "utf-8":
            raise InvalidInput(
                f"{path}: a text encoding applies to Shapefiles and CSV only; {path.suffix or 'this'} files are UTF-8",
                detail={"encoding": encoding},
            )
    if suffix == ".csv":
        if not path.exists():
            raise InvalidInput(f"{path}: file not found", detail={"path": str(path)})
        gdf = pyogrio.read_dataframe(
            path,
            encoding=encoding,
            GEOM_POSSIBLE_NAMES=CSV_WKT_COLUMN,
            KEEP_GEOM_COLUMNS="NO",
            EMPTY_STRING_AS_NULL="YES",
        )
        if not isinstance(gdf, gpd.GeoDataFrame):
            raise InvalidInput(f"{path}: no {CSV_WKT_COLUMN!r} geometry column in the CSV")
        csv_unquote(gdf)  # the text _write_csv quoted
        if gdf.crs is not None:  # a .prj beside the CSV (GDAL reads it) says the CRS
            return gdf
        return gdf.set_crs(csv_crs) if csv_crs else gdf
    name = resolve_layer(path, layer)
    if suffix not in _SHAPEFILE_SUFFIXES:
        return _read_ogr(path, name, encoding)
    return _apply_field_map(_read_shapefile(path, name, encoding, notes), path, notes)


def _read_shapefile(path: Path, name: str, encoding: str | None, notes: list[str] | None) -> gpd.GeoDataFrame:
    """A Shapefile read in ``encoding``, else as its ``.cpg`` or language driver id says, else guessed (see
    :func:`read_layer_any`)."""
    if encoding is not None:
        return _read_ogr(path, name, encoding)
    ldid = shapefile_ldid(path)
    if _sidecar(path, ".cpg") is not None or ldid not in _UNSAID_LDIDS:
        return _read_ogr(path, name, None)  # GDAL follows the .cpg or the language driver id
    # Neither says: decode strictly as UTF-8 (pyogrio raises on the first invalid byte, no pass over the rows
    # in Python), then strictly as GB18030. GDAL's own recoding drops what it cannot convert (warning once per
    # process), so the bytes are taken through ISO-8859-1 (one byte, one character: lossless) and decoded here.
    try:
        return _read_ogr(path, name, "utf-8")
    except UnicodeDecodeError:
        pass
    unsaid = _UNSAID_LDIDS[ldid]
    gdf, message = _legacy_text(_read_ogr(path, name, "iso8859-1"), path, unsaid)
    if notes is not None:
        notes.append(message)
    else:
        warnings.warn(message, EncodingGuessed, stacklevel=3)
    return gdf


#: What no Chinese name holds, so a GB18030 reading that gives it was the wrong guess (Big5, Latin-1 …):
#: private-use code points and Japanese kana.
_NOT_CHINESE = re.compile("[\ue000-\uf8ff\u3040-\u30ff]")


def _legacy_text(gdf: gpd.GeoDataFrame, path: Path, unsaid: str) -> tuple[gpd.GeoDataFrame, str]:
    """The field names and text of ``gdf`` (read as ISO-8859-1: its bytes, losslessly) decoded as a file that does
    not say its encoding and is not strictly UTF-8: as UTF-8 when the only bad bytes are a character cut at the end
    of a value (legacy writers cut text at the field's width in bytes), else as GB18030 — refused when that gives
    what no Chinese name holds (private use, kana: a Big5 file) — and the note that says which, with examples."""
    cut: list[str] = []

    def utf8(text: str, row: object, field: str) -> str:
        raw = text.encode("iso8859-1")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.end != len(raw) or exc.reason != "unexpected end of data":
                raise
            cut.append(f"row {row}, field {field!r}")
            return raw[: exc.start].decode("utf-8")

    try:
        out = _decode_texts(gdf, utf8)
    except UnicodeDecodeError:
        pass
    else:
        return out, (
            f"{path.name}: no .cpg and {unsaid}: read as UTF-8; {len(cut)} value(s) cut inside a character at the "
            f"field's width lost that character's bytes (first: {cut[0]})"
        )

    def gb18030(text: str, row: object, field: str) -> str:
        try:
            value = text.encode("iso8859-1").decode("gb18030")
        except UnicodeDecodeError as exc:
            why = exc.reason
        else:
            odd = _NOT_CHINESE.search(value)
            if odd is None:
                return value
            why = f"read as GB18030 it gives {value!r}, with {odd.group()!r} (U+{ord(odd.group()):04X}) no name holds"
        raise InvalidInput(
            f"{path}: no .cpg and {unsaid}, and the text is neither UTF-8 nor GB18030 (row {row}, field {field!r}: "
            f"{why}); pass the encoding with --src-encoding (e.g. big5, latin-1)",
            detail={"path": str(path), "row": row, "field": field},
        )

    out = _decode_texts(gdf, gb18030)
    texts = [
        c
        for c in out.columns
        if c != out.geometry.name and (out[c].dtype == object or pd.api.types.is_string_dtype(out[c]))
    ]
    # Values whose reading the guess decided (not ASCII), for the user to judge.
    examples = list(dict.fromkeys(v for c in texts for v in out[c].dropna() if isinstance(v, str) and not v.isascii()))
    examples = examples[:3]
    shown = ", ".join(repr(v) for v in examples)
    note = GB18030_NOTE.replace("no language driver", unsaid)
    return out, f"{path.name}: {note}" + (f", e.g. {shown}: if these are wrong, pass --src-encoding" if shown else "")


def _decode_texts(gdf: gpd.GeoDataFrame, decode: Callable[[str, object, str], str]) -> gpd.GeoDataFrame:
    """``gdf`` with its field names and text values passed through ``decode(text, row, field)`` — each distinct
    value once, ``row`` the first row holding it (``"header"`` for a field name)."""
    geom = gdf.geometry.name
    names = {c: decode(c, "header", c) if isinstance(c, str) else c for c in gdf.columns if c != geom}
    out = gdf.copy()
    for column in names:
        series = out[column]
        if series.dtype != object and not pd.api.types.is_string_dtype(series):
            continue
        values = series.to_numpy(dtype=object)
        present = ~pd.isna(values)
        codes, uniques = pd.factorize(values[present])
        first_row = series.index[present][np.unique(codes, return_index=True)[1]] if len(codes) else []
        decoded = np.array(
            [decode(u, r, names[column]) if isinstance(u, str) else u for u, r in zip(uniques, first_row, strict=True)],
            dtype=object,
        )
        values = values.copy()
        values[present] = decoded[codes]
        out[column] = pd.Series(values, index=series.index, dtype=series.dtype)
    return out.rename(columns=names)


class FieldRenamed(UserWarning):
    """Columns written to a Shapefile under other field names (ASCII, ≤ 10 bytes) than their own."""


class LayersKept(UserWarning):
    """A GeoPackage written into holds other layers, kept (``write_layer`` without ``notes``)."""


class EncodingGuessed(UserWarning):
    """A Shapefile said nothing about its encoding and was not UTF-8: it was read as GB18030."""
