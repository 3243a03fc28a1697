"""Cut administrative units into coded square unit grids (万米单元网格).

Pure domain logic: GeoDataFrames in, GeoDataFrames out; no database, no I/O.

The grid is anchored at the origin of a projected metric CRS, like PostGIS ``ST_SquareGrid``: cell
(col i, row j) covers ``[i*side, (i+1)*side] x [j*side, (j+1)*side]``, so regenerating a district gives
the same cells and indices. Cells are clipped to their unit (no cell crosses a unit boundary), pieces
smaller than ``sliver * cell_area`` are merged into a neighbouring piece of the same unit, and every
piece gets a 15-digit code (DB11/T 2157: 6 district + 3 street + 3 community + 3 sequence), the
sequence numbered west→east, north→south (从西向东、由北至南) within each unit. The pieces of a cell cut into
several are numbered the same way: north first, and of pieces level with each other, west first. That is the
numbering of a first cut; a regeneration keeps the stored codes of cells that come back the same and numbers the
others above them (``numbering.keep_codes``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from pyproj.exceptions import CRSError

from gisgrid import geodesy
from gisgrid.constants import STORAGE_SRID
from gisgrid.errors import InvalidInput
from gisgrid.texts import bilingual

#: Storage CRS of units and cells (CGCS2000 lon/lat).
MIN_CELL_AREA = 100.0
MAX_CELL_AREA = 1_000_000.0
#: The sequence part of the code has 3 digits.
MAX_CELLS_PER_UNIT = 999

UNIT_COLUMNS = (
    "code",
    "district_code",
    "street_code",
    "community_code",
    "district_name",
    "street_name",
    "community_name",
)
CELL_COLUMNS = (
    "code",
    "district_code",
    "street_code",
    "community_code",
    "seq",
    "area_m2",
    "district_name",
    "street_name",
    "community_name",
    "row",
    "col",
)

_EPSG_SPEC = re.compile(r"\s*epsg:(\d{4,6})\s*", re.IGNORECASE)
_POLYGON = 3


# --------------------------------------------------------------------------------------------- CRS


def choose_metric_crs(lon: float, lat: float) -> pyproj.CRS:
    """The projected CRS the ``auto`` rule picks for a district centred at (lon, lat).

    Inside China (lon 73–136, lat 3–54): the CGCS2000 3-degree Gauss–Krüger zone whose central meridian
    is nearest (EPSG:4534 CM 75E … EPSG:4554 CM 135E). Elsewhere: the WGS 84 UTM zone (326xx / 327xx).
    """
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise InvalidInput(f"centroid ({lon}, {lat}) is not a lon/lat position; units must be in EPSG:4490")
    if 73 <= lon <= 136 and 3 <= lat <= 54:
        return pyproj.CRS.from_epsg(geodesy.gk3_zone_nearest(lon).cm_epsg)
    utm_zone = min(int((lon + 180) // 6) + 1, 60)
    return pyproj.CRS.from_epsg((32600 if lat >= 0 else 32700) + utm_zone)


def resolve_metric_crs(spec: str, geoms_lonlat: gpd.GeoSeries | Sequence[shapely.Geometry] | np.ndarray) -> pyproj.CRS:
    """Turn ``"auto"`` or ``"EPSG:NNNN"`` into the metric CRS used for cutting ``geoms_lonlat`` (EPSG:4490).

    Refuses geographic or non-metre CRSs, and a district that lies outside the CRS's area of use.
    """
    geoms = _geometry_array(geoms_lonlat)
    if len(geoms) == 0 or bool(np.all(shapely.is_empty(geoms) | shapely.is_missing(geoms))):
        raise InvalidInput("no unit geometry to choose a metric CRS for")
    text = str(spec).strip()
    if text.lower() == "auto":
        lon, lat = _centroid_lonlat(geoms)
        crs = choose_metric_crs(lon, lat)
    else:
        match = _EPSG_SPEC.fullmatch(text)
        if match is None:
            raise InvalidInput(f"--crs {text!r} is not understood; use 'auto' or 'EPSG:<code>', e.g. EPSG:4547")
        try:
            crs = pyproj.CRS.from_epsg(int(match.group(1)))
        except CRSError as exc:
            raise InvalidInput(f"--crs {text}: unknown EPSG code; use 'auto' or e.g. EPSG:4547") from exc
        if not crs.is_projected:
            raise InvalidInput(
                f"--crs {text} ({crs.name}) is geographic (degrees); grid cells need a projected metric CRS "
                "such as EPSG:4547, or use 'auto'"
            )
        units = {axis.unit_name for axis in crs.axis_info}
        if units != {"metre"}:
            raise InvalidInput(
                f"--crs {text} ({crs.name}) measures in {', '.join(sorted(units))}, not metres; "
                "use a metric CRS such as EPSG:4547, or 'auto'"
            )
    _check_area_of_use(crs, geoms)
    _check_scale(crs, geoms, text)
    return crs


def _check_scale(crs: pyproj.CRS, geoms: np.ndarray, spec: str) -> None:
    """Refuse a CRS whose scale over the district is not true enough for square 10,000 m² cells (Web Mercator:
    cells of ~6,700 m² at 35°N; an equal-area or other non-conformal CRS: sheared squares)."""
    error = geodesy.scale_error_over(crs, shapely.total_bounds(geoms))
    if not error <= geodesy.MAX_SCALE_ERROR:
        raise InvalidInput(
            bilingual(
                f"坐标系 {spec} 在本区范围内长度变形最大 {error:.1%}(超过 {geodesy.MAX_SCALE_ERROR:.1%}),"
                "切出的网格在地面上不是 10000 平方米的正方形:请用 auto(本区所在的 CGCS2000 3° 高斯-克吕格投影带)",
                f"--crs {spec} ({crs.name}) distorts scale by up to {error:.1%} over the district (more than "
                f"{geodesy.MAX_SCALE_ERROR:.1%}): its cells would not be true 10,000 m² squares on the ground; "
                "use 'auto' (the CGCS2000 3° Gauss–Krüger zone of the district) or that zone's EPSG code",
            )
        )


def _centroid_lonlat(geoms: np.ndarray) -> tuple[float, float]:
    """Area-weighted centroid of all units (degrees are fine as weights at district scale)."""
    areas = shapely.area(geoms)
    cent = shapely.centroid(geoms)
    total = float(np.nansum(areas))
    if total > 0:
        x = float(np.nansum(shapely.get_x(cent) * areas) / total)
        y = float(np.nansum(shapely.get_y(cent) * areas) / total)
        return x, y
    xmin, ymin, xmax, ymax = shapely.total_bounds(geoms)
    return float((xmin + xmax) / 2), float((ymin + ymax) / 2)


def _check_area_of_use(crs: pyproj.CRS, geoms: np.ndarray) -> None:
    outside = geodesy.outside_area_of_use(crs, shapely.total_bounds(geoms))
    if outside:
        raise InvalidInput(
            f"units span {outside}; use the zone that covers the district, 'auto', or cut smaller areas separately"
        )


# ------------------------------------------------------------------------------------- grid + clip


class GridPieces(NamedTuple):
    """Parallel arrays describing grid cells (or clipped pieces of cells)."""

    unit: np.ndarray  # int64 position of the unit in the input
    col: np.ndarray  # int64 i = floor(x / side)
    row: np.ndarray  # int64 j = floor(y / side)
    geometry: np.ndarray  # shapely geometries, metric CRS


def square_grid(geoms_metric: np.ndarray, side: float) -> GridPieces:
    """All origin-anchored square cells covering each geometry's bounding box (like ``ST_SquareGrid``)."""
    bounds = shapely.bounds(geoms_metric)
    i0 = np.floor(bounds[:, 0] / side).astype(np.int64)
    j0 = np.floor(bounds[:, 1] / side).astype(np.int64)
    # A bound exactly on a grid line must not add an empty column/row beyond it.
    i1 = np.maximum(np.ceil(bounds[:, 2] / side).astype(np.int64) - 1, i0)
    j1 = np.maximum(np.ceil(bounds[:, 3] / side).astype(np.int64) - 1, j0)
    ncol = i1 - i0 + 1
    counts = ncol * (j1 - j0 + 1)
    unit = np.repeat(np.arange(len(geoms_metric), dtype=np.int64), counts)
    local = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    col = i0[unit] + local % ncol[unit]
    row = j0[unit] + local // ncol[unit]
    boxes = shapely.box(col * side, row * side, (col + 1) * side, (row + 1) * side)
    return GridPieces(unit, col, row, boxes)


