"""Photos: decoding by content, EXIF time and GPS, refusals, content-addressed atomic store."""

from __future__ import annotations

import hashlib
import io
import os
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from PIL import ExifTags, Image
from PIL.TiffImagePlugin import IFDRational

from gisgrid import photos
from gisgrid.errors import InvalidInput, NotFound, PhotoStoreUnavailable, Reason
from gisgrid.photos import MAX_PIXELS, PhotoStore, inspect_photo

Dms = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]

LAT_DMS: Dms = ((34, 1), (45, 1), (1234, 100))
LON_DMS: Dms = ((113, 1), (37, 1), (5678, 100))
LAT = 34 + 45 / 60 + 12.34 / 3600
LON = 113 + 37 / 60 + 56.78 / 3600


def _exif(
    *,
    lat: Any = LAT_DMS,
    lon: Any = LON_DMS,
    lat_ref: str | None = "N",
    lon_ref: str | None = "E",
    gps: bool = True,
    taken: str | None = "2024:05:06 07:08:09",
    offset: str | None = "+08:00",
    status: str | None = None,
    error_m: tuple[int, int] | None = None,
) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "TestPhone"
    if gps:
        ifd = exif.get_ifd(ExifTags.IFD.GPSInfo)  # 0x8825
        if lat_ref is not None:
            ifd[ExifTags.GPS.GPSLatitudeRef] = lat_ref
        if lon_ref is not None:
            ifd[ExifTags.GPS.GPSLongitudeRef] = lon_ref
        ifd[ExifTags.GPS.GPSLatitude] = tuple(IFDRational(n, d) for n, d in lat)
        ifd[ExifTags.GPS.GPSLongitude] = tuple(IFDRational(n, d) for n, d in lon)
        if status is not None:
            ifd[ExifTags.GPS.GPSStatus] = status
        if error_m is not None:
            ifd[ExifTags.GPS.GPSHPositioningError] = IFDRational(*error_m)
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    if taken is not None:
        sub[ExifTags.Base.DateTimeOriginal] = taken
    if offset is not None:
        sub[ExifTags.Base.OffsetTimeOriginal] = offset
    return exif


def _image(size: tuple[int, int] = (64, 48), *, noise: bool = False) -> Image.Image:
    im = Image.new("RGB", size, (30, 120, 200))
    if noise:  # incompressible content, so that cutting the file cuts image data
        rnd = random.Random(7)
        im.putdata([(rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)) for _ in range(size[0] * size[1])])
    return im


def _write(tmp_path: Path, name: str, im: Image.Image, fmt: str, exif: Image.Exif | None = None) -> bytes:
    path = tmp_path / name
    kwargs: dict[str, Any] = {"exif": exif.tobytes()} if exif is not None else {}
    im.save(path, format=fmt, **kwargs)
    return path.read_bytes()


def _jpeg(tmp_path: Path, name: str = "case.jpg", **exif_args: Any) -> bytes:
    return _write(tmp_path, name, _image(), "JPEG", _exif(**exif_args))


# --- inspect ----------------------------------------------------------------------------------------------------


def test_jpeg_with_gps_and_time(tmp_path: Path) -> None:
    data = _jpeg(tmp_path)
    info = inspect_photo(data, filename="case.jpg")
    assert info.format == "JPEG"
    assert info.content_type == "image/jpeg"
    assert (info.width, info.height) == (64, 48)
    assert info.size == len(data)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.gps is not None
    lon, lat = info.gps
    assert lon == pytest.approx(LON, abs=1e-7)
    assert lat == pytest.approx(LAT, abs=1e-7)
    assert info.gps_datum == "wgs84"
    assert info.taken_at == datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone(timedelta(hours=8)))
    assert info.taken_at.utcoffset() == timedelta(hours=8)
    assert info.taken_at_local == datetime(2024, 5, 6, 7, 8, 9)


@pytest.mark.parametrize(("lat_ref", "lon_ref", "sign_lon", "sign_lat"), [("S", "W", -1, -1), ("S", "E", 1, -1)])
def test_south_west_refs_are_negative(tmp_path: Path, lat_ref: str, lon_ref: str, sign_lon: int, sign_lat: int) -> None:
    info = inspect_photo(_jpeg(tmp_path, lat_ref=lat_ref, lon_ref=lon_ref))
    assert info.gps is not None
    assert info.gps[0] == pytest.approx(sign_lon * LON, abs=1e-7)
    assert info.gps[1] == pytest.approx(sign_lat * LAT, abs=1e-7)


