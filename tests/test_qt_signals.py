"""The Qt binding survives many signal emissions (PySide6 6.12.0 aborted after ~1,000; pyproject pins below it)."""

import subprocess
import sys
import textwrap


def test_many_signal_emits_do_not_crash_the_process():
    code = textwrap.dedent(
        """
        import sys
        from PySide6.QtCore import QObject, Signal

        class Source(QObject):
            changed = Signal(object)

        source, seen = Source(), []
        source.changed.connect(seen.append)
        before = sys.getrefcount(True)
        for i in range(20_000):  # about an hour and a half of the batch dialog's 4 updates a second
            source.changed.emit(i)
        assert len(seen) == 20_000
        assert sys.getrefcount(True) >= before - 100, (before, sys.getrefcount(True))
        print("ok")
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
