"""Alembic driven from code: the migrations ship inside the package, the URL comes from Settings."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from sqlalchemy import Connection, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from gisgrid.errors import ConfigError
from gisgrid.storage.database import make_engine

#: What a downgrade function does that loses stored data (tables, columns, the case-number sequences).
_DESTROYS = re.compile(r"drop_(table|column)\(|DROP (TABLE|SEQUENCE)")

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: URL | str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["url"] = url
    return cfg


def upgrade(url: URL | str, revision: str = "head") -> None:
    try:
        command.upgrade(alembic_config(url), revision)
    except (CommandError, RevisionError) as exc:  # an unknown revision, or one below the current
        raise ConfigError(f"cannot upgrade to {revision!r}: {exc}") from None


def downgrade(url: URL | str, revision: str) -> None:
    try:
        command.downgrade(alembic_config(url), revision)
    except (CommandError, RevisionError) as exc:  # an unknown revision (RevisionError), or one above the current
        raise ConfigError(f"cannot downgrade to {revision!r}: {exc}") from None


def destructive_steps(url: URL | str, revision: str) -> list[str]:
    """The revisions a downgrade to ``revision`` reverts whose downgrade drops tables, columns or sequences: their
    data is gone afterwards (upgrading again makes them empty). Empty when nothing is lost or nothing reverted."""
    return [r.revision for r in _reverted(url, revision) if _DESTROYS.search(_downgrade_source(r))]


def _reverted(url: URL | str, revision: str) -> list[Script]:
    """The revisions a downgrade to ``revision`` reverts, newest first; none when nothing is applied or
    ``revision`` is not a downgrade target (downgrade() says so)."""
    cur = current(url)
    if cur is None:
        return []
    script = ScriptDirectory.from_config(alembic_config(url))
    try:
        return list(script.iterate_revisions(cur, revision))
    except (CommandError, RevisionError):
        return []


def _downgrade_source(revision: Script) -> str:
    return inspect.getsource(revision.module.downgrade) if revision.module else ""


_DROP_COLUMN = re.compile(r"""drop_column\(\s*["'](\w+)["']\s*,\s*["'](\w+)["']""")
_DROP_TABLE = re.compile(r"""drop_table\(\s*["'](\w+)["']""")


def downgrade_losses(url: URL | str, revision: str) -> list[str]:
    """What a downgrade to ``revision`` loses, one line per reverted revision that drops data, newest first:
    the non-null values of each column it drops and the rows of each table (``case_photos.transition_id: 5
    values``); what its downgrade drops under names it computes is said, not counted."""
    reverted = _reverted(url, revision)
    if not reverted:
        return []
    lines: list[str] = []
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            for r in reverted:
                source = _downgrade_source(r)
                destroys = len(_DESTROYS.findall(source))
                if not destroys:
                    continue
                columns = _DROP_COLUMN.findall(source)
                tables = _DROP_TABLE.findall(source)
                counted = [(f"{t}.{c}", _count(conn, t, c), "values") for t, c in columns]
                counted += [(t, _count(conn, t), "rows") for t in tables]
                parts = [f"{name}: {n:,} {unit}" for name, n, unit in counted if n is not None]
                # names the downgrade computes, or a table a later migration's downgrade makes again (case_numbers)
                if destroys > len(parts):
                    parts.append(f"{'and more ' if parts else ''}tables, columns or sequences (not counted)")
                lines.append(f"reverting {r.revision} drops {', '.join(parts)}")
    finally:
        engine.dispose()
    return lines


def _count(conn: Connection, table: str, column: str | None = None) -> int | None:
    """Non-null values of ``table.column``, or rows of ``table`` (names from the migrations' own source); None
    when there is no such table or column now."""
    sql = f'SELECT count(*) FROM "{table}"' + (f' WHERE "{column}" IS NOT NULL' if column else "")
    try:
        with conn.begin_nested():
            return int(conn.execute(text(sql)).scalar_one())
    except DBAPIError:
        return None


def other_sessions(url: URL | str) -> int:
    """Sessions of clients other than this one connected to the database (a running ``gisgrid serve``, psql)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            sql = (
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            )
            return int(conn.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


def head() -> str:
    script = ScriptDirectory.from_config(alembic_config("postgresql://unused/unused"))
    return str(script.get_current_head())


def current(url: URL | str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
