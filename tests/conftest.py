"""Shared fixtures: a network guard, a private SnakeID home per test, small model bundles built on the fly."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


class NetworkAccessError(AssertionError):
    pass


def _refuse(*args, **kwargs):
    raise NetworkAccessError(f"test tried to use the network: {args!r}")


@pytest.fixture(autouse=True, scope="session")
def _no_network():
    """Any attempt to open an internet connection fails the test (Unix-domain sockets stay allowed)."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def guarded_connect(self, address):
        if self.family == getattr(socket, "AF_UNIX", None):
            return real_connect(self, address)
        _refuse(address)

    def guarded_connect_ex(self, address):
        if self.family == getattr(socket, "AF_UNIX", None):
            return real_connect_ex(self, address)
        _refuse(address)

    mp = pytest.MonkeyPatch()
    mp.setattr(socket.socket, "connect", guarded_connect)
    mp.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    mp.setattr(socket, "create_connection", _refuse)
    mp.setattr(socket, "getaddrinfo", _refuse)
    yield
    mp.undo()


@pytest.fixture(autouse=True, scope="session")
def _session_snakeid_home(tmp_path_factory):
    """Session-scoped fixtures run before the per-test folder below exists: give them one too."""
    mp = pytest.MonkeyPatch()
    mp.setenv("SNAKEID_HOME", str(tmp_path_factory.mktemp("snakeid-home-session")))
    yield
    mp.undo()


