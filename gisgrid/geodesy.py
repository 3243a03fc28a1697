"""Datum conversion between CGCS2000/WGS-84 (storage) and the offset datums of Chinese web maps.

Chinese map SDKs (Gaode/AutoNavi, Tencent: **GCJ-02**; Baidu: **BD-09**) report and draw coordinates that
are shifted by a few hundred metres from WGS-84. gisgrid stores CGCS2000 lon/lat (EPSG:4490), which it treats
as equal to WGS-84, so ``wgs84`` and ``cgcs2000`` are identity here.

CGCS2000 and WGS-84
-------------------
The two frames are identical at epoch 2000.0 (both realise ITRF to centimetres), but CGCS2000 coordinates are
frozen at 2000.0 (ITRF97), while a GNSS fix taken today (a phone's, a survey in WGS 84/ITRF) is at the current
epoch. Mainland China moves about 3 cm/yr in ITRF (plate motion), so the two now differ by about 0.7–0.9 m. The
service ignores that: it is far below the 30 m radius a component is matched within and the 100 m grid cells,
and it is no larger than a phone's own error. Survey data delivered in CGCS2000 is of course taken as it is.

Converter
---------
* WGS-84 → GCJ-02: the public forward formula (Krasovsky 1940 ellipsoid, ``a = 6378245``,
  ``ee = 0.00669342162296594323``), vectorised with numpy. This is the exact published algorithm.
* GCJ-02 → WGS-84: fixed-point iteration on the forward formula, ``w ← w − (f(w) − g)``, started from
  ``g − (f(g) − g)``, until the largest change is below 1e-9° (≈0.1 mm); at most 20 iterations (it converges
  in a few: the offset varies slowly with position, so each step shrinks the error ~100-fold).
* GCJ-02 → BD-09: Baidu's published formula (``x_pi = π·3000/180``, offsets 0.0065°/0.006°).
* BD-09 → GCJ-02: the published closed-form inverse, then the same fixed-point refinement to 1e-9°
  (the closed form alone is only good to ~1e-7°, decimetres).

Accuracy (measured with ``pyproj.Geod`` on WGS-84 over 500 random points in China; the tests assert it):

* round trips WGS→GCJ→WGS and WGS→BD→WGS: max error 4e-7 m (floating-point noise; the tests assert < 1 mm);
* the published test vector WGS (116.481499, 39.990475) → GCJ (116.487586, 39.991754) →
  BD (116.49412, 39.997716), given to 6 (BD: 5) decimals: the forward conversions land 0.05 m from the GCJ
  value and 0.08 m from the BD value, the inverses 0.05 m (GCJ→WGS) and 0.08 m (BD→WGS) from the WGS
  value — all within the rounding of the published figures (1e-6° ≈ 0.1 m);
* against the public-domain ``prcoords`` package (per-point reference implementation): identical forward
  results (< 1e-8 m) and inverses within 4 mm — that residue is prcoords' own, whose iterations stop at
  1e-5° (its GCJ→WGS→GCJ round trip is off by the same 3.5 mm). ~1 M points convert in ~3 s.

These figures are against the published formula. The official GCJ-02 implementation reportedly adds small
pseudo-random noise (per the prcoords notes), so real Gaode/Baidu data cannot be undone better than that.

Outside China
-------------
The offsets apply only inside China's bounding box (lon 72.004–137.8347, lat 0.8293–55.8271, the bbox used
by the public implementations). Points outside it — and NaN coordinates — pass through unchanged, for both
GCJ-02 and BD-09. The test is made on the input point of each conversion step, so a point within metres of
the bbox edge may be treated differently in the two directions; no city lies near that edge.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeGuard, TypeVar, get_args

import geopandas as gpd
import numpy as np
import pyproj
import shapely
from numpy.typing import ArrayLike
from pyproj.transformer import TransformerGroup
from shapely.geometry import mapping, shape

from gisgrid.constants import STORAGE_SRID
from gisgrid.errors import InvalidInput, Reason

Datum = Literal["wgs84", "cgcs2000", "gcj02", "bd09"]
DATUMS: tuple[str, ...] = get_args(Datum)
#: The datum places are stored in, and answered in unless a request asks for another: one label for the storage
#: frame across the API (CGCS2000, taken as WGS-84: ~1 m apart today from plate motion since 2000.0, ignored).
STORAGE_DATUM: Datum = "cgcs2000"

# Krasovsky 1940 ellipsoid used by the GCJ-02 formula.
GCJ_A = 6378245.0
GCJ_EE = 0.00669342162296594323
# Baidu's constants.
BD_X_PI = np.pi * 3000.0 / 180.0
BD_DLON = 0.0065
BD_DLAT = 0.006
# China bbox of the public implementations (prcoords, eviltransform, coordtransform). A rectangle, not China's
# outline: it also takes in Korea, northern Vietnam and parts of Mongolia, where a position would be shifted by
# ~500 m as if it were GCJ-02. The conversions are for positions in mainland China only — a district's own
# boundaries refuse anything outside it anyway (review47 F8).
CHINA_BBOX = (72.004, 0.8293, 137.8347, 55.8271)

# 1e-9 degree ≈ 0.1 mm; the iteration converges in 3–4 steps, 20 is a safety bound.
INVERSE_TOLERANCE_DEG = 1e-9
INVERSE_MAX_ITER = 20

_Geoms = TypeVar("_Geoms", np.ndarray, gpd.GeoSeries)
_Pair = tuple[np.ndarray, np.ndarray]


#: How to swap X and Y of a layer file (its geometry has no x/y columns to name the other way round).
SWAP_IN_FILE = "in the file, e.g. QGIS' Swap X and Y coordinates"
SWAP_IN_FILE_ZH = "在文件中对调,如 QGIS 的“Swap X and Y coordinates”工具"


def _as_float_arrays(lon: ArrayLike, lat: ArrayLike) -> _Pair:
    x = np.array(lon, dtype=np.float64)  # copies: callers' arrays are never modified
    y = np.array(lat, dtype=np.float64)
    if x.shape != y.shape:
        raise InvalidInput(f"lon and lat must have the same shape, got {x.shape} and {y.shape}")
    return x, y


def in_china(lon: ArrayLike, lat: ArrayLike) -> np.ndarray:
    """Boolean mask: inside the bbox where the GCJ-02/BD-09 offsets apply (NaN → False)."""
    x = np.asarray(lon, dtype=np.float64)
    y = np.asarray(lat, dtype=np.float64)
    x0, y0, x1, y1 = CHINA_BBOX
    return (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)


def _gcj_offset(lon: np.ndarray, lat: np.ndarray) -> _Pair:
    """GCJ-02 minus WGS-84 offset in degrees at WGS-84 (lon, lat) — the published formula."""
    x = lon - 105.0
    y = lat - 35.0
    sqrt_abs_x = np.sqrt(np.abs(x))
    common = 20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)
    dlat = (
        -100.0
        + 2.0 * x
        + 3.0 * y
        + 0.2 * y * y
        + 0.1 * x * y
        + 0.2 * sqrt_abs_x
        + (common + 20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
        + (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    )
    dlon = (
        300.0
        + x
        + 2.0 * y
        + 0.1 * x * x
        + 0.1 * x * y
        + 0.1 * sqrt_abs_x
        + (common + 20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
        + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    )
    # dlat/dlon are metres on the Krasovsky ellipsoid; convert to degrees.
    rad_lat = np.radians(lat)
    magic = 1.0 - GCJ_EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = dlat * 180.0 / ((GCJ_A * (1.0 - GCJ_EE)) / (magic * sqrt_magic) * np.pi)
    dlon = dlon * 180.0 / (GCJ_A / sqrt_magic * np.cos(rad_lat) * np.pi)
    return dlon, dlat


def _gcj_forward(lon: np.ndarray, lat: np.ndarray) -> _Pair:
    dlon, dlat = _gcj_offset(lon, lat)
    return lon + dlon, lat + dlat


def _bd_forward(lon: np.ndarray, lat: np.ndarray) -> _Pair:
    z = np.hypot(lon, lat) + 0.00002 * np.sin(lat * BD_X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * BD_X_PI)
    return z * np.cos(theta) + BD_DLON, z * np.sin(theta) + BD_DLAT


def _bd_inverse_closed_form(lon: np.ndarray, lat: np.ndarray) -> _Pair:
    x = lon - BD_DLON
    y = lat - BD_DLAT
    z = np.hypot(x, y) - 0.00002 * np.sin(y * BD_X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * BD_X_PI)
    return z * np.cos(theta), z * np.sin(theta)


def _invert(
    forward: Callable[[np.ndarray, np.ndarray], _Pair], lon: np.ndarray, lat: np.ndarray, start: _Pair
) -> _Pair:
    """Solve forward(w) = (lon, lat) by fixed-point iteration from ``start``.

    Converges because the offset is a slowly varying function of position (contraction factor ~1e-2)."""
    wx, wy = start
    for _ in range(INVERSE_MAX_ITER):
        fx, fy = forward(wx, wy)
        dx = fx - lon
        dy = fy - lat
        wx = wx - dx
        wy = wy - dy
        # nanmax: NaN inputs must not keep the loop running to the bound (they are masked out anyway).
        if not np.isfinite(dx).any() or np.nanmax(np.maximum(np.abs(dx), np.abs(dy))) < INVERSE_TOLERANCE_DEG:
            break
    return wx, wy


def _only_in_china(func: Callable[[np.ndarray, np.ndarray], _Pair], lon: np.ndarray, lat: np.ndarray) -> _Pair:
    """Apply ``func`` to the points inside China's bbox; other points pass through unchanged."""
    mask = in_china(lon, lat)
    out_x = lon.copy()
    out_y = lat.copy()
    if mask.any():
        out_x[mask], out_y[mask] = func(lon[mask], lat[mask])
    return out_x, out_y


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> _Pair:
    """WGS-84/CGCS2000 → GCJ-02 (vectorised; outside China unchanged)."""
    x, y = _as_float_arrays(lon, lat)
    return _only_in_china(_gcj_forward, x, y)


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> _Pair:
    """GCJ-02 → WGS-84/CGCS2000 by fixed-point iteration to 1e-9° (outside China unchanged)."""
    x, y = _as_float_arrays(lon, lat)

    def inverse(gx: np.ndarray, gy: np.ndarray) -> _Pair:
        dlon, dlat = _gcj_offset(gx, gy)
        return _invert(_gcj_forward, gx, gy, (gx - dlon, gy - dlat))

    return _only_in_china(inverse, x, y)


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> _Pair:
    """GCJ-02 → BD-09 (Baidu's published formula; outside China unchanged)."""
    x, y = _as_float_arrays(lon, lat)
    return _only_in_china(_bd_forward, x, y)


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> _Pair:
    """BD-09 → GCJ-02: closed-form inverse refined by fixed-point iteration to 1e-9°."""
    x, y = _as_float_arrays(lon, lat)

    def inverse(bx: np.ndarray, by: np.ndarray) -> _Pair:
        return _invert(_bd_forward, bx, by, _bd_inverse_closed_form(bx, by))

    return _only_in_china(inverse, x, y)


