"""Layering: the pure domain modules reach no database or web code, directly or through the gisgrid modules they
import (pure → use case → router, review53 F1/F12). Imports under ``if TYPE_CHECKING:`` are types only and not
followed; function-local imports are (they run)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The I/O packages a pure module must not import (top-level names).
IO_PACKAGES = frozenset(
    {"sqlalchemy", "geoalchemy2", "alembic", "psycopg", "psycopg2", "asyncpg", "fastapi", "starlette"}
)
#: Modules documented as pure (docs/architecture.md).
PURE = (
    "gisgrid.constants",
    "gisgrid.node_clock",
    "gisgrid.workflow",
    "gisgrid.calendar",
    "gisgrid.routing",
    "gisgrid.events",
    "gisgrid.evaluation",
    "gisgrid.risks",
    "gisgrid.geodesy",
    "gisgrid.boundaries",
    "gisgrid.spreadsheet",
    "gisgrid.demo",
    "gisgrid.documents",
    "gisgrid.catalogue_view",
    "gisgrid.catalogue_diff",
    "gisgrid.grids.cutting",
    "gisgrid.grids.tiers",
    "gisgrid.grids.numbering",
)


def _path(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str) -> set[str]:
    """The modules ``module`` imports at run time (absolute names; ``from pkg import mod`` gives ``pkg.mod``)."""
    path = _path(module)
    assert path is not None, module
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if _path(f"{base}.{alias.name}"))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def _io_reached(start: str) -> dict[str, list[str]]:
    """Each I/O package ``start`` reaches, with the chain of gisgrid modules that imports it."""
    chains: dict[str, list[str]] = {start: [start]}
    todo, reached = [start], {}
    while todo:
        module = todo.pop()
        for name in sorted(_imports(module)):
            top = name.split(".")[0]
            if top in IO_PACKAGES:
                reached.setdefault(top, [*chains[module], name])
            elif top == "gisgrid" and name not in chains and _path(name):
                chains[name] = [*chains[module], name]
                todo.append(name)
    return reached


@pytest.mark.parametrize("module", PURE)
def test_pure_module_imports_no_io(module: str) -> None:
    assert _io_reached(module) == {}


def test_the_check_sees_io() -> None:
    """The walk follows gisgrid imports to the I/O they reach (it would otherwise pass vacuously)."""
    assert _io_reached("gisgrid.deadlines")["sqlalchemy"] == ["gisgrid.deadlines", "sqlalchemy"]
    assert _io_reached("gisgrid.history")["sqlalchemy"][:1] == ["gisgrid.history"]


#: The facts gisgrid.constants says once, as the source would spell them again.
_REPEATED = {"Asia/Shanghai", "EPSG:4490", 4490}
_SQL_SRID = re.compile(r"[(,]\s*4490\s*\)")  # ST_SetSRID(…, 4490), geometry(Point, 4490)


def test_the_zone_and_the_storage_crs_are_said_once() -> None:
    """review53 F6: LOCAL_TZ and STORAGE_SRID/STORAGE_CRS are gisgrid.constants'; no other module (migrations
    apart: they are history) spells the zone or the SRID again, nor puts 4490 in its SQL — the scripts (the
    benchmarks' tables and SQL) included."""
    found = []
    for folder in ("gisgrid", "api", "maps", "scripts"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.name == "constants.py" or "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Constant) or isinstance(node.value, bool):
                    continue
                value = node.value
                sql = isinstance(value, str) and _SQL_SRID.search(value) is not None
                if sql or (isinstance(value, str | int) and value in _REPEATED):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []
