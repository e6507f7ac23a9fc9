"""Entry script PyInstaller freezes into the windowed ``snakeid-desktop`` executable (see pyinstaller.spec)."""

import sys

from snakeid_desktop.frozen_support import prepare_frozen_process


def run() -> int:
    prepare_frozen_process()
    from snakeid_desktop.gui.app import main

    return main()


if __name__ == "__main__":
    sys.exit(run())
