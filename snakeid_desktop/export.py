"""CSV and JSON export of batch results: streamed, and written atomically.

Each writer fills a temporary file (``.NAME.XXXXXXXX.part``) beside the target and renames it
over the target only when the run is complete, so a crash or cancel never leaves a half-written
file behind and an earlier export survives until the new one is whole. With both formats, both
files are complete on disk before either is renamed (:func:`commit_all`), so a full disk keeps
both earlier exports. A failed or cancelled export removes its temporary file; one left by a
killed run is removed by the next export to the same file (only files named and shaped exactly
like ours, and not locked by a live writer). A symbolic link is written through: its target is
replaced, the link kept. Rows are written as they arrive: memory stays flat for 100k rows.

JSON: one array of :meth:`FileResult.to_json` objects, exactly as ``snakeid classify --json``,
kept exact (control characters are JSON-escaped, formulas are not touched). A file name that is
not valid UTF-8 shows its undecodable bytes as ``\\xNN`` in ``path``, and the object gets one
more key, ``path_bytes_b64``: the name's exact bytes, base64-encoded (absent for other names).

CSV columns (UTF-8, header row, one row per file including failures). A cell that starts with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'`` so a spreadsheet shows
it as text instead of running it as a formula (OWASP's advice against CSV injection): a photo
named ``=HYPERLINK(...).jpg`` is listed as ``'=HYPERLINK(...).jpg``. Use the JSON for exact
names: in the CSV a name that is not valid UTF-8 appears only in its ``\\xNN`` form.

===================  ==========================================================================
path                 the file as scanned (undecodable bytes as ``\\xNN``)
status               ``ok`` or ``error``
error                the error message (empty when ok)
verdict              ``species``, ``unsure``, ``not_snake`` or ``outside_coverage`` (empty on error)
risk                 ``true`` when the venom warning is on (venom_probability reached the model's threshold,
                     whatever the verdict; always for ``outside_coverage``), else ``false``
venom_probability    calibrated probability of a venomous snake (all venomous species in play), 0..1, six
                     decimals; empty on error or for ``outside_coverage``
country              the country code the answer assumed (empty: anywhere)
country_source       ``gps`` (the photo's own location) or ``option`` (the user's choice); empty: none
species              slug of the most likely species, whatever the verdict (also for ``not_snake``: the
                     species it would be if it were a snake); empty on error or for ``outside_coverage``
scientific_name      of that species
common_name          of that species
probability          its calibrated probability, 0..1, six decimals (the species', not the verdict's:
                     see ``verdict_probability``)
venomous             its venom status: ``yes``, ``mild``, ``no`` or ``unknown`` (counts as venomous)
top_k                all candidates as ``slug:probability`` joined by ``;``
warnings             warnings joined by `` | `` (e.g. a truncated file decoded partially)
verdict_probability  the probability behind the verdict, 0..1, six decimals: the top species' for
                     ``species`` and ``unsure``, the not-a-snake probability for ``not_snake``; empty for
                     ``outside_coverage`` and on error. The batch window's "Confidence in verdict" column
                     shows exactly this (:func:`verdict_probability`), its "Venomous chance" column
                     ``venom_probability``.
===================  ==========================================================================

Columns are only ever added at the end (``verdict_probability`` came last), so a script that reads
them by position keeps working.

:func:`is_replaceable_export` tells an earlier export (which ``snakeid batch`` may replace)
from anybody else's file, by its first bytes: see there.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from .results import FileResult

try:
    import fcntl
except ImportError:  # Windows: an open file cannot be deleted there anyway
    fcntl = None  # type: ignore[assignment]

CSV_COLUMNS = (
    "path",
    "status",
    "error",
    "verdict",
    "risk",
    "venom_probability",
    "country",
    "country_source",
    "species",
    "scientific_name",
    "common_name",
    "probability",
    "venomous",
    "top_k",
    "warnings",
    "verdict_probability",
)
WARNING_SEPARATOR = " | "


# Spreadsheets run a cell that starts with one of these as a formula (OWASP "CSV injection").
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formula(cell: str) -> str:
    """``'`` before a cell a spreadsheet would otherwise evaluate (OWASP's recommendation)."""
    return "'" + cell if cell.startswith(FORMULA_TRIGGERS) else cell


def verdict_probability(result: FileResult) -> float | None:
    """The probability behind the row's verdict (one definition for the CSV and the batch table).

    ``species`` / ``unsure``: the top species' calibrated probability; ``not_snake``: the
    not-a-snake probability; ``outside_coverage`` (no species in play) and errors: None.
    """
    pred = result.prediction
    if not result.ok or pred is None or pred.verdict == "outside_coverage":
        return None
    if pred.verdict == "not_snake":
        return pred.not_snake_probability
    return pred.best.probability if pred.best is not None else None


def csv_row(result: FileResult) -> dict[str, str]:
    row = _csv_values(result)
    return {column: neutralise_formula(value) for column, value in row.items()}


def _csv_values(result: FileResult) -> dict[str, str]:
    data = result.to_json()
    best = data["top"][0] if data["top"] else None
    return {
        "path": data["path"],
        "status": data["status"],
        "error": data["error"] or "",
        "verdict": data["verdict"] or "",
        "risk": "true" if data["risk"] else "false",
        "venom_probability": f"{data['venom_probability']:.6f}" if data["venom_probability"] is not None else "",
        "country": data["country"] or "",
        "country_source": data["country_source"] or "",
        "species": best["species"] if best else "",
        "scientific_name": best["scientific_name"] if best else "",
        "common_name": best["common_name"] if best else "",
        "probability": f"{best['probability']:.6f}" if best else "",
        "venomous": best["venomous"] if best else "",
        "top_k": ";".join(f"{c['species']}:{c['probability']:.6f}" for c in data["top"]),
        "warnings": WARNING_SEPARATOR.join(data["warnings"]),
        "verdict_probability": _six(verdict_probability(result)),
    }


def _six(value: float | None) -> str:
    return f"{value:.6f}" if value is not None else ""


_TEMP_SUFFIX = ".part"
# mkstemp's random part: 8 characters from this alphabet (CPython's tempfile._RandomNameSequence).
_TEMP_RANDOM = re.compile(r"[a-z0-9_]{8}")
_CSV_HEADER = ",".join(CSV_COLUMNS).encode()
# Exports written before the venom-probability and region columns, and before verdict_probability, are ours too.
_OLDER_CSV_HEADERS = (
    b"path,status,error,verdict,risk,species,scientific_name,common_name,probability,venomous,top_k,warnings",
    b"path,status,error,verdict,risk,venom_probability,country,country_source,species,scientific_name,common_name,"
    b"probability,venomous,top_k,warnings",
)
# Our JSON as JsonResultWriter or `snakeid classify --json` writes it: an empty array, or an array
# whose first object starts with "path". Only the first bytes are read.
_JSON_START = re.compile(rb'\A\s*\[\s*(\]|\{\s*"path"\s*:)')
_SNIFF_BYTES = 4096


def _looks_like_our_export(head: bytes, *, partial: bool = False) -> bool:
    """Whether these first bytes begin one of our exports. ``partial`` also accepts the start of
    a temporary file cut short by a kill (empty, or a lone ``[``)."""
    if not head:
        return True  # empty: nothing to lose (e.g. a file made by mktemp)
    first_line, newline, _ = head.partition(b"\n")
    if first_line.rstrip(b"\r") in (_CSV_HEADER, *_OLDER_CSV_HEADERS) and (newline or partial):
        return True
    if _JSON_START.match(head):
        return True
    return partial and head == b"["


def is_replaceable_export(path: Path | str) -> bool:
    """True when ``path`` (its target, for a link) is an earlier SnakeID export or an empty (0-byte) file.

    Recognised by its first bytes only: a CSV whose first line is exactly our header, or a JSON
    array that is empty or whose first object starts with the ``"path"`` key. Anything else (a
    photo, a spreadsheet, a FIFO or device, which are never read here) is somebody's data.
    """
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            return False
        with open(path, "rb") as fh:
            return _looks_like_our_export(fh.read(_SNIFF_BYTES))
    except OSError:
        return False


def _is_stale_temp(path: str) -> bool:
    """An abandoned temporary file of ours: a regular file we own, starting like our export,
    that no live writer holds (each writer keeps an exclusive lock on its temporary file)."""
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or (hasattr(os, "geteuid") and st.st_uid != os.geteuid()):
            return False
        with open(path, "rb") as fh:
            if not _looks_like_our_export(fh.read(_SNIFF_BYTES), partial=True):
                return False
            if fcntl is not None:
                try:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    return False  # a run writing the same export right now
            return True
    except OSError:
        return False


def remove_stale_temps(target: Path | str) -> list[Path]:
    """Delete the temporary files that killed runs left beside ``target``; returns them.

    Only names exactly like ours (``.NAME.XXXXXXXX.part``) that also pass :func:`_is_stale_temp`.
    """
    target = Path(target)
    prefix = f".{target.name}."
    removed = []
    try:
        with os.scandir(target.parent) as entries:
            names = [e.name for e in entries]
    except OSError:
        return removed
    for name in names:
        if not (name.startswith(prefix) and name.endswith(_TEMP_SUFFIX)):
            continue
        if not _TEMP_RANDOM.fullmatch(name[len(prefix):-len(_TEMP_SUFFIX)]):
            continue
        candidate = target.parent / name
        if _is_stale_temp(str(candidate)):
            try:
                candidate.unlink()
                removed.append(candidate)
            except OSError:
                pass
    return removed


def _open_text(fd: int, newline: str | None) -> IO[str]:
    """The temporary file's text stream (a seam: tests substitute one that reports a full disk)."""
    return os.fdopen(fd, "w", encoding="utf-8", newline=newline)


class _AtomicTextWriter:
    """A text file that appears at ``path`` only on :meth:`commit`; :meth:`abort` leaves no trace.

    A symbolic link at ``path`` is followed: its target is replaced (atomically) and the link
    kept. An existing FIFO or device (``/dev/null``, ``/dev/stdout``) is written directly, as is
    ``stream`` when given instead of a path: those cannot be replaced, nor rolled back.
    """

    def __init__(self, path: Path | str | None = None, newline: str | None = None, *,
                 stream: IO[str] | None = None):
        self.rows = 0
        self._done = False
        self._tmp: Path | None = None
        self._lock_fd: int | None = None
        self._owns_stream = False
        if stream is not None:
            self.path = None
            self.label = "standard output"
            self._fh: IO[str] = stream
            return
        self.path = Path(path)
        self.label = str(self.path)
        # Follow links to where the user's file really is; its folder holds the temporary file.
        self.target = Path(os.path.realpath(self.path))
        try:
            st = os.stat(self.target)
        except FileNotFoundError:
            st = None
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "Is a folder", str(self.path))
        if st is not None and not stat.S_ISREG(st.st_mode):
            self._fh = open(self.target, "w", encoding="utf-8", newline=newline)
            self._owns_stream = True
            return
        self._mode = stat.S_IMODE(st.st_mode) if st is not None else 0o644
        remove_stale_temps(self.target)
        # Same folder, so the final rename is atomic; a missing folder fails here, before any work.
        fd, tmp = tempfile.mkstemp(dir=self.target.parent, prefix=f".{self.target.name}.", suffix=_TEMP_SUFFIX)
        self._tmp = Path(tmp)
        try:
            if fcntl is not None:
                # Held until publish or abort (a dup shares the lock) so no other run's cleanup
                # mistakes this live file for a stale one.
                self._lock_fd = os.dup(fd)
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._fh = _open_text(fd, newline)
        except BaseException:
            self._release_lock()
            os.close(fd)
            self._tmp.unlink(missing_ok=True)
            raise

    def _finish_content(self) -> None:
        """Subclasses write their closing text here."""

    @contextlib.contextmanager
    def _abort_on_error(self):
        """For a subclass's first writes: if they fail the caller never gets the writer to abort."""
        try:
            yield
        except BaseException:
            self.abort()
            raise

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            fd, self._lock_fd = self._lock_fd, None
            with contextlib.suppress(OSError):
                os.close(fd)

    def prepare(self) -> None:
        """Finish and flush everything to disk; after this only the rename is left."""
        self._finish_content()
        self._fh.flush()
        if self._tmp is None:
            if self._owns_stream:
                self._fh.close()
            return
        os.fsync(self._fh.fileno())
        self._fh.close()
        # mkstemp creates 0600 files; exports are ordinary documents (umask is not read here:
        # reading it means setting it, which races with other threads). A replaced file keeps its mode.
        os.chmod(self._tmp, self._mode)

    def publish(self) -> Path | None:
        """The atomic rename over the target (a no-op for streams)."""
        if self._tmp is not None:
            os.replace(self._tmp, self.target)
            self._tmp = None
        self._release_lock()
        self._done = True
        return self.path

    def commit(self) -> Path | None:
        if self._done:
            return self.path
        commit_all([self])
        return self.path

    def abort(self) -> None:
        """Drop the temporary file. Never raises: it runs while another error is being reported."""
        if self._done:
            return
        self._done = True
        if self._tmp is not None or self._owns_stream:
            # Closing flushes, and on a full disk that fails again; the file goes regardless.
            with contextlib.suppress(OSError, ValueError):
                self._fh.close()
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                self._tmp.unlink()
            self._tmp = None
        self._release_lock()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.commit()
        else:
            self.abort()
        return False


