"""The helpers both pages share (maps.pagejs.DOM_JS), run in Node: a refusal is shown in Chinese alone where the
table of reason codes knows it, the server's words kept apart for a "服务器原文"."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

from maps.pagejs import DOM_JS, ZH_ERRORS, json_for_script, load_reason_texts

NODE = shutil.which("node") or shutil.which("nodejs")


def run(calls: list[tuple[str, list[Any]]], **config: Any) -> list[Any]:
    """``name(*args)`` of each call with the page's helpers (the project's reason texts as C.zhReasons; ``config``:
    more of the page's config, e.g. its roles and actions)."""
    # `make setup` installs the pages' assets with npm, so Node is there: a machine without it fails, never skips.
    assert NODE is not None, "no Node.js to run the page's JS (make setup needs it for the front-end assets)"
    c = {"zhReasons": load_reason_texts(), **config}
    script = (
        f"var C = {json.dumps(c, ensure_ascii=False)};\n{DOM_JS}\n"
        f"var calls = {json.dumps(calls, ensure_ascii=False)};\n"
        "var fns = {messageOf: messageOf, serverMessageOf: serverMessageOf};\n"
        "console.log(JSON.stringify(calls.map(function (c) { return fns[c[0]].apply(null, c[1]); })));\n"
    )
    done = subprocess.run([NODE, "-e", script], capture_output=True, text=True, timeout=30, check=True)
    return json.loads(done.stdout)


ZH = load_reason_texts()
PATTERN = {
    "error": "invalid_input",
    "detail": [{"field": "grid", "code": "string_pattern_mismatch", "reason": "String should match pattern '^\\d+$'"}],
}
NOT_OVERDUE = {
    "error": "transition_not_allowed",
    "reason": "not_overdue_or_flagged",
    "detail": {"message": "supervise is not allowed in state 'dispatched'", "items": []},
}
STALE = {"error": "stale_version", "detail": "return: the case is at version 5, the request expected 4"}
UNKNOWN_FIELD = {"error": "invalid_input", "detail": [{"field": "zzz", "reason": "weird thing"}]}
NO_REASON = {"error": "conflict", "detail": "something clashed"}
TOO_LONG = {  # request validation, with the bound
    "error": "invalid_input",
    "detail": [{"field": "note", "code": "string_too_long", "reason": "at most 2000", "limit": {"max_length": 2000}}],
}
DOMAIN_TOO_LONG = {  # the service's own check (cases.check_texts)
    "error": "invalid_input",
    "reason": "string_too_long",
    "detail": {
        "message": "description: at most 2000 characters, got 2001",
        "items": [{"field": "description", "reason": "too long", "limit": {"max_length": 2000}}],
    },
}
OUT_OF_RANGE = {
    "error": "invalid_input",
    "detail": [{"field": "limit", "code": "less_than_equal", "reason": "≤ 500", "limit": {"le": 500}}],
}

TOO_MANY_PHOTOS = {  # gisgrid.photos.one_request
    "error": "invalid_input",
    "reason": "too_many_photos",
    "detail": {
        "message": "photos: at most 10 photos in one request, got 11",
        "items": [{"field": "photos", "reason": "11 photos", "limit": {"max_items": 10}, "code": "too_many_photos"}],
    },
}


def test_a_refusal_by_a_bound_says_the_bound_in_chinese() -> None:
    got = run(
        [
            ("messageOf", [TOO_LONG, 422]),
            ("messageOf", [DOMAIN_TOO_LONG, 422]),
            ("messageOf", [OUT_OF_RANGE, 422]),
            ("messageOf", [TOO_MANY_PHOTOS, 422]),
        ]
    )
    too_long = ZH["string_too_long"]
    assert got == [
        f"备注:{too_long}(最多 2000 个字符)",
        f"描述:{too_long}(最多 2000 个字符)",
        f"每页件数:{ZH['less_than_equal']}(不大于 500)",
        f"照片:{ZH['too_many_photos']}(最多 10 项)",
    ]