def node_to_grid(geoms_metric: np.ndarray, side: float) -> np.ndarray:
    """The geometries with a vertex inserted wherever their boundary crosses a grid line.

    Each crossing is computed once, so the two cells on either side of a grid line get bitwise
    identical vertices there: the cut is a clean coverage whose shared edges match exactly (also after
    reprojection), which keeps adjacency tests, unions and database topology checks exact.
    """
    polys, poly_unit = shapely.get_parts(geoms_metric, return_index=True)
    rings, ring_poly = shapely.get_rings(polys, return_index=True)
    coords, ring_of = shapely.get_coordinates(rings, return_index=True)
    seg = np.flatnonzero(ring_of[:-1] == ring_of[1:])  # segment k runs from coords[k] to coords[k + 1]
    x1, y1 = coords[seg, 0], coords[seg, 1]
    x2, y2 = coords[seg + 1, 0], coords[seg + 1, 1]

    def crossings(a1: np.ndarray, a2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(segment, grid-line value) for every line strictly between a1 and a2."""
        first = np.floor(np.minimum(a1, a2) / side) + 1
        count = np.maximum(np.ceil(np.maximum(a1, a2) / side) - first, 0).astype(np.int64)
        which = np.repeat(np.arange(len(a1)), count)
        step = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
        return which, (first[which] + step) * side

    sv, xv = crossings(x1, x2)
    tv = (xv - x1[sv]) / (x2[sv] - x1[sv])
    yv = y1[sv] + tv * (y2[sv] - y1[sv])
    sh, yh = crossings(y1, y2)
    th = (yh - y1[sh]) / (y2[sh] - y1[sh])
    xh = x1[sh] + th * (x2[sh] - x1[sh])

    t = np.concatenate([np.zeros(len(coords)), tv, th])
    start = np.concatenate([np.arange(len(coords)), seg[sv], seg[sh]])
    x = np.concatenate([coords[:, 0], xv, xh])
    y = np.concatenate([coords[:, 1], yv, yh])
    added = np.arange(len(t)) >= len(coords)
    keep = ~added | ((t > 0) & (t < 1))  # a grid line through an existing vertex adds nothing
    order = np.lexsort((t, start))
    order = order[keep[order]]
    new_rings = shapely.linearrings(np.column_stack([x[order], y[order]]), indices=ring_of[start[order]])
    new_polys = shapely.polygons(new_rings, indices=ring_poly)
    single = np.bincount(poly_unit, minlength=len(geoms_metric)) == 1
    out = shapely.multipolygons(new_polys, indices=poly_unit)
    out[single] = new_polys[np.searchsorted(poly_unit, np.flatnonzero(single))]
    return _polygonal(out)


def clip_grid(geoms_metric: np.ndarray, side: float) -> GridPieces:
    """Square cells clipped to their unit, one entry per polygonal piece (``ST_SquareGrid`` + ``ST_Intersection``).

    Cells strictly inside a unit stay untouched boxes; only cells on a unit boundary are clipped.
    Non-polygonal and degenerate (near zero-area) parts of the clipped cells are dropped.
    """
    geoms_metric = node_to_grid(geoms_metric, side)
    grid = square_grid(geoms_metric, side)
    shapely.prepare(geoms_metric)  # prepared unit geometries make the per-cell predicates cheap
    unit_geom = geoms_metric[grid.unit]
    inside = shapely.contains_properly(unit_geom, grid.geometry)
    edge = np.flatnonzero(~inside)
    edge = edge[shapely.intersects(unit_geom[edge], grid.geometry[edge])]
    clipped = _clip_boundary_cells(geoms_metric, grid.unit[edge], grid.row[edge], grid.col[edge], side)
    parts, src = shapely.get_parts(clipped, return_index=True)
    # Lines/points where a cell only touches the unit, and numerical crumbs, are not cells.
    keep = (shapely.get_type_id(parts) == _POLYGON) & (shapely.area(parts) > 1e-9 * side * side)
    take = np.concatenate([np.flatnonzero(inside), edge[src[keep]]])
    geometry = np.concatenate([grid.geometry[inside], parts[keep]])
    return GridPieces(grid.unit[take], grid.col[take], grid.row[take], geometry)


def _clip_boundary_cells(
    geoms: np.ndarray, unit: np.ndarray, row: np.ndarray, col: np.ndarray, side: float
) -> np.ndarray:
    """``cell ∩ unit`` for boundary cells, as a row-strip then a column clip with GEOS' rectangle clipper.

    A general overlay per cell costs ~50 µs whatever its size and walks the whole unit boundary; clipping
    each unit once per row, then each strip piece per column, is ~5x faster and gives crossing points
    exactly on the grid lines. The rectangle clipper does not promise valid output, so anything invalid
    is redone with a full ``intersection``.
    """
    xmin, ymin, xmax, ymax = (float(v) for v in shapely.total_bounds(geoms))
    lo_x, hi_x, lo_y, hi_y = xmin - side, xmax + side, ymin - side, ymax + side
    span = int(row.max() - row.min()) + 1 if len(row) else 1
    _, first, strip_of = np.unique(unit * span + (row - row.min(initial=0)), return_index=True, return_inverse=True)
    strip_unit, strip_row = unit[first], row[first]
    strips = np.empty(len(first), dtype=object)
    for j in np.unique(strip_row):  # one vectorised clip per grid row
        pick = np.flatnonzero(strip_row == j)
        strips[pick] = shapely.clip_by_rect(geoms[strip_unit[pick]], lo_x, j * side, hi_x, (j + 1) * side)
    bad = np.flatnonzero(~shapely.is_valid(strips))
    if len(bad):
        rows = strip_row[bad]
        strips[bad] = shapely.intersection(
            shapely.box(lo_x, rows * side, hi_x, (rows + 1) * side), geoms[strip_unit[bad]]
        )
    out = np.empty(len(unit), dtype=object)
    for i in np.unique(col):  # one vectorised clip per grid column
        pick = np.flatnonzero(col == i)
        out[pick] = shapely.clip_by_rect(strips[strip_of[pick]], i * side, lo_y, (i + 1) * side, hi_y)
    bad = np.flatnonzero(~shapely.is_valid(out))
    if len(bad):
        cells = shapely.box(col[bad] * side, row[bad] * side, (col[bad] + 1) * side, (row[bad] + 1) * side)
        out[bad] = shapely.intersection(cells, geoms[unit[bad]])
    return out


#: Centroids of two pieces of one cell closer than this (metres) north–south count as level, and the west one comes
#: first: pieces drawn level (a cell split by a north–south road) differ only by reprojection noise.
_LEVEL_M = 1e-3


def _reading_order(unit: np.ndarray, row: np.ndarray, col: np.ndarray, geometry: np.ndarray) -> np.ndarray:
    """Permutation sorting pieces by unit, row north→south, col west→east, then, within a cell split into several
    pieces, north→south and west→east as the cells are: by each piece's centroid, the northern first and, of
    pieces level to within ``_LEVEL_M``, the western first. Noise in the last digits of a coordinate (the
    lon/lat round trip, another PROJ build) cannot reorder pieces that are drawn level, nor ones one above the
    other: only a difference of more than ``_LEVEL_M`` in the north–south position decides before west–east."""
    n = len(unit)
    rep_x = np.zeros(n)
    rep_y = np.zeros(n)
    by_cell = np.lexsort((col, row, unit))
    same = (np.diff(unit[by_cell]) == 0) & (np.diff(row[by_cell]) == 0) & (np.diff(col[by_cell]) == 0)
    shared = np.zeros(n, dtype=bool)
    shared[by_cell[1:][same]] = True
    shared[by_cell[:-1][same]] = True
    if not shared.any():
        return np.lexsort((col, -row, unit))
    # Centroids only where a cell was split into several pieces: a point on the surface would do for west–east,
    # but its height follows the piece's vertices, so it could put one of two level pieces "north" of the other.
    points = shapely.centroid(geometry[shared])
    rep_x[shared] = shapely.get_x(points)
    rep_y[shared] = shapely.get_y(points)
    order = np.lexsort((-rep_y, col, -row, unit))  # cells in reading order, their pieces north first
    u, r, c, y = unit[order], row[order], col[order], rep_y[order]
    # A new band of level pieces starts at every cell and wherever the next piece lies clearly further south
    # (chained, so that no rounding edge can split two pieces that are level).
    new_band = np.r_[True, (u[1:] != u[:-1]) | (r[1:] != r[:-1]) | (c[1:] != c[:-1]) | (y[:-1] - y[1:] > _LEVEL_M)]
    band = np.cumsum(new_band)
    return order[np.lexsort((rep_x[order], band))]


# --------------------------------------------------------------------------------------- slivers


def merge_slivers(
    geometry: np.ndarray, unit: np.ndarray, row: np.ndarray, col: np.ndarray, threshold: float, cap: float
) -> np.ndarray:
    """Host piece index for every piece; a piece is its own host unless it is a sliver merged elsewhere.

    A sliver (area < ``threshold``) goes to the neighbouring group of the same unit with which it shares
    the longest edge, preferring groups that are not slivers. Rounds are synchronous, so chains of
    slivers reach a host step by step; a chain only keeps growing a group while it is below ``cap``.
    Sliver clusters with no host nearby grow around their largest piece. A group still under ``threshold``
    at the end (its neighbours were at the cap) is merged into its longest-edge neighbouring group of the
    same unit, over the cap if need be; only a sliver with no neighbour in its unit stays alone. Ties go to
    the lower piece index, so the result depends only on piece order.
    """
    n = len(geometry)
    area = shapely.area(geometry)
    host = np.arange(n)
    slivers = np.flatnonzero(area < threshold)
    if len(slivers) == 0:
        return host
    q, t = shapely.STRtree(geometry).query(geometry[slivers])
    s = slivers[q]
    # Pieces lie in their closed cell box, so only pieces of edge-adjacent cells can share an edge.
    keep = (unit[s] == unit[t]) & (np.abs(row[s] - row[t]) + np.abs(col[s] - col[t]) == 1)
    s, t = s[keep], t[keep]
    shared = shapely.length(shapely.intersection(shapely.boundary(geometry[s]), shapely.boundary(geometry[t])))
    # Only a shared edge counts; touching at a corner (or a numerically tiny overlap) does not.
    keep = shared > 1e-9 * math.sqrt(threshold)
    s, t, shared = s[keep], t[keep], shared[keep]

    settled = area >= threshold  # pieces that belong to a group (non-slivers are group roots)
    group_area = area.copy()
    while True:
        open_edge = ~settled[s] & settled[t]
        if open_edge.any():
            es, eg, el = s[open_edge], host[t[open_edge]], shared[open_edge]
            below_cap = group_area[eg] < cap
            if below_cap.any():
                es, eg, el = es[below_cap], eg[below_cap], el[below_cap]
            elif (~settled[s] & ~settled[t]).any():
                es = es[:0]  # full groups only: first let sliver clusters form their own groups
            if len(es):
                winners, hosts = _best_hosts(es, eg, el, group_area >= threshold, n)
                host[winners] = hosts
                settled[winners] = True
                np.add.at(group_area, hosts, area[winners])
                continue
        pending = ~settled[s] & ~settled[t]
        if not pending.any():
            break
        # A cluster of slivers with no open host: its largest piece (per unit) starts a group.
        cand = np.unique(s[pending])
        order = np.lexsort((cand, -area[cand], unit[cand]))
        first = order[np.r_[True, unit[cand][order][1:] != unit[cand][order][:-1]]]
        settled[cand[first]] = True
    return _merge_small_groups(host, group_area, s, t, shared, threshold, n)


def _merge_small_groups(
    host: np.ndarray,
    group_area: np.ndarray,
    s: np.ndarray,
    t: np.ndarray,
    shared: np.ndarray,
    threshold: float,
    n: int,
) -> np.ndarray:
    """Merge every group still under ``threshold`` that shares an edge with another group of its unit into that
    group, the cap notwithstanding: a cell a little over the cap is better than a sliver. Groups with a full
    neighbour go to it (longest shared edge, then lowest index) all at once; a group whose neighbours are all
    small goes one at a time (lowest root first), so that two small groups never merge into each other."""
    while True:
        gs, gt = host[s], host[t]
        edge = (gs != gt) & (group_area[gs] < threshold)
        if not edge.any():
            return host
        big = group_area >= threshold
        gs, gt, el = gs[edge], gt[edge], shared[edge]
        if big[gt].any():
            gs, gt, el = gs[big[gt]], gt[big[gt]], el[big[gt]]
        else:
            one = gs == gs.min()
            gs, gt, el = gs[one], gt[one], el[one]
        small, target = _best_hosts(gs, gt, el, big, n)
        remap = np.arange(n)
        remap[small] = target
        host = remap[host]
        np.add.at(group_area, target, group_area[small])
        group_area[small] = 0.0


def _best_hosts(
    sliver: np.ndarray, group: np.ndarray, length: np.ndarray, big: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per sliver, the group with (non-sliver first, longest total shared edge, lowest index)."""
    key, inverse = np.unique(sliver * n + group, return_inverse=True)
    total = np.bincount(inverse, weights=length)
    ks, kg = key // n, key % n
    order = np.lexsort((kg, -total, ~big[kg], ks))
    first = order[np.r_[True, ks[order][1:] != ks[order][:-1]]]
    return ks[first], kg[first]


def _union_groups(geometry: np.ndarray, host: np.ndarray) -> np.ndarray:
    """Geometry of every piece with the slivers it hosts unioned in (vectorised, one member rank per pass)."""
    merged = geometry.copy()
    members = np.flatnonzero(host != np.arange(len(host)))
    if len(members) == 0:
        return merged
    members = members[np.lexsort((members, host[members]))]
    roots = host[members]
    starts = np.r_[0, np.flatnonzero(np.diff(roots)) + 1]
    rank = np.arange(len(members)) - np.repeat(starts, np.diff(np.r_[starts, len(members)]))
    for k in range(int(rank.max()) + 1):
        pick = rank == k
        merged[roots[pick]] = shapely.union(merged[roots[pick]], geometry[members[pick]])
    return merged


# --------------------------------------------------------------------------------------- the cut


def cut_unit_grids_metric(
    units: gpd.GeoDataFrame, *, cell_area: float = 10_000, crs: str = "auto", sliver: float = 0.3
) -> gpd.GeoDataFrame:
    """Cut every unit into coded square unit grids; the result stays in the metric CRS.

    ``units`` holds one row per lowest-level unit in EPSG:4490 (see ``UNIT_COLUMNS``). Returns the
    ``CELL_COLUMNS`` plus geometry, sorted by code, with ``attrs["metric_epsg"]`` set.
    """
    side = _check_cell_area(cell_area)
    _check_sliver(sliver)
    attrs, geoms_lonlat = _validated_units(units)
    metric = resolve_metric_crs(crs, geoms_lonlat)
    geoms = _polygonal(_to_metric(geoms_lonlat, metric))
    _precheck_cell_counts(attrs, geoms, cell_area)

    pieces = clip_grid(geoms, side)
    order = _reading_order(pieces.unit, pieces.row, pieces.col, pieces.geometry)
    unit, col, row, geometry = (a[order] for a in pieces)
    threshold = sliver * cell_area
    host = merge_slivers(geometry, unit, row, col, threshold, cap=cell_area + threshold)
    geometry = _union_groups(geometry, host)
    roots = np.flatnonzero(host == np.arange(len(host)))
    unit, col, row, geometry = unit[roots], col[roots], row[roots], geometry[roots]
    order = _reading_order(unit, row, col, geometry)  # merged pieces may move within a split cell
    unit, col, row, geometry = unit[order], col[order], row[order], geometry[order]

    counts = np.bincount(unit, minlength=len(attrs))
    _check_cell_counts(attrs, counts, cell_area)
    starts = np.cumsum(counts) - counts
    seq = np.arange(len(unit), dtype=np.int64) - starts[unit] + 1

    prefix = attrs["prefix"].to_numpy()[unit].astype(str)
    codes = np.char.add(prefix, np.char.zfill(seq.astype(str), 3))
    data = {
        "code": codes.astype(object),
        "district_code": attrs["district_code"].to_numpy()[unit],
        "street_code": attrs["street_code"].to_numpy()[unit],
        "community_code": attrs["community_code"].to_numpy()[unit],
        "seq": seq,
        # The true (ellipsoidal) area, not the planar one: the field promises m² on the ground in any CRS.
        "area_m2": np.round(geodesy.geodesic_areas(geometry, metric), 2),
        "district_name": attrs["district_name"].to_numpy()[unit],
        "street_name": attrs["street_name"].to_numpy()[unit],
        "community_name": attrs["community_name"].to_numpy()[unit],
        "row": row.astype(np.int64),
        "col": col.astype(np.int64),
    }
    cells = gpd.GeoDataFrame(data, geometry=geometry, crs=metric)
    cells = cells.sort_values("code", kind="stable", ignore_index=True)
    cells.attrs["metric_epsg"] = metric.to_epsg()
    cells.attrs["cell_area"] = float(cell_area)
    return cells


def cut_unit_grids(
    units: gpd.GeoDataFrame, *, cell_area: float = 10_000, crs: str = "auto", sliver: float = 0.3
) -> gpd.GeoDataFrame:
    """Like :func:`cut_unit_grids_metric`, with the geometry transformed back to EPSG:4490."""
    cells = cut_unit_grids_metric(units, cell_area=cell_area, crs=crs, sliver=sliver)
    epsg = cells.attrs["metric_epsg"]
    out = cells.to_crs(epsg=STORAGE_SRID)
    out.attrs["metric_epsg"] = epsg
    return out


# --------------------------------------------------------------------------------------- checks


def _check_cell_area(cell_area: float) -> float:
    try:
        value = float(cell_area)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"--cell-area {cell_area!r} is not a number of square metres") from exc
    if not math.isfinite(value) or value < MIN_CELL_AREA or value > MAX_CELL_AREA:
        raise InvalidInput(
            f"--cell-area {value:,.0f} m² is out of range; use {MIN_CELL_AREA:g}..{MAX_CELL_AREA:,.0f} m² "
            "(10000 m² is the standard 万米单元网格)"
        )
    return math.sqrt(value)


