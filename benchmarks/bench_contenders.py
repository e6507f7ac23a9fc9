"""The design's question, answered with our numbers: six contender networks on this CPU.

    .venv/bin/python benchmarks/bench_contenders.py [--size 192] [--threads 2] [--runs 5] [--only NAME ...]

For each contender (torchvision definitions, random weights, 20 output classes, our input size):
parameters, multiply-accumulates per image (counted with forward hooks on every Conv2d and Linear),
fp32 size, and median CPU latency at batch 1 and 16 (eager, inference_mode, channels_last). Then the
claim behind MobileNetV2: a depthwise-separable 3x3 convolution (3x3 depthwise + 1x1 pointwise) against
a standard 3x3 convolution at the same shape, in MACs and in time.

ResNeXt-152 is not among torchvision's builders; it is assembled from torchvision's own ResNet class
(Bottleneck blocks [3, 8, 36, 3], 32 groups of width 4), which is how ResNeXt-152 32x4d is defined.
Needs torchvision (the training/benchmark side only; the app never imports it).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from torch import nn  # noqa: E402

NUM_CLASSES = 20  # 19 species + not_snake, like the app's head


def _resnext152(num_classes: int) -> nn.Module:
    from torchvision.models.resnet import Bottleneck, ResNet

    return ResNet(Bottleneck, [3, 8, 36, 3], groups=32, width_per_group=4, num_classes=num_classes)


def contenders() -> dict[str, callable]:
    from torchvision import models

    return {
        "ResNeXt-152 32x4d": lambda: _resnext152(NUM_CLASSES),
        "ResNeXt-50 32x4d": lambda: models.resnext50_32x4d(num_classes=NUM_CLASSES),
        "Inception v3": lambda: models.inception_v3(num_classes=NUM_CLASSES, aux_logits=False, init_weights=False),
        "VGG16": lambda: models.vgg16(num_classes=NUM_CLASSES),
        "SqueezeNet 1.1": lambda: models.squeezenet1_1(num_classes=NUM_CLASSES),
        "MobileNetV2 1.0": lambda: models.mobilenet_v2(num_classes=NUM_CLASSES),
    }


def count_macs(model: nn.Module, size: int) -> int:
    """Multiply-accumulates of one image: convolutions and fully connected layers (the bulk of the work)."""
    total = 0

    def conv_hook(module: nn.Conv2d, _inputs, output):
        nonlocal total
        kh, kw = module.kernel_size
        total += output.numel() * (module.in_channels // module.groups) * kh * kw

    def linear_hook(module: nn.Linear, _inputs, output):
        nonlocal total
        total += output.numel() * module.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    with torch.inference_mode():
        model(torch.zeros(1, 3, size, size))
    for h in handles:
        h.remove()
    return total


def median_ms(fn, runs: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def bench_model(name: str, build, size: int, runs: int) -> dict:
    model = build().eval()
    params = sum(p.numel() for p in model.parameters())
    macs = count_macs(model, size)
    model = model.to(memory_format=torch.channels_last)
    row = {"name": name, "params_m": params / 1e6, "gmacs": macs / 1e9, "fp32_mb": params * 4 / 1e6}
    for batch in (1, 16):
        x = torch.randn(batch, 3, size, size).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            # Big networks at batch 16 take seconds a run: fewer repeats there.
            row[f"b{batch}_ms"] = median_ms(lambda: model(x), runs if batch == 1 or macs < 2e9 else max(2, runs // 2))
    return row


def bench_separable(runs: int) -> list[dict]:
    """A 3x3 stage of MobileNetV2 shapes: standard conv vs depthwise 3x3 + pointwise 1x1, same in/out."""
    rows = []
    for channels, side in ((32, 96), (144, 48), (384, 12)):
        x = torch.randn(1, channels, side, side).contiguous(memory_format=torch.channels_last)
        standard = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        separable = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False),
                                  nn.Conv2d(channels, channels, 1, bias=False))
        out = {}
        for label, module in (("standard", standard), ("separable", separable)):
            module = module.eval().to(memory_format=torch.channels_last)
            macs = count_macs_tensor(module, x)
            with torch.inference_mode():
                ms = median_ms(lambda: module(x), runs * 4)
            out[label] = (macs, ms)
        rows.append({"shape": f"{channels} ch, {side}x{side}", "standard_mmacs": out["standard"][0] / 1e6,
                     "separable_mmacs": out["separable"][0] / 1e6,
                     "mac_ratio": out["standard"][0] / out["separable"][0],
                     "standard_ms": out["standard"][1], "separable_ms": out["separable"][1],
                     "time_ratio": out["standard"][1] / out["separable"][1]})
    return rows


def count_macs_tensor(module: nn.Module, x: torch.Tensor) -> int:
    total = 0

    def hook(m, _i, output):
        nonlocal total
        kh, kw = m.kernel_size
        total += output.numel() * (m.in_channels // m.groups) * kh * kw

    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, nn.Conv2d)]
    with torch.inference_mode():
        module(x)
    for h in handles:
        h.remove()
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=192, help="input size (the shipped model's: 192)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", nargs="*", help="contender names to run (default: all)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} threads, {args.size} px, median of {args.runs} runs")
    print(f"{'network':20} {'params (M)':>10} {'GMACs':>7} {'fp32 MB':>8} {'b1 ms':>8} {'b16 ms':>9} {'b16 ms/img':>10}")
    rows = []
    for name, build in contenders().items():
        if args.only and name not in args.only:
            continue
        row = bench_model(name, build, args.size, args.runs)
        rows.append(row)
        print(f"{name:20} {row['params_m']:10.1f} {row['gmacs']:7.2f} {row['fp32_mb']:8.1f} {row['b1_ms']:8.1f} "
              f"{row['b16_ms']:9.1f} {row['b16_ms'] / 16:10.1f}", flush=True)
    print("\ndepthwise-separable vs standard 3x3 convolution (batch 1):")
    print(f"{'shape':18} {'std MMACs':>10} {'sep MMACs':>10} {'MACs x':>7} {'std ms':>8} {'sep ms':>8} {'time x':>7}")
    for r in bench_separable(args.runs):
        print(f"{r['shape']:18} {r['standard_mmacs']:10.1f} {r['separable_mmacs']:10.1f} {r['mac_ratio']:7.1f} "
              f"{r['standard_ms']:8.2f} {r['separable_ms']:8.2f} {r['time_ratio']:7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
