"""The pages' own JS, CSS and HTML live as files in maps/pagesrc: each file a page reads is there, not empty and
package data of the wheel; each marker (``/*gisgrid:NAME*/``, ``<!--gisgrid:NAME-->``) is filled once, and no served
page or script keeps one."""

from __future__ import annotations

import fnmatch
import html
import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gisgrid.settings import PROJECT_ROOT
from maps import console, field, home, pagesrc, render
from maps.basemap import SHIFT_JS
from maps.pagejs import DOM_JS, ZH_ERRORS, ZH_FIELDS, json_for_script

FOLDER = PROJECT_ROOT / "maps" / "pagesrc"
NODE = shutil.which("node") or shutil.which("nodejs")


def test_every_page_source_file_exists_is_not_empty_and_is_listed() -> None:
    on_disk = sorted(p.name for p in FOLDER.iterdir() if p.suffix in (".js", ".css", ".html"))
    assert on_disk == sorted(pagesrc.FILES)
    for name in pagesrc.FILES:
        assert (FOLDER / name).stat().st_size > 0, name
        assert pagesrc.source(name) == (FOLDER / name).read_text(encoding="utf-8")


def test_every_file_the_page_modules_read_is_a_page_source_file() -> None:
    read = set()
    for module in sorted((PROJECT_ROOT / "maps").glob("*.py")):
        read |= set(re.findall(r'pagesrc\.source\("([^"]+)"\)', module.read_text(encoding="utf-8")))
    assert read == set(pagesrc.FILES)


def test_the_page_source_files_are_package_data() -> None:
    config = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    patterns = config["package-data"]["maps.pagesrc"]
    for name in pagesrc.FILES:
        assert any(fnmatch.fnmatch(name, p) for p in patterns), name
    assert any(fnmatch.fnmatch("maps.pagesrc", p) for p in config["packages"]["find"]["include"])


def test_no_marker_is_left_in_the_scripts_and_styles() -> None:
    for text in (DOM_JS, SHIFT_JS, console.PANEL_CSS, console.PANEL_JS, field.PAGE_CSS, field.PAGE_JS, field.SW_JS):
        assert text.strip() and pagesrc.MARKER.search(text) is None
    assert render.LEGEND_CSS.strip() and "/*gisgrid:" not in render.LEGEND_CSS
    assert DOM_JS in console.PANEL_JS and DOM_JS in field.PAGE_JS  # the shared helpers put in whole
    # their zh-CN tables are data in Python (maps.pagejs), put in through markers, not copied into shared.js
    shared = pagesrc.source("shared.js")
    assert "/*gisgrid:zh-errors*/" in shared and "/*gisgrid:zh-fields*/" in shared
    assert "var ZH_ERRORS" not in shared and "var ZH_FIELDS" not in shared
    assert not any(f"{code}:" in shared or f'"{code}":' in shared for code in ZH_ERRORS)
    assert f"var ZH_ERRORS = {json_for_script(ZH_ERRORS)};" in DOM_JS
    assert f"var ZH_FIELDS = {json_for_script(ZH_FIELDS)};" in DOM_JS
    assert SHIFT_JS in console.PANEL_JS and SHIFT_JS in field.PAGE_JS
    assert ".gg-green { background: #2e7d32; }" in console.PANEL_CSS


def test_json_for_script_lets_no_value_open_or_close_a_script_or_a_comment() -> None:
    """review59 F8: ``<!--<script>`` in a value put the HTML parser in the script's double-escaped state (the rest
    of the page became script); ``</script>`` closed it. Every ``<``, ``>``, ``&``, U+2028 and U+2029 is a JSON
    escape, the same value once parsed; nothing else changes."""
    value = {"d<1>": "<!--<script>", "x": "</script><script>alert(1)</script>", "a": "A&B\u2028\u2029", "q": '\\"é'}
    text = json_for_script(value)
    assert text == (
        '{"d\\u003c1\\u003e": "\\u003c!--\\u003cscript\\u003e", '
        '"x": "\\u003c/script\\u003e\\u003cscript\\u003ealert(1)\\u003c/script\\u003e", '
        '"a": "A\\u0026B\\u2028\\u2029", "q": "\\\\\\"é"}'
    )
    assert json.loads(text) == value
    assert not any(c in text for c in "<>&\u2028\u2029")


def test_served_pages_keep_no_marker(page_client: TestClient) -> None:
    served = {}
    for url in ("/", "/console", "/field", "/field/sw.js"):
        r = page_client.get(url)
        assert r.status_code == 200, url
        served[url] = r.text
    (script,) = re.findall(r'<script src="(/field/page-[0-9a-f]{12}\.js)"></script>', served["/field"])
    served[script] = page_client.get(script).text
    assert served[script] == field.PAGE_JS
    assert console.PANEL_JS in served["/console"] and field.PAGE_CSS in served["/field"]
    for url, text in served.items():
        assert "/*gisgrid:" not in text and "<!--gisgrid:" not in text, url


def test_every_link_of_the_start_page_is_served(page_client: TestClient) -> None:
    """maps.home.LINKS are the app's paths: each answers (the locate route asks for its lon and lat)."""
    page = page_client.get("/").text
    for name, path in home.LINKS.items():
        assert html.escape(path) in page, name
        r = page_client.get(path)
        if name == "locate-url":
            missing = [(item["field"], item["code"]) for item in r.json()["detail"]["items"]]
            assert (r.status_code, missing) == (422, [("lon", "missing"), ("lat", "missing")])
        else:
            assert r.status_code == 200, (name, r.text[:200])