def _check_sliver(sliver: float) -> None:
    # 1 or more would make every piece short of a whole cell a sliver (and double the merge cap): not a fraction.
    if isinstance(sliver, bool) or not (isinstance(sliver, int | float) and 0 <= sliver < 1):
        raise InvalidInput(
            f"--sliver {sliver!r} is out of range; use a fraction of the cell area from 0 (keep every piece) up to, "
            "not including, 1, e.g. 0.3"
        )


def _text(value: object) -> str | None:
    if value is None or (not isinstance(value, str) and bool(pd.isna(value))):
        return None
    text = str(value).strip()
    return text or None


def _validated_units(units: gpd.GeoDataFrame) -> tuple[pd.DataFrame, gpd.GeoSeries]:
    """Normalised unit attributes (with the 12-digit code prefix) and EPSG:4490 geometry."""
    if not isinstance(units, gpd.GeoDataFrame):
        raise InvalidInput("units must be a GeoDataFrame with one row per unit")
    missing = [c for c in UNIT_COLUMNS if c not in units.columns]
    if missing:
        raise InvalidInput(f"units lack the column(s) {', '.join(missing)}; see UNIT_COLUMNS")
    if len(units) == 0:
        raise InvalidInput("no units to cut; load the district's streets/communities first")

    rows: list[dict[str, str | None]] = []
    for pos, rec in enumerate(units[list(UNIT_COLUMNS)].itertuples(index=False)):
        vals = {c: _text(v) for c, v in zip(UNIT_COLUMNS, rec, strict=True)}
        rows.append(_validated_codes(vals, pos))
    attrs = pd.DataFrame(rows, columns=[*UNIT_COLUMNS, "prefix"])
    dup = attrs["code"][attrs["code"].duplicated()]
    if len(dup):
        raise InvalidInput(f"unit code {dup.iloc[0]} appears more than once; dissolve it into one row per unit")

    geo = units.geometry
    geo = geo.set_crs(epsg=STORAGE_SRID) if geo.crs is None else geo.to_crs(epsg=STORAGE_SRID)
    arr = np.asarray(geo.values)
    bad_type = shapely.is_missing(arr) | shapely.is_empty(arr) | ~np.isin(shapely.get_type_id(arr), (3, 6))
    if bad_type.any():
        pos = int(np.flatnonzero(bad_type)[0])
        raise InvalidInput(
            f"unit {attrs['code'][pos]}: geometry must be a non-empty Polygon or MultiPolygon; fix the boundary data"
        )
    invalid = ~shapely.is_valid(arr)
    if invalid.any():
        pos = int(np.flatnonzero(invalid)[0])
        raise InvalidInput(
            f"unit {attrs['code'][pos]}: invalid geometry ({shapely.is_valid_reason(arr[pos])}); "
            "repair it first, e.g. with ST_MakeValid or shapely.make_valid"
        )
    return attrs, gpd.GeoSeries(arr, crs=geo.crs)


