"""What the window does with sorted input (gui/intake.py), without a window."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from snakeid_desktop.gui.intake import MAX_FILES_PER_DROP, SortedInput, plan_intake, sort_paths  # noqa: E402
from snakeid_desktop.request_queue import PathSource  # noqa: E402


def test_nothing_usable_says_so_with_the_verb():
    plan = plan_intake(SortedInput(), "pasted")
    assert not plan.took_something and plan.sources == [] and plan.folder is None
    assert plan.notes == [
        "Nothing usable was pasted: drop or paste a photo (JPEG, PNG, HEIC…), image files, or a folder."
    ]


def test_too_many_photos_are_capped_and_the_first_folder_is_taken():
    sources = [PathSource(f"/p/{i}.jpg") for i in range(MAX_FILES_PER_DROP + 7)]
    plan = plan_intake(SortedInput(sources=sources, folders=[Path("/a"), Path("/b")]), "dropped")
    assert plan.sources == sources[:MAX_FILES_PER_DROP] and plan.folder == Path("/a") and plan.took_something
    assert any(f"{MAX_FILES_PER_DROP + 7} photos at once" in n for n in plan.notes)
    assert any("One folder at a time" in n for n in plan.notes)


def test_refusals_are_explained_next_to_what_was_taken():
    sorted_input = SortedInput(
        sources=[PathSource("/p/a.jpg")],
        remote=["https://example.org/a.jpg"],
        not_images=["notes.txt", "b.doc", "c.pdf", "d.xls"],
        missing=["/p/gone.jpg"],
    )
    notes = " ".join(plan_intake(sorted_input, "dropped").notes)
    assert "never goes online" in notes and "https://example.org/a.jpg" in notes
    assert "notes.txt, b.doc, c.pdf and 1 more" in notes and "Supported:" in notes and "jpg" in notes
    assert "No longer there: /p/gone.jpg." in notes


def test_sort_paths_tells_photos_folders_missing_and_other_files_apart(tmp_path):
    from PIL import Image

    photo = tmp_path / "snake.png"
    Image.new("RGB", (8, 8)).save(photo)
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    sorted_input = sort_paths([photo, tmp_path, notes, tmp_path / "gone.jpg"])
    assert sorted_input.sources == [PathSource(str(photo))]
    assert sorted_input.folders == [tmp_path]
    assert sorted_input.not_images == ["notes.txt"]
    assert sorted_input.missing == [str(tmp_path / "gone.jpg")]
