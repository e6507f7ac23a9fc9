"""The batch window end to end (offscreen): run, cancel, close mid-run, filters, export, sort + undo, resume."""

from __future__ import annotations

import json
import os
import threading
import time

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
    # notes.txt is no row; the summary says it was left out.
    assert "1 other file was not classified: not photos by their name (e.g. notes.txt)." in dialog.status_label.text()
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
    asked = []
    monkeypatch.setattr(dialog, "_confirm_sort", lambda *args: asked.append(args) or True)

    with qtbot.waitSignal(dialog.job_finished, timeout=30_000):
        assert dialog.sort_into(dest)
    # Copying asked first too: how many photos, into how many folders, where, and that it is new.
    assert asked == [(len(everything), len(dialog.last_sort.folders), dest, False, True)]
    assert dialog.last_sort.done == len(everything) and dialog.last_sort.mode == "copy"
    copies = [p for p in dest.rglob("*") if p.is_file()]
    assert len(copies) == len(everything)
    assert sorted(p.name for p in (dest / "errors").iterdir()) == sorted(p.name for p in files["bad"])
    assert snapshot(everything) == before
    assert dialog.undo_button.isEnabled()

    # Moving needs a confirmation; refusing it changes nothing.
    monkeypatch.setattr(dialog, "_confirm_sort", lambda count, folders, destination, move, new: False)
    assert not dialog.sort_into(tmp_path / "moved", move=True)
    assert dialog.status_label.text() == "Nothing was moved."
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
    monkeypatch.setattr(dialog, "_confirm_sort", lambda count, folders, destination, move, new: move)
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


def test_the_dialog_runs_the_core_folder_pipeline(qtbot, tmp_path, predictor, folder_run_calls):
    """The dialog presents FolderRun's rows; it has no scan/cache/engine loop of its own."""
    from snakeid_desktop.gui.inference_worker import MAX_TOP_K

    folder = tmp_path / "photos"
    for i in range(3):
        make_photo(folder / f"p{i}.png", i)
    calls = folder_run_calls
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


# ---------------------------------------------------------------- polish and accessibility


def _rows():
    from snakeid_desktop.results import Candidate, FileResult, Prediction

    mamba = Candidate("dendroaspis-polylepis", "Dendroaspis polylepis", "Black mamba", 0.059, "yes")
    mystery = Candidate("x-unknown", "Xus unknownus", "Mystery snake", 0.7, "unknown")
    return [
        FileResult("/p/cat.jpg", Prediction("not_snake", False, (mamba,), 0.895, 0.07)),
        FileResult("/p/mamba.jpg", Prediction("species", True, (mamba,), 0.01, 0.81)),
        FileResult("/p/odd.jpg", Prediction("unsure", True, (mystery,), 0.1, 0.75)),
        FileResult("/p/iceland.jpg", Prediction("outside_coverage", True, (), 0.2, None, country="IS")),
        FileResult("/p/bad.jpg", error="/p/bad.jpg: not an image file.", error_kind="not_an_image"),
    ]


def test_the_table_and_the_csv_give_the_same_numbers(qtbot, tmp_path):
    """One definition: "Confidence in verdict" is the CSV's verdict_probability, "Venomous chance" its
    venom_probability (a not-a-snake row shows 89.5 % there, and so does the CSV, beside the top species' 5.9 %)."""
    from snakeid_desktop.export import export_results
    from snakeid_desktop.gui.batch_model import COL_PROBABILITY, COL_VENOM_PROBABILITY, HEADERS, BatchResultsModel

    model = BatchResultsModel()
    model.append_results(_rows())
    export_results(model.results(), csv_path=tmp_path / "out.csv")
    rows = read_csv(tmp_path / "out.csv")
    assert (HEADERS[COL_PROBABILITY], HEADERS[COL_VENOM_PROBABILITY]) == ("Confidence in verdict", "Venomous chance")

    def as_percent(cell: str) -> str:
        return f"{float(cell) * 100:.1f} %" if cell else ""

    for r, csv_row in enumerate(rows):
        assert model.data(model.index(r, COL_PROBABILITY)) == as_percent(csv_row["verdict_probability"])
        if csv_row["verdict"] != "outside_coverage":
            assert model.data(model.index(r, COL_VENOM_PROBABILITY)) == as_percent(csv_row["venom_probability"])
    assert model.data(model.index(0, COL_PROBABILITY)) == "89.5 %" and rows[0]["probability"] == "0.059000"
    assert model.data(model.index(3, COL_VENOM_PROBABILITY)) == "Unknown"
    assert model.headerData(COL_PROBABILITY, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole)


