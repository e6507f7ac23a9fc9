"""Errors the core raises with a message fit to show a user as it is."""


class SnakeIDError(Exception):
    """Base class: ``str(err)`` is one clear sentence for the user."""


class ModelBundleError(SnakeIDError):
    """The model bundle is missing, incomplete, corrupt or of an unknown format."""


class ImageLoadError(SnakeIDError):
    """A file could not be read as an image. ``kind`` is a stable short code."""

    def __init__(self, message: str, kind: str = "unreadable"):
        super().__init__(message)
        self.kind = kind


class ModelOutputError(SnakeIDError):
    """The model gave no usable probabilities (NaN or infinite) for one input: that input's error."""

    kind = "model_output"
