"""One place that maps domain errors to HTTP: every error body is ``{"error": code, "reason": code, "detail": ...}``
— ``reason`` the refusal's specific cause (``GisgridError.reason``), else the error code itself; ``detail`` a message,
or ``{"message", "items"}`` whichever layer refused (request validation too), each item (a field and why) with its
``code`` (pydantic's ``type`` for request validation) beside its English ``reason``; the Chinese in ``message_zh``."""

from __future__ import annotations

import contextlib
import html
import inspect
import json
import logging
import re
import traceback
import uuid
from collections.abc import Mapping
from typing import Any

import asyncpg
import psycopg2
import psycopg2.errors
from fastapi import FastAPI, Request, params
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.http import items_detail, too_large_detail
from api.prefix import route_path
from gisgrid.errors import (
    Busy,
    Conflict,
    DatabaseError,
    GisgridError,
    InvalidInput,
    NotFound,
    PhotoStoreUnavailable,
    Reason,
    StoredFileDamaged,
    TooLarge,
    Unavailable,
)
from gisgrid.storage.database import (
    ASYNCPG_UNAVAILABLE,
    CONCURRENT_CONFLICT_TEXT,
    concurrent_conflict_cause,
    describe_connect_error,
    timeout_cause,
)
from gisgrid.texts import MAX_JSON_DEPTH, too_deep_words
from gisgrid.workflow import RoleNotAllowed

STATUS: dict[type[GisgridError], int] = {
    RoleNotAllowed: 403,  # before InvalidInput, its base class: the first match wins
    NotFound: 404,
    InvalidInput: 422,
    Conflict: 409,
    TooLarge: 413,
    DatabaseError: 503,
    Busy: 503,
    PhotoStoreUnavailable: 503,
    Unavailable: 503,
    StoredFileDamaged: 500,
}


log = logging.getLogger("gisgrid.api")
NO_STORE = {"Cache-Control": "no-store"}

#: What a client is told of a database outage (English, as every refusal's message; reason
#: ``database_unavailable`` or ``database_busy``, whose zh-CN text ``message_zh`` gives). Where the database is
#: (host, port, user, database) and the driver's message would tell a stranger about the network behind the
#: service: they go to the server log only, under the reference the answer carries.
DATABASE_DOWN_TEXT = "database unavailable; try again later"
DATABASE_BUSY_TEXT = "database busy (every connection in use); try again shortly"
#: A statement cut by the web service's statement timeout (GISGRID_STATEMENT_TIMEOUT_S), or asyncpg's own wait for
#: a database that answers nothing: the request was not completed (a write's transaction rolled back).
DATABASE_TIMEOUT_TEXT = (
    "the database did not answer in time (GISGRID_STATEMENT_TIMEOUT_S): the request was not completed; try again later"
)


def new_ref() -> str:
    return uuid.uuid4().hex[:12]


def _where(request: Request) -> str:
    return f"{request.method} {request.url.path}"


def log_database_down(where: str, why: str, *, busy: bool = False) -> tuple[str, str]:
    """Log a database outage with its cause under a new reference; return the reference and the client's text
    (reason :func:`database_down_reason`)."""
    ref = new_ref()
    log.warning("%s: 503 database_error ref=%s: %s", where, ref, why)  # a line, not a traceback
    return ref, f"{DATABASE_BUSY_TEXT if busy else DATABASE_DOWN_TEXT} (reference {ref})"


def database_down_reason(busy: bool = False) -> Reason:
    """The reason of an outage's 503: every connection in use (``database_busy``), else ``database_unavailable``."""
    return Reason.DATABASE_BUSY if busy else Reason.DATABASE_UNAVAILABLE


