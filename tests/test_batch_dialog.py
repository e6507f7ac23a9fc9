"""The batch window end to end (offscreen): run, cancel, close mid-run, filters, export, sort + undo, resume."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QThread, Qt  # noqa: E402

from snakeid_desktop.export import read_csv  # noqa: E402
from snakeid_desktop.gui.batch_dialog import BatchDialog  # noqa: E402
from snakeid_desktop.gui.batch_model import COL_PATH, RESULT_ROLE, confidence, shown_species  # noqa: E402
from tests.conftest import SlowPredictor  # noqa: E402
from tests.test_batch import make_folder, make_photo, snapshot  # noqa: E402

# The offscreen platform plugin warns about size hints; a limitation of that plugin, not of the app.
pytestmark = [
    pytest.mark.qt_log_ignore("This plugin does not support (propagateSizeHints|raise)"),
    pytest.mark.usefixtures("no_threads_left_behind"),
]


@pytest.fixture(autouse=True)
def private_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("SNAKEID_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SNAKEID_DATA_DIR", str(tmp_path / "data"))


def open_dialog(qtbot, folder, provider, **kwargs) -> BatchDialog:
    dialog = BatchDialog(None, predictor_provider=provider, initial_folder=str(folder), **kwargs)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def run_to_end(qtbot, dialog, timeout=60_000) -> dict:
    with qtbot.waitSignal(dialog.job_finished, timeout=timeout):
        with qtbot.waitSignal(dialog.run_finished, timeout=timeout) as blocker:
            dialog.start()
    return blocker.args[0]


def test_run_completes_with_one_row_per_file(qtbot, tmp_path, predictor):
    folder = tmp_path / "photos"
    files = make_folder(folder, good=10)
    make_photo(folder / "sub" / "deep.jpg", 77)
    before = snapshot(files["good"] + files["bad"])
    dialog = open_dialog(qtbot, folder, lambda: predictor)
    assert dialog.folder_edit.text() == str(folder)

    summary = run_to_end(qtbot, dialog)

    total = len(files["good"]) + len(files["bad"]) + 1
    assert summary["total"] == total and summary["rows"] == total and not summary["cancelled"]
    assert summary["failures"] == len(files["bad"])
    assert dialog.model.rowCount() == total
    paths = [r.path for r in dialog.model.results()]
    assert len(set(paths)) == total and str(folder / "sub" / "deep.jpg") in paths
    # Ten candidates, like the main window, so a row and its double-clicked card list the same species.
    assert {len(r.prediction.top) for r in dialog.model.results() if r.ok} == {10}
    assert dialog.progress_bar.value() == total == dialog.progress_bar.maximum()
    assert f"Done: {total} photos" in dialog.status_label.text()
    assert dialog.start_button.isEnabled() and not dialog.cancel_button.isEnabled()
    assert dialog.export_csv_button.isEnabled()
    assert snapshot(files["good"] + files["bad"]) == before


def test_not_recursive_leaves_sub_folders_out(qtbot, tmp_path, predictor):
    folder = tmp_path / "photos"
    make_photo(folder / "top.png", 1)
    make_photo(folder / "sub" / "deep.png", 2)
    dialog = open_dialog(qtbot, folder, lambda: predictor)
    dialog.recursive_check.setChecked(False)
    assert run_to_end(qtbot, dialog)["total"] == 1


def test_cancel_keeps_partial_results(qtbot, tmp_path, predictor):
    folder = tmp_path / "photos"
    for i in range(120):
        make_photo(folder / f"p{i:03d}.png", i)
    slow = SlowPredictor(predictor, delay=0.2)
    dialog = open_dialog(qtbot, folder, lambda: slow)
    with qtbot.waitSignal(dialog.run_finished, timeout=60_000) as blocker:
        dialog.start()
        qtbot.waitUntil(lambda: dialog.model.rowCount() > 0, timeout=30_000)
        status = dialog.status_label.text()
        assert "/ 120 photos" in status and "photos/s" in status and "left" in status
        assert 0 < dialog.progress_bar.value() < 120 and dialog.progress_bar.maximum() == 120
        assert dialog.cancel_button.isEnabled() and not dialog.start_button.isEnabled()
        dialog.cancel()
    summary = blocker.args[0]
    qtbot.waitUntil(lambda: not dialog.is_busy)
    assert summary["cancelled"]
    kept = dialog.model.rowCount()
    assert 0 < kept < 120
    assert [r.path for r in dialog.model.results()] == [str(folder / f"p{i:03d}.png") for i in range(kept)]
    assert "Stopped after" in dialog.status_label.text()
    assert dialog.export_csv_button.isEnabled()  # partial results can be exported


def test_closing_mid_run_stops_the_worker_cleanly(qtbot, tmp_path, predictor):
    folder = tmp_path / "photos"
    for i in range(160):  # ten batches of 16
        make_photo(folder / f"p{i:03d}.png", i)
    slow = SlowPredictor(predictor, delay=0.2)
    dialog = open_dialog(qtbot, folder, lambda: slow)
    dialog.start()
    qtbot.waitUntil(lambda: dialog.model.rowCount() > 0, timeout=30_000)
    thread = dialog._op.qthread
    assert isinstance(thread, QThread) and thread.isRunning()
    started = time.monotonic()
    dialog.close()
    assert not thread.isRunning()
    assert time.monotonic() - started < 10  # cancel is honoured between batches
    calls_at_close = slow.calls
    assert calls_at_close <= 4  # stopped within a batch or two of the close, not after all ten
    qtbot.wait(300)
    assert slow.calls == calls_at_close  # nothing keeps classifying after the window closed
    assert not [t for t in threading.enumerate() if t.name.startswith("snakeid-decode")]


def test_closing_while_the_model_still_loads(qtbot, tmp_path, predictor):
    folder = tmp_path / "photos"
    make_photo(folder / "a.png", 1)
    release = threading.Event()

    def slow_provider():
        release.wait(5)
        return predictor

    dialog = open_dialog(qtbot, folder, slow_provider)
    dialog.start()
    qtbot.waitUntil(lambda: dialog.progress_bar.maximum() == 1, timeout=10_000)  # scanned, now loading
    thread = dialog._op.qthread
    assert thread is not None and thread.isRunning()
    threading.Timer(0.3, release.set).start()
    dialog.close()  # waits for the provider, then the engine sees the cancel flag
    assert release.is_set() and not thread.isRunning()
    assert dialog.model.rowCount() == 0  # cancelled before classifying anything


def test_filters_and_sorting(qtbot, tmp_path, predictor):
    folder = tmp_path / "photos"
    files = make_folder(folder, good=8)
    dialog = open_dialog(qtbot, folder, lambda: predictor)
    run_to_end(qtbot, dialog)
    model = dialog.model  # it filters and sorts itself (no proxy model)
    total = dialog.model.total_count()

    dialog.verdict_filter.setCurrentIndex(dialog.verdict_filter.findData("error"))
    assert model.rowCount() == len(files["bad"])
    assert f"{len(files['bad'])} of {total} shown" == dialog.shown_label.text()
    errors = {model.result_for(model.index(r, 0)).path for r in range(model.rowCount())}
    assert errors == {str(p) for p in files["bad"]}

    dialog.verdict_filter.setCurrentIndex(0)
    assert model.rowCount() == total
    probs = [confidence(r) for r in dialog.model.results() if r.ok]
    threshold = sorted(probs)[len(probs) // 2]
    dialog.confidence_filter.setValue(round(threshold * 100))
    shown = [model.result_for(model.index(r, 0)) for r in range(model.rowCount())]
    assert shown and all(r.ok and confidence(r) >= dialog.confidence_filter.value() / 100 for r in shown)
    assert len(shown) == sum(p >= dialog.confidence_filter.value() / 100 for p in probs)
    dialog.confidence_filter.setValue(0)

    named = [shown_species(r) for r in dialog.model.results() if shown_species(r) is not None]
    if named:  # a random model may call every photo "not a snake"
        slug = named[0].species
        dialog.species_filter.setCurrentIndex(dialog.species_filter.findData(slug))
        shown = [model.result_for(model.index(r, 0)) for r in range(model.rowCount())]
        assert len(shown) == sum(s.species == slug for s in named)
        assert all(shown_species(r).species == slug for r in shown)
        dialog.species_filter.setCurrentIndex(0)

    # Sorting by confidence is numeric, errors last when descending.
    dialog.table.sortByColumn(3, Qt.SortOrder.DescendingOrder)
    ordered = [model.result_for(model.index(r, 0)) for r in range(model.rowCount())]
    ok_probs = [confidence(r) for r in ordered if r.ok]
    assert ok_probs == sorted(ok_probs, reverse=True)
    assert all(not r.ok for r in ordered[len(ok_probs):])


def test_double_click_asks_to_open_the_result(qtbot, tmp_path, predictor):
    folder = tmp_path / "photos"
    make_folder(folder, good=3)
    dialog = open_dialog(qtbot, folder, lambda: predictor)
    run_to_end(qtbot, dialog)
    index = dialog.model.index(1, COL_PATH)
    expected = dialog.model.data(index, RESULT_ROLE)
    with qtbot.waitSignal(dialog.open_result_requested) as blocker:
        dialog.table.doubleClicked.emit(index)
    assert blocker.args[0] is expected


def test_thumbnails_arrive_on_demand(qtbot, tmp_path, predictor):
    folder = tmp_path / "photos"
    make_photo(folder / "a.png", 1)
    dialog = open_dialog(qtbot, folder, lambda: predictor)
    run_to_end(qtbot, dialog)
    index = dialog.model.index(0, COL_PATH)

    def has_icon():
        icon = dialog.model.data(index, Qt.ItemDataRole.DecorationRole)
        return icon is not None and not icon.isNull()

    qtbot.waitUntil(has_icon, timeout=10_000)


def test_export_from_the_dialog(qtbot, tmp_path, predictor):
    folder = tmp_path / "photos"
    files = make_folder(folder, good=4)
    dialog = open_dialog(qtbot, folder, lambda: predictor)
    run_to_end(qtbot, dialog)
    assert dialog.export_to(tmp_path / "out.csv")
    assert dialog.export_to(tmp_path / "out.json")
    rows = read_csv(tmp_path / "out.csv")
    data = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    expected = [r.to_json() for r in dialog.model.results()]
    assert data == expected
    assert [r["path"] for r in rows] == [d["path"] for d in expected]
    assert sum(r["status"] == "error" for r in rows) == len(files["bad"])
    assert not dialog.export_to(tmp_path / "missing" / "out.csv")
    assert "Could not write" in dialog.status_label.text()


def test_sort_into_folders_and_undo(qtbot, tmp_path, predictor, monkeypatch):
    folder = tmp_path / "photos"
    files = make_folder(folder, good=6)
    everything = files["good"] + files["bad"]
    before = snapshot(everything)
    dialog = open_dialog(qtbot, folder, lambda: predictor)
    run_to_end(qtbot, dialog)
    dest = tmp_path / "sorted"

    with qtbot.waitSignal(dialog.job_finished, timeout=30_000):
        assert dialog.sort_into(dest)
    assert dialog.last_sort.done == len(everything) and dialog.last_sort.mode == "copy"
    copies = [p for p in dest.rglob("*") if p.is_file()]
    assert len(copies) == len(everything)
    assert sorted(p.name for p in (dest / "errors").iterdir()) == sorted(p.name for p in files["bad"])
    assert snapshot(everything) == before
    assert dialog.undo_button.isEnabled()

    # Moving needs a confirmation; refusing it changes nothing.
    monkeypatch.setattr(dialog, "_confirm_move", lambda count, destination: False)
    assert not dialog.sort_into(tmp_path / "moved", move=True)
    assert not (tmp_path / "moved").exists() and snapshot(everything) == before

    with qtbot.waitSignal(dialog.job_finished, timeout=30_000):
        assert dialog.undo_last_sort()
    assert not [p for p in dest.rglob("*") if p.is_file()]
    assert snapshot(everything) == before
    assert not dialog.undo_button.isEnabled()


def test_confirmed_move_and_undo(qtbot, tmp_path, predictor, monkeypatch):
    folder = tmp_path / "photos"
    files = make_folder(folder, good=3)
    everything = files["good"] + files["bad"]
    before = snapshot(everything)
    dialog = open_dialog(qtbot, folder, lambda: predictor)
    run_to_end(qtbot, dialog)
    monkeypatch.setattr(dialog, "_confirm_move", lambda count, destination: True)
    with qtbot.waitSignal(dialog.job_finished, timeout=30_000):
        assert dialog.sort_into(tmp_path / "moved", move=True)
    assert not any(p.exists() for p in everything)
    with qtbot.waitSignal(dialog.job_finished, timeout=30_000):
        dialog.undo_last_sort()
    assert snapshot(everything) == before


def test_rerun_reuses_cached_results(qtbot, tmp_path, predictor):
    folder = tmp_path / "photos"
    files = make_folder(folder, good=5)
    dialog = open_dialog(qtbot, folder, lambda: predictor)
    first = run_to_end(qtbot, dialog)
    assert first["cache_hits"] == 0
    first_rows = [r.to_json() for r in dialog.model.results()]
    second = run_to_end(qtbot, dialog)
    assert second["cache_hits"] == len(files["good"])
    assert "reused from an earlier run" in dialog.status_label.text()
    assert [r.to_json() for r in dialog.model.results()] == first_rows


def test_missing_folder_and_model_errors_are_reported(qtbot, tmp_path):
    from snakeid_desktop.errors import ModelBundleError

    def no_model():
        raise ModelBundleError("No model is installed: weights/model.json is missing.")

    dialog = open_dialog(qtbot, tmp_path / "nope", no_model)
    dialog.start()
    assert not dialog.is_busy and "not a folder" in dialog.status_label.text()
    folder = tmp_path / "photos"
    make_photo(folder / "a.png", 1)
    dialog.folder_edit.setText(str(folder))
    with qtbot.waitSignal(dialog.job_finished, timeout=30_000):
        dialog.start()
    assert dialog.status_label.text() == "No model is installed: weights/model.json is missing."
    assert dialog.start_button.isEnabled()


def test_rerun_after_touching_one_photo_shows_every_row(qtbot, tmp_path, predictor):
    folder = tmp_path / "photos"
    paths = [make_photo(folder / f"p{i:03d}.png", i, size=(40, 30)) for i in range(120)]
    dialog = open_dialog(qtbot, folder, lambda: predictor)
    run_to_end(qtbot, dialog)
    st = paths[7].stat()
    os.utime(paths[7], ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    second = run_to_end(qtbot, dialog)
    assert second["rows"] == 120 and second["cache_hits"] == 119
    assert [r.path for r in dialog.model.results()] == [str(p) for p in paths]


def test_a_run_with_a_missing_row_is_reported_as_a_failure(qtbot, tmp_path, predictor, monkeypatch):
    from snakeid_desktop import batch

    folder = tmp_path / "photos"
    for i in range(4):
        make_photo(folder / f"p{i}.png", i)
    real_run = batch.BatchEngine.run
    monkeypatch.setattr(batch.BatchEngine, "run", lambda self, paths, cancel=None: iter(list(real_run(self, paths, cancel))[:-1]))
    dialog = open_dialog(qtbot, folder, lambda: predictor)
    finished = []
    dialog.run_finished.connect(finished.append)
    with qtbot.waitSignal(dialog.job_finished, timeout=30_000):
        dialog.start()
    assert finished == []  # never reported as done
    assert "Only 3 of 4 photos got a result row" in dialog.status_label.text()
    assert dialog.model.total_count() == 3  # the rows that did come are still shown


def test_the_dialog_runs_the_core_folder_pipeline(qtbot, tmp_path, predictor, monkeypatch):
    """The dialog presents FolderRun's rows; it has no scan/cache/engine loop of its own."""
    from snakeid_desktop.batch import FolderRun
    from snakeid_desktop.gui.inference_worker import MAX_TOP_K

    folder = tmp_path / "photos"
    for i in range(3):
        make_photo(folder / f"p{i}.png", i)
    calls = []
    real_classify = FolderRun.classify

    def spy(self, predictor, **options):
        calls.append((self.folder, self.recursive, options))
        return real_classify(self, predictor, **options)

    monkeypatch.setattr(FolderRun, "classify", spy)
    dialog = open_dialog(qtbot, folder, lambda: predictor, country="IS")
    dialog.recursive_check.setChecked(False)
    summary = run_to_end(qtbot, dialog)
    assert summary["rows"] == 3 and len(calls) == 1
    run_folder, recursive, options = calls[0]
    assert (run_folder, recursive) == (folder, False)
    assert {k: options[k] for k in ("use_cache", "top_k", "country")} == {"use_cache": True, "top_k": MAX_TOP_K,
                                                                          "country": "IS"}


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_skipped_sub_folders_are_counted_and_named(qtbot, tmp_path, predictor):
    folder = tmp_path / "photos"
    make_photo(folder / "a.png", 1)
    (folder / "loop").symlink_to(folder, target_is_directory=True)
    dialog = open_dialog(qtbot, folder, lambda: predictor)
    summary = run_to_end(qtbot, dialog)
    assert summary["rows"] == 1 and len(summary["problems"]) == 1 and "symbolic link loop" in summary["problems"][0]
    assert "1 sub-folder(s) skipped: Skipped " in dialog.status_label.text()


