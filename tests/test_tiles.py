"""GET /tiles/{layer}/{z}/{x}/{y}.mvt against a stored small district, decoded with mapbox-vector-tile."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import asyncpg
import mapbox_vector_tile
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.deps import DATABASE_UNAVAILABLE, AsyncPool
from api.main import create_app
from api.routers import tiles as tiles_router
from gisgrid.settings import STORAGE_SRID, Settings
from gisgrid.storage.database import asyncpg_connect_args
from maps import tiles_sql
from tests.fixtures import STREETS, host_port, load_small_district, outage_logged_not_sent, run_async
from tests.test_components_store import inside_points

MVT = "application/vnd.mapbox-vector-tile"
WHO = {"X-Actor": quote("李娜"), "X-Role": "data_admin"}


@pytest.fixture
def client(clean_db: Engine, settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    load_small_district(clean_db, tmp_path)
    with TestClient(create_app(settings.model_copy(update={"data_dir": tmp_path / "data"}))) as c:
        yield c


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def district_tile(engine: Engine) -> tuple[int, int, int]:
    """The highest zoom whose one tile covers the whole district."""
    with engine.connect() as conn:
        x0, y0, x1, y1 = conn.execute(
            text(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
                "FROM (SELECT ST_Extent(geom) e FROM admin_units) s"
            )
        ).one()
    for z in range(16, 0, -1):
        if tile_of(x0, y1, z) == tile_of(x1, y0, z):
            return (z, *tile_of(x0, y1, z))
    raise AssertionError("no single tile covers the district")


def count(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def get_layer(client: TestClient, layer: str, z: int, x: int, y: int) -> list[dict]:
    r = client.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == MVT
    spec = tiles_sql.LAYERS[layer]  # grids in a shared cache; the operational layers in the browser's own only
    assert r.headers["cache-control"] == f"{'public' if spec.shared_cache else 'private'}, max-age={spec.max_age}"
    decoded = mapbox_vector_tile.decode(r.content)
    if not r.content:
        return []
    assert list(decoded) == [layer]  # the MVT layer name is the URL layer name (VectorGrid styles key on it)
    assert decoded[layer]["extent"] == 4096
    return decoded[layer]["features"]


def test_unit_grid_tile_holds_every_cell_with_its_codes(client: TestClient, clean_db: Engine) -> None:
    z, x, y = district_tile(clean_db)
    features = get_layer(client, "unit_grids", z, x, y)
    total = count(clean_db, "SELECT count(*) FROM unit_grids")
    assert total > 20 and len(features) == total
    props = features[0]["properties"]
    assert set(props) == {"code", "street_code", "community_code", "tier3_code"}
    assert len(props["code"]) == 15 and props["code"].startswith(props["community_code"])
    assert {f["geometry"]["type"] for f in features} <= {"Polygon", "MultiPolygon"}


def test_unit_grids_and_their_component_counts_have_no_tile_below_zoom_12(client: TestClient, clean_db: Engine) -> None:
    """Below z12 a tile of a district's ~100 m cells would be cut at the feature cap (a grid with holes): empty,
    no query; the tiers are the overview there. From z12 the same place has its cells."""
    z, x, y = district_tile(clean_db)
    assert z >= 12
    for layer in ("unit_grids", "component_cells"):
        below = client.get(f"/tiles/{layer}/11/{x >> (z - 11)}/{y >> (z - 11)}.mvt")
        assert (below.status_code, below.content, below.headers["content-type"]) == (200, b"", MVT)
    assert len(get_layer(client, "unit_grids", 12, x >> (z - 12), y >> (z - 12))) == count(
        clean_db, "SELECT count(*) FROM unit_grids"
    )
    assert get_layer(client, "tier1", 11, x >> (z - 11), y >> (z - 11)) != []


def test_tier_tiles_hold_the_three_tiers_with_chinese_names(client: TestClient, clean_db: Engine) -> None:
    z, x, y = district_tile(clean_db)
    tier1 = get_layer(client, "tier1", z, x, y)
    assert sorted(f["properties"]["code"] for f in tier1) == list(STREETS)
    assert {f["properties"]["name"] for f in tier1} == {"西城街道", "东关街道"}
    assert set(tier1[0]["properties"]) == {"code", "tier", "name"} and tier1[0]["properties"]["tier"] == 1
    tier2 = get_layer(client, "tier2", z, x, y)
    assert len(tier2) == 3 and set(tier2[0]["properties"]) == {"code", "tier", "name", "parent_code"}
    tier3 = get_layer(client, "tier3", z, x, y)
    assert len(tier3) == count(clean_db, "SELECT count(*) FROM management_grids WHERE tier = 3") > 0
    assert all(len(f["properties"]["code"]) == 14 for f in tier3)


def test_a_tile_beside_the_district_is_empty(client: TestClient, clean_db: Engine) -> None:
    z, x, y = district_tile(clean_db)
    assert get_layer(client, "unit_grids", z, x + 2, y) == []
    # a tile under GZIP_MIN_BYTES goes as it is: gzip would cost both ends more than it saves (review33 S15)
    r = client.get(f"/tiles/unit_grids/{z}/{x + 2}/{y}.mvt", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and "content-encoding" not in r.headers
    assert len(r.content) < tiles_router.GZIP_MIN_BYTES


def test_components_only_from_zoom_13(client: TestClient) -> None:
    xs, ys = inside_points(3, seed=5)
    for lon, lat in zip(xs, ys, strict=True):
        r = client.post(
            "/components", json={"class_code": "01037", "lon": lon, "lat": lat, "datum": "cgcs2000"}, headers=WHO
        )
        assert r.status_code == 201, r.text
    lon, lat = float(xs[0]), float(ys[0])
    x12, y12 = tile_of(lon, lat, 12)
    r = client.get(f"/tiles/components/12/{x12}/{y12}.mvt")
    assert r.status_code == 200 and r.content == b"" and r.headers["content-type"] == MVT
    x, y = tile_of(lon, lat, 13)
    features = get_layer(client, "components", 13, x, y)
    assert 1 <= len(features) <= 3
    assert set(features[0]["properties"]) >= {"id", "class_code", "status"}
    assert features[0]["properties"]["class_code"] == "01037" and features[0]["geometry"]["type"] == "Point"


def test_component_cells_tile_counts_components_per_unit_grid(client: TestClient, clean_db: Engine) -> None:
    xs, ys = inside_points(40, seed=9)
    for lon, lat in zip(xs, ys, strict=True):
        r = client.post(
            "/components", json={"class_code": "01037", "lon": lon, "lat": lat, "datum": "cgcs2000"}, headers=WHO
        )
        assert r.status_code == 201, r.text
    z, x, y = district_tile(clean_db)
    features = get_layer(client, "component_cells", z, x, y)
    with clean_db.connect() as conn:
        per_grid = dict(
            conn.execute(text("SELECT unit_grid_code, count(*) FROM components GROUP BY unit_grid_code")).all()
        )
    assert {f["properties"]["id"]: f["properties"]["n"] for f in features} == per_grid
    assert sum(f["properties"]["n"] for f in features) == 40
    assert {f["geometry"]["type"] for f in features} == {"Point"}


def report_cases(client: TestClient, n: int, seed: int) -> list[int]:
    """``n`` cases of class 06010 reported through the API at points inside the district; their ids."""
    xs, ys = inside_points(n, seed=seed)
    ids = []
    for lon, lat in zip(xs, ys, strict=True):
        r = client.post(
            "/cases",
            json={"class_code": "06010", "lon": lon, "lat": lat, "datum": "cgcs2000"},
            headers={"X-Role": "supervisor"},
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return ids


def test_cases_tile_has_colour_ready_attributes(client: TestClient, clean_db: Engine) -> None:
    ids = report_cases(client, 2, seed=21)
    z, x, y = district_tile(clean_db)
    features = get_layer(client, "cases", z, x, y)
    assert sorted(f["properties"]["id"] for f in features) == sorted(ids)
    assert sorted(f["id"] for f in features) == sorted(ids)  # also the MVT feature id
    props = features[0]["properties"]
    assert {"id", "state", "class_code", "due_at", "due_epoch", "clock"} <= set(props)
    assert props["state"] == "reported" and props["class_code"] == "06010" and props["clock"] is True
    assert props["due_at"].endswith("Z") and props["due_epoch"] > 1_600_000_000
    with clean_db.begin() as conn:
        conn.execute(text("UPDATE cases SET state = 'closed' WHERE id = :i"), {"i": ids[0]})
    closed = next(f for f in get_layer(client, "cases", z, x, y) if f["properties"]["id"] == ids[0])
    assert closed["properties"]["clock"] is False


def test_a_capped_cases_tile_keeps_the_most_urgent_cases(client: TestClient, clean_db: Engine) -> None:
    closed, later, overdue, sooner = report_cases(client, 4, seed=22)
    with clean_db.begin() as conn:
        conn.execute(text("UPDATE cases SET state = 'closed' WHERE id = :i"), {"i": closed})
        conn.execute(text("UPDATE cases SET due_at = now() + interval '3 days' WHERE id = :i"), {"i": later})
        conn.execute(text("UPDATE cases SET due_at = now() - interval '1 hour' WHERE id = :i"), {"i": overdue})
        conn.execute(text("UPDATE cases SET due_at = now() + interval '1 day' WHERE id = :i"), {"i": sooner})
    z, x, y = district_tile(clean_db)
    spec = tiles_sql.LAYERS["cases"]
    kept = {
        cap: [
            f["id"]
            for f in mapbox_vector_tile.decode(run_async(capped_tile(clean_db, spec, z, x, y, cap)))["cases"][
                "features"
            ]
        ]
        for cap in (1, 2, 3, 4)
    }
    # Kept: running clocks first, the most overdue first; drawn in the reverse order, so the most urgent is on top.
    assert kept[1] == [overdue]
    assert kept[2] == [sooner, overdue]
    assert kept[3] == [later, sooner, overdue]
    assert kept[4] == [closed, later, sooner, overdue]  # the case without a clock is the first left out
    below = client.get(f"/tiles/cases/11/{x >> (z - 11)}/{y >> (z - 11)}.mvt")  # an overview: the heat map's
    assert below.status_code == 200 and below.content == b""


@pytest.mark.parametrize(
    "path",
    [
        "/tiles/roads/12/3000/1500.mvt",  # unknown layer
        "/tiles/unit_grids/23/0/0.mvt",  # zoom above 22
        "/tiles/unit_grids/2/4/0.mvt",  # x ≥ 2^z
        "/tiles/unit_grids/2/0/4.mvt",
        "/tiles/unit_grids/2/-1/0.mvt",
        "/tiles/unit_grids/a/0/0.mvt",
        "/tiles/unit_grids/1/0/0.png",
    ],
)
def test_unknown_layer_or_tile_is_404_json(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404
    assert r.json()["error"] == "not_found"


def test_404_names_the_layers(client: TestClient) -> None:
    body = client.get("/tiles/roads/0/0/0.mvt").json()
    assert "roads" in body["detail"] and "unit_grids" in body["detail"]


async def capped_tile(engine: Engine, spec: tiles_sql.Layer, z: int, x: int, y: int, max_features: int) -> bytes:
    conn = await asyncpg.connect(
        **asyncpg_connect_args(engine.url), server_settings=dict(tiles_sql.TILE_SESSION_SETTINGS)
    )
    try:
        return await tiles_sql.fetch_tile_async(conn, spec, z, x, y, srid=STORAGE_SRID, max_features=max_features)
    finally:
        await conn.close()


def test_feature_cap_and_index_use(client: TestClient, clean_db: Engine) -> None:
    z, x, y = district_tile(clean_db)
    spec = tiles_sql.LAYERS["unit_grids"]
    capped = run_async(capped_tile(clean_db, spec, z, x, y, max_features=5))
    assert len(mapbox_vector_tile.decode(capped)["unit_grids"]["features"]) == 5
    with clean_db.connect() as conn:
        # The envelope is transformed to the storage SRID in WHERE, so the GiST index answers it.
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        plan = conn.execute(
            text("EXPLAIN " + tiles_sql.tile_sql(spec, z, STORAGE_SRID)),
            {"z": z, "x": x, "y": y, "margin": 64 / 4096, "cap": 10, "tol": 1.0},
        ).scalars()
        assert "idx_unit_grids_geom" in "\n".join(plan)


def test_parse_tile_bounds() -> None:
    assert tiles_sql.parse_tile("tier1", "0", "0", "0")[1:] == (0, 0, 0)
    assert tiles_sql.parse_tile("cases", "22", str(2**22 - 1), "0")[1:] == (22, 2**22 - 1, 0)
    for args in [("tier1", "1", "2", "0"), ("tier1", "٣", "0", "0"), ("tier1", "+1", "0", "0"), ("x", "0", "0", "0")]:
        with pytest.raises(tiles_sql.TileNotFound):
            tiles_sql.parse_tile(*args)


def test_tiles_are_gzipped_when_the_client_accepts_it(client: TestClient, clean_db: Engine) -> None:
    z, x, y = district_tile(clean_db)
    url = f"/tiles/unit_grids/{z}/{x}/{y}.mvt"
    plain = client.get(url, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and len(plain.content) > tiles_router.GZIP_MIN_BYTES
    packed = client.get(url, headers={"Accept-Encoding": "gzip, deflate"})
    assert packed.headers["content-encoding"] == "gzip" and packed.headers["vary"] == "Accept-Encoding"
    assert int(packed.headers["content-length"]) < len(plain.content) / 2
    assert packed.content == plain.content  # decoded by the client: the same MVT bytes


def test_a_tile_the_client_holds_is_answered_304_by_its_etag(client: TestClient, clean_db: Engine) -> None:
    """A weak ETag of the tile's content, the same gzipped or not; If-None-Match naming it (or *) is a 304 with no
    body, another tag the tile itself."""
    z, x, y = district_tile(clean_db)
    url = f"/tiles/unit_grids/{z}/{x}/{y}.mvt"
    plain = client.get(url, headers={"Accept-Encoding": "identity"})
    packed = client.get(url, headers={"Accept-Encoding": "gzip"})
    etag = plain.headers["etag"]
    assert re.fullmatch(r'W/"[0-9a-f]{24}"', etag) and packed.headers["etag"] == etag
    assert etag == 'W/"' + hashlib.blake2b(plain.content, digest_size=12).hexdigest() + '"'
    for held in (etag, etag.removeprefix("W/"), f'"other", {etag}', "*"):
        again = client.get(url, headers={"If-None-Match": held, "Accept-Encoding": "gzip"})
        assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag), held
        assert again.headers["cache-control"] == plain.headers["cache-control"] == "public, max-age=60"
    changed = client.get(url, headers={"If-None-Match": 'W/"0123456789abcdef01234567"'})
    assert changed.status_code == 200 and changed.content == plain.content
    cases = client.get(f"/tiles/cases/{z}/{x}/{y}.mvt")
    assert cases.headers["cache-control"] == "private, max-age=10" and cases.headers["etag"]


def test_a_tile_is_503_when_the_database_is_down_its_reason_only_logged(
    unreachable_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="gisgrid.api"), TestClient(create_app(unreachable_settings)) as c:
        r = c.get("/tiles/unit_grids/14/13367/6503.mvt")
        assert c.get("/tiles/nolayer/14/13367/6503.mvt").status_code == 404  # checked before the database
    assert r.status_code == 503 and r.headers["cache-control"] == "no-store"
    assert r.json()["error"] == "database_error"
    line = outage_logged_not_sent(r.json(), r.json()["detail"], caplog.records, host_port(unreachable_settings))
    assert line.startswith("GET /tiles/unit_grids/14/13367/6503.mvt: 503 database_error ref=")
    assert "tile unit_grids/14/13367/6503: cannot connect to PostgreSQL at " in line


def test_the_fast_path_and_the_documented_route_answer_alike(
    clean_db: Engine, settings: Settings, tmp_path: Path
) -> None:
    """Tiles are served by a middleware in front of FastAPI; the route in the OpenAPI document answers the same."""
    load_small_district(clean_db, tmp_path)
    z, x, y = district_tile(clean_db)
    answers = []
    for fast in (True, False):
        app = create_app(settings.model_copy(update={"data_dir": tmp_path / "data"}))
        assert any(m.cls is tiles_router.TileFastPath for m in app.user_middleware)
        if not fast:
            app.user_middleware = [m for m in app.user_middleware if m.cls is not tiles_router.TileFastPath]
        with TestClient(app) as c:
            ok = c.get(f"/tiles/unit_grids/{z}/{x}/{y}.mvt")
            missing = c.get("/tiles/unit_grids/99/0/0.mvt")
            held = c.get(f"/tiles/unit_grids/{z}/{x}/{y}.mvt", headers={"If-None-Match": ok.headers["etag"]})
            answers.append(
                (ok.status_code, ok.content, ok.headers["content-encoding"], missing.status_code, missing.json(),
                 held.status_code, held.headers["etag"])
            )  # fmt: skip
    assert answers[0] == answers[1]
    assert answers[0][3] == 404 and "zoom must be 0–22" in answers[0][4]["detail"] and answers[0][5] == 304


async def pinned_pool_story(engine: Engine) -> dict[str, object]:
    """Overlapping statements, a pinned connection killed by the server, and close — on a real pool."""
    pool = AsyncPool(engine.url, 3, application_name="gisgrid-pin-test", server_settings={})
    seen: dict[str, object] = {}
    try:
        first = await pool.fetchval("SELECT pg_backend_pid()")
        seen["same_again"] = await pool.fetchval("SELECT pg_backend_pid()") == first
        # Two at once: one on the pinned connection, the other on a pooled one; both answered.
        a, b = await asyncio.gather(
            pool.fetchval("SELECT pg_backend_pid() FROM pg_sleep(0.2)"), pool.fetchval("SELECT pg_backend_pid()")
        )
        seen["overlap"] = (a == first, b != first)
        # The server ends the idle pinned session (a restart, an administrator): the next tile is answered on a
        # new connection, not refused.
        killer = await asyncpg.connect(**asyncpg_connect_args(engine.url))
        try:
            await killer.execute(f"SELECT pg_terminate_backend({int(first)})")
        finally:
            await killer.close()
        await asyncio.sleep(0.5)  # the backend's goodbye reaches the client
        try:
            await pool.fetchval("SELECT 1")
            seen["after_kill"] = "answered"
        except DATABASE_UNAVAILABLE as exc:
            seen["after_kill"] = type(exc).__name__
        second = await pool.fetchval("SELECT pg_backend_pid()")
        seen["replaced"] = second not in (first, None)
        # Ended with no time for its goodbye to arrive (review34): the read is sent once more, on a pooled
        # connection — answered, not a 500 or 503.
        with engine.connect() as sync:  # blocking this loop: the pinned connection cannot read the goodbye
            sync.execute(text("SELECT pg_terminate_backend(:p, 5000)"), {"p": int(second)})  # waits for its end
        try:
            seen["at_once"] = await pool.fetchval("SELECT 41 + 1")
        except Exception as exc:  # reported below
            seen["at_once"] = type(exc).__name__
    finally:
        # a pinned connection close did not give back would hold the pool's close for ever
        await asyncio.wait_for(pool.close(), 10)
    return seen


def test_the_tile_pool_pins_one_connection_and_replaces_it_when_the_server_ends_it(clean_db: Engine) -> None:
    seen = run_async(pinned_pool_story(clean_db))
    assert seen["same_again"] is True
    assert seen["overlap"] == (True, True)
    assert seen["after_kill"] == "answered"
    assert seen["replaced"] is True
    assert seen["at_once"] == 42
    # close gave the pinned connection back and closed it: no session left behind (a backend leaves
    # pg_stat_activity when its process has ended, a moment after the client's goodbye)
    deadline = time.monotonic() + 30  # polled: a busy server takes longer than the 5 s once allowed
    while True:
        with clean_db.connect() as conn:
            left = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE application_name = 'gisgrid-pin-test' AND datname = current_database()"
                )
            ).scalar_one()
        if left == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert left == 0


def test_the_tile_pool_pins_a_connection_of_each_event_loop_it_serves(clean_db: Engine) -> None:
    """review33 S17: a pool used from a second event loop (tests, an embedding app) pins a connection of its new
    pool, never one of the closed loop's."""
    pool = AsyncPool(clean_db.url, 2, application_name="gisgrid-pin-loops", server_settings={})

    async def pid() -> tuple[int, object]:
        return int(await pool.fetchval("SELECT pg_backend_pid()")), pool._pinned

    first_pid, first_pinned = run_async(pid())  # its loop ends with the thread: that pool is gone with it
    second_pid, second_pinned = run_async(pid())
    run_async(pool.close())
    assert second_pinned is not first_pinned and second_pinned is not None
    assert isinstance(first_pid, int) and isinstance(second_pid, int)