def is_datum(value: object) -> TypeGuard[Datum]:
    return value in DATUMS


def check_datum(datum: str) -> Datum:
    """``datum`` if it is one of :data:`DATUMS`, else refused."""
    if not is_datum(datum):
        raise InvalidInput(
            f"unknown datum {datum!r}: expected one of {', '.join(DATUMS)}",
            detail={"datum": datum},
            reason=Reason.LITERAL_ERROR,
        )
    return datum


def to_storage(lon: ArrayLike, lat: ArrayLike, datum: Datum) -> _Pair:
    """Convert lon/lat given in ``datum`` to storage lon/lat (CGCS2000 ≈ WGS-84). Returns new arrays."""
    check_datum(datum)
    if datum == "gcj02":
        return gcj02_to_wgs84(lon, lat)
    if datum == "bd09":
        return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))
    return _as_float_arrays(lon, lat)


def from_storage(lon: ArrayLike, lat: ArrayLike, datum: Datum) -> _Pair:
    """Convert storage lon/lat to ``datum`` (e.g. gcj02 to draw on Gaode tiles). Returns new arrays."""
    check_datum(datum)
    if datum == "gcj02":
        return wgs84_to_gcj02(lon, lat)
    if datum == "bd09":
        return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))
    return _as_float_arrays(lon, lat)


