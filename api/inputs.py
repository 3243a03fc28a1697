"""What every request's text passes at the edge, before any of it reaches PostgreSQL.

Request bodies are ``RequestModel``s (unknown fields refused, no NUL anywhere inside); path, query and form
values go through ``refuse_nul_input``, a dependency of the whole app (which also refuses percent-encoded bytes
of a path or query that are not UTF-8, instead of letting U+FFFD through as the search term; a JSON body that is
not UTF-8 is refused by ``api.errors``). Both use ``gisgrid.texts.refuse_bad_text`` (no NUL, no control or
bidirectional character), the check the case service runs too, so such a text is a 422 naming its field wherever
it is sent. A form field the route does not declare is refused there too, as a JSON body's unknown field is. The
text of a form, multipart or urlencoded, is decoded strictly by ``FormTextRoute`` (every route that takes a form
is one); ``form_payload`` reads a workflow action's fields from a form as its JSON body carries them.
"""

from __future__ import annotations

import codecs
import contextlib
import json
from collections.abc import Callable, Coroutine, Mapping
from typing import Any
from urllib.parse import unquote_to_bytes

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.params import Form
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, model_validator
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import parse_options_header

from gisgrid.errors import GisgridError, InvalidInput, Reason, TooLarge
from gisgrid.texts import refuse_bad_text, refuse_too_deep
from gisgrid.workflow import FIELD_KINDS


class RequestModel(BaseModel):
    """A JSON request body: a misspelt field is refused, not ignored, no text in it may hold a NUL or a control or
    bidirectional character (``gisgrid.texts.refuse_bad_text``) and no value nest deeper than
    ``gisgrid.texts.MAX_JSON_DEPTH`` (measured first: the text check walks values recursively)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        # InvalidInput is not a ValueError, so pydantic lets it through to the app's handler: the same 422 body
        # (field path such as attrs.k) as the case service gives, instead of a validation item without a field.
        if isinstance(data, dict):
            refuse_too_deep(data)
            refuse_bad_text(data)
        return data


async def refuse_nul_input(request: Request) -> None:
    """Path and query values and form fields (with upload file names) free of NUL and of control and
    bidirectional characters (a photo's name too: refused, not stripped — the name is shown as sent, and one
    that reads reversed is no accident), and UTF-8 text where they were percent-encoded; named as the client sent
    them. Runs before the route's own parameters are validated."""
    refuse_bad_text(request.path_params)
    query = request.query_params.multi_items()
    refuse_bad_text(query)
    if any(REPLACEMENT in v for v in request.path_params.values()):
        _refuse_not_utf8_path(request)
    if any(REPLACEMENT in k or REPLACEMENT in v for k, v in query):
        _refuse_not_utf8_query(request.scope.get("query_string", b""))
    route = request.scope.get("route")
    if _is_form_route(route):
        form = await request.form()  # parsed already by FastAPI for a form route: the cached one
        fields = [
            (f"{name}.filename", value.filename) if isinstance(value, UploadFile) else (name, value)
            for name, value in form.multi_items()
        ]
        refuse_bad_text(fields)
        _refuse_unknown_form_fields(request, route, form)


def _is_form_route(route: Any) -> bool:
    body_field = getattr(route, "body_field", None)
    return body_field is not None and isinstance(body_field.field_info, Form)  # File is a Form too


def _form_names(dependant: Dependant) -> set[str]:
    """The form fields an endpoint and its dependencies declare (a form model's own fields, by alias)."""
    names: set[str] = set()
    for param in dependant.body_params:
        model = param.field_info.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            names |= {f.alias or n for n, f in model.model_fields.items()}
        else:
            names.add(param.alias)
    for sub in dependant.dependencies:
        names |= _form_names(sub)
    return names


_FORM_NAMES_ATTR = "gisgrid_form_names"  # a route's form field names, found on its first request


