"""Specification of the unit-grid cut (万米单元网格): CRS choice, coverage, coding, slivers, limits.

Pure tests: every fixture is built here from shapely polygons; no database, no files.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely
from pyproj import Geod
from shapely.geometry import MultiPolygon, Polygon, box

from gisgrid import geodesy
from gisgrid.errors import InvalidInput
from gisgrid.grids.cutting import (
    CELL_COLUMNS,
    check_coverage,
    choose_metric_crs,
    cut_unit_grids,
    cut_unit_grids_metric,
    resolve_metric_crs,
)

# Grid-aligned origins (multiples of 100 m) in the CGCS2000 GK zones of Zhengzhou and Beijing.
ZZ_EPSG, ZZ_X, ZZ_Y = 4547, 467_900.0, 3_846_900.0  # ~113.65E 34.75N
BJ_EPSG, BJ_X, BJ_Y = 4548, 448_600.0, 4_418_500.0  # ~116.40E 39.90N


def make_units(polys: list, codes: list[str], epsg: int = ZZ_EPSG) -> gpd.GeoDataFrame:
    """Units in EPSG:4490 from polygons drawn in a metric CRS; the code length sets the unit level.

    Densified before going to lon/lat, as the boundaries importer does with projected input: stored edges are
    straight in lon/lat, so a 300 m edge kept as 2 vertices would bow ~1 mm off the metric rectangle drawn here.
    At 5 m they stay within ~0.3 µm of it, so grid-aligned rectangles still give exact 100 m cells."""
    rows = []
    for code in codes:
        street = code[:9] if len(code) >= 9 else None
        community = code if len(code) == 12 else None
        rows.append(
            {
                "code": code,
                "district_code": code[:6],
                "street_code": street,
                "community_code": community,
                "district_name": "中原区",
                "street_name": f"街道{code[6:9]}" if street else None,
                "community_name": f"社区{code[9:]}" if community else None,
            }
        )
    geoms = geodesy.densify_projected(np.asarray(polys, dtype=object), pyproj.CRS.from_epsg(epsg), max_m=5.0)
    return gpd.GeoDataFrame(rows, geometry=list(geoms), crs=epsg).to_crs(4490)


def planar(cells: gpd.GeoDataFrame) -> list[float]:
    """Planar area (m², metric CRS) of each piece, to 2 decimals: the geometry of the cut, not the true area."""
    return np.round(shapely.area(cells.geometry.values), 2).tolist()


def geod_areas(cells: gpd.GeoDataFrame) -> np.ndarray:
    """Geodesic area (m²) of each cell, measured independently with pyproj.Geod on GRS80 (≈ CGCS2000)."""
    geod = Geod(ellps="GRS80")
    lonlat = cells.to_crs(4490).geometry
    return np.array([abs(geod.geometry_area_perimeter(g)[0]) for g in lonlat])


def rect(x0: float, y0: float, w: float, h: float, ox: float = ZZ_X, oy: float = ZZ_Y) -> Polygon:
    return box(ox + x0, oy + y0, ox + x0 + w, oy + y0 + h)


def voronoi_communities(n: int, seed: int, ox: float, oy: float, radius: float) -> list:
    """n irregular communities tiling an irregular district blob (metric CRS)."""
    rng = np.random.default_rng(seed)
    th = np.linspace(0, 2 * np.pi, 240, endpoint=False)
    r = radius * (1 + 0.2 * np.sin(3 * th + 0.5) + 0.08 * np.cos(7 * th))
    blob = Polygon(np.c_[ox + r * np.cos(th), oy + r * np.sin(th)])
    pts = shapely.points(rng.uniform(-0.7, 0.7, (n, 2)) * radius + (ox, oy))
    regions = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=blob))
    return list(shapely.segmentize(shapely.intersection(regions, blob), 20.0))


def community_codes(n: int, district: str = "410102") -> list[str]:
    return [f"{district}{k // 4 + 1:03d}{k % 4 + 1:03d}" for k in range(n)]


# ------------------------------------------------------------------------------------------ CRS


@pytest.mark.parametrize(
    ("lon", "lat", "epsg"),
    [
        (113.65, 34.75, 4547),  # Zhengzhou: CM 114E
        (116.4, 39.9, 4548),  # Beijing: CM 117E
        (75.0, 39.5, 4534),  # first CGCS2000 CM zone
        (135.0, 48.0, 4554),  # last CGCS2000 CM zone
        # review25 U1: at a zone edge (half-way between two central meridians) the eastern zone, floor(x + 0.5),
        # not round()'s half-to-even; just west of the edge the western one.
        (76.5, 40.0, 4535),
        (76.52, 40.0, 4535),
        (76.49, 40.0, 4534),
        (82.5, 40.0, 4537),
        (112.5, 34.0, 4547),
        (13.4, 52.5, 32633),  # Berlin: UTM 33N
        (151.2, -33.9, 32756),  # Sydney: UTM 56S
    ],
)
def test_choose_metric_crs(lon: float, lat: float, epsg: int) -> None:
    assert choose_metric_crs(lon, lat).to_epsg() == epsg


def test_auto_crs_uses_the_centroid_of_all_units() -> None:
    units = make_units([rect(0, 0, 300, 200)], ["410102"])
    assert resolve_metric_crs("auto", units.geometry).to_epsg() == 4547
    assert cut_unit_grids(units).attrs["metric_epsg"] == 4547
    bj = make_units([rect(0, 0, 300, 200, BJ_X, BJ_Y)], ["110101"], epsg=BJ_EPSG)
    assert cut_unit_grids(bj).attrs["metric_epsg"] == 4548


def test_explicit_metric_crs_is_used() -> None:
    units = make_units([rect(0, 0, 300, 200)], ["410102"])
    cells = cut_unit_grids_metric(units, crs="EPSG:4526")  # zone-prefixed form of the same zone
    assert cells.crs.to_epsg() == 4526
    assert len(cells) == 6


@pytest.mark.parametrize("spec", ["EPSG:4490", "EPSG:4326", "epsg:4490"])
def test_geographic_crs_refused(spec: str) -> None:
    units = make_units([rect(0, 0, 300, 200)], ["410102"])
    with pytest.raises(InvalidInput, match="geographic"):
        cut_unit_grids(units, crs=spec)


def test_district_outside_explicit_zone_refused() -> None:
    beijing = make_units([rect(0, 0, 300, 200, BJ_X, BJ_Y)], ["110101"], epsg=BJ_EPSG)
    with pytest.raises(InvalidInput, match=r"outside the area of use of EPSG:4547"):
        cut_unit_grids(beijing, crs="EPSG:4547")


@pytest.mark.parametrize("spec", ["utm", "4547", "EPSG:99999999"])
def test_unknown_crs_spec_refused(spec: str) -> None:
    units = make_units([rect(0, 0, 300, 200)], ["410102"])
    with pytest.raises(InvalidInput, match="--crs"):
        cut_unit_grids(units, crs=spec)


# ------------------------------------------------------------------------------------ cell area


@pytest.mark.parametrize("cell_area", [1, 99.9, 1_000_001, 10_000_000, float("nan")])
def test_cell_area_out_of_range_refused(cell_area: float) -> None:
    units = make_units([rect(0, 0, 300, 200)], ["410102"])
    with pytest.raises(InvalidInput, match="--cell-area"):
        cut_unit_grids(units, cell_area=cell_area)


def test_cell_area_bounds_accepted() -> None:
    units = make_units([rect(0, 0, 1000, 1000)], ["410102"])
    assert len(cut_unit_grids(units, cell_area=1_000_000)) == 1
    small = make_units([rect(0, 0, 30, 20)], ["410102"])
    assert len(cut_unit_grids(small, cell_area=100)) == 6


# ---------------------------------------------------------------------------- codes and numbering


def test_aligned_rectangle_numbered_west_to_east_north_to_south() -> None:
    units = make_units([rect(0, 0, 300, 200)], ["410102001002"])
    cells = cut_unit_grids(units)
    col0, row0 = int(ZZ_X // 100), int(ZZ_Y // 100)
    expected = {
        "410102001002001": (row0 + 1, col0),
        "410102001002002": (row0 + 1, col0 + 1),
        "410102001002003": (row0 + 1, col0 + 2),
        "410102001002004": (row0, col0),
        "410102001002005": (row0, col0 + 1),
        "410102001002006": (row0, col0 + 2),
    }
    assert list(cells["code"]) == list(expected)
    assert [(r, c) for r, c in zip(cells["row"], cells["col"], strict=True)] == list(expected.values())
    assert list(cells["seq"]) == [1, 2, 3, 4, 5, 6]
    # The true area on the ellipsoid: a 100 m GK square 1.6 % of a zone off its central meridian is ~0.2 m² less.
    assert cells["area_m2"].to_numpy() == pytest.approx(geod_areas(cells), abs=0.01)
    assert cells["area_m2"].between(9_999.0, 10_000.0).all()
    assert list(cells.columns) == [*CELL_COLUMNS, "geometry"]
    assert cells.crs.to_epsg() == 4490
    # Geometry back in lon/lat: the first cell is the north-west one.
    minx, miny, maxx, maxy = cells.total_bounds
    assert cells.geometry.iloc[0].centroid.x < cells.geometry.iloc[2].centroid.x
    assert cells.geometry.iloc[0].centroid.y > cells.geometry.iloc[3].centroid.y
    assert 113.6 < minx < maxx < 113.7 and 34.7 < miny < maxy < 34.8


def test_metric_output_keeps_metric_geometry() -> None:
    units = make_units([rect(0, 0, 300, 200)], ["410102001002"])
    cells = cut_unit_grids_metric(units)
    assert cells.crs.to_epsg() == 4547 and cells.attrs["metric_epsg"] == 4547
    first = cells.geometry.iloc[0]
    assert first.bounds == pytest.approx((ZZ_X, ZZ_Y + 100, ZZ_X + 100, ZZ_Y + 200), abs=1e-6)
    # area_m2 is the true area; the planar GK area is larger by the zone's areal scale (1.0000186 here).
    assert np.allclose(cells["area_m2"], shapely.area(cells.geometry.values) / 1.0000186, atol=0.01)


@pytest.mark.parametrize(
    ("code", "prefix"),
    [("410102", "410102000000"), ("410102003", "410102003000"), ("410102003007", "410102003007")],
)
def test_codes_padded_with_000_for_missing_levels(code: str, prefix: str) -> None:
    cells = cut_unit_grids(make_units([rect(0, 0, 300, 200)], [code]))
    assert list(cells["code"]) == [f"{prefix}{s:03d}" for s in range(1, 7)]
    assert cells["district_code"].eq("410102").all()


def test_unaligned_unit_numbering_follows_rows_then_columns() -> None:
    poly = Polygon([(ZZ_X + 37, ZZ_Y + 11), (ZZ_X + 610, ZZ_Y - 40), (ZZ_X + 520, ZZ_Y + 470), (ZZ_X + 80, ZZ_Y + 390)])
    cells = cut_unit_grids(make_units([poly], ["410102001001"]))
    key = list(zip(-cells["row"], cells["col"], strict=True))
    assert key == sorted(key)
    assert list(cells["seq"]) == list(range(1, len(cells) + 1))


# ------------------------------------------------------------------------------ coverage/topology


@pytest.mark.parametrize(("ox", "oy", "epsg"), [(ZZ_X, ZZ_Y, ZZ_EPSG), (BJ_X, BJ_Y, BJ_EPSG)])
def test_cells_tile_realistic_communities_exactly(ox: float, oy: float, epsg: int) -> None:
    polys = voronoi_communities(9, seed=7, ox=ox, oy=oy, radius=1_400)
    codes = community_codes(len(polys))
    units = make_units(polys, codes, epsg=epsg)
    cells = cut_unit_grids(units)
    report = check_coverage(units, cells)

    assert report.area_diff_ratio < 1e-4  # union of cells equals the units
    assert report.overlap_m2 <= 1.0 * report.units_area_m2 / 1e6  # ≤ 1 m² per km²
    assert report.cells_outside_unit == 0
    assert report.duplicate_codes == 0
    assert report.ok
    assert abs(report.cells_area_m2 - report.units_area_m2) / report.units_area_m2 < 1e-4

    assert cells["code"].is_unique
    assert cells["code"].str.fullmatch(r"[0-9]{15}").all()
    assert (cells["code"].str[:12] == cells["community_code"]).all()
    assert list(cells["code"]) == sorted(cells["code"])
    assert set(cells["community_code"]) == set(codes)
    assert set(cells.geom_type) <= {"Polygon", "MultiPolygon"}
    # Slivers (< 0.3 cell) exist only where a piece has no neighbour in its unit.
    assert (cells["area_m2"] >= 3_000).mean() > 0.99
    for _, unit_cells in cells.groupby("community_code"):
        key = list(zip(-unit_cells["row"], unit_cells["col"], strict=True))
        assert key == sorted(key)
        assert list(unit_cells["seq"]) == list(range(1, len(unit_cells) + 1))


def test_every_cell_lies_in_its_own_unit() -> None:
    polys = voronoi_communities(6, seed=3, ox=ZZ_X, oy=ZZ_Y, radius=900)
    units = make_units(polys, community_codes(6))
    cells = cut_unit_grids_metric(units)
    units_m = units.to_crs(cells.crs).set_index("code")
    for code, unit_cells in cells.groupby("community_code"):
        unit = units_m.geometry[code]
        outside = shapely.area(shapely.difference(unit_cells.geometry.values, unit))
        assert outside.max() < 1e-3
        others = units_m.drop(index=code).geometry.union_all()
        assert shapely.area(shapely.intersection(unit_cells.geometry.values, others)).max() < 1e-3


def test_neighbouring_cells_share_identical_edges() -> None:
    # The cut is a clean coverage inside each unit (shared vertices are bitwise identical).
    poly = voronoi_communities(1, seed=11, ox=ZZ_X, oy=ZZ_Y, radius=500)[0]
    cells = cut_unit_grids_metric(make_units([poly], ["410102001001"]))
    assert shapely.coverage_is_valid(cells.geometry.values)


# ---------------------------------------------------------------------------------------- pieces


def test_sliver_merged_into_neighbour_with_longest_shared_edge() -> None:
    # A 300 x 200 block with a notch: cell (row 1, col 2) keeps only 40 x 30 m = 1,200 m² (a sliver).
    # It shares 30 m with its western neighbour and 40 m with its southern one, so the south one takes it.
    coords = [(0, 0), (300, 0), (300, 100), (240, 100), (240, 130), (195, 130), (195, 200), (0, 200)]
    poly = Polygon([(ZZ_X + x, ZZ_Y + y) for x, y in coords])
    cells = cut_unit_grids_metric(make_units([poly], ["410102001001"]))
    col0, row0 = int(ZZ_X // 100), int(ZZ_Y // 100)
    assert list(cells["code"]) == [f"410102001001{s:03d}" for s in range(1, 6)]
    got = {
        c: (r - row0, k - col0, a)
        for c, r, k, a in zip(cells["code"], cells["row"], cells["col"], planar(cells), strict=True)
    }
    assert got == {
        "410102001001001": (1, 0, 10_000.0),
        "410102001001002": (1, 1, 9_650.0),
        "410102001001003": (0, 0, 10_000.0),
        "410102001001004": (0, 1, 10_000.0),
        "410102001001005": (0, 2, 11_200.0),  # absorbed the sliver, kept its own (row, col)
    }
    merged = cells.geometry.iloc[4]
    assert merged.geom_type == "Polygon"
    expected = box(ZZ_X + 200, ZZ_Y, ZZ_X + 300, ZZ_Y + 130).difference(
        box(ZZ_X + 240, ZZ_Y + 100, ZZ_X + 300, ZZ_Y + 130)
    )
    assert shapely.symmetric_difference(merged, expected).area < 1e-6


def test_coverage_reports_the_spread_of_cell_sizes_around_the_nominal_area() -> None:
    """The planner choosing --sliver sees how many cells are off the nominal 10,000 m² by more than 10 %: here the
    cell that absorbed the sliver (11,200 m² in the plane) is over; the 9,650 m² boundary cell is within."""
    from gisgrid.cli.grids import sizes_text

    coords = [(0, 0), (300, 0), (300, 100), (240, 100), (240, 130), (195, 130), (195, 200), (0, 200)]
    units = make_units([Polygon([(ZZ_X + x, ZZ_Y + y) for x, y in coords])], ["410102001001"])
    report = check_coverage(units, cut_unit_grids_metric(units))
    assert (report.cell_area_m2, report.cells, report.cells_under, report.cells_over) == (10_000.0, 5, 0, 1)
    # On the ellipsoid, ~0.2 m² per hectare less than in this Gauss–Krüger plane 1.6 % of a zone off its meridian.
    assert report.smallest_m2 == pytest.approx(9_649.8, abs=0.1)
    assert report.largest_m2 == pytest.approx(11_199.8, abs=0.1)
    assert sizes_text(report) == (
        "cell sizes: 5 cells of 10,000 m² nominal; 0 under it by more than 10% (smallest 9,650 m²), 1 over it by "
        "more than 10% (largest 11,200 m²): --sliver sets where a boundary piece is merged into its neighbour"
    )
    small = check_coverage(units, cut_unit_grids_metric(units, cell_area=2_500))
    assert (small.cell_area_m2, small.cells) == (2_500.0, 21) and small.cells_under + small.cells_over >= 1


def test_sliver_prefers_a_non_sliver_neighbour() -> None:
    # Sliver S (90 x 10 m, row 1 col 1) shares 50 m with sliver T (50 x 50 m, row 0 col 1) but only
    # 10 m with the full cell west of it: it still goes west. T goes to the full cell west of it.
    poly = shapely.union_all([rect(0, 0, 100, 200), rect(100, 50, 50, 50), rect(100, 100, 90, 10)]).normalize()
    cells = cut_unit_grids_metric(make_units([poly], ["410102001001"]))
    col0, row0 = int(ZZ_X // 100), int(ZZ_Y // 100)
    got = [
        (c, r - row0, k - col0, a)
        for c, r, k, a in zip(cells["code"], cells["row"], cells["col"], planar(cells), strict=True)
    ]
    assert got == [("410102001001001", 1, 0, 10_900.0), ("410102001001002", 0, 0, 12_500.0)]


def test_chain_of_slivers_reaches_a_host() -> None:
    # A 20 m wide tail through two cells east of a full cell: both tail pieces are slivers; the one
    # touching the full cell joins it, and the far one follows through it.
    poly = box(ZZ_X, ZZ_Y, ZZ_X + 100, ZZ_Y + 100).union(box(ZZ_X + 100, ZZ_Y + 40, ZZ_X + 300, ZZ_Y + 60))
    cells = cut_unit_grids_metric(make_units([poly], ["410102001001"]))
    assert len(cells) == 1
    assert planar(cells)[0] == 14_000.0
    assert cells["col"].iloc[0] == int(ZZ_X // 100)


def test_sliver_cluster_beside_a_group_at_the_cap_is_still_merged() -> None:
    # Full cell A (row 0, col 0) takes slivers C (south, 2,900 m²) and D (east, 2,900 m²) in the first round:
    # 15,800 m², over the cap of 13,000. E (700 m², east of D) and F (40 m², east of E) form a cluster whose only
    # host is A's group: it used to stay a 740 m² cell of its own (review 17 item 4); it joins A's group.
    poly = shapely.union_all(
        [rect(0, 0, 100, 100), rect(0, -29, 100, 29), rect(100, 0, 100, 29), rect(200, 0, 100, 7), rect(300, 0, 4, 10)]
    ).normalize()
    cells = cut_unit_grids_metric(make_units([poly], ["410102001001"]))
    col0, row0 = int(ZZ_X // 100), int(ZZ_Y // 100)
    got = [
        (c, r - row0, k - col0, a)
        for c, r, k, a in zip(cells["code"], cells["row"], cells["col"], planar(cells), strict=True)
    ]
    assert got == [("410102001001001", 0, 0, 16_540.0)]
    assert shapely.symmetric_difference(cells.geometry.iloc[0], poly).area < 1e-6


def test_sliver_without_neighbour_stays() -> None:
    # A 20 x 20 m island 1 km away is a separate piece with no neighbour in its unit.
    island = box(ZZ_X + 1_050, ZZ_Y + 50, ZZ_X + 1_070, ZZ_Y + 70)
    unit = MultiPolygon([rect(0, 0, 200, 100), island])
    cells = cut_unit_grids_metric(make_units([unit], ["410102001001"]))
    assert sorted(planar(cells)) == [400.0, 10_000.0, 10_000.0]


def test_sliver_fraction_zero_keeps_every_piece() -> None:
    poly = rect(0, 0, 310, 200)
    assert len(cut_unit_grids(make_units([poly], ["410102"]))) == 6
    assert len(cut_unit_grids(make_units([poly], ["410102"]), sliver=0)) == 8


@pytest.mark.parametrize("sliver", [1.0, 1, 1.5, -0.1, float("nan"), float("inf"), True, "0.3", None])
def test_a_sliver_fraction_outside_0_to_1_is_refused(sliver: object) -> None:
    # review25 U4: 1.0 would make every piece smaller than a whole cell a sliver to merge away.
    units = make_units([rect(0, 0, 310, 200)], ["410102"])
    with pytest.raises(InvalidInput) as err:
        cut_unit_grids(units, sliver=sliver)  # type: ignore[arg-type]
    assert err.value.message == (
        f"--sliver {sliver!r} is out of range; use a fraction of the cell area from 0 (keep every piece) up to, "
        "not including, 1, e.g. 0.3"
    )
    assert len(cut_unit_grids(units, sliver=0.99)) == 6


def test_concave_unit_gives_separate_pieces_of_one_cell() -> None:
    # A U whose two arms run through the same cell: the cell yields two pieces, numbered west first.
    u = rect(0, -100, 100, 200).difference(rect(40, 0, 20, 200))
    cells = cut_unit_grids_metric(make_units([u], ["410102001001"]), sliver=0)
    top = cells[cells["row"] == int(ZZ_Y // 100)]
    assert len(top) == 2
    assert top["col"].nunique() == 1
    assert planar(top) == [4_000.0, 4_000.0]
    west, east = top.geometry
    assert west.geom_type == east.geom_type == "Polygon"
    assert west.centroid.x < east.centroid.x
    assert west.disjoint(east)
    assert top["seq"].tolist() == [1, 2]


def _pieces_by_seq(cells: gpd.GeoDataFrame) -> list[tuple[int, float, float]]:
    """(seq, centroid x, centroid y) offsets from the origin, to the decimetre, of the east cell's pieces."""
    east = cells[cells["col"] == int(ZZ_X // 100) + 1]
    return [
        (s, round(g.centroid.x - ZZ_X, 1), round(g.centroid.y - ZZ_Y, 1))
        for s, g in zip(east["seq"], east.geometry, strict=True)
    ]


def test_pieces_one_above_the_other_are_numbered_north_first() -> None:
    # review25 U2: a slot from the east edge splits the east cell into a north and a south piece of equal width.
    # Their representative points differ in x only by the lon/lat round trip's noise, which used to decide: the
    # south piece came first. North→south, as the cells are numbered, whatever the noise.
    unit = rect(0, 0, 200, 100).difference(rect(100, 45, 100, 10))
    cells = cut_unit_grids_metric(make_units([unit], ["410102001001"]))
    assert cells["code"].tolist() == ["410102001001001", "410102001001002", "410102001001003"]
    assert _pieces_by_seq(cells) == [(2, 150.0, 77.5), (3, 150.0, 22.5)]
    # North first also when the north piece lies east of the south one (15 m: the south piece lost its east 30 m),
    # which west-first numbering put second.
    notched = unit.difference(rect(170, 0, 30, 45))
    cells = cut_unit_grids_metric(make_units([notched], ["410102001001"]))
    assert _pieces_by_seq(cells) == [(2, 150.0, 77.5), (3, 135.0, 22.5)]


@pytest.mark.parametrize("east_m", [0, 100, 200, 300])
def test_level_pieces_are_numbered_west_first_whatever_the_noise(east_m: float) -> None:
    # A north-south slot splits the top cell into a west and an east piece drawn level. After the lon/lat round trip
    # their centroids' heights differ by a nanometre, either way (the east one is higher at 100 and 300 m east):
    # north first must not mean that; level pieces are west first.
    ox = ZZ_X + east_m
    unit = rect(0, 0, 100, 200, ox).difference(rect(40, 90, 20, 110, ox))
    cells = cut_unit_grids_metric(make_units([unit], ["410102001001"]))
    top = cells[cells["row"] == int(ZZ_Y // 100) + 1]
    assert top["code"].tolist() == ["410102001001001", "410102001001002"]
    assert [round(g.centroid.x - ox, 1) for g in top.geometry] == [20.0, 80.0]


# ---------------------------------------------------------------------------------- determinism


def test_cut_is_deterministic() -> None:
    polys = voronoi_communities(8, seed=5, ox=BJ_X, oy=BJ_Y, radius=1_000)
    units = make_units(polys, community_codes(8, "110101"), epsg=BJ_EPSG)
    first = cut_unit_grids(units)
    second = cut_unit_grids(units.copy())
    assert first["code"].tolist() == second["code"].tolist()
    assert (shapely.to_wkb(first.geometry.values) == shapely.to_wkb(second.geometry.values)).all()
    assert first.drop(columns="geometry").equals(second.drop(columns="geometry"))


def test_result_does_not_depend_on_unit_order() -> None:
    polys = voronoi_communities(5, seed=9, ox=ZZ_X, oy=ZZ_Y, radius=800)
    units = make_units(polys, community_codes(5))
    a = cut_unit_grids(units)
    b = cut_unit_grids(units.iloc[::-1])
    assert a["code"].tolist() == b["code"].tolist()
    assert (shapely.to_wkb(a.geometry.values) == shapely.to_wkb(b.geometry.values)).all()


# --------------------------------------------------------------------------------------- limits


def test_more_than_999_cells_refused_naming_the_unit() -> None:
    units = make_units([rect(0, 0, 400, 260)], ["410102001001"])  # 1,040 cells of 10 x 10 m
    with pytest.raises(InvalidInput) as err:
        cut_unit_grids(units, cell_area=100)
    assert err.value.message == (
        "unit 410102001001 (社区001) would get 1040 unit grids, more than the 999 a 3-digit sequence allows; "
        "split it into finer units (streets → communities) or use a larger --cell-area (e.g. 1,000)"
    )


def test_more_than_999_cells_hint_is_above_the_given_cell_area_and_within_the_maximum() -> None:
    units = make_units([rect(0, 0, 9_000, 10_000)], ["410102"])  # 1,125 cells of 80,000 m²; 1,120 once slivers merge
    with pytest.raises(InvalidInput) as err:
        cut_unit_grids(units, cell_area=80_000)
    assert err.value.message.endswith(
        "would get 1120 unit grids, more than the 999 a 3-digit sequence allows; split it into finer units "
        "(streets → communities) or use a larger --cell-area (e.g. 100,000)"
    )
    # At the largest cell area allowed (review 17 item 7: it used to suggest the same 1e+06) there is no hint.
    units = make_units([rect(0, 0, 40_000, 30_000)], ["410102"])  # 1,200 cells of 1 km²
    with pytest.raises(InvalidInput) as err:
        cut_unit_grids(units, cell_area=1_000_000)
    assert err.value.message.endswith(
        "would get 1200 unit grids, more than the 999 a 3-digit sequence allows; split it into finer units "
        "(streets → communities)"
    )


def test_far_too_many_cells_refused_before_cutting() -> None:
    units = make_units([rect(0, 0, 7_000, 7_000)], ["410102"])  # ~4,900 standard cells
    with pytest.raises(InvalidInput, match=r"410102 \(中原区\) would get about 4900 unit grids"):
        cut_unit_grids(units)


def test_999_cells_accepted() -> None:
    cells = cut_unit_grids(make_units([rect(0, 0, 2_700, 3_700)], ["410102"]))  # 27 x 37 = 999
    assert len(cells) == 999
    assert cells["code"].iloc[-1] == "410102000000999"


# --------------------------------------------------------------------------------------- inputs


def test_invalid_geometry_refused() -> None:
    bowtie = Polygon([(ZZ_X, ZZ_Y), (ZZ_X + 200, ZZ_Y + 200), (ZZ_X + 200, ZZ_Y), (ZZ_X, ZZ_Y + 200)])
    units = make_units([rect(0, 0, 200, 200)], ["410102001001"])
    # Put in as is: densifying (GEOS) would repair the bow-tie into one of its halves.
    units = units.set_geometry(gpd.GeoSeries([bowtie], crs=ZZ_EPSG).to_crs(4490).values)
    with pytest.raises(InvalidInput, match=r"unit 410102001001: invalid geometry"):
        cut_unit_grids(units)


@pytest.mark.parametrize(
    ("column", "value", "match"),
    [
        ("district_code", "41010", "district_code"),
        ("street_code", "410199001", "street_code"),
        ("code", "410102001002", "lowest-level code"),
    ],
)
def test_inconsistent_codes_refused(column: str, value: str, match: str) -> None:
    units = make_units([rect(0, 0, 300, 200)], ["410102001001"])
    units[column] = value
    with pytest.raises(InvalidInput, match=match):
        cut_unit_grids(units)


def test_duplicate_unit_codes_refused() -> None:
    units = make_units([rect(0, 0, 300, 200), rect(400, 0, 300, 200)], ["410102001001", "410102001001"])
    with pytest.raises(InvalidInput, match="more than once"):
        cut_unit_grids(units)


def test_missing_columns_refused() -> None:
    units = make_units([rect(0, 0, 300, 200)], ["410102001001"]).drop(columns="street_name")
    with pytest.raises(InvalidInput, match="street_name"):
        cut_unit_grids(units)


def test_coverage_report_detects_broken_cells() -> None:
    units = make_units([rect(0, 0, 300, 200)], ["410102001001"])
    cells = cut_unit_grids(units)
    broken = cells.copy()
    broken.loc[1, "code"] = broken.loc[0, "code"]
    broken.loc[2, "geometry"] = broken.geometry[2].buffer(0.0005)  # ~50 m beyond its cell
    broken = broken.drop(index=5)
    report = check_coverage(units, broken)
    assert report.duplicate_codes == 1
    assert report.cells_outside_unit == 1
    assert report.overlap_m2 > 1_000
    assert report.area_diff_ratio > 1e-3
    assert not report.ok


# ------------------------------------------------------------------- long edges (review39 D1)


def lonlat_units(poly: Polygon, code: str = "410102001001") -> gpd.GeoDataFrame:
    """One community unit given directly in lon/lat (EPSG:4490), its edges straight in lon/lat as stored."""
    row = {
        "code": code,
        "district_code": code[:6],
        "street_code": code[:9],
        "community_code": code,
        "district_name": "中原区",
        "street_name": "某街道",
        "community_name": "某社区",
    }
    return gpd.GeoDataFrame([row], geometry=[MultiPolygon([poly])], crs=4490)


def test_cells_follow_long_lon_lat_edges_not_their_gauss_kruger_chords() -> None:
    # review39 D1: a 7.3 km east–west edge, straight in lon/lat as PostGIS treats it, bows ~0.73 m away from its
    # Gauss–Krüger chord at mid-span. Cut along the chord, a strip inside the south edge had no cell (a report
    # there was refused) and cells stuck out beyond the north edge.
    poly = box(113.60, 34.70, 113.68, 34.71)
    cells = cut_unit_grids(lonlat_units(poly))
    geod = Geod(ellps="GRS80")
    lons = np.array([113.605, 113.62, 113.64, 113.66, 113.675])
    for edge_lat, azimuth in ((34.70, 0.0), (34.71, 180.0)):
        for metres in (0.1, 0.3, 0.5):
            lon, lat, _ = geod.fwd(lons, np.full(len(lons), edge_lat), np.full(len(lons), azimuth), np.full(5, metres))
            points = shapely.points(lon, lat)
            assert shapely.covers(poly, points).all()
            found = shapely.STRtree(cells.geometry.values).query(points, predicate="covered_by")[0]
            assert sorted(set(found.tolist())) == list(range(len(lons))), (edge_lat, metres)
    union = shapely.union_all(cells.geometry.values)
    gap, extra = shapely.difference(poly, union), shapely.difference(union, poly)
    gap_m2, extra_m2 = (abs(geod.geometry_area_perimeter(g)[0]) for g in (gap, extra))
    assert gap_m2 < 0.5 and extra_m2 < 0.5  # was ~3,500 m² each way
    assert check_coverage(lonlat_units(poly), cells).ok


def test_coverage_check_measures_against_lon_lat_edges() -> None:
    # Cells cut from the same rectangle with Gauss–Krüger-straight edges (the old chord cut) miss the bowed strip:
    # the check must see it, not project the unit the same chord-making way.
    poly = box(113.60, 34.70, 113.68, 34.71)
    chord_gk = gpd.GeoSeries([poly], crs=4490).to_crs(ZZ_EPSG)
    chord = gpd.GeoSeries(shapely.segmentize(chord_gk.values, 20.0), crs=ZZ_EPSG).to_crs(4490)
    units = lonlat_units(poly)
    chord_cells = cut_unit_grids(lonlat_units(chord.iloc[0]))
    report = check_coverage(units, chord_cells)
    assert report.area_diff_ratio > 5e-4  # ~7,000 m² of ~8.1 km²
    assert report.cells_outside_unit > 50  # the cells along the north edge stick out
    assert not report.ok
    assert check_coverage(units, cut_unit_grids(units)).ok