def transform_geometries(
    geoms: _Geoms,
    datum: Datum,
    *,
    direction: Literal["to_storage", "from_storage"] = "to_storage",
    decimals: int | None = None,
) -> _Geoms:
    """Convert every coordinate of ``geoms`` (lon/lat) from ``datum`` to storage, or back.

    One vectorised call per geometry dimensionality (``shapely.transform`` hands all coordinates to numpy at
    once); Z values are kept. A GeoSeries comes back with the same index and CRS metadata (the coordinates
    stay geographic lon/lat; callers label them EPSG:4490). ``decimals``: the converted lon/lat rounded to that
    many decimals (an answer's precision; wgs84/cgcs2000 geometries are returned as they are)."""
    check_datum(datum)
    if direction not in ("to_storage", "from_storage"):
        raise InvalidInput(f"unknown direction {direction!r}: expected to_storage or from_storage")
    convert = to_storage if direction == "to_storage" else from_storage
    arr = np.asarray(geoms.values if isinstance(geoms, gpd.GeoSeries) else geoms, dtype=object)

    def func(coords: np.ndarray) -> np.ndarray:
        out = coords.copy()
        out[:, 0], out[:, 1] = convert(coords[:, 0], coords[:, 1], datum)
        if decimals is not None:
            out[:, :2] = np.round(out[:, :2], decimals)
        return out

    if datum in ("wgs84", "cgcs2000"):
        result = arr.copy()
    else:
        result = np.empty_like(arr)
        has_z = np.asarray(shapely.has_z(arr), dtype=bool)
        for z_mask, include_z in ((~has_z, False), (has_z, True)):
            if z_mask.any():
                result[z_mask] = shapely.transform(arr[z_mask], func, include_z=include_z)
    if isinstance(geoms, gpd.GeoSeries):
        return gpd.GeoSeries(result, index=geoms.index, crs=geoms.crs, name=geoms.name)
    return result


