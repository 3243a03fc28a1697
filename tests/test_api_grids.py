"""GET /grids, /grids/{code}, /grids/locate against a stored small district."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.main import create_app
from gisgrid import geodesy
from gisgrid.settings import Settings
from tests.fixtures import COMMUNITIES, DISTRICT, STREETS, load_small_district


@pytest.fixture
def client(clean_db: Engine, settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    load_small_district(clean_db, tmp_path)
    with TestClient(create_app(settings)) as c:
        yield c


def _a_cell(engine: Engine) -> tuple[str, float, float, str]:
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT code, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)), tier3_code "
                "FROM unit_grids WHERE community_code = :c ORDER BY code LIMIT 1"
            ),
            {"c": COMMUNITIES[1]},
        ).one()
    return row[0], row[1], row[2], row[3]


def test_list_is_a_paged_feature_collection(client: TestClient, clean_db: Engine) -> None:
    with clean_db.connect() as conn:
        total = conn.execute(text("SELECT count(*) FROM unit_grids")).scalar_one()
    r = client.get("/grids", params={"limit": 10})
    body = r.json()
    assert r.status_code == 200 and body["type"] == "FeatureCollection"
    assert body["numberMatched"] == total and body["numberReturned"] == 10
    assert [link["rel"] for link in body["links"]] == ["self", "next"]
    codes = [f["id"] for f in body["features"]]
    assert codes == sorted(codes)
    page2 = client.get("/grids", params={"limit": 10, "offset": 10}).json()
    assert not set(codes) & {f["id"] for f in page2["features"]}
    first = body["features"][0]
    assert first["geometry"]["type"] == "MultiPolygon"
    assert first["properties"]["district_code"] == DISTRICT and len(first["properties"]["code"]) == 15


def test_bbox_and_tier_filters(client: TestClient, clean_db: Engine) -> None:
    code, x, y, _ = _a_cell(clean_db)
    near = client.get("/grids", params={"bbox": f"{x - 1e-4},{y - 1e-4},{x + 1e-4},{y + 1e-4}"}).json()
    assert code in {f["id"] for f in near["features"]} and near["numberMatched"] <= 9
    tier1 = client.get("/grids", params={"tier": "1"}).json()
    assert sorted(f["id"] for f in tier1["features"]) == list(STREETS)
    assert tier1["features"][0]["properties"]["name"] in {"西城街道", "东关街道"}


def test_one_grid_by_code_and_unknown_code(client: TestClient, clean_db: Engine) -> None:
    code, *_ = _a_cell(clean_db)
    r = client.get(f"/grids/{code}")
    assert r.status_code == 200 and r.json()["properties"]["community_name"] == "紫荆社区"
    t2 = client.get(f"/grids/{COMMUNITIES[1]}").json()
    assert t2["properties"]["tier"] == 2
    missing = client.get("/grids/419902009009009")
    assert missing.status_code == 404
    assert missing.json() == {
        "error": "not_found",
        "reason": "not_found",
        "detail": "no grid with code 419902009009009",
    }


def test_kind_and_tier_have_one_type_each_on_every_grid_feature(client: TestClient, clean_db: Engine) -> None:
    """review29 D12: ``tier`` was "unit" (text) on unit grids and an integer on the tiers."""
    code, *_ = _a_cell(clean_db)
    unit = client.get(f"/grids/{code}").json()["properties"]
    assert (unit["kind"], unit["tier"]) == ("unit", None)
    listed = client.get("/grids", params={"tier": "unit", "limit": 5}).json()["features"]
    assert {(f["properties"]["kind"], f["properties"]["tier"]) for f in listed} == {("unit", None)}
    for tier in (1, 2, 3):
        features = client.get("/grids", params={"tier": str(tier)}).json()["features"]
        assert features and {(f["properties"]["kind"], f["properties"]["tier"]) for f in features} == {
            ("management", tier)
        }
        one = client.get(f"/grids/{features[0]['id']}").json()["properties"]
        assert (one["kind"], one["tier"]) == ("management", tier) and type(one["tier"]) is int


def test_locate_returns_the_unit_grid_and_three_tiers(client: TestClient, clean_db: Engine) -> None:
    code, x, y, tier3 = _a_cell(clean_db)
    r = client.get("/grids/locate", params={"lon": x, "lat": y})
    assert r.status_code == 200
    body = r.json()
    assert body["unit_grid"] == code
    assert body["tier1"] == {"code": STREETS[0], "name": "西城街道"}
    assert body["tier2"] == {"code": COMMUNITIES[1], "name": "紫荆社区"}
    assert body["tier3"]["code"] == tier3 and body["tier3"]["name"].startswith("紫荆社区第")


def test_locate_names_the_tier3_grids_staff_without_phones(client: TestClient, clean_db: Engine) -> None:
    """review U5: the field page offers the located grid's 网格长/网格员 as the reporter's name; their phones stay out
    (only the 网格长's, as before). A grid without staff has an empty list."""
    import pandas as pd

    from gisgrid.grids import store

    _, x, y, tier3 = _a_cell(clean_db)
    before = client.get("/grids/locate", params={"lon": x, "lat": y}).json()["tier3"]
    assert (before["leader_name"], before["leader_phone"], before["staff"]) == (None, None, [])
    staff = pd.DataFrame(
        {
            "grid_code": [tier3] * 3,
            "role": ["网格长", "网格员", "网格员"],
            "name": ["王建国", "李娜", "赵敏"],
            "phone": ["13800000001", "13800000002", "13800000003"],
        }
    )
    with clean_db.begin() as conn:
        assert store.save_staff(conn, staff) == 1
    after = client.get("/grids/locate", params={"lon": x, "lat": y}).json()["tier3"]
    assert after == {
        "code": tier3,
        "name": before["name"],
        "leader_name": "王建国",
        "leader_phone": "13800000001",
        "staff": [
            {"name": "王建国", "role": "网格长"},
            {"name": "李娜", "role": "网格员"},
            {"name": "赵敏", "role": "网格员"},
        ],
    }


def test_staff_without_phones_is_saved_with_null_phones(client: TestClient, clean_db: Engine) -> None:
    """A frame a caller hands over with a missing phone (NaN from pandas, or None) stores null: not JSON's NaN,
    which jsonb refuses (the whole save failed before)."""
    import pandas as pd

    from gisgrid.grids import store

    *_, tier3 = _a_cell(clean_db)
    staff = pd.DataFrame(
        {"grid_code": [tier3] * 2, "role": ["网格长", "网格员"], "name": ["王建国", "李娜"], "phone": [np.nan, None]}
    )
    with clean_db.begin() as conn:
        assert store.save_staff(conn, staff) == 1
    with clean_db.connect() as conn:
        row = conn.execute(
            text("SELECT leader_name, leader_phone, staff FROM management_grids WHERE code = :c"), {"c": tier3}
        ).one()
    assert row.leader_name == "王建国" and row.leader_phone is None
    assert row.staff == [
        {"name": "王建国", "phone": None, "role": "网格长"},
        {"name": "李娜", "phone": None, "role": "网格员"},
    ]


def test_locate_converts_gcj02_and_bd09_input(client: TestClient, clean_db: Engine) -> None:
    code, x, y, _ = _a_cell(clean_db)
    gx, gy = geodesy.from_storage(np.array([x]), np.array([y]), "gcj02")
    bx, by = geodesy.from_storage(np.array([x]), np.array([y]), "bd09")
    assert shapely.Point(x, y).distance(shapely.Point(gx[0], gy[0])) > 1e-3  # hundreds of metres apart
    gcj = client.get("/grids/locate", params={"lon": gx[0], "lat": gy[0], "datum": "gcj02"}).json()
    bd = client.get("/grids/locate", params={"lon": bx[0], "lat": by[0], "datum": "bd09"}).json()
    assert gcj["unit_grid"] == code and bd["unit_grid"] == code


def _in_datum(geometry: dict, datum: geodesy.Datum) -> list:
    """The stored GeoJSON MultiPolygon's every vertex as ``from_storage`` puts it in ``datum``, to 7 decimals."""
    out = []
    for polygon in geometry["coordinates"]:
        rings = []
        for ring in polygon:
            lon, lat = geodesy.from_storage([c[0] for c in ring], [c[1] for c in ring], datum)
            rings.append([[round(float(a), 7), round(float(b), 7)] for a, b in zip(lon, lat, strict=True)])
        out.append(rings)
    return out


def test_grids_take_datum_for_bbox_and_polygons_as_cases_do(client: TestClient, clean_db: Engine) -> None:
    """review47 F4: /grids and /grids/{code} refused ``datum`` (422 extra_forbidden) and answered CGCS2000 only, so
    an AMap/Baidu client could neither filter nor draw grids in its datum. Both take it as GET /cases does — the
    bbox read in it, every polygon vertex answered in it — and name it; without it the numbers are those stored."""
    code, x, y, tier3 = _a_cell(clean_db)
    stored = client.get(f"/grids/{code}").json()
    assert stored["datum"] == "cgcs2000"
    with clean_db.connect() as conn:  # the default answers the stored polygon as before
        as_stored = conn.execute(
            text(
                "SELECT ST_AsGeoJSON(ST_ForcePolygonCCW(ST_SnapToGrid(geom, 1e-7)), 7, 0)::json "
                "FROM unit_grids WHERE code = :c"
            ),
            {"c": code},
        ).scalar_one()
    assert stored["geometry"] == as_stored
    (gx,), (gy,) = geodesy.from_storage([x], [y], "gcj02")
    (bx,), (by,) = geodesy.from_storage([x], [y], "bd09")
    for datum in ("gcj02", "bd09"):
        one = client.get(f"/grids/{code}", params={"datum": datum})
        assert one.status_code == 200, one.text
        assert one.json() == {
            **stored,
            "geometry": {"type": "MultiPolygon", "coordinates": _in_datum(as_stored, datum)},
            "datum": datum,
        }
    tier = client.get(f"/grids/{tier3}", params={"datum": "gcj02"}).json()
    assert tier["datum"] == "gcj02" and tier["properties"]["tier"] == 3
    assert tier["geometry"]["coordinates"] == _in_datum(client.get(f"/grids/{tier3}").json()["geometry"], "gcj02")

    def ids(params: dict) -> list[str]:
        r = client.get("/grids", params=params)
        assert r.status_code == 200, r.text
        return [f["id"] for f in r.json()["features"]]

    box = f"{gx - 1e-5},{gy - 1e-5},{gx + 1e-5},{gy + 1e-5}"  # ~1 m round the cell's point, in GCJ-02
    assert ids({"bbox": box, "datum": "gcj02"}) == [code]
    assert code not in ids({"bbox": box})  # the box taken as CGCS2000: ~620 m east
    bd_box = f"{bx - 1e-5},{by - 1e-5},{bx + 1e-5},{by + 1e-5}"
    assert ids({"bbox": bd_box, "datum": "bd09"}) == [code]
    assert code not in ids({"bbox": bd_box, "datum": "gcj02"})
    page = client.get("/grids", params={"bbox": box, "datum": "gcj02"}).json()
    assert page["datum"] == "gcj02" and page["numberMatched"] == 1
    assert page["features"][0] == {
        **{k: v for k, v in stored.items() if k != "datum"},  # the collection names it
        "geometry": {"type": "MultiPolygon", "coordinates": _in_datum(as_stored, "gcj02")},
    }
    tier1 = client.get("/grids", params={"tier": "1", "datum": "bd09"}).json()
    plain1 = client.get("/grids", params={"tier": "1"}).json()
    assert (tier1["datum"], plain1["datum"]) == ("bd09", "cgcs2000")
    assert [f["geometry"]["coordinates"] for f in tier1["features"]] == [
        _in_datum(f["geometry"], "bd09") for f in plain1["features"]
    ]
    assert client.get("/grids", params={"tier": "1", "datum": "wgs84"}).json()["features"] == plain1["features"]
    for path in ("/grids", f"/grids/{code}", "/grids/locate"):  # the same refusal of the same mistakes on each
        bad = client.get(
            path, params={"lon": x, "lat": y, "datum": "mars"} if path.endswith("locate") else {"datum": "mars"}
        )
        assert bad.status_code == 422 and [(i["field"], i["code"]) for i in bad.json()["detail"]["items"]] == [
            ("datum", "literal_error")
        ], path
        typo = client.get(path, params={"dataum": "gcj02"})
        assert typo.status_code == 422 and typo.json()["reason"] == "extra_forbidden", path


def test_locate_names_the_datum_of_the_lon_lat_it_answers_as_cases_do(client: TestClient, clean_db: Engine) -> None:
    """review47 F4: /grids/locate echoed "wgs84" by default while /cases says "cgcs2000" for the same stored frame.
    The default is the storage frame's label on both; a datum sent is echoed with the lon/lat as sent."""
    code, x, y, _ = _a_cell(clean_db)
    default = client.get("/grids/locate", params={"lon": x, "lat": y}).json()
    assert (default["unit_grid"], default["lon"], default["lat"], default["datum"]) == (code, x, y, "cgcs2000")
    wgs = client.get("/grids/locate", params={"lon": x, "lat": y, "datum": "wgs84"}).json()
    assert wgs == {**default, "datum": "wgs84"}  # the same numbers, named as sent
    (gx,), (gy,) = geodesy.from_storage([x], [y], "gcj02")
    gcj = client.get("/grids/locate", params={"lon": gx, "lat": gy, "datum": "gcj02"}).json()
    assert gcj == {**default, "lon": gx, "lat": gy, "datum": "gcj02"}


def test_locate_outside_coverage_is_404_with_reason(client: TestClient) -> None:
    r = client.get("/grids/locate", params={"lon": 116.4, "lat": 39.9})
    assert r.status_code == 404
    assert r.json()["error"] == "not_found" and r.json()["reason"] == "outside_coverage"
    assert "outside the gridded coverage" in r.json()["detail"]["message"]
    assert r.json()["detail"]["items"] == [  # as a report's refusal there (review52 F3d)
        {"field": "lon", "reason": "outside coverage", "code": "outside_coverage"},
        {"field": "lat", "reason": "outside coverage", "code": "outside_coverage"},
    ]


def _just_outside_the_west_edge(engine: Engine, by: float) -> tuple[str, float, float]:
    """A westernmost cell and a point ``by`` degrees west of the middle of its west edge (outside every cell)."""
    from gisgrid.grids import store

    with engine.connect() as conn:
        cells = store.load_unit_grids(conn)
    cell = cells.iloc[int(np.argmin(cells.geometry.bounds["minx"].to_numpy()))]
    ring = np.asarray(shapely.get_coordinates(cell.geometry))
    west = ring[np.argsort(ring[:, 0])[:2]]  # the two vertices of the west edge
    x, y = west.mean(axis=0)
    assert not shapely.intersects(cells.geometry, shapely.Point(x - by, y)).any()
    return cell["code"], float(x - by), float(y)


def test_a_point_on_the_coverage_edge_within_a_centimetre_is_located_like_a_component(
    client: TestClient, clean_db: Engine, settings: Settings, tmp_path: Path
) -> None:
    """review23 D1: cutting leaves slivers of square centimetres uncovered along a unit's boundary; a point on a
    street corner there (a component's own position, which the component import places in the cell next to it)
    was "outside the gridded coverage" for /grids/locate and intake, the message blaming the datum. Both now take
    the cells within POSITION_TOLERANCE_DEG (≈ 1 cm) when none covers it; 2 µ° (≈ 20 cm) out is still outside."""
    from gisgrid import case_intake
    from gisgrid import cases as svc

    code, x, y = _just_outside_the_west_edge(clean_db, 5e-8)
    located = client.get("/grids/locate", params={"lon": x, "lat": y, "datum": "cgcs2000"})
    assert (located.status_code, located.json()["unit_grid"]) == (200, code)
    services = svc.load_services(settings.model_copy(update={"data_dir": tmp_path / "data"}))
    svc.sync_reference_data(clean_db, services)
    case_id, _ = case_intake.intake(
        clean_db, services, case_intake.Intake(class_code="06010", lon=x, lat=y, datum="cgcs2000")
    )
    with clean_db.connect() as conn:
        stored = conn.execute(text("SELECT unit_grid_code FROM cases WHERE id = :i"), {"i": case_id}).scalar_one()
    assert stored == code

    _, far_x, far_y = _just_outside_the_west_edge(clean_db, 2e-6)
    outside = client.get("/grids/locate", params={"lon": far_x, "lat": far_y, "datum": "cgcs2000"})
    assert (outside.status_code, outside.json()["reason"]) == (404, "outside_coverage")
    with pytest.raises(svc.InvalidInput) as refused:
        case_intake.intake(
            clean_db, services, case_intake.Intake(class_code="06010", lon=far_x, lat=far_y, datum="cgcs2000")
        )
    assert refused.value.reason == "outside_coverage"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"lon": "abc", "lat": 34.7}, "lon"),
        ({"lon": 113.6, "lat": 95}, "lat"),
        ({"lon": 113.6}, "lat"),
        ({"lon": 113.6, "lat": 34.7, "datum": "mars"}, "datum"),
    ],
)
def test_locate_bad_numbers_are_422_naming_the_field(client: TestClient, params: dict, field: str) -> None:
    r = client.get("/grids/locate", params=params)
    assert r.status_code == 422
    assert r.json()["error"] == "invalid_input"
    assert field in [item["field"] for item in r.json()["detail"]["items"]]
    assert all(item["code"] for item in r.json()["detail"]["items"])  # pydantic's type: float_parsing, missing …


