(function () {
  "use strict";
  var C = window.GF_CONFIG;
  var LS = {name: "gisgrid.field.reporter", role: "gisgrid.field.role", mine: "gisgrid.field.mine",
            rejected: "gisgrid.field.rejected", classes: "gisgrid.field.classes." + C.scheme,
            recent: "gisgrid.field.recent." + C.scheme, tasks: "gisgrid.field.tasks"};
  var COLOURS = C.lightColours;
  var LIGHTS = C.lightLabels;
  var OFFLINE = {offline: true};
  var GF = window.GF = {map: null, loc: null, cls: null, classes: [], photos: [], flushing: null, again: false,
                        marker: null, accuracy: null, mineLayer: null, sending: false, quietUntil: 0,
                        noAnswer: false};

  /*gisgrid:dom*/
  /*gisgrid:basemap-shift*/
  function load(key, fallback) {
    try { var v = JSON.parse(localStorage.getItem(key)); return v === null ? fallback : v; }
    catch (e) { return fallback; }
  }
  function save(key, value) { try { localStorage.setItem(key, JSON.stringify(value)); } catch (e) { /* full */ } }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  /* The headers of a call to the API, built here only (the outbox's reports and 我的任务's steps): JSON answers,
     who acts (X-Role; X-Actor, the name URL-encoded: a header is Latin-1) and the call's own (Idempotency-Key …). */
  function apiHeaders(role, actor, more) {
    var h = {"Accept": "application/json", "X-Role": role, "X-Actor": encodeURIComponent(actor || "")};
    Object.keys(more || {}).forEach(function (k) { h[k] = more[k]; });
    return h;
  }
  GF.apiHeaders = apiHeaders;
  function fmtTime(iso) {  /* the phone's local time */
    var d = iso ? new Date(iso) : null;
    if (!d || isNaN(d.getTime())) { return iso ? String(iso).replace("T", " ").slice(0, 16) : ""; }
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + pad(d.getHours()) + ":" +
      pad(d.getMinutes());
  }


  /* The API's error body is {"error": code, "detail": text | [{field, reason}] | {message, items}}. */

  /* One status line at the top of the page, in the flow: it never lies over a control (a report's fields, 拍照,
     上报), and it stays until the next one or a tap (no timer: the form below would jump when it went). */
  function notice(text, warn) {
    var box = $("gf-notice");
    box.textContent = text || "";
    box.hidden = !text;
    box.className = "gf-notice" + (warn ? " gf-warn" : "");
  }
  function formError(text) { var box = $("gf-error"); box.textContent = text || ""; box.hidden = !text; }
  /* What a tap on the map did, under the map: a hint (gf-hint), not an error. */
  function tapHint(text) {
    var box = $("gf-tap-hint");
    box.textContent = text || "";
    box.hidden = !text;
  }
  /* GPS trouble is shown under the GPS button, where the worker is looking, and scrolled into view. */
  function gpsMessage(text) {
    var box = $("gf-gps-msg");
    box.textContent = text || "";
    box.hidden = !text;
    if (text && box.scrollIntoView) { box.scrollIntoView({block: "nearest"}); }
  }

  /* A refusal in Chinese, from its codes (never the server's English): each item of the API's error as its field
     (C.refusal.fields) and the zh-CN of its code, else the error's reason, else its error code or status. */
  function refusalText(body, status) {
    var R = C.refusal, d = body && body.detail, items = [], lines = [], reason = body && body.reason;
    if (Array.isArray(d)) { items = d; } else if (d && Array.isArray(d.items)) { items = d.items; }
    items.forEach(function (i) {
      var field = String(i.field || "");
      var m = /^photos\[(\d+)\]/.exec(field);
      var what = m ? "第 " + (Number(m[1]) + 1) + " 张照片" : (R.fields[field] || field || "上报");
      var line = what + ":" + (zhReason(i.code || reason) || "不符合要求");
      if (lines.indexOf(line) < 0) { lines.push(line); }
    });
    if (!lines.length && zhReason(reason)) { lines.push(zhReason(reason)); }
    if (!lines.length) {
      lines.push(R.status[(body && body.error) || ""] || R.status[String(status)] ||
                 "服务器未受理此上报(状态 " + status + ")");
    }
    return lines.join("\n");
  }
  GF.refusalText = refusalText;

  /* What read(view, littleEndian, ifd) finds in the TIFF block after an "Exif\0\0" mark of a JPEG or HEIC (read in
     the page, offline too): the first block it finds something in, else null. ifd(offset) maps each tag of the
     directory at offset to its entry's offset. */
  function exifRead(buf, read) {
    var b = new Uint8Array(buf);
    for (var i = 0; i + 14 < b.length; i++) {
      if (b[i] === 0x45 && b[i + 1] === 0x78 && b[i + 2] === 0x69 && b[i + 3] === 0x66 && b[i + 4] === 0 &&
          b[i + 5] === 0) {
        var got = null;
        try { got = tiffRead(new DataView(buf, i + 6), read); } catch (e) { got = null; }
        if (got) { return got; }
      }
    }
    return null;
  }
  function tiffRead(v, read) {
    var order = v.getUint16(0), le = order === 0x4949;
    if ((!le && order !== 0x4d4d) || v.getUint16(2, le) !== 42) { return null; }
    function ifd(off) {
      var out = {}, n = v.getUint16(off, le);
      for (var k = 0; k < n; k++) { var e = off + 2 + 12 * k; out[v.getUint16(e, le)] = e; }
      return out;
    }
    return read(v, le, ifd);
  }

  /* Where a photo was taken, from its EXIF GPS, as {lon, lat}, with accuracy (metres) when the photo states its
     error (GPSHPositioningError; a 0 is no figure: the server takes only a positive accuracy_m). */
  function exifGps(buf) { return exifRead(buf, tiffGps); }
  function tiffGps(v, le, ifd) {
    var ifd0 = ifd(v.getUint32(4, le));
    if (ifd0[0x8825] === undefined) { return null; }
    var gps = ifd(v.getUint32(ifd0[0x8825] + 8, le));
    function ref(tag) { return gps[tag] === undefined ? null : String.fromCharCode(v.getUint8(gps[tag] + 8)); }
    function dms(tag) {
      var e = gps[tag];
      if (e === undefined || v.getUint16(e + 2, le) !== 5) { return null; }
      var n = v.getUint32(e + 4, le), o = v.getUint32(e + 8, le), deg = 0;
      if (n < 1 || n > 3) { return null; }
      for (var k = 0; k < n; k++) {
        var den = v.getUint32(o + 8 * k + 4, le);
        if (!den) { return null; }
        deg += v.getUint32(o + 8 * k, le) / den / Math.pow(60, k);
      }
      return deg;
    }
    // A void fix (GPSStatus V: a stale one) or one off by more than the server takes locates nothing.
    var error = dms(31);
    if (ref(9) === "V" || (error !== null && error > C.maxGpsErrorM)) { return null; }
    var lat = dms(2), lon = dms(4), latRef = ref(1), lonRef = ref(3);
    if (lat === null || lon === null || (latRef !== "N" && latRef !== "S") || (lonRef !== "E" && lonRef !== "W") ||
        (lat === 0 && lon === 0) || lat > 90 || lon > 180) { return null; }
    var out = {lon: lonRef === "W" ? -lon : lon, lat: latRef === "S" ? -lat : lat};
    if (error) { out.accuracy = error; }
    return out;
  }
  GF.exifGps = exifGps;

  /* When a JPEG or HEIC was taken, from its EXIF (DateTimeOriginal with OffsetTimeOriginal, else DateTime), as
     {text: "YYYY-MM-DD HH:MM", ms}; a time without offset is the phone's local time. null when it has none. */
  function exifDate(buf) { return exifRead(buf, tiffDate); }
  function tiffDate(v, le, ifd) {
    function ascii(entries, tag) {
      var e = entries[tag];
      if (e === undefined || v.getUint16(e + 2, le) !== 2) { return null; }
      var n = v.getUint32(e + 4, le), o = n <= 4 ? e + 8 : v.getUint32(e + 8, le), out = "";
      for (var k = 0; k < n; k++) { var c = v.getUint8(o + k); if (!c) { break; } out += String.fromCharCode(c); }
      return out;
    }
    var ifd0 = ifd(v.getUint32(4, le)), sub = ifd0[0x8769] !== undefined ? ifd(v.getUint32(ifd0[0x8769] + 8, le)) : {};
    var when = ascii(sub, 0x9003), offset = when ? ascii(sub, 0x9011) : null;
    if (!when) { when = ascii(ifd0, 0x0132); }
    var m = when && /^(\d{4}):(\d\d):(\d\d) (\d\d):(\d\d)(?::(\d\d))?/.exec(when);
    if (!m || m[1] === "0000") { return null; }
    var text = m[1] + "-" + m[2] + "-" + m[3] + " " + m[4] + ":" + m[5];
    var iso = m[1] + "-" + m[2] + "-" + m[3] + "T" + m[4] + ":" + m[5] + ":" + (m[6] || "00");
    var ms = offset && /^[+-]\d\d:\d\d$/.test(offset) ? Date.parse(iso + offset) : new Date(iso).getTime();
    return isNaN(ms) ? null : {text: text, ms: ms};
  }
  GF.exifDate = exifDate;

  /* Inside the district's bounds (with a margin)? Only a hint: the server decides by the grids. */
  function inDistrict(lon, lat) {
    if (!C.bounds) { return true; }
    var m = 0.01;
    return lat >= C.bounds[0][0] - m && lat <= C.bounds[1][0] + m && lon >= C.bounds[0][1] - m &&
      lon <= C.bounds[1][1] + m;
  }

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
    get: function (key) { return store("readonly", function (s) { return s ? s.get(key) : null; })
      .then(function (rec) { return rec || memory[key] || null; }); },
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

  /* The clock of the outbox's backoff (a hook: tests move it on). */
  GF.now = function () { return Date.now(); };
  /* Send every queued report in order, one at a time; stop at the first network failure or 5xx. A record backing
     off after a 5xx (rec.nextTry) is left for later, unless ``now`` (立即发送: the worker asks for it). A report
     the worker is editing (rec.held) is not sent. */
  GF.flush = function (now) {
    if (now) { GF.forceNext = true; }
    if (GF.flushing) { GF.again = true; return GF.flushing; }
    var force = GF.forceNext;
    GF.forceNext = false;
    GF.flushing = withLock(function () {
      return outbox.all().then(function (recs) {
        return recs.filter(function (r) { return !r.refused && !r.held && (force || !(r.nextTry > GF.now())); })
          .reduce(function (p, rec) { return p.then(function () { return sendOne(rec); }); }, Promise.resolve());
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
  /* How long (ms) a send of ``bytes`` may take before it is aborted: a base plus the body at a slow uplink. */
  function sendTimeout(bytes) { return C.sendTimeoutMs + Math.ceil(bytes * 8 / C.sendMinBps * 1000); }
  GF.sendTimeout = sendTimeout;
  /* The wait (ms) after the n-th server error in a row: the answer's Retry-After (seconds or an HTTP date), else
     backoffMs doubled per error; never above backoffMaxMs. */
  function backoff(n, retryAfter) {
    var wait = NaN;
    if (retryAfter) {
      wait = /^\s*\d+\s*$/.test(retryAfter) ? Number(retryAfter) * 1000 : Date.parse(retryAfter) - Date.now();
    }
    if (!(wait >= 0)) { wait = C.backoffMs * Math.pow(2, Math.min(n - 1, 30)); }
    return Math.min(wait, C.backoffMaxMs);
  }
  GF.backoff = backoff;
  function fmtClock(ms) {
    var d = new Date(ms);
    return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }

  function formData(rec) {
    var fd = new FormData();
    Object.keys(rec.fields).forEach(function (k) {
      var v = rec.fields[k];
      if (v !== null && v !== undefined && v !== "") { fd.append(k, String(v)); }
    });
    rec.photos.forEach(function (p) { fd.append("photos", new Blob([p.data], {type: p.type}), p.name); });
    return fd;
  }

  /* The record as stored now: the worker may have moved it back into the form (held) or discarded it since the
     flush read the outbox. */
  function sendOne(listed) {
    if (navigator.onLine === false) { return Promise.reject(OFFLINE); }
    return outbox.get(listed.key).then(function (rec) {
      if (!rec || rec.refused || rec.held) { return null; }
      GF.inFlight = rec.key;
      return post(rec).then(function (v) { GF.inFlight = null; return v; },
                            function (e) { GF.inFlight = null; throw e; });
    });
  }
  function post(rec) {
    var step = rec.kind === "step", call = step ? stepCall(rec, rec.photos.map(function (p) {
      return {blob: new Blob([p.data], {type: p.type}), name: p.name};
    })) : {url: C.base + "/cases/form", body: formData(rec),
           headers: apiHeaders(rec.role, rec.fields.reporter, {"Idempotency-Key": rec.key})};
    var bytes = rec.photos.reduce(function (n, p) { return n + (p.data.byteLength || 0); }, 0);
    var abort = window.AbortController ? new AbortController() : null;
    var timer = abort ? setTimeout(function () { abort.abort(); }, sendTimeout(bytes)) : null;
    return fetch(call.url, {method: "POST", headers: call.headers, body: call.body,
                            signal: abort ? abort.signal : undefined}).then(function (r) {
      clearTimeout(timer);
      answered(true);
      return r.json().catch(function () { return null; }).then(function (body) {
        if (step && r.status === 200 && body && body.id !== undefined) { return stepDone(rec, body); }
        if (!step && (r.status === 201 || r.status === 200) && body && body.id !== undefined) {
          remember(body, rec);
          return outbox.remove(rec.key).then(function () {
            notice("已上报:案件 " + (body.case_no || "#" + body.id) + photosText(rec.photos.length) +
                   (r.status === 200 ? "(此前已送达)" : ""));
            refreshMine();
          });
        }
        if (r.status >= 400 && r.status < 500 && r.status !== 408 && r.status !== 429) {
          /* Kept on the phone, out of the sending queue, until the worker edits and resends or discards it. */
          rec.refused = step ? stepRefusal(rec, body, r.status) : {status: r.status, at: new Date().toISOString(),
            reason: refusalText(body, r.status), server: serverMessageOf(body, r.status)};
          return outbox.put(rec).then(function () {
            notice(step ? rec.refused.reason + "(所填内容和照片已保留,见页面顶部)" :
                   "有一条上报未被受理:已保留在本机,见页面顶部,可修改后重发。", true);
            if (step) { refreshTasks(); }
          });
        }
        /* 5xx, 408, 429: the server is there but cannot take it now. This record waits (doubling), and the
           flush stops: the next records would be uploaded in full only to get the same answer. */
        rec.attempts = (rec.attempts || 0) + 1;
        rec.serverErrors = (rec.serverErrors || 0) + 1;
        rec.nextTry = GF.now() + backoff(rec.serverErrors, r.headers.get("Retry-After"));
        rec.lastError = "服务器暂时无法处理(" + r.status + "),稍后重试";
        if ($("gf-notice").textContent.indexOf("正在发送") >= 0) {  // the notice says what the queue line says
          notice(rec.lastError + "(已保存在本机,见「待发送」)", true);
        }
        return outbox.put(rec).then(function () { throw OFFLINE; });
      });
    }, function () {
      clearTimeout(timer);
      /* The phone says it is online, yet no answer came (the server unreachable, or the connection lost after the
         report was sent: the key makes the resend return that case). One status for it: notice, line, badge. */
      var offline = navigator.onLine === false;
      rec.attempts = (rec.attempts || 0) + 1;
      rec.lastError = offline ? "网络不可用,恢复后自动发送" : C.noAnswer;
      if (!offline) {
        var first = !GF.noAnswer;  // said once, and over a "正在发送…" (not again on each retry: a tap hides it)
        answered(false);
        if (first || $("gf-notice").textContent.indexOf("正在发送") >= 0) {
          notice(C.noAnswer + "(已保存在本机,见「待发送」)", true);
        }
      }
      return outbox.put(rec).then(function () { throw OFFLINE; });
    });
  }
  /* Whether the server answered the last send: the badge says 无应答 while it did not. */
  function answered(yes) {
    if (GF.noAnswer === !yes) { return; }
    GF.noAnswer = !yes;
    showNet();
  }

  function remember(c, rec) {
    var mine = load(LS.mine, []).filter(function (m) { return String(m.id) !== String(c.id); });
    mine.unshift({id: c.id, case_no: c.case_no, class_name: c.class_name || rec.className, at: rec.created});
    save(LS.mine, mine.slice(0, 200));
  }

  /* Notices of refusals an older version of this page kept (it deleted the report itself). */
  function renderRejected() {
    var box = $("gf-rejected");
    Array.prototype.slice.call(box.querySelectorAll("div.gf-old")).forEach(function (n) { box.removeChild(n); });
    load(LS.rejected, []).forEach(function (r) {
      box.appendChild(el("div", {"data-key": r.key, cls: "gf-old"},
        "上报未被受理(" + fmtTime(r.at) + " " + r.what + "):\n" + r.message, el("br"),
        el("button", {type: "button", cls: "gf-btn", text: "知道了", onclick: function () {
          save(LS.rejected, load(LS.rejected, []).filter(function (x) { return x.key !== r.key; }));
          renderRejected();
        }})));
    });
  }

  /* Refused reports, at the top of the page: why (Chinese, the server's words beside), edit and resend, discard. */
  function renderRefused(recs) {
    var box = $("gf-rejected");
    Array.prototype.slice.call(box.querySelectorAll(".gf-refused")).forEach(function (n) { box.removeChild(n); });
    recs.forEach(function (r) {
      if (r.kind === "step") { box.appendChild(refusedStep(r)); return; }
      var f = r.fields, where = f.lon !== null && f.lon !== undefined ? "已定位" : "未定位";
      box.appendChild(el("section", {cls: "gf-refused", "data-key": r.key},
        el("h3", {text: "未被受理:" + r.className + " · " + fmtTime(r.created)}),
        el("p", {cls: "gf-reason", text: r.refused.reason}),
        el("small", {text: "服务器原文:" + r.refused.server}),
        el("small", {text: [where, r.photos.length + " 张照片", f.description ? "描述:" + f.description : "",
                            f.address ? "地址:" + f.address : ""].filter(Boolean).join(" · ")}),
        el("div", {cls: "gf-row"},
          el("button", {type: "button", cls: "gf-btn gf-btn-main gf-edit", text: "修改后重发",
                        onclick: function () { editRefused(r); }}),
          el("button", {type: "button", cls: "gf-btn gf-discard", text: "放弃", onclick: function () {
            if (!window.confirm("放弃这条上报?照片和描述将从本机删除。")) { return; }
            if (GF.editing === r.key) { GF.editing = null; }
            outbox.remove(r.key).then(renderQueue).then(function () { notice(""); });
          }}))));
    });
  }

  /* A queued step the server refused: why, what was typed and the photos (kept), reopen the case online, discard. */
  function refusedStep(r) {
    var A = T.actions[r.action];
    return el("section", {cls: "gf-refused gf-refused-step", "data-key": r.key},
      el("h3", {text: "未提交:" + A.label + " · 案件 " + r.caseNo + " · " + fmtTime(r.created)}),
      el("p", {cls: "gf-reason", text: r.refused.reason}),
      el("small", {text: "服务器原文:" + r.refused.server}),
      el("small", {cls: "gf-kept", text: [A.text + ":" + (r.text || "(未填写)"), r.toName ? "更正类别:" + r.toName : "",
                                          r.photos.length + " 张照片"].filter(Boolean).join(" · ") + "(已保留在本机)"}),
      el("div", {cls: "gf-row"},
        el("button", {type: "button", cls: "gf-btn gf-btn-main gf-reopen", text: "重新打开案件",
                      onclick: function () { reopenStep(r); }}),
        el("button", {type: "button", cls: "gf-btn gf-discard", text: "放弃", onclick: function () {
          if (!window.confirm("放弃这条未提交的" + A.label + "?所填内容和照片将从本机删除。")) { return; }
          outbox.remove(r.key).then(renderQueue).then(function () { notice(""); });
        }})));
  }

  /* A refused report back in the form (class, description, address, location, photos); it stays stored until
     the form is sent again (then the new report replaces it) or it is discarded. */
  function editRefused(r) {
    editRecord(r);
    formError("请按上面的原因修改,然后点「上报」重发:" + r.refused.reason);
  }
  GF.editRefused = editRefused;
  function editRecord(r) {
    var f = r.fields;
    GF.editing = r.key;
    var cls = GF.classes.filter(function (c) { return c.code === f.class_code; })[0];
    if (cls) { chooseClass(cls); } else { clearClass(); }
    $("gf-desc").value = f.description || "";
    $("gf-addr").value = f.address || "";
    if (f.reporter) { $("gf-name").value = f.reporter; }
    if (r.role) { $("gf-role").value = r.role; }
    GF.photos.forEach(function (p) { URL.revokeObjectURL(p.url); });
    GF.photos = [];
    if (f.lon !== null && f.lon !== undefined) {
      setLocation({lon: f.lon, lat: f.lat, datum: f.datum, source: r.locSource || "map", accuracy: r.accuracy});
    } else { clearLocation(); }
    addPhotos(r.photos.map(function (p) {
      var blob = new Blob([p.data], {type: p.type});
      try { return new File([blob], p.name, {type: p.type}); } catch (e) { blob.name = p.name; return blob; }
    }));
    $("gf-form").scrollIntoView({block: "start"});
  }

  /* A queued report (not sent yet) back in the form: held (not sent) until the form is sent again (the new report
     replaces it) or it is discarded. Not while it is being sent: that one reaches the server as it is. */
  function editQueued(key) {
    return outbox.get(key).then(function (r) {
      if (!r || GF.inFlight === key) {
        notice(r ? "此条上报正在发送,不能再修改;发送后如有错误请联系指挥中心。" : "此条上报已发送,不能再修改。", true);
        return renderQueue();
      }
      r.held = true;
      return outbox.put(r).then(function () {
        editRecord(r);
        notice("待发送的上报已移回表单,暂停发送:修改后点「上报」重发。", true);
        return renderQueue();
      });
    });
  }
  GF.editQueued = editQueued;
  function discardQueued(key, what) {
    if (!window.confirm(what ? "放弃这条待发送的" + what + "?照片和所填内容将从本机删除,不会发送。" :
                        "放弃这条待发送的上报?照片和描述将从本机删除,不会发送。")) {
      return Promise.resolve();
    }
    if (GF.inFlight === key) {
      notice("此条上报正在发送,不能再放弃。", true);
      return Promise.resolve();
    }
    if (GF.editing === key) { GF.editing = null; }
    return outbox.remove(key).then(renderQueue).then(function () {
      notice("已放弃一条待发送的" + (what || "上报") + "。");
    });
  }
  GF.discardQueued = discardQueued;

  function renderQueue() {
    return outbox.all().then(function (all) {
      var recs = all.filter(function (r) { return !r.refused; }), queued = {};
      renderRefused(all.filter(function (r) { return r.refused; }));
      $("gf-queue-n").textContent = String(recs.length);
      var ul = $("gf-queue");
      ul.textContent = "";
      recs.forEach(function (r) {
        if (r.kind === "step") {
          if (!r.held) { queued[r.caseId] = r; }  // held: its task form is open to take it again
          ul.appendChild(queuedStep(r));
          return;
        }
        var status = r.held ? "修改中:暂停发送,点「上报」重发后替换此条" : r.lastError || "等待发送";
        var next = !r.held && r.nextTry > GF.now() ? "下次自动重试 " + fmtClock(r.nextTry) : "";
        ul.appendChild(el("li", {"data-key": r.key}, el("i", {cls: "gf-dot gf-pending"}),
          el("b", {text: r.className}), " · " + fmtTime(r.created) + (r.photos.length ? " · " + r.photos.length +
          " 张照片" : ""), el("br"), el("small", {cls: "gf-status", text: status}),
          next ? el("small", {cls: "gf-next", text: next}) : null,
          el("div", {cls: "gf-row gf-queue-acts"},
            el("button", {type: "button", cls: "gf-btn gf-edit", text: "修改",
                          onclick: function () { editQueued(r.key); }}),
            el("button", {type: "button", cls: "gf-btn gf-discard", text: "放弃",
                          onclick: function () { discardQueued(r.key); }}))));
      });
      var was = Object.keys(GF.tasks.queued).join(), now = Object.keys(queued).join();
      GF.tasks.queued = queued;
      if (was !== now && GF.tasks.list.length) { renderTasks(); }  // the list marks the cases with a queued step
    });
  }
  /* A step queued offline, in 待发送: it says plainly that it waits for the network. */
  function queuedStep(r) {
    var A = T.actions[r.action], next = r.nextTry > GF.now() ? "下次自动重试 " + fmtClock(r.nextTry) : "";
    return el("li", {"data-key": r.key, cls: "gf-step"}, el("i", {cls: "gf-dot gf-pending"}),
      el("b", {text: A.label + " · 案件 " + r.caseNo}), " · " + fmtTime(r.created) + (r.photos.length ? " · " +
      r.photos.length + " 张照片" : ""), el("br"), el("small", {cls: "gf-status",
        text: r.held ? "修改中:暂停发送,在任务中重新" + A.label + "后替换此条;关闭任务则照原样发送" :
          "待联网提交" + (r.lastError && navigator.onLine !== false ? ":" + r.lastError : "")}),
      next && !r.held ? el("small", {cls: "gf-next", text: next}) : null,
      el("div", {cls: "gf-row gf-queue-acts"},
        el("button", {type: "button", cls: "gf-btn gf-edit", text: "修改",
                      onclick: function () { editQueuedStep(r.key); }}),
        el("button", {type: "button", cls: "gf-btn gf-discard", text: "放弃",
                      onclick: function () { discardQueued(r.key, A.label); }})));
  }
  /* A queued step back in its task form (what was typed, the class, the photos), held — not sent — meanwhile:
     taking the step again replaces it, closing the task lets it go as it was. Not while it is being sent. */
  function editQueuedStep(key) {
    return outbox.get(key).then(function (r) {
      if (!r || GF.inFlight === key) {
        notice(r ? "此条办理正在发送,不能再修改。" : "此条办理已发送,不能再修改。", true);
        return renderQueue();
      }
      r.held = true;
      return outbox.put(r).then(renderQueue).then(function () {
        GF.tasks.openId = null;
        return openTask(r.caseId);
      }).then(function () {
        if (String(GF.tasks.openId) !== String(r.caseId) || !$("gf-task-text")) { return releaseHeld(key); }
        fillTaskFrom(r);
        notice("待发送的" + T.actions[r.action].label +
               "已移回任务,暂停发送:修改后重新办理即替换;关闭任务则照原样发送。", true);
      });
    });
  }
  GF.editQueuedStep = editQueuedStep;
  /* A held step left without being taken again (the task closed, another opened): sent as it was. */
  function releaseHeld(key) {
    if (!key) { return Promise.resolve(); }
    return outbox.get(key).then(function (r) {
      if (!r || !r.held || r.kind !== "step") { return null; }
      r.held = false;
      return outbox.put(r).then(renderQueue).then(function () { GF.flush(); });
    });
  }

  /* -- the reporter's own cases ------------------------------------------------------------------------- */
  /* 不予立案/作废: why, as the step that ended it gave it (its reason, else its note). */
  function endReason(c) {
    if (c.state !== "rejected" && c.state !== "voided") { return ""; }
    var t = (c.timeline || []).filter(function (x) { return x.to_state === c.state; }).pop();
    var why = t && ((t.details || {}).reason || t.note);
    return why ? ":" + why : "";
  }
  function refreshMine() {
    var mine = load(LS.mine, []).slice(0, C.mineShown);
    var ul = $("gf-mine");
    if (!mine.length) { ul.textContent = ""; ul.appendChild(el("li", {text: "暂无"})); return Promise.resolve(); }
    return Promise.all(mine.map(function (m) {
      return request(C.base + "/cases/" + encodeURIComponent(m.id), {headers: {"Accept": "application/json"}})
        .then(function (c) { return {m: m, c: c}; }, function (e) { return {m: m, error: e}; });
    })).then(function (rows) {
      ul.textContent = "";
      if (GF.mineLayer) { GF.mineLayer.clearLayers(); }
      rows.forEach(function (r) {
        var c = r.c || {};
        var state = r.c ? (c.state_label || c.state) + endReason(c) + (c.light ? " · " + LIGHTS[c.light] : "")
          : (r.error.status === 404 ? "已不存在" : "状态暂不可查(" + r.error.message + ")");
        ul.appendChild(el("li", {"data-id": r.m.id}, el("i", {cls: "gf-dot" + (c.light ? " gf-" + c.light : "")}),
          el("b", {text: c.case_no || r.m.case_no || "#" + r.m.id}), " " + (c.class_name || r.m.class_name || ""),
          el("br"), el("small", {cls: "gf-state", text: state + " · " + fmtTime(c.created_at || r.m.at)})));
        if (r.c && GF.mineLayer && c.lat !== null && c.lat !== undefined) {
          L.circleMarker([c.lat, c.lon], {radius: 7, weight: 2, color: "#fff", fillOpacity: 0.95,
            fillColor: COLOURS[c.light] || "#9e9e9e"})
            .bindTooltip(el("span", {text: (c.case_no || "") + " " + state}))  // text, not HTML
            .addTo(GF.mineLayer);
        }
      });
    });
  }
  GF.refreshMine = refreshMine;

  /* -- 我的任务: the cases of the last located tier-3 grid (or within C.tasks.nearM) waiting for 核实 or 核查 -- */
  /* GET /cases for the role chosen: the form offers the case's allowed_actions (the API's) among C.tasks.actions.
     The grid stays after a report clears the location. */
  var T = C.tasks;
  GF.tasks = {place: null, list: [], open: null, openId: null, photos: [], asked: null, layer: null, marker: null,
              cls: null, kept: null, offline: false, from: null, queued: {}};
  function ago(iso) {
    var m = Math.floor((Date.now() - new Date(iso).getTime()) / 60000);
    if (!(m >= 0)) { return fmtTime(iso); }
    return m < 1 ? "刚刚" : m < 60 ? m + " 分钟前" : m < 2880 ? Math.floor(m / 60) + " 小时前" :
      Math.floor(m / 1440) + " 天前";
  }
  /* 待核实 since the report; 待核查 since the 处置 (the node's start). */
  function taskSince(c) {
    return c.state === "handled" ? "处置于 " + ago(c.node_started_at || c.updated_at) : "上报于 " + ago(c.created_at);
  }
  /* 我的任务 acts as the role and name of the form's 「4 · 上报人」. */
  function taskHeaders(more) { return apiHeaders($("gf-role").value, $("gf-name").value.trim(), more); }
  function tasksQuery(place) {
    var q = "state=" + Object.keys(T.states).join(",") + "&sort=due&limit=" + T.shown;
    if (!$("gf-tasks-near").checked) { return q + "&grid=" + encodeURIComponent(place.tier3.code); }
    var dLat = T.nearM / 111320, dLon = dLat / Math.cos(place.lat * Math.PI / 180);  // cgcs2000 ≈ wgs84 here
    return q + "&bbox=" + [place.lon - dLon, place.lat - dLat, place.lon + dLon, place.lat + dLat]
      .map(function (x) { return x.toFixed(6); }).join(",");
  }
  function tasksAt(loc) {
    var was = GF.tasks.place;
    if (!loc.tier3) { return; }
    GF.tasks.place = {lon: loc.lon, lat: loc.lat, tier3: loc.tier3};
    if (!was || was.tier3.code !== loc.tier3.code || $("gf-tasks-near").checked) { refreshTasks(); }
  }
  function tasksSummary(place, near, list, count) {
    var n = {};
    list.forEach(function (c) { n[c.state] = (n[c.state] || 0) + 1; });
    return place.tier3.name + (near ? " 及附近约 " + T.nearM + " 米内" : "") + ":" +
      Object.keys(T.states).map(function (s) { return T.states[s] + " " + (n[s] || 0) + " 件"; }).join(",") +
      (count > list.length ? "(共 " + count + " 件,显示最紧急的 " + list.length + " 件)" : "");
  }
  /* The last list loaded is kept on the phone (a basement, a tunnel): shown with its time when the server cannot be
     asked; a step taken on a case from it is queued with the version kept (queueStep), sent when the network is
     back and refused there if the case changed meanwhile. */
  function showKeptTasks(why) {
    var kept = load(LS.tasks, null);
    if (!kept || !kept.place || !kept.list) { return false; }
    if (!GF.tasks.place) { GF.tasks.place = kept.place; }
    GF.tasks.list = kept.list;
    GF.tasks.kept = kept;
    $("gf-tasks-hint").textContent = why + "显示 " + fmtTime(new Date(kept.at).toISOString()) +
      " 载入的任务(办理先存本机,联网后提交)。" + tasksSummary(kept.place, kept.near, kept.list, kept.count);
    renderTasks();
    return true;
  }
  function refreshTasks() {
    var place = GF.tasks.place, hint = $("gf-tasks-hint");
    if (!place) {
      hint.textContent = "请先定位(下方「1 · 位置」:GPS 或地图点选),再列出所在网格的任务。";
      return Promise.resolve();
    }
    var asked = GF.tasks.asked = {}, near = $("gf-tasks-near").checked;  // a late answer for an older ask is dropped
    if (navigator.onLine === false && showKeptTasks("离线:")) { return Promise.resolve(); }
    hint.textContent = "正在载入 " + place.tier3.name + " 的任务…";
    return request(C.base + "/cases?" + tasksQuery(place), {headers: taskHeaders()}).then(function (body) {
      if (GF.tasks.asked !== asked) { return; }
      var list = GF.tasks.list = body.data || [];
      GF.tasks.kept = null;
      save(LS.tasks, {place: place, near: near, role: $("gf-role").value, at: Date.now(), list: list,
                      count: body.count});
      hint.textContent = tasksSummary(place, near, list, body.count);
      renderTasks();
    }, function (e) {
      if (GF.tasks.asked !== asked) { return; }
      if (!(e.network && showKeptTasks("未连上服务器:"))) { hint.textContent = "任务暂不可查:" + e.message; }
    });
  }
  GF.refreshTasks = refreshTasks;
  function renderTasks() {
    var ul = $("gf-tasks"), list = GF.tasks.list;
    ul.textContent = "";
    $("gf-tasks-n").textContent = String(list.length);
    if (!GF.tasks.layer) { GF.tasks.layer = L.layerGroup().addTo(GF.map); }
    GF.tasks.layer.clearLayers();
    if (!list.length) { ul.appendChild(el("li", {cls: "gf-none", text: "暂无待核实、待核查的案件"})); }
    list.forEach(function (c) {
      var q = GF.tasks.queued[c.id];
      ul.appendChild(el("li", {"data-id": c.id, role: "button", tabindex: "0",
        cls: String(c.id) === String(GF.tasks.openId) ? "gf-sel" : "", onclick: function () { openTask(c.id); }},
        el("i", {cls: "gf-dot" + (c.light ? " gf-" + c.light : "")}), el("b", {text: c.case_no || "#" + c.id}),
        " " + (c.class_name || c.class_code), el("br"), el("small", {cls: "gf-task-meta",
          text: (T.states[c.state] || c.state_label) + " · " + taskSince(c) +
            (c.light ? " · " + LIGHTS[c.light] : "")}),
        q ? el("small", {cls: "gf-task-queued", text: "已" + T.actions[q.action].label + ",待联网提交"}) : null));
      if (c.lat !== null && c.lat !== undefined) {
        L.circleMarker([c.lat, c.lon], {radius: 7, weight: 2, color: "#6a1b9a", fillOpacity: 0.9, interactive: false,
          fillColor: COLOURS[c.light] || "#9e9e9e"}).addTo(GF.tasks.layer);
      }
    });
  }
  /* One task: its place, photos, description and steps. ``said``: why it was reloaded (or a function of it). */
  function openTask(id, said) {
    var box = $("gf-task"), kept = $("gf-task-text") ? $("gf-task-text").value : "";
    if (String(GF.tasks.openId) !== String(id)) {
      releaseHeld(GF.tasks.from);
      kept = "";
      clearTaskPhotos();
      GF.tasks.cls = GF.tasks.from = null;
    }
    GF.tasks.openId = id;
    box.hidden = false;
    if (!said) { box.textContent = ""; box.appendChild(el("p", {cls: "gf-hint", text: "正在打开案件…"})); }
    renderTasks();
    return request(C.base + "/cases/" + encodeURIComponent(id), {headers: taskHeaders()}).then(function (c) {
      if (String(GF.tasks.openId) !== String(id)) { return; }
      GF.tasks.open = c;
      renderTask(c, typeof said === "function" ? said(c) : said, kept);
      if (c.lat !== null && c.lat !== undefined) {
        if (GF.tasks.marker) { GF.map.removeLayer(GF.tasks.marker); }
        GF.tasks.marker = L.circleMarker([c.lat, c.lon], {radius: 13, weight: 4, color: "#6a1b9a", fillOpacity: 0.9,
          fillColor: COLOURS[c.light] || "#9e9e9e", interactive: false}).addTo(GF.map);
        GF.map.setView([c.lat, c.lon], Math.max(GF.map.getZoom(), 17));
      }
      if (box.scrollIntoView) { box.scrollIntoView({block: "start"}); }
    }, function (e) {
      var listed = GF.tasks.list.filter(function (c) { return String(c.id) === String(id); })[0];
      if (String(GF.tasks.openId) !== String(id)) { return; }
      if (e.network && listed) { GF.tasks.open = listed; renderTask(listed, said, kept, true); return; }
      box.textContent = "";
      box.appendChild(el("div", {cls: "gf-error", role: "alert", text: "无法打开案件:" + e.message}));
    });
  }
  GF.openTask = openTask;
  function closeTask() {
    releaseHeld(GF.tasks.from);
    GF.tasks.openId = GF.tasks.open = GF.tasks.cls = GF.tasks.from = null;
    clearTaskPhotos();
    $("gf-task").hidden = true;
    $("gf-task").textContent = "";
    if (GF.tasks.marker) { GF.map.removeLayer(GF.tasks.marker); GF.tasks.marker = null; }
    renderTasks();
  }
  function clearTaskPhotos() {
    GF.tasks.photos.forEach(function (p) { URL.revokeObjectURL(p.url); });
    GF.tasks.photos = [];
  }
  /* Where an escalated case is coordinated: 二级网格(社区) 某社区(网格长 姓名 电话). */
  function escalationText(e) {
    var who = [e.leader_name, e.leader_phone].filter(Boolean).join(" ");
    return e.label + (e.grid_name ? " " + e.grid_name : "") + (who ? "(网格长 " + who + ")" : "");
  }
  /* ``offline``: drawn from the list kept on the phone (no photos; a step is queued with the version kept). */
  function renderTask(c, said, text, offline) {
    var box = $("gf-task"), acts = (c.allowed_actions || []).filter(function (a) { return T.actions[a]; });
    var q = GF.tasks.queued[c.id];
    GF.tasks.offline = !!offline;
    var handled = (c.timeline || []).filter(function (t) { return t.action === "handle"; }).pop();
    box.textContent = "";
    box.appendChild(el("h3", {text: "案件 " + (c.case_no || "#" + c.id) + " · " + (c.class_name || c.class_code)}));
    box.appendChild(el("p", {cls: "gf-task-state", text: (T.phrases[c.state] || c.state_label) +
      (c.light ? " · " + LIGHTS[c.light] : "") + " · " + taskSince(c)}));
    box.appendChild(el("p", {cls: "gf-task-desc", text: (c.description || "(无描述)") +
      (c.address ? "\n地址:" + c.address : "") +
      (handled && (handled.details || {}).result ? "\n处置结果:" + handled.details.result : "") +
      (c.escalation ? "\n已提级:" + escalationText(c.escalation) : "")}));
    var pics = el("div", {cls: "gf-thumbs gf-task-photos"});
    (c.photos || []).forEach(function (p, i) {
      var kind = T.photoKinds[p.kind] || "照片";
      pics.appendChild(el("a", {cls: "gf-thumb", href: p.url, target: "_blank", rel: "noopener"},
        el("img", {src: p.thumb_url, alt: kind + " " + (i + 1), loading: "lazy"}),
        el("small", {cls: "gf-thumb-date", text: kind})));
    });
    if (!(c.photos || []).length) {
      pics.appendChild(el("small", {cls: "gf-hint", text: offline ? "照片联网后可看" : "无照片"}));
    }
    box.appendChild(pics);
    box.appendChild(el("div", {cls: "gf-row"}, el("button", {type: "button", cls: "gf-btn gf-grow",
      text: "在地图上查看", onclick: function () { $("gf-map").scrollIntoView({block: "center"}); }})));
    if (said) { box.appendChild(el("div", {cls: "gf-caution gf-task-said", role: "alert", text: said})); }
    if (offline) {
      box.appendChild(el("p", {cls: "gf-caution gf-task-offline", role: "status",
        text: "未连上服务器:此为本机保存的任务。办理将保存在本机「待发送」,联网后提交;" +
          "如案件已被他人更新,则不提交并提示。"}));
    }
    if (q) {
      box.appendChild(el("p", {cls: "gf-caution gf-task-queued", role: "status", text: "已于 " + fmtTime(q.created) +
        " 离线" + T.actions[q.action].label + ",待联网提交(见「待发送」):请勿重复办理。"}));
    } else if (!acts.length) {
      box.appendChild(el("p", {cls: "gf-hint gf-task-none", text: "此案件当前" + (T.phrases[c.state] || c.state_label) +
        ",无需以「" + $("gf-role").selectedOptions[0].textContent + "」身份办理。"}));
    } else {
      var field = acts.map(function (a) { return T.actions[a].text + (T.actions[a].required ? "(必填)" : ""); });
      box.appendChild(el("label", {cls: "gf-label"}, field.join(" / "),
        el("textarea", {id: "gf-task-text", rows: "3", maxlength: "2000", cls: "gf-input",
                        placeholder: "现场" + (T.states[c.state] || "待办理").slice(1) + "情况"})));
      $("gf-task-text").value = text || "";
      var reclassifies = acts.some(function (a) { return T.actions[a].reclassify; });
      if (reclassifies && c.scheme === C.scheme) {  // the page's catalogue is of its scheme
        box.appendChild(el("div", {cls: "gf-task-class"},
          el("p", {id: "gf-task-class", cls: "gf-chosen"}),
          el("button", {type: "button", id: "gf-task-class-undo", cls: "gf-btn", text: "不更正类别", hidden: "hidden",
                        onclick: function () { GF.tasks.cls = null; renderTaskClasses(); }}),
          el("input", {id: "gf-task-search", type: "search", cls: "gf-input", enterkeyhint: "search",
                       placeholder: "类别不符时搜索更正,如 垃圾、井盖", "aria-label": "更正类别",
                       oninput: renderTaskClasses}),
          el("ul", {id: "gf-task-classes", cls: "gf-classes", "aria-label": "更正类别列表", hidden: "hidden"})));
        renderTaskClasses();
      }
      box.appendChild(el("label", {cls: "gf-btn gf-file"}, "拍照取证", el("input", {id: "gf-task-photos", type: "file",
        accept: "image/*", capture: "environment", multiple: "multiple", onchange: function (e) {
          addTaskPhotos(e.target.files);
          e.target.value = "";
        }})));
      box.appendChild(el("div", {id: "gf-task-thumbs", cls: "gf-thumbs"}));
      box.appendChild(el("div", {id: "gf-task-error", cls: "gf-error", role: "alert", hidden: "hidden"}));
      var row = box.appendChild(el("div", {cls: "gf-row gf-task-acts"}));
      acts.forEach(function (a, i) {
        row.appendChild(el("button", {type: "button", "data-action": a, cls: "gf-btn" + (i ? "" : " gf-btn-main"),
                                      text: T.actions[a].label, onclick: function () { doTask(a); }}));
      });
      renderTaskPhotos();
    }
    box.appendChild(el("button", {type: "button", cls: "gf-btn gf-task-close", text: "关闭", onclick: closeTask}));
  }
  /* 核实 may correct the reported class (the API takes class_code at verify): the report form's search, listed
     while something is typed; the class picked goes with the step only if it is not the case's own. */
  function renderTaskClasses() {
    var c = GF.tasks.open, ul = $("gf-task-classes");
    if (!c || !ul) { return; }
    var to = GF.tasks.cls, q = $("gf-task-search").value.trim().toLowerCase(), own = c.class_name || c.class_code;
    $("gf-task-class").textContent = to ? "更正类别为:" + to.name + "(" + to.code + "),原为 " + own :
      "类别:" + own + "(" + c.class_code + ")";
    $("gf-task-class-undo").hidden = !to;
    ul.hidden = !q;
    if (!q) { ul.textContent = ""; return; }
    classRows(ul, q, to ? to.code : c.class_code, function (x) {
      GF.tasks.cls = x.code === c.class_code ? null : x;
      $("gf-task-search").value = "";
      renderTaskClasses();
    });
  }
  GF.renderTaskClasses = renderTaskClasses;
  function addTaskPhotos(files) {
    var refused = [];
    Array.prototype.forEach.call(files, function (f) {
      if (GF.tasks.photos.length >= C.maxPhotos) { refused.push((f.name || "照片") + ":最多 " + C.maxPhotos + " 张"); }
      else if (f.size > C.maxPhotoBytes) {
        refused.push((f.name || "照片") + ":超过 " + C.maxPhotoBytes / 1048576 + " MB");
      }
      else { GF.tasks.photos.push({file: f, name: f.name || "photo.jpg", url: URL.createObjectURL(f)}); }
    });
    renderTaskPhotos();
    taskError(refused.length ? "未附上 " + refused.join(";") : "");
  }
  function renderTaskPhotos() {
    var box = $("gf-task-thumbs");
    if (!box) { return; }
    box.textContent = "";
    GF.tasks.photos.forEach(function (p, i) {
      box.appendChild(el("div", {cls: "gf-thumb"}, el("img", {src: p.url, alt: "取证照片 " + (i + 1)}),
        el("button", {type: "button", "aria-label": "移除照片", text: "×", onclick: function () {
          URL.revokeObjectURL(p.url);
          GF.tasks.photos.splice(i, 1);
          renderTaskPhotos();
        }})));
    });
  }
  function taskError(text) {
    var box = $("gf-task-error");
    if (box) { box.textContent = text || ""; box.hidden = !text; }
  }
  /* A step's request: ``s`` {caseId, action, version, text, classCode, role, actor, key}; ``photos`` [{blob, name}]
     (the form route when there are any). The page's step and the outbox's queued one are built here only. */
  function stepCall(s, photos) {
    var A = T.actions[s.action], url = C.base + "/cases/" + s.caseId + "/actions/" + s.action, body;
    var headers = apiHeaders(s.role, s.actor, {"Idempotency-Key": s.key});
    if (photos.length) {
      url += "/form";
      body = new FormData();
      body.append("version", String(s.version));
      if (s.text) { body.append(A.field, s.text); }
      if (s.classCode) { body.append("class_code", s.classCode); }
      photos.forEach(function (p) { body.append("photos", p.blob, p.name); });
    } else {
      var json = {version: s.version};
      if (s.text && A.field === "note") { json.note = s.text; }
      else if (s.text) { json.payload = {}; json.payload[A.field] = s.text; }
      if (s.classCode) { json.payload = json.payload || {}; json.payload.class_code = s.classCode; }
      body = JSON.stringify(json);
      headers["Content-Type"] = "application/json";
    }
    return {url: url, body: body, headers: headers};
  }
  /* What a step's notice adds: its photos, the class corrected, who coordinates it now, the case's state. */
  function stepDoneText(action, done, n, toName) {
    return (n ? "(附 " + n + " 张照片)" : "") + (toName ? ",类别已更正为「" + toName + "」" : "") +
      (action === "escalate" && done.escalation ? ",由" + escalationText(done.escalation) + "协调" : "") +
      ",现为「" + (done.state_label || done.state) + "」";
  }
  /* A queued step the server refused: why, in Chinese (a stale version: someone else changed the case since the
     list was kept — never overwritten), the server's words beside. */
  function stepRefusal(rec, body, status) {
    var label = T.actions[rec.action].label, stale = body && (body.error === "stale_version" ||
      body.reason === "stale_version");
    return {status: status, at: new Date().toISOString(), server: serverMessageOf(body, status),
            reason: "案件 " + rec.caseNo + (stale ? " 已被他人更新,此离线" + label + "未提交:请联网后重新打开任务核对" :
              " 的离线" + label + "未提交:" + messageOf(body, null))};
  }
  GF.stepRefusal = stepRefusal;
  function stepDone(rec, done) {
    return outbox.remove(rec.key).then(function () {
      notice(T.actions[rec.action].done + "(离线办理,已提交):案件 " + (done.case_no || rec.caseNo) +
             stepDoneText(rec.action, done, rec.photos.length, rec.toName));
      if (String(GF.tasks.openId) === String(rec.caseId)) { closeTask(); }
      refreshTasks();
    });
  }
  /* A step taken on a case opened from the kept list (or with no network): into the outbox with the version the
     phone holds and its key, sent once in order when the network returns; a stale version is refused, not applied. */
  function queueStep(c, action, s, photos, from) {
    var A = T.actions[action];
    return Promise.all(photos.map(function (p) { return readPhoto(p.file); })).then(function (data) {
      var rec = {key: s.key, kind: "step", created: new Date().toISOString(), role: s.role, actor: s.actor,
                 caseId: c.id, caseNo: c.case_no || "#" + c.id, className: c.class_name || c.class_code,
                 action: action, version: c.version, text: s.text, classCode: s.classCode, toName: s.toName,
                 photos: data, attempts: 0, lastError: null};
      // the step it replaces (edited, or refused and taken again) goes first: never both sent
      return (from ? outbox.remove(from) : Promise.resolve()).then(function () {
        GF.tasks.from = null;
        return outbox.put(rec);
      }).then(function () {
        closeTask();
        notice("已保存" + A.label + ":案件 " + rec.caseNo + photosText(data.length) + ",待联网提交(见「待发送」," +
               "联网后按顺序提交一次;案件如已被他人更新则不提交)", true);
        return renderQueue().then(function () { GF.flush(); });
      });
    }, function (e) { taskError("无法保存到本机:" + (e && e.message ? e.message : e)); });
  }
  /* A refused queued step back in the task form (online): the case as it is now, what was typed, the class and the
     photos; the stored step goes when this one is taken or when it is discarded. */
  function reopenStep(r) {
    if (navigator.onLine === false) { notice("请联网后再重新打开案件核对。", true); return Promise.resolve(); }
    GF.tasks.openId = null;
    return openTask(r.caseId, r.refused.reason).then(function () {
      if (String(GF.tasks.openId) !== String(r.caseId) || GF.tasks.offline || !$("gf-task-text")) { return; }
      fillTaskFrom(r);
    });
  }
  GF.reopenStep = reopenStep;
  /* The open task's form filled from a stored step (what was typed, the class, the photos), which it replaces. */
  function fillTaskFrom(r) {
    $("gf-task-text").value = r.text || "";
    GF.tasks.from = r.key;
    GF.tasks.cls = GF.classes.filter(function (x) { return x.code === r.classCode; })[0] || null;
    renderTaskClasses();
    GF.tasks.photos = r.photos.map(function (p) {
      var blob = new Blob([p.data], {type: p.type});
      return {file: blob, name: p.name, url: URL.createObjectURL(blob)};
    });
    renderTaskPhotos();
  }
  /* The step (the form route with photos); a stale version reloads the case and says so, keeping the input. */
  function doTask(action) {
    var c = GF.tasks.open, A = T.actions[action], text = $("gf-task-text").value.trim();
    if (!$("gf-name").value.trim()) { taskError("请先在「4 · 上报人」填写您的姓名:办理记录以此署名"); return null; }
    if (A.required && !text) { taskError(A.label + "需填写" + A.text); return null; }
    var photos = GF.tasks.photos.slice(), from = GF.tasks.from;
    var to = A.reclassify && GF.tasks.cls && GF.tasks.cls.code !== c.class_code ? GF.tasks.cls : null;
    var s = {caseId: c.id, action: action, version: c.version, text: text, classCode: to ? to.code : null,
             toName: to ? to.name : null, role: $("gf-role").value, actor: $("gf-name").value.trim(), key: uuid()};
    if (GF.tasks.offline || navigator.onLine === false) { return queueStep(c, action, s, photos, from); }
    var call = stepCall(s, photos.map(function (p) { return {blob: p.file, name: p.name}; }));
    var buttons = document.querySelectorAll("#gf-task .gf-task-acts button");
    Array.prototype.forEach.call(buttons, function (b) { b.disabled = true; });
    taskError("");
    return request(call.url, {method: "POST", headers: call.headers, body: call.body}).then(function (done) {
      GF.tasks.from = null;  // taken: the step it replaces is removed below, not let go by closing the task
      closeTask();
      notice(A.done + ":案件 " + (done.case_no || "#" + done.id) + stepDoneText(action, done, photos.length,
                                                                              to && to.name));
      if ($("gf-notice").scrollIntoView) { $("gf-notice").scrollIntoView({block: "start"}); }
      if (from) { outbox.remove(from).then(renderQueue); }  // the refused offline step, now taken
      return refreshTasks();
    }, function (e) {
      Array.prototype.forEach.call(buttons, function (b) { b.disabled = false; });
      if (e.status === 409) {
        return openTask(c.id, function (now) {
          var offered = (now.allowed_actions || []).indexOf(action) >= 0;
          return "案件已被他人更新(版本 " + c.version + " → " + now.version + "),已重新载入:" +
            (offered ? "请核对后再点「" + A.label + "」" : "现为「" + (T.phrases[now.state] || now.state_label) +
            "」,「" + A.label + "」不再需要办理");
        }).then(refreshTasks);
      }
      taskError(A.label + "未成功:" + e.message);
    });
  }
  GF.doTask = doTask;

  /* -- event classes ------------------------------------------------------------------------------------ */
  function loadClasses() {
    GF.classes = load(LS.classes, []);
    renderClasses();
    return request(C.base + "/field/classes?scheme=" + encodeURIComponent(C.scheme)).then(function (body) {
      GF.classes = body.data || [];
      save(LS.classes, GF.classes);
      renderClasses();
    }, function () { if (!GF.classes.length) { formError("类别列表暂不可用:请在有网络时打开本页。"); } });
  }

  /* How well class c answers the search q: 0 its exact name or code; 1 a name that is q with words before it
     (Chinese names put the thing itself last: 暴露垃圾 is 垃圾, 垃圾箱异常 is about a 垃圾箱) or a common word
     typed in full (search_terms.csv); 2 a name containing q elsewhere, or a code starting with it; 3 the big
     class or part of a common word; -1 no match. */
  function matchRank(c, q) {
    var name = c.name.toLowerCase(), terms = c.terms || [];
    if (name === q || c.code === q) { return 0; }
    if (name.slice(-q.length) === q || terms.indexOf(q) >= 0) { return 1; }
    if (name.indexOf(q) >= 0 || c.code.indexOf(q) === 0) { return 2; }
    if ((c.big_name || "").toLowerCase().indexOf(q) >= 0 ||
        terms.some(function (t) { return t.indexOf(q) >= 0 || q.indexOf(t) >= 0; })) { return 3; }
    return -1;
  }
  GF.matchRank = matchRank;

  /* Whether q finds class c's family (c.fallback_for, e.g. 井盖) only through its generic word: the word itself,
     a common word that finds only it (窨井), or a word holding it that names no class (污水井盖) — not 通讯井盖 (a
     common word for 通信井盖) nor 供水井盖 (in a class's name). Such a search lists c, the family's class for an
     owner not known (不明井盖异常), first: the worker who typed 污水井盖 is not offered 供水井盖异常 first. */
  function onlyGeneric(c, q) {
    var f = c.fallback_for;
    if (!f || !q) { return false; }
    if (q === f) { return true; }
    var known = GF.classes.some(function (x) { return (x.terms || []).indexOf(q) >= 0; });
    if (known) { return (c.fallback_terms || []).indexOf(q) >= 0; }
    return q.indexOf(f) >= 0 && !GF.classes.some(function (x) { return x.name.toLowerCase().indexOf(q) >= 0; });
  }
  GF.onlyGeneric = onlyGeneric;

  /* The classes matching the search, best match first (a family's owner-unknown class first for a search that
     finds the family only through its generic word: onlyGeneric); within a rank the recently chosen ones first
     (the last 8 picked on this phone), then catalogue order. No search: every class, recent ones first. */
  function rankedClasses(q) {
    var recent = load(LS.recent, []);
    var rows = [];
    GF.classes.forEach(function (c, i) {
      var m = q ? (onlyGeneric(c, q) ? -0.5 : matchRank(c, q)) : 0;
      var r = recent.indexOf(c.code);
      if (m > -1) { rows.push({c: c, m: m, r: r < 0 ? 1e6 : r, i: i}); }
    });
    rows.sort(function (a, b) { return a.m - b.m || a.r - b.r || a.i - b.i; });
    return rows.map(function (x) { return x.c; });
  }
  GF.rankedClasses = rankedClasses;

  /* The classes search q finds, as the rows of ul (the report form's picker and 核实's correction in 我的任务):
     best match first (rankedClasses), the chosen code marked, pick(c) on a tap. */
  function classRows(ul, q, chosen, pick) {
    var list = rankedClasses(q);
    ul.textContent = "";
    list.forEach(function (c) {
      ul.appendChild(el("li", {"data-code": c.code, role: "button", tabindex: "0",
        cls: chosen === c.code ? "gf-sel" : "", onclick: function () { pick(c); }},
        el("b", {text: c.name}), " ", el("small", {text: c.code + " · " + (c.big_name || "")})));
    });
    if (!list.length) { ul.appendChild(el("li", {text: GF.classes.length ? "没有匹配的类别" : "正在加载类别…"})); }
  }
  function renderClasses() {
    classRows($("gf-classes"), $("gf-search").value.trim().toLowerCase(), GF.cls && GF.cls.code, chooseClass);
  }

  /* No class chosen, the search box empty: after a report is saved the next one starts without a class, so a
     worker reporting several problems in a row cannot send one under the last one's class unnoticed. */
  function clearClass() {
    GF.cls = null;
    $("gf-class").textContent = "未选择类别";
    $("gf-search").value = "";
    renderClasses();
  }
  GF.clearClass = clearClass;

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
    staffNames();  // the previous place's staff go until this one is located
    var ll = [loc.lat, loc.lon];
    if (GF.marker) { GF.marker.setLatLng(ll).setStyle({fillColor: "#0b6bcb"}); }
    else {
      GF.marker = L.circleMarker(ll, {radius: 9, weight: 3, color: "#fff", fillColor: "#0b6bcb", fillOpacity: 1})
        .addTo(GF.map);
    }
    if (GF.accuracy) { GF.map.removeLayer(GF.accuracy); GF.accuracy = null; }
    /* A live fix coarser than a photo's may be taken (C.maxGpsErrorM): the worker is told, and confirms it. */
    loc.coarse = loc.source === "gps" && loc.accuracy > C.maxGpsErrorM;
    if (loc.accuracy) {
      GF.accuracy = L.circle(ll, {radius: loc.accuracy, weight: loc.coarse ? 2 : 1,
                                  color: loc.coarse ? "#c62828" : "#0b6bcb", fillOpacity: 0.08}).addTo(GF.map);
    }
    var label = {gps: "GPS 定位", map: "地图选点", photo: "照片 GPS 位置"}[loc.source] || "位置";
    $("gf-loc").textContent = label + ":" + loc.lon.toFixed(6) + ", " + loc.lat.toFixed(6) + accuracyNote(loc) +
      (loc.source === "photo" ? "(上报时使用;也可 GPS 定位或在地图上点选)" : "");
    $("gf-loc").className = "gf-hint" + (loc.source === "photo" ? " gf-photo-loc" : "");
    gridLine("");
    formError("");
    gpsMessage("");
    tapHint("");
    accuracyWarning(loc);
    checkPlace(loc);
    photoWarnings();
  }

  /* A location's accuracy after its coordinates; a photo that states none is said to (its accuracy_m is not sent). */
  function accuracyNote(loc) {
    if (loc.accuracy) { return "(精度约 " + Math.round(loc.accuracy) + " 米)"; }
    return loc.source === "photo" ? "(照片未记录定位精度,精度未知)" : "";
  }
  /* The red line under a coarse fix, with the tap that takes it anyway; hidden for any other location. */
  function accuracyText(loc) {
    return "定位精度约 " + Math.round(loc.accuracy) + " 米,误差过大:请到开阔处重新定位,或在地图上点选";
  }
  function accuracyWarning(loc) {
    var ask = !!(loc && loc.coarse && !loc.confirmed);
    $("gf-acc-text").textContent = ask ? accuracyText(loc) + "。如确认位置无误,可点下方按钮使用此位置。" : "";
    $("gf-acc").hidden = !ask;
  }
  function confirmAccuracy() {
    if (!GF.loc || !GF.loc.coarse) { return; }
    GF.loc.confirmed = true;
    accuracyWarning(GF.loc);
    formError("");
  }
  GF.confirmAccuracy = confirmAccuracy;

  /* The line under the location: the grid it falls in (a hint), or a warning (red) that it is outside. */
  function gridLine(text, warn) {
    var box = $("gf-grid");
    box.textContent = text || "";
    box.className = warn ? "gf-warning" : "gf-hint";
    if (warn) { box.setAttribute("role", "alert"); } else { box.removeAttribute("role"); }
  }
  /* What to do about a location outside the district's grids, in the worker's words (no codes, no datums). */
  function outsideText(loc) {
    return loc.source === "photo" ?
      "照片的拍摄位置不在本区网格范围内,不能上报。请用 GPS 定位,或在地图上点选位置。" :
      "此位置不在本区网格范围内,不能上报。请在地图上移动位置,或检查手机 GPS 后重新定位。";
  }
  /* Which grid a location falls in (or that it is outside), shown under it; an outside one is remembered, so the
     report is not queued only to be refused. */
  function checkPlace(loc) {
    loc.outside = !inDistrict(loc.lon, loc.lat);
    if (loc.outside) { gridLine(outsideText(loc), true); }  // said at once; the server's answer says the same
    request(C.base + "/grids/locate?datum=" + loc.datum + "&lon=" + loc.lon.toFixed(7) + "&lat=" + loc.lat.toFixed(7))
      .then(function (g) {
        if (currentPlace() !== loc) { return; }
        loc.outside = false;
        loc.gridPending = false;
        loc.tier3 = g.tier3;
        staffNames();
        tasksAt(loc);
        gridLine("单元网格 " + g.unit_grid + (g.tier3 ? " · " + g.tier3.name : "") +
          (g.tier2 ? " · " + g.tier2.name : ""), false);
      }, function (e) {
        if (currentPlace() !== loc) { return; }
        if (e.network) {  // offline: the coordinates are shown, the grid comes when the network is back
          loc.gridPending = true;
          if (!loc.outside) {
            gridLine(navigator.onLine === false ? "离线:网格待联网后确定" : "未连上服务器:网格待联网后确定");
          }
          return;
        }
        if (e.status === 404) { loc.outside = true; }
        gridLine(loc.outside ? outsideText(loc) : "暂时无法确定所在网格,上报时由服务器核对。", loc.outside);
      });
  }
  /* The location a report would be sent with: the one set, else the first photo's EXIF GPS. */
  function photoPlace() {
    var p = GF.photos.filter(function (x) { return x.gps; })[0];
    if (!p) { return null; }
    if (!p.place) {
      p.place = {lon: p.gps.lon, lat: p.gps.lat, datum: "wgs84", source: "photo", accuracy: p.gps.accuracy || null};
    }
    return p.place;
  }
  function currentPlace() { return GF.loc || photoPlace(); }

  function showPhotoPlace() {
    if (GF.loc) { return; }
    var place = photoPlace();
    if (!place) { clearLocation(); return; }
    var ll = [place.lat, place.lon];
    if (GF.marker) { GF.marker.setLatLng(ll).setStyle({fillColor: "#2e7d32"}); }
    else {
      GF.marker = L.circleMarker(ll, {radius: 9, weight: 3, color: "#fff", fillColor: "#2e7d32", fillOpacity: 1})
        .addTo(GF.map);
    }
    $("gf-loc").textContent = "照片 GPS 位置:" + place.lon.toFixed(6) + ", " + place.lat.toFixed(6) +
      accuracyNote(place) + "(上报时使用;也可 GPS 定位或在地图上点选)";
    $("gf-loc").className = "gf-hint gf-photo-loc";
    gridLine("");
    GF.map.setView(ll, Math.max(GF.map.getZoom(), 16));
    checkPlace(place);
  }

  function clearLocation() {
    GF.loc = null;
    accuracyWarning(null);
    if (GF.marker) { GF.map.removeLayer(GF.marker); GF.marker = null; }
    if (GF.accuracy) { GF.map.removeLayer(GF.accuracy); GF.accuracy = null; }
    $("gf-loc").className = "gf-hint";
    $("gf-loc").textContent = "未定位:点「GPS定位」或在地图上点选;也可只附带含GPS的照片。";
    gridLine("");
    staffNames();
    if (photoPlace()) { showPhotoPlace(); }
    photoWarnings();
  }

  /* The evaluation counts a report by the reporter's name as typed (no login yet): the located tier-3 grid's
     网格长/网格员 are offered as the name, and a 网格员's name not among them gets a hint under it, not a refusal (a
     worker may report outside his own grid). A supervisor is on no grid's staff list: no hint for one. */
  function staffNames() {
    var place = currentPlace(), t3 = place && place.tier3, list = $("gf-staff");
    var names = t3 && t3.staff ? t3.staff.map(function (m) { return m.name; }) : [];
    if (list.getAttribute("data-grid") !== (t3 ? t3.code : "")) {
      list.setAttribute("data-grid", t3 ? t3.code : "");
      list.textContent = "";
      (t3 && t3.staff || []).forEach(function (m, i) {
        if (names.indexOf(m.name) < i) { return; }  // a 网格长 also listed as 网格员: offered once
        var o = document.createElement("option");
        o.value = m.name;
        o.label = m.role;
        list.appendChild(o);
      });
    }
    var name = $("gf-name").value.trim(), hint = $("gf-name-hint");
    var unknown = $("gf-role").value === "grid_worker" && names.length && name && names.indexOf(name) < 0;
    hint.textContent = unknown ?
      "「" + name + "」不在本网格(" + t3.name + ")的网格员名单中:如为本网格网格员请核对姓名" : "";
    hint.hidden = !unknown;
  }

  function locateByGps() {
    if (!navigator.geolocation || window.isSecureContext === false) {
      gpsMessage("浏览器只在 HTTPS 页面上允许 GPS 定位:请在地图上点选位置,或附带手机拍摄的含 GPS 照片。");
      return;
    }
    gpsMessage("");
    var btn = $("gf-gps");
    btn.disabled = true;
    btn.textContent = "正在定位…";
    navigator.geolocation.getCurrentPosition(function (pos) {
      btn.disabled = false;
      btn.textContent = "GPS定位";
      setLocation({lon: pos.coords.longitude, lat: pos.coords.latitude, datum: "wgs84", source: "gps",
                   accuracy: pos.coords.accuracy});
      if (GF.loc.coarse && GF.accuracy) {  // the whole circle in view: the fix may be anywhere in it
        GF.map.fitBounds(GF.accuracy.getBounds(), {padding: [8, 8]});
      } else {
        GF.map.setView([pos.coords.latitude, pos.coords.longitude], Math.max(GF.map.getZoom(), 17));
      }
    }, function (err) {
      btn.disabled = false;
      btn.textContent = "GPS定位";
      var why = {1: "未获定位权限", 2: "无法获得位置", 3: "定位超时"}[err.code] || err.message;
      gpsMessage("GPS 定位失败:" + why + "。可在地图上点选位置。");
    }, {enableHighAccuracy: true, timeout: 20000, maximumAge: 10000});
  }

  /* -- photos --------------------------------------------------------------------------------------------- */
  /* A photo the page does not attach (too big, one too many) is said at the photo control, by name and why;
     it is not in the list, and the line above 上报 counts only the photos that go with the report. */
  function addPhotos(files) {
    var added = [], refused = [];
    Array.prototype.forEach.call(files, function (f) {
      var name = f.name || "照片";
      if (GF.photos.length >= C.maxPhotos) {
        refused.push({name: name, why: "最多附 " + C.maxPhotos + " 张照片"});
        return;
      }
      if (f.size > C.maxPhotoBytes) {
        refused.push({name: name, why: "超过 " + C.maxPhotoBytes / 1048576 + " MB(此照片 " +
          (f.size / 1048576).toFixed(1) + " MB):请在相机设置中调低分辨率后重拍"});
        return;
      }
      var p = {file: f, url: URL.createObjectURL(f), gps: null, name: name};
      GF.photos.push(p);
      added.push(p);
    });
    GF.photoRefused = refused;
    renderThumbs();
    function say() { photoMessage(refused.map(function (r) { return "未附上 " + r.name + ":" + r.why; }).join("\n")); }
    say();
    /* Read here: what the file is (its first bytes: a file that is not a picture is taken off at once, not
       refused by the server after the worker has left — a queued report goes out later) and its EXIF GPS (the
       worker sees the location a photo gives before sending). 上报 waits for this. */
    var dropped = 0;
    GF.photosRead = Promise.all(added.map(function (p) {
      return readPhoto(p.file).then(function (d) {
        var why = photoRefusal(photoFormat(d.data));
        if (why) {
          var at = GF.photos.indexOf(p);
          if (at >= 0) { GF.photos.splice(at, 1); }
          URL.revokeObjectURL(p.url);
          refused.push({name: p.name, why: why});
          dropped += 1;
          return;
        }
        p.format = photoFormat(d.data);
        p.gps = exifGps(d.data);
        p.taken = exifDate(d.data);
      }, function () { p.gps = null; });
    })).then(function () {
      renderThumbs();  // with each photo's date (and its format, on a tile the browser cannot show)
      if (dropped) { say(); }
      if (!GF.loc) { showPhotoPlace(); }
    });
    return GF.photosRead;
  }
  /* The format the first bytes name (the signatures of what gisgrid.photos opens), "" for none of them. */
  function photoFormat(data) {
    var b = new Uint8Array(data.slice(0, 12));
    function text(i, j) { return String.fromCharCode.apply(null, Array.prototype.slice.call(b, i, j)); }
    if (b[0] === 0xFF && b[1] === 0xD8 && b[2] === 0xFF) { return "JPEG"; }
    if (text(0, 8) === "\x89PNG\r\n\x1a\n") { return "PNG"; }
    if (text(0, 4) === "RIFF" && text(8, 12) === "WEBP") { return "WEBP"; }
    if (text(4, 8) === "ftyp" && C.heifBrands.indexOf(text(8, 12)) >= 0) { return "HEIF"; }
    return "";
  }
  GF.photoFormat = photoFormat;
  /* Why a file of that format is not attached ("" when it is): the refusal the server would give, in its words. */
  function photoRefusal(format) {
    if (C.photoFormats.indexOf(format) >= 0) { return ""; }
    if (format) { return (format === "HEIF" ? "HEIC " : format + " ") + zhReason("photo_unsupported_format"); }
    return zhReason("photo_not_an_image") + "(应为 JPEG、PNG、WebP 或 HEIC 照片),请重拍或另选";
  }
  function photoMessage(text) {
    var box = $("gf-photo-msg");
    box.textContent = text || "";
    box.hidden = !text;
    if (text && box.scrollIntoView) { box.scrollIntoView({block: "nearest"}); }
  }
  /* Above 上报: how many photos go with the report (and how many were not attached). */
  function photoCount() {
    var n = GF.photos.length, left = (GF.photoRefused || []).length;
    $("gf-photo-n").textContent = (n ? "本次上报附 " + n + " 张照片" : "本次上报不附照片") +
      (left ? ";" + left + " 张未附上(见「拍照 / 选择照片」下)" : "");
  }
  function renderThumbs() {
    photoCount();
    var box = $("gf-thumbs");
    box.textContent = "";
    GF.photos.forEach(function (p, i) {
      var thumb = el("div", {cls: "gf-thumb"}, p.broken ? photoTile(p, i) : el("img", {src: p.url,
        alt: "照片 " + (i + 1), onerror: function () {  // a format this browser does not draw (HEIC in Chromium)
          p.broken = true;
          if (this.parentNode) { this.parentNode.replaceChild(photoTile(p, i), this); }
        }}),
        el("button", {type: "button", "aria-label": "移除照片", text: "×", onclick: function () {
          URL.revokeObjectURL(p.url);
          GF.photos.splice(i, 1);
          renderThumbs();
          if (!GF.loc) { clearLocation(); }
        }}),
        p.taken ? el("small", {cls: "gf-thumb-date", text: p.taken.text}) : null);
      box.appendChild(thumb);
    });
    photoWarnings();
  }
  /* In place of a picture the browser cannot draw: what it is, and that it goes with the report all the same. */
  function photoTile(p, i) {
    var f = p.format === "HEIF" ? "HEIC" : p.format, kind = (f ? f + " " : "") + "照片";
    var said = kind + " · 无法预览 · 将随上报发送";
    return el("div", {cls: "gf-tile", role: "img", "aria-label": "照片 " + (i + 1) + ":" + said, title: said},
      el("b", {text: kind}), el("span", {text: "无法预览"}), el("span", {text: "将随上报发送"}));
  }
  /* Metres between two WGS84/CGCS2000 points (the two datums differ by centimetres). */
  function metres(a, b) {
    var r = Math.PI / 180, x = (b.lon - a.lon) * r * Math.cos((a.lat + b.lat) / 2 * r), y = (b.lat - a.lat) * r;
    return 6371008.8 * Math.sqrt(x * x + y * y);
  }
  function distanceText(m) {
    return m < 1000 ? Math.round(m / 10) * 10 + " 米" : m < 10000 ? (m / 1000).toFixed(1) + " 公里" :
      Math.round(m / 1000) + " 公里";
  }
  /* A yellow warning (the photo is still attached) for a photo taken over a day ago or far from the report's
     location: a gallery photo of another day or place is evidence of something else. */
  function photoWarnings() {
    var place = currentPlace(), now = Date.now(), several = GF.photos.length > 1, lines = [];
    GF.photos.forEach(function (p, i) {
      var old = p.taken && now - p.taken.ms > C.photoOldMs;
      var far = place && p.gps && p.place !== place ? metres(place, p.gps) : 0;
      if (!old && !(far > C.photoFarM)) { return; }
      lines.push((several ? "第 " + (i + 1) + " 张照片" : "照片") +
        (old ? "拍摄于 " + p.taken.text.slice(0, 10) : "") + (old && far > C.photoFarM ? "," : "") +
        (far > C.photoFarM ? "距上报位置约 " + distanceText(far) : "") + ":请确认是本次现场照片");
    });
    var box = $("gf-photo-warn");
    box.textContent = lines.join("\n");
    box.hidden = !lines.length;
  }
  GF.photoWarnings = photoWarnings;
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
  /* One report, one send: several submit events in one task (an Enter key and a tap, a WebView's ghost click) all
     reach here before send() runs, so the flag is set here, synchronously. A tap right after a report was saved
     (the form just emptied, nothing touched) is the same report's second tap: ignored, not validated. */
  function submit(ev) {
    ev.preventDefault();
    if (GF.sending || (Date.now() < GF.quietUntil && formIsEmpty())) { return; }
    GF.sending = true;
    (GF.photosRead || Promise.resolve()).then(send)  // the photos' GPS read first: it may be the location
      .then(function (saved) {
        GF.sending = false;
        if (saved) { GF.quietUntil = Date.now() + C.quietMs; }
      }, function () { GF.sending = false; });
  }
  function formIsEmpty() {
    return !GF.cls && !currentPlace() && !GF.photos.length && !$("gf-desc").value.trim() &&
      !$("gf-addr").value.trim();
  }
  /* The photos a report goes with, in its status lines. */
  function photosText(n) { return n ? "(附 " + n + " 张照片)" : "(未附照片)"; }
  function send() {
    var name = $("gf-name").value.trim();
    var problems = [];
    var place = currentPlace();
    if (!GF.cls) { problems.push("请选择类别"); }
    if (!place) {
      problems.push(GF.photos.length ? "所附照片不含可用的 GPS 位置(无定位、定位无效或误差过大):请定位(GPS 或地图点选)"
        : "请定位(GPS 或地图点选),或附带含 GPS 的照片");
    } else if (place.outside) {
      problems.push((place.source === "photo" ? "照片的 GPS 位置" : "所选位置") + "不在本区网格范围内:请重新定位");
    } else if (place.coarse && !place.confirmed) {
      problems.push(accuracyText(place) + ";或点「仍使用此位置」确认");
    }
    if (!name) { problems.push("请填写上报人姓名"); }
    if (problems.length) { formError(problems.join("\n")); return Promise.resolve(false); }
    save(LS.name, name);
    save(LS.role, $("gf-role").value);
    var btn = $("gf-submit");
    btn.disabled = true;
    var photos = GF.photos.slice();
    /* no location set: the server takes the first photo's EXIF GPS — the page's photoPlace, sent with its accuracy */
    var loc = GF.loc, replaces = GF.editing, fix = loc || photoPlace();
    return Promise.all(photos.map(function (p) { return readPhoto(p.file); })).then(function (data) {
      var rec = {
        key: uuid(), created: new Date().toISOString(), role: $("gf-role").value, className: GF.cls.name,
        attempts: 0, lastError: null, photos: data, locSource: loc ? loc.source : null,
        accuracy: loc ? loc.accuracy || null : null,
        fields: {class_code: GF.cls.code, scheme: C.scheme, description: $("gf-desc").value.trim() || null,
                 address: $("gf-addr").value.trim() || null, reporter: name,  // source: the role's channel
                 lon: loc ? loc.lon : null, lat: loc ? loc.lat : null,
                 datum: loc ? loc.datum : "wgs84", accuracy_m: fix && fix.accuracy ? fix.accuracy : null}
      };
      return outbox.put(rec).then(function () {
        GF.editing = null;
        return replaces ? outbox.remove(replaces) : null;  // the edited refused report: replaced by this one
      }).then(function () { return rec; });
    }).then(function (rec) {
      var withPhotos = photosText(photos.length);
      notice(navigator.onLine === false ? "当前离线:已保存到待发送队列" + withPhotos + ",恢复网络后自动发送。" :
             "已保存" + withPhotos + ",正在发送…", navigator.onLine === false);
      /* the form starts over at the top: the status is shown there, above the next report's location */
      if ($("gf-notice").scrollIntoView) { $("gf-notice").scrollIntoView({block: "start"}); }
      $("gf-desc").value = "";
      $("gf-addr").value = "";
      clearClass();
      photos.forEach(function (p) { URL.revokeObjectURL(p.url); });
      GF.photos = [];
      GF.photoRefused = [];
      photoMessage("");
      renderThumbs();
      clearLocation();
      formError("");
      /* In the outbox: the next report can be filed now. The sending goes on by itself (a slow uplink, a backlog
         after a dead spot) and says how it went in the notice and the queue. */
      renderQueue().then(function () { GF.flush(); });
      return true;
    }, function (e) {
      formError("无法保存到本机队列:" + (e && e.message ? e.message : e));
      return false;
    }).then(function (saved) { btn.disabled = false; return saved; });
  }

  function showNet() {
    var on = navigator.onLine !== false, mute = on && GF.noAnswer;
    var n = $("gf-net");
    n.textContent = !on ? "离线" : mute ? "服务器无应答" : "在线";
    n.className = "gf-net" + (!on ? " gf-off" : mute ? " gf-mute" : "");
  }

  function initMap() {
    var B = C.basemap;
    /* minZoom on the map itself: else Leaflet raises the view to the first layer's minZoom (unit grids: 15) */
    var map = GF.map = L.map("gf-map", {minZoom: C.minZoom, maxZoom: 22, attributionControl: !!B, zoomControl: false});
    L.control.zoom(C.zoomTitles).addTo(map);  // zh-CN titles and aria-labels (放大/缩小), where Leaflet puts its own
    if (B) {
      map.attributionControl.setPrefix(false);
      if (B.pane) { map.createPane(B.pane).style.zIndex = 150; map.getPane(B.pane).style.pointerEvents = "none"; }
      B.layers.forEach(function (s) {
        var options = {subdomains: B.subdomains, maxZoom: 22, attribution: s.overlay ? "" : B.attribution};
        if (B.pane) { options.pane = B.pane; }
        L.tileLayer(s.url, options).addTo(map);
      });
    }
    if (C.bounds) { map.fitBounds(C.bounds); } else { map.setView(C.center, 12); }
    Object.keys(C.grids).forEach(function (name, i) {
      var g = C.grids[name], styles = {};
      styles[name] = g.style;
      L.vectorGrid.protobuf(C.base + "/tiles/" + name + "/{z}/{x}/{y}.mvt", {
        rendererFactory: L.canvas.tile, interactive: false, maxNativeZoom: 22, maxZoom: 22, minZoom: g.minZoom,
        zIndex: 10 + i, vectorTileLayerStyles: styles
      }).addTo(map);
    });
    GF.mineLayer = L.layerGroup().addTo(map);
    if (B && B.shift) { GF.basemapShift = gisgridShiftBasemap(map, B.pane, B.shift); }
    map.on("click", function (e) {
      /* A tap is a place only where a fingertip is a few metres: further out it zooms in on the tap first. */
      if (map.getZoom() < C.tapMinZoom) {
        map.setView(e.latlng, C.tapMinZoom);  // straight to street zoom: the next tap places the report
        tapHint("已放大到点击处的街道:请再点一下,选定准确位置。");
        return;
      }
      tapHint("");
      setLocation({lon: e.latlng.lng, lat: e.latlng.lat, datum: "cgcs2000", source: "map"});
    });
  }

  function init() {
    initMap();
    $("gf-name").value = load(LS.name, "");
    $("gf-name").addEventListener("input", staffNames);
    var role = load(LS.role, null);
    if (role) { $("gf-role").value = role; }
    $("gf-role").addEventListener("change", staffNames);
    $("gf-role").addEventListener("change", function () {  // another role may take other steps
      refreshTasks();
      if (GF.tasks.openId) { openTask(GF.tasks.openId); }
    });
    $("gf-tasks-near").addEventListener("change", refreshTasks);
    if (navigator.onLine === false) { showKeptTasks("离线:"); }  // opened offline (the service worker's page)
    $("gf-tasks-refresh").addEventListener("click", function () {
      refreshTasks();
      if (GF.tasks.openId) { openTask(GF.tasks.openId); }
    });
    $("gf-search").addEventListener("input", renderClasses);
    $("gf-gps").addEventListener("click", locateByGps);
    $("gf-clear-loc").addEventListener("click", clearLocation);
    $("gf-acc-ok").addEventListener("click", confirmAccuracy);
    $("gf-photos").addEventListener("change", function (e) { addPhotos(e.target.files); e.target.value = ""; });
    $("gf-form").addEventListener("submit", submit);
    $("gf-retry").addEventListener("click", function () { GF.flush(true); });
    $("gf-refresh").addEventListener("click", refreshMine);
    $("gf-notice").addEventListener("click", function () { $("gf-notice").hidden = true; });
    window.addEventListener("online", function () {
      showNet();
      var place = currentPlace();
      if (place && place.gridPending) { checkPlace(place); }  // located offline: its grid now
      if (GF.tasks.place) {  // the list (and the case open) as they are now
        refreshTasks();
        if (GF.tasks.openId) { openTask(GF.tasks.openId); }
      }
      outbox.all().then(function (all) {
        var waiting = all.filter(function (r) { return !r.refused; }), steps = waiting.some(function (r) {
          return r.kind === "step";
        });
        notice(waiting.length ? "网络已恢复,正在发送待发送的上报" + (steps ? "和离线办理" : "") + "…" : "网络已恢复。");
        return GF.flush();
      });
    });
    window.addEventListener("offline", function () { showNet(); notice("当前离线:上报将保存在本机。", true); });
    document.addEventListener("visibilitychange", function () { if (!document.hidden) { GF.flush(); } });
    setInterval(function () { GF.flush(); }, C.retryMs);
    showNet();
    renderRejected();
    loadClasses();
    /* the page, its JS/CSS and the class list for offline opening (browsers allow it on HTTPS and localhost) */
    if (navigator.serviceWorker && window.isSecureContext !== false) {
      navigator.serviceWorker.register(C.sw.url, {scope: C.sw.scope}).catch(function () { /* no offline opening */ });
    }
    renderQueue().then(function () { return GF.flush(); });
    refreshMine();
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
