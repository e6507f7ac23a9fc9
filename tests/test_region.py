"""snakeid_desktop.region: country table, EXIF GPS, offline point-in-country, candidate filter, --country."""

from __future__ import annotations

import dataclasses
import io
import math
import re
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, TiffImagePlugin

from snakeid_desktop import region
from snakeid_desktop.catalogue import load_catalogue

Rational = TiffImagePlugin.IFDRational


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue()


# --------------------------------------------------------------------------------------------------
# Country table


def test_official_codes_are_the_249_iso_codes():
    codes = region.official_codes()
    assert len(codes) == 249
    assert all(re.fullmatch(r"[A-Z]{2}", code) for code in codes)
    assert {"PH", "MZ", "ZA", "GB", "SS", "SX", "BQ"} <= codes  # recent additions included
    assert not {"UK", "XK", "AN", "YU"} & codes  # not ISO, user-assigned, withdrawn


def test_country_names_for_the_picker():
    names = region.country_names()
    codes = [code for code, _ in names]
    assert len(codes) == len(set(codes)) == 250  # the 249 plus Kosovo, which the map knows
    assert dict(names)["PH"] == "Philippines"
    assert dict(names)["GB"] == "United Kingdom"
    assert dict(names)["XK"] == "Kosovo"
    keys = [region._sort_key(name) for _, name in names]
    assert keys == sorted(keys)
    assert region.country_name("mz") == "Mozambique"
    assert region.country_name("QQ") == "QQ"


# --------------------------------------------------------------------------------------------------
# Point in country


@pytest.mark.parametrize(
    ("lat", "lon", "expected"),
    [
        (14.5995, 120.9842, "PH"),  # Manila
        (-25.9692, 32.5732, "MZ"),  # Maputo
        (-26.2041, 28.0473, "ZA"),  # Johannesburg
        (-17.8292, 31.0522, "ZW"),  # Harare
        (-29.3151, 27.4869, "LS"),  # Maseru: a hole in South Africa's polygon
        (-26.3054, 31.1367, "SZ"),  # Mbabane
        (1.3521, 103.8198, "SG"),  # Singapore, a small country
        (9.7392, 118.7353, "PH"),  # Puerto Princesa, Palawan
        (5.9804, 116.0735, "MY"),  # Kota Kinabalu, Borneo
        (-17.80, 178.0, "FJ"),  # Fiji, next to the 180th meridian
        (65.0, -175.0, "RU"),  # Chukotka, west of the 180th meridian
        (0.0, -150.0, None),  # middle of the Pacific
        (-30.0, -15.0, None),  # South Atlantic
        (12.0, 128.5, None),  # Philippine Sea, ~300 km off Samar
    ],
)
def test_country_at_known_points(lat, lon, expected):
    assert region.country_at(lat, lon) == expected


@pytest.mark.parametrize(
    ("lat", "lon", "expected"),
    [
        (15.76, 121.62, "PH"),  # ~5 km off eastern Luzon (Baler)
        (14.60, 120.28, "PH"),  # ~5 km off Bataan, western Luzon
        (14.55, 120.80, "PH"),  # Manila Bay
        (-26.03, 33.09, "MZ"),  # ~10 km off Inhaca island
        (-29.87, 31.13, "ZA"),  # ~8 km off Durban
    ],
)
def test_coastal_waters_belong_to_the_coastal_country(lat, lon, expected):
    assert region.country_at(lat, lon) == expected
    # The same points without the tolerance are at sea: the tolerance is what answers them.
    assert region.country_at(lat, lon, tolerance_km=0) is None


def test_far_from_the_coast_is_no_country():
    assert region.country_at(15.76, 121.62) == "PH"
    assert region.country_at(15.76, 122.00) is None  # ~45 km off Baler


@pytest.mark.parametrize("bad", [(math.nan, 0.0), (0.0, math.inf), (91.0, 0.0), (0.0, 181.0), ("x", 1.0), (None, 2.0)])
def test_country_at_rejects_impossible_positions(bad):
    assert region.country_at(*bad) is None


def test_lookups_open_no_socket(monkeypatch):
    """Loading the data and answering must work with sockets unusable (stricter than conftest's guard)."""

    def no_socket(*args, **kwargs):
        raise AssertionError("region tried to create a socket")

    monkeypatch.setattr(socket, "socket", no_socket)
    region._map.cache_clear()
    region._table.cache_clear()
    try:
        assert region.country_at(-25.9692, 32.5732) == "MZ"
        assert region.country_names()
        assert region.parse_country_option("ph") == "PH"
    finally:
        region._map.cache_clear()
        region._table.cache_clear()


