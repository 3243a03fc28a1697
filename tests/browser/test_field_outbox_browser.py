"""The field page's outbox and photos on a phone (review45): 上报 is free again once a report is queued, a 5xx backs
off per record, a queued report can be edited or discarded, a HEIC the browser cannot draw is a tile, the 15 MB
refusal says what to change, and an old or far photo gets a warning."""

from __future__ import annotations

import base64
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import ExifTags, Image
from PIL.TiffImagePlugin import IFDRational
from sqlalchemy import Engine

from tests.browser.conftest import LiveServer, Tab
from tests.browser.test_field_browser import REPORTER, a_photo, cases_of
from tests.browser.test_field_status_browser import fill_a_report, open_field, wait_for_notice
from tests.test_components_store import inside_points

#: The retry timer (C.retryMs) switched off: the test calls GF.flush() itself, as the timer would.
NO_RETRY_TIMER = (
    "(() => { const si = window.setInterval;"
    " window.setInterval = function (f, ms) { return ms === 15000 ? 0 : si.apply(window, arguments); }; })();"
)
QUEUE_N = "() => document.getElementById('gf-queue-n').textContent"


def dated_photo(folder: Path, name: str, lon: float, lat: float, taken: str, offset: str) -> Path:
    """A JPEG with EXIF GPS and DateTimeOriginal ``taken`` ("YYYY:MM:DD HH:MM:SS") at OffsetTimeOriginal ``offset``."""

    def dms(v: float) -> tuple[IFDRational, ...]:
        d = int(v)
        m = int((v - d) * 60)
        return (IFDRational(d, 1), IFDRational(m, 1), IFDRational(round(((v - d) * 60 - m) * 60 * 10000), 10000))

    exif = Image.Exif()
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef], gps[ExifTags.GPS.GPSLatitude] = "N", dms(lat)
    gps[ExifTags.GPS.GPSLongitudeRef], gps[ExifTags.GPS.GPSLongitude] = "E", dms(lon)
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    sub[ExifTags.Base.DateTimeOriginal], sub[ExifTags.Base.OffsetTimeOriginal] = taken, offset
    path = folder / name
    Image.new("RGB", (64, 48), (60, 60, 200)).save(path, "JPEG", quality=80, exif=exif.tobytes())
    return path


def metres(a: dict[str, float], b: tuple[float, float]) -> float:
    r = math.pi / 180
    x = (b[0] - a["lon"]) * r * math.cos((a["lat"] + b[1]) / 2 * r)
    y = (b[1] - a["lat"]) * r
    return 6371008.8 * math.hypot(x, y)


def distance_text(m: float) -> str:
    """The page's words for a distance: tens of metres, then km with one decimal, then whole km."""
    if m < 1000:
        return f"{round(m / 10) * 10} 米"
    return f"{m / 1000:.1f} 公里" if m < 10_000 else f"{round(m / 1000)} 公里"


def wait_until(page: Any, ok: Callable[[], bool], seconds: float = 15) -> None:
    """Let the page run (its requests routed, its dialogs handled) until ``ok()`` or ``seconds``: the default wait
    of the other steps, not a fixed pause that a busy machine outlasts."""
    deadline = time.monotonic() + seconds
    while not ok() and time.monotonic() < deadline:
        page.wait_for_timeout(50)


