"""Photos attached to cases (案件照片): check what a phone sent, read its EXIF, store it by content.

:func:`inspect_photo` decodes the bytes (by content — the file name and extension are never trusted) and returns
a :class:`PhotoInfo`: format, size, SHA-256, the capture time and the GPS position from EXIF. It refuses, with
:class:`~gisgrid.errors.InvalidInput` naming the file: data that is not an image, a format other than JPEG, PNG,
WebP or HEIC/HEIF, more than ``max_bytes`` bytes or more than :data:`MAX_PIXELS` pixels (decompression-bomb
guard), and truncated or corrupt images (the whole image is decoded once to find those).

HEIC (the iPhone default) needs the optional ``pillow-heif`` or ``pi-heif`` package; :data:`SUPPORTED` lists the
formats this process accepts. Without either, HEIC is refused with a message that says so; with one, HEIF bytes
that do not decode (an interrupted copy) are refused as corrupt, like a damaged JPEG. A HEIC/HEIF photo is
converted to JPEG at intake (:data:`PhotoInfo.converted`; its EXIF — GPS, capture time — is carried over): Chromium,
Edge and Firefox cannot show HEIC, and every stored photo must be displayable in the console, on a 交办单 and on
the reporter's phone. What is stored and served is then ``image/jpeg``; the EXIF read from the original is kept.

:class:`PhotoStore` keeps the files content-addressed (``aa/bb/<sha256>.<ext>``), written atomically. A photo's
thumbnail (:meth:`PhotoStore.thumbnail`: a JPEG at most :data:`THUMB_MAX` px on its long edge, EXIF orientation
applied) is made on first request and kept beside it as ``aa/bb/<sha256>.t320.jpg``; so is its print copy for the
PDF orders (:meth:`PhotoStore.print_copy`, at most :data:`PRINT_MAX` px: ``aa/bb/<sha256>.p1200.jpg``). A stored
file that no longer decodes (damaged on disk after intake) raises :class:`PhotoUnreadable` there and leaves no copy
behind, so the file mended later gives its copy.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import importlib
import io
import logging
import math
import os
import re
import secrets
import shutil
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import ExifTags, Image, ImageFile, UnidentifiedImageError

from gisgrid.errors import InvalidInput, NotFound, PhotoStoreUnavailable, Reason, StoredFileDamaged
from gisgrid.settings import Settings

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # geodesy imports geopandas: not worth loading just for a type name
    from gisgrid.geodesy import Datum

# HEIC decoding: pillow-heif (decoder + x265 encoder; its binary wheels are GPLv2) or pi-heif (same API, decode
# only, LGPLv3 wheels: enough for a server that only reads photos). Whichever imports first is registered.
HEIF_BACKEND: str | None = None
for _module in ("pillow_heif", "pi_heif"):
    try:
        importlib.import_module(_module).register_heif_opener()
    except ImportError:
        continue
    HEIF_BACKEND = _module
    break
HEIF_AVAILABLE = HEIF_BACKEND is not None

#: Pillow format id → (content type, file extension) of every format gisgrid can accept.
_FORMATS: dict[str, tuple[str, str]] = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "WEBP": ("image/webp", "webp"),
    "HEIF": ("image/heic", "heic"),
}
#: Pillow format ids accepted by this process (HEIF only when pillow-heif imported).
SUPPORTED: frozenset[str] = frozenset(f for f in _FORMATS if f != "HEIF" or HEIF_AVAILABLE)
_LABELS = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WebP", "HEIF": "HEIC/HEIF"}

MAX_BYTES = 15 * 1024 * 1024
#: Photos one request may carry (a report, an action, a component's photos); the API's form body limit follows.
MAX_PER_REQUEST = 10
#: Pillow formats stored as a JPEG copy (browsers cannot decode them), and that copy's JPEG quality.
CONVERTED_TO_JPEG = frozenset({"HEIF"})
JPEG_QUALITY = 90
#: Thumbnails (``?size=thumb``): the long edge in pixels and the JPEG quality. The size is in the cached file's
#: name, so a new size makes new files instead of serving the old ones.
THUMB_MAX = 320
THUMB_QUALITY = 80
#: Print copies (the photos of a PDF order): the long edge and the JPEG quality. A photo is printed at most about
#: 100 mm wide on the A4 order (one photo alone: 55 mm tall), 1,200 px is ~300 dpi there — the PDF's own image
#: resolution (documents.PDF_IMAGE_DPI) — so the layout never decodes a phone's original (a 49 MP PNG: ~2 s).
PRINT_MAX = 1200
PRINT_QUALITY = 85
#: The sizes a photo is served in, besides the stored original (``size`` left out).
SIZES: dict[str, str] = {"thumb": f"thumbnail, at most {THUMB_MAX} px on the long edge (JPEG)"}
#: Decompression-bomb guard: a 50 MP image is already larger than any phone camera's default output.
MAX_PIXELS = 50_000_000
#: The pixels all the photos of one request may hold together (by their headers, before any is decoded): three
#: photos of the largest size, or ten 12 MP phone photos. Ten 49 MP PNGs of 190 KB each (200 MB decoded apiece)
#: were accepted in one request.
MAX_REQUEST_PIXELS = 3 * MAX_PIXELS
#: The pixels of a public report's photos (a report without a role, which anyone who reaches the service may
#: send, or one relayed as the public's, source public_app): one photo of the largest size — a 50 MP phone's full
#: resolution — or four of a 12 MP phone's default; the decode slots are shared with every user.
PUBLIC_REQUEST_PIXELS = MAX_PIXELS
#: Photos decoded at once in this process (the rest wait their turn): decoding is CPU work and a decoded photo
#: holds up to 4 bytes per pixel (200 MB at MAX_PIXELS), so concurrent requests queue instead of multiplying the
#: memory. Half the CPUs, 1 to 4.
DECODE_SLOTS = max(1, min(4, (os.cpu_count() or 2) // 2))
_DECODING = threading.BoundedSemaphore(DECODE_SLOTS)

# ISO-BMFF brands of HEIF stills (iPhone: heic; some Android: mif1/heix). Used to name HEIC when it is refused.
HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"heif"}
_SHA256 = re.compile(r"[0-9a-f]{64}")
_EXIF_DATETIME = re.compile(r"(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_EXIF_OFFSET = re.compile(r"([+-])(\d{2}):(\d{2})")


@dataclass(frozen=True, slots=True)
class PhotoInfo:
    """One checked photo. ``content_type``, ``size`` and ``sha256`` describe what is *stored* (for a HEIC: the
    JPEG made from it, in ``converted``); ``format`` is what was sent."""

    content_type: str
    format: str  # Pillow format id of the file sent: JPEG, PNG, WEBP or HEIF
    width: int  # stored pixel size; EXIF ``orientation`` 5–8 means it is displayed turned by 90°
    height: int
    size: int  # bytes stored
    sha256: str  # of the bytes stored
    taken_at: datetime | None  # aware: EXIF DateTimeOriginal with OffsetTimeOriginal
    taken_at_local: datetime | None  # naive DateTimeOriginal (camera clock, zone unknown when no offset)
    gps: tuple[float, float] | None  # (lon, lat) in degrees, from the EXIF GPS IFD
    gps_datum: Datum | None  # the datum GPSMapDatum names (WGS-84 when absent), whenever gps is set
    orientation: int = 1  # EXIF Orientation 1–8
    gps_problem: str | None = None  # why a GPS block the photo has gives no position (for the refusal's message)
    #: The JPEG stored instead of the bytes sent (HEIC/HEIF), None when the bytes sent are stored as they are.
    converted: bytes | None = field(default=None, repr=False)

    @property
    def position(self) -> tuple[float, float] | None:
        """The EXIF position in the storage datum (CGCS2000 ≈ WGS-84), whatever datum the photo named: what
        ``case_photos.gps_lon``/``gps_lat`` keep, comparable with the case's own location."""
        if self.gps is None:
            return None
        from gisgrid import geodesy  # geodesy imports numpy and pyproj: only when a photo has GPS

        x, y = geodesy.to_storage([self.gps[0]], [self.gps[1]], self.gps_datum or "wgs84")
        return float(x[0]), float(y[0])

    @property
    def stored_format(self) -> str:
        return "JPEG" if self.converted is not None else self.format


