"""A photo store that cannot be written (full, read-only) is told as such, not as a database outage (review46 F1):
503 ``photo_store_error``, reason ``photo_store_unavailable``, zh-CN first, naming the setting (not the server's
path); logged as a photo-store error with its errno and free space; nothing filed without its photos."""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.main import create_app
from gisgrid.settings import Settings
from tests.fixtures import row_count
from tests.test_cases import _jpeg

LEAD = {"X-Role": "shift_lead"}


def _client(settings: Settings, data: Path) -> TestClient:
    return TestClient(create_app(settings.model_copy(update={"data_dir": data})))


def _report(client: TestClient, spot: tuple[float, float], shade: int) -> Any:
    x, y = spot
    form = {"class_code": "06010", "lon": str(x), "lat": str(y), "datum": "cgcs2000"}
    photos = {"photos": ("p.jpg", _jpeg(shade), "image/jpeg")}
    # Asked in Chinese: the English message, its Chinese beside it in message_zh (as every refusal's).
    return client.post("/cases/form", data=form, files=photos, headers={**LEAD, "Accept-Language": "zh-CN"})


def _refused_for_the_store(r: Any, records: list[logging.LogRecord], zh: str, name: str, zh_asked: bool = True) -> None:
    body = r.json()
    assert r.status_code == 503 and r.headers["cache-control"] == "no-store", r.text
    assert (body["error"], body["reason"]) == ("photo_store_error", "photo_store_unavailable")
    ref = body["ref"]
    assert body["detail"] == (
        f"the photo store (GISGRID_DATA_DIR/photos) cannot be written: "
        f"{os.strerror(getattr(errno, name))} ({name}); nothing was saved, try again later (reference {ref})"
    )
    assert body.get("message_zh") == (f"{zh},本次提交未保存" if zh_asked else None)
    lines = [rec.getMessage() for rec in records if ref in rec.getMessage()]
    assert len(lines) == 1 and records[-1].levelno == logging.ERROR
    assert f"503 photo_store_error ref={ref}: photo store error (errno {getattr(errno, name)}): writing " in lines[0]
    assert f"[{name}] " in lines[0] and " on the photo store (" in lines[0]  # the path and free space: log only
    assert "PostgreSQL" not in lines[0] and "database" not in lines[0]


def test_a_report_on_a_full_photo_disk_is_refused_for_the_store_not_the_database(
    loaded: Engine, settings: Settings, spot: tuple[float, float], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    data = tmp_path / "data"

    def full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with _client(settings, data) as client, caplog.at_level(logging.WARNING, logger="gisgrid"):
        monkeypatch.setattr(os, "fsync", full)  # the write itself: its temporary file is written, then the disk is full
        r = _report(client, spot, 71)
        monkeypatch.undo()
        _refused_for_the_store(r, caplog.records, "照片存储空间已满", "ENOSPC")
        assert "free " in caplog.records[-1].getMessage()
        assert row_count(loaded, "cases") == 0 and row_count(loaded, "case_photos") == 0  # nothing half-written
        assert [p for p in (data / "photos").rglob("*") if p.is_file()] == []  # no temporary file left
        assert _report(client, spot, 71).status_code == 201  # the disk freed: the same report is filed


def test_a_report_and_an_action_with_an_unwritable_photo_store(
    loaded: Engine, settings: Settings, spot: tuple[float, float], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``photos`` is a file, not a folder: no photo can be written, as on a read-only mount (chmod would not stop
    root). Before: a report 503 "数据库暂不可用", an action with a photo 500."""
    data = tmp_path / "data"
    with _client(settings, data) as client, caplog.at_level(logging.WARNING, logger="gisgrid"):
        filed = client.post(
            "/cases", json={"class_code": "06010", "lon": spot[0], "lat": spot[1], "datum": "cgcs2000"}, headers=LEAD
        )
        assert filed.status_code == 201, filed.text
        cid = filed.json()["id"]
        assert client.post(f"/cases/{cid}/actions/request_verify", json={"version": 1}, headers=LEAD).status_code == 200
        (data / "photos").parent.mkdir(parents=True, exist_ok=True)
        (data / "photos").write_bytes(b"not a folder")
        _refused_for_the_store(_report(client, spot, 72), caplog.records, "照片存储读写失败", "ENOTDIR")
        acted = client.post(
            f"/cases/{cid}/actions/verify/form",
            data={"version": "2"},
            files={"photos": ("v.jpg", _jpeg(73), "image/jpeg")},
            headers={"X-Role": "supervisor"},
        )
        _refused_for_the_store(acted, caplog.records, "照片存储读写失败", "ENOTDIR", zh_asked=False)
        assert client.get(f"/cases/{cid}").json()["version"] == 2  # the action was not taken
        assert row_count(loaded, "cases") == 1 and row_count(loaded, "case_photos") == 0


def test_a_thumbnail_that_cannot_be_kept_is_served_as_the_original(
    loaded: Engine, settings: Settings, spot: tuple[float, float], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """Before: 500 internal_error for every thumbnail not yet made while the disk was full."""
    data = tmp_path / "data"

    def full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with _client(settings, data) as client, caplog.at_level(logging.WARNING, logger="gisgrid"):
        filed = _report(client, spot, 74)
        assert filed.status_code == 201, filed.text
        cid = filed.json()["id"]
        sha = client.get(f"/cases/{cid}").json()["photos"][0]["sha256"]
        monkeypatch.setattr(os, "fsync", full)
        r = client.get(f"/cases/{cid}/photos/{sha}", params={"size": "thumb"})
        monkeypatch.undo()
        assert (r.status_code, r.headers["content-type"], r.content) == (200, "image/jpeg", _jpeg(74))
        assert list(data.joinpath("photos").rglob("*.t*.jpg")) == []  # nothing kept
        line = caplog.records[-1]
        assert line.levelno == logging.ERROR and "thumbnail not kept, the original served" in line.getMessage()
        assert f"(errno {errno.ENOSPC})" in line.getMessage()
        # The disk freed: the thumbnail is made and kept.
        again = client.get(f"/cases/{cid}/photos/{sha}", params={"size": "thumb"})
        assert again.status_code == 200 and len(list(data.joinpath("photos").rglob("*.t*.jpg"))) == 1
