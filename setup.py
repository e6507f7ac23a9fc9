"""Build step pyproject.toml cannot express; all metadata lives there.

The repository keeps the model and the catalogue in top-level ``weights/`` and ``resources/`` (shared with
pyinstaller.spec and the training scripts), but an installed wheel must carry them inside the package:
a top-level ``weights`` folder in site-packages would clash with any other project's. So ``build_py`` copies
both folders into ``snakeid_desktop/_data/`` of the build tree, where ``paths.py`` finds them through
``importlib.resources``. Declarative package-data cannot reach outside the package folder, and a
``package-dir`` mapping would mean listing every package by hand instead of finding them.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
PACKAGE_DATA_DIR = Path("snakeid_desktop", "_data")
# Top-level folder -> file suffixes left out (the icons only matter to the PyInstaller build).
BUNDLED = {"weights": (), "resources": (".ico", ".icns")}
REQUIRED = ["weights/model.json", "weights/model.pt", "resources/species.json", "resources/countries.bin",
            "resources/countries.json"]


def _bundled_files() -> list[tuple[Path, Path]]:
    """(source, destination relative to the build folder) for every file copied into the package."""
    missing = [name for name in REQUIRED if not (ROOT / name).is_file()]
    if missing:
        # A wheel without its model installs fine and then fails at every user: refuse to build it.
        raise SystemExit(f"setup.py: cannot build a wheel without {', '.join(missing)}")
    pairs = []
    for folder, skip in BUNDLED.items():
        for source in sorted((ROOT / folder).rglob("*")):
            if source.is_file() and source.suffix.lower() not in skip and "__pycache__" not in source.parts:
                pairs.append((source, PACKAGE_DATA_DIR / folder / source.relative_to(ROOT / folder)))
    return pairs


class build_py_with_data(build_py):
    def run(self):
        super().run()
        if self.editable_mode:  # an editable install reads weights/ and resources/ from the checkout
            return
        for source, dest in _bundled_files():
            target = Path(self.build_lib) / dest
            self.mkpath(str(target.parent))
            self.copy_file(str(source), str(target))

    def get_outputs(self, include_bytecode=True):
        outputs = super().get_outputs(include_bytecode)
        if not self.editable_mode:
            outputs += [str(Path(self.build_lib) / dest) for _, dest in _bundled_files()]
        return outputs


setup(cmdclass={"build_py": build_py_with_data})
