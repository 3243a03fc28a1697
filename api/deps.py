"""Dependencies: settings, the engine and the acting user, taken from ``app.state`` and the request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import unquote

from fastapi import Depends, Header, Request
from sqlalchemy import Engine

from gisgrid.settings import Settings


# Plain lookups are ``async def``: FastAPI runs a sync dependency in its thread pool, a hop per request.
async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_engine(request: Request) -> Engine:
    return request.app.state.engine


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]


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
