"""The app behind a reverse proxy that serves it under a path prefix (``https://gw.city/gisgrid/`` → the app's
``/``): every URL it gives out carries the prefix, taken from the request's ASGI ``root_path``.

The test client is given ``root_path`` and asked for the prefixed paths, which is the scope uvicorn makes with
``--root-path`` (the prefix both in ``root_path`` and in front of ``path``). The browser tests
(``tests/browser/test_root_path_browser.py``) go through a real prefix-stripping proxy.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import Engine

from api.main import create_app
from api.prefix import root_path, route_path
from gisgrid.settings import Settings, normalise_root_path
from maps import assets
from maps import field as field_page
from tests.fixtures import EDITOR, load_small_district
from tests.test_components_store import inside_points

PREFIX = "/gisgrid"
GATEWAY = "https://gw.city"


@pytest.fixture
def gw(installed_assets: None, clean_db: Engine, settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    """The app as the gateway's clients reach it: https://gw.city/gisgrid/…"""
    load_small_district(clean_db, tmp_path)
    app = create_app(settings.model_copy(update={"data_dir": tmp_path / "data"}))
    with TestClient(app, base_url=GATEWAY, root_path=PREFIX) as client:
        yield client


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (120, 90, 60)).save(buf, "JPEG")
    return buf.getvalue()


def _local_urls(html: str) -> list[str]:
    return re.findall(r"""<(?:script|link)\b[^>]*?(?:src|href)="([^"]+)\"""", html)


# -- the setting ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "kept"), [("", ""), ("/", ""), ("gisgrid", "/gisgrid"), ("/gisgrid/", "/gisgrid"), ("/a/b-1", "/a/b-1")]
)
def test_a_root_path_is_normalised(given: str, kept: str) -> None:
    assert normalise_root_path(given) == kept
    assert Settings(root_path=given).root_path == kept


@pytest.mark.parametrize("bad", ["http://gw.city/gisgrid", "/a b", '/a"b', "/a/../b", "/a?x=1", "/<script>"])
def test_a_root_path_that_is_not_a_plain_path_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="root path"):
        normalise_root_path(bad)


def test_the_prefix_is_read_from_the_scope_with_or_without_it_in_the_path() -> None:
    assert root_path({"root_path": "/gisgrid/"}) == "/gisgrid" and root_path({}) == ""
    assert route_path({"root_path": "/gisgrid", "path": "/gisgrid/tiles/x"}) == "/tiles/x"  # uvicorn
    assert route_path({"root_path": "/gisgrid", "path": "/tiles/x"}) == "/tiles/x"  # a client that leaves it out
    assert route_path({"root_path": "/gisgrid", "path": "/gisgridx/tiles"}) == "/gisgridx/tiles"
    assert route_path({"root_path": "", "path": "/tiles/x"}) == "/tiles/x"


# -- the API's links --------------------------------------------------------------------------------


def test_paging_links_carry_the_prefix_and_lead_to_the_next_page(gw: TestClient) -> None:
    body = gw.get(f"{PREFIX}/grids", params={"limit": 10}).json()
    links = {link["rel"]: link["href"] for link in body["links"]}
    assert links["self"] == f"{GATEWAY}{PREFIX}/grids?limit=10"
    assert links["next"].startswith(f"{GATEWAY}{PREFIX}/grids?") and "offset=10" in links["next"]
    page2 = gw.get(links["next"]).json()
    assert page2["numberReturned"] == 10
    assert not {f["id"] for f in body["features"]} & {f["id"] for f in page2["features"]}
    prev = {link["rel"]: link["href"] for link in page2["links"]}["prev"]
    assert prev.startswith(f"{GATEWAY}{PREFIX}/grids?") and "offset=0" in prev


def _rels(body: dict) -> dict[str, str]:
    return {link["rel"]: link["href"] for link in body["links"]}


