"""The field reporting page (网格员/监督员上报): one zh-CN page for a phone, no request off its origin.

A plain HTML page (no folium: a phone on a city intranet should not download Bootstrap, jQuery and Font Awesome
for a form) with the vendored Leaflet and Leaflet.VectorGrid from ``/static/vendor``:

* the tier-3 grids and, from zoom 15, the unit grids as vector tiles (``/tiles/<layer>/{z}/{x}/{y}.mvt``);
* the location from the phone's GPS (``navigator.geolocation``, datum ``wgs84``) or a tap on the map (the map
  shows the storage coordinates, datum ``cgcs2000``); with neither, the server takes the photos' EXIF GPS;
* the event class picked from ``GET /field/classes`` with a search by name or code;
* description, address and photos (``capture=environment``), sent to ``POST /cases/form``.

Offline first: a report is written to an IndexedDB outbox (fields, photo bytes and a browser-made
``Idempotency-Key``) before anything is sent, and the outbox is sent in order on load, on the ``online`` event,
after each report and on a retry timer. A record leaves the outbox only on 201/200 (the key makes a repeat of
a request whose answer was lost return the first case, 200); a network error or 5xx keeps it; a 4xx other than
408/429 drops it with the API's message kept on screen. The ids of the cases the page created are kept in
localStorage and their states fetched from ``/cases/{id}`` (the API has no reporter filter).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gisgrid.events import EventCatalogue
from maps.assets import ASSETS
from maps.pagejs import attr, json_for_script, with_dom

TITLE = "gisgrid 网格员上报"
DEFAULT_CENTER = (34.75, 113.65)  # lat, lon: used only while no boundaries are loaded
#: Outbox retry period (ms); the ``online`` event sends at once.
RETRY_MS = 15_000
#: How many of the reporter's own cases are fetched for the list.
MINE_SHOWN = 20
#: Largest photo the API takes (api.routers.cases.MAX_PHOTO_BYTES) and how many a report may carry here.
MAX_PHOTO_BYTES = 15 * 1024 * 1024
MAX_PHOTOS = 9
#: The roles that report from the street (workflow.ROLES keys).
REPORTING_ROLES = ("grid_worker", "supervisor")
SCHEMES = ("gbt47678", "cjt214")
CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    "frame-ancestors 'self'; base-uri 'self'; form-action 'self'"
)
#: URL layer → (style of its MVT layer, min zoom shown).
GRID_LAYERS: dict[str, tuple[dict[str, Any], int]] = {
    "unit_grids": ({"weight": 0.6, "color": "#78909c", "opacity": 0.9, "fill": False}, 15),
    "tier3": ({"weight": 2, "color": "#8e24aa", "opacity": 0.9, "fill": False}, 0),
}
#: Local scripts and stylesheets (Leaflet, VectorGrid and its click fix: a tap on a canvas tile reaches the map).
SCRIPTS = (ASSETS["leaflet"], ASSETS["vectorGrid"], ASSETS["vectorGridClickFix"])
STYLES = (ASSETS["leaflet_css"],)


def class_list(events: EventCatalogue, scheme: str = "gbt47678") -> list[dict[str, Any]]:
    """The event classes of one scheme for the picker: code, name and big class, in code order."""
    return [
        {"scheme": c.scheme, "code": c.code, "name": c.name, "big_code": c.big_code, "big_name": c.big_name}
        for c in sorted(events.classes(scheme).values(), key=lambda c: c.code)
    ]


def build_field_page(
    *,
    bounds: tuple[float, float, float, float] | None,
    roles: Mapping[str, str],
    scheme: str = "gbt47678",
    reporting_roles: Iterable[str] = REPORTING_ROLES,
) -> str:
    """The page (HTML). ``roles`` is workflow.ROLES (labels); only ``reporting_roles`` are offered."""
    center = DEFAULT_CENTER if bounds is None else ((bounds[1] + bounds[3]) / 2, (bounds[0] + bounds[2]) / 2)
    config = {
        "bounds": None if bounds is None else [[bounds[1], bounds[0]], [bounds[3], bounds[2]]],
        "center": list(center),
        "scheme": scheme,
        "retryMs": RETRY_MS,
        "mineShown": MINE_SHOWN,
        "maxPhotoBytes": MAX_PHOTO_BYTES,
        "maxPhotos": MAX_PHOTOS,
        "grids": {name: {"style": style, "minZoom": z} for name, (style, z) in GRID_LAYERS.items()},
    }
    role_options = "".join(
        f'<option value="{attr(k)}">{attr(roles.get(k, k))}</option>' for k in reporting_roles if k in roles
    )
    links = "".join(f'<link rel="stylesheet" href="{attr(u)}">' for u in STYLES)
    scripts = "".join(f'<script src="{attr(u)}"></script>' for u in SCRIPTS)
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">
<meta name="theme-color" content="#0b6bcb"><meta name="format-detection" content="telephone=no">
<link rel="icon" href="data:,">
<title>{attr(TITLE)}</title>
{links}
<style>{PAGE_CSS}</style>
</head><body>
<header class="gf-bar">
  <h1>网格员上报</h1>
  <span id="gf-net" class="gf-net" role="status">…</span>
</header>
<main>
  <div id="gf-notice" class="gf-notice" role="status" aria-live="polite" hidden></div>
  <div id="gf-rejected" class="gf-rejected" role="alert"></div>
  <form id="gf-form" autocomplete="off" novalidate>
    <section class="gf-card">
      <h2>1 · 位置</h2>
      <div id="gf-map" class="gf-map" aria-label="地图:点击选择位置"></div>
      <div class="gf-row">
        <button type="button" id="gf-gps" class="gf-btn gf-btn-main">GPS定位</button>
        <button type="button" id="gf-clear-loc" class="gf-btn">清除位置</button>
      </div>
      <p id="gf-loc" class="gf-hint">未定位:点「GPS定位」或在地图上点选;也可只附带含GPS的照片。</p>
      <p id="gf-grid" class="gf-hint"></p>
    </section>
    <section class="gf-card">
      <h2>2 · 类别</h2>
      <p id="gf-class" class="gf-chosen">未选择类别</p>
      <input id="gf-search" type="search" class="gf-input" placeholder="搜索类别名称或代码,如 垃圾、井盖"
             enterkeyhint="search" aria-label="搜索类别">
      <ul id="gf-classes" class="gf-classes" aria-label="类别列表"></ul>
    </section>
    <section class="gf-card">
      <h2>3 · 描述与照片</h2>
      <label class="gf-label">问题描述
        <textarea id="gf-desc" name="description" rows="3" maxlength="2000" class="gf-input"
                  placeholder="现场情况"></textarea></label>
      <label class="gf-label">地址(可选)
        <input id="gf-addr" name="address" maxlength="256" class="gf-input" placeholder="如 某路与某街交叉口"></label>
      <label class="gf-btn gf-file">拍照 / 选择照片
        <input id="gf-photos" type="file" accept="image/*" capture="environment" multiple></label>
      <div id="gf-thumbs" class="gf-thumbs"></div>
    </section>
    <section class="gf-card">
      <h2>4 · 上报人</h2>
      <div class="gf-row">
        <label class="gf-label gf-grow">姓名
          <input id="gf-name" maxlength="40" class="gf-input" autocomplete="name" placeholder="您的姓名"></label>
        <label class="gf-label">身份 <select id="gf-role" class="gf-input">{role_options}</select></label>
      </div>
    </section>
    <div id="gf-error" class="gf-error" role="alert" hidden></div>
    <button type="submit" id="gf-submit" class="gf-btn gf-btn-main gf-submit">上报</button>
  </form>
  <section class="gf-card">
    <h2>待发送 <b id="gf-queue-n">0</b></h2>
    <p class="gf-hint">无网络时上报先保存在本机,恢复网络后自动发送,每条只发送一次。</p>
    <ul id="gf-queue" class="gf-list"></ul>
    <button type="button" id="gf-retry" class="gf-btn">立即发送</button>
  </section>
  <section class="gf-card">
    <h2>我的上报</h2>
    <ul id="gf-mine" class="gf-list"></ul>
    <button type="button" id="gf-refresh" class="gf-btn">刷新状态</button>
  </section>
</main>
{scripts}
<script>window.GF_CONFIG = {json_for_script(config)};
{PAGE_JS}</script>
</body></html>
"""


