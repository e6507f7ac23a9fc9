"""evaluate_dataset / format_report / write_confusion_png on tiny generated photo folders."""

from __future__ import annotations

import random

import pytest
from PIL import Image

from snakeid_desktop.bundle import NOT_SNAKE
from snakeid_desktop.errors import SnakeIDError
from snakeid_desktop.evaluation import (
    evaluate_dataset,
    expected_calibration_error,
    format_report,
    summarize,
    write_confusion_png,
)
from snakeid_desktop.results import Candidate, Prediction


def _photo(path, seed):
    rng = random.Random(seed)
    colour = tuple(rng.randrange(256) for _ in range(3))
    image = Image.new("RGB", (120 + seed % 7, 100), colour)
    image.paste(tuple(255 - c for c in colour), (10, 10, 60, 50))
    image.save(path)


@pytest.fixture
def tiny_dataset(tmp_path, predictor):
    snakes = tmp_path / "snakes"
    negatives = tmp_path / "not-snake"
    species = predictor.bundle.species_classes[:3]
    for i, slug in enumerate(species):
        (snakes / slug).mkdir(parents=True)
        for j in range(2):
            _photo(snakes / slug / f"{j}.jpg", seed=10 * i + j)
    (negatives / "object").mkdir(parents=True)
    for j in range(3):
        _photo(negatives / "object" / f"{j}.png", seed=100 + j)
    (snakes / species[0] / "notes.txt").write_text("not an image")
    return snakes, negatives, species


def test_evaluate_dataset_reports_all_metrics_in_range(tiny_dataset, predictor, tmp_path):
    snakes, negatives, species = tiny_dataset
    report = evaluate_dataset(predictor, snakes, negatives, batch_size=4)

    assert report["snake_images"] == 6 and report["not_snake_images"] == 3 and report["images"] == 9
    for key in ("top1", "top3", "macro_f1", "ece", "snake_retention", "not_snake_rejection",
                "venomous_called_harmless"):
        assert report[key] is not None and 0.0 <= report[key] <= 1.0, key
    assert report["top3"] >= report["top1"]
    assert set(report["per_class_accuracy"]) == set(species)
    labels = report["confusion"]["labels"]
    assert labels[-1] == NOT_SNAKE and len(report["confusion"]["matrix"]) == len(labels)
    # Every readable photo lands in exactly one confusion cell.
    assert sum(map(sum, report["confusion"]["matrix"])) == 9
    assert report["thresholds"]["species"] == predictor.bundle.thresholds.species

    text = format_report(report)
    assert "Top-1" in text and "Non-snakes rejected" in text and species[0] in text

    png = write_confusion_png(report, tmp_path / "out" / "confusion.png")
    with Image.open(png) as im:
        assert im.format == "PNG" and im.width > 200 and im.height > 200


def test_evaluate_dataset_without_not_snake_folder(tiny_dataset, predictor):
    snakes, _, _ = tiny_dataset
    report = evaluate_dataset(predictor, snakes)
    assert report["not_snake_images"] == 0 and report["not_snake_rejection"] is None
    assert "Non-snakes rejected" not in format_report(report)


def test_unknown_species_folder_is_a_clear_error(tmp_path, predictor):
    (tmp_path / "pangolin").mkdir()
    _photo(tmp_path / "pangolin" / "a.jpg", 1)
    with pytest.raises(SnakeIDError, match="pangolin"):
        evaluate_dataset(predictor, tmp_path)


def test_empty_dataset_is_a_clear_error(tmp_path, predictor):
    with pytest.raises(SnakeIDError, match="No images"):
        evaluate_dataset(predictor, tmp_path)


def _pred(verdict, best, p, venomous, risk=False, ns=0.0):
    return Prediction(verdict, risk, (Candidate(best, best, best, p, venomous),), ns)


def test_summarize_counts_venomous_called_harmless_and_rejection():
    species = ["adder", "grass"]
    venom = {"adder": "yes", "grass": "no"}
    records = [
        ("adder", _pred("species", "grass", 0.9, "no")),  # venomous called harmless
        ("adder", _pred("species", "grass", 0.9, "no", risk=True)),  # flagged: not counted
        ("adder", _pred("unsure", "grass", 0.4, "no")),  # unsure: not counted
        ("adder", _pred("species", "adder", 0.9, "yes", risk=True)),
        ("grass", _pred("species", "grass", 0.8, "no")),
        ("grass", _pred("not_snake", "grass", 0.2, "no", ns=0.7)),  # a snake lost
        (NOT_SNAKE, _pred("not_snake", "grass", 0.1, "no", ns=0.9)),
        (NOT_SNAKE, _pred("species", "adder", 0.6, "yes", risk=True, ns=0.3)),
    ]
    m = summarize(records, species, venom)
    assert m["venomous_called_harmless"] == 0.25
    assert m["not_snake_rejection"] == 0.5
    assert m["snake_retention"] == round(5 / 6, 4)
    assert m["top1"] == 0.5  # adder right once of 4, grass right twice of 2 -> 3/6
    assert m["per_class_accuracy"] == {"adder": 0.25, "grass": 1.0}
    assert m["confusion"]["matrix"][1] == [0, 1, 1]  # grass: once right, once rejected
    assert m["harmless_flagged_risky"] == 0.0


def test_expected_calibration_error():
    assert expected_calibration_error([1.0, 1.0], [True, True]) == 0.0
    assert expected_calibration_error([0.9, 0.9], [False, False]) == pytest.approx(0.9)
    assert expected_calibration_error([0.75] * 4, [True, True, True, False]) == pytest.approx(0.0)


def test_unknown_snakes_are_reported_apart(tmp_path, predictor):
    from PIL import Image

    from snakeid_desktop.evaluation import evaluate_unknown_snakes

    folder = tmp_path / "other-snakes" / "naja-spp"
    folder.mkdir(parents=True)
    for i in range(4):
        Image.new("RGB", (160, 160), (40 * i, 90, 60)).save(folder / f"{i}.jpg")
    (folder / "broken.jpg").write_bytes(b"not a photo")
    report = evaluate_unknown_snakes(predictor, tmp_path / "other-snakes")
    assert report["images"] == 4 and report["unreadable_images"] == 1
    for key in ("called_not_snake", "unwarned", "named_a_known_species"):
        assert 0.0 <= report[key] <= 1.0
    preds = [r.prediction for r in predictor.classify_paths(sorted(folder.glob("[0-9].jpg")))]
    assert report["unwarned"] == round(sum(not p.risk for p in preds) / 4, 4)
