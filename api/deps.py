"""Dependencies: settings, the engine and the acting user, taken from ``app.state`` and the request."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import unquote

import asyncpg
from fastapi import Depends, Header, Request
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from gisgrid.settings import Settings
from maps.tiles_sql import TILE_SESSION_SETTINGS


# Plain lookups are ``async def``: FastAPI runs a sync dependency in its thread pool, a hop per request.
async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_engine(request: Request) -> Engine:
    return request.app.state.engine


async def get_autocommit_engine(request: Request) -> Engine:
    """The engine whose connections stay in AUTOCOMMIT: for work done in single statements (case intake)."""
    return request.app.state.autocommit_engine


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
AutocommitEngineDep = Annotated[Engine, Depends(get_autocommit_engine)]


class TilePool:
    """The asyncpg pool behind the tile endpoint — the one hot path that is async end to end (no thread hop, no
    ping per checkout, statements prepared once per session). Made on first use inside the serving event loop
    (a pool belongs to its loop), closed by the app's lifespan."""

    def __init__(self, url: URL, max_size: int) -> None:
        self.url = url
        self.max_size = max_size
        self._pool: asyncpg.Pool | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None

    def _connect_kwargs(self) -> dict[str, Any]:
        u = self.url
        return {
            "host": u.query.get("host") or u.host or "localhost",
            "port": u.port or 5432,
            "user": u.username,
            "password": u.password,
            "database": u.database,
            "server_settings": {"application_name": "gisgrid-tiles", **TILE_SESSION_SETTINGS},
            "timeout": 5,
        }

    async def get(self) -> asyncpg.Pool:
        loop = asyncio.get_running_loop()
        if self._pool is not None and self._loop is loop:
            return self._pool
        if self._lock is None or self._loop is not loop:
            self._lock, self._loop, self._pool = asyncio.Lock(), loop, None  # a new loop (tests): a new pool
        async with self._lock:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    min_size=1, max_size=self.max_size, reset=_keep_session, **self._connect_kwargs()
                )
        return self._pool

    async def close(self) -> None:
        if self._pool is not None and self._loop is asyncio.get_running_loop():
            await self._pool.close()
        self._pool = None


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """No reset round trip when a tile connection goes back to the pool: a tile query changes no session state
    (no SET, LISTEN, advisory lock or cursor), and the settings it needs are the session's own."""


@dataclass(frozen=True)
class Actor:
    """Who acts: a simple identity from request headers until real login arrives (same shape then)."""

    name: str
    role: str | None


async def get_actor(
    x_actor: Annotated[str | None, Header(description="Acting user's name or id")] = None,
    x_role: Annotated[str | None, Header(description="Acting user's role")] = None,
) -> Actor:
    # Header values are latin-1 on the wire: non-ASCII names (李娜) arrive percent-encoded.
    name = unquote(x_actor or "").strip() or "anonymous"
    return Actor(name=name, role=unquote(x_role).strip() if x_role else None)


ActorDep = Annotated[Actor, Depends(get_actor)]
