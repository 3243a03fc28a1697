"""Bidirectional controls and control characters in free text are refused by field (review24 #8): a description
holding U+202E was stored and shown reversed in the console and the orders; a photo named ``\\u202egpj.exe`` was
accepted. Every text the API, its forms and the CLI take passes ``gisgrid.texts.refuse_bad_text``; line breaks,
Chinese and emoji joined by U+200D stay."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import Engine, text

from api.main import create_app
from gisgrid.settings import Settings
from tests.fixtures import row_count
from tests.test_api_contract import multipart
from tests.test_components_store import inside_points, run, write_csv

BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u200e", "\u200f"]
BIDI += ["\u061c"]
SUPERVISOR = {"X-Actor": quote("监督员甲"), "X-Role": "supervisor"}
EDITOR = {"X-Actor": "li", "X-Role": "data_admin"}
GARBAGE, LAMP = "06010", "01037"


def refusal(field: str, char: str) -> dict[str, Any]:
    code = f"U+{ord(char):04X}"
    return {
        "error": "invalid_input",
        "reason": "control_characters",
        "detail": {
            "message": f"{field}: contains the control or bidirectional character {code}, which changes how the text "
            "is shown; send the text without it",
            "items": [
                {"field": field, "reason": "control characters", "character": code, "code": "control_characters"}
            ],
        },
    }


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 80, 40)).save(buf, "JPEG")
    return buf.getvalue()


@pytest.mark.parametrize("char", [*BIDI, "\x1b", "\x7f", "\x85"])
def test_a_report_refuses_them_in_each_free_text_field(
    district_api: TestClient, clean_db: Engine, spot: tuple[float, float], char: str
) -> None:
    body = {"class_code": GARBAGE, "lon": spot[0], "lat": spot[1], "datum": "cgcs2000"}
    for field in ("description", "address", "reporter"):
        r = district_api.post("/cases", json={**body, field: f"照片 {char}gpj.exe"}, headers=SUPERVISOR)
        assert (r.status_code, r.json()) == (422, refusal(field, char)), field
    assert row_count(clean_db, "cases") == 0


def test_the_form_the_photo_names_the_actions_and_components_refuse_them(
    district_api: TestClient, clean_db: Engine, spot: tuple[float, float]
) -> None:
    client = district_api
    form = {"class_code": GARBAGE, "lon": str(spot[0]), "lat": str(spot[1]), "datum": "cgcs2000"}
    r = client.post("/cases/form", data={**form, "description": "左\u202e右"}, headers=SUPERVISOR)
    assert (r.status_code, r.json()) == (422, refusal("description", "\u202e"))
    # A photo's name is refused, not stripped: it is stored and shown as sent, and a name that reads reversed
    # (照片 🚧 exe.jpg for …gpj.exe) is meant to mislead.
    photo = ("照片 🚧 \u202egpj.exe", _jpeg(), "image/jpeg")
    r = client.post("/cases/form", data=form, files={"photos": photo}, headers=SUPERVISOR)
    assert (r.status_code, r.json()) == (422, refusal("photos.filename", "\u202e"))
    assert row_count(clean_db, "cases") == 0

    r = client.post(
        "/cases/1/actions/reject",
        json={"version": 1, "note": "ok", "payload": {"reason": "重复\u2067上报"}},
        headers={"X-Role": "intake"},
    )
    assert (r.status_code, r.json()) == (422, refusal("payload.reason", "\u2067"))
    r = client.post("/cases/1/actions/reject", json={"version": 1, "note": "\u200f备注"}, headers={"X-Role": "intake"})
    assert (r.status_code, r.json()) == (422, refusal("note", "\u200f"))

    lamp = {"class_code": LAMP, "lon": spot[0], "lat": spot[1], "datum": "cgcs2000"}
    for field, value, where, char in (
        ("name", "路灯\u202d", "name", "\u202d"),
        ("note", "\u061c备注", "note", "\u061c"),
        ("attrs", {"SetLoc": "路口\u2066"}, "attrs.SetLoc", "\u2066"),
    ):
        r = client.post("/components", json={**lamp, field: value}, headers=EDITOR)
        assert (r.status_code, r.json()) == (422, refusal(where, char)), field
    assert row_count(clean_db, "components") == 0


def test_line_breaks_chinese_and_joined_emoji_are_kept(district_api: TestClient, spot: tuple[float, float]) -> None:
    description = "路面破损\r\n第二行\t👷\u200d♀️ 施工中 🚧"
    body = {"class_code": GARBAGE, "lon": spot[0], "lat": spot[1], "datum": "cgcs2000", "description": description}
    r = district_api.post("/cases", json=body, headers=SUPERVISOR)
    assert r.status_code == 201, r.text
    assert district_api.get(f"/cases/{r.json()['id']}").json()["description"] == description
    photo = ("照片 🚧 现场.jpg", _jpeg(), "image/jpeg")
    form = {"class_code": GARBAGE, "lon": str(spot[0] + 0.001), "lat": str(spot[1]), "datum": "cgcs2000"}
    r = district_api.post("/cases/form", data=form, files={"photos": photo}, headers=SUPERVISOR)
    assert r.status_code == 201, r.text


def test_a_component_file_row_with_them_is_refused_by_field(clean_db: Engine, tmp_path: Path) -> None:
    from tests.fixtures import load_small_district

    load_small_district(clean_db, tmp_path)
    xs, ys = inside_points(3, seed=7)
    rows = [
        {"class_code": LAMP, "lon": xs[0], "lat": ys[0], "name": "路灯\u202eA", "note": ""},
        {"class_code": LAMP, "lon": xs[1], "lat": ys[1], "name": "", "note": "备注\x1b[31m"},
        {"class_code": LAMP, "lon": xs[2], "lat": ys[2], "name": "路灯\u200d甲", "note": "第一行\n第二行"},
    ]
    summary = run(clean_db, write_csv(tmp_path / "c.csv", rows), src_datum="cgcs2000")
    assert (summary.read, summary.inserted, summary.refused) == (3, 1, 2)
    got = summary.errors[["row", "field", "reason"]].to_dict("records")
    why = (
        "含有会改变文字显示的控制字符或双向字符 {0} / "
        "contains the control or bidirectional character {0}, which changes how the text is shown"
    )
    assert got == [
        {"row": 2, "field": "name", "reason": why.format("U+202E")},
        {"row": 3, "field": "note", "reason": why.format("U+001B")},
    ]


def test_a_component_file_refuses_them_in_custom_columns_by_row_and_column(clean_db: Engine, tmp_path: Path) -> None:
    """Review24 #8: the values of the columns a file adds (kept in attrs) are free text too — refused per row and
    column, with NUL; the other rows are written."""
    from tests.fixtures import load_small_district

    load_small_district(clean_db, tmp_path)
    xs, ys = inside_points(4, seed=9)
    rows = [
        {"class_code": LAMP, "lon": xs[0], "lat": ys[0], "SetLoc": "人行\u202e道", "Material": "钢\x07"},
        {"class_code": LAMP, "lon": xs[1], "lat": ys[1], "SetLoc": "路口", "Material": "铸\x00铁"},
        {"class_code": LAMP, "lon": xs[2], "lat": ys[2], "SetLoc": "绿地\n东侧", "Material": "铝\u200d合金"},
        {"class_code": LAMP, "lon": xs[3], "lat": ys[3], "SetLoc": "", "Material": ""},
    ]
    summary = run(
        clean_db, write_csv(tmp_path / "c.csv", rows), src_datum="cgcs2000", errors_path=tmp_path / "refused.csv"
    )
    assert (summary.read, summary.inserted, summary.refused) == (4, 2, 2)
    got = summary.errors[["row", "field", "value", "reason"]].to_dict("records")
    why = (
        "含有会改变文字显示的控制字符或双向字符 {0} / "
        "contains the control or bidirectional character {0}, which changes how the text is shown"
    )
    assert got == [  # a row's columns in the order its attributes are kept
        {"row": 2, "field": "Material", "value": "钢\x07", "reason": why.format("U+0007")},
        {"row": 2, "field": "SetLoc", "value": "人行\u202e道", "reason": why.format("U+202E")},
        {"row": 3, "field": "Material", "value": "铸\x00铁", "reason": "含有 NUL 字符 / contains a NUL character"},
    ]
    with (tmp_path / "refused.csv").open(encoding="utf-8-sig", newline="") as fh:  # the refusals file says the same
        assert list(csv.DictReader(fh)) == [{k: str(v) for k, v in item.items()} for item in got]
    with clean_db.connect() as conn:
        stored = conn.execute(text("SELECT attrs FROM components ORDER BY id")).scalars().all()
    assert stored == [{"SetLoc": "绿地\n东侧", "Material": "铝\u200d合金"}, {}]  # empty cells add none (review50 F9)


def test_a_geojson_property_holding_them_in_json_or_its_name_is_refused(clean_db: Engine, tmp_path: Path) -> None:
    """An object a GeoJSON property holds (kept as JSON in attrs) is looked into; a column whose name holds one
    refuses every row (each would store the name)."""
    from tests.fixtures import load_small_district

    load_small_district(clean_db, tmp_path)
    xs, ys = inside_points(2, seed=13)

    def geojson(name: str, properties: list[dict[str, Any]]) -> Path:
        features = [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [float(x), float(y)]},
                "properties": {"class_code": LAMP, **p},
            }
            for x, y, p in zip(xs, ys, properties, strict=True)
        ]
        path = tmp_path / name
        path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
        return path

    why = (
        "含有会改变文字显示的控制字符或双向字符 {0} / "
        "contains the control or bidirectional character {0}, which changes how the text is shown"
    )
    summary = run(clean_db, geojson("a.geojson", [{"k": {"a": ["x", "y\u202ez"]}}, {"k": {"a": ["x"]}}]))
    assert (summary.read, summary.inserted, summary.refused) == (2, 1, 1)
    assert summary.errors[["row", "field", "value", "reason"]].to_dict("records") == [
        {"row": 1, "field": "k", "value": '{"a": ["x", "y\u202ez"]}', "reason": why.format("U+202E")},
    ]
    summary = run(clean_db, geojson("b.geojson", [{"Set\u2067Loc": "路口"}, {"Set\u2067Loc": ""}]))
    assert (summary.read, summary.inserted, summary.refused) == (2, 0, 2)
    assert summary.errors[["row", "field", "value", "reason"]].to_dict("records") == [
        {"row": 1, "field": "Set\u2067Loc", "value": "路口", "reason": why.format("U+2067")},
        {"row": 2, "field": "Set\u2067Loc", "value": "", "reason": why.format("U+2067")},
    ]
    assert row_count(clean_db, "components") == 1


def test_the_cli_refuses_them_in_one_line(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "GISGRID_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "GISGRID_DATA_DIR": str(tmp_path),
    }
    for args, option, code in (
        (["report", "--class", GARBAGE, "--description", "左\u202e右"], "--description", "U+202E"),
        (["report", "--class", GARBAGE, "--address", "中原路\u206612号"], "--address", "U+2066"),
        (
            ["act", "1", "reject", "--role", "intake", "--actor", "张", "--version", "1", "--reason", "\u200f重复"],
            "--reason",
            "U+200F",
        ),
    ):
        r = subprocess.run([sys.executable, "-m", "gisgrid", "cases", *args], capture_output=True, text=True, env=env)
        message = (
            f"error: 含控制字符 / {option}: contains the control or bidirectional character {code}, which changes how "
            "the text "
            "is shown; send the text without it\n"
        )
        assert (r.returncode, r.stderr, r.stdout) == (1, message, ""), args


def surrogate_refused(field: str, char: str = "U+D800") -> dict[str, Any]:
    """A text holding a lone surrogate, refused as pydantic refuses one in a typed field (``string_unicode``)."""
    return {
        "error": "invalid_input",
        "reason": "string_unicode",
        "detail": {
            "message": f"{field}: holds a lone surrogate {char}, which is not Unicode text; send the text as UTF-8 (a "
            "\\ud800-\\udfff escape only as the pair of one character)",
            "items": [
                {
                    "field": field,
                    "reason": "lone surrogate, not Unicode text",
                    "character": char,
                    "code": "string_unicode",
                }
            ],
        },
    }


def test_a_lone_surrogate_anywhere_in_a_json_body_is_a_422_naming_it_not_a_500(
    district_api: TestClient, clean_db: Engine, spot: tuple[float, float]
) -> None:
    """review29 D3: ``{"payload": {"reason": "a\\ud800b"}}`` was a 500 (UnicodeEncodeError writing the case log);
    an escape without its pair decodes to a text no UTF-8 can carry. Refused as a typed field's is, by path."""
    client = district_api
    body = {"class_code": GARBAGE, "lon": spot[0], "lat": spot[1], "datum": "cgcs2000"}
    case = client.post("/cases", json=body, headers=SUPERVISOR).json()
    cid, version = case["id"], case["version"]
    json_h = {"X-Role": "intake", "content-type": "application/json"}
    for raw, field, char in (
        (b'{"version": %d, "payload": {"reason": "a\\ud800b"}}', "payload.reason", "U+D800"),
        (b'{"version": %d, "payload": {"reason": "ok", "x": ["ok", "\\udfff"]}}', "payload.x[1]", "U+DFFF"),
        (b'{"version": %d, "payload": {"a\\udc00": "ok"}}', "payload.a\\udc00", "U+DC00"),
        (b'{"version": %d, "note": "\\ud800"}', "note", "U+D800"),
    ):
        r = client.post(f"/cases/{cid}/actions/reject", content=raw % version, headers=json_h)
        assert (r.status_code, r.json()) == (422, surrogate_refused(field, char)), raw
    with clean_db.connect() as conn:
        assert conn.execute(text("SELECT version FROM cases WHERE id = :i"), {"i": cid}).scalar_one() == version
        assert conn.execute(text("SELECT count(*) FROM case_transitions WHERE case_id = :i"), {"i": cid}).scalar() == 1
    # A valid pair is one character (😀) and is taken; the report's fields are refused alike.
    r = client.post(
        f"/cases/{cid}/actions/reject",
        content=b'{"version": %d, "payload": {"reason": "\\ud83d\\ude00 \xe9\x87\x8d\xe5\xa4\x8d"}}' % version,
        headers=json_h,
    )
    assert r.status_code == 200, r.text
    assert r.json()["timeline"][-1]["details"]["reason"] == "😀 重复"
    raw_report = json.dumps({**body, "description": "X"}).replace('"X"', '"a\\ud800"').encode()
    r = client.post("/cases", content=raw_report, headers={**SUPERVISOR, "content-type": "application/json"})
    assert (r.status_code, r.json()) == (422, surrogate_refused("description"))


def test_a_lone_surrogate_in_an_action_form_field_is_a_422_naming_it(unreachable_settings: Settings) -> None:
    """UTF-7 (a charset a part may name) decodes ``+2AA-`` to a lone surrogate: refused at the form's edge, as in
    JSON — no database is asked."""
    body, headers = multipart(("version", b"3", None), ("reason", b"a+2AA-b", "text/plain; charset=utf-7"))
    with TestClient(create_app(unreachable_settings)) as client:
        r = client.post("/cases/1/actions/return/form", content=body, headers={**headers, "X-Role": "department"})
    assert (r.status_code, r.json()) == (422, surrogate_refused("reason"))