def test_cells_read_aloud_say_what_symbols_and_colour_show(qtbot):
    from snakeid_desktop.gui.batch_model import COL_SPECIES, COL_VENOM, COL_VERDICT, BatchResultsModel

    model = BatchResultsModel()
    model.append_results(_rows())
    spoken = lambda row, col: model.data(model.index(row, col), Qt.ItemDataRole.AccessibleTextRole)  # noqa: E731
    assert model.data(model.index(1, COL_VENOM)) == "⚠ Venomous"
    assert spoken(1, COL_VENOM) == "Venom warning: Venomous"
    assert spoken(0, COL_SPECIES) == "No species named" and spoken(0, COL_VENOM) == "No venom warning"
    assert spoken(4, COL_VERDICT) == "Error: could not be classified"  # shown as red "Error"
    assert spoken(1, COL_SPECIES) == model.data(model.index(1, COL_SPECIES))  # plain text is read as shown


def test_accessible_names_of_the_whole_dialog(qtbot, tmp_path):
    from PySide6.QtGui import QAccessible

    dialog = open_dialog(qtbot, tmp_path, lambda: None)
    dialog.model.append_results(_rows())
    dialog.resize(1360, 800)
    qtbot.waitExposed(dialog)
    found, unnamed = {}, []
    interactive = {QAccessible.Role.Button, QAccessible.Role.CheckBox, QAccessible.Role.ComboBox,
                   QAccessible.Role.EditableText, QAccessible.Role.SpinBox, QAccessible.Role.ProgressBar,
                   QAccessible.Role.Table}

    def walk(iface, depth=0):
        if iface is None or not iface.isValid() or depth > 8:
            return
        widget = iface.object()
        # On Linux Qt names a combo box by its current text (the label is a relation): ask the widget too.
        name = iface.text(QAccessible.Text.Name) or ""
        own = widget.accessibleName() if hasattr(widget, "accessibleName") else ""
        found.setdefault(iface.role(), []).append(own or name)
        if iface.role() in interactive and not (own or name):
            unnamed.append((iface.role(), widget))
        if iface.role() != QAccessible.Role.ComboBox:  # skip the 250 countries
            for k in range(iface.childCount()):
                walk(iface.child(k), depth + 1)

    walk(QAccessible.queryAccessibleInterface(dialog))
    assert not unnamed
    names = {n for ns in found.values() for n in ns}
    assert {"Folder of photos to classify", "Classification progress", "Results", "Show verdict", "Show species",
            "Minimum confidence in verdict", "Start classifying", "Cancel the run", "Export CSV", "Export JSON",
            "Copy into per-species folders", "Move instead of copy", "Undo last sort", "Close",
            "Where were these photos taken?"} <= names
    # The table's cells as a screen reader gets them, the warning sign put into words.
    cells = found[QAccessible.Role.Cell]
    assert "Venom warning: Venomous" in cells and "Black mamba (Dendroaspis polylepis)" in cells
    assert "Confidence in verdict" in found[QAccessible.Role.ColumnHeader]


