"""The "Where are you?" picker: a searchable list of countries with "Anywhere" first.

Shared by the main window and the batch dialog. Its value is a country code or None (anywhere);
a photo's own GPS location still wins over it (decided in the core, ``predictor.resolve_place``).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import QComboBox, QCompleter

ANYWHERE_LABEL = "Anywhere"


class CountryPicker(QComboBox):
    country_changed = Signal(object)  # str code or None

    def __init__(self, country: str | None = None, parent=None):
        super().__init__(parent)
        from ..region import country_names

        self.setEditable(True)  # type to search; only listed entries can be chosen
        self.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.addItem(ANYWHERE_LABEL, None)
        for code, name in country_names():
            self.addItem(f"{name} ({code})", code)
        completer = QCompleter(self.model(), self)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        self.setCompleter(completer)
        self.setAccessibleName("Where are you? Country the photos were taken in")
        self.setToolTip("Only species that live in this country are considered. A photo's own GPS location wins.")
        self.setMinimumContentsLength(18)
        self.set_country(country)
        self.currentIndexChanged.connect(self._on_index_changed)
        self.lineEdit().editingFinished.connect(self._restore_text_if_unknown)

    def country(self) -> str | None:
        return self.currentData()

    def set_country(self, code: str | None) -> None:
        index = self.findData(code) if code else 0
        self.setCurrentIndex(index if index >= 0 else 0)

    @Slot(int)
    def _on_index_changed(self, _index: int) -> None:
        self.country_changed.emit(self.country())

    @Slot()
    def _restore_text_if_unknown(self) -> None:
        # Typing something that is no country leaves the choice as it was, shown as it is.
        if self.findText(self.currentText()) < 0:
            self.setEditText(self.itemText(self.currentIndex()))
