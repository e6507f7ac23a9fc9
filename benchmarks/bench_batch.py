"""Batch engine throughput and memory on 12 MP JPEGs (a benchmark script, not a test).

Makes ``--distinct`` 12 MP JPEGs by upscaling validation photos from ../shared/data/snakes/val
into a temporary folder (deleted afterwards, never in the repo), hard-links them up to ``--n``
distinct paths, and runs :class:`BatchEngine` over them with the real bundle in ``weights/``
when present (else a random bundle of the same size: width 1.0, 224 px, so compute is
realistic). Prints steady-state photos/s, peak RSS and RSS over time.

    .venv/bin/python benchmarks/bench_batch.py                 # 10,000 photos, default settings
    .venv/bin/python benchmarks/bench_batch.py --sweep --n 600 # compare decoder counts
    .venv/bin/python benchmarks/bench_batch.py --table-rows 100000  # the batch window's table

Targets (issue 5): >= 50 photos/s steady state on 2 cores; RSS flat and <= 700 MB.
Note the machine's other load (printed from /proc/loadavg): it moves these figures a lot,
and the CPU time per photo too (cache contention). Memory depends on the torch build: a CUDA
wheel's ``import torch`` alone is ~510 MB RSS here, the CPU-only build the app ships ~210 MB;
run this script with that build's interpreter to see the app's figures.
"""

from __future__ import annotations

import argparse
import atexit
import os
import random
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

VAL_DIR = REPO.parent / "shared" / "data" / "snakes" / "val"
SIZE_12MP = (4000, 3000)


