"""Build resources/countries.bin and resources/countries.json, the offline data of snakeid_desktop.region.

    python scripts/build_country_data.py WORLD_ATLAS_DIR

Run once by a developer, not by the app or CI; the outputs are committed. Inputs, both from package
registries and both only needed here:

  WORLD_ATLAS_DIR  the unpacked npm package world-atlas@2.0.2 (``npm pack world-atlas@2.0.2``): Natural
                   Earth 4.1.0 admin-0 countries at 1:50m as TopoJSON. Natural Earth is public domain; the
                   TopoJSON conversion is ISC-licensed (notice in countries.json).
  iso3166          the PyPI package iso3166==3.0.0 (MIT, notice in countries.json), for the official
                   ISO 3166-1 alpha-2 codes, their numeric codes (Natural Earth's feature ids) and names.

countries.bin (zlib-compressed, little-endian): b"SNKC1", then the TopoJSON transform as 4 float64
(scale x, scale y, translate x, translate y), then uint32 part count; per part: 2 ASCII bytes of country
code, uint16 ring count, per ring uint32 point count; then every ring's points as int32 (x, y) pairs,
the first absolute and the rest as differences (quantized units, ~400 m x ~190 m).
"""

from __future__ import annotations

import argparse
import json
import struct
import zlib
from pathlib import Path

import iso3166

ROOT = Path(__file__).resolve().parent.parent

# Features Natural Earth gives no ISO numeric id; disputed areas go to the country holding them on the map.
UNNUMBERED = {"Somaliland": "SO", "N. Cyprus": "CY", "Kosovo": "XK", "Indian Ocean Ter.": "AU", "Siachen Glacier": None}

# Natural Earth keeps some territories inside their parent's multipolygon; ISO gives them own codes.
# (code, lon_min, lon_max, lat_min, lat_max) boxes around such parts, by parent's alpha-2.
SPLIT_PARTS = {
    "FR": [("GF", -55, -51, 2, 6.5), ("GP", -62, -60.9, 15.8, 16.6), ("MQ", -61.3, -60.7, 14.3, 15),
           ("RE", 55, 56, -21.5, -20.8), ("YT", 44.9, 45.4, -13.1, -12.5)],
    "NO": [("SJ", 5, 35, 74, 81), ("BV", 3, 4, -55, -54)],
    "Indian Ocean Ter.": [("CX", 105, 106, -11, -10), ("CC", 96, 97.5, -12.5, -11.5)],
}

# Friendlier English short names for the picker than ISO's formal ones (ISO's stay searchable elsewhere).
SHORT_NAMES = {
    "BO": "Bolivia", "BN": "Brunei", "CD": "Congo (Democratic Republic)", "CG": "Congo (Republic)",
    "FM": "Micronesia", "GB": "United Kingdom", "IR": "Iran", "KP": "North Korea", "KR": "South Korea",
    "LA": "Laos", "MD": "Moldova", "PS": "Palestine", "RU": "Russia", "SY": "Syria", "TW": "Taiwan",
    "TZ": "Tanzania", "US": "United States", "VE": "Venezuela", "VN": "Vietnam", "VA": "Vatican City",
    "BQ": "Caribbean Netherlands", "FK": "Falkland Islands", "MF": "Saint Martin (French part)",
    "SX": "Sint Maarten (Dutch part)", "VG": "British Virgin Islands", "VI": "US Virgin Islands",
}

