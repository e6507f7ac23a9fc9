"""Teaching species from the user's photos: the core (teach, store, packs, predictor), no Qt."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import REPO_ROOT, make_test_bundle
from snakeid_desktop.my_species import SpeciesStore, attach_taught
from snakeid_desktop.predictor import Predictor
from snakeid_desktop.species_pack import (PACK_SUFFIX, Pack, SpeciesPackError, read_pack, slug_for, write_pack)
from snakeid_desktop.teach import MIN_PHOTOS, VIEWS_PER_PHOTO, TeachCancelled, TeachError, TeachRequest, teach, views


def striped(path: Path, seed: int, size=(120, 90), colours=((200, 30, 30), (20, 20, 20))) -> Path:
    """A photo of red-black bands (the 'species'), each a little different."""
    image = Image.new("RGB", size, colours[1])
    band = 8 + seed % 5
    for x in range(0, size[0], band * 2):
        image.paste(colours[0], (x + seed % 3, 0, x + band + seed % 3, size[1]))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


@pytest.fixture
def fresh_predictor():
    """The shipped model (a random test network's features carry too little to learn from), a predictor
    of its own: teaching changes a predictor's answer space."""
    return Predictor.load(REPO_ROOT / "weights", num_threads=1)


@pytest.fixture
def photo_folder(tmp_path):
    folder = tmp_path / "my kraits ü"
    paths = [striped(folder / f"IMG_{i:02d}.png", i) for i in range(8)]
    (folder / "notes.txt").write_text("field notes")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (folder / "sub").mkdir()
    (folder / "sub" / "copy of IMG_00.png").write_bytes(paths[0].read_bytes())  # same content: counted once
    return folder


def snapshot(folder: Path) -> dict:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file()}


def request(folder, **changes) -> TeachRequest:
    fields = dict(folders=(folder,), scientific_name="Bungarus testus", common_name="Test krait", venomous="yes")
    fields.update(changes)
    return TeachRequest(**fields)


def test_teach_reports_uses_stores_and_never_touches_the_photos(fresh_predictor, photo_folder):
    before = snapshot(photo_folder)
    store = SpeciesStore()
    stages = []
    reports = teach(fresh_predictor, [request(photo_folder)], store, progress=lambda s, d, n: stages.append(s))
    assert snapshot(photo_folder) == before
    (report,) = reports
    sp = report.species
    assert sp.slug == "taught-bungarus-testus" and sp.photos == 8 and sp.views == VIEWS_PER_PHOTO
    assert report.duplicates == 1
    reasons = {Path(s.path).name: s.reason for s in report.skipped}
    assert set(reasons) == {"notes.txt", "broken.jpg"}
    assert "not a photo" in reasons["notes.txt"]
    assert report.cross_validation.photos == 8 and 0 <= report.cross_validation.correct <= 8
    assert any("Only 8 photos" in w for w in report.warnings)  # fewer than FEW_PHOTOS
    assert "Reading photos" in stages and "Learning from the photos" in stages
    # Only features and hashes are kept, in the data folder, never a copy of a photo.
    files = sorted(p.name for p in store.folder.iterdir())
    assert files == ["taught-bungarus-testus" + PACK_SUFFIX]
    with zipfile.ZipFile(store.folder / files[0]) as zf:
        assert sorted(zf.namelist()) == ["features.pt", "pack.json"]
        assert "IMG_" not in zf.read("pack.json").decode()


def test_a_taught_photo_is_answered_as_the_taught_species(fresh_predictor, photo_folder):
    store = SpeciesStore()
    teach(fresh_predictor, [request(photo_folder, venomous="unknown")], store)
    entries = attach_taught(fresh_predictor, store)
    assert [e.usable for e in entries] == [True]
    assert fresh_predictor.classes[-1] == "taught-bungarus-testus"
    result = next(fresh_predictor.classify_paths([photo_folder / "IMG_03.png"]))
    best = result.prediction.best
    assert best.species == "taught-bungarus-testus" and best.taught and best.venomous == "unknown"
    assert result.to_json()["top"][0]["taught"] is True
    assert all(not c.taught for c in result.prediction.top[1:])
    # Unknown venom counts as venomous, unchanged for taught species.
    if best.probability >= fresh_predictor.bundle.thresholds.risk:
        assert result.prediction.risk


