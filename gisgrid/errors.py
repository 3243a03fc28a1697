"""Typed domain errors. Domain code raises these; the API maps them to HTTP in one table (api/errors.py)
and the CLI prints their message and exits non-zero.

An error names its kind by class (``code``: invalid_input, conflict …) and, where the refusal has a specific
cause, that cause by a :class:`Reason` given where it is raised (``reason=Reason.NOT_OVERDUE_OR_FLAGGED``): a
stable code for clients and for the pages' zh-CN texts (``data/catalogue/messages_zh.csv``), so that nothing
has to read the English message, which may be reworded."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Reason(StrEnum):
    """Why a request was refused: the ``reason`` of an API error body and the ``code`` of its items. Every code
    has a zh-CN text in ``data/catalogue/messages_zh.csv`` and a line in README's API section (both tested)."""

    # Request validation: pydantic's own ``type`` of an item, kept as its code. The service's own checks use the
    # same code for the same cause (a field it does not take is extra_forbidden whoever finds it).
    MISSING = "missing"
    EXTRA_FORBIDDEN = "extra_forbidden"
    JSON_INVALID = "json_invalid"
    BODY_NOT_UTF8 = "body_not_utf8"  # the service's own: a JSON body whose bytes are not UTF-8 text
    MODEL_ATTRIBUTES_TYPE = "model_attributes_type"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"  # a body not sent as the route reads it (JSON or a form)
    DICT_TYPE = "dict_type"
    STRING_TYPE = "string_type"
    STRING_TOO_SHORT = "string_too_short"
    STRING_TOO_LONG = "string_too_long"
    STRING_PATTERN_MISMATCH = "string_pattern_mismatch"
    INT_PARSING = "int_parsing"
    INT_TYPE = "int_type"
    INT_FROM_FLOAT = "int_from_float"
    FLOAT_PARSING = "float_parsing"
    FLOAT_TYPE = "float_type"
    FINITE_NUMBER = "finite_number"  # NaN or ±infinity where a number is wanted (lon, lat, radius_m …)
    BOOL_TYPE = "bool_type"
    GREATER_THAN = "greater_than"
    GREATER_THAN_EQUAL = "greater_than_equal"
    LESS_THAN_EQUAL = "less_than_equal"
    LITERAL_ERROR = "literal_error"
    DATETIME_PARSING = "datetime_parsing"
    DATETIME_FROM_DATE_PARSING = "datetime_from_date_parsing"
    VALUE_ERROR = "value_error"
    STRING_UNICODE = "string_unicode"  # a text holding a lone surrogate ("\ud800"): no UTF-8 can carry it
    # Fields and parameters, as the service checks them.
    NUL_CHARACTER = "nul_character"
    NOT_UTF8 = "not_utf8"
    CONTROL_CHARACTERS = "control_characters"
    JSON_TOO_DEEP = "json_too_deep"
    OUT_OF_RANGE = "out_of_range"
    NOT_POSITIVE = "not_positive"
    UNKNOWN_ROLE = "unknown_role"
    UNKNOWN_ACTION = "unknown_action"
    UNKNOWN_CLASS = "unknown_class"
    UNKNOWN_DISPOSAL_TYPE = "unknown_disposal_type"
    UNKNOWN_DEPARTMENT = "unknown_department"
    UNKNOWN_INDICATOR = "unknown_indicator"
    UNTIL_NOT_AFTER_SINCE = "until_not_after_since"
    PERIOD_UNREADABLE = "period_unreadable"
    AS_OF_UNREADABLE = "as_of_unreadable"
    AS_OF_BEFORE_PERIOD_START = "as_of_before_period_start"
    AS_OF_IN_FUTURE = "as_of_in_future"
    PERIOD_END_NOT_AFTER_START = "period_end_not_after_start"
    PERIOD_WITH_SINCE_UNTIL = "period_with_since_until"
    AFTER_UNREADABLE = "after_unreadable"  # a list's page cursor not made by this list's order
    AFTER_WITH_OFFSET = "after_with_offset"
    BBOX_UNREADABLE = "bbox_unreadable"
    BBOX_OUT_OF_RANGE = "bbox_out_of_range"
    PDF_TOO_MANY_ROWS = "pdf_too_many_rows"
    XLSX_TOO_MANY_ROWS = "xlsx_too_many_rows"
    NEEDS_LON_LAT = "needs_lon_lat"
    REPEATED_PARAMETER = "repeated_parameter"  # a query parameter given twice: the framework kept the last only
    # A form the framework's parser refuses: malformed multipart (no boundary, no part name, broken framing), more
    # fields or files than it reads, a text field over its size (api.inputs.form_refusal).
    FORM_MALFORMED = "form_malformed"
    TOO_MANY_FORM_FIELDS = "too_many_form_fields"
    FORM_FIELD_TOO_LARGE = "form_field_too_large"
    CROSS_SITE_REQUEST = "cross_site_request"  # a browser's write sent by another site's page (api.http.CrossSiteGuard)
    # A browser's CORS preflight asking what GISGRID_CORS_ORIGINS does not grant (api.http.JSONCORSMiddleware).
    CORS_PREFLIGHT_REFUSED = "cors_preflight_refused"
    # Its items, one per refused part: the page's origin, the method, a header, private-network access.
    CORS_ORIGIN_NOT_ALLOWED = "cors_origin_not_allowed"
    CORS_METHOD_NOT_ALLOWED = "cors_method_not_allowed"
    CORS_HEADERS_NOT_ALLOWED = "cors_headers_not_allowed"
    CORS_PRIVATE_NETWORK_NOT_ALLOWED = "cors_private_network_not_allowed"
    HOST_NOT_ALLOWED = "host_not_allowed"  # a Host that GISGRID_ALLOWED_HOSTS does not list (api.http.AllowedHosts)
    # Where a report is.
    NO_LOCATION = "no_location"
    ZERO_LOCATION = "zero_location"
    LON_LAT_SWAPPED = "lon_lat_swapped"
    OUTSIDE_COVERAGE = "outside_coverage"
    NO_BOUNDARIES = "no_boundaries"
    # Photos.
    PHOTO_TOO_LARGE = "photo_too_large"
    PHOTO_TOO_MANY_PIXELS = "photo_too_many_pixels"
    PHOTOS_TOO_MANY_PIXELS = "photos_too_many_pixels"  # the request's photos together
    PHOTO_NOT_AN_IMAGE = "photo_not_an_image"
    PHOTO_UNSUPPORTED_FORMAT = "photo_unsupported_format"
    PHOTO_CORRUPT = "photo_corrupt"
    PHOTO_UNREADABLE = "photo_unreadable"  # a stored photo's file damaged on disk since it was taken in
    PHOTO_STORE_UNAVAILABLE = (
        "photo_store_unavailable"  # the photo folder full, read-only, or failing (not the request's)
    )
    TOO_MANY_PHOTOS = "too_many_photos"
    AFTER_PHOTO_IS_BEFORE_PHOTO = "after_photo_is_before_photo"
    AFTER_PHOTO_REUSED = "after_photo_reused"
    # The workflow's refusals by role and state: the error code as the item's code (the body has no reason).
    ROLE_NOT_ALLOWED = "role_not_allowed"
    TRANSITION_NOT_ALLOWED = "transition_not_allowed"
    # The workflow's refusals of a whole request (the case's state allows the action, its facts do not).
    NOT_OVERDUE_OR_FLAGGED = "not_overdue_or_flagged"
    TOP_ESCALATION_LEVEL = "top_escalation_level"
    EXTENSION_PENDING = "extension_pending"
    EXTENSION_AFTER_DEADLINE = "extension_after_deadline"  # 延期申请 once the disposal deadline has passed
    NO_PENDING_EXTENSION = "no_pending_extension"
    REWORK_OTHER_DEPARTMENT = "rework_other_department"
    OTHER_DEPARTMENT = "other_department"  # a department's staff on a case that is with another department
    DEADLINE_NOT_LATER = "deadline_not_later"
    EXTENSION_TOO_LONG = "extension_too_long"
    EXTENSION_TOO_SHORT = "extension_too_short"  # less than MIN_EXTENSION_MINUTES (1e-12 working hours)
    MERGE_INTO_ITSELF = "merge_into_itself"
    MERGE_KEPT_HAS_DUPLICATES = "merge_kept_has_duplicates"
    MERGE_TARGET_NOT_OPEN = "merge_target_not_open"
    MERGE_OTHER_CLASS = "merge_other_class"
    MERGE_TOO_FAR = "merge_too_far"
    NO_CASE_NUMBER = "no_case_number"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    EXTERNAL_REF_EXISTS = "external_ref_exists"  # a report of a (source, external_ref) a case holds already
    # Any write: the database aborted it for a concurrent one (a deadlock, a serialization failure).
    CONCURRENT_CONFLICT = "concurrent_conflict"
    # Any route: the database lacks a column or table this version uses (downgraded under a running server).
    SCHEMA_BEHIND = "schema_behind"
    # Any route: a statement past GISGRID_STATEMENT_TIMEOUT_S, or a database answering nothing (503).
    DATABASE_TIMEOUT = "database_timeout"
    # Any route: the database cannot be reached or takes no login (503), or every connection is in use.
    DATABASE_UNAVAILABLE = "database_unavailable"
    DATABASE_BUSY = "database_busy"
    # Evaluation.
    NO_CASES_IN_PERIOD = "no_cases_in_period"
    # A heavy evaluation (unit grids, a workbook) asked while this process's slots for them are all taken (503).
    EVALUATION_BUSY = "evaluation_busy"
    # Components (部件).
    STALE_VERSION = "stale_version"
    COMPONENT_EXISTS = "component_exists"
    COMPONENT_RETIRED = "component_retired"
    DUPLICATE_COMPONENT = "duplicate_component"
    CLASS_CHANGE = "class_change"
    NOT_A_POINT = "not_a_point"
    SERIALS_EXHAUSTED = "serials_exhausted"
    SEVERAL_DISTRICTS = "several_districts"
    # Boundaries (行政区划): replacing a provisional code (gisgrid boundaries recode), and the import's guard.
    UNIT_NOT_FOUND = "unit_not_found"
    CODE_NOT_PROVISIONAL = "code_not_provisional"
    CODE_MALFORMED = "code_malformed"
    CODE_OTHER_LEVEL = "code_other_level"
    CODE_OTHER_PARENT = "code_other_parent"
    CODE_EXISTS = "code_exists"
    MATCHES_PROVISIONAL_UNIT = "matches_provisional_unit"
    OVERLAPS_STORED_UNIT = "overlaps_stored_unit"
    GRIDS_BUSY = "grids_busy"
    UNIT_IN_USE = "unit_in_use"  # gisgrid boundaries remove: child units, grids, cases or components name it
    # Departments: replacing a department's code (gisgrid departments recode).
    DEPARTMENT_NOT_FOUND = "department_not_found"
    DEPARTMENT_STILL_LISTED = "department_still_listed"
    DEPARTMENT_BUSY = "department_busy"


