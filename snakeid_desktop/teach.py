"""Teaching a species from the user's own photos, offline: folder -> features -> fitted rows.

For each request (one species: one or more folders of its photos and what the user says of it):
scan the folders (recursively; hidden files skipped), read each photo once (a photo whose bytes
were already seen counts once), decode it with the app's loader, take :data:`VIEWS_PER_PHOTO`
augmented views (turns, flips, crops, a blurred copy: a snake has no "up" and a user's photos are
few), and keep the bundled network's pooled features of each view. The rows of all taught species
are then fitted beside the bundled head (``taught_head.py``), and the species' accuracy is
cross-validated on its own photos.

The user's photos are only ever read: never modified, moved or copied. Only features and the
SHA-256 of each photo's bytes are kept. Cancelling (``cancelled()`` returning True) raises
:class:`TeachCancelled` and leaves everything as it was: nothing is written until the end.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch
from PIL import Image, ImageFilter

from .errors import ImageLoadError, SnakeIDError
from .imageload import is_image_path, load_image_bytes
from .preprocess import Preprocessing, center_crop, crop_to_aspect, resize_shorter_side, to_normalized_tensor
from .species_pack import (CrossValidation, TaughtSpecies, clean_countries, clean_name, clean_notes, clean_venom,
                           slug_for)

VIEWS_PER_PHOTO = 8
MIN_PHOTOS = 5  # fewer usable photos: refused
FEW_PHOTOS = 10  # fewer: taught, with a warning that answers will be unreliable
MAX_PHOTO_BYTES = 512 << 20
CONFUSION_WARNING = 0.25  # a share of held-out photos given to one other class that earns a warning

Progress = Callable[[str, int, int], None]  # (stage, done, total)


class TeachError(SnakeIDError):
    """A species cannot be taught from what was given (too few photos, a clash of names, ...)."""


class TeachCancelled(SnakeIDError):
    """The user cancelled; nothing was changed."""

    def __init__(self):
        super().__init__("Teaching was cancelled; nothing was changed.")


@dataclass(frozen=True)
class TeachRequest:
    folders: tuple[Path, ...]
    scientific_name: str
    common_name: str
    venomous: str
    countries: tuple[str, ...] = ()
    notes: str = ""

    def checked(self) -> "TeachRequest":
        """The same request with names cleaned; TeachError (one sentence) for anything invalid."""
        from .species_pack import SpeciesPackError

        if not self.folders:
            raise TeachError("Choose at least one folder of photos.")
        try:
            return TeachRequest(
                tuple(Path(f) for f in self.folders),
                clean_name(self.scientific_name, "scientific name"),
                clean_name(self.common_name, "common name"),
                clean_venom(self.venomous),
                clean_countries(list(self.countries)),
                clean_notes(self.notes),
            )
        except SpeciesPackError as exc:
            raise TeachError(str(exc)) from None

    @property
    def slug(self) -> str:
        return slug_for(self.scientific_name)


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str


@dataclass
class SpeciesReport:
    """What teaching one species did, for the user to read."""

    species: TaughtSpecies
    skipped: list[SkippedFile] = field(default_factory=list)
    duplicates: int = 0
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0  # the whole teaching run this species was part of

    @property
    def cross_validation(self) -> CrossValidation | None:
        return self.species.cross_validation

    def to_json(self) -> dict:
        return {
            **self.species.summary(),
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "duplicates": self.duplicates,
            "warnings": list(self.warnings),
            "seconds": round(self.seconds, 1),
        }


# --- photos and views ---------------------------------------------------------------------------


@dataclass
class _Photos:
    images: list[Image.Image] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    duplicates: int = 0


def list_files(folder: Path, skipped: list[SkippedFile]) -> list[Path]:
    """Image files under ``folder`` (sorted, recursive, each real file once); other files are listed in
    ``skipped`` with why, unreadable sub-folders too. Raises TeachError when ``folder`` is unusable."""
    from .batch import FolderError, scan_images

    def problem(path, message):
        skipped.append(SkippedFile(str(path), message))

    def other(path):
        skipped.append(SkippedFile(str(path), "not a photo SnakeID reads (by its file name)"))

    try:
        return list(scan_images(folder, recursive=True, on_problem=problem, on_other_file=other))
    except FolderError as exc:
        raise TeachError(str(exc)) from None


def _read_photos(
    files: Sequence[Path], prep: Preprocessing, seen: set[str], progress: Progress, cancelled: Callable[[], bool]
) -> _Photos:
    out = _Photos()
    for number, path in enumerate(files, start=1):
        if cancelled():
            raise TeachCancelled()
        progress("Reading photos", number - 1, len(files))
        try:
            with open(path, "rb") as fh:
                data = fh.read(MAX_PHOTO_BYTES + 1)
        except OSError as exc:
            out.skipped.append(SkippedFile(str(path), f"cannot be read ({exc.strerror or exc})"))
            continue
        if len(data) > MAX_PHOTO_BYTES:
            out.skipped.append(SkippedFile(str(path), "larger than 512 MB"))
            continue
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            out.duplicates += 1
            continue
        try:
            loaded = load_image_bytes(data, name=path.name, min_side=prep.resize_size)
        except ImageLoadError as exc:
            out.skipped.append(SkippedFile(str(path), str(exc)))
            continue
        seen.add(digest)
        out.hashes.append(digest)
        out.images.append(loaded.image)
    progress("Reading photos", len(files), len(files))
    return out


def views(image: Image.Image, prep: Preprocessing, seed: int) -> torch.Tensor:
    """:data:`VIEWS_PER_PHOTO` normalised views of one photo; view 0 is exactly what the app sees."""
    rng = random.Random(seed)
    base = crop_to_aspect(image)
    plain = center_crop(resize_shorter_side(base, prep.resize_size), prep.input_size)
    tight = center_crop(resize_shorter_side(base, round(prep.input_size / 0.7)), prep.input_size)
    w, h = base.size
    side = round(min(w, h) * rng.uniform(0.55, 0.85))
    left, top = rng.randint(0, w - side), rng.randint(0, h - side)
    random_crop = base.crop((left, top, left + side, top + side)).resize((prep.input_size,) * 2,
                                                                         Image.Resampling.BILINEAR)
    small = max(24, prep.input_size // 3)
    blurred = plain.resize((small, small), Image.Resampling.BILINEAR).resize((prep.input_size,) * 2,
                                                                             Image.Resampling.BILINEAR)
    images = [
        plain,
        plain.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        plain.transpose(Image.Transpose.ROTATE_90),
        plain.transpose(Image.Transpose.ROTATE_180),
        plain.transpose(Image.Transpose.ROTATE_270),
        tight.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        random_crop.rotate(rng.uniform(-20, 20), resample=Image.Resampling.BILINEAR),
        blurred.filter(ImageFilter.SMOOTH),
    ]
    return torch.stack([to_normalized_tensor(im, prep) for im in images])


def photo_features(predictor, images: Sequence[Image.Image], hashes: Sequence[str], progress: Progress,
                   cancelled: Callable[[], bool]) -> torch.Tensor:
    """(photos, views, D) float16 features through the predictor's bundled network."""
    out = []
    for number, (image, digest) in enumerate(zip(images, hashes)):
        if cancelled():
            raise TeachCancelled()
        progress("Learning from the photos", number, len(images))
        out.append(predictor.features(views(image, predictor.preprocessing, int(digest[:8], 16))).half())
    progress("Learning from the photos", len(images), len(images))
    return torch.stack(out) if out else torch.zeros(0, VIEWS_PER_PHOTO, predictor.bundled_head[0].shape[1])


