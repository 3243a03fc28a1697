"""Recoding a department (``gisgrid departments recode OLD NEW``): a city that replaces a placeholder code
(``9900000000000000NN``) with its real 统一社会信用代码 — or corrects a code — moves its stored records with it.

The catalogue is the source of department codes, so the order is: the city changes its departments file first
(``OLD`` out, ``NEW`` in, under the same name), then recodes the stored data. Everything that holds a department
code follows, finished records too (the code always stood for the same department):

* ``cases.department_code`` and the routing decision stored with each case (``cases.routing``: the decision's
  department, its candidates', the overridden ``original``'s, at any depth; the ``名称(代码)`` in its explanations);
* the case log (``case_transitions``): its ``department_code``, ``details.department`` / ``details.returned_by``
  (派遣, 返工, 错误派遣), and ``actor`` where a department step was recorded under the department's code (the
  history import does so when a row names no actor);
* 交办单/督办单 (``case_documents.department_code``);
* components' 主管部门/权属单位/养护单位 (``main_dept_code``, ``owner_dept_code``, ``maint_dept_code``), each with a
  ``recode`` history entry; earlier history entries keep what they recorded then;
* the ``departments`` table: ``NEW`` from the catalogue, ``OLD`` removed.

:func:`recode_json_departments` is the pure rewrite of one stored routing decision."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Connection, Engine, text

from gisgrid.catalogue import DEPT_CODE, Catalogue
from gisgrid.errors import Conflict, InvalidInput, NotFound, Reason
from gisgrid.storage import recode
from gisgrid.texts import bilingual
from gisgrid.workflow import TERMINAL_STATES

#: Keys of stored JSON whose value is a department code.
DEPARTMENT_KEYS = ("department", "returned_by")
#: Tables the recode writes, locked in this order against writes (reads go on).
_LOCKED = ("departments", "components", "component_history", "cases", "case_transitions", "case_documents")


@dataclass
class DepartmentRecodeCounts:
    cases: int = 0
    cases_finished: int = 0
    case_routing: int = 0
    case_transitions: int = 0
    case_documents: int = 0
    components: int = 0
    component_history: int = 0
    departments_removed: int = 0

    def to_text(self) -> str:
        return "\n".join(f"  {f.name}: {getattr(self, f.name)}" for f in fields(self))


@dataclass
class DepartmentRecodeResult:
    old: str
    new: str
    old_name: str | None  # as stored
    new_name: str  # as the catalogue has it
    counts: DepartmentRecodeCounts
    dry_run: bool


def recode_json_departments(value: Any, old: str, new: str) -> Any:
    """``value`` (a stored routing decision, at any depth) with the department ``old`` as ``new``: the value of
    each :data:`DEPARTMENT_KEYS` key that is ``old``, and ``名称(old)`` in an ``explanation`` (how
    ``routing.department_label`` names a department); nothing else (a dispatcher's reason is their text)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in DEPARTMENT_KEYS and item == old:
                out[key] = new
            elif key == "explanation" and isinstance(item, str):
                out[key] = item.replace(f"({old})", f"({new})")
            else:
                out[key] = recode_json_departments(item, old, new)
        return out
    if isinstance(value, list):
        return [recode_json_departments(item, old, new) for item in value]
    return value


def _uses(conn: Connection, code: str) -> int:
    """How many stored records name the department ``code``."""
    return int(
        conn.execute(
            text(
                """
                SELECT (SELECT count(*) FROM cases WHERE department_code = :c)
                     + (SELECT count(*) FROM case_transitions WHERE department_code = :c)
                     + (SELECT count(*) FROM case_documents WHERE department_code = :c)
                     + (SELECT count(*) FROM components
                        WHERE :c IN (main_dept_code, owner_dept_code, maint_dept_code))
                """
            ),
            {"c": code},
        ).scalar_one()
    )


def _check(catalogue: Catalogue, old: str, new: str) -> None:
    if not DEPT_CODE.fullmatch(new):
        raise InvalidInput(
            f"new code {new!r} is not a department code: 1–18 upper-case letters or digits (统一社会信用代码: 18)",
            reason=Reason.CODE_MALFORMED,
        )
    if new == old:
        raise InvalidInput(f"the new code is the old one ({old}): nothing to recode", reason=Reason.CODE_EXISTS)
    if new not in catalogue.departments:
        raise InvalidInput(
            f"new code {new} is not in the departments catalogue: put it in the city's departments file first "
            "(in place of the old code, same name), then recode the stored records",
            reason=Reason.UNKNOWN_DEPARTMENT,
        )
    if old in catalogue.departments:
        name = catalogue.departments[old]
        raise InvalidInput(
            bilingual(
                f"旧代码 {old}({name})仍在部门名录中:请先在名录中以 {new} 取代它(附加部门文件中加一行 "
                f"{old},{name},- 即删除它),使新案件不再派往它,再改写已存记录",
                f"old code {old} ({name}) is still in the departments catalogue: replace it there by {new} first "
                f"(in an extra departments file, a row {old},{name},- removes it), so that nothing new is routed to "
                "it, then recode the stored records",
            ),
            reason=Reason.DEPARTMENT_STILL_LISTED,
        )


def recode_department(
    engine: Engine, catalogue: Catalogue, old: str, new: str, *, dry_run: bool = False, actor: str = "gisgrid"
) -> DepartmentRecodeResult:
    """Replace the department code ``old`` by ``new`` everywhere it is stored (see the module docstring), in one
    transaction; ``dry_run`` does it and rolls back, so its counts are the real ones. Refused, nothing written:
    ``new`` malformed (code_malformed) or ``old`` itself (code_exists), ``new`` not in the loaded catalogue
    (unknown_department), ``old`` still in it (department_still_listed), ``old`` neither in the departments table
    nor on any record (department_not_found), ``new`` already on a stored record (code_exists: a recode does not
    merge two departments); a table held by another transaction beyond ``RECODE_LOCK_WAIT_S`` (department_busy)."""
    _check(catalogue, old, new)
    from gisgrid.components_store import sync_departments

    p = {"old": old, "new": new}

    def busy() -> Conflict:
        return Conflict(
            f"a table the recode needs (cases, their log, components, departments) was held by another "
            f"transaction (an action, an import?) for more than {recode.RECODE_LOCK_WAIT_S} s, or the two waited "
            "for each other; run the recode again when it has finished",
            reason=Reason.DEPARTMENT_BUSY,
        )

    with recode.recode_transaction(engine, dry_run=dry_run, busy=busy) as conn:
        if not dry_run:
            # No case action, report, import or sync may write a code while the records move (reads go on).
            conn.execute(text(f"LOCK TABLE {', '.join(_LOCKED)} IN EXCLUSIVE MODE"))
        old_name = conn.execute(text("SELECT name FROM departments WHERE code = :old"), p).scalar()
        if old_name is None and not _uses(conn, old):
            raise NotFound(
                f"no department {old} is stored: neither in the departments table nor on any case or component",
                reason=Reason.DEPARTMENT_NOT_FOUND,
            )
        used = _uses(conn, new)
        if used:
            raise Conflict(
                f"new code {new} is already on {used} stored record(s) (cases, their log and orders, "
                "components): a recode cannot merge two departments",
                reason=Reason.CODE_EXISTS,
            )
        sync_departments(conn, catalogue)  # NEW is the FK target of what moves to it
        counts = _rewrite(conn, p, actor)
    return DepartmentRecodeResult(old, new, old_name, catalogue.departments[new], counts, dry_run)


def _rewrite(conn: Connection, p: dict[str, str], actor: str) -> DepartmentRecodeCounts:
    counts = DepartmentRecodeCounts()
    finished = conn.execute(
        text("UPDATE cases SET department_code = :new WHERE department_code = :old RETURNING state = ANY(:finished)"),
        p | {"finished": sorted(TERMINAL_STATES)},
    ).scalars()
    flags = list(finished)
    counts.cases, counts.cases_finished = len(flags), sum(flags)

    # A code is [0-9A-Z]: the LIKE needs no escaping; the decision is rewritten where it names the code.
    rows = conn.execute(text("SELECT id, routing FROM cases WHERE routing::text LIKE '%' || :old || '%'"), p).all()
    changed = []
    for case_id, routing in rows:
        rewritten = recode_json_departments(routing, p["old"], p["new"])
        if rewritten != routing:
            changed.append({"id": case_id, "r": rewritten})
    if changed:
        conn.execute(
            text("UPDATE cases SET routing = CAST(:r AS jsonb) WHERE id = :id"),
            [{"id": c["id"], "r": json.dumps(c["r"], ensure_ascii=False)} for c in changed],
        )
    counts.case_routing = len(changed)

    keys = " || ".join(
        f"CASE WHEN details->>'{k}' = :old THEN jsonb_build_object('{k}', CAST(:new AS text)) ELSE '{{}}'::jsonb END"
        for k in DEPARTMENT_KEYS
    )
    counts.case_transitions = conn.execute(
        text(
            f"""
            UPDATE case_transitions
            SET department_code = CASE WHEN department_code = :old THEN :new ELSE department_code END,
                details = details || {keys},
                actor = CASE WHEN role = 'department' AND actor = :old THEN :new ELSE actor END
            WHERE department_code = :old OR (role = 'department' AND actor = :old)
               OR {" OR ".join(f"details->>'{k}' = :old" for k in DEPARTMENT_KEYS)}
            """
        ),
        p,
    ).rowcount
    counts.case_documents = conn.execute(
        text("UPDATE case_documents SET department_code = :new WHERE department_code = :old"), p
    ).rowcount

    columns = ("main_dept_code", "owner_dept_code", "maint_dept_code")
    counts.components = counts.component_history = recode.recode_components(
        conn,
        {c: f"CASE WHEN o.{c} = :old THEN :new ELSE o.{c} END" for c in columns},
        f":old IN ({', '.join(f'o.{c}' for c in columns)})",
        p,
        actor=actor,
        source=f"departments recode {p['old']} {p['new']}",
    )
    counts.departments_removed = conn.execute(text("DELETE FROM departments WHERE code = :old"), p).rowcount
    return counts