def log_photo_store_error(where: str, exc: PhotoStoreUnavailable) -> str:
    """Log the photo store's failure (the path, errno and free space: the server log only) under a new reference;
    return the reference. An error line, not a warning: nothing is filed until an operator frees or mends the
    disk, and it is no database outage (review46 F1)."""
    ref = new_ref()
    log.error("%s: 503 photo_store_error ref=%s: photo store error (errno %s): %s", where, ref, exc.errno, exc.log_text)
    return ref


def error_body(code: str, detail: Any, reason: str | None = None, ref: str = "") -> dict[str, Any]:
    """Every error answer's body: ``reason`` is always there (review52 F3c) — the refusal's specific cause, or the
    error code itself when it has none more specific (``not_found``, ``stale_version``, ``role_not_allowed``), so a
    client reads one key for every refusal."""
    body: dict[str, Any] = {"error": code, "reason": str(reason if reason is not None else code)}
    body["detail"] = detail
    if ref:
        body["ref"] = ref  # the server log's line of this answer carries the same reference
    return body


#: A refusal in zh-CN by its status, when neither its message, its items nor its reason says it in Chinese.
STATUS_ZH: dict[int, str] = {
    400: "请求有误",
    403: "无权办理",
    404: "未找到",
    405: "不支持此请求方法",
    409: "与当前数据冲突,请刷新后重试",
    413: "请求内容过大",
    415: "请求内容类型不符",
    422: "请求内容有误",
    500: "服务器内部错误",
    503: "服务暂不可用,请稍后重试",
}
_CJK_START = re.compile(r"[\u3400-\u9fff「（]")


def message_zh(body: Mapping[str, Any], status: int, texts: Mapping[str, str]) -> str:
    """The refusal ``body`` in zh-CN for a client that shows it as it is (a 12345 system): the Chinese half of a
    zh-CN-first message; else each item's code's text (``texts``: messages_zh.csv) after its fields
    (``lon、lat:须为数字``); else the reason's text; else the status's (:data:`STATUS_ZH`)."""
    detail, reason = body.get("detail"), body.get("reason")
    message = detail.get("message") if isinstance(detail, dict) else detail
    if isinstance(message, str) and _CJK_START.match(message):
        return message.split(" / ", 1)[0]
    items = detail.get("items") if isinstance(detail, dict) else detail
    fields: dict[str, list[str]] = {}  # one text, the fields it is said of: "lon、lat:未提供 …"
    for item in items if isinstance(items, list) else []:
        zh = texts.get(str(item.get("code") or reason or "")) if isinstance(item, dict) else None
        if zh:
            named = fields.setdefault(zh, [])
            if item.get("field") and str(item["field"]) not in named:
                named.append(str(item["field"]))
    if fields:
        return ";".join(f"{'、'.join(named)}:{zh}" if named else zh for zh, named in fields.items())
    if isinstance(reason, str) and reason in texts:
        return texts[reason]
    return STATUS_ZH.get(status) or ("请求未被接受" if status < 500 else "服务器错误")


def wants_zh(scope: Scope) -> bool:
    """Whether the request's ``Accept-Language`` names Chinese (``zh``, ``zh-CN``, ``zh_CN`` …, not refused with
    ``q=0``)."""
    for key, value in scope.get("headers", ()):
        if key == b"accept-language":
            for part in value.decode("latin-1").lower().split(","):
                tag, _, params = part.strip().partition(";")
                tag = tag.strip().replace("_", "-")  # zh_CN: Java's Locale.toString() form (review52 F9)
                if (tag == "zh" or tag.startswith("zh-")) and params.replace(" ", "") not in ("q=0", "q=0.0"):
                    return True
    return False


