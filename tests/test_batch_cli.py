"""`snakeid batch`: in-process contract with cli.py, and end to end through a subprocess."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest

from snakeid_desktop.batch import Progress, format_duration
from snakeid_desktop.batch_cli import run_batch_command
from snakeid_desktop.export import CSV_COLUMNS, read_csv
from tests.conftest import REPO_ROOT
from tests.test_batch import make_folder, make_photo, snapshot


def batch_args(directory, csv, **overrides) -> Namespace:
    values = dict(directory=str(directory), recursive=False, csv=str(csv), json=None, top=3, batch_size=4,
                  workers=2, no_cache=True)
    values.update(overrides)
    return Namespace(**values)


def test_exit_codes_and_rows(tmp_path, predictor):
    photos = tmp_path / "photos"
    files = make_folder(photos, good=5)
    make_photo(photos / "deeper" / "sub.jpg", 50)
    err = io.StringIO()
    out_csv, out_json = tmp_path / "r.csv", tmp_path / "r.json"
    code = run_batch_command(batch_args(photos, out_csv, json=str(out_json)), lambda: predictor, stderr=err)
    assert code == 1  # the broken files failed
    rows = read_csv(out_csv)
    assert len(rows) == 8 and sum(r["status"] == "error" for r in rows) == 3
    assert json.loads(out_json.read_text()) and len(json.loads(out_json.read_text())) == 8
    assert "8/8 photos" in err.getvalue() and "3 failed" in err.getvalue()
    # notes.txt is no row, and the summary says it was left out (without failing the run for it).
    assert "1 other file was not classified: not photos by their name (e.g. notes.txt)." in err.getvalue()

    for bad in files["bad"]:
        bad.unlink()
    (photos / "notes.txt").unlink()
    err = io.StringIO()
    code = run_batch_command(batch_args(photos, out_csv, recursive=True), lambda: predictor, stderr=err)
    assert code == 0 and "not classified" not in err.getvalue()
    # Entries sorted by name, folders among files: "deeper/" comes before "photo_*".
    assert [r["path"] for r in read_csv(out_csv)] == [str(photos / "deeper" / "sub.jpg")] + [str(p) for p in files["good"]]


def test_usage_errors_exit_2_without_loading_the_model(tmp_path):
    def never():
        raise AssertionError("the model must not be loaded for a usage error")

    err = io.StringIO()
    assert run_batch_command(batch_args(tmp_path / "missing", tmp_path / "o.csv"), never, stderr=err) == 2
    assert "does not exist" in err.getvalue()
    (tmp_path / "photos").mkdir()
    assert run_batch_command(batch_args(tmp_path / "photos", tmp_path / "no" / "o.csv"), never, stderr=err) == 2
    assert run_batch_command(batch_args(tmp_path / "photos", tmp_path), never, stderr=err) == 2
    assert not list(tmp_path.glob("*.csv"))


def test_progress_rate_and_time_left():
    now = [0.0]
    progress = Progress(100, clock=lambda: now[0])
    for step in range(1, 11):
        now[0] = step * 0.5
        progress.update(step * 5)
    assert progress.rate == pytest.approx(10.0)
    assert progress.seconds_left == pytest.approx(5.0)
    assert format_duration(65) == "1:05" and format_duration(3725) == "1:02:05" and format_duration(None) == "--:--"


def test_snakeid_batch_end_to_end(tmp_path, test_bundle_dir):
    photos = tmp_path / "photos"
    files = make_folder(photos, good=6)
    before = snapshot(files["good"] + files["bad"])
    out_csv, out_json = tmp_path / "out.csv", tmp_path / "out.json"
    env = dict(os.environ, SNAKEID_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=str(REPO_ROOT))
    cmd = [sys.executable, "-m", "snakeid_desktop.cli", "--weights", str(test_bundle_dir), "batch", str(photos),
           "--csv", str(out_csv), "--json", str(out_json), "--top", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 1, proc.stderr
    data = json.loads(out_json.read_text(encoding="utf-8"))
    assert len(data) == 9
    keys = {"path", "status", "error", "verdict", "risk", "venom_probability", "country", "country_source", "top", "warnings"}
    for obj in data:
        assert set(obj) == keys
        assert obj["status"] in ("ok", "error")
        if obj["status"] == "ok":
            assert obj["error"] is None and obj["verdict"] in ("species", "unsure", "not_snake")
            assert len(obj["top"]) == 2
            assert set(obj["top"][0]) == {"species", "scientific_name", "common_name", "probability", "venomous", "taught"}
        else:
            assert obj["error"] and obj["verdict"] is None and obj["top"] == []
    rows = read_csv(out_csv)
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert [r["path"] for r in rows] == [o["path"] for o in data]
    assert [r["status"] for r in rows] == [o["status"] for o in data]
    assert snapshot(files["good"] + files["bad"]) == before
    assert (tmp_path / "cache" / "batch-results.sqlite3").is_file()

    # A rerun reuses the cache for every good file and says so.
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 1 and "6 reused" in proc.stderr
    assert json.loads(out_json.read_text(encoding="utf-8")) == data


def test_rerun_after_touching_one_photo_keeps_every_row(tmp_path, predictor, monkeypatch):
    """The bug this guards: cache hits filled the in-flight window and the run ended with rows missing."""
    monkeypatch.setenv("SNAKEID_CACHE_DIR", str(tmp_path / "cache"))
    photos = tmp_path / "photos"
    paths = [make_photo(photos / f"p{i:03d}.png", i, size=(40, 30)) for i in range(150)]
    out_csv = tmp_path / "out.csv"
    args = batch_args(photos, out_csv, no_cache=False, batch_size=16, workers=2)
    assert run_batch_command(args, lambda: predictor, stderr=io.StringIO()) == 0
    first = read_csv(out_csv)
    assert len(first) == 150
    st = paths[40].stat()
    os.utime(paths[40], ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    err = io.StringIO()
    assert run_batch_command(args, lambda: predictor, stderr=err) == 0, err.getvalue()
    second = read_csv(out_csv)
    assert [r["path"] for r in second] == [str(p) for p in paths]
    assert "150 photos classified" in err.getvalue() and "149 reused" in err.getvalue()


def test_a_run_with_a_missing_row_is_an_error_not_a_success(tmp_path, predictor, monkeypatch):
    from snakeid_desktop import batch

    photos = tmp_path / "photos"
    for i in range(5):
        make_photo(photos / f"p{i}.png", i)
    real_run = batch.BatchEngine.run

    def lossy_run(self, paths, cancel_event=None):
        rows = list(real_run(self, paths, cancel_event))
        return iter(rows[:-1])

    monkeypatch.setattr(batch.BatchEngine, "run", lossy_run)
    err = io.StringIO()
    out_csv = tmp_path / "out.csv"
    assert run_batch_command(batch_args(photos, out_csv), lambda: predictor, stderr=err) == 2
    assert "Only 4 of 5 photos got a result row" in err.getvalue()
    assert not out_csv.exists() and not list(tmp_path.glob("*.part*"))


def test_the_command_runs_the_core_folder_pipeline(tmp_path, predictor, folder_run_calls):
    """`snakeid batch` presents FolderRun's rows; it has no scan/cache/engine loop of its own."""

    photos = tmp_path / "photos"
    for i in range(3):
        make_photo(photos / f"p{i}.png", i)
    calls = folder_run_calls
    args = batch_args(photos, tmp_path / "out.csv", country="IS")
    assert run_batch_command(args, lambda: predictor, stderr=io.StringIO()) == 0
    assert len(calls) == 1
    folder, recursive, options = calls[0]
    assert (folder, recursive) == (photos, False)
    assert {k: options[k] for k in ("use_cache", "top_k", "country", "batch_size", "decode_workers")} == {
        "use_cache": False, "top_k": 3, "country": "IS", "batch_size": 4, "decode_workers": 2}


