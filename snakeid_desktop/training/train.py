"""Fine-tune MobileNetV2 on the snake photos and write the app's model bundle.

Two commands rebuild the shipped bundle (weights/MODEL_CARD.md, "Reproduce"): first the EfficientNet-Lite0
teacher, then the MobileNetV2 student distilled from it (weight conversion, training, calibration,
thresholds, bundle)::

    export MALLOC_MMAP_THRESHOLD_=268435456 MALLOC_TRIM_THRESHOLD_=536870912
    python -m snakeid_desktop.training.train --data ../shared/data --architecture efficientnet_lite0 \\
        --init imagenet --freeze-blocks 9 --views 8 --epochs 30 --work-dir .cache/runs/lite0-f9v8
    python -m snakeid_desktop.training.train --data ../shared/data --out weights/ --work-dir .cache/runs/kd160 \\
        --teacher-checkpoint .cache/runs/lite0-f9v8/teacher.pt

The two environment variables stop glibc from returning freed activation buffers to the OS after every
step (measured here: training 2.4-2.7x faster on CPU). Checkpoints are written every epoch to
``--work-dir``; rerunning the same command resumes from the last complete epoch.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from ..preprocess import Preprocessing
from . import data as tdata
from .common import TrainConfig, clone_with_state, init_key, is_bundle_init, load_data, make_model, predict_logits
from .efficientnet_lite import ARCHITECTURES as LITE_ARCHITECTURES

# Config fields that may differ when a run is resumed: they do not change what is computed.
RESUMABLE_CHANGES = frozenset({"threads", "out", "model_version"})
# --architecture: the app's network, or an EfficientNet-Lite teacher (teacher.pt; never shipped).
ARCHITECTURES = ("mobilenet_v2", *LITE_ARCHITECTURES)

# ----------------------------------------------------------------------------------------------- utils


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def progress(prefix: str, done: int, total: int, extra: str, width: int = 24) -> None:
    filled = int(width * done / max(1, total))
    bar = "#" * filled + "." * (width - filled)
    end = "\n" if done >= total else ""
    print(f"\r{prefix} [{bar}] {done}/{total} {extra}   ", end=end, file=sys.stderr, flush=True)


def atomic_save(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def device_for_training() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


class EMA:
    """Exponential moving average of all weights and BN statistics (cheap: one lerp per step)."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.state[k].lerp_(v.detach(), 1.0 - d)
            else:
                self.state[k].copy_(v)


def param_groups(model: nn.Module, cfg: TrainConfig) -> list[dict]:
    groups = {(h, d): [] for h in (False, True) for d in (False, True)}
    for name, p in model.named_parameters():
        head = name.startswith("classifier.")
        decay = p.ndim > 1
        groups[(head, decay)].append(p)
    out = []
    for (head, decay), params in groups.items():
        if params:
            out.append(
                {
                    "params": params,
                    "lr": cfg.lr * (cfg.head_lr_mult if head else 1.0),
                    "weight_decay": cfg.weight_decay if decay else 0.0,
                }
            )
    return out


# ------------------------------------------------------------------------------------------- training


def forward_from(model: nn.Module, hidden: torch.Tensor, first_block: int) -> torch.Tensor:
    """Run ``model`` from ``features[first_block]`` on (cached) activations of the blocks before it."""
    h = model.features[first_block:](hidden)
    return model.classifier(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1))


def set_train_mode(model: nn.Module, freeze_blocks: int) -> None:
    model.train()
    # Frozen blocks keep their ImageNet BN statistics: identical at train and inference time.
    model.features[:freeze_blocks].eval()


@torch.no_grad()
def prefix_activations(model: nn.Module, tensors_fn, count: int, freeze_blocks: int, device, desc: str,
                       batch_size: int = 64) -> torch.Tensor:
    """fp16 activations of ``features[:freeze_blocks]`` for ``count`` inputs given by ``tensors_fn(slice)``."""
    prefix = model.features[:freeze_blocks].eval()
    out = None
    for i in range(0, count, batch_size):
        x = tensors_fn(slice(i, min(count, i + batch_size))).to(device).contiguous(memory_format=torch.channels_last)
        h = prefix(x).to("cpu", torch.float16)
        if out is None:
            out = torch.empty((count, *h.shape[1:]), dtype=torch.float16)
        out[i : i + len(h)] = h
        progress(desc, min(count, i + batch_size), count, "")
    return out