def _validated_codes(vals: dict[str, str | None], pos: int) -> dict[str, str | None]:
    code, district, street, community = (vals[k] for k in ("code", "district_code", "street_code", "community_code"))
    label = code or f"at row {pos}"
    if district is None or not re.fullmatch(r"[0-9]{6}", district):
        raise InvalidInput(f"unit {label}: district_code {district!r} must be 6 digits (GB/T 2260), e.g. '410102'")
    if street is not None and not (re.fullmatch(r"[0-9]{9}", street) and street.startswith(district)):
        raise InvalidInput(
            f"unit {label}: street_code {street!r} must be the 9-digit full code starting with {district}"
        )
    if community is not None:
        if street is None:
            raise InvalidInput(f"unit {label}: community_code {community} given without its street_code")
        if not (re.fullmatch(r"[0-9]{12}", community) and community.startswith(street)):
            raise InvalidInput(
                f"unit {label}: community_code {community!r} must be the 12-digit full code starting with {street}"
            )
    if (street is not None and street.endswith("000")) or (community is not None and community.endswith("000")):
        raise InvalidInput(f"unit {label}: a street/community part of '000' is reserved for 'level not given'")
    expected = community or street or district
    if code != expected:
        raise InvalidInput(f"unit {label}: code must equal its lowest-level code {expected}")
    prefix = district + (street[6:] if street else "000") + (community[9:] if community else "000")
    return {**vals, "prefix": prefix}


