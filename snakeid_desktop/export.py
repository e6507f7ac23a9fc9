"""CSV and JSON export of batch results: streamed, and written atomically.

Each writer fills a temporary file beside the target and renames it over the target only
when the run is complete, so a crash or cancel never leaves a half-written file behind and
an earlier export survives until the new one is whole. Rows are written as they arrive:
memory stays flat for 100k rows.

JSON: one array of :meth:`FileResult.to_json` objects, exactly as ``snakeid classify --json``.

CSV columns (UTF-8, header row, one row per file including failures):

=================  ==========================================================================
path               the file as scanned
status             ``ok`` or ``error``
error              the error message (empty when ok)
verdict            ``species``, ``unsure`` or ``not_snake`` (empty on error)
risk               ``true`` when a venomous species is among the likely candidates, else ``false``
species            slug of the most likely species (empty on error)
scientific_name    of that species
common_name        of that species
probability        its calibrated probability, 0..1, six decimals
venomous           its venom status: ``yes``, ``mild`` or ``no``
top_k              all candidates as ``slug:probability`` joined by ``;``
warnings           warnings joined by `` | `` (e.g. a truncated file decoded partially)
=================  ==========================================================================
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from .results import FileResult

CSV_COLUMNS = (
    "path",
    "status",
    "error",
    "verdict",
    "risk",
    "species",
    "scientific_name",
    "common_name",
    "probability",
    "venomous",
    "top_k",
    "warnings",
)
WARNING_SEPARATOR = " | "


def csv_row(result: FileResult) -> dict[str, str]:
    data = result.to_json()
    best = data["top"][0] if data["top"] else None
    return {
        "path": data["path"],
        "status": data["status"],
        "error": data["error"] or "",
        "verdict": data["verdict"] or "",
        "risk": "true" if data["risk"] else "false",
        "species": best["species"] if best else "",
        "scientific_name": best["scientific_name"] if best else "",
        "common_name": best["common_name"] if best else "",
        "probability": f"{best['probability']:.6f}" if best else "",
        "venomous": best["venomous"] if best else "",
        "top_k": ";".join(f"{c['species']}:{c['probability']:.6f}" for c in data["top"]),
        "warnings": WARNING_SEPARATOR.join(data["warnings"]),
    }


class _AtomicTextWriter:
    """A text file that appears at ``path`` only on :meth:`commit`; :meth:`abort` leaves no trace."""

    def __init__(self, path: Path | str, newline: str | None = None):
        self.path = Path(path)
        # Same folder, so the final rename is atomic; a missing folder fails here, before any work.
        fd, tmp = tempfile.mkstemp(dir=self.path.parent if str(self.path.parent) else ".",
                                   prefix=f".{self.path.name}.", suffix=".part")
        self._tmp = Path(tmp)
        self.rows = 0
        try:
            self._fh: IO[str] = os.fdopen(fd, "w", encoding="utf-8", newline=newline)
        except BaseException:
            os.close(fd)
            self._tmp.unlink(missing_ok=True)
            raise
        self._done = False

    def _finish_content(self) -> None:
        """Subclasses write their closing text here."""

    def commit(self) -> Path:
        if self._done:
            return self.path
        try:
            self._finish_content()
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            # mkstemp creates 0600 files; exports are ordinary documents (umask is not
            # read here: reading it means setting it, which races with other threads).
            os.chmod(self._tmp, 0o644)
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        self._done = True
        return self.path

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            self._fh.close()
        finally:
            self._tmp.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.commit()
        else:
            self.abort()
        return False


class CsvResultWriter(_AtomicTextWriter):
    def __init__(self, path: Path | str):
        super().__init__(path, newline="")  # the csv module writes its own line endings
        self._csv = csv.DictWriter(self._fh, fieldnames=CSV_COLUMNS)
        self._csv.writeheader()

    def write(self, result: FileResult) -> None:
        self._csv.writerow(csv_row(result))
        self.rows += 1


class JsonResultWriter(_AtomicTextWriter):
    def __init__(self, path: Path | str):
        super().__init__(path)
        self._fh.write("[")

    def write(self, result: FileResult) -> None:
        self._fh.write(",\n  " if self.rows else "\n  ")
        self._fh.write(json.dumps(result.to_json(), ensure_ascii=False, allow_nan=False))  # NaN is not JSON
        self.rows += 1

    def _finish_content(self) -> None:
        self._fh.write("\n]\n" if self.rows else "]\n")


def export_results(
    results: Iterable[FileResult], csv_path: Path | str | None = None, json_path: Path | str | None = None
) -> int:
    """Write ``results`` to either or both formats in one pass; returns the number of rows."""
    writers: list[_AtomicTextWriter] = []
    try:
        if csv_path is not None:
            writers.append(CsvResultWriter(csv_path))
        if json_path is not None:
            writers.append(JsonResultWriter(json_path))
        count = 0
        for result in results:
            for w in writers:
                w.write(result)  # type: ignore[attr-defined]
            count += 1
        for w in writers:
            w.commit()
        return count
    except BaseException:
        for w in writers:
            w.abort()
        raise


def read_csv(path: Path | str) -> list[dict[str, str]]:
    """Read an export back (used by tests and handy for scripts)."""
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))
