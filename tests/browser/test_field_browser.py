"""The field page on a phone-sized headless Chromium: a report made OFFLINE (with a photo) waits in the IndexedDB
outbox and reaches the server exactly once when the connection returns."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from PIL import ExifTags, Image
from PIL.TiffImagePlugin import IFDRational
from sqlalchemy import Engine, text

from maps import field
from maps.basemap import basemap_for
from maps.pagejs import load_reason_texts
from tests.browser.conftest import ARTIFACTS, LiveServer, Tab
from tests.test_components_store import inside_points

REPORTER = "李娜"


def cases_of(engine: Engine, reporter: str) -> list[tuple[int, str, str | None, int]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.id, c.case_no, c.idempotency_key, "
                "(SELECT count(*) FROM case_photos p WHERE p.case_id = c.id) "
                "FROM cases c WHERE c.reporter = :r ORDER BY c.id"
            ),
            {"r": reporter},
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def a_photo(folder: Path) -> Path:
    path = folder / "street.jpg"
    Image.new("RGB", (64, 48), (120, 140, 90)).save(path, "JPEG", quality=80)
    return path


def test_a_report_made_offline_arrives_exactly_once(
    phone: Tab, live: LiveServer, api: httpx.Client, clean_db: Engine, tmp_path: Path
) -> None:
    page, context = phone.page, phone.context
    page.goto(live.url + "/field")
    page.wait_for_selector('#gf-classes li[data-code="06010"]')
    assert page.locator("#gf-net").inner_text() == "在线"
    # reporter, class by search, location by a tap on the map, a description and a photo
    page.fill("#gf-name", REPORTER)
    page.fill("#gf-search", "垃圾")
    assert page.locator("#gf-classes li").count() < 20
    page.click('#gf-classes li[data-code="06010"]')
    assert "06010" in page.locator("#gf-class").inner_text()
    tap_the_map_centre(page)  # the district's centre
    assert "地图选点" in page.locator("#gf-loc").inner_text()
    page.fill("#gf-desc", "人行道暴露垃圾一堆")
    page.set_input_files("#gf-photos", str(a_photo(tmp_path)))
    page.wait_for_selector("#gf-thumbs img")
    phone.shot("filled")

    context.set_offline(True)
    page.wait_for_function("() => document.getElementById('gf-net').textContent === '离线'")
    page.click("#gf-submit")
    page.wait_for_function("() => document.getElementById('gf-queue-n').textContent === '1'")
    assert "离线" in page.locator("#gf-notice").inner_text()
    assert_class_cleared(page)  # the next report's class is chosen anew (review14 #8)
    queued = page.evaluate("() => GF.outbox.all()")
    assert len(queued) == 1 and queued[0]["fields"]["class_code"] == "06010" and len(queued[0]["photos"]) == 1
    key = queued[0]["key"]
    assert len(key) == 36
    page.evaluate("() => GF.flush()")  # the retry timer while offline: nothing leaves
    assert page.locator("#gf-queue-n").inner_text() == "1"
    phone.shot("queued-offline")
    assert cases_of(clean_db, REPORTER) == []

    context.set_offline(False)  # the `online` event sends the outbox
    page.wait_for_function("() => document.getElementById('gf-queue-n').textContent === '0'", timeout=15_000)
    page.wait_for_selector("#gf-mine li[data-id]")
    page.evaluate("() => Promise.all([GF.flush(), GF.flush()])")  # timer + event racing: still one case
    stored = cases_of(clean_db, REPORTER)
    assert len(stored) == 1, stored
    cid, case_no, stored_key, photos = stored[0]
    assert stored_key == key and photos == 1
    assert case_no in page.locator("#gf-mine").inner_text()
    assert "上报" in page.locator("#gf-mine .gf-state").first.inner_text()  # its state, fetched from /cases/{id}
    mine = page.evaluate("() => JSON.parse(localStorage.getItem('gisgrid.field.mine'))")
    assert [m["id"] for m in mine] == [cid]
    case = api.get(f"/cases/{cid}").json()
    assert case["reporter"] == REPORTER and case["class_code"] == "06010" and case["photos"]
    assert case["source"] == "patrol"  # the page names no channel: the grid worker's own, by the role
    assert not phone.watch.off_origin(), phone.watch.off_origin()
    assert not phone.watch.bad, phone.watch.bad
    phone.shot("sent")


def assert_class_cleared(page: Any) -> None:
    assert page.locator("#gf-class").inner_text() == "未选择类别"
    assert page.input_value("#gf-search") == "" and page.evaluate("() => GF.cls") is None
    assert page.locator("#gf-classes li.gf-sel").count() == 0


def tap_the_map_centre(page: Any) -> None:
    the_map = page.locator("#gf-map")
    the_map.scroll_into_view_if_needed()
    box = the_map.bounding_box()
    assert box is not None
    # a district's view (a real one opens at ~11; the small test district fits at a closer zoom)
    page.evaluate("() => GF.map.setView(L.latLngBounds(GF_CONFIG.bounds).getCenter(), 11, {animate: false})")
    before = page.evaluate("() => GF.loc")
    # From the whole district a tap only zooms in on the spot (a fingertip is a kilometre there) — straight to
    # street zoom — and says so in a hint, not an error; the second tap places the report (review14 #10).
    the_map.click(position={"x": box["width"] / 2, "y": box["height"] / 2})
    hint = page.locator("#gf-tap-hint")
    assert hint.is_visible() and "请再点一下" in hint.inner_text()
    assert hint.get_attribute("class") == "gf-hint" and page.locator("#gf-gps-msg").is_hidden()
    assert page.evaluate("() => GF.loc") == before  # not placed by that tap
    # Leaflet sets the zoom as the animation starts and clears _animatingZoom at its end: wait for the end itself
    page.wait_for_function("() => GF.map.getZoom() === GF_CONFIG.tapMinZoom && !GF.map._animatingZoom")
    the_map.click(position={"x": box["width"] / 2, "y": box["height"] / 2})
    assert page.evaluate("() => GF.loc && GF.loc.source") == "map"
    assert hint.is_hidden()
    page.wait_for_function("() => document.getElementById('gf-grid').textContent.indexOf('单元网格') >= 0")


def gps_photo(
    folder: Path, name: str, lon: float, lat: float, *, status: str | None = None, error_m: float | None = None
) -> Path:
    """A JPEG with EXIF GPS (WGS84, as phones write it); ``status`` (GPSStatus A/V) and ``error_m``
    (GPSHPositioningError) when given."""

    def dms(v: float) -> tuple[IFDRational, ...]:
        d = int(v)
        m = int((v - d) * 60)
        return (IFDRational(d, 1), IFDRational(m, 1), IFDRational(round(((v - d) * 60 - m) * 60 * 10000), 10000))

    exif = Image.Exif()
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef], gps[ExifTags.GPS.GPSLatitude] = "N", dms(lat)
    gps[ExifTags.GPS.GPSLongitudeRef], gps[ExifTags.GPS.GPSLongitude] = "E", dms(lon)
    if status is not None:
        gps[ExifTags.GPS.GPSStatus] = status
    if error_m is not None:
        gps[ExifTags.GPS.GPSHPositioningError] = IFDRational(round(error_m * 10), 10)
    path = folder / name
    Image.new("RGB", (64, 48), (90, 90, 140)).save(path, "JPEG", quality=80, exif=exif.tobytes())
    return path


def test_a_refused_report_is_kept_with_a_chinese_reason_to_edit_and_resend(
    phone: Tab, live: LiveServer, clean_db: Engine, tmp_path: Path
) -> None:
    page = phone.page
    page.goto(live.url + "/field")
    page.wait_for_selector('#gf-classes li[data-code="06010"]')
    page.fill("#gf-name", REPORTER)
    page.click('#gf-classes li[data-code="06010"]')
    page.fill("#gf-desc", "路口暴露垃圾,三袋")
    page.fill("#gf-addr", "某路与某街交叉口")
    page.set_input_files("#gf-photos", str(a_photo(tmp_path)))
    page.wait_for_selector("#gf-thumbs img")
    # what the page can check is checked before queueing: no location and a photo without GPS
    page.click("#gf-submit")
    page.wait_for_function("() => document.getElementById('gf-error').textContent.indexOf('不含可用的 GPS 位置') >= 0")
    assert page.evaluate("() => GF.outbox.all()") == []
    # a location the server refuses (the page's own bounds check does not see it): refused, kept
    page.evaluate("() => { GF.loc = {lon: 100.0, lat: 30.0, datum: 'wgs84', source: 'gps'}; }")
    page.click("#gf-submit")
    page.wait_for_selector("#gf-rejected .gf-refused")
    refused = page.locator("#gf-rejected .gf-refused").inner_text()
    outside = load_reason_texts()["outside_coverage"]  # the zh-CN of the refusal's code (messages_zh.csv)
    assert outside.startswith("不在本区网格覆盖范围内") and f"位置:{outside}" in refused, refused  # Chinese …
    assert "服务器原文:(422) location:" in refused  # … with the server's words beside
    assert "路口暴露垃圾,三袋" in refused and "1 张照片" in refused
    assert "未被受理" in page.locator("#gf-notice").inner_text()
    page.wait_for_function("() => document.getElementById('gf-queue-n').textContent === '0'")
    [kept] = page.evaluate("() => GF.outbox.all()")
    assert kept["refused"]["status"] == 422 and len(kept["photos"]) == 1
    assert kept["fields"]["description"] == "路口暴露垃圾,三袋" and kept["fields"]["address"] == "某路与某街交叉口"
    page.evaluate("() => GF.flush()")  # not sent again by itself
    assert cases_of(clean_db, REPORTER) == []
    phone.shot("refused-kept")
    page.reload()  # still there after a reload
    page.wait_for_selector("#gf-rejected .gf-refused")

    # back into the form, a new location, sent again: one case, and the refused report is gone
    page.wait_for_selector('#gf-classes li[data-code="06010"]')
    page.click("#gf-rejected .gf-edit")
    assert "06010" in page.locator("#gf-class").inner_text()
    assert page.input_value("#gf-desc") == "路口暴露垃圾,三袋" and page.input_value("#gf-addr") == "某路与某街交叉口"
    page.wait_for_selector("#gf-thumbs img")
    tap_the_map_centre(page)
    page.click("#gf-submit")
    page.wait_for_function("() => GF.outbox.all().then(function (r) { return r.length === 0; })")
    page.wait_for_selector("#gf-mine li[data-id]")
    assert page.locator("#gf-rejected .gf-refused").count() == 0
    assert_class_cleared(page)  # sent: the form starts over, class included
    [(_, _, _, photos)] = cases_of(clean_db, REPORTER)
    assert photos == 1
    assert not phone.watch.off_origin()


def test_a_refused_report_can_be_discarded(phone: Tab, live: LiveServer, clean_db: Engine) -> None:
    page = phone.page
    page.goto(live.url + "/field")
    page.wait_for_selector('#gf-classes li[data-code="06010"]')
    page.fill("#gf-name", REPORTER)
    page.click('#gf-classes li[data-code="06010"]')
    page.evaluate("() => { GF.loc = {lon: 100.0, lat: 30.0, datum: 'wgs84', source: 'gps'}; }")
    page.click("#gf-submit")
    page.wait_for_selector("#gf-rejected .gf-refused")
    page.once("dialog", lambda d: d.accept())
    page.click("#gf-rejected .gf-discard")
    page.wait_for_function("() => !document.querySelector('#gf-rejected .gf-refused')")
    assert page.evaluate("() => GF.outbox.all()") == []


def test_photo_gps_is_shown_and_a_photo_from_elsewhere_is_stopped(
    phone: Tab, live: LiveServer, clean_db: Engine, tmp_path: Path
) -> None:
    page = phone.page
    page.goto(live.url + "/field")
    page.wait_for_selector('#gf-classes li[data-code="06010"]')
    page.fill("#gf-name", REPORTER)
    page.click('#gf-classes li[data-code="06010"]')
    xs, ys = inside_points(1, seed=3)
    page.set_input_files("#gf-photos", str(gps_photo(tmp_path, "here.jpg", float(xs[0]), float(ys[0]))))
    page.wait_for_function("() => document.getElementById('gf-loc').textContent.indexOf('照片 GPS 位置') >= 0")
    page.wait_for_function("() => document.getElementById('gf-grid').textContent.indexOf('单元网格') >= 0")
    phone.shot("photo-gps")
    page.click("#gf-thumbs button")  # removed: back to 未定位
    assert "未定位" in page.locator("#gf-loc").inner_text()
    # a photo taken in Beijing: said before it is queued
    page.set_input_files("#gf-photos", str(gps_photo(tmp_path, "beijing.jpg", 116.397, 39.908)))
    page.wait_for_function("() => document.getElementById('gf-grid').textContent.indexOf('不在本区') >= 0")
    page.click("#gf-submit")
    page.wait_for_function("() => document.getElementById('gf-error').textContent.indexOf('不在本区') >= 0")
    assert page.evaluate("() => GF.outbox.all()") == []
    # the HEIC sample's EXIF is read in the page too
    heic = Path(__file__).parents[1] / "photo_samples" / "gps.heic"
    gps = page.evaluate(
        "b64 => { var s = atob(b64), a = new Uint8Array(s.length);"
        " for (var i = 0; i < s.length; i++) { a[i] = s.charCodeAt(i); } return GF.exifGps(a.buffer); }",
        base64.b64encode(heic.read_bytes()).decode(),
    )
    assert gps == pytest.approx({"lon": 113 + 37 / 60 + 56.78 / 3600, "lat": 34 + 45 / 60 + 12.34 / 3600})


def test_a_photo_with_a_void_or_coarse_fix_does_not_locate_the_report(
    phone: Tab, live: LiveServer, clean_db: Engine, tmp_path: Path
) -> None:
    """As on the server (gisgrid.photos.MAX_GPS_ERROR_M): a void fix or one off by more than 50 m places nothing;
    the page asks for a location instead of filing the report where the stale numbers point."""
    page = phone.page
    page.goto(live.url + "/field")
    page.wait_for_selector('#gf-classes li[data-code="06010"]')
    xs, ys = inside_points(3, seed=13)
    void = gps_photo(tmp_path, "void.jpg", float(xs[0]), float(ys[0]), status="V")
    coarse = gps_photo(tmp_path, "coarse.jpg", float(xs[1]), float(ys[1]), status="A", error_m=350)
    fine = gps_photo(tmp_path, "fine.jpg", float(xs[2]), float(ys[2]), status="A", error_m=8.5)
    read = (
        "b64 => { var s = atob(b64), a = new Uint8Array(s.length);"
        " for (var i = 0; i < s.length; i++) { a[i] = s.charCodeAt(i); } return GF.exifGps(a.buffer); }"
    )
    found = [page.evaluate(read, base64.b64encode(p.read_bytes()).decode()) for p in (void, coarse, fine)]
    assert found[:2] == [None, None]
    assert found[2] == pytest.approx({"lon": float(xs[2]), "lat": float(ys[2]), "accuracy": 8.5}, abs=1e-6)
    page.fill("#gf-name", REPORTER)
    page.click('#gf-classes li[data-code="06010"]')
    page.set_input_files("#gf-photos", str(void))
    page.wait_for_function("() => GF.photos.length === 1 && GF.photos[0].gps === null")
    page.click("#gf-submit")
    page.wait_for_function("() => document.getElementById('gf-error').textContent.indexOf('所附照片') >= 0")
    assert (
        "所附照片不含可用的 GPS 位置(无定位、定位无效或误差过大):请定位(GPS 或地图点选)"
        in page.locator("#gf-error").inner_text()
    )
    assert page.evaluate("() => GF.outbox.all()") == []


def listed(page: Any, word: str) -> list[str]:
    page.fill("#gf-search", word)
    return page.eval_on_selector_all("#gf-classes li[data-code]", "ls => ls.map(l => l.dataset.code)")


def test_class_search_knows_common_words(phone: Tab, live: LiveServer) -> None:
    page = phone.page
    page.goto(live.url + "/field")
    page.wait_for_selector('#gf-classes li[data-code="06010"]')
    for word in ("窨井", "下水道"):
        codes = listed(page, word)
        assert "01001" in codes and "06010" not in codes, (word, codes)
    # manhole covers the catalogue has no class for find every 井盖 class, 不明井盖异常 (owner not known: the
    # catalogue's fallback_for 井盖) first, not 供水井盖异常 by code order (review45 U1); so do 窨井 and 井盖
    for word in ("污水井盖", "雨水井盖", "燃气井盖", "电力井盖", "热力井盖", "井盖", "窨井", "检查井", "污水井盖异常"):
        assert listed(page, word) == ["01023", "01001", "01007"], word
    # 上水/通讯井盖 the one they mean; a class's own name keeps it first
    assert listed(page, "上水井盖") == ["01001"] and listed(page, "通讯井盖") == ["01007"]
    assert listed(page, "供水井盖")[0] == "01001" and listed(page, "通信井盖")[0] == "01007"
    assert listed(page, "不明井盖") == ["01023"] and listed(page, "无主井盖") == ["01023"]
    page.fill("#gf-search", "供水")
    page.click('#gf-classes li[data-code="01001"]')  # picked: recent — still after the owner-unknown class
    assert listed(page, "污水井盖") == ["01023", "01001", "01007"]


def test_class_search_ranks_the_class_named_first(phone: Tab, live: LiveServer) -> None:
    """垃圾 lists 暴露垃圾 (the thing itself) before 垃圾箱异常 (a bin), catalogue order only within a rank; a
    class picked recently comes first within its rank (review14 #9)."""
    page = phone.page
    page.goto(live.url + "/field")
    page.wait_for_selector('#gf-classes li[data-code="06010"]')
    # 暴露垃圾 ends in the word; the others have it inside (catalogue order among them)
    assert listed(page, "垃圾") == ["06010", "03005", "06011", "06041", "06042"]
    assert listed(page, "暴露垃圾")[0] == "06010" and listed(page, "06010") == ["06010"]
    assert listed(page, "垃圾桶") == ["03005"]  # a common word typed in full
    page.fill("#gf-search", "满溢")
    page.click('#gf-classes li[data-code="06042"]')  # picked: recent
    assert listed(page, "垃圾") == ["06010", "06042", "03005", "06011", "06041"]
    phone.shot("class-search-ranked")


def test_gps_failure_is_shown_by_the_gps_button(phone: Tab, live: LiveServer) -> None:
    page = phone.page
    page.add_init_script(
        "navigator.geolocation.getCurrentPosition = function (ok, fail) {"
        " setTimeout(function () { fail({code: 1, message: 'denied'}); }, 10); };"
    )
    page.goto(live.url + "/field")
    page.wait_for_selector('#gf-classes li[data-code="06010"]')
    page.click("#gf-gps")
    msg = page.locator("#gf-gps-msg")
    msg.wait_for(state="visible")
    assert "GPS 定位失败:未获定位权限" in msg.inner_text()
    box, button = msg.bounding_box(), page.locator("#gf-gps").bounding_box()
    assert box is not None and button is not None
    assert box["y"] >= 0 and box["y"] + box["height"] <= 844, box  # in view
    assert 0 < box["y"] - button["y"] < 120  # right under the button
    phone.shot("gps-denied")


def test_basemap_whole_district_and_touch_sized_zoom(phone: Tab, live: LiveServer) -> None:
    origin = "http://basemap.gisgrid.test:8124"
    tile = io.BytesIO()
    Image.new("RGB", (256, 256), (240, 236, 220)).save(tile, "PNG")
    served: list[str] = []

    def fulfil(route: Any) -> None:
        served.append(route.request.url)
        route.fulfill(status=200, body=tile.getvalue(), headers={"Content-Type": "image/png"})

    phone.context.route(origin + "/**", fulfil)
    old = live.app.state.basemap
    live.app.state.basemap = basemap_for(origin + "/{z}/{x}/{y}.png", attribution="测试底图")
    try:
        page = phone.page
        page.goto(live.url + "/field")
        page.wait_for_selector('#gf-classes li[data-code="06010"]')
        page.wait_for_function("() => document.querySelectorAll('#gf-map img.leaflet-tile-loaded').length > 0")
    finally:
        live.app.state.basemap = old
    assert served and all(u.startswith(origin + "/") for u in served)
    off = phone.watch.off_origin()
    assert off and all(u.startswith(origin + "/") for u in off), off  # the configured origin only
    assert "测试底图" in page.locator("#gf-map .leaflet-control-attribution").inner_text()
    # the whole district at start, not zoom 15 (the unit grids' minZoom)
    zoom, fit = page.evaluate("() => [GF.map.getZoom(), GF.map.getBoundsZoom(L.latLngBounds(GF_CONFIG.bounds))]")
    assert zoom == fit, (zoom, fit)
    for sel in (".leaflet-control-zoom-in", ".leaflet-control-zoom-out"):
        b = page.locator(sel).bounding_box()
        assert b is not None and b["width"] >= 44 and b["height"] >= 44, (sel, b)
    phone.shot("basemap")
    # a GCJ-02 basemap: its pane is moved by the GCJ-02 offset (hundreds of metres: many pixels at this zoom)
    live.app.state.basemap = basemap_for(origin + "/{z}/{x}/{y}.png", datum="gcj02")
    try:
        page.reload()
        page.wait_for_function("() => GF.map && GF.map.basemapShiftPx")
    finally:
        live.app.state.basemap = old
    dx, dy = page.evaluate("() => GF.map.basemapShiftPx")
    assert abs(dx) + abs(dy) > 1, (dx, dy)
    assert page.evaluate("() => GF.map.getPane('gf-basemap').querySelectorAll('img.leaflet-tile').length") > 0


def test_the_page_opens_offline_from_its_service_worker(phone: Tab, live: LiveServer) -> None:
    page, context = phone.page, phone.context
    page.goto(live.url + "/field")
    page.wait_for_selector('#gf-classes li[data-code="06010"]')
    page.wait_for_function("() => navigator.serviceWorker && navigator.serviceWorker.controller !== null")
    page.evaluate("() => navigator.serviceWorker.ready")
    context.set_offline(True)
    seen = len(phone.watch.responses)
    answer = page.reload()
    assert answer is not None and answer.ok and answer.from_service_worker
    page.wait_for_selector('#gf-classes li[data-code="06010"]')
    # the page's own script (a file of this origin, not inline) comes from the service worker's store
    (script,) = [r for r in phone.watch.responses[seen:] if r.url == live.url + field.SCRIPT_URL]
    assert script.ok and script.from_service_worker
    assert page.evaluate("() => typeof GF.flush === 'function'")
    assert page.locator("#gf-net").inner_text() == "离线"
    assert page.evaluate("() => typeof L.vectorGrid.protobuf === 'function'")  # the vendored JS too
    assert page.evaluate("() => fetch('/field/classes?scheme=gbt47678').then(r => r.json()).then(b => b.count)") > 20
    phone.shot("offline-reopened")
    context.set_offline(False)


def test_a_photo_too_big_is_refused_at_the_photo_control_and_the_count_says_what_goes(
    phone: Tab, live: LiveServer, clean_db: Engine, tmp_path: Path
) -> None:
    """An over-size photo is said where it was chosen, left out of the list by name and why, and the line above
    上报 counts the photos that go with the report (review22 D5)."""
    page = phone.page
    page.goto(live.url + "/field")
    page.wait_for_selector('#gf-classes li[data-code="06010"]')
    page.fill("#gf-name", REPORTER)
    page.click('#gf-classes li[data-code="06010"]')
    tap_the_map_centre(page)
    count = page.locator("#gf-photo-n")
    assert count.inner_text() == "本次上报不附照片"
    huge = tmp_path / "huge.jpg"
    huge.write_bytes(a_photo(tmp_path).read_bytes() + bytes(16 * 1024 * 1024))  # 16 MB and a bit
    page.set_input_files("#gf-photos", [str(a_photo(tmp_path)), str(huge)])
    page.wait_for_selector("#gf-thumbs img")
    msg = page.locator("#gf-photo-msg")
    msg.wait_for(state="visible")
    assert msg.inner_text() == "未附上 huge.jpg:超过 15 MB(此照片 16.0 MB):请在相机设置中调低分辨率后重拍"
    assert page.locator("#gf-thumbs img").count() == 1  # the good one only
    assert page.is_hidden("#gf-error")  # not two cards below, by the submit button
    control, box = page.locator("label.gf-file").bounding_box(), msg.bounding_box()
    assert control is not None and box is not None
    assert 0 < box["y"] - (control["y"] + control["height"]) < 120, (control, box)  # right under the photos
    assert box["y"] >= 0 and box["y"] + box["height"] <= 844  # in view
    assert count.inner_text() == "本次上报附 1 张照片;1 张未附上(见「拍照 / 选择照片」下)"
    phone.shot("photo-too-big")
    page.click("#gf-submit")
    page.wait_for_function("() => /已上报:案件 .*(附 1 张照片)/.test(document.getElementById('gf-notice').textContent)")
    [(_, _, _, photos)] = cases_of(clean_db, REPORTER)
    assert photos == 1
    assert msg.is_hidden() and count.inner_text() == "本次上报不附照片"  # the next report starts clean
    # only the big one: nothing is attached, and the count says so before 上报
    page.set_input_files("#gf-photos", str(huge))
    msg.wait_for(state="visible")
    assert page.locator("#gf-thumbs img").count() == 0
    assert count.inner_text() == "本次上报不附照片;1 张未附上(见「拍照 / 选择照片」下)"


def test_a_location_outside_the_district_is_a_plain_warning_said_once(
    phone: Tab, live: LiveServer, tmp_path: Path
) -> None:
    """Outside the district's grids: a red warning, said once, in the worker's words — move the pin or check the
    GPS —, without the server's status or its 坐标系/经纬度 advice (review22 D6)."""
    page = phone.page
    page.add_init_script(  # a phone whose GPS puts it in Beijing
        "navigator.geolocation.getCurrentPosition = function (ok) {"
        " setTimeout(function () { ok({coords: {longitude: 116.40, latitude: 39.90, accuracy: 12}}); }, 10); };"
    )
    page.goto(live.url + "/field")
    page.wait_for_selector('#gf-classes li[data-code="06010"]')
    with page.expect_response(lambda r: "/grids/locate" in r.url) as located:
        page.click("#gf-gps")
    assert located.value.status == 404
    grid = page.locator("#gf-grid")
    page.wait_for_function("() => document.getElementById('gf-grid').textContent.indexOf('此位置不在') === 0")
    assert grid.inner_text() == "此位置不在本区网格范围内,不能上报。请在地图上移动位置,或检查手机 GPS 后重新定位。"
    assert grid.get_attribute("class") == "gf-warning" and grid.get_attribute("role") == "alert"
    assert page.evaluate("() => getComputedStyle(document.getElementById('gf-grid')).color") == "rgb(138, 28, 28)"
    phone.shot("outside-warning")
    # a photo taken elsewhere: the same warning, about the photo
    page.click("#gf-clear-loc")
    assert grid.inner_text() == "" and grid.get_attribute("class") == "gf-hint"
    with page.expect_response(lambda r: "/grids/locate" in r.url):
        page.set_input_files("#gf-photos", str(gps_photo(tmp_path, "beijing.jpg", 116.397, 39.908)))
    page.wait_for_function("() => document.getElementById('gf-grid').textContent.indexOf('照片的拍摄位置') === 0")
    assert grid.inner_text() == "照片的拍摄位置不在本区网格范围内,不能上报。请用 GPS 定位,或在地图上点选位置。"
    assert grid.get_attribute("class") == "gf-warning"
    # inside again: the grid, as a hint
    page.click("#gf-thumbs button")
    tap_the_map_centre(page)
    assert grid.inner_text().startswith("单元网格 ") and grid.get_attribute("class") == "gf-hint"
    assert grid.get_attribute("role") is None


#: The form's controls (and the queue's buttons) the status line lies over, among those in view.
COVERED = """() => {
  const n = document.getElementById('gf-notice');
  if (n.hidden) { return ['(no notice)']; }
  const a = n.getBoundingClientRect(), out = [];
  document.querySelectorAll('#gf-form input, #gf-form textarea, #gf-form select, #gf-form button, #gf-form .gf-file,'
      + ' #gf-class, #gf-classes li, main > section button').forEach((c) => {
    let b = c.getBoundingClientRect(), r = {top: b.top, bottom: b.bottom, left: b.left, right: b.right};
    for (let p = c.parentElement; p; p = p.parentElement) {  // what its scrolling boxes show of it
      if (getComputedStyle(p).overflowY === 'visible') { continue; }
      const q = p.getBoundingClientRect();
      r = {top: Math.max(r.top, q.top), bottom: Math.min(r.bottom, q.bottom), left: Math.max(r.left, q.left),
           right: Math.min(r.right, q.right)};
    }
    if (r.bottom <= r.top || r.right <= r.left || r.bottom < 0 || r.top > innerHeight) { return; }
    if (r.left < a.right && a.left < r.right && r.top < a.bottom && a.top < r.bottom) {
      out.push(c.id || c.className || c.tagName);
    }
  });
  return out;
}"""


def test_the_status_line_after_a_report_covers_no_control_on_a_phone(
    phone: Tab, live: LiveServer, clean_db: Engine, tmp_path: Path
) -> None:
    """On a 390×844 phone the status line after 上报 (online, or queued offline) is in the page's flow, shown at the
    top above the next report, and lies over no control wherever the page is scrolled (review22 D7)."""
    page, context = phone.page, phone.context
    page.goto(live.url + "/field")
    page.wait_for_selector('#gf-classes li[data-code="06010"]')
    page.fill("#gf-name", REPORTER)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for offline, said in ((False, "已上报:案件 "), (True, "当前离线:已保存到待发送队列")):
        page.click('#gf-classes li[data-code="06010"]')
        tap_the_map_centre(page)
        page.fill("#gf-addr", "某路与某街交叉口")
        page.set_input_files("#gf-photos", str(a_photo(tmp_path)))
        page.wait_for_selector("#gf-thumbs img")
        if offline:  # a dead spot, right before 上报
            context.set_offline(True)
            page.wait_for_function("() => document.getElementById('gf-net').textContent === '离线'")
        page.locator("#gf-submit").scroll_into_view_if_needed()
        page.click("#gf-submit")
        page.wait_for_function(f"() => document.getElementById('gf-notice').textContent.indexOf('{said}') === 0")
        notice = page.locator("#gf-notice")
        assert page.evaluate("() => getComputedStyle(document.getElementById('gf-notice')).position") == "static"
        box, bar = notice.bounding_box(), page.locator("header.gf-bar").bounding_box()
        assert box is not None and bar is not None
        assert bar["y"] + bar["height"] <= box["y"] and box["y"] + box["height"] <= 844, (bar, box)  # in view
        assert page.evaluate(COVERED) == []
        name = "offline" if offline else "online"
        page.screenshot(path=str(ARTIFACTS / f"{phone.name}-after-report-{name}.png"))  # the phone's view
        for control in ("#gf-search", "#gf-addr", "label.gf-file", "#gf-submit"):  # the next report's fields
            page.locator(control).scroll_into_view_if_needed()
            assert page.evaluate(COVERED) in ([], ["(no notice)"]), control
            if notice.is_visible():
                n, c = notice.bounding_box(), page.locator(control).bounding_box()
                assert n is not None and c is not None
                assert n["y"] + n["height"] <= c["y"] or c["y"] + c["height"] <= n["y"], (control, n, c)
        page.evaluate("() => window.scrollTo(0, 0)")
    context.set_offline(False)
    page.wait_for_function("() => document.getElementById('gf-queue-n').textContent === '0'", timeout=15_000)
    assert len(cases_of(clean_db, REPORTER)) == 2


#: Builds a plain HTML form (multipart: no CORS preflight) on the current page and submits it.
POST_A_FORM = """(a) => {
  const f = Object.assign(document.createElement('form'), {method: 'post', action: a.url});
  f.enctype = 'multipart/form-data';
  for (const [name, value] of Object.entries(a.fields)) {
    f.appendChild(Object.assign(document.createElement('input'), {name, value}));
  }
  document.body.appendChild(f);
  f.submit();
}"""


def test_a_form_on_another_site_cannot_report_in_this_browsers_name(
    phone: Tab, live: LiveServer, clean_db: Engine
) -> None:
    """Review D1 (CSRF): a page of another site — ``localhost`` is another site than ``127.0.0.1`` — posting a
    multipart form to the service is refused by what Chromium says of it; the same form on the service's own origin
    is taken."""
    page = phone.page
    xs, ys = inside_points(1, seed=21)
    fields = {"class_code": "06010", "lon": str(xs[0]), "lat": str(ys[0]), "datum": "cgcs2000", "reporter": REPORTER}
    other_site = live.url.replace("127.0.0.1", "localhost")
    for origin, status in ((other_site, 403), (live.url, 201)):
        page.goto(origin + "/health")
        with page.expect_response(lambda r: r.url.endswith("/cases/form")) as answer:
            page.evaluate(POST_A_FORM, {"url": live.url + "/cases/form", "fields": fields})
        sent = answer.value.request.all_headers()
        assert answer.value.status == status, (origin, sent, answer.value.text())
        if status == 403:
            # the "other site" is this app under another name: its Referrer-Policy same-origin (review54 F7) makes
            # Chromium send Origin: null across origins — refused as a named one is
            assert (sent["origin"], sent["sec-fetch-site"]) == ("null", "cross-site")
            assert answer.value.json()["reason"] == "cross_site_request"
            assert cases_of(clean_db, REPORTER) == []  # nothing written
        else:
            assert (sent["origin"], sent["sec-fetch-site"]) == (live.url, "same-origin")
            assert len(cases_of(clean_db, REPORTER)) == 1
