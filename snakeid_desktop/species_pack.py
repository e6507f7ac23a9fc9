"""Species packs: the file a species taught on this computer lives in, and the one it is shared as.

A pack is a zip holding two members:

- ``pack.json``: what was taught (names, venom status, countries, notes, photo counts, the
  cross-validated accuracy), which bundled model the features came from, the SHA-256 of
  ``features.pt`` and a checksum of its own canonical JSON (as ``model.json`` has);
- ``features.pt``: tensors only, read with ``torch.load(weights_only=True)``: per species the
  bundled network's pooled features of each photo's augmented views, and the ``probe``, the
  network's features of a fixed synthetic input, which says whether a later model still has the
  same feature extractor (then the head is simply refitted) or not (then the species must be
  taught again).

No photo, path or pixel is stored: only features, and SHA-256s of the photos' bytes so that the
same photo is counted once. Every read is bounded and checked before anything is built; every
failure is a :class:`SpeciesPackError` with one sentence.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from .errors import SnakeIDError
from .safety import VENOM_STATUSES

PACK_FORMAT = "snakeid-species-pack"
PACK_FORMAT_VERSION = 1
PACK_SUFFIX = ".snakeid-species"
METADATA_MEMBER = "pack.json"
FEATURES_MEMBER = "features.pt"
METADATA_CHECKSUM_FIELD = "metadata_sha256"
SLUG_PREFIX = "taught-"

MAX_METADATA_BYTES = 4 << 20
MAX_FEATURES_BYTES = 512 << 20
MAX_SPECIES_PER_PACK = 200
MAX_PHOTOS_PER_SPECIES = 5000
MAX_VIEWS = 64
MAX_NAME_CHARS = 120
MAX_NOTES_CHARS = 500
FEATURE_DIM_RANGE = (8, 8192)

_SLUG = re.compile(r"taught-[a-z0-9]+(?:-[a-z0-9]+)*")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


class SpeciesPackError(SnakeIDError):
    """A species pack is missing, unreadable, damaged, made for another model, or says something invalid."""


@dataclass(frozen=True)
class CrossValidation:
    """How the taught species fared on its own photos, each predicted by a head fitted without it."""

    photos: int
    correct: int
    # Other classes the held-out photos were given instead, slug -> count.
    confused_with: dict[str, int] = field(default_factory=dict)

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.photos if self.photos else None

    def to_json(self) -> dict:
        return {"photos": self.photos, "correct": self.correct, "confused_with": dict(self.confused_with)}


@dataclass(frozen=True)
class TaughtSpecies:
    """One species taught by the user: what they entered, and the features of their photos."""

    slug: str
    scientific_name: str
    common_name: str
    venomous: str  # yes | mild | no | unknown (unknown is treated as venomous, like everywhere)
    countries: tuple[str, ...]
    notes: str
    # (photos, views, feature_dim) float16: the bundled network's pooled features.
    features: torch.Tensor
    photo_sha256: tuple[str, ...]
    photos_skipped: int
    taught_at: str  # ISO 8601 date and time
    cross_validation: CrossValidation | None = None

    @property
    def photos(self) -> int:
        return int(self.features.shape[0])

    @property
    def views(self) -> int:
        return int(self.features.shape[1])

    def renamed(self, common_name: str) -> "TaughtSpecies":
        return replace(self, common_name=clean_name(common_name, "common name"))

    def summary(self) -> dict:
        """What ``species list --json`` shows (no tensors)."""
        cv = self.cross_validation
        return {
            "slug": self.slug,
            "scientific_name": self.scientific_name,
            "common_name": self.common_name,
            "venomous": self.venomous,
            "countries": list(self.countries),
            "notes": self.notes,
            "photos": self.photos,
            "photos_skipped": self.photos_skipped,
            "taught_at": self.taught_at,
            "cross_validation": None if cv is None else {**cv.to_json(), "accuracy": cv.accuracy},
        }


@dataclass(frozen=True)
class ModelStamp:
    """Which bundled model a pack's features were made with."""

    model_version: str
    weights_sha256: str
    probe: torch.Tensor  # (feature_dim,) float32: the features of :func:`probe_input`

    @property
    def feature_dim(self) -> int:
        return int(self.probe.shape[0])

    def same_features(self, other: "ModelStamp") -> bool:
        """Whether features made under ``other`` mean the same as under this one (same extractor)."""
        if self.weights_sha256 == other.weights_sha256:
            return True
        return self.probe.shape == other.probe.shape and bool(torch.allclose(self.probe, other.probe, rtol=1e-3, atol=1e-4))


