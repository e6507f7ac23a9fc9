"""Copy/move into per-verdict folders: never overwrite, originals untouched, manifest, undo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from snakeid_desktop.results import Candidate, FileResult, Prediction
from snakeid_desktop.sorting import category_for, last_manifest, sort_results, undo_sort

ADDER = Candidate("bitis-arietans", "Bitis arietans", "Puff adder", 0.9, "yes")
WOLF = Candidate("lycodon-capucinus", "Lycodon capucinus", "Common wolf snake", 0.6, "no")


def result(path: Path, verdict: str | None, best: Candidate = ADDER) -> FileResult:
    if verdict is None:
        return FileResult(str(path), error=f"{path}: not an image.", error_kind="not_image")
    return FileResult(str(path), Prediction(verdict, False, (best,), 0.0))


@pytest.fixture
def photos(tmp_path):
    """Two folders of originals with the same file names, so names collide in the destination."""
    files = []
    for folder in ("day1", "day2"):
        for name in ("IMG_001.jpg", "IMG_002.jpg", "IMG_003.jpg", "noext"):
            p = tmp_path / "originals" / folder / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(f"{folder}/{name} bytes".encode())
            files.append(p)
    verdicts = [("species", ADDER), ("species", WOLF), ("unsure", ADDER), ("not_snake", ADDER)]
    results = [result(p, *verdicts[i % 4]) for i, p in enumerate(files)]
    results[-1] = result(files[-1], None)
    return files, results


def snapshot(paths):
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in paths}


def test_categories():
    assert category_for(result(Path("a"), "species", ADDER)) == "bitis-arietans"
    assert category_for(result(Path("a"), "unsure")) == "unsure"
    assert category_for(result(Path("a"), "not_snake")) == "not_snake"
    assert category_for(result(Path("a"), "outside_coverage")) == "outside_coverage"
    assert category_for(result(Path("a"), None)) == "errors"


def test_folders_are_named_for_people():
    from snakeid_desktop.sorting import folder_name_for

    cobra = Candidate("naja-philippinensis", "Naja philippinensis", "Philippine cobra", 0.9, "yes")
    other = Candidate("other_snake", "Serpentes", "A snake SnakeID does not know", 0.8, "unknown")
    nameless = Candidate("naja-x", "Naja x", "", 0.7, "yes")
    assert folder_name_for(result(Path("a"), "species", cobra)) == "Naja philippinensis (Philippine cobra)"
    assert folder_name_for(result(Path("a"), "species", other)) == "A snake SnakeID does not know"
    assert folder_name_for(result(Path("a"), "species", nameless)) == "Naja x"
    # Only a confident answer names a species folder; an unsure one does not.
    assert folder_name_for(result(Path("a"), "unsure", cobra)) == "unsure"
    assert folder_name_for(result(Path("a"), "not_snake", cobra)) == "not a snake"
    assert folder_name_for(result(Path("a"), "outside_coverage", cobra)) == "outside coverage"
    assert folder_name_for(result(Path("a"), None)) == "errors"


def test_copy_sorts_renames_on_collision_and_leaves_originals(tmp_path, photos):
    files, results = photos
    before = snapshot(files)
    dest = tmp_path / "sorted"
    dest.mkdir()
    squatter = dest / "Bitis arietans (Puff adder)"
    squatter.mkdir()
    (squatter / "IMG_001.jpg").write_bytes(b"the user's own file")
    manifests = tmp_path / "manifests"

    summary = sort_results(results, dest, manifest_dir=manifests)

    assert summary.done == 8 and not summary.problems and summary.mode == "copy"
    assert snapshot(files) == before
    assert (squatter / "IMG_001.jpg").read_bytes() == b"the user's own file"
    assert (squatter / "IMG_001 (1).jpg").read_bytes() == b"day1/IMG_001.jpg bytes"
    assert (squatter / "IMG_001 (2).jpg").read_bytes() == b"day2/IMG_001.jpg bytes"
    assert (dest / "Lycodon capucinus (Common wolf snake)" / "IMG_002 (1).jpg").read_bytes() == b"day2/IMG_002.jpg bytes"
    assert (dest / "unsure" / "IMG_003.jpg").is_file() and (dest / "unsure" / "IMG_003 (1).jpg").is_file()
    assert (dest / "not a snake" / "noext").read_bytes() == b"day1/noext bytes"
    # The failed file still exists on disk here, so it is copied into errors/.
    assert (dest / "errors" / "noext").read_bytes() == b"day2/noext bytes"
    # Copies keep the original's modification time.
    assert (dest / "unsure" / "IMG_003.jpg").stat().st_mtime_ns == files[2].stat().st_mtime_ns

    manifest = last_manifest(manifests)
    assert manifest == summary.manifest
    records = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert records[0]["kind"] == "header" and records[0]["mode"] == "copy"
    assert sum(r["kind"] == "file" for r in records) == 8

    undo = undo_sort(manifest)
    assert undo.undone == 8 and not undo.problems
    assert snapshot(files) == before
    # Only what the sort created is gone: the user's file and its folder stay.
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")) == [
        "Bitis arietans (Puff adder)", "Bitis arietans (Puff adder)/IMG_001.jpg"]
    assert last_manifest(manifests) is None


def test_undo_keeps_copies_changed_since(tmp_path, photos):
    files, results = photos
    dest = tmp_path / "sorted"
    summary = sort_results(results[:2], dest, manifest_dir=tmp_path / "m")
    edited = dest / "Bitis arietans (Puff adder)" / "IMG_001.jpg"
    edited.write_bytes(b"edited by the user after sorting")
    undo = undo_sort(summary.manifest)
    assert undo.undone == 1 and len(undo.problems) == 1 and "changed" in undo.problems[0]
    assert edited.read_bytes() == b"edited by the user after sorting"
    assert not (dest / "Lycodon capucinus (Common wolf snake)").exists()


def test_move_and_undo_restore_originals(tmp_path, photos):
    files, results = photos
    before = snapshot(files)
    dest = tmp_path / "sorted"
    summary = sort_results(results, dest, move=True, manifest_dir=tmp_path / "m")
    assert summary.done == 8 and summary.mode == "move"
    assert not any(p.exists() for p in files)
    assert (dest / "Bitis arietans (Puff adder)" / "IMG_001 (1).jpg").read_bytes() == b"day2/IMG_001.jpg bytes"

    undo = undo_sort(summary.manifest)
    assert undo.undone == 8 and not undo.problems
    assert snapshot(files) == before
    assert not dest.exists() or not any(dest.iterdir())


def test_move_undo_never_overwrites_a_new_file_at_the_source(tmp_path, photos):
    files, results = photos
    summary = sort_results(results[:1], tmp_path / "sorted", move=True, manifest_dir=tmp_path / "m")
    files[0].write_bytes(b"a new file with the old name")
    undo = undo_sort(summary.manifest)
    assert undo.undone == 0 and "exists again" in undo.problems[0]
    assert files[0].read_bytes() == b"a new file with the old name"
    assert (tmp_path / "sorted" / "Bitis arietans (Puff adder)" / "IMG_001.jpg").read_bytes() == b"day1/IMG_001.jpg bytes"


def test_vanished_source_is_a_problem_not_a_crash(tmp_path, photos):
    files, results = photos
    files[1].unlink()
    summary = sort_results(results[:3], tmp_path / "sorted", manifest_dir=tmp_path / "m")
    assert summary.done == 2 and len(summary.problems) == 1 and "IMG_002" in summary.problems[0]


def test_cancel_stops_and_stays_undoable(tmp_path, photos):
    import threading

    files, results = photos
    cancel = threading.Event()
    summary = sort_results(results, tmp_path / "sorted", manifest_dir=tmp_path / "m", cancel_event=cancel,
                           on_progress=lambda done: cancel.set() if done == 3 else None)
    assert summary.cancelled and summary.done == 3
    assert undo_sort(summary.manifest).undone == 3


def test_move_that_cannot_remove_the_original_leaves_no_duplicate(tmp_path, photos, monkeypatch):
    import os

    files, results = photos
    before = snapshot(files[:1])
    real_unlink = os.unlink

    def unlink(path, *args, **kwargs):
        if Path(path) == files[0]:
            raise PermissionError(13, "Permission denied", str(path))  # e.g. a read-only card
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", unlink)
    summary = sort_results(results[:1], tmp_path / "sorted", move=True, manifest_dir=tmp_path / "m")
    assert summary.done == 0 and "Permission denied" in summary.problems[0]
    assert snapshot(files[:1]) == before
    assert not list((tmp_path / "sorted").rglob("*.jpg"))


# ---------------------------------------------------------------- hostile class names, edits, links

import os  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from snakeid_desktop.sorting import MAX_FOLDER_NAME_BYTES, folder_name_for, safe_folder_name  # noqa: E402

hostile_parts = st.sampled_from(["..", ".", "/", "\\", "\0", "../", "/etc/", "\n", "C:", " ", "..."])
hostile_categories = st.lists(hostile_parts | st.text(max_size=4), min_size=1, max_size=6).map("".join)


def _all_paths(root: Path) -> set[str]:
    return {os.path.relpath(os.path.join(d, n), root) for d, dirs, files in os.walk(root) for n in dirs + files}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(category=hostile_categories)
def test_no_class_name_can_write_outside_the_destination(tmp_path_factory, category):
    root = tmp_path_factory.mktemp("hostile")
    original = root / "in" / "IMG.jpg"
    original.parent.mkdir()
    original.write_bytes(b"photo")
    dest = root / "deep" / "er" / "sorted"
    before = _all_paths(root)
    assert_safe_everywhere(safe_folder_name(category))
    row = result(original, "species", Candidate(category, category, category, 0.9, "no"))
    name = folder_name_for(row)
    assert_safe_everywhere(name)
    summary = sort_results([row], dest, manifest_dir=root / "m")
    new = {p for p in _all_paths(root) - before if not p.startswith("m")}
    dest_rel = os.path.relpath(dest, root)
    assert all(p == dest_rel or p.startswith(dest_rel + os.sep) or dest_rel.startswith(p + os.sep) for p in new)
    assert summary.done == 1 and (dest / name / "IMG.jpg").read_bytes() == b"photo"


def test_a_category_folder_linked_outside_is_refused(tmp_path, photos):
    files, results = photos
    dest, elsewhere = tmp_path / "sorted", tmp_path / "elsewhere"
    dest.mkdir()
    elsewhere.mkdir()
    (dest / "unsure").symlink_to(elsewhere)
    summary = sort_results(results[2:3], dest, manifest_dir=tmp_path / "m")
    assert summary.done == 0 and "leads outside" in summary.problems[0]
    assert not any(elsewhere.iterdir())


def test_undo_keeps_a_copy_edited_with_the_same_size_and_mtime(tmp_path, photos):
    files, results = photos
    dest = tmp_path / "sorted"
    summary = sort_results(results[:1], dest, manifest_dir=tmp_path / "m")
    copy = dest / "Bitis arietans (Puff adder)" / "IMG_001.jpg"
    st_before = copy.stat()
    edited = bytes(reversed(copy.read_bytes()))  # same length, different content
    copy.write_bytes(edited)
    os.utime(copy, ns=(st_before.st_atime_ns, st_before.st_mtime_ns))
    undo = undo_sort(summary.manifest)
    assert undo.undone == 0 and undo.kept == [copy] and "changed" in undo.problems[0]
    assert copy.read_bytes() == edited


def test_undoing_twice_says_so_and_changes_nothing(tmp_path, photos):
    files, results = photos
    summary = sort_results(results[:2], tmp_path / "sorted", manifest_dir=tmp_path / "m")
    first = undo_sort(summary.manifest)
    assert first.undone == 2 and not first.already_undone
    for again in (summary.manifest, first.manifest):
        second = undo_sort(again)
        assert second.already_undone and second.undone == 0 and "already undone" in second.problems[0]
    gone = undo_sort(tmp_path / "m" / "sort-never.jsonl")
    assert gone.undone == 0 and "cannot be read" in gone.problems[0]


@pytest.mark.parametrize("absolute", [False, True])
def test_moving_a_symlink_keeps_it_pointing_at_its_photo_and_undo_restores_it(tmp_path, absolute):
    library = tmp_path / "library"
    library.mkdir()
    real = library / "real.jpg"
    real.write_bytes(b"the photo")
    album = tmp_path / "album"
    album.mkdir()
    link = album / "shortcut.jpg"
    link_text = str(real) if absolute else "../library/real.jpg"
    link.symlink_to(link_text)
    dest = tmp_path / "sorted" / "deeper"
    summary = sort_results([result(link, "unsure")], dest, move=True, manifest_dir=tmp_path / "m")
    assert summary.done == 1 and not summary.problems
    moved = dest / "unsure" / "shortcut.jpg"
    assert moved.is_symlink() and moved.read_bytes() == b"the photo" and not os.path.lexists(link)
    assert real.read_bytes() == b"the photo"
    records = [json.loads(line) for line in summary.manifest.read_text().splitlines()]
    assert records[-1]["symlink"] == link_text and records[-1]["source"] == str(link)

    undo = undo_sort(summary.manifest)
    assert undo.undone == 1 and not undo.problems
    assert link.is_symlink() and os.readlink(link) == link_text and link.read_bytes() == b"the photo"
    assert not os.path.lexists(moved)


# ---------------------------------------------------------------- names safe on every OS, folders counted

_WINDOWS_FORBIDDEN = set('<>:"/\\|?*')
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{n}" for n in range(10)), *(f"LPT{n}" for n in range(10))}


def assert_safe_everywhere(name: str) -> None:
    assert name not in ("", ".", "..") and "\0" not in name
    assert not _WINDOWS_FORBIDDEN & set(name) and all(ord(c) >= 32 and c != "\x7f" for c in name)
    assert not name.endswith((".", " ")) and name == name.strip()
    assert name.split(".")[0].rstrip(" ").upper() not in _WINDOWS_RESERVED
    assert len(name.encode("utf-8")) <= MAX_FOLDER_NAME_BYTES


@pytest.mark.parametrize("raw, expected", [
    ("CON", "_CON"), ("nul", "_nul"), ("Com1", "_Com1"), ("LPT9.txt", "_LPT9.txt"), ("aux .x", "_aux .x"),
    ("CONSOLE", "CONSOLE"), ("COM10", "COM10"),
    ("Naja (cobra).", "Naja (cobra)"), ("trailing . . ", "trailing"), ("a<b>c:d\"e|f?g*h", "a_b_c_d_e_f_g_h"),
    ("...", "_"), ("", "_"), ("  ", "_"),
])
def test_safe_folder_name_cases(raw, expected):
    assert safe_folder_name(raw) == expected


@settings(max_examples=300, deadline=None)
@given(text=st.text() | st.text(alphabet=st.sampled_from('<>:"/\\|?*. \x00蛇é'), max_size=300)
       | st.sampled_from(["CON", "prn.jpg", "COM3 ", "LPT¹", "nul."]))
def test_safe_folder_name_is_valid_on_every_os(text):
    assert_safe_everywhere(safe_folder_name(text))


def test_long_names_are_cut_but_stay_distinct():
    a, b = "Ab" * 80 + " one", "Ab" * 80 + " two"
    assert safe_folder_name(a) != safe_folder_name(b)
    assert safe_folder_name(a).startswith("AbAb") and len(safe_folder_name(a).encode()) <= MAX_FOLDER_NAME_BYTES
    assert len(safe_folder_name("蛇" * 200).encode()) <= MAX_FOLDER_NAME_BYTES  # cut at a character boundary


def test_undo_of_a_sort_made_with_slug_folders(tmp_path, photos):
    """A manifest written before folders had readable names (slug folders, not_snake/) still undoes."""
    from snakeid_desktop.checksums import sha256_file

    files, results = photos
    before = snapshot(files)
    dest, manifests = tmp_path / "sorted", tmp_path / "m"
    manifests.mkdir()
    records = [{"kind": "header", "version": 1, "mode": "copy", "destination": str(dest), "created": "2024"}]
    for src, folder in ((files[0], "bitis-arietans"), (files[3], "not_snake")):
        (dest / folder).mkdir(parents=True)
        records.append({"kind": "folder", "path": str(dest / folder)})
        target = dest / folder / src.name
        target.write_bytes(src.read_bytes())
        st_ = target.stat()
        records.append({"kind": "file", "mode": "copy", "source": str(src), "target": str(target),
                        "size": st_.st_size, "mtime_ns": st_.st_mtime_ns, "category": folder,
                        "sha256": sha256_file(target)})
    manifest = manifests / "sort-20240101-000000-deadbeef.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    assert last_manifest(manifests) == manifest
    undo = undo_sort(manifest)
    assert undo.undone == 2 and not undo.problems
    assert not any(dest.iterdir()) and snapshot(files) == before


def test_every_folder_filled_is_counted_errors_included(tmp_path, photos):
    files, results = photos
    summary = sort_results(results, tmp_path / "sorted", manifest_dir=tmp_path / "m")
    on_disk = {p.name for p in (tmp_path / "sorted").iterdir()}
    assert "errors" in summary.folders and set(summary.folders) == on_disk
    assert summary.folders == {"Bitis arietans (Puff adder)": 2, "Lycodon capucinus (Common wolf snake)": 2,
                               "unsure": 2, "not a snake": 1, "errors": 1}
    assert sum(summary.folders.values()) == summary.done == 8


def test_a_folder_made_for_a_photo_that_then_failed_is_not_left_behind(tmp_path, photos):
    files, results = photos
    files[-1].unlink()  # the error row's file is gone too: errors/ would get nothing
    dest = tmp_path / "sorted"
    summary = sort_results(results, dest, manifest_dir=tmp_path / "m")
    assert summary.done == 7 and len(summary.problems) == 1
    assert "errors" not in summary.folders and not (dest / "errors").exists()
    assert set(summary.folders) == {p.name for p in dest.iterdir()}


def test_a_missing_destination_is_created_and_undo_removes_it(tmp_path, photos):
    files, results = photos
    dest = tmp_path / "new" / "deeper" / "sorted"
    summary = sort_results(results[:2], dest, manifest_dir=tmp_path / "m")
    assert summary.done == 2 and summary.created_destination and dest.is_dir()
    undo_sort(summary.manifest)
    assert not (tmp_path / "new").exists()  # everything the sort made, parents too, was empty again


def test_an_existing_destination_is_kept_by_undo(tmp_path, photos):
    files, results = photos
    dest = tmp_path / "sorted"
    dest.mkdir()
    summary = sort_results(results[:2], dest, manifest_dir=tmp_path / "m")
    assert not summary.created_destination
    undo_sort(summary.manifest)
    assert dest.is_dir() and not any(dest.iterdir())


def test_a_destination_that_cannot_be_made_is_one_clear_error(tmp_path, photos):
    from snakeid_desktop.sorting import DestinationError

    files, results = photos
    blocker = tmp_path / "a file"
    blocker.write_bytes(b"the user's file")
    for dest, words in ((blocker, "is a file"), (blocker / "sorted", "Could not create the folder")):
        with pytest.raises(DestinationError, match=words):
            sort_results(results, dest, manifest_dir=tmp_path / "m")
    assert blocker.read_bytes() == b"the user's file"
    assert not (tmp_path / "m").exists()  # nothing was sorted, so there is nothing to undo
