"""Error bodies a machine client (a 12345 platform, a video-analytics system) can map generically (review52 F3, F9,
F10): one shape, a top-level ``reason`` in every answer, every item ``{"field", "reason", "code"}``, headers named as
sent, the same code for the same cause on every route, the English in ``message`` and the Chinese in ``message_zh``."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.fixtures import acting

INTAKE = {"X-Role": "intake"}


@pytest.fixture
def client(district_api: TestClient) -> TestClient:
    return district_api


def _report(client: TestClient, lon: Any, lat: Any, **headers: str) -> Any:
    """POST /cases with lon/lat as written into the JSON text (``NaN``, ``Infinity`` are what a client sends)."""
    body = f'{{"class_code": "06010", "lon": {lon}, "lat": {lat}, "source": "hotline"}}'
    return client.post("/cases", content=body, headers={"Content-Type": "application/json", **INTAKE, **headers})


def _locate(client: TestClient, lon: Any, lat: Any) -> Any:
    return client.get("/grids/locate", params={"lon": lon, "lat": lat})


def _near(client: TestClient, lon: Any, lat: Any) -> Any:
    return client.get("/components", params={"lon": lon, "lat": lat, "radius_m": 100})


ROUTES = {"POST /cases": _report, "GET /grids/locate": _locate, "GET /components?lon&lat": _near}


@pytest.mark.parametrize(
    ("lon", "lat", "reason", "item"),
    [
        ("NaN", "34.72", "finite_number", {"field": "lon", "reason": "not a finite number", "code": "finite_number"}),
        (
            "113.78",
            "Infinity",
            "finite_number",
            {"field": "lat", "reason": "not a finite number", "code": "finite_number"},
        ),
        (
            "34.72",
            "113.78",
            "lon_lat_swapped",
            {
                "field": "lat",
                "reason": "lon and lat look swapped",
                "code": "lon_lat_swapped",
                "limit": {"ge": -90, "le": 90},
            },
        ),
        (
            "200",
            "34.72",
            "out_of_range",
            {"field": "lon", "reason": "outside ±180°", "code": "out_of_range", "limit": {"ge": -180, "le": 180}},
        ),
    ],
)
def test_the_same_bad_point_gets_the_same_refusal_on_every_route(
    client: TestClient, lon: str, lat: str, reason: str, item: dict[str, Any]
) -> None:
    """NaN is "not a finite number", not "outside ±180°" nor pydantic's "≤ 180"; swapped lon/lat is named so on
    /grids/locate too, not a bare ``less_than_equal`` on lat (review52 F3d, F10)."""
    for route, send in ROUTES.items():
        r = send(client, lon, lat)
        body = r.json()
        assert (r.status_code, body["error"], body["reason"]) == (422, "invalid_input", reason), route
        assert body["detail"]["items"] == [item], route
        assert body["detail"]["message"].startswith(f"{item['field']}: "), route
    assert _report(client, "NaN", "34.72").json()["detail"]["message"] == "lon: nan is not a finite number"


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-inf"])
def test_a_radius_that_is_no_number_is_finite_number_too(client: TestClient, value: str) -> None:
    r = client.get("/components", params={"lon": 113.78, "lat": 34.72, "radius_m": value})
    assert r.status_code == 422
    assert r.json() == {
        "error": "invalid_input",
        "reason": "finite_number",
        "detail": {
            "message": "radius_m: Input should be a finite number",
            "items": [{"field": "radius_m", "reason": "Input should be a finite number", "code": "finite_number"}],
        },
    }


def test_a_point_outside_the_grids_is_outside_coverage_with_items_on_both_routes(client: TestClient) -> None:
    """A lookup that finds nothing is 404, a report there 422: the same reason and the same items either way."""
    items = [
        {"field": "lon", "reason": "outside coverage", "code": "outside_coverage"},
        {"field": "lat", "reason": "outside coverage", "code": "outside_coverage"},
    ]
    located = _locate(client, 10, 10)
    assert (located.status_code, located.json()["error"], located.json()["reason"]) == (
        404,
        "not_found",
        "outside_coverage",
    )
    assert located.json()["detail"]["items"] == items
    reported = _report(client, 10, 10)
    assert (reported.status_code, reported.json()["error"], reported.json()["reason"]) == (
        422,
        "invalid_input",
        "outside_coverage",
    )
    assert reported.json()["detail"]["items"] == items


def test_a_radius_without_its_point_names_lon_and_lat(client: TestClient) -> None:
    r = client.get("/components", params={"radius_m": 10})
    assert r.status_code == 422
    assert r.json() == {
        "error": "invalid_input",
        "reason": "needs_lon_lat",
        "detail": {
            "message": "radius_m: a radius needs lon and lat",
            "items": [
                {"field": "lon", "reason": "missing: a radius needs lon and lat", "code": "needs_lon_lat"},
                {"field": "lat", "reason": "missing: a radius needs lon and lat", "code": "needs_lon_lat"},
            ],
        },
    }


def test_headers_are_named_as_sent_by_every_layer(client: TestClient) -> None:
    """Pydantic's ``header.x-department`` is ``X-Department``, as the service names ``X-Role`` (review52 F3a)."""
    r = client.get("/cases", headers={"X-Role": "department", "X-Department": "9" * 41})
    assert r.status_code == 422
    assert r.json() == {
        "error": "invalid_input",
        "reason": "string_too_long",
        "detail": {
            "message": "X-Department: String should have at most 40 characters",
            "items": [
                {
                    "field": "X-Department",
                    "reason": "String should have at most 40 characters",
                    "code": "string_too_long",
                    "limit": {"max_length": 40},
                }
            ],
        },
    }
    r = _report(client, 113.78, 34.72, **{"Idempotency-Key": "k" * 101})
    assert r.status_code == 422
    assert [(i["field"], i["code"]) for i in r.json()["detail"]["items"]] == [("Idempotency-Key", "string_too_long")]


