"""Helpers shared by the CLI modules."""

from __future__ import annotations

import typer
from pydantic import ValidationError

from gisgrid.errors import ConfigError
from gisgrid.settings import Settings


def build_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = "GISGRID_" + str(first["loc"][0]).upper() if first.get("loc") else "GISGRID_*"
        raise ConfigError(f"{field}: {first['msg']}") from None


def settings_of(ctx: typer.Context) -> Settings:
    obj = ctx.find_root().obj
    assert isinstance(obj, Settings)
    return obj


def echo(message: str) -> None:
    typer.echo(message)
