"""The HTTP contract at the edges: every error is ``{"error", "detail"}`` JSON with its documented status.

NUL characters anywhere (422 naming the field), the database down (503), unexpected faults (500, logged, never
shown), body limits (413), wrong or malformed bodies (415 / 422 with line and column), HEAD, CORS, component
limits and times, and an OpenAPI document that states these bodies.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import asyncpg
import psycopg2
import pytest
import sqlalchemy.exc as sa_exc
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api import schemas
from api.http import MAX_FORM_BYTES
from api.main import create_app
from gisgrid import case_queries, node_clock, workflow
from gisgrid import cases as svc
from gisgrid.components import EDITOR_ROLES
from gisgrid.settings import Settings
from gisgrid.workflow import ROLES
from tests.fixtures import EDITOR, host_port, outage_logged_not_sent, refusal_body
from tests.test_components_store import inside_points

JSON = {"content-type": "application/json"}


def nul_refused(field: str) -> dict[str, Any]:
    """The body every NUL refusal has, the case service's: the field named, reason NUL."""
    return {
        "error": "invalid_input",
        "reason": "nul_character",
        "detail": {
            "message": f"{field}: contains a NUL character",
            "items": [{"field": field, "reason": "NUL", "code": "nul_character"}],
        },
    }


@pytest.fixture
def client(district_api: TestClient) -> TestClient:
    return district_api


@pytest.fixture
def lamp() -> dict[str, Any]:
    """A valid component body (a street lamp inside the small district)."""
    xs, ys = inside_points(1, seed=5)
    return {"class_code": "01037", "lon": float(xs[0]), "lat": float(ys[0]), "datum": "cgcs2000"}


@pytest.fixture
def offline(unreachable_settings: Settings) -> Iterator[TestClient]:
    """The app over a database that is not there."""
    with TestClient(create_app(unreachable_settings), raise_server_exceptions=False) as c:
        yield c


# -- D3: NUL ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"name": "a\x00b"}, "name"),
        ({"note": "a\x00b"}, "note"),
        ({"id": "4199\x00"}, "id"),
        ({"attrs": {"k": "a\x00b"}}, "attrs.k"),
        ({"attrs": {"k": ["ok", {"deep": "\x00"}]}}, "attrs.k[1].deep"),
        ({"attrs": {"k\x00": 1}}, "attrs.k\\u0000"),
    ],
)
def test_a_nul_in_a_component_body_is_a_422_naming_the_field(
    client: TestClient, lamp: dict[str, Any], extra: dict[str, Any], field: str
) -> None:
    r = client.post("/components", json={**lamp, **extra}, headers=EDITOR)
    assert r.status_code == 422
    assert r.json() == nul_refused(field)


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/grids/a%00b", "code"),
        ("/components/a%00b", "component_id"),
        ("/components/a%00b/history", "component_id"),
        ("/components?department=a%00", "department"),
        ("/cases?department=a%00b", "department"),
        ("/grids?tier=unit&bbox=1,2,3,4%00", "bbox"),
    ],
)
def test_a_nul_in_a_path_or_query_parameter_is_a_422_naming_it(client: TestClient, path: str, field: str) -> None:
    r = client.get(path)
    assert r.status_code == 422
    assert r.json() == nul_refused(field)


def test_a_nul_in_a_patch_retire_or_action_body_is_a_422(client: TestClient, lamp: dict[str, Any]) -> None:
    cid = client.post("/components", json=lamp, headers=EDITOR).json()["id"]
    r = client.patch(f"/components/{cid}", json={"version": 1, "attrs": {"材质": "铸\x00铁"}}, headers=EDITOR)
    assert (r.status_code, r.json()) == (422, nul_refused("attrs.材质"))
    r = client.post(f"/components/{cid}/retire", json={"reason": "\x00"}, headers=EDITOR)
    assert (r.status_code, r.json()) == (422, nul_refused("reason"))
    handled = {"version": 1, "payload": {"result": "ok\x00"}}
    r = client.post("/cases/1/actions/handle", json=handled, headers={"X-Role": "department", "X-Department": "1"})
    assert (r.status_code, r.json()) == (422, nul_refused("payload.result"))


def test_a_nul_in_a_form_field_or_an_upload_name_is_a_422(client: TestClient) -> None:
    r = client.post("/cases/form", data={"class_code": "06010", "address": "x\x00"})
    assert (r.status_code, r.json()) == (422, nul_refused("address"))
    # httpx percent-encodes control characters in file names; a raw client need not.
    body = (
        b'--b\r\nContent-Disposition: form-data; name="photos"; filename="a\x00.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\nxx\r\n--b--\r\n"
    )
    r = client.post(
        "/components/x/photos", content=body, headers={**EDITOR, "content-type": "multipart/form-data; boundary=b"}
    )
    assert (r.status_code, r.json()) == (422, nul_refused("photos.filename"))


# -- D4: database down, unexpected errors ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/cases?limit=1", "/grids?limit=1", "/components?limit=1", "/cases/1", "/grids/x"])
def test_the_database_down_is_a_503_json_on_every_endpoint_where_the_database_is_only_logged(
    offline: TestClient, unreachable_settings: Settings, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="gisgrid.api"):
        r = offline.get(path)
    assert r.status_code == 503
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"error", "reason", "detail", "ref"} and body["error"] == "database_error"
    line = outage_logged_not_sent(body, body["detail"], caplog.records, host_port(unreachable_settings))
    assert line.startswith(f"GET {path.split('?')[0]}: 503 database_error ref={body['ref']}: cannot reach PostgreSQL")


