"""The model bundle: a tensor-only weights file plus a JSON metadata file.

``weights/model.json`` names the architecture, preprocessing, classes, calibration
temperature, decision thresholds, metrics and the SHA-256 of the weights file.
Loading verifies the checksum before reading a byte of tensors, and reads them with
``torch.load(weights_only=True)`` so a bundle can never run code.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import paths
from .errors import ModelBundleError
from .model import build_model
from .preprocess import Preprocessing

METADATA_FILE = "model.json"
FORMAT_VERSION = 1
NOT_SNAKE = "not_snake"


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


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_metadata(directory: Path) -> dict:
    meta_path = directory / METADATA_FILE
    if not directory.is_dir():
        raise ModelBundleError(f"No model is installed: the folder {directory} does not exist.")
    if not meta_path.is_file():
        raise ModelBundleError(f"No model is installed: {meta_path} is missing.")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelBundleError(f"The model metadata {meta_path} is unreadable or corrupt ({exc}).") from None
    if not isinstance(meta, dict):
        raise ModelBundleError(f"The model metadata {meta_path} is not a JSON object.")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelBundleError(
            f"The model bundle has format version {version!r}; this app reads version {FORMAT_VERSION}."
        )
    for key in ("architecture", "classes", "weights_file", "weights_sha256", "input_size"):
        if key not in meta:
            raise ModelBundleError(f"The model metadata {meta_path} lacks the field {key!r}.")
    return meta


def load_bundle(directory: Path | str | None = None) -> ModelBundle:
    """Load and verify a bundle; every failure is a :class:`ModelBundleError` with one sentence."""
    directory = Path(directory) if directory is not None else paths.weights_dir()
    meta = _read_metadata(directory)
    weights_path = directory / str(meta["weights_file"])
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
    classes = [str(c) for c in meta["classes"]]
    options = dict(meta.get("architecture_options", {}))
    try:
        model = build_model(meta["architecture"], num_classes=len(classes), **options)
        model.load_state_dict(state)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise ModelBundleError(f"The model weights do not fit the described architecture ({exc}).") from None
    model.eval()
    th = meta.get("thresholds", {})
    return ModelBundle(
        directory=directory,
        metadata=meta,
        model=model,
        preprocessing=Preprocessing.from_metadata(meta),
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
    text = json.dumps(meta, indent=2, ensure_ascii=False) + "\n"
    _atomic_write_bytes(directory / METADATA_FILE, lambda fh: fh.write(text.encode("utf-8")))
    return directory
