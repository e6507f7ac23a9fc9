"""New classifier rows for species taught on this computer, fitted beside the bundled head.

The bundled head's rows are never changed, so the bundled classes keep their scores exactly; only
rows for the taught species are fitted, on the bundled network's pooled features:

- the user's photos (several augmented views each) pull their species' row up;
- the *replay* set, features of the bundled model's own training photos shipped in
  ``weights/replay.pt`` (features only, never photos), pushes every new row down wherever the
  19 species and ``not_snake`` belong, so a taught species takes probability only from photos
  that look like it. The ``other_snake`` examples are left out: a taught species is one of the
  snakes SnakeID did not know, so it may (and should) take that class's probability.

The fit happens in the calibrated space (logits divided by the bundle's temperature) and is a
convex problem (softmax cross-entropy against fixed competitor logits, plus an L2 penalty), solved
with L-BFGS in well under a second here. Cross-validation holds out whole photos (all their views)
and scores each held-out photo's plain view through the full head.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .safety import OTHER_SNAKE
from .species_pack import CrossValidation

log = logging.getLogger(__name__)

REPLAY_FORMAT_VERSION = 1
# Chosen with benchmarks/bench_teach.py (bundled val top-1 kept within a point, the taught group
# recognised): per-sample weight of the replay set against the user's photos, and the L2 penalty.
REPLAY_WEIGHT = 30.0
L2_PENALTY = 1e-3
MAX_ITERATIONS = 150
CV_FOLDS = 5


@dataclass(frozen=True)
class Replay:
    """Features of the bundled model's training photos (dequantised) and their bundled class index."""

    features: torch.Tensor  # (n, D) float32
    labels: torch.Tensor  # (n,) int64, index into the bundle's classes

    def without(self, mask: torch.Tensor) -> "Replay":
        keep = ~mask
        return Replay(self.features[keep], self.labels[keep])


def save_replay(path: Path | str, features: torch.Tensor, labels: torch.Tensor, classes: Sequence[str]) -> None:
    """Store pooled features (values in [0, 6] after ReLU6) as uint8 with one scale: ~1.3 KB a photo."""
    from .bundle import _atomic_write_bytes

    scale = float(features.max().clamp(min=1e-6)) / 255.0
    quantised = torch.round(features / scale).clamp(0, 255).to(torch.uint8)
    payload = {
        "format_version": torch.tensor(REPLAY_FORMAT_VERSION),
        "features": quantised.contiguous(),
        "scale": torch.tensor(scale, dtype=torch.float32),
        "labels": labels.to(torch.int64).contiguous(),
        "num_classes": torch.tensor(len(classes)),
    }
    _atomic_write_bytes(Path(path), lambda fh: torch.save(payload, fh))


def load_replay(path: Path | str, num_classes: int, feature_dim: int) -> Replay:
    """Read ``replay.pt`` (tensors only); ValueError with one sentence when it does not fit the bundle."""
    data = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(data, dict) or int(data.get("format_version", torch.tensor(-1))) != REPLAY_FORMAT_VERSION:
        raise ValueError("the replay features have an unknown format")
    features, labels, scale = data.get("features"), data.get("labels"), data.get("scale")
    if not isinstance(features, torch.Tensor) or features.dtype != torch.uint8 or features.dim() != 2 \
            or features.shape[1] != feature_dim:
        raise ValueError(f"the replay features are not a (n, {feature_dim}) table")
    if not isinstance(labels, torch.Tensor) or tuple(labels.shape) != (features.shape[0],) \
            or int(data.get("num_classes", torch.tensor(-1))) != num_classes \
            or (labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes)):
        raise ValueError("the replay labels do not fit the model's classes")
    if not isinstance(scale, torch.Tensor) or not bool(torch.isfinite(scale)) or float(scale) <= 0:
        raise ValueError("the replay scale is invalid")
    return Replay(features.float() * float(scale), labels.long())


@dataclass(frozen=True)
class TaughtRows:
    """The fitted rows, in raw logit space (multiplied by the temperature) so that they sit in the
    bundled Linear layer beside its own rows and the predictor's calibration applies to all alike."""

    slugs: tuple[str, ...]
    weight: torch.Tensor  # (N, D)
    bias: torch.Tensor  # (N,)


def _old_logits(features: torch.Tensor, head_weight: torch.Tensor, head_bias: torch.Tensor, temperature: float):
    return (features @ head_weight.T + head_bias) / temperature


