"""BackgroundOp: typed progress in order on the GUI thread, one outcome, a join on stop; one user_message."""

from __future__ import annotations

import logging
import sys
import threading
from dataclasses import dataclass

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtWidgets import QMessageBox, QWidget  # noqa: E402

from snakeid_desktop.errors import ModelBundleError  # noqa: E402
from snakeid_desktop.gui.background import BackgroundOp  # noqa: E402


pytestmark = pytest.mark.usefixtures("no_threads_left_behind")  # the shared guard in conftest.py


@dataclass(frozen=True)
class Step:
    n: int


@pytest.fixture
def owner(qtbot):
    widget = QWidget()
    qtbot.addWidget(widget)
    return widget


def start(qtbot, owner, work, seen: list) -> BackgroundOp:
    op = BackgroundOp(work, success=lambda r: seen.append(("success", r)), failure=lambda m: seen.append(("failure", m)),
                      progress=lambda e: seen.append(("progress", e, threading.get_ident())),
                      name="snakeid-test-op", parent=owner)
    op.finished.connect(lambda: seen.append(("finished",)))
    op.start()
    return op


def test_progress_arrives_in_order_on_the_gui_thread_then_one_success_then_finished(qtbot, owner):
    gui_thread = threading.get_ident()
    worker_thread = []

    def work(report, cancel):
        worker_thread.append(threading.get_ident())
        for n in range(20):
            report(Step(n))
        return "all done"

    seen: list = []
    with qtbot.waitSignal(start(qtbot, owner, work, seen).finished, timeout=10_000):
        pass
    assert worker_thread and worker_thread[0] != gui_thread
    assert [e[1] for e in seen[:-2]] == [Step(n) for n in range(20)]
    assert {e[2] for e in seen[:-2]} == {gui_thread}
    assert seen[-2:] == [("success", "all done"), ("finished",)]


def test_a_failure_is_the_users_sentence_and_a_bug_is_named_and_logged(qtbot, owner, caplog):
    def no_model(report, cancel):
        raise ModelBundleError("No model is installed.")

    def bug(report, cancel):
        report(Step(1))
        raise ZeroDivisionError("division by zero")

    seen: list = []
    with qtbot.waitSignal(start(qtbot, owner, no_model, seen).finished, timeout=10_000):
        pass
    assert seen == [("failure", "No model is installed."), ("finished",)]
    seen.clear()
    with caplog.at_level(logging.ERROR):
        with qtbot.waitSignal(start(qtbot, owner, bug, seen).finished, timeout=10_000):
            pass
    assert [e[:2] for e in seen] == [("progress", Step(1)), ("failure", "Unexpected error: ZeroDivisionError: division by zero"),
                                     ("finished",)]
    assert any(r.exc_info and r.exc_info[0] is ZeroDivisionError for r in caplog.records)


def test_stop_cancels_and_joins_before_returning(qtbot, owner):
    running = threading.Event()

    def work(report, cancel):
        running.set()
        while not cancel.wait(0.01):
            pass
        return "stopped"

    seen: list = []
    op = start(qtbot, owner, work, seen)
    assert running.wait(10)
    thread = op.qthread
    assert thread.isRunning()
    op.stop()
    assert not thread.isRunning() and op.cancel_event.is_set()
    qtbot.waitUntil(lambda: ("finished",) in seen, timeout=10_000)  # the outcome still arrives, afterwards
    assert seen == [("success", "stopped"), ("finished",)]


def test_the_crash_dialog_says_user_message(qtbot, monkeypatch):
    from snakeid_desktop.gui import app

    shown = []
    monkeypatch.setattr(QMessageBox, "exec", lambda self: shown.append(self.text()) or 0)
    for exc in (ValueError("something odd"), ModelBundleError("No model is installed.")):
        try:
            raise exc
        except Exception:
            app._excepthook(*sys.exc_info())
    assert shown[0].startswith("Unexpected error: ValueError: something odd\n")
    assert shown[1].startswith("No model is installed.\n")