PAGE_CSS = """
*, *::before, *::after { box-sizing: border-box; }
html, body { margin: 0; }
body { font-family: system-ui, "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", sans-serif; font-size: 16px;
  line-height: 1.45; color: #1f2933; background: #eef2f5; -webkit-text-size-adjust: 100%; }
.gf-bar { position: sticky; top: 0; z-index: 1000; display: flex; align-items: center; justify-content: space-between;
  padding: 8px 12px; padding-top: max(8px, env(safe-area-inset-top)); background: #0b6bcb; color: #fff; }
.gf-bar h1 { font-size: 18px; margin: 0; }
.gf-net { font-size: 14px; padding: 2px 10px; border-radius: 12px; background: #2e7d32; }
.gf-net.gf-off { background: #c62828; }
main { max-width: 640px; margin: 0 auto; padding: 8px 8px 40px; }
.gf-card { background: #fff; border-radius: 10px; padding: 10px 12px; margin: 8px 0;
  box-shadow: 0 1px 2px rgba(0,0,0,.08); }
.gf-card h2 { font-size: 16px; margin: 0 0 8px; color: #0b4f94; }
.gf-map { height: 42vh; min-height: 220px; border-radius: 8px; background: #f5f5f5; }
.gf-row { display: flex; gap: 8px; flex-wrap: wrap; align-items: flex-end; margin-top: 8px; }
.gf-grow { flex: 1 1 10em; }
.gf-btn { display: inline-flex; align-items: center; justify-content: center; min-height: 48px; padding: 8px 16px;
  font-size: 16px; border: 1px solid #90a4ae; border-radius: 8px; background: #fff; color: #1f2933;
  cursor: pointer; touch-action: manipulation; }
.gf-btn-main { background: #0b6bcb; border-color: #0b6bcb; color: #fff; font-weight: 600; }
.gf-btn:disabled { opacity: .5; }
.gf-submit { width: 100%; min-height: 56px; font-size: 18px; margin: 8px 0; }
.gf-input { width: 100%; min-height: 48px; font-size: 16px; padding: 8px 10px; border: 1px solid #b0bec5;
  border-radius: 8px; background: #fff; font-family: inherit; }
textarea.gf-input { min-height: 88px; resize: vertical; }
.gf-label { display: block; margin: 6px 0; font-size: 14px; color: #455a64; }
.gf-hint { font-size: 14px; color: #546e7a; margin: 6px 0 0; word-break: break-all; }
.gf-chosen { font-size: 17px; font-weight: 600; margin: 0 0 8px; }
.gf-classes { list-style: none; margin: 8px 0 0; padding: 0; max-height: 40vh; overflow-y: auto;
  border: 1px solid #e0e0e0; border-radius: 8px; }
.gf-classes li { min-height: 48px; padding: 10px 12px; border-bottom: 1px solid #eceff1; cursor: pointer; }
.gf-classes li:active, .gf-classes li.gf-sel { background: #e3f2fd; }
.gf-classes small, .gf-list small { color: #607d8b; }
.gf-file { position: relative; overflow: hidden; margin-top: 6px; }
.gf-file input { position: absolute; inset: 0; opacity: 0; font-size: 0; cursor: pointer; }
.gf-thumbs { display: flex; flex-wrap: wrap; gap: 8px; margin-top: 8px; }
.gf-thumb { position: relative; }
.gf-thumb img { width: 84px; height: 84px; object-fit: cover; border-radius: 6px; border: 1px solid #cfd8dc; }
.gf-thumb button { position: absolute; top: -6px; right: -6px; width: 32px; height: 32px; border-radius: 50%;
  border: 0; background: #c62828; color: #fff; font-size: 18px; line-height: 1; }
.gf-error, .gf-rejected > div { background: #fdecea; color: #8a1c1c; border: 1px solid #f5c2c0; border-radius: 8px;
  padding: 8px 10px; margin: 8px 0; white-space: pre-line; }
.gf-rejected button { margin-top: 6px; min-height: 40px; }
.gf-notice { position: sticky; top: 52px; z-index: 999; background: #e8f5e9; color: #1b5e20;
  border: 1px solid #c8e6c9; border-radius: 8px; padding: 8px 10px; margin: 8px 0;
  box-shadow: 0 2px 6px rgba(0,0,0,.15); }
.gf-notice.gf-warn { background: #fff8e1; color: #6d4c00; border-color: #ffe082; }
.gf-list { list-style: none; margin: 0 0 8px; padding: 0; }
.gf-list li { padding: 8px 4px; border-bottom: 1px solid #eceff1; }
.gf-dot { display: inline-block; width: 12px; height: 12px; border-radius: 50%; margin-right: 6px; vertical-align: -1px;
  background: #9e9e9e; }
.gf-green { background: #2e7d32; } .gf-yellow { background: #f9a825; } .gf-red { background: #c62828; }
.gf-pending { background: #1e88e5; }
"""


