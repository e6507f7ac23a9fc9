"""Offline point-in-country lookups compared: size, start-up, lookup time and answers near coasts.

    python benchmarks/bench_country_lookup.py [--site DIR] [--points N] [--only NAME ...]

Each candidate runs in its own fresh interpreter, so "start" is the honest cost an app pays on
its first lookup (import + loading the data), and "peak MiB" is that process's peak RSS minus a
bare interpreter's. Candidates not importable are reported as skipped. --site adds a folder to
sys.path in the children, for libraries installed only for the comparison, e.g.
``pip install --no-deps --target /tmp/cand/site countrycheck geo-intel-offline offlinerevgeocoder``.

Figures printed per candidate:
  size KiB     bytes on disk of the package folder (code + data) that a frozen app would carry
  start ms     import + first lookup in a fresh process (median of 3 processes)
  lookup us    mean per lookup over N random points (land and sea mixed), after the first
  peak MiB     extra resident memory after loading
  right        how many of the fixed test points (below) get the expected answer

The fixed points include capitals, borders, small island states and points a few km off a coast,
where the app wants the coastal country (a snake photographed at sea is most likely a sea snake
of that country's waters), and open ocean, where it wants no country.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (label, lat, lon, expected ISO alpha-2 or None). Offshore distances are approximate.
POINTS = [
    ("Manila", 14.5995, 120.9842, "PH"),
    ("Maputo", -25.9692, 32.5732, "MZ"),
    ("Johannesburg", -26.2041, 28.0473, "ZA"),
    ("Harare", -17.8292, 31.0522, "ZW"),
    ("Mbabane", -26.3054, 31.1367, "SZ"),
    ("Maseru", -29.3151, 27.4869, "LS"),
    ("Singapore", 1.3521, 103.8198, "SG"),
    ("Puerto Princesa, Palawan", 9.7392, 118.7353, "PH"),
    ("Basco, Batanes", 20.4487, 121.9702, "PH"),
    ("Bongao, Tawi-Tawi", 5.0292, 119.7731, "PH"),
    ("Kota Kinabalu", 5.9804, 116.0735, "MY"),
    ("Moroni, Comoros", -11.7022, 43.2551, "KM"),
    ("Beira", -19.8436, 34.8389, "MZ"),
    ("Musina (2 km S of ZW border)", -22.35, 30.04, "ZA"),
    ("~5 km off E Luzon (Baler)", 15.76, 121.62, "PH"),
    ("~5 km off W Luzon (Bataan)", 14.60, 120.28, "PH"),
    ("~10 km off Inhaca, Mozambique", -26.03, 33.09, "MZ"),
    ("~8 km off Durban", -29.87, 31.13, "ZA"),
    ("Manila Bay", 14.55, 120.80, "PH"),
    ("Mid Pacific", 0.0, -150.0, None),
    ("South Atlantic", -30.0, -15.0, None),
    ("Gulf of Guinea 0,0", 0.0, 0.0, None),
    ("Philippine Sea, ~300 km E of Samar", 12.0, 128.5, None),
    ("Mozambique Channel, mid", -18.0, 40.0, None),
]

CANDIDATES = {
    # name: (import statement run at start, expression giving an ISO2 answer for lat, lon)
    "snakeid.region": ("from snakeid_desktop import region", "region.country_at(lat, lon)"),
    "countrycheck": ("from countrycheck import CountryCheck; cc = CountryCheck()", "cc.check(lon, lat).iso2 or None"),
    "geo-intel-offline": ("from geo_intel_offline import resolve", "resolve(lat, lon).iso2"),
    "offlinerevgeocoder": ("from offlineRevGeocoder import get", "get(lat, lon, city_radius_km=1).country_iso2"),
    "reverse-geocode": ("import reverse_geocode", "reverse_geocode.get((lat, lon))['country_code']"),
}
PACKAGE_DIRS = {
    "snakeid.region": ["snakeid_desktop/region.py", "resources/countries.bin", "resources/countries.json"],
    "countrycheck": ["countrycheck"],
    "geo-intel-offline": ["geo_intel_offline"],
    "offlinerevgeocoder": ["offlineRevGeocoder"],
    "reverse-geocode": ["reverse_geocode", "numpy", "numpy.libs", "scipy", "scipy.libs"],
}

CHILD = r"""
import json, os, random, resource, sys, time
sys.path[:0] = json.loads(os.environ["BENCH_PATH"])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
exec(os.environ["BENCH_IMPORT"])
expr = compile(os.environ["BENCH_EXPR"], "<lookup>", "eval")
def ask(lat, lon):
    try:
        code = eval(expr)
    except Exception as exc:
        return "error: " + type(exc).__name__
    return code if code and code != "-99" else None