# --- the whole job ------------------------------------------------------------------------------


def _never() -> bool:
    return False


def _no_progress(stage: str, done: int, total: int) -> None:
    pass


def teach(
    predictor,
    requests: Sequence[TeachRequest],
    store,
    *,
    replace_existing: bool = False,
    progress: Progress = _no_progress,
    cancelled: Callable[[], bool] = _never,
    replay=None,
) -> list[SpeciesReport]:
    """Teach every request, then save them all into ``store`` (a :class:`~.my_species.SpeciesStore`).

    All or nothing: a request that cannot be taught raises TeachError before anything is saved, and
    so does cancelling (TeachCancelled). ``replay``: the replay features to fit against (default:
    the bundle's). Returns one report per request, in order.
    """
    from .taught_head import bundle_replay, cross_validate

    requests = [r.checked() for r in requests]
    _check_names(predictor, requests, store, replace_existing)
    replay = replay if replay is not None else bundle_replay(predictor.bundle)
    started = time.monotonic()
    taught_at = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    learned: list[tuple[TeachRequest, torch.Tensor, _Photos]] = []
    for number, request in enumerate(requests, start=1):
        step = progress
        if len(requests) > 1:  # say which species the counts are of
            def step(stage, done, total, _name=f"{request.common_name}, {number} of {len(requests)}"):
                progress(f"{stage} ({_name})", done, total)
        skipped: list[SkippedFile] = []
        files = [f for folder in request.folders for f in list_files(folder, skipped)]
        photos = _read_photos(files, predictor.preprocessing, set(), step, cancelled)
        for other, _, earlier in learned:
            shared = set(photos.hashes) & set(earlier.hashes)
            if shared:
                raise TeachError(f"{len(shared)} of the same photos are given for both {other.common_name} and "
                                 f"{request.common_name}; each photo must show one species.")
        photos.skipped[:0] = skipped
        if len(photos.images) < MIN_PHOTOS:
            raise TeachError(
                f"{request.common_name}: only {len(photos.images)} usable photo{'s' if len(photos.images) != 1 else ''} "
                f"in {', '.join(str(f) for f in request.folders)} ({len(photos.skipped)} skipped, {photos.duplicates} "
                f"duplicate{'s' if photos.duplicates != 1 else ''}); at least {MIN_PHOTOS} are needed."
            )
        features = photo_features(predictor, photos.images, photos.hashes, step, cancelled)
        photos.images.clear()  # the pixels are not needed any more
        learned.append((request, features, photos))

    # The rows are fitted for every taught species together: those already kept and these new ones.
    kept = [sp for sp in store.active(predictor) if sp.slug not in {r.slug for r, _, _ in learned}]
    per_species = [sp.features for sp in kept] + [f for _, f, _ in learned]
    names = list(predictor.bundle.classes) + [sp.slug for sp in kept] + [r.slug for r, _, _ in learned]
    head_weight, head_bias = predictor.bundled_head
    progress("Checking how well it tells them apart", 0, len(learned))
    try:
        checks = cross_validate([f.float() for f in per_species], range(len(kept), len(per_species)), replay,
                                head_weight, head_bias, predictor.bundle.temperature, names, cancelled=cancelled)
    except InterruptedError:
        raise TeachCancelled() from None
    if cancelled():
        raise TeachCancelled()
    labels = {r.slug: r.common_name for r, _, _ in learned} | {sp.slug: sp.common_name for sp in kept}
    reports = []
    for offset, (request, features, photos) in enumerate(learned):
        cv = checks[len(kept) + offset]
        species = TaughtSpecies(
            slug=request.slug, scientific_name=request.scientific_name, common_name=request.common_name,
            venomous=request.venomous, countries=request.countries, notes=request.notes, features=features,
            photo_sha256=tuple(photos.hashes), photos_skipped=len(photos.skipped), taught_at=taught_at,
            cross_validation=cv,
        )
        reports.append(SpeciesReport(species, photos.skipped, photos.duplicates, _warnings(species, cv, predictor, labels)))
    store.save([r.species for r in reports], predictor)
    progress("Done", 1, 1)
    for report in reports:
        report.seconds = time.monotonic() - started
    return reports


