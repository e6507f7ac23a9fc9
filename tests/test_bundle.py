import json
import shutil

import pytest
import torch

from snakeid_desktop.bundle import METADATA_FILE, NOT_SNAKE, Thresholds, load_bundle
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
    meta["classes"] = meta["classes"][:5]
    _write_meta(bundle_copy, meta)
    with pytest.raises(ModelBundleError, match="do not fit"):
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
