"""Turns images into verdicts: batched forward passes, calibration, thresholds, risk flag."""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import torch
from PIL import Image

from .bundle import NOT_SNAKE, ModelBundle, Thresholds, load_bundle
from .catalogue import Catalogue, default_catalogue
from .errors import ImageLoadError, ModelOutputError
from .imageload import load_image
from .preprocess import stack_batch
from .results import RISK_CANDIDATES, Candidate, FileResult, Prediction
from .runtime import configure_torch

DEFAULT_TOP_K = 3
log = logging.getLogger(__name__)


def is_venomous(status: str) -> bool:
    """Mildly venomous counts: the risk flag errs towards caution."""
    return status in ("yes", "mild")


def decide(
    probabilities: torch.Tensor,
    classes: Sequence[str],
    catalogue: Catalogue,
    thresholds: Thresholds,
    top_k: int = DEFAULT_TOP_K,
) -> Prediction:
    """Verdict for one calibrated probability vector over ``classes``."""
    probs = probabilities.tolist()
    not_snake_p = probs[classes.index(NOT_SNAKE)] if NOT_SNAKE in classes else 0.0
    ranked = sorted(
        ((p, c) for p, c in zip(probs, classes) if c != NOT_SNAKE), key=lambda pc: pc[0], reverse=True
    )
    top = []
    for p, slug in ranked[: max(1, top_k)]:
        info = catalogue.get(slug)
        top.append(Candidate(slug, info.scientific_name, info.common_name, round(float(p), 6), info.venomous))
    if not_snake_p >= thresholds.not_snake:
        verdict = "not_snake"
    elif top and top[0].probability >= thresholds.species:
        verdict = "species"
    else:
        verdict = "unsure"
    risk = any(is_venomous(catalogue.get(slug).venomous) and p >= thresholds.risk
               for p, slug in ranked[:RISK_CANDIDATES])
    return Prediction(verdict=verdict, risk=risk, top=tuple(top), not_snake_probability=round(float(not_snake_p), 6))


def _finite_rows(probabilities: torch.Tensor) -> list[bool]:
    return torch.isfinite(probabilities).all(dim=1).tolist()


def _output_error() -> ModelOutputError:
    return ModelOutputError("The model gave no valid probabilities for this image (NaN or infinite scores).")


def apply_outcome(result: FileResult, outcome: "Prediction | ModelOutputError") -> None:
    """Store one :meth:`Predictor.predict_tensors` outcome in ``result``: a prediction or an error."""
    if isinstance(outcome, ModelOutputError):
        result.error, result.error_kind = str(outcome), outcome.kind
    else:
        result.prediction = outcome


def _optimize_for_inference(model: torch.nn.Module, input_size: int) -> torch.nn.Module:
    example = torch.randn(2, 3, input_size, input_size).contiguous(memory_format=torch.channels_last)
    try:
        with warnings.catch_warnings(), torch.inference_mode():
            # torch.jit is deprecated in favour of torch.compile, which takes 20-40 s to compile here.
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            traced = torch.jit.optimize_for_inference(torch.jit.trace(model, example))
            expected, got = model(example), traced(example)
        if torch.allclose(expected, got, rtol=1e-3, atol=1e-3):
            return traced
        log.warning("optimised model disagrees with the eager one (max diff %.2g); using eager", (expected - got).abs().max())
    except Exception as exc:  # any failure here only costs speed
        log.warning("could not optimise the model for batch runs (%s); using eager", exc)
    return model


class Predictor:
    def __init__(
        self,
        bundle: ModelBundle,
        catalogue: Catalogue | None = None,
        top_k: int = DEFAULT_TOP_K,
        num_threads: int | None = None,
    ):
        configure_torch(num_threads)
        self.bundle = bundle
        self.catalogue = catalogue or default_catalogue()
        self.top_k = top_k
        # channels_last suits MobileNetV2's depthwise convs on CPU (measured ~1.5x here).
        self.model = bundle.model.eval().to(memory_format=torch.channels_last)
        self._throughput_model: torch.nn.Module | None = None
        self._throughput_lock = threading.Lock()

    @classmethod
    def load(cls, weights_dir: Path | str | None = None, **kwargs) -> "Predictor":
        return cls(load_bundle(weights_dir), **kwargs)

    @property
    def preprocessing(self):
        return self.bundle.preprocessing

    def warm_up(self) -> None:
        size = self.preprocessing.input_size
        self.predict_tensors(torch.zeros(1, 3, size, size))

    def throughput_model(self) -> torch.nn.Module:
        """The network traced and frozen for oneDNN, for long batch runs; eager if that fails.

        Measured here at batch 16: 19 -> 11 ms per photo. Not used for single photos in the
        GUI, where the extra second of start-up would cost more than it saves. The traced
        network must reproduce the eager outputs, or the eager one is kept.
        """
        with self._throughput_lock:
            if self._throughput_model is None:
                self._throughput_model = _optimize_for_inference(self.model, self.preprocessing.input_size)
            return self._throughput_model

    @torch.inference_mode()
    def probabilities(self, batch: torch.Tensor, model: torch.nn.Module | None = None) -> torch.Tensor:
        logits = (model or self.model)(batch.contiguous(memory_format=torch.channels_last))
        return torch.softmax(logits.float() / self.bundle.temperature, dim=1)

    def predict_tensors(
        self, batch: torch.Tensor, top_k: int | None = None, model: torch.nn.Module | None = None
    ) -> list[Prediction | ModelOutputError]:
        """One outcome per row: a Prediction, or a ModelOutputError where the output is not finite.

        The load-time checks make the latter rare; it is that input's error, never a verdict
        (NaN compares false with every threshold, so it would read "unsure, no risk").
        Store outcomes with :func:`apply_outcome`.
        """
        probs = self.probabilities(batch, model)
        k = top_k or self.top_k
        return [
            decide(p, self.bundle.classes, self.catalogue, self.bundle.thresholds, k) if finite else _output_error()
            for p, finite in zip(probs, _finite_rows(probs))
        ]

    def predict_images(self, images: Sequence[Image.Image], top_k: int | None = None) -> list[Prediction]:
        """Predictions for decoded images; raises ModelOutputError if any output is not finite."""
        if not images:
            return []
        outcomes = self.predict_tensors(stack_batch(images, self.preprocessing), top_k)
        for outcome in outcomes:
            if isinstance(outcome, ModelOutputError):
                raise outcome
        return outcomes

    def classify_paths(
        self, paths: Iterable[Path | str], batch_size: int = 16, top_k: int | None = None
    ) -> Iterator[FileResult]:
        """Simple serial decode + batched inference, in input order (the batch engine overlaps them)."""
        pending: list[tuple[FileResult, torch.Tensor]] = []

        def flush() -> Iterator[FileResult]:
            if pending:
                preds = self.predict_tensors(torch.stack([t for _, t in pending]), top_k)
                for (result, _), outcome in zip(pending, preds):
                    apply_outcome(result, outcome)
                    yield result
                pending.clear()

        from .preprocess import eval_transform

        for path in paths:
            result = FileResult(path=str(path))
            try:
                loaded = load_image(path, min_side=self.preprocessing.resize_size)
            except ImageLoadError as exc:
                yield from flush()
                result.error, result.error_kind = str(exc), exc.kind
                yield result
                continue
            result.warnings = list(loaded.warnings)
            pending.append((result, eval_transform(loaded.image, self.preprocessing)))
            if len(pending) >= batch_size:
                yield from flush()
        yield from flush()
