"""Print the metric tables of weights/MODEL_CARD.md from a bundle's model.json (keeps the card honest).

    python -m snakeid_desktop.training.card_tables weights/
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..catalogue import default_catalogue


def pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def tables(meta: dict) -> str:
    m = meta["metrics"]
    cat = default_catalogue()
    out = ["| metric | val (fitted on val) | val, cross-fitted halves | `snakeid evaluate` on val |", "|---|---:|---:|---:|"]
    app = m.get("app_evaluate", {})
    for key, label in (
        ("top1", "species top-1"), ("top3", "species top-3"), ("macro_f1", "macro-F1"), ("ece", "ECE (15 bins)"),
        ("not_snake_rejection", "non-snakes rejected"), ("snake_retention", "snakes kept"),
        ("unsure_rate", "snakes answered 'unsure'"), ("species_verdict_accuracy", "accuracy of 'species' answers"),
        ("venomous_called_harmless", "venomous called harmless"), ("harmless_flagged_risky", "harmless flagged risky"),
    ):
        fmt = (lambda v: "n/a" if v is None else f"{v:.3f}") if key in ("macro_f1", "ece") else pct
        out.append(f"| {label} | {fmt(m.get(key))} | {fmt(m['cross_fitted'].get(key))} | {fmt(app.get(key))} |")
    out += ["", "| species | venomous | val n | precision | recall (= per-class accuracy) | F1 |", "|---|---|---:|---:|---:|---:|"]
    for slug, row in m["per_class"].items():
        info = cat.get(slug)
        out.append(f"| {info.scientific_name} (`{slug}`) | {info.venomous} | {row['support']} | "
                   f"{row['precision']:.2f} | {row['recall']:.2f} | {row['f1']:.2f} |")
    out += ["", "| not-snake category (val) | n | rejected |", "|---|---:|---:|"]
    for name, row in m.get("not_snake_rejection_by_category", {}).items():
        out.append(f"| {name} | {row['n']} | {pct(row['rejected'])} |")
    out += ["", "| weights | input px | temperature | val top-1 (20-way) | val NLL (calibrated) |", "|---|---:|---:|---:|---:|"]
    for row in m.get("candidates", []):
        out.append(f"| {row['weights']} | {row['input_size']} | {row['temperature']:.3f} | "
                   f"{pct(row['val_top1_20class'])} | {row['val_nll_calibrated']:.3f} |")
    return "\n".join(out)


def main(argv=None) -> int:
    folder = Path((argv or sys.argv[1:] or ["weights"])[0])
    print(tables(json.loads((folder / "model.json").read_text(encoding="utf-8"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
