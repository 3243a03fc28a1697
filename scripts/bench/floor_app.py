"""The HTTP floor for the console benchmark: a bare ASGI app that answers every request with 100 fixed bytes, served
the same way as the real app (uvicorn, httptools/uvloop, the same workers and socket) — what a round trip costs
on this machine before any framework or database."""

from __future__ import annotations

from typing import Any

BODY = b"\x1a" * 100
HEADERS = [(b"content-type", b"application/vnd.mapbox-vector-tile"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
