"""The architecture rules, made executable."""

import subprocess
import sys
import textwrap

from tests.conftest import REPO_ROOT

CORE_MODULES = [
    "snakeid_desktop.model",
    "snakeid_desktop.bundle",
    "snakeid_desktop.preprocess",
    "snakeid_desktop.imageload",
    "snakeid_desktop.predictor",
    "snakeid_desktop.catalogue",
    "snakeid_desktop.results",
    "snakeid_desktop.cli",
    "snakeid_desktop.selftest",
    "snakeid_desktop.batch",
    "snakeid_desktop.batch_cache",
    "snakeid_desktop.batch_cli",
    "snakeid_desktop.export",
    "snakeid_desktop.sorting",
    "snakeid_desktop.evaluation",
]


def _run_isolated(code: str):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)


def test_core_imports_and_classifies_with_pyside6_and_torchvision_absent(test_bundle_dir):
    """Block PySide6/torchvision at import time, import every core module, run a prediction."""
    proc = _run_isolated(
        f"""
        import importlib, sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in ('PySide6', 'shiboken6', 'torchvision'):
                    raise ImportError('blocked for this test: ' + name)
        sys.meta_path.insert(0, Block())
        for mod in {CORE_MODULES!r}:
            importlib.import_module(mod)
        from PIL import Image
        from snakeid_desktop.predictor import Predictor
        p = Predictor.load({str(test_bundle_dir)!r})
        print(p.predict_images([Image.new('RGB', (100, 100))])[0].verdict)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() in ("species", "unsure", "not_snake")


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