def test_no_gps_no_time(tmp_path: Path) -> None:
    info = inspect_photo(_jpeg(tmp_path, gps=False, taken=None, offset=None))
    assert info.gps is None
    assert info.gps_datum is None
    assert info.taken_at is None
    assert info.taken_at_local is None
    plain = inspect_photo(_write(tmp_path, "plain.jpg", _image(), "JPEG"))
    assert plain.gps is None and plain.taken_at is None


def test_time_without_offset_is_not_guessed(tmp_path: Path) -> None:
    info = inspect_photo(_jpeg(tmp_path, offset=None))
    assert info.taken_at is None
    assert info.taken_at_local == datetime(2024, 5, 6, 7, 8, 9)


@pytest.mark.parametrize(
    "exif_args",
    [
        pytest.param({"lat": ((0, 1), (0, 1), (0, 1)), "lon": ((0, 1), (0, 1), (0, 1))}, id="zero-no-fix"),
        pytest.param({"lat_ref": None}, id="missing-lat-ref"),
        pytest.param({"lon_ref": "X"}, id="bad-lon-ref"),
        pytest.param({"lat": ((34, 1), (75, 1), (0, 1))}, id="minutes-over-60"),
        pytest.param({"lat": ((95, 1), (0, 1), (0, 1))}, id="lat-over-90"),
        pytest.param({"lon": ((181, 1), (0, 1), (0, 1))}, id="lon-over-180"),
    ],
)
def test_bad_gps_is_none(tmp_path: Path, exif_args: dict[str, Any]) -> None:
    info = inspect_photo(_jpeg(tmp_path, **exif_args))
    assert info.gps is None
    assert info.gps_datum is None
    assert info.taken_at is not None  # the rest of the EXIF still counts


@pytest.mark.parametrize(
    ("exif_args", "problem"),
    [
        pytest.param(
            {"status": "V"},
            "its GPS fix is marked void (GPSStatus V: the camera had no fix when the photo was taken)",
            id="void",
        ),
        pytest.param(
            {"error_m": (3505, 10)},
            "its GPS fix is off by up to 350 m (GPSHPositioningError; at most 50 m)",
            id="error-350-m",
        ),
    ],
)
def test_a_void_or_coarse_fix_locates_nothing_and_says_why(
    tmp_path: Path, exif_args: dict[str, Any], problem: str
) -> None:
    """A stale fix (void) or a network fix hundreds of metres off would pick a wrong unit grid and link a wrong
    component: no position, and the reason for a refusal's message."""
    info = inspect_photo(_jpeg(tmp_path, **exif_args))
    assert (info.gps, info.gps_datum, info.gps_problem) == (None, None, problem)


@pytest.mark.parametrize("exif_args", [{"status": "A"}, {"error_m": (50, 1)}, {"error_m": (1, 0)}], ids=str)
def test_an_active_fix_within_50_m_locates(tmp_path: Path, exif_args: dict[str, Any]) -> None:
    info = inspect_photo(_jpeg(tmp_path, **exif_args))
    assert info.gps == pytest.approx((LON, LAT), abs=1e-7) and info.gps_problem is None


def test_zero_denominator_gps_is_none() -> None:
    # Pillow will not write a 0 denominator, so the parser is fed what it reads back: IFDRationals or raw pairs.
    good = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (IFDRational(34, 1), IFDRational(45, 1), IFDRational(1234, 100)),
        ExifTags.GPS.GPSLongitudeRef: "E",
        ExifTags.GPS.GPSLongitude: ((113, 1), (37, 1), (5678, 100)),  # raw pairs, as some writers give them
    }
    assert photos._exif_gps(good) == pytest.approx((LON, LAT), abs=1e-7)
    bad_lat = (IFDRational(34, 0), IFDRational(45, 1), IFDRational(0, 1))
    assert photos._exif_gps({**good, ExifTags.GPS.GPSLatitude: bad_lat}) is None
    assert photos._exif_gps({**good, ExifTags.GPS.GPSLongitude: ((113, 1), (37, 1), (5678, 0))}) is None
    assert photos._exif_gps({**good, ExifTags.GPS.GPSLongitude: "garbage"}) is None
    assert photos._exif_gps({**good, ExifTags.GPS.GPSLongitude: (b"\x01", None)}) is None


