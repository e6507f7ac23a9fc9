"""The batch window: classify a whole folder with progress, cancel and resume; export; sort into folders.

Long work (scan + classify, copying into folders, undo) runs as a :class:`~.background.BackgroundOp`:
its own ``QThread``, typed progress objects (``ScanProgress``, ``TotalFound``, ``RowsReady``,
``Problem``, ``SortProgress``: plain data) and success/failure callbacks bound per call. Rows
arrive in chunks of up to 250 ms so 100k rows stay smooth. Cancel is cooperative (a
``threading.Event`` the engine checks between batches). Closing the window mid-run sets it and
joins the thread before the window goes away, so Qt never sees a running QThread destroyed.

The pipeline itself (:class:`~snakeid_desktop.batch.FolderRun`: scan, resume cache, engine,
row-count guard) and ``export`` / ``sorting`` are the Qt-free core shared with ``snakeid batch``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal, Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QStyle,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ..batch import Progress, format_duration
from ..results import FileResult
from .background import BackgroundOp, WorkDialog
from .country_picker import CountryPicker
from .batch_model import (
    COL_NOTES,
    COL_PATH,
    COL_PROBABILITY,
    COL_SPECIES,
    COL_VENOM,
    COL_VENOM_PROBABILITY,
    COL_VERDICT,
    HEADERS,
    BatchResultsModel,
    ThumbnailLoader,
    shown_species,
    verdict_key,
)
from .inference_worker import MAX_TOP_K
from .taught import TAUGHT_MARK
from .user_folders import documents_dir as _documents_dir

CHUNK_SECONDS = 0.25  # rows reach the table at most 4 times a second: each insert costs a repaint (~20 ms)
CHUNK_ROWS = 2000


# ---------------------------------------------------------------- what the background work reports


@dataclass(frozen=True)
class ScanProgress:
    found: int  # photos listed so far


@dataclass(frozen=True)
class TotalFound:
    total: int  # the scan is over: this many rows will come


@dataclass(frozen=True)
class Problem:
    message: str  # a sub-folder or link the scan skipped, in one sentence


@dataclass(frozen=True)
class RowsReady:
    rows: tuple[FileResult, ...]  # the next rows, in scan order


@dataclass(frozen=True)
class SortProgress:
    done: int
    total: int


class BatchDialog(WorkDialog):
    open_result_requested = Signal(object)  # FileResult of a double-clicked row
    run_finished = Signal(object)  # dict summary (tests and the status line use it)
    job_finished = Signal(str)  # "run" / "sort" / "undo", after the thread has stopped

    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        predictor_provider: Callable[[], object],
        initial_folder: str | None = None,
        use_cache: bool = True,
        country: str | None = None,
    ):
        super().__init__(parent)
        self.setWindowTitle("Classify a folder - SnakeID")
        self.setModal(False)
        self.resize(980, 640)
        self._predictor_provider = predictor_provider
        self._use_cache = use_cache
        self._op: BackgroundOp | None = None
        self._progress: Progress | None = None
        self._failures = 0
        self._problems: list[str] = []
        self.last_summary: dict | None = None
        self.last_sort = None
        self._last_export_dir: Path | None = None
        self._sort_destination: Path | None = None

        self.thumbnails = ThumbnailLoader(parent=self)
        self.model = BatchResultsModel(self.thumbnails, self)
        self._build_ui(initial_folder, country)
        self._update_buttons()

    # ---------------------------------------------------------------- layout

    def _build_ui(self, initial_folder: str | None, country: str | None) -> None:
        layout = QVBoxLayout(self)

        row = QHBoxLayout()
        folder_label = QLabel("&Folder:")
        row.addWidget(folder_label)
        self.folder_edit = QLineEdit(initial_folder or "")
        self.folder_edit.setPlaceholderText("Choose a folder of photos")
        folder_label.setBuddy(self.folder_edit)
        row.addWidget(self.folder_edit, 1)
        self.browse_button = QPushButton("Browse…")
        self.browse_button.clicked.connect(self._browse)
        row.addWidget(self.browse_button)
        self.recursive_check = QCheckBox("Include sub-folders")
        self.recursive_check.setChecked(True)
        row.addWidget(self.recursive_check)
        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        row.addWidget(self.start_button)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop; the results so far are kept, and a rerun resumes where this stopped")
        self.cancel_button.clicked.connect(self.cancel)
        row.addWidget(self.cancel_button)
        layout.addLayout(row)

        region_row = QHBoxLayout()
        region_label = QLabel("Where were these photos taken?")
        self.country_picker = CountryPicker(country)
        region_label.setBuddy(self.country_picker)
        region_row.addWidget(region_label)
        region_row.addWidget(self.country_picker)
        region_row.addWidget(QLabel("(a photo's own GPS location wins)"))
        region_row.addStretch(1)
        layout.addLayout(region_row)

        self.progress_bar = QProgressBar()
        self._run_counts: tuple[int, int] | None = None  # (done, total) of the last classification run
        self._show_idle_progress()
        layout.addWidget(self.progress_bar)
        self.status_label = QLabel("Choose a folder and press Start. Your photos are only read, never changed.")
        self.status_label.setWordWrap(True)
        layout.addWidget(self.status_label)

        filters = QHBoxLayout()
        show_label = QLabel("&Show:")
        filters.addWidget(show_label)
        self.verdict_filter = QComboBox()
        show_label.setBuddy(self.verdict_filter)
        for label, key in (("All verdicts", ""), ("Species", "species"), ("Unsure", "unsure"),
                           ("Not a snake", "not_snake"), ("Outside coverage", "outside_coverage"),
                           ("Venomous risk", "risk"), ("Errors", "error")):
            self.verdict_filter.addItem(label, key)
        self.verdict_filter.currentIndexChanged.connect(
            lambda _i: self.model.set_verdict(self.verdict_filter.currentData()))
        filters.addWidget(self.verdict_filter)
        self.species_filter = QComboBox()
        self.species_filter.addItem("All species", "")
        self.species_filter.currentIndexChanged.connect(
            lambda _i: self.model.set_species(self.species_filter.currentData()))
        species_label = QLabel("Species:")  # a visible label, so the filter is named on every platform
        species_label.setBuddy(self.species_filter)
        filters.addWidget(species_label)
        filters.addWidget(self.species_filter)
        confidence_label = QLabel("Min. &confidence in verdict:")
        filters.addWidget(confidence_label)
        self.confidence_filter = QDoubleSpinBox()
        confidence_label.setBuddy(self.confidence_filter)
        self.confidence_filter.setRange(0, 100)
        self.confidence_filter.setSuffix(" %")
        self.confidence_filter.setDecimals(0)
        self.confidence_filter.setSingleStep(5)
        self.confidence_filter.valueChanged.connect(lambda v: self.model.set_min_probability(v / 100.0))
        filters.addWidget(self.confidence_filter)
        filters.addStretch(1)
        self.shown_label = QLabel("")
        filters.addWidget(self.shown_label)
        layout.addLayout(filters)

        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # scan order until the user sorts
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(False)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setVisible(False)
        # Fixed row height: the view never measures 100k rows.
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.verticalHeader().setDefaultSectionSize(self.thumbnails.side + 4)
        self.table.setIconSize(QSize(self.thumbnails.side, self.thumbnails.side))
        header = self.table.horizontalHeader()
        # The short columns as wide as their words (never a truncated "Venom status unknown: treat as
        # venomous"), from what they can say rather than by measuring rows; the photo's path and the
        # notes share what is left. Still resizable by hand.
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        for column in (COL_PATH, COL_NOTES):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Stretch)
        for column in range(len(HEADERS)):
            self._fit_column(column, ())  # the header's width; the words come with the rows
        self._fitted: set[tuple] = set()  # (column, kind of text) already fitted
        self.table.doubleClicked.connect(self._on_double_click)
        layout.addWidget(self.table, 1)
        self.model.rowsInserted.connect(self._update_shown)
        self.model.modelReset.connect(self._update_shown)

        actions = QHBoxLayout()
        self.export_csv_button = QPushButton("Export CSV…")
        self.export_csv_button.clicked.connect(lambda: self._ask_export("csv"))
        self.export_json_button = QPushButton("Export JSON…")
        self.export_json_button.clicked.connect(lambda: self._ask_export("json"))
        for button in (self.export_csv_button, self.export_json_button):
            button.setToolTip("Exports every row, whatever the filters show, in the same columns as `snakeid batch`")
        self.sort_button = QPushButton("Copy into per-species folders…")
        self.sort_button.setToolTip("Copies each photo into a folder per species (e.g. “Naja philippinensis "
                                    "(Philippine cobra)”), “unsure”, “not a snake”, “outside coverage” or "
                                    "“errors”, inside a folder you choose (a new one is created); asks first, "
                                    "nothing is overwritten")
        self.sort_button.clicked.connect(self._ask_sort)
        self.move_check = QCheckBox("Move instead of copy")
        self.move_check.setToolTip("Moves the originals out of their folder (asks to confirm; can be undone)")
        self.undo_button = QPushButton("Undo last sort")
        self.undo_button.clicked.connect(self.undo_last_sort)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.close)
        for widget in (self.export_csv_button, self.export_json_button, self.sort_button, self.move_check,
                       self.undo_button):
            actions.addWidget(widget)
        actions.addStretch(1)
        actions.addWidget(self.close_button)
        layout.addLayout(actions)
        self._name_for_assistive_technology()

    def _name_for_assistive_technology(self) -> None:
        """Accessible names: what a screen reader announces for each control (not the bare "…" of a
        button, nor nothing for a field whose label sits beside it)."""
        names = {
            self.folder_edit: ("Folder of photos to classify", None),
            self.browse_button: ("Browse for the folder of photos", None),
            self.recursive_check: ("Include sub-folders", None),
            self.start_button: ("Start classifying", None),
            self.cancel_button: ("Cancel the run", None),
            self.country_picker: ("Where were these photos taken?", "A photo's own GPS location wins"),
            self.progress_bar: ("Classification progress", "Photos classified out of photos found"),
            self.verdict_filter: ("Show verdict", "Filter the table by verdict"),
            self.species_filter: ("Show species", "Filter the table by species"),
            self.confidence_filter: ("Minimum confidence in verdict", "Hide rows whose verdict is less likely"),
            self.table: ("Results", "One row per photo: verdict, species, confidence, venomous chance, warnings"),
            self.export_csv_button: ("Export CSV", None),
            self.export_json_button: ("Export JSON", None),
            self.sort_button: ("Copy into per-species folders", None),
            self.move_check: ("Move instead of copy", None),
            self.undo_button: ("Undo last sort", None),
            self.close_button: ("Close", None),
        }
        for widget, (name, description) in names.items():
            widget.setAccessibleName(name)
            if description:
                widget.setAccessibleDescription(description)
        # Labels keep their text as their name (a name would replace what they say); only described.
        self.status_label.setAccessibleDescription("Status of the run, the export or the sort")
        self.shown_label.setAccessibleDescription("Rows shown in the table")

    # ---------------------------------------------------------------- state

    @property
    def is_busy(self) -> bool:
        return self._op is not None

    def _update_buttons(self) -> None:
        busy = self.is_busy
        has_rows = self.model.total_count() > 0
        for widget in (self.start_button, self.browse_button, self.folder_edit, self.recursive_check):
            widget.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        for widget in (self.export_csv_button, self.export_json_button, self.sort_button, self.move_check):
            widget.setEnabled(has_rows and not busy)
        from ..sorting import last_manifest

        self.undo_button.setEnabled(not busy and last_manifest() is not None)

    @Slot()
    def _update_shown(self, *args) -> None:
        total = self.model.total_count()
        shown = self.model.rowCount()
        self.shown_label.setText(f"{shown} of {total} shown" if shown != total else f"{total} photos")

    def _show_idle_progress(self) -> None:
        """No count before a run or after a job that was not one: "0 / 1" would claim a run of one photo."""
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("")

    def _show_run_progress(self, done: int, total: int) -> None:
        self._run_counts = (done, total)
        self.progress_bar.setFormat("%v / %m photos")
        self.progress_bar.setRange(0, max(1, total))
        self.progress_bar.setValue(done)

    def _show_busy_progress(self) -> None:
        self.progress_bar.setFormat("")
        self.progress_bar.setRange(0, 0)  # busy indicator: scanning, loading the model, undoing

    def _restore_progress(self) -> None:
        """After a sort or undo: the last run's counts again (they still describe the table), else none."""
        if self._run_counts is not None:
            self._show_run_progress(*self._run_counts)
        else:
            self._show_idle_progress()

    def _start(self, kind: str, work: Callable, success: Callable) -> None:
        """Run ``work(report, cancel)`` in the background; ``success(result)`` or the failure message follows."""
        assert self._op is None
        op = BackgroundOp(work, success=success, failure=self._on_failed, progress=self._on_progress,
                          name=f"snakeid-batch-{kind}", parent=self)
        op.finished.connect(lambda: self._on_op_finished(kind))
        self._op = op
        self._update_buttons()
        op.start()

    def _on_op_finished(self, kind: str) -> None:
        self._op = None
        if not self._closing:
            self._update_buttons()
        self.job_finished.emit(kind)

    def _stop_worker(self) -> None:
        """Cancel and join whatever runs; the engine stops within about one batch."""
        if self._op is not None:
            self._op.stop()
        self.thumbnails.shutdown()

    # ---------------------------------------------------------------- classify

    @Slot()
    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of photos to classify", self.folder_edit.text())
        if folder:
            self.folder_edit.setText(folder)

    @Slot()
    def start(self) -> None:
        if self.is_busy:
            return
        folder_text = self.folder_edit.text().strip()
        if not folder_text:
            self.status_label.setText("Choose a folder first.")
            return
        folder = Path(folder_text).expanduser()
        if not folder.is_dir():
            self.status_label.setText(f"{folder} is not a folder that exists.")
            return
        recursive = self.recursive_check.isChecked()
        self.model.clear()
        self.model.root = folder
        self._failures = 0
        self._problems = []
        self._progress = None
        self.last_summary = None
        self._run_counts = None
        self._show_busy_progress()
        self.status_label.setText("Looking for photos…")
        provider, use_cache = self._predictor_provider, self._use_cache
        country = self.country_picker.country() or "auto"

        def work(report, cancel: threading.Event) -> dict:
            return _classify_folder(folder, recursive, provider, use_cache, report, cancel, country)

        self._start("run", work, self._run_done)

    @Slot()
    def cancel(self) -> None:
        if self._op is not None:
            self._op.cancel()
            self.status_label.setText("Stopping…")

    def _on_progress(self, event) -> None:
        match event:
            case ScanProgress(found):
                self.status_label.setText(f"Looking for photos… {found} found so far")
            case TotalFound(total):
                self._progress = Progress(total)
                self._show_run_progress(0, total)
                self.status_label.setText(f"{total} photos found. Loading the model…")
            case Problem(message):
                self._problems.append(message)
            case RowsReady(rows):
                self._add_results(rows)
            case SortProgress(done, total):
                self.progress_bar.setRange(0, max(1, total))
                self.progress_bar.setValue(done)  # the format is the sort's ("… photos copied")

    def _add_results(self, results: tuple[FileResult, ...]) -> None:
        self.model.append_results(results)
        self._failures += sum(1 for r in results if not r.ok)
        self._add_species_choices(results)
        if self._progress is not None:
            self._progress.update(self.model.total_count())
            self._show_run_progress(self.model.total_count(), self._progress.total)
            p = self._progress
            self.status_label.setText(
                f"{p.done} / {p.total} photos · {p.rate:.1f} photos/s · {format_duration(p.seconds_left)} left"
                + (f" · {self._failures} failed" if self._failures else "")
            )

    def _add_species_choices(self, results: tuple[FileResult, ...]) -> None:
        known = {self.species_filter.itemData(i) for i in range(self.species_filter.count())}
        for r in results:
            species = shown_species(r)
            if species is not None and species.species not in known:
                known.add(species.species)
                self.species_filter.addItem(species.common_name + (TAUGHT_MARK if species.taught else ""), species.species)
            self._fit_row(r, species)

    def _fit_row(self, result: FileResult, species) -> None:
        """Widen the short columns for what this row says, measuring only a kind of text not seen
        before (a new species, verdict or venom wording): a few per run, not one per row."""
        pred = result.prediction if result.ok else None
        kinds = (
            (COL_VERDICT, verdict_key(result)),
            (COL_SPECIES, species.species if species is not None else None),
            (COL_VENOM, (pred.risk, species.venomous if species is not None else None) if pred else None),
            (COL_VENOM_PROBABILITY, "unknown" if pred is not None and pred.venom_probability is None else None),
        )
        for column, kind in kinds:
            if kind is None or (column, kind) in self._fitted:
                continue
            self._fitted.add((column, kind))
            self._fit_column(column, (self.model.text_for(result, column),))
        if (COL_PROBABILITY, "number") not in self._fitted:
            self._fitted.add((COL_PROBABILITY, "number"))
            for column in (COL_PROBABILITY, COL_VENOM_PROBABILITY):
                self._fit_column(column, ("100.0 %",))

    def _fit_column(self, column: int, texts) -> None:
        """Widen ``column`` (never narrow it: the user may have widened it) to fit its header and ``texts``."""
        header = self.table.horizontalHeader()
        if header.sectionResizeMode(column) == QHeaderView.ResizeMode.Stretch:
            return
        metrics = self.table.fontMetrics()
        # The item's own padding as QStyledItemDelegate pads it, plus a little air.
        pad = 2 * (self.table.style().pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, self.table) + 1) + 8
        width = max([header.sectionSizeHint(column), *(metrics.horizontalAdvance(t) + pad for t in texts)])
        if width > header.sectionSize(column):
            header.resizeSection(column, width)

    def _on_failed(self, message: str) -> None:
        self._restore_progress()  # a run that failed midway keeps the counts it reached
        self.status_label.setText(message)

    def _run_done(self, summary: dict) -> None:
        if self.model.sort_column >= 0:
            self.model.resort()  # rows that arrived after the user sorted were appended
        done, total = self.model.total_count(), summary["total"]
        self._show_run_progress(done, total)
        parts = [f"Stopped after {done} of {total} photos." if summary["cancelled"] else f"Done: {done} photos."]
        if self._failures:
            parts.append(f"{self._failures} could not be classified (see the Errors filter).")
        if summary["cache_hits"]:
            parts.append(f"{summary['cache_hits']} reused from an earlier run.")
        if summary["cache_error"]:
            parts.append(summary["cache_error"])
        if self._problems:
            parts.append(f"{len(self._problems)} sub-folder(s) skipped: {self._problems[0]}")
        if summary.get("other_files"):
            parts.append(summary["other_files"])
        if summary["cancelled"]:
            parts.append("Start again to resume.")
        self.status_label.setText(" ".join(parts))
        self.last_summary = dict(summary, rows=done, failures=self._failures, problems=list(self._problems))
        self.run_finished.emit(self.last_summary)

    # ---------------------------------------------------------------- results out

    @Slot(object)
    def _on_double_click(self, index) -> None:
        result = self.model.result_for(index)
        if result is not None:
            self.open_result_requested.emit(result)

    def suggested_export_path(self, fmt: str) -> Path:
        """Where the save dialog starts: the folder of this window's last export, else the user's
        Documents (not the photo folder: exporting must not add files among the photos unasked),
        and a name that says what it is: ``snakeid-<photo folder>-<date>.csv``."""
        from ..sorting import safe_folder_name

        folder = self._last_export_dir or _documents_dir()
        photos = Path(self.folder_edit.text().strip()).expanduser().name
        stem = f"snakeid-{safe_folder_name(photos)}" if photos else "snakeid-results"
        return folder / f"{stem}-{time.strftime('%Y-%m-%d')}.{fmt}"

    @Slot(str)
    def _ask_export(self, fmt: str) -> None:
        filters = "CSV files (*.csv)" if fmt == "csv" else "JSON files (*.json)"
        path, _ = QFileDialog.getSaveFileName(
            self, f"Export {fmt.upper()}", str(self.suggested_export_path(fmt)), filters)
        if path:
            self.export_to(path, fmt)

    def export_to(self, path: str | Path, fmt: str | None = None) -> bool:
        """Write every row (not only the filtered ones), atomically, in the CLI's format."""
        from ..export import export_results

        path = Path(path)
        fmt = fmt or path.suffix.lstrip(".").lower()
        QGuiApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            rows = self.model.results()
            if fmt == "json":
                export_results(rows, json_path=path)
            else:
                export_results(rows, csv_path=path)
        except OSError as exc:
            self.status_label.setText(f"Could not write {path}: {exc.strerror or exc}.")
            return False
        finally:
            QGuiApplication.restoreOverrideCursor()
        self._last_export_dir = path.parent
        self.status_label.setText(f"Exported {len(rows)} rows to {path}.")
        return True

    # ---------------------------------------------------------------- sort into folders

    @Slot()
    def _ask_sort(self) -> None:
        destination = self._choose_destination()
        if destination:
            self.sort_into(destination, move=self.move_check.isChecked())

    def _choose_destination(self) -> str:
        """The folder to sort into: an existing one, or a new one typed into the picker."""
        picker = DestinationPicker(self, "Folder to sort the photos into", self.folder_edit.text())
        return picker.chosen if picker.exec() == QDialog.DialogCode.Accepted else ""

    def _confirm_sort(self, count: int, folders: int, destination: Path, move: bool, new_folder: bool) -> bool:
        """Ask before any photo is copied or moved: how many, into how many folders, where."""
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Warning if move else QMessageBox.Icon.Question)
        photos = f"{count} photo{'s' if count != 1 else ''}"
        into = f"{folders} folder{'s' if folders != 1 else ''}"
        where = f"{destination}" + ("\n(a new folder: it will be created)" if new_folder else "")
        if move:
            box.setWindowTitle("Move the original photos?")
            box.setText(f"Move {photos} out of their folders into {into} inside:\n{where}")
            box.setInformativeText(
                "Nothing is overwritten and “Undo last sort” puts them back, but until then they are no longer "
                "where they were. Copying is the safe choice.")
            yes = box.addButton(f"Move {photos}", QMessageBox.ButtonRole.AcceptRole)
        else:
            box.setWindowTitle("Copy the photos?")
            box.setText(f"Copy {photos} into {into} inside:\n{where}")
            box.setInformativeText("The originals stay where they are. Nothing is overwritten, and "
                                   "“Undo last sort” removes the copies again.")
            yes = box.addButton(f"Copy {photos}", QMessageBox.ButtonRole.AcceptRole)
        no = box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(no if move else yes)  # Enter never moves originals
        box.setEscapeButton(no)
        box.exec()
        return box.clickedButton() is yes

    def sort_into(self, destination: str | Path, move: bool = False) -> bool:
        """Copy (or move) every row's photo into per-verdict folders under ``destination``, once the user
        has confirmed it; a destination that does not exist yet is created (with its parents)."""
        from ..sorting import category_for, folder_name_for

        if self.is_busy or self.model.total_count() == 0:
            return False
        results = self.model.results()
        destination = Path(destination).expanduser()
        problem = _destination_problem(destination)
        if problem:
            self.status_label.setText(f"{problem} Nothing was {'moved' if move else 'copied'}.")
            return False
        # One folder name per category (a name costs a Unicode normalisation: not once per 100k rows).
        first_of = {}
        for result in results:
            first_of.setdefault(category_for(result), result)
        folders = len({folder_name_for(r) for r in first_of.values()})
        if not self._confirm_sort(len(results), folders, destination, move, not os.path.lexists(destination)):
            self.status_label.setText(f"Nothing was {'moved' if move else 'copied'}.")
            return False
        from ..sorting import sort_results

        self.progress_bar.setRange(0, len(results))
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat(f"%v / %m photos {'moved' if move else 'copied'}")
        self.status_label.setText(f"{'Moving' if move else 'Copying'} {len(results)} photos into {destination}…")

        def work(report, cancel):
            last = [0.0]

            def progress(done: int) -> None:
                now = time.monotonic()
                if now - last[0] >= CHUNK_SECONDS:
                    last[0] = now
                    report(SortProgress(done, len(results)))

            return sort_results(results, destination, move=move, cancel_event=cancel, on_progress=progress)

        self._sort_destination = destination
        self._start("sort", work, self._sort_done)
        return True

    def _sort_done(self, summary) -> None:
        from ..sorting import VERDICT_FOLDERS

        self.last_sort = summary
        self._restore_progress()
        verb = "Moved" if summary.mode == "move" else "Copied"
        folders = len(summary.folders)  # every folder that got photos, errors/ included
        text = (f"{verb} {summary.done} photo{'s' if summary.done != 1 else ''} into {folders} "
                f"folder{'s' if folders != 1 else ''} in {self._sort_destination}.")
        errors = summary.folders.get(VERDICT_FOLDERS["errors"], 0)
        if errors:
            text += f" {errors} that could not be classified went into “errors”."
        if summary.cancelled:
            text += " Stopped early."
        if summary.problems:
            text += f" {len(summary.problems)} could not be {summary.mode}d: {summary.problems[0]}"
        self.status_label.setText(text + " “Undo last sort” reverses it.")

    @Slot()
    def undo_last_sort(self) -> bool:
        from ..sorting import last_manifest, undo_sort

        if self.is_busy:
            return False
        manifest = last_manifest()
        if manifest is None:
            self.status_label.setText("There is no sort to undo.")
            return False
        self._show_busy_progress()
        self.status_label.setText("Undoing the last sort…")
        self._start("undo", lambda report, cancel: undo_sort(manifest), self._undo_done)
        return True

    def _undo_done(self, summary) -> None:
        self._restore_progress()
        text = f"Undone: {summary.undone} photos."
        if summary.problems:
            text += f" {len(summary.problems)} left as they are: {summary.problems[0]}"
        self.status_label.setText(text)

    # ---------------------------------------------------------------- closing

    def stop_work(self) -> None:
        self._stop_worker()