# --------------------------------------------------------------------------------------------------
# EXIF GPS


def exif_with(gps: dict) -> Image.Exif:
    exif = Image.Exif()
    exif.get_ifd(region.GPS_IFD).update(gps)
    return exif


def manila_gps(changes: dict | None = None) -> dict:
    gps = {1: "N", 2: (Rational(14), Rational(35), Rational(582, 10)), 3: "E", 4: (120.0, 59.0, 3.1)}
    gps.update(changes or {})
    return {tag: value for tag, value in gps.items() if value is not None}


def test_gps_from_exif_reads_degrees_minutes_seconds():
    lat, lon = region.gps_from_exif(exif_with(manila_gps()))
    assert lat == pytest.approx(14 + 35 / 60 + 58.2 / 3600)
    assert lon == pytest.approx(120 + 59 / 60 + 3.1 / 3600)
    lat, lon = region.gps_from_exif(exif_with(manila_gps({1: b"S\x00", 3: "W"})))
    assert lat < 0 and lon < 0


@pytest.mark.parametrize(
    "gps",
    [
        manila_gps({1: None}),  # no latitude reference
        manila_gps({3: "X"}),  # nonsense reference
        manila_gps({2: (Rational(1, 0), 0, 0)}),  # 0/0 rational
        manila_gps({2: (95, 0, 0)}),  # latitude beyond 90
        manila_gps({4: (120, 60, 0)}),  # 60 minutes
        manila_gps({2: (-14, 0, 0)}),  # sign belongs in the reference
        manila_gps({2: "14.6"}),  # text
        manila_gps({2: (1, 2, 3, 4)}),  # too many parts
        {1: "N", 2: (0, 0, 0), 3: "E", 4: (0, 0, 0)},  # cameras write zeros without a fix
        {},
    ],
)
def test_gps_from_exif_refuses_malformed_values(gps):
    assert region.gps_from_exif(exif_with(gps)) is None


def test_gps_from_exif_without_exif_or_with_a_broken_one():
    class Broken:
        def get_ifd(self, tag):
            raise SyntaxError("corrupt IFD")

    assert region.gps_from_exif(None) is None
    assert region.gps_from_exif(Image.Exif()) is None
    assert region.gps_from_exif(Broken()) is None


def test_jpeg_round_trip_gives_the_country(tmp_path, capsys, caplog):
    photo = Image.new("RGB", (16, 16), "green")
    exif = photo.getexif()
    exif.get_ifd(region.GPS_IFD).update({1: "S", 2: (25.0, 58.0, 9.1), 3: "E", 4: (32.0, 34.0, 23.5)})  # Maputo
    path = tmp_path / "snake.jpg"
    photo.save(path, "JPEG", exif=exif)

    with Image.open(path) as reread:
        read_exif = reread.getexif()
    assert region.gps_from_exif(read_exif) == (pytest.approx(-25.9692, abs=1e-4), pytest.approx(32.5732, abs=1e-4))
    assert region.country_of_photo(read_exif) == "MZ"
    # Only the country code comes out: nothing printed or logged on the way.
    assert capsys.readouterr() == ("", "")
    assert caplog.records == []


def test_photo_without_gps_has_no_country():
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "JPEG")
    with Image.open(buffer) as photo:
        assert region.country_of_photo(photo.getexif()) is None


def rational_parts():
    numbers = st.one_of(
        st.integers(-(2**40), 2**40),
        st.floats(allow_nan=True, allow_infinity=True),
        st.builds(Rational, st.integers(-(2**31), 2**31), st.integers(-(2**31), 2**31)),
        st.tuples(st.integers(), st.integers()),
        st.text(max_size=4),
        st.binary(max_size=4),
        st.none(),
    )
    return st.one_of(numbers, st.lists(numbers, max_size=5).map(tuple), st.lists(numbers, max_size=4))


refs = st.one_of(st.sampled_from(["N", "S", "E", "W", "n", "w", b"N", b"E\x00", "", "NE"]), st.text(max_size=3), st.integers(), st.none())


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.dictionaries(st.sampled_from([0, 1, 2, 3, 4, 5, 6]), st.one_of(refs, rational_parts()), max_size=6))
def test_gps_from_exif_never_raises(gps):
    exif = Image.Exif()
    exif.get_ifd(region.GPS_IFD).update(gps)
    result = region.gps_from_exif(exif)
    if result is not None:
        lat, lon = result
        assert -90 <= lat <= 90 and -180 <= lon <= 180
        assert math.isfinite(lat) and math.isfinite(lon)


