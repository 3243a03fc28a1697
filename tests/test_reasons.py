"""Reason codes of refusals (gisgrid.errors.Reason): every code the code base can raise has its zh-CN text in
data/catalogue/messages_zh.csv (what the pages show) and a line in README's API section; request validation's
codes (pydantic's types) are codes of the registry too. No database: refusals made before any is asked."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app  # and so every module with an error class
from gisgrid.errors import ConfigError, GisgridError, Reason
from gisgrid.settings import PROJECT_ROOT, Settings
from maps.pagejs import REASON_TEXTS_FILE, load_reason_texts
from tests.fixtures import EDITOR

SOURCE_DIRS = ("gisgrid", "api", "maps")


def _source_files() -> list[Path]:
    return sorted(p for d in SOURCE_DIRS for p in (PROJECT_ROOT / d).rglob("*.py"))


def raised_reasons() -> dict[str, list[str]]:
    """``Reason.NAME`` as the source names it, with where: every code a refusal can carry."""
    found: dict[str, list[str]] = {}
    for path in _source_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "Reason":
                found.setdefault(node.attr, []).append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}")
    return found


def test_every_reason_the_source_names_is_registered() -> None:
    """A misspelt ``Reason.NOT_OVERDU`` fails only when that refusal happens: here it fails now."""
    named = raised_reasons()
    assert {"NOT_OVERDUE_OR_FLAGGED", "OUTSIDE_COVERAGE", "AFTER_PHOTO_REUSED"} <= set(named)  # the scan sees them
    unknown = {name: where for name, where in named.items() if name not in Reason.__members__}
    assert not unknown, f"not in gisgrid.errors.Reason: {unknown}"


def _error_classes() -> set[str]:
    found, todo = set(), [GisgridError]
    while todo:
        cls = todo.pop()
        found.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return found


def test_a_reason_is_given_from_the_registry_not_as_bare_text() -> None:
    """``InvalidInput(…, reason="not_overdue")`` would escape the registry (and so the zh table's check)."""
    errors, bare = _error_classes(), []
    assert {"InvalidInput", "Conflict", "TransitionNotAllowed", "UnknownIndicator"} <= errors
    for path in _source_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            given = next((kw.value for kw in node.keywords if kw.arg == "reason"), None)
            if name in errors and isinstance(given, ast.Constant):
                bare.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}")
    assert not bare, f"reason= given as text, not a Reason: {bare}"


def test_the_zh_table_has_a_text_for_every_reason_code_and_no_other() -> None:
    texts = load_reason_texts(PROJECT_ROOT / "data")
    codes = {str(r) for r in Reason} | {Reason[name].value for name in raised_reasons()}
    missing = sorted(codes - set(texts))
    assert not missing, f"{REASON_TEXTS_FILE} has no zh-CN text for: {missing}"
    stale = sorted(set(texts) - codes)
    assert not stale, f"{REASON_TEXTS_FILE} lists codes nothing raises: {stale}"
    assert texts["not_overdue_or_flagged"].startswith("案件未超时")


def test_the_zh_table_check_fails_for_a_code_without_text(tmp_path: Path) -> None:
    """The table is checked against the registry, not against itself: a row left out is found."""
    rows = (PROJECT_ROOT / "data" / "catalogue" / REASON_TEXTS_FILE).read_text(encoding="utf-8").splitlines()
    kept = [r for r in rows if not r.startswith("after_photo_reused,")]
    (tmp_path / REASON_TEXTS_FILE).write_text("\n".join(kept) + "\n", encoding="utf-8")
    assert set(Reason) - set(load_reason_texts(tmp_path)) == {Reason.AFTER_PHOTO_REUSED}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("code,text\nmissing,必填\n", "the header must be code,zh"),
        ("code,zh\nmissing,\n", "code and zh must all be given"),
        ("code,zh\nNot Snake,必填\n", "is not a snake_case code"),
        ("code,zh\nmissing,必填\nmissing,未填\n", "listed twice"),
    ],
)
def test_a_bad_zh_table_is_refused_at_start_up(tmp_path: Path, content: str, problem: str) -> None:
    (tmp_path / REASON_TEXTS_FILE).write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=problem):
        load_reason_texts(tmp_path)


def test_readme_lists_every_reason_code() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    api = readme[readme.index("## API") : readme.index("## Benchmarks")]
    listed = set(re.findall(r"`([a-z][a-z0-9_]*)`", api))
    missing = sorted(str(r) for r in Reason if str(r) not in listed)
    assert not missing, f"README's API section does not list: {missing}"


def test_readme_s_status_table_lists_every_error_code() -> None:
    """review44 D7: 405 ``method_not_allowed`` was in no table. Every ``error`` the API says it answers (its
    ErrorBody schema) has a row of README's status table, in the ``error`` column."""
    from api.schemas import ErrorBody

    said = ErrorBody.model_fields["error"].description or ""
    codes = {c.strip() for c in re.sub(r"\([^)]*\)", "", said.split(":", 1)[1]).split(",")}
    assert {"invalid_input", "method_not_allowed", "stale_version", "unavailable"} <= codes, codes
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("The statuses and their `error` codes:") :].split("\n\n", 2)[1]
    rows = [line.split(" | ") for line in table.splitlines()[2:]]
    column = {code for row in rows for code in re.findall(r"`([a-z_]+)`", row[1])}
    assert sorted(codes - column) == []
    assert [c.strip("| ") for c in next(r for r in rows if "405" in r[0])[:2]] == ["405", "`method_not_allowed`"]


SUPERVISOR = {"X-Role": "supervisor"}  # an action's role is checked first; these refusals are about the body


def test_request_validation_gives_each_item_pydantic_type_as_a_registered_code(
    unreachable_settings: Settings,
) -> None:
    """Refused before the handler runs (no database needed): each item names its field, pydantic's message and its
    type as ``code`` — a code of the registry, so the pages have its zh-CN text."""
    seen: set[str] = set()
    with TestClient(create_app(unreachable_settings)) as client:
        for method, url, kw in [
            ("post", "/cases", {"json": {"lon": "east", "lat": [], "datum": "mars", "description": "x" * 2001}}),
            ("post", "/cases", {"json": {"class_code": 6010, "desciption": "井盖"}}),
            ("post", "/cases", {"content": b"{", "headers": {"Content-Type": "application/json"}}),
            ("post", "/cases", {"json": [1]}),
            ("post", "/cases/1/actions/verify", {"json": {"version": 1.5, "payload": []}, "headers": SUPERVISOR}),
            ("post", "/cases/1/actions/verify", {"json": {"version": "one"}, "headers": SUPERVISOR}),
            ("get", "/cases", {"params": {"grid": "12ab", "since": "yesterday", "limit": 0, "escalation_level": 9}}),
            ("get", "/cases", {"params": {"until": "2025-01-01T25:00"}}),
            ("get", "/components", {"params": {"radius_m": 0}}),
            ("post", "/components/1/retire", {"json": {"reason": ""}, "headers": EDITOR}),
            ("post", "/components/1/photos", {"data": {"photos": "x"}, "headers": EDITOR}),
        ]:
            r = getattr(client, method)(url, **kw)
            assert r.status_code == 422 and r.json()["error"] == "invalid_input", (url, r.text)
            items = r.json()["detail"]["items"]
            assert all({"field", "reason", "code"} <= set(i) for i in items), items
            seen |= {i["code"] for i in items}
    assert seen <= {str(r) for r in Reason}, seen - {str(r) for r in Reason}
    assert {"missing", "extra_forbidden", "string_pattern_mismatch", "greater_than_equal"} <= seen
