"""The frozen (PyInstaller) app: build it, then run scripts/smoke_frozen.py's checks on it.

Building takes minutes and a separate 1.5 GB virtual environment, so this runs only when asked:
    SNAKEID_TEST_FROZEN=1 .venv/bin/python -m pytest tests/test_frozen.py -q
The build is incremental (PyInstaller's cache in build/), and the result is the release folder dist/SnakeID.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
APP_DIR = REPO_ROOT / "dist" / "SnakeID"

pytestmark = [
    pytest.mark.skipif(os.environ.get("SNAKEID_TEST_FROZEN") != "1",
                       reason="builds the standalone app (minutes): set SNAKEID_TEST_FROZEN=1 to run"),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the smoke script's sandbox is Linux-only"),
]


def _clean_env() -> dict:
    """The build and the smoke script must not inherit pytest's Qt platform or a weights override."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QT_", "SNAKEID_WEIGHTS_DIR", "PYTEST"))}
    return env


@pytest.fixture(scope="module")
def smoke_report(tmp_path_factory) -> dict:
    if not (REPO_ROOT / "weights" / "model.json").is_file():
        pytest.skip("no trained model in weights/: the app bundles it, so there is nothing to freeze yet")
    build = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "build_dist.sh")], cwd=REPO_ROOT,
                           env=_clean_env(), capture_output=True, text=True, timeout=3000)
    assert build.returncode == 0, f"build failed:\n{build.stdout[-3000:]}\n{build.stderr[-3000:]}"
    report_path = tmp_path_factory.mktemp("frozen") / "report.json"
    smoke = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "smoke_frozen.py"), "--no-build", "--no-archive",
         "--gui-runs", "1", "--json-out", str(report_path)],
        cwd=REPO_ROOT, env=_clean_env(), capture_output=True, text=True, timeout=900,
    )
    assert report_path.is_file(), f"smoke script crashed:\n{smoke.stdout[-3000:]}\n{smoke.stderr[-3000:]}"
    report = json.loads(report_path.read_text())
    report["output"] = smoke.stdout + smoke.stderr
    report["returncode"] = smoke.returncode
    return report


def _check(report: dict, prefix: str) -> dict:
    matches = [c for c in report["checks"] if c["name"].startswith(prefix)]
    assert matches, f"smoke script did not run the check {prefix!r}:\n{report['output'][-3000:]}"
    return matches[0]


@pytest.mark.timeout(3600)
@pytest.mark.parametrize(
    "check",
    [
        "bundle has snakeid",
        "bundle has snakeid-desktop",
        "bundle has the model",
        "bundle has no CUDA/torchvision/numpy/unused Qt modules",
        "bundled libraries resolve inside the bundle",
        "network blocked",
        "snakeid --self-test",
        "snakeid classify --json",
        "snakeid batch --csv --json",
        "snakeid teach",
        "snakeid classify answers the taught species",
        "snakeid species list --json",
        "snakeid-desktop --smoke-quit",
        "no file written outside SnakeID's platformdirs folders",
    ],
)
def test_frozen_app_check(smoke_report, check):
    result = _check(smoke_report, check)
    assert result["ok"], f"{result['name']}: {result['detail']}"


@pytest.mark.timeout(3600)
def test_frozen_app_bundles_the_repository_model(smoke_report):
    bundled = json.loads((APP_DIR / "_internal" / "weights" / "model.json").read_text())
    ours = json.loads((REPO_ROOT / "weights" / "model.json").read_text())
    assert bundled == ours
    assert smoke_report["figures"]["self_test_model_version"] == ours.get("model_version")


@pytest.mark.timeout(3600)
def test_frozen_app_passes_every_smoke_check(smoke_report):
    failed = [f"{c['name']}: {c['detail']}" for c in smoke_report["checks"] if not c["ok"]]
    assert not failed and smoke_report["returncode"] == 0, "\n".join(failed) or smoke_report["output"][-3000:]
