"""Decode + preprocess of a generated phone-sized JPEG: naive Pillow vs the app's loader.

    .venv/bin/python benchmarks/bench_decode.py [--runs N] [--size 4000x3000] [--size 6000x4000] [--noise 0.18] [--threads N]

naive:  Image.open(path).convert("RGB") then eval_transform (resize shorter side to 256,
        centre-crop 224, normalise) -- the full-resolution picture is decoded.
loader: load_image(path, min_side=256) then the same eval_transform -- libjpeg decodes at
        1/8 scale (draft) because only 256 px are needed.

The JPEG (gradient + noise + shapes, quality 92) is written to a temporary folder and deleted
afterwards. With the default noise a 12 MP file is ~3 MB, like a phone photo; the draft saves
the inverse DCT, upsampling and colour conversion at full size but not the Huffman decoding of
every coefficient, so the noisier (bigger) the file, the smaller the gain (``--noise 0`` shows
the other extreme). Prints median and p90 wall milliseconds and median CPU milliseconds per
photo for each step (steps interleaved, so a busy machine slows all of them alike), the
speed-up, and how far apart the two model inputs are (mean absolute difference of the
normalised tensors), so the saving is not bought with a different picture.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image, ImageDraw  # noqa: E402

from snakeid_desktop.imageload import load_image  # noqa: E402
from snakeid_desktop.preprocess import Preprocessing, eval_transform  # noqa: E402
from snakeid_desktop.runtime import configure_torch  # noqa: E402


def make_photo(path: Path, size: tuple[int, int], noise: float = 0.18) -> int:
    """Write a photo-like JPEG: smooth gradients, sensor-like noise, hard-edged shapes."""
    w, h = size
    small = (w // 8, h // 8)
    red = Image.linear_gradient("L").resize(small)
    green = Image.radial_gradient("L").resize(small)
    blue = Image.linear_gradient("L").rotate(90).resize(small)
    base = Image.merge("RGB", (red, green, blue)).resize(size, Image.Resampling.BICUBIC)
    image = Image.blend(base, Image.effect_noise(size, 24).convert("RGB"), noise)
    draw = ImageDraw.Draw(image)
    for i in range(40):  # a winding band of overlapping ellipses: something snake-like to look at
        x = int(w * (0.1 + 0.8 * i / 40))
        y = int(h * (0.5 + 0.25 * math.sin(i / 4)))
        r = max(8, w // 60)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(60 + i * 3, 45, 30), outline=(20, 20, 10), width=3)
    draw.rectangle((w // 20, h // 20, w // 5, h // 4), fill=(200, 190, 170))
    image.save(path, "JPEG", quality=92)
    return path.stat().st_size


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def time_interleaved(steps: dict, runs: int) -> tuple[dict, dict, dict]:
    """Run every step once per round, in turn, so load from other processes hits all alike.

    -> (wall ms per step, CPU ms per step, last result per step).
    """
    results = {name: step() for name, step in steps.items()}  # warm-up: plugin imports, page cache
    wall = {name: [] for name in steps}
    cpu = {name: [] for name in steps}
    for _ in range(runs):
        for name, step in steps.items():
            w0, c0 = time.perf_counter(), time.process_time()
            results[name] = step()
            cpu[name].append((time.process_time() - c0) * 1000)
            wall[name].append((time.perf_counter() - w0) * 1000)
    return wall, cpu, results


def bench_size(size: tuple[int, int], runs: int, prep: Preprocessing, noise: float) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "photo.jpg"
        nbytes = make_photo(path, size, noise)
        print(f"\n{size[0]}x{size[1]} JPEG ({size[0] * size[1] / 1e6:.0f} MP, {nbytes / 1e6:.1f} MB), {runs} runs")

        def naive_decode():
            with Image.open(path) as im:
                return im.convert("RGB")

        def loader_decode():
            return load_image(path, min_side=prep.resize_size).image

        steps = {
            "naive decode": naive_decode,
            "loader decode": loader_decode,
            "naive decode+preprocess": lambda: eval_transform(naive_decode(), prep),
            "loader decode+preprocess": lambda: eval_transform(loader_decode(), prep),
        }
        wall, cpu, results = time_interleaved(steps, runs)
        print(f"{'step':<26} {'median ms':>10} {'p90 ms':>8} {'CPU ms':>8}")
        for name in steps:
            print(
                f"{name:<26} {statistics.median(wall[name]):>10.1f} {percentile(wall[name], 0.9):>8.1f}"
                f" {statistics.median(cpu[name]):>8.1f}"
            )

        naive_ms = statistics.median(wall["naive decode+preprocess"])
        loader_ms = statistics.median(wall["loader decode+preprocess"])
        naive_cpu = statistics.median(cpu["naive decode+preprocess"])
        loader_cpu = statistics.median(cpu["loader decode+preprocess"])
        diff = (results["naive decode+preprocess"] - results["loader decode+preprocess"]).abs().mean().item()
        loaded = load_image(path, min_side=prep.resize_size)
        print(
            f"decode+preprocess: loader takes {loader_ms / naive_ms:.0%} of the naive time "
            f"({naive_ms / loader_ms:.1f}x faster; CPU {naive_cpu / loader_cpu:.1f}x); "
            f"decoded {loaded.image.size[0]}x{loaded.image.size[1]} of {loaded.original_size[0]}x"
            f"{loaded.original_size[1]}; model inputs differ by {diff:.4f} on average "
            f"(normalised units, {diff * 127.5:.2f} of 255)"
        )


def bench_icc(size: tuple[int, int], runs: int, prep: Preprocessing, noise: float) -> None:
    from tests.icc_profiles import DISPLAY_P3_COLORANTS, rgb_profile

    with tempfile.TemporaryDirectory() as folder:
        plain = Path(folder) / "plain.jpg"
        make_photo(plain, size, noise)
        tagged = Path(folder) / "p3.jpg"
        with Image.open(plain) as im:  # same pixels, same quality, plus the profile
            im.save(tagged, "JPEG", quality=92, icc_profile=rgb_profile("Display P3", DISPLAY_P3_COLORANTS))
        steps = {
            "untagged, min_side=256": lambda: load_image(plain, min_side=prep.resize_size),
            "Display P3, min_side=256": lambda: load_image(tagged, min_side=prep.resize_size),
            "untagged, full size": lambda: load_image(plain),
            "Display P3, full size": lambda: load_image(tagged),
        }
        wall, cpu, _ = time_interleaved(steps, runs)
        print(f"\nICC conversion to sRGB, {size[0]}x{size[1]} JPEG ({size[0] * size[1] / 1e6:.0f} MP), {runs} runs")
        for name in steps:
            print(f"{name:<26} {statistics.median(wall[name]):>10.1f} ms  CPU {statistics.median(cpu[name]):>8.1f} ms")
        for label in ("min_side=256", "full size"):
            extra = statistics.median(wall[f"Display P3, {label}"]) - statistics.median(wall[f"untagged, {label}"])
            print(f"cost of the profile ({label}): {extra:+.1f} ms per photo")


def parse_size(text: str) -> tuple[int, int]:
    w, _, h = text.lower().partition("x")
    return int(w), int(h)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--size", type=parse_size, action="append", help="WxH, repeatable (default 4000x3000)")
    parser.add_argument("--noise", type=float, default=0.18, help="share of sensor-like noise, 0..1")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: the app's choice)")
    parser.add_argument("--icc", action="store_true", help="also time the colour-profile conversion")
    args = parser.parse_args()
    # As the app runs: with extra torch threads, the tiny preprocessing tensor ops mostly wait
    # on each other (measured: 2 threads on a busy 2-core machine, 37 ms instead of 2 ms).
    configure_torch(args.threads)
    import torch

    prep = Preprocessing(224, 256)
    print(
        f"Pillow {Image.__version__}, torch threads {torch.get_num_threads()}; "
        f"preprocessing: resize {prep.resize_size}, crop {prep.input_size}"
    )
    for size in args.size or [(4000, 3000)]:
        bench_size(size, args.runs, prep, args.noise)
        if args.icc:
            bench_icc(size, args.runs, prep, args.noise)


if __name__ == "__main__":
    main()