@pytest.fixture(autouse=True)
def snakeid_home(tmp_path_factory, monkeypatch) -> Path:
    """Every test (and every app it starts) keeps settings, logs, cache and data in a folder of its own.

    So no test writes to the real user folders. A developer's own SNAKEID_CACHE_DIR/SNAKEID_DATA_DIR
    would win over SNAKEID_HOME, so they are cleared; tests that need them set them again.
    Not under tmp_path: tests that list their tmp_path must not find this folder there.
    """
    home = tmp_path_factory.mktemp("snakeid-home")
    monkeypatch.setenv("SNAKEID_HOME", str(home))
    for name in ("SNAKEID_CACHE_DIR", "SNAKEID_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    return home


def make_test_bundle(directory: Path, *, seed: int = 0, width_mult: float = 0.35, input_size: int = 96, **kwargs) -> Path:
    """A randomly initialised but complete bundle over the catalogue's species plus not_snake."""
    import torch

    from snakeid_desktop.bundle import NOT_SNAKE, save_bundle
    from snakeid_desktop.catalogue import load_catalogue
    from snakeid_desktop.model import build_model
    from snakeid_desktop.preprocess import Preprocessing

    classes = sorted(load_catalogue(REPO_ROOT / "resources" / "species.json").species) + [NOT_SNAKE]
    torch.manual_seed(seed)
    model = build_model("mobilenet_v2", num_classes=len(classes), width_mult=width_mult)
    model.eval()
    prep = Preprocessing(input_size=input_size, resize_size=round(input_size / 0.875))
    kwargs.setdefault("metrics", {"val_top1": 0.5, "per_class_accuracy": {c: 0.5 for c in classes if c != NOT_SNAKE}})
    with_replay = kwargs.pop("replay", True)
    save_bundle(
        directory,
        model,
        classes=classes,
        preprocessing=prep,
        model_version="test",
        architecture_options={"width_mult": width_mult},
        **kwargs,
    )
    if with_replay:
        add_test_replay(directory, model, classes, input_size, seed)
    return directory


def add_test_replay(directory: Path, model, classes, input_size: int, seed: int = 0, photos: int = 96) -> None:
    """Replay features for a test bundle (as ``training.build_replay`` writes them for the real one):
    the network's features of smooth random pictures, each labelled with the network's own answer."""
    import torch

    from snakeid_desktop.bundle import update_metadata
    from snakeid_desktop.checksums import sha256_file
    from snakeid_desktop.taught_head import save_replay

    generator = torch.Generator().manual_seed(seed + 1)
    coarse = torch.rand(photos, 3, 6, 6, generator=generator) * 2 - 1
    images = torch.nn.functional.interpolate(coarse, size=(input_size, input_size), mode="bilinear")
    with torch.inference_mode():
        features = model.forward_features(images)
        labels = model.classifier(features).argmax(dim=1)
    path = Path(directory) / "replay.pt"
    save_replay(path, features, labels, classes)
    digest = sha256_file(path)
    update_metadata(directory, lambda meta: meta.update(replay_file="replay.pt", replay_sha256=digest))


@pytest.fixture(scope="session")
def test_bundle_dir(tmp_path_factory) -> Path:
    return make_test_bundle(tmp_path_factory.mktemp("bundle"))


@pytest.fixture(scope="session")
def predictor(test_bundle_dir):
    from snakeid_desktop.predictor import Predictor

    return Predictor.load(test_bundle_dir, num_threads=1)


# ------------------------------------------------------------------ shared GUI-test helpers
# (Kept Qt-free: conftest is loaded by every test, the core tests included.)


@pytest.fixture
def no_threads_left_behind():
    """After the test (and qtbot closing its widgets) no new Python thread and no GUI worker QThread runs.

    Opt in with ``pytest.mark.usefixtures("no_threads_left_behind")``; usefixtures fixtures are set up
    before the test's own (qtbot), so this check runs after qtbot's teardown."""
    import sys
    import threading

    before = set(threading.enumerate())
    yield
    worker = sys.modules.get("snakeid_desktop.gui.inference_worker")
    if worker is not None:
        assert worker.running_worker_threads() == []
    leftover = [
        t
        for t in threading.enumerate()
        if t not in before and t.is_alive() and not isinstance(t, threading._DummyThread)
    ]
    assert leftover == []


class SlowPredictor:
    """Wraps a real predictor; each forward pass waits on ``gate``, sleeps ``delay`` s, then raises
    ``error`` if set: time to cancel, close or queue more while the model is busy."""

    def __init__(self, inner, delay: float = 0.0, gate=None, error: Exception | None = None):
        self._inner = inner
        self.delay, self.gate, self.error = delay, gate, error
        self.calls = 0

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def _forward_pass(self) -> None:
        import time

        self.calls += 1
        if self.gate is not None:
            self.gate.wait(10)
        if self.delay:
            time.sleep(self.delay)
        if self.error is not None:
            raise self.error

    def predict_images(self, images, top_k=None, places=None):  # the main window's worker
        self._forward_pass()
        return self._inner.predict_images(images, top_k=top_k, places=places)

    def predict_tensors(self, batch, top_k=None, model=None, places=None):  # the batch engine
        self._forward_pass()
        return self._inner.predict_tensors(batch, top_k, model=model, places=places)


@pytest.fixture
def folder_run_calls(monkeypatch):
    """Each ``FolderRun.classify`` call as (folder, recursive, options), still run for real: shows a
    caller goes through the one core folder pipeline."""
    from snakeid_desktop.batch import FolderRun

    calls = []
    real_classify = FolderRun.classify

    def spy(self, predictor, **options):
        calls.append((self.folder, self.recursive, options))
        return real_classify(self, predictor, **options)

    monkeypatch.setattr(FolderRun, "classify", spy)
    return calls


# ------------------------------------------------------------------ GUI windows (Qt imported only when used)


@pytest.fixture
def settings(tmp_path):
    from snakeid_desktop.gui.settings import AppSettings

    return AppSettings(tmp_path / "config" / "settings.ini")


@pytest.fixture
def make_window(qtbot, settings, test_bundle_dir):
    """Main windows with their own inference controller (the app's model loader unless a factory is given),
    shown and, by default, with the model ready; each is closed afterwards and must leave no worker running."""
    from snakeid_desktop.gui.inference_worker import InferenceController
    from snakeid_desktop.gui.main_window import MainWindow

    windows = []

    def make(weights_dir=None, predictor_factory=None, wait_ready=True, **window_options):
        controller = InferenceController(weights_dir or test_bundle_dir, predictor_factory=predictor_factory)
        window = MainWindow(controller, settings, **window_options)
        qtbot.addWidget(window)
        windows.append(window)
        window.show()
        if wait_ready:
            qtbot.waitUntil(lambda: controller.state in ("ready", "failed"), timeout=60_000)
        return window

    yield make
    for window in windows:
        window.close()
        assert not window.controller.is_running


@pytest.fixture
def window(make_window):
    return make_window()
