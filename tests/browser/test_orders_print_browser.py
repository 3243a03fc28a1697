"""The 交办单 / 督办单 HTML printed by Chromium (a dispatcher's 打印 of the served page): one A4 sheet with up to four
photos, signature labels on the page of their lines."""

from __future__ import annotations

import base64
import io
from dataclasses import replace
from typing import Any

import pytest
from PIL import Image
from pypdf import PdfReader

from gisgrid.documents import OrderData, render_dispatch_order, render_supervision_order
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
