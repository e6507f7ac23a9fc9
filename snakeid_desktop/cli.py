"""`snakeid` command line: classify, batch, info, evaluate, teach, species, self-test.

Exit codes: 0 all fine, 1 some files failed, 2 usage or model error.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

from . import __version__
from .errors import SnakeIDError
from .names import for_terminal

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse exits 2 on usage errors already; keep the message short
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _load_predictor(args):
    """The bundled model with the species taught on this computer (none for ``evaluate``, which
    measures the bundled model); a taught species that cannot be used is named on stderr."""
    from .predictor import Predictor

    predictor = Predictor.load(args.weights, top_k=getattr(args, "top", 3))
    if getattr(args, "command", None) != "evaluate":
        from .my_species import attach_taught

        for entry in attach_taught(predictor):
            if entry.problem:
                name = entry.species.common_name if entry.species is not None else entry.path.name
                _say(f"the taught species {name} is not used: {entry.problem}")
    return predictor


def _file_mode(path: str) -> int | None:
    """``st_mode`` of ``path``, or None when it cannot be checked (missing, or inside a folder
    without execute permission): such a path is passed on and the loader reports it."""
    try:
        return os.stat(path).st_mode
    except (OSError, ValueError):  # ValueError: an embedded NUL
        return None


def _is_folder(path: str) -> bool:
    mode = _file_mode(path)
    return mode is not None and stat.S_ISDIR(mode)


def _listable_child(path: str) -> bool:
    """A regular file, or one that cannot be checked (it gets an error row); never a sub-folder
    or a FIFO/device (opening a FIFO would wait forever for a writer)."""
    mode = _file_mode(path)
    return mode is None or stat.S_ISREG(mode)


def expand_inputs(inputs: list[str]) -> Iterator[str]:
    """Files as given; folders expanded (non-recursively: `batch` is for whole trees) to their images.

    Never raises for a bad path: every input file (or image in an input folder) is yielded,
    so each one becomes exactly one result, an error row when it cannot be read.
    """
    from .imageload import is_image_path

    for raw in inputs:
        if not _is_folder(raw):
            yield raw
            continue
        try:
            names = sorted(os.listdir(raw))
        except OSError:
            yield raw  # let the loader report the specific problem
            continue
        children = [os.path.join(raw, n) for n in names if is_image_path(n) and _listable_child(os.path.join(raw, n))]
        if not children:
            _say(f"no images found in folder {raw}")
        yield from children


def _say(message: str) -> None:
    """One line on stderr; control characters in names are escaped so they cannot drive the terminal."""
    print(f"snakeid: {for_terminal(message)}", file=sys.stderr)


def _format_table(results) -> str:
    """Human-readable results in the app's safety wording; every text is passed through :func:`for_terminal`."""
    from .safety import TAUGHT_MARK, VERDICT_HEADLINES, assumption_text, format_percent, venom_words, warning_text

    t = for_terminal
    lines = []
    for r in results:
        lines.append(t(r.path))
        if not r.ok:
            lines.append(f"  ERROR: {t(r.error)}")
            continue
        pred = r.prediction
        if pred.verdict == "species":
            headline = f"{pred.best.common_name} ({pred.best.scientific_name})"
            if pred.best.taught:
                headline += f" [{TAUGHT_MARK}]"
            if pred.shows_harmless:
                headline += " - not venomous"
        else:
            headline = VERDICT_HEADLINES[pred.verdict] + (" - candidates below" if pred.verdict == "unsure" else "")
        lines.append(f"  {t(headline)}")
        warning = warning_text(pred)
        if warning:
            lines.append(f"  !! {t(warning)}")
        lines.append(f"  {t(assumption_text(pred))}")
        for c in pred.top:
            lines.append(f"    {format_percent(c.probability):>9}  {t(c.common_name)} ({t(c.scientific_name)}) - "
                         f"{t(venom_words(c.venomous))}" + (f" [{TAUGHT_MARK}]" if c.taught else ""))
        for w in r.warnings:
            lines.append(f"  warning: {t(w)}")
    return "\n".join(lines)


def _write_utf8(text: str) -> None:
    """Machine-readable output is UTF-8 whatever the locale says (to_json() holds no surrogates)."""
    out = sys.stdout
    buffer = getattr(out, "buffer", None)
    if buffer is None:  # a replaced stdout (tests, embedding): it takes str
        out.write(text)
        return
    out.flush()
    buffer.write(text.encode("utf-8"))
    buffer.flush()


