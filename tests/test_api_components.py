"""/components: create, read, update (status, move), retire, history; queries; every refusal names its field."""

from __future__ import annotations

import io
from urllib.parse import quote

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from httpx2 import Response
from PIL import Image
from sqlalchemy import Engine, text

from tests.fixtures import DISTRICT
from tests.test_components_store import inside_points

WHO = {"X-Actor": quote("李娜"), "X-Role": "data_admin"}  # non-ASCII header values are percent-encoded


@pytest.fixture
def client(district_api: TestClient) -> TestClient:
    return district_api


@pytest.fixture
def spot() -> tuple[float, float]:
    xs, ys = inside_points(1, seed=11)
    return float(xs[0]), float(ys[0])


def test_only_the_data_post_changes_the_inventory_and_anyone_reads_it(
    client: TestClient, spot: tuple[float, float]
) -> None:
    x, y = spot
    lamp = {"class_code": "01037", "lon": x, "lat": y, "datum": "cgcs2000"}
    cid = client.post("/components", json=lamp, headers=WHO).json()["id"]
    writes = [
        ("post", "/components", {"json": lamp}),
        ("patch", f"/components/{cid}", {"json": {"status": "破损", "version": 1}}),
        ("post", f"/components/{cid}/retire", {"json": {"reason": "拆除", "version": 1}}),
        ("post", f"/components/{cid}/photos", {"files": [("photos", ("a.jpg", b"x", "image/jpeg"))]}),
    ]
    for method, url, kw in writes:
        anonymous = getattr(client, method)(url, **kw)
        assert anonymous.status_code == 422 and anonymous.json()["reason"] == "missing", (url, anonymous.text)
        assert anonymous.json()["detail"]["items"] == [
            {"field": "X-Role", "reason": "missing: say which role acts", "code": "missing"}
        ]
        supervisor = getattr(client, method)(url, headers={"X-Role": "supervisor"}, **kw)
        assert supervisor.status_code == 403 and supervisor.json() == {
            "error": "role_not_allowed",
            "reason": "role_not_allowed",
            "detail": {
                "message": "changing components is not allowed for role 'supervisor' (监督员); "
                "allowed roles: data_admin (部件数据管理员)",
                "items": [
                    {
                        "field": "X-Role",
                        "reason": "not allowed to change components",
                        "code": "role_not_allowed",
                        "role": "supervisor",
                        "allowed_roles": ["data_admin"],
                    }
                ],
            },
        }, url
        unknown = getattr(client, method)(url, headers={"X-Role": "boss"}, **kw)
        assert unknown.status_code == 403 and "'boss' (unknown role)" in unknown.json()["detail"]["message"]
    got = client.get(f"/components/{cid}")  # no role needed to read
    assert got.status_code == 200 and got.json()["properties"]["version"] == 1  # nothing refused was written
    assert client.get(f"/components/{cid}/history").json()["history"][-1]["action"] == "create"
    assert client.get("/components", params={"class_code": "01037"}).json()["numberMatched"] == 1


