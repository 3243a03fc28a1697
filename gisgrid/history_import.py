"""Reading a city's past case record (历史案件导入): one CSV row per transition, checked row by row and case by case.

No database access here: :func:`read_history_csv` reads the file, :func:`parse_history` checks it against the
catalogues and the workflow state machine (:mod:`gisgrid.workflow`) and returns the accepted cases and their
transitions, shaped like the tables ``cases`` and ``case_transitions`` (as :func:`gisgrid.history.write_history`
takes them), plus the refusals (row, case_no, field, value, reason). The database side (locating the cases in the
unit grids, case numbers already stored, the write) is :func:`gisgrid.history.import_history`.

The format is documented in ``docs/history-import.md``. In short: rows of one case share ``case_no`` and come in
the order the transitions happened (other cases' rows may come in between); ``state`` is the case's state AFTER
the row's transition; the first row of a case is its report (state ``reported``). Case-level fields (scheme,
class_code, lon, lat, datum, source, disposal_type) may be given on every row (then they must agree) or only once.

Never half a case: when any row of a case is refused, every row of it is refused (the others with
"整案拒收:第 N 行 … / case refused: row N …"), and the case is not imported.

Every refusal reason is zh-CN first, then " / " and the English (:func:`gisgrid.texts.bilingual`): the file's users
read Chinese; the English stays for the meaning to be stable (and for who does not).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gisgrid import geodesy, workflow
from gisgrid.cases import CASE_NO_MAX, SOURCES, TEXT_LIMITS, event_class
from gisgrid.catalogue import SCHEMES
from gisgrid.cityfiles import RowRefusals, coordinate_text, find_field, read_table_csv
from gisgrid.components import BAD_TEXT, read_excel_table
from gisgrid.constants import LOCAL_TZ
from gisgrid.errors import InvalidInput, Reason
from gisgrid.evaluation import NODES
from gisgrid.events import DISPOSAL_NODE
from gisgrid.node_clock import extension_terms, replay_node_clock
from gisgrid.spreadsheet import excel_kind
from gisgrid.texts import bad_text_reason_bilingual, bilingual

DEFAULT_SCHEME = "gbt47678"
DEFAULT_DATUM = "wgs84"
MIN_YEAR, MAX_YEAR = 1990, 2200  # earlier/later years are placeholders (0001-01-01, 9999-12-31), not records

#: Canonical column → accepted header names (matched case-insensitively, surrounding spaces ignored).
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "case_no": ("case_no", "case_number", "case", "案件编号", "案件号"),
    "scheme": ("scheme", "编码标准"),
    "class_code": ("class_code", "class", "event_class", "类别代码", "事件类别", "案件类别"),
    "lon": ("lon", "lng", "longitude", "经度"),
    "lat": ("lat", "latitude", "纬度"),
    "datum": ("datum", "坐标系"),
    "source": ("source", "案件来源", "来源"),
    "state": ("state", "status", "状态", "案件状态"),
    "action": ("action", "动作", "操作"),
    "role": ("role", "actor_role", "角色", "岗位"),
    "actor": ("actor", "操作人", "处理人"),
    "department_code": ("department_code", "department", "dept_code", "部门代码", "处置部门"),
    "at": ("at", "timestamp", "time", "时间", "操作时间"),
    "note": ("note", "reason", "备注", "说明"),
    "disposal_type": ("disposal_type", "处置类型"),
    "new_due_at": ("new_due_at", "新处置时限"),
    "external_ref": ("external_ref", "external_id", "来源单号", "工单号", "外部编号"),
}
REQUIRED_COLUMNS: tuple[str, ...] = ("case_no", "class_code", "lon", "lat", "source", "state", "at")
#: Fields that belong to the case, not to one transition: given once or repeated identically.
CASE_FIELDS: tuple[str, ...] = (
    "scheme", "class_code", "lon", "lat", "datum", "source", "disposal_type", "external_ref",
)  # fmt: skip
ERROR_COLUMNS: tuple[str, ...] = ("row", "case_no", "field", "value", "reason")
#: Columns kept as the file gives them, checked as free text (:data:`gisgrid.components.BAD_TEXT`).
FREE_TEXT_COLUMNS: tuple[str, ...] = ("case_no", "actor", "note", "external_ref")

#: 缓办 is the workflow state ``suspended`` with details kind = deferred (see gisgrid.evaluation).
DEFERRED_LABEL = "缓办"
#: Stands in for a reason/result the history does not record (the workflow asks for one; it is not stored).
_NOT_RECORDED = "(未记录)"

_STATE_NAMES: dict[str, str] = {**{s: s for s in workflow.STATES}, **{v: k for k, v in workflow.STATES.items()}}
_STATE_NAMES[DEFERRED_LABEL] = "suspended"
_ACTION_NAMES: dict[str, str] = {
    **{a: a for a in workflow.ACTIONS},
    **{v: k for k, v in workflow.ACTIONS.items()},
    "report": "report",
    "上报": "report",
    **{a: a for a in workflow.LOG_ACTIONS if a != "report"},
    **{v: k for k, v in workflow.LOG_ACTIONS.items() if k != "report"},
}
_ROLE_NAMES: dict[str, str] = {**{r: r for r in workflow.ROLES}, **{v: k for k, v in workflow.ROLES.items()}}
_SOURCE_NAMES: dict[str, str] = {**{s: s for s in SOURCES}, **{v: k for k, v in SOURCES.items()}}
_DATE_ONLY = re.compile(r"[0-9]{8}|[0-9]{4}([-/])[0-9]{1,2}\1[0-9]{1,2}")
#: A time as Excel on Chinese Windows writes it (``2025/9/2 9:00``, ``2025/9/2 9:00:00``), and ``2025-9-2 9:00``:
#: month, day and hour without their leading zeros, which ISO 8601 needs (review50 F8). Local time, as an ISO time
#: without an offset.
_EXCEL_TIME = re.compile(r"([0-9]{4})([-/])([0-9]{1,2})\2([0-9]{1,2})[ T]([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?")

Progress = Callable[[str, int, int], None]


def _no_progress(_stage: str, _done: int, _total: int) -> None:
    return None


# --------------------------------------------------------------------------------------- reading


def read_history_csv(path: Path | str) -> tuple[pd.DataFrame, list[str]]:
    """The file (a CSV, or the first sheet of an .xlsx) as text columns named canonically (missing optional
    columns are ""), with ``_row`` (the CSV line or sheet row, header = 1). Returns the frame and notes (GBK
    fallback, ignored columns). A file that cannot be read or lacks a required column raises InvalidInput
    (nothing can be imported from it)."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"{path}: file not found", detail={"path": str(path)})
    # An .xlsx sheet is read as the CSV of it would be (same columns, same checks; _row = the sheet row).
    table, notes = read_excel_table(path) if excel_kind(path) else read_table_csv(path)
    columns = [c for c in table.columns if c != "_row"]
    taken: set[str] = set()
    mapping: dict[str, str] = {}
    for canonical, aliases in COLUMN_ALIASES.items():
        found = find_field(path, columns, canonical, aliases, taken)
        if found is not None:
            mapping[canonical] = found
            taken.add(found)
    missing = [c for c in REQUIRED_COLUMNS if c not in mapping]
    if missing:
        raise InvalidInput(
            f"{path.name}: missing column(s) {', '.join(missing)}; columns are {', '.join(columns) or '(none)'} "
            "(see docs/history-import.md)",
            detail={"missing": missing, "columns": columns},
        )
    ignored = [c for c in columns if c not in taken]
    if ignored:
        notes.append(f"ignored column(s): {', '.join(ignored)}")
    out = pd.DataFrame({"_row": table["_row"].to_numpy(dtype=np.int64)})
    for canonical in COLUMN_ALIASES:
        src = mapping.get(canonical)
        values = table[src].to_numpy(dtype=object) if src else np.full(len(table), "", dtype=object)
        out[canonical] = pd.Series(values, dtype=object).fillna("").astype(str).str.strip().to_numpy(dtype=object)
    if out.empty:
        raise InvalidInput(f"{path.name}: no data rows", detail={"path": str(path)})
    return out, notes


