"""Model latency at batch 1 and batch 16, as the app runs it (Predictor: channels_last, inference_mode).

    .venv/bin/python benchmarks/bench_model.py [--weights DIR] [--threads N] [--runs N]

Uses the bundled model in weights/ when present, else a randomly initialised MobileNetV2-1.0 at 224 px
(same compute). Prints median and p90 milliseconds, per batch and per photo.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from snakeid_desktop import paths  # noqa: E402
from snakeid_desktop.predictor import Predictor  # noqa: E402


def _bundle_dir(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    if (paths.weights_dir() / "model.json").is_file():
        return paths.weights_dir()
    from tests.conftest import make_test_bundle

    print("(no bundled model: timing a random MobileNetV2-1.0 at 224 px)")
    return make_test_bundle(Path(tempfile.mkdtemp()), width_mult=1.0, input_size=224)


def time_batches(predictor: Predictor, batch: int, runs: int) -> list[float]:
    size = predictor.preprocessing.input_size
    x = torch.randn(batch, 3, size, size)
    for _ in range(3):
        predictor.probabilities(x)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        predictor.probabilities(x)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: the app's choice)")
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    predictor = Predictor.load(_bundle_dir(args.weights), num_threads=args.threads)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, input {predictor.preprocessing.input_size} px")
    print(f"{'batch':>5} {'median ms':>10} {'p90 ms':>8} {'ms/photo':>9} {'photos/s':>9}")
    for batch in (1, 16):
        times = sorted(time_batches(predictor, batch, args.runs if batch == 1 else max(5, args.runs // 3)))
        med = statistics.median(times)
        p90 = times[int(0.9 * (len(times) - 1))]
        print(f"{batch:>5} {med:>10.1f} {p90:>8.1f} {med / batch:>9.2f} {1000 * batch / med:>9.1f}")


if __name__ == "__main__":
    main()