@pytest.mark.parametrize(
    ("bbox", "reason"),
    [
        ("1,2,3", "bbox_unreadable"),
        ("a,b,c,d", "bbox_unreadable"),
        ("114,35,113,34", "bbox_out_of_range"),
        ("0,0,200,10", "bbox_out_of_range"),
        ("113.6,34.7,113.6,34.8", "bbox_out_of_range"),  # review25 G4: no width
        ("113.6,34.7,113.8,34.7", "bbox_out_of_range"),  # no height
    ],
)
def test_bad_bbox_is_422(client: TestClient, bbox: str, reason: str) -> None:
    r = client.get("/grids", params={"bbox": bbox})
    assert r.status_code == 422 and r.json()["error"] == "invalid_input" and r.json()["reason"] == reason
    [item] = r.json()["detail"]["items"]
    assert (item["field"], item["code"]) == ("bbox", reason) and item["reason"]


def test_bad_paging_is_422(client: TestClient) -> None:
    """Each refused by its field, with its bound or choices."""
    refused = [
        ({"limit": 0}, "greater_than_equal", "Input should be greater than or equal to 1", {"limit": {"ge": 1}}),
        ({"limit": 5001}, "less_than_equal", "Input should be less than or equal to 5000", {"limit": {"le": 5000}}),
        ({"offset": -1}, "greater_than_equal", "Input should be greater than or equal to 0", {"limit": {"ge": 0}}),
        ({"tier": "4"}, "literal_error", "Input should be 'unit', '1', '2' or '3'", {}),
    ]
    for params, code, reason, extra in refused:
        r = client.get("/grids", params=params)
        assert r.status_code == 422 and (r.json()["error"], r.json()["reason"]) == ("invalid_input", code), r.text
        [field] = params
        assert r.json()["detail"] == {
            "message": f"{field}: {reason}",
            "items": [{"field": field, "reason": reason, "code": code, **extra}],
        }


