"""The result card shows each verdict honestly: hand-made predictions, no model needed."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from snakeid_desktop.catalogue import default_catalogue  # noqa: E402
from snakeid_desktop.gui.inference_worker import NO_MODEL_KIND, ModelInfo, Outcome, RgbPixels  # noqa: E402
from snakeid_desktop.gui.result_card import ResultCard  # noqa: E402
from snakeid_desktop.results import Candidate, FileResult, Prediction  # noqa: E402

CAT = default_catalogue()
# The offscreen plugin warns when a window's size constraints change: its limitation, not ours.
pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


def cand(slug: str, p: float) -> Candidate:
    info = CAT.get(slug)
    return Candidate(slug, info.scientific_name, info.common_name, p, info.venomous)


def slugs_with(status: str) -> list[str]:
    return [s for s, info in sorted(CAT.species.items()) if info.venomous == status]


VENOMOUS = slugs_with("yes")
HARMLESS = slugs_with("no")

INFO = ModelInfo(
    version="t1",
    directory="/x",
    classes=tuple(sorted(CAT.species)) + ("not_snake",),
    metrics={"top1": 0.9, "per_class": {VENOMOUS[0]: {"support": 23}}},
    per_class_accuracy={VENOMOUS[0]: 0.87},
    species_threshold=0.5,
    not_snake_threshold=0.5,
    risk_threshold=0.1,
    input_size=224,
)


def outcome(verdict, top, risk=False, not_snake=0.01, warnings=(), photo=True, country=None, source=None) -> Outcome:
    # As the predictor would: the venomous candidates behind a warning, most likely first.
    risky = tuple(c for c in top if c.venomous != "no") if risk else ()
    venom = sum(c.probability for c in top if c.venomous != "no")
    pred = Prediction(verdict=verdict, risk=risk, top=tuple(top), not_snake_probability=not_snake,
                      venom_probability=venom, risky=risky, country=country, country_source=source)
    result = FileResult(path="/photos/snake.jpg", prediction=pred, warnings=list(warnings))
    pixels = RgbPixels(4, 3, bytes(4 * 3 * 3)) if photo else None
    return Outcome(1, "snake.jpg", result, pixels, pixels, (4000, 3000))


@pytest.fixture
def card(qtbot):
    widget = ResultCard(CAT)
    qtbot.addWidget(widget)
    widget.resize(1000, 800)
    widget.show()
    return widget


def test_venomous_species(card):
    top = [cand(VENOMOUS[0], 0.91), cand(HARMLESS[0], 0.05), cand(HARMLESS[1], 0.02)]
    card.show_outcome(outcome("species", top, risk=True), INFO, top_k=3)
    info = CAT.get(VENOMOUS[0])
    assert card.headline_text() == info.common_name
    assert card.subheadline.text() == info.scientific_name
    assert card.badge.text() == "VENOMOUS"  # words, not only colour
    assert card.risk_banner.isVisible()
    assert info.medical_significance in card.medical.text()
    assert CAT.first_aid_venomous[0] in card.first_aid.text()
    if info.first_aid:
        assert card.first_aid_species.text() == info.first_aid
    assert "correctly in 20 of 23 photos" in card.accuracy.text() and "90%" in card.accuracy.text()  # 0.87 x 23
    assert [r.value_label.text() for r in card.candidate_rows] == ["91%", "5%", "2%"]
    assert card.photo.has_image()
    assert card.disclaimer.isVisible()


def test_harmless_top_answer_with_a_plausible_venomous_candidate_warns(card):
    top = [cand(HARMLESS[0], 0.70), cand(HARMLESS[1], 0.12), cand(VENOMOUS[1], 0.11)]
    card.show_outcome(outcome("species", top, risk=True), INFO, top_k=1)
    # Never the green badge while the warning is on (the black mamba called a rat snake).
    assert card.badge.text() == "MAY BE VENOMOUS: TREAT AS VENOMOUS"
    assert card.risk_banner.isVisible()
    assert CAT.get(VENOMOUS[1]).common_name in card.risk_banner.text()
    # the top-k setting never hides the venomous candidate behind the warning
    names = [r.name_label.text() for r in card.candidate_rows]
    assert len(names) == 2 and CAT.get(VENOMOUS[1]).common_name in names[1]
    # and the first aid is the venomous one
    assert CAT.first_aid_venomous[0] in card.first_aid.text()


def test_the_card_shows_the_predictors_decision_and_never_re_derives_it(card):
    # A venomous candidate at 10%, but the predictor decided no warning: the card does not overrule it.
    top = [cand(HARMLESS[0], 0.62), cand(HARMLESS[1], 0.15), cand(HARMLESS[2], 0.11), cand(VENOMOUS[1], 0.10)]
    card.show_outcome(outcome("species", top, risk=False), INFO, top_k=10)
    assert not card.risk_banner.isVisible()
    assert card.badge.text() == "NOT VENOMOUS"
    assert CAT.first_aid_harmless[0] in card.first_aid.text()


def test_not_a_snake_with_the_warning_says_so_and_gives_first_aid(card):
    # The clear cobra in an enclosure, answered "not a snake".
    top = [cand(VENOMOUS[0], 0.15), cand(HARMLESS[0], 0.03)]
    card.show_outcome(outcome("not_snake", top, risk=True, not_snake=0.80), INFO, top_k=3)
    assert card.headline_text() == "This doesn't look like a snake"
    assert card.risk_banner.isVisible() and "If there is a snake in this photo, it may be venomous" in card.risk_banner.text()
    assert CAT.first_aid_venomous[0] in card.first_aid.text()


def test_unsure_between_two_cobras_warns(card):
    top = [cand(VENOMOUS[0], 0.29), cand(VENOMOUS[1], 0.17), cand(HARMLESS[0], 0.10)]
    card.show_outcome(outcome("unsure", top, risk=True), INFO, top_k=3)
    assert card.risk_banner.isVisible()
    assert CAT.get(VENOMOUS[0]).common_name in card.risk_banner.text()
    assert not card.accuracy.isVisible()  # per-species validation accuracy only when a species is named


def test_never_one_hundred_percent(card):
    top = [cand(VENOMOUS[0], 0.9996), cand(HARMLESS[0], 0.0004)]
    card.show_outcome(outcome("species", top, risk=True), INFO, top_k=2)
    assert "over 99% sure" in card.summary.text() and "100%" not in card.plain_text()
    assert [r.value_label.text() for r in card.candidate_rows] == ["over 99%", "under 1%"]


def test_outside_coverage_names_no_species_and_warns(card):
    card.show_outcome(outcome("outside_coverage", [], risk=True, country="IN", source="option"), INFO)
    assert card.headline_text() == "Outside what SnakeID knows"
    assert "SnakeID does not know the snakes of India" in card.risk_banner.text()
    assert "Treat this snake as venomous" in card.risk_banner.text()
    assert not card.candidate_rows and CAT.first_aid_venomous[0] in card.first_aid.text()
    assert "Answering for India (your choice)" in card.region_line.text()


def test_the_card_says_which_region_it_assumed(card):
    top = [cand(HARMLESS[0], 0.95)]
    card.show_outcome(outcome("species", top, country="PH", source="gps"), INFO)
    assert card.region_line.text() == "Answering for the Philippines (from the photo's location)."
    card.show_outcome(outcome("species", top), INFO)
    assert card.region_line.text().startswith("Answering for anywhere")


def test_harmless_species_without_risk(card):
    top = [cand(HARMLESS[0], 0.95), cand(HARMLESS[1], 0.03)]
    card.show_outcome(outcome("species", top), INFO, top_k=3)
    assert card.badge.text() == "NOT VENOMOUS"
    assert not card.risk_banner.isVisible()
    assert CAT.first_aid_harmless[0] in card.first_aid.text()
    assert "No validation figure" in card.accuracy.text()


def test_unsure_lists_the_candidates(card):
    top = [cand(HARMLESS[0], 0.35), cand(HARMLESS[1], 0.30), cand(HARMLESS[2], 0.2)]
    card.show_outcome(outcome("unsure", top), INFO, top_k=3)
    assert card.headline_text() == "Not sure"
    assert "TREAT AS VENOMOUS" in card.badge.text()
    assert len(card.candidate_rows) == 3
    assert CAT.first_aid_venomous[0] in card.first_aid.text()


def test_not_a_snake(card):
    top = [cand(HARMLESS[0], 0.02)]
    card.show_outcome(outcome("not_snake", top, not_snake=0.97), INFO, top_k=3)
    assert card.headline_text() == "This doesn't look like a snake"
    assert "97%" in card.summary.text()
    assert not card.badge.isVisible() and not card.risk_banner.isVisible()


def test_loader_warnings_and_errors_are_shown(card):
    top = [cand(HARMLESS[0], 0.9)]
    card.show_outcome(outcome("species", top, warnings=["The photo is very small (40×30 px)."]), INFO)
    assert "very small" in card.warnings.text()
    assert "very small" in card.plain_text()

    broken = Outcome(2, "x.jpg", FileResult(path="x.jpg", error="x.jpg is not a picture.", error_kind="not_an_image"))
    card.show_outcome(broken, INFO)
    assert card.headline_text() == "This photo could not be read"
    assert card.summary.text() == "x.jpg is not a picture."
    assert not card.candidate_rows and not card.photo.has_image()

    no_model = Outcome(3, "y.jpg", FileResult(path="y.jpg", error="No model is installed: gone.", error_kind=NO_MODEL_KIND))
    card.show_outcome(no_model, None)
    assert card.headline_text() == "No model is installed"


def test_every_control_has_an_accessible_name(card):
    top = [cand(VENOMOUS[0], 0.6), cand(HARMLESS[0], 0.3)]
    card.show_outcome(outcome("species", top, risk=True), INFO)
    for widget in (card.headline, card.badge, card.risk_banner, card.disclaimer, card.photo):
        assert widget.accessibleName()
    assert all(row.bar.accessibleName() and row.bar.accessibleDescription() for row in card.candidate_rows)


def _accessible_texts(widget) -> list[str]:
    """Every name and description in Qt's accessibility tree below ``widget``, as a screen reader sees it."""
    from PySide6.QtGui import QAccessible

    texts, stack = [], [QAccessible.queryAccessibleInterface(widget)]
    while stack:
        node = stack.pop()
        if node is None or not node.isValid():
            continue
        if not node.state().invisible:
            texts += [node.text(QAccessible.Text.Name), node.text(QAccessible.Text.Description)]
        stack += [node.child(i) for i in range(node.childCount())]
    return [t for t in texts if t]


