"""Smoke test of the frozen app (dist/SnakeID/), run the way a user without Python would run it.

    python3 scripts/smoke_frozen.py            # build if dist/SnakeID is missing, then test
    python3 scripts/smoke_frozen.py --build    # rebuild first (make dist)
    python3 scripts/smoke_frozen.py --json-out figures.json

Every run of the app happens in a clean environment: PATH without any virtual environment, HOME, the
XDG folders, TMPDIR and the working directory in a fresh temporary folder, and (Linux) inside a new
network namespace with no interface but loopback (`unshare`). It checks:

- the bundle: both executables, the bundled model, nothing that must not ship (CUDA, torchvision, numpy,
  unused Qt modules), and (Linux) that every Qt/torch library a bundled binary links to is in the bundle;
- `snakeid --self-test` prints a JSON summary with ok=true and exits 0;
- `snakeid classify --json` on photos written by this script (BMP always, HEIC when pillow-heif is
  importable here) classifies them, and `snakeid batch` writes its CSV and JSON for their folder;
- `snakeid teach` learns a species from six generated pictures (only reading them), after which
  `classify --json` names it with `"taught": true` and `species list --json` shows it ready;
- `snakeid-desktop --smoke-quit` under QT_QPA_PLATFORM=offscreen shows its window, loads the model and
  exits 0, reporting seconds from launch to window shown and to model ready;
- (Linux, strace available) the app never attempts an internet connection;
- no file is created, changed or removed anywhere in HOME, TMPDIR, XDG_RUNTIME_DIR, the working folder,
  the photos' folder or the app folder, except inside SnakeID's platformdirs folders (and the two files
  `batch` was asked to write).

Then it prints the figures: onedir size, compressed archive size, start-up times, against the targets.
Exit status: 0 when every check passed (targets missed are reported, not failures), 1 otherwise.
This script uses only the standard library, so any Python 3.10+ can run it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IS_LINUX = sys.platform.startswith("linux")
IS_WINDOWS = sys.platform.startswith("win")
EXE_SUFFIX = ".exe" if IS_WINDOWS else ""

TARGETS = {"onedir_mb": 600, "archive_mb": 250, "window_shown_s": 1.5, "model_ready_s": 3.0}

# Nothing of these may ship: they are GBs (CUDA), training-only, Qt modules the app never uses, test
# programs, or TLS (an offline app has no use for OpenSSL).
FORBIDDEN_IN_BUNDLE = re.compile(
    r"(libcuda|libcudnn|libcublas|libnccl|libtorch_cuda|nvidia/|torchvision|/numpy/|numpy\.libs|"
    r"libQt6(WebEngine|Qml|Quick|3D|Multimedia|Charts|DataVisualization|Pdf|Designer|Network)|"
    r"/tkinter/|_tkinter|/sympy/|/networkx/|torch/_inductor/|torch/_dynamo/|torch/bin/test_|/tests?/conftest|"
    r"libssl|libcrypto|_ssl\.|_hashlib\.)",
    re.IGNORECASE,
)
# Libraries that must come from the bundle itself, never from the system.
BUNDLED_LIBRARY = re.compile(r"^lib(Qt6|torch|c10|shiboken6|pyside6|python3|heif|gomp)")


class Checks:
    def __init__(self) -> None:
        self.results: list[tuple[str, bool, str]] = []

    def add(self, name: str, ok: bool, detail: str = "") -> bool:
        self.results.append((name, ok, detail))
        mark = "PASS" if ok else "FAIL"
        print(f"[{mark}] {name}" + (f": {detail}" if detail else ""), flush=True)
        return ok

    @property
    def all_ok(self) -> bool:
        return all(ok for _, ok, _ in self.results)


# --------------------------------------------------------------------------------------------------- helpers
def tree_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def snapshot(folders: list[Path]) -> dict[str, tuple[int, int]]:
    """path -> (size, mtime_ns) of every file and folder (folders with size -1) below the given roots."""
    state = {}
    for root in folders:
        if not root.exists():
            continue
        for path in [root, *root.rglob("*")]:
            try:
                st = path.lstat()
            except OSError:
                continue
            is_dir = path.is_dir() and not path.is_symlink()
            # A folder's mtime changes whenever a child appears; children are compared themselves.
            state[str(path)] = (-1, 0) if is_dir else (st.st_size, st.st_mtime_ns)
    return state


def diff_snapshots(before: dict, after: dict) -> list[str]:
    changes = []
    for path in sorted(set(before) | set(after)):
        if path not in before:
            changes.append(f"created {path}")
        elif path not in after:
            changes.append(f"removed {path}")
        elif before[path] != after[path]:
            changes.append(f"changed {path}")
    return changes


def write_bmp(path: Path, width: int = 400, height: int = 300) -> None:
    """A 24-bit BMP of a green field with a dark diagonal band (standard library only)."""
    row_pad = (4 - (width * 3) % 4) % 4
    rows = []
    for y in range(height):
        row = bytearray()
        for x in range(width):
            on_band = abs((x - 50) - (y * 1.1)) < 30
            row += bytes((30, 45, 60)) if on_band else bytes((70, 140, 96))  # BGR
        rows.append(bytes(row) + b"\0" * row_pad)
    pixels = b"".join(rows)
    header = struct.pack("<2sIHHI", b"BM", 54 + len(pixels), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    path.write_bytes(header + info + pixels)


def write_teaching_photos(folder: Path, count: int = 6) -> list[Path]:
    """Distinct generated pictures of one 'species' (different sizes, so different bytes)."""
    folder.mkdir()
    paths = [folder / f"taught-{i}.bmp" for i in range(count)]
    for i, path in enumerate(paths):
        write_bmp(path, width=160 + 24 * i, height=140 + 16 * i)
    return paths


def write_heic(path: Path) -> bool:
    """A HEIC photo, when this interpreter has Pillow and pillow-heif (the dev venv has)."""
    try:
        from PIL import Image, ImageDraw
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    image = Image.new("RGB", (400, 300), (96, 140, 70))
    ImageDraw.Draw(image).line([(20, 280), (380, 20)], fill=(60, 45, 30), width=40)
    image.save(path, format="HEIF", quality=80)
    return True


def network_wrapper(checks: Checks) -> list[str]:
    """Command prefix that runs a program in a new network namespace (only loopback), proven by a probe."""
    if not IS_LINUX or not shutil.which("unshare"):
        checks.add("network blocked", False, "no `unshare` here: cannot prove the app runs offline")
        return []
    for prefix in (["unshare", "--net"], ["unshare", "-r", "--net"]):
        probe = (
            "import socket, pathlib; "
            "ifaces = [l.split(':')[0].strip() for l in pathlib.Path('/proc/net/dev').read_text().splitlines()[2:]]; "
            "s = socket.socket(); s.settimeout(3)\n"
            "try:\n s.connect(('1.1.1.1', 443)); print('CONNECTED', ifaces)\n"
            "except OSError as e:\n print('BLOCKED', ifaces, e.errno)"
        )
        try:
            out = subprocess.run(prefix + [sys.executable, "-c", probe], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.startswith("BLOCKED"):
            checks.add("network blocked", True, f"`{' '.join(prefix)}`: probe saw {out.stdout.strip()}")
            return prefix
    checks.add("network blocked", False, "could not create a network namespace")
    return []


def clean_environment(sandbox: Path) -> dict[str, str]:
    home = sandbox / "home"
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin" if not IS_WINDOWS else os.environ.get("SystemRoot", "") + r"\system32",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "XDG_RUNTIME_DIR": str(sandbox / "runtime"),
        "TMPDIR": str(sandbox / "tmp"),
        "LANG": "C.UTF-8",
        "QT_QPA_PLATFORM": "offscreen",
    }
    if IS_WINDOWS:
        for key in ("SystemRoot", "SystemDrive"):
            env[key] = os.environ.get(key, "")
        env.update(USERPROFILE=str(home), APPDATA=str(home / "AppData" / "Roaming"),
                   LOCALAPPDATA=str(home / "AppData" / "Local"), TEMP=str(sandbox / "tmp"), TMP=str(sandbox / "tmp"))
    for key in ("HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "TMPDIR"):
        Path(env[key]).mkdir(parents=True, exist_ok=True)
    Path(env["XDG_RUNTIME_DIR"]).mkdir(mode=0o700, parents=True, exist_ok=True)
    return env


def platformdirs_folders(env: dict[str, str]) -> list[Path]:
    """SnakeID's platformdirs folders for this clean environment (platformdirs' Unix/Windows rules)."""
    if IS_WINDOWS:
        local = Path(env["LOCALAPPDATA"]) / "SnakeID" / "SnakeID"
        return [local, Path(env["APPDATA"]) / "SnakeID" / "SnakeID"]
    if sys.platform == "darwin":
        home = Path(env["HOME"])
        return [home / "Library" / sub / "SnakeID" for sub in ("Application Support", "Caches", "Logs", "Preferences")]
    return [Path(env[key]) / "SnakeID" for key in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME")]


def run_app(cmd: list[str], env: dict, cwd: Path, timeout: float = 300) -> tuple[subprocess.CompletedProcess, float]:
    env = dict(env, SNAKEID_LAUNCH_EPOCH=repr(time.time()))
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    return proc, time.perf_counter() - started


def last_json_object(text: str):
    """The JSON object printed by the app: the whole output, else the last line that parses."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    for line in reversed(text.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def tail(text: str, n: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


