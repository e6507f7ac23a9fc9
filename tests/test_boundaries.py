"""The architecture rules, made executable.

The layers themselves are import-linter contracts in pyproject.toml; these tests run them under
pytest (so ``make test`` and CI enforce them) and back them with a run-time check.
"""

import pkgutil
import shutil
import subprocess
import sys
import textwrap

import snakeid_desktop
from tests.conftest import REPO_ROOT

# Start the desktop app; they import the GUI by design (allowed importers in pyproject.toml).
GUI_LAUNCHERS = {"snakeid_desktop.__main__", "snakeid_desktop.frozen_entry_gui"}
NOT_CORE_PACKAGES = ("snakeid_desktop.gui", "snakeid_desktop.training")

# In a subprocess: the venv's import-linter, run from `cwd` so it analyses the package found there.
LINT_IMPORTS = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def core_modules() -> list[str]:
    """Every snakeid_desktop module outside gui/ and training/, found in the package itself."""
    names = [m.name for m in pkgutil.walk_packages(snakeid_desktop.__path__, "snakeid_desktop.")]
    return sorted(
        n
        for n in names
        if n not in GUI_LAUNCHERS and not any(n == p or n.startswith(p + ".") for p in NOT_CORE_PACKAGES)
    )


def _run_isolated(code: str, cwd=REPO_ROOT):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, capture_output=True, text=True, timeout=120)


def _lint_imports(cwd):
    return subprocess.run(
        [sys.executable, "-c", LINT_IMPORTS, "--no-cache", "--no-logo"], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_import_contracts_are_kept():
    proc = _lint_imports(REPO_ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_import_contracts_catch_qt_in_a_new_core_module(tmp_path):
    """The contracts name who may import Qt, so a core module nobody listed is still checked."""
    shutil.copytree(REPO_ROOT / "snakeid_desktop", tmp_path / "snakeid_desktop", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path)
    (tmp_path / "snakeid_desktop" / "planted.py").write_text("from PySide6.QtCore import QObject\nfrom .gui import app\n")
    proc = _lint_imports(tmp_path)
    assert proc.returncode != 0
    assert "Only the GUI imports Qt BROKEN" in proc.stdout
    assert "The core does not import the GUI (only the GUI's launchers do) BROKEN" in proc.stdout
    assert "snakeid_desktop.planted -> PySide6" in proc.stdout


def test_core_module_list_is_derived_from_the_package():
    modules = core_modules()
    for expected in ("snakeid_desktop.predictor", "snakeid_desktop.cli", "snakeid_desktop.batch_cli", "snakeid_desktop.batch"):
        assert expected in modules
    assert not [m for m in modules if ".gui" in m or ".training" in m or m in GUI_LAUNCHERS]


def test_core_imports_and_classifies_with_pyside6_and_torchvision_absent(test_bundle_dir):
    """Block PySide6/torchvision at import time, import every core module, run a prediction."""
    proc = _run_isolated(
        f"""
        import importlib, sys
        BLOCKED = ('PySide6', 'shiboken6', 'torchvision')
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in BLOCKED:
                    raise ImportError('blocked for this test: ' + name)
        sys.meta_path.insert(0, Block())
        for mod in {core_modules()!r}:
            importlib.import_module(mod)
        from PIL import Image
        from snakeid_desktop.predictor import Predictor
        p = Predictor.load({str(test_bundle_dir)!r})
        print(p.predict_images([Image.new('RGB', (100, 100))])[0].verdict)
        print('LOADED', sorted(m for m in sys.modules if m.split('.')[0] in BLOCKED))
        """
    )
    assert proc.returncode == 0, proc.stderr
    verdict, loaded = proc.stdout.strip().splitlines()[-2:]
    assert verdict in ("species", "unsure", "not_snake")
    assert loaded == "LOADED []"


def test_runtime_path_never_imports_torchvision(test_bundle_dir, tmp_path):
    image = tmp_path / "x.png"
    from PIL import Image

    Image.new("RGB", (64, 64)).save(image)
    proc = _run_isolated(
        f"""
        import sys
        from snakeid_desktop import cli
        cli.main(['--weights', {str(test_bundle_dir)!r}, 'classify', {str(image)!r}, '--json'])
        bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torchvision', 'PySide6'))
        print('LOADED', bad)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert "LOADED []" in proc.stdout