def test_bbox_means_intersecting_the_box_not_its_bounding_rectangle(client: TestClient, clean_db: Engine) -> None:
    """A tiny box inside one street: only that street, though the other's bounding rectangle may cover it too."""
    _code, x, y, tier3 = _a_cell(clean_db)
    box = (x - 1e-5, y - 1e-5, x + 1e-5, y + 1e-5)
    with clean_db.connect() as conn:
        expected = {
            tier: set(
                conn.execute(
                    text(
                        "SELECT code FROM management_grids WHERE tier = :t AND "
                        "ST_Intersects(geom, ST_MakeEnvelope(:a, :b, :c, :d, 4490))"
                    ),
                    {"t": tier, "a": box[0], "b": box[1], "c": box[2], "d": box[3]},
                ).scalars()
            )
            for tier in (1, 2, 3)
        }
    for tier in (1, 2, 3):
        body = client.get("/grids", params={"tier": str(tier), "bbox": ",".join(map(str, box))}).json()
        assert {f["id"] for f in body["features"]} == expected[tier] and body["numberMatched"] == len(expected[tier])
    assert expected[3] == {tier3}


def test_relocating_components_is_stable_on_shared_edges_and_clears_a_vanished_grid(
    client: TestClient, clean_db: Engine
) -> None:
    from gisgrid.grids.store import relocate_components

    with clean_db.begin() as conn:
        # A vertex shared by two or more unit grids, and a component standing on it.
        x, y = conn.execute(
            text(
                "SELECT ST_X(p), ST_Y(p) FROM (SELECT (ST_DumpPoints(geom)).geom AS p FROM unit_grids) v "
                "WHERE (SELECT count(*) FROM unit_grids g WHERE ST_Intersects(g.geom, v.p)) >= 2 LIMIT 1"
            )
        ).one()
        lowest = conn.execute(
            text("SELECT min(code) FROM unit_grids WHERE ST_Intersects(geom, ST_SetSRID(ST_MakePoint(:x, :y), 4490))"),
            {"x": x, "y": y},
        ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO components (id, class_code, main_dept_code, district_code, geom) VALUES "
                "('41990201001999001', '01001', '990000000000000001', :d, ST_SetSRID(ST_MakePoint(:x, :y), 4490))"
            ),
            {"d": DISTRICT, "x": x, "y": y},
        )
        relocate_components(conn)
        code = lambda: conn.execute(  # noqa: E731
            text("SELECT unit_grid_code FROM components WHERE id = '41990201001999001'")
        ).scalar_one()
        assert code() == lowest
        assert relocate_components(conn) == 0 and code() == lowest  # nothing changed, nothing moves
        inside = conn.execute(
            text("SELECT count(*) FROM components WHERE unit_grid_code = :g"), {"g": lowest}
        ).scalar_one()
        conn.execute(text("DELETE FROM unit_grids WHERE code = :g"), {"g": lowest})
        moved = relocate_components(conn)
        assert moved >= 1 and code() != lowest  # the next grid covering the vertex, or none
        left = text("SELECT count(*) FROM components WHERE unit_grid_code = :g")
        assert conn.execute(left, {"g": lowest}).scalar_one() == 0
        assert inside >= 1
        conn.rollback()


