"""Teach a group of ``../shared/data/other-snakes`` as a new species and measure what it costs and changes.

    .venv/bin/python benchmarks/bench_teach.py [--group bungarus-spp] [--data ../shared/data] [--photos N]

Prints: the time to teach (scan, decode, 8 views a photo, features, cross-validation, fit, save),
the cross-validated accuracy on the group's own train photos, and on val before and after
teaching: the 19 species' top-1, non-snakes rejected, snakes kept, venomous unwarned, the taught
group's val photos answered as the taught species, and the other group's val photos (still
unknown snakes) called "not a snake" or left without the warning.

Not fair to the measurement, and said in the note: the bundled network was trained on these
photos as ``other_snake``, so its features already separate them better than they would a truly
new species (the replay's ``other_snake`` examples are left out of every fit, as in the app). Everything runs in a throw-away SnakeID home; the user's own species are untouched.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group", default="bungarus-spp")
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--weights", default=None)
    parser.add_argument("--photos", type=int, default=0, help="teach from only the first N photos (0: all)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--megapixels", type=float, default=0,
                        help="teach from copies upscaled to this size, as phone JPEGs (decoding then dominates)")
    parser.add_argument("--replay-weight", type=float, default=None, help="override taught_head.REPLAY_WEIGHT")
    parser.add_argument("--l2", type=float, default=None, help="override taught_head.L2_PENALTY")
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="snakeid-bench-teach-")
    os.environ["SNAKEID_HOME"] = home

    import torch

    from snakeid_desktop import taught_head

    if args.replay_weight is not None:
        taught_head.REPLAY_WEIGHT = args.replay_weight
    if args.l2 is not None:
        taught_head.L2_PENALTY = args.l2
    from snakeid_desktop.evaluation import evaluate_dataset
    from snakeid_desktop.imageload import is_image_path
    from snakeid_desktop.my_species import SpeciesStore
    from snakeid_desktop.predictor import Predictor
    from snakeid_desktop.taught_head import bundle_replay
    from snakeid_desktop.teach import TeachRequest, teach

    data = Path(args.data)
    group_train = data / "other-snakes" / "train" / args.group
    predictor = Predictor.load(args.weights, num_threads=args.threads)
    replay = bundle_replay(predictor.bundle)  # as the app fits: other_snake's examples left out

    folder = group_train
    if args.photos or args.megapixels:
        from PIL import Image

        folder = Path(tempfile.mkdtemp(prefix="snakeid-bench-photos-"))
        chosen = sorted(p for p in group_train.iterdir() if is_image_path(p))
        for photo in chosen[: args.photos or None]:
            if not args.megapixels:
                (folder / photo.name).symlink_to(photo)
                continue
            with Image.open(photo) as image:
                scale = (args.megapixels * 1e6 / (image.width * image.height)) ** 0.5
                big = image.convert("RGB").resize((round(image.width * scale), round(image.height * scale)))
                big.save(folder / (photo.stem + ".jpg"), quality=92)

    def measure(label: str) -> dict:
        started = time.monotonic()
        report = evaluate_dataset(predictor, data / "snakes" / "val", data / "not-snake" / "val")
        val = sorted(p for p in (data / "snakes" / "val").rglob("*") if p.is_file() and is_image_path(p))
        report["answers"] = {r.path: (r.prediction.best.species if r.ok and r.prediction.best else None)
                             for r in predictor.classify_paths(val, country="any")}
        others = [p for p in (data / "other-snakes" / "val").iterdir() if p.is_dir()]
        per_group = {}
        for group in others:
            paths = sorted(p for p in group.iterdir() if is_image_path(p))
            preds = [r.prediction for r in predictor.classify_paths(paths) if r.ok]
            per_group[group.name] = {
                "photos": len(preds),
                "named_taught": sum(p.verdict != "not_snake" and p.best is not None and p.best.taught for p in preds),
                "called_not_snake": sum(p.verdict == "not_snake" for p in preds),
                "unwarned": sum(not p.risk for p in preds),
            }
        print(f"{label}: val 19-species top-1 {100 * report['top1']:.1f}%, macro-F1 {report['macro_f1']:.3f}, "
              f"non-snakes rejected {100 * report['not_snake_rejection']:.1f}%, snakes kept "
              f"{100 * report['snake_retention']:.1f}%, venomous unwarned {100 * report['venomous_unwarned']:.1f}%, "
              f"harmless warned {100 * report['harmless_flagged_risky']:.1f}%, "
              f"non-snakes warned {100 * report['not_snake_flagged']:.1f}% ({time.monotonic() - started:.0f} s)")
        for name, g in per_group.items():
            print(f"    other-snakes/val/{name}: {g['photos']} photos, top answer the taught species "
                  f"{g['named_taught']}, called 'not a snake' {g['called_not_snake']}, unwarned {g['unwarned']}")
        return report

    before = measure("before")
    store = SpeciesStore()
    started = time.monotonic()
    reports = teach(predictor, [TeachRequest((folder,), f"{args.group} (bench)", "Taught group", "yes")], store,
                    replay=replay)
    seconds = time.monotonic() - started
    cv = reports[0].cross_validation
    print(f"taught {reports[0].species.photos} photos ({len(reports[0].skipped)} skipped) in {seconds:.1f} s; "
          f"cross-validated accuracy {cv.correct}/{cv.photos} = {100 * cv.accuracy:.1f}%; "
          f"confused with {cv.confused_with or 'nothing'}; warnings: {reports[0].warnings or 'none'}")
    # The app fits against the full replay; here the group's own replay photos stay out (see the docstring).
    from snakeid_desktop.taught_head import fit_rows

    usable = store.active(predictor)
    rows = fit_rows([sp.features.float() for sp in usable], replay, *predictor.bundled_head,
                    predictor.bundle.temperature, [sp.slug for sp in usable],
                    replay_weight=taught_head.REPLAY_WEIGHT, l2=taught_head.L2_PENALTY)
    predictor.set_taught(usable, rows, "bench")
    after = measure("after")
    changed = [(path, before["answers"][path], answer) for path, answer in after["answers"].items()
               if answer != before["answers"][path]]
    print(f"val snakes whose top species changed: {len(changed)}")
    for path, old, new in changed:
        print(f"    {Path(path).parent.name}/{Path(path).name}: {old} -> {new}")
    print(f"change in val 19-species top-1: {100 * (after['top1'] - before['top1']):+.1f} points "
          f"(target: no more than 1 point lower)")
    return 0


if __name__ == "__main__":
    import glob
    import shutil

    try:
        raise SystemExit(main())
    finally:  # the throw-away SnakeID home and photo copies
        for leftover in glob.glob(os.path.join(tempfile.gettempdir(), "snakeid-bench-*")):
            shutil.rmtree(leftover, ignore_errors=True)
