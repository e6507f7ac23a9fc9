"""Entry script PyInstaller freezes into the windowed ``snakeid-desktop`` executable (see pyinstaller.spec)."""

import multiprocessing
import sys
import warnings


def run() -> int:
    # Must come first: a frozen child process started by multiprocessing would otherwise reopen the window.
    multiprocessing.freeze_support()
    # Import-time warnings that only say what the frozen app leaves out on purpose: numpy, and the
    # Python sources of torch (needed only to script TorchScript functions, which the app never does).
    warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
    warnings.filterwarnings("ignore", message=r"Unable to retrieve source for @torch\.jit\._overload")
    from snakeid_desktop.gui.app import main

    return main()


if __name__ == "__main__":
    sys.exit(run())