def test_png(tmp_path: Path) -> None:
    data = _write(tmp_path, "shot.png", _image((20, 10)), "PNG", _exif(lat_ref="N", lon_ref="E"))
    info = inspect_photo(data)
    assert (info.format, info.content_type, info.width, info.height) == ("PNG", "image/png", 20, 10)
    assert info.gps == pytest.approx((LON, LAT), abs=1e-7)


def test_webp(tmp_path: Path) -> None:
    info = inspect_photo(_write(tmp_path, "shot.webp", _image(), "WEBP", _exif()))
    assert (info.format, info.content_type) == ("WEBP", "image/webp")
    assert info.gps == pytest.approx((LON, LAT), abs=1e-7)


def test_extension_is_not_trusted(tmp_path: Path) -> None:
    # A PNG named .jpg is a PNG; a text file named .jpg is refused as not an image.
    png = _write(tmp_path, "really-png.jpg", _image(), "PNG")
    assert inspect_photo(png, filename="really-png.jpg").content_type == "image/png"
    path = tmp_path / "notes.jpg"
    path.write_text("这不是照片 / this is not a photo\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"photo 'notes\.jpg' is not an image") as exc:
        inspect_photo(path.read_bytes(), filename="notes.jpg")
    assert exc.value.reason == Reason.PHOTO_NOT_AN_IMAGE


def test_empty_is_refused() -> None:
    with pytest.raises(InvalidInput, match=r"'a\.jpg' is empty") as exc:
        inspect_photo(b"", filename="a.jpg")
    assert exc.value.reason == Reason.PHOTO_NOT_AN_IMAGE


def test_unsupported_format_is_named(tmp_path: Path) -> None:
    gif = _write(tmp_path, "anim.gif", _image(), "GIF")
    with pytest.raises(InvalidInput, match=r"photo 'anim\.gif': unsupported image format GIF; accepted: JPEG") as exc:
        inspect_photo(gif, filename="anim.gif")
    assert exc.value.reason == Reason.PHOTO_UNSUPPORTED_FORMAT
    assert exc.value.detail == {"filename": "anim.gif", "format": "GIF"}
    bmp = _write(tmp_path, "x.bmp", _image(), "BMP")
    with pytest.raises(InvalidInput, match="unsupported image format BMP"):
        inspect_photo(bmp, filename="x.bmp")


@pytest.mark.parametrize(
    ("fmt", "name"), [("GIF", "GIF"), ("BMP", "BMP"), ("TIFF", "TIFF"), ("ICO", "ICO"), ("JPEG2000", "JPEG2000")]
)
def test_a_refused_format_is_named_by_its_first_bytes_not_by_pillow_s_other_plugins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, name: str
) -> None:
    """review54 F5: refused bytes are named from their magic bytes; Pillow is asked only for the accepted formats,
    so PSD, FITS, EPS … parsers never run on an anonymous upload."""
    data = _write(tmp_path, f"x.{fmt.lower()}", _image(), fmt)
    opened: list[object] = []
    real_open = photos.Image.open

    def watched(fp: object, mode: str = "r", formats: object = None) -> object:
        opened.append(None if formats is None else tuple(formats))  # type: ignore[arg-type]
        return real_open(fp, mode, formats)  # type: ignore[arg-type]

    monkeypatch.setattr(photos.Image, "open", watched)
    with pytest.raises(InvalidInput) as exc:
        inspect_photo(data, filename="x")
    assert (exc.value.reason, exc.value.detail) == (Reason.PHOTO_UNSUPPORTED_FORMAT, {"filename": "x", "format": name})
    assert opened and None not in opened and all(set(f) <= photos.SUPPORTED for f in opened)  # type: ignore[arg-type]


def test_a_psd_or_fits_header_is_named_and_other_bytes_are_not_an_image() -> None:
    """A PSD or FITS header is named by its magic bytes (its parser never runs); bytes no accepted format opens and
    no magic names are 'not an image'."""
    for data in (b"8BPS" + bytes(40), b"SIMPLE  =" + bytes(40)):
        with pytest.raises(InvalidInput) as exc:
            inspect_photo(data, filename="x")
        assert exc.value.reason == Reason.PHOTO_UNSUPPORTED_FORMAT  # named by its magic bytes
    with pytest.raises(InvalidInput) as exc:
        inspect_photo(b"hello, not an image" * 4, filename="x")
    assert (exc.value.reason, exc.value.detail) == (Reason.PHOTO_NOT_AN_IMAGE, {"filename": "x"})


