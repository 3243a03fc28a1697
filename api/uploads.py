"""The photos of a form (a report, an action, a component's photos), read one at a time and checked as they come.

The framework has parsed the form before a route runs (its parts spooled to temporary files); reading them into
memory is the route's. :func:`read_photos` refuses too many parts before it reads any, and each part that does not
start as an image (JPEG, PNG, WebP, HEIF) as soon as it is read, with the refusal the service would give it
(``photo_not_an_image``, ``photo_unsupported_format`` …, named ``photos[i]``): a bad form costs one part's read,
not ten (review54 F4: ten 14 MB parts of noise were read, 150 MB, before the first was looked at)."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import UploadFile

from gisgrid.errors import InvalidInput, Reason
from gisgrid.photos import MAX_BYTES, check_photo_count, has_image_magic, inspect_photo, refused_photo


async def read_photos(uploads: Sequence[UploadFile] | None, *, refuse_large: bool = True) -> list[tuple[str, bytes]]:
    """The photos as (file name, bytes), in the order sent, for the service (which checks and decodes them).
    ``refuse_large``: a part over :data:`~gisgrid.photos.MAX_BYTES` is refused here as it is read (the case
    routes); else it is left to the service's own refusal (the component route)."""
    check_photo_count(len(uploads or ()))
    files: list[tuple[str, bytes]] = []
    for i, upload in enumerate(uploads or ()):
        name = upload.filename or f"photo{i}"
        data = await upload.read(MAX_BYTES + 1)
        if refuse_large and len(data) > MAX_BYTES:
            raise InvalidInput(
                f"photos[{i}]: {upload.filename} is larger than {MAX_BYTES // (1024 * 1024)} MB",
                detail=[{"field": f"photos[{i}]", "reason": "too large", "limit": {"max_bytes": MAX_BYTES}}],
                reason=Reason.PHOTO_TOO_LARGE,
            )
        if not has_image_magic(data):
            # Not the start of an accepted image: the service's own refusal of it (which names another image
            # format, an empty part, or a part too large), now, before the next part is read.
            try:
                inspect_photo(data, filename=name)
            except InvalidInput as exc:
                raise refused_photo(i, exc) from None
        files.append((name, data))
    return files
