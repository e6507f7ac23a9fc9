"""Would a teacher ensemble be worth distilling? Species top-1 on val of bundles, a teacher, and their mean.

    .venv/bin/python benchmarks/eval_ensemble.py --teacher ~/snakeid-runs/lite2/teacher.pt \
        [--teacher-size 224] [--teacher-temperature T] [--bundle weights] [--bundle OTHER_BUNDLE ...]

For each bundle: its own species top-1 on the 264 val snakes of the 19 species (the app's eval crop at
its input size, calibrated probabilities, not_snake left out of the ranking, as ``snakeid evaluate``
ranks), the teacher's, and that of the mean of the two calibrated probability vectors. Training side
only (the teacher needs torchvision).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", required=True, help="a teacher.pt from an efficientnet_lite* run")
    parser.add_argument("--teacher-size", type=int, default=224)
    parser.add_argument("--teacher-temperature", type=float, default=None,
                        help="default: the one in teacher_report.json beside the teacher")
    parser.add_argument("--bundle", action="append", default=None, help="bundle folder(s) (default: weights)")
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    args = parser.parse_args()

    import json

    import torch
    from torch.nn import functional as F

    from snakeid_desktop.bundle import NOT_SNAKE
    from snakeid_desktop.predictor import Predictor
    from snakeid_desktop.preprocess import Preprocessing
    from snakeid_desktop.safety import OTHER_SNAKE
    from snakeid_desktop.training import data as tdata
    from snakeid_desktop.training.common import TrainConfig, load_data
    from snakeid_desktop.training.train import load_teacher

    classes, _, _, val_s, val_images = load_data(TrainConfig(data=args.data))
    labels = torch.tensor([s.label for s in val_s])
    temperature = args.teacher_temperature
    if temperature is None:
        report = json.loads((Path(args.teacher).parent / "teacher_report.json").read_text())
        temperature = report["chosen"]["temperature"]
    teacher = load_teacher(args.teacher, classes, torch.device("cpu"))
    with torch.no_grad():
        x = tdata.eval_tensors(val_images, Preprocessing(args.teacher_size, round(args.teacher_size / 0.875)))
        logits = torch.cat([teacher(x[i:i + 64].contiguous(memory_format=torch.channels_last))
                            for i in range(0, len(x), 64)])
    teacher_probs = F.softmax(logits / temperature, 1)
    not_snake, other = classes.index(NOT_SNAKE), classes.index(OTHER_SNAKE)
    species_photos = (labels != not_snake) & (labels != other)

    def top1(probs: torch.Tensor) -> float:
        ranked = probs.clone()
        ranked[:, not_snake] = -1.0
        return float((ranked.argmax(1)[species_photos] == labels[species_photos]).float().mean())

    for folder in args.bundle or ["weights"]:
        predictor = Predictor.load(folder, num_threads=2)
        if predictor.bundle.classes != classes:
            raise SystemExit(f"{folder} has other classes than the training data")
        x = tdata.eval_tensors(val_images, predictor.preprocessing)
        probs = torch.cat([predictor.probabilities(x[i:i + 64]) for i in range(0, len(x), 64)])
        print(f"{folder} ({predictor.bundle.version}): bundle {100 * top1(probs):.1f}%, teacher "
              f"{100 * top1(teacher_probs):.1f}%, mean of the two {100 * top1((probs + teacher_probs) / 2):.1f}% "
              f"species top-1 on {int(species_photos.sum())} val snakes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