@dataclass(frozen=True)
class Pack:
    stamp: ModelStamp
    species: tuple[TaughtSpecies, ...]
    app_version: str = ""


def probe_input(input_size: int) -> torch.Tensor:
    """A fixed synthetic input whose features fingerprint a feature extractor."""
    n = 3 * input_size * input_size
    x = torch.linspace(-1.0, 1.0, n).view(1, 3, input_size, input_size)
    return torch.sin(7.0 * x) * 0.9


def slug_for(scientific_name: str) -> str:
    """``taught-`` + the scientific name in lower-case ASCII words: never a bundled class's slug."""
    import unicodedata

    ascii_name = unicodedata.normalize("NFKD", scientific_name).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", ascii_name.lower())
    if not words:
        raise SpeciesPackError(f"The scientific name {scientific_name!r} has no letters or digits to name it by.")
    return SLUG_PREFIX + "-".join(words)[:80].strip("-")


def clean_name(value: str, what: str) -> str:
    """A name as the user typed it, trimmed; refused if empty, too long or holding control characters."""
    if not isinstance(value, str):
        raise SpeciesPackError(f"The {what} must be text.")
    text = " ".join(value.split())
    if not text:
        raise SpeciesPackError(f"The {what} is empty.")
    if len(text) > MAX_NAME_CHARS:
        raise SpeciesPackError(f"The {what} is longer than {MAX_NAME_CHARS} characters.")
    if _CONTROL.search(text):
        raise SpeciesPackError(f"The {what} holds control characters.")
    return text


def clean_notes(value: str) -> str:
    if not isinstance(value, str):
        raise SpeciesPackError("The notes must be text.")
    text = " ".join(value.split())
    if len(text) > MAX_NOTES_CHARS:
        raise SpeciesPackError(f"The notes are longer than {MAX_NOTES_CHARS} characters.")
    if _CONTROL.search(text):
        raise SpeciesPackError("The notes hold control characters.")
    return text


def clean_venom(value: str) -> str:
    if value not in VENOM_STATUSES:
        raise SpeciesPackError(f"The venom status must be one of {', '.join(VENOM_STATUSES)}, not {value!r}.")
    return value


def clean_countries(values) -> tuple[str, ...]:
    from .region import official_codes

    if not isinstance(values, (list, tuple)) or not all(isinstance(v, str) for v in values):
        raise SpeciesPackError("The countries must be a list of two-letter ISO codes.")
    codes = sorted({v.strip().upper() for v in values})
    unknown = [c for c in codes if c not in official_codes()]
    if unknown:
        raise SpeciesPackError(f"Not ISO 3166-1 country codes: {', '.join(unknown)}.")
    return tuple(codes)


# --- writing -----------------------------------------------------------------------------------


def _canonical_sha256(meta: dict) -> str:
    body = {k: v for k, v in meta.items() if k != METADATA_CHECKSUM_FIELD}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _species_meta(sp: TaughtSpecies) -> dict:
    return {
        "slug": sp.slug,
        "scientific_name": sp.scientific_name,
        "common_name": sp.common_name,
        "venomous": sp.venomous,
        "countries": list(sp.countries),
        "notes": sp.notes,
        "photos": sp.photos,
        "views": sp.views,
        "photo_sha256": list(sp.photo_sha256),
        "photos_skipped": sp.photos_skipped,
        "taught_at": sp.taught_at,
        "cross_validation": None if sp.cross_validation is None else sp.cross_validation.to_json(),
    }


