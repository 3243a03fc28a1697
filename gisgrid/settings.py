"""Configuration, read from ``GISGRID_*`` environment variables (and ``.env``).

One ``Settings`` object is built at the edge (CLI entry, app factory, test fixture) and passed in;
nothing reads the environment at import time.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Literal

from dotenv import dotenv_values
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from gisgrid.constants import STORAGE_SRID as STORAGE_SRID  # re-exported: the migrations import it from here
from gisgrid.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: GISGRID_* variables that are read by the tests and scripts, not by Settings: no "misspelt setting" warning.
OTHER_ENV_NAMES = frozenset({"GISGRID_REQUIRE_BROWSER", "GISGRID_CHROMIUM", "GISGRID_BENCH_REUSE"})
#: Prefixes of such variables (the benchmark scripts' GISGRID_BENCH_*).
OTHER_ENV_PREFIXES = ("GISGRID_BENCH_",)


#: A path prefix: segments of unreserved URL characters only, so that it goes into pages, scripts and headers as is.
_ROOT_PATH = re.compile(r"(?:/[A-Za-z0-9._~-]+)*")


def normalise_root_path(value: str | None) -> str:
    """``""`` or ``/a/b`` (no trailing slash) from a root path as an operator writes it (``gisgrid/``, ``/gisgrid/``
    …); ValueError for anything else (a host, a query, spaces, ``..``)."""
    v = (value or "").strip()
    if not v or v == "/":
        return ""
    v = "/" + v.strip("/")
    if not _ROOT_PATH.fullmatch(v) or any(part in (".", "..") for part in v.split("/")):
        raise ValueError(f"root path {value!r} must be a path like /gisgrid (letters, digits, . _ ~ - between slashes)")
    return v


def in_checkout() -> bool:
    """Running from a source checkout (editable install or ``python -m`` in it), not from an installed wheel."""
    return (PROJECT_ROOT / "pyproject.toml").is_file()


def default_data_dir() -> Path:
    """The checkout's own ``.gisgrid`` (whatever the current directory: another cwd must not silently make a new,
    empty cluster); for an installed package the user's data folder (``$XDG_DATA_HOME/gisgrid``)."""
    if in_checkout():
        return PROJECT_ROOT / ".gisgrid"
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "gisgrid"


def default_catalogue_dir() -> Path:
    """``data/`` of the checkout; a wheel ships it as the top-level ``data`` folder beside the packages (same path)."""
    return PROJECT_ROOT / "data"


#: The issuing body printed on 交办单/督办单 when GISGRID_CENTER_NAME is not set.
DEFAULT_CENTER_NAME = "数字化城市管理监督指挥中心"
#: At most this many characters: it is one line of an A4 order's header.
CENTER_NAME_MAX = 40


