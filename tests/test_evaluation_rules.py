"""The evaluation rules file (gisgrid.evaluation.load_evaluation_rules): where it is read from and every refusal,
by its exact message (file with its full path, row, field, reason). Pure: no database."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from gisgrid.errors import InvalidInput
from gisgrid.evaluation import RULES_FILE, default_rules, load_evaluation_rules, rules_path
from gisgrid.settings import PROJECT_ROOT, Settings

TEXT = RULES_FILE.read_text(encoding="utf-8")
LINES = TEXT.splitlines()


def line_of(prefix: str) -> int:
    """The file's row (the header is row 1) starting with ``prefix``."""
    [n] = [i for i, line in enumerate(LINES, start=1) if line.startswith(prefix)]
    return n


def edited(change: Callable[[list[str]], list[str]]) -> str:
    return "\n".join(change(list(LINES))) + "\n"


def replace_row(prefix: str, new: str) -> Callable[[list[str]], list[str]]:
    def change(lines: list[str]) -> list[str]:
        lines[line_of(prefix) - 1] = new
        return lines

    return change


def refusal(path: Path) -> str:
    with pytest.raises(InvalidInput) as err:
        load_evaluation_rules(path)
    return err.value.message


def write(tmp_path: Path, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / "evaluation.csv"
    path.write_text(text, encoding=encoding)
    return path


# --------------------------------------------------------------------------------------- where the rules come from


def test_settings_read_the_rules_under_the_catalogue_dir(tmp_path: Path) -> None:
    city = tmp_path / "city"
    shutil.copytree(PROJECT_ROOT / "data", city)
    (city / "rules" / "evaluation.csv").write_text(
        TEXT.replace("weight,department,filed_score,,,,0.10,", "weight,department,filed_score,,,,0.00,")
        .replace("weight,department,closure_rate,,,,0.30,", "weight,department,closure_rate,,,,0.40,")
        .replace("grade,,A,,90,,,", "grade,,A,,95,,,")
        .replace("grade,,B,,75,90,,", "grade,,B,,75,95,,"),
        encoding="utf-8",
    )
    settings = Settings(catalogue_dir=city)
    assert rules_path(settings) == city / "rules" / "evaluation.csv"
    rules = load_evaluation_rules(settings)
    assert rules.source == city / "rules" / "evaluation.csv"
    assert rules.grades[:2] == (("A", 95.0, float("inf")), ("B", 75.0, 95.0))
    assert [(w.indicator, w.weight) for w in rules.weights["department"]][:2] == [
        ("filed_score", 0.0),
        ("closure_rate", 0.4),
    ]
    # The library without settings keeps the package's copy.
    assert rules_path() == RULES_FILE and default_rules().grades[0] == ("A", 90.0, float("inf"))
    assert load_evaluation_rules(Settings(catalogue_dir=PROJECT_ROOT / "data")) == load_evaluation_rules()


def test_a_city_copy_without_the_file_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    with pytest.raises(InvalidInput) as err:
        load_evaluation_rules(Settings(catalogue_dir=tmp_path))
    assert err.value.message == (
        f"evaluation rules: 1 problem(s):\n{tmp_path}/rules/evaluation.csv: evaluation rules file "
        "(GISGRID_CATALOGUE_DIR/rules/evaluation.csv) not found"
    )


def test_a_relative_path_is_named_in_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(
        tmp_path,
        edited(replace_row("weight,supervisor,valid_report_rate", "weight,supervisor,valid_report_rate,,,,abc,")),
    )
    monkeypatch.chdir(tmp_path)
    message = refusal(Path("evaluation.csv"))
    assert message.splitlines()[1] == f"{tmp_path}/evaluation.csv: row 2, field 'value': not a number: 'abc'"


# --------------------------------------------------------------------------------------- encodings and shape


def test_gbk_and_excel_files_read_as_utf8(tmp_path: Path) -> None:
    expected = load_evaluation_rules()
    for encoding, text in (
        ("gbk", TEXT.replace("−", "-").replace("–", "-").replace("≥", ">=").replace("×", "x")),  # GBK lacks a few
        ("utf-8-sig", TEXT.replace("\n", ",,\r\n") + ",,,,,,,\r\n"),  # Excel: BOM, CRLF, blank row
    ):
        got = load_evaluation_rules(write(tmp_path, text, encoding))
        assert (got.weights, got.scores, got.grades, got.min_weight, got.ungraded) == (
            expected.weights,
            expected.scores,
            expected.grades,
            expected.min_weight,
            expected.ungraded,
        ), encoding


def test_unreadable_empty_and_headerless_files_are_refused_in_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, TEXT, "utf-16")
    assert refusal(path) == (
        f'evaluation rules: 1 problem(s):\n{path}: UTF-16 text (Excel\'s "Unicode 文本"), not UTF-8 or GB18030: '
        'save it as "CSV UTF-8(逗号分隔)" (or CSV in GBK)'
    )
    write(tmp_path, "\n")
    assert refusal(path) == (
        f"evaluation rules: 1 problem(s):\n{path}: the file is empty; expected the header "
        "kind,subject,key,source,lower,upper,value"
    )
    write(tmp_path, TEXT.replace("kind,subject,key,", "kind,subjects,key,", 1))
    assert refusal(path) == (
        f"evaluation rules: 1 problem(s):\n{path}: missing column(s) subject; expected "
        "kind,subject,key,source,lower,upper,value"
    )
    write(tmp_path, "\n" + TEXT)  # the header is line 1: a blank one names no column
    assert refusal(path) == (
        f"evaluation rules: 1 problem(s):\n{path}: missing column(s) kind, subject, key, source, lower, upper, "
        "value; expected kind,subject,key,source,lower,upper,value"
    )
    # Parsed by cityfiles.read_csv, as every city file: a cell over the csv module's limit is refused in one line
    # (it was an uncaught csv.Error).
    write(tmp_path, TEXT + f"grade,,{'Z' * 200_000},,,,\n")
    assert refusal(path) == (
        f"evaluation rules: 1 problem(s):\n{path}: not a readable CSV (line {len(LINES) + 1}: field larger than "
        "field limit (131072))"
    )


