"""The pages' own JavaScript, CSS and HTML, kept as real files here (lintable, diffable) and read once at import.

Each page module (maps.console, maps.field, maps.home, maps.render, maps.basemap) reads its files with
:func:`source` and puts them where its HTML or script needs them, so a page is the same as when the code lived in
Python strings. The helpers both page scripts start with are shared.js, which maps.pagejs fills with its zh-CN
tables (``DOM_JS``). What Python supplies to a file is put in one way only: a marker that :func:`fill` replaces,
once, by a value; a comment ``/*gisgrid:NAME*/`` in JS and CSS (in an HTML file too, inside its ``<script>`` and
``<style>``), a comment ``<!--gisgrid:NAME-->`` in HTML (the console's side panel, the field page, the start page:
text and attribute values, each value made safe for the spot by the page module, as :func:`maps.pagejs.attr`
escapes a label). A marker alone on its line is replaced with its line (the value is whole lines: a shared script,
generated CSS rules, the page's links); one inside a line is replaced in place (a JSON value, an attribute, a list
of options). The values are put in in one pass: a value holding a marker's text (a department named so) is put in
as it is, never filled again.
Everything else a page needs from Python goes through its config object (``window.GG_CONFIG``,
``window.GF_CONFIG``, the service worker's ``SW``), written into the page as JSON.

The files are package data (``pyproject.toml``: ``maps.pagesrc``), installed with the wheel.
"""

from __future__ import annotations

import re
from collections import Counter
from importlib import resources

#: Every file of this folder a page reads (tests check each exists and is not empty).
FILES = (
    "basemap-shift.js",
    "console-panel.html",
    "console.js",
    "console.css",
    "field.js",
    "field.css",
    "field.html",
    "field-sw.js",
    "home.html",
    "legend.css",
    "shared.js",
)
#: The two forms of a marker (``{}``: its name): in JS and CSS, and in HTML.
FORMS = ("/*gisgrid:{}*/", "<!--gisgrid:{}-->")
_NAME = "([a-z][a-z0-9-]*)"
MARKER = re.compile("|".join(re.escape(form).replace(r"\{\}", _NAME) for form in FORMS))
#: A marker alone on its line (taken with its line) or anywhere else.
_SPOT = re.compile(rf"^[ \t]*(?:{MARKER.pattern})[ \t]*\n|{MARKER.pattern}", re.MULTILINE)


def source(name: str) -> str:
    """The text of one of :data:`FILES` (UTF-8)."""
    if name not in FILES:
        raise ValueError(f"{name}: not a page source file (maps.pagesrc.FILES)")
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def fill(text: str, /, **values: str) -> str:
    """``text`` with each marker (``/*gisgrid:NAME*/`` or ``<!--gisgrid:NAME-->``) replaced by ``values[NAME]``
    (``_`` in a keyword is ``-`` in the marker): every value's marker must occur exactly once, in either form, and
    no marker may be left unfilled. A marker alone on its line is replaced with its line, others in place."""
    wanted = {key.replace("_", "-"): value for key, value in values.items()}
    found = Counter(_name(m) for m in MARKER.finditer(text))
    for name in wanted:
        if found[name] != 1:
            either = " or ".join(form.format(name) for form in FORMS)
            raise ValueError(f"{either} occurs {found[name]} times, not once")
    left = next((m for m in MARKER.finditer(text) if _name(m) not in wanted), None)
    if left:
        raise ValueError(f"{left.group(0)} is not filled")
    return _SPOT.sub(lambda m: wanted[_name(m)], text)


def _name(match: re.Match[str]) -> str:
    """The marker's name, whichever form ``match`` found."""
    return next(g for g in match.groups() if g is not None)