def fit_rows(
    per_species: Sequence[torch.Tensor],
    replay: Replay,
    head_weight: torch.Tensor,
    head_bias: torch.Tensor,
    temperature: float,
    slugs: Sequence[str] | None = None,
    *,
    replay_weight: float | None = None,
    l2: float | None = None,
    max_iterations: int | None = None,
) -> TaughtRows:
    """Fit one row per taught species. ``per_species[i]``: (samples, D) features of species i.

    The settings default to the module's REPLAY_WEIGHT, L2_PENALTY and MAX_ITERATIONS."""
    replay_weight = REPLAY_WEIGHT if replay_weight is None else replay_weight
    l2 = L2_PENALTY if l2 is None else l2
    max_iterations = MAX_ITERATIONS if max_iterations is None else max_iterations
    n_new = len(per_species)
    dim = head_weight.shape[1]
    xs = torch.cat([f.float().reshape(-1, dim) for f in per_species])
    ys = torch.cat([torch.full((f.reshape(-1, dim).shape[0],), i, dtype=torch.long) for i, f in enumerate(per_species)])
    # Each species weighs the same however many photos it has; the replay as a whole weighs replay_weight.
    counts = torch.bincount(ys, minlength=n_new).float()
    sample_w = (1.0 / counts)[ys] / n_new
    with torch.no_grad():
        old_user = _old_logits(xs, head_weight, head_bias, temperature)
        old_replay = _old_logits(replay.features, head_weight, head_bias, temperature)
        old_replay_lse = torch.logsumexp(old_replay, dim=1)
    # Centre features so the bias and the weights are not fighting over the mean (faster L-BFGS).
    centre = torch.cat([xs, replay.features]).mean(dim=0)
    xs_c, replay_c = xs - centre, replay.features - centre
    n_old = head_weight.shape[0]
    rows = torch.arange(xs.shape[0])
    size = n_new * dim

    def loss_and_grad(flat: torch.Tensor) -> tuple[float, torch.Tensor]:
        flat = flat.detach().requires_grad_(True)
        weight, bias = flat[:size].view(n_new, dim), flat[size:]
        logits = torch.cat([old_user, xs_c @ weight.T + bias], dim=1)
        user_loss = -(torch.log_softmax(logits, dim=1)[rows, n_old + ys] * sample_w).sum()
        new_replay = replay_c @ weight.T + bias
        # -log P(its bundled classes) = logsumexp(all) - logsumexp(old), whatever its exact label.
        replay_all = torch.logsumexp(torch.cat([old_replay, new_replay], dim=1), dim=1)
        replay_loss = (replay_all - old_replay_lse).mean() if replay_c.shape[0] else torch.zeros(())
        loss = user_loss + replay_weight * replay_loss + l2 * (weight * weight).sum()
        (grad,) = torch.autograd.grad(loss, flat)
        return float(loss.detach()), grad

    with torch.enable_grad():
        flat = minimise_lbfgs(loss_and_grad, torch.zeros(size + n_new), max_iterations)
    w = flat[:size].view(n_new, dim).clone()
    b = flat[size:] - w @ centre
    names = tuple(slugs) if slugs is not None else tuple(f"new-{i}" for i in range(n_new))
    return TaughtRows(names, w * temperature, b * temperature)


def minimise_lbfgs(loss_and_grad, x: torch.Tensor, max_iterations: int, history: int = 20,
                   tolerance: float = 1e-6) -> torch.Tensor:
    """Minimise a smooth convex function of a flat tensor: L-BFGS (two-loop recursion) with an Armijo
    backtracking line search.

    Written here because ``torch.optim``'s optimisers import torch's compiler (torch._dynamo) when
    created, and the frozen app ships without it (and without sympy, which it needs).
    """
    value, grad = loss_and_grad(x)
    steps: list[tuple[torch.Tensor, torch.Tensor, float]] = []  # (s, y, 1 / y.s)
    for iteration in range(max_iterations):
        if float(grad.abs().max()) <= tolerance:
            break
        direction = grad.clone()
        alphas = []
        for s_k, y_k, rho in reversed(steps):
            alpha = rho * float(s_k @ direction)
            direction -= alpha * y_k
            alphas.append(alpha)
        if steps:
            s_k, y_k, _ = steps[-1]
            direction *= float(s_k @ y_k) / float(y_k @ y_k)
        else:  # the first step: a small one, its scale set by the gradient (as torch's LBFGS does)
            direction *= min(1.0, 1.0 / float(grad.abs().sum()))
        for (s_k, y_k, rho), alpha in zip(steps, reversed(alphas)):
            beta = rho * float(y_k @ direction)
            direction += (alpha - beta) * s_k
        direction = -direction
        slope = float(grad @ direction)
        if slope >= 0:  # not a descent direction (numerical trouble): restart from the gradient
            steps.clear()
            direction, slope = -grad, -float(grad @ grad)
        step = 1.0
        while True:
            candidate = x + step * direction
            new_value, new_grad = loss_and_grad(candidate)
            if new_value <= value + 1e-4 * step * slope or step < 1e-10:
                break
            step *= 0.5
        s_k, y_k = candidate - x, new_grad - grad
        curvature = float(y_k @ s_k)
        if curvature > 1e-10:
            steps.append((s_k, y_k, 1.0 / curvature))
            del steps[:-history]
        converged = abs(value - new_value) <= 1e-9 * max(1.0, abs(value))
        x, value, grad = candidate, new_value, new_grad
        if converged:
            break
    return x.detach()