def commit_all(writers: Iterable[_AtomicTextWriter]) -> None:
    """Commit several exports together: every file is complete on disk before any target is
    replaced, so a full disk or I/O error leaves all earlier exports as they were."""
    writers = [w for w in writers if not w._done]
    try:
        for w in writers:
            w.prepare()
        for w in writers:
            w.publish()
    except BaseException:
        for w in writers:
            w.abort()
        raise


class CsvResultWriter(_AtomicTextWriter):
    def __init__(self, path: Path | str | None = None, *, stream: IO[str] | None = None):
        super().__init__(path, newline="", stream=stream)  # the csv module writes its own line endings
        with self._abort_on_error():
            self._csv = csv.DictWriter(self._fh, fieldnames=CSV_COLUMNS)
            self._csv.writeheader()

    def write(self, result: FileResult) -> None:
        self._csv.writerow(csv_row(result))
        self.rows += 1


class JsonResultWriter(_AtomicTextWriter):
    def __init__(self, path: Path | str | None = None, *, stream: IO[str] | None = None):
        super().__init__(path, stream=stream)
        with self._abort_on_error():
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
        commit_all(writers)
        return count
    except BaseException:
        for w in writers:
            w.abort()
        raise


def read_csv(path: Path | str) -> list[dict[str, str]]:
    """Read an export back (used by tests and handy for scripts)."""
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))
