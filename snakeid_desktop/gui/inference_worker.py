"""Background model loading, decoding and inference for the main window.

One worker ``QObject`` runs in one ``QThread`` and pulls requests from the core's
:class:`~snakeid_desktop.request_queue.RequestQueue` (newest first, re-orderable, cancellable;
the one record of what is still wanted). A request either classifies a photo or, for a photo
whose answer is already known, only decodes it for display: the model never sees those.
The model loads lazily on that thread right after the window shows, so the GUI thread never
imports torch. Everything that crosses back to the GUI thread is plain Python data
(dataclasses, bytes), never QPixmap.

Shutdown: :meth:`InferenceController.shutdown` sets a stop flag the worker checks between
steps (load, decode, infer, emit), then joins the thread. One step is at most one decode
or one forward pass, so closing mid-inference waits a fraction of a second, not a run.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal, Slot
from PySide6.QtGui import QImage

from ..request_queue import (  # noqa: F401  (re-exported: the GUI's callers import them from here)
    MAX_TOP_K,
    BytesSource,
    PathSource,
    PixelSource,
    Request,
    RequestKind,
    RequestQueue,
    Source,
)
from ..results import FileResult
from .taught import TaughtStatus, refit

log = logging.getLogger(__name__)

DISPLAY_MAX_SIDE = 1024  # the result card never needs more (HiDPI included, it is scaled down)
THUMBNAIL_SIDE = 160  # session strip icons, 2x for HiDPI screens
DECODE_MIN_SIDE = 768  # lets the loader use JPEG draft mode while keeping the display sharp
NO_MODEL_KIND = "no_model"


# ---------------------------------------------------------------- plain data crossing threads


@dataclass(frozen=True)
class RgbPixels:
    """Tightly packed RGB888 pixels; turned into a QImage on the receiving side."""

    width: int
    height: int
    data: bytes

    def to_qimage(self) -> QImage:
        # .copy() detaches from the Python bytes buffer, which QImage does not own.
        return QImage(self.data, self.width, self.height, 3 * self.width, QImage.Format.Format_RGB888).copy()

    @classmethod
    def from_pil(cls, image, max_side: int) -> "RgbPixels":
        from PIL import Image

        small = image.convert("RGB") if image.mode != "RGB" else image.copy()
        if max(small.size) > max_side:
            small.thumbnail((max_side, max_side), Image.Resampling.BICUBIC, reducing_gap=2.0)
        return cls(small.width, small.height, small.tobytes())


@dataclass(frozen=True)
class ModelInfo:
    version: str
    directory: str
    classes: tuple[str, ...]
    metrics: dict
    per_class_accuracy: dict
    species_threshold: float
    not_snake_threshold: float
    risk_threshold: float
    input_size: int
    metadata: dict = field(default_factory=dict)
    taught: TaughtStatus = TaughtStatus()  # the species taught on this computer it answers with (or cannot)

    @classmethod
    def from_bundle(cls, bundle) -> "ModelInfo":
        import copy

        th = bundle.thresholds
        return cls(
            version=bundle.version,
            directory=str(bundle.directory),
            classes=tuple(bundle.classes),
            metrics=copy.deepcopy(bundle.metrics),
            per_class_accuracy=dict(bundle.per_class_accuracy),
            species_threshold=th.species,
            not_snake_threshold=th.not_snake,
            risk_threshold=th.risk,
            input_size=bundle.preprocessing.input_size,
            metadata=copy.deepcopy(bundle.metadata),
        )


@dataclass(frozen=True)
class Outcome:
    """What one request produced: the FileResult (prediction or error) plus display pixels."""

    request_id: int
    source_name: str
    result: FileResult
    photo: RgbPixels | None = None
    thumbnail: RgbPixels | None = None
    original_size: tuple[int, int] | None = None


# ---------------------------------------------------------------- the worker (runs in the QThread)


def _default_predictor_factory(weights_dir: Path | None):
    from ..predictor import Predictor

    predictor = Predictor.load(weights_dir)
    predictor.warm_up()  # the first forward pass is several times slower; pay it while loading
    return predictor


class InferenceWorker(QObject):
    model_loading = Signal()
    model_ready = Signal(object)  # ModelInfo
    model_failed = Signal(str)
    request_started = Signal(int)
    outcome_ready = Signal(object)  # Outcome
    request_failed = Signal(int, str)  # an unexpected error (a bug), not a bad image
    finished = Signal()

    def __init__(self, queue: RequestQueue, weights_dir: Path | None, predictor_factory: Callable, loaded: "_Loaded",
                 taught_species: bool = False):
        super().__init__()
        self._queue = queue
        self._weights_dir = weights_dir
        self._predictor_factory = predictor_factory
        self._loaded = loaded
        self._taught_species = taught_species

    @Slot()
    def run(self) -> None:
        threading.current_thread().name = "snakeid-inference"  # readable log lines
        try:
            self._load_model()
            while True:
                request = self._queue.take()
                if request is None:
                    break
                self._serve(request)
        finally:
            self.finished.emit()

    def _load_model(self) -> None:
        self.model_loading.emit()
        started = time.perf_counter()
        try:
            predictor = self._predictor_factory(self._weights_dir)
            info = ModelInfo.from_bundle(predictor.bundle)
            if self._taught_species:
                # Before the first answer, so every answer knows them; never fails the load (the
                # status says why, and the bundled model answers alone).
                info = replace(info, taught=refit(predictor))
        except Exception as exc:  # ModelBundleError carries a user sentence; anything else is logged in full
            from ..errors import SnakeIDError

            if isinstance(exc, SnakeIDError):
                message = str(exc)
                log.error("model failed to load: %s", message)
            else:
                message = f"The model could not be loaded ({type(exc).__name__}: {exc})."
                log.exception("model failed to load")
            self._loaded.fail(message)
            self.model_failed.emit(message)
            return
        self._loaded.succeed(predictor)
        log.info("model %s loaded from %s in %.2f s", info.version, info.directory, time.perf_counter() - started)
        self.model_ready.emit(info)

    def _serve(self, request: Request) -> None:
        rid = request.request_id
        if not self._queue.is_wanted(rid):
            return
        self.request_started.emit(rid)
        try:
            outcome = self._classify(request)
        except Exception as exc:
            log.exception("worker error on request %s (%s)", rid, request.source.name)
            if self._queue.is_wanted(rid):
                self.request_failed.emit(rid, f"Unexpected error while classifying {request.source.name}: {exc}")
        else:
            if outcome is not None and self._queue.is_wanted(rid):
                self.outcome_ready.emit(outcome)
        # The id stays wanted until the controller claims the answer on the GUI thread (or it is
        # cancelled), so the queue alone says what is still wanted.

    def _classify(self, request: Request) -> Outcome | None:
        """Decode the photo and, unless the request is decode-only, run the model on it."""
        from ..errors import ImageLoadError

        source = request.source
        label = source.path if isinstance(source, PathSource) else source.name
        predictor = self._loaded.predictor
        min_side = DECODE_MIN_SIDE
        if predictor is not None:
            min_side = max(min_side, predictor.preprocessing.resize_size)
        try:
            image, original_size, warnings, photo_country = _decode(source, min_side)
        except ImageLoadError as exc:
            result = FileResult(path=label, error=str(exc), error_kind=exc.kind)
            return Outcome(request.request_id, source.name, result)
        if not self._queue.is_wanted(request.request_id):
            return None
        photo = RgbPixels.from_pil(image, DISPLAY_MAX_SIDE)
        thumbnail = RgbPixels.from_pil(image, THUMBNAIL_SIDE)
        result = FileResult(path=label, warnings=list(warnings))
        if request.kind is RequestKind.DECODE_ONLY:  # the receiver already holds this photo's answer
            pass
        elif predictor is None:
            result.error = self._loaded.error or "No model is loaded."
            result.error_kind = NO_MODEL_KIND
        else:
            if not self._queue.is_wanted(request.request_id):
                return None
            from ..predictor import resolve_place

            from ..errors import ModelOutputError

            place = resolve_place(request.country, photo_country)
            try:
                result.prediction = predictor.predict_images([image], top_k=request.top_k, places=[place])[0]
            except ModelOutputError as exc:  # the model gave no usable answer for this photo: say so on the card
                result.error, result.error_kind = str(exc), exc.kind
        return Outcome(request.request_id, source.name, result, photo, thumbnail, original_size)


def _decode(source: Source, min_side: int):
    """-> (PIL RGB image, original (w, h), warnings, country of the photo's GPS or None); raises ImageLoadError."""
    from .. import imageload

    if isinstance(source, PathSource):
        loaded = imageload.load_image(source.path, min_side=min_side)
    elif isinstance(source, BytesSource):
        loaded = imageload.load_image_bytes(source.data, name=source.name, min_side=min_side)
    else:
        from PIL import Image

        from ..errors import ImageLoadError

        if source.width <= 0 or source.height <= 0 or len(source.rgba) < 4 * source.width * source.height:
            raise ImageLoadError(f"The {source.name} is empty or incomplete.", "empty")
        image = Image.frombytes("RGBA", (source.width, source.height), source.rgba).convert("RGB")
        return image, (source.width, source.height), [], None
    return loaded.image, tuple(loaded.original_size), list(loaded.warnings), loaded.gps_country


class _Loaded:
    """The predictor (or the reason there is none), readable from any thread once set."""

    def __init__(self):
        self._event = threading.Event()
        self.predictor = None
        self.error: str | None = None

    def succeed(self, predictor) -> None:
        self.predictor = predictor
        self._event.set()

    def fail(self, message: str) -> None:
        self.error = message
        self._event.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)

    @property
    def settled(self) -> bool:
        return self._event.is_set()


