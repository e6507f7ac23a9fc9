"""Peak memory of the loader (+ preprocessing) on the worst inputs we can build, one fresh process each.

    .venv/bin/python benchmarks/bench_memory.py [--megapixels 159] [--threads 4] [--only NAME ...]

Every case is written to a temporary folder (deleted afterwards), then decoded in a fresh
subprocess by ``load_image(path, min_side=256)`` followed by ``eval_transform`` (what the batch
engine and the GUI do), and once more with ``min_side=None`` (a full-size decode, the worst a
caller can ask for). The child prints its peak resident set (``ru_maxrss``) after importing
(the baseline) and after the decode; the difference is what the picture cost. Each child runs
under an address-space limit (``--cap-gb``) so a case that would need tens of gigabytes fails
with MemoryError instead of getting the machine OOM-killed.

The parallel run decodes ``--threads`` of the big cases at once in one process, as the batch
engine's decoder threads do, and prints the peak RSS next to the loader's decode budget and the
largest amount of it that was reserved at any moment.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402

MB = 2**20

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
cap = {cap}
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
from snakeid_desktop import imageload
from snakeid_desktop.imageload import load_image
from snakeid_desktop.preprocess import Preprocessing, eval_transform
import torch
torch.set_num_threads(1)
prep = Preprocessing(224, 256)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
paths, min_side = {paths!r}, {min_side!r}
out = {{"baseline": base}}
t0 = time.perf_counter()
def one(path):
    loaded = load_image(path, min_side=min_side)
    if min_side:
        eval_transform(loaded.image, prep)
    return loaded
try:
    if len(paths) == 1:
        loaded = one(paths[0])
        out["warnings"] = loaded.warnings
        out["size"] = loaded.image.size
    else:
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(len(paths)) as pool:
            list(pool.map(one, paths))
    out["result"] = "ok"
except MemoryError:
    out["result"] = "MemoryError"
except Exception as exc:
    out["result"] = f"{{type(exc).__name__}}: {{getattr(exc, 'kind', '')}} {{exc}}"
out["seconds"] = time.perf_counter() - t0
out["peak"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
budget = getattr(imageload, "_budget", None)
if budget is not None:
    out["budget"] = budget.limit
    out["reserved_peak"] = budget.peak
print(json.dumps(out))
"""


def side_pair(megapixels: float, ratio: float = 4 / 3) -> tuple[int, int]:
    h = int(math.sqrt(megapixels * 1e6 / ratio))
    return int(h * ratio), h


def build_cases(folder: Path, megapixels: float, only: set[str] | None) -> dict[str, Path]:
    """name -> path of each worst case, built one at a time to keep this process small."""
    size = side_pair(megapixels)
    makers = {
        # 4 bytes/pixel in Pillow, converted through F: the reported 2.3-2.5 GB case.
        "float_tiff": lambda: (Image.linear_gradient("L").resize(size).convert("F"), "TIFF",
                               {"compression": "tiff_adobe_deflate"}),
        # LA is stored with 4 bytes/pixel; flattening went through RGBA + alpha + RGB copies.
        "la_png": lambda: (Image.merge("LA", [Image.linear_gradient("L").resize(size)] * 2), "PNG",
                           {"compress_level": 1}),
        "gray16_png": lambda: (Image.linear_gradient("L").resize(size).convert("I").point(lambda v: v * 200)
                               .convert("I;16"), "PNG", {"compress_level": 1}),
        "palette_png": lambda: (Image.linear_gradient("L").resize(size).convert("P"), "PNG", {"compress_level": 1}),
        "rgba_png": lambda: (Image.linear_gradient("L").resize(size).convert("RGBA"), "PNG", {"compress_level": 1}),
        "rgb_tiff_raw": lambda: (Image.linear_gradient("L").resize(size).convert("RGB"), "TIFF", {}),
        "cmyk_jpeg": lambda: (Image.linear_gradient("L").resize(size).convert("CMYK"), "JPEG", {"quality": 80}),
    }
    suffix = {"TIFF": ".tif", "PNG": ".png", "JPEG": ".jpg"}
    paths = {}
    for name, make in makers.items():
        if only and name not in only:
            continue
        image, fmt, options = make()
        path = folder / f"{name}{suffix[fmt]}"
        image.save(path, fmt, **options)
        del image
        paths[name] = path
    if not only or "line_1x100000_png" in only:
        # 475 bytes on disk; scaling its short side to 256 px asked for a ~19 GB picture.
        path = folder / "line_1x100000_png.png"
        Image.new("RGB", (1, 100_000), (90, 120, 60)).save(path, "PNG")
        paths["line_1x100000_png"] = path
    if not only or "strip_300x30000_png" in only:
        path = folder / "strip_300x30000_png.png"
        Image.new("RGB", (300, 30_000), (90, 120, 60)).save(path, "PNG")
        paths["strip_300x30000_png"] = path
    return paths