def test_a_screen_reader_finds_the_species_the_warning_and_the_first_aid(card, qtbot):
    top = [cand(VENOMOUS[0], 0.91), cand(HARMLESS[0], 0.05)]
    card.show_outcome(outcome("species", top, risk=True), INFO, top_k=2)
    qtbot.wait(20)  # let the new candidate rows be laid out and shown
    spoken = "\n".join(_accessible_texts(card))
    info = CAT.get(VENOMOUS[0])
    assert info.common_name in spoken
    assert "This looks like a venomous snake" in spoken
    assert CAT.first_aid_venomous[0] in spoken
    assert f"{info.common_name}, venomous, 91 percent" in spoken  # the probability bar, in words
    # Internal widget ids are descriptions of a role, never what is read instead of the text.
    assert card.headline.accessibleName() == info.common_name


def test_the_warning_is_pinned_and_a_new_answer_starts_at_the_top(card, qtbot):
    top = [cand(VENOMOUS[0], 0.6), cand(HARMLESS[0], 0.3)]
    card.resize(700, 420)
    card.show_outcome(outcome("unsure", top, risk=True), INFO, top_k=2)
    qtbot.waitUntil(lambda: card.scroll.verticalScrollBar().maximum() > 0, timeout=2000)
    body = card.scroll.widget()
    assert not body.isAncestorOf(card.risk_banner)  # outside the scrolling part: never scrolled away
    bar = card.scroll.verticalScrollBar()
    assert bar.maximum() > 0, "the card should need scrolling at this size"
    bar.setValue(bar.maximum())
    card.show_outcome(outcome("species", top, risk=True), INFO, top_k=2)
    assert bar.value() == 0
    assert card.risk_banner.isVisible()