def test_a_cache_that_cannot_open_is_said_and_the_run_goes_on(tmp_path, predictor, monkeypatch):
    from snakeid_desktop.batch_cache import BatchCache

    photos = tmp_path / "photos"
    for i in range(2):
        make_photo(photos / f"p{i}.png", i)
    monkeypatch.setattr(BatchCache, "last_error", "The results cache cannot be used (disk gone); every file will be classified.")
    monkeypatch.setattr(BatchCache, "open_default", classmethod(lambda cls: None))
    err = io.StringIO()
    args = batch_args(photos, tmp_path / "out.csv", no_cache=False)
    assert run_batch_command(args, lambda: predictor, stderr=err) == 0
    assert err.getvalue().count("The results cache cannot be used (disk gone)") == 1
    assert len(read_csv(tmp_path / "out.csv")) == 2


# ---------------------------------------------------------------- outputs never destroy anything

import errno  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from snakeid_desktop import export  # noqa: E402


def _never():
    raise AssertionError("the model must not be loaded for a refused output")


@pytest.fixture
def two_photos(tmp_path):
    photos = tmp_path / "photos"
    files = [make_photo(photos / "a.jpg", 1), make_photo(photos / "b.png", 2)]
    return photos, files


def _spellings(tmp_path, target):
    """Other names for ``target``: relative with .., a symlink, a hard link."""
    link = tmp_path / "link-to-it"
    link.symlink_to(target)
    hard = tmp_path / "hard-link"
    os.link(target, hard)
    return [str(target), str(target.parent / ".." / target.parent.name / target.name), str(link), str(hard)]


