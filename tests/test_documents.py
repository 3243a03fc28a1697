"""交办单 / 督办单 HTML: labels and values, the inline SVG map, no external resources, escaping; the PDF laid out
from the same page."""

from __future__ import annotations

import base64
import io
import math
import os
import re
import socket
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from dataclasses import fields, replace
from datetime import UTC, datetime
from html import unescape
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from PIL import Image, ImageFile
from pypdf import PdfReader
from shapely.geometry import MultiPolygon, Point, Polygon, box

from gisgrid import documents
from gisgrid.calendar import DEFAULT_HOURS_PER_DAY, WorkingHours
from gisgrid.documents import (
    CSP,
    METRES_PER_DEGREE,
    OrderData,
    format_amount,
    format_overdue,
    format_time,
    map_sketch,
    render_dispatch_order,
    render_pdf,
    render_supervision_order,
)
from gisgrid.errors import InvalidInput, Unavailable
from gisgrid.settings import CENTER_NAME_MAX, DEFAULT_CENTER_NAME, Settings, check_center_name
from tests.fixtures import CJK_FONTS, read_pdf

SH = ZoneInfo("Asia/Shanghai")
SHA = "3fa0" + "0123456789abcdef" * 3 + "c0ffee00d00d"
GRID = Polygon([(113.6300, 34.7500), (113.6330, 34.7502), (113.6335, 34.7525), (113.6302, 34.7527)])


@pytest.fixture
def order() -> OrderData:
    return OrderData(
        case_number="20261127000123",
        class_code="08001",
        class_name="暴露垃圾",
        matter_code="41010508001",
        description="人行道上堆放建筑垃圾约 2 立方米",
        lon=113.6318,
        lat=34.7513,
        unit_grid_code="410105001001003",
        unit_grid=GRID,
        department_code="410105-SRHW",
        department_name="金水区市容环卫中心",
        routing_reason="事件先属地：规则 R012",
        due_at=datetime(2026, 11, 27, 10, 0, tzinfo=SH),
        time_limit=4,
        time_limit_unit="working_hours",
        issued_at=datetime(2026, 11, 26, 15, 30, tzinfo=SH),
        issuer="王调度",
        address="金水路 123 号东侧",
        tier1_name="经八路街道",
        tier2_name="黄河路社区",
        tier3_name="黄河路社区第3网格",
        neighbours=[box(113.6335, 34.7500, 113.6365, 34.7526), box(113.6270, 34.7500, 113.6300, 34.7526)],
        photo_urls=[f"/cases/12/photos/{SHA}", "photos/second.jpg"],
        order_number="JB-2026-00421",
    )


def _supervised(order: OrderData) -> OrderData:
    return replace(order, overdue=2.5, supervision_reason="超过处置时限未反馈处置结果")


def _svg(html: str) -> ET.Element:
    found = re.findall(r"<svg\b.*?</svg>", html, flags=re.S)
    assert len(found) == 1
    return ET.fromstring(found[0])  # also proves the SVG is well-formed XML


def _path_points(d: str) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in re.findall(r"(-?[\d.]+),(-?[\d.]+)", d)]


COMMON = [
    "<title>",
    "数字化城市管理监督指挥中心",
    "JB-2026-00421",
    "案件编号",
    "20261127000123",
    "案件类别",
    "08001 暴露垃圾",
    "事项代码",
    "41010508001",
    "问题描述",
    "人行道上堆放建筑垃圾约 2 立方米",
    "事发位置",
    "事发地址",
    "金水路 123 号东侧",
    "113.631800, 34.751300（CGCS2000）",
    "单元网格",
    "410105001001003",
    "一级网格",
    "经八路街道",
    "二级网格",
    "黄河路社区",
    "三级网格",
    "黄河路社区第3网格",
    "位置示意图",
    "照片",
    f'<img src="/cases/12/photos/{SHA}" alt="照片 1">',
    '<img src="photos/second.jpg" alt="照片 2">',
    "承办部门",
    "410105-SRHW 金水区市容环卫中心",
    "派遣依据",
    "事件先属地：规则 R012",
    "处置时限",
    "2026年11月27日 10:00（时限 4 工作时）",
    "签发时间",
    "2026年11月26日 15:30",
    "签发人",
    "王调度",
    "@page { size: A4;",
    '<html lang="zh-CN">',
]


