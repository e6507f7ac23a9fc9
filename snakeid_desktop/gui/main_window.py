"""The main window: a drop zone, a strip of this session's photos and the result card.

The window shows a :class:`~snakeid_desktop.session.Session` (the Qt-free model of the photos,
their answers and what is current) and forwards the inference worker's answers to it. Input
arrives as drops, pastes or the open dialog; :mod:`.intake` sorts it into photos (added to the
session), folders (offered to the batch window) and things refused with a message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QEvent, QMimeData, QObject, QSize, Qt, QTimer, QUrl, Signal, Slot
from PySide6.QtGui import QAction, QGuiApplication, QIcon, QImage, QKeySequence, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QAbstractSpinBox,
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from .. import history
from ..catalogue import Catalogue, default_catalogue
from ..region import describe_coverage
from ..safety import OTHER_SNAKE
from ..request_queue import PathSource, Source
from ..results import FileResult
from ..session import Photo, Session
from .country_picker import CountryPicker
from .drop_zone import DropZone
from .inference_worker import InferenceController, ModelInfo, Outcome
from .intake import IntakePlan, image_extensions, may_hold_input, plan_intake, sort_mime, sort_paths
from .result_card import ResultCard
from .settings import TOP_K_RANGE, AppSettings
from .taught import TaughtStatus, not_used_note

log = logging.getLogger(__name__)

ID_ROLE = Qt.ItemDataRole.UserRole  # a strip item's photo key
STRIP_ICON = 72
STRIP_MIN_WIDTH = 160
STRIP_MAX_WIDTH = 280
STRIP_MAX_FRACTION = 0.25  # of the window's width, so a small window keeps room for the card
UNDO_SECONDS = 30  # how long a removal can be undone (the removed photos' pixels are held until then)
HISTORY_SAVE_DELAY_MS = 1500  # answers arrive in bursts: write once they settle
# Keys that move through the session from anywhere in the window, but not in these widgets,
# which need them to edit (the country picker, the top-k spin box).
NAVIGATION_KEYS = (
    Qt.Key.Key_Up, Qt.Key.Key_Down, Qt.Key.Key_PageUp, Qt.Key.Key_PageDown, Qt.Key.Key_Home, Qt.Key.Key_End,
)
KEEPS_NAVIGATION_KEYS = (QLineEdit, QAbstractSpinBox, QComboBox)


class _KeepNavigationKeys(QObject):
    """Installed on editing widgets: the window's navigation shortcuts yield to their own keys.

    Accepting the ShortcutOverride makes Qt deliver the key to the widget instead of the shortcut."""

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride and event.key() in NAVIGATION_KEYS:
            event.accept()
        return False

# (parent, *, predictor_provider, initial_folder, country) -> a QDialog with ``finished`` and,
# optionally, ``open_result_requested(FileResult)``.
BatchDialogFactory = Callable[..., object]


def _real_batch_dialog() -> BatchDialogFactory:
    from .batch_dialog import BatchDialog  # on first use: a build may leave the batch window out (ImportError)

    return BatchDialog


class MainWindow(QMainWindow):
    outcome_displayed = Signal(object)  # Outcome now on the card
    message_shown = Signal(str)
    batch_dialog_opened = Signal(object)
    teach_dialog_opened = Signal(object)
    my_species_dialog_opened = Signal(object)

    def __init__(
        self,
        controller: InferenceController,
        settings: AppSettings,
        catalogue: Catalogue | None = None,
        parent=None,
        *,
        batch_dialog_factory: BatchDialogFactory | None = None,
    ):
        """``batch_dialog_factory`` builds the batch window; by default the real ``BatchDialog``."""
        super().__init__(parent)
        self.controller = controller
        self.settings = settings
        self.catalogue = catalogue or default_catalogue()
        self.session = Session(controller)
        self.history_path = history.default_history_path()
        self._history_after_key = 0  # photos up to this key were listed when history was cleared
        self._strip_width = None  # the width last given to the strip (a user's drag wins until it changes)
        self._items: dict[int, QListWidgetItem] = {}  # by photo key
        self._with_icon: set[int] = set()  # photo keys whose strip icon is their thumbnail
        self._syncing = False  # the strip is being changed to match the session: not the user
        self._batch_dialog_factory = batch_dialog_factory
        self.batch_dialog = None
        self.teach_dialog = None
        self.my_species_dialog = None
        self._started = False
        self.setWindowTitle("SnakeID")
        self.setAcceptDrops(True)
        self._build_ui()
        self._build_actions()
        self._keep_navigation_keys = _KeepNavigationKeys(self)
        for kind in KEEPS_NAVIGATION_KEYS:
            for widget in self.findChildren(kind):
                widget.installEventFilter(self._keep_navigation_keys)
        self._undo_timer = QTimer(self)
        self._undo_timer.setSingleShot(True)
        self._undo_timer.setInterval(UNDO_SECONDS * 1000)
        self._undo_timer.timeout.connect(self._undo_expired)
        self._history_timer = QTimer(self)
        self._history_timer.setSingleShot(True)
        self._history_timer.setInterval(HISTORY_SAVE_DELAY_MS)
        self._history_timer.timeout.connect(self.save_history)
        events = self.session.events
        events.added.connect(self._on_photo_added)
        events.removed.connect(self._on_photo_removed)
        events.changed.connect(self._on_photo_changed)
        events.current_changed.connect(self._on_current_changed)
        controller.model_loading.connect(self._on_model_loading)
        controller.model_ready.connect(self._on_model_ready)
        controller.model_failed.connect(self._on_model_failed)
        controller.request_started.connect(self._on_request_started)
        controller.outcome_ready.connect(self._on_outcome)
        controller.request_failed.connect(self._on_request_failed)
        for event in (events.added, events.removed, events.changed):
            event.connect(self._history_changed)
        geometry = settings.window_geometry
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1180, 760)
        if settings.remember_history:
            self._restore_history()

    @property
    def entries(self) -> Mapping[int, Photo]:
        """The session's photos by key, oldest first."""
        return self.session.photos

    def item_of(self, photo: Photo) -> QListWidgetItem:
        """The photo's row in the strip."""
        return self._items[photo.key]

    # ---------------------------------------------------------------- layout

    def _build_ui(self) -> None:
        central = QWidget()
        self.setCentralWidget(central)
        outer = QVBoxLayout(central)
        outer.setContentsMargins(8, 6, 8, 6)

        toolbar = QHBoxLayout()
        self.open_button = self._tool_button("Open photo…", "Open one or more photos (Ctrl+O)", self.open_dialog)
        self.paste_button = self._tool_button("Paste", "Paste a photo or copied file paths (Ctrl+V)", self.paste)
        self.batch_button = self._tool_button("Classify a folder…", "Classify every photo in a folder (Ctrl+B)", self.open_batch_dialog)
        for button in (self.open_button, self.paste_button, self.batch_button):
            toolbar.addWidget(button)
        toolbar.addStretch(1)
        top_k_label = QLabel("Candidates shown:")
        self.top_k_spin = QSpinBox()
        self.top_k_spin.setRange(*TOP_K_RANGE)
        self.top_k_spin.setValue(self.settings.top_k)
        self.top_k_spin.setAccessibleName("Number of candidates shown")
        top_k_label.setBuddy(self.top_k_spin)
        self.top_k_spin.valueChanged.connect(self._on_top_k_changed)
        toolbar.addWidget(top_k_label)
        toolbar.addWidget(self.top_k_spin)
        country_label = QLabel("Where are you?")
        self.country_picker = CountryPicker(self.settings.country)
        country_label.setBuddy(self.country_picker)
        self.country_picker.country_changed.connect(self._on_country_changed)
        self.controller.country = self.country_picker.country()
        toolbar.addWidget(country_label)
        toolbar.addWidget(self.country_picker)
        outer.addLayout(toolbar)

        self.message_bar = QFrame()
        self.message_bar.setObjectName("message_bar")
        self.message_bar.setFrameShape(QFrame.Shape.StyledPanel)
        bar_layout = QHBoxLayout(self.message_bar)
        bar_layout.setContentsMargins(8, 4, 4, 4)
        self.message_label = QLabel()
        self.message_label.setObjectName("message")
        self.message_label.setAccessibleName("Message")
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.undo_button = QPushButton("Undo")
        self.undo_button.setAccessibleName("Undo removal")
        self.undo_button.setToolTip("Put the photos back (Ctrl+Z)")
        self.undo_button.clicked.connect(self.undo_removal)
        self.undo_button.hide()
        close = QToolButton()
        close.setText("✕")
        close.setAccessibleName("Dismiss message")
        close.setToolTip("Dismiss message (Esc)")
        close.clicked.connect(self.message_bar.hide)
        bar_layout.addWidget(self.message_label, 1)
        bar_layout.addWidget(self.undo_button)
        bar_layout.addWidget(close)
        self.message_bar.hide()
        outer.addWidget(self.message_bar)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        self.session_list = QListWidget()
        self.session_list.setObjectName("session_list")
        self.session_list.setAccessibleName("Photos in this session")
        self.session_list.setIconSize(QSize(STRIP_ICON, STRIP_ICON))
        self.session_list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.session_list.setWordWrap(False)
        # Cut at the end: the start of a name (and of a verdict) is what tells rows apart.
        self.session_list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.session_list.setUniformItemSizes(True)  # every row as tall as the icon, whatever its text
        # Long names are elided to the strip's width rather than scrolled sideways.
        self.session_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.session_list.setMinimumWidth(STRIP_MIN_WIDTH)
        self.session_list.setMaximumWidth(STRIP_MAX_WIDTH)
        self.session_list.hide()  # shown with the first photo: until then the welcome screen has the room
        self.session_list.currentItemChanged.connect(self._on_current_item_changed)
        splitter.addWidget(self.session_list)

        self.stack = QStackedWidget()
        self.drop_zone = DropZone(coverage=describe_coverage(self.catalogue))
        self.drop_zone.open_clicked.connect(self.open_dialog)
        self.drop_zone.species_clicked.connect(self.show_about)
        self.card = ResultCard(self.catalogue)
        self.stack.addWidget(self.drop_zone)
        self.stack.addWidget(self.card)
        splitter.addWidget(self.stack)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setChildrenCollapsible(False)
        self.splitter = splitter
        outer.addWidget(splitter, 1)

        self.busy_indicator = QProgressBar()
        self.busy_indicator.setRange(0, 0)  # indeterminate: model loading or photos waiting
        self.busy_indicator.setMaximumWidth(120)
        self.busy_indicator.setMaximumHeight(12)
        self.busy_indicator.setTextVisible(False)
        self.busy_indicator.setAccessibleName("Busy")
        self.busy_indicator.hide()
        self.queue_status = QLabel("")
        self.queue_status.setObjectName("queue_status")
        self.queue_status.setAccessibleName("Photos waiting")
        self.statusBar().addPermanentWidget(self.queue_status)
        self.statusBar().addPermanentWidget(self.busy_indicator)
        self.model_status = QLabel("Model: not loaded yet")
        self.model_status.setObjectName("model_status")
        self.model_status.setAccessibleName("Model status")
        self.statusBar().addPermanentWidget(self.model_status)

    def _tool_button(self, text: str, tip: str, slot) -> QPushButton:
        button = QPushButton(text)
        button.setToolTip(tip)
        button.setAccessibleName(text.rstrip("…"))
        button.clicked.connect(slot)
        return button

    def _build_actions(self) -> None:
        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        self.open_action = self._action(file_menu, "&Open photo…", QKeySequence.StandardKey.Open, self.open_dialog)
        self.paste_action = self._action(file_menu, "&Paste photo", QKeySequence.StandardKey.Paste, self.paste)
        self.batch_action = self._action(file_menu, "Classify a &folder…", QKeySequence("Ctrl+B"), self.open_batch_dialog)
        file_menu.addSeparator()
        self._action(file_menu, "&Remove photo from list", QKeySequence.StandardKey.Delete, self.remove_current)
        self._action(file_menu, "&Clear this session", QKeySequence("Ctrl+Shift+Delete"), self.clear_session)
        file_menu.addSeparator()
        self.remember_action = self._action(file_menu, "Remember &answers between launches", QKeySequence(), self.set_remember_history)
        self.remember_action.setCheckable(True)
        self.remember_action.setChecked(self.settings.remember_history)
        self.remember_action.setToolTip(
            "Keep this list's answers (file names and results, never the photos) for the next launch"
        )
        self.clear_history_action = self._action(file_menu, "Clear &history", QKeySequence(), self.clear_history)
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", QKeySequence.StandardKey.Quit, self.close)
        edit_menu = menu.addMenu("&Edit")
        self.undo_action = self._action(edit_menu, "&Undo removal", QKeySequence.StandardKey.Undo, self.undo_removal)
        self.undo_action.setEnabled(False)
        self._action(edit_menu, "&Copy result as text", QKeySequence.StandardKey.Copy, self.copy_result)
        species_menu = menu.addMenu("&Species")
        self.teach_action = self._action(species_menu, "&Teach a species…", QKeySequence("Ctrl+T"), self.open_teach_dialog)
        self.teach_action.setToolTip("Teach SnakeID a species it does not know, from folders of your photos")
        self.my_species_action = self._action(species_menu, "&My species…", QKeySequence(), self.open_my_species_dialog)
        self.my_species_action.setToolTip("The species you taught: rename, remove, export, import")
        help_menu = menu.addMenu("&Help")
        self._action(help_menu, "Show the &log folder", QKeySequence(), self.show_log_folder)
        self._action(help_menu, "&About SnakeID", QKeySequence.StandardKey.HelpContents, self.show_about)
        dismiss = QAction("Dismiss message", self)
        dismiss.setShortcut(QKeySequence(Qt.Key.Key_Escape))
        dismiss.triggered.connect(self.message_bar.hide)
        self.addAction(dismiss)
        # Up/Down, Page Up/Down, Home/End go through the session wherever focus is (editing
        # widgets keep them: _KeepNavigationKeys); a plain list would need focus first.
        self.navigation_actions = {}
        for key in NAVIGATION_KEYS:
            action = QAction(self)
            action.setShortcut(QKeySequence(key))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            action.setData(key)
            action.triggered.connect(self._navigate)
            self.addAction(action)
            self.navigation_actions[key] = action

    def _action(self, menu, text: str, shortcut, slot) -> QAction:
        action = QAction(text, self)
        action.setShortcut(shortcut)
        # The paste/delete/copy shortcuts must work whichever child has focus.
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    # ---------------------------------------------------------------- lifecycle

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._started:
            self._started = True
            # Load right after the first paint so the window appears at once.
            QTimer.singleShot(0, self.controller.start)

    def closeEvent(self, event) -> None:
        self._history_timer.stop()
        if self.settings.remember_history:
            self.save_history()
        self.settings.window_geometry = self.saveGeometry()
        self.settings.top_k = self.top_k_spin.value()
        self.settings.sync()
        self.hide()  # disappear at once; joining the worker can take one forward pass
        for dialog in (self.batch_dialog, self.teach_dialog, self.my_species_dialog):
            if dialog is not None:
                dialog.close()  # each joins its own background work
        self.controller.shutdown()
        super().closeEvent(event)

    # ---------------------------------------------------------------- drag and drop, paste, open

    def dragEnterEvent(self, event) -> None:
        if may_hold_input(event.mimeData()):
            event.acceptProposedAction()
            self.drop_zone.set_drag_active(True)
            self.statusBar().showMessage("Release to classify (a folder opens the batch window).")
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        event.acceptProposedAction()

    def dragLeaveEvent(self, event) -> None:
        self.drop_zone.set_drag_active(False)
        self.statusBar().clearMessage()

    def dropEvent(self, event) -> None:
        self.drop_zone.set_drag_active(False)
        self.statusBar().clearMessage()
        event.acceptProposedAction()
        self.accept_mime(event.mimeData(), "dropped image")

    @Slot()
    def paste(self) -> None:
        mime = QGuiApplication.clipboard().mimeData()
        if mime is None or not mime.formats():
            self.show_message("The clipboard is empty: copy a photo, or photo files, then paste.")
            return
        self.accept_mime(mime, "pasted image")

    def accept_mime(self, mime: QMimeData, label: str) -> bool:
        """Act on a drop or paste; returns True when at least one photo or folder was taken."""
        try:
            sorted_input = sort_mime(mime, label)
        except OSError as exc:
            self.show_message(f"Could not read what was dropped: {exc}")
            return False
        return self._act_on(plan_intake(sorted_input, "pasted" if label.startswith("pasted") else "dropped"))

    def open_paths(self, paths) -> bool:
        return self._act_on(plan_intake(sort_paths(paths), "given"))

    def _act_on(self, plan: IntakePlan) -> bool:
        if plan.sources:
            self.classify(plan.sources)
        if plan.folder is not None:
            self.open_batch_dialog(str(plan.folder))
        if plan.notes:
            self.show_message(" ".join(plan.notes))
        elif plan.took_something:
            self.message_bar.hide()
        return plan.took_something

    @Slot()
    def open_dialog(self) -> None:
        patterns = " ".join(f"*{ext}" for ext in sorted(image_extensions()))
        files, _ = QFileDialog.getOpenFileNames(
            self, "Open snake photos", self.settings.last_folder or str(Path.home()), f"Photos ({patterns});;All files (*)"
        )
        if files:
            self.settings.last_folder = str(Path(files[0]).parent)
            self.open_paths(files)

    # ---------------------------------------------------------------- the session, shown

    def classify(self, sources: list[Source]) -> list[Photo]:
        """Add photos to the session in the order given; the first of them goes on the card."""
        added = self.session.add(sources)
        if added:
            self.session_list.setFocus()  # so the arrow keys and Delete act on the new photos
        return added

    @Slot()
    def remove_current(self) -> None:
        photo = self.session.current
        if photo is not None:
            self.session.remove(photo.key)
            self._offer_undo(f"Removed {photo.name}.")

    @Slot()
    def clear_session(self) -> None:
        count = len(self.session)
        if count:
            self.session.clear()
            self._offer_undo(f"Removed {count} photo{'s' if count != 1 else ''}.")

    def _offer_undo(self, text: str) -> None:
        self.show_message(text)
        self.undo_button.show()
        self.undo_action.setEnabled(True)
        self._undo_timer.start()

    @Slot()
    def undo_removal(self) -> None:
        restored = self.session.undo_removal()
        self._end_undo()
        if restored:
            self.message_bar.hide()
            self.session_list.setFocus()

    @Slot()
    def _undo_expired(self) -> None:
        self.session.forget_removal()
        if self.undo_button.isVisible():
            self.message_bar.hide()
        self._end_undo()

    def _end_undo(self) -> None:
        self._undo_timer.stop()
        self.undo_button.hide()
        self.undo_action.setEnabled(False)

    @contextmanager
    def _changing_strip(self):
        """Qt moves the strip's current item as rows come and go; the session decides, not Qt."""
        syncing, self._syncing = self._syncing, True
        try:
            yield
        finally:
            self._syncing = syncing

    def _sync_current_item(self) -> None:
        item = self._items.get(self.session.current_key) if self.session.current_key is not None else None
        with self._changing_strip():
            if item is not None and self.session_list.currentItem() is not item:
                self.session_list.setCurrentItem(item)

    def _on_photo_added(self, photo: Photo, row: int) -> None:
        item = QListWidgetItem(self._placeholder_icon(), "")
        item.setData(ID_ROLE, photo.key)
        self._items[photo.key] = item
        with self._changing_strip():
            self.session_list.insertItem(row, item)
        if photo.outcome is not None and photo.outcome.thumbnail is not None:  # put back by undo
            item.setIcon(_square_icon(photo.outcome.thumbnail.to_qimage()))
            self._with_icon.add(photo.key)
        self._set_item_text(photo)
        self.session_list.show()
        self._update_busy()

    def _on_photo_removed(self, photo: Photo) -> None:
        item = self._items.pop(photo.key)
        self._with_icon.discard(photo.key)
        with self._changing_strip():
            self.session_list.takeItem(self.session_list.row(item))
        self.session_list.setVisible(bool(self._items))
        self._fit_strip()
        self._update_busy()

    def _on_photo_changed(self, photo: Photo) -> None:
        item = self._items[photo.key]
        self._set_item_text(photo)
        thumbnail = photo.outcome.thumbnail if photo.outcome is not None else None
        if thumbnail is not None and photo.key not in self._with_icon:
            item.setIcon(_square_icon(thumbnail.to_qimage()))
            self._with_icon.add(photo.key)
        self._update_busy()
        if photo.key == self.session.current_key:
            self._render_current()

    def _placeholder_icon(self) -> QIcon:
        if getattr(self, "_placeholder", None) is None:
            side = STRIP_ICON // 2
            self._placeholder = _square_icon(self.style().standardIcon(QStyle.StandardPixmap.SP_FileIcon).pixmap(side, side).toImage())
        return self._placeholder

    def _set_item_text(self, photo: Photo) -> None:
        item = self._items[photo.key]
        text = _item_text(photo)
        item.setText(text)
        where = photo.source.path if isinstance(photo.source, PathSource) else photo.name
        item.setToolTip(f"{where}\n{text.split(chr(10), 1)[1]}")  # the whole name when the row is cut short
        self._fit_strip()

    def _fit_strip(self) -> None:
        """As wide as the longest row needs, within limits (a fraction of the window at most)."""
        list_ = self.session_list
        limit = max(STRIP_MIN_WIDTH, min(STRIP_MAX_WIDTH, int(self.width() * STRIP_MAX_FRACTION)))
        metrics = list_.fontMetrics()
        text = max(
            (metrics.horizontalAdvance(line) for item in self._items.values() for line in item.text().split("\n")),
            default=0,
        )
        chrome = STRIP_ICON + 24 + 2 * list_.frameWidth() + list_.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
        width = max(STRIP_MIN_WIDTH, min(limit, text + chrome))
        list_.setMaximumWidth(limit)
        if width != self._strip_width:
            self._strip_width = width
            total = sum(self.splitter.sizes())
            if total > width:
                self.splitter.setSizes([width, total - width])

    @Slot()
    def _navigate(self) -> None:
        key = self.sender().data()
        page = self._rows_per_page()
        steps = {
            Qt.Key.Key_Up: -1, Qt.Key.Key_Down: 1, Qt.Key.Key_PageUp: -page, Qt.Key.Key_PageDown: page,
            Qt.Key.Key_Home: -len(self.session), Qt.Key.Key_End: len(self.session),
        }[Qt.Key(key)]
        self.session.move(steps)

    def _rows_per_page(self) -> int:
        row = self.session_list.sizeHintForRow(0)
        return max(1, self.session_list.viewport().height() // row) if row > 0 else 1

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._strip_width = None  # the limit moves with the window
        self._fit_strip()

    def _on_current_changed(self, photo: Photo | None) -> None:
        self._sync_current_item()
        if photo is None:
            self._show_empty()
        else:
            self._render_current()

    def _show_empty(self) -> None:
        self.card.clear()
        self.stack.setCurrentWidget(self.drop_zone)

    @Slot(QListWidgetItem, QListWidgetItem)
    def _on_current_item_changed(self, current: QListWidgetItem | None, _previous) -> None:
        if current is None or self._syncing:
            return
        self.session.select(current.data(ID_ROLE))

    def _render_current(self) -> None:
        photo = self.session.current
        if photo is None:
            return
        self.stack.setCurrentWidget(self.card)
        if photo.outcome is not None:
            shown = photo.outcome
            if photo.display_error is not None:  # e.g. a remembered photo whose file has gone
                result = shown.result
                note = f"The photo itself could not be shown ({photo.display_error}). This is the answer it got before."
                shown = replace(shown, result=replace(result, warnings=[*result.warnings, note]))
            self.card.show_outcome(shown, self.controller.model_info, self.top_k_spin.value())
            self.outcome_displayed.emit(photo.outcome)
        elif photo.error is not None:
            self.card.show_message("Something went wrong", photo.error, photo.name)
        elif self.controller.state == "loading":
            self.card.show_pending(photo.name, "Waiting for the model to load…")
        elif photo.known_result is not None:
            self.card.show_pending(photo.name, "Opening the photo…")
        else:
            self.card.show_pending(photo.name, "Classifying…")

    def _update_busy(self) -> None:
        waiting = self.session.waiting_count()
        self.queue_status.setText(f"{waiting} photo{'s' if waiting != 1 else ''} to classify" if waiting else "")
        loading = self.controller.state in ("idle", "loading")
        self.busy_indicator.setVisible(bool(waiting) or loading)

    # ---------------------------------------------------------------- the worker's answers, to the session

    @Slot(int)
    def _on_request_started(self, request_id: int) -> None:
        self.session.started(request_id)

    @Slot(object)
    def _on_outcome(self, outcome: Outcome) -> None:
        self.session.deliver(outcome)

    @Slot(int, str)
    def _on_request_failed(self, request_id: int, message: str) -> None:
        if self.session.fail(request_id, message) is not None:
            self.show_message(f"{message} (details are in the log file)")

    @Slot(object)
    def _on_country_changed(self, country: str | None) -> None:
        """Answer every photo of the session again for the new region (their old answers stay until then)."""
        self.settings.country = country
        self.controller.country = country
        self.session.region_changed()

    @Slot(int)
    def _on_top_k_changed(self, value: int) -> None:
        self.settings.top_k = value
        self._render_current()

    # ---------------------------------------------------------------- model state

    @Slot()
    def _on_model_loading(self) -> None:
        self.model_status.setText("Model: loading…")
        self.drop_zone.status.setText("Loading the model… you can drop photos already.")
        self._update_busy()

    @Slot(object)
    def _on_model_ready(self, info: ModelInfo) -> None:
        self._show_model_status(info)
        # Said by the loaded model itself now (its classes), in place of the catalogue's line.
        self.drop_zone.coverage.hide()
        self._update_busy()
        self._render_current()
        note = not_used_note(info.taught)
        if note:  # once, at start: My species says it again for as long as it holds
            self.show_message(note)

    def _show_model_status(self, info: ModelInfo) -> None:
        species = sum(1 for c in info.classes if c not in ("not_snake", OTHER_SNAKE))
        taught = len(info.taught.in_use)
        mine = f" + {taught} taught by you" if taught else ""
        self.model_status.setText(f"Model ready (version {info.version}) · {species} species{mine}")
        self.model_status.setToolTip(f"Knows {_coverage_of(info, self.catalogue)}"
                                     + (f", and {taught} species taught by you (Species ▸ My species)" if taught else "")
                                     + ". Help ▸ About SnakeID lists them.")
        self.drop_zone.status.setText(f"Model ready: knows {_coverage_of(info, self.catalogue)}"
                                      + (f", and {taught} species taught by you" if taught else "") + ".")

    # ---------------------------------------------------------------- species taught by the user

    @staticmethod
    def _raised(dialog) -> bool:
        """Bring a dialog that is already open to the front; False when there is none."""
        if dialog is None:
            return False
        dialog.raise_()
        dialog.activateWindow()
        return True

    def _release(self, attribute: str) -> None:
        """Forget a closed dialog (one window of each kind) and let Qt delete it."""
        dialog = getattr(self, attribute)
        setattr(self, attribute, None)
        if dialog is not None:
            dialog.deleteLater()

    @Slot()
    def open_teach_dialog(self) -> None:
        if self._raised(self.teach_dialog):
            return
        from .teach_dialog import TeachDialog  # on first use: most sessions never teach

        dialog = TeachDialog(self, predictor_provider=self.controller.predictor_unless_cancelled,
                             initial_folder=self.settings.last_folder)
        dialog.taught_changed.connect(self._on_taught_changed)
        dialog.my_species_requested.connect(self.open_my_species_dialog)
        dialog.finished.connect(self._on_teach_dialog_finished)
        self.teach_dialog = dialog
        self.teach_dialog_opened.emit(dialog)
        dialog.show()

    @Slot(int)
    def _on_teach_dialog_finished(self, _result: int) -> None:
        self._release("teach_dialog")

    @Slot()
    def open_my_species_dialog(self) -> None:
        if self._raised(self.my_species_dialog):
            return
        from .my_species_dialog import MySpeciesDialog

        dialog = MySpeciesDialog(self, predictor_provider=self.controller.predictor_unless_cancelled)
        dialog.taught_changed.connect(self._on_taught_changed)
        dialog.teach_requested.connect(self.open_teach_dialog)
        dialog.finished.connect(self._on_my_species_dialog_finished)
        self.my_species_dialog = dialog
        self.my_species_dialog_opened.emit(dialog)
        dialog.show()

    @Slot(int)
    def _on_my_species_dialog_finished(self, _result: int) -> None:
        self._release("my_species_dialog")

    @Slot(object)
    def _on_taught_changed(self, status: TaughtStatus) -> None:
        """The model now answers over another set of taught species: say so, and answer this session's
        photos again, exactly as for a new "Where are you?" (their answers assumed the old set)."""
        info = self.controller.model_info
        unchanged = info is not None and info.taught.in_use == status.in_use
        self.controller.set_taught_status(status)
        if self.my_species_dialog is not None and self.sender() is not self.my_species_dialog:
            self.my_species_dialog.show_status(status)
        if info is None:
            return
        self._show_model_status(self.controller.model_info)
        if unchanged:
            return
        self.session.region_changed()
        self._render_current()

    @Slot(str)
    def _on_model_failed(self, message: str) -> None:
        self.model_status.setText("No model")
        self.drop_zone.status.setText(
            f"{message}\nPhotos cannot be identified until a model is installed "
            "(reinstall the app, or start it with --weights pointing at a model folder)."
        )
        # White on red reads on light and dark palettes alike.
        self.drop_zone.status.setStyleSheet(
            "QLabel { background-color: #b3261e; color: white; font-weight: bold; padding: 8px; border-radius: 4px; }"
        )
        self._update_busy()
        self.show_message(message)

    # ---------------------------------------------------------------- batch window

    @Slot()
    def open_batch_dialog(self, folder: str | None = None) -> None:
        if not isinstance(folder, str):  # clicked() passes a bool
            folder = None
        factory = self._batch_dialog_factory
        if factory is None:
            try:
                factory = _real_batch_dialog()
            except ImportError as exc:
                log.warning("batch dialog unavailable: %s", exc)
                self.show_message("The batch window is not available in this build of SnakeID.")
                return
        if self._raised(self.batch_dialog):
            if folder:
                self.show_message("The batch window is already open; choose the folder there.")
            return
        dialog = factory(
            self, predictor_provider=self.controller.predictor, initial_folder=folder or self.settings.last_folder,
            country=self.country_picker.country(),
        )
        if hasattr(dialog, "open_result_requested"):
            dialog.open_result_requested.connect(self.show_file_result)
        dialog.finished.connect(self._on_batch_dialog_finished)
        self.batch_dialog = dialog
        if folder:
            self.settings.last_folder = folder
        self.batch_dialog_opened.emit(dialog)
        dialog.show()

    @Slot(int)
    def _on_batch_dialog_finished(self, _result: int) -> None:
        self._release("batch_dialog")

    @Slot(object)
    def show_file_result(self, result: FileResult) -> None:
        """Show a batch row's result here; the photo is only decoded for the card, not re-classified.
        A photo already listed is selected again rather than listed twice."""
        self.session.add_answered(PathSource(result.path), result)
        self.session_list.setFocus()
        self.raise_()
        self.activateWindow()

    # ---------------------------------------------------------------- history between launches

    def _restore_history(self) -> None:
        entries, current = history.load(self.history_path, self.session.max_photos)
        if not entries:
            return
        photos = self.session.add_known([(PathSource(path), result) for path, result in entries])
        found = next((p for p in photos if current is not None and p.source.path == current), None)
        if found is not None:
            self.session.select(found.key)
        self.session_list.setFocus()
        log.info("history: %d photo(s) listed again from %s", len(photos), self.history_path)

    def _history_changed(self, *_args) -> None:
        if self.settings.remember_history:
            self._history_timer.start()  # restarted by each change: one write once they settle

    @Slot()
    def save_history(self) -> bool:
        """Write the session's answers to the history file now; False (logged) if it could not be."""
        current = self.session.current
        entries = history.entries_of(self.session, after_key=self._history_after_key)
        current_path = current.source.path if current is not None and isinstance(current.source, PathSource) else None
        try:
            history.save(self.history_path, entries, current_path)
        except OSError as exc:
            log.warning("history not saved to %s: %s", self.history_path, exc)
            return False
        return True

    @Slot(bool)
    def set_remember_history(self, on: bool) -> None:
        """On: keep the answers from now on. Off: nothing is kept, and what was kept is deleted."""
        self.settings.remember_history = on
        self.settings.sync()
        if self.remember_action.isChecked() != on:
            self.remember_action.setChecked(on)
        if on:
            self.save_history()
        else:
            self._history_timer.stop()
            history.delete(self.history_path)

    @Slot()
    def clear_history(self) -> None:
        """Delete the stored answers; the photos listed now are not stored again (new ones are)."""
        self._history_timer.stop()
        history.delete(self.history_path)
        self._history_after_key = self.session.last_key
        self.statusBar().showMessage("History cleared: the photos listed now will not be remembered.", 5000)

    # ---------------------------------------------------------------- misc

    def show_message(self, text: str) -> None:
        log.info("message shown: %s", text)
        self.undo_button.hide()  # an undo offer shows it again after this; Ctrl+Z keeps working meanwhile
        self.message_label.setText(text)
        self.message_bar.show()
        self.message_shown.emit(text)

    @Slot()
    def copy_result(self) -> None:
        if self.stack.currentWidget() is self.card and self.card.outcome is not None:
            QGuiApplication.clipboard().setText(self.card.plain_text())
            self.statusBar().showMessage("Result copied to the clipboard.", 3000)

    @Slot()
    def show_log_folder(self) -> None:
        from PySide6.QtGui import QDesktopServices

        from .. import paths

        folder = paths.user_log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))  # a local folder: no network involved

    @Slot()
    def show_about(self) -> None:
        from .about import AboutDialog

        AboutDialog(self.controller.model_info, self.controller.model_error, self.catalogue, self).exec()


