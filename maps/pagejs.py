"""What the console and the field page share: escaping for HTML and inline scripts, and the small DOM and
``fetch`` helpers their inline JS starts with (``$``, ``el``, ``messageOf`` — the API's error as one line —,
``request`` and ``uuid`` — an idempotency key): :data:`DOM_JS`, maps/pagesrc/shared.js with its zh-CN tables
(:data:`ZH_ERRORS`, :data:`ZH_FIELDS`) put in. Each page puts it where its script says ``/*gisgrid:dom*/``, after
its config object ``C`` (which carries ``zhReasons``: :func:`load_reason_texts`).
Also :class:`MapChrome`, the scale bar and attribution every map (console and static) shows."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from branca.element import MacroElement
from folium.template import Template

from gisgrid import cityfiles
from gisgrid.errors import ConfigError
from gisgrid.settings import PACKAGE_DEFAULT_FILES, PROJECT_ROOT, catalogue_folder, default_catalogue_dir
from gisgrid.workflow import FIELD_LABELS
from maps import pagesrc

#: The zh-CN texts of the API's reason codes (gisgrid.errors.Reason), in the catalogue folder.
REASON_TEXTS_FILE = "messages_zh.csv"
_CODE = re.compile(r"[a-z][a-z0-9_]*")


def page_words(catalogue_dir: Path | str, filename: str, header: Sequence[str]) -> Iterator[tuple[str, int, list[str]]]:
    """The rows of one of the pages' small word lists in ``data/catalogue`` (``catalogue_dir`` is ``data/`` or
    ``data/catalogue/``): (file, line, the stripped values of ``header``), the header checked first, every value
    required."""
    path = catalogue_folder(catalogue_dir, filename) / filename
    if not path.is_file():  # the caller chose the folder (gisgrid.settings.product_data_dir)
        raise ConfigError(f"{path}: not found; {missing_word_list_note(filename)}", detail={"file": str(path)})
    table = cityfiles.read_csv(path, "catalogue file", ConfigError)  # UTF-8 (BOM or not) or GB18030
    if table.header != list(header):
        raise ConfigError(f"{path}: the header must be {','.join(header)} (got {','.join(table.header)})")
    for line, row in table.rows:
        values = [row[k] for k in header]
        if not all(values):
            raise ConfigError(f"{path}:{line}: {' and '.join(header)} must all be given")
        yield str(path), line, values


def missing_word_list_note(filename: str) -> str:
    """Where the app looks for a product-owned word list (review55 F6, gisgrid.settings.product_data_dir): said
    when it is not found there."""
    package = default_catalogue_dir() / "catalogue"
    if filename in PACKAGE_DEFAULT_FILES:
        return (
            f"{filename} is read from GISGRID_CATALOGUE_DIR's catalogue/ when it holds one, else from the package's "
            f"data/catalogue ({package}), which must hold it (reinstall gisgrid if it is gone)"
        )
    return (
        f"{filename} is always the package's (a GISGRID_CATALOGUE_DIR copy's is not read): its data/catalogue "
        f"({package}) must hold it (reinstall gisgrid if it is gone)"
    )


@functools.cache
def load_reason_texts(catalogue_dir: Path = PROJECT_ROOT / "data") -> dict[str, str]:
    """What each reason code of an API refusal means in zh-CN (``messages_zh.csv``, columns ``code,zh``): the pages
    show it beside the server's English message, which they never read (it may be reworded)."""
    texts: dict[str, str] = {}
    for path, line, (code, zh) in page_words(catalogue_dir, REASON_TEXTS_FILE, cityfiles.REASON_TEXTS_COLUMNS):
        if not _CODE.fullmatch(code):
            raise ConfigError(f"{path}:{line}: {code!r} is not a snake_case code")
        if code in texts:
            raise ConfigError(f"{path}:{line}: code {code} is listed twice")
        texts[code] = zh
    return texts


#: Field names the pages word in zh-CN besides the action payload's (:data:`gisgrid.workflow.FIELD_LABELS`): the
#: list's and the evaluation's query parameters, a report's fields, the role header. ``class_code`` is 类别 here
#: (a report's or a filter's); the console, which sends it as 更正类别's payload, takes FIELD_LABELS' over it.
PAGE_FIELD_LABELS: dict[str, str] = {
    "class_code": "类别",
    "since": "上报起始日期",
    "until": "上报截止日期",
    "grid": "网格编码",
    "state": "状态",
    "light": "灯",
    "source": "来源",
    "bbox": "范围",
    "limit": "每页件数",
    "offset": "起始位置",
    "period": "评价期",
    "as_of": "评价时点",
    "indicator": "指标",
    "level": "层级",
    "scheme": "分级方法",
    "version": "案件版本",
    "payload": "办理内容",
    "location": "位置",
    "lon": "经度",
    "lat": "纬度",
    "datum": "坐标系",
    "photos": "照片",
    "description": "描述",
    "address": "地址",
    "case_no": "案件编号",
    "escalation_level": "提级",
    "pending_extension": "延期待批",
    "into": "合并到",
    "X-Role": "身份",
}
#: The zh-CN name of each field a refusal may name, as the pages' ``ZH_FIELDS``.
ZH_FIELDS: dict[str, str] = {**FIELD_LABELS, **PAGE_FIELD_LABELS}

