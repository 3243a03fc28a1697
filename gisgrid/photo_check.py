"""The photo store checked against the database (``gisgrid photos check``, read-only) and the files no row needs
set aside (``gisgrid photos prune``).

Every photo a row references — a case photo (``case_photos``) or a component photo (``components.photos``) — must
be a file of the store whose SHA-256 is its name (the store is content-addressed, :class:`~gisgrid.photos.PhotoStore`):
a file that is not there is *missing*, one whose bytes hash to something else is *damaged*. Every original in the
store should be referenced by a row: one that is not is *unreferenced* (a backup of another database, a report
that was never filed, a copy made by hand). Thumbnails and print copies (``<sha256>.t320.jpg``, ``.p1200.jpg``)
are counted apart: they are made again on request, so they are never a problem, but those whose original is not
referenced are listed (they can be deleted). Anything else in the store (a ``.tmp`` dot-file left by a crash, a
file of another name) is *foreign*.

Several databases can share one ``GISGRID_DATA_DIR`` (``GISGRID_DB_NAME``): the files of the others are
unreferenced here. A report being filed while the check runs may show its photo as unreferenced for a moment.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from gisgrid.photos import PhotoStore, private_folders

#: An original's path below the store root: ``aa/bb/<sha256>.<ext>``.
_ORIGINAL = re.compile(r"([0-9a-f]{2})/([0-9a-f]{2})/(?P<sha>[0-9a-f]{64})\.(?:jpg|png|webp|heic)")
#: A thumbnail or print copy beside its original: ``aa/bb/<sha256>.t320.jpg``, ``.p1200.jpg``.
_COPY = re.compile(r"([0-9a-f]{2})/([0-9a-f]{2})/(?P<sha>[0-9a-f]{64})\.[tp]\d+\.jpg")

_ROWS = """
SELECT 'case' AS kind, p.case_id::text AS owner, p.id AS photo_id, p.sha256, p.relpath, p.content_type
FROM case_photos p
UNION ALL
SELECT 'component', c.id, NULL, e->>'sha256', NULL, e->>'content_type'
FROM components c, jsonb_array_elements(CASE jsonb_typeof(c.photos) WHEN 'array' THEN c.photos ELSE '[]' END) e
ORDER BY 1, 2, 3, 4
"""


@dataclass(frozen=True, slots=True)
class PhotoRef:
    """One row's photo: ``kind`` case (``owner`` the case id, ``photo_id`` the case_photos id) or component
    (``owner`` the component id)."""

    kind: str
    owner: str
    photo_id: int | None
    sha256: str
    relpath: str
    found_sha256: str | None = None  # a damaged file: what its bytes hash to


@dataclass(frozen=True, slots=True)
class StoreFile:
    relpath: str
    size: int


@dataclass(frozen=True, slots=True)
class Usage:
    files: int = 0
    bytes: int = 0

    def plus(self, size: int) -> Usage:
        return Usage(self.files + 1, self.bytes + size)


@dataclass(slots=True)
class PhotoCheck:
    root: str
    rows: int = 0  # photo references checked (case photos + component photos)
    missing: list[PhotoRef] = field(default_factory=list)
    damaged: list[PhotoRef] = field(default_factory=list)
    unreferenced: list[StoreFile] = field(default_factory=list)
    foreign: list[StoreFile] = field(default_factory=list)
    stale_copies: list[StoreFile] = field(default_factory=list)  # copies whose original no row references
    originals: Usage = Usage()
    copies: Usage = Usage()  # thumbnails and print copies
    total: Usage = Usage()  # every file, foreign ones included

    @property
    def problems(self) -> int:
        """Missing or damaged rows, unreferenced originals and foreign files (stale copies are no problem)."""
        return len(self.missing) + len(self.damaged) + len(self.unreferenced) + len(self.foreign)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["problems"] = self.problems
        return data

    def to_text(self) -> str:
        lines = [
            f"照片存储 photo store {self.root}: {_usage(self.originals)} originals, {_usage(self.copies)} "
            f"thumbnails/print copies; {_usage(self.total)} in all",
            f"checked {self.rows} photo row(s) of the database",
        ]
        for ref in self.missing:
            lines.append(f"缺失 missing: {_owner(ref)} {ref.relpath}")
        for ref in self.damaged:
            lines.append(f"已损坏 damaged: {_owner(ref)} {ref.relpath} (its bytes hash to {ref.found_sha256})")
        for f in self.unreferenced:
            lines.append(f"无引用 unreferenced: {f.relpath} ({f.size:,} bytes)")
        for f in self.foreign:
            lines.append(f"非照片文件 foreign: {f.relpath} ({f.size:,} bytes)")
        if self.stale_copies:
            size = sum(f.size for f in self.stale_copies)
            lines.append(
                f"{len(self.stale_copies)} thumbnail/print cop(ies) of unreferenced or missing originals "
                f"({size:,} bytes; deletable)"
            )
        if self.problems:
            lines.append(
                f"{self.problems} problem(s): {len(self.missing)} missing, {len(self.damaged)} damaged, "
                f"{len(self.unreferenced)} unreferenced, {len(self.foreign)} foreign"
            )
        else:
            lines.append("ok: every row has its file, every file its row")
        return "\n".join(lines)


def _usage(u: Usage) -> str:
    return f"{u.files:,} file(s), {u.bytes:,} bytes"


def _owner(ref: PhotoRef) -> str:
    return f"case {ref.owner} photo {ref.photo_id}" if ref.kind == "case" else f"component {ref.owner}"


def _sha_of(relpath: str) -> str:
    """The sha256 a store path is named by (``aa/bb/<sha256>.t320.jpg`` → ``<sha256>``)."""
    return relpath.rsplit("/", 1)[1].split(".", 1)[0]


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _store_files(root: Path) -> list[StoreFile]:
    """Every file below ``root`` (symbolic links too, by their own size: never followed), sorted."""
    found: list[StoreFile] = []
    if not root.is_dir():
        return found
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in files:
            path = Path(folder, name)
            found.append(StoreFile(path.relative_to(root).as_posix(), path.lstat().st_size))
    return sorted(found, key=lambda f: f.relpath)


def check_photos(engine: Engine, store: PhotoStore) -> PhotoCheck:
    """Compare the store's files with the rows that reference them; reads every referenced file once."""
    root = store.root
    result = PhotoCheck(root=str(root))
    with engine.connect() as conn:
        rows = conn.execute(text(_ROWS)).mappings().all()
    referenced: set[str] = set()
    verdicts: dict[str, str | None] = {}  # relpath → the sha256 of its file (None: no file); each file read once
    for row in rows:
        sha = str(row["sha256"] or "")
        relpath = row["relpath"] or f"{sha[:2]}/{sha[2:4]}/{PhotoStore.file_name(sha, row['content_type'] or '')}"
        ref = PhotoRef(row["kind"], str(row["owner"]), row["photo_id"], sha, relpath)
        result.rows += 1
        match = _ORIGINAL.fullmatch(relpath)
        if match is None:  # no path of this store (a hand-edited row): there is no file for it
            result.missing.append(ref)
            continue
        referenced.add(relpath)
        if relpath not in verdicts:
            path = root / relpath
            verdicts[relpath] = _sha256_of(path) if path.is_file() and not path.is_symlink() else None
        found = verdicts[relpath]
        if found is None:
            result.missing.append(ref)
        elif found != sha:
            result.damaged.append(PhotoRef(ref.kind, ref.owner, ref.photo_id, sha, relpath, found))
    # The originals that are there and referenced (damaged ones too): their copies are in use.
    kept = {_sha_of(r) for r, found in verdicts.items() if found is not None}
    for f in _store_files(root):
        result.total = result.total.plus(f.size)
        if (root / f.relpath).is_symlink():
            result.foreign.append(f)
        elif (copy := _COPY.fullmatch(f.relpath)) is not None:
            result.copies = result.copies.plus(f.size)
            if copy.group("sha") not in kept:
                result.stale_copies.append(f)
        elif _ORIGINAL.fullmatch(f.relpath) is not None:
            result.originals = result.originals.plus(f.size)
            if f.relpath not in referenced:
                result.unreferenced.append(f)
        else:
            result.foreign.append(f)
    return result


