"""One place that maps domain errors to HTTP: every error body is ``{"error": code, "detail": ...}``, with
``"reason": code`` when the refusal has a specific cause (``GisgridError.reason``), and each item of the detail
(a field and why) with its ``code`` (pydantic's ``type`` for request validation) beside its English ``reason``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gisgrid.errors import Conflict, DatabaseError, GisgridError, InvalidInput, NotFound, Unavailable
from gisgrid.workflow import RoleNotAllowed

STATUS: dict[type[GisgridError], int] = {
    RoleNotAllowed: 403,  # before InvalidInput, its base class: the first match wins
    NotFound: 404,
    InvalidInput: 422,
    Conflict: 409,
    DatabaseError: 503,
    Unavailable: 503,
}


def error_body(code: str, detail: Any, reason: str | None = None) -> dict[str, Any]:
    if reason is None:
        return {"error": code, "detail": detail}
    return {"error": code, "reason": str(reason), "detail": detail}


def _coded(items: Any, reason: str | None) -> Any:
    """The detail's items, each with a code: its own, else the error's reason (a one-field refusal is raised with
    its reason once, not again in its item)."""
    if reason is None or not isinstance(items, list):
        return items
    return [{**i, "code": str(i.get("code") or reason)} if isinstance(i, dict) else i for i in items]


def domain_error_response(exc: GisgridError) -> JSONResponse:
    status = next((s for cls, s in STATUS.items() if isinstance(exc, cls)), 400)
    detail: Any = (
        exc.message if exc.detail is None else {"message": exc.message, "items": _coded(exc.detail, exc.reason)}
    )
    return JSONResponse(error_body(exc.code, detail, exc.reason), status_code=status)


def add_exception_handlers(app: FastAPI) -> None:
    @app.exception_handler(GisgridError)
    async def _domain(_: Request, exc: GisgridError) -> JSONResponse:
        return domain_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        items = [
            {
                "field": ".".join(str(p) for p in e["loc"] if p not in ("query", "path", "body")),
                "reason": e["msg"],
                "code": e["type"],  # pydantic's type (missing, extra_forbidden …): the page's zh-CN text is by it
            }
            for e in exc.errors()
        ]
        return JSONResponse(error_body("invalid_input", items), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, exc.detail), status_code=exc.status_code)
