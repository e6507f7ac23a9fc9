"""Batch engine: folder scanning, one in-order row per file, failures as rows, cancel, resume cache."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest
from PIL import Image

from snakeid_desktop.batch import BatchEngine, FolderError, scan_images
from snakeid_desktop.batch_cache import BatchCache


def make_photo(path: Path, seed: int, size=(160, 120)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    colour = ((seed * 37) % 256, (seed * 91) % 256, (seed * 53) % 256)
    image = Image.new("RGB", size, colour)
    image.putpixel((seed % size[0], 0), (255 - colour[0], 0, 0))
    image.save(path)
    return path


def make_folder(root: Path, good: int = 12) -> dict[str, list[Path]]:
    """Good photos in two formats plus several broken files that must become error rows."""
    good_paths = [make_photo(root / f"photo_{i:03d}.{'jpg' if i % 2 else 'png'}", i) for i in range(good)]
    bad = [root / "empty.jpg", root / "not_really.png", root / "truncated_header.jpg"]
    bad[0].write_bytes(b"")
    bad[1].write_text("this is a text file with an image name")
    bad[2].write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 10)
    (root / "notes.txt").write_text("not an image suffix: not listed")
    return {"good": good_paths, "bad": bad}


def assert_a_rerun_is_served_from(cache, predictor, tmp_path) -> None:
    """The cache works: a second run over the same photo reuses the first run's answer."""
    paths = [make_photo(tmp_path / "p.png", 1)]
    list(BatchEngine(predictor, cache=cache).run(paths))
    engine = BatchEngine(predictor, cache=cache)
    list(engine.run(paths))
    assert engine.cache_hits == 1
    cache.close()


def snapshot(paths) -> dict[Path, tuple[bytes, int]]:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in paths}


def test_scan_is_sorted_skips_hidden_and_non_images(tmp_path):
    make_photo(tmp_path / "b.jpg", 1)
    make_photo(tmp_path / "a.png", 2)
    make_photo(tmp_path / ".hidden.jpg", 3)
    make_photo(tmp_path / "sub" / "c.jpg", 4)
    (tmp_path / "readme.txt").write_text("x")
    flat = list(scan_images(tmp_path, recursive=False))
    assert flat == [tmp_path / "a.png", tmp_path / "b.jpg"]
    deep = list(scan_images(tmp_path, recursive=True))
    assert deep == [tmp_path / "a.png", tmp_path / "b.jpg", tmp_path / "sub" / "c.jpg"]


@pytest.mark.skipif(not hasattr(os, "symlink") or sys.platform == "win32", reason="needs POSIX symlinks")
def test_scan_reports_symlink_loops_and_keeps_going(tmp_path):
    make_photo(tmp_path / "top.jpg", 1)
    make_photo(tmp_path / "inner" / "deep.jpg", 2)
    (tmp_path / "inner" / "back_to_top").symlink_to(tmp_path, target_is_directory=True)
    problems = []
    found = list(scan_images(tmp_path, True, lambda path, message: problems.append((path, message))))
    assert found == [tmp_path / "inner" / "deep.jpg", tmp_path / "top.jpg"]
    assert len(problems) == 1 and problems[0][0] == tmp_path / "inner" / "back_to_top"
    assert "loop" in problems[0][1]


def test_scan_reports_unreadable_subfolder(tmp_path, monkeypatch):
    make_photo(tmp_path / "ok.jpg", 1)
    locked = tmp_path / "locked"
    make_photo(locked / "hidden_from_us.jpg", 2)
    # Simulated rather than chmod'ed: permissions do not stop root (CI containers often are).
    real_scandir = os.scandir

    def scandir(path):
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    problems = []
    found = list(scan_images(tmp_path, True, lambda path, message: problems.append(message)))
    assert found == [tmp_path / "ok.jpg"]
    assert len(problems) == 1 and str(locked) in problems[0] and "Permission denied" in problems[0]


