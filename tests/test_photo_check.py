"""``gisgrid photos check``: the photo store against the rows that reference it, on a real PostGIS with the photo
store in a temporary folder — missing and damaged files named by their row, unreferenced originals and foreign
files, the store's size, exit 0 (clean) / 3 (problems) / 1 (could not check), and nothing written."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from gisgrid import cases as svc
from gisgrid.photos import PhotoStore
from gisgrid.settings import Settings
from tests import test_cli_cases
from tests.test_cli_cases import Gisgrid, picture, report

# ``gisgrid ARGS…`` as in a shell (exit code, stdout, stderr), with the case services' photo store as its own.
data_dir = test_cli_cases.data_dir
gisgrid = test_cli_cases.gisgrid

COMPONENT = "41990100201000001"  # a component of the small district's code space (17 characters)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def path_of(data_dir: Path, data: bytes) -> Path:
    h = sha(data)
    return data_dir / "photos" / h[:2] / h[2:4] / f"{h}.jpg"


@pytest.fixture
def stocked(services: svc.CaseServices, loaded: Engine, spot: tuple[float, float], data_dir: Path) -> dict[str, bytes]:
    """Case 1 with photos a and b, case 2 with b again (one file, two rows), component COMPONENT with photo c
    (attached through the component store), and a's thumbnail made: 4 rows, 3 originals, 1 copy."""
    a, b, c = picture(color=(10, 20, 30)), picture(color=(200, 20, 30)), picture(color=(10, 200, 30))
    report(loaded, services, spot, "2026-11-24T09:00:00", photos=[("a.jpg", a), ("b.jpg", b)])
    report(loaded, services, spot, "2026-11-24T10:00:00", photos=[("b.jpg", b)])
    with loaded.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO components (id, scheme, district_code, class_code, status, geom) VALUES "
                "(:i, 'gbt47678', '419901', '01001', '完好', ST_SetSRID(ST_MakePoint(:x, :y), 4490))"
            ),
            {"i": COMPONENT, "x": spot[0], "y": spot[1]},
        )
    from gisgrid.components_store import add_photos

    add_photos(loaded, services.photos, COMPONENT, [("c.jpg", c)], actor="测试员")
    services.photos.thumbnail(sha(a))
    return {"a": a, "b": b, "c": c}


