"""The start page, the console, field and static map pages, byte for byte, for fixed inputs (tests/pages/*.html).

Pinned when the pages' HTML moved from Python strings into maps/pagesrc (templates filled by markers): the move
was to change nothing a browser receives. Folium's random element ids are numbered in order of appearance, the
static map's time stamp is fixed, and the pagesrc scripts and styles each page embeds whole (tested on their own in
test_pagesrc.py) stand as one ``[[NAME]]`` line each, found exactly once where the page has them.

A deliberate change of a page: look at the difference, then write the files anew with
``.venv/bin/python -m tests.test_pages_pinned`` and commit them with the change.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import Point, box

from gisgrid import workflow
from gisgrid.settings import DEFAULT_CENTER_NAME, Settings
from maps import console, field, render
from maps.basemap import basemap_for
from maps.pagejs import light_css

PINNED = Path(__file__).parent / "pages"
#: A centre name, labels and a prefix holding everything an HTML page must escape.
HOSTILE_CENTER = "新密市<数字化&城管>\"监督'中心"
HOSTILE_BASE = "/gg&<x>"
BOUNDS = (113.5, 34.6, 113.8, 34.9)
CLASSES = [
    {
        "code": "010101",
        "scheme": "gbt47678",
        "name": "暴露垃圾",
        "big": "市容环境",
        "types": [{"type": "默认", "limit": "2 工作时", "urgent": False}],
    },
    {"code": "0101", "scheme": "cjt214", "name": '<旧>"类别"', "big": "市容&环境", "types": []},
]


def _console_default() -> str:
    return console.build_console(
        bounds=None,
        states=workflow.STATES,
        roles=workflow.ROLES,
        actions=workflow.ACTIONS,
        required={a: r.required for a, r in workflow.TRANSITIONS.items()},
        optional={a: r.optional for a, r in workflow.TRANSITIONS.items()},
        field_labels=workflow.FIELD_LABELS,
        field_kinds=workflow.FIELD_KINDS,
        time_units=workflow.TIME_UNITS,
        escalation_levels=workflow.ESCALATION_LEVELS,
        departments={"DEPT01": "市政设施养护中心"},
        classes=CLASSES[:1],
        indicators={"on_time_disposal_rate": "按期处置率", "score": "综合得分"},
        reason_texts={"missing": "未填"},
    )


def _console_hostile() -> str:
    return console.build_console(
        bounds=BOUNDS,
        states={"reported": "<b>上报</b>", "closed": "结&案"},
        roles={"intake": '"><受理员>', "x": "其'他"},
        actions={"verify": "<核实>"},
        required={"verify": ["note"]},
        field_labels={"note": "<说明>"},
        departments={"d<1>": "</script><script>alert(2)</script>"},
        basemap=basemap_for("/amap/{z}/{x}/{y}.png?a=1&b=<2>", datum="gcj02", attribution="<高德>&"),
        escalation_levels={1: "<二级>", 2: "一级&", 3: "区"},
        classes=CLASSES,
        reason_texts={},
        base=HOSTILE_BASE,
        sources={"hotline": "<12345>"},
        center_name=HOSTILE_CENTER,
    )


def _field_default() -> str:
    return field.build_field_page(bounds=None, roles=workflow.ROLES, reason_texts={"missing": "未填"})


def _field_hostile() -> str:
    return field.build_field_page(
        bounds=BOUNDS,
        roles={"grid_worker": "<网格员>", "supervisor": '监督"员', "x": "x"},
        scheme="cjt214",
        reporting_roles=("supervisor", "grid_worker", "missing"),
        basemap=basemap_for(tianditu_token="0123456789abcdef0123456789abcdef"),
        reason_texts={"x": "</script>"},
        base=HOSTILE_BASE,
        center_name=HOSTILE_CENTER,
    )


def _map_polygons() -> str:
    gdf = gpd.GeoDataFrame(
        {"code": ["41019001", "41019002"], "name": ["<东>&街", '西"街'], "cases": [3, 7]},
        geometry=[box(113.6, 34.7, 113.61, 34.71), box(113.61, 34.7, 113.62, 34.71)],
        crs=4490,
    )
    return render.build_map(
        gdf, layer="grids", tier="1", column="cases", classes=2, title="<街道>&案件", center_name=HOSTILE_CENTER
    )[0]


def _map_points() -> str:
    gdf = gpd.GeoDataFrame(
        {"case_no": ["2026000001", "2026000002"], "state": ["reported", "closed"], "class_code": ["010101", "x"]},
        geometry=[Point(113.6, 34.7), Point(113.61, 34.71)],
        crs=4490,
    )
    return render.build_map(
        gdf, layer="cases", column="state", labels={"state": {"reported": "<上报>", "closed": "结案"}}, note="在办"
    )[0]


#: A centre name also holding the start page's old placeholder and a marker's text, each shown as written.
HOME_HOSTILE_CENTER = HOSTILE_CENTER + "{base}/*gisgrid:base*/"


def _home_default() -> str:
    from api.routers import home

    return home.home("", Settings(center_name=DEFAULT_CENTER_NAME))


def _home_hostile() -> str:
    from api.routers import home

    return home.home(HOSTILE_BASE, Settings(center_name=HOME_HOSTILE_CENTER))


PAGES: dict[str, Callable[[], str]] = {
    "home-default": _home_default,
    "home-hostile": _home_hostile,
    "console-default": _console_default,
    "console-hostile": _console_hostile,
    "field-default": _field_default,
    "field-hostile": _field_hostile,
    "map-polygons": _map_polygons,
    "map-points": _map_points,
}
#: What each page embeds whole from maps/pagesrc, by the name it stands as.
EMBEDDED: dict[str, dict[str, str]] = {
    "home": {},
    "console": {"PANEL_CSS": console.PANEL_CSS, "PANEL_JS": console.PANEL_JS},
    "field": {"PAGE_CSS": field.PAGE_CSS + light_css("gf"), "SCRIPT_URL": field.SCRIPT_URL},
    "map": {"LEGEND_CSS": render.LEGEND_CSS},
}
_FOLIUM_ID = re.compile(r"(?<=_)[0-9a-f]{32}(?![0-9a-z])")
_STAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d(?=</div>)")


def normalised(name: str, page: str) -> str:
    """``page`` with folium's ids numbered, the map's time stamp fixed and each embedded file as ``[[NAME]]``."""
    ids: dict[str, str] = {}
    page = _FOLIUM_ID.sub(lambda m: ids.setdefault(m.group(0), f"{len(ids):032d}"), page)
    if name.startswith("map-"):
        assert len(_STAMP.findall(page)) == 1, name
        page = _STAMP.sub("2026-01-02 03:04", page)
    for key, text in EMBEDDED[name.split("-")[0]].items():
        assert page.count(text) == 1, (name, key)
        page = page.replace(text, f"\n[[{key}]]\n")
    return page


@pytest.mark.parametrize("name", sorted(PAGES))
def test_the_page_is_as_pinned(name: str) -> None:
    want = (PINNED / f"{name}.html").read_text(encoding="utf-8")
    assert normalised(name, PAGES[name]()) == want


def test_the_pinned_pages_are_in_the_source_distribution(monkeypatch: pytest.MonkeyPatch) -> None:
    """review59 F10: setuptools' sdist takes only tests/test*.py by default; MANIFEST.in adds the rest of tests/,
    so this test runs from an sdist too. Evaluated as setuptools does (its template over the checkout's files)."""
    from setuptools.command.egg_info import FileList

    root = Path(__file__).parent.parent
    monkeypatch.chdir(root)  # setuptools reads the template from the project's root
    files = FileList()
    files.findall()
    for line in (root / "MANIFEST.in").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            files.process_template_line(line)
    shipped = {Path(f).as_posix() for f in files.files}
    assert {f"tests/pages/{name}.html" for name in PAGES} <= shipped
    assert {"tests/excel_samples/types.xls", "tests/photo_samples/gps.heic", "tests/browser/conftest.py"} <= shipped
    assert not [f for f in shipped if "__pycache__" in f or f.endswith(".pyc")]


def write_pinned() -> None:
    PINNED.mkdir(exist_ok=True)
    for name, build in PAGES.items():
        (PINNED / f"{name}.html").write_text(normalised(name, build()), encoding="utf-8")


if __name__ == "__main__":
    write_pinned()
    sys.exit(0)
