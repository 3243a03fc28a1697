"""Alembic driven from code: the migrations ship inside the package, the URL comes from Settings."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from sqlalchemy.engine import URL

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
    cur = current(url)
    if cur is None:
        return []
    script = ScriptDirectory.from_config(alembic_config(url))
    try:
        reverted = list(script.iterate_revisions(cur, revision))
    except (CommandError, RevisionError):
        return []  # not a downgrade target: downgrade() says so
    return [r.revision for r in reverted if r.module and _DESTROYS.search(inspect.getsource(r.module.downgrade))]


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