def _to_metric(geoms_lonlat: gpd.GeoSeries, metric: pyproj.CRS) -> np.ndarray:
    """Units (EPSG:4490) in the cutting CRS, densified first (``geodesy.DENSIFY_DEG``): a stored edge is straight in
    lon/lat (as PostGIS locates points), so projecting only its ends would cut and check along the Gauss–Krüger
    chord instead — ~0.7 m off at mid-span of a 7 km east–west edge (review39 D1)."""
    return np.asarray(geodesy.densify_lonlat(geoms_lonlat).to_crs(metric).values)


def _polygonal(geoms: np.ndarray) -> np.ndarray:
    """Repair the rare geometry that projection made invalid, keeping only its polygonal parts."""
    invalid = np.flatnonzero(~shapely.is_valid(geoms))
    if len(invalid) == 0:
        return geoms
    out = geoms.copy()
    for pos in invalid:
        parts = shapely.get_parts(shapely.make_valid(geoms[pos]))
        out[pos] = shapely.multipolygons(parts[shapely.get_type_id(parts) == _POLYGON])
    return out


def _unit_label(attrs: pd.DataFrame, pos: int) -> str:
    name = attrs["community_name"][pos] or attrs["street_name"][pos] or attrs["district_name"][pos]
    return f"{attrs['code'][pos]} ({name})" if name else str(attrs["code"][pos])


