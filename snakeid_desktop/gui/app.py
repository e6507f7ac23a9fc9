"""Start-up of the desktop app: logging, crash handling, QApplication, the main window.

``snakeid-desktop [--weights DIR] [--smoke-quit] [PHOTO ...]``

``--smoke-quit`` (used by the frozen-app smoke test) shows the window, loads the model through
the normal worker, prints one JSON line and exits: 0 when the model loaded, 1 when it did not,
2 on a time-out. Its timings are seconds since launch. The launch reference is, in order of
preference: ``SNAKEID_LAUNCH_EPOCH`` (``time.time()`` the launcher took just before starting
the process, e.g. ``SNAKEID_LAUNCH_EPOCH=$(date +%s.%N)``), the process start time from
``/proc`` (Linux), else the moment this module was imported (which misses interpreter start-up).
"""

from __future__ import annotations

import time

_MODULE_IMPORTED = time.perf_counter()
_MODULE_IMPORTED_EPOCH = time.time()

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import logging.handlers  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402

log = logging.getLogger("snakeid_desktop.gui")

LOG_FILE = "snakeid-desktop.log"
SMOKE_TIMEOUT_S = 120


def launch_epoch() -> tuple[float, str]:
    """(epoch seconds of launch, which reference was used)."""
    env = os.environ.get("SNAKEID_LAUNCH_EPOCH")
    if env:
        try:
            return float(env), "SNAKEID_LAUNCH_EPOCH"
        except ValueError:
            pass
    started = _process_start_epoch()
    if started is not None:
        return started, "process_start"
    return _MODULE_IMPORTED_EPOCH, "module_import"


def _process_start_epoch() -> float | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        stat = Path("/proc/self/stat").read_text()
        start_ticks = int(stat.rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        ticks = os.sysconf("SC_CLK_TCK")
        return time.time() - uptime + start_ticks / ticks
    except (OSError, ValueError, IndexError):
        return None


def setup_logging(verbose: bool = False) -> Path | None:
    """Rotating log file in the user log folder (platformdirs', or ``$SNAKEID_HOME/log``), warnings also to stderr."""
    from .. import paths

    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s")
    log_path = None
    try:
        log_dir = paths.user_log_dir()
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / LOG_FILE
        handler = logging.handlers.RotatingFileHandler(log_path, maxBytes=1_000_000, backupCount=3, encoding="utf-8")
        handler.setFormatter(formatter)
        root.addHandler(handler)
    except OSError as exc:  # a read-only home must not stop the app
        print(f"SnakeID: cannot write the log file ({exc}); logging to the console only.", file=sys.stderr)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.DEBUG if verbose else logging.WARNING)
    console.setFormatter(formatter)
    root.addHandler(console)
    return log_path


def _install_qt_message_handler() -> None:
    from PySide6.QtCore import QtMsgType, qInstallMessageHandler

    levels = {
        QtMsgType.QtDebugMsg: logging.DEBUG,
        QtMsgType.QtInfoMsg: logging.INFO,
        QtMsgType.QtWarningMsg: logging.WARNING,
        QtMsgType.QtCriticalMsg: logging.ERROR,
        QtMsgType.QtFatalMsg: logging.CRITICAL,
    }

    def handler(msg_type, context, message):
        logging.getLogger("qt").log(levels.get(msg_type, logging.WARNING), "%s", message)

    qInstallMessageHandler(handler)


_in_excepthook = False
_show_error_dialogs = True  # off for --smoke-quit: a modal dialog would hang an unattended run


