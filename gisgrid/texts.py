"""The one check every text from a user passes before it reaches PostgreSQL: no NUL character.

PostgreSQL ``text`` and ``jsonb`` cannot hold U+0000, so a NUL the server let through fails in the driver as a
500. The case service (``cases.check_texts``), the API's request models and its parameter check all refuse it
here, with the same message and the same ``{"field", "reason"}`` item, naming where it was found.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gisgrid.errors import InvalidInput, Reason

NUL = "\x00"


def nul_path(value: Any, path: str) -> str | None:
    """Where in ``value`` (a text, or JSON-like dicts and lists of them) a NUL is, as ``path.key[0]``; None if
    nowhere. Dict keys are looked at too: a jsonb key cannot hold one either."""
    if isinstance(value, str):
        return path if NUL in value else None
    if isinstance(value, Mapping):
        for key, item in value.items():
            inner = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and NUL in key:
                return inner
            found = nul_path(item, inner)
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = nul_path(item, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def refuse_nul(values: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> None:
    """Refuse the first value holding a NUL (422 ``invalid_input``, the field named, reason ``NUL``)."""
    pairs = values.items() if isinstance(values, Mapping) else values
    for name, value in pairs:
        found = nul_path(value, name)
        if found is not None:
            label = found.replace(NUL, "\\u0000")  # the message names the key without carrying the NUL on
            raise InvalidInput(
                f"{label}: contains a NUL character",
                detail=[{"field": label, "reason": "NUL"}],
                reason=Reason.NUL_CHARACTER,
            )
