"""A report that files nothing leaves no photo file behind (review43 D4): reports under one idempotency key with
different photos sent at once — one is filed, the others lose on the key after their photos were saved. The losing
write is simulated deterministically: its read misses the winner's case (as a concurrent read does)."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from gisgrid import case_intake
from gisgrid import cases as svc
from gisgrid.errors import Conflict, Reason
from tests.test_cases import GARBAGE, Intake, _jpeg, at, intake  # noqa: F401  (intake: the sync/async fixture)


class FirstReadMisses:
    """``_INTAKE_READ`` whose first answer does not see the case the key filed: the write then runs and loses."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.calls = 0

    def _blind(self, rows: list[Any]) -> list[Any]:
        self.calls += 1
        if self.calls == 1:
            return [{**dict(rows[0]), "existing": None, "existing_no": None, "existing_fingerprint": None}]
        return rows

    def rows(self, conn: Any, params: Any) -> list[Any]:
        return self._blind(self.real.rows(conn, params))

    async def rows_async(self, conn: Any, params: Any) -> list[Any]:
        return self._blind(await self.real.rows_async(conn, params))


def photo_files(root: Path) -> list[str]:
    """The stored photos (no thumbnails), by name."""
    return sorted(p.name for p in root.rglob("*.jpg") if p.name.count(".") == 1)


def sha_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_report_losing_on_its_key_removes_the_photo_it_saved(
    loaded: Engine,
    services: svc.CaseServices,
    intake: Intake,  # noqa: F811
    spot: tuple[float, float],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    x, y = spot
    first = case_intake.Intake(
        class_code=GARBAGE, lon=x, lat=y, datum="cgcs2000", idempotency_key="K-6", photos=[("a.jpg", _jpeg(10))]
    )
    intake(loaded, services, first, now=at("2025-09-26T10:00:00"))
    root = services.photos.root
    assert photo_files(root) == [f"{sha_of(_jpeg(10))}.jpg"]

    monkeypatch.setattr(case_intake, "_INTAKE_READ", FirstReadMisses(case_intake._INTAKE_READ))
    other = replace(first, photos=[("b.jpg", _jpeg(50)), ("c.jpg", _jpeg(90))])
    with pytest.raises(Conflict) as err:
        intake(loaded, services, other, now=at("2025-09-26T10:00:01"))
    assert err.value.reason == Reason.IDEMPOTENCY_KEY_REUSED
    assert case_intake._INTAKE_READ.calls == 2  # type: ignore[attr-defined]  # the write ran, and lost
    assert photo_files(root) == [f"{sha_of(_jpeg(10))}.jpg"]  # b and c removed, the filed case's kept
    with loaded.connect() as conn:
        assert conn.execute(text("SELECT sha256 FROM case_photos")).scalars().all() == [sha_of(_jpeg(10))]


def test_a_losing_reports_photo_that_another_case_holds_is_kept(
    loaded: Engine,
    services: svc.CaseServices,
    intake: Intake,  # noqa: F811
    spot: tuple[float, float],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Content-addressed: the file the losing report wrote is another case's photo too (its file had gone from
    the disk, the losing report stored it again) — it is kept, and the case's photo is whole again."""
    x, y = spot
    held = _jpeg(20)
    other_case = case_intake.Intake(class_code=GARBAGE, lon=x, lat=y, datum="cgcs2000", photos=[("p.jpg", held)])
    intake(loaded, services, other_case, now=at("2025-09-26T09:00:00"))
    (file,) = services.photos.root.rglob(f"{sha_of(held)}.jpg")
    file.unlink()

    first = replace(other_case, idempotency_key="K-7", photos=[("a.jpg", _jpeg(21))], description="一")
    intake(loaded, services, first, now=at("2025-09-26T10:00:00"))
    monkeypatch.setattr(case_intake, "_INTAKE_READ", FirstReadMisses(case_intake._INTAKE_READ))
    losing = replace(first, photos=[("b.jpg", held), ("c.jpg", _jpeg(60))])
    with pytest.raises(Conflict):
        intake(loaded, services, losing, now=at("2025-09-26T10:00:01"))
    assert photo_files(services.photos.root) == sorted([f"{sha_of(held)}.jpg", f"{sha_of(_jpeg(21))}.jpg"])


def test_concurrent_reports_under_one_key_with_different_photos_leave_no_unreferenced_file(
    loaded: Engine,
    services: svc.CaseServices,
    intake: Intake,  # noqa: F811
    spot: tuple[float, float],
) -> None:
    """The reviewer's race: six reports under one key, each with its own photo, sent at once."""
    x, y = spot
    base = case_intake.Intake(class_code=GARBAGE, lon=x, lat=y, datum="cgcs2000", idempotency_key="K-8")
    # shades 40 apart: a solid JPEG quantises near shades to the same bytes (31 and 32 do), and a report whose
    # photo is the winner's is its replay, not a loser
    items = [replace(base, photos=[(f"{i}.jpg", _jpeg(10 + 40 * i))]) for i in range(6)]
    assert len({sha_of(item.photos[0][1]) for item in items}) == 6
    results: list[object] = []
    barrier = threading.Barrier(len(items))

    def send(item: case_intake.Intake) -> None:
        barrier.wait()
        try:
            results.append(intake(loaded, services, item))
        except Exception as exc:  # collected and asserted below
            results.append(exc)

    threads = [threading.Thread(target=send, args=(item,)) for item in items]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(isinstance(r, tuple) for r in results) == 1
    with loaded.connect() as conn:
        referenced = conn.execute(text("SELECT sha256 FROM case_photos")).scalars().all()
    assert len(referenced) == 1
    assert photo_files(services.photos.root) == [f"{referenced[0]}.jpg"]