# --------------------------------------------------------------------------------------- each refusal


DEPT = line_of("weight,department,filed_score")
A, B, C, E = (line_of(f"grade,,{g},") for g in "ABCE")
MIN = line_of("min_weight,")
BIN = line_of("score,department,filed_score,filed_per_month,,")
CASES: dict[str, tuple[Callable[[list[str]], list[str]], list[str]]] = {
    "a weight that is no number": (
        replace_row("weight,supervisor,valid_report_rate", "weight,supervisor,valid_report_rate,,,,abc,"),
        [
            "row 2, field 'value': not a number: 'abc'",
            "supervisor: weights sum to 0.6, not 1 (rows 3, 4, 5)",
        ],
    ),
    "a subject with no weights": (
        lambda lines: [line for line in lines if not line.startswith("weight,department,")],
        ["no weight rows for department (weight,department,…)"],
    ),
    "a gap between grade bands": (
        replace_row("grade,,A,", "grade,,A,,95,,,A ≥ 95"),
        [
            f"row {A}, field 'lower': grade bands leave a gap: scores from 90 to 95 get no grade "
            f"(B in row {B} ends at 90, A in row {A} starts at 95)"
        ],
    ),
    "overlapping grade bands": (
        replace_row("grade,,B,", "grade,,B,,70,95,,B"),
        [
            f"row {B}, field 'lower': grade bands overlap: scores from 70 to 75 fall in C (row {C}) and in B (row {B})",
            f"row {A}, field 'lower': grade bands overlap: scores from 90 to 95 fall in B (row {B}) and in A (row {A})",
        ],
    ),
    "a top band that leaves 100 out": (
        replace_row("grade,,A,", "grade,,A,,90,100,,"),
        [
            f"row {A}, field 'upper': a score of 100 gets no grade: the highest band (A) ends at 100, its upper "
            "bound excluded (leave its upper empty)"
        ],
    ),
    "a bottom band that leaves 0 out": (
        replace_row("grade,,E,", "grade,,E,,10,40,,"),
        [
            f"row {E}, field 'lower': scores from 0 to 10 get no grade: the lowest band (E) starts at 10 "
            "(leave its lower empty)"
        ],
    ),
    "a grade given twice, and as the ungraded name": (
        lambda lines: [*lines[: B - 1], "grade,,A,,75,90,,", *lines[B:-1], "min_weight,,E,,,,0.5,"],
        [
            f"row {B}, field 'key': grade A is given already in row {A}",
            f"row {A}, field 'lower': grade bands leave a gap: scores from 75 to 90 get no grade "
            f"(C in row {C} ends at 75, A in row {A} starts at 90)",
            f"row {MIN}, field 'key': E is a grade letter too: the grade below the share must differ",
        ],
    ),
    "an indicator its subject lacks, weighted twice": (
        lambda lines: [
            *lines[:DEPT],
            "weight,department,missed_report_rate,,,,0.1,",
            "weight,department,closure_rate,,,,0.1,",
            *lines[DEPT:],
        ],
        [
            f"row {DEPT + 1}, field 'key': missed_report_rate is not an indicator of department",
            f"row {DEPT + 3}, field 'key': closure_rate of department is weighted already in row {DEPT + 2}",
            f"department: weights sum to 0.8, not 1 (rows {DEPT}, {DEPT + 2}, {DEPT + 4}, {DEPT + 5})",
        ],
    ),
    "a count score without its table": (
        lambda lines: [line for line in lines if not line.startswith("score,department,")],
        ["no score rows for filed_score of department (score,department,filed_score,…)"],
    ),
    "overlapping score bins": (
        replace_row(
            "score,department,filed_score,filed_per_month,51,",
            "score,department,filed_score,filed_per_month,40,101,90,",
        ),
        [
            f"row {BIN + 1}, field 'lower': the filed_score bins of department in rows {BIN} and {BIN + 1} overlap "
            "from 40 to 51"
        ],
    ),
    "two min_weight rows": (
        lambda lines: [*lines, "min_weight,,不参评,,,,0.6,"],
        [f"one min_weight row is needed, found 2 (rows {MIN}, {MIN + 1})"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_refusal_names_file_row_field_and_reason(tmp_path: Path, case: str) -> None:
    change, problems = CASES[case]
    path = write(tmp_path, edited(change))
    assert refusal(path) == f"evaluation rules: {len(problems)} problem(s):\n" + "\n".join(
        f"{path}: {p}" for p in problems
    )


def test_the_counts_beside_the_rates_can_be_weighted_as_reworked_can_by_the_subjects_that_have_them(
    tmp_path: Path,
) -> None:
    """超期处置数 and 督办数 (review26) are indicators of departments and regions like 返工数/延期数: a city's file may
    name them (here with weight 0, the sums unchanged); a post has no such column."""
    extra = [
        "weight,department,overdue_disposals,,,,0,",
        "weight,department,supervised,,,,0,",
        "weight,department,reworked,,,,0,",
        "weight,region,overdue_disposals,,,,0,",
        "weight,region,supervised,,,,0,",
    ]
    rules = load_evaluation_rules(write(tmp_path, edited(lambda lines: [*lines, *extra])))
    for subject in ("department", "region"):
        zero = {w.indicator for w in rules.weights[subject] if w.weight == 0}
        assert {"overdue_disposals", "supervised"} <= zero, subject
    path = write(tmp_path, edited(lambda lines: [*lines, "weight,supervisor,supervised,,,,0,"]))
    row = len(LINES) + 1
    assert refusal(path) == (
        f"evaluation rules: 1 problem(s):\n{path}: row {row}, field 'key': supervised is not an indicator of supervisor"
    )
