"""Refit a bundle's venom-warning threshold on val through the app's own path, and report the trade-off.

``python -m snakeid_desktop.training.refit_risk --weights weights --data ../shared/data [--write]``

The warning is on when the calibrated probability mass of all venomous species reaches ``risk``
(``predictor.decide``). This measures that mass on every val photo exactly as the app computes it
(image loader, preprocessing, temperature), picks the highest threshold leaving <= 0.5% of venomous val
snakes unwarned (``finalize.choose_risk_threshold``: half the 1% promise, so that it holds on other
photos too), and prints:
- the trade-off curve (venomous unwarned / harmless flagged / non-snakes flagged per threshold);
- a cross-fitted estimate: the threshold fitted on one half of val, measured on the other, both ways;
- bootstrap percentiles: how far the fitted threshold and its false alarms move with which photos are in val;
- the snakes of unknown species (``other-snakes/val``, all venomous): unwarned and called "not a snake".
With ``--write`` the threshold and these figures go into the bundle's metadata (re-signed); the network
weights, temperature and other thresholds stay as they are.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from ..bundle import NOT_SNAKE
from ..catalogue import default_catalogue
from ..evaluation import collect_labelled_paths, evaluate_dataset, format_report
from ..predictor import Predictor
from ..safety import counts_as_venomous
from .finalize import (FIT_VENOMOUS_UNWARNED, MAX_VENOMOUS_UNWARNED, choose_risk_threshold, headline,
                       risk_tradeoff, venom_mass)


def val_probabilities(predictor: Predictor, paths: list[Path]) -> torch.Tensor:
    """Calibrated class probabilities per photo, through the app's loader and preprocessing."""
    from ..imageload import load_image
    from ..preprocess import eval_transform

    prep = predictor.preprocessing
    rows = []
    for start in range(0, len(paths), 32):
        chunk = [eval_transform(load_image(p, min_side=prep.resize_size).image, prep) for p in paths[start:start + 32]]
        rows.append(predictor.probabilities(torch.stack(chunk)))
    return torch.cat(rows)


def cross_fitted_unwarned(probs: torch.Tensor, labels: torch.Tensor, classes: list[str], venom: dict) -> dict:
    """Fit on even-indexed photos, measure on odd ones and the other way round; pooled counts."""
    order = torch.arange(len(labels))
    halves = [order[order % 2 == 0], order[order % 2 == 1]]
    is_venomous = torch.tensor([c != NOT_SNAKE and counts_as_venomous(venom.get(c, "unknown")) for c in classes])
    ns = classes.index(NOT_SNAKE)
    unwarned = venomous = harmless = harmless_flagged = negatives = neg_flagged = 0
    fitted = []
    for fit, test in (halves, halves[::-1]):
        t = choose_risk_threshold(probs[fit], labels[fit], classes, venom)
        fitted.append(t)
        mass, y = venom_mass(probs[test], classes, venom), labels[test]
        snake = y != ns
        v = snake & is_venomous[y]
        h = snake & ~is_venomous[y]
        unwarned += int((v & (mass < t)).sum())
        venomous += int(v.sum())
        harmless_flagged += int((h & (mass >= t)).sum())
        harmless += int(h.sum())
        neg_flagged += int((~snake & (mass >= t)).sum())
        negatives += int((~snake).sum())
    return {"thresholds": fitted, "venomous_unwarned": round(unwarned / max(1, venomous), 4),
            "harmless_flagged": round(harmless_flagged / max(1, harmless), 4),
            "not_snake_flagged": round(neg_flagged / max(1, negatives), 4)}


def bootstrap_warning(probs: torch.Tensor, labels: torch.Tensor, classes: list[str], venom: dict,
                      resamples: int = 1000, seed: int = 0, target: float = FIT_VENOMOUS_UNWARNED) -> dict:
    """How much the warning's figures owe to which photos happen to be in val: val is resampled with
    replacement, the threshold refitted on each resample as ``finalize`` fits it, and measured on that
    resample (what a bundle would report) and on the photos the resample left out (what it would do on
    others). Returns 5th / 50th / 95th percentiles of each figure."""
    ns = classes.index(NOT_SNAKE)
    is_venomous = torch.tensor([c != NOT_SNAKE and counts_as_venomous(venom.get(c, "unknown")) for c in classes])
    mass = venom_mass(probs, classes, venom)
    snake = labels != ns
    venomous, harmless = snake & is_venomous[labels], snake & ~is_venomous[labels]
    gen = torch.Generator().manual_seed(seed)
    rows = {k: [] for k in ("threshold", "harmless_warned", "non_snakes_warned", "venomous_unwarned_left_out")}
    for _ in range(resamples):
        pick = torch.randint(0, len(labels), (len(labels),), generator=gen)
        t = choose_risk_threshold(probs[pick], labels[pick], classes, venom, target)
        warned = mass >= t
        counts = torch.bincount(pick, minlength=len(labels)).float()
        left_out = counts == 0
        rows["threshold"].append(t)
        rows["harmless_warned"].append(float((counts * (harmless & warned)).sum() / (counts * harmless).sum()))
        rows["non_snakes_warned"].append(float((counts * (~snake & warned)).sum() / (counts * ~snake).sum()))
        rows["venomous_unwarned_left_out"].append(float((left_out & venomous & ~warned).sum()
                                                         / (left_out & venomous).sum().clamp_min(1)))
    return {k: [round(float(v), 4) for v in torch.tensor(vals).quantile(torch.tensor([0.05, 0.5, 0.95]))]
            for k, vals in rows.items()} | {"resamples": resamples}


