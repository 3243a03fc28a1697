"""One place that maps domain errors to HTTP: every error body is ``{"error": code, "detail": ...}``."""

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


def error_body(code: str, detail: Any) -> dict[str, Any]:
    return {"error": code, "detail": detail}


def domain_error_response(exc: GisgridError) -> JSONResponse:
    status = next((s for cls, s in STATUS.items() if isinstance(exc, cls)), 400)
    detail: Any = exc.message if exc.detail is None else {"message": exc.message, "items": exc.detail}
    return JSONResponse(error_body(exc.code, detail), status_code=status)


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
            }
            for e in exc.errors()
        ]
        return JSONResponse(error_body("invalid_input", items), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, exc.detail), status_code=exc.status_code)
