"""A coarse live GPS fix on the field page (review45 D3): above the photos' limit (``C.maxGpsErrorM``, 50 m) the
page says so in red, zooms out to the whole accuracy circle and sends the report only after a confirm tap; the
fix's accuracy goes with the report (``accuracy_m``) and is stored with the case."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, text

from tests.browser.conftest import LiveServer, Tab
from tests.browser.test_field_browser import REPORTER, cases_of, gps_photo
from tests.browser.test_field_status_browser import open_field, wait_for_notice
from tests.test_components_store import inside_points

WARNING = "定位精度约 800 米,误差过大:请到开阔处重新定位,或在地图上点选"


def fake_gps(page: Any, lon: float, lat: float) -> None:
    """navigator.geolocation answering (lon, lat) with the accuracy in window.FIX_ACCURACY (800 m at first)."""
    page.add_init_script(
        "window.FIX_ACCURACY = 800; navigator.geolocation.getCurrentPosition = function (ok) { setTimeout(function () {"
        f" ok({{coords: {{longitude: {lon}, latitude: {lat}, accuracy: window.FIX_ACCURACY}}}}); }}, 10); }};"
    )


def locate(page: Any) -> None:
    page.evaluate("() => { GF.loc = null; }")
    page.click("#gf-gps")
    page.wait_for_function("() => GF.loc && GF.loc.source === 'gps'")


def test_a_coarse_fix_is_taken_only_on_a_confirm_tap(phone: Tab, live: LiveServer, clean_db: Engine) -> None:
    xs, ys = inside_points(1, seed=5)
    page = phone.page
    fake_gps(page, float(xs[0]), float(ys[0]))
    open_field(phone, live)
    page.fill("#gf-name", REPORTER)
    page.click('#gf-classes li[data-code="06010"]')
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    locate(page)

    warning = page.locator("#gf-acc")
    assert warning.is_visible() and warning.get_attribute("class") == "gf-warning"
    assert warning.get_attribute("role") == "alert"
    assert page.locator("#gf-acc-text").inner_text() == WARNING + "。如确认位置无误,可点下方按钮使用此位置。"
    assert page.locator("#gf-acc-ok").inner_text() == "仍使用此位置"
    # the view holds the whole circle (at z17 an 800 m circle fills the screen and only the dot shows)
    page.wait_for_function("() => GF.map.getBounds().contains(GF.accuracy.getBounds())")  # once the view has moved
    assert page.evaluate("() => GF.map.getZoom()") < 17
    assert page.evaluate("() => GF.accuracy.options.color") == "#c62828"
    phone.shot("coarse-fix")

    page.click("#gf-submit")  # not taken without the confirm tap: nothing saved, nothing sent
    error = page.locator("#gf-error")
    assert error.is_visible() and error.inner_text() == WARNING + ";或点「仍使用此位置」确认"
    assert page.locator("#gf-queue li").count() == 0 and posts == []

    page.click("#gf-acc-ok")
    assert warning.is_hidden() and error.is_hidden()
    page.click("#gf-submit")
    assert wait_for_notice(page, "已上报:案件 ").startswith("已上报:案件 ")
    ((case_id, *_),) = cases_of(clean_db, REPORTER)
    with clean_db.connect() as conn:
        stored = conn.execute(text("SELECT accuracy_m FROM cases WHERE id = :id"), {"id": case_id}).scalar_one()
    assert stored == 800.0

    # A good fix: no warning, street zoom, its accuracy sent too.
    page.evaluate("() => { window.FIX_ACCURACY = 8; }")
    page.fill("#gf-name", REPORTER)
    page.click('#gf-classes li[data-code="06010"]')
    locate(page)
    assert warning.is_hidden()
    page.wait_for_function("() => GF.map.getZoom() === 17")
    first = page.locator("#gf-notice").inner_text()  # 已上报:案件 <the first> — the second's notice names another
    page.click("#gf-submit")
    page.wait_for_function(
        "(first) => { const t = document.getElementById('gf-notice').textContent;"
        " return t !== first && t.indexOf('已上报:案件 ') === 0; }",
        arg=first,
    )
    rows = cases_of(clean_db, REPORTER)
    assert len(rows) == 2
    with clean_db.connect() as conn:
        stored = conn.execute(text("SELECT accuracy_m FROM cases WHERE id = :id"), {"id": rows[1][0]}).scalar_one()
    assert stored == 8.0
    assert not phone.watch.bad, phone.watch.bad


def test_a_report_located_by_its_photo_sends_the_photos_stated_accuracy(
    phone: Tab, live: LiveServer, clean_db: Engine, tmp_path: Path
) -> None:
    """A report located by a photo's EXIF GPS sends the photo's GPSHPositioningError as accuracy_m (stored with the
    case, as a live fix's); a photo that states none sends none, and the page says its accuracy is unknown."""
    xs, ys = inside_points(2, seed=21)
    page = phone.page
    open_field(phone, live)
    sent: list[Any] = []
    page.on("request", lambda r: sent.append(r) if r.method == "POST" and r.url.endswith("/cases/form") else None)
    stored: list[float | None] = []
    for i, error_m in enumerate((8.5, None)):
        page.fill("#gf-name", REPORTER)
        page.click('#gf-classes li[data-code="06010"]')
        photo = gps_photo(tmp_path, f"p{i}.jpg", float(xs[i]), float(ys[i]), status="A", error_m=error_m)
        page.set_input_files("#gf-photos", str(photo))
        page.wait_for_function("() => document.getElementById('gf-grid').textContent.indexOf('单元网格') >= 0")
        where = f"照片 GPS 位置:{float(xs[i]):.6f}, {float(ys[i]):.6f}"
        said = "(精度约 9 米)" if error_m else "(照片未记录定位精度,精度未知)"
        assert page.locator("#gf-loc").inner_text() == where + said + "(上报时使用;也可 GPS 定位或在地图上点选)"
        before = page.locator("#gf-notice").inner_text()
        page.click("#gf-submit")
        page.wait_for_function(
            "(before) => { const t = document.getElementById('gf-notice').textContent;"
            " return t !== before && t.indexOf('已上报:案件 ') === 0; }",
            arg=before,
        )
        ((case_id, *_),) = cases_of(clean_db, REPORTER)[i:]
        with clean_db.connect() as conn:
            stored.append(
                conn.execute(text("SELECT accuracy_m FROM cases WHERE id = :id"), {"id": case_id}).scalar_one()
            )
    assert stored == [8.5, None]
    assert len(sent) == 2
    # the outbox's headers: the role and the name (URL-encoded) of the form
    headers = sent[0].headers
    assert (headers["x-role"], headers["x-actor"]) == ("grid_worker", quote(REPORTER))
    assert not phone.watch.bad, phone.watch.bad
