"""`snakeid batch DIR --csv OUT.csv [--json OUT.json]`: classify a folder, streaming rows to disk.

Called by ``cli.py`` with its parsed arguments. Rows are written as results arrive (memory
stays flat for 100k files) into temporary files that replace OUT.csv / OUT.json only once
the run completes; an interrupted run leaves earlier exports untouched, and the resume
cache makes the rerun skip everything already classified.
Outputs never destroy anything: ``--csv``/``--json`` may not name one of the photos, the same
file twice, or an existing file that is not an earlier SnakeID export (unless ``--force``);
``-`` streams that format to standard output (messages stay on stderr); a write failure (full
disk, I/O error) is one sentence, exit 2, with no partial file and earlier exports untouched.
Exit codes: 0 all fine, 1 some files (or sub-folders) failed, 2 usage or model error.
"""

from __future__ import annotations

import io
import os
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from .batch import FolderError, FolderRun, IncompleteRunError, Progress, format_duration
from .export import CsvResultWriter, JsonResultWriter, commit_all, is_replaceable_export
from .names import for_terminal

if TYPE_CHECKING:
    from .predictor import Predictor

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


STDOUT = "-"  # as an output: stream the rows to standard output


def _same_output(a: str, b: str) -> bool:
    """Two spellings (relative, ``..``, links, hard links) of one file."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _check_outputs(outputs: list[tuple[str, str]]) -> str | None:
    """Problems visible before the scan: a folder, a missing folder, the same file twice."""
    if sum(value == STDOUT for _, value in outputs) > 1:
        return "Only one of --csv and --json can be - (standard output)."
    files = [(label, value) for label, value in outputs if value != STDOUT]
    for label, value in files:
        real = os.path.realpath(value)
        if os.path.isdir(real):
            return f"{label} {value} is a folder; give a file name."
        if not os.path.isdir(os.path.dirname(real)):
            return f"The folder for {label} {value} does not exist."
        try:
            mode = os.stat(real).st_mode
        except OSError:
            continue
        if not (stat.S_ISREG(mode) or stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)):
            return f"{label} {value} is not a regular file; give a file name."
    if len(files) == 2 and _same_output(files[0][1], files[1][1]):
        return f"--csv and --json name the same file ({files[1][1]}); give two different names."
    return None


def _check_outputs_against_inputs(outputs: list[tuple[str, str]], paths: list[str], force: bool) -> str | None:
    """Problems that need the scan: an output that is one of the photos, or somebody's file."""
    existing = {}
    for label, value in outputs:
        if value == STDOUT:
            continue
        try:
            st = os.stat(value)
        except OSError:
            continue  # a file that does not exist yet cannot be a photo, nor anybody's data
        if stat.S_ISREG(st.st_mode):
            existing[(st.st_dev, st.st_ino)] = (label, value)
    if existing:
        # Compared by (device, inode): catches other spellings, symbolic links and hard links.
        for path in paths:
            try:
                st = os.stat(path)
            except OSError:
                continue
            clash = existing.get((st.st_dev, st.st_ino))
            if clash:
                return f"{clash[0]} {clash[1]} is one of the photos being classified ({path}); choose another file name."
    if not force:
        for label, value in existing.values():
            if not is_replaceable_export(value):
                return (f"{label} {value} already exists and is not a SnakeID export; "
                        "choose another file name, or add --force to replace it.")
    return None


class _Utf8Stdout:
    """Standard output as UTF-8 text for streamed rows, whatever the locale, left open afterwards."""

    def __init__(self, newline: str | None):
        self._wrapper = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline=newline, write_through=True)

    def __getattr__(self, name):
        return getattr(self._wrapper, name)

    def close(self) -> None:
        self._wrapper.flush()
        self._wrapper.detach()  # closing the wrapper would close the process's stdout


def _open_writers(args, stdout: TextIO | None) -> list:
    writers = []
    try:
        for cls, value, newline in ((CsvResultWriter, args.csv, ""), (JsonResultWriter, args.json, None)):
            if not value:
                continue
            if value == STDOUT:
                stream = stdout if stdout is not None else _Utf8Stdout(newline)
                writers.append(cls(stream=stream))
            else:
                writers.append(cls(value))
    except BaseException:
        for w in writers:
            w.abort()
        raise
    return writers


