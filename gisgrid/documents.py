"""Printable orders of a case: 交办单 (dispatch order) and 督办单 (supervision order), as A4 HTML.

The pages are self-contained for the offline city intranet: no external resource at all (no CDN, web font or map
tile). The location map is a small inline SVG drawn here: the unit grid (单元网格) polygon, optional neighbouring
grids and the case point, in a local equirectangular projection (x = lon·cos(lat0), y = −lat; good to well under
1 % over a grid of a few hundred metres) with a scale bar in metres and a north arrow. Photos are ``<img>`` with
the caller's relative URLs (e.g. ``/cases/12/photos/<sha256>``, for the page the service serves) or inline
``data:image/…;base64,`` URIs (for a file opened or printed away from the service); absolute URLs are refused. A
photo whose stored file cannot be read (corrupt, truncated or gone from disk) is an :class:`UnreadablePhoto`: the
order shows :func:`unreadable_note` in its place, never a broken image or no order at all. The page carries its
own Content-Security-Policy (:data:`CSP`): it may load images from its origin and ``data:``, and nothing else.

Times are shown in Asia/Shanghai as ``2026年11月27日 10:00``. Every datetime passed in must be timezone-aware.

The printed 考核表 (:func:`gisgrid.evaluation_service.render_sheet_pdf`) is another page of these templates
(:func:`render_page`, ``evaluation/sheet.html``, landscape A4) laid out by the same :func:`render_pdf`: the package
has one way of making PDFs.

PDF: :func:`render_pdf` lays the same page out as an A4 PDF with WeasyPrint (print media: the page's "下载 PDF"
link, ``pdf_url``, is hidden as it is on paper). WeasyPrint is imported on first use, so a machine without it or
without Pango still serves the HTML; the PDF is then refused with :class:`~gisgrid.errors.Unavailable` naming
what to install. Its URL fetcher reads the page's photo URLs from local files it is given and refuses any other
URL: nothing is fetched over the network. Chinese text needs a CJK font on the machine (the CSS lists SimSun, Noto
CJK, WenQuanYi …; ``make setup`` installs fonts-wqy-microhei on Debian). A browser prints the HTML page too
("打印 → 另存为 PDF"); the CSS sets ``@page { size: A4 }``. A PDF laid out is kept in a small in-process cache
(:data:`PDF_CACHE_ENTRIES`, :data:`PDF_CACHE_BYTES`) under the digest of everything it is laid out from — the
page and the bytes of each file given — so the same order asked again is not laid out again, and an order whose
page or photos changed can never get the old PDF.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeAlias
from urllib.parse import urljoin, urlsplit

import shapely
from jinja2 import Environment, PackageLoader, StrictUndefined
from PIL import ImageFile
from shapely.geometry import MultiPolygon, Polygon

from gisgrid.calendar import DEFAULT_HOURS_PER_DAY, UNITS, Unit
from gisgrid.constants import LOCAL_TZ
from gisgrid.errors import InvalidInput, Unavailable
from gisgrid.events import split_matter_code
from gisgrid.settings import DEFAULT_CENTER_NAME

UNIT_LABELS: dict[str, str] = {"working_hours": "工作时", "working_days": "工作日", "calendar_hours": "小时"}
#: The issuer an order names without the city's (GISGRID_CENTER_NAME, passed by gisgrid.case_documents).
DEFAULT_ISSUING_BODY = DEFAULT_CENTER_NAME
#: A longer issuing body is set smaller (11 pt, no letter spacing: ``header .body.long``) to stay one line of the
#: header: at 13 pt with 0.1 em spacing a CJK character is 5.05 mm, 35 of them fill the 180 mm between an A4
#: order's margins and the longest name allowed (settings.CENTER_NAME_MAX, 40) broke in two, mid-word
#: (…监督指 / 挥中心); at 11 pt 40 characters are 155 mm.
LONG_ISSUING_BODY = 30
#: The order page's Content-Security-Policy (a ``<meta>`` in the page, so a saved file keeps it): inline styles,
#: images from its own origin (the served page's photo URLs) or inline ``data:`` (the CLI's file); nothing else.
CSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
#: The disposal type every class has (its ordinary limit): not worth a line on the order.
DEFAULT_DISPOSAL_TYPE = "默认"
#: Order number prefixes: 交办单 JB, 督办单 DB (+ case number + "-" + the case's n-th order of the kind).
DOCUMENT_PREFIXES = {"dispatch": "JB", "supervision": "DB"}
#: What each kind of order is called (the console's links: 交办单 JB… · PDF; the CLI's messages).
DOCUMENT_LABELS = {"dispatch": "交办单", "supervision": "督办单"}
#: Inline photo types a browser shows (the photo store's formats).
_DATA_IMAGE = re.compile(r"data:image/(jpeg|png|webp|heic);base64,[A-Za-z0-9+/]*={0,2}")

#: Map size in CSS pixels and the inner padding kept around the drawn extent.
MAP_WIDTH = 320
MAP_HEIGHT = 240
MAP_PADDING = 20
#: Metres per degree of latitude on the mean sphere (R = 6 371 008.8 m): enough for a scale bar.
METRES_PER_DEGREE = math.pi * 6_371_008.8 / 180
#: Smallest extent drawn, so that a tiny grid or a lone point is not blown up to street-furniture scale.
MIN_SPAN_M = 60.0

Area: TypeAlias = Polygon | MultiPolygon


@dataclass(frozen=True)
class UnreadablePhoto:
    """A photo of the order whose stored file cannot be read (corrupt, truncated, missing on disk): the order is
    still printed, with :func:`unreadable_note` where the photo would be."""

    name: str  # the stored file's name (e.g. ``<sha256>.jpg``): what whoever mends the store looks for


def unreadable_note(name: str) -> str:
    """What the order shows in place of a photo it cannot read."""
    return f"照片无法读取（文件损坏或缺失）：{name} / photo unreadable"


@dataclass(frozen=True)
class OrderData:
    """What a 交办单/督办单 shows. Geometry and the point are CGCS2000 lon/lat (storage coordinates)."""

    case_number: str  # 案件编号
    class_code: str  # 案件类别: code + name
    class_name: str
    matter_code: str | None  # 事项代码: 6-digit district + 5-digit event class (GB/T 47678.5 classes only)
    description: str  # 问题描述
    lon: float  # 事发位置
    lat: float
    unit_grid_code: str  # 单元网格 (15 digits)
    unit_grid: Area
    department_code: str  # 承办部门
    department_name: str
    routing_reason: str  # 派遣依据
    due_at: datetime  # 处置时限
    time_limit: float  # e.g. 4 with unit working_hours → "4 工作时"
    time_limit_unit: Unit
    issued_at: datetime  # 签发时间
    issuer: str  # 签发人
    address: str | None = None  # 事发地址 (free text from the reporter)
    tier1_name: str | None = None  # 一级网格 (street)
    tier2_name: str | None = None  # 二级网格 (community)
    tier3_name: str | None = None  # 三级网格
    neighbours: Sequence[Area] = field(default_factory=tuple)
    photo_urls: Sequence[str | UnreadablePhoto] = field(default_factory=tuple)
    photo_captions: Sequence[str] = field(default_factory=tuple)  # one a photo (上报照片 …); none: 照片 N
    order_number: str | None = None  # 单号 of the order itself, if the city numbers them
    issuing_body: str = DEFAULT_ISSUING_BODY  # 签发机关: the city's GISGRID_CENTER_NAME
    disposal_type: str | None = None  # 处置方式 (e.g. 拆除); the default type is not printed
    urgent: bool = False  # 紧急 (急件)
    # 交办单 issued by 返工 only:
    # It is the 指挥中心's order like any 交办单: its issuer is whoever made the case's last 派遣, and the failed
    # 核查 it rests on (who, when, why) is its 返工依据.
    rework_count: int = 0  # which 返工 this order is (1 = the first)
    rework_reason: str | None = None  # 返工原因: why the 核查 did not pass
    rework_checked_by: str | None = None  # 核查人: who found the 核查 failed (name and role, e.g. 李四（监督员）)
    rework_checked_at: datetime | None = None  # when
    # 督办单 only:
    overdue: float | None = None  # time past due_at when supervised, in time_limit_unit
    # Working hours in a working day, to say an overdue in days and hours: the city's calendar's (the service passes
    # services.calendar.hours.hours_per_day); by default the default working hours' 7.5 h.
    hours_per_day: float = DEFAULT_HOURS_PER_DAY
    supervision_reason: str | None = None  # 督办事由
    key_supervision: bool = False  # 重点督办: the 督办 was flagged (not only overdue); marked like 紧急 and 返工
    # The served page only: its "下载 PDF" link (a file written for use away from the service has none).
    pdf_url: str | None = None


# --- map --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MapSketch:
    """The numbers the SVG template draws (pixels, y down)."""

    width: int
    height: int
    grid_path: str
    neighbour_paths: tuple[str, ...]
    point: tuple[float, float]
    scale_length_px: float
    scale_label: str


def _nice_length(max_m: float) -> float:
    """Largest 1, 2 or 5 × 10ⁿ metres not above ``max_m``."""
    base = 10.0 ** math.floor(math.log10(max_m))
    return next(m * base for m in (5, 2, 1) if m * base <= max_m * (1 + 1e-9))


def _polygons(geom: Area) -> list[Polygon]:
    if isinstance(geom, Polygon):
        return [geom]
    if isinstance(geom, MultiPolygon):
        return list(geom.geoms)
    # clip_by_rect may return a GeometryCollection (or lines at an edge): keep the areas.
    return [g for g in getattr(geom, "geoms", ()) if isinstance(g, Polygon)]


def map_sketch(
    unit_grid: Area,
    lon: float,
    lat: float,
    neighbours: Sequence[Area] = (),
    *,
    width: int = MAP_WIDTH,
    height: int = MAP_HEIGHT,
) -> MapSketch:
    """Project the unit grid, the neighbours and the point into a ``width``×``height`` pixel box."""
    if not isinstance(unit_grid, Polygon | MultiPolygon) or unit_grid.is_empty:
        raise InvalidInput("the unit grid must be a non-empty Polygon or MultiPolygon", detail={"field": "unit_grid"})
    minx, miny, maxx, maxy = unit_grid.bounds
    minx, maxx = min(minx, lon), max(maxx, lon)
    miny, maxy = min(miny, lat), max(maxy, lat)
    lat0 = (miny + maxy) / 2
    k = math.cos(math.radians(lat0))
    # Extent in projected units (degrees of latitude), at least MIN_SPAN_M wide and tall.
    min_span = MIN_SPAN_M / METRES_PER_DEGREE
    cx, cy = (minx + maxx) / 2 * k, -(miny + maxy) / 2
    span_x = max((maxx - minx) * k, min_span)
    span_y = max(maxy - miny, min_span)
    scale = min((width - 2 * MAP_PADDING) / span_x, (height - 2 * MAP_PADDING) / span_y)  # px per unit

    def px(x: float, y: float) -> tuple[float, float]:
        return (width / 2 + (x * k - cx) * scale, height / 2 + (-y - cy) * scale)

    def path(geom: Area) -> str:
        parts = []
        for poly in _polygons(geom):
            for ring in (poly.exterior, *poly.interiors):
                pts = [px(x, y) for x, y in ring.coords[:-1]]
                parts.append("M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in pts) + " Z")
        return " ".join(parts)

    # Neighbours are clipped to what the map shows (plus a margin): a big neighbour must not bloat the page.
    half_w, half_h = width / 2 / scale / k, height / 2 / scale
    clon, clat = cx / k, -cy
    view = (clon - 2 * half_w, clat - 2 * half_h, clon + 2 * half_w, clat + 2 * half_h)
    neighbour_paths: list[str] = []
    for geom in neighbours:
        if geom is None or geom.is_empty:
            continue
        clipped = path(shapely.clip_by_rect(geom, *view))
        if clipped:
            neighbour_paths.append(clipped)
    metres = _nice_length(0.3 * width / scale * METRES_PER_DEGREE)
    label = f"{metres / 1000:g} km" if metres >= 1000 else f"{metres:g} m"
    return MapSketch(
        width=width,
        height=height,
        grid_path=path(unit_grid),
        neighbour_paths=tuple(neighbour_paths),
        point=px(lon, lat),
        scale_length_px=metres / METRES_PER_DEGREE * scale,
        scale_label=label,
    )


# --- formatting -------------------------------------------------------------------------------------------------


def document_number(kind: str, case_no: str, n: int) -> str:
    """单号 of a case's ``n``-th order of ``kind`` (1-based): ``JB2026000123-02``."""
    return f"{DOCUMENT_PREFIXES[kind]}{case_no}-{n:02d}"