# --------------------------------------------------------------------------------------- result


@dataclass
class ParsedHistory:
    """Accepted cases and transitions (local ids 1…n) and the refusals; ``case_rows`` lists each case's rows."""

    cases: pd.DataFrame
    transitions: pd.DataFrame
    errors: pd.DataFrame
    rows: int
    case_count: int  # distinct case numbers read
    case_rows: dict[str, list[int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def refused_rows(self) -> int:
        return int(self.errors["row"].nunique()) if len(self.errors) else 0

    @property
    def refused_cases(self) -> int:
        return int(self.errors.loc[self.errors["case_no"] != "", "case_no"].nunique()) + int(
            self.errors.loc[self.errors["case_no"] == "", "row"].nunique()
        )

    def refuse(self, refusals: dict[str, tuple[int, str, str, str]]) -> ParsedHistory:
        """Refuse whole accepted cases: ``case_no`` → (row, field, value, reason). Returns a new result."""
        refusals = {k: v for k, v in refusals.items() if k in set(self.cases["case_no"])}
        if not refusals:
            return self
        frames = [self.errors]
        for case_no, (row, fld, value, reason) in refusals.items():
            frames.append(_case_refusal(case_no, self.case_rows[case_no], row, fld, value, reason))
        keep = ~self.cases["case_no"].isin(list(refusals)).to_numpy()
        cases = self.cases[keep].reset_index(drop=True)
        new_id = dict(zip(cases["id"], range(1, len(cases) + 1), strict=True))
        t = self.transitions[self.transitions["case_id"].isin(list(new_id))].copy()
        t["case_id"] = t["case_id"].map(new_id).astype(np.int64)
        cases["id"] = np.arange(1, len(cases) + 1, dtype=np.int64)
        return ParsedHistory(
            cases=cases,
            transitions=t.reset_index(drop=True),
            errors=_sorted_errors(pd.concat(frames, ignore_index=True)),
            rows=self.rows,
            case_count=self.case_count,
            case_rows=self.case_rows,
            notes=self.notes,
        )


def _empty_errors() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=np.int64 if c == "row" else object) for c in ERROR_COLUMNS})


def _sorted_errors(errors: pd.DataFrame) -> pd.DataFrame:
    if errors.empty:
        return _empty_errors()
    out = errors.sort_values("row", kind="stable").reset_index(drop=True)
    out["row"] = out["row"].astype(np.int64)
    for c in ERROR_COLUMNS[1:]:
        out[c] = out[c].astype(object).where(out[c].notna(), "").astype(str)
    return out[list(ERROR_COLUMNS)]


def _case_refused(row: int, fld: str, reason: str) -> str:
    """What the other rows of a case refused at ``row`` say: the row's own (bilingual) reason inside each language's
    sentence ("整案拒收:第 N 行,字段 F:… / case refused: row N, F: …")."""
    zh, sep, en = reason.partition(" / ")  # no zh text of this module holds " / "
    if not sep:
        zh = en = reason
    return bilingual(f"整案拒收:第 {row} 行,字段 {fld}:{zh}", f"case refused: row {row}, {fld}: {en}")


def _case_refusal(case_no: str, rows: list[int], row: int, fld: str, value: str, reason: str) -> pd.DataFrame:
    """The refusal of ``row`` and, for every other row of the case, "整案拒收:第 N 行 … / case refused: row N …"."""
    others = [r for r in rows if r != row]
    told = _case_refused(row, fld, reason)
    return pd.DataFrame(
        {
            "row": [row, *others],
            "case_no": case_no,
            "field": [fld, *([""] * len(others))],
            "value": [value, *([""] * len(others))],
            "reason": [reason, *([told] * len(others))],
        }
    )


# --------------------------------------------------------------------------------------- row checks


def _parse_instant(text: str) -> dt.datetime | str:
    """An ISO 8601 time, else one as Excel on Chinese Windows writes it (:data:`_EXCEL_TIME`); else why not."""
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        pass
    excel = _EXCEL_TIME.fullmatch(text)
    if excel is None:
        return bilingual(
            "不是可识别的时间戳:请用 ISO 8601(如 2025-09-01T09:30:00 或 2025-09-01T09:30:00+08:00)或 Excel 的 "
            "2025/9/1 9:30",
            "not a timestamp: use ISO 8601 (e.g. 2025-09-01T09:30:00 or 2025-09-01T09:30:00+08:00) or Excel's "
            "2025/9/1 9:30",
        )
    year, _, month, day, hour, minute, second = excel.groups()
    try:
        return dt.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0))
    except ValueError:
        return bilingual("时间不存在(没有这一天或这一时刻)", "no such time (no such day or time of day)")