def test_the_next_report_can_be_filed_while_a_slow_upload_is_in_flight(
    phone: Tab, live: LiveServer, clean_db: Engine, tmp_path: Path
) -> None:
    """review45 D1: the upload is held (a slow uplink); 上报 is enabled as soon as the report is in the outbox, the
    next report is queued behind it, and both arrive once the upload goes through."""
    page = phone.page
    open_field(phone, live)
    held: list[Any] = []
    release = False

    def slow(route: Any) -> None:
        if release:
            route.continue_()
        else:
            held.append(route)

    page.route("**/cases/form", slow)
    fill_a_report(page)
    page.fill("#gf-desc", "第一条")
    page.set_input_files("#gf-photos", str(a_photo(tmp_path)))
    page.wait_for_selector("#gf-thumbs img")
    page.click("#gf-submit")
    assert wait_for_notice(page, "已保存") == "已保存(附 1 张照片),正在发送…"
    page.wait_for_function("() => !document.getElementById('gf-submit').disabled")  # the upload is held
    page.wait_for_function("() => GF.sending === false")
    wait_until(page, lambda: bool(held))  # the upload starts (and is held: still uploading)
    assert len(held) == 1
    assert page.is_enabled("#gf-submit")

    fill_a_report(page)
    page.fill("#gf-desc", "第二条")
    page.click("#gf-submit")
    page.wait_for_function(f"() => ({QUEUE_N})() === '2'")
    assert page.is_enabled("#gf-submit")
    assert page.evaluate("() => GF.outbox.all().then(rs => rs.map(r => r.fields.description))") == ["第一条", "第二条"]
    assert len(held) == 1 and cases_of(clean_db, REPORTER) == []  # in order: the second waits for the first

    release = True
    held[0].continue_()
    page.wait_for_function(f"() => ({QUEUE_N})() === '0'")
    page.evaluate("() => GF.flushing")
    assert [photos for _, _, _, photos in cases_of(clean_db, REPORTER)] == [1, 0]


def test_a_send_that_gets_no_answer_is_aborted_after_its_timeout(phone: Tab, live: LiveServer) -> None:
    """review45 D1: a send is given up after 30 s plus its body at 256 kbit/s (here shortened), and the report
    stays queued as unanswered."""
    page = phone.page
    open_field(phone, live)
    assert page.evaluate("() => [GF.sendTimeout(0), GF.sendTimeout(4700000)]") == [30000, 30000 + 146875]
    page.route("**/cases/form", lambda route: None)  # the server never answers
    page.evaluate("() => { GF_CONFIG.sendTimeoutMs = 500; }")
    fill_a_report(page)
    page.click("#gf-submit")
    said = "未收到服务器应答,稍后自动重发"
    page.wait_for_function(f"() => (document.querySelector('#gf-queue li small') || {{}}).textContent === '{said}'")
    assert page.locator("#gf-queue-n").inner_text() == "1"
    assert page.locator("#gf-net").inner_text() == "服务器无应答"


