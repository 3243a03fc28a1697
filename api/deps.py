"""Dependencies: settings, the engine and the acting user, taken from ``app.state`` and the request."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import unicodedata
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import unquote

import asyncpg
from fastapi import Depends, Header, Request
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from gisgrid.cases import TEXT_LIMITS
from gisgrid.components import EDITOR_ROLES
from gisgrid.errors import InvalidInput, Reason
from gisgrid.settings import Settings
from gisgrid.storage.database import ASYNCPG_UNAVAILABLE, asyncpg_connect_args, keepalive_options
from gisgrid.workflow import (
    DEPARTMENT_ROLE,
    ROLES,
    UNNAMED_ACTOR,
    UNSTATED_DEPARTMENT,
    RoleNotAllowed,
    refusal_item,
)


# Plain lookups are ``async def``: FastAPI runs a sync dependency in its thread pool, a hop per request.
async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_engine(request: Request) -> Engine:
    return request.app.state.engine


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]


class AsyncPool:
    """An asyncpg pool for the hot paths that are async end to end — tiles and case intake: no thread hop, no ping
    per checkout, statements prepared once per session. Made on first use inside the serving event loop (a pool
    belongs to its loop), closed by the app's lifespan. ``server_settings`` are the sessions' own (the statements
    rely on them), so nothing resets a session when its connection goes back to the pool."""

    def __init__(
        self,
        url: URL,
        max_size: int,
        *,
        application_name: str,
        server_settings: Mapping[str, str],
        init: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
        statement_timeout_s: float = 0,
    ) -> None:
        self.url = url
        # Built now: a URL parameter asyncpg cannot honour stops the app's start (ConfigError), not a request.
        self._args = asyncpg_connect_args(url)
        self.keepalives = keepalive_options(url)
        self.max_size = max_size
        self.application_name = application_name
        self.server_settings = dict(server_settings)
        # The server cancels a statement past statement_timeout (a clean 57014); asyncpg gives up a few seconds
        # later (command_timeout) when the server answers nothing at all (hung, or the network gone).
        self.command_timeout: float | None = None
        if statement_timeout_s > 0:
            self.server_settings["statement_timeout"] = str(round(statement_timeout_s * 1000))
            self.command_timeout = statement_timeout_s + COMMAND_TIMEOUT_MARGIN_S
        self.init = init
        self._pool: asyncpg.Pool | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None
        # One connection kept out of the pool for :meth:`fetchval` while it is free: asyncpg's release schedules a
        # shielded task per checkout (~0.03 ms), as much as a fifth of a small tile's whole query.
        self._pinned: asyncpg.Connection | None = None
        self._pinned_busy = False

    def _connect_kwargs(self) -> dict[str, Any]:
        return {
            **self._args,
            "server_settings": {"application_name": self.application_name, **self.server_settings},
            "timeout": 5,
            "command_timeout": self.command_timeout,
        }

    async def _init(self, conn: asyncpg.Connection) -> None:
        set_keepalives(conn, self.keepalives)
        if self.init is not None:
            await self.init(conn)

    async def get(self) -> asyncpg.Pool:
        loop = asyncio.get_running_loop()
        if self._pool is not None and self._loop is loop:
            return self._pool
        if self._lock is None or self._loop is not loop:
            # A new loop (tests): a new pool, and nothing pinned from the old one.
            self._lock, self._loop, self._pool, self._pinned, self._pinned_busy = (
                asyncio.Lock(),
                loop,
                None,
                None,
                False,
            )
        async with self._lock:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    min_size=1, max_size=self.max_size, reset=_keep_session, init=self._init, **self._connect_kwargs()
                )
        return self._pool

    async def fetchval(self, query: str, *args: object) -> Any:
        """One read statement's first value, on the pinned connection when it is free, else on a pooled one
        (requests overlapping in this worker). A pinned connection the server ended (a restart, an administrator)
        goes back to the pool, which replaces it, and the statement — a read — is sent once more on a pooled one.
        A pool of one connection pins none: an overlapping request would wait for ever for a second."""
        pool = await self.get()
        if self.max_size < 2 or self._pinned_busy:
            return await pool.fetchval(query, *args)
        self._pinned_busy = True
        try:
            conn = self._pinned
            if conn is None or not _usable(conn):
                await self._unpin(pool)
                self._pinned = conn = await pool.acquire()
            try:
                return await conn.fetchval(query, *args)
            except CONNECTION_LOST:  # ended between the check and the statement
                await self._unpin(pool)
        finally:
            self._pinned_busy = False
        return await pool.fetchval(query, *args)

    async def _unpin(self, pool: asyncpg.Pool) -> None:
        conn, self._pinned = self._pinned, None
        if conn is not None:
            with contextlib.suppress(*CONNECTION_LOST):  # already taken back by the pool, or gone
                await pool.release(conn)

    async def close(self) -> None:
        if self._pool is not None and self._loop is asyncio.get_running_loop():
            await self._unpin(self._pool)  # given back (or gone with the server) before the pool closes
            await self._pool.close()
        self._pool, self._pinned, self._pinned_busy = None, None, False


#: How much longer than the server's statement_timeout asyncpg waits for an answer before giving up itself.
COMMAND_TIMEOUT_MARGIN_S = 5.0


def set_keepalives(conn: asyncpg.Connection, options: Mapping[str, int]) -> None:
    """TCP keepalives on an asyncpg connection's socket, as libpq's ``keepalives*`` parameters set them (asyncpg
    has no option for it). A Unix socket has none."""
    transport = getattr(conn, "_transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    on = bool(options.get("keepalives", 1))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, int(on))
    if not on:
        return
    for name, key in (
        ("TCP_KEEPIDLE", "keepalives_idle"),
        ("TCP_KEEPINTVL", "keepalives_interval"),
        ("TCP_KEEPCNT", "keepalives_count"),
    ):
        if hasattr(socket, name) and options.get(key):  # 0: the system's default, as libpq
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), options[key])


def _usable(conn: asyncpg.Connection) -> bool:
    try:
        return not conn.is_closed()
    except asyncpg.InterfaceError:  # a pool's proxy the pool took back when its connection was lost
        return False


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """No reset round trip when a connection goes back to the pool: the tile and intake statements change no
    session state (no SET, LISTEN, advisory lock or cursor), and the settings they need are the session's own."""