ask(14.6, 121.0)
start = time.perf_counter() - t0
peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
answers = [ask(lat, lon) for lat, lon in json.loads(os.environ["BENCH_POINTS"])]
rng = random.Random(1)
pts = [(rng.uniform(-60, 75), rng.uniform(-180, 180)) for _ in range(int(os.environ["BENCH_N"]))]
t1 = time.perf_counter()
for lat, lon in pts:
    ask(lat, lon)
per = (time.perf_counter() - t1) / len(pts) * 1e6
print(json.dumps({"start": start, "per": per, "peak": peak, "answers": answers}))
"""


def folder_size(paths: list[Path]) -> int:
    total = 0
    for path in paths:
        if path.is_file():
            total += path.stat().st_size
        elif path.is_dir():
            total += sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return total


def locate(name: str, search: list[str]) -> list[Path]:
    found = []
    for rel in PACKAGE_DIRS[name]:
        for base in [str(ROOT), *search]:
            if (Path(base) / rel).exists():
                found.append(Path(base) / rel)
                break
    return found


def run_child(name: str, search: list[str], n: int) -> dict | None:
    env = dict(os.environ)
    env.update(
        BENCH_PATH=json.dumps([str(ROOT), *search]),
        BENCH_IMPORT=CANDIDATES[name][0],
        BENCH_EXPR=CANDIDATES[name][1],
        BENCH_POINTS=json.dumps([(lat, lon) for _, lat, lon, _ in POINTS]),
        BENCH_N=str(n),
    )
    proc = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        print(f"{name}: skipped ({last})")
        return None
    return json.loads(proc.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", action="append", default=[], help="extra sys.path folder for the children")
    parser.add_argument("--points", type=int, default=2000, help="random points for the lookup timing")
    parser.add_argument("--only", nargs="*", choices=sorted(CANDIDATES), help="run only these candidates")
    args = parser.parse_args()

    rows = {}
    for name in args.only or CANDIDATES:
        runs = [run_child(name, args.site, args.points if i == 0 else 10) for i in range(3)]
        if runs[0] is None:
            continue
        rows[name] = dict(runs[0], start=statistics.median(r["start"] for r in runs if r))
        rows[name]["size"] = folder_size(locate(name, args.site))

    print(f"\n{'candidate':<20}{'size KiB':>10}{'start ms':>10}{'lookup us':>11}{'peak MiB':>10}{'right':>8}")
    for name, row in rows.items():
        right = sum(a == p[3] for a, p in zip(row["answers"], POINTS))
        print(
            f"{name:<20}{row['size'] / 1024:>10.0f}{row['start'] * 1000:>10.0f}{row['per']:>11.1f}"
            f"{row['peak']:>10.1f}{right:>5}/{len(POINTS)}"
        )
    print("\nanswers that differ from the expected country (expected -> got):")
    for i, (label, _, _, want) in enumerate(POINTS):
        wrong = {name: row["answers"][i] for name, row in rows.items() if row["answers"][i] != want}
        if wrong:
            print(f"  {label:<36} {want!s:>5} -> " + ", ".join(f"{n}: {a}" for n, a in wrong.items()))


if __name__ == "__main__":
    random.seed(0)
    time.perf_counter()
    main()