def _check_names(predictor, requests: Sequence[TeachRequest], store, replace_existing: bool) -> None:
    bundled = {info.scientific_name.casefold(): f"{info.scientific_name} ({info.common_name})"
               for info in (predictor.catalogue.get(c) for c in predictor.bundle.species_classes)}
    seen = set()
    existing = {sp.slug for sp in store.all()}
    for r in requests:
        if r.scientific_name.casefold() in bundled:
            raise TeachError(f"SnakeID already knows {bundled[r.scientific_name.casefold()]}.")
        if r.slug in seen:
            raise TeachError(f"{r.scientific_name} is given twice; put all its folders in one species.")
        seen.add(r.slug)
        if r.slug in existing and not replace_existing:
            raise TeachError(
                f"{r.scientific_name} is already taught; remove it first, or teach it again to replace it."
            )


def class_label(slug: str, catalogue, taught_names: dict[str, str] | None = None) -> str:
    """A class as a person reads it: a species' common name, or what not_snake / other_snake mean."""
    from .bundle import NOT_SNAKE

    if taught_names and slug in taught_names:
        return taught_names[slug]
    if slug == NOT_SNAKE:
        return "not a snake"
    return catalogue.get(slug).common_name


def _warnings(species: TaughtSpecies, cv: CrossValidation, predictor, taught_names: dict[str, str]) -> list[str]:
    out = []
    if species.photos < FEW_PHOTOS:
        out.append(
            f"Only {species.photos} photos: answers for {species.common_name} will be unreliable; "
            f"{FEW_PHOTOS} or more (30 is better) from different animals and angles help."
        )
    if cv.photos and cv.confused_with:
        slug, count = next(iter(cv.confused_with.items()))
        if count / cv.photos >= CONFUSION_WARNING:
            other = class_label(slug, predictor.catalogue, taught_names)
            out.append(
                f"{species.common_name} is often confused with {other}: {count} of {cv.photos} of its own photos were "
                "answered that way when left out of teaching."
            )
    return out
