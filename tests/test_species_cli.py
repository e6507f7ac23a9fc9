"""`snakeid teach` and `snakeid species ...` end to end, in child processes whose network access is fatal."""

from __future__ import annotations

import json
import os

from tests.test_cli import run_cli
from tests.test_teach import striped


def _photos(folder, count=7, **kwargs):
    return [striped(folder / f"P{i}.png", i, **kwargs) for i in range(count)]


def test_teach_classify_list_export_import_remove(tmp_path, monkeypatch):
    home_a, home_b = tmp_path / "home-a", tmp_path / "home-b"
    photos = _photos(tmp_path / "krait photos")
    (tmp_path / "krait photos" / "readme.txt").write_text("x")
    monkeypatch.setenv("SNAKEID_HOME", str(home_a))
    proc = run_cli("teach", tmp_path / "krait photos", "--scientific-name", "Bungarus testus", "--common-name",
                   "Test krait", "--venomous", "unknown", "--country", "in", "--notes", "Bands all round.")
    assert proc.returncode == 0, proc.stderr
    assert "Taught Test krait (Bungarus testus), venom status unknown: treat as venomous, in IN" in proc.stdout
    assert "photos used: 7; skipped: 1" in proc.stdout and "readme.txt" in proc.stdout
    assert "expected accuracy:" in proc.stdout

    proc = run_cli("classify", "--json", photos[2])
    assert proc.returncode == 0, proc.stderr
    (answer,) = json.loads(proc.stdout)
    top = answer["top"][0]
    assert top["species"] == "taught-bungarus-testus" and top["taught"] is True and top["venomous"] == "unknown"
    assert answer["risk"] is True  # unknown venom counts as venomous
    table = run_cli("classify", photos[2]).stdout
    assert "Test krait (Bungarus testus) [taught by you]" in table

    listed = json.loads(run_cli("species", "list", "--json").stdout)
    assert [(s["common_name"], s["status"], s["photos"], s["countries"]) for s in listed] == [
        ("Test krait", "ready", 7, ["IN"])]

    shared = tmp_path / "share.snakeid-species"
    assert run_cli("species", "export", shared).returncode == 0
    again = run_cli("species", "export", shared)
    assert again.returncode == 2 and "--force" in again.stderr
    assert run_cli("species", "export", shared, "--force").returncode == 0

    monkeypatch.setenv("SNAKEID_HOME", str(home_b))
    proc = run_cli("species", "import", shared)
    assert proc.returncode == 0 and "Imported 1 species: Test krait (Bungarus testus)." in proc.stdout
    assert run_cli("species", "rename", "bungarus TESTUS", "Banded test krait").returncode == 0
    assert "Banded test krait" in run_cli("species", "list").stdout
    assert run_cli("species", "remove", "Banded test krait").returncode == 0
    gone = run_cli("species", "remove", "Banded test krait")
    assert gone.returncode == 2 and "No taught species is called" in gone.stderr
    assert "No species taught on this computer yet" in run_cli("species", "list").stdout
    assert not any(p.suffix == ".png" for p in home_a.rglob("*")), "a photo was copied into the data folder"


def test_teach_refusals_exit_2_with_one_sentence(tmp_path, monkeypatch):
    monkeypatch.setenv("SNAKEID_HOME", str(tmp_path / "home"))
    _photos(tmp_path / "few", count=3)
    proc = run_cli("teach", tmp_path / "few", "--scientific-name", "Few photos", "--common-name", "F",
                   "--venomous", "no")
    assert proc.returncode == 2 and "at least 5 are needed" in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    proc = run_cli("teach", tmp_path / "few", "--scientific-name", "Naja philippinensis", "--common-name", "C",
                   "--venomous", "yes")
    assert proc.returncode == 2 and "already knows Naja philippinensis (Philippine cobra)" in proc.stderr
    proc = run_cli("teach", tmp_path / "few", "--scientific-name", "X y", "--common-name", "C",
                   "--venomous", "perhaps")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr
    proc = run_cli("teach", tmp_path / "few", "--scientific-name", "X y", "--common-name", "C", "--venomous", "no",
                   "--country", "auto")
    assert proc.returncode == 2 and "two-letter country code" in proc.stderr
    proc = run_cli("species", "import", tmp_path / "few" / "P0.png")
    assert proc.returncode == 2 and "not a SnakeID species pack" in proc.stderr
    assert not (tmp_path / "home" / "data" / "taught-species").exists() or not os.listdir(
        tmp_path / "home" / "data" / "taught-species")