def _square_icon(image: QImage) -> QIcon:
    """``image`` fitted into a full, square icon (at 2x for sharp HiDPI thumbnails). Rows take their
    size from one item (uniform sizes), so every icon must be the same size or some get clipped."""
    side = 2 * STRIP_ICON
    canvas = QPixmap(side, side)
    canvas.fill(Qt.GlobalColor.transparent)
    fit = side // 2 if max(image.width(), image.height()) <= STRIP_ICON else side  # a file icon: not blown up
    scaled = image.scaled(fit, fit, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    painter = QPainter(canvas)
    painter.drawImage((side - scaled.width()) // 2, (side - scaled.height()) // 2, scaled)
    painter.end()
    canvas.setDevicePixelRatio(2.0)
    return QIcon(canvas)


def _coverage_of(info: ModelInfo, catalogue: Catalogue) -> str:
    """What the loaded model knows, e.g. "19 species from the Philippines and southern Africa"."""
    from dataclasses import replace as with_fields

    known = {slug: catalogue.species[slug] for slug in info.classes if slug in catalogue.species}
    return describe_coverage(with_fields(catalogue, species=known))


def _item_text(photo: Photo) -> str:
    """The strip's two lines for a photo: its name, then where it stands."""
    if photo.display_error is not None and photo.outcome is not None:
        missing = "file missing" if photo.display_error_kind == "not_found" else "photo unreadable"
        return f"{photo.name}\n{_short_verdict(photo.outcome.result)} · {missing}"
    if photo.error is not None:
        status = "error"
    elif photo.outcome is not None:
        status = _short_verdict(photo.outcome.result)
    elif photo.known_result is not None:  # answered by the batch window; the photo is on its way
        status = _short_verdict(photo.known_result)
    else:
        status = "classifying…" if photo.started else "waiting…"
    return f"{photo.name}\n{status}"


def _short_verdict(result: FileResult) -> str:
    pred = result.prediction
    if pred is None:
        return {"no_model": "no model", "model_output": "no answer"}.get(result.error_kind, "could not read")
    if pred.verdict == "outside_coverage":
        return "⚠ outside coverage"
    if pred.verdict == "not_snake":
        return "⚠ not a snake?" if pred.risk else "not a snake"
    if pred.verdict == "unsure":
        return "⚠ not sure" if pred.risk else "not sure"
    best = pred.best
    mark = "⚠ " if pred.risk else ""
    return f"{mark}{best.common_name}" if best else "?"