def test_a_pool_of_one_connection_serves_overlapping_tiles(clean_db: Engine) -> None:
    """review34 D1: with GISGRID_DB_POOL_SIZE=1 the pinned connection was the only one, and an overlapping tile
    waited for a second for ever; such a pool pins none."""

    async def overlap() -> list[int]:
        pool = AsyncPool(clean_db.url, 1, application_name="gisgrid-pin-one", server_settings={})
        try:
            return await asyncio.wait_for(
                asyncio.gather(*(pool.fetchval("SELECT $1::int FROM pg_sleep(0.05)", k) for k in range(4))), 10
            )
        finally:
            await asyncio.wait_for(pool.close(), 10)

    assert run_async(overlap()) == [0, 1, 2, 3]


def test_gzip_is_what_the_client_accepts() -> None:
    """review34: ``gzip;q=0`` refuses gzip (it was a substring test)."""
    accepts = tiles_router.accepts_gzip
    assert accepts("gzip, deflate, br") and accepts("br;q=1.0, gzip;q=0.8") and accepts("*")
    assert not accepts("gzip;q=0") and not accepts("identity") and not accepts("") and not accepts("x-gzip2")
    assert not accepts("gzip;q=zero")
    assert not accepts("*;q=1, gzip;q=0") and accepts("gzip;level=1;q=0.5") and not accepts("*;q=0")
