"""Alembic driven from code: the migrations ship inside the package, the URL comes from Settings."""

from __future__ import annotations

import functools
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

from gisgrid.errors import ConfigError, DatabaseError
from gisgrid.storage.database import make_engine

#: What a downgrade function does that loses stored data (tables, columns, the case-number sequences).
_DESTROYS = re.compile(r"drop_(table|column)\(|DROP (TABLE|SEQUENCE)")

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


#: How long a migration's statement waits for a table lock (a long read or an open transaction of a running
#: server holding the table) before ``db up`` gives up saying so: a DDL statement queued behind it would otherwise
#: block every later request on that table, and ``db up`` would wait for ever without a word.
DEFAULT_LOCK_TIMEOUT_S = 10.0

#: ``SQLSTATE`` of a lock wait cut by ``lock_timeout`` (lock_not_available).
_LOCK_NOT_AVAILABLE = "55P03"


def alembic_config(url: URL | str, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["url"] = url
    cfg.attributes["lock_timeout_ms"] = round(lock_timeout_s * 1000)
    return cfg


def upgrade(url: URL | str, revision: str = "head", *, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> None:
    """Apply migrations up to ``revision``. A database whose revision this code does not know (migrated by a newer
    gisgrid) is refused in words (:func:`schema_ahead_error`), not alembic's "Can't locate revision"; a table lock
    waited for past ``lock_timeout_s`` stops it naming the wait (the migrations before that one stay applied)."""
    cur = current(url)
    if cur is not None and not is_known(cur):
        raise schema_ahead_error(cur)
    try:
        command.upgrade(alembic_config(url, lock_timeout_s), revision)
    except (CommandError, RevisionError) as exc:  # an unknown revision, or one below the current
        raise ConfigError(f"cannot upgrade to {revision!r}: {exc}") from None
    except DBAPIError as exc:
        if getattr(exc.orig, "pgcode", None) != _LOCK_NOT_AVAILABLE:
            raise
        raise lock_wait_error(url, lock_timeout_s) from None


def downgrade(url: URL | str, revision: str, *, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> None:
    cur = current(url)
    if cur is not None and not is_known(cur):
        raise schema_ahead_error(cur)
    try:
        command.downgrade(alembic_config(url, lock_timeout_s), revision)
    except (CommandError, RevisionError) as exc:  # an unknown revision (RevisionError), or one above the current
        raise ConfigError(f"cannot downgrade to {revision!r}: {exc}") from None
    except DBAPIError as exc:
        if getattr(exc.orig, "pgcode", None) != _LOCK_NOT_AVAILABLE:
            raise
        raise lock_wait_error(url, lock_timeout_s) from None


def lock_wait_error(url: URL | str, lock_timeout_s: float) -> DatabaseError:
    """A migration cut by its ``lock_timeout``: which revision the database is at now (the migrations before the
    one that waited stay applied: one transaction each) and what to do."""
    at = current(url) or "base"
    return DatabaseError(
        f"迁移等待表锁超过 {lock_timeout_s:g} 秒,已停止(当前版本 {at})/ migration stopped: it waited more than "
        f"{lock_timeout_s:g} s for a table lock held by another session (a long query or an open transaction, "
        f"e.g. of a running gisgrid serve); the database is at revision {at}, the waiting migration was rolled "
        "back. Run it again when the database is quieter, stop the service first, or raise "
        "GISGRID_MIGRATION_LOCK_TIMEOUT_S"
    )


def is_known(revision: str) -> bool:
    """Whether this code's migrations include ``revision`` (a database migrated by a newer gisgrid has one they
    do not)."""
    try:
        return _script().get_revision(revision) is not None
    except (CommandError, RevisionError):
        return False


@functools.cache
def _script() -> ScriptDirectory:
    """The migrations as shipped, read once a process: /health asks for the head and whether a revision is known
    on every call, and the files do not change under a running process."""
    return ScriptDirectory.from_config(alembic_config("postgresql://unused/unused"))


def schema_ahead_error(current_revision: str) -> DatabaseError:
    """The database was migrated by a newer gisgrid than this code (a rollback of the code, a host not yet
    upgraded): nothing this code can migrate. Reason code ``schema_ahead`` (as /health's status)."""
    return DatabaseError(
        f"数据库结构比本程序新(版本 {current_revision},本程序只认识到 {head()}):请安装生成该结构的 gisgrid 版本,"
        f"或恢复升级前的备份 / the database schema is newer than this code (revision {current_revision}, this "
        f"gisgrid knows up to {head()}) [schema_ahead]: install the gisgrid version that migrated it, or restore "
        "the backup taken before that upgrade"
    )


def schema_behind_error(current_revision: str | None) -> DatabaseError:
    """The database's schema is older than this code and the command does not migrate (only ``db up``,
    ``db upgrade``, ``serve`` and ``demo load`` do): the upgrade procedure is backup first."""
    at = current_revision or "none"
    return DatabaseError(
        f"数据库结构落后(版本 {at},本程序需要 {head()}):请先备份,再运行 gisgrid db up / the database schema is "
        f"behind (revision {at}, this code needs {head()}) [schema_behind]: run gisgrid db up after a backup "
        "(docs/operations.md, Upgrades)"
    )


def schema_state(revision: str | None) -> str:
    """``current`` (at this code's head), ``behind`` (older, or never migrated) or ``ahead`` (a revision this
    code does not know: migrated by a newer gisgrid)."""
    if revision == head():
        return "current"
    if revision is not None and not is_known(revision):
        return "ahead"
    return "behind"


def check_schema(conn: Connection) -> None:
    """Refuse a schema this code cannot use as it is: behind (:func:`schema_behind_error`) or ahead
    (:func:`schema_ahead_error`). For every command that does not migrate."""
    revision = MigrationContext.configure(conn).get_current_revision()
    state = schema_state(revision)
    if state == "ahead":
        raise schema_ahead_error(str(revision))
    if state == "behind":
        raise schema_behind_error(revision)


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
    return str(_script().get_current_head())


def current(url: URL | str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
