"""Entry script PyInstaller freezes into the windowed ``snakeid-desktop`` executable (see pyinstaller.spec)."""

import multiprocessing
import sys
import warnings


def run() -> int:
    # Must come first: a frozen child process started by multiprocessing would otherwise reopen the window.
    multiprocessing.freeze_support()
    # The frozen app deliberately ships without numpy; torch warns about that at import time.
    warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
    from snakeid_desktop.gui.app import main

    return main()


if __name__ == "__main__":
    sys.exit(run())
