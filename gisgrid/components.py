"""Pure rules for city components (管理部件): identifiers, reading source files, vectorised validation.

No database code: ``read_component_file`` turns a CSV/Excel .xlsx sheet/GeoJSON/Shapefile/GeoPackage into a raw
frame (an .xlsx sheet is read as the CSV of it would be: same columns, same checks),
``validate_components`` splits it into accepted rows and a list of refusals (row, field, value, reason),
``file_fields`` names their fields by the file's columns and ``write_errors`` saves that list for the user.

Identifiers (管理部件标识码)
---------------------------
* GB/T 47678.5-2026 (``gbt47678``): 17 digits = 6 行政区划 + 2 大类 + 3 小类 + 6 顺序代码.
* CJ/T 214 era (``cjt214``): 16 digits = 6 行政区划 + 2 大类 + 2 小类 + 6 流水号 (e.g. ``3205080101000001``).

Source columns
--------------
Column names are matched case-insensitively (surrounding spaces ignored); a header naming a column twice, or two
names of one field (``lon`` and ``lng``, ``GLBJMC`` and ``name``), refuses the file (review43 D5), and
columns the system derives (:data:`DERIVED_COLUMNS`: SZDYWGBSM, SZJDDM/SZJDMC, SZSQDM/SZSQMC, ZGBMMC/QSDWMC/YHDWMC,
scheme, and the older export names unit_grid, STRT_CODE, COMM_CODE; the Chinese names of 表2 too, 所在单元网格标识码 …:
:data:`DERIVED_COLUMNS_ZH`) are recognised and not stored — the unit grid,
street and community come from the location, names from the department codes (a ZGBMMC/QSDWMC/YHDWMC name that is
not the one registered for its code is warned about: ``ValidationResult.warnings``) — and every other unmatched column
goes, as text, into the per-row dict ``attrs`` (e.g. DeptName1, SetLoc, Material; an import lists them in a note:
:func:`custom_columns_note`; an empty cell adds no attribute and empties an attribute the component has:
``components_store.keep_stored_attrs``). The legacy BGID (所在单元网格, a grid code) is among the derived columns:
read, said in a note (:data:`BGID_NOTE`) and not stored. ``validate_components``'s refusals name the canonical
field (left column); a file import names the file's column instead (``file_fields``).

==============  ==================================================  ===========================
canonical       GB/T 47678.5 / other names                          CJ/T 214-era (legacy)
==============  ==================================================  ===========================
id              id, identifier, GLBJBSM, BJBSM, 管理部件标识码,       ObjID
                部件标识码, 标识码
class_code      class_code, 类别代码 (else from the id)               ObjCode
name            name, GLBJMC, 管理部件名称, 部件名称                    ObjName
main_dept       main_dept, ZGBMDM, 主管部门代码                        DeptCode1
owner_dept      owner_dept, QSDWDM, 权属单位代码                       DeptCode2
maint_dept      maint_dept, YHDWDM, 养护单位代码                       DeptCode3
status          status, GLBJZT, 管理部件状态, 部件状态                  ObjState
initial_date    initial_date, CSRQ, 初始日期                           ORDate
change_date     change_date, BGRQ, 变更日期                            CHDate
data_source     data_source, SJLY, 数据来源                            DataSource
note            note, BZ, 备注                                        Note
lon / lat       lon, lng, longitude, 经度 / lat, latitude, 纬度
x / y           x / y                                               PointX / PointY
geometry        the layer geometry; in a CSV or sheet a ``wkt``/``geometry``/``geom`` column (WKT)
==============  ==================================================  ===========================

(Shapefile-truncated ``initial_da``, ``change_dat``, ``data_sourc`` are recognised too.)

Coordinates, in order of precedence: ``lon_field``/``lat_field``; ``x_field``/``y_field``; the layer
geometry (non-empty); a CSV WKT column (with lon/lat or x/y columns beside it, as an .xlsx components export has:
each row from the one it fills, both refused unless the WKT is that point); lon/lat columns; x/y columns. Label
points (:data:`LABEL_COLUMNS`) are never coordinates. ``src_crs`` (any pyproj CRS string)
overrides the file's CRS and is needed for projected x/y (metres); without it coordinates are taken as
CGCS2000/WGS-84 lon/lat. ``src_datum`` (wgs84|cgcs2000|gcj02|bd09) removes the Chinese web-map offsets.
Everything ends as storage lon/lat (EPSG:4490). Lines and polygons are kept (``geom_wkb``) and checked at
a representative point (``shapely.point_on_surface``).

Rows: ``_row`` is the CSV line number with the header as line 1 (blank lines counted and skipped; a quoted
value spanning lines shifts later numbers), the sheet row number of an .xlsx (header = row 1), or the 1-based
feature number for other formats.
"""

from __future__ import annotations

import codecs
import dataclasses
import datetime as dt
import json
import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from gisgrid import cityfiles, geodesy
from gisgrid.catalogue import CODE_DIGITS, Catalogue, ComponentClass, check_scheme
from gisgrid.constants import STORAGE_SRID
from gisgrid.errors import InvalidInput, Reason
from gisgrid.geodesy import (
    DATUMS,
    Datum,
    DatumApproximate,
    ballpark_datum_warning,
    densify_lonlat,
    is_datum,
    to_storage,
    transform_geometries,
)
from gisgrid.runfiles import RunFiles
from gisgrid.spreadsheet import (
    CRS_SHEET,
    HEADER_CELLS,
    LONG_NUMBERS,
    UNSAVED_FORMULAS,
    excel_kind,
    read_workbook_table,
    workbook_crs,
)
from gisgrid.texts import (
    CONTROLS,
    MAX_JSON_DEPTH,
    NUL,
    bad_text_path,
    bad_text_reason_bilingual,
    bilingual,
    first_bad_text,
    too_deep_path,
    too_deep_words,
)
from gisgrid.vectorio import read_layer_any

log = logging.getLogger(__name__)

STATUSES: tuple[str, ...] = ("完好", "破损", "丢失", "废弃", "移除")
#: The status of a component taken out of the registry (its record and history stay).
RETIRED = "移除"
DATA_SOURCES: tuple[str, ...] = ("实测", "地形图", "基础地理数据", "其他")
DEFAULT_STATUS = "完好"

#: Who may change the component inventory through the API (add, edit, move, retire, attach photos): the
#: supervision centre's data post (部件普查与数据维护). Reading is open; case roles (监督员 …) report a broken
#: component as a case instead. Real login will map accounts to these roles.
EDITOR_ROLES: dict[str, str] = {"data_admin": "部件数据管理员"}

#: The longest text a component field takes from the API (its request models state these; file imports take
#: what the source holds). Departments are codes, dates YYYY-MM-DD at most.
TEXT_LIMITS: dict[str, int] = {
    "id": 64,
    "class_code": 8,
    "name": 200,
    "dept": 64,
    "date": 10,
    "note": 2000,
    "reason": 2000,
}
#: ``attrs``, free key/value pairs: at most this many keys, each key this long, and this much JSON in all.
ATTRS_MAX_KEYS = 100
ATTRS_MAX_KEY_CHARS = 64
ATTRS_MAX_JSON_CHARS = 10_000
DISTRICT_DIGITS = 6
SERIAL_DIGITS = 6

#: Canonical field → its column names, lower case: ours, the standard's abbreviation (表2), CJ/T 214's, and the
#: standard's Chinese names (表2: 管理部件标识码 …, as Chinese bureau sheets head their columns; review50 F5).
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "identifier", "glbjbsm", "objid", "bjbsm", "管理部件标识码", "部件标识码", "标识码"),
    "class_code": ("class_code", "objcode", "类别代码"),
    "name": ("name", "glbjmc", "objname", "管理部件名称", "部件名称"),
    "main_dept": ("main_dept", "zgbmdm", "deptcode1", "主管部门代码"),
    "owner_dept": ("owner_dept", "qsdwdm", "deptcode2", "权属单位代码"),
    "maint_dept": ("maint_dept", "yhdwdm", "deptcode3", "养护单位代码"),
    "status": ("status", "glbjzt", "objstate", "管理部件状态", "部件状态"),
    "initial_date": ("initial_date", "csrq", "ordate", "initial_da", "初始日期"),
    "change_date": ("change_date", "bgrq", "chdate", "change_dat", "变更日期"),
    "data_source": ("data_source", "sjly", "datasource", "data_sourc", "数据来源"),
    "note": ("note", "bz", "备注"),
}
#: Every column name an import reads as a standard field: an export leaves out a custom attribute so named (the
#: file would name the field twice, which an import refuses).
STANDARD_NAMES: frozenset[str] = frozenset(a for aliases in FIELD_ALIASES.values() for a in aliases)
#: Columns an export writes (or older exports wrote) whose values the system derives: the scheme and class from
#: the identifier, the unit grid, street and community from the location, department names from their codes.
#: Recognised (lower case) so that re-importing an unedited export changes nothing, and never stored: without
#: this every one of them landed in ``attrs`` and "updated" every component (review11 D6).
DERIVED_COLUMNS: frozenset[str] = frozenset(
    {
        "scheme",
        "szdywgbsm",  # 所在单元网格标识码
        "unit_grid",
        "unit_grid_code",
        "szjddm",  # 所在街道代码 / 名称
        "szjdmc",
        "street_code",
        "strt_code",
        "szsqdm",  # 所在社区代码 / 名称
        "szsqmc",
        "community_code",
        "comm_code",
        "zgbmmc",  # 主管部门 / 权属单位 / 养护单位名称
        "qsdwmc",
        "yhdwmc",
        "bgid",  # 所在单元网格 of CJ/T 214-era data: a grid code, stale once grids change (BGID_NOTE)
        "label_lon",  # a label point inside a shape (LABEL_COLUMNS): from the geometry
        "label_lat",
        "label_x",
        "label_y",
    }
)
#: What an import says of a legacy BGID column (CJ/T 214 所在单元网格), read and not stored (review50 F12).
BGID_NOTE = (
    "{file}: column {column} (所在单元网格, CJ/T 214) is not stored: each component's unit grid comes from its "
    "location (exported as SZDYWGBSM)"
)
#: The department-name columns of a file (lower case; among :data:`DERIVED_COLUMNS`): never stored — the code
#: rules — but compared with the name registered for the code, and a different name is warned about.
DEPT_NAME_COLUMNS: dict[str, str] = {"main_dept": "zgbmmc", "owner_dept": "qsdwmc", "maint_dept": "yhdwmc"}
#: The standard's Chinese names (表2) of the derived columns, by the :data:`DERIVED_COLUMNS` name they stand for:
#: recognised and not stored, as those are (review50 F5).
DERIVED_COLUMNS_ZH: dict[str, str] = {
    "所在单元网格标识码": "szdywgbsm",
    "所在街道代码": "szjddm",
    "所在街道名称": "szjdmc",
    "所在社区代码": "szsqdm",
    "所在社区名称": "szsqmc",
    "主管部门名称": "zgbmmc",
    "权属单位名称": "qsdwmc",
    "养护单位名称": "yhdwmc",
}


def derived_name(column: str) -> str:
    """The :data:`DERIVED_COLUMNS` name a column stands for when it is one (lower case; a Chinese name as its
    abbreviation), else the column lower-cased."""
    key = column.strip().lower()
    return DERIVED_COLUMNS_ZH.get(key, key)