def test_an_output_that_is_one_of_the_photos_is_refused(tmp_path, two_photos):
    photos, files = two_photos
    before = snapshot(files)
    for spelling in _spellings(tmp_path, files[0]):
        for option in ("csv", "json"):
            err = io.StringIO()
            overrides = {"json": spelling, "force": True} if option == "json" else {"force": True}
            args = batch_args(photos, spelling if option == "csv" else tmp_path / "r.csv", **overrides)
            assert run_batch_command(args, _never, stderr=err) == 2
            assert "one of the photos being classified" in err.getvalue()
            assert snapshot(files) == before
    assert not (tmp_path / "r.csv").exists()


def test_the_same_output_twice_is_refused(tmp_path, two_photos):
    photos, _ = two_photos
    target = tmp_path / "out.txt"
    target.write_text("")
    for spelling in _spellings(tmp_path, target):
        err = io.StringIO()
        assert run_batch_command(batch_args(photos, target, json=spelling), _never, stderr=err) == 2
        assert "the same file" in err.getvalue()
    err = io.StringIO()
    new = tmp_path / "new.csv"
    assert run_batch_command(batch_args(photos, new, json=str(tmp_path / "." / "new.csv")), _never, stderr=err) == 2
    assert not new.exists()
    assert run_batch_command(batch_args(photos, "-", json="-"), _never, stderr=err) == 2
    assert "Only one of --csv and --json" in err.getvalue()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(min_size=1, max_size=200).filter(lambda b: not b.lstrip().startswith(b"[")
                                                          and not b.startswith(b"path,")))
def test_somebody_elses_file_is_never_replaced_without_force(tmp_path_factory, content):
    root = tmp_path_factory.mktemp("theirs")
    (root / "photos").mkdir()
    theirs = root / "notes.csv"
    theirs.write_bytes(content)
    err = io.StringIO()
    assert run_batch_command(batch_args(root / "photos", theirs), _never, stderr=err) == 2
    message = err.getvalue()
    assert "is not a SnakeID export" in message and "--force" in message and message.count("\n") == 1
    assert theirs.read_bytes() == content
    assert sorted(p.name for p in root.iterdir()) == ["notes.csv", "photos"]


def test_an_earlier_export_is_replaced_and_force_replaces_other_files(tmp_path, two_photos, predictor):
    photos, _ = two_photos
    out_csv, out_json = tmp_path / "r.csv", tmp_path / "r.json"
    assert run_batch_command(batch_args(photos, out_csv, json=str(out_json)), lambda: predictor,
                             stderr=io.StringIO()) == 0
    assert run_batch_command(batch_args(photos, out_csv, json=str(out_json)), lambda: predictor,
                             stderr=io.StringIO()) == 0
    assert len(read_csv(out_csv)) == 2
    theirs = tmp_path / "theirs.csv"
    theirs.write_text("my,own\nspreadsheet,1\n")
    assert run_batch_command(batch_args(photos, theirs, force=True), lambda: predictor, stderr=io.StringIO()) == 0
    assert len(read_csv(theirs)) == 2


def test_a_symlinked_output_is_written_through(tmp_path, two_photos, predictor):
    photos, _ = two_photos
    (tmp_path / "exports").mkdir()
    link = tmp_path / "latest.csv"
    link.symlink_to("exports/run.csv")  # dangling until the first export
    for _ in range(2):
        assert run_batch_command(batch_args(photos, link), lambda: predictor, stderr=io.StringIO()) == 0
        assert link.is_symlink() and len(read_csv(tmp_path / "exports" / "run.csv")) == 2


def test_dash_streams_rows_to_stdout_and_messages_to_stderr(tmp_path, two_photos, predictor):
    photos, _ = two_photos
    out, err = io.StringIO(), io.StringIO()
    assert run_batch_command(batch_args(photos, "-", json=str(tmp_path / "r.json")), lambda: predictor,
                             stderr=err, stdout=out) == 0
    assert out.getvalue().startswith(",".join(CSV_COLUMNS)) and len(out.getvalue().splitlines()) == 3
    assert "wrote standard output and" in err.getvalue() and "photos" not in out.getvalue().splitlines()[0]
    assert not (tmp_path / "-").exists() and not (photos / "-").exists()
    out = io.StringIO()
    assert run_batch_command(batch_args(photos, tmp_path / "r.csv", json="-"), lambda: predictor,
                             stderr=io.StringIO(), stdout=out) == 0
    assert len(json.loads(out.getvalue())) == 2