def test_dispatch_order_labels_and_values(order: OrderData) -> None:
    html = render_dispatch_order(order)
    for text in [*COMMON, "交办单"]:
        assert text in html, text
    assert "督办" not in html
    assert html.index("案件编号") < html.index("处置时限") < html.index("签发人")


def test_supervision_order_labels_and_values(order: OrderData) -> None:
    html = render_supervision_order(_supervised(order))
    wanted = ["督办单", "督办事由", "超过处置时限未反馈处置结果", "超时时长", "已超时 2 小时 30 分（工作时）"]
    for text in [*COMMON, *wanted]:
        assert text in html, text
    assert "交办单" not in html


def test_a_key_supervision_order_is_marked_like_urgent_and_rework(order: OrderData) -> None:
    """重点督办 (the 督办 was flagged) is a flag on the 督办单, as 紧急 and 返工 are (review D2); its PDF says it."""
    supervised = _supervised(order)
    assert _flags(render_supervision_order(supervised)) == []
    key = render_supervision_order(replace(supervised, key_supervision=True))
    assert _flags(key) == ["重点督办"]
    assert _flags(render_supervision_order(replace(supervised, key_supervision=True, urgent=True))) == [
        "紧急",
        "重点督办",
    ]
    assert "重点督办" in read_pdf(render_pdf(key)).text


@pytest.mark.parametrize(
    ("overdue", "unit", "hours_per_day", "text"),
    [
        (3.91, "working_hours", 8.0, "已超时 3 小时 55 分（工作时）"),  # not "3.91 工作时" (review14)
        (0.75, "working_hours", 8.0, "已超时 45 分（工作时）"),
        (5.0, "working_hours", 8.0, "已超时 5 小时（工作时）"),
        (10.0, "working_hours", 8.0, "已超时 1 个工作日 2 小时"),
        (9.0, "working_hours", 7.5, "已超时 1 个工作日 1 小时 30 分"),  # the city's day: 7.5 working hours
        (1.25, "working_days", 8.0, "已超时 1 个工作日 2 小时"),
        (2.0, "working_days", 7.5, "已超时 2 个工作日"),
        (26.5, "calendar_hours", 8.0, "已超时 1 天 2 小时 30 分"),
    ],
)
def test_the_overdue_time_reads_in_hours_and_minutes(
    order: OrderData, overdue: float, unit: str, hours_per_day: float, text: str
) -> None:
    supervised = replace(
        _supervised(order), overdue=overdue, time_limit_unit=unit, hours_per_day=hours_per_day, time_limit=2
    )
    html = render_supervision_order(supervised)
    assert f"<strong>{text}</strong>" in html
    assert "工作时</strong>" not in html or text.endswith("（工作时）")


def test_format_overdue() -> None:
    assert format_overdue(3.91, "working_hours") == "3 小时 55 分（工作时）"
    assert format_overdue(3 + 59.6 / 60, "working_hours") == "4 小时（工作时）"  # to the minute
    assert format_overdue(7.5, "working_hours") == "1 个工作日"  # by default the default working hours' 7.5 h day
    assert format_overdue(8.0, "working_hours", 8.0) == "1 个工作日"
    assert format_overdue(0.001, "working_hours") == "不足 1 分（工作时）"
    assert format_overdue(0.001, "calendar_hours") == "不足 1 分"
    assert format_overdue(3.0, "calendar_hours") == "3 小时"
    assert format_overdue(0.5, "working_days", 7.5) == "3 小时 45 分（工作时）"
    with pytest.raises(InvalidInput, match="unknown time unit"):
        format_overdue(1.0, "weeks")
    with pytest.raises(InvalidInput, match="must be a finite number"):
        format_overdue(-1.0, "working_hours")
    with pytest.raises(InvalidInput, match="hours_per_day"):
        format_overdue(1.0, "working_hours", 0)