def cached_train_views(model, cfg: TrainConfig, train_images, augment, device) -> torch.Tensor:
    """(views, N, C, H, W) fp16 activations of augmented copies; cached on disk per configuration."""
    folder = Path(cfg.cache_dir) / "activations"
    folder.mkdir(parents=True, exist_ok=True)
    views = []
    for v in range(cfg.views):
        # One file per view, so a longer run reuses the views a shorter one already computed.
        # Lite1 and Lite2 runs name their architecture (at --freeze-blocks 9 Lite1's prefix ends in Lite0's shape,
        # so a shared name would silently hand one the other's activations); older names stay valid caches.
        arch = "" if cfg.architecture in ("mobilenet_v2", "efficientnet_lite0") else f"{cfg.architecture}-"
        key = f"{arch}{init_key(cfg.init)}-f{cfg.freeze_blocks}-s{cfg.train_size}-c{cfg.crop_scale_min}-n{len(train_images)}-seed{cfg.seed}-view{v}"
        path = folder / f"{key}.pt"
        if path.is_file():
            views.append(torch.load(path, weights_only=True))
            continue
        torch.manual_seed(cfg.seed * 100 + v)
        view = prefix_activations(model, lambda sl: torch.stack([augment(im) for im in train_images[sl]]),
                                  len(train_images), cfg.freeze_blocks, device,
                                  f"activations view {v + 1}/{cfg.views}")
        atomic_save(view, path)
        views.append(view)
    return torch.stack(views)