# --------------------------------------------------------------------------------------------------- checks
def check_bundle(app_dir: Path, checks: Checks) -> None:
    for exe in ("snakeid" + EXE_SUFFIX, "snakeid-desktop" + EXE_SUFFIX):
        checks.add(f"bundle has {exe}", (app_dir / exe).is_file())
    internal = app_dir / "_internal"
    checks.add("bundle has the model", (internal / "weights" / "model.json").is_file()
               and (internal / "weights" / "model.pt").is_file())
    checks.add("bundle has resources/species.json", (internal / "resources" / "species.json").is_file())
    forbidden = sorted({str(p.relative_to(app_dir)) for p in app_dir.rglob("*")
                        if FORBIDDEN_IN_BUNDLE.search("/" + p.relative_to(app_dir).as_posix())})
    checks.add("bundle has no CUDA/torchvision/numpy/unused Qt modules", not forbidden, "; ".join(forbidden[:8]))
    if IS_LINUX and shutil.which("ldd"):
        check_linked_libraries(app_dir, checks)


def check_linked_libraries(app_dir: Path, checks: Checks) -> None:
    """Every torch/Qt/Python library a bundled binary needs must resolve inside the bundle.

    Catches over-eager trimming (a Qt plugin whose library was dropped would fail to load silently).
    """
    internal = app_dir / "_internal"
    lib_dirs = sorted({str(p.parent) for p in internal.rglob("*.so*")})
    env = dict(os.environ, LD_LIBRARY_PATH=":".join(lib_dirs))
    missing = []
    for binary in sorted(internal.rglob("*.so*")):
        if binary.is_symlink() or not binary.is_file():
            continue
        out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, env=env).stdout
        for line in out.splitlines():
            name = line.strip().split(" ")[0]
            if "not found" in line and BUNDLED_LIBRARY.match(name):
                missing.append(f"{binary.relative_to(app_dir)} needs {name}")
            elif "=>" in line and BUNDLED_LIBRARY.match(name):
                target = line.split("=>")[1].strip().split(" (")[0]
                if target and not target.startswith(str(internal)):
                    missing.append(f"{binary.relative_to(app_dir)} takes {name} from the system ({target})")
    checks.add("bundled libraries resolve inside the bundle", not missing, "; ".join(missing[:6]))


