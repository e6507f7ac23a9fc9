"""The settings file: typed values and the versioned upgrade run on load."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QSettings  # noqa: E402

from snakeid_desktop.gui.settings import SCHEMA_VERSION, AppSettings, upgrade  # noqa: E402

# A file as version 1 wrote it: the stamp, user choices, and the window/state key 2 drops.
VERSION_1_FILE = """[General]
schema_version=1

[results]
top_k=5

[region]
country=AU

[window]
geometry=@ByteArray(geometry-bytes)
state=@ByteArray(state-bytes)
"""


def _read(path) -> QSettings:
    return QSettings(str(path), QSettings.Format.IniFormat)


def test_a_version_1_file_is_upgraded_on_load_and_keeps_the_users_choices(tmp_path):
    path = tmp_path / "old.ini"
    path.write_text(VERSION_1_FILE)
    settings = AppSettings(path)
    assert settings.top_k == 5
    assert settings.country == "AU"
    assert settings.window_geometry is not None
    on_disk = _read(path)  # upgrade() synced: a fresh reader sees the result
    assert int(on_disk.value("schema_version")) == SCHEMA_VERSION == 2
    assert on_disk.value("window/state") is None
    assert on_disk.value("results/top_k") is not None


def test_a_file_from_before_versioning_counts_as_version_1(tmp_path):
    path = tmp_path / "unversioned.ini"
    path.write_text("[results]\ntop_k=4\n[window]\nstate=@ByteArray(x)\n")
    AppSettings(path)
    on_disk = _read(path)
    assert int(on_disk.value("schema_version")) == SCHEMA_VERSION
    assert on_disk.value("window/state") is None
    assert int(on_disk.value("results/top_k")) == 4


def test_a_new_file_is_stamped_with_the_current_version_and_runs_no_step(tmp_path):
    ran = []
    qs = _read(tmp_path / "new.ini")
    assert upgrade(qs, [lambda q: ran.append(1), lambda q: ran.append(2)]) == 3
    assert ran == []
    assert int(_read(tmp_path / "new.ini").value("schema_version")) == 3


def test_steps_run_in_order_from_the_stored_version(tmp_path):
    path = tmp_path / "v2.ini"
    path.write_text("[General]\nschema_version=2\n[a]\nx=1\n")
    ran = []
    steps = [lambda q: ran.append("1->2"), lambda q: ran.append("2->3"), lambda q: (ran.append("3->4"), q.setValue("a/x", 2))]
    qs = _read(path)
    assert upgrade(qs, steps) == 4
    assert ran == ["2->3", "3->4"]
    reread = _read(path)
    assert int(reread.value("schema_version")) == 4
    assert int(reread.value("a/x")) == 2


def test_a_file_from_a_newer_release_is_left_alone(tmp_path):
    path = tmp_path / "future.ini"
    path.write_text(f"[General]\nschema_version={SCHEMA_VERSION + 5}\n[window]\nstate=@ByteArray(x)\n")
    AppSettings(path)
    on_disk = _read(path)
    assert int(on_disk.value("schema_version")) == SCHEMA_VERSION + 5
    assert on_disk.value("window/state") is not None


def test_settings_ignore_corrupt_values_and_stamp(tmp_path):
    path = tmp_path / "s.ini"
    path.write_text("[General]\nschema_version=banana\n[results]\ntop_k=banana\n")
    settings = AppSettings(path)
    assert settings.top_k == 3
    assert int(_read(path).value("schema_version")) == SCHEMA_VERSION


def test_remembering_answers_is_off_by_default_and_reads_back(tmp_path):
    path = tmp_path / "h.ini"
    settings = AppSettings(path)
    assert settings.remember_history is False
    settings.remember_history = True
    settings.sync()
    assert AppSettings(path).remember_history is True
    path.write_text("[history]\nremember=banana\n")
    assert AppSettings(path).remember_history is False