def test_short_columns_fit_their_words_at_1360(qtbot, tmp_path):
    from PySide6.QtWidgets import QHeaderView

    from snakeid_desktop.gui.batch_model import COL_NOTES, COL_SPECIES, COL_VENOM, COL_VERDICT

    dialog = open_dialog(qtbot, tmp_path, lambda: None)
    dialog.resize(1360, 800)
    qtbot.waitExposed(dialog)
    dialog._add_results(tuple(_rows()))  # as a run delivers them, after the window is shown
    header = dialog.table.horizontalHeader()
    assert header.sectionResizeMode(COL_PATH) == header.sectionResizeMode(COL_NOTES) == QHeaderView.ResizeMode.Stretch
    shown = {dialog.model.data(dialog.model.index(r, COL_VENOM)) for r in range(dialog.model.rowCount())}
    assert "⚠ Venom status unknown: treat as venomous" in shown
    for column in range(dialog.model.columnCount()):
        if column in (COL_PATH, COL_NOTES):
            continue
        widest = max(dialog.table.sizeHintForColumn(column), header.sectionSizeHint(column))
        assert dialog.table.columnWidth(column) >= widest, dialog.model.headerData(column, Qt.Orientation.Horizontal)
    assert dialog.table.columnWidth(COL_VERDICT) > dialog.table.fontMetrics().horizontalAdvance("Outside coverage")
    assert dialog.table.columnWidth(COL_SPECIES) > dialog.table.fontMetrics().horizontalAdvance(
        "Mystery snake (Xus unknownus)?")
    assert dialog.table.columnWidth(COL_PATH) >= 150  # what is left still shows a path


def test_the_progress_bar_counts_only_a_run(qtbot, tmp_path, predictor, monkeypatch):
    folder = tmp_path / "photos"
    files = make_folder(folder, good=2)
    total = len(files["good"]) + len(files["bad"])
    dialog = open_dialog(qtbot, folder, lambda: predictor)
    assert dialog.progress_bar.text() == ""  # not "0 / 1" before anything ran
    monkeypatch.setattr(dialog, "_confirm_sort", lambda *args: True)
    run_to_end(qtbot, dialog)
    assert dialog.progress_bar.text() == f"{total} / {total} photos"
    with qtbot.waitSignal(dialog.job_finished, timeout=30_000):
        dialog.sort_into(tmp_path / "sorted")
    assert dialog.progress_bar.text() == f"{total} / {total} photos"  # still the run's, not the sort's
    with qtbot.waitSignal(dialog.job_finished, timeout=30_000):
        dialog.undo_last_sort()
    assert dialog.progress_bar.text() == f"{total} / {total} photos"

    fresh = open_dialog(qtbot, folder, lambda: predictor)  # a window that never ran: undo shows no count
    fresh.model.append_results(dialog.model.results())
    monkeypatch.setattr(fresh, "_confirm_sort", lambda *args: True)
    with qtbot.waitSignal(fresh.job_finished, timeout=30_000):
        fresh.sort_into(tmp_path / "again")
    with qtbot.waitSignal(fresh.job_finished, timeout=30_000):
        assert fresh.undo_last_sort()
    assert fresh.progress_bar.text() == "" and "1 / 1" not in fresh.progress_bar.text()


def test_copying_asks_with_the_numbers_and_cancel_copies_nothing(qtbot, tmp_path, predictor):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    folder = tmp_path / "photos"
    files = make_folder(folder, good=3)
    dialog = open_dialog(qtbot, folder, lambda: predictor)
    run_to_end(qtbot, dialog)
    dest = tmp_path / "new" / "sorted"
    seen = []

    def answer(button_text_start):
        box = QApplication.activeModalWidget()
        assert isinstance(box, QMessageBox)
        seen.append((box.windowTitle(), box.text()))
        button = next(b for b in box.buttons() if b.text().startswith(button_text_start))
        button.click()

    total = len(files["good"]) + len(files["bad"])
    QTimer.singleShot(0, lambda: answer("Cancel"))
    assert not dialog.sort_into(dest)
    assert seen[0][0] == "Copy the photos?"
    assert f"Copy {total} photos into " in seen[0][1] and str(dest) in seen[0][1] and "will be created" in seen[0][1]
    assert not (tmp_path / "new").exists() and dialog.status_label.text() == "Nothing was copied."

    QTimer.singleShot(0, lambda: answer("Copy"))
    with qtbot.waitSignal(dialog.job_finished, timeout=30_000):
        assert dialog.sort_into(dest)
    folders = sorted(p.name for p in dest.iterdir())
    assert f"into {len(folders)} folders" in seen[1][1] and "errors" in folders
    # The count after the sort names every folder it filled, errors/ too.
    status = dialog.status_label.text()
    assert status.startswith(f"Copied {total} photos into {len(folders)} folders in {dest}.")
    assert f"{len(files['bad'])} that could not be classified went into “errors”" in status


