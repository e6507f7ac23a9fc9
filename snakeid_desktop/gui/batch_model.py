"""Table model for the batch window: one row per FileResult, appended in chunks, thumbnails on demand.

No widget per row: a view asks only for the rows on screen, so 100k rows cost a list of
results plus a path -> row index. Rows arrive in chunks (one ``beginInsertRows`` each).
Thumbnails are decoded on a single background thread the first time a row is painted and
kept in a bounded LRU cache of QPixmaps (created on the GUI thread only).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
    Slot,
)
from PySide6.QtGui import QBrush, QColor, QImage, QPixmap

from ..export import verdict_probability
from ..results import FileResult
from ..safety import VERDICT_LABELS, counts_as_venomous, venom_words
from .taught import TAUGHT_MARK

log = logging.getLogger(__name__)

COL_PATH, COL_VERDICT, COL_SPECIES, COL_PROBABILITY, COL_VENOM_PROBABILITY, COL_VENOM, COL_NOTES = range(7)
HEADERS = ("Photo", "Verdict", "Species", "Confidence in verdict", "Venomous chance", "Venom", "Warnings / error")
# Two-line headers over the narrow number columns, so their width is the numbers', not the words'.
# Screen readers get HEADERS (AccessibleTextRole).
SHOWN_HEADERS = tuple(h.replace(" ", "\n", 1) if i in (COL_PROBABILITY, COL_VENOM_PROBABILITY) else h
                      for i, h in enumerate(HEADERS))
# The numbers' definitions, shown as header tooltips: the same as the CSV's verdict_probability and
# venom_probability columns (see export.py).
HEADER_TIPS = {
    COL_PROBABILITY: "How likely the verdict is: the named species' probability for Species and Unsure, "
                     "the probability that there is no snake for Not a snake (the CSV's verdict_probability)",
    COL_VENOM_PROBABILITY: "How likely a venomous snake is, all venomous species together "
                           "(the CSV's venom_probability); the venom warning depends on this",
}
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
RESULT_ROLE = Qt.ItemDataRole.UserRole + 2
THUMB_SIDE = 40
ERROR_COLOUR = QColor(179, 38, 30)


def verdict_key(result: FileResult) -> str:
    """``species`` / ``unsure`` / ``not_snake`` / ``error``: the filter's vocabulary."""
    if not result.ok or result.prediction is None:
        return "error"
    return result.prediction.verdict


def shown_species(result: FileResult):
    """The species a row names: the top candidate for ``species`` and ``unsure``, none otherwise."""
    pred = result.prediction
    if not result.ok or pred is None or pred.verdict == "not_snake":
        return None
    return pred.best


def confidence(result: FileResult) -> float | None:
    """Confidence in the row's verdict: exactly the CSV's ``verdict_probability`` (one definition)."""
    return verdict_probability(result)


def venom_chance(result: FileResult) -> float | None:
    """The row's ``venom_probability``; None on error or outside coverage (nothing to weigh)."""
    return result.prediction.venom_probability if result.ok and result.prediction is not None else None


def _percent(value: float | None) -> str:
    return f"{value * 100:.1f} %" if value is not None else ""