# ---------------------------------------------------------------- the GUI-thread side


_live_threads: "weakref.WeakSet[QThread]" = weakref.WeakSet()


def running_worker_threads() -> list[QThread]:
    """Worker threads still running (tests assert this is empty after each GUI test)."""
    return [t for t in list(_live_threads) if t.isRunning()]


class InferenceController(QObject):
    """Owns the worker thread; lives on the GUI thread. All its signals arrive there."""

    model_loading = Signal()
    model_ready = Signal(object)  # ModelInfo
    model_failed = Signal(str)
    request_started = Signal(int)
    outcome_ready = Signal(object)  # Outcome (only for requests still wanted)
    request_failed = Signal(int, str)

    def __init__(self, weights_dir: Path | str | None = None, predictor_factory: Callable | None = None, parent=None,
                 *, taught_species: bool | None = None):
        """``taught_species``: answer with the species taught on this computer too (default: with the
        app's own model loader, not with a ``predictor_factory``'s stand-in unless asked)."""
        super().__init__(parent)
        self._weights_dir = Path(weights_dir) if weights_dir is not None else None
        self._factory = predictor_factory or _default_predictor_factory
        self._taught_species = predictor_factory is None if taught_species is None else taught_species
        self._queue = RequestQueue()
        self._loaded = _Loaded()
        self._next_id = 1
        self.country: str | None = None  # the "Where are you?" choice, sent with every request
        self._thread: QThread | None = None
        self._worker: InferenceWorker | None = None
        self.state = "idle"  # idle -> loading -> ready | failed; "stopped" after shutdown
        self.model_info: ModelInfo | None = None
        self.model_error: str | None = None

    # -- lifecycle

    def start(self) -> None:
        if self._thread is not None:
            return
        self.state = "loading"
        thread = QThread()
        thread.setObjectName("snakeid-inference")
        worker = InferenceWorker(self._queue, self._weights_dir, self._factory, self._loaded, self._taught_species)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.finished.connect(thread.quit)
        thread.finished.connect(worker.deleteLater)
        worker.model_loading.connect(self._on_model_loading)
        worker.model_ready.connect(self._on_model_ready)
        worker.model_failed.connect(self._on_model_failed)
        worker.request_started.connect(self._on_request_started)
        worker.outcome_ready.connect(self._on_outcome)
        worker.request_failed.connect(self._on_request_failed)
        self._thread, self._worker = thread, worker
        _live_threads.add(thread)
        thread.start()

    def shutdown(self) -> None:
        """Stop the worker and join its thread; safe to call twice and before start()."""
        self._queue.stop()
        thread, self._thread, self._worker = self._thread, None, None
        if thread is not None:
            thread.quit()
            thread.wait()
        if not self._loaded.settled:
            self._loaded.fail("The app is closing.")
        self.state = "stopped"

    @property
    def is_running(self) -> bool:
        return self._thread is not None and self._thread.isRunning()

    # -- requests

    def submit(
        self, sources: Iterable[Source], top_k: int = MAX_TOP_K, kind: RequestKind = RequestKind.CLASSIFY
    ) -> list[int]:
        """Queue sources ahead of older work (the user just asked for them); returns their ids.

        Each request carries the current ``country`` choice (a photo's own GPS still wins over it).
        A ``DECODE_ONLY`` request returns the photo's pixels and a result with no prediction."""
        requests = []
        for source in sources:
            requests.append(Request(self._next_id, source, top_k, self.country, kind))
            self._next_id += 1
        self._queue.put_front(requests)
        return [r.request_id for r in requests]

    def prioritize(self, request_id: int) -> None:
        self._queue.prioritize(request_id)

    def cancel(self, request_id: int) -> None:
        self._queue.cancel(request_id)

    def cancel_all(self) -> None:
        self._queue.cancel_all()

    def pending_count(self) -> int:
        return self._queue.wanted_count()

    # -- the loaded predictor, for the batch dialog

    def predictor(self, timeout: float | None = None):
        """Block until the model has loaded (from any thread); raise ModelBundleError if it did not."""
        from ..errors import ModelBundleError

        if not self._loaded.wait(timeout):
            raise ModelBundleError("The model is still loading; try again in a moment.")
        if self._loaded.predictor is None:
            raise ModelBundleError(self._loaded.error or "No model is loaded.")
        return self._loaded.predictor

    def predictor_unless_cancelled(self, cancel: threading.Event, poll: float = 0.1):
        """As :meth:`predictor`, but None as soon as ``cancel`` is set: a dialog's Cancel (or its
        window closing) is not held up by the model still loading."""
        while not self._loaded.wait(poll):
            if cancel.is_set():
                return None
        return self.predictor(0)

    # -- the taught species

    def set_taught_status(self, status: TaughtStatus) -> None:
        """Record what the model now answers with after the taught set changed (GUI thread)."""
        if self.model_info is not None:
            self.model_info = replace(self.model_info, taught=status)

    # -- worker signals (GUI thread)

    @Slot()
    def _on_model_loading(self) -> None:
        self.state = "loading"
        self.model_loading.emit()

    @Slot(object)
    def _on_model_ready(self, info: ModelInfo) -> None:
        self.state, self.model_info = "ready", info
        self.model_ready.emit(info)

    @Slot(str)
    def _on_model_failed(self, message: str) -> None:
        self.state, self.model_error = "failed", message
        self.model_failed.emit(message)

    @Slot(int)
    def _on_request_started(self, request_id: int) -> None:
        if self._queue.is_wanted(request_id):
            self.request_started.emit(request_id)

    # A result may already be in the event queue when the user cancels: claim() drops it then.

    @Slot(object)
    def _on_outcome(self, outcome: Outcome) -> None:
        if self._queue.claim(outcome.request_id):
            self.outcome_ready.emit(outcome)

    @Slot(int, str)
    def _on_request_failed(self, request_id: int, message: str) -> None:
        if self._queue.claim(request_id):
            self.request_failed.emit(request_id, message)
