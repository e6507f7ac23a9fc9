"""Would test-time augmentation (TTA) earn its cost? Val figures for several view sets, each refitted.

    .venv/bin/python benchmarks/eval_tta.py [--weights DIR] [--data ../shared/data] [--threads 2]

Every val photo (19 species, non-snakes, unknown snakes) is decoded once through the app's loader; the
network runs on these views of it: the app's centre crop, its mirror, its three quarter turns, the whole
photo squeezed to the input size (nothing cut off), and the photo at twice the input size (small snakes
bigger). For each view set the logits are averaged, and then — because averaging changes how sharp the
outputs are — the temperature and every threshold are refitted on val exactly as ``finalize`` fits a new
bundle. Printed per set: forward passes per photo (what it costs: a pass is ~12 ms on one thread,
``bench_model.py``), species top-1 on the 19 species, macro-F1, ECE, non-snakes rejected / snakes kept,
and the venom warning at <= 1% venomous unwarned (harmless and non-snakes warned), fitted on val and
cross-fitted on halves (the honest figure). Training side; fitted on val, so optimistic.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# name -> (views averaged, forward passes per photo; "double" runs at 4x the pixels)
VIEW_SETS = {
    "centre crop (the app today)": (("centre",), "1"),
    "+ mirror": (("centre", "mirror"), "2"),
    "four quarter turns": (("centre", "turn90", "turn180", "turn270"), "4"),
    "+ mirror + 180 degrees": (("centre", "mirror", "turn180"), "3"),
    "whole photo only": (("whole",), "1"),
    "+ mirror + whole photo": (("centre", "mirror", "whole"), "3"),
    "+ double size": (("centre", "double"), "1 + 1 at 4x pixels"),
    "+ mirror + whole + double": (("centre", "mirror", "whole", "double"), "3 + 1 at 4x pixels"),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default=str(Path(__file__).resolve().parent.parent / "weights"))
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch

    from snakeid_desktop.bundle import NOT_SNAKE
    from snakeid_desktop.evaluation import collect_labelled_paths
    from snakeid_desktop.imageload import load_image
    from snakeid_desktop.predictor import Predictor
    from snakeid_desktop.preprocess import Preprocessing, eval_transform
    from snakeid_desktop.safety import OTHER_SNAKE
    from snakeid_desktop.training.refit_risk import refitted_figures

    predictor = Predictor.load(args.weights, num_threads=args.threads)
    classes = predictor.bundle.classes
    catalogue = predictor.catalogue
    data = Path(args.data)
    items = collect_labelled_paths(data / "snakes" / "val", data / "not-snake" / "val",
                                   predictor.bundle.species_classes)
    if OTHER_SNAKE in classes and (data / "other-snakes" / "val").is_dir():
        items += [(p, OTHER_SNAKE) for p in sorted((data / "other-snakes" / "val").rglob("*")) if p.is_file()]
    labels = torch.tensor([classes.index(c) for _, c in items])

    prep = predictor.preprocessing
    size = prep.input_size
    double = Preprocessing(2 * size, 2 * prep.resize_size)
    square = Preprocessing(size, size)
    views: dict[str, list] = {k: [] for k in ("centre", "whole", "double")}
    for path, _ in items:
        image = load_image(path, min_side=double.resize_size).image
        views["centre"].append(eval_transform(image, prep))
        views["whole"].append(eval_transform(image.resize((size, size)), square))
        views["double"].append(eval_transform(image, double))
    x = {k: torch.stack(v) for k, v in views.items()}
    x["mirror"] = torch.flip(x["centre"], (3,))
    for quarter in (1, 2, 3):
        x[f"turn{90 * quarter}"] = torch.rot90(x["centre"], quarter, (2, 3))

    logits = {}
    with torch.inference_mode():
        for name, tensors in x.items():
            logits[name] = torch.cat([predictor.model(tensors[i:i + 32].contiguous(memory_format=torch.channels_last)).float()
                                      for i in range(0, len(tensors), 32)])

    not_snake = classes.index(NOT_SNAKE)
    species_photos = (labels != not_snake) & ~torch.tensor([classes[int(y)] == OTHER_SNAKE for y in labels])
    print(f"{len(items)} val photos ({int(species_photos.sum())} of the 19 species), model {predictor.bundle.version}; "
          "temperature and thresholds refitted per view set")
    print(f"{'views averaged':30} {'passes':>18} {'top-1':>6} {'F1':>6} {'ECE':>6} {'rejected/kept':>13}  "
          f"{'warning at <=1% unwarned (harmless / non-snakes warned)':>40}  cross-fitted (unwarned / harmless / non-snakes)")
    for name, (members, passes) in VIEW_SETS.items():
        f = refitted_figures(torch.stack([logits[m] for m in members]).mean(0), labels, classes, catalogue)
        xfit = f["cross_fitted"]
        print(f"{name:30} {passes:>18} {100 * f['species_top1']:5.1f}% {f['macro_f1']:6.3f} {f['ece']:6.3f} "
              f"{100 * f['rejected']:5.1f}/{100 * f['kept']:4.1f}%  "
              f"{f['risk']:>5}: {100 * f['venomous_unwarned']:3.1f}% unwarned, {100 * f['harmless_warned']:4.1f}% / "
              f"{100 * f['non_snakes_warned']:4.1f}% warned  {100 * xfit['venomous_unwarned']:4.1f}% / "
              f"{100 * xfit['harmless_flagged']:4.1f}% / {100 * xfit['not_snake_flagged']:4.1f}%", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
