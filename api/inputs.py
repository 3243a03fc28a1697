"""What every request's text passes at the edge, before any of it reaches PostgreSQL.

Request bodies are ``RequestModel``s (unknown fields refused, no NUL anywhere inside); path, query and form
values go through ``refuse_nul_input``, a dependency of the whole app. Both use ``gisgrid.texts.refuse_nul``,
the check the case service runs too, so a NUL is a 422 naming its field wherever it is sent.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.params import Form
from pydantic import BaseModel, ConfigDict, model_validator
from starlette.datastructures import UploadFile

from gisgrid.texts import refuse_nul


class RequestModel(BaseModel):
    """A JSON request body: a misspelt field is refused, not ignored, and no text in it may hold a NUL."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        # InvalidInput is not a ValueError, so pydantic lets it through to the app's handler: the same 422 body
        # (field path such as attrs.k) as the case service gives, instead of a validation item without a field.
        if isinstance(data, dict):
            refuse_nul(data)
        return data


async def refuse_nul_input(request: Request) -> None:
    """Path and query values and form fields (with upload file names) free of NUL; named as the client sent
    them. Runs before the route's own parameters are validated."""
    refuse_nul(request.path_params)
    refuse_nul(request.query_params.multi_items())
    route = request.scope.get("route")
    body_field = getattr(route, "body_field", None)
    if body_field is not None and isinstance(body_field.field_info, Form):
        form = await request.form()  # parsed already by FastAPI for a form route: the cached one
        refuse_nul(
            (f"{name}.filename", value.filename) if isinstance(value, UploadFile) else (name, value)
            for name, value in form.multi_items()
        )
