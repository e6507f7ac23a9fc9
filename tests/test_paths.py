"""Where bundled files are looked for in each kind of installation (tests/test_wheel.py installs one), and where
user files go."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

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


# --- folders SnakeID writes to --------------------------------------------------------------------------------

USER_DIR_FUNCTIONS = sorted(name for name in dir(paths) if name.startswith("user_") and name.endswith("_dir"))
KIND = {"user_config_dir": "config", "user_cache_dir": "cache", "user_data_dir": "data", "user_log_dir": "log"}


def test_every_user_folder_function_is_covered():
    # A new user_*_dir must be added to KIND (and so to SNAKEID_HOME's layout), or this fails.
    assert set(USER_DIR_FUNCTIONS) == set(KIND)


@pytest.mark.parametrize("name", USER_DIR_FUNCTIONS)
def test_snakeid_home_moves_every_user_folder(name, tmp_path, monkeypatch):
    monkeypatch.setenv("SNAKEID_HOME", str(tmp_path / "home"))
    assert getattr(paths, name)() == tmp_path / "home" / KIND[name]


def test_user_folders_under_snakeid_home_are_distinct(tmp_path, monkeypatch):
    monkeypatch.setenv("SNAKEID_HOME", str(tmp_path))
    assert len({getattr(paths, name)() for name in USER_DIR_FUNCTIONS}) == len(USER_DIR_FUNCTIONS)


def test_specific_overrides_win_over_snakeid_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SNAKEID_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SNAKEID_CACHE_DIR", str(tmp_path / "my-cache"))
    monkeypatch.setenv("SNAKEID_DATA_DIR", str(tmp_path / "my-data"))
    assert paths.user_cache_dir() == tmp_path / "my-cache"
    assert paths.user_data_dir() == tmp_path / "my-data"
    assert paths.user_config_dir() == tmp_path / "home" / "config"
    assert paths.user_log_dir() == tmp_path / "home" / "log"


@pytest.mark.parametrize("name", USER_DIR_FUNCTIONS)
def test_without_snakeid_home_the_platform_folders_are_used(name, monkeypatch):
    from platformdirs import PlatformDirs

    monkeypatch.delenv("SNAKEID_HOME")  # set by conftest: its absence would mean the fixture is gone
    expected = getattr(PlatformDirs(paths.APP_NAME, paths.APP_AUTHOR), name)
    assert getattr(paths, name)() == Path(expected)


def test_an_empty_snakeid_home_counts_as_unset(monkeypatch):
    from platformdirs import PlatformDirs

    monkeypatch.setenv("SNAKEID_HOME", "")  # not "config" relative to wherever the app was started
    assert paths.user_config_dir() == Path(PlatformDirs(paths.APP_NAME, paths.APP_AUTHOR).user_config_dir)


def test_the_app_writes_under_the_tests_private_home(snakeid_home):
    """conftest's fixture reaches what the app actually opens: settings, log, result cache, sort manifests."""
    from snakeid_desktop.batch_cache import default_cache_path
    from snakeid_desktop.gui.settings import default_settings_path
    from snakeid_desktop.sorting import default_manifest_dir

    for path in (default_settings_path(), default_cache_path(), default_manifest_dir(), paths.user_log_dir()):
        assert path.is_relative_to(snakeid_home), path