@pytest.mark.parametrize("kind", ["cases", "cases_geojson", "components"])
def test_case_and_component_lists_carry_paging_links_with_the_prefix(gw: TestClient, kind: str) -> None:
    xs, ys = inside_points(3, seed=33)
    for x, y in zip(xs, ys, strict=True):
        point = {"lon": float(x), "lat": float(y), "datum": "cgcs2000"}
        if kind == "components":
            r = gw.post(f"{PREFIX}/components", json={"class_code": "01037", **point}, headers=EDITOR)
        else:
            r = gw.post(f"{PREFIX}/cases", json={"class_code": "06010", **point}, headers={"X-Role": "supervisor"})
        assert r.status_code == 201, r.text
    path = f"{PREFIX}/{kind.split('_')[0]}"
    extra = "&format=geojson" if kind == "cases_geojson" else ""
    url = f"{GATEWAY}{path}?limit=2{extra}"

    first = gw.get(url).json()  # 3 matched: a next page, no previous one
    count = (lambda b: len(b["data"])) if kind == "cases" else (lambda b: b["numberReturned"])
    if kind == "components":
        assert _rels(first) == {"self": url, "next": f"{url}&offset=2"}
        last = gw.get(_rels(first)["next"]).json()  # the last page: a previous one, no next
        assert _rels(last) == {"self": f"{url}&offset=2", "prev": f"{url}&offset=0"}
    else:  # cases page by a cursor: the next page starts after the second newest case (id 2 of 3)
        assert _rels(first) == {"self": url, "next": f"{url}&after=2"}
        last = gw.get(_rels(first)["next"]).json()  # the last page: no next, and a cursor walks forward only
        assert _rels(last) == {"self": f"{url}&after=2"}
    assert (count(first), count(last)) == (2, 1)
    assert _rels(gw.get(f"{url}&offset=1").json()) == {"self": f"{url}&offset=1", "prev": f"{url}&offset=0"}
    everything = f"{GATEWAY}{path}?limit=3{extra}"
    assert gw.get(everything).json()["links"] == [{"rel": "self", "href": everything}]  # one page: neither


def test_location_photo_and_order_urls_carry_the_prefix(gw: TestClient) -> None:
    xs, ys = inside_points(1, seed=31)
    r = gw.post(
        f"{PREFIX}/cases/form",
        data={"class_code": "06010", "lon": str(xs[0]), "lat": str(ys[0]), "datum": "cgcs2000"},
        files={"photos": ("street.jpg", _jpeg(), "image/jpeg")},
        headers={"X-Role": "supervisor"},
    )
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    assert r.headers["location"] == f"{PREFIX}/cases/{cid}"
    json_report = gw.post(
        f"{PREFIX}/cases",
        json={"class_code": "06010", "lon": float(xs[0]), "lat": float(ys[0]), "datum": "cgcs2000"},
        headers={"X-Role": "supervisor"},
    )
    assert json_report.headers["location"] == f"{PREFIX}/cases/{json_report.json()['id']}"
    case = gw.get(r.headers["location"]).json()
    (photo,) = case["photos"]
    assert photo["url"] == f"{PREFIX}/cases/{cid}/photos/{photo['sha256']}"
    assert gw.get(photo["url"]).content == _jpeg()
    assert photo["thumb_url"] == f"{PREFIX}/cases/{cid}/photos/{photo['sha256']}?size=thumb"
    assert gw.get(photo["thumb_url"]).headers["content-type"] == "image/jpeg"
    for version, (action, role) in enumerate(
        [("verify", "supervisor"), ("file", "shift_lead"), ("dispatch", "dispatcher")], start=1
    ):
        r = gw.post(f"{PREFIX}/cases/{cid}/actions/{action}", json={"version": version}, headers={"X-Role": role})
        assert r.status_code == 200, r.text
    (doc,) = r.json()["documents"]  # an action's answer: the case with its 交办单
    assert doc["url"] == f"{PREFIX}/cases/{cid}/documents/{doc['id']}"
    assert doc["pdf_url"] == f"{PREFIX}/cases/{cid}/documents/{doc['id']}.pdf"
    assert r.json()["photos"][0]["url"] == photo["url"]
    order = gw.get(doc["url"])
    assert order.status_code == 200
    assert f'href="{doc["pdf_url"]}"' in order.text and f'src="{photo["url"]}"' in order.text
    assert 'src="/cases/' not in order.text and 'href="/cases/' not in order.text


