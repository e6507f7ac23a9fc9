"""Turns images into verdicts: batched forward passes, calibration, thresholds, risk flag."""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from .bundle import NOT_SNAKE, ModelBundle, Thresholds, load_bundle
from .catalogue import Catalogue, default_catalogue
from .errors import ImageLoadError, ModelOutputError
from .imageload import load_image
from .preprocess import stack_batch
from .results import Candidate, FileResult, Prediction
from .safety import OTHER_SNAKE, counts_as_venomous
from .runtime import configure_torch

DEFAULT_TOP_K = 3
log = logging.getLogger(__name__)


# How many venomous candidates the warning names (the probability mass behind it covers them all), and
# the least probability a named one has: "Possible: ... (under 1%)" beside a 99% cobra is noise, not caution.
RISKY_NAMED = 3
RISKY_MIN_PROBABILITY = 0.01


def decide(
    probabilities: torch.Tensor,
    classes: Sequence[str],
    catalogue: Catalogue,
    thresholds: Thresholds,
    top_k: int = DEFAULT_TOP_K,
    *,
    in_play: Collection[str] | None = None,
    country: str | None = None,
    country_source: str | None = None,
) -> Prediction:
    """The verdict and the venom warning for one calibrated probability vector over ``classes``.

    ``in_play``: the species that occur where the photo was taken (None: anywhere). Only they are
    candidates, with probabilities renormalised over them and ``not_snake``; an empty set means none
    of the model's species lives there, and the answer is ``outside_coverage`` with the warning on.
    The warning is the venomous probability mass reaching ``thresholds.risk`` on every verdict.
    """
    probs = [float(p) for p in probabilities.tolist()]
    by_class = dict(zip(classes, probs))
    unfiltered_not_snake = by_class.get(NOT_SNAKE, 0.0)
    species = [c for c in classes if c != NOT_SNAKE]
    if in_play is not None:
        allowed = set(in_play)
        # An "other snake" class is never filtered out: an unknown snake can be anywhere.
        species = [c for c in species if c in allowed or c == OTHER_SNAKE]
        if not [c for c in species if c != OTHER_SNAKE]:
            return Prediction(
                verdict="outside_coverage", risk=True, top=(), not_snake_probability=round(unfiltered_not_snake, 6),
                venom_probability=None, country=country, country_source=country_source,
            )
        total = sum(by_class[c] for c in species) + by_class.get(NOT_SNAKE, 0.0)
        if total > 0:
            by_class = {c: p / total for c, p in by_class.items()}
    not_snake_p = by_class.get(NOT_SNAKE, 0.0)
    ranked = sorted(((by_class[c], c) for c in species), reverse=True)
    candidates = []
    for p, slug in ranked:
        info = catalogue.get(slug)
        candidates.append(Candidate(slug, info.scientific_name, info.common_name, round(p, 6), info.venomous,
                                    info.taught))
    venomous = [c for c in candidates if counts_as_venomous(c.venomous)]
    # Decided on the reported (rounded) value, so anyone reading the JSON can check the rule.
    venom_p = round(min(1.0, sum(by_class[c.species] for c in venomous)), 6)
    risk = venom_p >= thresholds.risk
    top = tuple(candidates[: max(1, top_k)])
    # Whether there is a snake at all does not depend on the country: renormalising away the species
    # of other regions must never turn a snake the model saw into "not a snake".
    if not_snake_p >= thresholds.not_snake and unfiltered_not_snake >= thresholds.not_snake:
        verdict = "not_snake"
    elif top and top[0].probability >= thresholds.species:
        verdict = "species"
    else:
        verdict = "unsure"
    return Prediction(
        verdict=verdict,
        risk=risk,
        top=top,
        not_snake_probability=round(not_snake_p, 6),
        venom_probability=venom_p,
        risky=tuple([c for c in venomous if c.probability >= RISKY_MIN_PROBABILITY][:RISKY_NAMED]) if risk else (),
        country=country,
        country_source=country_source,
    )


Place = tuple[str | None, str | None]  # (country code, "gps" / "option"); (None, None) = anywhere
ANYWHERE: Place = (None, None)