def test_a_destination_that_is_a_file_is_refused_before_asking(qtbot, tmp_path, predictor, monkeypatch):
    folder = tmp_path / "photos"
    make_folder(folder, good=1)
    dialog = open_dialog(qtbot, folder, lambda: predictor)
    run_to_end(qtbot, dialog)
    monkeypatch.setattr(dialog, "_confirm_sort", lambda *args: pytest.fail("asked about an unusable folder"))
    blocker = tmp_path / "a file"
    blocker.write_bytes(b"mine")
    assert not dialog.sort_into(blocker)
    assert dialog.status_label.text() == f"{blocker} is a file, not a folder. Nothing was copied."
    assert not dialog.sort_into(blocker / "sorted")
    assert "Cannot create the folder" in dialog.status_label.text()
    assert blocker.read_bytes() == b"mine"


def test_the_folder_picker_takes_a_folder_that_does_not_exist_yet(qtbot, tmp_path):
    from PySide6.QtWidgets import QLineEdit

    from snakeid_desktop.gui.batch_dialog import DestinationPicker

    picker = DestinationPicker(None, "Folder to sort the photos into", str(tmp_path))
    qtbot.addWidget(picker)
    picker.show()
    name_field = picker.findChild(QLineEdit, "fileNameEdit")
    name_field.setText(str(tmp_path / "brand new" / "sorted"))
    picker.accept()
    assert picker.result() == picker.DialogCode.Accepted
    assert picker.chosen == str(tmp_path / "brand new" / "sorted")
    assert not (tmp_path / "brand new").exists()  # created only once the sort is confirmed

    typed = DestinationPicker(None, "Folder to sort the photos into", str(tmp_path))
    qtbot.addWidget(typed)
    typed.show()
    typed.findChild(QLineEdit, "fileNameEdit").setText("Sorted snakes")  # a bare new name, as people type it
    typed.accept()
    assert typed.chosen == str(tmp_path / "Sorted snakes") and not (tmp_path / "Sorted snakes").exists()

    (tmp_path / "existing").mkdir()
    again = DestinationPicker(None, "Folder to sort the photos into", str(tmp_path))
    qtbot.addWidget(again)
    again.show()
    again.findChild(QLineEdit, "fileNameEdit").setText(str(tmp_path / "existing"))
    again.accept()
    assert again.chosen == str(tmp_path / "existing")


def test_export_starts_in_documents_with_a_telling_name(qtbot, tmp_path, predictor, monkeypatch):
    import platformdirs
    from PySide6.QtWidgets import QFileDialog

    folder = tmp_path / "Field trip"
    make_folder(folder, good=1)
    documents = tmp_path / "Documents"
    documents.mkdir()
    monkeypatch.setattr(platformdirs, "user_documents_dir", lambda: str(documents))
    asked = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda parent, title, start, filters: asked.append(start) or ("", "")))
    dialog = open_dialog(qtbot, folder, lambda: predictor)
    run_to_end(qtbot, dialog)
    dialog._ask_export("csv")
    assert asked == [str(documents / f"snakeid-Field trip-{time.strftime('%Y-%m-%d')}.csv")]
    assert not list(documents.iterdir()) and not list(folder.glob("snakeid-*"))  # cancelled: nothing written
    elsewhere = tmp_path / "exports"
    elsewhere.mkdir()
    assert dialog.export_to(elsewhere / "x.json")
    dialog._ask_export("json")
    assert asked[-1] == str(elsewhere / f"snakeid-Field trip-{time.strftime('%Y-%m-%d')}.json")
