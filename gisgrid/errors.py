"""Typed domain errors. Domain code raises these; the API maps them to HTTP in one table (api/errors.py)
and the CLI prints their message and exits non-zero."""

from __future__ import annotations

from typing import Any


class GisgridError(Exception):
    """Base of every error the project reports to a user."""

    code = "error"

    def __init__(self, message: str, *, detail: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class ConfigError(GisgridError):
    code = "config_error"


class DatabaseError(GisgridError):
    code = "database_error"


class NotFound(GisgridError):
    code = "not_found"


class InvalidInput(GisgridError):
    """Bad user input: a file, a field, a parameter. ``detail`` may list row/field/reason items."""

    code = "invalid_input"


class Conflict(GisgridError):
    code = "conflict"
