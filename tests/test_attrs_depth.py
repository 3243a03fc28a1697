"""Free JSON nested deeper than ``gisgrid.texts.MAX_JSON_DEPTH`` is refused where it comes in — POST and PATCH
/components, a component file's row, any JSON body — and a component write is answered before it commits
(review24 #6: ``attrs`` 500 deep was stored, and a later PATCH committed, then answered 500)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

import api.routers.components as components_router
from gisgrid.texts import MAX_JSON_DEPTH
from tests.test_components_store import count, inside_points, run

WHO = {"X-Actor": "li", "X-Role": "data_admin"}
LAMP = "01037"


def nested(depth: int) -> dict[str, Any]:
    """``{"k": [[…1…]]}``: ``depth`` levels, the attrs object itself the first."""
    value: Any = 1
    for _ in range(depth - 1):
        value = [value]
    return {"k": value}


def deep_refusal(depth: int) -> dict[str, Any]:
    at = "attrs.k" + "[0]" * (MAX_JSON_DEPTH - 1)  # the first list past the limit
    return {
        "error": "invalid_input",
        "reason": "json_too_deep",
        "detail": {
            "message": f"attrs: nested more than 8 levels deep (at {at})",
            "items": [
                {
                    "field": "attrs",
                    "reason": "nested more than 8 levels deep",
                    "limit": {"max_depth": 8},
                    "code": "json_too_deep",
                }
            ],
        },
    }


@pytest.fixture
def spot() -> tuple[float, float]:
    xs, ys = inside_points(1, seed=11)
    return float(xs[0]), float(ys[0])


def _lamp(spot: tuple[float, float], **kw: Any) -> dict[str, Any]:
    return {"class_code": LAMP, "lon": spot[0], "lat": spot[1], "datum": "cgcs2000", **kw}


def _state(engine: Engine) -> tuple[Any, ...]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, name, version, attrs FROM components ORDER BY id")).all()
        history = conn.execute(text("SELECT count(*) FROM component_history")).scalar_one()
    return tuple(tuple(r) for r in rows), history


@pytest.mark.parametrize("depth", [20, 500])
def test_post_and_patch_refuse_deep_attrs_and_write_nothing(
    district_api: TestClient, clean_db: Engine, spot: tuple[float, float], depth: int
) -> None:
    client = district_api
    r = client.post("/components", json=_lamp(spot, attrs=nested(depth)), headers=WHO)
    assert (r.status_code, r.json()) == (422, deep_refusal(depth))
    assert _state(clean_db) == ((), 0)

    made = client.post("/components", json=_lamp(spot, attrs={"Material": "钢"}), headers=WHO)
    assert made.status_code == 201, made.text
    cid = made.json()["id"]
    before = _state(clean_db)
    r = client.patch(f"/components/{cid}", json={"version": 1, "name": "p", "attrs": nested(depth)}, headers=WHO)
    assert (r.status_code, r.json()) == (422, deep_refusal(depth))
    assert _state(clean_db) == before


def test_attrs_as_deep_as_the_limit_are_stored_and_answered(
    district_api: TestClient, spot: tuple[float, float]
) -> None:
    r = district_api.post("/components", json=_lamp(spot, attrs=nested(MAX_JSON_DEPTH)), headers=WHO)
    assert r.status_code == 201, r.text
    assert r.json()["properties"]["attrs"] == nested(MAX_JSON_DEPTH)
    cid = r.json()["id"]
    r = district_api.patch(f"/components/{cid}", json={"version": 1, "name": "p"}, headers=WHO)
    assert r.status_code == 200, r.text
    assert (r.json()["properties"]["name"], r.json()["properties"]["version"]) == ("p", 2)


def test_any_json_body_refuses_deep_values(district_api: TestClient) -> None:
    """An action's payload too (refused before the case is looked for)."""
    r = district_api.post(
        "/cases/1/actions/dispatch",
        json={"version": 1, "payload": {"department": nested(20)}},
        headers={"X-Role": "dispatcher"},
    )
    assert r.status_code == 422, r.text
    assert r.json()["reason"] == "json_too_deep"
    assert r.json()["detail"]["items"] == [
        {
            "field": "payload",
            "reason": "nested more than 8 levels deep",
            "limit": {"max_depth": 8},
            "code": "json_too_deep",
        }
    ]


