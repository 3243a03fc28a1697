"""The checks every text and free JSON value from a user passes before it reaches PostgreSQL.

No NUL character: PostgreSQL ``text`` and ``jsonb`` cannot hold U+0000, so a NUL the server let through fails in
the driver as a 500. The case service (``cases.check_texts``), the API's request models and its parameter check all
refuse it here, with the same message and the same ``{"field", "reason"}`` item, naming where it was found.

No JSON nested deeper than :data:`MAX_JSON_DEPTH`: a component's ``attrs`` 500 levels deep was stored, then could
not be answered (the response's serializer stops at a depth) — a PATCH committed and answered 500.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from gisgrid.errors import InvalidInput, Reason

NUL = "\x00"
#: How deep free JSON (a component's ``attrs``, any object or list a request body carries) may nest: ``{"k": 1}`` is
#: 1 level, ``{"k": [1]}`` 2. The one place this is stated (README says it).
MAX_JSON_DEPTH = 8


def too_deep_path(value: Any, path: str, limit: int = MAX_JSON_DEPTH) -> str | None:
    """Where in ``value`` (JSON-like dicts and lists) an object or list sits deeper than ``limit`` levels, as
    ``path.key[0]``; None if nowhere. Iterative: a value thousands of levels deep is measured, not recursed into."""
    todo: list[tuple[Any, str, int]] = [(value, path, 1)]
    while todo:
        item, where, depth = todo.pop()
        if isinstance(item, Mapping):
            children: Iterable[tuple[Any, str]] = ((v, f"{where}.{k}" if where else str(k)) for k, v in item.items())
        elif isinstance(item, list | tuple):
            children = ((v, f"{where}[{i}]") for i, v in enumerate(item))
        else:
            continue
        if depth > limit:
            return where
        todo.extend((v, w, depth + 1) for v, w in children)
    return None


def refuse_too_deep(values: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> None:
    """Refuse the first value nested deeper than :data:`MAX_JSON_DEPTH` (422 ``json_too_deep`` naming its field,
    with ``limit: {"max_depth": …}``)."""
    pairs = values.items() if isinstance(values, Mapping) else values
    for name, value in pairs:
        found = too_deep_path(value, str(name))
        if found is not None:
            raise InvalidInput(
                f"{name}: {too_deep_words(found)}",
                detail=[{"field": str(name), "reason": too_deep_words(), "limit": {"max_depth": MAX_JSON_DEPTH}}],
                reason=Reason.JSON_TOO_DEEP,
            )


def too_deep_words(where: str | None = None) -> str:
    at = f" (at {where[:120]}{'…' if len(where) > 120 else ''})" if where else ""
    return f"nested more than {MAX_JSON_DEPTH} levels deep{at}"


def nul_path(value: Any, path: str) -> str | None:
    """Where in ``value`` (a text, or JSON-like dicts and lists of them) a NUL is, as ``path.key[0]``; None if
    nowhere. Dict keys are looked at too: a jsonb key cannot hold one either."""
    return _text_path(value, path, lambda s: NUL in s)


def _text_path(value: Any, path: str, bad: Callable[[str], bool]) -> str | None:
    if isinstance(value, str):
        return path if bad(value) else None
    if isinstance(value, Mapping):
        for key, item in value.items():
            inner = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and bad(key):
                return inner
            found = _text_path(item, inner, bad)
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = _text_path(item, f"{path}[{i}]", bad)
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


#: Bidirectional controls: the embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069) and the marks
#: (U+200E, U+200F, U+061C). They change the order a reader sees (``照片 \u202egpj.exe`` shows as ``照片 exe.jpg``)
#: in the console, the orders and a terminal; Chinese text has no use for them.
BIDICONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
#: What free text may not hold besides NUL: the bidirectional controls and the C0/C1 control characters other than
#: TAB, LF and CR (a description's or a note's line breaks stay; ESC would drive a terminal). Other format
#: characters stay: U+200D (ZWJ) joins emoji such as 👷‍♀️.
CONTROLS = re.compile(f"[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{BIDICONTROLS}]")


#: A surrogate code point on its own: JSON's ``"\\ud800"`` escape without its pair (and UTF-7's ``+2AA-``) decodes to
#: one, a Python text holds it, and no UTF-8 can carry it — writing it to the database or the log failed as a 500.
SURROGATES = re.compile("[\ud800-\udfff]")


def control_path(value: Any, path: str) -> str | None:
    """Where in ``value`` (a text, or JSON-like dicts and lists of them, keys too) a character of ``CONTROLS``
    is; None if nowhere."""
    return _text_path(value, path, lambda s: CONTROLS.search(s) is not None)


def first_control(text: str) -> str | None:
    """The first control or bidirectional character of ``text`` as ``U+202E``; None if it has none."""
    found = CONTROLS.search(text)
    return f"U+{ord(found.group()):04X}" if found else None


def bad_text_path(value: Any, path: str) -> str | None:
    """Where in ``value`` (a text, or JSON-like dicts and lists of them, keys too) :func:`refuse_bad_text` finds
    a NUL or a character of ``CONTROLS``; None if nowhere."""
    return _text_path(value, path, lambda s: NUL in s or CONTROLS.search(s) is not None)


def bad_text_reason(text: str) -> str | None:
    """Why :func:`refuse_bad_text` refuses ``text``, in the words of a file's refusals (the imports name the row
    and field beside it); None if it takes it."""
    if NUL in text:
        return "contains a NUL character"
    char = first_control(text)
    return (
        None
        if char is None
        else f"contains the control or bidirectional character {char}, which changes how the text is shown"
    )


def bilingual(zh: str, en: str) -> str:
    """A refusal's reason as the project says bilingual messages to its (Chinese-reading) users: zh-CN first, then
    " / " and the English."""
    return f"{zh} / {en}"


def bad_text_reason_bilingual(text: str) -> str | None:
    """:func:`bad_text_reason`, zh-CN first (:func:`bilingual`): the words of a file import's refusals."""
    en = bad_text_reason(text)
    if en is None:
        return None
    if NUL in text:
        return bilingual("含有 NUL 字符", en)
    return bilingual(f"含有会改变文字显示的控制字符或双向字符 {first_control(text)}", en)


