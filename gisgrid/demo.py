"""Deterministic synthetic demo district "Z区" (no licensed data).

The district is entirely made up, but shaped like a real Chinese urban district:

* about 370 km², centred near 113.70E 34.75N, built in the metric CRS EPSG:4547
  (CGCS2000 3° Gauss-Krüger, CM 114E) and returned in EPSG:4490 (CGCS2000 lon/lat);
* an irregular radial-noise outline with a river-like concave notch;
* 12 streets/townships (8 urban 街道 around an off-centre urban core, 4 outer 镇);
* 124 communities/villages (small 社区 in the core, larger 村 in the towns; each
  between 0.2 and 9.5 km², so every community has fewer than 999 unit grids of 1 万 m²).

Each level is a density-weighted centroidal Voronoi tessellation (weighted Lloyd
relaxation on sample points) whose cells are clipped to the parent, so the children
tile the parent exactly (no gaps, no overlaps).

The district code ``419901`` is **fictitious**: it has the GB/T 2260 format (41 = 河南省)
but the county-level code ``99 01`` is not assigned to any real district. Street and
community names are generic, deterministic picks from built-in word lists; any match with
a real place is a coincidence.

Coding: streets are ``419901`` + 3 digits (``001``…``012``), communities are the street
code + 3 digits. Urban 街道 are numbered before the 镇 (as in the 民政 rule that towns
come after sub-districts); within each group, and for communities within a street, the
order is north→south then west→east by representative point (rows of roughly one
cell height, west→east inside a row).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from numpy.random import Generator
from shapely.geometry.base import BaseGeometry

from gisgrid import geodesy
from gisgrid.constants import STORAGE_CRS

T = TypeVar("T")

__all__ = [
    "DEMO_CRS",
    "DEMO_DISTRICT_CODE",
    "DEMO_DISTRICT_NAME",
    "METRIC_CRS",
    "demo_components_points",
    "make_demo_district",
    "write_demo_district",
]

DEMO_DISTRICT_CODE = "419901"  # synthetic: GB/T 2260 format, not a real district
DEMO_DISTRICT_NAME = "Z区"
DEMO_CRS = STORAGE_CRS  # the demo district is made in storage lon/lat
METRIC_CRS = "EPSG:4547"
LAYER_NAME = "boundaries"

# Centre 113.70E 34.75N expressed in EPSG:4547 (CGCS2000 / 3-degree GK CM 114E).
_CENTRE_XY = (472530.47, 3846899.32)
_TARGET_AREA_M2 = 370.0e6
_N_STREETS = 12
_N_TOWNS = 4
_N_COMMUNITIES = 124
_MIN_COMMUNITY_M2 = 0.25e6  # internal margins inside the hard limits 0.2 / 9.5 km²
_MAX_COMMUNITY_M2 = 9.2e6
_MAX_MEAN_COMMUNITY_M2 = 6.8e6
_MAX_ATTEMPTS = 40

# ---------------------------------------------------------------------------
# Name pools (generic place words; nothing political, no person names)
# ---------------------------------------------------------------------------
_URBAN_STREET_NAMES = (
    "人民路",
    "解放",
    "建设路",
    "花园",
    "东风",
    "文化路",
    "丰产路",
    "经纬",
    "桐柏路",
    "长兴",
    "锦绣",
    "五里堡",
)
# Directional names, given to the extreme urban streets when possible.
_NORTH_STREET, _SOUTH_STREET = "北关", "南关"
_TOWN_NAMES = ("柳林", "金水", "石桥", "杏花", "白沙", "古城", "龙泉", "青石")
_COMMUNITY_WORDS = (
    "紫荆", "东明", "桃园", "桂园", "丰庆", "文苑", "育才", "青年", "金桥", "银河",
    "锦华", "长青", "翠竹", "松柏", "兰亭", "玉兰", "海棠", "杏林", "梧桐", "丁香",
    "月季", "牡丹", "芙蓉", "百合", "荷花", "凤凰", "祥和", "康宁", "安泰", "福寿",
    "嘉园", "瑞祥", "华庭", "翠湖", "碧水", "清风", "明月", "星河", "晨光", "朝阳",
    "曙光", "春晖", "秋实", "丰乐", "永安", "兴隆", "富民", "惠民", "利民", "顺河",
    "沿河", "西湖", "东湖", "南湖", "北湖", "新村", "南苑", "北苑", "东苑", "西苑",
    "园丁", "书香", "文昌", "博雅", "启明", "青松", "银杏", "香樟", "紫薇", "绿城",
    "金桂", "银桂", "花溪", "柳园", "枫林", "竹林", "梨园", "果园", "菊园", "莲湖",
    "天润", "和顺", "宏图", "锦程", "鸿福", "吉祥", "如意", "安居", "乐业", "民乐",
    "新苑", "绿苑", "德馨", "静安", "宁馨", "瑞景", "金源", "泰和", "龙腾", "翠园",
)  # fmt: skip
_VILLAGE_SURNAMES = (
    "张", "李", "王", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "马", "朱",
    "胡", "郭", "何", "高", "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯",
    "邓", "曹", "彭", "曾", "田", "董", "袁", "潘", "蒋", "蔡", "余", "杜", "叶", "程",
    "苏", "魏", "吕", "丁", "任", "沈", "姚", "卢", "姜", "崔", "钟", "谭", "陆", "范",
)  # fmt: skip
_VILLAGE_SUFFIXES = ("庄", "寨", "营", "楼", "店", "岗", "湾", "集", "桥", "屯", "堂", "坡")


# ---------------------------------------------------------------------------
# Geometry helpers (all in EPSG:4547 metres)
# ---------------------------------------------------------------------------
def _largest_polygon(geom: BaseGeometry) -> shapely.Polygon:
    parts = [p for p in shapely.get_parts(geom) if isinstance(p, shapely.Polygon) and p.area > 0]
    return max(parts, key=lambda p: p.area)


def _outline(rng: Generator) -> tuple[shapely.Polygon, np.ndarray]:
    """Radial-noise outline with a river notch, scaled to the target area.

    Returns the polygon and the urban-core point (off-centre, near the river).
    """
    n_vertices = 720
    theta = np.linspace(0.0, 2.0 * np.pi, n_vertices, endpoint=False)
    log_r = np.zeros_like(theta)
    for k in range(2, 40):
        amp = rng.normal(0.0, 0.32 / k**1.2)
        phase = rng.uniform(0.0, 2.0 * np.pi)
        log_r += amp * np.cos(k * theta + phase)
    r = 10_000.0 * np.exp(log_r)
    cx, cy = _CENTRE_XY
    ring = np.column_stack([cx + r * np.cos(theta), cy + r * np.sin(theta)])
    poly = shapely.Polygon(ring)

    # River: enters from the boundary on a random bearing and meanders inwards,
    # tapering from ~900 m to ~250 m; it is cut out of the district (concave notch).
    bearing = rng.uniform(0.0, 2.0 * np.pi)
    t = np.linspace(0.0, 1.0, 60)
    dist = 15_000.0 - t * (15_000.0 - 4_000.0)  # from outside towards the centre
    wiggle = 900.0 * np.sin(t * 3.0 * np.pi + rng.uniform(0, 2 * np.pi)) * t
    ux, uy = np.cos(bearing), np.sin(bearing)
    px = cx + dist * ux - wiggle * uy
    py = cy + dist * uy + wiggle * ux
    widths = 900.0 - 650.0 * t
    discs = shapely.buffer(shapely.points(px, py), widths, quad_segs=8)
    hulls = [shapely.convex_hull(shapely.union(discs[i], discs[i + 1])) for i in range(len(t) - 1)]
    river = shapely.union_all(hulls)
    poly = _largest_polygon(shapely.difference(poly, river))

    # Scale about the centre to hit the target area exactly.
    f = float(np.sqrt(_TARGET_AREA_M2 / poly.area))
    coords = shapely.get_coordinates(poly.exterior)
    coords = (coords - _CENTRE_XY) * f + _CENTRE_XY
    poly = shapely.Polygon(coords)

    # Urban core: on the river side, ~40 % of the way to the boundary.
    core = np.array([cx + 0.40 * 10_000.0 * f * ux, cy + 0.40 * 10_000.0 * f * uy])
    core += rng.normal(0.0, 600.0, 2)
    if not shapely.contains_xy(poly, *core):
        core = np.array(shapely.get_coordinates(poly.representative_point())[0])
    return shapely.normalize(poly), core


def _sample_inside(geom: BaseGeometry, n: int, rng: Generator, batch: int | None = None) -> np.ndarray:
    """n uniform random points inside geom (vectorised rejection sampling)."""
    shapely.prepare(geom)
    xmin, ymin, xmax, ymax = geom.bounds
    frac = max(geom.area / ((xmax - xmin) * (ymax - ymin)), 0.05)
    out: list[np.ndarray] = []
    have = 0
    while have < n:
        m = batch or int((n - have) / frac * 1.15) + 64
        x = rng.uniform(xmin, xmax, m)
        y = rng.uniform(ymin, ymax, m)
        keep = shapely.contains_xy(geom, x, y)
        pts = np.column_stack([x[keep], y[keep]])
        out.append(pts)
        have += len(pts)
    return np.concatenate(out)[:n]


def _weighted_lloyd(xy: np.ndarray, w: np.ndarray, k: int, rng: Generator, iters: int = 40) -> np.ndarray:
    """Density-weighted Lloyd relaxation (k-means on weighted sample points)."""
    seeds = xy[rng.choice(len(xy), size=k, replace=False, p=np.sqrt(w) / np.sqrt(w).sum())].copy()
    x, y = xy[:, 0], xy[:, 1]
    for _ in range(iters):
        dx = x[:, None] - seeds[None, :, 0]
        dy = y[:, None] - seeds[None, :, 1]
        lab = (dx * dx + dy * dy).argmin(axis=1)
        ws = np.bincount(lab, weights=w, minlength=k)
        sx = np.bincount(lab, weights=w * xy[:, 0], minlength=k)
        sy = np.bincount(lab, weights=w * xy[:, 1], minlength=k)
        empty = ws <= 0
        ws[empty] = 1.0
        new = np.column_stack([sx / ws, sy / ws])
        if empty.any():
            new[empty] = xy[rng.choice(len(xy), size=int(empty.sum()), replace=False)]
        seeds = new
    return seeds


def _shared_length(a: BaseGeometry, b: BaseGeometry) -> float:
    return float(shapely.length(shapely.intersection(a.boundary, b.boundary)))


def _clip_voronoi(seeds: np.ndarray, parent: shapely.Polygon) -> list[shapely.Polygon]:
    """Voronoi cells of seeds clipped to parent; each result is one polygon.

    Detached pieces of a clipped cell (e.g. across the river notch) are merged into
    the sibling sharing the longest edge, so the union of the children is unchanged.
    """
    box = shapely.box(*parent.buffer(1_000.0).bounds)
    cells = shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=box, ordered=True)
    cells = list(shapely.get_parts(cells))
    if len(cells) != len(seeds):
        raise RuntimeError("Voronoi cell count mismatch")
    clipped = shapely.intersection(np.array(cells, dtype=object), parent)
    owned: list[BaseGeometry] = []
    fragments: list[shapely.Polygon] = []
    for geom in clipped:
        parts = sorted(
            (p for p in shapely.get_parts(geom) if isinstance(p, shapely.Polygon) and p.area > 0),
            key=lambda p: -p.area,
        )
        if not parts:
            raise ValueError("empty Voronoi cell")
        owned.append(parts[0])
        fragments.extend(parts[1:])
    for frag in fragments:
        best = max(range(len(owned)), key=lambda i: _shared_length(frag, owned[i]))
        owned[best] = shapely.union(owned[best], frag)
    result = []
    for geom in owned:
        geom = shapely.make_valid(geom) if not geom.is_valid else geom
        parts = [p for p in shapely.get_parts(geom) if isinstance(p, shapely.Polygon)]
        if len(parts) != 1:
            # Multi-part after merging (e.g. a floating-point hairline): the caller
            # retries with the next RNG stream.
            raise ValueError("child is not a single polygon")
        result.append(shapely.normalize(parts[0]))
    return result


def _reading_order(points: np.ndarray, band: float) -> np.ndarray:
    """Indices sorted north→south by rows of height band, then west→east."""
    ymax = points[:, 1].max()
    row = np.floor((ymax - points[:, 1]) / band + 1e-9).astype(int)
    return np.lexsort((points[:, 0], row))


def _rep_points(geoms: Sequence[BaseGeometry]) -> np.ndarray:
    return shapely.get_coordinates(shapely.point_on_surface(np.array(geoms, dtype=object)))


class _Density:
    """Target community area a(x) [m²] as a function of distance to the urban core."""

    def __init__(self, district: shapely.Polygon, core: np.ndarray, rng: Generator) -> None:
        self.core = core
        ring = shapely.get_coordinates(district.exterior)
        self.reach = float(np.hypot(*(ring - core).T).max())
        samples = _sample_inside(district, 30_000, rng)
        inv = 1.0 / self._shape(samples)
        # Calibrate so that the whole district holds exactly _N_COMMUNITIES "target" cells.
        self.scale = float(inv.mean() * district.area / _N_COMMUNITIES)

    def _shape(self, xy: np.ndarray) -> np.ndarray:
        t = np.clip(np.hypot(*(xy - self.core).T) / self.reach, 0.0, 1.0)
        s = np.clip((t - 0.10) / 0.55, 0.0, 1.0)
        s = s * s * (3.0 - 2.0 * s)
        return 1.0 + 7.0 * s  # core cells ~8x smaller than outer ones

    def community_area(self, xy: np.ndarray) -> np.ndarray:
        return self.scale * self._shape(xy)


# ---------------------------------------------------------------------------
# Building the hierarchy
# ---------------------------------------------------------------------------
def _build_streets(
    district: shapely.Polygon, dens: _Density, rng: Generator
) -> tuple[list[shapely.Polygon], np.ndarray]:
    xy = _sample_inside(district, 24_000, rng)
    a = dens.community_area(xy)
    # Streets grow with distance from the core: in 2-D a CVT with density w gives cell
    # area ~ w^-1/2, so w = a^-1.6 gives street area ~ a^0.8 (a = target community size).
    w = (a / a.min()) ** -1.6
    seeds = _weighted_lloyd(xy, w, _N_STREETS, rng, iters=40)
    streets = _clip_voronoi(seeds, district)
    # Community allocation ∝ ∫ 1/a dA, largest-remainder rounding to exactly 124.
    counts = np.zeros(len(streets))
    for i, s in enumerate(streets):
        sxy = _sample_inside(s, 3_000, rng)
        counts[i] = s.area * float(np.mean(1.0 / dens.community_area(sxy)))
    counts *= _N_COMMUNITIES / counts.sum()
    # Lower bound per street: at least 3 communities, and a mean community size that
    # leaves room below the 9.5 km² limit.
    lo = np.maximum(np.ceil(np.array([s.area for s in streets]) / _MAX_MEAN_COMMUNITY_M2), 3).astype(int)
    n = np.maximum(np.floor(counts).astype(int), lo)
    rem = counts - np.floor(counts)
    while n.sum() < _N_COMMUNITIES:
        i = int(np.argmax(rem))
        n[i] += 1
        rem[i] -= 1.0
    while n.sum() > _N_COMMUNITIES:
        i = int(np.argmax(np.where(n > lo, n - counts, -np.inf)))
        n[i] -= 1
    return streets, n


def _build_communities(street: shapely.Polygon, k: int, dens: _Density, rng: Generator) -> list[shapely.Polygon]:
    xy = _sample_inside(street, 800 * k, rng)
    a = dens.community_area(xy)
    w = (a / a.min()) ** -2.0
    seeds = _weighted_lloyd(xy, w, k, rng, iters=30)
    return _clip_voronoi(seeds, street)


def _valid_sizes(polys: Sequence[shapely.Polygon]) -> bool:
    areas = np.array([p.area for p in polys])
    return bool(areas.min() >= _MIN_COMMUNITY_M2 and areas.max() <= _MAX_COMMUNITY_M2)


def _attempt(rng_seed: Sequence[int], fn: Callable[[Generator], T | None]) -> T:
    """Run fn with fresh RNG streams until it returns a result (deterministic retries)."""
    for attempt in range(_MAX_ATTEMPTS):
        rng = np.random.default_rng([*rng_seed, attempt])
        try:
            out = fn(rng)
        except ValueError:
            continue
        if out is not None:
            return out
    raise RuntimeError(f"could not build demo geometry for stream {tuple(rng_seed)}")


def _village_names(rng: Generator) -> list[str]:
    combos = [s + x for s in _VILLAGE_SURNAMES for x in _VILLAGE_SUFFIXES]
    return [combos[i] + "村" for i in rng.permutation(len(combos))]


def _street_names(n_urban: int, n_towns: int, rep: np.ndarray, rng: Generator) -> list[str]:
    """Names for urban streets (in code order, with rep points) followed by the towns."""
    names = [_URBAN_STREET_NAMES[i] for i in rng.permutation(len(_URBAN_STREET_NAMES))]
    urban: list[str | None] = [None] * n_urban
    if n_urban >= 2:
        urban[int(np.argmax(rep[:n_urban, 1]))] = _NORTH_STREET
        urban[int(np.argmin(rep[:n_urban, 1]))] = _SOUTH_STREET
    pool = iter(names)
    named = [u if u is not None else next(pool) for u in urban]
    towns = [_TOWN_NAMES[i] for i in rng.permutation(len(_TOWN_NAMES))[:n_towns]]
    return [u + "街道" for u in named] + [t + "镇" for t in towns]


def _build_metric(seed: int) -> list[dict]:
    rng = np.random.default_rng([seed, 0])
    district, core = _outline(rng)
    dens = _Density(district, core, rng)

    def streets_ok(rng: Generator) -> tuple[list[shapely.Polygon], np.ndarray] | None:
        streets, counts = _build_streets(district, dens, rng)
        mean = np.array([s.area for s in streets]) / counts
        if mean.max() > _MAX_MEAN_COMMUNITY_M2 or mean.min() < 2.0 * _MIN_COMMUNITY_M2:
            return None
        return streets, counts

    streets, counts = _attempt([seed, 1], streets_ok)

    # Urban 街道 = the streets with the smallest mean community; the outer ones are 镇.
    mean_area = np.array([s.area for s in streets]) / counts
    is_town = np.zeros(len(streets), dtype=bool)
    is_town[np.argsort(mean_area, kind="stable")[-_N_TOWNS:]] = True
    band = float(np.sqrt(district.area / len(streets)))
    rep = _rep_points(streets)
    order = []
    for group in (np.flatnonzero(~is_town), np.flatnonzero(is_town)):
        order.extend(group[_reading_order(rep[group], band)].tolist())

    name_rng = np.random.default_rng([seed, 3])
    street_names = _street_names(int((~is_town).sum()), _N_TOWNS, rep[order], name_rng)
    community_words = [_COMMUNITY_WORDS[i] + "社区" for i in name_rng.permutation(len(_COMMUNITY_WORDS))]
    villages = _village_names(name_rng)

    rows = [dict(code=DEMO_DISTRICT_CODE, name=DEMO_DISTRICT_NAME, level="district", parent_code=None, geom=district)]
    community_rows = []
    for rank, si in enumerate(order):
        street = streets[si]
        scode = f"{DEMO_DISTRICT_CODE}{rank + 1:03d}"
        rows.append(
            dict(code=scode, name=street_names[rank], level="street", parent_code=DEMO_DISTRICT_CODE, geom=street)
        )

        def comms_ok(
            rng: Generator, street: shapely.Polygon = street, k: int = int(counts[si])
        ) -> list[shapely.Polygon] | None:
            polys = _build_communities(street, k, dens, rng)
            return polys if _valid_sizes(polys) else None

        comms = _attempt([seed, 2, int(si)], comms_ok)
        crep = _rep_points(comms)
        cband = float(np.sqrt(street.area / len(comms)))
        for j, ci in enumerate(_reading_order(crep, cband)):
            name = villages.pop(0) if is_town[si] else community_words.pop(0)
            community_rows.append(
                dict(code=f"{scode}{j + 1:03d}", name=name, level="community", parent_code=scode, geom=comms[ci])
            )
    return rows + community_rows


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------
def make_demo_district(seed: int = 2004) -> gpd.GeoDataFrame:
    """All 1 + 12 + 124 units of the synthetic district Z区, in EPSG:4490.

    Columns: ``code``, ``name``, ``level`` ("district"/"street"/"community"),
    ``parent_code`` (None for the district) and ``geometry`` (MultiPolygon).
    Rows: district, then streets, then communities, each sorted by code.
    The same seed always gives identical output.
    """
    rows = _build_metric(int(seed))
    polygons = np.array([r.pop("geom") for r in rows], dtype=object)
    # Densified before going to lon/lat, as the boundaries importer does with projected input: a long edge sent by
    # its two ends would run straight in lon/lat, off the straight metric edge its neighbours' vertices lie on, so
    # the units would no longer tile their parents (review39 D5: 43 parts outside parents, 48 overlaps, 11 gaps).
    polygons = geodesy.densify_projected(polygons, pyproj.CRS.from_user_input(METRIC_CRS))
    geoms = [shapely.multipolygons([p]) for p in polygons]
    gdf = gpd.GeoDataFrame(
        pd.DataFrame(rows, columns=["code", "name", "level", "parent_code"]),
        geometry=gpd.GeoSeries(geoms, crs=METRIC_CRS),
    )
    gdf["parent_code"] = gdf["parent_code"].astype(object).where(gdf["parent_code"].notna(), None)
    return gdf.to_crs(DEMO_CRS)


def write_demo_district(path: Path, seed: int = 2004) -> Path:
    """Write the demo district as a GeoPackage (layer ``boundaries``); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    make_demo_district(seed).to_file(path, layer=LAYER_NAME, driver="GPKG", engine="pyogrio")
    return path


