"""HTTP-level details the routes do not see: HEAD answered as GET, request body limits, CORS, cross-site requests,
hardening headers."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.background import BackgroundTask
from starlette.datastructures import Headers
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gisgrid.errors import Reason
from gisgrid.photos import MAX_BYTES as MAX_PHOTO_BYTES
from gisgrid.photos import MAX_PER_REQUEST

#: Photos one form may carry (more are refused, ``too_many_photos``): the whole multipart body is limited to that
#: many full-size photos plus the text fields and the parts' headers; a JSON body by ``Settings.max_json_bytes``.
MAX_FORM_PHOTOS = MAX_PER_REQUEST
MAX_FORM_BYTES = MAX_FORM_PHOTOS * MAX_PHOTO_BYTES + 1024 * 1024


GEOJSON_MEDIA_TYPE = "application/geo+json"


#: Datums whose coordinates are shifted from WGS 84 by design (hundreds of metres): a document in one is no RFC 7946
#: GeoJSON (§4: WGS 84 coordinates), though shaped as one. CGCS2000, the stored frame, is within centimetres of WGS
#: 84 and stays GeoJSON.
SHIFTED_DATUMS = frozenset({"gcj02", "bd09"})
#: Said wherever a route answers GeoJSON in a datum the request names (OpenAPI, README).
SHIFTED_GEOJSON_HELP = (
    "with datum=gcj02 or bd09 the same document is answered as application/json, not application/geo+json: its "
    "coordinates are not WGS 84, so it is no RFC 7946 GeoJSON, and a GIS client must not read it as one (the "
    "document's datum member names the datum)"
)


class GeoJSONResponse(JSONResponse):
    """A GeoJSON document (a Feature or FeatureCollection) under its registered media type (RFC 7946 §12) — but a
    document whose ``datum`` member names a shifted datum (GCJ-02, BD-09) as plain ``application/json``: a generic
    GeoJSON reader (QGIS, GDAL, OpenLayers) ignores that member and would plot it ~500 m off."""

    media_type = GEOJSON_MEDIA_TYPE

    def __init__(
        self,
        content: Any,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        if media_type is None and isinstance(content, dict) and content.get("datum") in SHIFTED_DATUMS:
            media_type = "application/json"
        super().__init__(content, status_code, headers, media_type, background)


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


def items_detail(items: list[dict[str, Any]]) -> dict[str, Any]:
    """A refusal's ``detail`` listing its ``items`` in the one shape every refusal has (review52 F3f): ``{"message",
    "items"}``, the message each item's field and reason in English (``format: Input should be 'json' or
    'geojson'``) — request validation's, a content type's and a CORS preflight's refusals as the service's."""
    lines = []
    for item in items:
        why = str(item.get("reason") or item.get("code") or "refused")
        if " / " in why and not why[:1].isascii():  # zh-CN first: the English half (the Chinese: message_zh)
            why = why.split(" / ", 1)[1]
        lines.append(f"{item['field']}: {why}" if item.get("field") else why)
    return {"message": "; ".join(lines), "items": items}


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
                        {
                            "error": "payload_too_large",
                            "reason": "payload_too_large",
                            "detail": too_large_detail(scope),
                        },
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
NOSNIFF = (b"x-content-type-options", b"nosniff")
CSP_HEADER = b"content-security-policy"
#: The Content-Security-Policy directive every answer carries by default (GISGRID_FRAME_ANCESTORS): framed by this
#: origin's own pages only (clickjacking: a page framed under a decoy, its buttons clicked unseen). Merged into a
#: page's own policy that does not say it, added as a policy of its own elsewhere.
FRAME_ANCESTORS = b"frame-ancestors 'self'"
_SCRIPT_TAG = re.compile(r"<script(\s[^>]*)?>")


def nonced(html: str) -> tuple[str, str]:
    """``html`` with a new nonce on each of its inline ``<script>`` tags (those with ``src`` load from this origin,
    ``'self'``), and the nonce: a page built per request sends it in ``script-src 'nonce-…'`` instead of
    ``'unsafe-inline'`` (review54 F7), so a script an escaping mistake let into the page someday is not run. The
    pages have no inline event handlers (``on…=``) — a nonce cannot cover those."""
    nonce = secrets.token_urlsafe(18)

    def add(tag: re.Match[str]) -> str:
        attrs = tag.group(1) or ""
        return tag.group(0) if re.search(r"\ssrc\s*=", attrs) else f'<script nonce="{nonce}"{attrs}>'

    return _SCRIPT_TAG.sub(add, html), nonce


#: Sent with every answer: a link followed to another site carries no Referer (case and order URLs, the console's
#: filter query strings stay here); this origin's own requests keep theirs (the cross-site guard reads it).
REFERRER_POLICY = (b"referrer-policy", b"same-origin")
#: Sent with every answer: the field page takes photos and a GPS fix from this origin; nothing may listen.
PERMISSIONS_POLICY = (b"permissions-policy", b"camera=(self), geolocation=(self), microphone=()")
#: What browsers that know only the older header read, for the sources it can say (it cannot name an origin).
_FRAME_OPTIONS: dict[tuple[str, ...], bytes] = {("'self'",): b"SAMEORIGIN", ("'none'",): b"DENY"}


def frame_headers(sources: Sequence[str] = ("'self'",)) -> tuple[tuple[tuple[bytes, bytes], ...], bytes]:
    """The headers every answer carries and its ``frame-ancestors`` directive for GISGRID_FRAME_ANCESTORS
    (checked by :func:`gisgrid.settings.check_frame_ancestors`): ``X-Frame-Options`` only where it says the same
    (``'self'`` alone: SAMEORIGIN, ``'none'``: DENY). With other origins listed it is left out: SAMEORIGIN would keep
    the portal out in a browser that reads it before the policy."""
    directive = b"frame-ancestors " + " ".join(sources).encode()
    frame_options = _FRAME_OPTIONS.get(tuple(sources))
    headers = (NOSNIFF,) if frame_options is None else (NOSNIFF, (b"x-frame-options", frame_options))
    return headers, directive


def with_frame_ancestors(
    headers: list[tuple[bytes, bytes]], directive: bytes = FRAME_ANCESTORS
) -> list[tuple[bytes, bytes]]:
    """``headers`` with ``frame-ancestors`` in their Content-Security-Policy: as they are when a policy names it (the
    page's own choice); else ``directive`` appended to the first policy (several are each enforced), or added as
    the policy when there is none. One header, not a second policy: a client reading one value sees it."""
    policies = [i for i, (k, _) in enumerate(headers) if k.lower() == CSP_HEADER]
    for i in policies:
        directives = (d.strip().split(b" ", 1)[0].lower() for d in headers[i][1].split(b";"))
        if b"frame-ancestors" in directives:
            return headers
    if not policies:
        return [*headers, (CSP_HEADER, directive)]
    first = policies[0]
    key, value = headers[first]
    merged = value.strip().rstrip(b";").strip()
    headers = list(headers)
    headers[first] = (key, merged + b"; " + directive if merged else directive)
    return headers


class HardeningHeaders:
    """Adds ``nosniff``, :data:`REFERRER_POLICY`, :data:`PERMISSIONS_POLICY` and, where it applies,
    ``X-Frame-Options`` (:func:`frame_headers`) to every HTTP answer (one the app already set is left as it is),
    and the ``frame-ancestors`` of GISGRID_FRAME_ANCESTORS to its
    Content-Security-Policy (:func:`with_frame_ancestors`; the pages leave it out of their own policies). Wrapped
    around the whole app (:class:`api.main.App`), outside Starlette's error middleware, the host check and the tile
    fast path, so 500s, refused hosts, tiles and the body limiter's answers get it too; it touches only the
    response's start message."""

    def __init__(self, app: ASGIApp, frame_ancestors: Sequence[str] = ("'self'",)) -> None:
        self.app = app
        headers, self.directive = frame_headers(frame_ancestors)
        self.headers = (*headers, REFERRER_POLICY, PERMISSIONS_POLICY)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def hardened(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                have = {k.lower() for k, _ in headers}
                headers.extend(h for h in self.headers if h[0] not in have)
                message = {**message, "headers": with_frame_ancestors(headers, self.directive)}
            await send(message)

        await self.app(scope, receive, hardened)


#: Set in the scope of a request whose Host :class:`AllowedHosts` let through.
_HOST_ALLOWED = "gisgrid.host_allowed"


class AllowedHosts(TrustedHostMiddleware):
    """Starlette's host check (GISGRID_ALLOWED_HOSTS; ``*.example.gov.cn`` covers its subdomains) with its refusal
    as the API's JSON error: 400 ``bad_request``, reason ``host_not_allowed``, naming the host. A page of another
    site whose name is made to resolve to this server (DNS rebinding) sends its own name as Host, and is refused.

    Starlette answers a refused host itself in plain text: its answer is dropped and this one sent instead; a
    request it lets through is marked in the scope on its way to the app, so nothing the app sends is touched."""

    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str]) -> None:
        async def let_through(scope: Scope, receive: Receive, send: Send) -> None:
            scope[_HOST_ALLOWED] = True
            await app(scope, receive, send)

        # No redirect to a www. name that is listed: a refusal says what to set, the same for every method.
        super().__init__(let_through, allowed_hosts=allowed_hosts, www_redirect=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return

        async def unless_refused(message: Message) -> None:
            if scope.get(_HOST_ALLOWED):
                await send(message)

        await super().__call__(scope, receive, unless_refused)
        if not scope.get(_HOST_ALLOWED):
            await host_refusal(Headers(scope=scope).get("host"))(scope, receive, send)


_PORT = re.compile(r"(?<=[^:]):[0-9]*$")


def host_refusal(host_header: str | None) -> JSONResponse:
    """The 400 of a Host that GISGRID_ALLOWED_HOSTS does not list (or of a request without one)."""
    if host_header is None:
        detail = "请求没有 Host 头 / no Host header: the server answers only to the host names in GISGRID_ALLOWED_HOSTS"
    else:
        host = _PORT.sub("", host_header.strip().lower())[:100]  # the setting lists names without their port
        detail = (
            f"主机名「{host}」不在 GISGRID_ALLOWED_HOSTS 中 / Host not allowed: {host!r} is not listed in "
            "GISGRID_ALLOWED_HOSTS, the host names this server answers to"
        )
    body = {"error": "bad_request", "reason": str(Reason.HOST_NOT_ALLOWED), "detail": detail}
    return JSONResponse(body, status_code=400)


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
    - neither header, but a ``Referer`` (browsers from before ``Origin`` was sent on every form post, IE mode): its
      origin, judged as ``Origin`` is; one that is no http(s) URL with a host (no browser sends it) is refused;
    - none of the three: not a browser (curl, the 12345 hotline's system, scripts): passes — the gateway decides
      who they are. A page cannot leave the first two out, nor set ``X-Forwarded-Host`` without a preflight (it can
      hide its ``Referer``: such a browser is not protected here, as before)."""

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
        if origin is not None:
            return None if self.ours(origin, headers) else shown
        # Neither header (an old browser, IE mode): the page a browser sent it from, where it says one.
        referer = headers.get("referer")
        if referer is None or not referer.strip():  # an empty one: no page can send that, nor gain by it
            return None
        try:
            parts = urlsplit(referer.strip())
            source = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
        except ValueError:  # e.g. an unclosed IPv6 bracket: no page of ours
            source = ""
        return None if source and self.ours(source, headers) else f"Referer: {referer[:200]}"

    def ours(self, origin: str, headers: Headers) -> bool:
        """``origin`` is this server's own (host[:port] the request's ``Host`` or ``X-Forwarded-Host``) or listed."""
        if self.listed(origin):
            return True
        try:
            parts = urlsplit(origin.strip().lower())
        except ValueError:  # e.g. an unclosed IPv6 bracket: no origin of ours
            return False
        if parts.scheme in _DEFAULT_PORTS and parts.netloc:
            ours = [headers.get("host", ""), *headers.get("x-forwarded-host", "").split(",")]
            return _host(parts.netloc, parts.scheme) in {_host(h, parts.scheme) for h in ours if h.strip()}
        return False


#: What each failure of a refused CORS preflight means (Starlette names them: origin, method, headers, …): its
#: code (the Chinese is its row of messages_zh.csv, given as ``message_zh``) and its English reason.
_PREFLIGHT_FAILURES: dict[str, tuple[Reason, str]] = {
    "origin": (Reason.CORS_ORIGIN_NOT_ALLOWED, "the page's origin is not listed in GISGRID_CORS_ORIGINS"),
    "method": (Reason.CORS_METHOD_NOT_ALLOWED, "the method is not one the API takes from another origin"),
    "headers": (
        Reason.CORS_HEADERS_NOT_ALLOWED,
        "a header asked for is not one the API reads (Content-Type, X-Actor, X-Role, X-Department, Idempotency-Key)",
    ),
    "private-network": (Reason.CORS_PRIVATE_NETWORK_NOT_ALLOWED, "private-network access is not granted"),
}


def preflight_item(failure: str) -> dict[str, str]:
    """One refused part of a CORS preflight as every refusal's item: ``{"field", "reason", "code"}``, a part
    Starlette names that the table does not know with the preflight's code and its name as the reason."""
    code, why = _PREFLIGHT_FAILURES.get(failure, (Reason.CORS_PREFLIGHT_REFUSED, failure))
    return {"field": failure, "reason": why, "code": str(code)}


class JSONCORSMiddleware(CORSMiddleware):
    """Starlette's CORS with its refused preflight answered like every other refusal of the API: JSON naming what
    was refused (``bad_request``, reason ``cors_preflight_refused``), not a text/plain "Disallowed CORS origin"."""

    def preflight_response(self, request_headers: Headers) -> Response:
        answer = super().preflight_response(request_headers)
        if answer.status_code != 400:
            return answer
        said = bytes(answer.body).decode().removeprefix("Disallowed CORS ").split(", ")
        detail = items_detail([preflight_item(f) for f in said])
        body = {"error": "bad_request", "reason": str(Reason.CORS_PREFLIGHT_REFUSED), "detail": detail}
        headers = {k: v for k, v in answer.headers.items() if k not in ("content-length", "content-type")}
        return JSONResponse(body, status_code=400, headers=headers)


def add_cors(app: FastAPI, origins: list[str]) -> None:
    """Let the browser pages of ``origins`` call the API (GISGRID_CORS_ORIGINS); none by default. No cookies
    are used, so no credentials; the acting-user headers and Idempotency-Key may be sent, Location and
    Idempotent-Replayed read."""
    if not origins:
        return
    app.add_middleware(
        JSONCORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "HEAD", "POST", "PATCH", "OPTIONS"],
        allow_headers=["Content-Type", "X-Actor", "X-Role", "X-Department", "Idempotency-Key"],
        expose_headers=["Location", "Idempotent-Replayed"],  # a retried action's answer says it was one
        max_age=600,
    )