#: Fewest metres in a degree of latitude (at the equator) and in a degree of longitude per cos(latitude)
#: on the CGCS2000/WGS84 ellipsoid: dividing a distance by them over-covers it, never under-covers.
_MIN_M_PER_DEG_LAT = 110_574.0
_MIN_M_PER_DEG_LON_AT_EQUATOR = 111_320.0


def degree_box(lat: float, metres: float) -> tuple[float, float]:
    """Half-width and half-height in degrees of a box sure to hold every point within ``metres`` of a point at
    latitude ``lat`` (1 % spare): the prefilter that lets a plain geometry GiST index answer metric questions."""
    dy = metres / _MIN_M_PER_DEG_LAT * 1.01
    poleward = min(89.0, abs(lat) + dy)
    dx = metres / (_MIN_M_PER_DEG_LON_AT_EQUATOR * float(np.cos(np.radians(poleward)))) * 1.01
    return dx, dy


BBox = tuple[float, float, float, float]


def check_point(lon: float, lat: float) -> None:
    """Refuse a point that is no place, the same way on every route taking one (a report, ``/grids/locate``,
    ``/components?lon=…``; review52 F3d): NaN or infinite ``finite_number`` (pydantic's code for it), lon and lat
    swapped ``lon_lat_swapped``, outside ±180°/±90° ``out_of_range`` — an item naming the field, its reason and
    its bound."""
    for name, value in (("lon", lon), ("lat", lat)):
        if not math.isfinite(value):
            raise InvalidInput(
                f"{name}: {value} is not a finite number",
                detail=[{"field": name, "reason": "not a finite number"}],
                reason=Reason.FINITE_NUMBER,
            )
    for name, value, bound in (("lon", lon, 180), ("lat", lat, 90)):
        if not -bound <= value <= bound:
            swapped = abs(lat) > 90 and abs(lon) <= 90
            hint = " — lon and lat look swapped (lon is east, 73–135 in China)" if swapped else ""
            raise InvalidInput(
                f"{name}: {value} is outside ±{bound}°{hint}",
                detail=[
                    {
                        "field": name,
                        "reason": "lon and lat look swapped" if swapped else f"outside ±{bound}°",
                        "limit": {"ge": -bound, "le": bound},
                    }
                ],
                reason=Reason.LON_LAT_SWAPPED if swapped else Reason.OUT_OF_RANGE,
            )


def parse_bbox(text_: str, field: str = "bbox") -> BBox:
    """``minLon,minLat,maxLon,maxLat`` (degrees) as four floats, or InvalidInput naming ``field``."""
    try:
        values = tuple(float(p) for p in text_.split(","))
    except ValueError:
        raise InvalidInput(
            f"{field}: {text_!r} is not four comma-separated numbers",
            detail=[{"field": field, "reason": "not four comma-separated numbers"}],
            reason=Reason.BBOX_UNREADABLE,
        ) from None
    if len(values) != 4:
        raise InvalidInput(
            f"{field}: expected 4 numbers, got {len(values)}",
            detail=[{"field": field, "reason": f"expected 4 numbers, got {len(values)}"}],
            reason=Reason.BBOX_UNREADABLE,
        )
    minx, miny, maxx, maxy = values
    if not (-180 <= minx < maxx <= 180 and -90 <= miny < maxy <= 90):
        raise InvalidInput(
            f"{field}: need minLon < maxLon within ±180 and minLat < maxLat within ±90",
            detail=[{"field": field, "reason": "need minLon < maxLon within ±180 and minLat < maxLat within ±90"}],
            reason=Reason.BBOX_OUT_OF_RANGE,
        )
    return minx, miny, maxx, maxy


#: Points an edge of a GCJ-02/BD-09 box is converted at (``bbox_to_storage``): at least ``BBOX_EDGE_POINTS``, at most
#: ``BBOX_EDGE_STEP_DEG`` apart (the offset's shortest wavelength is 1/3°: between samples 0.002° apart the converted
#: edge bends by well under a centimetre), and no more than ``BBOX_EDGE_MAX_POINTS`` for a huge box.
BBOX_EDGE_POINTS = 32
BBOX_EDGE_STEP_DEG = 0.002
BBOX_EDGE_MAX_POINTS = 4096
#: Padding (degrees, ~1 cm) of that envelope for the millimetres the converted edge bends between two samples.
BBOX_PAD_DEG = 1e-7