class ZhMessages:
    """Adds ``message_zh`` (:func:`message_zh`) to every JSON error answer (4xx/5xx) of a request whose
    ``Accept-Language`` names Chinese, whichever layer made it: the refusal's ``detail`` stays as documented
    (clients match on its codes and English), and a client that shows the refusal to a Chinese user — a 12345
    system — has it in Chinese. Wrapped around the whole app (:class:`api.main.App`); an error body that is not
    JSON, or compressed, passes as it is."""

    def __init__(self, app: ASGIApp, texts: Mapping[str, str]) -> None:
        self.app = app
        self.texts = texts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not wants_zh(scope):
            await self.app(scope, receive, send)
            return
        held: Message | None = None
        chunks: list[bytes] = []

        async def zh(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                sent = {k.lower(): v for k, v in message.get("headers", ())}
                json_error = message["status"] >= 400 and sent.get(b"content-type", b"").startswith(b"application/json")
                if json_error and b"content-encoding" not in sent:
                    held = message  # sent with the body, once its length is known
                    return
            elif held is not None and message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if message.get("more_body"):
                    return
                body = b"".join(chunks)
                try:
                    data = json.loads(body)
                except ValueError:
                    data = None
                if isinstance(data, dict) and "error" in data and "message_zh" not in data:
                    data["message_zh"] = message_zh(data, held["status"], self.texts)
                    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
                headers = [(k, v) for k, v in held.get("headers", ()) if k.lower() != b"content-length"]
                await send({**held, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, receive, zh)


def _field_of(loc: Any) -> str:
    """A request validation error's field: its path without the layer (``query``, ``path``, ``body``); a header by its
    canonical name (``("header", "x-department")`` → ``X-Department``); the body as a whole ``body``."""
    parts = [str(p) for p in loc]
    if len(parts) == 2 and parts[0] == "header":
        return "-".join(w[:1].upper() + w[1:] for w in parts[1].split("-"))
    return ".".join(p for p in parts if p not in ("query", "path", "body", "header")) or "body"


def _common_code(items: list[dict[str, Any]]) -> str:
    """The top-level ``reason`` of a refusal listing ``items``: their code when they share one, else
    ``invalid_input`` (several causes: each item names its own)."""
    codes = {str(i.get("code")) for i in items if isinstance(i, dict)}
    return codes.pop() if len(codes) == 1 else "invalid_input"


def _coded(items: Any, reason: str | None, message: str = "") -> Any:
    """The detail's items, each ``{"field", "reason", "code", …}`` as README and the ``FieldProblem`` schema promise
    (review52 F3b): its code, else the error's reason (a one-field refusal is raised with its reason once, not
    again in its item); its reason, else the message's words (without the field's name it starts with)."""
    if not isinstance(items, list):
        return items
    return [_item_in_full(i, reason, message) if isinstance(i, dict) else i for i in items]


def _item_in_full(item: dict[str, Any], reason: str | None, message: str) -> dict[str, Any]:
    out = dict(item)
    if isinstance(out.get("reason"), str):
        out["reason"] = split_bilingual(out["reason"])[1]
    if not out.get("reason"):
        field_name = str(out.get("field") or "")
        said = message.split(" / ", 1)[-1] if _CJK_START.match(message) else message  # the English half
        if field_name and said.startswith(f"{field_name}: "):
            said = said[len(field_name) + 2 :]
        out["reason"] = said or str(reason or "refused")
    if reason is not None and not out.get("code"):
        out["code"] = str(reason)
    # The keys in the documented order: field, reason, code, then the item's facts.
    return {k: out[k] for k in ("field", "reason", "code") if k in out} | out


def log_database_timeout(where: str, why: str) -> tuple[str, str]:
    """Log a statement the database did not finish in time under a new reference; return it and the client's
    text (reason ``database_timeout``)."""
    ref = new_ref()
    log.warning("%s: 503 database_error (database_timeout) ref=%s: %s", where, ref, why)
    return ref, f"{DATABASE_TIMEOUT_TEXT} (reference {ref})"


def split_bilingual(text: str) -> tuple[str | None, str]:
    """A zh-CN-first text (``案件当前为「已结案」… / close is not allowed …``) as its Chinese and English halves;
    any other text as (None, itself)."""
    if _CJK_START.match(text) and " / " in text:
        zh, en = text.split(" / ", 1)
        return zh, en
    return None, text


def domain_error_response(exc: GisgridError, where: str = "-", *, zh: bool = False) -> JSONResponse:
    """The answer to a domain error; ``where`` (method and path) names the request in the log line of a
    database outage, whose cause is logged, never sent. A refusal's words are in one place whichever refusal it is
    (review52 F3e): ``message`` (and each item's ``reason``) in English, the Chinese in ``message_zh`` for a request
    asking in Chinese (``zh``) — a zh-CN-first message (the command line prints it so) is split here."""
    if isinstance(exc, DatabaseError) and exc.reason == Reason.DATABASE_TIMEOUT:
        ref, said = log_database_timeout(where, exc.message)
        body = error_body(exc.code, said, Reason.DATABASE_TIMEOUT, ref)
        return JSONResponse(body, status_code=503, headers=NO_STORE)
    if isinstance(exc, DatabaseError):
        ref, said = log_database_down(where, exc.message)
        body = error_body(exc.code, said, database_down_reason(), ref)
        return JSONResponse(body, status_code=503, headers=NO_STORE)
    if isinstance(exc, PhotoStoreUnavailable):
        ref = log_photo_store_error(where, exc)
        store_zh, store_en = split_bilingual(exc.message)
        body = error_body(exc.code, f"{store_en} (reference {ref})", exc.reason, ref)
        if zh and store_zh:
            body["message_zh"] = store_zh
        return JSONResponse(body, status_code=503, headers=NO_STORE)
    status = next((s for cls, s in STATUS.items() if isinstance(exc, cls)), 400)
    said_zh, message = split_bilingual(exc.message)
    detail: Any = (
        message if exc.detail is None else {"message": message, "items": _coded(exc.detail, exc.reason, message)}
    )
    body = error_body(exc.code, detail, exc.reason)
    if zh and (exc.message_zh or said_zh):
        body["message_zh"] = exc.message_zh or said_zh
    if isinstance(exc, Busy):  # when to send it again (RFC 9110 §10.2.3); not to be kept by a cache
        return JSONResponse(body, status_code=status, headers={**NO_STORE, "Retry-After": str(exc.retry_after)})
    return JSONResponse(body, status_code=status)


def add_exception_handlers(app: FastAPI) -> None:
    @app.exception_handler(GisgridError)
    async def _domain(request: Request, exc: GisgridError) -> Response:
        if isinstance(exc, DatabaseError) and exc.reason == Reason.DATABASE_TIMEOUT:
            return database_timeout_response(request, exc.message)
        if isinstance(exc, DatabaseError):  # a browser opening a page gets the short page, as for the others
            ref, detail = log_database_down(_where(request), exc.message)
            return fallback_response(request, 503, exc.code, detail, ref, database_down_reason())
        return domain_error_response(exc, _where(request), zh=wants_zh(request.scope))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        items = [
            {
                # A body refused as a whole (none sent, ``null``) is named "body", as a malformed one is; a header
                # by its canonical name (``X-Department``, ``Idempotency-Key``), as the service's own checks name it.
                "field": _field_of(e["loc"]),
                "reason": e["msg"],
                "code": e["type"],  # pydantic's type (missing, extra_forbidden …): the page's zh-CN text is by it
                **_limit_of(e),
            }
            for e in exc.errors()
        ]
        return JSONResponse(error_body("invalid_input", items_detail(items), _common_code(items)), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.__cause__, UnicodeDecodeError):  # FastAPI's 400 for a JSON body it could not decode
            return JSONResponse(
                error_body("invalid_input", items_detail([body_not_utf8(exc.__cause__)]), Reason.BODY_NOT_UTF8),
                status_code=422,
            )
        if isinstance(exc.__cause__, GisgridError):  # raised while FastAPI read a form (api.inputs.FormTextRoute)
            answer = domain_error_response(exc.__cause__, zh=wants_zh(request.scope))
            if answer.status_code == 413:  # the rest of the body is not read: the connection is not reused
                answer.headers["Connection"] = "close"
            return answer
        if isinstance(exc.__cause__, RecursionError):  # JSON nested past what the parser recurses (~1000 levels)
            return domain_error_response(json_too_deep_body())
        code = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        # The exception's headers stay (a WWW-Authenticate, a Retry-After); a 405's Allow (RFC 9110 §15.5.6) names
        # every method of the path, where the framework's names those of the first route that matched it only.
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(request.app, route_path(request.scope)) or headers.get("Allow", "")
        return JSONResponse(error_body(code, exc.detail), status_code=exc.status_code, headers=headers or None)


_METHODS = ("get", "head", "post", "put", "patch", "delete", "options", "trace")


def allowed_methods(app: FastAPI, path: str) -> str:
    """The methods ``path`` (within the app) is answered to, as an ``Allow`` header: those of every operation of
    the OpenAPI document whose path template matches it, and HEAD with GET (answered on every GET route)."""
    templates: list[tuple[re.Pattern[str], set[str]]] | None = getattr(app.state, "allow_templates", None)
    if templates is None:  # the document does not change once built
        templates = [
            (compile_path(template)[0], {m.upper() for m in ops if m in _METHODS})
            for template, ops in app.openapi()["paths"].items()
        ]
        app.state.allow_templates = templates
    methods = set().union(*(ms for regex, ms in templates if regex.match(path)))
    if "GET" in methods:
        methods.add("HEAD")
    order = [m.upper() for m in _METHODS]
    return ", ".join(sorted(methods, key=order.index))


# -- the answers no route gives itself: database outages, oversized or mistyped bodies, unexpected errors ------

#: Raised when the database cannot be reached or takes no work: the sync engine's (connection refused or lost,
#: pool exhausted) and asyncpg's. Answered 503 ``database_error``, as the intake and tile routes already do.
DATABASE_DOWN: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,
    sa_exc.TimeoutError,
    psycopg2.OperationalError,
    *ASYNCPG_UNAVAILABLE,
)

#: What the database raises when it aborted a transaction for a concurrent one (deadlock, serialization failure):
#: asyncpg's (psycopg2's is an ``OperationalError``, caught with the outages and told apart there). A 409.
CONCURRENT_CONFLICT: tuple[type[Exception], ...] = (asyncpg.exceptions.TransactionRollbackError,)


#: What the database raises when the schema lacks a column or table this version uses: a ``gisgrid db downgrade``
#: (or a migration not run) under a running server. The database is not usable by this version — 503
#: ``database_error``, reason ``schema_behind``, naming ``gisgrid db upgrade`` — not a fault of the request (500).
SCHEMA_BEHIND: tuple[type[Exception], ...] = (
    psycopg2.errors.UndefinedColumn,
    psycopg2.errors.UndefinedTable,
    asyncpg.exceptions.UndefinedColumnError,
    asyncpg.exceptions.UndefinedTableError,
)
SCHEMA_BEHIND_TEXT = (
    "the database schema is behind this version of gisgrid (a column or table it uses is missing): "
    "run `gisgrid db upgrade`"
)


def schema_behind_cause(exc: BaseException) -> str | None:
    """The driver's first line when ``exc`` (or the DBAPI error it wraps) is a missing column or table."""
    orig = getattr(exc, "orig", None) or exc
    if not isinstance(orig, SCHEMA_BEHIND):
        return None
    return f"{type(orig).__name__}: {str(orig).strip().splitlines()[0] if str(orig).strip() else ''}"


def schema_behind_response(request: Request, cause: str) -> Response:
    """503 ``database_error``, reason ``schema_behind``: logged at warning under a reference (the missing column
    or table in the log only, as every database message)."""
    ref = new_ref()
    log.warning("%s: 503 database_error (schema_behind) ref=%s: %s", _where(request), ref, cause)
    detail = f"{SCHEMA_BEHIND_TEXT} (reference {ref})"
    if _wants_html(request):
        return fallback_response(request, 503, "database_error", detail, ref)
    body = error_body("database_error", detail, Reason.SCHEMA_BEHIND, ref)
    return JSONResponse(body, status_code=503, headers=NO_STORE)


def database_timeout_response(request: Request, cause: str) -> Response:
    """503 ``database_error``, reason ``database_timeout``: a statement past the web service's statement timeout
    (cancelled by the server), or no answer at all within asyncpg's command timeout."""
    ref, detail = log_database_timeout(_where(request), cause)
    if _wants_html(request):
        return fallback_response(request, 503, "database_error", detail, ref)
    body = error_body("database_error", detail, Reason.DATABASE_TIMEOUT, ref)
    return JSONResponse(body, status_code=503, headers=NO_STORE)


def concurrent_conflict_response(where: str, cause: str) -> JSONResponse:
    """409 ``conflict``, reason ``concurrent_conflict``: the database rolled the request's transaction back for a
    concurrent one. Not an outage (no 503): the client sends it again. Logged at warning under a reference."""
    ref = new_ref()
    log.warning("%s: 409 concurrent_conflict ref=%s: %s", where, ref, cause)
    detail = f"{CONCURRENT_CONFLICT_TEXT} (reference {ref})"
    return JSONResponse(error_body("conflict", detail, Reason.CONCURRENT_CONFLICT, ref), status_code=409)


_HTML_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{title}</title><link rel="icon" href="data:,"></head>
<body><h1>{title}</h1><p>{text}</p><p><small>{code}</small></p></body></html>
"""
_PAGES = {
    "database_error": ("服务暂不可用", "数据库暂时无法连接,请稍后刷新页面。如持续出现,请联系系统管理员。"),
    "internal_error": ("服务器内部错误", "请求未能完成,请稍后重试。如持续出现,请将下方编号告知系统管理员。"),
}


def _wants_html(request: Request) -> bool:
    """A browser opening a page (the console, the field page) gets a short zh-CN page, any other client JSON."""
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "application/json" not in accept


def fallback_response(
    request: Request, status: int, code: str, detail: str, ref: str = "", reason: str | None = None
) -> Response:
    if _wants_html(request) and code in _PAGES:
        title, text = _PAGES[code]
        page = _HTML_PAGE.format(title=title, text=text, code=html.escape(f"{code} {ref}".strip()))
        return HTMLResponse(page, status_code=status, headers=NO_STORE)
    return JSONResponse(error_body(code, detail, reason, ref=ref), status_code=status, headers=NO_STORE)


def database_down_cause(request: Request, exc: Exception) -> str:
    """Why, for the server log: without the statement or its parameters (they may hold user data) or the
    password."""
    if isinstance(exc, sa_exc.TimeoutError):
        return "the database connection pool is exhausted (every connection busy)"
    engine = getattr(request.app.state, "engine", None)
    return describe_connect_error(engine.url, exc) if engine is not None else type(exc).__name__


def _json_error_at(exc: RequestValidationError) -> dict[str, str] | None:
    """For a body that is not JSON: where the parser stopped, as line and column (FastAPI gives the offset as
    the error's location, which the plain handler would report as a field name)."""
    errors = exc.errors()
    if len(errors) != 1 or errors[0].get("type") != "json_invalid":
        return None
    doc, pos = exc.body, errors[0]["loc"][-1]
    reason = errors[0].get("ctx", {}).get("error", "not JSON")
    if isinstance(doc, str) and isinstance(pos, int):
        line = doc.count("\n", 0, pos) + 1
        column = pos - (doc.rfind("\n", 0, pos) + 1) + 1
        reason = f"invalid JSON at line {line} column {column} (character {pos + 1}): {reason}"
    else:
        reason = f"invalid JSON: {reason}"
    return {"field": "body", "reason": reason, "code": Reason.JSON_INVALID}


#: The bounds of pydantic's refusals an item passes on as ``limit`` (the pages say them in zh-CN).
_LIMIT_KEYS = ("max_length", "min_length", "le", "ge", "lt", "gt")


def _limit_of(error: Any) -> dict[str, Any]:
    """``{"limit": {"max_length": 2000}}`` for a refusal by a bound, else nothing (other ctx values, such as the
    exception of a value_error, are not JSON)."""
    ctx = error.get("ctx") or {}
    limit = {k: ctx[k] for k in _LIMIT_KEYS if isinstance(ctx.get(k), int | float) and not isinstance(ctx[k], bool)}
    return {"limit": limit} if limit else {}


def json_too_deep_body() -> InvalidInput:
    """A JSON body nested too deep for the parser itself: refused as a shallower one too deep is (422
    ``json_too_deep``, field ``body``), not as the framework's 400 "error parsing the body"."""
    return InvalidInput(
        f"body: {too_deep_words()}",
        detail=[{"field": "body", "reason": too_deep_words(), "limit": {"max_depth": MAX_JSON_DEPTH}}],
        reason=Reason.JSON_TOO_DEEP,
    )


def body_not_utf8(exc: UnicodeDecodeError) -> dict[str, str]:
    """A body that is not UTF-8 text, refused as malformed JSON is (422, field ``body``), naming the first byte
    that is not part of a UTF-8 character and its offset in the body (0 for the first byte)."""
    byte = exc.object[exc.start : exc.start + 1].hex().upper()
    reason = (
        f"the body is not UTF-8 text: byte 0x{byte} at offset {exc.start} ({exc.reason}); a JSON body must be UTF-8 "
        "(RFC 8259) — a charset its Content-Type declares (charset=gbk) is not honoured; send it as UTF-8"
    )
    return {"field": "body", "reason": reason, "code": Reason.BODY_NOT_UTF8}


def expected_media_type(request: Request) -> str | None:
    """The body type the matched route reads, when the request sent a body of another: None if it fits."""
    body_field = getattr(request.scope.get("route"), "body_field", None)
    if body_field is None:
        return None
    form = isinstance(body_field.field_info, params.Form)
    sent = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if form:
        ok = sent in ("multipart/form-data", "application/x-www-form-urlencoded")
        return None if ok else "multipart/form-data (or application/x-www-form-urlencoded without photos)"
    json_type = sent == "application/json" or (sent.startswith("application/") and sent.endswith("+json"))
    if json_type or (not sent and request.headers.get("content-length", "0") == "0"):
        return None  # no body at all: the plain "Field required" names it
    return "application/json"


#: Set on an exception the 500 handler has answered and logged with its traceback: Starlette raises it again after
#: the answer (for the server to log), and :class:`LoggedOnce` stops it there — uvicorn's "Exception in ASGI
#: application" was the same traceback a second time, without the ref (review46 F7).
_LOGGED = "_gisgrid_logged"


def mark_logged(exc: BaseException) -> None:
    with contextlib.suppress(AttributeError):  # an exception type with __slots__: logged twice, as before
        setattr(exc, _LOGGED, True)


class LoggedOnce:
    """The app's outermost layer: an exception already answered 500 and logged under its reference ends here;
    any other (raised after an answer started, so no handler could answer it) goes on to the server, which logs it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            if not getattr(exc, _LOGGED, False):
                raise


def add_fallback_handlers(app: FastAPI) -> None:  # noqa: C901
    """Handlers for what escapes the domain errors: call after ``add_exception_handlers`` (the validation
    handler here refines the one registered there and hands it everything else)."""

    async def _database_down(request: Request, exc: Exception) -> Response:
        conflict = concurrent_conflict_cause(exc)  # a deadlock is an OperationalError too, but no outage
        if conflict is not None:
            return concurrent_conflict_response(_where(request), conflict)
        timed_out = timeout_cause(exc)  # a cancelled statement is an OperationalError too, but no outage
        if timed_out is not None:
            return database_timeout_response(request, timed_out)
        busy = isinstance(exc, sa_exc.TimeoutError)
        ref, detail = log_database_down(_where(request), database_down_cause(request, exc), busy=busy)
        return fallback_response(request, 503, "database_error", detail, ref, database_down_reason(busy))

    for cls in DATABASE_DOWN + CONCURRENT_CONFLICT:
        app.add_exception_handler(cls, _database_down)

    async def _schema_behind(request: Request, exc: Exception) -> Response:
        return schema_behind_response(request, schema_behind_cause(exc) or type(exc).__name__)

    for cls in SCHEMA_BEHIND:  # asyncpg's (the intake and tile routes) arrive unwrapped
        app.add_exception_handler(cls, _schema_behind)

    @app.exception_handler(sa_exc.DBAPIError)
    async def _dbapi(request: Request, exc: sa_exc.DBAPIError) -> Response:
        behind = schema_behind_cause(exc)
        if behind is not None:
            return schema_behind_response(request, behind)
        if exc.connection_invalidated or concurrent_conflict_cause(exc) is not None:
            return await _database_down(request, exc)  # the server went away, or aborted for a concurrent write
        return _internal_database(request, exc)

    @app.exception_handler(413)
    async def _too_large(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = too_large_detail(request.scope)
        return JSONResponse(error_body("payload_too_large", detail), status_code=413, headers={"Connection": "close"})

    plain_validation = app.exception_handlers[RequestValidationError]

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        expected = expected_media_type(request)
        if expected is not None:
            sent = request.headers.get("content-type") or "no Content-Type"
            item = {
                "field": "Content-Type",
                "reason": f"the body must be {expected}, got {sent}",
                "code": Reason.UNSUPPORTED_MEDIA_TYPE,
            }
            return JSONResponse(error_body("unsupported_media_type", items_detail([item])), status_code=415)
        at = _json_error_at(exc)
        if at is not None:
            return JSONResponse(error_body("invalid_input", items_detail([at]), Reason.JSON_INVALID), status_code=422)
        answer = plain_validation(request, exc)  # a handler may be sync or async; FastAPI's own is async
        return await answer if inspect.isawaitable(answer) else answer

    def _internal_database(request: Request, exc: sa_exc.DBAPIError) -> Response:
        # A failed statement of ours, logged without any text the server sent: psycopg2 binds on the client, so
        # PostgreSQL's message quotes the values ("LINE 1: … '张三' …", "invalid input syntax …: \"…\"", "Failing
        # row contains (…)") — a case's reporter, description, address (review54 F6). The SQL, the SQLSTATE and
        # the frames say where; the engines' hide_parameters keeps SQLAlchemy's own [parameters: …] out too.
        ref = new_ref()
        orig = exc.orig
        code = getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None) or "-"
        frames = "".join(traceback.format_tb(exc.__traceback__)).rstrip()
        log.error(
            "%s: 500 internal error ref=%s: %s (SQLSTATE %s; PostgreSQL's message left out: it may quote bound "
            "values)\n[SQL: %s]\nTraceback (most recent call last):\n%s",
            _where(request),
            ref,
            type(orig).__name__,
            code,
            exc.statement,
            frames,
        )
        mark_logged(exc)
        detail = f"internal server error (reference {ref}); the server log has the details"
        return fallback_response(request, 500, "internal_error", detail, ref)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> Response:
        # A fault of ours: logged with its traceback under a reference the client is given; never sent.
        ref = new_ref()
        log.error("%s: 500 internal error ref=%s", _where(request), ref, exc_info=exc)
        mark_logged(exc)
        detail = f"internal server error (reference {ref}); the server log has the details"
        return fallback_response(request, 500, "internal_error", detail, ref)