def _too_many_cells(attrs: pd.DataFrame, pos: int, count: int, cell_area: float, about: bool) -> InvalidInput:
    # A cell area that would bring the unit to ~900 cells, rounded up to a whole 1000 m² above the given one;
    # no such hint when it would exceed the largest cell area allowed.
    suggest = max(math.ceil(cell_area * count / 900 / 1000), math.floor(cell_area / 1000) + 1) * 1000
    larger = f" or use a larger --cell-area (e.g. {suggest:,})" if suggest <= MAX_CELL_AREA else ""
    return InvalidInput(
        f"unit {_unit_label(attrs, pos)} would get {'about ' if about else ''}{count} unit grids, more than the "
        f"{MAX_CELLS_PER_UNIT} a 3-digit sequence allows; split it into finer units (streets → communities)" + larger
    )


def _precheck_cell_counts(attrs: pd.DataFrame, geoms: np.ndarray, cell_area: float) -> None:
    # Refuse hopeless cuts before building millions of boxes; pieces are at most ~1 cell each.
    estimate = shapely.area(geoms) / cell_area
    over = np.flatnonzero(estimate > 2 * MAX_CELLS_PER_UNIT)
    if len(over):
        pos = int(over[0])
        raise _too_many_cells(attrs, pos, round(float(estimate[pos])), cell_area, about=True)


