"""`snakeid batch`: in-process contract with cli.py, and end to end through a subprocess."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from argparse import Namespace

import pytest

from snakeid_desktop.batch_cli import Progress, format_duration, run_batch_command
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

    for bad in files["bad"]:
        bad.unlink()
    code = run_batch_command(batch_args(photos, out_csv, recursive=True), lambda: predictor, stderr=io.StringIO())
    assert code == 0
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
    keys = {"path", "status", "error", "verdict", "risk", "top", "warnings"}
    for obj in data:
        assert set(obj) == keys
        assert obj["status"] in ("ok", "error")
        if obj["status"] == "ok":
            assert obj["error"] is None and obj["verdict"] in ("species", "unsure", "not_snake")
            assert len(obj["top"]) == 2
            assert set(obj["top"][0]) == {"species", "scientific_name", "common_name", "probability", "venomous"}
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
