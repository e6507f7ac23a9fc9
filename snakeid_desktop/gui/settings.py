"""Typed app settings over an INI file in the platformdirs config folder.

Each option has a type, a default and (where it matters) a valid range, so a hand-edited or
corrupt value falls back to the default instead of breaking the window. A file written by an
older release is brought up to date on load by ``UPGRADES`` (one step per version, in order),
then stamped with ``SCHEMA_VERSION``. Tests pass a path under tmp.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

from .. import paths


def _upgrade_1_to_2(qs: QSettings) -> None:
    """2: drop ``window/state``: the window has no docks or toolbars to restore, so it was never read."""
    qs.remove("window/state")


# UPGRADES[i] takes a file from version i + 1 to i + 2. Append a step for every change that
# renames, moves or reinterprets a stored value; a new key with a default needs none.
UPGRADES: Sequence[Callable[[QSettings], None]] = (_upgrade_1_to_2,)
SCHEMA_VERSION = 1 + len(UPGRADES)
SETTINGS_FILE = "snakeid-desktop.ini"
TOP_K_RANGE = (1, 10)
DEFAULT_TOP_K = 3


def default_settings_path() -> Path:
    return paths.user_config_dir() / SETTINGS_FILE


class AppSettings:
    def __init__(self, path: Path | str | None = None):
        self.path = Path(path) if path is not None else default_settings_path()
        # QSettings creates the folder and writes atomically on sync().
        self._qs = QSettings(str(self.path), QSettings.Format.IniFormat)
        upgrade(self._qs)

    def _int(self, key: str, default: int, low: int, high: int) -> int:
        raw = self._qs.value(key, default)
        try:
            value = int(raw)
        except (TypeError, ValueError):
            return default
        return value if low <= value <= high else default

    @property
    def top_k(self) -> int:
        return self._int("results/top_k", DEFAULT_TOP_K, *TOP_K_RANGE)

    @top_k.setter
    def top_k(self, value: int) -> None:
        low, high = TOP_K_RANGE
        self._qs.setValue("results/top_k", max(low, min(high, int(value))))

    @property
    def country(self) -> str | None:
        """The "Where are you?" choice: a known country code, or None for anywhere."""
        value = self._qs.value("region/country")
        if not value:
            return None
        from ..region import known_codes

        code = str(value).upper()
        return code if code in known_codes() else None

    @country.setter
    def country(self, code: str | None) -> None:
        self._qs.setValue("region/country", code or "")

    @property
    def last_folder(self) -> str | None:
        value = self._qs.value("files/last_folder")
        return str(value) if value and Path(str(value)).is_dir() else None

    @last_folder.setter
    def last_folder(self, folder: str | Path | None) -> None:
        if folder:
            self._qs.setValue("files/last_folder", str(folder))

    @property
    def remember_history(self) -> bool:
        """Keep the session's answers for the next launch (off unless the user turns it on)."""
        value = self._qs.value("history/remember", False)
        if isinstance(value, bool):
            return value
        return str(value).strip().lower() in ("true", "1", "yes")

    @remember_history.setter
    def remember_history(self, on: bool) -> None:
        self._qs.setValue("history/remember", bool(on))

    @property
    def window_geometry(self) -> QByteArray | None:
        value = self._qs.value("window/geometry")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    @window_geometry.setter
    def window_geometry(self, value: QByteArray) -> None:
        self._qs.setValue("window/geometry", value)

    def sync(self) -> None:
        self._qs.sync()


def stored_version(qs: QSettings, current: int = SCHEMA_VERSION) -> int:
    """The file's schema version: ``current`` for a new (empty) file, 1 for a file from before
    versioning or with an unreadable stamp."""
    if not qs.allKeys():
        return current
    try:
        return max(1, int(qs.value("schema_version", 1)))
    except (TypeError, ValueError):
        return 1


def upgrade(qs: QSettings, upgrades: Sequence[Callable[[QSettings], None]] = UPGRADES) -> int:
    """Run the steps from the stored version up to ``1 + len(upgrades)``; return the version now stored.

    A file from a newer release is left as it is (values this release does not know read as defaults)."""
    target = 1 + len(upgrades)
    version = stored_version(qs, target)
    if version > target:
        return version
    for step in upgrades[version - 1 :]:
        step(qs)
        version += 1
    qs.setValue("schema_version", version)
    qs.sync()
    return version
