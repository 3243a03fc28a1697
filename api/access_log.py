"""The server's access log: one line per request with its status and duration, and the log configuration
``gisgrid serve`` hands uvicorn (timestamps on every line).

Why our own line and not uvicorn's: uvicorn's access log has neither a time nor a duration. This is a plain ASGI
wrapper (no BaseHTTPMiddleware), outside the app's own middleware, so the duration covers the whole answer.
Nothing here logs headers or bodies: the lines carry no credentials.
"""

from __future__ import annotations

import copy
import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ACCESS_LOGGER = "gisgrid.access"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
#: ISO 8601 with the UTC offset: a server's local zone is not always Asia/Shanghai.
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S%z"

log = logging.getLogger(ACCESS_LOGGER)


class AccessLog:
    """``127.0.0.1:52992 "GET /health HTTP/1.1" 200 3.1ms`` for every HTTP request (logged at INFO)."""

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
                '%s "%s %s HTTP/%s" %d %.1fms',
                f"{client[0]}:{client[1]}" if client else "-",
                scope["method"],
                target,
                scope.get("http_version", "1.1"),
                status,
                (time.perf_counter() - start) * 1000,
            )


def create_logged_app() -> AccessLog:
    """The app factory the workers of ``gisgrid serve --workers N`` run: the app from GISGRID_*, with its access log."""
    from api.main import create_app

    return AccessLog(create_app())


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging configuration with a timestamp on every line; uvicorn's access log is replaced by ours."""
    from uvicorn.config import LOGGING_CONFIG

    cfg = copy.deepcopy(LOGGING_CONFIG)
    fmt = "%(asctime)s %(levelprefix)s %(message)s"
    for name in ("default", "access"):
        cfg["formatters"][name].update(fmt=fmt, datefmt=DATE_FORMAT)
    cfg["formatters"]["access"]["()"] = "uvicorn.logging.DefaultFormatter"  # ours is a plain message
    cfg["loggers"]["gisgrid"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    cfg["loggers"][ACCESS_LOGGER] = {"handlers": ["access"], "level": level.upper(), "propagate": False}
    return cfg