def test_fewer_than_the_minimum_usable_photos_is_refused_and_nothing_is_stored(fresh_predictor, tmp_path):
    folder = tmp_path / "few"
    for i in range(MIN_PHOTOS - 1):
        striped(folder / f"{i}.png", i)
    (folder / "bad.png").write_bytes(b"not a png")
    store = SpeciesStore()
    with pytest.raises(TeachError, match=f"only {MIN_PHOTOS - 1} usable photos.*1 skipped.*at least {MIN_PHOTOS}"):
        teach(fresh_predictor, [request(folder)], store)
    assert store.entries() == []


def test_duplicates_do_not_count_towards_the_minimum(fresh_predictor, tmp_path):
    folder = tmp_path / "dups"
    original = striped(folder / "a.png", 1)
    for i in range(6):
        (folder / f"copy{i}.png").write_bytes(original.read_bytes())
    with pytest.raises(TeachError, match="only 1 usable photo .*6 duplicates"):
        teach(fresh_predictor, [request(folder)], SpeciesStore())


def test_cancel_leaves_everything_as_it_was(fresh_predictor, photo_folder):
    store = SpeciesStore()
    teach(fresh_predictor, [request(photo_folder, scientific_name="Keep me")], store)
    before = {p.name: p.read_bytes() for p in store.folder.iterdir()}
    calls = []

    def cancelled():
        calls.append(1)
        return len(calls) > 5

    with pytest.raises(TeachCancelled):
        teach(fresh_predictor, [request(photo_folder)], store, cancelled=cancelled)
    assert {p.name: p.read_bytes() for p in store.folder.iterdir()} == before


def test_names_that_clash_are_refused(fresh_predictor, photo_folder):
    store = SpeciesStore()
    with pytest.raises(TeachError, match="already knows Bitis arietans"):
        teach(fresh_predictor, [request(photo_folder, scientific_name="bitis  ARIETANS")], store)
    with pytest.raises(TeachError, match="given twice"):
        teach(fresh_predictor, [request(photo_folder), request(photo_folder, common_name="Other")], store)
    teach(fresh_predictor, [request(photo_folder)], store)
    with pytest.raises(TeachError, match="already taught"):
        teach(fresh_predictor, [request(photo_folder)], store)
    (report,) = teach(fresh_predictor, [request(photo_folder, common_name="Renamed krait")], store,
                      replace_existing=True)
    assert [sp.common_name for sp in store.all()] == ["Renamed krait"]


@pytest.mark.parametrize("change, message", [
    ({"scientific_name": "  "}, "scientific name is empty"),
    ({"common_name": "x" * 121}, "longer than 120"),
    ({"venomous": "maybe"}, "venom status must be one of"),
    ({"countries": ("XX",)}, "Not ISO 3166-1"),
    ({"notes": "bell\x07"}, "control characters"),
    ({"folders": ()}, "at least one folder"),
])
def test_bad_requests_get_one_sentence(fresh_predictor, photo_folder, change, message):
    with pytest.raises(TeachError, match=message):
        teach(fresh_predictor, [request(photo_folder, **change)], SpeciesStore())


def test_a_missing_folder_is_one_sentence(fresh_predictor, tmp_path):
    with pytest.raises(TeachError, match="does not exist"):
        teach(fresh_predictor, [request(tmp_path / "nowhere")], SpeciesStore())


def test_several_species_at_once_and_the_rows_are_cached(fresh_predictor, tmp_path, monkeypatch):
    red = [striped(tmp_path / "red" / f"{i}.png", i) for i in range(6)]
    blue = [striped(tmp_path / "blue" / f"{i}.png", i, colours=((30, 60, 220), (240, 240, 240))) for i in range(6)]
    store = SpeciesStore()
    reports = teach(fresh_predictor, [
        request(tmp_path / "red", scientific_name="Rubra one", common_name="Red one"),
        request(tmp_path / "blue", scientific_name="Caerulea two", common_name="Blue one", venomous="no",
                countries=("ph",)),
    ], store)
    assert [r.species.slug for r in reports] == ["taught-rubra-one", "taught-caerulea-two"]
    attach_taught(fresh_predictor, store)
    assert set(fresh_predictor.classes[-2:]) == {"taught-rubra-one", "taught-caerulea-two"}
    # A second start reads the fitted rows from the cache: no fitting.
    from snakeid_desktop import taught_head

    monkeypatch.setattr(taught_head, "fit_rows", lambda *a, **k: pytest.fail("refitted despite the cache"))
    other = Predictor.load(fresh_predictor.bundle.directory, num_threads=1)
    attach_taught(other, store)
    assert other.classes == fresh_predictor.classes
    # Region: a species with countries is in play only there; one without everywhere.
    assert "taught-caerulea-two" in fresh_predictor._species_in("PH", fresh_predictor._space)
    assert "taught-caerulea-two" not in fresh_predictor._species_in("MZ", fresh_predictor._space)
    assert "taught-rubra-one" in fresh_predictor._species_in("MZ", fresh_predictor._space)
    assert red and blue