def resolve_place(option: str | None, photo_country: str | None) -> Place:
    """Where an answer assumes the photo was taken. ``option``: a country code, "auto" (or None) or "any".

    The photo's own GPS country wins over a chosen country (a photo from a trip is answered for where
    it was taken); "any" ignores both. Only the country code is ever kept, never the coordinates.
    """
    if option == "any":
        return ANYWHERE
    if photo_country:
        return (photo_country, "gps")
    if option and option != "auto":
        return (option, "option")
    return ANYWHERE


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


class _NetworkWithHead(torch.nn.Module):
    """The bundled network's features through another head (the bundled rows plus taught ones)."""

    def __init__(self, network: torch.nn.Module, head: torch.nn.Linear):
        super().__init__()
        self.network = network
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.network.forward_features(x))


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one object per set_taught
class AnswerSpace:
    """The classes a prediction is over, the network that scores them and the catalogue that names them."""

    model: torch.nn.Module
    classes: tuple[str, ...]
    catalogue: Catalogue
    taught: tuple = ()  # TaughtSpecies, in the order of their classes after the bundled ones
    digest: str = ""  # identifies the taught set (batch cache keys use it)


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
        self.top_k = top_k
        # channels_last suits MobileNetV2's depthwise convs on CPU (measured ~1.5x here).
        self.network = bundle.model.eval().to(memory_format=torch.channels_last)
        head = self.network.classifier[-1]
        # The bundled head is never changed: taught species get rows of their own beside it.
        self.bundled_head = (head.weight.detach().clone(), head.bias.detach().clone())
        self._bundled_catalogue = catalogue or default_catalogue()
        self._space = AnswerSpace(self.network, tuple(bundle.classes), self._bundled_catalogue)
        self._throughput: tuple[AnswerSpace, torch.nn.Module] | None = None
        self._throughput_lock = threading.Lock()
        self._in_play: dict[tuple[AnswerSpace, str], frozenset[str]] = {}

    # What an answer is given over; swapped whole by set_taught, so a prediction running in another
    # thread keeps the space it started with.
    @property
    def model(self) -> torch.nn.Module:
        return self._space.model

    @property
    def classes(self) -> list[str]:
        return list(self._space.classes)

    @property
    def catalogue(self) -> Catalogue:
        return self._space.catalogue

    @property
    def taught(self) -> tuple:
        return self._space.taught

    @property
    def taught_digest(self) -> str:
        return self._space.digest

    def set_taught(self, taught: Sequence, rows=None, digest: str = "") -> None:
        """Answer with these taught species too (``rows``: their fitted :class:`~.taught_head.TaughtRows`,
        in the same order), or with the bundled classes alone when ``taught`` is empty. Safe to call
        while other threads predict: each prediction uses the space it started with."""
        from dataclasses import replace

        from .catalogue import taught_info

        if not taught:
            self._space = AnswerSpace(self.network, tuple(self.bundle.classes), self._bundled_catalogue)
            return
        weight, bias = self.bundled_head
        linear = torch.nn.Linear(weight.shape[1], weight.shape[0] + len(taught))
        with torch.no_grad():
            linear.weight.copy_(torch.cat([weight, rows.weight.to(weight.dtype)]))
            linear.bias.copy_(torch.cat([bias, rows.bias.to(bias.dtype)]))
        catalogue = replace(self._bundled_catalogue, species={
            **self._bundled_catalogue.species, **{sp.slug: taught_info(sp) for sp in taught}})
        self._space = AnswerSpace(_NetworkWithHead(self.network, linear.eval()),
                                  tuple(self.bundle.classes) + tuple(sp.slug for sp in taught), catalogue,
                                  tuple(taught), digest)

    @torch.inference_mode()
    def features(self, batch: torch.Tensor) -> torch.Tensor:
        """The bundled network's pooled features (before any head), float32."""
        return self.network.forward_features(batch.contiguous(memory_format=torch.channels_last)).float()

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
            space = self._space
            if self._throughput is None or self._throughput[0] is not space:
                self._throughput = (space, _optimize_for_inference(space.model, self.preprocessing.input_size))
            return self._throughput[1]

    @torch.inference_mode()
    def probabilities(self, batch: torch.Tensor, model: torch.nn.Module | None = None) -> torch.Tensor:
        return self._probabilities(batch, model, self._space)

    @torch.inference_mode()
    def _probabilities(self, batch: torch.Tensor, model: torch.nn.Module | None, space: "AnswerSpace") -> torch.Tensor:
        logits = (model or space.model)(batch.contiguous(memory_format=torch.channels_last))
        if logits.shape[1] != len(space.classes):  # a traced model of an earlier space (a species taught meanwhile)
            logits = space.model(batch.contiguous(memory_format=torch.channels_last))
        return torch.softmax(logits.float() / self.bundle.temperature, dim=1)

    def predict_tensors(
        self,
        batch: torch.Tensor,
        top_k: int | None = None,
        model: torch.nn.Module | None = None,
        places: Sequence[Place] | None = None,
    ) -> list[Prediction | ModelOutputError]:
        """One outcome per row: a Prediction, or a ModelOutputError where the output is not finite.

        ``places`` (from :func:`resolve_place`) per row, default anywhere. The load-time checks make
        a non-finite output rare; it is that input's error, never a verdict (NaN compares false with
        every threshold, so it would read "unsure, no risk"). Store outcomes with :func:`apply_outcome`.
        """
        space = self._space
        probs = self._probabilities(batch, model, space)
        k = top_k or self.top_k
        places = list(places) if places is not None else [ANYWHERE] * len(probs)
        return [
            self.decide(p, k, place, space) if finite else _output_error()
            for p, finite, place in zip(probs, _finite_rows(probs), places)
        ]

    def decide(self, probabilities: torch.Tensor, top_k: int, place: Place = ANYWHERE,
               space: "AnswerSpace | None" = None) -> Prediction:
        space = space or self._space
        country, source = place
        in_play = self._species_in(country, space) if country else None
        return decide(probabilities, space.classes, space.catalogue, self.bundle.thresholds, top_k,
                      in_play=in_play, country=country, country_source=source)

    def _species_in(self, country: str, space: "AnswerSpace") -> frozenset[str]:
        key = (space, country)
        cached = self._in_play.get(key)
        if cached is None:
            from .region import species_in

            in_play = set(species_in(country, space.classes, space.catalogue) or ())
            # A taught species whose range the user did not give may be anywhere (err towards inclusion).
            in_play |= {sp.slug for sp in space.taught if not sp.countries}
            if len(self._in_play) > 1024:
                self._in_play.clear()
            cached = self._in_play[key] = frozenset(in_play)
        return cached

    def predict_images(
        self, images: Sequence[Image.Image], top_k: int | None = None, places: Sequence[Place] | None = None
    ) -> list[Prediction]:
        """Predictions for decoded images; raises ModelOutputError if any output is not finite."""
        if not images:
            return []
        outcomes = self.predict_tensors(stack_batch(images, self.preprocessing), top_k, places=places)
        for outcome in outcomes:
            if isinstance(outcome, ModelOutputError):
                raise outcome
        return outcomes

    def classify_paths(
        self, paths: Iterable[Path | str], batch_size: int = 16, top_k: int | None = None, country: str | None = None
    ) -> Iterator[FileResult]:
        """Simple serial decode + batched inference, in input order (the batch engine overlaps them).

        ``country``: a code, "auto" (default: the photo's GPS when present) or "any" (see :func:`resolve_place`).
        """
        pending: list[tuple[FileResult, torch.Tensor, Place]] = []

        def flush() -> Iterator[FileResult]:
            if pending:
                preds = self.predict_tensors(torch.stack([t for _, t, _ in pending]), top_k,
                                             places=[place for _, _, place in pending])
                for (result, _, _), outcome in zip(pending, preds):
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
            place = resolve_place(country, loaded.gps_country)
            pending.append((result, eval_transform(loaded.image, self.preprocessing), place))
            if len(pending) >= batch_size:
                yield from flush()
        yield from flush()
