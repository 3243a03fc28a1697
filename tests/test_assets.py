"""Self-hosted front-end assets: every link folium emits is local, the files exist, nothing points off-origin."""

from __future__ import annotations

import re
import shutil
from typing import ClassVar

import folium
import pytest
from branca.element import MacroElement
from fastapi import FastAPI
from fastapi.testclient import TestClient
from folium import plugins
from folium.elements import JSCSSMixin

from api.errors import add_exception_handlers
from api.routers import console
from maps import assets


def full_map() -> str:
    """A map using every class the project localises (and the links folium would add for each)."""
    assets.use_local_assets()
    m = folium.Map(location=[34.75, 113.68], zoom_start=14, tiles=None)
    folium.Marker([34.75, 113.68], icon=folium.Icon(icon="info-sign", angle=30)).add_to(m)
    plugins.MarkerCluster(locations=[[34.75, 113.68], [34.751, 113.681]]).add_to(m)
    plugins.FastMarkerCluster([[34.75, 113.68]]).add_to(m)
    plugins.HeatMap([[34.75, 113.68, 1.0]]).add_to(m)
    plugins.VectorGridProtobuf("/tiles/unit_grids/{z}/{x}/{y}.mvt", "单元网格").add_to(m)
    plugins.Realtime("/cases?format=geojson", interval=10_000).add_to(m)
    folium.LayerControl().add_to(m)
    return m.get_root().render()


def links(html: str) -> list[str]:
    return re.findall(r"""<(?:script|link)\b[^>]*?(?:src|href)="([^"]+)\"""", html)


def test_every_class_level_link_is_local_after_use_local_assets() -> None:
    assets.use_local_assets()
    assets.use_local_assets()  # once per process: a second call changes nothing
    for cls in assets.LOCALISED_CLASSES:
        urls = [url for _, url in cls.default_js + getattr(cls, "default_css", [])]
        assert urls and all(u.startswith("/static/vendor/") for u in urls), (cls.__name__, urls)
    js = [name for name, _ in plugins.VectorGridProtobuf.default_js]
    assert js == ["vectorGrid", "vectorGridClickFix"]  # the click fix loads right after VectorGrid
    assert "leaflet.vectorgrid@1.3.0" in plugins.VectorGridProtobuf.default_js[0][1]


def test_a_map_with_every_plugin_links_only_local_files(installed_assets: None) -> None:
    html = full_map()
    assets.assert_no_external(html)
    found = links(html)
    assert len(found) >= 15
    for url in found:
        assert assets.local_file(url) is not None, url
    for name in ("leaflet", "Leaflet_Realtime_js", "vectorGrid", "markerclusterjs", "leaflet-heat.js"):
        assert assets.ASSETS[name] in found


def test_files_exist_at_the_pinned_versions(installed_assets: None) -> None:
    assert assets.missing_files() == {}
    assert assets.PINS["leaflet.vectorgrid"] == "1.3.0" and assets.PINS["leaflet"] == "1.9.3"
    for package, version in assets.PINS.items():
        assert assets._installed_version(package) == version


def test_css_files_reference_only_local_files(installed_assets: None) -> None:
    for name, url in assets.ASSETS.items():
        if not url.endswith(".css"):
            continue
        path = assets.local_file(url)
        assert path is not None
        css = re.sub(r"/\*.*?\*/", "", path.read_text(encoding="utf-8"), flags=re.S)  # comments may cite URLs
        refs = re.findall(r"""url\(\s*['"]?([^'")]+)['"]?\s*\)""", css)
        refs += re.findall(r"""@import\s+['"]([^'"]+)['"]""", css)
        for ref in refs:
            if ref.startswith(("data:", "#")):  # inline data; IE behaviour ids (#default#VML)
                continue
            assert not re.match(r"^(?:[a-z][a-z0-9+.-]*:)?//", ref, re.I), (name, ref)
            target = (path.parent / ref.split("?")[0].split("#")[0]).resolve()
            assert target.is_file(), (name, ref)


def test_a_link_without_a_local_copy_is_refused() -> None:
    class Unknown(JSCSSMixin, MacroElement):
        default_js: ClassVar = [("somelib", "https://cdn.example.org/somelib.js")]
        default_css: ClassVar = []

    with pytest.raises(assets.AssetError, match="somelib"):
        assets.localise(Unknown)
    assert Unknown.default_js[0][1].startswith("https://")  # nothing half-changed


def test_find_external() -> None:
    bad = [
        '<script src="https://cdn.jsdelivr.net/npm/leaflet.js"></script>',
        "<link rel='stylesheet' href='//netdna.bootstrapcdn.com/x.css'/>",
        "<style>.a{background:url(//example.com/a.png)}</style>",
        "<script>fetch('//example.com/data.json')</script>",
        "<script>var u = 'http://10.0.0.1/tiles';</script>",
    ]
    for html in bad:
        with pytest.raises(AssertionError):
            assets.assert_no_external(html)
    assets.assert_no_external(
        '<script src="/static/vendor/leaflet@1.9.3/dist/leaflet.js"></script>\n'
        "<script>// a comment\nvar x = 1; // another\nfetch('/cases?format=geojson');</script>"
    )


def test_npm_missing_names_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(assets, "stale_reason", lambda: "maps/node_modules is missing")
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    with pytest.raises(assets.AssetError, match=r"npm ci --omit=dev --no-audit --no-fund"):
        assets.install_assets()


def test_vendor_route_serves_assets_and_nothing_else(installed_assets: None) -> None:
    app = FastAPI()
    add_exception_handlers(app)
    app.include_router(console.router)
    client = TestClient(app)
    r = client.get(assets.ASSETS["leaflet"])
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert "immutable" in r.headers["cache-control"] and r.content.startswith(b"/* @preserve")
    fa = client.get("/static/vendor/@fortawesome/fontawesome-free@6.2.0/webfonts/fa-solid-900.woff2")
    assert fa.status_code == 200 and fa.headers["content-type"] == "font/woff2"
    fix = client.get(assets.ASSETS["vectorGridClickFix"])
    assert fix.status_code == 200 and "immutable" not in fix.headers["cache-control"]
    assert b"L.Canvas.Tile.include" in fix.content and b"_onClick" in fix.content
    assert client.get(assets.ASSETS["leaflet-heat.js"]).status_code == 200
    for path in [
        "/static/vendor/leaflet@1.9.4/dist/leaflet.js",  # not the pinned version
        "/static/vendor/leaflet@1.9.3/package.json",  # not an asset type
        "/static/vendor/leaflet@1.9.3/../../package.json",
        "/static/vendor/leaflet@1.9.3/dist/%2e%2e/%2e%2e/%2e%2e/assets.py",
        "/static/vendor/gisgrid/../assets.py",
        "/static/vendor/folium@0.20.0/folium.py",
        "/static/vendor/left-pad@1.0.0/index.js",
    ]:
        r = client.get(path)
        assert r.status_code == 404, path
        assert r.json()["error"] == "not_found"