def test_scan_of_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FolderError, match="does not exist"):
        list(scan_images(tmp_path / "nope"))
    (tmp_path / "file.jpg").write_bytes(b"x")
    with pytest.raises(FolderError, match="not a folder"):
        list(scan_images(tmp_path / "file.jpg"))


def test_run_gives_one_row_per_file_in_order_with_failures(tmp_path, predictor):
    files = make_folder(tmp_path)
    before = snapshot(files["good"] + files["bad"])
    paths = list(scan_images(tmp_path))
    assert len(paths) == len(files["good"]) + len(files["bad"])
    results = list(BatchEngine(predictor, batch_size=4, decode_workers=2).run(paths))
    assert [r.path for r in results] == [str(p) for p in paths]
    by_path = {Path(r.path): r for r in results}
    for p in files["good"]:
        r = by_path[p]
        assert r.ok and r.prediction is not None and r.prediction.verdict in ("species", "unsure", "not_snake")
        assert len(r.prediction.top) == predictor.top_k
    for p in files["bad"]:
        r = by_path[p]
        assert not r.ok and r.error and r.error_kind and r.to_json()["status"] == "error"
    assert snapshot(files["good"] + files["bad"]) == before


def test_engine_matches_the_serial_predictor(tmp_path, predictor):
    files = make_folder(tmp_path, good=9)
    paths = list(scan_images(tmp_path))
    engine_rows = [r.to_json() for r in BatchEngine(predictor, batch_size=4, decode_workers=3).run(paths)]
    serial_rows = [r.to_json() for r in predictor.classify_paths(paths, batch_size=4)]
    assert len(engine_rows) == len(files["good"]) + len(files["bad"])
    for a, b in zip(engine_rows, serial_rows):
        assert a["path"] == b["path"] and a["status"] == b["status"] and a["verdict"] == b["verdict"]
        assert [c["species"] for c in a["top"]] == [c["species"] for c in b["top"]]
        for ca, cb in zip(a["top"], b["top"]):
            assert ca["probability"] == pytest.approx(cb["probability"], abs=1e-4)


def test_cancel_stops_early_and_keeps_results(tmp_path, predictor):
    paths = [make_photo(tmp_path / f"p{i:03d}.png", i) for i in range(60)]
    cancel = threading.Event()
    engine = BatchEngine(predictor, batch_size=4, decode_workers=2, max_pending=8)
    kept = []
    for result in engine.run(paths, cancel_event=cancel):
        kept.append(result)
        if len(kept) == 6:
            cancel.set()
    assert 6 <= len(kept) < 60
    assert all(r.ok for r in kept)
    assert [r.path for r in kept] == [str(p) for p in paths[: len(kept)]]
    assert not [t for t in threading.enumerate() if t.name.startswith("snakeid-decode")]


def test_closing_the_generator_stops_decoders(tmp_path, predictor):
    paths = [make_photo(tmp_path / f"p{i:03d}.png", i) for i in range(30)]
    run = BatchEngine(predictor, batch_size=4, decode_workers=2).run(paths)
    first = next(run)
    run.close()
    assert first.ok
    assert not [t for t in threading.enumerate() if t.name.startswith("snakeid-decode")]


def test_file_deleted_mid_run_becomes_an_error_row(tmp_path, predictor):
    paths = [make_photo(tmp_path / f"p{i:03d}.png", i) for i in range(40)]
    victim = paths[30]
    # max_pending keeps the victim unsubmitted until we have seen the first rows.
    engine = BatchEngine(predictor, batch_size=4, decode_workers=1, max_pending=8)
    results = []
    for result in engine.run(paths):
        results.append(result)
        if len(results) == 4:
            victim.unlink()
    assert len(results) == 40
    gone = results[30]
    assert gone.path == str(victim) and not gone.ok and gone.error
    assert all(r.ok for i, r in enumerate(results) if i != 30)


def test_paths_are_consumed_lazily(tmp_path, predictor):
    paths = [make_photo(tmp_path / f"p{i:03d}.png", i) for i in range(20)]
    consumed = []

    def feed():
        for p in paths:
            consumed.append(p)
            yield p

    engine = BatchEngine(predictor, batch_size=2, decode_workers=1, max_pending=4)
    run = engine.run(feed())
    next(run)
    assert len(consumed) <= 4 + 2  # bounded look-ahead, not the whole list
    run.close()


