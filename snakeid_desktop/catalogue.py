"""The species catalogue shipped in ``resources/species.json`` (facts and first-aid text, offline)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from . import paths
from .safety import VENOM_STATUSES



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

    def get(self, slug: str) -> SpeciesInfo:
        """The entry for ``slug``; an unknown slug gets a cautious placeholder rather than a crash."""
        info = self.species.get(slug)
        if info is None:
            name = slug.replace("-", " ").replace("_", " ").capitalize()
            info = SpeciesInfo(slug, name, (name,), "unknown", "No catalogue entry: treat as dangerous.", "")
        return info


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


def load_catalogue(path: Path | str | None = None) -> Catalogue:
    path = Path(path) if path is not None else paths.resources_dir() / "species.json"
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    species = {}
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
        )
    return Catalogue(
        species=species,
        first_aid_venomous=tuple(data["first_aid"]["venomous"]),
        first_aid_harmless=tuple(data["first_aid"]["harmless"]),
        disclaimer=data["disclaimer"],
        range_source=data.get("range_source", ""),
    )


@lru_cache(maxsize=1)
def default_catalogue() -> Catalogue:
    return load_catalogue()