class PhotoUnreadable(Exception):
    """A stored photo's file no longer decodes (truncated or corrupted on disk after it was checked and stored):
    no smaller copy can be made of it. ``sha256``: the photo; ``cause``: what the decoder said."""

    def __init__(self, sha256: str, cause: str) -> None:
        super().__init__(f"photo {sha256} cannot be decoded: {cause}")
        self.sha256 = sha256
        self.cause = cause


@dataclass(frozen=True, slots=True)
class StoredPhoto:
    sha256: str
    relpath: str  # posix path below the store root, e.g. "3f/a0/3fa0….jpg"
    content_type: str
    size: int
    created: bool = field(default=False, compare=False)  # this save wrote the file (it was not stored before)


def _name(filename: str | None) -> str:
    return f"photo {filename!r}" if filename else "photo"


def _accepted() -> str:
    return ", ".join(_LABELS[f] for f in _FORMATS if f in SUPPORTED)


def _is_heif(data: bytes) -> bool:
    return data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS


#: Other image formats named by their first bytes, for the refusal's message only. Refused bytes are never handed
#: to Pillow's other plugins (PSD, FITS, EPS … parsers on anonymous uploads, review54 F5) just to name them.
OTHER_FORMATS: tuple[tuple[bytes, str], ...] = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"8BPS", "PSD"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG2000"),
    (b"\xff\x4f\xff\x51", "JPEG2000"),
    (b"\xff\x0a", "JPEG XL"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "JPEG XL"),
    (b"SIMPLE  =", "FITS"),
    (b"%!PS", "EPS"),
    (b"\xc5\xd0\xd3\xc6", "EPS"),
)


def other_format(data: bytes) -> str | None:
    """The name of the image format ``data`` starts like, from :data:`OTHER_FORMATS` (AVIF by its ``ftyp`` brand);
    None when it looks like none of them."""
    if data[4:8] == b"ftyp" and data[8:12] in (b"avif", b"avis"):
        return "AVIF"
    return next((name for magic, name in OTHER_FORMATS if data.startswith(magic)), None)