COORD_ALIASES: dict[str, tuple[str, ...]] = {
    "lon": ("lon", "lng", "longitude", "经度"),
    "lat": ("lat", "latitude", "纬度"),
    "x": ("pointx", "x"),
    "y": ("pointy", "y"),
    "wkt": ("wkt", "geometry", "geom"),
}
TEXT_FIELDS: tuple[str, ...] = tuple(FIELD_ALIASES)
ACCEPTED_COLUMNS: tuple[str, ...] = (
    "_row",
    "id",
    "class_code",
    "name",
    "lon",
    "lat",
    "geom_wkb",
    "main_dept",
    "owner_dept",
    "maint_dept",
    "status",
    "initial_date",
    "change_date",
    "data_source",
    "note",
    "attrs",
    "is_update",
)
ERROR_COLUMNS: tuple[str, ...] = cityfiles.REFUSAL_COLUMNS
# Metadata key in DataFrame.attrs (not to be confused with the per-row ``attrs`` column).
META = "gisgrid"
_STORAGE_CRS = CRS.from_epsg(STORAGE_SRID)
#: The fixed refusal reasons of :func:`validate_components` by a stable code: (zh-CN, English). A refusal (file,
#: console, API items) says both, zh first (:func:`gisgrid.texts.bilingual`); the code ties the two together, so
#: either may be reworded. Reasons with row numbers or codes in them are built bilingual where they are made.
REFUSALS: dict[str, tuple[str, str]] = {
    "missing_geometry": ("缺少几何", "missing geometry"),
    "unparseable_geometry": ("几何无法解析(WKT)", "unparseable geometry (WKT)"),
    "missing_lon": ("缺少经度", "missing longitude"),
    "missing_lat": ("缺少纬度", "missing latitude"),
    "unparseable_lon": ("经度无法解析(不是数字)", "unparseable longitude (not a number)"),
    "unparseable_lat": ("纬度无法解析(不是数字)", "unparseable latitude (not a number)"),
    "zero_location": ("坐标为 (0, 0):是占位值,不是位置", "coordinates are (0, 0): a placeholder, not a location"),
    "not_degrees": (
        "不是经纬度:投影坐标(米)需指定源坐标系",
        "not lon/lat degrees: projected coordinates (metres) need the source CRS",
    ),
    "missing_class_code": (
        "缺少部件小类代码(请填写小类代码或完整标识码)",
        "missing class code (give class_code or a full identifier)",
    ),
    "id_not_digits": ("标识码只能包含数字(0-9)", "identifier must contain digits only (0-9)"),
    "date_unrecognised": (
        "日期无法识别(请用 YYYYMMDD、YYYY-MM-DD 或 YYYY/MM/DD)",
        "unrecognised date (use YYYYMMDD, YYYY-MM-DD or YYYY/MM/DD)",
    ),
    "date_impossible": ("日期不存在", "impossible date (no such day)"),
    "unknown_department": ("部门代码不存在(不在部门名录中)", "unknown department code (not in the departments list)"),
    "missing_main_department": (
        "缺少主管部门,且该小类无默认部门",
        "missing main department (主管部门) and the class has no default department",
    ),
}


def refusal(code: str) -> str:
    """The fixed refusal ``code`` (a key of :data:`REFUSALS`) in words, zh-CN first."""
    zh, en = REFUSALS[code]
    return bilingual(zh, en)


#: A sheet's coordinate cell holding a formula whose value was never saved (a program wrote the file): empty to any
#: reader but Excel, which computes it on opening.
UNSAVED_FORMULA_REASON = bilingual(
    "公式没有保存的值:请在 Excel 中打开并保存该文件", "a formula without a saved value: open and save the file in Excel"
)


#: Why a row whose identifier a sheet holds as a number of 16 or more digits is refused (Excel keeps 15).
DIGITS_LOST_REASON = (
    "标识码被 Excel 存成数字,末位已丢失,请将该列设为文本后重新输入 / the identifier is a number in the sheet: Excel "
    "keeps 15 significant digits, so its last digits are lost; format the column as text (文本) and type the "
    "identifiers again"
)
#: Why an identifier with serial 000000 is refused: serials (顺序代码) start at 000001.
SERIAL_ZERO_REASON = "标识码顺序代码不能为 000000 / the identifier's serial is 000000: serials start at 000001"
_MIN_YEAR = 1900  # earlier dates are placeholders such as 0001-01-01, not real survey dates
#: Two positions at most this far apart (degrees, ≈ 1.1 cm) are the same position. The exports write positions
#: to this precision or better: GeoJSON (RFC 7946) rounds to 7 decimals, i.e. at most 0.5e-7° per axis and
#: 0.71e-7° in all; ``--crs`` reprojects there and back within 1e-9°. So an unedited export re-imports at the
#: stored positions (:func:`same_positions`) and inside the district it came from, while a move of 2 cm or more
#: is a move. The one place this precision is stated.
POSITION_TOLERANCE_DEG = 1e-7
# Geometry family by shapely type id (Point, LineString, LinearRing, Polygon, Multi…, GeometryCollection).
_FAMILY = np.array([0, 1, 1, 2, 0, 1, 2, 7])


# --------------------------------------------------------------------------------------------- identifiers


def attrs_problem(attrs: dict[str, Any]) -> str | None:
    """Why ``attrs`` is too big to store (see ``ATTRS_MAX_*`` and ``texts.MAX_JSON_DEPTH``), or None."""
    if len(attrs) > ATTRS_MAX_KEYS:
        return f"at most {ATTRS_MAX_KEYS} keys, got {len(attrs)}"
    long_key = next((k for k in attrs if len(k) > ATTRS_MAX_KEY_CHARS), None)
    if long_key is not None:
        return f"keys of at most {ATTRS_MAX_KEY_CHARS} characters, got {len(long_key)}"
    deep = too_deep_path(attrs, "attrs")  # first: json.dumps recurses
    if deep is not None:
        return too_deep_words(deep)
    size = len(json.dumps(attrs, ensure_ascii=False))
    if size > ATTRS_MAX_JSON_CHARS:
        return f"at most {ATTRS_MAX_JSON_CHARS} characters as JSON, got {size}"
    return None


def identifier_length(scheme: str) -> int:
    return DISTRICT_DIGITS + CODE_DIGITS[check_scheme(scheme)] + SERIAL_DIGITS


def identifier_pattern(scheme: str) -> str:
    """Regex (for ``re.fullmatch``) of an identifier, one group per part: district, class, serial."""
    k = CODE_DIGITS[check_scheme(scheme)]
    return rf"([0-9]{{{DISTRICT_DIGITS}}})([0-9]{{{k}}})([0-9]{{{SERIAL_DIGITS}}})"


def parse_identifier(identifier: str, scheme: str) -> tuple[str, str, str]:
    """(district, class_code, serial) of an identifier; InvalidInput if it has the wrong shape."""
    m = re.fullmatch(identifier_pattern(scheme), identifier.strip())
    if not m:
        raise InvalidInput(
            f"identifier {identifier!r} is not {identifier_length(scheme)} digits ({scheme})",
            detail={"identifier": identifier, "scheme": scheme},
        )
    return m.group(1), m.group(2), m.group(3)


def format_identifier(district: str, class_code: str, serial: int | str, scheme: str) -> str:
    """Build an identifier from its parts (serial zero-padded to 6 digits)."""
    k = CODE_DIGITS[check_scheme(scheme)]
    serial_text = f"{int(serial):0{SERIAL_DIGITS}d}" if isinstance(serial, int) else str(serial)
    parts = (
        (district, DISTRICT_DIGITS, "district"),
        (class_code, k, "class code"),
        (serial_text, SERIAL_DIGITS, "serial"),
    )
    for value, digits, label in parts:
        if not (value.isascii() and value.isdigit() and len(value) == digits):
            raise InvalidInput(f"{label} {value!r} must be {digits} digits for {scheme}", detail={label: value})
    return district + class_code + serial_text


def same_positions(stored: np.ndarray, given: np.ndarray) -> np.ndarray:
    """Element-wise: is ``given`` the ``stored`` geometry written out and read back (lon/lat degrees)?

    True when both are of one family (point, line or polygon; a Shapefile makes a polygon multi when its layer
    mixes them), have as many coordinates and no point of either is more than :data:`POSITION_TOLERANCE_DEG`
    from the other (Hausdorff distance: GeoJSON's re-oriented rings compare equal). Missing → False."""
    stored = np.asarray(stored, dtype=object)
    given = np.asarray(given, dtype=object)
    present = ~(shapely.is_missing(stored) | shapely.is_missing(given))
    out = np.zeros(len(stored), dtype=bool)
    if not present.any():
        return out
    a, b = stored[present], given[present]
    same = (_FAMILY[shapely.get_type_id(a)] == _FAMILY[shapely.get_type_id(b)]) & (
        shapely.get_num_coordinates(a) == shapely.get_num_coordinates(b)
    )
    close = np.zeros(len(a), dtype=bool)
    close[same] = shapely.hausdorff_distance(a[same], b[same]) <= POSITION_TOLERANCE_DEG
    out[present] = close
    return out


# --------------------------------------------------------------------------------------------- reading


def _text(series: pd.Series) -> pd.Series:
    """Any column as stripped text, missing → "" (integers without '.0', dates as YYYY-MM-DD)."""
    if pd.api.types.is_datetime64_any_dtype(series):
        return series.dt.strftime("%Y-%m-%d").fillna("").astype(object).astype(str)
    if pd.api.types.is_float_dtype(series):
        values = series.to_numpy(dtype=float)
        finite = np.isfinite(values)
        integral = finite & (np.mod(values, 1, where=finite, out=np.zeros_like(values)) == 0)
        out = np.full(len(values), "", dtype=object)
        out[integral] = values[integral].astype(np.int64).astype(str)
        out[finite & ~integral] = values[finite & ~integral].astype(str)
        return pd.Series(out, index=series.index, dtype=str)
    return _strip(series)


def _json_values(attributes: pd.DataFrame) -> dict[str, np.ndarray]:
    """The objects and lists of a layer's JSON properties (GDAL reads a GeoJSON property holding one as a dict or
    list), by column, None elsewhere; each such value is replaced by its JSON text in ``attributes``, which is read
    as text (a dict cannot be a name or a code). Only columns of Python objects are looked at (text is a string
    column)."""
    found: dict[str, np.ndarray] = {}
    for column in attributes.columns:
        if attributes[column].dtype != object:
            continue
        values = attributes[column].to_numpy(dtype=object)
        is_json = np.fromiter((isinstance(v, dict | list) for v in values), dtype=bool, count=len(values))
        if is_json.any():
            kept = np.full(len(values), None, dtype=object)
            text = values.copy()
            for i in np.flatnonzero(is_json):
                kept[i], text[i] = values[i], _json_text(values[i])
            found[str(column)] = kept
            attributes[column] = text
    return found


def _json_text(value: Any) -> str:
    if too_deep_path(value, "") is not None:  # json.dumps would recurse; as attrs the row is refused
        return f"(JSON {too_deep_words()})"
    return json.dumps(value, ensure_ascii=False)


def _strip(series: pd.Series) -> pd.Series:
    """``str.strip`` done once per distinct value (pandas' string methods are per-element Python without pyarrow);
    many distinct short values (ids, coordinates) go through numpy's C ``strings.strip`` instead."""
    values = series.to_numpy(dtype=object, copy=True)
    values[pd.isna(values)] = ""
    codes, uniques = pd.factorize(values)
    uniques = np.asarray(uniques, dtype=object).astype(str).astype(object)
    # Fixed-width arrays only for short values: one long note must not make every cell that wide.
    if len(uniques) > 1000 and max(map(len, uniques)) <= 64:
        return pd.Series(np.strings.strip(uniques.astype(str)).astype(object)[codes], index=series.index, dtype=str)
    stripped = np.array([u.strip() for u in uniques], dtype=object)
    return pd.Series(stripped[codes] if len(uniques) else values, index=series.index, dtype=str)


