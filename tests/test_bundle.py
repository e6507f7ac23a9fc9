import hashlib
import json
import re
import shutil

import pytest
import torch

from snakeid_desktop.bundle import (
    FORMAT_VERSION,
    METADATA_FILE,
    NOT_SNAKE,
    Thresholds,
    load_bundle,
    metadata_sha256,
    write_metadata,
)
from snakeid_desktop.errors import ModelBundleError
from tests.conftest import make_test_bundle


@pytest.fixture
def bundle_copy(test_bundle_dir, tmp_path):
    target = tmp_path / "weights"
    shutil.copytree(test_bundle_dir, target)
    return target


def _meta(directory):
    return json.loads((directory / METADATA_FILE).read_text())


def _write_meta(directory, meta):
    """Write edited metadata with a matching checksum: a coherent bundle whose content is wrong."""
    meta = {**meta, "metadata_sha256": metadata_sha256(meta)}
    (directory / METADATA_FILE).write_text(json.dumps(meta))


def _write_meta_unsigned(directory, meta):
    (directory / METADATA_FILE).write_text(json.dumps(meta))


def test_round_trip_keeps_weights_classes_and_settings(tmp_path):
    directory = make_test_bundle(tmp_path / "b", thresholds=Thresholds(species=0.7, not_snake=0.4, risk=0.05), temperature=1.7)
    bundle = load_bundle(directory)
    assert bundle.classes[-1] == NOT_SNAKE and len(bundle.classes) == 20
    assert bundle.thresholds == Thresholds(species=0.7, not_snake=0.4, risk=0.05)
    assert bundle.temperature == pytest.approx(1.7)
    assert bundle.preprocessing.input_size == 96
    saved = torch.load(directory / _meta(directory)["weights_file"], weights_only=True)
    for key, tensor in bundle.model.state_dict().items():
        assert torch.equal(tensor, saved[key])


def test_missing_folder_says_no_model_is_installed(tmp_path):
    with pytest.raises(ModelBundleError, match="No model is installed"):
        load_bundle(tmp_path / "nowhere")


def test_folder_without_metadata_says_no_model_is_installed(tmp_path):
    with pytest.raises(ModelBundleError, match="No model is installed"):
        load_bundle(tmp_path)


def test_truncated_weights_fail_the_checksum(bundle_copy):
    weights = bundle_copy / _meta(bundle_copy)["weights_file"]
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ModelBundleError, match="damaged or was altered"):
        load_bundle(bundle_copy)


def test_tampered_weights_fail_the_checksum(bundle_copy):
    weights = bundle_copy / _meta(bundle_copy)["weights_file"]
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelBundleError, match="checksum"):
        load_bundle(bundle_copy)


def test_missing_weights_file(bundle_copy):
    (bundle_copy / _meta(bundle_copy)["weights_file"]).unlink()
    with pytest.raises(ModelBundleError, match="weights file .* is missing"):
        load_bundle(bundle_copy)


def test_corrupt_metadata(bundle_copy):
    (bundle_copy / METADATA_FILE).write_text("{not json")
    with pytest.raises(ModelBundleError, match="unreadable or corrupt"):
        load_bundle(bundle_copy)


def test_unknown_format_version(bundle_copy):
    meta = _meta(bundle_copy)
    meta["format_version"] = 99
    _write_meta(bundle_copy, meta)
    with pytest.raises(ModelBundleError, match="format version 99"):
        load_bundle(bundle_copy)


def test_weights_that_do_not_fit_the_class_list(bundle_copy):
    meta = _meta(bundle_copy)
    meta["classes"] = meta["classes"][:4] + [NOT_SNAKE]
    _write_meta(bundle_copy, meta)
    with pytest.raises(ModelBundleError, match="do not fit .*20 outputs for 5 classes"):
        load_bundle(bundle_copy)


