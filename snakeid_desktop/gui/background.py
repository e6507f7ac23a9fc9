"""One shape for work off the GUI thread: an operation with typed progress and per-call callbacks.

In the spirit of Anki's ``QueryOp(op, success, failure)``::

    op = BackgroundOp(work, success=done, failure=show, progress=on_progress, name="snakeid-sort", parent=window)
    op.finished.connect(...)
    op.start()

``work(report, cancel)`` runs on a QThread of its own. It passes progress objects (small frozen
dataclasses the caller defines) to ``report``; they reach ``progress`` on the GUI thread, in order.
It checks ``cancel`` (a ``threading.Event``) when it can and returns a result. Then exactly one of
``success(result)`` or ``failure(message)`` runs on the GUI thread, ``message`` being
:func:`~snakeid_desktop.errors.user_message` of what it raised; ``finished`` follows once the
thread has stopped. Only plain data crosses threads.

:meth:`stop` cancels and joins: a window closing mid-run calls it so Qt never sees a running
QThread destroyed. Callbacks still queued at that moment run when the event loop next turns.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot
from PySide6.QtWidgets import QDialog

from ..errors import user_message

Report = Callable[[Any], None]
Operation = Callable[[Report, threading.Event], Any]


class _Runner(QObject):
    """Lives on the worker thread; its signals are queued to the BackgroundOp on the GUI thread."""

    reported = Signal(object)
    succeeded = Signal(object)
    failed = Signal(str)

    def __init__(self, op: Operation, cancel: threading.Event):
        super().__init__()
        self._op = op
        self._cancel = cancel

    @Slot()
    def run(self) -> None:
        try:
            result = self._op(self.reported.emit, self._cancel)
        except Exception as exc:  # the operation's failure is the user's message, never a dead thread
            self.failed.emit(user_message(exc))
        else:
            self.succeeded.emit(result)
        finally:
            # Called from the worker thread itself (QThread.quit is thread-safe): the thread ends
            # without waiting for the GUI thread's event loop.
            QThread.currentThread().quit()


class BackgroundOp(QObject):
    """One operation on its own thread; see the module docstring. Started once, then discarded."""

    finished = Signal()  # on the GUI thread, after success/failure, once the thread has stopped

    def __init__(
        self,
        op: Operation,
        *,
        success: Callable[[Any], None],
        failure: Callable[[str], None],
        progress: Callable[[Any], None] | None = None,
        name: str = "snakeid-background",
        parent: QObject,
    ):
        # A parent is required: it owns this object, so dropping the last Python reference inside
        # one of our own slots (as an owner's ``finished`` handler does) never deletes it mid-call.
        super().__init__(parent)
        self._success, self._failure, self._progress = success, failure, progress
        self.cancel_event = threading.Event()
        self._thread = QThread()
        self._thread.setObjectName(name)
        self._runner = _Runner(op, self.cancel_event)
        self._runner.moveToThread(self._thread)
        self._thread.started.connect(self._runner.run)
        self._thread.finished.connect(self._runner.deleteLater)
        self._runner.reported.connect(self._on_reported)
        self._runner.succeeded.connect(self._on_succeeded)
        self._runner.failed.connect(self._on_failed)
        self._thread.finished.connect(self._on_thread_finished)

    @property
    def qthread(self) -> QThread:
        return self._thread

    def start(self) -> None:
        self._thread.start()

    def cancel(self) -> None:
        """Ask the operation to stop; it returns (success or failure) as soon as it notices."""
        self.cancel_event.set()

    def stop(self) -> None:
        """Cancel and wait until the thread has ended (the join on close)."""
        self.cancel_event.set()
        self._thread.quit()
        self._thread.wait()

    @Slot(object)
    def _on_reported(self, event: Any) -> None:
        if self._progress is not None:
            self._progress(event)

    @Slot(object)
    def _on_succeeded(self, result: Any) -> None:
        self._success(result)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self._failure(message)

    @Slot()
    def _on_thread_finished(self) -> None:
        self._thread.wait()  # finished is emitted just before the thread really ends
        self._thread.deleteLater()
        self.finished.emit()
        self.deleteLater()


class WorkDialog(QDialog):
    """A dialog whose background work stops however it closes: Esc, Close and the window's close button
    all end in done() or closeEvent(). Subclasses say how in stop_work(); ``_closing`` tells their
    callbacks that the window is going."""

    _closing = False

    def stop_work(self) -> None:
        raise NotImplementedError

    def done(self, result: int) -> None:
        self._shutdown()
        super().done(result)

    def closeEvent(self, event) -> None:
        self._shutdown()
        super().closeEvent(event)

    def _shutdown(self) -> None:
        if self._closing:
            return
        self._closing = True
        self.stop_work()