@pytest.mark.parametrize("err_no", [errno.ENOSPC, errno.EIO, errno.EACCES])
def test_a_failing_disk_is_one_sentence_exit_2_and_earlier_exports_survive(tmp_path, two_photos, predictor,
                                                                          monkeypatch, err_no):
    photos, _ = two_photos
    out_csv, out_json = tmp_path / "r.csv", tmp_path / "r.json"
    assert run_batch_command(batch_args(photos, out_csv, json=str(out_json)), lambda: predictor,
                             stderr=io.StringIO()) == 0
    before = {p: p.read_bytes() for p in (out_csv, out_json)}
    real_open = export._open_text
    opened = []

    class Full:
        def __init__(self, real):
            self.real, self.broken = real, False

        def write(self, text):
            if len(opened) == 2 and self is opened[1]:  # the JSON file hits the full disk
                self.broken = True
                raise OSError(err_no, os.strerror(err_no))
            return self.real.write(text)

        def flush(self):
            if self.broken:
                raise OSError(err_no, os.strerror(err_no))
            self.real.flush()

        def close(self):
            try:
                self.flush()
            finally:
                self.real.close()

        def __getattr__(self, name):
            return getattr(self.real, name)

    def open_text(fd, newline):
        opened.append(Full(real_open(fd, newline)))
        return opened[-1]

    monkeypatch.setattr(export, "_open_text", open_text)
    err = io.StringIO()
    assert run_batch_command(batch_args(photos, out_csv, json=str(out_json)), lambda: predictor, stderr=err) == 2
    message = err.getvalue().strip().splitlines()[-1]
    assert message.startswith("snakeid: could not write the results") and os.strerror(err_no) in message
    assert "Traceback" not in err.getvalue()
    assert {p: p.read_bytes() for p in (out_csv, out_json)} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos", "r.csv", "r.json"]


def test_a_killed_runs_temporary_is_cleaned_by_the_next_run(tmp_path, two_photos, predictor):
    photos, _ = two_photos
    stale = tmp_path / ".r.csv.a1b2c3d4.part"
    stale.write_text(",".join(CSV_COLUMNS) + "\r\n/photos/half")
    assert run_batch_command(batch_args(photos, tmp_path / "r.csv"), lambda: predictor, stderr=io.StringIO()) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos", "r.csv"]


def test_non_utf8_and_escape_names_in_batch(tmp_path, predictor, monkeypatch):
    monkeypatch.setenv("SNAKEID_CACHE_DIR", str(tmp_path / "cache"))
    photos = os.fsencode(tmp_path / "photos")
    os.mkdir(photos)
    names = [b"\xff\xfe.jpg", b"caf\xe9.png", b"\x1b[2J=cmd|' -C calc'!A0.jpg"]
    for i, name in enumerate(names):
        make_photo(Path(os.fsdecode(os.path.join(photos, name))), i)
    (Path(os.fsdecode(photos)) / "broken \x1b]0;x\x07.jpg").write_bytes(b"nope")
    out_csv, out_json = tmp_path / "r.csv", tmp_path / "r.json"
    for _ in range(2):  # the second run reads the cache
        err = io.StringIO()
        code = run_batch_command(batch_args(os.fsdecode(photos), out_csv, json=str(out_json), no_cache=False),
                                 lambda: predictor, stderr=err)
        assert code == 1, err.getvalue()
        assert "\x1b" not in err.getvalue() and "\\x1b]0;x\\x07" in err.getvalue()
        data = json.loads(out_json.read_bytes().decode("utf-8"))
        out_csv.read_bytes().decode("utf-8")
        exact = sorted(base64.b64decode(o["path_bytes_b64"]) if "path_bytes_b64" in o else os.fsencode(o["path"])
                       for o in data)
        assert exact == sorted([os.path.join(photos, n) for n in names]
                               + [os.path.join(photos, "broken \x1b]0;x\x07.jpg".encode())])
        assert [r["status"] for r in read_csv(out_csv)].count("ok") == 3
    assert "2 reused" in err.getvalue() or "3 reused" in err.getvalue()
