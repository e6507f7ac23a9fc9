"""Training data: ImageFolder roots decoded once into memory, class-balanced sampling, augmentation.

Photos are decoded a single time (shorter side capped at ``cache_short_side``) and kept as PIL images,
so epochs never touch JPEG decoding again. Augmentation works on those PIL images and ends in the app's
own :func:`~snakeid_desktop.preprocess.to_normalized_tensor`, so training and inference share one
pixel scaling/normalisation by construction.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, ImageOps

from ..bundle import NOT_SNAKE
from ..safety import OTHER_SNAKE
from ..preprocess import Preprocessing, eval_transform, resize_shorter_side, to_normalized_tensor

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int
    group: str  # species slug, or "not_snake/<category>" (used for balancing and per-category reports)


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def species_classes(snakes_split_dir: Path) -> list[str]:
    return sorted(p.name for p in snakes_split_dir.iterdir() if p.is_dir())


def scan_split(snakes_dir: Path, not_snake_dir: Path | None, classes: list[str]) -> list[Sample]:
    """Samples of one split: ``snakes_dir/<slug>/*`` and every ``not_snake_dir/<category>/*`` as not_snake."""
    index = {c: i for i, c in enumerate(classes)}
    samples: list[Sample] = []
    for folder in sorted(p for p in snakes_dir.iterdir() if p.is_dir()):
        if folder.name not in index:
            raise ValueError(f"{folder} is not one of the model's classes")
        samples += [Sample(p, index[folder.name], folder.name) for p in list_images(folder)]
    if not_snake_dir is not None:
        for folder in sorted(p for p in not_snake_dir.iterdir() if p.is_dir()):
            samples += [Sample(p, index[NOT_SNAKE], f"{NOT_SNAKE}/{folder.name}") for p in list_images(folder)]
    return samples


def scan_other_snakes(folder: Path, label: int) -> list[Sample]:
    """Snakes of species outside the model's (genus-level folders): all one class, ``other_snake``."""
    samples: list[Sample] = []
    for group in sorted(p for p in folder.iterdir() if p.is_dir()):
        samples += [Sample(p, label, OTHER_SNAKE) for p in list_images(group)]
    return samples


def decode(path: Path, cache_short_side: int | None) -> Image.Image:
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        im = im.convert("RGB")
        im.load()
    if cache_short_side and min(im.size) > cache_short_side:
        im = resize_shorter_side(im, cache_short_side)
    return im


def decode_all(samples: list[Sample], cache_short_side: int | None, desc: str = "decode") -> list[Image.Image]:
    images = []
    for i, s in enumerate(samples):
        images.append(decode(s.path, cache_short_side))
        if (i + 1) % 200 == 0 or i + 1 == len(samples):
            print(f"\r{desc}: {i + 1}/{len(samples)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return images


def balanced_weights(samples: list[Sample], not_snake_share: float) -> torch.Tensor:
    """Per-sample draw weights: every species equally likely; not_snake gets ``not_snake_share`` of draws,
    split over its categories in proportion to sqrt(count) so tiny look-alike categories get seen more."""
    counts = Counter(s.group for s in samples)
    species = [g for g in counts if not g.startswith(NOT_SNAKE)]
    negatives = [g for g in counts if g.startswith(NOT_SNAKE)]
    share = not_snake_share if negatives else 0.0
    mass: dict[str, float] = {g: (1.0 - share) / len(species) for g in species}
    sqrt_total = sum(counts[g] ** 0.5 for g in negatives) or 1.0
    for g in negatives:
        mass[g] = share * counts[g] ** 0.5 / sqrt_total
    return torch.tensor([mass[s.group] / counts[s.group] for s in samples], dtype=torch.double)


class TrainAugment:
    """Random resized crop + flip + mild colour jitter on PIL, then the app's normalisation.

    ``rotate``: a snake has no "up": half the draws are turned by 90, 180 or 270 degrees, and a third
    tilted by up to 20 degrees. ``degrade``: a third are shrunk (to 25-70 % of the crop side) and a
    third re-saved as JPEG (quality 30-90), so photo size and compression stop being cues (the
    Philippine photos are all 224 px crops, the Mozambique ones 384 px wide). Colour stays: it is a
    species cue. All randomness comes from torch's generator, so resumed runs repeat exactly.
    """

    def __init__(self, prep: Preprocessing, scale: tuple[float, float] = (0.25, 1.0), jitter: float = 0.3,
                 rotate: bool = False, degrade: bool = False):
        from torchvision.transforms import v2

        self.prep = prep
        self.rotate = rotate
        self.degrade = degrade
        self.geometry = v2.Compose(
            [
                v2.RandomResizedCrop(prep.input_size, scale=scale, antialias=True),
                v2.RandomHorizontalFlip(),
            ]
        )
        self.tilt = v2.RandomRotation(20, fill=(128, 128, 128))  # the loader's neutral grey
        # No hue jitter: colour is a species cue (green boomslang vs brown twig snake).
        self.colour = v2.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter * 0.7)

    @staticmethod
    def _chance(p: float) -> bool:
        return float(torch.rand(())) < p

    def __call__(self, image: Image.Image) -> torch.Tensor:
        if self.rotate:
            if self._chance(0.5):
                image = image.transpose((Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180,
                                         Image.Transpose.ROTATE_270)[int(torch.randint(0, 3, ()))])
            if self._chance(1 / 3):
                image = self.tilt(image)
        image = self.colour(self.geometry(image))
        if self.degrade:
            image = self._degrade(image)
        return to_normalized_tensor(image, self.prep)

    def _degrade(self, image: Image.Image) -> Image.Image:
        side = image.size
        if self._chance(1 / 3):
            factor = 0.25 + 0.45 * float(torch.rand(()))
            small = (max(8, round(side[0] * factor)), max(8, round(side[1] * factor)))
            image = image.resize(small, Image.Resampling.BILINEAR).resize(side, Image.Resampling.BILINEAR)
        if self._chance(1 / 3):
            import io

            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=int(torch.randint(30, 91, ())))
            buffer.seek(0)
            with Image.open(buffer) as reread:
                image = reread.convert("RGB")
        return image


def eval_tensors(images: list[Image.Image], prep: Preprocessing) -> torch.Tensor:
    """The app's exact eval geometry (resize shorter side, centre crop) for a list of decoded images."""
    return torch.stack([eval_transform(im, prep) for im in images])
