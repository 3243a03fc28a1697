"""What the console and the field page share: escaping for HTML and inline scripts, and the small DOM and
``fetch`` helpers their inline JS starts with (``$``, ``el``, ``messageOf`` — the API's error as one line — and
``request``). Each page puts :data:`DOM_JS` where its script says ``/*gisgrid:dom*/``. Also :class:`MapChrome`,
the scale bar and attribution every map (console and static) shows."""

from __future__ import annotations

import json
from typing import Any

from branca.element import MacroElement
from folium.template import Template

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
  /* The API's messages are English (one text for every client): beside them, a zh-CN line from the error code
     and the fields it names. A page may add field names to ZH_FIELDS (e.g. its form labels). */
  var ZH_ERRORS = {
    invalid_input: "输入有误", missing_field: "缺少必填项", role_not_allowed: "当前角色无权办理此操作",
    transition_not_allowed: "案件当前状态不能办理此操作", stale_version: "案件已被他人更新,请重新打开后再办理",
    not_found: "未找到", conflict: "与现有数据冲突", database_error: "数据库暂不可用,请稍后重试",
    method_not_allowed: "不支持的请求", http_error: "请求失败"
  };
  var ZH_FIELDS = {
    class_code: "类别", since: "上报起始日期", until: "上报截止日期", grid: "网格编码", department: "处置部门",
    state: "状态", light: "灯", source: "来源", bbox: "范围", limit: "每页件数", offset: "起始位置",
    period: "评价期", indicator: "指标", level: "层级", scheme: "分级方法", version: "案件版本",
    reason: "原因/说明", result: "处置结果", after_photo: "处置后照片", new_due_at: "新的处置时限",
    disposal_type: "处置方式", amount: "延长时间", unit: "时间单位", flagged: "重点督办", note: "备注",
    payload: "办理内容", location: "位置", lon: "经度", lat: "纬度", datum: "坐标系", photos: "照片",
    description: "描述", address: "地址"
  };
  var ZH_REASONS = [  // [pattern of the server's words, zh-CN]
    [/should match pattern|string_pattern_mismatch/i, "格式不正确"],
    [/must be after since/i, "须晚于起始日期"],
    [/valid datetime|not a date/i, "不是有效的日期时间"],
    [/valid integer|valid number|must be a number/i, "须为数字"],
    [/greater than or equal|less than or equal/i, "超出允许范围"],
    [/takes no|unknown field|extra_forbidden|not permitted/i, "不接受此项"],
    [/must be text|must be true or false|must be one of/i, "取值类型不对"],
    [/needs|required|missing/i, "必填"],
    [/unknown|not one of|no disposal type|not a disposal type/i, "不在可选范围内"],
    [/outside/i, "超出网格覆盖范围"]
  ];
  var ZH_WHOLE = [
    [/past its deadline, or flagged/, "案件未超时:未超时的案件督办须勾选「重点督办」"],
    [/already at escalation level 1/, "已提级至一级网格(街道),不能再提级"],
    [/extension request is already pending/, "已有待审批的延期申请"],
    [/no pending extension request/, "没有待审批的延期申请"]
  ];
  function zhField(name) {
    var key = String(name || "").replace(/^payload\./, "").replace(/\[\d+\]$/, "");
    return ZH_FIELDS[key] || "";
  }
  function zhReason(text) {
    for (var i = 0; i < ZH_REASONS.length; i++) { if (ZH_REASONS[i][0].test(text)) { return ZH_REASONS[i][1]; } }
    return "";
  }
  /* "zh-CN · server text" for one problem (a field, its reason); the server's own words are kept. */
  function zhLine(field, text, fallback) {
    var f = zhField(field), r = zhReason(text || "") || fallback || "";
    var zh = f ? f + (r ? ":" + r : "有误") : r;
    var server = (field && String(text).indexOf(field) !== 0 ? field + ": " : "") + text;
    return zh ? zh + " · " + server : server;
  }
  function messageOf(body, status) {
    var prefix = status ? "(" + status + ") " : "";
    if (!body || typeof body !== "object") { return prefix + "请求失败"; }
    var zhCode = ZH_ERRORS[body.error] || "";
    var d = body.detail;
    if (Array.isArray(d)) {
      return prefix + d.map(function (i) {
        return zhLine(i.field, i.reason || JSON.stringify(i), zhCode);
      }).join("\n");
    }
    var text = typeof d === "string" ? d : d && d.message ? d.message : body.error || "请求失败";
    var items = d && typeof d === "object" ? d.items : null;
    var named = String(text).match(/^([a-z_.\[\]0-9]+): /);  // "until: must be after since"
    var field = Array.isArray(items) && items.length ? items[0].field
      : items && Array.isArray(items.missing) ? items.missing[0] : named && named[1];
    for (var k = 0; k < ZH_WHOLE.length; k++) {  // refusals whose cause is not the field or the state
      if (ZH_WHOLE[k][0].test(text)) { return prefix + ZH_WHOLE[k][1] + " · " + text; }
    }
    var zh = zhField(field);
    var reason = body.error === "invalid_input" ? zhReason(text) : "";
    var head = zh ? zh + ":" + (reason || zhCode || "有误") : zhCode + (reason ? ":" + reason : "");
    return prefix + (head ? head + " · " : "") + text;
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
        if (!r.ok) { var e = new Error(messageOf(body, r.status)); e.status = r.status; throw e; }
        return body;
      });
    }, function () { var e = new Error("无法连接服务器"); e.network = true; throw e; });
  }
"""
#: Traffic lights (红黄绿灯) as every page draws them: the console, the field page and the static maps.
LIGHT_COLOURS: dict[str, str] = {"green": "#2e7d32", "yellow": "#f9a825", "red": "#c62828"}
LIGHT_LABELS: dict[str, str] = {"green": "绿灯", "yellow": "黄灯", "red": "红灯"}


def light_css(prefix: str) -> str:
    """``.{prefix}-green {background: …}`` … for a page's light dots."""
    return " ".join(f".{prefix}-{k} {{ background: {v}; }}" for k, v in LIGHT_COLOURS.items())


MARKER = "  /*gisgrid:dom*/\n"


def with_dom(script: str) -> str:
    """``script`` with the shared helpers in place of its marker (inside its own function scope)."""
    assert MARKER in script, "the page script has no /*gisgrid:dom*/ marker"
    return script.replace(MARKER, DOM_JS.lstrip("\n"), 1)


def attr(value: object) -> str:
    """Text for an HTML attribute or element."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def json_for_script(value: Any) -> str:
    """JSON that is safe inside an inline ``<script>``."""
    return json.dumps(value, ensure_ascii=False).replace("</", "<\\/")


class MapChrome(MacroElement):
    """What every gisgrid map shows in its corners: a metric scale bar only (no miles or feet) and the attribution
    without Leaflet's own prefix (link and flag). Use it instead of folium's ``control_scale``."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            L.control.scale({metric: true, imperial: false, maxWidth: 160}).addTo({{ this._parent.get_name() }});
            if ({{ this._parent.get_name() }}.attributionControl) {
                {{ this._parent.get_name() }}.attributionControl.setPrefix(false);
            }
        {% endmacro %}
        """
    )

    def __init__(self) -> None:
        super().__init__()
        self._name = "GisgridMapChrome"
