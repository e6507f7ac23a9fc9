import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from snakeid_desktop.bundle import NOT_SNAKE, Thresholds
from snakeid_desktop.catalogue import default_catalogue
from snakeid_desktop.predictor import decide
from snakeid_desktop.safety import SEEK_HELP

CATALOGUE = default_catalogue()
HARMLESS = "xenopeltis-unicolor"
VENOMOUS = "naja-philippinensis"
OTHER = "ptyas-carinata"
CLASSES = [HARMLESS, VENOMOUS, OTHER, NOT_SNAKE]
THRESHOLDS = Thresholds(species=0.6, not_snake=0.5, risk=0.1)


def _decide(probs, top_k=3):
    return decide(torch.tensor(probs), CLASSES, CATALOGUE, THRESHOLDS, top_k)


def test_confident_species_is_named_with_catalogue_facts():
    pred = _decide([0.9, 0.04, 0.03, 0.03])
    assert pred.verdict == "species"
    assert pred.best.species == HARMLESS
    assert pred.best.scientific_name == "Xenopeltis unicolor"
    assert pred.best.venomous == "no"
    assert not pred.risk


def test_low_confidence_is_unsure_with_candidates_in_order():
    pred = _decide([0.45, 0.05, 0.40, 0.10])
    assert pred.verdict == "unsure"
    assert [c.species for c in pred.top] == [HARMLESS, OTHER, VENOMOUS]


def test_not_snake_class_wins_above_its_threshold_and_is_never_a_candidate():
    pred = _decide([0.2, 0.02, 0.18, 0.6])
    assert pred.verdict == "not_snake"
    assert NOT_SNAKE not in [c.species for c in pred.top]
    assert pred.not_snake_probability == pytest.approx(0.6)


def test_risk_flag_when_venomous_candidate_is_likely_even_if_top1_is_harmless():
    pred = _decide([0.75, 0.15, 0.05, 0.05])
    assert pred.verdict == "species" and pred.best.venomous == "no"
    assert pred.risk


def test_no_risk_when_venomous_candidate_is_below_threshold():
    assert not _decide([0.85, 0.05, 0.05, 0.05]).risk


def test_warning_is_the_venomous_mass_not_any_single_species():
    # Two cobras each below the threshold, together above it: the warning is on (it was off before).
    cobras = ["naja-philippinensis", "naja-mossambica"]
    classes = [HARMLESS, OTHER, *cobras, NOT_SNAKE]
    pred = decide(torch.tensor([0.40, 0.35, 0.06, 0.06, 0.13]), classes, CATALOGUE, THRESHOLDS, 1)
    assert pred.venom_probability == pytest.approx(0.12)
    assert pred.risk and [c.species for c in pred.risky] == cobras
    assert len(pred.top) == 1  # however few candidates are shown


def test_the_warning_holds_on_every_verdict_including_not_a_snake():
    not_snake = _decide([0.05, 0.15, 0.05, 0.75])
    assert not_snake.verdict == "not_snake" and not_snake.risk
    assert not_snake.first_aid == "venomous"
    calm = _decide([0.02, 0.02, 0.01, 0.95])
    assert calm.verdict == "not_snake" and not calm.risk and calm.first_aid is None


def test_green_harmless_answer_only_without_a_warning():
    harmless = _decide([0.92, 0.02, 0.03, 0.03])
    assert harmless.shows_harmless and harmless.first_aid == "harmless"
    warned = _decide([0.75, 0.15, 0.05, 0.05])
    assert warned.verdict == "species" and not warned.shows_harmless and warned.first_aid == "venomous"
    unsure = _decide([0.45, 0.01, 0.44, 0.10])
    assert unsure.verdict == "unsure" and not unsure.risk and unsure.first_aid == "venomous"


def test_unknown_venom_status_counts_as_venomous():
    from snakeid_desktop.catalogue import Catalogue, SpeciesInfo

    mystery = SpeciesInfo("mystery-snake", "Serpens ignotus", ("Mystery snake",), "unknown", "", "")
    catalogue = Catalogue({**CATALOGUE.species, "mystery-snake": mystery}, (), (), "")
    pred = decide(torch.tensor([0.8, 0.15, 0.05]), [HARMLESS, "mystery-snake", NOT_SNAKE], catalogue, THRESHOLDS)
    assert pred.risk and pred.risky[0].species == "mystery-snake"


def test_region_filter_renormalises_over_the_species_living_there():
    # Philippines: the African cobra is no candidate; the rest is renormalised with not_snake.
    classes = [HARMLESS, "naja-mossambica", VENOMOUS, NOT_SNAKE]
    pred = decide(torch.tensor([0.3, 0.5, 0.1, 0.1]), classes, CATALOGUE, THRESHOLDS, 3,
                  in_play={HARMLESS, VENOMOUS}, country="PH", country_source="gps")
    assert [c.species for c in pred.top] == [HARMLESS, VENOMOUS]
    assert pred.top[0].probability == pytest.approx(0.6) and pred.not_snake_probability == pytest.approx(0.2)
    assert pred.venom_probability == pytest.approx(0.2) and pred.risk
    assert (pred.country, pred.country_source) == ("PH", "gps")