def _refuse_unknown_form_fields(request: Request, route: Any, form: FormData) -> None:
    """Refuse a form field the route does not declare (422 ``extra_forbidden`` naming it), as a JSON body's
    unknown field is refused: the framework drops it without a word, so ``coord_datum=gcj02`` (for ``datum``)
    filed the report as WGS-84, 600 m away, and a 派遣 form's ``department`` went to the routing suggestion. Every
    form route has it, a new one too (part of the whole app's edge dependency, :func:`refuse_nul_input`)."""
    names: frozenset[str] | None = getattr(route, _FORM_NAMES_ATTR, None)
    if names is None:  # routes are not hashable; their dependency tree does not change once built
        names = frozenset(_form_names(route.dependant))
        setattr(route, _FORM_NAMES_ATTR, names)
    unknown = [k for k in dict.fromkeys(form.keys()) if k not in names]
    if unknown:
        raise InvalidInput(
            f"{unknown[0]}: not a field of {request.method} {request.url.path}; it takes {', '.join(sorted(names))}",
            detail=[{"field": name, "reason": "unknown field"} for name in unknown],
            reason=Reason.EXTRA_FORBIDDEN,
        )


def form_payload(fields: Mapping[str, str | None]) -> dict[str, Any]:
    """A workflow action's payload from the text fields of its form, as its JSON body would carry it: a field left
    out or empty is absent; a number or true/false field (``workflow.FIELD_KINDS``) is read as the JSON value its
    text spells (``3``, ``2.5``, ``true``), by the JSON body's own parser; any other text stays text. The service
    then checks the payload as it checks a JSON one (``check_payload``): ``amount=abc`` is the same 422
    ``float_type`` item as ``"amount": "abc"``, ``flagged=yes`` the same ``bool_type``."""
    payload: dict[str, Any] = {}
    for name, text in fields.items():
        if text is None or text == "":
            continue
        payload[name] = text
        if FIELD_KINDS.get(name) in ("number", "bool"):
            with contextlib.suppress(ValueError):  # else left as the text sent: refused as that text, by name
                payload[name] = json.loads(text)
    return payload


#: What the server's URL and form decoding puts for percent-encoded bytes that are not UTF-8.
REPLACEMENT = "\ufffd"


def _not_utf8(field: str, why: str) -> InvalidInput:
    return InvalidInput(
        f"{field}: not UTF-8 text: {why}; percent-encode the UTF-8 bytes of the text (e.g. 李 as %E6%9D%8E)",
        detail=[{"field": field, "reason": "not UTF-8"}],
        reason=Reason.NOT_UTF8,
    )


def _first_bad_byte(raw: bytes) -> str | None:
    """Where percent-decoded ``raw`` stops being UTF-8, as ``byte 0xFF at offset 3``; None if it is UTF-8."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"byte 0x{raw[exc.start : exc.start + 1].hex().upper()} at offset {exc.start} of the decoded bytes"
    return None


def _refuse_not_utf8_path(request: Request) -> None:
    """A path segment whose percent-encoded bytes are not UTF-8, named by the path parameter it fills."""
    raw_path = request.scope.get("raw_path") or request.scope["path"].encode()
    for segment in raw_path.split(b"/"):
        bad = _first_bad_byte(unquote_to_bytes(segment))
        if bad is not None:
            name = next(n for n, v in request.path_params.items() if REPLACEMENT in v)
            raise _not_utf8(name, bad)


def _refuse_not_utf8_query(query_string: bytes) -> None:
    """The first query parameter (name or value) whose percent-encoded bytes are not UTF-8."""
    for pair in query_string.split(b"&"):
        raw_name, _, raw_value = pair.partition(b"=")
        name = unquote_to_bytes(raw_name.replace(b"+", b" "))
        bad = _first_bad_byte(name)
        if bad is not None:
            raise _not_utf8(name.decode("utf-8", "replace"), f"the parameter's name: {bad}")
        bad = _first_bad_byte(unquote_to_bytes(raw_value.replace(b"+", b" ")))
        if bad is not None:
            raise _not_utf8(name.decode(), bad)


# -- multipart text fields: decoded strictly -----------------------------------------------------------------------


class _StrictTextParser(MultiPartParser):
    """Starlette's multipart parser, except that a text field whose bytes are not text in its charset is noted
    instead of being read as Latin-1 (which turns any bytes into some text: 李 sent as GBK became ÀÓ, stored as the
    description). The charset is the part's own ``Content-Type: text/plain; charset=…`` if it names one, else the
    form's (``multipart/form-data; charset=…``), else UTF-8."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.not_text: InvalidInput | None = None

    def on_part_end(self) -> None:
        part = self._current_part
        if part.file is not None:
            super().on_part_end()
            return
        raw = bytes(part.data)
        charset = _part_charset(part.item_headers) or self._charset or "utf-8"
        try:
            value = raw.decode(charset)
        except LookupError:
            value = raw.decode("latin-1")
            self.not_text = self.not_text or _unknown_charset(part.field_name, "the part's", charset)
        except UnicodeError as exc:  # a decode error, or a codec that is no text charset (idna, punycode …)
            value = raw.decode("latin-1")
            why = _where_bad(raw, exc) if isinstance(exc, UnicodeDecodeError) and exc.object == raw else str(exc)
            self.not_text = self.not_text or _not_text(part.field_name, why, charset)
        self.items.append((part.field_name, value))


