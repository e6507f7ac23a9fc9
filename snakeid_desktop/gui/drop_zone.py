"""The big empty-state drop target shown while the session has no photos."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout


class DropZone(QFrame):
    """The big empty-state target. The whole window accepts drops; this just says so."""

    open_clicked = Signal()
    species_clicked = Signal()  # "Which species?": the About box lists them

    def __init__(self, parent=None, coverage: str = ""):
        """``coverage``: what SnakeID knows, e.g. "19 species from the Philippines and southern Africa"."""
        super().__init__(parent)
        self.setObjectName("drop_zone")
        self.setAccessibleName("Drop zone")
        self.setAccessibleDescription("Drop snake photos or a folder here, or press Ctrl+O to open a photo.")
        self.setMinimumSize(320, 240)
        self._set_highlight(False)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        self.title = QLabel("Drop a snake photo here")
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        font = self.title.font()
        if font.pointSizeF() > 0:
            font.setPointSizeF(font.pointSizeF() * 2.0)
        font.setBold(True)
        self.title.setFont(font)
        self.title.setWordWrap(True)
        self.subtitle = QLabel(
            "or paste one (Ctrl+V), open one (Ctrl+O), or drop a whole folder to classify many (Ctrl+B).\n"
            "Everything stays on this computer: no photo is ever uploaded."
        )
        self.subtitle.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.subtitle.setWordWrap(True)
        # Said up front: a photo from elsewhere gets an "outside coverage" answer, not a species.
        self.coverage = QLabel(f"SnakeID knows {coverage}." if coverage else "")
        self.coverage.setObjectName("coverage")
        self.coverage.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.coverage.setWordWrap(True)
        self.species_button = QPushButton("Which species?")
        self.species_button.setObjectName("which_species")
        self.species_button.setAccessibleName("Which species SnakeID knows")
        self.species_button.setToolTip("List the species SnakeID knows (About SnakeID)")
        self.species_button.setFlat(True)
        self.species_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.species_button.setStyleSheet("QPushButton { color: palette(link); text-decoration: underline; border: none; }")
        self.species_button.clicked.connect(self.species_clicked)
        self.status = QLabel("")
        self.status.setObjectName("model_status_hint")
        self.status.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.status.setWordWrap(True)
        self.open_button = QPushButton("Open photo…")
        self.open_button.setAccessibleName("Open photo")
        self.open_button.clicked.connect(self.open_clicked)
        button_row = QHBoxLayout()
        button_row.addStretch(1)
        button_row.addWidget(self.open_button)
        button_row.addStretch(1)
        for widget in (self.title, self.subtitle):
            layout.addWidget(widget)
        layout.addSpacing(12)
        layout.addLayout(button_row)
        layout.addSpacing(12)
        layout.addWidget(self.coverage)
        layout.addWidget(self.status)
        species_row = QHBoxLayout()
        species_row.addStretch(1)
        species_row.addWidget(self.species_button)
        species_row.addStretch(1)
        layout.addLayout(species_row)
        layout.addStretch(1)

    def _set_highlight(self, on: bool) -> None:
        # palette(highlight) keeps the colour right in light and dark themes.
        border = "palette(highlight)" if on else "palette(mid)"
        self.setStyleSheet(
            f"QFrame#drop_zone {{ border: 3px dashed {border}; border-radius: 12px; }}"
        )

    def set_drag_active(self, on: bool) -> None:
        self._set_highlight(on)