def test_a_server_error_backs_off_per_report_and_immediate_send_overrides_it(
    phone: Tab, live: LiveServer, clean_db: Engine
) -> None:
    """review45 D2: after a 503 a report waits 15 s, then 30 s … (or the answer's Retry-After), a flush stops at the
    first 5xx, the queue line says when it is tried next, and 立即发送 sends at once."""
    page = phone.page
    page.add_init_script(NO_RETRY_TIMER)
    open_field(phone, live)
    t0 = int(page.evaluate("() => { window.__now = Date.now(); GF.now = () => window.__now; return window.__now; }"))
    posts: list[str] = []
    retry_after: list[str] = []

    def down(route: Any) -> None:
        posts.append(route.request.headers["idempotency-key"])
        headers = {"Retry-After": retry_after[0]} if retry_after else {}
        route.fulfill(status=503, content_type="application/json", body='{"error": "unavailable"}', headers=headers)

    page.route("**/cases/form", down)

    def flush_at(ms: int) -> None:
        page.evaluate(f"() => {{ window.__now = {t0 + ms}; return GF.flush(); }}")

    def next_tries() -> list[int]:
        return [int(t) - t0 for t in page.evaluate("() => GF.outbox.all().then(rs => rs.map(r => r.nextTry))")]

    def clock(ms: int) -> str:
        h, m, s = page.evaluate(
            f"() => {{ var d = new Date({t0 + ms}); return [d.getHours(), d.getMinutes(), d.getSeconds()]; }}"
        )
        return f"下次自动重试 {h:02d}:{m:02d}:{s:02d}"

    for n, what in enumerate(["第一条", "第二条"], start=1):
        fill_a_report(page)
        page.fill("#gf-desc", what)
        page.click("#gf-submit")
        page.wait_for_function(f"() => document.querySelectorAll('#gf-queue li .gf-next').length === {n}")
        page.evaluate("() => GF.flushing")
    a, b = page.evaluate("() => GF.outbox.all().then(rs => rs.map(r => r.key))")
    assert posts == [a, b]  # the first backing off, the second tried once
    assert next_tries() == [15_000, 15_000]
    lines = page.locator("#gf-queue li")
    assert lines.nth(0).locator(".gf-status").inner_text() == "服务器暂时无法处理(503),稍后重试"
    assert lines.nth(0).locator(".gf-next").inner_text() == clock(15_000)

    flush_at(14_900)  # the retry timer before they are due: nothing uploaded
    assert posts == [a, b]
    flush_at(15_000)  # both due: the first is tried, its 503 stops the flush
    assert posts == [a, b, a]
    assert next_tries() == [45_000, 15_000]
    flush_at(15_000)
    assert posts == [a, b, a, b]
    assert next_tries() == [45_000, 45_000]
    flush_at(44_999)
    assert posts == [a, b, a, b]
    retry_after.append("120")  # the server says when: honoured
    flush_at(45_000)
    assert posts == [a, b, a, b, a]
    assert next_tries() == [165_000, 45_000]
    assert page.evaluate("() => GF.outbox.all().then(rs => rs.map(r => r.attempts))") == [3, 2]
    assert lines.nth(0).locator(".gf-next").inner_text() == clock(165_000)
    # the schedule: 15 s doubling to 10 min; Retry-After capped at 10 min
    assert page.evaluate("() => [1, 2, 3, 4, 5, 6, 7, 12].map(n => GF.backoff(n, null))") == [
        15_000,
        30_000,
        60_000,
        120_000,
        240_000,
        480_000,
        600_000,
        600_000,
    ]
    assert page.evaluate("() => [GF.backoff(1, '5'), GF.backoff(9, '3600')]") == [5_000, 600_000]
    assert cases_of(clean_db, REPORTER) == []

    page.unroute("**/cases/form")  # the server is back; 立即发送 does not wait for the backoff
    page.click("#gf-retry")
    page.wait_for_function(f"() => ({QUEUE_N})() === '0'")
    assert len(cases_of(clean_db, REPORTER)) == 2
    assert posts == [a, b, a, b, a]


def test_a_queued_report_can_be_edited_or_discarded(phone: Tab, live: LiveServer, clean_db: Engine) -> None:
    """review45 U2: a queued (offline) report has 修改 and 放弃: 修改 moves it back into the form and holds it (not
    sent) until the form replaces it; 放弃 asks first."""
    page = phone.page
    open_field(phone, live)
    fill_a_report(page)
    page.fill("#gf-desc", "类别选错了")
    phone.context.set_offline(True)
    page.wait_for_function("() => document.getElementById('gf-net').textContent === '离线'")
    page.click("#gf-submit")
    page.wait_for_function(f"() => ({QUEUE_N})() === '1'")
    line = page.locator("#gf-queue li")
    assert line.locator("button").all_inner_texts() == ["修改", "放弃"]
    assert line.locator(".gf-status").inner_text() == "等待发送"

    line.locator(".gf-edit").click()
    page.wait_for_function("() => document.getElementById('gf-desc').value === '类别选错了'")
    assert "06010" in page.locator("#gf-class").inner_text()
    assert page.locator("#gf-notice").inner_text() == "待发送的上报已移回表单,暂停发送:修改后点「上报」重发。"
    page.wait_for_function(
        "() => (document.querySelector('#gf-queue li .gf-status') || {}).textContent"
        " === '修改中:暂停发送,点「上报」重发后替换此条'"
    )
    phone.context.set_offline(False)  # online: the held report is not sent as it was
    page.wait_for_function("() => document.getElementById('gf-net').textContent === '在线'")
    page.evaluate("() => GF.flush(true)")
    assert cases_of(clean_db, REPORTER) == []
    page.click('#gf-classes li[data-code="06011"]')
    page.fill("#gf-desc", "类别已改")
    page.click("#gf-submit")
    wait_for_notice(page, "已上报:案件 ")
    page.wait_for_function(f"() => ({QUEUE_N})() === '0'")
    assert len(cases_of(clean_db, REPORTER)) == 1
    assert page.evaluate("() => GF.outbox.all()") == []

    page.wait_for_timeout(1600)  # past the quiet time after a report
    fill_a_report(page)
    phone.context.set_offline(True)
    page.wait_for_function("() => document.getElementById('gf-net').textContent === '离线'")
    page.click("#gf-submit")
    page.wait_for_function(f"() => ({QUEUE_N})() === '1'")
    dialogs: list[str] = []

    def dismiss(d: Any) -> None:
        dialogs.append(d.message)
        d.dismiss()

    page.once("dialog", dismiss)
    page.click("#gf-queue li .gf-discard")
    wait_until(page, lambda: bool(dialogs))
    assert dialogs == ["放弃这条待发送的上报?照片和描述将从本机删除,不会发送。"]
    assert page.locator("#gf-queue-n").inner_text() == "1"
    page.once("dialog", lambda d: d.accept())
    page.click("#gf-queue li .gf-discard")
    page.wait_for_function(f"() => ({QUEUE_N})() === '0'")
    assert page.evaluate("() => GF.outbox.all()") == []
    phone.context.set_offline(False)
    page.wait_for_function("() => document.getElementById('gf-net').textContent === '在线'")
    page.evaluate("() => GF.flush(true)")
    assert len(cases_of(clean_db, REPORTER)) == 1