def test_create_read_update_retire_and_history(client: TestClient, spot: tuple[float, float]) -> None:
    x, y = spot
    r = client.post("/components", json={"class_code": "01037", "lon": x, "lat": y, "datum": "cgcs2000"}, headers=WHO)
    assert r.status_code == 201, r.text
    feature = r.json()
    cid = feature["id"]
    assert cid == f"{DISTRICT}01037000001"
    props = feature["properties"]
    assert props["name"] == "路灯" and props["status"] == "完好" and props["version"] == 1
    assert len(props["unit_grid_code"]) == 15 and props["main_dept_name"]

    got = client.get(f"/components/{cid}").json()
    assert got["geometry"]["coordinates"] == pytest.approx([x, y], abs=1e-7)

    broken = client.patch(f"/components/{cid}", json={"status": "破损", "version": 1}, headers=WHO)
    assert broken.status_code == 200 and broken.json()["properties"]["status"] == "破损"
    assert broken.json()["properties"]["version"] == 2

    moved = client.patch(
        f"/components/{cid}", json={"lon": x + 0.0003, "lat": y, "datum": "cgcs2000", "version": 2}, headers=WHO
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["geometry"]["coordinates"][0] == pytest.approx(x + 0.0003, abs=1e-7)

    stale = client.patch(f"/components/{cid}", json={"status": "完好", "version": 1}, headers=WHO)
    assert stale.status_code == 409 and stale.json()["error"] == "stale_version"  # as a case's (review44 D4)

    retired = client.post(f"/components/{cid}/retire", json={"reason": "道路改造拆除"}, headers=WHO)
    assert retired.status_code == 200 and retired.json()["properties"]["status"] == "移除"
    again = client.post(f"/components/{cid}/retire", json={"reason": "x"}, headers=WHO)
    assert again.status_code == 409 and again.json()["reason"] == "component_retired"

    history = client.get(f"/components/{cid}/history").json()["history"]
    assert [h["action"] for h in history] == ["create", "update", "update", "retire"]
    assert history[1]["changes"] == {"status": ["完好", "破损"]}
    assert set(history[2]["changes"]) >= {"geom"}
    assert history[3]["changes"] == {"status": ["破损", "移除"]}
    assert (history[3]["source"], history[3]["reason"]) == ("api", "道路改造拆除")  # review44 U5: not as source
    assert {h["actor"] for h in history} == {"李娜"}
    assert client.get(f"/components/{cid}").json()["properties"]["status"] == "移除"  # kept, not deleted


def test_a_stale_version_is_refused_as_a_case_s_is(client: TestClient, spot: tuple[float, float]) -> None:
    """review44 D4: a component's stale version answered error ``conflict`` with reason ``stale_version`` and a bare
    message; a case's answers error ``stale_version`` with one item naming the versions. One shape for both, by
    PATCH and by /retire; nothing written."""
    x, y = spot
    cid = client.post(
        "/components", json={"class_code": "01037", "lon": x, "lat": y, "datum": "cgcs2000"}, headers=WHO
    ).json()["id"]
    item = {
        "field": "version",
        "reason": "the component is at version 1",
        "code": "stale_version",
        "version": 1,
        "expected_version": 99,
    }
    for stale in (
        client.patch(f"/components/{cid}", json={"status": "破损", "version": 99}, headers=WHO),
        client.post(f"/components/{cid}/retire", json={"reason": "拆除", "version": 99}, headers=WHO),
    ):
        assert stale.status_code == 409
        assert stale.json() == {
            "error": "stale_version",
            "reason": "stale_version",
            "detail": {
                "message": f"component {cid} was changed by someone else (version 1, you sent 99); reload it and try "
                "again",
                "items": [item],
            },
        }
    zh = client.patch(
        f"/components/{cid}", json={"status": "破损", "version": 99}, headers={**WHO, "Accept-Language": "zh-CN"}
    )
    assert zh.json()["message_zh"] == "version:已被他人更新,请重新打开后再办理"
    assert client.get(f"/components/{cid}").json()["properties"]["version"] == 1


def test_exists_and_already_retired_are_refused_with_items_as_every_other_refusal(
    client: TestClient, spot: tuple[float, float]
) -> None:
    """left46 item 1: component_exists and component_retired answered a bare string ``detail`` where every other
    refusal answers ``{"message", "items"}`` with the field, the reason, the code and the facts to act on. Now they
    do too, zh-CN first, and nothing is written."""
    x, y = spot
    lamp = {"class_code": "01037", "lon": x, "lat": y, "datum": "cgcs2000"}
    cid = client.post("/components", json=lamp, headers=WHO).json()["id"]
    exists = client.post("/components", json={**lamp, "id": cid}, headers=WHO)
    assert exists.status_code == 409
    assert exists.json() == {
        "error": "conflict",
        "reason": "component_exists",
        "detail": {
            "message": f"component {cid} already exists; update it with PATCH /components/{cid}",
            "items": [
                {
                    "field": "id",
                    "reason": f"component {cid} already exists (version 1)",
                    "code": "component_exists",
                    "value": cid,
                    "version": 1,
                }
            ],
        },
    }
    zh = client.post("/components", json={**lamp, "id": cid}, headers={**WHO, "Accept-Language": "zh-CN"})
    assert zh.json()["message_zh"] == f"部件 {cid} 已存在:请用 PATCH /components/{cid} 修改"
    assert client.get(f"/components/{cid}").json()["properties"]["version"] == 1

    assert client.post(f"/components/{cid}/retire", json={"reason": "拆除"}, headers=WHO).status_code == 200
    again = client.post(f"/components/{cid}/retire", json={"reason": "再拆"}, headers=WHO)
    assert again.status_code == 409
    assert again.json() == {
        "error": "conflict",
        "reason": "component_retired",
        "detail": {
            "message": f"component {cid} is already retired (移除); to bring it back, PATCH its status with a reason",
            "items": [
                {
                    "field": None,
                    "reason": f"component {cid} is already retired",
                    "code": "component_retired",
                    "id": cid,
                    "status": "移除",
                    "version": 2,
                }
            ],
        },
    }
    history = client.get(f"/components/{cid}/history").json()["history"]
    assert [h["action"] for h in history] == ["create", "retire"]  # the refused retire wrote nothing


def test_a_patch_may_send_the_class_back_but_not_change_it(client: TestClient, spot: tuple[float, float]) -> None:
    """review44 D3: a PATCH echoing ``class_code`` was refused as an unknown field, and the documented reason
    ``class_change`` was never given. The class is part of the identifier: the same one is no change, another is
    refused with class_change, zh-CN first, nothing written."""
    x, y = spot
    cid = client.post(
        "/components", json={"class_code": "01037", "lon": x, "lat": y, "datum": "cgcs2000"}, headers=WHO
    ).json()["id"]
    other = client.patch(f"/components/{cid}", json={"class_code": "01001", "version": 1}, headers=WHO)
    assert other.status_code == 422
    assert other.json() == {
        "error": "invalid_input",
        "reason": "class_change",
        "detail": {
            "message": "class_code: a component's class is part of its identifier (01037, sent '01001'); retire it and "
            "create a new one",
            "items": [
                {
                    "field": "class_code",
                    "reason": "the component's class is 01037",
                    "code": "class_change",
                    "value": "01001",
                    "class_code": "01037",
                }
            ],
        },
    }
    assert client.get(f"/components/{cid}").json()["properties"]["version"] == 1
    same = client.patch(f"/components/{cid}", json={"class_code": "01037", "status": "破损", "version": 1}, headers=WHO)
    assert same.status_code == 200, same.text
    assert same.json()["properties"]["class_code"] == "01037" and same.json()["properties"]["version"] == 2
    history = client.get(f"/components/{cid}/history").json()["history"]
    assert history[-1]["changes"] == {"status": ["完好", "破损"]}
    retired = client.patch(
        f"/components/{cid}",
        json={"class_code": "01037", "status": "移除", "reason": "拆除", "version": 2},
        headers=WHO,
    )
    assert retired.status_code == 200 and retired.json()["properties"]["status"] == "移除", retired.text


def test_into_and_out_of_the_registry_by_patch_needs_a_reason(client: TestClient, spot: tuple[float, float]) -> None:
    """移除 (retired) is left or entered with a written reason, kept in the history — by PATCH as by /retire."""
    x, y = spot
    cid = client.post(
        "/components", json={"class_code": "01037", "lon": x, "lat": y, "datum": "cgcs2000"}, headers=WHO
    ).json()["id"]
    no_reason = client.patch(f"/components/{cid}", json={"status": "移除", "version": 1}, headers=WHO)
    assert no_reason.status_code == 422 and no_reason.json()["reason"] == "missing", no_reason.text
    assert no_reason.json()["detail"]["message"] == "reason: say why the status goes from 完好 to 移除"
    with_more = client.patch(
        f"/components/{cid}", json={"status": "移除", "name": "旧灯", "reason": "拆除", "version": 1}, headers=WHO
    )
    assert with_more.status_code == 422 and with_more.json()["reason"] == "extra_forbidden"
    retired = client.patch(
        f"/components/{cid}", json={"status": "移除", "reason": "道路改造拆除", "version": 1}, headers=WHO
    )
    assert retired.status_code == 200 and retired.json()["properties"]["status"] == "移除"
    back = client.patch(f"/components/{cid}", json={"status": "完好", "version": 2}, headers=WHO)
    assert (
        back.status_code == 422
        and back.json()["detail"]["message"] == "reason: say why the status goes from 移除 to 完好"
    )
    revived = client.patch(
        f"/components/{cid}", json={"status": "完好", "reason": "修复后重新启用", "version": 2}, headers=WHO
    )
    assert revived.status_code == 200 and revived.json()["properties"]["status"] == "完好", revived.text
    stray = client.patch(f"/components/{cid}", json={"name": "新灯", "reason": "x", "version": 3}, headers=WHO)
    assert stray.status_code == 422 and stray.json()["reason"] == "extra_forbidden"
    history = client.get(f"/components/{cid}/history").json()["history"]
    assert [(h["action"], (h["changes"] or {}).get("status"), h["source"], h["reason"]) for h in history] == [
        ("create", None, "api", None),
        ("retire", ["完好", "移除"], "api", "道路改造拆除"),
        ("update", ["移除", "完好"], "api#1", "修复后重新启用"),
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"class_code": "01037", "lon": 0, "lat": 0}, "coordinates"),
        ({"class_code": "01037", "lon": 116.4, "lat": 39.9}, "coordinates"),
        ({"class_code": "09999", "lon": None, "lat": None}, "class_code"),
        ({"class_code": "01037", "id": "41990201037"}, "id"),
        ({"class_code": "01037", "id": f"{DISTRICT}03005000001"}, "id"),
        ({"class_code": "01037", "maint_dept": "nope"}, "maint_dept"),
        ({"class_code": "01037", "lon": 200}, "lon"),
        ({"class_code": "01037", "status": "坏了"}, "status"),
        ({"class_code": "01037", "initial_date": "2024-13-01"}, "initial_date"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field_and_writes_nothing(
    client: TestClient, clean_db: Engine, spot: tuple[float, float], body: dict, field: str
) -> None:
    x, y = spot
    payload = {"lon": x, "lat": y, "datum": "cgcs2000", **{k: v for k, v in body.items() if v is not None}}
    if body.get("lon") is None and "lon" in body:
        payload.update(lon=x, lat=y)
    r = client.post("/components", json=payload, headers=WHO)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    fields = [i["field"] for i in (detail["items"] if isinstance(detail, dict) else detail)]
    assert field in fields
    with clean_db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM components")).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM component_history")).scalar_one() == 0