@pytest.mark.parametrize(
    ("path", "headers", "reason", "item"),
    [
        ("/cases?bbox=1,2,3", {}, "bbox_unreadable", {"field": "bbox", "reason": "expected 4 numbers, got 3"}),
        (
            "/cases?bbox=1,2,3,400",
            {},
            "bbox_out_of_range",
            {"field": "bbox", "reason": "need minLon < maxLon within ±180 and minLat < maxLat within ±90"},
        ),
        (
            "/cases?sort=bogus",
            {},
            "literal_error",
            {"field": "sort", "reason": "must be one of newest, updated, due, got 'bogus'"},
        ),
        ("/cases?state=bogus", {}, "literal_error", {"field": "state", "reason": "unknown state(s) bogus"}),
        (
            "/cases?format=csv",
            {},
            "literal_error",
            {"field": "format", "reason": "Input should be 'json' or 'geojson'"},
        ),
        ("/components?status=x", {}, "literal_error", {"field": "status"}),
        ("/cases?limit=0", {}, "greater_than_equal", {"field": "limit"}),
    ],
)
def test_every_refusal_is_one_shape_and_every_item_has_field_reason_and_code(
    client: TestClient, path: str, headers: dict[str, str], reason: str, item: dict[str, Any]
) -> None:
    """The service's refusals and request validation's alike: ``{"error", "reason", "detail": {"message",
    "items": [{"field", "reason", "code"}]}}`` — ``sort=bogus`` and ``format=csv`` one shape (review52 F3b, F3f)."""
    r = client.get(path, headers=headers)
    body = r.json()
    assert (r.status_code, body["error"], body["reason"]) == (422, "invalid_input", reason)
    assert set(body) == {"error", "reason", "detail"} and set(body["detail"]) == {"message", "items"}
    [got] = body["detail"]["items"]
    assert got["code"] == reason and isinstance(got["reason"], str) and got["reason"]
    assert {k: got[k] for k in item} == item
    assert body["detail"]["message"].startswith(f"{item['field']}: ")


def test_every_error_answer_has_a_top_level_reason(client: TestClient, spot: tuple[float, float]) -> None:
    """A client reads ``reason`` for every refusal: the specific cause, else the error code itself (review52 F3c)."""
    filed = client.post("/cases", json={"class_code": "06010", "lon": spot[0], "lat": spot[1]}, headers=INTAKE)
    assert filed.status_code == 201, filed.text
    cid = filed.json()["id"]
    answers = {
        "not_found": client.get("/cases/999999"),
        "stale_version": client.post(
            f"/cases/{cid}/actions/request_verify", json={"version": 7}, headers=acting(client, cid, "intake")
        ),
        "role_not_allowed": client.post(
            f"/cases/{cid}/actions/file", json={"version": 1}, headers=acting(client, cid, "dispatcher")
        ),
        "transition_not_allowed": client.post(
            f"/cases/{cid}/actions/close", json={"version": 1}, headers=acting(client, cid, "shift_lead")
        ),
        "method_not_allowed": client.delete(f"/cases/{cid}"),
        "missing": client.post(f"/cases/{cid}/actions/file", json={"version": 1}),
    }
    statuses = {
        "not_found": 404,
        "stale_version": 409,
        "role_not_allowed": 403,
        "transition_not_allowed": 409,
        "method_not_allowed": 405,
        "missing": 422,
    }
    for reason, r in answers.items():
        assert (r.status_code, r.json()["reason"]) == (statuses[reason], reason), r.text
    assert answers["not_found"].json() == {
        "error": "not_found",
        "reason": "not_found",
        "detail": "no case with id 999999",
    }
    assert answers["missing"].json()["detail"]["items"] == [
        {"field": "X-Role", "reason": "missing: say which role acts", "code": "missing"}
    ]


