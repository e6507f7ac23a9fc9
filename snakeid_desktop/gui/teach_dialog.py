"""The "Teach a species" window: folders of the user's own photos in, a report of what was learned out.

One form per species (one or more folders of its photos, its names, venom status, where it lives,
a note). "Teach" runs the core's :func:`~snakeid_desktop.teach.teach` for all of them in one call
on a :class:`~.background.BackgroundOp` (all or nothing), then makes the model answer with them
(:func:`~.taught.refit`), and shows per species the photos used and skipped, and how often the
species was recognised on its own photos when they were left out of teaching. Cancel and errors
leave everything as it was; the form stays filled so the user can fix it and try again.
"""

from __future__ import annotations

import html
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QStackedWidget,
    QTextBrowser,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..safety import venom_words
from .background import BackgroundOp, WorkDialog
from .taught import SpeciesTaught, TaughtStatus, accuracy_sentence, names_from_folder, refit

# (value the core takes, what the user reads); "unknown" first and chosen: never a silent "No".
VENOM_CHOICES = (
    ("unknown", "Unknown — treated as venomous"),
    ("yes", "Yes — venomous"),
    ("mild", "Mild — mildly venomous"),
    ("no", "No — not venomous"),
)
PROGRESS_INTERVAL_S = 0.1  # the core reports every photo: the bar is redrawn at most this often
SHOWN_PATH_CHARS = 70
ERROR_STYLE = "QLabel { color: palette(text); background-color: rgba(179, 38, 30, 40); padding: 6px; border-radius: 4px; }"


# ---------------------------------------------------------------- what the background work reports


@dataclass(frozen=True)
class TeachProgress:
    stage: str  # the core's words: "Reading photos", "Learning from the photos", ...
    done: int
    total: int


@dataclass(frozen=True)
class SpeciesEntry:
    """One form as typed; the core's ``TeachRequest`` is made (and checked) on the worker thread, so
    the GUI thread never imports the core's torch-bearing modules."""

    folders: tuple[Path, ...]
    scientific_name: str
    common_name: str
    venomous: str
    countries: tuple[str, ...]
    notes: str


@dataclass(frozen=True)
class TeachDone:
    species: tuple[SpeciesTaught, ...]
    status: TaughtStatus  # what the model answers with now
    entries: tuple[SpeciesEntry, ...] = ()  # what was asked, in the same order