def _parse_instants(text: np.ndarray, now: dt.datetime) -> tuple[np.ndarray, np.ndarray]:
    """(tz-aware Timestamps or None, reason or "") per value; each distinct text is parsed once."""
    codes, uniques = pd.factorize(pd.Series(text, dtype=object))
    values = np.full(len(uniques), None, dtype=object)
    reasons = np.full(len(uniques), "", dtype=object)
    for i, u in enumerate(uniques):
        u = str(u)
        if u == "":
            reasons[i] = bilingual("缺少时间戳", "missing timestamp")
            continue
        if _DATE_ONLY.fullmatch(u):
            reasons[i] = bilingual(
                "只有日期,没有时刻:请同时填写时刻(如 2025-09-01T09:30:00)",
                "a date without a time of day: give the time too (e.g. 2025-09-01T09:30:00)",
            )
            continue
        parsed = _parse_instant(u)
        if isinstance(parsed, str):
            reasons[i] = parsed
            continue
        if not MIN_YEAR <= parsed.year <= MAX_YEAR:
            reasons[i] = bilingual(
                f"年份 {parsed.year} 不可能出现在案件记录中(是占位值?)",
                f"year {parsed.year} is not plausible in a case record (a placeholder?)",
            )
            continue
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=LOCAL_TZ)  # naive = local time (Asia/Shanghai)
        if parsed > now:
            shown = now.isoformat(timespec="seconds")
            reasons[i] = bilingual(
                f"时间在未来(晚于 {shown}):历史记录只能是过去的时间",
                f"in the future (after {shown}): a history is past",
            )
            continue
        values[i] = parsed
    ok = np.flatnonzero(reasons == "")
    if len(ok):  # one vectorised conversion (mixed offsets → UTC → local), not one Timestamp per value
        local = pd.to_datetime(list(values[ok]), utc=True).tz_convert(LOCAL_TZ)
        values[ok] = local.astype(object).to_numpy()
    return values[codes], reasons[codes]


def _case_first(key: pd.Series, values: np.ndarray) -> np.ndarray:
    """Per row: the case's first non-blank value (NaN when the case has none or the row has no case)."""
    s = pd.Series(values, dtype=object).where(pd.Series(values, dtype=object) != "")
    return s.groupby(key.to_numpy(), dropna=True).transform("first").reindex(s.index).to_numpy(dtype=object)