def test_unknown_component_is_404(client: TestClient) -> None:
    for path in ("/components/41990201037999999", "/components/41990201037999999/history"):
        r = client.get(path)
        assert r.status_code == 404 and r.json()["error"] == "not_found"


def test_queries_radius_nearest_and_filters(client: TestClient) -> None:
    xs, ys = inside_points(20, seed=5)
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        body = {"class_code": "01037" if i % 2 else "03005", "lon": x, "lat": y, "datum": "cgcs2000"}
        assert client.post("/components", json=body, headers=WHO).status_code == 201
    x0, y0 = float(xs[0]), float(ys[0])
    near = client.get(
        "/components", params={"lon": x0, "lat": y0, "datum": "cgcs2000", "nearest": 3, "class_code": "03005"}
    ).json()
    d = [f["properties"]["distance_m"] for f in near["features"]]
    assert len(d) == 3 and d == sorted(d) and d[0] == 0
    radius = client.get("/components", params={"lon": x0, "lat": y0, "datum": "cgcs2000", "radius_m": 150}).json()
    assert all(f["id"] for f in radius["features"]) and radius["numberMatched"] >= 1
    page = client.get("/components", params={"limit": 5, "offset": 5}).json()
    assert page["numberMatched"] == 20 and page["numberReturned"] == 5
    assert client.get("/components", params={"lon": x0}).json()["reason"] == "missing"  # lat
    assert (
        client.get("/components", params={"grid": "123"}).json()["detail"]["items"][0]["code"]
        == "string_pattern_mismatch"
    )
    radius = client.get("/components", params={"radius_m": 100})
    assert radius.status_code == 422 and radius.json()["reason"] == "needs_lon_lat"