def pack_bytes(pack: Pack) -> bytes:
    """The pack file's bytes (deterministic for the same content)."""
    tensors = {"probe": pack.stamp.probe.detach().float().contiguous().clone()}
    for sp in pack.species:
        tensors[f"features/{sp.slug}"] = sp.features.detach().to(torch.float16).contiguous().clone()
    buffer = io.BytesIO()
    torch.save(tensors, buffer)
    features = buffer.getvalue()
    meta = {
        "format": PACK_FORMAT,
        "format_version": PACK_FORMAT_VERSION,
        "app_version": pack.app_version,
        "model_version": pack.stamp.model_version,
        "model_weights_sha256": pack.stamp.weights_sha256,
        "feature_dim": pack.stamp.feature_dim,
        "features_sha256": hashlib.sha256(features).hexdigest(),
        "species": [_species_meta(sp) for sp in pack.species],
    }
    meta[METADATA_CHECKSUM_FIELD] = _canonical_sha256(meta)
    text = json.dumps(meta, indent=2, ensure_ascii=False, allow_nan=False).encode("utf-8")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in ((METADATA_MEMBER, text), (FEATURES_MEMBER, features)):
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            zf.writestr(info, data)
    return out.getvalue()


def write_pack(path: Path | str, pack: Pack) -> Path:
    """Write atomically (a temporary file renamed over the target)."""
    from .bundle import _atomic_write_bytes

    path = Path(path)
    data = pack_bytes(pack)
    _atomic_write_bytes(path, lambda fh: fh.write(data))
    return path


# --- reading -----------------------------------------------------------------------------------


def _bad(path, what: str) -> SpeciesPackError:
    return SpeciesPackError(f"The species pack {Path(path).name} is invalid: {what}.")


def _read_member(zf: zipfile.ZipFile, name: str, limit: int, path) -> bytes:
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise _bad(path, f"it lacks {name}") from None
    if info.file_size > limit:
        raise _bad(path, f"{name} is implausibly large")
    with zf.open(info) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise _bad(path, f"{name} is implausibly large")
    return data


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _is_count(value, lo: int = 0, hi: int | None = None) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= lo and (hi is None or value <= hi)


def _parse_species(entry, path, feature_dim: int, tensors: dict) -> TaughtSpecies:
    if not isinstance(entry, dict):
        raise _bad(path, "a species entry is not an object")
    slug = entry.get("slug")
    if not isinstance(slug, str) or not _SLUG.fullmatch(slug):
        raise _bad(path, f"the slug {slug!r} is not of the form taught-<words>")
    try:
        scientific = clean_name(entry.get("scientific_name"), "scientific name")
        common = clean_name(entry.get("common_name"), "common name")
        venom = clean_venom(entry.get("venomous"))
        countries = clean_countries(entry.get("countries", []))
        notes = clean_notes(entry.get("notes", ""))
    except SpeciesPackError as exc:
        raise _bad(path, f"{slug}: {str(exc).rstrip('.')}") from None
    photos, views = entry.get("photos"), entry.get("views")
    if not _is_count(photos, 1, MAX_PHOTOS_PER_SPECIES) or not _is_count(views, 1, MAX_VIEWS):
        raise _bad(path, f"{slug}: photo or view counts out of range")
    hashes = entry.get("photo_sha256")
    if not isinstance(hashes, list) or len(hashes) != photos or not all(
            isinstance(h, str) and _SHA256.fullmatch(h) for h in hashes) or len(set(hashes)) != photos:
        raise _bad(path, f"{slug}: photo_sha256 must list {photos} distinct SHA-256s")
    skipped = entry.get("photos_skipped", 0)
    taught_at = entry.get("taught_at", "")
    if not _is_count(skipped) or not isinstance(taught_at, str) or len(taught_at) > 40:
        raise _bad(path, f"{slug}: photos_skipped or taught_at invalid")
    cv = entry.get("cross_validation")
    cross = None
    if cv is not None:
        if not isinstance(cv, dict) or not _is_count(cv.get("photos")) or not _is_count(cv.get("correct")) \
                or cv["correct"] > cv["photos"] or not isinstance(cv.get("confused_with", {}), dict) \
                or not all(isinstance(k, str) and _is_count(v) for k, v in cv.get("confused_with", {}).items()):
            raise _bad(path, f"{slug}: cross_validation invalid")
        cross = CrossValidation(cv["photos"], cv["correct"], dict(cv.get("confused_with", {})))
    features = tensors.get(f"features/{slug}")
    if not isinstance(features, torch.Tensor) or tuple(features.shape) != (photos, views, feature_dim) \
            or features.dtype != torch.float16:
        raise _bad(path, f"{slug}: its features do not have the shape ({photos}, {views}, {feature_dim})")
    if not bool(torch.isfinite(features).all()):
        raise _bad(path, f"{slug}: its features hold NaN or infinite values")
    return TaughtSpecies(slug, scientific, common, venom, countries, notes, features, tuple(hashes), skipped,
                         taught_at, cross)