def parse_history(  # noqa: C901, PLR0915
    raw: pd.DataFrame,
    services: Any,
    *,
    now: dt.datetime | None = None,
    coverage_bbox: tuple[float, float, float, float] | None = None,
    progress: Progress = _no_progress,
) -> ParsedHistory:
    """Check every row (see the module docstring and docs/history-import.md) and rebuild each case through the
    workflow state machine. ``services``: a :class:`gisgrid.cases.CaseServices` (event catalogue, departments).
    ``coverage_bbox`` (storage lon/lat) lets swapped lon/lat be named as such. Locations are converted to storage
    lon/lat but not located in the unit grids (that needs the database)."""
    now = (now or dt.datetime.now(tz=LOCAL_TZ)).astimezone(LOCAL_TZ)
    f = raw.reset_index(drop=True)
    n = len(f)
    rows = f["_row"].to_numpy(dtype=np.int64)
    errors = RowRefusals(rows)
    col = {c: f[c].to_numpy(dtype=object) for c in COLUMN_ALIASES}

    # --- case number
    case_no = col["case_no"]
    errors.add(case_no == "", "case_no", "", bilingual("缺少案件编号", "missing case number"))
    too_long = np.array([len(v) > CASE_NO_MAX for v in case_no], dtype=bool)
    errors.add(
        too_long,
        "case_no",
        case_no,
        bilingual(f"案件编号超过 {CASE_NO_MAX} 个字符", f"case number longer than {CASE_NO_MAX} characters"),
    )
    key = pd.Series(np.where((case_no == "") | too_long, None, case_no), dtype=object)

    # --- case-level fields: the case's first non-blank value; later rows blank or equal. Sources and datums are
    # compared by what they mean (12345热线 = hotline, WGS84 = wgs84).
    src = np.array([_SOURCE_NAMES.get(v, "") for v in col["source"]], dtype=object)
    norm = dict(col)
    norm["source"] = np.where(src != "", src, col["source"]).astype(object)
    norm["datum"] = np.array([v.lower() for v in col["datum"]], dtype=object)
    case_val = {c: _case_first(key, norm[c]) for c in CASE_FIELDS}
    scheme = np.where(pd.isna(case_val["scheme"]), DEFAULT_SCHEME, case_val["scheme"]).astype(object)
    errors.add(
        (col["scheme"] != "") & ~np.isin(col["scheme"], SCHEMES),
        "scheme",
        col["scheme"],
        bilingual(f"编码标准不存在:请用 {' 或 '.join(SCHEMES)}", f"unknown scheme: use {' or '.join(SCHEMES)}"),
    )
    scheme_ok = np.isin(scheme, SCHEMES)

    cls = col["class_code"]
    classes = {s: services.events.classes(s) for s in SCHEMES}
    known_class = np.array(
        [ok and c in classes[s] for c, s, ok in zip(cls, scheme, scheme_ok, strict=True)], dtype=bool
    )
    errors.add(
        (cls != "") & scheme_ok & ~known_class,
        "class_code",
        cls,
        lambda idx: [
            bilingual(f"事件类别在 {scheme[i]} 编码标准中不存在", f"unknown event class for scheme {scheme[i]}")
            for i in idx
        ],
    )

    sources = ", ".join(SOURCES)
    errors.add(
        (col["source"] != "") & (src == ""),
        "source",
        col["source"],
        bilingual(f"案件来源不存在:请用 {sources}", f"unknown source: use {sources}"),
    )
    errors.add(
        (col["datum"] != "") & ~np.isin(norm["datum"], geodesy.DATUMS),
        "datum",
        col["datum"],
        bilingual(f"坐标系不存在:请用 {', '.join(geodesy.DATUMS)}", f"unknown datum: use {', '.join(geodesy.DATUMS)}"),
    )

    lon = pd.to_numeric(pd.Series(col["lon"], dtype=object), errors="coerce").to_numpy(dtype=float)
    lat = pd.to_numeric(pd.Series(col["lat"], dtype=object), errors="coerce").to_numpy(dtype=float)
    for name, text, values, label, zh in (
        ("lon", col["lon"], lon, "longitude", "经度"),
        ("lat", col["lat"], lat, "latitude", "纬度"),
    ):
        unparseable = bilingual(f"{zh}无法解析(不是数字)", f"unparseable {label} (not a number)")
        errors.add((text != "") & ~np.isfinite(values), name, text, unparseable)
    lon_given, lat_given = col["lon"] != "", col["lat"] != ""
    errors.add(
        lon_given != lat_given, "coordinates", _coords(col), bilingual("经度和纬度须同时填写", "give both lon and lat")
    )
    pair = lon_given & lat_given & np.isfinite(lon) & np.isfinite(lat)
    with np.errstate(invalid="ignore"):
        zero = pair & (lon == 0) & (lat == 0)
        swapped = np.zeros(n, dtype=bool)
        if coverage_bbox is not None:
            x0, y0, x1, y1 = coverage_bbox
            inside = (lon >= x0) & (lon <= x1) & (lat >= y0) & (lat <= y1)
            swapped = pair & ~zero & ~inside & (lat >= x0) & (lat <= x1) & (lon >= y0) & (lon <= y1)
        else:
            swapped = pair & (np.abs(lat) > 90) & (np.abs(lon) <= 90)
        out_of_range = pair & ~zero & ~swapped & ((np.abs(lon) > 180) | (np.abs(lat) > 90))
    zero_words = bilingual("坐标为 (0, 0):是占位值,不是位置", "coordinates are (0, 0): a placeholder, not a location")
    errors.add(zero, "coordinates", _coords(col), zero_words)
    errors.add(swapped, "coordinates", _coords(col), bilingual("经纬度疑似颠倒", "longitude and latitude look swapped"))
    errors.add(
        out_of_range,
        "coordinates",
        _coords(col),
        bilingual("不是经纬度(|经度| ≤ 180,|纬度| ≤ 90)", "not lon/lat degrees (|lon| ≤ 180, |lat| ≤ 90)"),
    )

    # Conflicts between rows of one case (only between values that are themselves fine).
    for name in ("scheme", "class_code", "datum", "source", "disposal_type", "external_ref"):
        given = col[name] != ""
        first = case_val[name]
        differs = given & ~pd.isna(first) & (norm[name] != np.where(pd.isna(first), "", first))
        errors.add(
            differs,
            name,
            col[name],
            lambda idx, first=first: [
                bilingual(
                    f"与本案件前面给出的 {first[i]!r} 不一致",
                    f"conflicts with {first[i]!r} given earlier for this case",
                )
                for i in idx
            ],
        )
    lon_case = pd.to_numeric(pd.Series(case_val["lon"], dtype=object), errors="coerce").to_numpy(dtype=float)
    lat_case = pd.to_numeric(pd.Series(case_val["lat"], dtype=object), errors="coerce").to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        moved = pair & np.isfinite(lon_case) & ((np.abs(lon - lon_case) > 1e-9) | (np.abs(lat - lat_case) > 1e-9))
    errors.add(
        moved,
        "coordinates",
        _coords(col),
        lambda idx: [
            bilingual(
                f"与本案件前面给出的 {coordinate_text(lon_case[i])},{coordinate_text(lat_case[i])} 不一致",
                f"conflicts with {coordinate_text(lon_case[i])},{coordinate_text(lat_case[i])} "
                "given earlier for this case",
            )
            for i in idx
        ],
    )

    # --- free text kept as it is (case number, actor — the report row's is the reporter —, note — the report row's
    # is the description): no NUL, control or bidirectional character (texts.refuse_bad_text's rule; the other
    # columns are checked against their lists)
    for name in FREE_TEXT_COLUMNS:
        text = col[name]
        bad = pd.Series(text, dtype=object).str.contains(BAD_TEXT, regex=True).to_numpy(dtype=bool)
        errors.add(bad, name, text, lambda idx, text=text: [bad_text_reason_bilingual(text[i]) for i in idx])
    ref_limit = TEXT_LIMITS["external_ref"]
    long_ref = np.array([len(v) > ref_limit for v in col["external_ref"]], dtype=bool)
    errors.add(
        long_ref,
        "external_ref",
        col["external_ref"],
        bilingual(f"超过 {ref_limit} 个字符", f"longer than {ref_limit} characters"),
    )

    # --- per-row fields
    state = np.array([_STATE_NAMES.get(v, "") for v in col["state"]], dtype=object)
    errors.add(col["state"] == "", "state", "", bilingual("缺少状态", "missing state"))
    errors.add(
        (col["state"] != "") & (state == ""),
        "state",
        col["state"],
        bilingual(
            f"状态不存在:请用 {', '.join(workflow.STATES)} 之一(或其中文名称、缓办)",
            f"unknown state: use one of {', '.join(workflow.STATES)} (or the Chinese labels, 缓办)",
        ),
    )
    action = np.array([_ACTION_NAMES.get(v, "") for v in col["action"]], dtype=object)
    errors.add(
        (col["action"] != "") & (action == ""),
        "action",
        col["action"],
        bilingual(
            f"动作不存在:请用 report 或 {', '.join(workflow.TRANSITIONS)} 之一(或其中文名称)",
            f"unknown action: use report or one of {', '.join(workflow.TRANSITIONS)}",
        ),
    )
    role_names = {**_ROLE_NAMES, **_SOURCE_NAMES}
    role = np.array([role_names.get(v, "") for v in col["role"]], dtype=object)
    errors.add(
        (col["role"] != "") & (role == ""),
        "role",
        col["role"],
        bilingual(
            f"角色不存在:请用 {', '.join(workflow.ROLES)} 之一(或其中文名称)",
            f"unknown role: use one of {', '.join(workflow.ROLES)}",
        ),
    )
    dept = col["department_code"]
    errors.add(
        (dept != "") & ~pd.Series(dept, dtype=object).isin(list(services.departments)).to_numpy(),
        "department_code",
        dept,
        bilingual("部门代码不存在(不在部门名录中)", "unknown department code (not in the department catalogue)"),
    )
    at, at_reason = _parse_instants(col["at"], now)
    errors.add(at_reason != "", "at", col["at"], at_reason)
    new_due, due_reason = _parse_instants(col["new_due_at"], dt.datetime.max.replace(tzinfo=LOCAL_TZ))
    errors.add((col["new_due_at"] != "") & (due_reason != ""), "new_due_at", col["new_due_at"], due_reason)

    # Disposal type: a type of the case's class.
    dtype_given = col["disposal_type"] != ""
    bad_dtype = np.zeros(n, dtype=bool)
    for i in np.flatnonzero(dtype_given & scheme_ok):
        c = case_val["class_code"][i]
        if isinstance(c, str) and c in classes[scheme[i]]:
            bad_dtype[i] = col["disposal_type"][i] not in {
                lim.disposal_type for lim in services.events.limits(scheme[i], c)
            }
    errors.add(
        bad_dtype,
        "disposal_type",
        col["disposal_type"],
        bilingual("不是该事件类别的处置类型", "not a disposal type of the event class"),
    )

    # --- order of time within a case (file order is the transition order)
    at_us = np.array([t.value if t is not None else np.nan for t in at], dtype=float)
    order = pd.DataFrame({"key": key, "at": at_us, "pos": np.arange(n)})
    valid_at = order["at"].notna() & order["key"].notna()
    v = order[valid_at]
    prev_max = v.groupby("key")["at"].cummax().groupby(v["key"]).shift(1)
    late = (v["at"] < prev_max).to_numpy()
    if late.any():
        # The earlier row that is later in time: the row of the running maximum before this one.
        v = v.assign(best=np.where(v["at"] >= v.groupby("key")["at"].cummax(), v["pos"], np.nan))
        v["best"] = v.groupby("key")["best"].ffill()
        before = v.groupby("key")["best"].shift(1).to_numpy()
        idx = v["pos"].to_numpy()[late]
        ref = before[late].astype(np.int64)
        mask = np.zeros(n, dtype=bool)
        mask[idx] = True
        reason = np.full(n, "", dtype=object)
        reason[idx] = [
            bilingual(
                f"时间戳顺序颠倒:早于同一案件第 {rows[j]} 行的时间({at[j].isoformat()})",
                f"timestamp out of order: earlier than row {rows[j]} ({at[j].isoformat()}) of the same case",
            )
            for j in ref
        ]
        errors.add(mask, "at", col["at"], reason)

    # --- missing case-level values (reported on the case's first row)
    first_row = np.zeros(n, dtype=bool)
    has_key = key.notna().to_numpy()
    first_row[np.flatnonzero(has_key)[~key[has_key].duplicated().to_numpy()]] = True
    errors.add(first_row & pd.isna(case_val["class_code"]), "class_code", "",
               bilingual("本案件缺少事件类别代码", "missing class code for this case"))  # fmt: skip
    errors.add(first_row & pd.isna(case_val["source"]), "source", "",
               bilingual("本案件缺少案件来源", "missing source for this case"))  # fmt: skip
    errors.add(first_row & (pd.isna(case_val["lon"]) | pd.isna(case_val["lat"])), "coordinates", "",
               bilingual("本案件缺少经纬度", "missing lon/lat for this case"))  # fmt: skip

    row_errors = errors.frame()
    case_of_row = dict(zip(rows.tolist(), case_no, strict=True))
    row_errors.insert(1, "case_no", [case_of_row[int(r)] for r in row_errors["row"]])
    bad_row = errors.bad

    # --- case by case through the state machine
    case_rows: dict[str, list[int]] = {}
    positions: dict[str, list[int]] = {}
    for i in np.flatnonzero(has_key):
        positions.setdefault(case_no[i], []).append(int(i))
        case_rows.setdefault(case_no[i], []).append(int(rows[i]))
    refusals = [row_errors]
    keyed = row_errors[row_errors["case_no"].isin(list(case_rows))]
    refused_by_row: set[str] = set()
    for c, own in keyed.groupby("case_no", sort=False):
        refused_by_row.add(str(c))
        first_bad = own.iloc[0]  # errors are sorted by row
        others = [r for r in case_rows[str(c)] if r not in set(own["row"])]
        if others:
            told = _case_refused(int(first_bad["row"]), str(first_bad["field"]), str(first_bad["reason"]))
            refusals.append(pd.DataFrame({"row": others, "case_no": c, "field": "", "value": "", "reason": told}))
    # Storage lon/lat per case (datum conversion vectorised per datum).
    datum_case = np.array([DEFAULT_DATUM if pd.isna(d) else str(d).lower() for d in case_val["datum"]], dtype=object)
    x = np.full(n, np.nan)
    y = np.full(n, np.nan)
    convertible = ~bad_row & np.isfinite(lon_case) & np.isfinite(lat_case) & np.isin(datum_case, geodesy.DATUMS)
    for d in geodesy.DATUMS:
        m = convertible & (datum_case == d)
        if m.any():
            x[m], y[m] = geodesy.to_storage(lon_case[m], lat_case[m], geodesy.check_datum(d))

    ctx = _RowContext(
        rows=rows,
        state=state,
        state_text=col["state"],
        action=action,
        role=role,
        actor=col["actor"],
        dept=dept,
        at=at,
        note=col["note"],
        new_due=new_due,
        new_due_text=col["new_due_at"],
        source=np.array(
            [_SOURCE_NAMES.get(str(s), "") if not pd.isna(s) else "" for s in case_val["source"]], dtype=object
        ),
    )
    case_records: list[dict[str, Any]] = []
    step_records: list[dict[str, Any]] = []
    todo = [c for c in positions if c not in refused_by_row]
    progress("check", 0, len(todo))
    for done, c in enumerate(todo, start=1):
        pos = positions[c]
        built = _build_case(ctx, pos, len(case_records) + 1)
        if isinstance(built, _Refusal):
            refusals.append(_case_refusal(c, case_rows[c], built.row, built.field, built.value, built.reason))
        else:
            record, steps = built
            i0 = pos[0]
            s = scheme[i0]
            cls_code = str(case_val["class_code"][i0])
            dtype_name = case_val["disposal_type"][i0]
            lim = services.events.limit(s, cls_code, None if pd.isna(dtype_name) else str(dtype_name))
            late = _extension_refusal(services, ctx, pos, steps, s, cls_code, lim.disposal_type)
            if late is not None:
                refusals.append(_case_refusal(c, case_rows[c], late.row, late.field, late.value, late.reason))
                continue
            record.update(
                case_no=c,
                scheme=s,
                class_code=cls_code,
                disposal_type=lim.disposal_type,
                urgent=bool(lim.urgent),
                source=ctx.source[i0],
                lon=x[i0],
                lat=y[i0],
                input_lon=lon_case[i0],
                input_lat=lat_case[i0],
                input_datum=datum_case[i0],
                external_ref=None if pd.isna(case_val["external_ref"][i0]) else case_val["external_ref"][i0],
            )
            steps[0]["details"].update(source=ctx.source[i0], datum=datum_case[i0], input=[lon_case[i0], lat_case[i0]])
            case_records.append(record)
            step_records.extend(steps)
        if done % 1000 == 0 or done == len(todo):
            progress("check", done, len(todo))

    cases = pd.DataFrame(case_records, columns=list(_CASE_FRAME))
    for c in ("unit_grid_code", "district_code", "street_code", "community_code", "tier3_code", "duplicate_of"):
        cases[c] = None
    transitions = pd.DataFrame(step_records, columns=list(_STEP_FRAME))
    if len(transitions):
        transitions["at"] = pd.DatetimeIndex(transitions["at"]).tz_convert(LOCAL_TZ)
    return ParsedHistory(
        cases=cases,
        transitions=transitions,
        errors=_sorted_errors(pd.concat(refusals, ignore_index=True)),
        rows=n,
        case_count=len(positions),
        case_rows=case_rows,
    )


