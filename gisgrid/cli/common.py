"""Helpers shared by the CLI modules."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from sqlalchemy import Engine

from gisgrid.errors import ConfigError, GisgridError, InvalidInput, Reason
from gisgrid.settings import Settings, settings_error_field, unknown_dotenv_settings, unknown_env_settings


def build_settings() -> Settings:
    """Settings from the environment, or a one-line ConfigError naming the setting; a GISGRID_* variable or .env
    key that is no setting gets a warning line."""
    for line in [*unknown_env_settings(), *unknown_dotenv_settings()]:
        typer.echo(f"warning: {line}", err=True)
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = "GISGRID_" + str(first["loc"][0]).upper() if first.get("loc") else "GISGRID_*"
        msg = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{field}: {msg}") from None
    except SettingsError as exc:  # a list/dict setting whose value is not JSON
        field = settings_error_field(str(exc)) or "GISGRID_*"
        raise ConfigError(f"{field}: not valid JSON (a list is written e.g. '[\"local.csv\"]')") from None


def settings_of(ctx: typer.Context) -> Settings:
    obj = ctx.find_root().obj
    assert isinstance(obj, Settings)
    return obj


def echo(message: str) -> None:
    typer.echo(message)


@contextmanager
def stage_progress() -> Iterator[Callable[[str, int, int], None]]:
    """A ``progress(stage, done, total)`` callback drawing one bar per stage (read, check, write …) while it runs:
    on stderr, and only on a terminal, so that stdout holds the summary alone (a bar stopping on a pipe would
    leave an empty first line there)."""
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"))
    console = Console(stderr=True)
    with Progress(
        *columns, TimeElapsedColumn(), transient=True, console=console, disable=not console.is_terminal
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield progress


_T = TypeVar("_T")
#: Exit statuses a script can tell apart. 2 is click's own — the command line itself was wrong (an unknown option,
#: a value out of range), nothing ran — so a command's own refusals never use it.
EXIT_FAILED = 1  # could not run (settings, the database, an unreadable file) or nothing imported
#: Ran and refused part of its work: some rows (the others written), an edit (nothing written), problems found.
EXIT_REFUSED = 3


def run_recode(settings: Settings, old: str, new: str, recode: Callable[[Engine], _T]) -> _T:
    """Run a recode (``boundaries recode``, ``departments recode``) on the settings' database: a refusal is one
    line on stderr, with its reason code, and exit status ``EXIT_REFUSED``."""
    return run_refusable(settings, f"recode {old} → {new}", recode)


def run_refusable(settings: Settings, what: str, edit: Callable[[Engine], _T]) -> _T:
    """Run an all-or-nothing edit of stored records (a recode, ``boundaries replace``/``remove``) on the settings'
    database: a refusal is one line on stderr — ``error [reason]: WHAT refused: …; nothing written`` — and exit
    status ``EXIT_REFUSED`` (3), apart from 1 (settings, an unreachable database …)."""
    from gisgrid.storage.database import make_engine, prepare_database

    engine = make_engine(prepare_database(settings, echo))
    try:
        return edit(engine)
    except GisgridError as exc:
        reason = f" [{exc.reason}]" if exc.reason else ""
        typer.echo(f"error{reason}: {what} refused: {exc.message}; nothing written", err=True)
        raise typer.Exit(EXIT_REFUSED) from None
    finally:
        engine.dispose()


def check_option_point(lon: float | None, lat: float | None) -> None:
    """``--lon``/``--lat`` refused as the API refuses lon/lat (geodesy.check_point): NaN or infinite
    ``finite_number`` ("not a finite number", not "outside ±180°"), else beyond ±180°/±90° ``out_of_range`` — printed
    zh-CN first by the reason's text, as every refusal of the CLI."""
    for option, value in (("--lon", lon), ("--lat", lat)):
        if value is not None and not math.isfinite(value):
            raise InvalidInput(
                f"{option}: {value} is not a finite number",
                detail=[{"field": option, "reason": "not a finite number"}],
                reason=Reason.FINITE_NUMBER,
            )
    for option, value, bound in (("--lon", lon, 180), ("--lat", lat, 90)):
        if value is not None and not -bound <= value <= bound:
            raise InvalidInput(
                f"{option}: {value} is outside ±{bound}°",
                detail=[{"field": option, "reason": f"outside ±{bound}°", "limit": {"ge": -bound, "le": bound}}],
                reason=Reason.OUT_OF_RANGE,
            )