def _part_charset(headers: list[tuple[bytes, bytes]]) -> str | None:
    value = next((v for k, v in headers if k == b"content-type"), None)
    if value is None:
        return None
    charset = parse_options_header(value)[1].get(b"charset")
    return charset.decode("latin-1") if charset else None


def _where_bad(raw: bytes, exc: UnicodeDecodeError) -> str:
    return f"byte 0x{raw[exc.start : exc.start + 1].hex().upper()} at offset {exc.start}"


_SEND_UTF8 = (
    "send form fields as UTF-8 (or name their charset in the part's Content-Type, e.g. text/plain; charset=gbk)"
)


def _not_text(field: str, why: str, charset: str = "utf-8") -> InvalidInput:
    name = codecs.lookup(charset).name  # a charset that decoded, so a known one
    label = "UTF-8" if name == "utf-8" else name
    return InvalidInput(
        f"{field}: not {label} text: {why}; {_SEND_UTF8}",
        detail=[{"field": field, "reason": f"not {label}"}],
        reason=Reason.NOT_UTF8,
    )


def _unknown_charset(field: str, whose: str, charset: str) -> InvalidInput:
    """A charset no codec has: the text was not checked against it, so the refusal says that, not "not … text"."""
    return InvalidInput(
        f"{field}: {whose} charset {charset!r} is not known; {_SEND_UTF8}",
        detail=[{"field": field, "reason": f"unknown charset {charset[:40]!r}"}],
        reason=Reason.NOT_UTF8,
    )


def form_refusal(
    message: str, field: str | None = None, *, max_fields: float = 1000, max_part_size: int = 1 << 20
) -> GisgridError:
    """The framework's refusal of a form (Starlette's ``MultiPartException`` text, answered 400 ``http_error``) as a
    documented one: more fields or files than it reads, 413 ``too_many_form_fields``; a text field over its size,
    413 ``form_field_too_large`` (naming it where known); any other (no boundary, a part without a name, broken
    framing), 422 ``form_malformed``."""
    if message.startswith(("Too many fields", "Too many files")):
        return TooLarge(
            f"表单字段过多 / body: {message}",
            detail=[{"field": "body", "reason": message, "limit": {"max_items": int(max_fields)}}],
            reason=Reason.TOO_MANY_FORM_FIELDS,
        )
    name = field or "body"
    if "exceeded maximum size" in message:  # Starlette's "Part exceeded …" (multipart) or ours (urlencoded)
        said = f"a form field may hold at most {max_part_size // 1024} KB"
        return TooLarge(
            f"表单字段过大 / {name}: {said}",
            detail=[{"field": name, "reason": said, "limit": {"max_bytes": max_part_size}}],
            reason=Reason.FORM_FIELD_TOO_LARGE,
        )
    return InvalidInput(
        f"表单格式错误 / body: {message}", detail=[{"field": "body", "reason": message}], reason=Reason.FORM_MALFORMED
    )


