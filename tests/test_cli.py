"""`snakeid` end to end, in a child process whose every network attempt is fatal."""

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import REPO_ROOT

NETBLOCK = REPO_ROOT / "tests" / "netblock"
TOP_KEYS = {"species", "scientific_name", "common_name", "probability", "venomous", "taught"}
RESULT_KEYS = {"path", "status", "error", "verdict", "risk", "venom_probability", "country", "country_source", "top", "warnings"}


def run_cli(*args, weights=None, cwd=None):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(NETBLOCK), str(REPO_ROOT)]))
    cmd = [sys.executable, "-m", "snakeid_desktop.cli"]
    if weights is not None:
        cmd += ["--weights", str(weights)]
    proc = subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, env=env, cwd=cwd, timeout=180)
    assert "NETWORK ACCESS BLOCKED" not in proc.stderr
    return proc


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.new("RGB", (300, 200), (40, 120, 40)).save(folder / "field.jpg")
    Image.new("RGBA", (150, 150), (200, 10, 10, 128)).save(folder / "ünïcødé 🐍.png")
    (folder / "notes.txt").write_text("not a photo")  # skipped when a folder is expanded
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 definitely not a whole jpeg")
    return folder, broken


def _check_schema(obj):
    assert set(obj) == RESULT_KEYS
    assert obj["status"] in ("ok", "error")
    assert isinstance(obj["risk"], bool) and isinstance(obj["warnings"], list)
    if obj["status"] == "ok":
        assert obj["error"] is None and obj["verdict"] in ("species", "unsure", "not_snake")
        assert obj["top"] and all(set(c) == TOP_KEYS for c in obj["top"])
        probs = [c["probability"] for c in obj["top"]]
        assert probs == sorted(probs, reverse=True) and all(0 <= p <= 1 for p in probs)
        assert all(c["venomous"] in ("yes", "no", "mild") for c in obj["top"])
    else:
        assert isinstance(obj["error"], str) and obj["error"] and obj["verdict"] is None and obj["top"] == []


def test_classify_json_schema_and_exit_code_for_mixed_inputs(test_bundle_dir, photos):
    folder, broken = photos
    proc = run_cli("classify", folder, broken, "--json", "--top", "4", weights=test_bundle_dir)
    assert proc.returncode == 1, proc.stderr  # one file failed
    results = json.loads(proc.stdout)
    assert [os.path.basename(r["path"]) for r in results] == ["field.jpg", "ünïcødé 🐍.png", "broken.jpg"]
    for r in results:
        _check_schema(r)
    assert [r["status"] for r in results] == ["ok", "ok", "error"]
    assert len(results[0]["top"]) == 4


def test_classify_all_good_exits_zero_with_readable_table(test_bundle_dir, photos):
    folder, _ = photos
    proc = run_cli("classify", folder / "field.jpg", weights=test_bundle_dir)
    assert proc.returncode == 0, proc.stderr
    assert "field.jpg" in proc.stdout and "%" in proc.stdout


def test_missing_model_is_one_clear_sentence_and_exit_2(tmp_path, photos):
    folder, _ = photos
    proc = run_cli("classify", folder / "field.jpg", weights=tmp_path / "no-model")
    assert proc.returncode == 2
    assert "No model is installed" in proc.stderr and "Traceback" not in proc.stderr


def test_usage_error_exits_2():
    proc = run_cli("classify")
    assert proc.returncode == 2 and "usage" in proc.stderr


def test_info_lists_version_classes_and_metrics(test_bundle_dir):
    proc = run_cli("info", "--json", weights=test_bundle_dir)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["model_version"] == "test" and len(info["classes"]) == 20 and "per_class_accuracy" in info["metrics"]


def test_self_test_passes_on_a_good_bundle(test_bundle_dir):
    proc = run_cli("--self-test", weights=test_bundle_dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["ok"] and summary["result"]["status"] == "ok"
    assert Path(summary["weights_dir"]) == Path(test_bundle_dir)


def test_self_test_fails_cleanly_without_a_model(tmp_path):
    proc = run_cli("--self-test", weights=tmp_path)
    assert proc.returncode == 2
    assert "No model is installed" in json.loads(proc.stdout)["error"]


HOSTILE_NAMES = [b"caf\xe9 latin1.jpg", b"\xff\xfe raw.png", b"esc \x1b]0;owned\x07 \x1b[31mred.jpg",
                 "ok \u202eexe.jpg".encode()]


def test_classify_json_is_valid_utf8_and_keeps_exact_bytes(test_bundle_dir, tmp_path):
    folder = os.fsencode(tmp_path / "hostile")
    os.mkdir(folder)
    for i, name in enumerate(HOSTILE_NAMES):
        Image.new("RGB", (64, 64), (i * 40, 90, 30)).save(os.path.join(folder, name), format="PNG")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(NETBLOCK), str(REPO_ROOT)]))
    base = [sys.executable, "-m", "snakeid_desktop.cli", "--weights", str(test_bundle_dir), "classify", folder]
    proc = subprocess.run(base + [b"--json"], capture_output=True, env=env, timeout=180)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout.decode("utf-8"))  # strict UTF-8
    exact = {base64.b64decode(r["path_bytes_b64"]) if "path_bytes_b64" in r else r["path"].encode() for r in results}
    assert exact == {os.path.join(folder, n) for n in HOSTILE_NAMES}
    assert all(r["status"] == "ok" for r in results)
    assert sum("path_bytes_b64" in r for r in results) == 2  # only the two names that are not UTF-8

    proc = subprocess.run(base, capture_output=True, env=env, timeout=180)
    assert proc.returncode == 0, proc.stderr
    table = proc.stdout.decode("utf-8")
    assert "\x1b" not in table and "\x07" not in table and "\u202e" not in table
    assert "esc \\x1b]0;owned\\x07 \\x1b[31mred.jpg" in table and "caf\\xe9 latin1.jpg" in table