def _coords(col: dict[str, np.ndarray]) -> Callable[[np.ndarray], list[str]]:
    return lambda idx: [f"{col['lon'][i]},{col['lat'][i]}" for i in idx]


# --------------------------------------------------------------------------------------- the state machine


_CASE_FRAME = (
    "id", "case_no", "scheme", "class_code", "disposal_type", "urgent", "state", "source", "reporter",
    "reporter_role", "department_code", "previous_state", "rework_count", "escalation_level", "pending_extension",
    "created_at", "closed_at", "suspended_at", "lon", "lat", "input_lon", "input_lat", "input_datum", "description",
    "external_ref",
)  # fmt: skip
_STEP_FRAME = (
    "case_id", "action", "from_state", "to_state", "actor", "role", "at", "department_code", "details", "effects",
    "version", "note", "_row",
)  # fmt: skip


@dataclass(frozen=True)
class _RowContext:
    rows: np.ndarray
    state: np.ndarray
    state_text: np.ndarray
    action: np.ndarray
    role: np.ndarray
    actor: np.ndarray
    dept: np.ndarray
    at: np.ndarray
    note: np.ndarray
    new_due: np.ndarray
    new_due_text: np.ndarray
    source: np.ndarray  # per row: the case's source id


@dataclass(frozen=True)
class _Refusal:
    row: int
    field: str
    value: str
    reason: str