def test_a_heic_photo_the_browser_cannot_draw_is_a_tile(phone: Tab, live: LiveServer, tmp_path: Path) -> None:
    """review45 U3: Chromium does not draw HEIC: in place of a broken image, a tile says what it is and that it goes
    with the report; a JPEG beside it is drawn."""
    page = phone.page
    open_field(phone, live)
    heic = Path(__file__).parents[1] / "photo_samples" / "gps.heic"
    page.set_input_files("#gf-photos", [str(heic), str(a_photo(tmp_path))])
    tile = page.locator("#gf-thumbs .gf-thumb").nth(0).locator(".gf-tile")
    tile.wait_for()
    assert tile.inner_text() == "HEIC 照片\n无法预览\n将随上报发送"
    assert tile.get_attribute("title") == "HEIC 照片 · 无法预览 · 将随上报发送"
    box = tile.bounding_box()
    assert box is not None and (round(box["width"]), round(box["height"])) == (84, 84)
    assert page.locator("#gf-thumbs .gf-thumb").nth(0).locator("img").count() == 0
    page.wait_for_function("() => document.querySelector('#gf-thumbs img').naturalWidth === 64")
    assert page.locator("#gf-photo-n").inner_text() == "本次上报附 2 张照片"
    phone.shot("heic-tile")


