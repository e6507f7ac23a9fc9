"""The main window's session strip: order, rows, width, keys, undo, history, the welcome screen."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QUrl, Qt  # noqa: E402

from snakeid_desktop import history  # noqa: E402
from snakeid_desktop.catalogue import default_catalogue  # noqa: E402
from snakeid_desktop.gui import main_window as main_window_module  # noqa: E402
from snakeid_desktop.region import describe_coverage  # noqa: E402
from snakeid_desktop.results import FileResult  # noqa: E402
from tests.conftest import SlowPredictor  # noqa: E402
from tests.test_gui_main_window import draw_photo, factory_for, mime_with_urls, send_drop  # noqa: E402

pytestmark = [
    pytest.mark.qt_log_ignore("This plugin does not support (propagateSizeHints|raise)"),
    pytest.mark.usefixtures("no_threads_left_behind"),
]


def strip_names(window) -> list[str]:
    return [window.session_list.item(i).text().split("\n")[0] for i in range(window.session_list.count())]


def all_answered(window) -> bool:
    return all(p.outcome is not None for p in window.entries.values())


@pytest.fixture
def answered_window(qtbot, window, tmp_path):
    paths = [draw_photo(tmp_path / f"{n}.jpg") for n in "abc"]
    window.open_paths(paths)
    qtbot.waitUntil(lambda: all_answered(window), timeout=20_000)
    return window


# ---------------------------------------------------------------- order and rows


def test_photos_are_listed_in_the_order_given_and_the_first_is_current(qtbot, window, tmp_path):
    paths = [draw_photo(tmp_path / f"{n}.jpg") for n in "abc"]
    with qtbot.waitSignal(window.outcome_displayed, timeout=20_000):
        window.open_paths(paths)
    assert strip_names(window) == ["a.jpg", "b.jpg", "c.jpg"]
    assert Path(window.card.outcome.result.path) == paths[0]
    assert window.session_list.currentRow() == 0
    assert window.session_list.hasFocus()  # the arrow keys act on the new photos at once
    more = [draw_photo(tmp_path / f"{n}.jpg") for n in "de"]
    send_drop(window, mime_with_urls(*[QUrl.fromLocalFile(str(p)) for p in more]))
    assert strip_names(window) == ["d.jpg", "e.jpg", "a.jpg", "b.jpg", "c.jpg"]  # the newest drop on top
    assert window.session.current.name == "d.jpg"
    qtbot.waitUntil(lambda: all_answered(window), timeout=20_000)


def test_rows_are_uniform_and_names_are_cut_at_the_end(qtbot, window, tmp_path):
    long_name = draw_photo(tmp_path / ("Philippine pit viper on a branch near the river " * 2 + ".jpg"))
    short = draw_photo(tmp_path / "a.jpg")
    window.open_paths([long_name, short])
    qtbot.waitUntil(lambda: all_answered(window), timeout=20_000)
    strip = window.session_list
    assert strip.textElideMode() == Qt.TextElideMode.ElideRight
    assert strip.uniformItemSizes()
    heights = {strip.visualItemRect(strip.item(i)).height() for i in range(strip.count())}
    assert len(heights) == 1 and heights.pop() >= strip.iconSize().height()
    assert long_name.name in strip.item(0).toolTip()  # the whole name is one hover away


def test_the_strip_is_as_wide_as_its_content_within_limits(qtbot, window, tmp_path):
    assert not window.session_list.isVisible()  # no photos: the welcome screen has the room
    window.resize(1400, 800)
    window.open_paths([draw_photo(tmp_path / "a.jpg")])
    qtbot.waitUntil(lambda: all_answered(window), timeout=20_000)
    strip = window.session_list
    assert strip.isVisible()
    narrow = strip.width()
    assert main_window_module.STRIP_MIN_WIDTH <= narrow < 240
    window.open_paths([draw_photo(tmp_path / ("a very long photo name from the field trip to Mindanao" + ".jpg"))])
    qtbot.waitUntil(lambda: all_answered(window), timeout=20_000)
    qtbot.waitUntil(lambda: strip.width() > narrow)
    assert strip.width() <= main_window_module.STRIP_MAX_WIDTH
    window.resize(600, 500)
    qtbot.waitUntil(lambda: strip.width() <= max(main_window_module.STRIP_MIN_WIDTH, main_window_module.STRIP_MAX_FRACTION * window.width()) + 1)
    window.clear_session()
    assert not strip.isVisible()


def test_a_batch_row_opened_twice_is_listed_once(qtbot, window, tmp_path):
    path = draw_photo(tmp_path / "row.jpg")
    result = FileResult(path=str(path), prediction=None, error="x", error_kind="corrupt")
    with qtbot.waitSignal(window.outcome_displayed, timeout=20_000):
        window.show_file_result(result)
    window.open_paths([draw_photo(tmp_path / "other.jpg")])
    qtbot.waitUntil(lambda: all_answered(window), timeout=20_000)
    assert window.session.current.name == "other.jpg"
    window.show_file_result(result)
    assert window.session_list.count() == 2
    assert window.session.current.name == "row.jpg" and window.session_list.currentItem().text().startswith("row.jpg")


# ---------------------------------------------------------------- keys


def test_arrow_keys_move_through_the_session_wherever_focus_is_but_editors_keep_theirs(qtbot, answered_window):
    window = answered_window
    names = lambda: window.session.current.name  # noqa: E731
    window.card.setFocus()  # the result card: a scroll area that would eat the arrow keys
    qtbot.keyClick(window.card, Qt.Key.Key_Down)
    assert names() == "b.jpg"
    qtbot.keyClick(window.card, Qt.Key.Key_End)
    assert names() == "c.jpg" and window.session_list.currentRow() == 2
    qtbot.keyClick(window.card, Qt.Key.Key_Home)
    assert names() == "a.jpg"
    qtbot.keyClick(window.card, Qt.Key.Key_PageDown)
    assert names() == "c.jpg"  # three rows fit on a page
    qtbot.keyClick(window.card, Qt.Key.Key_Up)
    assert names() == "b.jpg"

    spin = window.top_k_spin
    spin.setFocus()
    before = spin.value()
    qtbot.keyClick(spin, Qt.Key.Key_Up)
    assert spin.value() == before + 1 and names() == "b.jpg"  # the spin box keeps its keys
    picker = window.country_picker
    picker.setFocus()
    index = picker.currentIndex()
    qtbot.keyClick(picker, Qt.Key.Key_Down)
    assert picker.currentIndex() == index + 1 and names() == "b.jpg"


# ---------------------------------------------------------------- undo


def test_delete_can_be_undone_from_the_message_bar(qtbot, answered_window):
    window = answered_window
    window.session.select(window.session.order[1])
    answer = window.session.current.outcome
    window.remove_current()
    assert strip_names(window) == ["a.jpg", "c.jpg"]
    assert window.message_bar.isVisible() and window.message_label.text() == "Removed b.jpg."
    assert window.undo_button.isVisible()
    qtbot.mouseClick(window.undo_button, Qt.MouseButton.LeftButton)
    assert strip_names(window) == ["a.jpg", "b.jpg", "c.jpg"]
    assert window.session.current.name == "b.jpg" and window.session.current.outcome is answer
    assert window.card.outcome is answer and window.session_list.currentRow() == 1
    assert not window.message_bar.isVisible() and not window.undo_action.isEnabled()


def test_clear_can_be_undone_with_ctrl_z(qtbot, answered_window):
    window = answered_window
    window.session.select(window.session.order[2])
    answers = [window.entries[k].outcome for k in window.session.order]
    window.clear_session()
    assert window.session_list.count() == 0 and window.stack.currentWidget() is window.drop_zone
    assert window.message_label.text() == "Removed 3 photos."
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert strip_names(window) == ["a.jpg", "b.jpg", "c.jpg"]
    assert [window.entries[k].outcome for k in window.session.order] == answers
    assert window.session.current.name == "c.jpg" and window.card.outcome is answers[2]
    assert all(not window.session_list.item(i).icon().isNull() for i in range(3))


def test_the_undo_offer_expires(qtbot, answered_window):
    window = answered_window
    window._undo_timer.setInterval(50)
    window.remove_current()
    qtbot.waitUntil(lambda: not window.undo_button.isVisible(), timeout=5_000)
    assert window.session.removal is None and not window.message_bar.isVisible()
    window.undo_removal()  # nothing left to put back
    assert window.session_list.count() == 2


# ---------------------------------------------------------------- history between launches


def test_history_is_off_by_default(qtbot, answered_window):
    assert not answered_window.remember_action.isChecked()
    answered_window.close()
    assert not history.default_history_path().exists()


def test_answers_are_listed_again_at_the_next_launch_without_running_the_model(qtbot, make_window, settings, predictor, tmp_path):
    window = make_window()
    window.remember_action.trigger()
    assert settings.remember_history
    paths = [draw_photo(tmp_path / f"{n}.jpg") for n in "abc"]
    window.open_paths(paths)
    qtbot.waitUntil(lambda: all_answered(window), timeout=20_000)
    window.session.select(window.session.order[1])
    answers = [window.entries[k].outcome.result for k in window.session.order]
    paths[2].unlink()  # gone by the next launch
    window.close()
    stored = history.default_history_path().read_text()
    assert "a.jpg" in stored and len(stored) < 20_000  # answers, not pixels

    counting = SlowPredictor(predictor)
    again = make_window(predictor_factory=factory_for(counting))
    assert strip_names(again) == ["a.jpg", "b.jpg", "c.jpg"]
    qtbot.waitUntil(lambda: all_answered(again), timeout=20_000)
    assert [again.entries[k].outcome.result for k in again.session.order] == answers
    assert again.session.current.name == "b.jpg" and again.card.photo.has_image()
    gone = again.entries[again.session.order[2]]
    assert gone.display_error_kind == "not_found"
    assert "file missing" in again.session_list.item(2).text()
    again.session.select(gone.key)
    assert "could not be shown" in again.card.warnings.text() and again.card.outcome.result.prediction == answers[2].prediction
    assert counting.calls == 0  # decoded for display only


def test_clear_history_and_turning_it_off_delete_the_file(qtbot, make_window, settings, tmp_path):
    settings.remember_history = True
    window = make_window()
    window.open_paths([draw_photo(tmp_path / "a.jpg")])
    qtbot.waitUntil(lambda: all_answered(window), timeout=20_000)
    path = history.default_history_path()
    assert window.save_history() and path.exists()
    window.clear_history_action.trigger()
    assert not path.exists()
    window.open_paths([draw_photo(tmp_path / "b.jpg")])
    qtbot.waitUntil(lambda: all_answered(window), timeout=20_000)
    qtbot.waitUntil(path.exists, timeout=5_000)  # written once the answers settle
    assert [file for file, _ in history.load(path)[0]] == [str(tmp_path / "b.jpg")]  # a.jpg was cleared
    window.remember_action.trigger()  # off
    assert not path.exists() and not settings.remember_history
    window.close()
    assert not path.exists()


def test_a_corrupt_history_file_is_ignored(qtbot, make_window, settings, caplog):
    settings.remember_history = True
    path = history.default_history_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"version": 1, "photos": [{"file": 3}')
    with caplog.at_level(logging.WARNING, logger="snakeid_desktop.history"):
        window = make_window()
    assert window.session_list.count() == 0 and "ignored" in caplog.text
    path.write_text(json.dumps({"version": 1, "photos": [{"file": "/x.jpg", "result": {"path": 1}}]}))
    assert make_window().session_list.count() == 0


# ---------------------------------------------------------------- welcome screen


def test_the_welcome_screen_says_what_snakeid_knows_before_the_model_loads(qtbot, make_window):
    window = make_window(wait_ready=False)
    phrase = describe_coverage(default_catalogue())
    assert window.drop_zone.coverage.text() == f"SnakeID knows {phrase}."
    qtbot.waitUntil(lambda: window.controller.state == "ready", timeout=30_000)
    assert not window.drop_zone.coverage.isVisible()  # the model-ready line says it now


def test_the_welcome_screen_says_what_snakeid_knows_and_links_the_list(qtbot, window, monkeypatch):
    phrase = describe_coverage(default_catalogue())
    assert "Philippines" in phrase
    assert window.drop_zone.status.text() == f"Model ready: knows {phrase}."
    assert window.drop_zone.species_button.isVisible()
    shown = []
    from snakeid_desktop.gui import about

    monkeypatch.setattr(about.AboutDialog, "exec", lambda self: shown.append(self.text.toPlainText()) or 0)
    qtbot.mouseClick(window.drop_zone.species_button, Qt.MouseButton.LeftButton)
    assert shown and "Puff adder" in shown[0]