def proc_status_mb(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def make_photos(folder: Path, distinct: int, total: int, seed: int = 0) -> list[Path]:
    from PIL import Image, ImageOps

    sources = sorted(p for p in VAL_DIR.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not sources:
        raise SystemExit(f"No photos under {VAL_DIR}; this benchmark needs ../shared/data.")
    random.Random(seed).shuffle(sources)
    originals = []
    t0 = time.perf_counter()
    for i, src in enumerate(sources[:distinct]):
        with Image.open(src) as im:
            im = ImageOps.exif_transpose(im).convert("RGB")
            # Landscape or portrait like a camera, always 12 MP.
            size = SIZE_12MP if im.width >= im.height else SIZE_12MP[::-1]
            big = im.resize(size, Image.Resampling.BICUBIC)
        out = folder / "distinct" / f"src_{i:04d}.jpg"
        out.parent.mkdir(parents=True, exist_ok=True)
        big.save(out, quality=90)
        originals.append(out)
    print(f"made {len(originals)} distinct 12 MP JPEGs in {time.perf_counter() - t0:.1f} s "
          f"(mean {sum(p.stat().st_size for p in originals) / len(originals) / 1e6:.1f} MB each)")
    paths = []
    links = folder / "run"
    links.mkdir()
    for i in range(total):
        link = links / f"photo_{i:06d}.jpg"
        os.link(originals[i % len(originals)], link)
        paths.append(link)
    return paths


def load_predictor(torch_threads: int | None):
    from snakeid_desktop.errors import ModelBundleError
    from snakeid_desktop.predictor import Predictor

    try:
        predictor = Predictor.load(REPO / "weights", num_threads=torch_threads)
        print(f"model: real bundle weights/ (version {predictor.bundle.version})")
    except ModelBundleError as exc:
        from tests.conftest import make_test_bundle

        bundle_dir = Path(tempfile.mkdtemp(prefix="snakeid-bench-bundle-"))
        atexit.register(shutil.rmtree, bundle_dir, ignore_errors=True)
        make_test_bundle(bundle_dir, width_mult=1.0, input_size=224)
        predictor = Predictor.load(bundle_dir, num_threads=torch_threads)
        print(f"model: random width-1.0 224 px stand-in ({exc})")
    predictor.warm_up()
    return predictor


def run_once(predictor, paths, workers, batch_size, sample_every_s=1.0, quiet=False):
    from snakeid_desktop.batch import BatchEngine

    engine = BatchEngine(predictor, batch_size=batch_size, decode_workers=workers)
    samples = []  # (seconds, done, rss_mb)
    done = 0
    stop = threading.Event()
    t0 = time.perf_counter()

    def sampler():
        while not stop.wait(sample_every_s):
            samples.append((time.perf_counter() - t0, done, proc_status_mb("VmRSS")))

    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    cpu0 = cpu_seconds()
    errors = 0
    for result in engine.run(paths):
        done += 1
        errors += not result.ok
    elapsed = time.perf_counter() - t0
    cpu_ms_per_photo = (cpu_seconds() - cpu0) * 1000 / max(1, len(paths))
    stop.set()
    thread.join()
    # Steady state: skip the first 10 % (pool start, first batches, page cache warming).
    steady = [s for s in samples if s[1] >= len(paths) * 0.1]
    if len(steady) >= 2:
        rate = (steady[-1][1] - steady[0][1]) / (steady[-1][0] - steady[0][0])
    else:
        rate = len(paths) / elapsed
    if not quiet:
        print(f"  {len(paths)} photos in {elapsed:.1f} s, errors {errors}")
    return rate, elapsed, samples, errors, cpu_ms_per_photo


def bench_table(rows: int, chunk: int = 500) -> None:
    """The batch window's table with ``rows`` synthetic results: append, filter and sort times."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication, QHeaderView, QTableView

    from snakeid_desktop.gui.batch_model import COL_PROBABILITY, COL_SPECIES, BatchResultsModel
    from snakeid_desktop.results import Candidate, FileResult, Prediction

    app = QApplication.instance() or QApplication([])
    rng = random.Random(0)
    species = [Candidate(f"species-{i}", f"Species {i}", f"Snake {i}", 0.0, ("yes", "no", "mild")[i % 3])
               for i in range(19)]

    def result(i: int) -> FileResult:
        if i % 97 == 0:
            return FileResult(f"/photos/trip/IMG_{i:06d}.jpg", error="damaged", error_kind="corrupt")
        p = rng.random()
        c = species[i % 19]
        best = Candidate(c.species, c.scientific_name, c.common_name, p, c.venomous)
        verdict = "species" if p > 0.6 else ("unsure" if p > 0.2 else "not_snake")
        return FileResult(f"/photos/trip/IMG_{i:06d}.jpg", Prediction(verdict, p > 0.8, (best,), 1 - p))

    results = [result(i) for i in range(rows)]
    model = BatchResultsModel()
    view = QTableView()
    view.setModel(model)
    view.verticalHeader().setVisible(False)  # as in the dialog
    view.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
    view.setSortingEnabled(True)
    view.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
    view.resize(1000, 700)
    view.show()
    worst, t0 = 0.0, time.perf_counter()
    for start in range(0, rows, chunk):
        t = time.perf_counter()
        model.append_results(results[start:start + chunk])
        app.processEvents()
        worst = max(worst, time.perf_counter() - t)
    print(f"table: {rows} rows appended in chunks of {chunk} (with repaint) in {time.perf_counter() - t0:.1f} s; "
          f"slowest chunk {worst * 1000:.0f} ms")
    for label, action in (
        ("sort by confidence", lambda: view.sortByColumn(COL_PROBABILITY, Qt.SortOrder.DescendingOrder)),
        ("sort by species", lambda: view.sortByColumn(COL_SPECIES, Qt.SortOrder.AscendingOrder)),
        ("filter confidence >= 50 %", lambda: model.set_min_probability(0.5)),
        ("filter verdict = unsure", lambda: model.set_verdict("unsure")),
        ("clear filters", lambda: (model.set_verdict(None), model.set_min_probability(0))),
    ):
        t = time.perf_counter()
        action()
        app.processEvents()
        print(f"table: {label}: {(time.perf_counter() - t) * 1000:.0f} ms ({model.rowCount()} rows shown)")
    view.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000, help="photos (paths) to classify")
    parser.add_argument("--distinct", type=int, default=200, help="distinct JPEG files behind those paths")
    parser.add_argument("--workers", type=int, default=None, help="decoder threads (default: engine's choice)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--torch-threads", type=int, default=None, help="default: runtime.default_threads()")
    parser.add_argument("--sweep", action="store_true", help="try 1, 2, 3 decoder threads (and torch 1/2)")
    parser.add_argument("--folder", help="reuse/keep generated photos here instead of a temporary folder")
    parser.add_argument("--table-rows", type=int, metavar="N",
                        help="instead: time the batch window's table with N synthetic rows (e.g. 100000)")
    args = parser.parse_args()
    if args.table_rows:
        print(f"loadavg before {loadavg()}")
        bench_table(args.table_rows)
        return

    import torch

    from snakeid_desktop.batch import default_decode_workers

    print(f"cpu cores {os.cpu_count()}, loadavg before {loadavg()}, torch {torch.__version__}")
    # A CUDA build of torch maps far more library pages than the CPU-only build the app ships.
    print(f"RSS after importing torch: {proc_status_mb('VmRSS'):.0f} MB "
          f"(anonymous {proc_status_mb('RssAnon'):.0f} MB, file-backed {proc_status_mb('RssFile'):.0f} MB)")
    keep = args.folder is not None
    folder = Path(args.folder) if keep else Path(tempfile.mkdtemp(prefix="snakeid-bench-batch-"))
    try:
        run_dir = folder / "run"
        if keep and run_dir.is_dir() and len(list(run_dir.iterdir())) >= args.n:
            paths = sorted(run_dir.iterdir())[: args.n]
            print(f"reusing {len(paths)} photos in {folder}")
        else:
            if keep and folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True, exist_ok=True)
            paths = make_photos(folder, args.distinct, args.n)
        print(f"RSS after making photos: {proc_status_mb('VmRSS'):.0f} MB")

        if args.sweep:
            for torch_threads in (1, 2):
                predictor = load_predictor(torch_threads)
                for workers in (1, 2, 3):
                    rate, elapsed, _, _, cpu_ms = run_once(predictor, paths, workers, args.batch_size, quiet=True)
                    print(f"torch threads {torch_threads}, decoders {workers}: {rate:5.1f} photos/s steady "
                          f"({elapsed:.1f} s total), CPU {cpu_ms:.1f} ms/photo, loadavg {loadavg()}")
            return

        predictor = load_predictor(args.torch_threads)
        workers = args.workers or default_decode_workers()
        print(f"decoders {workers}, torch threads {torch.get_num_threads()}, batch {args.batch_size}")
        rss_start = proc_status_mb("VmRSS")
        rate, elapsed, samples, errors, cpu_ms = run_once(predictor, paths, workers, args.batch_size)
        print(f"steady state: {rate:.1f} photos/s (overall {len(paths) / elapsed:.1f}/s)")
        # Load-independent view: CPU time per photo bounds what an otherwise idle machine could do.
        cores = os.cpu_count() or 1
        print(f"CPU time {cpu_ms:.1f} ms/photo (decode + preprocess + inference, all threads): "
              f"at most {cores * 1000 / cpu_ms:.0f} photos/s with all {cores} cores to this process")
        print(f"RSS: start {rss_start:.0f} MB, end {proc_status_mb('VmRSS'):.0f} MB, "
              f"peak (VmHWM) {proc_status_mb('VmHWM'):.0f} MB; at the end anonymous {proc_status_mb('RssAnon'):.0f} MB"
              f" + file-backed (shared libraries) {proc_status_mb('RssFile'):.0f} MB")
        print("RSS over time (seconds, photos done, MB):")
        step = max(1, len(samples) // 20)
        for t, done, rss in samples[::step] + samples[-1:]:
            print(f"  {t:7.1f} s  {done:6d}  {rss:6.0f} MB")
        if len(samples) > 4:
            first_half = [s[2] for s in samples[len(samples) // 10: len(samples) // 2]]
            second_half = [s[2] for s in samples[len(samples) // 2:]]
            print(f"RSS max first half {max(first_half):.0f} MB vs second half {max(second_half):.0f} MB")
        print(f"loadavg after {loadavg()}")
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