def test_the_console_with_the_database_down_is_a_short_chinese_page_or_json(offline: TestClient) -> None:
    page = offline.get("/console", headers={"accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-CN">' in page.text and "数据库暂时无法连接" in page.text
    assert '<link rel="icon" href="data:,">' in page.text  # no /favicon.ico outside the root path (review41 U6)
    assert re.search(r"<small>database_error [0-9a-f]{12}</small>", page.text)  # the log line's reference
    assert "127.0.0.1" not in page.text
    assert "Traceback" not in page.text and len(page.text) < 1000
    api = offline.get("/console", headers={"accept": "application/json"})
    assert api.status_code == 503 and api.json()["error"] == "database_error"


def _failing_app(settings: Settings, exc: Exception) -> FastAPI:
    app = create_app(settings)

    @app.get("/fail")
    def fail() -> None:
        raise exc

    return app


@pytest.mark.parametrize(
    "exc",
    [
        sa_exc.OperationalError("SELECT 1", {}, psycopg2.OperationalError("server closed the connection")),
        sa_exc.TimeoutError("QueuePool limit of size 16 overflow 16 reached, connection timed out"),
        sa_exc.DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True),
        psycopg2.OperationalError("could not connect to server"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.InterfaceError("connection is closed"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_every_database_unavailable_error_is_a_503(settings: Settings, exc: Exception) -> None:
    """In the one shape of every refusal: an English message, a reason code, the Chinese in message_zh (from the
    code's row of messages_zh.csv) for a client asking in Chinese — not a "中文 / English" detail."""
    with TestClient(_failing_app(settings, exc), raise_server_exceptions=False) as c:
        r = c.get("/fail")
        zh = c.get("/fail", headers={"Accept-Language": "zh-CN"})
    assert r.status_code == zh.status_code == 503
    busy = isinstance(exc, sa_exc.TimeoutError)
    reason = "database_busy" if busy else "database_unavailable"
    text = (
        "database busy (every connection in use); try again shortly"
        if busy
        else ("database unavailable; try again later")
    )
    ref = r.json()["ref"]
    assert r.json() == {"error": "database_error", "reason": reason, "detail": f"{text} (reference {ref})", "ref": ref}
    zh_ref = zh.json()["ref"]
    assert zh.json() == {
        "error": "database_error",
        "reason": reason,
        "detail": f"{text} (reference {zh_ref})",
        "ref": zh_ref,
        "message_zh": "数据库繁忙(连接已全部占用),请稍后重试" if busy else "数据库暂不可用,请稍后重试",
    }


def test_an_unexpected_error_is_a_500_json_logged_with_its_traceback_never_shown(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = _failing_app(settings, RuntimeError("secret internals"))
    with caplog.at_level(logging.ERROR, logger="gisgrid.api"), TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/fail")
    assert r.status_code == 500 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["error"] == "internal_error"
    assert body["detail"].startswith("internal server error (reference ")
    assert "secret" not in r.text and "Traceback" not in r.text
    ref = body["detail"].split("reference ")[1].split(")")[0]
    assert body["ref"] == ref
    logged = [rec for rec in caplog.records if ref in rec.getMessage()]
    assert logged and logged[0].exc_info is not None and "GET /fail" in logged[0].getMessage()


def test_a_statement_error_that_is_not_an_outage_is_a_500_not_a_503(settings: Settings) -> None:
    exc = sa_exc.ProgrammingError("SELECT nope", {}, psycopg2.ProgrammingError("column nope does not exist"))
    with TestClient(_failing_app(settings, exc), raise_server_exceptions=False) as c:
        r = c.get("/fail")
    assert r.status_code == 500 and r.json()["error"] == "internal_error" and "nope" not in r.text


# -- D5: OpenAPI -----------------------------------------------------------------------------------------------


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref":
                yield v
            else:
                yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def test_openapi_states_the_real_error_bodies(settings: Settings) -> None:
    with TestClient(create_app(settings)) as c:
        spec = c.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert set(schemas["ErrorBody"]["required"]) == {"error", "reason", "detail"}
    for ref in _refs(spec):  # every reference resolves
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref
    errors = 0
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            for status, resp in op["responses"].items():
                if status.startswith(("4", "5")):
                    errors += 1
                    ref = resp["content"]["application/json"]["schema"]["$ref"]
                    assert ref == "#/components/schemas/ErrorBody", (method, path, status)
            assert {"422", "500", "503"} <= set(op["responses"]), (method, path)
    assert errors > 100
    ops = spec["paths"]
    assert {"404", "409", "413", "415"} <= set(ops["/components/{component_id}"]["patch"]["responses"])
    assert {"403", "404", "409"} <= set(ops["/cases/{case_id}/actions/{action}"]["post"]["responses"])
    assert "404" in ops["/grids/{code}"]["get"]["responses"]


def test_openapi_lists_the_roles_and_the_main_answers_schemas(settings: Settings) -> None:
    with TestClient(create_app(settings)) as c:
        spec = c.get("/openapi.json").json()
    ops = spec["paths"]
    roles = [
        p["schema"]["enum"]
        for path in ops.values()
        for op in path.values()
        for p in op.get("parameters", [])
        if p["name"] == "x-role"
    ]
    # Each route offers the roles it takes: the workflow's, or the component editors' on inventory changes.
    assert len(roles) >= 10 and all(r in (list(ROLES), list(EDITOR_ROLES)) for r in roles)
    acting = ops["/cases/{case_id}/actions/{action}"]["post"]["parameters"]
    assert next(p for p in acting if p["name"] == "x-role")["schema"]["enum"] == list(ROLES)
    editing = ops["/components/{component_id}"]["patch"]["parameters"]
    assert next(p for p in editing if p["name"] == "x-role")["schema"]["enum"] == ["data_admin"]
    assert "data_admin" not in ROLES

    def schema(path: str, method: str, status: str, media: str = "application/json") -> dict[str, Any]:
        return ops[path][method]["responses"][status]["content"][media]["schema"]

    case = {"$ref": "#/components/schemas/Case"}
    assert schema("/cases", "post", "201") == case and schema("/cases", "post", "200") == case
    assert schema("/cases/{case_id}", "get", "200") == {"$ref": "#/components/schemas/CaseDetail"}
    # GeoJSON documents under their own media type (RFC 7946 §12), the JSON list beside the GeoJSON one.
    geo = "application/geo+json"
    assert set(ops["/cases"]["get"]["responses"]["200"]["content"]) == {"application/json", geo}
    assert schema("/cases", "get", "200") == {"$ref": "#/components/schemas/CaseList"}
    assert schema("/cases", "get", "200", geo) == {"$ref": "#/components/schemas/CaseFeatureCollection"}
    feature = {"$ref": "#/components/schemas/ComponentFeature"}
    assert schema("/components/{component_id}", "get", "200", geo) == feature
    assert schema("/components", "post", "201", geo) == feature
    assert schema("/components", "get", "200", geo) == {"$ref": "#/components/schemas/ComponentFeatureCollection"}
    for path in ("/grids", "/grids/{code}", "/components", "/components/{component_id}"):
        assert set(ops[path]["get"]["responses"]["200"]["content"]) == {geo}, path
    assert set(ops["/grids/locate"]["get"]["responses"]["200"]["content"]) == {"application/json"}
    schemas = spec["components"]["schemas"]
    assert {"type", "features", "numberMatched"} <= set(schemas["CaseFeatureCollection"]["required"])
    assert {"id", "state", "version", "class_code"} <= set(schemas["Case"]["required"])
    assert {"timeline", "photos", "documents", "nodes", "closed_on_time"} <= set(schemas["CaseDetail"]["required"])


def test_the_answers_are_what_the_openapi_schemas_say(client: TestClient, lamp: dict[str, Any]) -> None:
    """The schemas are declared, not enforced on the hot path: checked here against real answers."""
    role = {"X-Role": "supervisor"}
    filed = client.post("/cases", json={"class_code": "06010", "lon": lamp["lon"], "lat": lamp["lat"]}, headers=role)
    assert filed.status_code == 201
    schemas.Case.model_validate(filed.json(), strict=True)
    assert filed.json()["allowed_actions"]  # the X-Role's, named in the schema
    schemas.CaseDetail.model_validate(client.get(f"/cases/{filed.json()['id']}", headers=role).json(), strict=True)
    schemas.CaseList.model_validate(client.get("/cases").json(), strict=True)
    as_geojson = client.get("/cases?format=geojson")
    assert as_geojson.headers["content-type"] == "application/geo+json"  # RFC 7946 §12
    assert client.get("/cases").headers["content-type"] == "application/json"
    schemas.CaseFeatureCollection.model_validate(as_geojson.json(), strict=True)
    created = client.post("/components", json=lamp, headers=EDITOR)
    component = created.json()
    one, page = client.get(f"/components/{component['id']}"), client.get("/components")
    assert {r.headers["content-type"] for r in (created, one, page)} == {"application/geo+json"}
    schemas.ComponentFeature.model_validate(one.json(), strict=True)
    schemas.ComponentFeature.model_validate(component, strict=True)
    schemas.ComponentFeatureCollection.model_validate(page.json(), strict=True)
    assert (component["datum"], one.json()["datum"], page.json()["datum"]) == ("cgcs2000",) * 3
    missing = client.get("/components/nope")  # an error is JSON, not GeoJSON
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/json"


def _enum(prop: dict[str, Any]) -> list[Any]:
    """The enum of a property, also of a nullable one (``anyOf`` [enum, null]) or of a list's items."""
    if "items" in prop:
        return _enum(prop["items"])
    if "anyOf" in prop:
        return next(_enum(p) for p in prop["anyOf"] if p.get("type") != "null")
    return prop["enum"]


def test_openapi_declares_every_key_of_the_case_answers_and_the_workflows_enums(
    client: TestClient, lamp: dict[str, Any]
) -> None:
    """review29 D6: the form report's answer was untyped, the action and merge answers an untyped object, the
    action and the case's state, node and source were plain strings, and most keys a case carries were not
    declared. Every key of the real answers is declared in Case (CaseDetail), the enums are the service's own."""
    spec = client.get("/openapi.json").json()
    ops, declared = spec["paths"], spec["components"]["schemas"]
    case, detail = declared["Case"], declared["CaseDetail"]
    props = case["properties"]
    assert props["state"]["enum"] == _enum(props["previous_state"]) == list(workflow.STATES)
    assert _enum(props["node"]) == ["verify", "file", "dispatch", "disposal", "check", "close"]
    assert _enum(props["node"]) == list(dict.fromkeys(n for n in node_clock.NODE_OF_STATE.values() if n))
    assert _enum(props["source"]) == list(svc.SOURCES)
    assert _enum(props["allowed_actions"]) == list(workflow.TRANSITIONS)
    # what a client sends is stated as what it gets back (review33 S16): the report's source, both routes; the
    # datum of every answer
    assert _enum(declared["CaseIn"]["properties"]["source"]) == list(svc.SOURCES)
    form_body = ops["/cases/form"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
    form_props = declared[form_body.rsplit("/")[-1]]["properties"]
    assert _enum(form_props["source"]) == list(svc.SOURCES)
    datums = ["wgs84", "cgcs2000", "gcj02", "bd09"]
    for schema in ("CaseDetail", "CaseList", "CaseFeatureCollection", "ComponentFeature", "ComponentFeatureCollection"):
        assert declared[schema]["properties"]["datum"]["enum"] == datums, schema
    for path in ("/cases/{case_id}/actions/{action}", "/cases/{case_id}/actions/{action}/form"):
        action = next(p for p in ops[path]["post"]["parameters"] if p["name"] == "action")
        assert action["schema"]["enum"] == list(workflow.TRANSITIONS), path

    def answers(path: str, status: str) -> str:
        return ops[path]["post"]["responses"][status]["content"]["application/json"]["schema"]["$ref"].rsplit("/")[-1]

    for path in ("/cases", "/cases/form"):
        assert answers(path, "201") == answers(path, "200") == "Case", path
    for path in (
        "/cases/{case_id}/actions/{action}",
        "/cases/{case_id}/actions/{action}/form",
        "/cases/{case_id}/merge",
    ):
        assert answers(path, "200") == "CaseDetail", path

    at = {"class_code": "06010", "lon": lamp["lon"], "lat": lamp["lat"], "datum": "cgcs2000"}
    lead = {"X-Role": "shift_lead"}
    filed = client.post("/cases", json=at, headers={**lead, "Idempotency-Key": "contract-1"})
    replay = client.post("/cases", json=at, headers={**lead, "Idempotency-Key": "contract-1"})
    form = client.post("/cases/form", data={k: str(v) for k, v in at.items()}, headers=lead)
    assert (filed.status_code, replay.status_code, form.status_code) == (201, 200, 201)
    kept, dup = filed.json()["id"], form.json()["id"]
    acted = client.post(f"/cases/{kept}/actions/request_verify", json={"version": 1}, headers=lead)
    acted_form = client.post(
        f"/cases/{kept}/actions/verify/form", data={"version": "2"}, headers={"X-Role": "supervisor"}
    )
    merged = client.post(f"/cases/{dup}/merge", json={"into": kept, "version": 1}, headers=lead)
    assert (acted.status_code, acted_form.status_code, merged.status_code) == (200, 200, 200), merged.text
    listed = client.get("/cases", headers=lead).json()["data"]
    features = client.get("/cases", params={"format": "geojson"}, headers=lead).json()["features"]
    heads = [filed.json(), replay.json(), form.json(), *listed]
    details = [client.get(f"/cases/{kept}", headers=lead).json(), acted.json(), acted_form.json(), merged.json()]
    for answer in heads:
        assert set(answer) <= set(props), set(answer) - set(props)  # nothing undeclared
        assert set(case["required"]) | {"allowed_actions"} <= set(answer)
        schemas.Case.model_validate(answer, strict=True)  # types and enums as declared
    for answer in details:
        assert set(answer) <= set(detail["properties"]), set(answer) - set(detail["properties"])
        assert set(detail["required"]) | {"allowed_actions"} <= set(answer)
        schemas.CaseDetail.model_validate(answer, strict=True)
    for feature in features:
        assert set(feature["properties"]) == set(heads[-1]) - {"lon", "lat"}
    assert {c["state"] for c in listed} == {"verified", "voided"}
    assert merged.json()["duplicate_of"] == kept  # a key the Case schema names now


# -- D6: body limits -------------------------------------------------------------------------------------------


def test_a_json_body_over_the_limit_is_refused_by_content_length_with_413(client: TestClient) -> None:
    r = client.post("/cases", content=b'{"description":"' + b"x" * (1024 * 1024) + b'"}', headers=JSON)
    assert r.status_code == 413
    assert r.json() == {
        "error": "payload_too_large",
        "reason": "payload_too_large",
        "detail": "request body larger than 1048576 bytes (1.0 MB), the limit of POST /cases",
    }


def test_a_chunked_json_body_is_refused_once_it_passes_the_limit(client: TestClient) -> None:
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(64):  # 4 MB if it were all read
            sent += 1
            yield b"x" * 65536

    r = client.post("/components", content=chunks(), headers={**JSON, **EDITOR})  # no Content-Length: chunked
    assert r.status_code == 413
    assert r.json() == {
        "error": "payload_too_large",
        "reason": "payload_too_large",
        "detail": "request body larger than 1048576 bytes (1.0 MB), the limit of POST /components",
    }


def test_the_json_limit_is_a_setting(clean_db: Engine, settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"max_json_bytes": 2048}))
    with TestClient(app) as c:
        r = c.post("/cases", content=b'{"description":"' + b"x" * 3000 + b'"}', headers=JSON)
        assert r.status_code == 413
        assert r.json()["detail"] == "request body larger than 2048 bytes (0.0 MB), the limit of POST /cases"
        under = c.post("/cases", json={"class_code": "06010", "description": "x" * 1500})
        assert under.status_code == 422, under.text  # read, then refused for what it lacks — not for its size
        refusal = under.json()
        assert (refusal["error"], [(i["field"], i["code"]) for i in refusal["detail"]["items"]]) == (
            "invalid_input",
            [("lon", "no_location"), ("lat", "no_location")],
        )
    assert Settings(max_json_bytes="5000").max_json_bytes == 5000


def test_photo_forms_take_more_than_the_json_limit_up_to_their_own(client: TestClient) -> None:
    assert MAX_FORM_BYTES == 10 * 15 * 1024 * 1024 + 1024 * 1024
    big = client.post("/cases/form", data={"class_code": "06010"}, files={"photos": ("a.jpg", b"x" * 2_000_000)})
    assert big.status_code == 422  # read and refused as not a photo, not 413
    assert big.json()["detail"]["items"][0]["field"] == "photos[0]"

    def chunks() -> Iterator[bytes]:
        yield b'--b\r\nContent-Disposition: form-data; name="class_code"\r\n\r\n06010\r\n'
        for _ in range(MAX_FORM_BYTES // (1024 * 1024) + 2):
            yield b"x" * (1024 * 1024)

    over = client.post("/cases/form", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"})
    assert over.status_code == 413
    assert over.json() == {
        "error": "payload_too_large",
        "reason": "payload_too_large",
        "detail": f"request body larger than {MAX_FORM_BYTES} bytes (151.0 MB), the limit of POST /cases/form",
    }


# -- D15 / D16: components -------------------------------------------------------------------------------------


def test_component_times_are_china_time_like_the_cases(client: TestClient, lamp: dict[str, Any]) -> None:
    feature = client.post("/components", json=lamp, headers=EDITOR).json()
    assert feature["properties"]["updated_at"].endswith("+08:00")
    listed = client.get("/components", params={"limit": 1}).json()["features"][0]
    assert listed["properties"]["updated_at"] == feature["properties"]["updated_at"]
    history = client.get(f"/components/{feature['id']}/history").json()["history"]
    assert history[0]["at"].endswith("+08:00")


def test_the_component_api_refuses_misspelt_fields_and_over_long_values(
    client: TestClient, lamp: dict[str, Any]
) -> None:
    r = client.post("/components", json={**lamp, "nmae": "typo"}, headers=EDITOR)
    assert r.status_code == 422
    assert r.json() == refusal_body(
        [{"field": "nmae", "reason": "Extra inputs are not permitted", "code": "extra_forbidden"}]
    )
    r = client.post("/components", json={**lamp, "name": "灯" * 100_000}, headers=EDITOR)
    assert r.status_code == 422
    assert r.json() == refusal_body(
        [
            {
                "field": "name",
                "reason": "String should have at most 200 characters",
                "code": "string_too_long",
                "limit": {"max_length": 200},
            }
        ]
    )
    r = client.post("/components", json={**lamp, "note": "x" * 2001}, headers=EDITOR)
    assert r.json()["detail"]["items"] == [
        {
            "field": "note",
            "reason": "String should have at most 2000 characters",
            "code": "string_too_long",
            "limit": {"max_length": 2000},  # the bound, for a client to say it in its own words
        }
    ]
    r = client.post("/components", json={**lamp, "attrs": {f"k{i}": i for i in range(101)}}, headers=EDITOR)
    assert r.json()["detail"]["items"] == [
        {"field": "attrs", "reason": "Value error, at most 100 keys, got 101", "code": "value_error"}
    ]
    r = client.post("/components", json={**lamp, "attrs": {"k": "x" * 10_000}}, headers=EDITOR)
    assert r.json()["detail"]["items"] == [
        {"field": "attrs", "reason": "Value error, at most 10000 characters as JSON, got 10009", "code": "value_error"}
    ]
    cid = client.post("/components", json=lamp, headers=EDITOR).json()["id"]
    r = client.patch(f"/components/{cid}", json={"version": 1, "stauts": "破损"}, headers=EDITOR)
    assert r.json()["detail"]["items"] == [
        {"field": "stauts", "reason": "Extra inputs are not permitted", "code": "extra_forbidden"}
    ]
    r = client.post(f"/components/{cid}/retire", json={"reason": "拆除", "note": "x"}, headers=EDITOR)
    assert r.json()["detail"]["items"] == [
        {"field": "note", "reason": "Extra inputs are not permitted", "code": "extra_forbidden"}
    ]


# -- D17: HEAD, malformed JSON, Content-Type, CORS ----------------------------------------------------------------


def test_head_answers_like_get_without_a_body(client: TestClient, lamp: dict[str, Any]) -> None:
    get, head = client.get("/health"), client.head("/health")
    assert head.status_code == get.status_code == 200
    assert head.content == b"" and head.headers["content-type"] == "application/json"
    assert head.headers["content-length"] == get.headers["content-length"]
    assert client.head("/grids?limit=1").status_code == 200
    assert client.head("/components/nope").status_code == 404
    assert client.head("/cases/1/merge").status_code == 405  # a POST-only path stays 405


def test_malformed_json_says_where_with_line_and_column(client: TestClient) -> None:
    r = client.post(
        "/components", content=b'{"class_code": "01037",\n  "lon": 113.7,, "lat": 34.7}', headers={**JSON, **EDITOR}
    )
    assert r.status_code == 422
    assert r.json() == refusal_body(
        [
            {
                "field": "body",
                "reason": "invalid JSON at line 2 column 16 (character 40): Expecting property name enclosed in "
                "double quotes",
                "code": "json_invalid",
            }
        ]
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/cases"), ("POST", "/components"), ("PATCH", "/components/x"), ("POST", "/cases/1/actions/handle")],
)
def test_a_json_body_that_is_not_utf8_is_a_422_naming_the_byte_and_its_offset(
    offline: TestClient, method: str, path: str
) -> None:
    """Refused before anything else is asked (the database here is down): as malformed JSON is, with its own code."""
    body = b'{"class_code": "06010", "address": "caf\xe9 1"}'  # Latin-1, not UTF-8
    r = offline.request(method, path, content=body, headers={**JSON, "X-Role": "department"})
    assert r.status_code == 422
    assert r.json() == refusal_body(
        [
            {
                "field": "body",
                "reason": "the body is not UTF-8 text: byte 0xE9 at offset 39 (invalid continuation byte); a JSON body "
                "must be UTF-8 (RFC 8259) — a charset its Content-Type declares (charset=gbk) is not honoured; send it "
                "as UTF-8",
                "code": "body_not_utf8",
            }
        ]
    )


def not_utf8_refused(field: str, why: str) -> dict[str, Any]:
    fix = "percent-encode the UTF-8 bytes of the text (e.g. 李 as %E6%9D%8E)"
    return {
        "error": "invalid_input",
        "reason": "not_utf8",
        "detail": {
            "message": f"{field}: not UTF-8 text: {why}; {fix}",
            "items": [{"field": field, "reason": "not UTF-8", "code": "not_utf8"}],
        },
    }


@pytest.mark.parametrize(
    ("path", "field", "byte", "offset"),
    [
        ("/cases?department=ab%E6%9D%FF", "department", "E6", 2),  # a 李 cut off: named where it starts
        ("/components?department=ab%E9", "department", "E9", 2),
        ("/cases?limit=1&state=%C3", "state", "C3", 0),
        ("/grids/%FF", "code", "FF", 0),
        ("/components/41990201037000001%FF/history", "component_id", "FF", 17),
        ("/console?x=%FF", "x", "FF", 0),
    ],
)
def test_a_percent_encoded_value_that_is_not_utf8_is_a_422_naming_it_not_a_search_for_u_fffd(
    offline: TestClient, path: str, field: str, byte: str, offset: int
) -> None:
    """Starlette would read the bytes as U+FFFD: a department filter found nothing instead of being refused."""
    r = offline.get(path)
    assert r.status_code == 422
    assert r.json() == not_utf8_refused(field, f"byte 0x{byte} at offset {offset} of the decoded bytes")


def test_a_u_fffd_sent_as_utf8_is_not_refused_in_a_query(offline: TestClient) -> None:
    assert offline.get("/cases?department=%EF%BF%BD").status_code == 503  # past the check, to the database


def test_an_urlencoded_form_field_that_is_not_utf8_is_a_422_naming_it(offline: TestClient) -> None:
    form = {"content-type": "application/x-www-form-urlencoded"}
    r = offline.post("/cases/form", content=b"class_code=06010&address=caf%E9", headers=form)
    assert r.status_code == 422
    assert r.json() == not_utf8_refused("address", "byte 0xE9 at offset 3 of the decoded bytes")


@pytest.mark.parametrize(
    ("body", "field", "why"),
    [
        (b"class_code=06010&description=" + "李".encode("gbk"), "description", "byte 0xC0 at offset 0"),
        (b"class_code=06010&addr%FFess=x", "addr\ufffdess", "the field's name: byte 0xFF at offset 4"),
    ],
    ids=["raw-gbk-value", "bad-name"],
)
def test_an_urlencoded_form_with_raw_bytes_that_are_not_utf8_is_refused_not_read_as_latin1(
    offline: TestClient, body: bytes, field: str, why: str
) -> None:
    """review18 #2: Starlette reads raw bytes of a urlencoded body as Latin-1 — 李 sent as GBK was stored as Àî."""
    r = offline.post("/cases/form", content=body, headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 422
    assert r.json() == not_utf8_refused(field, f"{why} of the decoded bytes")


def test_an_urlencoded_form_is_read_as_the_url_standard_reads_it(client: TestClient, lamp: dict[str, Any]) -> None:
    """Raw UTF-8 (what ``curl -d 'description=李娜'`` sends) is UTF-8, percent-encoded bytes too, and a U+FFFD sent
    as UTF-8 is text like any other (it was taken for the mark of bytes that were not UTF-8)."""
    fields = "&".join(f"{k}={v}" for k, v in lamp.items() if k != "class_code")
    body = f"class_code=06010&{fields}&description=李娜 %E4%BA%95盖+\ufffd".encode()
    r = client.post(
        "/cases/form",
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded", "X-Role": "supervisor"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["description"] == "李娜 井盖 \ufffd"


def multipart(*parts: tuple[str, bytes, str | None]) -> tuple[bytes, dict[str, str]]:
    """A multipart body written byte for byte: (field name, raw value, the part's Content-Type or None)."""
    body = b""
    for name, value, content_type in parts:
        head = f'--b\r\nContent-Disposition: form-data; name="{name}"\r\n'.encode()
        if content_type:
            head += f"Content-Type: {content_type}\r\n".encode()
        body += head + b"\r\n" + value + b"\r\n"
    return body + b"--b--\r\n", {"content-type": "multipart/form-data; boundary=b"}


def test_a_multipart_text_field_that_is_not_utf8_is_a_422_naming_it_not_stored_as_latin1(
    offline: TestClient,
) -> None:
    """The framework reads such bytes as Latin-1: 井盖破损 sent as GBK was stored as the description ¾®¸ÇÆÆËð."""
    body, headers = multipart(("class_code", b"06010", None), ("description", "井盖破损".encode("gbk"), None))
    r = offline.post("/cases/form", content=body, headers=headers)
    assert r.status_code == 422
    assert r.json() == {
        "error": "invalid_input",
        "reason": "not_utf8",
        "detail": {
            "message": "description: not UTF-8 text: byte 0xBE at offset 0; send form fields as UTF-8 (or name"
            " their charset in the part's Content-Type, e.g. text/plain; charset=gbk)",
            "items": [{"field": "description", "reason": "not UTF-8", "code": "not_utf8"}],
        },
    }


@pytest.mark.parametrize(
    ("value", "content_type"),
    [
        ("5 m² · 井盖".encode(), None),  # UTF-8 whose characters are all Latin-1 ones too (m², ·) is text as sent
        ("井盖破损".encode("gbk"), "text/plain; charset=gbk"),  # a part that names its charset
    ],
    ids=["utf8", "gbk-named"],
)
def test_multipart_text_in_utf8_or_in_its_named_charset_is_read_as_sent(
    client: TestClient, lamp: dict[str, Any], value: bytes, content_type: str | None
) -> None:
    fields = [(k, str(v).encode(), None) for k, v in lamp.items() if k != "class_code"]
    body, headers = multipart(("class_code", b"06010", None), *fields, ("description", value, content_type))
    r = client.post("/cases/form", content=body, headers={**headers, "X-Role": "supervisor"})
    assert r.status_code == 201, r.text
    assert r.json()["description"] == value.decode("gbk" if content_type else "utf-8")


def test_a_multipart_text_not_in_the_charset_its_part_names_is_refused_naming_that_charset(
    offline: TestClient,
) -> None:
    body, headers = multipart(("class_code", b"06010", None), ("address", b"\xff\xff", "text/plain; charset=gbk"))
    r = offline.post("/cases/form", content=body, headers=headers)
    assert r.status_code == 422 and r.json()["reason"] == "not_utf8"
    assert r.json()["detail"]["message"].startswith("address: not gbk text: byte 0xFF at offset 0;")
    assert r.json()["detail"]["items"] == [{"field": "address", "reason": "not gbk", "code": "not_utf8"}]


@pytest.mark.parametrize("charset", ["idna", "punycode"])
def test_a_multipart_part_naming_a_codec_that_is_no_text_charset_is_refused_by_field(
    offline: TestClient, charset: str
) -> None:
    """review20 D6: such a codec raised another error than a decode error — a bare 400, or a 422 naming the body."""
    body, headers = multipart(
        ("class_code", b"06010", None), ("address", b"\xff\xfe", f"text/plain; charset={charset}")
    )
    r = offline.post("/cases/form", content=body, headers=headers)
    assert r.status_code == 422 and r.json()["reason"] == "not_utf8", r.text
    assert r.json()["detail"]["message"].startswith(f"address: not {charset} text: ")
    assert r.json()["detail"]["items"][0]["field"] == "address"


def test_a_multipart_form_naming_a_charset_nobody_knows_is_refused(offline: TestClient) -> None:
    """review18 #4: Starlette reads the form in Latin-1 then, and GBK text went through as Àî."""
    body, _ = multipart(("class_code", b"06010", None), ("address", "李".encode("gbk"), None))
    headers = {"content-type": "multipart/form-data; charset=no-such-cs; boundary=b"}
    r = offline.post("/cases/form", content=body, headers=headers)
    assert r.status_code == 422 and r.json()["reason"] == "not_utf8"
    assert r.json()["detail"] == {
        "message": "Content-Type: the form's charset 'no-such-cs' is not known; send form fields as UTF-8 (or name "
        "their charset in the part's Content-Type, e.g. text/plain; charset=gbk)",
        "items": [{"field": "Content-Type", "reason": "unknown charset 'no-such-cs'", "code": "not_utf8"}],
    }


def test_every_route_that_takes_a_form_reads_its_text_strictly() -> None:
    from fastapi.params import Form as FormParam

    from api.inputs import FormTextRoute

    app = create_app(Settings(database_url="postgresql+psycopg2://u@127.0.0.1:1/x"))
    routes = [r for top in app.routes for r in getattr(getattr(top, "original_router", None), "routes", [top])]
    form_routes = [
        r
        for r in routes
        if getattr(r, "body_field", None) is not None and isinstance(r.body_field.field_info, FormParam)
    ]
    assert {r.path for r in form_routes} >= {"/cases/form", "/cases/{case_id}/actions/{action}/form"}
    assert [r.path for r in form_routes if not isinstance(r, FormTextRoute)] == []


def test_a_multipart_part_naming_a_charset_nobody_knows_is_refused(offline: TestClient) -> None:
    body, headers = multipart(("class_code", b"06010", None), ("address", b"x", "text/plain; charset=klingon"))
    r = offline.post("/cases/form", content=body, headers=headers)
    assert r.status_code == 422 and r.json()["reason"] == "not_utf8"
    assert r.json()["detail"]["message"].startswith("address: the part's charset 'klingon' is not known; send")
    assert r.json()["detail"]["items"] == [
        {"field": "address", "reason": "unknown charset 'klingon'", "code": "not_utf8"}
    ]


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "application/x-www-form-urlencoded", None])
def test_a_json_endpoint_says_the_body_must_be_json(client: TestClient, content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    r = client.post("/cases", content=b'{"class_code": "06010"}', headers=headers)
    assert r.status_code == 415
    got = content_type or "no Content-Type"
    assert r.json() == refusal_body(
        [
            {
                "field": "Content-Type",
                "reason": f"the body must be application/json, got {got}",
                "code": "unsupported_media_type",
            }
        ],
        "unsupported_media_type",
    )


def test_a_form_endpoint_says_the_body_must_be_multipart(client: TestClient) -> None:
    r = client.post("/cases/form", json={"class_code": "06010"})
    assert r.status_code == 415
    assert r.json() == refusal_body(
        [
            {
                "field": "Content-Type",
                "reason": "the body must be multipart/form-data (or application/x-www-form-urlencoded without "
                "photos), got application/json",
                "code": "unsupported_media_type",
            }
        ],
        "unsupported_media_type",
    )


def test_a_report_form_takes_urlencoded_as_the_docs_say(client: TestClient) -> None:
    """review41 D9: urlencoded was filed (201) where README and OpenAPI said multipart only, 415 otherwise."""
    xs, ys = inside_points(1, seed=9)
    fields = {"class_code": "06010", "lon": str(float(xs[0])), "lat": str(float(ys[0])), "datum": "cgcs2000"}
    r = client.post("/cases/form", data={**fields, "description": "李娜 路口垃圾"})  # urlencoded, as curl -d
    assert r.status_code == 201, r.text
    case = client.get(f"/cases/{r.json()['id']}").json()
    assert (case["description"], case["lon"], case["lat"]) == ("李娜 路口垃圾", round(xs[0], 7), round(ys[0], 7))
    spec = client.get("/openapi.json").json()
    for path in ("/cases/form", "/cases/{case_id}/actions/{action}/form"):
        content = spec["paths"][path]["post"]["requestBody"]["content"]
        assert set(content) == {"multipart/form-data", "application/x-www-form-urlencoded"}, path
        assert content["multipart/form-data"] == content["application/x-www-form-urlencoded"]
        assert "urlencoded without photos" in spec["paths"][path]["post"]["responses"]["415"]["description"]
    photos = spec["paths"]["/components/{component_id}/photos"]["post"]["requestBody"]["content"]
    assert set(photos) == {"multipart/form-data"}  # photos need multipart


def test_cors_is_off_by_default_and_on_for_the_configured_origins(clean_db: Engine, settings: Settings) -> None:
    preflight = {"origin": "https://app.example.cn", "access-control-request-method": "POST"}
    with TestClient(create_app(settings)) as c:
        assert (
            "access-control-allow-origin" not in c.get("/health", headers={"origin": "https://app.example.cn"}).headers
        )
        assert c.options("/cases", headers=preflight).status_code == 405
    with TestClient(create_app(settings.model_copy(update={"cors_origins": ["https://app.example.cn"]}))) as c:
        r = c.options("/cases", headers={**preflight, "access-control-request-headers": "content-type,x-actor"})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://app.example.cn"
        r = c.get("/health", headers={"origin": "https://app.example.cn"})
        assert r.headers["access-control-allow-origin"] == "https://app.example.cn"
        # a browser app may read where its new case is and whether an action's answer was a replay (review34 D7)
        assert r.headers["access-control-expose-headers"] == "Location, Idempotent-Replayed"
        assert "access-control-allow-origin" not in c.get("/health", headers={"origin": "https://evil.example"}).headers
        # a refused preflight says what was refused, in JSON like every refusal (was text/plain "Disallowed CORS …")
        refused = {**preflight, "origin": "https://evil.example", "access-control-request-headers": "x-secret"}
        r = c.options("/cases", headers=refused)
        assert r.status_code == 400 and r.headers["content-type"] == "application/json"
        headers_why = (
            "a header asked for is not one the API reads (Content-Type, X-Actor, X-Role, X-Department, Idempotency-Key)"
        )
        origin_why = "the page's origin is not listed in GISGRID_CORS_ORIGINS"
        # one item shape as every refusal's (review52 F3): English reason, a code per part, the Chinese in message_zh
        body = {
            "error": "bad_request",
            "reason": "cors_preflight_refused",
            "detail": {
                "message": f"origin: {origin_why}; headers: {headers_why}",
                "items": [
                    {"field": "origin", "reason": origin_why, "code": "cors_origin_not_allowed"},
                    {"field": "headers", "reason": headers_why, "code": "cors_headers_not_allowed"},
                ],
            },
        }
        assert r.json() == body
        zh = c.options("/cases", headers={**refused, "accept-language": "zh-CN"})
        assert zh.status_code == 400
        assert zh.json() == {
            **body,
            "message_zh": "origin:来源不在本系统允许的跨域来源中(GISGRID_CORS_ORIGINS);"
            "headers:请求头不受支持:跨域只可发送 Content-Type、X-Actor、X-Role、X-Department、Idempotency-Key",
        }
        assert "access-control-allow-origin" not in r.headers
        method = c.options("/cases", headers={**preflight, "access-control-request-method": "DELETE"})
        assert method.status_code == 400
        assert method.json()["detail"]["items"] == [
            {
                "field": "method",
                "reason": "the method is not one the API takes from another origin",
                "code": "cors_method_not_allowed",
            }
        ]
        assert "access-control-allow-origin" not in r.headers


def test_cors_origins_setting_reads_a_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GISGRID_CORS_ORIGINS", "https://a.example.cn/, http://10.0.0.5:8080")
    assert Settings().cors_origins == ["https://a.example.cn", "http://10.0.0.5:8080"]
    monkeypatch.setenv("GISGRID_CORS_ORIGINS", '["*"]')
    assert Settings().cors_origins == ["*"]
    monkeypatch.delenv("GISGRID_CORS_ORIGINS")
    assert Settings().cors_origins == []


def test_json_error_bodies_round_trip(client: TestClient) -> None:
    """Every error above is JSON a client can parse with one model: error + detail (+ reason, a code)."""
    for r in (client.get("/grids/a%00b"), client.post("/cases", content=b"{", headers=JSON), client.get("/nope")):
        assert set(json.loads(r.text)) == {"error", "reason", "detail"}


# -- a transaction the database aborted for a concurrent one: 409, not the 503 of an outage ----------------------


def conflict_answered(r: Any, records: list[logging.LogRecord], cause: str) -> None:
    """409 ``conflict``, reason ``concurrent_conflict``, saying nothing was written, under a reference the server
    log's one warning line carries with the cause."""
    assert r.status_code == 409, r.text
    ref = r.json()["ref"]
    assert r.json() == {
        "error": "conflict",
        "reason": "concurrent_conflict",
        "detail": "与其他操作冲突,本次未写入 / conflicted with a concurrent change: nothing was written; try again "
        f"(reference {ref})",
        "ref": ref,
    }
    lines = [rec for rec in records if f"ref={ref}" in rec.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING and lines[0].exc_info is None
    assert f" 409 concurrent_conflict ref={ref}: {cause}" in lines[0].getMessage()


def test_a_real_deadlock_is_a_409_to_send_again_and_an_outage_stays_a_503(
    client: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A deadlock is a psycopg2 ``OperationalError`` as an outage is: it was answered 503 数据库暂不可用."""
    from tests.fixtures import real_deadlock

    deadlock = real_deadlock(engine)
    assert isinstance(deadlock.orig, psycopg2.errors.DeadlockDetected)

    def raising(exc: Exception) -> Any:
        def case_page(*_a: Any, **_kw: Any) -> Any:
            raise exc

        return case_page

    monkeypatch.setattr(case_queries, "case_page", raising(deadlock))
    with caplog.at_level(logging.WARNING, logger="gisgrid.api"):
        r = client.get("/cases")
    conflict_answered(r, caplog.records, "DeadlockDetected 40P01: deadlock detected")
    outage = sa_exc.OperationalError("SELECT 1", {}, psycopg2.OperationalError("server closed the connection"))
    monkeypatch.setattr(case_queries, "case_page", raising(outage))
    r = client.get("/cases")
    assert r.status_code == 503 and r.json()["error"] == "database_error"


@pytest.mark.parametrize(
    ("exc", "cause"),
    [
        (
            sa_exc.OperationalError("UPDATE cases", {}, psycopg2.errors.SerializationFailure("could not serialize")),
            "SerializationFailure: could not serialize",
        ),
        (psycopg2.errors.DeadlockDetected("deadlock detected"), "DeadlockDetected: deadlock detected"),
        (
            asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
            "DeadlockDetectedError 40P01: deadlock detected",
        ),
        (asyncpg.exceptions.SerializationError("could not serialize"), "SerializationError 40001: could not serialize"),
        (
            sa_exc.DBAPIError("INSERT", {}, Exception("wrapped"), connection_invalidated=False),
            None,  # not a rollback of the database: a 500 as before
        ),
    ],
    ids=["sa-psycopg2-serialization", "psycopg2-deadlock", "asyncpg-deadlock", "asyncpg-serialization", "other"],
)
def test_every_driver_s_deadlock_or_serialization_failure_is_a_409(
    settings: Settings, caplog: pytest.LogCaptureFixture, exc: Exception, cause: str | None
) -> None:
    app = _failing_app(settings, exc)
    with caplog.at_level(logging.WARNING, logger="gisgrid.api"), TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/fail")
    if cause is None:
        assert r.status_code == 500 and r.json()["error"] == "internal_error"
    else:
        conflict_answered(r, caplog.records, cause)


# -- review29 D7 / D11: error bodies as documented ---------------------------------------------------------------


def _report(client: TestClient, lamp: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/cases", json={**lamp, "class_code": "06010"}, headers={"X-Role": "supervisor", "X-Actor": "s"})
    assert r.status_code == 201, r.text
    return r.json()


def test_unknown_action_and_role_list_their_items_as_every_refusal_does(
    client: TestClient, lamp: dict[str, Any]
) -> None:
    """``detail.items`` was an object (``{"role": "boss"}``), not the documented list of ``{field, reason, code}``."""
    cid = _report(client, lamp)["id"]
    r = client.get(f"/cases/{cid}", headers={"X-Role": "boss"})
    assert r.status_code == 422
    assert r.json() == {
        "error": "invalid_input",
        "reason": "unknown_role",
        "detail": {
            "message": f"unknown role 'boss'; expected one of: {', '.join(ROLES)}",
            "items": [
                {"field": "X-Role", "reason": "not a role of the workflow", "value": "boss", "code": "unknown_role"}
            ],
        },
    }
    r = client.post(f"/cases/{cid}/actions/fly", json={"version": 1}, headers={"X-Role": "supervisor"})
    assert r.status_code == 422 and r.json()["reason"] == "unknown_action"
    assert r.json()["detail"]["items"] == [
        {"field": "action", "reason": "not an action of the workflow", "value": "fly", "code": "unknown_action"}
    ]


def test_an_unknown_payload_field_is_named_by_its_json_path(client: TestClient, lamp: dict[str, Any]) -> None:
    cid = _report(client, lamp)["id"]
    r = client.post(
        f"/cases/{cid}/actions/verify",
        json={"version": 1, "payload": {"departmnt": "x"}},
        headers={"X-Role": "supervisor"},
    )
    assert r.status_code == 422 and r.json()["detail"]["message"].startswith("payload.departmnt: verify takes no")
    assert r.json()["detail"]["items"] == [
        {"field": "payload.departmnt", "reason": "unknown field", "code": "extra_forbidden"}
    ]


def actor_too_long(got: int) -> dict[str, Any]:
    return {
        "error": "invalid_input",
        "reason": "string_too_long",
        "detail": {
            "message": f"X-Actor header: at most 100 characters, got {got}",
            "items": [
                {"field": "X-Actor", "reason": "too long", "limit": {"max_length": 100}, "code": "string_too_long"}
            ],
        },
    }


def test_x_actor_has_the_reporter_s_limit_and_its_refusal_names_the_header(
    client: TestClient, clean_db: Engine, lamp: dict[str, Any]
) -> None:
    """A 100,000-character X-Actor was stored as who acted; a long one on a report was blamed on ``reporter``."""
    case = _report(client, lamp)
    long, edge = "a" * 5000, "李" * 100
    body = {**lamp, "class_code": "06010"}
    for extra in ({}, {"reporter": "张三"}):
        r = client.post("/cases", json={**body, **extra}, headers={"X-Role": "supervisor", "X-Actor": long})
        assert (r.status_code, r.json()) == (422, actor_too_long(5000)), extra
    r = client.post(
        f"/cases/{case['id']}/actions/verify",
        json={"version": 1},
        headers={"X-Role": "supervisor", "X-Actor": "b" * 100_000},
    )
    assert (r.status_code, r.json()) == (422, actor_too_long(100_000))
    r = client.post("/components", json=lamp, headers={**EDITOR, "X-Actor": "%E6%9D%8E" * 101})
    assert (r.status_code, r.json()) == (422, actor_too_long(101))  # counted in characters, once decoded
    with clean_db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM cases")).scalar_one() == 1
        assert conn.execute(text("SELECT max(length(actor)) FROM case_transitions")).scalar_one() == 1
    r = client.post(
        f"/cases/{case['id']}/actions/verify",
        json={"version": 1},
        headers={"X-Role": "supervisor", "X-Actor": "%E6%9D%8E" * 100},
    )
    assert r.status_code == 200, r.text
    assert r.json()["timeline"][-1]["actor"] == edge


def test_an_empty_json_body_is_named_body_as_a_malformed_one_is(client: TestClient) -> None:
    r = client.post("/cases", content=b"", headers={**JSON, "X-Role": "supervisor"})
    assert (r.status_code, r.json()) == (
        422,
        refusal_body([{"field": "body", "reason": "Field required", "code": "missing"}]),
    )


def _bomb_png() -> bytes:
    """~50 MP, 1-bit and uniform: a few kB, as a decompression bomb is."""
    from PIL import Image

    from gisgrid.photos import MAX_PIXELS

    buf = io.BytesIO()
    Image.new("1", (8000, MAX_PIXELS // 8000 + 1)).save(buf, "PNG")
    return buf.getvalue()


def test_a_photo_over_a_bound_is_refused_with_the_bound_as_limit(client: TestClient, lamp: dict[str, Any]) -> None:
    """README: a refusal by a bound adds it as ``limit`` — ``too_many_photos`` did, the photo's own bounds not."""
    from gisgrid.photos import MAX_BYTES, MAX_PIXELS

    over = b"\xff\xd8" + b"x" * (MAX_BYTES - 1)
    form = {"class_code": "06010", "lon": str(lamp["lon"]), "lat": str(lamp["lat"]), "datum": "cgcs2000"}
    r = client.post("/cases/form", data=form, files={"photos": ("big.jpg", over)}, headers={"X-Role": "supervisor"})
    assert r.status_code == 422 and r.json()["reason"] == "photo_too_large"
    assert r.json()["detail"]["items"] == [
        {"field": "photos[0]", "reason": "too large", "limit": {"max_bytes": MAX_BYTES}, "code": "photo_too_large"}
    ]
    cid = client.post("/components", json=lamp, headers=EDITOR).json()["id"]
    r = client.post(f"/components/{cid}/photos", files={"photos": ("big.jpg", over)}, headers=EDITOR)
    assert r.status_code == 422 and r.json()["reason"] == "photo_too_large"
    message = f"photos[0]: photo 'big.jpg' is too large: {len(over)} bytes, at most {MAX_BYTES}"
    assert r.json()["detail"] == {
        "message": message,
        "items": [
            {"field": "photos[0]", "reason": message[11:], "limit": {"max_bytes": MAX_BYTES}, "code": "photo_too_large"}
        ],
    }
    bomb = _bomb_png()
    pixels = f"8000×{MAX_PIXELS // 8000 + 1} = {8000 * (MAX_PIXELS // 8000 + 1)} pixels, at most {MAX_PIXELS}"
    for path, kw in (
        ("/cases/form", {"data": form, "headers": {"X-Role": "supervisor"}}),
        (f"/components/{cid}/photos", {"headers": EDITOR}),
        (
            f"/cases/{_report(client, lamp)['id']}/actions/verify/form",
            {"data": {"version": "1"}, "headers": {"X-Role": "supervisor"}},
        ),
    ):
        r = client.post(path, files={"photos": ("bomb.png", bomb)}, **kw)
        assert r.status_code == 422 and r.json()["reason"] == "photo_too_many_pixels", (path, r.text)
        assert r.json()["detail"]["items"] == [
            {
                "field": "photos[0]",
                "reason": f"photo 'bomb.png' is too large: {pixels}",
                "limit": {"max_pixels": MAX_PIXELS},
                "code": "photo_too_many_pixels",
            }
        ], path


def test_a_405_says_which_methods_the_path_takes(client: TestClient) -> None:
    """RFC 9110 §15.5.6: a 405 MUST carry ``Allow``; the JSON answer was rebuilt without the exception's headers."""
    r = client.delete("/cases/1")
    assert (r.status_code, r.json()) == (
        405,
        {"error": "method_not_allowed", "reason": "method_not_allowed", "detail": "Method Not Allowed"},
    )
    assert r.headers["allow"] == "GET, HEAD"
    # Every method of the path, not only the first route's (the framework's: POST here, GET being another route).
    r = client.put("/components")
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD, POST"
    r = client.delete("/components/x")
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD, PATCH"
    assert client.head("/components/x").status_code == 404  # HEAD is answered where GET is


def test_an_http_exception_keeps_its_headers(settings: Settings) -> None:
    from starlette.exceptions import HTTPException

    app = create_app(settings)

    @app.get("/_busy")
    async def _busy() -> None:
        raise HTTPException(503, "busy", headers={"Retry-After": "7"})

    @app.get("/_who")
    async def _who() -> None:
        raise HTTPException(401, "who?", headers={"WWW-Authenticate": 'Basic realm="gisgrid"'})

    with TestClient(app) as c:
        r = c.get("/_busy")
        assert (r.status_code, r.json(), r.headers["retry-after"]) == (
            503,
            {"error": "http_error", "reason": "http_error", "detail": "busy"},
            "7",
        )
        r = c.get("/_who")
        assert (r.status_code, r.headers["www-authenticate"]) == (401, 'Basic realm="gisgrid"')


# -- review41 D7: the framework's 400 http_error, as documented refusals ----------------------------------------


def test_json_nested_past_the_parser_is_json_too_deep_like_any_too_deep_json(client: TestClient) -> None:
    """~1000 levels overflow the JSON parser itself: it was 400 http_error "There was an error parsing the body",
    where 800 levels gave 422 json_too_deep."""
    too_deep = {
        "error": "invalid_input",
        "reason": "json_too_deep",
        "detail": {
            "message": "body: nested more than 8 levels deep",
            "items": [
                {
                    "field": "body",
                    "reason": "nested more than 8 levels deep",
                    "code": "json_too_deep",
                    "limit": {"max_depth": 8},
                }
            ],
        },
    }
    deep = '{"class_code": "06010", "description": ' + "[" * 5000 + "]" * 5000 + "}"
    r = client.post("/cases", content=deep, headers=JSON)
    assert (r.status_code, r.json()) == (422, too_deep)
    r = client.post("/cases", content="[" * 100_000 + "]" * 100_000, headers=JSON)
    assert (r.status_code, r.json()) == (422, too_deep)


def form_refused(status: int, reason: str, message: str, item: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return status, {
        "error": "payload_too_large" if status == 413 else "invalid_input",
        "reason": reason,
        "detail": {"message": message, "items": [{**item, "code": reason}]},
    }


def test_a_malformed_multipart_body_is_a_422_form_malformed(client: TestClient) -> None:
    r = client.post("/cases/form", content=b"class_code=06010", headers={"content-type": "multipart/form-data"})
    assert (r.status_code, r.json()) == form_refused(
        422,
        "form_malformed",
        "body: Missing boundary in multipart.",  # the Chinese (表单格式错误) in message_zh
        {"field": "body", "reason": "Missing boundary in multipart."},
    )
    nameless = b"--b\r\nContent-Disposition: form-data\r\n\r\n06010\r\n--b--\r\n"
    r = client.post("/cases/form", content=nameless, headers={"content-type": "multipart/form-data; boundary=b"})
    assert r.status_code == 422 and r.json()["reason"] == "form_malformed"


def test_too_many_form_fields_or_too_large_a_field_is_a_413_naming_the_limit(client: TestClient) -> None:
    """The framework's limits (1000 fields, 1 MB a text field) were 400 http_error."""
    many = "Too many fields. Maximum number of fields is 1000."
    expected = form_refused(
        413,
        "too_many_form_fields",
        f"body: {many}",
        {"field": "body", "reason": many, "limit": {"max_items": 1000}},
    )
    body, headers = multipart(*[(f"f{i}", b"1", None) for i in range(1001)])
    r = client.post("/cases/form", content=body, headers=headers)
    assert (r.status_code, r.json()) == expected
    assert r.headers["connection"] == "close"
    r = client.post(
        "/cases/form",
        content="&".join(f"f{i}=1" for i in range(1001)),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert (r.status_code, r.json()) == expected
    big = "x" * (1024 * 1024 + 1)
    body, headers = multipart(("class_code", b"06010", None), ("description", big.encode(), None))
    r = client.post("/cases/form", content=body, headers=headers)
    said = "a form field may hold at most 1024 KB"  # one wording for multipart and urlencoded
    assert (r.status_code, r.json()) == form_refused(
        413,
        "form_field_too_large",
        f"description: {said}",
        {"field": "description", "reason": said, "limit": {"max_bytes": 1024 * 1024}},
    )
    r = client.post("/cases/form", data={"class_code": "06010", "description": big})  # urlencoded: the same limit
    assert (r.status_code, r.json()) == form_refused(
        413,
        "form_field_too_large",
        f"description: {said}",
        {"field": "description", "reason": said, "limit": {"max_bytes": 1024 * 1024}},
    )


def test_a_client_asking_for_chinese_gets_each_refusal_in_chinese_beside_the_documented_detail(
    settings: Settings,
) -> None:
    """review41 U1: a 12345 system showing a refusal as it is sends ``Accept-Language: zh-CN`` and finds
    ``message_zh``: the Chinese half of a zh-first message, else each field with its code's text, else the reason's
    or the status's; the detail stays as documented, and a client not asking gets the body as before."""
    zh = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}
    with TestClient(create_app(settings)) as client:
        plain = client.get("/cases", params={"sort": "oldest"})
        assert "message_zh" not in plain.json()
        r = client.get("/cases", params={"sort": "oldest"}, headers=zh)
        assert r.status_code == 422 and r.json() == {**plain.json(), "message_zh": "sort:不在可选范围内"}
        assert int(r.headers["content-length"]) == len(r.content)
        assert client.get("/grids/locate", params={"lon": "x", "lat": 1}, headers=zh).json()["message_zh"] == (
            "lon:须为数字"
        )
        assert client.get("/no-such-page", headers=zh).json()["message_zh"] == "未找到"
        refused = client.post("/cases", json={"class_code": "06010"}, headers={**zh, "X-Role": "intake"}).json()
        assert refused["message_zh"] == "lon、lat:未提供:请定位(GPS 或地图点选),或附带含 GPS 的照片"
        acted = client.post("/cases/999999999/actions/close", json={"version": 1}, headers={**zh, "X-Role": "leader"})
        assert (acted.status_code, acted.json()["message_zh"]) == (404, "未找到 id 为 999999999 的案件")
        assert (
            "message_zh"
            not in client.get("/cases", params={"sort": "oldest"}, headers={"Accept-Language": "en, zh;q=0"}).json()
        )


def test_message_zh_takes_the_chinese_half_of_a_zh_first_message_then_the_reason_then_the_status() -> None:
    from api.errors import message_zh

    texts = {"stale_version": "案件已被他人更新", "missing": "必填"}
    first = {
        "error": "transition_not_allowed",
        "detail": {"message": "案件当前为「已结案」,不能办理「派遣」 / dispatch …"},
    }
    assert message_zh(first, 409, texts) == "案件当前为「已结案」,不能办理「派遣」"
    stale = {"error": "conflict", "reason": "stale_version", "detail": "version 3 is not the case's 4"}
    assert message_zh(stale, 409, texts) == "案件已被他人更新"
    items = {"error": "invalid_input", "detail": [{"field": "lon", "code": "missing"}, {"field": "x", "code": "zz"}]}
    assert message_zh(items, 422, texts) == "lon:必填"
    assert message_zh({"error": "http_error", "detail": "I'm a teapot"}, 418, texts) == "请求未被接受"
    assert message_zh({"error": "internal_error", "detail": "boom"}, 500, texts) == "服务器内部错误"


def test_an_unexpected_error_is_logged_once_not_raised_again_to_the_server(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """review46 F7: after the 500 handler logged the traceback under its ref, Starlette raised the exception again
    and uvicorn logged the same traceback a second time ("Exception in ASGI application", no ref). The test client
    raises what reaches the server (its default): now nothing does."""
    app = _failing_app(settings, RuntimeError("secret internals"))
    with caplog.at_level(logging.ERROR), TestClient(app) as c:
        r = c.get("/fail")
    assert r.status_code == 500 and r.json()["error"] == "internal_error"
    tracebacks = [rec for rec in caplog.records if rec.exc_info]
    assert len(tracebacks) == 1 and r.json()["ref"] in tracebacks[0].getMessage()