def test_pickled_code_in_weights_is_refused(bundle_copy):
    """A weights file whose checksum matches but which carries a pickled object is not executed."""
    import hashlib

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    weights = bundle_copy / _meta(bundle_copy)["weights_file"]
    torch.save({"x": Evil()}, weights)
    meta = _meta(bundle_copy)
    meta["weights_sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    _write_meta(bundle_copy, meta)
    with pytest.raises(ModelBundleError, match="cannot be loaded"):
        load_bundle(bundle_copy)


def test_saved_bundle_files_are_readable_by_everyone(tmp_path):
    directory = make_test_bundle(tmp_path / "b")
    for name in ("model.json", _meta(directory)["weights_file"]):
        assert (directory / name).stat().st_mode & 0o444 == 0o444


# --- the metadata checksum -------------------------------------------------------------


def test_saved_bundle_carries_a_matching_metadata_checksum(test_bundle_dir):
    meta = _meta(test_bundle_dir)
    assert meta["format_version"] == FORMAT_VERSION == 2
    assert meta["metadata_sha256"] == metadata_sha256(meta)


def test_edited_metadata_fails_its_checksum(bundle_copy):
    meta = _meta(bundle_copy)
    meta["thresholds"]["species"] = 0.01  # a plausible hand edit: everything would become "species"
    _write_meta_unsigned(bundle_copy, meta)
    with pytest.raises(ModelBundleError, match="model.json was edited or damaged"):
        load_bundle(bundle_copy)


def test_reformatted_metadata_keeps_its_checksum(bundle_copy):
    meta = _meta(bundle_copy)
    reordered = dict(reversed(list(meta.items())))
    (bundle_copy / METADATA_FILE).write_text(json.dumps(reordered, indent=7))
    assert load_bundle(bundle_copy).metadata == meta


def test_current_format_without_a_checksum_is_refused(bundle_copy):
    meta = _meta(bundle_copy)
    del meta["metadata_sha256"]
    _write_meta_unsigned(bundle_copy, meta)
    with pytest.raises(ModelBundleError, match="lacks a valid 'metadata_sha256'"):
        load_bundle(bundle_copy)


def test_legacy_format_without_a_checksum_loads_with_a_log_line(bundle_copy, caplog):
    meta = _meta(bundle_copy)
    del meta["metadata_sha256"]
    meta["format_version"] = 1
    _write_meta_unsigned(bundle_copy, meta)
    with caplog.at_level("WARNING", logger="snakeid_desktop.bundle"):
        bundle = load_bundle(bundle_copy)
    assert bundle.classes[-1] == NOT_SNAKE
    assert "predates metadata checksums" in caplog.text


def test_legacy_format_with_a_wrong_checksum_is_refused(bundle_copy):
    meta = _meta(bundle_copy)
    meta["format_version"] = 1
    _write_meta_unsigned(bundle_copy, meta)  # the recorded checksum no longer matches
    with pytest.raises(ModelBundleError, match="edited or damaged"):
        load_bundle(bundle_copy)


def test_write_metadata_re_signs_an_edit(bundle_copy):
    meta = _meta(bundle_copy)
    meta["metrics"] = {**meta["metrics"], "app_evaluate": {"top1": 0.5}}
    write_metadata(bundle_copy, meta)
    assert load_bundle(bundle_copy).metrics["app_evaluate"] == {"top1": 0.5}


# --- damaged weights: finite tensors and a finite test pass -------------------------------


def _save_state(directory, state):
    weights = directory / _meta(directory)["weights_file"]
    torch.save(state, weights)
    meta = _meta(directory)
    meta["weights_sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    _write_meta(directory, meta)


def test_nan_weights_are_refused_at_load(bundle_copy):
    state = torch.load(bundle_copy / "model.pt", weights_only=True)
    state["classifier.1.weight"][3, 7] = float("nan")
    _save_state(bundle_copy, state)
    with pytest.raises(ModelBundleError, match=r"The model in .* is damaged: the weights 'classifier.1.weight' hold NaN"):
        load_bundle(bundle_copy)


def test_finite_weights_that_give_nan_scores_are_refused_at_load(bundle_copy):
    state = torch.load(bundle_copy / "model.pt", weights_only=True)
    state["features.0.1.running_var"].fill_(-1.0)  # finite, but sqrt(var + eps) is NaN
    _save_state(bundle_copy, state)
    with pytest.raises(ModelBundleError, match="is damaged: a test pass gives NaN or infinite scores"):
        load_bundle(bundle_copy)


def test_weights_that_are_not_a_table_of_tensors(bundle_copy):
    _save_state(bundle_copy, {"classifier.1.weight": [1.0, 2.0]})
    with pytest.raises(ModelBundleError, match="does not hold a table of tensors"):
        load_bundle(bundle_copy)


# --- metadata validation --------------------------------------------------------------------


def test_nan_in_metadata_is_not_json(bundle_copy):
    text = (bundle_copy / METADATA_FILE).read_text()
    meta = _meta(bundle_copy)
    text = text.replace(f'"temperature": {json.dumps(meta["temperature"])}', '"temperature": NaN')
    assert "NaN" in text
    (bundle_copy / METADATA_FILE).write_text(text)
    with pytest.raises(ModelBundleError, match="unreadable or corrupt .*NaN is not valid JSON"):
        load_bundle(bundle_copy)


def test_deeply_nested_metadata_is_a_clear_error(bundle_copy):
    (bundle_copy / METADATA_FILE).write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ModelBundleError, match="unreadable or corrupt"):
        load_bundle(bundle_copy)


def _set(meta, dotted, value):
    *parents, last = dotted.split(".")
    target = meta
    for key in parents:
        target = target[key]
    if value is DELETE:
        del target[last]
    else:
        target[last] = value


DELETE = object()


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("input_size", "abc", "'input_size' must be a whole number from 32 to 1024"),
        ("input_size", 100_000, "'input_size' must be a whole number"),
        ("input_size", 96.0, "'input_size' must be a whole number"),
        ("input_size", True, "'input_size' must be a whole number"),
        ("resize_size", 50, "'resize_size' must be a whole number from input_size"),
        ("resize_size", 10_000, "'resize_size' must be a whole number"),
        ("thresholds", [], "'thresholds' must be an object"),
        ("thresholds.species", 1.5, "'thresholds.species' must be a number from 0 to 1"),
        ("thresholds.risk", "0.1", "'thresholds.risk' must be a number from 0 to 1"),
        ("thresholds.specie", 0.5, "'thresholds' has unknown keys"),
        ("classes", "abc", "'classes' must be a list of non-empty strings"),
        ("classes", [1, 2], "'classes' must be a list of non-empty strings"),
        ("temperature", 0, "'temperature' must be a number"),
        ("temperature", -1.0, "'temperature' must be a number"),
        ("temperature", 1e-30, "'temperature' must be a number"),
        ("temperature", "warm", "'temperature' must be a number"),
        ("normalization.mean", [0.5, 0.5], "'normalization.mean' must be a list of 3 numbers"),
        ("normalization.std", [0.5, 0.0, 0.5], "'normalization.std' values must be above 0"),
        ("normalization", None, "'normalization' must be an object"),
        ("architecture", ["mobilenet_v2"], "'architecture' is"),
        ("architecture_options.width_mult", 1e6, "'width_mult' must be a number"),
        ("architecture_options.depth", 3, "'architecture_options' has unknown keys"),
        ("weights_file", "../model.pt", "'weights_file' must be a plain file name"),
        ("weights_file", 7, "'weights_file' must be a plain file name"),
        ("weights_sha256", "ABC", "'weights_sha256' must be 64 lower-case hex digits"),
        ("model_version", 1.1, "'model_version' must be a string"),
        ("metrics", [], "'metrics' must be an object"),
        ("metrics.per_class_accuracy", {"a": "high"}, "'metrics.per_class_accuracy' must map"),
        ("input_size", DELETE, "lacks the field 'input_size'"),
    ],
)
def test_invalid_metadata_is_one_clear_sentence(bundle_copy, field, value, message):
    meta = _meta(bundle_copy)
    _set(meta, field, value)
    _write_meta(bundle_copy, meta)
    with pytest.raises(ModelBundleError, match=re.escape(message)) as info:
        load_bundle(bundle_copy)
    text = str(info.value)
    assert text.endswith(".") and "\n" not in text


