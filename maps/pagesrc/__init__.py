"""The pages' own JavaScript and CSS, kept as real files here (lintable, diffable) and read once at import.

Each page module (maps.console, maps.field, maps.render, maps.basemap) reads its files with :func:`source` and
puts them where its HTML or script needs them, so a page is the same as when the code lived in Python strings.
The helpers both page scripts start with are shared.js, which maps.pagejs fills with its zh-CN tables (``DOM_JS``).
What Python supplies to a file is put in one way only: a marker comment ``/*gisgrid:NAME*/``
(valid in JS and CSS) that :func:`fill` replaces, once, by a value. A marker alone on its line is replaced with its
line (the value is whole lines: a shared script, generated CSS rules); one inside a line is replaced in place (a
JSON value). Everything else a page needs from Python goes through its config object (``window.GG_CONFIG``,
``window.GF_CONFIG``, the service worker's ``SW``), written into the page as JSON.

The files are package data (``pyproject.toml``: ``maps.pagesrc``), installed with the wheel.
"""

from __future__ import annotations

import re
from importlib import resources

#: Every file of this folder a page reads (tests check each exists and is not empty).
FILES = (
    "basemap-shift.js",
    "console.js",
    "console.css",
    "field.js",
    "field.css",
    "field-sw.js",
    "legend.css",
    "shared.js",
)
MARKER = re.compile(r"/\*gisgrid:([a-z][a-z0-9-]*)\*/")


def source(name: str) -> str:
    """The text of one of :data:`FILES` (UTF-8)."""
    if name not in FILES:
        raise ValueError(f"{name}: not a page source file (maps.pagesrc.FILES)")
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def fill(text: str, **values: str) -> str:
    """``text`` with each ``/*gisgrid:NAME*/`` marker replaced by ``values[NAME]`` (``_`` in a keyword is ``-`` in
    the marker): every value's marker must occur exactly once, and no marker may be left unfilled."""
    for key, value in values.items():
        marker = f"/*gisgrid:{key.replace('_', '-')}*/"
        if text.count(marker) != 1:
            raise ValueError(f"{marker} occurs {text.count(marker)} times, not once")
        text = _put(text, marker, value)
    left = MARKER.search(text)
    if left:
        raise ValueError(f"{left.group(0)} is not filled")
    return text


def _put(text: str, marker: str, value: str) -> str:
    """A marker on its own line replaced with the line (the value is whole lines), else in place."""
    line = re.search(rf"^[ \t]*{re.escape(marker)}[ \t]*\n", text, re.MULTILINE)
    if line is None:
        return text.replace(marker, value)
    return text[: line.start()] + value + text[line.end() :]
