"""The 交办单 / 督办单 HTML printed by Chromium (a dispatcher's 打印 of the served page): one A4 sheet with up to four
photos, signature labels on the page of their lines."""

from __future__ import annotations

import base64
import io
from dataclasses import replace
from typing import Any

import httpx2 as httpx
import pytest
from PIL import Image
from pypdf import PdfReader

from gisgrid.documents import CSP, OrderData, render_dispatch_order, render_supervision_order
from tests.browser.conftest import LiveServer, Tab
from tests.test_components_store import inside_points
from tests.test_documents import REAL, _supervised
from tests.test_documents import order as order  # the fixture, used by name


def _photo_uri() -> str:
    out = io.BytesIO()
    Image.new("RGB", (1600, 1200), (30, 140, 200)).save(out, "JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode()


def _printed(browser: Any, html: str) -> PdfReader:
    page = browser.new_page()
    try:
        page.set_content(html)
        page.emulate_media(media="print")
        return PdfReader(io.BytesIO(page.pdf(format="A4", print_background=True)))
    finally:
        page.close()


@pytest.mark.parametrize(
    ("kind", "n", "pages"),
    [("supervision", 1, 1), ("supervision", 4, 1), ("dispatch", 4, 1), ("rework", 4, 1), ("dispatch", 5, 2)],
)
def test_chromium_prints_an_order_on_one_sheet_up_to_four_photos_and_keeps_labels_with_lines(
    browser: Any, order: OrderData, kind: str, n: int, pages: int
) -> None:
    o = replace(order, photo_urls=[_photo_uri()] * n, **REAL)
    if kind == "supervision":
        html = render_supervision_order(_supervised(o))
        labels = ("承办部门签收人", "签收时间", "处置结果反馈时间", "承办部门负责人")
    else:
        rework = {"rework_count": 1, "rework_reason": "仍有残留"} if kind == "rework" else {}
        html = render_dispatch_order(replace(o, **rework))
        labels = ("承办部门签收人", "签收时间")
    pdf = _printed(browser, html)
    assert len(pdf.pages) == pages
    last = pdf.pages[-1].extract_text()
    for label in labels:
        assert label in last, label


def test_the_served_order_shows_its_map_and_photo_under_its_content_security_policy(
    desk: Tab, live: LiveServer, api: httpx.Client
) -> None:
    """review24 #7: the 交办单 page as the service sends it, with its policy as a header, still renders whole."""
    xs, ys = inside_points(1, seed=21)
    buf = io.BytesIO()
    Image.new("RGB", (320, 240), (30, 140, 200)).save(buf, "JPEG")
    r = api.post(
        "/cases/form",
        data={"class_code": "06010", "lon": str(xs[0]), "lat": str(ys[0]), "datum": "cgcs2000"},
        files={"photos": ("IMG_0001.jpg", buf.getvalue(), "image/jpeg")},
    )
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    for version, (action, role) in enumerate(
        [("verify", "supervisor"), ("file", "shift_lead"), ("dispatch", "dispatcher")], start=1
    ):
        r = api.post(f"/cases/{cid}/actions/{action}", json={"version": version}, headers={"X-Role": role})
        assert r.status_code == 200, r.text
    [doc] = r.json()["documents"]
    violations: list[str] = []
    desk.page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    answer = desk.page.goto(live.url + doc["url"])
    assert answer is not None and answer.status == 200
    # the order's own policy, and only this origin may frame it (api.http.with_frame_ancestors)
    assert answer.headers["content-security-policy"] == f"{CSP}; frame-ancestors 'self'"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["x-frame-options"] == "SAMEORIGIN"
    page = desk.page
    page.wait_for_function("() => [...document.images].every((i) => i.complete)")
    assert page.evaluate("() => [...document.images].map((i) => i.naturalWidth)") == [320]  # the photo loaded
    box = page.locator("svg.map").bounding_box()
    assert box is not None and box["width"] > 100 and box["height"] > 100  # the location map is drawn
    assert page.locator("svg.map path").count() >= 1
    assert "交办单" in page.locator("body").inner_text()
    assert violations == []
    assert not desk.watch.failed and not desk.watch.bad, (desk.watch.failed, desk.watch.bad)
    desk.shot("order")