def test_no_known_species_in_the_country_is_outside_coverage_with_the_warning():
    pred = decide(torch.tensor([0.9, 0.05, 0.03, 0.02]), CLASSES, CATALOGUE, THRESHOLDS, in_play=set(), country="IN",
                  country_source="option")
    assert pred.verdict == "outside_coverage" and pred.risk and pred.top == ()
    assert pred.first_aid == "venomous" and not pred.shows_harmless


probability_vectors = st.lists(st.floats(0.0, 1.0), min_size=4, max_size=4).filter(lambda v: sum(v) > 1e-3)


@settings(max_examples=300, deadline=None)
@given(raw=probability_vectors, risk=st.floats(0.0, 0.5), top_k=st.integers(1, 5),
       region=st.sampled_from([None, {HARMLESS}, {HARMLESS, VENOMOUS}, {OTHER}, set()]))
def test_warning_rule_properties(raw, risk, top_k, region):
    probs = torch.tensor(raw) / sum(raw)
    thresholds = Thresholds(species=0.6, not_snake=0.5, risk=risk)
    pred = decide(probs, CLASSES, CATALOGUE, thresholds, top_k, in_play=region)
    if pred.verdict == "outside_coverage":
        assert region == set() and pred.risk
        return
    assert pred.venom_probability is not None and 0.0 <= pred.venom_probability <= 1.0 + 1e-6
    # The warning is exactly "venomous mass reaches the threshold", whatever the verdict or top-k.
    assert pred.risk == (pred.venom_probability >= risk)
    # A named harmless species is only ever shown green without the warning.
    assert not (pred.shows_harmless and pred.risk)
    assert all(c.venomous != "no" for c in pred.risky)
    assert all(c.probability >= 0.01 for c in pred.risky)
    if region is not None:
        assert {c.species for c in pred.top} <= region
    probabilities = [c.probability for c in pred.top]
    assert probabilities == sorted(probabilities, reverse=True)
    if region is not None:
        anywhere = decide(probs, CLASSES, CATALOGUE, thresholds, top_k)
        # A region filter never turns a snake into "not a snake".
        assert not (pred.verdict == "not_snake" and anywhere.verdict != "not_snake")


def test_predictor_batches_match_single_images(predictor):
    images = [Image.new("RGB", (120 + 10 * i, 100), (30 * i, 200 - 20 * i, 90)) for i in range(5)]
    batched = predictor.predict_images(images)
    single = [predictor.predict_images([im])[0] for im in images]
    for a, b in zip(batched, single):
        assert [c.species for c in a.top] == [c.species for c in b.top]
        for ca, cb in zip(a.top, b.top):
            assert ca.probability == pytest.approx(cb.probability, abs=1e-4)


def test_probabilities_are_calibrated_softmax_over_all_classes(predictor):
    probs = predictor.probabilities(torch.randn(3, 3, 96, 96))
    assert probs.shape == (3, len(predictor.bundle.classes))
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(3))


def test_classify_paths_keeps_input_order_and_reports_failures(predictor, tmp_path):
    good = tmp_path / "good.png"
    Image.new("RGB", (128, 128), "green").save(good)
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    paths = [good, bad, tmp_path / "missing.jpg", good]
    results = list(predictor.classify_paths(paths, batch_size=2))
    assert [r.path for r in results] == [str(p) for p in paths]
    assert [r.ok for r in results] == [True, False, False, True]
    assert results[1].error_kind == "not_an_image"
    assert results[2].error_kind == "not_found"
    assert results[0].to_json()["top"] == results[3].to_json()["top"]


def test_throughput_model_gives_the_same_verdicts_as_eager(predictor):
    batch = torch.randn(4, 3, 96, 96)
    fast = predictor.throughput_model()
    assert fast is predictor.throughput_model()  # prepared once
    eager = predictor.predict_tensors(batch)
    traced = predictor.predict_tensors(batch, model=fast)
    for a, b in zip(eager, traced):
        assert [c.species for c in a.top] == [c.species for c in b.top]
        assert a.verdict == b.verdict


def test_throughput_model_falls_back_to_eager_when_tracing_fails(predictor, monkeypatch):
    from snakeid_desktop import predictor as predictor_module

    def broken_trace(*args, **kwargs):
        raise RuntimeError("tracing unavailable")

    monkeypatch.setattr(predictor_module.torch.jit, "trace", broken_trace)
    assert predictor_module._optimize_for_inference(predictor.model, 96) is predictor.model


# --- a non-finite output is that input's error, never a verdict ----------------------------


