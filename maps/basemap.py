"""The console's basemap (底图): none by default; a local XYZ tile service; or 天地图 Tianditu with a token.

Overlays (grids, components, cases) are in CGCS2000 lon/lat, which web maps draw as WGS84 (identical frames at epoch
2000.0; CGCS2000's coordinates, frozen then, are ~0.7–0.9 m from today's WGS84 in mainland China — plate motion, a
pixel or two at z18, ignored; see ``gisgrid.geodesy``). A basemap in GCJ-02 (AMap, Tencent tiles) is offset from
them by 100–700 m; the console then moves the basemap by the GCJ-02 offset at the view's centre, so the overlays
line up with it there; the offset changes slowly, but one offset for the whole view leaves the corners of a 1280×800
view up to about 3 px off (5.7 m at z16, 1.3 m at z18 — measured by an outside review). The offsets come from
``gisgrid.geodesy`` as a small table over the district, interpolated in the page: the datum arithmetic is written
once, in Python.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from gisgrid import geodesy
from gisgrid.errors import ConfigError
from maps import pagesrc

BasemapDatum = Literal["cgcs2000", "wgs84", "gcj02"]

#: 天地图 web-mercator tiles (矢量底图 vec_w and its 注记 cva_w), hosts t0–t7.tianditu.gov.cn.
TIANDITU = (
    "https://t{{s}}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER={layer}"
    "&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}&tk={token}"
)
TIANDITU_SUBDOMAINS = "01234567"
TIANDITU_ATTRIBUTION = "天地图 © 国家地理信息公共服务平台"
_TOKEN = re.compile(r"[0-9A-Za-z]{8,64}")
#: Spacing (degrees) of the GCJ-02 offset table, bilinearly interpolated in the page: within 0.35 m of the exact
#: offset (an outside review checked 20,000 points over Z区), well under a pixel up to z18.
SHIFT_STEP_DEG = 0.02


@dataclass(frozen=True)
class TileSource:
    url: str  # an XYZ template ({z}/{x}/{y}, {s} for a subdomain)
    overlay: bool = False  # an annotation layer drawn over the base


@dataclass(frozen=True)
class Basemap:
    sources: tuple[TileSource, ...]
    attribution: str
    subdomains: str = "abc"
    datum: BasemapDatum = "cgcs2000"

    def __post_init__(self) -> None:
        self.hosts  # noqa: B018 — a host pattern other than {s} is refused when the setting is read

    @property
    def hosts(self) -> tuple[str, ...]:
        """Every other-origin host the tiles come from (``{s}`` spelt out): what the page's CSP must allow."""
        hosts: list[str] = []
        for source in self.sources:
            if "://" not in source.url:
                continue  # a path on this origin
            scheme, rest = source.url.split("://", 1)
            host = rest.split("/", 1)[0]
            names = [host.replace("{s}", s) for s in self.subdomains] if "{s}" in host else [host]
            for name in names:
                if "{" in name or "}" in name:
                    raise ConfigError(f"basemap URL host {host!r}: only {{s}} may stand in it")
                if f"{scheme}://{name}" not in hosts:
                    hosts.append(f"{scheme}://{name}")
        return tuple(hosts)


def basemap_for(
    url: str | None = None,
    *,
    attribution: str | None = None,
    subdomains: str | None = None,
    datum: BasemapDatum = "cgcs2000",
    tianditu_token: str | None = None,
) -> Basemap | None:
    """The basemap the settings name (``GISGRID_BASEMAP_*``, ``GISGRID_TIANDITU_TOKEN``), None for none. A URL
    wins over the token."""
    if url:
        return Basemap((TileSource(url),), attribution or "本地底图", subdomains or "abc", datum)
    if tianditu_token:
        if not _TOKEN.fullmatch(tianditu_token):
            raise ConfigError("GISGRID_TIANDITU_TOKEN: a Tianditu key is 8–64 letters and digits")
        return Basemap(
            (
                TileSource(TIANDITU.format(layer="vec", token=tianditu_token)),
                TileSource(TIANDITU.format(layer="cva", token=tianditu_token), overlay=True),
            ),
            attribution or TIANDITU_ATTRIBUTION,
            TIANDITU_SUBDOMAINS,
            "cgcs2000",  # 天地图 is CGCS2000: no shift
        )
    return None


def gcj02_shift_table(bounds: tuple[float, float, float, float], margin_deg: float = 0.1) -> dict[str, Any]:
    """GCJ-02 minus CGCS2000 (degrees) on a regular lon/lat grid over ``bounds`` and a margin: what the page
    interpolates to move a GCJ-02 basemap under the overlays."""
    x0, y0 = bounds[0] - margin_deg, bounds[1] - margin_deg
    nx = int(np.ceil((bounds[2] + margin_deg - x0) / SHIFT_STEP_DEG)) + 1
    ny = int(np.ceil((bounds[3] + margin_deg - y0) / SHIFT_STEP_DEG)) + 1
    lon, lat = np.meshgrid(x0 + SHIFT_STEP_DEG * np.arange(nx), y0 + SHIFT_STEP_DEG * np.arange(ny))
    glon, glat = geodesy.from_storage(lon.ravel(), lat.ravel(), "gcj02")
    return {
        "lon0": x0,
        "lat0": y0,
        "step": SHIFT_STEP_DEG,
        "nx": nx,
        "ny": ny,
        "dlon": np.round(glon - lon.ravel(), 8).tolist(),  # row by row (lat), then lon
        "dlat": np.round(glat - lat.ravel(), 8).tolist(),
    }


#: The page side of a GCJ-02 basemap: ``gisgridShiftBasemap(map, pane,
#: table)`` moves ``pane`` by the GCJ-02 offset at the view's centre (bilinear in :func:`gcj02_shift_table`), so the
#: overlays (CGCS2000) line up with the basemap, and makes the pane's tile layers load the tiles of the view moved
#: the other way, so the moved pane still covers the map. The console and the field page both use it.
SHIFT_JS = pagesrc.source("basemap-shift.js")
