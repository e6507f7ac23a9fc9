"""About box: app and model versions, the species the model knows, its validation metrics, licences."""

from __future__ import annotations

import html
import platform

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout

from .. import __version__
from ..catalogue import Catalogue
from .inference_worker import ModelInfo

LICENCES = (
    ("SnakeID Desktop", "MIT"),
    ("Qt 6 / PySide6", "LGPL-3.0 (dynamically linked, unmodified)"),
    ("PyTorch", "BSD-3-Clause"),
    ("Pillow", "MIT-CMU (HPND)"),
    ("pillow-heif / libheif", "BSD-3-Clause / LGPL-3.0"),
    ("platformdirs", "MIT"),
    ("MobileNetV2 architecture and ImageNet-pretrained starting weights", "torchvision, BSD-3-Clause"),
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
            ("Input size", f"{info.input_size} px"),
            (
                "Thresholds",
                f"species ≥ {info.species_threshold:.2f}, not a snake ≥ {info.not_snake_threshold:.2f}, "
                f"venom risk ≥ {info.risk_threshold:.2f}",
            ),
        ]
        for key, value in sorted(info.metrics.items()):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                rows.append((key.replace("_", " "), f"{value:.3f}" if isinstance(value, float) else str(value)))
        for key in ("training_data", "data_licence", "data_license", "trained_on"):
            if key in info.metadata:
                rows.append((key.replace("_", " "), str(info.metadata[key])))
        parts += [f"<tr><td><b>{e(k)}</b></td><td>{e(v)}</td></tr>" for k, v in rows]
        parts.append("</table>")
        parts.append("<h3>Species the model knows</h3><ul>")
        for slug in info.classes:
            if slug == "not_snake":
                continue
            entry = catalogue.get(slug)
            acc = info.per_class_accuracy.get(slug)
            acc_text = f" — validation accuracy {100 * float(acc):.0f}%" if acc is not None else ""
            venom = {"yes": "venomous", "mild": "mildly venomous", "no": "not venomous"}.get(entry.venomous, "")
            parts.append(
                f"<li>{e(entry.common_name)} (<i>{e(entry.scientific_name)}</i>), {e(venom)}{e(acc_text)}</li>"
            )
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