#: The zh-CN of the API's error codes that are no reason code (an error code that is one — role_not_allowed,
#: stale_version … — has its text in messages_zh.csv), as the pages' ``ZH_ERRORS``.
ZH_ERRORS: dict[str, str] = {
    "invalid_input": "输入有误",
    "not_found": "未找到",
    "conflict": "与现有数据冲突",
    "database_error": "数据库暂不可用,请稍后重试",
    "method_not_allowed": "不支持的请求",
    "http_error": "请求失败",
}
#: Traffic lights (红黄绿灯) as every page draws them: the console, the field page and the static maps.
LIGHT_COLOURS: dict[str, str] = {"green": "#2e7d32", "yellow": "#f9a825", "red": "#c62828"}
LIGHT_LABELS: dict[str, str] = {"green": "绿灯", "yellow": "黄灯", "red": "红灯"}


def light_css(prefix: str) -> str:
    """``.{prefix}-green {background: …}`` … for a page's light dots."""
    return " ".join(f".{prefix}-{k} {{ background: {v}; }}" for k, v in LIGHT_COLOURS.items())


def attr(value: object) -> str:
    """Text for an HTML attribute or element."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


#: What :func:`json_for_script` writes as a JSON ``\uXXXX`` escape. ``<`` could open ``<!--`` or ``<script>`` (the HTML
#: parser's "double-escaped" state: the rest of the page becomes script) or close ``</script>``; ``>`` and ``&`` as
#: Jinja's ``tojson`` does; U+2028/U+2029 end a line in pre-ES2019 JavaScript. In JSON they only occur in strings.
_SCRIPT_ESCAPES = str.maketrans({c: f"\\u{ord(c):04x}" for c in "<>&\u2028\u2029"})


def json_for_script(value: Any) -> str:
    """JSON that is safe inside an inline ``<script>``: no value can open or close a script or a comment
    (``<``, ``>``, ``&``, U+2028 and U+2029 written as ``\\u003c`` …, the same value once parsed)."""
    return json.dumps(value, ensure_ascii=False).translate(_SCRIPT_ESCAPES)


#: The helpers both page scripts start with (maps/pagesrc/shared.js), with their zh-CN tables put in from here.
DOM_JS = pagesrc.fill(
    pagesrc.source("shared.js"),
    zh_errors=f"  var ZH_ERRORS = {json_for_script(ZH_ERRORS)};\n",
    zh_fields=f"  var ZH_FIELDS = {json_for_script(ZH_FIELDS)};\n",
)


#: Leaflet's control words in zh-CN (its own are English: "Zoom in", "Zoom out", "Layers"), for the zoom buttons'
#: titles and aria-labels (``L.control.zoom`` options) and the layer control's toggle.
ZOOM_TITLES: dict[str, str] = {"zoomInTitle": "放大", "zoomOutTitle": "缩小"}
LAYERS_TITLE = "图层"
#: A popup's close button (Leaflet's own aria-label: "Close popup").
POPUP_CLOSE_TITLE = "关闭"


class MapChrome(MacroElement):
    """What every gisgrid map shows in its corners: a metric scale bar only (no miles or feet), the zoom buttons
    titled in zh-CN (:data:`ZOOM_TITLES`; Leaflet's default control is replaced in its place), the attribution
    without Leaflet's own prefix (link and flag), and a popup's close button titled 关闭. Use it instead of
    folium's ``control_scale``, added before the layer control (the zoom buttons stay above it)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            if ({{ this._parent.get_name() }}.zoomControl) {
                var ggZoomAt = {{ this._parent.get_name() }}.zoomControl.getPosition();
                {{ this._parent.get_name() }}.removeControl({{ this._parent.get_name() }}.zoomControl);
                {{ this._parent.get_name() }}.zoomControl = L.control.zoom(
                    Object.assign({position: ggZoomAt}, {{ this.titles|tojson }})).addTo({{ this._parent.get_name() }});
            }
            L.control.scale({metric: true, imperial: false, maxWidth: 160}).addTo({{ this._parent.get_name() }});
            if ({{ this._parent.get_name() }}.attributionControl) {
                {{ this._parent.get_name() }}.attributionControl.setPrefix(false);
            }
            {{ this._parent.get_name() }}.on("popupopen", function (e) {  // Leaflet's own label: "Close popup"
                var el = e.popup.getElement(), b = el && el.querySelector(".leaflet-popup-close-button");
                if (b) { b.title = {{ this.close_title|tojson }}; b.setAttribute("aria-label", b.title); }
            });
        {% endmacro %}
        """
    )

    def __init__(self) -> None:
        super().__init__()
        self._name = "GisgridMapChrome"
        self.titles = ZOOM_TITLES
        self.close_title = POPUP_CLOSE_TITLE
