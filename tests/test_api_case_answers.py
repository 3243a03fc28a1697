"""Case answers as an integrator reads them (review52): the datum of a write's lon/lat (F1), GeoJSON only in WGS 84
(F2), one case per sending system's number (F4), the OpenAPI document's headers, statuses and action payloads
(F6), ETag and Cache-Control (F7), and the `source` channels named for 12345 and video alarms (F11)."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy.exc as sa_exc
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.main import create_app
from gisgrid import case_intake, geodesy, workflow
from gisgrid import cases as svc
from gisgrid.errors import Conflict
from gisgrid.settings import Settings
from gisgrid.storage import migrate
from gisgrid.storage.database import drop_database, ensure_postgis, make_engine
from tests.conftest import new_database
from tests.fixtures import EDITOR, load_small_district
from tests.test_components_store import inside_points

DESK = {"X-Role": "intake"}


@pytest.fixture
def client(district_api: TestClient) -> TestClient:
    return district_api


@pytest.fixture
def place() -> tuple[float, float]:
    """A stored (CGCS2000) point inside the small district."""
    xs, ys = inside_points(1, seed=52)
    return float(xs[0]), float(ys[0])


def _in(datum: str, x: float, y: float) -> tuple[float, float]:
    lon, lat = geodesy.from_storage(np.array([x]), np.array([y]), datum)  # type: ignore[arg-type]
    return round(float(lon[0]), 7), round(float(lat[0]), 7)


# -- F1: a write's answer names its datum ----------------------------------------------------------------------


def test_a_gcj02_report_is_answered_in_cgcs2000_saying_so_and_read_back_in_the_datum_sent(
    client: TestClient, place: tuple[float, float]
) -> None:
    glon, glat = _in("gcj02", *place)
    body = {"class_code": "06010", "lon": glon, "lat": glat, "datum": "gcj02", "source": "hotline"}
    filed = client.post("/cases", json=body, headers={**DESK, "Idempotency-Key": "f1-a"})
    assert filed.status_code == 201
    answer = filed.json()
    stored = client.get(f"/cases/{answer['id']}").json()
    assert answer["datum"] == stored["datum"] == "cgcs2000"
    assert (answer["lon"], answer["lat"]) == (stored["lon"], stored["lat"])
    assert abs(answer["lon"] - glon) > 1e-3  # the stored numbers, hundreds of metres from the GCJ-02 ones sent
    replay = client.post("/cases", json=body, headers={**DESK, "Idempotency-Key": "f1-a"})
    assert (replay.status_code, replay.json()["datum"], replay.json()["lon"]) == (200, "cgcs2000", stored["lon"])
    # the sent numbers back: GET in the datum sent (a write takes no ?datum=, review42 D1)
    back = client.get(f"/cases/{answer['id']}?datum=gcj02").json()
    assert back["datum"] == "gcj02" and abs(back["lon"] - glon) < 1e-6 and abs(back["lat"] - glat) < 1e-6
    refused = client.post("/cases?datum=gcj02", json=body, headers=DESK)
    assert (refused.status_code, refused.json()["reason"]) == (422, "extra_forbidden")

    blon, blat = _in("bd09", *place)
    form = client.post(
        "/cases/form",
        data={"class_code": "06010", "lon": str(blon), "lat": str(blat), "datum": "bd09", "source": "sensor"},
        headers=DESK,
    )
    assert form.status_code == 201 and form.json()["datum"] == "cgcs2000"
    assert (form.json()["lon"], form.json()["lat"]) == (stored["lon"], stored["lat"])  # the same place

    case_id = answer["id"]
    acted = client.post(f"/cases/{case_id}/actions/request_verify", json={"version": 1}, headers=DESK)
    assert (acted.status_code, acted.json()["datum"], acted.json()["lon"]) == (200, "cgcs2000", stored["lon"])
    acted_form = client.post(
        f"/cases/{case_id}/actions/verify/form", data={"version": "2"}, headers={"X-Role": "supervisor"}
    )
    assert (acted_form.status_code, acted_form.json()["datum"]) == (200, "cgcs2000")
    merged = client.post(
        f"/cases/{form.json()['id']}/merge", json={"into": case_id, "version": 1}, headers={"X-Role": "shift_lead"}
    )
    assert (merged.status_code, merged.json()["datum"]) == (200, "cgcs2000")
    case = client.get("/openapi.json").json()["components"]["schemas"]["Case"]
    assert case["properties"]["datum"]["anyOf"][0]["enum"] == ["wgs84", "cgcs2000", "gcj02", "bd09"]


# -- F2: GeoJSON only in WGS 84 (or CGCS2000, centimetres from it) ----------------------------------------------


def test_geojson_in_a_shifted_datum_is_plain_json_naming_it(client: TestClient, place: tuple[float, float]) -> None:
    lon, lat = place
    assert client.post("/cases", json={"class_code": "06010", "lon": lon, "lat": lat}, headers=DESK).status_code == 201
    lamp = client.post(
        "/components", json={"class_code": "01037", "lon": lon, "lat": lat, "datum": "cgcs2000"}, headers=EDITOR
    ).json()
    for path in ("/cases?format=geojson", "/components", f"/components/{lamp['id']}", "/grids?limit=2"):
        sep = "&" if "?" in path else "?"
        for datum, media in (
            (None, "application/geo+json"),
            ("cgcs2000", "application/geo+json"),
            ("wgs84", "application/geo+json"),
            ("gcj02", "application/json"),
            ("bd09", "application/json"),
        ):
            got = client.get(path if datum is None else f"{path}{sep}datum={datum}")
            assert (got.status_code, got.headers["content-type"]) == (200, media), (path, datum)
            assert got.json()["datum"] == (datum or "cgcs2000"), (path, datum)
    spec = client.get("/openapi.json").json()
    said = spec["paths"]["/cases"]["get"]["responses"]["200"]["description"]
    assert "with datum=gcj02 or bd09 the same document is answered as application/json" in said


# -- F4: one case per (source, external_ref) -------------------------------------------------------------------


def test_a_second_report_of_a_sender_s_number_is_a_409_naming_the_case(
    client: TestClient, place: tuple[float, float]
) -> None:
    lon, lat = place
    body = {"class_code": "06010", "lon": lon, "lat": lat, "source": "hotline", "external_ref": "GD-001"}
    first = client.post("/cases", json=body, headers={**DESK, "Idempotency-Key": "gd-001"})
    assert first.status_code == 201
    case_id, case_no = first.json()["id"], first.json()["case_no"]
    # the idempotent replay of that report is answered with its case
    replay = client.post("/cases", json=body, headers={**DESK, "Idempotency-Key": "gd-001"})
    assert (replay.status_code, replay.json()["id"]) == (200, case_id)
    item = {
        "field": "external_ref",
        "reason": "a case holds this number of this source already",
        "code": "external_ref_exists",
        "case_id": case_id,
        "case_no": case_no,
        "state": "reported",
    }
    for headers in (DESK, {**DESK, "Idempotency-Key": "gd-001-again"}):  # no key, or a new one: refused
        again = client.post("/cases", json=body, headers=headers)
        assert again.status_code == 409
        refused = again.json()
        assert (refused["error"], refused["reason"], refused["detail"]["items"]) == (
            "conflict",
            "external_ref_exists",
            [item],
        )
        message = refused["detail"]["message"]
        assert message.startswith(f"external_ref: 来源 hotline 的编号 'GD-001' 已有案件 {case_no}(上报),本次未受理 / ")
        assert f"is case {case_no} already (id {case_id}, reported)" in message
    form = client.post("/cases/form", data={k: str(v) for k, v in body.items()}, headers=DESK)
    assert (form.status_code, form.json()["reason"]) == (409, "external_ref_exists")
    # another channel's number of the same text is another number
    assert client.post("/cases", json={**body, "source": "sensor"}, headers=DESK).status_code == 201
    # an ended case keeps its number: a 不予立案 case is named with its state
    rejected = client.post(
        f"/cases/{case_id}/actions/reject", json={"version": 1, "payload": {"reason": "非城管事项"}}, headers=DESK
    )
    assert rejected.status_code == 200
    after = client.post("/cases", json=body, headers=DESK)
    assert after.status_code == 409 and after.json()["detail"]["items"][0]["state"] == "rejected"
    assert client.get("/cases?external_ref=GD-001").json()["count"] == 2  # hotline's and sensor's


def test_two_concurrent_reports_of_one_number_file_one_case(
    loaded: Engine, settings: Settings, place: tuple[float, float], tmp_path: Path
) -> None:
    lon, lat = place
    body = {"class_code": "06010", "lon": lon, "lat": lat, "source": "sensor", "external_ref": "CAM-7-0001"}
    with TestClient(create_app(settings.model_copy(update={"data_dir": tmp_path / "d"}))) as client:
        for round_ in range(3):
            statuses: list[int] = []
            barrier = threading.Barrier(2)
            ref = f"{body['external_ref']}-{round_}"

            def post(ref: str = ref, barrier: threading.Barrier = barrier, statuses: list[int] = statuses) -> None:
                barrier.wait()
                statuses.append(client.post("/cases", json={**body, "external_ref": ref}, headers=DESK).status_code)

            threads = [threading.Thread(target=post) for _ in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert sorted(statuses) == [201, 409], round_
            assert client.get(f"/cases?external_ref={ref}").json()["count"] == 1
    # the database itself holds it: a second row of a (source, external_ref) is refused
    with loaded.connect() as conn:
        first = conn.execute(text("SELECT id FROM cases ORDER BY id LIMIT 1")).scalar_one()
        with pytest.raises(sa_exc.IntegrityError, match="ux_cases_source_external_ref"):
            conn.execute(
                text(
                    "UPDATE cases SET external_ref = 'CAM-7-0001-1' WHERE id <> :i AND external_ref <> 'CAM-7-0001-1'"
                ),
                {"i": first},
            )
        conn.rollback()


def test_migration_0023_keeps_numbers_two_cases_already_hold(
    server_url: Any, settings: Settings, tmp_path: Path
) -> None:
    """A database that holds a pair of one number upgrades: the older of the pair is left out of the index, and a new
    report of that number is refused naming the newer."""
    url = new_database(server_url, "gisgrid_migr_xref")
    engine = make_engine(url)
    try:
        ensure_postgis(engine)
        migrate.upgrade(url)
        load_small_district(engine, tmp_path)
        services = svc.load_services(settings.model_copy(update={"data_dir": tmp_path / "d"}))
        svc.sync_reference_data(engine, services)
        xs, ys = inside_points(3, seed=53)
        ids = [
            case_intake.intake(
                engine,
                services,
                case_intake.Intake(
                    class_code="06010",
                    lon=float(x),
                    lat=float(y),
                    datum="cgcs2000",
                    source="hotline",
                    reporter_role="intake",
                    external_ref=f"GD-{i}",
                ),
            )[0]
            for i, (x, y) in enumerate(zip(xs, ys, strict=True))
        ]
        migrate.downgrade(url, "0022")
        with engine.begin() as conn:  # a pair and a single, as filed before 0023
            conn.execute(text("UPDATE cases SET external_ref = 'GD-dup' WHERE id = ANY(:i)"), {"i": ids[:2]})
        migrate.upgrade(url)
        with engine.connect() as conn:
            definition = conn.execute(
                text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ux_cases_source_external_ref'")
            ).scalar_one()
        assert definition.endswith(f"WHERE ((external_ref IS NOT NULL) AND (id <> {ids[0]}))"), definition
        with pytest.raises(Conflict) as refused:
            case_intake.intake(
                engine,
                services,
                case_intake.Intake(
                    class_code="06010",
                    lon=float(xs[0]),
                    lat=float(ys[0]),
                    datum="cgcs2000",
                    source="hotline",
                    reporter_role="intake",
                    external_ref="GD-dup",
                ),
            )
        assert refused.value.detail[0]["case_id"] == ids[1]  # type: ignore[index]
        migrate.downgrade(url, "0022")
        with engine.connect() as conn:
            assert (
                conn.execute(
                    text("SELECT count(*) FROM pg_indexes WHERE indexname = 'ux_cases_source_external_ref'")
                ).scalar_one()
                == 0
            )
    finally:
        engine.dispose()
        drop_database(server_url, url.database or "")


# -- F6: the OpenAPI document --------------------------------------------------------------------------------


def test_openapi_states_headers_statuses_and_action_payloads(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    ops = spec["paths"]
    for path in ("/cases", "/cases/form"):
        answers = ops[path]["post"]["responses"]
        assert set(answers["201"]["headers"]) == {"Location"}, path
        assert set(answers["200"]["headers"]) == {"Location", "Idempotent-Replayed"}, path
        assert answers["200"]["headers"]["Idempotent-Replayed"]["schema"] == {"type": "string", "enum": ["true"]}
        assert {"409", "413", "415"} <= set(answers), path
    for path in ("/cases/{case_id}/actions/{action}", "/cases/{case_id}/actions/{action}/form"):
        op = ops[path]["post"]
        assert set(op["responses"]["200"]["headers"]) == {"Idempotent-Replayed"}, path
        fields = op["x-payload-fields"]
        assert list(fields) == list(workflow.TRANSITIONS)
        assert fields["check"] == {"required": [], "optional": ["result"]}
        assert fields["dispatch"] == {"required": ["department"], "optional": ["disposal_type", "reason"]}
    # one spelling of the key header on every route that takes it
    keys = [
        p["name"]
        for ops_ in ops.values()
        for op in ops_.values()
        for p in op.get("parameters", [])
        if p["in"] == "header" and p["name"].lower() == "idempotency-key"
    ]
    assert keys == ["Idempotency-Key"] * 4
    for path in (
        "/cases",
        "/cases/{case_id}",
        "/components/{component_id}/history",
        "/cases/{case_id}/photos/{sha256}",
    ):
        assert not {"409", "413", "415"} & set(ops[path]["get"]["responses"]), path
    assert {"404", "409", "413", "415"} <= set(ops["/components/{component_id}"]["patch"]["responses"])
    for path in ("/health/live", "/console"):
        said = ops[path]["get"]["responses"]["422"]["description"]
        assert said.startswith("The route reads no input: only a query string with a NUL"), path
    live = client.get("/health/live?x=%00")  # what that 422 is
    assert (live.status_code, live.json()["reason"]) == (422, "nul_character")


@pytest.mark.parametrize("name", ["since", "until", "changed_since"])
@pytest.mark.parametrize("value", ["1764453660", "1764453660.5", "-5"])
def test_a_bare_number_as_a_time_is_refused_naming_the_field(client: TestClient, name: str, value: str) -> None:
    got = client.get("/cases", params={name: value})
    assert got.status_code == 422
    assert (got.json()["reason"], got.json()["detail"]["items"]) == (
        "datetime_parsing",
        [{"field": name, "reason": "ISO 8601 expected, not a Unix epoch", "value": value, "code": "datetime_parsing"}],
    )
    assert client.get("/cases", params={name: "2026-11-29T08:00:00+08:00"}).status_code == 200


# -- F7: ETag, 304 and Cache-Control -----------------------------------------------------------------------------


def test_a_case_s_etag_answers_304_until_it_changes(
    client: TestClient, place: tuple[float, float], monkeypatch: pytest.MonkeyPatch
) -> None:
    lon, lat = place
    filed = client.post("/cases", json={"class_code": "06010", "lon": lon, "lat": lat}, headers=DESK)
    case = filed.json()
    # A node's elapsed working time is in the answer (to 0.36 s) and so in its ETag: in working hours the answer
    # changes as the clock runs. The clock stands still here, so only the case's own change moves it.
    real_now, frozen = svc.local_now, svc.local_now(None)
    monkeypatch.setattr(svc, "local_now", lambda now: real_now(now or frozen))
    assert filed.headers["cache-control"] == "private, no-cache"
    first = client.get(f"/cases/{case['id']}", headers=DESK)
    etag = first.headers["etag"]
    assert etag == 'W/"' + hashlib.blake2b(first.content, digest_size=12).hexdigest() + '"'  # of the answer's bytes
    assert (first.headers["cache-control"], first.headers["vary"]) == ("private, no-cache", "X-Role, X-Department")
    same = client.get(f"/cases/{case['id']}", headers={**DESK, "If-None-Match": etag})
    assert (same.status_code, same.content, same.headers["etag"]) == (304, b"", etag)
    assert same.headers["cache-control"] == "private, no-cache"
    strong = client.get(f"/cases/{case['id']}", headers={**DESK, "If-None-Match": etag.removeprefix("W/")})
    assert strong.status_code == 304  # weak comparison, as RFC 9110 has it for If-None-Match
    assert client.get(f"/cases/{case['id']}", headers={**DESK, "If-None-Match": "*"}).status_code == 304
    client.post(f"/cases/{case['id']}/actions/request_verify", json={"version": 1}, headers=DESK)
    changed = client.get(f"/cases/{case['id']}", headers={**DESK, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.json()["version"] == 2
    assert changed.headers["etag"] == 'W/"' + hashlib.blake2b(changed.content, digest_size=12).hexdigest() + '"'
    # a role's allowed_actions are its own answer: another role's validator does not hold for it
    other = client.get(
        f"/cases/{case['id']}", headers={"X-Role": "supervisor", "If-None-Match": changed.headers["etag"]}
    )
    assert other.status_code == 200 and other.headers["etag"] != changed.headers["etag"]
    for path in ("/cases", "/cases/heat", "/cases/lights"):
        assert client.get(path).headers["cache-control"] == "private, no-cache", path


# -- F11: the channels named ------------------------------------------------------------------------------------


def test_the_source_channels_name_12345_and_video_alarms(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    said = spec["components"]["schemas"]["CaseIn"]["properties"]["source"]["description"]
    assert "hotline = 12345 热线, sensor = video and IoT alarms (视频/感知设备)" in said
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    assert "`hotline` = 12345 热线, `sensor` = video and IoT alarms, 视频/感知设备" in readme
