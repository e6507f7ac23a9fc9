"""Property-based test of the batch engine's scheduling: every input becomes exactly one row, in order.

The engine's decode and cache steps are replaced by fakes driven by each path's name, so Hypothesis can
try thousands of mixes of cache hits, good, broken, slow and vanished files with random batch sizes,
in-flight limits and decoder counts in seconds. (A run that ended early with rows missing, and still
reported success, is what this test was written for.)
"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snakeid_desktop.batch import BatchEngine, _Decoded
from snakeid_desktop.results import FileResult

KINDS = ("hit", "good", "broken", "slow", "missing")


class FakePredictor:
    """Answers each tensor with the number it carries, so a row can be matched to its own input."""

    top_k = 3
    preprocessing = SimpleNamespace(resize_size=8, input_size=8)

    def __init__(self, fail_batches_over: int | None = None):
        self.fail_batches_over = fail_batches_over
        self.batch_sizes: list[int] = []

    def predict_tensors(self, batch, top_k=None, model=None, places=None):
        self.batch_sizes.append(len(batch))
        if self.fail_batches_over is not None and len(batch) > self.fail_batches_over:
            raise MemoryError("batch too large for this test")
        return [SimpleNamespace(index=int(t[0])) for t in batch]


class ScriptedEngine(BatchEngine):
    """Decodes and cache look-ups follow the kind written in each path: ``<index>-<kind>``."""

    def _decode(self, path: str, cancel: threading.Event) -> _Decoded:
        index, kind = path.split("-")
        result = FileResult(path=path)
        if kind == "slow":
            time.sleep(0.002 * (int(index) % 4))
        if kind in ("broken", "missing"):
            result.error, result.error_kind = f"{path}: {kind}", "unreadable"
            return _Decoded(result)
        return _Decoded(result, torch.full((3,), float(index)))

    def _cached(self, path: str, key):
        index, kind = path.split("-")
        if kind == "hit":
            return FileResult(path=path, prediction=SimpleNamespace(index=int(index))), None
        return None, None


def paths_for(kinds: list[str]) -> list[str]:
    return [f"{i}-{kind}" for i, kind in enumerate(kinds)]


def check_rows(rows: list[FileResult], paths: list[str]) -> None:
    assert [r.path for r in rows] == paths[: len(rows)], "rows out of order or not one per input"
    for row in rows:
        index, kind = row.path.split("-")
        if kind in ("broken", "missing"):
            assert row.error and row.prediction is None
        else:
            assert row.error is None and row.prediction.index == int(index), "a row got another photo's answer"


engine_shapes = st.fixed_dictionaries(
    {
        "batch_size": st.integers(1, 9),
        "max_pending": st.integers(1, 24),
        "decode_workers": st.integers(1, 4),
    }
)
kind_lists = st.lists(st.sampled_from(KINDS), max_size=70)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kinds=kind_lists, shape=engine_shapes)
def test_every_input_becomes_exactly_one_row_in_order(kinds, shape):
    paths = paths_for(kinds)
    predictor = FakePredictor()
    engine = ScriptedEngine(predictor, optimize=False, **shape)
    rows = list(engine.run(iter(paths)))  # an iterator, as a lazy scan would give
    assert len(rows) == len(paths)
    check_rows(rows, paths)
    assert engine.cache_hits == kinds.count("hit")
    assert all(size <= shape["batch_size"] for size in predictor.batch_sizes)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kinds=kind_lists, shape=engine_shapes, stop_after=st.integers(0, 70))
def test_a_cancelled_run_reports_exactly_what_it_did(kinds, shape, stop_after):
    paths = paths_for(kinds)
    cancel = threading.Event()
    engine = ScriptedEngine(FakePredictor(), optimize=False, **shape)
    rows = []
    for row in engine.run(paths, cancel):
        rows.append(row)
        if len(rows) >= stop_after:
            cancel.set()
    # Whatever was handed out before the cancel is complete and correct; nothing is duplicated.
    assert len(rows) <= len(paths)
    check_rows(rows, paths)
    if stop_after >= len(paths):
        assert len(rows) == len(paths)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kinds=kind_lists, shape=engine_shapes, limit=st.integers(0, 3))
def test_a_batch_the_model_cannot_run_is_retried_photo_by_photo(kinds, shape, limit):
    paths = paths_for(kinds)
    predictor = FakePredictor(fail_batches_over=limit)
    rows = list(ScriptedEngine(predictor, optimize=False, **shape).run(paths))
    assert [r.path for r in rows] == paths
    for row in rows:
        index, kind = row.path.split("-")
        if kind in ("good", "slow") and limit == 0:
            assert row.error and "could not classify" in row.error  # even one photo fails: an error row
        elif kind in ("good", "slow", "hit"):
            assert row.prediction.index == int(index)


def test_closing_the_generator_early_stops_the_decoders():
    paths = paths_for(["slow"] * 200)
    engine = ScriptedEngine(FakePredictor(), optimize=False, batch_size=4, decode_workers=3)
    before = {t.name for t in threading.enumerate()}
    run = engine.run(paths)
    next(run)
    run.close()
    leftover = [t for t in threading.enumerate() if t.name.startswith("snakeid-decode") and t.name not in before]
    assert not leftover