# -- review23 D2: RFC 7946 rings and media type ------------------------------------------------------------------


def _store_clockwise_with_a_hole(engine: Engine, code: str, tier: int | None = None) -> None:
    """Rewrite a stored grid as a clockwise exterior with a counter-clockwise hole and a vertex 1e-9° from its
    neighbour (repeated once rounded to 7 decimals)."""
    table = "unit_grids" if tier is None else "management_grids"
    with engine.begin() as conn:
        x0, y0, x1, y1 = conn.execute(
            text(f"SELECT ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) FROM {table} WHERE code = :c"),
            {"c": code},
        ).one()
        mx, my, dx, dy = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 10, (y1 - y0) / 10
        exterior = [(x0, y0), (x0, y1), (x1, y1), (x1 + 1e-9, y1), (x1, y0), (x0, y0)]  # clockwise
        hole = [(mx, my), (mx + dx, my), (mx + dx, my + dy), (mx, my + dy), (mx, my)]  # counter-clockwise
        geom = shapely.MultiPolygon([shapely.Polygon(exterior, [hole])])
        assert not shapely.Polygon(exterior).exterior.is_ccw and shapely.LinearRing(hole).is_ccw
        conn.execute(
            text(f"UPDATE {table} SET geom = ST_GeomFromText(:w, 4490) WHERE code = :c"),
            {"w": geom.wkt, "c": code},
        )
        assert conn.execute(text(f"SELECT ST_IsPolygonCW(geom) FROM {table} WHERE code = :c"), {"c": code}).scalar()


