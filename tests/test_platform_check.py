"""The xcb check names the packages to install before Qt would abort without naming any."""

from snakeid_desktop.gui.platform_check import will_use_xcb, xcb_problem


def test_missing_libraries_are_named_with_their_packages():
    message = xcb_problem({"DISPLAY": ":0"}, "linux", loads=lambda soname: soname != "libxcb-cursor.so.0")
    assert message and "libxcb-cursor0" in message and "apt-get install libxcb-cursor0" in message
    assert "libxcb-icccm4" not in message


def test_nothing_to_say_when_all_load_or_xcb_is_not_used():
    assert xcb_problem({"DISPLAY": ":0"}, "linux", loads=lambda soname: True) is None
    never = lambda soname: False  # noqa: E731
    assert xcb_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux", loads=never) is None
    assert xcb_problem({"WAYLAND_DISPLAY": "wayland-0"}, "linux", loads=never) is None
    assert xcb_problem({"DISPLAY": ":0"}, "darwin", loads=never) is None
    assert xcb_problem({"DISPLAY": ":0"}, "win32", loads=never) is None
    assert will_use_xcb({"QT_QPA_PLATFORM": "xcb"}, "linux")