def _excepthook(exc_type, exc, tb) -> None:
    """Log an uncaught exception and show it in a dialog instead of dying mid-session."""
    global _in_excepthook
    text = "".join(traceback.format_exception(exc_type, exc, tb))
    log.critical("uncaught exception:\n%s", text)
    if _in_excepthook or not _show_error_dialogs or issubclass(exc_type, KeyboardInterrupt):
        return
    _in_excepthook = True
    try:
        from PySide6.QtCore import QThread
        from PySide6.QtWidgets import QApplication, QMessageBox

        qapp = QApplication.instance()
        # Widgets only on the GUI thread; from a worker thread the log line is all we can do.
        if qapp is not None and QThread.currentThread() == qapp.thread():
            from ..errors import user_message

            box = QMessageBox(QMessageBox.Icon.Critical, "SnakeID: unexpected error",
                              f"{user_message(exc, already_logged=True)}\n\n"
                              "The app keeps running; details are in the log file.")
            box.setDetailedText(text)
            box.exec()
    finally:
        _in_excepthook = False
_show_error_dialogs = True  # off for --smoke-quit: a modal dialog would hang an unattended run


def _thread_excepthook(args) -> None:
    log.critical(
        "uncaught exception in thread %s:\n%s",
        getattr(args.thread, "name", "?"),
        "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback)),
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="snakeid-desktop", description="SnakeID: identify snakes in photos, offline.")
    parser.add_argument("photos", nargs="*", help="photos to classify at start")
    parser.add_argument("--weights", metavar="DIR", help="model bundle folder (default: the bundled weights/)")
    parser.add_argument("--smoke-quit", action="store_true", help="show the window, load the model, print timings as JSON, quit")
    parser.add_argument("--verbose", action="store_true", help="debug logging, also to the console")
    # Qt's own options (-platform, -style ...) pass through to QApplication.
    args, qt_args = parser.parse_known_args(argv)
    args.qt_args = qt_args
    return args


def app_icon():
    from PySide6.QtGui import QIcon

    from .. import paths

    png = paths.resources_dir() / "app-icon.png"
    return QIcon(str(png)) if png.is_file() else QIcon()


def dark_palette():
    """A Fusion palette for dark mode where the platform gives none (e.g. Linux without a theme plugin).

    Text on every background keeps WCAG AA contrast; the card's badges and warning use fixed colours
    with white text, readable on both palettes."""
    from PySide6.QtGui import QColor, QPalette

    palette = QPalette()
    colours = {
        QPalette.ColorRole.Window: "#2b2b2b", QPalette.ColorRole.WindowText: "#e8e8e8",
        QPalette.ColorRole.Base: "#1f1f1f", QPalette.ColorRole.AlternateBase: "#2b2b2b",
        QPalette.ColorRole.Text: "#e8e8e8", QPalette.ColorRole.Button: "#363636",
        QPalette.ColorRole.ButtonText: "#e8e8e8", QPalette.ColorRole.BrightText: "#ffffff",
        QPalette.ColorRole.Highlight: "#3d6fd1", QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.ToolTipBase: "#363636", QPalette.ColorRole.ToolTipText: "#e8e8e8",
        QPalette.ColorRole.PlaceholderText: "#a0a0a0", QPalette.ColorRole.Link: "#8ab4ff",
        QPalette.ColorRole.LinkVisited: "#c49cff", QPalette.ColorRole.Mid: "#555555",
        QPalette.ColorRole.Midlight: "#444444", QPalette.ColorRole.Dark: "#1a1a1a",
        QPalette.ColorRole.Light: "#505050", QPalette.ColorRole.Shadow: "#000000",
    }
    for role, colour in colours.items():
        palette.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#7a7a7a"))
    return palette


def apply_colour_scheme(app, dark: bool) -> None:
    """Make ``app`` draw light or dark. Where the platform already gave a palette of that kind it is
    kept; the one style that cannot draw dark (Windows 10's "windowsvista") is swapped for Fusion; where
    the palette stays light although dark is wanted (Linux without a theme plugin), ours is used."""
    from PySide6.QtGui import QPalette

    if dark and app.style().name().lower() == "windowsvista":
        app.setStyle("Fusion")
    light_window = app.palette().color(QPalette.ColorRole.Window).lightness() > 128
    if dark and light_window:
        app.setPalette(dark_palette())
        app.setProperty("snakeid_dark_palette", True)
    elif not dark and app.property("snakeid_dark_palette"):
        app.setPalette(app.style().standardPalette())
        app.setProperty("snakeid_dark_palette", False)


