"""The built wheel carries the model and the catalogue inside the package and works installed elsewhere.

Builds from a copy of the build inputs (so the checkout gets no build/ or egg-info), installs the wheel with
--no-deps into a fresh virtual environment, and runs that environment's own `snakeid` from an unrelated folder.
The fresh environment borrows torch/Pillow/platformdirs from this interpreter through a .pth file, which
appends those folders *after* its own site-packages: its snakeid_desktop must win (checked, not assumed).
About 12 s here: creating the venv with pip and one `import torch` are most of it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

# What a build needs from the checkout; a build that needs more fails here first.
BUILD_INPUTS = ["pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "snakeid_desktop", "weights", "resources"]
DATA_FILES = {"snakeid_desktop/_data/weights/model.pt", "snakeid_desktop/_data/weights/model.json",
              "snakeid_desktop/_data/resources/species.json", "snakeid_desktop/_data/resources/countries.bin",
              "snakeid_desktop/_data/resources/countries.json"}


def _env(**extra) -> dict:
    """This environment minus anything that would make the fresh one find the checkout or another model."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "SNAKEID_WEIGHTS_DIR")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INDEX="1", PYTHONDONTWRITEBYTECODE="1", **extra)
    return env


def _run(cmd: list, cwd: Path, **env) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=_env(**env), capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _copy_build_inputs(dest: Path) -> Path:
    for name in BUILD_INPUTS:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, dest / name)
    return dest


def _build_wheel(source: Path, out: Path) -> Path:
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", out, "."], source)
    (wheel,) = out.glob("snakeid_desktop-*.whl")
    return wheel


def _names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


@pytest.fixture(scope="module")
def source_tree(tmp_path_factory) -> Path:
    return _copy_build_inputs(tmp_path_factory.mktemp("src"))


@pytest.fixture(scope="module")
def wheel(source_tree, tmp_path_factory) -> Path:
    """Built from the source folder, as `pip install .` and `pipx install .` do."""
    return _build_wheel(source_tree, tmp_path_factory.mktemp("wheel"))


def test_wheel_carries_model_and_catalogue_inside_the_package(wheel):
    names = _names(wheel)
    assert DATA_FILES <= names, f"missing from the wheel: {sorted(DATA_FILES - names)}"
    top_level = {name.split("/", 1)[0] for name in names if not name.split("/", 1)[0].endswith(".dist-info")}
    assert top_level == {"snakeid_desktop"}, "the wheel would install top-level folders into site-packages"
    # The model travels byte for byte.
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read("snakeid_desktop/_data/weights/model.pt") == (REPO_ROOT / "weights" / "model.pt").read_bytes()


def test_sdist_carries_the_data_and_builds_the_same_wheel(source_tree, wheel, tmp_path):
    """`python -m build` and PyPI build the wheel from the sdist: it needs weights/ and resources/ too."""
    out = tmp_path / "sdist"
    _run([sys.executable, "-c", f"from setuptools import build_meta; build_meta.build_sdist({str(out)!r})"],
         source_tree)
    (sdist,) = out.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path / "unpacked", **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    (unpacked,) = (tmp_path / "unpacked").iterdir()
    assert (unpacked / "weights" / "model.pt").is_file() and (unpacked / "resources" / "countries.bin").is_file()
    assert _names(_build_wheel(unpacked, tmp_path / "wheel")) == _names(wheel)


def _dependency_folders() -> list[str]:
    """Where this interpreter finds the app's run-time dependencies (the CLI needs no Qt)."""
    folders = []
    for module in ("torch", "PIL", "platformdirs"):
        spec = importlib.util.find_spec(module)
        assert spec is not None and spec.origin, f"{module} is not installed here"
        folder = str(Path(spec.origin).parent.parent)
        if folder not in folders:
            folders.append(folder)
    return folders


@pytest.fixture(scope="module")
def fresh_venv(wheel, tmp_path_factory) -> tuple[Path, Path]:
    """(environment folder, its site-packages) with only the wheel installed in it."""
    venv = tmp_path_factory.mktemp("venv")
    # With its own pip (ensurepip's bundled copy, offline): the way a user installs a wheel, with any pip version.
    _run([sys.executable, "-m", "venv", venv], venv)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], venv).stdout.strip())
    _run([python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", wheel], venv)
    (site / "zz-borrowed-dependencies.pth").write_text("\n".join(_dependency_folders()) + "\n")
    return venv, site


def test_installed_package_finds_its_data_inside_site_packages(fresh_venv, tmp_path):
    venv, site = fresh_venv
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    probe = (
        "import json, snakeid_desktop\n"
        "from snakeid_desktop import paths, region\n"
        "from snakeid_desktop.catalogue import load_catalogue\n"
        "print(json.dumps({'module': snakeid_desktop.__file__, 'weights': str(paths.weights_dir()),\n"
        "    'resources': str(paths.resources_dir()), 'species': len(load_catalogue().species),\n"
        "    'manila': region.country_at(14.6, 121.0), 'name': region.country_name('MZ')}))\n"
    )
    found = json.loads(_run([python, "-c", probe], tmp_path).stdout)
    package = (site / "snakeid_desktop").resolve()
    assert Path(found["module"]).resolve().parent == package, "the fresh venv imported another snakeid_desktop"
    assert Path(found["weights"]).resolve() == package / "_data" / "weights"
    assert Path(found["resources"]).resolve() == package / "_data" / "resources"
    assert found["species"] > 0 and found["manila"] == "PH" and found["name"] == "Mozambique"
    assert not (site / "weights").exists() and not (site / "resources").exists()


def test_installed_snakeid_self_test_uses_the_packaged_model(fresh_venv, tmp_path):
    venv, site = fresh_venv
    snakeid = venv / ("Scripts/snakeid.exe" if os.name == "nt" else "bin/snakeid")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    summary = json.loads(_run([snakeid, "--self-test"], elsewhere).stdout)
    assert summary["ok"] is True, summary
    assert Path(summary["weights_dir"]).resolve() == (site / "snakeid_desktop" / "_data" / "weights").resolve()
    assert summary["model_version"] == json.loads((REPO_ROOT / "weights" / "model.json").read_text())["model_version"]