def test_classes_must_be_unique_and_include_not_snake(bundle_copy):
    meta = _meta(bundle_copy)
    original = list(meta["classes"])
    for classes, message in (
        (original[:-1] + [original[0]], "'classes' has duplicates"),
        (original[:-1] + ["something-else"], "'classes' must hold 'not_snake'"),
    ):
        meta["classes"] = classes
        _write_meta(bundle_copy, meta)
        with pytest.raises(ModelBundleError, match=re.escape(message)):
            load_bundle(bundle_copy)


# --- property: a mutated model.json loads and works, or is one ModelBundleError -------------

from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([0, 1, 2, 31, 32, 96, 110, 1024, 1025, 4096]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, 1e-9, 0.5, 1.0, 1.5]),
    st.text(max_size=8),
    st.sampled_from(["mobilenet_v2", NOT_SNAKE, "model.pt", "../model.pt", ""]),
)
_json_values = st.recursive(
    _scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(max_size=6), children, max_size=4)),
    max_leaves=8,
)


# Every field the app reads, plus a few it does not; nested ones as key paths.
_FIELDS = [
    ("format_version",), ("model_version",), ("architecture",), ("architecture_options",),
    ("architecture_options", "width_mult"), ("input_size",), ("resize_size",), ("normalization",),
    ("normalization", "mean"), ("normalization", "mean", 0), ("normalization", "std"), ("normalization", "std", 2),
    ("classes",), ("classes", 0), ("classes", -1), ("temperature",), ("thresholds",), ("thresholds", "species"),
    ("thresholds", "not_snake"), ("thresholds", "risk"), ("metrics",), ("metrics", "per_class_accuracy"),
    ("metrics", "val_top1"), ("weights_file",), ("weights_sha256",), ("metadata_sha256",), ("unknown_field",),
]