def read_pack(path: Path | str) -> Pack:
    """Read and verify a pack file; any failure is one :class:`SpeciesPackError` sentence."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            if len(zf.infolist()) > 16:
                raise _bad(path, "it holds unexpected members")
            meta_bytes = _read_member(zf, METADATA_MEMBER, MAX_METADATA_BYTES, path)
            features_bytes = _read_member(zf, FEATURES_MEMBER, MAX_FEATURES_BYTES, path)
    except FileNotFoundError:
        raise SpeciesPackError(f"The species pack {path} does not exist.") from None
    except IsADirectoryError:
        raise SpeciesPackError(f"{path} is a folder, not a species pack.") from None
    except PermissionError:
        raise SpeciesPackError(f"The species pack {path} cannot be read (permission denied).") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, RuntimeError, NotImplementedError) as exc:
        raise SpeciesPackError(f"{path.name} is not a SnakeID species pack, or it is damaged ({exc}).") from None
    try:
        meta = json.loads(meta_bytes.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _bad(path, f"pack.json is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != PACK_FORMAT:
        raise SpeciesPackError(f"{path.name} is not a SnakeID species pack.")
    if meta.get("format_version") != PACK_FORMAT_VERSION:
        raise SpeciesPackError(
            f"The species pack {path.name} has format version {meta.get('format_version')!r}; "
            f"this app reads version {PACK_FORMAT_VERSION}."
        )
    try:
        checksum_ok = meta.get(METADATA_CHECKSUM_FIELD) == _canonical_sha256(meta)
    except (ValueError, TypeError):
        checksum_ok = False
    if not checksum_ok:
        raise SpeciesPackError(f"The species pack {path.name} was edited or damaged (its checksum does not match).")
    if meta.get("features_sha256") != hashlib.sha256(features_bytes).hexdigest():
        raise SpeciesPackError(f"The species pack {path.name} is damaged (its features do not match their checksum).")
    dim = meta.get("feature_dim")
    if not _is_count(dim, *FEATURE_DIM_RANGE):
        raise _bad(path, "feature_dim out of range")
    for key in ("model_version", "model_weights_sha256", "app_version"):
        if not isinstance(meta.get(key, ""), str):
            raise _bad(path, f"{key} must be text")
    if not _SHA256.fullmatch(meta.get("model_weights_sha256", "")):
        raise _bad(path, "model_weights_sha256 must be 64 hex digits")
    entries = meta.get("species")
    if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_SPECIES_PER_PACK:
        raise _bad(path, f"it must hold 1 to {MAX_SPECIES_PER_PACK} species")
    try:
        tensors = torch.load(io.BytesIO(features_bytes), map_location="cpu", weights_only=True)
    except Exception as exc:  # weights_only refuses code; anything else is a damaged file
        raise _bad(path, f"features.pt cannot be read as tensors ({type(exc).__name__})") from None
    if not isinstance(tensors, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                for k, v in tensors.items()):
        raise _bad(path, "features.pt does not hold a table of tensors")
    probe = tensors.get("probe")
    if not isinstance(probe, torch.Tensor) or tuple(probe.shape) != (dim,) or probe.dtype != torch.float32 \
            or not bool(torch.isfinite(probe).all()):
        raise _bad(path, "its probe features are missing or invalid")
    species = tuple(_parse_species(entry, path, dim, tensors) for entry in entries)
    slugs = [sp.slug for sp in species]
    if len(set(slugs)) != len(slugs):
        raise _bad(path, "it names a species twice")
    if set(tensors) != {"probe"} | {f"features/{s}" for s in slugs}:
        raise _bad(path, "features.pt holds tensors no species names")
    stamp = ModelStamp(meta["model_version"], meta["model_weights_sha256"], probe)
    return Pack(stamp, species, meta.get("app_version", ""))

