"""The result card: the photo and what the model thinks, written for a frightened reader.

Order of importance, top to bottom: a risk warning (when any venomous candidate is plausible),
the headline (species / "Not sure" / "not a snake"), a venom badge with words and colour,
the top candidates as bars, what to do if bitten, the species' medical significance, how
often the model was right on that species in validation, loader warnings. The disclaimer
stays visible below the scrolling part.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QFont, QFontMetrics, QImage, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from ..catalogue import Catalogue, SpeciesInfo, default_catalogue, taught_info
from ..results import Candidate, FileResult
from ..safety import assumption_text, counts_as_venomous, format_percent, venom_words, warning_text

from .inference_worker import NO_MODEL_KIND, ModelInfo, Outcome
from .taught import TAUGHT_MARK, accuracy_sentence

READING_WIDTH_PX = 760
FIRST_AID_UP_FRONT = 3  # steps shown before the candidates; the rest follow them
SHORT_DISCLAIMER = "An identification aid, not a medical diagnosis: if someone is bitten, get medical help now."

# Badge colours pass WCAG AA with white text on both light and dark window backgrounds;
# the text always says the status too, so colour is never the only signal.
BADGE_STYLES = {
    "yes": ("VENOMOUS", "#b3261e"),
    "mild": ("MILDLY VENOMOUS", "#9a4a00"),
    "no": ("NOT VENOMOUS", "#1e6b2f"),
    "unknown": ("VENOM STATUS UNKNOWN: TREAT AS VENOMOUS", "#9a4a00"),
    # A harmless species is named but the warning is on: never green.
    "uncertain": ("MAY BE VENOMOUS: TREAT AS VENOMOUS", "#9a4a00"),
}


class PhotoView(QWidget):
    """Draws a QImage scaled to fit, keeping its aspect, sharp on high-DPI screens."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._image: QImage | None = None
        self._cache: QPixmap | None = None
        self.setMinimumSize(200, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAccessibleName("Photo")

    def set_image(self, image: QImage | None, description: str = "") -> None:
        self._image = image if image is not None and not image.isNull() else None
        self._cache = None
        self.setAccessibleDescription(description)
        self.update()

    def has_image(self) -> bool:
        return self._image is not None

    def sizeHint(self) -> QSize:
        return QSize(480, 400)

    def resizeEvent(self, event) -> None:
        self._cache = None
        super().resizeEvent(event)

    def _target_rect(self) -> QRectF:
        w, h = self.width(), self.height()
        iw, ih = self._image.width(), self._image.height()
        scale = min(w / iw, h / ih)
        tw, th = iw * scale, ih * scale
        return QRectF((w - tw) / 2, 0, tw, th)  # top-aligned, level with the headline

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        if self._image is None:
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No photo")
            return
        target = self._target_rect()
        dpr = self.devicePixelRatioF()
        if self._cache is None:
            size = QSize(max(1, round(target.width() * dpr)), max(1, round(target.height() * dpr)))
            scaled = self._image.scaled(size, Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.SmoothTransformation)
            self._cache = QPixmap.fromImage(scaled)
            self._cache.setDevicePixelRatio(dpr)
        painter.drawPixmap(target.topLeft(), self._cache)


def _label(text: str = "", *, wrap: bool = True, selectable: bool = True, name: str | None = None) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(wrap)
    label.setTextFormat(Qt.TextFormat.PlainText)
    if selectable:
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if name:
        label.setObjectName(name)
        label.setAccessibleDescription(name.replace("_", " "))  # its role; the name is its text
    if text:
        label.setAccessibleName(text)
    return label


def _set_text(label: QLabel, text: str) -> None:
    """Visible text and what a screen reader reads are always the same words."""
    label.setText(text)
    label.setAccessibleName(text)


def _scaled_font(widget: QWidget, factor: float, bold: bool = False):
    font = widget.font()
    size = font.pointSizeF()
    if size > 0:
        font.setPointSizeF(size * factor)
    font.setBold(bold)
    return font


class CandidateRow(QWidget):
    def __init__(self, rank: int, candidate: Candidate, accuracy: float | None, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 2, 0, 2)
        layout.setSpacing(1)
        venom = venom_words(candidate.venomous)
        mark = TAUGHT_MARK if candidate.taught else ""
        text = f"{rank}. {candidate.common_name} ({candidate.scientific_name}) · {venom}{mark}"
        self.name_label = _label(text)
        layout.addWidget(self.name_label)
        bar_row = QHBoxLayout()
        bar_row.setSpacing(8)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setValue(round(candidate.probability * 1000))
        self.bar.setTextVisible(False)  # the figure sits beside the bar, readable on any colour
        self.bar.setFixedHeight(14)
        spoken = format_percent(candidate.probability).replace("%", " percent")
        self.bar.setAccessibleName(f"{candidate.common_name}{mark}, {venom}, {spoken}")
        self.bar.setAccessibleDescription(f"probability of {candidate.common_name} ({candidate.scientific_name})")
        # One stylesheet for every bar so they render alike; venomous ones are red, and say so in words.
        chunk = "#b3261e" if counts_as_venomous(candidate.venomous) else "palette(highlight)"
        self.bar.setStyleSheet(
            "QProgressBar { border: 1px solid palette(mid); border-radius: 3px; background-color: palette(base); }"
            f" QProgressBar::chunk {{ background-color: {chunk}; }}"
        )
        self.value_label = _label(format_percent(candidate.probability), wrap=False)
        self.value_label.setMinimumWidth(self.value_label.fontMetrics().horizontalAdvance("over 99%") + 4)
        self.value_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        bar_row.addWidget(self.bar, 1)
        bar_row.addWidget(self.value_label)
        layout.addLayout(bar_row)


class ResultCard(QWidget):
    """Shows one Outcome (or a pending / error state). Pure view: no model, no threads."""

    def __init__(self, catalogue: Catalogue | None = None, parent=None):
        super().__init__(parent)
        self.catalogue = catalogue or default_catalogue()
        self.setAccessibleName("Result")
        self.outcome: Outcome | None = None

        outer = QHBoxLayout(self)
        outer.setContentsMargins(8, 8, 8, 8)
        outer.setSpacing(12)
        self.photo = PhotoView()
        outer.addWidget(self.photo, 5)

        right = QVBoxLayout()
        right.setSpacing(6)
        outer.addLayout(right, 6)

        self.risk_banner = _label(name="risk_warning")
        self.risk_banner.setStyleSheet(
            "QLabel { background-color: #b3261e; color: white; padding: 8px; border-radius: 4px; font-weight: bold; }"
        )
        self.risk_banner.setMaximumWidth(READING_WIDTH_PX)
        # Pinned above the scrolling part: the warning is never scrolled or cut off.
        right.addWidget(self.risk_banner)

        self.scroll = QScrollArea()
        self.scroll.setObjectName("result_details")
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # arrow keys / Page Down scroll the answer
        self.scroll.setAccessibleName("Answer details")
        # A visible focus ring when keyboard focus is on the answer (Fusion draws none for a scroll area).
        self.scroll.setStyleSheet(
            "QScrollArea#result_details { border: 2px solid transparent; border-radius: 3px; }"
            " QScrollArea#result_details:focus { border: 2px solid palette(highlight); }"
        )
        right.addWidget(self.scroll, 1)
        body = QWidget()
        # Lines longer than ~90 characters are hard to read: cap the reading width on wide windows.
        body.setMaximumWidth(READING_WIDTH_PX)
        self.scroll.setWidget(body)
        self.scroll.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.body_layout = QVBoxLayout(body)
        self.body_layout.setContentsMargins(0, 0, 6, 0)
        self.body_layout.setSpacing(8)

        self.headline = _label(name="headline")
        self.headline.setFont(_scaled_font(self, 1.8, bold=True))
        self.subheadline = _label(name="scientific_name")
        font = _scaled_font(self, 1.15)
        font.setItalic(True)
        self.subheadline.setFont(font)
        # Wraps on a narrow card instead of forcing the text column wider than the window.
        self.badge = _label(name="venom_status")
        self.badge.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Preferred)
        self.summary = _label(name="summary")
        self.region_line = _label(name="region")
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setTextVisible(False)
        self.busy.setMaximumHeight(8)
        self.busy.setAccessibleName("Working")

        self.candidates_title = _label("Most likely species", name="candidates_title")
        self.candidates_title.setFont(_scaled_font(self, 1.0, bold=True))
        self.candidates_box = QVBoxLayout()
        self.candidates_box.setSpacing(2)
        self.candidate_rows: list[CandidateRow] = []

        self.first_aid_title = _label("If someone is bitten", name="first_aid_title")
        self.first_aid_title.setFont(_scaled_font(self, 1.0, bold=True))
        self.first_aid_species = _label(name="species_first_aid")
        self.first_aid_species.setFont(_scaled_font(self, 1.0, bold=True))
        self.first_aid = _label(name="first_aid")
        self.first_aid_more = _label(name="more_first_aid")
        self.tell_apart_title = _label(name="tell_apart_title")
        self.tell_apart_title.setFont(_scaled_font(self, 1.0, bold=True))
        self.tell_apart = _label(name="how_to_tell_it_apart")
        self.full_disclaimer = _label(self.catalogue.disclaimer, name="full_disclaimer")
        self.medical_title = _label(name="medical_title")
        self.medical_title.setFont(_scaled_font(self, 1.0, bold=True))
        self.medical = _label(name="medical_significance")
        self.accuracy = _label(name="validation_accuracy")
        self.warnings = _label(name="photo_warnings")
        self.source = _label(name="source")
        self.source.setForegroundRole(QPalette.ColorRole.PlaceholderText)

        for widget in self._detail_widgets():
            if widget is self.risk_banner:
                continue
            self.body_layout.addWidget(widget)
            if widget is self.candidates_title:
                self.body_layout.addLayout(self.candidates_box)
        self.body_layout.addStretch(1)

        # A short form stays in view; the full text closes the scrolling part.
        self.disclaimer = _label(SHORT_DISCLAIMER, name="disclaimer")
        self.disclaimer.setFrameShape(QFrame.Shape.StyledPanel)
        self.disclaimer.setContentsMargins(4, 2, 4, 2)
        self.disclaimer.setFont(_scaled_font(self, 0.9))
        # Never taller than a few lines, so at 640x480 it cannot crowd out the answer itself.
        self.disclaimer.setMaximumHeight(self.disclaimer.fontMetrics().lineSpacing() * 3 + 10)
        right.addWidget(self.disclaimer)
        self.clear()

    # ---------------------------------------------------------------- states

    def clear(self) -> None:
        self.outcome = None
        self.scroll.verticalScrollBar().setValue(0)  # a new answer starts at its top
        self.photo.set_image(None)
        for widget in self._detail_widgets():
            widget.hide()
        self.full_disclaimer.show()
        self._set_candidates([], None)

    def _detail_widgets(self):
        # Top to bottom by what a frightened reader needs first: at 800x600 the verdict, the warning
        # and the first steps of first aid fit without scrolling; the candidates follow.
        return (
            self.risk_banner,  # pinned above the scroll area (added there, not to the body)
            self.headline,
            self.subheadline,
            self.badge,
            self.region_line,  # what the answer assumed about where the photo was taken
            self.summary,
            self.accuracy,  # next to the confidence: how far to trust it
            self.warnings,  # high up too: a bad photo is a reason to trust the answer less
            self.busy,
            self.first_aid_title,
            self.first_aid_species,
            self.first_aid,
            self.candidates_title,
            self.tell_apart_title,
            self.tell_apart,
            self.first_aid_more,
            self.medical_title,
            self.medical,
            self.source,
            self.full_disclaimer,
        )

    def show_pending(self, name: str, message: str = "Classifying…", photo: QImage | None = None) -> None:
        self.clear()
        self.photo.set_image(photo, name)
        self._show(self.headline, message)
        self._show(self.source, name)
        self.busy.show()

    def show_message(self, title: str, message: str, name: str = "", photo: QImage | None = None) -> None:
        self.clear()
        self.photo.set_image(photo, name)
        self._show(self.headline, title)
        self._show(self.summary, message)
        if name:
            self._show(self.source, name)

    def show_outcome(self, outcome: Outcome, model_info: ModelInfo | None, top_k: int = 3) -> None:
        self.clear()
        self.outcome = outcome
        result = outcome.result
        photo = outcome.photo.to_qimage() if outcome.photo is not None else None
        self.photo.set_image(photo, outcome.source_name)
        source_text = result.path
        if outcome.original_size:
            source_text += f"  ·  {outcome.original_size[0]}×{outcome.original_size[1]} px"
        self._show(self.source, source_text)
        self._show_warnings(result)
        if result.prediction is None:
            if result.error_kind == NO_MODEL_KIND:
                self._show(self.headline, "No model is installed")
            elif result.error_kind == "model_output":
                self._show(self.headline, "The model gave no usable answer")
            else:
                self._show(self.headline, "This photo could not be read")
            self._show(self.summary, result.error or "Unknown error.")
            return
        self._show_prediction(result, model_info, top_k)

    # ---------------------------------------------------------------- the prediction

    def _show_prediction(self, result: FileResult, model_info: ModelInfo | None, top_k: int) -> None:
        """Shows what the predictor decided: the warning, the verdict, the badge and first aid are all
        read from the Prediction, never re-derived here."""
        pred = result.prediction
        best = pred.best
        warning = warning_text(pred, self.catalogue)
        if warning:
            self._show(self.risk_banner, f"⚠ {warning}")
        self._show(self.region_line, assumption_text(pred))

        if pred.verdict == "species" and best is not None:
            self._show(self.headline, best.common_name + (TAUGHT_MARK if best.taught else ""))
            self._show(self.subheadline, best.scientific_name)
            self._show_badge(best.venomous if (pred.shows_harmless or counts_as_venomous(best.venomous)) else "uncertain")
            self._show(self.summary, f"The model is {format_percent(best.probability)} sure of this species.")
        elif pred.verdict == "unsure":
            self._show(self.headline, "Not sure")
            self._show_badge("unknown")
            self._show(
                self.summary,
                "The model cannot tell which species this is. It could be one of the candidates below; "
                "treat the snake as venomous.",
            )
        elif pred.verdict == "outside_coverage":
            self._show(self.headline, "Outside what SnakeID knows")
            self._show_badge("unknown")
            self._show(self.summary, "SnakeID cannot name this snake: none of the species it knows lives there.")
        else:
            self._show(self.headline, "This doesn't look like a snake")
            self._show(
                self.summary,
                f"The model is {format_percent(pred.not_snake_probability)} sure there is no snake in this photo. "
                "If there is one, try a closer, sharper photo. Closest species, in case:",
            )

        shown = list(pred.top[: max(1, top_k)])
        # A venomous candidate behind the warning is never hidden by the top-k setting.
        shown += [c for c in pred.risky if c not in shown]
        self._set_candidates(shown, model_info)

        self._show_first_aid(pred, best, model_info)
        if pred.verdict not in ("not_snake", "outside_coverage") and best is not None:
            info = self._info(best, model_info)
            prefix = "About" if pred.verdict == "species" else "Most likely candidate:"
            self._show(self.medical_title, f"{prefix} {best.common_name}")
            text = info.medical_significance
            if info.region:
                text += f"\nWhere it lives: {info.region}"
            self._show(self.medical, text)
        if pred.verdict in ("species", "unsure") and best is not None:
            self._show_tell_apart(self._info(best, model_info), best, pred.verdict == "species")
        if pred.verdict == "species" and best is not None:
            # How often it was right on this species only makes sense when it names one.
            self._show(self.accuracy, self._accuracy_text(best, model_info))

    def _info(self, candidate: Candidate, model_info: ModelInfo | None) -> SpeciesInfo:
        """The candidate's catalogue entry: SnakeID's own, or what its user entered when teaching it
        (a species removed since this answer: what the answer itself says of it)."""
        if not candidate.taught:
            return self.catalogue.get(candidate.species)
        info = model_info.taught.info(candidate.species) if model_info is not None else None
        if info is None:
            from types import SimpleNamespace

            info = taught_info(SimpleNamespace(slug=candidate.species, scientific_name=candidate.scientific_name,
                                               common_name=candidate.common_name, venomous=candidate.venomous,
                                               countries=(), notes=""))
        return info

    def _show_tell_apart(self, info: SpeciesInfo, best: Candidate, named: bool) -> None:
        """Field-guide notes: what to look for, and the look-alikes with how they differ (from a distance)."""
        if not info.identify and not info.look_alikes:
            return
        lines = [f"• Look for: {point}" for point in info.identify]
        lines += [f"• Not to be confused with {alike.name}: {alike.tell_apart}" for alike in info.look_alikes]
        lines.append("If in doubt, treat it as venomous; check from a distance, never up close.")
        what = best.common_name if named else f"the most likely candidate, {best.common_name}"
        self._show(self.tell_apart_title, f"How to tell it apart: {what}")
        self._show(self.tell_apart, "\n".join(lines))

    def _accuracy_text(self, best: Candidate, model_info: ModelInfo | None) -> str:
        if model_info is None:
            return "Validation accuracy: unknown (model details unavailable)."
        if best.taught:
            # No validation photos of a species its user taught: how it did on their own photos instead.
            row = model_info.taught.row(best.species)
            if row is None or not row.checked:
                return f"No accuracy figure for {best.common_name}: it was not checked on your photos."
            return f"When you taught {best.common_name}, {accuracy_sentence(row.correct, row.checked)}"
        metrics = model_info.metrics
        acc = model_info.per_class_accuracy.get(best.species)
        overall = metrics.get("top1", metrics.get("val_top1"))
        support = (metrics.get("per_class", {}).get(best.species) or {}).get("support")
        parts = []
        if acc is not None and support:
            # A count, not a percentage: "12 of 12" is honest where "100%" or "over 99%" of 12 is not.
            right = round(float(acc) * int(support))
            parts.append(f"In validation the model named {best.common_name} correctly in {right} of {support} photos.")
        elif acc is not None:
            parts.append(f"In validation the model named {best.common_name} correctly in {format_percent(float(acc))} "
                         "of its validation photos.")
        else:
            parts.append(f"No validation figure for {best.common_name}.")
        if overall is not None:
            parts.append(f"Over all species: {format_percent(float(overall))}.")
        return " ".join(parts)

    def _show_first_aid(self, pred, best: Candidate | None, model_info: ModelInfo | None) -> None:
        kind = pred.first_aid
        if kind is None:
            return
        harmless = kind == "harmless"
        steps = self.catalogue.first_aid_harmless if harmless else self.catalogue.first_aid_venomous
        if best is not None and pred.verdict == "species":
            specific = self._info(best, model_info).first_aid
            if specific:
                self._show(self.first_aid_species, specific)
        lines = [f"• {step}" for step in steps]
        self._show(self.first_aid_title, "If someone is bitten" + ("" if harmless else " (treat as venomous)"))
        self._show(self.first_aid, "\n".join(lines[:FIRST_AID_UP_FRONT]))
        if lines[FIRST_AID_UP_FRONT:]:
            self._show(self.first_aid_more, "More first aid:\n" + "\n".join(lines[FIRST_AID_UP_FRONT:]))

    def _show_warnings(self, result: FileResult) -> None:
        if result.warnings:
            self._show(self.warnings, "\n".join(f"⚠ Photo: {w}" for w in result.warnings))

    def _fit_badge(self) -> None:
        """One line when the text column has room for it, wrapped only when it has not: a wrapping
        label asks for little width by itself, and a fixed minimum wider than the column would clip it."""
        bold = QFont(self.badge.font())
        bold.setBold(True)  # the style sheet makes it bold; measure it as drawn
        one_line = QFontMetrics(bold).horizontalAdvance(self.badge.text()) + 32
        # The scroll bar may appear after this is set: leave its width free in any case.
        scroll_bar = self.scroll.verticalScrollBar().sizeHint().width()
        room = self.scroll.width() - scroll_bar - self.body_layout.contentsMargins().right() - 8
        self.badge.setMinimumWidth(max(0, min(one_line, room)))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_badge()

    def _show_badge(self, status: str) -> None:
        text, colour = BADGE_STYLES.get(status, BADGE_STYLES["unknown"])
        _set_text(self.badge, text)
        self._fit_badge()
        self.badge.setStyleSheet(
            f"QLabel {{ background-color: {colour}; color: white; font-weight: bold;"
            " padding: 3px 10px; border-radius: 4px; }"
        )
        self.badge.show()

    def _set_candidates(self, candidates: list[Candidate], model_info: ModelInfo | None) -> None:
        for row in self.candidate_rows:
            self.candidates_box.removeWidget(row)
            row.hide()  # out of sight now, not only once the event loop gets to deleting it
            row.deleteLater()
        self.candidate_rows = []
        for rank, candidate in enumerate(candidates, 1):
            acc = model_info.per_class_accuracy.get(candidate.species) if model_info else None
            row = CandidateRow(rank, candidate, acc)
            self.candidates_box.addWidget(row)
            self.candidate_rows.append(row)
        self.candidates_title.setVisible(bool(candidates))

    @staticmethod
    def _show(label: QLabel, text: str) -> None:
        _set_text(label, text)
        label.show()

    # ---------------------------------------------------------------- for tests and accessibility

    def headline_text(self) -> str:
        return self.headline.text()

    def plain_text(self) -> str:
        """Everything visible on the card as text (used by tests and 'Copy result')."""
        parts = []
        for widget in self._detail_widgets():
            if isinstance(widget, QLabel) and not widget.isHidden() and widget.text():
                parts.append(widget.text())
            if widget is self.candidates_title:
                parts += [f"{row.name_label.text()}: {row.value_label.text()}" for row in self.candidate_rows]
        parts.append(self.disclaimer.text())
        return "\n".join(parts)