def test_a_known_reason_is_shown_in_chinese_alone_and_the_server_text_apart() -> None:
    got = run(
        [
            ("messageOf", [PATTERN, 422]),
            ("messageOf", [NOT_OVERDUE, 409]),
            ("messageOf", [STALE, 409]),
            ("messageOf", [UNKNOWN_FIELD, 422]),
            ("messageOf", [NO_REASON, 409]),
            ("serverMessageOf", [PATTERN, 422]),
            ("serverMessageOf", [NOT_OVERDUE, 409]),
        ]
    )
    assert got == [
        "网格编码:格式不正确",
        f"{ZH['not_overdue_or_flagged']}",
        f"{ZH['stale_version']}",
        "输入有误 · zzz: weird thing",  # nothing specific in the table: the generic word and the server's
        "与现有数据冲突 · something clashed",
        "(422) grid: String should match pattern '^\\d+$'",
        "(409) supervise is not allowed in state 'dispatched'",
    ]


def _workflow_refusal(error: str, item: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": error, "detail": {"message": "English words", "items": [item]}}
    return {**body, "reason": reason} if reason else body


def test_the_workflow_refusals_items_are_shown_by_their_codes() -> None:
    """The API's shapes (gisgrid.workflow.refusal_item): a missing payload field is invalid_input/missing naming
    the field; the role, the case's state and a stale version (the error's own code as the item's) are said
    alone."""
    got = run(
        [
            (
                "messageOf",
                [
                    _workflow_refusal(
                        "invalid_input",
                        {"field": "reason", "reason": "void needs it", "code": "missing", "action": "void"},
                        "missing",
                    ),
                    422,
                ],
            ),
            (
                "messageOf",
                [
                    _workflow_refusal(
                        "role_not_allowed",
                        {"field": "X-Role", "reason": "not allowed to file", "code": "role_not_allowed"},
                    ),
                    403,
                ],
            ),
            (
                "messageOf",
                [
                    _workflow_refusal(
                        "transition_not_allowed",
                        {"field": None, "reason": "not allowed", "code": "transition_not_allowed", "state": "reported"},
                    ),
                    409,
                ],
            ),
            (
                "messageOf",
                [
                    _workflow_refusal(
                        "transition_not_allowed",
                        {"field": None, "reason": "督办 needs …", "code": "not_overdue_or_flagged"},
                        "not_overdue_or_flagged",
                    ),
                    409,
                ],
            ),
            (
                "messageOf",
                [
                    _workflow_refusal(
                        "stale_version", {"field": "version", "reason": "at version 5", "code": "stale_version"}
                    ),
                    409,
                ],
            ),
        ]
    )
    assert got == [
        f"原因/说明:{ZH['missing']}",
        f"{ZH['role_not_allowed']}",
        f"{ZH['transition_not_allowed']}",
        f"{ZH['not_overdue_or_flagged']}",
        f"{ZH['stale_version']}",
    ]


def _role_refusal(action: str | None, role: str, allowed: list[str]) -> dict[str, Any]:
    item = {"field": "X-Role", "reason": "not allowed", "code": "role_not_allowed", "role": role,
            "allowed_roles": allowed}  # fmt: skip
    if action:
        item["action"] = action
    return _workflow_refusal("role_not_allowed", item)


def test_a_refusal_by_role_names_the_roles_that_may_act_in_the_pages_words() -> None:
    """review30 D5: from the item's allowed_roles and role (gisgrid.workflow.check, api.deps' component editors),
    in the page's own words for roles and actions; a page without them keeps the generic line."""
    from gisgrid import workflow

    calls = [
        ("messageOf", [_role_refusal("suspend", "intake", ["dispatcher", "shift_lead"]), 403]),
        ("messageOf", [_role_refusal(None, "supervisor", ["data_admin"]), 403]),  # components: no action, unknown role
        ("messageOf", [_workflow_refusal("role_not_allowed", {"field": "X-Role", "code": "role_not_allowed"}), 403]),
    ]
    assert run(calls, roles=dict(workflow.ROLES), actions=dict(workflow.ACTIONS)) == [
        "挂账 仅限 派遣员、值班长 办理(当前身份:受理员)",
        "此操作 仅限 data_admin 办理(当前身份:监督员)",
        f"{ZH['role_not_allowed']}",  # no allowed_roles: the generic line
    ]
    assert run(calls[:1]) == [f"{ZH['role_not_allowed']}"]  # a page without role words (the field page)


def test_an_answer_that_is_not_the_services_says_its_http_status() -> None:
    """A proxy's 502 page or an empty body: nothing to read but the status (review51 F3: the service's own refusals
    show no status to the user; 服务器原文 keeps it)."""
    assert run([("messageOf", [None, 502]), ("messageOf", ["<html>", 504]), ("serverMessageOf", [STALE, 409])]) == [
        "请求失败(HTTP 502)",
        "请求失败(HTTP 504)",
        "(409) return: the case is at version 5, the request expected 4",
    ]


def test_a_database_outage_is_shown_in_chinese_by_its_reason() -> None:
    """The 503s' messages are English (their Chinese in message_zh): the pages say them in Chinese by their reason
    code, the server's words (with the reference) kept for 服务器原文."""
    down = {
        "error": "database_error",
        "reason": "database_unavailable",
        "detail": "database unavailable; try again later (reference 0123456789ab)",
        "ref": "0123456789ab",
    }
    busy = {**down, "reason": "database_busy", "detail": "database busy (every connection in use); try again shortly"}
    timeout = {**down, "reason": "database_timeout", "detail": "the database did not answer in time"}
    got = run([("messageOf", [down, 503]), ("messageOf", [busy, 503]), ("messageOf", [timeout, 503])])
    assert got == ["数据库暂不可用,请稍后重试", "数据库繁忙(连接已全部占用),请稍后重试", ZH["database_timeout"]]
    assert run([("serverMessageOf", [down, 503])]) == [
        "(503) database unavailable; try again later (reference 0123456789ab)"
    ]


def test_an_error_code_that_is_a_reason_code_is_worded_by_the_reason_texts() -> None:
    """review53 F3: the pages' ZH_ERRORS holds only error codes that are no reason code; an error code that is one
    (role_not_allowed, transition_not_allowed, stale_version) is worded by messages_zh.csv (C.zhReasons), here as
    the generic word before an item the tables do not know."""

    from gisgrid.errors import Reason

    def unknown_item(error: str) -> dict[str, Any]:
        return {"error": error, "detail": {"message": "m", "items": [{"field": "zzz", "code": "odd", "reason": "w"}]}}

    got = run([("messageOf", [unknown_item(code), 409]) for code in ("role_not_allowed", "stale_version", "conflict")])
    assert got == [f"{ZH['role_not_allowed']} · zzz: m", f"{ZH['stale_version']} · zzz: m", "与现有数据冲突 · zzz: m"]
    page_only = set(ZH_ERRORS)
    assert f"  var ZH_ERRORS = {json_for_script(ZH_ERRORS)};\n" in DOM_JS  # put in from Python (pagesrc/shared.js)
    assert page_only == {"invalid_input", "not_found", "conflict", "database_error", "method_not_allowed", "http_error"}
    assert not page_only & {str(r) for r in Reason}


def test_the_pages_field_names_are_the_workflow_s_labels_and_the_page_only_ones() -> None:
    """review53 F3: ZH_FIELDS is gisgrid.workflow.FIELD_LABELS with the pages' own fields (query parameters, a
    report's fields, the role header), not a copy of it; class_code is a report's and a filter's 类别."""
    from gisgrid.workflow import FIELD_LABELS
    from maps.pagejs import PAGE_FIELD_LABELS, ZH_FIELDS

    assert ZH_FIELDS == {**FIELD_LABELS, **PAGE_FIELD_LABELS}
    assert set(PAGE_FIELD_LABELS) & set(FIELD_LABELS) == {"class_code"} and ZH_FIELDS["class_code"] == "类别"
    missing = {"error": "invalid_input", "detail": [{"field": "payload.new_due_at", "code": "missing", "reason": "r"}]}
    bad_lon = {"error": "invalid_input", "detail": [{"field": "lon", "code": "float_parsing", "reason": "r"}]}
    assert run([("messageOf", [missing, 422]), ("messageOf", [bad_lon, 422])]) == [
        f"{FIELD_LABELS['new_due_at']}:{ZH['missing']}",
        f"经度:{ZH['float_parsing']}",
    ]
