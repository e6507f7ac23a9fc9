"""Before Qt starts on Linux: are the X11 libraries Qt 6's xcb plugin needs installed?

Without them Qt aborts with a generic "could not load the Qt platform plugin" message that names no
package. Checking first lets us say exactly what to install.
"""

from __future__ import annotations

import ctypes
import os
import sys

# soname -> Debian/Ubuntu package (Fedora: the same libraries come from xcb-util-*, libxkbcommon-x11).
XCB_LIBRARIES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
}


def _loads(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def will_use_xcb(environ=os.environ, platform: str = sys.platform) -> bool:
    """Whether Qt will try its X11 (xcb) plugin: Linux, no other platform chosen, not Wayland-only."""
    if not platform.startswith("linux"):
        return False
    chosen = environ.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip()
    if chosen:
        return chosen == "xcb"
    return not (environ.get("WAYLAND_DISPLAY") and not environ.get("DISPLAY"))


def missing_xcb_packages(loads=_loads) -> list[str]:
    return [package for soname, package in XCB_LIBRARIES.items() if not loads(soname)]


def xcb_problem(environ=os.environ, platform: str = sys.platform, loads=_loads) -> str | None:
    """A message naming the packages to install, or None when nothing is missing (or xcb is not used)."""
    if not will_use_xcb(environ, platform):
        return None
    missing = missing_xcb_packages(loads)
    if not missing:
        return None
    return (
        "SnakeID cannot open its window: the X11 libraries Qt needs are missing ("
        + ", ".join(missing)
        + "). Install them, e.g. on Debian or Ubuntu: sudo apt-get install "
        + " ".join(missing)
        + " (on Fedora: sudo dnf install xcb-util-cursor xcb-util-wm xcb-util-keysyms xcb-util-image "
        "xcb-util-renderutil libxkbcommon-x11)."
    )
