"""``python -m snakeid_desktop`` opens the desktop app (the CLI is ``snakeid``)."""

import sys

from snakeid_desktop.gui.app import main

if __name__ == "__main__":
    sys.exit(main())