def teach_in_background(provider, entries, replace_existing: bool, report, cancel: threading.Event) -> TeachDone:
    """The worker-thread side: wait for the model, teach every species, make the model answer with them."""
    from ..my_species import SpeciesStore
    from ..teach import TeachCancelled, TeachRequest, teach

    requests = [TeachRequest(e.folders, e.scientific_name, e.common_name, e.venomous, e.countries, e.notes)
                for e in entries]
    predictor = provider(cancel)
    if predictor is None:
        raise TeachCancelled()
    last = {"stage": None, "at": 0.0}

    def progress(stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if stage != last["stage"] or done >= total or now - last["at"] >= PROGRESS_INTERVAL_S:
            last.update(stage=stage, at=now)
            report(TeachProgress(stage, done, total))

    reports = teach(predictor, requests, SpeciesStore(), replace_existing=replace_existing, progress=progress,
                    cancelled=cancel.is_set)
    return TeachDone(tuple(SpeciesTaught.of(r) for r in reports), refit(predictor), tuple(entries))


def parse_countries(text: str) -> tuple[str, ...]:
    """ISO codes as typed: "PH, my  ID" -> ("PH", "MY", "ID"); the core checks them."""
    return tuple(code.upper() for code in re.split(r"[\s,;]+", text.strip()) if code)


def shown_skipped_path(path: str, folders) -> str:
    """A skipped file as the user finds it: "<folder taught from>/<path inside it>" (the whole path
    when it lies in none of them)."""
    for folder in folders:
        try:
            return str(Path(folder.name) / Path(path).relative_to(folder))
        except ValueError:
            continue
    return path


def _short_path(path: Path) -> str:
    text = str(path)
    return text if len(text) <= SHOWN_PATH_CHARS else "…" + text[-(SHOWN_PATH_CHARS - 1):]


# ---------------------------------------------------------------- one species


class SpeciesForm(QFrame):
    """What the user says about one species: its folders of photos, names, venom status, range, note."""

    remove_requested = Signal(object)  # this form

    def __init__(self, number: int, folder: Path, parent=None):
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.folders: list[Path] = []
        grid = QGridLayout(self)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)

        self.title = QLabel()
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        self.add_folder_button = QPushButton("Add another folder…")
        self.add_folder_button.setToolTip("More photos of this same species, from another folder")
        self.add_folder_button.clicked.connect(self._browse_folder)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self._on_remove_clicked)
        title_row = QHBoxLayout()
        title_row.addWidget(self.title, 1)
        title_row.addWidget(self.add_folder_button)
        title_row.addWidget(self.remove_button)
        grid.addLayout(title_row, 0, 0, 1, 4)

        self.folders_label = QLabel()
        self.folders_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        grid.addWidget(self._buddy("Photos:", self.folders_label), 1, 0)
        grid.addWidget(self.folders_label, 1, 1, 1, 3)

        self.scientific_edit = QLineEdit()
        self.scientific_edit.setPlaceholderText("e.g. Boiga dendrophila")
        self.common_edit = QLineEdit()
        self.common_edit.setPlaceholderText("e.g. Mangrove snake")
        grid.addWidget(self._buddy("&Scientific name:", self.scientific_edit), 2, 0)
        grid.addWidget(self.scientific_edit, 2, 1)
        grid.addWidget(self._buddy("C&ommon name:", self.common_edit), 2, 2)
        grid.addWidget(self.common_edit, 2, 3)

        self.venom_combo = QComboBox()
        for value, text in VENOM_CHOICES:
            self.venom_combo.addItem(text, value)
        self.venom_combo.setToolTip("As sure sources say. Unknown is treated as venomous, like every answer SnakeID "
                                    "cannot vouch for.")
        self.countries_edit = QLineEdit()
        self.countries_edit.setPlaceholderText("ISO codes, e.g. PH, MY (empty: anywhere)")
        self.countries_edit.setToolTip("Where it lives, as two-letter country codes. Left empty, SnakeID considers "
                                       "it wherever you are.")
        self.countries_edit.textChanged.connect(self._check_countries)
        grid.addWidget(self._buddy("&Venomous:", self.venom_combo), 3, 0)
        grid.addWidget(self.venom_combo, 3, 1)
        grid.addWidget(self._buddy("Coun&tries:", self.countries_edit), 3, 2)
        grid.addWidget(self.countries_edit, 3, 3)
        self.countries_hint = QLabel()
        self.countries_hint.setWordWrap(True)
        grid.addWidget(self.countries_hint, 4, 3)

        self.notes_edit = QLineEdit()
        self.notes_edit.setPlaceholderText("Optional: one line shown with its answers (e.g. where you saw it)")
        self.notes_edit.setMaxLength(500)
        grid.addWidget(self._buddy("&Notes:", self.notes_edit), 5, 0)
        grid.addWidget(self.notes_edit, 5, 1, 1, 3)

        # Qt draws a disabled field's placeholder darker than its text (it then reads as typed in):
        # while teaching runs, placeholders are as grey as the rest.
        palette = self.palette()
        palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.PlaceholderText,
                         palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text))
        self.setPalette(palette)

        self.set_number(number)
        scientific, common = names_from_folder(folder.name)
        self.scientific_edit.setText(scientific)
        self.common_edit.setText(common)
        self.add_folder(folder)
        self._check_countries()

    def _buddy(self, text: str, widget: QWidget) -> QLabel:
        label = QLabel(text)
        label.setBuddy(widget)
        widget.setAccessibleName(text.replace("&", "").rstrip(":"))
        return label

    def set_number(self, number: int) -> None:
        self.title.setText(f"Species {number}")
        self.add_folder_button.setAccessibleName(f"Add another folder of photos to species {number}")
        self.remove_button.setAccessibleName(f"Remove species {number} from this list")
        self.remove_button.setToolTip("Leave this species out (its photos are not touched)")

    def add_folder(self, folder: Path) -> None:
        if folder in self.folders:
            return
        self.folders.append(folder)
        self.folders_label.setText("\n".join(_short_path(f) for f in self.folders))
        self.folders_label.setToolTip("\n".join(str(f) for f in self.folders))
        self.folders_label.setAccessibleName("Photo folders: " + "; ".join(str(f) for f in self.folders))

    @Slot()
    def _on_remove_clicked(self) -> None:
        self.remove_requested.emit(self)

    @Slot()
    def _browse_folder(self) -> None:
        start = str(self.folders[-1].parent) if self.folders else ""
        folder = QFileDialog.getExistingDirectory(self, "Another folder of photos of this species", start)
        if folder:
            self.add_folder(Path(folder))

    @Slot()
    def _check_countries(self) -> None:
        """Say at once which countries the codes name, or which are not codes (teaching checks them again)."""
        from ..region import country_names, official_codes

        codes = parse_countries(self.countries_edit.text())
        if not codes:
            self.countries_hint.setText("Anywhere: considered wherever you are.")
            return
        unknown = sorted(set(codes) - official_codes())
        if unknown:
            self.countries_hint.setText(f"⚠ Not ISO 3166-1 country codes: {', '.join(unknown)}.")
            return
        names = dict(country_names())
        self.countries_hint.setText(", ".join(sorted({names.get(c, c) for c in codes}, key=str.casefold)))

    def entry(self) -> SpeciesEntry:
        """This form as typed (teaching checks and cleans it)."""
        return SpeciesEntry(
            tuple(self.folders), self.scientific_edit.text(), self.common_edit.text(), self.venom_combo.currentData(),
            parse_countries(self.countries_edit.text()), self.notes_edit.text(),
        )