def test_remove_and_rename(fresh_predictor, photo_folder):
    store = SpeciesStore()
    teach(fresh_predictor, [request(photo_folder)], store)
    assert store.rename("test KRAIT", "Striped krait").common_name == "Striped krait"
    assert store.find("Bungarus testus").species.common_name == "Striped krait"
    with pytest.raises(SpeciesPackError, match="No taught species is called"):
        store.remove("Test krait")
    store.remove("taught-bungarus-testus")
    assert store.entries() == []
    attach_taught(fresh_predictor, store)
    assert fresh_predictor.classes == fresh_predictor.bundle.classes


def test_export_import_round_trip_between_computers(fresh_predictor, photo_folder, tmp_path):
    store = SpeciesStore()
    teach(fresh_predictor, [request(photo_folder, countries=("IN",), notes="Night active.")], store)
    shared = tmp_path / "share" / ("kraits" + PACK_SUFFIX)
    shared.parent.mkdir()
    store.export(shared)
    other = SpeciesStore(tmp_path / "colleague")
    (imported,) = other.import_pack(shared, fresh_predictor)
    (original,) = store.all()
    assert imported.summary() == original.summary()
    assert torch.equal(imported.features, original.features)
    with pytest.raises(SpeciesPackError, match="already taught"):
        other.import_pack(shared, fresh_predictor)
    assert len(other.import_pack(shared, fresh_predictor, replace_existing=True)) == 1


def test_a_pack_for_another_network_is_refused_on_import_and_unused_in_the_store(fresh_predictor, photo_folder,
                                                                                 tmp_path):
    other_bundle = make_test_bundle(tmp_path / "other-model", seed=7)
    other_predictor = Predictor.load(other_bundle, num_threads=1)
    foreign_store = SpeciesStore(tmp_path / "foreign")
    teach(other_predictor, [request(photo_folder)], foreign_store)
    pack_path = next(foreign_store.folder.glob("*" + PACK_SUFFIX))
    store = SpeciesStore()
    with pytest.raises(SpeciesPackError, match="made for SnakeID model test, and this SnakeID has model 2.*different"):
        store.import_pack(pack_path, fresh_predictor)
    assert store.entries() == []
    # Already in the store (e.g. the app's model was updated): listed as not used, never deleted.
    store.folder.mkdir(parents=True)
    (store.folder / pack_path.name).write_bytes(pack_path.read_bytes())
    entries = attach_taught(fresh_predictor, store)
    assert [e.usable for e in entries] == [False] and "teach it again" in entries[0].problem
    assert fresh_predictor.classes == fresh_predictor.bundle.classes
    assert (store.folder / pack_path.name).exists()


def test_a_new_head_on_the_same_network_refits_from_the_stored_features(fresh_predictor, photo_folder, tmp_path):
    store = SpeciesStore()
    teach(fresh_predictor, [request(photo_folder)], store)
    # Model "2.0.1": same network, other thresholds and version (so other metadata and cache key).
    from snakeid_desktop.bundle import update_metadata
    import shutil

    updated = tmp_path / "updated"
    shutil.copytree(fresh_predictor.bundle.directory, updated)
    update_metadata(updated, lambda meta: meta.update(model_version="test-2", thresholds={"species": 0.4}))
    newer = Predictor.load(updated, num_threads=1)
    entries = attach_taught(newer, store)
    assert [e.usable for e in entries] == [True] and newer.classes[-1] == "taught-bungarus-testus"


def test_a_damaged_pack_in_the_store_is_listed_not_fatal(fresh_predictor, photo_folder):
    store = SpeciesStore()
    teach(fresh_predictor, [request(photo_folder)], store)
    (store.folder / ("junk" + PACK_SUFFIX)).write_bytes(b"PK\x03\x04 nonsense")
    entries = attach_taught(fresh_predictor, store)
    assert sorted(e.usable for e in entries) == [False, True]
    assert fresh_predictor.classes[-1] == "taught-bungarus-testus"