def format_time(at: datetime) -> str:
    """``2026年11月27日 10:00`` in Asia/Shanghai."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidInput(f"datetime {at.isoformat()} must be timezone-aware", detail={"value": at.isoformat()})
    local = at.astimezone(LOCAL_TZ)
    return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"


def format_amount(amount: float, unit: str) -> str:
    """``4 工作时``, ``1.5 工作日``."""
    if unit not in UNITS:
        raise InvalidInput(f"unknown time unit {unit!r}: expected one of {', '.join(UNITS)}", detail={"unit": unit})
    if not math.isfinite(amount) or amount < 0:
        raise InvalidInput(f"time amount {amount!r} must be a finite number ≥ 0", detail={"value": amount})
    return f"{round(amount, 2):g} {UNIT_LABELS[unit]}"


def format_overdue(amount: float, unit: str, hours_per_day: float = DEFAULT_HOURS_PER_DAY) -> str:
    """How long a case is overdue, as people say it: ``3 小时 55 分（工作时）`` under a working day,
    ``1 个工作日 2 小时`` from one on (``hours_per_day`` working hours make a working day: the city's calendar's,
    by default the default working hours' :data:`~gisgrid.calendar.DEFAULT_HOURS_PER_DAY`); calendar hours as
    ``5 小时 20 分`` or ``2 天 3 小时``. Rounded to the minute; zero parts are left out."""
    if unit not in UNITS:
        raise InvalidInput(f"unknown time unit {unit!r}: expected one of {', '.join(UNITS)}", detail={"unit": unit})
    if not math.isfinite(amount) or amount < 0:
        raise InvalidInput(f"time amount {amount!r} must be a finite number ≥ 0", detail={"value": amount})
    if not math.isfinite(hours_per_day) or hours_per_day <= 0:
        raise InvalidInput(f"hours_per_day {hours_per_day!r} must be a number > 0", detail={"value": hours_per_day})
    working = unit != "calendar_hours"
    day_minutes = round((hours_per_day if working else 24) * 60)
    minutes = round(amount * (hours_per_day if unit == "working_days" else 1) * 60)
    if minutes == 0:
        return "不足 1 分" + ("（工作时）" if working else "")
    days, rest = divmod(minutes, day_minutes)
    hours, mins = divmod(rest, 60)
    parts = [f"{days} 个工作日" if working else f"{days} 天"] if days else []
    parts += [f"{hours} 小时"] if hours else []
    parts += [f"{mins} 分"] if mins else []
    return " ".join(parts) + ("（工作时）" if working and not days else "")


def _check_url(url: str) -> str:
    # Only same-site relative URLs (and inline base64 images of the photo store's types): the intranet page must
    # fetch nothing from outside.
    if url.startswith("data:"):
        if not _DATA_IMAGE.fullmatch(url):
            raise InvalidInput("a photo data: URI must be data:image/(jpeg|png|webp|heic);base64,<base64>")
        return url
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or url.startswith("//") or "\\" in url:
        raise InvalidInput(f"photo URL {url!r} must be a relative URL (e.g. /cases/12/photos/<sha256>)")
    return url


def _context(order: OrderData) -> dict[str, Any]:
    if order.matter_code is not None:
        split_matter_code(order.matter_code)  # 11 digits, or InvalidInput
    if not (math.isfinite(order.lon) and math.isfinite(order.lat) and -180 <= order.lon <= 180):
        raise InvalidInput(f"case position ({order.lon}, {order.lat}) is not a lon/lat", detail={"field": "lon"})
    if not -90 <= order.lat <= 90:
        raise InvalidInput(f"case position ({order.lon}, {order.lat}) is not a lon/lat", detail={"field": "lat"})
    if order.rework_count < 0:
        raise InvalidInput("rework_count must not be negative", detail={"field": "rework_count"})
    disposal = order.disposal_type if order.disposal_type != DEFAULT_DISPOSAL_TYPE else None
    captions = list(order.photo_captions)
    return {
        "o": order,
        "csp": CSP,
        "long_body": len(order.issuing_body) > LONG_ISSUING_BODY,
        "disposal": disposal or None,
        "map": map_sketch(order.unit_grid, order.lon, order.lat, order.neighbours),
        "lonlat": f"{order.lon:.6f}, {order.lat:.6f}",
        "due": format_time(order.due_at),
        "limit": format_amount(order.time_limit, order.time_limit_unit),
        "issued": format_time(order.issued_at),
        "checked": format_time(order.rework_checked_at) if order.rework_checked_at else None,
        "photos": [
            (
                {"url": None, "note": unreadable_note(u.name)}
                if isinstance(u, UnreadablePhoto)
                else {"url": _check_url(u), "note": None}
            )
            | {"caption": f"照片 {i + 1} · {captions[i]}" if i < len(captions) else f"照片 {i + 1}"}
            for i, u in enumerate(order.photo_urls)
        ],
        "pdf_url": _check_url(order.pdf_url) if order.pdf_url else None,
        "tiers": [
            (label, name)
            for label, name in (
                ("一级网格", order.tier1_name),
                ("二级网格", order.tier2_name),
                ("三级网格", order.tier3_name),
            )
            if name
        ],
    }


@lru_cache(maxsize=1)
def _env() -> Environment:
    # autoescape everywhere: descriptions and addresses are typed by the public and field staff.
    return Environment(
        loader=PackageLoader("gisgrid", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_page(template: str, **context: Any) -> str:
    """Any page of the package's templates (``gisgrid/templates``: the orders, the printed 考核表
    ``evaluation/sheet.html``) with ``context``, autoescaped; :func:`render_pdf` lays it out as a PDF."""
    return _env().get_template(template).render(**context)


def render_dispatch_order(order: OrderData) -> str:
    """交办单: the HTML page of a case's dispatch order."""
    return _env().get_template("orders/dispatch.html").render(**_context(order))