def _check_cell_counts(attrs: pd.DataFrame, counts: np.ndarray, cell_area: float) -> None:
    over = np.flatnonzero(counts > MAX_CELLS_PER_UNIT)
    if len(over):
        pos = int(over[0])
        raise _too_many_cells(attrs, pos, int(counts[pos]), cell_area, about=False)


# ------------------------------------------------------------------------------------- coverage


#: The band around the nominal cell area within which a cell counts as full size (±10 %).
SIZE_BAND = 0.10


@dataclass(frozen=True)
class CoverageReport:
    """Quality figures of a cut: the cells must tile the units exactly once."""

    units_area_m2: float  # on the ellipsoid, as the stored area_m2
    cells_area_m2: float  # on the ellipsoid
    union_area_m2: float  # on the ellipsoid
    area_diff_ratio: float  # area(cells ∪ △ units ∪) / area(units ∪), in the cutting plane
    overlap_m2: float  # sum of cell areas minus the area of their union, in the cutting plane
    cells_outside_unit: int  # cells not lying in exactly their own unit
    duplicate_codes: int  # rows whose code repeats an earlier row
    # The spread of cell sizes (on the ellipsoid) around the nominal cell area: boundary-clipped cuts leave pieces
    # smaller (slivers kept) and larger (slivers merged) — what the planner weighs when choosing --sliver.
    cell_area_m2: float = 10_000.0  # nominal
    cells: int = 0
    cells_under: int = 0  # under SIZE_BAND below the nominal area
    cells_over: int = 0  # over SIZE_BAND above it
    smallest_m2: float = math.nan
    largest_m2: float = math.nan

    @property
    def ok(self) -> bool:
        """True when the cut meets the tests' tolerances (0.01 % area, 1 m² overlap per km²)."""
        return (
            self.area_diff_ratio < 1e-4
            and self.overlap_m2 <= 1e-6 * max(self.units_area_m2, 1.0)
            and self.cells_outside_unit == 0
            and self.duplicate_codes == 0
        )


