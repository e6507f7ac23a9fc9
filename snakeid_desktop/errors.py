"""Errors the core raises with a message fit to show a user as it is, and the one vocabulary of error kinds."""

from __future__ import annotations

import logging
from enum import Enum

log = logging.getLogger(__name__)


class ErrorKind(str, Enum):
    """Why one input has no answer: the stable short codes in ``FileResult.error_kind``.

    str-valued, so a kind compares equal to (and serialises as) its plain string:
    ``ErrorKind.TRUNCATED == "truncated"``, and rows written before this enum existed still match.
    """

    # The file could not be read as a picture (raised by ``imageload``: see ``imageload.KINDS``).
    NOT_FOUND = "not_found"
    IS_DIRECTORY = "is_directory"
    PERMISSION_DENIED = "permission_denied"
    EMPTY_FILE = "empty_file"
    NOT_AN_IMAGE = "not_an_image"
    UNSUPPORTED_FORMAT = "unsupported_format"
    TRUNCATED = "truncated"
    CORRUPT = "corrupt"
    TOO_LARGE = "too_large"
    BAD_DIMENSIONS = "bad_dimensions"
    UNREADABLE = "unreadable"
    # Pixels handed over directly (a pasted picture) with no width, height or data.
    EMPTY = "empty"
    # Decoding ran out of memory.
    MEMORY = "memory"
    # A bug or an unforeseen failure while reading or classifying that one input.
    UNEXPECTED = "unexpected"
    # The model gave NaN or infinite scores for this input.
    MODEL_OUTPUT = "model_output"
    # No model is loaded (the app shows the photo and says why there is no answer).
    NO_MODEL = "no_model"

    def __str__(self) -> str:  # the code itself in f-strings and logs, on every Python version
        return self.value


class SnakeIDError(Exception):
    """Base class: ``str(err)`` is one clear sentence for the user."""


class ModelBundleError(SnakeIDError):
    """The model bundle is missing, incomplete, corrupt or of an unknown format."""


class ImageLoadError(SnakeIDError):
    """A file could not be read as an image. ``kind`` is an :class:`ErrorKind`."""

    def __init__(self, message: str, kind: ErrorKind | str = ErrorKind.UNREADABLE):
        super().__init__(message)
        # A code outside the vocabulary is a bug: fail where it is made, not in a consumer's lookup.
        self.kind = ErrorKind(kind)


class ModelOutputError(SnakeIDError):
    """The model gave no usable probabilities (NaN or infinite) for one input: that input's error."""

    kind = ErrorKind.MODEL_OUTPUT


def user_message(exc: BaseException, *, already_logged: bool = False) -> str:
    """The sentence to show for a failure: a :class:`SnakeIDError` says it itself; anything else
    is a bug, named by type (and logged with its traceback unless the caller already did)."""
    if isinstance(exc, SnakeIDError):
        return str(exc)
    if not already_logged:
        log.error("unexpected error", exc_info=exc)
    return f"Unexpected error: {type(exc).__name__}: {exc}"