def build_in_subprocess(folder: Path, megapixels: float, only: set[str] | None) -> dict[str, Path]:
    cmd = [sys.executable, __file__, "--build-into", str(folder), "--megapixels", str(megapixels)]
    if only:
        cmd += ["--only", *sorted(only)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=True)
    return {name: Path(path) for name, path in json.loads(proc.stdout).items()}


def run_child(paths: list[Path], min_side: int | None, cap: int) -> dict:
    code = CHILD.format(root=str(ROOT), cap=cap, paths=[str(p) for p in paths], min_side=min_side)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 or not proc.stdout.strip():
        return {"result": f"child failed (rc {proc.returncode}): {proc.stderr.strip()[-300:]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, default=159.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--cap-gb", type=float, default=8.0, help="address-space limit of each child")
    parser.add_argument("--only", nargs="*", help="case names to run")
    parser.add_argument("--no-full", action="store_true", help="skip the min_side=None decodes")
    parser.add_argument("--build-into", help=argparse.SUPPRESS)  # internal: the case-building process
    args = parser.parse_args()
    cap = int(args.cap_gb * 2**30)
    only = set(args.only) if args.only else None
    if args.build_into:
        paths = build_cases(Path(args.build_into), args.megapixels, only)
        print(json.dumps({name: str(path) for name, path in paths.items()}))
        return

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = build_in_subprocess(folder, args.megapixels, only)
        print(f"Pillow {Image.__version__}; peak RSS per decode in a fresh process (MB; baseline = after imports)")
        print(f"{'case':<22} {'file MB':>8} {'min_side':>8} {'peak':>7} {'-base':>7} {'s':>6}  result")
        for name, path in paths.items():
            for min_side in (256, None) if not args.no_full else (256,):
                out = run_child([path], min_side, cap)
                peak, base = out.get("peak", 0) / MB, out.get("baseline", 0) / MB
                result = out["result"]
                if out.get("warnings"):
                    result += f" (warnings: {len(out['warnings'])})"
                print(f"{name:<22} {path.stat().st_size / MB:>8.1f} {str(min_side):>8} {peak:>7.0f} "
                      f"{peak - base:>7.0f} {out.get('seconds', 0):>6.1f}  {result}")

        big = [p for n, p in paths.items() if n in ("float_tiff", "la_png", "gray16_png", "rgba_png")]
        if big and args.threads > 1:
            chosen = [big[i % len(big)] for i in range(args.threads)]
            out = run_child(chosen, 256, cap)
            peak, base = out.get("peak", 0) / MB, out.get("baseline", 0) / MB
            budget = out.get("budget")
            print(
                f"\nparallel: {args.threads} threads decoding {', '.join(p.stem for p in chosen)}: peak {peak:.0f} MB "
                f"({peak - base:.0f} above baseline) in {out.get('seconds', 0):.1f} s, {out['result']}"
                + (f"; budget {budget / MB:.0f} MB, most reserved at once {out['reserved_peak'] / MB:.0f} MB"
                   if budget else "; no decode budget in this loader")
            )


if __name__ == "__main__":
    main()