def _urlencoded_strictly(body: bytes, max_fields: int | float, max_part_size: int = 1 << 20) -> FormData:
    """An ``application/x-www-form-urlencoded`` body as the URL standard reads it — percent-decoded bytes, then
    UTF-8 — but strictly: Starlette reads raw bytes as Latin-1 (李娜 sent raw by ``curl -d`` was stored as
    æ\x9d\x8eå¨\x9c) and %-bytes that are not UTF-8 as U+FFFD; either is refused here, naming the field."""
    items: list[tuple[str, str | UploadFile]] = []  # FormData's own item type (a list is invariant)
    for pair in body.split(b"&"):
        if not pair:
            continue
        raw_name, _, raw_value = pair.partition(b"=")
        name_bytes = unquote_to_bytes(raw_name.replace(b"+", b" "))
        try:
            name = name_bytes.decode("utf-8")
        except UnicodeDecodeError as exc:
            why = f"the field's name: {_where_bad(name_bytes, exc)} of the decoded bytes"
            raise _not_utf8(name_bytes.decode("utf-8", "replace"), why) from None
        value_bytes = unquote_to_bytes(raw_value.replace(b"+", b" "))
        if len(value_bytes) > max_part_size:  # as a multipart text field over it is refused
            message = f"Field exceeded maximum size of {max_part_size // 1024}KB."
            raise form_refusal(message, name, max_part_size=max_part_size)
        try:
            items.append((name, value_bytes.decode("utf-8")))
        except UnicodeDecodeError as exc:
            raise _not_utf8(name, f"{_where_bad(value_bytes, exc)} of the decoded bytes") from None
        if len(items) > max_fields:  # as Starlette's parser refuses it
            raise form_refusal(f"Too many fields. Maximum number of fields is {max_fields}.", max_fields=max_fields)
    return FormData(items)


class _StrictFormRequest(Request):
    async def _get_form(
        self, *, max_files: int | float = 1000, max_fields: int | float = 1000, max_part_size: int = 1024 * 1024
    ) -> FormData:
        content_type, options = parse_options_header(self.headers.get("Content-Type"))
        if self._form is None and content_type == b"application/x-www-form-urlencoded":
            self._form = _urlencoded_strictly(await self.body(), max_fields, max_part_size)
        if self._form is None and content_type == b"multipart/form-data":
            declared = options.get(b"charset")
            if declared is not None:  # Starlette reads a charset it does not know as Latin-1
                _check_charset(declared.decode("latin-1"))
            parser = _StrictTextParser(
                self.headers, self.stream(), max_files=max_files, max_fields=max_fields, max_part_size=max_part_size
            )
            try:
                form = await parser.parse()
            except MultiPartException as exc:  # Starlette's 400 http_error, as a documented refusal
                part = getattr(parser, "_current_part", None)
                field = getattr(part, "field_name", "") or None
                raise form_refusal(exc.message, field, max_fields=max_fields, max_part_size=max_part_size) from exc
            if parser.not_text is not None:
                await form.close()  # the photos' spooled files; nothing was stored
                raise parser.not_text
            self._form = form
        return await super()._get_form(max_files=max_files, max_fields=max_fields, max_part_size=max_part_size)


def _check_charset(charset: str) -> None:
    try:
        codecs.lookup(charset)
    except LookupError:
        raise _unknown_charset("Content-Type", "the form's", charset) from None


class FormTextRoute(APIRoute):
    """A route whose form text (multipart or urlencoded) is refused (422 ``not_utf8``, naming the field, byte and
    offset) when it is not text in its charset, where the framework would have read it as Latin-1 and stored
    mojibake. Every route that takes a form is one (tests/test_api_contract.py checks)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if not _is_form_route(self):  # a JSON route (the intake's hot path among them) keeps its own request
            return handler

        async def strict_form_handler(request: Request) -> Response:
            return await handler(_StrictFormRequest(request.scope, request.receive))

        return strict_form_handler
