"""The PySide6 desktop app. Everything Qt lives in this package; the core never imports it."""
