"""GET /components and GET /grids refuse a query parameter they do not take (review11 D7): a misspelt filter
(``radius`` for ``radius_m``, the CLI's ``class`` for ``class_code``) is a 422 naming it, not the whole registry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from gisgrid.settings import Settings
from tests.fixtures import load_small_district


@pytest.fixture
def client(clean_db: Engine, settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    load_small_district(clean_db, tmp_path)
    with TestClient(create_app(settings)) as c:
        yield c


def refused(client: TestClient, path: str, **params: Any) -> dict[str, Any]:
    r = client.get(path, params=params)
    assert r.status_code == 422, r.text
    return r.json()


def test_components_list_refuses_unknown_parameters(client: TestClient) -> None:
    body = refused(client, "/components", lon=113.7039, lat=34.7611, radius=100)
    assert body["error"] == "invalid_input"
    assert body["detail"]["message"].startswith("radius: not a parameter of /components; it takes ")
    assert "radius_m" in body["detail"]["message"]
    assert body["detail"]["items"] == [{"field": "radius", "reason": "unknown parameter", "code": "extra_forbidden"}]
    body = refused(client, "/components", lon=113.7039, lat=34.7611, nearest=3, **{"class": "01037"})
    assert body["detail"]["items"] == [{"field": "class", "reason": "unknown parameter", "code": "extra_forbidden"}]
    ok = client.get("/components", params={"lon": 113.7039, "lat": 34.7611, "radius_m": 100, "class_code": "01037"})
    assert ok.status_code == 200 and ok.json()["numberMatched"] == 0


def test_grids_list_refuses_unknown_parameters(client: TestClient) -> None:
    body = refused(client, "/grids", tier="unit", level=3)
    assert body["detail"]["items"] == [{"field": "level", "reason": "unknown parameter", "code": "extra_forbidden"}]
    assert client.get("/grids", params={"tier": "3", "limit": 2}).status_code == 200


@pytest.mark.parametrize(
    ("path", "params", "unknown"),
    [
        ("/grids/locate", {"lon": 113.7039, "lat": 34.7611, "datum": "cgcs2000", "crs": "4326"}, "crs"),
        ("/evaluation", {"period": "2026-10", "subject": "region", "asof": "2026-11-01"}, "asof"),
        ("/evaluation/map", {"period": "2026-10", "indicator": "score", "level": "tier3", "asof": "x"}, "asof"),
        ("/risks/selective", {"period": "2026-10", "asof": "x"}, "asof"),
    ],
)
def test_the_evaluation_and_locate_refuse_a_misspelt_parameter(
    client: TestClient, path: str, params: dict[str, Any], unknown: str
) -> None:
    """``asof`` for ``as_of`` would silently judge the month as of now (verify11 N4)."""
    body = refused(client, path, **params)
    assert body["detail"]["items"] == [{"field": unknown, "reason": "unknown parameter", "code": "extra_forbidden"}]