def test_a_working_day_is_the_city_s_working_hours_not_a_literal() -> None:
    """An overdue in working hours is said in the working day of the working hours it is given (the service
    passes its calendar's); without them, in the default working hours' day, which is GISGRID_WORKING_HOURS'
    default (08:30–12:00, 13:30–17:30: 7.5 h) — never a day of its own."""
    eight = WorkingHours.parse("09:00-12:00,13:00-18:00").hours_per_day
    four = WorkingHours.parse("08:00-12:00").hours_per_day
    assert (eight, four) == (8.0, 4.0)
    assert format_overdue(6.5, "working_hours", eight) == "6 小时 30 分（工作时）"
    assert format_overdue(6.5, "working_hours", four) == "1 个工作日 2 小时 30 分"
    assert format_overdue(1.5, "working_days", four) == "1 个工作日 2 小时"
    setting = Settings.model_fields["working_hours"].default
    assert WorkingHours.parse(setting).hours_per_day == WorkingHours().hours_per_day == DEFAULT_HOURS_PER_DAY == 7.5
    assert next(f.default for f in fields(OrderData) if f.name == "hours_per_day") == DEFAULT_HOURS_PER_DAY
    assert format_overdue(6.5, "working_hours") == "6 小时 30 分（工作时）"
    assert format_overdue(8.0, "working_hours") == "1 个工作日 30 分"


def test_the_pdf_says_the_overdue_time_in_hours_and_minutes(order: OrderData) -> None:
    facts = read_pdf(render_pdf(render_supervision_order(replace(_supervised(order), overdue=3.91))))
    assert "已超时 3 小时 55 分（工作时）" in facts.text and "3.91" not in facts.text


def test_a_flagged_case_not_overdue_is_not_called_overdue(order: OrderData) -> None:
    html = render_supervision_order(replace(order, overdue=0.0, supervision_reason="群众多次投诉,领导交办"))
    assert "群众多次投诉" in html and "未超时" in html
    assert "已超时" not in html and "超时时长" not in html


def test_supervision_needs_overdue_and_reason(order: OrderData) -> None:
    with pytest.raises(InvalidInput, match="督办事由"):
        render_supervision_order(order)
    with pytest.raises(InvalidInput):
        render_supervision_order(replace(order, overdue=1.0, supervision_reason="  "))
    with pytest.raises(InvalidInput):
        render_supervision_order(replace(order, supervision_reason="超时"))


def test_optional_parts_absent(order: OrderData) -> None:
    html = render_dispatch_order(
        replace(order, address=None, tier3_name=None, photo_urls=(), neighbours=(), order_number=None)
    )
    assert "事发地址" not in html
    assert "三级网格" not in html and "二级网格" in html
    assert "<img" not in html
    assert 'class="neighbour"' not in html
    assert '单号 <span class="en">Order No.</span>：—' in html


def test_svg_map(order: OrderData) -> None:
    svg = _svg(render_dispatch_order(order))
    assert svg.get("viewBox") == "0 0 320 240"
    assert "xmlns" not in svg.attrib
    paths = {p.get("class"): p for p in svg.iter("path") if p.get("class")}
    grid = paths["unit-grid"]
    points = _path_points(grid.get("d", ""))
    assert len(points) == 4  # the ring without its closing repeat
    assert grid.get("d", "").startswith("M") and grid.get("d", "").endswith("Z")
    assert all(0 <= x <= 320 and 0 <= y <= 240 for x, y in points)
    assert len([p for p in svg.iter("path") if p.get("class") == "neighbour"]) == 2
    (circle,) = svg.iter("circle")
    cx, cy = float(circle.get("cx", "nan")), float(circle.get("cy", "nan"))
    assert 0 < cx < 320 and 0 < cy < 240
    # The point lies inside the grid on the map as on the ground.
    assert Polygon(points).contains(Point(cx, cy))
    texts = {"".join(t.itertext()) for t in svg.iter("text")}
    assert "北 N" in texts
    assert any(re.fullmatch(r"\d+ m", t) for t in texts)