def check_coverage(units: gpd.GeoDataFrame, cells: gpd.GeoDataFrame) -> CoverageReport:
    """Measure how exactly ``cells`` (a cut of ``units``, any CRS) tile ``units`` (EPSG:4490)."""
    attrs, geoms_lonlat = _validated_units(units)
    epsg = cells.attrs.get("metric_epsg")
    metric = pyproj.CRS.from_epsg(int(epsg)) if epsg else resolve_metric_crs("auto", geoms_lonlat)
    ug = _to_metric(geoms_lonlat, metric)
    cg = np.asarray((cells.geometry if cells.crs is not None else cells.geometry.set_crs(metric)).to_crs(metric).values)

    unit_union = shapely.union_all(ug)
    cell_union = shapely.union_all(cg)
    # Checks in the cutting plane (ratios, overlaps); the areas reported on the ellipsoid, as area_m2 is stored.
    cells_plane, union_plane = float(shapely.area(cg).sum()), float(shapely.area(cell_union))
    units_area = float(geodesy.geodesic_areas(ug, metric).sum())
    cell_areas = geodesy.geodesic_areas(cg, metric)
    cells_area = float(cell_areas.sum())
    nominal = float(cells.attrs.get("cell_area", 10_000.0))
    union_area = float(geodesy.geodesic_areas(np.array([cell_union], dtype=object), metric)[0])
    diff = float(shapely.area(shapely.symmetric_difference(cell_union, unit_union)))

    # Each cell's own unit comes from its code prefix; it must lie in that unit and in no other.
    codes = cells["code"].astype(str)
    owner = pd.Series(np.arange(len(attrs)), index=attrs["prefix"]).reindex(codes.str[:12]).to_numpy()
    known = ~np.isnan(owner)
    owner = np.where(known, owner, -1).astype(np.int64)
    cell_area = shapely.area(cg)
    tol = 1e-6 * cell_area + 1e-3  # numerical noise of noding and the projection round trip
    shapely.prepare(ug)
    ui, ci = shapely.STRtree(cg).query(ug, predicate="intersects")
    own = ui == owner[ci]
    # Overlays only where prepared predicates cannot decide: boundary cells, and real contact with other units.
    whole = np.zeros(len(ui), dtype=bool)
    whole[own] = shapely.contains_properly(ug[ui[own]], cg[ci[own]])
    slow = np.flatnonzero(~whole & (~own | ~shapely.touches(ug[ui], cg[ci])))
    inter = np.zeros(len(ui))
    inter[whole] = cell_area[ci[whole]]
    inter[slow] = shapely.area(shapely.intersection(cg[ci[slow]], ug[ui[slow]]))
    own_area = np.bincount(ci[own], weights=inter[own], minlength=len(cg))
    foreign = np.bincount(ci[~own & (inter > tol[ci])], minlength=len(cg)) > 0
    outside = ~known | (cell_area - own_area > tol) | foreign

    return CoverageReport(
        units_area_m2=units_area,
        cells_area_m2=cells_area,
        union_area_m2=union_area,
        area_diff_ratio=diff / float(shapely.area(unit_union)),
        overlap_m2=max(cells_plane - union_plane, 0.0),
        cells_outside_unit=int(outside.sum()),
        duplicate_codes=int(len(codes) - codes.nunique()),
        cell_area_m2=nominal,
        cells=len(cg),
        cells_under=int((cell_areas < nominal * (1 - SIZE_BAND)).sum()),
        cells_over=int((cell_areas > nominal * (1 + SIZE_BAND)).sum()),
        smallest_m2=float(cell_areas.min()) if len(cg) else math.nan,
        largest_m2=float(cell_areas.max()) if len(cg) else math.nan,
    )


def _geometry_array(geoms: gpd.GeoSeries | Sequence[shapely.Geometry] | np.ndarray) -> np.ndarray:
    if isinstance(geoms, gpd.GeoDataFrame):
        geoms = geoms.geometry
    if isinstance(geoms, gpd.GeoSeries):
        return np.asarray(geoms.values)
    return np.asarray(geoms, dtype=object)
