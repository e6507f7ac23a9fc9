"""Training throughput on this machine: images/s of one full fine-tuning step (forward, backward, AdamW).

    MALLOC_MMAP_THRESHOLD_=268435456 MALLOC_TRIM_THRESHOLD_=536870912 \\
        .venv/bin/python benchmarks/bench_train_step.py [--size 160] [--threads 2] [--teacher]

Random inputs, batch 32, channels_last, the 20-class MobileNetV2 (weights do not change the cost).
``--teacher`` adds the frozen EfficientNet-Lite0 forward that distillation runs on every batch.
Data augmentation is not included (it runs on PIL, ~10 % on top). Prints the median of the timed steps.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from snakeid_desktop.model import build_model  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=160)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=8, help="timed steps (after 2 warm-up steps)")
    ap.add_argument("--teacher", action="store_true", help="include the Lite0 teacher forward (distillation)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model("mobilenet_v2", num_classes=20).to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    teacher = None
    if args.teacher:
        from snakeid_desktop.training.lite0 import Lite0

        teacher = Lite0(20).to(memory_format=torch.channels_last).eval()
    x = torch.randn(args.batch_size, 3, args.size, args.size).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 20, (args.batch_size,))
    times = []
    for step in range(args.steps + 2):
        t0 = time.perf_counter()
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        if teacher is not None:
            with torch.no_grad():
                t_logits = teacher(x)
            loss = loss + F.kl_div(F.log_softmax(logits, 1), F.log_softmax(t_logits, 1),
                                   reduction="batchmean", log_target=True)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step >= 2:
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.size} px, batch {args.batch_size}, "
          f"teacher {'yes' if teacher is not None else 'no'}: {args.batch_size / med:.1f} img/s "
          f"(median step {med * 1000:.0f} ms over {len(times)} steps)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