def lamp_with_photo(
    client: TestClient, spot: tuple[float, float], size: tuple[int, int]
) -> tuple[str, bytes, Response]:
    """A street lamp made at ``spot`` and a green PNG of ``size`` attached: its id, the PNG and the answer."""
    x, y = spot
    cid = client.post(
        "/components", json={"class_code": "01037", "lon": x, "lat": y, "datum": "cgcs2000"}, headers=WHO
    ).json()["id"]
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buf, "PNG")
    r = client.post(
        f"/components/{cid}/photos", files=[("photos", ("lamp.png", buf.getvalue(), "image/png"))], headers=WHO
    )
    return cid, buf.getvalue(), r


def test_photos_attach_to_a_component_and_are_served(client: TestClient, spot: tuple[float, float]) -> None:
    cid, png, r = lamp_with_photo(client, spot, (32, 24))
    assert r.status_code == 200, r.text
    photos = r.json()["properties"]["photos"]
    assert len(photos) == 1 and photos[0]["content_type"] == "image/png"
    sha = photos[0]["sha256"]
    url = f"/components/{cid}/photos/{sha}"  # where to fetch it (under the root path), as a case's photos say
    assert (photos[0]["url"], photos[0]["thumb_url"]) == (url, f"{url}?size=thumb")
    got = client.get(photos[0]["url"])
    assert got.status_code == 200 and got.content == png
    assert client.get(photos[0]["thumb_url"]).headers["content-type"] == "image/jpeg"
    assert client.get(f"/components/{cid}").json()["properties"]["photos"] == photos
    listed = client.get("/components", params={"class_code": "01037"}).json()["features"]
    assert [f["properties"]["photos"] for f in listed if f["id"] == cid] == [photos]
    bad = client.post(
        f"/components/{cid}/photos", files=[("photos", ("x.jpg", b"not an image", "image/jpeg"))], headers=WHO
    )
    assert bad.status_code == 422 and "photos[0]" in bad.json()["detail"]["message"]
    assert bad.json()["reason"] == "photo_not_an_image"
    assert [h["action"] for h in client.get(f"/components/{cid}/history").json()["history"]] == ["create", "photo"]


