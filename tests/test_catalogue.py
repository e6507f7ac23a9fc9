"""The shipped species catalogue: complete for the trained species, and its first-aid text is safe."""

from __future__ import annotations

import csv
import json
import re

import pytest

from snakeid_desktop import paths
from snakeid_desktop.catalogue import VENOM_STATUSES, load_catalogue

CATALOGUE_PATH = paths.resources_dir() / "species.json"
# Training metadata next to the checkout (../shared); the comparison is skipped where it is absent.
SPECIES_CSV = paths.install_root().parent / "shared" / "data" / "snakes" / "species.csv"

# Harmful folk remedies; a sentence may mention them only to forbid them.
FORBIDDEN_REMEDY = re.compile(r"\b(tourniquet|suck|cut|ice|electric|alcohol)\w*", re.IGNORECASE)
NEGATED_START = re.compile(r"^(do not|don't|never|avoid|no)\b", re.IGNORECASE)


def sentences(text: str) -> list[str]:
    """Sentences and semicolon clauses, so a forbidden word after ';' needs its own negation."""
    return [part.strip() for part in re.split(r"(?<=[.!?;])\s+", text) if part.strip()]


def unsafe_sentences(text: str) -> list[str]:
    """Sentences naming a forbidden remedy without starting with a prohibition."""
    return [s for s in sentences(text) if FORBIDDEN_REMEDY.search(s) and not NEGATED_START.match(s)]


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue(CATALOGUE_PATH)


@pytest.fixture(scope="module")
def raw_entries():
    return json.loads(CATALOGUE_PATH.read_text(encoding="utf-8"))["species"]


def test_slugs_are_unique(raw_entries):
    slugs = [entry["slug"] for entry in raw_entries]
    assert len(slugs) == len(set(slugs)) == 19


@pytest.mark.skipif(not SPECIES_CSV.is_file(), reason="shared training data not present")
def test_matches_training_species_and_venom_status(catalogue):
    with SPECIES_CSV.open(encoding="utf-8", newline="") as handle:
        expected = {row["species_slug"]: row["venomous"] for row in csv.DictReader(handle)}
    actual = {slug: info.venomous for slug, info in catalogue.species.items()}
    assert actual == expected


def test_every_entry_is_filled_in(catalogue):
    for slug, info in catalogue.species.items():
        assert info.venomous in VENOM_STATUSES, slug
        assert info.scientific_name.strip(), slug
        assert info.common_names and all(name.strip() for name in info.common_names), slug
        assert info.medical_significance.strip(), slug
        assert info.region.strip(), slug


def test_venomous_species_have_specific_advice(catalogue):
    dangerous = [info for info in catalogue.species.values() if info.venomous != "no"]
    assert dangerous
    for info in dangerous:
        assert info.first_aid.strip(), info.slug


def test_spitting_cobras_mention_rinsing_eyes(catalogue):
    for slug in ("naja-mossambica", "naja-sumatrana"):
        advice = catalogue.get(slug).first_aid.lower()
        assert "eye" in advice and "water" in advice, slug


def test_general_first_aid_covers_the_essentials(catalogue):
    venomous = " ".join(catalogue.first_aid_venomous).lower()
    for point in ("emergency", "hospital", "still", "rings", "splint", "time", "eyes", "breathing", "swelling"):
        assert point in venomous, point
    harmless = " ".join(catalogue.first_aid_harmless).lower()
    for point in ("soap", "tetanus", "venomous"):
        assert point in harmless, point
    assert catalogue.disclaimer.strip()


def test_forbidden_remedies_only_appear_as_prohibitions(catalogue):
    texts = [*catalogue.first_aid_venomous, *catalogue.first_aid_harmless, catalogue.disclaimer]
    for info in catalogue.species.values():
        texts += [info.first_aid, info.medical_significance]
    offending = [s for text in texts for s in unsafe_sentences(text)]
    assert offending == []
    # The prohibitions are actually there, not just absent.
    venomous = " ".join(catalogue.first_aid_venomous).lower()
    for remedy in ("tourniquet", "suck", "cut", "ice", "electric", "alcohol"):
        assert remedy in venomous, remedy


@pytest.mark.parametrize(
    ("text", "flagged"),
    [
        ("Apply a tourniquet above the bite.", True),
        ("Keep calm. Cut the wound to drain it.", True),
        ("Never try to catch it; put ice on the bite.", True),
        ("Do not cut the wound or suck out venom.", False),
        ("Don't use ice. Never apply a tourniquet.", False),
        ("Take off rings and watches; notice the time.", False),
    ],
)
def test_unsafe_sentence_check(text, flagged):
    assert bool(unsafe_sentences(text)) is flagged


# --- species ranges --------------------------------------------------------------------------------


def test_every_species_has_a_valid_range(catalogue):
    from snakeid_desktop.region import official_codes

    codes = official_codes()
    assert len(codes) == 249
    for slug, info in catalogue.species.items():
        assert info.countries, slug
        assert info.countries <= codes, slug
    assert catalogue.range_source.strip()


def test_ranges_hold_known_facts(catalogue):
    for slug in ("naja-philippinensis", "naja-samarensis", "dendrelaphis-marenae", "trimeresurus-flavomaculatus"):
        assert catalogue.get(slug).countries == {"PH"}, slug
    assert {"MZ", "ZA", "ZW", "BW", "NA", "ZM", "MW", "TZ", "SZ"} <= catalogue.get("naja-mossambica").countries
    assert {"PH", "MY", "ID", "SG"} <= catalogue.get("naja-sumatrana").countries
    assert {"SA", "YE"} <= catalogue.get("bitis-arietans").countries  # the Arabian population
    assert "PH" not in catalogue.get("bitis-arietans").countries


@pytest.mark.skipif(not SPECIES_CSV.is_file(), reason="shared training data not present")
def test_training_photos_come_from_inside_the_range(catalogue):
    """Each species' range includes where its training photos were taken (MozSnake: MZ; else PH)."""
    with SPECIES_CSV.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        where = "MZ" if "Mozambique" in row["region_of_source_images"] else "PH"
        assert where in catalogue.get(row["species_slug"]).countries, row["species_slug"]


@pytest.mark.parametrize("bad", [["UK"], ["ph"], "PH", [12]])
def test_load_catalogue_rejects_codes_that_are_not_iso(tmp_path, raw_entries, bad):
    data = json.loads(CATALOGUE_PATH.read_text(encoding="utf-8"))
    data["species"][0]["countries"] = bad
    path = tmp_path / "species.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match="bitis-arietans"):
        load_catalogue(path)
