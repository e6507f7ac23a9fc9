#!/usr/bin/env bash
# Build the standalone app (dist/SnakeID/) with PyInstaller in its own virtual environment.
#
#   bash scripts/build_dist.sh            # or: make dist
#   SNAKEID_ONEFILE=1 bash scripts/build_dist.sh   # also build single-file executables
#
# The environment gets a CPU-only torch and nothing the app does not import at run time
# (no torchvision, numpy, CUDA libraries): every package installed here can end up in the bundle.
# Environment knobs:
#   PYTHON            interpreter for the venv (default python3)
#   DIST_VENV         venv folder (default .venv-dist)
#   DIST_TORCH_SPEC   torch requirement (default torch==2.13.0)
#   DIST_TORCH_INDEX  index serving CPU-only torch wheels (PyTorch publishes one)
#                     (needed on Linux off this machine: PyPI's Linux torch pulls in CUDA)
#   SNAKEID_WEIGHTS_DIR  bundle this model folder instead of weights/ (tests only)
#   SNAKEID_CLEAN_BUILD=1  ignore PyInstaller's cache in build/ (use for releases)
set -euo pipefail
cd "$(dirname "$0")/.."

case "$(uname -s)" in
  MINGW*|MSYS*|CYGWIN*) ON_WINDOWS=1; DEFAULT_PYTHON=python ;;  # "python3" is the Store stub there
  *) ON_WINDOWS=0; DEFAULT_PYTHON=python3 ;;
esac
PYTHON=${PYTHON:-$DEFAULT_PYTHON}
DIST_VENV=${DIST_VENV:-.venv-dist}
DIST_TORCH_SPEC=${DIST_TORCH_SPEC:-torch==2.13.0}
DIST_TORCH_INDEX=${DIST_TORCH_INDEX:-}
PYINSTALLER_SPEC=${PYINSTALLER_SPEC:-pyinstaller>=6.6}
PIP_FLAGS=(--disable-pip-version-check -q)

# One build at a time: two would share build/, dist/ and the venv.
mkdir -p build
if command -v flock >/dev/null; then
  exec 9>build/.build_dist.lock
  flock 9
fi

if [[ $ON_WINDOWS == 1 ]]; then VPY="$DIST_VENV/Scripts/python.exe"; else VPY="$DIST_VENV/bin/python"; fi

# Reinstall when the requirements written in this script change, not on every build.
REQUIREMENTS_STAMP="$DIST_TORCH_SPEC|$DIST_TORCH_INDEX|$PYINSTALLER_SPEC|app deps from pyproject.toml|$(cksum < pyproject.toml)"
STAMP_FILE="$DIST_VENV/.dist-installed"
if [[ ! -x "$VPY" ]]; then
  echo "build_dist: creating $DIST_VENV"
  "$PYTHON" -m venv "$DIST_VENV"
fi
if [[ ! -f "$STAMP_FILE" || "$(cat "$STAMP_FILE")" != "$REQUIREMENTS_STAMP" ]]; then
  echo "build_dist: installing CPU-only $DIST_TORCH_SPEC, PyInstaller and the app's run-time packages"
  if [[ -n "$DIST_TORCH_INDEX" ]]; then
    "$VPY" -m pip install "${PIP_FLAGS[@]}" --index-url "$DIST_TORCH_INDEX" "$DIST_TORCH_SPEC"
  else
    "$VPY" -m pip install "${PIP_FLAGS[@]}" "$DIST_TORCH_SPEC"
  fi
  # The app's run-time requirements exactly as pyproject.toml pins them (e.g. PySide6 below 6.12),
  # torch aside: the CPU-only build above must not be replaced.
  mapfile -t APP_DEPS < <("$VPY" - <<'PY'
import re
text = open("pyproject.toml", encoding="utf-8").read()
block = re.search(r"^dependencies = \[(.*?)^\]", text, re.S | re.M).group(1)
block = "\n".join(line.split("#", 1)[0] for line in block.splitlines())  # comments are not requirements
for spec in re.findall(r'"([^"]+)"', block):
    if not re.match(r"torch\b", spec):
        print(spec)
PY
)
  "$VPY" -m pip install "${PIP_FLAGS[@]}" "$PYINSTALLER_SPEC" "${APP_DEPS[@]}"
  "$VPY" -m pip install "${PIP_FLAGS[@]}" --no-deps -e .
  printf '%s' "$REQUIREMENTS_STAMP" > "$STAMP_FILE"
fi

# Refuse to freeze a CUDA torch or stray heavy packages: they would silently bloat the bundle by GBs.
"$VPY" - <<'PY'
import importlib.metadata as md
import sys

import torch

problems = []
if torch.version.cuda or getattr(torch.version, "hip", None):
    problems.append(f"torch {torch.__version__} is a GPU build (cuda={torch.version.cuda})")
names = {d.metadata["Name"].lower() for d in md.distributions()}
stray = sorted(n for n in names if n.startswith("nvidia-") or n in {"torchvision", "numpy", "triton"})
if stray:
    problems.append("packages that must not be bundled are installed: " + ", ".join(stray))
if problems:
    sys.exit("build_dist: " + "; ".join(problems) + "\n  remove the build venv and rerun.")
print(f"build_dist: torch {torch.__version__} (CPU only), python {sys.version.split()[0]}")
PY

# Incremental by default (PyInstaller reuses its analysis in build/ when nothing changed);
# SNAKEID_CLEAN_BUILD=1 starts from scratch, as a release build should.
CLEAN_FLAG=()
if [[ "${SNAKEID_CLEAN_BUILD:-0}" == 1 ]]; then CLEAN_FLAG=(--clean); fi
started=$(date +%s)
"$VPY" -m PyInstaller --noconfirm "${CLEAN_FLAG[@]}" --distpath dist --workpath build pyinstaller.spec
echo "build_dist: PyInstaller took $(( $(date +%s) - started )) s; app in dist/SnakeID/"
