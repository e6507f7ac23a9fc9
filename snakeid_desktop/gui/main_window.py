"""The main window: a drop zone, a strip of this session's photos and the result card.

Input arrives as drops, pastes or the open dialog; all of it funnels through
:meth:`MainWindow.accept_mime` / :meth:`MainWindow.open_paths`, which sort it into photos
(sent to the inference worker), folders (offered to the batch dialog) and things refused
with a message (non-images, remote URLs: the app never touches the network).
"""

from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import unquote_to_bytes

from PySide6.QtCore import QMimeData, QSize, Qt, QTimer, QUrl, Signal, Slot
from PySide6.QtGui import QAction, QGuiApplication, QIcon, QImage, QKeySequence, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
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

from ..catalogue import Catalogue, default_catalogue
from ..results import FileResult
from .inference_worker import (
    MAX_TOP_K,
    BytesSource,
    InferenceController,
    ModelInfo,
    Outcome,
    PathSource,
    PixelSource,
    Source,
)
from .country_picker import CountryPicker
from .result_card import ResultCard
from .settings import TOP_K_RANGE, AppSettings

log = logging.getLogger(__name__)

MAX_SESSION_PHOTOS = 100  # each keeps a display-size copy (<= 3 MB); older ones leave the strip
PHOTOS_KEPT = 24  # display copies kept in memory; older ones are decoded again when revisited
MAX_FILES_PER_DROP = 50  # beyond this the batch window is the right tool
ENCODED_IMAGE_MIME_TYPES = (
    "image/png",
    "image/jpeg",
    "image/webp",
    "image/heic",
    "image/heif",
    "image/avif",
    "image/gif",
    "image/bmp",
    "image/tiff",
)
REMOTE_SCHEMES = ("http", "https", "ftp", "ftps")
ID_ROLE = Qt.ItemDataRole.UserRole


def _image_extensions() -> frozenset[str]:
    from ..imageload import IMAGE_EXTENSIONS

    return frozenset(IMAGE_EXTENSIONS)


def _is_image_path(path: Path) -> bool:
    from ..imageload import is_image_path

    return is_image_path(path)


@dataclass
class SortedInput:
    """What a drop/paste contained, sorted by what we do with it."""

    sources: list[Source] = field(default_factory=list)
    folders: list[Path] = field(default_factory=list)
    not_images: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    remote: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.sources or self.folders or self.not_images or self.missing or self.remote)


def _data_url_bytes(url: str) -> bytes | None:
    """The bytes of a ``data:image/...`` URL (browsers drag inline images this way)."""
    head, _, payload = url.partition(",")
    if not head.lower().startswith("data:image/"):
        return None
    try:
        if head.lower().endswith(";base64"):
            return base64.b64decode(payload, validate=False)
        return unquote_to_bytes(payload)
    except (binascii.Error, ValueError):
        return None


def _sort_local_path(path: Path, into: SortedInput) -> None:
    if path.is_dir():
        into.folders.append(path)
    elif not path.exists():
        into.missing.append(str(path))
    elif _is_image_path(path):
        into.sources.append(PathSource(str(path)))
    else:
        into.not_images.append(path.name or str(path))


def sort_mime(mime: QMimeData, label: str = "dropped image") -> SortedInput:
    """Sort a drop or clipboard payload. Local files beat embedded image data beats text."""
    sorted_input = SortedInput()
    for url in mime.urls() if mime.hasUrls() else []:
        if url.isLocalFile():
            _sort_local_path(Path(url.toLocalFile()), sorted_input)
        elif url.scheme().lower() == "data":
            data = _data_url_bytes(url.toString())
            if data:
                sorted_input.sources.append(BytesSource(data, label))
        elif url.scheme().lower() in REMOTE_SCHEMES:
            sorted_input.remote.append(url.toString())
        else:
            sorted_input.not_images.append(url.toString())
    if sorted_input.sources or sorted_input.folders:
        return sorted_input
    # A browser drag carries both the remote URL and the image itself: use the image.
    image_source = _embedded_image(mime, label)
    if image_source is not None:
        sorted_input.sources.append(image_source)
        sorted_input.remote.clear()
        return sorted_input
    if not sorted_input.empty:
        return sorted_input
    if mime.hasText():
        _sort_text(mime.text(), sorted_input)
    return sorted_input