def _classify_folder(folder: Path, recursive: bool, provider, use_cache: bool, report, cancel: threading.Event,
                     country: str = "auto") -> dict:
    """The worker-thread side of a run: FolderRun's rows, reported to the GUI in chunks."""
    from ..batch import FolderRun

    last_scan_report = time.monotonic()

    def on_scan_progress(found: int) -> None:
        nonlocal last_scan_report
        now = time.monotonic()
        if now - last_scan_report >= CHUNK_SECONDS:
            last_scan_report = now
            report(ScanProgress(found))

    run = FolderRun(folder, recursive, cancel=cancel, on_problem=lambda _path, message: report(Problem(message)),
                    on_scan_progress=on_scan_progress)
    run.scan()
    report(TotalFound(run.total))
    if not run.cancelled:
        predictor = provider()  # may block while the main window's worker finishes loading the model
        # As many candidates as the main window computes, so a row and its double-clicked card list the
        # same species as a single classification. (The venom warning does not depend on this: it is the
        # predictor's venomous probability mass over all species in play.)
        rows = run.classify(predictor, use_cache=use_cache, top_k=MAX_TOP_K, country=country)
        chunk: list[FileResult] = []
        last_report = time.monotonic()
        try:
            for result in rows:
                chunk.append(result)
                now = time.monotonic()
                if now - last_report >= CHUNK_SECONDS or len(chunk) >= CHUNK_ROWS:
                    report(RowsReady(tuple(chunk)))
                    chunk, last_report = [], now
        finally:
            if chunk:  # shown even when the run then fails its row count: the user sees what there is
                report(RowsReady(tuple(chunk)))
    return {"total": run.total, "cancelled": run.cancelled, "cache_hits": run.cache_hits,
            "cache_error": run.cache_error, "other_files": run.other_files_note()}


