"""The species catalogue shipped in ``resources/species.json`` (facts and first-aid text, offline)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from . import paths
from .safety import OTHER_SNAKE, VENOM_STATUSES

# Bounds checked on load; the shipped file aims at 2-4 "look for" points per species.
MAX_IDENTIFY_POINTS = 5


@dataclass(frozen=True)
class LookAlike:
    """A species easily confused with this one, and how to tell them apart from a distance or a photo."""

    name: str  # "Common name (Scientific name)"
    tell_apart: str
    slug: str | None = None  # set only when the look-alike is itself in the catalogue


@dataclass(frozen=True)
class SpeciesInfo:
    slug: str
    scientific_name: str
    common_names: tuple[str, ...]
    venomous: str  # "yes" | "mild" | "no" | "unknown" (unknown counts as venomous)
    medical_significance: str
    first_aid: str
    region: str = ""
    # ISO 3166-1 alpha-2 codes of the countries where the species occurs; empty = unknown range.
    countries: frozenset[str] = frozenset()
    range_note: str = ""
    # Short "look for" points, visible from a safe distance or on a photo.
    identify: tuple[str, ...] = ()
    look_alikes: tuple[LookAlike, ...] = ()
    taught: bool = False  # taught on this computer by its user (venom status as they entered it)

    @property
    def common_name(self) -> str:
        return self.common_names[0] if self.common_names else self.scientific_name


@dataclass(frozen=True)
class Catalogue:
    species: dict[str, SpeciesInfo]
    first_aid_venomous: tuple[str, ...]
    first_aid_harmless: tuple[str, ...]
    disclaimer: str
    range_source: str = ""
    identification_source: str = ""

    def get(self, slug: str) -> SpeciesInfo:
        """The entry for ``slug``; an unknown slug gets a cautious placeholder rather than a crash."""
        info = self.species.get(slug)
        if info is None and slug == OTHER_SNAKE:
            return SpeciesInfo(
                OTHER_SNAKE, "Serpentes", ("A snake SnakeID does not know",), "unknown",
                "Not one of the species SnakeID knows, so nothing is known about its venom: treat it as venomous.", "",
            )
        if info is None:
            name = slug.replace("-", " ").replace("_", " ").capitalize()
            info = SpeciesInfo(slug, name, (name,), "unknown", "No catalogue entry: treat as dangerous.", "")
        return info


def taught_info(species) -> SpeciesInfo:
    """The catalogue entry of a species taught by the user (a :class:`~.species_pack.TaughtSpecies`)."""
    significance = "Taught on this computer by its user; the venom status is as they entered it."
    if species.venomous == "unknown":
        significance += " Its venom is unknown, so treat it as venomous."
    if species.notes:
        significance += f" Their note: {species.notes}"
    return SpeciesInfo(
        slug=species.slug,
        scientific_name=species.scientific_name,
        common_names=(species.common_name,),
        venomous=species.venomous,
        medical_significance=significance,
        first_aid="",
        region="",
        countries=frozenset(species.countries),
        range_note="As entered by the user who taught it." if species.countries else "Range not given: answered everywhere.",
        taught=True,
    )


def _countries(path: Path, entry: dict) -> frozenset[str]:
    """The entry's range as upper-case ISO codes; a code that is not ISO 3166-1 is a data error, not a guess."""
    from .region import official_codes  # lazy: region's annotations name the catalogue

    codes = entry.get("countries", [])
    if not isinstance(codes, list) or not all(isinstance(code, str) for code in codes):
        raise ValueError(f"{path}: {entry['slug']}: countries must be a list of ISO 3166-1 alpha-2 codes")
    unknown = sorted(set(codes) - official_codes())
    if unknown:
        raise ValueError(f"{path}: {entry['slug']}: not ISO 3166-1 alpha-2 codes: {', '.join(unknown)}")
    return frozenset(codes)


def _identify(path: Path, entry: dict) -> tuple[str, ...]:
    """The entry's "look for" points: absent means none, otherwise 1-5 non-empty strings."""
    points = entry.get("identify")
    if points is None:
        return ()
    if (
        not isinstance(points, list)
        or not 1 <= len(points) <= MAX_IDENTIFY_POINTS
        or not all(isinstance(point, str) and point.strip() for point in points)
    ):
        raise ValueError(
            f"{path}: {entry['slug']}: identify must be a list of 1-{MAX_IDENTIFY_POINTS} non-empty strings"
        )
    return tuple(point.strip() for point in points)


_LOOK_ALIKE_KEYS = frozenset({"name", "slug", "tell_apart"})


def _look_alikes(path: Path, entry: dict, slugs: frozenset[str]) -> tuple[LookAlike, ...]:
    """The entry's look-alikes; a slug must name another species of this catalogue."""
    items = entry.get("look_alikes")
    if items is None:
        return ()
    where = f"{path}: {entry['slug']}"
    if not isinstance(items, list):
        raise ValueError(f"{where}: look_alikes must be a list of objects with name and tell_apart")
    result = []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise ValueError(f"{where}: look-alike {number} must be an object with name and tell_apart")
        unknown = sorted(set(item) - _LOOK_ALIKE_KEYS)
        if unknown:
            raise ValueError(f"{where}: look-alike {number} has unknown keys: {', '.join(unknown)}")
        for key in ("name", "tell_apart"):
            value = item.get(key)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{where}: look-alike {number} needs a non-empty {key}")
        slug = item.get("slug")
        if slug is not None:
            if not isinstance(slug, str) or slug not in slugs:
                raise ValueError(f"{where}: look-alike {number} names slug {slug!r}, which is not in the catalogue")
            if slug == entry["slug"]:
                raise ValueError(f"{where}: look-alike {number} is the species itself")
        result.append(LookAlike(name=item["name"].strip(), tell_apart=item["tell_apart"].strip(), slug=slug))
    return tuple(result)


def load_catalogue(path: Path | str | None = None) -> Catalogue:
    path = Path(path) if path is not None else paths.resources_dir() / "species.json"
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    species = {}
    slugs = frozenset(entry["slug"] for entry in data["species"])
    for entry in data["species"]:
        if entry["venomous"] not in VENOM_STATUSES:
            raise ValueError(f"{path}: venomous must be one of {VENOM_STATUSES}, got {entry['venomous']!r}")
        species[entry["slug"]] = SpeciesInfo(
            slug=entry["slug"],
            scientific_name=entry["scientific_name"],
            common_names=tuple(entry["common_names"]),
            venomous=entry["venomous"],
            medical_significance=entry["medical_significance"],
            first_aid=entry.get("first_aid", ""),
            region=entry.get("region", ""),
            countries=_countries(path, entry),
            range_note=entry.get("range_note", ""),
            identify=_identify(path, entry),
            look_alikes=_look_alikes(path, entry, slugs),
        )
    return Catalogue(
        species=species,
        first_aid_venomous=tuple(data["first_aid"]["venomous"]),
        first_aid_harmless=tuple(data["first_aid"]["harmless"]),
        disclaimer=data["disclaimer"],
        range_source=data.get("range_source", ""),
        identification_source=data.get("identification_source", ""),
    )


@lru_cache(maxsize=1)
def default_catalogue() -> Catalogue:
    return load_catalogue()