class ThumbnailLoader(QObject):
    """Decodes small thumbnails off the GUI thread; QPixmaps are made here, on the GUI thread."""

    thumbnail_ready = Signal(str)  # path
    _decoded = Signal(str, object)  # path, (w, h, rgb bytes) or None; crosses from the pool thread

    def __init__(self, side: int = THUMB_SIDE, capacity: int = 2000, parent=None):
        super().__init__(parent)
        self.side = side
        self.capacity = capacity
        self._cache: OrderedDict[str, QPixmap | None] = OrderedDict()
        self._pending: set[str] = set()
        # One thread: thumbnails are a nicety and must not compete with a running batch.
        self._pool: ThreadPoolExecutor | None = ThreadPoolExecutor(1, thread_name_prefix="snakeid-thumbs")
        self._decoded.connect(self._on_decoded)

    def get(self, path: str) -> QPixmap | None:
        """The cached thumbnail, or None (and a decode is queued unless one already failed)."""
        if path in self._cache:
            self._cache.move_to_end(path)
            return self._cache[path]
        if path not in self._pending and self._pool is not None:
            self._pending.add(path)
            self._pool.submit(self._decode, path)
        return None

    def _decode(self, path: str) -> None:
        pixels = None
        try:
            from ..imageload import load_image

            image = load_image(path, min_side=self.side).image
            image.thumbnail((self.side, self.side))
            pixels = (image.width, image.height, image.tobytes())
        except Exception as exc:  # a failed thumbnail is only a missing icon
            log.debug("no thumbnail for %s: %s", path, exc)
        try:
            self._decoded.emit(path, pixels)
        except RuntimeError:
            pass  # the loader was deleted while this decode ran

    @Slot(str, object)
    def _on_decoded(self, path: str, pixels) -> None:
        self._pending.discard(path)
        pixmap = None
        if pixels is not None:
            w, h, data = pixels
            pixmap = QPixmap.fromImage(QImage(data, w, h, 3 * w, QImage.Format.Format_RGB888).copy())
        self._cache[path] = pixmap
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        self.thumbnail_ready.emit(path)

    def shutdown(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


class BatchResultsModel(QAbstractTableModel):
    """All results of a run; shows the ones passing the filters, in the chosen order.

    Sorting and filtering live here rather than in a QSortFilterProxyModel: a Python key
    sort or list filter over 100k rows takes a fraction of a second, where the proxy calls
    back into Python for every comparison and every row (measured: 12 s to sort 100k rows,
    1-2.6 s per filter change). Rows arriving while sorted are appended at the end; the
    dialog calls :meth:`resort` when the run ends.
    """

    def __init__(self, thumbnails: ThumbnailLoader | None = None, parent=None):
        super().__init__(parent)
        self._arrival: list[FileResult] = []  # every result, in scan order
        self._rows: list[FileResult] = []  # those shown, in display order
        self._row_of: dict[str, int] = {}  # path -> shown row (thumbnail updates)
        self._key_cache: dict[int, list] = {}  # column -> sort key per result in _arrival
        self.sort_column = -1
        self.sort_order = Qt.SortOrder.AscendingOrder
        self.verdict_filter: str | None = None  # species / unsure / not_snake / error / risk
        self.species_filter: str | None = None
        self.min_confidence = 0.0
        self.root: Path | None = None  # paths are shown relative to it
        self.thumbnails = thumbnails
        if thumbnails is not None:
            thumbnails.thumbnail_ready.connect(self._on_thumbnail)

    # -- content

    def append_results(self, results: Sequence[FileResult]) -> None:
        if not results:
            return
        self._arrival.extend(results)
        shown = [r for r in results if self.accepts(r)]
        if not shown:
            return
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(shown) - 1)
        for offset, result in enumerate(shown):
            self._row_of[result.path] = first + offset
        self._rows.extend(shown)
        self.endInsertRows()

    def clear(self) -> None:
        self.beginResetModel()
        self._rows = []
        self._arrival = []
        self._row_of = {}
        self._key_cache = {}
        self.endResetModel()

    def results(self) -> list[FileResult]:
        """Every result in scan order, whatever the filters show (exports and sorting use this)."""
        return list(self._arrival)

    def total_count(self) -> int:
        return len(self._arrival)

    def result_at(self, row: int) -> FileResult:
        return self._rows[row]

    def result_for(self, index) -> FileResult | None:
        if isinstance(index, QPersistentModelIndex):
            index = self.index(index.row(), index.column())
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        return self._rows[index.row()]

    # -- filtering

    def set_verdict(self, verdict: str | None) -> None:
        self.verdict_filter = verdict or None
        self._rebuild(reset=True)

    def set_species(self, slug: str | None) -> None:
        self.species_filter = slug or None
        self._rebuild(reset=True)

    def set_min_probability(self, value: float) -> None:
        self.min_confidence = float(value)
        self._rebuild(reset=True)

    def accepts(self, result: FileResult) -> bool:
        if self.verdict_filter:
            if self.verdict_filter == "risk":
                if not result.ok or result.prediction is None or not result.prediction.risk:
                    return False
            elif verdict_key(result) != self.verdict_filter:
                return False
        if self.species_filter:
            species = shown_species(result)
            if species is None or species.species != self.species_filter:
                return False
        if self.min_confidence > 0:
            value = confidence(result)
            if value is None or value < self.min_confidence:
                return False
        return True

    # -- sorting

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        self.sort_column, self.sort_order = column, order
        self.resort()

    def resort(self) -> None:
        self._rebuild(reset=False)

    def _sort_keys(self, column: int) -> list:
        """Sort keys of every result for ``column``, computed once per row (sorting 100k rows
        then takes a C-level list sort instead of 1.7 million Python key calls)."""
        keys = self._key_cache.setdefault(column, [])
        if len(keys) < len(self._arrival):
            keys.extend(self._sort_value(r, column) for r in self._arrival[len(keys):])
        return keys

    def _filtering(self) -> bool:
        return bool(self.verdict_filter or self.species_filter or self.min_confidence > 0)

    def _rebuild(self, reset: bool) -> None:
        """Recompute the shown rows. A sort keeps the selection (layout change); a filter resets."""
        arrival = self._arrival
        if self._filtering():
            order = [i for i, r in enumerate(arrival) if self.accepts(r)]
        else:
            order = list(range(len(arrival)))
        if self.sort_column >= 0:
            keys = self._sort_keys(self.sort_column)
            order.sort(key=keys.__getitem__, reverse=self.sort_order == Qt.SortOrder.DescendingOrder)
        rows = [arrival[i] for i in order]
        if reset or len(rows) != len(self._rows):
            self.beginResetModel()
            self._rows = rows
            self._row_of = {r.path: i for i, r in enumerate(rows)}
            self.endResetModel()
            return
        self.layoutAboutToBeChanged.emit()
        persistent = self.persistentIndexList()
        held = [(self._rows[i.row()], i.column()) for i in persistent]
        self._rows = rows
        self._row_of = {r.path: i for i, r in enumerate(rows)}
        position = {id(r): i for i, r in enumerate(rows)}
        self.changePersistentIndexList(persistent, [self.index(position[id(r)], c) for r, c in held])
        self.layoutChanged.emit()

    # -- Qt model API

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(HEADERS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return SHOWN_HEADERS[section]
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return HEADERS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return HEADER_TIPS.get(section)
        return None

    def _shown_path(self, result: FileResult) -> str:
        if self.root is not None:
            try:
                return str(Path(result.path).relative_to(self.root))
            except ValueError:
                pass
        return result.path

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        result = self._rows[index.row()]
        col = index.column()
        if role == RESULT_ROLE:
            return result
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(result, col)
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return self._spoken(result, col)
        if role == SORT_ROLE:
            return self._sort_value(result, col)
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == COL_PATH:
                return result.path
            if col == COL_NOTES:
                return self._display(result, col) or None
            if col == COL_VENOM and result.prediction is not None and result.prediction.risk:
                return "The venom warning is on: a venomous snake is likely enough to treat this one as dangerous."
            return None
        if role == Qt.ItemDataRole.DecorationRole and col == COL_PATH and self.thumbnails is not None:
            return self.thumbnails.get(result.path)
        if role == Qt.ItemDataRole.ForegroundRole:
            if not result.ok or (col == COL_VENOM and result.prediction is not None and result.prediction.risk):
                return QBrush(ERROR_COLOUR)
            return None
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (COL_PROBABILITY, COL_VENOM_PROBABILITY):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def text_for(self, result: FileResult, col: int) -> str:
        """The text ``result`` shows in column ``col`` (what DisplayRole gives for its cell)."""
        return self._display(result, col)

    def _display(self, result: FileResult, col: int) -> str:
        pred = result.prediction if result.ok else None
        species = shown_species(result)
        if col == COL_PATH:
            return self._shown_path(result)
        if col == COL_VERDICT:
            return VERDICT_LABELS.get(pred.verdict, pred.verdict) if pred is not None else "Error"
        if col == COL_SPECIES:
            if species is None:
                return ""
            name = f"{species.common_name} ({species.scientific_name})"
            name = name if pred.verdict == "species" else f"{name}?"
            return name + TAUGHT_MARK if species.taught else name
        if col == COL_PROBABILITY:
            return _percent(confidence(result))
        if col == COL_VENOM_PROBABILITY:
            if pred is not None and pred.verdict == "outside_coverage":
                return "Unknown"  # no species in play to weigh; the Venom column says to treat it as venomous
            return _percent(venom_chance(result))
        if col == COL_VENOM:
            if pred is None:
                return ""
            named_venomous = species is not None and counts_as_venomous(species.venomous)
            if pred.risk:  # the predictor's warning, in the table's words
                return f"⚠ {venom_words(species.venomous).capitalize()}" if named_venomous else "⚠ May be venomous"
            return venom_words(species.venomous).capitalize() if species is not None else ""
        if col == COL_NOTES:
            if not result.ok:
                return result.error or "Failed"
            return " | ".join(result.warnings)
        return ""

    def _spoken(self, result: FileResult, col: int) -> str:
        """What a screen reader says for a cell: the shown text, with what colour, icon or symbol
        alone would tell put into words (the warning sign, the red of an error, an empty cell)."""
        text = self._display(result, col)
        if col == COL_VENOM and text.startswith("⚠"):
            return "Venom warning: " + text.lstrip("⚠ ")
        if col == COL_VERDICT and not result.ok:
            return "Error: could not be classified"
        if text or col in (COL_PATH, COL_NOTES):
            return text
        if not result.ok:
            return "No result"
        return {COL_SPECIES: "No species named", COL_VENOM: "No venom warning"}.get(col, "Not applicable")

    def _sort_value(self, result: FileResult, col: int):
        if col in (COL_PROBABILITY, COL_VENOM_PROBABILITY):
            value = confidence(result) if col == COL_PROBABILITY else venom_chance(result)
            return value if value is not None else -1.0
        if col == COL_VENOM:
            # Risky rows first when sorted descending.
            pred, species = result.prediction if result.ok else None, shown_species(result)
            return (2 if pred is not None and pred.risk else 0) + (1 if species and counts_as_venomous(species.venomous) else 0)
        return self._display(result, col).casefold()

    @Slot(str)
    def _on_thumbnail(self, path: str) -> None:
        row = self._row_of.get(path)
        if row is not None and row < len(self._rows):
            index = self.index(row, COL_PATH)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])
