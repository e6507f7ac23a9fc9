"""Take the README screenshot: the real app under Xvfb classifying a generated drawing.

    python scripts/screenshot.py [--weights DIR] [--out docs/screenshot.png]

Without a display it re-runs itself under ``xvfb-run`` (Debian: ``apt-get install xvfb``).
The picture is drawn by scripts/make_sample_photo.py, so the screenshot is free to publish.
With no model installed in weights/ (and no --weights), a random test bundle is used and the
verdict is meaningless; the script says so. Settings go to a temporary file, never to the
user's config.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "scripts"))

WINDOW_SIZE = (1280, 820)


def _rerun_under_xvfb() -> int:
    xvfb_run = shutil.which("xvfb-run")
    if xvfb_run is None:
        sys.exit("No display and no xvfb-run: install it (apt-get install -y xvfb) or set QT_QPA_PLATFORM=offscreen.")
    env = {**os.environ, "SNAKEID_SCREENSHOT_CHILD": "1"}
    cmd = [xvfb_run, "-a", "-s", "-screen 0 1600x1000x24 -dpi 96", sys.executable, *sys.argv]
    return subprocess.call(cmd, env=env)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", help="model bundle folder (default: weights/ if it holds a model)")
    parser.add_argument("--out", default=str(REPO_ROOT / "docs" / "screenshot.png"))
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--photo", help="classify this photo instead of the generated drawing (to look at the app "
                                        "on real photos; never for the README, whose picture must be free to publish)")
    args = parser.parse_args()

    if not os.environ.get("DISPLAY") and not os.environ.get("QT_QPA_PLATFORM") and not os.environ.get("SNAKEID_SCREENSHOT_CHILD"):
        return _rerun_under_xvfb()

    from make_sample_photo import draw_sample_snake
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from snakeid_desktop import paths
    from snakeid_desktop.gui.app import app_icon
    from snakeid_desktop.gui.inference_worker import InferenceController
    from snakeid_desktop.gui.main_window import MainWindow
    from snakeid_desktop.gui.settings import AppSettings

    work = Path(tempfile.mkdtemp(prefix="snakeid-screenshot-"))
    # A throw-away SnakeID home: the developer's own taught species, history and cache stay out of the picture.
    os.environ["SNAKEID_HOME"] = str(work / "home")
    for own in ("SNAKEID_CACHE_DIR", "SNAKEID_DATA_DIR"):
        os.environ.pop(own, None)
    try:
        weights = Path(args.weights) if args.weights else paths.weights_dir()
        if not (weights / "model.json").is_file():
            had_platform = "QT_QPA_PLATFORM" in os.environ
            from tests.conftest import make_test_bundle

            if not had_platform:  # conftest defaults tests to offscreen; the screenshot wants the X server
                os.environ.pop("QT_QPA_PLATFORM", None)

            print(f"No model in {weights}: using a random test bundle (the verdict shown is meaningless).")
            weights = make_test_bundle(work / "bundle")
        photo = Path(args.photo) if args.photo else draw_sample_snake(work / "sample-snake.jpg")

        app = QApplication.instance() or QApplication(["snakeid-screenshot"])
        app.setApplicationName("SnakeID")
        app.setWindowIcon(app_icon())
        settings = AppSettings(work / "settings.ini")
        settings.top_k = args.top_k
        controller = InferenceController(weights)
        window = MainWindow(controller, settings)
        window.resize(*WINDOW_SIZE)
        window.move(0, 0)
        window.show()
        failure: list[str] = []

        def grab() -> None:
            screen = window.screen()
            pixmap = screen.grabWindow(window.winId()) if QApplication.platformName() == "xcb" else window.grab()
            if pixmap.isNull() or pixmap.width() < 100:
                pixmap = window.grab()
            out = Path(args.out)
            out.parent.mkdir(parents=True, exist_ok=True)
            if not pixmap.save(str(out)):
                failure.append(f"could not save {out}")
            else:
                print(f"saved {out} ({pixmap.width()}x{pixmap.height()})")
            window.close()
            app.quit()

        def on_outcome(outcome) -> None:
            result = outcome.result
            verdict = result.prediction.verdict if result.prediction else result.error
            print(f"classified {photo.name}: {verdict}")
            QTimer.singleShot(600, grab)  # let layouts settle and the photo paint

        window.outcome_displayed.connect(on_outcome)
        controller.model_failed.connect(lambda message: (failure.append(message), app.quit()))
        QTimer.singleShot(0, lambda: window.open_paths([photo]))
        QTimer.singleShot(120_000, lambda: (failure.append("timed out"), app.quit()))
        app.exec()
        controller.shutdown()
        if failure:
            print("screenshot failed: " + "; ".join(failure), file=sys.stderr)
            return 1
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