def test_a_photo_file_name_longer_than_255_characters_is_refused_naming_it(
    client: TestClient, spot: tuple[float, float]
) -> None:
    """review35 gap: a photo's name is shown and logged; its length is bounded as a file system's is."""
    cid, png, r = lamp_with_photo(client, spot, (8, 8))
    assert r.status_code == 200, r.text
    long = "照" * 252 + ".png"  # 256 characters
    bad = client.post(f"/components/{cid}/photos", files=[("photos", (long, png[:-1] + b"\0", "image/png"))],
                      headers=WHO)  # fmt: skip
    assert bad.status_code == 422 and bad.json()["reason"] == "string_too_long"
    assert bad.json()["detail"]["items"] == [
        {
            "field": "photos[0]",
            "reason": "file name too long",
            "limit": {"max_length": 255},
            "code": "string_too_long",
        }
    ]
    assert [h["action"] for h in client.get(f"/components/{cid}/history").json()["history"]] == ["create", "photo"]
    ok = client.post(f"/components/{cid}/photos", files=[("photos", (long[1:], png, "image/png"))], headers=WHO)
    assert ok.status_code == 200, ok.text  # 255 characters


def test_a_component_photo_is_served_as_a_thumbnail(client: TestClient, spot: tuple[float, float]) -> None:
    cid, _, r = lamp_with_photo(client, spot, (1280, 960))
    sha = r.json()["properties"]["photos"][0]["sha256"]
    thumb = client.get(f"/components/{cid}/photos/{sha}", params={"size": "thumb"})
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(thumb.content)).size == (320, 240)
    assert client.get(f"/components/{cid}/photos/{sha}").headers["content-type"] == "image/png"  # the original
    bad = client.get(f"/components/{cid}/photos/{sha}", params={"size": "small"})
    assert bad.status_code == 422 and bad.json()["detail"]["message"].startswith("size: 'small' is not a photo size")
    missing = client.get(f"/components/{cid}/photos/{'1' * 64}", params={"size": "thumb"})
    assert missing.status_code == 404 and missing.json()["detail"] == f"component {cid} has no photo {'1' * 64}"