@torch.no_grad()
def cached_teacher_views(teacher, cfg: TrainConfig, train_images, augment, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(views, N, 3, H, W) fp16 augmented inputs and (views, N, classes) fp16 teacher logits on exactly them.

    One file per view in ``cache_dir/teacher-views``, keyed by the teacher file's size and mtime and the
    augmentation settings, so a resumed or longer run reuses what was computed.
    """
    folder = Path(cfg.cache_dir) / "teacher-views"
    folder.mkdir(parents=True, exist_ok=True)
    source = Path(cfg.teacher_checkpoint)
    if source.is_dir():  # a bundle: its weights' checksum names it
        teacher_key = "b" + json.loads((source / "model.json").read_text())["weights_sha256"][:16]
    else:
        st = source.stat()
        teacher_key = f"t{st.st_size}-{st.st_mtime_ns}"
    images, logits = [], []
    for v in range(cfg.teacher_views):
        key = (f"{teacher_key}-s{cfg.train_size}-c{cfg.crop_scale_min}-r{int(cfg.rotations)}-d{int(cfg.degrade)}"
               f"-n{len(train_images)}-seed{cfg.seed}-view{v}")
        path = folder / f"{key}.pt"
        if path.is_file():
            saved = torch.load(path, weights_only=True)
        else:
            torch.manual_seed(cfg.seed * 100 + 50 + v)
            view = torch.empty((len(train_images), 3, cfg.train_size, cfg.train_size), dtype=torch.float16)
            out = None
            for i in range(0, len(train_images), 64):
                x = torch.stack([augment(im) for im in train_images[i:i + 64]])
                t = teacher(x.to(device).contiguous(memory_format=torch.channels_last)).float().cpu()
                if out is None:
                    out = torch.empty((len(train_images), t.shape[1]), dtype=torch.float16)
                view[i:i + len(x)], out[i:i + len(x)] = x.half(), t.half()
                progress(f"teacher view {v + 1}/{cfg.teacher_views}", min(len(train_images), i + 64),
                         len(train_images), "")
            saved = {"images": view, "logits": out}
            atomic_save(saved, path)
        images.append(saved["images"])
        logits.append(saved["logits"])
    return torch.stack(images), torch.stack(logits)


def teacher_temperature(path: str) -> float:
    """The calibrated temperature of a teacher: a bundle's own, or the one in teacher_report.json beside a teacher.pt."""
    source = Path(path)
    if source.is_dir():
        return float(json.loads((source / "model.json").read_text())["temperature"])
    return float(json.loads((source.parent / "teacher_report.json").read_text())["chosen"]["temperature"])


class MeanOfCalibrated(nn.Module):
    """An ensemble teacher run on every batch: the log of the mean of its members' calibrated probabilities
    (log-probabilities, which the distillation loss at temperature 1 takes as they are)."""

    def __init__(self, members: list[tuple[nn.Module, float]]):
        super().__init__()
        self.members = nn.ModuleList(m for m, _ in members)
        self.temperatures = [t for _, t in members]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = [F.softmax(m(x).float() / t, 1) for m, t in zip(self.members, self.temperatures)]
        return torch.log((sum(probs) / len(probs)).clamp_min(1e-8))


@torch.no_grad()
def ensemble_targets(cfg: TrainConfig, images: torch.Tensor, teacher_logits: torch.Tensor, classes: list[str]) -> torch.Tensor:
    """Log of the mean of the teacher's and ``cfg.ensemble_bundle``'s calibrated probabilities on the
    cached views: log-probabilities, so the distillation loss at temperature 1 takes them as they are."""
    from ..predictor import Predictor

    teacher_probs = F.softmax(teacher_logits.float() / teacher_temperature(cfg.teacher_checkpoint), -1)
    member = Predictor.load(cfg.ensemble_bundle, num_threads=cfg.threads)
    if member.bundle.classes != classes:
        raise SystemExit(f"{cfg.ensemble_bundle} was trained on different classes")
    probs = torch.empty_like(teacher_probs)
    for v in range(images.shape[0]):
        for i in range(0, images.shape[1], 128):
            probs[v, i:i + 128] = member.probabilities(images[v, i:i + 128].float())
        progress("ensemble member", v + 1, images.shape[0], "")
    return torch.log(((teacher_probs + probs) / 2).clamp_min(1e-8))


def train(cfg: TrainConfig, loaded=None, stop_after_epochs: int | None = None) -> dict:
    """Train (or resume) and return {'model', 'ema_state', 'classes', 'history', ...}."""
    if cfg.teacher_checkpoint and cfg.freeze_blocks:
        # The teacher needs the augmented photos, which the cached-activation path never materialises.
        raise SystemExit("distillation needs full fine-tuning: add --freeze-blocks 0")
    torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    device = device_for_training()
    work = Path(cfg.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    classes, train_s, train_images, val_s, val_images = loaded or load_data(cfg)
    num_classes = len(classes)
    frozen = cfg.freeze_blocks

    if is_bundle_init(cfg.init):
        from ..bundle import load_bundle

        if load_bundle(cfg.init).classes != classes:
            raise SystemExit(f"{cfg.init} was trained on different classes")
    model = make_model(num_classes, cfg.init, Path(cfg.cache_dir), cfg.architecture).to(device).to(memory_format=torch.channels_last)
    for p in model.features[:frozen].parameters():
        p.requires_grad_(False)
    ema = EMA(model, cfg.ema_decay)
    optimizer = torch.optim.AdamW(param_groups(model, cfg), lr=cfg.lr)
    steps_per_epoch = math.ceil(len(train_s) / cfg.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=[g["lr"] for g in optimizer.param_groups],
        total_steps=cfg.epochs * steps_per_epoch,
        pct_start=0.15,
        div_factor=20.0,
        final_div_factor=200.0,
    )
    history: list[dict] = []
    start_epoch = 0
    ckpt_path = work / "last.pt"
    if ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        # Only fields the checkpoint knows are compared, so adding a config field keeps old runs resumable;
        # where the result goes and how many threads compute it may change between sessions.
        changed = [k for k, v in ckpt["config"].items()
                   if k not in RESUMABLE_CHANGES and asdict(cfg).get(k, v) != v]
        if changed:
            raise SystemExit(f"{ckpt_path} was written with a different configuration ({', '.join(changed)}); "
                             "use another --work-dir")
        model.load_state_dict(ckpt["model"])
        ema.state, ema.updates = ckpt["ema"], ckpt["ema_updates"]
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        history, start_epoch = ckpt["history"], ckpt["epoch"] + 1
        print(f"resumed from {ckpt_path} after epoch {start_epoch}", file=sys.stderr)

    weights = tdata.balanced_weights(train_s, cfg.not_snake_share)
    labels = torch.tensor([s.label for s in train_s])
    augment = tdata.TrainAugment(Preprocessing(cfg.train_size, round(cfg.train_size / 0.875)),
                                 scale=(cfg.crop_scale_min, 1.0), rotate=cfg.rotations, degrade=cfg.degrade)
    eval_prep = Preprocessing(cfg.eval_size, round(cfg.eval_size / 0.875))
    val_x = tdata.eval_tensors(val_images, eval_prep)
    val_y = torch.tensor([s.label for s in val_s])
    criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)

    train_views = val_hidden = None
    teacher = load_teacher(cfg.teacher_checkpoint, classes, device) if cfg.teacher_checkpoint else None
    teacher_images = teacher_logits = None
    if teacher is not None and cfg.teacher_views:
        teacher_images, teacher_logits = cached_teacher_views(teacher, cfg, train_images, augment, device)
        if cfg.ensemble_bundle:
            teacher_logits = ensemble_targets(cfg, teacher_images, teacher_logits, classes)
        teacher = None  # its outputs are all cached: the epochs cost only the student
    elif teacher is not None and cfg.ensemble_bundle:
        teacher = MeanOfCalibrated([(teacher, teacher_temperature(cfg.teacher_checkpoint)),
                                    (load_teacher(cfg.ensemble_bundle, classes, device),
                                     teacher_temperature(cfg.ensemble_bundle))]).eval()
    if frozen:
        train_views = cached_train_views(model, cfg, train_images, augment, device)
        val_hidden = prefix_activations(model, lambda sl: val_x[sl], len(val_x), frozen, device, "val activations")

    last_epoch = cfg.epochs if stop_after_epochs is None else min(cfg.epochs, stop_after_epochs)
    for epoch in range(start_epoch, last_epoch):
        # Per-epoch seeds make a resumed run draw the same batches and augmentations as an unbroken one.
        gen = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
        torch.manual_seed(cfg.seed * 1000 + epoch)
        order = torch.multinomial(weights, len(train_s), replacement=True, generator=gen)
        view_of = torch.randint(0, max(1, cfg.teacher_views if teacher_images is not None else cfg.views),
                                (len(train_s),), generator=gen)
        set_train_mode(model, frozen)
        t0, seen, loss_sum = time.perf_counter(), 0, 0.0
        for step in range(steps_per_epoch):
            idx = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            y = labels[idx].to(device)
            t_logits = None
            if frozen:
                h = train_views[view_of[idx], idx].to(device, torch.float32).contiguous(memory_format=torch.channels_last)
                logits = forward_from(model, h, frozen)
            elif teacher_images is not None:
                x = teacher_images[view_of[idx], idx].float()
                t_logits = teacher_logits[view_of[idx], idx].to(device, torch.float32)
                logits = model(x.to(device).contiguous(memory_format=torch.channels_last))
            else:
                x = torch.stack([augment(train_images[i]) for i in idx.tolist()])
                logits = model(x.to(device).contiguous(memory_format=torch.channels_last))
            loss = criterion(logits, y)
            if teacher is not None:
                with torch.no_grad():
                    t_logits = teacher(x.to(device).contiguous(memory_format=torch.channels_last)).float()
            if t_logits is not None:
                tau = cfg.distill_temperature
                kd = F.kl_div(F.log_softmax(logits / tau, 1), F.log_softmax(t_logits / tau, 1),
                              reduction="batchmean", log_target=True) * tau * tau
                loss = (1 - cfg.distill_weight) * loss + cfg.distill_weight * kd
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            ema.update(model)
            seen += len(idx)
            loss_sum += loss.item() * len(idx)
            rate = seen / (time.perf_counter() - t0)
            eta = (steps_per_epoch - step - 1) * cfg.batch_size / rate
            progress(f"epoch {epoch + 1}/{cfg.epochs}", step + 1, steps_per_epoch,
                     f"loss {loss_sum / seen:.3f} {rate:.0f} img/s eta {eta:.0f}s")
        train_time = time.perf_counter() - t0
        ema_model = clone_with_state(model, ema.state, num_classes, device)
        if frozen:
            with torch.no_grad():
                val_logits = torch.cat([forward_from(ema_model, val_hidden[i : i + 128].to(device, torch.float32), frozen).cpu()
                                        for i in range(0, len(val_hidden), 128)])
        else:
            val_logits = predict_logits(ema_model, val_x, device)
        val_acc = (val_logits.argmax(1) == val_y).float().mean().item()
        val_nll = F.cross_entropy(val_logits, val_y).item()
        record = {"epoch": epoch + 1, "train_loss": round(loss_sum / seen, 4), "train_seconds": round(train_time, 1),
                  "img_per_s": round(seen / train_time, 1), "val_top1_20class_ema": round(val_acc, 4),
                  "val_nll_ema": round(val_nll, 4), "lr": scheduler.get_last_lr()[0]}
        history.append(record)
        print(json.dumps(record), file=sys.stderr)
        atomic_save({"config": asdict(cfg), "model": model.state_dict(), "ema": ema.state,
                     "ema_updates": ema.updates, "optimizer": optimizer.state_dict(),
                     "scheduler": scheduler.state_dict(), "history": history, "epoch": epoch, "classes": classes},
                    ckpt_path)
    (work / "history.json").write_text(json.dumps(history, indent=1))
    return {"model": model, "ema_state": ema.state, "classes": classes, "history": history,
            "val_samples": val_s, "val_images": val_images, "device": device}


def load_teacher(path: str, classes: list[str], device) -> nn.Module:
    """Frozen in eval mode: a teacher.pt written by an efficientnet_lite0/1/2 run (it names its architecture),
    or a model bundle folder (e.g. the shipped MobileNetV2: "born-again" self-distillation). Either way the
    teacher gives raw logits; a bundle's temperature is not applied, as a teacher.pt has none applied."""
    if Path(path).is_dir():
        from ..bundle import load_bundle

        bundle = load_bundle(path)
        if bundle.classes != classes:
            raise SystemExit(f"{path} was trained on different classes")
        teacher = bundle.model
    else:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if saved["classes"] != classes:
            raise SystemExit(f"{path} was trained on different classes")
        teacher = make_model(len(classes), "random", Path(), saved["architecture"])
        teacher.load_state_dict(saved["state"])
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher.to(device).to(memory_format=torch.channels_last).eval()


# ---------------------------------------------------------------------------------------------- main


def parse_args(argv=None) -> TrainConfig:
    cfg = TrainConfig()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name, value in asdict(cfg).items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, list):
            ap.add_argument(flag, type=int, nargs="+", default=value)
        elif isinstance(value, bool):
            ap.add_argument(flag, action=argparse.BooleanOptionalAction, default=value)
        else:
            kind = type(value) if value is not None else str
            choices = ARCHITECTURES if name == "architecture" else None
            ap.add_argument(flag, type=kind, default=value, choices=choices)
    ap.add_argument("--no-bundle", action="store_true", help="train only; do not calibrate or write a bundle")
    ns = ap.parse_args(argv)
    no_bundle = ns.no_bundle
    del ns.no_bundle
    cfg = TrainConfig(**vars(ns))
    if no_bundle:
        cfg.out = None
    return cfg


def main(argv=None) -> int:
    cfg = parse_args(argv)
    t0 = time.perf_counter()
    result = train(cfg)
    train_wall = time.perf_counter() - t0
    print(f"training wall time {train_wall / 60:.1f} min", file=sys.stderr)
    if cfg.architecture != "mobilenet_v2":
        from .finalize import save_teacher

        save_teacher(cfg, result)
    elif cfg.out:
        from .finalize import app_path_check, finalize

        finalize(cfg, result, train_wall_s=train_wall)
        app_path_check(cfg, Path(cfg.work_dir))
        print(f"total wall time {(time.perf_counter() - t0) / 60:.1f} min", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
