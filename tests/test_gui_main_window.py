"""The main window end to end (offscreen): drops, paste, folders, messages, the worker thread.

The bundle is a random tiny model, so verdicts are meaningless but well-formed. Qt warnings
fail these tests (pyproject: qt_log_level_fail = WARNING).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PIL import Image, ImageDraw  # noqa: E402
from PySide6.QtCore import QMimeData, Qt, QTimer, QUrl  # noqa: E402
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication, QImage  # noqa: E402
from PySide6.QtWidgets import QApplication, QDialog  # noqa: E402

from snakeid_desktop.gui.inference_worker import PathSource, running_worker_threads  # noqa: E402
from snakeid_desktop.gui.main_window import MainWindow  # noqa: E402
from snakeid_desktop.gui.settings import AppSettings  # noqa: E402
from tests.conftest import SlowPredictor  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
# The offscreen platform plugin warns when a window's size constraints change or a window
# is raised: limitations of that plugin, not of the app, so only those are tolerated.
pytestmark = [
    pytest.mark.qt_log_ignore("This plugin does not support (propagateSizeHints|raise)"),
    pytest.mark.usefixtures("no_threads_left_behind"),
]
HEADLINES_OK = ("Not sure", "This doesn't look like a snake")


# ---------------------------------------------------------------- helpers


def draw_photo(path: Path, size=(320, 240), exif_orientation: int | None = None) -> Path:
    """A generated 'snake' picture: a thick wavy band on a sandy background."""
    image = Image.new("RGB", size, (196, 170, 120))
    draw = ImageDraw.Draw(image)
    w, h = size
    points = [(x, h / 2 + h / 4 * ((x // 20) % 2 * 2 - 1) * 0.5) for x in range(0, w, 20)]
    draw.line(points, fill=(60, 80, 30), width=max(4, h // 10), joint="curve")
    kwargs = {}
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        kwargs["exif"] = exif
    image.save(path, **kwargs)
    return path


def factory_for(wrapper):
    return lambda weights_dir: wrapper


def mime_with_urls(*urls: QUrl) -> QMimeData:
    mime = QMimeData()
    mime.setUrls(list(urls))
    return mime


def send_drop(window: MainWindow, mime: QMimeData) -> None:
    """Deliver a real drag-enter + drop event pair to the window."""
    pos = window.rect().center()
    with warnings.catch_warnings():  # PySide6 marks the QPoint constructor deprecated; there is no other
        warnings.simplefilter("ignore", DeprecationWarning)
        enter = QDragEnterEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    drop = QDropEvent(pos.toPointF(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, drop)


def assert_well_formed_card(window: MainWindow) -> None:
    card = window.card
    outcome = card.outcome
    assert outcome is not None and outcome.result.ok, outcome
    pred = outcome.result.prediction
    if pred.verdict == "species":
        assert card.headline_text() == pred.best.common_name
        assert card.badge.isVisibleTo(card) and card.badge.text()
    else:
        assert card.headline_text() in HEADLINES_OK
    assert len(card.candidate_rows) >= window.top_k_spin.value()
    assert card.photo.has_image()
    assert card.disclaimer.isVisibleTo(card) and "not a medical diagnosis" in card.disclaimer.text()


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def photo(tmp_path) -> Path:
    return draw_photo(tmp_path / "snake.png")


# ---------------------------------------------------------------- input


def test_drop_of_file_urls_shows_a_result_for_each(qtbot, window, tmp_path):
    paths = [draw_photo(tmp_path / f"p{i}.jpg", size=(200 + 40 * i, 160)) for i in range(3)]
    with qtbot.waitSignal(window.outcome_displayed, timeout=20_000):
        send_drop(window, mime_with_urls(*[QUrl.fromLocalFile(str(p)) for p in paths]))
    assert window.session_list.count() == 3
    assert window.stack.currentWidget() is window.card
    assert_well_formed_card(window)
    # the first dropped photo is the one on the card
    assert Path(window.card.outcome.result.path) == paths[0]
    qtbot.waitUntil(lambda: all(e.outcome is not None for e in window.entries.values()), timeout=20_000)
    assert all(not window.session_list.item(i).icon().isNull() for i in range(3))
    # revisiting an earlier photo shows its own answer at once
    last = window.session_list.item(2)  # the drop's order: the last dropped at the bottom
    window.session_list.setCurrentItem(last)
    assert Path(window.card.outcome.result.path) == paths[2]


def test_paste_of_an_image_and_of_a_file_path(qtbot, window, photo):
    clipboard = QGuiApplication.clipboard()
    image = QImage(str(photo))
    clipboard.setImage(image)
    with qtbot.waitSignal(window.outcome_displayed, timeout=20_000):
        window.paste_action.trigger()
    assert_well_formed_card(window)
    assert window.card.outcome.source_name == "pasted image"
    assert (window.card.outcome.photo.width, window.card.outcome.photo.height) == (image.width(), image.height())

    clipboard.setText(str(photo))
    with qtbot.waitSignal(window.outcome_displayed, timeout=20_000):
        window.paste()
    assert Path(window.card.outcome.result.path) == photo
    assert window.session_list.count() == 2

    clipboard.setText("just some words")
    with qtbot.waitSignal(window.message_shown) as blocker:
        window.paste()
    assert "Nothing usable was pasted" in blocker.args[0]
    clipboard.clear()
    with qtbot.waitSignal(window.message_shown) as blocker:
        window.paste()
    assert "clipboard is empty" in blocker.args[0]
    assert window.session_list.count() == 2


def test_dropped_browser_image_data_is_used_and_remote_urls_are_refused(qtbot, window, photo):
    mime = QMimeData()
    mime.setUrls([QUrl("https://example.org/snake.png")])
    mime.setData("image/png", photo.read_bytes())
    with qtbot.waitSignal(window.outcome_displayed, timeout=20_000):
        send_drop(window, mime)
    assert window.card.outcome.source_name == "dropped image"

    with qtbot.waitSignal(window.message_shown) as blocker:
        send_drop(window, mime_with_urls(QUrl("https://example.org/other.jpg")))
    assert "Download the photo first" in blocker.args[0]
    assert window.session_list.count() == 1


def test_non_image_drop_shows_a_message(qtbot, window, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    with qtbot.waitSignal(window.message_shown) as blocker:
        send_drop(window, mime_with_urls(QUrl.fromLocalFile(str(notes))))
    assert "notes.txt" in blocker.args[0] and "Not a photo" in blocker.args[0]
    assert window.message_bar.isVisible()
    assert window.session_list.count() == 0
    assert window.stack.currentWidget() is window.drop_zone


def test_unreadable_image_shows_an_error_card(qtbot, window, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    with qtbot.waitSignal(window.outcome_displayed, timeout=20_000):
        window.open_paths([broken])
    assert window.card.headline_text() == "This photo could not be read"
    assert window.card.summary.text()
    assert "could not read" in window.session_list.item(0).text()


def test_exif_rotated_photo_is_shown_upright(qtbot, window, tmp_path):
    path = draw_photo(tmp_path / "rotated.jpg", size=(300, 200), exif_orientation=6)
    with qtbot.waitSignal(window.outcome_displayed, timeout=20_000):
        window.open_paths([path])
    photo = window.card.outcome.photo
    assert (photo.width, photo.height) == (200, 300)


def test_folder_drop_offers_the_batch_dialog(qtbot, make_window, tmp_path):
    calls = []

    class FakeBatchDialog(QDialog):
        from PySide6.QtCore import Signal

        open_result_requested = Signal(object)

        def __init__(self, parent, *, predictor_provider, initial_folder=None, country=None):
            super().__init__(parent)
            calls.append((predictor_provider, initial_folder))

    window = make_window(batch_dialog_factory=FakeBatchDialog)
    folder = tmp_path / "trip"
    folder.mkdir()
    draw_photo(folder / "a.png")
    send_drop(window, mime_with_urls(QUrl.fromLocalFile(str(folder))))
    assert len(calls) == 1
    provider, initial = calls[0]
    assert Path(initial) == folder
    assert provider() is not None  # the loaded predictor, ready for the batch engine
    assert window.session_list.count() == 0

    # a row double-clicked in the batch window opens its result here, keeping the batch's answer
    from snakeid_desktop.results import FileResult

    result = FileResult(path=str(folder / "a.png"), prediction=provider().predict_images([Image.open(folder / "a.png").convert("RGB")])[0])
    with qtbot.waitSignal(window.outcome_displayed, timeout=20_000):
        window.batch_dialog.open_result_requested.emit(result)
    assert window.card.outcome.result is result
    assert window.card.photo.has_image()
    window.batch_dialog.close()


def test_folder_drop_opens_the_real_batch_dialog_and_closing_the_window_closes_it(qtbot, window, tmp_path):
    batch_dialog = pytest.importorskip("snakeid_desktop.gui.batch_dialog")
    folder = tmp_path / "field trip"
    folder.mkdir()
    draw_photo(folder / "a.png")
    with qtbot.waitSignal(window.batch_dialog_opened) as blocker:
        send_drop(window, mime_with_urls(QUrl.fromLocalFile(str(folder))))
    dialog = blocker.args[0]
    assert isinstance(dialog, batch_dialog.BatchDialog)
    assert Path(dialog.folder_edit.text()) == folder
    # Ctrl+B while it is open brings the same window forward rather than a second one
    window.batch_action.trigger()
    assert window.batch_dialog is dialog
    window.close()
    assert not window.controller.is_running


def test_batch_menu_without_the_dialog_module_says_so(qtbot, window, monkeypatch):
    monkeypatch.setitem(sys.modules, "snakeid_desktop.gui.batch_dialog", None)  # import raises ImportError
    with qtbot.waitSignal(window.message_shown) as blocker:
        window.batch_action.trigger()
    assert "batch window is not available" in blocker.args[0]


def test_old_photos_are_released_and_decoded_again_on_revisit(qtbot, window, tmp_path, monkeypatch):
    monkeypatch.setattr(window.session, "photos_kept", 1)
    paths = [draw_photo(tmp_path / f"m{i}.png") for i in range(3)]
    window.open_paths(paths)
    qtbot.waitUntil(lambda: all(e.outcome is not None for e in window.entries.values()), timeout=20_000)
    first, second, third = window.entries.values()
    assert first.outcome.photo is not None  # on the card: kept
    assert second.outcome.photo is None and second.photo_evicted
    assert third.outcome.photo is not None
    answer = second.outcome.result
    window.session_list.setCurrentItem(window.item_of(second))
    qtbot.waitUntil(lambda: second.outcome.photo is not None and window.card.photo.has_image(), timeout=20_000)
    assert second.outcome.result is answer  # only the photo was decoded again
    assert window.card.outcome is second.outcome


def test_showing_an_answered_photo_again_never_runs_the_model(qtbot, make_window, predictor, tmp_path):
    """An evicted photo shown again, and a batch row opened here, are only decoded (decode-only requests)."""
    counting = SlowPredictor(predictor)  # counts forward passes
    window = make_window(predictor_factory=factory_for(counting))
    window.session.photos_kept = 1
    paths = [draw_photo(tmp_path / f"n{i}.png") for i in range(3)]
    window.open_paths(paths)
    qtbot.waitUntil(lambda: all(e.outcome is not None for e in window.entries.values()), timeout=20_000)
    assert counting.calls == 3
    _, evicted, _ = window.entries.values()
    assert evicted.photo_evicted
    answer = evicted.outcome.result
    with qtbot.waitSignal(window.outcome_displayed, timeout=20_000, check_params_cb=lambda o: o.photo is not None):
        window.session_list.setCurrentItem(window.item_of(evicted))
    assert window.card.photo.has_image() and window.card.outcome.result is answer
    from snakeid_desktop.results import FileResult

    other = draw_photo(tmp_path / "batch-row.png")
    batch_answer = FileResult(path=str(other), prediction=answer.prediction)
    with qtbot.waitSignal(window.outcome_displayed, timeout=20_000):
        window.show_file_result(batch_answer)
    assert window.card.outcome.result is batch_answer and window.card.photo.has_image()
    assert len(window.entries) == 4
    qtbot.wait(50)
    assert counting.calls == 3  # neither the re-shown photo nor the batch row went through the model


def test_a_decode_only_request_returns_pixels_without_a_prediction(qtbot, make_window, predictor, photo):
    from snakeid_desktop.request_queue import RequestKind

    counting = SlowPredictor(predictor)
    window = make_window(predictor_factory=factory_for(counting))
    with qtbot.waitSignal(window.controller.outcome_ready, timeout=20_000) as blocker:
        window.controller.submit([PathSource(str(photo))], kind=RequestKind.DECODE_ONLY)
    outcome = blocker.args[0]
    assert outcome.photo is not None and outcome.thumbnail is not None
    assert outcome.result.prediction is None and outcome.result.error is None
    assert counting.calls == 0
    assert window.controller.pending_count() == 0  # claimed: nothing is left wanted


def test_removing_and_clearing_the_session(qtbot, window, tmp_path):
    paths = [draw_photo(tmp_path / f"r{i}.png") for i in range(3)]
    with qtbot.waitSignal(window.outcome_displayed, timeout=20_000):
        window.open_paths(paths)
    window.session_list.setFocus()
    window.remove_current()
    assert window.session_list.count() == 2 and len(window.entries) == 2
    window.clear_session()
    assert window.session_list.count() == 0 and window.entries == {}
    assert window.stack.currentWidget() is window.drop_zone
    assert window.queue_status.text() == ""


# ---------------------------------------------------------------- the worker


def test_gui_keeps_processing_events_while_a_slow_model_runs(qtbot, make_window, predictor, photo):
    slow = SlowPredictor(predictor, delay=1.0)
    window = make_window(predictor_factory=factory_for(slow))
    ticks = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    with qtbot.waitSignal(window.outcome_displayed, timeout=20_000):
        window.open_paths([photo])
        assert window.queue_status.text() == "1 photo to classify"
        assert window.card.busy.isVisibleTo(window.card)
    timer.stop()
    assert slow.calls == 1
    assert window.queue_status.text() == ""
    # ~50 ticks are due during the 1 s forward pass; a blocked GUI thread would get ~1.
    assert len(ticks) >= 10
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    assert max(gaps) < 0.5


def test_closing_mid_inference_is_clean(qtbot, make_window, predictor, photo):
    gate = threading.Event()
    slow = SlowPredictor(predictor, gate=gate)
    window = make_window(predictor_factory=factory_for(slow))
    controller = window.controller
    with qtbot.waitSignal(controller.request_started, timeout=10_000):
        window.open_paths([photo])
    shown = []
    window.outcome_displayed.connect(shown.append)
    threading.Timer(0.2, gate.set).start()  # the forward pass ends while close() waits
    window.close()
    assert not controller.is_running
    assert running_worker_threads() == []
    qtbot.wait(50)  # any late cross-thread signal would be delivered now
    assert shown == []


def test_closing_while_the_model_loads_is_clean(qtbot, make_window, predictor):
    loading = threading.Event()

    def slow_factory(weights_dir):
        loading.set()
        time.sleep(0.3)
        return predictor

    window = make_window(predictor_factory=slow_factory, wait_ready=False)
    qtbot.waitUntil(loading.is_set, timeout=10_000)  # start() runs from the event loop after show
    window.close()
    assert not window.controller.is_running


def test_stale_requests_are_dropped(qtbot, make_window, predictor, tmp_path):
    gate = threading.Event()
    slow = SlowPredictor(predictor, gate=gate)
    window = make_window(predictor_factory=factory_for(slow))
    controller = window.controller
    a, b, c = (draw_photo(tmp_path / f"{n}.png") for n in "abc")
    received = []
    controller.outcome_ready.connect(lambda o: received.append(Path(o.result.path).name))
    (first,) = controller.submit([PathSource(str(a))])
    qtbot.waitUntil(lambda: slow.calls == 1, timeout=10_000)  # the worker is inside the forward pass
    second, third = controller.submit([PathSource(str(b)), PathSource(str(c))])
    controller.cancel(first)  # in flight: its result must be dropped
    controller.cancel(second)  # queued: never run
    gate.set()
    qtbot.waitUntil(lambda: received == ["c.png"], timeout=10_000)
    qtbot.wait(100)
    assert received == ["c.png"]
    assert slow.calls == 2  # a (in flight when cancelled) and c; b never ran


def test_worker_errors_surface_in_the_window(qtbot, make_window, predictor, photo):
    failing = SlowPredictor(predictor, error=RuntimeError("simulated model failure"))
    window = make_window(predictor_factory=factory_for(failing))
    with qtbot.waitSignal(window.message_shown, timeout=20_000) as blocker:
        window.open_paths([photo])
    assert "simulated model failure" in blocker.args[0]
    assert window.card.headline_text() == "Something went wrong"
    assert "error" in window.session_list.item(0).text()
    # the worker is still alive and serves the next request
    failing.error = None
    with qtbot.waitSignal(window.outcome_displayed, timeout=20_000):
        window.open_paths([photo])
    assert_well_formed_card(window)


def test_missing_model_gives_a_clear_state(qtbot, make_window, tmp_path, photo):
    window = make_window(weights_dir=tmp_path / "no-weights-here")
    assert window.controller.state == "failed"
    assert "No model is installed" in window.drop_zone.status.text()
    assert "No model is installed" in window.message_label.text()
    assert window.model_status.text() == "No model"
    with qtbot.waitSignal(window.outcome_displayed, timeout=20_000):
        window.open_paths([photo])
    assert window.card.headline_text() == "No model is installed"
    assert window.card.photo.has_image()  # the photo is still shown
    from snakeid_desktop.errors import ModelBundleError

    with pytest.raises(ModelBundleError, match="No model is installed"):
        window.controller.predictor()


# ---------------------------------------------------------------- settings and shortcuts


def test_top_k_setting_changes_the_card_and_persists(qtbot, make_window, settings, photo):
    window = make_window()
    with qtbot.waitSignal(window.outcome_displayed, timeout=20_000):
        window.open_paths([photo])
    window.top_k_spin.setValue(5)
    assert len(window.card.candidate_rows) >= 5
    window.top_k_spin.setValue(1)
    risky = window.card.outcome.result.prediction.risk
    assert len(window.card.candidate_rows) == 1 or risky
    window.close()
    reread = AppSettings(settings.path)
    assert reread.top_k == 1
    assert reread.window_geometry is not None


def test_settings_ignore_corrupt_values(tmp_path):
    path = tmp_path / "s.ini"
    path.write_text("[results]\ntop_k=banana\n[files]\nlast_folder=/definitely/not/here\n")
    settings = AppSettings(path)
    assert settings.top_k == 3
    assert settings.last_folder is None
    settings.top_k = 99
    assert settings.top_k == 10


def test_keyboard_shortcuts_are_wired(window):
    assert window.open_action.shortcut().matches(Qt.CTRL | Qt.Key_O)
    assert window.paste_action.shortcut().matches(Qt.CTRL | Qt.Key_V)
    assert window.batch_action.shortcut().matches(Qt.CTRL | Qt.Key_B)
    for widget in (window.open_button, window.paste_button, window.batch_button, window.top_k_spin, window.session_list):
        assert widget.accessibleName()


def test_session_is_usable_from_the_keyboard(qtbot, window, tmp_path):
    paths = [draw_photo(tmp_path / f"k{i}.png") for i in range(2)]
    window.open_paths(paths)
    qtbot.waitUntil(lambda: all(e.outcome is not None for e in window.entries.values()), timeout=20_000)
    shown_first = window.card.outcome.result.path
    window.session_list.setFocus()
    start_row = window.session_list.currentRow()
    qtbot.keyClick(window.session_list, Qt.Key.Key_Up if start_row else Qt.Key.Key_Down)
    assert window.card.outcome.result.path != shown_first
    qtbot.keyClick(window.session_list, Qt.Key.Key_Delete)
    assert window.session_list.count() == 1


def test_about_box_lists_model_and_licences(qtbot, window):
    from snakeid_desktop.gui.about import AboutDialog

    dialog = AboutDialog(window.controller.model_info, None, window.catalogue, window)
    qtbot.addWidget(dialog)
    text = dialog.text.toPlainText()
    assert "Version" in text and "test" in text
    assert "Puff adder" in text and "validation accuracy 50%" in text
    assert "LGPL" in text
    assert "not a medical diagnosis" in text


# ---------------------------------------------------------------- the entry point


def _run_app(args, tmp_path, timeout=120):
    # The app's real default folders (platformdirs) under a temporary HOME, so not conftest's SNAKEID_HOME.
    env = {
        **{k: v for k, v in os.environ.items() if k != "SNAKEID_HOME"},
        "QT_QPA_PLATFORM": "offscreen",
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "APPDATA": str(tmp_path / "appdata"),  # Windows: platformdirs ignores HOME
        "LOCALAPPDATA": str(tmp_path / "localappdata"),
        "SNAKEID_LAUNCH_EPOCH": repr(time.time()),
    }
    return subprocess.run(
        [sys.executable, "-m", "snakeid_desktop", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_smoke_quit_loads_the_model_and_reports_timings(tmp_path, test_bundle_dir):
    proc = _run_app(["--smoke-quit", "--weights", str(test_bundle_dir)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["ok"] is True and report["reference"] == "SNAKEID_LAUNCH_EPOCH"
    assert 0 < report["window_shown_s"] <= report["model_ready_s"]
    logs = [p for p in tmp_path.rglob("snakeid-desktop.log")]
    assert logs, "the log file should be under the temporary HOME"


def test_smoke_quit_fails_without_a_model(tmp_path):
    proc = _run_app(["--smoke-quit", "--weights", str(tmp_path / "missing")], tmp_path)
    assert proc.returncode == 1
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["ok"] is False and "No model is installed" in report["error"]


# ---------------------------------------------------------------- sorting what was dropped or pasted


def test_sort_mime_handles_data_urls_quoted_paths_and_mixed_drops(qapp, tmp_path, photo):
    import base64

    from snakeid_desktop.gui.intake import sort_mime
    from snakeid_desktop.request_queue import BytesSource

    mime = QMimeData()
    mime.setUrls([QUrl("data:image/png;base64," + base64.b64encode(photo.read_bytes()).decode())])
    sorted_input = sort_mime(mime)
    assert len(sorted_input.sources) == 1 and isinstance(sorted_input.sources[0], BytesSource)
    assert sorted_input.sources[0].data == photo.read_bytes()

    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    text = QMimeData()
    text.setText(f'"{photo}"\n{QUrl.fromLocalFile(str(notes)).toString()}\nhttps://example.org/a.jpg\n{tmp_path}\n')
    sorted_input = sort_mime(text, "pasted image")
    assert [s.path for s in sorted_input.sources] == [str(photo)]
    assert sorted_input.not_images == ["notes.txt"]
    assert sorted_input.remote == ["https://example.org/a.jpg"]
    assert sorted_input.folders == [tmp_path]

    gone = QMimeData()
    gone.setUrls([QUrl.fromLocalFile(str(tmp_path / "deleted.jpg"))])
    assert sort_mime(gone).missing == [str(tmp_path / "deleted.jpg")]


def test_where_are_you_re_answers_the_session_and_is_remembered(qtbot, make_window, settings, tmp_path):
    window = make_window()
    path = draw_photo(tmp_path / "snake.png")
    with qtbot.waitSignal(window.outcome_displayed, timeout=20_000):
        window.open_paths([path])
    first = window.card.outcome.result.prediction
    assert first.country is None and "Answering for anywhere" in window.card.region_line.text()

    # Iceland: none of SnakeID's species lives there. The photo on the card is answered again.
    with qtbot.waitSignal(window.outcome_displayed, timeout=20_000):
        window.country_picker.set_country("IS")
    again = window.card.outcome.result.prediction
    assert (again.verdict, again.country, again.country_source) == ("outside_coverage", "IS", "option")
    assert window.card.risk_banner.isVisible() and "Iceland" in window.card.risk_banner.text()
    assert len(window.entries) == 1  # the same photo, not a second entry
    assert settings.country == "IS"

    with qtbot.waitSignal(window.outcome_displayed, timeout=20_000):
        window.country_picker.set_country("PH")
    ph = window.card.outcome.result.prediction
    from snakeid_desktop.catalogue import default_catalogue

    assert ph.country == "PH" and all("PH" in default_catalogue().get(c.species).countries for c in ph.top)
    window.close()
    # A new window starts with the remembered choice and sends it with every request.
    second = make_window()
    assert second.country_picker.country() == "PH" and second.controller.country == "PH"


def test_country_picker_searches_and_ignores_unknown_text(qtbot):
    from snakeid_desktop.gui.country_picker import CountryPicker

    picker = CountryPicker("MZ")
    qtbot.addWidget(picker)
    assert picker.country() == "MZ" and picker.itemText(0) == "Anywhere"
    assert picker.findText("Philippines (PH)") > 0
    picker.set_country("nowhere")
    assert picker.country() is None
    picker.setEditText("Atlantis")
    picker.lineEdit().editingFinished.emit()
    assert picker.currentText() == "Anywhere" and picker.country() is None


def test_a_non_finite_model_output_is_an_error_on_the_card(qtbot, make_window, tmp_path):
    import torch

    from snakeid_desktop.predictor import Predictor

    def nan_predictor(weights_dir):
        predictor = Predictor.load(weights_dir, num_threads=1)
        real = predictor._probabilities
        predictor._probabilities = lambda batch, model, space: torch.full_like(real(batch, model, space), float("nan"))
        return predictor

    window = make_window(predictor_factory=nan_predictor)
    with qtbot.waitSignal(window.outcome_displayed, timeout=20_000):
        window.open_paths([draw_photo(tmp_path / "snake.png")])
    assert window.card.headline_text() == "The model gave no usable answer"
    assert "NaN" in window.card.summary.text() or "infinite" in window.card.summary.text()