def check_no_connect_attempt(net: list[str], cmd: list[str], env: dict, cwd: Path, checks: Checks) -> None:
    """strace every connect()/sendto(): only Unix-domain sockets are allowed.

    The network namespace only makes a connection fail; this shows none is even attempted.
    """
    if not (IS_LINUX and shutil.which("strace")):
        print("(strace not available: skipped the connection-attempt check)")
        return
    log = cwd.parent / "strace.log"
    proc = subprocess.run([*net, "strace", "-f", "-qq", "-e", "trace=connect,sendto", "-o", str(log), *cmd],
                          env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    text = log.read_text(errors="replace") if log.exists() else ""
    inet = [line.strip() for line in text.splitlines() if "AF_INET" in line]
    checks.add(f"no internet connection attempted ({' '.join(Path(c).name for c in cmd)})",
               proc.returncode == 0 and not inet,
               f"exit {proc.returncode}; " + ("; ".join(inet[:3]) if inet else "no AF_INET/AF_INET6 connect/sendto"))
    log.unlink(missing_ok=True)


def baseline_import_torch(python: Path, runs: int = 3) -> dict:
    """Start-up times depend on the machine's load: time a plain, unfrozen `import torch` for comparison."""
    figures = {}
    if hasattr(os, "getloadavg"):
        figures["load_average_1min"] = round(os.getloadavg()[0], 2)
    if not python.is_file():
        return figures
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.run([str(python), "-W", "ignore", "-c", "import torch"], capture_output=True)
        if proc.returncode != 0:
            return figures
        times.append(time.perf_counter() - started)
    figures["unfrozen_import_torch_s"] = round(statistics.median(times), 2)
    return figures


def make_archive(app_dir: Path, out_dir: Path) -> Path:
    version = "unknown"
    match = re.search(r'__version__\s*=\s*"([^"]+)"', (ROOT / "snakeid_desktop" / "__init__.py").read_text())
    if match:
        version = match.group(1)
    platform_tag = {"linux": "linux", "win32": "windows", "darwin": "macos"}.get(sys.platform, sys.platform)
    archive = out_dir / f"SnakeID-{version}-{platform_tag}-{os.uname().machine if hasattr(os, 'uname') else 'x86_64'}.tar.gz"
    if shutil.which("tar") and not IS_WINDOWS:
        subprocess.run(["tar", "-czf", str(archive), "-C", str(app_dir.parent), app_dir.name], check=True)
    else:
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(app_dir, arcname=app_dir.name)
    return archive


# --------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dist", type=Path, default=ROOT / "dist" / "SnakeID", help="the onedir app folder")
    parser.add_argument("--build", action="store_true", help="(re)build with scripts/build_dist.sh first")
    parser.add_argument("--no-build", action="store_true", help="fail instead of building when the app is missing")
    parser.add_argument("--gui-runs", type=int, default=3, help="GUI launches to time (median reported)")
    parser.add_argument("--no-archive", action="store_true", help="skip making the .tar.gz")
    parser.add_argument("--json-out", type=Path, help="also write the figures and checks here")
    parser.add_argument("--baseline-python", type=Path, default=ROOT / ".venv-dist" / "bin" / "python",
                        help="interpreter whose plain `import torch` time is measured alongside, for context "
                             "(default: the build venv's; skipped when missing)")
    args = parser.parse_args(argv)

    app_dir = args.dist.resolve()
    checks = Checks()
    figures: dict = {}
    if args.build or not (app_dir / ("snakeid" + EXE_SUFFIX)).is_file():
        if args.no_build:
            print(f"smoke_frozen: no app in {app_dir} (build it with `make dist`)", file=sys.stderr)
            return 1
        started = time.perf_counter()
        subprocess.run(["bash", str(ROOT / "scripts" / "build_dist.sh")], cwd=ROOT, check=True)
        figures["build_s"] = round(time.perf_counter() - started, 1)

    check_bundle(app_dir, checks)
    cli = [str(app_dir / ("snakeid" + EXE_SUFFIX))]
    gui = [str(app_dir / ("snakeid-desktop" + EXE_SUFFIX))]

    with tempfile.TemporaryDirectory(prefix="snakeid-smoke-") as tmp:
        sandbox = Path(tmp)
        env = clean_environment(sandbox)
        cwd = sandbox / "work"
        cwd.mkdir()
        photos = sandbox / "photos"
        photos.mkdir()
        write_bmp(photos / "field.bmp")
        has_heic = write_heic(photos / "field.heic")
        teaching = write_teaching_photos(sandbox / "teaching")
        net = network_wrapper(checks)
        allowed = platformdirs_folders(env)
        watched = [Path(env["HOME"]), Path(env["TMPDIR"]), Path(env["XDG_RUNTIME_DIR"]), cwd, app_dir, photos,
                   teaching[0].parent]
        before = snapshot(watched)

        # 1. snakeid --self-test
        proc, wall = run_app(net + cli + ["--self-test"], env, cwd)
        summary = last_json_object(proc.stdout)
        ok = proc.returncode == 0 and isinstance(summary, dict) and summary.get("ok") is True
        checks.add("snakeid --self-test", ok, f"exit {proc.returncode}, {wall:.2f} s"
                   + ("" if ok else f"\n{tail(proc.stdout)}\n{tail(proc.stderr)}"))
        figures["self_test_wall_s"] = round(wall, 2)
        if isinstance(summary, dict):
            figures["self_test_model_version"] = summary.get("model_version")
            figures["self_test_model_load_s"] = summary.get("model_load_s")
        if proc.stderr.strip():
            print(f"  (self-test stderr: {tail(proc.stderr, 5)})")

        # 2. snakeid classify on files
        inputs = [str(photos / "field.bmp")] + ([str(photos / "field.heic")] if has_heic else [])
        proc, wall = run_app(net + cli + ["classify", "--json", *inputs], env, cwd)
        try:
            results = json.loads(proc.stdout)
        except ValueError:
            results = None
        ok = (proc.returncode == 0 and isinstance(results, list) and len(results) == len(inputs)
              and all(r.get("status") == "ok" for r in results))
        checks.add(f"snakeid classify --json ({', '.join(Path(i).suffix for i in inputs)})", ok,
                   f"exit {proc.returncode}, {wall:.2f} s" + ("" if ok else f"\n{tail(proc.stdout)}\n{tail(proc.stderr)}"))

        # 3. snakeid batch: a folder to CSV + JSON (uses the result cache, kept in the platformdirs cache folder)
        outputs = sandbox / "out"
        outputs.mkdir()
        watched.append(outputs)
        before.update(snapshot([outputs]))
        requested = [outputs / "results.csv", outputs / "results.json"]
        proc, wall = run_app(net + cli + ["batch", str(photos), "--csv", str(requested[0]), "--json", str(requested[1])],
                             env, cwd)
        rows = requested[0].read_text(encoding="utf-8").splitlines() if requested[0].is_file() else []
        ok = proc.returncode == 0 and len(rows) == 1 + len(inputs) and requested[1].is_file()
        checks.add("snakeid batch --csv --json", ok, f"exit {proc.returncode}, {wall:.2f} s, {len(rows)} CSV lines"
                   + ("" if ok else f"\n{tail(proc.stdout)}\n{tail(proc.stderr)}"))

        # 3b. snakeid teach: a species from generated pictures, then answered as taught (and listed)
        proc, wall = run_app(net + cli + ["teach", str(teaching[0].parent), "--scientific-name", "Smokus testus",
                                          "--common-name", "Smoke snake", "--venomous", "unknown"], env, cwd)
        taught_ok = proc.returncode == 0 and "Taught Smoke snake" in proc.stdout
        checks.add("snakeid teach (6 generated pictures)", taught_ok, f"exit {proc.returncode}, {wall:.2f} s"
                   + ("" if taught_ok else f"\n{tail(proc.stdout)}\n{tail(proc.stderr)}"))
        figures["teach_wall_s"] = round(wall, 2)
        proc, wall = run_app(net + cli + ["classify", "--json", str(teaching[2])], env, cwd)
        try:
            top = json.loads(proc.stdout)[0]["top"][0]
        except (ValueError, LookupError, TypeError):
            top = {}
        ok = proc.returncode == 0 and top.get("species") == "taught-smokus-testus" and top.get("taught") is True
        checks.add("snakeid classify answers the taught species", ok, f"exit {proc.returncode}, top {top.get('species')}"
                   + ("" if ok else f"\n{tail(proc.stdout)}\n{tail(proc.stderr)}"))
        proc, wall = run_app(net + cli + ["species", "list", "--json"], env, cwd)
        try:
            listed = [(s["scientific_name"], s["status"]) for s in json.loads(proc.stdout)]
        except (ValueError, LookupError, TypeError):
            listed = []
        checks.add("snakeid species list --json", listed == [("Smokus testus", "ready")], f"{listed}")

        # 4. GUI: window shown and model ready, timed over several launches
        gui_timings = []
        for run in range(max(1, args.gui_runs)):
            proc, wall = run_app(net + gui + ["--smoke-quit"], env, cwd)
            timing = last_json_object(proc.stdout)
            ok = proc.returncode == 0 and isinstance(timing, dict) and timing.get("ok") is True
            if not checks.add(f"snakeid-desktop --smoke-quit (launch {run + 1})", ok,
                              f"exit {proc.returncode}, {wall:.2f} s, {timing}"
                              + ("" if ok else f"\n{tail(proc.stdout)}\n{tail(proc.stderr)}")):
                break
            gui_timings.append((timing.get("window_shown_s"), timing.get("model_ready_s"), wall))
            if proc.stderr.strip() and run == 0:
                print(f"  (GUI stderr: {tail(proc.stderr, 5)})")
        if gui_timings:
            figures["gui_launches"] = [
                {"window_shown_s": w, "model_ready_s": m, "process_wall_s": round(t, 2)} for w, m, t in gui_timings
            ]
            figures["window_shown_s"] = statistics.median(w for w, _, _ in gui_timings)
            figures["model_ready_s"] = statistics.median(m for _, m, _ in gui_timings)
            figures["gui_first_launch"] = figures["gui_launches"][0]

        # 5. nothing written outside SnakeID's platformdirs folders (and the files batch was asked to write)
        after = snapshot(watched)
        changes = diff_snapshots(before, after)
        allowed_prefixes = tuple(str(folder) for folder in allowed)
        requested_outputs = {f"created {p}" for p in requested}

        def inside_allowed(change: str) -> bool:
            path = change.split(" ", 1)[1]
            return path.startswith(allowed_prefixes) or any(a.startswith(path + os.sep) for a in allowed_prefixes)

        changes = [c for c in changes if c not in requested_outputs]

        outside = [c for c in changes if not inside_allowed(c)]
        written = sorted({c.split(" ", 1)[1] for c in changes if inside_allowed(c)})
        checks.add("no file written outside SnakeID's platformdirs folders", not outside, "; ".join(outside[:10]))
        figures["files_written_in_platformdirs"] = [os.path.relpath(p, env["HOME"]) for p in written]

        # 6. (Linux) no internet connection even attempted: the namespace alone would only make it fail.
        check_no_connect_attempt(net, cli + ["--self-test"], env, cwd, checks)
        check_no_connect_attempt(net, gui + ["--smoke-quit"], env, cwd, checks)

    figures.update(baseline_import_torch(args.baseline_python))
    figures["onedir_mb"] = round(tree_size(app_dir) / 1e6, 1)
    figures["onedir_files"] = sum(1 for p in app_dir.rglob("*") if p.is_file())
    if not args.no_archive:
        started = time.perf_counter()
        archive = make_archive(app_dir, app_dir.parent)
        figures["archive"] = str(archive)
        figures["archive_mb"] = round(archive.stat().st_size / 1e6, 1)
        figures["archive_s"] = round(time.perf_counter() - started, 1)

    print("\nFigures (sizes in MB = 10^6 bytes; times in seconds from launch, median of GUI launches)")
    print(f"{'figure':28s} {'measured':>10s} {'target':>8s}  verdict")
    for key, target in TARGETS.items():
        value = figures.get(key)
        verdict = "n/a" if value is None else ("met" if value <= target else "MISSED")
        print(f"{key:28s} {str(value):>10s} {('<= ' + str(target)):>8s}  {verdict}")
    for key in ("self_test_wall_s", "self_test_model_load_s", "unfrozen_import_torch_s", "load_average_1min",
                "onedir_files", "build_s", "archive_s"):
        if key in figures:
            print(f"{key:28s} {str(figures[key]):>10s}")
    if "gui_launches" in figures:
        print("GUI launches:", json.dumps(figures["gui_launches"]))
    print("written in platformdirs:", figures.get("files_written_in_platformdirs"))
    failed = [name for name, ok, _ in checks.results if not ok]
    print(f"\n{len(checks.results) - len(failed)}/{len(checks.results)} checks passed" + (f"; FAILED: {failed}" if failed else ""))
    if args.json_out:
        args.json_out.write_text(json.dumps({"figures": figures, "targets": TARGETS,
                                             "checks": [{"name": n, "ok": o, "detail": d} for n, o, d in checks.results]},
                                            indent=2))
    return 0 if checks.all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
