"""Component class catalogue (管理部件分类) and default departments, read from ``data/catalogue/``.

Files (see ``data/catalogue/README.md``):

* ``component_classes.csv`` — ``scheme,code,big_code,big_name,name,default_dept,evidence``. Two schemes:
  ``gbt47678`` (GB/T 47678.5-2026, 5-digit code = 2 big + 3 small) and ``cjt214`` (CJ/T 214 era,
  4-digit code = 2 big + 2 small).
* ``departments.csv`` — ``code,name,kind``: department codes (18 characters, the 统一社会信用代码 format).
* ``component_class_map.csv`` — ``cjt214_code,gbt47678_code,note``: one-to-one matches by name or meaning.

A city extends or overrides these with extra CSV files (``load_catalogue(..., extra=[...])``), applied in order
after the base files. Each file's kind is decided by its header (:func:`gisgrid.cityfiles.file_kind`; files of
other kinds, such as event classes or routing rules, are left to their loaders): a departments file adds/overrides
departments, or removes one with ``kind`` ``-`` (:data:`REMOVE`, as a routing row's department ``-`` removes a rule;
refused while a class or routing rule in force still names it), a class-map file adds/overrides mappings (keyed
by the CJ/T 214 code), a component-classes file's rows add classes or override the base row with the same
scheme+code (e.g. a local extension class ``gbt47678,21001,21,扩展部件,…``). All department files are read
before any classes file, so an extra class may use an extra department whatever the order of ``extra``.

Every problem is reported at once in one ``InvalidInput`` whose ``detail`` lists
``{"file", "row", "field", "value", "reason"}`` items; rows are line numbers (the header is line 1).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from gisgrid import cityfiles
from gisgrid.errors import InvalidInput, ProblemList
from gisgrid.settings import Settings, catalogue_folder
from gisgrid.texts import bilingual

SCHEMES: tuple[str, ...] = ("gbt47678", "cjt214")
#: Digits of a class code per scheme (2 big + 3 small, 2 big + 2 small).
CODE_DIGITS: dict[str, int] = {"gbt47678": 5, "cjt214": 4}
#: C confirmed, I implementation evidence, U unconfirmed (as in the standards notes); L local (a city's own).
EVIDENCE: tuple[str, ...] = ("C", "I", "U", "L")

CLASS_COLUMNS = ("scheme", "code", "big_code", "big_name", "name", "default_dept", "evidence")
DEPARTMENT_COLUMNS = ("code", "name", "kind")
#: ``score_group``: the group whose 立案数分值 table scores the department (score,department:GROUP,… rows of
#: rules/evaluation.csv); empty: the default department table.
DEPARTMENT_OPTIONAL_COLUMNS = ("score_group",)
#: What a department is (``departments.csv`` ``kind``).
DEPARTMENT_KINDS = ("government", "public_institution", "enterprise", "subdistrict")
#: ``kind`` of a city's extra departments row that removes the department with its ``code`` (an earlier file's,
#: e.g. a shipped placeholder replaced by the city's code), as a routing row's department ``-`` removes a rule.
REMOVE = "-"
MAP_COLUMNS = ("cjt214_code", "gbt47678_code", "note")

CLASSES_FILE = "component_classes.csv"
DEPARTMENTS_FILE = "departments.csv"
MAP_FILE = "component_class_map.csv"

# 统一社会信用代码 is 18 characters; a local legacy code may be shorter, so only the alphabet and maximum
# length are enforced (upper-case letters and digits).
DEPT_CODE = re.compile(r"[0-9A-Z]{1,18}")
_MAX_LISTED_PROBLEMS = 10


@dataclass(frozen=True)
class ComponentClass:
    scheme: str
    code: str
    big_code: str
    big_name: str
    name: str
    default_dept: str
    evidence: str


@dataclass
class Catalogue:
    """Classes per scheme, departments and the CJ/T 214 ↔ GB/T 47678.5 mapping."""

    by_scheme: dict[str, dict[str, ComponentClass]]
    departments: dict[str, str]
    department_kinds: dict[str, str] = field(default_factory=dict)
    department_groups: dict[str, str] = field(default_factory=dict)  # code → score_group (only those with one)
    cjt_to_gbt: dict[str, str] = field(default_factory=dict)
    sources: list[Path] = field(default_factory=list)
    #: Where each department and class in force came from (file, line; the header is line 1): the last file that
    #: gave it (``gisgrid catalogue show``, the placeholder-department warning).
    department_origins: dict[str, tuple[Path, int]] = field(default_factory=dict)
    class_origins: dict[tuple[str, str], tuple[Path, int]] = field(default_factory=dict)
    #: code → the file and line of the extra row (kind ``-``) that removed the department, in the order removed.
    department_removed_by: dict[str, tuple[Path, int]] = field(default_factory=dict)

    def classes(self, scheme: str) -> dict[str, ComponentClass]:
        """Classes of ``scheme`` keyed by code (InvalidInput for an unknown scheme)."""
        check_scheme(scheme)
        return self.by_scheme.get(scheme, {})

    def to_gbt(self, cjt_code: str) -> str | None:
        """The GB/T 47678.5 code matching a CJ/T 214 code, or None when no match is listed."""
        return self.cjt_to_gbt.get(cjt_code)

    def to_cjt(self, gbt_code: str) -> str | None:
        """The CJ/T 214 code matching a GB/T 47678.5 code, or None (the mapping is one-to-one)."""
        return self._gbt_to_cjt.get(gbt_code)

    @cached_property
    def _gbt_to_cjt(self) -> dict[str, str]:
        return {g: c for c, g in self.cjt_to_gbt.items()}


def check_scheme(scheme: str) -> str:
    if scheme not in SCHEMES:
        raise InvalidInput(
            f"unknown scheme {scheme!r}: expected one of {', '.join(SCHEMES)}", detail={"scheme": scheme}
        )
    return scheme


class CatalogueProblems(ProblemList):
    """The problems of the catalogue files (and of the event files read as they are, :mod:`gisgrid.events`), listed
    together in one refusal."""

    label = "catalogue"
    max_listed = _MAX_LISTED_PROBLEMS


def read_rows(
    path: Path, columns: Sequence[str], problems: CatalogueProblems, optional: Sequence[str] = ()
) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) pairs of a small CSV, values stripped; header is line 1. ``optional`` columns are read
    when the file has them (empty otherwise). Read as every city file is (:func:`gisgrid.cityfiles.read_csv`)."""
    table = cityfiles.read_csv(path, "catalogue file")
    missing = [c for c in columns if c not in table.header]
    if missing:
        problems.add(path, None, None, "", f"missing column(s) {', '.join(missing)}; expected {','.join(columns)}")
        return []
    rows: list[tuple[int, dict[str, str]]] = []
    for line, record in table.rows:
        values = {c: record.get(c, "") for c in (*columns, *optional)}
        if any(values.values()):
            rows.append((line, values))
    return rows


