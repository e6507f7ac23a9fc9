"""Start-up helpers of the desktop app: arguments, logging, crash handling, launch timing."""

from __future__ import annotations

import logging
import sys
import time

import pytest

pytest.importorskip("pytestqt")

from snakeid_desktop.gui import app  # noqa: E402


def test_arguments():
    args = app.parse_args(["--weights", "/w", "--smoke-quit", "a.jpg", "b.png", "-style", "fusion"])
    assert args.weights == "/w" and args.smoke_quit
    assert args.photos == ["a.jpg", "b.png"]
    assert args.qt_args == ["-style", "fusion"]  # Qt's own options pass through


def test_log_file_goes_to_the_user_log_folder(tmp_path, monkeypatch):
    from snakeid_desktop import paths

    monkeypatch.setattr(paths, "user_log_dir", lambda: tmp_path / "logs")
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    try:
        log_path = app.setup_logging()
        logging.getLogger("snakeid_desktop.test").warning("hello from the test")
        for handler in root.handlers:
            handler.flush()
        assert log_path == tmp_path / "logs" / app.LOG_FILE
        assert "hello from the test" in log_path.read_text(encoding="utf-8")
    finally:
        for handler in root.handlers[:]:
            if handler not in before:
                root.removeHandler(handler)
                handler.close()
        root.setLevel(level)


def test_uncaught_exception_is_logged_and_shown_not_fatal(qtbot, monkeypatch, caplog):
    from PySide6.QtWidgets import QMessageBox

    shown = []
    monkeypatch.setattr(QMessageBox, "exec", lambda self: shown.append(self.text()) or 0)
    try:
        raise ValueError("something odd")
    except ValueError:
        with caplog.at_level(logging.CRITICAL, logger="snakeid_desktop.gui"):
            app._excepthook(*sys.exc_info())
    assert "something odd" in caplog.text
    assert len(shown) == 1 and "something odd" in shown[0]


def test_launch_reference(monkeypatch):
    monkeypatch.setenv("SNAKEID_LAUNCH_EPOCH", "1234.5")
    assert app.launch_epoch() == (1234.5, "SNAKEID_LAUNCH_EPOCH")
    monkeypatch.delenv("SNAKEID_LAUNCH_EPOCH")
    epoch, reference = app.launch_epoch()
    assert reference in ("process_start", "module_import")
    assert epoch <= time.time()
    if sys.platform.startswith("linux"):
        assert reference == "process_start"
        assert time.time() - epoch < 3600  # this very test process, started moments ago


def test_dark_scheme_gets_a_readable_dark_palette_and_light_restores_it(qapp):
    from PySide6.QtGui import QPalette

    from snakeid_desktop.gui.app import apply_colour_scheme

    before = qapp.palette()
    try:
        apply_colour_scheme(qapp, dark=True)
        palette = qapp.palette()
        assert palette.color(QPalette.ColorRole.Window).lightness() < 100
        for fg, bg in ((QPalette.ColorRole.Text, QPalette.ColorRole.Base),
                       (QPalette.ColorRole.WindowText, QPalette.ColorRole.Window),
                       (QPalette.ColorRole.ButtonText, QPalette.ColorRole.Button)):
            assert palette.color(fg).lightness() - palette.color(bg).lightness() > 150, fg
        apply_colour_scheme(qapp, dark=False)
        assert qapp.palette().color(QPalette.ColorRole.Window).lightness() > 128
    finally:
        qapp.setPalette(before)
        qapp.setProperty("snakeid_dark_palette", False)