def test_a_stored_deep_record_is_refused_on_patch_not_answered_500(
    district_api: TestClient, clean_db: Engine, spot: tuple[float, float]
) -> None:
    """Attrs stored before this check: a PATCH re-checks the record whole and refuses it by field, unwritten."""
    cid = district_api.post("/components", json=_lamp(spot), headers=WHO).json()["id"]
    with clean_db.begin() as conn:
        conn.execute(text("UPDATE components SET attrs = CAST(:a AS jsonb)"), {"a": json.dumps(nested(500))})
    before = _state(clean_db)
    r = district_api.patch(f"/components/{cid}", json={"version": 1, "name": "p"}, headers=WHO)
    at = "attrs.k" + "[0]" * (MAX_JSON_DEPTH - 1)
    assert (r.status_code, r.json()) == (  # the reason code as where attrs come in (it had none)
        422,
        {
            "error": "invalid_input",
            "reason": "json_too_deep",
            "detail": {
                "message": f"attrs: JSON 嵌套超过 8 层 / nested more than 8 levels deep (at {at})",
                "items": [
                    {
                        "field": "attrs",
                        "value": at,
                        "reason": f"JSON 嵌套超过 8 层 / nested more than 8 levels deep (at {at})",
                        "code": "json_too_deep",
                    }
                ],
            },
        },
    )
    assert _state(clean_db) == before
    # Sent attrs are merged over the stored ones, key by key: replacing the deep key mends the record.
    fixed = district_api.patch(f"/components/{cid}", json={"version": 1, "attrs": {"k": "mended"}}, headers=WHO)
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["properties"]["attrs"] == {"k": "mended"}


def test_a_write_whose_answer_fails_is_rolled_back(
    district_api: TestClient, clean_db: Engine, spot: tuple[float, float], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The answer is made inside the transaction: if it cannot be made, nothing was saved (no 500 for a change
    that was committed, which a retry would then meet as a stale version)."""
    cid = district_api.post("/components", json=_lamp(spot), headers=WHO).json()["id"]
    before = _state(clean_db)

    def broken(feature: dict[str, Any], base: str) -> dict[str, Any]:
        raise RuntimeError("cannot answer")

    monkeypatch.setattr(components_router, "with_photo_urls", broken)
    writes = [
        ("patch", f"/components/{cid}", {"version": 1, "name": "p"}),
        ("post", f"/components/{cid}/retire", {"version": 1, "reason": "拆除"}),
        ("post", "/components", _lamp((spot[0] + 0.001, spot[1]))),
    ]
    for method, url, body in writes:
        r = getattr(district_api, method)(url, json=body, headers=WHO)
        assert r.status_code == 500 and r.json()["ref"], (url, r.text)  # logged once, answered as a 500
        assert _state(clean_db) == before, url


def test_a_file_row_with_deep_json_is_refused_and_the_others_written(clean_db: Engine, tmp_path: Path) -> None:
    """A GeoJSON property holding an object or list is read as JSON (it crashed the import: a dict is not
    hashable) and kept in attrs; one nested deeper than the limit refuses its row."""
    from tests.fixtures import load_small_district

    load_small_district(clean_db, tmp_path)
    xs, ys = inside_points(3, seed=5)
    values = [nested(20)["k"], nested(500)["k"], {"a": [1, 2]}]
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [float(x), float(y)]},
            "properties": {"class_code": LAMP, "k": v},
        }
        for x, y, v in zip(xs, ys, values, strict=True)
    ]
    path = tmp_path / "deep.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    summary = run(clean_db, path, src_datum="cgcs2000")
    assert (summary.read, summary.inserted, summary.refused) == (3, 1, 2)
    refusals = summary.errors[["row", "field", "value", "reason"]].to_dict("records")
    at = "attrs.k" + "[0]" * (MAX_JSON_DEPTH - 1)  # as the API names it
    assert refusals == [
        {
            "row": 1,
            "field": "attrs",
            "value": at,
            "reason": f"JSON 嵌套超过 8 层 / nested more than 8 levels deep (at {at})",
        },
        {
            "row": 2,
            "field": "attrs",
            "value": at,
            "reason": f"JSON 嵌套超过 8 层 / nested more than 8 levels deep (at {at})",
        },
    ]
    with clean_db.connect() as conn:
        assert conn.execute(text("SELECT attrs FROM components")).scalar_one() == {"k": {"a": [1, 2]}}
    assert count(clean_db, "SELECT count(*) FROM component_history") == 1