def check_duplicates(path: Path, rows: Iterable[tuple[int, tuple[str, ...], str]], problems: CatalogueProblems) -> None:
    first: dict[tuple[str, ...], int] = {}
    for line, key, field_name in rows:
        if key in first:
            problems.add(path, line, field_name, "/".join(key), f"duplicate of row {first[key]} in the same file")
        else:
            first[key] = line


def missing_department_reason(code: str, removed_by: Mapping[str, tuple[Path, int]]) -> str:
    """Why a row in force that names department ``code`` is refused: no departments file has it, or an extra row
    removed it (kind ``-``, named by file:line) while this row still sends work to it."""
    if code in removed_by:
        path, line = removed_by[code]
        return bilingual(
            f"部门 {code} 已被 {path}:{line} 删除(kind 为 -),此行仍指向它:改为接替它的部门",
            f"department {code} is removed by {path}:{line} (kind '{REMOVE}') but this row still names it: name "
            "the department that replaces it",
        )
    return "unknown department (not in any departments file)"


def _remove_department(
    path: Path,
    line: int,
    code: str,
    departments: dict[str, str],
    removed: dict[str, tuple[Path, int]],
    problems: CatalogueProblems,
    *,
    base: bool,
) -> bool:
    """Whether the row (kind ``-``) may remove ``code``: not in the base file (delete the row there), and only a
    department an earlier file gives (a typo would otherwise leave the department it meant in force)."""
    if base:
        problems.add(
            path,
            line,
            "kind",
            REMOVE,
            bilingual(
                f"kind 为 {REMOVE} 表示删除前一文件的部门,只用于城市的附加部门文件(GISGRID_CATALOGUE_EXTRA);"
                "本文件中请直接删除该行",
                f"kind '{REMOVE}' removes a department of an earlier file, so it is for a city's extra departments "
                "file (GISGRID_CATALOGUE_EXTRA); in this file delete the row",
            ),
        )
        return False
    if code not in departments:
        if code in removed:
            at = f"{removed[code][0]}:{removed[code][1]}"
            zh, en = f"它已被 {at} 删除", f"it was already removed by {at}"
        else:
            zh, en = "前面的部门文件中没有它", "no earlier departments file has it"
        problems.add(
            path,
            line,
            "code",
            code,
            bilingual(
                f"kind 为 {REMOVE} 删除部门 {code},但{zh}", f"kind '{REMOVE}' removes department {code}, but {en}"
            ),
        )
        return False
    return True