def test_truncated_jpeg_is_refused(tmp_path: Path) -> None:
    data = _write(tmp_path, "big.jpg", _image((256, 256), noise=True), "JPEG")
    inspect_photo(data)  # the whole file is fine
    with pytest.raises(InvalidInput, match=r"photo 'cut\.jpg' is truncated or corrupt") as exc:
        inspect_photo(data[: len(data) * 6 // 10], filename="cut.jpg")
    assert exc.value.reason == Reason.PHOTO_CORRUPT


def test_a_truncated_jpeg_is_refused_also_after_a_library_relaxed_pillow(tmp_path: Path) -> None:
    """WeasyPrint (PDF orders) turns Pillow's process-wide LOAD_TRUNCATED_IMAGES on at import; a PDF made first
    must not let a truncated upload through afterwards (the suite found it: test_documents runs before this file)."""
    from PIL import ImageFile

    ImageFile.LOAD_TRUNCATED_IMAGES = True  # as WeasyPrint's import leaves it
    data = _write(tmp_path, "big.jpg", _image((256, 256), noise=True), "JPEG")
    with pytest.raises(InvalidInput, match=r"photo 'cut\.jpg' is truncated or corrupt"):
        inspect_photo(data[: len(data) * 6 // 10], filename="cut.jpg")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_corrupt_bytes_are_refused() -> None:
    rnd = random.Random(1)
    junk = b"\xff\xd8\xff\xe0" + bytes(rnd.randrange(256) for _ in range(2000))
    with pytest.raises(InvalidInput, match=r"photo 'junk\.jpg'"):
        inspect_photo(junk, filename="junk.jpg")
    png = io.BytesIO()
    _image().save(png, "PNG")
    broken = bytearray(png.getvalue())
    broken[60:80] = b"\x00" * 20  # inside the compressed IDAT data
    with pytest.raises(InvalidInput, match=r"photo 'broken\.png' is (truncated or )?corrupt"):
        inspect_photo(bytes(broken), filename="broken.png")


def test_too_many_bytes(tmp_path: Path) -> None:
    data = _jpeg(tmp_path)
    with pytest.raises(InvalidInput, match=rf"photo 'case\.jpg' is too large: {len(data)} bytes, at most 100") as exc:
        inspect_photo(data, max_bytes=100, filename="case.jpg")
    assert exc.value.reason == Reason.PHOTO_TOO_LARGE
    assert exc.value.detail["limit"] == {"max_bytes": 100}
    refused = photos.refused_photo(3, exc.value)  # as a request's refusal: item photos[3] with the bound
    assert (refused.reason, refused.message) == (Reason.PHOTO_TOO_LARGE, f"photos[3]: {exc.value.message}")
    assert refused.detail == [{"field": "photos[3]", "reason": exc.value.message, "limit": {"max_bytes": 100}}]
    assert inspect_photo(data, max_bytes=len(data)).size == len(data)


def test_too_many_pixels(tmp_path: Path) -> None:
    # 1-bit and uniform: ~50 MP that compress to a few kB, i.e. what a decompression bomb looks like.
    width, height = 8000, MAX_PIXELS // 8000 + 1
    buf = io.BytesIO()
    Image.new("1", (width, height)).save(buf, "PNG")
    assert len(buf.getvalue()) < 1024 * 1024
    with pytest.raises(InvalidInput, match=rf"'bomb\.png' is too large: 8000×{height}") as exc:
        inspect_photo(buf.getvalue(), filename="bomb.png")
    assert exc.value.reason == Reason.PHOTO_TOO_MANY_PIXELS
    assert exc.value.detail["limit"] == {"max_pixels": MAX_PIXELS}


HEIC_SAMPLE = Path(__file__).parent / "photo_samples" / "gps.heic"  # see photo_samples/README.md
HEIF_ENCODER = photos.HEIF_BACKEND == "pillow_heif"  # pi-heif decodes only


def test_heif_backend_is_installed() -> None:
    # The project installs pillow-heif (it encodes too, which the HEIC tests below need): a machine without it fails
    # here and in those tests, never skips them.
    assert photos.HEIF_AVAILABLE, "no HEIC backend: install pillow-heif (or pi-heif)"
    assert HEIF_ENCODER, "pi-heif decodes only: the HEIC tests need pillow-heif"
    assert "HEIF" in photos.SUPPORTED


def test_heic_sample_decodes() -> None:
    data = HEIC_SAMPLE.read_bytes()
    info = inspect_photo(data, filename="IMG_0001.HEIC")
    # read from the HEIC, stored as a JPEG (browsers cannot show HEIC)
    assert (info.format, info.content_type, info.width, info.height) == ("HEIF", "image/jpeg", 64, 48)
    assert info.gps == pytest.approx((LON, LAT), abs=1e-7)
    assert info.gps_datum == "wgs84"
    assert info.taken_at == datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone(timedelta(hours=8)))


def test_heic_is_stored_as_a_jpeg_with_its_exif(tmp_path: Path) -> None:
    data = HEIC_SAMPLE.read_bytes()
    info = inspect_photo(data, filename="IMG_0001.HEIC")
    assert info.converted is not None and info.converted[:3] == b"\xff\xd8\xff"
    assert info.sha256 == hashlib.sha256(info.converted).hexdigest() and info.size == len(info.converted)
    assert inspect_photo(data).sha256 == info.sha256  # the same photo again: the same stored file
    store = PhotoStore(tmp_path / "store")
    stored = store.save(data, info)
    assert stored.relpath.endswith(".jpg") and stored.content_type == "image/jpeg"
    kept = store.open(info.sha256).read_bytes()
    assert kept == info.converted
    with Image.open(io.BytesIO(kept)) as im:
        assert (im.format, im.size) == ("JPEG", (64, 48))
    again = inspect_photo(kept, filename="kept.jpg")  # the JPEG carries the HEIC's GPS and time
    assert again.gps == pytest.approx((LON, LAT), abs=1e-7) and again.taken_at == info.taken_at
    assert not list((tmp_path / "store").rglob("*.heic"))


def test_heic_round_trip(tmp_path: Path) -> None:
    data = _write(tmp_path, "IMG_0002.HEIC", _image(), "HEIF", _exif(lat_ref="S", lon_ref="W"))
    info = inspect_photo(data, filename="IMG_0002.HEIC")
    assert (info.format, info.content_type, info.width, info.height) == ("HEIF", "image/jpeg", 64, 48)
    assert info.gps == pytest.approx((-LON, -LAT), abs=1e-7)
    assert info.taken_at == datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone(timedelta(hours=8)))
    stored = PhotoStore(tmp_path / "store").save(data, info)
    assert stored.relpath.endswith(".jpg")
    assert stored.content_type == "image/jpeg"
    assert PhotoStore(tmp_path / "store").open(info.sha256).read_bytes() == info.converted


def test_heic_refused_without_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    # Whether or not a backend is installed here, a server without one must refuse HEIC clearly.
    monkeypatch.setattr(photos, "SUPPORTED", photos.SUPPORTED - {"HEIF"})
    with pytest.raises(InvalidInput, match=r"photo 'IMG_0001\.HEIC': HEIC/HEIF photos are not supported") as exc:
        inspect_photo(HEIC_SAMPLE.read_bytes(), filename="IMG_0001.HEIC")
    assert "pillow-heif" in exc.value.message
    assert "HEIC" not in exc.value.message.split("Accepted:")[1]
    assert exc.value.detail["format"] == "HEIF" and exc.value.reason == Reason.PHOTO_UNSUPPORTED_FORMAT


# --- store ------------------------------------------------------------------------------------------------------


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_store_is_content_addressed_and_idempotent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _jpeg(tmp_path)
    info = inspect_photo(data)
    root = tmp_path / "photos"
    store = PhotoStore(root)
    stored = store.save(data, info)
    sha = info.sha256
    assert stored.sha256 == sha
    assert stored.relpath == f"{sha[:2]}/{sha[2:4]}/{sha}.jpg"
    assert (stored.content_type, stored.size) == ("image/jpeg", len(data))
    assert _files(root) == [stored.relpath]  # atomic write: no temporary file left behind
    assert store.open(sha) == root / stored.relpath
    assert store.open(sha).read_bytes() == data

    def no_write(*args: object) -> None:
        raise AssertionError("the second save must not write")

    monkeypatch.setattr(photos.os, "replace", no_write)
    assert store.save(data, inspect_photo(data)) == stored
    assert _files(root) == [stored.relpath]


def test_the_store_is_readable_by_the_service_s_account_only(tmp_path: Path) -> None:
    """review54 F3: photos (faces, number plates) are 0600 in 0700 folders — every folder the store makes, up to
    the data folder — and so are the thumbnails made beside them, whatever the umask leaves."""
    old_umask = os.umask(0o022)
    try:
        data = _jpeg(tmp_path)
        root = tmp_path / "data" / "photos"
        store = PhotoStore(root)
        stored = store.save(data, inspect_photo(data))
        thumb = store.thumbnail(stored.sha256)
    finally:
        os.umask(old_umask)
    sha = stored.sha256
    made = [tmp_path / "data", root, root / sha[:2], root / sha[:2] / sha[2:4]]
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in made} == {p.name: "0o700" for p in made}
    assert [oct(p.stat().st_mode & 0o777) for p in (root / stored.relpath, thumb)] == ["0o600", "0o600"]


def test_store_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _jpeg(tmp_path)
    info = inspect_photo(data)
    root = tmp_path / "photos"

    def disk_full(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(photos.os, "replace", disk_full)
    with pytest.raises(PhotoStoreUnavailable, match=r"照片存储空间已满.*No space left on device \(ENOSPC\)") as err:
        PhotoStore(root).save(data, info)
    assert err.value.errno == 28 and str(root) in err.value.log_text and str(root) not in err.value.message
    assert _files(root) == []
    monkeypatch.undo()
    with pytest.raises(NotFound):
        PhotoStore(root).open(info.sha256)


def test_store_replaces_a_partial_file(tmp_path: Path) -> None:
    # A file of the right name but wrong size (e.g. copied in by hand, cut short) is rewritten.
    data = _jpeg(tmp_path)
    info = inspect_photo(data)
    store = PhotoStore(tmp_path / "photos")
    target = store.root / store.save(data, info).relpath
    target.write_bytes(data[:10])
    store.save(data, info)
    assert target.read_bytes() == data


def test_store_refuses_mismatch_and_path_tricks(tmp_path: Path) -> None:
    data = _jpeg(tmp_path)
    info = inspect_photo(data)
    store = PhotoStore(tmp_path / "photos")
    with pytest.raises(InvalidInput, match="do not match"):
        store.save(data + b"x", info)
    for bad in ("../../etc/passwd", "/etc/passwd", info.sha256.upper(), info.sha256[:-1], info.sha256 + "/..", ""):
        with pytest.raises(InvalidInput, match="not a photo id"):
            store.open(bad)
    with pytest.raises(NotFound):
        store.open("0" * 64)


def test_store_refuses_symlink_out_of_root(tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    store = PhotoStore(tmp_path / "photos")
    sha = "ab" * 32
    link = store.root / "ab" / "ab" / f"{sha}.jpg"
    link.parent.mkdir(parents=True)
    os.symlink(outside, link)
    with pytest.raises(InvalidInput, match="outside the photo store"):
        store.open(sha)


def test_store_from_settings(tmp_path: Path) -> None:
    from gisgrid.settings import Settings

    assert PhotoStore.from_settings(Settings(data_dir=tmp_path)).root == tmp_path.resolve() / "photos"


# --- thumbnails -------------------------------------------------------------------------------------------------


def _marked(size: tuple[int, int], orientation: int = 1) -> bytes:
    """A JPEG of ``size`` (as stored) with a red top-left quarter, and an EXIF Orientation."""
    im = Image.new("RGB", size, (30, 120, 200))
    im.paste((220, 20, 20), (0, 0, size[0] // 2, size[1] // 2))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    out = io.BytesIO()
    im.save(out, "JPEG", quality=90, exif=exif.tobytes())
    return out.getvalue()


def _stored(store: PhotoStore, data: bytes) -> str:
    info = inspect_photo(data)
    store.save(data, info)
    return info.sha256


def _red(im: Image.Image, xy: tuple[int, int]) -> bool:
    r, g, b = im.getpixel(xy)[:3]
    return r > 180 and g < 80 and b < 80


@pytest.mark.parametrize(
    ("size", "orientation", "thumb"),
    [
        ((4000, 3000), 1, (320, 240)),  # landscape phone photo
        ((3000, 4000), 1, (240, 320)),  # portrait
        ((1000, 600), 1, (320, 192)),
        ((4000, 3000), 6, (240, 320)),  # stored landscape, shown portrait (turned 90° clockwise)
        ((4000, 3000), 8, (240, 320)),  # turned 90° anticlockwise
        ((200, 100), 1, (200, 100)),  # smaller than a thumbnail: not enlarged
    ],
)
def test_thumbnail_size_and_orientation(
    tmp_path: Path, size: tuple[int, int], orientation: int, thumb: tuple[int, int]
) -> None:
    store = PhotoStore(tmp_path / "photos")
    sha = _stored(store, _marked(size, orientation))
    path = store.thumbnail(sha)
    assert path == store.open(sha).with_name(f"{sha}.t320.jpg")
    with Image.open(path) as im:
        assert (im.format, im.size) == ("JPEG", thumb)
        assert ExifTags.Base.Orientation not in im.getexif()  # applied, so not applied twice by a browser
        w, h = im.size
        corners = {"tl": (5, 5), "tr": (w - 6, 5), "bl": (5, h - 6), "br": (w - 6, h - 6)}
        red = {name for name, xy in corners.items() if _red(im, xy)}
    # Where the stored top-left (red) corner is shown: 6 turns it to the top right, 8 to the bottom left.
    assert red == {{1: "tl", 6: "tr", 8: "bl"}[orientation]}


def test_thumbnail_of_the_heic_sample_and_of_a_transparent_png(tmp_path: Path) -> None:
    store = PhotoStore(tmp_path / "photos")
    heic = (Path(__file__).parent / "photo_samples" / "gps.heic").read_bytes()
    info = inspect_photo(heic)
    store.save(heic, info)
    with Image.open(store.thumbnail(info.sha256)) as im:
        assert (im.format, im.size) == ("JPEG", (64, 48))
    png = io.BytesIO()
    Image.new("RGBA", (640, 400), (0, 0, 0, 0)).save(png, "PNG")
    sha = _stored(store, png.getvalue())
    with Image.open(store.thumbnail(sha)) as im:
        assert (im.format, im.mode, im.size, im.getpixel((0, 0))) == ("JPEG", "RGB", (320, 200), (255, 255, 255))


def test_print_copy_for_the_pdf_orders_is_upright_flat_and_made_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The photo a PDF order embeds: at most PRINT_MAX px, turned upright, transparency on white (as on paper),
    never enlarged, kept beside the original (and its thumbnail) and not made again."""
    store = PhotoStore(tmp_path / "photos")
    sha = _stored(store, _marked((4000, 3000), orientation=6))
    copy = store.print_copy(sha)
    assert copy == store.open(sha).with_name(f"{sha}.p1200.jpg") and photos.PRINT_MAX == 1200
    with Image.open(copy) as im:
        assert (im.format, im.size, _red(im, (im.width - 20, 20))) == ("JPEG", (900, 1200), True)
        assert ExifTags.Base.Orientation not in im.getexif()
    thumb = store.thumbnail(sha)
    assert _files(store.root) == sorted(f.relative_to(store.root).as_posix() for f in (store.open(sha), copy, thumb))

    half = Image.new("RGBA", (2400, 1600), (200, 30, 30, 255))
    half.paste((0, 0, 0, 0), (1200, 0, 2400, 1600))  # the right half transparent
    png = io.BytesIO()
    half.save(png, "PNG")
    small = io.BytesIO()
    Image.new("RGB", (100, 80), (30, 120, 200)).save(small, "PNG")
    shas = [_stored(store, png.getvalue()), _stored(store, small.getvalue())]
    with Image.open(store.print_copy(shas[0])) as im:
        assert (im.mode, im.size, _red(im, (300, 400)), im.getpixel((900, 400))) == (
            "RGB", (1200, 800), True, (255, 255, 255)
        )  # fmt: skip
    with Image.open(store.print_copy(shas[1])) as im:
        assert im.size == (100, 80)  # never enlarged

    def no_make(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("a print copy must not be made again")

    made = copy.read_bytes()
    monkeypatch.setattr(photos, "make_thumbnail", no_make)
    assert store.print_copy(sha) == copy and copy.read_bytes() == made


def test_thumbnail_is_made_once_then_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = PhotoStore(tmp_path / "photos")
    sha = _stored(store, _marked((1600, 1200)))
    first = store.thumbnail(sha)
    made = first.read_bytes()
    assert _files(store.root) == sorted([store.open(sha).relative_to(store.root).as_posix(),
                                         first.relative_to(store.root).as_posix()])  # fmt: skip

    def no_make(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("a cached thumbnail must not be made again")

    monkeypatch.setattr(photos, "make_thumbnail", no_make)
    assert store.thumbnail(sha) == first and first.read_bytes() == made
    monkeypatch.undo()
    assert photos.make_thumbnail(store.open(sha).read_bytes()) == made  # deterministic: same photo, same bytes


def test_thumbnail_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = PhotoStore(tmp_path / "photos")
    sha = _stored(store, _marked((1600, 1200)))
    original = store.open(sha).relative_to(store.root).as_posix()

    def disk_full(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(photos.os, "replace", disk_full)
    with pytest.raises(PhotoStoreUnavailable, match=r"No space left on device \(ENOSPC\)"):
        store.thumbnail(sha)
    assert _files(store.root) == [original]  # no half-written thumbnail, no temporary file
    monkeypatch.undo()
    with Image.open(store.thumbnail(sha)) as im:
        assert im.size == (320, 240)


def test_thumbnail_of_an_unknown_photo_and_unknown_sizes(tmp_path: Path) -> None:
    store = PhotoStore(tmp_path / "photos")
    with pytest.raises(NotFound, match="no photo"):
        store.thumbnail("0" * 64)
    assert not (tmp_path / "photos").exists()  # nothing made for nothing
    sha = _stored(store, _marked((100, 80)))
    assert store.file(sha) == (store.open(sha), None)
    assert store.file(sha, "thumb") == (store.thumbnail(sha), "image/jpeg")
    with pytest.raises(InvalidInput, match=r"size: 'big' is not a photo size; use thumb") as err:
        store.file(sha, "big")
    assert err.value.reason == Reason.LITERAL_ERROR
    assert err.value.detail == [{"field": "size", "reason": "unknown size 'big'", "choices": ["thumb"]}]


def test_thumbnail_of_a_16_bit_grey_png_keeps_its_tones() -> None:
    """A 16-bit grey PNG (accepted at intake) is scaled to 8 bits, not clipped at 255 into a white square."""
    ramp = Image.new("I;16", (800, 600))
    ramp.putdata([x * 65535 // 799 for _ in range(600) for x in range(800)])
    data = io.BytesIO()
    ramp.save(data, "PNG")
    assert photos.inspect_photo(data.getvalue()).content_type == "image/png"
    thumb = Image.open(io.BytesIO(photos.make_thumbnail(data.getvalue())))
    assert (thumb.mode, thumb.size) == ("RGB", (320, 240))
    row = [thumb.getpixel((x, 120))[0] for x in (0, 160, 319)]
    assert row[0] <= 5 and 120 <= row[1] <= 135 and row[2] >= 250, row  # black → grey → white, as drawn


def test_a_thumbnail_asked_for_by_many_at_once_is_made_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A case opened on several screens asks for its thumbnails together: one request makes each, the rest wait
    for it and serve the file (the original, possibly tens of megapixels, is decoded once)."""
    import threading
    import time

    store = PhotoStore(tmp_path / "photos")
    sha = _stored(store, _marked((1600, 1200)))
    made: list[int] = []
    real = photos.make_thumbnail

    def slow_make(data: bytes, *args: object, **kwargs: object) -> bytes:
        made.append(1)
        time.sleep(0.2)  # long enough for every other request to arrive meanwhile
        return real(data)

    monkeypatch.setattr(photos, "make_thumbnail", slow_make)
    start = threading.Barrier(8)
    paths: list[Path] = []

    def ask() -> None:
        start.wait()
        paths.append(store.thumbnail(sha))

    workers = [threading.Thread(target=ask) for _ in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(made) == 1 and len(paths) == 8 and len(set(paths)) == 1
    assert photos._THUMB_LOCKS == {}  # no lock left behind per photo
    with Image.open(paths[0]) as im:
        assert im.size == (320, 240)


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_a_truncated_heic_is_refused_as_corrupt_not_unsupported(tmp_path: Path, keep: float) -> None:
    # An interrupted copy of a HEIC: the server can read HEIC, so the worker must retake it, not change format.
    data = _write(tmp_path, "IMG_0003.HEIC", _image((256, 256), noise=True), "HEIF", _exif())
    inspect_photo(data)  # the whole file is fine
    with pytest.raises(InvalidInput, match=r"photo 'cut\.heic' is truncated or corrupt") as exc:
        inspect_photo(data[: int(len(data) * keep)], filename="cut.heic")
    assert exc.value.reason == Reason.PHOTO_CORRUPT
    assert "pillow-heif" not in exc.value.message and "not supported" not in exc.value.message
