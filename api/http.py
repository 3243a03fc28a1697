"""HTTP-level details the routes do not see: HEAD answered as GET, request body limits, CORS, hardening headers."""

from __future__ import annotations

import json

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gisgrid.photos import MAX_BYTES as MAX_PHOTO_BYTES
from gisgrid.photos import MAX_PER_REQUEST

#: Photos one form may carry (more are refused, ``too_many_photos``): the whole multipart body is limited to that
#: many full-size photos plus the text fields and the parts' headers; a JSON body by ``Settings.max_json_bytes``.
MAX_FORM_PHOTOS = MAX_PER_REQUEST
MAX_FORM_BYTES = MAX_FORM_PHOTOS * MAX_PHOTO_BYTES + 1024 * 1024


GEOJSON_MEDIA_TYPE = "application/geo+json"


class GeoJSONResponse(JSONResponse):
    """A GeoJSON document (a Feature or FeatureCollection) under its registered media type (RFC 7946 §12)."""

    media_type = GEOJSON_MEDIA_TYPE


class HeadAsGet:
    """HEAD on any GET route: the GET answer's status and headers without its body (load balancers and monitors
    probe /health with HEAD; FastAPI routes answer only the methods they declare, so it was a 405)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return  # the body is dropped; Content-Length stays that of the GET answer
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


def too_large_detail(scope: Scope) -> str:
    """What a 413 says: the limit of the route the body was sent to (the body limiter keeps it in the scope)."""
    limit = scope.get(MAX_BODY_SIZE_SCOPE_KEY)
    where = f"{scope.get('method', '')} {scope.get('path', '')}"
    if not isinstance(limit, int):
        return f"request body too large for {where}"
    return f"request body larger than {limit} bytes ({limit / 1024 / 1024:.1f} MB), the limit of {where}"


class TooLargeAsJson:
    """The body limiter answers a Content-Length over the limit itself, in plain text, replacing whatever the app
    sends: this puts the API's JSON body (``payload_too_large``, naming the limit) in its place. Only requests that
    may carry a body are looked at."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        replacing = False

        async def json_413(message: Message) -> None:
            nonlocal replacing
            if message["type"] == "http.response.start" and message["status"] == 413:
                headers = dict(message.get("headers", []))
                replacing = headers.get(b"content-type", b"").startswith(b"text/plain")
                if replacing:
                    body = json.dumps(
                        {"error": "payload_too_large", "detail": too_large_detail(scope)},
                        ensure_ascii=False,
                        separators=(",", ":"),
                    ).encode()
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 413,
                            "headers": [
                                (b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close"),
                            ],
                        }
                    )
                    await send({"type": "http.response.body", "body": body, "more_body": False})
                    return
            if replacing:
                return  # the plain-text body, replaced above
            await send(message)

        await self.app(scope, receive, json_413)


#: Sent with every answer: a browser takes the declared Content-Type as it is and never sniffs one (a stored photo
#: with HTML after its JPEG data stays an image).
HARDENING_HEADERS: tuple[tuple[bytes, bytes], ...] = ((b"x-content-type-options", b"nosniff"),)


class HardeningHeaders:
    """Adds :data:`HARDENING_HEADERS` to every HTTP answer (one the app already set is left as it is). Wrapped
    around the whole app (:class:`api.main.App`), outside Starlette's error middleware and the tile fast path, so
    500s, tiles and the body limiter's answers get it too; it touches only the response's start message."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def hardened(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                have = {k.lower() for k, _ in headers}
                headers.extend(h for h in HARDENING_HEADERS if h[0] not in have)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, hardened)


def add_cors(app: FastAPI, origins: list[str]) -> None:
    """Let the browser pages of ``origins`` call the API (GISGRID_CORS_ORIGINS); none by default. No cookies
    are used, so no credentials; the acting-user headers and Idempotency-Key may be sent, Location and
    Idempotent-Replayed read."""
    if not origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "HEAD", "POST", "PATCH", "OPTIONS"],
        allow_headers=["Content-Type", "X-Actor", "X-Role", "X-Department", "Idempotency-Key"],
        expose_headers=["Location", "Idempotent-Replayed"],  # a retried action's answer says it was one
        max_age=600,
    )