def test_the_english_is_in_message_and_the_chinese_in_message_zh_for_every_refusal(
    client: TestClient, spot: tuple[float, float]
) -> None:
    """A state refusal's ``message`` was "zh / en" where every other was English (review52 F3e): now English, its
    Chinese in ``message_zh`` for a client asking in Chinese — ``zh_CN`` (Java's Locale) too (F9)."""
    cid = client.post("/cases", json={"class_code": "06010", "lon": spot[0], "lat": spot[1]}, headers=INTAKE).json()[
        "id"
    ]
    url, body = f"/cases/{cid}/actions/close", {"version": 1}
    plain = client.post(url, json=body, headers=acting(client, cid, "shift_lead"))
    assert plain.status_code == 409
    assert plain.json()["detail"]["message"] == "close is not allowed in state 'reported' (上报); allowed from: checked"
    assert "message_zh" not in plain.json()
    for language in ("zh-CN", "zh_CN", "zh"):
        zh = client.post(url, json=body, headers={**acting(client, cid, "shift_lead"), "Accept-Language": language})
        assert zh.json() == {
            **plain.json(),
            "message_zh": "案件当前为「已上报(待核实)」,不能办理「结案」(可办理的状态:已核查(待结案))",
        }


def test_message_zh_names_what_was_not_found_and_the_case_a_reused_key_filed(
    client: TestClient, spot: tuple[float, float]
) -> None:
    zh = {"Accept-Language": "zh_CN"}
    assert client.get("/cases/999999", headers=zh).json()["message_zh"] == "未找到 id 为 999999 的案件"
    assert client.get("/grids/999", headers=zh).json()["message_zh"] == "未找到编码为 999 的网格"
    assert client.get("/components/41990100001", headers=zh).json()["message_zh"] == "未找到标识码为 41990100001 的部件"
    first = {"class_code": "06010", "lon": spot[0], "lat": spot[1]}
    key = {"Idempotency-Key": "k-52", **INTAKE}
    filed = client.post("/cases", json=first, headers=key)
    assert filed.status_code == 201
    case_no = filed.json()["case_no"]
    reused = client.post("/cases", json={**first, "description": "另一件"}, headers={**key, **zh})
    assert (reused.status_code, reused.json()["reason"]) == (409, "idempotency_key_reused")
    assert reused.json()["message_zh"] == (
        f"此提交编号已用于另一条上报(已立为案件 {case_no}):本次未受理,请换用新的提交编号重发"
    )
    assert str(case_no) in reused.json()["detail"]["message"]


def test_an_unknown_role_is_named_as_the_x_role_header(client: TestClient, spot: tuple[float, float]) -> None:
    r = client.post(
        "/cases", json={"class_code": "06010", "lon": spot[0], "lat": spot[1]}, headers={"X-Role": "Intake"}
    )
    assert (r.status_code, r.json()["reason"]) == (422, "unknown_role")
    assert r.json()["detail"]["message"].startswith("X-Role: unknown role 'Intake'; expected one of: supervisor, ")
    assert "reporter_role" not in r.text


def test_a_json_body_in_another_charset_is_told_json_must_be_utf8(client: TestClient) -> None:
    body = '{"class_code": "06010", "description": "据"}'.encode("gbk")
    r = client.post("/cases", content=body, headers={"Content-Type": "application/json; charset=gbk", **INTAKE})
    assert r.status_code == 422
    [item] = r.json()["detail"]["items"]
    assert (r.json()["reason"], item["field"], item["code"]) == ("body_not_utf8", "body", "body_not_utf8")
    assert item["reason"] == (
        "the body is not UTF-8 text: byte 0xBE at offset 40 (invalid start byte); a JSON body must be UTF-8 (RFC 8259) "
        "— a charset its Content-Type declares (charset=gbk) is not honoured; send it as UTF-8"
    )


def test_a_reporting_system_reports_and_reads_but_takes_no_workflow_step(
    client: TestClient, spot: tuple[float, float]
) -> None:
    """``intake_system`` (a 12345 platform, a video system): hotline by default, sensor allowed, patrol not; no
    action — not 不予立案 nor 发核实 — and its case shows it none (review52 F5)."""
    system = {"X-Role": "intake_system"}
    at = {"class_code": "06010", "lon": spot[0], "lat": spot[1]}
    filed = client.post("/cases", json=at, headers=system)
    assert filed.status_code == 201, filed.text
    assert filed.json()["source"] == "hotline"
    assert client.post("/cases", json={**at, "source": "sensor"}, headers=system).status_code == 201
    patrol = client.post("/cases", json={**at, "source": "patrol"}, headers=system)
    assert (patrol.status_code, patrol.json()["reason"]) == (403, "role_not_allowed")
    cid = filed.json()["id"]
    assert client.get(f"/cases/{cid}", headers=system).json()["allowed_actions"] == []
    assert "reject" in client.get(f"/cases/{cid}", headers=INTAKE).json()["allowed_actions"]  # a desk role's
    for action, payload in (("reject", {"reason": "重复"}), ("request_verify", {})):
        r = client.post(f"/cases/{cid}/actions/{action}", json={"version": 1, "payload": payload}, headers=system)
        assert (r.status_code, r.json()["error"], r.json()["reason"]) == (403, "role_not_allowed", "role_not_allowed")
        assert r.json()["detail"]["items"][0]["role"] == "intake_system"