# ------------------------------------------------------------------ the pack format under attack


@pytest.fixture(scope="module")
def pack_file(tmp_path_factory, test_bundle_dir):
    predictor = Predictor.load(test_bundle_dir, num_threads=1)
    folder = tmp_path_factory.mktemp("photos")
    for i in range(6):
        striped(folder / f"{i}.png", i)
    store = SpeciesStore(tmp_path_factory.mktemp("store"))
    teach(predictor, [request(folder)], store)
    return next(store.folder.glob("*" + PACK_SUFFIX)).read_bytes()


def _members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


def _resigned(meta: dict) -> bytes:
    from snakeid_desktop.species_pack import _canonical_sha256

    meta = dict(meta)
    meta["metadata_sha256"] = _canonical_sha256(meta)
    return json.dumps(meta).encode()


def test_round_trip_is_exact(pack_file, tmp_path):
    path = tmp_path / ("a" + PACK_SUFFIX)
    path.write_bytes(pack_file)
    pack = read_pack(path)
    again = tmp_path / ("b" + PACK_SUFFIX)
    write_pack(again, Pack(pack.stamp, pack.species, pack.app_version))
    assert again.read_bytes() == pack_file


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_resigned_change_of_a_field_is_refused_or_read_consistently(pack_file, tmp_path, data):
    """Whatever value any field takes (checksum re-signed, so the validation itself is tested), the
    reader answers with a pack or one SpeciesPackError, never another exception."""
    members = _members(pack_file)
    meta = json.loads(members["pack.json"])
    species_keys = sorted(meta["species"][0])
    where = data.draw(st.sampled_from(["top"] * 3 + ["species"] * 5))
    value = data.draw(JSON_VALUES)
    if where == "top":
        meta[data.draw(st.sampled_from(sorted(k for k in meta if k != "metadata_sha256")))] = value
    else:
        meta["species"][0][data.draw(st.sampled_from(species_keys))] = value
    members["pack.json"] = _resigned(meta)
    path = tmp_path / ("m" + PACK_SUFFIX)
    path.write_bytes(_zip(members))
    try:
        pack = read_pack(path)
    except SpeciesPackError as exc:
        assert str(exc).endswith(".") and "\n" not in str(exc)
        return
    sp = pack.species[0]
    assert sp.photos == len(sp.photo_sha256) == sp.features.shape[0]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.integers(min_value=0), byte=st.integers(1, 255))
def test_any_damaged_byte_is_refused_or_harmless(pack_file, tmp_path, position, byte):
    damaged = bytearray(pack_file)
    damaged[position % len(damaged)] ^= byte
    path = tmp_path / ("d" + PACK_SUFFIX)
    path.write_bytes(bytes(damaged))
    try:
        pack = read_pack(path)
    except SpeciesPackError:
        return
    # Only bytes outside the checksummed content (zip bookkeeping such as dates) may change unnoticed.
    original = tmp_path / ("o" + PACK_SUFFIX)
    original.write_bytes(pack_file)
    assert torch.equal(pack.species[0].features, read_pack(original).species[0].features)


def test_code_in_the_features_is_never_run(pack_file, tmp_path):
    class Boom:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    members = _members(pack_file)
    buffer = io.BytesIO()
    torch.save({"probe": Boom()}, buffer)
    members["features.pt"] = buffer.getvalue()
    meta = json.loads(members["pack.json"])
    import hashlib

    meta["features_sha256"] = hashlib.sha256(members["features.pt"]).hexdigest()
    members["pack.json"] = _resigned(meta)
    path = tmp_path / ("evil" + PACK_SUFFIX)
    path.write_bytes(_zip(members))
    with pytest.raises(SpeciesPackError, match="cannot be read as tensors"):
        read_pack(path)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("content, message", [
    (b"", "not a SnakeID species pack"),
    (b"just text", "not a SnakeID species pack"),
    (_zip({"other.txt": b"x"}), "lacks pack.json"),
])
def test_files_that_are_not_packs(tmp_path, content, message):
    path = tmp_path / ("x" + PACK_SUFFIX)
    path.write_bytes(content)
    with pytest.raises(SpeciesPackError, match=message):
        read_pack(path)


def test_a_folder_or_missing_file_is_one_sentence(tmp_path):
    with pytest.raises(SpeciesPackError, match="does not exist"):
        read_pack(tmp_path / "missing.snakeid-species")
    with pytest.raises(SpeciesPackError, match="is a folder"):
        read_pack(tmp_path)