def test_projection_and_scale_bar() -> None:
    # A 0.002° square at 30°N is cos(30°) as wide as tall on the map; north is up; the bar is to scale.
    square = box(120.0, 29.999, 120.002, 30.001)
    sketch = map_sketch(square, 120.0015, 30.0005)
    pts = _path_points(sketch.grid_path)
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    width_px, height_px = max(xs) - min(xs), max(ys) - min(ys)
    assert width_px / height_px == pytest.approx(math.cos(math.radians(30.0)), rel=5e-3)
    # Point: 3/4 across, 3/4 up (y grows downwards).
    assert sketch.point[0] == pytest.approx(min(xs) + 0.75 * width_px, abs=0.2)
    assert sketch.point[1] == pytest.approx(max(ys) - 0.75 * height_px, abs=0.2)
    metres_per_px = 0.002 * METRES_PER_DEGREE / height_px
    label_m = float(sketch.scale_label.removesuffix(" m"))
    assert sketch.scale_length_px * metres_per_px == pytest.approx(label_m, rel=5e-3)
    assert label_m in (50, 100, 200)


def test_map_edge_cases() -> None:
    # A point outside the grid still lands inside the view; a hole and a second part are drawn too.
    holed = Polygon(
        box(116.0, 40.0, 116.002, 40.002).exterior.coords, [box(116.0005, 40.0005, 116.001, 40.001).exterior.coords]
    )
    multi = MultiPolygon([holed, box(116.003, 40.0, 116.004, 40.001)])
    sketch = map_sketch(multi, 116.006, 39.999)
    assert sketch.grid_path.count("M") == 3 and sketch.grid_path.count("Z") == 3
    assert 0 <= sketch.point[0] <= 320 and 0 <= sketch.point[1] <= 240
    # A 1 m grid is not blown up: the drawn extent is at least MIN_SPAN_M, and the scale bar stays sane.
    tiny = map_sketch(box(116.0, 40.0, 116.00001, 40.00001), 116.000005, 40.000005)
    assert re.fullmatch(r"(5|10|20) m", tiny.scale_label)
    assert "km" in map_sketch(box(116.0, 40.0, 116.2, 40.1), 116.1, 40.05).scale_label
    with pytest.raises(InvalidInput):
        map_sketch(Polygon(), 116.0, 40.0)


