  function gisgridShiftBasemap(map, paneName, t) {
    function offset(lon, lat) {
      var fx = Math.min(Math.max((lon - t.lon0) / t.step, 0), t.nx - 1.001);
      var fy = Math.min(Math.max((lat - t.lat0) / t.step, 0), t.ny - 1.001);
      var i = Math.floor(fx), j = Math.floor(fy), u = fx - i, v = fy - j;
      function at(a) {
        var k = j * t.nx + i;
        return (a[k] * (1 - u) + a[k + 1] * u) * (1 - v) + (a[k + t.nx] * (1 - u) + a[k + t.nx + 1] * u) * v;
      }
      return [at(t.dlon), at(t.dlat)];
    }
    function shiftPx(center, zoom) {
      var d = offset(center.lng, center.lat);
      return map.project(center, zoom).subtract(map.project(L.latLng(center.lat + d[1], center.lng + d[0]), zoom));
    }
    function move() {
      var pane = map.getPane(paneName);
      if (!pane) { return; }
      var s = shiftPx(map.getCenter(), map.getZoom());
      map.basemapShiftPx = [s.x, s.y];
      pane.style.left = s.x.toFixed(1) + "px";
      pane.style.top = s.y.toFixed(1) + "px";
    }
    map.eachLayer(function (l) {
      if (!(l instanceof L.TileLayer) || l.options.pane !== paneName) { return; }
      var own = l._getTiledPixelBounds;
      l._getTiledPixelBounds = function (center) {
        var b = own.call(this, center), s = shiftPx(center, this._tileZoom);
        return L.bounds(b.min.subtract(s), b.max.subtract(s));
      };
      l.redraw();
    });
    map.on("zoomend moveend viewreset", move);
    move();
    return {offset: offset};
  }
