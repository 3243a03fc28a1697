"""``gisgrid departments``: the departments (处置部门 / 主管部门 / 权属单位 / 养护单位) as stored."""

from __future__ import annotations

import typer

from gisgrid.cli.common import echo, run_recode, settings_of

app = typer.Typer(help="Departments 部门 (codes from the catalogue).", no_args_is_help=True)


@app.command("recode")
def recode(
    ctx: typer.Context,
    old: str = typer.Argument(..., help="The code stored today (e.g. a 9900000000000000NN placeholder)."),
    new: str = typer.Argument(..., help="The code that replaced it in the city's departments file."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would be rewritten; write nothing."),
) -> None:
    """Move every stored record of department OLD to its new code NEW, in one transaction.

    Change the departments file first (NEW in place of OLD, same name — in an extra departments file a row
    `OLD,name,-` removes OLD —, and NEW in every class and routing rule that named OLD; stop the service), then run
    this, then start the service. Rewrites cases — finished ones too — with their routing decisions, case log
    (派遣, 返工 …) and 交办单/督办单, and components' ZGBMDM/QSDWDM/YHDWDM (with a history entry), and removes OLD
    from the departments table. Refused with exit status 3, nothing written: NEW not a department code, not in the
    loaded catalogue, or already on stored records; OLD still in the catalogue, or stored nowhere; a class or routing
    rule in force still naming a removed department.
    """
    from sqlalchemy import Engine

    from gisgrid.cases import load_rules
    from gisgrid.components_store import catalogue_for
    from gisgrid.departments import DepartmentRecodeResult, recode_department

    settings = settings_of(ctx)
    catalogue = catalogue_for(settings)

    def checked_recode(engine: Engine) -> DepartmentRecodeResult:
        # the whole catalogue in force, as `serve` reads it: an event class or routing rule that still names a
        # department the city's file removed refuses the recode here (its file:line), not the next start
        load_rules(settings, catalogue)
        return recode_department(engine, catalogue, old, new, dry_run=dry_run)

    result = run_recode(settings, old, new, checked_recode)
    what = "would rewrite" if dry_run else "rewrote"
    echo(f"department {result.new_name}: {old} → {new}; {what}:")
    echo(result.counts.to_text())
    if dry_run:
        echo("dry run: nothing written")