@st.composite
def _mutations(draw):
    steps = []
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(_FIELDS))
        kind = draw(st.sampled_from(["replace", "delete", "nest_list", "nest_dict", "add_key", "perturb"]))
        value = draw(_json_values) if kind != "perturb" else draw(st.sampled_from([0, 0.5, 1.01, 2, -1, 1e-6, 10]))
        steps.append((path, kind, value))
    return steps


def _apply(meta, steps):
    import copy

    meta = copy.deepcopy(meta)
    for path, kind, value in steps:
        parent = meta
        try:
            for key in path[:-1]:
                parent = parent[key]
            key = path[-1]
            old = parent[key] if kind != "replace" else None
        except (KeyError, IndexError, TypeError):
            continue  # an earlier step removed or replaced this path
        if kind == "replace":
            try:
                parent[key] = value
            except (IndexError, TypeError):
                pass
        elif kind == "delete":
            del parent[key]
        elif kind == "nest_list":
            parent[key] = [old]
        elif kind == "nest_dict":
            parent[key] = {"value": old}
        elif kind == "add_key" and isinstance(old, dict):
            old["unexpected"] = value
        elif kind == "perturb" and isinstance(old, (int, float)) and not isinstance(old, bool):
            parent[key] = type(old)(old * value) if isinstance(old, float) else round(old * value)
        else:
            parent[key] = value
    return meta


@pytest.fixture(scope="module")
def pristine_meta(test_bundle_dir):
    return _meta(test_bundle_dir)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_metadata_loads_and_works_or_is_a_model_bundle_error(bundle_copy, pristine_meta, data):
    from PIL import Image

    from snakeid_desktop.predictor import Predictor
    from snakeid_desktop.results import FileResult

    steps = data.draw(_mutations())
    meta = _apply(pristine_meta, steps)
    if data.draw(st.integers(0, 9)) > 0:  # mostly exercise validation, behind a matching checksum
        meta = {**meta, "metadata_sha256": metadata_sha256(meta)}
    _write_meta_unsigned(bundle_copy, meta)
    try:
        bundle = load_bundle(bundle_copy)
    except ModelBundleError as exc:
        text = str(exc)
        event("refused")
        assert text.endswith(".") and "\n" not in text and "Traceback" not in text
        return
    event("loaded")
    predictor = Predictor(bundle, num_threads=1)
    prediction = predictor.predict_images([Image.new("RGB", (120, 90), (80, 140, 60))])[0]
    assert prediction.verdict in ("species", "unsure", "not_snake")
    assert all(0.0 <= c.probability <= 1.0 for c in prediction.top)
    json.dumps(FileResult(path="x", prediction=prediction).to_json(), allow_nan=False)
