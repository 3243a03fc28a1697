"""The error bodies as OpenAPI states them: every error is ``{"error": code, "detail": ...}`` (api/errors.py).

Routers declare which statuses they answer with ``error_responses(...)``; a 422 listed here replaces FastAPI's
``HTTPValidationError`` (``{"detail": [{"loc", "msg", "type"}]}``), which is not the shape this API sends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field


class FieldProblem(BaseModel):
    """One refused input: the field (a JSON path such as ``attrs.k``, a parameter or a header) and why."""

    model_config = ConfigDict(extra="allow")  # some items carry more (value, row, …)

    field: str | None = Field(default=None, examples=["name"])
    reason: str | None = Field(default=None, examples=["too long"])
    code: str | None = Field(default=None, description="The reason as a stable code", examples=["string_too_long"])


class ErrorMessage(BaseModel):
    """A message with the items it is about (field problems, or an object such as a role's allowed actions)."""

    message: str
    items: list[FieldProblem] | dict[str, Any] | list[Any] | None = None


class ErrorBody(BaseModel):
    """Every error answer. ``detail`` is a message, a list of field problems (request validation), or a
    message with its items (refusals by the service)."""

    error: str = Field(
        description="Machine-readable code: invalid_input, not_found, conflict, role_not_allowed, database_error, "
        "payload_too_large, unsupported_media_type, method_not_allowed, internal_error, …",
        examples=["invalid_input"],
    )
    reason: str | None = Field(
        default=None,
        description="Why, as a stable code of gisgrid.errors.Reason, when the refusal has a specific cause",
        examples=["nul_character"],
    )
    detail: str | list[FieldProblem] | ErrorMessage | dict[str, Any] = Field(
        description="What went wrong",
        examples=[[{"field": "name", "reason": "String should have at most 200 characters"}]],
    )
    ref: str | None = Field(
        default=None,
        description="500 and 503: the reference of the server log's line that has the details (never sent)",
        examples=["3f9a0c1d2e4b"],
    )


DESCRIPTIONS: dict[int, str] = {
    403: "The acting role may not do this",
    404: "Not found",
    409: "Conflict: a stale version, or the thing exists already",
    413: "Request body larger than the endpoint takes (the limit is named)",
    415: "Body not sent as application/json (or multipart/form-data where the endpoint takes a form)",
    422: "Invalid input: each refused field named with its reason",
    500: "Unexpected server error (logged; the body carries a reference, never a traceback)",
    503: "The database is unreachable or a required system package is missing",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a router or route: each status answered with an ``ErrorBody``."""
    return {s: {"model": ErrorBody, "description": DESCRIPTIONS[s]} for s in statuses}


_ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}


def json_error_bodies(app: FastAPI) -> None:
    """FastAPI files a route's extra responses under the route's media type: the HTML pages' errors would read
    as text/html. Errors are JSON (a browser opening a page gets a short page for 500/503 instead, not stated)."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        spec = generate()  # made once and cached by FastAPI; fixing it again changes nothing
        for ops in spec.get("paths", {}).values():
            for op in ops.values():
                for status, response in op.get("responses", {}).items():
                    content = response.get("content", {})
                    if status[0] in "45" and any(m.get("schema") == _ERROR_REF for m in content.values()):
                        response["content"] = {"application/json": {"schema": _ERROR_REF}}
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