def render_supervision_order(order: OrderData) -> str:
    """督办单: the dispatch data plus how long the case is overdue and why it is supervised."""
    if order.overdue is None or not order.supervision_reason or not order.supervision_reason.strip():
        raise InvalidInput(
            "a 督办单 needs overdue (time past the deadline) and supervision_reason (督办事由)",
            detail={"fields": ["overdue", "supervision_reason"]},
        )
    ctx = _context(order)
    ctx["overdue"] = format_overdue(order.overdue, order.time_limit_unit, order.hours_per_day)
    return _env().get_template("orders/supervision.html").render(**ctx)


# --- PDF --------------------------------------------------------------------------------------------------------

#: What the page's relative URLs are resolved against for WeasyPrint, which needs absolute ones. ``.invalid`` is
#: reserved (RFC 6761): no resolver answers for it, and the fetcher below never asks one.
PDF_BASE_URL = "https://gisgrid.invalid/"
#: Photos are downsampled to this resolution in the PDF: print quality on A4, a few hundred kB instead of the
#: phone's megabytes per photo.
PDF_IMAGE_DPI = 300
#: One layout at a time: WeasyPrint is mostly Python under the GIL (parallel threads gain nothing) and Pango
#: and fontconfig have had thread-safety bugs; the API renders in its threadpool. What made it a queue — the layout
#: decoding full-size photos — is gone: the service hands it print copies (photos.PhotoStore.print_copy) made
#: outside the lock, and a PDF already laid out is served from the cache below without taking it.
_PDF_LOCK = threading.Lock()
#: Rendered PDFs kept in this process (least recently used dropped first), at most this many and this many bytes
#: together (an order with four photos is ~0.3–1 MB); one over the byte budget alone is not kept.
PDF_CACHE_ENTRIES = 32
PDF_CACHE_BYTES = 48 * 1024 * 1024
_PDF_CACHE: OrderedDict[str, bytes] = OrderedDict()
_PDF_CACHE_LOCK = threading.Lock()
PDF_INSTALL_HINT = (
    "PDF orders need WeasyPrint and Pango: pip install 'weasyprint>=68.1,<71' (it is a dependency of gisgrid) "
    "and, on Debian/Ubuntu, apt-get install libpango-1.0-0 libpangoft2-1.0-0 fonts-wqy-microhei "
    "(make setup does it when root); the HTML order page works without them"
)


