"""The model bundle: a tensor-only weights file plus a JSON metadata file.

``weights/model.json`` names the architecture, preprocessing, classes, calibration
temperature, decision thresholds, metrics and the SHA-256 of the weights file; from
format version 2 it also carries ``metadata_sha256``, the SHA-256 of its own canonical
JSON without that field, so an edited or damaged model.json is refused too.

Loading checks, in order: strict JSON (no NaN/Infinity), the format version, the
metadata checksum, every field's type and range (before anything is built, so a bad
value is one sentence, never a traceback or an out-of-memory), the weights' checksum,
then reads the tensors with ``torch.load(weights_only=True)`` so a bundle can never run
code, checks they are finite and runs one forward pass whose output must be finite.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch

from .checksums import sha256_file
from . import paths
from .errors import ModelBundleError
from .model import build_model
from .preprocess import Preprocessing

METADATA_FILE = "model.json"
# 2 added metadata_sha256 (required); 1 is still read, without that check (see _check_metadata_checksum).
FORMAT_VERSION = 2
LEGACY_FORMAT_VERSIONS = (1,)
NOT_SNAKE = "not_snake"
METADATA_CHECKSUM_FIELD = "metadata_sha256"

# Bounds that keep a bad model.json from costing memory or time before it is refused.
MAX_METADATA_BYTES = 16 << 20  # the shipped one is ~30 KB
INPUT_SIZE_RANGE = (32, 1024)
MAX_CLASSES = 1000
WIDTH_MULT_RANGE = (0.1, 2.0)
TEMPERATURE_RANGE = (0.01, 100.0)  # outside it, logits / T can overflow to inf
# The load-time test pass: every layer runs at any size (adaptive pooling); small keeps it ~10 ms.
CHECK_INPUT_SIZE = 64

log = logging.getLogger(__name__)
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Thresholds:
    """Decision thresholds, all on temperature-calibrated probabilities.

    species:   top-1 species probability needed to name a species (else "unsure").
    not_snake: probability of the not-snake class at which we answer "not a snake".
    risk:      any venomous candidate at or above this raises the risk flag.
    """

    species: float = 0.5
    not_snake: float = 0.5
    risk: float = 0.1


@dataclass
class ModelBundle:
    directory: Path
    metadata: dict
    model: torch.nn.Module
    preprocessing: Preprocessing
    classes: list[str]
    temperature: float
    thresholds: Thresholds
    metrics: dict = field(default_factory=dict)

    @property
    def version(self) -> str:
        return str(self.metadata.get("model_version", "unknown"))

    @property
    def species_classes(self) -> list[str]:
        return [c for c in self.classes if c != NOT_SNAKE]

    @property
    def per_class_accuracy(self) -> dict[str, float]:
        return dict(self.metrics.get("per_class_accuracy", {}))


def metadata_sha256(meta: dict) -> str:
    """SHA-256 of the metadata's canonical JSON (sorted keys, no spaces, UTF-8), without its own field.

    Canonical rather than the file's bytes, so re-indenting or reordering model.json keeps it
    valid while any change of a value does not.
    """
    body = {k: v for k, v in meta.items() if k != METADATA_CHECKSUM_FIELD}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # e.g. 1e999
        raise ValueError(f"{text} is out of range")
    return value


def _read_metadata(directory: Path) -> dict:
    meta_path = directory / METADATA_FILE
    if not directory.is_dir():
        raise ModelBundleError(f"No model is installed: the folder {directory} does not exist.")
    if not meta_path.is_file():
        raise ModelBundleError(f"No model is installed: {meta_path} is missing.")
    try:
        if meta_path.stat().st_size > MAX_METADATA_BYTES:
            raise ModelBundleError(f"The model metadata {meta_path} is implausibly large; reinstall the app.")
        # Strict JSON: NaN/Infinity would pass through every later check as a float.
        meta = json.loads(meta_path.read_text(encoding="utf-8"), parse_constant=_refuse_constant,
                          parse_float=_finite_float)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ModelBundleError(f"The model metadata {meta_path} is unreadable or corrupt ({exc}).") from None
    if not isinstance(meta, dict):
        raise ModelBundleError(f"The model metadata {meta_path} is not a JSON object.")
    version = meta.get("format_version")
    if type(version) is not int or (version != FORMAT_VERSION and version not in LEGACY_FORMAT_VERSIONS):
        raise ModelBundleError(
            f"The model bundle has format version {version!r}; this app reads version {FORMAT_VERSION}."
        )
    _check_metadata_checksum(meta, meta_path)
    for key in ("architecture", "classes", "weights_file", "weights_sha256", "input_size"):
        if key not in meta:
            raise ModelBundleError(f"The model metadata {meta_path} lacks the field {key!r}.")
    validate_metadata(meta, meta_path)
    return meta


def _check_metadata_checksum(meta: dict, meta_path: Path) -> None:
    """Version 2 must carry a matching checksum; version 1 predates it and is read with a log line.

    Refusing version 1 would break every bundle written before the checksum existed, for no
    gain: the checksum guards against accidents (a hand-edited threshold, a damaged file),
    not an attacker, who could recompute it. A version-2 bundle without the field is refused.
    """
    recorded = meta.get(METADATA_CHECKSUM_FIELD)
    if meta["format_version"] in LEGACY_FORMAT_VERSIONS and recorded is None:
        log.warning("model metadata %s predates metadata checksums (format version %s); not verified",
                    meta_path, meta["format_version"])
        return
    if not isinstance(recorded, str) or not _SHA256.fullmatch(recorded):
        raise ModelBundleError(f"The model metadata {meta_path} lacks a valid {METADATA_CHECKSUM_FIELD!r}; reinstall the app.")
    try:
        actual = metadata_sha256(meta)
    except (ValueError, RecursionError) as exc:
        raise ModelBundleError(f"The model metadata {meta_path} is unreadable or corrupt ({exc}).") from None
    if actual != recorded:
        raise ModelBundleError(
            f"The model metadata {meta_path.name} was edited or damaged (its checksum does not match); reinstall the app."
        )


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_metadata(meta: dict, meta_path: Path | str = METADATA_FILE) -> None:
    """Every field the app reads has the right type and a sane range, or one-sentence ModelBundleError."""

    def bad(what: str) -> ModelBundleError:
        return ModelBundleError(f"The model metadata {meta_path} is invalid: {what}.")

    if "model_version" in meta and not isinstance(meta["model_version"], str):
        raise bad("'model_version' must be a string")
    if meta["architecture"] != "mobilenet_v2":
        raise bad(f"'architecture' is {meta['architecture']!r}, and this app knows only 'mobilenet_v2'")
    options = meta.get("architecture_options", {})
    if not isinstance(options, dict):
        raise bad("'architecture_options' must be an object")
    unknown = set(options) - {"width_mult", "dropout"}
    if unknown:
        raise bad(f"'architecture_options' has unknown keys {sorted(unknown)}")
    if "width_mult" in options:
        w = options["width_mult"]
        if not _is_number(w) or not WIDTH_MULT_RANGE[0] <= w <= WIDTH_MULT_RANGE[1]:
            raise bad(f"'width_mult' must be a number from {WIDTH_MULT_RANGE[0]} to {WIDTH_MULT_RANGE[1]}")
    if "dropout" in options and not (_is_number(options["dropout"]) and 0 <= options["dropout"] < 1):
        raise bad("'dropout' must be a number from 0 to below 1")

    size = meta["input_size"]
    lo, hi = INPUT_SIZE_RANGE
    if not _is_int(size) or not lo <= size <= hi:
        raise bad(f"'input_size' must be a whole number from {lo} to {hi}")
    if "resize_size" in meta:
        resize = meta["resize_size"]
        # The eval crop is resize -> centre crop; 4x bounds decode cost and still allows any sane crop ratio.
        if not _is_int(resize) or not size <= resize <= 4 * size:
            raise bad(f"'resize_size' must be a whole number from input_size ({size}) to {4 * size}")
    norm = meta.get("normalization", {})
    if not isinstance(norm, dict):
        raise bad("'normalization' must be an object")
    for key in ("mean", "std"):
        if key in norm:
            values = norm[key]
            if not isinstance(values, list) or len(values) != 3 or not all(_is_number(v) for v in values):
                raise bad(f"'normalization.{key}' must be a list of 3 numbers")
            if key == "std" and not all(v > 0 for v in values):
                raise bad("'normalization.std' values must be above 0")

    classes = meta["classes"]
    if not isinstance(classes, list) or not all(isinstance(c, str) and c for c in classes):
        raise bad("'classes' must be a list of non-empty strings")
    if len(set(classes)) != len(classes):
        raise bad("'classes' has duplicates")
    if NOT_SNAKE not in classes or not 2 <= len(classes) <= MAX_CLASSES:
        raise bad(f"'classes' must hold {NOT_SNAKE!r} and 1 to {MAX_CLASSES - 1} species")

    if "temperature" in meta:
        t = meta["temperature"]
        if not _is_number(t) or not TEMPERATURE_RANGE[0] <= t <= TEMPERATURE_RANGE[1]:
            raise bad(f"'temperature' must be a number from {TEMPERATURE_RANGE[0]} to {TEMPERATURE_RANGE[1]}")
    th = meta.get("thresholds", {})
    if not isinstance(th, dict):
        raise bad("'thresholds' must be an object")
    known = {f.name for f in fields(Thresholds)}
    if set(th) - known:  # a misspelt key would silently fall back to the default
        raise bad(f"'thresholds' has unknown keys {sorted(set(th) - known)}")
    for key, value in th.items():
        if not _is_number(value) or not 0 <= value <= 1:
            raise bad(f"'thresholds.{key}' must be a number from 0 to 1")

    metrics = meta.get("metrics", {})
    if not isinstance(metrics, dict):
        raise bad("'metrics' must be an object")
    per_class = metrics.get("per_class_accuracy", {})
    if not isinstance(per_class, dict) or not all(_is_number(v) for v in per_class.values()):
        raise bad("'metrics.per_class_accuracy' must map species to numbers")
    details = metrics.get("per_class", {})  # the GUI reads per_class[slug]["support"]
    if not isinstance(details, dict) or not all(isinstance(v, dict) for v in details.values()):
        raise bad("'metrics.per_class' must map species to objects")

    weights_file = meta["weights_file"]
    # A bare file name: the weights live next to model.json, never elsewhere on disk.
    if not isinstance(weights_file, str) or not weights_file or Path(weights_file).name != weights_file \
            or weights_file in (".", "..") or "\\" in weights_file:
        raise bad("'weights_file' must be a plain file name")
    if not isinstance(meta["weights_sha256"], str) or not _SHA256.fullmatch(meta["weights_sha256"]):
        raise bad("'weights_sha256' must be 64 lower-case hex digits")
    # Optional: features of the training photos, for fitting species taught by the user (taught_head.py).
    if ("replay_file" in meta) != ("replay_sha256" in meta):
        raise bad("'replay_file' and 'replay_sha256' go together")
    if "replay_file" in meta:
        replay_file = meta["replay_file"]
        if not isinstance(replay_file, str) or not replay_file or Path(replay_file).name != replay_file \
                or replay_file in (".", "..", weights_file) or "\\" in replay_file:
            raise bad("'replay_file' must be a plain file name other than the weights'")
        if not isinstance(meta["replay_sha256"], str) or not _SHA256.fullmatch(meta["replay_sha256"]):
            raise bad("'replay_sha256' must be 64 lower-case hex digits")


def _check_state(state, classes: list[str], weights_path: Path) -> None:
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise ModelBundleError(f"The model weights file {weights_path.name} does not hold a table of tensors.")
    head = state.get("classifier.1.weight")
    if head is not None and (head.dim() != 2 or head.shape[0] != len(classes)):
        raise ModelBundleError(
            f"The model weights do not fit the described architecture (the classifier has "
            f"{head.shape[0] if head.dim() else 0} outputs for {len(classes)} classes)."
        )
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ModelBundleError(
                f"The model in {weights_path.parent} is damaged: the weights {name!r} hold NaN or infinite values."
            )


def _first_mismatch(expected: dict, state: dict) -> str | None:
    for name, tensor in expected.items():
        if name not in state:
            return f"{name!r} is missing"
        if state[name].shape != tensor.shape:
            return f"{name!r} has shape {list(state[name].shape)} where {list(tensor.shape)} is expected"
    extra = sorted(set(state) - set(expected))
    return f"{extra[0]!r} is not part of it" if extra else None


def _check_forward(model: torch.nn.Module, input_size: int, num_classes: int, directory: Path) -> None:
    """One forward pass on a fixed input: finite weights can still give NaN (a negative BatchNorm
    variance, values that overflow), and such a model must never answer."""
    x = torch.linspace(-2.0, 2.0, 3 * input_size * input_size).view(1, 3, input_size, input_size)
    try:
        with torch.inference_mode():
            out = model(x)
    except RuntimeError as exc:
        raise ModelBundleError(f"The model in {directory} is damaged: a test pass failed ({exc}).") from None
    if tuple(out.shape) != (1, num_classes):
        raise ModelBundleError(f"The model in {directory} is damaged: it gives {tuple(out.shape)} outputs for {num_classes} classes.")
    if not bool(torch.isfinite(out).all()):
        raise ModelBundleError(f"The model in {directory} is damaged: a test pass gives NaN or infinite scores.")


def load_bundle(directory: Path | str | None = None) -> ModelBundle:
    """Load and verify a bundle; every failure is a :class:`ModelBundleError` with one sentence."""
    directory = Path(directory) if directory is not None else paths.weights_dir()
    meta = _read_metadata(directory)
    weights_path = directory / meta["weights_file"]
    if not weights_path.is_file():
        raise ModelBundleError(f"The model weights file {weights_path} is missing.")
    try:
        actual = sha256_file(weights_path)
    except OSError as exc:
        raise ModelBundleError(f"The model weights file {weights_path} cannot be read ({exc.strerror}).") from None
    if actual != meta["weights_sha256"]:
        raise ModelBundleError(
            f"The model weights file {weights_path.name} is damaged or was altered "
            "(its checksum does not match); reinstall the app."
        )
    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle/zip errors vary by torch version
        raise ModelBundleError(f"The model weights file {weights_path.name} cannot be loaded ({exc}).") from None
    classes = list(meta["classes"])
    _check_state(state, classes, weights_path)
    options = dict(meta.get("architecture_options", {}))
    try:
        model = build_model(meta["architecture"], num_classes=len(classes), **options)
        mismatch = _first_mismatch(model.state_dict(), state)
        if mismatch is None:
            model.load_state_dict(state)
    except (ValueError, TypeError, RuntimeError) as exc:
        mismatch = str(exc).strip().splitlines()[0]  # torch lists every tensor: keep one sentence
    if mismatch is not None:
        raise ModelBundleError(f"The model weights do not fit the described architecture ({mismatch}).")
    model.eval()
    preprocessing = Preprocessing.from_metadata(meta)
    _check_forward(model, CHECK_INPUT_SIZE, len(classes), directory)
    th = meta.get("thresholds", {})
    return ModelBundle(
        directory=directory,
        metadata=meta,
        model=model,
        preprocessing=preprocessing,
        classes=classes,
        temperature=float(meta.get("temperature", 1.0)),
        thresholds=Thresholds(
            species=float(th.get("species", Thresholds.species)),
            not_snake=float(th.get("not_snake", Thresholds.not_snake)),
            risk=float(th.get("risk", Thresholds.risk)),
        ),
        metrics=dict(meta.get("metrics", {})),
    )


def _atomic_write_bytes(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a bundle must be readable by every user
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_metadata(directory: Path | str, meta: dict) -> Path:
    """Write model.json with a fresh metadata checksum (the only way a bundle's metadata should change)."""
    meta = {k: v for k, v in meta.items() if k != METADATA_CHECKSUM_FIELD}
    meta["format_version"] = FORMAT_VERSION
    meta[METADATA_CHECKSUM_FIELD] = metadata_sha256(meta)
    text = json.dumps(meta, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    path = Path(directory) / METADATA_FILE
    _atomic_write_bytes(path, lambda fh: fh.write(text.encode("utf-8")))
    return path


def update_metadata(directory: Path | str, change) -> Path:
    """Read model.json, let ``change(meta)`` edit it in place, write it back re-signed (e.g. a refitted threshold)."""
    path = Path(directory) / METADATA_FILE
    meta = json.loads(path.read_text(encoding="utf-8"))
    change(meta)
    return write_metadata(directory, meta)


def save_bundle(
    directory: Path | str,
    model: torch.nn.Module,
    *,
    classes: list[str],
    preprocessing: Preprocessing,
    temperature: float = 1.0,
    thresholds: Thresholds = Thresholds(),
    metrics: dict | None = None,
    model_version: str = "dev",
    architecture_options: dict | None = None,
    extra: dict | None = None,
    weights_file: str = "model.pt",
) -> Path:
    """Write weights (fp32 state dict) and metadata; used by training and by tests."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights_path = directory / weights_file
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    _atomic_write_bytes(weights_path, lambda fh: torch.save(state, fh))
    meta = {
        "format_version": FORMAT_VERSION,
        "model_version": model_version,
        "architecture": "mobilenet_v2",
        "architecture_options": architecture_options or {"width_mult": 1.0},
        **preprocessing.to_metadata(),
        "classes": list(classes),
        "temperature": float(temperature),
        "thresholds": {"species": thresholds.species, "not_snake": thresholds.not_snake, "risk": thresholds.risk},
        "metrics": metrics or {},
        "weights_file": weights_file,
        "weights_sha256": sha256_file(weights_path),
        **(extra or {}),
    }
    write_metadata(directory, meta)
    return directory