def _destination_problem(destination: Path) -> str | None:
    """Why ``destination`` cannot be sorted into, in one sentence, or None. A missing folder is fine
    when its nearest existing parent is a folder we may write in (the sort creates the rest)."""
    if os.path.lexists(destination):
        return None if destination.is_dir() else f"{destination} is a file, not a folder."
    parent = destination.parent
    while not os.path.lexists(parent) and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"Cannot create the folder {destination}: {parent} is a file, not a folder."
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"Cannot create the folder {destination}: you may not write in {parent}."
    return None


class DestinationPicker(QFileDialog):
    """A folder picker that also takes a folder that does not exist yet (typed in its name field).

    Qt's own folder dialog refuses a new name with "Directory not found"; here it is accepted and
    the sort creates it, after the user has confirmed. Qt's dialog rather than the platform's, so
    this works alike everywhere (the platform's may not let a new name through).
    """

    def __init__(self, parent: QWidget | None, title: str, start: str = ""):
        super().__init__(parent, title, start)
        self.setFileMode(QFileDialog.FileMode.Directory)
        self.setOption(QFileDialog.Option.ShowDirsOnly, True)
        self.setOption(QFileDialog.Option.DontUseNativeDialog, True)
        self.setAcceptMode(QFileDialog.AcceptMode.AcceptOpen)
        self.setLabelText(QFileDialog.DialogLabel.FileName, "Folder:")
        self.setAccessibleName(title)
        self.chosen = ""

    @Slot()
    def accept(self) -> None:
        files = self.selectedFiles()
        chosen = files[0] if files else ""
        if chosen and not os.path.lexists(chosen):
            self.chosen = chosen
            QDialog.accept(self)  # past QFileDialog's existence check; created later, once confirmed
            return
        super().accept()
        if self.result() == QDialog.DialogCode.Accepted:
            self.chosen = self.selectedFiles()[0] if self.selectedFiles() else ""