def _state_text(state: str) -> str:
    return f"{state} ({workflow.STATES.get(state, '?')})"


def _state_zh(state: str) -> str:
    """A state as the zh-CN part of a reason names it: 「核实」(verified)."""
    return f"「{workflow.STATES.get(state, '?')}」({state})"


#: The zh-CN words of the workflow's guard refusals (its English ``why`` stays in the English part).
_GUARD_ZH: dict[str, str] = {
    Reason.EXTENSION_PENDING: "已有待审批的延期申请,须先批准或驳回",
    Reason.NO_PENDING_EXTENSION: "没有待审批的延期申请",
    Reason.TOP_ESCALATION_LEVEL: "案件已在最高一级,不能再提级",
    Reason.NOT_OVERDUE_OR_FLAGGED: "督办须案件已超时或为重点督办",
}


def _order_refusal(exc: workflow.TransitionNotAllowed, rule: workflow.ActionRule) -> str:
    """An impossible transition order the workflow refused, zh-CN first: its state refusal is already "zh / en"
    (each part goes to its own side), a guard's is English (its zh-CN words by reason)."""
    zh, sep, en = exc.message.partition(" / ")
    if sep:
        return bilingual(f"流转顺序不可能:{zh}", f"impossible transition order: {en}")
    why = _GUARD_ZH.get(exc.reason or "", f"当前不能办理「{rule.label}」")
    return bilingual(
        f"流转顺序不可能:「{rule.label}」({rule.action}):{why}", f"impossible transition order: {exc.message}"
    )


def _next_state(rule: workflow.ActionRule, case: workflow.CaseState) -> str:
    if rule.to_state == workflow.UNCHANGED:
        return case.state
    if rule.to_state == workflow.PREVIOUS:
        return case.previous_state or "filed"
    return rule.to_state


def _candidates(case: workflow.CaseState, target: str, role: str) -> list[workflow.ActionRule]:
    roles = [role] if role else list(workflow.ROLES)
    allowed = {a for r in roles for a in workflow.allowed_actions(case, r)}
    return [r for a, r in workflow.TRANSITIONS.items() if a in allowed and _next_state(r, case) == target]