#: What a statement on a connection the server has ended raises (its goodbye not yet read, or read mid-statement).
CONNECTION_LOST = (
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.exceptions.AdminShutdownError,  # terminated while the statement ran
    ConnectionError,
)


#: What asyncpg raises when the database cannot be reached or takes no work (down, restarting, out of
#: connections, or refuses the login: the database dropped, a rotated password): answered 503 with the reason.
#: Any other database error is a fault of the statement: a 500. ``OSError`` is the connect's (refused, no route,
#: a name not resolved, a timeout); the photo store's own write errors never reach here as one — it raises
#: ``PhotoStoreUnavailable`` (503 ``photo_store_error``), not a database outage (review46 F1).
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (OSError, *ASYNCPG_UNAVAILABLE)


async def get_intake_pool(request: Request) -> AsyncPool:
    return request.app.state.intake_pool


IntakePoolDep = Annotated[AsyncPool, Depends(get_intake_pool)]


#: The longest name X-Actor may carry: a reporter's (上报人), which it stands for when a report names none.
ACTOR_MAX = TEXT_LIMITS["reporter"]


@dataclass(frozen=True)
class Actor:
    """Who acts: a simple identity from request headers until real login arrives (same shape then)."""

    name: str
    role: str | None
    #: The department the department role acts for (X-Department, a department code): it may act only on the
    #: cases dispatched to that department, so it must say which (a gateway sets it from the user's account).
    department: str | None = None

    @property
    def offered_department(self) -> str | None:
        """The department to offer actions for on a read: the department role without X-Department could take no
        step (acting needs it), so it is offered none rather than every department's."""
        if self.role == DEPARTMENT_ROLE and self.department is None:
            return UNSTATED_DEPARTMENT
        return self.department


@dataclass(frozen=True)
class ActingActor(Actor):
    """The actor of a workflow step: :func:`get_acting_role` refused it without a role (and the department role
    without its department)."""

    role: str