#: A crash's leftover beside an original: ``.<sha256>.<ext>.<16 hex>.tmp`` (:func:`gisgrid.photos._write_atomic`).
_LEFTOVER = re.compile(r"([0-9a-f]{2})/([0-9a-f]{2})/\.[0-9a-f]{64}\.[a-z0-9.]+\.[0-9a-f]{16}\.tmp")


@dataclass(slots=True)
class PhotoPrune:
    """What ``gisgrid photos prune`` set aside (or, with ``dry_run``, would set aside) into ``to``: unreferenced
    originals and their thumbnails/print copies, copies of originals that are gone, and crash leftovers — only files
    untouched for ``older_than_hours``; ``kept_recent`` are the unreferenced ones too recent to take."""

    root: str
    to: str
    older_than_hours: float
    dry_run: bool
    set_aside: list[StoreFile] = field(default_factory=list)
    kept_recent: list[StoreFile] = field(default_factory=list)
    put_back: list[StoreFile] = field(default_factory=list)  # touched while being set aside: a report took it

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.set_aside)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["bytes"] = self.bytes
        return data

    def to_text(self) -> str:
        verb_zh, verb_en = ("将移出", "would set aside") if self.dry_run else ("已移出", "set aside")
        lines = [f"{verb_zh} {verb_en}: {f.relpath} ({f.size:,} bytes)" for f in self.set_aside]
        lines += [f"放回 put back (a report took it meanwhile): {f.relpath}" for f in self.put_back]
        lines.append(
            f"{verb_zh} {len(self.set_aside)} 个文件 / {verb_en} {len(self.set_aside)} file(s), {self.bytes:,} "
            f"bytes, to {self.to}; kept {len(self.kept_recent)} unreferenced file(s) touched in the last "
            f"{self.older_than_hours:g} h"
        )
        if self.set_aside and not self.dry_run:
            lines.append(
                f"恢复 to restore: cp -a {self.to}/. {self.root}/ ; 释放空间 to free the space: rm -r {self.to}"
            )
        return "\n".join(lines)


