"""Batch classification of a folder: the pipeline shared by ``snakeid batch`` and the batch dialog.

:class:`FolderRun` is that pipeline (scan, resume cache, engine, the row-count guard); both
front ends use it and only present what it yields. :class:`Progress` is their rate and time left.

Decoding a 12 MP JPEG costs several times more than the forward pass, so a small pool
of decoder threads (Pillow releases the GIL while it decodes and resizes) feeds batched
forward passes. At most ``max_pending`` files are in flight at any moment (submitted,
decoded or waiting for their batch), so memory stays flat however many files there are.
Results come out in input order, one per path, failures included.

Qt-free: the GUI runs :meth:`BatchEngine.run` in a worker thread.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ErrorKind, ImageLoadError, SnakeIDError
from .imageload import is_image_path, load_image
from .preprocess import eval_transform
from .results import FileResult

if TYPE_CHECKING:  # torch is imported by the predictor anyway; keep this module cheap to import
    import torch

    from .batch_cache import BatchCache
    from .predictor import Predictor

DEFAULT_BATCH_SIZE = 16
# How often a blocked wait wakes up to look at the cancel flag: bounds cancel latency.
_POLL_S = 0.05

ProblemCallback = Callable[[Path, str], None]


class FolderError(SnakeIDError):
    """The folder to classify cannot be used at all (missing, not a folder, unreadable)."""


class IncompleteRunError(SnakeIDError):
    """A finished (not cancelled) run produced fewer or more rows than the scan found files."""


def check_row_count(scanned: int, rows: int) -> None:
    """The last guard against silent data loss: a run that was not cancelled must give one row per file.

    :meth:`FolderRun.classify` calls it, so the CLI and the batch dialog never report a short run as success.
    """
    if rows != scanned:
        raise IncompleteRunError(
            f"Only {rows} of {scanned} photos got a result row: the run is incomplete and its results were "
            "not saved as a success. Please run it again and report this problem."
            if rows < scanned
            else f"{rows} result rows were produced for {scanned} photos: the results are inconsistent and were "
            "not saved as a success. Please report this problem."
        )


def default_decode_workers() -> int:
    """One decoder per core: decoding is most of the work per photo and releases the GIL.

    Torch runs single-threaded beside them on 2 cores (``runtime.default_threads``). Measured
    here with 12 MP JPEGs (benchmarks/bench_batch.py, machine under load 4-5): 1 decoder
    16.0 photos/s, 2 decoders 18.1, 3 decoders 18.1; 2 torch threads instead of 1: 17.9.
    """
    return max(1, min(8, os.cpu_count() or 2))


def scan_images(
    root: Path | str,
    recursive: bool = True,
    on_problem: ProblemCallback | None = None,
    on_progress: Callable[[int], None] | None = None,
    on_other_file: Callable[[Path], None] | None = None,
) -> Iterator[Path]:
    """Image files under ``root`` in a deterministic order (entries sorted by name, depth first).

    Each real file and folder is visited once, keyed by (device, inode): links and hard links that
    lead to something already listed are skipped and reported, so a "diamond" of folder links (no
    loop, but millions of paths to the same photos) yields each photo once, quickly. Hidden entries
    (names starting with ".") are skipped: they are thumbnails, AppleDouble ``._*`` files and tool
    folders, never the user's photos. Sub-folders that cannot be read and symbolic-link loops are
    reported through ``on_problem(path, message)`` and skipped; only an unusable ``root`` raises
    :class:`FolderError`. ``on_progress(found)`` is called after each folder with the count so far;
    ``on_other_file(path)`` with each visible file that is not an image by its name.
    """
    root = Path(root)
    try:
        root_stat = root.stat()
    except FileNotFoundError:
        raise FolderError(f"The folder {root} does not exist.") from None
    except OSError as exc:
        raise FolderError(f"The folder {root} cannot be read ({exc.strerror or exc}).") from None
    if not stat.S_ISDIR(root_stat.st_mode):
        raise FolderError(f"{root} is not a folder.")
    try:
        entries = _sorted_entries(root)
    except OSError as exc:
        raise FolderError(f"The folder {root} cannot be read ({exc.strerror or exc}).") from None

    walk = _Walk(recursive, on_problem or (lambda path, message: None), on_progress, on_other_file)
    root_key = (root_stat.st_dev, root_stat.st_ino)
    walk.seen[root_key] = root
    yield from walk.folder(root, entries, {root_key})


def _sorted_entries(folder: Path) -> list[os.DirEntry]:
    with os.scandir(folder) as it:
        return sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)


class _Walk:
    """State of one scan: what was already listed (by device and inode) and the count for progress."""

    def __init__(self, recursive: bool, report: ProblemCallback, on_progress: Callable[[int], None] | None,
                 on_other_file: Callable[[Path], None] | None = None):
        self.recursive = recursive
        self.on_other_file = on_other_file
        self.report = report
        self.on_progress = on_progress
        self.seen: dict[tuple[int, int], Path] = {}  # files and folders already listed -> first path
        self.found = 0

    def folder(self, folder: Path, entries, ancestors: set) -> Iterator[Path]:
        for entry in entries:
            path = Path(entry.path)
            try:
                is_dir = entry.is_dir(follow_symlinks=True)
            except OSError:
                is_dir = False
            if not is_dir:
                if is_image_path(path):
                    if self._first_visit(path, entry):
                        self.found += 1
                        yield path
                elif self.on_other_file is not None:
                    self.on_other_file(path)
                continue
            if self.recursive:
                yield from self._subfolder(path, entry, ancestors)
        if self.on_progress is not None:
            self.on_progress(self.found)

    def _first_visit(self, path: Path, entry: os.DirEntry) -> bool:
        try:
            st = entry.stat(follow_symlinks=True)
        except OSError:
            # Broken links and unreadable files with an image suffix still become rows:
            # the user should learn that they could not be classified.
            return True
        key = (st.st_dev, st.st_ino)
        first = self.seen.setdefault(key, path)
        if first is not path:
            self.report(path, f"Skipped {path}: it is the same file as {first}, already listed.")
            return False
        return True

    def _subfolder(self, path: Path, entry: os.DirEntry, ancestors: set) -> Iterator[Path]:
        try:
            st = entry.stat(follow_symlinks=True)
            key = (st.st_dev, st.st_ino)
            if key in ancestors:
                self.report(path, f"Skipped {path}: a symbolic link loop (it leads back to a folder above it).")
                return
            if key in self.seen:
                self.report(path, f"Skipped {path}: it is the same folder as {self.seen[key]}, already scanned.")
                return
            sub_entries = _sorted_entries(path)
        except OSError as exc:
            self.report(path, f"Skipped the folder {path}: it cannot be read ({exc.strerror or exc}).")
            return
        self.seen[key] = path
        ancestors.add(key)
        try:
            yield from self.folder(path, sub_entries, ancestors)
        finally:
            ancestors.discard(key)


@dataclass
class _Decoded:
    result: FileResult
    tensor: "torch.Tensor | None" = None  # None: error row, or cache hit (result already complete)
    place: tuple = (None, None)  # where the answer assumes the photo was taken (predictor.resolve_place)


class BatchEngine:
    """Classifies many files: threaded decoding, batched inference, bounded memory, in-order results.

    ``cache`` (a :class:`~snakeid_desktop.batch_cache.BatchCache`) makes reruns skip files
    whose path, size and mtime are unchanged since a run with the same model.
    """

    def __init__(
        self,
        predictor: "Predictor",
        batch_size: int = DEFAULT_BATCH_SIZE,
        decode_workers: int | None = None,
        max_pending: int | None = None,
        top_k: int | None = None,
        cache: "BatchCache | None" = None,
        optimize: bool = True,
        country: str | None = None,
    ):
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.predictor = predictor
        self.batch_size = batch_size
        self.decode_workers = decode_workers or default_decode_workers()
        # Enough in flight to keep every decoder busy while a batch waits for the model;
        # each pending item holds one small preprocessed tensor (224 px: 0.6 MB).
        self.max_pending = max(max_pending or 2 * batch_size + 4 * self.decode_workers, batch_size)
        self.top_k = top_k or predictor.top_k
        self.cache = cache
        self.cache_hits = 0
        self.optimize = optimize and hasattr(predictor, "throughput_model")
        self.country = country  # a code, "auto"/None (the photo's GPS) or "any"

    def _batch_model(self):
        """The predictor's traced network for long runs (prepared once, on first use), or None for eager."""
        if not self.optimize:
            return None
        return self.predictor.throughput_model()

    def _decode(self, path: str, cancel: threading.Event) -> _Decoded:
        result = FileResult(path=path)
        if cancel.is_set():
            return _Decoded(result)  # never reported: the run is stopping
        prep = self.predictor.preprocessing
        try:
            loaded = load_image(path, min_side=prep.resize_size)
            tensor = eval_transform(loaded.image, prep)
        except ImageLoadError as exc:
            result.error, result.error_kind = str(exc), exc.kind
            return _Decoded(result)
        except MemoryError:
            result.error, result.error_kind = f"{path}: not enough memory to decode this image.", ErrorKind.MEMORY
            return _Decoded(result)
        except Exception as exc:  # one bad file must never end a 10k-photo run
            result.error = f"{path}: unexpected error while reading the image ({type(exc).__name__}: {exc})."
            result.error_kind = ErrorKind.UNEXPECTED
            return _Decoded(result)
        result.warnings = list(loaded.warnings)
        from .predictor import resolve_place

        return _Decoded(result, tensor, resolve_place(self.country, loaded.gps_country))

    def _cached(self, path: str, key: str | None) -> tuple[FileResult | None, os.stat_result | None]:
        if self.cache is None or key is None:
            return None, None
        try:
            st = os.stat(path)
        except OSError:
            return None, None  # the decoder reports the precise error
        return self.cache.lookup(path, st, key), st

    def _predict_into(self, items: list[_Decoded]) -> None:
        """Fill each item's prediction; a batch the model cannot run is retried photo by photo,
        and a photo that still fails becomes an error row, so no row is ever lost to one bad batch."""
        import torch

        from .predictor import apply_outcome

        model = self._batch_model()

        def predict(batch_items: list[_Decoded]) -> list:
            batch = torch.stack([d.tensor for d in batch_items])
            places = [d.place for d in batch_items]
            if model is None:
                return self.predictor.predict_tensors(batch, self.top_k, places=places)
            return self.predictor.predict_tensors(batch, self.top_k, model=model, places=places)

        try:
            predictions = predict(items)
        except Exception:
            predictions = None
        for index, decoded in enumerate(items):
            if predictions is not None:
                apply_outcome(decoded.result, predictions[index])  # a non-finite output is that file's error
            else:
                try:
                    apply_outcome(decoded.result, predict([decoded])[0])
                except Exception as exc:  # MemoryError included: one photo, not the run
                    decoded.result.error = (
                        f"{decoded.result.path}: the model could not classify this photo ({type(exc).__name__}: {exc})."
                    )
                    decoded.result.error_kind = ErrorKind.UNEXPECTED
            decoded.tensor = None

    def run(self, paths: Iterable[Path | str], cancel_event: threading.Event | None = None) -> Iterator[FileResult]:
        """Yield one :class:`FileResult` per path, in order, until done or ``cancel_event`` is set.

        Cancelling stops within about one batch; results already yielded stay valid.
        Closing the generator early also stops the decoder threads.
        """
        cancel = cancel_event or threading.Event()
        stop = threading.Event()  # set on any exit so queued decodes return at once
        path_iter = iter(paths)
        exhausted = False
        # Head of the deque is the next result to yield: (future or ready item, stat for the cache).
        inflight: deque[tuple[Future | _Decoded, os.stat_result | None]] = deque()
        ready: list[tuple[_Decoded, os.stat_result | None]] = []
        ready_tensors = 0
        pool = ThreadPoolExecutor(max_workers=self.decode_workers, thread_name_prefix="snakeid-decode")
        self.cache_hits = 0
        key = None
        if self.cache is not None:
            from .batch_cache import model_key

            key = model_key(self.predictor, self.top_k, self.country)

        def top_up() -> None:
            nonlocal exhausted
            while not exhausted and len(inflight) + len(ready) < self.max_pending and not cancel.is_set():
                try:
                    path = os.fspath(next(path_iter))
                except StopIteration:
                    exhausted = True
                    return
                hit, st = self._cached(path, key)
                if hit is not None:
                    self.cache_hits += 1
                    inflight.append((_Decoded(hit), None))
                else:
                    inflight.append((pool.submit(self._decode, path, stop), st))

        def flush() -> list[FileResult]:
            nonlocal ready_tensors
            with_tensor = [(d, st) for d, st in ready if d.tensor is not None]
            if with_tensor:
                self._predict_into([d for d, _ in with_tensor])
                if self.cache is not None:
                    self.cache.store_many(
                        ((d.result, st) for d, st in with_tensor if st is not None and d.result.ok), key
                    )
            out = [d.result for d, _ in ready]
            ready.clear()
            ready_tensors = 0
            return out

        try:
            # Every path the scan yields becomes exactly one row: the loop ends only when the paths
            # are exhausted and nothing is in flight or waiting for a batch (or on cancel).
            while True:
                if cancel.is_set():
                    return
                top_up()
                if inflight:
                    head, st = inflight[0]
                    if isinstance(head, Future):
                        try:
                            decoded = head.result(timeout=_POLL_S)
                        except FutureTimeout:
                            continue
                    else:
                        decoded = head
                    inflight.popleft()
                    ready.append((decoded, st))
                    if decoded.tensor is not None:
                        ready_tensors += 1
                if not ready:
                    if exhausted and not inflight:
                        return
                    continue
                # A batch is full, nothing else is decoded yet, or no row waits for the model.
                if ready_tensors >= self.batch_size or not inflight or ready_tensors == 0:
                    yield from flush()
        finally:
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)