# Region names for region.describe_coverage() ("19 species from the Philippines and southern Africa"),
# in common English usage (broader than the UN's statistical "Southern Africa", as people say it).
REGIONS = {
    "southern Africa": ["AO", "BW", "LS", "MW", "MZ", "NA", "SZ", "ZA", "ZM", "ZW"],
    "eastern Africa": ["BI", "DJ", "ER", "ET", "KE", "RW", "SO", "SS", "TZ", "UG"],
    "eastern and southern Africa": ["AO", "BI", "BW", "DJ", "ER", "ET", "KE", "LS", "MG", "MW", "MZ", "NA",
                                    "RW", "SO", "SS", "SZ", "TZ", "UG", "ZA", "ZM", "ZW"],
    "West Africa": ["BF", "BJ", "CI", "CV", "GH", "GM", "GN", "GW", "LR", "ML", "MR", "NE", "NG", "SL", "SN", "TG"],
    "Central Africa": ["CD", "CF", "CG", "CM", "GA", "GQ", "ST", "TD"],
    "Africa": ["AO", "BF", "BI", "BJ", "BW", "CD", "CF", "CG", "CI", "CM", "CV", "DJ", "DZ", "EG", "EH", "ER",
               "ET", "GA", "GH", "GM", "GN", "GQ", "GW", "KE", "KM", "LR", "LS", "LY", "MA", "MG", "ML", "MR",
               "MU", "MW", "MZ", "NA", "NE", "NG", "RE", "RW", "SC", "SD", "SH", "SL", "SN", "SO", "SS", "ST",
               "SZ", "TD", "TG", "TN", "TZ", "UG", "YT", "ZA", "ZM", "ZW"],
    "Southeast Asia": ["BN", "ID", "KH", "LA", "MM", "MY", "PH", "SG", "TH", "TL", "VN"],
    "South Asia": ["AF", "BD", "BT", "IN", "LK", "MV", "NP", "PK"],
    "East Asia": ["CN", "HK", "JP", "KP", "KR", "MN", "MO", "TW"],
}