def _as_units(district: gpd.GeoDataFrame | gpd.GeoSeries | BaseGeometry) -> tuple[list, BaseGeometry]:
    """(community polygons or [], outline) in lon/lat from the accepted inputs."""
    if isinstance(district, gpd.GeoDataFrame):
        gdf = district.to_crs(DEMO_CRS) if district.crs is not None else district
        if "level" in gdf.columns:
            comms = list(gdf.geometry[gdf["level"] == "community"])
            outline = gdf.geometry[gdf["level"] == "district"]
            outline = outline.iloc[0] if len(outline) else shapely.union_all(comms)
            return comms, outline
        return [], shapely.union_all(gdf.geometry.values)
    if isinstance(district, gpd.GeoSeries):
        s = district.to_crs(DEMO_CRS) if district.crs is not None else district
        return [], shapely.union_all(s.values)
    return [], district


def demo_components_points(
    n: int, seed: int, district: gpd.GeoDataFrame | gpd.GeoSeries | BaseGeometry
) -> tuple[np.ndarray, np.ndarray]:
    """n synthetic component locations (lon, lat arrays, EPSG:4490) inside the district.

    With the GeoDataFrame from :func:`make_demo_district`, points are spread over the
    communities with a share growing slowly with area (∝ area^0.35), so the small urban
    communities get a much higher density than the outer villages. With a bare
    geometry, a mixture of a central Gaussian (60 %) and a uniform spread (40 %) is used.
    Vectorised rejection sampling (``shapely.contains_xy``); deterministic per seed.
    """
    n = int(n)
    rng = np.random.default_rng([int(seed), 7])
    if n <= 0:
        return np.empty(0), np.empty(0)
    comms, outline = _as_units(district)
    if comms:
        areas = np.array([c.area for c in comms])
        share = areas**0.35
        per = rng.multinomial(n, share / share.sum())
        chunks = [_sample_inside(c, int(k), rng) for c, k in zip(comms, per, strict=True) if k > 0]
        xy = np.concatenate(chunks)
    else:
        shapely.prepare(outline)
        xmin, ymin, xmax, ymax = outline.bounds
        c = shapely.get_coordinates(outline.centroid)[0]
        sx, sy = (xmax - xmin) / 6.0, (ymax - ymin) / 6.0
        out: list[np.ndarray] = []
        have = 0
        while have < n:
            m = int((n - have) * 1.6) + 64
            gauss = rng.random(m) < 0.6
            x = np.where(gauss, rng.normal(c[0], sx, m), rng.uniform(xmin, xmax, m))
            y = np.where(gauss, rng.normal(c[1], sy, m), rng.uniform(ymin, ymax, m))
            keep = shapely.contains_xy(outline, x, y)
            out.append(np.column_stack([x[keep], y[keep]]))
            have += int(keep.sum())
        xy = np.concatenate(out)[:n]
    xy = xy[rng.permutation(len(xy))]
    xy = _apart(xy, outline, rng)
    return np.ascontiguousarray(xy[:, 0]), np.ascontiguousarray(xy[:, 1])


#: No two demo components closer than this (degrees, ~1 m): an import refuses a second component of one class within
#: 0.5 m of another as its duplicate, so a large random registry (50,000 points and more) would lose a few rows.
MIN_APART_DEG = 1e-5


def _apart(xy: np.ndarray, outline: BaseGeometry, rng: Generator) -> np.ndarray:
    """``xy`` with every point closer than :data:`MIN_APART_DEG` to an earlier one moved a few metres (inside the
    outline), until none is; the others as they were."""
    xy = xy.copy()
    shapely.prepare(outline)
    for _ in range(20):
        points = shapely.points(xy)
        near, other = shapely.STRtree(points).query(points, predicate="dwithin", distance=MIN_APART_DEG)
        moved = np.unique(near[near > other])
        if not len(moved):
            return xy
        step = rng.uniform(-5 * MIN_APART_DEG, 5 * MIN_APART_DEG, (len(moved), 2))
        inside = shapely.contains_xy(outline, xy[moved, 0] + step[:, 0], xy[moved, 1] + step[:, 1])
        xy[moved[inside]] += step[inside]
    raise AssertionError("demo components: points still closer than MIN_APART_DEG after 20 rounds")