def _embedded_image(mime: QMimeData, label: str) -> Source | None:
    formats = set(mime.formats())
    for mime_type in ENCODED_IMAGE_MIME_TYPES:
        if mime_type in formats:
            data = bytes(mime.data(mime_type).data())
            if data:
                return BytesSource(data, label)
    if mime.hasImage():
        image = mime.imageData()
        if isinstance(image, QPixmap):
            image = image.toImage()
        if isinstance(image, QImage) and not image.isNull():
            rgba = image.convertToFormat(QImage.Format.Format_RGBA8888)
            data = bytes(rgba.constBits())[: rgba.bytesPerLine() * rgba.height()]
            if rgba.bytesPerLine() != 4 * rgba.width():  # drop row padding
                stride, row = rgba.bytesPerLine(), 4 * rgba.width()
                data = b"".join(data[y * stride : y * stride + row] for y in range(rgba.height()))
            return PixelSource(rgba.width(), rgba.height(), data, label)
    return None


def _sort_text(text: str, into: SortedInput) -> None:
    """Copied file paths (one per line, plain or file:// URLs)."""
    for line in text.splitlines():
        line = line.strip().strip('"').strip("'")
        if not line:
            continue
        lowered = line.lower()
        if lowered.startswith("file:"):
            _sort_local_path(Path(QUrl(line).toLocalFile()), into)
        elif lowered.startswith("data:image/"):
            data = _data_url_bytes(line)
            if data:
                into.sources.append(BytesSource(data, "pasted image"))
        elif lowered.split(":", 1)[0] in REMOTE_SCHEMES and "://" in lowered:
            into.remote.append(line)
        else:
            path = Path(line).expanduser()
            try:
                looks_like_path = path.is_absolute() and (path.exists() or len(line) < 1024)
            except OSError:
                looks_like_path = False
            if looks_like_path:
                _sort_local_path(path, into)


class DropZone(QFrame):
    """The big empty-state target. The whole window accepts drops; this just says so."""

    open_clicked = Signal()

    def __init__(self, parent=None):
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
        layout.addWidget(self.status)
        layout.addStretch(1)

    def _set_highlight(self, on: bool) -> None:
        # palette(highlight) keeps the colour right in light and dark themes.
        border = "palette(highlight)" if on else "palette(mid)"
        self.setStyleSheet(
            f"QFrame#drop_zone {{ border: 3px dashed {border}; border-radius: 12px; }}"
        )

    def set_drag_active(self, on: bool) -> None:
        self._set_highlight(on)


@dataclass
class SessionEntry:
    request_id: int
    source: Source
    item: QListWidgetItem
    outcome: Outcome | None = None
    error: str | None = None
    # The answer to keep when the worker's outcome arrives: set when the entry came from the
    # batch window (the worker only supplies the photo then).
    kept_result: FileResult | None = None
    photo_evicted: bool = False  # display copy dropped to save memory; re-decoded on revisit
    refresh_id: int | None = None  # request re-decoding the evicted photo
    reanswer_id: int | None = None  # request answering it again after the region changed

    @property
    def name(self) -> str:
        return self.source.name