def snapshot(engine: Engine, data_dir: Path) -> tuple[object, ...]:
    """The rows and files the check must leave as they were (names, sizes, modification times)."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, sha256, relpath FROM case_photos ORDER BY id")).all()
        comps = conn.execute(text("SELECT id, photos, version FROM components ORDER BY id")).all()
    files = sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in (data_dir / "photos").rglob("*"))
    return (rows, comps, files)


def test_clean_store_exits_0_with_its_size(
    stocked: dict[str, bytes], gisgrid: Gisgrid, data_dir: Path, loaded: Engine
) -> None:
    before = snapshot(loaded, data_dir)
    originals = sum(len(v) for v in stocked.values())
    thumb = path_of(data_dir, stocked["a"]).with_name(f"{sha(stocked['a'])}.t320.jpg")
    copies = thumb.stat().st_size

    r = gisgrid("photos", "check")

    assert r.code == 0, (r.out, r.err)
    assert r.out.splitlines() == [
        f"照片存储 photo store {data_dir / 'photos'}: 3 file(s), {originals:,} bytes originals, 1 file(s), "
        f"{copies:,} bytes thumbnails/print copies; 4 file(s), {originals + copies:,} bytes in all",
        "checked 4 photo row(s) of the database",
        "ok: every row has its file, every file its row",
    ]
    assert snapshot(loaded, data_dir) == before  # read-only

    j = gisgrid("photos", "check", "--format", "json")
    assert j.code == 0
    data = json.loads(j.out)
    assert data["rows"] == 4 and data["problems"] == 0
    assert data["originals"] == {"files": 3, "bytes": originals}
    assert data["copies"] == {"files": 1, "bytes": copies}
    assert data["total"] == {"files": 4, "bytes": originals + copies}
    assert data["missing"] == data["damaged"] == data["unreferenced"] == data["foreign"] == data["stale_copies"] == []


def test_problems_are_listed_and_exit_3(
    stocked: dict[str, bytes], gisgrid: Gisgrid, data_dir: Path, loaded: Engine
) -> None:
    a, b, c = stocked["a"], stocked["b"], stocked["c"]
    path_of(data_dir, b).unlink()  # missing: two case rows reference it
    damaged = path_of(data_dir, c)
    damaged.write_bytes(c[:-10] + b"0123456789")  # same size, other bytes: the component's photo
    stray = picture(color=(1, 2, 3))  # an original no row references, with a thumbnail of its own
    stray_path = path_of(data_dir, stray)
    stray_path.parent.mkdir(parents=True)
    stray_path.write_bytes(stray)
    PhotoStore(data_dir / "photos").thumbnail(sha(stray))
    leftover = path_of(data_dir, a).parent / f".{sha(a)}.jpg.0123456789abcdef.tmp"  # a crash's dot-file
    leftover.write_bytes(b"half")
    with loaded.connect() as conn:
        b_rows = conn.execute(text("SELECT case_id, id FROM case_photos WHERE sha256 = :s ORDER BY id"), {"s": sha(b)})
        (case1, photo1), (case2, photo2) = b_rows.all()
    before = snapshot(loaded, data_dir)

    r = gisgrid("photos", "check", "--format", "json")

    assert r.code == 3, (r.out, r.err)
    data = json.loads(r.out)
    b_rel = path_of(data_dir, b).relative_to(data_dir / "photos").as_posix()
    assert [(m["kind"], m["owner"], m["photo_id"], m["relpath"]) for m in data["missing"]] == [
        ("case", str(case1), photo1, b_rel),
        ("case", str(case2), photo2, b_rel),
    ]
    assert [(d["kind"], d["owner"], d["sha256"], d["found_sha256"]) for d in data["damaged"]] == [
        ("component", COMPONENT, sha(c), sha(damaged.read_bytes()))
    ]
    stray_rel = stray_path.relative_to(data_dir / "photos").as_posix()
    assert data["unreferenced"] == [{"relpath": stray_rel, "size": len(stray)}]
    assert data["foreign"] == [{"relpath": leftover.relative_to(data_dir / "photos").as_posix(), "size": 4}]
    assert [f["relpath"] for f in data["stale_copies"]] == [stray_rel.replace(".jpg", ".t320.jpg")]
    assert data["rows"] == 4 and data["problems"] == 5
    assert data["originals"]["files"] == 3  # a, damaged c, the stray; b is gone
    assert data["copies"]["files"] == 2 and data["total"]["files"] == 6
    assert snapshot(loaded, data_dir) == before  # read-only: nothing removed or mended

    t = gisgrid("photos", "check")
    assert t.code == 3
    assert f"缺失 missing: case {case1} photo {photo1} {b_rel}" in t.out.splitlines()
    assert f"已损坏 damaged: component {COMPONENT} {path_of(data_dir, c).relative_to(data_dir / 'photos')}" in t.out
    assert f"无引用 unreferenced: {stray_rel} ({len(stray):,} bytes)" in t.out.splitlines()
    assert t.out.splitlines()[-1] == "5 problem(s): 2 missing, 1 damaged, 1 unreferenced, 1 foreign"


def test_no_photo_folder_is_clean_when_no_row_has_a_photo(loaded: Engine, gisgrid: Gisgrid, data_dir: Path) -> None:
    assert not (data_dir / "photos").exists()
    r = gisgrid("photos", "check")
    assert r.code == 0, r.err
    assert r.out.splitlines()[1:] == [
        "checked 0 photo row(s) of the database",
        "ok: every row has its file, every file its row",
    ]


def test_an_unreachable_database_exits_1(
    unreachable_settings: Settings, gisgrid: Gisgrid, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1, not 2: the check did not run (a monitor must not read it as "problems found")."""
    monkeypatch.setenv("GISGRID_DATABASE_URL", unreachable_settings.database_url or "")
    r = gisgrid("photos", "check")
    assert (r.code, r.out) == (1, "")
    assert r.err.startswith("error: ") and r.err.count("\n") == 1 and "Traceback" not in r.err


def _age(path: Path, hours: float) -> None:
    """Make ``path`` look untouched for ``hours``."""
    import os
    import time

    t = time.time() - hours * 3600
    os.utime(path, (t, t))