def first_bad_text(value: Any) -> str:
    """The first text (value or key) in ``value`` that :func:`bad_text_reason` refuses ("" if none)."""
    todo = [value]
    while todo:
        item = todo.pop(0)
        if isinstance(item, str) and bad_text_reason(item):
            return item
        if isinstance(item, Mapping):
            todo[:0] = [x for k, v in item.items() for x in (k, v)]
        elif isinstance(item, list | tuple):
            todo[:0] = list(item)
    return ""


def refuse_bad_text(values: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> None:
    """The check every free text from a user passes (API bodies, query and form values, upload file names, the
    CLI's texts): no lone surrogate (422 ``string_unicode``, pydantic's code for the same cause in a typed field),
    no NUL (``nul_character``), then no control or bidirectional character (422 ``control_characters`` naming the
    field and the character)."""
    pairs = list(values.items() if isinstance(values, Mapping) else values)
    for name, value in pairs:  # first: the later refusals name a key as it is, and their answer must be UTF-8
        surrogate = surrogate_path(value, name)
        if surrogate is not None:
            found, char = surrogate  # a key holding one is named by its escape
            found = SURROGATES.sub(lambda m: f"\\u{ord(m.group()):04x}", found)
            raise InvalidInput(
                f"{found}: holds a lone surrogate {char}, which is not Unicode text; send the text as UTF-8 (a "
                "\\ud800-\\udfff escape only as the pair of one character)",
                detail=[{"field": found, "reason": "lone surrogate, not Unicode text", "character": char}],
                reason=Reason.STRING_UNICODE,
            )
    refuse_nul(pairs)
    for name, value in pairs:
        where = control_path(value, name)
        if where is not None:
            char = first_control(first_bad_text(value)) or "?"
            raise InvalidInput(
                f"{where}: contains the control or bidirectional character {char}, which changes how the text is "
                "shown; send the text without it",
                detail=[{"field": where, "reason": "control characters", "character": char}],
                reason=Reason.CONTROL_CHARACTERS,
            )


def surrogate_path(value: Any, path: str) -> tuple[str, str] | None:
    """Where in ``value`` (a text, or JSON-like dicts and lists of them, keys too) a lone surrogate is, and which
    (``U+D800``); None if nowhere."""
    seen: list[str] = []

    def bad(text: str) -> bool:
        match = SURROGATES.search(text)
        if match is not None:
            seen.append(f"U+{ord(match.group()):04X}")
        return match is not None

    found = _text_path(value, path, bad)
    return None if found is None else (found, seen[-1])