# ---------------------------------------------------------------- the window


class TeachDialog(WorkDialog):
    taught_changed = Signal(object)  # TaughtStatus, once species were taught and the model answers with them
    job_finished = Signal()  # after the background work's thread has stopped (tests)
    my_species_requested = Signal()

    def __init__(self, parent: QWidget | None = None, *, predictor_provider: Callable[[threading.Event], object],
                 initial_folder: str | None = None):
        """``predictor_provider(cancel)``: the loaded predictor, or None once ``cancel`` is set."""
        super().__init__(parent)
        self.setWindowTitle("Teach a species - SnakeID")
        self.setModal(False)
        self.resize(900, 640)
        self._provider = predictor_provider
        self._start_folder = initial_folder or ""
        self._op: BackgroundOp | None = None
        self.forms: list[SpeciesForm] = []
        self.last_done: TeachDone | None = None
        self.setAcceptDrops(True)

        layout = QVBoxLayout(self)
        self.pages = QStackedWidget()
        layout.addWidget(self.pages, 1)
        self.pages.addWidget(self._build_form_page())
        self.pages.addWidget(self._build_report_page())
        self._update_buttons()

    # ---------------------------------------------------------------- layout

    def _build_form_page(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        intro = QLabel(
            "Teach SnakeID a species it does not know, from your own photos: one folder (or more) per species. "
            "At least 5 photos; 30 or more, of different animals from different angles, make it far more reliable. "
            "Your photos are only read, never changed or copied: SnakeID keeps only what its model saw in them."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)

        add_row = QHBoxLayout()
        self.add_button = QPushButton("Add a species folder…")
        self.add_button.setToolTip("A folder of photos of one species (photos in its sub-folders count too)")
        self.add_button.clicked.connect(self._browse_species_folder)
        self.add_many_button = QPushButton("Add one species per sub-folder…")
        self.add_many_button.setToolTip("A folder holding one sub-folder per species, each named after it")
        self.add_many_button.clicked.connect(self._browse_parent_folder)
        add_row.addWidget(self.add_button)
        add_row.addWidget(self.add_many_button)
        add_row.addStretch(1)
        layout.addLayout(add_row)

        self.forms_area = QScrollArea()
        self.forms_area.setWidgetResizable(True)
        self.forms_area.setFrameShape(QFrame.Shape.NoFrame)
        self.forms_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        holder = QWidget()
        self.forms_layout = QVBoxLayout(holder)
        self.forms_layout.setContentsMargins(0, 0, 0, 0)
        self.empty_label = QLabel("No species yet. Add a folder of photos of one species, or drop folders here "
                                  "(one species per folder).")
        self.empty_label.setWordWrap(True)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setMinimumHeight(120)
        self.forms_layout.addWidget(self.empty_label)
        self.forms_layout.addStretch(1)
        self.forms_area.setWidget(holder)
        layout.addWidget(self.forms_area, 1)

        self.replace_check = QCheckBox("Replace a species I taught before (teach it again from these photos)")
        layout.addWidget(self.replace_check)
        self.progress_bar = QProgressBar()
        self.progress_bar.setAccessibleName("Teaching progress")
        self._idle_progress()
        layout.addWidget(self.progress_bar)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status_label.setAccessibleDescription("Status of the teaching")
        layout.addWidget(self.status_label)

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.teach_button = QPushButton("Teach")
        self.teach_button.setDefault(True)
        self.teach_button.setAccessibleName("Teach these species")
        self.teach_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setAccessibleName("Cancel the teaching")
        self.cancel_button.setToolTip("Stop; nothing is changed")
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.close)
        for button in (self.teach_button, self.cancel_button, self.close_button):
            buttons.addWidget(button)
        layout.addLayout(buttons)
        return page

    def _build_report_page(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        self.report_view = QTextBrowser()
        self.report_view.setOpenLinks(False)
        self.report_view.setAccessibleName("What was taught")
        layout.addWidget(self.report_view, 3)
        self.skipped_title = QLabel("Skipped files")
        layout.addWidget(self.skipped_title)
        self.skipped_list = QTreeWidget()
        self.skipped_list.setColumnCount(2)
        self.skipped_list.setHeaderLabels(["File", "Why it was skipped"])
        self.skipped_list.setAccessibleName("Skipped files")
        self.skipped_list.setRootIsDecorated(True)
        self.skipped_list.setUniformRowHeights(True)
        self.skipped_list.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # a long path keeps its file name
        self.skipped_list.header().setStretchLastSection(True)
        self.skipped_list.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.skipped_title.setBuddy(self.skipped_list)
        layout.addWidget(self.skipped_list, 2)
        buttons = QHBoxLayout()
        self.again_button = QPushButton("Teach another species…")
        self.again_button.clicked.connect(self.new_form)
        self.my_species_button = QPushButton("My species…")
        self.my_species_button.setToolTip("Every species taught on this computer: rename, remove, share")
        self.my_species_button.clicked.connect(self.my_species_requested)
        done = QPushButton("Close")
        done.clicked.connect(self.close)
        buttons.addWidget(self.again_button)
        buttons.addWidget(self.my_species_button)
        buttons.addStretch(1)
        buttons.addWidget(done)
        layout.addLayout(buttons)
        return page

    # ---------------------------------------------------------------- the forms

    def add_species(self, folder: str | Path) -> SpeciesForm:
        """A form for one more species, its names guessed from the folder's name."""
        form = SpeciesForm(len(self.forms) + 1, Path(folder))
        form.remove_requested.connect(self._remove_form)
        self.forms.append(form)
        self.forms_layout.insertWidget(self.forms_layout.count() - 1, form)  # above the stretch
        self.empty_label.hide()
        self._start_folder = str(Path(folder).parent)
        self._update_buttons()
        self.forms_area.ensureWidgetVisible(form)
        return form

    @Slot(object)
    def _remove_form(self, form: SpeciesForm) -> None:
        if self.is_busy:
            return
        self.forms.remove(form)
        self.forms_layout.removeWidget(form)
        form.hide()  # gone from view now, not when the event loop deletes it
        form.deleteLater()
        for number, other in enumerate(self.forms, 1):
            other.set_number(number)
        self.empty_label.setVisible(not self.forms)
        self._update_buttons()

    @Slot()
    def _browse_species_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "A folder of photos of one species", self._start_folder)
        if folder:
            self.add_species(folder)

    @Slot()
    def _browse_parent_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "A folder with one sub-folder per species", self._start_folder)
        if folder:
            self.add_species_folders_in(Path(folder))

    def add_species_folders_in(self, parent: Path) -> int:
        """One form per visible sub-folder of ``parent``; returns how many were added."""
        try:
            subfolders = sorted((p for p in parent.iterdir() if p.is_dir() and not p.name.startswith(".")),
                                key=lambda p: p.name.casefold())
        except OSError as exc:
            self._show_error(f"Cannot read {parent}: {exc.strerror or exc}.")
            return 0
        if not subfolders:
            self._show_error(f"{parent} has no sub-folders: add it with “Add a species folder…” instead.")
            return 0
        for folder in subfolders:
            self.add_species(folder)
        self.status_label.setText(f"{len(subfolders)} species added from {parent}: check their names.")
        self.status_label.setStyleSheet("")
        return len(subfolders)

    @Slot()
    def new_form(self) -> None:
        """Back to an empty form (after a report)."""
        for form in list(self.forms):
            self._remove_form(form)
        self.status_label.setText("")
        self.status_label.setStyleSheet("")
        self._idle_progress()
        self.pages.setCurrentIndex(0)

    def dragEnterEvent(self, event) -> None:
        if not self.is_busy and self.pages.currentIndex() == 0 and any(
                u.isLocalFile() and Path(u.toLocalFile()).is_dir() for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event) -> None:
        folders = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        for folder in folders:
            if folder.is_dir():
                self.add_species(folder)
        event.acceptProposedAction()

    # ---------------------------------------------------------------- teaching

    @property
    def is_busy(self) -> bool:
        return self._op is not None

    def _update_buttons(self) -> None:
        busy = self.is_busy
        for widget in (self.add_button, self.add_many_button, self.replace_check, *self.forms):
            widget.setEnabled(not busy)
        self.teach_button.setEnabled(not busy and bool(self.forms))
        self.cancel_button.setEnabled(busy)

    def _idle_progress(self) -> None:
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("")
        self.progress_bar.hide()  # shown while teaching only: idle, it reads as an empty field

    def _show_error(self, message: str) -> None:
        self.status_label.setText(message)
        self.status_label.setStyleSheet(ERROR_STYLE)

    @Slot()
    def start(self) -> None:
        if self.is_busy:
            return
        if not self.forms:
            self._show_error("Add a folder of photos first: one per species.")
            return
        entries = [form.entry() for form in self.forms]
        replace_existing = self.replace_check.isChecked()
        provider = self._provider
        self.status_label.setText("Waiting for the model…")
        self.status_label.setStyleSheet("")
        self.progress_bar.setRange(0, 0)  # busy until the first count arrives
        self.progress_bar.setFormat("")
        self.progress_bar.show()

        def work(report, cancel):
            return teach_in_background(provider, entries, replace_existing, report, cancel)

        op = BackgroundOp(work, success=self._on_taught, failure=self._on_failed, progress=self._on_progress,
                          name="snakeid-teach", parent=self)
        op.finished.connect(self._on_op_finished)
        self._op = op
        self._update_buttons()
        op.start()

    @Slot()
    def cancel(self) -> None:
        if self._op is not None:
            self._op.cancel()
            self.status_label.setText("Stopping…")

    def _on_progress(self, event: TeachProgress) -> None:
        if event.done == 0 or event.total <= 1:  # no pace known yet (or a single step): busy
            self.progress_bar.setRange(0, 0)
        else:
            self.progress_bar.setRange(0, event.total)
            self.progress_bar.setValue(event.done)
        self.progress_bar.setFormat(f"{event.stage}: %v of %m" if event.total > 1 else f"{event.stage}…")
        count = len(self.forms)
        self.status_label.setText(f"Teaching {count} species… Cancel stops it, and then nothing is changed.")

    def _on_failed(self, message: str) -> None:
        self._idle_progress()
        self._show_error(message)

    def _on_taught(self, done: TeachDone) -> None:
        self.last_done = done
        self._idle_progress()
        self.status_label.setText("")
        self.status_label.setStyleSheet("")
        self._show_report(done)
        self.pages.setCurrentIndex(1)
        self.taught_changed.emit(done.status)

    @Slot()
    def _on_op_finished(self) -> None:
        self._op = None
        if not self._closing:
            self._update_buttons()
        self.job_finished.emit()

    # ---------------------------------------------------------------- the report

    def _show_report(self, done: TeachDone) -> None:
        e = html.escape
        count = len(done.species)
        seconds = done.species[0].seconds if done.species else 0.0
        parts = [f"<h3>Taught {count} species in {_duration(seconds)}</h3>"]
        for sp in done.species:
            parts.append(f"<h4>{e(sp.common_name)} (<i>{e(sp.scientific_name)}</i>) — {e(venom_words(sp.venomous))}</h4>")
            counts = [f"{sp.photos} photo{'s' if sp.photos != 1 else ''} used",
                      f"{len(sp.skipped)} skipped" + (" (listed below)" if sp.skipped else ""),
                      f"{sp.duplicates} duplicate{'s' if sp.duplicates != 1 else ''} counted once"]
            parts.append(f"<p>{e(' · '.join(counts))}</p>")
            parts.append(f"<p><b>Expected accuracy:</b> {e(accuracy_sentence(sp.correct, sp.checked))}</p>")
            if sp.warnings:
                parts.append("<ul>" + "".join(f"<li>⚠ {e(w)}</li>" for w in sp.warnings) + "</ul>")
        if done.status.error:
            parts.append(f"<p><b>⚠ {e(done.status.error)}</b></p>")
        else:
            parts.append("<p>SnakeID now answers with "
                         + ("it" if count == 1 else "them")
                         + "; the photos of this session are being answered again. Species ▸ My species lists, "
                           "renames, removes and shares what you taught.</p>")
        self.report_view.setHtml("".join(parts))

        self.skipped_list.clear()
        skipped = sum(len(sp.skipped) for sp in done.species)
        for number, sp in enumerate(done.species):
            if not sp.skipped:
                continue
            folders = done.entries[number].folders if number < len(done.entries) else ()
            top = QTreeWidgetItem([f"{sp.common_name}: {len(sp.skipped)} skipped", ""])
            for path, reason in sp.skipped:
                child = QTreeWidgetItem([shown_skipped_path(path, folders), reason])
                child.setToolTip(0, path)  # the whole path
                child.setToolTip(1, reason)
                top.addChild(child)
            self.skipped_list.addTopLevelItem(top)
            top.setExpanded(True)
        self.skipped_title.setText(f"Skipped files ({skipped})" if skipped else "No file was skipped.")
        self.skipped_list.setVisible(bool(skipped))
        if skipped:
            self.skipped_list.resizeColumnToContents(0)
            self.skipped_list.setColumnWidth(0, min(self.skipped_list.columnWidth(0), self.width() // 2))

    # ---------------------------------------------------------------- closing

    def stop_work(self) -> None:
        if self._op is not None:
            self._op.stop()  # teaching stops at its next photo; nothing is saved


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"
