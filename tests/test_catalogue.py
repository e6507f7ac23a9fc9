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


# --- identification notes ("how to tell it apart") -------------------------------------------------

# Wording that would send a frightened reader towards the snake; the notes only describe what can be
# seen from a safe distance or on a photo, so none of it may appear even as a prohibition.
UNSAFE_APPROACH = re.compile(
    r"\b(touch|handl|catch|caught|grab|pick(?:s|ed|ing)? (?:it |them |the snake )?up|hold (?:it|the snake)"
    r"|kill|approach|poke|prod|tease|provok|corner|captur|trap|closer|get close|up close|go near|come near"
    r"|turn (?:it|the snake) over)\w*",
    re.IGNORECASE,
)
# "Common name (Genus species)" or, for a group, "Cat snakes (Boiga species)".
LOOK_ALIKE_NAME = re.compile(r"^[A-Z][^()]*[^ ()] \(([A-Z][a-z]+ [a-z]+)\)$")
MAX_IDENTIFY_CHARS = 110
MAX_TELL_APART_CHARS = 200


def identification_texts(catalogue) -> list[str]:
    texts: list[str] = [catalogue.identification_source]
    for info in catalogue.species.values():
        texts += info.identify
        texts += [text for look in info.look_alikes for text in (look.name, look.tell_apart)]
    return texts


def test_every_species_has_identification_notes(catalogue):
    assert catalogue.identification_source.strip()
    for slug, info in catalogue.species.items():
        assert 2 <= len(info.identify) <= 4, slug
        assert all(point.strip() for point in info.identify), slug
        assert 1 <= len(info.look_alikes) <= 3, slug
        assert all(look.name.strip() and look.tell_apart.strip() for look in info.look_alikes), slug


def test_look_alike_slugs_are_valid_and_match_their_names(catalogue):
    by_scientific_name = {info.scientific_name: slug for slug, info in catalogue.species.items()}
    for slug, info in catalogue.species.items():
        names = [look.name for look in info.look_alikes]
        assert len(names) == len(set(names)), slug
        for look in info.look_alikes:
            match = LOOK_ALIKE_NAME.match(look.name)
            assert match, (slug, look.name)
            scientific = match.group(1)
            # A catalogue species is always linked by slug, and the slug is the one its name says.
            assert look.slug == by_scientific_name.get(scientific), (slug, look.name, look.slug)
            assert look.slug != slug


def test_known_confusions_are_linked(catalogue):
    def links(slug):
        return {look.slug for look in catalogue.get(slug).look_alikes}

    assert "naja-samarensis" in links("naja-philippinensis")
    assert "naja-philippinensis" in links("naja-samarensis")
    assert {"thelotornis-capensis", "dendroaspis-polylepis"} <= links("dispholidus-typus")
    assert "dispholidus-typus" in links("thelotornis-capensis")
    assert "dispholidus-typus" in links("dendroaspis-polylepis")
    assert {"naja-philippinensis", "naja-samarensis"} <= links("coelognathus-erythrurus")
    assert "tropidolaemus-subannulatus" in links("tropidolaemus-philippensis")
    # The banded wolf snake's dangerous look-alikes are kraits, which are outside the catalogue.
    assert any("krait" in look.name.lower() for look in catalogue.get("lycodon-capucinus").look_alikes)


def test_colour_variation_is_flagged_where_it_misleads(catalogue):
    for slug in ("bitis-arietans", "dispholidus-typus", "dendroaspis-polylepis", "calamaria-lumbricoidea"):
        points = " ".join(catalogue.get(slug).identify).lower()
        assert "varies" in points or "not black" in points, slug


def test_identification_notes_are_short(catalogue):
    for slug, info in catalogue.species.items():
        for point in info.identify:
            assert len(point) <= MAX_IDENTIFY_CHARS, (slug, point)
        for look in info.look_alikes:
            assert len(look.tell_apart) <= MAX_TELL_APART_CHARS, (slug, look.name)
            # One sentence: it ends with a full stop and has no sentence break inside.
            assert look.tell_apart.endswith(".") and not re.search(r"[.!?]\s", look.tell_apart), (slug, look.name)