async def get_actor(
    x_actor: Annotated[str | None, Header(description="Acting user's name or id")] = None,
    x_role: Annotated[
        str | None,
        # Stated, not validated here: an unknown role is refused by the workflow with its reason (unknown_role).
        Header(description="Acting user's role", json_schema_extra={"enum": list(ROLES)}),
    ] = None,
    x_department: Annotated[
        str | None,
        Header(
            description="The department the acting user works for (its code): required with X-Role department, "
            "which acts only on the cases dispatched to it",
            max_length=40,
        ),
    ] = None,
) -> Actor:
    # Header values are bytes the server reads as latin-1: non-ASCII names (李娜) are sent percent-encoded; raw
    # UTF-8 from a client that did not encode is read as UTF-8, and anything else refused (not stored garbled).
    name = _header_text(x_actor or "", "X-Actor").strip() or UNNAMED_ACTOR
    if len(name) > ACTOR_MAX:  # stored as who acted, and the report's reporter when the body names none
        raise InvalidInput(
            f"X-Actor header: at most {ACTOR_MAX} characters, got {len(name)}",
            detail=[{"field": "X-Actor", "reason": "too long", "limit": {"max_length": ACTOR_MAX}}],
            reason=Reason.STRING_TOO_LONG,
        )
    department = (_header_text(x_department, "X-Department").strip() or None) if x_department else None
    return Actor(name=name, role=_header_text(x_role, "X-Role").strip() if x_role else None, department=department)


def _header_text(value: str, header: str) -> str:
    """The header's text: percent-encoded UTF-8 decoded, raw UTF-8 read as such; anything else refused."""
    try:
        text = value if value.isascii() else value.encode("latin-1").decode("utf-8")
        text = unquote(text, errors="strict")
    except UnicodeError:
        raise InvalidInput(
            f"{header} header: not UTF-8 text; send non-ASCII names percent-encoded (e.g. %E6%9D%8E%E5%A8%9C)",
            detail=[{"field": header, "reason": "not UTF-8"}],
            reason=Reason.NOT_UTF8,
        ) from None
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in text):  # NUL, line breaks, bidi overrides …
        raise InvalidInput(
            f"{header} header: control or format characters are not part of a name",
            detail=[{"field": header, "reason": "control characters"}],
            reason=Reason.CONTROL_CHARACTERS,
        )
    return text


ActorDep = Annotated[Actor, Depends(get_actor)]


def _with_role(actor: Actor) -> ActingActor:
    """``actor``, which must state its role."""
    if not actor.role:
        raise InvalidInput(
            "X-Role header: say which role acts (e.g. dispatcher 派遣员)",
            detail=[{"field": "X-Role", "reason": "missing: say which role acts"}],
            reason=Reason.MISSING,
        )
    return ActingActor(actor.name, actor.role, actor.department)


async def get_acting_role(actor: ActorDep) -> ActingActor:
    """The actor of a workflow step: its role is required (each step is allowed to some roles only), and the
    department role's department."""
    acting = _with_role(actor)
    if acting.role == DEPARTMENT_ROLE and acting.department is None:
        raise InvalidInput(
            "X-Department header: the department role acts for one department — send its code (e.g. "
            "990000000000000003); it may act only on the cases dispatched to it",
            detail=[{"field": "X-Department", "reason": "missing: the department role acts for one department"}],
            reason=Reason.MISSING,
        )
    return acting


ActingDep = Annotated[ActingActor, Depends(get_acting_role)]


async def get_component_editor(
    x_actor: Annotated[str | None, Header(description="Acting user's name or id")] = None,
    x_role: Annotated[
        str | None, Header(description="Acting user's role", json_schema_extra={"enum": list(EDITOR_ROLES)})
    ] = None,
) -> ActingActor:
    """The actor of a change to the component inventory: one of ``EDITOR_ROLES`` (403 for the case roles). Its own
    header parameters, so that OpenAPI offers these routes their roles and the case routes theirs."""
    actor = _with_role(await get_actor(x_actor, x_role, None))
    if actor.role not in EDITOR_ROLES:
        allowed = ", ".join(f"{r} ({label})" for r, label in EDITOR_ROLES.items())
        known = actor.role in ROLES
        raise RoleNotAllowed(
            f"changing components is not allowed for role {actor.role!r}"
            f"{f' ({ROLES[actor.role]})' if known else ' (unknown role)'}; allowed roles: {allowed}",
            detail=[
                refusal_item(
                    "X-Role",
                    "not allowed to change components",
                    Reason.ROLE_NOT_ALLOWED,
                    role=actor.role,
                    allowed_roles=list(EDITOR_ROLES),
                )
            ],
        )
    return actor


ComponentEditorDep = Annotated[ActingActor, Depends(get_component_editor)]