def _load_departments(
    path: Path,
    departments: dict[str, str],
    kinds: dict[str, str],
    groups: dict[str, str],
    problems: CatalogueProblems,
    origins: dict[str, tuple[Path, int]],
    removed: dict[str, tuple[Path, int]],
    *,
    base: bool,
) -> None:
    rows = read_rows(path, DEPARTMENT_COLUMNS, problems, DEPARTMENT_OPTIONAL_COLUMNS)
    check_duplicates(path, ((line, (r["code"],), "code") for line, r in rows), problems)
    for line, r in rows:
        if r["kind"] == REMOVE:
            if _remove_department(path, line, r["code"], departments, removed, problems, base=base):
                for table in (departments, kinds, groups, origins):
                    table.pop(r["code"], None)
                removed[r["code"]] = (path, line)
            continue
        if not DEPT_CODE.fullmatch(r["code"]):
            problems.add(
                path,
                line,
                "code",
                r["code"],
                "department code must be 1–18 upper-case letters or digits (统一社会信用代码 format, 18 characters)",
            )
            continue
        if not r["name"]:
            problems.add(path, line, "name", "", "department name is empty")
            continue
        if r["kind"] not in DEPARTMENT_KINDS:
            problems.add(
                path,
                line,
                "kind",
                r["kind"],
                f"kind must be one of {', '.join(DEPARTMENT_KINDS)} (or '{REMOVE}' in an extra file: removes the "
                "department)",
            )
            continue
        group = r["score_group"]
        if group and (":" in group or "," in group):
            problems.add(path, line, "score_group", group, "a score group name has no ':' or ','")
            continue
        departments[r["code"]] = r["name"]
        kinds[r["code"]] = r["kind"]
        origins[r["code"]] = (path, line)
        removed.pop(r["code"], None)  # a later file gives it again
        # A city's row replaces the department whole: no score_group there → the default table again.
        if group:
            groups[r["code"]] = group
        else:
            groups.pop(r["code"], None)


def _load_classes(
    path: Path, by_scheme: dict[str, dict[str, ComponentClass]], problems: CatalogueProblems, *, local: bool
) -> list[tuple[Path, int, ComponentClass]]:
    rows = read_rows(path, CLASS_COLUMNS, problems)
    check_duplicates(path, ((line, (r["scheme"], r["code"]), "code") for line, r in rows), problems)
    loaded: list[tuple[Path, int, ComponentClass]] = []
    for line, r in rows:
        scheme = r["scheme"]
        if scheme not in SCHEMES:
            problems.add(path, line, "scheme", scheme, f"unknown scheme; expected one of {', '.join(SCHEMES)}")
            continue
        digits = CODE_DIGITS[scheme]
        ok = True
        if not (r["code"].isascii() and r["code"].isdigit() and len(r["code"]) == digits):
            problems.add(path, line, "code", r["code"], f"a {scheme} class code is {digits} digits")
            ok = False
        elif r["big_code"] != r["code"][:2]:
            problems.add(
                path,
                line,
                "big_code",
                r["big_code"],
                f"big_code must be the first 2 digits of the code ({r['code'][:2]})",
            )
            ok = False
        for name_field in ("name", "big_name"):
            if not r[name_field]:
                problems.add(path, line, name_field, "", f"{name_field} is empty")
                ok = False
        evidence = r["evidence"] or ("L" if local else "")
        if evidence not in EVIDENCE:
            problems.add(path, line, "evidence", r["evidence"], f"evidence must be one of {', '.join(EVIDENCE)}")
            ok = False
        if ok:
            cls = ComponentClass(
                scheme, r["code"], r["big_code"], r["big_name"], r["name"], r["default_dept"], evidence
            )
            by_scheme[scheme][cls.code] = cls
            loaded.append((path, line, cls))
    return loaded


