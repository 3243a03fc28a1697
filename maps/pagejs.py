"""What the console and the field page share: escaping for HTML and inline scripts, and the small DOM and
``fetch`` helpers their inline JS starts with (``$``, ``el``, ``messageOf`` — the API's error as one line — and
``request``). Each page puts :data:`DOM_JS` where its script says ``/*gisgrid:dom*/``."""

from __future__ import annotations

import json
from typing import Any

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
  function messageOf(body, status) {
    var prefix = status ? "(" + status + ") " : "";
    if (!body || typeof body !== "object") { return prefix + "请求失败"; }
    var d = body.detail;
    if (typeof d === "string") { return prefix + d; }
    if (Array.isArray(d)) {
      return prefix + d.map(function (i) { return (i.field ? i.field + ": " : "") + (i.reason || JSON.stringify(i)); })
        .join("\n");
    }
    if (d && d.message) { return prefix + d.message; }
    return prefix + (body.error || "请求失败");
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