def test_with_several_districts_loaded_a_component_is_made_and_edited_in_its_own(
    client: TestClient, clean_db: Engine, spot: tuple[float, float]
) -> None:
    """A city with two districts: the API finds the district from the point (or the stored component) instead of
    asking for --district as the file import does."""
    x, y = spot
    with clean_db.begin() as conn:  # a second district far away (its own grids are not needed here)
        conn.execute(
            text(
                "INSERT INTO admin_units (code, name, level, geom) VALUES ('419988', '测试二区', 'district', "
                "ST_Multi(ST_MakeEnvelope(100.0, 30.0, 100.1, 30.1, 4490)))"
            )
        )
    made = client.post(
        "/components", json={"class_code": "01037", "lon": x, "lat": y, "datum": "cgcs2000"}, headers=WHO
    )
    assert made.status_code == 201, made.text
    assert made.json()["id"].startswith(DISTRICT)
    edited = client.patch(f"/components/{made.json()['id']}", json={"name": "东门路灯", "version": 1}, headers=WHO)
    assert edited.status_code == 200 and edited.json()["properties"]["name"] == "东门路灯", edited.text
    outside = client.post(
        "/components", json={"class_code": "01037", "lon": 90.0, "lat": 30.0, "datum": "cgcs2000"}, headers=WHO
    )
    assert outside.status_code == 422 and "several districts" not in outside.text, outside.text


def test_the_photo_form_refuses_a_field_it_does_not_take_and_more_than_ten_photos(
    client: TestClient, spot: tuple[float, float]
) -> None:
    cid, _, r = lamp_with_photo(client, spot, (32, 24))
    assert r.status_code == 200, r.text

    def history() -> list[str]:
        return [h["action"] for h in client.get(f"/components/{cid}/history").json()["history"]]

    buf = io.BytesIO()
    Image.new("RGB", (20, 20), (200, 10, 30)).save(buf, "PNG")
    red = buf.getvalue()
    r = client.post(
        f"/components/{cid}/photos",
        data={"caption": "灯杆底座"},
        files=[("photos", ("red.png", red, "image/png"))],
        headers=WHO,
    )
    assert r.status_code == 422 and r.json()["reason"] == "extra_forbidden"
    assert r.json()["detail"]["message"].startswith(f"caption: not a field of POST /components/{cid}/photos")
    assert r.json()["detail"]["items"] == [{"field": "caption", "reason": "unknown field", "code": "extra_forbidden"}]
    r = client.post(
        f"/components/{cid}/photos", files=[("photos", (f"r{i}.png", red, "image/png")) for i in range(11)], headers=WHO
    )
    assert r.status_code == 422 and r.json()["reason"] == "too_many_photos"
    assert r.json()["detail"]["message"] == "photos: at most 10 photos in one request, got 11"
    assert history() == ["create", "photo"]
    assert len(client.get(f"/components/{cid}").json()["properties"]["photos"]) == 1
    r = client.post(
        f"/components/{cid}/photos", files=[("photos", (f"r{i}.png", red, "image/png")) for i in range(10)], headers=WHO
    )
    assert r.status_code == 200 and [p["name"] for p in r.json()["properties"]["photos"]] == ["lamp.png", "r0.png"]
    assert history() == ["create", "photo", "photo"]


def _gcj_pair() -> tuple[float, float, float, float]:
    """A place (CGCS2000) whose GCJ-02 coordinates, read as CGCS2000, are inside the district too: x, y, gx, gy."""
    from gisgrid import geodesy
    from tests.fixtures import small_district

    district = small_district().query("level == 'district'").geometry.iloc[0]
    xs, ys = inside_points(60, seed=5)
    gxs, gys = geodesy.from_storage(xs, ys, "gcj02")
    i = int(np.flatnonzero(shapely.contains_xy(district, gxs, gys))[0])
    return float(xs[i]), float(ys[i]), float(gxs[i]), float(gys[i])


