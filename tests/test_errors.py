"""One vocabulary of error kinds, and one way to turn a failure into the sentence a user sees."""

from __future__ import annotations

import json
import logging

import pytest

from snakeid_desktop import imageload
from snakeid_desktop.errors import (
    ErrorKind,
    ImageLoadError,
    ModelBundleError,
    ModelOutputError,
    user_message,
)


def test_kinds_are_their_plain_strings():
    # Consumers compare with literals and rows are serialised: the enum must be invisible there.
    assert ErrorKind.TRUNCATED == "truncated" and ErrorKind("memory") is ErrorKind.MEMORY
    assert f"{ErrorKind.NO_MODEL}" == str(ErrorKind.NO_MODEL) == "no_model"
    assert json.dumps({"kind": ErrorKind.MODEL_OUTPUT}) == '{"kind": "model_output"}'
    assert "bad_dimensions" in imageload.KINDS and ErrorKind.BAD_DIMENSIONS in imageload.KINDS


def test_the_loaders_kinds_are_part_of_the_vocabulary():
    assert imageload.KINDS < set(ErrorKind)
    # The kinds the loader never raises: memory, bugs, the model, the GUI's own sources.
    assert set(ErrorKind) - imageload.KINDS == {
        ErrorKind.EMPTY, ErrorKind.MEMORY, ErrorKind.UNEXPECTED, ErrorKind.MODEL_OUTPUT, ErrorKind.NO_MODEL}


def test_an_image_error_carries_an_error_kind_and_refuses_an_unknown_one():
    assert ImageLoadError("x.jpg is cut short.", "truncated").kind is ErrorKind.TRUNCATED
    assert ImageLoadError("x.jpg cannot be read.").kind is ErrorKind.UNREADABLE
    assert ModelOutputError("no answer").kind is ErrorKind.MODEL_OUTPUT
    with pytest.raises(ValueError):
        ImageLoadError("typo", "truncatd")


def test_gui_producers_use_the_vocabulary():
    pytest.importorskip("PySide6")
    from snakeid_desktop.gui import inference_worker

    assert ErrorKind(inference_worker.NO_MODEL_KIND) is ErrorKind.NO_MODEL
    with pytest.raises(ImageLoadError) as caught:
        inference_worker._decode(inference_worker.PixelSource(0, 0, b""), 64)
    assert caught.value.kind is ErrorKind.EMPTY


def test_user_message_for_our_errors_is_their_sentence(caplog):
    with caplog.at_level(logging.DEBUG):
        assert user_message(ModelBundleError("No model is installed.")) == "No model is installed."
    assert caplog.records == []  # an expected failure is not a bug report


def test_user_message_for_anything_else_names_it_and_logs_it(caplog):
    try:
        raise ValueError("boom")
    except ValueError as exc:
        raised = exc
        with caplog.at_level(logging.DEBUG):
            assert user_message(exc) == "Unexpected error: ValueError: boom"
    assert len(caplog.records) == 1 and caplog.records[0].exc_info[1] is raised  # with its traceback
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        assert user_message(KeyError("k"), already_logged=True) == "Unexpected error: KeyError: 'k'"
    assert caplog.records == []