def cmd_classify(args) -> int:
    predictor = _load_predictor(args)
    results = list(predictor.classify_paths(expand_inputs(args.paths), top_k=args.top,
                                                country=getattr(args, "country", "auto")))
    if args.json:
        _write_utf8(json.dumps([r.to_json() for r in results], indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    else:
        print(_format_table(results))
    if not results:
        _say("nothing to classify")
        return EXIT_SOME_FAILED
    return EXIT_OK if all(r.ok for r in results) else EXIT_SOME_FAILED


def cmd_batch(args) -> int:
    from .batch_cli import run_batch_command

    return run_batch_command(args, lambda: _load_predictor(args))


def cmd_info(args) -> int:
    from .bundle import load_bundle

    bundle = load_bundle(args.weights)
    info = {
        "app_version": __version__,
        "model_version": bundle.version,
        "weights_dir": str(bundle.directory),
        "architecture": bundle.metadata.get("architecture"),
        "input_size": bundle.preprocessing.input_size,
        "classes": bundle.classes,
        "temperature": bundle.temperature,
        "thresholds": vars(bundle.thresholds),
        "metrics": bundle.metrics,
    }
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
        return EXIT_OK
    print(f"SnakeID {__version__}; model {info['model_version']} ({info['architecture']}, {info['input_size']} px)")
    print(f"weights: {info['weights_dir']}")
    print(f"classes ({len(bundle.classes)}): {', '.join(bundle.classes)}")
    print(f"calibration temperature: {bundle.temperature:.3f}; thresholds: {info['thresholds']}")
    for key, value in bundle.metrics.items():
        if not isinstance(value, (dict, list)):
            print(f"  {key}: {value}")
    per_class = bundle.per_class_accuracy
    if per_class:
        print("validation accuracy per species:")
        for slug, acc in sorted(per_class.items()):
            print(f"  {slug:32s} {acc * 100:5.1f}%")
    return EXIT_OK


def cmd_evaluate(args) -> int:
    from . import evaluation

    predictor = _load_predictor(args)
    report = evaluation.evaluate_dataset(predictor, Path(args.dataset), Path(args.not_snake) if args.not_snake else None,
                                         country=getattr(args, "country", "any"),
                                         unknown_snakes_dir=getattr(args, "unknown_snakes", None))
    if args.confusion_png:
        evaluation.write_confusion_png(report, Path(args.confusion_png))
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False))
    else:
        print(evaluation.format_report(report))
    return EXIT_OK


def cmd_self_test(args) -> int:
    from .selftest import run_self_test

    summary = run_self_test(args.weights)
    print(json.dumps(summary, indent=2))
    return EXIT_OK if summary["ok"] else EXIT_USAGE


def _country(value: str) -> str:
    from .region import parse_country_option

    try:
        return parse_country_option(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _country_code(value: str) -> str:
    """A two-letter country code (not auto/any): for a taught species' range."""
    code = _country(value)
    if code in ("auto", "any"):
        raise argparse.ArgumentTypeError("a two-letter country code is needed here")
    return code


def _add_country_option(p, default: str = "auto", help_default: str = "auto: the photo's GPS location when present"):
    p.add_argument("--country", type=_country, default=default, metavar="CC|auto|any",
                   help="where the photos were taken: a two-letter country code (a photo's own GPS location wins), "
                        f"auto, or any for no region (default {help_default})")


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="snakeid", description="Identify snake species in photos, offline.")
    parser.add_argument("--version", action="version", version=f"snakeid {__version__}")
    parser.add_argument("--weights", metavar="DIR", help="model bundle folder (default: the bundled model)")
    parser.add_argument("--self-test", action="store_true", help="check the installed model end to end and exit")
    sub = parser.add_subparsers(dest="command", parser_class=_ArgumentParser)

    p = sub.add_parser("classify", help="classify image files or folders")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--top", type=int, default=3, metavar="K", help="candidates to show (default 3)")
    p.add_argument("--json", action="store_true", help="print one JSON array, one object per input")
    _add_country_option(p)
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("batch", help="classify a whole folder, writing CSV (and JSON)")
    p.add_argument("directory", metavar="DIR")
    p.add_argument("--recursive", "-r", action="store_true", help="include sub-folders")
    p.add_argument("--csv", required=True, metavar="OUT.csv", help="CSV file to write, or - for standard output")
    p.add_argument("--json", metavar="OUT.json", help="also a JSON file, or - for standard output")
    p.add_argument("--force", action="store_true",
                   help="replace an existing output even if it is not an earlier SnakeID export")
    p.add_argument("--top", type=int, default=3, metavar="K")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--workers", type=int, default=None, help="decoder threads (default: automatic)")
    p.add_argument("--no-cache", action="store_true", help="ignore and do not store earlier results")
    _add_country_option(p)
    p.set_defaults(func=cmd_batch)

    from . import species_cli

    species_cli.add_parsers(sub, _country_code)

    p = sub.add_parser("info", help="show the model's version, classes and metrics")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("evaluate", help="measure the model on a labelled ImageFolder dataset")
    p.add_argument("dataset", metavar="DATASET_DIR", help="folder with one sub-folder per species slug")
    p.add_argument("--not-snake", metavar="DIR", help="folder (any depth) of photos without snakes")
    p.add_argument("--json", action="store_true")
    p.add_argument("--confusion-png", metavar="PATH", help="also draw the confusion matrix to this PNG")
    p.add_argument("--unknown-snakes", metavar="DIR",
                   help="folder (any depth) of snakes of other species: how many are called 'not a snake' or unwarned")
    _add_country_option(p, default="any", help_default="any: no region, as the model was measured")
    p.set_defaults(func=cmd_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.self_test:
        args.func = cmd_self_test
    elif getattr(args, "func_name", None):
        from . import species_cli

        command = {"teach": species_cli.cmd_teach, "species": species_cli.cmd_species}[args.func_name]
        args.func = lambda a: command(a, _load_predictor)
    elif not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    if getattr(args, "top", 3) < 1:
        parser.error("--top must be at least 1")
    try:
        return args.func(args)
    except SnakeIDError as exc:  # a bundle, a pack or a teaching request refused: one sentence, nothing changed
        _say(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