class MainWindow(QMainWindow):
    outcome_displayed = Signal(object)  # Outcome now on the card
    message_shown = Signal(str)
    batch_dialog_opened = Signal(object)

    def __init__(
        self,
        controller: InferenceController,
        settings: AppSettings,
        catalogue: Catalogue | None = None,
        parent=None,
    ):
        super().__init__(parent)
        self.controller = controller
        self.settings = settings
        self.catalogue = catalogue or default_catalogue()
        self.entries: dict[int, SessionEntry] = {}  # by request id, oldest first
        self._refreshes: dict[int, int] = {}  # photo re-decode request id -> entry id
        self._reanswers: dict[int, int] = {}  # answer-again request id (new region) -> entry id
        self.current_id: int | None = None
        self.batch_dialog = None
        self._started = False
        self.setWindowTitle("SnakeID")
        self.setAcceptDrops(True)
        self._build_ui()
        self._build_actions()
        controller.model_loading.connect(self._on_model_loading)
        controller.model_ready.connect(self._on_model_ready)
        controller.model_failed.connect(self._on_model_failed)
        controller.request_started.connect(self._on_request_started)
        controller.outcome_ready.connect(self._on_outcome)
        controller.request_failed.connect(self._on_request_failed)
        geometry = settings.window_geometry
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1180, 760)

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
        close = QToolButton()
        close.setText("✕")
        close.setAccessibleName("Dismiss message")
        close.setToolTip("Dismiss message (Esc)")
        close.clicked.connect(self.message_bar.hide)
        bar_layout.addWidget(self.message_label, 1)
        bar_layout.addWidget(close)
        self.message_bar.hide()
        outer.addWidget(self.message_bar)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        self.session_list = QListWidget()
        self.session_list.setObjectName("session_list")
        self.session_list.setAccessibleName("Photos in this session")
        self.session_list.setIconSize(QSize(72, 72))
        self.session_list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.session_list.setWordWrap(False)
        self.session_list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        # Long names are elided to the strip's width rather than scrolled sideways.
        self.session_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.session_list.setMinimumWidth(150)
        self.session_list.currentItemChanged.connect(self._on_current_item_changed)
        splitter.addWidget(self.session_list)

        self.stack = QStackedWidget()
        self.drop_zone = DropZone()
        self.drop_zone.open_clicked.connect(self.open_dialog)
        self.card = ResultCard(self.catalogue)
        self.stack.addWidget(self.drop_zone)
        self.stack.addWidget(self.card)
        splitter.addWidget(self.stack)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([190, 990])
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
        self._action(file_menu, "&Quit", QKeySequence.StandardKey.Quit, self.close)
        edit_menu = menu.addMenu("&Edit")
        self._action(edit_menu, "&Copy result as text", QKeySequence.StandardKey.Copy, self.copy_result)
        help_menu = menu.addMenu("&Help")
        self._action(help_menu, "Show the &log folder", QKeySequence(), self.show_log_folder)
        self._action(help_menu, "&About SnakeID", QKeySequence.StandardKey.HelpContents, self.show_about)
        dismiss = QAction("Dismiss message", self)
        dismiss.setShortcut(QKeySequence(Qt.Key.Key_Escape))
        dismiss.triggered.connect(self.message_bar.hide)
        self.addAction(dismiss)

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
        self.settings.window_geometry = self.saveGeometry()
        self.settings.top_k = self.top_k_spin.value()
        self.settings.sync()
        self.hide()  # disappear at once; joining the worker can take one forward pass
        if self.batch_dialog is not None:
            self.batch_dialog.close()
        self.controller.shutdown()
        super().closeEvent(event)

    # ---------------------------------------------------------------- drag and drop, paste, open

    def dragEnterEvent(self, event) -> None:
        mime = event.mimeData()
        if mime.hasUrls() or mime.hasImage() or mime.hasText() or any(f.startswith("image/") for f in mime.formats()):
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
        return self._act_on(sorted_input, "pasted" if label.startswith("pasted") else "dropped")

    def open_paths(self, paths) -> bool:
        sorted_input = SortedInput()
        for path in paths:
            _sort_local_path(Path(path), sorted_input)
        return self._act_on(sorted_input, "given")

    def _act_on(self, sorted_input: SortedInput, verb: str) -> bool:
        notes = []
        if sorted_input.empty:
            notes.append(
                f"Nothing usable was {verb}: drop or paste a photo (JPEG, PNG, HEIC…), image files, or a folder."
            )
        if sorted_input.remote:
            notes.append(
                "SnakeID never goes online, so it cannot fetch web addresses "
                f"({_short_list(sorted_input.remote)}). Download the photo first (right-click → Save image), "
                "then drop the saved file, or copy the image itself and paste it."
            )
        if sorted_input.not_images:
            notes.append(
                f"Not a photo SnakeID can read: {_short_list(sorted_input.not_images)}. "
                f"Supported: {', '.join(sorted(e.lstrip('.') for e in _image_extensions()))}."
            )
        if sorted_input.missing:
            notes.append(f"No longer there: {_short_list(sorted_input.missing)}.")
        sources = sorted_input.sources
        if len(sources) > MAX_FILES_PER_DROP:
            notes.append(
                f"{len(sources)} photos at once is a job for the batch window (Ctrl+B); "
                f"the first {MAX_FILES_PER_DROP} were added here."
            )
            sources = sources[:MAX_FILES_PER_DROP]
        if sources:
            self.classify(sources)
        if sorted_input.folders:
            if len(sorted_input.folders) > 1:
                notes.append("One folder at a time: the batch window opened with the first one.")
            self.open_batch_dialog(str(sorted_input.folders[0]))
        if notes:
            self.show_message(" ".join(notes))
        elif sources or sorted_input.folders:
            self.message_bar.hide()
        return bool(sources or sorted_input.folders)

    @Slot()
    def open_dialog(self) -> None:
        patterns = " ".join(f"*{ext}" for ext in sorted(_image_extensions()))
        files, _ = QFileDialog.getOpenFileNames(
            self, "Open snake photos", self.settings.last_folder or str(Path.home()), f"Photos ({patterns});;All files (*)"
        )
        if files:
            self.settings.last_folder = str(Path(files[0]).parent)
            self.open_paths(files)

    # ---------------------------------------------------------------- session and requests

    def classify(self, sources: list[Source]) -> list[int]:
        ids = self.controller.submit(sources, top_k=MAX_TOP_K)
        first_item = None
        for request_id, source in zip(ids, sources):
            item = self._add_item(request_id, source)
            first_item = first_item or item
        self._trim_session()
        if first_item is not None:
            self.session_list.setCurrentItem(first_item)
        self._update_busy()
        return ids

    def _add_item(self, request_id: int, source: Source) -> QListWidgetItem:
        item = QListWidgetItem(self.style().standardIcon(QStyle.StandardPixmap.SP_FileIcon), f"{source.name}\nwaiting…")
        item.setData(ID_ROLE, request_id)
        item.setToolTip(source.path if isinstance(source, PathSource) else source.name)
        self.session_list.insertItem(0, item)  # newest at the top
        self.entries[request_id] = SessionEntry(request_id, source, item)
        return item

    def _forget(self, request_id: int) -> None:
        entry = self.entries.pop(request_id, None)
        self.controller.cancel(request_id)
        if entry is not None and entry.refresh_id is not None:
            self.controller.cancel(entry.refresh_id)
            self._refreshes.pop(entry.refresh_id, None)
        if entry is not None and entry.reanswer_id is not None:
            self.controller.cancel(entry.reanswer_id)
            self._reanswers.pop(entry.reanswer_id, None)

    def _evict_photos(self) -> None:
        """Keep display copies only for the newest photos (and the one on the card)."""
        with_photo = [
            e
            for e in self.entries.values()
            if e.outcome is not None and e.outcome.photo is not None and isinstance(e.source, PathSource)
        ]
        for entry in with_photo[: max(0, len(with_photo) - PHOTOS_KEPT)]:
            if entry.request_id != self.current_id:
                entry.outcome = replace(entry.outcome, photo=None)
                entry.photo_evicted = True

    def _trim_session(self) -> None:
        while self.session_list.count() > MAX_SESSION_PHOTOS:
            item = self.session_list.takeItem(self.session_list.count() - 1)
            self._forget(item.data(ID_ROLE))

    @Slot()
    def remove_current(self) -> None:
        item = self.session_list.currentItem()
        if item is None:
            return
        self._forget(item.data(ID_ROLE))
        self.session_list.takeItem(self.session_list.row(item))
        self._update_busy()
        if self.session_list.count() == 0:
            self._show_empty()

    @Slot()
    def clear_session(self) -> None:
        self.controller.cancel_all()
        self.entries.clear()
        self._refreshes.clear()
        self.session_list.clear()
        self._update_busy()
        self._show_empty()

    def _show_empty(self) -> None:
        self.current_id = None
        self.card.clear()
        self.stack.setCurrentWidget(self.drop_zone)

    @Slot(QListWidgetItem, QListWidgetItem)
    def _on_current_item_changed(self, current: QListWidgetItem | None, _previous) -> None:
        if current is None:
            return
        request_id = current.data(ID_ROLE)
        self.current_id = request_id
        self.controller.prioritize(request_id)  # the photo being looked at goes first
        self._render_current()

    def _render_current(self) -> None:
        entry = self.entries.get(self.current_id) if self.current_id is not None else None
        if entry is None:
            return
        self.stack.setCurrentWidget(self.card)
        if entry.outcome is not None:
            if entry.photo_evicted and entry.refresh_id is None:
                (entry.refresh_id,) = self.controller.submit([entry.source], top_k=MAX_TOP_K)
                self._refreshes[entry.refresh_id] = entry.request_id
            self.card.show_outcome(entry.outcome, self.controller.model_info, self.top_k_spin.value())
            self.outcome_displayed.emit(entry.outcome)
        elif entry.error is not None:
            self.card.show_message("Something went wrong", entry.error, entry.name)
        elif self.controller.state == "loading":
            self.card.show_pending(entry.name, "Waiting for the model to load…")
        else:
            self.card.show_pending(entry.name, "Classifying…")

    @Slot(int)
    def _on_request_started(self, request_id: int) -> None:
        entry = self.entries.get(request_id)
        if entry is not None:
            entry.item.setText(f"{entry.name}\nclassifying…")

    @Slot(object)
    def _on_outcome(self, outcome: Outcome) -> None:
        if outcome.request_id in self._reanswers:  # the same photo answered for a new region
            entry = self.entries.get(self._reanswers.pop(outcome.request_id))
            if entry is None:
                return
            entry.reanswer_id = None
            keep_photo = entry.outcome.photo if entry.outcome is not None else None
            entry.outcome = replace(outcome, request_id=entry.request_id, photo=outcome.photo or keep_photo)
            entry.kept_result = None
            self._evict_photos()
            entry.item.setText(f"{entry.name}\n{_short_verdict(outcome.result)}")
            if entry.request_id == self.current_id:
                self._render_current()
            return
        if outcome.request_id in self._refreshes:  # an evicted photo decoded again: keep the first answer
            entry = self.entries.get(self._refreshes.pop(outcome.request_id))
            if entry is not None and entry.outcome is not None:
                entry.outcome = replace(entry.outcome, photo=outcome.photo)
                entry.refresh_id = None
                entry.photo_evicted = False  # got it back, or the file is gone: either way, ask once
                if entry.request_id == self.current_id:
                    self._render_current()
            return
        entry = self.entries.get(outcome.request_id)
        if entry is None:
            return  # removed from the session meanwhile
        if entry.kept_result is not None:  # the batch window already classified it: keep its answer
            outcome = replace(outcome, result=entry.kept_result)
        entry.outcome = outcome
        self._evict_photos()
        self._update_busy()
        entry.item.setText(f"{entry.name}\n{_short_verdict(outcome.result)}")
        if outcome.thumbnail is not None:
            entry.item.setIcon(QIcon(QPixmap.fromImage(outcome.thumbnail.to_qimage())))
        if outcome.request_id == self.current_id:
            self._render_current()

    @Slot(int, str)
    def _on_request_failed(self, request_id: int, message: str) -> None:
        if request_id in self._reanswers:  # keep the earlier answer; it says which region it assumed
            entry = self.entries.get(self._reanswers.pop(request_id))
            if entry is not None:
                entry.reanswer_id = None
            log.warning("could not answer a photo again for the new region: %s", message)
            return
        if request_id in self._refreshes:
            entry = self.entries.get(self._refreshes.pop(request_id))
            if entry is not None:
                entry.refresh_id = None
            log.warning("could not decode a photo again: %s", message)
            return
        entry = self.entries.get(request_id)
        self.show_message(f"{message} (details are in the log file)")
        if entry is None:
            return
        entry.error = message
        self._update_busy()
        entry.item.setText(f"{entry.name}\nerror")
        if request_id == self.current_id:
            self._render_current()

    def _update_busy(self) -> None:
        waiting = sum(1 for e in self.entries.values() if e.outcome is None and e.error is None)
        self.queue_status.setText(f"{waiting} photo{'s' if waiting != 1 else ''} to classify" if waiting else "")
        loading = self.controller.state in ("idle", "loading")
        self.busy_indicator.setVisible(bool(waiting) or loading)

    @Slot(object)
    def _on_country_changed(self, country: str | None) -> None:
        """Answer every photo of the session again for the new region (their old answers stay until then)."""
        self.settings.country = country
        self.controller.country = country
        for entry in list(self.entries.values()):
            if entry.error is not None:
                continue
            if entry.outcome is None:
                self._resubmit_pending(entry)
                continue
            if entry.reanswer_id is not None:
                self.controller.cancel(entry.reanswer_id)
                self._reanswers.pop(entry.reanswer_id, None)
            (entry.reanswer_id,) = self.controller.submit([entry.source], top_k=MAX_TOP_K)
            self._reanswers[entry.reanswer_id] = entry.request_id

    def _resubmit_pending(self, entry: SessionEntry) -> None:
        """A photo still waiting was queued with the old region: queue it again under a new id."""
        old_id = entry.request_id
        self.controller.cancel(old_id)
        (new_id,) = self.controller.submit([entry.source], top_k=MAX_TOP_K)
        del self.entries[old_id]
        entry.request_id = new_id
        self.entries[new_id] = entry
        entry.item.setData(ID_ROLE, new_id)
        if self.current_id == old_id:
            self.current_id = new_id

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
        species = sum(1 for c in info.classes if c != "not_snake")
        self.model_status.setText(f"Model ready (version {info.version}) · {species} species")
        self.drop_zone.status.setText(f"Model ready: recognises {species} species.")
        self._update_busy()
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
        try:
            from .batch_dialog import BatchDialog
        except ImportError as exc:
            log.warning("batch dialog unavailable: %s", exc)
            self.show_message("The batch window is not available in this build of SnakeID.")
            return
        if self.batch_dialog is not None:
            self.batch_dialog.raise_()
            self.batch_dialog.activateWindow()
            if folder:
                self.show_message("The batch window is already open; choose the folder there.")
            return
        dialog = BatchDialog(
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
        dialog, self.batch_dialog = self.batch_dialog, None
        if dialog is not None:
            dialog.deleteLater()

    @Slot(object)
    def show_file_result(self, result: FileResult) -> None:
        """Show a batch row's result here: the photo is run again for the card, which keeps the row's answer."""
        source = PathSource(result.path)
        ids = self.controller.submit([source], top_k=MAX_TOP_K)
        item = self._add_item(ids[0], source)
        self.entries[ids[0]].kept_result = result
        self._trim_session()
        self.session_list.setCurrentItem(item)
        self.raise_()
        self.activateWindow()

    # ---------------------------------------------------------------- misc

    def show_message(self, text: str) -> None:
        log.info("message shown: %s", text)
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


def _short_list(items: list[str], limit: int = 3) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
