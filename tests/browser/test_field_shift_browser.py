"""The field page on a phone (review30): a file that is not a picture is refused when attached, the map's
controls speak zh-CN, and 我的上报 says why a report was not taken up."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2 as httpx
from sqlalchemy import Engine

from tests.browser.conftest import LiveServer, Tab
from tests.browser.test_field_browser import REPORTER, a_photo, cases_of, tap_the_map_centre
from tests.test_components_store import inside_points


def open_field(tab: Tab, live: LiveServer) -> None:
    tab.page.goto(live.url + "/field")
    tab.page.wait_for_selector('#gf-classes li[data-code="06010"]')


def test_a_file_that_is_not_a_picture_is_refused_when_attached_by_name(
    phone: Tab, live: LiveServer, clean_db: Engine, tmp_path: Path
) -> None:
    """review30 D6: checked by its first bytes when attached (JPEG, PNG, WebP, HEIC as the server takes them), said
    under the photo button by name, left out of the report — not refused by the server after a queued report
    goes out."""
    page = phone.page
    open_field(phone, live)
    formats = page.evaluate(
        """() => [[0xFF, 0xD8, 0xFF, 0xE0], [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A],
                  [...'RIFF'].map(c => c.charCodeAt(0)).concat([1, 2, 3, 4], [...'WEBP'].map(c => c.charCodeAt(0))),
                  [0, 0, 0, 24].concat([...'ftypheic'].map(c => c.charCodeAt(0))),
                  [0, 0, 0, 24].concat([...'ftypavif'].map(c => c.charCodeAt(0))),
                  [...'%PDF-1.7'].map(c => c.charCodeAt(0)), []]
               .map(b => GF.photoFormat(new Uint8Array(b).buffer))"""
    )
    assert formats == ["JPEG", "PNG", "WEBP", "HEIF", "", "", ""]
    page.fill("#gf-name", REPORTER)
    page.click('#gf-classes li[data-code="06010"]')
    tap_the_map_centre(page)
    junk = tmp_path / "notes.jpg"
    junk.write_bytes(bytes(range(256)) * 40)  # named .jpg, not a picture
    page.set_input_files("#gf-photos", [str(a_photo(tmp_path)), str(junk)])
    msg = page.locator("#gf-photo-msg")
    msg.wait_for(state="visible")
    assert msg.inner_text() == "未附上 notes.jpg:不是图片(应为 JPEG、PNG、WebP 或 HEIC 照片),请重拍或另选"
    assert page.locator("#gf-thumbs img").count() == 1
    assert page.locator("#gf-photo-n").inner_text() == "本次上报附 1 张照片;1 张未附上(见「拍照 / 选择照片」下)"
    box = msg.bounding_box()
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 844  # in view
    phone.shot("not-a-picture")
    page.click("#gf-submit")
    page.wait_for_function("() => /已上报:案件 .*(附 1 张照片)/.test(document.getElementById('gf-notice').textContent)")
    [(_, _, _, photos)] = cases_of(clean_db, REPORTER)
    assert photos == 1
    assert not phone.watch.bad, phone.watch.bad  # nothing was refused by the server


def test_the_zoom_buttons_are_titled_in_chinese(phone: Tab, live: LiveServer) -> None:
    """review30 D7: Leaflet's "Zoom in"/"Zoom out" titles and aria-labels, in zh-CN."""
    page = phone.page
    open_field(phone, live)
    got = page.evaluate(
        """() => ['.leaflet-control-zoom-in', '.leaflet-control-zoom-out'].map(s => {
             const a = document.querySelector(s); return a && [a.title, a.getAttribute('aria-label')]; })"""
    )
    assert got == [["放大", "放大"], ["缩小", "缩小"]]
    english = page.evaluate(
        """() => [...document.querySelectorAll('[title],[aria-label]')]
               .map(e => (e.title || '') + ' ' + (e.getAttribute('aria-label') || ''))
               .filter(t => /Zoom|Layers/.test(t))"""
    )
    assert english == []


def test_my_reports_say_why_one_was_not_taken_up(phone: Tab, live: LiveServer, api: httpx.Client) -> None:
    """review30 gap 4: 我的上报 shows 不予立案/作废 with the reason the step gave."""
    xs, ys = inside_points(2, seed=77)
    made = []
    for x, y in zip(xs, ys, strict=True):
        body = {"class_code": "06010", "lon": float(x), "lat": float(y), "datum": "cgcs2000", "reporter": REPORTER}
        r = api.post("/cases", json=body, headers={"X-Role": "grid_worker", "X-Actor": "li"})
        assert r.status_code == 201, r.text
        made.append(r.json())
    rejected, voided = made
    r = api.post(
        f"/cases/{rejected['id']}/actions/reject",
        json={"version": 1, "payload": {"reason": "重复上报,现场无此问题"}},
        headers={"X-Role": "intake"},
    )
    assert r.status_code == 200, r.text
    r = api.post(
        f"/cases/{voided['id']}/actions/void",
        json={"version": 1, "payload": {"reason": "误报"}},
        headers={"X-Role": "shift_lead"},
    )
    assert r.status_code == 200, r.text
    page = phone.page
    open_field(phone, live)
    mine = [{"id": c["id"], "case_no": c["case_no"], "class_name": "暴露垃圾", "at": c["created_at"]} for c in made]
    page.evaluate(
        "(m) => { localStorage.setItem('gisgrid.field.mine', m); return GF.refreshMine(); }", json.dumps(mine)
    )
    states = page.locator("#gf-mine .gf-state")
    page.wait_for_function("() => document.querySelectorAll('#gf-mine .gf-state').length === 2")
    texts = {page.locator("#gf-mine li").nth(i).get_attribute("data-id"): states.nth(i).inner_text() for i in (0, 1)}
    assert texts[str(rejected["id"])].startswith("不予立案:重复上报,现场无此问题 · "), texts
    assert texts[str(voided["id"])].startswith("作废:误报 · "), texts
    phone.shot("mine-reasons")
