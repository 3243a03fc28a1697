"""The server's access log: one line per request with its status and duration, and the log configuration
``gisgrid serve`` hands uvicorn (timestamps on every line).

Why our own line and not uvicorn's: uvicorn's access log has neither a time nor a duration. This is a plain ASGI
wrapper (no BaseHTTPMiddleware), outside the app's own middleware, so the duration covers the whole answer.
Who acted is appended: the ``X-Actor`` and ``X-Role`` headers the API reads (api/deps.py), and ``X-Department``
when sent, percent-decoded as the API decodes them, each quoted, with control and format characters escaped and
capped in length, so that a header cannot start a forged line of its own. No other header and no body is logged:
the lines carry no credentials.
"""

from __future__ import annotations

import copy
import logging
import time
import unicodedata
from typing import Any
from urllib.parse import unquote

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.logging import DefaultFormatter

ACCESS_LOGGER = "gisgrid.access"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
#: ISO 8601 with the UTC offset: a server's local zone is not always Asia/Shanghai.
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S%z"

log = logging.getLogger(ACCESS_LOGGER)

#: The identity headers of api.deps.get_actor, as the line names them.
IDENTITY_HEADERS = ((b"x-actor", "actor"), (b"x-role", "role"))
#: The department a department's staff act for: named on the line only when sent (most requests have none).
DEPARTMENT_HEADER = (b"x-department", "department")
_IDENTITY_KEYS = frozenset(k for k, _ in (*IDENTITY_HEADERS, DEPARTMENT_HEADER))
#: A name longer than this is cut (with …): a header may not fill the log.
MAX_IDENTITY_CHARS = 64


def _identity(raw: bytes | None) -> str:
    """A header's value for the line: ``-`` when not sent, else quoted, percent-decoded (raw UTF-8 read as such),
    with line breaks, other control and format characters, quotes and backslashes escaped."""
    if raw is None:
        return "-"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    text = unquote(text, errors="backslashreplace")
    if len(text) > MAX_IDENTITY_CHARS:
        text = text[:MAX_IDENTITY_CHARS] + "…"
    out = []
    for c in text:
        if c in '"\\':
            out.append("\\" + c)
        elif unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp"):  # \n, NUL, bidi overrides, U+2028 …
            out.append(c.encode("unicode_escape").decode("ascii"))
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def identities(headers: list[tuple[bytes, bytes]]) -> str:
    """``actor="李娜" role="dispatcher"`` from a request's headers (the first of each)."""
    found: dict[bytes, bytes] = {}
    for key, value in headers:
        if key in _IDENTITY_KEYS:
            found.setdefault(key, value)
    named = [f"{label}={_identity(found.get(key))}" for key, label in IDENTITY_HEADERS]
    key, label = DEPARTMENT_HEADER
    if key in found:
        named.append(f"{label}={_identity(found[key])}")
    return " ".join(named)


class AccessLog:
    """``127.0.0.1:52992 "GET /health HTTP/1.1" 200 3.1ms actor=- role=-`` for every HTTP request (logged at
    INFO)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # an exception before the answer started: the server answers 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            client = scope.get("client")
            query = scope.get("query_string", b"").decode("latin-1")
            # raw_path: the path as the client sent it (under a root path too), else the decoded one.
            raw = scope.get("raw_path")
            path = raw.decode("latin-1") if isinstance(raw, bytes) else scope["path"]
            target = path + (f"?{query}" if query else "")
            log.info(
                '%s "%s %s HTTP/%s" %d %.1fms %s',
                f"{client[0]}:{client[1]}" if client else "-",
                scope["method"],
                target,
                scope.get("http_version", "1.1"),
                status,
                (time.perf_counter() - start) * 1000,
                identities(scope.get("headers", [])),
            )


def create_logged_app() -> AccessLog:
    """The app factory the workers of ``gisgrid serve --workers N`` run: the app from GISGRID_*, with its access log."""
    from api.main import create_app

    return AccessLog(create_app())


class OneLineFormatter(DefaultFormatter):
    """uvicorn's format with the exception said on the line (``: ConnectionRefusedError: [Errno 111] …``) instead
    of its traceback: for a library's expected retries (asyncpg's pool refilling itself while the database is down
    logged ~15 lines a time, for a fault that is no bug of ours)."""

    def format(self, record: logging.LogRecord) -> str:
        if not record.exc_info or record.exc_info[1] is None:
            return super().format(record)
        exc = record.exc_info[1]
        one = logging.makeLogRecord(record.__dict__)
        one.msg, one.args = f"{record.getMessage()}: {type(exc).__name__}: {exc}", ()
        one.exc_info = one.exc_text = None
        return super().format(one)


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging configuration with a timestamp on every line; uvicorn's access log is replaced by ours.
    Every other logger (the root's: SQLAlchemy's pool, a library's warnings) gets the same format, at WARNING, and
    asyncpg's one line per warning (review46 F7: its pool's retries came with no time and no level, as tracebacks
    through Python's last-resort handler)."""
    from uvicorn.config import LOGGING_CONFIG

    cfg = copy.deepcopy(LOGGING_CONFIG)
    fmt = "%(asctime)s %(levelprefix)s %(message)s"
    for name in ("default", "access"):
        cfg["formatters"][name].update(fmt=fmt, datefmt=DATE_FORMAT)
    cfg["formatters"]["access"]["()"] = "uvicorn.logging.DefaultFormatter"  # ours is a plain message
    cfg["formatters"]["one_line"] = {"()": f"{__name__}.OneLineFormatter", "fmt": fmt, "datefmt": DATE_FORMAT}
    cfg["handlers"]["one_line"] = {**cfg["handlers"]["default"], "formatter": "one_line"}
    cfg["loggers"]["gisgrid"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    cfg["loggers"][ACCESS_LOGGER] = {"handlers": ["access"], "level": level.upper(), "propagate": False}
    cfg["loggers"]["asyncpg"] = {"handlers": ["one_line"], "level": "WARNING", "propagate": False}
    cfg["root"] = {"handlers": ["default"], "level": "WARNING"}
    return cfg