def _nan_for_first_row(predictor, monkeypatch):
    real = predictor._probabilities

    def probabilities(batch, model, space):
        probs = real(batch, model, space).clone()
        probs[0] = float("nan")
        return probs

    monkeypatch.setattr(predictor, "_probabilities", probabilities)


def test_non_finite_row_is_an_error_for_that_input_only(predictor, monkeypatch):
    real = predictor._probabilities

    def probabilities(batch, model, space):
        probs = real(batch, model, space).clone()
        probs[1, 4] = float("nan")
        probs[2, 0] = float("inf")
        return probs

    monkeypatch.setattr(predictor, "_probabilities", probabilities)
    outcomes = predictor.predict_tensors(torch.zeros(4, 3, 96, 96))
    assert [type(o).__name__ for o in outcomes] == ["Prediction", "ModelOutputError", "ModelOutputError", "Prediction"]
    assert outcomes[1].kind == "model_output" and str(outcomes[1]).endswith(".")


def test_predict_images_raises_rather_than_answer_from_nan(predictor, monkeypatch):
    from snakeid_desktop.errors import ModelOutputError

    _nan_for_first_row(predictor, monkeypatch)
    with pytest.raises(ModelOutputError, match="no valid probabilities"):
        predictor.predict_images([Image.new("RGB", (100, 100), "green")])


def test_classify_paths_reports_a_nan_row_as_an_error_in_valid_json(predictor, tmp_path, monkeypatch):
    import json

    paths = []
    for i in range(3):
        paths.append(tmp_path / f"p{i}.png")
        Image.new("RGB", (110, 100), (40 * i, 120, 60)).save(paths[-1])
    _nan_for_first_row(predictor, monkeypatch)
    results = list(predictor.classify_paths(paths, batch_size=3))
    assert [r.ok for r in results] == [False, True, True]
    assert results[0].error_kind == "model_output" and results[0].prediction is None
    data = json.loads(json.dumps([r.to_json() for r in results], allow_nan=False))
    assert data[0]["status"] == "error" and data[0]["verdict"] is None and not data[0]["risk"]


def test_an_other_snake_answer_is_a_snake_treated_as_venomous():
    from snakeid_desktop.safety import OTHER_SNAKE, warning_text

    classes = [HARMLESS, VENOMOUS, OTHER_SNAKE, NOT_SNAKE]
    pred = decide(torch.tensor([0.05, 0.02, 0.9, 0.03]), classes, CATALOGUE, THRESHOLDS)
    assert pred.verdict == "species" and pred.best.species == OTHER_SNAKE and pred.risk
    assert not pred.shows_harmless and pred.first_aid == "venomous"
    assert warning_text(pred).startswith("A snake SnakeID does not know: its venom is unknown, so treat it as venomous.")
    # In a country none of the known species lives in, it is still outside coverage (warned), never a species.
    far = decide(torch.tensor([0.05, 0.02, 0.9, 0.03]), classes, CATALOGUE, THRESHOLDS, in_play=set(), country="IS")
    assert far.verdict == "outside_coverage" and far.risk


MANY = ["naja-philippinensis", "naja-mossambica", "naja-sumatrana", "bitis-arietans", "dendroaspis-polylepis",
        "xenopeltis-unicolor", "ptyas-carinata", NOT_SNAKE]


@settings(max_examples=300, deadline=None)
@given(raw=st.lists(st.floats(0.0, 1.0), min_size=len(MANY), max_size=len(MANY)).filter(lambda v: sum(v) > 1e-3),
       risk=st.floats(0.0, 0.3))
def test_the_warning_names_the_likeliest_venomous_candidates_of_at_least_one_percent(raw, risk):
    from snakeid_desktop.safety import warning_text

    probs = torch.tensor(raw) / sum(raw)
    pred = decide(probs, MANY, CATALOGUE, Thresholds(species=0.6, not_snake=0.5, risk=risk), 3)
    venomous = sorted(((float(p), c) for p, c in zip(probs, MANY) if c in MANY[:5]), reverse=True)
    expected = [c for p, c in venomous if round(p, 6) >= 0.01][:3] if pred.risk else []
    assert [c.species for c in pred.risky] == expected
    text = warning_text(pred, CATALOGUE)
    assert (text is None) == (not pred.risk)
    if text is not None and "Possible:" in text:  # no candidate named as a possibility it barely is
        assert "under 1%" not in text.split("Possible:", 1)[1]


def test_a_confident_cobra_names_no_negligible_alternatives():
    from snakeid_desktop.safety import warning_text

    probs = torch.tensor([0.985, 0.004, 0.003, 0.002, 0.001, 0.003, 0.001, 0.001])
    pred = decide(probs, MANY, CATALOGUE, THRESHOLDS, 3)
    assert pred.verdict == "species" and pred.risk and [c.species for c in pred.risky] == ["naja-philippinensis"]
    assert warning_text(pred, CATALOGUE) == f"This looks like a venomous snake. {SEEK_HELP}"