def test_resume_cache_reuses_unchanged_and_recomputes_changed(tmp_path, predictor, monkeypatch):
    folder = tmp_path / "photos"
    paths = [make_photo(folder / f"p{i:02d}.png", i) for i in range(10)]
    cache = BatchCache(tmp_path / "cache" / "results.sqlite3")
    first = [r.to_json() for r in BatchEngine(predictor, batch_size=4, cache=cache).run(paths)]

    changed = paths[3]
    make_photo(changed, 99, size=(170, 130))
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 5_000_000_000))

    decoded = []
    import snakeid_desktop.batch as batch_module

    real_load = batch_module.load_image

    def counting_load(path, **kwargs):
        decoded.append(Path(path))
        return real_load(path, **kwargs)

    monkeypatch.setattr(batch_module, "load_image", counting_load)
    engine = BatchEngine(predictor, batch_size=4, cache=cache)
    second = [r.to_json() for r in engine.run(paths)]
    assert decoded == [changed]
    assert engine.cache_hits == 9
    assert [r["path"] for r in second] == [str(p) for p in paths]
    assert [r for i, r in enumerate(second) if i != 3] == [r for i, r in enumerate(first) if i != 3]
    cache.close()


def test_resume_cache_is_per_model(tmp_path, predictor, test_bundle_dir):
    from snakeid_desktop.predictor import Predictor

    from tests.conftest import make_test_bundle

    paths = [make_photo(tmp_path / "photos" / f"p{i}.png", i) for i in range(3)]
    cache = BatchCache(tmp_path / "cache.sqlite3")
    list(BatchEngine(predictor, cache=cache).run(paths))
    other = Predictor.load(make_test_bundle(tmp_path / "other_bundle", seed=7), num_threads=1)
    engine = BatchEngine(other, cache=cache)
    list(engine.run(paths))
    assert engine.cache_hits == 0
    engine = BatchEngine(predictor, cache=cache)
    list(engine.run(paths))
    assert engine.cache_hits == 3
    cache.close()