def _no_way(ctx: _RowContext, i: int, case: workflow.CaseState, target: str, role: str) -> _Refusal:
    """Why no action takes ``case`` to ``target`` (by ``role``)."""
    row = int(ctx.rows[i])
    if role and _candidates(case, target, ""):
        fits = ", ".join(sorted({r for rule in _candidates(case, target, "") for r in rule.roles}))
        label = workflow.ROLES.get(role, role)
        return _Refusal(
            row,
            "role",
            ctx.role[i],
            bilingual(
                f"角色 {role}({label})不能使案件从{_state_zh(case.state)}流转到{_state_zh(target)};可以的角色:{fits}",
                f"role {role} ({label}) may not take a case from {_state_text(case.state)} to "
                f"{_state_text(target)}; roles that may: {fits}",
            ),
        )
    if case.terminal:
        reason = bilingual(
            f"流转顺序不可能:案件已是终结状态{_state_zh(case.state)}",
            f"impossible transition order: the case was already {_state_text(case.state)}, a final state",
        )
    else:
        nexts = sorted({_next_state(workflow.TRANSITIONS[a], case) for r in workflow.ROLES
                        for a in workflow.allowed_actions(case, r)})  # fmt: skip
        reason = bilingual(
            f"流转顺序不可能:没有动作能使案件从{_state_zh(case.state)}流转到{_state_zh(target)};"
            f"可能的下一状态:{'、'.join(_state_zh(s) for s in nexts)}",
            f"impossible transition order: no action takes a case from {_state_text(case.state)} to "
            f"{_state_text(target)}; possible next states: {', '.join(_state_text(s) for s in nexts)}",
        )
    return _Refusal(row, "state", ctx.state_text[i], reason)


def _extension_refusal(
    services: Any,
    ctx: _RowContext,
    pos: list[int],
    steps: list[dict[str, Any]],
    scheme: str,
    class_code: str,
    disposal_type: str | None,
) -> _Refusal | None:
    """The first approved 延期 of a case that does not move its 处置 deadline later (or moves it further than an
    extension may), as the live service refuses it: the clock is replayed as it ran (``node_clock.replay_node_clock``).
    A 延期申请 made after the 处置 deadline is not refused here, though the live service refuses one now
    (``node_clock.refuse_late_extension_request``): a city's past record is kept as it was made."""
    openers = NODES[DISPOSAL_NODE[0]][0]
    first = next((k for k, st in enumerate(steps) if st["action"] in openers), None)
    if first is None or not any(st["action"] == "approve_extension" for st in steps[first:]):
        return None
    walked = replay_node_clock(
        services,
        DISPOSAL_NODE[0],
        event_class(services, scheme, class_code),
        disposal_type,
        [(st["action"], st["at"], st["details"]) for st in steps[first:]],
    )
    if walked.refused is None:
        return None
    k, why = walked.refused
    row = int(steps[first + k]["_row"])
    i = next(i for i in pos if int(ctx.rows[i]) == row)
    en = why.message.removeprefix("new_due_at: ")  # the live service's words (gisgrid.node_clock.extension_refusal)
    return _Refusal(row, "new_due_at", ctx.new_due_text[i], bilingual(why.zh, en))


