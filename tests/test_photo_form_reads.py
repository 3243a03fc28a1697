"""A photo form costs one part's read when it is bad (review54 F4): the number of photo parts is checked before any
is read, and each part's first bytes (JPEG, PNG, WebP, HEIF) as soon as it is read — the refusal is the one the
service gives (``photo_not_an_image`` …, naming ``photos[i]``), the parts after it never read. A report relayed as
the public's (source ``public_app``) has the public's pixel budget, whoever relays it."""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import Engine
from starlette.datastructures import UploadFile

from gisgrid.photos import MAX_PIXELS, SUPPORTED, has_image_magic
from tests.fixtures import row_count

SUPERVISOR = {"X-Actor": quote("监督员甲"), "X-Role": "supervisor"}
EDITOR = {"X-Actor": "li", "X-Role": "data_admin"}
GARBAGE, LAMP = "06010", "01037"
NOISE = bytes(range(256)) * 4096  # 1 MB that is no image


def jpeg(seed: int, size: tuple[int, int] = (80, 50)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (seed * 20 % 256, 120, 60)).save(buf, "JPEG", quality=80)
    return buf.getvalue()


def png(width: int, height: int, seed: int) -> bytes:
    im = Image.new("1", (width, height), 0)
    im.putpixel((seed, seed), 1)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the uploaded parts read, in order (every read of a part's bytes is the framework's
    ``UploadFile.read``)."""
    seen: list[str] = []
    real = UploadFile.read

    async def read(self: UploadFile, size: int = -1) -> bytes:
        seen.append(self.filename or "")
        return await real(self, size)

    monkeypatch.setattr(UploadFile, "read", read)
    return seen


def not_an_image(i: int, name: str) -> dict[str, Any]:
    why = f"photo {name!r} is not an image (its content is not JPEG, PNG, WebP, HEIC/HEIF)"
    return {
        "error": "invalid_input",
        "reason": "photo_not_an_image",
        "detail": {
            "message": f"photos[{i}]: {why}",
            "items": [{"field": f"photos[{i}]", "reason": why, "code": "photo_not_an_image"}],
        },
    }


def test_the_leading_bytes_of_each_accepted_format() -> None:
    assert [has_image_magic(b) for b in (jpeg(1), png(3, 3, 1), b"RIFF\0\0\0\0WEBPVP8 ", b"\0\0\0\x18ftypheic")] == [
        True, True, True, True,
    ]  # fmt: skip
    assert [has_image_magic(b) for b in (b"", b"<html>", b"GIF89a", NOISE, b"RIFF\0\0\0\0WAVEfmt ")] == [
        False, False, False, False, False,
    ]  # fmt: skip


def test_a_report_with_too_many_photos_is_refused_before_any_is_read(
    district_api: TestClient, spot: tuple[float, float], reads: list[str]
) -> None:
    form = {"class_code": GARBAGE, "lon": str(spot[0]), "lat": str(spot[1]), "datum": "cgcs2000"}
    files = [("photos", (f"p{i}.jpg", NOISE, "image/jpeg")) for i in range(11)]
    r = district_api.post("/cases/form", data=form, files=files)
    assert (r.status_code, r.json()) == (
        422,
        {
            "error": "invalid_input",
            "reason": "too_many_photos",
            "detail": {
                "message": "photos: at most 10 photos in one request, got 11",
                "items": [
                    {"field": "photos", "reason": "11 photos", "code": "too_many_photos", "limit": {"max_items": 10}}
                ],
            },
        },
    )
    assert reads == []


def test_a_report_is_refused_at_its_first_part_that_is_no_image_the_rest_unread(
    district_api: TestClient, clean_db: Engine, spot: tuple[float, float], reads: list[str]
) -> None:
    form = {
        "class_code": GARBAGE,
        "lon": str(spot[0]),
        "lat": str(spot[1]),
        "datum": "cgcs2000",
        "source": "public_app",
    }
    files = [("photos", (f"p{i}.jpg", NOISE, "image/jpeg")) for i in range(10)]
    r = district_api.post("/cases/form", data=form, files=files)
    assert (r.status_code, r.json(), reads) == (422, not_an_image(0, "p0.jpg"), ["p0.jpg"])
    reads.clear()
    files = [("photos", ("a.jpg", jpeg(1), "image/jpeg")), ("photos", ("b.gif", b"", "image/gif"))]
    files += [("photos", (f"p{i}.jpg", NOISE, "image/jpeg")) for i in range(3)]
    r = district_api.post("/cases/form", data=form, files=files, headers=SUPERVISOR)
    why = "photo 'b.gif' is empty"
    assert (r.status_code, r.json(), reads) == (
        422,
        {
            "error": "invalid_input",
            "reason": "photo_not_an_image",
            "detail": {
                "message": f"photos[1]: {why}",
                "items": [{"field": "photos[1]", "reason": why, "code": "photo_not_an_image"}],
            },
        },
        ["a.jpg", "b.gif"],
    )
    reads.clear()
    gif = io.BytesIO()
    Image.new("RGB", (4, 4)).save(gif, "GIF")  # an image, of a format not taken: named as today
    r = district_api.post("/cases/form", data=form, files=[("photos", ("x.gif", gif.getvalue(), "image/gif"))])
    assert (r.status_code, r.json()["reason"], reads) == (422, "photo_unsupported_format", ["x.gif"])
    accepted = "JPEG, PNG, WebP" + (", HEIC/HEIF" if "HEIF" in SUPPORTED else "")
    assert (
        r.json()["detail"]["message"] == f"photos[0]: photo 'x.gif': unsupported image format GIF; accepted: {accepted}"
    )
    assert row_count(clean_db, "cases") == 0
    reads.clear()
    good = [("photos", (f"g{i}.jpg", jpeg(i), "image/jpeg")) for i in range(2)]
    assert district_api.post("/cases/form", data=form, files=good).status_code == 201
    assert reads == ["g0.jpg", "g1.jpg"]


def test_an_action_and_a_components_photos_are_read_the_same_way(
    district_api: TestClient, spot: tuple[float, float], reads: list[str]
) -> None:
    client = district_api
    case = client.post(
        "/cases", json={"class_code": GARBAGE, "lon": spot[0], "lat": spot[1], "datum": "cgcs2000"}, headers=SUPERVISOR
    )
    assert case.status_code == 201, case.text
    files = [("photos", ("ok.jpg", jpeg(3), "image/jpeg"))]
    files += [("photos", (f"p{i}.jpg", NOISE, "image/jpeg")) for i in range(4)]
    r = client.post(
        f"/cases/{case.json()['id']}/actions/verify/form", data={"version": "1"}, files=files, headers=SUPERVISOR
    )
    assert (r.status_code, r.json(), reads) == (422, not_an_image(1, "p0.jpg"), ["ok.jpg", "p0.jpg"])
    assert client.get(f"/cases/{case.json()['id']}").json()["version"] == 1
    reads.clear()
    made = client.post(
        "/components", json={"class_code": LAMP, "lon": spot[0], "lat": spot[1], "datum": "cgcs2000"}, headers=EDITOR
    )
    assert made.status_code == 201, made.text
    cid = made.json()["id"]
    r = client.post(f"/components/{cid}/photos", files=files[1:], headers=EDITOR)
    assert (r.status_code, r.json(), reads) == (422, not_an_image(0, "p0.jpg"), ["p0.jpg"])
    reads.clear()
    many = [("photos", (f"p{i}.jpg", NOISE, "image/jpeg")) for i in range(11)]
    r = client.post(f"/components/{cid}/photos", files=many, headers=EDITOR)
    assert (r.status_code, r.json()["reason"], reads) == (422, "too_many_photos", [])
    assert client.get(f"/components/{cid}").json()["properties"]["photos"] in ([], None)


def test_a_report_relayed_as_the_publics_has_the_publics_pixel_budget(
    district_api: TestClient, clean_db: Engine, spot: tuple[float, float]
) -> None:
    """An intake system relaying a public app's report (source public_app): its photos are the public's, 50 MP
    together; its hotline reports keep the staff's 150 MP."""
    w, h = 5000, 5000  # 25 MP each: two fit a public report, three do not
    files = [("photos", (f"p{i}.png", png(w, h, i), "image/png")) for i in range(3)]
    form = {"class_code": GARBAGE, "lon": str(spot[0]), "lat": str(spot[1]), "datum": "cgcs2000"}
    system = {"X-Actor": "12345", "X-Role": "intake_system"}
    r = district_api.post("/cases/form", data={**form, "source": "public_app"}, files=files, headers=system)
    assert r.status_code == 422, r.text
    assert r.json()["detail"]["message"] == (
        f"photos[2]: with this photo ({w * h} pixels) the request's photos hold {3 * w * h} pixels, at most "
        f"{MAX_PIXELS} in one public report; send fewer or smaller photos"
    )
    assert row_count(clean_db, "cases") == 0
    assert (
        district_api.post("/cases/form", data={**form, "source": "hotline"}, files=files, headers=system).status_code
        == 201
    )