def test_no_external_resource(order: OrderData) -> None:
    for html in (render_dispatch_order(order), render_supervision_order(_supervised(order))):
        assert "http://" not in html
        assert "https://" not in html
        assert "//" not in "".join(re.findall(r'(?:src|href)="([^"]*)"', html))
        # The one <link> is the inline icon (no /favicon.ico request); the page states its own CSP.
        assert re.findall(r"<link[^>]*>", html) == ['<link rel="icon" href="data:,">']
        assert "<script" not in html and "@import" not in html and "url(" not in html
        metas = re.findall(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', html)
        assert [unescape(m) for m in metas] == [CSP]
    assert CSP == (
        "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
    )


def test_inline_photos_are_data_uris_of_images_only(order: OrderData) -> None:
    jpeg = "data:image/jpeg;base64,/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAA=="
    png = "data:image/png;base64,iVBORw0KGgo="
    html = render_dispatch_order(replace(order, photo_urls=[jpeg, png]))
    assert re.findall(r'<img src="([^"]*)" alt="照片 (\d)">', html) == [(jpeg, "1"), (png, "2")]
    for bad in (
        "data:text/html;base64,PHNjcmlwdD4=",
        "data:image/svg+xml;base64,PHN2Zz4=",
        "data:image/jpeg,<svg onload=alert(1)>",
        'data:image/jpeg;base64,/9j/" onerror="alert(1)',
        "DATA:image/jpeg;base64,/9j/",
    ):
        with pytest.raises(InvalidInput):
            render_dispatch_order(replace(order, photo_urls=[bad]))


def _rows(html: str) -> dict[str, str]:
    """Label → cell text of the order's table (tags dropped)."""
    rows = re.findall(r"<tr[^>]*><th>([^<]*)<span[^>]*>[^<]*</span></th><td[^>]*>(.*?)</td></tr>", html, flags=re.S)
    return {label: re.sub(r"<[^>]+>", "", cell).strip() for label, cell in rows}


def _flags(html: str) -> list[str]:
    return re.findall(r'<span class="flag">([^<]*)</span>', html)


def test_dispatch_order_states_disposal_type_and_urgency(order: OrderData) -> None:
    plain = render_dispatch_order(replace(order, disposal_type="默认"))
    assert "处置方式" not in plain and _flags(plain) == []  # the ordinary limit: nothing to say
    demolish = render_dispatch_order(replace(order, disposal_type="拆除"))
    assert _rows(demolish)["处置方式"] == "拆除" and _flags(demolish) == []
    urgent = render_dispatch_order(replace(order, disposal_type="紧急", urgent=True))
    assert _rows(urgent)["处置方式"] == "紧急，紧急案件（急件，按时限立即处置）"
    assert _flags(urgent) == ["紧急"]
    supervision = render_supervision_order(_supervised(replace(order, disposal_type="拆除", urgent=True)))
    assert _rows(supervision)["处置方式"] == "拆除，紧急案件（急件，按时限立即处置）"
    assert _flags(supervision) == ["紧急"]


def test_rework_order_is_marked_with_its_count_and_reason(order: OrderData) -> None:
    first = render_dispatch_order(order)
    assert "返工" not in first
    checked = datetime(2026, 11, 27, 9, 5, tzinfo=SH)
    rework = render_dispatch_order(
        replace(order, rework_count=2, rework_reason="没修好<b>", rework_checked_by="李四（监督员）<i>",
                rework_checked_at=checked)
    )  # fmt: skip
    rows = _rows(rework)
    assert rows["返工"] == "返工交办单（第 2 次返工）：核查未通过，请重新处置"
    assert rows["返工依据"] == (
        "核查未通过：核查人 李四（监督员）&lt;i&gt;，核查时间 2026年11月27日 09:05，原因 没修好&lt;b&gt;"
    )
    assert rows["签发人"] == "王调度"  # the 指挥中心's issuer, not the supervisor
    assert _flags(rework) == ["返工"]
    assert rework.index("返工依据") < rework.index("案件编号")
    unnamed = render_dispatch_order(replace(order, rework_count=1, rework_reason="没修好"))  # no 核查 recorded
    assert _rows(unnamed)["返工依据"] == "核查未通过：原因 没修好"
    both = render_dispatch_order(replace(order, urgent=True, rework_count=1, rework_reason="没修好"))
    assert _flags(both) == ["紧急", "返工"] and _rows(both)["返工"].startswith("返工交办单（第 1 次返工）")
    with pytest.raises(InvalidInput, match="rework_count"):
        render_dispatch_order(replace(order, rework_count=-1))


@pytest.mark.parametrize(
    "url", ["https://cdn.example.com/a.jpg", "http://10.0.0.1/a.jpg", "//cdn.example.com/a.jpg", "javascript:alert(1)"]
)
def test_absolute_photo_urls_refused(order: OrderData, url: str) -> None:
    with pytest.raises(InvalidInput, match="relative URL"):
        render_dispatch_order(replace(order, photo_urls=[url]))


def test_html_escaping(order: OrderData) -> None:
    evil = replace(
        order,
        description='井盖缺失<script>alert("x")</script> & 路面塌陷',
        address="<b>路口</b>",
        issuer="张三'\"><img src=x onerror=alert(1)>",
        photo_urls=['/p/1.jpg" onerror="alert(1)'],
    )
    html = render_supervision_order(_supervised(evil))
    assert "<script>" not in html
    assert "井盖缺失&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; 路面塌陷" in html
    assert "&lt;b&gt;路口&lt;/b&gt;" in html
    assert "onerror=alert(1)>" not in html
    assert 'src="/p/1.jpg&#34; onerror=&#34;alert(1)"' in html


def test_validation(order: OrderData) -> None:
    with pytest.raises(InvalidInput, match="timezone-aware"):
        render_dispatch_order(replace(order, due_at=datetime(2026, 11, 27, 10, 0)))
    with pytest.raises(InvalidInput, match="11 digits"):
        render_dispatch_order(replace(order, matter_code="4101050800"))
    with pytest.raises(InvalidInput, match="unknown time unit"):
        render_dispatch_order(replace(order, time_limit_unit="weeks"))  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="not a lon/lat"):
        render_dispatch_order(replace(order, lat=math.nan))