@lru_cache(maxsize=1)
def _weasyprint() -> Any:
    """WeasyPrint, imported on first use: it opens Pango with cffi at import, which fails with OSError when the
    system libraries are missing; the app must still start and serve the HTML."""
    try:
        import weasyprint
    except (ImportError, OSError) as exc:
        raise Unavailable(f"{PDF_INSTALL_HINT} ({type(exc).__name__}: {exc})") from None
    # WeasyPrint's import turns on Pillow's process-wide LOAD_TRUNCATED_IMAGES: from then on a truncated upload
    # would pass the photo checks. Orders embed only stored photos, already decoded whole: off again.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    return weasyprint


@lru_cache(maxsize=1)
def _fetcher_class() -> type:
    weasyprint = _weasyprint()
    # The base is a run-time value (WeasyPrint is imported on first use): typed Any so mypy takes it as a base.
    url_fetcher: Any = weasyprint.urls.URLFetcher

    class LocalFetcher(url_fetcher):
        """Serves the given files for their URLs and inline ``data:`` images; refuses everything else."""

        def __init__(self, files: Mapping[str, tuple[bytes, str]]) -> None:
            # Only data: may reach urllib's handlers (http, file and ftp are refused by protocol).
            super().__init__(allowed_protocols=("data",))
            self.files = files

        def fetch(self, url: str, headers: Any = None) -> Any:
            if url in self.files:
                body, content_type = self.files[url]
                return weasyprint.urls.URLFetcherResponse(url, body=body, headers={"Content-Type": content_type})
            if url.startswith("data:"):
                return super().fetch(url, headers)
            raise ValueError(f"{url} is not one of the order's photos: nothing is fetched from elsewhere")

    return LocalFetcher


