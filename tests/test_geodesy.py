"""Datum conversion: published test vector, round trips, prcoords cross-check, pass-through, shapes."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import prcoords
import pytest
import shapely
from pyproj import Geod

from gisgrid import geodesy
from gisgrid.errors import InvalidInput

GEOD = Geod(ellps="WGS84")

# Amap convert API test vector (6 decimals, BD 5): WGS → GCJ → BD.
WGS = (116.481499, 39.990475)
GCJ = (116.487586, 39.991754)
BD = (116.49412, 39.997716)


def metres(lon1, lat1, lon2, lat2) -> np.ndarray:
    return np.asarray(GEOD.inv(lon1, lat1, lon2, lat2)[2])


@pytest.fixture(scope="module")
def china_points() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(20240601)
    return rng.uniform(73.7, 134.7, 400), rng.uniform(18.2, 53.5, 400)


def test_published_vector_forward_within_1m() -> None:
    gx, gy = geodesy.from_storage(*WGS, "gcj02")
    assert metres(gx, gy, *GCJ) < 1.0
    bx, by = geodesy.from_storage(*WGS, "bd09")
    assert metres(bx, by, *BD) < 1.0
    bx, by = geodesy.gcj02_to_bd09(*GCJ)
    assert metres(bx, by, *BD) < 1.0


def test_published_vector_inverse_within_1m() -> None:
    assert metres(*geodesy.to_storage(*GCJ, "gcj02"), *WGS) < 1.0
    assert metres(*geodesy.to_storage(*BD, "bd09"), *WGS) < 1.0
    assert metres(*geodesy.bd09_to_gcj02(*BD), *GCJ) < 1.0


@pytest.mark.parametrize("datum", ["gcj02", "bd09"])
def test_round_trip_below_1mm(china_points, datum) -> None:
    lon, lat = china_points
    ox, oy = geodesy.from_storage(lon, lat, datum)
    # The offset is real (hundreds of metres) ...
    assert metres(lon, lat, ox, oy).min() > 50
    back = geodesy.to_storage(ox, oy, datum)
    # ... and undone to well below a millimetre.
    assert metres(lon, lat, *back).max() < 1e-3


@pytest.mark.parametrize("datum", ["wgs84", "cgcs2000"])
def test_identity_datums(datum) -> None:
    lon, lat = geodesy.to_storage([116.4, 113.6], [39.9, 34.7], datum)
    np.testing.assert_array_equal(lon, [116.4, 113.6])
    np.testing.assert_array_equal(lat, [39.9, 34.7])


def test_cross_check_against_prcoords(china_points) -> None:
    lon, lat = china_points
    # prcoords takes and returns (lat, lon) one point at a time.
    gx, gy = geodesy.wgs84_to_gcj02(lon, lat)
    ref = np.array([prcoords.wgs_gcj((la, lo)) for lo, la in zip(lon, lat, strict=True)])
    assert metres(gx, gy, ref[:, 1], ref[:, 0]).max() < 0.01

    wx, wy = geodesy.gcj02_to_wgs84(gx, gy)
    ref = np.array([prcoords.gcj_wgs_bored((la, lo)) for lo, la in zip(gx, gy, strict=True)])
    assert metres(wx, wy, ref[:, 1], ref[:, 0]).max() < 0.01

    bx, by = geodesy.gcj02_to_bd09(gx, gy)
    ref = np.array([prcoords.gcj_bd((la, lo)) for lo, la in zip(gx, gy, strict=True)])
    assert metres(bx, by, ref[:, 1], ref[:, 0]).max() < 0.01

    cx, cy = geodesy.bd09_to_gcj02(bx, by)
    ref = np.array([prcoords.bd_gcj_bored((la, lo)) for lo, la in zip(bx, by, strict=True)])
    assert metres(cx, cy, ref[:, 1], ref[:, 0]).max() < 0.01


@pytest.mark.parametrize("datum", ["gcj02", "bd09"])
def test_outside_china_passes_through(datum) -> None:
    # Hagen (DE), New York, the South Atlantic, a NaN.
    lon = np.array([7.47, -74.0, -20.0, np.nan])
    lat = np.array([51.36, 40.7, -30.0, 10.0])
    for func in (geodesy.to_storage, geodesy.from_storage):
        ox, oy = func(lon, lat, datum)
        np.testing.assert_array_equal(ox, lon)
        np.testing.assert_array_equal(oy, lat)


def test_mixed_inside_outside_and_no_input_mutation() -> None:
    lon = np.array([116.4, 7.47])
    lat = np.array([39.9, 51.36])
    ox, oy = geodesy.from_storage(lon, lat, "gcj02")
    assert ox[0] != 116.4 and (ox[1], oy[1]) == (7.47, 51.36)
    np.testing.assert_array_equal(lon, [116.4, 7.47])  # inputs untouched


def test_array_shapes_preserved() -> None:
    lon = np.full((3, 4), 116.4)
    lat = np.full((3, 4), 39.9)
    ox, oy = geodesy.to_storage(lon, lat, "bd09")
    assert ox.shape == oy.shape == (3, 4)
    sx, sy = geodesy.from_storage(116.4, 39.9, "gcj02")
    assert np.ndim(sx) == 0 and np.ndim(sy) == 0
    ex, ey = geodesy.to_storage([], [], "gcj02")
    assert ex.shape == ey.shape == (0,)
    with pytest.raises(InvalidInput, match="same shape"):
        geodesy.to_storage([1.0, 2.0], [1.0], "gcj02")


def test_unknown_datum_refused() -> None:
    with pytest.raises(InvalidInput, match="unknown datum 'wgs-84'"):
        geodesy.to_storage(116.4, 39.9, "wgs-84")  # type: ignore[arg-type]


def test_transform_geometries_matches_point_conversion() -> None:
    poly = shapely.Polygon([(116.40, 39.90), (116.41, 39.90), (116.41, 39.91), (116.40, 39.90)])
    point_z = shapely.Point(116.4, 39.9, 44.0)
    geoms = np.array([poly, point_z, None], dtype=object)
    out = geodesy.transform_geometries(geoms, "gcj02")
    assert isinstance(out, np.ndarray) and out.shape == (3,)
    assert out[2] is None
    coords = shapely.get_coordinates(out[0])
    ex, ey = geodesy.to_storage(*shapely.get_coordinates(poly).T, "gcj02")
    np.testing.assert_allclose(coords, np.column_stack([ex, ey]), atol=1e-12)
    assert shapely.has_z(out[1]) and shapely.get_coordinates(out[1], include_z=True)[0, 2] == 44.0

    series = gpd.GeoSeries([poly], index=[7], crs="EPSG:4490")
    back = geodesy.transform_geometries(geodesy.transform_geometries(series, "bd09", direction="from_storage"), "bd09")
    assert isinstance(back, gpd.GeoSeries) and list(back.index) == [7] and back.crs == series.crs
    np.testing.assert_allclose(shapely.get_coordinates(back.values), shapely.get_coordinates(poly), atol=1e-8)


def test_transform_geometries_identity_returns_copy() -> None:
    geoms = np.array([shapely.Point(116.4, 39.9)], dtype=object)
    out = geodesy.transform_geometries(geoms, "cgcs2000")
    assert out is not geoms and out[0].equals(geoms[0])


def test_degree_box_holds_every_point_within_the_distance() -> None:
    geod = Geod(ellps="GRS80")  # CGCS2000's ellipsoid differs from GRS80 by 0.1 mm in the semi-minor axis
    rng = np.random.default_rng(5)
    for lat in (0.0, 18.2, 34.75, 45.8, 53.5):
        for metres in (30.0, 200.0, 5_000.0):
            az = rng.uniform(0, 360, 720)
            lon2, lat2, _ = geod.fwd(np.full(720, 113.0), np.full(720, lat), az, np.full(720, metres))
            dx, dy = geodesy.degree_box(lat, metres)
            assert np.all(np.abs(lon2 - 113.0) <= dx) and np.all(np.abs(lat2 - lat) <= dy)
            # and it is not wastefully large: at most 3 % spare on each side
            assert np.abs(lon2 - 113.0).max() > dx / 1.03 and np.abs(lat2 - lat).max() > dy / 1.03


@pytest.mark.parametrize(
    "bbox",
    [
        "113.6,34.7,113.6,34.8",  # review25 G4: no width
        "113.6,34.7,113.8,34.7",  # no height
        "113.6,34.7,113.6,34.7",  # a point
        "113.8,34.7,113.6,34.8",  # west and east swapped
        "-181,34.7,113.6,34.8",
        "113.6,34.7,113.8,90.5",
    ],
)
def test_a_bbox_without_width_or_height_or_out_of_range_is_refused(bbox: str) -> None:
    with pytest.raises(InvalidInput) as err:
        geodesy.parse_bbox(bbox)
    assert (err.value.reason, err.value.message) == (
        "bbox_out_of_range",
        "bbox: need minLon < maxLon within ±180 and minLat < maxLat within ±90",
    )
    assert err.value.detail == [
        {"field": "bbox", "reason": "need minLon < maxLon within ±180 and minLat < maxLat within ±90"}
    ]


def test_the_widest_and_a_narrow_bbox_are_read() -> None:
    assert geodesy.parse_bbox("-180,-90,180,90") == (-180.0, -90.0, 180.0, 90.0)
    assert geodesy.parse_bbox("113.6,34.7,113.6000001,34.7000001", "--bbox") == (113.6, 34.7, 113.6000001, 34.7000001)


# ---------------------------------------------------------------- geodesic_areas


def _geod_area(geom: shapely.Geometry) -> float:
    """Area (m²) by pyproj.Geod on GRS80 of lon/lat ``geom`` with its edges as stored (straight in lon/lat):
    densified to ~1 m, since Geod joins the vertices by geodesics."""
    return abs(Geod(ellps="GRS80").geometry_area_perimeter(shapely.segmentize(geom, 1e-5))[0])


def test_geodesic_areas_of_cells_spread_over_a_district() -> None:
    # review39: the LAEA centre is the middle of the extent, no longer the centroid of the union of every geometry
    # (3.2 s of 4.9 on the demo's 38k cells); the areas stay those of pyproj.Geod and of the old centre to 0.01 m².
    rng = np.random.default_rng(39)
    x = 455_000 + rng.uniform(0, 30_000, 60).round(-2)
    y = 3_830_000 + rng.uniform(0, 25_000, 60).round(-2)
    cells = shapely.box(x, y, x + 100, y + 100)
    cells[:10] = shapely.intersection(cells[:10], shapely.buffer(shapely.points(x[:10] + 30, y[:10] + 70), 60))
    areas = geodesy.geodesic_areas(cells, "EPSG:4547")
    lonlat = gpd.GeoSeries(shapely.segmentize(cells, 1.0), crs=4547).to_crs(4490)
    assert areas == pytest.approx([_geod_area(g) for g in lonlat], abs=0.01)
    lon0, lat0 = lonlat.union_all().centroid.coords[0]
    old = f"+proj=laea +lat_0={lat0} +lon_0={lon0} +ellps=GRS80 +units=m +no_defs"
    assert areas == pytest.approx(gpd.GeoSeries(cells, crs=4547).to_crs(old).area.to_numpy(), abs=0.01)
    assert 9_999.5 < areas[10:].min() <= areas[10:].max() < 10_000.0


def test_geodesic_areas_of_lon_lat_polygons_follow_their_stored_edges() -> None:
    # review39 D1: lon/lat edges are straight in lon/lat; projected by their ends alone they became LAEA chords.
    unit = shapely.box(113.60, 34.70, 113.68, 34.71)
    skew = shapely.Polygon([(113.60, 34.70), (113.68, 34.74), (113.66, 34.78), (113.59, 34.73)])
    areas = geodesy.geodesic_areas(np.array([unit, skew, None, shapely.Polygon()], dtype=object), 4490)
    assert areas[:2] == pytest.approx([_geod_area(unit), _geod_area(skew)], abs=0.05)
    assert areas[2:].tolist() == [0.0, 0.0]


@pytest.mark.parametrize("datum", ["gcj02", "bd09"])
def test_bbox_in_offset_datum_holds_every_converted_edge_point(datum: geodesy.Datum) -> None:
    """The offsets vary by metres along an edge (review 39's worst 0.1° box: ~5 m past the corners' envelope), so
    the storage box holds the converted edges, not only the converted corners."""
    b = (105.0539, 28.8349, 105.1539, 28.9049)
    s = geodesy.bbox_to_storage(b, datum)
    t = np.linspace(0.0, 1.0, 2001)
    xs, ys = b[0] + t * (b[2] - b[0]), b[1] + t * (b[3] - b[1])
    lon = np.concatenate([xs, xs, np.full_like(t, b[0]), np.full_like(t, b[2])])
    lat = np.concatenate([np.full_like(t, b[1]), np.full_like(t, b[3]), ys, ys])
    x, y = geodesy.to_storage(lon, lat, datum)
    assert x.min() >= s[0] and y.min() >= s[1] and x.max() <= s[2] and y.max() <= s[3]
    # Padded by ~1 cm only: the box is the envelope of the converted edges to within 1.1e-7°.
    np.testing.assert_allclose(s, (x.min(), y.min(), x.max(), y.max()), rtol=0, atol=1.1e-7)
    assert geodesy.bbox_to_storage(b, "cgcs2000") == b


def test_features_in_datum_convert_every_vertex_of_points_lines_and_polygons() -> None:
    """GET /components and /grids answer their GeoJSON in the request's datum: each vertex as from_storage puts it,
    to 7 decimals; a shared vertex stays shared; cgcs2000/wgs84 and a Feature without geometry as they are."""
    square = [[113.69, 34.75], [113.691, 34.75], [113.691, 34.751], [113.69, 34.751], [113.69, 34.75]]
    features = [
        {"type": "Feature", "id": "p", "geometry": {"type": "Point", "coordinates": [113.69, 34.75]}, "properties": {}},
        {"type": "Feature", "id": "l", "geometry": {"type": "LineString", "coordinates": square[:3]}, "properties": {}},
        {
            "type": "Feature",
            "id": "m",
            "geometry": {"type": "MultiPolygon", "coordinates": [[square]]},
            "properties": {"code": "x"},
        },
        {"type": "Feature", "id": "n", "geometry": None, "properties": {}},
    ]
    for same in ("cgcs2000", "wgs84"):
        assert geodesy.features_in_datum(features, same) is features
    for datum in ("gcj02", "bd09"):
        out = geodesy.features_in_datum(features, datum)
        lon, lat = geodesy.from_storage([c[0] for c in square], [c[1] for c in square], datum)
        want = [[round(float(x), 7), round(float(y), 7)] for x, y in zip(lon, lat, strict=True)]
        assert [o["id"] for o in out] == ["p", "l", "m", "n"] and out[3] == features[3]
        assert list(out[0]["geometry"]["coordinates"]) == want[0]
        assert [list(c) for c in out[1]["geometry"]["coordinates"]] == want[:3]
        assert out[2]["geometry"]["type"] == "MultiPolygon" and out[2]["properties"] == {"code": "x"}
        ring = [list(c) for c in out[2]["geometry"]["coordinates"][0][0]]
        assert ring == want and ring[0] == ring[-1]
        back = geodesy.to_storage([c[0] for c in ring], [c[1] for c in ring], datum)
        np.testing.assert_allclose(np.column_stack(back), square, rtol=0, atol=1.5e-7)  # 7 decimals: ~1 cm
    assert features[0]["geometry"]["coordinates"] == [113.69, 34.75]  # the input is not changed
    with pytest.raises(InvalidInput, match="unknown datum 'gcj'"):
        geodesy.features_in_datum(features, "gcj")