def refitted_figures(logits: torch.Tensor, labels: torch.Tensor, classes: list[str], catalogue) -> dict:
    """Val figures of raw logits (a variant, an average of views or of networks) with the temperature and
    every threshold refitted on them as ``finalize`` fits a new bundle: species top-1 on the photos of
    the known species, macro-F1, ECE, non-snakes rejected / snakes kept, and the venom warning at the
    fitted threshold, plain and cross-fitted on halves."""
    from torch.nn import functional as F

    from ..safety import OTHER_SNAKE
    from .finalize import choose_thresholds, fit_temperature, metrics_for

    venom = {c: catalogue.get(c).venomous for c in classes if c != NOT_SNAKE}
    probs = F.softmax(logits / fit_temperature(logits, labels), 1)
    thresholds = choose_thresholds(probs, labels, classes, venom)
    m = metrics_for(probs, labels, classes, thresholds, catalogue)
    not_snake = classes.index(NOT_SNAKE)
    species_photos = torch.tensor([classes[int(y)] not in (NOT_SNAKE, OTHER_SNAKE) for y in labels])
    ranked = probs.clone()
    ranked[:, not_snake] = -1.0
    at = next(r for r in risk_tradeoff(probs, labels, classes, venom) if r["threshold"] == thresholds.risk)
    return {"species_top1": float((ranked.argmax(1)[species_photos] == labels[species_photos]).float().mean()),
            "macro_f1": m["macro_f1"], "ece": m["ece"], "rejected": m["not_snake_rejection"],
            "kept": m["snake_retention"], "risk": thresholds.risk, "venomous_unwarned": at["venomous_unwarned"],
            "harmless_warned": at["harmless_flagged"], "non_snakes_warned": at["not_snake_flagged"],
            "cross_fitted": cross_fitted_unwarned(probs, labels, classes, venom)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default="weights")
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[3] / "shared" / "data"))
    ap.add_argument("--write", action="store_true", help="store the refitted threshold and figures in the bundle")
    ap.add_argument("--threads", type=int, default=2)
    ns = ap.parse_args(argv)
    data = Path(ns.data)
    predictor = Predictor.load(ns.weights, num_threads=ns.threads)
    bundle = predictor.bundle
    classes = bundle.classes
    catalogue = default_catalogue()
    venom = {c: catalogue.get(c).venomous for c in classes if c != NOT_SNAKE}
    items = collect_labelled_paths(data / "snakes" / "val", data / "not-snake" / "val", bundle.species_classes)
    probs = val_probabilities(predictor, [p for p, _ in items])
    labels = torch.tensor([classes.index(c) for _, c in items])
    curve = risk_tradeoff(probs, labels, classes, venom)
    threshold = choose_risk_threshold(probs, labels, classes, venom)
    chosen = next(r for r in curve if r["threshold"] == threshold)
    crossfit = cross_fitted_unwarned(probs, labels, classes, venom)
    # The shipped rule (fitted to 0.5%) and the old one (fitted to the 1% promise itself), side by side.
    bootstrap = {f"fitted_to_{target}": bootstrap_warning(probs, labels, classes, venom, target=target)
                 for target in (FIT_VENOMOUS_UNWARNED, MAX_VENOMOUS_UNWARNED)}

    other_dir = data / "other-snakes" / "val"
    other = {}
    if other_dir.is_dir():
        other_paths = sorted(p for p in other_dir.rglob("*") if p.is_file())
        op = val_probabilities(predictor, other_paths)
        mass = venom_mass(op, classes, venom)
        other = {"images": len(other_paths),
                 "unwarned": round(float((mass < threshold).float().mean()), 4),
                 "called_not_snake": round(float((op[:, classes.index(NOT_SNAKE)] >= bundle.thresholds.not_snake)
                                                 .float().mean()), 4)}
    report = {"old_risk_threshold": bundle.thresholds.risk, "risk_threshold": threshold,
              "target_venomous_unwarned": MAX_VENOMOUS_UNWARNED, "fitted_to": FIT_VENOMOUS_UNWARNED, "at_threshold": chosen,
              "cross_fitted": crossfit, "bootstrap_5_50_95_percent": bootstrap, "other_snakes_val": other,
              "curve": [r for r in curve if round(r["threshold"] * 200) % 2 == 0]}  # every 0.01
    print(json.dumps(report, indent=1))
    if ns.write:
        from ..bundle import update_metadata

        def change(meta: dict) -> None:
            meta["thresholds"]["risk"] = threshold
            meta.setdefault("metrics", {})["venom_warning"] = {
                "rule": "calibrated probability mass of venomous species >= risk, on every verdict",
                "fitted_on": "val (snakes + not-snake), app path", **{k: v for k, v in report.items() if k != "old_risk_threshold"}}

        update_metadata(Path(ns.weights), change)
        refitted = Predictor.load(ns.weights, num_threads=ns.threads)
        app = evaluate_dataset(refitted, data / "snakes" / "val", data / "not-snake" / "val")
        print(format_report(app), file=sys.stderr)
        update_metadata(Path(ns.weights), lambda meta: meta["metrics"].__setitem__("app_evaluate", headline(app)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