def render_pdf(html: str, files: Mapping[str, tuple[Path, str]] | None = None) -> bytes:
    """The A4 PDF of an order page (:func:`render_dispatch_order`, :func:`render_supervision_order`), laid out
    from that same HTML for print. ``files`` maps the page's relative photo URLs (e.g. ``/cases/12/photos/<sha>``)
    to (local file, content type); ``data:`` images are read inline; any other resource is left out, never
    fetched. The files are embedded as they are (WeasyPrint only downsamples to :data:`PDF_IMAGE_DPI` after
    decoding them): give small copies of big photos. A page laid out before with the same files' bytes is served
    from the cache. :class:`~gisgrid.errors.Unavailable` when WeasyPrint or Pango is missing."""
    weasyprint = _weasyprint()
    # Every input of the layout, read once: the fetcher serves these bytes, and the cache key is their digest.
    given = {urljoin(PDF_BASE_URL, u): (path.read_bytes(), ctype) for u, (path, ctype) in (files or {}).items()}
    digest = hashlib.sha256(f"{PDF_IMAGE_DPI}\0{len(html)}\0".encode() + html.encode())
    for url in sorted(given):
        body, ctype = given[url]
        digest.update(f"\0{url}\0{ctype}\0{len(body)}\0".encode() + hashlib.sha256(body).digest())
    key = digest.hexdigest()
    if (pdf := _cached_pdf(key)) is not None:
        return pdf
    with _PDF_LOCK:
        # A request for the same page that waited here while it was laid out finds it now.
        if (pdf := _cached_pdf(key)) is not None:
            return pdf
        page = weasyprint.HTML(string=html, base_url=PDF_BASE_URL, url_fetcher=_fetcher_class()(given))
        pdf = page.write_pdf(dpi=PDF_IMAGE_DPI)
        _cache_pdf(key, pdf)
    return pdf


def _cached_pdf(key: str) -> bytes | None:
    with _PDF_CACHE_LOCK:
        pdf = _PDF_CACHE.get(key)
        if pdf is not None:
            _PDF_CACHE.move_to_end(key)
        return pdf


def _cache_pdf(key: str, pdf: bytes) -> None:
    if len(pdf) > PDF_CACHE_BYTES:
        return
    with _PDF_CACHE_LOCK:
        _PDF_CACHE[key] = pdf
        _PDF_CACHE.move_to_end(key)
        total = sum(len(p) for p in _PDF_CACHE.values())
        while len(_PDF_CACHE) > PDF_CACHE_ENTRIES or total > PDF_CACHE_BYTES:
            total -= len(_PDF_CACHE.popitem(last=False)[1])


def clear_pdf_cache() -> None:
    """Forget every PDF laid out (tests; a font installed while the service runs)."""
    with _PDF_CACHE_LOCK:
        _PDF_CACHE.clear()