def _refuse_unsupported(data: bytes, name: str, filename: str | None) -> InvalidInput:
    """The error for bytes that no accepted format opened: an image of another format, or not an image."""
    if _is_heif(data) and "HEIF" in SUPPORTED:
        # A HEIF backend is installed, yet the bytes did not open: an interrupted copy, as for a damaged JPEG.
        return InvalidInput(
            f"{name} is truncated or corrupt: its HEIC/HEIF data cannot be decoded",
            detail={"filename": filename, "format": "HEIF"},
            reason=Reason.PHOTO_CORRUPT,
        )
    if _is_heif(data):
        return InvalidInput(
            f"{name}: HEIC/HEIF photos are not supported on this server (neither pillow-heif nor pi-heif is "
            f"installed); send JPEG instead. Accepted: {_accepted()}",
            detail={"filename": filename, "format": "HEIF"},
            reason=Reason.PHOTO_UNSUPPORTED_FORMAT,
        )
    fmt = other_format(data)
    if fmt is None:
        return InvalidInput(
            f"{name} is not an image (its content is not {_accepted()})",
            detail={"filename": filename},
            reason=Reason.PHOTO_NOT_AN_IMAGE,
        )
    return InvalidInput(
        f"{name}: unsupported image format {fmt}; accepted: {_accepted()}",
        detail={"filename": filename, "format": fmt},
        reason=Reason.PHOTO_UNSUPPORTED_FORMAT,
    )


#: The longest file name a photo may carry (a file system's own limit).
MAX_NAME_CHARS = 255


def check_photo_count(count: int) -> None:
    """More than :data:`MAX_PER_REQUEST` photos in one request: InvalidInput ``too_many_photos`` naming the limit
    (the API asks it before reading any photo's bytes)."""
    if count > MAX_PER_REQUEST:
        raise InvalidInput(
            f"photos: at most {MAX_PER_REQUEST} photos in one request, got {count}",
            detail=[{"field": "photos", "reason": f"{count} photos", "limit": {"max_items": MAX_PER_REQUEST}}],
            reason=Reason.TOO_MANY_PHOTOS,
        )


def has_image_magic(data: bytes) -> bool:
    """Whether ``data`` starts as a JPEG, PNG, WebP or HEIF/ISO-BMFF file does (its first 12 bytes): the cheap check
    the API makes of each photo as it is read, before the next is. False is not yet a refusal —
    :func:`inspect_photo` says why (not an image, another format, empty)."""
    return (
        data[:3] == b"\xff\xd8\xff"
        or data[:8] == b"\x89PNG\r\n\x1a\n"
        or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")
        or data[4:8] == b"ftyp"
    )