def _write_failure(exc: OSError, writers: list) -> str:
    reason = exc.strerror or str(exc) or type(exc).__name__
    where = " and ".join(w.label for w in writers if w.path is not None)
    kept = f"; {where} left unchanged" if where else ""
    return f"could not write the results ({reason}){kept}."


def run_batch_command(args, predictor_loader: Callable[[], "Predictor"], stderr: TextIO | None = None,
                      stdout: TextIO | None = None) -> int:
    err = stderr or sys.stderr

    def say(message: str) -> None:
        print(f"snakeid: {for_terminal(message)}", file=err, flush=True)

    outputs = [(label, value) for label, value in (("--csv", args.csv), ("--json", args.json)) if value]
    problem = _check_outputs(outputs)
    if problem:
        say(problem)
        return EXIT_USAGE
    if args.batch_size < 1:
        say("--batch-size must be at least 1")
        return EXIT_USAGE
    if args.workers is not None and args.workers < 1:
        say("--workers must be at least 1")
        return EXIT_USAGE

    scan_problems: list[str] = []

    def on_problem(path: Path, message: str) -> None:
        scan_problems.append(message)
        say(message)

    interactive = err.isatty()
    last_scan_print = [time.monotonic()]

    def on_scan_progress(found: int) -> None:
        now = time.monotonic()
        if now - last_scan_print[0] >= (0.2 if interactive else 10.0):
            last_scan_print[0] = now
            line = for_terminal(f"scanning {args.directory}: {found} photos found so far")
            if interactive:
                err.write(f"\r\033[K{line}")
                err.flush()
            else:
                print(line, file=err, flush=True)

    run = FolderRun(args.directory, args.recursive, on_problem=on_problem, on_scan_progress=on_scan_progress)
    try:
        paths = run.scan()
    except FolderError as exc:
        say(str(exc))
        return EXIT_USAGE
    problem = _check_outputs_against_inputs(outputs, paths, getattr(args, "force", False))
    if problem:
        say(problem)
        return EXIT_USAGE
    if not paths:
        say(f"no images found in {args.directory}" + ("" if args.recursive else " (use --recursive for sub-folders)"))

    predictor = predictor_loader()
    rows = run.classify(
        predictor, use_cache=not args.no_cache, top_k=args.top, country=getattr(args, "country", "auto"),
        batch_size=args.batch_size, decode_workers=args.workers, on_cache_error=say,
    )

    progress = Progress(run.total)
    last_print = 0.0
    failures = 0
    writers: list = []
    try:
        writers = _open_writers(args, stdout)
        for result in rows:  # FolderRun checks the row count at the end: IncompleteRunError
            for w in writers:
                w.write(result)
            if not result.ok:
                failures += 1
                if interactive:
                    err.write("\r\033[K")
                say(result.error or f"{result.path}: failed")
            progress.update(progress.done + 1)
            now = time.monotonic()
            # A live line on a terminal; an occasional plain line in logs.
            if now - last_print >= (0.2 if interactive else 10.0) or progress.done == progress.total:
                last_print = now
                line = (f"{progress.done}/{progress.total} photos  {progress.rate:5.1f}/s  "
                        f"left {format_duration(progress.seconds_left)}  errors {failures}")
                if interactive:
                    err.write(f"\r\033[K{line}")
                    err.flush()
                else:
                    print(line, file=err, flush=True)
        commit_all(writers)
    except IncompleteRunError as exc:
        for w in writers:
            w.abort()
        if interactive:
            err.write("\n")
        say(str(exc))
        return EXIT_USAGE
    except BrokenPipeError:
        for w in writers:
            w.abort()
        raise  # the reader of standard output went away: cli.main ends quietly
    except OSError as exc:
        # A full disk, an I/O or permission error: no partial file, earlier exports kept.
        for w in writers:
            w.abort()
        if interactive:
            err.write("\n")
        say(_write_failure(exc, writers))
        return EXIT_USAGE
    except BaseException:
        for w in writers:
            w.abort()
        if interactive:
            err.write("\n")
        raise
    finally:
        rows.close()  # stops the decoders and closes the resume cache on any way out
    if interactive:
        err.write("\n")
    hits = f", {run.cache_hits} reused from an earlier run" if run.cache_hits else ""
    written = " and ".join(w.label for w in writers)
    say(f"{progress.done} photos classified ({failures} failed{hits}); wrote {written}")
    if run.other_files:
        say(run.other_files_note())
    return EXIT_SOME_FAILED if failures or scan_problems else EXIT_OK
