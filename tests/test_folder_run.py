"""FolderRun: the one folder pipeline (scan -> resume cache -> engine -> row-count guard) of CLI and dialog."""

from __future__ import annotations

import threading

import pytest

from snakeid_desktop import batch
from snakeid_desktop.batch import FolderError, FolderRun, IncompleteRunError
from snakeid_desktop.batch_cache import BatchCache
from tests.test_batch import make_folder, make_photo


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SNAKEID_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def cache_spy(monkeypatch):
    """Every cache FolderRun opens, to see that each one is closed again."""
    opened: list[BatchCache] = []
    real_open = BatchCache.open_default.__func__

    def open_default(cls):
        cache = real_open(cls)
        opened.append(cache)
        return cache

    monkeypatch.setattr(BatchCache, "open_default", classmethod(open_default))
    return opened


def is_closed(cache: BatchCache) -> bool:
    return cache._conn is None


def decoders() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("snakeid-decode")]


def test_a_full_run_gives_one_row_per_scanned_path_in_order(tmp_path, predictor, cache_spy):
    folder = tmp_path / "photos"
    files = make_folder(folder, good=5)
    make_photo(folder / "sub" / "deep.png", 9)
    problems, found = [], []
    run = FolderRun(folder, True, on_problem=lambda p, m: problems.append(m), on_scan_progress=found.append)
    paths = run.scan()
    assert run.total == len(paths) == len(files["good"]) + len(files["bad"]) + 1 and found[-1] == run.total
    rows = list(run.classify(predictor, top_k=3, batch_size=4, decode_workers=2))
    assert [r.path for r in rows] == paths
    assert run.rows == run.total and not run.cancelled and run.cache_hits == 0 and run.cache_error is None
    assert sum(not r.ok for r in rows) == len(files["bad"]) and {len(r.prediction.top) for r in rows if r.ok} == {3}
    assert len(cache_spy) == 1 and is_closed(cache_spy[0])

    again = FolderRun(folder)
    assert [r.to_json() for r in again.classify(predictor, top_k=3)] == [r.to_json() for r in rows]  # scans itself
    assert again.cache_hits == len(files["good"]) + 1 and is_closed(cache_spy[1])


def test_a_cancelled_run_reports_exactly_what_it_did(tmp_path, predictor, cache_spy):
    paths = [make_photo(tmp_path / f"p{i:03d}.png", i) for i in range(60)]
    cancel = threading.Event()
    run = FolderRun(tmp_path, cancel=cancel)
    kept = []
    for result in run.classify(predictor, batch_size=4, decode_workers=2):  # no IncompleteRunError: cancelled
        kept.append(result)
        if len(kept) == 6:
            cancel.set()
    assert run.cancelled and run.total == 60 and run.rows == len(kept) and 6 <= len(kept) < 60
    assert [r.path for r in kept] == [str(p) for p in paths[: len(kept)]]
    assert is_closed(cache_spy[0]) and not decoders()

    rerun = FolderRun(tmp_path)
    assert len(list(rerun.classify(predictor, batch_size=4))) == 60 and rerun.cache_hits == len(kept)


def test_a_cancel_during_the_scan_stops_it_and_classifies_nothing(tmp_path, predictor, cache_spy):
    for i in range(5):
        make_photo(tmp_path / f"p{i}.png", i)
    cancel = threading.Event()

    def on_progress(found):
        cancel.set()

    run = FolderRun(tmp_path, cancel=cancel, on_scan_progress=on_progress)
    scanned = run.scan()
    assert run.cancelled and len(scanned) == run.total
    assert list(run.classify(predictor)) == [] and run.rows == 0 and run.cancelled


@pytest.mark.parametrize("change", ["drop_last", "repeat_first"])
def test_the_row_count_guard_fires_for_a_lossy_engine(tmp_path, predictor, monkeypatch, cache_spy, change):
    for i in range(4):
        make_photo(tmp_path / f"p{i}.png", i)
    real_run = batch.BatchEngine.run

    def lossy_run(self, paths, cancel_event=None):
        rows = list(real_run(self, paths, cancel_event))
        yield from (rows[:-1] if change == "drop_last" else rows[:1] + rows)

    monkeypatch.setattr(batch.BatchEngine, "run", lossy_run)
    run = FolderRun(tmp_path)
    got = []
    with pytest.raises(IncompleteRunError) as caught:
        for result in run.classify(predictor):
            got.append(result)
    assert len(got) == run.rows == (3 if change == "drop_last" else 5) and not run.cancelled
    assert ("Only 3 of 4 photos" if change == "drop_last" else "5 result rows were produced for 4") in str(caught.value)
    assert is_closed(cache_spy[0])


def test_an_abandoned_run_closes_the_cache_and_stops_the_decoders(tmp_path, predictor, cache_spy):
    for i in range(30):
        make_photo(tmp_path / f"p{i:03d}.png", i)
    rows = FolderRun(tmp_path).classify(predictor, batch_size=4, decode_workers=2)
    assert next(rows).ok
    rows.close()
    assert is_closed(cache_spy[0]) and not decoders()


def test_a_cache_that_cannot_open_is_said_once_and_every_file_is_classified(tmp_path, predictor, monkeypatch):
    for i in range(3):
        make_photo(tmp_path / f"p{i}.png", i)
    monkeypatch.setattr(BatchCache, "last_error", "The results cache cannot be used (disk gone).")
    monkeypatch.setattr(BatchCache, "open_default", classmethod(lambda cls: None))
    said = []
    run = FolderRun(tmp_path)
    assert len(list(run.classify(predictor, on_cache_error=said.append))) == 3
    assert said == [run.cache_error] == ["The results cache cannot be used (disk gone)."]
    nocache = FolderRun(tmp_path)
    list(nocache.classify(predictor, use_cache=False, on_cache_error=said.append))
    assert nocache.cache_error is None and len(said) == 1


def test_an_unusable_folder_is_a_folder_error(tmp_path):
    with pytest.raises(FolderError):
        FolderRun(tmp_path / "missing").scan()


def test_files_that_are_not_photos_are_counted_and_named_never_rows(tmp_path, predictor):
    folder = tmp_path / "photos"
    make_folder(folder, good=2)  # writes notes.txt too
    (folder / "sub").mkdir()
    (folder / "sub" / "IMG_0001.CR2").write_bytes(b"II*\x00raw")
    (folder / "sub" / ".DS_Store").write_bytes(b"hidden: neither a row nor counted")
    run = FolderRun(folder)
    paths = run.scan()
    assert sorted(p.rsplit("/", 1)[-1] for p in run.other_files) == ["IMG_0001.CR2", "notes.txt"]
    assert not set(run.other_files) & set(paths)
    assert run.other_files_note() == "2 other files were not classified: not photos by their name (e.g. notes.txt)."
    assert FolderRun(tmp_path / "photos" / "sub", recursive=False).other_files_note() is None  # not scanned yet
    only_photos = tmp_path / "clean"
    make_photo(only_photos / "a.png", 1)
    clean = FolderRun(only_photos)
    clean.scan()
    assert clean.other_files == [] and clean.other_files_note() is None
    clean.other_files = ["x/one.mov"]
    assert clean.other_files_note() == "1 other file was not classified: not photos by their name (e.g. one.mov)."