def test_identification_notes_never_send_anyone_towards_the_snake(catalogue):
    offending = [text for text in identification_texts(catalogue) if UNSAFE_APPROACH.search(text)]
    assert offending == []


def test_identification_notes_leave_the_doubt_warning_to_the_app(catalogue):
    offending = [text for text in identification_texts(catalogue) if "in doubt" in text.lower()]
    assert offending == []


@pytest.mark.parametrize(
    ("text", "flagged"),
    [
        ("Touch the tail to see if it moves.", True),
        ("Do not handle it to check the scales.", True),
        ("Pick it up with a stick.", True),
        ("Get close enough to see the pupils.", True),
        ("Approach slowly and look at the head.", True),
        ("Never try to catch or kill it.", True),
        ("Sits still on branches, holding on with its tail.", False),
        ("Often found near houses; a sharp photo may show the pupils.", False),
    ],
)
def test_unsafe_approach_check(text, flagged):
    assert bool(UNSAFE_APPROACH.search(text)) is flagged


def _write_with_first_entry(tmp_path, **fields):
    data = json.loads(CATALOGUE_PATH.read_text(encoding="utf-8"))
    for key, value in fields.items():
        if value is None:
            data["species"][0].pop(key, None)
        else:
            data["species"][0][key] = value
    path = tmp_path / "species.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


GOOD_LOOK = {"name": "Gaboon viper (Bitis gabonica)", "tell_apart": "Bolder pattern."}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"identify": []}, "identify must be a list of 1-5 non-empty strings"),
        ({"identify": "Thick body."}, "identify must be a list"),
        ({"identify": ["Thick body.", "  "]}, "identify must be a list"),
        ({"identify": ["Thick body.", 3]}, "identify must be a list"),
        ({"identify": ["Thick body."] * 6}, "identify must be a list of 1-5"),
        ({"look_alikes": {"name": "Gaboon viper"}}, "look_alikes must be a list"),
        ({"look_alikes": ["Gaboon viper"]}, "look-alike 1 must be an object"),
        ({"look_alikes": [GOOD_LOOK, {"name": "", "tell_apart": "Bolder."}]}, "look-alike 2 needs a non-empty name"),
        ({"look_alikes": [{"name": "Gaboon viper (Bitis gabonica)"}]}, "look-alike 1 needs a non-empty tell_apart"),
        ({"look_alikes": [{**GOOD_LOOK, "tell_apart": " "}]}, "needs a non-empty tell_apart"),
        ({"look_alikes": [{**GOOD_LOOK, "slug": "bitis-gabonica"}]}, "'bitis-gabonica', which is not in the catalogue"),
        ({"look_alikes": [{**GOOD_LOOK, "slug": 7}]}, "not in the catalogue"),
        ({"look_alikes": [{**GOOD_LOOK, "slug": "bitis-arietans"}]}, "look-alike 1 is the species itself"),
        ({"look_alikes": [{**GOOD_LOOK, "tell-apart": "Bolder."}]}, "unknown keys: tell-apart"),
    ],
)
def test_load_catalogue_rejects_malformed_identification(tmp_path, fields, message):
    path = _write_with_first_entry(tmp_path, **fields)
    with pytest.raises(ValueError, match="bitis-arietans") as error:
        load_catalogue(path)
    assert message in str(error.value)


def test_identification_fields_are_optional(tmp_path):
    """An entry without notes loads with none (the shipped file is held to more by the tests above)."""
    path = _write_with_first_entry(tmp_path, identify=None, look_alikes=None)
    info = load_catalogue(path).get("bitis-arietans")
    assert info.identify == () and info.look_alikes == ()
