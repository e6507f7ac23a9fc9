"""`snakeid teach` and `snakeid species list|remove|rename|export|import`: species taught on this computer.

Exit codes as everywhere: 0 done, 2 refused (bad input, nothing changed), 130 interrupted (nothing changed).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from .names import for_terminal

EXIT_OK, EXIT_USAGE = 0, 2


def _say(message: str) -> None:
    print(f"snakeid: {for_terminal(message)}", file=sys.stderr)


def _percent(correct: int, total: int) -> str:
    from .safety import format_percent

    return format_percent(correct / total) if total else "n/a"


def format_report(report, catalogue) -> str:
    """A teaching report in plain words (every name passed through for_terminal)."""
    from .safety import venom_words
    from .teach import class_label

    t = for_terminal
    sp, cv = report.species, report.cross_validation
    lines = [f"Taught {t(sp.common_name)} ({t(sp.scientific_name)}), {venom_words(sp.venomous)}"
             + (f", in {', '.join(sp.countries)}" if sp.countries else ", range not given (answered everywhere)")]
    lines.append(f"  photos used: {sp.photos}; skipped: {len(report.skipped)}; duplicates counted once: {report.duplicates}")
    for skipped in report.skipped:
        lines.append(f"    skipped {t(skipped.path)}: {t(skipped.reason)}")
    if cv is not None and cv.photos:
        lines.append(f"  expected accuracy: {cv.correct} of {cv.photos} of your photos ({_percent(cv.correct, cv.photos)}) "
                     "were recognised when left out of teaching")
        if cv.confused_with:
            lines.append("  instead they were taken for: " + ", ".join(
                f"{t(class_label(slug, catalogue))} ({count})" for slug, count in cv.confused_with.items()))
    for warning in report.warnings:
        lines.append(f"  warning: {t(warning)}")
    return "\n".join(lines)


class _LiveLine:
    """A progress line on stderr, only when it is a terminal (so logs and pipes stay clean)."""

    def __init__(self):
        self.live = sys.stderr.isatty()

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.live:
            print(f"\r{stage}: {done}/{total}\x1b[K", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.live:
            print("\r\x1b[K", end="", file=sys.stderr, flush=True)


def cmd_teach(args, load_predictor) -> int:
    from .my_species import SpeciesStore, attach_taught
    from .teach import TeachRequest, teach

    request = TeachRequest(tuple(Path(f) for f in args.folders), args.scientific_name, args.common_name,
                           args.venomous, tuple(args.country or ()), args.notes or "")
    predictor = load_predictor(args)
    store = SpeciesStore()
    line = _LiveLine()
    try:
        reports = teach(predictor, [request], store, replace_existing=args.replace, progress=line)
    finally:
        line.close()
    attach_taught(predictor, store)  # fits (and caches) the rows now, so the next classify starts at once
    if args.json:
        print(json.dumps([r.to_json() for r in reports], indent=2, ensure_ascii=False, allow_nan=False))
    else:
        for report in reports:
            print(format_report(report, predictor.catalogue))
            print(f"  took {report.seconds:.1f} s; stored in {for_terminal(str(store.folder))}")
    return EXIT_OK


def _format_list(entries) -> str:
    from .safety import venom_words

    t = for_terminal
    if not entries:
        return "No species taught on this computer yet (snakeid teach FOLDER ...)."
    lines = []
    for e in entries:
        if e.species is None:
            lines.append(f"[not used] {t(e.path.name)}: {t(e.problem)}")
            continue
        sp, cv = e.species, e.species.cross_validation
        accuracy = f"; expected accuracy {_percent(cv.correct, cv.photos)} ({cv.correct}/{cv.photos})" if cv and cv.photos else ""
        status = "ready" if e.usable else "not used"
        lines.append(f"[{status}] {t(sp.common_name)} ({t(sp.scientific_name)}) - {venom_words(sp.venomous)}; "
                     f"{sp.photos} photos{accuracy}; countries: {', '.join(sp.countries) or 'not given'}; "
                     f"taught with model {t(e.stamp.model_version)}")
        if e.problem:
            lines.append(f"    {t(e.problem)}")
    return "\n".join(lines)


def cmd_species(args, load_predictor) -> int:
    from .my_species import SpeciesStore, attach_taught

    store = SpeciesStore()
    action = args.species_command
    if action == "list":
        entries = store.entries(load_predictor(args))
        if args.json:
            print(json.dumps([e.summary() for e in entries], indent=2, ensure_ascii=False, allow_nan=False))
        else:
            print(_format_list(entries))
        return EXIT_OK
    if action == "remove":
        species = store.remove(args.name)
        if species is None:
            print(f"Removed the unreadable file {for_terminal(args.name)}.")
        else:
            print(f"Removed {for_terminal(species.common_name)} ({for_terminal(species.scientific_name)}).")
    elif action == "rename":
        species = store.rename(args.name, args.common_name)
        print(f"{for_terminal(species.scientific_name)} is now called {for_terminal(species.common_name)}.")
    elif action == "export":
        target = Path(args.file)
        if target.exists() and not args.force:
            _say(f"{args.file} exists; choose another name or pass --force to replace it.")
            return EXIT_USAGE
        if target.exists() and not target.is_file():
            _say(f"{args.file} is not a file.")
            return EXIT_USAGE
        exported = store.export(target, args.names or None)
        print(f"Exported {len(exported)} species to {for_terminal(os.fspath(target))}: "
              + ", ".join(for_terminal(sp.common_name) for sp in exported) + ".")
        return EXIT_OK
    elif action == "import":
        predictor = load_predictor(args)
        imported = store.import_pack(args.file, predictor, replace_existing=args.replace)
        print(f"Imported {len(imported)} species: " + ", ".join(
            f"{for_terminal(sp.common_name)} ({for_terminal(sp.scientific_name)})" for sp in imported) + ".")
        attach_taught(predictor, store)
        return EXIT_OK
    return EXIT_OK


def add_parsers(sub, country_type) -> None:
    from .safety import VENOM_STATUSES

    p = sub.add_parser("teach", help="teach a species from a folder of your photos (offline)")
    p.add_argument("folders", nargs="+", metavar="FOLDER", help="folder(s) of photos of this one species (recursive)")
    p.add_argument("--scientific-name", required=True, metavar="S")
    p.add_argument("--common-name", required=True, metavar="C")
    p.add_argument("--venomous", required=True, choices=VENOM_STATUSES,
                   help="yes, mild, no, or unknown (treated as venomous)")
    p.add_argument("--country", action="append", type=country_type, metavar="CC",
                   help="a country where it lives (repeat for several); none: answered everywhere")
    p.add_argument("--notes", metavar="TEXT", help="one line of notes shown with its answers")
    p.add_argument("--replace", action="store_true", help="replace a species of the same scientific name taught before")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func_name="teach")

    p = sub.add_parser("species", help="the species taught on this computer: list, remove, rename, export, import")
    actions = p.add_subparsers(dest="species_command", required=True, parser_class=type(p))
    a = actions.add_parser("list", help="list them, with their status")
    a.add_argument("--json", action="store_true")
    a = actions.add_parser("remove", help="forget one (by scientific, common or slug name)")
    a.add_argument("name")
    a = actions.add_parser("rename", help="change one's common name")
    a.add_argument("name")
    a.add_argument("common_name", metavar="NEW_COMMON_NAME")
    a = actions.add_parser("export", help="write taught species to one file to share")
    a.add_argument("file", metavar="FILE")
    a.add_argument("names", nargs="*", metavar="NAME", help="which (default: all)")
    a.add_argument("--force", action="store_true", help="replace FILE if it exists")
    a = actions.add_parser("import", help="add the species of a shared file")
    a.add_argument("file", metavar="FILE")
    a.add_argument("--replace", action="store_true", help="replace species already taught here")
    p.set_defaults(func_name="species")
