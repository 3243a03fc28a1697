"""Pure tests (no database) for the synthetic demo district Z区 (gisgrid.demo)."""

from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely

from gisgrid import demo
from gisgrid.boundaries import BoundaryOptions, read_boundaries
from gisgrid.demo import (
    DEMO_DISTRICT_CODE,
    demo_components_points,
    make_demo_district,
    write_demo_district,
)

CJK = re.compile(r"^[\u4e00-\u9fff]+$")


@pytest.fixture(scope="module")
def units() -> gpd.GeoDataFrame:
    return make_demo_district()


@pytest.fixture(scope="module")
def metric(units: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return units.to_crs("EPSG:4547")


def _children(metric: gpd.GeoDataFrame, parent_level: str, child_level: str):
    for _, parent in metric[metric["level"] == parent_level].iterrows():
        kids = metric[(metric["level"] == child_level) & (metric["parent_code"] == parent["code"])]
        yield parent, kids


def test_columns_crs_and_counts(units: gpd.GeoDataFrame) -> None:
    assert list(units.columns) == ["code", "name", "level", "parent_code", "geometry"]
    assert units.crs.to_epsg() == 4490
    assert units["level"].value_counts().to_dict() == {"district": 1, "street": 12, "community": 124}
    assert list(units["level"]) == ["district"] + ["street"] * 12 + ["community"] * 124
    assert set(units.geom_type) == {"MultiPolygon"}
    assert units.is_valid.all()
    assert not units.is_empty.any()


def test_total_area(metric: gpd.GeoDataFrame) -> None:
    district_km2 = metric[metric["level"] == "district"].area.iloc[0] / 1e6
    assert abs(district_km2 - 370.0) <= 370.0 * 0.03
    for level in ("street", "community"):
        assert metric[metric["level"] == level].area.sum() / 1e6 == pytest.approx(district_km2, rel=1e-6)


@pytest.mark.parametrize(("parent_level", "child_level"), [("district", "street"), ("street", "community")])
def test_children_tile_parents(metric: gpd.GeoDataFrame, parent_level: str, child_level: str) -> None:
    for parent, kids in _children(metric, parent_level, child_level):
        p_geom = parent.geometry
        p_area = p_geom.area
        assert len(kids) >= 3
        union = shapely.union_all(kids.geometry.values)
        # union == parent: same area, and (almost) nothing outside / missing
        assert abs(union.area - p_area) / p_area < 1e-4
        assert shapely.symmetric_difference(union, p_geom).area / p_area < 1e-4
        # sum of areas == parent area within 1 m² per km² (so no overlaps, no gaps)
        assert abs(kids.area.sum() - p_area) <= p_area / 1e6 * 1.0
        # pairwise: siblings touch but never overlap
        tree = shapely.STRtree(kids.geometry.values)
        left, right = tree.query(kids.geometry.values, predicate="intersects")
        pairs = left < right
        overlap = shapely.area(
            shapely.intersection(kids.geometry.values[left[pairs]], kids.geometry.values[right[pairs]])
        )
        assert pairs.any()
        assert overlap.max() < 1.0  # m²


def test_every_community_in_exactly_one_street(metric: gpd.GeoDataFrame) -> None:
    streets = metric[metric["level"] == "street"]
    comms = metric[metric["level"] == "community"]
    pts = comms.geometry.representative_point()
    tree = shapely.STRtree(streets.geometry.values)
    for code, parent_code, geom, pt in zip(comms["code"], comms["parent_code"], comms.geometry, pts, strict=True):
        hits = tree.query(pt, predicate="within")
        assert len(hits) == 1, code
        street = streets.iloc[int(hits[0])]
        assert street["code"] == parent_code
        assert shapely.intersection(geom, street.geometry).area / geom.area > 0.9999


def test_community_sizes(metric: gpd.GeoDataFrame) -> None:
    km2 = metric[metric["level"] == "community"].area / 1e6
    assert km2.max() < 9.5  # < 999 unit grids of 10,000 m² per community
    assert km2.min() > 0.2
    # urban core is dense, outer villages large
    assert km2.min() < 1.0
    assert km2.max() > 4.0
    # ~680 tier-3 grids / 124 communities: mean community ~3 km²
    assert 2.5 < km2.mean() < 3.5


def test_codes(units: gpd.GeoDataFrame) -> None:
    codes = units["code"]
    assert codes.is_unique
    assert all(c.isdigit() for c in codes)
    district = units[units["level"] == "district"].iloc[0]
    assert district["code"] == DEMO_DISTRICT_CODE == "419901"
    assert district["parent_code"] is None
    streets = units[units["level"] == "street"]
    assert list(streets["code"]) == [f"419901{i:03d}" for i in range(1, 13)]
    assert (streets["parent_code"] == "419901").all()
    comms = units[units["level"] == "community"]
    assert (comms["code"].str.len() == 12).all()
    assert (comms["code"].str[:9] == comms["parent_code"]).all()
    for street_code, grp in comms.groupby("parent_code"):
        assert street_code in set(streets["code"])
        assert list(grp["code"]) == [f"{street_code}{i:03d}" for i in range(1, len(grp) + 1)]


def test_names(units: gpd.GeoDataFrame) -> None:
    assert units["name"].is_unique
    assert units["name"].iloc[0] == "Z区"
    names = units["name"].iloc[1:]
    assert all(CJK.match(n) for n in names)
    streets = units[units["level"] == "street"]
    kinds = ["镇" if n.endswith("镇") else "街道" for n in streets["name"]]
    assert all(n.endswith(("街道", "镇")) for n in streets["name"])
    assert kinds == ["街道"] * 8 + ["镇"] * 4  # the last 4 are towns
    towns = set(streets.loc[streets["name"].str.endswith("镇"), "code"])
    for _, c in units[units["level"] == "community"].iterrows():
        assert c["name"].endswith("村" if c["parent_code"] in towns else "社区")


def test_deterministic(units: gpd.GeoDataFrame) -> None:
    again = make_demo_district(2004)
    assert list(shapely.to_wkb(again.geometry.values)) == list(shapely.to_wkb(units.geometry.values))
    cols = ["code", "name", "level", "parent_code"]
    assert again[cols].equals(units[cols])
    other = make_demo_district(7)
    assert list(shapely.to_wkb(other.geometry.values)) != list(shapely.to_wkb(units.geometry.values))


def test_location(units: gpd.GeoDataFrame) -> None:
    xmin, ymin, xmax, ymax = units.total_bounds
    assert xmin > 112.5 and xmax < 115.5  # well inside the EPSG:4547 (CM 114E) 3° zone
    assert xmin > 112.9 and xmax < 115.1
    assert ymin > 34.0 and ymax < 35.5
    centroid = units.to_crs("EPSG:4547").geometry.iloc[0].centroid
    lon, lat = gpd.GeoSeries([centroid], crs="EPSG:4547").to_crs("EPSG:4490").iloc[0].coords[0]
    assert abs(lon - 113.70) < 0.1 and abs(lat - 34.75) < 0.1


def test_outline_is_irregular(metric: gpd.GeoDataFrame) -> None:
    district = metric.geometry.iloc[0]
    assert len(district.geoms) == 1
    # not a circle/square: clearly concave (river notch, wiggly edge)
    assert district.area / district.convex_hull.area < 0.95
    assert len(shapely.get_coordinates(district)) > 100


def test_points_inside_and_denser_in_core(units: gpd.GeoDataFrame) -> None:
    lon, lat = demo_components_points(20_000, 1, units)
    assert lon.shape == lat.shape == (20_000,)
    district = units.geometry.iloc[0]
    assert shapely.contains_xy(district, lon, lat).all()
    lon2, lat2 = demo_components_points(20_000, 1, units)
    assert np.array_equal(lon, lon2) and np.array_equal(lat, lat2)
    # density (points per km²) in the 10 smallest vs the 10 largest communities
    comms = units[units["level"] == "community"].to_crs("EPSG:4547")
    pts = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs="EPSG:4490").to_crs("EPSG:4547")
    tree = shapely.STRtree(comms.geometry.values)
    idx = tree.query(pts.values, predicate="within")[1]
    dens = np.bincount(idx, minlength=len(comms)) / (comms.area.to_numpy() / 1e6)
    order = np.argsort(comms.area.to_numpy())
    assert dens[order[:10]].mean() > 3 * dens[order[-10:]].mean()