def test_formatting() -> None:
    assert format_time(datetime(2026, 11, 27, 2, 0, tzinfo=UTC)) == "2026年11月27日 10:00"
    assert format_time(datetime(2026, 1, 5, 8, 30, tzinfo=SH)) == "2026年1月5日 08:30"
    assert format_amount(4, "working_hours") == "4 工作时"
    assert format_amount(1.5, "working_days") == "1.5 工作日"
    assert format_amount(24.0, "calendar_hours") == "24 小时"
    assert format_amount(2 / 3, "working_hours") == "0.67 工作时"


# --- PDF --------------------------------------------------------------------------------------------------------


def _photo(path: Path, size: tuple[int, int], fmt: str = "PNG") -> Path:
    Image.new("RGB", size, (30, 140, 200)).save(path, fmt)
    return path


def test_the_pdf_is_the_page_laid_out_on_a4_with_its_photo(order: OrderData, tmp_path: Path) -> None:
    page = render_dispatch_order(replace(order, pdf_url="/cases/12/documents/3.pdf"))
    assert '<nav class="tools"><a href="/cases/12/documents/3.pdf" download>下载 PDF</a></nav>' in page
    photo = _photo(tmp_path / "p.png", (400, 300))
    # The first photo URL is a file; the second ("photos/second.jpg") is none: left out, not fetched.
    pdf = render_pdf(page, {f"/cases/12/photos/{SHA}": (photo, "image/png")})
    assert pdf.startswith(b"%PDF-")
    facts = read_pdf(pdf)
    assert facts.pages == 1
    for value in ("20261127000123", "08001 暴露垃圾", "410105-SRHW 金水区市容环卫中心", "2026年11月27日 10:00", "北 N"):
        assert value in facts.text, value
    assert "下载 PDF" not in facts.text  # the link is for the screen (@media print), as on paper
    assert facts.images == ((400, 300),)  # under 300 dpi at its printed size: embedded as it is
    assert any(f.startswith(CJK_FONTS) for f in facts.fonts), facts.fonts  # Chinese in a CJK font, not boxes
    size = PdfReader(io.BytesIO(pdf)).pages[0].mediabox
    assert (round(float(size.width) * 25.4 / 72), round(float(size.height) * 25.4 / 72)) == (210, 297)  # A4 in mm
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False  # WeasyPrint's import turned it on; the photo checks need it off


#: The longest GISGRID_CENTER_NAME allowed (settings.CENTER_NAME_MAX), all CJK: the widest header an order prints.
LONGEST_CENTER = "新疆维吾尔自治区乌鲁木齐市新市区高新技术产业开发区数字化城市管理监督指挥中心二部"


@pytest.mark.parametrize("kind", ["dispatch", "supervision", "rework"])
def test_the_longest_centre_name_heads_the_order_on_one_line(order: OrderData, kind: str) -> None:
    """A 40-character issuing body is set smaller (``body long``) and stays one line of the header: in the PDF its
    text is whole, not broken mid-word (…监督指 / 挥中心, as at the ordinary 13 pt), and the order one page."""
    assert check_center_name(LONGEST_CENTER) == LONGEST_CENTER and len(LONGEST_CENTER) == CENTER_NAME_MAX
    assert len(LONGEST_CENTER) > documents.LONG_ISSUING_BODY >= len(DEFAULT_CENTER_NAME)
    long = replace(order, issuing_body=LONGEST_CENTER, urgent=True, photo_urls=())
    if kind == "supervision":
        page = render_supervision_order(_supervised(replace(long, key_supervision=True)))
    elif kind == "rework":
        page = render_dispatch_order(replace(long, rework_count=1, rework_reason="仍有残留"))
    else:
        page = render_dispatch_order(long)
    assert f'<div class="body long">{LONGEST_CENTER}</div>' in page
    facts = read_pdf(render_pdf(page))
    assert facts.pages == 1
    assert f" {LONGEST_CENTER} " in facts.text  # one line: a wrapped name reads with a space where it broke
    # the default name keeps the ordinary size
    assert f'<div class="body">{DEFAULT_CENTER_NAME}</div>' in render_dispatch_order(order)