def test_cache_location_follows_env(tmp_path, monkeypatch):
    from snakeid_desktop.batch_cache import default_cache_path

    monkeypatch.setenv("SNAKEID_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_path().parent == tmp_path / "c"
    cache = BatchCache.open_default()
    assert cache is not None and cache.path.is_file()
    cache.close()


def test_damaged_cache_file_is_replaced(tmp_path, monkeypatch, predictor):
    from snakeid_desktop.batch_cache import default_cache_path

    monkeypatch.setenv("SNAKEID_CACHE_DIR", str(tmp_path))
    default_cache_path().write_bytes(b"this is not an sqlite database" * 100)
    cache = BatchCache.open_default()
    assert cache is not None
    assert_a_rerun_is_served_from(cache, predictor, tmp_path)


def test_interrupted_run_resumes_from_the_cache(tmp_path, predictor):
    paths = [make_photo(tmp_path / "photos" / f"p{i:03d}.png", i) for i in range(40)]
    cache = BatchCache(tmp_path / "cache.sqlite3")
    cancel = threading.Event()
    kept = []
    for result in BatchEngine(predictor, batch_size=4, cache=cache).run(paths, cancel_event=cancel):
        kept.append(result)
        if len(kept) == 10:
            cancel.set()
    assert len(kept) < 40
    engine = BatchEngine(predictor, batch_size=4, cache=cache)
    rerun = list(engine.run(paths))
    assert len(rerun) == 40 and engine.cache_hits == len(kept)
    assert [r.to_json() for r in rerun[: len(kept)]] == [r.to_json() for r in kept]
    cache.close()


@pytest.mark.skipif(not hasattr(os, "symlink") or sys.platform == "win32", reason="needs POSIX symlinks")
def test_scan_visits_each_real_folder_once_in_a_diamond_of_links(tmp_path):
    """22 levels of two links each to the next folder: 2**22 paths to one photo, no loop."""
    levels = 22
    folders = [tmp_path / f"level{i:02d}" for i in range(levels + 1)]
    for folder in folders:
        folder.mkdir()
    for here, below in zip(folders, folders[1:]):
        (here / "left").symlink_to(below, target_is_directory=True)
        (here / "right").symlink_to(below, target_is_directory=True)
    photo = make_photo(folders[-1] / "snake.jpg", 1)
    problems, progress = [], []
    found = list(scan_images(folders[0], True, lambda p, m: problems.append(m), progress.append))
    assert found == [folders[0] / Path(*["left"] * levels) / photo.name]
    assert len(problems) == levels and all("same folder" in m for m in problems)
    assert progress and progress == sorted(progress) and progress[-1] == 1


@pytest.mark.skipif(not hasattr(os, "symlink") or sys.platform == "win32", reason="needs POSIX links")
def test_scan_lists_a_linked_or_hard_linked_photo_once_and_says_so(tmp_path):
    photo = make_photo(tmp_path / "a.jpg", 1)
    os.link(photo, tmp_path / "b_hardlink.jpg")
    (tmp_path / "c_symlink.jpg").symlink_to(photo)
    (tmp_path / "d_broken.jpg").symlink_to(tmp_path / "gone.jpg")
    problems = []
    found = list(scan_images(tmp_path, True, lambda p, m: problems.append(m)))
    # The broken link still becomes a row (its error tells the user); the duplicates are reported.
    assert found == [photo, tmp_path / "d_broken.jpg"]
    assert len(problems) == 2 and all(f"same file as {photo}" in m for m in problems)


def test_nan_scores_become_that_files_error_row_and_are_not_cached(tmp_path, predictor, monkeypatch):
    paths = [make_photo(tmp_path / "photos" / f"p{i}.png", i) for i in range(4)]
    real = predictor._probabilities

    def nan_for_p2(batch, model, space):
        probs = real(batch, model, space).clone()
        probs[2] = float("nan")  # the third file of the (single) batch
        return probs

    cache = BatchCache(tmp_path / "cache.sqlite3")
    monkeypatch.setattr(predictor, "_probabilities", nan_for_p2)
    results = list(BatchEngine(predictor, batch_size=4, cache=cache).run(paths))
    assert [r.ok for r in results] == [True, True, False, True]
    assert results[2].error_kind == "model_output" and "NaN" in results[2].error
    monkeypatch.undo()
    engine = BatchEngine(predictor, batch_size=4, cache=cache)
    rerun = list(engine.run(paths))
    assert engine.cache_hits == 3 and all(r.ok for r in rerun)
    cache.close()


def _fill_cache(path: Path, rows: int = 3000) -> None:
    """A cache of a few hundred pages, written through the real class, then closed."""
    import sqlite3

    cache = BatchCache(path)
    record = ('{"verdict": "unsure", "risk": false, "not_snake_probability": 0.1, "venom_probability": 0.0, '
              '"country": null, "country_source": null, "top": [], "risky": [], "warnings": []}')
    with cache._conn:
        cache._conn.executemany(
            "INSERT INTO results VALUES (?, ?, ?, ?, ?)",
            ((f"/photos/trip/IMG_{i:06d}.jpg", "k" * 32, i, i, record) for i in range(rows)),
        )
    cache.close()
    with sqlite3.connect(path) as conn:  # no WAL left behind: every page is in the main file
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _damage_middle_page(path: Path) -> int:
    import random

    data = bytearray(path.read_bytes())
    page = (len(data) // 4096) // 2
    data[page * 4096:(page + 1) * 4096] = random.Random(0).randbytes(4096)
    path.write_bytes(bytes(data))
    return page


def _stat(size, mtime_ns):
    fields = [0o100644, 0, 0, 1, 0, 0, size, 0, 0, 0] + [0.0] * 3 + [0, mtime_ns, 0]
    st = os.stat_result(fields)
    assert (st.st_size, st.st_mtime_ns) == (size, mtime_ns)
    return st


def test_cache_with_a_damaged_page_is_rebuilt_at_open(tmp_path, predictor, caplog):
    import sqlite3

    path = tmp_path / "cache.sqlite3"
    _fill_cache(path)
    _damage_middle_page(path)
    with sqlite3.connect(path) as conn:  # the header is intact: the damage is only in a page
        assert conn.execute("PRAGMA quick_check(1)").fetchone()[0] != "ok"

    with caplog.at_level("WARNING", logger="snakeid_desktop.batch_cache"):
        cache = BatchCache(path)
    assert cache.rebuilds == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and warnings[0].startswith(f"The results cache {path} is damaged (")
    assert warnings[0].endswith("); starting a fresh one.") and "\n" not in warnings[0]
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM results").fetchone()[0] == 0
    # And the fresh cache works: a second run is served from it.
    assert_a_rerun_is_served_from(cache, predictor, tmp_path)


def test_cache_damaged_while_open_is_rebuilt_at_the_failing_query(tmp_path, caplog):
    path = tmp_path / "cache.sqlite3"
    _fill_cache(path)
    cache = BatchCache(path)  # intact at open
    cache._conn.execute("PRAGMA cache_size=5")  # so the damaged page is read from disk, not memory
    page = _damage_middle_page(path)
    with caplog.at_level("WARNING", logger="snakeid_desktop.batch_cache"):
        hits = [cache.lookup(f"/photos/trip/IMG_{i:06d}.jpg", _stat(i, i), "k" * 32) for i in range(3000)]
    assert cache.rebuilds == 1, f"damaged page {page} was never read"
    found = [h is not None for h in hits]
    assert found[0] and not found[-1]  # served until the damage was met, gone after the rebuild
    assert len([r for r in caplog.records if "is damaged" in r.getMessage()]) == 1

    from snakeid_desktop.results import FileResult, Prediction

    result = FileResult(path="/x.jpg", prediction=Prediction("unsure", False, (), 0.1))
    cache.store_many([(result, _stat(5, 6))], "key")
    assert cache.lookup("/x.jpg", _stat(5, 6), "key") is not None
    cache.close()


def test_a_locked_cache_is_not_deleted(tmp_path, monkeypatch):
    import sqlite3

    path = tmp_path / "cache.sqlite3"
    _fill_cache(path, rows=10)
    monkeypatch.setattr("snakeid_desktop.batch_cache.sqlite3.connect",
                        lambda *a, **k: (_ for _ in ()).throw(sqlite3.OperationalError("database is locked")))
    monkeypatch.setenv("SNAKEID_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr("snakeid_desktop.batch_cache.default_cache_path", lambda: path)
    assert BatchCache.open_default() is None and "locked" in BatchCache.last_error
    monkeypatch.undo()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM results").fetchone()[0] == 10


def test_engine_failures_carry_an_error_kind(tmp_path, predictor, monkeypatch):
    """Each way one photo can fail is named by the shared vocabulary (and is still its plain string)."""
    import snakeid_desktop.batch as batch_module
    from snakeid_desktop.errors import ErrorKind

    paths = [make_photo(tmp_path / f"p{i}.png", i) for i in range(3)]
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 10)
    paths.append(tmp_path / "broken.jpg")
    real_load = batch_module.load_image

    def load(path, **kwargs):
        if path.endswith("p0.png"):
            raise MemoryError
        if path.endswith("p1.png"):
            raise RuntimeError("decoder bug")
        return real_load(path, **kwargs)

    monkeypatch.setattr(batch_module, "load_image", load)
    results = list(BatchEngine(predictor, batch_size=4, decode_workers=2).run(paths))
    kinds = [r.error_kind for r in results]
    assert kinds[:3] == [ErrorKind.MEMORY, ErrorKind.UNEXPECTED, None]
    assert kinds[3] in (ErrorKind.TRUNCATED, ErrorKind.CORRUPT) and kinds[3] in ("truncated", "corrupt")
    assert all(k is None or isinstance(k, ErrorKind) for k in kinds)
