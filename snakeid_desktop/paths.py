"""Where bundled files live (frozen app, installed wheel or source checkout) and where user files go."""

from __future__ import annotations

import importlib.resources
import os
import sys
from pathlib import Path

APP_NAME = "SnakeID"
APP_AUTHOR = "SnakeID"


def _packaged_data() -> Path | None:
    """``snakeid_desktop/_data`` of an installed wheel, where setup.py copies ``weights/`` and ``resources/``."""
    root = importlib.resources.files("snakeid_desktop") / "_data"
    # Only a real folder will do (torch and sqlite want file paths); a wheel is always installed unzipped.
    return root if isinstance(root, Path) and root.is_dir() else None


def install_root() -> Path:
    """Folder holding ``weights/`` and ``resources/``.

    PyInstaller's bundle dir when frozen, else the package's ``_data`` folder when installed from a wheel,
    else the source checkout (run from the repository, or an editable install), which has no ``_data``.
    """
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root)
    packaged = _packaged_data()
    if packaged is not None:
        return packaged
    return Path(__file__).resolve().parent.parent


def weights_dir() -> Path:
    override = os.environ.get("SNAKEID_WEIGHTS_DIR")
    return Path(override) if override else install_root() / "weights"


def resources_dir() -> Path:
    return install_root() / "resources"


def _dirs():
    # Imported lazily: platformdirs is only needed when something is written.
    from platformdirs import PlatformDirs

    return PlatformDirs(APP_NAME, APP_AUTHOR)


def _user_dir(kind: str, specific_env: str | None, default) -> Path:
    """A folder SnakeID writes to: its own variable, else ``$SNAKEID_HOME/<kind>``, else platformdirs'.

    ``SNAKEID_HOME`` moves every such folder at once (portable setups, tests); the older per-folder
    variables keep working and win over it.
    """
    specific = os.environ.get(specific_env) if specific_env else None
    if specific:
        return Path(specific)
    home = os.environ.get("SNAKEID_HOME")
    if home:
        return Path(home) / kind
    return Path(default())


def user_config_dir() -> Path:
    return _user_dir("config", None, lambda: _dirs().user_config_dir)


def user_cache_dir() -> Path:
    return _user_dir("cache", "SNAKEID_CACHE_DIR", lambda: _dirs().user_cache_dir)


def user_log_dir() -> Path:
    return _user_dir("log", None, lambda: _dirs().user_log_dir)


def user_data_dir() -> Path:
    return _user_dir("data", "SNAKEID_DATA_DIR", lambda: _dirs().user_data_dir)