def _build_case(  # noqa: C901, PLR0915
    ctx: _RowContext, pos: list[int], case_id: int
) -> tuple[dict[str, Any], list[dict[str, Any]]] | _Refusal:
    """Replay one case's rows through the workflow; the first impossible step refuses the case."""
    i0 = pos[0]
    row0 = int(ctx.rows[i0])
    if ctx.state[i0] != "reported" or ctx.action[i0] not in ("", "report"):
        return _Refusal(
            row0,
            "state",
            ctx.state_text[i0],
            bilingual(
                "案件的第一行须为上报(状态 reported 上报);实为"
                + (_state_zh(ctx.state[i0]) if ctx.state[i0] else "无状态")
                + (f",动作 {ctx.action[i0]}" if ctx.action[i0] not in ("", "report") else ""),
                "the first row of a case must be its report (state reported 上报); got "
                + (_state_text(ctx.state[i0]) if ctx.state[i0] else "no state")
                + (f", action {ctx.action[i0]}" if ctx.action[i0] not in ("", "report") else ""),
            ),
        )
    source = ctx.source[i0]
    role0 = ctx.role[i0] or ("supervisor" if source == "patrol" else source)
    actor0 = ctx.actor[i0] or (SOURCES.get(role0) or workflow.ROLES.get(role0) or role0)
    note0 = ctx.note[i0] or None
    steps: list[dict[str, Any]] = [
        {
            "case_id": case_id,
            "action": "report",
            "from_state": None,
            "to_state": "reported",
            "actor": actor0,
            "role": role0,
            "at": ctx.at[i0],
            "department_code": ctx.dept[i0] or None,
            "details": {},
            "effects": [],
            "version": 1,
            "note": note0,
            "_row": row0,
        }
    ]
    case = workflow.CaseState()
    closed_at = suspended_at = None
    for i in pos[1:]:
        row = int(ctx.rows[i])
        target, role, given_action = ctx.state[i], ctx.role[i], ctx.action[i]
        if given_action == "report":
            return _Refusal(
                row,
                "action",
                ctx.action[i],
                bilingual("案件只上报一次:只有第一行是上报", "a case is reported once: only its first row is a report"),
            )
        if role and role not in workflow.ROLES:
            return _Refusal(
                row,
                "role",
                ctx.role[i],
                bilingual(
                    f"{role} 是案件来源,不是流程角色:请用 {', '.join(workflow.ROLES)} 之一",
                    f"{role} is a source, not a workflow role: use one of {', '.join(workflow.ROLES)}",
                ),
            )
        if given_action == "reopen":
            # 重新受理: a merged duplicate back to intake because its kept case ended voided or rejected (the log
            # entry the service writes; which of the two is not in the row, and the step is the same). Only when
            # the row says so: a case voided as a false report does not come back by a state change alone.
            try:
                tr = workflow.reopen_duplicate(case, "voided")
            except workflow.TransitionNotAllowed as exc:  # only a voided case is reopened
                return _Refusal(
                    row,
                    "state",
                    ctx.state_text[i],
                    bilingual(
                        f"流转顺序不可能:只有已合并(作废)的重复案件才能重新受理,本案件为{_state_zh(case.state)}",
                        f"impossible transition order: {exc.message}",
                    ),
                )
            if tr.to_state != target:
                return _Refusal(
                    row,
                    "state",
                    ctx.state_text[i],
                    bilingual(
                        "重新受理使案件回到「上报」(reported)", "a reopen (重新受理) takes a case back to 上报 reported"
                    ),
                )
            case, closed_at = tr.case, None
            steps.append(
                {
                    "case_id": case_id,
                    "action": tr.action,
                    "from_state": tr.from_state,
                    "to_state": tr.to_state,
                    "actor": ctx.actor[i] or workflow.LOG_ACTIONS["reopen"],
                    "role": role or workflow.TRANSITIONS["void"].roles[0],  # who voided the kept case
                    "at": ctx.at[i],
                    "department_code": None,
                    "details": dict(tr.details),
                    "effects": [],
                    "version": case.version,
                    "note": ctx.note[i] or None,
                    "_row": row,
                }
            )
            continue
        if given_action:
            rule = workflow.TRANSITIONS[given_action]
        else:
            found = _candidates(case, target, role)
            if not found:
                return _no_way(ctx, i, case, target, role)
            if len(found) > 1 and ctx.new_due[i] is not None:  # a new deadline is what an approval gives
                found = [r for r in found if r.action == "approve_extension"] or found
            if len(found) > 1:
                names = ", ".join(f"{r.action} ({r.label})" for r in found)
                names_zh = "、".join(f"「{r.label}」({r.action})" for r in found)
                return _Refusal(
                    row,
                    "action",
                    "",
                    bilingual(
                        f"有多个动作可使案件从{_state_zh(case.state)}流转到{_state_zh(target)}"
                        + (f"(角色 {role})" if role else "")
                        + f":{names_zh};请填写动作列",
                        f"several actions take a case from {_state_text(case.state)} to {_state_text(target)}"
                        + (f" by {role}" if role else "")
                        + f": {names}; give the action column",
                    ),
                )
            rule = found[0]
        acting = role or rule.roles[0]
        dept = ctx.dept[i]
        if rule.action == "dispatch" and not dept:
            return _Refusal(
                row,
                "department_code",
                "",
                bilingual("派遣须填写派往的部门", "a dispatch (派遣) needs the department it went to"),
            )
        if rule.action == "approve_extension" and ctx.new_due[i] is None:
            return _Refusal(
                row,
                "new_due_at",
                ctx.new_due_text[i],
                bilingual("延期批准须填写新处置时限", "an approved extension (延期批准) needs the new deadline"),
            )
        if dept and rule.action not in ("dispatch", "rework") and case.department and dept != case.department:
            return _Refusal(
                row,
                "department_code",
                dept,
                bilingual(
                    f"案件在部门 {case.department}(最近一次派遣至该部门),不是 {dept}",
                    f"the case is with department {case.department} (last dispatched to it), not {dept}",
                ),
            )
        note = ctx.note[i] or None
        payload: dict[str, Any] = {
            "reason": note or _NOT_RECORDED,
            "result": note or _NOT_RECORDED,
            "after_photo": [_NOT_RECORDED],
            "flagged": True,  # 督办 happened: it was overdue or flagged then
        }
        if dept:
            payload["department"] = dept
        if ctx.new_due[i] is not None:
            payload["new_due_at"] = ctx.new_due[i].isoformat()
        try:
            tr = workflow.apply(case, rule.action, acting, payload=payload, expected_version=case.version)
        except workflow.RoleNotAllowed as exc:
            may = "、".join(f"{r}({workflow.ROLES.get(r, r)})" for r in rule.roles)
            label = workflow.ROLES.get(acting, acting)
            zh = f"角色 {acting}({label})不能办理「{rule.label}」({rule.action});可办理的角色:{may}"
            return _Refusal(row, "role", ctx.role[i], bilingual(zh, exc.message))
        except workflow.TransitionNotAllowed as exc:
            return _Refusal(row, "state", ctx.state_text[i], _order_refusal(exc, rule))
        except InvalidInput as exc:
            zh = (
                f"返工须派回原部门 {case.department},不能派给 {dept}"
                if exc.reason == Reason.REWORK_OTHER_DEPARTMENT
                else f"不能办理「{rule.label}」({rule.action})"
            )
            return _Refusal(
                row, "department_code" if dept else "action", dept or given_action, bilingual(zh, exc.message)
            )
        if tr.to_state != target:
            return _Refusal(
                row,
                "state",
                ctx.state_text[i],
                bilingual(
                    f"流转顺序不可能:「{rule.label}」({rule.action})使案件从{_state_zh(case.state)}流转到"
                    f"{_state_zh(tr.to_state)},而不是{_state_zh(target)}",
                    f"impossible transition order: {rule.action} ({rule.label}) takes the case from "
                    f"{_state_text(case.state)} to {_state_text(tr.to_state)}, not {_state_text(target)}",
                ),
            )
        details = {
            k: v for k, v in tr.details.items() if v != _NOT_RECORDED and v != [_NOT_RECORDED] and k != "flagged"
        }
        if rule.action == "supervise":
            details.pop("overdue", None)
        details |= extension_terms(rule.action, payload)  # a past 延期批准 gave a date: it stays that date
        if rule.action == "suspend":
            deferred = ctx.state_text[i] == DEFERRED_LABEL or (note is not None and DEFERRED_LABEL in note)
            details["kind"] = "deferred" if deferred else "suspended"
            suspended_at = ctx.at[i]
        case = tr.case
        if case.terminal:
            closed_at = ctx.at[i]
        steps.append(
            {
                "case_id": case_id,
                "action": rule.action,
                "from_state": tr.from_state,
                "to_state": tr.to_state,
                "actor": ctx.actor[i] or _default_actor(acting, case.department),
                "role": acting,
                "at": ctx.at[i],
                "department_code": dept or case.department,
                "details": details,
                "effects": list(tr.effects),
                "version": case.version,
                "note": note,
                "_row": row,
            }
        )
    record = {
        "id": case_id,
        "state": case.state,
        "reporter": actor0,
        "reporter_role": role0,
        "description": note0,  # the report's note describes the problem
        "department_code": case.department,
        "previous_state": case.previous_state,
        "rework_count": case.rework_count,
        "escalation_level": case.escalation_level,
        "pending_extension": case.pending_extension,
        "created_at": ctx.at[i0],
        "closed_at": closed_at if case.terminal else None,
        "suspended_at": suspended_at if case.state == "suspended" else None,
    }
    return record, steps


def _default_actor(role: str, department: str | None) -> str:
    if role == "department" and department:
        return department
    return workflow.ROLES.get(role, role)
