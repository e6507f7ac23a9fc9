"""`snakeid batch DIR --csv OUT.csv [--json OUT.json]`: classify a folder, streaming rows to disk.

Called by ``cli.py`` with its parsed arguments. Rows are written as results arrive (memory
stays flat for 100k files) into temporary files that replace OUT.csv / OUT.json only once
the run completes; an interrupted run leaves earlier exports untouched, and the resume
cache makes the rerun skip everything already classified.
Exit codes: 0 all fine, 1 some files (or sub-folders) failed, 2 usage or model error.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from .batch import BatchEngine, FolderError, IncompleteRunError, check_row_count, scan_images
from .export import CsvResultWriter, JsonResultWriter

if TYPE_CHECKING:
    from .predictor import Predictor

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


class Progress:
    """Rate and time-left bookkeeping shared by the CLI line and the dialog's labels."""

    def __init__(self, total: int, window_s: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self.total = total
        self.done = 0
        self._clock = clock
        self._window = window_s
        self._marks: list[tuple[float, int]] = [(clock(), 0)]

    def update(self, done: int) -> None:
        self.done = done
        now = self._clock()
        self._marks.append((now, done))
        # Keep a short window so the rate follows the current pace (cache hits race, decodes don't).
        while len(self._marks) > 2 and now - self._marks[1][0] > self._window:
            self._marks.pop(0)

    @property
    def rate(self) -> float:
        (t0, d0), (t1, d1) = self._marks[0], self._marks[-1]
        return (d1 - d0) / (t1 - t0) if t1 > t0 else 0.0

    @property
    def seconds_left(self) -> float | None:
        rate = self.rate
        return (self.total - self.done) / rate if rate > 0 else None


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _check_output(path_text: str, label: str) -> str | None:
    path = Path(path_text)
    if path.is_dir():
        return f"{label} {path} is a folder; give a file name."
    if not path.parent.is_dir():
        return f"The folder for {label} {path} does not exist."
    return None


def run_batch_command(args, predictor_loader: Callable[[], "Predictor"], stderr: TextIO | None = None) -> int:
    err = stderr or sys.stderr

    def say(message: str) -> None:
        print(f"snakeid: {message}", file=err, flush=True)

    for label, value in (("--csv", args.csv), ("--json", args.json)):
        if value:
            problem = _check_output(value, label)
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
            line = f"scanning {args.directory}: {found} photos found so far"
            if interactive:
                err.write(f"\r\033[K{line}")
                err.flush()
            else:
                print(line, file=err, flush=True)

    try:
        # Listing first gives the progress line a total; 100k paths are a few MB.
        paths = [str(p) for p in scan_images(args.directory, args.recursive, on_problem, on_scan_progress)]
    except FolderError as exc:
        say(str(exc))
        return EXIT_USAGE
    if not paths:
        say(f"no images found in {args.directory}" + ("" if args.recursive else " (use --recursive for sub-folders)"))

    predictor = predictor_loader()
    cache = None
    if not args.no_cache:
        from .batch_cache import BatchCache

        cache = BatchCache.open_default()
        if cache is None and BatchCache.last_error:
            say(BatchCache.last_error)
    engine = BatchEngine(
        predictor, batch_size=args.batch_size, decode_workers=args.workers, top_k=args.top, cache=cache
    )

    progress = Progress(len(paths))
    last_print = 0.0
    failures = 0
    writers: list = []
    try:
        writers.append(CsvResultWriter(args.csv))
        if args.json:
            writers.append(JsonResultWriter(args.json))
        for result in engine.run(paths):
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
        check_row_count(len(paths), progress.done)
        for w in writers:
            w.commit()
    except IncompleteRunError as exc:
        for w in writers:
            w.abort()
        if interactive:
            err.write("\n")
        say(str(exc))
        return EXIT_USAGE
    except OSError as exc:
        for w in writers:
            w.abort()
        say(f"could not write the results ({exc.strerror or exc}{': ' + exc.filename if exc.filename else ''}).")
        return EXIT_USAGE
    except BaseException:
        for w in writers:
            w.abort()
        if interactive:
            err.write("\n")
        raise
    finally:
        if cache is not None:
            cache.close()
    if interactive:
        err.write("\n")
    hits = f", {engine.cache_hits} reused from an earlier run" if engine.cache_hits else ""
    outputs = " and ".join(str(w.path) for w in writers)
    say(f"{progress.done} photos classified ({failures} failed{hits}); wrote {outputs}")
    return EXIT_SOME_FAILED if failures or scan_problems else EXIT_OK