def test_first_steps_of_first_aid_come_before_the_candidates_and_the_rest_after(card):
    top = [cand(VENOMOUS[0], 0.91)]
    card.show_outcome(outcome("species", top, risk=True), INFO, top_k=1)
    layout = card.body_layout
    order = [layout.itemAt(i).widget() for i in range(layout.count()) if layout.itemAt(i).widget() is not None]
    assert order.index(card.first_aid) < order.index(card.candidates_title) < order.index(card.first_aid_more)
    shown = card.first_aid.text() + card.first_aid_more.text()
    assert all(step in shown for step in CAT.first_aid_venomous)
    assert card.full_disclaimer.isVisibleTo(card) and CAT.disclaimer == card.full_disclaimer.text()


def test_how_to_tell_it_apart_shows_look_for_points_and_look_alikes(card):
    slug = "dispholidus-typus"
    info = CAT.get(slug)
    card.show_outcome(outcome("species", [cand(slug, 0.9)], risk=True), INFO, top_k=1)
    text = card.tell_apart.text()
    assert card.tell_apart.isVisibleTo(card) and info.common_name in card.tell_apart_title.text()
    assert all(point in text for point in info.identify)
    assert all(alike.name in text and alike.tell_apart in text for alike in info.look_alikes)
    assert "If in doubt, treat it as venomous" in text
    card.show_outcome(outcome("not_snake", [cand(slug, 0.02)], not_snake=0.97), INFO)
    assert not card.tell_apart.isVisibleTo(card)  # no species to tell apart
