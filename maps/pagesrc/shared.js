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
  /* ZH_ERRORS: the zh-CN of the error codes that are no reason code (an error code that is one —
     role_not_allowed, stale_version … — has its text in ZH_REASONS: zhError); maps.pagejs.ZH_ERRORS. */
  /*gisgrid:zh-errors*/
  function zhError(code) { return (code && (ZH_ERRORS[code] || ZH_REASONS[code])) || ""; }
  /* ZH_FIELDS: the zh-CN name of each field a refusal may name (maps.pagejs.ZH_FIELDS). */
  /*gisgrid:zh-fields*/
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