class GisgridError(Exception):
    """Base of every error the project reports to a user. ``reason``: the refusal's specific cause, where it has
    one beyond ``code`` (the API's body carries it as ``reason``, and as the ``code`` of its items that have none)."""

    code = "error"

    def __init__(
        self, message: str, *, detail: Any = None, reason: Reason | None = None, message_zh: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.reason = reason
        #: The refusal in zh-CN where the code's text says less than the message (which case was not found, which
        #: case a reused key filed): the API's ``message_zh`` for a client asking in Chinese.
        self.message_zh = message_zh


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


class TooLarge(GisgridError):
    """A request larger than the service reads: too many form fields, a form field over its size (413)."""

    code = "payload_too_large"


class StoredFileDamaged(GisgridError):
    """A file the service stored itself no longer reads (damaged or truncated on disk since it was checked and
    kept): the server's fault, not the request's — the API answers 500 with this code and reason, not a generic
    internal error."""

    code = "stored_file_damaged"


class PhotoStoreUnavailable(GisgridError):
    """The photo store cannot be written (full, read-only, permissions, an I/O error): the server's disk, neither
    the request nor the database — 503 ``photo_store_error``, reason ``photo_store_unavailable``. ``message`` is
    what the client is told (the setting, not the server's path); ``log_text`` is for the server log only (the
    path, the errno and the free space)."""

    code = "photo_store_error"

    def __init__(self, message: str, *, log_text: str, errno: int | None = None) -> None:
        super().__init__(message, reason=Reason.PHOTO_STORE_UNAVAILABLE)
        self.log_text = log_text
        self.errno = errno


class Busy(GisgridError):
    """Work this process does only so many of at once is all under way: 503 ``busy`` with ``Retry-After``
    (``retry_after`` seconds), nothing done — the request may be sent again then."""

    code = "busy"

    def __init__(self, message: str, *, reason: Reason, retry_after: int, detail: Any = None) -> None:
        super().__init__(message, reason=reason, detail=detail)
        self.retry_after = retry_after


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
