"""Self-hosted front-end assets for the map console: no CDN on an offline city intranet.

folium's templates and plugins link Leaflet, jQuery, Bootstrap, Font Awesome, … from five CDNs. Here every one
of them comes from a pinned npm package (``maps/package.json`` + ``package-lock.json``, installed with
``npm ci`` into ``maps/node_modules``) or from a PyPI package (folium's own heat-map script), plus two small
files of ours in ``maps/static``. The app serves them under ``/static/vendor/<package>@<version>/<path>``.

folium keeps its links in class-level ``default_js`` / ``default_css`` lists shared by every instance, so
:func:`use_local_assets` replaces them once per process for ``folium.Map`` and every plugin class the project
uses; a link with no local copy is refused rather than left pointing at a CDN.

Command line: ``python -m maps.assets install`` (npm ci when missing or stale, then verify), ``check``, ``list``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path, PurePosixPath

import folium
from folium import plugins

from gisgrid.errors import ConfigError

MAPS_DIR = Path(__file__).resolve().parent
PACKAGE_JSON = MAPS_DIR / "package.json"
PACKAGE_LOCK = MAPS_DIR / "package-lock.json"
NODE_MODULES = MAPS_DIR / "node_modules"
STATIC_DIR = MAPS_DIR / "static"
FOLIUM_DIR = Path(folium.__file__).resolve().parent
STAMP = NODE_MODULES / ".gisgrid-assets-stamp"

VENDOR_PREFIX = "/static/vendor"
NPM_CI = ("npm", "ci", "--omit=dev", "--no-audit", "--no-fund", "--ignore-scripts")
NPM_CI_TEXT = "cd maps && " + " ".join(NPM_CI)

#: npm package → exact pinned version (package.json is the one place versions are written).
PINS: dict[str, str] = json.loads(PACKAGE_JSON.read_text(encoding="utf-8"))["dependencies"]
FOLIUM_VERSION: str = folium.__version__


class AssetError(ConfigError):
    """The vendored assets are missing, stale or cannot be installed; the message says what to run."""

    code = "assets_error"


def _npm(package: str, path: str) -> str:
    return f"{VENDOR_PREFIX}/{package}@{PINS[package]}/{path}"


def _folium(path: str) -> str:
    return f"{VENDOR_PREFIX}/folium@{FOLIUM_VERSION}/{path}"


def _ours(path: str) -> str:
    return f"{VENDOR_PREFIX}/gisgrid/{path}"


#: folium default_js/default_css name → local URL (names as folium 0.20 spells them).
ASSETS: dict[str, str] = {
    # folium.Map
    "leaflet": _npm("leaflet", "dist/leaflet.js"),
    "jquery": _npm("jquery", "dist/jquery.min.js"),
    "bootstrap": _npm("bootstrap", "dist/js/bootstrap.bundle.min.js"),
    "awesome_markers": _npm("leaflet.awesome-markers", "dist/leaflet.awesome-markers.js"),
    "leaflet_css": _npm("leaflet", "dist/leaflet.css"),
    "bootstrap_css": _npm("bootstrap", "dist/css/bootstrap.min.css"),
    "glyphicons_css": _npm("glyphicons-only-bootstrap", "css/bootstrap.min.css"),
    "awesome_markers_font_css": _npm("@fortawesome/fontawesome-free", "css/all.min.css"),
    "awesome_markers_css": _npm("leaflet.awesome-markers", "dist/leaflet.awesome-markers.css"),
    "awesome_rotate_css": _ours("awesome-rotate.css"),
    # plugins.Realtime
    "Leaflet_Realtime_js": _npm("leaflet-realtime", "dist/leaflet-realtime.js"),
    # plugins.VectorGridProtobuf (+ our click fix, loaded right after it)
    "vectorGrid": _npm("leaflet.vectorgrid", "dist/Leaflet.VectorGrid.bundled.min.js"),
    "vectorGridClickFix": _ours("vectorgrid-click-fix.js"),
    # plugins.MarkerCluster / FastMarkerCluster
    "markerclusterjs": _npm("leaflet.markercluster", "dist/leaflet.markercluster.js"),
    "markerclustercss": _npm("leaflet.markercluster", "dist/MarkerCluster.css"),
    "markerclusterdefaultcss": _npm("leaflet.markercluster", "dist/MarkerCluster.Default.css"),
    # plugins.HeatMap: folium's own build, shipped in the folium wheel
    "leaflet-heat.js": _folium("templates/leaflet_heat.min.js"),
    # /docs (api.docs): Swagger UI, which FastAPI would load from cdn.jsdelivr.net
    "swagger_ui_js": _npm("swagger-ui-dist", "swagger-ui-bundle.js"),
    "swagger_ui_css": _npm("swagger-ui-dist", "swagger-ui.css"),
    "swagger_ui_favicon": _npm("swagger-ui-dist", "favicon-32x32.png"),
}

#: Every folium class whose links are replaced (each one the project renders must be here).
LOCALISED_CLASSES: tuple[type, ...] = (
    folium.Map,
    plugins.Realtime,
    plugins.VectorGridProtobuf,
    plugins.MarkerCluster,
    plugins.FastMarkerCluster,
    plugins.HeatMap,
)

#: Links appended after a class's own (the VectorGrid click fix must follow VectorGrid).
EXTRA_JS: dict[type, list[str]] = {plugins.VectorGridProtobuf: ["vectorGridClickFix"]}

MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".map": "application/json",
    ".png": "image/png",
    ".gif": "image/gif",
    ".svg": "image/svg+xml",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".eot": "application/vnd.ms-fontobject",
}
#: Versioned paths never change content; our own files may change with the code.
IMMUTABLE_MAX_AGE = 365 * 24 * 3600
OWN_MAX_AGE = 300

_lock = threading.Lock()
_localised = False


# -- where each URL lives on disk -------------------------------------------------------------------


def resolve(url_path: str) -> Path | None:
    """The file behind ``<package>@<version>/<path>`` (the part after ``/static/vendor/``), or None.

    Only pinned npm packages at their pinned version, folium at the installed version and ``gisgrid`` (our
    files) are served, only asset file types, and never outside the package folder."""
    parts = PurePosixPath(url_path).parts
    if parts and parts[0] == "/":
        parts = parts[1:]
    if len(parts) < 2 or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        return None
    n = 2 if parts[0].startswith("@") else 1  # scoped npm name: @scope/name@version
    head, rest = "/".join(parts[:n]), parts[n:]
    if head == "gisgrid":
        root = STATIC_DIR
    else:
        name, at, version = head.rpartition("@")
        if not at or not name:
            return None
        if name == "folium" and version == FOLIUM_VERSION:
            root = FOLIUM_DIR
        elif PINS.get(name) == version:
            root = NODE_MODULES / name
        else:
            return None
    if not rest or PurePosixPath(rest[-1]).suffix.lower() not in MEDIA_TYPES:
        return None
    root = root.resolve()
    path = root.joinpath(*rest).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


def media_type(path: Path) -> str:
    return MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")


def max_age(url_path: str) -> int:
    return OWN_MAX_AGE if url_path.lstrip("/").startswith("gisgrid/") else IMMUTABLE_MAX_AGE


def local_file(url: str) -> Path | None:
    """The file behind a full local URL from :data:`ASSETS` (None when it is missing)."""
    if not url.startswith(VENDOR_PREFIX + "/"):
        return None
    return resolve(url[len(VENDOR_PREFIX) + 1 :])


def with_root(html: str, base: str) -> str:
    """A rendered page with its vendored links (``"/static/vendor/…``) after ``base``, the path prefix a proxy
    serves the app under: folium's links are class-level, one list for every request, so the prefix of this
    request is put in the page it rendered."""
    return html.replace(f'"{VENDOR_PREFIX}/', f'"{base}{VENDOR_PREFIX}/') if base else html


def missing_files() -> dict[str, str]:
    """Asset name → URL for every asset whose file is not on disk."""
    return {name: url for name, url in ASSETS.items() if local_file(url) is None}


# -- installing -------------------------------------------------------------------------------------


def _lock_digest() -> str:
    return hashlib.sha256(PACKAGE_LOCK.read_bytes()).hexdigest()


def _installed_version(package: str) -> str | None:
    try:
        return json.loads((NODE_MODULES / package / "package.json").read_text(encoding="utf-8")).get("version")
    except (OSError, ValueError):
        return None


def stale_reason() -> str | None:
    """Why ``maps/node_modules`` needs (re)installing, or None when it matches the lock file."""
    if not PACKAGE_LOCK.is_file():
        return "maps/package-lock.json is missing"
    if not NODE_MODULES.is_dir():
        return "maps/node_modules is missing"
    if not STAMP.is_file() or STAMP.read_text(encoding="utf-8").strip() != _lock_digest():
        return "maps/node_modules was not installed from the current maps/package-lock.json"
    wrong = [f"{p} {_installed_version(p)} (want {v})" for p, v in PINS.items() if _installed_version(p) != v]
    if wrong:
        return "installed versions differ from maps/package.json: " + ", ".join(wrong)
    missing = missing_files()
    if missing:
        return "asset files missing: " + ", ".join(sorted(missing))
    return None


def install_assets(*, force: bool = False, echo=print) -> bool:
    """Run ``npm ci`` in ``maps/`` when node_modules is missing or stale (or ``force``); True when it ran.

    Raises :class:`AssetError` naming the command when npm is missing or fails, or files are still missing.
    One install at a time per checkout (two processes at once — the test suite's workers — would both run npm ci
    into the same folder): the second waits, then finds the assets current."""
    if not force and stale_reason() is None:
        return False
    key = hashlib.sha256(str(MAPS_DIR.resolve()).encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"gisgrid-assets-{key}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        return _install_assets(force=force, echo=echo)


def _install_assets(*, force: bool, echo) -> bool:
    reason = "forced" if force else stale_reason()
    if reason is None:
        return False
    npm = shutil.which("npm")
    if npm is None:
        raise AssetError(
            f"npm is not installed, and the map console needs its vendored assets ({reason}). "
            f"Install Node.js and npm (Debian: apt-get install -y nodejs npm), then run: {NPM_CI_TEXT}"
        )
    echo(f"installing map console assets ({reason}): {NPM_CI_TEXT}")
    done = subprocess.run([npm, *NPM_CI[1:]], cwd=MAPS_DIR, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise AssetError(f"`{NPM_CI_TEXT}` failed (exit {done.returncode}):\n{tail}")
    STAMP.write_text(_lock_digest() + "\n", encoding="utf-8")
    missing = missing_files()
    if missing:
        raise AssetError(
            "after npm ci these asset files are still missing (check maps/package.json against maps/assets.py): "
            + ", ".join(f"{k} → {v}" for k, v in sorted(missing.items()))
        )
    return True


# -- folium ------------------------------------------------------------------------------------------


def _local_links(cls: type, attr: str) -> list[tuple[str, str]]:
    out = []
    for name, url in getattr(cls, attr, None) or []:
        if url.startswith(VENDOR_PREFIX + "/"):
            out.append((name, url))
        elif name in ASSETS:
            out.append((name, ASSETS[name]))
        else:
            raise AssetError(
                f"{cls.__name__}.{attr} links {name!r} → {url}, which has no local copy: add the package to "
                "maps/package.json and the name to maps.assets.ASSETS"
            )
    if attr == "default_js":
        have = {n for n, _ in out}
        out += [(n, ASSETS[n]) for n in EXTRA_JS.get(cls, []) if n not in have]
    return out


def localise(cls: type) -> None:
    """Point one folium class's class-level ``default_js``/``default_css`` at the local copies."""
    js, css = _local_links(cls, "default_js"), _local_links(cls, "default_css")
    cls.default_js = js  # type: ignore[attr-defined]
    cls.default_css = css  # type: ignore[attr-defined]


def use_local_assets() -> None:
    """Replace folium's CDN links by local ones for Map and every plugin used: once per process, thread-safe.

    These lists are class-level (``add_js_link`` on one map changes every later map), so this is a process-wide
    setting; call it at startup or before building a map. A link without a local copy raises AssetError."""
    global _localised
    with _lock:
        if _localised:
            return
        for cls in LOCALISED_CLASSES:
            localise(cls)
        _localised = True


# -- checking a page ---------------------------------------------------------------------------------

_ABSOLUTE = re.compile(r"""\b(?:https?|wss?|ftp)://[^\s"'<>()\\]+""", re.IGNORECASE)
_PROTOCOL_RELATIVE = re.compile(
    r"""(?:(?:src|href|action|poster|data|srcset)\s*=\s*["']?\s*|url\(\s*["']?\s*|@import\s+["']?\s*|["'`])"""
    r"""(//[A-Za-z0-9][^\s"'<>()`]*)""",
    re.IGNORECASE,
)


def find_external(html: str) -> list[str]:
    """Every http(s)/ws(s)/ftp URL and every protocol-relative ``//host/...`` reference in a page."""
    found = [m.group(0) for m in _ABSOLUTE.finditer(html)]
    found += [m.group(1) for m in _PROTOCOL_RELATIVE.finditer(html)]
    return found


def assert_no_external(html: str) -> None:
    """AssertionError listing the off-origin URLs of a rendered page (the console must make no such request)."""
    found = find_external(html)
    if found:
        shown = ", ".join(sorted(set(found))[:20])
        raise AssertionError(f"{len(found)} external URL(s) in the page: {shown}")


# -- command line ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "install"
    try:
        if command == "install":
            ran = install_assets(force="--force" in args)
            print("map console assets installed" if ran else "map console assets up to date")
        elif command == "check":
            reason = stale_reason()
            if reason:
                print(f"map console assets need installing: {reason}; run: {NPM_CI_TEXT}", file=sys.stderr)
                return 1
            print("map console assets up to date")
        elif command == "list":
            for name, url in ASSETS.items():
                print(f"{name}\t{url}")
        else:
            print("usage: python -m maps.assets [install [--force] | check | list]", file=sys.stderr)
            return 2
    except AssetError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