@given(st.text(min_size=1, max_size=60))
def test_slugs_never_clash_with_bundled_classes_and_are_plain(name):
    try:
        slug = slug_for(name)
    except SpeciesPackError:
        return
    assert slug.startswith("taught-") and all(c.isascii() and (c.isalnum() or c == "-") for c in slug)
    assert "--" not in slug and not slug.endswith("-")


@settings(max_examples=60, deadline=None)
@given(width=st.integers(1, 400), height=st.integers(1, 400), seed=st.integers(0, 2**32 - 1))
def test_views_of_any_picture_size(test_bundle_dir, width, height, seed):
    from snakeid_desktop.bundle import load_bundle

    prep = load_bundle(test_bundle_dir).preprocessing
    image = Image.new("RGB", (width, height), (seed % 256, 90, 30))
    out = views(image, prep, seed)
    assert out.shape == (VIEWS_PER_PHOTO, 3, prep.input_size, prep.input_size)
    assert bool(torch.isfinite(out).all())


def test_a_model_without_replay_features_says_so_and_still_answers(tmp_path, photo_folder):
    from snakeid_desktop.errors import ModelBundleError

    bare = Predictor.load(make_test_bundle(tmp_path / "bare", replay=False), num_threads=1)
    with pytest.raises(ModelBundleError, match="has no replay features, so it cannot learn new species"):
        teach(bare, [request(photo_folder)], SpeciesStore())
    # Species taught with this very network earlier (e.g. before the file went missing) are listed, not used.
    with_replay = Predictor.load(make_test_bundle(tmp_path / "with"), num_threads=1)
    store = SpeciesStore()
    teach(with_replay, [request(photo_folder)], store)
    entries = attach_taught(bare, store)
    assert [e.usable for e in entries] == [False] and "no replay features" in entries[0].problem
    assert bare.classes == bare.bundle.classes
    assert next(bare.classify_paths([photo_folder / "IMG_01.png"])).ok


def test_teaching_never_needs_torchs_compiler(tmp_path, photo_folder):
    """The frozen app ships without torch._dynamo (and sympy): torch.optim's optimisers import it, so
    teaching must not use them. Blocked here in a child process, as the frozen app lacks it."""
    import subprocess
    import sys

    code = f"""
import sys
sys.modules["torch._dynamo"] = None  # importing it now fails, as in the frozen app
import os
os.environ["SNAKEID_HOME"] = {str(tmp_path / "home")!r}
from pathlib import Path
from snakeid_desktop.predictor import Predictor
from snakeid_desktop.my_species import SpeciesStore, attach_taught
from snakeid_desktop.teach import TeachRequest, teach
predictor = Predictor.load(Path({str(REPO_ROOT / "weights")!r}), num_threads=1)
store = SpeciesStore()
teach(predictor, [TeachRequest((Path({str(photo_folder)!r}),), "Bungarus testus", "T", "yes")], store)
attach_taught(predictor, store)
assert predictor.classes[-1] == "taught-bungarus-testus"
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_the_same_photos_for_two_species_are_refused(fresh_predictor, photo_folder):
    store = SpeciesStore()
    with pytest.raises(TeachError, match="same photos are given for both Test krait and Other"):
        teach(fresh_predictor, [request(photo_folder),
                                request(photo_folder, scientific_name="Alius species", common_name="Other")], store)
    assert store.entries() == []


def test_the_warning_names_a_taught_candidate_as_taught():
    from snakeid_desktop.results import Candidate, Prediction
    from snakeid_desktop.safety import TAUGHT_MARK, warning_text

    taught = Candidate("taught-x-y", "X y", "Local krait", 0.4, "yes", True)
    bundled = Candidate("naja-sumatrana", "Naja sumatrana", "Equatorial spitting cobra", 0.3, "yes")
    pred = Prediction("unsure", True, (taught, bundled), 0.1, 0.7, risky=(taught, bundled))
    text = warning_text(pred)
    assert f"Local krait (venomous, {TAUGHT_MARK}, 40%)" in text
    assert "Equatorial spitting cobra (venomous, 30%)" in text


def test_attaching_the_same_set_again_keeps_the_answer_space(fresh_predictor, photo_folder):
    store = SpeciesStore()
    teach(fresh_predictor, [request(photo_folder)], store)
    attach_taught(fresh_predictor, store)
    space = fresh_predictor._space
    attach_taught(fresh_predictor, store)
    assert fresh_predictor._space is space