def _load_map(
    path: Path, mapping: dict[str, str], mapped_at: dict[str, tuple[Path, int]], problems: CatalogueProblems
) -> None:
    rows = read_rows(path, MAP_COLUMNS, problems)
    check_duplicates(path, ((line, (r["cjt214_code"],), "cjt214_code") for line, r in rows), problems)
    for line, r in rows:
        mapping[r["cjt214_code"]] = r["gbt47678_code"]
        mapped_at[r["cjt214_code"]] = (path, line)


def _catalogue_dir(settings_or_dir: Settings | Path | str) -> Path:
    return catalogue_folder(settings_or_dir, CLASSES_FILE)


def load_catalogue(settings_or_dir: Settings | Path | str, extra: Sequence[Path | str] = ()) -> Catalogue:
    """Read the base catalogue, then each ``extra`` CSV in order (see the module docstring)."""
    base = _catalogue_dir(settings_or_dir)
    dept_files = [base / DEPARTMENTS_FILE, *cityfiles.extra_files(extra, "departments")]
    map_files = [base / MAP_FILE, *cityfiles.extra_files(extra, "class_map")]
    local_classes = cityfiles.extra_files(extra, "component_classes")
    class_files = [(base / CLASSES_FILE, False), *((p, True) for p in local_classes)]

    problems = CatalogueProblems()
    departments: dict[str, str] = {}
    kinds: dict[str, str] = {}
    groups: dict[str, str] = {}
    dept_origins: dict[str, tuple[Path, int]] = {}
    removed: dict[str, tuple[Path, int]] = {}
    for index, path in enumerate(dept_files):
        _load_departments(path, departments, kinds, groups, problems, dept_origins, removed, base=index == 0)

    by_scheme: dict[str, dict[str, ComponentClass]] = {s: {} for s in SCHEMES}
    loaded: list[tuple[Path, int, ComponentClass]] = []
    for path, local in class_files:
        loaded += _load_classes(path, by_scheme, problems, local=local)
    # Checked after all files: only the final (possibly overriding) row of a class counts.
    class_origins: dict[tuple[str, str], tuple[Path, int]] = {}
    for path, line, cls in loaded:
        final = by_scheme[cls.scheme].get(cls.code)
        if final is cls:
            class_origins[(cls.scheme, cls.code)] = (path, line)
        if final is cls and cls.default_dept and cls.default_dept not in departments:
            problems.add(
                path, line, "default_dept", cls.default_dept, missing_department_reason(cls.default_dept, removed)
            )

    mapping: dict[str, str] = {}
    mapped_at: dict[str, tuple[Path, int]] = {}
    for path in map_files:
        _load_map(path, mapping, mapped_at, problems)
    seen_gbt: dict[str, str] = {}
    for cjt, gbt in mapping.items():
        path, line = mapped_at[cjt]
        if cjt not in by_scheme["cjt214"]:
            problems.add(path, line, "cjt214_code", cjt, "not a cjt214 class in the catalogue")
        if gbt not in by_scheme["gbt47678"]:
            problems.add(path, line, "gbt47678_code", gbt, "not a gbt47678 class in the catalogue")
        elif gbt in seen_gbt:
            # to_cjt must be unambiguous.
            problems.add(
                path, line, "gbt47678_code", gbt, f"already mapped from cjt214 {seen_gbt[gbt]}; one-to-one only"
            )
        else:
            seen_gbt[gbt] = cjt
    problems.raise_if_any()
    return Catalogue(
        by_scheme=by_scheme,
        departments=departments,
        department_kinds=kinds,
        department_groups=groups,
        cjt_to_gbt=mapping,
        sources=dept_files + [p for p, _ in class_files] + map_files,
        department_origins=dept_origins,
        class_origins=class_origins,
        department_removed_by=removed,
    )