def test_without_a_prefix_the_urls_are_unchanged(page_client: TestClient) -> None:
    xs, ys = inside_points(1, seed=32)
    body = {"class_code": "06010", "lon": float(xs[0]), "lat": float(ys[0]), "datum": "cgcs2000"}
    r = page_client.post("/cases", json=body, headers={"X-Role": "supervisor"})
    assert r.headers["location"] == f"/cases/{r.json()['id']}"
    links = page_client.get("/grids", params={"limit": 1}).json()["links"]
    assert links[0]["href"] == "http://testserver/grids?limit=1"
    assert 'href="/console"' in page_client.get("/").text


# -- the pages --------------------------------------------------------------------------------------


def test_the_console_asks_everything_under_the_prefix(gw: TestClient) -> None:
    html = gw.get(f"{PREFIX}/console").text
    urls = _local_urls(html)
    assert urls and all(u.startswith(f"{PREFIX}/static/vendor/") or u.startswith("data:") for u in urls), urls
    assert '"/static/' not in html
    assert f"'{PREFIX}/tiles/tier1/{{z}}/{{x}}/{{y}}.mvt'" in html
    assert f'"base": "{PREFIX}"' in html
    assets.assert_no_external(html)
    for url in {u for u in urls if u.startswith(PREFIX)}:
        assert gw.get(url).status_code == 200, url


def test_the_field_page_and_its_service_worker_live_under_the_prefix(gw: TestClient) -> None:
    html = gw.get(f"{PREFIX}/field").text
    urls = _local_urls(html)
    own = f"{PREFIX}{field_page.SCRIPT_URL}"  # the page's own script
    assert urls and all(u.startswith((f"{PREFIX}/static/vendor/", "data:")) or u == own for u in urls), urls
    assert own in urls and gw.get(own).status_code == 200
    assert f'"sw": {{"url": "{PREFIX}/field/sw.js", "scope": "{PREFIX}/field"}}' in html
    assert f'"base": "{PREFIX}"' in html
    sw = gw.get(f"{PREFIX}{field_page.SW_URL}")
    assert sw.headers["service-worker-allowed"] == f"{PREFIX}/field"
    config = sw.text.split("\n", 1)[0]
    for url in field_page.precached():
        assert f'"{PREFIX}{url}"' in config
        assert gw.get(PREFIX + url).status_code == 200, url
    assert f'"networkFirst": ["{PREFIX}/field", "{PREFIX}/field/classes"]' in config
    # another prefix is another set of URLs: another cache name
    assert config.split('"cache": ')[1][:30] != field_page.service_worker().split('"cache": ')[1][:30]


def test_tiles_and_the_start_page_under_the_prefix(gw: TestClient) -> None:
    tile = gw.get(f"{PREFIX}/tiles/tier1/12/3354/1623.mvt")
    assert tile.status_code == 200 and tile.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    assert gw.get(f"{PREFIX}/tiles/nope/1/0/0.mvt").json()["error"] == "not_found"  # the fast path's own answer
    home = gw.get(f"{PREFIX}/").text
    hrefs = re.findall(r'href="([^"]+)"', home)
    assert hrefs and all(h.startswith(f"{PREFIX}/") for h in hrefs), hrefs
    # review41 U6: its icon under the prefix, so a browser does not ask /favicon.ico at the gateway's root
    assert f'<link rel="icon" href="{PREFIX}/favicon.svg" type="image/svg+xml">' in home
    icon = gw.get(f"{PREFIX}/favicon.svg")
    assert (icon.status_code, icon.headers["content-type"]) == (200, "image/svg+xml")
    assert icon.text.startswith("<svg ")


def test_api_docs_are_served_from_vendored_files_under_the_prefix(gw: TestClient) -> None:
    html = gw.get(f"{PREFIX}/docs").text
    assets.assert_no_external(html)
    linked = re.findall(r"""(?:src|href)="([^"]+)\"""", html)
    assert linked and all(u.startswith(f"{PREFIX}/static/vendor/") for u in linked), linked
    for url in linked:
        assert gw.get(url).status_code == 200, url
    assert f"{PREFIX}/openapi.json" in html
    assert gw.get(f"{PREFIX}/redoc").status_code == 404  # not offered (and never FastAPI's CDN page)
    assert '"validatorUrl": null' in gw.get(f"{PREFIX}/docs").text
    spec = gw.get(f"{PREFIX}/openapi.json").json()
    assert spec["servers"] == [{"url": PREFIX}]  # "Try it out" goes through the gateway
    assert "/docs" not in spec["paths"] and "/redoc" not in spec["paths"]
