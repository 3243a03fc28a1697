"""HTTP-level details the routes do not see: HEAD answered as GET, request body limits, CORS, cross-site requests,
hardening headers."""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gisgrid.errors import Reason
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
#: with HTML after its JPEG data stays an image); no other site may show an answer in a frame (clickjacking: a page
#: framed under a decoy, its buttons clicked unseen) — browsers that know only the older header read this one.
HARDENING_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"SAMEORIGIN"),
)
CSP_HEADER = b"content-security-policy"
#: The Content-Security-Policy directive every answer carries: framed by this origin's own pages only. Merged into
#: a page's own policy (console, field, orders) that does not say it, added as a policy of its own elsewhere.
FRAME_ANCESTORS = b"frame-ancestors 'self'"


def with_frame_ancestors(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` with ``frame-ancestors`` in their Content-Security-Policy: as they are when a policy names it (the
    page's own choice); else :data:`FRAME_ANCESTORS` appended to the first policy (several are each enforced), or
    added as the policy when there is none. One header, not a second policy: a client reading one value sees it."""
    policies = [i for i, (k, _) in enumerate(headers) if k.lower() == CSP_HEADER]
    for i in policies:
        directives = (d.strip().split(b" ", 1)[0].lower() for d in headers[i][1].split(b";"))
        if b"frame-ancestors" in directives:
            return headers
    if not policies:
        return [*headers, (CSP_HEADER, FRAME_ANCESTORS)]
    first = policies[0]
    key, value = headers[first]
    merged = value.strip().rstrip(b";").strip()
    headers = list(headers)
    headers[first] = (key, merged + b"; " + FRAME_ANCESTORS if merged else FRAME_ANCESTORS)
    return headers


class HardeningHeaders:
    """Adds :data:`HARDENING_HEADERS` to every HTTP answer (one the app already set is left as it is), and
    :data:`FRAME_ANCESTORS` to its Content-Security-Policy (:func:`with_frame_ancestors`). Wrapped around the whole
    app (:class:`api.main.App`), outside Starlette's error middleware and the tile fast path, so 500s, tiles and the
    body limiter's answers get it too; it touches only the response's start message."""

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
                message = {**message, "headers": with_frame_ancestors(headers)}
            await send(message)

        await self.app(scope, receive, hardened)


#: Methods that change something: a browser's request of one from another site is refused (:class:`CrossSiteGuard`).
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DEFAULT_PORTS = {"http": ":80", "https": ":443"}


def _host(value: str, scheme: str) -> str:
    """``host[:port]`` as compared: lower case, without the scheme's default port."""
    value = value.strip().lower()
    default = _DEFAULT_PORTS.get(scheme, "")
    return value[: -len(default)] if default and value.endswith(default) else value


class CrossSiteGuard:
    """Refuses a browser's unsafe request (POST, PUT, PATCH, DELETE) sent by a page of another site: 403
    ``forbidden``, reason ``cross_site_request``, before the route reads the body.

    Who acts is what the request's ``X-Actor``/``X-Role`` say, which a gateway sets from its login cookie: a plain
    HTML ``<form>`` on any site could otherwise post a report or an action with the visitor's identity (a form's
    multipart body needs no CORS preflight; a JSON one does, and CORS refuses it). Which site sent it:

    - ``Sec-Fetch-Site`` (every current browser, over HTTPS and from localhost): ``same-origin`` and ``none`` (typed
      by the user) pass; ``same-site`` and ``cross-site`` only from an origin of GISGRID_CORS_ORIGINS;
    - else ``Origin`` (older browsers, and every browser over plain HTTP, which sends no ``Sec-Fetch-*``): this
      server's own — host[:port] the request's ``Host``, or a proxy's ``X-Forwarded-Host`` — or one of
      GISGRID_CORS_ORIGINS; ``Origin: null`` (a sandboxed frame, a file, a redirect) never;
    - neither header: not a browser (curl, the 12345 hotline's system, scripts): passes — the gateway decides who
      they are. A page cannot leave both out, nor set ``X-Forwarded-Host`` without a preflight."""

    def __init__(self, app: ASGIApp, allowed_origins: Iterable[str] = ()) -> None:
        self.app = app
        origins = {o.strip().lower().rstrip("/") for o in allowed_origins}
        self.any_origin = "*" in origins
        self.allowed = frozenset(origins - {"*", "null"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in UNSAFE_METHODS:
            await self.app(scope, receive, send)
            return
        seen = self.refused(Headers(scope=scope))
        if seen is None:
            await self.app(scope, receive, send)
            return
        detail = (
            f"{scope['method']} refused: a browser sent it from a page of another site ({seen}). Another site's "
            "page may not act with the identity this browser has here; a web app of another origin that should "
            "call this API is listed in GISGRID_CORS_ORIGINS"
        )
        body = {"error": "forbidden", "reason": str(Reason.CROSS_SITE_REQUEST), "detail": detail}
        # The body is not read: the connection is closed after the answer, not left with its rest unread.
        await JSONResponse(body, status_code=403, headers={"Connection": "close"})(scope, receive, send)

    def listed(self, origin: str) -> bool:
        origin = origin.strip().lower().rstrip("/")
        return origin != "null" and (self.any_origin or origin in self.allowed)

    def refused(self, headers: Headers) -> str | None:
        """What gave the request away as another site's (its headers, for the answer), or None when it may pass."""
        origin = headers.get("origin")
        site = headers.get("sec-fetch-site")
        shown = f"Origin: {origin[:200]}" if origin is not None else "no Origin"
        if site is not None:
            if site.strip().lower() in ("same-origin", "none"):
                return None
            if origin is not None and self.listed(origin):
                return None
            return f"Sec-Fetch-Site: {site[:40]}, {shown}"
        if origin is None or self.listed(origin):
            return None
        try:
            parts = urlsplit(origin.strip().lower())
        except ValueError:  # e.g. an unclosed IPv6 bracket: no origin of ours
            return shown
        if parts.scheme in _DEFAULT_PORTS and parts.netloc:
            ours = [headers.get("host", ""), *headers.get("x-forwarded-host", "").split(",")]
            if _host(parts.netloc, parts.scheme) in {_host(h, parts.scheme) for h in ours if h.strip()}:
                return None
        return shown


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