def bbox_to_storage(bbox: BBox, datum: str) -> BBox:
    """A lon/lat box given in ``datum`` as the storage box that holds it: the envelope of its edges, densified
    (``BBOX_EDGE_POINTS`` points an edge at least, none farther apart than ``BBOX_EDGE_STEP_DEG``), converted and
    padded by ``BBOX_PAD_DEG``. The one reading of a ``bbox`` with a ``datum`` (GET /cases, /components, /grids).
    The corners alone are not enough: the GCJ-02 offset has ``sin(6πx)`` terms (a 1/3° wavelength), so along a
    box's edge it varies by metres — up to ~20 m on a 0.3° box — and the converted edge bulges past its corners."""
    given = check_datum(datum)
    if given in ("cgcs2000", "wgs84"):
        return bbox
    x0, y0, x1, y1 = bbox
    n = max(BBOX_EDGE_POINTS, min(BBOX_EDGE_MAX_POINTS, math.ceil(max(x1 - x0, y1 - y0) / BBOX_EDGE_STEP_DEG) + 1))
    t = np.linspace(0.0, 1.0, n)
    xs, ys = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
    lon_edges = np.concatenate([xs, xs, np.full(n, x0), np.full(n, x1)])  # south, north, west, east
    lat_edges = np.concatenate([np.full(n, y0), np.full(n, y1), ys, ys])
    lon, lat = to_storage(lon_edges, lat_edges, given)
    pad = BBOX_PAD_DEG  # the edge bends by millimetres between samples
    return float(lon.min() - pad), float(lat.min() - pad), float(lon.max() + pad), float(lat.max() + pad)


#: Decimals of an answer's lon/lat (1e-7° ≈ 1 cm), as PostGIS writes them (``ST_AsGeoJSON(geom, 7)``).
ANSWER_DECIMALS = 7


def features_in_datum(features: list[dict[str, Any]], datum: str) -> list[dict[str, Any]]:
    """GeoJSON Features read from storage with every vertex of their geometries in ``datum`` (gcj02 to draw on
    AMap/Tencent tiles, bd09 on Baidu's), rounded to ``ANSWER_DECIMALS``: points, lines and polygons alike, all in
    one vectorised :func:`transform_geometries` (a polygon vertex-wise: a shared vertex stays shared). The features
    as they are for cgcs2000 and wgs84; a Feature without geometry is kept as it is."""
    to = check_datum(datum)
    placed = [i for i, f in enumerate(features) if f.get("geometry")]
    if to in ("cgcs2000", "wgs84") or not placed:
        return features
    stored = np.array([shape(features[i]["geometry"]) for i in placed], dtype=object)
    moved = transform_geometries(stored, to, direction="from_storage", decimals=ANSWER_DECIMALS)
    out = list(features)
    for i, geom in zip(placed, moved, strict=True):
        out[i] = {**features[i], "geometry": mapping(geom)}
    return out


# ---------------------------------------------------------------- projections: densify, true area, distortion

#: Longest edge (degrees, ≈ 20 m) kept when lon/lat polygons are projected: a long edge would become a straight
#: chord in the projected CRS while its neighbour's extra vertex on that edge does not lie on the chord, so
#: boundaries that tile exactly would show false gaps and overlaps (a 4 km edge: ~330 m²; at 20 m: < 0.02 m²).
DENSIFY_DEG = 0.0002
#: Largest linear scale error (|k − 1|, in any direction) accepted for a CRS grid cells are cut in: UTM and the
#: CGCS2000 Gauss–Krüger zones stay within 0.1 % over their zones; Web Mercator is off by 22 % at 35°N (cells of
#: 6,730 m² instead of 10,000), an equal-area or other non-conformal CRS shears the squares.
MAX_SCALE_ERROR = 0.003
#: Slack (degrees) when checking data against a CRS's area of use (cutting, exports).
AREA_OF_USE_TOLERANCE_DEG = 0.5
#: Datums PROJ converts to CGCS2000 with a ballpark (zero) shift without it mattering: identical frames at epoch 2000.0,
#: about 1 m apart today from plate motion, which the service ignores (see the module docstring).
_MODERN_DATUM_WORDS = ("World Geodetic System 1984", "China 2000", "China Geodetic Coordinate System 2000")


def densify_lonlat(geoms: _Geoms, max_deg: float = DENSIFY_DEG) -> _Geoms:
    """``geoms`` (lon/lat) with no edge longer than ``max_deg``, ready to be projected (see ``DENSIFY_DEG``)."""
    if isinstance(geoms, gpd.GeoSeries):
        return gpd.GeoSeries(shapely.segmentize(np.asarray(geoms.values), max_deg), index=geoms.index, crs=geoms.crs)
    return shapely.segmentize(np.asarray(geoms, dtype=object), max_deg)


def densify_projected(geoms: np.ndarray, crs: pyproj.CRS, max_m: float = 20.0) -> np.ndarray:
    """The same for geometries in a projected CRS (edges ≤ ``max_m`` metres) before they go to lon/lat."""
    factor = 1.0 if not crs.axis_info else float(crs.axis_info[0].unit_conversion_factor or 1.0)
    return shapely.segmentize(np.asarray(geoms, dtype=object), max_m / factor)


