"""Typed app settings over an INI file in the platformdirs config folder.

Each option has a type, a default and (where it matters) a valid range, so a hand-edited or
corrupt value falls back to the default instead of breaking the window. ``SCHEMA_VERSION``
lets a later release migrate stored values. Tests pass a path under tmp.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

from .. import paths

SCHEMA_VERSION = 1
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
        if self._qs.value("schema_version") is None:
            self._qs.setValue("schema_version", SCHEMA_VERSION)

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
    def window_geometry(self) -> QByteArray | None:
        value = self._qs.value("window/geometry")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    @window_geometry.setter
    def window_geometry(self, value: QByteArray) -> None:
        self._qs.setValue("window/geometry", value)

    @property
    def window_state(self) -> QByteArray | None:
        value = self._qs.value("window/state")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    @window_state.setter
    def window_state(self, value: QByteArray) -> None:
        self._qs.setValue("window/state", value)

    def sync(self) -> None:
        self._qs.sync()