def test_fill_puts_each_value_once_and_refuses_a_missing_twice_or_unfilled_marker() -> None:
    text = "a {\n  /*gisgrid:lines*/\n  b: /*gisgrid:value*/;\n}\n"
    assert pagesrc.fill(text, lines="  x();\n  y();\n", value='{"k": 1}') == 'a {\n  x();\n  y();\n  b: {"k": 1};\n}\n'
    with pytest.raises(ValueError, match=r"^/\*gisgrid:other\*/ or <!--gisgrid:other--> occurs 0 times, not once$"):
        pagesrc.fill(text, lines="", value="", other="")
    with pytest.raises(ValueError, match=r"^/\*gisgrid:value\*/ or <!--gisgrid:value--> occurs 2 times, not once$"):
        pagesrc.fill(text + text, value="")
    with pytest.raises(ValueError, match=r"^/\*gisgrid:value\*/ or <!--gisgrid:value--> occurs 2 times, not once$"):
        pagesrc.fill(text + "<!--gisgrid:value-->", lines="", value="")  # once in each form is twice
    with pytest.raises(ValueError, match=r"^<!--gisgrid:other--> is not filled$"):
        pagesrc.fill(text + "<p><!--gisgrid:other--></p>", lines="", value="")
    with pytest.raises(ValueError, match=r"/\*gisgrid:value\*/ is not filled"):
        pagesrc.fill(text, lines="")
    with pytest.raises(ValueError, match="not a page source file"):
        pagesrc.source("../pagejs.py")


def test_fill_puts_html_comment_markers_in_one_pass() -> None:
    """The HTML form of a marker, alone on its line (taken with it) or in place, in an attribute too; a value
    holding a marker's text is put in as it is, never filled again (a department or centre named so)."""
    html = '<p title="<!--gisgrid:tip-->"><!--gisgrid:text--></p>\n  <!--gisgrid:lines-->\n<b>/*gisgrid:css*/</b>'
    filled = pagesrc.fill(html, tip="/*gisgrid:css*/", text="<!--gisgrid:tip-->", lines="<i>\n", css="b{}")
    assert filled == '<p title="/*gisgrid:css*/"><!--gisgrid:tip--></p>\n<i>\n<b>b{}</b>'


def test_the_html_templates_hold_only_the_markers_their_pages_fill() -> None:
    """Each marker of the three HTML templates once, in the HTML form outside ``<style>`` and ``<script>``; the
    pages fill every one (a page built is checked by :func:`maps.pagesrc.fill`: none missing, none left)."""
    markers = {}
    for name in ("console-panel.html", "field.html", "home.html"):
        text = pagesrc.source(name)
        found = [m.group(0) for m in pagesrc.MARKER.finditer(text)]
        assert len(found) == len(set(found)), name
        markers[name] = found
    assert markers["field.html"] == [
        "<!--gisgrid:title-->",
        "<!--gisgrid:links-->",
        "/*gisgrid:style*/",
        "<!--gisgrid:role-options-->",
        "<!--gisgrid:scripts-->",
        "/*gisgrid:config*/",
        "<!--gisgrid:script-url-->",
    ]
    assert all(m.startswith("<!--") for m in markers["console-panel.html"])
    assert len(markers["console-panel.html"]) == 19
    assert pagesrc.source("console-panel.html") == console.PANEL_HTML
    assert pagesrc.source("field.html") == field.PAGE_HTML
    # the start page: its centre's name twice (title, heading) and each link after the path prefix
    assert markers["home.html"] == [
        "<!--gisgrid:center-title-->",
        "<!--gisgrid:icon-url-->",
        "<!--gisgrid:center-heading-->",
        *(f"<!--gisgrid:{name}-->" for name in home.LINKS if name != "icon-url"),
    ]
    assert pagesrc.source("home.html") == home.PAGE_HTML


def test_a_label_holding_a_marker_shows_as_text_on_the_pages() -> None:
    marker_js, marker_html = "/*gisgrid:legend*/", "<!--gisgrid:role-options-->"
    panel = console.build_console(
        bounds=None,
        states={"reported": "上报"},
        roles={"intake": marker_js},
        actions={},
        required={},
        field_labels={},
        departments={"d": marker_html},
        center_name="/*gisgrid:center-name*/",
    )
    assert f">{marker_js}</option>" in panel and ">&lt;!--gisgrid:role-options--&gt;</option>" in panel
    assert "<h1>/*gisgrid:center-name*/ · 案件</h1>" in panel
    page = field.build_field_page(bounds=None, roles={"grid_worker": "/*gisgrid:config*/"}, center_name=marker_js)
    assert '<option value="grid_worker">/*gisgrid:config*/</option>' in page
    assert f"<title>{marker_js} · 网格员上报</title>" in page


def test_the_console_style_sets_the_panel_width_once() -> None:
    css = console.PANEL_CSS
    assert css.count("--gg-panel-width: 400px") == 1 and css.count("var(--gg-panel-width)") == 3


def test_every_script_parses_as_a_file_and_as_served(tmp_path: Path) -> None:
    """``node --check`` of each .js file as it is (its markers are comments) and of each script as a page has it."""
    assert NODE is not None, "no Node.js to check the page's JS (make setup needs it for the front-end assets)"
    scripts = {name: pagesrc.source(name) for name in pagesrc.FILES if name.endswith(".js")}
    scripts |= {"panel.js": console.PANEL_JS, "page.js": field.PAGE_JS, "sw.js": field.service_worker()}
    for name, text in scripts.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        done = subprocess.run([NODE, "--check", str(path)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, (name, done.stderr)
