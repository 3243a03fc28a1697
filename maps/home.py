"""The start page (``/``): a plain zh-CN page listing what the service offers, no external assets.

Its HTML is maps/pagesrc/home.html (no final newline: the page is served byte for byte as it is filled), headed by
the city's 监督指挥中心 (GISGRID_CENTER_NAME) as its orders are. What Python puts in, each through its own marker:
the centre's name (title and heading) and the page's links, the path prefix the service is served under
(``/gisgrid`` behind a proxy) before each; every value escaped for HTML (:func:`html.escape`). The values go in
in one pass (:func:`maps.pagesrc.fill`): a name holding ``{base}`` or a marker's text is shown as written.
"""

from __future__ import annotations

import html

from gisgrid.settings import DEFAULT_CENTER_NAME
from maps import pagesrc

#: The page (maps/pagesrc/home.html): its centre name and links put in.
PAGE_HTML = pagesrc.source("home.html")
#: The app paths the page links to, by marker (each put in after the path prefix).
LINKS = {
    "icon-url": "/favicon.svg",
    "console-url": "/console",
    "field-url": "/field",
    "docs-url": "/docs",
    "health-url": "/health",
    "grids-url": "/grids?limit=10",
    "tier1-url": "/grids?tier=1",
    "tier2-url": "/grids?tier=2&limit=20",
    "tier3-url": "/grids?tier=3&limit=20",
    "locate-url": "/grids/locate",
}
#: The page's icon (``LINKS["icon-url"]``): without a ``<link rel="icon">`` a browser asks for /favicon.ico at the
#: gateway's root, outside GISGRID_ROOT_PATH (a 404 there). A 2×2 grid, the service's subject.
FAVICON_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    '<rect width="16" height="16" rx="2" fill="#0b6bcb"/>'
    '<path d="M8 2v12M2 8h12" stroke="#fff" stroke-width="1.5"/></svg>'
)


def build_home(*, base: str = "", center_name: str = DEFAULT_CENTER_NAME) -> str:
    """The page (HTML). ``base``: the path prefix the service is served under (``/gisgrid`` behind a proxy, else
    ""); ``center_name``: the city's 监督指挥中心 (GISGRID_CENTER_NAME), the page's title and heading."""
    center = html.escape(center_name)
    links = {name.replace("-", "_"): html.escape(base + path) for name, path in LINKS.items()}
    return pagesrc.fill(PAGE_HTML, center_title=center, center_heading=center, **links)
