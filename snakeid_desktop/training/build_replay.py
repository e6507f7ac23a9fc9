"""Write ``replay.pt`` into a bundle: the bundled network's features of its own training photos.

``python -m snakeid_desktop.training.build_replay --weights weights --data ../shared/data``

Teaching a species on a user's computer fits new classifier rows against these features, so a
taught species takes probability only from photos that look like it (see ``taught_head.py``).
Features only, never photos: one plain (evaluation) view per training photo of every class,
pooled 1280-d MobileNetV2 features quantised to uint8 (~1.3 KB a photo). The bundle's metadata
gains ``replay_file`` and ``replay_sha256`` (re-signed); weights and thresholds stay as they are.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from ..bundle import NOT_SNAKE, update_metadata
from ..checksums import sha256_file
from ..imageload import is_image_path, load_image
from ..predictor import Predictor
from ..preprocess import eval_transform
from ..safety import OTHER_SNAKE
from ..taught_head import save_replay

REPLAY_FILE = "replay.pt"


def training_photos(data: Path, classes: list[str], exclude_groups: tuple[str, ...] = ()) -> list[tuple[Path, int]]:
    """(photo, class index) for snakes/train/<slug>, not-snake/train/** and other-snakes/train/<group>."""
    index = {c: i for i, c in enumerate(classes)}

    def images(folder: Path) -> list[Path]:
        return sorted(p for p in folder.rglob("*") if p.is_file() and is_image_path(p))

    items = []
    for folder in sorted(p for p in (data / "snakes" / "train").iterdir() if p.is_dir()):
        if folder.name in index and folder.name not in exclude_groups:
            items += [(p, index[folder.name]) for p in images(folder)]
    items += [(p, index[NOT_SNAKE]) for p in images(data / "not-snake" / "train")]
    other = data / "other-snakes" / "train"
    if OTHER_SNAKE in index and other.is_dir():
        for folder in sorted(p for p in other.iterdir() if p.is_dir()):
            if folder.name not in exclude_groups:
                items += [(p, index[OTHER_SNAKE]) for p in images(folder)]
    return items


def replay_features(predictor: Predictor, items: list[tuple[Path, int]], batch_size: int = 32,
                    verbose: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    prep = predictor.preprocessing
    rows, labels = [], []
    started = time.monotonic()
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        batch = torch.stack([eval_transform(load_image(p, min_side=prep.resize_size).image, prep) for p, _ in chunk])
        rows.append(predictor.features(batch))
        labels += [label for _, label in chunk]
        if verbose:
            print(f"\r{start + len(chunk)}/{len(items)} photos, {time.monotonic() - started:.0f} s", end="", flush=True)
    if verbose:
        print()
    return torch.cat(rows), torch.tensor(labels, dtype=torch.long)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="weights", help="bundle folder to add replay.pt to")
    parser.add_argument("--data", default="../shared/data", help="folder with snakes/, not-snake/, other-snakes/")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    predictor = Predictor.load(args.weights, num_threads=args.threads)
    items = training_photos(Path(args.data), predictor.bundle.classes)
    features, labels = replay_features(predictor, items)
    path = Path(args.weights) / REPLAY_FILE
    save_replay(path, features, labels, predictor.bundle.classes)
    digest = sha256_file(path)

    def record(meta: dict) -> None:
        meta["replay_file"] = REPLAY_FILE
        meta["replay_sha256"] = digest

    update_metadata(args.weights, record)
    per_class = torch.bincount(labels, minlength=len(predictor.bundle.classes)).tolist()
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB): {len(labels)} photos; per class "
          + ", ".join(f"{c} {n}" for c, n in zip(predictor.bundle.classes, per_class)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
