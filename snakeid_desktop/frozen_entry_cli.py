"""Entry script PyInstaller freezes into the console ``snakeid`` executable (see pyinstaller.spec)."""

import sys

from snakeid_desktop.frozen_support import prepare_frozen_process


def run() -> int:
    prepare_frozen_process()
    from snakeid_desktop.cli import main

    return main()


if __name__ == "__main__":
    sys.exit(run())