def _records(table: pd.DataFrame, columns: list[str]) -> list[dict[str, str]]:
    # Faster than DataFrame.to_dict("records"), which boxes every value through pandas.
    arrays = [table[c].to_numpy(dtype=object) for c in columns]
    return [dict(zip(columns, values, strict=True)) for values in zip(*arrays, strict=True)]


def read_excel_table(
    path: Path, sheet: str | None = None, encoding: str | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """An Excel table read as :func:`cityfiles.read_table_csv` reads a CSV (text columns, ``_row`` = the sheet row,
    header = row 1), so that it goes through the same checks: a sheet (``sheet``, else the first) of an .xlsx or an
    Excel 97-2003 .xls."""
    if encoding is not None:
        raise InvalidInput(
            f"{path}: a text encoding applies to CSV and Shapefiles only; an Excel workbook says its own",
            detail={"encoding": encoding},
        )
    table, notes = read_workbook_table(path, sheet)
    cityfiles.refuse_repeated_columns(path, table.attrs.pop(HEADER_CELLS))  # as a CSV's (cityfiles.read_frame)
    return table, notes


#: Columns of a label point (a point inside each shape: an .xlsx grids export, and a components one before it wrote
#: lon/lat and wkt), lower case: never a component's geometry, which would turn its line or polygon into a point.
LABEL_COLUMNS: frozenset[str] = frozenset({"label_lon", "label_lat", "label_x", "label_y"})


def label_refusal(path: Path, column: str) -> str:
    """Why a file's label-point column is not taken as coordinates."""
    return bilingual(
        f"{path}:列 {column} 是每个图形内部的标注点,不是部件的几何,不能作为坐标导入(线、面会变成点);请重新导出"
        "(.xlsx 导出现以 lon/lat 写点、以 wkt 写其他图形)或改用 GeoPackage、GeoJSON、CSV 导出",
        f"{path}: column {column} is a label point inside each shape, not the component's geometry, and is not "
        "imported as coordinates (a line or polygon would become a point); export the components again (the .xlsx "
        "export writes lon/lat for points and wkt for the other shapes) or use the GeoPackage, GeoJSON or CSV export",
    )


def _explicit(columns: list[str], name: str | None, argument: str) -> str | None:
    if name is None:
        return None
    for c in columns:
        if c == name or c.strip().lower() == name.strip().lower():
            return c
    raise InvalidInput(
        f"{argument}={name!r}: no such column; columns are {', '.join(columns)}",
        detail={"argument": argument, "field": name, "columns": columns},
    )


def _parse_crs(src_crs: str | None) -> CRS | None:
    if src_crs is None:
        return None
    try:
        return CRS.from_user_input(src_crs)
    except CRSError as exc:
        raise InvalidInput(f"src_crs={src_crs!r}: unknown CRS ({exc})", detail={"src_crs": src_crs}) from exc


def _is_storage_like(crs: CRS | None) -> bool:
    # CGCS2000 and WGS-84 lon/lat are treated as equal (one frame; ~1 m apart today by plate motion, ignored:
    # see gisgrid.geodesy).
    if crs is None:
        return True
    return crs.to_epsg() in (STORAGE_SRID, 4326) or crs.equals(CRS.from_user_input("OGC:CRS84"))


def _points_to_storage(x: np.ndarray, y: np.ndarray, crs: CRS | None, datum: Datum) -> tuple[np.ndarray, np.ndarray]:
    x = x.copy()
    y = y.copy()
    ok = np.isfinite(x) & np.isfinite(y)
    if not _is_storage_like(crs) and ok.any():
        transformer = Transformer.from_crs(crs, _STORAGE_CRS, always_xy=True)
        x[ok], y[ok] = transformer.transform(x[ok], y[ok])
    if datum in ("gcj02", "bd09") and ok.any():
        x[ok], y[ok] = to_storage(x[ok], y[ok], datum)
    return x, y


def _geoms_to_storage(geoms: np.ndarray, crs: CRS | None, datum: Datum) -> np.ndarray:
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    out = np.where(present, geoms, None)  # type: ignore[call-overload]  # numpy stubs: no None scalar
    if not _is_storage_like(crs) and present.any():
        out[present] = gpd.GeoSeries(out[present], crs=crs).to_crs(_STORAGE_CRS).to_numpy()
    if datum in ("gcj02", "bd09") and present.any():
        # Densified first: an edge straight in GCJ-02/BD-09 is not straight in CGCS2000 (metres off over km).
        out[present] = transform_geometries(densify_lonlat(out[present]), datum)
    return out


def _wrong_zone_hint(crs_text: str | None, coverage: shapely.Geometry) -> tuple[str, str]:
    """When no row of a file lies in the district and the file's CRS is a CGCS2000 3° Gauss–Krüger zone other than
    the district's, say so: a neighbouring zone's label on the same metres puts every point 3° (~270 km) away, and
    "outside the district" alone does not tell the analyst why. The hint in zh-CN and in English ("" both if none)."""
    from gisgrid.grids.cutting import choose_metric_crs  # grids imports components: here, not at the top

    epsg = CRS.from_user_input(crs_text).to_epsg() if crs_text else None
    given = geodesy.gk_zone_of_epsg(epsg)
    if given is None or given.degrees != 3:
        return "", ""
    centre = shapely.centroid(coverage)
    own = geodesy.gk_zone_of_epsg(choose_metric_crs(float(centre.x), float(centre.y)).to_epsg())
    if own is None or own.zone == given.zone:
        return "", ""
    zh = (
        f";没有一行位于本区:文件坐标系 EPSG:{epsg} 是中央经线 {given.cm}°E 的高斯-克吕格分带,本区为 {own.cm}°E,"
        "若分带标错请用 --src-crs"
    )
    return zh, (
        f"; no row lies in the district: the file's CRS EPSG:{epsg} is the Gauss–Krüger zone of CM {given.cm}°E, the "
        f"district's is CM {own.cm}°E (EPSG:{own.cm_epsg}, or EPSG:{own.epsg} with the zone number in the eastings) "
        "— if the file was labelled with the wrong zone, pass --src-crs"
    )


def zone_of_easting(easting: float) -> tuple[int, int, int] | None:
    """(zone, EPSG, central meridian °E) of a CGCS2000 Gauss–Krüger easting that carries its zone number in front
    (:func:`gisgrid.geodesy.gk_zone_of_easting`); None for any other value."""
    zone = geodesy.gk_zone_of_easting(easting)
    return None if zone is None else (zone.zone, zone.epsg, zone.cm)


def _swap_remedy(fields: tuple[str, str] | None, layer: bool = False) -> tuple[str, str]:
    """How to swap X and Y of a file read from the columns ``fields`` (x, y), or of a ``layer``'s own geometry,
    zh-CN and English."""
    if layer:  # no columns to name
        return f"请对调 X 与 Y({geodesy.SWAP_IN_FILE_ZH})", f"swap them ({geodesy.SWAP_IN_FILE})"
    if fields is None:
        return "请对调 X 与 Y(--x-field/--y-field)", "swap X and Y (--x-field/--y-field)"
    fx, fy = fields
    return (
        f"请对调 {fx} 与 {fy} 两列,或用 --x-field {fy} --y-field {fx}",
        f"swap the columns {fx} and {fy}, or pass --x-field {fy} --y-field {fx}",
    )


def _beyond_crs_reasons(x: np.ndarray, y: np.ndarray, crs: CRS) -> list[str]:
    """Why each of these projected points, numbers all, has no position in ``crs`` (PROJ gives inf: far outside
    the zone), naming the CRS and the likely cause, zh-CN first (review50 F4: it was "not a number"): the zone
    number in the easting while the CRS has none (or another zone), X and Y swapped as survey tables write them
    (X = north: the Y value is the zone-numbered easting), else that the point lies outside the CRS's area."""
    name, epsg = crs.to_string(), crs.to_epsg()
    head_zh, head_en = f"坐标不在 {name} 的范围内", f"coordinates outside the area of {name}"
    reasons = []
    for xi, yi in zip(x, y, strict=True):
        in_x, in_y = zone_of_easting(xi), zone_of_easting(yi)
        if in_x is not None and in_x[1] != epsg:
            zone, suggested, _ = in_x
            zh = f"{head_zh}:东坐标 {int(xi)} 带带号 {zone},应为 EPSG:{suggested}?"
            en = f"{head_en}: the easting {int(xi)} carries the zone number {zone}; EPSG:{suggested}?"
        elif in_x is None and in_y is not None:
            zone, suggested, _ = in_y
            also_zh = "" if suggested == epsg else f",且应为 EPSG:{suggested}"
            also_en = "" if suggested == epsg else f", and then EPSG:{suggested}"
            zh = f"{head_zh}:X 与 Y 是否对调?(Y 值 {int(yi)} 是带带号 {zone} 的东坐标{also_zh})"
            en = f"{head_en}: X and Y swapped? (the Y value {int(yi)} is an easting with zone number {zone}{also_en})"
        else:
            zh = f"{head_zh}(离该坐标系的适用区域太远:坐标系或 X/Y 顺序是否有误?)"
            en = f"{head_en} (too far from where it applies: is the CRS, or the order of X and Y, wrong?)"
        reasons.append(bilingual(zh, en))
    return reasons


#: No CRS's coordinates reach this far: projected metres with the zone number in the eastings stay below 1e8
#: (zone 45: 45,500,000 m), degrees below 360.
NO_CRS_BEYOND = 1e8


def _refuse_projected(path: Path, lon: np.ndarray, lat: np.ndarray, crs: CRS | None) -> None:
    """Refuse the file, once, when none of its coordinates is lon/lat degrees although it has no CRS (or a lon/lat
    one): projected metres, whose CRS the user has to give — not a refusal of every row. (0, 0) placeholders and
    missing coordinates are left to the rows' checks, and so is a file with some rows in degrees (typos).

    So are numbers no CRS has (inf, nan, 1e308: beyond :data:`NO_CRS_BEYOND`): they do not decide the file's CRS —
    a file of a few such rows was refused whole, "not lon/lat (bounds [inf, …])", and numpy's overflow warning
    printed (review43 U2) — but are refused by row, as in a larger file."""
    plausible = (np.abs(lon) < NO_CRS_BEYOND) & (np.abs(lat) < NO_CRS_BEYOND)  # nan compares False: left out
    given = plausible & ~((lon == 0) & (lat == 0))
    if not given.any() or ((np.abs(lon[given]) <= 180) & (np.abs(lat[given]) <= 90)).any():
        return
    bounds = [float(lon[given].min()), float(lat[given].min()), float(lon[given].max()), float(lat[given].max())]
    shown = np.round(bounds, 1).tolist()
    if crs is None:
        message = f"{path}: the file has no CRS and its coordinates are not lon/lat (bounds {shown}); "
    else:
        message = (
            f"{path}: coordinates are not lon/lat in the declared CRS {crs.to_string()} (bounds {shown}): the CRS "
            "is probably wrong; "
        )
    raise InvalidInput(message + _zone_hint(lon[given], lat[given]), detail={"path": str(path), "bounds": bounds})


def _zone_hint(x: np.ndarray, y: np.ndarray) -> str:
    """What CRS to pass for these projected metres (:func:`gisgrid.geodesy.projected_crs_hint`, as the boundary
    import says it): the zone their eastings name, or that X and Y look swapped."""
    return geodesy.projected_crs_hint(x, y, swap="--x-field, --y-field")


@dataclass
class _Source:
    """A component file as read, before its columns are mapped: the table of text cells (with ``_row``), the CRS
    (given, the layer's or the workbook's), the layer's geometries (None: none, or not a layer) and what the cells
    held beside their text."""

    table: pd.DataFrame
    notes: list[str]
    crs: CRS | None
    geoms: np.ndarray | None = None
    json_values: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # CSV and sheet cells are text
    long_numbers: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # 16+ digit numbers, by column
    unsaved_formulas: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # no saved value, by column


def _read_options(
    path: Path, src_datum: str | None, src_crs: str | None, encoding: str | None
) -> tuple[Datum, CRS | None, str | None]:
    """The datum, CRS and text encoding a file is read with, refused before reading it when unknown."""
    if not path.exists():
        raise InvalidInput(f"{path}: file not found", detail={"path": str(path)})
    datum = (src_datum or "cgcs2000").lower()
    if not is_datum(datum):
        raise InvalidInput(f"src_datum={src_datum!r}: expected one of {', '.join(DATUMS)}", detail={"datum": src_datum})
    crs = _parse_crs(src_crs)
    if encoding is not None:
        try:
            encoding = codecs.lookup(encoding).name
        except LookupError:
            raise InvalidInput(
                f"{path}: unknown text encoding {encoding!r} (e.g. utf-8, gbk, gb18030, big5, latin-1)",
                detail={"encoding": encoding},
            ) from None
    return datum, crs, encoding


def _read_source(path: Path, layer: str | None, encoding: str | None, crs: CRS | None) -> _Source:
    """Read a workbook, a CSV or a vector layer into a :class:`_Source`."""
    if excel_kind(path) is not None:
        table, notes = read_excel_table(path, layer, encoding)
        source = _Source(
            table,
            notes,
            crs,
            long_numbers=table.attrs.pop(LONG_NUMBERS, {}),
            unsaved_formulas=table.attrs.pop(UNSAVED_FORMULAS, {}),
        )
        stated = workbook_crs(path, layer) if crs is None else None
        if stated is not None:  # an .xlsx export in a projected CRS: x/y in metres, the CRS on its own sheet
            source.crs = _parse_crs(stated)
            notes.append(f"{path.name}: coordinates in {stated}, as the workbook's {CRS_SHEET} sheet says")
        return source
    if path.suffix.lower() in (".csv", ".txt"):
        table, notes = cityfiles.read_table_csv(path, encoding)
        return _Source(table, notes, crs)
    notes = []
    gdf = read_layer_any(path, layer, encoding=encoding, notes=notes)
    if crs is None and gdf.crs is not None:
        crs = CRS.from_user_input(gdf.crs)
    geometry = np.asarray(gdf.geometry.values, dtype=object)
    attributes = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    json_values = _json_values(attributes)
    table = pd.DataFrame({str(c): _text(attributes[c]) for c in attributes.columns}, index=attributes.index)
    table = table.reset_index(drop=True)
    table.insert(0, "_row", np.arange(1, len(table) + 1, dtype=np.int64))
    geoms = None if (shapely.is_missing(geometry) | shapely.is_empty(geometry)).all() else geometry
    return _Source(table, notes, crs, geoms=geoms, json_values=json_values)


@dataclass
class _CoordinateColumns:
    """Where a file's coordinates are: a lon/lat (x/y) ``pair`` of columns, else a ``wkt`` column (with the lon/lat
    or x/y ``points`` of the point rows beside it: an .xlsx components export), else the layer's geometry."""

    pair: tuple[str, str] | None
    wkt: str | None
    points: tuple[str, str] | None


def _coordinate_columns(
    path: Path,
    columns: list[str],
    taken: set[str],
    explicit: tuple[str | None, str | None, str | None, str | None],
    has_geometry: bool,
) -> _CoordinateColumns:
    """The file's coordinate columns: the ``explicit`` ones (--lon-field, --lat-field, --x-field, --y-field), else
    (no layer geometry) a WKT column or a lon/lat or x/y pair found by name; refused when there is none, or when an
    explicit pair is half given or names an export's label column. The columns found are added to ``taken``."""
    lon_col, lat_col, x_col, y_col = explicit
    wkt_col = None
    points: tuple[str, str] | None = None  # lon/lat (x/y) of the point rows beside a WKT column
    if (lon_col is None) != (lat_col is None) or (x_col is None) != (y_col is None):
        raise InvalidInput(
            bilingual(
                "请同时给出 --lon-field 和 --lat-field(或同时给出 --x-field 和 --y-field)",
                "give both --lon-field and --lat-field (or both --x-field and --y-field)",
            )
        )
    label = next((c for c in explicit if c and c.strip().lower() in LABEL_COLUMNS), None)
    if label is not None:
        raise InvalidInput(label_refusal(path, label), detail={"path": str(path), "field": label})
    pair = (lon_col, lat_col) if lon_col else (x_col, y_col) if x_col else None
    if pair is None and not has_geometry:
        wkt_col = cityfiles.find_field(path, columns, "wkt", COORD_ALIASES["wkt"], taken)
        lon_a, lat_a, x_a, y_a = (
            cityfiles.find_field(path, columns, f, COORD_ALIASES[f], taken) for f in ["lon", "lat", "x", "y"]
        )
        found = (lon_a, lat_a) if lon_a and lat_a else (x_a, y_a) if x_a and y_a else None
        if wkt_col is not None:
            points = found
        else:
            pair = found
        if pair is None and wkt_col is None:
            _refuse_no_coordinates(path, columns)
    if pair is not None:
        taken.update(pair)  # type: ignore[arg-type]
    if wkt_col is not None:
        taken.add(wkt_col)
    if points is not None:
        taken.update(points)
    return _CoordinateColumns(pair, wkt_col, points)  # type: ignore[arg-type]


def _refuse_no_coordinates(path: Path, columns: list[str]) -> None:
    """Refuse a file with neither geometry nor coordinate columns, naming an export's label column if it has one."""
    labels = [c for c in columns if c.strip().lower() in LABEL_COLUMNS]
    if labels:  # an .xlsx components export written before the sheet carried lon/lat and wkt
        raise InvalidInput(label_refusal(path, labels[0]), detail={"path": str(path), "columns": columns})
    raise InvalidInput(
        f"{path}: no coordinates: no geometry, no WKT column and no lon/lat (经度/纬度) or "
        "PointX/PointY columns; name them with --lon-field/--lat-field or --x-field/--y-field. "
        f"Columns: {', '.join(columns)}",
        detail={"path": str(path), "columns": columns},
    )


def _mark_unsaved_formulas(raw: pd.DataFrame, columns: tuple[str, str], unsaved: dict[str, np.ndarray]) -> None:
    """The lon/lat cells of ``columns`` that were formulas without a saved value: ``lon_unsaved_formula`` and
    ``lat_unsaved_formula`` in ``raw`` (empty, and said why: the formula's value was never saved)."""
    for field, column in zip(("lon", "lat"), columns, strict=True):
        if column in unsaved:
            raw[f"{field}_unsaved_formula"] = unsaved[column]


def _column_positions(
    raw: pd.DataFrame, source: _Source, pair: tuple[str, str], datum: Datum, meta: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """Storage lon/lat of a file whose coordinates are a pair of columns, marking in ``raw`` the rows that look
    swapped or lie beyond the CRS and keeping the text as given."""
    table, crs, n = source.table, source.crs, len(source.table)
    lon_text = _strip(table[pair[0]])
    lat_text = _strip(table[pair[1]])
    x = pd.to_numeric(lon_text, errors="coerce").to_numpy(dtype=float)
    y = pd.to_numeric(lat_text, errors="coerce").to_numpy(dtype=float)
    lon, lat = _points_to_storage(x, y, crs, datum)
    _mark_swapped(raw, x, y, crs, datum, np.ones(n, dtype=bool))
    _mark_beyond_crs(raw, x, y, lon, lat, crs, lon_text.to_numpy() + "," + lat_text.to_numpy())
    raw["lon_text"], raw["lat_text"] = lon_text.to_numpy(), lat_text.to_numpy()
    _mark_unsaved_formulas(raw, pair, source.unsaved_formulas)
    meta["coordinates"] = "columns"
    meta["coordinate_fields"] = list(pair)
    return lon, lat


def _given_geometries(
    raw: pd.DataFrame, path: Path, source: _Source, wkt_col: str | None, meta: dict[str, Any]
) -> np.ndarray:
    """The geometries as given (a WKT column's, else the layer's), 2-D: heights (Z) and measures (M) are dropped,
    and said in the notes (review50 F11)."""
    geoms = source.geoms
    if wkt_col is not None:
        wkt_text = _strip(source.table[wkt_col])
        geoms = shapely.from_wkt(_none_if_empty(wkt_text).to_numpy(), on_invalid="ignore")
        raw["geometry_text"] = wkt_text.to_numpy()
        meta["coordinate_fields"] = [wkt_col]
    else:
        meta["coordinate_fields"] = ["geometry"]
    assert geoms is not None
    given_geoms = np.asarray(geoms, dtype=object)
    with_zm = ~shapely.is_missing(given_geoms) & (shapely.has_z(given_geoms) | shapely.has_m(given_geoms))
    if with_zm.any():
        given_geoms = np.where(with_zm, shapely.force_2d(given_geoms), given_geoms)
        k = int(with_zm.sum())
        source.notes.append(f"{path.name}: Z/M 值已舍弃: {k} 行 / Z/M values dropped: {k} row{'' if k == 1 else 's'}")
    return given_geoms


def _geometry_positions(
    raw: pd.DataFrame,
    path: Path,
    source: _Source,
    columns: _CoordinateColumns,
    datum: Datum,
    geom_wkb: np.ndarray,
    meta: dict[str, Any],
) -> tuple[np.ndarray, np.ndarray]:
    """Storage lon/lat of a file whose coordinates are geometries (a layer's or a WKT column's; the point rows'
    lon/lat beside a WKT column): a point's own, a point on the surface of another shape (whose WKB goes into
    ``geom_wkb``), marking in ``raw`` the rows that look swapped or lie beyond the CRS."""
    crs, n = source.crs, len(source.table)
    given_geoms = _given_geometries(raw, path, source, columns.wkt, meta)
    geoms = _geoms_to_storage(given_geoms, crs, datum)
    present = ~shapely.is_missing(geoms)
    is_point = present & (shapely.get_type_id(geoms) == 0)
    rep = np.where(is_point, geoms, None)  # type: ignore[call-overload]  # numpy stubs: no None scalar
    others = present & ~is_point
    if others.any():
        rep[others] = shapely.point_on_surface(geoms[others])
        geom_wkb[others] = shapely.to_wkb(geoms[others])
    lon = np.full(n, np.nan)
    lat = np.full(n, np.nan)
    lon[present] = shapely.get_x(rep[present])
    lat[present] = shapely.get_y(rep[present])
    beyond = present & ~(np.isfinite(lon) & np.isfinite(lat))
    if beyond.any():  # a layer's geometry in the wrong CRS: said as for x/y, at the point it was checked at
        x, y = np.full(n, np.nan), np.full(n, np.nan)
        given_rep = shapely.point_on_surface(given_geoms[beyond])
        x[beyond], y[beyond] = shapely.get_x(given_rep), shapely.get_y(given_rep)
        _mark_beyond_crs(
            raw, x, y, lon, lat, crs, np.array([f"{_num(a)},{_num(b)}" for a, b in zip(x, y, strict=True)])
        )
    if present.any():  # X/Y swapped in a projected layer: told as for x/y columns, at the point checked
        gx, gy = np.full(n, np.nan), np.full(n, np.nan)
        given_rep = shapely.point_on_surface(given_geoms[present])
        gx[present], gy[present] = shapely.get_x(given_rep), shapely.get_y(given_rep)
        _mark_swapped(raw, gx, gy, crs, datum, present)
    meta["coordinates"] = "geometry"
    if columns.points is not None:  # wkt for the shapes, lon/lat (x/y) for the points: an .xlsx components export
        _mixed_points(raw, source, columns, datum, is_point, lon, lat)
        meta["coordinates"] = "mixed"
        meta["coordinate_fields"] = [columns.wkt, *columns.points]
    return lon, lat


def _mixed_points(
    raw: pd.DataFrame,
    source: _Source,
    columns: _CoordinateColumns,
    datum: Datum,
    is_point: np.ndarray,
    lon: np.ndarray,
    lat: np.ndarray,
) -> None:
    """In a sheet with a WKT column and lon/lat (x/y) columns, the rows without a WKT take their position from
    the columns (into ``lon``/``lat``); a row with both is marked ``coordinates_twice`` unless the WKT is a point
    at the position given."""
    assert columns.points is not None
    crs = source.crs
    wkt_given = raw["geometry_text"].to_numpy(dtype=object) != ""
    lon_text, lat_text = (_strip(source.table[c]).to_numpy(dtype=object) for c in columns.points)
    x = pd.to_numeric(pd.Series(lon_text), errors="coerce").to_numpy(dtype=float)
    y = pd.to_numeric(pd.Series(lat_text), errors="coerce").to_numpy(dtype=float)
    point_lon, point_lat = _points_to_storage(x, y, crs, datum)
    lon[~wkt_given], lat[~wkt_given] = point_lon[~wkt_given], point_lat[~wkt_given]
    _mark_swapped(raw, x, y, crs, datum, ~wkt_given)
    raw["lon_text"], raw["lat_text"] = lon_text, lat_text
    _mark_unsaved_formulas(raw, columns.points, source.unsaved_formulas)
    both = wkt_given & ((lon_text != "") | (lat_text != ""))
    with np.errstate(invalid="ignore"):  # a point WKT at the lon/lat given is one position, said twice
        same = is_point & (np.abs(lon - point_lon) <= POSITION_TOLERANCE_DEG)
        same &= np.abs(lat - point_lat) <= POSITION_TOLERANCE_DEG
    raw["coordinates_twice"] = both & ~same


def _other_columns(
    raw: pd.DataFrame,
    path: Path,
    source: _Source,
    columns: list[str],
    taken: set[str],
    meta: dict[str, Any],
) -> None:
    """The columns no canonical field took: derived ones (recomputed, never stored; department names kept aside
    to be compared with the registered ones) and the custom attributes (``attrs``; a GeoJSON property's object or
    list kept as JSON)."""
    table, n = source.table, len(source.table)
    derived = [c for c in columns if c not in taken and derived_name(c) in DERIVED_COLUMNS]
    meta["derived"] = derived
    source.notes.extend(BGID_NOTE.format(file=path.name, column=c) for c in derived if c.strip().lower() == "bgid")
    meta["dept_name_fields"] = {}
    for canonical, alias in DEPT_NAME_COLUMNS.items():
        column = next((c for c in derived if derived_name(c) == alias), None)
        if column is not None:  # kept aside to be compared with the registered name, not stored
            raw[f"{canonical}_name"] = _strip(table[column]).to_numpy()
            meta["dept_name_fields"][canonical] = column
    rest = [c for c in columns if c not in taken and c not in derived]
    meta["custom_columns"] = rest  # refused by their own name: not to be taken for a canonical field's
    raw["attrs"] = _records(table, rest) if rest else [{} for _ in range(n)]
    nested = [c for c in rest if c in source.json_values]
    for column in nested:  # an object or list a GeoJSON property holds is kept as JSON, not as its text
        values = source.json_values[column]
        for i in np.flatnonzero(values != None):  # noqa: E711 - elementwise
            raw.at[i, "attrs"][column] = values[i]
    meta["json_columns"] = nested


def read_component_file(
    path: Path | str,
    *,
    layer: str | None = None,
    lon_field: str | None = None,
    lat_field: str | None = None,
    x_field: str | None = None,
    y_field: str | None = None,
    src_crs: str | None = None,
    src_datum: str | None = None,
    class_field: str | None = None,
    encoding: str | None = None,
) -> pd.DataFrame:
    """Read a component file into a raw frame (see the module docstring).

    ``encoding`` overrides the text encoding of a CSV or Shapefile (default: CSV UTF-8, else GB18030; Shapefile
    as ``vectorio.read_layer_any`` decides).

    Columns: ``_row``, the text fields (``id`` … ``note``, "" when absent), ``lon``/``lat`` (float, storage
    datum, NaN when missing or unparseable), ``lon_text``/``lat_text`` (the given text, column input only),
    ``geometry_text`` (CSV WKT input only), ``geom_wkb`` (non-point geometries, else None) and ``attrs``
    (dict of the other columns). ``df.attrs["gisgrid"]`` records where coordinates came from and notes
    (e.g. the GBK fallback)."""
    path = Path(path)
    datum, crs, encoding = _read_options(path, src_datum, src_crs, encoding)
    source = _read_source(path, layer, encoding, crs)
    table, notes, crs = source.table, source.notes, source.crs

    if crs is not None:
        ballpark = ballpark_datum_warning(crs, path.name)
        if ballpark:  # old datums (Beijing 1954, Xian 1980): positions may be tens of metres off
            notes.append(ballpark)
            warnings.warn(ballpark, DatumApproximate, stacklevel=2)

    columns = [c for c in table.columns if c != "_row"]
    cityfiles.refuse_repeated_columns(path, columns)  # a layer's (a CSV's and a sheet's are, as they were read)
    taken: set[str] = set()
    mapping: dict[str, str] = {}  # canonical → source column
    explicit_class = _explicit(columns, class_field, "--class-field")
    if explicit_class:
        mapping["class_code"] = explicit_class
        taken.add(explicit_class)

    # Coordinates first, so that e.g. an explicit x/y pair is not also read as something else.
    explicit = (
        _explicit(columns, lon_field, "--lon-field"),
        _explicit(columns, lat_field, "--lat-field"),
        _explicit(columns, x_field, "--x-field"),
        _explicit(columns, y_field, "--y-field"),
    )
    found = _coordinate_columns(path, columns, taken, explicit, source.geoms is not None)
    if found.pair is not None:
        source.geoms = None  # explicit/attribute coordinates win over the layer geometry

    for canonical, aliases in FIELD_ALIASES.items():
        if canonical in mapping:
            continue
        column = cityfiles.find_field(path, columns, canonical, aliases, taken)
        if column is not None:
            mapping[canonical] = column
            taken.add(column)

    n = len(table)
    raw = pd.DataFrame({"_row": table["_row"].to_numpy()})
    for canonical in TEXT_FIELDS:
        raw[canonical] = _strip(table[mapping[canonical]]) if canonical in mapping else ""
    if "id" in mapping and mapping["id"] in source.long_numbers:  # identifiers Excel cut to 15 digits: refused
        raw["id_digits_lost"] = source.long_numbers[mapping["id"]]

    geom_wkb = np.full(n, None, dtype=object)
    meta: dict[str, Any] = {"notes": notes, "fields": mapping, "datum": datum, "crs": crs.to_string() if crs else None}
    if found.pair is not None:
        lon, lat = _column_positions(raw, source, found.pair, datum, meta)
    else:
        lon, lat = _geometry_positions(raw, path, source, found, datum, geom_wkb, meta)
    if _is_storage_like(crs):
        _refuse_projected(path, lon, lat, crs)
    raw["lon"] = lon
    raw["lat"] = lat
    raw["geom_wkb"] = geom_wkb
    _other_columns(raw, path, source, columns, taken, meta)
    raw.attrs[META] = meta
    return raw


def _mark_swapped(
    raw: pd.DataFrame, x: np.ndarray, y: np.ndarray, crs: CRS | None, datum: Datum, rows: np.ndarray
) -> None:
    """Where the ``rows`` of given numbers ``x``/``y`` in a projected CRS would lie read the other way round (y as
    X, x as Y: survey tables write X = north), in storage lon/lat: ``swapped_lon``/``swapped_lat`` in ``raw``
    (NaN elsewhere), for :func:`validate_components` to say "X and Y look swapped" of a row outside the district
    that swapped lies in it. Nothing marked without a projected CRS: a lon/lat swap is told by the district's
    bounds alone."""
    if crs is None or _is_storage_like(crs) or not crs.is_projected:
        return
    slon, slat = _points_to_storage(y, x, crs, datum)
    for column, swapped in (("swapped_lon", slon), ("swapped_lat", slat)):  # rows marked before are kept
        before = raw[column].to_numpy(dtype=float) if column in raw.columns else np.full(len(raw), np.nan)
        raw[column] = np.where(rows, swapped, before)


def _mark_beyond_crs(
    raw: pd.DataFrame,
    x: np.ndarray,
    y: np.ndarray,
    lon: np.ndarray,
    lat: np.ndarray,
    crs: CRS | None,
    shown: np.ndarray,
) -> None:
    """Rows whose given numbers ``x``/``y`` the CRS maps to no position (inf): their reason and the given value in
    ``raw`` (``beyond_crs``, ``beyond_crs_value``; "" elsewhere), for :func:`validate_components` to refuse them
    for that, not as "not a number" or "missing geometry"."""
    beyond = np.isfinite(x) & np.isfinite(y) & ~(np.isfinite(lon) & np.isfinite(lat))
    if crs is None or _is_storage_like(crs) or not beyond.any():
        return
    reason = np.full(len(raw), "", dtype=object)
    value = np.full(len(raw), "", dtype=object)
    reason[beyond] = _beyond_crs_reasons(x[beyond], y[beyond], crs)
    value[beyond] = shown[beyond]
    raw["beyond_crs"], raw["beyond_crs_value"] = reason, value


def _swapped_fits(
    raw: pd.DataFrame, meta: dict[str, Any], coverage: shapely.Geometry, outside: np.ndarray, lon: Any, lat: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Of the rows ``outside`` the district, those whose x/y read the other way round (``swapped_lon`` and
    ``swapped_lat``, :func:`_mark_swapped`) lie in it, and those whose swapped position lies, unlike the given
    one, in the area of use of the file's CRS: X and Y swapped, as survey tables write them (X = north)."""
    n = len(raw)
    none = np.zeros(n, dtype=bool)
    if "swapped_lon" not in raw.columns or not outside.any() or not meta.get("crs"):
        return none, none
    slon = raw["swapped_lon"].to_numpy(dtype=float)
    slat = raw["swapped_lat"].to_numpy(dtype=float)
    candidates = outside & np.isfinite(slon) & np.isfinite(slat)
    if not candidates.any():
        return none, none
    swapped_in = none.copy()
    shapely.prepare(coverage)
    swapped_in[candidates] = shapely.intersects_xy(coverage, slon[candidates], slat[candidates])
    near = np.flatnonzero(candidates & ~swapped_in)
    if len(near):
        swapped_in[near] = shapely.dwithin(coverage, shapely.points(slon[near], slat[near]), POSITION_TOLERANCE_DEG)
    crs = CRS.from_user_input(meta["crs"])
    fits = candidates & ~swapped_in & geodesy.in_area_of_use(crs, slon, slat) & ~geodesy.in_area_of_use(crs, lon, lat)
    return swapped_in, fits


# --------------------------------------------------------------------------------------------- validation


@dataclass
class ValidationResult:
    accepted: pd.DataFrame
    #: The refusals: row, field, value, reason (as the refusals file has them) and code, the refusal's
    #: :class:`~gisgrid.errors.Reason` where it has one (None elsewhere), which a single write's 422 carries.
    errors: pd.DataFrame
    #: Problems that refuse nothing (row, field, value, reason), e.g. a department name that is not the one
    #: registered for the row's code.
    warnings: pd.DataFrame = dataclasses.field(
        default_factory=lambda: pd.DataFrame({c: pd.Series(dtype=object) for c in ERROR_COLUMNS})
    )

    @property
    def refused_rows(self) -> int:
        return int(self.errors["row"].nunique()) if len(self.errors) else 0


#: What :func:`gisgrid.texts.refuse_bad_text` refuses in a text: NUL, and the control and bidirectional characters.
BAD_TEXT = re.compile(f"{NUL}|{CONTROLS.pattern}")


def _bad_text_code(text: str) -> Reason:
    return Reason.NUL_CHARACTER if NUL in text else Reason.CONTROL_CHARACTERS


def _refuse_bad_attrs(errors: cityfiles.RowRefusals, attrs: np.ndarray, skip: np.ndarray) -> None:
    """Refuse each row whose custom attribute (a column the file adds: its name or its value, text or JSON) holds
    what :data:`BAD_TEXT` matches, once per row and column, the column as the field; ``skip``: rows already
    refused for their depth (not walked into)."""
    found: dict[str, list[tuple[int, str, str, Reason]]] = {}
    for i, record in enumerate(attrs):
        if skip[i] or not record or bad_text_path(record, "") is None:
            continue
        for key, value in record.items():
            if bad_text_path({key: value}, "") is None:
                continue
            text = first_bad_text({key: value})
            shown = value if isinstance(value, str) else _json_text(value) if value is not None else ""
            found.setdefault(str(key), []).append(
                (i, shown, str(bad_text_reason_bilingual(text)), _bad_text_code(text))
            )
    for key, items in found.items():
        mask = np.zeros(len(attrs), dtype=bool)
        mask[[i for i, *_ in items]] = True
        # errors.add lists the refused rows in order: the items are in row order
        errors.add(
            mask,
            key,
            lambda idx, items=items: [v for _, v, _, _ in items],
            lambda idx, items=items: [r for _, _, r, _ in items],
            code=lambda idx, items=items: [c for _, _, _, c in items],
        )


def _texts(raw: pd.DataFrame, name: str) -> np.ndarray:
    """Column as an object array of str, missing → "" (the reader has already stripped the text)."""
    if name not in raw.columns:
        return np.full(len(raw), "", dtype=object)
    column = raw[name]
    if not pd.api.types.is_string_dtype(column):
        column = _text(column)
    out = column.to_numpy(dtype=object, copy=True)  # copy: to_numpy may hand out the column's own buffer
    out[pd.isna(out)] = ""
    return out


def _isin(values: np.ndarray, allowed: Any) -> np.ndarray:
    return pd.Series(values, dtype=object).isin(allowed).to_numpy()  # hash lookup, not a sort


_num = cityfiles.coordinate_text

_DATE_SHAPE = r"[0-9]{8}|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}|[0-9]{4}/[0-9]{1,2}/[0-9]{1,2}"
_DATE_PARTS = r"^([0-9]{4})[-/]?([0-9]{1,2})[-/]?([0-9]{1,2})$"


def _parse_dates(text: np.ndarray, today: dt.date) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(datetime64[D] array, NaT when absent or refused; masks of the problems).

    Parsed once per distinct value: a file has few distinct dates, and pandas string methods are per-element."""
    codes, uniques = pd.factorize(text)
    u = pd.Series(uniques, dtype=object).astype(str)
    present = (u != "").to_numpy()
    shaped = present & u.str.fullmatch(_DATE_SHAPE).to_numpy(dtype=bool)
    parts = u[shaped].str.extract(_DATE_PARTS)
    iso = parts[0] + "-" + parts[1].str.zfill(2) + "-" + parts[2].str.zfill(2)
    dates = np.full(len(u), np.datetime64("NaT"), dtype="datetime64[D]")
    dates[shaped] = pd.to_datetime(iso, format="%Y-%m-%d", errors="coerce").to_numpy().astype("datetime64[D]")
    valid = ~np.isnat(dates)
    too_old = valid & (dates < np.datetime64(f"{_MIN_YEAR}-01-01"))
    future = valid & (dates > np.datetime64(today, "D"))
    dates[too_old | future] = np.datetime64("NaT")
    masks = {"format": present & ~shaped, "impossible": shaped & ~valid, "too_old": too_old, "future": future}
    return dates[codes], {k: m[codes] for k, m in masks.items()}


def _none_if_empty(text: np.ndarray) -> pd.Series:
    out = np.array(text, dtype=object, copy=True)
    out[out == ""] = None
    return pd.Series(out, dtype=object)  # object dtype: a str column would turn None into NaN


@dataclass
class _Positions:
    """The rows' storage lon/lat as checked, and how their coordinates were given: the text of a lon/lat pair
    (``given``, by field; empty for a layer or WKT column) and which rows' position is a WKT geometry."""

    lon: np.ndarray
    lat: np.ndarray
    given: dict[str, np.ndarray]
    by_wkt: np.ndarray

    def texts(self, idx: np.ndarray) -> list[str]:
        """The refused rows' coordinates as the refusals show them: the text as given (a WKT row of a mixed
        sheet: its position), else the position read."""
        lon, lat, given, by_wkt = self.lon, self.lat, self.given, self.by_wkt
        if len(given) == 2:
            return [
                f"{given['lon'][i]},{given['lat'][i]}" if not by_wkt[i] else f"{_num(lon[i])},{_num(lat[i])}"
                for i in idx
            ]
        return [f"{_num(lon[i])},{_num(lat[i])}" for i in idx]


def _refuse_unreadable_positions(
    raw: pd.DataFrame, meta: dict[str, Any], errors: cityfiles.RowRefusals
) -> tuple[_Positions, np.ndarray]:
    """Refuse the rows whose coordinates are missing, no number, beyond the source CRS or given twice; the
    positions read, and the rows refused for lying beyond the CRS."""
    n = len(raw)
    lon = raw["lon"].to_numpy(dtype=float) if "lon" in raw.columns else np.full(n, np.nan)
    lat = raw["lat"].to_numpy(dtype=float) if "lat" in raw.columns else np.full(n, np.nan)
    finite = np.isfinite(lon) & np.isfinite(lat)
    given = {f: _texts(raw, f"{f}_text") for f in ("lon", "lat") if f"{f}_text" in raw.columns}
    # Numbers the source CRS maps to no position (far outside its zone, X/Y swapped): refused for that, naming the CRS.
    beyond_crs = _texts(raw, "beyond_crs")
    beyond = beyond_crs != ""
    errors.add(beyond, "coordinates", _texts(raw, "beyond_crs_value"), beyond_crs)
    mode = meta.get("coordinates")
    # Rows whose position is a WKT geometry: all of a layer's or a WKT column's; in a sheet with wkt and lon/lat
    # ("mixed": an .xlsx components export), those with a WKT, the others' being their lon/lat.
    geometry_text = _texts(raw, "geometry_text")
    by_wkt = np.full(n, mode == "geometry") if mode != "mixed" else geometry_text != ""
    if mode in ("geometry", "mixed"):
        missing_geometry = np.where(geometry_text == "", refusal("missing_geometry"), refusal("unparseable_geometry"))
        errors.add(~finite & by_wkt & ~beyond, "geometry", geometry_text, missing_geometry)
    if mode != "geometry":
        for field, values in (("lon", lon), ("lat", lat)):
            if field not in given:
                errors.add(~np.isfinite(values), field, "", refusal(f"missing_{field}"))
                continue
            missing = (given[field] == "") & ~by_wkt
            unsaved = f"{field}_unsaved_formula"
            formula = raw[unsaved].to_numpy(dtype=bool) if unsaved in raw.columns else np.zeros(n, dtype=bool)
            errors.add(missing & ~formula, field, given[field], refusal(f"missing_{field}"))
            errors.add(missing & formula, field, given[field], UNSAVED_FORMULA_REASON)
            not_number = ~missing & ~by_wkt & ~np.isfinite(values) & ~beyond
            errors.add(not_number, field, given[field], refusal(f"unparseable_{field}"))
    if "coordinates_twice" in raw.columns:
        errors.add(
            raw["coordinates_twice"].to_numpy(dtype=bool),
            "coordinates",
            geometry_text,
            bilingual(
                "同一行既有 wkt 又有经纬度:图形填 wkt,点填经纬度,只填一项",
                "both a WKT geometry and lon/lat: give a shape in wkt or a point in lon/lat, not both",
            ),
        )
    return _Positions(lon, lat, given, by_wkt), finite


def _lon_lat_swapped_reasons(lon: np.ndarray, lat: np.ndarray, idx: np.ndarray) -> list[str]:
    return [
        bilingual(
            f"经纬度疑似颠倒(纬度 {_num(lat[i])} > 90)",
            f"longitude and latitude look swapped (lat {_num(lat[i])} > 90)",
        )
        if abs(lat[i]) > 90
        else bilingual(
            f"经纬度疑似颠倒(对调后 {_num(lat[i])},{_num(lon[i])} 位于本区内)",
            f"longitude and latitude look swapped (swapped lon/lat {_num(lat[i])},{_num(lon[i])} lies in the district)",
        )
        for i in idx
    ]


def _refuse_misplaced(
    raw: pd.DataFrame,
    meta: dict[str, Any],
    errors: cityfiles.RowRefusals,
    at: _Positions,
    finite: np.ndarray,
    coverage: shapely.Geometry,
    coverage_bbox: tuple[float, float, float, float] | None,
    district_code: str,
) -> None:
    """Refuse the rows at (0, 0), with lon and lat swapped, not in degrees, or outside the district (saying when
    X and Y look swapped, or the file's Gauss–Krüger zone is not the district's)."""
    n, lon, lat, coords = len(raw), at.lon, at.lat, at.texts
    bx0, by0, bx1, by1 = coverage_bbox if coverage_bbox is not None else shapely.bounds(coverage)
    tol = POSITION_TOLERANCE_DEG  # a point on the boundary, exported and read back, is still in the district
    with np.errstate(invalid="ignore"):
        zero = finite & (lon == 0) & (lat == 0)
        in_bbox = (lon >= bx0 - tol) & (lon <= bx1 + tol) & (lat >= by0 - tol) & (lat <= by1 + tol)
        swapped = finite & ~zero & ~in_bbox & (lat >= bx0) & (lat <= bx1) & (lon >= by0) & (lon <= by1)
        not_degrees = finite & ~zero & ~swapped & ((np.abs(lon) > 180) | (np.abs(lat) > 90))
    errors.add(zero, "coordinates", coords, refusal("zero_location"))
    errors.add(swapped, "coordinates", coords, lambda idx: _lon_lat_swapped_reasons(lon, lat, idx))
    errors.add(not_degrees, "coordinates", coords, refusal("not_degrees"))
    check = finite & ~zero & ~swapped & ~not_degrees
    inside = np.zeros(n, dtype=bool)
    candidates = check & in_bbox
    if candidates.any():
        shapely.prepare(coverage)
        # intersects (not contains): a component exactly on the district boundary is accepted, and so is one
        # within the position tolerance of it (the few left after the fast test).
        inside[candidates] = shapely.intersects_xy(coverage, lon[candidates], lat[candidates])
        near = np.flatnonzero(candidates & ~inside)
        if len(near):
            inside[near] = shapely.dwithin(coverage, shapely.points(lon[near], lat[near]), tol)
    outside = check & ~inside
    swapped_in, swapped_fits = _swapped_fits(raw, meta, coverage, outside, lon, lat)
    zone_zh, zone_en = _wrong_zone_hint(meta.get("crs"), coverage) if outside.any() and not inside.any() else ("", "")
    errors.add(
        outside & ~swapped_in & ~swapped_fits,
        "coordinates",
        coords,
        bilingual(
            f"不在本区范围内({district_code}){zone_zh}", f"outside the district coverage ({district_code}){zone_en}"
        ),
    )
    if swapped_in.any() or swapped_fits.any():
        _refuse_xy_swapped(raw, meta, errors, at, swapped_in, swapped_fits, district_code)


def _refuse_xy_swapped(
    raw: pd.DataFrame,
    meta: dict[str, Any],
    errors: cityfiles.RowRefusals,
    at: _Positions,
    swapped_in: np.ndarray,
    swapped_fits: np.ndarray,
    district_code: str,
) -> None:
    """Refuse the rows outside the district whose X and Y read the other way round lie in it (``swapped_in``) or
    in the area of use of the file's CRS (``swapped_fits``), saying how to swap them."""
    fields = meta.get("coordinate_fields") or []
    swap_zh, swap_en = _swap_remedy(
        (str(fields[-2]), str(fields[-1])) if len(fields) >= 2 else None, layer=fields == ["geometry"]
    )
    crs_name = str(meta.get("crs"))
    swapped_lon = raw["swapped_lon"].to_numpy(dtype=float)
    swapped_lat = raw["swapped_lat"].to_numpy(dtype=float)

    def swapped_in_reason(idx: np.ndarray) -> list[str]:
        return [
            bilingual(
                f"不在本区范围内({district_code}):X 与 Y 疑似对调(对调后 {swapped_lon[i]:.6f},{swapped_lat[i]:.6f} "
                f"位于本区内;测量表常以 X 为北坐标),{swap_zh}",
                f"outside the district coverage ({district_code}): X and Y look swapped (swapped, the point "
                f"{swapped_lon[i]:.6f},{swapped_lat[i]:.6f} lies in the district; survey tables often write X = "
                f"northing): {swap_en}",
            )
            for i in idx
        ]

    def swapped_fits_reason(idx: np.ndarray) -> list[str]:
        return [
            bilingual(
                f"不在本区范围内({district_code}):X 与 Y 疑似对调(对调后 {swapped_lon[i]:.6f},{swapped_lat[i]:.6f} "
                f"位于 {crs_name} 的适用区域内,对调前不在;测量表常以 X 为北坐标),{swap_zh}",
                f"outside the district coverage ({district_code}): X and Y look swapped (swapped, the point "
                f"{swapped_lon[i]:.6f},{swapped_lat[i]:.6f} lies within the area of use of {crs_name}, as given "
                f"it does not; survey tables often write X = northing): {swap_en}",
            )
            for i in idx
        ]

    errors.add(swapped_in, "coordinates", at.texts, swapped_in_reason)
    errors.add(swapped_fits, "coordinates", at.texts, swapped_fits_reason)


@dataclass
class _Identifiers:
    """The identifiers' shape, checked with numpy's C string functions (pandas' are per-element Python without
    pyarrow): ``text`` as given, its fixed-width copy ``u``, which are digits only and which well formed, and
    their district and class parts."""

    text: np.ndarray
    u: np.ndarray
    has_id: np.ndarray
    digits_only: np.ndarray
    well_formed: np.ndarray
    district_part: np.ndarray
    class_part: np.ndarray

    @classmethod
    def of(cls, text: np.ndarray, id_len: int, k: int) -> _Identifiers:
        n = len(text)
        # One character wider than valid: a longer id is refused for its length anyway, and the width stays bounded.
        id_u = text.astype(f"U{id_len + 1}")
        has_id = id_u != ""
        ascii_only = id_u.view(np.uint32).reshape(n, id_len + 1).max(axis=1, initial=0) < 128
        digits_only = has_id & ascii_only & np.strings.isdigit(id_u)
        well_formed = digits_only & (np.strings.str_len(id_u) == id_len)
        district_part = np.strings.slice(id_u, 0, DISTRICT_DIGITS)
        class_part = np.strings.slice(id_u, DISTRICT_DIGITS, DISTRICT_DIGITS + k)
        return cls(text, id_u, has_id, digits_only, well_formed, district_part, class_part)


def _check_class_codes(
    errors: cityfiles.RowRefusals,
    class_given: np.ndarray,
    ids: _Identifiers,
    classes: dict[str, ComponentClass],
    scheme: str,
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The rows' class codes (the class column, else the identifier's class part), refusing a missing or unknown
    one; (codes, which are unusable: missing or unknown)."""
    class_code = class_given.copy()
    derive = (class_given == "") & ids.well_formed
    class_code[derive] = ids.class_part[derive]
    class_missing = class_code == ""
    errors.add(class_missing, "class_code", "", refusal("missing_class_code"))
    class_unknown = ~class_missing & ~_isin(class_code, classes.keys())
    # A code Excel took for a number lost its leading zero (01037 → 1037): said, when the padded code is a class.
    padded = np.strings.zfill(class_code.astype(str), k)
    zero_lost = class_unknown & np.strings.isdigit(class_code.astype(str)) & _isin(padded, classes.keys())
    errors.add(
        class_unknown & ~zero_lost,
        "class_code",
        class_code,
        bilingual(f"部件小类代码在 {scheme} 方案中不存在", f"unknown class code for scheme {scheme}"),
    )
    errors.add(
        zero_lost,
        "class_code",
        class_code,
        [
            bilingual(
                f"部件小类代码在 {scheme} 方案中不存在,是否为 {c}?(Excel 去掉了开头的 0)",
                f"unknown class code for scheme {scheme}; did you mean {c} (a leading zero lost by Excel)?",
            )
            for c in padded[zero_lost]
        ],
    )
    return class_code, class_missing | class_unknown


def _check_identifiers(
    raw: pd.DataFrame,
    errors: cityfiles.RowRefusals,
    ids: _Identifiers,
    class_given: np.ndarray,
    district_code: str,
    existing_ids: set[str] | None,
    id_len: int,
    k: int,
) -> None:
    """Refuse the identifiers Excel cut, not of digits, of the wrong length or district, of serial 000000 (unless
    stored), whose class part is not the row's class code, or repeated in the file."""
    n, ident = len(raw), ids.text
    # A sheet cell holding the identifier as a number of 16+ digits: Excel kept 15, so the digits read are another
    # identifier (a stored component's, or a made-up one). Refused for that alone: its other checks would mislead.
    lost = raw["id_digits_lost"].to_numpy(dtype=bool) if "id_digits_lost" in raw.columns else np.zeros(n, bool)
    errors.add(lost, "id", ident, DIGITS_LOST_REASON)
    has_id, digits_only, well_formed = ids.has_id & ~lost, ids.digits_only & ~lost, ids.well_formed & ~lost
    errors.add(has_id & ~digits_only, "id", ident, refusal("id_not_digits"))
    errors.add(
        digits_only & ~well_formed,
        "id",
        ident,
        lambda idx: [
            bilingual(
                f"标识码应为 {id_len} 位(6 位区划 + 2 位大类 + {k - 2} 位小类 + 6 位顺序码),实为 {len(v)} 位",
                f"identifier must be {id_len} digits (6 district + 2 big + {k - 2} small + 6 serial), got {len(v)}",
            )
            for v in ident[idx]
        ],
    )
    errors.add(
        well_formed & (ids.district_part != district_code),
        "id",
        ident,
        lambda idx: [
            bilingual(
                f"标识码区划代码 {d} 不是本区({district_code})",
                f"identifier district prefix {d} is not this district ({district_code})",
            )
            for d in ids.district_part[idx]
        ],
    )
    serial_zero = well_formed & (np.strings.slice(ids.u, DISTRICT_DIGITS + k, id_len) == "0" * SERIAL_DIGITS)
    if existing_ids and serial_zero.any():  # one stored before this rule stays updatable (re-import, PATCH)
        serial_zero &= ~_isin(ident, existing_ids)
    errors.add(serial_zero, "id", ident, SERIAL_ZERO_REASON)
    class_mismatch = np.zeros(n, dtype=bool)
    compare = well_formed & (class_given != "")
    class_mismatch[compare] = ids.class_part[compare].astype(object) != class_given[compare]
    errors.add(
        class_mismatch,
        "id",
        ident,
        lambda idx: [
            bilingual(
                f"标识码小类部分 {p} 与部件小类代码 {c} 不符",
                f"identifier class part {p} does not match class code {c}",
            )
            for p, c in zip(ids.class_part[idx], class_given[idx], strict=True)
        ],
    )
    _refuse_repeated_ids(errors, ident, has_id, lost)


def _refuse_repeated_ids(
    errors: cityfiles.RowRefusals, ident: np.ndarray, has_id: np.ndarray, lost: np.ndarray
) -> None:
    """Refuse an identifier used by an earlier row of the file, naming that row."""
    counted = np.where(lost, "", ident)  # an identifier Excel cut is no identifier: a later row's is not repeated
    ids = pd.Series(counted, dtype=object)
    repeated = has_id & ids.duplicated(keep="first").to_numpy()
    if repeated.any():
        first_row = pd.Series(errors.rows).groupby(counted).transform("first").to_numpy()
        errors.add(
            repeated,
            "id",
            ident,
            lambda idx: [
                bilingual(f"标识码重复:第 {r} 行已使用", f"duplicate identifier: first used at row {r}")
                for r in first_row[idx]
            ],
        )


def _check_dates(raw: pd.DataFrame, errors: cityfiles.RowRefusals, today: dt.date) -> tuple[np.ndarray, np.ndarray]:
    """The initial and change dates (NaT when absent or refused), refusing those unrecognised, impossible, before
    :data:`_MIN_YEAR`, in the future, or a change before the initial date."""
    dates: dict[str, np.ndarray] = {}
    for field in ("initial_date", "change_date"):
        text = _texts(raw, field)
        dates[field], problems = _parse_dates(text, today)
        errors.add(problems["format"], field, text, refusal("date_unrecognised"))
        errors.add(problems["impossible"], field, text, refusal("date_impossible"))
        too_old = bilingual(f"日期不合理(早于 {_MIN_YEAR} 年)", f"implausible date (before {_MIN_YEAR})")
        errors.add(problems["too_old"], field, text, too_old)
        future = bilingual(f"日期在未来(今天是 {today:%Y-%m-%d})", f"date in the future (today is {today:%Y-%m-%d})")
        errors.add(problems["future"], field, text, future)
    initial, change = dates["initial_date"], dates["change_date"]
    errors.add(
        change < initial,  # NaT compares False
        "change_date",
        _texts(raw, "change_date"),
        lambda idx: [
            bilingual(f"变更日期 {c} 早于初始日期 {i}", f"change date {c} is before the initial date {i}")
            for c, i in zip(change[idx], initial[idx], strict=True)
        ],
    )
    return initial, change


def _check_departments(
    raw: pd.DataFrame,
    meta: dict[str, Any],
    errors: cityfiles.RowRefusals,
    catalogue: Catalogue,
    known: set[str],
    classes: dict[str, ComponentClass],
    class_code: np.ndarray,
    class_bad: np.ndarray,
) -> tuple[dict[str, np.ndarray], np.ndarray, cityfiles.RowRefusals]:
    """The department codes by field and the main department (empty: the class's default), refusing an unknown
    code or a row left without a main department; the notices of a department name that is not the one
    registered for the row's code (refusing nothing)."""
    default_dept = pd.Series(class_code, dtype=object).map({c: x.default_dept for c, x in classes.items()})
    dept_text = {f: _texts(raw, f) for f in ("main_dept", "owner_dept", "maint_dept")}
    for field, text in dept_text.items():
        errors.add((text != "") & ~_isin(text, known), field, text, refusal("unknown_department"))
    notices = cityfiles.RowRefusals(errors.rows)  # the same bookkeeping as the refusals; its rows are not refused
    for dept, column in meta.get("dept_name_fields", {}).items():
        given_name = _texts(raw, f"{dept}_name")
        code = dept_text[dept]
        registered = pd.Series(code, dtype=object).map(catalogue.departments).fillna("").to_numpy(dtype=object)
        # Only for codes the import accepts: an unknown code is refused above, an empty one names nothing.
        differs = _isin(code, known) & (given_name != "") & (registered != "") & (given_name != registered)
        notices.add(
            differs,
            column,
            given_name,
            lambda idx, column=column, given_name=given_name, code=code, registered=registered: [
                f"部门名称与代码不符 department name {given_name[i]!r} in {column} is not {registered[i]!r}, the name "
                f"registered for code {code[i]}; the code is used"
                for i in idx
            ],
        )
    main_dept = np.where(
        dept_text["main_dept"] == "", default_dept.fillna("").to_numpy(dtype=object), dept_text["main_dept"]
    )
    no_main = (main_dept == "") & ~class_bad
    errors.add(no_main, "main_dept", "", refusal("missing_main_department"))
    return dept_text, main_dept, notices


def _check_status_and_source(raw: pd.DataFrame, errors: cityfiles.RowRefusals) -> tuple[np.ndarray, np.ndarray]:
    """The status (empty: :data:`DEFAULT_STATUS`) and data source, refusing those not in their lists."""
    status = _texts(raw, "status")
    errors.add(
        (status != "") & ~_isin(status, STATUSES),
        "status",
        status,
        bilingual(
            f"状态须为 {'/'.join(STATUSES)} 之一(留空即 {DEFAULT_STATUS})",
            f"status must be one of {'/'.join(STATUSES)} (empty means {DEFAULT_STATUS})",
        ),
    )
    status[status == ""] = DEFAULT_STATUS
    source = _texts(raw, "data_source")
    errors.add(
        (source != "") & ~_isin(source, DATA_SOURCES),
        "data_source",
        source,
        bilingual(
            f"数据来源须为 {'/'.join(DATA_SOURCES)} 之一或留空",
            f"data source must be one of {'/'.join(DATA_SOURCES)} or empty",
        ),
    )
    return status, source


def _check_texts(raw: pd.DataFrame, meta: dict[str, Any], errors: cityfiles.RowRefusals) -> None:
    """Refuse free text holding a NUL, control or bidirectional character (texts.refuse_bad_text's rule; codes,
    dates and statuses are checked against their lists), and custom attributes nested too deep or holding one."""
    for field in ("name", "note"):
        text = _texts(raw, field)
        bad = pd.Series(text, dtype=object).str.contains(BAD_TEXT, regex=True).to_numpy(dtype=bool)
        errors.add(
            bad,
            field,
            text,
            lambda idx, text=text: [bad_text_reason_bilingual(text[i]) for i in idx],
            code=lambda idx, text=text: [_bad_text_code(text[i]) for i in idx],
        )
    if "attrs" not in raw.columns:
        return
    # attrs: JSON a GeoJSON property held, or the API's, nested at most texts.MAX_JSON_DEPTH levels (a file read as
    # text only has none: not looked at)
    too_deep = np.zeros(len(raw), dtype=bool)
    if meta.get("json_columns", True):
        where = np.array([too_deep_path(a, "attrs") if a else None for a in raw["attrs"]], dtype=object)
        too_deep = where != None  # noqa: E711 - elementwise
        errors.add(
            too_deep,
            "attrs",
            where,
            lambda idx: [bilingual(f"JSON 嵌套超过 {MAX_JSON_DEPTH} 层", too_deep_words(where[i])) for i in idx],
            code=Reason.JSON_TOO_DEEP,
        )
    # ... and their texts (the custom columns' values and names) as free text, refused by column
    _refuse_bad_attrs(errors, raw["attrs"].to_numpy(dtype=object), too_deep)


def validate_components(
    raw: pd.DataFrame,
    *,
    scheme: str,
    catalogue: Catalogue,
    district_code: str,
    coverage: shapely.Geometry,
    coverage_bbox: tuple[float, float, float, float] | None = None,
    known_departments: set[str] | None = None,
    existing_ids: set[str] | None = None,
    today: dt.date | None = None,
) -> ValidationResult:
    """Check every row of a raw frame (``read_component_file``); all checks are vectorised.

    ``coverage`` is the district in storage lon/lat (EPSG:4490); ``coverage_bbox`` defaults to its bounds and
    is used to recognise swapped lon/lat. ``known_departments`` defaults to the catalogue's departments.
    An identifier already in ``existing_ids`` is an update (``is_update``), not an error (nor is its serial 000000,
    refused for a new identifier); a repeated identifier
    within the file is. A row with several problems gets one errors row per problem and is refused once.
    Empty status → 完好; empty name → the class name; empty main_dept → the class's default department.
    ``today`` (default: the current date) bounds the dates."""
    check_scheme(scheme)
    classes = catalogue.classes(scheme)
    known = set(catalogue.departments) if known_departments is None else set(known_departments)
    today = today or dt.date.today()
    k = CODE_DIGITS[scheme]
    id_len = identifier_length(scheme)
    meta = raw.attrs.get(META, {})
    raw = raw.reset_index(drop=True)
    n = len(raw)
    rows = raw["_row"].to_numpy(dtype=np.int64) if "_row" in raw.columns else np.arange(1, n + 1, dtype=np.int64)
    errors = cityfiles.RowRefusals(rows)

    at, finite = _refuse_unreadable_positions(raw, meta, errors)
    _refuse_misplaced(raw, meta, errors, at, finite, coverage, coverage_bbox, district_code)
    ids = _Identifiers.of(_texts(raw, "id"), id_len, k)
    class_given = _texts(raw, "class_code")
    class_code, class_bad = _check_class_codes(errors, class_given, ids, classes, scheme, k)
    _check_identifiers(raw, errors, ids, class_given, district_code, existing_ids, id_len, k)
    initial, change = _check_dates(raw, errors, today)
    dept_text, main_dept, notices = _check_departments(
        raw, meta, errors, catalogue, known, classes, class_code, class_bad
    )
    status, source = _check_status_and_source(raw, errors)
    _check_texts(raw, meta, errors)

    # --- accepted rows
    keep = ~errors.bad
    m = int(keep.sum())
    name = _texts(raw, "name")
    class_name = pd.Series(class_code, dtype=object).map({c: x.name for c, x in classes.items()})
    name = np.where(name == "", class_name.fillna("").to_numpy(dtype=object), name)
    geom_wkb = raw["geom_wkb"].to_numpy(dtype=object)[keep] if "geom_wkb" in raw.columns else np.full(m, None)
    attrs = raw["attrs"].to_numpy(dtype=object)[keep] if "attrs" in raw.columns else [{} for _ in range(m)]
    kept_id = ids.text[keep]
    accepted = pd.DataFrame(
        {
            "_row": rows[keep],
            "id": _none_if_empty(kept_id),
            "class_code": pd.Series(class_code[keep], dtype=object),
            "name": pd.Series(name[keep], dtype=object),
            "lon": at.lon[keep],
            "lat": at.lat[keep],
            "geom_wkb": pd.Series(geom_wkb, dtype=object),
            "main_dept": pd.Series(main_dept[keep], dtype=object),
            "owner_dept": _none_if_empty(dept_text["owner_dept"][keep]),
            "maint_dept": _none_if_empty(dept_text["maint_dept"][keep]),
            "status": pd.Series(status[keep], dtype=object),
            "initial_date": pd.Series(initial[keep].astype(object), dtype=object),  # datetime.date or None
            "change_date": pd.Series(change[keep].astype(object), dtype=object),
            "data_source": _none_if_empty(source[keep]),
            "note": _none_if_empty(_texts(raw, "note")[keep]),
            "attrs": pd.Series(list(attrs), dtype=object),
            "is_update": (kept_id != "") & _isin(kept_id, existing_ids or set()),
        },
        columns=list(ACCEPTED_COLUMNS),
    )
    return ValidationResult(accepted=accepted, errors=errors.frame(), warnings=notices.frame().drop(columns="code"))


def file_fields(problems: pd.DataFrame, meta: dict[str, Any]) -> pd.DataFrame:
    """``problems`` (refusals or warnings of ``validate_components``) with each canonical field named by the file's
    own column, as the user sees it (GLBJBSM, not id; CSRQ, not initial_date; the WKT column or the lon/lat pair,
    not coordinates). ``meta`` is the raw frame's ``attrs["gisgrid"]``; a field the file has no column for (a class
    code taken from the identifier, a custom column's own name) is left as it is."""
    names: dict[str, str] = dict(meta.get("fields", {}))
    used = [str(c) for c in meta.get("coordinate_fields", [])]
    if len(used) == 3:  # a WKT column and the lon/lat or x/y pair of the point rows
        names.update(geometry=used[0], lon=used[1], lat=used[2], coordinates=f"{used[0]} | {used[1]}/{used[2]}")
    elif len(used) == 2:  # a lon/lat or x/y pair
        names.update(lon=used[0], lat=used[1], coordinates=f"{used[0]}/{used[1]}")
    elif len(used) == 1:  # a WKT column, or the layer geometry
        names.update(geometry=used[0], coordinates=used[0])
    for custom in meta.get("custom_columns", []):  # a custom column "lat" beside PointX/PointY keeps its name
        names.pop(custom, None)
    if not len(problems) or not names:
        return problems
    problems = problems.copy()
    problems["field"] = problems["field"].map(lambda f: names.get(f, f))
    return problems


def custom_columns_note(meta: dict[str, Any]) -> str | None:
    """The one note listing the columns a file import keeps as custom attributes (``attrs``: no name of a standard
    field), so that a column meant as one (a misspelt header) is seen, as ``cases import-history`` lists the
    columns it ignores; None when there are none. ``meta`` is the raw frame's ``attrs["gisgrid"]``."""
    custom = [str(c) for c in meta.get("custom_columns", [])]
    if not custom:
        return None
    names = ", ".join(custom)
    return f"以下列存为自定义属性(attrs):{names} / column(s) kept as custom attributes (attrs): {names}"


def write_errors(errors: pd.DataFrame, path: Path | str) -> Path:
    """Write the refusals as CSV, UTF-8 with BOM (Excel opens Chinese text correctly)."""
    path = Path(path)
    with RunFiles() as files:  # whole or not at all, as an import's (gisgrid.runfiles)
        files.stage(path, errors, ERROR_COLUMNS)
        files.publish()
    return path