def follow_system_colour_scheme(app) -> None:
    """Light/dark follows the system (``SNAKEID_COLOUR_SCHEME=dark|light`` overrides it, for platforms that
    do not report a scheme), and changes with it while the app runs."""
    from PySide6.QtCore import Qt

    hints = app.styleHints()
    forced = os.environ.get("SNAKEID_COLOUR_SCHEME", "").strip().lower()

    def apply(*_args) -> None:
        dark = forced == "dark" if forced in ("dark", "light") else hints.colorScheme() == Qt.ColorScheme.Dark
        apply_colour_scheme(app, dark)

    apply()
    hints.colorSchemeChanged.connect(apply)


def main(argv: list[str] | None = None) -> int:
    import multiprocessing

    multiprocessing.freeze_support()
    global _show_error_dialogs
    args = parse_args(sys.argv[1:] if argv is None else argv)
    _show_error_dialogs = not args.smoke_quit
    log_path = setup_logging(args.verbose)
    sys.excepthook = _excepthook
    threading.excepthook = _thread_excepthook

    from .platform_check import xcb_problem

    problem = xcb_problem()
    if problem:  # Qt would abort with a message that names no package
        log.error("%s", problem)
        print(problem, file=sys.stderr)
        return 1

    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    from .. import paths
    from .inference_worker import InferenceController
    from .main_window import MainWindow
    from .settings import AppSettings

    _install_qt_message_handler()
    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = QApplication.instance() or QApplication([sys.argv[0], *args.qt_args])
    app.setApplicationName("SnakeID")
    app.setOrganizationName("SnakeID")
    app.setApplicationDisplayName("SnakeID")
    app.setDesktopFileName("snakeid-desktop")
    app.setWindowIcon(app_icon())
    follow_system_colour_scheme(app)
    log.info("SnakeID starting; log file %s", log_path)

    weights = Path(args.weights) if args.weights else paths.weights_dir()
    controller = InferenceController(weights)
    window = MainWindow(controller, AppSettings())
    epoch, reference = launch_epoch()
    timings: dict = {"reference": reference}

    def since_launch() -> float:
        return round(time.time() - epoch, 3)

    exit_code = {"value": 0}
    if args.smoke_quit:
        def finish(ok: bool, **extra) -> None:
            timings.update(extra, ok=ok)
            print(json.dumps(timings), flush=True)
            exit_code["value"] = 0 if ok else 1
            window.close()
            app.exit(exit_code["value"])

        # When the worker began loading: model_ready_s minus this is the load itself (mostly `import torch`).
        controller.model_loading.connect(lambda: timings.setdefault("model_load_started_s", since_launch()))
        controller.model_ready.connect(lambda info: finish(True, model_ready_s=since_launch(), model_version=info.version))
        controller.model_failed.connect(lambda message: finish(False, model_ready_s=None, error=message))

        def timed_out() -> None:
            timings.update(ok=False, error=f"model not ready after {SMOKE_TIMEOUT_S} s")
            print(json.dumps(timings), flush=True)
            exit_code["value"] = 2
            window.close()
            app.exit(2)

        QTimer.singleShot(SMOKE_TIMEOUT_S * 1000, timed_out)

    window.show()
    # Measured once the event loop has processed the show (first expose/paint queued).
    QTimer.singleShot(0, lambda: timings.setdefault("window_shown_s", since_launch()))
    if args.photos:
        QTimer.singleShot(0, lambda: window.open_paths(args.photos))
    code = app.exec()
    controller.shutdown()  # no-op when the window's close already joined the worker
    return exit_code["value"] if args.smoke_quit else code


if __name__ == "__main__":
    sys.exit(main())