def test_an_unexpected_failure_is_named_not_hidden(qtbot, tmp_path, caplog):
    folder = tmp_path / "photos"
    make_photo(folder / "a.png", 1)

    def broken():
        raise RuntimeError("provider bug")

    dialog = open_dialog(qtbot, folder, broken)
    with qtbot.waitSignal(dialog.job_finished, timeout=30_000):
        dialog.start()
    assert dialog.status_label.text() == "Unexpected error: RuntimeError: provider bug"
    assert any(r.exc_info and r.exc_info[0] is RuntimeError for r in caplog.records)  # with its traceback
    assert dialog.start_button.isEnabled() and dialog.progress_bar.maximum() == 1


def test_model_sorts_itself_and_keeps_selection(qtbot):
    from PySide6.QtCore import QItemSelectionModel
    from PySide6.QtWidgets import QTableView

    from snakeid_desktop.gui.batch_model import COL_PROBABILITY, BatchResultsModel
    from snakeid_desktop.results import Candidate, FileResult, Prediction

    def row(i, p):
        return FileResult(f"/p/{i}.jpg", Prediction("species", False, (Candidate("s", "S", "C", p, "no"),), 0.0))

    model = BatchResultsModel()
    view = QTableView()
    qtbot.addWidget(view)
    view.setModel(model)
    view.setSortingEnabled(True)
    model.append_results([row(0, 0.2), row(1, 0.9), FileResult("/p/bad.jpg", error="bad", error_kind="corrupt")])
    view.selectionModel().select(
        model.index(1, 0), QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
    view.sortByColumn(COL_PROBABILITY, Qt.SortOrder.DescendingOrder)
    paths = [model.result_for(model.index(r, 0)).path for r in range(model.rowCount())]
    assert paths == ["/p/1.jpg", "/p/0.jpg", "/p/bad.jpg"]
    selected = view.selectionModel().selectedRows()
    assert [model.result_for(i).path for i in selected] == ["/p/1.jpg"]  # the selection followed its row

    # Rows arriving while sorted are appended, then placed by resort() (the dialog calls it at the end).
    model.append_results([row(2, 0.5)])
    assert model.result_for(model.index(3, 0)).path == "/p/2.jpg"
    model.resort()
    assert [model.result_for(model.index(r, 0)).path for r in range(4)] == ["/p/1.jpg", "/p/2.jpg", "/p/0.jpg", "/p/bad.jpg"]
    view.sortByColumn(-1, Qt.SortOrder.AscendingOrder)  # back to scan order
    assert [model.result_for(model.index(r, 0)).path for r in range(4)] == ["/p/0.jpg", "/p/1.jpg", "/p/bad.jpg", "/p/2.jpg"]


def test_not_a_snake_rows_name_no_species(qtbot):
    from snakeid_desktop.gui.batch_model import COL_PROBABILITY, COL_SPECIES, COL_VENOM, BatchResultsModel
    from snakeid_desktop.results import Candidate, FileResult, Prediction

    mamba = Candidate("dendroaspis-polylepis", "Dendroaspis polylepis", "Black mamba", 0.04, "yes")
    model = BatchResultsModel()
    model.append_results([
        FileResult("/p/cat.jpg", Prediction("not_snake", False, (mamba,), 0.93)),
        FileResult("/p/maybe.jpg", Prediction("unsure", True, (mamba,), 0.1)),
    ])
    cell = lambda row, col: model.data(model.index(row, col))  # noqa: E731
    assert (cell(0, COL_SPECIES), cell(0, COL_VENOM), cell(0, COL_PROBABILITY)) == ("", "", "93.0 %")
    assert cell(1, COL_SPECIES) == "Black mamba (Dendroaspis polylepis)?"
    assert cell(1, COL_VENOM) == "⚠ Venomous" and cell(1, COL_PROBABILITY) == "4.0 %"


def test_rows_arriving_under_a_filter(qtbot):
    from snakeid_desktop.gui.batch_model import BatchResultsModel
    from snakeid_desktop.results import Candidate, FileResult, Prediction

    def row(i, p):
        return FileResult(f"/p/{i}.jpg", Prediction("species", False, (Candidate("s", "S", "C", p, "no"),), 0.0))

    model = BatchResultsModel()
    model.set_min_probability(0.5)
    with qtbot.waitSignal(model.rowsInserted):
        model.append_results([row(0, 0.2), row(1, 0.9), row(2, 0.7)])
    assert [model.result_at(r).path for r in range(model.rowCount())] == ["/p/1.jpg", "/p/2.jpg"]
    with qtbot.assertNotEmitted(model.rowsInserted):
        model.append_results([row(3, 0.1)])
    assert model.total_count() == 4 and [r.path for r in model.results()] == [f"/p/{i}.jpg" for i in range(4)]
    model.set_min_probability(0)
    assert model.rowCount() == 4


def test_the_dialogs_region_applies_to_every_row(qtbot, tmp_path, predictor):
    folder = tmp_path / "photos"
    for i in range(3):
        make_photo(folder / f"p{i}.png", i)
    dialog = open_dialog(qtbot, folder, lambda: predictor, country="IS")
    assert dialog.country_picker.country() == "IS"
    run_to_end(qtbot, dialog)
    rows = dialog.model.results()
    assert {(r.prediction.verdict, r.prediction.country, r.prediction.country_source) for r in rows} == {
        ("outside_coverage", "IS", "option")}
    assert all(r.prediction.risk for r in rows)
    dialog.country_picker.set_country(None)
    run_to_end(qtbot, dialog)  # anywhere: a different cache key, so answered afresh
    assert {r.prediction.country for r in dialog.model.results()} == {None}
