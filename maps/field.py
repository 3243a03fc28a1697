"""The field reporting page (网格员/监督员上报): one zh-CN page for a phone, no request off its origin.

A plain HTML page (maps/pagesrc/field.html; no folium: a phone on a city intranet should not download Bootstrap,
jQuery and Font Awesome for a form) with the vendored Leaflet and Leaflet.VectorGrid from ``/static/vendor``:

* the deployment's basemap (底图, ``maps.basemap``: none, a local XYZ or 天地图; a GCJ-02 one moved under the
  overlays as on the console), so that a tap on the map is a real way to place a report;
* the tier-3 grids and, from zoom 15, the unit grids as vector tiles (``/tiles/<layer>/{z}/{x}/{y}.mvt``);
* the location from the phone's GPS (``navigator.geolocation``, datum ``wgs84``) or a tap on the map (the map
  shows the storage coordinates, datum ``cgcs2000``; below :data:`TAP_MIN_ZOOM` a tap zooms straight there
  first); with neither, the server takes the photos' EXIF GPS;
* the event class picked from ``GET /field/classes`` with a search by name, code or a common word for it (窨井,
  下水道 … from ``data/catalogue/search_terms.csv``), the best matches first (``matchRank`` in the page: exact
  name, a name ending in the word, a common word typed in full, then the rest; a word that finds a family of classes
  only through its generic word — 污水井盖, 窨井, 井盖 — lists the family's owner-unknown class first: the
  ``fallback_for`` column of ``event_classes.csv``); cleared after each report;
* description, address and photos (``capture=environment``), sent to ``POST /cases/form``; a photo's EXIF GPS is
  read in the page (JPEG and HEIC) to show the location it gives before anything is sent.

Offline first: a report is written to an IndexedDB outbox (fields, photo bytes and a browser-made
``Idempotency-Key``) before anything is sent, and the outbox is sent in order on load, on the ``online`` event,
after each report and on a retry timer. A record leaves the outbox only on 201/200 (the key makes a repeat of
a request whose answer was lost return the first case, 200); a network error or 5xx keeps it; a 4xx other than
408/429 marks it refused: it stays on the phone (photos, class, description, address, location) with the reason
in Chinese (:data:`REFUSAL_FIELDS`, and the zh-CN of the refusal's reason codes from ``messages_zh.csv``) and the
server's own message beside it, until the
worker moves it back into the form to edit and resend it, or discards it. What the page can check itself (a
location or a photo with GPS; inside the district) is checked before a report is queued. The ids of the cases
the page created are kept in localStorage and their states fetched from ``/cases/{id}`` (the API has no
reporter filter): 我的上报 says it lists this phone's reports only.

我的任务's steps (核实, 核查, 返工, 提级) go at once when online. One taken on a case opened from the task list kept on
the phone (no network) is queued in the same outbox (``kind: "step"``: the case's version as held, its key, text,
class correction and photo bytes), sent in order with the reports and exactly once; a stale version (409) or any
other 4xx keeps it on the phone as not done, with the reason in Chinese, to reopen the case online or discard.

The page itself opens offline: a service worker (:func:`service_worker`, served at :data:`SW_URL` with the scope
:data:`SW_SCOPE`) precaches the page, its vendored JS/CSS, its own script (:data:`SCRIPT_URL`, a file of this origin
named by its hash, not inline: the page itself stays small) and ``/field/classes``. Browsers run service workers
only in a secure context (HTTPS, or ``localhost``), as they allow GPS.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from gisgrid import cityfiles, workflow
from gisgrid.cases import PHOTO_KIND_LABELS
from gisgrid.catalogue import SCHEMES
from gisgrid.events import EventCatalogue
from gisgrid.photos import EVIDENCE_FAR_M, EVIDENCE_OLD_S, HEIF_BRANDS, MAX_GPS_ERROR_M, SUPPORTED
from gisgrid.settings import DEFAULT_CENTER_NAME
from maps import pagesrc
from maps.assets import ASSETS
from maps.basemap import SHIFT_JS, Basemap, gcj02_shift_table
from maps.pagejs import (
    DOM_JS,
    LIGHT_COLOURS,
    LIGHT_LABELS,
    ZOOM_TITLES,
    attr,
    json_for_script,
    light_css,
    load_reason_texts,
    page_words,
)

#: The page's title: the city's 监督指挥中心 (GISGRID_CENTER_NAME) first, as on the start page and the console.
TITLE = "{center} · 网格员上报"
DEFAULT_CENTER = (34.75, 113.65)  # lat, lon: used only while no boundaries are loaded
#: Outbox retry period (ms); the ``online`` event sends at once.
RETRY_MS = 15_000
#: After a 5xx (or 408/429) a record waits before it is sent again: BACKOFF_MS, doubled on each such answer up to
#: BACKOFF_MAX_MS, or the answer's Retry-After (at most BACKOFF_MAX_MS); 立即发送 sends it at once regardless.
BACKOFF_MS = 15_000
BACKOFF_MAX_MS = 600_000
#: A send is given up (aborted, kept queued) after SEND_TIMEOUT_MS plus its body at SEND_MIN_BPS bits/s: a held
#: or half-open connection must not leave the report "sending" for as long as the browser would wait.
SEND_TIMEOUT_MS = 30_000
SEND_MIN_BPS = 256_000
#: After a report is saved, how long (ms) a tap on 上报 over the emptied, untouched form is taken for a second tap
#: of the same report and ignored (not shown as 请选择类别 … under the success notice).
QUIET_MS = 1500
#: A report whose request got no answer (sent, the connection lost before the reply): the notice and its queue line.
NO_ANSWER = "未收到服务器应答,稍后自动重发"
#: How many of the reporter's own cases are fetched for the list.
MINE_SHOWN = 20
#: Largest photo the API takes (api.routers.cases.MAX_PHOTO_BYTES) and how many a report may carry here.
MAX_PHOTO_BYTES = 15 * 1024 * 1024
MAX_PHOTOS = 9
#: The roles that report from the street (workflow.ROLES keys).
REPORTING_ROLES = ("grid_worker", "supervisor")
#: 我的任务: the states whose cases wait for an on-site step (上报 → 核实, 处置 → 核查) and what each is called there.
TASK_STATES: dict[str, str] = {"reported": "待核实", "handled": "待核查"}
#: The on-site steps the task form can take (workflow actions), with the payload field its text goes to, what that
#: text is called and the notice after it. The buttons shown are those of a case's ``allowed_actions`` (the API's,
#: for the role chosen) among these: the page never decides who may take a step.
TASK_ACTIONS: dict[str, tuple[str, str, str]] = {
    "verify": ("note", "核实情况", "已核实"),
    "check": ("result", "核查情况", "已核查"),
    "rework": ("reason", "返工原因", "已返工"),
    # a 网格员 who cannot have it resolved in the grid sends it up a tier (the API offers it below 一级 only)
    "escalate": ("reason", "提级原因", "已提级"),
}
#: How many tasks the list shows (the most overdue first), and the radius of 含附近网格 (m).
TASKS_SHOWN = 30
TASKS_NEAR_M = 1000
#: Content-Security-Policy of the page; ``{img}``: the basemap's other-origin hosts (images only); ``{nonce}``: the
#: request's, on the page's inline script (no 'unsafe-inline'). Its frame-ancestors
#: comes from GISGRID_FRAME_ANCESTORS, merged in by api.http.HardeningHeaders.
CSP_TEMPLATE = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:{img}; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    "base-uri 'self'; form-action 'self'"
)
#: Lowest zoom of the map itself: without it Leaflet raises the view to the first layer's minZoom.
MAP_MIN_ZOOM = 3
#: A tap places a report only from this zoom (a fingertip ~10 px is ~20 m at z16, ~1 km at z10): below it a tap
#: zooms in on the spot first.
TAP_MIN_ZOOM = 16
#: URL layer → (style of its MVT layer, min zoom shown); tier 3 first (drawn under the unit grids by z-index).
GRID_LAYERS: dict[str, tuple[dict[str, Any], int]] = {
    "tier3": ({"weight": 2, "color": "#8e24aa", "opacity": 0.9, "fill": False}, 0),
    "unit_grids": ({"weight": 0.6, "color": "#78909c", "opacity": 0.9, "fill": False}, 15),
}
#: Leaflet pane of a GCJ-02 basemap (moved under the overlays by the GCJ-02 offset of the view).
BASEMAP_PANE = "gf-basemap"
#: The service worker: its URL and the scope it controls (``/field`` and ``/field/classes``).
SW_URL = "/field/sw.js"
SW_SCOPE = "/field"
#: How long (ms) the service worker waits for the network before it answers from its cache.
SW_NETWORK_MS = 4000
#: The class search's common words (term → words of class names it finds), in the catalogue folder.
SEARCH_TERMS_FILE = "search_terms.csv"
#: A refused report's reason in Chinese: the API's field names …
REFUSAL_FIELDS: dict[str, str] = {
    "lon": "位置",
    "lat": "位置",
    "location": "位置",
    "datum": "坐标系",
    "accuracy_m": "定位精度",
    "class_code": "类别",
    "scheme": "类别体系",
    "description": "问题描述",
    "address": "地址",
    "reporter": "上报人姓名",
    "X-Role": "身份",
    "reporter_role": "身份",
    "source": "来源",
    "idempotency_key": "上报编号",
    "Idempotency-Key": "上报编号",
    "photos": "照片",
}
#: Refusals without items or reason, by HTTP status or the API's error code.
REFUSAL_STATUS: dict[str, str] = {
    "role_not_allowed": "此身份不能上报:请重新选择身份",
    "403": "此身份不能上报:请重新选择身份",
    "404": "服务器找不到上报入口(地址有误?)",
    "409": "与服务器上的记录冲突:请稍后重发",
    "413": "照片太大,服务器拒收:请少附几张或重拍",
    "415": "服务器不接受这种数据格式",
}
#: Local scripts and stylesheets (Leaflet, VectorGrid and its click fix: a tap on a canvas tile reaches the map).
SCRIPTS = (ASSETS["leaflet"], ASSETS["vectorGrid"], ASSETS["vectorGridClickFix"])
STYLES = (ASSETS["leaflet_css"],)


@functools.cache
def load_search_terms(catalogue_dir: Path) -> dict[str, tuple[str, ...]]:
    """The class search's common words: term → the words of class names it finds (``search_terms.csv``,
    columns ``term,finds``; a term on several rows finds each). ``catalogue_dir`` is ``data/`` or
    ``data/catalogue/``."""
    terms: dict[str, list[str]] = {}
    for _path, _line, (term, finds) in page_words(catalogue_dir, SEARCH_TERMS_FILE, cityfiles.SEARCH_TERMS_COLUMNS):
        terms.setdefault(term, []).append(finds)
    return {t: tuple(f) for t, f in terms.items()}


def class_list(
    events: EventCatalogue, scheme: str = "gbt47678", terms: Mapping[str, Iterable[str]] | None = None
) -> list[dict[str, Any]]:
    """The event classes of one scheme for the picker: code, name, big class and the search terms that find it
    (:func:`load_search_terms`), in code order."""
    terms = terms or {}
    return [
        {
            "scheme": c.scheme,
            "code": c.code,
            "name": c.name,
            "big_code": c.big_code,
            "big_name": c.big_name,
            "terms": sorted(t for t, finds in terms.items() if any(w in c.name for w in finds)),
            # the family's class for an owner not known (event_classes.csv fallback_for) and the common words that
            # find only its family's generic word (窨井 → 井盖): the page lists it first for those (rankedClasses)
            **(
                {
                    "fallback_for": c.fallback_for,
                    "fallback_terms": sorted(t for t, finds in terms.items() if set(finds) == {c.fallback_for}),
                }
                if c.fallback_for
                else {}
            ),
        }
        for c in sorted(events.classes(scheme).values(), key=lambda c: c.code)
    ]


def csp(basemap: Basemap | None, nonce: str) -> str:
    """The page's Content-Security-Policy: this origin, the basemap's hosts for images, and the inline script
    carrying ``nonce`` (:func:`api.http.nonced`)."""
    return CSP_TEMPLATE.format(img="".join(f" {host}" for host in basemap.hosts) if basemap else "", nonce=nonce)


def basemap_config(basemap: Basemap | None, bounds: tuple[float, float, float, float] | None) -> dict[str, Any] | None:
    """What the page needs to draw ``basemap``: its tile layers and, for a GCJ-02 one, the offset table."""
    if basemap is None:
        return None
    gcj = basemap.datum == "gcj02"
    return {
        "layers": [{"url": s.url, "overlay": s.overlay} for s in basemap.sources],
        "attribution": basemap.attribution,
        "subdomains": basemap.subdomains,
        "pane": BASEMAP_PANE if gcj else None,
        "shift": gcj02_shift_table(bounds or (DEFAULT_CENTER[1], DEFAULT_CENTER[0]) * 2) if gcj else None,
    }


def task_config() -> dict[str, Any]:
    """What 我的任务 needs: the states listed, the on-site steps (label, the field the form's text goes to, whether
    the workflow requires it, whether it takes a corrected class), the states' phrases and the photos' kinds."""
    actions = {}
    for action, (fld, text, done) in TASK_ACTIONS.items():
        rule = workflow.TRANSITIONS[action]
        assert fld == "note" or fld in (*rule.required, *rule.optional), (action, fld)
        required = fld in rule.required
        # 核实 may correct the reported class (the rule's optional class_code): the task offers the class search
        reclassify = "class_code" in rule.optional
        actions[action] = {
            "label": rule.label,
            "field": fld,
            "text": text,
            "done": done,
            "required": required,
            "reclassify": reclassify,
        }
    return {
        "states": TASK_STATES,
        "actions": actions,
        "phrases": workflow.STATE_PHRASES,
        "photoKinds": PHOTO_KIND_LABELS,
        "shown": TASKS_SHOWN,
        "nearM": TASKS_NEAR_M,
    }


def build_field_page(
    *,
    bounds: tuple[float, float, float, float] | None,
    roles: Mapping[str, str],
    scheme: str = "gbt47678",
    reporting_roles: Iterable[str] = REPORTING_ROLES,
    basemap: Basemap | None = None,
    reason_texts: Mapping[str, str] | None = None,
    base: str = "",
    center_name: str = DEFAULT_CENTER_NAME,
) -> str:
    """The page (HTML). ``roles`` is workflow.ROLES (labels); only ``reporting_roles`` are offered; ``basemap``
    is the deployment's (``app.state.basemap``), None for none. Serve it with :func:`csp` of the same basemap.
    ``reason_texts``: the zh-CN of refusals' reason codes (:func:`maps.pagejs.load_reason_texts`, the project's by
    default), in the page itself: a refusal read offline is explained too. ``base``: the path prefix the service
    is served under (``/gisgrid`` behind a proxy, else ""), before every URL the page asks (its files, tiles, API
    calls, the outbox's sends, the service worker). ``center_name``: the city's 监督指挥中心 (GISGRID_CENTER_NAME),
    in the title."""
    center = DEFAULT_CENTER if bounds is None else ((bounds[1] + bounds[3]) / 2, (bounds[0] + bounds[2]) / 2)
    config = {
        "bounds": None if bounds is None else [[bounds[1], bounds[0]], [bounds[3], bounds[2]]],
        "center": list(center),
        "minZoom": MAP_MIN_ZOOM,
        "tapMinZoom": TAP_MIN_ZOOM,
        "lightColours": LIGHT_COLOURS,
        "lightLabels": LIGHT_LABELS,
        "scheme": scheme,
        "retryMs": RETRY_MS,
        "backoffMs": BACKOFF_MS,
        "backoffMaxMs": BACKOFF_MAX_MS,
        "sendTimeoutMs": SEND_TIMEOUT_MS,
        "sendMinBps": SEND_MIN_BPS,
        "quietMs": QUIET_MS,
        "noAnswer": NO_ANSWER,
        "mineShown": MINE_SHOWN,
        "tasks": task_config(),
        "maxPhotoBytes": MAX_PHOTO_BYTES,
        "maxPhotos": MAX_PHOTOS,
        "photoOldMs": EVIDENCE_OLD_S * 1000,
        "photoFarM": EVIDENCE_FAR_M,
        # what the server takes (gisgrid.photos): a file is judged by its first bytes when attached, not sent
        "photoFormats": sorted(SUPPORTED),
        # a coarser photo fix locates nothing, as on the server; a coarser live fix is taken only on a confirm tap
        "maxGpsErrorM": MAX_GPS_ERROR_M,
        "heifBrands": sorted(b.decode("ascii") for b in HEIF_BRANDS),
        "zoomTitles": ZOOM_TITLES,
        "grids": {name: {"style": style, "minZoom": z} for name, (style, z) in GRID_LAYERS.items()},
        "basemap": basemap_config(basemap, bounds),
        "base": base,
        "sw": {"url": base + SW_URL, "scope": base + SW_SCOPE},
        "refusal": {"fields": REFUSAL_FIELDS, "status": REFUSAL_STATUS},
        "zhReasons": dict(load_reason_texts() if reason_texts is None else reason_texts),
    }
    role_options = "".join(
        f'<option value="{attr(k)}">{attr(roles.get(k, k))}</option>' for k in reporting_roles if k in roles
    )
    links = "".join(f'<link rel="stylesheet" href="{attr(base + u)}">' for u in STYLES)
    scripts = "".join(f'<script src="{attr(base + u)}"></script>' for u in SCRIPTS)
    return pagesrc.fill(
        PAGE_HTML,
        title=attr(TITLE.format(center=center_name)),
        links=links + "\n",
        style=PAGE_CSS + light_css("gf"),
        role_options=role_options,
        scripts=scripts + "\n",
        config=json_for_script(config),
        script_url=attr(base + SCRIPT_URL),
    )


#: The page (maps/pagesrc/field.html): its title, links, style, roles, config and script put in.
PAGE_HTML = pagesrc.source("field.html")


PAGE_CSS = pagesrc.source("field.css")


#: The page's own script (maps/pagesrc/field.js), the shared helpers and the basemap shift put in.
PAGE_JS = pagesrc.fill(pagesrc.source("field.js"), dom=DOM_JS, basemap_shift=SHIFT_JS)
#: The page's own script (:data:`PAGE_JS`) is a file of this origin, not inline: the page (config and form) stays
#: small and is fetched on every open (no-cache), the script is named by its hash and kept for good by the browser
#: and the service worker (precached: the page opens offline with it).
SCRIPT_VERSION = hashlib.sha256(PAGE_JS.encode()).hexdigest()[:12]
SCRIPT_URL = f"/field/page-{SCRIPT_VERSION}.js"


def precached(schemes: Iterable[str] = SCHEMES, base: str = "") -> list[str]:
    """What the service worker stores at install: the page, its vendored JS/CSS, its own script and the class
    lists (under ``base``, the path prefix the service is served under)."""
    return [
        base + u for u in (SW_SCOPE, *STYLES, *SCRIPTS, SCRIPT_URL, *(f"/field/classes?scheme={s}" for s in schemes))
    ]


def service_worker(base: str = "") -> str:
    """The field page's service worker (JS, served at :data:`SW_URL` after ``base``). The page and the class list:
    from the network, stored as they come, from the store when the network fails or is slower than
    :data:`SW_NETWORK_MS`; the vendored files: from the store. Nothing else is touched. Its cache is named by a
    hash of what it serves, so a new release (or another prefix) replaces the old cache."""
    urls = precached(base=base)
    version = hashlib.sha256("\n".join([*urls, PAGE_JS, SW_JS]).encode()).hexdigest()[:12]
    config = {
        "cache": f"gisgrid-field-{version}",
        "precache": urls,
        "assets": [base + u for u in (*STYLES, *SCRIPTS, SCRIPT_URL)],
        "networkFirst": [base + SW_SCOPE, base + "/field/classes"],
        "networkMs": SW_NETWORK_MS,
    }
    return f"var SW = {json_for_script(config)};\n{SW_JS}"


SW_JS = pagesrc.source("field-sw.js")
