/*
 * gisgrid: clicks on Leaflet.VectorGrid 1.3.0 canvas tiles under Leaflet >= 1.8.
 *
 * VectorGrid 1.3.0 (its last release) calls L.DomEvent.fakeStop in L.Canvas.Tile#_onClick; Leaflet 1.8 removed
 * fakeStop, so a click on an interactive feature throws (Leaflet.VectorGrid issue #274). Leaflet 1.9's canvas
 * also marks its container `_leaflet_disable_events`, so the map ignores DOM clicks on it and relies on the
 * renderer to re-fire them: a click on an empty part of a tile must still reach the map.
 *
 * This replaces _onClick with the Leaflet 1.9 canvas logic adapted to tiles (offset, per-tile layer set):
 * hit layer -> fired on it (and bubbling to the VectorGrid and the map); no hit -> fired on the map only.
 * Point features are CircleMarkers without a latlng, and Leaflet 1.9 places a "marker" event at
 * getLatLng(): _fireEvent gives them the latlng of their tile point first.
 * Load it right after Leaflet.VectorGrid.
 */
(function () {
  "use strict";
  if (typeof L === "undefined" || !L.Canvas || !L.Canvas.Tile) {
    return;
  }
  L.Canvas.Tile.include({
    _onClick: function (e) {
      if (!this._map) {
        return;
      }
      var point = this._map.mouseEventToLayerPoint(e).subtract(this.getOffset());
      var isClick = e.type === "click" || e.type === "preclick";
      var hit = null;
      for (var id in this._layers) {
        var layer = this._layers[id];
        if (layer.options.interactive && layer._containsPoint(point) &&
            (!isClick || !this._map._draggableMoved(layer))) {
          hit = layer; // the last drawn wins, as on Leaflet's own canvas
        }
      }
      this._fireEvent(hit ? [hit] : false, e);
    },

    _fireEvent: function (layers, e, type) {
      if (layers && this._map) {
        for (var i = 0; i < layers.length; i++) {
          var layer = layers[i];
          if (layer._point && !layer._latlng) {
            layer._latlng = this._map.layerPointToLatLng(layer._point.add(this.getOffset()));
          }
        }
      }
      L.Canvas.prototype._fireEvent.call(this, layers, e, type);
    }
  });
})();
