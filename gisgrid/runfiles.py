"""The files an import leaves for the user — its refusals (``--errors FILE``, the history import's
``FILE.errors.csv``) and warnings (``NAME.warnings.csv``) — always describe the run that wrote them.

A file is written under a temporary name in its own folder while the run works and renamed over its place
(``os.replace``, atomic) only once the run's outcome is known: after the commit, or after a dry run or an
all-or-nothing refusal decided that nothing is written. A run that refuses nothing removes the previous run's
file of that name (a clerk, or a script testing ``[ -s FILE ]``, would read refusals that no longer exist) and
says so. A run that fails or is killed before its outcome leaves the files as the previous complete run left them,
and no temporary file (but for ``kill -9``: a hidden ``.NAME.*.tmp``)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import pandas as pd

from gisgrid.errors import InvalidInput
from gisgrid.spreadsheet import to_csv


@dataclass
class RunFiles:
    """The refusals/warnings files of one run: :meth:`stage` each while the run works, :meth:`publish` once its
    outcome is known; leaving the ``with`` block without publishing drops what was staged."""

    _staged: list[tuple[Path, Path | None, str]] = field(default_factory=list)  # (place, temp file or None, what)
    written: list[Path] = field(default_factory=list)  # after publish: the files put in place
    removed: list[str] = field(default_factory=list)  # after publish: "no refusals (removed … FILE)"

    def stage(self, path: Path | None, frame: pd.DataFrame, columns: Sequence[str], what: str = "refusals") -> None:
        """``frame`` (``columns``, CSV UTF-8 with BOM: Excel opens Chinese text) to go to ``path``; an empty
        frame: no file there (an old one is removed). ``path`` None: no file was asked for."""
        if path is None:
            return
        path = Path(path)
        if not len(frame):
            self._staged.append((path, None, what))
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            os.close(fd)
        except OSError as exc:
            raise InvalidInput(f"cannot write {what} to {path}: {exc.strerror or exc}") from None
        self._staged.append((path, Path(tmp), what))
        try:
            # a refused value is never a formula in Excel (spreadsheet.to_csv)
            to_csv(frame.reindex(columns=list(columns)), tmp, index=False, encoding="utf-8-sig")
        except OSError as exc:
            raise InvalidInput(f"cannot write {what} to {path}: {exc.strerror or exc}") from None

    def publish(self) -> None:
        """Put the staged files in place and remove the old files of those with nothing to list."""
        for path, tmp, what in self._staged:
            if tmp is not None:
                os.replace(tmp, path)
                self.written.append(path)
            elif path.is_file():
                path.unlink()
                self.removed.append(f"no {what} (removed the previous run's {path})")
        self._staged.clear()

    def discard(self) -> None:
        """Drop the staged temporary files; the files in place stay as they were."""
        for _, tmp, _ in self._staged:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    tmp.unlink()
        self._staged.clear()

    def __enter__(self) -> RunFiles:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.discard()