def decode_arcs(topology: dict) -> list[list[tuple[int, int]]]:
    arcs = []
    for arc in topology["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x += dx
            y += dy
            points.append((x, y))
        arcs.append(points)
    return arcs


def ring_points(indices: list[int], arcs) -> list[tuple[int, int]]:
    points: list[tuple[int, int]] = []
    for index in indices:
        arc = arcs[index] if index >= 0 else arcs[~index][::-1]
        # Consecutive arcs share their joining point; keep it once.
        points.extend(arc if not points else arc[1:])
    if len(points) > 1 and points[0] == points[-1]:
        points.pop()
    return points


def unwrap_antimeridian(ring: list[tuple[int, int]], full_turn: int) -> list[tuple[int, int]]:
    """Make a ring that runs along the 180th meridian continuous, so a flat ray cast works.

    Natural Earth cuts Russia and Fiji at +-180 deg; their rings then hold edges jumping from -180 to
    +180 across the whole map. Shifting the western points by 360 deg removes the jump (region.py also
    tries lon + 360 for western longitudes). Antarctica's rings go round the pole (one jump): they are
    closed along the pole instead.
    """
    half = full_turn // 2
    jumps = [i for i in range(len(ring)) if abs(ring[i][0] - ring[i - 1][0]) > half]
    if not jumps:
        return ring
    if len(jumps) % 2 == 0:
        return [(x + full_turn if x < half else x, y) for x, y in ring]
    start = jumps[0]  # the jump is the edge ring[start - 1] -> ring[start]; make it the closing edge
    ring = ring[start:] + ring[:start]
    # Only Antarctica goes round a pole in this map; y = 0 is its southern edge (-89.999 deg).
    return ring + [(ring[-1][0], 0), (ring[0][0], 0)]


def part_code(code: str | None, name: str, rings, transform) -> str | None:
    boxes = SPLIT_PARTS.get(code or name)
    if boxes:
        (sx, sy), (tx, ty) = transform["scale"], transform["translate"]
        lon = sum(x for x, _ in rings[0]) / len(rings[0]) * sx + tx
        lat = sum(y for _, y in rings[0]) / len(rings[0]) * sy + ty
        for sub, lon0, lon1, lat0, lat1 in boxes:
            if lon0 <= lon <= lon1 and lat0 <= lat <= lat1:
                return sub
    return code or UNNUMBERED.get(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("world_atlas", type=Path)
    args = parser.parse_args()

    topology = json.loads((args.world_atlas / "countries-50m.json").read_text(encoding="utf-8"))
    transform = topology["transform"]
    arcs = decode_arcs(topology)
    # Quantized units for 360 deg of longitude (99999 for world-atlas 50m: translate -180, exact at +180).
    full_turn = round(360 / transform["scale"][0])
    by_numeric = {c.numeric: c.alpha2 for c in iso3166.countries}

    parts = []
    for geometry in topology["objects"]["countries"]["geometries"]:
        name = geometry["properties"]["name"]
        code = by_numeric[geometry["id"]] if "id" in geometry else None
        polygons = geometry["arcs"] if geometry["type"] == "MultiPolygon" else [geometry["arcs"]]
        for polygon in polygons:
            rings = [unwrap_antimeridian(ring_points(r, arcs), full_turn) for r in polygon]
            rings = [r for r in rings if len(r) >= 3]
            final = part_code(code, name, rings, transform) if rings else None
            if final:
                parts.append((final, rings))

    header = bytearray(b"SNKC1")
    header += struct.pack("<4d", *transform["scale"], *transform["translate"])
    header += struct.pack("<I", len(parts))
    values: list[int] = []
    for code, rings in parts:
        header += code.encode("ascii") + struct.pack("<H", len(rings))
        for ring in rings:
            header += struct.pack("<I", len(ring))
            px, py = 0, 0
            for x, y in ring:
                values += (x - px, y - py)
                px, py = x, y
    payload = bytes(header) + struct.pack(f"<{len(values)}i", *values)
    (ROOT / "resources" / "countries.bin").write_bytes(zlib.compress(payload, 9))

    official = [c for c in iso3166.countries if c.alpha2 != "XK"]
    table = {
        "about": "ISO 3166-1 codes (alpha-2, alpha-3) with English short names; written by scripts/build_country_data.py.",
        "sources": [
            "Codes and names: ISO 3166-1 via the iso3166 3.0.0 package, short names adjusted for the picker. "
            "MIT License, Copyright (c) 2010-2014 Mike Spindel: permission is hereby granted, free of charge, "
            "to deal in the Software without restriction, provided this notice is included; it is provided "
            "'as is', without warranty of any kind.",
            "Borders in countries.bin: Natural Earth 4.1.0 admin-0 countries, 1:50m (public domain), as converted "
            "by world-atlas 2.0.2. ISC License, Copyright 2013-2019 Michael Bostock: permission to use, copy, "
            "modify, and/or distribute for any purpose with or without fee is granted, provided this notice "
            "appears in all copies; provided 'as is' without warranty.",
        ],
        "countries": [[c.alpha2, c.alpha3, SHORT_NAMES.get(c.alpha2, c.apolitical_name)] for c in official],
        "user_assigned": [["XK", "XKX", "Kosovo"]],
        "regions": REGIONS,
    }
    # One country a line: readable diffs when the table is rebuilt.
    head = json.dumps({k: v for k, v in table.items() if k in ("about", "sources")}, ensure_ascii=False, indent=1)
    rows = lambda key: ",\n".join("  " + json.dumps(row, ensure_ascii=False) for row in table[key])
    text = head[:-2] + f',\n "countries": [\n{rows("countries")}\n ],\n "user_assigned": [\n{rows("user_assigned")}\n ],\n'
    text += ' "regions": {\n' + ",\n".join(f"  {json.dumps(k)}: {json.dumps(sorted(v))}" for k, v in REGIONS.items()) + "\n }\n}\n"
    assert json.loads(text) == table
    (ROOT / "resources" / "countries.json").write_text(text, encoding="utf-8")
    print(f"{len(parts)} parts, {len(values) // 2} points, {len(official)} official codes")


if __name__ == "__main__":
    main()
