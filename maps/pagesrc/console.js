(function () {
  "use strict";
  var C = window.GG_CONFIG;
  var LIGHTS = C.lightLabels;
  var COLOURS = C.lightColours;
  var GREY = "#9e9e9e";
  var SEVERITY = {red: 0, yellow: 1, green: 2};
  var OPEN = C.openStates.join(",");  // the state filter's default: cases still being worked on
  var ROLE_KEY = "gisgrid.console.role";
  var ACTOR_KEY = "gisgrid.console.actor";
  var DEPT_KEY = "gisgrid.console.department";
  /* The operator's name (操作人) for a step; "" when none is typed — a step is then not sent (C.actorMissing). */
  function actorName() { return $("gg-actor").value.trim(); }
  var GG = window.GG = {map: null, cases: null, filters: {state: OPEN}, selected: null, lastGood: null, offset: 0,
                        casesSeq: 0};

  /*gisgrid:dom*/
  Object.keys(C.fieldLabels).forEach(function (k) { ZH_FIELDS[k] = C.fieldLabels[k]; });
  /* What a failed query says: a refusal (the API answered no, and why) or a connection that failed. */
  function failText(what, e) { return what + (e.network ? "失败:" : "被拒绝:") + e.message; }
  function dot(light) { return el("i", {cls: "gg-dot " + (light ? "gg-" + light : "gg-grey")}); }
  function fmtTime(iso) { return iso ? String(iso).replace("T", " ").slice(0, 16) : "—"; }

  /* The API's error body is {"error": code, "detail": text | [{field, reason}] | {message, items}}. */
  GG.messageOf = messageOf;

  /* A refusal in a box: the Chinese (messageOf), and the server's own words aside — as the box's title and in a
     collapsed "服务器原文" — when they say something the Chinese does not show. */
  function fillRefusal(box, text, e) {
    box.textContent = "";
    box.appendChild(el("div", {text: text}));
    var server = e && e.server && text.indexOf(e.server) < 0 ? e.server : "";
    if (server) {
      box.appendChild(el("details", {cls: "gg-server"}, el("summary", {text: "服务器原文"}),
                         el("div", {text: server})));
      box.title = server;
    } else {
      box.removeAttribute("title");
    }
    box.hidden = !text;
  }

  /* One message per source (cases, heat map, components …): one query's answer does not hide another's refusal. */
  var ERRORS = {};
  function showError(source, text, e) {
    if (text) { ERRORS[source] = {text: text, e: e}; } else { delete ERRORS[source]; }
    var keys = Object.keys(ERRORS), box = $("gg-error");
    var servers = keys.map(function (k) { return ERRORS[k].e && ERRORS[k].e.server; }).filter(Boolean);
    fillRefusal(box, keys.map(function (k) { return ERRORS[k].text; }).join("\n"),
                servers.length ? {server: servers.join("\n")} : null);
  }
  GG.showError = showError;

  function headers(json) {
    var h = {"Accept": "application/json", "X-Role": $("gg-role").value,
             "X-Actor": encodeURIComponent(actorName())};
    // 部门处置人员 act for their department only: the API needs to know which (X-Department).
    if (h["X-Role"] === "department" && $("gg-dept").value) { h["X-Department"] = $("gg-dept").value; }
    if (json) { h["Content-Type"] = "application/json"; }
    return h;
  }

  /* A date from the panel as the start of that day (or of the next: "至" includes its day), Beijing time. */
  function dayStart(value, plusDays) {
    if (!value) { return ""; }
    var d = new Date(value + "T00:00:00+08:00");
    d.setUTCDate(d.getUTCDate() + plusDays);
    return d.toISOString();
  }

  /* Heat map: the filtered cases (any light) over the filter's period, by default the last N days. */
  GG.refreshHeat = function () {
    if (!GG.heat || !GG.map.hasLayer(GG.heat)) { return; }
    if (GG.badFilter) { GG.heat.setLatLngs([]); GG.heatCases = 0; return; }  // nothing matches a refused filter
    var q = new URLSearchParams();
    var f = GG.filters || {};
    ["state", "class_code", "department", "grid", "since", "until", "source", "escalation_level",
     "pending_extension", "queue", "case_no"].forEach(function (k) {
      if (f[k]) { q.set(k, f[k]); }
    });
    if (!f.since) { q.set("since", new Date(Date.now() - C.heatDefaultDays * 864e5).toISOString()); }
    request(C.base + "/cases/heat?" + q.toString()).then(function (h) {
      if (GG.badFilter) { return; }
      showError("heat", "");
      var counts = h.points.map(function (p) { return p[2]; }).sort(function (a, b) { return a - b; });
      GG.heat.setOptions({max: counts.length ? counts[Math.floor(0.95 * (counts.length - 1))] : 1});
      GG.heat.setLatLngs(h.points);
      GG.heatCases = h.cases;
    }, function (e) {
      if (!e.network) { GG.heat.setLatLngs([]); GG.heatCases = 0; }  // the old points are not this filter's
      showError("heat", failText("热力图查询", e), e);
    });
  };

  /* The calendar month before the one of ``now``'s Beijing date, as the form's 期间 writes it (2026-11): a month's
     考核 is of the month just ended. By month arithmetic: "now minus 30 days" gave the current month on a 31st and
     January on 1–2 March (review57 F12). */
  function previousMonth(now) {
    var bj = new Date(now + 8 * 36e5);  // its UTC fields are the Beijing date's
    var year = bj.getUTCFullYear(), month = bj.getUTCMonth();  // 0-based: this month, so the previous one 1-based
    if (month === 0) { year -= 1; month = 12; }
    return year + "-" + (month < 10 ? "0" : "") + month;
  }

  /* 综合评价专题图: one indicator over the regions of a level for a month, classes and colours from the API. */
  function bindEvaluation() {
    var form = $("gg-eval-form");
    if (!form) { return; }
    form.elements.period.value = previousMonth(Date.now());
    /* The form's period as the API writes it: the month, its quarter (2026-Q4) or its year. */
    function periodOf() {
      var v = form.elements.period.value, span = form.elements.span.value;
      if (!v || span === "month") { return v; }
      return span === "year" ? v.slice(0, 4) : v.slice(0, 4) + "-Q" + Math.ceil(Number(v.slice(5, 7)) / 3);
    }
    /* The evaluation time (评价时点) typed, as the API takes it (a local time: Beijing time); "" = now. */
    function asOfOf() { return form.elements.as_of.value; }
    function evalQuery(fields) {
      var q = new URLSearchParams(Object.assign({period: periodOf()}, fields));
      if (asOfOf()) { q.set("as_of", asOfOf()); }
      return q;
    }
    /* A refusal of the evaluation (the map's or the download's) next to its form, zh-CN first. */
    function evalError(text, e) { fillRefusal($("gg-eval-error"), text, e); }
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var e = form.elements;
      var q = evalQuery({indicator: e.indicator.value, level: e.level.value, scheme: e.scheme.value});
      var legend = $("gg-eval-legend");
      legend.textContent = "正在计算…";
      request(C.base + "/evaluation/map?" + q.toString()).then(function (m) {
        if (GG.choropleth) { GG.map.removeLayer(GG.choropleth); }
        GG.choropleth = L.geoJSON(m.features, {
          style: function (f) {
            return {color: "#37474f", weight: 0.6, fillColor: f.properties.colour, fillOpacity: 0.65};
          },
          onEachFeature: function (f, layer) {
            var p = f.properties;
            var lines = [(p.name || "") + " " + p.code, m.indicator_label + " " +
              (p.value_label === null || p.value_label === undefined ? "无数据" : p.value_label),
              "等级 " + (p.grade || "—") + " · 排名 " + (p.rank || "—")];
            layer.bindTooltip(linesDiv(lines), {sticky: true});
            // A tap (no hover on a touch screen) or a click gives the region's figures, not the unit grid's.
            layer.on("click", function (ev) { L.DomEvent.stopPropagation(ev); popup(ev.latlng, lines); });
          }
        }).addTo(GG.map);
        GG.choropleth.bringToBack();
        evalError("");
        legend.textContent = "";
        legend.appendChild(el("b", {text: m.title + " · " + m.period}));
        // The period's cases are judged as of the evaluation time (now by default): say which.
        legend.appendChild(el("div", {cls: "gg-count", text: "截至 " + m.as_of.slice(0, 16).replace("T", " ") +
          (m.provisional ? " · " + C.provisional : "")}));
        // The figures ran through a year the holiday calendar does not know: say so beside them.
        if (m.calendar_warning) { legend.appendChild(el("div", {cls: "gg-warn", text: m.calendar_warning})); }
        legend.appendChild(el("div", {cls: "gg-count", text: (m.level_label || m.level) + " · " + m.subtitle +
          (m.better_label ? " · " + m.better_label : "")}));
        m.legend.forEach(function (c) {
          var sw = el("i", {cls: "gg-swatch"});
          sw.style.background = c.colour;
          legend.appendChild(el("div", null, sw, c.label + "(" + c.count + ")"));
        });
      }, function (err) {
        legend.textContent = "";
        evalError("专题图未生成:" + (err.network ? "无法连接服务器" : err.message), err);
      });
    });
    /* The period's table as the zh-CN workbook or the printed PDF (GET /evaluation?format=xlsx|pdf): the region
       table at the chosen level, or the departments' or a post's; the same period and 评价时点 as the map, so a
       sheet handed on is the one the map showed and downloads again the same (review49 F6). */
    var sheets = {xlsx: $("gg-eval-xlsx"), pdf: $("gg-eval-pdf")};
    function sheetLinks() {
      var e = form.elements;
      Object.keys(sheets).forEach(function (format) {
        var a = sheets[format];
        var q = evalQuery({subject: $("gg-eval-subject").value, level: e.level.value, format: format});
        if (e.period.value) { a.href = C.base + "/evaluation?" + q.toString(); } else { a.removeAttribute("href"); }
      });
    }
    form.addEventListener("change", sheetLinks);
    form.addEventListener("input", sheetLinks);
    $("gg-eval-subject").addEventListener("change", sheetLinks);
    sheetLinks();
    /* The download asked for first and saved from its answer: a refused one (a 评价时点 in the future …) is said
       beside the link, where a plain link's refusal would be a download the browser cancels without a word. */
    function download(ev) {
      var a = ev.currentTarget, href = a.getAttribute("href");
      ev.preventDefault();
      if (!href || a.getAttribute("aria-busy") === "true") { return; }
      a.setAttribute("aria-busy", "true");
      evalError("正在生成考核表…");
      fetch(href).then(function (r) {
        if (!r.ok) {
          return r.json().catch(function () { return null; }).then(function (body) {
            var e = new Error(messageOf(body, r.status));
            e.server = serverMessageOf(body, r.status);
            throw e;
          });
        }
        var named = /filename="([^"]+)"/.exec(r.headers.get("Content-Disposition") || "");
        return r.blob().then(function (blob) {
          var url = URL.createObjectURL(blob);
          var save = el("a", {href: url, download: named ? named[1] : "evaluation", hidden: "hidden"});
          document.body.appendChild(save);
          save.click();
          save.remove();
          setTimeout(function () { URL.revokeObjectURL(url); }, 60000);
          evalError("");
        });
      }, function () { var e = new Error("无法连接服务器"); e.network = true; throw e; }).catch(function (err) {
        evalError("考核表未下载:" + err.message, err);
      }).then(function () { a.removeAttribute("aria-busy"); });
    }
    sheets.xlsx.addEventListener("click", download);
    sheets.pdf.addEventListener("click", download);
    $("gg-eval-clear").addEventListener("click", function () {
      if (GG.choropleth) { GG.map.removeLayer(GG.choropleth); GG.choropleth = null; }
      $("gg-eval-legend").textContent = "";
      evalError("");
    });
  }

  GG.cellStyle = function (p) {
    var n = p.n || 0;
    return {radius: Math.min(16, 2.5 + Math.sqrt(n) / 2), weight: 0.5, color: "#ffffff", fill: true,
            fillOpacity: 0.75, fillColor: n >= 200 ? "#00695c" : n >= 50 ? "#00897b" : "#4db6ac"};
  };

  /* Clustered components of the view (zoom >= clusterMinZoom while the components layer is on). */
  GG.loadCluster = function () {
    var g = GG.componentCluster;
    if (!g) { return; }
    if (!GG.map.hasLayer(GG.components) || GG.map.getZoom() < C.clusterMinZoom) { g.clearLayers(); return; }
    var b = GG.map.getBounds();
    var bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (v) { return v.toFixed(6); });
    var seq = (GG.clusterSeq = (GG.clusterSeq || 0) + 1);
    request(C.base + "/components?limit=" + C.clusterLimit + "&bbox=" + bbox.join(",")).then(function (fc) {
      if (seq !== GG.clusterSeq) { return; }  // a newer view was asked for meanwhile
      showError("components", "");
      var markers = [];
      L.geoJSON(fc, {
        pointToLayer: function (f, ll) {
          var bad = f.properties.status && f.properties.status !== "完好";
          return L.marker(ll, {icon: L.divIcon({className: "gg-comp" + (bad ? " gg-comp-bad" : ""),
                                                iconSize: [10, 10]})});
        },
        onEachFeature: function (f, layer) {
          var p = f.properties;
          layer.bindPopup(function () {
            return linesDiv(["部件 " + (f.id || p.id || ""), "类别 " + (p.class_code || "") + " " + (p.name || ""),
                             "状态 " + (p.status || "")]);
          });
        }
      }).eachLayer(function (l) { if (l.getLatLng) { markers.push(l); } });
      g.clearLayers();
      g.addLayers(markers);
    }, function (e) { showError("components", failText("部件查询", e), e); });
  };

  function filterQuery(skip) {
    var q = new URLSearchParams();
    for (var k in GG.filters) { if (GG.filters[k] && skip.indexOf(k) < 0) { q.set(k, GG.filters[k]); } }
    return q;
  }
  function casesUrl() {
    var q = filterQuery([]);
    q.set("format", "geojson");
    q.set("limit", String(C.casesLimit));
    // 按灯色: the most urgent cases (earliest running deadline) of the whole filter on the first page, not the
    // newest page sorted; 最新上报优先: the newest reports.
    q.set("sort", $("gg-sort").value === "newest" ? "newest" : "due");
    if (GG.offset) { q.set("offset", String(GG.offset)); }
    return C.base + "/cases?" + q.toString();
  }

  /* The filter refused (by the page, or by the API): the list, its count, the pager, the light counts and the
     map show no cases, and the count and a note on the map say why — the last answer is not this filter's. */
  var NO_CASES = {type: "FeatureCollection", features: []};
  function showRefused(refused) {
    var count = $("gg-count"), note = $("gg-map-note");
    count.className = "gg-count" + (refused ? " gg-refused" : "");
    note.textContent = refused ? C.filterRefused : "";
    note.hidden = !refused;
    if (!refused) { return; }
    count.textContent = C.filterRefused;
    $("gg-list").textContent = "";
    $("gg-page").textContent = "";
    $("gg-prev").disabled = true;
    $("gg-next").disabled = true;
  }

  /* Realtime source: a refused filter empties the list and the map and says so (showRefused); a failed
     connection keeps the last good cases and says so (the poll tries again); an answer overtaken by a newer query
     (a page, a filter) is dropped. */
  GG.fetchCases = function (ok, err) {
    var seq = (GG.casesSeq += 1), url = casesUrl();
    if (GG.badFilter) {  // refused by the page itself: nothing is asked
      showRefused(true);
      COUNTS.forEach(function (k) { $("gg-n-" + k).textContent = "–"; });
      ok(NO_CASES);
      return;
    }
    // Ahead of the map's tiles in the browser's queue (six connections a host): the list is what the operator
    // reads first (review51 F2); a browser without fetch priorities ignores it.
    request(url, {priority: "high"}).then(function (fc) {
      if (seq !== GG.casesSeq) { return; }
      showError("cases", "");
      showRefused(false);
      GG.lastGood = fc;
      renderList(fc);
      ok(fc);
      if (GG.findNo && GG.findNo === GG.filters.case_no) {  // 案件编号: the one case it names opens
        GG.findNo = null;
        GG.listed = null;  // another query's answer: whether the open case is listed is not known from it
        if (fc.numberMatched === 1 && fc.features.length === 1) { GG.openCase(fc.features[0].properties.id); }
      } else {
        watchSelected(fc, url === GG.lastUrl);
      }
      GG.lastUrl = url;
    }, function (e) {
      if (seq !== GG.casesSeq) { return; }
      showError("cases", failText("案件查询", e), e);
      if (!e.network) { showRefused(true); ok(NO_CASES); return; }
      if (!GG.lastGood) {
        $("gg-count").textContent = "案件未能加载" + (e.network ? "(无法连接服务器,每 " + C.pollSeconds +
          " 秒自动重试)" : "");
      }
      err(e, e.message);
    });
    refreshLights();
  };

  /* The open case changed elsewhere (another seat, the API): the poll sees its version move. Shown again as it
     is now; while the operator fills in an action form, the form stays and a note says so (刷新 reloads). */
  function watchSelected(fc, sameQuery) {
    var shown = GG.shown;
    if (GG.selected === null || !shown || String(shown.id) !== String(GG.selected)) { return; }
    var f = (fc.features || []).filter(function (x) { return String(x.properties.id) === String(shown.id); })[0];
    // gone from the same query's answer (结案 under the 在办 filter …): changed too, to what the list cannot say
    var left = !f && sameQuery && GG.listed === shown.id;
    GG.listed = f ? shown.id : null;
    if (!left && (!f || f.properties.version === undefined || f.properties.version === shown.version)) { return; }
    if (formState()) { staleNote(shown.version, f ? f.properties.version : null); } else { reloadCase({}); }
  }
  GG.watchSelected = watchSelected;
  function staleNote(was, now) {
    var box = $("gg-detail"), old = $("gg-stale");
    if (old) { old.parentNode.removeChild(old); }
    var note = el("div", {id: "gg-stale", cls: "gg-warn", role: "status"},
      "案件已被他人更新" + (now === null ? "(已不在当前列表中)" : "(版本 " + was + "→" + now + ")") + ",请核对 ",
      el("button", {type: "button", text: "刷新", onclick: function () { reloadCase({kept: formState()}); }}));
    box.insertBefore(note, box.children[1] || null);  // under the case's heading
  }

  /* The action form as the operator left it: its action and what was typed or chosen (not the photos). */
  function formState() {
    var form = document.querySelector("#gg-action-area form");
    if (!form) { return null; }
    var values = {}, labels = {};
    Array.prototype.forEach.call(form.elements, function (x) {
      if (!x.name || x.type === "file") { return; }
      values[x.name] = x.type === "checkbox" ? x.checked : x.value;
      if (x.getAttribute("data-label")) { labels[x.name] = x.getAttribute("data-label"); }
    });
    return {action: form.getAttribute("data-action"), values: values, labels: labels,
            photos: form.elements.photos ? form.elements.photos.files.length : 0};
  }
  function restoreForm(kept) {
    var form = document.querySelector("#gg-action-area form");
    if (!form) { return; }
    Object.keys(kept.values).forEach(function (k) {
      var x = form.elements[k];
      if (!x || x.type === "file") { return; }
      if (x.type === "checkbox") { x.checked = kept.values[k]; } else { x.value = kept.values[k]; }
    });
  }

  /* Who changed the case last, from its log's last step: "李值班长(值班长) 挂账". */
  function lastStep(c) {
    var t = (c.timeline || [])[(c.timeline || []).length - 1];
    if (!t) { return ""; }
    var role = t.role ? C.roles[t.role] || C.sources[t.role] || t.role : "";
    return (t.actor || "") + (role && role !== t.actor ? "(" + role + ")" : "") + " " + (t.action_label || t.action);
  }
  /* What the operator typed and did not send, by the form's own labels, with units: "延长时间:3 工作日". */
  function unsent(kept) {
    var v = kept.values, labels = kept.labels || {};
    return Object.keys(v).filter(function (k) {
      return typeof v[k] === "string" && v[k] && C.fieldKinds[k] !== "unit" && k !== "department" &&
        k !== "disposal_type";
    }).map(function (k) {
      var text = k === "amount" && v.unit ? v[k] + " " + (C.timeUnits[v.unit] || v.unit) :
        C.fieldKinds[k] === "datetime" ? v[k].replace("T", " ") : v[k];
      return (labels[k] || C.fieldLabels[k] || (k === "note" ? "备注" : k)) + ":" + text;
    });
  }

  /* The selected case fetched again and shown as it is now, with a note (N→M: the version it was shown at and
     the one it has). opts.refused: the step was refused (409) because the case moved on — "未办理" / "未合并" —, said
     once, in the refusal's colour, with who did what meanwhile (the log's last step); opts.why: what happened
     first (the own step stands: opts.own); opts.kept: the form the operator was filling in, opened again with
     the typed text when the case still offers that action, else its unsent content listed. */
  function reloadCase(opts) {
    var id = GG.selected;
    var was = GG.shown && String(GG.shown.id) === String(id) ? GG.shown.version : null;
    return request(C.base + "/cases/" + encodeURIComponent(id), {headers: headers(false)}).then(function (c) {
      if (String(GG.selected) !== String(id)) { return; }
      if (!opts.why && !opts.refused && !opts.kept && c.version === was) { return; }  // not changed (the own step)
      var kept = opts.kept, label = kept ? actionLabel(kept.action) : "";
      var still = kept && offers(c, kept.action);
      var lines = [];
      var moved = was !== null && was !== c.version ? "(版本 " + was + "→" + c.version + ")" : "";
      var by = lastStep(c), first = "";
      if (opts.refused) {
        first = opts.refused + ":案件已被" + (by ? " " + by : "他人更新") + moved;
        lines.push(first);
      } else if (opts.own) {
        lines.push(opts.why, "已显示办理后的最新内容" + moved);
      } else {
        lines.push("案件已被他人更新" + moved + ",已显示最新内容,请核对" + (kept ? "后重新提交" : ""));
      }
      if (still) {
        lines.push("已保留填写的内容" + (kept.photos ? "(照片须重新选择)" : "") +
                   (opts.refused ? ",请核对后重新提交" : ""));
      } else if (kept) {
        var typed = unsent(kept);
        lines.push("当前状态「" + (c.state_label || C.states[c.state] || c.state) + "」不能再办理「" + label + "」" +
          (typed.length ? ",未提交的内容:" + typed.join(";") : ""));
      }
      renderCase(c, lines.join("\n"), !!opts.refused);
      markSelected(c);
      if (still) { openForm(c, kept.action); restoreForm(kept); }
      /* The note is at the top of the detail, the operator at the form far below it (a laptop's panel shows
         ~700 px): the refusal is said beside the form again, or the note is brought into view. */
      var at = still && document.querySelector("#gg-action-area .gg-form-msg");
      if ((opts.why || opts.refused) && at) {
        fillRefusal(at, opts.refused ? first + "\n上方已显示最新内容,请核对后重新提交"
                                     : opts.why + "\n上方已显示办理后的最新内容");
        at.parentNode.querySelector('button[type="submit"]').scrollIntoView({block: "nearest"});  // and 提交
        at.scrollIntoView({block: "nearest"});
      } else if (opts.why || opts.refused) {
        noteInView();
      }
    }, function (e) {
      if (String(GG.selected) !== String(id)) { return; }
      var box = $("gg-detail"), err = el("div", {cls: "gg-error"});
      fillRefusal(err, failText("案件 #" + id + " 刷新", e), e);
      box.insertBefore(err, box.children[1] || null);
    });
  }
  GG.reloadCase = reloadCase;
  /* The note at the top of the detail (已办理 …, or why not), brought into view: the operator was at the form. */
  function noteInView() {
    var note = $("gg-detail").querySelector(".gg-note, .gg-refusal");
    if (note) { note.scrollIntoView({block: "nearest"}); }
  }

  var COUNTS = ["green", "yellow", "red", "suspended"];  // the lights and 挂账 (no light: its clock is stopped)
  /* Counts per light of the filtered cases (the light filter itself aside: the counts are what it chooses from). */
  function refreshLights() {
    request(C.base + "/cases/lights?" + filterQuery(["light"]).toString(), {priority: "high"}).then(function (n) {
      if (GG.badFilter) { return; }  // asked before the filter was refused: not its counts
      showError("lights", "");
      COUNTS.forEach(function (k) { $("gg-n-" + k).textContent = n[k] === undefined ? "–" : n[k]; });
    }, function (e) {
      COUNTS.forEach(function (k) { $("gg-n-" + k).textContent = "?"; });
      showError("lights", e.network ? "" : failText("红黄绿灯统计", e), e);  // a failed connection: said once above
    });
  }

  GG.caseStyle = function (f) {
    var p = f.properties;
    return {radius: 7, weight: 3, color: C.stateColours[p.state] || GREY, opacity: 1, fillOpacity: 0.95,
            fillColor: COLOURS[p.light] || "#ffffff"};
  };
  GG.caseMarker = function (f, latlng) { return L.circleMarker(latlng, GG.caseStyle(f)); };
  GG.bindCase = function (f, layer) {
    var p = f.properties;
    // A node, not a string: Leaflet puts a string in as HTML, and case numbers come from other systems too.
    layer.bindTooltip(linesDiv([(p.case_no || ("#" + p.id)) + " " + (p.class_name || p.class_code) + " · " +
      (p.state_label || p.state)]));
    layer.on("click", function (e) { L.DomEvent.stopPropagation(e); GG.openCase(p.id); });
  };
  GG.componentStyle = function (p) {
    var bad = p.status && p.status !== "完好";
    return {radius: 4, weight: 1, color: "#ffffff", fill: true, fillOpacity: 0.9,
            fillColor: bad ? "#ef6c00" : "#00897b"};
  };

  /* The list's order (排序): red → yellow → green, newest first within a light; or newest report first. */
  function byLight(a, b) {
    var sa = SEVERITY[a.properties.light], sb = SEVERITY[b.properties.light];
    sa = sa === undefined ? 3 : sa; sb = sb === undefined ? 3 : sb;
    return sa - sb || b.properties.id - a.properties.id;
  }
  function byNewest(a, b) {
    var ta = String(a.properties.created_at || ""), tb = String(b.properties.created_at || "");
    return ta < tb ? 1 : ta > tb ? -1 : b.properties.id - a.properties.id;
  }
  /* 上报 MM-DD HH:mm: the report time, short (the year is the list's own). */
  function shortTime(iso) { return iso ? String(iso).slice(5, 16).replace("T", " ") : "—"; }
  function renderList(fc) {
    var newest = $("gg-sort").value === "newest";
    var feats = (fc.features || []).slice().sort(newest ? byNewest : byLight);
    var list = $("gg-list");
    var focused = document.activeElement && document.activeElement.parentNode === list ?
      document.activeElement.getAttribute("data-id") : null;
    list.textContent = "";
    feats.forEach(function (f) {
      var p = f.properties;
      var li = el("li", {"data-id": p.id, tabindex: "0", onclick: function () { GG.openCase(p.id); }},
        dot(p.light), el("b", {text: p.case_no || ("#" + p.id)}), " ",
        (p.class_name || p.class_code || ""), " · ", (p.state_label || p.state || ""),
        el("br"), el("small", {cls: "gg-when", text: "上报 " + shortTime(p.created_at) +
          (p.due_at ? " · 时限 " + fmtTime(p.due_at) : "") + (p.address ? " · " + p.address : "")}));
      if (String(p.id) === String(GG.selected)) { li.className = "gg-sel"; li.setAttribute("aria-current", "true"); }
      list.appendChild(li);
      if (focused === String(p.id)) { li.focus({preventScroll: true}); }  // a poll does not take the keyboard away
    });
    var total = fc.numberMatched === undefined ? feats.length : fc.numberMatched;
    var first = feats.length ? GG.offset + 1 : 0, last = GG.offset + feats.length;
    var paged = total > feats.length || GG.offset > 0;
    GG.countedFor = GG.filters;  // the filter this count is of (a grid check answering later appends to it)
    $("gg-count").textContent = "共 " + total + " 件" +
      (paged ? "(地图与列表显示第 " + first + "–" + last + " 件)" : "") +
      (GG.filters.case_no ? " · 按案件编号「" + GG.filters.case_no + "」查找" +
        (total ? "" : ":没有此编号的案件") : "") + gridNote() +
      (paged && !newest ? " · 按处置时限分页,页内按灯色" : "");  // pages: earliest deadline first (sort=due)
    $("gg-page").textContent = paged ? "第 " + (Math.floor(GG.offset / C.casesLimit) + 1) + " / " +
      Math.max(1, Math.ceil(total / C.casesLimit)) + " 页" : "";
    $("gg-prev").disabled = GG.offset <= 0;
    $("gg-next").disabled = last >= total;
  }
  /* A grid filter's code that names no grid (asked of /grids/{code} once, when the filter is applied). */
  function gridNote() {
    var g = GG.filters.grid;
    return g && GG.gridMissing === g ? " · 网格编码「" + g + "」:没有此网格编码" : "";
  }
  /* The filtered grid outlined and brought into view (its feature from the same /grids/{code} answer). */
  function clearGridOutline() {
    if (GG.gridOutline) { GG.map.removeLayer(GG.gridOutline); GG.gridOutline = null; }
  }
  function checkGrid(code) {
    GG.gridMissing = null;
    clearGridOutline();
    request(C.base + "/grids/" + encodeURIComponent(code)).then(function (f) {
      if (GG.filters.grid !== code || !f || !f.geometry) { return; }
      GG.gridOutline = L.geoJSON(f, {interactive: false,
        style: {color: "#6a1b9a", weight: 3, dashArray: "6 4", fill: false}}).addTo(GG.map);
      GG.map.fitBounds(GG.gridOutline.getBounds(), {padding: [24, 24], maxZoom: 17});
    }, function (e) {
      if (e.status !== 404 || GG.filters.grid !== code) { return; }
      GG.gridMissing = code;
      var count = $("gg-count");
      // Only to the count of this filter: the list of the one before may still be shown (its count is not this).
      if (!GG.badFilter && GG.countedFor === GG.filters && /^共 /.test(count.textContent) &&
          count.textContent.indexOf(gridNote()) < 0) {
        count.textContent += gridNote();
      }
    });
  }
  GG.page = function (step) {
    GG.offset = Math.max(0, GG.offset + step * C.casesLimit);
    if (GG.cases) { GG.cases.update(); }
  };

  function row(label, value) {
    var empty = value === null || value === undefined || value === "";
    return [el("dt", {text: label}), el("dd", null, empty ? "—" : value)];
  }
  function dl(rows) {
    var d = el("dl");
    rows.forEach(function (r) { if (r) { d.appendChild(r[0]); d.appendChild(r[1]); } });
    return d;
  }
  /* Where a 提级 went (the API's escalation object, null at level 3): tier, grid and its 网格长. */
  function escalationText(e) {
    var grid = e.grid_name ? e.grid_name + (e.grid_code ? "(" + e.grid_code + ")" : "") : e.grid_code;
    var leader = e.leader_name ? "网格长 " + e.leader_name + (e.leader_phone ? " " + e.leader_phone : "") : null;
    return [e.label, grid, leader].filter(function (x) { return x; }).join(" · ");
  }
  /* 处置方式 of a case: its type, the catalogue's limit for it and 紧急 (a red word). */
  function disposalTypes(c) { return ((C.classes[c.class_code] || {}).types) || []; }
  function disposalText(c) {
    if (!c.disposal_type && !c.urgent) { return null; }
    var t = disposalTypes(c).filter(function (x) { return x.type === c.disposal_type; })[0];
    // Parts joined by " · ", never nested brackets (the limit's unit may carry its own: 小时(自然时)); a type
    // named 紧急 is itself the red word, not followed by a second 紧急.
    var named = c.urgent && c.disposal_type === "紧急";
    var span = el("span", null, named ? el("b", {cls: "gg-urgent", text: "紧急"}) : c.disposal_type || null);
    if (t) { span.appendChild(document.createTextNode((c.disposal_type ? " · " : "") + "时限 " + t.limit)); }
    if (c.urgent && !named) {
      if (span.childNodes.length) { span.appendChild(document.createTextNode(" · ")); }
      span.appendChild(el("b", {cls: "gg-urgent", text: "紧急"}));
    }
    return span;
  }

  /* Open a case in the detail panel. Only the answer for the case selected last is shown: a slow answer for a
     case the operator has since left is dropped (its actions would act on the wrong case). */
  GG.openCase = function (id) {
    GG.selected = id;
    var box = $("gg-detail");
    box.hidden = false;
    box.textContent = "正在加载案件 #" + id + "…";
    Array.prototype.forEach.call($("gg-list").children, function (li) {
      var sel = li.getAttribute("data-id") === String(id);
      li.className = sel ? "gg-sel" : "";
      if (sel) { li.setAttribute("aria-current", "true"); } else { li.removeAttribute("aria-current"); }
    });
    function current() { return String(GG.selected) === String(id); }
    return request(C.base + "/cases/" + encodeURIComponent(id), {headers: headers(false)}).then(function (c) {
      if (!current()) { return; }
      renderCase(c);
      markSelected(c);
      if (GG.map && c.lat !== null && c.lon !== null && c.lat !== undefined) {
        GG.map.setView([c.lat, c.lon], Math.max(GG.map.getZoom(), 16));
      }
      showDetail();
    }, function (e) {
      if (!current()) { return; }
      box.textContent = "";
      var err = el("div", {cls: "gg-error"});
      fillRefusal(err, failText("案件 #" + id + " 查询", e), e);
      box.appendChild(err);
      showDetail();
    });
  };

  /* The detail below the list is off screen on a laptop (1366×768): scroll the panel to it. */
  function showDetail() {
    var panel = $("gg-panel"), box = $("gg-detail");
    var pr = panel.getBoundingClientRect(), br = box.getBoundingClientRect();
    if (br.top < pr.top || br.top > pr.top + pr.height * 0.4) { panel.scrollTop += br.top - pr.top - 8; }
  }

  /* The selected case ringed on the map (above the case markers, not clickable). */
  function markSelected(c) {
    if (!GG.map) { return; }
    if (GG.selMarker) { GG.map.removeLayer(GG.selMarker); GG.selMarker = null; }
    if (c.lat === null || c.lat === undefined || c.lon === null || c.lon === undefined) { return; }
    GG.selMarker = L.circleMarker([c.lat, c.lon], {radius: 14, weight: 4, color: "#00b0ff", opacity: 1,
                                                   fill: false, interactive: false, className: "gg-selected"});
    GG.selMarker.addTo(GG.map);
    GG.selMarker.bringToFront();
    GG.selMarker.caseId = c.id;
  }

  /* 结案 of a closed case: when, and 按期结案/超期结案 as the service judged it (closed_on_time: the evaluation's own
     rule, so the console and 按期结案率 agree); nothing is judged here. */
  function closedText(c) {
    var judged = c.closed_on_time === true ? " · 按期结案" : c.closed_on_time === false ? " · 超期结案" : "";
    return fmtTime(c.closed_at) + judged;
  }
  /* Timeline index → the labels of the nodes that step closed late (the service's on_time). */
  function lateSteps(c) {
    var late = {};
    (c.nodes || []).forEach(function (n) {
      if (n.on_time === false && n.closed_step !== null && n.closed_step !== undefined) {
        (late[n.closed_step] = late[n.closed_step] || []).push(n.label || n.node);
      }
    });
    return late;
  }
  /* Why the other routing rules were not chosen: the API's own zh words per rule (cases stored before they were
     zh keep their English ones). */
  function otherRules(routing) {
    var d = routing.decision || {}, cands = d.candidates || [];
    if (!cands.length) { return null; }
    var list = el("ol", {cls: "gg-rules"});
    cands.forEach(function (k) {
      var chosen = k.rule_id === d.rule_id;
      list.appendChild(el("li", null, "规则 " + k.rule_id + " → " + (C.departments[k.department] || k.department) +
        (chosen ? " · 采用" : k.matched ? " · 符合" : " · 不符合"), el("br"), el("small", {text: k.why})));
    });
    return el("details", {cls: "gg-other-rules"}, el("summary", {text: "其他规则(" + cands.length + " 条)"}), list);
  }
  /* What a photo's EXIF says of it — when it was taken, how far from the case — flagged (yellow, with why) when it
     was taken over a day before its step or more than C.evidence.farM away: a gallery photo of another day or place? */
  function photoExif(p) {
    var bits = [], warn = [];
    if (p.taken_at) {
      bits.push("拍摄 " + fmtTime(p.taken_at));
      if (p.at && new Date(p.at) - new Date(p.taken_at) > C.evidence.oldMs) { warn.push("早于办理一天以上"); }
    }
    if (p.gps_distance_m !== null && p.gps_distance_m !== undefined) {
      bits.push("距案件 " + p.gps_distance_m + " 米");
      if (p.gps_distance_m > C.evidence.farM) { warn.push("拍摄地点远离案件"); }
    }
    if (!bits.length) { return null; }
    return el("small", {cls: "gg-photo-exif" + (warn.length ? " gg-photo-warn" : ""),
                        title: warn.length ? "请核对:" + warn.join(",") : "照片 EXIF 信息",
                        text: bits.join(" · ") + (warn.length ? " ⚠ " + warn.join(",") : "")});
  }
  function photoLabel(p) {
    var kind = C.photoKinds[p.kind] || p.kind || "照片";
    return p.kind === "evidence" && p.action ? (C.actions[p.action] || p.action) + " · " + kind : kind;
  }

  /* 合并 (POST /cases/{id}/merge) voids the case through the state machine: offered where 作废 is, when the case
     lists possible duplicates to keep instead. */
  var MERGE = "merge";
  function offers(c, action) {
    var allowed = c.allowed_actions || [];
    if (action !== MERGE) { return allowed.indexOf(action) >= 0; }
    return allowed.indexOf("void") >= 0 && !!((c.routing || {}).duplicates || []).length;
  }
  function actionLabel(action) { return action === MERGE ? "合并" : C.actions[action] || action; }
  function openForm(c, action) { if (action === MERGE) { mergeForm(c); } else { actionForm(c, action); } }
  function caseLink(id, no) {
    return el("a", {href: "#", "data-case": id, text: no || "#" + id,
                    onclick: function (ev) { ev.preventDefault(); GG.openCase(id); }});
  }
  function distance(m) { return m === null || m === undefined ? "—" : Number(m).toFixed(m < 10 ? 1 : 0) + " 米"; }
  /* The kept case's number, from the merge's own step (the case holds only the id). */
  function mergedInto(c) {
    var t = (c.timeline || []).filter(function (x) {
      return (x.details || {}).duplicate_of === c.duplicate_of;
    }).pop();
    return t ? t.details.duplicate_of_case_no : null;
  }
  /* The reports merged into a kept case: each by its number (a link), where it came from and when. */
  function mergedList(dups) {
    var span = el("span", {cls: "gg-merged"});
    dups.forEach(function (d, i) {
      var from = d.source_label || d.source || "";
      if (d.reporter && d.reporter !== d.source_label) { from += (from ? " · " : "") + d.reporter; }
      span.appendChild(el("span", {"data-id": d.id}, i ? "、" : null, caseLink(d.id, d.case_no),
        " (" + (from ? from + " · " : "") + shortTime(d.reported_at) + ")"));
    });
    return span;
  }
  /* A duplicate's state as it is now (the list holds it as it was at the report). */
  function dupStates(c, list) {
    Array.prototype.forEach.call(list.children, function (li) {
      request(C.base + "/cases/" + encodeURIComponent(li.getAttribute("data-id"))).then(function (d) {
        if (String(GG.selected) !== String(c.id)) { return; }
        li.querySelector(".gg-dup-state").textContent = d.state_label || C.states[d.state] || d.state;
      }, function () {});
    });
  }

  function renderCase(c, note, refused) {
    var box = $("gg-detail");
    box.textContent = "";
    GG.shown = {id: c.id, version: c.version};
    var routing = c.routing || {};
    var hasLonLat = c.lon !== null && c.lon !== undefined;
    box.appendChild(el("h2", null, dot(c.light), (c.case_no || "#" + c.id) + " " + (c.class_name || "")));
    if (note) { box.appendChild(el("div", {cls: refused ? "gg-error gg-refusal" : "gg-note", text: note})); }
    var esc = c.escalation, level = C.escalationLevels[String(c.escalation_level)];
    box.appendChild(dl([
      row("类别", (c.class_name || "") + "(" + c.class_code + ")"),
      row("处置方式", disposalText(c)),
      row("状态", (c.state_label || c.state) + (c.node ? " · 环节 " + (c.node_label || c.node) : "")),
      row("位置", (c.address || "") + " " + (hasLonLat ? "(" + Number(c.lon).toFixed(6) + ", " +
        Number(c.lat).toFixed(6) + ")" : "")),
      c.accuracy_m ? row("位置精度", "约 " + Math.round(c.accuracy_m) + " 米" +
        (c.accuracy_m > C.maxGpsErrorM ? "(超过 " + C.maxGpsErrorM + " 米,位置可能不准)" : "")) : null,
      row("单元网格", c.unit_grid_code),
      row("一级网格", el("span", {id: "gg-tier1", text: c.street_code || "—"})),
      row("二级网格", el("span", {id: "gg-tier2", text: c.community_code || "—"})),
      row("三级网格", el("span", {id: "gg-tier3", text: c.tier3_code || "—"})),
      row("协调层级", level ? level + (c.escalation_level < 3 ? " · 已提级" : "") : null),
      esc ? row("提级至", escalationText(esc)) : null,
      row("处置部门", c.department_name ? c.department_name + "(" + c.department_code + ")" : c.department_code),
      row("派遣依据", (routing.decision || {}).explanation || null),
      (routing.decision || {}).candidates && routing.decision.candidates.length ? row("", otherRules(routing)) : null,
      c.closed_at ? row(c.state === "closed" ? "结案" : (C.states[c.state] || c.state) + "于", closedText(c)) :
        row("时限", C.openStates.indexOf(c.state) < 0 ? "不计时(" + (c.state_label || c.state) + ")" :
          fmtTime(c.due_at) + (c.light ? " · " + LIGHTS[c.light] : " · 未计时")),
      c.calendar_warning ? row("日历提示", c.calendar_warning) : null,
      row("来源", (c.source_label || c.source || "") +
        (c.reporter && c.reporter !== c.source_label ? " · " + c.reporter : "")),
      c.external_ref ? row("来源单号", c.external_ref) : null,
      row("描述", c.description),
      c.duplicate_of ? row("合并到", caseLink(c.duplicate_of, mergedInto(c))) : null,
      (c.merged_duplicates || []).length ? row("合并的重复案件", mergedList(c.merged_duplicates)) : null
    ]));
    var dups = routing.duplicates || [];
    if (dups.length) {
      box.appendChild(el("h3", {text: "疑似重复案件(" + dups.length + " 件,上报时同类、相近)"}));
      var du = el("ul", {cls: "gg-dups"});
      dups.forEach(function (d) {
        du.appendChild(el("li", {"data-id": d.id}, caseLink(d.id, d.case_no), " · ",
          el("span", {cls: "gg-dup-state", text: C.states[d.state] || d.state || ""}),
          " · 相距 " + distance(d.distance_m) + " · 上报 " + shortTime(d.created_at)));
      });
      box.appendChild(du);
      dupStates(c, du);
    }
    if (c.timeline && c.timeline.length) {
      box.appendChild(el("h3", {text: "办理过程"}));
      var ol = el("ol", {cls: "gg-timeline"}), late = lateSteps(c);
      c.timeline.forEach(function (t, i) {
        var role = t.role ? C.roles[t.role] || C.sources[t.role] || t.role : "";
        ol.appendChild(el("li", null, fmtTime(t.at) + " " + (t.action_label || t.action) + " · " + (t.actor || "") +
          (role && role !== t.actor ? "(" + role + ")" : "") +  // a public source reports as itself: named once
          (t.to_state ? " → " + (C.states[t.to_state] || t.to_state) : "") + stepTerms(t) +
          (t.note && t.note !== (t.details || {}).reason ? " · " + t.note : ""),  // a merge's note is its reason
          late[i] ? el("b", {cls: "gg-late", text: " · " + late[i].join("、") + "超时"}) : null));
      });
      box.appendChild(ol);
    }
    if (c.photos && c.photos.length) {
      box.appendChild(el("h3", {text: "照片"}));
      var ph = el("div", {cls: "gg-photos"});
      c.photos.forEach(function (p) {  // the small copy when the service has one; the link opens the original
        var label = photoLabel(p);
        ph.appendChild(el("figure", {"data-kind": p.kind || ""},
          el("a", {href: p.url, target: "_blank", rel: "noopener", title: label + "(原图)"},
            el("img", {src: p.thumb_url || p.url, alt: label, loading: "lazy"})),
          el("figcaption", null, label, photoExif(p))));
      });
      box.appendChild(ph);
    }
    if (c.documents && c.documents.length) {
      box.appendChild(el("h3", {text: "文书"}));
      c.documents.forEach(function (d) {
        var what = C.documentLabels[d.kind] || d.kind;
        box.appendChild(el("div", null, el("a", {href: d.url, target: "_blank", text: what + " " + (d.number || "")}),
          d.pdf_url ? " · " : null,
          d.pdf_url ? el("a", {href: d.pdf_url, target: "_blank", text: "PDF", title: "下载 PDF"}) : null));
      });
    }
    box.appendChild(el("h3", {text: "可办理操作(" + (C.roles[$("gg-role").value] || $("gg-role").value) + ")"}));
    var acts = el("div", {cls: "gg-actions"});
    var allowed = c.allowed_actions || [];
    var otherDept = $("gg-role").value === "department" && c.department_code &&
      c.department_code !== $("gg-dept").value;
    var noDept = $("gg-role").value === "department" && !$("gg-dept").value;
    if (!allowed.length) {
      acts.appendChild(el("span", {text: noDept ? "请先选择所属部门(部门处置人员只办理派遣给本部门的案件)" :
        otherDept ? "此案件派遣给「" + depName(c.department_code) + "」,不是本部门的案件" : "当前角色无可办理操作"}));
    }
    allowed.forEach(function (a) {
      acts.appendChild(el("button", {type: "button", "data-action": a, onclick: function () { actionForm(c, a); }},
        C.actions[a] || a));
    });
    if (offers(c, MERGE)) {
      acts.appendChild(el("button", {type: "button", "data-action": MERGE, onclick: function () { mergeForm(c); }},
        "合并到…"));
    }
    box.appendChild(acts);
    box.appendChild(el("div", {id: "gg-action-area"}));
    if (hasLonLat) { tierNames(c); }
  }

  /* The case holds tier codes; their names come from the grid service (same origin). */
  function tierNames(c) {
    request(C.base + "/grids/locate?datum=cgcs2000&lon=" + c.lon + "&lat=" + c.lat).then(function (g) {
      ["tier1", "tier2", "tier3"].forEach(function (k) {
        var span = $("gg-" + k);
        if (span && g[k] && String(GG.selected) === String(c.id)) {
          span.textContent = g[k].name + "(" + g[k].code + ")";
        }
      });
    }, function () {});
  }

  /* The input of one payload field, by name and kind (gisgrid.workflow FIELD_KINDS): the department and 处置方式
     as selects, a yes/no as a checkbox, a number, a time unit, a date and time. */
  function fieldInput(name, c, action, isRequired) {
    var kind = C.fieldKinds[name] || "text";
    if (name === "department") {
      // The service's 派遣建议: the routing's own department, never one that has returned the case (回退).
      var suggested = action === "dispatch" ? (c.dispatch_suggestion || {}).department : null;
      var s = el("select", {name: name}, el("option", {value: "", text: isRequired ? "请选择部门" : "(不改派)"}));
      var codes = Object.keys(C.departments).filter(function (code) { return code !== suggested; });
      if (suggested && C.departments[suggested]) { codes.unshift(suggested); }  // the suggestion listed first
      codes.forEach(function (code) {  // the suggestion named first in its label too; the code aside
        s.appendChild(el("option", {value: code, title: code,
                                    text: (code === suggested ? "【派遣建议】" : "") + C.departments[code]}));
      });
      if (suggested && C.departments[suggested]) { s.value = suggested; }  // the routing suggestion preselected
      return s;
    }
    if (name === "disposal_type") {  // the class's types and limits from the event catalogue, the case's own first
      var d = el("select", {name: name});
      disposalTypes(c).forEach(function (t) {
        var mark = t.urgent && t.type !== "紧急" ? " · 紧急" : "";  // the type named 紧急 says it already
        d.appendChild(el("option", {value: t.type, text: t.type + " · 时限 " + t.limit + mark}));
      });
      if (c.disposal_type) { d.value = c.disposal_type; }
      return d;
    }
    if (name === "class_code") {  // 核实/立案's correction: a class of the case's scheme, none to keep the reported one
      var keep = "(不更正:" + (c.class_name || c.class_code) + ")";
      var k = el("select", {name: name}, el("option", {value: "", text: keep}));
      Object.keys(C.classes).sort().forEach(function (code) {
        var cls = C.classes[code];
        if (cls.scheme !== c.scheme || code === c.class_code) { return; }
        k.appendChild(el("option", {value: code, text: cls.name + "(" + code + ")"}));
      });
      return k;
    }
    if (kind === "bool") { return el("input", {name: name, type: "checkbox", value: "true"}); }
    if (kind === "number") { return el("input", {name: name, type: "number", min: "0", step: "any", size: "6"}); }
    if (kind === "unit") {
      var u = el("select", {name: name});
      Object.keys(C.timeUnits).forEach(function (k) { u.appendChild(el("option", {value: k, text: C.timeUnits[k]})); });
      if (C.timeUnits.working_days) { u.value = "working_days"; }  // the service's own default
      return u;
    }
    if (kind === "datetime") { return el("input", {name: name, type: "datetime-local"}); }
    return textArea(name);
  }
  /* A text of the form. No maxlength: a paste over the service's limit would be cut without a word; a counter
     shows up near the limit instead, and 提交 refuses a longer text (tooLong) saying how long it is. */
  function textArea(name) {
    var t = el("textarea", {name: name, rows: "2"}), limit = C.textLimits[name];
    if (!limit) { return t; }
    var counter = el("span", {cls: "gg-hint gg-chars", hidden: "hidden"});
    t.addEventListener("input", function () {
      var n = chars(t.value);
      counter.textContent = n + " / " + limit + " 字" + (n > limit ? "(超出 " + (n - limit) + " 字)" : "");
      counter.className = "gg-hint gg-chars" + (n > limit ? " gg-late" : "");
      counter.hidden = n < limit * 0.9;
    });
    return el("span", {cls: "gg-text"}, t, counter);
  }
  /* Characters as the service counts them (code points: a character outside the BMP is one, not two). */
  function chars(text) { return Array.from(text || "").length; }
  /* The form's texts over their limit, by the form's own labels: "备注:最多 2000 字(当前 2100)". */
  function tooLong(form, labels) {
    return Array.prototype.filter.call(form.querySelectorAll("textarea"), function (t) {
      return C.textLimits[t.name] && chars(t.value) > C.textLimits[t.name];
    }).map(function (t) {
      return (labels[t.name] || C.fieldLabels[t.name] || t.name) + ":最多 " + C.textLimits[t.name] + " 字(当前 " +
        chars(t.value) + ")";
    });
  }

  /* Labels the form gives a field where the generic one says less (派遣: a note on a first dispatch, the reason
     on a re-dispatch of a case the department returned). */
  var FORM_LABELS = {supervise: {flagged: "重点督办", reason: "督办说明"}, check: {result: "核查结果"},
                     reject: {reason: "不予立案原因"}, void: {reason: "作废原因"}, return: {reason: "回退原因"},
                     rework: {reason: "返工原因"}, suspend: {reason: "挂账原因"}, escalate: {reason: "提级原因"},
                     request_extension: {reason: "延期原因"}, approve_extension: {reason: "批准说明"},
                     deny_extension: {reason: "驳回原因"}};
  function formLabel(c, action, f) {
    if (action === "dispatch" && f === "reason") { return c.state === "returned" ? "改派原因" : "派遣说明"; }
    return (FORM_LABELS[action] || {})[f] || C.fieldLabels[f] || f;
  }
  var HINTS = {
    supervise: "未超时的案件须勾选重点督办;已超时的案件由系统判定。",
    request_extension: "填写延长时间(数量和单位)或新的处置时限,可不填由审批人定。",
    approve_extension: "填写延长时间(数量和单位)或新的处置时限,二者选一;都不填则按申请批准。"
  };
  function fieldValue(form, name) {
    var input = form.elements[name], kind = C.fieldKinds[name] || "text";
    if (!input) { return undefined; }
    if (kind === "bool") { return input.checked ? true : undefined; }
    if (kind === "number") { return input.value === "" ? undefined : Number(input.value); }
    return input.value ? input.value : undefined;
  }

  /* What a step decided, in words: where it sent the case (派遣/返工: the department; 回退: the department that
     returned it, the log's department of the step), the reason, the time asked for or granted, the type, where it
     was escalated, why it was supervised. Departments by their catalogue names, as elsewhere in the console. */
  function depName(code) { return C.departments[code] || code; }
  function stepTerms(t) {
    var d = t.details || {}, parts = [];
    if (t.action === "dispatch" && d.department) {
      parts.push("派往 " + depName(d.department));
      if (d.returned_by) { parts.push("改派自 " + depName(d.returned_by)); }
    }
    if (t.action === "rework" && d.department) {
      parts.push("返工至 " + depName(d.department) + (d.rework_count ? "(第 " + d.rework_count + " 次返工)" : ""));
    }
    if (t.action === "return" && t.department_code) { parts.push("回退部门 " + depName(t.department_code)); }
    if (t.action === "reopen" && d.kept_case_no) {
      // The log's reason is zh and English (主案 … 作废,重新受理 / kept case … voided: …): said here in zh only.
      parts.push("主案 " + d.kept_case_no + " " + (C.states[d.kept_state] || d.kept_state || "") + ",重新受理");
    } else if (d.reason) { parts.push(String(d.reason)); }
    if (d.result) { parts.push("结果:" + d.result); }
    if (d.amount !== undefined) { parts.push("延长 " + d.amount + " " + (C.timeUnits[d.unit] || d.unit || "工作日")); }
    if (d.new_due_at) {
      var was = d.previous_due_at ? "时限 " + fmtTime(d.previous_due_at) + " → " : "新时限 ";
      parts.push(was + fmtTime(d.new_due_at));
    }
    if (d.as_requested) { parts.push("按申请批准"); }
    if (d.disposal_type) { parts.push("处置方式 " + d.disposal_type); }
    // The live 提级 names the target grid and its 网格长; demo and imported ones hold only the level.
    var lvl = d.to_level !== undefined && d.to_level !== null ? C.escalationLevels[String(d.to_level)] : null;
    if (d.to_grid) {
      parts.push("提级至 " + (lvl ? lvl + " " : "") + (d.to_grid_name || d.to_grid) +
        (d.to_leader ? " · 网格长 " + d.to_leader : ""));
    } else if (t.action === "escalate" && (lvl || d.to_level !== undefined && d.to_level !== null)) {
      parts.push("提级至 " + (lvl || "第 " + d.to_level + " 级网格"));
    }
    if (t.action === "supervise" && d.overdue) { parts.push("超时督办"); }
    if (d.flagged) { parts.push("重点督办"); }
    // 挂账, 处置 or 回退 of a case whose 延期申请 was pending: the request is withdrawn with it.
    if ((t.effects || []).indexOf("withdraw_extension_request") >= 0) { parts.push("延期申请已撤回"); }
    return parts.length ? " · " + parts.join(" · ") : "";
  }

  /* A 409 because the case is not as shown (a stale version, or a state it has left), not a rule of the state it
     is in (督办 on a case not overdue …): the case is fetched again. */
  function movedOn(e, c) {
    var body = e.body || {}, items = (body.detail || {}).items, first = (Array.isArray(items) && items[0]) || {};
    if (e.status !== 409) { return false; }
    return body.error === "stale_version" ||
      (body.error === "transition_not_allowed" && !!first.state && first.state !== c.state);
  }

  function actionForm(c, action) {
    var area = $("gg-action-area");
    area.textContent = "";
    var required = (C.required[action] || []).filter(function (f) { return f !== "after_photo"; });
    // 返工 goes back to the same department by rule: its optional department is an API check, not a choice.
    var optional = (C.optional[action] || []).filter(function (f) {
      return !(action === "rework" && f === "department");
    });
    var extension = action === "request_extension" || action === "approve_extension";
    /* 延期: amount + unit or new_due_at (approval: one of them; the service turns an amount into the deadline). */
    var fields = required.concat(optional.filter(function (f) { return required.indexOf(f) < 0; }));
    /* novalidate: the browser's own bubble for a required field is not shown; the form's message names it. */
    var form = el("form", {cls: "gg-form", "data-action": action, novalidate: "novalidate"},
                  el("b", {text: C.actions[action] || action}));
    var labels = {note: "备注"}, musts = [];  // the form's own words for each field; its required fields
    if (HINTS[action]) { form.appendChild(el("div", {cls: "gg-hint", text: HINTS[action]})); }
    fields.forEach(function (f) {
      if (extension && (f === "unit" || f === "new_due_at")) { return; }  // placed with amount below
      var must = required.indexOf(f) >= 0 && !(extension && f === "new_due_at");
      var label = formLabel(c, action, f);
      if (extension && f === "amount") {
        form.appendChild(el("label", null, "延长 ", el("span", {cls: "gg-inline"}, fieldInput("amount", c, action),
          fieldInput("unit", c, action))));
        if (fields.indexOf("new_due_at") >= 0) {
          form.appendChild(el("label", null, "或 " + C.fieldLabels.new_due_at + " ",
            fieldInput("new_due_at", c, action)));
        }
        return;
      }
      var input = fieldInput(f, c, action, must);
      labels[f] = label;
      (input.querySelector ? input.querySelector("textarea") || input : input).setAttribute("data-label", label);
      if (must) {  // marked in words and for assistive technology; checked on 提交 (missingFields)
        (input.querySelector ? input.querySelector("textarea") || input : input).required = true;
        musts.push(f);
      }
      if (input.type === "checkbox") {
        form.appendChild(el("label", null, input, " " + label + (must ? "(必填)" : "")));
      } else {
        form.appendChild(el("label", null, label + (must ? "(必填)" : f === "disposal_type" ? "" : "(选填)") + " ",
                            input));
      }
      var sug = c.dispatch_suggestion || {};
      if (action === "dispatch" && f === "department" && C.departments[sug.department]) {
        form.appendChild(el("div", {cls: "gg-hint gg-suggest", text: "派遣建议:" +
          C.departments[sug.department] + (sug.explanation ? "(依据:" + sug.explanation + ")" : "")}));
      } else if (action === "dispatch" && f === "department" && sug.hint) {  // its department returned the case
        form.appendChild(el("div", {cls: "gg-hint gg-suggest", text: sug.hint}));
      }
    });
    form.appendChild(el("label", null, "备注(选填) ", textArea("note")));
    /* Photos go with the action on the form endpoint, which takes every payload field as the JSON one does: 处置
       needs its after-photo, any other action may carry evidence (返工 with what the check found). */
    var needsPhoto = (C.required[action] || []).indexOf("after_photo") >= 0;
    // The page's own button and count, not the browser's control (「Choose Files」 on an English desk PC).
    var files = el("input", {name: "photos", type: "file", accept: "image/*", multiple: "multiple"});
    var chosen = el("span", {cls: "gg-file-chosen", text: "未选择照片"});
    files.addEventListener("change", function () {
      var names = Array.prototype.map.call(files.files, function (f) { return f.name; });
      chosen.textContent = names.length ? "已选 " + names.length + " 张:" + names.join("、") : "未选择照片";
    });
    form.appendChild(el("div", {cls: "gg-file-row"}, (needsPhoto ? "处置后照片(必填) " : "照片 "),
      el("label", {cls: "gg-file"}, "选择照片…", files), " ", chosen));
    var msg = el("div", {cls: "gg-error gg-form-msg", hidden: "hidden"});
    form.appendChild(msg);
    form.appendChild(el("button", {type: "submit", text: "提交"}));
    /* One key per form: 提交 again after a lost answer (无法连接服务器, a double click) takes the step once, and the
       answer is the case after it; a refused step stored nothing under the key. */
    var key = uuid();
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var payload = {};
      fields.forEach(function (f) { var v = fieldValue(form, f); if (v !== undefined) { payload[f] = v; } });
      if (extension && payload.amount === undefined) { delete payload.unit; }  // a unit alone says nothing
      /* One or the other, asked or approved; an approval with neither grants what the request asked for (the
         service refuses it if it asked none). */
      if (extension && payload.amount !== undefined && payload.new_due_at) {
        fillRefusal(msg, "延长时间与新的处置时限只能填一项");
        return;
      }
      /* Checked before sending, each field by the form's own label: what is missing, what is too long. */
      var photoCount = form.elements.photos ? form.elements.photos.files.length : 0;
      var problems = musts.filter(function (f) { return payload[f] === undefined || !String(payload[f]).trim(); })
        .map(function (f) {
          var x = form.elements[f];
          return labels[f] + ":必填,请" + (x && x.tagName === "SELECT" ? "选择" : "填写");
        });
      if (needsPhoto && !photoCount) { problems.push("处置后照片:必填,请选择照片"); }
      problems = problems.concat(tooLong(form, labels));
      if (!actorName()) { problems.unshift(C.actorMissing); $("gg-actor").focus(); }
      if (problems.length) {
        fillRefusal(msg, "未提交:\n" + problems.join("\n"));
        return;
      }
      var note = form.elements.note.value || null;
      var url = C.base + "/cases/" + encodeURIComponent(c.id) + "/actions/" + encodeURIComponent(action);
      var photos = form.elements.photos ? form.elements.photos.files : [];
      var sent;
      if (photos.length || needsPhoto) {
        var data = new FormData();
        data.append("version", String(c.version));
        data.append("idempotency_key", key);
        if (note) { data.append("note", note); }
        Object.keys(payload).forEach(function (k) { data.append(k, payload[k]); });
        Array.prototype.forEach.call(photos, function (file) { data.append("photos", file, file.name); });
        sent = request(url + "/form", {method: "POST", headers: headers(false), body: data});
      } else {
        sent = request(url, {method: "POST", headers: headers(true), body: JSON.stringify({version: c.version,
                             payload: payload, note: note, idempotency_key: key})});
      }
      sent.then(function (updated) {
        if (String(GG.selected) !== String(c.id)) { return; }  // the operator has opened another case meanwhile
        renderCase(updated, "已办理:" + (C.actions[action] || action));
        noteInView();
        markSelected(updated);
        if (GG.cases) { GG.cases.update(); }
      }, function (e) {
        var own = e.status === 409 && (e.body || {}).reason === "idempotency_key_reused";
        if (own && String(GG.selected) === String(c.id)) {
          /* this form's step went through (its answer was lost), then the form was changed and sent again: the
             step stands, the change was not sent */
          reloadCase({why: "本次修改未提交:此前提交的「" + (C.actions[action] || action) + "」已办理(当时应答丢失)",
                      own: true, kept: formState()});
          return;
        }
        if (movedOn(e, c) && String(GG.selected) === String(c.id)) {  // show it as it is now, the form kept
          reloadCase({refused: "未办理", kept: formState()});
          return;
        }
        fillRefusal(msg, "未办理:" + e.message, e);
      });
    });
    area.appendChild(form);
  }

  /* 合并到…: the case is voided as a duplicate of the one kept (one of those it lists), each offered with its
     state now; a case the API would not keep (not open, or itself merged: merge_target_not_open) is left out.
     The other refusals (other class, too far …) are said under the form. */
  function keepable(d) { return C.openStates.indexOf(d.state) >= 0 && !d.duplicate_of; }
  function mergeForm(c) {
    var area = $("gg-action-area");
    area.textContent = "";
    var into = el("select", {name: "into", disabled: "disabled"},
                  el("option", {value: "", text: "正在查询各案件的当前状态…"}));
    var msg = el("div", {cls: "gg-error gg-form-msg", hidden: "hidden"});
    var none = el("div", {cls: "gg-hint gg-merge-none", hidden: "hidden"});
    var submit = el("button", {type: "submit", text: "合并", disabled: "disabled"});
    var form = el("form", {cls: "gg-form", "data-action": MERGE}, el("b", {text: "合并到…"}),
      el("div", {cls: "gg-hint", text: "本案作废,记为所选案件的重复;所选案件日后作废或不予立案时,本案重新受理。"}),
      el("label", null, "保留的案件 ", into), none, msg, submit);
    var dups = (c.routing || {}).duplicates || [];
    Promise.all(dups.map(function (d) {  // the list holds each as it was at the report
      return request(C.base + "/cases/" + encodeURIComponent(d.id)).then(function (now) {
        return {d: d, now: now};
      }, function () { return {d: d, now: null}; });  // not known: offered, the API judges
    })).then(function (found) {
      if (String(GG.selected) !== String(c.id) || !form.isConnected) { return; }
      into.textContent = "";
      var left = [];
      found.forEach(function (x) {
        if (x.now && !keepable(x.now)) {
          left.push((x.d.case_no || "#" + x.d.id) + "(" + (x.now.state_label || C.states[x.now.state] ||
            x.now.state) + (x.now.duplicate_of ? ",已并入其他案件" : "") + ")");
          return;
        }
        var state = x.now ? x.now.state_label || C.states[x.now.state] || x.now.state : "状态未知";
        into.appendChild(el("option", {value: String(x.d.id), text: (x.d.case_no || "#" + x.d.id) + " · " + state +
          " · 相距 " + distance(x.d.distance_m) + " · 上报 " + shortTime(x.d.created_at)}));
      });
      if (left.length) {
        none.textContent = (into.options.length ? "不可保留(已不在办):" : "没有可保留的在办案件:") + left.join("、");
        none.hidden = false;
      }
      into.disabled = submit.disabled = !into.options.length;
    });
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (!actorName()) { fillRefusal(msg, "未提交:\n" + C.actorMissing); $("gg-actor").focus(); return; }
      var kept = into.options[into.selectedIndex];
      request(C.base + "/cases/" + encodeURIComponent(c.id) + "/merge", {method: "POST", headers: headers(true),
        body: JSON.stringify({into: Number(into.value), version: c.version})}).then(function (updated) {
        if (String(GG.selected) !== String(c.id)) { return; }
        renderCase(updated, "已合并到 " + kept.text.split(" · ")[0]);
        noteInView();
        markSelected(updated);
        if (GG.cases) { GG.cases.update(); }
      }, function (e) {
        if (movedOn(e, c) && String(GG.selected) === String(c.id)) {
          reloadCase({refused: "未合并", kept: formState()});
          return;
        }
        fillRefusal(msg, "未合并:" + e.message, e);
      });
    });
    area.appendChild(form);
  }

  /* A click on the map: the unit grid there, its tiers and 网格长, and its open cases (each opens its detail). */
  function locate(e) {
    var ll = e.latlng;
    var url = C.base + "/grids/locate?datum=cgcs2000&lon=" + ll.lng.toFixed(7) + "&lat=" + ll.lat.toFixed(7);
    request(url).then(function (g) {
      var lines = ["单元网格 " + g.unit_grid];
      if (g.tier1) { lines.push("一级 " + g.tier1.name + "(" + g.tier1.code + ")"); }
      if (g.tier2) { lines.push("二级 " + g.tier2.name + "(" + g.tier2.code + ")"); }
      if (g.tier3) {
        lines.push("三级 " + g.tier3.name + "(" + g.tier3.code + ")");
        var leader = g.tier3.leader_name ? g.tier3.leader_name + " " + (g.tier3.leader_phone || "") : "未配置";
        lines.push("三级网格网格长 " + leader);
      }
      var box = linesDiv(lines);
      var open = el("div", {cls: "gg-grid-cases", text: "正在查询在办案件…"});
      box.appendChild(open);
      L.popup().setLatLng(ll).setContent(box).openOn(GG.map);
      var q = new URLSearchParams({grid: g.unit_grid, state: C.openStates.join(","), limit: "20"});
      request(C.base + "/cases?" + q.toString()).then(function (r) {
        var more = r.count > r.data.length ? "(前 " + r.data.length + " 件)" : "";
        open.textContent = "本单元网格在办案件 " + r.count + " 件" + more;
        r.data.forEach(function (c) {
          var label = (c.case_no || "#" + c.id) + " " + (c.class_name || c.class_code) + " · " +
            (c.state_label || c.state);
          open.appendChild(el("div", null, el("a", {href: "#", text: label, onclick: function (ev) {
            ev.preventDefault(); GG.openCase(c.id);
          }})));
        });
      }, function (err) { open.textContent = "在办案件未能查询:" + err.message; open.title = err.server || ""; });
    }, function (err) { popup(ll, [err.status === 404 ? C.outsideClick : err.message]); });
  }

  function linesDiv(lines) {
    var div = el("div");
    lines.forEach(function (t, i) {
      if (i) { div.appendChild(el("br")); }
      div.appendChild(document.createTextNode(t));
    });
    return div;
  }

  function popup(latlng, lines) {
    L.popup().setLatLng(latlng).setContent(linesDiv(lines)).openOn(GG.map);
  }

  /*gisgrid:basemap-shift*/
  GG.init = function (refs) {
    GG.map = refs.map;
    if (C.basemapShift) {  // a GCJ-02 basemap: its pane moved by the offset (maps.basemap.SHIFT_JS)
      GG.gcjOffset = gisgridShiftBasemap(GG.map, C.basemapPane, C.basemapShift).offset;
    }
    GG.cases = refs.cases;
    GG.components = refs.components;
    GG.componentCluster = refs.componentCluster;
    GG.heat = refs.heat;
    GG.map.on("moveend", GG.loadCluster);
    GG.map.on("overlayadd overlayremove", function (e) {
      if (e.layer === GG.components) { GG.loadCluster(); }
      if (e.layer === GG.heat) { GG.refreshHeat(); }
    });
    GG.map.on("overlayremove", function (e) {  // a layer switched off has nothing left to complain about
      if (e.layer === GG.components) { showError("components", ""); }
      if (e.layer === GG.heat) { showError("heat", ""); }
    });
    if (refs.componentCells) {
      refs.componentCells.on("click", function (e) {
        var p = (e.layer && e.layer.properties) || {};
        L.DomEvent.stopPropagation(e);
        popup(e.latlng, ["单元网格 " + (p.id || ""), "部件 " + (p.n || 0) + " 个(放大到 " + (C.clusterMinZoom - 1) +
                         " 级看单个部件)"]);
      });
    }
    if (GG.map.attributionControl) { GG.map.attributionControl.setPrefix(false); }
    /* Leaflet titles the layer control's toggle in English ("Layers"). */
    Array.prototype.forEach.call(GG.map.getContainer().querySelectorAll(".leaflet-control-layers-toggle"),
      function (a) { a.title = C.layersTitle; a.setAttribute("aria-label", C.layersTitle); });
    /* folium adds the Realtime container straight to the map; hand it to the Realtime layer so the layer
       control shows it as on and can switch it off and on. */
    if (GG.cases && !GG.map.hasLayer(GG.cases)) {
      GG.map.removeLayer(GG.cases._container);
      GG.map.addLayer(GG.cases);
    }
    GG.map.on("click", locate);
    if (refs.componentPoints) {
      refs.componentPoints.on("click", function (e) {
        var p = (e.layer && e.layer.properties) || {};
        L.DomEvent.stopPropagation(e);
        popup(e.latlng, ["部件 " + (p.id || ""), "类别 " + (p.class_code || "") + (p.name ? " " + p.name : ""),
                         "状态 " + (p.status || "")]);
      });
    }
  };

  /* The class filter's text as a code: a code, "名称(编码)" from the list, or a name (the only class whose name it
     is, or the only one containing it). {code} or {error} (zh-CN, nothing is asked of the API then). */
  GG.classCodeOf = function (text) {
    var t = String(text || "").trim();
    if (!t) { return {code: ""}; }
    var m = t.match(/^(\d{4,5})$/) || t.match(/[((]\s*(\d{4,5})\s*[))]\s*$/) || t.match(/^(\d{4,5})\s/);
    if (m) { return {code: m[1]}; }
    var codes = Object.keys(C.classes);
    var exact = codes.filter(function (k) { return C.classes[k].name === t; });
    var some = exact.length ? exact : codes.filter(function (k) { return C.classes[k].name.indexOf(t) >= 0; });
    var gbt = some.filter(function (k) { return C.classes[k].scheme === "gbt47678"; });
    if (some.length > 1 && gbt.length === 1 && exact.length) { return {code: gbt[0]}; }  // same name in both schemes
    if (some.length === 1) { return {code: some[0]}; }
    if (!some.length) { return {error: "类别:没有名称含「" + t + "」的类别,请从列表中选择或输入编码"}; }
    return {error: "类别:「" + t + "」对应多个类别(" + some.slice(0, 6).map(function (k) {
      return C.classes[k].name + " " + k; }).join("、") + (some.length > 6 ? " …" : "") + "),请从列表中选择"};
  };

  /* A grid code the API takes: digits, as long as one of the tiers' codes (C.gridCodeLengths). */
  GG.gridCodeOk = function (text) {
    return /^\d+$/.test(text) && C.gridCodeLengths.indexOf(text.length) >= 0;
  };

  /* Why a grid code is refused: digits of no tier's length (how many, which are valid), or not a code at all. */
  function gridRefusal(grid) {
    if (!/^\d+$/.test(grid)) { return C.gridCodeError; }
    return C.gridLengthError.replace("#CODE#", grid).replace("#N#", String(grid.length));
  }
  /* 上报 自 … 至 …: a period that ends before it starts is refused here, once (the API would refuse both the list
     and the counts). "至" includes its day: 自 11-01 至 11-01 is one day. */
  function periodRefusal(since, until) {
    if (!since || !until || since <= until) { return ""; }
    return "上报日期:起始日期 " + since + " 晚于截止日期 " + until + ",请修改";
  }

  function bindPanel() {
    var form = $("gg-filters");
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var e = form.elements;
      var no = e.case_no.value.trim();
      var cls = no ? {code: ""} : GG.classCodeOf(e.class_code.value);
      var grid = no ? "" : e.grid.value.trim();
      var refused = cls.error || (grid && !GG.gridCodeOk(grid) ? gridRefusal(grid) : "") ||
        (!no && periodRefusal(e.since.value, e.until.value));
      GG.offset = 0;
      if (refused) {  // nothing is asked of the API; what is shown is not this filter's answer: emptied
        GG.badFilter = refused;
        showError("filter", refused);
        if (GG.cases) { GG.cases.update(); }
        GG.refreshHeat();
        return;
      }
      GG.badFilter = null;
      showError("filter", "");
      if (no) {  // a number a caller gives: that case in any state, the other filters aside; it opens when found
        GG.filters = {case_no: no};
        GG.findNo = no;
      } else {
        GG.findNo = null;
        GG.filters = {state: e.state.value, class_code: cls.code, light: e.light.value,
                      department: e.department.value, grid: grid,
                      source: e.source.value, escalation_level: e.escalation_level.value,
                      pending_extension: e.pending_extension.checked ? "true" : "",
                      queue: e.queue.checked ? "manual" : "",
                      since: dayStart(e.since.value, 0), until: dayStart(e.until.value, 1)};
        if (grid) { checkGrid(grid); } else { clearGridOutline(); }
      }
      if (GG.cases) { GG.cases.update(); }
      GG.refreshHeat();
    });
    form.addEventListener("reset", function () {
      clearGridOutline();
      GG.filters = {state: OPEN};
      GG.badFilter = null;
      GG.findNo = null;
      GG.offset = 0;
      showError("filter", "");
      setTimeout(function () { if (GG.cases) { GG.cases.update(); } GG.refreshHeat(); }, 0);
    });
    Array.prototype.forEach.call(document.querySelectorAll(".gg-light"), function (s) {
      s.addEventListener("click", function () {  // buttons: Enter and Space press them too
        if (s.getAttribute("data-state")) {  // 挂账: those cases (they have no light)
          form.elements.state.value = s.getAttribute("data-state");
          form.elements.light.value = "";
        } else {
          form.elements.light.value = s.getAttribute("data-light");
        }
        form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit"));
      });
    });
    $("gg-sort").addEventListener("change", function () {  // the filter's first page in the other order
      GG.offset = 0;
      if (GG.lastGood && !GG.badFilter) { renderList(GG.lastGood); }
      if (GG.cases && !GG.badFilter) { GG.cases.update(); }
    });
    $("gg-prev").addEventListener("click", function () { GG.page(-1); });
    $("gg-next").addEventListener("click", function () { GG.page(1); });
    /* The list from the keyboard: Tab reaches each case, Enter (or Space) opens it, the arrows move. */
    $("gg-list").addEventListener("keydown", function (ev) {
      var li = ev.target;
      if (!li || li.parentNode !== this) { return; }
      if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); GG.openCase(li.getAttribute("data-id")); }
      else if (ev.key === "ArrowDown" && li.nextSibling) { ev.preventDefault(); li.nextSibling.focus(); }
      else if (ev.key === "ArrowUp" && li.previousSibling) { ev.preventDefault(); li.previousSibling.focus(); }
    });
    /* The role: the one chosen last in this browser (an operator's by default). */
    var role = $("gg-role");
    try {
      var saved = window.localStorage.getItem(ROLE_KEY);
      if (saved && C.roles[saved]) { role.value = saved; }
    } catch (err) { /* storage off: the default role */ }
    /* The department a 部门处置人员 acts for: asked only with that role, kept like the role. */
    var dept = $("gg-dept");
    try {
      var savedDept = window.localStorage.getItem(DEPT_KEY);
      if (savedDept && C.departments[savedDept]) { dept.value = savedDept; }
    } catch (err) { /* storage off: none chosen yet */ }
    function showDept() { $("gg-dept-box").hidden = role.value !== "department"; }
    showDept();
    role.addEventListener("change", function () {
      try { window.localStorage.setItem(ROLE_KEY, role.value); } catch (err) { /* storage off */ }
      showDept();
      if (GG.selected !== null) { GG.openCase(GG.selected); }
    });
    /* A 部门处置人员 choosing their department sees its queue: the list's 部门 filter set to it (they may widen it). */
    function ownQueue() {
      var filters = $("gg-filters");
      if (role.value !== "department" || !dept.value || filters.elements.department.value === dept.value) { return; }
      filters.elements.department.value = dept.value;
      filters.requestSubmit ? filters.requestSubmit() : filters.dispatchEvent(new Event("submit"));
    }
    role.addEventListener("change", ownQueue);
    ownQueue();  // a reload keeps the department's queue
    dept.addEventListener("change", function () {
      try { window.localStorage.setItem(DEPT_KEY, dept.value); } catch (err) { /* storage off */ }
      if (GG.selected !== null) { GG.openCase(GG.selected); }
      ownQueue();
    });
    /* The operator's name (操作人), kept like the role: the log records each step under it, and the evaluation
       ranks posts by it, so a reload must not turn everyone into the default. */
    var actor = $("gg-actor");
    try {
      var name = window.localStorage.getItem(ACTOR_KEY);
      if (name) { actor.value = name; }
    } catch (err) { /* storage off: typed again after a reload */ }
    actor.addEventListener("input", function () {
      try {
        var v = actor.value.trim();
        if (v) { window.localStorage.setItem(ACTOR_KEY, v); } else { window.localStorage.removeItem(ACTOR_KEY); }
      } catch (err) { /* storage off */ }
    });
  }
  function bindAll() { bindPanel(); bindEvaluation(); }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", bindAll); }
  else { bindAll(); }
})();