def geodesic_areas(geoms: np.ndarray, crs: pyproj.CRS | str | int) -> np.ndarray:
    """True area (m², on the CGCS2000/GRS80 ellipsoid) of polygons given in any ``crs``, whatever that CRS's own
    scale: measured in a Lambert azimuthal *equal-area* projection of the ellipsoid centred on the data, where
    planar area is ellipsoidal area. Vectorised; for cells and units it agrees with ``pyproj.Geod`` to < 0.01 m²
    per 10,000 m² cell (the tests hold it to that). Lon/lat input is densified first (``densify_lonlat``)."""
    series = gpd.GeoSeries(np.asarray(geoms, dtype=object), crs=crs)
    if series.crs is not None and series.crs.is_geographic:
        # Stored edges are straight in lon/lat: measure that area, not the one of their chords in the projection.
        series = densify_lonlat(series)
    valid = ~(series.is_empty | series.isna())
    if not valid.any():
        return np.zeros(len(series))
    # Centred on the middle of the data's extent: any centre gives equal areas; a near one keeps the projected
    # edges close to straight. (Not the centroid of the union: on 38k cells that union took 3.2 s of 4.9.)
    xmin, ymin, xmax, ymax = series[valid].total_bounds
    to_lon_lat = pyproj.Transformer.from_crs(series.crs, STORAGE_SRID, always_xy=True)
    lon0, lat0 = (float(v) for v in to_lon_lat.transform((xmin + xmax) / 2, (ymin + ymax) / 2))
    equal_area = pyproj.CRS.from_proj4(f"+proj=laea +lat_0={lat0} +lon_0={lon0} +ellps=GRS80 +units=m +no_defs")
    return np.where(valid, series.to_crs(equal_area).area.to_numpy(), 0.0)


def outside_area_of_use(crs: pyproj.CRS, bounds: ArrayLike, tolerance: float = AREA_OF_USE_TOLERANCE_DEG) -> str | None:
    """``lon a..b, lat c..d, outside the area of use of EPSG:n (its name: lon …, lat …)`` when the lon/lat
    ``bounds`` (minx, miny, maxx, maxy) pass the area of use of ``crs`` by more than ``tolerance`` degrees
    (:data:`AREA_OF_USE_TOLERANCE_DEG`); None inside it, or when it is unknown or crosses the antimeridian."""
    aou = crs.area_of_use
    if aou is None or aou.west > aou.east:  # unknown, or crosses the antimeridian: nothing sane to test
        return None
    xmin, ymin, xmax, ymax = (float(v) for v in np.asarray(bounds, dtype=float))
    tol = tolerance
    if xmin >= aou.west - tol and xmax <= aou.east + tol and ymin >= aou.south - tol and ymax <= aou.north + tol:
        return None
    return (
        f"lon {xmin:.3f}..{xmax:.3f}, lat {ymin:.3f}..{ymax:.3f}, outside the area of use of EPSG:{crs.to_epsg()} "
        f"({aou.name}: lon {aou.west:g}..{aou.east:g}, lat {aou.south:g}..{aou.north:g})"
    )


def scale_error_over(crs: pyproj.CRS, bounds: ArrayLike) -> float:
    """:func:`scale_error` of ``crs`` at the corners and the centre of the lon/lat ``bounds``."""
    xmin, ymin, xmax, ymax = (float(v) for v in np.asarray(bounds, dtype=float))
    lon = np.array([xmin, xmax, xmin, xmax, (xmin + xmax) / 2])
    lat = np.array([ymin, ymin, ymax, ymax, (ymin + ymax) / 2])
    return scale_error(crs, lon, lat)