class FolderRun:
    """One folder through the whole pipeline: scan, then classify (resume cache + engine).

    Two steps, so a caller can look at the paths (and load the model) in between::

        run = FolderRun(folder, recursive, cancel=event, on_problem=..., on_scan_progress=...)
        paths = run.scan()  # FolderError if the folder itself cannot be used
        for result in run.classify(predictor, use_cache=True, top_k=..., country=...):
            ...
        run.total, run.rows, run.cache_hits, run.cache_error, run.cancelled

    Every scanned path becomes exactly one row, in scan order. ``classify`` opens the user's
    resume cache and closes it however the iteration ends; when it ends without being cancelled,
    a row count other than ``total`` raises :class:`IncompleteRunError` (never a quiet success).
    ``cancel`` stops the scan between files and the engine within about one batch.
    """

    def __init__(
        self,
        folder: Path | str,
        recursive: bool = True,
        *,
        cancel: threading.Event | None = None,
        on_problem: ProblemCallback | None = None,
        on_scan_progress: Callable[[int], None] | None = None,
    ):
        self.folder = Path(folder)
        self.recursive = recursive
        self.cancel = cancel or threading.Event()
        self._on_problem = on_problem
        self._on_scan_progress = on_scan_progress
        self._scanned = False
        self.paths: list[str] = []
        self.rows = 0  # rows yielded so far
        self.cache_hits = 0
        self.cache_error: str | None = None  # why the resume cache could not be used, if it could not
        self.cancelled = False
        # Visible files that are not photos by their name (notes, videos, camera raw files): not rows, but
        # counted, so the user hears that they were left out.
        self.other_files: list[str] = []

    @property
    def total(self) -> int:
        return len(self.paths)

    def other_files_note(self) -> str | None:
        """One sentence on the files the scan left out because they are not photos by their name, or None."""
        if not self.other_files:
            return None
        count = len(self.other_files)
        noun = "file was" if count == 1 else "files were"
        return (f"{count} other {noun} not classified: not photos by their name "
                f"(e.g. {Path(self.other_files[0]).name}).")

    def scan(self) -> list[str]:
        """The photos to classify, listed up front: that gives progress a total (100k paths are a few MB)."""
        self.paths = []
        self.other_files = []
        for path in scan_images(self.folder, self.recursive, self._on_problem, self._on_scan_progress,
                                on_other_file=lambda other: self.other_files.append(str(other))):
            if self.cancel.is_set():
                break
            self.paths.append(str(path))
        self._scanned = True
        self.cancelled = self.cancel.is_set()
        return self.paths

    def classify(
        self,
        predictor: "Predictor",
        *,
        use_cache: bool = True,
        top_k: int | None = None,
        country: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        decode_workers: int | None = None,
        on_cache_error: Callable[[str], None] | None = None,
    ) -> Iterator[FileResult]:
        """Yield one :class:`FileResult` per scanned path, in order (scans first if :meth:`scan` was not called)."""
        if not self._scanned:
            self.scan()
        cache = None
        if use_cache:
            from .batch_cache import BatchCache

            cache = BatchCache.open_default()
            self.cache_error = BatchCache.last_error if cache is None else None
            if self.cache_error and on_cache_error is not None:
                on_cache_error(self.cache_error)
        self.rows = self.cache_hits = 0
        results = None
        try:
            engine = BatchEngine(predictor, batch_size=batch_size, decode_workers=decode_workers, top_k=top_k,
                                 cache=cache, country=country)
            results = engine.run(self.paths, self.cancel)
            for result in results:
                self.rows += 1
                self.cache_hits = engine.cache_hits
                yield result
            self.cache_hits = engine.cache_hits
        finally:
            # An abandoned iteration stops the decoder threads now, not whenever it is collected.
            close = getattr(results, "close", None)  # any iterator will do; the engine's is a generator
            if close is not None:
                close()
            if cache is not None:
                cache.close()
        self.cancelled = self.cancel.is_set()
        if not self.cancelled:
            check_row_count(self.total, self.rows)


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
