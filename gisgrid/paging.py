"""How far a list may be paged: the one place the API's ``limit``/``offset`` bounds and the CLI's are stated.

``offset`` is bounded so that a value past PostgreSQL's bigint (or any absurd one) is a 422 naming it instead of a
database error; ten million rows is far past any listing a person pages through — filter instead."""

from __future__ import annotations

#: Rows per page at most (``limit``).
MAX_LIMIT = 5000
#: Rows skipped at most (``offset``).
MAX_OFFSET = 10_000_000
