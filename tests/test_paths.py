"""Where bundled files are looked for, in each way the app can be installed (tests/test_wheel.py installs one)."""

from __future__ import annotations

import sys

from snakeid_desktop import paths
from tests.conftest import REPO_ROOT


def test_checkout_reads_the_repository_folders(monkeypatch):
    monkeypatch.delenv("SNAKEID_WEIGHTS_DIR", raising=False)
    # Run from the repository (or installed editable): there is no snakeid_desktop/_data.
    assert paths._packaged_data() is None
    assert paths.install_root() == REPO_ROOT
    assert paths.weights_dir() == REPO_ROOT / "weights"
    assert paths.resources_dir() == REPO_ROOT / "resources"


def test_installed_wheel_reads_the_package_data_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("SNAKEID_WEIGHTS_DIR", raising=False)
    data = tmp_path / "site-packages" / "snakeid_desktop" / "_data"
    monkeypatch.setattr(paths, "_packaged_data", lambda: data)
    assert paths.weights_dir() == data / "weights"
    assert paths.resources_dir() == data / "resources"


def test_packaged_data_is_found_through_importlib_resources(tmp_path, monkeypatch):
    data = tmp_path / "pkg" / "_data"
    data.mkdir(parents=True)
    monkeypatch.setattr(paths.importlib.resources, "files", lambda name: tmp_path / "pkg")
    assert paths._packaged_data() == data
    data.rmdir()
    assert paths._packaged_data() is None  # no _data folder: not an installed wheel


def test_frozen_bundle_wins_over_everything_else(tmp_path, monkeypatch):
    monkeypatch.delenv("SNAKEID_WEIGHTS_DIR", raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path / "bundle"), raising=False)
    monkeypatch.setattr(paths, "_packaged_data", lambda: tmp_path / "site-packages" / "snakeid_desktop" / "_data")
    assert paths.weights_dir() == tmp_path / "bundle" / "weights"
    assert paths.resources_dir() == tmp_path / "bundle" / "resources"


def test_weights_override_wins_in_every_installation(tmp_path, monkeypatch):
    monkeypatch.setenv("SNAKEID_WEIGHTS_DIR", str(tmp_path / "mine"))
    assert paths.weights_dir() == tmp_path / "mine"
    monkeypatch.setattr(paths, "_packaged_data", lambda: tmp_path / "data")
    assert paths.weights_dir() == tmp_path / "mine"
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path / "bundle"), raising=False)
    assert paths.weights_dir() == tmp_path / "mine"
    assert paths.resources_dir() == tmp_path / "bundle" / "resources"  # only the model is overridable