def test_the_pdf_downsamples_big_photos_and_reads_inline_ones(order: OrderData, tmp_path: Path) -> None:
    big = _photo(tmp_path / "big.jpg", (4000, 3000), "JPEG")
    small = tmp_path / "small.png"
    _photo(small, (64, 48))
    inline = "data:image/png;base64," + base64.b64encode(small.read_bytes()).decode()
    page = render_supervision_order(_supervised(replace(order, photo_urls=["/p/big.jpg", inline])))
    facts = read_pdf(render_pdf(page, {"/p/big.jpg": (big, "image/jpeg")}))
    assert "督 办 单" in facts.text and "超过处置时限未反馈处置结果" in facts.text
    # The phone photo is printed in one of the three columns beside the 督办单's map, its height (20 mm less its
    # border) bounding it (print CSS): 308×231 px at 300 dpi, not 4000×3000; the small one as it is.
    assert facts.images == ((308, 231), (64, 48))


#: What a real order carries beyond the fixture: the routing explanation on two lines, a disposal type and a
#: description of two lines (review 16: a 督办单 like this spilled its last signature block onto a second page).
REAL = {
    "routing_reason": "事件先属地后属主: 无匹配的区域规则, 按类别规则 R002 (类别 gbt47678:06001) → 区城市管理委员会 "
    "(990000000000000001)",
    "disposal_type": "停工",
    "description": "店外经营，占用人行道约二十平方米，摆放桌椅和货架，影响行人通行，多次劝导无效，请尽快处置。",
}


def _order_pdf(order: OrderData, tmp_path: Path, kind: str, n: int) -> bytes:
    urls = [f"/p/{i}.jpg" for i in range(n)]
    files = {u: (_photo(tmp_path / f"{i}.jpg", (4000, 3000), "JPEG"), "image/jpeg") for i, u in enumerate(urls)}
    order = replace(order, photo_urls=urls, **REAL)
    if kind == "supervision":
        page = render_supervision_order(_supervised(order))
    elif kind == "rework":
        checked = datetime(2026, 11, 27, 9, 5, tzinfo=SH)
        page = render_dispatch_order(
            replace(order, rework_count=1, rework_reason="仍有残留", rework_checked_by="监督员李四（监督员）",
                    rework_checked_at=checked)
        )  # fmt: skip
    else:
        page = render_dispatch_order(order)
    return render_pdf(page, files)


def _signatures(kind: str) -> tuple[str, ...]:
    extra = ("处置结果反馈时间", "承办部门负责人") if kind == "supervision" else ()
    return ("承办部门签收人", "签收时间", *extra)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("kind", ["supervision", "dispatch", "rework"])
def test_an_order_with_up_to_four_photos_is_one_a4_page_signature_lines_included(
    order: OrderData, tmp_path: Path, kind: str, n: int
) -> None:
    """Up to four photos beside the map, small enough that the whole order — signature lines too — keeps to one A4
    sheet: two by two on a 交办单; three to a row beside a smaller map on the 督办单 (two more rows, two more
    signature lines) and on a rework 交办单 (two more rows)."""
    pdf = _order_pdf(order, tmp_path, kind, n)
    facts = read_pdf(pdf)
    assert facts.pages == 1
    assert len(facts.images) == n
    for label in _signatures(kind):
        assert label in facts.text, label


@pytest.mark.parametrize(
    ("kind", "n", "pages"), [("dispatch", 5, 2), ("dispatch", 8, 2), ("rework", 8, 2), ("supervision", 8, 2)]
)
def test_with_more_photos_each_signature_label_stays_on_the_page_of_its_line(
    order: OrderData, tmp_path: Path, kind: str, n: int, pages: int
) -> None:
    """A label and the line under it are one unbreakable block: on the last page, never the label at the foot of
    one page and its line alone on the next (review 16: a 交办单 with five photos did that)."""
    reader = PdfReader(io.BytesIO(_order_pdf(order, tmp_path, kind, n)))
    assert len(reader.pages) == pages
    last = reader.pages[-1].extract_text()
    for label in _signatures(kind):
        assert label in last, label