def scale_error(crs: pyproj.CRS, lon: ArrayLike, lat: ArrayLike) -> float:
    """Largest linear scale error |k − 1| of ``crs`` at the given points, along meridians and parallels and from
    shear (angular distortion): 0 for a true-to-scale conformal CRS."""
    factors = pyproj.Proj(crs).get_factors(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
    h = np.abs(np.asarray(factors.meridional_scale, dtype=float) - 1)
    k = np.abs(np.asarray(factors.parallel_scale, dtype=float) - 1)
    shear = np.radians(np.asarray(factors.angular_distortion, dtype=float)) / 2
    return float(np.nanmax(np.concatenate([h, k, shear])))


class DatumApproximate(UserWarning):
    """Coordinates converted to CGCS2000 by PROJ's ballpark operation: accuracy unknown (tens of metres)."""


def ballpark_datum_warning(crs: pyproj.CRS, where: str, *, exporting: bool = False) -> str | None:
    """One line when PROJ can bring ``crs`` to CGCS2000 (or, ``exporting``, CGCS2000 to ``crs``) only with a
    *ballpark* operation (no datum shift, accuracy unknown) from an old datum — Beijing 1954, Xian 1980, New Beijing:
    positions may be off by tens of metres (about 70 m around Zhengzhou). None for modern datums (WGS 84, CGCS2000),
    whose ballpark (zero) shift leaves only the ~1 m of plate motion since 2000.0 the service ignores."""
    geodetic = crs.geodetic_crs
    datum = geodetic.datum.name if geodetic is not None and geodetic.datum is not None else ""
    if any(word in datum for word in _MODERN_DATUM_WORDS):
        return None
    group = TransformerGroup(crs, pyproj.CRS.from_epsg(STORAGE_SRID), always_xy=True)
    usable = [t for t in group.transformers if "ballpark" not in t.description.lower()]
    if usable:
        return None
    ballpark = "with PROJ's ballpark operation (no datum shift, accuracy unknown: often tens of metres)"
    if exporting:
        return (
            f"{where}: CGCS2000 is converted to {crs.name} (datum {datum}) {ballpark}: the file holds CGCS2000 "
            f"positions labelled {datum}; convert them with your survey's 7-parameter or grid transformation "
            "for exact positions"
        )
    return (
        f"{where}: {crs.name} (datum {datum}) is converted to CGCS2000 {ballpark}; convert the data with your "
        "survey's 7-parameter or grid transformation first for exact positions"
    )


# --------------------------------------------------------------------------------------------- Gauss–Krüger zones

#: CGCS2000 Gauss–Krüger zones over China (central meridians 75°E … 135°E), each in two forms: with the zone number
#: in front of the eastings (39,452,999 m: zone 39, 452,999 m) and in the central-meridian (CM) form without it
#: (500 km false easting). 3° zones 25–45: EPSG:4513–4533 and 4534–4554; 6° zones 13–23: EPSG:4491–4501 and
#: 4502–4512. The two zone-number ranges do not overlap, so an easting's number names its zone and width.
GK3_ZONES = (25, 45)
GK3_ZONE_EPSG, GK3_CM_EPSG = 4513, 4534
GK6_ZONES = (13, 23)
GK6_ZONE_EPSG, GK6_CM_EPSG = 4491, 4502
#: What a CM-form easting looks like (m): 500 km ± the half-width of a 6° zone at China's southern edge.
GK_CM_EASTINGS = (100_000.0, 900_000.0)
#: What a northing in China looks like (m): lat ~3°N … 54°N.
GK_NORTHINGS = (300_000.0, 6_100_000.0)
#: The suggestion when nothing in the coordinates names a zone.
GENERIC_CRS_HINT = "pass --src-crs, e.g. EPSG:4547 (CGCS2000 3° GK CM 114E) or EPSG:4548 (CM 117E)"


@dataclass(frozen=True)
class GKZone:
    """One CGCS2000 Gauss–Krüger zone: its width (3 or 6 degrees), number, central meridian (°E) and EPSG codes
    with the zone number in the eastings (``epsg``) and without it (``cm_epsg``)."""

    degrees: int
    zone: int
    cm: int
    epsg: int
    cm_epsg: int

    def describe(self) -> str:
        return (
            f"CGCS2000 {self.degrees}° GK zone {self.zone}, CM {self.cm}E; or EPSG:{self.cm_epsg} with the zone "
            "number taken off"
        )


def gk_zone(degrees: int, zone: int) -> GKZone:
    """The 3° or 6° zone ``zone`` (3°: 25–45, 6°: 13–23)."""
    first, last = GK3_ZONES if degrees == 3 else GK6_ZONES
    if not first <= zone <= last:
        raise ValueError(f"no CGCS2000 {degrees}° Gauss–Krüger zone {zone} over China")
    zone_epsg, cm_epsg = (GK3_ZONE_EPSG, GK3_CM_EPSG) if degrees == 3 else (GK6_ZONE_EPSG, GK6_CM_EPSG)
    cm = 3 * zone if degrees == 3 else 6 * zone - 3
    return GKZone(degrees, zone, cm, zone_epsg + zone - first, cm_epsg + zone - first)


def gk_zone_of_easting(easting: float) -> GKZone | None:
    """The zone whose number an easting carries in front (8 digits: 39,449,127 m is 3° zone 39); None for any
    other value."""
    if not (math.isfinite(easting) and 1e7 <= easting < 1e8):
        return None
    number = int(easting // 1_000_000)
    for degrees, (first, last) in ((3, GK3_ZONES), (6, GK6_ZONES)):
        if first <= number <= last:
            return gk_zone(degrees, number)
    return None


def gk_zone_of_epsg(epsg: int | None) -> GKZone | None:
    """The zone of a CGCS2000 Gauss–Krüger EPSG code, in either form; None for any other code."""
    if epsg is None:
        return None
    for degrees, (first, last), bases in (
        (3, GK3_ZONES, (GK3_ZONE_EPSG, GK3_CM_EPSG)),
        (6, GK6_ZONES, (GK6_ZONE_EPSG, GK6_CM_EPSG)),
    ):
        for base in bases:
            if base <= epsg <= base + last - first:
                return gk_zone(degrees, first + epsg - base)
    return None


def gk3_zone_nearest(lon: float) -> GKZone:
    """The 3° zone whose central meridian is nearest ``lon`` (clamped to China's 75°E … 135°E); floor(x + 0.5),
    not round(): no banker's rounding on the zone edges."""
    first, last = GK3_ZONES
    return gk_zone(3, first + min(max(math.floor((lon - 3 * first) / 3 + 0.5), 0), last - first))


def _one_zone(values: np.ndarray) -> GKZone | None:
    low, high = gk_zone_of_easting(float(np.min(values))), gk_zone_of_easting(float(np.max(values)))
    return low if low is not None and low == high else None


def _within(values: np.ndarray, bounds: tuple[float, float]) -> bool:
    return bool(np.all((values >= bounds[0]) & (values <= bounds[1])))


def projected_crs_hint(x: ArrayLike, y: ArrayLike, *, swap: str) -> str:
    """What CRS to pass for projected metres read without a CRS (or with a lon/lat one), X and Y as the file has
    them (only their extremes matter): the zone their eastings name when all carry the same zone number; that X
    and Y look swapped when the Y values carry it instead, or — no zone number — when the X values are northings
    and the Y values central-meridian eastings (survey tables write X = north); else :data:`GENERIC_CRS_HINT`.
    ``swap`` says how to swap them in the caller's input (e.g. ``--x-field, --y-field``). The one place both the
    boundary and the component import read a zone from the coordinates."""
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    xs, ys = xs[np.isfinite(xs)], ys[np.isfinite(ys)]
    if not (xs.size and ys.size):
        return GENERIC_CRS_HINT
    in_x, in_y = _one_zone(xs), _one_zone(ys)
    if in_x is not None and in_y is None:
        return f"the eastings carry the zone number {in_x.zone}: pass --src-crs EPSG:{in_x.epsg} ({in_x.describe()})"
    if in_y is not None and in_x is None:
        return (
            f"X and Y look swapped (the Y values carry the zone number {in_y.zone}, as eastings do): swap them "
            f"({swap}) and pass --src-crs EPSG:{in_y.epsg} ({in_y.describe()})"
        )
    if _within(xs, GK_NORTHINGS) and xs.min() > GK_CM_EASTINGS[1] and _within(ys, GK_CM_EASTINGS):
        return (
            "X and Y look swapped (the X values are northings, the Y values eastings without a zone number, as "
            f"survey tables write them): swap them ({swap}) and {GENERIC_CRS_HINT} — the zone of their central "
            "meridian"
        )
    return GENERIC_CRS_HINT


def projected_area_of_use(crs: pyproj.CRS, tolerance: float = AREA_OF_USE_TOLERANCE_DEG) -> BBox | None:
    """The area of use of the projected ``crs`` (widened by ``tolerance`` degrees) in its own coordinates
    (xmin, ymin, xmax, ymax, always x = east); None when unknown, across the antimeridian or not computable."""
    aou = crs.area_of_use
    if aou is None or aou.west > aou.east:
        return None
    tol = tolerance
    try:
        to_crs = pyproj.Transformer.from_crs(crs.geodetic_crs, crs, always_xy=True)
        box = to_crs.transform_bounds(
            max(aou.west - tol, -180), max(aou.south - tol, -90), min(aou.east + tol, 180), min(aou.north + tol, 90)
        )
    except (pyproj.exceptions.CRSError, pyproj.exceptions.ProjError):
        return None
    return (float(box[0]), float(box[1]), float(box[2]), float(box[3]))


def in_area_of_use(
    crs: pyproj.CRS, lon: ArrayLike, lat: ArrayLike, tolerance: float = AREA_OF_USE_TOLERANCE_DEG
) -> np.ndarray:
    """Which lon/lat points lie in the area of use of ``crs`` (± ``tolerance`` degrees); all False when it is
    unknown or crosses the antimeridian."""
    lons, lats = _as_float_arrays(lon, lat)
    aou = crs.area_of_use
    if aou is None or aou.west > aou.east:
        return np.zeros(lons.shape, dtype=bool)
    tol = tolerance
    with np.errstate(invalid="ignore"):
        return (
            (lons >= aou.west - tol) & (lons <= aou.east + tol) & (lats >= aou.south - tol) & (lats <= aou.north + tol)
        )
