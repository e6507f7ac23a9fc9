"""Folders the GUI suggests to the user (shared by the windows that save or open files)."""

from __future__ import annotations

from pathlib import Path


def documents_dir() -> Path:
    """The user's Documents folder (platformdirs), or the home folder where there is none."""
    try:
        import platformdirs

        folder = Path(platformdirs.user_documents_dir())
    except Exception:  # platformdirs answers from the environment; never let a suggestion fail an export
        folder = Path.home()
    return folder if folder.is_dir() else Path.home()