def test_an_old_photo_from_elsewhere_is_warned_about_but_attached(
    phone: Tab, live: LiveServer, clean_db: Engine, tmp_path: Path
) -> None:
    """review45 U5: each photo shows its EXIF date; one taken over a day ago, or over 200 m from the report's location,
    gets a yellow warning, and is still sent."""
    page = phone.page
    xs, ys = inside_points(2, seed=21)
    far, here = (float(xs[0]), float(ys[0])), (float(xs[1]), float(ys[1]))
    page.add_init_script(  # the phone's GPS fix: at `here`
        "navigator.geolocation.getCurrentPosition = function (ok) { setTimeout(function () {"
        f" ok({{coords: {{longitude: {here[0]}, latitude: {here[1]}, accuracy: 8}}}}); }}, 10); }};"
    )
    open_field(phone, live)
    page.fill("#gf-name", REPORTER)
    page.click('#gf-classes li[data-code="06010"]')
    page.set_input_files("#gf-photos", str(dated_photo(tmp_path, "old.jpg", *far, "2025:06:01 10:00:00", "+08:00")))
    warn = page.locator("#gf-photo-warn")
    warn.wait_for(state="visible")
    page.wait_for_function("() => document.getElementById('gf-grid').textContent.indexOf('单元网格') >= 0")
    assert page.locator("#gf-loc").inner_text().startswith("照片 GPS 位置:")
    assert page.locator("#gf-thumbs .gf-thumb-date").inner_text() == "2025-06-01 10:00"
    assert warn.inner_text() == "照片拍摄于 2025-06-01:请确认是本次现场照片"  # it is the location itself
    assert warn.get_attribute("class") == "gf-caution"
    page.click("#gf-gps")
    page.wait_for_function("() => document.getElementById('gf-loc').textContent.indexOf('GPS 定位:') === 0")
    loc = page.evaluate("() => GF.loc")
    d = metres(loc, far)
    assert d > 200
    km = distance_text(d)
    assert warn.inner_text() == f"照片拍摄于 2025-06-01,距上报位置约 {km}:请确认是本次现场照片"
    assert page.evaluate("() => getComputedStyle(document.getElementById('gf-photo-warn')).backgroundColor") == (
        "rgb(255, 248, 225)"
    )
    phone.shot("old-far-photo")
    page.click("#gf-submit")  # a warning, not a refusal
    wait_for_notice(page, "已上报:案件 ")
    [(_, _, _, photos)] = cases_of(clean_db, REPORTER)
    assert photos == 1 and warn.is_hidden()

    # taken just now, a few metres from the location: its date, no warning
    page.click('#gf-classes li[data-code="06010"]')
    page.click("#gf-gps")
    page.wait_for_function("() => document.getElementById('gf-loc').textContent.indexOf('GPS 定位:') === 0")
    loc = page.evaluate("() => GF.loc")
    now = datetime.now(UTC)
    fresh = dated_photo(
        tmp_path, "fresh.jpg", loc["lon"] + 0.0003, loc["lat"], now.strftime("%Y:%m:%d %H:%M:%S"), "+00:00"
    )
    page.set_input_files("#gf-photos", str(fresh))
    page.wait_for_selector("#gf-thumbs .gf-thumb-date")
    assert warn.is_hidden()
    assert page.locator("#gf-thumbs .gf-thumb-date").inner_text() == page.evaluate(
        f"() => {{ var d = new Date({now.timestamp() * 1000}); var p = n => String(n).padStart(2, '0');"
        " return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + ' ' + p(d.getHours()) + ':'"
        " + p(d.getMinutes()); }"
    )
    # two photos: the far one is named by its place in the list
    page.set_input_files(
        "#gf-photos", str(dated_photo(tmp_path, "far.jpg", *far, now.strftime("%Y:%m:%d %H:%M:%S"), "+00:00"))
    )
    page.wait_for_function("() => document.querySelectorAll('#gf-thumbs .gf-thumb-date').length === 2")
    assert warn.inner_text() == f"第 2 张照片距上报位置约 {km}:请确认是本次现场照片"


def test_exif_date_is_read_from_jpeg_and_heic(phone: Tab, live: LiveServer, tmp_path: Path) -> None:
    """The page reads DateTimeOriginal (with its offset) from a JPEG and the HEIC sample; none from a JPEG without."""
    page = phone.page
    open_field(phone, live)
    read = (
        "b64 => { var s = atob(b64), a = new Uint8Array(s.length);"
        " for (var i = 0; i < s.length; i++) { a[i] = s.charCodeAt(i); } return GF.exifDate(a.buffer); }"
    )
    jpeg = dated_photo(tmp_path, "d.jpg", 113.6, 34.8, "2025:06:01 10:00:00", "+08:00")
    heic = Path(__file__).parents[1] / "photo_samples" / "gps.heic"
    got = [page.evaluate(read, base64.b64encode(p.read_bytes()).decode()) for p in (jpeg, heic, a_photo(tmp_path))]
    assert got == [
        {"text": "2025-06-01 10:00", "ms": datetime(2025, 6, 1, 2, 0, tzinfo=UTC).timestamp() * 1000},
        {"text": "2024-05-06 07:08", "ms": datetime(2024, 5, 5, 23, 8, 9, tzinfo=UTC).timestamp() * 1000},
        None,
    ]