def test_file_in_an_unreadable_folder_is_one_error_row_and_the_rest_are_classified(
        tmp_path, predictor, monkeypatch, capsys):
    from argparse import Namespace

    from snakeid_desktop import cli, imageload

    good = [tmp_path / "a.jpg", tmp_path / "c.jpg"]
    for p in good:
        Image.new("RGB", (64, 64), (200, 90, 30)).save(p)
    locked_dir = tmp_path / "locked"
    locked_dir.mkdir()
    locked = locked_dir / "b.jpg"
    Image.new("RGB", (64, 64), (20, 90, 30)).save(locked)
    if os.geteuid() == 0:  # root ignores permission bits: make the folder behave as if it had no x bit
        real_stat, real_opener = os.stat, imageload._nonblocking_opener

        def denied(path, *args, **kwargs):
            if os.fspath(path).startswith(str(locked_dir) + os.sep):
                raise PermissionError(13, "Permission denied", os.fspath(path))
            return real_stat(path, *args, **kwargs)

        def denied_open(path, flags):
            denied(path)
            return real_opener(path, flags)

        monkeypatch.setattr(os, "stat", denied)
        monkeypatch.setattr(imageload, "_nonblocking_opener", denied_open)
    else:
        locked_dir.chmod(0o600)  # readable, not searchable: stat and open inside it fail
    try:
        monkeypatch.setattr(cli, "_load_predictor", lambda args: predictor)
        code = cli.cmd_classify(Namespace(paths=[str(good[0]), str(locked), str(good[1])], top=2, json=True))
    finally:
        if os.geteuid() != 0:
            locked_dir.chmod(0o700)
    results = json.loads(capsys.readouterr().out)
    assert code == 1
    assert [r["path"] for r in results] == [str(good[0]), str(locked), str(good[1])]
    assert [r["status"] for r in results] == ["ok", "error", "ok"]
    assert "permission denied" in results[1]["error"]


def _photo_with_gps(path, lat_ref, lat, lon_ref, lon):
    from PIL import Image

    from snakeid_desktop import region

    photo = Image.new("RGB", (200, 180), (90, 120, 60))
    exif = photo.getexif()
    exif.get_ifd(region.GPS_IFD).update({1: lat_ref, 2: lat, 3: lon_ref, 4: lon})
    photo.save(path, "JPEG", exif=exif)
    return path


def test_country_from_gps_option_and_any_in_classify_json(tmp_path, test_bundle_dir):
    manila = _photo_with_gps(tmp_path / "manila.jpg", "N", (14.0, 35.0, 58.2), "E", (120.0, 59.0, 3.1))
    plain = tmp_path / "plain.png"
    from PIL import Image

    Image.new("RGB", (200, 180), (90, 120, 60)).save(plain)
    proc = run_cli("classify", manila, plain, "--json", "--country", "mz", weights=test_bundle_dir)
    assert proc.returncode == 0, proc.stderr
    by_name = {Path(o["path"]).name: o for o in json.loads(proc.stdout)}
    # The photo's own GPS wins over the option; the photo without GPS takes the option.
    assert (by_name["manila.jpg"]["country"], by_name["manila.jpg"]["country_source"]) == ("PH", "gps")
    assert (by_name["plain.png"]["country"], by_name["plain.png"]["country_source"]) == ("MZ", "option")
    assert "14." not in proc.stdout and "120." not in proc.stdout  # coordinates never leave the loader
    from snakeid_desktop.catalogue import default_catalogue

    catalogue = default_catalogue()
    for obj in by_name.values():
        assert isinstance(obj["venom_probability"], float)
        code = obj["country"]
        assert all(code in catalogue.get(c["species"]).countries for c in obj["top"])
    proc = run_cli("classify", manila, "--json", "--country", "any", weights=test_bundle_dir)
    assert json.loads(proc.stdout)[0]["country"] is None


def test_a_country_none_of_the_species_live_in_is_outside_coverage(tmp_path, test_bundle_dir):
    from PIL import Image

    plain = tmp_path / "plain.png"
    Image.new("RGB", (200, 180), (90, 120, 60)).save(plain)
    proc = run_cli("classify", plain, "--json", "--country", "IS", weights=test_bundle_dir)
    obj = json.loads(proc.stdout)[0]
    assert obj["verdict"] == "outside_coverage" and obj["risk"] is True and obj["top"] == []
    assert obj["venom_probability"] is None
    proc = run_cli("classify", plain, "--country", "IS", weights=test_bundle_dir)
    assert "SnakeID does not know the snakes of Iceland" in proc.stdout and "Treat this snake as venomous" in proc.stdout


def test_an_unknown_country_code_is_a_usage_error_with_a_suggestion(tmp_path, test_bundle_dir):
    proc = run_cli("classify", tmp_path / "x.jpg", "--country", "UK", weights=test_bundle_dir)
    assert proc.returncode == 2 and "did you mean GB (United Kingdom)?" in proc.stderr