PAGE_JS = r"""
(function () {
  "use strict";
  var C = window.GF_CONFIG;
  var LS = {name: "gisgrid.field.reporter", role: "gisgrid.field.role", mine: "gisgrid.field.mine",
            rejected: "gisgrid.field.rejected", classes: "gisgrid.field.classes." + C.scheme,
            recent: "gisgrid.field.recent." + C.scheme};
  var COLOURS = {green: "#2e7d32", yellow: "#f9a825", red: "#c62828"};
  var LIGHTS = {green: "绿灯", yellow: "黄灯", red: "红灯"};
  var OFFLINE = {offline: true};
  var GF = window.GF = {map: null, loc: null, cls: null, classes: [], photos: [], flushing: null, again: false,
                        marker: null, accuracy: null, mineLayer: null};

  /*gisgrid:dom*/
  function load(key, fallback) {
    try { var v = JSON.parse(localStorage.getItem(key)); return v === null ? fallback : v; }
    catch (e) { return fallback; }
  }
  function save(key, value) { try { localStorage.setItem(key, JSON.stringify(value)); } catch (e) { /* full */ } }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function fmtTime(iso) {  /* the phone's local time */
    var d = iso ? new Date(iso) : null;
    if (!d || isNaN(d.getTime())) { return iso ? String(iso).replace("T", " ").slice(0, 16) : ""; }
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + pad(d.getHours()) + ":" +
      pad(d.getMinutes());
  }

  /* crypto.randomUUID exists only in a secure context (HTTPS, localhost); an intranet page on plain HTTP
     still has crypto.getRandomValues. */
  function uuid() {
    if (window.crypto && crypto.randomUUID) { return crypto.randomUUID(); }
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  /* The API's error body is {"error": code, "detail": text | [{field, reason}] | {message, items}}. */

  /* One status line under the bar (sticky: seen wherever the page is scrolled); a tap hides it. */
  function notice(text, warn) {
    var box = $("gf-notice");
    box.textContent = text || "";
    box.hidden = !text;
    box.className = "gf-notice" + (warn ? " gf-warn" : "");
    clearTimeout(GF.noticeTimer);
    if (text && !warn) { GF.noticeTimer = setTimeout(function () { box.hidden = true; }, 10000); }
  }
  function formError(text) { var box = $("gf-error"); box.textContent = text || ""; box.hidden = !text; }

  /* -- outbox: IndexedDB (falls back to memory, lost on reload, when the browser refuses IndexedDB) ------- */
  var memory = {};
  var dbp = new Promise(function (ok) {
    if (!window.indexedDB) { ok(null); return; }
    var r;
    try { r = indexedDB.open("gisgrid-field", 1); } catch (e) { ok(null); return; }
    r.onupgradeneeded = function () { r.result.createObjectStore("outbox", {keyPath: "key"}); };
    r.onsuccess = function () { ok(r.result); };
    r.onerror = function () { ok(null); };
  }).then(function (db) {
    if (!db) { notice("此浏览器不能在本机保存离线上报:请在有网络时上报。", true); }
    return db;
  });
  function store(mode, fn) {
    return dbp.then(function (db) {
      if (!db) { return fn(null); }
      return new Promise(function (ok, fail) {
        var t = db.transaction("outbox", mode);
        var req = fn(t.objectStore("outbox"));
        t.oncomplete = function () { ok(req && "result" in req ? req.result : undefined); };
        t.onerror = t.onabort = function () { fail(t.error || new Error("IndexedDB")); };
      });
    });
  }
  var outbox = {
    put: function (rec) { return store("readwrite", function (s) { if (!s) { memory[rec.key] = rec; return null; }
      return s.put(rec); }); },
    remove: function (key) { return store("readwrite", function (s) { if (!s) { delete memory[key]; return null; }
      return s.delete(key); }); },
    all: function () {
      return store("readonly", function (s) { return s ? s.getAll() : null; }).then(function (recs) {
        recs = recs || Object.keys(memory).map(function (k) { return memory[k]; });
        return recs.sort(function (a, b) { return a.created < b.created ? -1 : a.created > b.created ? 1 : 0; });
      });
    }
  };
  GF.outbox = outbox;

  function withLock(fn) {
    if (navigator.locks && navigator.locks.request) { return navigator.locks.request("gisgrid-field-outbox", fn); }
    return fn();
  }

  /* Send every queued report in order, one at a time; stop at the first network failure. */
  GF.flush = function () {
    if (GF.flushing) { GF.again = true; return GF.flushing; }
    GF.flushing = withLock(function () {
      return outbox.all().then(function (recs) {
        return recs.reduce(function (p, rec) { return p.then(function () { return sendOne(rec); }); },
                           Promise.resolve());
      });
    }).catch(function (e) {
      if (e !== OFFLINE) { notice("发送队列出错:" + (e && e.message ? e.message : e), true); }
    }).then(function () {
      GF.flushing = null;
      return renderQueue();
    }).then(function () {
      if (GF.again) { GF.again = false; return GF.flush(); }
    });
    return GF.flushing;
  };

  function formData(rec) {
    var fd = new FormData();
    Object.keys(rec.fields).forEach(function (k) {
      var v = rec.fields[k];
      if (v !== null && v !== undefined && v !== "") { fd.append(k, String(v)); }
    });
    rec.photos.forEach(function (p) { fd.append("photos", new Blob([p.data], {type: p.type}), p.name); });
    return fd;
  }

  function sendOne(rec) {
    if (navigator.onLine === false) { return Promise.reject(OFFLINE); }
    var headers = {"Accept": "application/json", "Idempotency-Key": rec.key, "X-Role": rec.role,
                   "X-Actor": encodeURIComponent(rec.fields.reporter || "")};
    return fetch("/cases/form", {method: "POST", headers: headers, body: formData(rec)}).then(function (r) {
      return r.json().catch(function () { return null; }).then(function (body) {
        if ((r.status === 201 || r.status === 200) && body && body.id !== undefined) {
          remember(body, rec);
          return outbox.remove(rec.key).then(function () {
            notice("已上报:案件 " + (body.case_no || "#" + body.id) + (r.status === 200 ? "(此前已送达)" : ""));
            refreshMine();
          });
        }
        if (r.status >= 400 && r.status < 500 && r.status !== 408 && r.status !== 429) {
          rejected(rec, messageOf(body, r.status));
          notice("有一条上报未被受理,原因见页面顶部。", true);
          return outbox.remove(rec.key);
        }
        rec.attempts = (rec.attempts || 0) + 1;
        rec.lastError = "服务器暂时无法处理(" + r.status + "),稍后重试";
        return outbox.put(rec);
      });
    }, function () {
      rec.attempts = (rec.attempts || 0) + 1;
      rec.lastError = "网络不可用,恢复后自动发送";
      return outbox.put(rec).then(function () { throw OFFLINE; });
    });
  }

  function remember(c, rec) {
    var mine = load(LS.mine, []).filter(function (m) { return String(m.id) !== String(c.id); });
    mine.unshift({id: c.id, case_no: c.case_no, class_name: c.class_name || rec.className, at: rec.created});
    save(LS.mine, mine.slice(0, 200));
  }

  function rejected(rec, message) {
    var list = load(LS.rejected, []);
    list.unshift({key: rec.key, at: rec.created, what: rec.className + (rec.fields.description ? ":" +
      rec.fields.description.slice(0, 40) : ""), message: message});
    save(LS.rejected, list.slice(0, 20));
    renderRejected();
  }

  function renderRejected() {
    var box = $("gf-rejected");
    box.textContent = "";
    load(LS.rejected, []).forEach(function (r) {
      box.appendChild(el("div", {"data-key": r.key},
        "上报未被受理(" + fmtTime(r.at) + " " + r.what + "):\n" + r.message, el("br"),
        el("button", {type: "button", cls: "gf-btn", text: "知道了", onclick: function () {
          save(LS.rejected, load(LS.rejected, []).filter(function (x) { return x.key !== r.key; }));
          renderRejected();
        }})));
    });
  }

  function renderQueue() {
    return outbox.all().then(function (recs) {
      $("gf-queue-n").textContent = String(recs.length);
      var ul = $("gf-queue");
      ul.textContent = "";
      recs.forEach(function (r) {
        ul.appendChild(el("li", {"data-key": r.key}, el("i", {cls: "gf-dot gf-pending"}),
          el("b", {text: r.className}), " · " + fmtTime(r.created) + (r.photos.length ? " · " + r.photos.length +
          " 张照片" : ""), el("br"), el("small", {text: r.lastError || "等待发送"})));
      });
    });
  }

  /* -- the reporter's own cases ------------------------------------------------------------------------- */
  function refreshMine() {
    var mine = load(LS.mine, []).slice(0, C.mineShown);
    var ul = $("gf-mine");
    if (!mine.length) { ul.textContent = ""; ul.appendChild(el("li", {text: "暂无"})); return Promise.resolve(); }
    return Promise.all(mine.map(function (m) {
      return request("/cases/" + encodeURIComponent(m.id), {headers: {"Accept": "application/json"}})
        .then(function (c) { return {m: m, c: c}; }, function (e) { return {m: m, error: e}; });
    })).then(function (rows) {
      ul.textContent = "";
      if (GF.mineLayer) { GF.mineLayer.clearLayers(); }
      rows.forEach(function (r) {
        var c = r.c || {};
        var state = r.c ? (c.state_label || c.state) + (c.light ? " · " + LIGHTS[c.light] : "")
          : (r.error.status === 404 ? "已不存在" : "状态暂不可查(" + r.error.message + ")");
        ul.appendChild(el("li", {"data-id": r.m.id}, el("i", {cls: "gf-dot" + (c.light ? " gf-" + c.light : "")}),
          el("b", {text: c.case_no || r.m.case_no || "#" + r.m.id}), " " + (c.class_name || r.m.class_name || ""),
          el("br"), el("small", {cls: "gf-state", text: state + " · " + fmtTime(c.created_at || r.m.at)})));
        if (r.c && GF.mineLayer && c.lat !== null && c.lat !== undefined) {
          L.circleMarker([c.lat, c.lon], {radius: 7, weight: 2, color: "#fff", fillOpacity: 0.95,
            fillColor: COLOURS[c.light] || "#9e9e9e"}).bindTooltip((c.case_no || "") + " " + state)
            .addTo(GF.mineLayer);
        }
      });
    });
  }
  GF.refreshMine = refreshMine;

  /* -- event classes ------------------------------------------------------------------------------------ */
  function loadClasses() {
    GF.classes = load(LS.classes, []);
    renderClasses();
    return request("/field/classes?scheme=" + encodeURIComponent(C.scheme)).then(function (body) {
      GF.classes = body.data || [];
      save(LS.classes, GF.classes);
      renderClasses();
    }, function () { if (!GF.classes.length) { formError("类别列表暂不可用:请在有网络时打开本页。"); } });
  }

  function renderClasses() {
    var q = $("gf-search").value.trim().toLowerCase();
    var recent = load(LS.recent, []);
    var list = GF.classes.filter(function (c) {
      return !q || c.name.toLowerCase().indexOf(q) >= 0 || c.code.indexOf(q) === 0 ||
        (c.big_name || "").toLowerCase().indexOf(q) >= 0;
    });
    if (!q) {
      var rank = function (c) { var i = recent.indexOf(c.code); return i < 0 ? 1e6 : i; };
      list = list.slice().sort(function (a, b) { return rank(a) - rank(b); });
    }
    var ul = $("gf-classes");
    ul.textContent = "";
    list.forEach(function (c) {
      ul.appendChild(el("li", {"data-code": c.code, role: "button", tabindex: "0",
        cls: GF.cls && GF.cls.code === c.code ? "gf-sel" : "", onclick: function () { chooseClass(c); }},
        el("b", {text: c.name}), " ", el("small", {text: c.code + " · " + (c.big_name || "")})));
    });
    if (!list.length) { ul.appendChild(el("li", {text: GF.classes.length ? "没有匹配的类别" : "正在加载类别…"})); }
  }

  function chooseClass(c) {
    GF.cls = c;
    $("gf-class").textContent = "已选:" + c.name + "(" + c.code + ")";
    save(LS.recent, [c.code].concat(load(LS.recent, []).filter(function (x) { return x !== c.code; })).slice(0, 8));
    formError("");
    renderClasses();
  }

  /* -- location ------------------------------------------------------------------------------------------ */
  function setLocation(loc) {
    GF.loc = loc;
    var ll = [loc.lat, loc.lon];
    if (GF.marker) { GF.marker.setLatLng(ll); }
    else {
      GF.marker = L.circleMarker(ll, {radius: 9, weight: 3, color: "#fff", fillColor: "#0b6bcb", fillOpacity: 1})
        .addTo(GF.map);
    }
    if (GF.accuracy) { GF.map.removeLayer(GF.accuracy); GF.accuracy = null; }
    if (loc.accuracy) {
      GF.accuracy = L.circle(ll, {radius: loc.accuracy, weight: 1, color: "#0b6bcb", fillOpacity: 0.08})
        .addTo(GF.map);
    }
    $("gf-loc").textContent = (loc.source === "gps" ? "GPS 定位" : "地图选点") + ":" + loc.lon.toFixed(6) + ", " +
      loc.lat.toFixed(6) + (loc.accuracy ? "(精度约 " + Math.round(loc.accuracy) + " 米)" : "");
    $("gf-grid").textContent = "";
    formError("");
    request("/grids/locate?datum=" + loc.datum + "&lon=" + loc.lon.toFixed(7) + "&lat=" + loc.lat.toFixed(7))
      .then(function (g) {
        if (GF.loc !== loc) { return; }
        $("gf-grid").textContent = "单元网格 " + g.unit_grid + (g.tier3 ? " · " + g.tier3.name : "") +
          (g.tier2 ? " · " + g.tier2.name : "");
      }, function (e) {
        if (GF.loc === loc && !e.network) { $("gf-grid").textContent = "注意:" + e.message; }
      });
  }

  function clearLocation() {
    GF.loc = null;
    if (GF.marker) { GF.map.removeLayer(GF.marker); GF.marker = null; }
    if (GF.accuracy) { GF.map.removeLayer(GF.accuracy); GF.accuracy = null; }
    $("gf-loc").textContent = "未定位:点「GPS定位」或在地图上点选;也可只附带含GPS的照片。";
    $("gf-grid").textContent = "";
  }

  function locateByGps() {
    if (!navigator.geolocation || window.isSecureContext === false) {
      formError("浏览器只在 HTTPS 页面上允许 GPS 定位:请在地图上点选位置,或附带手机拍摄的含 GPS 照片。");
      return;
    }
    var btn = $("gf-gps");
    btn.disabled = true;
    btn.textContent = "正在定位…";
    navigator.geolocation.getCurrentPosition(function (pos) {
      btn.disabled = false;
      btn.textContent = "GPS定位";
      setLocation({lon: pos.coords.longitude, lat: pos.coords.latitude, datum: "wgs84", source: "gps",
                   accuracy: pos.coords.accuracy});
      GF.map.setView([pos.coords.latitude, pos.coords.longitude], Math.max(GF.map.getZoom(), 17));
    }, function (err) {
      btn.disabled = false;
      btn.textContent = "GPS定位";
      var why = {1: "未获定位权限", 2: "无法获得位置", 3: "定位超时"}[err.code] || err.message;
      formError("GPS 定位失败:" + why + "。可在地图上点选位置。");
    }, {enableHighAccuracy: true, timeout: 20000, maximumAge: 10000});
  }

  /* -- photos --------------------------------------------------------------------------------------------- */
  function addPhotos(files) {
    Array.prototype.forEach.call(files, function (f) {
      if (GF.photos.length >= C.maxPhotos) { formError("最多 " + C.maxPhotos + " 张照片"); return; }
      if (f.size > C.maxPhotoBytes) { formError(f.name + " 超过 " + (C.maxPhotoBytes >> 20) + " MB"); return; }
      GF.photos.push({file: f, url: URL.createObjectURL(f)});
    });
    renderThumbs();
  }
  function renderThumbs() {
    var box = $("gf-thumbs");
    box.textContent = "";
    GF.photos.forEach(function (p, i) {
      box.appendChild(el("div", {cls: "gf-thumb"}, el("img", {src: p.url, alt: "照片 " + (i + 1)}),
        el("button", {type: "button", "aria-label": "移除照片", text: "×", onclick: function () {
          URL.revokeObjectURL(p.url);
          GF.photos.splice(i, 1);
          renderThumbs();
        }})));
    });
  }
  function readPhoto(f) {
    var read = f.arrayBuffer ? f.arrayBuffer() : new Promise(function (ok, fail) {
      var r = new FileReader();
      r.onload = function () { ok(r.result); };
      r.onerror = function () { fail(r.error); };
      r.readAsArrayBuffer(f);
    });
    return read.then(function (data) {
      return {name: f.name || "photo.jpg", type: f.type || "image/jpeg", data: data};
    });
  }

  /* -- submit: into the outbox first, then send ---------------------------------------------------------- */
  function submit(ev) {
    ev.preventDefault();
    var name = $("gf-name").value.trim();
    var problems = [];
    if (!GF.cls) { problems.push("请选择类别"); }
    if (!GF.loc && !GF.photos.length) { problems.push("请定位(GPS 或地图点选),或附带含 GPS 的照片"); }
    if (!name) { problems.push("请填写上报人姓名"); }
    if (problems.length) { formError(problems.join("\n")); return; }
    save(LS.name, name);
    save(LS.role, $("gf-role").value);
    var btn = $("gf-submit");
    btn.disabled = true;
    var photos = GF.photos.slice();
    Promise.all(photos.map(function (p) { return readPhoto(p.file); })).then(function (data) {
      var rec = {
        key: uuid(), created: new Date().toISOString(), role: $("gf-role").value, className: GF.cls.name,
        attempts: 0, lastError: null, photos: data,
        fields: {class_code: GF.cls.code, scheme: C.scheme, description: $("gf-desc").value.trim() || null,
                 address: $("gf-addr").value.trim() || null, source: "patrol", reporter: name,
                 lon: GF.loc ? GF.loc.lon : null, lat: GF.loc ? GF.loc.lat : null,
                 datum: GF.loc ? GF.loc.datum : "wgs84"}
      };
      return outbox.put(rec).then(function () { return rec; });
    }).then(function (rec) {
      notice(navigator.onLine === false ? "当前离线:已保存到待发送队列,恢复网络后自动发送。" : "已保存,正在发送…",
             navigator.onLine === false);
      $("gf-desc").value = "";
      $("gf-addr").value = "";
      photos.forEach(function (p) { URL.revokeObjectURL(p.url); });
      GF.photos = [];
      renderThumbs();
      clearLocation();
      return renderQueue().then(function () { return GF.flush(); });
    }, function (e) {
      formError("无法保存到本机队列:" + (e && e.message ? e.message : e));
    }).then(function () { btn.disabled = false; });
  }

  function showNet() {
    var on = navigator.onLine !== false;
    var n = $("gf-net");
    n.textContent = on ? "在线" : "离线";
    n.className = "gf-net" + (on ? "" : " gf-off");
  }

  function initMap() {
    var map = GF.map = L.map("gf-map", {maxZoom: 22, attributionControl: false, zoomControl: true});
    if (C.bounds) { map.fitBounds(C.bounds); } else { map.setView(C.center, 12); }
    Object.keys(C.grids).forEach(function (name, i) {
      var g = C.grids[name], styles = {};
      styles[name] = g.style;
      L.vectorGrid.protobuf("/tiles/" + name + "/{z}/{x}/{y}.mvt", {
        rendererFactory: L.canvas.tile, interactive: false, maxNativeZoom: 22, maxZoom: 22, minZoom: g.minZoom,
        zIndex: 10 + i, vectorTileLayerStyles: styles
      }).addTo(map);
    });
    GF.mineLayer = L.layerGroup().addTo(map);
    map.on("click", function (e) {
      setLocation({lon: e.latlng.lng, lat: e.latlng.lat, datum: "cgcs2000", source: "map"});
    });
  }

  function init() {
    initMap();
    $("gf-name").value = load(LS.name, "");
    var role = load(LS.role, null);
    if (role) { $("gf-role").value = role; }
    $("gf-search").addEventListener("input", renderClasses);
    $("gf-gps").addEventListener("click", locateByGps);
    $("gf-clear-loc").addEventListener("click", clearLocation);
    $("gf-photos").addEventListener("change", function (e) { addPhotos(e.target.files); e.target.value = ""; });
    $("gf-form").addEventListener("submit", submit);
    $("gf-retry").addEventListener("click", function () { GF.flush(); });
    $("gf-refresh").addEventListener("click", refreshMine);
    $("gf-notice").addEventListener("click", function () { $("gf-notice").hidden = true; });
    window.addEventListener("online", function () {
      showNet();
      notice("网络已恢复,正在发送待发送的上报…");
      GF.flush();
    });
    window.addEventListener("offline", function () { showNet(); notice("当前离线:上报将保存在本机。", true); });
    document.addEventListener("visibilitychange", function () { if (!document.hidden) { GF.flush(); } });
    setInterval(function () { GF.flush(); }, C.retryMs);
    showNet();
    renderRejected();
    loadClasses();
    renderQueue().then(function () { return GF.flush(); });
    refreshMine();
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
"""
PAGE_JS = with_dom(PAGE_JS)
