"""Measure a model bundle on labelled folders of photos (``snakeid evaluate``).

Qt-free and torch-light: it drives the app's own :class:`~snakeid_desktop.predictor.Predictor`, so the
numbers describe exactly what a user gets (same image loading, preprocessing, calibration, thresholds).

Definitions (all over the photos given):
- ``top1``/``top3``: the true species is the first / among the first three species candidates (the
  not-snake class is never a candidate), whatever the verdict; ``macro_f1``, per-class precision/recall
  and ``per_class_accuracy`` (= recall) use the top-1 species on snake photos the same way.
- ``confusion``: rows are the true class (species or not_snake), columns the answer: the top-1 species,
  or not_snake when the verdict was "not a snake" (so snakes lost to rejection show in the last column).
- ``ece``: expected calibration error (15 equal-width bins) of the 20-way decision: confidence is the
  larger of the top species probability and the not-snake probability; correct when that class is right.
- ``not_snake_rejection``: share of not-snake photos whose verdict is ``not_snake``.
- ``snake_retention``: share of snake photos whose verdict is not ``not_snake``.
- ``venomous_called_harmless``: share of venomous (incl. mildly) snake photos whose verdict is
  ``species`` with a non-venomous top-1 and no risk flag.
- Safety figures of the venom warning (``risk``), whatever the verdict: ``venomous_unwarned`` (share of
  venomous snake photos without the warning: the figure that must stay at or under 1%),
  ``harmless_flagged_risky`` (share of harmless snake photos with it) and ``not_snake_flagged`` (share
  of photos without a snake with it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from .bundle import NOT_SNAKE
from .errors import SnakeIDError
from .results import Prediction
from .safety import OTHER_SNAKE, counts_as_venomous

ECE_BINS = 15


def _image_files(folder: Path) -> list[Path]:
    from .imageload import is_image_path

    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_path(p))


def collect_labelled_paths(
    snakes_dir: Path | str | None, not_snake_dir: Path | str | None, species: Sequence[str]
) -> list[tuple[Path, str]]:
    """``(path, true class)`` for ``snakes_dir/<slug>/*`` and every image under ``not_snake_dir/**``."""
    items: list[tuple[Path, str]] = []
    if snakes_dir is not None:
        snakes_dir = Path(snakes_dir)
        if not snakes_dir.is_dir():
            raise SnakeIDError(f"The dataset folder {snakes_dir} does not exist.")
        folders = sorted(p for p in snakes_dir.iterdir() if p.is_dir())
        unknown = [p.name for p in folders if p.name not in species]
        if unknown:
            raise SnakeIDError(
                f"{snakes_dir} has folders that are not species of this model: {', '.join(unknown[:5])}"
                f"{' ...' if len(unknown) > 5 else ''} (expected one folder per species slug)."
            )
        for folder in folders:
            items += [(p, folder.name) for p in _image_files(folder)]
    if not_snake_dir is not None:
        not_snake_dir = Path(not_snake_dir)
        if not not_snake_dir.is_dir():
            raise SnakeIDError(f"The not-snake folder {not_snake_dir} does not exist.")
        from .imageload import is_image_path

        items += [(p, NOT_SNAKE) for p in sorted(not_snake_dir.rglob("*")) if p.is_file() and is_image_path(p)]
    if not items:
        raise SnakeIDError("No images were found to evaluate (expected DATASET_DIR/<species_slug>/*.jpg).")
    return items


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool], bins: int = ECE_BINS) -> float:
    if not confidences:
        return 0.0
    totals = [0] * bins
    conf_sum = [0.0] * bins
    hits = [0] * bins
    for c, ok in zip(confidences, correct):
        b = min(bins - 1, int(c * bins))
        totals[b] += 1
        conf_sum[b] += c
        hits[b] += int(ok)
    n = len(confidences)
    return sum(abs(hits[b] - conf_sum[b]) / n for b in range(bins) if totals[b])


def summarize(
    records: Iterable[tuple[str, Prediction]],
    species: Sequence[str],
    venom_status: dict[str, str],
    *,
    errors: int = 0,
    extra: dict | None = None,
    ranges: dict[str, frozenset[str]] | None = None,
) -> dict:
    """Metrics from ``(true class, prediction)`` pairs; the true class is a species slug or ``not_snake``.

    With ``ranges`` (species -> countries), ``wrong_region`` is the share of snake photos whose top-1
    species shares no country with the true species (a species from the wrong part of the world).
    """
    species = list(species)
    labels = species + [NOT_SNAKE]
    index = {c: i for i, c in enumerate(labels)}
    n_labels = len(labels)
    confusion = [[0] * n_labels for _ in range(n_labels)]  # rows: truth; cols: top-1 species or not_snake verdict
    species_confusion = [[0] * len(species) for _ in species]  # snake photos only: truth x top-1 species
    snake_total = top1 = top3 = kept = 0
    neg_total = rejected = 0
    venomous_total = venomous_harmless = venomous_unwarned = 0
    wrong_region = 0
    neg_flagged = 0
    harmless_total = harmless_flagged = 0
    species_verdicts = species_verdicts_right = unsure = 0
    confidences: list[float] = []
    correct: list[bool] = []
    for truth, pred in records:
        best = pred.top[0].species if pred.top else None
        decided = NOT_SNAKE if pred.verdict == "not_snake" else best
        if decided in index and truth in index:
            confusion[index[truth]][index[decided]] += 1
        # 20-way calibration: the more probable of "top species" and "not a snake".
        top_p = pred.top[0].probability if pred.top else 0.0
        if pred.not_snake_probability >= top_p:
            confidences.append(pred.not_snake_probability)
            correct.append(truth == NOT_SNAKE)
        else:
            confidences.append(top_p)
            correct.append(truth == best)
        if truth == NOT_SNAKE:
            neg_total += 1
            rejected += pred.verdict == "not_snake"
            neg_flagged += pred.risk
            continue
        snake_total += 1
        if truth in index and best in index and best != NOT_SNAKE:
            species_confusion[index[truth]][index[best]] += 1
        top1 += best == truth
        # "A snake SnakeID does not know" belongs to no region: naming it is never a wrong-region answer.
        if (ranges and best is not None and best != OTHER_SNAKE
                and not (ranges.get(best, frozenset()) & ranges.get(truth, frozenset()))):
            wrong_region += 1
        top3 += truth in [c.species for c in pred.top[:3]]
        kept += pred.verdict != "not_snake"
        unsure += pred.verdict == "unsure"
        if pred.verdict == "species":
            species_verdicts += 1
            species_verdicts_right += best == truth
        if counts_as_venomous(venom_status.get(truth, "no")):
            venomous_total += 1
            called_harmless = (
                pred.verdict == "species"
                and not counts_as_venomous(venom_status.get(best or "", "no"))
                and not pred.risk
            )
            venomous_harmless += called_harmless
            venomous_unwarned += not pred.risk
        else:
            harmless_total += 1
            harmless_flagged += pred.risk

    def ratio(a: int, b: int) -> float | None:
        return round(a / b, 4) if b else None

    per_class: dict[str, dict] = {}
    f1s = []
    for i, slug in enumerate(species):
        # Plain 19-way classification metrics on snake photos from the top-1 species (whatever the verdict).
        tp = species_confusion[i][i]
        support = sum(species_confusion[i])
        predicted = sum(row[i] for row in species_confusion)
        precision = tp / predicted if predicted else 0.0
        recall_top1 = tp / support if support else None
        f1 = 2 * precision * recall_top1 / (precision + recall_top1) if support and (precision + recall_top1) else 0.0
        if support:
            f1s.append(f1)
        per_class[slug] = {
            "support": support,
            "precision": round(precision, 4),
            "recall": round(recall_top1, 4) if recall_top1 is not None else None,
            "f1": round(f1, 4),
        }
    report = {
        "images": snake_total + neg_total,
        "snake_images": snake_total,
        "not_snake_images": neg_total,
        "unreadable_images": errors,
        "top1": ratio(top1, snake_total),
        "top3": ratio(top3, snake_total),
        "macro_f1": round(sum(f1s) / len(f1s), 4) if f1s else None,
        "ece": round(expected_calibration_error(confidences, correct), 4) if confidences else None,
        "snake_retention": ratio(kept, snake_total),
        "not_snake_rejection": ratio(rejected, neg_total),
        "unsure_rate": ratio(unsure, snake_total),
        "species_verdict_accuracy": ratio(species_verdicts_right, species_verdicts),
        "venomous_called_harmless": ratio(venomous_harmless, venomous_total),
        "harmless_flagged_risky": ratio(harmless_flagged, harmless_total),
        "venomous_unwarned": ratio(venomous_unwarned, venomous_total),
        "not_snake_flagged": ratio(neg_flagged, neg_total),
        "wrong_region": ratio(wrong_region, snake_total) if ranges else None,
        "per_class": per_class,
        "per_class_accuracy": {s: v["recall"] for s, v in per_class.items() if v["recall"] is not None},
        "confusion": {"labels": labels, "matrix": confusion},
    }
    if extra:
        report.update(extra)
    return report


def evaluate_unknown_snakes(predictor, folder, batch_size: int = 32, country: str = "any") -> dict:
    """Snakes of species the model was never taught (every image under ``folder``, any depth): how many
    are called "not a snake", and how many are left without the venom warning (all count as venomous)."""
    from .imageload import is_image_path

    folder = Path(folder)
    if not folder.is_dir():
        raise SnakeIDError(f"The folder {folder} does not exist.")
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and is_image_path(p))
    preds = [r.prediction for r in predictor.classify_paths(paths, batch_size=batch_size, country=country) if r.ok]
    n = len(preds)

    def share(count: int) -> float | None:
        return round(count / n, 4) if n else None

    return {
        "images": n,
        "unreadable_images": len(paths) - n,
        "called_not_snake": share(sum(p.verdict == "not_snake" for p in preds)),
        "unwarned": share(sum(not p.risk for p in preds)),
        "named_a_known_species": share(sum(p.verdict == "species" and p.best is not None
                                           and p.best.species != OTHER_SNAKE for p in preds)),
    }


def evaluate_dataset(predictor, snakes_dir, not_snake_dir=None, batch_size: int = 32, country: str = "any",
                     unknown_snakes_dir=None) -> dict:
    """Run ``predictor`` over labelled folders and return the metrics described in the module docstring.

    ``unknown_snakes_dir``: snakes of other species (e.g. ``../shared/data/other-snakes/val``), reported
    apart as ``unknown_snakes`` so they never enter the 19-species figures."""
    bundle = predictor.bundle
    species = bundle.species_classes
    items = collect_labelled_paths(snakes_dir, not_snake_dir, [s for s in species if s != OTHER_SNAKE])
    truth_of = {str(p): c for p, c in items}
    venom = {s: predictor.catalogue.get(s).venomous for s in species}
    records: list[tuple[str, Prediction]] = []
    errors = 0
    for result in predictor.classify_paths([p for p, _ in items], batch_size=batch_size, top_k=max(3, predictor.top_k),
                                           country=country):
        if result.ok:
            records.append((truth_of[result.path], result.prediction))
        else:
            errors += 1
    thresholds = bundle.thresholds
    extra = {
        "model_version": bundle.version,
        "thresholds": {"species": thresholds.species, "not_snake": thresholds.not_snake, "risk": thresholds.risk},
        "temperature": bundle.temperature,
        "input_size": bundle.preprocessing.input_size,
        "snakes_dir": str(snakes_dir) if snakes_dir is not None else None,
        "not_snake_dir": str(not_snake_dir) if not_snake_dir is not None else None,
        "country": country,
    }
    ranges = {s: predictor.catalogue.get(s).countries for s in species}
    report = summarize(records, species, venom, errors=errors, extra=extra, ranges=ranges)
    if unknown_snakes_dir is not None:
        report["unknown_snakes"] = evaluate_unknown_snakes(predictor, unknown_snakes_dir, batch_size, country)
        report["unknown_snakes_dir"] = str(unknown_snakes_dir)
    return report


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def format_report(report: dict) -> str:
    """Readable plain-text summary (what ``snakeid evaluate`` prints without ``--json``)."""
    lines = [
        f"Images: {report['images']} ({report['snake_images']} snakes, {report['not_snake_images']} not snakes"
        f"{', %d unreadable' % report['unreadable_images'] if report.get('unreadable_images') else ''})",
    ]
    if report["snake_images"]:
        lines += [
            f"Top-1 species accuracy: {_pct(report['top1'])}    top-3: {_pct(report['top3'])}"
            f"    macro-F1: {report['macro_f1']:.3f}",
            f"Snakes kept (not called 'not a snake'): {_pct(report['snake_retention'])}"
            f"    answered 'unsure': {_pct(report['unsure_rate'])}"
            f"    accuracy when naming a species: {_pct(report['species_verdict_accuracy'])}",
            f"Venomous snakes without the venom warning: {_pct(report.get('venomous_unwarned'))}"
            f"    called harmless: {_pct(report['venomous_called_harmless'])}"
            f"    harmless snakes warned about: {_pct(report['harmless_flagged_risky'])}",
        ]
    if report.get("wrong_region") is not None and report["snake_images"]:
        lines.append(f"Top species from the wrong part of the world: {_pct(report['wrong_region'])}"
                     f"    (region: {report.get('country') or 'any'})")
    if report["not_snake_images"]:
        lines.append(f"Non-snakes rejected as 'not a snake': {_pct(report['not_snake_rejection'])}"
                     f"    non-snakes with the venom warning: {_pct(report.get('not_snake_flagged'))}")
    unknown = report.get("unknown_snakes")
    if unknown:
        lines.append(f"Snakes of unknown species ({unknown['images']}): called 'not a snake' {_pct(unknown['called_not_snake'])}"
                     f"    without the venom warning {_pct(unknown['unwarned'])}"
                     f"    named as a known species {_pct(unknown['named_a_known_species'])}")
    if report.get("ece") is not None:
        lines.append(f"Expected calibration error (15 bins): {report['ece']:.3f}")
    if "thresholds" in report:
        th = report["thresholds"]
        lines.append(
            f"Thresholds: species {th['species']:.2f}, not-snake {th['not_snake']:.2f}, risk {th['risk']:.3f};"
            f" temperature {report.get('temperature', 1.0):.3f}"
        )
    if report["snake_images"]:
        lines += ["", f"{'species':34} {'n':>4} {'precision':>9} {'recall':>7} {'F1':>6}"]
        for slug, row in report["per_class"].items():
            if row["support"]:
                lines.append(
                    f"{slug:34} {row['support']:>4} {row['precision']:>9.3f} {row['recall']:>7.3f} {row['f1']:>6.3f}"
                )
    return "\n".join(lines)


def write_confusion_png(report: dict, path: Path | str) -> Path:
    """Draw the confusion matrix (rows = truth, columns = answer) as a PNG with Pillow only."""
    from PIL import Image, ImageDraw, ImageFont

    labels = report["confusion"]["labels"]
    matrix = report["confusion"]["matrix"]
    # Drop empty rows/columns only for classes never seen nor predicted, to keep the picture readable.
    keep = [i for i in range(len(labels)) if sum(matrix[i]) or sum(row[i] for row in matrix)]
    labels = [labels[i] for i in keep]
    matrix = [[matrix[r][c] for c in keep] for r in keep]
    n = max(1, len(labels))
    try:
        font = ImageFont.load_default(size=13)
    except TypeError:  # Pillow < 10.1 has no sized default font
        font = ImageFont.load_default()
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_w = max([probe.textlength(s, font=font) for s in labels] + [40])
    cell = 30
    left = int(label_w) + 16  # row labels
    top = 24 + int(label_w) + 12  # title line + vertical column labels
    width = left + n * cell + 20
    height = top + n * cell + 20
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((8, 6), "rows: true class   columns: answer (top-1 species, or not_snake when rejected)",
              fill="black", font=font)
    for i, name in enumerate(labels):
        draw.text((left - 8 - probe.textlength(name, font=font), top + i * cell + 8), name, fill="black", font=font)
    image.paste(_vertical_labels(labels, font, cell, int(label_w) + 12), (left, 24))
    for r in range(n):
        row_total = sum(matrix[r]) or 1
        for c in range(n):
            value = matrix[r][c]
            share = value / row_total
            if r == c:
                colour = (int(255 - 200 * share), int(255 - 90 * share), int(255 - 200 * share))
            else:
                colour = (255, int(255 - 200 * share), int(255 - 200 * share))
            x0, y0 = left + c * cell, top + r * cell
            draw.rectangle([x0, y0, x0 + cell - 1, y0 + cell - 1], fill=colour, outline=(200, 200, 200))
            if value:
                text = str(value)
                tw = probe.textlength(text, font=font)
                draw.text((x0 + (cell - tw) / 2, y0 + 8), text, fill="black", font=font)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
    return path


def _vertical_labels(labels: list[str], font, cell: int, height: int):
    """Column labels written bottom-to-top, one per column, right-aligned to the matrix."""
    from PIL import Image, ImageDraw

    strip = Image.new("RGB", (height, len(labels) * cell), "white")  # drawn horizontally, then rotated
    draw = ImageDraw.Draw(strip)
    for i, name in enumerate(labels):
        tw = draw.textlength(name, font=font)
        draw.text((height - 4 - tw, i * cell + 8), name, fill="black", font=font)
    return strip.transpose(Image.Transpose.ROTATE_90)
