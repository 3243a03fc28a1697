"use strict";
self.addEventListener("install", function (e) {
  e.waitUntil(caches.open(SW.cache).then(function (c) {
    return c.addAll(SW.precache.map(function (u) { return new Request(u, {cache: "reload"}); }));
  }).then(function () { return self.skipWaiting(); }));
});
self.addEventListener("activate", function (e) {
  e.waitUntil(caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (k) { return k.indexOf("gisgrid-field-") === 0 && k !== SW.cache; })
      .map(function (k) { return caches.delete(k); }));
  }).then(function () { return self.clients.claim(); }));
});
function fromCache(req, fallback) {
  return caches.open(SW.cache).then(function (c) {
    return c.match(req, {ignoreVary: true}).then(function (hit) {
      return hit || (fallback ? c.match(fallback, {ignoreVary: true}) : undefined);
    });
  }).then(function (hit) { return hit || Response.error(); });
}
function networkFirst(req, fallback) {
  var net = fetch(req).then(function (res) {
    if (res.ok) {
      var copy = res.clone();
      caches.open(SW.cache).then(function (c) { return c.put(req, copy); });
    }
    return res;
  });
  var late = new Promise(function (ok, fail) { setTimeout(fail, SW.networkMs); });
  return Promise.race([net, late]).catch(function () {
    return fromCache(req, fallback).then(function (res) {
      return res.type === "error" ? net : res;  // nothing stored: wait for the network after all
    });
  });
}
self.addEventListener("fetch", function (e) {
  var req = e.request, url = new URL(req.url);
  if (req.method !== "GET" || url.origin !== self.location.origin) { return; }
  if (SW.assets.indexOf(url.pathname) >= 0) {
    e.respondWith(fromCache(req).then(function (res) { return res.type === "error" ? fetch(req) : res; }));
  } else if (SW.networkFirst.indexOf(url.pathname) >= 0) {
    e.respondWith(networkFirst(req, url.pathname === SW.networkFirst[0] ? SW.networkFirst[0] : null));
  }
});
