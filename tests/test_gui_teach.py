"""Teaching a species from the GUI (offscreen): the teach window, My species, and answers that say so.

Against the random test bundle, so accuracies are meaningless but well-formed. The store lives in
the per-test SNAKEID_HOME, so every test starts with no taught species. Photos are generated
striped pictures. A taught species with no countries is considered everywhere: in Iceland, where
none of SnakeID's own species live, it is the only candidate left, which makes it show on the card
whatever the random model thinks.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PIL import Image, ImageDraw  # noqa: E402
from PySide6.QtWidgets import QMessageBox  # noqa: E402

from snakeid_desktop.catalogue import default_catalogue  # noqa: E402
from snakeid_desktop.gui.inference_worker import ModelInfo, Outcome, RgbPixels  # noqa: E402
from snakeid_desktop.gui.main_window import MainWindow  # noqa: E402
from snakeid_desktop.gui.result_card import ResultCard  # noqa: E402
from snakeid_desktop.gui.taught import StoredRow, TaughtStatus, names_from_folder  # noqa: E402
from snakeid_desktop.gui.teach_dialog import VENOM_CHOICES, parse_countries  # noqa: E402
from snakeid_desktop.my_species import SpeciesStore  # noqa: E402
from snakeid_desktop.results import Candidate, FileResult, Prediction  # noqa: E402

pytestmark = [
    pytest.mark.qt_log_ignore("This plugin does not support (propagateSizeHints|raise)"),
    pytest.mark.usefixtures("no_threads_left_behind"),
]
NO_SPECIES_OF_ITS_OWN = "IS"  # Iceland: no snake lives there, so no bundled species is in play
WAIT_MS = 60_000


# ---------------------------------------------------------------- photos


def striped_photos(folder: Path, count: int = 8, extras: bool = True) -> Path:
    """``count`` different striped pictures, plus (``extras``) a text file and a broken JPEG to skip."""
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(count):
        image = Image.new("RGB", (160, 120), (20 + 10 * number, 20, 20))
        draw = ImageDraw.Draw(image)
        for x in range(0, 160, 10 + 3 * number):
            draw.rectangle([x, 0, x + 4 + number, 120], fill=(230, 200 - 10 * number, 0))
        image.save(folder / f"photo-{number}.png")
    if extras:
        (folder / "notes.txt").write_text("where I saw them")
        (folder / "broken.jpg").write_bytes(b"this is no JPEG")
    return folder


# ---------------------------------------------------------------- windows


def open_teach(window: MainWindow):
    window.open_teach_dialog()
    dialog = window.teach_dialog
    assert dialog is not None and dialog.isVisible()
    return dialog


def teach_now(qtbot, dialog) -> None:
    with qtbot.waitSignal(dialog.job_finished, timeout=WAIT_MS):
        dialog.start()


def open_my_species(qtbot, window: MainWindow):
    with qtbot.waitSignal(window.my_species_dialog_opened, timeout=5000) as opened:
        window.open_my_species_dialog()
    dialog = opened.args[0]
    qtbot.waitUntil(lambda: not dialog.is_busy, timeout=WAIT_MS)
    return dialog


def run_job(qtbot, dialog, action) -> None:
    with qtbot.waitSignal(dialog.job_finished, timeout=WAIT_MS):
        action()


def taught_candidate_rows(window: MainWindow):
    return [row for row in window.card.candidate_rows if "taught by you" in row.name_label.text()]


# ---------------------------------------------------------------- the teach window, end to end


def test_teach_end_to_end(window, qtbot, tmp_path):
    folder = striped_photos(tmp_path / "Boiga dendrophila")
    # A photo of the species already in this session, answered before it was taught.
    window.country_picker.set_country(NO_SPECIES_OF_ITS_OWN)
    window.open_paths([str(folder / "photo-0.png")])
    qtbot.waitUntil(lambda: window.card.outcome is not None, timeout=WAIT_MS)
    assert not taught_candidate_rows(window)

    dialog = open_teach(window)
    form = dialog.add_species(folder)
    assert form.scientific_edit.text() == "Boiga dendrophila"  # guessed from the folder's name
    assert form.venom_combo.currentData() == "unknown"  # never a silent "No"
    assert [value for value, _ in VENOM_CHOICES] == ["unknown", "yes", "mild", "no"]
    form.common_edit.setText("Mangrove snake")
    form.venom_combo.setCurrentIndex(form.venom_combo.findData("mild"))
    form.notes_edit.setText("Seen by the river")
    with qtbot.waitSignal(dialog.taught_changed, timeout=WAIT_MS) as changed:
        teach_now(qtbot, dialog)

    # The report: the species, its photos, what was skipped and why, the expected accuracy, the time.
    assert dialog.pages.currentIndex() == 1, dialog.status_label.text()
    report = dialog.report_view.toPlainText()
    assert "Taught 1 species in" in report
    assert "Mangrove snake (Boiga dendrophila) — mildly venomous" in report
    assert "8 photos used · 2 skipped (listed below) · 0 duplicates counted once" in report
    assert "of 8 of your photos (" in report and "were recognised when left out of teaching." in report
    assert "Only 8 photos" in report  # the core's warning: fewer than 10
    assert dialog.skipped_title.text() == "Skipped files (2)"
    group = dialog.skipped_list.topLevelItem(0)
    skipped = {group.child(i).text(0): group.child(i).text(1) for i in range(group.childCount())}
    assert set(skipped) == {"Boiga dendrophila/notes.txt", "Boiga dendrophila/broken.jpg"}  # where to find them
    assert all(skipped.values())  # each says why
    assert {group.child(i).toolTip(0) for i in range(group.childCount())} == {
        str(folder / "notes.txt"), str(folder / "broken.jpg")}

    # Kept, answered with, and said so.
    [species] = SpeciesStore().all()
    assert (species.common_name, species.venomous, species.notes) == ("Mangrove snake", "mild", "Seen by the river")
    status = changed.args[0]
    assert [info.common_name for info in status.in_use] == ["Mangrove snake"]
    predictor = window.controller.predictor(0)
    assert [sp.slug for sp in predictor.taught] == [species.slug]
    assert window.model_status.text().endswith("+ 1 taught by you")

    # The session's photo was answered again, and its card says the candidate was taught by the user.
    qtbot.waitUntil(lambda: bool(taught_candidate_rows(window)), timeout=WAIT_MS)
    [row] = taught_candidate_rows(window)
    assert "Mangrove snake (Boiga dendrophila) · mildly venomous — taught by you" in row.name_label.text()
    assert "taught by you" in row.bar.accessibleName()
    if window.card.outcome.result.prediction.verdict in ("species", "unsure"):  # the card says what the user noted
        assert "Their note: Seen by the river" in window.card.plain_text()

    # And My species lists it, in use.
    dialog.my_species_button.click()
    my_species = window.my_species_dialog
    qtbot.waitUntil(lambda: not my_species.is_busy and bool(my_species.rows), timeout=WAIT_MS)
    texts = [my_species.table.item(0, c).text() for c in range(my_species.table.columnCount())]
    assert texts[:4] == ["Mangrove snake", "Boiga dendrophila", "mildly venomous", "8"]
    assert texts[5] == "Ready"
    assert " of 8 (" in texts[4]


def test_cancel_changes_nothing(window, qtbot, tmp_path, monkeypatch):
    import snakeid_desktop.teach as teach_module

    real_teach = teach_module.teach
    learning, resume = threading.Event(), threading.Event()

    def teach_that_waits(predictor, requests, store, **options):
        progress = options["progress"]

        def held(stage, done, total):  # hold the worker mid-teaching until the test has pressed Cancel
            if stage.startswith("Learning") and not learning.is_set():
                learning.set()
                resume.wait(10)
            progress(stage, done, total)

        return real_teach(predictor, requests, store, **{**options, "progress": held})

    monkeypatch.setattr(teach_module, "teach", teach_that_waits)
    dialog = open_teach(window)
    dialog.add_species(striped_photos(tmp_path / "Boiga dendrophila"))
    with qtbot.waitSignal(dialog.job_finished, timeout=WAIT_MS):
        dialog.start()
        qtbot.waitUntil(learning.is_set, timeout=WAIT_MS)
        assert dialog.cancel_button.isEnabled() and not dialog.teach_button.isEnabled()
        dialog.cancel_button.click()
        resume.set()
    assert dialog.status_label.text() == "Teaching was cancelled; nothing was changed."
    assert dialog.pages.currentIndex() == 0 and len(dialog.forms) == 1  # the form stays, to try again
    assert dialog.teach_button.isEnabled() and not dialog.cancel_button.isEnabled()
    assert SpeciesStore().all() == []
    assert window.controller.predictor(0).taught == ()


def test_species_menu_opens_one_window_each(window, qtbot):
    assert window.teach_action.shortcut().toString() == "Ctrl+T"
    window.teach_action.trigger()
    dialog = window.teach_dialog
    window.teach_action.trigger()  # raised again, not a second one
    assert window.teach_dialog is dialog and dialog.isVisible()
    window.my_species_action.trigger()
    qtbot.waitUntil(lambda: not window.my_species_dialog.is_busy, timeout=WAIT_MS)
    window.my_species_dialog.teach_button.click()  # "Teach a species…" there opens the same teach window
    assert window.teach_dialog is dialog
    dialog.close()
    assert window.teach_dialog is None


def test_closing_the_app_mid_teaching_stops_and_changes_nothing(make_window, qtbot, tmp_path, monkeypatch):
    import snakeid_desktop.teach as teach_module

    real_teach = teach_module.teach
    learning = threading.Event()

    def teach_that_says_when(predictor, requests, store, **options):
        progress = options["progress"]

        def noted(stage, done, total):
            if stage.startswith("Learning"):
                learning.set()
                threading.Event().wait(0.05)  # slow enough for the window to close meanwhile
            progress(stage, done, total)

        return real_teach(predictor, requests, store, **{**options, "progress": noted})

    monkeypatch.setattr(teach_module, "teach", teach_that_says_when)
    window = make_window()
    dialog = open_teach(window)
    dialog.add_species(striped_photos(tmp_path / "Boiga dendrophila", count=30, extras=False))
    dialog.start()
    qtbot.waitUntil(learning.is_set, timeout=WAIT_MS)
    window.close()  # joins the teaching's thread (no_threads_left_behind checks), after it noticed
    assert SpeciesStore().all() == []


@pytest.mark.parametrize(
    "photos, scientific, expected",
    [
        (3, "Boiga dendrophila", "only 3 usable photos"),
        (8, None, "SnakeID already knows"),  # a species it ships with
        (8, "", "The scientific name is empty."),
    ],
)
def test_refusals_say_one_sentence_and_keep_the_form(window, qtbot, tmp_path, photos, scientific, expected):
    dialog = open_teach(window)
    form = dialog.add_species(striped_photos(tmp_path / "my snakes", count=photos, extras=False))
    if scientific is None:
        scientific = next(iter(default_catalogue().species.values())).scientific_name
    form.scientific_edit.setText(scientific)
    form.common_edit.setText("Some snake")
    teach_now(qtbot, dialog)
    assert expected in dialog.status_label.text()
    assert "\n" not in dialog.status_label.text() and "Traceback" not in dialog.status_label.text()
    assert dialog.pages.currentIndex() == 0 and dialog.teach_button.isEnabled()
    assert SpeciesStore().all() == []


def test_several_folders_one_species_each(window, qtbot, tmp_path):
    parent = tmp_path / "snakes"
    striped_photos(parent / "Boiga dendrophila", extras=False)
    striped_photos(parent / "Mangrove pit viper - Trimeresurus purpureomaculatus", count=6, extras=False)
    dialog = open_teach(window)
    assert dialog.add_species_folders_in(parent) == 2
    names = [(f.scientific_edit.text(), f.common_edit.text()) for f in dialog.forms]
    assert names == [("Boiga dendrophila", "Boiga dendrophila"),
                     ("Trimeresurus purpureomaculatus", "Mangrove pit viper")]
    dialog.forms[1].add_folder(parent / "Boiga dendrophila")  # a second folder for the second species
    dialog.forms[1].countries_edit.setText("ph, my")
    assert dialog.forms[1].countries_hint.text() == "Malaysia, Philippines"
    dialog._remove_form(dialog.forms[1])
    assert [f.title.text() for f in dialog.forms] == ["Species 1"]
    teach_now(qtbot, dialog)
    assert [sp.scientific_name for sp in SpeciesStore().all()] == ["Boiga dendrophila"]


def test_countries_are_checked_as_typed(qtbot, tmp_path):
    from snakeid_desktop.gui.teach_dialog import SpeciesForm

    form = SpeciesForm(1, striped_photos(tmp_path / "Boiga dendrophila", count=1, extras=False))
    qtbot.addWidget(form)
    assert parse_countries(" ph,MY;  id ") == ("PH", "MY", "ID")
    form.countries_edit.setText("PH, XX")
    assert form.countries_hint.text().startswith("⚠") and "XX" in form.countries_hint.text()
    form.countries_edit.setText("")
    assert "Anywhere" in form.countries_hint.text()
    assert form.entry().countries == ()


# ---------------------------------------------------------------- My species


def _teach_in_store(folder: Path, predictor, scientific="Boiga dendrophila", common="Mangrove snake") -> None:
    from snakeid_desktop.teach import TeachRequest, teach

    teach(predictor, [TeachRequest((folder,), scientific, common, "mild")], SpeciesStore())


def test_my_species_rename_remove_export_import(make_window, qtbot, tmp_path, monkeypatch, predictor):
    from PySide6.QtWidgets import QFileDialog, QInputDialog

    _teach_in_store(striped_photos(tmp_path / "photos", extras=False), predictor)
    window = make_window()  # taught before the app started: answered with from the start
    assert [sp.common_name for sp in window.controller.predictor(0).taught] == ["Mangrove snake"]
    assert window.model_status.text().endswith("+ 1 taught by you")
    from snakeid_desktop.gui.about import about_html

    about = about_html(window.controller.model_info, None, window.catalogue)
    assert "Species taught by you on this computer" in about and "Mangrove snake" in about
    dialog = open_my_species(qtbot, window)
    assert [r.common_name for r in dialog.rows] == ["Mangrove snake"]
    dialog.select("Boiga dendrophila")

    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("Dog-toothed cat snake", True))
    run_job(qtbot, dialog, dialog.rename_button.click)
    assert [sp.common_name for sp in SpeciesStore().all()] == ["Dog-toothed cat snake"]
    assert dialog.table.item(0, 0).text() == "Dog-toothed cat snake"
    assert window.controller.predictor(0).catalogue.get(dialog.rows[0].key).common_name == "Dog-toothed cat snake"

    target = tmp_path / "shared" / "for-a-friend"  # no suffix typed: it is added
    target.parent.mkdir()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    dialog.table.clearSelection()  # none selected: all are exported
    assert dialog.export_button.text() == "Export all…"
    run_job(qtbot, dialog, dialog.export_button.click)
    exported = target.with_name("for-a-friend.snakeid-species")
    assert exported.is_file()
    assert str(exported) in dialog.status_label.text()

    dialog.select("Boiga dendrophila")
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Cancel)
    dialog.remove_button.click()
    assert dialog.status_label.text() == "Nothing was removed." and len(SpeciesStore().all()) == 1
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    run_job(qtbot, dialog, dialog.remove_button.click)
    assert SpeciesStore().all() == []
    assert window.controller.predictor(0).taught == ()
    assert "taught" not in window.model_status.text()
    assert dialog.empty_label.isVisibleTo(dialog) and not dialog.table.isVisibleTo(dialog)

    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(exported), ""))
    run_job(qtbot, dialog, dialog.import_button.click)
    assert dialog.status_label.text() == "Imported: Dog-toothed cat snake (Boiga dendrophila)."
    assert [sp.common_name for sp in window.controller.predictor(0).taught] == ["Dog-toothed cat snake"]
    # Importing it twice is refused in one sentence, and nothing changes.
    run_job(qtbot, dialog, dialog.import_button.click)
    assert "already taught on this computer" in dialog.status_label.text()
    assert len(SpeciesStore().all()) == 1


def test_my_species_suggests_documents_for_export(window, qtbot, tmp_path, monkeypatch):
    import platformdirs

    documents = tmp_path / "Documents"
    documents.mkdir()
    monkeypatch.setattr(platformdirs, "user_documents_dir", lambda: str(documents))
    dialog = open_my_species(qtbot, window)
    suggested = dialog.suggested_export_path()
    assert suggested.parent == documents
    assert suggested.name.startswith("snakeid-species-") and suggested.suffix == ".snakeid-species"
    assert not dialog.export_button.isEnabled()  # nothing taught yet
    assert dialog.empty_label.isVisibleTo(dialog)


# ---------------------------------------------------------------- at start


def test_species_it_cannot_use_are_said_once_at_start(make_window, qtbot, monkeypatch):
    store = SpeciesStore()
    store.folder.mkdir(parents=True)
    (store.folder / "taught-damaged.snakeid-species").write_bytes(b"not a zip at all")
    window = make_window()
    assert window.controller.state == "ready"
    assert window.message_bar.isVisibleTo(window)
    text = window.message_label.text()
    assert "taught-damaged.snakeid-species is not in use" in text and "Species ▸ My species" in text
    dialog = open_my_species(qtbot, window)
    assert dialog.table.item(0, 5).text().startswith("Not used: ")
    dialog.select("")  # the unreadable file has no scientific name: it cannot be renamed, but it can go
    assert not dialog.rename_button.isEnabled() and dialog.remove_button.isEnabled()
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(dialog.job_finished, timeout=30000):
        dialog.remove_selected()
    assert not (store.folder / "taught-damaged.snakeid-species").exists()
    assert dialog.table.rowCount() == 0


def test_a_failing_store_never_stops_the_app(make_window, monkeypatch):
    import snakeid_desktop.my_species as my_species

    def broken(predictor, store=None):
        raise OSError(13, "Permission denied")

    monkeypatch.setattr(my_species, "attach_taught", broken)
    window = make_window()
    assert window.controller.state == "ready"
    assert window.controller.predictor(0).taught == ()
    assert "Your taught species could not be loaded" in window.message_label.text()


# ---------------------------------------------------------------- the card and the batch table


CAT = default_catalogue()
TAUGHT = Candidate("taught-boiga-dendrophila", "Boiga dendrophila", "Mangrove snake", 0.8, "mild", taught=True)
OWN = next(Candidate(s, i.scientific_name, i.common_name, 0.1, i.venomous) for s, i in sorted(CAT.species.items()))


def _outcome(top, verdict="species") -> Outcome:
    pred = Prediction(verdict=verdict, risk=True, top=tuple(top), not_snake_probability=0.01, venom_probability=0.9,
                      risky=tuple(top))
    pixels = RgbPixels(4, 3, bytes(36))
    return Outcome(1, "snake.jpg", FileResult(path="/photos/snake.jpg", prediction=pred), pixels, pixels, (4, 3))


def _info(rows=(), in_use=()) -> ModelInfo:
    return ModelInfo(version="t", directory="/x", classes=tuple(sorted(CAT.species)), metrics={}, per_class_accuracy={},
                     species_threshold=0.5, not_snake_threshold=0.5, risk_threshold=0.1, input_size=96,
                     taught=TaughtStatus(tuple(rows), tuple(in_use)))


def test_card_marks_only_taught_candidates(qtbot):
    from snakeid_desktop.catalogue import taught_info
    from snakeid_desktop.species_pack import TaughtSpecies

    card = ResultCard(CAT)
    qtbot.addWidget(card)
    card.resize(1000, 800)
    row = StoredRow(TAUGHT.species, "Mangrove snake", "Boiga dendrophila", "mild", (), "By the river", 35, 35, 34,
                    "/x.snakeid-species", None)
    entry = taught_info(TaughtSpecies(TAUGHT.species, "Boiga dendrophila", "Mangrove snake", "mild", (), "By the river",
                                      None, (), 0, ""))
    card.show_outcome(_outcome([TAUGHT, OWN]), _info([row], [entry]))
    assert card.headline_text() == "Mangrove snake — taught by you"
    assert card.headline.accessibleName() == card.headline_text()
    taught_row, own_row = card.candidate_rows
    assert taught_row.name_label.text().endswith("mildly venomous — taught by you")
    assert "taught by you" in taught_row.bar.accessibleName()
    assert "taught by you" not in own_row.name_label.text() and "taught by you" not in own_row.bar.accessibleName()
    assert card.accuracy.text() == ("When you taught Mangrove snake, 34 of 35 of your photos (97%) were recognised "
                                    "when left out of teaching.")
    assert "Their note: By the river" in card.medical.text()  # what the user entered, not a placeholder

    card.show_outcome(_outcome([TAUGHT, OWN]), _info())  # since removed: what the answer itself says of it
    assert card.headline_text() == "Mangrove snake — taught by you"
    assert "Taught on this computer by its user" in card.medical.text()
    assert card.accuracy.text() == "No accuracy figure for Mangrove snake: it was not checked on your photos."
    card.show_outcome(_outcome([OWN, TAUGHT]), _info())
    assert card.headline_text() == OWN.common_name
    assert card.candidate_rows[1].name_label.text().endswith("— taught by you")


def test_batch_table_marks_taught_species():
    from snakeid_desktop.gui.batch_model import COL_SPECIES, BatchResultsModel

    model = BatchResultsModel()
    model.append_results([_outcome([TAUGHT]).result, _outcome([OWN]).result])
    assert model.data(model.index(0, COL_SPECIES)) == "Mangrove snake (Boiga dendrophila) — taught by you"
    assert "taught by you" not in model.data(model.index(1, COL_SPECIES))


@pytest.mark.parametrize(
    "folder, names",
    [
        ("Boiga dendrophila", ("Boiga dendrophila", "Boiga dendrophila")),
        ("boiga_dendrophila", ("Boiga dendrophila", "Boiga dendrophila")),
        ("Boiga dendrophila (Mangrove snake)", ("Boiga dendrophila", "Mangrove snake")),
        ("Mangrove snake - Boiga dendrophila", ("Boiga dendrophila", "Mangrove snake")),
        ("Mangrove snake", ("", "Mangrove snake")),
        ("Painted Bronzeback", ("", "Painted Bronzeback")),
        ("Holiday photos", ("", "Holiday photos")),
    ],
)
def test_names_guessed_from_folder_names(folder, names):
    assert names_from_folder(folder) == names


def test_the_windows_never_import_torch_on_the_gui_thread(tmp_path):
    """The model loads on its worker thread; opening these windows meanwhile must not import torch
    on the GUI thread (it would freeze the window for seconds)."""
    import subprocess
    import sys
    import textwrap

    folder = striped_photos(tmp_path / "Boiga dendrophila", count=1, extras=False)
    code = textwrap.dedent(
        f"""
        import sys
        from PySide6.QtWidgets import QApplication
        app = QApplication([])
        from snakeid_desktop.gui.teach_dialog import TeachDialog
        from snakeid_desktop.gui.my_species_dialog import MySpeciesDialog
        teach = TeachDialog(predictor_provider=lambda cancel: None)
        form = teach.add_species({str(folder)!r})
        form.countries_edit.setText("PH, XX")
        form.entry()
        mine = MySpeciesDialog(predictor_provider=lambda cancel: None)
        teach.close()
        mine.close()
        print("TORCH", "torch" in sys.modules)
        """
    )
    env = {**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env,
                          cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "TORCH False" in proc.stdout
