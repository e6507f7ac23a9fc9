"""Entry script PyInstaller freezes into the console ``snakeid`` executable (see pyinstaller.spec)."""

import multiprocessing
import sys
import warnings


def run() -> int:
    # Must come first: a frozen child process started by multiprocessing would otherwise rerun the app.
    multiprocessing.freeze_support()
    # The frozen app deliberately ships without numpy; torch warns about that at import time.
    warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
    from snakeid_desktop.cli import main

    return main()


if __name__ == "__main__":
    sys.exit(run())