def test_prune_sets_aside_old_unneeded_files_and_cp_puts_them_back(
    stocked: dict[str, bytes], gisgrid: Gisgrid, data_dir: Path, loaded: Engine, tmp_path: Path
) -> None:
    """Unreferenced originals with their copies, and a crash's .tmp, untouched for a day: moved (same paths) into
    --to; a recent unreferenced file, referenced files, the copy of a missing original and a foreign file stay."""
    store = data_dir / "photos"
    a, b = stocked["a"], stocked["b"]
    old, new = picture(color=(1, 2, 3)), picture(color=(4, 5, 6))
    for pic in (old, new):
        path_of(data_dir, pic).parent.mkdir(parents=True, exist_ok=True)
        path_of(data_dir, pic).write_bytes(pic)
    PhotoStore(store).thumbnail(sha(old))
    PhotoStore(store).thumbnail(sha(b))
    path_of(data_dir, b).unlink()  # missing: its thumbnail is kept
    leftover = path_of(data_dir, a).parent / f".{sha(a)}.jpg.0123456789abcdef.tmp"
    leftover.write_bytes(b"half")
    note = store / "README.txt"  # foreign, not a leftover: left
    note.write_text("x")
    for f in store.rglob("*"):
        if f.is_file():
            _age(f, 30)
    _age(path_of(data_dir, new), 2)  # unreferenced but recent
    rel = lambda p: p.relative_to(store).as_posix()  # noqa: E731
    old_thumb = path_of(data_dir, old).with_name(f"{sha(old)}.t320.jpg")
    expected = sorted([rel(path_of(data_dir, old)), rel(old_thumb), rel(leftover)])
    aside = tmp_path / "aside"

    dry = gisgrid("photos", "prune", "--to", str(aside), "--dry-run", "--format", "json")
    assert dry.code == 0, (dry.out, dry.err)
    data = json.loads(dry.out)
    assert [f["relpath"] for f in data["set_aside"]] == expected
    assert [f["relpath"] for f in data["kept_recent"]] == [rel(path_of(data_dir, new))]
    assert not aside.exists() and path_of(data_dir, old).is_file()  # nothing moved

    r = gisgrid("photos", "prune", "--to", str(aside))
    assert r.code == 0, (r.out, r.err)
    assert f"已移出 set aside: {rel(path_of(data_dir, old))} ({len(old):,} bytes)" in r.out.splitlines()
    assert "已移出 3 个文件 / set aside 3 file(s)" in r.out
    assert sorted(rel_p.relative_to(aside).as_posix() for rel_p in aside.rglob("*") if rel_p.is_file()) == expected
    assert (aside / rel(path_of(data_dir, old))).read_bytes() == old
    for kept in (
        path_of(data_dir, a),
        path_of(data_dir, new),
        note,
        path_of(data_dir, b).with_name(f"{sha(b)}.t320.jpg"),
    ):
        assert kept.is_file(), kept
    assert not path_of(data_dir, old).exists() and not leftover.exists()

    again = gisgrid("photos", "check", "--format", "json")  # the missing b is still reported; old is gone
    assert [f["relpath"] for f in json.loads(again.out)["unreferenced"]] == [rel(path_of(data_dir, new))]

    import shutil

    shutil.copytree(aside, store, dirs_exist_ok=True)  # what `cp -a aside/. photos/` does
    assert path_of(data_dir, old).read_bytes() == old


def test_a_file_a_report_saves_again_is_renewed_and_not_pruned(
    stocked: dict[str, bytes],
    services: svc.CaseServices,
    gisgrid: Gisgrid,
    data_dir: Path,
    loaded: Engine,
    spot: tuple[float, float],
    tmp_path: Path,
) -> None:
    """Saving bytes the store already holds renews the file's time: an old unreferenced photo a new report sends
    again is not set aside (the report's row may not be committed yet when prune looks)."""
    pic = picture(color=(7, 8, 9))
    path_of(data_dir, pic).parent.mkdir(parents=True, exist_ok=True)
    path_of(data_dir, pic).write_bytes(pic)
    _age(path_of(data_dir, pic), 48)
    from gisgrid.photos import inspect_photo

    services.photos.save(pic, inspect_photo(pic))  # what intake does before its row commits

    r = gisgrid("photos", "prune", "--to", str(tmp_path / "aside"), "--format", "json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["set_aside"] == [] and path_of(data_dir, pic).is_file()


def test_prune_refuses_a_folder_inside_the_store(stocked: dict[str, bytes], gisgrid: Gisgrid, data_dir: Path) -> None:
    r = gisgrid("photos", "prune", "--to", str(data_dir / "photos" / "old"))
    assert r.code == 3 and r.out == ""
    assert r.err.startswith(f"error: --to {data_dir / 'photos' / 'old'} 在照片存储之内 is inside the photo store")
    assert not (data_dir / "photos" / "old").exists()