def prune_photos(
    engine: Engine,
    store: PhotoStore,
    to: Path,
    *,
    older_than: timedelta = timedelta(days=1),
    dry_run: bool = False,
    now: datetime | None = None,
) -> PhotoPrune:
    """Move the store's files no row needs into ``to`` (same relative paths: ``cp -a`` puts them back): originals
    no row references, their thumbnails and print copies, copies whose original no row references, and ``.tmp``
    leftovers of a crash. Files modified less than ``older_than`` ago stay (a report being filed saves its photo
    before its row commits; saving a file that is already there renews its time), and a file whose time changed
    while it was moved is put back. Missing or damaged rows, symbolic links and other foreign files are left."""
    check = check_photos(engine, store)
    root = store.root
    cutoff = (now or datetime.now(UTC)).timestamp() - older_than.total_seconds()
    result = PhotoPrune(str(root), str(to), older_than.total_seconds() / 3600, dry_run)
    missing = {_sha_of(r.relpath) for r in check.missing}  # their copies may be all that is left: kept
    candidates = [
        *check.unreferenced,
        *(f for f in check.stale_copies if _sha_of(f.relpath) not in missing),
        *(f for f in check.foreign if _LEFTOVER.fullmatch(f.relpath) and not (root / f.relpath).is_symlink()),
    ]
    for f in sorted(candidates, key=lambda f: f.relpath):
        source = root / f.relpath
        try:
            mtime = source.stat().st_mtime
        except FileNotFoundError:  # removed meanwhile
            continue
        if mtime > cutoff:
            result.kept_recent.append(f)
            continue
        if dry_run:
            result.set_aside.append(f)
            continue
        target = to / f.relpath
        private_folders(target.parent)  # set-aside photos are as private as the store's
        try:
            os.replace(source, target)  # one file system: an atomic move (else copied, then removed)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            shutil.move(source, target)
        if target.stat().st_mtime > cutoff and not source.exists():  # renewed by a save just before the move
            os.replace(target, source)
            result.put_back.append(f)
            continue
        result.set_aside.append(f)
    return result
