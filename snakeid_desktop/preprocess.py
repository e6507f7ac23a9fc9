"""The one image -> tensor transform, shared by training, evaluation and inference.

Evaluation-time geometry: resize the shorter side to ``resize_size`` then centre-crop
``input_size``. Training augments before calling :func:`to_normalized_tensor`, so the
pixel scaling and normalisation are identical on both sides by construction.

A picture more elongated than ``MAX_ASPECT_RATIO`` is first centre-cropped to that ratio: the
final crop only ever sees the central square, and without the pre-crop resizing the shorter side
of a 1x100000 strip to 256 px would allocate ~19 GB. Up to that ratio (every ordinary photo and
panorama the loader does not already warn about) the result is unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from PIL import Image

from .imageload import ELONGATED_RATIO

# Same threshold as the loader's "very elongated" warning, so a picture that is pre-cropped here
# has always been reported as such to the user.
MAX_ASPECT_RATIO = ELONGATED_RATIO


@dataclass(frozen=True)
class Preprocessing:
    input_size: int = 224
    resize_size: int = 256
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)

    @classmethod
    def from_metadata(cls, meta: dict) -> "Preprocessing":
        norm = meta.get("normalization", {})
        return cls(
            input_size=int(meta["input_size"]),
            resize_size=int(meta.get("resize_size", round(meta["input_size"] / 0.875))),
            mean=tuple(norm.get("mean", cls.mean)),
            std=tuple(norm.get("std", cls.std)),
        )

    def to_metadata(self) -> dict:
        return {
            "input_size": self.input_size,
            "resize_size": self.resize_size,
            "normalization": {"mean": list(self.mean), "std": list(self.std)},
        }


def resize_shorter_side(image: Image.Image, size: int) -> Image.Image:
    w, h = image.size
    scale = size / min(w, h)
    new_size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if new_size == image.size:
        return image
    # reducing_gap makes large downscales fast (box pre-reduction) at no visible cost.
    return image.resize(new_size, Image.Resampling.BILINEAR, reducing_gap=3.0)


def crop_to_aspect(image: Image.Image, max_ratio: float = MAX_ASPECT_RATIO) -> Image.Image:
    """The centred part of ``image`` whose long side is at most ``max_ratio`` times its short side."""
    w, h = image.size
    short = min(w, h)
    longest = max(1, math.floor(short * max_ratio))
    if max(w, h) <= longest:
        return image
    if w > h:
        left = (w - longest) // 2
        return image.crop((left, 0, left + longest, h))
    top = (h - longest) // 2
    return image.crop((0, top, w, top + longest))


def center_crop(image: Image.Image, size: int) -> Image.Image:
    w, h = image.size
    left, top = max(0, (w - size) // 2), max(0, (h - size) // 2)
    cropped = image.crop((left, top, left + size, top + size))
    return cropped


def to_normalized_tensor(image: Image.Image, prep: Preprocessing) -> torch.Tensor:
    """RGB PIL image -> float tensor (3, H, W), scaled to [0, 1] then normalised."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    w, h = image.size
    # frombuffer avoids a numpy dependency on the runtime path.
    data = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).view(h, w, 3)
    x = data.permute(2, 0, 1).float().div_(255.0)
    mean = torch.tensor(prep.mean).view(3, 1, 1)
    std = torch.tensor(prep.std).view(3, 1, 1)
    return x.sub_(mean).div_(std)


def eval_transform(image: Image.Image, prep: Preprocessing) -> torch.Tensor:
    # Bounded work whatever the shape: at most resize_size x (MAX_ASPECT_RATIO * resize_size) pixels.
    image = center_crop(resize_shorter_side(crop_to_aspect(image), prep.resize_size), prep.input_size)
    return to_normalized_tensor(image, prep)


def stack_batch(images: Sequence[Image.Image], prep: Preprocessing) -> torch.Tensor:
    return torch.stack([eval_transform(im, prep) for im in images])
