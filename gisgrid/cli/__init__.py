"""The ``gisgrid`` command. Sub-commands live in one module per concept; this module wires them up (every
sub-command is registered when it is imported: ``from gisgrid.cli import app`` is the whole command, as the
``gisgrid`` entry point runs it) and turns domain errors into a one-line message and a non-zero exit."""

from __future__ import annotations

import re
import sys
import warnings
from typing import Any

import typer

from gisgrid.cli import boundaries as boundaries_cli
from gisgrid.cli import cases as cases_cli
from gisgrid.cli import catalogue as catalogue_cli
from gisgrid.cli import components as components_cli
from gisgrid.cli import db as db_cli
from gisgrid.cli import demo as demo_cli
from gisgrid.cli import departments as departments_cli
from gisgrid.cli import evaluation as evaluation_cli
from gisgrid.cli import grids as grids_cli
from gisgrid.cli import maprender as maprender_cli
from gisgrid.cli import photos as photos_cli
from gisgrid.cli import serve as serve_cli
from gisgrid.cli.common import build_settings
from gisgrid.errors import ConfigError, GisgridError
from gisgrid.settings import misspelt_settings, product_data_dir
from gisgrid.storage.database import CLI_CONFLICT_TEXT, concurrent_conflict_cause

app = typer.Typer(
    name="gisgrid",
    help="gisgrid — 数字化城市管理 unit grids, components and cases on PostGIS.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(ctx: typer.Context) -> None:
    """Settings are read once here (GISGRID_* variables, .env) and handed to every sub-command. ``serve``, ``db``
    and ``demo`` refuse a variable that is a near miss of a setting: they would otherwise serve, make a cluster or
    load the demo with the default (review46 F2)."""
    ctx.obj = build_settings()
    if ctx.invoked_subcommand in ("serve", "db", "demo"):
        misspelt = misspelt_settings(serve=ctx.invoked_subcommand == "serve")
        if misspelt:
            raise ConfigError(misspelt)


app.add_typer(db_cli.app, name="db")
app.command("serve")(serve_cli.serve)


app.add_typer(boundaries_cli.app, name="boundaries")
app.add_typer(grids_cli.app, name="grids")
app.add_typer(components_cli.app, name="components")
app.add_typer(cases_cli.app, name="cases")
app.add_typer(departments_cli.app, name="departments")
app.add_typer(catalogue_cli.app, name="catalogue")
app.command("simulate")(evaluation_cli.simulate_cmd)
app.command("evaluate")(evaluation_cli.evaluate_cmd)
app.add_typer(demo_cli.app, name="demo")
app.add_typer(maprender_cli.app, name="map")
app.add_typer(photos_cli.app, name="photos")


def _one_line_warning(message: Any, category: type[Warning], *_args: Any, **_kwargs: Any) -> None:
    """The service's own warnings (a year the holiday calendar does not know …) as one line for the user; the
    rest as Python shows them."""
    if category.__module__.startswith("gisgrid"):
        typer.echo(f"warning: {message}", err=True)
    else:
        _python_showwarning(message, category, *_args, **_kwargs)


_python_showwarning = warnings.showwarning
#: A message already zh-CN first (a CJK character or a Chinese bracket leading it).
_ZH_FIRST = re.compile(r"[\u3400-\u9fff「（]")


def said_in_chinese_first(exc: GisgridError) -> str:
    """The refusal's message for an analyst who reads Chinese: as it is when zh-CN first already; else its reason's
    zh-CN text (messages_zh.csv, the API's and the pages' words for the same code) before the English."""
    if exc.reason is None or _ZH_FIRST.match(exc.message):
        return exc.message
    try:
        from maps.pagejs import REASON_TEXTS_FILE, load_reason_texts

        zh = load_reason_texts(product_data_dir(build_settings(), REASON_TEXTS_FILE)).get(str(exc.reason))
    except Exception:  # a broken catalogue or setting must not hide the refusal being reported
        zh = None
    return f"{zh} / {exc.message}" if zh else exc.message


def main() -> None:
    warnings.showwarning = _one_line_warning
    try:
        # Outside standalone mode click *returns* the code of a ``typer.Exit`` instead of exiting with it;
        # dropping it turned every documented exit code 1 (refused imports) into 0 for scripts.
        code = app(standalone_mode=False)
    except GisgridError as exc:
        typer.echo(f"error: {said_in_chinese_first(exc)}", err=True)
        sys.exit(1)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(1)
    except SystemExit:
        raise
    except Exception as exc:  # click usage errors arrive here in non-standalone mode
        # typer vendors its own click: recognise its usage errors and exits by shape, not class.
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):
            exc.show()
            sys.exit(exc.exit_code)
        if hasattr(exc, "exit_code") and type(exc).__name__ == "Exit":
            sys.exit(exc.exit_code)
        conflict = concurrent_conflict_cause(exc)  # a deadlock, a serialization failure: rolled back, not a bug
        if conflict is not None:
            # A command may commit in steps (demo load): what the database rolled back is the step it was in.
            typer.echo(f"error: {CLI_CONFLICT_TEXT} ({conflict})", err=True)
            sys.exit(1)
        raise
    if isinstance(code, int) and code:
        sys.exit(code)