def one_request(photos: Sequence[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """The photos sent with one request, as (file name, bytes): more than :data:`MAX_PER_REQUEST` are refused
    (InvalidInput ``too_many_photos`` naming the limit), a file name longer than :data:`MAX_NAME_CHARS` too
    (``string_too_long``); a file sent twice is kept once, under its first name — a
    double tap on a phone must not show one picture twice on the 交办单."""
    check_photo_count(len(photos))
    for i, (name, _) in enumerate(photos):
        if len(name) > MAX_NAME_CHARS:  # shown on the case and the 交办单, and logged with the step
            raise InvalidInput(
                f"photos[{i}]: the file name is at most {MAX_NAME_CHARS} characters, got {len(name)}",
                detail=[
                    {"field": f"photos[{i}]", "reason": "file name too long", "limit": {"max_length": MAX_NAME_CHARS}}
                ],
                reason=Reason.STRING_TOO_LONG,
            )
    seen: set[str] = set()
    kept = []
    for name, data in photos:
        digest = hashlib.sha256(data).hexdigest()
        if digest not in seen:
            seen.add(digest)
            kept.append((name, data))
    return kept


def refused_photo(i: int, exc: InvalidInput) -> InvalidInput:
    """:func:`inspect_photo`'s refusal of the ``i``-th photo of a request, as the request's refusal: the item
    ``photos[i]`` with why, and the bound it crossed as ``limit`` (``{"max_bytes": …}``, ``{"max_pixels": …}``)."""
    limit = exc.detail.get("limit") if isinstance(exc.detail, dict) else None
    item = {"field": f"photos[{i}]", "reason": exc.message, **({"limit": limit} if limit else {})}
    return InvalidInput(f"photos[{i}]: {exc.message}", detail=[item], reason=exc.reason)


def declared_pixels(data: bytes) -> int:
    """The pixels the image's header declares (nothing decoded); 0 when it cannot be read — :func:`inspect_photo`
    then refuses it with its reason."""
    try:
        with Image.open(io.BytesIO(data), formats=sorted(SUPPORTED)) as im:
            width, height = im.size
    except Exception:  # not an image, a bomb Pillow refuses, a broken header: inspect_photo says which
        return 0
    return max(0, width) * max(0, height)


def check_pixel_budget(photos: Sequence[tuple[str, bytes]], *, public: bool = False) -> None:
    """Refuse the request whose photos together declare more than :data:`MAX_REQUEST_PIXELS` (a public report's,
    without a role or of source public_app: :data:`PUBLIC_REQUEST_PIXELS`) — InvalidInput
    ``photos_too_many_pixels`` naming ``photos[i]``, the first photo that crosses it — before any is decoded."""
    limit = PUBLIC_REQUEST_PIXELS if public else MAX_REQUEST_PIXELS
    total = 0
    for i, (_, data) in enumerate(photos):
        pixels = declared_pixels(data)
        total += pixels
        if total > limit:
            raise InvalidInput(
                f"photos[{i}]: with this photo ({pixels} pixels) the request's photos hold {total} pixels, at most "
                f"{limit} in one {'public report' if public else 'request'}; send fewer or smaller photos",
                detail=[
                    {
                        "field": f"photos[{i}]",
                        "reason": f"{total} pixels in the request's photos",
                        "limit": {"max_pixels": limit},
                    }
                ],
                reason=Reason.PHOTOS_TOO_MANY_PIXELS,
            )


def inspect_photo(data: bytes, *, max_bytes: int = MAX_BYTES, filename: str | None = None) -> PhotoInfo:
    """Check and describe one photo. ``filename`` is used only in error messages."""
    name = _name(filename)
    if len(data) > max_bytes:
        raise InvalidInput(
            f"{name} is too large: {len(data)} bytes, at most {max_bytes}",
            detail={"filename": filename, "size": len(data), "limit": {"max_bytes": max_bytes}},
            reason=Reason.PHOTO_TOO_LARGE,
        )
    if not data:
        raise InvalidInput(
            f"{name} is empty",
            detail={"filename": filename},
            reason=Reason.PHOTO_NOT_AN_IMAGE,
        )
    try:
        im = Image.open(io.BytesIO(data), formats=sorted(SUPPORTED))
    except UnidentifiedImageError:
        raise _refuse_unsupported(data, name, filename) from None
    except Image.DecompressionBombError as exc:  # Pillow's own guard (far above MAX_PIXELS) fired first
        raise InvalidInput(
            f"{name} is too large: {exc}",
            detail={"filename": filename, "limit": {"max_pixels": MAX_PIXELS}},
            reason=Reason.PHOTO_TOO_MANY_PIXELS,
        ) from None
    except Exception as exc:  # plugins raise OSError, SyntaxError, ValueError… on malformed headers
        raise InvalidInput(
            f"{name} is corrupt: {exc}", detail={"filename": filename}, reason=Reason.PHOTO_CORRUPT
        ) from None
    with im:
        # Phones' JPEGs with a multi-picture (MPF) segment open as MPO: still a JPEG file.
        fmt = "JPEG" if im.format == "MPO" else im.format
        if fmt not in SUPPORTED:  # cannot happen with formats=…, but never store what was not checked
            raise _refuse_unsupported(data, name, filename)
        width, height = im.size
        if width <= 0 or height <= 0:
            raise InvalidInput(f"{name} has no pixels", detail={"filename": filename}, reason=Reason.PHOTO_CORRUPT)
        if width * height > MAX_PIXELS:
            raise InvalidInput(
                f"{name} is too large: {width}×{height} = {width * height} pixels, at most {MAX_PIXELS}",
                detail={"filename": filename, "width": width, "height": height, "limit": {"max_pixels": MAX_PIXELS}},
                reason=Reason.PHOTO_TOO_MANY_PIXELS,
            )
        with decoding():
            try:
                # JPEG: decode at 1/8 scale — every byte of the entropy-coded data is still read, so truncation
                # is found, for a fraction of the memory. Other formats ignore draft().
                im.draft(im.mode, (max(1, width // 8), max(1, height // 8)))
                ImageFile.LOAD_TRUNCATED_IMAGES = False  # process-wide; a library may have turned it on (WeasyPrint)
                im.load()
            except Exception as exc:  # truncated data: OSError; decoder errors vary by plugin
                raise InvalidInput(
                    f"{name} is truncated or corrupt: {exc}",
                    detail={"filename": filename},
                    reason=Reason.PHOTO_CORRUPT,
                ) from None
            taken_at, taken_local, gps, gps_datum, gps_problem, orientation = _read_exif(im)
            converted = _to_jpeg(im, name, filename) if fmt in CONVERTED_TO_JPEG else None
    stored = data if converted is None else converted
    return PhotoInfo(
        content_type=_FORMATS["JPEG" if converted is not None else fmt][0],
        format=fmt,
        width=width,
        height=height,
        size=len(stored),
        sha256=hashlib.sha256(stored).hexdigest(),
        taken_at=taken_at,
        taken_at_local=taken_local,
        gps=gps,
        gps_datum=gps_datum,
        gps_problem=gps_problem,
        orientation=orientation,
        converted=converted,
    )


@contextlib.contextmanager
def decoding() -> Iterator[None]:
    """One of the :data:`DECODE_SLOTS` while a photo is decoded (waits for one); on leaving, the C heap's freed
    memory goes back to the system: glibc keeps what a thread freed in that thread's arena, so each worker thread
    that once decoded a large photo held its pixels' worth (four threads, 800 MB; the review saw 1.4 GB held)."""
    with _DECODING:
        try:
            yield
        finally:
            if _MALLOC_TRIM is not None:
                _MALLOC_TRIM(0)


def _malloc_trim() -> Any:
    """glibc's ``malloc_trim``, or None elsewhere (musl, macOS)."""
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _malloc_trim()


def _to_jpeg(im: Image.Image, name: str, filename: str | None) -> bytes:
    """A decoded HEIC/HEIF as JPEG bytes, with its EXIF (GPS, time) and colour profile. The decoder has already
    turned the pixels upright (HEIF ``irot``/``imir``) and dropped the EXIF orientation, so none is applied here.
    The same photo gives the same bytes (content-addressed: a resent report stores no second copy)."""
    try:
        rgb = im if im.mode in ("RGB", "L") else im.convert("RGB")
        out = io.BytesIO()
        options: dict[str, Any] = {"quality": JPEG_QUALITY}
        exif = im.getexif()
        if len(exif):
            options["exif"] = exif
        if im.info.get("icc_profile"):
            options["icc_profile"] = im.info["icc_profile"]
        rgb.save(out, "JPEG", **options)
    except Exception as exc:  # an odd bit depth or mode the encoder refuses
        raise InvalidInput(
            f"{name} could not be converted to JPEG: {exc}",
            detail={"filename": filename},
            reason=Reason.PHOTO_CORRUPT,
        ) from None
    return out.getvalue()


# --- EXIF -------------------------------------------------------------------------------------------------------


def _read_exif(
    im: Image.Image,
) -> tuple[datetime | None, datetime | None, tuple[float, float] | None, Datum | None, str | None, int]:
    try:
        exif = im.getexif()
        exif_ifd = exif.get_ifd(ExifTags.IFD.Exif)
        gps_ifd = exif.get_ifd(ExifTags.IFD.GPSInfo)
    except Exception:  # a broken EXIF block must not reject a good picture: treat it as absent
        return None, None, None, None, None, 1
    local = _exif_datetime(exif_ifd.get(ExifTags.Base.DateTimeOriginal), exif_ifd.get(ExifTags.Base.SubsecTimeOriginal))
    taken_at = None
    offset = _exif_offset(exif_ifd.get(ExifTags.Base.OffsetTimeOriginal))
    if local is not None and offset is not None:
        taken_at = local.replace(tzinfo=offset)
    orientation = exif.get(ExifTags.Base.Orientation, 1)
    if not (isinstance(orientation, int) and 1 <= orientation <= 8):
        orientation = 1
    gps = _exif_gps(gps_ifd)
    problem = _unfit_fix(gps_ifd) if gps is not None else None
    if problem is not None:
        gps = None  # a void or coarse fix: no position, and the reason
    elif gps is None and gps_ifd:
        problem = "its GPS block has no usable position (a reference N/S, E/W or the fix is missing)"
    datum = _exif_datum(gps_ifd) if gps is not None else None
    if gps is not None and datum is None:
        named = _text(gps_ifd.get(ExifTags.GPS.GPSMapDatum))
        problem = f"its GPS position is in datum {named!r}, which cannot be converted here"
    return taken_at, local, gps if datum is not None else None, datum, problem, orientation


#: GPSMapDatum values and the datum they name. Phones write the GNSS fix itself (WGS-84) and mostly leave the tag
#: out; some Chinese camera and map apps write GCJ-02 numbers and say so here.
_EXIF_DATUMS: dict[str, Datum] = {
    "": "wgs84", "WGS-84": "wgs84", "WGS84": "wgs84", "WGS 84": "wgs84", "WGS-1984": "wgs84",
    "GCJ-02": "gcj02", "GCJ02": "gcj02", "BD-09": "bd09", "BD09": "bd09", "BD09LL": "bd09",
    "CGCS2000": "cgcs2000", "CGCS 2000": "cgcs2000",
}  # fmt: skip


def _exif_datum(gps: Any) -> Datum | None:
    """The datum of the GPS block's numbers; None for one this service cannot convert (the position is then not
    used: a wrong place is worse than none)."""
    text_ = (_text(gps.get(ExifTags.GPS.GPSMapDatum)) or "").strip().upper()
    return _EXIF_DATUMS.get(text_)


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return None
    return value.strip("\x00 ").strip()


def _exif_datetime(value: Any, subsec: Any) -> datetime | None:
    text = _text(value)
    m = _EXIF_DATETIME.fullmatch(text) if text else None
    if m is None:  # missing, blank or "0000:00:00 00:00:00"-style placeholder
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups())
    try:
        dt = datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None
    frac = _text(subsec)
    if frac and frac.isdigit():
        dt = dt.replace(microsecond=int(frac[:6].ljust(6, "0")))
    return dt


def _exif_offset(value: Any) -> timezone | None:
    text = _text(value)
    m = _EXIF_OFFSET.fullmatch(text) if text else None
    if m is None:
        return None
    sign, hours, minutes = m.groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    if delta > timedelta(hours=14) or int(minutes) >= 60:
        return None
    return timezone(-delta if sign == "-" else delta)


def _rational(value: Any) -> float:
    if isinstance(value, tuple) and len(value) == 2:  # raw (numerator, denominator) from some writers
        num, den = value
        return float(num) / float(den) if den else math.nan
    return float(value)  # IFDRational (0 denominator → nan), int or float


def _dms(value: Any, limit: float) -> float | None:
    """Degrees from an EXIF (deg, min, sec) triple of rationals (also accepts (deg,) and (deg, min))."""
    if not isinstance(value, tuple | list) or not 1 <= len(value) <= 3:
        return None
    try:
        parts = [_rational(v) for v in value]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not all(math.isfinite(p) and p >= 0 for p in parts):
        return None
    if any(p >= 60 for p in parts[1:]):
        return None
    degrees = sum(p / 60**i for i, p in enumerate(parts))
    return degrees if degrees <= limit else None


#: A photo's GPS fix whose stated horizontal error (EXIF GPSHPositioningError) is larger is not taken as a case's
#: place: a unit grid is ~100 m across and a component is linked within 30 m (an indoor network fix says 100–500 m).
MAX_GPS_ERROR_M = 50.0
#: A photo taken longer before its step than this (EXIF date), or farther than EVIDENCE_FAR_M from the case's location
#: (EXIF GPS), is flagged where it is shown (a gallery photo of another day or place?): the field page before it is
#: sent, the console beside the case's photos. It is still taken.
EVIDENCE_OLD_S = 24 * 3600
EVIDENCE_FAR_M = 200


def _unfit_fix(gps: Any) -> str | None:
    """Why a position the GPS block holds must not locate a case, or None: the receiver marked it void (GPSStatus
    ``V``: no fix when the photo was taken, the numbers are a stale one) or says it is off by more than
    :data:`MAX_GPS_ERROR_M`."""
    if (_text(gps.get(ExifTags.GPS.GPSStatus)) or "").upper() == "V":
        return "its GPS fix is marked void (GPSStatus V: the camera had no fix when the photo was taken)"
    raw = gps.get(ExifTags.GPS.GPSHPositioningError)
    try:
        error = _rational(raw) if raw is not None else math.nan
    except (TypeError, ValueError, ZeroDivisionError):
        error = math.nan
    if math.isfinite(error) and error > MAX_GPS_ERROR_M:
        return f"its GPS fix is off by up to {error:.0f} m (GPSHPositioningError; at most {MAX_GPS_ERROR_M:.0f} m)"
    return None


def _exif_gps(gps: Any) -> tuple[float, float] | None:
    lat_ref = _text(gps.get(ExifTags.GPS.GPSLatitudeRef))
    lon_ref = _text(gps.get(ExifTags.GPS.GPSLongitudeRef))
    lat = _dms(gps.get(ExifTags.GPS.GPSLatitude), 90)
    lon = _dms(gps.get(ExifTags.GPS.GPSLongitude), 180)
    # Without its reference a value's hemisphere is unknown: no position rather than a wrong one.
    if lat is None or lon is None or lat_ref not in ("N", "S") or lon_ref not in ("E", "W"):
        return None
    if lat == 0 and lon == 0:  # phones write zeros when they had no fix
        return None
    return (-lon if lon_ref == "W" else lon, -lat if lat_ref == "S" else lat)


# --- store ------------------------------------------------------------------------------------------------------


class PhotoStore:
    """Content-addressed photo files: ``root/aa/bb/<sha256>.<ext>`` (aa, bb: the first two byte pairs)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @classmethod
    def from_settings(cls, settings: Settings) -> PhotoStore:
        return cls(settings.data_path / "photos")

    @staticmethod
    def _check_sha(sha256: str) -> str:
        # Only 64 lowercase hex digits: the name can carry no "..", "/" or drive letter into a path.
        if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
            raise InvalidInput(f"not a photo id (64 lowercase hex digits): {sha256!r}", detail={"sha256": sha256})
        return sha256

    def _relpath(self, sha256: str, ext: str) -> str:
        return f"{sha256[:2]}/{sha256[2:4]}/{sha256}.{ext}"

    def save(self, data: bytes, info: PhotoInfo) -> StoredPhoto:
        """Store ``data`` (as checked by :func:`inspect_photo`; a HEIC is stored as the JPEG made from it); the
        same bytes again reuse the same file."""
        sha = self._check_sha(info.sha256)
        if info.converted is not None:
            if info.format not in CONVERTED_TO_JPEG:
                raise InvalidInput(f"a {info.format} photo is stored as sent", detail={"format": info.format})
            data = info.converted
        if hashlib.sha256(data).hexdigest() != sha:
            raise InvalidInput("photo bytes do not match their PhotoInfo (sha256 differs)", detail={"sha256": sha})
        fmt = info.stored_format
        if fmt not in _FORMATS or fmt in CONVERTED_TO_JPEG:
            raise InvalidInput(f"unsupported photo format {fmt!r}", detail={"format": fmt})
        ext = _FORMATS[fmt][1]
        relpath = self._relpath(sha, ext)
        target = self.root / relpath
        stored = StoredPhoto(sha256=sha, relpath=relpath, content_type=info.content_type, size=len(data))
        if target.is_file() and target.stat().st_size == len(data):
            # Same name = same content: nothing to write. Its time is renewed, so that `photos prune` (which sets
            # aside only files untouched for a day) never takes a file a report is about to reference again.
            try:
                os.utime(target)
            except FileNotFoundError:  # set aside meanwhile: written again below
                pass
            except OSError:  # not ours to touch (restored as root, read-only): it is there, which is enough
                return stored
            else:
                return stored
        try:
            _write_atomic(target, data)
        except OSError as exc:  # the disk's fault, not the database's nor the request's (review46 F1)
            raise store_error(self.root, target, exc) from exc
        return replace(stored, created=True)

    def holds(self, stored: StoredPhoto) -> bool:
        """Whether the file of ``stored`` is in the store."""
        return (self.root / stored.relpath).is_file()

    def remove(self, stored: StoredPhoto) -> None:
        """Remove the file of ``stored`` (gone already: nothing to do). Only for a file no row references: the
        caller checks (:func:`gisgrid.case_intake.drop_unfiled_photos`)."""
        (self.root / stored.relpath).unlink(missing_ok=True)

    @staticmethod
    def file_name(sha256: str, content_type: str) -> str:
        """The name of a stored photo's file, ``<sha256>.<ext>`` (its folders are the sha's first byte pairs), from
        its stored content type: what an order names a photo by when the file cannot be read."""
        ext = next((e for t, e in _FORMATS.values() if t == content_type), "bin")
        return f"{sha256}.{ext}"

    def open(self, sha256: str) -> Path:
        """Path of a stored photo; :class:`NotFound` if there is none."""
        sha = self._check_sha(sha256)
        root = self.root.resolve()
        for ext in dict.fromkeys(e for _, e in _FORMATS.values()):
            path = self.root / self._relpath(sha, ext)
            if path.is_file():
                # A symlink planted in the store must not lead outside it.
                if not path.resolve().is_relative_to(root):
                    raise InvalidInput(f"photo {sha} resolves outside the photo store", detail={"sha256": sha})
                return path
        raise NotFound(f"no photo {sha}", detail={"sha256": sha}, message_zh=f"未找到照片 {sha}")

    def thumbnail(self, sha256: str) -> Path:
        """Path of the photo's thumbnail (JPEG, at most :data:`THUMB_MAX` px on the long edge, turned upright by
        its EXIF orientation, no EXIF kept): made from the original on the first call and kept beside it, so each
        later call only finds the file. :class:`NotFound` if there is no such photo; :class:`PhotoUnreadable` if
        its file no longer decodes."""
        return self._downscaled(sha256, f"t{THUMB_MAX}", THUMB_MAX, THUMB_QUALITY)

    def print_copy(self, sha256: str) -> Path:
        """Path of the photo's print copy for the PDF orders: as :meth:`thumbnail`, at most :data:`PRINT_MAX` px on
        the long edge (JPEG, quality :data:`PRINT_QUALITY`; transparency laid on white, as on paper). Raises as
        :meth:`thumbnail` does: :class:`NotFound`, :class:`PhotoUnreadable`."""
        return self._downscaled(sha256, f"p{PRINT_MAX}", PRINT_MAX, PRINT_QUALITY)

    def _downscaled(self, sha256: str, tag: str, max_edge: int, quality: int) -> Path:
        """A smaller copy beside the original, ``<sha256>.<tag>.jpg``, made on the first call (the size is in the
        tag: a new size makes new files instead of serving the old ones)."""
        original = self.open(sha256)
        target = original.with_name(f"{sha256}.{tag}.jpg")
        # One maker per copy in this process: a case opened on several screens at once asks for its thumbnails
        # together, and each first request would otherwise decode the original (~200 MB for a 49 MP PNG).
        key = f"{sha256}.{tag}"
        with _THUMB_LOCKS.setdefault(key, threading.Lock()):
            if not target.is_file():
                try:
                    made = make_thumbnail(original.read_bytes(), max_edge, quality)
                except Exception as exc:  # damaged on disk: truncated (OSError), decoder errors vary by plugin
                    # Nothing is written: the file mended (or stored again) later makes its copy then.
                    _THUMB_LOCKS.pop(key, None)
                    raise PhotoUnreadable(sha256, f"{type(exc).__name__}: {exc}") from exc
                try:
                    _write_atomic(target, made)
                except OSError as exc:
                    _THUMB_LOCKS.pop(key, None)
                    raise store_error(self.root, target, exc) from exc
            # The file is there now, so a lock made after this one is dropped finds it: no lock kept per photo.
            _THUMB_LOCKS.pop(key, None)
            if not target.resolve().is_relative_to(self.root.resolve()):  # as for the original: no way out
                raise InvalidInput(f"photo {sha256} resolves outside the photo store", detail={"sha256": sha256})
            return target

    def file(self, sha256: str, size: str | None = None) -> tuple[Path, str | None]:
        """The file to serve for ``size`` (None: the original; see :data:`SIZES`) and its content type when it is
        not the original's (a thumbnail is always ``image/jpeg``). A stored file that no longer decodes has no
        thumbnail: :class:`~gisgrid.errors.StoredFileDamaged` (logged)."""
        if check_size(size) is None:
            return self.open(sha256), None
        try:
            return self.thumbnail(sha256), "image/jpeg"
        except PhotoStoreUnavailable as exc:
            # The thumbnail cannot be kept (the disk full or read-only): the original serves in its place, so that
            # the console's pictures do not all break while the store is mended.
            log.error(
                "photo store error (errno %s): thumbnail not kept, the original served: %s", exc.errno, exc.log_text
            )
            return self.open(sha256), None
        except PhotoUnreadable as exc:
            log.warning("photo %s: no thumbnail, the stored file does not decode (%s)", exc.sha256, exc.cause)
            raise StoredFileDamaged(
                f"照片文件已损坏,无法生成缩略图 / the stored photo {exc.sha256} no longer decodes (damaged on disk): "
                "no thumbnail can be made",
                detail={"sha256": exc.sha256},
                reason=Reason.PHOTO_UNREADABLE,
            ) from exc


#: Per copy being made (``<sha256>.<tag>``): the lock it is made under (dict.setdefault is atomic under the GIL);
#: dropped once the file exists.
_THUMB_LOCKS: dict[str, threading.Lock] = {}


def check_size(size: str | None) -> str | None:
    """``size`` if it is one of :data:`SIZES` (or None, the original); else :class:`InvalidInput` naming it."""
    if size is None or size in SIZES:
        return size
    choices = "; ".join(f"{k}: {v}" for k, v in SIZES.items())
    raise InvalidInput(
        f"size: {size!r} is not a photo size; use {choices}, or leave size out for the original",
        detail=[{"field": "size", "reason": f"unknown size {size!r}", "choices": list(SIZES)}],
        reason=Reason.LITERAL_ERROR,
    )


def make_thumbnail(data: bytes, max_edge: int = THUMB_MAX, quality: int = THUMB_QUALITY) -> bytes:
    """A JPEG of the photo ``data`` (a stored one: already checked) at most ``max_edge`` px on its long edge, shown
    the way up its EXIF orientation says (phones store the sensor's pixels and a rotation flag); never enlarged.
    Transparency (PNG, WebP) is laid on white. Deterministic: the same photo gives the same bytes."""
    with decoding(), Image.open(io.BytesIO(data), formats=sorted(SUPPORTED)) as im:
        # A truncated file must fail here, not be padded with grey and kept as its copy (WeasyPrint's import turns
        # this process-wide flag on).
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        # JPEG: decode at the smallest 1/2^n scale still at least max_edge on both sides (fast, little memory).
        im.draft("RGB", (max_edge, max_edge))
        try:
            orientation = im.getexif().get(ExifTags.Base.Orientation, 1)
        except Exception:  # a broken EXIF block: shown as stored, as inspect_photo reads it
            orientation = 1
        # Made RGB before it is scaled down, and turned upright after: on the original, Pillow's resize of RGBA
        # converts it to premultiplied RGBa (a second full-size copy, ~1 s at 49 MP) and exif_transpose copies it
        # whole; laying it on white first gives the same pixels for a fraction of the time and memory.
        small = _flat_rgb(im)
        small.thumbnail((max_edge, max_edge), Image.Resampling.LANCZOS)
        if (turn := _ORIENTATIONS.get(orientation)) is not None:
            small = small.transpose(turn)
        out = io.BytesIO()
        options: dict[str, Any] = {"quality": quality, "optimize": True}
        if im.info.get("icc_profile"):
            options["icc_profile"] = im.info["icc_profile"]
        small.save(out, "JPEG", **options)
    return out.getvalue()


#: EXIF orientation → the transpose that shows the photo upright (as ImageOps.exif_transpose).
_ORIENTATIONS: dict[Any, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _flat_rgb(im: Image.Image) -> Image.Image:
    """``im`` as RGB: transparency laid on white, 16/32-bit grey scaled to 8 bits."""
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im if im.mode == "RGBA" else im.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    if im.mode == "RGB":
        im.load()
        return im
    if im.mode.startswith("I"):  # 16/32-bit grey: convert() would clip it at 255 (all but white)
        im = im.point(lambda v: v / 256).convert("L")
    return im.convert("RGB")


#: How the client is told which store failed: the setting that places it, not the server's path (as a database
#: outage names no host).
PHOTO_STORE_SETTING = "GISGRID_DATA_DIR/photos"

#: The first half (zh-CN) of the refusal, by errno; any other error is a read/write failure.
_STORE_ERRNO_ZH = {
    errno.ENOSPC: "照片存储空间已满",
    errno.EDQUOT: "照片存储空间配额已满",
    errno.EROFS: "照片存储目录为只读,无法写入",
    errno.EACCES: "照片存储目录无写入权限",
    errno.EPERM: "照片存储目录无写入权限",
}


def store_error(root: Path, target: Path, exc: OSError) -> PhotoStoreUnavailable:
    """The refusal for an ``OSError`` writing ``target`` under the store ``root``: the client's message names the
    setting and the cause; the log text the path, the errno and the free space of the store's file system."""
    code = exc.errno
    name = errno.errorcode.get(code, str(code)) if code is not None else "no errno"
    why = os.strerror(code) if code is not None else f"{type(exc).__name__}: {exc}"
    zh = _STORE_ERRNO_ZH.get(code or 0, "照片存储读写失败")
    message = (
        f"{zh},本次提交未保存 / the photo store ({PHOTO_STORE_SETTING}) cannot be written: {why} ({name}); "
        "nothing was saved, try again later"
    )
    return PhotoStoreUnavailable(message, log_text=f"writing {target}: [{name}] {why}; {_free_space(root)}", errno=code)


def _free_space(root: Path) -> str:
    """``free 20.0 KiB of 300.0 KiB on the photo store`` (of its nearest folder that exists), or why unknown."""
    where = root
    while not where.exists() and where != where.parent:
        where = where.parent
    try:
        usage = shutil.disk_usage(where)
    except OSError as exc:
        return f"free space unknown ({exc.strerror or exc})"
    return f"free {_size(usage.free)} of {_size(usage.total)} on the photo store ({root})"


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


#: Modes of what the store creates: photos show faces and number plates (personal data), so only the service's
#: own account reads them (review54 F3). Folders already there keep theirs (an operator's 0750 for a backup group).
FILE_MODE = 0o600
FOLDER_MODE = 0o700


def private_folders(folder: Path) -> None:
    """``folder`` and every missing folder above it, each made :data:`FOLDER_MODE` (``Path.mkdir(parents=True)``
    makes the parents with the umask's mode, 0755 as a rule)."""
    missing: list[Path] = []
    at = folder
    while not at.exists() and at != at.parent:
        missing.append(at)
        at = at.parent
    for path in reversed(missing):
        path.mkdir(mode=FOLDER_MODE, exist_ok=True)


def _write_atomic(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` through a temporary file in the same folder (same file system), so that
    os.replace is atomic: readers — another request serving the same file — see either no file or the whole
    file, and a crash leaves at most a dot-file behind, never a half photo. The file is :data:`FILE_MODE`, new
    folders :data:`FOLDER_MODE`."""
    private_folders(target.parent)
    tmp = target.parent / f".{target.name}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