def test_datum_on_components_means_what_it_means_on_cases(client: TestClient) -> None:
    """review47 F2: ``GET /components?datum=gcj02`` converted lon/lat only — ``bbox`` was read as CGCS2000 and the
    features came back in CGCS2000, unnamed. Now ``datum`` is that of lon/lat, bbox and every coordinate answered,
    and the answer names it, on the list and on one component; a write answers in the storage datum and says so."""
    from gisgrid import geodesy

    x, y, gx, gy = _gcj_pair()
    made = []
    for cls in ("01037", "03005"):  # two components at one GCJ-02 place (an AMap client's)
        r = client.post("/components", json={"class_code": cls, "lon": gx, "lat": gy, "datum": "gcj02"}, headers=WHO)
        assert r.status_code == 201, r.text
        assert r.json()["datum"] == "cgcs2000"  # stored, and answered, in CGCS2000
        assert r.json()["geometry"]["coordinates"] == pytest.approx([x, y], abs=1.5e-7)
        made.append(r.json())
    # A third stored at the GCJ-02 numbers taken as CGCS2000, ~620 m east: what a box read as CGCS2000 found.
    trap = client.post(
        "/components", json={"class_code": "01037", "lon": gx, "lat": gy, "datum": "cgcs2000"}, headers=WHO
    ).json()
    stored = made[0]["geometry"]["coordinates"]
    (ex,), (ey,) = geodesy.from_storage([stored[0]], [stored[1]], "gcj02")
    in_gcj = [round(float(ex), 7), round(float(ey), 7)]
    (bx,), (by,) = geodesy.from_storage([stored[0]], [stored[1]], "bd09")
    in_bd = [round(float(bx), 7), round(float(by), 7)]

    def ids(body: dict) -> list[str]:
        return [f["id"] for f in body["features"]]

    box = f"{gx - 2e-4},{gy - 2e-4},{gx + 2e-4},{gy + 2e-4}"
    gcj = client.get("/components", params={"bbox": box, "datum": "gcj02"})
    assert gcj.status_code == 200, gcj.text
    body = gcj.json()
    assert ids(body) == sorted(f["id"] for f in made) and body["datum"] == "gcj02"
    assert [f["geometry"]["coordinates"] for f in body["features"]] == [in_gcj, in_gcj]
    plain = client.get("/components", params={"bbox": box}).json()  # the box taken as CGCS2000
    assert ids(plain) == [trap["id"]] and plain["datum"] == "cgcs2000"
    assert plain["features"][0]["geometry"]["coordinates"] == trap["geometry"]["coordinates"]
    bd_box = f"{bx - 2e-4},{by - 2e-4},{bx + 2e-4},{by + 2e-4}"
    bd = client.get("/components", params={"bbox": bd_box, "datum": "bd09"}).json()
    assert ids(bd) == ids(body) and bd["datum"] == "bd09"
    assert [f["geometry"]["coordinates"] for f in bd["features"]] == [in_bd, in_bd]
    assert ids(client.get("/components", params={"bbox": bd_box, "datum": "gcj02"}).json()) == []
    # lon/lat and the answer in one datum: the nearest two, 0 m away, where the client put them
    near = client.get("/components", params={"lon": gx, "lat": gy, "datum": "gcj02", "nearest": 2}).json()
    assert ids(near) == ids(body) and near["datum"] == "gcj02"
    assert [(f["geometry"]["coordinates"], f["properties"]["distance_m"]) for f in near["features"]] == [
        (in_gcj, 0),
        (in_gcj, 0),
    ]
    # One component, as GET /cases/{id}
    cid = made[0]["id"]
    one = client.get(f"/components/{cid}", params={"datum": "gcj02"}).json()
    assert (one["geometry"]["coordinates"], one["datum"]) == (in_gcj, "gcj02")
    assert one["properties"] == client.get(f"/components/{cid}").json()["properties"]
    assert client.get(f"/components/{cid}", params={"datum": "bd09"}).json()["geometry"]["coordinates"] == in_bd
    default = client.get(f"/components/{cid}").json()
    assert (default["geometry"]["coordinates"], default["datum"]) == (stored, "cgcs2000")
    assert client.get(f"/components/{cid}", params={"datum": "wgs84"}).json()["datum"] == "wgs84"  # same numbers
    # The same refusal of the same mistakes on each
    for path in ("/components", f"/components/{cid}"):
        bad = client.get(path, params={"datum": "mars"})
        assert bad.status_code == 422 and [(i["field"], i["code"]) for i in bad.json()["detail"]["items"]] == [
            ("datum", "literal_error")
        ], path
        typo = client.get(path, params={"dataum": "gcj02"})
        assert typo.status_code == 422 and typo.json()["reason"] == "extra_forbidden", path