@pytest.fixture
def layouts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The pages WeasyPrint lays out from here on (the PDF cache starts empty)."""
    documents.clear_pdf_cache()
    weasyprint = documents._weasyprint()
    real = weasyprint.HTML
    seen: list[str] = []

    def counted(*args: object, string: str, **kwargs: object) -> object:
        seen.append(string)
        return real(*args, string=string, **kwargs)

    monkeypatch.setattr(weasyprint, "HTML", counted)
    return seen


def test_a_pdf_is_laid_out_once_until_its_page_or_a_photos_bytes_change(
    order: OrderData, tmp_path: Path, layouts: list[str]
) -> None:
    page = render_dispatch_order(order)
    files = {f"/cases/12/photos/{SHA}": (_photo(tmp_path / "p.png", (400, 300)), "image/png")}
    first = render_pdf(page, files)
    assert render_pdf(page, files) is first and len(layouts) == 1  # the same page and photo: from the cache
    _photo(tmp_path / "p.png", (400, 200))  # the same file, other bytes
    other_photo = render_pdf(page, files)
    assert len(layouts) == 2 and read_pdf(other_photo).images == ((400, 200),)
    other_page = render_pdf(render_dispatch_order(replace(order, description="已清理")), files)
    assert len(layouts) == 3 and "已清理" in read_pdf(other_page).text
    assert render_pdf(page, files) is other_photo and len(layouts) == 3


def test_the_pdf_cache_is_bounded_least_recently_used_first(
    order: OrderData, layouts: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(documents, "PDF_CACHE_ENTRIES", 2)
    pages = [render_dispatch_order(replace(order, photo_urls=[], order_number=f"JB-{i}")) for i in range(3)]
    pdfs = [render_pdf(p) for p in pages[:2]]
    assert render_pdf(pages[0]) is pdfs[0]  # used last: kept; pages[1] is now the least recently used
    render_pdf(pages[2])
    assert len(documents._PDF_CACHE) == 2 and len(layouts) == 3
    assert render_pdf(pages[0]) is pdfs[0] and len(layouts) == 3
    assert render_pdf(pages[1]) == pdfs[1] and len(layouts) == 4  # dropped: laid out again
    monkeypatch.setattr(documents, "PDF_CACHE_BYTES", len(pdfs[0]) - 1)
    documents.clear_pdf_cache()
    render_pdf(pages[0])
    assert documents._PDF_CACHE == {} and len(layouts) == 5  # one PDF over the byte budget is not kept


def test_requests_for_one_pdf_at_once_lay_it_out_once(order: OrderData, layouts: list[str]) -> None:
    page = render_dispatch_order(replace(order, photo_urls=[]))
    start = threading.Barrier(4)
    pdfs: list[bytes] = []

    def ask() -> None:
        start.wait()
        pdfs.append(render_pdf(page))

    workers = [threading.Thread(target=ask) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(pdfs) == 4 and len(set(pdfs)) == 1 and len(layouts) == 1  # the rest waited and found it


def test_the_pdf_fetches_nothing_else(tmp_path: Path) -> None:
    """A file URL and an HTTP one on the page: neither is read (the server never hears a connection)."""
    _photo(tmp_path / "secret.png", (40, 30))
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.setblocking(False)
        port = server.getsockname()[1]
        html = (
            f'<html><body><img src="{(tmp_path / "secret.png").as_uri()}"><img src="http://127.0.0.1:{port}/x.png">'
            '<img src="/cases/1/photos/other"><p>无图</p></body></html>'
        )
        facts = read_pdf(render_pdf(html))
        with pytest.raises(BlockingIOError):
            server.accept()
    assert facts.images == () and facts.text == "无图"


@pytest.mark.parametrize("without_weasyprint", ["package", "pango"], indirect=True)
def test_without_weasyprint_or_pango_the_pdf_is_refused_saying_what_to_install(
    order: OrderData, without_weasyprint: None
) -> None:
    page = render_dispatch_order(order)  # the HTML needs neither
    with pytest.raises(Unavailable) as refused:
        render_pdf(page)
    message = refused.value.message
    assert message.startswith("PDF orders need WeasyPrint and Pango: pip install 'weasyprint>=68.1,<71'")
    assert "apt-get install libpango-1.0-0 libpangoft2-1.0-0 fonts-wqy-microhei" in message


def test_the_app_and_the_cli_start_without_loading_weasyprint() -> None:
    code = "import sys, api.main, gisgrid.cli, gisgrid.cases; sys.exit('weasyprint' in sys.modules)"
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    assert subprocess.run([sys.executable, "-c", code], cwd=root, env=env).returncode == 0
