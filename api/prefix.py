"""The path prefix the app is served under (ASGI ``root_path``), for every URL it gives out.

A reverse proxy serving gisgrid at ``https://gw.city/gisgrid/`` strips ``/gisgrid`` and the server is told so
(``gisgrid serve --root-path /gisgrid``): requests then carry ``scope["root_path"] == "/gisgrid"``. uvicorn also puts
the prefix in front of ``scope["path"]`` while a test client may not; routing ignores it either way. Pages, links
and ``Location`` headers are built from the scope, so one app answers right with and without a proxy.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import URL
from starlette.types import Scope


def root_path(scope: Scope) -> str:
    """``""`` or ``/gisgrid``: the prefix of this request (the app's, not a mounted sub-app's)."""
    return str(scope.get("app_root_path", scope.get("root_path", "")) or "").rstrip("/")


def route_path(scope: Scope) -> str:
    """The path within the app (``/grids``), with or without the server's prefix in ``scope["path"]``."""
    path: str = scope.get("path", "")
    root = str(scope.get("root_path", "") or "").rstrip("/")
    if root and (path == root or path.startswith(root + "/")):
        return path[len(root) :] or "/"
    return path


async def _base(request: Request) -> str:  # async: a sync dependency costs a thread hop
    return root_path(request.scope)


#: The prefix to put before an app path (``base + "/cases/12"``) in what a route answers.
BaseDep = Annotated[str, Depends(_base)]


def public_url(request: Request) -> str:
    """This request's own URL as the client sees it (prefix included): for paging links."""
    return str(request.url.replace(path=root_path(request.scope) + route_path(request.scope)))


def page_links(request: Request, limit: int, offset: int, returned: int, matched: int) -> list[dict[str, str]]:
    """``self``, and ``next``/``prev`` where there is such a page: this request's URL (prefix included) with its
    ``offset`` moved by a page, its other parameters kept."""
    url = URL(public_url(request))
    links = [{"rel": "self", "href": str(url)}]
    if offset + returned < matched:
        links.append({"rel": "next", "href": str(url.include_query_params(offset=offset + limit))})
    if offset > 0:
        links.append({"rel": "prev", "href": str(url.include_query_params(offset=max(0, offset - limit)))})
    return links


def cursor_links(request: Request, limit: int, offset: int, next_after: str | None) -> list[dict[str, str]]:
    """Keyset paging's links: ``self``; ``next`` — this request's URL with ``after`` set to the page's end (and no
    offset), where there is such a page; ``prev`` only for a page reached by an offset (a cursor walks forward)."""
    url = URL(public_url(request))
    links = [{"rel": "self", "href": str(url)}]
    if next_after is not None:
        following = url.remove_query_params("offset").include_query_params(after=next_after)
        links.append({"rel": "next", "href": str(following)})
    if offset > 0:
        links.append({"rel": "prev", "href": str(url.include_query_params(offset=max(0, offset - limit)))})
    return links