def check_center_name(value: str) -> str:
    """The city's 监督指挥中心 as its orders name it (e.g. 新密市数字化城市管理监督指挥中心): one line of text, its
    surrounding spaces dropped."""
    value = value.strip()
    if not value:
        raise ValueError("must name the issuing centre, e.g. 新密市数字化城市管理监督指挥中心 (unset: the default)")
    bad = next((ch for ch in value if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")), None)
    if bad is not None:
        raise ValueError(f"must be one line of text, not holding the control character U+{ord(bad):04X}")
    if len(value) > CENTER_NAME_MAX:
        raise ValueError(f"at most {CENTER_NAME_MAX} characters (it heads the printed orders), not {len(value)}")
    return value


def check_basemap_url(url: str) -> str:
    """An XYZ template: an http(s) URL or a path on this origin, with {z}, {x} and {y}."""
    if "://" in url:
        scheme = url.split("://", 1)[0].lower()
        if scheme not in ("http", "https"):
            raise ValueError(f"must be an http(s) URL or a path starting with /, not {scheme}://")
    elif not url.startswith("/"):
        raise ValueError("must be an http(s) URL or a path starting with /")
    missing = [p for p in ("{z}", "{x}", "{y}") if p not in url]
    if missing:
        raise ValueError(f"an XYZ tile template needs {{z}}, {{x}} and {{y}} (missing {', '.join(missing)})")
    return url


def split_list(v: object) -> object:
    """A list setting as written in the environment: comma-separated, or a JSON list; its items stripped, the
    empty ones dropped. Anything else is left to pydantic's type check."""
    if isinstance(v, str):
        v = json.loads(v) if v.strip().startswith("[") else v.split(",")
    if isinstance(v, list):
        return [o.strip() for o in v if isinstance(o, str) and o.strip()]
    return v


#: A host name as Starlette's TrustedHostMiddleware compares it: letters, digits, - and . (an IPv6 address in
#: brackets), optionally after one leading ``*.`` wildcard label; no scheme, port, path or spaces.
_ALLOWED_HOST = re.compile(r"(?:\*\.)?[a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\]")


def check_allowed_host(value: str) -> str:
    """One GISGRID_ALLOWED_HOSTS entry, lower case: ``*`` (any), a host name, ``*.example.gov.cn`` or ``[::1]``;
    ValueError naming it otherwise (a port or scheme would never match: the Host is compared without its port)."""
    host = value.strip().lower()
    if host != "*" and not _ALLOWED_HOST.fullmatch(host):
        raise ValueError(
            f"allowed host {value!r} must be a host name without scheme or port, e.g. gw.city.gov.cn, "
            "*.example.gov.cn (a wildcard as the first label only) or 127.0.0.1"
        )
    return host


#: One frame-ancestors source besides the keywords: scheme://host[:port], the host optionally ``*.``-prefixed.
_FRAME_SOURCE = re.compile(r"[a-z][a-z0-9+.-]*://(?:\*\.)?[a-z0-9-]+(?:\.[a-z0-9-]+)*(?::[0-9]{1,5})?", re.IGNORECASE)
_FRAME_KEYWORDS = {"'self'", "'none'"}


def check_frame_ancestors(sources: list[str]) -> list[str]:
    """GISGRID_FRAME_ANCESTORS as checked: each source ``'self'``, ``'none'`` or an origin (a trailing / dropped);
    ``'none'`` alone; none given: ``'self'``. ValueError naming the first bad source: one with a space, ``;`` or
    ``,`` inside would add another directive or source to the Content-Security-Policy header."""
    checked = []
    for source in sources:
        s = source.strip().rstrip("/") if "://" in source else source.strip()
        if s.lower() in ("self", "none"):
            raise ValueError(f"frame ancestor {source!r}: a keyword is written quoted, '{s.lower()}'")
        if s.lower() in _FRAME_KEYWORDS:
            s = s.lower()
        elif not _FRAME_SOURCE.fullmatch(s):
            raise ValueError(
                f"frame ancestor {source!r} must be 'self', 'none' or an origin like https://portal.city.gov.cn "
                "(scheme://host[:port], a host may start with *.; no path, spaces, ; or ,)"
            )
        if s not in checked:
            checked.append(s)
    if "'none'" in checked and len(checked) > 1:
        raise ValueError("frame ancestor 'none' cannot be listed with other sources")
    return checked or ["'self'"]  # set empty: the default


#: A CORS origin as a browser sends it in ``Origin``: scheme://host[:port], nothing after (compared exactly).
_CORS_ORIGIN = re.compile(r"([a-z][a-z0-9+.-]*)://([a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(?::([0-9]{1,5}))?")
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def check_cors_origin(value: str) -> str:
    """One GISGRID_CORS_ORIGINS entry as browsers send it: ``*``, or scheme://host[:port] in lower case, without a
    trailing / or the scheme's default port (a browser's Origin has neither); ValueError naming it otherwise — one
    without a scheme, or with a path, would never match an Origin header."""
    origin = value.strip()
    if origin == "*":
        return origin
    origin = origin.rstrip("/").lower() if "://" in origin else origin.lower()
    m = _CORS_ORIGIN.fullmatch(origin)
    if m is None:
        raise ValueError(
            f"CORS origin {value!r} must be an origin like https://app.example.cn or http://10.1.2.3:8080 "
            "(scheme://host[:port]: no path, query or wildcard) or * for any"
        )
    scheme, host, port = m.groups()
    return f"{scheme}://{host}" if port is None or _DEFAULT_PORTS.get(scheme) == port else origin


class Settings(BaseSettings):
    # The checkout's .env, then the current directory's (which wins).
    model_config = SettingsConfigDict(env_prefix="GISGRID_", env_file=(PROJECT_ROOT / ".env", ".env"), extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of an existing PostGIS server. Unset: the embedded cluster is used.",
    )
    app_database_url: str | None = Field(
        default=None,
        description="With GISGRID_DATABASE_URL (the owner role: migrations, imports): the URL the web service "
        "connects with, as a runtime role that may only read and write rows (docs/operations.md). Unset: the "
        "service uses GISGRID_DATABASE_URL's role; the embedded cluster's service always uses its gisgrid_app.",
    )
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Folder of the embedded cluster (pg/), its password and the evidence photos (photos/); default "
        "the checkout's .gisgrid",
    )
    db_name: str = Field(default="gisgrid", description="Database name inside the embedded cluster.")
    db_port: int | None = Field(
        default=None, ge=1, le=65535, description="Port of the embedded cluster; unset picks a free one."
    )
    pg_bindir: Path | None = Field(default=None, description="PostgreSQL binaries folder; unset: auto-detect.")
    catalogue_dir: Path = Field(
        default_factory=default_catalogue_dir, description="Folder holding catalogue/ and rules/ (the project's data/)"
    )
    catalogue_extra: list[Path] = Field(
        default_factory=list,
        description="City files extending/overriding the catalogues, e.g. GISGRID_CATALOGUE_EXTRA='[\"local.csv\"]'",
    )
    working_hours: str = Field(
        default="08:30-12:00,13:30-17:30",
        description="Working periods of a working day (工作时), local time; or seasonal (夏季/冬季作息), month-day "
        "ranges covering the year once, each as long a day, e.g. "
        "05-01..09-30=08:00-12:00,14:30-18:00;10-01..04-30=08:30-12:00,13:30-17:30",
    )
    calendar_file: Path | None = Field(
        default=None,
        description="CSV date,kind (休息日/holiday, 上班日/workday): the city's own days; a year listed is taken as "
        "fully described (e.g. next year's holidays before chinesecalendar has them)",
    )
    center_name: str = Field(
        default=DEFAULT_CENTER_NAME,
        description="The city's 监督指挥中心 as the 交办单/督办单 name their issuer, e.g. "
        "新密市数字化城市管理监督指挥中心; also the start page's, the console's, the field page's and the static "
        "maps' (gisgrid map render) titles",
    )
    basemap_url: str | None = Field(
        default=None, description="Local XYZ basemap for the console, e.g. /basemap/{z}/{x}/{y}.png (default: none)"
    )
    basemap_attribution: str | None = Field(default=None, description="Attribution shown for that basemap")
    basemap_subdomains: str | None = Field(default=None, description="Values of {s} in the basemap URL (default abc)")
    basemap_datum: Literal["cgcs2000", "wgs84", "gcj02"] = Field(
        default="cgcs2000", description="Datum of the basemap tiles; gcj02 (AMap, Tencent) shifts it under the overlays"
    )
    tianditu_token: str | None = Field(
        default=None, description="天地图 Tianditu key: its vector basemap and labels when no basemap URL is set"
    )
    root_path: str = Field(
        default="",
        description="Path prefix a reverse proxy serves the app under, e.g. /gisgrid (the proxy strips it); "
        "the pages, links and Location headers then carry it",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field(
        default="info", description="Server log level (info: the access log too)"
    )
    db_pool_size: int = Field(
        default=16,
        ge=1,
        le=100,
        description="Database connections each server process keeps open per pool (as many again in bursts); "
        "below the concurrent requests a process serves, connections are opened and closed on every burst",
    )
    statement_timeout_s: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="Longest a database statement of the web service may run, in seconds (0: no limit): past it "
        "the request is refused 503 (database_timeout) instead of holding a worker while the database hangs. The "
        "command line's imports, exports and migrations are not limited",
    )
    migration_lock_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="Longest a migration (db up, serve, demo load, db upgrade/downgrade) waits for a table lock "
        "another session holds before it stops naming the wait",
    )
    max_json_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        le=256 * 1024 * 1024,
        description="Largest JSON request body in bytes (default 1 MB); larger ones get 413 before they are read. "
        "Photo forms have their own limit (10 photos of 15 MB)",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Web origins allowed to call the API from a browser (CORS), comma-separated, e.g. "
        "https://app.example.cn; '*' for any. Default none: same origin only",
    )

    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host names the server answers to (the request's Host header, without its port), "
        "comma-separated, e.g. gw.city.gov.cn,*.example.gov.cn; any other gets 400 (DNS rebinding). "
        "Default none listed: every Host is answered — a deployment should set it",
    )
    frame_ancestors: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["'self'"],
        description="Who may show the pages in a frame (CSP frame-ancestors), comma-separated: 'self', 'none' or "
        "origins such as https://portal.city.gov.cn. Default 'self': this origin only",
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, v: object) -> object:
        # Comma-separated in the environment (a JSON list works too).
        v = split_list(v)
        if isinstance(v, list):
            return [check_cors_origin(o) for o in v]
        return v

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, v: object) -> object:
        v = split_list(v)
        if isinstance(v, list):
            return [check_allowed_host(h) for h in v]
        return v

    @field_validator("frame_ancestors", mode="before")
    @classmethod
    def _split_frame_ancestors(cls, v: object) -> object:
        v = split_list(v)
        if isinstance(v, list):
            return check_frame_ancestors(v)
        return v

    @field_validator("database_url", "app_database_url")
    @classmethod
    def _normalise_url(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        v = v.strip()
        # Plain libpq-style URLs are accepted; the project's driver is psycopg2.
        if v.startswith("postgres://"):
            v = "postgresql://" + v[len("postgres://") :]
        return v

    @field_validator("root_path")
    @classmethod
    def _normalise_root_path(cls, v: str) -> str:
        return normalise_root_path(v)

    @field_validator("center_name")
    @classmethod
    def _check_center_name(cls, v: str) -> str:
        return check_center_name(v)

    @field_validator("basemap_url")
    @classmethod
    def _check_basemap_url(cls, v: str | None) -> str | None:
        return check_basemap_url(v) if v else None

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_level(cls, v: object) -> object:
        return v.lower() if isinstance(v, str) else v

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def data_path(self) -> Path:
        return self.data_dir.expanduser().resolve()


def ensure_data_dir(settings: Settings) -> Path:
    """Make the data folder (0711 when made here: other accounts cannot list it — review54 F3 — but the embedded
    cluster's OS user, ``postgres`` when gisgrid runs as root, can reach its ``pg/``; what it holds is private by its
    own modes: photos 0700, passwords 0600, the cluster 0700), or a one-line ConfigError naming GISGRID_DATA_DIR (a
    path through a file, /proc …)."""
    path = settings.data_path
    try:
        path.mkdir(mode=0o711, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"GISGRID_DATA_DIR: cannot create {path}: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"GISGRID_DATA_DIR: {path} is not writable by this user")
    return path


def unknown_env_settings(environ: Mapping[str, str] | None = None) -> list[str]:
    """One line per ``GISGRID_*`` variable that is no setting (a typo would otherwise be silently ignored, e.g. a
    misspelt GISGRID_DATABASE_URL falling back to the embedded cluster), naming the nearest known one."""
    return _unknown_setting_lines(os.environ if environ is None else environ, "")


def unknown_dotenv_settings(files: Iterable[Path | str] | None = None) -> list[str]:
    """The same lines for the ``GISGRID_*`` keys of the ``.env`` files Settings reads (``files``: those by
    default), each naming its file; a file that is not there is skipped, as Settings skips it."""
    lines = []
    for path in _dotenv_files(files):
        lines += _unknown_setting_lines(dotenv_values(path, encoding="utf-8"), f" in {path}")
    return lines


def _dotenv_files(files: Iterable[Path | str] | None = None) -> list[Path]:
    """The ``.env`` files Settings reads (``files``: those by default) that are there, each once."""
    if files is None:
        configured = Settings.model_config.get("env_file")
        # One path or several, as pydantic-settings takes it
        files = [configured] if isinstance(configured, Path | str) else configured or ()
    found: list[Path] = []
    for file in files:
        path = Path(file).resolve()
        if path not in found and path.is_file():  # run from the checkout, its .env is both
            found.append(path)
    return found


def _unknown_setting_lines(keys: Iterable[str], where: str) -> list[str]:
    return [
        f"{key}{where} is not a gisgrid setting and is ignored{f' (did you mean {near}?)' if near else ''}"
        for key, near in _unknown_settings(keys)
    ]


def _unknown_settings(keys: Iterable[str]) -> list[tuple[str, str | None]]:
    """Each ``GISGRID_*`` key that is no setting, with the nearest setting's name (None when none is near)."""
    known = {f"GISGRID_{name.upper()}" for name in Settings.model_fields}
    found = []
    for key in sorted(keys):
        upper = key.upper()
        if not upper.startswith("GISGRID_") or upper in known or upper in OTHER_ENV_NAMES:
            continue
        if upper.startswith(OTHER_ENV_PREFIXES):
            continue
        near = difflib.get_close_matches(upper, sorted(known), n=1, cutoff=0.6)
        found.append((key, near[0] if near else None))
    return found


def misspelt_settings(
    environ: Mapping[str, str] | None = None, files: Iterable[Path | str] | None = None, *, serve: bool = True
) -> str:
    """The refusal's text when a ``GISGRID_*`` variable (or ``.env`` key) is a near miss of a setting, else "":
    ``gisgrid serve`` does not start on it (review46 F2) — a mistyped GISGRID_DATABASE_URL would serve an empty
    embedded cluster, and report healthy — nor do ``db`` and ``demo`` (``serve=False``), which would make that
    cluster or load the demo into it. Names with no setting near (a script's own variable) stay a warning."""
    keys = list(os.environ if environ is None else environ)
    for path in _dotenv_files(files):
        keys += list(dotenv_values(path, encoding="utf-8"))
    near = [f"{key} (did you mean {name}?)" for key, name in _unknown_settings(keys) if name]
    if not near:
        return ""
    not_run = "服务未启动" if serve else "命令未执行"
    return (
        f"环境变量名疑似拼写错误,{not_run} / not a gisgrid setting, and too close to one to be ignored: "
        f"{', '.join(near)}; correct or unset it"
    )


def settings_error_field(message: str) -> str | None:
    """The ``GISGRID_*`` name in a pydantic-settings parse error (``error parsing value for field "x" …``)."""
    m = re.search(r'field "([a-z_]+)"', message)
    return f"GISGRID_{m.group(1).upper()}" if m else None


#: Files of ``data/catalogue`` that are the product's, not a city's policy (review55 F6): a GISGRID_CATALOGUE_DIR
#: copy need not hold them, so an upgrade brings their new rows. ``messages_zh.csv`` (the zh-CN of the code's
#: reason codes, which must match the code) and ``export_fields.csv`` (the standards' field widths) are always the
#: package's; ``search_terms.csv`` (the field page's search words) is the copy's when it has one (a city may add
#: local words), else the package's.
PACKAGE_ONLY_FILES = ("messages_zh.csv", "export_fields.csv")
PACKAGE_DEFAULT_FILES = ("search_terms.csv",)


def product_data_dir(settings: Settings, filename: str) -> Path:
    """The ``data/`` folder to read the product-owned catalogue file ``filename`` from: the package's, unless the
    file may be the city's (:data:`PACKAGE_DEFAULT_FILES`) and ``GISGRID_CATALOGUE_DIR``'s ``catalogue/`` has it."""
    own = Path(settings.catalogue_dir)
    if filename in PACKAGE_DEFAULT_FILES and (own / "catalogue" / filename).is_file():
        return own
    return default_catalogue_dir()


def check_catalogue_dir(settings: Settings) -> Path:
    """``GISGRID_CATALOGUE_DIR``, or a ConfigError naming the setting and the path when it is no folder holding
    ``catalogue/`` and ``rules/`` (review55 F5: a missing folder was reported as its first missing file)."""
    root = Path(settings.catalogue_dir)
    what = "a copy of the project's data/, the folder holding catalogue/ and rules/"
    if not root.is_dir():
        raise ConfigError(f"GISGRID_CATALOGUE_DIR: {root}: folder not found ({what})", detail={"path": str(root)})
    lacking = [sub for sub in ("catalogue", "rules") if not (root / sub).is_dir()]
    if lacking:
        raise ConfigError(
            f"GISGRID_CATALOGUE_DIR: {root}: has no {' and no '.join(f'{sub}/' for sub in lacking)} folder ({what})",
            detail={"path": str(root)},
        )
    return root


def catalogue_folder(settings_or_dir: Settings | Path | str, marker: str) -> Path:
    """The folder of the catalogue CSVs: ``data/catalogue`` under ``Settings.catalogue_dir`` (checked:
    :func:`check_catalogue_dir`); a path given directly may be ``data/`` or ``data/catalogue/`` itself (the one
    holding ``marker``, a file every catalogue folder has)."""
    if isinstance(settings_or_dir, Settings):
        return check_catalogue_dir(settings_or_dir) / "catalogue"
    base = Path(settings_or_dir)
    return base if (base / marker).exists() else base / "catalogue"