def _ring_checks(geometry: dict) -> tuple[list[bool], list[bool], int]:
    """(exteriors CCW, holes CCW, repeated consecutive vertices) of a GeoJSON (Multi)Polygon."""
    polygons = geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [geometry["coordinates"]]
    outer = [shapely.LinearRing(p[0]).is_ccw for p in polygons]
    holes = [shapely.LinearRing(r).is_ccw for p in polygons for r in p[1:]]
    repeats = sum(a == b for p in polygons for r in p for a, b in itertools.pairwise(r))
    return outer, holes, repeats


def test_grid_geojson_follows_the_right_hand_rule_whatever_the_stored_orientation(
    client: TestClient, clean_db: Engine
) -> None:
    code, *_ = _a_cell(clean_db)
    with clean_db.connect() as conn:
        tier1 = conn.execute(text("SELECT code FROM management_grids WHERE tier = 1 ORDER BY code LIMIT 1")).scalar()
    _store_clockwise_with_a_hole(clean_db, code)
    _store_clockwise_with_a_hole(clean_db, tier1, tier=1)

    one = client.get(f"/grids/{code}")
    assert one.status_code == 200 and one.headers["content-type"] == "application/geo+json"
    geometry = one.json()["geometry"]
    assert geometry["type"] == "MultiPolygon"
    assert _ring_checks(geometry) == ([True], [False], 0)  # exterior CCW, hole CW, no vertex repeated by rounding
    assert len(geometry["coordinates"][0][0]) == 5  # the 1e-9° vertex dropped, the square kept

    listed = client.get("/grids", params={"limit": 1000})
    assert listed.headers["content-type"] == "application/geo+json"
    features = listed.json()["features"]
    assert next(f for f in features if f["id"] == code)["geometry"] == geometry
    for f in features:
        outer, holes, repeats = _ring_checks(f["geometry"])
        assert all(outer) and not any(holes) and repeats == 0, f["id"]

    tier = client.get(f"/grids/{tier1}").json()["geometry"]
    assert _ring_checks(tier) == ([True], [False], 0)
    assert (
        next(f for f in client.get("/grids", params={"tier": "1"}).json()["features"] if f["id"] == tier1)["geometry"]
        == tier
    )


def test_grid_errors_stay_json_and_locate_is_not_geojson(client: TestClient, clean_db: Engine) -> None:
    missing = client.get("/grids/999999999999999")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/json"
    _, x, y, _ = _a_cell(clean_db)
    located = client.get("/grids/locate", params={"lon": x, "lat": y, "datum": "cgcs2000"})
    assert located.status_code == 200 and located.headers["content-type"] == "application/json"
