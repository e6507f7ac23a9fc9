"""Start-up steps shared by the two frozen entry scripts (see pyinstaller.spec)."""

import multiprocessing
import warnings


def prepare_frozen_process() -> None:
    # Must come first: a frozen child process started by multiprocessing would otherwise rerun the app.
    multiprocessing.freeze_support()
    # Import-time warnings that only say what the frozen app leaves out on purpose: numpy, and the
    # Python sources of torch (needed only to script TorchScript functions, which the app never does).
    warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
    warnings.filterwarnings("ignore", message=r"Unable to retrieve source for @torch\.jit\._overload")
