"""The field page on a phone-sized headless Chromium: a report made OFFLINE (with a photo) waits in the IndexedDB
outbox and reaches the server exactly once when the connection returns."""

from __future__ import annotations

from pathlib import Path

import httpx2 as httpx
from PIL import Image
from sqlalchemy import Engine, text

from tests.browser.conftest import LiveServer, Tab

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
    the_map = page.locator("#gf-map")
    the_map.scroll_into_view_if_needed()
    box = the_map.bounding_box()
    assert box is not None
    the_map.click(position={"x": box["width"] / 2, "y": box["height"] / 2})  # the district's centre
    page.wait_for_function("() => document.getElementById('gf-grid').textContent.indexOf('单元网格') >= 0")
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
    assert not phone.watch.off_origin(), phone.watch.off_origin()
    assert not phone.watch.bad, phone.watch.bad
    phone.shot("sent")


def test_a_refused_report_is_dropped_with_the_reason_shown(phone: Tab, live: LiveServer, clean_db: Engine) -> None:
    page = phone.page
    page.goto(live.url + "/field")
    page.wait_for_selector('#gf-classes li[data-code="06010"]')
    page.fill("#gf-name", REPORTER)
    page.click('#gf-classes li[data-code="06010"]')
    page.evaluate("() => { GF.loc = {lon: 100.0, lat: 30.0, datum: 'wgs84', source: 'gps'}; }")  # far away
    page.click("#gf-submit")
    page.wait_for_selector("#gf-rejected > div")
    assert "outside the gridded coverage" in page.locator("#gf-rejected").inner_text()
    assert "未被受理" in page.locator("#gf-notice").inner_text()
    page.wait_for_function("() => document.getElementById('gf-queue-n').textContent === '0'")
    assert cases_of(clean_db, REPORTER) == []
    assert not phone.watch.off_origin()
    phone.shot("refused")
