"""What the console and the field page share: escaping for HTML and inline scripts, and the small DOM and
``fetch`` helpers their inline JS starts with (``$``, ``el``, ``messageOf`` — the API's error as one line —,
``request`` and ``uuid`` — an idempotency key). Each page puts :data:`DOM_JS` where its script says
``/*gisgrid:dom*/``, after its config object ``C`` (which carries ``zhReasons``: :func:`load_reason_texts`).
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

DOM_JS = r"""
  function $(id) { return document.getElementById(id); }
  function el(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) {
      for (var k in attrs) {
        if (k === "text") { node.textContent = attrs[k]; }
        else if (k === "cls") { node.className = attrs[k]; }
        else if (k.slice(0, 2) === "on") { node.addEventListener(k.slice(2), attrs[k]); }
        else { node.setAttribute(k, attrs[k]); }
      }
    }
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined || c === false) { continue; }
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return node;
  }
  /* The API's messages are English (one text for every client): beside them, a zh-CN line from the codes of the
     error body — its error code, its reason code, each item's field and code — never from the English words,
     which may be reworded. The reasons' texts are data (data/catalogue/messages_zh.csv, in the page's config as
     C.zhReasons). A page may add field names to ZH_FIELDS (e.g. its form labels). */
  var ZH_REASONS = C.zhReasons || {};
  /* The error codes that are no reason code (an error code that is one — role_not_allowed, stale_version … —
     has its text in ZH_REASONS: zhError). */
  var ZH_ERRORS = {
    invalid_input: "输入有误", not_found: "未找到", conflict: "与现有数据冲突",
    database_error: "数据库暂不可用,请稍后重试", method_not_allowed: "不支持的请求", http_error: "请求失败"
  };
  function zhError(code) { return (code && (ZH_ERRORS[code] || ZH_REASONS[code])) || ""; }
  var ZH_FIELDS = /*gisgrid:zh-fields*/;
  function zhField(name) {
    var key = String(name || "").replace(/^payload\./, "").replace(/\[\d+\]$/, "");
    return ZH_FIELDS[key] || "";
  }
  function zhReason(code) { return (code && ZH_REASONS[code]) || ""; }
  /* One problem in words: its zh-CN alone when the table knows its reason (field + why, or the why of the whole
     request); "zh-CN · server text" when only a generic word was found; the server's text when nothing was. */
  /* The bound a refusal names (the item's limit: {"max_length": 2000} …), in zh-CN: "(最多 2000 个字符)". */
  var ZH_LIMITS = {max_length: "最多 # 个字符", min_length: "至少 # 个字符", le: "不大于 #", ge: "不小于 #",
                   lt: "小于 #", gt: "大于 #", max_items: "最多 # 项"};
  function zhLimit(limit) {
    if (!limit || typeof limit !== "object") { return ""; }
    var parts = Object.keys(ZH_LIMITS).filter(function (k) { return limit[k] !== undefined; })
      .map(function (k) { return ZH_LIMITS[k].replace("#", limit[k]); });
    return parts.length ? "(" + parts.join(",") + ")" : "";
  }
  function zhLine(field, code, text, fallback, limit) {
    var f = zhField(field), r = zhReason(code);
    if (r) { r += zhLimit(limit); }
    var server = (field && String(text).indexOf(field) !== 0 ? field + ": " : "") + text;
    if (r && (f || !field)) { return f ? f + ":" + r : r; }
    var zh = f ? f + ":" + (fallback || "有误") : r || fallback || "";
    return zh ? zh + " · " + server : server;
  }
  /* A refusal by role, in words: who may take the step and who asked, from the item's allowed_roles and role —
     "挂账 仅限 派遣员、值班长 办理(当前身份:受理员)" — in the page's words for roles and actions (C.roles,
     C.actions); "" on a page without them. */
  function roleRefusal(item) {
    var R = C.roles, A = C.actions || {};
    if (!R || !item || !Array.isArray(item.allowed_roles) || !item.allowed_roles.length) { return ""; }
    var who = item.allowed_roles.map(function (r) { return R[r] || r; }).join("、");
    var what = item.action ? A[item.action] || item.action : "此操作";
    return what + " 仅限 " + who + " 办理" + (item.role ? "(当前身份:" + (R[item.role] || item.role) + ")" : "");
  }
  /* The API's error as one line per problem, zh-CN first (the server's words: serverMessageOf), with no HTTP status:
     it means nothing to a 部门处置人员 (服务器原文 keeps it) — but for an answer not the service's (a proxy's 502). */
  function messageOf(body, status) {
    if (!body || typeof body !== "object") { return "请求失败" + (status ? "(HTTP " + status + ")" : ""); }
    var zhCode = zhError(body.error);
    var d = body.detail;
    // request validation (its items in {"message", "items"} as every refusal's; a bare list before review52):
    // one line per field
    var list = Array.isArray(d) ? d
      : (body.error === "invalid_input" && d && Array.isArray(d.items) && d.items.length > 1 ? d.items : null);
    if (list) {
      return list.map(function (i) {
        return zhLine(i.field, i.code || body.reason, i.reason || JSON.stringify(i), zhCode, i.limit);
      }).join("\n");
    }
    var text = typeof d === "string" ? d : d && d.message ? d.message : body.error || "请求失败";
    var items = d && typeof d === "object" ? d.items : null;
    var first = Array.isArray(items) && items.length ? items[0] : null;
    var byRole = body.error === "role_not_allowed" ? roleRefusal(first) : "";
    if (byRole) { return byRole; }
    // a field's refusal: "field:why"; a whole request's (item field null: 督办 on a case not overdue …) and one
    // whose error code is its item's code (the role, the case's state, a stale version): its reason alone
    var field = first && first.code !== body.error ? first.field : null;
    return zhLine(field, body.reason || (first && first.code) || body.error, text, zhCode,
      first && first.limit);
  }
  /* The server's own words, without the zh-CN line (for "服务器原文" beside a page's own Chinese reason). */
  function serverMessageOf(body, status) {
    var prefix = status ? "(" + status + ") " : "";
    var d = body && typeof body === "object" ? body.detail : null;
    if (Array.isArray(d)) {
      return prefix + d.map(function (i) { return (i.field ? i.field + ": " : "") + (i.reason || ""); }).join("\n");
    }
    return prefix + (typeof d === "string" ? d : d && d.message ? d.message : (body && body.error) || "请求失败");
  }
  function request(url, options) {
    return fetch(url, options || {}).then(function (r) {
      return r.json().catch(function () { return null; }).then(function (body) {
        if (!r.ok) {
          var e = new Error(messageOf(body, r.status));
          e.status = r.status;
          e.body = body;
          e.server = serverMessageOf(body, r.status);  // for a "服务器原文" or a title beside the Chinese
          throw e;
        }
        return body;
      });
    }, function () { var e = new Error("无法连接服务器"); e.network = true; throw e; });
  }
  /* An idempotency key. crypto.randomUUID exists only in a secure context (HTTPS, localhost); an intranet page
     on plain HTTP still has crypto.getRandomValues. */
  function uuid() {
    if (window.crypto && crypto.randomUUID) { return crypto.randomUUID(); }
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }
"""
#: Traffic lights (红黄绿灯) as every page draws them: the console, the field page and the static maps.
LIGHT_COLOURS: dict[str, str] = {"green": "#2e7d32", "yellow": "#f9a825", "red": "#c62828"}
LIGHT_LABELS: dict[str, str] = {"green": "绿灯", "yellow": "黄灯", "red": "红灯"}


def light_css(prefix: str) -> str:
    """``.{prefix}-green {background: …}`` … for a page's light dots."""
    return " ".join(f".{prefix}-{k} {{ background: {v}; }}" for k, v in LIGHT_COLOURS.items())


def attr(value: object) -> str:
    """Text for an HTML attribute or element."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def json_for_script(value: Any) -> str:
    """JSON that is safe inside an inline ``<script>``."""
    return json.dumps(value, ensure_ascii=False).replace("</", "<\\/")


_ZH_FIELDS_MARKER = "/*gisgrid:zh-fields*/"
if DOM_JS.count(_ZH_FIELDS_MARKER) != 1:
    raise RuntimeError("DOM_JS must say /*gisgrid:zh-fields*/ once (where ZH_FIELDS is put)")
DOM_JS = DOM_JS.replace(_ZH_FIELDS_MARKER, json_for_script(ZH_FIELDS))


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