def extended_probabilities(
    features: torch.Tensor, head_weight: torch.Tensor, head_bias: torch.Tensor, rows: TaughtRows, temperature: float
) -> torch.Tensor:
    """Calibrated probabilities over the bundled classes followed by the taught ones."""
    weight = torch.cat([head_weight, rows.weight])
    bias = torch.cat([head_bias, rows.bias])
    return torch.softmax((features.float() @ weight.T + bias) / temperature, dim=1)


def cross_validate(
    per_species: Sequence[torch.Tensor],
    which: Sequence[int],
    replay: Replay,
    head_weight: torch.Tensor,
    head_bias: torch.Tensor,
    temperature: float,
    class_names: Sequence[str],
    *,
    folds: int = CV_FOLDS,
    cancelled: Callable[[], bool] = lambda: False,
) -> dict[int, CrossValidation]:
    """Held-out accuracy of each species in ``which`` (indices into ``per_species``, each (photos, views, D)).

    ``class_names``: the bundled classes then the taught ones, in ``per_species`` order. Photos are
    split into ``folds`` groups (round robin); each group is predicted by rows fitted without it,
    from its plain view (view 0, what the app sees). Other species keep all their photos.
    """
    n_old = head_weight.shape[0]
    results: dict[int, CrossValidation] = {}
    for index in which:
        photos = per_species[index].shape[0]
        k = max(2, min(folds, photos))
        correct, confused = 0, Counter()
        for fold in range(k):
            if cancelled():
                raise InterruptedError
            held = torch.arange(photos) % k == fold
            training = [f if i != index else f[~held] for i, f in enumerate(per_species)]
            rows = fit_rows(training, replay, head_weight, head_bias, temperature)
            probs = extended_probabilities(per_species[index][held, 0], head_weight, head_bias, rows, temperature)
            for winner in probs.argmax(dim=1).tolist():
                if winner == n_old + index:
                    correct += 1
                else:
                    confused[class_names[winner]] += 1
        results[index] = CrossValidation(photos, correct, dict(confused.most_common()))
    return results


def replay_kept(replay: Replay, head_weight: torch.Tensor, head_bias: torch.Tensor, rows: TaughtRows,
                temperature: float) -> float:
    """Share of replay photos whose top class is unchanged with the taught rows added (1.0 = none lost)."""
    if not replay.features.shape[0]:
        return 1.0
    before = _old_logits(replay.features, head_weight, head_bias, temperature).argmax(dim=1)
    after = extended_probabilities(replay.features, head_weight, head_bias, rows, temperature).argmax(dim=1)
    return float((before == after).float().mean())


def bundle_replay(bundle) -> Replay:
    """The bundle's replay features, checked against their recorded SHA-256.

    Raises :class:`ModelBundleError` with one sentence when the bundle has none or they are damaged.
    """
    from .checksums import sha256_file
    from .errors import ModelBundleError

    meta = bundle.metadata
    if "replay_file" not in meta:
        raise ModelBundleError(
            f"The model {bundle.version} has no replay features, so it cannot learn new species; update SnakeID."
        )
    path = Path(bundle.directory) / meta["replay_file"]
    try:
        if sha256_file(path) != meta["replay_sha256"]:
            raise ModelBundleError(f"The model's replay features {path.name} are damaged (checksum); reinstall the app.")
        head = bundle.model.classifier[-1]
        replay = load_replay(path, len(bundle.classes), head.weight.shape[1])
    except OSError as exc:
        raise ModelBundleError(f"The model's replay features {path} cannot be read ({exc.strerror or exc}).") from None
    except (ValueError, RuntimeError) as exc:
        raise ModelBundleError(f"The model's replay features {path.name} are invalid: {exc}.") from None
    if OTHER_SNAKE in bundle.classes:
        # "A snake SnakeID does not know" is where a taught species comes from: its examples must not
        # push a taught species down (kraits taught by a user look like the kraits among them).
        replay = replay.without(replay.labels == bundle.classes.index(OTHER_SNAKE))
    return replay
