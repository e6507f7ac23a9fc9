"""The "My species" window: the species taught on this computer, listed, renamed, removed and shared.

The store is the core's (:class:`~snakeid_desktop.my_species.SpeciesStore`). Every change runs on
a :class:`~.background.BackgroundOp` and ends by making the model answer with the stored set
again (:func:`~.taught.refit`); the new :class:`~.taught.TaughtStatus` is emitted so the main
window answers its photos again. Opening the window does the same, so species taught with the
command line meanwhile are picked up too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QItemSelectionModel, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..safety import venom_words
from .background import BackgroundOp, WorkDialog
from .taught import StoredRow, TaughtStatus, refit, short_accuracy
from .user_folders import documents_dir

COLUMNS = ("Common name", "Scientific name", "Venom", "Photos", "Expected accuracy", "Status")
COL_COMMON, COL_SCIENTIFIC, COL_VENOM, COL_PHOTOS, COL_ACCURACY, COL_STATUS = range(len(COLUMNS))
ROW_ROLE = Qt.ItemDataRole.UserRole
COLUMN_AIR = 16  # px beyond a column's widest text
COLUMN_MAX = 260  # px: a long name is elided (whole in its tooltip) rather than squeezing the status out
ERROR_STYLE = "QLabel { color: palette(text); background-color: rgba(179, 38, 30, 40); padding: 6px; border-radius: 4px; }"

# (predictor) -> a sentence saying what was done; run on the worker thread.
Change = Callable[[object], str]


def _pack_suffix() -> str:
    from ..species_pack import PACK_SUFFIX

    return PACK_SUFFIX


class MySpeciesDialog(WorkDialog):
    taught_changed = Signal(object)  # TaughtStatus after the store was read or changed
    teach_requested = Signal()
    job_finished = Signal(str)  # "load" / "rename" / "remove" / "export" / "import", once its thread stopped

    def __init__(self, parent: QWidget | None = None, *, predictor_provider: Callable[[threading.Event], object]):
        """``predictor_provider(cancel)``: the loaded predictor, or None once ``cancel`` is set."""
        super().__init__(parent)
        self.setWindowTitle("My species - SnakeID")
        self.setModal(False)
        self.resize(900, 480)
        self._provider = predictor_provider
        self._op: BackgroundOp | None = None
        self.rows: tuple[StoredRow, ...] = ()
        self._in_use: set[str] = set()
        self._error: str | None = None
        self._last_export_dir: Path | None = None
        self._build_ui()
        self.refresh()

    # ---------------------------------------------------------------- layout

    def _build_ui(self) -> None:
        layout = QVBoxLayout(self)
        intro = QLabel("The species you taught SnakeID on this computer. It answers with those marked Ready, beside "
                       "the species it ships with; their answers say “taught by you”.")
        intro.setWordWrap(True)
        layout.addWidget(intro)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setAccessibleName("Taught species")
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(False)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(COL_STATUS, QHeaderView.ResizeMode.Stretch)  # the problem: elided, whole in its tooltip
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.doubleClicked.connect(self.rename_selected)
        layout.addWidget(self.table, 1)
        self.empty_label = QLabel("You have not taught SnakeID any species yet. “Teach a species…” learns one from "
                                  "a folder of your photos; “Import…” adds species someone exported for you.")
        self.empty_label.setWordWrap(True)
        self.empty_label.hide()
        layout.addWidget(self.empty_label)
        # The whole of the selected species (a problem is too long for its cell), wrapped.
        self.details_label = QLabel("")
        self.details_label.setWordWrap(True)
        self.details_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details_label.setAccessibleDescription("The selected species in full")
        layout.addWidget(self.details_label)
        self.status_label = QLabel("Reading your taught species…")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status_label.setAccessibleDescription("What the last action did")
        layout.addWidget(self.status_label)

        buttons = QHBoxLayout()
        self.teach_button = QPushButton("Teach a species…")
        self.teach_button.clicked.connect(self._on_teach_clicked)
        self.rename_button = QPushButton("Rename…")
        self.rename_button.setToolTip("Change the common name (the scientific name stays)")
        self.rename_button.clicked.connect(self.rename_selected)
        self.remove_button = QPushButton("Remove…")
        self.remove_button.setToolTip("SnakeID stops answering with the selected species (asks first)")
        self.remove_button.clicked.connect(self.remove_selected)
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Save the selected species (or all) into one file to share; it holds no photo")
        self.export_button.clicked.connect(self.export_selected)
        self.import_button = QPushButton("Import…")
        self.import_button.setToolTip("Add the species of a file exported from SnakeID")
        self.import_button.clicked.connect(self.import_file)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.close)
        for button in (self.teach_button, self.rename_button, self.remove_button, self.export_button,
                       self.import_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        layout.addLayout(buttons)
        for button, name in ((self.teach_button, "Teach a species"), (self.rename_button, "Rename the selected species"),
                             (self.remove_button, "Remove the selected species"),
                             (self.export_button, "Export the selected species to a file"),
                             (self.import_button, "Import species from a file")):
            button.setAccessibleName(name)
        self._update_buttons()

    # ---------------------------------------------------------------- the list

    def show_status(self, status: TaughtStatus) -> None:
        """List what the store holds (also called by the main window after a teaching elsewhere)."""
        keys = {r.key for r in self.selected_rows()}
        self.rows = status.rows
        in_use = {info.slug for info in status.in_use}
        self.table.setRowCount(len(status.rows))
        reselect = []
        for index, row in enumerate(status.rows):
            state, tip = _state(row, in_use, status.error)
            # A file that cannot be read has no names: the details below the table give its file.
            texts = (row.common_name if row.key is not None else "Unreadable file", row.scientific_name,
                     venom_words(row.venomous) if row.venomous else "",
                     str(row.photos) if row.photos is not None else "", short_accuracy(row), state)
            for column, text in enumerate(texts):
                item = QTableWidgetItem(text)
                item.setData(ROW_ROLE, row)
                item.setToolTip(tip if column == COL_STATUS else (row.file if column == COL_COMMON else text))
                if column == COL_SCIENTIFIC:
                    font = item.font()
                    font.setItalic(True)
                    item.setFont(font)
                if column in (COL_PHOTOS, COL_ACCURACY):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(index, column, item)
            if row.key in keys:
                reselect.append(index)
        selection = self.table.selectionModel()
        selection.clearSelection()
        for index in reselect:  # what was selected stays selected (selectRow would keep only one)
            selection.select(self.table.model().index(index, 0),
                             QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows)
        self.table.resizeColumnsToContents()
        for column in range(COL_STATUS):  # as wide as their words, with some air between the columns
            self.table.setColumnWidth(column, min(COLUMN_MAX, self.table.columnWidth(column) + COLUMN_AIR))
        self._in_use, self._error = in_use, status.error
        self.table.setVisible(bool(status.rows))
        self.empty_label.setVisible(not status.rows)
        self._update_buttons()

    def selected_rows(self) -> list[StoredRow]:
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        return [self.table.item(r, 0).data(ROW_ROLE) for r in rows if self.table.item(r, 0) is not None]

    def select(self, scientific_name: str) -> None:
        """Select the row of one species (tests; keyboard users use the table)."""
        for index, row in enumerate(self.rows):
            if row.scientific_name == scientific_name:
                self.table.selectRow(index)
                return
        raise KeyError(scientific_name)

    @property
    def is_busy(self) -> bool:
        return self._op is not None

    def _show_details(self) -> None:
        selected = self.selected_rows()
        if len(selected) != 1:
            self.details_label.setText(f"{len(selected)} species selected." if selected else "")
            return
        row = selected[0]
        _, tip = _state(row, self._in_use, self._error)
        parts = [f"{row.common_name} ({row.scientific_name})" if row.key else row.common_name,
                 "Ready: SnakeID answers with it." if row.key in self._in_use else f"Not used: {tip}"]
        if row.countries:
            parts.append("Countries: " + ", ".join(row.countries) + ".")
        if row.notes:
            parts.append(f"Note: {row.notes}")
        parts.append(f"File: {row.file}")
        self.details_label.setText("\n".join(parts))

    @Slot()
    def _update_buttons(self) -> None:
        self._show_details()
        busy = self.is_busy
        # A file that cannot be read has no name to act on: it is listed, with where it is.
        named = [r for r in self.selected_rows() if r.key is not None]
        self.rename_button.setEnabled(not busy and len(named) == 1)
        self.remove_button.setEnabled(not busy and bool(self.selected_rows()))  # an unreadable file may go too
        self.export_button.setEnabled(not busy and any(r.key is not None for r in self.rows))
        self.export_button.setText("Export selected…" if named else "Export all…")
        self.import_button.setEnabled(not busy)

    # ---------------------------------------------------------------- actions

    @Slot()
    def _on_teach_clicked(self) -> None:
        self.teach_requested.emit()

    @Slot()
    def refresh(self) -> None:
        self._run("load", lambda predictor: "", "Reading your taught species…")

    @Slot()
    def rename_selected(self) -> None:
        named = [r for r in self.selected_rows() if r.key is not None]
        if len(named) != 1 or self.is_busy:
            return
        row = named[0]
        text, ok = QInputDialog.getText(self, "Rename taught species", f"Common name of {row.scientific_name}:",
                                        QLineEdit.EchoMode.Normal, row.common_name)
        if not ok or text.strip() == row.common_name:
            return

        def rename(predictor) -> str:
            from ..my_species import SpeciesStore

            renamed = SpeciesStore().rename(row.key, text)
            return f"{row.scientific_name} is now called {renamed.common_name}."

        self._run("rename", rename, "Renaming…")

    @Slot()
    def remove_selected(self) -> None:
        named = self.selected_rows()
        if not named or self.is_busy:
            return
        listed = "\n".join(f"• {r.common_name} ({r.scientific_name})" if r.key is not None
                           else f"• the unreadable file {Path(r.file).name}" for r in named)
        answer = QMessageBox.question(
            self, "Remove taught species?",
            f"Remove {'this species' if len(named) == 1 else f'these {len(named)} species'}?\n{listed}\n\n"
            "SnakeID will no longer answer with it. Your photos are not touched; to have it back, teach it again "
            "or import a file you exported.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel)
        if answer != QMessageBox.StandardButton.Yes:
            self._show("Nothing was removed.")
            return
        # A file that cannot be read is found by its file name.
        keys = [r.key if r.key is not None else Path(r.file).name for r in named]

        def remove(predictor) -> str:
            from ..my_species import SpeciesStore

            store = SpeciesStore()
            gone = [store.remove(key) for key in keys]
            return "Removed: " + ", ".join(sp.common_name if sp is not None else "an unreadable file"
                                           for sp in gone) + "."

        self._run("remove", remove, "Removing…")

    def suggested_export_path(self) -> Path:
        folder = self._last_export_dir or documents_dir()
        return folder / f"snakeid-species-{time.strftime('%Y-%m-%d')}{_pack_suffix()}"

    @Slot()
    def export_selected(self) -> None:
        if self.is_busy:
            return
        suffix = _pack_suffix()
        named = [r for r in self.selected_rows() if r.key is not None]
        path, _ = QFileDialog.getSaveFileName(self, "Export taught species", str(self.suggested_export_path()),
                                              f"SnakeID species (*{suffix})")
        if not path:
            return
        path = Path(path) if path.endswith(suffix) else Path(path + suffix)
        keys = [r.key for r in named] or None  # none selected: every readable one

        def export(predictor) -> str:
            from ..my_species import SpeciesStore

            species = SpeciesStore().export(path, keys)
            return (f"Exported {len(species)} species to {path}. It holds no photo; SnakeID with the same model "
                    "imports it (Species ▸ My species ▸ Import…).")

        self._last_export_dir = path.parent
        self._run("export", export, "Exporting…", refits=False)

    @Slot()
    def import_file(self) -> None:
        if self.is_busy:
            return
        suffix = _pack_suffix()
        path, _ = QFileDialog.getOpenFileName(self, "Import taught species", str(self._last_export_dir or documents_dir()),
                                              f"SnakeID species (*{suffix});;All files (*)")
        if not path:
            return

        def import_(predictor) -> str:
            from ..my_species import SpeciesStore

            species = SpeciesStore().import_pack(path, predictor)
            return "Imported: " + ", ".join(f"{sp.common_name} ({sp.scientific_name})" for sp in species) + "."

        self._run("import", import_, "Importing…")

    # ---------------------------------------------------------------- background work

    def _run(self, kind: str, change: Change, busy_text: str, refits: bool = True) -> None:
        """``change(predictor)`` off the GUI thread, then (``refits``) the model answers with the store again."""
        assert self._op is None
        provider = self._provider

        def work(report, cancel):
            predictor = provider(cancel)
            if predictor is None:
                return kind, "Closed before the model had loaded; nothing was changed.", None
            message = change(predictor)
            return kind, message, refit(predictor) if refits else None

        self._show(busy_text)
        op = BackgroundOp(work, success=self._on_done, failure=self._on_failed, name=f"snakeid-species-{kind}",
                          parent=self)
        op.finished.connect(lambda: self._on_op_finished(kind))
        self._op = op
        self._update_buttons()
        op.start()

    def _on_done(self, result) -> None:
        kind, message, status = result
        if status is not None:
            self.show_status(status)
            self.taught_changed.emit(status)
            if status.error:
                message = f"{message} {status.error}".strip()
        if kind == "load" and not message:
            ready = sum(1 for r in self.rows if r.key is not None and r.in_use)
            message = f"{len(self.rows)} taught species, {ready} in use." if self.rows else ""
        self._show(message, error=bool(status is not None and status.error))

    def _on_failed(self, message: str) -> None:
        self._show(message, error=True)

    def _on_op_finished(self, kind: str) -> None:
        self._op = None
        if not self._closing:
            self._update_buttons()
        self.job_finished.emit(kind)

    def _show(self, text: str, error: bool = False) -> None:
        self.status_label.setText(text)
        self.status_label.setStyleSheet(ERROR_STYLE if error else "")

    # ---------------------------------------------------------------- closing

    def stop_work(self) -> None:
        if self._op is not None:
            self._op.stop()


def _state(row: StoredRow, in_use: set[str], error: str | None) -> tuple[str, str]:
    """(the status cell, why) for one stored species."""
    if row.key in in_use:
        return "Ready", "SnakeID answers with it"
    if row.problem:
        return f"Not used: {row.problem}", row.problem
    return "Not used", error or "not in use"
