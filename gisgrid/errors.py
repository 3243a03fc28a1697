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


class Unavailable(GisgridError):
    """A feature this machine lacks a package or system library for (the message says what to install)."""

    code = "unavailable"


class ProblemList:
    """Collects every problem found in a set of data files so that one error lists them all (file, row, field,
    value, reason); ``label`` names what was being read."""

    label = "data files"
    max_listed = 10

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, file: Any, row: int | None, field_name: str | None, value: str, reason: str) -> None:
        self.items.append({"file": str(file), "row": row, "field": field_name, "value": value, "reason": reason})

    def raise_if_any(self) -> None:
        if not self.items:
            return
        lines = [
            f"{p['file']}: row {p['row']}, field {p['field']!r}: {p['reason']}"
            if p["row"] is not None
            else f"{p['file']}: {p['reason']}"
            for p in self.items[: self.max_listed]
        ]
        if len(self.items) > self.max_listed:
            lines.append(f"… and {len(self.items) - self.max_listed} more problem(s)")
        raise InvalidInput(
            f"{self.label}: {len(self.items)} problem(s):\n" + "\n".join(lines), detail={"problems": self.items}
        )