@settings(max_examples=200, deadline=None)
@given(
    st.floats(0, 89.99), st.floats(0, 179.99), st.sampled_from("NS"), st.sampled_from("EW")
)
def test_gps_from_exif_recovers_well_formed_positions(lat, lon, lat_ref, lon_ref):
    def dms(value):
        degrees = math.floor(value)
        minutes = math.floor((value - degrees) * 60)
        seconds = ((value - degrees) * 60 - minutes) * 60
        return (float(degrees), float(minutes), min(seconds, 59.999999))

    result = region.gps_from_exif(exif_with({1: lat_ref, 2: dms(lat), 3: lon_ref, 4: dms(lon)}))
    if lat == 0 and lon == 0:
        assert result is None
        return
    assert result == (
        pytest.approx(lat * (1 if lat_ref == "N" else -1), abs=1e-6),
        pytest.approx(lon * (1 if lon_ref == "E" else -1), abs=1e-6),
    )


# --------------------------------------------------------------------------------------------------
# Candidate filter and coverage


def test_species_in_filters_by_country(catalogue):
    classes = sorted(catalogue.species) + ["not_snake"]
    mozambique = region.species_in("MZ", classes, catalogue)
    assert mozambique == {
        "bitis-arietans",
        "dendroaspis-polylepis",
        "dispholidus-typus",
        "naja-mossambica",
        "thelotornis-capensis",
    }
    philippines = region.species_in("ph", classes, catalogue)
    assert "naja-philippinensis" in philippines and "naja-mossambica" not in philippines
    assert len(philippines) == 14
    assert region.species_in("US", classes, catalogue) == set()  # outside coverage
    assert region.species_in(None, classes, catalogue) is None  # no filter
    assert region.species_in("MZ", ["naja-mossambica"], catalogue) == {"naja-mossambica"}  # only the model's classes


def test_describe_coverage_comes_from_the_ranges(catalogue):
    assert region.describe_coverage(catalogue) == "19 species from the Philippines and southern Africa"
    asian = {slug: info for slug, info in catalogue.species.items() if "PH" in info.countries}
    only_asian = dataclasses.replace(catalogue, species=asian)
    assert region.describe_coverage(only_asian) == "14 species from the Philippines"
    message = region.outside_coverage_message("US", catalogue)
    assert message == (
        "SnakeID does not know the snakes of the United States: it knows 19 species from the "
        "Philippines and southern Africa. Treat this snake as venomous."
    )


# --------------------------------------------------------------------------------------------------
# --country


@pytest.mark.parametrize(
    ("value", "expected"),
    [("PH", "PH"), ("mz", "MZ"), (" Za ", "ZA"), ("auto", "auto"), ("AUTO", "auto"), ("Any", "any"), ("xk", "XK")],
)
def test_parse_country_option_accepts(value, expected):
    assert region.parse_country_option(value) == expected


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        ("UK", "did you mean GB (United Kingdom)?"),
        ("PHL", "did you mean PH (Philippines)?"),
        ("Mozambique", "did you mean MZ (Mozambique)?"),
        ("Phillipines", "did you mean PH (Philippines)?"),
        ("ZZ", "two-letter ISO 3166 code"),
        ("", "two-letter ISO 3166 code"),
    ],
)
def test_parse_country_option_explains_unknown_codes(value, hint):
    with pytest.raises(ValueError) as error:
        region.parse_country_option(value)
    assert hint in str(error.value)


def one_sentence(text: str) -> bool:
    return "\n" not in text and text[-1] in ".?" and text[0].isupper()


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=12))
def test_parse_country_option_answers_or_explains_in_one_sentence(value):
    try:
        result = region.parse_country_option(value)
    except ValueError as error:
        assert one_sentence(str(error))
    else:
        assert result in region.known_codes() | {"auto", "any"}


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(sorted(region.known_codes())), st.lists(st.booleans(), min_size=2, max_size=2))
def test_every_code_parses_in_any_case(code, upper):
    typed = "".join(c if up else c.lower() for c, up in zip(code, upper))
    assert region.parse_country_option(typed) == code