def test_points_with_bare_geometry(units: gpd.GeoDataFrame) -> None:
    district = units.geometry.iloc[0]
    lon, lat = demo_components_points(5_000, 3, district)
    assert len(lon) == 5_000
    assert shapely.contains_xy(district, lon, lat).all()
    assert demo_components_points(0, 3, district)[0].size == 0


def test_write_geopackage(tmp_path, units: gpd.GeoDataFrame) -> None:
    path = write_demo_district(tmp_path / "demo" / "z.gpkg")
    assert path.exists()
    assert [tuple(layer) for layer in pyogrio.list_layers(path)] == [("boundaries", "MultiPolygon")]
    back = gpd.read_file(path, layer="boundaries")
    assert back.crs.to_epsg() == 4490
    assert len(back) == 137
    assert list(back["code"]) == list(units["code"])
    assert back["parent_code"].isna().sum() == 1
    # writing again overwrites rather than appending
    write_demo_district(path)
    assert len(gpd.read_file(path, layer="boundaries")) == 137


def test_boundary_validation_of_the_demo_is_clean(tmp_path) -> None:
    # review39 D5: the units are drawn in EPSG:4547 and must be densified before going to lon/lat (as the importer
    # does with projected input); before, the import's dry run found 43 parts outside parents, 48 overlaps, 11 gaps.
    report = read_boundaries(write_demo_district(tmp_path / "z.gpkg"), BoundaryOptions(layer="boundaries")).report
    assert report.counts == {"district": 1, "street": 12, "community": 124}
    assert (report.outside, report.overlaps, report.gaps) == ([], [], [])
    assert report.topology_ok and not report.repaired and not report.warnings


def test_no_two_demo_components_stand_within_a_metre(units: gpd.GeoDataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    """An import refuses a second component of one class within 0.5 m (review47 F3): a large demo registry must
    have no such pair, or demo load (and the million-component benchmarks) would lose rows to it."""

    def pairs(lon: np.ndarray, lat: np.ndarray) -> int:
        pts = shapely.points(np.column_stack([lon.round(7), lat.round(7)]))
        a, b = shapely.STRtree(pts).query(pts, predicate="dwithin", distance=0.9 * demo.MIN_APART_DEG)
        return int((a != b).sum())

    lon, lat = demo_components_points(200_000, 2004, units)
    assert len(lon) == 200_000 and pairs(lon, lat) == 0
    assert shapely.contains_xy(units.geometry.iloc[0], lon, lat).all()
    with monkeypatch.context() as m:  # the same points unspread: the check above can fail
        m.setattr(demo, "_apart", lambda xy, outline, rng: xy)
        assert pairs(*demo_components_points(200_000, 2004, units)) > 0
