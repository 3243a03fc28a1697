"""The pages through a city gateway that serves gisgrid under ``/gisgrid/``: a prefix-stripping proxy
(``tests.prefix_proxy``, as nginx ``location /gisgrid/ { proxy_pass http://app/; }``) in front of the app run by
uvicorn with ``root_path="/gisgrid"`` (``gisgrid serve --root-path /gisgrid``). Every request a page makes must
stay under the prefix: one outside it gets the proxy's 404 and is recorded."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from PIL import Image
from sqlalchemy import Engine

from api.main import create_app
from gisgrid.cases import sync_reference_data
from gisgrid.settings import Settings
from maps import assets
from tests.browser.conftest import DESK_VIEWPORT, PHONE, LiveServer, Tab, console_tab, open_tab
from tests.browser.test_console_browser import DRAWN_PIXELS, MARKER_POINT
from tests.browser.test_field_browser import cases_of, tap_the_map_centre
from tests.fixtures import load_small_district
from tests.prefix_proxy import PrefixProxy
from tests.test_components_store import inside_points

PREFIX = "/gisgrid"
REPORTER = "赵敏"


@pytest.fixture(scope="module")
def gateway(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefixProxy]:
    """The app under uvicorn with root path /gisgrid, behind the prefix-stripping proxy."""
    assets.install_assets()
    app = create_app(settings.model_copy(update={"data_dir": tmp_path_factory.mktemp("prefix-data")}))
    server = LiveServer(app, root_path=PREFIX)
    server.start()
    proxy = PrefixProxy(server.port, PREFIX)
    proxy.start()
    proxy.app = app  # type: ignore[attr-defined]
    try:
        yield proxy
    finally:
        proxy.stop()
        server.stop()


@pytest.fixture
def gw(browser: Any, gateway: PrefixProxy, clean_db: Engine, tmp_path: Path) -> PrefixProxy:
    load_small_district(clean_db, tmp_path)
    sync_reference_data(clean_db, gateway.app.state.cases)  # type: ignore[attr-defined]
    gateway.outside.clear()
    return gateway


@pytest.fixture
def api(gw: PrefixProxy) -> Iterator[httpx.Client]:
    """A client of the gateway (another desk or phone)."""
    with httpx.Client(base_url=gw.url, timeout=30) as client:
        yield client


@pytest.fixture
def desk(browser: Any, gw: PrefixProxy, request: pytest.FixtureRequest) -> Iterator[Tab]:
    yield from console_tab(browser, gw.origin, request, DESK_VIEWPORT)


@pytest.fixture
def phone(browser: Any, gw: PrefixProxy, request: pytest.FixtureRequest) -> Iterator[Tab]:
    yield from open_tab(browser, gw.origin, request.node.name, **PHONE)


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (48, 32), (160, 120, 40)).save(buf, "JPEG")
    return buf.getvalue()


def assert_all_under_the_prefix(tab: Tab, gw: PrefixProxy) -> None:
    watch = tab.watch
    assert not watch.off_origin(), watch.off_origin()
    assert not watch.failed, watch.failed
    assert not watch.bad, watch.bad
    outside = [u for u in watch.requests if u.startswith(gw.origin) and not u.startswith(gw.url + "/")]
    assert not outside and not gw.outside, (outside, gw.outside)


def test_the_console_through_the_gateway_draws_the_grid_and_opens_a_case_with_its_photo(
    desk: Tab, gw: PrefixProxy, api: httpx.Client
) -> None:
    xs, ys = inside_points(1, seed=41)
    r = api.post(
        "/cases/form",
        data={"class_code": "06010", "lon": str(xs[0]), "lat": str(ys[0]), "datum": "cgcs2000"},
        files={"photos": ("street.jpg", _jpeg(), "image/jpeg")},
        headers={"X-Role": "supervisor"},
    )
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    assert r.headers["location"] == f"{PREFIX}/cases/{cid}"
    page = desk.page
    page.goto(gw.url + "/console")
    page.wait_for_function("() => window.GG && GG.map && GG.cases")
    page.wait_for_function("() => /共 \\d+ 件/.test(document.getElementById('gg-count').textContent)")
    page.wait_for_load_state("networkidle")
    for layer in ("tier1", "tier2"):
        page.wait_for_function(f"() => ({DRAWN_PIXELS})('{layer}').pixels > 0", timeout=10_000)
        tiles = [x for x in desk.watch.responses if f"{PREFIX}/tiles/{layer}/" in x.url]
        assert tiles and all(x.status == 200 for x in tiles), layer
    desk.shot("loaded")
    # the case's marker (the Realtime poll), its panel (GET /cases/{id}) and its photo, all through the prefix
    page.wait_for_function(f"() => GG.cases.getLayer({cid}) !== undefined")
    x, y = page.evaluate(MARKER_POINT, cid)
    page.mouse.click(x, y)
    photo = page.locator("#gg-detail .gg-photos img")
    photo.wait_for()
    assert photo.get_attribute("src").startswith(f"{PREFIX}/cases/{cid}/photos/")
    page.wait_for_function("() => document.querySelector('#gg-detail .gg-photos img').naturalWidth === 48")
    requested = desk.watch.requests
    assert any(u.startswith(f"{gw.url}/static/vendor/leaflet@") for u in requested)
    assert any(u.startswith(f"{gw.url}/cases?") for u in requested)
    assert_all_under_the_prefix(desk, gw)
    desk.shot("case")


def test_the_field_page_through_the_gateway_reports_and_reopens_offline(
    phone: Tab, gw: PrefixProxy, api: httpx.Client, clean_db: Engine
) -> None:
    page, context = phone.page, phone.context
    page.goto(gw.url + "/field")
    page.wait_for_selector('#gf-classes li[data-code="06010"]')
    page.fill("#gf-name", REPORTER)
    page.click('#gf-classes li[data-code="06010"]')
    tap_the_map_centre(page)  # /grids/locate through the prefix names the unit grid
    page.fill("#gf-desc", "井盖缺失")
    page.click("#gf-submit")
    page.wait_for_function("() => document.getElementById('gf-queue-n').textContent === '0'", timeout=15_000)
    page.wait_for_selector("#gf-mine li[data-id]")  # its state fetched from /gisgrid/cases/{id}
    (stored,) = cases_of(clean_db, REPORTER)
    assert stored[1] in page.locator("#gf-mine").inner_text()
    assert any(u.startswith(f"{gw.url}/tiles/tier3/") for u in phone.watch.requests)
    # the service worker: registered under the prefix, and it opens the page offline
    page.wait_for_function("() => navigator.serviceWorker && navigator.serviceWorker.controller !== null")
    scope = page.evaluate("() => navigator.serviceWorker.ready.then(r => r.scope)")
    assert scope == f"{gw.url}/field"
    assert_all_under_the_prefix(phone, gw)
    context.set_offline(True)
    answer = page.reload()
    assert answer is not None and answer.ok and answer.from_service_worker
    page.wait_for_selector('#gf-classes li[data-code="06010"]')
    assert page.evaluate("() => typeof L.vectorGrid.protobuf === 'function'")  # the vendored JS, from its cache
    context.set_offline(False)
    phone.shot("offline-reopened")


def test_api_docs_through_the_gateway_render_offline(desk: Tab, gw: PrefixProxy) -> None:
    page = desk.page
    page.goto(gw.url + "/docs")
    page.wait_for_selector(".swagger-ui .opblock-summary-path")
    assert page.locator(".opblock").count() > 20
    assert page.locator(".swagger-ui .servers select").input_value() == PREFIX  # "Try it out" via the gateway
    desk.shot("swagger")
    assert_all_under_the_prefix(desk, gw)
