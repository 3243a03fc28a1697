"""Hardening headers (review24 #7): ``X-Content-Type-Options: nosniff`` on every answer of the app — JSON, pages,
photos, printed orders, tiles from the fast path, errors of every layer — and the order pages' own
Content-Security-Policy as a header, as /console sends its policy."""

from __future__ import annotations

import html
import re
from typing import Any

from fastapi.testclient import TestClient

from api.main import create_app
from gisgrid import documents
from gisgrid.settings import Settings
from maps import console
from tests.test_api_components import lamp_with_photo
from tests.test_cases import dispatched_with_photo as dispatched_with_photo  # the fixture, used by name

NOSNIFF = "nosniff"


def test_every_answer_says_nosniff(
    installed_assets: None, dispatched_with_photo: Any, spot: tuple[float, float]
) -> None:
    client, case = dispatched_with_photo
    cid, (doc,) = case["id"], case["documents"]
    [photo] = client.get(f"/cases/{cid}").json()["photos"]
    _, _, attached = lamp_with_photo(client, spot, (32, 24))
    [comp_photo] = attached.json()["properties"]["photos"]
    script = re.search(r'<script src="(/static/vendor/[^"]+)"', client.get("/console").text)
    assert script is not None
    answers = {
        "json": client.get(f"/cases/{cid}"),
        "list": client.get("/cases", params={"limit": 1}),
        "photo": client.get(photo["url"]),
        "thumb": client.get(photo["thumb_url"]),
        "component photo": client.get(comp_photo["url"]),
        "order": client.get(doc["url"]),
        "order pdf": client.get(doc["pdf_url"]),
        "console": client.get("/console"),
        "field": client.get("/field"),
        "docs": client.get("/docs"),
        "openapi": client.get("/openapi.json"),
        "vendored asset": client.get(script.group(1)),
        "tile (fast path)": client.get("/tiles/unit_grids/14/13361/6486.mvt"),
        "unknown tile (fast path)": client.get("/tiles/nope/14/1/1.mvt"),
        "unknown path": client.get("/nope"),
        "unknown photo": client.get(f"/cases/{cid}/photos/{'0' * 64}"),
        "refused query": client.get("/cases", params={"limit": 99999}),
        "refused action": client.post(f"/cases/{cid}/actions/close", json={"version": 1}, headers={"X-Role": "x"}),
        "health HEAD": client.head("/health"),
        "too large": client.post(
            "/cases", content=b"{}", headers={"Content-Type": "application/json", "Content-Length": str(1 << 30)}
        ),
    }
    statuses = {name: r.status_code for name, r in answers.items()}
    ok = ["json", "list", "photo", "thumb", "component photo", "order", "order pdf", "console", "field", "docs",
          "openapi", "vendored asset", "tile (fast path)", "health HEAD"]  # fmt: skip
    assert statuses == {
        **dict.fromkeys(ok, 200),
        "unknown tile (fast path)": 404,
        "unknown path": 404,
        "unknown photo": 404,
        "refused query": 422,
        "refused action": 422,
        "too large": 413,
    }
    missing = {
        name: dict(r.headers) for name, r in answers.items() if r.headers.get("x-content-type-options") != NOSNIFF
    }
    assert missing == {}
    # sent once, whatever the route set
    assert all(len(r.headers.get_list("x-content-type-options")) == 1 for r in answers.values())
    assert answers["photo"].headers["content-type"] == "image/jpeg"


def test_an_unexpected_fault_answers_500_with_nosniff(settings: Settings) -> None:
    """A 500 is answered by Starlette's outermost error layer, outside every middleware the app adds."""
    app = create_app(settings)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("a fault of ours")

    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/boom")
    assert r.status_code == 500 and r.json()["error"] == "internal_error"
    assert r.headers["x-content-type-options"] == NOSNIFF


def test_the_order_pages_send_their_content_security_policy(dispatched_with_photo: Any) -> None:
    client, case = dispatched_with_photo
    cid = case["id"]
    body = {"version": case["version"], "payload": {"reason": "重点督办", "flagged": True}}
    supervised = client.post(f"/cases/{cid}/actions/supervise", json=body, headers={"X-Role": "leader"})
    assert supervised.status_code == 200, supervised.text
    docs = supervised.json()["documents"]
    assert [d["kind"] for d in docs] == ["dispatch", "supervision"]
    for doc in docs:
        page = client.get(doc["url"])
        assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
        assert page.headers["content-security-policy"] == documents.CSP
        # the same policy as the page's <meta> (kept by a saved file), which allows its own photos and inline map
        meta = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', page.text)
        assert meta is not None and html.unescape(meta.group(1)) == documents.CSP
        assert "img-src 'self' data:" in documents.CSP and "<svg" in page.text
        assert f'src="/cases/{cid}/photos/' in page.text
    console_page = client.get("/console")
    assert console_page.headers["content-security-policy"] == console.csp(client.app.state.basemap)
